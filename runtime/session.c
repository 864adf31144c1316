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
 *
 * Device memory (NNCC_TENSOR_DEVICE) is accepted for models compiled with
 * --target cuda only; their runs get the tensors' flags after the input
 * pointers (NNCC_CU_IO_TAG, abi/cuda_table.h), so the model uses
 * those pointers on the device as they are.
 *
 * Profiling (nncc.h "profiling"): the session owns one nanosecond counter
 * per step of the model's program, which the model runtime adds to while
 * profiling is on (the descriptor's set_profile), and times each whole
 * run itself; the report sorts the steps by time. NNCC_PROFILE in the
 * environment turns it on at creation and prints the report at destroy.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../abi/cuda_table.h"
#include "rt.h"

struct nncc_session {
  const nncc_model *m;     /* not owned; outlives the session */
  void *impl;              /* the model runtime's session */
  int nthreads;            /* resolved thread count (>= 1) */
  void **in;               /* ninputs data pointers, filled per run, then NULL
                              or NNCC_CU_IO_TAG and flags (CUDA models) */
  uint32_t *flags;         /* ninputs + noutputs tensor flags of the run */
  void **out;              /* noutputs data pointers, filled per run */
  int64_t *values;         /* symbol values of the current run */
  const int64_t **in_dims; /* the inputs' dims of the current run */
  uint64_t *prof_ns;       /* per-step nanoseconds (nsteps), once profiled */
  uint64_t prof_runs;      /* runs timed */
  uint64_t prof_run_ns;    /* their wall time in the model's code */
  bool profiling;          /* runs are timed now */
  bool prof_env;           /* profiling came from NNCC_PROFILE: report at destroy */
  int busy;                /* a call is using the session (atomic) */
  bool counted;            /* holds a reference to the model */
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether NNCC_PROFILE asks for profiling ("" and "0" don't). */
static bool profile_env(void) {
  const char *v = getenv("NNCC_PROFILE");
  return v && *v && strcmp(v, "0") != 0;
}

nncc_status nncc_session_create(const nncc_model *model, int nthreads, nncc_session **session,
                                char **err) {
  if (err) *err = NULL;
  if (!session) return rt_fail(err, NNCC_ERR_INVALID_ARG, "session is NULL");
  *session = NULL;
  if (!model) return rt_fail(err, NNCC_ERR_INVALID_ARG, "model is NULL");
  if (model->unusable) return rt_fail(err, NNCC_ERR_UNSUPPORTED_CPU, "%s", model->unusable);
  if (model->meta)
    return rt_fail(err, NNCC_ERR_INVALID_ARG,
                   "the model was opened with nncc_model_describe, which never loads its code; "
                   "open it with nncc_model_open to run it");
  if (nthreads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
  }
  if (nthreads > 1024)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "%d threads is too many (at most 1024)", nthreads);
  const nncc_model_desc *d = model->d;
  nncc_session *s = calloc(1, sizeof *s);
  if (s) {
    s->m = model;
    s->nthreads = nthreads;
    s->in = calloc((size_t)d->ninputs + 2, sizeof *s->in);
    s->flags = calloc((size_t)d->ninputs + (size_t)d->noutputs + 1, sizeof *s->flags);
    s->out = calloc((size_t)d->noutputs + 1, sizeof *s->out);
    s->values = calloc((size_t)d->nsyms + 1, sizeof *s->values);
    s->in_dims = calloc((size_t)d->ninputs + 1, sizeof *s->in_dims);
    if (s->in && s->flags && s->out && s->values && s->in_dims) s->impl = d->session_new(nthreads);
  }
  if (!s || !s->impl) {
    nncc_session_destroy(s);
    return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY,
                   "can't create a session (%llu bytes of workspace, %d threads)",
                   (unsigned long long)d->workspace_bytes, nthreads);
  }
  /* The model lives until its last session is gone (nncc_model_close
   * before that only drops the handle's reference). */
  __atomic_add_fetch(&((nncc_model *)model)->refs, 1, __ATOMIC_RELAXED);
  s->counted = true;
  if (profile_env() && nncc_session_set_profiling(s, 1, NULL) == NNCC_OK) s->prof_env = true;
  *session = s;
  return NNCC_OK;
}

void nncc_session_destroy(nncc_session *s) {
  if (!s) return;
  if (s->prof_env && s->profiling) {
    char *report = nncc_session_profile_report(s);
    if (report) fputs(report, stderr);
    free(report);
  }
  if (s->impl) s->m->d->session_free(s->impl);
  free(s->prof_ns);
  free(s->in);
  free(s->flags);
  free(s->out);
  free(s->values);
  free(s->in_dims);
  if (s->counted) rt_model_unref((nncc_model *)s->m);
  free(s);
}

int nncc_session_threads(const nncc_session *s) { return s ? s->nthreads : 0; }

/* Writes "[d0,d1,...]" into buf; a dim of -1 is written as text(k) when
 * that is given (a symbolic dim's name or expression). */
static void rt_dims_str(char *buf, size_t cap, int32_t rank, const int64_t *dims,
                        const nncc_model *m, int outputs, int32_t io) {
  size_t used = 0;
  buf[0] = 0;
  /* every caller passes rank dims (a descriptor's or a tensor's, checked) */
  // NOLINTBEGIN(clang-analyzer-core.NullDereference)
  for (int32_t k = 0; k <= rank && used < cap; k++) {
    const char *txt = k < rank && dims[k] < 0 && m && m->d->nsyms > 0
                          ? rt_dim_text(m, outputs, io, k)
                          : NULL;
    int w = k == rank ? snprintf(buf + used, cap - used, "]")
            : txt     ? snprintf(buf + used, cap - used, "%s%s", k ? "," : "[", txt)
                  : snprintf(buf + used, cap - used, "%s%lld", k ? "," : "[", (long long)dims[k]);
    if (w < 0) break;
    used += (size_t)w;
  }
  // NOLINTEND(clang-analyzer-core.NullDereference)
  if (rank == 0) snprintf(buf, cap, "[]");
}

/* Whether model d runs on a CUDA device (and so takes device memory). */
static bool rt_is_cuda(const nncc_model_desc *d) {
  return d->target && strcmp(d->target, "cuda") == 0;
}

/* Whether tensor t matches io exactly: the fast path of every run, with no
 * formatting (rt_check_tensor explains a mismatch). device: the model takes
 * NNCC_TENSOR_DEVICE tensors. */
static bool rt_tensor_ok(const nncc_tensor *t, const nncc_model_io *io, const int64_t *dims,
                         bool need_data, bool device) {
  if ((t->flags != NNCC_TENSOR_HOST && !(device && t->flags == NNCC_TENSOR_DEVICE)) ||
      (need_data && !t->data) || (int32_t)t->dtype != io->dtype || t->rank != io->rank ||
      (t->rank > 0 && !t->dims))
    return false;
  for (int32_t k = 0; dims && k < t->rank; k++)
    if (t->dims[k] != dims[k]) return false;
  return true;
}

/* Checks tensor t against io with dims `dims` (NULL: any dims, they are
 * checked by binding); `what` is "input" or "output". */
static nncc_status rt_check_tensor(const nncc_model *m, const nncc_tensor *t,
                                   const nncc_model_io *io, const int64_t *dims, bool need_data,
                                   const char *what, size_t i, char **err) {
  const nncc_model_desc *d = m->d;
  bool cuda = t->flags != NNCC_TENSOR_HOST && rt_is_cuda(d); /* host tensors: no compare */
  if (rt_tensor_ok(t, io, dims, need_data, cuda)) return NNCC_OK;
  char want[256];
  rt_dims_str(want, sizeof want, io->rank, dims ? dims : io->dims, m, what[0] == 'o', (int32_t)i);
  if (t->flags & ~(uint32_t)NNCC_TENSOR_DEVICE)
    return rt_fail(err, NNCC_ERR_INVALID_ARG,
                   "%s %zu ('%s'): flags 0x%x has unknown bits 0x%x (known: "
                   "NNCC_TENSOR_DEVICE = 0x%x)",
                   what, i, io->name, (unsigned)t->flags,
                   (unsigned)(t->flags & ~(uint32_t)NNCC_TENSOR_DEVICE),
                   (unsigned)NNCC_TENSOR_DEVICE);
  if (t->flags == NNCC_TENSOR_DEVICE && !cuda)
    return rt_fail(err, NNCC_ERR_INVALID_ARG,
                   "%s %zu ('%s'): device memory (NNCC_TENSOR_DEVICE) needs a model compiled "
                   "with --target cuda; this model's target is '%s' (pass host memory)",
                   what, i, io->name, d->target ? d->target : "cpu");
  if (need_data && !t->data)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "%s %zu ('%s'): data is NULL", what, i, io->name);
  if ((int32_t)t->dtype != io->dtype)
    return rt_fail(err, NNCC_ERR_DTYPE, "%s %zu ('%s'): dtype %s, the model expects %s%s", what, i,
                   io->name, nncc_dtype_name(t->dtype), nncc_dtype_name((nncc_dtype)io->dtype),
                   want);
  if (t->rank != io->rank)
    return rt_fail(err, NNCC_ERR_SHAPE, "%s %zu ('%s'): rank %d, the model expects rank %d %s",
                   what, i, io->name, (int)t->rank, (int)io->rank, want);
  if (t->rank > 0 && !t->dims)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "%s %zu ('%s'): dims is NULL", what, i, io->name);
  for (int32_t k = 0; dims && k < t->rank; k++)
    if (t->dims[k] != dims[k])
      return rt_fail(err, NNCC_ERR_SHAPE,
                     "%s %zu ('%s'): dim %d is %lld, the model expects %lld (shape %s)", what, i,
                     io->name, (int)k, (long long)t->dims[k], (long long)dims[k], want);
  return NNCC_OK;
}

