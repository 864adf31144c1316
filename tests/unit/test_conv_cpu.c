/* test_conv_cpu.c — convolutions as the CPU backend computes them, against
 * a naive convolution computed here.
 *
 * Each case is IR text of one 2-d (or 1-d) convolution, optionally
 * followed by hardtanh(0, 6) (fused into the convolution's kernels as an
 * epilogue), over weights and inputs whose values are multiples of 1/64 in
 * [-2, 2): every product and every partial sum is then exact in f32, so
 * each result must equal the reference exactly, whatever the order of the
 * sums. The graph is shaped either for fixed sizes or with named dims
 * ("x:f32[b,C,h,w]", then run for given values), scheduled, and run twice:
 * with the reference interpreter (kp_interp / kp_interp_dims), and
 * compiled with llvm_compile for the host, linked with a serial
 * parallel_for that splits every parallel loop unevenly, and called
 * through nncc_graph_run.
 *
 * The cases cover the direct depthwise kernel (lower/gemm.c): stride 1
 * and 2, padding 0, 1 and 2, dilation, rows narrower and wider than the
 * flat form's limit, odd widths, planes with no interior at all, bias or
 * none, the epilogue, and a long 1-d filter that takes the tap-by-tap
 * form; and the GEMM convolutions (im2col or a plain GEMM for 1x1) with
 * the same variety plus groups, and column tails of every short width;
 * and Winograd's F(2x2, 3x3) for 3x3 stride-1 convolutions.
 */
#include "symtest.h"
#include "llvmtest.h"

#include <math.h>

/* ---- cases ----------------------------------------------------------------- */

typedef struct ccase {
  int64_t cin, cout, groups; /* channels; groups == cin == cout: depthwise */
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool one_d;          /* a 1-d convolution (kh, sh, ph, dh unused) */
  bool bias;           /* a bias operand (else none) */
  bool relu6;          /* followed by hardtanh(0, 6), fused */
  bool sym;            /* batch and spatial sizes named b, h, w */
  int64_t n, h, w;     /* the sizes run */
  const char *kernels; /* the kernels expected, comma-separated */
} ccase;

/* The case's IR text. */
static char *case_ir(const ccase *t, nn_arena *a) {
  nn_buf b = {0};
  int64_t cg = t->cin / t->groups;
  nn_buf_printf(&b, "graph forward(%%0 x: unknown) -> (unknown) {\n");
  if (t->one_d) {
    nn_buf_printf(&b, "  %%1 = weight(\"w\") : f32[%lld, %lld, %lld]\n", (long long)t->cout,
                  (long long)cg, (long long)t->kw);
  } else {
    nn_buf_printf(&b, "  %%1 = weight(\"w\") : f32[%lld, %lld, %lld, %lld]\n", (long long)t->cout,
                  (long long)cg, (long long)t->kh, (long long)t->kw);
  }
  if (t->bias)
    nn_buf_printf(&b, "  %%2 = weight(\"bias\") : f32[%lld]\n", (long long)t->cout);
  else
    nn_buf_printf(&b, "  %%2 = constant(none) : none\n");
  if (t->one_d) {
    nn_buf_printf(&b, "  %%3 = constant([%lld]) : list<int>\n", (long long)t->sw);
    nn_buf_printf(&b, "  %%4 = constant([%lld]) : list<int>\n", (long long)t->pw);
    nn_buf_printf(&b, "  %%5 = constant([%lld]) : list<int>\n", (long long)t->dw);
    nn_buf_printf(&b, "  %%7 = constant([0]) : list<int>\n");
  } else {
    nn_buf_printf(&b, "  %%3 = constant([%lld, %lld]) : list<int>\n", (long long)t->sh,
                  (long long)t->sw);
    nn_buf_printf(&b, "  %%4 = constant([%lld, %lld]) : list<int>\n", (long long)t->ph,
                  (long long)t->pw);
    nn_buf_printf(&b, "  %%5 = constant([%lld, %lld]) : list<int>\n", (long long)t->dh,
                  (long long)t->dw);
    nn_buf_printf(&b, "  %%7 = constant([0, 0]) : list<int>\n");
  }
  nn_buf_printf(&b, "  %%6 = constant(false) : bool\n");
  nn_buf_printf(&b, "  %%8 = constant(%lld) : int\n", (long long)t->groups);
  nn_buf_printf(&b, "  %%9 = convolution(%%0, %%1, %%2, %%3, %%4, %%5, %%6, %%7, %%8) : "
                    "unknown\n");
  if (t->relu6) {
    nn_buf_printf(&b, "  %%10 = constant(0.0) : float\n");
    nn_buf_printf(&b, "  %%11 = constant(6.0) : float\n");
    nn_buf_printf(&b, "  %%12 = hardtanh(%%9, %%10, %%11) : unknown\n");
    nn_buf_printf(&b, "  return %%12\n}\n");
  } else {
    nn_buf_printf(&b, "  return %%9\n}\n");
  }
  char *r = nn_strdup(a, b.data);
  nn_buf_free(&b);
  return r;
}

