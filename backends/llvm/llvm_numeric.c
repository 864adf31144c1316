/* llvm_numeric.c — the scalar building blocks of llvm_kernel.c: dtype →
 * LLVM type mapping, f16/bf16 conversions done with integer operations (no
 * libcalls, so loops holding them still vectorize), calls to intrinsics,
 * libm and the integer power helper, and inline f32 exp/log/log1p/tanh/erf
 * (polynomials, also vectorizable).
 */
#include <math.h>
#include <string.h>

#include "llvm_internal.h"

/* ---- types --------------------------------------------------------------- */

bool llvm_is_fp(nn_dtype t) {
  return t == NN_DT_F32 || t == NN_DT_F16 || t == NN_DT_BF16 || t == NN_DT_F64;
}
bool llvm_is_narrow(nn_dtype t) { return t == NN_DT_F16 || t == NN_DT_BF16; }
bool llvm_is_unsigned(nn_dtype t) { return t == NN_DT_U8 || t == NN_DT_BOOL; }

/* The register type of a dtype, or NULL when it has none. */
LLVMTypeRef llvm_reg_type(llvm_mod *lm, nn_dtype t) {
  switch (t) {
  case NN_DT_F32:
  case NN_DT_F16:
  case NN_DT_BF16: return lm->t_f32;
  case NN_DT_F64: return lm->t_f64;
  case NN_DT_I64: return lm->t_i64;
  case NN_DT_I32: return lm->t_i32;
  case NN_DT_I16: return lm->t_i16;
  case NN_DT_I8:
  case NN_DT_U8: return lm->t_i8;
  case NN_DT_BOOL: return lm->t_i1;
  default: return NULL;
  }
}

/* The in-memory element type of a dtype, or NULL. */
LLVMTypeRef llvm_mem_type(llvm_mod *lm, nn_dtype t) {
  if (llvm_is_narrow(t)) return lm->t_i16;
  if (t == NN_DT_BOOL) return lm->t_i8;
  return llvm_reg_type(lm, t);
}

static LLVMValueRef ci32(kctx *c, uint32_t v) { return LLVMConstInt(c->lm->t_i32, v, 0); }

/* ---- f16 / bf16 conversions (bit manipulation, round to nearest even) ---- */

/* i16 half bits → float. */
LLVMValueRef llvm_f16_to_f32(kctx *c, LLVMValueRef h) {
  LLVMBuilderRef b = c->b;
  LLVMTypeRef i32 = c->lm->t_i32, f32 = c->lm->t_f32;
  LLVMValueRef x = LLVMBuildZExt(b, h, i32, "");
  LLVMValueRef em = LLVMBuildShl(b, LLVMBuildAnd(b, x, ci32(c, 0x7fff), ""), ci32(c, 13), "");
  LLVMValueRef ex = LLVMBuildAnd(b, em, ci32(c, 0x7c00u << 13), "");
  LLVMValueRef norm = LLVMBuildAdd(b, em, ci32(c, 112u << 23), "");  /* rebias 15 → 127 */
  LLVMValueRef inf = LLVMBuildAdd(b, norm, ci32(c, 112u << 23), ""); /* exponent 255 */
  /* subnormal: let the FPU normalize m * 2^-24 */
  LLVMValueRef den =
      LLVMBuildFSub(b, LLVMBuildBitCast(b, LLVMBuildAdd(b, norm, ci32(c, 1u << 23), ""), f32, ""),
                    LLVMConstReal(f32, 0x1p-14), "");
  den = LLVMBuildBitCast(b, den, i32, "");
  LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, ex, ci32(c, 0), ""), den, norm,
                                   "");
  r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, ex, ci32(c, 0x7c00u << 13), ""), inf, r, "");
  LLVMValueRef sign = LLVMBuildShl(b, LLVMBuildAnd(b, x, ci32(c, 0x8000), ""), ci32(c, 16), "");
  return LLVMBuildBitCast(b, LLVMBuildOr(b, r, sign, ""), f32, "");
}

