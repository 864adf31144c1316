/* llvm_ukernel.c — the GEMM microkernels and the packing of B, as LLVM
 * functions (one per shape, built once per module).
 *
 * The row-wise microkernel (llvm_gemm_ukernel) keeps an mr x nv tile of
 * <W x float> accumulators as phis across its k loop: each step broadcasts
 * mr elements of A, loads nv vectors of B and does mr*nv llvm.fmuladd; the
 * tile is stored once, after the loop, a partial last vector through
 * llvm.masked.load/store. With A in panels it can also compute xt extra
 * columns (a column tail) from the panel's pa consecutive floats, and
 * prefetch the next row tile's stream of A into L2. The narrow microkernel
 * (llvm_gemm_nkernel) turns the tile around for column tails too narrow
 * for the row-wise one: vectors along M, one panel column each. The
 * packing function (llvm_gemm_pack_fn) copies a block of B out of an image
 * with the im2col index arithmetic, zeros for padded taps, vector loads
 * masked at the image's edges (llvm_gemm.c has the layouts).
 */
#include <string.h>

#include "llvm_internal.h"

/* ---- IR helpers ------------------------------------------------------------ */

LLVMValueRef llvm_ci64(llvm_mod *lm, int64_t v) {
  return LLVMConstInt(lm->t_i64, (unsigned long long)v, 1);
}

/* Calls intrinsic `name` overloaded on types tys[0..nt). */
static LLVMValueRef intrin(llvm_mod *lm, const char *name, LLVMTypeRef *tys, int nt,
                           LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  NN_ASSERT(id != 0);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(lm->mod, id, tys, (size_t)nt);
  LLVMTypeRef fty = LLVMIntrinsicGetType(lm->ctx, id, tys, (size_t)nt);
  return LLVMBuildCall2(lm->b, fty, f, args, (unsigned)n, "");
}

static LLVMValueRef fmuladd(llvm_mod *lm, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef args[3] = {a, b, c};
  return intrin(lm, "llvm.fmuladd", &t, 1, args, 3);
}

/* p + i elements (p a float*). */
LLVMValueRef llvm_gep(llvm_mod *lm, LLVMValueRef p, LLVMValueRef i) {
  return LLVMBuildInBoundsGEP2(lm->b, lm->t_f32, p, &i, 1, "");
}

/* A vector of W floats at float* p: a plain load, or masked (lanes
 * outside `mask` read as 0 and touch no memory). */
