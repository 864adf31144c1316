/* llvm_kernel.c — one kernel's loop nest as LLVM IR.
 *
 * A kernel becomes two functions. The body
 *   void kN.body(T0 *s0, T1 *s1, ..., i64 begin, i64 end)
 * takes one typed pointer per slot, marked noalias where the caller proved
 * it sound (llvm_codegen.c) and readonly when the kernel never stores
 * through it; the entry
 *   void kN(i8 **slots, i64 begin, i64 end)
 * loads the slot pointers and calls the body. The body is always inlined
 * into the entry, and inlining turns the noalias parameters into scoped
 * alias metadata on each load and store, which is what lets the vectorizer
 * skip runtime overlap checks.
 *
 * Statements map one to one: FOR becomes a guarded bottom-tested loop (the
 * index is a phi; the bound is evaluated once, before the loop), LET a
 * store to an entry-block alloca (mem2reg turns them into registers), STORE
 * a typed store, IF a diamond. KS_VECTOR loops, and innermost KS_REDUCE
 * loops, carry `llvm.loop.vectorize.enable`; that hint also permits the
 * vectorizer to reassociate float reductions, so no fast-math flags are
 * needed (and NaN/inf semantics are kept everywhere).
 *
 * GEMM statements (llvm_gemm.c decides which have a native form; the
 * others were expanded into loops before translation) are emitted by
 * llvm_gemm_emit (with the image of an im2col B, ks_gemm.im2col, when the
 * statement has one); what follows the products — bias and epilogue — is a
 * vectorizable loop over each finished column tile built here, the
 * epilogue's variables bound to the element and its index.
 *
 * The kernel's form has been checked (k_verify, llvm_codegen.c) before it
 * gets here, so the translation only reports what this backend lacks (a
 * dtype without a register type, a GEMM with no native form).
 *
 * Expressions are translated recursively, memoized per statement (an
 * expression DAG shared within one statement is emitted once; the cache is
 * dropped at every statement, so no value is used outside the block that
 * defines it). The numeric conventions are listed in llvm_internal.h.
 */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "llvm_internal.h"

enum {
  MAX_EXPR_DEPTH = 2000, /* deeper expression trees are rejected */
  MAX_STMT_DEPTH = 200,  /* so are deeper statement nests */
};

/* Reports the first error of a kernel at its location; returns NULL so
 * callers can `return fail(...)`. */
__attribute__((format(printf, 2, 3))) static LLVMValueRef fail(kctx *c, const char *fmt, ...) {
  if (c->failed) return NULL;
  c->failed = true;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  nn_error(c->lm->d, c->k->loc, "kernel %s: %s", c->k->name ? c->k->name : "?", msg);
  return NULL;
}

/* ---- expressions --------------------------------------------------------- */

static LLVMValueRef expr(kctx *c, kx_id id);

/* A register value of dtype t as i1 (!= 0; NaN counts as true). */
static LLVMValueRef to_bool(kctx *c, nn_dtype t, LLVMValueRef v) {
  if (t == NN_DT_BOOL) return v;
  if (llvm_is_fp(t))
    return LLVMBuildFCmp(c->b, LLVMRealUNE, v, LLVMConstReal(LLVMTypeOf(v), 0), "");
  return LLVMBuildICmp(c->b, LLVMIntNE, v, LLVMConstInt(LLVMTypeOf(v), 0, 0), "");
}

/* Converts a register value from dtype `from` to dtype `to` (KX_CAST). */
static LLVMValueRef convert(kctx *c, LLVMValueRef v, nn_dtype from, nn_dtype to) {
  LLVMBuilderRef b = c->b;
  LLVMTypeRef ty = llvm_reg_type(c->lm, to);
  if (from == to) return v;
  if (to == NN_DT_BOOL) return to_bool(c, from, v);
  if (llvm_is_fp(from) && llvm_is_fp(to)) {
    LLVMTypeRef fty = LLVMTypeOf(v);
    if (fty == c->lm->t_f32 && ty == c->lm->t_f64) return LLVMBuildFPExt(b, v, ty, "");
    if (fty == c->lm->t_f64 && ty == c->lm->t_f32) v = LLVMBuildFPTrunc(b, v, ty, "");
    return llvm_narrow(c, to, v);
  }
  if (llvm_is_fp(from)) {
    /* truncate toward zero into i64, saturating (NaN → 0), then wrap to
     * the width */
    v = llvm_intrin_conv(c, "llvm.fptosi.sat", c->lm->t_i64, v);
    return to == NN_DT_I64 ? v : LLVMBuildTrunc(b, v, ty, "");
  }
  if (llvm_is_fp(to)) {
    /* i64 → f32 goes through double, like the interpreter */
    LLVMTypeRef via = from == NN_DT_I64 ? c->lm->t_f64 : ty;
    v = llvm_is_unsigned(from) ? LLVMBuildUIToFP(b, v, via, "") : LLVMBuildSIToFP(b, v, via, "");
    if (via != ty) v = LLVMBuildFPTrunc(b, v, ty, "");
    return llvm_narrow(c, to, v);
  }
  unsigned wf = LLVMGetIntTypeWidth(LLVMTypeOf(v)), wt = LLVMGetIntTypeWidth(ty);
  if (wf == wt) return v; /* i8 ↔ u8 */
  if (wf > wt) return LLVMBuildTrunc(b, v, ty, "");
  return llvm_is_unsigned(from) ? LLVMBuildZExt(b, v, ty, "") : LLVMBuildSExt(b, v, ty, "");
}

