/* test_vmath.c — accuracy of the inline f32 math of the LLVM backend.
 *
 * exp, log, log1p, tanh and erf of f32 are emitted as polynomial code
 * (backends/llvm/llvm_numeric.c). Each is compiled here as a one-line
 * kernel `out[i] = f(x[i])` over a parallel, vectorizable loop, through the
 * real path (llvm_compile at -O2 for the host, cc -shared, dlopen), and run
 * on ~1.3 million f32 inputs: a stride through every f32 bit pattern (about
 * 2000 values in every binade of both signs, subnormals included), uniform
 * samples of [-12, 12], and the special values ±0, ±inf, NaN, the smallest
 * subnormal, FLT_MAX, and the overflow and underflow edges of exp. The
 * reference is libm's function in double rounded to f32; the error is
 * measured in ulps of the reference (an f32 ulp, 2^-149 below the normal
 * range), and must not exceed the bounds in `funcs` below. Special values
 * must match exactly (NaN for NaN, ±inf and ±0 with their sign).
 *
 * The same functions on f16 and bf16 (computed in f32, then rounded) are
 * checked on all 65536 inputs against the double reference: at most one
 * ulp of the narrow type. The optimized IR must contain vector code and no
 * call to a scalar libm function or to llvm.exp/llvm.log.
 *
 * NNCC_VMATH_STRIDE=N sets the bit-pattern stride (default 4099; smaller
 * is denser: memory is 24 bytes per input, 101 takes about 1 GiB).
 */
#include "../../backends/backend.h"
#include "../../lower/lower.h"
#include "unit.h"
#include "llvmtest.h"

#include <float.h>
#include <math.h>

/* A function under test: its kernel op, the reference and the bound. */
typedef struct vfunc {
  const char *name;
  kx_op op;
  double (*ref)(double);
  double max_ulp; /* asserted bound on f32 */
} vfunc;

static const vfunc funcs[] = {
    {"exp", KX_EXP, exp, 1.5},    {"log", KX_LOG, log, 1.5}, {"log1p", KX_LOG1P, log1p, 2.0},
    {"tanh", KX_TANH, tanh, 2.5}, {"erf", KX_ERF, erf, 2.0},
};
enum { NF = sizeof funcs / sizeof funcs[0] };

/* A serial stand-in for the model runtime's thread pool. */
static const char rt_source[] = "#include <stdint.h>\n" LT_RT_PARALLEL_FOR "  fn(slots, 0, n);\n"
                                "}\n";

/* Adds the kernel `out[i] = op(x[i])` in dtype dt over n elements, reading
 * graph input `in` and writing a new graph output. */
static void add_kernel(kp_program *p, kx_op op, nn_dtype dt, int64_t n) {
  nn_arena *a = p->arena;
  kernel *k = k_new(a, nn_sprintf(a, "k%d", p->steps.len));
  int32_t x = k_buf(k, dt, n, false, "x"), out = k_buf(k, dt, n, true, "out");
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, n), KS_PARALLEL | KS_VECTOR);
  k_store(k, out, k_varref(k, i), k_un(k, op, k_load(k, x, k_varref(k, i))));
  k_for_end(k);

  kp_io io = {.name = "t", .dtype = dt, .rank = 1, .dims = NULL};
  kp_bufid in = -1;
  for (int b = 0; b < p->bufs.len; b++)
    if (p->bufs.data[b].kind == KP_BUF_INPUT && p->bufs.data[b].dtype == dt) in = b;
  if (in < 0) {
    NN_PUSH(a, p->inputs, io);
    kp_buf bi = {.kind = KP_BUF_INPUT, .dtype = dt, .elems = n, .index = p->inputs.len - 1};
    NN_PUSH(a, p->bufs, bi);
    in = p->bufs.len - 1;
  }
  NN_PUSH(a, p->outputs, io);
  kp_buf bo = {.kind = KP_BUF_OUTPUT, .dtype = dt, .elems = n, .index = p->outputs.len - 1};
  NN_PUSH(a, p->bufs, bo);
  kp_step s = {.k = k, .node = 0};
  s.slots = nn_alloc(a, sizeof(kp_bufid) * 2);
  s.slots[0] = in;
  s.slots[1] = p->bufs.len - 1;
  NN_PUSH(a, p->steps, s);
}

