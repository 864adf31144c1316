/* test_kernel.c — the kernel layer: builders and k_print (kernel/build.c and kernel/print.c),
 * the reference interpreter's semantics (kernel/interp.c), and lowering of
 * IR ops to kernels (lower/) run end to end: IR text → pass_shapes →
 * kl_schedule → kp_interp, compared with values worked out here.
 */
#include "backends/backend.h"
#include "lower/lower.h"
#include "passes/passes.h"
#include "unit.h"

#include <math.h>

/* ---- (a) builders and printing ------------------------------------------ */

static char *print_kernel(const kernel *k) {
  nn_buf b = {0};
  k_print(&b, k);
  return b.data;
}

static void test_print(void) {
  nn_arena *a = nn_arena_new();
  kernel *k = k_new(a, "k3_relu");
  int32_t out = k_buf(k, NN_DT_F32, 200704, true, "out");
  int32_t x = k_buf(k, NN_DT_F32, 200704, false, "x");
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, 200704), KS_PARALLEL | KS_VECTOR);
  k_store(k, out, k_varref(k, i),
          k_bin(k, KX_MAX, k_load(k, x, k_varref(k, i)), k_const_f(k, NN_DT_F32, 0)));
  k_for_end(k);
  char *s = print_kernel(k);
  CHECK_STR(s, "kernel k3_relu(out: f32[200704] w, x: f32[200704])\n"
               "  for v0 in [0, 200704) parallel vector:\n"
               "    out[v0] = max(x[v0], 0.)\n");
  free(s);

  /* a reduction with LET, IF/else, casts, infix nesting, constants */
  k = k_new(a, "k0_demo");
  out = k_buf(k, NN_DT_I32, 4, false, "o");
  x = k_buf(k, NN_DT_F64, 8, false, "x");
  int32_t r = k_for_begin(k, k_i64(k, 0), k_i64(k, 4), KS_PARALLEL);
  int32_t acc = k_var(k, NN_DT_F64);
  k_let(k, acc, k_const_f(k, NN_DT_F64, 0.5));
  int32_t j = k_for_begin(k, k_i64(k, 0), k_i64(k, 2), KS_REDUCE);
  kx_id idx = k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_varref(k, r), k_i64(k, 2)), k_varref(k, j));
  k_let(k, acc, k_bin(k, KX_ADD, k_varref(k, acc), k_load(k, x, idx)));
  k_for_end(k);
  k_if_begin(k, k_bin(k, KX_GT, k_varref(k, acc), k_const_f(k, NN_DT_F64, 1)));
  k_store(k, out, k_varref(k, r), k_cast(k, NN_DT_I32, k_varref(k, acc)));
  k_else(k);
  k_store(k, out, k_varref(k, r),
          k_un(k, KX_NEG,
               k_bin(k, KX_SUB, k_const_i(k, NN_DT_I32, 7), k_const_i(k, NN_DT_I32, 1))));
  k_if_end(k);
  k_for_end(k);
  s = print_kernel(k);
  CHECK_STR(s, "kernel k0_demo(o: i32[4] w, x: f64[8])\n"
               "  for v0 in [0, 4) parallel:\n"
               "    let v1: f64 = 0.5:f64\n"
               "    for v2 in [0, 2) reduce:\n"
               "      v1 = v1 + x[(v0 * 2) + v2]\n"
               "    if v1 > 1.:f64:\n"
               "      o[v0] = i32(v1)\n"
               "    else:\n"
               "      o[v0] = -(7:i32 - 1:i32)\n");
  free(s);

  /* folding of I64 constant arithmetic */
  k = k_new(a, "fold");
  int32_t v = k_var(k, NN_DT_I64);
  kx_id vx = k_varref(k, v);
  CHECK(k_bin(k, KX_ADD, vx, k_i64(k, 0)) == vx);
  CHECK(k_bin(k, KX_ADD, k_i64(k, 0), vx) == vx);
  CHECK(k_bin(k, KX_MUL, vx, k_i64(k, 1)) == vx);
  CHECK(k_bin(k, KX_MUL, k_i64(k, 1), vx) == vx);
  kx_id z = k_bin(k, KX_MUL, vx, k_i64(k, 0));
  CHECK_INT(k->exprs.data[z].op, KX_CONST);
  CHECK_INT(k->exprs.data[z].i, 0);
  kx_id f1 = k_bin(k, KX_FLOORDIV, k_i64(k, -7), k_i64(k, 2));
  kx_id f2 = k_bin(k, KX_MOD, k_i64(k, -7), k_i64(k, 2));
  kx_id f3 = k_bin(k, KX_MOD, k_i64(k, 7), k_i64(k, -2));
  kx_id f4 = k_bin(k, KX_MAX, k_i64(k, 3), k_i64(k, 9));
  kx_id f5 = k_bin(k, KX_MIN, k_i64(k, 3), k_i64(k, 9));
  kx_id f6 = k_bin(k, KX_SUB, k_i64(k, 3), k_i64(k, 9));
  CHECK_INT(k->exprs.data[f1].i, -4);
  CHECK_INT(k->exprs.data[f2].i, 1);
  CHECK_INT(k->exprs.data[f3].i, -1);
  CHECK_INT(k->exprs.data[f4].i, 9);
  CHECK_INT(k->exprs.data[f5].i, 3);
  CHECK_INT(k->exprs.data[f6].i, -6);
  CHECK_INT(k->exprs.data[f6].op, KX_CONST);
  CHECK(k_cast(k, NN_DT_I64, vx) == vx);
  kx_id fc = k_cast(k, NN_DT_I64, k_const_f(k, NN_DT_F32, -2.75));
  CHECK_INT(k->exprs.data[fc].i, -2);
  nn_arena_free(a);
}

/* ---- (b) interpreter semantics ------------------------------------------- */

