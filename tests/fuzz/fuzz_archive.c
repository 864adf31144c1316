/* fuzz_archive.c — fuzzing the zip layer (frontend/archive.c).
 *
 * LLVMFuzzerTestOneInput opens the input as an archive from memory and
 * reads and maps every entry, so that the sniffing, the central directory
 * parser, libzip's reader and the bounds checks all see hostile bytes.
 * Diagnostics go to /dev/null; the only outcomes allowed are success or
 * reported errors (a crash, a sanitizer report or a hang is a bug).
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DNNCC_FUZZ_STANDALONE it is a plain program for CI (driver.h):
 *
 *   fuzz_archive [-n N] FILE...
 *
 * runs every FILE as is, then N (default 500) mutated variants of each —
 * bit flips, byte overwrites with interesting values, 4-byte fields set to
 * all ones, truncations and slices copied over other places.
 */
#include "frontend/frontend.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *null_out(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nn_diag d;
  nn_diag_init(&d, null_out());
  fe_archive *a = fe_archive_open_mem(data, size, "fuzz.pt", &d);
  if (!a) {
    if (d.errors != 1) abort(); /* a failed open reports exactly once */
    return 0;
  }
  nn_arena *arena = nn_arena_new();
  size_t fsize = 0;
  const unsigned char *base = fe_archive_bytes(a, &fsize);
  for (int i = 0; i < fe_archive_count(a); i++) {
    const fe_entry *e = fe_archive_entry(a, i);
    if (fe_archive_find(a, e->relname) == NULL) abort();
    const void *p = NULL;
    size_t n = 0;
    if (fe_archive_read(a, e, arena, &p, &n, &d) == 0) {
      if (n != e->size || ((const char *)p)[n] != 0) abort();
    }
    if (fe_archive_map(a, e, &p, &n, &d) == 0) {
      const unsigned char *q = p;
      if (q < base || n > fsize || (size_t)(q - base) > fsize - n) abort();
      /* touch the mapped bytes so ASan sees any out-of-bounds range */
      volatile unsigned sum = 0;
      for (size_t k = 0; k < n; k++) sum += q[k];
      (void)sum;
    }
  }
  (void)fe_archive_find(a, "data.pkl");
  (void)fe_archive_find(a, "");
  nn_arena_free(arena);
  fe_archive_close(a);
  return 0;
}

#ifdef NNCC_FUZZ_STANDALONE
#include "driver.h"

/* Small values, sign bits and the "PK" of zip signatures. */
static const uint8_t archive_dict[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x40, 0x08, 0x50, 0x4b};

int main(int argc, char **argv) {
  static const fuzz_target t = {
      .name = "fuzz_archive",
      .default_n = 500,
      .kinds = FUZZ_FLIP_BIT | FUZZ_SET_DICT | FUZZ_SET_ONES4 | FUZZ_TRUNCATE | FUZZ_SET_RANDOM |
               FUZZ_COPY_SLICE,
      .dict = archive_dict,
      .ndict = sizeof archive_dict,
  };
  return fuzz_main(&t, argc, argv);
}

#endif
