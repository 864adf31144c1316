/* llvm_gemm.c — KS_GEMM as a native, register-tiled microkernel in LLVM IR.
 *
 * A GEMM statement the native path takes (llvm_gemm_native: B's columns
 * contiguous or B packed in panels; anything else is expanded into loops by
 * k_expand_gemms) is emitted in three layers:
 *
 *  - Macro tiles, as kernel statements (llvm_gemm_prepare). A GEMM that is
 *    its kernel's only root statement becomes
 *        PARALLEL for t in [0, ceil(M/MB) * ceil(N/NB)):
 *          GEMM over rows [r0, r0+MB) x columns [c0, c0+NB) of C
 *    (offsets moved to the tile, sizes clipped), so the thread pool splits
 *    the product like any parallel kernel. MB and NB are numbers: chosen
 *    from M and N when they are constants (enough tiles for the pool, tiles
 *    as large as that allows), fixed when symbolic.
 *
 *  - The driver, inline in the kernel (llvm_gemm_emit), for one GEMM
 *    statement (a macro tile, or a whole product inside a batch loop):
 *        for each K block [k0, k0+kc)            (K split evenly, kc <= KC)
 *          for each column tile n0 (NR columns; a last, narrower one)
 *            for each row tile m0 (MR rows; a last, shorter one)
 *              microkernel: C[m0.., n0..] (= | +=) alpha * A-block @ B-block
 *            after the last K block: post(n0) — bias and epilogue over the
 *              column tile (all rows), while it is in cache
 *    C is the accumulator between K blocks: the first block stores (or
 *    adds to C when accumulating), later ones add.
 *
 *  - Microkernels, one internal function per shape (rows mr <= MR, vectors
 *    nv <= NV, whether the last vector is partial, whether B loads must be
 *    masked): accumulators are SSA values (phis) of an mr x nv tile of
 *    <W x float> vectors carried across the k loop; each step broadcasts mr
 *    elements of A, loads nv vectors of B and does mr*nv llvm.fmuladd. The
 *    tile is stored once, after the loop; a partial last vector uses
 *    llvm.masked.load/store, so column tails stay vectorized. A column
 *    tail of a few columns with A in panels of 8 rows (a convolution with
 *    a small output, e.g. 7x7 = 48 + 1 columns, 14x14 = 4*48 + 4) is
 *    computed by the microkernels of the last full column tile when the
 *    tail has at most XT_MAX columns and the rows come in whole panels:
 *    each k step also multiplies the panel's 8 consecutive floats (one
 *    8-wide vector) by each broadcast tail element of B, so the tail
 *    costs an FMA per column per step on A that is already in L1, instead
 *    of a second pass over all of A (which, for the 7x7 layers of a
 *    ResNet, comes from memory: those layers ran 10 % faster). Other
 *    short tails go to narrow microkernels, vectorized along M the same
 *    way, so no lane is wasted on absent columns.
 *
 * The register tile follows the target's vector width (the features the
 * module is compiled for, from --mcpu or the host): AVX-512 W=16, 8x3
 * vectors (24 zmm accumulators of 32); AVX2 W=8, 4x3 (12 ymm of 16);
 * otherwise W=4, 4x3.
 *
 * Operand layouts. A is read through any strides (its elements are
 * broadcast), or from panels of PACK_A rows (ks_gemm.a_panel, a packed
 * convolution weight: then a row tile reads one contiguous stream, and
 * prefetches the next row tile's stream into L2 as it goes: a convolution
 * with few output columns (the 7x7 layers of a ResNet) uses each weight
 * only a few dozen times, so its weights come from memory, and short
 * per-block streams are not picked up by the hardware prefetcher early
 * enough; the prefetch nearly halves those layers' time). B is
 * read as vectors of contiguous columns: rows with column stride 1, or
 * panels of P columns (ks_gemm.b_panel, a packed linear weight), which are
 * zero-padded, so their loads are never masked.
 *
 * B as an image's im2col (ks_gemm.im2col, a convolution): the im2col
 * buffer is never written. Instead, per K block, every PK_TILES column
 * tiles, the driver packs the block of B from the image into a buffer on
 * the stack (pack_fn: the im2col index arithmetic done as it copies, zeros
 * for padded taps, vector loads masked at the image's edges), and the
 * microkernels read that block (rows of PK_TILES * NR floats, zero-padded
 * past N, so their B loads are never masked). The block holds PK_BLOCK_KC
 * rows of that width, or PK_TILES times as many of one tile when N <= NR.
 *
 * Numerics: products are summed in f32 over k in order within a K block,
 * blocks added in order, fused multiply-adds where the target has them;
 * results differ from the interpreter's only by rounding.
 */
#include <string.h>

#include <llvm/Config/llvm-config.h>

#include "llvm_internal.h"

/* ---- target configuration -------------------------------------------- */

enum {
  MAX_NV = 4,         /* vectors per row of a register tile, at most */
  TILE_NB_ALIGN = 48, /* macro tile columns: a multiple of every NR below
                         and of the B panel width */
  TILE_MB_ALIGN = 8,  /* macro tile rows: a multiple of every MR and of
                         the A panel height */
  MIN_TILES = 8,      /* macro tiles wanted for the thread pool */
  MAX_MB = 128,       /* largest macro tile */
  MAX_NB = 384,
  SYM_MB = 64, /* macro tiles of a symbolic M / N */
  SYM_NB = 192,
  PACK_MIN_COLS = 3, /* B packed from an image: at least this many times
                        TILE_NB_ALIGN columns (macro_tile_packed) */
  XT_MAX = 4,        /* columns past the last full column tile that its
                        microkernels compute too (A in panels of 8) */
};

/* The register tile and blocking for the module's target. */
typedef struct gcfg {
  int w;  /* floats per vector */
  int mr; /* rows of a register tile */
  int nv; /* vectors per row: NR = nv * w columns */
  int kc; /* K block depth */
} gcfg;

/* Whether comma-separated feature list `fs` enables `name` ("+name"). */
static bool has_feature(const char *fs, const char *name) {
  size_t n = strlen(name);
  for (const char *p = fs; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n + 1 && p[0] == '+' && strncmp(p + 1, name, n) == 0) return true;
    p = e ? e + 1 : NULL;
  }
  return false;
}

static bool in_list(const char *cpu, const char *const *names) {
  for (int i = 0; names[i]; i++)
    if (strcmp(cpu, names[i]) == 0) return true;
  return false;
}

/* Vector width in floats for the module's cpu and features. A cpu named
 * by --mcpu comes with no feature list: the tables below name the x86
 * cpus this LLVM knows that have AVX-512 / AVX2 with FMA (a name LLVM
 * does not know compiles for a generic cpu, so it must not pick a wide
 * tile). */
static int target_width(const llvm_mod *lm) {
  static const char *const avx512[] =
  { "skylake-avx512",
    "skx",
    "cascadelake",
    "cooperlake",
    "cannonlake",
    "icelake-client",
    "icelake-server",
    "tigerlake",
    "sapphirerapids",
    "rocketlake",
    "knl",
    "knm",
    "x86-64-v4",
#if LLVM_VERSION_MAJOR >= 16
    "znver4",
    "graniterapids",
    "emeraldrapids",
#endif
    NULL };
  static const char *const avx2[] =
  { "haswell",
    "broadwell",
    "skylake",
    "alderlake",
    "znver1",
    "znver2",
    "znver3",
    "x86-64-v3",
    "bdver4",
    "core-avx2",
#if LLVM_VERSION_MAJOR >= 15
    "raptorlake",
    "meteorlake",
#endif
    NULL };
  const char *fs = lm->features ? lm->features : "";
  const char *cpu = lm->cpu ? lm->cpu : "";
  if (has_feature(fs, "avx512f")) return 16;
  if (has_feature(fs, "avx2") && has_feature(fs, "fma")) return 8;
  if (!fs[0] && in_list(cpu, avx512)) return 16;
  if (!fs[0] && in_list(cpu, avx2)) return 8;
  return 4;
}