/* Checks the inputs (dtype, rank; dims for a fixed model) and, for a
 * symbolic model, binds its symbols into values (in_dims: scratch for
 * ninputs pointers). */
static nncc_status rt_check_inputs(const nncc_model *m, const nncc_tensor *inputs, size_t ninputs,
                                   bool need_data, int64_t *values, const int64_t **in_dims,
                                   char **err) {
  const nncc_model_desc *d = m->d;
  if (ninputs != (size_t)d->ninputs)
    return rt_fail(err, NNCC_ERR_ARITY, "%zu input%s given, the model has %d", ninputs,
                   ninputs == 1 ? "" : "s", (int)d->ninputs);
  if (ninputs && !inputs) return rt_fail(err, NNCC_ERR_INVALID_ARG, "input array is NULL");
  nncc_status st;
  bool sym = d->nsyms > 0;
  for (size_t i = 0; i < ninputs; i++) {
    if ((st = rt_check_tensor(m, &inputs[i], &d->inputs[i], sym ? NULL : d->inputs[i].dims,
                              need_data, "input", i, err)))
      return st;
    in_dims[i] = inputs[i].dims;
  }
  if (!sym) return NNCC_OK;
  char msg[512];
  if (rt_bind(m, in_dims, values, msg, sizeof msg) != 0)
    return rt_fail(err, NNCC_ERR_SHAPE, "%s", msg);
  return NNCC_OK;
}

