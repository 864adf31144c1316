/* test_gemm.c — tests for the gemm-like ops (lower/gemm.c, conv*.c).
 *
 * Part 1, the expansion: small kernels holding one KS_GEMM (at the root, or
 * inside a batch loop whose variable moves the offsets) are run with the
 * interpreter before and after k_expand_gemms, on random data, for many
 * sizes (odd ones included), strides, offsets, bias layouts, alpha, beta,
 * accumulate and the packed panel layouts of A and B (ks_gemm.a_panel,
 * b_panel); both results are compared with a naive product computed
 * here, and the expanded kernel's structure is checked (no GEMM left, a
 * VECTOR innermost loop, a PARALLEL root loop when the GEMM was alone).
 * With symbolic sizes (M, N and/or K loaded from a "dims" slot, the
 * strides and offsets expressions of them, the buffers of unknown size),
 * ONE kernel is expanded and then run for many sizes around the tiles'
 * edges (1, MR±1, NR±1, the macro tiles' and K blocks' sizes ±1), checked
 * against the buffers' real sizes (k_interp_sized).
 *
 * Part 2, whole-node lowering: IR text for linear, matmul (1-d to 4-d with
 * broadcasting), mm, bmm, addmm, baddbmm and convolutions (stride,
 * padding, dilation, groups, depthwise, 1x1, 1-d) is shaped, scheduled and
 * run with kp_interp, against references computed here — with and
 * without the expansion applied to every kernel.
 */
#include "backends/backend.h"
#include "lower/lower.h"
#include "passes/passes.h"
#include "unit.h"
#include "llvmtest.h"

#include <math.h>

/* ---- random data ----------------------------------------------------------
 */

static uint64_t rng = 88172645463325252ull;

static float frand(void) { return lt_frand(&rng); }

static float *rand_array(int64_t n) {
  float *p = malloc(sizeof(float) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) p[i] = frand();
  return p;
}

/* Max relative difference |a-b| / max(1, |ref|). */
static double rel_diff(const float *a, const float *ref, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)ref[i]);
    double s = fabs((double)ref[i]);
    d /= s > 1 ? s : 1;
    if (!(d <= worst)) worst = d; /* NaN counts as worst */
  }
  return worst;
}

/* ---- part 1: the expansion ------------------------------------------------
 */

typedef struct gcase {
  int64_t m, n, k;
  unsigned sym;          /* symbolic sizes: 1 M, 2 N, 4 K (dims[0..2]) */
  bool a_trans, b_trans; /* A stored [K, M] / B stored [N, K] */
  int a_panel, b_panel;  /* > 0: A / B packed in panels of that many rows /
                            columns (a_trans / b_trans then unused) */
  int64_t pad;           /* extra row stride on C and offsets of all operands */
  int bias;              /* 0 none, 1 per n, 2 per m, 3 full [M, N], 4 scalar */
  float alpha, beta;
  bool accumulate;
  int64_t batch; /* > 1: a batch loop around the GEMM */
} gcase;

typedef struct gbufs {
  int64_t ae, be, ce, biase;                     /* elements */
  int64_t astride, bstride, cstride, biasstride; /* per batch */
} gbufs;

/* The strides of a case, as numbers. */
typedef struct gstr {
  int64_t a_rs, a_cs, b_rs, b_cs, ldc, bias_rs, bias_cs;
} gstr;

static void case_sizes(const gcase *t, gstr *g, gbufs *z) {
  memset(g, 0, sizeof *g);
  if (t->a_trans) {
    g->a_rs = 1;
    g->a_cs = t->m;
  } else {
    g->a_rs = t->k;
    g->a_cs = 1;
  }
  if (t->b_trans) {
    g->b_rs = 1;
    g->b_cs = t->k;
  } else {
    g->b_rs = t->n;
    g->b_cs = 1;
  }
  g->ldc = t->n + t->pad;
  g->bias_rs = t->bias == 2 ? 1 : t->bias == 3 ? t->n : 0;
  g->bias_cs = t->bias == 1 || t->bias == 3 ? 1 : 0;
  int64_t am = t->a_panel > 0 ? (t->m + t->a_panel - 1) / t->a_panel * t->a_panel : t->m;
  int64_t bn = t->b_panel > 0 ? (t->n + t->b_panel - 1) / t->b_panel * t->b_panel : t->n;
  z->astride = am * t->k + t->pad;
  z->bstride = t->k * bn + t->pad;
  z->cstride = t->m * g->ldc + t->pad;
  z->biasstride = (t->bias == 1   ? t->n
                   : t->bias == 2 ? t->m
                   : t->bias == 3 ? t->m * t->n
                                  : 1) +
                  t->pad;
  z->ae = t->pad + z->astride * t->batch;
  z->be = t->pad + z->bstride * t->batch;
  z->ce = t->pad + z->cstride * t->batch;
  z->biase = t->pad + z->biasstride * t->batch;
}

/* The case's kernel. The sizes flagged in t->sym are loads from a "dims"
 * slot (the last slot; dims[0..2] = M, N, K) and everything computed from
 * them (strides, offsets) is an expression; the buffers then have
 * symbolic size (elems -1). */
