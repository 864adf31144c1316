/* test_llvm.c — the LLVM backend against the reference interpreter.
 *
 * Kernels are built by hand with the k_* builders and wrapped in small
 * be_programs whose buffers are graph inputs and outputs (plus weights and
 * workspace in one test). Each program is compiled with llvm_compile, the
 * object is linked with the system C compiler into a shared object together
 * with a serial nncc_rt_parallel_for, loaded with dlopen, and run through
 * nncc_graph_run; every step is also run by k_interp on the same inputs,
 * and the outputs must agree: bit for bit for integers, bools, f16 and
 * bf16, and to 1e-6 relative for f32/f64 (1e-5 for reassociated
 * reductions). A few results are also checked against known numbers.
 */
#include "../../backends/backend.h"
#include "../../lower/lower.h"
#include "unit.h"
#include "llvmtest.h"

#include <math.h>

enum { N = 1000 }; /* elements per elementwise test vector */

/* ---- building programs --------------------------------------------------- */

static kp_program *new_prog(nn_arena *a) {
  kp_program *p = nn_alloc(a, sizeof *p);
  p->arena = a;
  return p;
}

static void add_step(kp_program *p, kernel *k, const kp_bufid *slots) {
  kp_step s = {.k = k, .node = 0};
  s.slots = nn_alloc(p->arena, sizeof(kp_bufid) * (size_t)(k->bufs.len + 1));
  memcpy(s.slots, slots, sizeof(kp_bufid) * (size_t)k->bufs.len);
  NN_PUSH(p->arena, p->steps, s);
}

/* ---- running programs ---------------------------------------------------- */

/* Slot pointers of step s, as nncc_graph_run computes them. */
static void step_slots(const kp_program *p, const kp_step *s, void *const *in, void *const *out,
                       unsigned char *ws, void **slots) {
  for (int i = 0; i < s->k->bufs.len; i++) {
    const kp_buf *b = &p->bufs.data[s->slots[i]];
    switch (b->kind) {
    case KP_BUF_INPUT: slots[i] = in[b->index]; break;
    case KP_BUF_OUTPUT: slots[i] = out[b->index]; break;
    case KP_BUF_WEIGHT: slots[i] = p->weights.data + b->offset; break;
    case KP_BUF_WORKSPACE: slots[i] = ws + b->offset; break;
    case KP_BUF_DIMS:
    case KP_BUF_STATUS:
      slots[i] = NULL; /* static programs without checks only */
      break;
    }
  }
}

/* The reference: every step through k_interp. */
static int run_interp(const kp_program *p, void *const *in, void *const *out, unsigned char *ws) {
  for (int s = 0; s < p->steps.len; s++) {
    void *slots[64];
    step_slots(p, &p->steps.data[s], in, out, ws, slots);
    if (k_interp(p->steps.data[s].k, slots) != 0) return -1;
  }
  return 0;
}

static const char rt_source[] =
    "#include <stdint.h>\n"
    "int nncc_test_calls;\n"
    "/* serial: two uneven chunks, so begin/end matter */\n" LT_RT_PARALLEL_FOR
    "  nncc_test_calls++;\n"
    "  fn(slots, 0, n / 3);\n"
    "  fn(slots, n / 3, n);\n"
    "}\n";

static llvm_opts opts_o2 = {.opt_level = 2, .mcpu = "native", .triple = NULL};

/* ---- values -------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_u64(void) { return lt_xorshift(&rng); }
static double uniform(double lo, double hi) {
  return lo + (hi - lo) * (double)(next_u64() >> 11) / 9007199254740992.0;
}

static const double f_specials[] = {1.0,      65504.0, 65520.0, 1e-8,      6.1e-5, -0.0,
                                    INFINITY, NAN,     0.1,     2.5,       -2.5,   0.5,
                                    1.5,      -7.0,    7.0,     -INFINITY, 3.0,    -3.0,
                                    1e30,     -1e30,   5.96e-8, 1e-40,     0.0,    -0.5};
static const int64_t i_specials[] = {-7,  7,    -7,        7,         0,   -1,  1,
                                     100, -100, INT64_MAX, INT64_MIN, 255, 127, -128};
static const int64_t i_specials_y[] = {2, -2, -2, 0, 3, -1, -1, 7, 3, -1, -1, 2, 2, 0};

/* Fills n elements of dtype dt; `second` selects the right-hand operands
 * (small integers with zeros, so division, modulo and pow are exercised). */
