/* model_rt.c — the model runtime linked into every model.so.
 *
 * It defines the .so's one exported symbol, nncc_model_v1(), which parses
 * the metadata blob written by backends/artifact.c (format in abi.h) into a
 * nncc_model_desc the first time it is called (pthread_once, so concurrent
 * loaders are safe) and returns it on every call. The descriptor's functions
 * check the CPU's features, create and free sessions (workspace + thread
 * pool, see pool.c) and run the generated graph function.
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

#include "abi.h"

/* Defined by the generated code and the data object of the same .so. */
extern int nncc_graph_run(void *const *inputs, void *const *outputs,
                          unsigned char *workspace, const unsigned char *weights,
                          void *pool);
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

static nncc_model_desc *rt_desc;  /* parsed descriptor, NULL if malformed */
static void *rt_desc_block;       /* the one allocation behind it */
static pthread_once_t rt_once = PTHREAD_ONCE_INIT;

static int rt_check_cpu(char *msg, size_t cap);
static void *rt_session_new(int nthreads);
static void rt_session_free(void *s);
static int rt_run(void *s, void *const *inputs, void *const *outputs);

/* Reads n io records into ios; dims go to *dims. */
static void rd_ios(rt_reader *r, nncc_model_io *ios, int32_t n, int64_t **dims,
                   char **heap, const char *heap_end) {
  for (int32_t i = 0; i < n && !r->bad; i++) {
    ios[i].name = rd_str(r, heap, heap_end);
    ios[i].dtype = (int32_t)rd_le(r, 4);
    uint64_t rank = rd_le(r, 4);
    if (rank > NNCC_META_MAX_RANK) r->bad = true;
    if (r->bad) return;
    ios[i].rank = (int32_t)rank;
    ios[i].dims = *dims;
    for (uint64_t k = 0; k < rank; k++) *(*dims)++ = (int64_t)rd_le(r, 8);
  }
}

/* Parses the blob. Sizes everything from the blob length first: the strings
 * and dims together take at most `len` bytes plus one NUL per string, and
 * there are at most len / 12 io records (each is at least 12 bytes). */
static void rt_parse(void) {
  size_t len = (size_t)(nncc_meta_end - nncc_meta);
  rt_reader r = {nncc_meta, nncc_meta_end, false};
  if (len < 16 || memcmp(nncc_meta, NNCC_META_MAGIC, 8) != 0) return;
  r.p += 8;
  if (rd_le(&r, 4) != NNCC_META_VERSION) return;
  uint64_t total = rd_le(&r, 4);
  if (total > len) return;
  r.end = nncc_meta + total;

  size_t max_ios = len / 12 + 1;
  size_t bytes = sizeof(nncc_model_desc) + max_ios * sizeof(nncc_model_io) +
                 len * sizeof(int64_t) + 2 * len + 16;
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
  if (r.bad) goto bad;
  d->check_cpu = rt_check_cpu;
  d->session_new = rt_session_new;
  d->session_free = rt_session_free;
  d->run = rt_run;
  rt_desc = d;
  rt_desc_block = block;
  return;
bad:
  free(block);
}

__attribute__((destructor)) static void rt_unload(void) {
  free(rt_desc_block);
  rt_desc_block = NULL;
  rt_desc = NULL;
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
}

static int rt_check_cpu(char *msg, size_t cap) {
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
          int w = snprintf(msg + used, cap - used, "%s%s",
                           missing ? ", " : "this CPU lacks ", name);
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

/* ---- sessions ----------------------------------------------------------------- */

typedef struct rt_session {
  unsigned char *workspace; /* 64-byte aligned, workspace_bytes (>= 64) */
  rt_pool *pool;            /* nthreads threads */
} rt_session;

static void *rt_session_new(int nthreads) {
  if (!rt_desc) return NULL;
  rt_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  uint64_t ws = (rt_desc->workspace_bytes + 63) / 64 * 64;
  if (ws == 0) ws = 64;
  if (ws > (uint64_t)SIZE_MAX || !(s->workspace = aligned_alloc(64, (size_t)ws)) ||
      !(s->pool = rt_pool_new(nthreads))) {
    rt_session_free(s);
    return NULL;
  }
  memset(s->workspace, 0, (size_t)ws); /* runs start from the same state */
  return s;
}

static void rt_session_free(void *session) {
  rt_session *s = session;
  if (!s) return;
  rt_pool_free(s->pool);
  free(s->workspace);
  free(s);
}

static int rt_run(void *session, void *const *inputs, void *const *outputs) {
  rt_session *s = session;
  return nncc_graph_run(inputs, outputs, s->workspace, nncc_weights, s->pool);
}