static LLVMValueRef vload(llvm_mod *lm, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef mask) {
  LLVMTypeRef pt = LLVMPointerType(vt, 0);
  LLVMValueRef vp = LLVMBuildBitCast(lm->b, p, pt, "");
  if (!mask) {
    LLVMValueRef v = LLVMBuildLoad2(lm->b, vt, vp, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMTypeRef tys[2] = {vt, pt};
  LLVMValueRef args[4] = {vp, LLVMConstInt(lm->t_i32, 4, 0), mask, LLVMConstNull(vt)};
  return intrin(lm, "llvm.masked.load", tys, 2, args, 4);
}

static void vstore(llvm_mod *lm, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask) {
  LLVMTypeRef vt = LLVMTypeOf(v), pt = LLVMPointerType(vt, 0);
  LLVMValueRef vp = LLVMBuildBitCast(lm->b, p, pt, "");
  if (!mask) {
    LLVMSetAlignment(LLVMBuildStore(lm->b, v, vp), 4);
    return;
  }
  LLVMTypeRef tys[2] = {vt, pt};
  LLVMValueRef args[4] = {v, vp, LLVMConstInt(lm->t_i32, 4, 0), mask};
  intrin(lm, "llvm.masked.store", tys, 2, args, 4);
}

static LLVMValueRef splat(llvm_mod *lm, LLVMTypeRef vt, LLVMValueRef x) {
  unsigned w = LLVMGetVectorSize(vt);
  LLVMValueRef v = LLVMBuildInsertElement(lm->b, LLVMGetUndef(vt), x, LLVMConstInt(lm->t_i32, 0, 0),
                                          "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(lm->t_i32, w));
  return LLVMBuildShuffleVector(lm->b, v, LLVMGetUndef(vt), zeros, "");
}

LLVMValueRef llvm_loop_begin(llvm_mod *lm, LLVMValueRef fn, llvm_loop *l, LLVMValueRef lo,
                             LLVMValueRef hi) {
  LLVMBuilderRef b = lm->b;
  l->pre = LLVMGetInsertBlock(b);
  l->body = LLVMAppendBasicBlockInContext(lm->ctx, fn, "g.body");
  l->exit = LLVMAppendBasicBlockInContext(lm->ctx, fn, "g.end");
  l->hi = hi;
  l->lo = lo;
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, lo, hi, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(b, l->body);
  l->iv = LLVMBuildPhi(b, lm->t_i64, "g.i");
  return l->iv;
}

LLVMValueRef llvm_loop_end(llvm_mod *lm, llvm_loop *l) {
  LLVMBuilderRef b = lm->b;
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
  LLVMValueRef next = LLVMBuildNSWAdd(b, l->iv, llvm_ci64(lm, 1), "");
  LLVMValueRef br = LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, next, l->hi, ""), l->body,
                                    l->exit);
  LLVMValueRef in[2] = {l->lo, next};
  LLVMBasicBlockRef from[2] = {l->pre, latch};
  LLVMAddIncoming(l->iv, in, from, 2);
  LLVMPositionBuilderAtEnd(b, l->exit);
  return br;
}

/* ---- microkernels ------------------------------------------------------------ */

/* Adds the internal, never inlined function `name` of type void(ps[0..n))
 * and puts its parameters in P[0..n). */
static LLVMValueRef uk_function(llvm_mod *lm, const char *name, LLVMTypeRef *ps, int n,
                                LLVMValueRef *P) {
  LLVMValueRef fn = LLVMAddFunction(lm->mod, name,
                                    LLVMFunctionType(lm->t_void, ps, (unsigned)n, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  llvm_fn_attr(lm, fn, "nounwind");
  llvm_fn_attr(lm, fn, "noinline");
  for (int i = 0; i < n; i++) P[i] = LLVMGetParam(fn, (unsigned)i);
  return fn;
}

/* The k loop of a microkernel: a rows x cols tile of vector accumulators
 * carried as phis around block `loop` for kc steps, starting at zero. Its
 * use: kloop_blocks; code in `entry`; kloop_head; the step in `loop`,
 * from acc and kk into nacc; kloop_end, which leaves the builder in `done`
 * with the sums in fin. */
typedef struct kloop {
  LLVMBasicBlockRef entry, loop, done;     /* before, the step, after the loop */
  LLVMValueRef zero;                       /* a vector of zeros */
  LLVMValueRef kk;                         /* i64: the step's k, from 0 */
  int rows, cols;                          /* of the tile */
  LLVMValueRef acc[16][LLVM_GEMM_MAX_NV];  /* the accumulators before the step */
  LLVMValueRef nacc[16][LLVM_GEMM_MAX_NV]; /* after it (set by the caller) */
  LLVMValueRef fin[16][LLVM_GEMM_MAX_NV];  /* in `done`: the sums (zero for no step) */
} kloop;

/* Appends the loop's blocks to fn. */
static void kloop_blocks(llvm_mod *lm, LLVMValueRef fn, kloop *l) {
  l->entry = LLVMAppendBasicBlockInContext(lm->ctx, fn, "entry");
  l->loop = LLVMAppendBasicBlockInContext(lm->ctx, fn, "k");
  l->done = LLVMAppendBasicBlockInContext(lm->ctx, fn, "done");
}

/* Ends the entry block (no step unless kc > 0) and opens the step: kk and
 * the accumulators. */
static void kloop_head(llvm_mod *lm, kloop *l, LLVMValueRef kc) {
  LLVMBuilderRef b = lm->b;
  LLVMTypeRef vt = LLVMTypeOf(l->zero);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, kc, llvm_ci64(lm, 0), ""), l->loop, l->done);
  LLVMPositionBuilderAtEnd(b, l->loop);
  l->kk = LLVMBuildPhi(b, lm->t_i64, "kk");
  for (int i = 0; i < l->rows; i++)
    for (int j = 0; j < l->cols; j++) l->acc[i][j] = LLVMBuildPhi(b, vt, "acc");
}

/* Closes the step (nacc set: loops while kk + 1 < kc) and opens `done`. */
static void kloop_end(llvm_mod *lm, kloop *l, LLVMValueRef kc) {
  LLVMBuilderRef b = lm->b;
  LLVMTypeRef vt = LLVMTypeOf(l->zero);
  LLVMValueRef knext = LLVMBuildNSWAdd(b, l->kk, llvm_ci64(lm, 1), "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, knext, kc, ""), l->loop, l->done);
  LLVMBasicBlockRef from[2] = {l->entry, l->loop};
  LLVMValueRef kin[2] = {llvm_ci64(lm, 0), knext};
  LLVMAddIncoming(l->kk, kin, from, 2);
  for (int i = 0; i < l->rows; i++)
    for (int j = 0; j < l->cols; j++) {
      LLVMValueRef in[2] = {l->zero, l->nacc[i][j]};
      LLVMAddIncoming(l->acc[i][j], in, from, 2);
    }
  LLVMPositionBuilderAtEnd(b, l->done);
  for (int i = 0; i < l->rows; i++)
    for (int j = 0; j < l->cols; j++) {
      l->fin[i][j] = LLVMBuildPhi(b, vt, "");
      LLVMValueRef in[2] = {l->zero, l->nacc[i][j]};
      LLVMAddIncoming(l->fin[i][j], in, from, 2);
    }
}

/* The microkernel for an mr x (nv vectors) tile; `masked`: the last vector
 * is partial (UK_NLAST lanes) in C, and in B too when `bmask`; `pf`: each k
 * step also prefetches (into L2) the A elements of the same step of the
 * next row tile, UK_A_PF elements on. With A in panels that is a
 * contiguous stream (pa floats a step), so the weights of a GEMM that reads
 * them once (few columns: they come from memory, not cache) arrive ahead
 * of their row tile instead of stalling it. Built once per module. */
LLVMValueRef llvm_gemm_ukernel(llvm_mod *lm, const gcfg *cf, int mr, int nv, bool masked,
                               bool bmask, bool pf, int xt) {
  if (mr != cf->pa) xt = 0; /* extra columns need rows in whole panels */
  char name[64];
  snprintf(name, sizeof name, "nncc.gemm.w%d.%dx%d%s%s%s", cf->w, mr, nv, masked ? ".m" : "",
           masked && bmask ? "b" : "", pf ? ".pf" : "");
  if (xt) snprintf(name + strlen(name), sizeof name - strlen(name), ".x%d", xt);
  LLVMValueRef fn = LLVMGetNamedFunction(lm->mod, name);
  if (fn) return fn;
  LLVMBuilderRef b = lm->b;
  LLVMBasicBlockRef saved = LLVMGetInsertBlock(b);
  LLVMTypeRef fp = LLVMPointerType(lm->t_f32, 0);
  LLVMTypeRef ps[UK_B0 + LLVM_GEMM_MAX_NV + 2] = {fp,        lm->t_i64, lm->t_i64, lm->t_i64,
                                                  lm->t_i64, fp,        lm->t_i64, lm->t_f32,
                                                  lm->t_i1,  lm->t_i64, lm->t_i64};
  int np = UK_B0 + nv + (xt ? 2 : 0); /* the extra columns' B and C last */
  for (int j = UK_B0; j < np; j++) ps[j] = fp;
  LLVMValueRef P[UK_B0 + LLVM_GEMM_MAX_NV + 2];
  fn = uk_function(lm, name, ps, np, P);
  for (int i = 0; i < np; i++)
    if (LLVMTypeOf(P[i]) == fp) llvm_param_attr(lm, fn, (unsigned)i, "nocapture");
  LLVMValueRef XB = xt ? P[UK_B0 + nv] : NULL, XC = xt ? P[UK_B0 + nv + 1] : NULL;
  LLVMTypeRef v8 = LLVMVectorType(lm->t_f32, (unsigned)cf->pa); /* a panel's column */
  LLVMValueRef xacc[LLVM_GEMM_XT_MAX], xnacc[LLVM_GEMM_XT_MAX], xfin[LLVM_GEMM_XT_MAX];

  LLVMTypeRef vt = LLVMVectorType(lm->t_f32, (unsigned)cf->w);
  kloop kl = {.zero = LLVMConstNull(vt), .rows = mr, .cols = nv};
  kloop_blocks(lm, fn, &kl);
  LLVMBasicBlockRef add = LLVMAppendBasicBlockInContext(lm->ctx, fn, "add");
  LLVMBasicBlockRef set = LLVMAppendBasicBlockInContext(lm->ctx, fn, "set");
  LLVMPositionBuilderAtEnd(b, kl.entry);
  LLVMValueRef mask = NULL;
  if (masked) { /* lane l < nlast */
    LLVMValueRef lanes[16];
    for (int l = 0; l < cf->w; l++) lanes[l] = llvm_ci64(lm, l);
    LLVMValueRef iota = LLVMConstVector(lanes, (unsigned)cf->w);
    mask = LLVMBuildICmp(b, LLVMIntSLT, iota,
                         splat(lm, LLVMVectorType(lm->t_i64, (unsigned)cf->w), P[UK_NLAST]), "");
  }
  LLVMValueRef arow[16] = {NULL};
  for (int i = 0; i < mr; i++)
    arow[i] = llvm_gep(lm, P[UK_A], LLVMBuildMul(b, llvm_ci64(lm, i), P[UK_A_RS], ""));

  /* the k loop: acc[i][j] += A[i, k] * B[k, j-th vector]; and with xt
   * extra columns c, xacc[c] (pa rows) += A[0..pa, k] (the panel's pa
   * consecutive floats) * B[k, c] */
  kloop_head(lm, &kl, P[UK_KC]);
  for (int c = 0; c < xt; c++) xacc[c] = LLVMBuildPhi(b, v8, "xacc");
  LLVMValueRef bv[LLVM_GEMM_MAX_NV];
  LLVMValueRef boff = LLVMBuildMul(b, kl.kk, P[UK_B_RS], "");
  for (int j = 0; j < nv; j++)
    bv[j] = vload(lm, vt, llvm_gep(lm, P[UK_B0 + j], boff),
                  masked && bmask && j == nv - 1 ? mask : NULL);
  LLVMValueRef aoff = LLVMBuildMul(b, kl.kk, P[UK_A_CS], "");
  if (pf) { /* llvm.prefetch(addr, read, locality 2 = L2, data) */
    /* a plain GEP: the address may lie past A's buffer (the last tile) */
    LLVMValueRef pi = LLVMBuildAdd(b, P[UK_A_PF], aoff, "");
    LLVMValueRef pa = LLVMBuildGEP2(b, lm->t_f32, P[UK_A], &pi, 1, "");
    LLVMTypeRef pt = LLVMTypeOf(pa);
    LLVMValueRef args[4] = {pa, LLVMConstInt(lm->t_i32, 0, 0), LLVMConstInt(lm->t_i32, 2, 0),
                            LLVMConstInt(lm->t_i32, 1, 0)};
    intrin(lm, "llvm.prefetch", &pt, 1, args, 4);
  }
  for (int i = 0; i < mr; i++) {
    LLVMValueRef a = LLVMBuildLoad2(b, lm->t_f32, llvm_gep(lm, arow[i], aoff), "");
    LLVMValueRef av = splat(lm, vt, a);
    for (int j = 0; j < nv; j++) kl.nacc[i][j] = fmuladd(lm, av, bv[j], kl.acc[i][j]);
  }
  if (xt) {
    LLVMValueRef a8 = vload(lm, v8, llvm_gep(lm, arow[0], aoff), NULL);
    for (int c = 0; c < xt; c++) {
      LLVMValueRef bx =
          LLVMBuildLoad2(b, lm->t_f32,
                         llvm_gep(lm, XB, LLVMBuildAdd(b, boff, llvm_ci64(lm, c), "")), "");
      xnacc[c] = fmuladd(lm, a8, splat(lm, v8, bx), xacc[c]);
    }
  }

  /* the tile: C = alpha*acc, or C += alpha*acc */
  kloop_end(lm, &kl, P[UK_KC]);
  for (int c = 0; c < xt; c++) {
    LLVMBasicBlockRef from[2] = {kl.entry, kl.loop};
    LLVMValueRef in[2] = {LLVMConstNull(v8), xnacc[c]};
    LLVMAddIncoming(xacc[c], in, from, 2);
    xfin[c] = LLVMBuildPhi(b, v8, "");
    LLVMAddIncoming(xfin[c], in, from, 2);
  }
  LLVMValueRef alpha = splat(lm, vt, P[UK_ALPHA]);
  LLVMBuildCondBr(b, P[UK_LOAD_C], add, set);
  for (int pass = 0; pass < 2; pass++) {
    LLVMPositionBuilderAtEnd(b, pass == 0 ? add : set);
    for (int i = 0; i < mr; i++) {
      LLVMValueRef row = llvm_gep(lm, P[UK_C], LLVMBuildMul(b, llvm_ci64(lm, i), P[UK_LDC], ""));
      for (int j = 0; j < nv; j++) {
        LLVMValueRef m = masked && j == nv - 1 ? mask : NULL;
        LLVMValueRef p = llvm_gep(lm, row, llvm_ci64(lm, (int64_t)j * cf->w));
        LLVMValueRef v = pass == 0 ? fmuladd(lm, alpha, kl.fin[i][j], vload(lm, vt, p, m))
                                   : LLVMBuildFMul(b, alpha, kl.fin[i][j], "");
        vstore(lm, v, p, m);
      }
    }
    for (int c = 0; c < xt; c++) /* the extra columns, element by element */
      for (int i = 0; i < cf->pa; i++) {
        LLVMValueRef p = llvm_gep(lm, XC,
                                  LLVMBuildAdd(b, LLVMBuildMul(b, llvm_ci64(lm, i), P[UK_LDC], ""),
                                               llvm_ci64(lm, c), ""));
        LLVMValueRef x = LLVMBuildExtractElement(b, xfin[c],
                                                 LLVMConstInt(lm->t_i32, (unsigned)i, 0), "");
        LLVMValueRef sa = P[UK_ALPHA];
        LLVMValueRef v = pass == 0 ? fmuladd(lm, sa, x, LLVMBuildLoad2(b, lm->t_f32, p, ""))
                                   : LLVMBuildFMul(b, sa, x, "");
        LLVMBuildStore(b, v, p);
      }
    LLVMBuildRetVoid(b);
  }
  LLVMPositionBuilderAtEnd(b, saved);
  return fn;
}

/* The narrow microkernel: np panels of pa rows of A x nt columns, vectors
 * along M (a column's pa rows of one panel are pa consecutive floats of
 * the panel), each B element broadcast. For column tails too narrow for the
 * row-wise tile, where most lanes would be masked off. Stores element by
 * element (rows past NK_ROWS skipped). */
LLVMValueRef llvm_gemm_nkernel(llvm_mod *lm, int pa, int np, int nt) {
  char name[64];
  snprintf(name, sizeof name, "nncc.gemm.narrow.%dx%d", np, nt);
  LLVMValueRef fn = LLVMGetNamedFunction(lm->mod, name);
  if (fn) return fn;
  LLVMBuilderRef b = lm->b;
  LLVMBasicBlockRef saved = LLVMGetInsertBlock(b);
  LLVMTypeRef fp = LLVMPointerType(lm->t_f32, 0);
  LLVMTypeRef ps[NK_COUNT] = {fp, lm->t_i64, fp,        lm->t_i64, lm->t_i64,
                              fp, lm->t_i64, lm->t_f32, lm->t_i1,  lm->t_i64};
  LLVMValueRef P[NK_COUNT];
  fn = uk_function(lm, name, ps, NK_COUNT, P);
  LLVMTypeRef vt = LLVMVectorType(lm->t_f32, (unsigned)pa);
  kloop kl = {.zero = LLVMConstNull(vt), .rows = np, .cols = nt};
  kloop_blocks(lm, fn, &kl);
  LLVMPositionBuilderAtEnd(b, kl.entry);
  LLVMValueRef pan[16];
  for (int p = 0; p < np; p++)
    pan[p] = llvm_gep(lm, P[NK_A], LLVMBuildMul(b, llvm_ci64(lm, p), P[NK_PS], ""));
  kloop_head(lm, &kl, P[NK_KC]);
  LLVMValueRef bv[LLVM_GEMM_MAX_NV];
  LLVMValueRef brow = llvm_gep(lm, P[NK_B], LLVMBuildMul(b, kl.kk, P[NK_B_RS], ""));
  for (int n = 0; n < nt; n++)
    bv[n] = splat(lm, vt, LLVMBuildLoad2(b, lm->t_f32, llvm_gep(lm, brow, llvm_ci64(lm, n)), ""));
  LLVMValueRef koff = LLVMBuildMul(b, kl.kk, llvm_ci64(lm, pa), "");
  for (int p = 0; p < np; p++) {
    LLVMValueRef av = vload(lm, vt, llvm_gep(lm, pan[p], koff), NULL);
    for (int n = 0; n < nt; n++) kl.nacc[p][n] = fmuladd(lm, av, bv[n], kl.acc[p][n]);
  }
  /* C[r, n] (= | +=) alpha * lane r % pa of acc[r / pa][n], for r < rows */
  kloop_end(lm, &kl, P[NK_KC]);
  LLVMValueRef alpha = splat(lm, vt, P[NK_ALPHA]);
  LLVMValueRef fin[16][LLVM_GEMM_MAX_NV] = {{0}};
  for (int p = 0; p < np; p++)
    for (int n = 0; n < nt; n++) fin[p][n] = LLVMBuildFMul(b, alpha, kl.fin[p][n], "");
  for (int r = 0; r < np * pa; r++) {
    LLVMBasicBlockRef st = LLVMAppendBasicBlockInContext(lm->ctx, fn, "row");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(lm->ctx, fn, "next");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, llvm_ci64(lm, r), P[NK_ROWS], ""), st, next);
    LLVMPositionBuilderAtEnd(b, st);
    LLVMValueRef row = llvm_gep(lm, P[NK_C], LLVMBuildMul(b, llvm_ci64(lm, r), P[NK_LDC], ""));
    for (int n = 0; n < nt; n++) {
      LLVMValueRef x = LLVMBuildExtractElement(b, fin[r / pa][n],
                                               LLVMConstInt(lm->t_i32, (unsigned)(r % pa), 0), "");
      LLVMValueRef cp = llvm_gep(lm, row, llvm_ci64(lm, n));
      LLVMValueRef old = LLVMBuildLoad2(b, lm->t_f32, cp, "");
      x = LLVMBuildSelect(b, P[NK_LOAD_C], LLVMBuildFAdd(b, old, x, ""), x, "");
      LLVMBuildStore(b, x, cp);
    }
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, next);
  }
  LLVMBuildRetVoid(b);
  LLVMPositionBuilderAtEnd(b, saved);
  return fn;
}