static void fill(void *buf, nn_dtype dt, int n, bool second) {
  for (int i = 0; i < n; i++) {
    int ns = NN_ARRAY_LEN(f_specials), ni = NN_ARRAY_LEN(i_specials);
    double f = second ? uniform(-4, 4) : i < ns ? f_specials[i] : uniform(-8, 8);
    if (!second && i >= ns && i % 7 == 0) f = uniform(-100, 100);
    if (second && i % 11 == 0) f = 0;
    if (second && i % 13 == 0) f = -f_specials[i % ns];
    int64_t v = second ? (i < ni ? i_specials_y[i] : (int64_t)(next_u64() % 19) - 9)
                       : (i < ni ? i_specials[i] : (int64_t)(next_u64() % 41) - 20);
    if (!second && i >= ni && i % 5 == 0) v = (int64_t)next_u64();
    switch (dt) {
    case NN_DT_F32: ((float *)buf)[i] = (float)f; break;
    case NN_DT_F64: ((double *)buf)[i] = f; break;
    case NN_DT_F16: { /* mostly moderate exponents, some arbitrary patterns */
      uint16_t h = (uint16_t)next_u64();
      if (i % 4) h = (uint16_t)((h & 0x83ff) | ((10 + next_u64() % 10) << 10));
      ((uint16_t *)buf)[i] = h;
      break;
    }
    case NN_DT_BF16: {
      uint16_t h = (uint16_t)next_u64();
      if (i % 4) h = (uint16_t)((h & 0x807f) | ((120 + next_u64() % 14) << 7));
      ((uint16_t *)buf)[i] = h;
      break;
    }
    case NN_DT_I64: ((int64_t *)buf)[i] = v; break;
    case NN_DT_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case NN_DT_I16: ((int16_t *)buf)[i] = (int16_t)v; break;
    case NN_DT_I8: ((int8_t *)buf)[i] = (int8_t)v; break;
    case NN_DT_U8: ((uint8_t *)buf)[i] = (uint8_t)(second ? (v < 0 ? -v : v) : v); break;
    case NN_DT_BOOL: ((uint8_t *)buf)[i] = (uint8_t)(next_u64() & 1); break;
    default: break;
    }
  }
}

static bool f16_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static bool bf16_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }

/* Compares n elements; returns the number of mismatches (the first few are
 * printed with `what`). */
static int compare(const char *what, nn_dtype dt, const void *got, const void *want, int n,
                   double tol) {
  int bad = 0;
  for (int i = 0; i < n; i++) {
    bool ok;
    double g = 0, w = 0;
    switch (dt) {
    case NN_DT_F32:
    case NN_DT_F64:
      g = dt == NN_DT_F32 ? ((const float *)got)[i] : ((const double *)got)[i];
      w = dt == NN_DT_F32 ? ((const float *)want)[i] : ((const double *)want)[i];
      ok = (isnan(g) && isnan(w)) || g == w || fabs(g - w) <= tol * fmax(fabs(g), fabs(w));
      break;
    case NN_DT_F16:
    case NN_DT_BF16: {
      uint16_t a = ((const uint16_t *)got)[i], b = ((const uint16_t *)want)[i];
      g = a;
      w = b;
      ok = a == b || (dt == NN_DT_F16 ? f16_nan(a) && f16_nan(b) : bf16_nan(a) && bf16_nan(b));
      break;
    }
    default: {
      size_t es = nn_dtype_size(dt);
      ok = memcmp((const char *)got + es * (size_t)i, (const char *)want + es * (size_t)i, es) == 0;
      break;
    }
    }
    if (!ok && bad++ < 3) fprintf(stderr, "  %s[%d]: got %.9g, want %.9g\n", what, i, g, w);
  }
  return bad;
}

/* ---- an elementwise kernel per (op, dtype) ------------------------------- */

/* One kernel `out[i] = f(x[i], y[i], c[i])` over [0, N) as a vector loop. */
static kernel *elementwise(nn_arena *a, const char *name, kx_op op, nn_dtype dt, nn_dtype to) {
  kernel *k = k_new(a, name);
  int32_t x = k_buf(k, dt, N, false, "x"), y = k_buf(k, dt, N, false, "y");
  int32_t c = k_buf(k, NN_DT_BOOL, N, false, "c");
  nn_dtype odt = op == KX_CAST ? to
                 : (op == KX_NOT || (op >= KX_EQ && op <= KX_OR))
                     ? NN_DT_BOOL
                     : dt;
  int32_t out = k_buf(k, odt, N, true, "out");
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, N), KS_VECTOR);
  kx_id xi = k_load(k, x, k_varref(k, i)), yi = k_load(k, y, k_varref(k, i));
  kx_id v;
  if (op == KX_CAST)
    v = k_cast(k, to, xi);
  else if (op == KX_SELECT)
    v = k_select(k, k_load(k, c, k_varref(k, i)), xi, yi);
  else if (op >= KX_NEG && op <= KX_ROUND)
    v = k_un(k, op, xi);
  else
    v = k_bin(k, op, xi, yi);
  k_store(k, out, k_varref(k, i), v);
  k_for_end(k);
  return k;
}

