/* llvm_codegen.c — a kp_program as one LLVM module, optimized, as an object.
 *
 * llvm_compile() checks the program's bindings, translates every kernel once
 * (in order of first use, so the output is deterministic), adds
 *   i32 nncc_graph_run(i8 **inputs, i8 **outputs, i8 *workspace,
 *                      i8 *weights, i8 *pool, i64 *dims, i64 *offsets)
 * which, for each step, fills a stack array with the step's slot pointers
 * and calls the kernel (directly over (0, 1), or through
 * nncc_rt_parallel_for when its root is a parallel loop, see backend.h).
 * A dynamic program (symbolic dims) reads its dim values from `dims` (the
 * dims buffer's slots point there) and its workspace buffers at
 * workspace + offsets[buffer id], planned per shape by the runtime; a
 * parallel loop's symbolic trip count is computed from `dims` before the
 * call. A static program ignores both. When the model runtime's
 * nncc_rt_profiling is set on entry, nncc_rt_prof_mark(s) is called
 * before each step s and with the step count at the end (abi/abi.h).
 * then runs LLVM's -O<n> pipeline tuned for the target machine and emits a
 * position-independent object into memory.
 *
 * Aliasing. A kernel's slot may be marked noalias unless some step binds it
 * to memory that overlaps another slot of the same step while either of the
 * two is written. Read-only slots bound to the same buffer keep noalias
 * (noalias only constrains memory that is modified). Overlap is decided on
 * byte ranges for weights and workspace, on the index for inputs and
 * outputs; distinct graph inputs/outputs are taken to be distinct memory,
 * as the public API requires of callers.
 *
 * Kernels containing KS_GEMM are copied into scratch memory, then either
 * prepared for the native microkernels (llvm_gemm.c) or, when some GEMM
 * has no native form, expanded into loops by k_expand_gemms()
 * (lower/gemm.c); the program itself is never modified. A convolution's
 * im2col kernel (kernel.im2col_b) is not called when the next step's
 * GEMMs are native: they pack B from the image (ks_gemm.im2col).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/IPO.h>
#include <llvm-c/Transforms/InstCombine.h>
#include <llvm-c/Transforms/PassManagerBuilder.h>
#include <llvm-c/Transforms/Scalar.h>
#include <llvm-c/Transforms/Vectorize.h>

#include "llvm_internal.h"

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *r = malloc(n);
  NN_ASSERT(r);
  memcpy(r, s, n);
  return r;
}

/* ---- checking the program ------------------------------------------------ */

/* Byte size of buffer b's elements, saturating instead of overflowing. */
static uint64_t buf_bytes(const kp_buf *b) {
  uint64_t es = nn_dtype_size(b->dtype);
  if (b->elems <= 0 || es == 0) return 0;
  if ((uint64_t)b->elems > UINT64_MAX / es) return UINT64_MAX;
  return (uint64_t)b->elems * es;
}

/* Whether buffers x and y may share bytes. */
static bool may_overlap(const kp_program *p, kp_bufid x, kp_bufid y) {
  if (x == y) return true;
  const kp_buf *a = &p->bufs.data[x], *b = &p->bufs.data[y];
  if (a->kind != b->kind || a->kind == KP_BUF_DIMS || a->kind == KP_BUF_STATUS) return false;
  if (a->kind == KP_BUF_INPUT || a->kind == KP_BUF_OUTPUT) return a->index == b->index;
  /* a dynamic plan never lets two buffers bound by one step share bytes */
  if (a->kind == KP_BUF_WORKSPACE && p->dynamic) return false;
  uint64_t na = buf_bytes(a), nb = buf_bytes(b);
  if (na == 0 || nb == 0) return false;
  return a->offset < b->offset + nb && b->offset < a->offset + na;
}

/* ---- kernels ------------------------------------------------------------- */

/* One translated kernel. */
typedef struct kfun {
  const kernel *k;  /* as in the program */
  LLVMValueRef fn;  /* its entry function */
  bool *noalias;    /* per slot */
  const kernel *kx; /* the kernel as translated (GEMMs expanded) */
  bool parallel;    /* root parallel loop over [0, n) */
  int64_t n;        /* n, or -1 when symbolic: then hi (in kx) computes it */
  kx_id hi;
  bool packs_b; /* every GEMM is native and packs B from an image
                   (ks_gemm.im2col): its im2col buffer is never read */
} kfun;