/* Integer DIV (truncating), FLOORDIV and MOD (floor, sign of the divisor).
 * A zero divisor yields 0, and the one overflowing case, MIN / -1, wraps;
 * neither traps. */
static LLVMValueRef int_div(kctx *c, kx_op op, nn_dtype t, LLVMValueRef a, LLVMValueRef d) {
  LLVMBuilderRef b = c->b;
  LLVMTypeRef ty = LLVMTypeOf(a);
  LLVMValueRef zero = LLVMConstInt(ty, 0, 0), one = LLVMConstInt(ty, 1, 0);
  bool uns = llvm_is_unsigned(t);
  bool safe = false; /* a constant divisor other than 0 and -1 */
  if (LLVMIsAConstantInt(d)) {
    long long v = LLVMConstIntGetSExtValue(d);
    safe = v != 0 && (uns || v != -1);
  }
  LLVMValueRef isz = NULL, ism1 = NULL, dd = d;
  if (!safe) {
    isz = LLVMBuildICmp(b, LLVMIntEQ, d, zero, "");
    LLVMValueRef bad = isz;
    if (!uns) {
      ism1 = LLVMBuildICmp(b, LLVMIntEQ, d, LLVMConstAllOnes(ty), "");
      bad = LLVMBuildOr(b, isz, ism1, "");
    }
    dd = LLVMBuildSelect(b, bad, one, d, "");
  }
  LLVMValueRef q = uns ? LLVMBuildUDiv(b, a, dd, "") : LLVMBuildSDiv(b, a, dd, "");
  LLVMValueRef r = uns ? LLVMBuildURem(b, a, dd, "") : LLVMBuildSRem(b, a, dd, "");
  if (ism1) {
    q = LLVMBuildSelect(b, ism1, LLVMBuildNeg(b, a, ""), q, "");
    r = LLVMBuildSelect(b, ism1, zero, r, "");
  }
  if (isz) {
    q = LLVMBuildSelect(b, isz, zero, q, "");
    r = LLVMBuildSelect(b, isz, zero, r, "");
  }
  if (op == KX_DIV || (uns && op == KX_FLOORDIV)) return q;
  if (uns) return r;
  /* floor: step down when the remainder's sign differs from the divisor's */
  LLVMValueRef adj = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntNE, r, zero, ""),
                                  LLVMBuildICmp(b, LLVMIntSLT, LLVMBuildXor(b, r, d, ""), zero, ""),
                                  "");
  if (op == KX_FLOORDIV) return LLVMBuildSub(b, q, LLVMBuildZExt(b, adj, ty, ""), "");
  return LLVMBuildAdd(b, r, LLVMBuildSelect(b, adj, d, zero, ""), "");
}

/* Float min/max propagating NaN from either operand. Against a constant
 * that is not NaN (relu, hardtanh, clamp) one unordered compare does: a
 * when a is NaN or beyond d, else d (so max(-0, +0) is still +0). */
static LLVMValueRef fp_minmax(kctx *c, bool max, LLVMValueRef a, LLVMValueRef d) {
  LLVMBuilderRef b = c->b;
  LLVMBool lossy;
  if (LLVMIsAConstantFP(d) && !isnan(LLVMConstRealGetDouble(d, &lossy)))
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, max ? LLVMRealUGT : LLVMRealULT, a, d, ""), a, d,
                           "");
  LLVMValueRef pick_a = LLVMBuildFCmp(b, max ? LLVMRealOGT : LLVMRealOLT, a, d, "");
  LLVMValueRef a_nan = LLVMBuildFCmp(b, LLVMRealUNO, a, a, "");
  return LLVMBuildSelect(b, LLVMBuildOr(b, pick_a, a_nan, ""), a, d, "");
}

static LLVMValueRef expr_unary(kctx *c, const kx *e, LLVMValueRef a) {
  LLVMBuilderRef b = c->b;
  nn_dtype t = e->dtype;
  bool fp = llvm_is_fp(t);
  switch (e->op) {
  case KX_NEG:
    if (fp) return LLVMBuildFNeg(b, a, "");
    if (t == NN_DT_BOOL) return a;
    return LLVMBuildNeg(b, a, "");
  case KX_ABS:
    if (fp) return llvm_intrin1(c, "llvm.fabs", a);
    if (llvm_is_unsigned(t)) return a;
    return LLVMBuildSelect(b,
                           LLVMBuildICmp(b, LLVMIntSLT, a, LLVMConstInt(LLVMTypeOf(a), 0, 0), ""),
                           LLVMBuildNeg(b, a, ""), a, "");
  case KX_FLOOR: return fp ? llvm_intrin1(c, "llvm.floor", a) : a;
  case KX_CEIL: return fp ? llvm_intrin1(c, "llvm.ceil", a) : a;
  case KX_ROUND: return fp ? llvm_intrin1(c, "llvm.roundeven", a) : a;
  default: break;
  }
  if (!fp) {
    /* a math function of an integer: through double, then back like a
     * cast */
    LLVMValueRef x = llvm_is_unsigned(t) ? LLVMBuildUIToFP(b, a, c->lm->t_f64, "")
                                         : LLVMBuildSIToFP(b, a, c->lm->t_f64, "");
    kx f = *e;
    f.dtype = NN_DT_F64;
    x = expr_unary(c, &f, x);
    return convert(c, convert(c, x, NN_DT_F64, NN_DT_I64), NN_DT_I64, t);
  }
  LLVMValueRef v;
  bool f32 = LLVMTypeOf(a) == c->lm->t_f32; /* f32, f16, bf16: inline math */
  switch (e->op) {
  case KX_EXP: v = f32 ? llvm_exp_f32(c, a) : llvm_intrin1(c, "llvm.exp", a); break;
  case KX_LOG: v = f32 ? llvm_log_f32(c, a) : llvm_intrin1(c, "llvm.log", a); break;
  case KX_SQRT: v = llvm_intrin1(c, "llvm.sqrt", a); break;
  case KX_SIN: v = llvm_intrin1(c, "llvm.sin", a); break;
  case KX_COS: v = llvm_intrin1(c, "llvm.cos", a); break;
  case KX_RSQRT:
    v = LLVMBuildFDiv(b, LLVMConstReal(LLVMTypeOf(a), 1), llvm_intrin1(c, "llvm.sqrt", a), "");
    break;
  case KX_LOG1P: v = f32 ? llvm_log1p_f32(c, a) : llvm_libm1(c, "log1pf", "log1p", a); break;
  case KX_TANH: v = f32 ? llvm_tanh_f32(c, a) : llvm_libm1(c, "tanhf", "tanh", a); break;
  case KX_ERF: v = f32 ? llvm_erf_f32(c, a) : llvm_libm1(c, "erff", "erf", a); break;
  default: NN_UNREACHABLE();
  }
  return llvm_narrow(c, t, v);
}