static const nn_dtype all_dtypes[] = {NN_DT_F32, NN_DT_F64, NN_DT_F16, NN_DT_BF16, NN_DT_I64,
                                      NN_DT_I32, NN_DT_I16, NN_DT_I8,  NN_DT_U8,   NN_DT_BOOL};
enum { NDT = NN_ARRAY_LEN(all_dtypes) };

/* Every kx op at every dtype (and every cast), compiled as one program and
 * compared with the interpreter. */
static void test_all_ops(int opt_level) {
  nn_arena *a = nn_arena_new();
  kp_program *p = new_prog(a);
  void *inputs[2 * NDT + 1];
  kp_bufid xin[NDT], yin[NDT];
  for (int d = 0; d < NDT; d++) {
    xin[d] = lt_add_buf(p, KP_BUF_INPUT, all_dtypes[d], N, 0);
    yin[d] = lt_add_buf(p, KP_BUF_INPUT, all_dtypes[d], N, 0);
    inputs[2 * d] = nn_alloc(a, 8 * N);
    inputs[2 * d + 1] = nn_alloc(a, 8 * N);
    fill(inputs[2 * d], all_dtypes[d], N, false);
    fill(inputs[2 * d + 1], all_dtypes[d], N, true);
  }
  kp_bufid cin = lt_add_buf(p, KP_BUF_INPUT, NN_DT_BOOL, N, 0);
  inputs[2 * NDT] = nn_alloc(a, N);
  fill(inputs[2 * NDT], NN_DT_BOOL, N, false);

  for (int d = 0; d < NDT; d++) {
    nn_dtype dt = all_dtypes[d];
    for (int op = KX_NEG; op <= KX_SELECT; op++) {
      int ncast = op == KX_CAST ? NDT : 1;
      for (int t = 0; t < ncast; t++) {
        nn_dtype to = op == KX_CAST ? all_dtypes[t] : dt;
        if (op == KX_CAST && to == dt) continue;
        char *name = nn_sprintf(a, "k%d_op%d_%s_%s", p->steps.len, op, nn_dtype_name(dt),
                                nn_dtype_name(to));
        kernel *k = elementwise(a, name, (kx_op)op, dt, to);
        kp_bufid out = lt_add_buf(p, KP_BUF_OUTPUT, k->bufs.data[3].dtype, N, 0);
        kp_bufid sl[4] = {xin[d], yin[d], cin, out};
        add_step(p, k, sl);
      }
    }
  }
  int nout = p->outputs.len;
  void **got = nn_alloc(a, sizeof(void *) * (size_t)nout),
       **want = nn_alloc(a, sizeof(void *) * (size_t)nout);
  for (int i = 0; i < nout; i++) {
    got[i] = nn_alloc(a, 8 * N);
    want[i] = nn_alloc(a, 8 * N);
  }
  CHECK_INT(run_interp(p, inputs, want, NULL), 0);

  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_result r;
  CHECK_INT(llvm_compile(p, &(llvm_opts){.opt_level = opt_level}, true, &r, &d), 0);
  CHECK_INT(d.errors, 0);
  if (d.errors) goto out;
  CHECK(r.cpu && r.cpu[0]);
  if (opt_level >= 2) {
    /* the f32 loops were vectorized for the host's vector width */
    CHECK(strstr(r.ir_text, "<4 x float>") || strstr(r.ir_text, "<8 x float>") ||
          strstr(r.ir_text, "<16 x float>"));
    /* noalias parameters became scoped alias metadata when inlined */
    CHECK(strstr(r.ir_text, "!alias.scope") != NULL);
  }
  graph_fn fn;
  void *h = lt_load_object(&r, &fn);
  if (h) {
    CHECK_INT(fn(inputs, got, NULL, NULL, NULL, NULL, NULL, NULL), 0);
    int bad_kernels = 0;
    for (int s = 0; s < p->steps.len; s++) {
      const kernel *k = p->steps.data[s].k;
      int o = p->bufs.data[p->steps.data[s].slots[3]].index;
      if (compare(k->name, k->bufs.data[3].dtype, got[o], want[o], N, 1e-6)) bad_kernels++;
    }
    CHECK_INT(bad_kernels, 0);
    printf("all ops at -O%d: %d kernels compared, %d differ\n", opt_level, p->steps.len,
           bad_kernels);

    /* known values: find the outputs by kernel name */
    for (int s = 0; s < p->steps.len; s++) {
      const char *nm = strchr(p->steps.data[s].k->name, '_') + 1;
      int o = p->bufs.data[p->steps.data[s].slots[3]].index;
      const int64_t *gi = got[o];
      const uint16_t *gh = got[o];
      const float *gf = got[o];
      /* x = {-7, 7, -7, 7, 0}, y = {2, -2, -2, 0, 3} */
      if (!strcmp(nm, nn_sprintf(a, "op%d_i64_i64", KX_FLOORDIV))) {
        CHECK_INT(gi[0], -4);
        CHECK_INT(gi[1], -4);
        CHECK_INT(gi[2], 3);
        CHECK_INT(gi[3], 0);
      }
      if (!strcmp(nm, nn_sprintf(a, "op%d_i64_i64", KX_MOD))) {
        CHECK_INT(gi[0], 1);
        CHECK_INT(gi[1], -1);
        CHECK_INT(gi[2], -1);
        CHECK_INT(gi[3], 0);
      }
      if (!strcmp(nm, nn_sprintf(a, "op%d_i64_i64", KX_DIV))) {
        CHECK_INT(gi[0], -3);
        CHECK_INT(gi[3], 0);
        CHECK_INT(gi[10], INT64_MIN); /* INT64_MIN / -1 wraps */
      }
      /* x = {1, 65504, 65520, 1e-8, 6.1e-5, -0, inf, nan, 0.1, ...} */
      if (!strcmp(nm, nn_sprintf(a, "op%d_f32_f16", KX_CAST))) {
        CHECK_INT(gh[0], 0x3c00);
        CHECK_INT(gh[1], 0x7bff);
        CHECK_INT(gh[2], 0x7c00);
        CHECK_INT(gh[3], 0x0000);
        CHECK_INT(gh[4], 0x03ff);
        CHECK_INT(gh[5], 0x8000);
        CHECK_INT(gh[6], 0x7c00);
        CHECK(f16_nan(gh[7]));
        CHECK_INT(gh[8], 0x2e66);
      }
      if (!strcmp(nm, nn_sprintf(a, "op%d_f32_f32", KX_ROUND))) {
        CHECK(gf[9] == 2.0f && gf[10] == -2.0f && gf[11] == 0.0f && gf[12] == 2.0f);
      }
      if (!strcmp(nm, nn_sprintf(a, "op%d_f32_i32", KX_CAST))) {
        const int32_t *g32 = got[o];
        CHECK_INT(g32[7], 0);  /* NaN */
        CHECK_INT(g32[6], -1); /* inf saturates to INT64_MAX, wraps to -1 */
        CHECK_INT(g32[13], -7);
      }
    }
    dlclose(h);
  }
  llvm_result_free(&r);
out:
  nn_arena_free(a);
}

