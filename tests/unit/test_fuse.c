/* test_fuse.c — batch_norm folding and fusion, checked by running programs.
 *
 * Each case is IR text. It is compiled twice, through the passes "none"
 * and through "fold,fuse" (the verifier after each), with the same
 * deterministic weight data attached by name, then scheduled and run by
 * the reference interpreter on the same inputs. Fused results must equal
 * unfused ones bit for bit (fusion reuses the standalone scalar code and
 * the same f32 roundings); folded ones within 1e-5 relative. The fused
 * program is also run after k_expand_gemms (the loop form the LLVM backend
 * compiles), and its kernel names are checked, which shows what fused.
 * Last, the verifier's group rules on broken graphs.
 */
#include "../../backends/backend.h"
#include "../../lower/lower.h"
#include "../../passes/passes.h"
#include "unit.h"

#include <math.h>

/* Deterministic pseudo-random values in [-1, 1) (xorshift). */
static float rnd(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static uint32_t name_seed(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h | 1;
}

/* Attaches data to every weight: running_var weights get values in
 * [0.5, 1.5) (a variance), the others [-1, 1). */
static void attach_weights(ir_graph *g, nn_arena *a) {
  for (int i = 0; i < g->weights.len; i++) {
    ir_weight *w = &g->weights.data[i];
    int64_t n = 1;
    for (int k = 0; k < w->rank; k++) n *= w->sizes[k];
    float *d = nn_alloc(a, sizeof(float) * (size_t)(n + 1));
    uint32_t s = name_seed(w->name);
    bool var = strstr(w->name, "var") != NULL;
    for (int64_t e = 0; e < n; e++) d[e] = var ? 1.0f + 0.5f * rnd(&s) : rnd(&s);
    w->data = d;
    w->nbytes = sizeof(float) * (size_t)n;
  }
}

typedef struct run {
  float *out[4]; /* outputs (malloc'd) */
  int64_t n[4];  /* their element counts */
  int nout;
  char kernels[1024]; /* kernel names without the "kN_" prefix, ',' joined */
  char ir[8192];      /* the IR after the passes */
} run;

/* Compiles `text` through `passes`, runs it on inputs[] (f32, sizes from
 * the graph's input types) and fills r. expand: run the k_expand_gemms
 * form. Returns false on any error (printed). */
static bool compile_run(const char *text, const char *passes, bool expand, float *const *inputs,
                        run *r) {
  memset(r, 0, sizeof *r);
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  bool ok = false;
  ir_graph *g = ir_parse(text, strlen(text), "t.nnir", a, &d);
  if (!g) goto done;
  attach_weights(g, a);
  pass_opts o = {.passes = passes, .verify_each = true};
  if (pass_pipeline_run(g, &o, &d) || d.errors) goto done;
  nn_buf b = {0};
  ir_print(&b, g, 0);
  snprintf(r->ir, sizeof r->ir, "%s", b.data ? b.data : "");
  nn_buf_free(&b);
  kp_program *p = kl_schedule(g, a, tg_host(), &d);
  if (!p) goto done;
  for (int i = 0; i < p->steps.len; i++) {
    const char *nm = strchr(p->steps.data[i].k->name, '_');
    size_t l = strlen(r->kernels);
    snprintf(r->kernels + l, sizeof r->kernels - l, "%s%s", i ? "," : "", nm ? nm + 1 : "?");
    if (expand) k_expand_gemms(p->steps.data[i].k, &tg_host()->expand);
  }
  r->nout = p->outputs.len < 4 ? p->outputs.len : 4;
  void *outs[4] = {0};
  for (int j = 0; j < r->nout; j++) {
    int64_t n = 1;
    for (int k = 0; k < p->outputs.data[j].rank; k++) n *= p->outputs.data[j].dims[k];
    r->n[j] = n;
    r->out[j] = calloc((size_t)n + 1, sizeof(float));
    outs[j] = r->out[j];
  }
  ok = kp_interp(p, (void *const *)inputs, outs) == 0;
done:
  nn_arena_free(a);
  return ok && d.errors == 0;
}

static void run_free(run *r) {
  for (int j = 0; j < r->nout; j++) free(r->out[j]);
}

/* Largest |x - y| / max(1, |y|) over the outputs of two runs. */
static double max_rel(const run *x, const run *y) {
  double m = 0;
  for (int j = 0; j < x->nout && j < y->nout; j++)
    for (int64_t e = 0; e < x->n[j] && e < y->n[j]; e++) {
      double dy = y->out[j][e], dd = fabs((double)x->out[j][e] - dy);
      double rel = dd / (fabs(dy) > 1 ? fabs(dy) : 1);
      if (rel > m || isnan(rel)) m = isnan(rel) ? INFINITY : rel;
    }
  return m;
}

static bool same_bits(const run *x, const run *y) {
  if (x->nout != y->nout) return false;
  for (int j = 0; j < x->nout; j++)
    if (x->n[j] != y->n[j] || memcmp(x->out[j], y->out[j], sizeof(float) * (size_t)x->n[j]))
      return false;
  return true;
}

/* Runs `text` unfused and fused (passes "fold,fuse") and compares. */
static void check_case(const char *what, const char *text, float *const *inputs, bool exact,
                       const char *unfused_kernels, const char *fused_kernels) {
  run base, fused, expanded;
  bool ok1 = compile_run(text, "none", false, inputs, &base);
  bool ok2 = compile_run(text, "fold,fuse", false, inputs, &fused);
  bool ok3 = compile_run(text, "fold,fuse", true, inputs, &expanded);
  CHECK(ok1 && ok2 && ok3);
  if (ok1 && ok2 && ok3) {
    CHECK_STR(base.kernels, unfused_kernels);
    CHECK_STR(fused.kernels, fused_kernels);
    CHECK_INT(fused.nout, base.nout);
    double e = max_rel(&fused, &base);
    if (exact ? !same_bits(&fused, &base) : e > 1e-5) {
      fprintf(stderr, "%s: fused differs from unfused by %g\n", what, e);
      CHECK(false);
    }
    double ex = max_rel(&expanded, &fused);
    if (ex > 1e-5) {
      fprintf(stderr, "%s: expanded gemms differ by %g\n", what, ex);
      CHECK(false);
    }
  }
  run_free(&base);
  run_free(&fused);
  run_free(&expanded);
}

static float *input(int64_t n, uint32_t seed) {
  float *x = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) x[i] = 2.0f * rnd(&seed);
  return x;
}

