/* test_archive.c — the zip layer (frontend/archive.c).
 *
 * Small zips are written here with libzip (stored, deflated and empty
 * entries, with and without a common top folder) and read back; real
 * archives from old PyTorch releases (when the shared fixtures are present)
 * check the top folder, 64-byte data alignment, data-descriptor entries and
 * zip64 end records; bad inputs (not a zip, empty, truncated at every length,
 * PYTORCH1, a legacy torch.save stream, a tar header, corrupt data) must each
 * give exactly one error with the expected text.
 */
#include "frontend/frontend.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

/* ---- helpers ---------------------------------------------------------- */

/* A diagnostics sink writing into memory. */
typedef struct capture {
  nn_diag d;  /* hand &c.d to the code under test */
  FILE *f;    /* open_memstream stream behind d.out */
  char *text; /* what was written so far (valid after capture_text) */
  size_t len; /* bytes at text */
} capture;

static void capture_init(capture *c) {
  memset(c, 0, sizeof *c);
  c->f = open_memstream(&c->text, &c->len);
  nn_diag_init(&c->d, c->f);
}

static const char *capture_text(capture *c) {
  fflush(c->f);
  return c->text;
}

static void capture_fini(capture *c) {
  fclose(c->f);
  free(c->text);
}

static char tmp_dir[1024];

/* Creates an empty temporary file and returns its malloc'd path. */
static char *temp_path(void) {
  char *p = malloc(strlen(tmp_dir) + 32);
  sprintf(p, "%s/nncc_archive_XXXXXX", tmp_dir);
  int fd = mkstemp(p);
  if (fd < 0) {
    perror(p);
    exit(1);
  }
  close(fd);
  return p;
}

/* One entry to put in a test zip. */
typedef struct zentry {
  const char *name; /* full name */
  const char *data; /* content */
  size_t len;       /* bytes of content */
  int method;       /* ZIP_CM_STORE or ZIP_CM_DEFLATE */
} zentry;

/* Writes a zip with the given entries (in order) to a new temporary file and
 * returns its path. */
static char *make_zip(const zentry *es, int n) {
  char *path = temp_path();
  int err = 0;
  zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) {
    fprintf(stderr, "zip_open(%s) failed: %d\n", path, err);
    exit(1);
  }
  for (int i = 0; i < n; i++) {
    zip_source_t *s = zip_source_buffer(z, es[i].data, es[i].len, 0);
    zip_int64_t idx = zip_file_add(z, es[i].name, s, ZIP_FL_ENC_UTF_8);
    if (!s || idx < 0 || zip_set_file_compression(z, (zip_uint64_t)idx, es[i].method, 0) != 0) {
      fprintf(stderr, "adding %s: %s\n", es[i].name, zip_strerror(z));
      exit(1);
    }
  }
  if (zip_close(z) != 0) {
    fprintf(stderr, "zip_close: %s\n", zip_strerror(z));
    exit(1);
  }
  return path;
}

/* Opens buf[0..n) under `label` expecting failure; returns the message. The
 * caller frees the result. */
static char *open_mem_fails(const void *buf, size_t n, const char *label, int line) {
  capture c;
  capture_init(&c);
  fe_archive *a = fe_archive_open_mem(buf, n, label, &c.d);
  if (a != NULL || c.d.errors != 1) {
    fprintf(stderr, "line %d: %s: expected one error, got %d (archive %p)\n", line, label,
            c.d.errors, (void *)a);
    unit_failures++;
  }
  unit_checks++;
  fe_archive_close(a);
  char *msg = strdup(capture_text(&c));
  capture_fini(&c);
  return msg;
}

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- zips written here ------------------------------------------------ */

static char text_big[4096]; /* compressible text, deflated */

