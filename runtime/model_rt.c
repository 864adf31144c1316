/* model_rt.c — the model runtime linked into every model.so.
 *
 * It defines the .so's one exported symbol, nncc_model_v1(), which parses
 * the metadata blob written by backends/artifact.c (format in abi.h; the
 * parser, abi/meta.c, is shared with the runtime library) into a
 * nncc_model_desc the first time it is called (pthread_once, so concurrent
 * loaders are safe) and returns it on every call. The descriptor's functions
 * check the CPU's features, create and free sessions (workspace + thread
 * pool, see pool.c) and run the generated graph function.
 *
 * Symbolic dims. A model compiled without fixed shapes carries a table of
 * dim expressions over its symbols (abi.h). A run binds the symbols from
 * the input tensors' dims (bind: each symbol gets one value, within its
 * range, and every symbolic dim of the program must come out >= 1), then
 * the session plans the workspace for those values with the compiler's
 * own planner (abi/plan.c: the buffers' sizes evaluated, offsets packed) and
 * keeps that plan until a run brings other values, so repeated runs at one
 * shape plan and allocate nothing.
 *
 * Profiling. The metadata names every step of the graph function (its
 * kernel, IR ops, module scope and source line). A session that profiles
 * gets caller memory for per-step nanoseconds (set_profile) and raises
 * nncc_rt_profiling; while that count is not zero the generated code
 * calls nncc_rt_prof_mark before each step and at the end, and the mark
 * adds the time since the previous one to the running session's counter
 * for the step that just ended. The profiled session running on a thread
 * is found through a pthread key, set only around profiled runs, so
 * sessions on other threads (profiling or not) are unaffected. (A key,
 * not __thread: TLS in a dlopened object would add a dependency on the
 * dynamic loader, or use up static TLS space.) With no profiling session
 * the cost is one load and an untaken branch per step.
 *
 * This file is compiled once, when nncc is built, with -fPIC
 * -fvisibility=hidden and no sanitizers, and its object is embedded in the
 * nncc binary; it must depend on nothing but libc and libpthread. The
 * parsed descriptor is freed by a destructor when the .so is unloaded.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../abi/abi.h"
#include "../abi/plan.h"

/* Defined by the generated code and the data object of the same .so. */
extern int nncc_graph_run(void *const *inputs, void *const *outputs, unsigned char *workspace,
                          const unsigned char *weights, void *pool, const int64_t *dims,
                          const int64_t *offsets, int64_t *status);
extern const unsigned char nncc_weights[];
extern const unsigned char nncc_meta[];
extern const unsigned char nncc_meta_end[];

/* ---- metadata ------------------------------------------------------------- */

static ab_meta rt;               /* the parsed blob (abi/meta.c) */
static nncc_model_desc *rt_desc; /* &rt.desc once parsed, NULL if malformed */
static pthread_once_t rt_once = PTHREAD_ONCE_INIT;
static pthread_key_t rt_prof_key; /* the profiled session running on a thread */
static bool rt_prof_key_ok;       /* the key was created (rt_parse) */

static int rt_check_cpu(char *msg, size_t cap);
static void *rt_session_new(int nthreads);
static void rt_session_free(void *s);
static int rt_run(void *s, void *const *inputs, void *const *outputs);
static int rt_run_dims(void *s, const int64_t *values, void *const *inputs, void *const *outputs);
static int rt_set_workspace(void *s, void *mem, uint64_t bytes);
static void rt_set_profile(void *s, uint64_t *ns);
static void rt_check_message(void *s, char *msg, size_t cap);

static int rt_bind(const int64_t *const *input_dims, int64_t *values, char *msg, size_t cap) {
  return ab_meta_bind(&rt, input_dims, values, msg, cap);
}
static void rt_io_dims(int outputs, int32_t i, const int64_t *values, int64_t *dims) {
  ab_meta_io_dims(&rt, outputs, i, values, dims);
}
static const char *rt_dim_text(int outputs, int32_t i, int32_t d) {
  return ab_meta_dim_text(&rt, outputs, i, d);
}
static uint64_t rt_workspace_for(const int64_t *values) { return ab_meta_plan(&rt, values, NULL); }

