/* model_rt.c — the model runtime linked into every model.so.
 *
 * It defines the .so's one exported symbol, nncc_model_v1(), which parses
 * the metadata blob written by backends/artifact.c (format in abi.h) into a
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
 * own planner (plan.c: the buffers' sizes evaluated, offsets packed) and
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
                          const int64_t *offsets);
extern const unsigned char nncc_weights[];
extern const unsigned char nncc_meta[];
extern const unsigned char nncc_meta_end[];

/* ---- metadata ------------------------------------------------------------- */

typedef struct rt_reader {
  const unsigned char *p, *end; /* unread bytes */
  bool bad;                     /* a read ran past the end */
} rt_reader;

static uint64_t rd_le(rt_reader *r, int bytes) {
  if (r->bad || r->end - r->p < bytes) {
    r->bad = true;
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[i] << (8 * i);
  r->p += bytes;
  return v;
}

/* A str field copied NUL-terminated to *out (bump-allocated from *heap). */
static const char *rd_str(rt_reader *r, char **heap, const char *heap_end) {
  uint64_t n = rd_le(r, 4);
  if (r->bad || (uint64_t)(r->end - r->p) < n || (uint64_t)(heap_end - *heap) < n + 1) {
    r->bad = true;
    return "";
  }
  char *s = *heap;
  memcpy(s, r->p, n);
  s[n] = 0;
  *heap += n + 1;
  r->p += n;
  return s;
}

static nncc_model_desc *rt_desc; /* parsed descriptor, NULL if malformed */
static void *rt_desc_block;      /* the one allocation behind it */
static pthread_once_t rt_once = PTHREAD_ONCE_INIT;
static pthread_key_t rt_prof_key; /* the profiled session running on a thread */
static bool rt_prof_key_ok;       /* the key was created (rt_parse) */

static int rt_check_cpu(char *msg, size_t cap);
static void *rt_session_new(int nthreads);
static void rt_session_free(void *s);
static int rt_run(void *s, void *const *inputs, void *const *outputs);

/* One dim expression (abi.h). */
typedef struct rt_expr {
  const char *text; /* as printed by nncc */
  uint8_t kind;     /* 0 const, 1 symbol, 2 add, 3 mul, 4 div, 5 floordiv, 6 mod */
  int64_t c;        /* const: the value; symbol: its index */
  uint32_t a, b;    /* operands (earlier expressions) */
} rt_expr;

/* A workspace buffer planned per shape. */
typedef struct rt_block {
  uint32_t buf, esize, elems, first, last;
} rt_block;

/* What the descriptor doesn't hold, parsed alongside it. */
static struct {
  nncc_model_sym *syms;
  rt_expr *exprs;
  uint32_t nexprs;
  uint32_t *checks;
  uint32_t nchecks;
  uint32_t *guards;       /* pairs of expressions that must be equal */
  const char **guard_loc; /* where each was assumed */
  uint32_t nguards;
  uint32_t nbufs;
  rt_block *blocks;
  uint32_t nblocks;
  const int64_t *dims_base; /* the descriptor's io dims array */
  int64_t *enc;             /* the io dims as written (same layout) */
  int32_t nio_dims;         /* entries of both */
} rt;

static int rt_bind(const int64_t *const *input_dims, int64_t *values, char *msg, size_t cap);
static void rt_io_dims(int outputs, int32_t i, const int64_t *values, int64_t *dims);
static const char *rt_dim_text(int outputs, int32_t i, int32_t d);
static uint64_t rt_workspace_for(const int64_t *values);
static int rt_run_dims(void *s, const int64_t *values, void *const *inputs, void *const *outputs);
static int rt_set_workspace(void *s, void *mem, uint64_t bytes);
static void rt_set_profile(void *s, uint64_t *ns);

/* Reads n io records into ios; dims go to *dims. */
static void rd_ios(rt_reader *r, nncc_model_io *ios, int32_t n, int64_t **dims, char **heap,
                   const char *heap_end) {
  for (int32_t i = 0; i < n && !r->bad; i++) {
    ios[i].name = rd_str(r, heap, heap_end);
    ios[i].dtype = (int32_t)rd_le(r, 4);
    uint64_t rank = rd_le(r, 4);
    if (rank > NNCC_META_MAX_RANK) r->bad = true;
    if (r->bad) return;
    ios[i].rank = (int32_t)rank;
    ios[i].dims = *dims;
    for (uint64_t k = 0; k < rank; k++) {
      int64_t d = (int64_t)rd_le(r, 8);
      if (d < 0 && (uint64_t)(-1 - d) >= rt.nexprs) r->bad = true;
      *(*dims)++ = d; /* expressions: turned into -1 after parsing */
    }
  }
}

/* Bump allocation inside the descriptor's block. */
static void *bump(char **heap, const char *heap_end, size_t n) {
  n = (n + 7) & ~(size_t)7;
  *heap = (char *)(((uintptr_t)*heap + 7) & ~(uintptr_t)7);
  if ((size_t)(heap_end - *heap) < n) return NULL;
  void *p = *heap;
  *heap += n;
  return p;
}

/* Parses the blob. Sizes everything from the blob length first: every
 * record takes at least as many bytes in the blob as a fixed multiple of
 * its parsed size, so 8 * len bytes (plus one NUL per string) hold all. */
static void rt_parse(void) {
  size_t len = (size_t)(nncc_meta_end - nncc_meta);
  rt_reader r = {nncc_meta, nncc_meta_end, false};
  if (len < 16 || memcmp(nncc_meta, NNCC_META_MAGIC, 8) != 0) return;
  r.p += 8;
  uint64_t version = rd_le(&r, 4);
  if (version < 2 || version > NNCC_META_VERSION) return;
  uint64_t total = rd_le(&r, 4);
  if (total > len) return;
  r.end = nncc_meta + total;

  size_t max_ios = len / 12 + 1;
  size_t bytes = sizeof(nncc_model_desc) + max_ios * sizeof(nncc_model_io) + len * sizeof(int64_t) +
                 8 * len + 256;
  unsigned char *block = calloc(1, bytes);
  if (!block) return;
  nncc_model_desc *d = (nncc_model_desc *)block;
  nncc_model_io *ios = (nncc_model_io *)(d + 1);
  int64_t *dims = (int64_t *)(ios + max_ios);
  char *heap = (char *)(dims + len);
  const char *heap_end = (const char *)block + bytes;

  d->abi_version = NNCC_ABI_VERSION;
  d->struct_size = sizeof *d;
  d->compiler = rd_str(&r, &heap, heap_end);
  d->model_name = rd_str(&r, &heap, heap_end);
  d->target = rd_str(&r, &heap, heap_end);
  d->cpu = rd_str(&r, &heap, heap_end);
  d->features = rd_str(&r, &heap, heap_end);
  d->workspace_bytes = rd_le(&r, 8);
  d->weights_bytes = rd_le(&r, 8);
  uint64_t nsyms = rd_le(&r, 4);
  if (r.bad || nsyms > len / 20) goto bad;
  rt.syms = bump(&heap, heap_end, sizeof *rt.syms * (size_t)(nsyms + 1));
  if (!rt.syms) goto bad;
  for (uint64_t i = 0; i < nsyms && !r.bad; i++) {
    rt.syms[i].name = rd_str(&r, &heap, heap_end);
    rt.syms[i].lo = (int64_t)rd_le(&r, 8);
    rt.syms[i].hi = (int64_t)rd_le(&r, 8);
  }
  uint64_t nexprs = rd_le(&r, 4);
  if (r.bad || nexprs > len / 9) goto bad;
  rt.exprs = bump(&heap, heap_end, sizeof *rt.exprs * (size_t)(nexprs + 1));
  if (!rt.exprs) goto bad;
  for (uint64_t i = 0; i < nexprs && !r.bad; i++) {
    rt_expr *e = &rt.exprs[i];
    e->text = rd_str(&r, &heap, heap_end);
    e->kind = (uint8_t)rd_le(&r, 1);
    if (e->kind == 0)
      e->c = (int64_t)rd_le(&r, 8);
    else if (e->kind == 1)
      e->c = (int64_t)rd_le(&r, 4);
    else {
      e->a = (uint32_t)rd_le(&r, 4);
      e->b = (uint32_t)rd_le(&r, 4);
    }
    if (e->kind > 6 || (e->kind == 1 && (uint64_t)e->c >= nsyms) ||
        (e->kind >= 2 && (e->a >= i || e->b >= i)))
      r.bad = true;
  }
  rt.nexprs = (uint32_t)nexprs;
  uint64_t nin = rd_le(&r, 4);
  if (r.bad || nin > max_ios) goto bad;
  d->ninputs = (int32_t)nin;
  d->inputs = ios;
  rd_ios(&r, ios, d->ninputs, &dims, &heap, heap_end);
  uint64_t nout = rd_le(&r, 4);
  if (r.bad || nin + nout > max_ios) goto bad;
  d->noutputs = (int32_t)nout;
  d->outputs = ios + nin;
  rd_ios(&r, ios + nin, d->noutputs, &dims, &heap, heap_end);
  uint64_t nchecks = rd_le(&r, 4);
  if (r.bad || nchecks > len / 4) goto bad;
  rt.checks = bump(&heap, heap_end, sizeof *rt.checks * (size_t)(nchecks + 1));
  if (!rt.checks) goto bad;
  for (uint64_t i = 0; i < nchecks; i++)
    if ((rt.checks[i] = (uint32_t)rd_le(&r, 4)) >= nexprs) r.bad = true;
  rt.nchecks = (uint32_t)nchecks;
  uint64_t nguards = rd_le(&r, 4);
  if (r.bad || nguards > len / 12) goto bad;
  rt.guards = bump(&heap, heap_end, sizeof *rt.guards * (size_t)(2 * nguards + 1));
  rt.guard_loc = bump(&heap, heap_end, sizeof *rt.guard_loc * (size_t)(nguards + 1));
  if (!rt.guards || !rt.guard_loc) goto bad;
  for (uint64_t i = 0; i < nguards && !r.bad; i++) {
    rt.guards[2 * i] = (uint32_t)rd_le(&r, 4);
    rt.guards[2 * i + 1] = (uint32_t)rd_le(&r, 4);
    rt.guard_loc[i] = rd_str(&r, &heap, heap_end);
    if (rt.guards[2 * i] >= nexprs || rt.guards[2 * i + 1] >= nexprs) r.bad = true;
  }
  rt.nguards = (uint32_t)nguards;
  rt.nbufs = (uint32_t)rd_le(&r, 4);
  uint64_t nblocks = rd_le(&r, 4);
  if (r.bad || nblocks > len / 20 || rt.nbufs > (1u << 24)) goto bad;
  rt.blocks = bump(&heap, heap_end, sizeof *rt.blocks * (size_t)(nblocks + 1));
  if (!rt.blocks) goto bad;
  for (uint64_t i = 0; i < nblocks && !r.bad; i++) {
    rt_block *b = &rt.blocks[i];
    b->buf = (uint32_t)rd_le(&r, 4);
    b->esize = (uint32_t)rd_le(&r, 4);
    b->elems = (uint32_t)rd_le(&r, 4);
    b->first = (uint32_t)rd_le(&r, 4);
    b->last = (uint32_t)rd_le(&r, 4);
    if (b->buf >= rt.nbufs || b->elems >= nexprs || b->first > b->last || b->esize > 64)
      r.bad = true;
  }
  rt.nblocks = (uint32_t)nblocks;
  uint64_t nsteps = version >= 3 ? rd_le(&r, 4) : 0;
  if (r.bad || nsteps > len / 16) goto bad;
  nncc_model_step *steps = bump(&heap, heap_end, sizeof *steps * (size_t)(nsteps + 1));
  if (!steps) goto bad;
  for (uint64_t i = 0; i < nsteps && !r.bad; i++) {
    steps[i].kernel = rd_str(&r, &heap, heap_end);
    steps[i].ops = rd_str(&r, &heap, heap_end);
    steps[i].scope = rd_str(&r, &heap, heap_end);
    steps[i].loc = rd_str(&r, &heap, heap_end);
  }
  if (version >= 4) {
    d->precision = rd_str(&r, &heap, heap_end);
    uint64_t nkernels = rd_le(&r, 4);
    if (nkernels > nsteps) r.bad = true;
    d->nkernels = (int32_t)nkernels;
  }
  if (r.bad || (nsyms == 0 && (rt.nbufs || nblocks))) goto bad;
  /* symbolic io dims read as -1 in the descriptor; their expressions are
   * kept apart, by position, in rt.enc */
  rt.dims_base = (const int64_t *)(ios + max_ios);
  rt.nio_dims = (int32_t)(dims - rt.dims_base);
  rt.enc = bump(&heap, heap_end, sizeof *rt.enc * (size_t)(rt.nio_dims + 1));
  if (!rt.enc) goto bad;
  for (int32_t i = 0; i < rt.nio_dims; i++) {
    rt.enc[i] = rt.dims_base[i];
    if (rt.enc[i] < 0) ((int64_t *)rt.dims_base)[i] = -1;
  }
  d->check_cpu = rt_check_cpu;
  d->session_new = rt_session_new;
  d->session_free = rt_session_free;
  d->run = rt_run;
  d->nsyms = (int32_t)nsyms;
  d->syms = rt.syms;
  d->bind = rt_bind;
  d->io_dims = rt_io_dims;
  d->dim_text = rt_dim_text;
  d->workspace_for = rt_workspace_for;
  d->run_dims = rt_run_dims;
  d->set_workspace = rt_set_workspace;
  d->nsteps = (int32_t)nsteps;
  d->steps = steps;
  d->set_profile = rt_set_profile;
  rt_prof_key_ok = pthread_key_create(&rt_prof_key, NULL) == 0;
  rt_desc = d;
  rt_desc_block = block;
  return;
bad:
  memset(&rt, 0, sizeof rt);
  free(block);
}

__attribute__((destructor)) static void rt_unload(void) {
  if (rt_prof_key_ok) pthread_key_delete(rt_prof_key);
  rt_prof_key_ok = false;
  free(rt_desc_block);
  rt_desc_block = NULL;
  rt_desc = NULL;
  memset(&rt, 0, sizeof rt);
}

__attribute__((visibility("default"))) const nncc_model_desc *nncc_model_v1(void) {
  pthread_once(&rt_once, rt_parse);
  return rt_desc;
}

/* ---- CPU features ----------------------------------------------------------- */

/* Whether the running CPU has LLVM feature `name`: 1 yes, 0 no, -1 unknown
 * (features this runtime can't test are assumed present; LLVM lists many
 * that every CPU of the target has, like "64bit" or "cx8"). */
static int rt_cpu_has(const char *name) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  /* __builtin_cpu_supports needs a literal, hence the table of macros. */
  // clang-format off
#define F(llvm, gcc)                                                            \
  if (!strcmp(name, llvm)) return __builtin_cpu_supports(gcc) ? 1 : 0;
  F("cmov", "cmov") F("mmx", "mmx") F("popcnt", "popcnt") F("sse", "sse")
  F("sse2", "sse2") F("sse3", "sse3") F("ssse3", "ssse3") F("sse4.1", "sse4.1")
  F("sse4.2", "sse4.2") F("avx", "avx") F("avx2", "avx2") F("fma", "fma")
  F("fma4", "fma4") F("xop", "xop") F("sse4a", "sse4a") F("bmi", "bmi")
  F("bmi2", "bmi2") F("aes", "aes") F("pclmul", "pclmul")
  F("avx512f", "avx512f") F("avx512vl", "avx512vl") F("avx512bw", "avx512bw")
  F("avx512dq", "avx512dq") F("avx512cd", "avx512cd")
  F("avx512ifma", "avx512ifma") F("avx512vbmi", "avx512vbmi")
  F("avx512vnni", "avx512vnni") F("avx512vbmi2", "avx512vbmi2")
  F("avx512bitalg", "avx512bitalg") F("avx512vpopcntdq", "avx512vpopcntdq")
  F("gfni", "gfni") F("vpclmulqdq", "vpclmulqdq")
#if !defined(__clang__) && __GNUC__ >= 11 /* names older GCCs and clang 14 reject */
  F("f16c", "f16c") F("avx512bf16", "avx512bf16") F("avx512vp2intersect", "avx512vp2intersect")
  F("avxvnni", "avxvnni") F("amx-tile", "amx-tile") F("amx-int8", "amx-int8")
  F("amx-bf16", "amx-bf16") F("avx512fp16", "avx512fp16") F("movbe", "movbe")
  F("adx", "adx") F("lzcnt", "lzcnt") F("sha", "sha")
#endif
#undef F
#else
  (void)name;
#endif
  return -1;
  // clang-format on
}