/* ---- structure: reduction, if, parallel, workspace, weights -------------- */

/* out[i] = sum_j x[i*K + j] over K, through a LET accumulator. */
static kernel *reduction(nn_arena *a, int64_t rows, int64_t K) {
  kernel *k = k_new(a, "k_sum");
  int32_t x = k_buf(k, NN_DT_F32, rows * K, false, "x");
  int32_t out = k_buf(k, NN_DT_F32, rows, true, "out");
  int32_t acc = k_var(k, NN_DT_F32);
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, rows), KS_PARALLEL);
  k_let(k, acc, k_const_f(k, NN_DT_F32, 0));
  int32_t j = k_for_begin(k, k_i64(k, 0), k_i64(k, K), KS_REDUCE);
  kx_id idx = k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_varref(k, i), k_i64(k, K)), k_varref(k, j));
  k_let(k, acc, k_bin(k, KX_ADD, k_varref(k, acc), k_load(k, x, idx)));
  k_for_end(k);
  k_store(k, out, k_varref(k, i), k_varref(k, acc));
  k_for_end(k);
  return k;
}

static void test_reduction_parallel(void) {
  nn_arena *a = nn_arena_new();
  kp_program *p = new_prog(a);
  const int64_t rows = 64, K = 1000;
  kernel *k = reduction(a, rows, K);
  kp_bufid sl[2] = {lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, rows * K, 0),
                    lt_add_buf(p, KP_BUF_OUTPUT, NN_DT_F32, rows, 0)};
  add_step(p, k, sl);
  float *x = nn_alloc(a, sizeof(float) * (size_t)(rows * K));
  for (int64_t i = 0; i < rows * K; i++) x[i] = (float)uniform(0, 1);
  float got[64], want[64];
  void *in[1] = {x}, *og[1] = {got}, *ow[1] = {want};
  CHECK_INT(run_interp(p, in, ow, NULL), 0);
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_result r;
  CHECK_INT(llvm_compile(p, &opts_o2, true, &r, &d), 0);
  if (d.errors) goto out;
  /* the root loop runs over [begin, end); the reduction is vectorized */
  CHECK(strstr(r.ir_text, "call void @nncc_rt_parallel_for") != NULL);
  CHECK(strstr(r.ir_text, "x float>") != NULL);
  graph_fn fn;
  void *h = lt_load_object(&r, &fn);
  if (h) {
    int *calls = dlsym(h, "nncc_test_calls");
    CHECK_INT(fn(in, og, NULL, NULL, NULL, NULL, NULL, NULL), 0);
    CHECK_INT(compare("sum", NN_DT_F32, got, want, (int)rows, 1e-5), 0);
    CHECK(calls && *calls == 1);
    dlclose(h);
  }
  llvm_result_free(&r);
