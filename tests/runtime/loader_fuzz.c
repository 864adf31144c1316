/* loader_fuzz.c — damaged model.so files are refused, never loaded
 * (tests/sealed.sh).
 *
 *   nncc_test_loader_fuzz [-n N] [-s SEED] MODEL.so...
 *
 * For every MODEL.so (a sealed file as nncc writes it, which must open):
 *   - truncations: the file cut at every 4 KiB boundary, at N random
 *     offsets, and 1, 8, 63, 64 and 65 bytes short of its end;
 *   - N single-bit flips and N swaps of two different bytes, at random
 *     offsets (a quarter of them in the first 4 KiB, where the headers
 *     are, and a quarter in the last 4 KiB, where the section headers and
 *     the seal are);
 *   - N appended bytes runs (1..64 bytes).
 * Every variant is written to a file and given to nncc_model_open and to
 * nncc_model_describe: both must fail with NNCC_ERR_LOAD and a message
 * naming the file, and a cut the message must call truncated (a cut past
 * the size note: "truncated (expected SIZE bytes, found CUT)"), a flip or
 * swap "corrupted" (or, when it hits the ELF identification itself, "not
 * a ..." / "compiled for"). A crash is a failure by itself.
 *
 * Then the reader alone, on hostile structure: the same flips, swaps and
 * cuts, N more random overwrites of 1..8 bytes, given to
 * nncc_model_open_ex(NNCC_OPEN_DESCRIBE | NNCC_OPEN_NO_VERIFY), which
 * parses ELF headers, notes, the symbol table and the metadata without the
 * checksum to stop it, and never loads code; also on the file with its seal
 * removed (as a model made before the seal existed), where the metadata is
 * found through .symtab. Any outcome but a crash is fine there; the
 * counts of each are printed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/include/nncc.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static char tmp[4096];
static long cases, failures, opened_structural, refused_structural;

static int write_file(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(p, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = len > 0 ? malloc((size_t)len) : NULL;
  if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
    free(p);
    p = NULL;
  }
  fclose(f);
  *n = (size_t)len;
  return p;
}

/* want: a substring the message must contain (one of up to three, split
 * by '|'). */
static void expect_refused(const char *what, const unsigned char *p, size_t n, const char *want) {
  cases++;
  if (write_file(tmp, p, n)) {
    fprintf(stderr, "can't write %s\n", tmp);
    exit(2);
  }
  for (int describe = 0; describe < 2; describe++) {
    nncc_model *m = NULL;
    char *err = NULL;
    nncc_status st = describe ? nncc_model_describe(tmp, &m, &err) : nncc_model_open(tmp, &m, &err);
    bool ok = st == NNCC_ERR_LOAD && m == NULL && err && strstr(err, tmp);
    if (ok) {
      ok = false;
      char alts[256];
      snprintf(alts, sizeof alts, "%s", want);
      for (char *a = strtok(alts, "|"); a; a = strtok(NULL, "|")) ok |= strstr(err, a) != NULL;
    }
    if (!ok) {
      failures++;
      if (failures <= 20)
        fprintf(stderr, "FAIL %s (%s): status %d, '%s' (want LOAD, '%s')\n", what,
                describe ? "describe" : "open", (int)st, err ? err : "", want);
    }
    nncc_free_message(err);
    nncc_model_close(m);
  }
}

/* Structure only: describe without the checksum; anything but a crash. */
static void structural(const unsigned char *p, size_t n) {
  if (write_file(tmp, p, n)) exit(2);
  nncc_model *m = NULL;
  char *err = NULL;
  nncc_status st = nncc_model_open_ex(tmp, NNCC_OPEN_DESCRIBE | NNCC_OPEN_NO_VERIFY, &m, &err);
  if (st == NNCC_OK) {
    opened_structural++;
    /* touch everything the description holds */
    for (int32_t i = 0; i < nncc_model_num_inputs(m) + nncc_model_num_outputs(m); i++) {
      int out = i >= nncc_model_num_inputs(m);
      int32_t k = out ? i - nncc_model_num_inputs(m) : i;
      nncc_io_info io;
      if ((out ? nncc_model_output(m, k, &io) : nncc_model_input(m, k, &io)) != NNCC_OK) continue;
      size_t len = strlen(io.name);
      for (int32_t d = 0; d < io.rank; d++) {
        nncc_dim_info di;
        if (nncc_model_dim(m, out, k, d, &di) == NNCC_OK && di.text) len += strlen(di.text);
      }
      (void)len;
    }
    (void)strlen(nncc_model_compiler(m));
    (void)strlen(nncc_model_features(m));
  } else {
    refused_structural++;
  }
  nncc_free_message(err);
  nncc_model_close(m);
}