static kernel *case_kernel(nn_arena *a, const gcase *t) {
  ks_gemm g;
  memset(&g, 0, sizeof g);
  gstr st;
  gbufs z;
  case_sizes(t, &st, &z);
  kernel *k = k_new(a, "gemm_case");
  bool sym = t->sym != 0;
  g.a = k_buf(k, NN_DT_F32, sym ? -1 : z.ae, false, "a");
  g.b = k_buf(k, NN_DT_F32, sym ? -1 : z.be, false, "b");
  g.c = k_buf(k, NN_DT_F32, sym ? -1 : z.ce, true, "c");
  g.bias = t->bias ? k_buf(k, NN_DT_F32, sym ? -1 : z.biase, false, "bias") : -1;
  int32_t dims = sym ? k_buf(k, NN_DT_I64, 3, false, "dims") : -1;
#define C(v) k_i64(k, v)
#define ADD(x, y) k_bin(k, KX_ADD, x, y)
#define MUL(x, y) k_bin(k, KX_MUL, x, y)
  kx_id M = t->sym & 1 ? k_load(k, dims, C(0)) : C(t->m);
  kx_id N = t->sym & 2 ? k_load(k, dims, C(1)) : C(t->n);
  kx_id K = t->sym & 4 ? k_load(k, dims, C(2)) : C(t->k);
  lt_gemm_shape(k, &g, M, N, K, t->a_trans, t->b_trans, t->a_panel, t->b_panel);
  g.ldc = ADD(N, C(t->pad));
  g.bias_rs = t->bias == 2 ? C(1) : t->bias == 3 ? N : C(0);
  g.bias_cs = C(t->bias == 1 || t->bias == 3 ? 1 : 0);
  g.alpha = t->alpha;
  g.beta = t->beta;
  g.accumulate = t->accumulate;
  kx_id bstr = t->bias == 1 ? N : t->bias == 2 ? M : t->bias == 3 ? MUL(M, N) : C(1);
  int32_t bi;
  kx_id base = lt_batch_begin(k, t->batch, &bi);
#define OFF(stride) ADD(C(t->pad), MUL(base, ADD(stride, C(t->pad))))
  g.a_off = OFF(t->a_panel ? C(z.astride - t->pad) : MUL(M, K));
  g.b_off = OFF(t->b_panel ? C(z.bstride - t->pad) : MUL(K, N));
  g.c_off = OFF(MUL(M, g.ldc));
  g.bias_off = t->bias ? OFF(bstr) : -1;
#undef OFF
#undef C
#undef ADD
#undef MUL
  lt_batch_end(k, &g, bi);
  return k;
}

/* Element (m, kk) of A and (kk, n) of B within one batch item. */
static int64_t a_at(const gcase *t, const gstr *g, int64_t m, int64_t kk) {
  int64_t p = t->a_panel;
  return p > 0 ? (m / p) * p * t->k + kk * p + m % p : m * g->a_rs + kk * g->a_cs;
}
static int64_t b_at(const gcase *t, const gstr *g, int64_t kk, int64_t n) {
  int64_t p = t->b_panel;
  return p > 0 ? (n / p) * p * t->k + kk * p + n % p : kk * g->b_rs + n * g->b_cs;
}

/* The naive product, in double. */
static void case_ref(const gcase *t, const float *A, const float *B, const float *bias, float *C) {
  gstr g;
  gbufs z;
  case_sizes(t, &g, &z);
  for (int64_t bt = 0; bt < t->batch; bt++) {
    int64_t ao = t->pad + bt * z.astride, bo = t->pad + bt * z.bstride;
    int64_t co = t->pad + bt * z.cstride, xo = t->pad + bt * z.biasstride;
    for (int64_t m = 0; m < t->m; m++)
      for (int64_t n = 0; n < t->n; n++) {
        double s = 0;
        for (int64_t kk = 0; kk < t->k; kk++)
          s += (double)A[ao + a_at(t, &g, m, kk)] * B[bo + b_at(t, &g, kk, n)];
        s *= t->alpha;
        if (t->bias) s += (double)t->beta * bias[xo + m * g.bias_rs + n * g.bias_cs];
        float *cp = &C[co + m * g.ldc + n];
        *cp = (float)(t->accumulate ? *cp + s : s);
      }
  }
}

typedef struct kstats {
  int gemms, vector_loops, parallel_loops;
  bool vector_innermost; /* every VECTOR loop holds no loop */
} kstats;

static void walk(const kernel *k, const ks_id *ids, int n, kstats *s) {
  for (int i = 0; i < n; i++) {
    const ks *st = &k->stmts.data[ids[i]];
    if (st->kind == KS_GEMM) s->gemms++;
    if (st->kind == KS_FOR) {
      if (st->flags & KS_VECTOR) {
        s->vector_loops++;
        for (int j = 0; j < st->nbody; j++)
          if (k->stmts.data[st->body[j]].kind == KS_FOR) s->vector_innermost = false;
      }
      if (st->flags & KS_PARALLEL) s->parallel_loops++;
    }
    walk(k, st->body, st->nbody, s);
    walk(k, st->els, st->nels, s);
  }
}