out:
  nn_arena_free(a);
}

/* Two steps through the workspace and a weight, an IF/ELSE, and a small
 * parallel root loop (n = 1: called inline):
 *   ws[i] = x[i] > 0 ? x[i] * w[i] : -1      (IF statement)
 *   out[i] = ws[i] + w[i % 4] * 2             (parallel root, 1 iteration
 *                                              of an inner loop over 10) */
static void test_steps_if_weights(void) {
  nn_arena *a = nn_arena_new();
  kp_program *p = new_prog(a);
  float wv[16];
  for (int i = 0; i < 16; i++) wv[i] = (float)(i + 1) * 0.25f;
  for (int i = 0; i < 64 + 16 * 4; i++) {
    unsigned char z = 0;
    NN_PUSH(a, p->weights, z);
  }
  memcpy(p->weights.data + 64, wv, sizeof wv);
  p->workspace_bytes = 128;
  kp_bufid bx = lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, 10, 0);
  kp_bufid bw = lt_add_buf(p, KP_BUF_WEIGHT, NN_DT_F32, 16, 64);
  kp_bufid bws = lt_add_buf(p, KP_BUF_WORKSPACE, NN_DT_F32, 10, 64);
  kp_bufid bo = lt_add_buf(p, KP_BUF_OUTPUT, NN_DT_F32, 10, 0);

  kernel *k1 = k_new(a, "k_if");
  int32_t x = k_buf(k1, NN_DT_F32, 10, false, "x"), w = k_buf(k1, NN_DT_F32, 16, false, "w");
  int32_t t = k_buf(k1, NN_DT_F32, 10, true, "t");
  int32_t i = k_for_begin(k1, k_i64(k1, 0), k_i64(k1, 10), 0);
  kx_id xi = k_load(k1, x, k_varref(k1, i));
  k_if_begin(k1, k_bin(k1, KX_GT, xi, k_const_f(k1, NN_DT_F32, 0)));
  k_store(k1, t, k_varref(k1, i), k_bin(k1, KX_MUL, xi, k_load(k1, w, k_varref(k1, i))));
  k_else(k1);
  k_store(k1, t, k_varref(k1, i), k_const_f(k1, NN_DT_F32, -1));
  k_if_end(k1);
  k_for_end(k1);
  kp_bufid s1[3] = {bx, bw, bws};
  add_step(p, k1, s1);

  kernel *k2 = k_new(a, "k_par1");
  int32_t t2 = k_buf(k2, NN_DT_F32, 10, false, "t"), w2 = k_buf(k2, NN_DT_F32, 16, false, "w");
  int32_t o2 = k_buf(k2, NN_DT_F32, 10, true, "out");
  k_for_begin(k2, k_i64(k2, 0), k_i64(k2, 1), KS_PARALLEL);
  int32_t j = k_for_begin(k2, k_i64(k2, 0), k_i64(k2, 10), KS_VECTOR);
  kx_id wj = k_load(k2, w2, k_bin(k2, KX_MOD, k_varref(k2, j), k_i64(k2, 4)));
  k_store(k2, o2, k_varref(k2, j),
          k_bin(k2, KX_ADD, k_load(k2, t2, k_varref(k2, j)),
                k_bin(k2, KX_MUL, wj, k_const_f(k2, NN_DT_F32, 2))));
  k_for_end(k2);
  k_for_end(k2);
  kp_bufid s2[3] = {bws, bw, bo};
  add_step(p, k2, s2);

  float xv[10] = {1, -2, 3, 0, 5, -6, 7, 8, -9, 10}, got[10], want[10];
  unsigned char ws1[128] __attribute__((aligned(64))), ws2[128] __attribute__((aligned(64)));
  void *in[1] = {xv}, *og[1] = {got}, *ow[1] = {want};
  CHECK_INT(run_interp(p, in, ow, ws1), 0);
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_result r;
  CHECK_INT(llvm_compile(p, &(llvm_opts){.opt_level = 3}, false, &r, &d), 0);
  if (d.errors) goto out;
  CHECK(r.ir_text == NULL);
  graph_fn fn;
  void *h = lt_load_object(&r, &fn);
  if (h) {
    int *calls = dlsym(h, "nncc_test_calls");
    CHECK_INT(fn(in, og, ws2, p->weights.data, NULL, NULL, NULL, NULL), 0);
    CHECK_INT(compare("if", NN_DT_F32, got, want, 10, 0), 0);
    /* x[0]=1 → 1*0.25 + 0.25*2; x[1]=-2 → -1 + 0.5*2 */
    CHECK(got[0] == 0.75f && got[1] == 0.0f && got[3] == -1.0f + 2.0f);
    CHECK(calls && *calls == 0);
    dlclose(h);
  }
  llvm_result_free(&r);