/* A symbolic model's checks need scratch for the symbol values and dims
 * pointers; outside a session it comes from the heap. */
typedef struct rt_scratch {
  int64_t *values;
  const int64_t **in_dims;
} rt_scratch;

static nncc_status rt_scratch_new(const nncc_model_desc *d, rt_scratch *sc, char **err) {
  sc->values = calloc((size_t)d->nsyms + 1, sizeof *sc->values);
  sc->in_dims = calloc((size_t)d->ninputs + 1, sizeof *sc->in_dims);
  if (sc->values && sc->in_dims) return NNCC_OK;
  free(sc->values);
  free(sc->in_dims);
  /* the status spelled out: rt_fail (loader.c) is opaque to the analyzer */
  (void)rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "out of memory");
  return NNCC_ERR_OUT_OF_MEMORY;
}

nncc_status nncc_model_output_dims(const nncc_model *m, const nncc_tensor *inputs, size_t ninputs,
                                   int32_t o, int64_t *dims, char **err) {
  if (err) *err = NULL;
  if (!m || !dims) return rt_fail(err, NNCC_ERR_INVALID_ARG, "%s is NULL", m ? "dims" : "model");
  const nncc_model_desc *d = m->d;
  if (o < 0 || o >= d->noutputs)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "output %d does not exist (the model has %d)", (int)o,
                   (int)d->noutputs);
  rt_scratch sc;
  nncc_status st = rt_scratch_new(d, &sc, err);
  if (st) return st;
  st = rt_check_inputs(m, inputs, ninputs, false, sc.values, sc.in_dims, err);
  if (!st) {
    if (d->nsyms > 0)
      rt_io_dims(m, 1, o, sc.values, dims);
    else
      memcpy(dims, d->outputs[o].dims, sizeof *dims * (size_t)d->outputs[o].rank);
  }
  free(sc.values);
  free(sc.in_dims);
  return st;
}