/* Linked in only by CUDA models (model_rt_cuda.c): can this process reach a
 * GPU? */
extern int nncc_cu_probe(char *msg, size_t cap) __attribute__((weak));

static int rt_check_cpu(char *msg, size_t cap) {
  if (nncc_cu_probe) return nncc_cu_probe(msg, cap); /* a CUDA model: needs a GPU */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  __builtin_cpu_init();
#endif
  const char *f = rt_desc ? rt_desc->features : "";
  size_t used = 0;
  int missing = 0;
  if (cap) msg[0] = 0;
  while (*f) {
    const char *end = strchr(f, ',');
    size_t n = end ? (size_t)(end - f) : strlen(f);
    char name[64];
    if (n > 1 && n < sizeof name && f[0] == '+') {
      memcpy(name, f + 1, n - 1);
      name[n - 1] = 0;
      if (rt_cpu_has(name) == 0) {
        if (cap > used) {
          int w = snprintf(msg + used, cap - used, "%s%s", missing ? ", " : "this CPU lacks ",
                           name);
          if (w > 0) used += (size_t)w;
          if (used >= cap) used = cap - 1;
        }
        missing++;
      }
    }
    f += n;
    if (*f == ',') f++;
  }
  if (missing && cap > used)
    snprintf(msg + used, cap - used, " (the model was compiled for CPU '%s')",
             rt_desc ? rt_desc->cpu : "?");
  return missing ? -1 : 0;
}