/* ---- B packed from an image (ks_gemm.im2col) ------------------------------- */

/* floor(a / b) for b > 0. */
static LLVMValueRef floordiv(llvm_mod *lm, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef bl = lm->b;
  LLVMValueRef q = LLVMBuildSDiv(bl, a, b, "");
  LLVMValueRef neg = LLVMBuildICmp(bl, LLVMIntSLT, LLVMBuildSRem(bl, a, b, ""), llvm_ci64(lm, 0),
                                   "");
  return LLVMBuildSub(bl, q, LLVMBuildZExt(bl, neg, lm->t_i64, ""), "");
}

LLVMValueRef llvm_smin(llvm_mod *lm, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(lm->b, LLVMBuildICmp(lm->b, LLVMIntSLT, a, b, ""), a, b, "");
}
static LLVMValueRef smax(llvm_mod *lm, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(lm->b, LLVMBuildICmp(lm->b, LLVMIntSGT, a, b, ""), a, b, "");
}

/* <n x i32> constant with element l = f(l) given as an array. */
static LLVMValueRef ci32_vec(llvm_mod *lm, const int *v, int n) {
  LLVMValueRef e[64];
  for (int l = 0; l < n; l++) e[l] = LLVMConstInt(lm->t_i32, (unsigned long long)(unsigned)v[l], 0);
  return LLVMConstVector(e, (unsigned)n);
}