static LLVMValueRef expr_binary(kctx *c, const kx *e, LLVMValueRef a, LLVMValueRef d) {
  LLVMBuilderRef b = c->b;
  nn_dtype t = e->dtype;
  if (llvm_is_fp(t)) {
    LLVMValueRef v;
    switch (e->op) {
    case KX_ADD: v = LLVMBuildFAdd(b, a, d, ""); break;
    case KX_SUB: v = LLVMBuildFSub(b, a, d, ""); break;
    case KX_MUL: v = LLVMBuildFMul(b, a, d, ""); break;
    case KX_DIV: v = LLVMBuildFDiv(b, a, d, ""); break;
    case KX_FLOORDIV: /* the quotient is rounded to the dtype before floor */
      return llvm_intrin1(c, "llvm.floor", llvm_narrow(c, t, LLVMBuildFDiv(b, a, d, "")));
    case KX_MOD: {
      /* fmod, then move into the divisor's sign like Python */
      LLVMValueRef r = LLVMBuildFRem(b, a, d, "");
      LLVMValueRef z = LLVMConstReal(LLVMTypeOf(a), 0);
      LLVMValueRef adj = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealONE, r, z, ""),
                                      LLVMBuildXor(b, LLVMBuildFCmp(b, LLVMRealOLT, r, z, ""),
                                                   LLVMBuildFCmp(b, LLVMRealOLT, d, z, ""), ""),
                                      "");
      v = LLVMBuildSelect(b, adj, LLVMBuildFAdd(b, r, d, ""), r, "");
      break;
    }
    case KX_MIN: return fp_minmax(c, false, a, d);
    case KX_MAX: return fp_minmax(c, true, a, d);
    case KX_POW: {
      LLVMValueRef args[2] = {a, d};
      v = llvm_intrin(c, "llvm.pow", LLVMTypeOf(a), args, 2);
      break;
    }
    default: NN_UNREACHABLE();
    }
    return llvm_narrow(c, t, v);
  }
  bool uns = llvm_is_unsigned(t);
  if (t == NN_DT_BOOL) {
    /* integer arithmetic, then != 0 */
    switch (e->op) {
    case KX_ADD:
    case KX_MAX: return LLVMBuildOr(b, a, d, "");
    case KX_SUB: return LLVMBuildXor(b, a, d, "");
    case KX_MUL:
    case KX_MIN:
    case KX_DIV:
    case KX_FLOORDIV: return LLVMBuildAnd(b, a, d, "");
    case KX_MOD: return LLVMConstInt(c->lm->t_i1, 0, 0);
    case KX_POW: return LLVMBuildOr(b, a, LLVMBuildNot(b, d, ""), "");
    default: NN_UNREACHABLE();
    }
  }
  switch (e->op) {
  case KX_ADD: return LLVMBuildAdd(b, a, d, "");
  case KX_SUB: return LLVMBuildSub(b, a, d, "");
  case KX_MUL: return LLVMBuildMul(b, a, d, "");
  case KX_DIV:
  case KX_FLOORDIV:
  case KX_MOD: return int_div(c, e->op, t, a, d);
  case KX_MIN:
  case KX_MAX: {
    LLVMIntPredicate p = e->op == KX_MIN ? (uns ? LLVMIntULT : LLVMIntSLT)
                                         : (uns ? LLVMIntUGT : LLVMIntSGT);
    return LLVMBuildSelect(b, LLVMBuildICmp(b, p, a, d, ""), a, d, "");
  }
  case KX_POW: {
    LLVMTypeRef fty;
    LLVMValueRef f = llvm_ipow_fn(c, LLVMTypeOf(a), uns, &fty);
    LLVMValueRef args[2] = {a, d};
    return LLVMBuildCall2(b, fty, f, args, 2, "");
  }
  default: NN_UNREACHABLE();
  }
}