/* Evaluates e (built by fn in kernel k) into a 1-element f64 or i64 buffer
 * through a cast, returning it as double. */
typedef kx_id (*build_fn)(kernel *k);

static double eval_f(build_fn fn) {
  nn_arena *a = nn_arena_new();
  kernel *k = k_new(a, "t");
  int32_t o = k_buf(k, NN_DT_F64, 1, true, "o");
  k_store(k, o, k_i64(k, 0), k_cast(k, NN_DT_F64, fn(k)));
  double r = -12345;
  void *bufs[1] = {&r};
  CHECK_INT(k_interp(k, bufs), 0);
  nn_arena_free(a);
  return r;
}

static int64_t eval_i(build_fn fn) {
  nn_arena *a = nn_arena_new();
  kernel *k = k_new(a, "t");
  int32_t o = k_buf(k, NN_DT_I64, 1, true, "o");
  k_store(k, o, k_i64(k, 0), k_cast(k, NN_DT_I64, fn(k)));
  int64_t r = -12345;
  void *bufs[1] = {&r};
  CHECK_INT(k_interp(k, bufs), 0);
  nn_arena_free(a);
  return r;
}

/* Constants are folded by k_bin only for I64; an I32 operand goes through
 * the interpreter. */
#define I32(v) k_const_i(k, NN_DT_I32, (v))
#define F32(v) k_const_f(k, NN_DT_F32, (v))
#define F64(v) k_const_f(k, NN_DT_F64, (v))
static kx_id b_floordiv(kernel *k) { return k_bin(k, KX_FLOORDIV, I32(-7), I32(2)); }
static kx_id b_mod(kernel *k) { return k_bin(k, KX_MOD, I32(-7), I32(2)); }
static kx_id b_mod2(kernel *k) { return k_bin(k, KX_MOD, I32(7), I32(-2)); }
static kx_id b_div(kernel *k) { return k_bin(k, KX_DIV, I32(-7), I32(2)); }
static kx_id b_div0(kernel *k) { return k_bin(k, KX_DIV, I32(5), I32(0)); }
static kx_id b_ffloordiv(kernel *k) { return k_bin(k, KX_FLOORDIV, F32(-7), F32(2)); }
static kx_id b_fmod(kernel *k) { return k_bin(k, KX_MOD, F32(-7.5), F32(2)); }
static kx_id b_fmod2(kernel *k) { return k_bin(k, KX_MOD, F32(7.5), F32(-2)); }
static kx_id b_round1(kernel *k) { return k_un(k, KX_ROUND, F32(2.5)); }
static kx_id b_round2(kernel *k) { return k_un(k, KX_ROUND, F32(3.5)); }
static kx_id b_round3(kernel *k) { return k_un(k, KX_ROUND, F32(-2.5)); }
static kx_id b_round4(kernel *k) { return k_un(k, KX_ROUND, F64(0.5000001)); }
static kx_id b_cast1(kernel *k) {
  return k_cast(k, NN_DT_I32, k_bin(k, KX_ADD, F32(2.5), F32(0.4)));
}
static kx_id b_cast2(kernel *k) {
  return k_cast(k, NN_DT_I32, k_bin(k, KX_SUB, F32(-2.5), F32(0.4)));
}
static kx_id b_cast3(kernel *k) {
  return k_cast(k, NN_DT_BOOL, k_bin(k, KX_MUL, F32(0.5), F32(0.5)));
}
static kx_id b_cast4(kernel *k) { return k_cast(k, NN_DT_U8, k_bin(k, KX_ADD, I32(250), I32(50))); }
static kx_id b_cast5(kernel *k) { return k_cast(k, NN_DT_I32, k_bin(k, KX_DIV, F32(0), F32(0))); }
static kx_id b_wrap(kernel *k) { return k_bin(k, KX_MUL, I32(65536), I32(65536)); }
static kx_id b_f32(kernel *k) { return k_bin(k, KX_DIV, F32(1), F32(3)); }
static kx_id b_f16(kernel *k) { return k_cast(k, NN_DT_F16, k_bin(k, KX_DIV, F32(1), F32(3))); }
static kx_id b_bf16(kernel *k) { return k_cast(k, NN_DT_BF16, k_bin(k, KX_DIV, F32(1), F32(3))); }
static kx_id b_nanmax(kernel *k) {
  return k_bin(k, KX_MAX, F32(1), k_bin(k, KX_DIV, F32(0), F32(0)));
}
static kx_id b_lt(kernel *k) { return k_bin(k, KX_LT, I32(-3), I32(2)); }
static kx_id b_ge(kernel *k) { return k_bin(k, KX_GE, F32(1), F32(2)); }
static kx_id b_and(kernel *k) {
  return k_bin(k, KX_AND, k_bin(k, KX_LT, I32(1), I32(2)), k_bin(k, KX_LT, I32(3), I32(2)));
}
static kx_id b_or(kernel *k) {
  return k_bin(k, KX_OR, k_bin(k, KX_LT, I32(1), I32(2)), k_bin(k, KX_LT, I32(3), I32(2)));
}
static kx_id b_not(kernel *k) { return k_un(k, KX_NOT, F32(0)); }
static kx_id b_sel(kernel *k) {
  return k_select(k, k_bin(k, KX_EQ, I32(1), I32(1)), F32(4), F32(5));
}
static kx_id b_ipow(kernel *k) { return k_bin(k, KX_POW, I32(3), I32(4)); }
static kx_id b_fpow(kernel *k) { return k_bin(k, KX_POW, F32(2), F32(0.5)); }
static kx_id b_abs(kernel *k) { return k_un(k, KX_ABS, I32(-5)); }
static kx_id b_neg(kernel *k) { return k_un(k, KX_NEG, F64(2.5)); }
static kx_id b_exp(kernel *k) { return k_un(k, KX_EXP, F32(1)); }
static kx_id b_rsqrt(kernel *k) { return k_un(k, KX_RSQRT, F64(4)); }
static kx_id b_floor(kernel *k) { return k_un(k, KX_FLOOR, F32(-1.5)); }
static kx_id b_ceil(kernel *k) { return k_un(k, KX_CEIL, F32(-1.5)); }

