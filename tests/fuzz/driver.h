/* driver.h — the standalone main() shared by the fuzz targets.
 *
 * Each tests/fuzz/fuzz_*.c defines LLVMFuzzerTestOneInput. Built with
 * -fsanitize=fuzzer that is all libFuzzer needs; built with
 * -DNNCC_FUZZ_STANDALONE the target also includes this header, describes
 * itself in a fuzz_target and gets a plain program for CI:
 *
 *   fuzz_x [-n N] FILE...
 *
 * which runs every FILE as is, then N mutated variants of each (N defaults
 * to the target's choice). A variant is 1 to 4 mutations, each drawn from
 * the target's set of kinds (fuzz_kind), of a copy of the file; every run of
 * a file starts the xorshift generator from the same seed, so every run
 * tests the same inputs. Each input reaches LLVMFuzzerTestOneInput in a
 * heap block of exactly its size, so ASan flags a read past the end. The
 * exit status is 0 when every input was handled, 2 when a FILE cannot be
 * read; a failed check inside the target aborts.
 *
 * Targets with mutations of their own (fuzz_tsparse duplicates and deletes
 * whole lines) add them through fuzz_target.hook.
 */
#ifndef NNCC_FUZZ_DRIVER_H
#define NNCC_FUZZ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LLVMFuzzerTestOneInput is declared and defined by the target, which
 * includes this header last. */

/* Mutation kinds a target can ask for (fuzz_target.kinds, OR-ed). */
enum fuzz_kind {
  FUZZ_FLIP_BIT = 1 << 0,    /* flip one bit of one byte */
  FUZZ_SET_DICT = 1 << 1,    /* overwrite a byte with one of the dictionary */
  FUZZ_SET_RANDOM = 1 << 2,  /* overwrite a byte with a random one */
  FUZZ_SET_ONES4 = 1 << 3,   /* overwrite up to 4 bytes with 0xff (a length
                                or offset field turned into a marker) */
  FUZZ_TRUNCATE = 1 << 4,    /* cut the input at a random offset */
  FUZZ_INSERT_DICT = 1 << 5, /* insert one byte of the dictionary */
  FUZZ_DELETE_RUN = 1 << 6,  /* delete 1..8 bytes */
  FUZZ_DUP_SLICE = 1 << 7,   /* insert a copy of the 1..16 bytes that follow */
  FUZZ_COPY_SLICE = 1 << 8,  /* copy 1..64 bytes over another place */
  FUZZ_KIND_COUNT = 9,       /* how many kinds the bits above name */
};

typedef struct fuzz_target {
  const char *name;    /* program name for messages: "fuzz_pickle" */
  long default_n;      /* variants per file when -n is not given */
  unsigned kinds;      /* the fuzz_kind bits this target uses */
  const uint8_t *dict; /* bytes worth writing: opcodes, punctuation */
  size_t ndict;        /* entries in dict (> 0 with the *_DICT kinds) */
  int nhooks;          /* extra kinds implemented by hook (0: none) */
  /* Applies the target's extra kind `kind` (0 <= kind < nhooks) to
   * buf[0..len) with room for `cap` bytes; returns the new length (at most
   * cap). Draws its random numbers from fuzz_rand. */
  size_t (*hook)(int kind, uint8_t *buf, size_t len, size_t cap);
} fuzz_target;

static uint64_t fuzz_rng_state;

/* xorshift64*: small, deterministic, good enough to pick mutations. */
static uint64_t fuzz_rand(void) {
  fuzz_rng_state ^= fuzz_rng_state >> 12;
  fuzz_rng_state ^= fuzz_rng_state << 25;
  fuzz_rng_state ^= fuzz_rng_state >> 27;
  return fuzz_rng_state * 0x2545F4914F6CDD1Dull;
}

/* Applies one mutation of kind `kind` (one fuzz_kind bit) to buf[0..len),
 * which has room for cap bytes; returns the new length. */
