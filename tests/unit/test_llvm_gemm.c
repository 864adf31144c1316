/* test_llvm_gemm.c — the LLVM backend's native GEMM (llvm_gemm.c) against
 * the reference interpreter.
 *
 * Each case is one kernel holding a KS_GEMM — alone at the root (which the
 * backend splits into parallel macro tiles) or inside a batch loop — over
 * random data: sizes around the register tiles' edges (rows 1..MR+1,
 * columns around multiples of 16 and 48, K across several K blocks),
 * strided or panel-packed A (ks_gemm.a_panel) and B (b_panel), every bias
 * layout, alpha and beta, accumulate, epilogues (relu, and one that loads
 * another buffer at the element's index), and sizes that are run-time
 * values (loaded from an input) instead of constants. All cases of a
 * target go into one program, compiled with llvm_compile for the host
 * (AVX-512 here), for AVX2 (--mcpu=haswell) and for plain x86-64 (4-wide
 * SSE), linked with a serial parallel_for that splits every parallel loop
 * unevenly, and run; every output must match the interpreter's to a
 * rounding tolerance. The generated IR must hold the microkernels of the
 * expected width (the native path was taken), and a GEMM with no native
 * form (B's columns strided) must still be right through the expansion.
 */
#include "../../backends/backend.h"
#include "../../lower/lower.h"
#include "unit.h"
#include "llvmtest.h"

#include <math.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void) { return lt_frand(&rng); }

/* ---- cases ------------------------------------------------------------------ */

typedef struct tcase {
  int64_t m, n, k;
  bool a_trans;         /* A stored [K, M] (a_rs 1) */
  bool b_trans;         /* B stored [N, K]: no native form */
  int a_panel, b_panel; /* packed layouts (8 / 16), or 0 */
  int bias;             /* 0 none, 1 per n, 2 per m, 3 full [M, N], 4 scalar */
  float alpha, beta;
  bool accumulate;
  int ep;        /* 0 none, 1 relu, 2 v*0.5 + e[idx] */
  int64_t batch; /* > 1: a PARALLEL batch loop around the GEMM */
  bool sym;      /* M and N (and K unless packed) loaded from an
                    input at run time */
} tcase;

/* Buffers of a case (elements, all batch items). */
typedef struct tbufs {
  int64_t ae, be, ce, biase, astr, bstr, cstr, biasstr;
  float *a, *b, *bias, *e, *c0, *got, *want;
  int64_t sizes[3];
} tbufs;

static int64_t up(int64_t v, int64_t p) { return p > 0 ? (v + p - 1) / p * p : v; }

static void case_bufs(const tcase *t, tbufs *z) {
  z->astr = up(t->m, t->a_panel) * t->k;
  z->bstr = t->k * up(t->n, t->b_panel);
  z->cstr = t->m * t->n;
  z->biasstr = t->bias == 1 ? t->n : t->bias == 2 ? t->m : t->bias == 3 ? t->m * t->n : 1;
  z->ae = z->astr * t->batch + 1;
  z->be = z->bstr * t->batch + 1;
  z->ce = z->cstr * t->batch + 1;
  z->biase = z->biasstr * t->batch + 1;
  float **arrs[4] = {&z->a, &z->b, &z->bias, &z->c0};
  int64_t lens[4] = {z->ae, z->be, z->biase, z->ce};
  for (int i = 0; i < 4; i++) {
    *arrs[i] = malloc(sizeof(float) * (size_t)lens[i]);
    for (int64_t j = 0; j < lens[i]; j++) (*arrs[i])[j] = frand();
  }
  z->e = malloc(sizeof(float) * (size_t)z->ce);
  for (int64_t j = 0; j < z->ce; j++) z->e[j] = frand();
  z->got = malloc(sizeof(float) * (size_t)z->ce);
  z->want = malloc(sizeof(float) * (size_t)z->ce);
  memcpy(z->got, z->c0, sizeof(float) * (size_t)z->ce);
  memcpy(z->want, z->c0, sizeof(float) * (size_t)z->ce);
  z->sizes[0] = t->m;
  z->sizes[1] = t->n;
  z->sizes[2] = t->k;
}

static void free_bufs(tbufs *z) {
  free(z->a);
  free(z->b);
  free(z->bias);
  free(z->e);
  free(z->c0);
  free(z->got);
  free(z->want);
}