static void run_case(const gcase *t) {
  nn_arena *a = nn_arena_new();
  gstr g;
  gbufs z;
  case_sizes(t, &g, &z);
  float *A = rand_array(z.ae), *B = rand_array(z.be), *bias = rand_array(z.biase);
  float *C0 = rand_array(z.ce);
  float *ref = malloc(sizeof(float) * (size_t)z.ce);
  float *got = malloc(sizeof(float) * (size_t)z.ce);
  memcpy(ref, C0, sizeof(float) * (size_t)z.ce);
  case_ref(t, A, B, bias, ref);

  kernel *k = case_kernel(a, t);
  void *bufs[4] = {A, B, got, bias};
  memcpy(got, C0, sizeof(float) * (size_t)z.ce);
  CHECK_INT(k_interp(k, bufs), 0);
  double d1 = rel_diff(got, ref, z.ce);

  k_expand_gemms(k, &tg_host()->expand);
  kstats st = {.vector_innermost = true};
  walk(k, k->root.data, k->root.len, &st);
  CHECK_INT(st.gemms, 0);
  CHECK(st.vector_innermost);
  if (t->n > 1 && t->m > 0) CHECK(st.vector_loops >= 1);
  CHECK_INT(st.parallel_loops, 1); /* the batch loop, or the expansion's */
  CHECK_INT(k->root.len, 1);
  CHECK(k->stmts.data[k->root.data[0]].kind == KS_FOR &&
        (k->stmts.data[k->root.data[0]].flags & KS_PARALLEL));
  memcpy(got, C0, sizeof(float) * (size_t)z.ce);
  CHECK_INT(k_interp(k, bufs), 0);
  double d2 = rel_diff(got, ref, z.ce);
  if (d1 > 1e-4 || d2 > 1e-4) {
    fprintf(stderr,
            "gemm case m=%lld n=%lld k=%lld at=%d bt=%d pad=%lld bias=%d "
            "alpha=%g beta=%g "
            "acc=%d batch=%lld: interp %g, expanded %g\n",
            (long long)t->m, (long long)t->n, (long long)t->k, t->a_trans, t->b_trans,
            (long long)t->pad, t->bias, t->alpha, t->beta, t->accumulate, (long long)t->batch, d1,
            d2);
  }
  CHECK(d1 <= 1e-4);
  CHECK(d2 <= 1e-4);
  free(A);
  free(B);
  free(bias);
  free(C0);
  free(ref);
  free(got);
  nn_arena_free(a);
}

/* Symbolic sizes: the kernel of case t (t->sym set; its m, n, k give the
 * constant sizes) is built and expanded once, then run, expanded and not,
 * for every size triple in mnk[0..n) (only the symbolic ones vary). */
static void run_sym(const gcase *t, const int64_t (*mnk)[3], int n) {
  nn_arena *a = nn_arena_new();
  kernel *k = case_kernel(a, t);
  kernel *x = case_kernel(a, t);
  k_expand_gemms(x, &tg_host()->expand);
  kstats st = {.vector_innermost = true};
  walk(x, x->root.data, x->root.len, &st);
  CHECK_INT(st.gemms, 0);
  CHECK(st.vector_innermost);
  if ((t->sym & 2) || t->n > 1) /* N == 1: dot products, no vector loop */
    CHECK(st.vector_loops >= 1);
  CHECK_INT(st.parallel_loops, 1);
  CHECK_INT(x->root.len, 1);
  CHECK(x->stmts.data[x->root.data[0]].kind == KS_FOR &&
        (x->stmts.data[x->root.data[0]].flags & KS_PARALLEL));
  for (int i = 0; i < n; i++) {
    gcase c = *t;
    if (t->sym & 1) c.m = mnk[i][0];
    if (t->sym & 2) c.n = mnk[i][1];
    if (t->sym & 4) c.k = mnk[i][2];
    gstr g;
    gbufs z;
    case_sizes(&c, &g, &z);
    float *A = rand_array(z.ae), *B = rand_array(z.be), *bias = rand_array(z.biase);
    float *C0 = rand_array(z.ce);
    float *ref = malloc(sizeof(float) * (size_t)z.ce);
    float *got = malloc(sizeof(float) * (size_t)z.ce);
    memcpy(ref, C0, sizeof(float) * (size_t)z.ce);
    case_ref(&c, A, B, bias, ref);
    int64_t dims[3] = {c.m, c.n, c.k};
    /* slots a, b, c, [bias,] dims; sizes as allocated */
    void *bufs[5] = {A, B, got, bias, dims};
    int64_t elems[5] = {z.ae, z.be, z.ce, z.biase, 3};
    if (!t->bias) {
      bufs[3] = dims;
      elems[3] = 3;
    }
    double d[2];
    for (int e = 0; e < 2; e++) {
      memcpy(got, C0, sizeof(float) * (size_t)z.ce);
      CHECK_INT(k_interp_sized(e ? x : k, bufs, elems), 0);
      d[e] = rel_diff(got, ref, z.ce);
    }
    if (d[0] > 1e-4 || d[1] > 1e-4)
      fprintf(stderr,
              "symbolic gemm (sym %u) m=%lld n=%lld k=%lld at=%d bt=%d pad=%lld "
              "bias=%d acc=%d batch=%lld: interp %g, expanded %g\n",
              t->sym, (long long)c.m, (long long)c.n, (long long)c.k, t->a_trans, t->b_trans,
              (long long)t->pad, t->bias, t->accumulate, (long long)t->batch, d[0], d[1]);
    CHECK(d[0] <= 1e-4);
    CHECK(d[1] <= 1e-4);
    free(A);
    free(B);
    free(bias);
    free(C0);
    free(ref);
    free(got);
  }
  nn_arena_free(a);
}

/* The sizes a symbolic GEMM is run with: around MR (6), NR (16), the macro
 * tile's rows (48) and columns (64 when M gives few macro tiles; 256), and
 * K blocks (256). */