static LLVMValueRef expr_compare(kctx *c, const kx *e, nn_dtype t, LLVMValueRef a, LLVMValueRef d) {
  static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                         LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
  static const LLVMIntPredicate si[] = {LLVMIntEQ,  LLVMIntNE,  LLVMIntSLT,
                                        LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
  static const LLVMIntPredicate ui[] = {LLVMIntEQ,  LLVMIntNE,  LLVMIntULT,
                                        LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
  int i = (int)e->op - (int)KX_EQ;
  if (llvm_is_fp(t)) return LLVMBuildFCmp(c->b, fp[i], a, d, "");
  return LLVMBuildICmp(c->b, llvm_is_unsigned(t) ? ui[i] : si[i], a, d, "");
}

/* The dtype of operand `id`, or UNKNOWN when the id is out of range. */
static nn_dtype op_dtype(kctx *c, kx_id id) {
  if (id < 0 || id >= c->k->exprs.len) return NN_DT_UNKNOWN;
  return c->k->exprs.data[id].dtype;
}

static LLVMValueRef load_slot(kctx *c, int32_t buf, LLVMValueRef idx) {
  nn_dtype t = c->k->bufs.data[buf].dtype;
  LLVMTypeRef mt = llvm_mem_type(c->lm, t);
  LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, mt, c->slot[buf], &idx, 1, "");
  LLVMValueRef v = LLVMBuildLoad2(c->b, mt, p, "");
  if (t == NN_DT_F16) return llvm_f16_to_f32(c, v);
  if (t == NN_DT_BF16) return llvm_bf16_to_f32(c, v);
  if (t == NN_DT_BOOL)
    return LLVMBuildICmp(c->b, LLVMIntNE, v, LLVMConstInt(c->lm->t_i8, 0, 0), "");
  return v;
}

static void store_slot(kctx *c, int32_t buf, LLVMValueRef idx, LLVMValueRef v) {
  nn_dtype t = c->k->bufs.data[buf].dtype;
  LLVMTypeRef mt = llvm_mem_type(c->lm, t);
  if (t == NN_DT_F16)
    v = llvm_f32_to_f16(c, v);
  else if (t == NN_DT_BF16)
    v = llvm_f32_to_bf16(c, v);
  else if (t == NN_DT_BOOL)
    v = LLVMBuildZExt(c->b, v, c->lm->t_i8, "");
  LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, mt, c->slot[buf], &idx, 1, "");
  LLVMBuildStore(c->b, v, p);
}

static LLVMValueRef expr_uncached(kctx *c, kx_id id) {
  const kernel *k = c->k;
  const kx *e = &k->exprs.data[id];
  nn_dtype t = e->dtype;
  LLVMTypeRef ty = llvm_reg_type(c->lm, t);
  if (!ty) return fail(c, "expression %d has unsupported dtype %s", id, nn_dtype_name(t));
  switch (e->op) {
  case KX_CONST:
    /* f16/bf16 constants are held at float precision, as built */
    if (llvm_is_fp(t)) return LLVMConstReal(ty, e->f);
    if (t == NN_DT_BOOL) return LLVMConstInt(ty, e->i != 0, 0);
    return LLVMConstInt(ty, (unsigned long long)e->i, 1);
  case KX_VAR:
    if (c->var_loop[e->var]) return c->var_loop[e->var];
    return LLVMBuildLoad2(c->b, ty, c->var_mem[e->var], "");
  case KX_LOAD: {
    LLVMValueRef idx = expr(c, e->a);
    return idx ? load_slot(c, e->buf, idx) : NULL;
  }
  case KX_NOT: { /* logical: a == 0, for any operand dtype */
    LLVMValueRef a = expr(c, e->a);
    return a ? LLVMBuildNot(c->b, to_bool(c, op_dtype(c, e->a), a), "") : NULL;
  }
  case KX_NEG:
  case KX_ABS:
  case KX_EXP:
  case KX_LOG:
  case KX_LOG1P:
  case KX_SQRT:
  case KX_RSQRT:
  case KX_TANH:
  case KX_ERF:
  case KX_SIN:
  case KX_COS:
  case KX_FLOOR:
  case KX_CEIL:
  case KX_ROUND: {
    LLVMValueRef a = expr(c, e->a);
    return a ? expr_unary(c, e, a) : NULL;
  }
  case KX_CAST: {
    nn_dtype from = op_dtype(c, e->a);
    LLVMValueRef a = expr(c, e->a);
    return a ? convert(c, a, from, t) : NULL;
  }
  case KX_ADD:
  case KX_SUB:
  case KX_MUL:
  case KX_DIV:
  case KX_FLOORDIV:
  case KX_MOD:
  case KX_MIN:
  case KX_MAX:
  case KX_POW: {
    LLVMValueRef a = expr(c, e->a), d = a ? expr(c, e->b) : NULL;
    return d ? expr_binary(c, e, a, d) : NULL;
  }
  case KX_EQ:
  case KX_NE:
  case KX_LT:
  case KX_LE:
  case KX_GT:
  case KX_GE: {
    nn_dtype ot = op_dtype(c, e->a);
    LLVMValueRef a = expr(c, e->a), d = a ? expr(c, e->b) : NULL;
    return d ? expr_compare(c, e, ot, a, d) : NULL;
  }
  case KX_AND:
  case KX_OR: {
    nn_dtype ta = op_dtype(c, e->a), tb = op_dtype(c, e->b);
    LLVMValueRef a = expr(c, e->a), d = a ? expr(c, e->b) : NULL;
    if (!d) return NULL;
    a = to_bool(c, ta, a);
    d = to_bool(c, tb, d);
    return e->op == KX_AND ? LLVMBuildAnd(c->b, a, d, "") : LLVMBuildOr(c->b, a, d, "");
  }
  case KX_SELECT: {
    nn_dtype tc = op_dtype(c, e->a);
    LLVMValueRef q = expr(c, e->a), x = q ? expr(c, e->b) : NULL, y = x ? expr(c, e->c) : NULL;
    return y ? LLVMBuildSelect(c->b, to_bool(c, tc, q), x, y, "") : NULL;
  }
  default: NN_UNREACHABLE(); /* k_verify knows every operation */
  }
}

