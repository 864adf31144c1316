/* test_symgemm.c — gemm-like ops (lower/gemm.c, conv*.c) and fused groups
 * (lower/fuse.c) lowered with symbolic dims.
 *
 * Each case is a small IR graph whose inputs have named dims
 * ("x:f32[b,3,h,w]") and whose weights have numbers. It is shaped,
 * optionally fused (passes/fuse.c) and scheduled once with the names, and
 * once per value set with the names replaced by numbers; both programs get
 * the same input data and are run by the reference interpreter, as
 * scheduled (KS_GEMM run directly) and with every GEMM expanded into loops
 * (k_expand_gemms). Symbolic and static outputs must be bit-identical: the
 * kernels read their sizes from the dims buffer instead of having them as
 * constants, and every element is summed in the same order. One case is
 * also checked against a product computed here, and lowerings that need a
 * number report the symbolic dim instead of crashing. The harness is
 * symtest.h.
 */
#include "symtest.h"

#include <math.h>

/* Compares the symbolic and static lowerings of a case for each value set
 * (varargs), unfused or fused, as scheduled and with the GEMMs expanded;
 * `kernels` is the symbolic program's kernel list (see sym_case). */
#define CASE(nm, text, sp, fu, ks, ...)                                 \
  do {                                                                  \
    const char *const vals_[] = {__VA_ARGS__};                          \
    sym_case c_ = {.name = nm,                                          \
                   .ir = text,                                          \
                   .specs = sp,                                         \
                   .fuse = fu,                                          \
                   .expand = true,                                      \
                   .kernels = ks,                                       \
                   .seed = 0x1234567};                                  \
    compare_lowerings(&c_, vals_, (int)(sizeof vals_ / sizeof *vals_)); \
  } while (0)

/* ---- cases ----------------------------------------------------------------- */

static void test_linear(void) {
  /* a symbolic batch of rows: M symbolic, the packed weight's N and K
   * numbers; the sizes cross MR (6) and the macro tile (48 rows) */
  const char *lin = "graph forward(%0 x: unknown) -> (unknown) {\n"
                    "  %1 = weight(\"w\") : f32[20, 33]\n"
                    "  %2 = weight(\"bias\") : f32[20]\n"
                    "  %3 = linear(%0, %1, %2) : unknown\n"
                    "  return %3\n}\n";
  float got[7 * 20] = {0}; /* written through c.first */
  const char *const v[] = {"b=7", "b=1", "b=6", "b=5", "b=48", "b=49"};
  sym_case c = {.name = "linear",
                .ir = lin,
                .specs = "x:f32[b,33]",
                .expand = true,
                .kernels = "linear",
                .seed = 0x1234567,
                .first = got,
                .nfirst = 7 * 20};
  compare_lowerings(&c, v, 6);
  /* the first value set against a product computed here (same data) */
  rng = 0x1234567;
  float x[7 * 33], w[20 * 33], bias[20];
  for (int i = 0; i < 7 * 33; i++) x[i] = rand_val();
  seed_from_name("w");
  for (int i = 0; i < 20 * 33; i++) w[i] = rand_val();
  seed_from_name("bias");
  for (int i = 0; i < 20; i++) bias[i] = rand_val();
  double worst = 0;
  for (int m = 0; m < 7; m++)
    for (int n = 0; n < 20; n++) {
      double s = bias[n];
      for (int k = 0; k < 33; k++) s += (double)x[m * 33 + k] * w[n * 33 + k];
      double e = fabs(got[m * 20 + n] - s);
      worst = e > worst ? e : worst;
    }
  CHECK(worst < 1e-4);

  /* 3-d input (M = b*s), one output column (the matrix-vector form) */
  CASE("linear_n1",
       "graph forward(%0 x: unknown) -> (unknown) {\n"
       "  %1 = weight(\"w\") : f32[1, 9]\n"
       "  %2 = constant(none) : none\n"
       "  %3 = linear(%0, %1, %2) : unknown\n"
       "  return %3\n}\n",
       "x:f32[b,s,9]", false, "linear", "b=1;s=1", "b=2;s=7", "b=3;s=17");
  /* a weight that is an input: N and K symbolic, the transpose packed by
   * a kernel */
  CASE("linear_input_w",
       "graph forward(%0 x: unknown, %1 w: unknown) -> (unknown) {\n"
       "  %2 = constant(none) : none\n"
       "  %3 = linear(%0, %1, %2) : unknown\n"
       "  return %3\n}\n",
       "x:f32[b,k];w:f32[n,k]", false, "pack_transpose,linear", "b=1;k=1;n=1", "b=5;k=7;n=17",
       "b=13;k=300;n=16", "b=7;k=2;n=65");
  /* fused: linear + relu as the GEMM's epilogue, then + a broadcast row */
  CASE("linear_relu_add",
       "graph forward(%0 x: unknown, %1 r: unknown) -> (unknown) {\n"
       "  %2 = weight(\"w\") : f32[24, 16]\n"
       "  %3 = weight(\"bias\") : f32[24]\n"
       "  %4 = linear(%0, %2, %3) : unknown\n"
       "  %5 = relu(%4) : unknown\n"
       "  %6 = constant(1) : int\n"
       "  %7 = add(%5, %1, %6) : unknown\n"
       "  return %7\n}\n",
       "x:f32[b,s,16];r:f32[s,24]", true, "linear_relu_add", "b=1;s=1", "b=2;s=7", "b=3;s=16");
}