static void fuzz(const char *path, long n_random) {
  size_t size;
  unsigned char *orig = read_file(path, &size);
  if (!orig || size < 8192) {
    fprintf(stderr, "can't read %s (or too small)\n", path);
    exit(2);
  }
  nncc_model *m = NULL;
  char *err = NULL;
  if (nncc_model_open(path, &m, &err) != NNCC_OK) {
    /* a CUDA model on a machine without a GPU: describing must work */
    nncc_free_message(err);
    err = NULL;
    if (nncc_model_describe(path, &m, &err) != NNCC_OK) {
      fprintf(stderr, "FAIL: the intact %s doesn't open: %s\n", path, err ? err : "");
      exit(1);
    }
  }
  nncc_model_close(m);
  nncc_free_message(err);
  long before = cases;
  unsigned char *buf = malloc(size + 64);
  char what[128], want[128];

  /* truncations */
  size_t cuts[] = {size - 1, size - 8, size - 63, size - 64, size - 65};
  long ncut = (long)(size / 4096) + n_random + 5;
  for (long i = 0; i < ncut; i++) {
    size_t cut = i < (long)(size / 4096)       ? (size_t)i * 4096
                 : i < (long)(size / 4096) + 5 ? cuts[i - (long)(size / 4096)]
                                               : (size_t)(rnd() % size);
    if (cut >= size) continue;
    snprintf(what, sizeof what, "%s cut at %zu", path, cut);
    /* past the note (the first page) the message gives the exact size */
    if (cut >= 4096)
      snprintf(want, sizeof want, "truncated (expected %zu bytes, found %zu)", size, cut);
    else
      snprintf(want, sizeof want, "%s",
               cut == 0  ? "the file is empty"
               : cut < 4 ? "no ELF header"
                         : "truncated (expected");
    expect_refused(what, orig, cut, want);
  }
  /* bit flips and byte swaps */
  for (long i = 0; i < 2 * n_random; i++) {
    memcpy(buf, orig, size);
    size_t region = (size_t)(rnd() % 4), a;
    a = region == 0   ? (size_t)(rnd() % 4096)
        : region == 1 ? size - 1 - (size_t)(rnd() % 4096)
                      : (size_t)(rnd() % size);
    if (i < n_random) {
      buf[a] ^= (unsigned char)(1u << (rnd() % 8));
      snprintf(what, sizeof what, "%s bit flip at %zu", path, a);
    } else {
      size_t b = (size_t)(rnd() % size);
      if (orig[a] == orig[b]) {
        i--; /* the same bytes: no change, draw again */
        continue;
      }
      buf[a] = orig[b];
      buf[b] = orig[a];
      snprintf(what, sizeof what, "%s bytes %zu and %zu swapped", path, a, b);
    }
    expect_refused(what, buf, size, "corrupted|not a |compiled for");
    structural(buf, size);
  }
  /* bytes appended */
  for (long i = 0; i < n_random / 4 + 1; i++) {
    size_t k = 1 + (size_t)(rnd() % 64);
    memcpy(buf, orig, size);
    for (size_t j = 0; j < k; j++) buf[size + j] = (unsigned char)rnd();
    snprintf(what, sizeof what, "%s with %zu bytes appended", path, k);
    expect_refused(what, buf, size + k, "corrupted");
  }
  /* the reader on hostile structure, without the checksum */
  for (long i = 0; i < 4 * n_random; i++) {
    memcpy(buf, orig, size);
    size_t len = size;
    if (i % 4 == 3) len = (size_t)(rnd() % size);
    int k = 1 + (int)(rnd() % 8);
    for (int j = 0; j < k && len; j++) {
      size_t at = rnd() % 2 ? (size_t)(rnd() % (len < 8192 ? len : 8192)) : (size_t)(rnd() % len);
      buf[at] = (unsigned char)(rnd() % 3 == 0 ? 0xff : rnd());
    }
    structural(buf, len);
  }
  /* ... and with the seal removed: a file as older nncc versions wrote it,
   * whose metadata is found through .symtab (the size note zeroed; the
   * note is "NNCC\0" then 16 bytes of description, in the first page) */
  memcpy(buf, orig, size - 64);
  size_t note = 0;
  for (size_t j = 0; j + 24 < 4096 && !note; j++)
    if (!memcmp(buf + j, "NNCC\0\0\0\0", 8)) note = j + 8;
  if (note) memset(buf + note, 0, 8);
  write_file(tmp, buf, size - 64);
  m = NULL;
  err = NULL;
  if (nncc_model_describe(tmp, &m, &err) != NNCC_OK) {
    fprintf(stderr, "FAIL: %s without its seal can't be described: %s\n", path, err ? err : "");
    failures++;
  }
  nncc_model_close(m);
  nncc_free_message(err);
  unsigned char *legacy = malloc(size);
  memcpy(legacy, buf, size - 64);
  for (long i = 0; i < 2 * n_random; i++) {
    memcpy(buf, legacy, size - 64);
    size_t len = i % 4 == 3 ? (size_t)(rnd() % (size - 64)) : size - 64;
    int k = 1 + (int)(rnd() % 8);
    for (int j = 0; j < k && len; j++) buf[rnd() % len] = (unsigned char)rnd();
    structural(buf, len);
  }
  printf("%s: %ld damaged files refused by open and describe (%zu bytes, %ld cuts)\n", path,
         cases - before, size, ncut);
  free(legacy);
  free(buf);
  free(orig);
}

int main(int argc, char **argv) {
  long n = 100;
  int i = 1;
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    if (!strcmp(argv[i], "-n"))
      n = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "-s"))
      rng = strtoull(argv[i + 1], NULL, 0) | 1;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: nncc_test_loader_fuzz [-n N] [-s SEED] MODEL.so...\n");
    return 2;
  }
  const char *dir = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/nncc-loader-fuzz-%ld.so", dir && *dir ? dir : "/tmp",
           (long)getpid());
  for (; i < argc; i++) fuzz(argv[i], n);
  unlink(tmp);
  printf("total: %ld damaged files, %ld not refused as expected; reader without checksum: "
         "%ld described, %ld refused, 0 crashes\n",
         cases, failures, opened_structural, refused_structural);
  return failures ? 1 : 0;
}