/* Whether every GEMM of k (prepared for the native path) describes B as
 * an im2col, and there is one. */
static bool all_im2col(const kernel *k) {
  bool any = false;
  for (int i = 0; i < k->stmts.len; i++)
    if (k->stmts.data[i].kind == KS_GEMM) {
      if (!k->stmts.data[i].gemm.im2col) return false;
      any = true;
    }
  return any;
}

static bool has_gemm(const kernel *k) {
  for (int i = 0; i < k->stmts.len; i++)
    if (k->stmts.data[i].kind == KS_GEMM) return true;
  return false;
}

/* Whether every GEMM of k is over f32 slots: this backend's microkernels
 * and its expansion take nothing else (lowering expands 16-bit GEMMs for a
 * target without a native 16-bit form). The rest of the form k_verify has
 * checked. */
static bool gemms_f32(const kernel *k, nn_diag *d) {
  for (int i = 0; i < k->stmts.len; i++) {
    const ks *s = &k->stmts.data[i];
    if (s->kind != KS_GEMM) continue;
    const ks_gemm *g = &s->gemm;
    int32_t slots[4] = {g->a, g->b, g->c, g->bias};
    for (int j = 0; j < 4; j++)
      if ((j < 3 || g->bias >= 0) && k->bufs.data[slots[j]].dtype != NN_DT_F32) {
        nn_error(d, k->loc, "kernel %s: statement %d: GEMM operands must be f32 slots", k->name, i);
        return false;
      }
  }
  return true;
}

/* Index ranges are checked (k_verify) in debug builds; the form always. */
#ifdef NDEBUG
enum { VERIFY_RANGES = 0 };
#else
enum { VERIFY_RANGES = 1 };
#endif

#define COPY_VEC(a, dst, src)                                                               \
  do {                                                                                      \
    (dst).len = (dst).cap = (src).len;                                                      \
    (dst).data = nn_alloc((a), sizeof(*(src).data) * (size_t)((src).len + 1));              \
    if ((src).len) memcpy((dst).data, (src).data, sizeof(*(src).data) * (size_t)(src).len); \
  } while (0)

/* A copy of a statement block with the capacity kernel.c's block growth
 * assumes (4, then powers of two), so appending to it stays in bounds. */
static ks_id *copy_block(nn_arena *a, const ks_id *ids, int n) {
  size_t cap = 4;
  while (cap < (size_t)n) cap *= 2;
  ks_id *b = nn_alloc(a, sizeof(ks_id) * cap);
  memcpy(b, ids, sizeof(ks_id) * (size_t)n);
  return b;
}

/* A deep copy of k in arena a (so that expanding it leaves k unchanged). */
static kernel *copy_kernel(nn_arena *a, const kernel *k) {
  kernel *c = nn_alloc(a, sizeof *c);
  *c = *k;
  c->arena = a;
  COPY_VEC(a, c->bufs, k->bufs);
  COPY_VEC(a, c->vars, k->vars);
  COPY_VEC(a, c->exprs, k->exprs);
  COPY_VEC(a, c->stmts, k->stmts);
  COPY_VEC(a, c->root, k->root);
  c->open.data = NULL;
  c->open.len = c->open.cap = 0;
  for (int i = 0; i < c->stmts.len; i++) {
    ks *s = &c->stmts.data[i];
    if (s->nbody > 0 && s->body) s->body = copy_block(a, s->body, s->nbody);
    if (s->nels > 0 && s->els) s->els = copy_block(a, s->els, s->nels);
  }
  return c;
}

/* Translates every distinct kernel of the program, in step order. Fills
 * *out (one entry per distinct kernel) and step_fun[s] (index into it). */
