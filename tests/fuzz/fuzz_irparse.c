/* fuzz_irparse.c — fuzz target for the textual IR reader (ir/parse.c).
 *
 * LLVMFuzzerTestOneInput parses the input as IR text. Whatever parses must
 * also print, verify, and print-parse-print to identical text (the round
 * trip contract of print.c); whatever does not must have reported exactly
 * one located error. Anything else (a crash, a sanitizer report, a hang, a
 * broken round trip) is a bug and aborts.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DNNCC_FUZZ_STANDALONE it is a plain program for CI (driver.h):
 *
 *   fuzz_irparse [-n N] FILE...
 *
 * runs every FILE as is, then N (default 2000) variants of each — byte
 * overwrites with IR punctuation or random bytes, truncations, deletions
 * and duplicated slices.
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
  if (first.len != second.len || memcmp(first.data, second.data, first.len)) abort();
  nn_buf_free(&first);
  nn_buf_free(&second);
  nn_arena_free(arena);
  return 0;
}

#ifdef NNCC_FUZZ_STANDALONE
#include "driver.h"

/* IR punctuation, digits and the letters of keywords and dtypes. */
static const char irparse_dict[] = "%=(),:[]{}<>*+-/?\"\\ \n0123456789.abefgilnoprstux";

int main(int argc, char **argv) {
  static const fuzz_target t = {
      .name = "fuzz_irparse",
      .default_n = 2000,
      .kinds = FUZZ_SET_DICT | FUZZ_SET_RANDOM | FUZZ_TRUNCATE | FUZZ_DELETE_RUN | FUZZ_DUP_SLICE,
      .dict = (const uint8_t *)irparse_dict,
      .ndict = sizeof irparse_dict - 1,
  };
  return fuzz_main(&t, argc, argv);
}

#endif