/* ---- symbolic dims --------------------------------------------------------------- */

/* Every expression's value for these symbol values (floor semantics for //
 * and %, 0 for a zero divisor, wrapping arithmetic: checks catch nonsense). */
static void rt_eval_all(const int64_t *values, int64_t *out) {
  for (uint32_t i = 0; i < rt.nexprs; i++) {
    const rt_expr *e = &rt.exprs[i];
    if (e->kind == 0) {
      out[i] = e->c;
      continue;
    }
    if (e->kind == 1) {
      out[i] = values[e->c];
      continue;
    }
    int64_t x = out[e->a], y = out[e->b], q, m;
    switch (e->kind) {
    case 2: out[i] = (int64_t)((uint64_t)x + (uint64_t)y); break;
    case 3: out[i] = (int64_t)((uint64_t)x * (uint64_t)y); break;
    default:
      if (y == 0 || (y == -1 && x == INT64_MIN)) {
        out[i] = 0;
        break;
      }
      q = x / y;
      m = x % y;
      if (e->kind == 4)
        out[i] = q;
      else if (e->kind == 5)
        out[i] = (m != 0 && ((m < 0) != (y < 0))) ? q - 1 : q;
      else
        out[i] = (m != 0 && ((m < 0) != (y < 0))) ? m + y : m;
    }
  }
}

