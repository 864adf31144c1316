/* load_timer.c — what checking a model.so at open costs (bench/load.sh).
 *
 *   load_timer MODEL.so [ROUNDS]
 *
 * Times, interleaved round by round so that both variants see the same
 * machine state, nncc_model_open with the checksum (the default) and
 * without it (NNCC_OPEN_NO_VERIFY), in two situations:
 *   warm  the file is in the page cache;
 *   cold  the file was just evicted from the page cache
 *         (posix_fadvise(POSIX_FADV_DONTNEED) after an fsync; the machine's
 *         disk then decides the time);
 * and for each, two spans: the open alone, and "load" = open + session
 * (1 thread) + the first run on zero inputs — the time until a model
 * serves its first request, which must read every weight anyway.
 * Prints one line per measure with the median over ROUNDS (default 7) in
 * ms and the checked/unchecked ratio. Static models only (fixed shapes).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nncc.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static void evict(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

/* Times open (and, with run, session + first run); returns ms, or -1. */
static double once(const char *path, uint32_t flags, int run, double *open_ms) {
  double t0 = now_ms();
  nncc_model *m = NULL;
  char *err = NULL;
  if (nncc_model_open_ex(path, flags, &m, &err) != NNCC_OK) {
    fprintf(stderr, "load_timer: %s\n", err ? err : "open failed");
    exit(1);
  }
  *open_ms = now_ms() - t0;
  if (run) {
    int32_t ni = nncc_model_num_inputs(m), no = nncc_model_num_outputs(m);
    nncc_tensor *t[64] = {0};
    if (ni + no > 64 || nncc_model_num_symbols(m) > 0) {
      fprintf(stderr, "load_timer: needs a model with fixed shapes and <= 64 tensors\n");
      exit(1);
    }
    for (int32_t i = 0; i < ni + no; i++) {
      nncc_io_info io;
      (i < ni ? nncc_model_input(m, i, &io) : nncc_model_output(m, i - ni, &io));
      t[i] = nncc_tensor_alloc(io.dtype, io.rank, io.dims);
    }
    nncc_session *s = NULL;
    nncc_tensor in[32], out[32];
    for (int32_t i = 0; i < ni; i++) in[i] = *t[i];
    for (int32_t i = 0; i < no; i++) out[i] = *t[ni + i];
    if (nncc_session_create(m, 1, &s, &err) != NNCC_OK ||
        nncc_session_run(s, in, (size_t)ni, out, (size_t)no, &err) != NNCC_OK) {
      fprintf(stderr, "load_timer: %s\n", err ? err : "run failed");
      exit(1);
    }
    nncc_session_destroy(s);
    for (int32_t i = 0; i < ni + no; i++) nncc_tensor_free(t[i]);
  }
  double total = now_ms() - t0;
  nncc_model_close(m);
  return total;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: load_timer MODEL.so [ROUNDS]\n");
    return 2;
  }
  const char *path = argv[1];
  int rounds = argc > 2 ? atoi(argv[2]) : 7;
  if (rounds < 1 || rounds > 1000) rounds = 7;
  /* [cold][run][verify] -> samples of the span; opens separately */
  double *span[2][2][2], *op[2][2][2];
  for (int c = 0; c < 2; c++)
    for (int r = 0; r < 2; r++)
      for (int v = 0; v < 2; v++) {
        span[c][r][v] = calloc((size_t)rounds, sizeof(double));
        op[c][r][v] = calloc((size_t)rounds, sizeof(double));
      }
  double dummy;
  once(path, 0, 1, &dummy); /* warm everything up once */
  for (int i = 0; i < rounds; i++)
    for (int c = 0; c < 2; c++)
      for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++) {
          int v = (i + k) % 2; /* alternate which goes first */
          if (c) evict(path);
          span[c][r][v][i] = once(path, v ? 0 : NNCC_OPEN_NO_VERIFY, r, &op[c][r][v][i]);
        }
  printf("%-6s %-28s %10s %10s %8s\n", "cache", "span", "checked", "unchecked", "ratio");
  for (int c = 0; c < 2; c++)
    for (int r = 0; r < 2; r++) {
      double a = median(span[c][r][1], rounds), b = median(span[c][r][0], rounds);
      printf("%-6s %-28s %10.2f %10.2f %8.3f\n", c ? "cold" : "warm",
             r ? "open + session + first run" : "open", a, b, a / b);
    }
  return 0;
}