static void test_symbolic(void) {
  static int64_t grid[400][3];
  int n = 0;
  static const int64_t ms[] = {1, 5, 6, 7, 16, 47, 48, 49, 97};
  static const int64_t ns[] = {1, 2, 15, 16, 17, 63, 64, 65};
  for (size_t i = 0; i < NN_ARRAY_LEN(ms); i++)
    for (size_t j = 0; j < NN_ARRAY_LEN(ns); j++) {
      grid[n][0] = ms[i];
      grid[n][1] = ns[j];
      grid[n][2] = (int64_t)(1 + (i + j) % 3); /* K = 1, 2, 3 */
      n++;
    }
  static const int64_t more[][3] = {{7, 17, 255},  {7, 17, 256}, {7, 17, 257}, {13, 33, 513},
                                    {49, 65, 257}, {1, 255, 2},  {1, 256, 3},  {2, 257, 2},
                                    {50, 300, 9},  {96, 100, 5}, {100, 31, 4}, {6, 16, 1},
                                    {5, 15, 300}};
  for (size_t i = 0; i < NN_ARRAY_LEN(more); i++, n++) memcpy(grid[n], more[i], sizeof more[i]);

  /* every size symbolic, with each operand layout, bias kind, accumulate,
   * and a batch loop around the GEMM */
  for (int v = 0; v < 6; v++) {
    gcase t = {.sym = 7, .alpha = 1, .beta = 1, .batch = 1};
    t.a_trans = v == 1 || v == 4;
    t.b_trans = v == 2 || v == 4;
    t.bias = v == 5 ? 0 : v % 5;
    t.pad = v % 2 ? 3 : 0;
    t.alpha = v == 3 ? 0.5f : 1.0f;
    t.beta = v == 2 ? -2.0f : 1.0f;
    t.accumulate = v == 5 || v == 3;
    t.batch = v == 4 ? 2 : 1;
    run_sym(&t, (const int64_t(*)[3])grid, v < 2 ? n : n - 5);
  }
  /* M only (a weight's N and K): the common case */
  {
    static const int64_t g[][3] = {{1, 0, 0},  {5, 0, 0},  {6, 0, 0},  {7, 0, 0},  {47, 0, 0},
                                   {48, 0, 0}, {49, 0, 0}, {96, 0, 0}, {101, 0, 0}};
    gcase t = {.sym = 1, .n = 40, .k = 30, .alpha = 1, .beta = 1, .bias = 1, .batch = 1};
    run_sym(&t, g, (int)NN_ARRAY_LEN(g));
    t.n = 1; /* the matrix-vector form */
    run_sym(&t, g, (int)NN_ARRAY_LEN(g));
    t.n = 64;
    t.k = 260;
    t.bias = 0;
    run_sym(&t, g, (int)NN_ARRAY_LEN(g));
  }
  /* N only, K only */
  {
    static const int64_t g[][3] = {{0, 1, 0},  {0, 2, 0},  {0, 15, 0}, {0, 16, 0}, {0, 17, 0},
                                   {0, 33, 0}, {0, 64, 0}, {0, 65, 0}, {0, 257, 0}};
    gcase t = {.sym = 2, .m = 13, .k = 9, .alpha = 1, .beta = 1, .bias = 3, .batch = 1};
    run_sym(&t, g, (int)NN_ARRAY_LEN(g));
    static const int64_t h[][3] = {{0, 0, 1},   {0, 0, 2},   {0, 0, 255},
                                   {0, 0, 256}, {0, 0, 257}, {0, 0, 600}};
    gcase u = {.sym = 4, .m = 7, .n = 20, .alpha = 1, .beta = 1, .bias = 2, .batch = 1};
    run_sym(&u, h, (int)NN_ARRAY_LEN(h));
  }
}

static void test_expansion(void) {
  static const int64_t sizes[] = {1, 3, 17, 64, 65, 130};
  int i = 0;
  for (int mi = 0; mi < 6; mi++)
    for (int ni = 0; ni < 6; ni++)
      for (int ki = 0; ki < 6; ki++, i++) {
        gcase t =
            {.m = sizes[mi], .n = sizes[ni], .k = sizes[ki], .alpha = 1, .beta = 1, .batch = 1};
        /* vary the other parameters deterministically over the grid */
        t.a_trans = i % 5 == 1;
        t.b_trans = i % 7 == 3;
        t.pad = i % 3 == 0 ? 0 : i % 3 == 1 ? 5 : 1;
        t.bias = i % 5;
        t.alpha = i % 4 == 2 ? 0.5f : 1.0f;
        t.beta = i % 6 == 4 ? -2.0f : 1.0f;
        t.accumulate = i % 4 == 3;
        /* the interpreter is slow: only some of the big ones */
        if (t.m * t.n * t.k > 250000 && i % 3 != 0) continue;
        if (t.m * t.n * t.k <= 200000 && i % 9 == 2) t.batch = 3;
        run_case(&t);
      }
  /* a big-K case with several K blocks and a tail */
  gcase big = {.m = 50, .n = 300, .k = 600, .alpha = 1, .beta = 0.25f, .bias = 3, .batch = 1};
  run_case(&big);
  gcase acc =
      {.m = 7, .n = 33, .k = 513, .alpha = -1, .beta = 1, .accumulate = true, .batch = 2, .pad = 2};
  run_case(&acc);
  gcase empty_k = {.m = 5, .n = 20, .k = 0, .alpha = 1, .beta = 1, .bias = 1, .batch = 1};
  run_case(&empty_k);
  /* packed panels (a convolution's weight as A, a linear layer's as B),
   * with tails in both and several K blocks */
  static const int64_t pm[] = {1, 7, 8, 9, 50}, pn[] = {1, 15, 16, 17, 70};
  for (int j = 0; j < 5; j++) {
    gcase pa = {.m = pm[j],
                .n = 23,
                .k = 37 + 130 * j,
                .alpha = 1,
                .beta = 1,
                .bias = 2,
                .batch = j % 2 ? 2 : 1,
                .a_panel = 8,
                .pad = j % 3};
    run_case(&pa);
    gcase pb = {.m = 3 + j,
                .n = pn[j],
                .k = 300 - 50 * j,
                .alpha = 0.5f,
                .beta = -1,
                .bias = 1,
                .batch = j % 2 ? 1 : 3,
                .b_panel = 16,
                .accumulate = j == 2,
                .pad = j % 2};
    run_case(&pb);
  }
  gcase both = {.m = 19,
                .n = 37,
                .k = 257,
                .alpha = 1,
                .beta = 1,
                .bias = 3,
                .batch = 1,
                .a_panel = 8,
                .b_panel = 16};
  run_case(&both);
}

