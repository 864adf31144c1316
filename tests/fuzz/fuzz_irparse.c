/* fuzz_irparse.c — fuzz target for the textual IR reader (ir/parse.c).
 *
 * LLVMFuzzerTestOneInput parses the input as IR text. Whatever parses must
 * also print, verify, and print-parse-print to identical text (the round
 * trip contract of print.c); whatever does not must have reported exactly
 * one located error. Anything else (a crash, a sanitizer report, a hang, a
 * broken round trip) is a bug and aborts.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DNNCC_FUZZ_STANDALONE it is a plain program for CI:
 *
 *   fuzz_irparse [-n N] FILE...
 *
 * runs every FILE as is, then N (default 2000) variants of each — byte
 * overwrites with IR punctuation or random bytes, truncations, deletions
 * and duplicated slices — from a fixed-seed xorshift generator, so every
 * run tests the same inputs.
 */
#include "ir/ir.h"

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
  nn_arena *arena = nn_arena_new();
  ir_graph *g = ir_parse((const char *)data, size, "fuzz.nnir", arena, &d);
  if (!g) {
    if (d.errors != 1) abort(); /* a failed parse reports exactly once */
    nn_arena_free(arena);
    return 0;
  }
  ir_verify(g, &d);
  unsigned flags = IR_PRINT_LOC | IR_PRINT_SCOPE;
  nn_buf first = {0};
  ir_print(&first, g, flags);
  nn_diag strict;
  nn_diag_init(&strict, stderr);
  ir_graph *back = ir_parse(first.data, first.len, "reprint.nnir", arena, &strict);
  if (!back) abort(); /* printed text must parse */
  nn_buf second = {0};
  ir_print(&second, back, flags);
  if (first.len != second.len || memcmp(first.data, second.data, first.len))
    abort();
  nn_buf_free(&first);
  nn_buf_free(&second);
  nn_arena_free(arena);
  return 0;
}

#ifdef NNCC_FUZZ_STANDALONE
static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 17);
}

/* One variant of src (len bytes) into dst (capacity cap); returns its size. */
static size_t mutate(const uint8_t *src, size_t len, uint8_t *dst, size_t cap) {
  static const char alphabet[] = "%=(),:[]{}<>*+-/?\"\\ \n0123456789.abefgilnoprstux";
  size_t n = len < cap ? len : cap;
  memcpy(dst, src, n);
  int edits = 1 + (int)(next_rand() % 4);
  for (int e = 0; e < edits && n > 0; e++) {
    size_t at = next_rand() % n;
    switch (next_rand() % 5) {
    case 0: dst[at] = (uint8_t)alphabet[next_rand() % (sizeof alphabet - 1)]; break;
    case 1: dst[at] = (uint8_t)next_rand(); break;
    case 2: n = at; break; /* truncate */
    case 3: { /* delete a slice */
      size_t k = 1 + next_rand() % 8;
      if (at + k > n) k = n - at;
      memmove(dst + at, dst + at + k, n - at - k);
      n -= k;
      break;
    }
    default: { /* duplicate a slice */
      size_t k = 1 + next_rand() % 16;
      if (at + k > n) k = n - at;
      if (n + k > cap) break;
      memmove(dst + at + k, dst + at, n - at);
      n += k;
      break;
    }
    }
  }
  return n;
}

int main(int argc, char **argv) {
  long per_file = 2000;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    per_file = strtol(argv[2], NULL, 10);
    first = 3;
  }
  for (int i = first; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "fuzz_irparse: cannot open %s\n", argv[i]);
      return 2;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *src = malloc((size_t)size + 1);
    size_t len = fread(src, 1, (size_t)size, f);
    fclose(f);
    LLVMFuzzerTestOneInput(src, len);
    size_t cap = len + 64;
    for (long m = 0; m < per_file; m++) {
      uint8_t *dst = malloc(cap);
      size_t n = mutate(src, len, dst, cap);
      /* A heap block of exactly n bytes, so ASan catches reads past it. */
      uint8_t *exact = malloc(n ? n : 1);
      memcpy(exact, dst, n);
      LLVMFuzzerTestOneInput(exact, n);
      free(exact);
      free(dst);
    }
    free(src);
  }
  printf("fuzz_irparse: %d file(s), %ld variants each: ok\n", argc - first, per_file);
  return 0;
}
#endif
