/* llvm_numeric.c — the scalar building blocks of llvm_kernel.c: dtype →
 * LLVM type mapping, f16/bf16 conversions done with integer operations (no
 * libcalls, so loops holding them still vectorize), and calls to
 * intrinsics, libm and the integer power helper.
 */
#include <string.h>

#include "llvm_internal.h"

/* ---- types --------------------------------------------------------------- */

bool llvm_is_fp(nn_dtype t) {
  return t == NN_DT_F32 || t == NN_DT_F16 || t == NN_DT_BF16 || t == NN_DT_F64;
}
bool llvm_is_narrow(nn_dtype t) {
  return t == NN_DT_F16 || t == NN_DT_BF16;
}
bool llvm_is_unsigned(nn_dtype t) {
  return t == NN_DT_U8 || t == NN_DT_BOOL;
}

/* The register type of a dtype, or NULL when it has none. */
LLVMTypeRef llvm_reg_type(llvm_mod *lm, nn_dtype t) {
  switch (t) {
  case NN_DT_F32:
  case NN_DT_F16:
  case NN_DT_BF16:
    return lm->t_f32;
  case NN_DT_F64:
    return lm->t_f64;
  case NN_DT_I64:
    return lm->t_i64;
  case NN_DT_I32:
    return lm->t_i32;
  case NN_DT_I16:
    return lm->t_i16;
  case NN_DT_I8:
  case NN_DT_U8:
    return lm->t_i8;
  case NN_DT_BOOL:
    return lm->t_i1;
  default:
    return NULL;
  }
}

/* The in-memory element type of a dtype, or NULL. */
LLVMTypeRef llvm_mem_type(llvm_mod *lm, nn_dtype t) {
  if (llvm_is_narrow(t))
    return lm->t_i16;
  if (t == NN_DT_BOOL)
    return lm->t_i8;
  return llvm_reg_type(lm, t);
}

static LLVMValueRef ci32(kctx *c, uint32_t v) {
  return LLVMConstInt(c->lm->t_i32, v, 0);
}

/* ---- f16 / bf16 conversions (bit manipulation, round to nearest even) ---- */

/* i16 half bits → float. */
LLVMValueRef llvm_f16_to_f32(kctx *c, LLVMValueRef h) {
  LLVMBuilderRef b = c->b;
  LLVMTypeRef i32 = c->lm->t_i32, f32 = c->lm->t_f32;
  LLVMValueRef x = LLVMBuildZExt(b, h, i32, "");
  LLVMValueRef em =
      LLVMBuildShl(b, LLVMBuildAnd(b, x, ci32(c, 0x7fff), ""), ci32(c, 13), "");
  LLVMValueRef ex = LLVMBuildAnd(b, em, ci32(c, 0x7c00u << 13), "");
  LLVMValueRef norm =
      LLVMBuildAdd(b, em, ci32(c, 112u << 23), ""); /* rebias 15 → 127 */
  LLVMValueRef inf =
      LLVMBuildAdd(b, norm, ci32(c, 112u << 23), ""); /* exponent 255 */
  /* subnormal: let the FPU normalize m * 2^-24 */
  LLVMValueRef den = LLVMBuildFSub(
      b,
      LLVMBuildBitCast(b, LLVMBuildAdd(b, norm, ci32(c, 1u << 23), ""), f32,
                       ""),
      LLVMConstReal(f32, 0x1p-14), "");
  den = LLVMBuildBitCast(b, den, i32, "");
  LLVMValueRef r = LLVMBuildSelect(
      b, LLVMBuildICmp(b, LLVMIntEQ, ex, ci32(c, 0), ""), den, norm, "");
  r = LLVMBuildSelect(
      b, LLVMBuildICmp(b, LLVMIntEQ, ex, ci32(c, 0x7c00u << 13), ""), inf, r,
      "");
  LLVMValueRef sign =
      LLVMBuildShl(b, LLVMBuildAnd(b, x, ci32(c, 0x8000), ""), ci32(c, 16), "");
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
  LLVMValueRef big = LLVMBuildSelect(
      b, LLVMBuildICmp(b, LLVMIntUGT, a, ci32(c, 0x7f800000u), ""),
      ci32(c, 0x7e00), ci32(c, 0x7c00), "");
  /* subnormal or zero result: adding 0.5 aligns the 10 mantissa bits at the
   * bottom, and the FPU rounds to nearest even */
  const uint32_t magic = (uint32_t)((127 - 15) + (23 - 10) + 1) << 23;
  LLVMValueRef sum =
      LLVMBuildFAdd(b, LLVMBuildBitCast(b, a, f32, ""),
                    LLVMBuildBitCast(b, ci32(c, magic), f32, ""), "");
  LLVMValueRef small =
      LLVMBuildSub(b, LLVMBuildBitCast(b, sum, i32, ""), ci32(c, magic), "");
  /* normal result: rebias and round by hand */
  LLVMValueRef odd =
      LLVMBuildAnd(b, LLVMBuildLShr(b, a, ci32(c, 13), ""), ci32(c, 1), "");
  LLVMValueRef n =
      LLVMBuildAdd(b, a, ci32(c, ((uint32_t)(15 - 127) << 23) + 0xfff), "");
  n = LLVMBuildLShr(b, LLVMBuildAdd(b, n, odd, ""), ci32(c, 13), "");
  LLVMValueRef r = LLVMBuildSelect(
      b, LLVMBuildICmp(b, LLVMIntULT, a, ci32(c, 113u << 23), ""), small, n,
      "");
  r = LLVMBuildSelect(
      b, LLVMBuildICmp(b, LLVMIntUGE, a, ci32(c, (127u + 16) << 23), ""), big,
      r, "");
  r = LLVMBuildOr(b, r, LLVMBuildLShr(b, sign, ci32(c, 16), ""), "");
  return LLVMBuildTrunc(b, r, c->lm->t_i16, "");
}

