/* archive.c — the zip layer: the user's file as a list of named entries.
 *
 * Every input nncc reads (new and legacy TorchScript archives, torch.save
 * zips) is a zip file whose entries sit under one top folder. This file opens
 * it, tells the user precisely what it is when it is not a zip (the PYTORCH1
 * preview container, a legacy torch.save pickle stream, a tar file, an empty
 * file), and offers two ways to get at an entry's bytes:
 *
 *   - fe_archive_read: through libzip, which inflates deflated entries; the
 *     result is copied into the caller's arena and its CRC-32 is checked.
 *   - fe_archive_map: for stored entries only, a pointer straight into the
 *     read-only mapping of the file (tensor data is used in place).
 *
 * libzip does not tell where an entry's data begins, so the central
 * directory (with its zip64 records) and each local header are also parsed
 * here, over the mapping, with every length and offset checked against the
 * file size. Both views are cross-checked entry by entry: a file that libzip
 * and this parser read differently is reported as corrupt.
 *
 * The archive owns a private arena for its entry table and names; it lives
 * until fe_archive_close().
 */
#include "frontend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

/* Per-entry facts the public fe_entry does not carry. */
typedef struct entry_extra {
  uint16_t flags;      /* general purpose bit flags from the central directory */
  uint64_t header_off; /* offset of the entry's local header */
} entry_extra;

struct fe_archive {
  nn_arena *arena;             /* owns everything below except the mapping */
  const char *path;            /* file path or caller's label */
  const unsigned char *bytes;  /* the whole file (mapping or caller buffer) */
  size_t size;                 /* bytes at `bytes` */
  int mapped;                  /* 1 when `bytes` must be munmap()ed */
  zip_t *zip;                  /* libzip's view of the same bytes */
  const char *prefix;          /* top folder with '/', or "" */
  fe_entry *entries;           /* count entries, in central-directory order */
  entry_extra *extra;          /* count entries, parallel to `entries` */
  const fe_entry **by_relname; /* entries sorted by relname, then position */
  int count;                   /* number of entries */
};

/* Inflated sizes beyond this ratio to the compressed size are impossible for
 * deflate (its best case is about 1032:1), so such a claim is corrupt. */
#define DEFLATE_MAX_RATIO 1040u
/* Hard cap on what fe_archive_read will allocate beyond the file size. */
#define READ_SLACK ((uint64_t)1 << 30)

static nn_loc file_loc(const char *path) {
  nn_loc l = {path, 0, 0};
  return l;
}