static void rt_parse(void) {
  if (ab_meta_parse(nncc_meta, (size_t)(nncc_meta_end - nncc_meta), &rt)) return;
  nncc_model_desc *d = &rt.desc;
  d->check_cpu = rt_check_cpu;
  d->session_new = rt_session_new;
  d->session_free = rt_session_free;
  d->run = rt_run;
  d->bind = rt_bind;
  d->io_dims = rt_io_dims;
  d->dim_text = rt_dim_text;
  d->workspace_for = rt_workspace_for;
  d->run_dims = rt_run_dims;
  d->set_workspace = rt_set_workspace;
  d->set_profile = rt_set_profile;
  d->check_message = rt_check_message;
  rt_prof_key_ok = pthread_key_create(&rt_prof_key, NULL) == 0;
  rt_desc = d;
}

__attribute__((destructor)) static void rt_unload(void) {
  if (rt_prof_key_ok) pthread_key_delete(rt_prof_key);
  rt_prof_key_ok = false;
  rt_desc = NULL;
  ab_meta_free(&rt);
}

__attribute__((visibility("default"))) const nncc_model_desc *nncc_model_v1(void) {
  pthread_once(&rt_once, rt_parse);
  return rt_desc;
}

/* ---- CPU features ----------------------------------------------------------- */

/* Linked in only by CUDA models (model_rt_cuda.c): can this process reach a
 * GPU? */
extern int nncc_cu_probe(char *msg, size_t cap) __attribute__((weak));

static int rt_check_cpu(char *msg, size_t cap) {
  if (nncc_cu_probe) return nncc_cu_probe(msg, cap); /* a CUDA model: needs a GPU */
  return ab_cpu_check(rt_desc ? rt_desc->features : "", rt_desc ? rt_desc->cpu : "?", msg, cap);
}

/* ---- sessions ----------------------------------------------------------------- */

typedef struct rt_session {
  unsigned char *workspace; /* 64-byte aligned, cap bytes */
  uint64_t cap;             /* bytes of workspace */
  bool borrowed;            /* workspace is the caller's (set_workspace) */
  rt_pool *pool;            /* nthreads threads */
  /* symbolic models: the plan of the last run's symbol values */
  int64_t *values; /* nsyms values it was made for */
  int64_t *offs;   /* byte offset of each planned buffer */
  uint64_t arena;  /* its arena bytes */
  bool planned;    /* values/offs/arena are valid */
  uint64_t *prof;  /* per-step nanoseconds (caller memory) while
                      profiling, else NULL */
  uint64_t prof_t; /* when the running step started */
  /* the run's status block (its own cache line: the generated code's
   * checks write it from any pool thread), and the last failure */
  int64_t status[NNCC_STATUS_WORDS] __attribute__((aligned(64)));
  int64_t failed[NNCC_STATUS_WORDS];
} rt_session;

/* ---- profiling ------------------------------------------------------------ */

__attribute__((visibility("hidden"))) int nncc_rt_profiling;

static uint64_t rt_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((visibility("hidden"))) void nncc_rt_prof_mark(int32_t step) {
  rt_session *s = rt_prof_key_ok ? pthread_getspecific(rt_prof_key) : NULL;
  if (!s || !s->prof) return;
  uint64_t t = rt_now_ns();
  if (step > 0 && step <= rt_desc->nsteps) s->prof[step - 1] += t - s->prof_t;
  s->prof_t = t;
}

static void rt_set_profile(void *session, uint64_t *ns) {
  rt_session *s = session;
  if (ns && !s->prof) __atomic_add_fetch(&nncc_rt_profiling, 1, __ATOMIC_RELAXED);
  if (!ns && s->prof) __atomic_sub_fetch(&nncc_rt_profiling, 1, __ATOMIC_RELAXED);
  s->prof = ns;
}

/* Runs the graph function, timing its steps when the session profiles;
 * NNCC_RT_CHECK_FAILED when a run-time check failed (s->failed says
 * which). */
static int rt_graph_run(rt_session *s, void *const *inputs, void *const *outputs,
                        const int64_t *values, const int64_t *offs) {
  int rc;
  memset(s->status, 0, sizeof s->status);
  if (!s->prof || !rt_prof_key_ok) {
    rc = nncc_graph_run(inputs, outputs, s->workspace, nncc_weights, s->pool, values, offs,
                        s->status);
  } else {
    pthread_setspecific(rt_prof_key, s);
    rc = nncc_graph_run(inputs, outputs, s->workspace, nncc_weights, s->pool, values, offs,
                        s->status);
    pthread_setspecific(rt_prof_key, NULL);
  }
  if (rc == 0 && s->status[0] != 0) {
    memcpy(s->failed, s->status, sizeof s->failed);
    return NNCC_RT_CHECK_FAILED;
  }
  return rc;
}