/* ---- part 2: whole-node lowering ----------------------------------------- */

/* A tensor of the test: dims and data. */
typedef struct tens {
  int rank;
  int64_t dims[6];
  float *data;
} tens;

static int64_t numel(const tens *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

static tens mk(int rank, const int64_t *dims) {
  tens t = {.rank = rank};
  memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
  t.data = rand_array(numel(&t));
  return t;
}
#define T(...) mk(NN_ARRAY_LEN(((int64_t[]){__VA_ARGS__})), (int64_t[]){__VA_ARGS__})
#define T0() mk(0, NULL)

static void type_str(nn_buf *b, const tens *t) {
  nn_buf_printf(b, "f32[");
  for (int i = 0; i < t->rank; i++) nn_buf_printf(b, "%s%lld", i ? "," : "", (long long)t->dims[i]);
  nn_buf_printf(b, "]");
}

/* A graph under construction: inputs are the tensors not marked weight;
 * operands are named "%N". */
typedef struct gb {
  nn_buf body;       /* statements */
  int next;          /* next value number */
  const tens *in[8]; /* graph inputs in order */
  int nin;
  const tens *w[8]; /* weights "w0", "w1", ... */
  int nw;
} gb;

/* Operand for tensor t: a graph input (is_weight false) or a weight. */
static int gb_tensor(gb *g, const tens *t, bool is_weight) {
  if (!is_weight) {
    g->in[g->nin++] = t;
    return -1 - (g->nin - 1); /* inputs are numbered when the text is put together */
  }
  int v = g->next++;
  nn_buf_printf(&g->body, "  %%%d = weight(\"w%d\") : ", v, g->nw);
  type_str(&g->body, t);
  nn_buf_printf(&g->body, "\n");
  g->w[g->nw++] = t;
  return v;
}

static int gb_const(gb *g, const char *text, const char *type) {
  int v = g->next++;
  nn_buf_printf(&g->body, "  %%%d = constant(%s) : %s\n", v, text, type);
  return v;
}

/* The kernels of the last program gb_run scheduled, by name without the
 * "kN_" prefix, comma-separated. */
static char last_kernels[512];

/* Runs the graph whose last statement is `op(args)` (args: operand ids as
 * returned above) with the interpreter, optionally expanding every kernel's
 * GEMMs first. Returns the output (malloc'd, `elems` elements) or NULL;
 * diagnostics go to `diag` when not NULL. */
static float *gb_run(gb *g, const char *op, const int *args, int nargs, int64_t elems, bool expand,
                     char **diag) {
  /* inputs take the first numbers: renumber operands */
  int nin = g->nin;
  nn_buf text = {0};
  nn_buf_printf(&text, "graph forward(");
  for (int i = 0; i < nin; i++) nn_buf_printf(&text, "%s%%%d in%d: unknown", i ? ", " : "", i, i);
  nn_buf_printf(&text, ") -> (unknown) {\n");
  /* the body was numbered from 0: shift every %N by nin */
  for (const char *p = g->body.data ? g->body.data : ""; *p; p++) {
    if (*p == '%' && p[1] >= '0' && p[1] <= '9') {
      char *end;
      long v = strtol(p + 1, &end, 10);
      nn_buf_printf(&text, "%%%ld", v + nin);
      p = end - 1;
    } else {
      nn_buf_putn(&text, p, 1);
    }
  }
  int res = g->next + nin;
  nn_buf_printf(&text, "  %%%d = %s(", res, op);
  for (int i = 0; i < nargs; i++) {
    int a = args[i] < 0 ? -1 - args[i] : args[i] + nin;
    nn_buf_printf(&text, "%s%%%d", i ? ", " : "", a);
  }
  nn_buf_printf(&text, ") : unknown\n  return %%%d\n}\n", res);

  nn_arena *a = nn_arena_new();
  char *dtext = NULL;
  size_t dlen = 0;
  FILE *f = open_memstream(&dtext, &dlen);
  nn_diag d;
  nn_diag_init(&d, f);
  float *out = NULL;
  ir_graph *ir = ir_parse(text.data, text.len, "t.nnir", a, &d);
  if (ir) {
    for (int i = 0; i < ir->weights.len; i++) {
      ir_weight *w = &ir->weights.data[i];
      int wi = (int)strtol(w->name + 1, NULL, 10);
      w->data = g->w[wi]->data;
      w->nbytes = sizeof(float) * (size_t)numel(g->w[wi]);
    }
    pass_input_spec specs[8];
    char err[200];
    for (int i = 0; i < nin; i++) {
      nn_buf sp = {0};
      nn_buf_printf(&sp, "in%d:", i);
      type_str(&sp, g->in[i]);
      CHECK_INT(pass_parse_input_spec(sp.data, a, &specs[i], err, sizeof err), 0);
      nn_buf_free(&sp);
    }
    if (pass_shapes(ir, specs, nin, &d) == 0) {
      kp_program *p = kl_schedule(ir, a, tg_host(), &d);
      if (p) {
        last_kernels[0] = 0;
        for (int i = 0; i < p->steps.len; i++) {
          const char *nm = strchr(p->steps.data[i].k->name, '_');
          size_t l = strlen(last_kernels);
          snprintf(last_kernels + l, sizeof last_kernels - l, "%s%s", i ? "," : "",
                   nm ? nm + 1 : "?");
        }
        if (expand)
          for (int i = 0; i < p->steps.len; i++)
            k_expand_gemms(p->steps.data[i].k, &tg_host()->expand);
        void *ins[8];
        for (int i = 0; i < nin; i++) ins[i] = g->in[i]->data;
        out = calloc((size_t)elems + 1, sizeof(float));
        void *outs[1] = {out};
        CHECK_INT(p->outputs.len, 1);
        if (p->outputs.len == 1) {
          int64_t n = 1;
          for (int i = 0; i < p->outputs.data[0].rank; i++) n *= p->outputs.data[0].dims[i];
          CHECK_INT(n, elems);
        }
        if (kp_interp(p, ins, outs) != 0) {
          free(out);
          out = NULL;
        }
      }
    }
  }
  fclose(f);
  if (diag)
    *diag = dtext;
  else {
    if (dlen) fprintf(stderr, "%s", dtext);
    free(dtext);
  }
  nn_buf_free(&text);
  nn_arena_free(a);
  return out;
}

static void gb_free(gb *g) { nn_buf_free(&g->body); }

/* Runs the graph with and without the expansion and compares both with
 * ref. */
static void check_graph(const char *what, gb *g, const char *op, const int *args, int nargs,
                        const float *ref, int64_t elems, const char *kernels) {
  for (int expand = 0; expand < 2; expand++) {
    float *out = gb_run(g, op, args, nargs, elems, expand, NULL);
    CHECK(out != NULL);
    if (!out) {
      fprintf(stderr, "%s: no result\n", what);
      continue;
    }
    double d = rel_diff(out, ref, elems);
    if (!(d <= 1e-4) || getenv("GEMM_VERBOSE"))
      fprintf(stderr, "%s (expand %d): max rel diff %g\n", what, expand, d);
    CHECK(d <= 1e-4);
    CHECK_STR(last_kernels, kernels);
    free(out);
  }
}

/* ---- references ---- */

/* numpy matmul of a and b into out (shape computed by the caller). */
static void ref_matmul(const tens *a, const tens *b, float *out) {
  int ar = a->rank, br = b->rank;
  int64_t ad[8], bd[8];
  int ra = 0, rb = 0;
  if (ar == 1) {
    ad[ra++] = 1;
    ad[ra++] = a->dims[0];
  } else
    for (int i = 0; i < ar; i++) ad[ra++] = a->dims[i];
  if (br == 1) {
    bd[rb++] = b->dims[0];
    bd[rb++] = 1;
  } else
    for (int i = 0; i < br; i++) bd[rb++] = b->dims[i];
  int nba = ra - 2, nbb = rb - 2, nb = nba > nbb ? nba : nbb;
  int64_t od[8], total = 1;
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - nba), ib = i - (nb - nbb);
    int64_t x = ia >= 0 ? ad[ia] : 1, y = ib >= 0 ? bd[ib] : 1;
    od[i] = x > y ? x : y;
    total *= od[i];
  }
  int64_t M = ad[ra - 2], K = ad[ra - 1], N = bd[rb - 1];
  for (int64_t bi = 0; bi < total; bi++) {
    int64_t idx[8] = {0}, rem = bi;
    for (int i = nb - 1; i >= 0; i--) {
      idx[i] = rem % od[i];
      rem /= od[i];
    }
    int64_t ao = 0, bo = 0;
    for (int i = 0; i < nba; i++) ao = ao * ad[i] + (ad[i] == 1 ? 0 : idx[i + nb - nba]);
    for (int i = 0; i < nbb; i++) bo = bo * bd[i] + (bd[i] == 1 ? 0 : idx[i + nb - nbb]);
    ao *= M * K;
    bo *= K * N;
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++)
          s += (double)a->data[ao + m * K + k] * b->data[bo + k * N + n];
        out[(bi * M + m) * N + n] = (float)s;
      }
  }
}