/* Slots of a case kernel, in order. */
enum { S_A, S_B, S_BIAS, S_E, S_SIZES, S_C, S_COUNT };

static kernel *case_kernel(nn_arena *a, const tcase *t, const tbufs *z, int id) {
  kernel *k = k_new(a, nn_sprintf(a, "gemm_case%d", id));
  ks_gemm g;
  memset(&g, 0, sizeof g);
  g.a = k_buf(k, NN_DT_F32, z->ae, false, "a");
  g.b = k_buf(k, NN_DT_F32, z->be, false, "b");
  int32_t bias = k_buf(k, NN_DT_F32, z->biase, false, "bias");
  int32_t e = k_buf(k, NN_DT_F32, z->ce, false, "e");
  int32_t sizes = k_buf(k, NN_DT_I64, 3, false, "sizes");
  g.c = k_buf(k, NN_DT_F32, z->ce, true, "c");
#define C(v) k_i64(k, v)
#define ADD(x, y) k_bin(k, KX_ADD, x, y)
#define MUL(x, y) k_bin(k, KX_MUL, x, y)
  kx_id M = t->sym ? k_load(k, sizes, C(0)) : C(t->m);
  kx_id N = t->sym ? k_load(k, sizes, C(1)) : C(t->n);
  bool ksym = t->sym && !t->a_panel && !t->b_panel; /* panels: K a number */
  kx_id K = ksym ? k_load(k, sizes, C(2)) : C(t->k);
  lt_gemm_shape(k, &g, M, N, K, t->a_trans, t->b_trans, t->a_panel, t->b_panel);
  g.ldc = N;
  g.alpha = t->alpha;
  g.beta = t->beta;
  g.accumulate = t->accumulate;
  g.bias = t->bias ? bias : -1;
  g.bias_rs = t->bias == 2 ? C(1) : t->bias == 3 ? N : C(0);
  g.bias_cs = C(t->bias == 1 || t->bias == 3 ? 1 : 0);
  if (t->ep) {
    g.epilogue = true;
    g.ep_acc = k_var(k, NN_DT_F32);
    g.ep_idx = k_var(k, NN_DT_I64);
    kx_id v = k_varref(k, g.ep_acc);
    if (t->ep == 1)
      g.ep = k_bin(k, KX_MAX, v, k_const_f(k, NN_DT_F32, 0.0));
    else
      g.ep = k_bin(k, KX_ADD, k_bin(k, KX_MUL, v, k_const_f(k, NN_DT_F32, 0.5)),
                   k_load(k, e, k_varref(k, g.ep_idx)));
  }
  int32_t bi;
  kx_id base = lt_batch_begin(k, t->batch, &bi);
  kx_id cstr = t->sym ? MUL(M, N) : C(z->cstr);
  kx_id astr = t->sym && !t->a_panel ? MUL(M, K) : C(z->astr);
  kx_id bstr = t->sym && !t->b_panel ? MUL(K, N) : C(z->bstr);
  (void)ksym;
  g.a_off = MUL(base, astr);
  g.b_off = MUL(base, bstr);
  g.c_off = MUL(base, cstr);
  g.bias_off = MUL(base, C(z->biasstr));
#undef C
#undef ADD
#undef MUL
  lt_batch_end(k, &g, bi);
  (void)e;
  return k;
}

/* ---- programs ------------------------------------------------------------- */

static const char rt_source[] = "#include <stdint.h>\n" LT_RT_PARALLEL_FOR
                                "  fn(slots, 0, n / 3);\n"
                                "  fn(slots, n / 3, n);\n"
                                "}\n";