/* ---- cases ----------------------------------------------------------------- */

/* Elementwise chain with a full-shape operand, a scalar and a broadcast
 * operand (nested loops with broadcast strides), ending in sigmoid. */
static const char *chain_text =
    "graph forward(%0 x: f32[2,3,4], %1 y: f32[2,3,4], %2 b: f32[3,1]) -> (f32[2,3,4]) {\n"
    "  %3 = relu(%0) : f32[2,3,4]\n"
    "  %4 = constant(2.) : float\n"
    "  %5 = mul(%3, %4) : f32[2,3,4]\n"
    "  %6 = constant(1) : int\n"
    "  %7 = add(%5, %1, %6) : f32[2,3,4]\n"
    "  %8 = sub(%7, %2, %6) : f32[2,3,4]\n"
    "  %9 = sigmoid(%8) : f32[2,3,4]\n"
    "  return %9\n"
    "}\n";

/* conv(+bn) + relu, conv(+bn) + residual add + relu (the resnet block),
 * and a 1x1 downsample; then a linear + gelu epilogue. */
static const char *block_text =
    "graph forward(%0 x: f32[2,4,6,6]) -> (f32[2,4,6,6], f32[2,4,6,5]) {\n"
    "  %1 = weight(\"conv1.weight\") : f32[4,4,3,3]\n"
    "  %2 = constant(none) : none\n"
    "  %3 = constant([1, 1]) : list<int>\n"
    "  %4 = constant(false) : bool\n"
    "  %5 = constant([0, 0]) : list<int>\n"
    "  %6 = constant(1) : int\n"
    "  %7 = convolution(%0, %1, %2, %3, %3, %3, %4, %5, %6) : f32[2,4,6,6]\n"
    "  %8 = weight(\"bn1.weight\") : f32[4]\n"
    "  %9 = weight(\"bn1.bias\") : f32[4]\n"
    "  %10 = weight(\"bn1.running_mean\") : f32[4]\n"
    "  %11 = weight(\"bn1.running_var\") : f32[4]\n"
    "  %12 = constant(0.1) : float\n"
    "  %13 = constant(1e-05) : float\n"
    "  %14 = batch_norm(%7, %8, %9, %10, %11, %4, %12, %13, %4) : f32[2,4,6,6]\n"
    "  %15 = relu(%14) : f32[2,4,6,6]\n"
    "  %16 = weight(\"conv2.weight\") : f32[4,4,3,3]\n"
    "  %17 = weight(\"conv2.bias\") : f32[4]\n"
    "  %18 = convolution(%15, %16, %17, %3, %3, %3, %4, %5, %6) : f32[2,4,6,6]\n"
    "  %19 = weight(\"down.weight\") : f32[4,4,1,1]\n"
    "  %20 = convolution(%0, %19, %2, %3, %5, %3, %4, %5, %6) : f32[2,4,6,6]\n"
    "  %21 = add(%18, %20, %6) : f32[2,4,6,6]\n"
    "  %22 = relu(%21) : f32[2,4,6,6]\n"
    "  %23 = weight(\"fc.weight\") : f32[5,6]\n"
    "  %24 = weight(\"fc.bias\") : f32[5]\n"
    "  %25 = linear(%22, %23, %24) : f32[2,4,6,5]\n"
    "  %26 = constant(\"none\") : str\n"
    "  %27 = gelu(%25, %26) : f32[2,4,6,5]\n"
    "  return %22, %27\n"
    "}\n";