/* The input spec: fixed sizes, or named ones. */
static char *case_spec(const ccase *t, nn_arena *a) {
  nn_buf b = {0};
  if (t->one_d && t->sym)
    nn_buf_printf(&b, "x:f32[b,%lld,w]", (long long)t->cin);
  else if (t->one_d)
    nn_buf_printf(&b, "x:f32[%lld,%lld,%lld]", (long long)t->n, (long long)t->cin, (long long)t->w);
  else if (t->sym)
    nn_buf_printf(&b, "x:f32[b,%lld,h,w]", (long long)t->cin);
  else
    nn_buf_printf(&b, "x:f32[%lld,%lld,%lld,%lld]", (long long)t->n, (long long)t->cin,
                  (long long)t->h, (long long)t->w);
  char *r = nn_strdup(a, b.data);
  nn_buf_free(&b);
  return r;
}

/* The output size along one dim. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/* The naive convolution of x by the graph's weights (and bias), then the
 * clamp when relu6, into out [n, cout, ho, wo], in double. */
static void ref_conv(const ccase *t, const ir_graph *g, const float *x, float *out) {
  const float *w = NULL, *bias = NULL;
  for (int i = 0; i < g->weights.len; i++) {
    if (strcmp(g->weights.data[i].name, "w") == 0) w = g->weights.data[i].data;
    if (strcmp(g->weights.data[i].name, "bias") == 0) bias = g->weights.data[i].data;
  }
  NN_ASSERT(w);
  int64_t H = t->one_d ? 1 : t->h, W = t->w;
  int64_t kh = t->one_d ? 1 : t->kh, sh = t->one_d ? 1 : t->sh;
  int64_t ph = t->one_d ? 0 : t->ph, dh = t->one_d ? 1 : t->dh;
  int64_t ho = out_size(H, kh, sh, ph, dh), wo = out_size(W, t->kw, t->sw, t->pw, t->dw);
  int64_t cg = t->cin / t->groups, mg = t->cout / t->groups;
  for (int64_t n = 0; n < t->n; n++)
    for (int64_t co = 0; co < t->cout; co++)
      for (int64_t oh = 0; oh < ho; oh++)
        for (int64_t ow = 0; ow < wo; ow++) {
          double s = bias ? bias[co] : 0.0;
          int64_t g0 = co / mg;
          for (int64_t ci = 0; ci < cg; ci++)
            for (int64_t i = 0; i < kh; i++)
              for (int64_t j = 0; j < t->kw; j++) {
                int64_t ih = oh * sh - ph + i * dh, iw = ow * t->sw - t->pw + j * t->dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += (double)w[((co * cg + ci) * kh + i) * t->kw + j] *
                     x[((n * t->cin + g0 * cg + ci) * H + ih) * W + iw];
              }
          if (t->relu6) s = s < 0 ? 0 : s > 6 ? 6 : s;
          out[((n * t->cout + co) * ho + oh) * wo + ow] = (float)s;
        }
}

/* ---- running ---------------------------------------------------------------- */