/* The value of expression id in the current block, or NULL after an error. */
static LLVMValueRef expr(kctx *c, kx_id id) {
  if (c->failed) return NULL;
  NN_ASSERT(id >= 0 && id < c->k->exprs.len); /* k_verify */
  if (c->cache_epoch[id] == c->epoch) return c->cache[id];
  c->depth++;
  NN_ASSERT(c->depth <= MAX_EXPR_DEPTH);
  LLVMValueRef v = expr_uncached(c, id);
  c->depth--;
  if (v) {
    c->cache[id] = v;
    c->cache_epoch[id] = c->epoch;
  }
  return v;
}

/* ---- statements ---------------------------------------------------------- */

/* Whether statement id contains a FOR (itself included). */
static bool has_loop(const kernel *k, ks_id id, int depth) {
  if (id < 0 || id >= k->stmts.len || depth > MAX_STMT_DEPTH) return false;
  const ks *s = &k->stmts.data[id];
  if (s->kind == KS_FOR || s->kind == KS_GEMM) return true;
  if (s->kind != KS_IF) return false;
  for (int i = 0; i < s->nbody; i++)
    if (has_loop(k, s->body[i], depth + 1)) return true;
  for (int i = 0; i < s->nels; i++)
    if (has_loop(k, s->els[i], depth + 1)) return true;
  return false;
}

/* `!{!self, !{!"llvm.loop.vectorize.enable", i1 true}}` on a loop's latch. */
static void mark_vectorize(kctx *c, LLVMValueRef latch_br) {
  LLVMContextRef ctx = c->lm->ctx;
  const char *key = "llvm.loop.vectorize.enable";
  LLVMMetadataRef en[2] = {LLVMMDStringInContext2(ctx, key, strlen(key)),
                           LLVMValueAsMetadata(LLVMConstInt(c->lm->t_i1, 1, 0))};
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(ctx, NULL, 0);
  LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(ctx, en, 2)};
  LLVMMetadataRef loop = LLVMMDNodeInContext2(ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, loop);
  LLVMSetMetadata(latch_br, LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9),
                  LLVMMetadataAsValue(ctx, loop));
}

static void stmts(kctx *c, const ks_id *ids, int n, int depth);

static void stmt_for(kctx *c, ks_id id, const ks *s, int depth) {
  const kernel *k = c->k;
  LLVMBuilderRef b = c->b;
  LLVMContextRef ctx = c->lm->ctx;
  LLVMValueRef lo, hi;
  if (id == c->par_root) {
    lo = c->begin;
    hi = c->end;
  } else {
    lo = expr(c, s->lo);
    hi = lo ? expr(c, s->hi) : NULL;
    if (!hi) return;
  }
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(ctx, c->fn, "for.body");
  LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(ctx, c->fn, "for.end");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, lo, hi, ""), body, exit);
  LLVMPositionBuilderAtEnd(b, body);
  LLVMValueRef i = LLVMBuildPhi(b, c->lm->t_i64, "i");
  c->var_loop[s->var] = i;
  stmts(c, s->body, s->nbody, depth + 1);
  c->var_loop[s->var] = NULL;
  if (c->failed) return;
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
  LLVMValueRef next = LLVMBuildNSWAdd(b, i, LLVMConstInt(c->lm->t_i64, 1, 0), "i.next");
  LLVMValueRef br = LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, next, hi, ""), body, exit);
  LLVMValueRef in[2] = {lo, next};
  LLVMBasicBlockRef from[2] = {pre, latch};
  LLVMAddIncoming(i, in, from, 2);
  bool innermost = true;
  for (int j = 0; j < s->nbody; j++)
    if (has_loop(k, s->body[j], 0)) innermost = false;
  if ((s->flags & KS_VECTOR) || ((s->flags & KS_REDUCE) && innermost)) mark_vectorize(c, br);
  LLVMPositionBuilderAtEnd(b, exit);
}

/* ---- GEMM (llvm_gemm.c emits the products) ------------------------------- */

/* What gemm_post needs: the statement and its operands' values. */
typedef struct gpost {
  const ks_gemm *g;
  LLVMValueRef c_off, ldc;                 /* i64 */
  LLVMValueRef bias_off, bias_rs, bias_cs; /* i64, when g has a bias */
} gpost;

/* C[m, n] = ep(C[m, n] + beta * bias[m, n]) over rows [0, m) x columns
 * [n0, n0 + nr): an inner loop the vectorizer takes, with the epilogue's
 * variables bound to the element and its index as if they were loop
 * values. */