static void test_written_zip(void) {
  for (size_t i = 0; i < sizeof text_big - 1; i++) text_big[i] = "abcdefgh\n"[i % 9];
  static const char small[] = "hello, stored entry";
  const zentry es[] = {
      {"top.v1/a.txt", small, sizeof small - 1, ZIP_CM_STORE},
      {"top.v1/dir/b.txt", text_big, sizeof text_big - 1, ZIP_CM_DEFLATE},
      {"top.v1/empty", "", 0, ZIP_CM_STORE},
      {"top.v1/empty_deflated", "", 0, ZIP_CM_DEFLATE},
  };
  char *path = make_zip(es, NN_ARRAY_LEN(es));
  capture c;
  capture_init(&c);
  fe_archive *a = fe_archive_open(path, &c.d);
  CHECK(a != NULL);
  CHECK_INT(c.d.errors, 0);
  if (!a) {
    fprintf(stderr, "%s", capture_text(&c));
    capture_fini(&c);
    return;
  }
  nn_arena *arena = nn_arena_new();
  CHECK_STR(fe_archive_path(a), path);
  CHECK_STR(fe_archive_prefix(a), "top.v1/");
  CHECK_INT(fe_archive_count(a), 4);
  CHECK_STR(fe_archive_entry(a, 0)->name, "top.v1/a.txt");
  CHECK_STR(fe_archive_entry(a, 0)->relname, "a.txt");
  CHECK_STR(fe_archive_entry(a, 1)->relname, "dir/b.txt");
  CHECK_STR(fe_archive_entry(a, 2)->relname, "empty");
  CHECK_STR(fe_archive_entry(a, 3)->relname, "empty_deflated");

  /* find: by relname, by full name, absent */
  const fe_entry *ea = fe_archive_find(a, "a.txt");
  const fe_entry *eb = fe_archive_find(a, "dir/b.txt");
  CHECK(ea == fe_archive_entry(a, 0));
  CHECK(eb == fe_archive_entry(a, 1));
  CHECK(fe_archive_find(a, "top.v1/dir/b.txt") == eb);
  CHECK(fe_archive_find(a, "b.txt") == NULL);
  CHECK(fe_archive_find(a, "dir") == NULL);
  CHECK(fe_archive_find(a, "") == NULL);

  /* stored entry: read, and map in place */
  CHECK_INT(ea->method, 0);
  CHECK_INT(ea->size, sizeof small - 1);
  CHECK_INT(ea->csize, sizeof small - 1);
  const void *p = NULL;
  size_t n = 0;
  CHECK_INT(fe_archive_read(a, ea, arena, &p, &n, &c.d), 0);
  CHECK_INT(n, sizeof small - 1);
  CHECK_STR((const char *)p, small); /* also checks the NUL terminator */
  size_t fsize = 0;
  const unsigned char *base = fe_archive_bytes(a, &fsize);
  /* local header: 30 bytes + "top.v1/a.txt" (12) + no extra field */
  CHECK_INT(ea->data_offset, 42);
  CHECK_INT(fe_archive_map(a, ea, &p, &n, &c.d), 0);
  CHECK(p == base + ea->data_offset);
  CHECK_INT(n, sizeof small - 1);
  CHECK(n <= fsize && (size_t)((const unsigned char *)p - base) <= fsize - n);
  CHECK(memcmp(p, small, n) == 0);

  /* deflated entry: read inflates, map refuses */
  CHECK_INT(eb->method, 8);
  CHECK_INT(eb->size, sizeof text_big - 1);
  CHECK(eb->csize < eb->size);
  CHECK_INT(fe_archive_read(a, eb, arena, &p, &n, &c.d), 0);
  CHECK_INT(n, sizeof text_big - 1);
  CHECK(memcmp(p, text_big, n) == 0);
  CHECK_INT(((const char *)p)[n], 0);
  CHECK_INT(c.d.errors, 0);
  CHECK_INT(fe_archive_map(a, eb, &p, &n, &c.d), -1);
  CHECK_INT(c.d.errors, 1);
  char want[2048];
  snprintf(want, sizeof want,
           "nncc: error: %s: entry 'top.v1/dir/b.txt' is compressed (method "
           "8); only stored entries can be mapped\n",
           path);
  CHECK_STR(capture_text(&c), want);

  /* zero-length entries */
  const fe_entry *ez = fe_archive_find(a, "empty");
  CHECK_INT(ez->size, 0);
  CHECK_INT(fe_archive_read(a, ez, arena, &p, &n, &c.d), 0);
  CHECK_INT(n, 0);
  CHECK_INT(((const char *)p)[0], 0);
  CHECK_INT(fe_archive_map(a, ez, &p, &n, &c.d), 0);
  CHECK_INT(n, 0);
  const fe_entry *ezd = fe_archive_find(a, "empty_deflated");
  CHECK_INT(fe_archive_read(a, ezd, arena, &p, &n, &c.d), 0);
  CHECK_INT(n, 0);
  CHECK_INT(c.d.errors, 1);

  fe_archive_close(a);
  nn_arena_free(arena);
  capture_fini(&c);
  unlink(path);
  free(path);
}