static gcfg gemm_cfg(const llvm_mod *lm) {
  int w = target_width(lm);
  if (w == 16) return (gcfg){.w = 16, .mr = 8, .nv = 3, .kc = 256};
  if (w == 8) return (gcfg){.w = 8, .mr = 4, .nv = 3, .kc = 256};
  return (gcfg){.w = 4, .mr = 4, .nv = 3, .kc = 256};
}

/* ---- which GEMMs, and the macro tiles ------------------------------------ */

static bool is_num(const kernel *k, kx_id e, int64_t *v) {
  if (e < 0 || e >= k->exprs.len) return false;
  const kx *x = &k->exprs.data[e];
  if (x->op != KX_CONST || x->dtype != NN_DT_I64) return false;
  *v = x->i;
  return true;
}

bool llvm_gemm_native(const llvm_mod *lm, const kernel *k, const ks_gemm *g) {
  gcfg cf = gemm_cfg(lm);
  int64_t v;
  if (is_num(k, g->n, &v) && v == 1)
    return false; /* a matrix-vector product: the expansion's dot products */
  if (g->b_panel > 0) {
    if (g->b_panel % cf.w || TILE_NB_ALIGN % g->b_panel || !is_num(k, g->k, &v)) return false;
  } else if (!is_num(k, g->b_cs, &v) || v != 1) {
    return false;
  }
  if (g->a_panel > 0 && (g->a_panel % cf.mr || TILE_MB_ALIGN % g->a_panel || !is_num(k, g->k, &v)))
    return false;
  if (g->im2col && (g->im2col->x < 0 || g->im2col->x >= k->bufs.len ||
                    k->bufs.data[g->im2col->x].dtype != NN_DT_F32))
    return false;
  return true;
}

static kx_id I(kernel *k, int64_t v) { return k_i64(k, v); }
static kx_id ADD(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_ADD, a, b); }
static kx_id MUL(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_MUL, a, b); }
static kx_id CEILDIV(kernel *k, kx_id a, int64_t b) {
  return k_bin(k, KX_FLOORDIV, ADD(k, a, I(k, b - 1)), I(k, b));
}

static int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

/* Macro tile sizes for an M x N product (-1: symbolic): as large as
 * MAX_MB x MAX_NB, halved (columns first) until there are MIN_TILES. */
static void macro_tile(int64_t M, int64_t N, int64_t *mb, int64_t *nb) {
  int64_t MB = M > 0 ? round_up(M, TILE_MB_ALIGN) : SYM_MB;
  int64_t NB = N > 0 ? round_up(N, TILE_NB_ALIGN) : SYM_NB;
  if (MB > MAX_MB) MB = MAX_MB;
  if (NB > MAX_NB) NB = MAX_NB;
  while (M > 0 && N > 0 && ((M + MB - 1) / MB) * ((N + NB - 1) / NB) < MIN_TILES) {
    if (NB > 2 * TILE_NB_ALIGN)
      NB = round_up(NB / 2, TILE_NB_ALIGN);
    else if (MB > 4 * TILE_MB_ALIGN)
      MB = round_up(MB / 2, TILE_MB_ALIGN);
    else
      break;
  }
  *mb = MB;
  *nb = NB;
}

/* Macro tiles for a GEMM that packs B from an image (ks_gemm.im2col):
 * each tile takes every row, so that no two tiles pack the same block of
 * B, and the columns are split (in whole column tiles) until there are
 * MIN_TILES tiles or the tiles are one column tile wide. False (pack
 * nothing: the im2col buffer is read) when there are not PACK_MIN_COLS
 * column tiles of columns, too few for the pool to share by columns
 * alone. */
static bool macro_tile_packed(int64_t M, int64_t N, int64_t *mb, int64_t *nb) {
  if (M <= 0 || (N > 0 && N < PACK_MIN_COLS * TILE_NB_ALIGN)) return false;
  *mb = round_up(M, TILE_MB_ALIGN);
  if (N <= 0) {
    *nb = SYM_NB;
    return true;
  }
  int64_t NB = round_up(N, TILE_NB_ALIGN);
  if (NB > MAX_NB) NB = MAX_NB;
  while ((N + NB - 1) / NB < MIN_TILES && NB > TILE_NB_ALIGN) NB = round_up(NB / 2, TILE_NB_ALIGN);
  *nb = NB;
  return true;
}

/* Rewrites k's only root statement, GEMM g, into the parallel loop over
 * macro tiles described at the top of the file. */
static void tile_root(kernel *k, const ks_gemm *g) {
  int64_t Mv = -1, Nv = -1, MB, NB;
  if (!is_num(k, g->m, &Mv)) Mv = -1;
  if (!is_num(k, g->n, &Nv)) Nv = -1;
  bool packs = g->im2col && macro_tile_packed(Mv, Nv, &MB, &NB);
  if (!packs) macro_tile(Mv, Nv, &MB, &NB);
  /* a last column tile of at most XT_MAX columns joins the one before
   * (the microkernels of that one's last full column tile compute them,
   * see llvm_gemm_emit) */
  bool absorb = Nv > NB && Nv % NB > 0 && Nv % NB <= XT_MAX;
  kx_id ncb = absorb ? I(k, Nv / NB) : CEILDIV(k, g->n, NB);
  kx_id nmb = CEILDIV(k, g->m, MB);
  kx_id tiles = MUL(k, nmb, ncb);
  k->root.len = 0;
  int32_t t = k_for_begin(k, I(k, 0), tiles, KS_PARALLEL);
  kx_id tv = k_varref(k, t);
  /* column-major: a run of consecutive tiles (what one thread of the
   * pool takes first) covers whole columns, i.e. output positions of a
   * convolution, as the split of the layer before and after did */
  kx_id r0 = MUL(k, k_bin(k, KX_MOD, tv, nmb), I(k, MB));
  kx_id c0 = MUL(k, k_bin(k, KX_DIV, tv, nmb), I(k, NB));
  ks_gemm s = *g;
  s.m = k_bin(k, KX_MIN, I(k, MB), k_bin(k, KX_SUB, g->m, r0));
  s.n = k_bin(k, KX_MIN, I(k, NB), k_bin(k, KX_SUB, g->n, c0));
  if (absorb) /* the last column tile takes the rest */
    s.n = k_select(k, k_bin(k, KX_EQ, k_bin(k, KX_DIV, tv, nmb), I(k, Nv / NB - 1)),
                   k_bin(k, KX_SUB, g->n, c0), I(k, NB));
  /* panels: r0 and c0 are whole panels (MB, NB multiples of the panel
   * sizes), K deep each */
  s.a_off = ADD(k, g->a_off, MUL(k, r0, g->a_panel > 0 ? g->k : g->a_rs));
  s.b_off = ADD(k, g->b_off, MUL(k, c0, g->b_panel > 0 ? g->k : g->b_cs));
  s.c_off = ADD(k, g->c_off, ADD(k, MUL(k, r0, g->ldc), c0));
  if (g->bias >= 0)
    s.bias_off = ADD(k, g->bias_off, ADD(k, MUL(k, r0, g->bias_rs), MUL(k, c0, g->bias_cs)));
  s.im2col = NULL; /* B read in place (the im2col kernel runs) */
  if (packs) {     /* the tile's columns start c0 output positions on */
    ks_im2col *ic = nn_alloc(k->arena, sizeof *ic);
    *ic = *g->im2col;
    ic->n0 = ADD(k, ic->n0, c0);
    s.im2col = ic;
  }
  k_gemm(k, &s);
  k_for_end(k);
}