/* Max over elements of |got - want| / max(1, |want|). */
static double rel_err(const float *got, const float *want, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

/* Compiles cases t[0..n) as one program for `mcpu`, runs it and the
 * interpreter, and compares. `width` > 0: the IR must hold microkernels
 * of that many floats per vector; 0: it must hold none. */
static void run_cases(const tcase *t, int n, const char *mcpu, int width) {
  nn_arena *a = nn_arena_new();
  kp_program *p = nn_alloc(a, sizeof *p);
  p->arena = a;
  tbufs *z = calloc((size_t)n, sizeof *z);
  void **in = calloc((size_t)n * 5 + 1, sizeof(void *));
  void **out = calloc((size_t)n + 1, sizeof(void *));
  for (int i = 0; i < n; i++) {
    case_bufs(&t[i], &z[i]);
    kernel *k = case_kernel(a, &t[i], &z[i], i);
    kp_step s = {.k = k, .node = 0};
    s.slots = nn_alloc(a, sizeof(kp_bufid) * S_COUNT);
    s.slots[S_A] = lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, z[i].ae, 0);
    s.slots[S_B] = lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, z[i].be, 0);
    s.slots[S_BIAS] = lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, z[i].biase, 0);
    s.slots[S_E] = lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, z[i].ce, 0);
    s.slots[S_SIZES] = lt_add_buf(p, KP_BUF_INPUT, NN_DT_I64, 3, 0);
    s.slots[S_C] = lt_add_buf(p, KP_BUF_OUTPUT, NN_DT_F32, z[i].ce, 0);
    NN_PUSH(a, p->steps, s);
    in[5 * i + 0] = z[i].a;
    in[5 * i + 1] = z[i].b;
    in[5 * i + 2] = z[i].bias;
    in[5 * i + 3] = z[i].e;
    in[5 * i + 4] = z[i].sizes;
    out[i] = z[i].got;
    void *slots[S_COUNT] = {z[i].a, z[i].b, z[i].bias, z[i].e, z[i].sizes, z[i].want};
    CHECK_INT(k_interp(k, slots), 0);
  }
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_opts o = {.opt_level = 2, .mcpu = mcpu};
  llvm_result r;
  CHECK_INT(llvm_compile(p, &o, true, &r, &d), 0);
  if (d.errors) goto out;
  for (int i = 0; i < n; i++) /* the program is untouched */
    CHECK(p->steps.data[i].k->stmts.len > 0);
  char want_name[32];
  snprintf(want_name, sizeof want_name, "nncc.gemm.w%d.", width);
  if (width > 0)
    CHECK(r.ir_text && strstr(r.ir_text, want_name) != NULL);
  else
    CHECK(r.ir_text && strstr(r.ir_text, "nncc.gemm.w") == NULL);
  if (width >= 8) /* narrow column tails of a packed A */
    CHECK(r.ir_text && strstr(r.ir_text, "nncc.gemm.narrow.") != NULL);
  if (width > 0) { /* a packed A: the row tiles prefetch the next one */
    snprintf(want_name, sizeof want_name, "nncc.gemm.w%d.%dx3.pf", width, width == 16 ? 8 : 4);
    CHECK(r.ir_text && strstr(r.ir_text, want_name) != NULL);
    CHECK(r.ir_text && strstr(r.ir_text, "@llvm.prefetch") != NULL);
  }
  graph_fn fn;
  void *h = lt_load_object(&r, &fn);
  if (h) {
    CHECK_INT(fn(in, out, NULL, NULL, NULL, NULL, NULL, NULL), 0);
    for (int i = 0; i < n; i++) {
      double err = rel_err(z[i].got, z[i].want, z[i].ce);
      double tol = 1e-6 * (10 + (double)t[i].k);
      if (!(err <= tol))
        fprintf(stderr,
                "%s: case %d m=%lld n=%lld k=%lld at=%d bt=%d ap=%d bp=%d bias=%d "
                "alpha=%g beta=%g acc=%d ep=%d batch=%lld sym=%d: error %g\n",
                mcpu, i, (long long)t[i].m, (long long)t[i].n, (long long)t[i].k, t[i].a_trans,
                t[i].b_trans, t[i].a_panel, t[i].b_panel, t[i].bias, t[i].alpha, t[i].beta,
                t[i].accumulate, t[i].ep, (long long)t[i].batch, t[i].sym, err);
      CHECK(err <= tol);
    }
    dlclose(h);
  }
  llvm_result_free(&r);
out:
  for (int i = 0; i < n; i++) free_bufs(&z[i]);
  free(z);
  free(in);
  free(out);
  nn_arena_free(a);
}