/* W floats of an image row: lanes l with mask m[l] from p[l*s], others 0.
 * s == 1: one masked load; s in 2..4: one masked load of s*W consecutive
 * floats (only the lanes read are enabled, so nothing outside the row's
 * valid part is touched) and a shuffle taking every s-th; otherwise a
 * masked gather. */
static LLVMValueRef strided_load(llvm_mod *lm, int w, int s, LLVMValueRef p, LLVMValueRef m,
                                 LLVMValueRef sw) {
  LLVMBuilderRef b = lm->b;
  LLVMTypeRef vt = LLVMVectorType(lm->t_f32, (unsigned)w);
  if (s == 1) return vload(lm, vt, p, m);
  if (s <= 4) {
    int idx[64];
    for (int l = 0; l < s * w; l++)
      idx[l] = l % s == 0 ? l / s : w; /* lane w of the second operand: false */
    LLVMValueRef m2 = LLVMBuildShuffleVector(b, m,
                                             LLVMConstNull(LLVMVectorType(lm->t_i1, (unsigned)w)),
                                             ci32_vec(lm, idx, s * w), "");
    LLVMValueRef wide = vload(lm, LLVMVectorType(lm->t_f32, (unsigned)(s * w)), p, m2);
    for (int l = 0; l < w; l++) idx[l] = l * s;
    return LLVMBuildShuffleVector(b, wide, LLVMGetUndef(LLVMTypeOf(wide)), ci32_vec(lm, idx, w),
                                  "");
  }
  LLVMValueRef lanes[16];
  for (int l = 0; l < w; l++) lanes[l] = llvm_ci64(lm, l);
  LLVMTypeRef v64 = LLVMVectorType(lm->t_i64, (unsigned)w);
  LLVMValueRef off = LLVMBuildMul(b, LLVMConstVector(lanes, (unsigned)w), splat(lm, v64, sw), "");
  LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(b, lm->t_f32, p, &off, 1, "");
  LLVMTypeRef tys[2] = {vt, LLVMTypeOf(ptrs)};
  LLVMValueRef args[4] = {ptrs, LLVMConstInt(lm->t_i32, 4, 0), m, LLVMConstNull(vt)};
  return intrin(lm, "llvm.masked.gather", tys, 2, args, 4);
}