/* Without a common top folder the prefix is empty and relname == name. */
static void test_no_prefix(void) {
  const zentry mixed[] = {
      {"top/a", "1", 1, ZIP_CM_STORE},
      {"other/b", "2", 1, ZIP_CM_STORE},
  };
  const zentry flat[] = {
      {"version", "3\n", 2, ZIP_CM_STORE},
      {"top/b", "2", 1, ZIP_CM_STORE},
  };
  const zentry *cases[] = {mixed, flat};
  for (int k = 0; k < 2; k++) {
    char *path = make_zip(cases[k], 2);
    capture c;
    capture_init(&c);
    fe_archive *a = fe_archive_open(path, &c.d);
    CHECK(a != NULL);
    if (a) {
      CHECK_STR(fe_archive_prefix(a), "");
      CHECK_INT(fe_archive_count(a), 2);
      CHECK_STR(fe_archive_entry(a, 0)->relname, cases[k][0].name);
      CHECK_STR(fe_archive_entry(a, 1)->relname, cases[k][1].name);
      CHECK(fe_archive_find(a, cases[k][1].name) == fe_archive_entry(a, 1));
      CHECK(fe_archive_find(a, "b") == NULL);
    }
    fe_archive_close(a);
    capture_fini(&c);
    unlink(path);
    free(path);
  }
}

/* Corrupt data inside entries: a flipped byte in deflated data and in stored
 * data; an entry whose central directory record points past the file. */
static void test_corrupt_entries(void) {
  static const char small[] = "0123456789abcdef";
  const zentry es[] = {
      {"m/s.bin", small, sizeof small - 1, ZIP_CM_STORE},
      {"m/code.py", text_big, sizeof text_big - 1, ZIP_CM_DEFLATE},
  };
  char *path = make_zip(es, 2);
  size_t len = 0;
  unsigned char *buf = (unsigned char *)unit_read_file(path, &len);
  CHECK(buf != NULL);
  unlink(path);
  free(path);
  if (!buf) return;

  /* Find the data offsets with an intact copy first. */
  capture c;
  capture_init(&c);
  fe_archive *a = fe_archive_open_mem(buf, len, "m.pt", &c.d);
  CHECK(a != NULL);
  if (!a) return;
  uint64_t off_s = fe_archive_entry(a, 0)->data_offset;
  uint64_t off_d = fe_archive_entry(a, 1)->data_offset;
  uint64_t csize_d = fe_archive_entry(a, 1)->csize;
  fe_archive_close(a);
  capture_fini(&c);

  nn_arena *arena = nn_arena_new();
  const void *p;
  size_t n;

  /* stored: libzip's CRC check catches the flipped byte */
  buf[off_s + 3] ^= 0x20;
  capture_init(&c);
  a = fe_archive_open_mem(buf, len, "m.pt", &c.d);
  CHECK(a != NULL);
  if (a) {
    CHECK_INT(fe_archive_read(a, fe_archive_find(a, "s.bin"), arena, &p, &n, &c.d), -1);
    CHECK_INT(c.d.errors, 1);
    CHECK_STR(capture_text(&c), "nncc: error: m.pt: entry 'm/s.bin': read error: CRC error\n");
    /* mapping does not check the CRC: it hands out the bytes as they are */
    CHECK_INT(fe_archive_map(a, fe_archive_find(a, "s.bin"), &p, &n, &c.d), 0);
    CHECK_INT(((const char *)p)[3], '3' ^ 0x20);
  }
  fe_archive_close(a);
  capture_fini(&c);
  buf[off_s + 3] ^= 0x20;

  /* deflated: every single-byte corruption of the compressed data is
   * reported as an error naming the entry (or, rarely, survives as a
   * different but valid stream with a CRC mismatch); never a crash. */
  int reported = 0;
  for (uint64_t i = 0; i < csize_d; i++) {
    buf[off_d + i] ^= 0x5a;
    capture_init(&c);
    a = fe_archive_open_mem(buf, len, "m.pt", &c.d);
    CHECK(a != NULL);
    if (a) {
      int r = fe_archive_read(a, fe_archive_find(a, "code.py"), arena, &p, &n, &c.d);
      const char *t = capture_text(&c);
      if (r != 0) {
        reported++;
        CHECK_INT(c.d.errors, 1);
        CHECK(starts_with(t, "nncc: error: m.pt: entry 'm/code.py': "));
        CHECK(strstr(t, "read error: ") || strstr(t, "CRC mismatch"));
      } else {
        CHECK_INT(c.d.errors, 0);
      }
    }
    fe_archive_close(a);
    capture_fini(&c);
    buf[off_d + i] ^= 0x5a;
  }
  CHECK_INT(reported, (int)csize_d);

  /* the middle byte of the deflated data, exactly */
  buf[off_d + csize_d / 2] ^= 0xff;
  capture_init(&c);
  a = fe_archive_open_mem(buf, len, "m.pt", &c.d);
  if (a) {
    CHECK_INT(fe_archive_read(a, fe_archive_entry(a, 1), arena, &p, &n, &c.d), -1);
    const char *t = capture_text(&c);
    CHECK(starts_with(t, "nncc: error: m.pt: entry 'm/code.py': read error: "));
  }
  fe_archive_close(a);
  capture_fini(&c);
  buf[off_d + csize_d / 2] ^= 0xff;

  nn_arena_free(arena);
  free(buf);
}