static bool emit_kernels(llvm_mod *lm, const kp_program *p, kfun **out, int *nout, int *step_fun) {
  kfun *fs = nn_alloc(lm->arena, sizeof(kfun) * (size_t)(p->steps.len + 1));
  int nf = 0;
  for (int s = 0; s < p->steps.len; s++) {
    const kernel *k = p->steps.data[s].k;
    int f = 0;
    while (f < nf && fs[f].k != k) f++;
    step_fun[s] = f;
    if (f == nf) {
      fs[nf].k = k;
      fs[nf].noalias = nn_alloc(lm->arena, sizeof(bool) * (size_t)(k->bufs.len + 1));
      for (int i = 0; i < k->bufs.len; i++) fs[nf].noalias[i] = true;
      nf++;
    }
    /* drop noalias on slots that may overlap a written slot in this step */
    const kp_bufid *sl = p->steps.data[s].slots;
    for (int i = 0; i < k->bufs.len; i++)
      for (int j = i + 1; j < k->bufs.len; j++)
        if ((k->bufs.data[i].written || k->bufs.data[j].written) && may_overlap(p, sl[i], sl[j]))
          fs[f].noalias[i] = fs[f].noalias[j] = false;
  }
  for (int f = 0; f < nf; f++) {
    const kernel *k = fs[f].k;
    if (k_verify(k, lm->target->max_slots, VERIFY_RANGES, lm->d)) return false;
    if (has_gemm(k)) {
      if (!gemms_f32(k, lm->d)) return false;
      /* native microkernels (llvm_gemm.c) when every GEMM has one, else
       * the portable loop nest */
      kernel *x = copy_kernel(lm->arena, k);
      if (llvm_gemm_prepare(lm, x))
        fs[f].packs_b = all_im2col(x);
      else
        k_expand_gemms(x, &lm->target->expand);
#ifndef NDEBUG /* the rewrite keeps the form */
      if (k_verify(x, lm->target->max_slots, true, lm->d)) return false;
#endif
      if (!fs[f].packs_b) /* B read in place (its im2col kernel runs) */
        for (int i = 0; i < x->stmts.len; i++)
          if (x->stmts.data[i].kind == KS_GEMM) x->stmts.data[i].gemm.im2col = NULL;
      k = x;
    }
    fs[f].kx = k;
    fs[f].parallel = llvm_kernel_parallel(k, &fs[f].n, &fs[f].hi);
    fs[f].fn = llvm_kernel_emit(lm, k, fs[f].noalias);
    if (!fs[f].fn) return false;
  }
  *out = fs;
  *nout = nf;
  return true;
}

/* ---- the graph function -------------------------------------------------- */

/* Kernel expression e of k (trip_evaluable in llvm_kernel.c: integer
 * arithmetic over constants and loads of the dims slot) computed in the
 * graph function from its dims parameter; Python floor semantics for //
 * and %, 0 for a zero divisor (the kernels' own convention). */
static LLVMValueRef graph_expr(llvm_mod *lm, const kernel *k, kx_id e, LLVMValueRef dims) {
  LLVMBuilderRef b = lm->b;
  const kx *x = &k->exprs.data[e];
  if (x->op == KX_CONST) return LLVMConstInt(lm->t_i64, (unsigned long long)x->i, 1);
  if (x->op == KX_LOAD) {
    LLVMValueRef idx = LLVMConstInt(lm->t_i64, (unsigned long long)k->exprs.data[x->a].i, 1);
    LLVMValueRef at = LLVMBuildInBoundsGEP2(b, lm->t_i64, dims, &idx, 1, "");
    return LLVMBuildLoad2(b, lm->t_i64, at, "dim");
  }
  LLVMValueRef l = graph_expr(lm, k, x->a, dims), r = graph_expr(lm, k, x->b, dims);
  LLVMValueRef zero = LLVMConstInt(lm->t_i64, 0, 0), one = LLVMConstInt(lm->t_i64, 1, 0);
  switch (x->op) {
  case KX_ADD: return LLVMBuildAdd(b, l, r, "");
  case KX_SUB: return LLVMBuildSub(b, l, r, "");
  case KX_MUL: return LLVMBuildMul(b, l, r, "");
  case KX_MIN: return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, l, r, ""), l, r, "");
  case KX_MAX: return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, l, r, ""), l, r, "");
  default: break;
  }
  /* division: a zero divisor gives 0; -1 divides without the overflow trap */
  LLVMValueRef rz = LLVMBuildICmp(b, LLVMIntEQ, r, zero, "");
  LLVMValueRef safe = LLVMBuildSelect(b, rz, one, r, "");
  LLVMValueRef q = LLVMBuildSDiv(b, l, safe, ""), m = LLVMBuildSRem(b, l, safe, "");
  LLVMValueRef adjust =
      LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntNE, m, zero, ""),
                   LLVMBuildICmp(b, LLVMIntNE, LLVMBuildICmp(b, LLVMIntSLT, m, zero, ""),
                                 LLVMBuildICmp(b, LLVMIntSLT, safe, zero, ""), ""),
                   "");
  LLVMValueRef v;
  if (x->op == KX_DIV)
    v = q;
  else if (x->op == KX_FLOORDIV)
    v = LLVMBuildSub(b, q, LLVMBuildZExt(b, adjust, lm->t_i64, ""), "");
  else
    v = LLVMBuildSelect(b, adjust, LLVMBuildAdd(b, m, safe, ""), m, "");
  return LLVMBuildSelect(b, rz, zero, v, "");
}