/* Depthwise convolution (its own direct kernel) + bn + relu6, the
 * mobilenet pattern, with a broadcast per-channel scale in the epilogue. */
static const char *depthwise_text =
    "graph forward(%0 x: f32[1,3,7,7], %1 s: f32[3,1,1]) -> (f32[1,3,4,4]) {\n"
    "  %2 = weight(\"dw.weight\") : f32[3,1,3,3]\n"
    "  %3 = constant(none) : none\n"
    "  %4 = constant([2, 2]) : list<int>\n"
    "  %5 = constant([1, 1]) : list<int>\n"
    "  %6 = constant(false) : bool\n"
    "  %7 = constant([0, 0]) : list<int>\n"
    "  %8 = constant(3) : int\n"
    "  %9 = convolution(%0, %2, %3, %4, %5, %5, %6, %7, %8) : f32[1,3,4,4]\n"
    "  %10 = weight(\"bn.weight\") : f32[3]\n"
    "  %11 = weight(\"bn.bias\") : f32[3]\n"
    "  %12 = weight(\"bn.running_mean\") : f32[3]\n"
    "  %13 = weight(\"bn.running_var\") : f32[3]\n"
    "  %14 = constant(0.1) : float\n"
    "  %15 = constant(0.001) : float\n"
    "  %16 = batch_norm(%9, %10, %11, %12, %13, %6, %14, %15, %6) : f32[1,3,4,4]\n"
    "  %17 = mul(%16, %1) : f32[1,3,4,4]\n"
    "  %18 = constant(0.) : float\n"
    "  %19 = constant(6.) : float\n"
    "  %20 = hardtanh(%17, %18, %19) : f32[1,3,4,4]\n"
    "  return %20\n"
    "}\n";

/* A batched matmul whose epilogue scales the product and masks it with
 * where(); the bool mask comes from a node outside the group. */
