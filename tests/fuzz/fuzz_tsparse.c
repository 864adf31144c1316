/* fuzz_tsparse.c — fuzzer for the TorchScript source parser.
 *
 * Each input is parsed with fe_parse. Beyond "no crash, no hang, no
 * out-of-bounds access", a successful parse must round-trip: printing the
 * AST, parsing that text again and printing it once more must succeed and
 * give the same text (the only allowed failure is the nesting cap, since the
 * printer adds parentheses).
 *
 * Built with -fsanitize=fuzzer this is a libFuzzer target. Built with
 * -DNNCC_FUZZ_STANDALONE it has a main() that runs every file named on the
 * command line plus deterministic mutations of it (byte flips, truncations,
 * duplicated and deleted lines, inserted brackets) — so CI can run it
 * without libFuzzer:
 *   fuzz_tsparse [-n MUTATIONS] file.py...
 */
#include "frontend/frontend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses data and prints the AST into out (when out is non-NULL). Returns
 * the number of errors; the diagnostics text goes to *diag_text (malloc'd,
 * caller frees) when diag_text is non-NULL. */
static int parse_print(const char *data, size_t size, nn_buf *out,
                       char **diag_text) {
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

static uint64_t rng_state;
static uint64_t rng(void) { /* xorshift64 */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Offset of line k of s (n bytes); *end gets the offset just past it. */
static size_t line_start(const char *s, size_t n, size_t k, size_t *end) {
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

/* Writes one mutation of src (n bytes) into dst (capacity >= 2n + 16);
 * returns its length. */
static size_t mutate(const char *src, size_t n, char *dst) {
  static const char interesting[] = "()[]{}:,.=\n \t\"'\\#-+*0123456789eax_";
  memcpy(dst, src, n);
  size_t len = n;
  int rounds = 1 + (int)(rng() % 4);
  for (int r = 0; r < rounds; r++) {
    switch (rng() % 6) {
    case 0: /* flip a byte */
      if (len) dst[rng() % len] = (char)(rng() & 0xFF);
      break;
    case 1: /* set a byte to a token-ish character */
      if (len) dst[rng() % len] = interesting[rng() % (sizeof interesting - 1)];
      break;
    case 2: /* truncate */
      if (len) len = rng() % len;
      break;
    case 3: { /* duplicate a line (if room) */
      size_t lines = 1;
      for (size_t i = 0; i < len; i++) lines += dst[i] == '\n';
      size_t e, s = line_start(dst, len, rng() % lines, &e);
      if (len + (e - s) > 2 * n + 16) break;
      memmove(dst + e + (e - s), dst + e, len - e);
      memcpy(dst + e, dst + s, e - s);
      len += e - s;
      break;
    }
    case 4: { /* delete a line */
      size_t lines = 1;
      for (size_t i = 0; i < len; i++) lines += dst[i] == '\n';
      size_t e, s = line_start(dst, len, rng() % lines, &e);
      memmove(dst + s, dst + e, len - e);
      len -= e - s;
      break;
    }
    case 5: /* insert a byte */
      if (len < 2 * n + 16) {
        size_t at = len ? rng() % (len + 1) : 0;
        memmove(dst + at + 1, dst + at, len - at);
        dst[at] = interesting[rng() % (sizeof interesting - 1)];
        len++;
      }
      break;
    }
  }
  return len;
}

int main(int argc, char **argv) {
  int mutations = 2000, files = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
      mutations = atoi(argv[++i]);
      continue;
    }
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "fuzz_tsparse: cannot open %s\n", argv[i]);
      return 2;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *src = malloc((size_t)n + 1);
    char *dst = malloc(2 * (size_t)n + 16);
    if (!src || !dst || fread(src, 1, (size_t)n, f) != (size_t)n) {
      fprintf(stderr, "fuzz_tsparse: cannot read %s\n", argv[i]);
      return 2;
    }
    fclose(f);
    LLVMFuzzerTestOneInput((const unsigned char *)src, (size_t)n);
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (int k = 0; k < mutations; k++) {
      size_t len = mutate(src, (size_t)n, dst);
      LLVMFuzzerTestOneInput((const unsigned char *)dst, len);
    }
    free(src);
    free(dst);
    files++;
  }
  printf("fuzz_tsparse: %d files, %d mutations each, no failures\n", files,
         mutations);
  return 0;
}

#endif