static const char rt_source[] =
    "#include <stdint.h>\n" LT_RT_PARALLEL_FOR "  if (n > 2) {\n"
    "    fn(slots, 0, 1);\n"
    "    fn(slots, 1, n / 2);\n"
    "    fn(slots, n / 2, n);\n"
    "  } else {\n"
    "    fn(slots, 0, n);\n"
    "  }\n"
    "}\n";

/* Runs p compiled by LLVM on in (dims: the symbols' values, or NULL), into
 * out. The workspace of a dynamic program is laid out here, buffer after
 * buffer. `pack`: the GEMM must pack B from the image (the im2col kernel is
 * then never called); the backend does so for symbolic sizes, and for
 * fixed ones from 144 output positions on (3 column tiles of 48). */
static void run_llvm(const kp_program *p, const int64_t *dims, void **in, void **out, bool pack) {
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_opts o = {.opt_level = 2};
  llvm_result r;
  CHECK_INT(llvm_compile(p, &o, true, &r, &d), 0);
  if (d.errors) return;
  if (pack) CHECK(r.ir_text && strstr(r.ir_text, "@nncc.pack.im2col.") != NULL);
  graph_fn fn;
  void *h = lt_load_object(&r, &fn);
  if (h) {
    uint64_t bytes = p->workspace_bytes;
    int64_t *offsets = calloc((size_t)p->bufs.len + 1, sizeof(int64_t));
    if (p->dynamic) {
      bytes = 0;
      for (int i = 0; i < p->bufs.len; i++) {
        const kp_buf *b = &p->bufs.data[i];
        if (b->kind != KP_BUF_WORKSPACE) continue;
        bool ok = true;
        int64_t n = kp_dim_eval(p, b->elems_d, dims, &ok);
        CHECK(ok);
        offsets[i] = (int64_t)bytes;
        bytes += ((uint64_t)(n > 0 ? n : 0) * nn_dtype_size(b->dtype) + 63) & ~(uint64_t)63;
      }
    }
    unsigned char *ws = aligned_alloc(64, (size_t)bytes + 64);
    CHECK_INT(fn(in, out, ws, p->weights.data, NULL, dims, offsets, NULL), 0);
    free(ws);
    free(offsets);
    dlclose(h);
  }
  llvm_result_free(&r);
}

/* The kernel names of p's steps ("conv_depthwise_hardtanh,..."). */
static void step_names(const kp_program *p, char *buf, size_t n) {
  buf[0] = 0;
  for (int i = 0; i < p->steps.len; i++) {
    const char *nm = strchr(p->steps.data[i].k->name, '_');
    size_t l = strlen(buf);
    snprintf(buf + l, n - l, "%s%s", i ? "," : "", nm ? nm + 1 : "?");
  }
}

/* Counts results that differ from the reference (exactly). */
static int64_t mismatches(const float *got, const float *want, int64_t n, double *worst) {
  int64_t bad = 0;
  *worst = 0;
  for (int64_t i = 0; i < n; i++)
    if (!(got[i] == want[i])) {
      bad++;
      double e = fabs((double)got[i] - want[i]);
      if (!(e <= *worst)) *worst = e;
    }
  return bad;
}