/* Element of t broadcast to the shape od[rank] at flat index i. */
static float bcast_at(const tens *t, const int64_t *od, int rank, int64_t i) {
  int64_t off = 0, str = 1;
  for (int d = rank - 1; d >= 0; d--) {
    int64_t idx = i % od[d];
    i /= od[d];
    int td = d - (rank - t->rank);
    if (td >= 0) {
      if (t->dims[td] != 1) off += idx * str;
      str *= t->dims[td];
    }
  }
  return t->data[off];
}

/* 2-d convolution (1-d when x is 3-d), bias may be NULL. */
static void ref_conv(const tens *x, const tens *w, const tens *bias, int64_t sh, int64_t sw,
                     int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups, float *out,
                     int64_t *hout, int64_t *wout) {
  bool one = x->rank == 3;
  int64_t N = x->dims[0], C = x->dims[1], H = one ? 1 : x->dims[2], W = x->dims[one ? 2 : 3];
  int64_t CO = w->dims[0], CG = w->dims[1], KH = one ? 1 : w->dims[2], KW = w->dims[one ? 2 : 3];
  if (one) {
    sh = 1;
    ph = 0;
    dh = 1;
  }
  int64_t HO = (H + 2 * ph - dh * (KH - 1) - 1) / sh + 1;
  int64_t WO = (W + 2 * pw - dw * (KW - 1) - 1) / sw + 1;
  *hout = HO;
  *wout = WO;
  int64_t MG = CO / groups;
  (void)C;
  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < CO; co++) {
      int64_t g = co / MG;
      for (int64_t oh = 0; oh < HO; oh++)
        for (int64_t ow = 0; ow < WO; ow++) {
          double s = bias ? bias->data[co] : 0;
          for (int64_t ci = 0; ci < CG; ci++)
            for (int64_t i = 0; i < KH; i++)
              for (int64_t j = 0; j < KW; j++) {
                int64_t ih = oh * sh - ph + i * dh, iw = ow * sw - pw + j * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += (double)x->data[((n * C + g * CG + ci) * H + ih) * W + iw] *
                     w->data[((co * CG + ci) * KH + i) * KW + j];
              }
          out[((n * CO + co) * HO + oh) * WO + ow] = (float)s;
        }
    }
}