/* A do-while loop t = t0, t0 + step, ... while t < end, starting in the
 * current block: returns t; pk_loop_end closes it. */
typedef struct pkloop {
  LLVMBasicBlockRef pre, body;
  LLVMValueRef t, end, step;
} pkloop;
static LLVMValueRef pk_loop_begin(llvm_mod *lm, LLVMValueRef fn, pkloop *l, LLVMValueRef t0,
                                  LLVMValueRef end, int64_t step) {
  l->pre = LLVMGetInsertBlock(lm->b);
  l->body = LLVMAppendBasicBlockInContext(lm->ctx, fn, "pk.t");
  l->end = end;
  l->step = llvm_ci64(lm, step);
  LLVMBuildBr(lm->b, l->body);
  LLVMPositionBuilderAtEnd(lm->b, l->body);
  l->t = LLVMBuildPhi(lm->b, lm->t_i64, "t");
  LLVMAddIncoming(l->t, &t0, &l->pre, 1);
  return l->t;
}
static void pk_loop_end(llvm_mod *lm, pkloop *l, LLVMBasicBlockRef after) {
  LLVMValueRef next = LLVMBuildAdd(lm->b, l->t, l->step, "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(lm->b);
  LLVMAddIncoming(l->t, &next, &latch, 1);
  LLVMBuildCondBr(lm->b, LLVMBuildICmp(lm->b, LLVMIntSLT, next, l->end, ""), l->body, after);
}

/* The function that packs the block B[k0, k0+kc) x [n0, n0+nr) of an
 * im2col (ks_im2col) into rows of PK_LD floats, columns past nr zero:
 *   the block's columns cross one or more output rows: a table of these
 *   segments (first column, length, output row and column) is made first;
 *   then for each row kk = (ci, i, j) of the block (the tap stepped along,
 *   no division), for each segment: the tap row ih outside the image gives
 *   zeros; else W-lane vectors of x[ci, ih, ow*sw - pw + j*dw], plain loads
 *   where every lane's column is inside the image, masked loads (lanes
 *   outside read as zero) at the segment's edges.
 * Every vector is stored whole: lanes past a segment land where the next
 * segment, the zeroed columns or the next row are written afterwards (the
 * block has W floats of slack after its last row). Built once per module,
 * width and geometry (kernel size, stride, padding, dilation: numbers in
 * it, so that the index arithmetic folds). */
LLVMValueRef llvm_gemm_pack_fn(llvm_mod *lm, int w, const ks_im2col *ic) {
  char name[128];
  snprintf(name, sizeof name, "nncc.pack.im2col.w%d.k%lldx%lld.s%lldx%lld.p%lldx%lld.d%lldx%lld", w,
           (long long)ic->kh, (long long)ic->kw, (long long)ic->sh, (long long)ic->sw,
           (long long)ic->ph, (long long)ic->pw, (long long)ic->dh, (long long)ic->dw);
  int s = ic->sw <= 4 ? (int)ic->sw : 0;
  LLVMValueRef fn = LLVMGetNamedFunction(lm->mod, name);
  if (fn) return fn;
  LLVMBuilderRef b = lm->b;
  LLVMBasicBlockRef saved = LLVMGetInsertBlock(b);
  LLVMTypeRef fp = LLVMPointerType(lm->t_f32, 0);
  LLVMTypeRef ps[PK_COUNT];
  for (int i = 0; i < PK_COUNT; i++) ps[i] = lm->t_i64;
  ps[PK_DST] = ps[PK_X] = fp;
  LLVMValueRef P[PK_COUNT];
  fn = uk_function(lm, name, ps, PK_COUNT, P);
  llvm_param_attr(lm, fn, PK_DST, "nocapture");
  llvm_param_attr(lm, fn, PK_X, "nocapture");
  llvm_param_attr(lm, fn, PK_X, "readonly");
  LLVMValueRef KH = llvm_ci64(lm, ic->kh), KW = llvm_ci64(lm, ic->kw), SH = llvm_ci64(lm, ic->sh),
               SW = llvm_ci64(lm, ic->sw), PH = llvm_ci64(lm, ic->ph), PW = llvm_ci64(lm, ic->pw),
               DH = llvm_ci64(lm, ic->dh), DW = llvm_ci64(lm, ic->dw);
  LLVMTypeRef vt = LLVMVectorType(lm->t_f32, (unsigned)w);
  LLVMTypeRef vi = LLVMVectorType(lm->t_i32, (unsigned)w);
  LLVMValueRef zero = LLVMConstNull(vt), one = llvm_ci64(lm, 1), zero64 = llvm_ci64(lm, 0);
  LLVMContextRef cx = lm->ctx;
#define BB(v, nm) LLVMBasicBlockRef v = LLVMAppendBasicBlockInContext(cx, fn, nm)
  BB(entry, "entry");
  BB(segs, "segs");
  BB(rows0, "rows0");
  BB(row, "row");
  BB(seg, "seg");
  BB(zseg, "zseg");
  BB(xseg, "xseg");
  BB(fast, "fast");
  BB(fastv, "fastv");
  BB(fastl, "fastl");
  BB(edge, "edge");
  BB(segnext, "segnext");
  BB(tail, "tail");
  BB(tz, "tz");
  BB(rowend, "rowend");
  BB(done, "done");
#undef BB

  /* the segment table: at most PK_LD + 1 <= MAX_PK_SEG segments */
  LLVMPositionBuilderAtEnd(b, entry);
  LLVMTypeRef tt = LLVMArrayType(lm->t_i64, MAX_PK_SEG);
  LLVMValueRef tab[4]; /* first column, length, output row, output column */
  for (int i = 0; i < 4; i++)
    tab[i] = LLVMBuildBitCast(b, LLVMBuildAlloca(b, tt, ""), LLVMPointerType(lm->t_i64, 0), "");
  LLVMValueRef oh0 = LLVMBuildSDiv(b, P[PK_N0], P[PK_WO], "");
  LLVMValueRef ow0 = LLVMBuildSub(b, P[PK_N0], LLVMBuildMul(b, oh0, P[PK_WO], ""), "");
  LLVMValueRef plane = LLVMBuildMul(b, P[PK_H], P[PK_W], "");
  LLVMValueRef khw = llvm_ci64(lm, ic->kh * ic->kw);
  LLVMValueRef ci0 = LLVMBuildSDiv(b, P[PK_K0], khw, "");
  LLVMValueRef rem0 = LLVMBuildSub(b, P[PK_K0], LLVMBuildMul(b, ci0, khw, ""), "");
  LLVMValueRef i0 = LLVMBuildSDiv(b, rem0, KW, "");
  LLVMValueRef j0 = LLVMBuildSub(b, rem0, LLVMBuildMul(b, i0, KW, ""), "");
  int iv[16];
  for (int l = 0; l < w; l++) iv[l] = l;
  LLVMValueRef iota = ci32_vec(lm, iv, w);
  LLVMBuildBr(b, segs);

  LLVMPositionBuilderAtEnd(b, segs);
  LLVMValueRef ns = LLVMBuildPhi(b, lm->t_i64, "ns");
  LLVMValueRef q = LLVMBuildPhi(b, lm->t_i64, "q");
  LLVMValueRef oh = LLVMBuildPhi(b, lm->t_i64, "oh");
  LLVMValueRef ow = LLVMBuildPhi(b, lm->t_i64, "ow");
  LLVMValueRef len = llvm_smin(lm, LLVMBuildSub(b, P[PK_NR], q, ""),
                               LLVMBuildSub(b, P[PK_WO], ow, ""));
  const LLVMValueRef vals[4] = {q, len, oh, ow};
  for (int i = 0; i < 4; i++)
    LLVMBuildStore(b, vals[i], LLVMBuildInBoundsGEP2(b, lm->t_i64, tab[i], &ns, 1, ""));
  LLVMValueRef nsn = LLVMBuildAdd(b, ns, one, "");
  LLVMValueRef qn = LLVMBuildAdd(b, q, len, "");
  LLVMValueRef ohn = LLVMBuildAdd(b, oh, one, "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, qn, P[PK_NR], ""), segs, rows0);
  {
    LLVMBasicBlockRef from[2] = {entry, segs};
    LLVMValueRef a0[2] = {zero64, nsn}, a1[2] = {zero64, qn}, a2[2] = {oh0, ohn},
                 a3[2] = {ow0, zero64};
    LLVMAddIncoming(ns, a0, from, 2);
    LLVMAddIncoming(q, a1, from, 2);
    LLVMAddIncoming(oh, a2, from, 2);
    LLVMAddIncoming(ow, a3, from, 2);
  }

  LLVMPositionBuilderAtEnd(b, rows0);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, P[PK_KC], zero64, ""), row, done);

  /* row r of the block: tap (ci, i, j) */
  LLVMPositionBuilderAtEnd(b, row);
  LLVMValueRef r = LLVMBuildPhi(b, lm->t_i64, "r");
  LLVMValueRef ci = LLVMBuildPhi(b, lm->t_i64, "ci");
  LLVMValueRef ti = LLVMBuildPhi(b, lm->t_i64, "i");
  LLVMValueRef tj = LLVMBuildPhi(b, lm->t_i64, "j");
  LLVMValueRef xp = llvm_gep(lm, P[PK_X], LLVMBuildMul(b, ci, plane, ""));
  LLVMValueRef drow = llvm_gep(lm, P[PK_DST], LLVMBuildMul(b, r, P[PK_LD], ""));
  /* the outputs whose tap column j is inside: [lo, hi) */
  LLVMValueRef a = LLVMBuildSub(b, PW, LLVMBuildMul(b, tj, DW, ""), "");
  LLVMValueRef lo = floordiv(lm, LLVMBuildAdd(b, a, llvm_ci64(lm, ic->sw - 1), ""), SW);
  lo = llvm_smin(lm, smax(lm, lo, zero64), P[PK_WO]);
  LLVMValueRef hi =
      LLVMBuildAdd(b, floordiv(lm, LLVMBuildAdd(b, a, LLVMBuildSub(b, P[PK_W], one, ""), ""), SW),
                   one, "");
  hi = smax(lm, llvm_smin(lm, hi, P[PK_WO]), lo);
  LLVMValueRef lov = splat(lm, vi, LLVMBuildTrunc(b, lo, lm->t_i32, ""));
  LLVMValueRef hiv = splat(lm, vi, LLVMBuildTrunc(b, hi, lm->t_i32, ""));
  LLVMValueRef rowoff = LLVMBuildSub(b, LLVMBuildMul(b, ti, DH, ""), PH, "");
  LLVMBuildBr(b, seg);

  /* segment sg: the block's columns [q, q + len) in output row oh */
  LLVMPositionBuilderAtEnd(b, seg);
  LLVMValueRef sg = LLVMBuildPhi(b, lm->t_i64, "sg");
  LLVMValueRef sv[4];
  for (int i = 0; i < 4; i++)
    sv[i] = LLVMBuildLoad2(b, lm->t_i64, LLVMBuildInBoundsGEP2(b, lm->t_i64, tab[i], &sg, 1, ""),
                           "");
  q = sv[0], len = sv[1], oh = sv[2], ow = sv[3];
  LLVMValueRef ih = LLVMBuildAdd(b, LLVMBuildMul(b, oh, SH, ""), rowoff, "");
  LLVMValueRef dseg = llvm_gep(lm, drow, q);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, ih, P[PK_H], ""), xseg, zseg);

  LLVMPositionBuilderAtEnd(b, zseg); /* the tap row is padding */
  pkloop lz;
  LLVMValueRef t = pk_loop_begin(lm, fn, &lz, zero64, len, w);
  vstore(lm, zero, llvm_gep(lm, dseg, t), NULL);
  pk_loop_end(lm, &lz, segnext);

  /* x at (ih, ow = 0) for tap column j */
  LLVMPositionBuilderAtEnd(b, xseg);
  LLVMValueRef src = llvm_gep(lm, xp, LLVMBuildSub(b, LLVMBuildMul(b, ih, P[PK_W], ""), a, ""));
  LLVMValueRef owe = LLVMBuildAdd(b, ow, len, "");
  LLVMValueRef inside = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, ow, lo, ""),
                                     LLVMBuildICmp(b, LLVMIntSLE, owe, hi, ""), "");
  LLVMBuildCondBr(b, inside, fast, edge);

  /* every column inside: whole vectors as they are, the last one masked
   * to the segment's length (it must not read past the image) */
  LLVMPositionBuilderAtEnd(b, fast);
  LLVMValueRef nfull = LLVMBuildSDiv(b, len, llvm_ci64(lm, w), "");
  LLVMValueRef xs0 = llvm_gep(lm, src, LLVMBuildMul(b, ow, SW, ""));
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, nfull, zero64, ""), fastv, fastl);
  LLVMPositionBuilderAtEnd(b, fastv);
  pkloop lf;
  t = pk_loop_begin(lm, fn, &lf, zero64, LLVMBuildMul(b, nfull, llvm_ci64(lm, w), ""), w);
  LLVMValueRef all = LLVMConstAllOnes(LLVMVectorType(lm->t_i1, (unsigned)w));
  LLVMValueRef v = strided_load(lm, w, s, llvm_gep(lm, xs0, LLVMBuildMul(b, t, SW, "")),
                                s == 1 ? NULL : all, SW);
  vstore(lm, v, llvm_gep(lm, dseg, t), NULL);
  pk_loop_end(lm, &lf, fastl);
  LLVMPositionBuilderAtEnd(b, fastl);
  LLVMValueRef tl = LLVMBuildMul(b, nfull, llvm_ci64(lm, w), "");
  LLVMValueRef left = LLVMBuildTrunc(b, LLVMBuildSub(b, len, tl, ""), lm->t_i32, "");
  LLVMValueRef ml = LLVMBuildICmp(b, LLVMIntSLT, iota, splat(lm, vi, left), "");
  v = strided_load(lm, w, s, llvm_gep(lm, xs0, LLVMBuildMul(b, tl, SW, "")), ml, SW);
  vstore(lm, v, llvm_gep(lm, dseg, tl), NULL);
  LLVMBuildBr(b, segnext);

  /* some columns outside: every vector masked to [lo, hi) and the length */
  LLVMPositionBuilderAtEnd(b, edge);
  pkloop lx;
  t = pk_loop_begin(lm, fn, &lx, zero64, len, w);
  LLVMValueRef owt = LLVMBuildAdd(b, ow, t, "");
  LLVMValueRef owl = LLVMBuildAdd(b, splat(lm, vi, LLVMBuildTrunc(b, owt, lm->t_i32, "")), iota,
                                  "");
  left = LLVMBuildTrunc(b, LLVMBuildSub(b, len, t, ""), lm->t_i32, "");
  LLVMValueRef m = LLVMBuildAnd(b,
                                LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, owl, lov, ""),
                                             LLVMBuildICmp(b, LLVMIntSLT, owl, hiv, ""), ""),
                                LLVMBuildICmp(b, LLVMIntSLT, iota, splat(lm, vi, left), ""), "");
  v = strided_load(lm, w, s, llvm_gep(lm, src, LLVMBuildMul(b, owt, SW, "")), m, SW);
  vstore(lm, v, llvm_gep(lm, dseg, t), NULL);
  pk_loop_end(lm, &lx, segnext);

  LLVMPositionBuilderAtEnd(b, segnext);
  LLVMValueRef sgn = LLVMBuildAdd(b, sg, one, "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, sgn, nsn, ""), seg, tail);
  {
    LLVMBasicBlockRef from[2] = {row, segnext};
    LLVMValueRef in[2] = {zero64, sgn};
    LLVMAddIncoming(sg, in, from, 2);
  }

  /* columns [nr, ld) are zeros */
  LLVMPositionBuilderAtEnd(b, tail);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, P[PK_NR], P[PK_LD], ""), tz, rowend);
  LLVMPositionBuilderAtEnd(b, tz);
  pkloop lt;
  t = pk_loop_begin(lm, fn, &lt, P[PK_NR], P[PK_LD], w);
  vstore(lm, zero, llvm_gep(lm, drow, t), NULL);
  pk_loop_end(lm, &lt, rowend);

  /* the next tap: j, then i, then ci */
  LLVMPositionBuilderAtEnd(b, rowend);
  LLVMValueRef rn = LLVMBuildAdd(b, r, one, "");
  LLVMValueRef j1 = LLVMBuildAdd(b, tj, one, "");
  LLVMValueRef wj = LLVMBuildICmp(b, LLVMIntEQ, j1, KW, "");
  LLVMValueRef j2 = LLVMBuildSelect(b, wj, zero64, j1, "");
  LLVMValueRef i1 = LLVMBuildAdd(b, ti, LLVMBuildZExt(b, wj, lm->t_i64, ""), "");
  LLVMValueRef wi = LLVMBuildICmp(b, LLVMIntEQ, i1, KH, "");
  LLVMValueRef i2 = LLVMBuildSelect(b, wi, zero64, i1, "");
  LLVMValueRef c2 = LLVMBuildAdd(b, ci, LLVMBuildZExt(b, wi, lm->t_i64, ""), "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, rn, P[PK_KC], ""), row, done);
  {
    LLVMBasicBlockRef from[2] = {rows0, rowend};
    LLVMValueRef a0[2] = {zero64, rn}, a1[2] = {ci0, c2}, a2[2] = {i0, i2}, a3[2] = {j0, j2};
    LLVMAddIncoming(r, a0, from, 2);
    LLVMAddIncoming(ci, a1, from, 2);
    LLVMAddIncoming(ti, a2, from, 2);
    LLVMAddIncoming(tj, a3, from, 2);
  }

  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRetVoid(b);
  LLVMPositionBuilderAtEnd(b, saved);
  return fn;
}