/* The profiling hooks (abi/abi.h): `if (on) nncc_rt_prof_mark(step);`
 * where `on` was read from nncc_rt_profiling once, on entry. */
typedef struct prof_hook {
  LLVMValueRef fn;   /* the graph function */
  LLVMValueRef on;   /* i1: some session profiles */
  LLVMValueRef mark; /* void nncc_rt_prof_mark(i32) */
  LLVMTypeRef ty;    /* its type */
} prof_hook;

static prof_hook prof_hook_new(llvm_mod *lm, LLVMValueRef fn) {
  prof_hook h = {.fn = fn};
  /* Both are defined by the model runtime of the same .so (hidden: no
   * GOT). The object also works linked without them (tests link kernels
   * with a stub runtime): the flag has a weak definition holding 0, and
   * the mark, weak too, is then never called. */
  LLVMValueRef flag = LLVMAddGlobal(lm->mod, lm->t_i32, "nncc_rt_profiling");
  LLVMSetInitializer(flag, LLVMConstInt(lm->t_i32, 0, 0));
  LLVMSetLinkage(flag, LLVMWeakAnyLinkage);
  LLVMSetVisibility(flag, LLVMHiddenVisibility);
  LLVMValueRef v = LLVMBuildLoad2(lm->b, lm->t_i32, flag, "profiling");
  h.on = LLVMBuildICmp(lm->b, LLVMIntNE, v, LLVMConstInt(lm->t_i32, 0, 0), "");
  h.ty = LLVMFunctionType(lm->t_void, &lm->t_i32, 1, 0);
  h.mark = LLVMAddFunction(lm->mod, "nncc_rt_prof_mark", h.ty);
  LLVMSetLinkage(h.mark, LLVMExternalWeakLinkage);
  LLVMSetVisibility(h.mark, LLVMHiddenVisibility);
  return h;
}

static void prof_mark(llvm_mod *lm, const prof_hook *h, int step) {
  LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(lm->ctx, h->fn, "prof");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(lm->ctx, h->fn, "step");
  LLVMBuildCondBr(lm->b, h->on, call, next);
  LLVMPositionBuilderAtEnd(lm->b, call);
  LLVMValueRef arg = LLVMConstInt(lm->t_i32, (unsigned long long)step, 0);
  LLVMBuildCall2(lm->b, h->ty, h->mark, &arg, 1, "");
  LLVMBuildBr(lm->b, next);
  LLVMPositionBuilderAtEnd(lm->b, next);
}

