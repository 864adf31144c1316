/* test_symkern_ops.c — the lowering families of lower/ with symbolic dims: each case is a
 * small IR graph whose inputs have named dims ("x:f32[b,3,h,w]"). It is
 * lowered once symbolically and run by the reference interpreter with
 * several values of the dims, and lowered again statically with those
 * values written as numbers; both runs get the same input data and must
 * give bit-identical outputs (the symbolic kernels read their sizes from
 * the dims buffer, the static ones have them as constants, the arithmetic
 * is the same). A few cases are also checked against values worked out
 * here (adaptive pooling to 1x1, mean, layer_norm), and ops that need a
 * number must report a symbolic dim, not crash. The harness is
 * symtest.h.
 */
#include "symtest.h"

#include <math.h>

/* Compares the symbolic and static lowerings of ir for `vals` with
 * inputs that continue from the current rng; `first` as in sym_case (it is
 * written through c.first, which the check does not see). */
// NOLINTBEGIN(readability-non-const-parameter)
static void check_case(const char *name, const char *ir, const char *specs, const char *const *vals,
                       int nvals, float *first, int nfirst) {
  sym_case c = {.name = name, .ir = ir, .specs = specs, .first = first, .nfirst = nfirst};
  compare_lowerings(&c, vals, nvals);
}
// NOLINTEND(readability-non-const-parameter)

#define CASE(name, ir, specs, ...)                                                    \
  do {                                                                                \
    const char *const vals_[] = {__VA_ARGS__};                                        \
    check_case(name, ir, specs, vals_, (int)(sizeof vals_ / sizeof *vals_), NULL, 0); \
  } while (0)

#define G1(body, ret) "graph forward(%0 x: unknown) -> (unknown) {\n" body "  return " ret "\n}\n"

static void test_elementwise(void) {
  /* flat loop; broadcast of a [w] row and a [b,1,w] tensor; a scalar */
  CASE("relu", G1("  %1 = relu(%0) : unknown\n", "%1"), "x:f32[b,s]", "b=1;s=1", "b=2;s=7",
       "b=3;s=16");
  CASE("broadcast",
       "graph forward(%0 x: unknown, %1 y: unknown, %2 z: unknown) -> (unknown, unknown) {\n"
       "  %3 = constant(1) : int\n"
       "  %4 = add(%0, %1, %3) : unknown\n"
       "  %5 = mul(%4, %2) : unknown\n"
       "  %6 = constant(2.5) : float\n"
       "  %7 = where(%0, %6, %5) : unknown\n"
       "  return %5, %7\n}\n",
       "x:f32[b,h,w];y:f32[w];z:f32[b,1,w]", "b=1;h=1;w=1", "b=2;h=3;w=5", "b=3;h=4;w=2");
}

static void test_norm_rows(void) {
  float ln[12];
  const char *ir_ln = "graph forward(%0 x: unknown, %1 w: unknown, %2 b: unknown) -> (unknown) {\n"
                      "  %3 = constant([4]) : list<int>\n"
                      "  %4 = constant(1e-05) : float\n"
                      "  %5 = constant(true) : bool\n"
                      "  %6 = layer_norm(%0, %3, %1, %2, %4, %5) : unknown\n"
                      "  return %6\n}\n";
  const char *const v1[] = {"b=1;s=3", "b=2;s=5"};
  rng = 99;
  check_case("layer_norm", ir_ln, "x:f32[b,s,4];w:f32[4];b:f32[4]", v1, 2, ln, 12);
  /* recompute the first value set's layer_norm with the same data */
  rng = 99;
  float x[12], w[4], bb[4];
  for (int j = 0; j < 12; j++) x[j] = rand_val();
  for (int j = 0; j < 4; j++) w[j] = rand_val();
  for (int j = 0; j < 4; j++) bb[j] = rand_val();
  for (int r = 0; r < 3; r++) {
    double m = 0, var = 0;
    for (int j = 0; j < 4; j++) m += x[r * 4 + j] / 4.0;
    for (int j = 0; j < 4; j++) var += (x[r * 4 + j] - m) * (x[r * 4 + j] - m) / 4.0;
    for (int j = 0; j < 4; j++) {
      double want = (x[r * 4 + j] - m) / sqrt(var + 1e-5) * w[j] + bb[j];
      CHECK(fabs(ln[r * 4 + j] - want) < 1e-4 * (1 + fabs(want)));
    }
  }
  CASE("softmax",
       "graph forward(%0 x: unknown) -> (unknown, unknown, unknown) {\n"
       "  %1 = constant(-1) : int\n"
       "  %2 = constant(none) : none\n"
       "  %3 = softmax(%0, %1, %2) : unknown\n"
       "  %4 = constant(1) : int\n"
       "  %5 = log_softmax(%0, %4, %2) : unknown\n"
       "  %6 = cumsum(%0, %4, %2) : unknown\n"
       "  return %3, %5, %6\n}\n",
       "x:f32[b,h,s]", "b=1;h=2;s=1", "b=2;h=3;s=8");
  CASE("batch_group_norm",
       "graph forward(%0 x: unknown, %1 w: unknown, %2 m: unknown, %3 v: unknown) -> (unknown, "
       "unknown) {\n"
       "  %4 = constant(false) : bool\n"
       "  %5 = constant(0.1) : float\n"
       "  %6 = constant(1e-05) : float\n"
       "  %7 = batch_norm(%0, %1, %2, %2, %3, %4, %5, %6, %4) : unknown\n"
       "  %8 = constant(2) : int\n"
       "  %9 = constant(none) : none\n"
       "  %10 = group_norm(%0, %8, %1, %9, %6, %4) : unknown\n"
       "  return %7, %10\n}\n",
       "x:f32[b,4,h,w];w:f32[4];m:f32[4];v:f32[4]", "b=1;h=1;w=1", "b=2;h=3;w=5");
}