/* ---- little-endian readers (callers check bounds first) --------------- */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const unsigned char *p) {
  return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

/* True when [off, off+len) lies inside a file of `size` bytes. */
static int in_file(uint64_t off, uint64_t len, size_t size) {
  return off <= size && len <= size - off;
}

/* ---- CRC-32 (the zip polynomial, reflected 0xEDB88320) ---------------- */

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

/* ---- recognising what the file is ------------------------------------- */

/* Reports why `b` is not a zip archive we read and returns -1, or returns 0
 * when it starts like a zip (a local header, or the end record of an empty
 * zip). */
static int sniff(const char *path, const unsigned char *b, size_t n, nn_diag *d) {
  static const unsigned char legacy_magic[12] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                                 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  nn_loc loc = file_loc(path);
  if (n == 0) {
    nn_error(d, loc, "empty file (0 bytes), not a zip archive");
    return -1;
  }
  if (n >= 4 && memcmp(b, "PK\x03\x04", 4) == 0) return 0;
  if (n >= 22 && memcmp(b, "PK\x05\x06", 4) == 0) return 0; /* empty zip */
  if (n >= 8 && memcmp(b, "PYTORCH1", 8) == 0) {
    nn_error(d, loc,
             "PyTorch 1.0 preview container (PYTORCH1) is not supported; "
             "re-save the model with torch.jit.save from PyTorch 1.0 or newer");
    return -1;
  }
  /* PROTO n, then LONG1 of torch.save's magic number 0x1950a86a20f9469cfc6c. */
  if (n >= 14 && b[0] == 0x80 && memcmp(b + 2, legacy_magic, 12) == 0) {
    nn_error(d, loc, "this is a torch.save pickle stream, not a TorchScript archive");
    return -1;
  }
  if (n >= 262 && memcmp(b + 257, "ustar", 5) == 0) {
    nn_error(d, loc,
             "tar archive (torch.save format from before PyTorch 0.1.10) is "
             "not supported; re-save it with a newer PyTorch");
    return -1;
  }
  char hex[3 * 8 + 1] = "";
  size_t k = n < 8 ? n : 8, len = 0;
  for (size_t i = 0; i < k; i++)
    len += (size_t)snprintf(hex + len, sizeof hex - len, i ? " %02x" : "%02x", b[i]);
  nn_error(d, loc, "not a zip archive (first bytes %s)", hex);
  return -1;
}

/* ---- the central directory, parsed over the mapping ------------------- */

/* Where the central directory is, from the end records. */
typedef struct cdir_info {
  uint64_t offset; /* of the first central directory header */
  uint64_t size;   /* bytes of central directory */
  uint64_t count;  /* number of entries */
} cdir_info;

/* Finds the end of central directory record and, when present, the zip64
 * locator and record after it. Returns NULL on success or a reason. */
static const char *find_cdir(const unsigned char *b, size_t n, cdir_info *ci) {
  if (n < 22) return "file too small for an end of central directory record";
  /* The record is 22 bytes plus a comment of at most 65535 bytes. */
  size_t lowest = n - 22 > 65535 ? n - 22 - 65535 : 0;
  size_t eocd = SIZE_MAX;
  for (size_t p = n - 22 + 1; p-- > lowest;) {
    if (rd32(b + p) == 0x06054b50 && p + 22 + rd16(b + p + 20) <= n) {
      eocd = p;
      break;
    }
  }
  if (eocd == SIZE_MAX) return "no end of central directory record";
  const unsigned char *e = b + eocd;
  ci->count = rd16(e + 10);
  ci->size = rd32(e + 12);
  ci->offset = rd32(e + 16);
  if (eocd >= 20 && rd32(b + eocd - 20) == 0x07064b50) {
    uint64_t z = rd64(b + eocd - 20 + 8);
    if (!in_file(z, 56, n) || rd32(b + z) != 0x06064b50)
      return "zip64 end of central directory locator points outside the file";
    ci->count = rd64(b + z + 32);
    ci->size = rd64(b + z + 40);
    ci->offset = rd64(b + z + 48);
  }
  if (!in_file(ci->offset, ci->size, n)) return "central directory lies outside the file";
  return NULL;
}

/* One central directory header, decoded. */
typedef struct cdir_entry {
  const unsigned char *name; /* raw name bytes inside the mapping */
  size_t name_len;           /* bytes of name */
  uint16_t flags;            /* general purpose bit flags */
  uint16_t method;           /* compression method */
  uint64_t csize, usize;     /* sizes, zip64 extra applied */
  uint64_t header_off;       /* local header offset, zip64 extra applied */
  size_t next;               /* offset of the following header */
} cdir_entry;

/* Decodes the central directory header at `off`, which must end before
 * `end`. Returns NULL or a reason. */
static const char *read_cdir_entry(const unsigned char *b, size_t off, size_t end, cdir_entry *ce) {
  if (off > end || end - off < 46 || rd32(b + off) != 0x02014b50)
    return "bad central directory header";
  const unsigned char *h = b + off;
  size_t nlen = rd16(h + 28), elen = rd16(h + 30), clen = rd16(h + 32);
  if (end - off - 46 < nlen + elen + clen)
    return "central directory header runs past the directory";
  ce->name = h + 46;
  ce->name_len = nlen;
  ce->flags = rd16(h + 8);
  ce->method = rd16(h + 10);
  ce->csize = rd32(h + 20);
  ce->usize = rd32(h + 24);
  ce->header_off = rd32(h + 42);
  ce->next = off + 46 + nlen + elen + clen;
  /* Zip64 extended information (id 0x0001): the 8-byte values replace the
   * 32-bit fields that hold 0xFFFFFFFF, in this order. */
  const unsigned char *x = h + 46 + nlen, *xend = x + elen;
  while (xend - x >= 4) {
    uint16_t id = rd16(x), len = rd16(x + 2);
    if ((size_t)(xend - x - 4) < len) return "extra field runs past its header";
    if (id == 0x0001) {
      const unsigned char *v = x + 4, *vend = v + len;
      uint64_t *fields[3] = {&ce->usize, &ce->csize, &ce->header_off};
      for (int i = 0; i < 3; i++) {
        if (*fields[i] != 0xFFFFFFFFu) continue;
        if (vend - v < 8) return "zip64 extra field too short";
        *fields[i] = rd64(v);
        v += 8;
      }
    }
    x += 4 + len;
  }
  return NULL;
}

/* Returns the offset of an entry's data from its local header, or reports
 * and returns UINT64_MAX. */
static uint64_t local_data_offset(const fe_archive *a, const char *name, uint64_t header_off,
                                  nn_diag *d) {
  const unsigned char *b = a->bytes;
  if (!in_file(header_off, 30, a->size) || rd32(b + header_off) != 0x04034b50) {
    nn_error(d, file_loc(a->path), "entry '%s': no local file header at offset %llu", name,
             (unsigned long long)header_off);
    return UINT64_MAX;
  }
  uint64_t off = header_off + 30 + rd16(b + header_off + 26) + rd16(b + header_off + 28);
  if (off > a->size) {
    nn_error(d, file_loc(a->path),
             "entry '%s': local file header at offset %llu runs past the end "
             "of the file",
             name, (unsigned long long)header_off);
    return UINT64_MAX;
  }
  return off;
}

/* ---- building the entry table ----------------------------------------- */

/* A byte range of the file owned by one entry (local header and data) or by
 * the central directory (entry -1). */
typedef struct span {
  uint64_t start, end; /* [start, end) */
  int entry;           /* index into a->entries, or -1 */
} span;

static int cmp_span(const void *x, const void *y) {
  const span *s = x, *t = y;
  if (s->start != t->start) return s->start < t->start ? -1 : 1;
  return (s->entry > t->entry) - (s->entry < t->entry);
}

/* Fails (after reporting) when two entries share bytes, or an entry runs
 * into the central directory: two directory records pointing at one local
 * header, or data that covers another entry's header. libzip reads such
 * files without complaint, but no zip writer produces them and they let
 * one archive show different contents to different readers. */
static int check_overlaps(fe_archive *a, const cdir_info *ci, nn_diag *d) {
  int n = a->count;
  span *s = nn_alloc(a->arena, sizeof(span) * (size_t)(n + 1));
  for (int i = 0; i < n; i++)
    s[i] = (span){a->extra[i].header_off, a->entries[i].data_offset + a->entries[i].csize, i};
  s[n] = (span){ci->offset, ci->offset + ci->size, -1};
  qsort(s, (size_t)n + 1, sizeof(span), cmp_span);
  const span *far = NULL; /* the span reaching furthest so far */
  for (int i = 0; i <= n; i++) {
    if (s[i].start == s[i].end) continue; /* an empty central directory */
    if (far && far->end > s[i].start) {
      const span *x = far->entry < s[i].entry ? far : &s[i];
      const span *y = x == far ? &s[i] : far;
      if (x->entry < 0)
        nn_error(d, file_loc(a->path),
                 "truncated or corrupt zip archive: entry '%s' overlaps the "
                 "central directory",
                 a->entries[y->entry].name);
      else
        nn_error(d, file_loc(a->path),
                 "truncated or corrupt zip archive: entries '%s' and '%s' "
                 "overlap (local headers at offsets %llu and %llu)",
                 a->entries[x->entry].name, a->entries[y->entry].name, (unsigned long long)x->start,
                 (unsigned long long)y->start);
      return -1;
    }
    if (!far || s[i].end > far->end) far = &s[i];
  }
  return 0;
}

/* Orders entries by relname; equal names keep archive order (all entries
 * are in one array, so comparing their addresses compares positions). */
static int cmp_relname(const void *x, const void *y) {
  const fe_entry *e = *(const fe_entry *const *)x;
  const fe_entry *f = *(const fe_entry *const *)y;
  int c = strcmp(e->relname, f->relname);
  return c ? c : (e > f) - (e < f);
}

/* Fills a->entries from libzip and the central directory. Returns 0, or -1
 * after reporting. */
static int load_entries(fe_archive *a, nn_diag *d) {
  nn_loc loc = file_loc(a->path);
  zip_int64_t n = zip_get_num_entries(a->zip, 0);
  if (n < 0 || n > INT32_MAX / 2) {
    nn_error(d, loc, "truncated or corrupt zip archive: bad entry count");
    return -1;
  }
  cdir_info ci;
  const char *why = find_cdir(a->bytes, a->size, &ci);
  if (!why && ci.count != (uint64_t)n) why = "central directory entry count disagrees with libzip";
  if (why) {
    nn_error(d, loc, "truncated or corrupt zip archive: %s", why);
    return -1;
  }
  a->count = (int)n;
  a->entries = nn_alloc(a->arena, sizeof(fe_entry) * (size_t)(n + 1));
  a->extra = nn_alloc(a->arena, sizeof(entry_extra) * (size_t)(n + 1));
  size_t off = (size_t)ci.offset, end = (size_t)(ci.offset + ci.size);
  for (int i = 0; i < a->count; i++) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(a->zip, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) != 0) {
      nn_error(d, loc, "truncated or corrupt zip archive: entry %d: %s", i, zip_strerror(a->zip));
      return -1;
    }
    const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_CRC |
                              ZIP_STAT_COMP_METHOD;
    if ((st.valid & need) != need) {
      nn_error(d, loc,
               "truncated or corrupt zip archive: entry %d: incomplete "
               "central directory record",
               i);
      return -1;
    }
    cdir_entry ce;
    why = read_cdir_entry(a->bytes, off, end, &ce);
    if (!why && (ce.name_len != strlen(st.name) || memcmp(ce.name, st.name, ce.name_len) != 0))
      why = "name differs between libzip and the central directory";
    if (!why && (ce.csize != st.comp_size || ce.usize != st.size))
      why = "sizes differ between libzip and the central directory";
    if (why) {
      nn_error(d, loc, "truncated or corrupt zip archive: entry %d ('%s'): %s", i, st.name, why);
      return -1;
    }
    off = ce.next;
    fe_entry *e = &a->entries[i];
    e->name = nn_strdup(a->arena, st.name);
    e->size = st.size;
    e->csize = st.comp_size;
    e->method = st.comp_method;
    e->crc = st.crc;
    a->extra[i].flags = ce.flags;
    a->extra[i].header_off = ce.header_off;
    e->data_offset = local_data_offset(a, e->name, ce.header_off, d);
    if (e->data_offset == UINT64_MAX) return -1;
    if (!in_file(e->data_offset, e->csize, a->size)) {
      nn_error(d, loc,
               "entry '%s': data (%llu bytes at offset %llu) runs past the "
               "end of the file (%zu bytes)",
               e->name, (unsigned long long)e->csize, (unsigned long long)e->data_offset, a->size);
      return -1;
    }
  }

  if (check_overlaps(a, &ci, d) != 0) return -1;

  /* The top folder: the first entry's first path component, when every
   * entry shares it. */
  a->prefix = "";
  if (a->count > 0) {
    const char *slash = strchr(a->entries[0].name, '/');
    if (slash) {
      size_t plen = (size_t)(slash - a->entries[0].name) + 1;
      int all = 1;
      for (int i = 0; i < a->count && all; i++)
        all = strncmp(a->entries[i].name, a->entries[0].name, plen) == 0;
      if (all) a->prefix = nn_strndup(a->arena, a->entries[0].name, plen);
    }
  }
  size_t plen = strlen(a->prefix);
  for (int i = 0; i < a->count; i++) a->entries[i].relname = a->entries[i].name + plen;

  a->by_relname = nn_alloc(a->arena, sizeof(fe_entry *) * (size_t)(a->count + 1));
  for (int i = 0; i < a->count; i++) a->by_relname[i] = &a->entries[i];
  qsort(a->by_relname, (size_t)a->count, sizeof(fe_entry *), cmp_relname);
  return 0;
}