static void emit_graph(llvm_mod *lm, const kp_program *p, const kfun *fs, const int *step_fun) {
  LLVMBuilderRef b = lm->b;
  LLVMTypeRef ps[8] = {lm->t_pptr,
                       lm->t_pptr,
                       lm->t_ptr,
                       lm->t_ptr,
                       lm->t_ptr,
                       LLVMPointerType(lm->t_i64, 0),
                       LLVMPointerType(lm->t_i64, 0),
                       LLVMPointerType(lm->t_i64, 0)};
  LLVMValueRef fn = LLVMAddFunction(lm->mod, "nncc_graph_run",
                                    LLVMFunctionType(lm->t_i32, ps, 8, 0));
  unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(lm->ctx, nounwind, 0));
  LLVMValueRef inputs = LLVMGetParam(fn, 0), outputs = LLVMGetParam(fn, 1);
  LLVMValueRef workspace = LLVMGetParam(fn, 2), weights = LLVMGetParam(fn, 3),
               pool = LLVMGetParam(fn, 4), dims = LLVMGetParam(fn, 5),
               offsets = LLVMGetParam(fn, 6), status = LLVMGetParam(fn, 7);

  /* void nncc_rt_parallel_for(void *pool, void (*fn)(...), void *const *slots,
   * int64_t n) */
  LLVMTypeRef pf_ps[4] = {lm->t_ptr, LLVMPointerType(lm->t_kfn, 0), lm->t_pptr, lm->t_i64};
  LLVMTypeRef pf_ty = LLVMFunctionType(lm->t_void, pf_ps, 4, 0);
  LLVMValueRef pf = NULL;

  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(lm->ctx, fn, "entry"));
  int maxslots = 1;
  for (int s = 0; s < p->steps.len; s++)
    if (p->steps.data[s].k->bufs.len > maxslots) maxslots = p->steps.data[s].k->bufs.len;
  LLVMTypeRef arr_ty = LLVMArrayType(lm->t_ptr, (unsigned)maxslots);
  LLVMValueRef arr = LLVMBuildAlloca(b, arr_ty, "slots");
  LLVMValueRef zero = LLVMConstInt(lm->t_i64, 0, 0);
  LLVMValueRef first[2] = {zero, zero};
  LLVMValueRef slots = LLVMBuildInBoundsGEP2(b, arr_ty, arr, first, 2, "");
  prof_hook prof = prof_hook_new(lm, fn);

  for (int s = 0; s < p->steps.len; s++) {
    const kp_step *st = &p->steps.data[s];
    const kfun *f = &fs[step_fun[s]];
    prof_mark(lm, &prof, s);
    if (st->k->im2col_b && s + 1 < p->steps.len && fs[step_fun[s + 1]].packs_b)
      continue; /* the next step packs B from the image itself */
    for (int i = 0; i < st->k->bufs.len; i++) {
      const kp_buf *bb = &p->bufs.data[st->slots[i]];
      LLVMValueRef ptr;
      if (bb->kind == KP_BUF_INPUT || bb->kind == KP_BUF_OUTPUT) {
        LLVMValueRef idx = LLVMConstInt(lm->t_i64, (unsigned long long)bb->index, 0);
        LLVMValueRef base = bb->kind == KP_BUF_INPUT ? inputs : outputs;
        ptr = LLVMBuildLoad2(b, lm->t_ptr, LLVMBuildInBoundsGEP2(b, lm->t_ptr, base, &idx, 1, ""),
                             "");
      } else if (bb->kind == KP_BUF_DIMS) {
        ptr = LLVMBuildBitCast(b, dims, lm->t_ptr, "");
      } else if (bb->kind == KP_BUF_STATUS) {
        ptr = LLVMBuildBitCast(b, status, lm->t_ptr, "");
      } else if (bb->kind == KP_BUF_WORKSPACE && p->dynamic) {
        LLVMValueRef bi = LLVMConstInt(lm->t_i64, (unsigned long long)st->slots[i], 0);
        LLVMValueRef off = LLVMBuildLoad2(b, lm->t_i64,
                                          LLVMBuildInBoundsGEP2(b, lm->t_i64, offsets, &bi, 1, ""),
                                          "off");
        ptr = LLVMBuildInBoundsGEP2(b, lm->t_i8, workspace, &off, 1, "");
      } else {
        LLVMValueRef off = LLVMConstInt(lm->t_i64, bb->offset, 0);
        ptr = LLVMBuildInBoundsGEP2(b, lm->t_i8, bb->kind == KP_BUF_WEIGHT ? weights : workspace,
                                    &off, 1, "");
      }
      LLVMValueRef idx = LLVMConstInt(lm->t_i64, (unsigned long long)i, 0);
      LLVMBuildStore(b, ptr, LLVMBuildInBoundsGEP2(b, lm->t_ptr, slots, &idx, 1, ""));
    }
    if (f->parallel && (f->n > 1 || f->n < 0)) {
      if (!pf) pf = LLVMAddFunction(lm->mod, "nncc_rt_parallel_for", pf_ty);
      LLVMValueRef n = f->n >= 0 ? LLVMConstInt(lm->t_i64, (unsigned long long)f->n, 1)
                                 : graph_expr(lm, f->kx, f->hi, dims);
      LLVMValueRef args[4] = {pool, f->fn, slots, n};
      LLVMBuildCall2(b, pf_ty, pf, args, 4, "");
    } else {
      /* a parallel loop of at most one iteration runs inline over [0, n) */
      int64_t end = f->parallel ? f->n : 1;
      LLVMValueRef args[3] = {slots, zero, LLVMConstInt(lm->t_i64, (unsigned long long)end, 1)};
      LLVMBuildCall2(b, lm->t_kfn, f->fn, args, 3, "");
    }
  }
  prof_mark(lm, &prof, p->steps.len);
  LLVMBuildRet(b, LLVMConstInt(lm->t_i32, 0, 0));
}