static void test_interp_ops(void) {
  CHECK_INT(eval_i(b_floordiv), -4);
  CHECK_INT(eval_i(b_mod), 1);
  CHECK_INT(eval_i(b_mod2), -1);
  CHECK_INT(eval_i(b_div), -3);
  CHECK_INT(eval_i(b_div0), 0);
  CHECK(eval_f(b_ffloordiv) == -4.0);
  CHECK(eval_f(b_fmod) == 0.5);
  CHECK(eval_f(b_fmod2) == -0.5);
  CHECK(eval_f(b_round1) == 2.0);
  CHECK(eval_f(b_round2) == 4.0);
  CHECK(eval_f(b_round3) == -2.0);
  CHECK(eval_f(b_round4) == 1.0);
  CHECK_INT(eval_i(b_cast1), 2);
  CHECK_INT(eval_i(b_cast2), -2);
  CHECK_INT(eval_i(b_cast3), 1);
  CHECK_INT(eval_i(b_cast4), 44);
  CHECK_INT(eval_i(b_cast5), 0);
  CHECK_INT(eval_i(b_wrap), 0);
  CHECK(eval_f(b_f32) == (double)(1.0f / 3.0f));
  CHECK(eval_f(b_f16) == 0.333251953125); /* nearest f16 of 1/3 */
  CHECK(eval_f(b_bf16) == 0.333984375);   /* nearest bf16 of 1/3 */
  CHECK(isnan(eval_f(b_nanmax)));
  CHECK_INT(eval_i(b_lt), 1);
  CHECK_INT(eval_i(b_ge), 0);
  CHECK_INT(eval_i(b_and), 0);
  CHECK_INT(eval_i(b_or), 1);
  CHECK_INT(eval_i(b_not), 1);
  CHECK(eval_f(b_sel) == 4.0);
  CHECK_INT(eval_i(b_ipow), 81);
  CHECK(eval_f(b_fpow) == (double)sqrtf(2.0f));
  CHECK_INT(eval_i(b_abs), 5);
  CHECK(eval_f(b_neg) == -2.5);
  CHECK(eval_f(b_exp) == (double)expf(1.0f));
  CHECK(eval_f(b_rsqrt) == 0.5);
  CHECK(eval_f(b_floor) == -2.0);
  CHECK(eval_f(b_ceil) == -1.0);
}

