/* misuse.c — the runtime API used the wrong way (tests/sealed.sh; built
 * plain, and with ThreadSanitizer by `make test`'s sanitizer stage).
 *
 *   nncc_test_misuse STATIC.so SYMBOLIC.so
 *
 * STATIC.so is the bundled example compiled with --input x:f32[64,1,28,28],
 * SYMBOLIC.so the same with no --input (x: f32[B,1,H,W]). Checks:
 *   - one session run from two threads at once: every call either runs
 *     (and its output equals a one-thread reference) or returns
 *     NNCC_ERR_BUSY, and at least one call does return it;
 *     set_profiling in the middle of another thread's run is refused too;
 *   - an output sharing memory with an input (same pointer, partial
 *     overlap) or with another output is refused with NNCC_ERR_INVALID_ARG;
 *     memory right next to an input is fine;
 *   - output buffers with the wrong dims or dtype are refused;
 *   - a symbolic shape whose workspace can't be allocated under
 *     setrlimit(RLIMIT_AS) returns NNCC_ERR_OUT_OF_MEMORY, and the session
 *     runs a small shape right after (skipped under ASan and TSan, which
 *     reserve terabytes of address space);
 *   - nncc_model_close with a live session: the session keeps running, the
 *     model is freed with the session (ASan sees no use after free);
 *   - a described model refuses sessions.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "runtime/include/nncc.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BIG_RESERVATIONS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BIG_RESERVATIONS 1
#endif
#endif

static int failures;
#define CHECK(c)                                                            \
  do {                                                                      \
    if (!(c)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
      failures++;                                                           \
    }                                                                       \
  } while (0)
#define CHECK_ST(call, want, substr)                                                          \
  do {                                                                                        \
    char *err_ = NULL;                                                                        \
    nncc_status st_ = (call);                                                                 \
    if (st_ != (want) || ((substr)[0] && (!err_ || !strstr(err_, (substr))))) {               \
      fprintf(stderr, "%s:%d: %s: status %d '%s', want %d '%s'\n", __FILE__, __LINE__, #call, \
              (int)st_, err_ ? err_ : "", (int)(want), (substr));                             \
      failures++;                                                                             \
    }                                                                                         \
    nncc_free_message(err_);                                                                  \
  } while (0)

/* Whether a[0..n) and b[0..n) hold the same values. */
static bool same(const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { BATCH = 64, PIX = 28 * 28 };
static float input[BATCH * PIX], ref[BATCH * 10];
static const int64_t in_dims[] = {BATCH, 1, 28, 28}, out_dims[] = {BATCH, 10};

static nncc_tensor tensor(void *data, nncc_dtype t, int32_t rank, const int64_t *dims) {
  return (nncc_tensor){data, t, rank, dims, 0};
}

/* ---- two threads, one session ---------------------------------------------- */

typedef struct racer {
  nncc_session *s;
  int id;
  atomic_int *stop;
  atomic_long ok, busy, wrong, other; /* read by main while the racers run */
} racer;

static void *race(void *arg) {
  racer *r = arg;
  float out[BATCH * 10];
  nncc_tensor in = tensor(input, NNCC_DTYPE_F32, 4, in_dims);
  nncc_tensor o = tensor(out, NNCC_DTYPE_F32, 2, out_dims);
  for (long i = 0; !atomic_load(r->stop); i++) {
    nncc_status st;
    if (r->id == 1 && i % 4 == 3)
      st = nncc_session_set_profiling(r->s, (int)(i / 4 % 2), NULL);
    else
      st = nncc_session_run(r->s, &in, 1, &o, 1, NULL);
    if (st == NNCC_OK && !(r->id == 1 && i % 4 == 3)) {
      r->ok++;
      if (!same(out, ref, BATCH * 10)) r->wrong++;
    } else if (st == NNCC_ERR_BUSY) {
      r->busy++;
    } else if (st != NNCC_OK) {
      r->other++;
    }
  }
  return NULL;
}

static void test_busy(nncc_model *m) {
  nncc_session *s = NULL;
  CHECK_ST(nncc_session_create(m, 1, &s, &err_), NNCC_OK, "");
  if (!s) return;
  atomic_int stop = 0;
  racer r[2] = {{.s = s, .id = 0, .stop = &stop}, {.s = s, .id = 1, .stop = &stop}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, race, &r[i]);
  double t0 = now_s();
  while (now_s() - t0 < 5 && (r[0].busy + r[1].busy < 20 || r[0].ok + r[1].ok < 20)) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  long ok = atomic_load(&r[0].ok) + atomic_load(&r[1].ok);
  long busy = atomic_load(&r[0].busy) + atomic_load(&r[1].busy);
  printf("one session, two threads: %ld runs, %ld refused as busy, %ld wrong outputs\n", ok, busy,
         r[0].wrong + r[1].wrong);
  CHECK(ok > 0 && busy > 0);
  CHECK(r[0].wrong + r[1].wrong == 0 && r[0].other + r[1].other == 0);
  nncc_session_destroy(s);
}

/* ---- outputs that share memory ----------------------------------------------- */

static void test_aliasing(nncc_model *m) {
  nncc_session *s = NULL;
  CHECK_ST(nncc_session_create(m, 1, &s, &err_), NNCC_OK, "");
  if (!s) return;
  /* one block: the input, then room for outputs */
  float *block = aligned_alloc(64, sizeof(float) * (BATCH * PIX + 4 * BATCH * 10));
  memcpy(block, input, sizeof input);
  nncc_tensor in = tensor(block, NNCC_DTYPE_F32, 4, in_dims);
  nncc_tensor o = tensor(block, NNCC_DTYPE_F32, 2, out_dims);
  CHECK_ST(nncc_session_run(s, &in, 1, &o, 1, &err_), NNCC_ERR_INVALID_ARG,
           "output 0 ('output_0') and input 0 ('x') share memory");
  o.data = block + BATCH * PIX - 1; /* the last input element */
  CHECK_ST(nncc_session_run(s, &in, 1, &o, 1, &err_), NNCC_ERR_INVALID_ARG, "share memory");
  o.data = block + BATCH * PIX; /* right after the input: fine */
  CHECK_ST(nncc_session_run(s, &in, 1, &o, 1, &err_), NNCC_OK, "");
  CHECK(same(o.data, ref, BATCH * 10));
  /* wrong output dims and dtype */
  static const int64_t bad[] = {BATCH, 11};
  nncc_tensor ob = tensor(block + BATCH * PIX, NNCC_DTYPE_F32, 2, bad);
  CHECK_ST(nncc_session_run(s, &in, 1, &ob, 1, &err_), NNCC_ERR_SHAPE,
           "output 0 ('output_0'): dim 1 is 11, the model expects 10");
  ob = tensor(block + BATCH * PIX, NNCC_DTYPE_F64, 2, out_dims);
  CHECK_ST(nncc_session_run(s, &in, 1, &ob, 1, &err_), NNCC_ERR_DTYPE,
           "output 0 ('output_0'): dtype f64, the model expects f32");
  free(block);
  nncc_session_destroy(s);
}

/* ---- a workspace that can't be had -------------------------------------------- */

#ifndef BIG_RESERVATIONS
static unsigned long vm_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  char line[128] = "";
  if (f && !fgets(line, sizeof line, f)) line[0] = 0;
  if (f) fclose(f);
  unsigned long pages = strtoul(line, NULL, 10);
  return pages * (unsigned long)sysconf(_SC_PAGESIZE);
}
#endif