/* The grid of cases (deterministic variety over the parameters). */
static int make_cases(tcase *t, int max) {
  static const int64_t ms[] = {1, 3, 7, 8, 9, 17, 64, 130};
  static const int64_t ns[] = {2, 15, 16, 17, 47, 48, 49, 100, 400};
  static const int64_t ks[] = {1, 5, 64, 257, 600};
  int n = 0, i = 0;
  for (int mi = 0; mi < 8; mi++)
    for (int ni = 0; ni < 9; ni++)
      for (int ki = 0; ki < 5; ki++, i++) {
        int64_t m = ms[mi], nn = ns[ni], kk = ks[ki];
        /* the interpreter is slow: a third of the cases, few big ones */
        if (i % 3 != 0 || (m * nn * kk > 400000 && i % 2) || n >= max) continue;
        tcase c = {.m = m, .n = nn, .k = kk, .alpha = 1, .beta = 1, .batch = 1};
        c.a_trans = i % 7 == 2;
        c.a_panel = !c.a_trans && i % 5 == 1 ? 8 : 0;
        c.b_panel = i % 4 == 1 ? 16 : 0;
        c.bias = i % 5;
        c.alpha = i % 6 == 3 ? -0.5f : 1.0f;
        c.beta = i % 7 == 4 ? 2.0f : 1.0f;
        c.accumulate = i % 8 == 5;
        c.ep = i % 3 == 0 ? (i / 3) % 3 : 0;
        c.batch = i % 11 == 6 ? 3 : 1;
        c.sym = i % 9 == 4 || (c.a_panel && i % 4 == 2);
        t[n++] = c;
      }
  /* fixed ones: runtime sizes around the edges; K blocks with a tail;
   * accumulate with a batch; an empty K */
  tcase fixed[] = {
      {.m = 13,
       .n = 97,
       .k = 300,
       .alpha = 1,
       .beta = 1,
       .bias = 3,
       .batch = 1,
       .sym = true,
       .ep = 2},
      {.m = 1,
       .n = 1000,
       .k = 33,
       .alpha = 1,
       .beta = 1,
       .bias = 1,
       .batch = 1,
       .b_panel = 16,
       .ep = 1},
      {.m = 64,
       .n = 49,
       .k = 700,
       .alpha = 1,
       .beta = 1,
       .bias = 2,
       .batch = 1,
       .a_panel = 8,
       .ep = 2},
      {.m = 20, .n = 35, .k = 513, .alpha = -1, .beta = 1, .batch = 2, .accumulate = true},
      {.m = 5, .n = 20, .k = 0, .alpha = 1, .beta = 1, .bias = 1, .batch = 1},
      {.m = 6, .n = 30, .k = 0, .alpha = 1, .beta = 1, .batch = 1, .sym = true, .accumulate = true},
      /* narrow column tails (A packed): run-time and constant sizes */
      {.m = 70,
       .n = 51,
       .k = 300,
       .alpha = 1,
       .beta = 1,
       .bias = 2,
       .batch = 1,
       .a_panel = 8,
       .sym = true,
       .ep = 2},
      {.m = 9,
       .n = 98,
       .k = 40,
       .alpha = 2,
       .beta = 1,
       .batch = 1,
       .a_panel = 8,
       .sym = true,
       .accumulate = true},
      {.m = 100,
       .n = 4,
       .k = 257,
       .alpha = 1,
       .beta = 1,
       .bias = 1,
       .batch = 2,
       .a_panel = 8,
       .ep = 1},
      {.m = 97, .n = 148, .k = 33, .alpha = 1, .beta = 0.5f, .bias = 3, .batch = 1, .a_panel = 8},
  };
  for (size_t j = 0; j < NN_ARRAY_LEN(fixed) && n < max; j++) t[n++] = fixed[j];
  return n;
}

int main(void) {
  lt_setup("llvm_gemm", rt_source);

  static tcase t[200];
  int n = make_cases(t, 200);
#if defined(__x86_64__)
  __builtin_cpu_init();
  int host = __builtin_cpu_supports("avx512f") ? 16
             : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                 ? 8
                 : 4;
  run_cases(t, n, "native", host);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    run_cases(t, n, "haswell", 8);
  run_cases(t, n, "x86-64", 4);
  if (__builtin_cpu_supports("avx512f")) run_cases(t, n, "skylake-avx512", 16);
#endif
  /* no native form: B with strided columns, and a matrix-vector product */
  tcase none[] = {
      {.m = 9,
       .n = 21,
       .k = 40,
       .b_trans = true,
       .alpha = 1,
       .beta = 1,
       .bias = 1,
       .batch = 1,
       .ep = 1},
      {.m = 33, .n = 1, .k = 70, .alpha = 1, .beta = 1, .bias = 2, .batch = 1},
  };
  run_cases(none, 2, "native", 0);

  lt_cleanup();
  return unit_report("llvm_gemm");
}