/* The io record and its position in the dims arrays. */
static const nncc_model_io *rt_io(int outputs, int32_t i, int32_t *base) {
  const nncc_model_io *io = outputs ? &rt_desc->outputs[i] : &rt_desc->inputs[i];
  *base = (int32_t)(io->dims - rt.dims_base);
  return io;
}

/* Appends " b=3, h=7" (the symbol values) to msg[used..cap). */
static void rt_append_values(char *msg, size_t cap, int used, const int64_t *values) {
  for (int32_t s = 0; s < rt_desc->nsyms && used >= 0 && (size_t)used < cap; s++)
    used += snprintf(msg + used, cap - (size_t)used, "%s %s=%lld", s ? "," : "", rt.syms[s].name,
                     (long long)values[s]);
}

static int rt_bind(const int64_t *const *input_dims, int64_t *values, char *msg, size_t cap) {
  int32_t ns = rt_desc->nsyms;
  /* small models (all so far) bind without touching the heap */
  int32_t from_buf[128];
  int64_t ev_buf[512];
  int32_t *from = ns <= 64 ? from_buf : calloc((size_t)ns + 1, 2 * sizeof *from);
  int64_t *ev = rt.nexprs <= 512 ? ev_buf : malloc(sizeof *ev * ((size_t)rt.nexprs + 1));
  int rc = -1;
  if (!from || !ev) {
    snprintf(msg, cap, "out of memory");
    goto out;
  }
  for (int32_t s = 0; s < ns; s++) from[2 * s] = -1;
  for (int32_t i = 0; i < rt_desc->ninputs; i++) {
    int32_t base;
    const nncc_model_io *io = rt_io(0, i, &base);
    for (int32_t k = 0; k < io->rank; k++) {
      int64_t got = input_dims[i][k], enc = rt.enc[base + k];
      if (enc >= 0) {
        if (got != enc) {
          snprintf(msg, cap, "input %d ('%s'): dim %d is %lld, the model expects %lld", (int)i,
                   io->name, (int)k, (long long)got, (long long)enc);
          goto out;
        }
        continue;
      }
      const rt_expr *e = &rt.exprs[-1 - enc];
      if (e->kind != 1) continue; /* checked below, once every symbol is bound */
      const nncc_model_sym *sy = &rt.syms[e->c];
      if (got < sy->lo || got > sy->hi) {
        snprintf(msg, cap, "input %d ('%s'): dim %d is %lld, outside the range of %s (%lld..%lld)",
                 (int)i, io->name, (int)k, (long long)got, sy->name, (long long)sy->lo,
                 (long long)sy->hi);
        goto out;
      }
      if (from[2 * e->c] < 0) {
        values[e->c] = got;
        from[2 * e->c] = i;
        from[2 * e->c + 1] = k;
      } else if (values[e->c] != got) {
        int32_t j = from[2 * e->c];
        snprintf(msg, cap, "input %d ('%s'): dim %d is %lld, but %s is %lld (input %d '%s' dim %d)",
                 (int)i, io->name, (int)k, (long long)got, sy->name, (long long)values[e->c],
                 (int)j, rt_desc->inputs[j].name, (int)from[2 * e->c + 1]);
        goto out;
      }
    }
  }
  for (int32_t s = 0; s < ns; s++)
    if (from[2 * s] < 0) {
      snprintf(msg, cap, "symbol %s is not the dim of any input", rt.syms[s].name);
      goto out;
    }
  rt_eval_all(values, ev);
  for (int32_t i = 0; i < rt_desc->ninputs; i++) {
    int32_t base;
    const nncc_model_io *io = rt_io(0, i, &base);
    for (int32_t k = 0; k < io->rank; k++) {
      int64_t enc = rt.enc[base + k];
      if (enc < 0 && ev[-1 - enc] != input_dims[i][k]) {
        snprintf(msg, cap, "input %d ('%s'): dim %d is %lld, the model expects %s = %lld", (int)i,
                 io->name, (int)k, (long long)input_dims[i][k], rt.exprs[-1 - enc].text,
                 (long long)ev[-1 - enc]);
        goto out;
      }
    }
  }
  for (uint32_t c = 0; c < rt.nchecks; c++) {
    int64_t v = ev[rt.checks[c]];
    if (v >= 1) continue;
    int used = snprintf(msg, cap,
                        "these input dims make a tensor dim %s = %lld (it must be at least 1):",
                        rt.exprs[rt.checks[c]].text, (long long)v);
    rt_append_values(msg, cap, used, values);
    goto out;
  }
  for (uint32_t g = 0; g < rt.nguards; g++) {
    uint32_t a = rt.guards[2 * g], b = rt.guards[2 * g + 1];
    if (ev[a] == ev[b]) continue;
    if (rt.exprs[a].kind == 0) { /* the symbolic side first */
      uint32_t t = a;
      a = b;
      b = t;
    }
    int used = rt.exprs[b].kind == 0
                   ? snprintf(msg, cap,
                              "these input dims break a requirement of the model (%s): %s = %lld "
                              "must equal %lld:",
                              rt.guard_loc[g], rt.exprs[a].text, (long long)ev[a], (long long)ev[b])
                   : snprintf(msg, cap,
                              "these input dims break a requirement of the model (%s): %s = %lld "
                              "must equal %s = %lld:",
                              rt.guard_loc[g], rt.exprs[a].text, (long long)ev[a], rt.exprs[b].text,
                              (long long)ev[b]);
    rt_append_values(msg, cap, used, values);
    goto out;
  }
  rc = 0;
out:
  if (from != from_buf) free(from);
  if (ev != ev_buf) free(ev);
  return rc;
}

