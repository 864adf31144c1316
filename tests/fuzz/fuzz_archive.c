/* fuzz_archive.c — fuzzing the zip layer (frontend/archive.c).
 *
 * LLVMFuzzerTestOneInput opens the input as an archive from memory and
 * reads and maps every entry, so that the sniffing, the central directory
 * parser, libzip's reader and the bounds checks all see hostile bytes.
 * Diagnostics go to /dev/null; the only outcomes allowed are success or
 * reported errors (a crash, a sanitizer report or a hang is a bug).
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DNNCC_FUZZ_STANDALONE it is a plain program for CI:
 *
 *   fuzz_archive [-n N] FILE...
 *
 * runs every FILE as is, then N (default 500) mutated variants of each —
 * byte flips, byte overwrites with interesting values, truncations and
 * slice duplications — drawn from a fixed-seed xorshift generator so that
 * every run tests the same inputs.
 */
#include "frontend/frontend.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *null_out(void) {
  static FILE *f;
  if (!f)
    f = fopen("/dev/null", "w");
  return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nn_diag d;
  nn_diag_init(&d, null_out());
  fe_archive *a = fe_archive_open_mem(data, size, "fuzz.pt", &d);
  if (!a) {
    if (d.errors != 1)
      abort(); /* a failed open reports exactly once */
    return 0;
  }
  nn_arena *arena = nn_arena_new();
  size_t fsize = 0;
  const unsigned char *base = fe_archive_bytes(a, &fsize);
  for (int i = 0; i < fe_archive_count(a); i++) {
    const fe_entry *e = fe_archive_entry(a, i);
    if (fe_archive_find(a, e->relname) == NULL)
      abort();
    const void *p = NULL;
    size_t n = 0;
    if (fe_archive_read(a, e, arena, &p, &n, &d) == 0) {
      if (n != e->size || ((const char *)p)[n] != 0)
        abort();
    }
    if (fe_archive_map(a, e, &p, &n, &d) == 0) {
      const unsigned char *q = p;
      if (q < base || n > fsize || (size_t)(q - base) > fsize - n)
        abort();
      /* touch the mapped bytes so ASan sees any out-of-bounds range */
      volatile unsigned sum = 0;
      for (size_t k = 0; k < n; k++)
        sum += q[k];
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

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

/* xorshift64*: small, deterministic, good enough to pick mutations. */
static uint64_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Applies 1–4 random mutations to buf[0..*len) (capacity cap). */
static void mutate(uint8_t *buf, size_t *len, size_t cap) {
  static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff,
                                        0xfe, 0x40, 0x08, 0x50, 0x4b};
  int k = 1 + (int)(rng() % 4);
  for (int m = 0; m < k; m++) {
    if (*len == 0)
      break;
    size_t at = (size_t)(rng() % *len);
    switch (rng() % 6) {
    case 0: /* flip one bit */
      buf[at] ^= (uint8_t)(1u << (rng() % 8));
      break;
    case 1: /* overwrite with an interesting byte */
      buf[at] = interesting[rng() % sizeof interesting];
      break;
    case 2: /* overwrite a 4-byte field with all ones (zip64 markers) */
      for (size_t i = at; i < at + 4 && i < *len; i++)
        buf[i] = 0xff;
      break;
    case 3: /* truncate */
      *len = at;
      break;
    case 4: /* random byte */
      buf[at] = (uint8_t)rng();
      break;
    default: { /* duplicate a slice onto another place */
      size_t from = (size_t)(rng() % *len);
      size_t n = 1 + (size_t)(rng() % 64);
      if (from + n > *len)
        n = *len - from;
      if (at + n > cap)
        n = cap - at;
      memmove(buf + at, buf + from, n);
      if (at + n > *len)
        *len = at + n;
      break;
    }
    }
  }
}

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, n = 0;
  uint8_t *b = malloc(cap);
  size_t r;
  while ((r = fread(b + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap)
      b = realloc(b, cap *= 2);
  }
  fclose(f);
  *len = n;
  return b;
}

int main(int argc, char **argv) {
  long variants = 500;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    variants = strtol(argv[2], NULL, 10);
    first = 3;
  }
  int files = 0;
  for (int i = first; i < argc; i++) {
    size_t len = 0;
    uint8_t *orig = read_all(argv[i], &len);
    if (!orig) {
      fprintf(stderr, "fuzz_archive: cannot read %s\n", argv[i]);
      return 2;
    }
    files++;
    LLVMFuzzerTestOneInput(orig, len);
    size_t cap = len + 64;
    uint8_t *buf = malloc(cap);
    for (long v = 0; v < variants; v++) {
      memcpy(buf, orig, len);
      size_t n = len;
      mutate(buf, &n, cap);
      /* an exact-size copy, so ASan flags any read past the end */
      uint8_t *exact = malloc(n ? n : 1);
      memcpy(exact, buf, n);
      LLVMFuzzerTestOneInput(exact, n);
      free(exact);
    }
    free(buf);
    free(orig);
  }
  printf("fuzz_archive: %d files, %ld variants each, no crash\n", files,
         variants);
  return 0;
}

#endif