bool llvm_gemm_prepare(llvm_mod *lm, kernel *k) {
  for (int i = 0; i < k->stmts.len; i++)
    if (k->stmts.data[i].kind == KS_GEMM && !llvm_gemm_native(lm, k, &k->stmts.data[i].gemm))
      return false;
  if (k->root.len == 1 && k->stmts.data[k->root.data[0]].kind == KS_GEMM) {
    ks_gemm g = k->stmts.data[k->root.data[0]].gemm;
    tile_root(k, &g);
  }
  return true;
}

/* ---- IR helpers ------------------------------------------------------------ */

static LLVMValueRef ci64(llvm_mod *lm, int64_t v) {
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
static LLVMValueRef gep(llvm_mod *lm, LLVMValueRef p, LLVMValueRef i) {
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
  LLVMValueRef next = LLVMBuildNSWAdd(b, l->iv, ci64(lm, 1), "");
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
  LLVMBasicBlockRef entry, loop, done; /* before, the step, after the loop */
  LLVMValueRef zero;                   /* a vector of zeros */
  LLVMValueRef kk;                     /* i64: the step's k, from 0 */
  int rows, cols;                      /* of the tile */
  LLVMValueRef acc[16][MAX_NV];        /* the accumulators before the step */
  LLVMValueRef nacc[16][MAX_NV];       /* after it (set by the caller) */
  LLVMValueRef fin[16][MAX_NV];        /* in `done`: the sums (zero for no step) */
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
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, kc, ci64(lm, 0), ""), l->loop, l->done);
  LLVMPositionBuilderAtEnd(b, l->loop);
  l->kk = LLVMBuildPhi(b, lm->t_i64, "kk");
  for (int i = 0; i < l->rows; i++)
    for (int j = 0; j < l->cols; j++) l->acc[i][j] = LLVMBuildPhi(b, vt, "acc");
}