/* ---- cases ---- */

static void test_linear(int64_t lead0, int64_t lead1, int64_t K, int64_t N, bool bias,
                        bool w_weight) {
  tens x = lead1 ? T(lead0, lead1, K) : T(lead0, K), w = T(N, K), b = T(N);
  gb g = {0};
  int args[3];
  args[0] = gb_tensor(&g, &x, false);
  args[1] = gb_tensor(&g, &w, w_weight);
  args[2] = bias ? gb_tensor(&g, &b, w_weight) : gb_const(&g, "none", "none");
  int64_t M = lead0 * (lead1 ? lead1 : 1);
  float *ref = malloc(sizeof(float) * (size_t)(M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = bias ? b.data[n] : 0;
      for (int64_t k = 0; k < K; k++) s += (double)x.data[m * K + k] * w.data[n * K + k];
      ref[m * N + n] = (float)s;
    }
  check_graph("linear", &g, "linear", args, 3, ref, M * N,
              w_weight || N == 1 ? "linear" : "pack_transpose,linear");
  free(ref);
  free(x.data);
  free(w.data);
  free(b.data);
  gb_free(&g);
}

/* op is "matmul", "mm" or "bmm". */
static void test_matmul(const char *op, tens a, tens b, bool b_weight) {
  gb g = {0};
  int args[2] = {gb_tensor(&g, &a, false), gb_tensor(&g, &b, b_weight)};
  float *ref = malloc(sizeof(float) * 4096);
  ref_matmul(&a, &b, ref);
  /* elems of the result: numpy rules */
  int64_t n = 1;
  int nb = (a.rank > 2 ? a.rank - 2 : 0) > (b.rank > 2 ? b.rank - 2 : 0)
               ? a.rank - 2
               : (b.rank > 2 ? b.rank - 2 : 0);
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - (a.rank - 2)), ib = i - (nb - (b.rank - 2));
    int64_t x = ia >= 0 && a.rank > 2 ? a.dims[ia] : 1, y = ib >= 0 && b.rank > 2 ? b.dims[ib] : 1;
    n *= x > y ? x : y;
  }
  if (a.rank >= 2) n *= a.dims[a.rank - 2];
  if (b.rank >= 2) n *= b.dims[b.rank - 1];
  NN_ASSERT(n <= 4096);
  check_graph(op, &g, op, args, 2, ref, n, op);
  free(ref);
  free(a.data);
  free(b.data);
  gb_free(&g);
}

/* addmm / baddbmm: beta*c + alpha*(a @ b). */
static void test_addmm(const char *op, tens c, tens a, tens b, const char *beta,
                       const char *alpha) {
  gb g = {0};
  int args[5];
  args[0] = gb_tensor(&g, &c, false);
  args[1] = gb_tensor(&g, &a, false);
  args[2] = gb_tensor(&g, &b, true);
  args[3] = gb_const(&g, beta, strchr(beta, '.') ? "float" : "int");
  args[4] = gb_const(&g, alpha, strchr(alpha, '.') ? "float" : "int");
  float *ref = malloc(sizeof(float) * 4096);
  ref_matmul(&a, &b, ref);
  int r = a.rank;
  int64_t od[3] = {a.dims[0], a.dims[1], b.dims[r - 1]};
  if (r == 2) od[1] = b.dims[1];
  int64_t n = r == 2 ? a.dims[0] * b.dims[1] : a.dims[0] * a.dims[1] * b.dims[2];
  double be = strtod(beta, NULL), al = strtod(alpha, NULL);
  for (int64_t i = 0; i < n; i++)
    ref[i] = (float)(al * ref[i] + (be == 0 ? 0 : be * bcast_at(&c, od, r, i)));
  check_graph(op, &g, op, args, 5, ref, n, op);
  free(ref);
  free(a.data);
  free(b.data);
  free(c.data);
  gb_free(&g);
}

static void test_conv(const char *kernels, tens x, tens w, bool bias, int64_t sh, int64_t sw,
                      int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups) {
  tens b = T(w.dims[0]);
  gb g = {0};
  int args[9];
  char buf[64];
  bool one = x.rank == 3;
  args[0] = gb_tensor(&g, &x, false);
  args[1] = gb_tensor(&g, &w, true);
  args[2] = bias ? gb_tensor(&g, &b, true) : gb_const(&g, "none", "none");
  snprintf(buf, sizeof buf, one ? "[%lld]" : "[%lld, %lld]", (long long)(one ? sw : sh),
           (long long)sw);
  args[3] = gb_const(&g, buf, "list<int>");
  snprintf(buf, sizeof buf, one ? "[%lld]" : "[%lld, %lld]", (long long)(one ? pw : ph),
           (long long)pw);
  args[4] = gb_const(&g, buf, "list<int>");
  snprintf(buf, sizeof buf, one ? "[%lld]" : "[%lld, %lld]", (long long)(one ? dw : dh),
           (long long)dw);
  args[5] = gb_const(&g, buf, "list<int>");
  args[6] = gb_const(&g, "false", "bool");
  args[7] = gb_const(&g, one ? "[0]" : "[0, 0]", "list<int>");
  snprintf(buf, sizeof buf, "%lld", (long long)groups);
  args[8] = gb_const(&g, buf, "int");
  int64_t ho, wo;
  float *ref = malloc(sizeof(float) * 65536);
  ref_conv(&x, &w, bias ? &b : NULL, sh, sw, ph, pw, dh, dw, groups, ref, &ho, &wo);
  int64_t n = x.dims[0] * w.dims[0] * ho * wo;
  NN_ASSERT(n <= 65536);
  check_graph("convolution", &g, "convolution", args, 9, ref, n, kernels);
  free(ref);
  free(x.data);
  free(w.data);
  free(b.data);
  gb_free(&g);
}

