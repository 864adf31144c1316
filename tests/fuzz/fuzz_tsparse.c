/* fuzz_tsparse.c — fuzzer for the TorchScript source parser.
 *
 * Each input is parsed with fe_parse. Beyond "no crash, no hang, no
 * out-of-bounds access", a successful parse must round-trip: printing the
 * AST, parsing that text again and printing it once more must succeed and
 * give the same text (the only allowed failure is the nesting cap, since the
 * printer adds parentheses).
 *
 * Built with -fsanitize=fuzzer this is a libFuzzer target. Built with
 * -DNNCC_FUZZ_STANDALONE it has the main() of driver.h, which runs every
 * file named on the command line plus N (default 2000) deterministic
 * variants of it (random bytes, truncations, inserted and overwritten
 * token characters, and through the hook below duplicated and deleted
 * lines) — so CI can run it without libFuzzer:
 *   fuzz_tsparse [-n N] file.py...
 */
#include "frontend/frontend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses data and prints the AST into out (when out is non-NULL). Returns
 * the number of errors; the diagnostics text goes to *diag_text (malloc'd,
 * caller frees) when diag_text is non-NULL. */
static int parse_print(const char *data, size_t size, nn_buf *out, char **diag_text) {
  char *text = NULL;
  size_t text_len = 0;
  FILE *f = open_memstream(&text, &text_len);
  if (!f) abort();
  nn_diag d;
  nn_diag_init(&d, f);
  nn_arena *arena = nn_arena_new();
  fe_block b = fe_parse(data, size, "fuzz.py", arena, &d);
  if (out && d.errors == 0) fe_block_print(out, &b, 0);
  nn_arena_free(arena);
  fclose(f);
  if (diag_text)
    *diag_text = text;
  else
    free(text);
  return d.errors;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  nn_buf first = {0}, second = {0};
  if (parse_print((const char *)data, size, &first, NULL) == 0 && first.data) {
    char *diag = NULL;
    int errors = parse_print(first.data, first.len, &second, &diag);
    if (errors && !strstr(diag, "nesting too deep")) {
      fprintf(stderr, "printed AST does not parse:\n%s\n---\n%s", first.data, diag);
      abort();
    }
    if (!errors && (!second.data || strcmp(first.data, second.data) != 0)) {
      fprintf(stderr, "print is not stable:\n%s\n---\n%s", first.data,
              second.data ? second.data : "");
      abort();
    }
    free(diag);
  }
  nn_buf_free(&first);
  nn_buf_free(&second);
  return 0;
}

#ifdef NNCC_FUZZ_STANDALONE
#include "driver.h"

/* Offset of line k of s (n bytes); *end gets the offset just past it. */
static size_t line_start(const uint8_t *s, size_t n, size_t k, size_t *end) {
  size_t line = 0, i = 0, start = 0;
  for (; i < n && line < k; i++)
    if (s[i] == '\n') {
      line++;
      start = i + 1;
    }
  size_t e = start;
  while (e < n && s[e] != '\n') e++;
  *end = e < n ? e + 1 : e;
  return start;
}

/* The line mutations: kind 0 duplicates a random line (when there is
 * room), kind 1 deletes one. */
static size_t line_hook(int kind, uint8_t *buf, size_t len, size_t cap) {
  size_t lines = 1;
  for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
  size_t e, s = line_start(buf, len, (size_t)(fuzz_rand() % lines), &e);
  if (kind == 0) {
    if (len + (e - s) > cap) return len;
    memmove(buf + e + (e - s), buf + e, len - e);
    memcpy(buf + e, buf + s, e - s);
    return len + (e - s);
  }
  memmove(buf + s, buf + e, len - e);
  return len - (e - s);
}

static const char tsparse_dict[] = "()[]{}:,.=\n \t\"'\\#-+*0123456789eax_";

int main(int argc, char **argv) {
  static const fuzz_target t = {
      .name = "fuzz_tsparse",
      .default_n = 2000,
      .kinds = FUZZ_SET_RANDOM | FUZZ_SET_DICT | FUZZ_TRUNCATE | FUZZ_INSERT_DICT,
      .dict = (const uint8_t *)tsparse_dict,
      .ndict = sizeof tsparse_dict - 1,
      .nhooks = 2,
      .hook = line_hook,
  };
  return fuzz_main(&t, argc, argv);
}

#endif