nncc_status nncc_model_workspace_size(const nncc_model *m, const nncc_tensor *inputs,
                                      size_t ninputs, uint64_t *bytes, char **err) {
  if (err) *err = NULL;
  if (!m || !bytes) return rt_fail(err, NNCC_ERR_INVALID_ARG, "%s is NULL", m ? "bytes" : "model");
  const nncc_model_desc *d = m->d;
  rt_scratch sc;
  nncc_status st = rt_scratch_new(d, &sc, err);
  if (st) return st;
  st = rt_check_inputs(m, inputs, ninputs, false, sc.values, sc.in_dims, err);
  if (!st) {
    *bytes = d->nsyms > 0 ? rt_workspace_for(m, sc.values) : d->workspace_bytes;
    if (*bytes == UINT64_MAX)
      st = rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "the workspace for these shapes is too large");
  }
  free(sc.values);
  free(sc.in_dims);
  return st;
}

/* Takes the session for one call; false when another thread has it. */
static bool rt_enter(nncc_session *s) {
  return !__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE);
}
static void rt_leave(nncc_session *s) { __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE); }

#define RT_BUSY(err)          \
  rt_fail(err, NNCC_ERR_BUSY, \
          "the session is in use by another thread (use one session per thread)")

nncc_status nncc_session_set_workspace(nncc_session *s, void *mem, uint64_t bytes, char **err) {
  if (err) *err = NULL;
  if (!s) return rt_fail(err, NNCC_ERR_INVALID_ARG, "session is NULL");
  if (mem && (uintptr_t)mem % 64)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "the workspace must be 64-byte aligned");
  if (mem && bytes < s->m->d->workspace_bytes)
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "the workspace has %llu bytes; the model needs %llu",
                   (unsigned long long)bytes, (unsigned long long)s->m->d->workspace_bytes);
  if (!rt_enter(s)) return RT_BUSY(err);
  int rc = s->m->d->set_workspace(s->impl, mem, bytes);
  rt_leave(s);
  if (rc != 0) return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "can't switch the workspace");
  return NNCC_OK;
}

/* Bytes of tensor t's data (0 when its dims make no sense: checked later). */
static uint64_t rt_tensor_bytes(const nncc_tensor *t) {
  uint64_t n = nncc_dtype_size(t->dtype);
  for (int32_t k = 0; k < t->rank && t->dims; k++) {
    if (t->dims[k] < 0) return 0;
    if (t->dims[k] && n > UINT64_MAX / (uint64_t)t->dims[k]) return UINT64_MAX;
    n *= (uint64_t)t->dims[k];
  }
  return n;
}

/* Whether the data of tensors a and b share a byte (host memory only: two
 * device pointers are compared the same way, which is right for one
 * device's address space). */
static bool rt_overlap(const nncc_tensor *a, const nncc_tensor *b) {
  uint64_t na = rt_tensor_bytes(a), nb = rt_tensor_bytes(b);
  uintptr_t pa = (uintptr_t)a->data, pb = (uintptr_t)b->data;
  if (!na || !nb || a->flags != b->flags) return false;
  return pa < pb ? pb - pa < na : pa - pb < nb;
}