/* Loops, LET reductions, bounds checks, GEMM. */
static void test_interp_kernels(void) {
  nn_arena *a = nn_arena_new();
  /* row sums of a 3x4 matrix */
  kernel *k = k_new(a, "rowsum");
  int32_t o = k_buf(k, NN_DT_F32, 3, true, "o");
  int32_t x = k_buf(k, NN_DT_F32, 12, false, "x");
  int32_t r = k_for_begin(k, k_i64(k, 0), k_i64(k, 3), KS_PARALLEL);
  int32_t acc = k_var(k, NN_DT_F32);
  k_let(k, acc, k_const_f(k, NN_DT_F32, 0));
  int32_t c = k_for_begin(k, k_i64(k, 0), k_i64(k, 4), KS_REDUCE);
  k_let(k, acc,
        k_bin(k, KX_ADD, k_varref(k, acc),
              k_load(k, x,
                     k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_varref(k, r), k_i64(k, 4)),
                           k_varref(k, c)))));
  k_for_end(k);
  k_store(k, o, k_varref(k, r), k_varref(k, acc));
  k_for_end(k);
  float xs[12], os[3] = {0};
  for (int i = 0; i < 12; i++) xs[i] = (float)i;
  void *bufs[2] = {os, xs};
  CHECK_INT(k_interp(k, bufs), 0);
  CHECK(os[0] == 6 && os[1] == 22 && os[2] == 38);

  /* an out-of-bounds store stops the kernel before writing */
  k = k_new(a, "oob");
  o = k_buf(k, NN_DT_I64, 3, true, "o");
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, 5), 0);
  k_store(k, o, k_varref(k, i), k_varref(k, i));
  k_for_end(k);
  int64_t guard[4] = {-1, -1, -1, 99};
  void *b2[1] = {guard};
  fprintf(stderr, "(expected error follows)\n");
  CHECK_INT(k_interp(k, b2), -1);
  CHECK(guard[0] == 0 && guard[1] == 1 && guard[2] == 2 && guard[3] == 99);

  /* GEMM: C = 2 * A(2x3) @ B(3x2, given transposed) + 1 * bias[n] */
  k = k_new(a, "gemm");
  int32_t A = k_buf(k, NN_DT_F32, 6, false, "a");
  int32_t B = k_buf(k, NN_DT_F32, 6, false, "b");
  int32_t C = k_buf(k, NN_DT_F32, 4, true, "c");
  int32_t bias = k_buf(k, NN_DT_F32, 2, false, "bias");
  ks_gemm g = {.a = A,
               .b = B,
               .c = C,
               .a_off = k_i64(k, 0),
               .b_off = k_i64(k, 0),
               .c_off = k_i64(k, 0),
               .m = k_i64(k, 2),
               .n = k_i64(k, 2),
               .k = k_i64(k, 3),
               .a_rs = k_i64(k, 3),
               .a_cs = k_i64(k, 1),
               .b_rs = k_i64(k, 1),
               .b_cs = k_i64(k, 3),
               .ldc = k_i64(k, 2),
               .alpha = 2,
               .bias = bias,
               .bias_off = k_i64(k, 0),
               .bias_rs = k_i64(k, 0),
               .bias_cs = k_i64(k, 1),
               .beta = 1};
  k_gemm(k, &g);
  float av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {1, 0, 1, 0, 1, 1}, cv[4] = {0}, biasv[2] = {10, 20};
  void *b3[4] = {av, bv, cv, biasv};
  CHECK_INT(k_interp(k, b3), 0);
  /* B as 3x2: [[1,0],[0,1],[1,1]]; A@B = [[4,5],[10,11]] */
  CHECK(cv[0] == 18 && cv[1] == 30 && cv[2] == 30 && cv[3] == 42);
  char *s = print_kernel(k);
  CHECK_STR(s, "kernel gemm(a: f32[6], b: f32[6], c: f32[4] w, bias: f32[2])\n"
               "  gemm M=2 N=2 K=3: c[0; 2] = 2 * a[0; 3, 1] @ b[0; 1, 3] + "
               "1 * bias[0; 0, 1]\n");
  free(s);

  /* the same GEMM with symbolic sizes: M = dims[0], K = dims[1], the
   * strides expressions of them, buffers of unknown size */
  k = k_new(a, "gemm_sym");
  A = k_buf(k, NN_DT_F32, -1, false, "a");
  B = k_buf(k, NN_DT_F32, 6, false, "b");
  C = k_buf(k, NN_DT_F32, -1, true, "c");
  int32_t D = k_buf(k, NN_DT_I64, 2, false, "dims");
  kx_id M = k_load(k, D, k_i64(k, 0)), K = k_load(k, D, k_i64(k, 1));
  ks_gemm gs = {.a = A,
                .b = B,
                .c = C,
                .a_off = k_i64(k, 0),
                .b_off = k_i64(k, 0),
                .c_off = k_i64(k, 0),
                .m = M,
                .n = k_i64(k, 2),
                .k = K,
                .a_rs = K,
                .a_cs = k_i64(k, 1),
                .b_rs = k_i64(k, 1),
                .b_cs = K,
                .ldc = k_i64(k, 2),
                .alpha = 1,
                .bias = -1,
                .beta = 1};
  k_gemm(k, &gs);
  s = print_kernel(k);
  CHECK_STR(s, "kernel gemm_sym(a: f32[-1], b: f32[6], c: f32[-1] w, dims: i64[2])\n"
               "  gemm M=dims[0] N=2 K=dims[1]: c[0; 2] = 1 * a[0; dims[1], 1] @ "
               "b[0; 1, dims[1]]\n");
  free(s);
  int64_t dv[2] = {2, 3};
  float cs[4] = {0};
  void *b4[4] = {av, bv, cs, dv};
  int64_t sizes[4] = {6, 6, 4, 2};
  CHECK_INT(k_interp_sized(k, b4, sizes), 0);
  /* A@B = [[4,5],[10,11]] */
  CHECK(cs[0] == 4 && cs[1] == 5 && cs[2] == 10 && cs[3] == 11);
  /* c holds 3 elements only: the 4th store is caught (c[0..2] written) */
  float c3[4] = {0, 0, 0, 99};
  void *b5[4] = {av, bv, c3, dv};
  int64_t small[4] = {6, 6, 3, 2};
  fprintf(stderr, "(expected error follows)\n");
  CHECK_INT(k_interp_sized(k, b5, small), -1);
  CHECK(c3[0] == 4 && c3[1] == 5 && c3[2] == 10 && c3[3] == 99);
  /* M = 1 at run time: one row */
  dv[0] = 1;
  float c1[2] = {0};
  void *b6[4] = {av, bv, c1, dv};
  int64_t one[4] = {3, 6, 2, 2};
  CHECK_INT(k_interp_sized(k, b6, one), 0);
  CHECK(c1[0] == 4 && c1[1] == 5);
  nn_arena_free(a);
}

/* ---- (c) lowering through the schedule ------------------------------------ */

/* "x:f32[2,3];y:i64[4]" → specs */
static int make_specs(const char *text, nn_arena *a, pass_input_spec *out) {
  int n = 0;
  const char *p = text;
  while (p && *p) {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char *item = nn_strndup(a, p, len);
    char *colon = strchr(item, ':');
    *colon = 0;
    pass_input_spec *sp = &out[n++];
    memset(sp, 0, sizeof *sp);
    sp->name = item;
    char *ty = colon + 1, *br = strchr(ty, '[');
    if (!br) {
      sp->rank = -1;
      sp->kind = strcmp(ty, "int") == 0 ? IR_T_INT : IR_T_FLOAT;
    } else {
      *br = 0;
      sp->kind = IR_T_TENSOR;
      sp->dtype = nn_dtype_parse(ty);
      sp->dims = nn_alloc(a, sizeof *sp->dims * 8);
      char *q = br + 1;
      while (*q && *q != ']') {
        sp->dims[sp->rank++].value = strtoll(q, &q, 10);
        if (*q == ',') q++;
      }
    }
    p = end ? end + 1 : NULL;
  }
  return n;
}

/* Parses, shapes, schedules and interprets; returns 0 on success. With
 * `print`, the program's kernels are returned there (caller frees). */
static int run_ir(const char *ir, const char *specs, void *const *in, void *const *out,
                  char **print) {
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  int rc = -1;
  ir_graph *g = ir_parse(ir, strlen(ir), "t.nnir", a, &d);
  pass_input_spec sp[8];
  int n = make_specs(specs, a, sp);
  if (g && pass_shapes(g, sp, n, &d) == 0) {
    kp_program *p = kl_schedule(g, a, tg_host(), &d);
    if (p) {
      if (print) {
        nn_buf b = {0};
        for (int i = 0; i < p->steps.len; i++) k_print(&b, p->steps.data[i].k);
        *print = b.data;
      }
      rc = kp_interp(p, in, out);
    }
  }
  nn_arena_free(a);
  return rc;
}