/* Closes the step (nacc set: loops while kk + 1 < kc) and opens `done`. */
static void kloop_end(llvm_mod *lm, kloop *l, LLVMValueRef kc) {
  LLVMBuilderRef b = lm->b;
  LLVMTypeRef vt = LLVMTypeOf(l->zero);
  LLVMValueRef knext = LLVMBuildNSWAdd(b, l->kk, ci64(lm, 1), "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, knext, kc, ""), l->loop, l->done);
  LLVMBasicBlockRef from[2] = {l->entry, l->loop};
  LLVMValueRef kin[2] = {ci64(lm, 0), knext};
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

/* Parameters of a microkernel, in order; then nv B pointers. */
enum {
  UK_A,      /* float*: A[m0, k0] */
  UK_A_RS,   /* i64: A's row stride (elements) */
  UK_A_CS,   /* i64: A's k stride */
  UK_B_RS,   /* i64: the k stride of every B pointer */
  UK_KC,     /* i64: k steps */
  UK_C,      /* float*: C[m0, n0] */
  UK_LDC,    /* i64 */
  UK_ALPHA,  /* float */
  UK_LOAD_C, /* i1: add to C (else store) */
  UK_NLAST,  /* i64: valid lanes of the last vector (masked kernels) */
  UK_A_PF,   /* i64: elements from A to the A of the next row tile, whose
                lines the k loop prefetches (prefetching kernels) */
  UK_B0,     /* float*: B[k0, n0 + j*W], j < nv */
};

/* The microkernel for an mr x (nv vectors) tile; `masked`: the last vector
 * is partial (UK_NLAST lanes) in C, and in B too when `bmask`; `pf`: each k
 * step also prefetches (into L2) the A elements of the same step of the
 * next row tile, UK_A_PF elements on. With A in panels that is a
 * contiguous stream (8 floats a step), so the weights of a GEMM that reads
 * them once (few columns: they come from memory, not cache) arrive ahead
 * of their row tile instead of stalling it. Built once per module. */
static LLVMValueRef ukernel(llvm_mod *lm, const gcfg *cf, int mr, int nv, bool masked, bool bmask,
                            bool pf, int xt) {
  if (mr != 8) xt = 0; /* extra columns need rows in whole panels of 8 */
  char name[64];
  snprintf(name, sizeof name, "nncc.gemm.w%d.%dx%d%s%s%s", cf->w, mr, nv, masked ? ".m" : "",
           masked && bmask ? "b" : "", pf ? ".pf" : "");
  if (xt) snprintf(name + strlen(name), sizeof name - strlen(name), ".x%d", xt);
  LLVMValueRef fn = LLVMGetNamedFunction(lm->mod, name);
  if (fn) return fn;
  LLVMBuilderRef b = lm->b;
  LLVMBasicBlockRef saved = LLVMGetInsertBlock(b);
  LLVMTypeRef fp = LLVMPointerType(lm->t_f32, 0);
  LLVMTypeRef ps[UK_B0 + MAX_NV + 2] = {fp,        lm->t_i64, lm->t_i64, lm->t_i64, lm->t_i64, fp,
                                        lm->t_i64, lm->t_f32, lm->t_i1,  lm->t_i64, lm->t_i64};
  int np = UK_B0 + nv + (xt ? 2 : 0); /* the extra columns' B and C last */
  for (int j = UK_B0; j < np; j++) ps[j] = fp;
  LLVMValueRef P[UK_B0 + MAX_NV + 2];
  fn = uk_function(lm, name, ps, np, P);
  for (int i = 0; i < np; i++)
    if (LLVMTypeOf(P[i]) == fp) llvm_param_attr(lm, fn, (unsigned)i, "nocapture");
  LLVMValueRef XB = xt ? P[UK_B0 + nv] : NULL, XC = xt ? P[UK_B0 + nv + 1] : NULL;
  LLVMTypeRef v8 = LLVMVectorType(lm->t_f32, 8);
  LLVMValueRef xacc[XT_MAX], xnacc[XT_MAX], xfin[XT_MAX];

  LLVMTypeRef vt = LLVMVectorType(lm->t_f32, (unsigned)cf->w);
  kloop kl = {.zero = LLVMConstNull(vt), .rows = mr, .cols = nv};
  kloop_blocks(lm, fn, &kl);
  LLVMBasicBlockRef add = LLVMAppendBasicBlockInContext(lm->ctx, fn, "add");
  LLVMBasicBlockRef set = LLVMAppendBasicBlockInContext(lm->ctx, fn, "set");
  LLVMPositionBuilderAtEnd(b, kl.entry);
  LLVMValueRef mask = NULL;
  if (masked) { /* lane l < nlast */
    LLVMValueRef lanes[16];
    for (int l = 0; l < cf->w; l++) lanes[l] = ci64(lm, l);
    LLVMValueRef iota = LLVMConstVector(lanes, (unsigned)cf->w);
    mask = LLVMBuildICmp(b, LLVMIntSLT, iota,
                         splat(lm, LLVMVectorType(lm->t_i64, (unsigned)cf->w), P[UK_NLAST]), "");
  }
  LLVMValueRef arow[16] = {NULL};
  for (int i = 0; i < mr; i++)
    arow[i] = gep(lm, P[UK_A], LLVMBuildMul(b, ci64(lm, i), P[UK_A_RS], ""));

  /* the k loop: acc[i][j] += A[i, k] * B[k, j-th vector]; and with xt
   * extra columns c, xacc[c] (8 rows) += A[0..8, k] (the panel's 8
   * consecutive floats) * B[k, c] */
  kloop_head(lm, &kl, P[UK_KC]);
  for (int c = 0; c < xt; c++) xacc[c] = LLVMBuildPhi(b, v8, "xacc");
  LLVMValueRef bv[MAX_NV];
  LLVMValueRef boff = LLVMBuildMul(b, kl.kk, P[UK_B_RS], "");
  for (int j = 0; j < nv; j++)
    bv[j] = vload(lm, vt, gep(lm, P[UK_B0 + j], boff),
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
    LLVMValueRef a = LLVMBuildLoad2(b, lm->t_f32, gep(lm, arow[i], aoff), "");
    LLVMValueRef av = splat(lm, vt, a);
    for (int j = 0; j < nv; j++) kl.nacc[i][j] = fmuladd(lm, av, bv[j], kl.acc[i][j]);
  }
  if (xt) {
    LLVMValueRef a8 = vload(lm, v8, gep(lm, arow[0], aoff), NULL);
    for (int c = 0; c < xt; c++) {
      LLVMValueRef bx = LLVMBuildLoad2(b, lm->t_f32,
                                       gep(lm, XB, LLVMBuildAdd(b, boff, ci64(lm, c), "")), "");
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
      LLVMValueRef row = gep(lm, P[UK_C], LLVMBuildMul(b, ci64(lm, i), P[UK_LDC], ""));
      for (int j = 0; j < nv; j++) {
        LLVMValueRef m = masked && j == nv - 1 ? mask : NULL;
        LLVMValueRef p = gep(lm, row, ci64(lm, (int64_t)j * cf->w));
        LLVMValueRef v = pass == 0 ? fmuladd(lm, alpha, kl.fin[i][j], vload(lm, vt, p, m))
                                   : LLVMBuildFMul(b, alpha, kl.fin[i][j], "");
        vstore(lm, v, p, m);
      }
    }
    for (int c = 0; c < xt; c++) /* the extra columns, element by element */
      for (int i = 0; i < 8; i++) {
        LLVMValueRef p = gep(lm, XC,
                             LLVMBuildAdd(b, LLVMBuildMul(b, ci64(lm, i), P[UK_LDC], ""),
                                          ci64(lm, c), ""));
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

/* Parameters of a narrow microkernel (a few columns, A in panels of 8). */
enum {
  NK_A,      /* float*: panel p0 of A at k0 (8 rows, contiguous per k) */
  NK_PS,     /* i64: elements from one panel to the next (8*K) */
  NK_B,      /* float*: B[k0, n0] */
  NK_B_RS,   /* i64 */
  NK_KC,     /* i64 */
  NK_C,      /* float*: C[8*p0, n0] */
  NK_LDC,    /* i64 */
  NK_ALPHA,  /* float */
  NK_LOAD_C, /* i1 */
  NK_ROWS,   /* i64: rows of C to store (<= 8*np) */
  NK_COUNT,
};

/* The narrow microkernel: np panels of 8 rows of A x nt columns, vectors
 * along M (a column's 8 rows of one panel are 8 consecutive floats of the
 * panel), each B element broadcast. For column tails too narrow for the
 * row-wise tile, where most lanes would be masked off. Stores element by
 * element (rows past NK_ROWS skipped). */
static LLVMValueRef nkernel(llvm_mod *lm, int np, int nt) {
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
  LLVMTypeRef vt = LLVMVectorType(lm->t_f32, 8);
  kloop kl = {.zero = LLVMConstNull(vt), .rows = np, .cols = nt};
  kloop_blocks(lm, fn, &kl);
  LLVMPositionBuilderAtEnd(b, kl.entry);
  LLVMValueRef pan[16];
  for (int p = 0; p < np; p++)
    pan[p] = gep(lm, P[NK_A], LLVMBuildMul(b, ci64(lm, p), P[NK_PS], ""));
  kloop_head(lm, &kl, P[NK_KC]);
  LLVMValueRef bv[MAX_NV];
  LLVMValueRef brow = gep(lm, P[NK_B], LLVMBuildMul(b, kl.kk, P[NK_B_RS], ""));
  for (int n = 0; n < nt; n++)
    bv[n] = splat(lm, vt, LLVMBuildLoad2(b, lm->t_f32, gep(lm, brow, ci64(lm, n)), ""));
  LLVMValueRef koff = LLVMBuildMul(b, kl.kk, ci64(lm, 8), "");
  for (int p = 0; p < np; p++) {
    LLVMValueRef av = vload(lm, vt, gep(lm, pan[p], koff), NULL);
    for (int n = 0; n < nt; n++) kl.nacc[p][n] = fmuladd(lm, av, bv[n], kl.acc[p][n]);
  }
  /* C[r, n] (= | +=) alpha * lane r % 8 of acc[r / 8][n], for r < rows */
  kloop_end(lm, &kl, P[NK_KC]);
  LLVMValueRef alpha = splat(lm, vt, P[NK_ALPHA]);
  LLVMValueRef fin[16][MAX_NV] = {{0}};
  for (int p = 0; p < np; p++)
    for (int n = 0; n < nt; n++) fin[p][n] = LLVMBuildFMul(b, alpha, kl.fin[p][n], "");
  for (int r = 0; r < np * 8; r++) {
    LLVMBasicBlockRef st = LLVMAppendBasicBlockInContext(lm->ctx, fn, "row");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(lm->ctx, fn, "next");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, ci64(lm, r), P[NK_ROWS], ""), st, next);
    LLVMPositionBuilderAtEnd(b, st);
    LLVMValueRef row = gep(lm, P[NK_C], LLVMBuildMul(b, ci64(lm, r), P[NK_LDC], ""));
    for (int n = 0; n < nt; n++) {
      LLVMValueRef x = LLVMBuildExtractElement(b, fin[r / 8][n],
                                               LLVMConstInt(lm->t_i32, (unsigned)(r % 8), 0), "");
      LLVMValueRef cp = gep(lm, row, ci64(lm, n));
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

/* Parameters of a packing function, in order. */
enum {
  PK_DST, /* float*: the packed block, kc rows of PK_LD floats */
  PK_LD,  /* i64: its row stride (NR) */
  PK_X,   /* float*: the image's first input channel of the group */
  PK_H,   /* i64: input height */
  PK_W,   /* i64: input width */
  PK_WO,  /* i64: output width */
  PK_K0,  /* i64: the block's first row of B */
  PK_KC,  /* i64: its rows */
  PK_N0,  /* i64: output position of the block's first column */
  PK_NR,  /* i64: its columns (<= PK_LD; the rest are zeros) */
  PK_COUNT
};
/* A packed block is PK_TILES column tiles wide (longer runs of each image
 * row per packing call) and PK_BLOCK_KC rows deep, so that it stays as
 * small as one column tile of a full K block (it lives on the stack); a
 * GEMM of at most one column tile (N <= NR) packs one tile PK_TILES times
 * as deep instead (its K blocks as long as without packing). Its columns
 * cross at most MAX_PK_SEG output rows. */
enum {
  PK_TILES = 4,
  PK_BLOCK_KC = 64,
  MAX_PK_SEG = PK_TILES * MAX_NV * 16 + 1,
};

/* floor(a / b) for b > 0. */
static LLVMValueRef floordiv(llvm_mod *lm, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef bl = lm->b;
  LLVMValueRef q = LLVMBuildSDiv(bl, a, b, "");
  LLVMValueRef neg = LLVMBuildICmp(bl, LLVMIntSLT, LLVMBuildSRem(bl, a, b, ""), ci64(lm, 0), "");
  return LLVMBuildSub(bl, q, LLVMBuildZExt(bl, neg, lm->t_i64, ""), "");
}

static LLVMValueRef smin(llvm_mod *lm, LLVMValueRef a, LLVMValueRef b) {
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
  for (int l = 0; l < w; l++) lanes[l] = ci64(lm, l);
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
  l->step = ci64(lm, step);
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
static LLVMValueRef pack_fn(llvm_mod *lm, int w, const ks_im2col *ic) {
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
  LLVMValueRef KH = ci64(lm, ic->kh), KW = ci64(lm, ic->kw), SH = ci64(lm, ic->sh),
               SW = ci64(lm, ic->sw), PH = ci64(lm, ic->ph), PW = ci64(lm, ic->pw),
               DH = ci64(lm, ic->dh), DW = ci64(lm, ic->dw);
  LLVMTypeRef vt = LLVMVectorType(lm->t_f32, (unsigned)w);
  LLVMTypeRef vi = LLVMVectorType(lm->t_i32, (unsigned)w);
  LLVMValueRef zero = LLVMConstNull(vt), one = ci64(lm, 1), zero64 = ci64(lm, 0);
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
  LLVMValueRef khw = ci64(lm, ic->kh * ic->kw);
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
  LLVMValueRef len = smin(lm, LLVMBuildSub(b, P[PK_NR], q, ""), LLVMBuildSub(b, P[PK_WO], ow, ""));
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
  LLVMValueRef xp = gep(lm, P[PK_X], LLVMBuildMul(b, ci, plane, ""));
  LLVMValueRef drow = gep(lm, P[PK_DST], LLVMBuildMul(b, r, P[PK_LD], ""));
  /* the outputs whose tap column j is inside: [lo, hi) */
  LLVMValueRef a = LLVMBuildSub(b, PW, LLVMBuildMul(b, tj, DW, ""), "");
  LLVMValueRef lo = floordiv(lm, LLVMBuildAdd(b, a, ci64(lm, ic->sw - 1), ""), SW);
  lo = smin(lm, smax(lm, lo, zero64), P[PK_WO]);
  LLVMValueRef hi =
      LLVMBuildAdd(b, floordiv(lm, LLVMBuildAdd(b, a, LLVMBuildSub(b, P[PK_W], one, ""), ""), SW),
                   one, "");
  hi = smax(lm, smin(lm, hi, P[PK_WO]), lo);
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
  LLVMValueRef dseg = gep(lm, drow, q);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, ih, P[PK_H], ""), xseg, zseg);

  LLVMPositionBuilderAtEnd(b, zseg); /* the tap row is padding */
  pkloop lz;
  LLVMValueRef t = pk_loop_begin(lm, fn, &lz, zero64, len, w);
  vstore(lm, zero, gep(lm, dseg, t), NULL);
  pk_loop_end(lm, &lz, segnext);

  /* x at (ih, ow = 0) for tap column j */
  LLVMPositionBuilderAtEnd(b, xseg);
  LLVMValueRef src = gep(lm, xp, LLVMBuildSub(b, LLVMBuildMul(b, ih, P[PK_W], ""), a, ""));
  LLVMValueRef owe = LLVMBuildAdd(b, ow, len, "");
  LLVMValueRef inside = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, ow, lo, ""),
                                     LLVMBuildICmp(b, LLVMIntSLE, owe, hi, ""), "");
  LLVMBuildCondBr(b, inside, fast, edge);

  /* every column inside: whole vectors as they are, the last one masked
   * to the segment's length (it must not read past the image) */
  LLVMPositionBuilderAtEnd(b, fast);
  LLVMValueRef nfull = LLVMBuildSDiv(b, len, ci64(lm, w), "");
  LLVMValueRef xs0 = gep(lm, src, LLVMBuildMul(b, ow, SW, ""));
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, nfull, zero64, ""), fastv, fastl);
  LLVMPositionBuilderAtEnd(b, fastv);
  pkloop lf;
  t = pk_loop_begin(lm, fn, &lf, zero64, LLVMBuildMul(b, nfull, ci64(lm, w), ""), w);
  LLVMValueRef all = LLVMConstAllOnes(LLVMVectorType(lm->t_i1, (unsigned)w));
  LLVMValueRef v = strided_load(lm, w, s, gep(lm, xs0, LLVMBuildMul(b, t, SW, "")),
                                s == 1 ? NULL : all, SW);
  vstore(lm, v, gep(lm, dseg, t), NULL);
  pk_loop_end(lm, &lf, fastl);
  LLVMPositionBuilderAtEnd(b, fastl);
  LLVMValueRef tl = LLVMBuildMul(b, nfull, ci64(lm, w), "");
  LLVMValueRef left = LLVMBuildTrunc(b, LLVMBuildSub(b, len, tl, ""), lm->t_i32, "");
  LLVMValueRef ml = LLVMBuildICmp(b, LLVMIntSLT, iota, splat(lm, vi, left), "");
  v = strided_load(lm, w, s, gep(lm, xs0, LLVMBuildMul(b, tl, SW, "")), ml, SW);
  vstore(lm, v, gep(lm, dseg, tl), NULL);
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
  v = strided_load(lm, w, s, gep(lm, src, LLVMBuildMul(b, owt, SW, "")), m, SW);
  vstore(lm, v, gep(lm, dseg, t), NULL);
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
  vstore(lm, zero, gep(lm, drow, t), NULL);
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

/* ---- the driver ------------------------------------------------------------ */

/* State of one GEMM statement's emission. */
typedef struct gd {
  kctx *c;
  llvm_mod *lm;
  const ks_gemm *g;
  gcfg cf;
  const llvm_gemm_vals *v;
  LLVMValueRef A, B, C;    /* float*: the operands at their offsets */
  LLVMValueRef k0, kc;     /* the K block */
  LLVMValueRef load_c;     /* i1: add to C */
  LLVMValueRef a_rs, a_cs; /* A strides as the microkernels see them */
  LLVMValueRef b_rs;       /* B's k stride as the microkernels see it */
  LLVMValueRef pk;         /* float*: the block of B packed from the image
                              (g->im2col), or NULL: B read in place */
  LLVMValueRef pkcol;      /* float*: the current column tile in pk */
} gd;

/* Packs the block of B for columns [n0, n0 + nr) of the current K block
 * into d->pk (g->im2col). */
static void pack_block(gd *d, LLVMValueRef n0, LLVMValueRef nr) {
  llvm_mod *lm = d->lm;
  LLVMBuilderRef b = lm->b;
  const ks_im2col *ic = d->g->im2col;
  const llvm_gemm_vals *v = d->v;
  LLVMValueRef fn = pack_fn(lm, d->cf.w, ic);
  LLVMValueRef args[PK_COUNT];
  args[PK_DST] = d->pk;
  args[PK_LD] = d->b_rs;
  args[PK_X] = v->x;
  args[PK_H] = v->x_h;
  args[PK_W] = v->x_w;
  args[PK_WO] = v->x_wout;
  args[PK_K0] = d->k0;
  args[PK_KC] = d->kc;
  args[PK_N0] = LLVMBuildAdd(b, v->x_n0, n0, "");
  args[PK_NR] = nr;
  LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, PK_COUNT, "");
}

/* Makes d->pkcol the packed block's part for column tile `tile` (at column
 * n0): the block is packed first, for columns [n0, n0 + nr), when the tile
 * starts one (tile % PK_TILES == 0) and `also` (NULL: always) holds. */
static void pack_for_tile(gd *d, LLVMValueRef tile, LLVMValueRef n0, LLVMValueRef nr,
                          LLVMValueRef also) {
  llvm_mod *lm = d->lm;
  LLVMBuilderRef b = lm->b;
  int NR = d->cf.w * d->cf.nv;
  LLVMValueRef sub = LLVMBuildSRem(b, tile, ci64(lm, PK_TILES), "");
  LLVMValueRef fresh = LLVMBuildICmp(b, LLVMIntEQ, sub, ci64(lm, 0), "");
  if (also) fresh = LLVMBuildAnd(b, also, fresh, "");
  LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(lm->ctx, d->c->fn, "g.pack");
  LLVMBasicBlockRef pj = LLVMAppendBasicBlockInContext(lm->ctx, d->c->fn, "g.packj");
  LLVMBuildCondBr(b, fresh, pb, pj);
  LLVMPositionBuilderAtEnd(b, pb);
  pack_block(d, n0, nr);
  LLVMBuildBr(b, pj);
  LLVMPositionBuilderAtEnd(b, pj);
  d->pkcol = gep(lm, d->pk, LLVMBuildMul(b, sub, ci64(lm, NR), ""));
}

/* The element offset of index x (a row of A, a column of B) in panels of
 * p entries, K deep: panel x / p, entry x % p in it. */
static LLVMValueRef panel_off(llvm_mod *lm, LLVMValueRef x, int p, LLVMValueRef K) {
  LLVMBuilderRef b = lm->b;
  LLVMValueRef P = ci64(lm, p);
  return LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildSDiv(b, x, P, ""), LLVMBuildMul(b, P, K, ""), ""),
                      LLVMBuildSRem(b, x, P, ""), "");
}