static void test_oom(const char *sym_path) {
#ifdef BIG_RESERVATIONS
  (void)sym_path;
  printf("workspace under RLIMIT_AS: skipped (sanitizer build)\n");
#else
  nncc_model *m = NULL;
  CHECK_ST(nncc_model_open(sym_path, &m, &err_), NNCC_OK, "");
  if (!m) return;
  nncc_session *s = NULL;
  CHECK_ST(nncc_session_create(m, 2, &s, &err_), NNCC_OK, "");
  /* batch 200000: about 2.5 GB of workspace; the tensors are allocated
   * but never touched (the run fails before it reads them) */
  const int64_t big = 200000;
  int64_t bi[] = {big, 1, 28, 28}, bo[] = {big, 10};
  float *x = calloc((size_t)big * PIX, sizeof *x), *y = calloc((size_t)big * 10, sizeof *y);
  nncc_tensor in = tensor(x, NNCC_DTYPE_F32, 4, bi), out = tensor(y, NNCC_DTYPE_F32, 2, bo);
  uint64_t need = 0;
  CHECK_ST(nncc_model_workspace_size(m, &in, 1, &need, &err_), NNCC_OK, "");
  struct rlimit old, lim;
  getrlimit(RLIMIT_AS, &old);
  lim = old;
  lim.rlim_cur = vm_bytes() + (512ul << 20);
  CHECK(need > (1ull << 30));
  if (s && x && y && setrlimit(RLIMIT_AS, &lim) == 0) {
    CHECK_ST(nncc_session_run(s, &in, 1, &out, 1, &err_), NNCC_ERR_OUT_OF_MEMORY,
             "can't get the workspace for these shapes");
    setrlimit(RLIMIT_AS, &old);
    printf("workspace of %llu bytes under RLIMIT_AS = VM + 512 MiB: refused\n",
           (unsigned long long)need);
    /* and the session still works */
    int64_t si[] = {2, 1, 28, 28}, so[] = {2, 10};
    in.dims = si;
    out.dims = so;
    memcpy(x, input, sizeof(float) * 2 * PIX);
    CHECK_ST(nncc_session_run(s, &in, 1, &out, 1, &err_), NNCC_OK, "");
    for (int i = 0; i < 20; i++) CHECK(y[i] - ref[i] < 1e-4f && ref[i] - y[i] < 1e-4f);
  } else {
    CHECK(!"setup for the RLIMIT_AS case failed");
  }
  free(x);
  free(y);
  nncc_session_destroy(s);
  nncc_model_close(m);
#endif
}