/* ---- target and pipeline ------------------------------------------------- */

/* The triple code is generated for under o (malloc'd), and whether it is
 * the host's. */
static char *resolve_triple(const llvm_opts *o, bool *is_host) {
  char *host = LLVMGetDefaultTargetTriple();
  char *triple;
  *is_host = true;
  if (o->triple && o->triple[0]) {
    char *want = LLVMNormalizeTargetTriple(o->triple);
    char *have = LLVMNormalizeTargetTriple(host);
    *is_host = strcmp(want, have) == 0;
    LLVMDisposeMessage(have);
    LLVMDisposeMessage(want);
    triple = xstrdup(o->triple);
  } else {
    triple = xstrdup(host);
  }
  LLVMDisposeMessage(host);
  return triple;
}

/* The cpu and its feature list under o (malloc'd): the host's for
 * "native" or none on the host, "generic" elsewhere, or the named cpu
 * (its features implied by the name). */
static void resolve_cpu(const llvm_opts *o, bool is_host, char **cpu, char **features) {
  if (!o->mcpu || !o->mcpu[0] || strcmp(o->mcpu, "native") == 0) {
    if (is_host) {
      char *c = LLVMGetHostCPUName(), *f = LLVMGetHostCPUFeatures();
      *cpu = xstrdup(c);
      *features = xstrdup(f);
      LLVMDisposeMessage(c);
      LLVMDisposeMessage(f);
    } else {
      *cpu = xstrdup("generic");
      *features = xstrdup("");
    }
  } else {
    *cpu = xstrdup(o->mcpu);
    *features = xstrdup("");
  }
}

const tg_target *llvm_target(const llvm_opts *o) {
  llvm_opts defaults = {.opt_level = 2};
  if (!o) o = &defaults;
  bool is_host;
  char *triple = resolve_triple(o, &is_host), *cpu, *features;
  resolve_cpu(o, is_host, &cpu, &features);
  const tg_target *t = tg_for_cpu(triple, cpu, features);
  free(triple);
  free(cpu);
  free(features);
  return t;
}

/* Creates the target machine for o; fills r->cpu and r->features. */
static LLVMTargetMachineRef
make_target(const llvm_opts *o, llvm_result *r, char **triple_out, nn_diag *d) {
  static bool native_ready, all_ready;
  nn_loc none = {0};
  if (!native_ready) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    native_ready = true;
  }
  bool is_host;
  char *triple = resolve_triple(o, &is_host);
  if (!is_host && !all_ready) {
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    all_ready = true;
  }

  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    nn_error(d, none, "unknown target triple '%s': %s", triple, err ? err : "?");
    LLVMDisposeMessage(err);
    free(triple);
    return NULL;
  }
  resolve_cpu(o, is_host, &r->cpu, &r->features);
  static const LLVMCodeGenOptLevel levels[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                                LLVMCodeGenLevelDefault,
                                                LLVMCodeGenLevelAggressive};
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, r->cpu, r->features,
                                                    levels[o->opt_level], LLVMRelocPIC,
                                                    LLVMCodeModelDefault);
  if (!tm) {
    nn_error(d, none, "cannot create a target machine for '%s' (cpu '%s')", triple, r->cpu);
    free(triple);
    return NULL;
  }
  *triple_out = triple;
  return tm;
}