/* Calls the microkernel for rows [m0, m0+mr) x nv vectors of the column
 * tile whose B pointers are bp; mr a number. */
static void call_uk(gd *d, int mr, int nv, bool masked, LLVMValueRef m0, LLVMValueRef n0,
                    LLVMValueRef nlast, LLVMValueRef *bp, int xt, LLVMValueRef xb) {
  llvm_mod *lm = d->lm;
  LLVMBuilderRef b = lm->b;
  bool bmask = d->g->b_panel == 0 && !d->pk; /* packed blocks are padded */
  bool pf = d->g->a_panel > 0;
  LLVMValueRef fn = ukernel(lm, &d->cf, mr, nv, masked, bmask, pf, xt);
  LLVMValueRef args[UK_B0 + MAX_NV + 2];
  /* A[m0, k0]: with panels, m0 is inside panel m0 / P at row m0 % P */
  LLVMValueRef aoff = d->g->a_panel > 0 ? panel_off(lm, m0, d->g->a_panel, d->v->k)
                                        : LLVMBuildMul(b, m0, d->v->a_rs, "");
  aoff = LLVMBuildAdd(b, aoff, LLVMBuildMul(b, d->k0, d->a_cs, ""), "");
  args[UK_A] = gep(lm, d->A, aoff);
  args[UK_A_RS] = d->a_rs;
  args[UK_A_CS] = d->a_cs;
  args[UK_B_RS] = d->b_rs;
  args[UK_KC] = d->kc;
  args[UK_C] = gep(lm, d->C, LLVMBuildAdd(b, LLVMBuildMul(b, m0, d->v->ldc, ""), n0, ""));
  args[UK_LDC] = d->v->ldc;
  args[UK_ALPHA] = LLVMConstReal(lm->t_f32, d->g->alpha);
  args[UK_LOAD_C] = d->load_c;
  args[UK_NLAST] = nlast ? nlast : ci64(lm, d->cf.w);
  /* the next row tile of A in panels: the next panel (a prefetch past the
   * last one touches nothing) */
  args[UK_A_PF] = pf ? LLVMBuildMul(b, ci64(lm, d->g->a_panel), d->v->k, "") : ci64(lm, 0);
  for (int j = 0; j < nv; j++) args[UK_B0 + j] = bp[j];
  int na = UK_B0 + nv;
  if (xt) { /* the extra columns start NR columns on, in B and in C */
    args[na++] = xb;
    args[na++] = gep(lm, args[UK_C], ci64(lm, (int64_t)d->cf.w * nv));
  }
  LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)na, "");
}