static void test_matmul(void) {
  /* attention: q @ k^T [b,h,s,s] (N and K symbolic), then @ v */
  CASE("attention",
       "graph forward(%0 q: unknown, %1 k: unknown, %2 v: unknown) -> (unknown) {\n"
       "  %3 = matmul(%0, %1) : unknown\n"
       "  %4 = matmul(%3, %2) : unknown\n"
       "  return %4\n}\n",
       "q:f32[b,2,s,8];k:f32[b,2,8,s];v:f32[b,2,s,8]", false, "matmul,matmul", "b=1;s=1", "b=2;s=7",
       "b=1;s=17", "b=2;s=33");
  /* a batch folded into M against a weight; bmm; broadcast batch */
  CASE("matmul_weight",
       "graph forward(%0 x: unknown) -> (unknown) {\n"
       "  %1 = weight(\"w\") : f32[12, 18]\n"
       "  %2 = matmul(%0, %1) : unknown\n"
       "  return %2\n}\n",
       "x:f32[b,s,12]", false, "matmul", "b=1;s=1", "b=3;s=5", "b=2;s=49");
  CASE("bmm",
       "graph forward(%0 a: unknown, %1 b: unknown) -> (unknown) {\n"
       "  %2 = bmm(%0, %1) : unknown\n"
       "  return %2\n}\n",
       "a:f32[n,m,k];b:f32[n,k,p]", false, "bmm", "n=1;m=1;k=1;p=1", "n=2;m=7;k=5;p=17",
       "n=3;m=13;k=9;p=16");
  CASE("matmul_bcast",
       "graph forward(%0 a: unknown, %1 b: unknown) -> (unknown) {\n"
       "  %2 = matmul(%0, %1) : unknown\n"
       "  return %2\n}\n",
       "a:f32[b,1,s,4];b:f32[3,4,t]", false, "matmul", "b=1;s=1;t=1", "b=2;s=5;t=7",
       "b=2;s=7;t=17");
  CASE("matvec",
       "graph forward(%0 a: unknown, %1 v: unknown) -> (unknown) {\n"
       "  %2 = matmul(%0, %1) : unknown\n"
       "  return %2\n}\n",
       "a:f32[b,s,k];v:f32[k]", false, "matmul", "b=1;s=1;k=1", "b=2;s=7;k=19");
  /* addmm with a broadcast addend, baddbmm */
  CASE("addmm",
       "graph forward(%0 x: unknown, %1 c: unknown) -> (unknown) {\n"
       "  %2 = weight(\"w\") : f32[10, 17]\n"
       "  %3 = constant(0.5) : float\n"
       "  %4 = constant(2.0) : float\n"
       "  %5 = addmm(%1, %0, %2, %3, %4) : unknown\n"
       "  return %5\n}\n",
       "x:f32[b,10];c:f32[17]", false, "addmm", "b=1", "b=7", "b=50");
  CASE("baddbmm",
       "graph forward(%0 c: unknown, %1 a: unknown, %2 b: unknown) -> (unknown) {\n"
       "  %3 = constant(1) : int\n"
       "  %4 = baddbmm(%0, %1, %2, %3, %3) : unknown\n"
       "  return %4\n}\n",
       "c:f32[1,m,p];a:f32[n,m,k];b:f32[n,k,p]", false, "baddbmm", "n=1;m=1;k=1;p=1",
       "n=3;m=7;k=4;p=18");
  /* 16-bit: f32 accumulation, then the rounding kernel */
  CASE("matmul_f16",
       "graph forward(%0 a: unknown, %1 b: unknown) -> (unknown) {\n"
       "  %2 = matmul(%0, %1) : unknown\n"
       "  return %2\n}\n",
       "a:f16[b,s,8];b:f16[8,t]", false, "matmul,gemm_round", "b=1;s=1;t=1", "b=2;s=7;t=17");
}

#define CONV_IR(wshape, stride, pad, groups, extra, ret)                                     \
  "graph forward(%0 x: unknown) -> (unknown) {\n"                                            \
  "  %1 = weight(\"w\") : f32" wshape "\n"                                                   \
  "  %2 = weight(\"bias\") : f32[8]\n"                                                       \
  "  %3 = constant(" stride ") : list<int>\n"                                                \
  "  %4 = constant(" pad ") : list<int>\n"                                                   \
  "  %5 = constant([1, 1]) : list<int>\n"                                                    \
  "  %6 = constant(false) : bool\n"                                                          \
  "  %7 = constant([0, 0]) : list<int>\n"                                                    \
  "  %8 = constant(" groups ") : int\n"                                                      \
  "  %9 = convolution(%0, %1, %2, %3, %4, %5, %6, %7, %8) : unknown\n" extra "  return " ret \
  "\n}\n"