static void run_case(const ccase *t) {
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  kp_program *p = compile(case_ir(t, a), case_spec(t, a), true, a, &d);
  CHECK(p != NULL);
  if (!p) {
    nn_arena_free(a);
    return;
  }
  char names[256];
  step_names(p, names, sizeof names);
  CHECK_STR(names, t->kernels);
  int64_t dims[3] = {0}, *dp = NULL;
  if (p->syms.len) {
    for (int i = 0; i < p->syms.len && i < 3; i++) {
      const char *s = p->syms.data[i].name;
      dims[i] = s[0] == 'b' ? t->n : s[0] == 'h' ? t->h : t->w;
    }
    dp = dims;
  }
  void *in[8] = {0};
  make_inputs(p, dp, in);
  int64_t H = t->one_d ? 1 : t->h;
  int64_t ho = t->one_d ? 1 : out_size(H, t->kh, t->sh, t->ph, t->dh);
  int64_t wo = out_size(t->w, t->kw, t->sw, t->pw, t->dw);
  int64_t n = t->n * t->cout * ho * wo;
  float *want = calloc((size_t)n + 1, sizeof(float));
  float *got = calloc((size_t)n + 1, sizeof(float));
  ref_conv(t, p->g, in[0], want);
  void *out[1] = {got};
  for (int pass = 0; pass < 2; pass++) {
    for (int64_t i = 0; i < n; i++) got[i] = NAN;
    if (pass == 0)
      CHECK_INT(dp ? kp_interp_dims(p, dp, in, out) : kp_interp(p, in, out), 0);
    else
      run_llvm(p, dp, in, out, strstr(t->kernels, "im2col") && (t->sym || ho * wo >= 144));
    double worst;
    int64_t bad = mismatches(got, want, n, &worst);
    if (bad)
      fprintf(stderr,
              "%s: cin=%lld cout=%lld g=%lld k=%lldx%lld s=%lld,%lld p=%lld,%lld "
              "d=%lld,%lld bias=%d relu6=%d sym=%d n=%lld h=%lld w=%lld: %lld of %lld "
              "differ (worst %g)\n",
              pass ? "llvm" : "interp", (long long)t->cin, (long long)t->cout, (long long)t->groups,
              (long long)t->kh, (long long)t->kw, (long long)t->sh, (long long)t->sw,
              (long long)t->ph, (long long)t->pw, (long long)t->dh, (long long)t->dw, t->bias,
              t->relu6, t->sym, (long long)t->n, (long long)t->h, (long long)t->w, (long long)bad,
              (long long)n, worst);
    CHECK_INT(bad, 0);
  }
  free(want);
  free(got);
  for (int i = 0; i < 8; i++) free(in[i]);
  nn_arena_free(a);
}

/* ---- the cases ----------------------------------------------------------------- */

/* A depthwise case: C channels, k x k, stride s, padding p, dilation dl. */
static ccase dw(int64_t C, int64_t k, int64_t s, int64_t p, int64_t dl, int64_t n, int64_t h,
                int64_t w) {
  return (ccase){.cin = C,
                 .cout = C,
                 .groups = C,
                 .kh = k,
                 .kw = k,
                 .sh = s,
                 .sw = s,
                 .ph = p,
                 .pw = p,
                 .dh = dl,
                 .dw = dl,
                 .bias = true,
                 .n = n,
                 .h = h,
                 .w = w,
                 .kernels = "conv_depthwise"};
}

/* A 3x3 stride-1 GEMM-family case (groups 1, bias, no epilogue, fixed
 * sizes) with padding ph, pw. */
static ccase k3(int64_t cin, int64_t cout, int64_t ph, int64_t pw, int64_t n, int64_t h, int64_t w,
                const char *kernels) {
  return (ccase){.cin = cin,
                 .cout = cout,
                 .groups = 1,
                 .kh = 3,
                 .kw = 3,
                 .sh = 1,
                 .sw = 1,
                 .ph = ph,
                 .pw = pw,
                 .dh = 1,
                 .dw = 1,
                 .bias = true,
                 .n = n,
                 .h = h,
                 .w = w,
                 .kernels = kernels};
}

