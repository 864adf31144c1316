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
 *    tail of a few columns with A in panels of pa rows (the target's
 *    pack_a; a convolution with a small output, e.g. 7x7 = 48 + 1 columns,
 *    14x14 = 4*48 + 4) is computed by the microkernels of the last full
 *    column tile when the tail has at most LLVM_GEMM_XT_MAX columns, the
 *    register tile has pa rows and the rows come in whole panels: each k
 *    step also multiplies the panel's pa consecutive floats (one pa-wide
 *    vector) by each broadcast tail element of B, so the tail
 *    costs an FMA per column per step on A that is already in L1, instead
 *    of a second pass over all of A (which, for the 7x7 layers of a
 *    ResNet, comes from memory: those layers ran 10 % faster). Other
 *    short tails go to narrow microkernels, vectorized along M the same
 *    way, so no lane is wasted on absent columns.
 *
 * The register tile, the K block and the panel shapes are the program's
 * target descriptor's (target/cpu.c: x86-64-v4 W=16, 8x3 vectors, 24 zmm
 * accumulators of 32; -v3 W=8, 4x3, 12 ymm of 16; otherwise W=4, 4x3); the
 * macro tiles are whole multiples of the register tile and of the panels
 * (gcfg.mb_align, nb_align).
 *
 * Operand layouts. A is read through any strides (its elements are
 * broadcast), or from panels of pa rows (ks_gemm.a_panel, a packed
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
 * the stack (llvm_gemm_pack_fn: the im2col index arithmetic done as it copies, zeros
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
  MIN_TILES = 8, /* macro tiles wanted for the thread pool */
  MAX_MB = 128,  /* largest macro tile */
  MAX_NB = 384,
  SYM_MB = 64, /* macro tiles of a symbolic M / N */
  SYM_NB = 192,
  PACK_MIN_COLS = 3, /* B packed from an image: at least this many times
                        nb_align columns (macro_tile_packed) */
};

static int64_t lcm(int64_t a, int64_t b) {
  int64_t x = a, y = b;
  while (y) {
    int64_t t = x % y;
    x = y;
    y = t;
  }
  return a / x * b;
}

gcfg llvm_gemm_cfg(const llvm_mod *lm) {
  const tg_target *t = lm->target;
  gcfg cf =
      {.w = t->vec_floats, .mr = t->gemm_mr, .nv = t->gemm_nv, .kc = t->gemm_kc, .pa = t->pack_a};
  cf.mb_align = (int)lcm(cf.mr, t->pack_a);
  cf.nb_align = (int)lcm(cf.w * cf.nv, t->pack_b);
  return cf;
}

/* ---- which GEMMs, and the macro tiles ------------------------------------ */

bool llvm_gemm_native(const llvm_mod *lm, const kernel *k, const ks_gemm *g) {
  gcfg cf = llvm_gemm_cfg(lm);
  int64_t v;
  if (k_const_i64(k, g->n, &v) && v == 1)
    return false; /* a matrix-vector product: the expansion's dot products */
  if (g->b_panel > 0) {
    if (g->b_panel % cf.w || cf.nb_align % g->b_panel || !k_const_i64(k, g->k, &v)) return false;
  } else if (!k_const_i64(k, g->b_cs, &v) || v != 1) {
    return false;
  }
  if (g->a_panel > 0 &&
      (g->a_panel % cf.mr || cf.mb_align % g->a_panel || !k_const_i64(k, g->k, &v)))
    return false;
  if (g->im2col && (g->im2col->x < 0 || g->im2col->x >= k->bufs.len ||
                    k->bufs.data[g->im2col->x].dtype != NN_DT_F32))
    return false;
  return true;
}

static int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

/* Macro tile sizes for an M x N product (-1: symbolic): as large as
 * MAX_MB x MAX_NB, halved (columns first) until there are MIN_TILES. */
static void macro_tile(const gcfg *cf, int64_t M, int64_t N, int64_t *mb, int64_t *nb) {
  const int64_t TILE_MB_ALIGN = cf->mb_align, TILE_NB_ALIGN = cf->nb_align;
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
static bool macro_tile_packed(const gcfg *cf, int64_t M, int64_t N, int64_t *mb, int64_t *nb) {
  const int64_t TILE_MB_ALIGN = cf->mb_align, TILE_NB_ALIGN = cf->nb_align;
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
static void tile_root(const gcfg *cf, kernel *k, const ks_gemm *g) {
  int64_t Mv = -1, Nv = -1, MB, NB;
  if (!k_const_i64(k, g->m, &Mv)) Mv = -1;
  if (!k_const_i64(k, g->n, &Nv)) Nv = -1;
  bool packs = g->im2col && macro_tile_packed(cf, Mv, Nv, &MB, &NB);
  if (!packs) macro_tile(cf, Mv, Nv, &MB, &NB);
  /* a last column tile of at most LLVM_GEMM_XT_MAX columns joins the one before
   * (the microkernels of that one's last full column tile compute them,
   * see llvm_gemm_emit) */
  bool absorb = Nv > NB && Nv % NB > 0 && Nv % NB <= LLVM_GEMM_XT_MAX;
  kx_id ncb = absorb ? k_i64(k, Nv / NB) : k_cdiv(k, g->n, k_i64(k, NB));
  kx_id nmb = k_cdiv(k, g->m, k_i64(k, MB));
  kx_id tiles = k_mul(k, nmb, ncb);
  k->root.len = 0;
  int32_t t = k_for_begin(k, k_i64(k, 0), tiles, KS_PARALLEL);
  kx_id tv = k_varref(k, t);
  /* column-major: a run of consecutive tiles (what one thread of the
   * pool takes first) covers whole columns, i.e. output positions of a
   * convolution, as the split of the layer before and after did */
  kx_id r0 = k_mul(k, k_bin(k, KX_MOD, tv, nmb), k_i64(k, MB));
  kx_id c0 = k_mul(k, k_bin(k, KX_DIV, tv, nmb), k_i64(k, NB));
  ks_gemm s = *g;
  s.m = k_bin(k, KX_MIN, k_i64(k, MB), k_bin(k, KX_SUB, g->m, r0));
  s.n = k_bin(k, KX_MIN, k_i64(k, NB), k_bin(k, KX_SUB, g->n, c0));
  if (absorb) /* the last column tile takes the rest */
    s.n = k_select(k, k_bin(k, KX_EQ, k_bin(k, KX_DIV, tv, nmb), k_i64(k, Nv / NB - 1)),
                   k_bin(k, KX_SUB, g->n, c0), k_i64(k, NB));
  /* panels: r0 and c0 are whole panels (MB, NB multiples of the panel
   * sizes), K deep each */
  s.a_off = k_add(k, g->a_off, k_mul(k, r0, g->a_panel > 0 ? g->k : g->a_rs));
  s.b_off = k_add(k, g->b_off, k_mul(k, c0, g->b_panel > 0 ? g->k : g->b_cs));
  s.c_off = k_add(k, g->c_off, k_add(k, k_mul(k, r0, g->ldc), c0));
  if (g->bias >= 0)
    s.bias_off = k_add(k, g->bias_off,
                       k_add(k, k_mul(k, r0, g->bias_rs), k_mul(k, c0, g->bias_cs)));
  s.im2col = NULL; /* B read in place (the im2col kernel runs) */
  if (packs) {     /* the tile's columns start c0 output positions on */
    ks_im2col *ic = nn_alloc(k->arena, sizeof *ic);
    *ic = *g->im2col;
    ic->n0 = k_add(k, ic->n0, c0);
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
    gcfg cf = llvm_gemm_cfg(lm);
    tile_root(&cf, k, &g);
  }
  return true;
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
  LLVMValueRef fn = llvm_gemm_pack_fn(lm, d->cf.w, ic);
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
  LLVMValueRef sub = LLVMBuildSRem(b, tile, llvm_ci64(lm, PK_TILES), "");
  LLVMValueRef fresh = LLVMBuildICmp(b, LLVMIntEQ, sub, llvm_ci64(lm, 0), "");
  if (also) fresh = LLVMBuildAnd(b, also, fresh, "");
  LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(lm->ctx, d->c->fn, "g.pack");
  LLVMBasicBlockRef pj = LLVMAppendBasicBlockInContext(lm->ctx, d->c->fn, "g.packj");
  LLVMBuildCondBr(b, fresh, pb, pj);
  LLVMPositionBuilderAtEnd(b, pb);
  pack_block(d, n0, nr);
  LLVMBuildBr(b, pj);
  LLVMPositionBuilderAtEnd(b, pj);
  d->pkcol = llvm_gep(lm, d->pk, LLVMBuildMul(b, sub, llvm_ci64(lm, NR), ""));
}

/* The element offset of index x (a row of A, a column of B) in panels of
 * p entries, K deep: panel x / p, entry x % p in it. */
static LLVMValueRef panel_off(llvm_mod *lm, LLVMValueRef x, int p, LLVMValueRef K) {
  LLVMBuilderRef b = lm->b;
  LLVMValueRef P = llvm_ci64(lm, p);
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
  LLVMValueRef fn = llvm_gemm_ukernel(lm, &d->cf, mr, nv, masked, bmask, pf, xt);
  LLVMValueRef args[UK_B0 + LLVM_GEMM_MAX_NV + 2];
  /* A[m0, k0]: with panels, m0 is inside panel m0 / P at row m0 % P */
  LLVMValueRef aoff = d->g->a_panel > 0 ? panel_off(lm, m0, d->g->a_panel, d->v->k)
                                        : LLVMBuildMul(b, m0, d->v->a_rs, "");
  aoff = LLVMBuildAdd(b, aoff, LLVMBuildMul(b, d->k0, d->a_cs, ""), "");
  args[UK_A] = llvm_gep(lm, d->A, aoff);
  args[UK_A_RS] = d->a_rs;
  args[UK_A_CS] = d->a_cs;
  args[UK_B_RS] = d->b_rs;
  args[UK_KC] = d->kc;
  args[UK_C] = llvm_gep(lm, d->C, LLVMBuildAdd(b, LLVMBuildMul(b, m0, d->v->ldc, ""), n0, ""));
  args[UK_LDC] = d->v->ldc;
  args[UK_ALPHA] = LLVMConstReal(lm->t_f32, d->g->alpha);
  args[UK_LOAD_C] = d->load_c;
  args[UK_NLAST] = nlast ? nlast : llvm_ci64(lm, d->cf.w);
  /* the next row tile of A in panels: the next panel (a prefetch past the
   * last one touches nothing) */
  args[UK_A_PF] = pf ? LLVMBuildMul(b, llvm_ci64(lm, d->g->a_panel), d->v->k, "")
                     : llvm_ci64(lm, 0);
  for (int j = 0; j < nv; j++) args[UK_B0 + j] = bp[j];
  int na = UK_B0 + nv;
  if (xt) { /* the extra columns start NR columns on, in B and in C */
    args[na++] = xb;
    args[na++] = llvm_gep(lm, args[UK_C], llvm_ci64(lm, (int64_t)d->cf.w * nv));
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
    LLVMAddCase(sw, llvm_ci64(lm, r), bb);
    LLVMPositionBuilderAtEnd(lm->b, bb);
    call_uk(d, r, nv, masked, m0, n0, nlast, bp, 0, NULL);
    LLVMBuildBr(lm->b, join);
  }
  LLVMPositionBuilderAtEnd(lm->b, join);
}

/* One column tile at n0 of nv vectors (the last partial, nlast lanes, when
 * masked): the row tiles over all of M; with xt > 0 (full tiles only, MR
 * equal to the A panel height and M a multiple of it), also the xt columns
 * after it. */
static void column_tile(gd *d, int nv, bool masked, LLVMValueRef n0, LLVMValueRef nlast, int xt) {
  llvm_mod *lm = d->lm;
  LLVMBuilderRef b = lm->b;
  const ks_gemm *g = d->g;
  int W = d->cf.w, MR = d->cf.mr;
  LLVMValueRef bp[LLVM_GEMM_MAX_NV];
  for (int j = 0; j < nv; j++) {
    if (d->pk) { /* the packed block: its own first row */
      bp[j] = llvm_gep(lm, d->pkcol, llvm_ci64(lm, (int64_t)j * W));
      continue;
    }
    LLVMValueRef col = LLVMBuildAdd(b, n0, llvm_ci64(lm, (int64_t)j * W), "");
    LLVMValueRef off = g->b_panel > 0 ? panel_off(lm, col, g->b_panel, d->v->k) : col;
    bp[j] = llvm_gep(lm, d->B, LLVMBuildAdd(b, off, LLVMBuildMul(b, d->k0, d->b_rs, ""), ""));
  }
  LLVMValueRef xb = NULL; /* B of the extra columns */
  if (xt) {
    LLVMValueRef col = LLVMBuildAdd(b, n0, llvm_ci64(lm, (int64_t)nv * W), "");
    xb = d->pk ? llvm_gep(lm, d->pkcol, llvm_ci64(lm, (int64_t)nv * W))
               : llvm_gep(lm, d->B, LLVMBuildAdd(b, col, LLVMBuildMul(b, d->k0, d->b_rs, ""), ""));
  }
  LLVMValueRef mfull = LLVMBuildSDiv(b, d->v->m, llvm_ci64(lm, MR), "");
  llvm_loop l;
  LLVMValueRef mt = llvm_loop_begin(lm, d->c->fn, &l, llvm_ci64(lm, 0), mfull);
  call_uk(d, MR, nv, masked, LLVMBuildMul(b, mt, llvm_ci64(lm, MR), ""), n0, nlast, bp, xt, xb);
  llvm_loop_end(lm, &l);
  LLVMValueRef m0 = LLVMBuildMul(b, mfull, llvm_ci64(lm, MR), "");
  call_uk_rows(d, LLVMBuildSub(b, d->v->m, m0, ""), nv, masked, m0, n0, nlast, bp);
}

/* Panels of A per narrow microkernel call for nt columns (enough
 * independent accumulators to hide the FMA latency). */
static int narrow_panels(int nt) { return (12 + nt - 1) / nt; }

/* Whether the column tail goes through the narrow microkernels: A in
 * panels of the target's height pa, B plain, pa-wide vectors available,
 * and tails of at most narrow_max() columns (where the row-wise tile would
 * waste more lanes than the narrow one does). */
static int narrow_max(const gd *d) {
  if (d->g->a_panel != d->cf.pa || d->g->b_panel != 0 || d->cf.w < d->cf.pa) return 0;
  return d->cf.mr / 2;
}

/* The column tail n0 of nt columns (a number) with the narrow kernels:
 * groups of narrow_panels(nt) panels over M, then the last group. */
static void narrow_tile(gd *d, int nt, LLVMValueRef n0) {
  llvm_mod *lm = d->lm;
  LLVMBuilderRef b = lm->b;
  int np = narrow_panels(nt), pa = d->cf.pa;
  LLVMValueRef ps = LLVMBuildMul(b, llvm_ci64(lm, pa), d->v->k, "");
  LLVMValueRef bptr =
      d->pk ? d->pkcol
            : llvm_gep(lm, d->B, LLVMBuildAdd(b, n0, LLVMBuildMul(b, d->k0, d->b_rs, ""), ""));
  LLVMValueRef npan = LLVMBuildSDiv(b, LLVMBuildAdd(b, d->v->m, llvm_ci64(lm, pa - 1), ""),
                                    llvm_ci64(lm, pa), "");
  LLVMValueRef groups = LLVMBuildSDiv(b, npan, llvm_ci64(lm, np), "");
  /* one call: panels [p0, p0 + cnt) */
  for (int pass = 0; pass < 2; pass++) {
    llvm_loop l;
    LLVMValueRef p0;
    if (pass == 0) {
      LLVMValueRef gi = llvm_loop_begin(lm, d->c->fn, &l, llvm_ci64(lm, 0), groups);
      p0 = LLVMBuildMul(b, gi, llvm_ci64(lm, np), "");
    } else {
      p0 = LLVMBuildMul(b, groups, llvm_ci64(lm, np), "");
    }
    LLVMValueRef m0 = LLVMBuildMul(b, p0, llvm_ci64(lm, pa), "");
    LLVMValueRef args[NK_COUNT];
    args[NK_A] = llvm_gep(lm, d->A,
                          LLVMBuildAdd(b, LLVMBuildMul(b, p0, ps, ""),
                                       LLVMBuildMul(b, d->k0, llvm_ci64(lm, pa), ""), ""));
    args[NK_PS] = ps;
    args[NK_B] = bptr;
    args[NK_B_RS] = d->b_rs;
    args[NK_KC] = d->kc;
    args[NK_C] = llvm_gep(lm, d->C, LLVMBuildAdd(b, LLVMBuildMul(b, m0, d->v->ldc, ""), n0, ""));
    args[NK_LDC] = d->v->ldc;
    args[NK_ALPHA] = LLVMConstReal(lm->t_f32, d->g->alpha);
    args[NK_LOAD_C] = d->load_c;
    args[NK_ROWS] = LLVMBuildSub(b, d->v->m, m0, "");
    if (pass == 0) {
      LLVMValueRef fn = llvm_gemm_nkernel(lm, pa, np, nt);
      LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, NK_COUNT, "");
      llvm_loop_end(lm, &l);
      continue;
    }
    /* the last group: npan % np panels, a switch unless a number */
    LLVMValueRef rem = LLVMBuildSub(b, npan, p0, "");
    if (LLVMIsAConstantInt(rem)) {
      long long r = LLVMConstIntGetSExtValue(rem);
      if (r > 0 && r < np) {
        LLVMValueRef fn = llvm_gemm_nkernel(lm, pa, (int)r, nt);
        LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, NK_COUNT, "");
      }
      continue;
    }
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(lm->ctx, d->c->fn, "g.nrem");
    LLVMValueRef sw = LLVMBuildSwitch(b, rem, join, (unsigned)np);
    for (int r = 1; r < np; r++) {
      LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(lm->ctx, d->c->fn, "g.nr");
      LLVMAddCase(sw, llvm_ci64(lm, r), bb);
      LLVMPositionBuilderAtEnd(b, bb);
      LLVMValueRef fn = llvm_gemm_nkernel(lm, pa, r, nt);
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
  gd d = {.c = c, .lm = lm, .g = g, .cf = llvm_gemm_cfg(lm), .v = v};
  int W = d.cf.w, NR = d.cf.w * d.cf.nv;
  d.A = llvm_gep(lm, v->a, v->a_off);
  d.B = llvm_gep(lm, v->b, v->b_off);
  d.C = llvm_gep(lm, v->c, v->c_off);
  d.a_rs = g->a_panel > 0 ? llvm_ci64(lm, 1) : v->a_rs;
  d.a_cs = g->a_panel > 0 ? llvm_ci64(lm, g->a_panel) : v->a_cs;
  d.b_rs = g->b_panel > 0 ? llvm_ci64(lm, g->b_panel) : v->b_rs;
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
    d.b_rs = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLE, v->n, llvm_ci64(lm, NR), ""),
                             llvm_ci64(lm, NR), llvm_ci64(lm, PK_TILES * NR), "");
  }

  /* K blocks: nkb = max(1, ceil(K / KC)) of depth ceil(K / nkb) (one
   * empty block when K is 0, which still stores alpha * 0) */
  LLVMValueRef K = v->k;
  LLVMValueRef kcmax = llvm_ci64(lm, d.cf.kc);
  if (d.pk) /* the block's depth: PK_TILES * PK_BLOCK_KC * NR / ld */
    kcmax = LLVMBuildSDiv(b, llvm_ci64(lm, (int64_t)PK_TILES * PK_BLOCK_KC * NR), d.b_rs, "");
  LLVMValueRef KC1 = LLVMBuildSub(b, kcmax, llvm_ci64(lm, 1), "");
  LLVMValueRef nkb = LLVMBuildSDiv(b, LLVMBuildAdd(b, K, KC1, ""), kcmax, "");
  nkb = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, nkb, llvm_ci64(lm, 1), ""),
                        llvm_ci64(lm, 1), nkb, "");
  LLVMValueRef kcb =
      LLVMBuildSDiv(b, LLVMBuildAdd(b, K, LLVMBuildSub(b, nkb, llvm_ci64(lm, 1), ""), ""), nkb, "");
  llvm_loop lk;
  LLVMValueRef kb = llvm_loop_begin(lm, c->fn, &lk, llvm_ci64(lm, 0), nkb);
  d.k0 = LLVMBuildMul(b, kb, kcb, "");
  LLVMValueRef rest = LLVMBuildSub(b, K, d.k0, "");
  d.kc = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, rest, kcb, ""), rest, kcb, "");
  LLVMValueRef first = LLVMBuildICmp(b, LLVMIntEQ, kb, llvm_ci64(lm, 0), "");
  d.load_c = g->accumulate ? LLVMConstInt(lm->t_i1, 1, 0) : LLVMBuildNot(b, first, "");
  LLVMValueRef last = LLVMBuildICmp(b, LLVMIntEQ, kb, LLVMBuildSub(b, nkb, llvm_ci64(lm, 1), ""),
                                    "");

  /* full column tiles; a tail of at most LLVM_GEMM_XT_MAX columns (A in panels of
   * the register tile's height, M a multiple of it) is computed by the
   * last full tile's microkernels instead, when its columns are in the
   * same packed block */
  LLVMValueRef nfull = LLVMBuildSDiv(b, v->n, llvm_ci64(lm, NR), "");
  bool fusable = g->a_panel == d.cf.pa && g->b_panel == 0 && d.cf.mr == d.cf.pa && W >= d.cf.pa;
  LLVMValueRef fuse = LLVMConstInt(lm->t_i1, 0, 0), ntail = NULL;
  if (fusable) { /* and at run time: rows in whole panels, a short tail */
    ntail = LLVMBuildSub(b, v->n, LLVMBuildMul(b, nfull, llvm_ci64(lm, NR), ""), "");
    fuse = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGT, ntail, llvm_ci64(lm, 0), ""),
                        LLVMBuildICmp(b, LLVMIntSLE, ntail, llvm_ci64(lm, LLVM_GEMM_XT_MAX), ""),
                        "");
    fuse = LLVMBuildAnd(b, fuse, LLVMBuildICmp(b, LLVMIntSGT, nfull, llvm_ci64(lm, 0), ""), "");
    fuse = LLVMBuildAnd(b, fuse,
                        LLVMBuildICmp(b, LLVMIntEQ,
                                      LLVMBuildSRem(b, v->m, llvm_ci64(lm, d.cf.pa), ""),
                                      llvm_ci64(lm, 0), ""),
                        "");
    if (d.pk) {
      LLVMValueRef sub = LLVMBuildSRem(b, LLVMBuildSub(b, nfull, llvm_ci64(lm, 1), ""),
                                       llvm_ci64(lm, PK_TILES), "");
      fuse = LLVMBuildAnd(b, fuse,
                          LLVMBuildICmp(b, LLVMIntSLT, sub, llvm_ci64(lm, PK_TILES - 1), ""), "");
    }
  }
  LLVMValueRef nloop = LLVMBuildSub(b, nfull, LLVMBuildZExt(b, fuse, lm->t_i64, ""), "");
  llvm_loop ln;
  LLVMValueRef nt = llvm_loop_begin(lm, c->fn, &ln, llvm_ci64(lm, 0), nloop);
  LLVMValueRef n0 = LLVMBuildMul(b, nt, llvm_ci64(lm, NR), "");
  if (d.pk) /* a new block every PK_TILES column tiles */
    pack_for_tile(&d, nt, n0, llvm_smin(lm, LLVMBuildSub(b, v->n, n0, ""), d.b_rs), NULL);
  column_tile(&d, d.cf.nv, false, n0, NULL, 0);
  if (post) {
    LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.post");
    LLVMBasicBlockRef pj = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.postj");
    LLVMBuildCondBr(b, last, pb, pj);
    LLVMPositionBuilderAtEnd(b, pb);
    post(c, post_ctx, n0, llvm_ci64(lm, NR), v->m);
    LLVMBuildBr(b, pj);
    LLVMPositionBuilderAtEnd(b, pj);
  }
  llvm_loop_end(lm, &ln);

  /* the column tail: ceil(tail / W) vectors, the last with nlast lanes */
  n0 = LLVMBuildMul(b, nfull, llvm_ci64(lm, NR), "");
  LLVMValueRef tail = LLVMBuildSub(b, v->n, n0, "");
  LLVMValueRef ntv = LLVMBuildSDiv(b, LLVMBuildAdd(b, tail, llvm_ci64(lm, W - 1), ""),
                                   llvm_ci64(lm, W), "");
  LLVMValueRef nlast = LLVMBuildSub(b, tail,
                                    LLVMBuildMul(b, LLVMBuildSub(b, ntv, llvm_ci64(lm, 1), ""),
                                                 llvm_ci64(lm, W), ""),
                                    "");
  LLVMBasicBlockRef td = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.taild");
  LLVMBasicBlockRef tj = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.tailj");
  if (fusable) { /* the last full tile with the tail, or the tail alone */
    LLVMBasicBlockRef fb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.fuse");
    LLVMBasicBlockRef rb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.rest");
    LLVMBuildCondBr(b, fuse, fb, rb);
    LLVMPositionBuilderAtEnd(b, fb);
    LLVMValueRef nl = LLVMBuildSub(b, nfull, llvm_ci64(lm, 1), "");
    LLVMValueRef n0f = LLVMBuildMul(b, nl, llvm_ci64(lm, NR), "");
    if (d.pk) /* its block: packed here when it starts one */
      pack_for_tile(&d, nl, n0f, llvm_smin(lm, LLVMBuildSub(b, v->n, n0f, ""), d.b_rs), NULL);
    LLVMBasicBlockRef fj = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.fusej");
    LLVMValueRef sw = LLVMBuildSwitch(b, ntail, fj, LLVM_GEMM_XT_MAX);
    for (int xt = 1; xt <= LLVM_GEMM_XT_MAX; xt++) {
      LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.fx");
      LLVMAddCase(sw, llvm_ci64(lm, xt), bb);
      LLVMPositionBuilderAtEnd(b, bb);
      column_tile(&d, d.cf.nv, false, n0f, NULL, xt);
      LLVMBuildBr(b, fj);
    }
    LLVMPositionBuilderAtEnd(b, fj);
    if (post) {
      LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.post");
      LLVMBuildCondBr(b, last, pb, tj);
      LLVMPositionBuilderAtEnd(b, pb);
      post(c, post_ctx, n0f, LLVMBuildAdd(b, llvm_ci64(lm, NR), ntail, ""), v->m);
    }
    LLVMBuildBr(b, tj);
    LLVMPositionBuilderAtEnd(b, rb);
  }
  if (d.pk) /* the tail's columns: in the last block, or a new one */
    pack_for_tile(&d, nfull, n0, tail, LLVMBuildICmp(b, LLVMIntSGT, tail, llvm_ci64(lm, 0), ""));
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
        LLVMAddCase(sw, llvm_ci64(lm, nt), bb);
        LLVMPositionBuilderAtEnd(b, bb);
        narrow_tile(&d, nt, n0);
        LLVMBuildBr(b, td);
      }
      LLVMPositionBuilderAtEnd(b, wide);
    }
    LLVMValueRef sw = LLVMBuildSwitch(b, ntv, td, (unsigned)d.cf.nv);
    for (int nv = 1; nv <= d.cf.nv; nv++) {
      LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.tail");
      LLVMAddCase(sw, llvm_ci64(lm, nv), bb);
      LLVMPositionBuilderAtEnd(b, bb);
      column_tile(&d, nv, true, n0, nlast, 0);
      LLVMBuildBr(b, td);
    }
  }
  if (LLVMGetBasicBlockTerminator(LLVMGetInsertBlock(b)) == NULL) LLVMBuildBr(b, td);
  LLVMPositionBuilderAtEnd(b, td);
  if (post) {
    LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(lm->ctx, c->fn, "g.post");
    LLVMValueRef any = LLVMBuildICmp(b, LLVMIntSGT, tail, llvm_ci64(lm, 0), "");
    LLVMBuildCondBr(b, LLVMBuildAnd(b, last, any, ""), pb, tj);
    LLVMPositionBuilderAtEnd(b, pb);
    post(c, post_ctx, n0, tail, v->m);
  }
  LLVMBuildBr(b, tj);
  LLVMPositionBuilderAtEnd(b, tj);
  llvm_loop_end(lm, &lk);
}