/* Methods other than stored and deflate are refused by name, even where
 * libzip could decode them (checked only when this libzip writes bzip2). */
static void test_other_method(void) {
  if (!zip_compression_method_supported(ZIP_CM_BZIP2, 1)) return;
  const zentry es[] = {{"m/a.txt", text_big, 100, ZIP_CM_BZIP2}};
  char *path = make_zip(es, 1);
  capture c;
  capture_init(&c);
  fe_archive *a = fe_archive_open(path, &c.d);
  CHECK(a != NULL);
  if (a) {
    nn_arena *arena = nn_arena_new();
    const fe_entry *e = fe_archive_entry(a, 0);
    CHECK_INT(e->method, 12);
    const void *p;
    size_t n;
    CHECK_INT(fe_archive_read(a, e, arena, &p, &n, &c.d), -1);
    CHECK_INT(fe_archive_map(a, e, &p, &n, &c.d), -1);
    CHECK_INT(c.d.errors, 2);
    char want[2048];
    snprintf(want, sizeof want,
             "nncc: error: %s: entry 'm/a.txt': unsupported compression "
             "method 12\n"
             "nncc: error: %s: entry 'm/a.txt' is compressed (method 12); only "
             "stored entries can be mapped\n",
             path, path);
    CHECK_STR(capture_text(&c), want);
    nn_arena_free(arena);
  }
  fe_archive_close(a);
  capture_fini(&c);
  unlink(path);
  free(path);
}

/* ---- bad input -------------------------------------------------------- */

static void test_not_zip(void) {
  char *m = open_mem_fails("hello world\n", 12, "x.pt", __LINE__);
  CHECK_STR(m, "nncc: error: x.pt: not a zip archive (first bytes 68 65 6c 6c "
               "6f 20 77 6f)\n");
  free(m);
  m = open_mem_fails("PK", 2, "y.pt", __LINE__);
  CHECK_STR(m, "nncc: error: y.pt: not a zip archive (first bytes 50 4b)\n");
  free(m);
  m = open_mem_fails("", 0, "z.pt", __LINE__);
  CHECK_STR(m, "nncc: error: z.pt: empty file (0 bytes), not a zip archive\n");
  free(m);

  static unsigned char tar[1024];
  memcpy(tar, "model.pt", 8);
  memcpy(tar + 257,
         "ustar\0"
         "00",
         8);
  m = open_mem_fails(tar, sizeof tar, "old.pt", __LINE__);
  CHECK_STR(m, "nncc: error: old.pt: tar archive (torch.save format from "
               "before PyTorch 0.1.10) is not supported; re-save it with a "
               "newer PyTorch\n");
  free(m);

  /* a zip local header followed by garbage */
  static const char junk[] = "PK\x03\x04 this is not really a zip file at all";
  m = open_mem_fails(junk, sizeof junk - 1, "j.pt", __LINE__);
  CHECK_STR(m, "nncc: error: j.pt: truncated or corrupt zip archive: Not a "
               "zip archive\n");
  free(m);

  /* an empty file on disk, and a missing one */
  char *path = temp_path();
  capture c;
  capture_init(&c);
  CHECK(fe_archive_open(path, &c.d) == NULL);
  CHECK_INT(c.d.errors, 1);
  char want[2048];
  snprintf(want, sizeof want, "nncc: error: %s: empty file (0 bytes), not a zip archive\n", path);
  CHECK_STR(capture_text(&c), want);
  capture_fini(&c);
  unlink(path);
  capture_init(&c);
  CHECK(fe_archive_open(path, &c.d) == NULL);
  CHECK_INT(c.d.errors, 1);
  snprintf(want, sizeof want, "nncc: error: %s: cannot open: No such file or directory\n", path);
  CHECK_STR(capture_text(&c), want);
  capture_fini(&c);
  free(path);

  /* an empty zip (only an end record) is a zip with no entries */
  static const unsigned char empty_zip[22] = {'P', 'K', 5, 6};
  capture_init(&c);
  fe_archive *a = fe_archive_open_mem(empty_zip, sizeof empty_zip, "e", &c.d);
  CHECK(a != NULL);
  CHECK_INT(c.d.errors, 0);
  if (a) {
    CHECK_INT(fe_archive_count(a), 0);
    CHECK_STR(fe_archive_prefix(a), "");
    CHECK(fe_archive_find(a, "data.pkl") == NULL);
  }
  fe_archive_close(a);
  capture_fini(&c);
}