out:
  nn_arena_free(a);
}

/* A kernel whose written slot and read slot are the same workspace buffer:
 * out[i+1] = in[i] must run in order (every element becomes in[0]), which
 * only holds if the slots were not marked noalias. */
static void test_overlap(void) {
  nn_arena *a = nn_arena_new();
  kp_program *p = new_prog(a);
  p->workspace_bytes = 4 * 256;
  kp_bufid bx = lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, 256, 0);
  kp_bufid bws = lt_add_buf(p, KP_BUF_WORKSPACE, NN_DT_F32, 256, 0);
  kp_bufid bo = lt_add_buf(p, KP_BUF_OUTPUT, NN_DT_F32, 256, 0);
  kernel *k0 = k_new(a, "k_copy_in");
  int32_t s = k_buf(k0, NN_DT_F32, 256, false, "x"), t = k_buf(k0, NN_DT_F32, 256, true, "t");
  int32_t i = k_for_begin(k0, k_i64(k0, 0), k_i64(k0, 256), KS_VECTOR);
  k_store(k0, t, k_varref(k0, i), k_load(k0, s, k_varref(k0, i)));
  k_for_end(k0);
  kp_bufid s0[2] = {bx, bws};
  add_step(p, k0, s0);
  kernel *k1 = k_new(a, "k_shift");
  int32_t in = k_buf(k1, NN_DT_F32, 256, false, "in"), out = k_buf(k1, NN_DT_F32, 256, true, "out");
  i = k_for_begin(k1, k_i64(k1, 0), k_i64(k1, 255), 0);
  k_store(k1, out, k_bin(k1, KX_ADD, k_varref(k1, i), k_i64(k1, 1)),
          k_load(k1, in, k_varref(k1, i)));
  k_for_end(k1);
  kp_bufid s1[2] = {bws, bws};
  add_step(p, k1, s1);
  add_step(p, k0, (kp_bufid[]){bws, bo}); /* the same kernel again: one function */

  float xv[256], got[256], want[256];
  for (int j = 0; j < 256; j++) xv[j] = (float)j;
  unsigned char ws1[1024], ws2[1024];
  void *vin[1] = {xv}, *og[1] = {got}, *ow[1] = {want};
  CHECK_INT(run_interp(p, vin, ow, ws1), 0);
  CHECK(want[255] == 0.0f);
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_result r;
  CHECK_INT(llvm_compile(p, &opts_o2, true, &r, &d), 0);
  if (d.errors) goto out;
  if (getenv("NNCC_TEST_DUMP_IR")) fputs(r.ir_text, stderr);
  CHECK(strstr(r.ir_text, "void @k_copy_in(") != NULL);
  CHECK(strstr(r.ir_text, "@k_copy_in.1") == NULL);
  graph_fn fn;
  void *h = lt_load_object(&r, &fn);
  if (h) {
    CHECK_INT(fn(vin, og, ws2, NULL, NULL, NULL, NULL, NULL), 0);
    CHECK_INT(compare("shift", NN_DT_F32, got, want, 256, 0), 0);
    dlclose(h);
  }
  llvm_result_free(&r);