static void gemm_post(kctx *c, void *ctx, LLVMValueRef n0, LLVMValueRef nr, LLVMValueRef m) {
  gpost *p = ctx;
  const ks_gemm *g = p->g;
  llvm_mod *lm = c->lm;
  LLVMBuilderRef b = c->b;
  LLVMValueRef zero = LLVMConstInt(lm->t_i64, 0, 0);
  llvm_loop li, lj;
  LLVMValueRef i = llvm_loop_begin(lm, c->fn, &li, zero, m);
  LLVMValueRef row = LLVMBuildAdd(b, p->c_off,
                                  LLVMBuildAdd(b, LLVMBuildMul(b, i, p->ldc, ""), n0, ""), "");
  LLVMValueRef brow = NULL;
  if (g->bias >= 0)
    brow = LLVMBuildAdd(b, p->bias_off,
                        LLVMBuildAdd(b, LLVMBuildMul(b, i, p->bias_rs, ""),
                                     LLVMBuildMul(b, n0, p->bias_cs, ""), ""),
                        "");
  LLVMValueRef j = llvm_loop_begin(lm, c->fn, &lj, zero, nr);
  LLVMValueRef idx = LLVMBuildAdd(b, row, j, "");
  LLVMValueRef v = load_slot(c, g->c, idx);
  if (g->bias >= 0) {
    LLVMValueRef bv = load_slot(c, g->bias,
                                LLVMBuildAdd(b, brow, LLVMBuildMul(b, j, p->bias_cs, ""), ""));
    if (g->beta != 1.0f) bv = LLVMBuildFMul(b, LLVMConstReal(lm->t_f32, g->beta), bv, "");
    v = LLVMBuildFAdd(b, v, bv, "");
  }
  if (g->epilogue) {
    c->epoch++; /* nothing cached outside this loop body is reused in it */
    c->var_loop[g->ep_acc] = v;
    c->var_loop[g->ep_idx] = idx;
    v = expr(c, g->ep);
    c->var_loop[g->ep_acc] = NULL;
    c->var_loop[g->ep_idx] = NULL;
    if (!v) return;
  }
  store_slot(c, g->c, idx, v);
  mark_vectorize(c, llvm_loop_end(lm, &lj));
  llvm_loop_end(lm, &li);
  c->epoch++;
}

/* Whether slot s exists and holds f32. */
static bool f32_slot(kctx *c, int32_t s) {
  return s >= 0 && s < c->k->bufs.len && c->k->bufs.data[s].dtype == NN_DT_F32;
}

static void stmt_gemm(kctx *c, ks_id id, const ks_gemm *g) {
  const kernel *k = c->k;
  if (!llvm_gemm_native(c->lm, k, g)) {
    fail(c, "statement %d: this GEMM has no native form (expand it first)", id);
    return;
  }
  if (!f32_slot(c, g->a) || !f32_slot(c, g->b) || !f32_slot(c, g->c) ||
      !k->bufs.data[g->c].written || (g->bias >= 0 && !f32_slot(c, g->bias))) {
    fail(c, "statement %d: GEMM operands must be f32 slots (C written)", id);
    return;
  }
  const kx_id ids[] = {g->a_off, g->b_off, g->c_off, g->m,    g->n,
                       g->k,     g->a_rs,  g->a_cs,  g->b_rs, g->ldc};
  LLVMValueRef val[10];
  for (int i = 0; i < 10; i++)
    if (!(val[i] = expr(c, ids[i]))) return;
  gpost p = {.g = g, .c_off = val[2], .ldc = val[9]};
  if (g->bias >= 0) {
    const kx_id bids[3] = {g->bias_off, g->bias_rs, g->bias_cs};
    LLVMValueRef *dst[3] = {&p.bias_off, &p.bias_rs, &p.bias_cs};
    for (int i = 0; i < 3; i++)
      if (!(*dst[i] = expr(c, bids[i]))) return;
  }
  llvm_gemm_vals v = {.a = c->slot[g->a],
                      .b = c->slot[g->b],
                      .c = c->slot[g->c],
                      .a_off = val[0],
                      .b_off = val[1],
                      .c_off = val[2],
                      .m = val[3],
                      .n = val[4],
                      .k = val[5],
                      .a_rs = val[6],
                      .a_cs = val[7],
                      .b_rs = val[8],
                      .ldc = val[9]};
  if (g->im2col) { /* B packed from the image */
    const ks_im2col *ic = g->im2col;
    const kx_id xids[5] = {ic->x_off, ic->h, ic->w, ic->wout, ic->n0};
    LLVMValueRef xv[5];
    for (int i = 0; i < 5; i++)
      if (!(xv[i] = expr(c, xids[i]))) return;
    v.x = LLVMBuildInBoundsGEP2(c->b, c->lm->t_f32, c->slot[ic->x], &xv[0], 1, "");
    v.x_h = xv[1];
    v.x_w = xv[2];
    v.x_wout = xv[3];
    v.x_n0 = xv[4];
  }
  bool post = g->bias >= 0 || g->epilogue;
  llvm_gemm_emit(c, g, &v, post ? gemm_post : NULL, &p);
  c->epoch++;
}

/* A run-time check: a branch that is expected to pass; the failing side,
 * out of the loop's way, records the first failure of the run in the
 * status block (a compare-and-swap on word 0, then the value and size). */