static const char *matmul_text =
    "graph forward(%0 a: f32[2,3,4], %1 b: f32[2,4,5], %2 m: f32[2,3,5]) -> (f32[2,3,5]) {\n"
    "  %3 = matmul(%0, %1) : f32[2,3,5]\n"
    "  %4 = constant(0.5) : float\n"
    "  %5 = mul(%3, %4) : f32[2,3,5]\n"
    "  %6 = constant(0.) : float\n"
    "  %7 = gt(%2, %6) : bool[2,3,5]\n"
    "  %8 = constant(-3.) : float\n"
    "  %9 = where(%7, %5, %8) : f32[2,3,5]\n"
    "  return %9\n"
    "}\n";

/* DenseNet's pattern: cat, then a batch_norm that follows no convolution
 * (folded into a broadcast mul and add), then relu: one kernel that reads
 * each row of the result from the input it comes from. A transpose head
 * has no fused index math: it runs alone, and the rest is fused. */
static const char *cat_text =
    "graph forward(%0 x: f32[2,3,4,5], %1 y: f32[2,2,4,5], %2 z: f32[5,4]) -> (f32[2,5,4,5], "
    "f32[4,5]) {\n"
    "  %3 = list_construct(%0, %1) : list<f32[2,3,4,5]>\n"
    "  %4 = constant(1) : int\n"
    "  %5 = cat(%3, %4) : f32[2,5,4,5]\n"
    "  %6 = weight(\"bn.weight\") : f32[5]\n"
    "  %7 = weight(\"bn.bias\") : f32[5]\n"
    "  %8 = weight(\"bn.running_mean\") : f32[5]\n"
    "  %9 = weight(\"bn.running_var\") : f32[5]\n"
    "  %10 = constant(false) : bool\n"
    "  %11 = constant(0.1) : float\n"
    "  %12 = constant(1e-05) : float\n"
    "  %13 = batch_norm(%5, %6, %7, %8, %9, %10, %11, %12, %10) : f32[2,5,4,5]\n"
    "  %14 = relu(%13) : f32[2,5,4,5]\n"
    "  %15 = constant(0) : int\n"
    "  %16 = transpose(%2, %15, %4) : f32[4,5]\n"
    "  %17 = weight(\"t.bias\") : f32[5]\n"
    "  %18 = add(%16, %17, %4) : f32[4,5]\n"
    "  %19 = tanh(%18) : f32[4,5]\n"
    "  return %14, %19\n"
    "}\n";

static void test_programs(void) {
  float *x = input(24, 1), *y = input(24, 2), *b = input(3, 3);
  float *in1[3] = {x, y, b};
  check_case("chain", chain_text, in1, true, "relu,mul,add,sub,sigmoid",
             "relu_mul_add_sub_sigmoid");
  free(x), free(y), free(b);

  float *xb = input(2 * 4 * 36, 4);
  float *in2[1] = {xb};
  check_case("block", block_text, in2, false,
             "im2col,conv_gemm,batch_norm,relu,im2col,conv_gemm,conv_gemm,add,relu,linear,gelu",
             "im2col,conv_gemm_relu,conv_gemm,im2col,conv_gemm_add_relu,linear_gelu");
  free(xb);

  float *xd = input(3 * 49, 5), *sd = input(3, 6);
  float *in3[2] = {xd, sd};
  check_case("depthwise", depthwise_text, in3, false, "conv_depthwise,batch_norm,mul,hardtanh",
             "conv_depthwise_mul_hardtanh");
  free(xd), free(sd);

  float *cx = input(120, 10), *cy = input(80, 11), *cz = input(20, 12);
  float *in5[3] = {cx, cy, cz};
  check_case("cat", cat_text, in5, false, "cat,cat,batch_norm,relu,transpose,add,tanh",
             "cat_mul_add_relu,transpose,add_tanh");
  free(cx), free(cy), free(cz);

  float *ma = input(24, 7), *mb = input(40, 8), *mm = input(30, 9);
  float *in4[3] = {ma, mb, mm};
  /* matmul's chain (mul, where) is found first; gt's only user, where, is
   * then taken, so gt stays alone and runs before the group. */
  check_case("matmul", matmul_text, in4, true, "matmul,mul,gt,where", "gt,matmul_mul_where");
  free(ma), free(mb), free(mm);
}

