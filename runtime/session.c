/* session.c — sessions and running a model (nncc.h "sessions").
 *
 * A session pairs a model with the model runtime's per-session state (the
 * workspace and the thread pool, made by the descriptor's session_new) and
 * two pointer arrays for the data pointers handed to the graph function, so
 * a run allocates nothing. nncc_session_run checks every tensor against the
 * model's description before the generated code sees it: the generated code
 * trusts its shapes completely, so this is the one place where bad input is
 * turned into an error instead of an out-of-bounds access. The checks are
 * a few compares per tensor; messages are formatted only for a mismatch.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

struct nncc_session {
  const nncc_model *m; /* not owned; outlives the session */
  void *impl;          /* the model runtime's session */
  int nthreads;        /* resolved thread count (>= 1) */
  void **in;           /* ninputs data pointers, filled per run */
  void **out;          /* noutputs data pointers, filled per run */
};

nncc_status nncc_session_create(const nncc_model *model, int nthreads,
                                nncc_session **session, char **err) {
  if (err) *err = NULL;
  if (!session) return rt_fail(err, NNCC_ERR_INVALID_ARG, "session is NULL");
  *session = NULL;
  if (!model) return rt_fail(err, NNCC_ERR_INVALID_ARG, "model is NULL");
  if (nthreads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
  }
  if (nthreads > 1024)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "%d threads is too many (at most 1024)",
                   nthreads);
  const nncc_model_desc *d = model->d;
  nncc_session *s = calloc(1, sizeof *s);
  if (s) {
    s->m = model;
    s->nthreads = nthreads;
    s->in = calloc((size_t)d->ninputs + 1, sizeof *s->in);
    s->out = calloc((size_t)d->noutputs + 1, sizeof *s->out);
    if (s->in && s->out) s->impl = d->session_new(nthreads);
  }
  if (!s || !s->impl) {
    nncc_session_destroy(s);
    return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY,
                   "can't create a session (%llu bytes of workspace, %d threads)",
                   (unsigned long long)d->workspace_bytes, nthreads);
  }
  *session = s;
  return NNCC_OK;
}

void nncc_session_destroy(nncc_session *s) {
  if (!s) return;
  if (s->impl) s->m->d->session_free(s->impl);
  free(s->in);
  free(s->out);
  free(s);
}

int nncc_session_threads(const nncc_session *s) { return s ? s->nthreads : 0; }

/* Appends "[d0,d1,...]" of io to buf. */
static void rt_dims_str(char *buf, size_t cap, int32_t rank, const int64_t *dims) {
  size_t used = 0;
  buf[0] = 0;
  for (int32_t k = 0; k <= rank && used < cap; k++) {
    int w = k == rank ? snprintf(buf + used, cap - used, "]")
                      : snprintf(buf + used, cap - used, "%s%lld", k ? "," : "[",
                                 (long long)dims[k]);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (rank == 0) snprintf(buf, cap, "[]");
}

/* Whether tensor t matches io exactly: the fast path of every run, with no
 * formatting (rt_check_tensor explains a mismatch). */
static bool rt_tensor_ok(const nncc_tensor *t, const nncc_model_io *io) {
  if (t->flags != NNCC_TENSOR_HOST || !t->data || (int32_t)t->dtype != io->dtype ||
      t->rank != io->rank || (t->rank > 0 && !t->dims))
    return false;
  for (int32_t k = 0; k < t->rank; k++)
    if (t->dims[k] != io->dims[k]) return false;
  return true;
}

/* Checks tensor t against io; `what` is "input" or "output". */
static nncc_status rt_check_tensor(const nncc_tensor *t, const nncc_model_io *io,
                                   const char *what, size_t i, char **err) {
  if (rt_tensor_ok(t, io)) return NNCC_OK;
  char want[256];
  rt_dims_str(want, sizeof want, io->rank, io->dims);
  if (t->flags != NNCC_TENSOR_HOST)
    return rt_fail(err, NNCC_ERR_INVALID_ARG,
                   "%s %zu ('%s'): flags 0x%x are not supported (host memory only)",
                   what, i, io->name, (unsigned)t->flags);
  if (!t->data)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "%s %zu ('%s'): data is NULL", what, i,
                   io->name);
  if ((int32_t)t->dtype != io->dtype)
    return rt_fail(err, NNCC_ERR_DTYPE, "%s %zu ('%s'): dtype %s, the model expects %s%s",
                   what, i, io->name, nncc_dtype_name(t->dtype),
                   nncc_dtype_name((nncc_dtype)io->dtype), want);
  if (t->rank != io->rank)
    return rt_fail(err, NNCC_ERR_SHAPE, "%s %zu ('%s'): rank %d, the model expects rank %d %s",
                   what, i, io->name, (int)t->rank, (int)io->rank, want);
  if (t->rank > 0 && !t->dims)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "%s %zu ('%s'): dims is NULL", what, i,
                   io->name);
  for (int32_t k = 0; k < t->rank; k++)
    if (t->dims[k] != io->dims[k])
      return rt_fail(err, NNCC_ERR_SHAPE,
                     "%s %zu ('%s'): dim %d is %lld, the model expects %lld (shape %s)",
                     what, i, io->name, (int)k, (long long)t->dims[k],
                     (long long)io->dims[k], want);
  return NNCC_OK;
}

nncc_status nncc_session_run(nncc_session *s, const nncc_tensor *inputs, size_t ninputs,
                             const nncc_tensor *outputs, size_t noutputs, char **err) {
  if (err) *err = NULL;
  if (!s) return rt_fail(err, NNCC_ERR_INVALID_ARG, "session is NULL");
  const nncc_model_desc *d = s->m->d;
  if (ninputs != (size_t)d->ninputs)
    return rt_fail(err, NNCC_ERR_ARITY, "%zu input%s given, the model has %d", ninputs,
                   ninputs == 1 ? "" : "s", (int)d->ninputs);
  if (noutputs != (size_t)d->noutputs)
    return rt_fail(err, NNCC_ERR_ARITY, "%zu output%s given, the model has %d", noutputs,
                   noutputs == 1 ? "" : "s", (int)d->noutputs);
  if ((ninputs && !inputs) || (noutputs && !outputs))
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "%s array is NULL",
                   ninputs && !inputs ? "input" : "output");
  nncc_status st;
  for (size_t i = 0; i < ninputs; i++) {
    if ((st = rt_check_tensor(&inputs[i], &d->inputs[i], "input", i, err))) return st;
    s->in[i] = inputs[i].data;
  }
  for (size_t i = 0; i < noutputs; i++) {
    if ((st = rt_check_tensor(&outputs[i], &d->outputs[i], "output", i, err))) return st;
    s->out[i] = outputs[i].data;
  }
  int rc = d->run(s->impl, s->in, s->out);
  if (rc != 0)
    return rt_fail(err, NNCC_ERR_RUNTIME, "the model's code returned status %d", rc);
  return NNCC_OK;
}