static size_t fuzz_apply(const fuzz_target *t, unsigned kind, uint8_t *buf, size_t len,
                         size_t cap) {
  if (len == 0 && kind != FUZZ_INSERT_DICT) return 0;
  size_t at = len ? (size_t)(fuzz_rand() % len) : 0;
  switch (kind) {
  case FUZZ_FLIP_BIT: buf[at] ^= (uint8_t)(1u << (fuzz_rand() % 8)); break;
  case FUZZ_SET_DICT: buf[at] = t->dict[fuzz_rand() % t->ndict]; break;
  case FUZZ_SET_RANDOM: buf[at] = (uint8_t)fuzz_rand(); break;
  case FUZZ_SET_ONES4:
    for (size_t i = at; i < at + 4 && i < len; i++) buf[i] = 0xff;
    break;
  case FUZZ_TRUNCATE: len = at; break;
  case FUZZ_INSERT_DICT:
    if (len < cap) {
      at = (size_t)(fuzz_rand() % (len + 1));
      memmove(buf + at + 1, buf + at, len - at);
      buf[at] = t->dict[fuzz_rand() % t->ndict];
      len++;
    }
    break;
  case FUZZ_DELETE_RUN: {
    size_t k = 1 + (size_t)(fuzz_rand() % 8);
    if (at + k > len) k = len - at;
    memmove(buf + at, buf + at + k, len - at - k);
    len -= k;
    break;
  }
  case FUZZ_DUP_SLICE: {
    size_t k = 1 + (size_t)(fuzz_rand() % 16);
    if (at + k > len) k = len - at;
    if (len + k > cap) break;
    memmove(buf + at + k, buf + at, len - at);
    len += k;
    break;
  }
  case FUZZ_COPY_SLICE: {
    size_t from = (size_t)(fuzz_rand() % len);
    size_t k = 1 + (size_t)(fuzz_rand() % 64);
    if (from + k > len) k = len - from;
    if (at + k > cap) k = cap - at;
    memmove(buf + at, buf + from, k);
    if (at + k > len) len = at + k;
    break;
  }
  }
  return len;
}

/* Writes a variant of src[0..len) into dst (room for cap >= len bytes):
 * 1 to 4 mutations, each of a kind drawn evenly from the target's kinds and
 * hooks. Returns the variant's length. */
static size_t fuzz_mutate(const fuzz_target *t, const uint8_t *src, size_t len, uint8_t *dst,
                          size_t cap) {
  unsigned kinds[FUZZ_KIND_COUNT];
  int nkinds = 0;
  for (int i = 0; i < FUZZ_KIND_COUNT; i++)
    if (t->kinds & (1u << i)) kinds[nkinds++] = 1u << i;
  int choices = nkinds + (t->hook ? t->nhooks : 0);
  memcpy(dst, src, len);
  int rounds = 1 + (int)(fuzz_rand() % 4);
  for (int r = 0; r < rounds && choices > 0; r++) {
    int c = (int)(fuzz_rand() % (uint64_t)choices);
    if (c < nkinds)
      len = fuzz_apply(t, kinds[c], dst, len, cap);
    else
      len = t->hook(c - nkinds, dst, len, cap);
  }
  return len;
}

/* The whole file in a malloc'd block (one spare byte); NULL if unreadable. */
static uint8_t *fuzz_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0, r;
  uint8_t *b = malloc(cap);
  while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) {
      uint8_t *bigger = realloc(b, cap *= 2);
      if (!bigger) free(b);
      b = bigger;
    }
  }
  bool failed = ferror(f) != 0;
  fclose(f);
  if (failed) {
    free(b);
    return NULL;
  }
  *len = n;
  return b;
}

/* Runs LLVMFuzzerTestOneInput on a heap copy of exactly n bytes. */
static void fuzz_run_exact(const uint8_t *data, size_t n) {
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) abort();
  memcpy(exact, data, n);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
}

/* main() of a standalone target: fuzz_x [-n N] FILE... */
static int fuzz_main(const fuzz_target *t, int argc, char **argv) {
  long variants = t->default_n;
  int files = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
      variants = strtol(argv[++i], NULL, 10);
      continue;
    }
    size_t len = 0;
    uint8_t *orig = fuzz_read_file(argv[i], &len);
    if (!orig) {
      fprintf(stderr, "%s: cannot read %s\n", t->name, argv[i]);
      return 2;
    }
    files++;
    fuzz_run_exact(orig, len);
    /* room for the mutations that grow the input (they stop at cap) */
    size_t cap = 2 * len + 64;
    uint8_t *buf = malloc(cap);
    if (!buf) abort();
    fuzz_rng_state = 0x9E3779B97F4A7C15ull;
    for (long v = 0; v < variants; v++) fuzz_run_exact(buf, fuzz_mutate(t, orig, len, buf, cap));
    free(buf);
    free(orig);
  }
  printf("%s: %d files, %ld variants each, no failures\n", t->name, files, variants);
  return 0;
}

#endif