/* A central directory whose local header offset points past the file. */
static void test_bad_offsets(void) {
  const zentry es[] = {{"m/a", "abc", 3, ZIP_CM_STORE}, {"m/b", "defg", 4, ZIP_CM_STORE}};
  char *path = make_zip(es, 2);
  size_t len = 0;
  unsigned char *buf = (unsigned char *)unit_read_file(path, &len);
  unlink(path);
  free(path);
  CHECK(buf != NULL);
  if (!buf) return;
  /* the second central directory header: find its signature and name */
  unsigned char *cd = NULL;
  for (size_t i = 0; i + 49 < len; i++)
    if (memcmp(buf + i, "PK\x01\x02", 4) == 0 && memcmp(buf + i + 46, "m/b", 3) == 0) cd = buf + i;
  CHECK(cd != NULL);
  if (!cd) {
    free(buf);
    return;
  }
  unsigned char save[4];
  memcpy(save, cd + 42, 4);
  memcpy(cd + 42, "\x00\x00\x01\x00", 4); /* offset 65536 > file size */
  char *m = open_mem_fails(buf, len, "off.pt", __LINE__);
  CHECK_STR(m, "nncc: error: off.pt: truncated or corrupt zip archive: Not a "
               "zip archive\n");
  free(m);
  memcpy(cd + 42, save, 4);
  /* uncompressed size larger than the compressed one for a stored entry */
  memcpy(cd + 24, "\x00\x10\x00\x00", 4);
  m = open_mem_fails(buf, len, "size.pt", __LINE__);
  CHECK_STR(m, "nncc: error: size.pt: truncated or corrupt zip archive: Zip "
               "archive inconsistent\n");
  free(m);
  free(buf);
}

/* A zip written by hand the way large-file writers do it: sizes and the
 * local header offset are 0xFFFFFFFF in the central directory with the real
 * values in a zip64 extra field (id 0x0001), the end record points to a zip64
 * end record, and an "FB" extra field pads the data to offset 64. */
static size_t put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  return 2;
}

static size_t put32(unsigned char *p, uint32_t v) {
  put16(p, (uint16_t)v);
  put16(p + 2, (uint16_t)(v >> 16));
  return 4;
}

static size_t put64(unsigned char *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
  return 8;
}