/* The exact IR the passes make for the block (fold, then the groups made
 * contiguous: conv2 moves down to its add, after the downsample). */
static void test_block_ir(void) {
  float *xb = input(2 * 4 * 36, 4);
  float *in[1] = {xb};
  run r;
  CHECK(compile_run(block_text, "fold,fuse", false, in, &r));
  CHECK_STR(r.ir,
            "graph forward(%0 x: f32[2,4,6,6]) -> (f32[2,4,6,6], f32[2,4,6,5]) {\n"
            "  %1 = constant(none) : none\n"
            "  %2 = constant([1, 1]) : list<int>\n"
            "  %3 = constant(false) : bool\n"
            "  %4 = constant([0, 0]) : list<int>\n"
            "  %5 = constant(1) : int\n"
            "  %6 = weight(\"conv1.weight.bn_folded\") : f32[4,4,3,3]\n"
            "  %7 = weight(\"conv1.bias.bn_folded\") : f32[4]\n"
            "  %8 = convolution(%0, %6, %7, %2, %2, %2, %3, %4, %5) : f32[2,4,6,6]  group(1)\n"
            "  %9 = relu(%8) : f32[2,4,6,6]  group(1)\n"
            "  %10 = weight(\"conv2.weight\") : f32[4,4,3,3]\n"
            "  %11 = weight(\"conv2.bias\") : f32[4]\n"
            "  %12 = weight(\"down.weight\") : f32[4,4,1,1]\n"
            "  %13 = convolution(%0, %12, %1, %2, %4, %2, %3, %4, %5) : f32[2,4,6,6]\n"
            "  %14 = convolution(%9, %10, %11, %2, %2, %2, %3, %4, %5) : f32[2,4,6,6]  group(2)\n"
            "  %15 = add(%14, %13, %5) : f32[2,4,6,6]  group(2)\n"
            "  %16 = relu(%15) : f32[2,4,6,6]  group(2)\n"
            "  %17 = weight(\"fc.weight\") : f32[5,6]\n"
            "  %18 = weight(\"fc.bias\") : f32[5]\n"
            "  %19 = constant(\"none\") : str\n"
            "  %20 = linear(%16, %17, %18) : f32[2,4,6,5]  group(3)\n"
            "  %21 = gelu(%20, %19) : f32[2,4,6,5]  group(3)\n"
            "  return %16, %21\n"
            "}\n");
  run_free(&r);
  free(xb);
}

/* The folded weights' values: w' = w * s, b' = (b - mean) * s + beta with
 * s = gamma / sqrt(var + eps), for a tiny linear + batch_norm. */
static void test_fold_values(void) {
  const char *text =
      "graph forward(%0 x: f32[1,2]) -> (f32[1,2]) {\n"
      "  %1 = weight(\"fc.weight\") : f32[2,2]\n"
      "  %2 = constant(none) : none\n"
      "  %3 = linear(%0, %1, %2) : f32[1,2]\n"
      "  %4 = weight(\"bn.weight\") : f32[2]\n"
      "  %5 = weight(\"bn.bias\") : f32[2]\n"
      "  %6 = weight(\"bn.running_mean\") : f32[2]\n"
      "  %7 = weight(\"bn.running_var\") : f32[2]\n"
      "  %8 = constant(false) : bool\n"
      "  %9 = constant(0.1) : float\n"
      "  %10 = constant(0.25) : float\n"
      "  %11 = batch_norm(%3, %4, %5, %6, %7, %8, %9, %10, %8) : f32[1,2]\n"
      "  return %11\n"
      "}\n";
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  ir_graph *g = ir_parse(text, strlen(text), "t.nnir", a, &d);
  CHECK(g != NULL);
  if (!g) {
    nn_arena_free(a);
    return;
  }
  static const float w[4] = {1, 2, 3, 4}, gam[2] = {2, -1}, bet[2] = {0.5f, 1};
  static const float mean[2] = {1, -2}, var[2] = {0.75f, 3.75f};
  const float *data[5] = {w, gam, bet, mean, var};
  for (int i = 0; i < 5 && i < g->weights.len; i++) {
    g->weights.data[i].data = data[i];
    g->weights.data[i].nbytes = sizeof(float) * (i == 0 ? 4 : 2);
  }
  CHECK_INT(pass_fold(g, &d), 0);
  CHECK_INT(ir_verify(g, &d), 0);
  /* s = [2/sqrt(1), -1/sqrt(4)] = [2, -0.5] */
  const ir_weight *nw = NULL, *nb = NULL;
  for (int i = 0; i < g->weights.len; i++) {
    if (!strcmp(g->weights.data[i].name, "fc.weight.bn_folded")) nw = &g->weights.data[i];
    if (!strcmp(g->weights.data[i].name, "fc.bias.bn_folded")) nb = &g->weights.data[i];
  }
  CHECK(nw && nb);
  if (nw && nb) {
    const float *fw = nw->data, *fb = nb->data;
    CHECK(fw[0] == 2.0f && fw[1] == 4.0f && fw[2] == -1.5f && fw[3] == -2.0f);
    CHECK(fb[0] == -1.5f && fb[1] == 0.0f); /* (0-1)*2+0.5, (0+2)*-0.5+1 */
  }
  int bns = 0;
  for (int i = 0; i < g->order.len; i++)
    bns += ir_node_get(g, g->order.data[i])->op == NN_OP_BATCH_NORM;
  CHECK_INT(bns, 0);
  nn_arena_free(a);
}