/* float → i16 half bits, rounding to nearest even; NaN → quiet NaN. */
LLVMValueRef llvm_f32_to_f16(kctx *c, LLVMValueRef f) {
  LLVMBuilderRef b = c->b;
  LLVMTypeRef i32 = c->lm->t_i32, f32 = c->lm->t_f32;
  LLVMValueRef u = LLVMBuildBitCast(b, f, i32, "");
  LLVMValueRef sign = LLVMBuildAnd(b, u, ci32(c, 0x80000000u), "");
  LLVMValueRef a = LLVMBuildXor(b, u, sign, "");
  /* overflow to inf, or NaN */
  LLVMValueRef big = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGT, a, ci32(c, 0x7f800000u), ""),
                                     ci32(c, 0x7e00), ci32(c, 0x7c00), "");
  /* subnormal or zero result: adding 0.5 aligns the 10 mantissa bits at the
   * bottom, and the FPU rounds to nearest even */
  const uint32_t magic = (uint32_t)((127 - 15) + (23 - 10) + 1) << 23;
  LLVMValueRef sum = LLVMBuildFAdd(b, LLVMBuildBitCast(b, a, f32, ""),
                                   LLVMBuildBitCast(b, ci32(c, magic), f32, ""), "");
  LLVMValueRef small = LLVMBuildSub(b, LLVMBuildBitCast(b, sum, i32, ""), ci32(c, magic), "");
  /* normal result: rebias and round by hand */
  LLVMValueRef odd = LLVMBuildAnd(b, LLVMBuildLShr(b, a, ci32(c, 13), ""), ci32(c, 1), "");
  LLVMValueRef n = LLVMBuildAdd(b, a, ci32(c, ((uint32_t)(15 - 127) << 23) + 0xfff), "");
  n = LLVMBuildLShr(b, LLVMBuildAdd(b, n, odd, ""), ci32(c, 13), "");
  LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntULT, a, ci32(c, 113u << 23), ""),
                                   small, n, "");
  r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGE, a, ci32(c, (127u + 16) << 23), ""), big, r,
                      "");
  r = LLVMBuildOr(b, r, LLVMBuildLShr(b, sign, ci32(c, 16), ""), "");
  return LLVMBuildTrunc(b, r, c->lm->t_i16, "");
}

/* i16 bfloat bits → float (exact). */
LLVMValueRef llvm_bf16_to_f32(kctx *c, LLVMValueRef h) {
  LLVMValueRef x = LLVMBuildShl(c->b, LLVMBuildZExt(c->b, h, c->lm->t_i32, ""), ci32(c, 16), "");
  return LLVMBuildBitCast(c->b, x, c->lm->t_f32, "");
}

/* float → i16 bfloat bits, rounding to nearest even; NaN stays a quiet NaN. */
LLVMValueRef llvm_f32_to_bf16(kctx *c, LLVMValueRef f) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef u = LLVMBuildBitCast(b, f, c->lm->t_i32, "");
  LLVMValueRef odd = LLVMBuildAnd(b, LLVMBuildLShr(b, u, ci32(c, 16), ""), ci32(c, 1), "");
  LLVMValueRef r = LLVMBuildLShr(b,
                                 LLVMBuildAdd(b, LLVMBuildAdd(b, u, ci32(c, 0x7fff), ""), odd, ""),
                                 ci32(c, 16), "");
  LLVMValueRef qnan = LLVMBuildOr(b, LLVMBuildLShr(b, u, ci32(c, 16), ""), ci32(c, 0x40), "");
  LLVMValueRef isnan = LLVMBuildICmp(b, LLVMIntUGT, LLVMBuildAnd(b, u, ci32(c, 0x7fffffff), ""),
                                     ci32(c, 0x7f800000), "");
  return LLVMBuildTrunc(b, LLVMBuildSelect(b, isnan, qnan, r, ""), c->lm->t_i16, "");
}

/* Rounds a float register value to the precision of dtype t (f16/bf16);
 * other dtypes pass through. */