static void test_depthwise(void) {
  /* sizes: narrow and wide rows (the flat form's two variants), odd and
   * even widths (stride 2 then is or is not 2*wout), a plane with no
   * interior, widths below the kernel's */
  static const int64_t hw[][2] = {{7, 7},  {14, 14}, {9, 13}, {12, 40}, {33, 37},
                                  {2, 70}, {1, 1},   {3, 2},  {5, 31},  {6, 32}};
  static const int64_t ksp[][4] = {/* k, stride, pad, dilation */
                                   {3, 1, 1, 1}, {3, 2, 1, 1}, {3, 1, 0, 1}, {3, 2, 0, 1},
                                   {5, 1, 2, 1}, {5, 2, 2, 1}, {3, 1, 2, 2}, {3, 2, 2, 2},
                                   {1, 1, 0, 1}, {3, 1, 2, 1}, {7, 1, 3, 1}};
  int n = 0;
  for (size_t i = 0; i < sizeof ksp / sizeof ksp[0]; i++)
    for (size_t j = 0; j < sizeof hw / sizeof hw[0]; j++) {
      int64_t k = ksp[i][0], s = ksp[i][1], p = ksp[i][2], dl = ksp[i][3];
      int64_t h = hw[j][0], w = hw[j][1];
      if (h + 2 * p < dl * (k - 1) + 1 || w + 2 * p < dl * (k - 1) + 1) continue; /* no output */
      ccase t = dw(3 + (int64_t)(n % 3), k, s, p, dl, 1 + (n % 2), h, w);
      t.bias = n % 4 != 1;
      t.relu6 = n % 3 == 0;
      t.sym = n % 2 == 1;
      if (t.relu6) t.kernels = "conv_depthwise_hardtanh";
      run_case(&t);
      n++;
    }
  /* rectangular kernels and per-dim parameters */
  ccase t = dw(4, 3, 1, 1, 1, 2, 10, 21);
  t.kh = 1, t.ph = 0, t.sw = 2;
  run_case(&t);
  t = dw(4, 3, 2, 1, 1, 1, 17, 9);
  t.kw = 5, t.pw = 2, t.sh = 1, t.sym = true;
  run_case(&t);
  /* a long 1-d filter: the tap-by-tap form */
  t = dw(3, 65, 1, 32, 1, 2, 1, 90);
  t.kh = 1, t.one_d = true, t.sym = true;
  run_case(&t);
}

static void test_gemm_conv(void) {
  static const int64_t ksp[][4] = {{3, 1, 1, 1}, {3, 2, 1, 1}, {7, 2, 3, 1}, {1, 2, 0, 1},
                                   {3, 1, 2, 2}, {1, 1, 0, 1}, {5, 1, 0, 1}};
  static const int64_t hw[][2] = {{7, 7}, {14, 13}, {23, 30}, {1, 5}};
  int n = 0;
  for (size_t i = 0; i < sizeof ksp / sizeof ksp[0]; i++)
    for (size_t j = 0; j < sizeof hw / sizeof hw[0]; j++) {
      int64_t k = ksp[i][0], s = ksp[i][1], p = ksp[i][2], dl = ksp[i][3];
      int64_t h = hw[j][0], w = hw[j][1];
      if (h + 2 * p < dl * (k - 1) + 1 || w + 2 * p < dl * (k - 1) + 1) continue;
      bool plain = k == 1 && s == 1 && p == 0;
      ccase t = {.cin = 5 + n % 4,
                 .cout = 8 + 3 * (n % 5),
                 .groups = 1,
                 .kh = k,
                 .kw = k,
                 .sh = s,
                 .sw = s,
                 .ph = p,
                 .pw = p,
                 .dh = dl,
                 .dw = dl,
                 .bias = n % 3 != 2,
                 .relu6 = n % 2 == 0,
                 .sym = n % 3 == 1,
                 .n = 1 + n % 3,
                 .h = h,
                 .w = w};
      t.kernels = plain ? (t.relu6 ? "conv_gemm_hardtanh" : "conv_gemm")
                        : (t.relu6 ? "im2col,conv_gemm_hardtanh" : "im2col,conv_gemm");
      run_case(&t);
      n++;
    }
  /* more rows than a macro tile, K across several blocks */
  ccase t = k3(15, 140, 1, 1, 1, 20, 21, "im2col,conv_gemm"); /* 15: below Winograd's 16 */
  run_case(&t);
  t.sym = true, t.n = 2, t.sh = 2;
  run_case(&t);
  /* groups */
  t = k3(8, 12, 1, 1, 2, 9, 11, "im2col,conv_gemm");
  t.groups = 2;
  run_case(&t);
  t.sym = true;
  run_case(&t);
}

/* Column tails of 1..4 output positions past a multiple of the register
 * tile's 48 columns: with A in panels of 8 and rows in whole panels they
 * are computed by the last full column tile's microkernels (llvm_gemm.c),
 * for B read in place (1x1), from an im2col buffer (few positions) or
 * packed from the image (many: the tail then joins the last macro tile,
 * whose last full column tile is the first or a later one of its packed
 * block, or starts a new block, where the separate tail path runs).
 * 12 output channels: not whole panels, the separate tail path. */