/* i16 bfloat bits → float (exact). */
LLVMValueRef llvm_bf16_to_f32(kctx *c, LLVMValueRef h) {
  LLVMValueRef x = LLVMBuildShl(c->b, LLVMBuildZExt(c->b, h, c->lm->t_i32, ""),
                                ci32(c, 16), "");
  return LLVMBuildBitCast(c->b, x, c->lm->t_f32, "");
}

/* float → i16 bfloat bits, rounding to nearest even; NaN stays a quiet NaN. */
LLVMValueRef llvm_f32_to_bf16(kctx *c, LLVMValueRef f) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef u = LLVMBuildBitCast(b, f, c->lm->t_i32, "");
  LLVMValueRef odd =
      LLVMBuildAnd(b, LLVMBuildLShr(b, u, ci32(c, 16), ""), ci32(c, 1), "");
  LLVMValueRef r = LLVMBuildLShr(
      b, LLVMBuildAdd(b, LLVMBuildAdd(b, u, ci32(c, 0x7fff), ""), odd, ""),
      ci32(c, 16), "");
  LLVMValueRef qnan =
      LLVMBuildOr(b, LLVMBuildLShr(b, u, ci32(c, 16), ""), ci32(c, 0x40), "");
  LLVMValueRef isnan =
      LLVMBuildICmp(b, LLVMIntUGT, LLVMBuildAnd(b, u, ci32(c, 0x7fffffff), ""),
                    ci32(c, 0x7f800000), "");
  return LLVMBuildTrunc(b, LLVMBuildSelect(b, isnan, qnan, r, ""), c->lm->t_i16,
                        "");
}

/* Rounds a float register value to the precision of dtype t (f16/bf16);
 * other dtypes pass through. */
LLVMValueRef llvm_narrow(kctx *c, nn_dtype t, LLVMValueRef v) {
  if (t == NN_DT_F16)
    return llvm_f16_to_f32(c, llvm_f32_to_f16(c, v));
  if (t == NN_DT_BF16)
    return llvm_bf16_to_f32(c, llvm_f32_to_bf16(c, v));
  return v;
}

/* ---- calls --------------------------------------------------------------- */

void llvm_fn_attr(llvm_mod *lm, LLVMValueRef fn, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(lm->ctx, kind, 0));
}

void llvm_param_attr(llvm_mod *lm, LLVMValueRef fn, unsigned i,
                     const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, i + 1, LLVMCreateEnumAttribute(lm->ctx, kind, 0));
}

/* Calls the overloaded intrinsic `name` (e.g. "llvm.exp") at type ty. */
LLVMValueRef llvm_intrin(kctx *c, const char *name, LLVMTypeRef ty,
                         LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  NN_ASSERT(id != 0);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->lm->mod, id, &ty, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(c->lm->ctx, id, &ty, 1);
  return LLVMBuildCall2(c->b, fty, f, args, (unsigned)n, "");
}

/* An intrinsic overloaded on its result and its operand, e.g.
 * llvm.fptosi.sat.i64.f32. */
LLVMValueRef llvm_intrin_conv(kctx *c, const char *name, LLVMTypeRef to,
                              LLVMValueRef a) {
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
LLVMValueRef llvm_libm1(kctx *c, const char *fname, const char *dname,
                        LLVMValueRef a) {
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
LLVMValueRef llvm_ipow_fn(kctx *c, LLVMTypeRef ty, bool uns,
                          LLVMTypeRef *fty_out) {
  llvm_mod *lm = c->lm;
  char name[32];
  snprintf(name, sizeof name, "nncc.%cpow.i%u", uns ? 'u' : 'i',
           LLVMGetIntTypeWidth(ty));
  LLVMTypeRef ps[2] = {ty, ty};
  LLVMTypeRef fty = LLVMFunctionType(ty, ps, 2, 0);
  *fty_out = fty;
  LLVMValueRef f = LLVMGetNamedFunction(lm->mod, name);
  if (f)
    return f;
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
  LLVMValueRef ism1 =
      LLVMBuildICmp(b, LLVMIntEQ, base, LLVMConstAllOnes(ty), "");
  LLVMValueRef odd = LLVMBuildTrunc(b, e, lm->t_i1, "");
  LLVMValueRef m1 = LLVMBuildSelect(b, odd, LLVMConstAllOnes(ty), one, "");
  LLVMBuildRet(b, LLVMBuildSelect(b, isone, one,
                                  LLVMBuildSelect(b, ism1, m1, zero, ""), ""));

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
