/* nncc_timer.c - time a compiled model through nncc's public API, the
 * nncc side of the benchmark (bench/bench.py), with the same command line
 * and output as bench/libtorch_timer.cpp and bench/ort_timer.js.
 *
 *   nncc_timer MODEL.so IN.npy... [--runs N] [--warmup W] [--threads T]
 *              [--times]
 *
 * Opens the model (nncc_model_open), reads the inputs (.npy, in the
 * model's input order), creates a session with T threads (default 1),
 * runs W times untimed (default 5, at least 1), then N times (default 50)
 * timed one by one, and prints
 *   latency_ms min=X median=Y max=Z runs=N threads=T
 * with four decimals (`nncc run --bench` prints three, too coarse for
 * models that take a few microseconds). With --times it also prints every
 * run's time: `times_ms t1 t2 ...`. Exit 1 on any error, 2 on a bad
 * command line.
 *
 * Build (bench/bench.sh does it): link libnncc_runtime.a from the build
 * folder next to the nncc binary:
 *   cc -O2 -std=gnu11 -Iruntime/include bench/nncc_timer.c \
 *      build/runtime/libnncc_runtime.a -ldl -lpthread -lm -o nncc_timer
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nncc.h"

enum { MAX_IO = 64 }; /* inputs or outputs a benchmarked model may have */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int fail(const char *what, char *err) {
  fprintf(stderr, "nncc_timer: error: %s%s%s\n", what, err ? ": " : "", err ? err : "");
  nncc_free_message(err);
  return 1;
}

static int usage(void) {
  fprintf(stderr, "usage: nncc_timer MODEL.so IN.npy... [--runs N] [--warmup W] "
                  "[--threads T] [--times]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *model_path = NULL;
  const char *in_paths[MAX_IO];
  int nin = 0, runs = 50, warmup = 5, threads = 1, times = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--times")) {
      times = 1;
    } else if (!strcmp(a, "--runs") || !strcmp(a, "--warmup") || !strcmp(a, "--threads")) {
      if (i + 1 >= argc) return usage();
      int v = atoi(argv[++i]);
      if (a[2] == 'r')
        runs = v;
      else if (a[2] == 'w')
        warmup = v;
      else
        threads = v;
    } else if (!model_path) {
      model_path = a;
    } else if (nin < MAX_IO) {
      in_paths[nin++] = a;
    } else {
      return usage();
    }
  }
  if (!model_path || runs < 1 || threads < 1) return usage();
  if (warmup < 1) warmup = 1;

  char *err = NULL;
  nncc_model *m;
  if (nncc_model_open(model_path, &m, &err) != NNCC_OK) return fail(model_path, err);
  if (nncc_model_num_inputs(m) != nin) {
    fprintf(stderr, "nncc_timer: error: the model has %d inputs, %d given\n",
            (int)nncc_model_num_inputs(m), nin);
    return 1;
  }
  nncc_tensor in[MAX_IO], out[MAX_IO];
  for (int i = 0; i < nin; i++) {
    nncc_tensor *t;
    if (nncc_npy_read(in_paths[i], &t, &err) != NNCC_OK) return fail(in_paths[i], err);
    in[i] = *t; /* t stays allocated until exit */
  }
  int nout = nncc_model_num_outputs(m);
  if (nout > MAX_IO) return fail("too many outputs", NULL);
  for (int o = 0; o < nout; o++) {
    nncc_io_info info; /* benchmarked models have fixed dims: no symbols */
    if (nncc_model_output(m, o, &info) != NNCC_OK) return fail("output info", NULL);
    for (int d = 0; d < info.rank; d++)
      if (info.dims[d] < 0) return fail("symbolic output dims are not supported", NULL);
    nncc_tensor *t = nncc_tensor_alloc(info.dtype, info.rank, info.dims);
    if (!t) return fail("out of memory", NULL);
    out[o] = *t;
  }
  nncc_session *s;
  if (nncc_session_create(m, threads, &s, &err) != NNCC_OK) return fail("session", err);

  double *ms = calloc((size_t)runs, sizeof *ms);
  if (!ms) return fail("out of memory", NULL);
  for (int r = -warmup; r < runs; r++) {
    double t0 = now_ms();
    if (nncc_session_run(s, in, (size_t)nin, out, (size_t)nout, &err) != NNCC_OK)
      return fail("run", err);
    if (r >= 0) ms[r] = now_ms() - t0;
  }
  if (times) {
    printf("times_ms");
    for (int r = 0; r < runs; r++) printf(" %.6f", ms[r]);
    printf("\n");
  }
  qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
  double median = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
  printf("latency_ms min=%.4f median=%.4f max=%.4f runs=%d threads=%d\n", ms[0], median,
         ms[runs - 1], runs, nncc_session_threads(s));
  free(ms);
  nncc_session_destroy(s);
  nncc_model_close(m);
  return 0;
}