LLVMValueRef llvm_narrow(kctx *c, nn_dtype t, LLVMValueRef v) {
  if (t == NN_DT_F16) return llvm_f16_to_f32(c, llvm_f32_to_f16(c, v));
  if (t == NN_DT_BF16) return llvm_bf16_to_f32(c, llvm_f32_to_bf16(c, v));
  return v;
}

/* ---- calls --------------------------------------------------------------- */

void llvm_fn_attr(llvm_mod *lm, LLVMValueRef fn, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(lm->ctx, kind, 0));
}

void llvm_param_attr(llvm_mod *lm, LLVMValueRef fn, unsigned i, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, i + 1, LLVMCreateEnumAttribute(lm->ctx, kind, 0));
}

/* Calls the overloaded intrinsic `name` (e.g. "llvm.exp") at type ty. */
LLVMValueRef llvm_intrin(kctx *c, const char *name, LLVMTypeRef ty, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  NN_ASSERT(id != 0);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->lm->mod, id, &ty, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(c->lm->ctx, id, &ty, 1);
  return LLVMBuildCall2(c->b, fty, f, args, (unsigned)n, "");
}

/* An intrinsic overloaded on its result and its operand, e.g.
 * llvm.fptosi.sat.i64.f32. */
LLVMValueRef llvm_intrin_conv(kctx *c, const char *name, LLVMTypeRef to, LLVMValueRef a) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  NN_ASSERT(id != 0);
  LLVMTypeRef tys[2] = {to, LLVMTypeOf(a)};
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->lm->mod, id, tys, 2);
  LLVMTypeRef fty = LLVMIntrinsicGetType(c->lm->ctx, id, tys, 2);
  return LLVMBuildCall2(c->b, fty, f, &a, 1, "");
}

LLVMValueRef llvm_intrin1(kctx *c, const char *name, LLVMValueRef a) {
  return llvm_intrin(c, name, LLVMTypeOf(a), &a, 1);
}