/* Runs check_case on the x:f32[b,3,h,w] graph ir with inputs from rng =
 * seed; the first value set must have b=2 and h*w = plane (at most 20).
 * Output 0 for it must be the mean of each of the 6 planes, as worked out
 * here in the same order. */
static void check_plane_means(const char *name, const char *ir, const char *const *vals, int nvals,
                              uint64_t seed, int plane) {
  float got[6], x[6 * 20];
  NN_ASSERT(plane <= 20);
  rng = seed;
  check_case(name, ir, "x:f32[b,3,h,w]", vals, nvals, got, 6);
  rng = seed;
  for (int j = 0; j < 6 * plane; j++) x[j] = rand_val();
  for (int p = 0; p < 6; p++) {
    float s = 0;
    for (int j = 0; j < plane; j++) s += x[p * plane + j];
    CHECK(got[p] == s / (float)plane);
  }
}

static void test_reduce(void) {
  const char *ir =
      "graph forward(%0 x: unknown) -> (unknown, unknown, unknown, unknown, unknown) {\n"
      "  %1 = constant([2, 3]) : list<int>\n"
      "  %2 = constant(false) : bool\n"
      "  %3 = constant(none) : none\n"
      "  %4 = mean(%0, %1, %2, %3) : unknown\n"
      "  %5 = constant([0]) : list<int>\n"
      "  %6 = constant(true) : bool\n"
      "  %7 = sum(%0, %5, %6, %3) : unknown\n"
      "  %8 = constant(-1) : int\n"
      "  %9, %10 = max_dim(%0, %8, %2) : unknown, unknown\n"
      "  %11 = argmax(%0, %3, %2) : unknown\n"
      "  return %4, %7, %9, %10, %11\n}\n";
  const char *const v[] = {"b=2;h=2;w=3", "b=1;h=1;w=1", "b=3;h=5;w=4"};
  check_plane_means("reduce", ir, v, 3, 7, 6);
}

static void test_pool(void) {
  const char *ir =
      "graph forward(%0 x: unknown) -> (unknown, unknown, unknown, unknown) {\n"
      "  %1 = constant([1, 1]) : list<int>\n"
      "  %2 = adaptive_avg_pool2d(%0, %1) : unknown\n"
      "  %3 = constant([3, 3]) : list<int>\n"
      "  %4 = constant([2, 2]) : list<int>\n"
      "  %5 = constant([1, 1]) : list<int>\n"
      "  %6 = constant(false) : bool\n"
      "  %7 = max_pool2d(%0, %3, %4, %5, %5, %6) : unknown\n"
      "  %8 = constant(true) : bool\n"
      "  %9 = constant(none) : none\n"
      "  %10 = avg_pool2d(%0, %3, %4, %5, %6, %8, %9) : unknown\n"
      "  %11 = constant([2, 3]) : list<int>\n"
      "  %12, %13 = adaptive_max_pool2d(%0, %11) : unknown, unknown\n"
      "  return %2, %7, %10, %12\n}\n";
  const char *const v[] = {"b=2;h=5;w=4", "b=1;h=1;w=1", "b=1;h=8;w=9", "b=2;h=2;w=7"};
  check_plane_means("pool", ir, v, 4, 5, 20);
}