/* Rows [m0, m0 + mr) with mr in [1, MR) known at run time only: a switch
 * over the microkernels of each height. */
static void call_uk_rows(gd *d, LLVMValueRef mr, int nv, bool masked, LLVMValueRef m0,
                         LLVMValueRef n0, LLVMValueRef nlast, LLVMValueRef *bp) {
  llvm_mod *lm = d->lm;
  if (LLVMIsAConstantInt(mr)) {
    long long r = LLVMConstIntGetSExtValue(mr);
    if (r > 0 && r < d->cf.mr) call_uk(d, (int)r, nv, masked, m0, n0, nlast, bp, 0, NULL);
    return;
  }
  LLVMValueRef fn = d->c->fn;
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(lm->ctx, fn, "g.rows");
  LLVMValueRef sw = LLVMBuildSwitch(lm->b, mr, join, (unsigned)d->cf.mr);
  for (int r = 1; r < d->cf.mr; r++) {
    LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(lm->ctx, fn, "g.row");
    LLVMAddCase(sw, ci64(lm, r), bb);
    LLVMPositionBuilderAtEnd(lm->b, bb);
    call_uk(d, r, nv, masked, m0, n0, nlast, bp, 0, NULL);
    LLVMBuildBr(lm->b, join);
  }
  LLVMPositionBuilderAtEnd(lm->b, join);
}

/* One column tile at n0 of nv vectors (the last partial, nlast lanes, when
 * masked): the row tiles over all of M; with xt > 0 (full tiles only, M a
 * multiple of MR = 8 and A in panels of 8), also the xt columns after it. */
static void column_tile(gd *d, int nv, bool masked, LLVMValueRef n0, LLVMValueRef nlast, int xt) {
  llvm_mod *lm = d->lm;
  LLVMBuilderRef b = lm->b;
  const ks_gemm *g = d->g;
  int W = d->cf.w, MR = d->cf.mr;
  LLVMValueRef bp[MAX_NV];
  for (int j = 0; j < nv; j++) {
    if (d->pk) { /* the packed block: its own first row */
      bp[j] = gep(lm, d->pkcol, ci64(lm, (int64_t)j * W));
      continue;
    }
    LLVMValueRef col = LLVMBuildAdd(b, n0, ci64(lm, (int64_t)j * W), "");
    LLVMValueRef off = g->b_panel > 0 ? panel_off(lm, col, g->b_panel, d->v->k) : col;
    bp[j] = gep(lm, d->B, LLVMBuildAdd(b, off, LLVMBuildMul(b, d->k0, d->b_rs, ""), ""));
  }
  LLVMValueRef xb = NULL; /* B of the extra columns */
  if (xt) {
    LLVMValueRef col = LLVMBuildAdd(b, n0, ci64(lm, (int64_t)nv * W), "");
    xb = d->pk ? gep(lm, d->pkcol, ci64(lm, (int64_t)nv * W))
               : gep(lm, d->B, LLVMBuildAdd(b, col, LLVMBuildMul(b, d->k0, d->b_rs, ""), ""));
  }
  LLVMValueRef mfull = LLVMBuildSDiv(b, d->v->m, ci64(lm, MR), "");
  llvm_loop l;
  LLVMValueRef mt = llvm_loop_begin(lm, d->c->fn, &l, ci64(lm, 0), mfull);
  call_uk(d, MR, nv, masked, LLVMBuildMul(b, mt, ci64(lm, MR), ""), n0, nlast, bp, xt, xb);
  llvm_loop_end(lm, &l);
  LLVMValueRef m0 = LLVMBuildMul(b, mfull, ci64(lm, MR), "");
  call_uk_rows(d, LLVMBuildSub(b, d->v->m, m0, ""), nv, masked, m0, n0, nlast, bp);
}

/* Panels of A per narrow microkernel call for nt columns (enough
 * independent accumulators to hide the FMA latency). */
static int narrow_panels(int nt) { return (12 + nt - 1) / nt; }

/* Whether the column tail goes through the narrow microkernels: A in
 * panels of 8, B plain, 8-wide vectors available, and tails of at most
 * narrow_max() columns (where the row-wise tile would waste more lanes
 * than the narrow one does). */
static int narrow_max(const gd *d) {
  if (d->g->a_panel != 8 || d->g->b_panel != 0 || d->cf.w < 8) return 0;
  return d->cf.mr / 2;
}