static bool near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static void check_f32(const float *got, const double *want, int n, double tol, const char *what) {
  for (int i = 0; i < n; i++)
    if (!near(got[i], want[i], tol)) {
      CHECK(near(got[i], want[i], tol));
      fprintf(stderr, "  %s[%d] = %.9g, expected %.9g\n", what, i, got[i], want[i]);
      return;
    }
  CHECK(1);
}

static void test_lower_relu_print(void) {
  float x[6] = {-1, 2, -3, 4, 0, 5}, y[6] = {0};
  void *in[1] = {x}, *out[1] = {y};
  char *pr = NULL;
  CHECK_INT(run_ir("graph forward(%0 x: unknown) -> (unknown) {\n"
                   "  %1 = relu(%0) : unknown\n"
                   "  return %1\n}\n",
                   "x:f32[2,3]", in, out, &pr),
            0);
  CHECK_STR(pr, "kernel k0_relu(out: f32[6] w, x: f32[6])\n"
                "  for v0 in [0, 6) parallel vector:\n"
                "    out[v0] = max(x[v0], 0.)\n");
  free(pr);
  double want[6] = {0, 2, 0, 4, 0, 5};
  check_f32(y, want, 6, 0, "relu");
}

static void test_lower_broadcast(void) {
  /* x[2,3] + 2 * y[3], then x[2,3] - y[2,1]; gt(x, y[3]); where */
  float x[6] = {1, 2, 3, 4, 5, 6}, y[3] = {10, 20, 30}, z[2] = {1, 2};
  float o1[6] = {0}, o2[6] = {0}, o4[6] = {0};
  unsigned char o3[6] = {0};
  void *in[3] = {x, y, z}, *out[4] = {o1, o2, o3, o4};
  CHECK_INT(run_ir("graph forward(%0 x: unknown, %1 y: unknown, %2 z: unknown) "
                   "-> (unknown, unknown, unknown, unknown) {\n"
                   "  %3 = constant(2) : int\n"
                   "  %4 = add(%0, %1, %3) : unknown\n"
                   "  %5 = constant(1) : int\n"
                   "  %6 = sub(%0, %2, %5) : unknown\n"
                   "  %7 = gt(%6, %0) : unknown\n"
                   "  %8 = constant(-1.5) : float\n"
                   "  %9 = where(%7, %0, %8) : unknown\n"
                   "  return %4, %6, %7, %9\n}\n",
                   "x:f32[2,3];y:f32[3];z:f32[2,1]", in, out, NULL),
            0);
  double w1[6] = {21, 42, 63, 24, 45, 66}, w2[6] = {0, 1, 2, 2, 3, 4};
  double w4[6] = {-1.5, -1.5, -1.5, -1.5, -1.5, -1.5};
  check_f32(o1, w1, 6, 0, "add");
  check_f32(o2, w2, 6, 0, "sub");
  for (int i = 0; i < 6; i++) CHECK_INT(o3[i], 0);
  check_f32(o4, w4, 6, 0, "where");
}

static void test_lower_int_math(void) {
  int64_t x[4] = {-7, 7, -8, 5};
  int64_t o1[4] = {0}, o2[4] = {0};
  float o3[4] = {0};
  void *in[1] = {x}, *out[3] = {o1, o2, o3};
  CHECK_INT(run_ir("graph forward(%0 x: unknown) -> (unknown, unknown, unknown) {\n"
                   "  %1 = constant(2) : int\n"
                   "  %2 = floor_divide(%0, %1) : unknown\n"
                   "  %3 = constant(-3) : int\n"
                   "  %4 = remainder(%0, %3) : unknown\n"
                   "  %5 = constant(none) : none\n"
                   "  %6 = div(%0, %1, %5) : unknown\n"
                   "  return %2, %4, %6\n}\n",
                   "x:i64[4]", in, out, NULL),
            0);
  int64_t w1[4] = {-4, 3, -4, 2}, w2[4] = {-1, -2, -2, -1};
  for (int i = 0; i < 4; i++) {
    CHECK_INT(o1[i], w1[i]);
    CHECK_INT(o2[i], w2[i]);
  }
  double w3[4] = {-3.5, 3.5, -4, 2.5};
  check_f32(o3, w3, 4, 0, "div");
}

static void test_lower_softmax_layernorm(void) {
  float x[6] = {1, 2, 3, -1, 0, 5}, sm[6], ls[6], ln[6], cs[6];
  float w[3] = {1, 2, 3}, b[3] = {0, 1, -1};
  void *in[3] = {x, w, b}, *out[4] = {sm, ls, ln, cs};
  CHECK_INT(run_ir("graph forward(%0 x: unknown, %1 w: unknown, %2 b: unknown) "
                   "-> (unknown, unknown, unknown, unknown) {\n"
                   "  %3 = constant(1) : int\n"
                   "  %4 = constant(none) : none\n"
                   "  %5 = softmax(%0, %3, %4) : unknown\n"
                   "  %6 = log_softmax(%0, %3, %4) : unknown\n"
                   "  %7 = constant([3]) : list<int>\n"
                   "  %8 = constant(1e-05) : float\n"
                   "  %9 = constant(true) : bool\n"
                   "  %10 = layer_norm(%0, %7, %1, %2, %8, %9) : unknown\n"
                   "  %11 = constant(0) : int\n"
                   "  %12 = cumsum(%0, %11, %4) : unknown\n"
                   "  return %5, %6, %10, %12\n}\n",
                   "x:f32[2,3];w:f32[3];b:f32[3]", in, out, NULL),
            0);
  double wsm[6], wls[6], wln[6];
  for (int r = 0; r < 2; r++) {
    double m = -1e30, s = 0, mean = 0, var = 0;
    for (int j = 0; j < 3; j++) m = fmax(m, x[r * 3 + j]);
    for (int j = 0; j < 3; j++) s += exp(x[r * 3 + j] - m);
    for (int j = 0; j < 3; j++) {
      wsm[r * 3 + j] = exp(x[r * 3 + j] - m) / s;
      wls[r * 3 + j] = x[r * 3 + j] - m - log(s);
      mean += x[r * 3 + j] / 3.0;
    }
    for (int j = 0; j < 3; j++) var += (x[r * 3 + j] - mean) * (x[r * 3 + j] - mean) / 3.0;
    for (int j = 0; j < 3; j++)
      wln[r * 3 + j] = (x[r * 3 + j] - mean) / sqrt(var + 1e-5) * w[j] + b[j];
  }
  double wcs[6] = {1, 2, 3, 0, 2, 8};
  check_f32(sm, wsm, 6, 1e-6, "softmax");
  check_f32(ls, wls, 6, 1e-6, "log_softmax");
  check_f32(ln, wln, 6, 1e-5, "layer_norm");
  check_f32(cs, wcs, 6, 0, "cumsum");
}