/* ---- closing a model that has sessions ---------------------------------------- */

static void test_close_first(const char *path) {
  nncc_model *m = NULL;
  CHECK_ST(nncc_model_open(path, &m, &err_), NNCC_OK, "");
  if (!m) return;
  nncc_session *s = NULL, *s2 = NULL;
  CHECK_ST(nncc_session_create(m, 2, &s, &err_), NNCC_OK, "");
  CHECK_ST(nncc_session_create(m, 1, &s2, &err_), NNCC_OK, "");
  nncc_model_close(m); /* the sessions keep it */
  float out[BATCH * 10];
  nncc_tensor in = tensor(input, NNCC_DTYPE_F32, 4, in_dims);
  nncc_tensor o = tensor(out, NNCC_DTYPE_F32, 2, out_dims);
  CHECK_ST(nncc_session_run(s, &in, 1, &o, 1, &err_), NNCC_OK, "");
  CHECK(same(out, ref, BATCH * 10));
  nncc_session_destroy(s);
  memset(out, 0, sizeof out);
  CHECK_ST(nncc_session_run(s2, &in, 1, &o, 1, &err_), NNCC_OK, "");
  CHECK(same(out, ref, BATCH * 10));
  nncc_session_destroy(s2); /* the model goes with the last one */
  printf("model closed before its sessions: they ran, then freed it\n");
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: nncc_test_misuse STATIC.so SYMBOLIC.so\n");
    return 2;
  }
  for (int i = 0; i < BATCH * PIX; i++) input[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
  nncc_model *m = NULL;
  CHECK_ST(nncc_model_open(argv[1], &m, &err_), NNCC_OK, "");
  if (!m) return 1;
  nncc_session *s = NULL;
  CHECK_ST(nncc_session_create(m, 1, &s, &err_), NNCC_OK, "");
  nncc_tensor in = tensor(input, NNCC_DTYPE_F32, 4, in_dims);
  nncc_tensor o = tensor(ref, NNCC_DTYPE_F32, 2, out_dims);
  CHECK_ST(nncc_session_run(s, &in, 1, &o, 1, &err_), NNCC_OK, "");
  nncc_session_destroy(s);

  test_busy(m);
  test_aliasing(m);
  test_close_first(argv[1]);
  test_oom(argv[2]);

  /* a described model has no code to run */
  nncc_model *dm = NULL;
  CHECK_ST(nncc_model_describe(argv[1], &dm, &err_), NNCC_OK, "");
  CHECK_ST(nncc_session_create(dm, 1, &s, &err_), NNCC_ERR_INVALID_ARG,
           "opened with nncc_model_describe");
  nncc_model *none = NULL;
  CHECK_ST(nncc_model_open_ex(argv[1], 1u << 7, &none, &err_), NNCC_ERR_INVALID_ARG,
           "unknown flags 0x80");
  CHECK(none == NULL);
  nncc_model_close(dm);
  nncc_model_close(m);
  printf("%s\n", failures ? "FAILED" : "all misuse cases handled");
  return failures ? 1 : 0;
}