/* Compiles p, links and loads it; NULL on failure. *ir gets the IR text. */
static void *build(const kp_program *p, graph_fn *fn, char **ir) {
  nn_diag d;
  nn_diag_init(&d, stderr);
  llvm_result r;
  llvm_opts o = {.opt_level = 2, .mcpu = "native"};
  CHECK_INT(llvm_compile(p, &o, true, &r, &d), 0);
  if (d.errors) return NULL;
  lt_write_file(lt_rt_path(), rt_source, strlen(rt_source));
  *ir = strdup(r.ir_text);
  void *h = lt_load_object(&r, fn);
  llvm_result_free(&r);
  remove(lt_rt_path());
  return h;
}

/* ---- measuring ------------------------------------------------------------ */

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* The error of got against the exact value ref, in ulps of the binary
 * format with `mant` fraction bits and minimum normal exponent emin
 * (f32: 23, -126; f16: 10, -14; bf16: 7, -126); HUGE_VAL when a special
 * value differs. maxv is the largest finite value of the format. */
static double ulp_err(double got, double ref, int mant, int emin, double maxv) {
  if (isnan(ref) || isnan(got)) return isnan(ref) && isnan(got) ? 0 : HUGE_VAL;
  double r = ref;
  /* values that round to ±inf in the format */
  double top = ldexp(maxv, 0) + ldexp(1, ilogb(maxv) - mant - 1);
  if (fabs(r) >= top) r = copysign(INFINITY, r);
  if (isinf(r) || isinf(got)) return got == r ? 0 : HUGE_VAL;
  if (got == 0 && r == 0) return signbit(got) == signbit(r) ? 0 : HUGE_VAL;
  int e = r == 0 ? emin : ilogb(r);
  if (e < emin) e = emin;
  return fabs(got - r) / ldexp(1, e - mant);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_u64(void) { return lt_xorshift(&rng); }

/* The f32 inputs (see the file comment); returns their count. */
static int64_t make_inputs(float **out, uint32_t stride) {
  static const float specials[] =
      {0.0f,           -0.0f,         INFINITY,       -INFINITY,   NAN,
       -NAN,           0x1p-149f,     -0x1p-149f,     FLT_MIN,     -FLT_MIN,
       FLT_MAX,        -FLT_MAX,      1.0f,           -1.0f,       0x1.fffffep-1f,
       0x1.000002p+0f, 88.72283f,     88.72284f,      88.7229f,    89.0f,
       -87.33654f,     -103.27893f,   -103.97208f,    -103.97209f, -104.0f,
       -150.0f,        0x1p-25f,      -0x1p-25f,      0x1p-24f,    0.5625f,
       -0.5625f,       1.0f,          0x1.fffffep-1f, 3.92f,       4.0f,
       9.0f,           9.1f,          -0.99999994f,   -0.5f,       2.0f,
       0x1.6a09e6p-1f, 0x1.6a09e6p+0f};
  int64_t n_spec = NN_ARRAY_LEN(specials), n_rand = 1 << 18;
  int64_t n_stride = (int64_t)((0x100000000ull + stride - 1) / stride);
  int64_t n = n_spec + n_rand + n_stride;
  float *x = malloc(sizeof(float) * (size_t)n);
  NN_ASSERT(x);
  int64_t k = 0;
  for (int64_t i = 0; i < n_spec; i++) x[k++] = specials[i];
  for (int64_t i = 0; i < n_rand; i++)
    x[k++] = (float)(-12.0 + 24.0 * (double)(next_u64() >> 11) * 0x1p-53);
  for (uint64_t u = 0; u < 0x100000000ull; u += stride) x[k++] = from_bits((uint32_t)u);
  *out = x;
  return k;
}

/* ---- narrow types ------------------------------------------------------- */

static float f16_to_float(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  float v = e == 0    ? ldexpf((float)m, -24)
            : e == 31 ? (m ? NAN : INFINITY)
                      : ldexpf((float)(m | 1024), e - 25);
  return h & 0x8000 ? -v : v;
}

static void test_narrow(void) {
  nn_arena *a = nn_arena_new();
  kp_program *p = nn_alloc(a, sizeof *p);
  p->arena = a;
  enum { N16 = 65536 };
  for (int f = 0; f < NF; f++) {
    add_kernel(p, funcs[f].op, NN_DT_F16, N16);
    add_kernel(p, funcs[f].op, NN_DT_BF16, N16);
  }
  graph_fn fn;
  char *ir = NULL;
  void *h = build(p, &fn, &ir);
  free(ir);
  if (!h) {
    nn_arena_free(a);
    return;
  }
  uint16_t *in = malloc(2 * N16);
  uint16_t *out = malloc((size_t)2 * N16 * 2 * NF);
  NN_ASSERT(in && out);
  for (int i = 0; i < N16; i++) in[i] = (uint16_t)i;
  void *ins[2] = {in, in}, *outs[2 * NF];
  for (int i = 0; i < 2 * NF; i++) outs[i] = out + (size_t)i * N16;
  CHECK_INT(fn(ins, outs, NULL, NULL, NULL, NULL, NULL, NULL), 0);
  for (int f = 0; f < NF; f++) {
    double worst[2] = {0, 0};
    for (int t = 0; t < 2; t++) {
      const uint16_t *o = out + (size_t)(2 * f + t) * N16;
      for (int i = 0; i < N16; i++) {
        float x = t ? from_bits((uint32_t)i << 16) : f16_to_float((uint16_t)i);
        float y = t ? from_bits((uint32_t)o[i] << 16) : f16_to_float(o[i]);
        double e = t ? ulp_err(y, funcs[f].ref(x), 7, -126, 0x1.fep127)
                     : ulp_err(y, funcs[f].ref(x), 10, -14, 65504.0);
        if (e > worst[t]) worst[t] = e;
      }
    }
    printf("  %-6s f16 max %.3f ulp, bf16 max %.3f ulp\n", funcs[f].name, worst[0], worst[1]);
    CHECK(worst[0] <= 1.0);
    CHECK(worst[1] <= 1.0);
  }
  free(in);
  free(out);
  dlclose(h);
  nn_arena_free(a);
}

/* ---- f32 ----------------------------------------------------------------- */

static void test_f32(uint32_t stride) {
  float *x;
  int64_t n = make_inputs(&x, stride);
  nn_arena *a = nn_arena_new();
  kp_program *p = nn_alloc(a, sizeof *p);
  p->arena = a;
  for (int f = 0; f < NF; f++) add_kernel(p, funcs[f].op, NN_DT_F32, n);
  graph_fn fn;
  char *ir = NULL;
  void *h = build(p, &fn, &ir);
  if (!h) {
    free(ir);
    free(x);
    nn_arena_free(a);
    return;
  }
  /* vectorized, with no call left to a scalar math function */
  CHECK(strstr(ir, "<4 x float>") || strstr(ir, "<8 x float>") || strstr(ir, "<16 x float>"));
  static const char *const calls[] = {"@expf", "@logf",      "@log1pf",   "@tanhf",
                                      "@erff", "@llvm.exp.", "@llvm.log."};
  for (size_t i = 0; i < NN_ARRAY_LEN(calls); i++)
    if (strstr(ir, calls[i])) {
      fprintf(stderr, "the IR still calls %s\n", calls[i]);
      CHECK(false);
    }
  free(ir);

  float *out = malloc(sizeof(float) * (size_t)n * NF);
  NN_ASSERT(out);
  void *ins[1] = {x}, *outs[NF];
  for (int f = 0; f < NF; f++) outs[f] = out + (size_t)f * (size_t)n;
  CHECK_INT(fn(ins, outs, NULL, NULL, NULL, NULL, NULL, NULL), 0);
  for (int f = 0; f < NF; f++) {
    const float *o = out + (size_t)f * (size_t)n;
    double worst = 0;
    float worst_x = 0;
    for (int64_t i = 0; i < n; i++) {
      double e = ulp_err(o[i], funcs[f].ref(x[i]), 23, -126, FLT_MAX);
      if (e > worst) {
        worst = e;
        worst_x = x[i];
      }
    }
    printf("  %-6s f32 max %.3f ulp (at %a; bound %.1f) over %lld inputs\n", funcs[f].name, worst,
           (double)worst_x, funcs[f].max_ulp, (long long)n);
    CHECK(worst <= funcs[f].max_ulp);
  }
  /* a few exact values */
  CHECK(out[0] == 1.0f && out[2] == INFINITY && out[3] == 0.0f); /* exp */
  CHECK(out[n + 0] == -INFINITY && isnan(out[n + 9]));           /* log(0), log(-FLT_MIN) */
  CHECK(signbit(out[2 * n + 1]) && out[2 * n + 1] == 0.0f);      /* log1p(-0) */
  CHECK(out[3 * n + 2] == 1.0f && out[3 * n + 3] == -1.0f);      /* tanh(±inf) */
  CHECK(out[4 * n + 2] == 1.0f && signbit(out[4 * n + 1]));      /* erf */
  free(out);
  free(x);
  dlclose(h);
  nn_arena_free(a);
}

int main(void) {
  lt_setup("vmath", NULL);
  const char *s = getenv("NNCC_VMATH_STRIDE");
  long stride = s && *s ? strtol(s, NULL, 10) : 4099;
  if (stride < 1) stride = 1;
  test_f32((uint32_t)stride);
  test_narrow();
  lt_cleanup();
  return unit_report("vmath");
}