static size_t make_zip64(unsigned char *b) {
  static const char name[] = "z64/data/0", data[] = "zip64 entry\n";
  const uint32_t crc = 0x2852a80d; /* CRC-32 of data */
  const uint16_t nlen = sizeof name - 1, dlen = sizeof data - 1;
  size_t o = 0;
  /* local header + zip64 extra (sizes) + FB padding up to offset 64 */
  uint16_t pad = (uint16_t)(64 - (30 + nlen + 20 + 4));
  o += put32(b + o, 0x04034b50);
  o += put16(b + o, 45);
  o += put16(b + o, 0);    /* flags */
  o += put16(b + o, 0);    /* stored */
  o += put16(b + o, 0);    /* time */
  o += put16(b + o, 0x21); /* date: 1980-01-01 */
  o += put32(b + o, crc);
  o += put32(b + o, 0xFFFFFFFFu);
  o += put32(b + o, 0xFFFFFFFFu);
  o += put16(b + o, nlen);
  o += put16(b + o, (uint16_t)(20 + 4 + pad));
  memcpy(b + o, name, nlen);
  o += nlen;
  o += put16(b + o, 0x0001);
  o += put16(b + o, 16);
  o += put64(b + o, dlen);
  o += put64(b + o, dlen);
  o += put16(b + o, 0x4246); /* "FB" */
  o += put16(b + o, pad);
  memset(b + o, 'Z', pad);
  o += pad;
  memcpy(b + o, data, dlen); /* o == 64 here */
  o += dlen;
  /* central directory header */
  size_t cd = o;
  o += put32(b + o, 0x02014b50);
  o += put16(b + o, 45);
  o += put16(b + o, 45);
  o += put16(b + o, 0);
  o += put16(b + o, 0);
  o += put16(b + o, 0);
  o += put16(b + o, 0x21);
  o += put32(b + o, crc);
  o += put32(b + o, 0xFFFFFFFFu);
  o += put32(b + o, 0xFFFFFFFFu);
  o += put16(b + o, nlen);
  o += put16(b + o, 28); /* extra: zip64 with 3 values */
  o += put16(b + o, 0);  /* comment */
  o += put16(b + o, 0);  /* disk */
  o += put16(b + o, 0);  /* internal attributes */
  o += put32(b + o, 0);  /* external attributes */
  o += put32(b + o, 0xFFFFFFFFu);
  memcpy(b + o, name, nlen);
  o += nlen;
  o += put16(b + o, 0x0001);
  o += put16(b + o, 24);
  o += put64(b + o, dlen);
  o += put64(b + o, dlen);
  o += put64(b + o, 0); /* local header offset */
  size_t cd_size = o - cd;
  /* zip64 end of central directory record and locator */
  size_t z64 = o;
  o += put32(b + o, 0x06064b50);
  o += put64(b + o, 44);
  o += put16(b + o, 45);
  o += put16(b + o, 45);
  o += put32(b + o, 0);
  o += put32(b + o, 0);
  o += put64(b + o, 1);
  o += put64(b + o, 1);
  o += put64(b + o, cd_size);
  o += put64(b + o, cd);
  o += put32(b + o, 0x07064b50);
  o += put32(b + o, 0);
  o += put64(b + o, z64);
  o += put32(b + o, 1);
  /* end of central directory record, all values deferred to zip64 */
  o += put32(b + o, 0x06054b50);
  o += put16(b + o, 0);
  o += put16(b + o, 0);
  o += put16(b + o, 0xFFFF);
  o += put16(b + o, 0xFFFF);
  o += put32(b + o, 0xFFFFFFFFu);
  o += put32(b + o, 0xFFFFFFFFu);
  o += put16(b + o, 0);
  return o;
}

static void test_zip64(void) {
  static unsigned char buf[512];
  size_t len = make_zip64(buf);
  capture c;
  capture_init(&c);
  fe_archive *a = fe_archive_open_mem(buf, len, "z64.pt", &c.d);
  CHECK(a != NULL);
  CHECK_INT(c.d.errors, 0);
  if (!a) {
    fprintf(stderr, "%s", capture_text(&c));
    capture_fini(&c);
    return;
  }
  nn_arena *arena = nn_arena_new();
  CHECK_STR(fe_archive_prefix(a), "z64/");
  CHECK_INT(fe_archive_count(a), 1);
  const fe_entry *e = fe_archive_find(a, "data/0");
  CHECK(e == fe_archive_entry(a, 0));
  CHECK_INT(e->size, 12);
  CHECK_INT(e->csize, 12);
  CHECK_INT(e->crc, 0x2852a80d);
  CHECK_INT(e->data_offset, 64);
  const void *p;
  size_t n;
  CHECK_INT(fe_archive_map(a, e, &p, &n, &c.d), 0);
  CHECK(p == buf + 64);
  CHECK_INT(n, 12);
  CHECK_INT(fe_archive_read(a, e, arena, &p, &n, &c.d), 0);
  CHECK_STR((const char *)p, "zip64 entry\n");
  CHECK_INT(c.d.errors, 0);
  fe_archive_close(a);
  nn_arena_free(arena);
  capture_fini(&c);
}