static void rt_check_message(void *session, char *msg, size_t cap) {
  rt_session *s = session;
  ab_meta_check_message(&rt, s->failed, msg, cap);
}

/* Zeroed workspace memory of `bytes` (a multiple of 64): 64-byte
 * aligned; an arena of 4 MiB or more is aligned to 2 MiB and asked to be
 * backed by huge pages, where the kernel grants them. The layers of a CNN
 * stream through megabytes of it; with 4 KiB pages, resnet18 at 2 threads
 * ran 25 % slower in some processes than in others, depending on where
 * the allocator had put the arena. */
static void *rt_ws_alloc(uint64_t bytes) {
  enum { HUGE = 2u << 20 };
  if (bytes > (uint64_t)SIZE_MAX - HUGE) return NULL;
  void *w;
  if (bytes >= 2 * (uint64_t)HUGE) {
    size_t n = ((size_t)bytes + HUGE - 1) / HUGE * HUGE;
    w = aligned_alloc(HUGE, n);
#ifdef MADV_HUGEPAGE
    if (w) (void)madvise(w, n, MADV_HUGEPAGE);
#endif
  } else {
    w = aligned_alloc(64, (size_t)bytes);
  }
  if (w) memset(w, 0, (size_t)bytes); /* runs start from the same state */
  return w;
}

static void *rt_session_new(int nthreads) {
  if (!rt_desc) return NULL;
  rt_session *s = aligned_alloc(64, (sizeof(rt_session) + 63) / 64 * 64);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  uint64_t ws = (rt_desc->workspace_bytes + 63) / 64 * 64;
  if (ws == 0) ws = 64;
  s->cap = ws;
  if (!(s->workspace = rt_ws_alloc(ws)) || !(s->pool = rt_pool_new(nthreads)) ||
      !(s->values = calloc((size_t)rt_desc->nsyms + 1, sizeof *s->values)) ||
      !(s->offs = calloc((size_t)rt.nbufs + 1, sizeof *s->offs))) {
    rt_session_free(s);
    return NULL;
  }
  return s;
}

static void rt_session_free(void *session) {
  rt_session *s = session;
  if (!s) return;
  rt_set_profile(s, NULL);
  rt_pool_free(s->pool);
  if (!s->borrowed) free(s->workspace);
  free(s->values);
  free(s->offs);
  free(s);
}

static int rt_run(void *session, void *const *inputs, void *const *outputs) {
  rt_session *s = session;
  if (rt_desc->nsyms > 0) return -2; /* needs symbol values: run_dims */
  return rt_graph_run(s, inputs, outputs, NULL, NULL);
}

static int rt_set_workspace(void *session, void *mem, uint64_t bytes) {
  rt_session *s = session;
  if (mem && ((uintptr_t)mem % 64 || bytes < rt_desc->workspace_bytes)) return -1;
  if (!s->borrowed) free(s->workspace);
  s->workspace = mem;
  s->cap = mem ? bytes : 0;
  s->borrowed = mem != NULL;
  if (!mem) { /* back to owned memory, allocated again as needed */
    uint64_t ws = rt_desc->workspace_bytes ? (rt_desc->workspace_bytes + 63) / 64 * 64 : 64;
    s->workspace = rt_ws_alloc(ws);
    s->cap = s->workspace ? ws : 0;
  }
  return 0;
}

static int rt_run_dims(void *session, const int64_t *values, void *const *inputs,
                       void *const *outputs) {
  rt_session *s = session;
  int32_t ns = rt_desc->nsyms;
  if (ns == 0) return rt_run(session, inputs, outputs);
  if (!s->planned || memcmp(s->values, values, sizeof *values * (size_t)ns)) {
    s->planned = false;
    uint64_t arena = ab_meta_plan(&rt, values, s->offs);
    if (arena == UINT64_MAX) return -2;
    memcpy(s->values, values, sizeof *values * (size_t)ns);
    s->arena = arena;
    s->planned = true;
  }
  if (s->arena > s->cap || !s->workspace) {
    if (s->borrowed) return -2;
    uint64_t want = (s->arena + 63) / 64 * 64;
    if (want == 0) want = 64;
    unsigned char *w = rt_ws_alloc(want);
    if (!w) return -2;
    free(s->workspace);
    s->workspace = w;
    s->cap = want;
  }
  return rt_graph_run(s, inputs, outputs, values, s->offs);
}
