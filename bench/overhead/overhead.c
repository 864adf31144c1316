/* overhead.c — the fixed cost of one nncc_session_run.
 *
 *   overhead MODEL.so [--runs N] [--threads T]
 *
 * Opens a compiled model through the public API (runtime/include/nncc.h),
 * makes zero-filled tensors of the shapes the model declares, runs it once
 * to warm up, then times N (default 10^6) back-to-back nncc_session_run
 * calls and prints the mean in ns per call. With a tiny model (run.sh
 * compiles a 4-element add) that is almost all per-call overhead:
 * validation, the graph function's prologue, thread-pool decisions.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nncc.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Zero-filled tensors for the model's inputs or outputs. */
static nncc_tensor *make_tensors(const nncc_model *m, bool outputs, int32_t *n) {
  *n = outputs ? nncc_model_num_outputs(m) : nncc_model_num_inputs(m);
  nncc_tensor *t = calloc((size_t)*n + 1, sizeof *t);
  if (!t) return NULL;
  for (int32_t i = 0; i < *n; i++) {
    nncc_io_info info;
    if ((outputs ? nncc_model_output(m, i, &info) : nncc_model_input(m, i, &info)) != NNCC_OK)
      return NULL;
    int64_t elems = 1;
    for (int32_t k = 0; k < info.rank; k++) elems *= info.dims[k];
    t[i] = (nncc_tensor){calloc((size_t)elems + 1, nncc_dtype_size(info.dtype)), info.dtype,
                         info.rank, info.dims, NNCC_TENSOR_HOST};
    if (!t[i].data) return NULL;
  }
  return t;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: overhead MODEL.so [--runs N] [--threads T]\n");
    return 2;
  }
  long runs = 1000000;
  int threads = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--runs"))
      runs = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--threads"))
      threads = atoi(argv[i + 1]);
  }
  char *err = NULL;
  nncc_model *m;
  nncc_session *s;
  if (nncc_model_open(argv[1], &m, &err) != NNCC_OK ||
      nncc_session_create(m, threads, &s, &err) != NNCC_OK) {
    fprintf(stderr, "overhead: %s\n", err ? err : "?");
    return 1;
  }
  int32_t nin, nout;
  nncc_tensor *in = make_tensors(m, false, &nin), *out = make_tensors(m, true, &nout);
  if (!in || !out) {
    fprintf(stderr, "overhead: out of memory\n");
    return 1;
  }
  if (nncc_session_run(s, in, (size_t)nin, out, (size_t)nout, &err) != NNCC_OK) {
    fprintf(stderr, "overhead: %s\n", err ? err : "?");
    return 1;
  }
  double t0 = now_s();
  for (long r = 0; r < runs; r++) nncc_session_run(s, in, (size_t)nin, out, (size_t)nout, NULL);
  double t = now_s() - t0;
  printf("overhead: %.1f ns/call (%ld runs, %d thread%s)\n", 1e9 * t / (double)runs, runs, threads,
         threads == 1 ? "" : "s");
  nncc_session_destroy(s);
  nncc_model_close(m);
  return 0;
}