static void test_conv(void) {
  /* im2col + GEMM: symbolic batch, height and width (output size a floor
   * division) */
  CASE("conv_im2col", CONV_IR("[8, 3, 3, 3]", "[2, 2]", "[1, 1]", "1", "", "%9"), "x:f32[b,3,h,w]",
       false, "im2col,conv_gemm", "b=1;h=1;w=1", "b=2;h=9;w=7", "b=1;h=16;w=5");
  CASE("conv_grouped", CONV_IR("[8, 2, 3, 3]", "[1, 1]", "[1, 1]", "2", "", "%9"), "x:f32[b,4,h,w]",
       false, "im2col,conv_gemm", "b=1;h=1;w=1", "b=2;h=6;w=9");
  CASE("conv_1x1", CONV_IR("[8, 4, 1, 1]", "[1, 1]", "[0, 0]", "1", "", "%9"), "x:f32[b,4,h,w]",
       false, "conv_gemm", "b=1;h=1;w=1", "b=3;h=5;w=7");
  CASE("conv_depthwise", CONV_IR("[8, 1, 3, 3]", "[2, 2]", "[1, 1]", "8", "", "%9"),
       "x:f32[b,8,h,w]", false, "conv_depthwise", "b=1;h=1;w=1", "b=2;h=9;w=7", "b=1;h=4;w=12");
  /* fused: conv + relu (epilogue of the GEMM / of the depthwise rows) */
  CASE("conv_relu",
       CONV_IR("[8, 3, 3, 3]", "[1, 1]", "[1, 1]", "1", "  %10 = relu(%9) : unknown\n", "%10"),
       "x:f32[b,3,h,w]", true, "im2col,conv_gemm_relu", "b=1;h=1;w=1", "b=2;h=5;w=6");
  CASE("conv_depthwise_relu",
       CONV_IR("[8, 1, 3, 3]", "[1, 1]", "[1, 1]", "8", "  %10 = relu(%9) : unknown\n", "%10"),
       "x:f32[b,8,h,w]", true, "conv_depthwise_relu", "b=1;h=1;w=1", "b=2;h=5;w=6");
  /* 1-d */
  CASE("conv1d",
       "graph forward(%0 x: unknown) -> (unknown) {\n"
       "  %1 = weight(\"w\") : f32[5, 3, 4]\n"
       "  %2 = constant(none) : none\n"
       "  %3 = constant([2]) : list<int>\n"
       "  %4 = constant([1]) : list<int>\n"
       "  %5 = constant([1]) : list<int>\n"
       "  %6 = constant(false) : bool\n"
       "  %7 = constant([0]) : list<int>\n"
       "  %8 = constant(1) : int\n"
       "  %9 = convolution(%0, %1, %2, %3, %4, %5, %6, %7, %8) : unknown\n"
       "  return %9\n}\n",
       "x:f32[b,3,l]", false, "im2col,conv_gemm", "b=1;l=3", "b=2;l=20");
}

/* An elementwise group with broadcast operands of symbolic shape. */
static void test_fused_elementwise(void) {
  CASE("elementwise_group",
       "graph forward(%0 x: unknown, %1 y: unknown, %2 z: unknown) -> (unknown) {\n"
       "  %3 = constant(1) : int\n"
       "  %4 = add(%0, %1, %3) : unknown\n"
       "  %5 = mul(%4, %2) : unknown\n"
       "  %6 = relu(%5) : unknown\n"
       "  return %6\n}\n",
       "x:f32[b,h,w];y:f32[w];z:f32[b,1,w]", true, "add_mul_relu", "b=1;h=1;w=1", "b=2;h=3;w=5",
       "b=3;h=4;w=2");
  CASE("cat_group",
       "graph forward(%0 x: unknown, %1 y: unknown) -> (unknown) {\n"
       "  %2 = list_construct(%0, %1) : unknown\n"
       "  %3 = constant(1) : int\n"
       "  %4 = cat(%2, %3) : unknown\n"
       "  %5 = relu(%4) : unknown\n"
       "  return %5\n}\n",
       "x:f32[b,s,4];y:f32[b,t,4]", true, "cat_relu", "b=1;s=1;t=1", "b=2;s=3;t=5");
}

/* Lowerings that need a number report the symbolic dim. */
static void test_errors(void) {
  expect_symbolic_error("graph forward(%0 x: unknown, %1 w: unknown) -> (unknown) {\n"
                        "  %2 = constant(none) : none\n"
                        "  %3 = constant([1, 1]) : list<int>\n"
                        "  %4 = constant([0, 0]) : list<int>\n"
                        "  %5 = constant(false) : bool\n"
                        "  %6 = constant(1) : int\n"
                        "  %7 = convolution(%0, %1, %2, %3, %4, %3, %5, %4, %6) : unknown\n"
                        "  return %7\n}\n",
                        "x:f32[b,3,h,w];w:f32[o,3,3,3]",
                        "code generation for 'convolution' with symbolic dim o is not "
                        "supported yet");
}

int main(void) {
  test_linear();
  test_matmul();
  test_conv();
  test_fused_elementwise();
  test_errors();
  return unit_report("symgemm");
}