static void stmt_check(kctx *c, const ks *s) {
  LLVMValueRef ok = expr(c, s->cond);
  if (!ok) return;
  LLVMContextRef ctx = c->lm->ctx;
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(ctx, c->fn, "check.fail");
  LLVMBasicBlockRef rec = LLVMAppendBasicBlockInContext(ctx, c->fn, "check.record");
  LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(ctx, c->fn, "check.ok");
  LLVMValueRef br = LLVMBuildCondBr(c->b, ok, cont, bad);
  LLVMMetadataRef w[3] = {LLVMMDStringInContext2(ctx, "branch_weights", 14),
                          LLVMValueAsMetadata(LLVMConstInt(c->lm->t_i32, 1u << 20, 0)),
                          LLVMValueAsMetadata(LLVMConstInt(c->lm->t_i32, 1, 0))};
  LLVMSetMetadata(br, LLVMGetMDKindIDInContext(ctx, "prof", 4),
                  LLVMMetadataAsValue(ctx, LLVMMDNodeInContext2(ctx, w, 3)));
  LLVMPositionBuilderAtEnd(c->b, bad);
  LLVMValueRef val = expr(c, s->val), size = val ? expr(c, s->idx) : NULL;
  if (!size) return;
  LLVMValueRef x =
      LLVMBuildAtomicCmpXchg(c->b, c->slot[s->buf], LLVMConstInt(c->lm->t_i64, 0, 0),
                             LLVMConstInt(c->lm->t_i64, (unsigned long long)s->var + 1, 0),
                             LLVMAtomicOrderingMonotonic, LLVMAtomicOrderingMonotonic, 0);
  LLVMBuildCondBr(c->b, LLVMBuildExtractValue(c->b, x, 1, ""), rec, cont);
  LLVMPositionBuilderAtEnd(c->b, rec);
  store_slot(c, s->buf, LLVMConstInt(c->lm->t_i64, 1, 0), val);
  store_slot(c, s->buf, LLVMConstInt(c->lm->t_i64, 2, 0), size);
  LLVMBuildBr(c->b, cont);
  LLVMPositionBuilderAtEnd(c->b, cont);
}

static void stmt(kctx *c, ks_id id, int depth) {
  const kernel *k = c->k;
  if (c->failed) return;
  NN_ASSERT(id >= 0 && id < k->stmts.len && depth <= MAX_STMT_DEPTH); /* k_verify */
  const ks *s = &k->stmts.data[id];
  c->epoch++; /* values of earlier statements may not dominate this one */
  switch (s->kind) {
  case KS_LET: {
    LLVMValueRef v = expr(c, s->val);
    if (v) LLVMBuildStore(c->b, v, c->var_mem[s->var]);
    return;
  }
  case KS_STORE: {
    LLVMValueRef idx = expr(c, s->idx), v = idx ? expr(c, s->val) : NULL;
    if (v) store_slot(c, s->buf, idx, v);
    return;
  }
  case KS_IF: {
    nn_dtype ct = op_dtype(c, s->cond);
    LLVMValueRef cond = expr(c, s->cond);
    if (!cond) return;
    LLVMContextRef ctx = c->lm->ctx;
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(ctx, c->fn, "if.then");
    LLVMBasicBlockRef els = LLVMAppendBasicBlockInContext(ctx, c->fn, "if.else");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(ctx, c->fn, "if.end");
    LLVMBuildCondBr(c->b, to_bool(c, ct, cond), then, els);
    LLVMPositionBuilderAtEnd(c->b, then);
    stmts(c, s->body, s->nbody, depth + 1);
    if (c->failed) return;
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, els);
    stmts(c, s->els, s->nels, depth + 1);
    if (c->failed) return;
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
    return;
  }
  case KS_FOR: stmt_for(c, id, s, depth); return;
  case KS_GEMM: stmt_gemm(c, id, &s->gemm); return;
  case KS_CHECK: stmt_check(c, s); return;
  default: NN_UNREACHABLE(); /* k_verify knows every kind */
  }
}

static void stmts(kctx *c, const ks_id *ids, int n, int depth) {
  for (int i = 0; i < n && !c->failed; i++) stmt(c, ids[i], depth);
}

/* ---- functions ----------------------------------------------------------- */

/* Whether expression e of k is a trip count the graph function can compute
 * before calling the kernel: constants, the run's dim values and integer
 * arithmetic over them. */
static bool trip_evaluable(const kernel *k, kx_id e, int depth) {
  if (e < 0 || e >= k->exprs.len || depth > 64) return false;
  const kx *x = &k->exprs.data[e];
  if (x->dtype != NN_DT_I64) return false;
  switch (x->op) {
  case KX_CONST: return true;
  case KX_LOAD:
    return x->buf == k->dims_slot && x->buf >= 0 && trip_evaluable(k, x->a, depth + 1) &&
           k->exprs.data[x->a].op == KX_CONST;
  case KX_ADD:
  case KX_SUB:
  case KX_MUL:
  case KX_DIV:
  case KX_FLOORDIV:
  case KX_MOD:
  case KX_MIN:
  case KX_MAX: return trip_evaluable(k, x->a, depth + 1) && trip_evaluable(k, x->b, depth + 1);
  default: return false;
  }
}

bool llvm_kernel_parallel(const kernel *k, int64_t *n, kx_id *hi_out) {
  if (k->root.len != 1) return false;
  ks_id r = k->root.data[0];
  if (r < 0 || r >= k->stmts.len) return false;
  const ks *s = &k->stmts.data[r];
  if (s->kind != KS_FOR || !(s->flags & KS_PARALLEL)) return false;
  if (s->lo < 0 || s->lo >= k->exprs.len || s->hi < 0 || s->hi >= k->exprs.len) return false;
  const kx *lo = &k->exprs.data[s->lo], *hi = &k->exprs.data[s->hi];
  if (lo->op != KX_CONST || lo->dtype != NN_DT_I64 || lo->i != 0) return false;
  if (hi->op == KX_CONST && hi->dtype == NN_DT_I64) {
    *n = hi->i;
    if (hi_out) *hi_out = -1;
    return true;
  }
  if (!hi_out || !trip_evaluable(k, s->hi, 0)) return false;
  *n = -1;
  *hi_out = s->hi;
  return true;
}