out:
  nn_arena_free(a);
}

/* A GEMM statement (native microkernels, llvm_gemm.c) with a bias. */
static void test_gemm(void) {
  nn_arena *a = nn_arena_new();
  kp_program *p = new_prog(a);
  const int64_t M = 5, Nn = 37, K = 19;
  kernel *k = k_new(a, "k_gemm");
  int32_t A = k_buf(k, NN_DT_F32, M * K, false, "a"), B = k_buf(k, NN_DT_F32, K * Nn, false, "b");
  int32_t bias = k_buf(k, NN_DT_F32, Nn, false, "bias"), C = k_buf(k, NN_DT_F32, M * Nn, true, "c");
  ks_gemm g = {.a = A,
               .b = B,
               .c = C,
               .a_off = k_i64(k, 0),
               .b_off = k_i64(k, 0),
               .c_off = k_i64(k, 0),
               .m = k_i64(k, M),
               .n = k_i64(k, Nn),
               .k = k_i64(k, K),
               .a_rs = k_i64(k, K),
               .a_cs = k_i64(k, 1),
               .b_rs = k_i64(k, Nn),
               .b_cs = k_i64(k, 1),
               .ldc = k_i64(k, Nn),
               .alpha = 1.0f,
               .bias = bias,
               .bias_off = k_i64(k, 0),
               .bias_rs = k_i64(k, 0),
               .bias_cs = k_i64(k, 1),
               .beta = 1.0f};
  k_gemm(k, &g);
  kp_bufid sl[4] = {lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, M * K, 0),
                    lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, K * Nn, 0),
                    lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, Nn, 0),
                    lt_add_buf(p, KP_BUF_OUTPUT, NN_DT_F32, M * Nn, 0)};
  add_step(p, k, sl);
  float *av = nn_alloc(a, 4 * (size_t)(M * K)), *bv = nn_alloc(a, 4 * (size_t)(K * Nn)),
        *cv = nn_alloc(a, 4 * (size_t)Nn);
  for (int i = 0; i < M * K; i++) av[i] = (float)uniform(-1, 1);
  for (int i = 0; i < K * Nn; i++) bv[i] = (float)uniform(-1, 1);
  for (int i = 0; i < Nn; i++) cv[i] = (float)uniform(-1, 1);
  float *got = nn_alloc(a, 4 * (size_t)(M * Nn)), *want = nn_alloc(a, 4 * (size_t)(M * Nn));
  void *in[3] = {av, bv, cv}, *og[1] = {got}, *ow[1] = {want};
  CHECK_INT(run_interp(p, in, ow, NULL), 0);
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_result r;
  CHECK_INT(llvm_compile(p, &opts_o2, false, &r, &d), 0);
  if (d.errors) goto out;
  CHECK_INT(k->stmts.data[k->root.data[0]].kind, KS_GEMM); /* the program is untouched */
  graph_fn fn;
  void *h = lt_load_object(&r, &fn);
  if (h) {
    CHECK_INT(fn(in, og, NULL, NULL, NULL, NULL, NULL, NULL), 0);
    CHECK_INT(compare("gemm", NN_DT_F32, got, want, (int)(M * Nn), 1e-5), 0);
    dlclose(h);
  }
  llvm_result_free(&r);
out:
  nn_arena_free(a);
}

/* ---- determinism and errors ---------------------------------------------- */

static void test_determinism(void) {
  nn_arena *a = nn_arena_new();
  kp_program *p = new_prog(a);
  kernel *k = reduction(a, 8, 100);
  kp_bufid sl[2] = {lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, 800, 0),
                    lt_add_buf(p, KP_BUF_OUTPUT, NN_DT_F32, 8, 0)};
  add_step(p, k, sl);
  for (int lvl = 0; lvl <= 3; lvl++) {
    nn_diag d;
    nn_diag_init(&d, stderr);
    llvm_result r1, r2;
#if defined(__x86_64__)
    const char *cpu = lvl == 1 ? "x86-64" : NULL;
#else
    const char *cpu = NULL;
#endif
    llvm_opts o = {.opt_level = lvl, .mcpu = cpu};
    CHECK_INT(llvm_compile(p, &o, true, &r1, &d), 0);
    CHECK_INT(llvm_compile(p, &o, true, &r2, &d), 0);
    if (d.errors) break;
    CHECK(r1.obj_size > 64 && r1.obj_size == r2.obj_size &&
          memcmp(r1.obj, r2.obj, r1.obj_size) == 0);
    CHECK_STR(r1.ir_text, r2.ir_text);
    CHECK(memcmp(r1.obj, "\177ELF", 4) == 0);
    if (cpu) {
      CHECK_STR(r1.cpu, "x86-64");
      CHECK_STR(r1.features, "");
    }
    llvm_result_free(&r1);
    llvm_result_free(&r2);
  }
  /* another target: no host CPU there, so the generic one */
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_result r;
  CHECK_INT(llvm_compile(p, &(llvm_opts){.opt_level = 2, .triple = "aarch64-unknown-linux-gnu"},
                         true, &r, &d),
            0);
  if (!d.errors) {
    CHECK_STR(r.cpu, "generic");
    CHECK(memcmp(r.obj, "\177ELF", 4) == 0);
    CHECK(strstr(r.ir_text, "target triple = \"aarch64-unknown-linux-gnu\"") != NULL);
    CHECK(strstr(r.ir_text, "<4 x float>") != NULL);
  }
  llvm_result_free(&r);
  nn_arena_free(a);
}