/* ---- opening and closing ---------------------------------------------- */

/* Common tail of both open functions: `bytes` is already set. Takes over
 * (and on failure releases) a's arena and mapping. */
static fe_archive *open_bytes(fe_archive *a, nn_diag *d) {
  if (sniff(a->path, a->bytes, a->size, d) != 0) goto fail;
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t *src = zip_source_buffer_create(a->bytes, a->size, 0, &err);
  if (src) {
    a->zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!a->zip) zip_source_free(src);
  }
  if (!a->zip) {
    /* libzip words a repeated name as "File already exists". */
    nn_error(d, file_loc(a->path), "truncated or corrupt zip archive: %s",
             zip_error_code_zip(&err) == ZIP_ER_EXISTS ? "two entries have the same name"
                                                       : zip_error_strerror(&err));
    zip_error_fini(&err);
    goto fail;
  }
  zip_error_fini(&err);
  if (load_entries(a, d) != 0) goto fail;
  return a;
fail:
  fe_archive_close(a);
  return NULL;
}

fe_archive *fe_archive_open(const char *path, nn_diag *d) {
  nn_arena *arena = nn_arena_new();
  fe_archive *a = nn_alloc(arena, sizeof *a);
  a->arena = arena;
  a->path = nn_strdup(arena, path);
  nn_loc loc = file_loc(a->path);
  /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    nn_error(d, loc, "cannot open: %s", strerror(errno));
    goto fail;
  }
  if (S_ISDIR(sb.st_mode)) {
    nn_error(d, loc, "is a directory, not a file");
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    nn_error(d, loc, "not a regular file");
    goto fail;
  }
  if (sb.st_size > 0) {
    if ((uint64_t)sb.st_size > SIZE_MAX) {
      nn_error(d, loc, "file too large to map");
      goto fail;
    }
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      nn_error(d, loc, "cannot map: %s", strerror(errno));
      goto fail;
    }
    a->bytes = m;
    a->size = (size_t)sb.st_size;
    a->mapped = 1;
  } else {
    a->bytes = (const unsigned char *)"";
  }
  close(fd);
  return open_bytes(a, d);