/* Emits the body function; false after an error. */
static bool emit_body(kctx *c, const bool *noalias) {
  llvm_mod *lm = c->lm;
  const kernel *k = c->k;
  int nb = k->bufs.len;
  LLVMTypeRef *ps = nn_alloc(lm->arena, sizeof(LLVMTypeRef) * (size_t)(nb + 2));
  for (int i = 0; i < nb; i++) ps[i] = LLVMPointerType(llvm_mem_type(lm, k->bufs.data[i].dtype), 0);
  ps[nb] = ps[nb + 1] = lm->t_i64;
  char *name = nn_sprintf(lm->arena, "%s.body", k->name);
  c->fn = LLVMAddFunction(lm->mod, name, LLVMFunctionType(lm->t_void, ps, (unsigned)nb + 2, 0));
  LLVMSetLinkage(c->fn, LLVMInternalLinkage);
  llvm_fn_attr(lm, c->fn, "nounwind");
  llvm_fn_attr(lm, c->fn, "alwaysinline");
  c->slot = nn_alloc(lm->arena, sizeof(LLVMValueRef) * (size_t)(nb ? nb : 1));
  for (int i = 0; i < nb; i++) {
    c->slot[i] = LLVMGetParam(c->fn, (unsigned)i);
    llvm_param_attr(lm, c->fn, (unsigned)i, "nocapture");
    if (noalias[i]) llvm_param_attr(lm, c->fn, (unsigned)i, "noalias");
    if (!k->bufs.data[i].written) llvm_param_attr(lm, c->fn, (unsigned)i, "readonly");
  }
  c->begin = LLVMGetParam(c->fn, (unsigned)nb);
  c->end = LLVMGetParam(c->fn, (unsigned)nb + 1);

  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "entry"));
  int nv = k->vars.len;
  c->var_mem = nn_alloc(lm->arena, sizeof(LLVMValueRef) * (size_t)(nv ? nv : 1));
  c->var_loop = nn_alloc(lm->arena, sizeof(LLVMValueRef) * (size_t)(nv ? nv : 1));
  for (int i = 0; i < nv; i++) {
    LLVMTypeRef ty = llvm_reg_type(lm, k->vars.data[i]);
    if (!ty) {
      fail(c, "variable v%d has unsupported dtype %s", i, nn_dtype_name(k->vars.data[i]));
      return false;
    }
    /* zero-initialized, so reading before the first LET is defined */
    c->var_mem[i] = LLVMBuildAlloca(c->b, ty, "");
    LLVMBuildStore(c->b, LLVMConstNull(ty), c->var_mem[i]);
  }
  int ne = k->exprs.len;
  c->cache = nn_alloc(lm->arena, sizeof(LLVMValueRef) * (size_t)(ne ? ne : 1));
  c->cache_epoch = nn_alloc(lm->arena, sizeof(int) * (size_t)(ne ? ne : 1));
  for (int i = 0; i < ne; i++) c->cache_epoch[i] = -1;

  int64_t n;
  kx_id hi;
  c->par_root = llvm_kernel_parallel(k, &n, &hi) ? k->root.data[0] : -1;
  stmts(c, k->root.data, k->root.len, 0);
  if (c->failed) return false;
  LLVMBuildRetVoid(c->b);
  return true;
}

LLVMValueRef llvm_kernel_emit(llvm_mod *lm, const kernel *k, const bool *noalias) {
  kctx c = {.lm = lm, .k = k, .b = lm->b, .par_root = -1};
  for (int i = 0; i < k->bufs.len; i++)
    if (!llvm_mem_type(lm, k->bufs.data[i].dtype)) {
      fail(&c, "buffer slot %d has unsupported dtype %s", i, nn_dtype_name(k->bufs.data[i].dtype));
      return NULL;
    }
  if (!emit_body(&c, noalias)) return NULL;

  /* the entry: load the slot pointers, call the body */
  int nb = k->bufs.len;
  LLVMValueRef fn = LLVMAddFunction(lm->mod, k->name, lm->t_kfn);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  llvm_fn_attr(lm, fn, "nounwind");
  llvm_fn_attr(lm, fn, "noinline"); /* one symbol per kernel, for profiles */
  LLVMBuilderRef b = lm->b;
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(lm->ctx, fn, "entry"));
  LLVMValueRef *args = nn_alloc(lm->arena, sizeof(LLVMValueRef) * (size_t)(nb + 2));
  LLVMValueRef slots = LLVMGetParam(fn, 0);
  for (int i = 0; i < nb; i++) {
    LLVMValueRef idx = LLVMConstInt(lm->t_i64, (unsigned long long)i, 0);
    LLVMValueRef p = LLVMBuildLoad2(b, lm->t_ptr,
                                    LLVMBuildInBoundsGEP2(b, lm->t_ptr, slots, &idx, 1, ""), "");
    args[i] = LLVMBuildBitCast(b, p, LLVMPointerType(llvm_mem_type(lm, k->bufs.data[i].dtype), 0),
                               "");
  }
  args[nb] = LLVMGetParam(fn, 1);
  args[nb + 1] = LLVMGetParam(fn, 2);
  LLVMBuildCall2(b, LLVMGlobalGetValueType(c.fn), c.fn, args, (unsigned)nb + 2, "");
  LLVMBuildRetVoid(b);
  return fn;
}