/* Compiles p expecting one error whose text contains `want`. */
static void expect_error(const kp_program *p, const llvm_opts *o, const char *want) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  nn_diag d;
  nn_diag_init(&d, f);
  llvm_result r;
  CHECK_INT(llvm_compile(p, o, false, &r, &d), -1);
  fclose(f);
  CHECK_INT(d.errors, 1);
  CHECK(r.obj == NULL && r.cpu == NULL);
  if (!strstr(text, want)) fprintf(stderr, "error text '%s' lacks '%s'\n", text, want);
  CHECK(strstr(text, want) != NULL);
  free(text);
}

static void test_errors(void) {
  nn_arena *a = nn_arena_new();
  kp_program *p = new_prog(a);
  kp_bufid xin = lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, N, 0),
           yin = lt_add_buf(p, KP_BUF_INPUT, NN_DT_F32, N, 0);
  kp_bufid cin = lt_add_buf(p, KP_BUF_INPUT, NN_DT_BOOL, N, 0),
           out = lt_add_buf(p, KP_BUF_OUTPUT, NN_DT_F32, N, 0);
  kernel *k = elementwise(a, "k_bad", KX_ADD, NN_DT_F32, NN_DT_F32);
  k->loc = (nn_loc){.file = "code/m.py", .line = 3, .col = 5};
  kp_bufid sl[4] = {xin, yin, cin, out};
  add_step(p, k, sl);
  const ks *st = &k->stmts.data[k->stmts.data[k->root.data[0]].body[0]];
  kx *add = &k->exprs.data[st->val];

  add->op = KX_OP_COUNT;
  expect_error(p, &opts_o2, "code/m.py:3:5: kernel k_bad: expression");
  expect_error(p, &opts_o2, "unknown operation");
  add->op = KX_ADD;
  kx_id b = add->b;
  add->b = k->exprs.data[add->a].a; /* an i64 operand: the load's index */
  expect_error(p, &opts_o2, "operand b is i64, expected f32");
  add->b = 100000;
  expect_error(p, &opts_o2, "operand b is missing");
  add->b = b;
  k->bufs.data[3].written = false;
  expect_error(p, &opts_o2, "which is not marked written");
  k->bufs.data[3].written = true;
  p->steps.data[0].slots[3] = cin; /* bool buffer for an f32 slot */
  expect_error(p, &opts_o2, "does not fit buffer");
  p->steps.data[0].slots[3] = xin; /* writes an input */
  expect_error(p, &opts_o2, "writes read-only buffer");
  p->steps.data[0].slots[3] = out;
  expect_error(p, &(llvm_opts){.opt_level = 7}, "optimization level 7");
  expect_error(p, &(llvm_opts){.opt_level = 2, .triple = "nonsense-unknown-nothing"},
               "unknown target triple");
  p->bufs.data[out].index = 5;
  expect_error(p, &opts_o2, "names graph output 5 of 1");
  p->bufs.data[out].index = 0;

  /* still fine afterwards */
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_result r;
  CHECK_INT(llvm_compile(p, &opts_o2, false, &r, &d), 0);
  llvm_result_free(&r);
  nn_arena_free(a);
}

int main(void) {
  lt_setup("llvm", rt_source);

  test_all_ops(2);
  test_all_ops(0);
  test_reduction_parallel();
  test_steps_if_weights();
  test_overlap();
  test_gemm();
  test_determinism();
  test_errors();

  lt_cleanup();
  return unit_report("llvm");
}