fail:
  if (fd >= 0) close(fd);
  nn_arena_free(arena);
  return NULL;
}

fe_archive *fe_archive_open_mem(const void *data, size_t size, const char *label, nn_diag *d) {
  nn_arena *arena = nn_arena_new();
  fe_archive *a = nn_alloc(arena, sizeof *a);
  a->arena = arena;
  a->path = nn_strdup(arena, label ? label : "<memory>");
  a->bytes = size ? data : (const unsigned char *)"";
  a->size = size;
  return open_bytes(a, d);
}

void fe_archive_close(fe_archive *a) {
  if (!a) return;
  if (a->zip) zip_discard(a->zip);
  if (a->mapped) munmap((void *)a->bytes, a->size);
  nn_arena_free(a->arena);
}

/* ---- queries ---------------------------------------------------------- */

const char *fe_archive_path(const fe_archive *a) { return a->path; }

const char *fe_archive_prefix(const fe_archive *a) { return a->prefix; }

int fe_archive_count(const fe_archive *a) { return a->count; }

const fe_entry *fe_archive_entry(const fe_archive *a, int i) {
  NN_ASSERT(i >= 0 && i < a->count);
  return &a->entries[i];
}

/* The first entry (in archive order) whose relname is `rel`, or NULL. */
static const fe_entry *find_rel(const fe_archive *a, const char *rel) {
  int lo = 0, hi = a->count; /* first position whose relname >= rel */
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (strcmp(a->by_relname[mid]->relname, rel) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < a->count && strcmp(a->by_relname[lo]->relname, rel) == 0) return a->by_relname[lo];
  return NULL;
}