/* Calls the C library function float f(float) / double f(double). */
LLVMValueRef llvm_libm1(kctx *c, const char *fname, const char *dname, LLVMValueRef a) {
  LLVMTypeRef ty = LLVMTypeOf(a);
  const char *name = ty == c->lm->t_f64 ? dname : fname;
  LLVMTypeRef fty = LLVMFunctionType(ty, &ty, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(c->lm->mod, name);
  if (!f) {
    f = LLVMAddFunction(c->lm->mod, name, fty);
    llvm_fn_attr(c->lm, f, "nounwind");
    llvm_fn_attr(c->lm, f, "readnone");
    llvm_fn_attr(c->lm, f, "willreturn");
  }
  return LLVMBuildCall2(c->b, fty, f, &a, 1, "");
}

/* The helper `iN nncc.ipow.iN(iN base, iN exp)` (nncc.upow for unsigned
 * types): exponentiation by squaring, wrapping like repeated multiplication.
 * A negative exponent gives 1/base truncated: 1 for base 1, ±1 for base -1,
 * 0 otherwise. Built once per type. */
LLVMValueRef llvm_ipow_fn(kctx *c, LLVMTypeRef ty, bool uns, LLVMTypeRef *fty_out) {
  llvm_mod *lm = c->lm;
  char name[32];
  snprintf(name, sizeof name, "nncc.%cpow.i%u", uns ? 'u' : 'i', LLVMGetIntTypeWidth(ty));
  LLVMTypeRef ps[2] = {ty, ty};
  LLVMTypeRef fty = LLVMFunctionType(ty, ps, 2, 0);
  *fty_out = fty;
  LLVMValueRef f = LLVMGetNamedFunction(lm->mod, name);
  if (f) return f;
  f = LLVMAddFunction(lm->mod, name, fty);
  LLVMSetLinkage(f, LLVMInternalLinkage);
  llvm_fn_attr(lm, f, "nounwind");
  LLVMBuilderRef b = LLVMCreateBuilderInContext(lm->ctx);
  LLVMValueRef base = LLVMGetParam(f, 0), e = LLVMGetParam(f, 1);
  LLVMValueRef zero = LLVMConstInt(ty, 0, 0), one = LLVMConstInt(ty, 1, 0);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(lm->ctx, f, "entry");
  LLVMBasicBlockRef neg = LLVMAppendBasicBlockInContext(lm->ctx, f, "neg");
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(lm->ctx, f, "loop");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(lm->ctx, f, "done");
  LLVMPositionBuilderAtEnd(b, entry);
  LLVMValueRef isneg = uns ? LLVMConstInt(lm->t_i1, 0, 0)
                           : LLVMBuildICmp(b, LLVMIntSLT, e, zero, "");
  LLVMBuildCondBr(b, isneg, neg, head);

  LLVMPositionBuilderAtEnd(b, neg);
  LLVMValueRef isone = LLVMBuildICmp(b, LLVMIntEQ, base, one, "");
  LLVMValueRef ism1 = LLVMBuildICmp(b, LLVMIntEQ, base, LLVMConstAllOnes(ty), "");
  LLVMValueRef odd = LLVMBuildTrunc(b, e, lm->t_i1, "");
  LLVMValueRef m1 = LLVMBuildSelect(b, odd, LLVMConstAllOnes(ty), one, "");
  LLVMBuildRet(b, LLVMBuildSelect(b, isone, one, LLVMBuildSelect(b, ism1, m1, zero, ""), ""));

  /* loop: r *= (e & 1) ? x : 1; x *= x; e >>= 1 while e != 0 */
  LLVMPositionBuilderAtEnd(b, head);
  LLVMValueRef r = LLVMBuildPhi(b, ty, "r"), x = LLVMBuildPhi(b, ty, "x"),
               ee = LLVMBuildPhi(b, ty, "e");
  LLVMValueRef bit = LLVMBuildTrunc(b, ee, lm->t_i1, "");
  LLVMValueRef r2 = LLVMBuildSelect(b, bit, LLVMBuildMul(b, r, x, ""), r, "");
  LLVMValueRef x2 = LLVMBuildMul(b, x, x, "");
  LLVMValueRef e2 = LLVMBuildLShr(b, ee, one, "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, e2, zero, ""), done, head);
  LLVMValueRef rin[2] = {one, r2}, xin[2] = {base, x2}, ein[2] = {e, e2};
  LLVMBasicBlockRef from[2] = {entry, head};
  LLVMAddIncoming(r, rin, from, 2);
  LLVMAddIncoming(x, xin, from, 2);
  LLVMAddIncoming(ee, ein, from, 2);

  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRet(b, r2);
  LLVMDisposeBuilder(b);
  return f;
}

/* ---- inline f32 math --------------------------------------------------------
 *
 * exp, log, log1p, tanh and erf of f32 (and of f16/bf16, which compute in
 * f32) are emitted as straight-line IR — range reduction, a polynomial,
 * selects for the special cases, no branches and no calls — so loops
 * holding them (softmax, sigmoid, silu, gelu, tanh, log-softmax) still
 * vectorize. f64 keeps libm. The polynomial coefficients come from
 * tests/unit/vmath_fit.py (near-minimax fits rounded to f32); the forms and
 * intervals are described there. tests/unit/test_vmath.c measures the
 * error against libm in double precision over a sweep of every binade;
 * the bounds it asserts are stated there (at most 1-3 ulp).
 *
 * Every polynomial is evaluated with Horner's rule in llvm.fmuladd, which
 * becomes one FMA where the target has it. The constants that multiply an
 * integer (ln 2 in exp and log) are split Cody-Waite style into a high part
 * with 16 significant bits (so k * hi is exact for |k| < 256 even without
 * FMA) and a low part. */

static LLVMValueRef cf(kctx *c, double v) { return LLVMConstReal(c->lm->t_f32, v); }

static LLVMValueRef fmuladd(kctx *c, LLVMValueRef a, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef args[3] = {a, x, y};
  return llvm_intrin(c, "llvm.fmuladd", c->lm->t_f32, args, 3);
}

/* coef[0] + coef[1] x + ... + coef[n-1] x^(n-1). */
static LLVMValueRef poly(kctx *c, LLVMValueRef x, const float *coef, int n) {
  LLVMValueRef r = cf(c, coef[n - 1]);
  for (int i = n - 2; i >= 0; i--) r = fmuladd(c, r, x, cf(c, coef[i]));
  return r;
}

static LLVMValueRef fcmp(kctx *c, LLVMRealPredicate p, LLVMValueRef a, double v) {
  return LLVMBuildFCmp(c->b, p, a, cf(c, v), "");
}

static LLVMValueRef sel(kctx *c, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, cond, a, b, "");
}

#define LN2_HI 0x1.62e4p-1           /* ln 2, first 16 bits */
#define LN2_LO 0x1.7f7d1cf79abcap-20 /* ln 2 - LN2_HI, as an f32 */

/* e^r - 1 - r = r^2 q(r) on |r| <= ln(2)/2. */
static const float exp_q[] = {0x1.fffffcp-2f, 0x1.555492p-3f, 0x1.5558aap-5f, 0x1.123996p-7f,
                              0x1.6a563cp-10f};
/* log(1 + f) - f = f^2 q(f) on sqrt(1/2) - 1 <= f < sqrt(2) - 1. */
static const float log_q[] = {-0x1.fffff8p-2f, 0x1.55555p-2f,   -0x1.000438p-2f,
                              0x1.99a428p-3f,  -0x1.542402p-3f, 0x1.226b2ap-3f,
                              -0x1.0f4f0ep-3f, 0x1.087e6p-3f,   -0x1.383ebcp-4f};
/* tanh(x) - x = x^3 q(x^2) on |x| <= TANH_T. */
#define TANH_T 0.5625
static const float tanh_q[] = {-0x1.555554p-2f, 0x1.111084p-3f,  -0x1.b9f496p-5f,
                               0x1.63cd7ep-6f,  -0x1.0d34d2p-7f, 0x1.1d3636p-9f};
/* erf(x) - ERF_C x = x q(x^2) on |x| <= ERF_T; ERF_C is 2/sqrt(pi) in f32. */
#define ERF_T 1.0
#define ERF_C 0x1.20dd76p+0
static const float erf_q[] = {-0x1.f7ff04p-25f, -0x1.812746p-2f, 0x1.ce2eeap-4f,
                              -0x1.b8269cp-6f,  0x1.56041ap-8f,  -0x1.bafd0ep-11f,
                              0x1.cd9f6ep-14f,  -0x1.2adf1cp-17f};
/* -log(erfc(x)) = Q(x - 2) on ERF_T <= x <= 4 (erf rounds to 1 beyond). */
static const float erf_tail[] = {0x1.575b32p+2f,  0x1.1ac322p+2f,  0x1.d8f674p-1f,  0x1.0e2ddep-6f,
                                 -0x1.d2b518p-9f, 0x1.526e74p-11f, -0x1.e962dp-13f, 0x1.326feap-14f,
                                 0x1.913334p-14f, 0x1.33bc32p-18f, -0x1.3e201ap-16f};

/* 2^k for an i32 k in [-126, 127], as a float. */
static LLVMValueRef pow2i(kctx *c, LLVMValueRef k) {
  LLVMValueRef e = LLVMBuildAdd(c->b, k, ci32(c, 127), "");
  return LLVMBuildBitCast(c->b, LLVMBuildShl(c->b, e, ci32(c, 23), ""), c->lm->t_f32, "");
}

/* e^x: x = k ln2 + r with k = round(x / ln 2), e^r from the polynomial,
 * then times 2^k in two steps (2^(k/2) first is exact, so the result is
 * rounded once, also when it is subnormal). x is clamped to [-104, 89]
 * first, where e^x is 0 and +inf in f32 (and NaN becomes 89, then is
 * put back at the end). */
LLVMValueRef llvm_exp_f32(kctx *c, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef xc = sel(c, fcmp(c, LLVMRealOLT, x, 89.0), x, cf(c, 89.0));
  xc = sel(c, fcmp(c, LLVMRealOGT, xc, -104.0), xc, cf(c, -104.0));
  LLVMValueRef kf = llvm_intrin1(c, "llvm.roundeven",
                                 LLVMBuildFMul(b, xc, cf(c, 0x1.715476p+0), ""));
  LLVMValueRef r = fmuladd(c, kf, cf(c, -LN2_HI), xc);
  r = fmuladd(c, kf, cf(c, -LN2_LO), r);
  LLVMValueRef p = fmuladd(c, LLVMBuildFMul(b, r, r, ""), poly(c, r, exp_q, NN_ARRAY_LEN(exp_q)),
                           r);
  p = LLVMBuildFAdd(b, p, cf(c, 1.0), "");
  LLVMValueRef k = LLVMBuildFPToSI(b, kf, c->lm->t_i32, "");
  LLVMValueRef k1 = LLVMBuildAShr(b, k, ci32(c, 1), "");
  LLVMValueRef k2 = LLVMBuildSub(b, k, k1, "");
  p = LLVMBuildFMul(b, LLVMBuildFMul(b, p, pow2i(c, k1), ""), pow2i(c, k2), "");
  return sel(c, fcmp(c, LLVMRealUNO, x, 0.0), x, p);
}

/* log(u) + tail for tail much smaller than the result (log1p's rounding
 * correction; 0 for log). u = 2^e m with m in [sqrt(1/2), sqrt(2)) (read
 * from the bits, subnormals scaled by 2^23 first), then
 * log(u) = e ln2 + f + f^2 q(f) with f = m - 1 (exact), summed smallest
 * terms first. Special values of u: 0 → -inf, +inf → +inf, negative or
 * NaN → NaN. */
static LLVMValueRef log_core(kctx *c, LLVMValueRef u, LLVMValueRef tail) {
  LLVMBuilderRef b = c->b;
  LLVMTypeRef i32 = c->lm->t_i32, f32 = c->lm->t_f32;
  const uint32_t sqrt_half = 0x3f3504f3; /* f32 bits of sqrt(1/2) */
  LLVMValueRef sub = fcmp(c, LLVMRealOLT, u, 0x1p-126);
  LLVMValueRef us = sel(c, sub, LLVMBuildFMul(b, u, cf(c, 0x1p23), ""), u);
  LLVMValueRef t = LLVMBuildSub(b, LLVMBuildBitCast(b, us, i32, ""), ci32(c, sqrt_half), "");
  LLVMValueRef e = LLVMBuildAdd(b, LLVMBuildAShr(b, t, ci32(c, 23), ""),
                                sel(c, sub, ci32(c, (uint32_t)-23), ci32(c, 0)), "");
  LLVMValueRef m = LLVMBuildAdd(b, LLVMBuildAnd(b, t, ci32(c, 0x7fffff), ""), ci32(c, sqrt_half),
                                "");
  LLVMValueRef f = LLVMBuildFSub(b, LLVMBuildBitCast(b, m, f32, ""), cf(c, 1.0), "");
  LLVMValueRef ef = LLVMBuildSIToFP(b, e, f32, "");
  LLVMValueRef r = fmuladd(c, ef, cf(c, LN2_LO), tail);
  r = fmuladd(c, LLVMBuildFMul(b, f, f, ""), poly(c, f, log_q, NN_ARRAY_LEN(log_q)), r);
  r = LLVMBuildFAdd(b, r, f, "");
  r = fmuladd(c, ef, cf(c, LN2_HI), r);
  r = sel(c, fcmp(c, LLVMRealOEQ, u, INFINITY), u, r);
  r = sel(c, fcmp(c, LLVMRealOEQ, u, 0.0), cf(c, -INFINITY), r);
  return sel(c, fcmp(c, LLVMRealULT, u, 0.0), cf(c, NAN), r);
}

LLVMValueRef llvm_log_f32(kctx *c, LLVMValueRef x) { return log_core(c, x, cf(c, 0.0)); }

/* log(1 + x) = log(u) + d / u with u = fl(1 + x) and d = (1 + x) - u, the
 * rounding error of u, computed exactly: x - (u - 1) when x <= 1 (u - 1 is
 * exact there), 1 - (u - x) when x > 1. ±0 returns x (keeps the sign). */
LLVMValueRef llvm_log1p_f32(kctx *c, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef one = cf(c, 1.0);
  LLVMValueRef u = LLVMBuildFAdd(b, x, one, "");
  LLVMValueRef d_small = LLVMBuildFSub(b, x, LLVMBuildFSub(b, u, one, ""), "");
  LLVMValueRef d_big = LLVMBuildFSub(b, one, LLVMBuildFSub(b, u, x, ""), "");
  LLVMValueRef d = sel(c, fcmp(c, LLVMRealOGT, x, 1.0), d_big, d_small);
  LLVMValueRef r = log_core(c, u, LLVMBuildFDiv(b, d, u, ""));
  return sel(c, fcmp(c, LLVMRealOEQ, x, 0.0), x, r);
}

/* tanh: x + x^3 q(x^2) for |x| < TANH_T; beyond, 1 - 2 / (e^(2|x|) + 1)
 * (e^(2|x|) = inf gives exactly 1; NaN stays NaN), either with the sign of
 * x. */
LLVMValueRef llvm_tanh_f32(kctx *c, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef a = llvm_intrin1(c, "llvm.fabs", x);
  LLVMValueRef s = LLVMBuildFMul(b, x, x, "");
  LLVMValueRef small = fmuladd(c, LLVMBuildFMul(b, x, s, ""),
                               poly(c, s, tanh_q, NN_ARRAY_LEN(tanh_q)), x);
  LLVMValueRef e = llvm_exp_f32(c, LLVMBuildFAdd(b, a, a, ""));
  LLVMValueRef big =
      LLVMBuildFSub(b, cf(c, 1.0),
                    LLVMBuildFDiv(b, cf(c, 2.0), LLVMBuildFAdd(b, e, cf(c, 1.0), ""), ""), "");
  LLVMValueRef args[2] = {sel(c, fcmp(c, LLVMRealOLT, a, TANH_T), small, big),
                          x}; /* the sign also makes tanh(-0) = -0 */
  return llvm_intrin(c, "llvm.copysign", c->lm->t_f32, args, 2);
}

/* erf: ERF_C x + x q(x^2) for |x| < ERF_T; beyond, 1 - e^-Q(|x| - 2) with
 * |x| clamped to 4; either with the sign of x; NaN stays NaN. */
LLVMValueRef llvm_erf_f32(kctx *c, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef a = llvm_intrin1(c, "llvm.fabs", x);
  LLVMValueRef s = LLVMBuildFMul(b, x, x, "");
  LLVMValueRef small = fmuladd(c, x, cf(c, ERF_C),
                               LLVMBuildFMul(b, x, poly(c, s, erf_q, NN_ARRAY_LEN(erf_q)), ""));
  LLVMValueRef ac = sel(c, fcmp(c, LLVMRealOLT, a, 4.0), a, cf(c, 4.0));
  LLVMValueRef q = poly(c, LLVMBuildFSub(b, ac, cf(c, 2.0), ""), erf_tail, NN_ARRAY_LEN(erf_tail));
  LLVMValueRef big = LLVMBuildFSub(b, cf(c, 1.0), llvm_exp_f32(c, LLVMBuildFNeg(b, q, "")), "");
  LLVMValueRef args[2] = {sel(c, fcmp(c, LLVMRealOLT, a, ERF_T), small, big),
                          x}; /* the sign also makes erf(-0) = -0 */
  LLVMValueRef r = llvm_intrin(c, "llvm.copysign", c->lm->t_f32, args, 2);
  return sel(c, fcmp(c, LLVMRealUNO, x, 0.0), x, r);
}