/* The column tail n0 of nt columns (a number) with the narrow kernels:
 * groups of narrow_panels(nt) panels over M, then the last group. */
static void narrow_tile(gd *d, int nt, LLVMValueRef n0) {
  llvm_mod *lm = d->lm;
  LLVMBuilderRef b = lm->b;
  int np = narrow_panels(nt);
  LLVMValueRef ps = LLVMBuildMul(b, ci64(lm, 8), d->v->k, "");
  LLVMValueRef bptr = d->pk ? d->pkcol
                            : gep(lm, d->B,
                                  LLVMBuildAdd(b, n0, LLVMBuildMul(b, d->k0, d->b_rs, ""), ""));
  LLVMValueRef npan = LLVMBuildSDiv(b, LLVMBuildAdd(b, d->v->m, ci64(lm, 7), ""), ci64(lm, 8), "");
  LLVMValueRef groups = LLVMBuildSDiv(b, npan, ci64(lm, np), "");
  /* one call: panels [p0, p0 + cnt) */
  for (int pass = 0; pass < 2; pass++) {
    llvm_loop l;
    LLVMValueRef p0;
    if (pass == 0) {
      LLVMValueRef gi = llvm_loop_begin(lm, d->c->fn, &l, ci64(lm, 0), groups);
      p0 = LLVMBuildMul(b, gi, ci64(lm, np), "");
    } else {
      p0 = LLVMBuildMul(b, groups, ci64(lm, np), "");
    }
    LLVMValueRef m0 = LLVMBuildMul(b, p0, ci64(lm, 8), "");
    LLVMValueRef args[NK_COUNT];
    args[NK_A] = gep(lm, d->A,
                     LLVMBuildAdd(b, LLVMBuildMul(b, p0, ps, ""),
                                  LLVMBuildMul(b, d->k0, ci64(lm, 8), ""), ""));
    args[NK_PS] = ps;
    args[NK_B] = bptr;
    args[NK_B_RS] = d->b_rs;
    args[NK_KC] = d->kc;
    args[NK_C] = gep(lm, d->C, LLVMBuildAdd(b, LLVMBuildMul(b, m0, d->v->ldc, ""), n0, ""));
    args[NK_LDC] = d->v->ldc;
    args[NK_ALPHA] = LLVMConstReal(lm->t_f32, d->g->alpha);
    args[NK_LOAD_C] = d->load_c;
    args[NK_ROWS] = LLVMBuildSub(b, d->v->m, m0, "");
    if (pass == 0) {
      LLVMValueRef fn = nkernel(lm, np, nt);
      LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, NK_COUNT, "");
      llvm_loop_end(lm, &l);
      continue;
    }
    /* the last group: npan % np panels, a switch unless a number */
    LLVMValueRef rem = LLVMBuildSub(b, npan, p0, "");
    if (LLVMIsAConstantInt(rem)) {
      long long r = LLVMConstIntGetSExtValue(rem);
      if (r > 0 && r < np) {
        LLVMValueRef fn = nkernel(lm, (int)r, nt);
        LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, NK_COUNT, "");
      }
      continue;
    }
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(lm->ctx, d->c->fn, "g.nrem");
    LLVMValueRef sw = LLVMBuildSwitch(b, rem, join, (unsigned)np);
    for (int r = 1; r < np; r++) {
      LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(lm->ctx, d->c->fn, "g.nr");
      LLVMAddCase(sw, ci64(lm, r), bb);
      LLVMPositionBuilderAtEnd(b, bb);
      LLVMValueRef fn = nkernel(lm, r, nt);
      LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, NK_COUNT, "");
      LLVMBuildBr(b, join);
    }
    LLVMPositionBuilderAtEnd(b, join);
  }
}