static void test_lower_reductions(void) {
  float x[12] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}; /* [2,2,3] */
  float s[4] = {0}, mx[2] = {0}, am[3] = {0}, nrm[2] = {0};
  int64_t ai[4] = {0}, ax[1] = {0};
  void *in[1] = {x}, *out[6] = {s, mx, ai, am, ax, nrm};
  CHECK_INT(run_ir("graph forward(%0 x: unknown) -> (unknown, unknown, unknown, "
                   "unknown, unknown, unknown) {\n"
                   "  %1 = constant([2]) : list<int>\n"
                   "  %2 = constant(false) : bool\n"
                   "  %3 = constant(none) : none\n"
                   "  %4 = mean(%0, %1, %2, %3) : unknown\n"
                   "  %5 = constant(1) : int\n"
                   "  %6 = constant([1, 2]) : list<int>\n"
                   "  %7 = amax(%0, %6, %2) : unknown\n"
                   "  %8 = constant(2) : int\n"
                   "  %9, %10 = max_dim(%0, %8, %2) : unknown, unknown\n"
                   "  %11 = constant([0, 1]) : list<int>\n"
                   "  %12 = amin(%0, %11, %2) : unknown\n"
                   "  %13 = argmax(%0, %3, %2) : unknown\n"
                   "  %14 = norm(%0, %3, %6, %2) : unknown\n"
                   "  return %4, %7, %10, %12, %13, %14\n}\n",
                   "x:f32[2,2,3]", in, out, NULL),
            0);
  double ws[4] = {8 / 3.0, 5, 13 / 3.0, 16 / 3.0};
  check_f32(s, ws, 4, 1e-6, "mean");
  double wm[2] = {9, 8};
  check_f32(mx, wm, 2, 0, "amax");
  int64_t wai[4] = {2, 2, 1, 2};
  for (int i = 0; i < 4; i++) CHECK_INT(ai[i], wai[i]);
  double wam[3] = {1, 1, 4};
  check_f32(am, wam, 3, 0, "amin");
  CHECK_INT(ax[0], 5);
  double wn[2] = {sqrt(9 + 1 + 16 + 1 + 25 + 81.0), sqrt(4 + 36 + 25 + 9 + 25 + 64.0)};
  check_f32(nrm, wn, 2, 1e-6, "norm");
}

static void test_lower_pool(void) {
  /* x [1,1,4,4] = 0..15 */
  float x[16] = {0}, mp[4] = {0}, ap[4] = {0}, ad[4] = {0};
  int64_t mi[4] = {0};
  for (int i = 0; i < 16; i++) x[i] = (float)((i * 7) % 16);
  void *in[1] = {x}, *out[4] = {mp, mi, ap, ad};
  CHECK_INT(run_ir("graph forward(%0 x: unknown) -> (unknown, unknown, unknown, "
                   "unknown) {\n"
                   "  %1 = constant([3, 3]) : list<int>\n"
                   "  %2 = constant([2, 2]) : list<int>\n"
                   "  %3 = constant([1, 1]) : list<int>\n"
                   "  %4 = constant(false) : bool\n"
                   "  %5, %6 = max_pool2d_with_indices(%0, %1, %2, %3, %3, %4) : "
                   "unknown, unknown\n"
                   "  %7 = constant(none) : none\n"
                   "  %8 = avg_pool2d(%0, %1, %2, %3, %4, %4, %7) : unknown\n"
                   "  %9 = adaptive_avg_pool2d(%0, %2) : unknown\n"
                   "  return %5, %6, %8, %9\n}\n",
                   "x:f32[1,1,4,4]", in, out, NULL),
            0);
  /* reference: windows of 3 at stride 2, padding 1 */
  for (int oh = 0; oh < 2; oh++)
    for (int ow = 0; ow < 2; ow++) {
      double m = -1e30, s = 0;
      int cnt = 0, mi_ = -1;
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
          int h = oh * 2 - 1 + i, w = ow * 2 - 1 + j;
          if (h < 0 || h >= 4 || w < 0 || w >= 4) continue;
          double v = x[h * 4 + w];
          if (v > m) m = v, mi_ = h * 4 + w;
          s += v;
          cnt++;
        }
      int o = oh * 2 + ow;
      CHECK(mp[o] == m);
      CHECK_INT(mi[o], mi_);
      CHECK(near(ap[o], s / cnt, 1e-6));
      double as = 0;
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) as += x[(oh * 2 + i) * 4 + ow * 2 + j];
      CHECK(near(ad[o], as / 4, 1e-6));
    }
}