/* The verifier's group rules: each broken graph gives the listed error. */
static void test_verify(void) {
  static const struct {
    const char *text, *error;
  } cases[] = {
      {"graph f(%0 x: f32[3]) -> (f32[3]) {\n"
       "  %1 = relu(%0) : f32[3]  group(1)\n"
       "  %2 = neg(%0) : f32[3]\n"
       "  %3 = exp(%1) : f32[3]  group(1)\n"
       "  return %3\n}\n",
       "group members are not contiguous in program order"},
      {"graph f(%0 x: f32[3]) -> (f32[3], f32[3]) {\n"
       "  %1 = relu(%0) : f32[3]  group(1)\n"
       "  %2 = exp(%1) : f32[3]  group(1)\n"
       "  %3 = neg(%1) : f32[3]\n"
       "  return %2, %3\n}\n",
       "result is used outside its group"},
      {"graph f(%0 x: f32[3]) -> (f32[3], f32[3]) {\n"
       "  %1 = relu(%0) : f32[3]  group(1)\n"
       "  %2 = exp(%1) : f32[3]  group(1)\n"
       "  return %1, %2\n}\n",
       "result is a graph output but not the last member of its group"},
      {"graph f(%0 x: f32[2,3], %1 w: f32[3,3]) -> (f32[2,3]) {\n"
       "  %2 = relu(%0) : f32[2,3]  group(1)\n"
       "  %3 = mm(%2, %1) : f32[2,3]  group(1)\n"
       "  return %3\n}\n",
       "an op of fusion class gemm cannot be a later member of a group"},
      {"graph f(%0 x: f32[3]) -> (f32[3]) {\n"
       "  %1 = relu(%0) : f32[3]  group(0)\n"
       "  return %1\n}\n",
       "group id must be a positive 32-bit number"},
  };
  for (int i = 0; i < NN_ARRAY_LEN(cases); i++) {
    nn_arena *a = nn_arena_new();
    char *msg = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&msg, &len);
    nn_diag d;
    nn_diag_init(&d, f);
    ir_graph *g = ir_parse(cases[i].text, strlen(cases[i].text), "t.nnir", a, &d);
    if (g) CHECK(ir_verify(g, &d) >= 1);
    fclose(f);
    if (!msg || !strstr(msg, cases[i].error)) {
      fprintf(stderr, "case %d: expected '%s' in:\n%s\n", i, cases[i].error, msg ? msg : "");
      CHECK(false);
    }
    free(msg);
    nn_arena_free(a);
  }
}

int main(void) {
  test_programs();
  test_block_ir();
  test_fold_values();
  test_verify();
  return unit_report("fuse");
}