static void rt_io_dims(int outputs, int32_t i, const int64_t *values, int64_t *dims) {
  int32_t base;
  const nncc_model_io *io = rt_io(outputs, i, &base);
  int64_t ev_buf[512];
  int64_t *ev = rt.nexprs <= 512 ? ev_buf : malloc(sizeof *ev * ((size_t)rt.nexprs + 1));
  if (ev) rt_eval_all(values, ev);
  for (int32_t k = 0; k < io->rank; k++) {
    int64_t enc = rt.enc[base + k];
    dims[k] = enc >= 0 ? enc : ev ? ev[-1 - enc] : -1;
  }
  if (ev != ev_buf) free(ev);
}

static const char *rt_dim_text(int outputs, int32_t i, int32_t d) {
  int32_t base;
  const nncc_model_io *io = rt_io(outputs, i, &base);
  if (d < 0 || d >= io->rank || rt.enc[base + d] >= 0) return NULL;
  return rt.exprs[-1 - rt.enc[base + d]].text;
}

/* Plans the workspace for these values: offs[buf] for every planned buffer.
 * Returns the arena bytes, UINT64_MAX when a size overflows or memory is
 * short. */
static uint64_t rt_plan(const int64_t *values, int64_t *offs) {
  int64_t *ev = malloc(sizeof *ev * ((size_t)rt.nexprs + 1));
  mp_block *b = malloc(sizeof *b * ((size_t)rt.nblocks + 1));
  uint64_t arena = UINT64_MAX;
  if (!ev || !b) goto out;
  rt_eval_all(values, ev);
  for (uint32_t i = 0; i < rt.nblocks; i++) {
    int64_t n = ev[rt.blocks[i].elems];
    uint64_t bytes;
    if (n < 0 || __builtin_mul_overflow((uint64_t)n, (uint64_t)rt.blocks[i].esize, &bytes) ||
        bytes > ((uint64_t)1 << 56))
      goto out;
    b[i] = (mp_block){.size = (bytes + 63) & ~(uint64_t)63,
                      .first = (int32_t)rt.blocks[i].first,
                      .last = (int32_t)rt.blocks[i].last};
  }
  arena = mp_assign(b, (int)rt.nblocks);
  if (offs)
    for (uint32_t i = 0; i < rt.nblocks; i++) offs[rt.blocks[i].buf] = (int64_t)b[i].offset;
out:
  free(ev);
  free(b);
  return arena;
}

static uint64_t rt_workspace_for(const int64_t *values) { return rt_plan(values, NULL); }

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

/* Runs the graph function, timing its steps when the session profiles. */
static int rt_graph_run(rt_session *s, void *const *inputs, void *const *outputs,
                        const int64_t *values, const int64_t *offs) {
  if (!s->prof || !rt_prof_key_ok)
    return nncc_graph_run(inputs, outputs, s->workspace, nncc_weights, s->pool, values, offs);
  pthread_setspecific(rt_prof_key, s);
  int rc = nncc_graph_run(inputs, outputs, s->workspace, nncc_weights, s->pool, values, offs);
  pthread_setspecific(rt_prof_key, NULL);
  return rc;
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
  rt_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
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
    uint64_t arena = rt_plan(values, s->offs);
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