void llvm_gemm_emit(kctx *c, const ks_gemm *g, const llvm_gemm_vals *v, llvm_gemm_post post,
                    void *post_ctx) {
  llvm_mod *lm = c->lm;
  LLVMBuilderRef b = lm->b;
  gd d = {.c = c, .lm = lm, .g = g, .cf = gemm_cfg(lm), .v = v};
  int W = d.cf.w, NR = d.cf.w * d.cf.nv;
  d.A = gep(lm, v->a, v->a_off);
  d.B = gep(lm, v->b, v->b_off);
  d.C = gep(lm, v->c, v->c_off);
  d.a_rs = g->a_panel > 0 ? ci64(lm, 1) : v->a_rs;
  d.a_cs = g->a_panel > 0 ? ci64(lm, g->a_panel) : v->a_cs;
  d.b_rs = g->b_panel > 0 ? ci64(lm, g->b_panel) : v->b_rs;
  if (g->im2col) {
    /* B packed from the image, block by block, into a buffer on the stack
     * (allocated once, in the function's entry block): PK_BLOCK_KC rows of
     * PK_TILES * NR floats (or 4x as many rows of NR when N <= NR: b_rs is
     * the row length), and W floats of slack */
    LLVMBasicBlockRef eb = LLVMGetEntryBasicBlock(c->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(eb);
    LLVMBuilderRef eb_b = LLVMCreateBuilderInContext(lm->ctx);
    if (first)
      LLVMPositionBuilderBefore(eb_b, first);
    else
      LLVMPositionBuilderAtEnd(eb_b, eb);
    LLVMTypeRef at = LLVMArrayType(lm->t_f32, (unsigned)(PK_BLOCK_KC * PK_TILES * NR + W));
    LLVMValueRef buf = LLVMBuildAlloca(eb_b, at, "pk");
    LLVMSetAlignment(buf, 64);
    LLVMDisposeBuilder(eb_b);
    d.pk = LLVMBuildBitCast(b, buf, LLVMPointerType(lm->t_f32, 0), "");
    d.b_rs = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLE, v->n, ci64(lm, NR), ""), ci64(lm, NR),
                             ci64(lm, PK_TILES * NR), "");
  }

  /* K blocks: nkb = max(1, ceil(K / KC)) of depth ceil(K / nkb) (one
   * empty block when K is 0, which still stores alpha * 0) */
  LLVMValueRef K = v->k;
  LLVMValueRef kcmax = ci64(lm, d.cf.kc);
  if (d.pk) /* the block's depth: PK_TILES * PK_BLOCK_KC * NR / ld */
    kcmax = LLVMBuildSDiv(b, ci64(lm, (int64_t)PK_TILES * PK_BLOCK_KC * NR), d.b_rs, "");
  LLVMValueRef KC1 = LLVMBuildSub(b, kcmax, ci64(lm, 1), "");
  LLVMValueRef nkb = LLVMBuildSDiv(b, LLVMBuildAdd(b, K, KC1, ""), kcmax, "");
  nkb = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, nkb, ci64(lm, 1), ""), ci64(lm, 1), nkb,
                        "");
  LLVMValueRef kcb = LLVMBuildSDiv(b, LLVMBuildAdd(b, K, LLVMBuildSub(b, nkb, ci64(lm, 1), ""), ""),
                                   nkb, "");
  llvm_loop lk;
  LLVMValueRef kb = llvm_loop_begin(lm, c->fn, &lk, ci64(lm, 0), nkb);
  d.k0 = LLVMBuildMul(b, kb, kcb, "");
  LLVMValueRef rest = LLVMBuildSub(b, K, d.k0, "");
  d.kc = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, rest, kcb, ""), rest, kcb, "");
  LLVMValueRef first = LLVMBuildICmp(b, LLVMIntEQ, kb, ci64(lm, 0), "");
  d.load_c = g->accumulate ? LLVMConstInt(lm->t_i1, 1, 0) : LLVMBuildNot(b, first, "");
  LLVMValueRef last = LLVMBuildICmp(b, LLVMIntEQ, kb, LLVMBuildSub(b, nkb, ci64(lm, 1), ""), "");

  /* full column tiles; a tail of at most XT_MAX columns (A in panels of
   * 8, M a multiple of 8) is computed by the last full tile's
   * microkernels instead, when its columns are in the same packed block */
  LLVMValueRef nfull = LLVMBuildSDiv(b, v->n, ci64(lm, NR), "");
  bool fusable = g->a_panel == 8 && g->b_panel == 0 && d.cf.mr == 8 && W >= 8;
  LLVMValueRef fuse = LLVMConstInt(lm->t_i1, 0, 0), ntail = NULL;
  if (fusable) { /* and at run time: rows in whole panels, a short tail */
    ntail = LLVMBuildSub(b, v->n, LLVMBuildMul(b, nfull, ci64(lm, NR), ""), "");
    fuse = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGT, ntail, ci64(lm, 0), ""),
                        LLVMBuildICmp(b, LLVMIntSLE, ntail, ci64(lm, XT_MAX), ""), "");
    fuse = LLVMBuildAnd(b, fuse, LLVMBuildICmp(b, LLVMIntSGT, nfull, ci64(lm, 0), ""), "");
    fuse = LLVMBuildAnd(b, fuse,
                        LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildSRem(b, v->m, ci64(lm, 8), ""),
                                      ci64(lm, 0), ""),
                        "");
    if (d.pk) {
      LLVMValueRef sub = LLVMBuildSRem(b, LLVMBuildSub(b, nfull, ci64(lm, 1), ""),
                                       ci64(lm, PK_TILES), "");
      fuse = LLVMBuildAnd(b, fuse, LLVMBuildICmp(b, LLVMIntSLT, sub, ci64(lm, PK_TILES - 1), ""),
                          "");
    }
  }
  LLVMValueRef nloop = LLVMBuildSub(b, nfull, LLVMBuildZExt(b, fuse, lm->t_i64, ""), "");
  llvm_loop ln;
  LLVMValueRef nt = llvm_loop_begin(lm, c->fn, &ln, ci64(lm, 0), nloop);
  LLVMValueRef n0 = LLVMBuildMul(b, nt, ci64(lm, NR), "");
  if (d.pk) /* a new block every PK_TILES column tiles */
    pack_for_tile(&d, nt, n0, smin(lm, LLVMBuildSub(b, v->n, n0, ""), d.b_rs), NULL);
  column_tile(&d, d.cf.nv, false, n0, NULL, 0);
  if (post) {
    LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.post");
    LLVMBasicBlockRef pj = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.postj");
    LLVMBuildCondBr(b, last, pb, pj);
    LLVMPositionBuilderAtEnd(b, pb);
    post(c, post_ctx, n0, ci64(lm, NR), v->m);
    LLVMBuildBr(b, pj);
    LLVMPositionBuilderAtEnd(b, pj);
  }
  llvm_loop_end(lm, &ln);

  /* the column tail: ceil(tail / W) vectors, the last with nlast lanes */
  n0 = LLVMBuildMul(b, nfull, ci64(lm, NR), "");
  LLVMValueRef tail = LLVMBuildSub(b, v->n, n0, "");
  LLVMValueRef ntv = LLVMBuildSDiv(b, LLVMBuildAdd(b, tail, ci64(lm, W - 1), ""), ci64(lm, W), "");
  LLVMValueRef nlast =
      LLVMBuildSub(b, tail, LLVMBuildMul(b, LLVMBuildSub(b, ntv, ci64(lm, 1), ""), ci64(lm, W), ""),
                   "");
  LLVMBasicBlockRef td = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.taild");
  LLVMBasicBlockRef tj = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.tailj");
  if (fusable) { /* the last full tile with the tail, or the tail alone */
    LLVMBasicBlockRef fb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.fuse");
    LLVMBasicBlockRef rb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.rest");
    LLVMBuildCondBr(b, fuse, fb, rb);
    LLVMPositionBuilderAtEnd(b, fb);
    LLVMValueRef nl = LLVMBuildSub(b, nfull, ci64(lm, 1), "");
    LLVMValueRef n0f = LLVMBuildMul(b, nl, ci64(lm, NR), "");
    if (d.pk) /* its block: packed here when it starts one */
      pack_for_tile(&d, nl, n0f, smin(lm, LLVMBuildSub(b, v->n, n0f, ""), d.b_rs), NULL);
    LLVMBasicBlockRef fj = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.fusej");
    LLVMValueRef sw = LLVMBuildSwitch(b, ntail, fj, XT_MAX);
    for (int xt = 1; xt <= XT_MAX; xt++) {
      LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.fx");
      LLVMAddCase(sw, ci64(lm, xt), bb);
      LLVMPositionBuilderAtEnd(b, bb);
      column_tile(&d, d.cf.nv, false, n0f, NULL, xt);
      LLVMBuildBr(b, fj);
    }
    LLVMPositionBuilderAtEnd(b, fj);
    if (post) {
      LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.post");
      LLVMBuildCondBr(b, last, pb, tj);
      LLVMPositionBuilderAtEnd(b, pb);
      post(c, post_ctx, n0f, LLVMBuildAdd(b, ci64(lm, NR), ntail, ""), v->m);
    }
    LLVMBuildBr(b, tj);
    LLVMPositionBuilderAtEnd(b, rb);
  }
  if (d.pk) /* the tail's columns: in the last block, or a new one */
    pack_for_tile(&d, nfull, n0, tail, LLVMBuildICmp(b, LLVMIntSGT, tail, ci64(lm, 0), ""));
  int nmax = narrow_max(&d);
  if (LLVMIsAConstantInt(tail) && LLVMConstIntGetSExtValue(tail) <= nmax) {
    long long nt = LLVMConstIntGetSExtValue(tail);
    if (nt > 0) narrow_tile(&d, (int)nt, n0);
  } else if (LLVMIsAConstantInt(ntv)) {
    long long nv = LLVMConstIntGetSExtValue(ntv);
    if (nv > 0 && nv <= d.cf.nv) column_tile(&d, (int)nv, true, n0, nlast, 0);
  } else {
    if (nmax > 0) { /* narrow tails first, by width; wider ones below */
      LLVMBasicBlockRef wide = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.wide");
      LLVMValueRef sw = LLVMBuildSwitch(b, tail, wide, (unsigned)nmax);
      for (int nt = 1; nt <= nmax; nt++) {
        LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.narrow");
        LLVMAddCase(sw, ci64(lm, nt), bb);
        LLVMPositionBuilderAtEnd(b, bb);
        narrow_tile(&d, nt, n0);
        LLVMBuildBr(b, td);
      }
      LLVMPositionBuilderAtEnd(b, wide);
    }
    LLVMValueRef sw = LLVMBuildSwitch(b, ntv, td, (unsigned)d.cf.nv);
    for (int nv = 1; nv <= d.cf.nv; nv++) {
      LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.tail");
      LLVMAddCase(sw, ci64(lm, nv), bb);
      LLVMPositionBuilderAtEnd(b, bb);
      column_tile(&d, nv, true, n0, nlast, 0);
      LLVMBuildBr(b, td);
    }
  }
  if (LLVMGetBasicBlockTerminator(LLVMGetInsertBlock(b)) == NULL) LLVMBuildBr(b, td);
  LLVMPositionBuilderAtEnd(b, td);
  if (post) {
    LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.post");
    LLVMValueRef any = LLVMBuildICmp(b, LLVMIntSGT, tail, ci64(lm, 0), "");
    LLVMBuildCondBr(b, LLVMBuildAnd(b, last, any, ""), pb, tj);
    LLVMPositionBuilderAtEnd(b, pb);
    post(c, post_ctx, n0, tail, v->m);
  }
  LLVMBuildBr(b, tj);
  LLVMPositionBuilderAtEnd(b, tj);
  llvm_loop_end(lm, &lk);
}