/* ---- real archives ---------------------------------------------------- */

static char *fixture(const char *name) {
  const char *p = unit_real_fixture(name);
  return p ? strdup(p) : NULL;
}

/* Opens a real archive, checks the entries every TorchScript archive has and
 * that every entry's data starts at a multiple of 64 (all real files have
 * the FB padding). */
static fe_archive *open_real(const char *path, const char *prefix, int count, capture *c) {
  fe_archive *a = fe_archive_open(path, &c->d);
  CHECK(a != NULL);
  CHECK_INT(c->d.errors, 0);
  if (!a) return NULL;
  CHECK_STR(fe_archive_prefix(a), prefix);
  CHECK_INT(fe_archive_count(a), count);
  for (int i = 0; i < fe_archive_count(a); i++) {
    const fe_entry *e = fe_archive_entry(a, i);
    CHECK_INT(e->data_offset % 64, 0);
    CHECK(fe_archive_find(a, e->relname) == e);
    CHECK(fe_archive_find(a, e->name) == e);
  }
  return a;
}

static void check_version(fe_archive *a, nn_arena *arena, const char *want, capture *c) {
  const fe_entry *e = fe_archive_find(a, "version");
  CHECK(e != NULL);
  if (!e) return;
  const void *p;
  size_t n;
  CHECK_INT(fe_archive_read(a, e, arena, &p, &n, &c->d), 0);
  CHECK_STR((const char *)p, want);
}