/* Transposed and 3-d convolutions are refused with a located error. */
static void test_conv_errors(void) {
  tens x = T(1, 2, 5, 5), w = T(2, 2, 3, 3);
  gb g = {0};
  int args[9];
  args[0] = gb_tensor(&g, &x, false);
  args[1] = gb_tensor(&g, &w, true);
  args[2] = gb_const(&g, "none", "none");
  args[3] = gb_const(&g, "[1, 1]", "list<int>");
  args[4] = gb_const(&g, "[0, 0]", "list<int>");
  args[5] = gb_const(&g, "[1, 1]", "list<int>");
  args[6] = gb_const(&g, "true", "bool");
  args[7] = gb_const(&g, "[0, 0]", "list<int>");
  args[8] = gb_const(&g, "1", "int");
  char *diag = NULL;
  float *out = gb_run(&g, "convolution", args, 9, 2 * 7 * 7, false, &diag);
  CHECK(out == NULL);
  CHECK(diag && strstr(diag, "transposed convolution is not supported by the CPU backend yet"));
  free(diag);
  free(out);
  free(x.data);
  free(w.data);
  gb_free(&g);
}

static void test_lowering(void) {
  /* linear: packed weight, bias or not, 1-row and odd sizes; a non-weight
   * w goes through the transposing kernel */
  test_linear(3, 5, 17, 10, true, true);
  test_linear(1, 0, 65, 130, false, true);
  test_linear(4, 0, 33, 20, true, false);
  test_linear(2, 0, 7, 1, true, true);
  /* matmul: 1-d, 2-d, 3-d, 4-d with broadcasting */
  test_matmul("matmul", T(17), T(17), false);
  test_matmul("matmul", T(5, 17), T(17), false);
  test_matmul("matmul", T(17), T(17, 9), false);
  test_matmul("matmul", T(17), T(2, 17, 9), false);
  test_matmul("matmul", T(2, 3, 5, 17), T(17), false);
  test_matmul("matmul", T(2, 3, 17), T(17, 9), true);
  test_matmul("matmul", T(3, 5), T(4, 5, 6), false);
  test_matmul("matmul", T(2, 1, 3, 5), T(1, 3, 5, 4), false);
  test_matmul("matmul", T(4, 3, 5), T(4, 5, 6), false);
  test_matmul("mm", T(7, 9), T(9, 65), true);
  test_matmul("bmm", T(3, 4, 5), T(3, 5, 6), false);
  /* addmm / baddbmm with broadcast addends */
  test_addmm("addmm", T(65), T(7, 9), T(9, 65), "0.5", "2.0");
  test_addmm("addmm", T(7, 1), T(7, 9), T(9, 18), "1", "1");
  test_addmm("addmm", T(7, 18), T(7, 9), T(9, 18), "0", "1.5");
  test_addmm("baddbmm", T(1, 4, 6), T(3, 4, 5), T(3, 5, 6), "1", "0.5");
  test_addmm("baddbmm", T(3, 4, 6), T(3, 4, 5), T(3, 5, 6), "2.0", "1");
  /* convolutions */
  test_conv("im2col,conv_gemm", T(2, 4, 9, 11), T(6, 2, 3, 3), true, 2, 2, 1, 1, 2, 2, 2);
  test_conv("im2col,conv_gemm", T(1, 3, 10, 7), T(5, 3, 3, 3), true, 1, 1, 1, 1, 1, 1, 1);
  test_conv("im2col,conv_gemm", T(1, 3, 13, 9), T(4, 3, 5, 3), false, 2, 1, 2, 0, 1, 2, 1);
  test_conv("conv_depthwise", T(1, 4, 10, 7), T(4, 1, 3, 3), true, 1, 1, 1, 1, 1, 1,
            4); /* depthwise */
  test_conv("conv_depthwise", T(2, 3, 11, 9), T(3, 1, 3, 3), false, 2, 2, 0, 2, 2, 1,
            3);                                                                    /* depthwise */
  test_conv("conv_gemm", T(2, 8, 5, 3), T(6, 8, 1, 1), true, 1, 1, 0, 0, 1, 1, 1); /* 1x1 */
  test_conv("conv_gemm", T(1, 8, 6, 6), T(4, 4, 1, 1), true, 1, 1, 0, 0, 1, 1, 2); /* 1x1 grouped */
  test_conv("im2col,conv_gemm", T(1, 4, 7, 5), T(6, 4, 1, 1), false, 2, 2, 0, 0, 1, 1,
            1); /* 1x1 stride 2 */
  test_conv("im2col,conv_gemm", T(2, 3, 20), T(5, 3, 4), true, 1, 3, 0, 2, 1, 1, 1); /* 1-d */
  test_conv("im2col,conv_gemm", T(1, 2, 3, 3), T(4, 2, 3, 3), true, 1, 1, 3, 3, 1, 1,
            1); /* pad > kernel */
  test_conv_errors();
}

int main(void) {
  if (!getenv("GEMM_SKIP_EXPANSION")) test_expansion();
  test_symbolic();
  test_lowering();
  return unit_report("gemm");
}
