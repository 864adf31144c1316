/* import_run.h — what the whole-import fuzz targets share.
 *
 * fuzz_import.c and fuzz_modeljson.c both end in import_run(): the bytes of
 * a model file go into an anonymous memory file (memfd, named through
 * /proc/self/fd since fe_import takes a path), then fe_import and fe_lower
 * run on it as `nncc MODEL --emit=ir` would, diagnostics to /dev/null. The
 * only outcomes allowed are a graph or reported errors; a failure that
 * reports nothing aborts, and so does any crash, sanitizer report or hang.
 *
 * Both targets also build model files from parts: zip_pack() writes a
 * valid stored zip (correct CRCs, no compression) from a list of entries, so
 * that mutations reach the pickles, model.json and the code instead of
 * breaking a CRC.
 */
#ifndef NNCC_FUZZ_IMPORT_RUN_H
#define NNCC_FUZZ_IMPORT_RUN_H

#include "frontend/frontend.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* One entry for zip_pack. */
typedef struct zip_part {
  const uint8_t *name; /* entry name bytes (at most 0xffff) */
  size_t name_len;     /* bytes of name */
  const uint8_t *data; /* entry bytes (fewer than 2^32) */
  size_t len;          /* bytes of data */
} zip_part;

static FILE *import_null_out(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  return f;
}

static uint32_t import_crc32(const uint8_t *p, size_t n) {
  static uint32_t table[256];
  if (!table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

static void import_put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void import_put32(uint8_t *p, uint32_t v) {
  import_put16(p, v & 0xffff);
  import_put16(p + 2, v >> 16);
}

/* A stored zip of parts[0..n) in a malloc'd buffer; its length in *out_len.
 * The caller keeps names under 64 KiB and data under 4 GiB. */
static uint8_t *zip_pack(const zip_part *parts, int n, size_t *out_len) {
  size_t total = 22;
  for (int k = 0; k < n; k++) total += 30 + 46 + 2 * parts[k].name_len + parts[k].len;
  uint8_t *z = malloc(total);
  uint32_t *offs = malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
  if (!z || !offs) abort();
  size_t at = 0;
  for (int k = 0; k < n; k++) {
    const zip_part *e = &parts[k];
    offs[k] = (uint32_t)at;
    uint8_t *h = z + at;
    memset(h, 0, 30);
    import_put32(h, 0x04034b50);
    import_put16(h + 4, 20);
    import_put32(h + 14, import_crc32(e->data, e->len));
    import_put32(h + 18, (uint32_t)e->len);
    import_put32(h + 22, (uint32_t)e->len);
    import_put16(h + 26, (uint32_t)e->name_len);
    memcpy(h + 30, e->name, e->name_len);
    if (e->len) memcpy(h + 30 + e->name_len, e->data, e->len);
    at += 30 + e->name_len + e->len;
  }
  size_t cd = at;
  for (int k = 0; k < n; k++) {
    const zip_part *e = &parts[k];
    uint8_t *h = z + at;
    memset(h, 0, 46);
    import_put32(h, 0x02014b50);
    import_put16(h + 4, 20);
    import_put16(h + 6, 20);
    import_put32(h + 16, import_crc32(e->data, e->len));
    import_put32(h + 20, (uint32_t)e->len);
    import_put32(h + 24, (uint32_t)e->len);
    import_put16(h + 28, (uint32_t)e->name_len);
    import_put32(h + 42, offs[k]);
    memcpy(h + 46, e->name, e->name_len);
    at += 46 + e->name_len;
  }
  uint8_t *eocd = z + at;
  memset(eocd, 0, 22);
  import_put32(eocd, 0x06054b50);
  import_put16(eocd + 8, (uint32_t)n);
  import_put16(eocd + 10, (uint32_t)n);
  import_put32(eocd + 12, (uint32_t)(at - cd));
  import_put32(eocd + 16, (uint32_t)cd);
  at += 22;
  free(offs);
  *out_len = at;
  return z;
}

/* Imports and lowers data[0..size) as a model file (see the top). */
static void import_run(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz.pt", MFD_CLOEXEC);
  if (fd < 0) abort();
  for (size_t done = 0; done < size;) {
    ssize_t w = write(fd, data + done, size - done);
    if (w <= 0) abort();
    done += (size_t)w;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

  nn_arena *arena = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, import_null_out());
  fe_model *m = fe_import(path, arena, &d);
  if (!m) {
    if (d.errors == 0) abort(); /* a failed import must say why */
  } else {
    if (d.errors != 0) abort();
    d.source = fe_model_source_line;
    d.source_ctx = m;
    ir_graph *g = fe_lower(m, arena, &d);
    if (!g && d.errors == 0) abort(); /* a failed lowering must say why */
    fe_model_close(m);
  }
  nn_arena_free(arena);
  close(fd);
}

#endif