/* Runs the -O<level> pipeline with the target's cost model. At -O0 only
 * the always-inliner runs (kernel bodies fold into their entries). */
static void optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int level, const llvm_opts *o) {
  LLVMPassManagerRef mpm = LLVMCreatePassManager();
  LLVMAddAnalysisPasses(tm, mpm);
  if (level == 0) {
    LLVMAddAlwaysInlinerPass(mpm);
    LLVMRunPassManager(mpm, m);
    LLVMDisposePassManager(mpm);
    return;
  }
  LLVMPassManagerBuilderRef pmb = LLVMPassManagerBuilderCreate();
  LLVMPassManagerBuilderSetOptLevel(pmb, (unsigned)level);
  LLVMPassManagerBuilderSetSizeLevel(pmb, 0);
  LLVMPassManagerBuilderUseInlinerWithThreshold(pmb, level >= 3 ? 250 : 225);
  LLVMPassManagerRef fpm = LLVMCreateFunctionPassManagerForModule(m);
  LLVMAddAnalysisPasses(tm, fpm);
  LLVMPassManagerBuilderPopulateFunctionPassManager(pmb, fpm);
  LLVMPassManagerBuilderPopulateModulePassManager(pmb, mpm);
  if (level >= 2) {
    /* the builder's default leaves straight-line vectorization off */
    LLVMAddSLPVectorizePass(mpm);
    LLVMAddEarlyCSEPass(mpm);
    LLVMAddInstructionCombiningPass(mpm);
    LLVMAddCFGSimplificationPass(mpm);
  }
  LLVMInitializeFunctionPassManager(fpm);
  int nfun = 0, done = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    nfun += !LLVMIsDeclaration(f);
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    if (!LLVMIsDeclaration(f)) {
      if (o->progress) o->progress(o->progress_ctx, "optimize", done++, nfun);
      LLVMRunFunctionPassManager(fpm, f);
    }
  LLVMFinalizeFunctionPassManager(fpm);
  if (o->progress) o->progress(o->progress_ctx, "optimize", nfun, nfun);
  LLVMRunPassManager(mpm, m);
  LLVMDisposePassManager(fpm);
  LLVMDisposePassManager(mpm);
  LLVMPassManagerBuilderDispose(pmb);
}

/* LLVM's diagnostics: errors are kept for the caller to report; warnings
 * and remarks (e.g. "loop not vectorized" for a hinted loop that holds a
 * libm call) are dropped instead of going to stderr. */
static void on_llvm_diag(LLVMDiagnosticInfoRef di, void *ctx) {
  char **first_error = ctx;
  if (LLVMGetDiagInfoSeverity(di) != LLVMDSError || *first_error) return;
  char *msg = LLVMGetDiagInfoDescription(di);
  *first_error = xstrdup(msg ? msg : "?");
  LLVMDisposeMessage(msg);
}

/* ---- entry points -------------------------------------------------------- */

