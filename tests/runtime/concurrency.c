/* concurrency.c — many sessions of one model at once (tests/runtime.sh).
 *
 *   nncc_test_concurrency MODEL.so [THREADS [RUNS]]
 *
 * Opens the model once, computes reference outputs with a one-thread
 * session, then starts THREADS (default 8) threads, each with its own
 * session of 1, 2 or 3 pool threads, each running the model RUNS (default
 * 1000) times on the same input; every output must be bit-identical to the
 * reference. Inputs are deterministic (a fixed hash of the element index,
 * for f32 inputs); a symbolic input dim is 5. Exit 0 when all match.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/include/nncc.h"

static nncc_model *model;
static nncc_tensor **ins, **refs;
static int32_t nin, nout;
static int runs = 1000;

static void fill(nncc_tensor *t, uint32_t seed) {
  int64_t n = nncc_tensor_elems(t);
  size_t es = nncc_dtype_size(t->dtype);
  for (int64_t i = 0; i < n; i++) {
    uint32_t h = (uint32_t)i * 2654435761u + seed;
    h ^= h >> 15;
    if (t->dtype == NNCC_DTYPE_F32)
      ((float *)t->data)[i] = (float)(h % 2001) / 1000.0f - 1.0f;
    else
      memset((char *)t->data + (size_t)i * es, (int)(h & 1), es);
  }
}

/* The outputs for the inputs `ins`, or NULL (nothing left allocated). */
static nncc_tensor **alloc_outputs(void) {
  nncc_tensor **o = calloc((size_t)nout + 1, sizeof *o);
  if (!o) return NULL;
  for (int32_t i = 0; i < nout; i++) {
    nncc_io_info info;
    int64_t dims[NNCC_MAX_RANK];
    nncc_model_output(model, i, &info);
    /* symbolic output dims follow from the inputs' shapes */
    nncc_tensor in_v[16];
    for (int32_t j = 0; j < nin; j++) in_v[j] = *ins[j];
    if (nncc_model_output_dims(model, in_v, (size_t)nin, i, dims, NULL) != NNCC_OK) {
      for (int32_t j = 0; j < i; j++) nncc_tensor_free(o[j]);
      free(o);
      return NULL;
    }
    o[i] = nncc_tensor_alloc(info.dtype, info.rank, dims);
  }
  return o;
}

static int run_once(nncc_session *s, nncc_tensor **outs) {
  nncc_tensor in_v[16], out_v[16];
  for (int32_t i = 0; i < nin; i++) in_v[i] = *ins[i];
  for (int32_t i = 0; i < nout; i++) out_v[i] = *outs[i];
  char *err = NULL;
  nncc_status st = nncc_session_run(s, in_v, (size_t)nin, out_v, (size_t)nout, &err);
  if (st != NNCC_OK) {
    fprintf(stderr, "run: %s\n", err);
    nncc_free_message(err);
    return -1;
  }
  return 0;
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  nncc_session *s;
  char *err = NULL;
  if (nncc_session_create(model, 1 + id % 3, &s, &err) != NNCC_OK) {
    fprintf(stderr, "session: %s\n", err);
    nncc_free_message(err);
    return (void *)1;
  }
  nncc_tensor **outs = alloc_outputs();
  if (!outs) {
    nncc_session_destroy(s);
    return (void *)1;
  }
  intptr_t bad = 0;
  for (int r = 0; r < runs && !bad; r++) {
    for (int32_t i = 0; i < nout; i++)
      memset(outs[i]->data, 0xff,
             (size_t)nncc_tensor_elems(outs[i]) * nncc_dtype_size(outs[i]->dtype));
    if (run_once(s, outs)) bad = 1;
    for (int32_t i = 0; i < nout && !bad; i++)
      if (memcmp(outs[i]->data, refs[i]->data,
                 (size_t)nncc_tensor_elems(refs[i]) * nncc_dtype_size(refs[i]->dtype))) {
        fprintf(stderr, "thread %d run %d: output %d differs from the reference\n", id, r, i);
        bad = 1;
      }
  }
  for (int32_t i = 0; i < nout; i++) nncc_tensor_free(outs[i]);
  free(outs);
  nncc_session_destroy(s);
  return (void *)bad;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s MODEL.so [THREADS [RUNS]]\n", argv[0]);
    return 2;
  }
  int nthreads = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 8;
  if (argc > 3) runs = (int)strtol(argv[3], NULL, 10);
  if (nthreads < 1 || nthreads > 256 || runs < 1) return 2;
  char *err = NULL;
  if (nncc_model_open(argv[1], &model, &err) != NNCC_OK) {
    fprintf(stderr, "open: %s\n", err);
    nncc_free_message(err);
    return 1;
  }
  nin = nncc_model_num_inputs(model);
  nout = nncc_model_num_outputs(model);
  if (nin > 16 || nout > 16) return 1;
  ins = calloc((size_t)nin + 1, sizeof *ins);
  for (int32_t i = 0; i < nin; i++) {
    nncc_io_info info;
    int64_t dims[NNCC_MAX_RANK];
    nncc_model_input(model, i, &info);
    for (int32_t k = 0; k < info.rank; k++) dims[k] = info.dims[k] < 0 ? 5 : info.dims[k];
    ins[i] = nncc_tensor_alloc(info.dtype, info.rank, dims);
    fill(ins[i], (uint32_t)i * 7919u);
  }
  refs = alloc_outputs();
  if (!refs) return 1;
  nncc_session *s;
  if (nncc_session_create(model, 1, &s, &err) != NNCC_OK || run_once(s, refs)) return 1;
  nncc_session_destroy(s);

  pthread_t th[256];
  for (int t = 0; t < nthreads; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
  int bad = 0;
  for (int t = 0; t < nthreads; t++) {
    void *r;
    pthread_join(th[t], &r);
    if (r) bad = 1;
  }
  printf("concurrency: %d threads x %d runs: %s\n", nthreads, runs,
         bad ? "MISMATCH" : "all identical");
  for (int32_t i = 0; i < nin; i++) nncc_tensor_free(ins[i]);
  for (int32_t i = 0; i < nout; i++) nncc_tensor_free(refs[i]);
  free(ins);
  free(refs);
  nncc_model_close(model);
  return bad;
}