const fe_entry *fe_archive_find(const fe_archive *a, const char *relname) {
  const fe_entry *e = find_rel(a, relname);
  size_t plen = strlen(a->prefix);
  if (!e && plen && strncmp(relname, a->prefix, plen) == 0)
    e = find_rel(a, relname + plen); /* a full name */
  return e;
}

const unsigned char *fe_archive_bytes(const fe_archive *a, size_t *size) {
  if (size) *size = a->size;
  return a->bytes;
}

/* Index of an entry handed out by this archive. */
static int entry_index(const fe_archive *a, const fe_entry *e) {
  NN_ASSERT(e >= a->entries && e < a->entries + a->count);
  return (int)(e - a->entries);
}

/* ---- reading ---------------------------------------------------------- */

int fe_archive_read(fe_archive *a, const fe_entry *e, nn_arena *arena, const void **data,
                    size_t *size, nn_diag *d) {
  int idx = entry_index(a, e);
  nn_loc loc = file_loc(a->path);
  if (e->method != 0 && e->method != 8) {
    nn_error(d, loc, "entry '%s': unsupported compression method %d", e->name, e->method);
    return -1;
  }
  if (a->extra[idx].flags & 1) {
    nn_error(d, loc, "entry '%s' is encrypted", e->name);
    return -1;
  }
  /* A stored entry holds exactly its bytes; deflate cannot expand more than
   * about 1032:1. Anything else is a corrupt directory, refused before
   * allocating. */
  int absurd = e->method == 0 ? (e->size != e->csize || e->size > a->size)
                              : (e->size > READ_SLACK + a->size ||
                                 e->size > e->csize * DEFLATE_MAX_RATIO + 64);
  if (absurd || e->size >= SIZE_MAX) {
    nn_error(d, loc, "entry '%s': implausible size %llu (%llu bytes compressed)", e->name,
             (unsigned long long)e->size, (unsigned long long)e->csize);
    return -1;
  }
  size_t n = (size_t)e->size;
  unsigned char *buf = nn_alloc(arena, n + 1);
  zip_file_t *f = zip_fopen_index(a->zip, (zip_uint64_t)idx, 0);
  if (!f) {
    nn_error(d, loc, "entry '%s': read error: %s", e->name, zip_strerror(a->zip));
    return -1;
  }
  size_t got = 0;
  const char *why = NULL;
  while (got < n) {
    zip_int64_t r = zip_fread(f, buf + got, n - got);
    if (r < 0) {
      why = zip_file_strerror(f);
      break;
    }
    if (r == 0) {
      why = "data ends before the size in the central directory";
      break;
    }
    got += (size_t)r;
  }
  /* Reading on to the end lets libzip check the CRC and notice extra data. */
  unsigned char extra;
  if (!why) {
    zip_int64_t r = zip_fread(f, &extra, 1);
    if (r < 0)
      why = zip_file_strerror(f);
    else if (r > 0)
      why = "data continues past the size in the central directory";
  }
  if (why) {
    nn_error(d, loc, "entry '%s': read error: %s", e->name, why);
    zip_fclose(f);
    return -1;
  }
  zip_fclose(f);
  uint32_t crc = crc32_of(buf, n);
  if (crc != e->crc) {
    nn_error(d, loc,
             "entry '%s': CRC mismatch (central directory 0x%08x, data "
             "0x%08x)",
             e->name, e->crc, crc);
    return -1;
  }
  buf[n] = 0;
  *data = buf;
  *size = n;
  return 0;
}

int fe_archive_map(fe_archive *a, const fe_entry *e, const void **data, size_t *size, nn_diag *d) {
  int idx = entry_index(a, e);
  nn_loc loc = file_loc(a->path);
  if (e->method != 0) {
    nn_error(d, loc,
             "entry '%s' is compressed (method %d); only stored entries can "
             "be mapped",
             e->name, e->method);
    return -1;
  }
  if (a->extra[idx].flags & 1) {
    nn_error(d, loc, "entry '%s' is encrypted", e->name);
    return -1;
  }
  if (e->size != e->csize) {
    nn_error(d, loc,
             "entry '%s' is stored but its sizes differ (%llu compressed, "
             "%llu uncompressed)",
             e->name, (unsigned long long)e->csize, (unsigned long long)e->size);
    return -1;
  }
  if (!in_file(e->data_offset, e->size, a->size)) {
    nn_error(d, loc,
             "entry '%s': data (%llu bytes at offset %llu) runs past the end "
             "of the file (%zu bytes)",
             e->name, (unsigned long long)e->size, (unsigned long long)e->data_offset, a->size);
    return -1;
  }
  *data = a->bytes + e->data_offset;
  *size = (size_t)e->size;
  return 0;
}