static nncc_status run_checked(nncc_session *s, const nncc_tensor *inputs, size_t ninputs,
                               const nncc_tensor *outputs, size_t noutputs, char **err) {
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
  nncc_status st = rt_check_inputs(s->m, inputs, ninputs, true, s->values, s->in_dims, err);
  if (st) return st;
  bool device = false;
  for (size_t i = 0; i < ninputs; i++) {
    s->in[i] = inputs[i].data;
    s->flags[i] = inputs[i].flags;
    device |= inputs[i].flags != NNCC_TENSOR_HOST;
  }
  bool sym = d->nsyms > 0;
  for (size_t i = 0; i < noutputs; i++) {
    int64_t want[NNCC_MAX_RANK] = {0};
    if (sym) d->io_dims(1, (int32_t)i, s->values, want);
    if ((st = rt_check_tensor(s->m, &outputs[i], &d->outputs[i], sym ? want : d->outputs[i].dims,
                              true, "output", i, err)))
      return st;
    s->out[i] = outputs[i].data;
    s->flags[ninputs + i] = outputs[i].flags;
    device |= outputs[i].flags != NNCC_TENSOR_HOST;
  }
  /* The generated code reads inputs while it writes outputs: memory shared
   * between them would give wrong results, not an error. */
  for (size_t i = 0; i < noutputs; i++) {
    for (size_t j = 0; j < ninputs; j++)
      if (rt_overlap(&outputs[i], &inputs[j]))
        return rt_fail(err, NNCC_ERR_INVALID_ARG,
                       "output %zu ('%s') and input %zu ('%s') share memory; outputs need "
                       "memory of their own",
                       i, d->outputs[i].name, j, d->inputs[j].name);
    for (size_t j = 0; j < i; j++)
      if (rt_overlap(&outputs[i], &outputs[j]))
        return rt_fail(err, NNCC_ERR_INVALID_ARG,
                       "outputs %zu ('%s') and %zu ('%s') share memory; outputs need memory "
                       "of their own",
                       j, d->outputs[j].name, i, d->outputs[i].name);
  }
  /* checked above: only a CUDA model gets here with device tensors */
  s->in[ninputs] = device ? NNCC_CU_IO_TAG : NULL;
  s->in[ninputs + 1] = device ? (void *)s->flags : NULL;
  uint64_t t0 = s->profiling ? now_ns() : 0;
  int rc = sym ? d->run_dims(s->impl, s->values, s->in, s->out) : d->run(s->impl, s->in, s->out);
  if (s->profiling) {
    s->prof_run_ns += now_ns() - t0;
    s->prof_runs++;
  }
  if (rc == NNCC_RT_CHECK_FAILED && d->check_message) {
    char msg[512];
    d->check_message(s->impl, msg, sizeof msg);
    return rt_fail(err, NNCC_ERR_INPUT_VALUE, "%s", msg);
  }
  if (sym && rc == -2)
    return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY,
                   "can't get the workspace for these shapes (%llu bytes)",
                   (unsigned long long)d->workspace_for(s->values));
  if (rc != 0) return rt_fail(err, NNCC_ERR_RUNTIME, "the model's code returned status %d", rc);
  return NNCC_OK;
}

nncc_status nncc_session_run(nncc_session *s, const nncc_tensor *inputs, size_t ninputs,
                             const nncc_tensor *outputs, size_t noutputs, char **err) {
  if (err) *err = NULL;
  if (!s) return rt_fail(err, NNCC_ERR_INVALID_ARG, "session is NULL");
  if (!rt_enter(s)) return RT_BUSY(err);
  nncc_status st = run_checked(s, inputs, ninputs, outputs, noutputs, err);
  rt_leave(s);
  return st;
}

/* ---- profiling ----------------------------------------------------------------- */

nncc_status nncc_session_set_profiling(nncc_session *s, int on, char **err) {
  if (err) *err = NULL;
  if (!s) return rt_fail(err, NNCC_ERR_INVALID_ARG, "session is NULL");
  const nncc_model_desc *d = s->m->d;
  if (!d->set_profile)
    return rt_fail(err, NNCC_ERR_INVALID_ARG,
                   "the model has no profiling support (compiled by %s); compile it again",
                   d->compiler);
  if (!rt_enter(s)) return RT_BUSY(err);
  if (on && !s->prof_ns && !(s->prof_ns = calloc((size_t)d->nsteps + 1, sizeof *s->prof_ns))) {
    rt_leave(s);
    return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "out of memory");
  }
  d->set_profile(s->impl, on ? s->prof_ns : NULL);
  s->profiling = on != 0;
  rt_leave(s);
  return NNCC_OK;
}

void nncc_session_profile_reset(nncc_session *s) {
  if (!s) return;
  if (s->prof_ns) memset(s->prof_ns, 0, sizeof *s->prof_ns * (size_t)s->m->d->nsteps);
  s->prof_runs = s->prof_run_ns = 0;
}

/* Most time first; equal times in program order. */
static int row_cmp(const void *a, const void *b) {
  const nncc_profile_row *x = a, *y = b;
  if (x->ns != y->ns) return x->ns < y->ns ? 1 : -1;
  return (x->step > y->step) - (x->step < y->step);
}

/* Every step's row, sorted (malloc'd; NULL when out of memory). */
static nncc_profile_row *profile_rows(const nncc_session *s) {
  const nncc_model_desc *d = s->m->d;
  int32_t n = d->set_profile ? d->nsteps : 0;
  nncc_profile_row *rows = calloc((size_t)n + 1, sizeof *rows);
  if (!rows) return NULL;
  uint64_t sum = 0;
  for (int32_t i = 0; i < n; i++) sum += s->prof_ns ? s->prof_ns[i] : 0;
  for (int32_t i = 0; i < n; i++) {
    const nncc_model_step *st = &d->steps[i];
    uint64_t ns = s->prof_ns ? s->prof_ns[i] : 0;
    rows[i] = (nncc_profile_row){i,
                                 st->kernel,
                                 st->ops,
                                 st->scope,
                                 st->loc,
                                 ns,
                                 sum ? 100.0 * (double)ns / (double)sum : 0.0};
  }
  qsort(rows, (size_t)n, sizeof *rows, row_cmp);
  return rows;
}