static void test_injective(void) {
  CASE("permute_transpose",
       G1("  %1 = constant([0, 2, 1]) : list<int>\n"
          "  %2 = permute(%0, %1) : unknown\n"
          "  %3 = constant(0) : int\n"
          "  %4 = constant(2) : int\n"
          "  %5 = transpose(%2, %3, %4) : unknown\n",
          "%5"),
       "x:f32[b,s,4]", "b=1;s=1", "b=2;s=5");
  CASE("slice_select",
       "graph forward(%0 x: unknown) -> (unknown, unknown, unknown, unknown) {\n"
       "  %1 = constant(1) : int\n"
       "  %2 = constant(0) : int\n"
       "  %3 = constant(9223372036854775807) : int\n"
       "  %4 = constant(2) : int\n"
       "  %5 = slice(%0, %1, %1, %3, %4) : unknown\n"
       "  %6 = constant(-1) : int\n"
       "  %7 = select(%0, %1, %6) : unknown\n"
       "  %8 = select(%0, %1, %2) : unknown\n"
       "  %9 = constant(-3) : int\n"
       "  %10 = slice(%0, %1, %9, %3, %1) : unknown\n"
       "  return %5, %7, %8, %10\n}\n",
       "x:f32[b,s,3]", "b=1;s=3", "b=2;s=7", "b=1;s=4");
  CASE("expand_repeat_flip",
       "graph forward(%0 x: unknown) -> (unknown, unknown, unknown) {\n"
       "  %1 = constant(1) : int\n"
       "  %5 = constant([3, -1, -1]) : list<int>\n"
       "  %6 = constant(false) : bool\n"
       "  %7 = expand(%0, %5, %6) : unknown\n"
       "  %8 = constant([2, 1, 2]) : list<int>\n"
       "  %9 = repeat(%0, %8) : unknown\n"
       "  %10 = constant([0, 2]) : list<int>\n"
       "  %11 = flip(%9, %10) : unknown\n"
       "  %12 = constant([1]) : list<int>\n"
       "  %13 = constant([2]) : list<int>\n"
       "  %14 = roll(%11, %12, %13) : unknown\n"
       "  return %7, %11, %14\n}\n",
       "x:f32[1,s,s]", "s=1", "s=4");
  CASE("cat_stack_chunk",
       "graph forward(%0 x: unknown, %1 y: unknown) -> (unknown, unknown, unknown, unknown) {\n"
       "  %2 = constant(1) : int\n"
       "  %3 = list_construct(%0, %1, %0) : unknown\n"
       "  %4 = cat(%3, %2) : unknown\n"
       "  %5 = list_construct(%0, %0) : unknown\n"
       "  %6 = stack(%5, %2) : unknown\n"
       "  %7 = constant(2) : int\n"
       "  %8 = chunk(%4, %7, %7) : unknown\n"
       "  %9, %10 = list_unpack(%8) : unknown, unknown\n"
       "  return %4, %6, %9, %10\n}\n",
       "x:f32[b,s,4];y:f32[b,t,4]", "b=1;s=1;t=1", "b=2;s=3;t=5");
  CASE("embedding_tril_pad",
       "graph forward(%0 w: unknown, %1 i: unknown, %2 x: unknown) -> (unknown, unknown, unknown) "
       "{\n"
       "  %3 = constant(-1) : int\n"
       "  %4 = constant(false) : bool\n"
       "  %5 = embedding(%0, %1, %3, %4, %4) : unknown\n"
       "  %6 = constant(0) : int\n"
       "  %7 = tril(%2, %6) : unknown\n"
       "  %8 = constant([1, 2, 0, 1]) : list<int>\n"
       "  %9 = constant(0.5) : float\n"
       "  %10 = constant_pad_nd(%2, %8, %9) : unknown\n"
       "  return %5, %7, %10\n}\n",
       "w:f32[4,3];i:i64[b,s];x:f32[b,s,s]", "b=1;s=1", "b=2;s=5");
  CASE("upsample_index_select",
       "graph forward(%0 x: unknown, %1 i: unknown, %2 j: unknown) -> (unknown, unknown, unknown) "
       "{\n"
       "  %3 = constant(none) : none\n"
       "  %4 = constant(2.) : float\n"
       "  %5 = upsample_nearest2d(%0, %3, %4, %4) : unknown\n"
       "  %6 = constant(1) : int\n"
       "  %7 = index_select(%0, %6, %1) : unknown\n"
       "  %8 = constant(false) : bool\n"
       "  %9 = gather(%0, %6, %2, %8) : unknown\n"
       "  return %5, %7, %9\n}\n",
       "x:f32[b,4,h,w];i:i64[3];j:i64[b,2,h,w]", "b=1;h=1;w=1", "b=2;h=3;w=5");
}

/* An op that needs a number reports the symbolic dim (no crash). */
static void test_symbolic_errors(void) {
  expect_symbolic_error("graph forward(%0 x: unknown) -> (unknown) {\n"
                        "  %1 = constant(1) : int\n"
                        "  %2 = constant(none) : none\n"
                        "  %3 = constant(1e-05) : float\n"
                        "  %4 = constant(false) : bool\n"
                        "  %5 = group_norm(%0, %1, %2, %2, %3, %4) : unknown\n"
                        "  return %5\n}\n",
                        "x:f32[2,c,3]",
                        "code generation for 'group_norm' with symbolic dim c is not "
                        "supported yet");
}

int main(void) {
  rng = 88172645463325252ull; /* this test's own input data */
  test_elementwise();
  test_norm_rows();
  test_reduce();
  test_pool();
  test_injective();
  test_symbolic_errors();
  return unit_report("symkern_ops");
}