int llvm_compile(const kp_program *p, const llvm_opts *o, bool want_ir, llvm_result *r,
                 nn_diag *d) {
  nn_loc none = {0};
  memset(r, 0, sizeof *r);
  llvm_opts defaults = {.opt_level = 2};
  if (!o) o = &defaults;
  if (o->opt_level < 0 || o->opt_level > 3) {
    nn_error(d, none, "optimization level %d is not in 0..3", o->opt_level);
    return -1;
  }
  if (kp_verify_bindings(p, d)) return -1;

  char *triple = NULL;
  LLVMTargetMachineRef tm = make_target(o, r, &triple, d);
  if (!tm) {
    llvm_result_free(r);
    return -1;
  }

  /* the program's target (what it was lowered for), else the cpu's */
  const tg_target *t = p->target ? p->target : tg_for_cpu(triple, r->cpu, r->features);
  if (t->kind != TG_CPU) {
    nn_error(d, none, "the program was lowered for '%s', not for a CPU", t->name);
    LLVMDisposeTargetMachine(tm);
    free(triple);
    llvm_result_free(r);
    return -1;
  }
  llvm_mod lm = {.d = d, .arena = nn_arena_new(), .target = t};
  lm.ctx = LLVMContextCreate();
  char *llvm_error = NULL;
  LLVMContextSetDiagnosticHandler(lm.ctx, on_llvm_diag, &llvm_error);
  lm.mod = LLVMModuleCreateWithNameInContext("nncc", lm.ctx);
  LLVMSetSourceFileName(lm.mod, "model", 5);
  LLVMSetTarget(lm.mod, triple);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(lm.mod, dl);
  lm.b = LLVMCreateBuilderInContext(lm.ctx);
  lm.t_void = LLVMVoidTypeInContext(lm.ctx);
  lm.t_i1 = LLVMInt1TypeInContext(lm.ctx);
  lm.t_i8 = LLVMInt8TypeInContext(lm.ctx);
  lm.t_i16 = LLVMInt16TypeInContext(lm.ctx);
  lm.t_i32 = LLVMInt32TypeInContext(lm.ctx);
  lm.t_i64 = LLVMInt64TypeInContext(lm.ctx);
  lm.t_f32 = LLVMFloatTypeInContext(lm.ctx);
  lm.t_f64 = LLVMDoubleTypeInContext(lm.ctx);
  lm.t_ptr = LLVMPointerType(lm.t_i8, 0);
  lm.t_pptr = LLVMPointerType(lm.t_ptr, 0);
  LLVMTypeRef kps[3] = {lm.t_pptr, lm.t_i64, lm.t_i64};
  lm.t_kfn = LLVMFunctionType(lm.t_void, kps, 3, 0);

  int rc = -1;
  kfun *fs = NULL;
  int nf = 0;
  int *step_fun = nn_alloc(lm.arena, sizeof(int) * (size_t)(p->steps.len + 1));
  if (o->progress) o->progress(o->progress_ctx, "kernels", 0, p->steps.len);
  if (!emit_kernels(&lm, p, &fs, &nf, step_fun)) goto done;
  emit_graph(&lm, p, fs, step_fun);

  char *err = NULL;
  if (LLVMVerifyModule(lm.mod, LLVMReturnStatusAction, &err)) {
    nn_error(d, none, "internal: the generated LLVM module is invalid: %s", err ? err : "?");
    LLVMDisposeMessage(err);
    goto done;
  }
  LLVMDisposeMessage(err);
  optimize(lm.mod, tm, o->opt_level, o);

  if (want_ir) {
    char *ir = LLVMPrintModuleToString(lm.mod);
    r->ir_text = xstrdup(ir);
    LLVMDisposeMessage(ir);
  }
  LLVMMemoryBufferRef obj = NULL;
  err = NULL;
  if (o->progress) o->progress(o->progress_ctx, "object", 0, 0);
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, lm.mod, LLVMObjectFile, &err, &obj)) {
    nn_error(d, none, "LLVM could not emit the object: %s", err ? err : "?");
    LLVMDisposeMessage(err);
    goto done;
  }
  if (llvm_error) {
    nn_error(d, none, "LLVM: %s", llvm_error);
    LLVMDisposeMemoryBuffer(obj);
    goto done;
  }
  r->obj_size = LLVMGetBufferSize(obj);
  r->obj = malloc(r->obj_size ? r->obj_size : 1);
  NN_ASSERT(r->obj);
  memcpy(r->obj, LLVMGetBufferStart(obj), r->obj_size);
  LLVMDisposeMemoryBuffer(obj);
  rc = 0;

done:
  LLVMDisposeBuilder(lm.b);
  LLVMDisposeModule(lm.mod);
  LLVMDisposeTargetData(dl);
  LLVMContextDispose(lm.ctx);
  LLVMDisposeTargetMachine(tm);
  nn_arena_free(lm.arena);
  free(triple);
  free(llvm_error);
  if (rc != 0) llvm_result_free(r);
  return rc;
}

void llvm_result_free(llvm_result *r) {
  free(r->obj);
  free(r->ir_text);
  free(r->cpu);
  free(r->features);
  memset(r, 0, sizeof *r);
}