static void test_lower_layout(void) {
  /* permute, slice with step, cat, chunk pieces, pad, index_select */
  float x[6] = {0, 1, 2, 3, 4, 5}; /* [2,3] */
  int64_t idx[2] = {2, 0};
  float pt[6] = {0}, sl[4] = {0}, ct[12] = {0}, c0[4] = {0}, c1[2] = {0}, pd[12] = {0}, is[4] = {0};
  void *in[2] = {x, idx}, *out[7] = {pt, sl, ct, c0, c1, pd, is};
  CHECK_INT(run_ir("graph forward(%0 x: unknown, %1 i: unknown) -> (unknown, "
                   "unknown, unknown, unknown, unknown, unknown, unknown) {\n"
                   "  %2 = constant([1, 0]) : list<int>\n"
                   "  %3 = permute(%0, %2) : unknown\n"
                   "  %4 = constant(1) : int\n"
                   "  %5 = constant(0) : int\n"
                   "  %6 = constant(none) : none\n"
                   "  %7 = constant(2) : int\n"
                   "  %8 = slice(%3, %5, %5, %6, %7) : unknown\n"
                   "  %9 = list_construct(%0, %0) : unknown\n"
                   "  %10 = cat(%9, %4) : unknown\n"
                   "  %11 = chunk(%0, %7, %4) : unknown\n"
                   "  %12, %13 = list_unpack(%11) : unknown, unknown\n"
                   "  %14 = constant([1, 0, 0, 1]) : list<int>\n"
                   "  %15 = constant(-1.0) : float\n"
                   "  %16 = constant_pad_nd(%0, %14, %15) : unknown\n"
                   "  %17 = index_select(%0, %4, %1) : unknown\n"
                   "  return %3, %8, %10, %12, %13, %16, %17\n}\n",
                   "x:f32[2,3];i:i64[2]", in, out, NULL),
            0);
  double wpt[6] = {0, 3, 1, 4, 2, 5}, wsl[4] = {0, 3, 2, 5};
  double wct[12] = {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5};
  double wc0[4] = {0, 1, 3, 4}, wc1[2] = {2, 5};
  double wpd[12] = {-1, 0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1};
  double wis[4] = {2, 0, 5, 3};
  check_f32(pt, wpt, 6, 0, "permute");
  check_f32(sl, wsl, 4, 0, "slice");
  check_f32(ct, wct, 12, 0, "cat");
  check_f32(c0, wc0, 4, 0, "chunk0");
  check_f32(c1, wc1, 2, 0, "chunk1");
  check_f32(pd, wpd, 12, 0, "pad");
  check_f32(is, wis, 4, 0, "index_select");
}

static void test_lower_batchnorm_embedding(void) {
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}; /* [1,2,2,2] */
  float w[2] = {2, 3}, b[2] = {1, -1}, m[2] = {1, 2}, v[2] = {4, 9};
  int64_t ids[3] = {1, 0, 1};
  float bn[8] = {0}, em[6] = {0};
  void *in2[6] = {x, w, b, m, v, ids}, *out2[1] = {bn};
  CHECK_INT(run_ir("graph forward(%0 x: unknown, %1 w: unknown, %2 b: unknown, "
                   "%3 m: unknown, %4 v: unknown, %5 ids: unknown) -> (unknown) {\n"
                   "  %6 = constant(false) : bool\n"
                   "  %7 = constant(0.1) : float\n"
                   "  %8 = constant(0.0) : float\n"
                   "  %9 = batch_norm(%0, %1, %2, %3, %4, %6, %7, %8, %6) : unknown\n"
                   "  return %9\n}\n",
                   "x:f32[1,2,2,2];w:f32[2];b:f32[2];m:f32[2];v:f32[2];"
                   "ids:i64[3]",
                   in2, out2, NULL),
            0);
  double wbn[8];
  for (int i = 0; i < 8; i++) {
    int c = i / 4;
    wbn[i] = (x[i] - m[c]) / sqrt((double)v[c]) * w[c] + b[c];
  }
  check_f32(bn, wbn, 8, 1e-6, "batch_norm");
  float tab[6] = {10, 11, 20, 21, 30, 31};
  void *in3[2] = {tab, ids}, *out3[1] = {em};
  CHECK_INT(run_ir("graph forward(%0 w: unknown, %1 ids: unknown) -> (unknown) {\n"
                   "  %2 = constant(false) : bool\n"
                   "  %3 = constant(-1) : int\n"
                   "  %4 = embedding(%0, %1, %3, %2, %2) : unknown\n"
                   "  return %4\n}\n",
                   "w:f32[3,2];ids:i64[3]", in3, out3, NULL),
            0);
  double wem[6] = {20, 21, 10, 11, 20, 21};
  check_f32(em, wem, 6, 0, "embedding");
}