static int test_real(void) {
  int found = 0;
  nn_arena *arena = nn_arena_new();
  const void *p;
  size_t n;
  capture c;

  char *path = fixture("xta0_linreg_v1_2020.pt");
  if (path) {
    found++;
    capture_init(&c);
    fe_archive *a = open_real(path, "model/", 21, &c);
    if (a) {
      CHECK(fe_archive_find(a, "data.pkl") != NULL);
      CHECK(fe_archive_find(a, "constants.pkl") != NULL);
      check_version(a, arena, "1\n", &c);
      const fe_entry *e = fe_archive_find(a, "data/2");
      CHECK(e == fe_archive_entry(a, 3));
      CHECK_INT(e->method, 0);
      CHECK_INT(e->size, 676);
      CHECK_INT(e->data_offset, 384);
      CHECK_INT(e->crc, 0xff8b217c);
      size_t fsize;
      const unsigned char *base = fe_archive_bytes(a, &fsize);
      CHECK_INT(fsize, 8854);
      CHECK_INT(fe_archive_map(a, e, &p, &n, &c.d), 0);
      CHECK(p == base + 384);
      CHECK_INT(n, 676);
      /* every entry reads, inflated ones included, with CRCs checked */
      for (int i = 0; i < fe_archive_count(a); i++) {
        const fe_entry *ei = fe_archive_entry(a, i);
        CHECK_INT(fe_archive_read(a, ei, arena, &p, &n, &c.d), 0);
        CHECK_INT(n, ei->size);
      }
      e = fe_archive_find(a, "code/__torch__/torch/nn/modules/module/"
                             "___torch_mangle_4.py");
      CHECK(e != NULL);
      if (e) {
        CHECK_INT(e->method, 8);
        CHECK_INT(e->size, 830);
        CHECK_INT(e->csize, 257);
        CHECK_INT(e->data_offset, 2560);
      }
      CHECK_INT(c.d.errors, 0);
    }
    fe_archive_close(a);
    capture_fini(&c);
    free(path);
  }

  path = fixture("tch-rs_foo4_v1_2019-12.pt");
  if (path) {
    found++;
    capture_init(&c);
    fe_archive *a = open_real(path, "foo4/", 5, &c);
    if (a) {
      CHECK(fe_archive_find(a, "data.pkl") == fe_archive_entry(a, 4));
      CHECK(fe_archive_find(a, "constants.pkl") == fe_archive_entry(a, 3));
      check_version(a, arena, "1\n", &c);
      const fe_entry *e = fe_archive_find(a, "constants.pkl");
      CHECK_INT(fe_archive_map(a, e, &p, &n, &c.d), 0);
      CHECK_INT(n, 4);
      CHECK(memcmp(p, "\x80\x02).", 4) == 0);
      e = fe_archive_find(a, "code/__torch__.py");
      CHECK_INT(e->method, 8);
      CHECK_INT(e->size, 226);
      CHECK_INT(e->csize, 166);
      CHECK_INT(fe_archive_read(a, e, arena, &p, &n, &c.d), 0);
      CHECK_INT(n, 226);
      CHECK(starts_with(p, "op_version_set = 1\nclass Foo4(Module):\n"));
      CHECK_INT(c.d.errors, 0);
      CHECK_INT(fe_archive_map(a, e, &p, &n, &c.d), -1);
      char want[4200];
      snprintf(want, sizeof want,
               "nncc: error: %s: entry 'foo4/code/__torch__.py' is compressed "
               "(method 8); only stored entries can be mapped\n",
               path);
      CHECK_STR(capture_text(&c), want);
    }
    fe_archive_close(a);
    capture_fini(&c);

    /* Cut at every length: one error each, never a crash. */
    size_t len = 0;
    char *buf = unit_read_file(path, &len);
    CHECK_INT(len, 1446);
    for (size_t cut = 0; buf && cut < len; cut++) {
      char *m = open_mem_fails(buf, cut, "cut.pt", __LINE__);
      if (cut == 0)
        CHECK_STR(m, "nncc: error: cut.pt: empty file (0 bytes), not a zip "
                     "archive\n");
      else if (cut < 4)
        CHECK(starts_with(m, "nncc: error: cut.pt: not a zip archive (first "
                             "bytes 50"));
      else
        CHECK(starts_with(m, "nncc: error: cut.pt: truncated or corrupt zip "
                             "archive: "));
      free(m);
    }
    /* the first half, exactly */
    char *m = open_mem_fails(buf, len / 2, "half.pt", __LINE__);
    CHECK_STR(m, "nncc: error: half.pt: truncated or corrupt zip archive: Not "
                 "a zip archive\n");
    free(m);
    free(buf);
    free(path);
  }

  path = fixture("tch-rs_foo_legacy_2019.pt");
  if (path) {
    found++;
    capture_init(&c);
    fe_archive *a = open_real(path, "foo/", 5, &c);
    if (a) {
      const fe_entry *e = fe_archive_find(a, "model.json");
      CHECK(e == fe_archive_entry(a, 4));
      CHECK_INT(fe_archive_read(a, e, arena, &p, &n, &c.d), 0);
      CHECK_INT(n, 349);
      CHECK(starts_with(p, "{\"protoVersion\":\"3\","));
      CHECK(fe_archive_find(a, "foo/model.json") == e);
      CHECK(fe_archive_find(a, "code/foo.py") == fe_archive_entry(a, 1));
    }
    fe_archive_close(a);
    capture_fini(&c);
    free(path);
  }

  path = fixture("torch-js_test_model_PYTORCH1_2018-11.pt");
  if (path) {
    found++;
    capture_init(&c);
    CHECK(fe_archive_open(path, &c.d) == NULL);
    CHECK_INT(c.d.errors, 1);
    char want[4200];
    snprintf(want, sizeof want,
             "nncc: error: %s: PyTorch 1.0 preview container (PYTORCH1) is not "
             "supported; re-save the model with torch.jit.save from PyTorch "
             "1.0 or newer\n",
             path);
    CHECK_STR(capture_text(&c), want);
    capture_fini(&c);
    free(path);
  }

  path = fixture("pickle-jl_bool_torchsave-legacy_2020.bin");
  if (path) {
    found++;
    capture_init(&c);
    CHECK(fe_archive_open(path, &c.d) == NULL);
    CHECK_INT(c.d.errors, 1);
    char want[4200];
    snprintf(want, sizeof want,
             "nncc: error: %s: this is a torch.save pickle stream, not a "
             "TorchScript archive\n",
             path);
    CHECK_STR(capture_text(&c), want);
    capture_fini(&c);
    free(path);
  }

  nn_arena_free(arena);
  return found;
}

int main(void) {
  const char *t = getenv("NNCC_TEST_TMP");
  snprintf(tmp_dir, sizeof tmp_dir, "%s", t && *t ? t : "/tmp");
  test_written_zip();
  test_no_prefix();
  test_corrupt_entries();
  test_other_method();
  test_not_zip();
  test_bad_offsets();
  test_zip64();
  int found = test_real();
  int rc = unit_report("archive");
  if (rc == 0 && found == 0) unit_skip("real fixtures absent (set NNCC_FIXTURES_REAL)");
  return rc;
}