nncc_status nncc_session_profile(const nncc_session *s, nncc_profile_row *rows, int32_t cap,
                                 int32_t *nrows, uint64_t *runs, uint64_t *run_ns) {
  if (!s || !nrows || (cap > 0 && !rows)) return NNCC_ERR_INVALID_ARG;
  const nncc_model_desc *d = s->m->d;
  *nrows = d->set_profile ? d->nsteps : 0;
  if (runs) *runs = s->prof_runs;
  if (run_ns) *run_ns = s->prof_run_ns;
  if (cap <= 0 || *nrows == 0) return NNCC_OK;
  nncc_profile_row *all = profile_rows(s);
  if (!all) return NNCC_ERR_OUT_OF_MEMORY;
  memcpy(rows, all, sizeof *rows * (size_t)(cap < *nrows ? cap : *nrows));
  free(all);
  return NNCC_OK;
}

/* Appends printf-style text to the growing string *buf (len, cap); on
 * failure frees it and sets it to NULL. */
static void report_add(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_add(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
  if (!*buf) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    if (w < 0) break;
    if ((size_t)w < *cap - *len) {
      *len += (size_t)w;
      return;
    }
    char *b = realloc(*buf, *cap * 2 + (size_t)w);
    if (!b) break;
    *buf = b;
    *cap = *cap * 2 + (size_t)w;
  }
  free(*buf);
  *buf = NULL;
}

static int str_width(const char *s, int w) {
  int n = (int)strlen(s);
  return n > w ? n : w;
}

char *nncc_session_profile_report(const nncc_session *s) {
  if (!s) return NULL;
  const nncc_model_desc *d = s->m->d;
  nncc_profile_row *rows = profile_rows(s);
  size_t len = 0, cap = 1024;
  char *buf = rows ? malloc(cap) : NULL;
  if (!buf) {
    free(rows);
    return NULL;
  }
  int32_t n = d->set_profile ? d->nsteps : 0;
  uint64_t runs = s->prof_runs ? s->prof_runs : 1, sum = 0;
  for (int32_t i = 0; i < n; i++) sum += rows[i].ns;
  report_add(&buf, &len, &cap,
             "nncc profile: model %s, %llu run%s, %d thread%s: %.3f ms per run, "
             "%d step%s %.3f ms (%.1f%%)\n",
             d->model_name, (unsigned long long)s->prof_runs, s->prof_runs == 1 ? "" : "s",
             s->nthreads, s->nthreads == 1 ? "" : "s", (double)s->prof_run_ns / 1e6 / (double)runs,
             (int)n, n == 1 ? "" : "s", (double)sum / 1e6 / (double)runs,
             s->prof_run_ns ? 100.0 * (double)sum / (double)s->prof_run_ns : 0.0);
  int wk = 6, wo = 3, ws = 5;
  for (int32_t i = 0; i < n; i++) {
    wk = str_width(rows[i].kernel, wk);
    wo = str_width(rows[i].ops, wo);
    ws = str_width(rows[i].scope, ws);
  }
  if (wo > 48) wo = 48; /* long fused groups overflow their column */
  report_add(&buf, &len, &cap, "%10s %6s %6s %5s  %-*s  %-*s  %-*s  %s\n", "us/run", "%", "cum%",
             "step", wk, "kernel", wo, "ops", ws, "scope", "source");
  double cum = 0;
  for (int32_t i = 0; i < n; i++) {
    cum += rows[i].percent;
    report_add(&buf, &len, &cap, "%10.1f %5.1f%% %5.1f%% %5d  %-*s  %-*s  %-*s  %s\n",
               (double)rows[i].ns / 1e3 / (double)runs, rows[i].percent, cum, (int)rows[i].step, wk,
               rows[i].kernel, wo, rows[i].ops, ws, *rows[i].scope ? rows[i].scope : "-",
               *rows[i].loc ? rows[i].loc : "-");
  }
  free(rows);
  return buf;
}