/* More injective and elementwise ops on a [1,4,1,2] / [2,3] input. */
static void test_lower_more(void) {
  float x[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* [1,4,1,2] */
  float ps[8] = {0}, up[32] = {0}, fl[8] = {0}, rl[8] = {0}, tr[8] = {0}, hs[8] = {0}, gl[8] = {0};
  int64_t ar[4] = {0};
  void *in[1] = {x}, *out[8] = {ps, up, fl, rl, tr, hs, gl, ar};
  char *pr = NULL;
  CHECK_INT(run_ir("graph forward(%0 x: unknown) -> (unknown, unknown, unknown, "
                   "unknown, unknown, unknown, unknown, unknown) {\n"
                   "  %1 = constant(2) : int\n"
                   "  %2 = pixel_shuffle(%0, %1) : unknown\n"
                   "  %3 = constant([2, 4]) : list<int>\n"
                   "  %4 = constant(none) : none\n"
                   "  %5 = upsample_nearest2d(%0, %3, %4, %4) : unknown\n"
                   "  %6 = constant([1, 3]) : list<int>\n"
                   "  %7 = flip(%0, %6) : unknown\n"
                   "  %8 = constant([1]) : list<int>\n"
                   "  %9 = roll(%0, %8, %8) : unknown\n"
                   "  %11 = constant(0) : int\n"
                   "  %13 = constant(1) : int\n"
                   "  %15 = hardswish(%0) : unknown\n"
                   "  %16 = constant(\"tanh\") : str\n"
                   "  %17 = gelu(%0, %16) : unknown\n"
                   "  %18 = constant(4) : int\n"
                   "  %19 = arange(%11, %18, %13, %4) : unknown\n"
                   "  %21 = triu(%0, %13) : unknown\n"
                   "  return %2, %5, %7, %9, %21, %15, %17, %19\n}\n",
                   "x:f32[1,4,1,2]", in, out, &pr),
            0);
  free(pr);
  /* pixel_shuffle r=2: [1,4,1,2] -> [1,1,2,4]; out[h][w] = x[c=(h%2)*2+w%2][0][w/2] */
  double wps[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  check_f32(ps, wps, 8, 0, "pixel_shuffle");
  /* upsample to [2,4]: rows repeat, cols w/2 */
  double wup[32];
  for (int c = 0; c < 4; c++)
    for (int h = 0; h < 2; h++)
      for (int w = 0; w < 4; w++) wup[c * 8 + h * 4 + w] = x[c * 2 + w / 2];
  check_f32(up, wup, 32, 0, "upsample");
  double wtr[8] = {0, 1, 0, 3, 0, 5, 0, 7};
  check_f32(tr, wtr, 8, 0, "triu");
  double wfl[8] = {7, 6, 5, 4, 3, 2, 1, 0};
  check_f32(fl, wfl, 8, 0, "flip");
  double wrl[8] = {6, 7, 0, 1, 2, 3, 4, 5};
  check_f32(rl, wrl, 8, 0, "roll");
  double whs[8], wgl[8];
  for (int i = 0; i < 8; i++) {
    double v = x[i], r6 = fmin(fmax(v + 3, 0), 6);
    whs[i] = v * r6 / 6;
    wgl[i] = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  }
  check_f32(hs, whs, 8, 1e-6, "hardswish");
  check_f32(gl, wgl, 8, 1e-6, "gelu_tanh");
  for (int i = 0; i < 4; i++) CHECK_INT(ar[i], i);
}

/* gather, index (advanced), stack, group_norm, scatter, clamp, to. */
static void test_lower_gather(void) {
  float x[6] = {1, 2, 3, 4, 5, 6}; /* [2,3] */
  int64_t gi[4] = {2, 0, 1, 1};    /* [2,2] */
  int64_t ii[2] = {1, -1};
  float ga[4] = {0}, ix[2] = {0}, st[12] = {0}, sc[6] = {0}, cl[6] = {0};
  int32_t to[6] = {0};
  void *in[3] = {x, gi, ii}, *out[6] = {ga, ix, st, sc, cl, to};
  CHECK_INT(run_ir("graph forward(%0 x: unknown, %1 g: unknown, %2 i: unknown) -> "
                   "(unknown, unknown, unknown, unknown, unknown, unknown) {\n"
                   "  %3 = constant(1) : int\n"
                   "  %4 = constant(false) : bool\n"
                   "  %5 = gather(%0, %3, %1, %4) : unknown\n"
                   "  %6 = list_construct(%2, %2) : unknown\n"
                   "  %7 = index(%0, %6) : unknown\n"
                   "  %8 = list_construct(%0, %0) : unknown\n"
                   "  %9 = stack(%8, %3) : unknown\n"
                   "  %10 = constant(9.0) : float\n"
                   "  %11 = scatter(%0, %3, %1, %10) : unknown\n"
                   "  %12 = constant(2) : int\n"
                   "  %13 = constant(none) : none\n"
                   "  %14 = clamp(%0, %12, %13) : unknown\n"
                   "  %15 = constant(3) : int\n"
                   "  %16 = to(%0, %15) : unknown\n"
                   "  return %5, %7, %9, %11, %14, %16\n}\n",
                   "x:f32[2,3];g:i64[2,2];i:i64[2]", in, out, NULL),
            0);
  double wga[4] = {3, 1, 5, 5};
  check_f32(ga, wga, 4, 0, "gather");
  double wix[2] = {5, 6}; /* x[[1,-1],[1,-1]] = x[1][1], x[-1][-1] */
  check_f32(ix, wix, 2, 0, "index");
  double wst[12] = {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6};
  check_f32(st, wst, 12, 0, "stack");
  double wsc[6] = {9, 2, 9, 4, 9, 6};
  check_f32(sc, wsc, 6, 0, "scatter");
  double wcl[6] = {2, 2, 3, 4, 5, 6};
  check_f32(cl, wcl, 6, 0, "clamp");
  for (int i = 0; i < 6; i++) CHECK_INT(to[i], i + 1);
}

static void test_lower_errors(void) {
  float x[4] = {0}, y[4];
  void *in[1] = {x}, *out[1] = {y};
  fprintf(stderr, "(expected error follows)\n");
  CHECK_INT(run_ir("graph forward(%0 x: unknown) -> (unknown) {\n"
                   "  %1 = constant(none) : none\n"
                   "  %2 = constant(true) : bool\n"
                   "  %3 = constant(0.1) : float\n"
                   "  %4 = constant(1e-05) : float\n"
                   "  %5 = batch_norm(%0, %1, %1, %1, %1, %2, %3, %4, %2) : unknown\n"
                   "  return %5\n}\n",
                   "x:f32[1,2,2]", in, out, NULL),
            -1);
}

int main(void) {
  test_print();
  test_interp_ops();
  test_interp_kernels();
  test_lower_relu_print();
  test_lower_broadcast();
  test_lower_int_math();
  test_lower_softmax_layernorm();
  test_lower_reductions();
  test_lower_pool();
  test_lower_layout();
  test_lower_batchnorm_embedding();
  test_lower_more();
  test_lower_gather();
  test_lower_errors();
  return unit_report("kernel");
}