static void test_gemm_tails(void) {
  static const int64_t cases[][6] =
      {/* k, pad, h, w, cout, sym */
       {1, 0, 7, 7, 16, 0},   {1, 0, 5, 10, 16, 0}, {1, 0, 3, 17, 24, 1},  {1, 0, 14, 14, 16, 0},
       {3, 1, 7, 7, 16, 0},   {3, 1, 5, 10, 16, 1}, {3, 1, 3, 17, 16, 0},  {3, 1, 4, 13, 16, 0},
       {3, 1, 14, 14, 32, 0}, {3, 1, 5, 29, 16, 0}, {3, 1, 14, 55, 16, 0}, {3, 1, 2, 1537, 8, 0},
       {3, 1, 14, 14, 12, 0}, {1, 0, 7, 7, 12, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const int64_t *c = cases[i];
    bool plain = c[0] == 1;
    ccase t = {.cin = 5 + (int64_t)(i % 3),
               .cout = c[4],
               .groups = 1,
               .kh = c[0],
               .kw = c[0],
               .sh = 1,
               .sw = 1,
               .ph = c[1],
               .pw = c[1],
               .dh = 1,
               .dw = 1,
               .bias = i % 2 == 0,
               .relu6 = i % 3 == 0,
               .sym = c[5] != 0,
               .n = 1,
               .h = c[2],
               .w = c[3]};
    t.kernels = plain ? (t.relu6 ? "conv_gemm_hardtanh" : "conv_gemm")
                      : (t.relu6 ? "im2col,conv_gemm_hardtanh" : "im2col,conv_gemm");
    run_case(&t);
  }
}

/* Winograd F(2x2, 3x3) (3x3, stride 1, 16 or more channels each way,
 * fixed sizes): even and odd sizes (the last row or column of 2x2 tiles
 * half outside), padding 0, 1 and 2 and per-dim, images of one tile row or
 * of border tiles only, several images, output channels not in whole
 * panels, bias or none, the epilogue. The transforms scale by 1/2 and 1/4
 * only, so with these values every sum is still a multiple of 2^-14 far
 * below 2^10, exact in f32. The cases that do not fit (one output row,
 * named sizes, 15 channels) keep the GEMM. */
static void test_winograd(void) {
  static const int64_t cases[][8] =
      {/* cin, cout, ph, pw, n, h, w, fits */
       {16, 16, 1, 1, 1, 7, 7, 1},   {16, 24, 1, 1, 2, 14, 13, 1}, {20, 17, 1, 1, 1, 9, 11, 1},
       {16, 16, 0, 0, 1, 10, 7, 1},  {17, 32, 2, 2, 1, 5, 6, 1},   {16, 16, 1, 0, 2, 4, 4, 1},
       {24, 16, 0, 2, 1, 6, 3, 1},   {16, 16, 1, 1, 1, 2, 5, 1},   {16, 40, 1, 1, 3, 3, 3, 1},
       {16, 16, 1, 1, 1, 28, 30, 1}, {16, 16, 0, 0, 1, 3, 9, 0},   {15, 16, 1, 1, 1, 8, 8, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const int64_t *c = cases[i];
    ccase t = k3(c[0], c[1], c[2], c[3], c[4], c[5], c[6], NULL);
    t.bias = i % 3 != 1;
    t.relu6 = i % 2 == 0;
    if (c[7])
      t.kernels = t.relu6 ? "winograd_in,winograd_gemm,winograd_out_hardtanh"
                          : "winograd_in,winograd_gemm,winograd_out";
    else
      t.kernels = t.relu6 ? "im2col,conv_gemm_hardtanh" : "im2col,conv_gemm";
    run_case(&t);
  }
  /* named sizes: the GEMM */
  ccase t = k3(16, 16, 1, 1, 2, 6, 9, "im2col,conv_gemm");
  t.sym = true;
  run_case(&t);
}

int main(void) {
  lt_setup("conv_cpu", rt_source);
  test_depthwise();
  test_gemm_conv();
  test_gemm_tails();
  test_winograd();
  lt_cleanup();
  return unit_report("test_conv_cpu");
}
