/* kernel_gemm.c — gemm-like ops to kernels, and the portable GEMM expansion.
 *
 * Lowering (kl_lower_gemm). Every gemm-like op becomes one KS_GEMM statement,
 * wrapped in a loop over a flattened batch index when there is more than one
 * matrix product (bmm, broadcast matmul, images and groups of a
 * convolution). The loop computes each operand's offset from per-batch-dim
 * strides; a broadcast batch dim has stride 0. The bias field of the GEMM
 * carries linear's and convolution's bias and addmm/baddbmm's `c`.
 *
 *   linear      out[M, N] = x[M, K] @ w^T + bias. The weight is packed at
 *               compile time: f32 into panels of PACK_B columns of w^T
 *               (ks_gemm.b_panel, what native microkernels stream), f16/bf16
 *               into w^T [K, N] (so B's columns are contiguous); a weight
 *               that is not a compile-time constant is transposed into a
 *               scratch buffer by a packing kernel first.
 *   matmul      numpy rules: 1-d operands, a batch folded into M when b is a
 *               plain matrix, batch broadcasting otherwise.
 *   convolution 1-d/2-d, non-transposed. Depthwise: a direct kernel that
 *               sums each output's taps at once, vectorized along the output,
 *               with the interior (every tap inside the input) unchecked and
 *               the padded border checked per tap (conv_depthwise).
 *               1x1 stride 1 unpadded: a GEMM on the input itself. 3x3
 *               stride 1 with 16 or more input channels and fixed sizes
 *               (f32, CPU target): Winograd's F(2x2, 3x3), an input
 *               transform, 16 GEMMs against weights transformed at compile
 *               time and an output transform that applies the bias and the
 *               epilogue (conv_winograd). Otherwise
 *               im2col into a scratch buffer (zeros for padded taps, computed
 *               from the window's valid range, no padded copy of the input)
 *               and a GEMM weight[Cout/g, Cin/g*kh*kw] @ col[.., Hout*Wout]
 *               per image and group. An f32 weight known at compile time is
 *               packed into panels of PACK_A rows (ks_gemm.a_panel). The
 *               GEMM also describes its B as the input's im2col
 *               (ks_gemm.im2col) and the im2col kernel says so
 *               (kernel.im2col_b): a backend that packs B from the image
 *               itself skips the im2col kernel (the LLVM backend does).
 *
 * Symbolic dims. Sizes, strides and offsets are computed as dims of the
 * graph (ir_dim) and become kernel expressions (kl_dimx) where a kernel
 * uses them: numbers for static shapes, so a static model lowers exactly
 * as with integer arithmetic; loads of the run's dim values otherwise.
 * What must be a number: a packed weight's N and K, a convolution's
 * channels and kernel size (the weight's shape) and its parameters; batch
 * rows, sequence lengths and spatial sizes may be symbolic. A convolution
 * with a symbolic batch or size puts every image in one im2col buffer
 * (the chunking by images needs numbers).
 *
 * Epilogues (kl_lower_gemm_ep). A fused group headed by a gemm-like op
 * passes an epilogue builder: every kernel that writes the op's result
 * writes the group's result buffer instead, each element going through the
 * epilogue expression (ks_gemm.ep; for the direct depthwise convolution,
 * each output's sum before its store). The intermediate product never
 * exists in memory.
 *
 * 16-bit GEMMs (f16, bf16). A, B and the bias keep their dtype; the
 * products are summed in f32 into an f32 scratch of C's layout, and a
 * second kernel applies the epilogue and rounds into C. For the CPU target
 * the GEMM statement is expanded at once (the LLVM microkernel is f32
 * only); for the CUDA target (kl_target) it stays a KS_GEMM, which the
 * CUDA backend runs on tensor cores when A and B are f16.
 *
 * Expansion (k_expand_gemms). Backends without a native GEMM rewrite each
 * KS_GEMM into a blocked loop nest whose innermost loop is a VECTOR loop
 * over a fixed number (NR) of contiguous columns of C and B, inside a loop
 * over k, inside register tiles of MR rows of C; see expand_gemm() for the
 * exact structure; an epilogue runs over each macro tile of C after its
 * last K block. Symbolic sizes give the same structure with expressions
 * (read once per macro tile) and run-time tails. The reference
 * interpreter executes KS_GEMM directly.
 */
#include "kernel.h"

#include <math.h>
#include <string.h>

/* ====================================================================== */
/* The expansion                                                          */
/* ====================================================================== */

/* Tiling of the expansion. MR x NR is the register tile (MR rows of C, NR
 * contiguous columns: 16 floats = two AVX2 or one AVX-512 vector per row);
 * MB x NB the macro tile one parallel iteration computes; KB the depth of a
 * K block (a KB x NR panel of B stays in L1 while the MR-row tiles of the
 * macro tile stream through it). */
enum {
  GEMM_MR = 6,
  GEMM_NR = 16,
  GEMM_MB = 48,  /* a multiple of MR */
  GEMM_NB = 256, /* a multiple of NR; lowered for small M to get more tiles */
  GEMM_KB = 256,
  GEMM_MIN_TILES = 32, /* macro tiles wanted for the thread pool */
};

/* Panel layouts of f32 weights packed at compile time (ks_gemm.a_panel,
 * b_panel): a convolution's weight (A) in panels of PACK_A rows, a linear
 * layer's w^T (B) in panels of PACK_B columns. Native microkernels read a
 * panel as one contiguous stream: MR rows of A broadcast from PACK_A
 * consecutive floats, vectors of B from PACK_B consecutive floats (PACK_B
 * = GEMM_NR keeps the expansion's vector loop contiguous too). */
enum {
  PACK_A = 8,
  PACK_B = GEMM_NR,
};

/* State while one KS_GEMM is expanded. */
typedef struct gx {
  kernel *k;
  ks_gemm g;                                 /* a copy of the statement being expanded; a
                                                size or stride that is not a constant is
                                                replaced by a variable holding it */
  int32_t aoff, boff, coff;                  /* I64 vars holding the operand offsets, or
                                                -1 when the offset is the constant below */
  int32_t biasoff;                           /* same for the bias */
  int64_t aoff_c, boff_c, coff_c, biasoff_c; /* constant offsets */
  int32_t vm, vn;                            /* tile origin (row, column) */
  int32_t va[GEMM_MR];                       /* F32: alpha * A[row, k] of a tile's rows */
  int32_t vb;                                /* F32: B[k, column] */
} gx;

static kx_id I(kernel *k, int64_t v) { return k_i64(k, v); }
static kx_id V(kernel *k, int32_t var) { return k_varref(k, var); }
static kx_id ADD(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_ADD, a, b); }
static kx_id SUB(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_SUB, a, b); }
static kx_id MUL(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_MUL, a, b); }
static kx_id MULC(kernel *k, kx_id a, int64_t c) { return MUL(k, a, I(k, c)); }
static kx_id MINX(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_MIN, a, b); }
static kx_id MAXX(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_MAX, a, b); }
static kx_id F(kernel *k, double v) { return k_const_f(k, NN_DT_F32, v); }
/* a // b and ceil(a / b) for a >= 0, b > 0 (fold when both are numbers) */
static kx_id FDIV(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_FLOORDIV, a, b); }
static kx_id CEILDIV(kernel *k, kx_id a, kx_id b) {
  return FDIV(k, ADD(k, a, SUB(k, b, I(k, 1))), b);
}

/* True and *v set when e is an I64 constant. */
static bool is_num(const kernel *k, kx_id e, int64_t *v) {
  const kx *x = &k->exprs.data[e];
  if (x->op != KX_CONST || x->dtype != NN_DT_I64) return false;
  *v = x->i;
  return true;
}

/* A fresh I64 variable set to e. */
static int32_t let_i64(kernel *k, kx_id e) {
  int32_t v = k_var(k, NN_DT_I64);
  k_let(k, v, e);
  return v;
}

/* e itself when it is a constant, else a variable set to it here (sizes
 * over the run's dims: loaded once, not in every inner iteration). */
static kx_id hoist(kernel *k, kx_id e) {
  int64_t v;
  return is_num(k, e, &v) ? e : V(k, let_i64(k, e));
}

/* An offset: variable `var`, or constant c when var is -1. */
static kx_id OFF(kernel *k, int32_t var, int64_t c) { return var >= 0 ? V(k, var) : I(k, c); }

/* Element index of C[m, n], A[m, kk], B[kk, n], bias[m, n]. */
static kx_id c_idx(gx *x, kx_id m, kx_id n) {
  kernel *k = x->k;
  return ADD(k, ADD(k, OFF(k, x->coff, x->coff_c), MUL(k, m, x->g.ldc)), n);
}
/* Index of element (r, kk) of an operand stored in panels of p rows (or
 * columns) K deep: (r / p)*p*K + kk*p + r % p (ks_gemm.a_panel). */
static kx_id panel_idx(kernel *k, kx_id K, int64_t p, kx_id r, kx_id kk) {
  kx_id P = I(k, p);
  return ADD(k, ADD(k, MUL(k, k_bin(k, KX_DIV, r, P), MUL(k, P, K)), MUL(k, kk, P)),
             k_bin(k, KX_MOD, r, P));
}
/* A[m, kk] as loaded (f32), and alpha * A[m, kk]. */
static kx_id a_raw(gx *x, kx_id m, kx_id kk) {
  kernel *k = x->k;
  kx_id idx = x->g.a_panel > 0
                  ? ADD(k, OFF(k, x->aoff, x->aoff_c), panel_idx(k, x->g.k, x->g.a_panel, m, kk))
                  : ADD(k, ADD(k, OFF(k, x->aoff, x->aoff_c), MUL(k, m, x->g.a_rs)),
                        MUL(k, kk, x->g.a_cs));
  return k_cast(k, NN_DT_F32, k_load(k, x->g.a, idx));
}
static kx_id a_val(gx *x, kx_id m, kx_id kk) {
  kernel *k = x->k;
  kx_id v = a_raw(x, m, kk);
  return x->g.alpha == 1.0f ? v : MUL(k, F(k, x->g.alpha), v);
}
static kx_id b_val(gx *x, kx_id kk, kx_id n) {
  kernel *k = x->k;
  kx_id idx = x->g.b_panel > 0
                  ? ADD(k, OFF(k, x->boff, x->boff_c), panel_idx(k, x->g.k, x->g.b_panel, n, kk))
                  : ADD(k, ADD(k, OFF(k, x->boff, x->boff_c), MUL(k, kk, x->g.b_rs)),
                        MUL(k, n, x->g.b_cs));
  return k_cast(k, NN_DT_F32, k_load(k, x->g.b, idx));
}
/* B[kk, n0 + j] inside a register tile whose first column n0 is a
 * multiple of NR: with panels of exactly NR columns, the panel is n0's
 * and the column in it j, which keeps the vector loop's accesses
 * contiguous. */
static kx_id b_tile_val(gx *x, kx_id kk, kx_id n0, kx_id j) {
  kernel *k = x->k;
  if (x->g.b_panel != GEMM_NR) return b_val(x, kk, ADD(k, n0, j));
  kx_id idx = ADD(k, ADD(k, OFF(k, x->boff, x->boff_c), MUL(k, n0, x->g.k)),
                  ADD(k, MULC(k, kk, GEMM_NR), j));
  return k_cast(k, NN_DT_F32, k_load(k, x->g.b, idx));
}
static kx_id bias_val(gx *x, kx_id m, kx_id n) {
  kernel *k = x->k;
  kx_id idx = ADD(k, ADD(k, OFF(k, x->biasoff, x->biasoff_c), MUL(k, m, x->g.bias_rs)),
                  MUL(k, n, x->g.bias_cs));
  kx_id v = k_cast(k, NN_DT_F32, k_load(k, x->g.bias, idx));
  return x->g.beta == 1.0f ? v : MUL(k, F(k, x->g.beta), v);
}

/* Replaces the strides of x->g that are not constants by variables set
 * here (at the top of a parallel iteration). */
static void hoist_strides(gx *x) {
  kernel *k = x->k;
  ks_gemm *g = &x->g;
  g->a_rs = hoist(k, g->a_rs);
  g->a_cs = hoist(k, g->a_cs);
  g->b_rs = hoist(k, g->b_rs);
  g->b_cs = hoist(k, g->b_cs);
  g->ldc = hoist(k, g->ldc);
  if (g->bias >= 0) {
    g->bias_rs = hoist(k, g->bias_rs);
    g->bias_cs = hoist(k, g->bias_cs);
  }
}

/* The value C[m, n] starts from before the products are accumulated:
 * (accumulate ? C : 0) + beta * bias. Returns -1 when C needs no init
 * (accumulate without a bias). */
static kx_id init_val(gx *x, kx_id m, kx_id n) {
  kernel *k = x->k;
  kx_id v = x->g.accumulate ? k_load(k, x->g.c, c_idx(x, m, n)) : -1;
  if (x->g.bias >= 0) {
    kx_id b = bias_val(x, m, n);
    v = v < 0 ? b : ADD(k, v, b);
  }
  if (v < 0 && !x->g.accumulate) v = F(k, 0.0);
  return v;
}

/* The register tile: C[m0+i, n0+j] += alpha*A[m0+i, kk]*B[kk, n0+j] for
 * i < mr, j < nr, kk in [k0, k1), with m0, n0 and nr given as expressions
 * (nr a constant but for the column tail of a symbolic N) and k0/k1 as
 * variables:
 *   vm = m0; vn = n0
 *   for kk in [k0, k1):
 *     a_i = alpha * A[vm+i, kk]                 (i < mr)
 *     VECTOR for j in [0, nr):
 *       b = B[kk, vn+j]
 *       C[vm+i, vn+j] = C[vm+i, vn+j] + a_i*b   (i < mr)  */
static void emit_tile(gx *x, kx_id m0, int mr, kx_id n0, kx_id nr, int32_t k0, int32_t k1) {
  kernel *k = x->k;
  k_let(k, x->vm, m0);
  k_let(k, x->vn, n0);
  int32_t kk = k_for_begin(k, V(k, k0), V(k, k1), 0);
  for (int i = 0; i < mr; i++) k_let(k, x->va[i], a_val(x, ADD(k, V(k, x->vm), I(k, i)), V(k, kk)));
  int32_t j = k_for_begin(k, I(k, 0), nr, KS_VECTOR);
  k_let(k, x->vb, b_tile_val(x, V(k, kk), V(k, x->vn), V(k, j)));
  for (int i = 0; i < mr; i++) {
    kx_id idx = c_idx(x, ADD(k, V(k, x->vm), I(k, i)), ADD(k, V(k, x->vn), V(k, j)));
    kx_id prod = MUL(k, V(k, x->va[i]), V(k, x->vb));
    k_store(k, x->g.c, idx, ADD(k, k_load(k, x->g.c, idx), prod));
  }
  k_for_end(k);
  k_for_end(k);
}

/* N == 1 (matrix-vector): one dot product per row, reduced over k. */
static void expand_gemv(gx *x, unsigned outer_flags) {
  kernel *k = x->k;
  const ks_gemm *g = &x->g;
  int32_t acc = k_var(k, NN_DT_F32);
  int32_t m = k_for_begin(k, I(k, 0), g->m, outer_flags);
  kx_id K = hoist(k, g->k);
  hoist_strides(x);
  k_let(k, acc, F(k, 0.0));
  int32_t kk = k_for_begin(k, I(k, 0), K, KS_REDUCE);
  kx_id prod = MUL(k, a_raw(x, V(k, m), V(k, kk)), b_val(x, V(k, kk), I(k, 0)));
  k_let(k, acc, ADD(k, V(k, acc), prod));
  k_for_end(k);
  kx_id v = V(k, acc);
  if (g->alpha != 1.0f) v = MUL(k, F(k, g->alpha), v);
  kx_id init = init_val(x, V(k, m), I(k, 0));
  if (init >= 0) v = ADD(k, init, v);
  kx_id idx = c_idx(x, V(k, m), I(k, 0));
  if (g->epilogue) {
    k_let(k, g->ep_acc, v);
    k_let(k, g->ep_idx, idx);
    v = g->ep;
  }
  k_store(k, g->c, idx, v);
  k_for_end(k);
}

/* The epilogue over the macro tile rows [r0, r1) x columns [c0, c1) of C,
 * once its last K block is done: C[m, n] = ep(C[m, n]). */
static void emit_epilogue(gx *x, kx_id r0, kx_id r1, kx_id c0, kx_id c1) {
  kernel *k = x->k;
  const ks_gemm *g = &x->g;
  int32_t m = k_for_begin(k, r0, r1, 0);
  int32_t n = k_for_begin(k, c0, c1, KS_VECTOR);
  kx_id idx = c_idx(x, V(k, m), V(k, n));
  k_let(k, g->ep_idx, idx);
  k_let(k, g->ep_acc, k_load(k, g->c, idx));
  k_store(k, g->c, idx, g->ep);
  k_for_end(k);
  k_for_end(k);
}

/* The macro tiling of an M x N product (sizes as expressions): nmb row
 * blocks of MB rows, ct NR-column tiles grouped nbt at a time into nnb
 * column blocks. nbt is NB/NR, lowered (down to 4) when M alone gives
 * fewer than MIN_TILES macro tiles; for a symbolic M the same rule is an
 * expression (with nbt >= ct it makes one column block whatever its
 * value, so it needs no case for nmb >= MIN_TILES). */
typedef struct tiling {
  kx_id nmb, ct, nbt, nnb;
} tiling;

/* With `let`, the values that are not constants are set into variables
 * here (as they are computed), so that later ones refer to them. */
static tiling macro_tiling(kernel *k, kx_id M, kx_id N, bool let) {
  tiling t;
  t.nmb = CEILDIV(k, M, I(k, GEMM_MB));
  t.ct = CEILDIV(k, N, I(k, GEMM_NR));
  t.nbt = I(k, GEMM_NB / GEMM_NR);
  int64_t nmb;
  if (!is_num(k, t.nmb, &nmb) || nmb < GEMM_MIN_TILES) {
    /* column blocks wanted; max(nmb, 1) keeps a symbolic M of 0 (a
     * floor division) from dividing by zero */
    kx_id want = CEILDIV(k, I(k, GEMM_MIN_TILES), MAXX(k, t.nmb, I(k, 1)));
    if (let) want = hoist(k, want);
    kx_id c = CEILDIV(k, t.ct, want);
    t.nbt = MINX(k, MAXX(k, c, I(k, 4)), t.nbt);
  }
  if (let) t.nbt = hoist(k, t.nbt);
  t.nnb = CEILDIV(k, t.ct, t.nbt);
  if (let) t.nnb = hoist(k, t.nnb);
  return t;
}

/* Emits the loop nest for x->g at the current position of the builder:
 *
 *   [PARALLEL] for t in [0, nMB*nNB):          macro tile (mb, nb) =
 *                                              (t / nNB, t % nNB)
 *     [sizes and strides that are not constants: set once here]
 *     rows [r0, r1) = [mb*MB, min(r0+MB, M)), columns [c0, c1) likewise
 *     for m in [r0, r1): VECTOR for n in [c0, c1): C[m, n] = init  (if any)
 *     for kb in [0, ceil(K/KB)):  k0 = kb*KB; k1 = min(k0+KB, K)
 *       for nt over the full NR-column tiles of the macro tile:
 *         for mt over the full MR-row tiles: tile(MR x NR)
 *         if the macro tile holds the M % MR tail rows: tile(M%MR x NR)
 *       if the macro tile holds the N % NR tail columns: same with NR
 *         replaced by N % NR
 *     [epilogue over the macro tile]
 *
 * With static sizes every VECTOR loop has a constant trip count (NR or
 * N % NR), so the innermost loop vectorizes without a remainder. With a
 * symbolic M, the tail rows (M % MR of them, known at run time only) are
 * done one row at a time, each a 1 x NR tile (still a vector loop over NR
 * columns); with a symbolic N, the tail columns are one MR-row tile whose
 * vector loop runs N % NR times. Symbolic sizes are the same expressions
 * the static ones fold to. */
static void expand_gemm(gx *x, unsigned outer_flags) {
  kernel *k = x->k;
  ks_gemm *g = &x->g;
  int64_t mv, nv;
  bool m_num = is_num(k, g->m, &mv), n_num = is_num(k, g->n, &nv);
  if ((m_num && mv <= 0) || (n_num && nv <= 0)) return;
  if (n_num && nv == 1) {
    expand_gemv(x, outer_flags);
    return;
  }
  const int64_t mbt = GEMM_MB / GEMM_MR; /* row tiles per macro tile */
  tiling tl = macro_tiling(k, g->m, g->n, false);
  int32_t t = k_for_begin(k, I(k, 0), MUL(k, tl.nmb, tl.nnb), outer_flags);
  /* inside the parallel loop: the sizes (when symbolic) as variables, and
   * the tiling again from them */
  kx_id M = hoist(k, g->m), N = hoist(k, g->n), K = hoist(k, g->k);
  tl = macro_tiling(k, M, N, true);
  kx_id nbt = tl.nbt, nnb = tl.nnb;
  kx_id rt_full = hoist(k, FDIV(k, M, I(k, GEMM_MR)));
  kx_id ct_full = hoist(k, FDIV(k, N, I(k, GEMM_NR)));
  kx_id ntail = hoist(k, k_bin(k, KX_MOD, N, I(k, GEMM_NR)));
  int64_t mtail = 0;
  bool mtail_num = is_num(k, k_bin(k, KX_MOD, M, I(k, GEMM_MR)), &mtail);
  hoist_strides(x);
  int32_t mb = let_i64(k, k_bin(k, KX_DIV, V(k, t), nnb));
  int32_t nb = let_i64(k, k_bin(k, KX_MOD, V(k, t), nnb));

  /* the macro tile: rows [r0, r1), columns [c0, c1) */
  kx_id r0 = MULC(k, V(k, mb), GEMM_MB);
  kx_id r1 = MINX(k, ADD(k, MULC(k, V(k, mb), GEMM_MB), I(k, GEMM_MB)), M);
  kx_id nbw = MULC(k, nbt, GEMM_NR); /* columns per block */
  kx_id c0 = MUL(k, V(k, nb), nbw);
  kx_id c1 = MINX(k, ADD(k, MUL(k, V(k, nb), nbw), nbw), N);
  /* init of the macro tile (nothing to do when accumulating without bias) */
  if (!g->accumulate || g->bias >= 0) {
    int32_t m = k_for_begin(k, r0, r1, 0);
    int32_t n = k_for_begin(k, c0, c1, KS_VECTOR);
    k_store(k, g->c, c_idx(x, V(k, m), V(k, n)), init_val(x, V(k, m), V(k, n)));
    k_for_end(k);
    k_for_end(k);
  }

  int32_t kb = k_for_begin(k, I(k, 0), CEILDIV(k, K, I(k, GEMM_KB)), 0);
  int32_t k0 = let_i64(k, MULC(k, V(k, kb), GEMM_KB));
  int32_t k1 = let_i64(k, MINX(k, ADD(k, V(k, k0), I(k, GEMM_KB)), K));
  for (int pass = 0; pass < 2; pass++) {
    kx_id nr = pass == 0 ? I(k, GEMM_NR) : ntail;
    int64_t nrv;
    bool nr_num = is_num(k, nr, &nrv);
    if (nr_num && nrv == 0) continue;
    int32_t nt = -1;
    if (pass == 0) {
      kx_id lo = MUL(k, V(k, nb), nbt);
      kx_id hi = MINX(k, ADD(k, MUL(k, V(k, nb), nbt), nbt), ct_full);
      nt = k_for_begin(k, lo, MAXX(k, lo, hi), 0);
    } else {
      kx_id cond = k_bin(k, KX_EQ, V(k, nb), FDIV(k, ct_full, nbt));
      if (!nr_num) /* a symbolic N may have no tail */
        cond = k_bin(k, KX_AND, cond, k_bin(k, KX_GT, nr, I(k, 0)));
      k_if_begin(k, cond);
    }
    kx_id n0 = pass == 0 ? MULC(k, V(k, nt), GEMM_NR) : MULC(k, ct_full, GEMM_NR);
    {
      kx_id lo = MULC(k, V(k, mb), mbt);
      kx_id hi = MINX(k, ADD(k, MULC(k, V(k, mb), mbt), I(k, mbt)), rt_full);
      int32_t mt = k_for_begin(k, lo, MAXX(k, lo, hi), 0);
      emit_tile(x, MULC(k, V(k, mt), GEMM_MR), GEMM_MR, n0, nr, k0, k1);
      k_for_end(k);
    }
    if (!mtail_num || mtail) {
      k_if_begin(k, k_bin(k, KX_EQ, V(k, mb), FDIV(k, rt_full, I(k, mbt))));
      if (mtail_num) {
        emit_tile(x, MULC(k, rt_full, GEMM_MR), (int)mtail, n0, nr, k0, k1);
      } else { /* the tail rows one by one (none when MR divides M) */
        int32_t r = k_for_begin(k, MULC(k, rt_full, GEMM_MR), M, 0);
        emit_tile(x, V(k, r), 1, n0, nr, k0, k1);
        k_for_end(k);
      }
      k_if_end(k);
    }
    if (pass == 0)
      k_for_end(k);
    else
      k_if_end(k);
  }
  k_for_end(k); /* kb */
  if (g->epilogue) emit_epilogue(x, r0, r1, c0, c1);
  k_for_end(k); /* t */
}

/* Expands statement s (a KS_GEMM) at the builder's current position (the
 * root; the caller moves the new statements where s was). */
static void expand_stmt(kernel *k, ks_id s, bool parallel) {
  gx x = {.k = k, .g = k->stmts.data[s].gemm};
  const kx_id offs[4] = {x.g.a_off, x.g.b_off, x.g.c_off, x.g.bias >= 0 ? x.g.bias_off : -1};
  int32_t *vars[4] = {&x.aoff, &x.boff, &x.coff, &x.biasoff};
  int64_t *consts[4] = {&x.aoff_c, &x.boff_c, &x.coff_c, &x.biasoff_c};
  for (int i = 0; i < 4; i++) {
    const kx *e = offs[i] >= 0 ? &k->exprs.data[offs[i]] : NULL;
    *vars[i] = -1;
    *consts[i] = 0;
    if (e && e->op == KX_CONST) {
      *consts[i] = e->i;
    } else if (e) {
      *vars[i] = let_i64(k, offs[i]);
      parallel = false; /* the root is no longer the loop alone */
    }
  }
  x.vm = k_var(k, NN_DT_I64);
  x.vn = k_var(k, NN_DT_I64);
  for (int i = 0; i < GEMM_MR; i++) x.va[i] = k_var(k, NN_DT_F32);
  x.vb = k_var(k, NN_DT_F32);
  expand_gemm(&x, parallel ? KS_PARALLEL : 0);
}

/* Rewrites the GEMMs inside the bodies of statement s (recursively). The
 * expansion is built at the root, then moved into the body. */
static void rewrite_children(kernel *k, ks_id s);

static void rewrite_block(kernel *k, ks_id **body, int *n) {
  NN_VEC(ks_id) out = {0};
  for (int i = 0; i < *n; i++) {
    ks_id id = (*body)[i];
    if (k->stmts.data[id].kind == KS_GEMM) {
      int mark = k->root.len;
      expand_stmt(k, id, false);
      for (int j = mark; j < k->root.len; j++) NN_PUSH(k->arena, out, k->root.data[j]);
      k->root.len = mark;
    } else {
      rewrite_children(k, id);
      NN_PUSH(k->arena, out, id);
    }
  }
  *body = out.data;
  *n = out.len;
}

static void rewrite_children(kernel *k, ks_id s) {
  ks_kind kind = k->stmts.data[s].kind;
  if (kind != KS_FOR && kind != KS_IF) return;
  /* work on copies: building statements may move k->stmts */
  ks_id *body = k->stmts.data[s].body, *els = k->stmts.data[s].els;
  int nbody = k->stmts.data[s].nbody, nels = k->stmts.data[s].nels;
  rewrite_block(k, &body, &nbody);
  if (kind == KS_IF) rewrite_block(k, &els, &nels);
  k->stmts.data[s].body = body;
  k->stmts.data[s].nbody = nbody;
  k->stmts.data[s].els = els;
  k->stmts.data[s].nels = nels;
}

void k_expand_gemms(kernel *k) {
  NN_ASSERT(k->open.len == 0);
  int n = k->root.len;
  ks_id *old = nn_alloc(k->arena, sizeof(ks_id) * (size_t)(n + 1));
  memcpy(old, k->root.data, sizeof(ks_id) * (size_t)n);
  bool only = n == 1;
  k->root.len = 0;
  for (int i = 0; i < n; i++) {
    if (k->stmts.data[old[i]].kind == KS_GEMM) {
      expand_stmt(k, old[i], only);
    } else {
      rewrite_children(k, old[i]);
      NN_PUSH(k->arena, k->root, old[i]);
    }
  }
}

/* ====================================================================== */
/* Lowering                                                               */
/* ====================================================================== */

/* Sizes, strides and offsets are dims of the graph (ir_dim): constants for
 * static shapes, expressions over the inputs' symbolic dims otherwise. They
 * become kernel expressions (kl_dimx) only where a kernel uses them, so a
 * static model lowers to exactly the kernels integer arithmetic gave. */

/* dim arithmetic in the graph of c */
static ir_dim DMUL(kl_ctx *c, ir_dim a, ir_dim b) { return ir_dim_mul(kl_graph(c), a, b); }
static ir_dim DMULC(kl_ctx *c, ir_dim a, int64_t b) {
  return ir_dim_mul(kl_graph(c), a, kl_d(c, b));
}
/* d is the number v */
static bool dim_is(kl_ctx *c, ir_dim d, int64_t v) {
  int64_t x;
  return kl_dim_const(c, d, &x) && x == v;
}
/* An element count for k_buf: the number, or -1 when symbolic. */
static int64_t kelems(kl_ctx *c, ir_dim d) {
  int64_t v;
  return kl_dim_const(c, d, &v) ? v : -1;
}
/* d as an expression of kernel k */
static kx_id DX(kl_ctx *c, kernel *k, ir_dim d) { return kl_dimx(c, k, d); }

/* B of a convolution's GEMM as the im2col of its input (ks_im2col), with
 * the image's offset per batch dim like the operands'. */
typedef struct gim {
  be_bufid x;                             /* the input image */
  ir_dim xelems;                          /* its element count */
  ir_dim xstr[16], x0;                    /* offset per batch dim, and base */
  ir_dim h, w, wout;                      /* input height, width; output width */
  int64_t kh, kw, sh, sw, ph, pw, dh, dw; /* the convolution's parameters */
} gim;

/* One batched GEMM kernel: the template (sizes, strides, alpha, beta, bias
 * strides over m/n) run for every index of a batch of `nbatch` dims; each
 * operand's offset is base + sum_d index_d * stride_d. */
typedef struct gspec {
  ir_dim m, n, k;                                   /* sizes */
  ir_dim a_rs, a_cs, b_rs, b_cs;                    /* A and B strides */
  ir_dim ldc;                                       /* C row stride */
  ir_dim bias_rs, bias_cs;                          /* bias strides over m and n */
  float alpha, beta;                                /* scales of the product and the bias */
  bool b_is_weight;                                 /* B is a compile-time constant */
  int a_panel, b_panel;                             /* panel layouts (ks_gemm), 0: strides */
  be_bufid abuf, bbuf, cbuf, biasbuf;               /* program buffers (biasbuf -1: none) */
  ir_dim aelems, belems, celems, biaselems;         /* their element counts */
  int nbatch;                                       /* batch dims */
  ir_dim bdims[16];                                 /* batch sizes */
  ir_dim astr[16], bstr[16], cstr[16], biasstr[16]; /* per batch dim */
  ir_dim a0, b0, c0, bias0;                         /* base offsets */
  const kl_epilogue *ep;                            /* applied to every element of C, or NULL */
  nn_dtype dt;                                      /* dtype of A, B, bias and C (F32, F16 or BF16);
                                                       products are accumulated in f32 all the same */
  const gim *im; /* B also described as an im2col (f32), or NULL */
} gspec;

static ir_dim prod(kl_ctx *c, const ir_dim *d, int n) {
  ir_dim p = kl_d(c, 1);
  for (int i = 0; i < n; i++) p = DMUL(c, p, d[i]);
  return p;
}

/* base + sum_d ((bi / inner_d) % bdims[d]) * str[d] for the batch index
 * variable bi. */
static kx_id batch_off(kl_ctx *c, kernel *k, const gspec *s, int32_t bi, const ir_dim *str,
                       ir_dim base) {
  kx_id e = DX(c, k, base);
  ir_dim inner = kl_d(c, 1);
  for (int d = s->nbatch - 1; d >= 0; d--) {
    int64_t bd;
    bool single = kl_dim_const(c, s->bdims[d], &bd) && bd <= 1;
    if (!dim_is(c, str[d], 0) && !single) {
      kx_id idx = dim_is(c, inner, 1) ? V(k, bi) : k_bin(k, KX_DIV, V(k, bi), DX(c, k, inner));
      if (d > 0) idx = k_bin(k, KX_MOD, idx, DX(c, k, s->bdims[d]));
      e = ADD(k, e, MUL(k, idx, DX(c, k, str[d])));
    }
    inner = DMUL(c, inner, s->bdims[d]);
  }
  return e;
}

/* A kernel for the node being lowered, named after `what` and, with an
 * epilogue, after the fused ops too ("conv_gemm_add_relu"). */
static kernel *new_kernel(kl_ctx *c, const char *what, const kl_epilogue *ep) {
  if (ep && ep->name && ep->name[0]) what = nn_sprintf(kl_arena(c), "%s_%s", what, ep->name);
  return kl_kernel(c, what);
}

/* The batch loop of a gspec: none when the batch is one product (or
 * empty: *skip is then set), else a PARALLEL loop over it; returns its
 * variable or -1. */
static int32_t batch_loop(kl_ctx *c, kernel *k, const gspec *s, bool *skip) {
  ir_dim nb = prod(c, s->bdims, s->nbatch);
  int64_t v;
  bool num = kl_dim_const(c, nb, &v);
  *skip = num && v <= 0;
  if (num && v <= 1) return -1;
  return k_for_begin(k, I(k, 0), DX(c, k, nb), KS_PARALLEL);
}

/* 16-bit C (s->dt F16/BF16): the second kernel, rounding the f32 products
 * in acc into C through the epilogue:
 *   [PARALLEL for bi in batch:] PARALLEL-or-serial for m: VECTOR for n:
 *     out[c_off + m*ldc + n] = round(ep(acc[same index]))  */
static int emit_round_kernel(kl_ctx *c, const gspec *s, be_bufid acc) {
  kernel *k = new_kernel(c, "gemm_round", s->ep);
  int32_t a = k_buf(k, NN_DT_F32, kelems(c, s->celems), false, "acc");
  int32_t o = k_buf(k, s->dt, kelems(c, s->celems), true, "out");
  kl_bind(c, k, a, acc);
  kl_bind(c, k, o, s->cbuf);
  int32_t ep_acc = -1, ep_idx = -1;
  kx_id ep = -1;
  if (s->ep) { /* expressions only: built before any statement */
    ep_acc = k_var(k, NN_DT_F32);
    ep_idx = k_var(k, NN_DT_I64);
    ep = s->ep->build(s->ep->ctx, k, V(k, ep_acc), V(k, ep_idx));
    if (ep < 0) return -1;
  }
  bool skip;
  int32_t bi = batch_loop(c, k, s, &skip);
  kx_id coff = bi >= 0 ? batch_off(c, k, s, bi, s->cstr, s->c0) : DX(c, k, s->c0);
  int32_t m = k_for_begin(k, I(k, 0), DX(c, k, s->m), bi >= 0 ? 0 : KS_PARALLEL);
  int32_t n = k_for_begin(k, I(k, 0), DX(c, k, s->n), KS_VECTOR);
  kx_id idx = ADD(k, ADD(k, coff, MUL(k, V(k, m), DX(c, k, s->ldc))), V(k, n));
  kx_id v = k_load(k, a, idx);
  if (ep >= 0) {
    k_let(k, ep_idx, idx);
    k_let(k, ep_acc, v);
    v = ep;
  }
  k_store(k, o, idx, k_cast(k, s->dt, v));
  k_for_end(k);
  k_for_end(k);
  if (bi >= 0) k_for_end(k);
  return 0;
}

/* Emits the kernel(s); returns 0, or -1 when the epilogue failed
 * (reported). Products are accumulated in f32: A, B and the bias are
 * widened as they are loaded; a 16-bit C is accumulated in an f32 scratch
 * of C's layout and rounded by a second kernel (emit_round_kernel). */
static int emit_gemm_kernel(kl_ctx *c, const char *what, const gspec *s) {
  bool narrow = s->dt != NN_DT_F32;
  kernel *k = new_kernel(c, what, narrow ? NULL : s->ep);
  ks_gemm g;
  memset(&g, 0, sizeof g);
  be_bufid cbuf = narrow ? kl_scratch_d(c, NN_DT_F32, s->celems) : s->cbuf;
  g.a = k_buf(k, s->dt, kelems(c, s->aelems), false, "a");
  g.b = k_buf(k, s->dt, kelems(c, s->belems), false, "b");
  g.c = k_buf(k, NN_DT_F32, kelems(c, s->celems), true, narrow ? "acc" : "out");
  kl_bind(c, k, g.a, s->abuf);
  kl_bind(c, k, g.b, s->bbuf);
  kl_bind(c, k, g.c, cbuf);
  g.bias = -1;
  if (s->biasbuf >= 0) {
    g.bias = k_buf(k, s->dt, kelems(c, s->biaselems), false, "bias");
    kl_bind(c, k, g.bias, s->biasbuf);
  }
  g.alpha = s->alpha;
  g.beta = s->beta;
  g.b_is_weight = s->b_is_weight;
  g.a_panel = s->a_panel;
  g.b_panel = s->b_panel;
  g.m = DX(c, k, s->m);
  g.n = DX(c, k, s->n);
  g.k = DX(c, k, s->k);
  g.a_rs = DX(c, k, s->a_rs);
  g.a_cs = DX(c, k, s->a_cs);
  g.b_rs = DX(c, k, s->b_rs);
  g.b_cs = DX(c, k, s->b_cs);
  g.ldc = DX(c, k, s->ldc);
  g.bias_rs = DX(c, k, s->bias_rs);
  g.bias_cs = DX(c, k, s->bias_cs);
  if (s->ep && !narrow) { /* expressions only: built before any statement */
    g.epilogue = true;
    g.ep_acc = k_var(k, NN_DT_F32);
    g.ep_idx = k_var(k, NN_DT_I64);
    g.ep = s->ep->build(s->ep->ctx, k, V(k, g.ep_acc), V(k, g.ep_idx));
    if (g.ep < 0) return -1;
  }
  bool skip;
  int32_t bi = batch_loop(c, k, s, &skip);
  if (bi >= 0) {
    g.a_off = batch_off(c, k, s, bi, s->astr, s->a0);
    g.b_off = batch_off(c, k, s, bi, s->bstr, s->b0);
    g.c_off = batch_off(c, k, s, bi, s->cstr, s->c0);
    g.bias_off = g.bias >= 0 ? batch_off(c, k, s, bi, s->biasstr, s->bias0) : -1;
  } else {
    g.a_off = DX(c, k, s->a0);
    g.b_off = DX(c, k, s->b0);
    g.c_off = DX(c, k, s->c0);
    g.bias_off = g.bias >= 0 ? DX(c, k, s->bias0) : -1;
  }
  if (s->im && !narrow) {
    const gim *im = s->im;
    ks_im2col *ic = nn_alloc(kl_arena(c), sizeof *ic);
    ic->x = k_buf(k, NN_DT_F32, kelems(c, im->xelems), false, "x");
    kl_bind(c, k, ic->x, im->x);
    ic->x_off = bi >= 0 ? batch_off(c, k, s, bi, im->xstr, im->x0) : DX(c, k, im->x0);
    ic->n0 = I(k, 0);
    ic->h = DX(c, k, im->h);
    ic->w = DX(c, k, im->w);
    ic->wout = DX(c, k, im->wout);
    ic->kh = im->kh, ic->kw = im->kw, ic->sh = im->sh, ic->sw = im->sw;
    ic->ph = im->ph, ic->pw = im->pw, ic->dh = im->dh, ic->dw = im->dw;
    g.im2col = ic;
  }
  if (!skip) k_gemm(k, &g);
  if (bi >= 0) k_for_end(k);
  /* The CPU backend takes KS_GEMM with f32 operands only: there a 16-bit
   * GEMM is expanded here (the loads in the expansion widen A, B and the
   * bias). The CUDA backend keeps it, f16 on tensor cores (wmma), bf16 in
   * its tiled form; the sum is f32 into the same accumulator either way. */
  if (narrow && kl_target(c) != BE_TARGET_CUDA) {
    k_expand_gemms(k);
    /* the GEMM statement is no longer reachable; make it an inert LET so
     * that no backend takes the kernel for one with a GEMM left */
    int32_t dead = k_var(k, NN_DT_I64);
    kx_id zero = I(k, 0);
    for (int i = 0; i < k->stmts.len; i++)
      if (k->stmts.data[i].kind == KS_GEMM) {
        ks *st = &k->stmts.data[i];
        memset(st, 0, sizeof *st);
        st->kind = KS_LET;
        st->var = dead;
        st->val = zero;
      }
  }
  if (narrow && !skip) return emit_round_kernel(c, s, cbuf);
  return 0;
}

/* ---- operands ------------------------------------------------------------ */

typedef struct lctx {
  kl_ctx *c;
  ir_graph *g;
  ir_node *node;
  nn_loc loc;
  const kl_epilogue *ep; /* fused epilogue, or NULL */
  nn_dtype dt;           /* the node's float dtype: every tensor operand and
                            the result have it (F32, F16 or BF16) */
} lctx;

/* Where the node's result goes: its own buffer, or the fused group's. */
static be_bufid result_buf(const lctx *l) {
  return l->ep ? l->ep->out : kl_value_buf(l->c, l->node->out[0]);
}

static bool is_none(const lctx *l, ir_value v) {
  return v == IR_NOVAL || ir_vtype(l->g, v)->kind == IR_T_NONE;
}

/* Shape of a tensor operand of the node's dtype (dims may be symbolic);
 * -1 after reporting. */
static int tensor_shape(const lctx *l, ir_value v, ir_dim *dims) {
  const ir_type *t = ir_vtype(l->g, v);
  if (t->kind == IR_T_TENSOR && t->dtype != NN_DT_UNKNOWN &&
      ((l->dt != NN_DT_F32 && l->dt != NN_DT_F16 && l->dt != NN_DT_BF16) || t->dtype != l->dt)) {
    nn_error(kl_diag(l->c), l->loc,
             "'%s' on %s tensors with a %s result is not supported by the CPU "
             "backend (f32, f16 or bf16 throughout)",
             ir_ops[l->node->op].name, nn_dtype_name(t->dtype), nn_dtype_name(l->dt));
    return -1;
  }
  return kl_shape_d(l->c, v, dims);
}

/* "code generation for 'OP' with symbolic dim D is not supported yet" */
static int sym_error(const lctx *l, ir_dim d) {
  nn_buf b = {0};
  ir_dim_print(&b, l->g, d);
  nn_error(kl_diag(l->c), l->loc,
           "code generation for '%s' with symbolic dim %s is not supported yet",
           ir_ops[l->node->op].name, b.data ? b.data : "?");
  nn_buf_free(&b);
  return -1;
}

/* A number operand (int, float or bool constant). */
static int scalar_arg(const lctx *l, ir_value v, double *out) {
  const ir_const *k;
  if (ir_value_const(l->g, v, &k)) {
    if (k->kind == IR_C_INT || k->kind == IR_C_BOOL) {
      *out = (double)k->i;
      return 0;
    }
    if (k->kind == IR_C_FLOAT) {
      *out = k->f;
      return 0;
    }
  }
  nn_error(kl_diag(l->c), l->loc, "'%s' needs a constant number for its scalar operands",
           ir_ops[l->node->op].name);
  return -1;
}

/* An int list operand with 1 or n elements, spread to n. */
static int int_list_arg(const lctx *l, ir_value v, int n, const char *what, int64_t *out) {
  const ir_const *k;
  if (ir_value_const(l->g, v, &k) && k->kind == IR_C_INTLIST && (k->n == 1 || k->n == n)) {
    for (int i = 0; i < n; i++) out[i] = k->ints[k->n == 1 ? 0 : i];
    return 0;
  }
  if (ir_value_const(l->g, v, &k) && k->kind == IR_C_INT) {
    for (int i = 0; i < n; i++) out[i] = k->i;
    return 0;
  }
  nn_error(kl_diag(l->c), l->loc, "convolution: %s must be a constant list of 1 or %d ints", what,
           n);
  return -1;
}

static int shape_error(const lctx *l, const char *why) {
  nn_error(kl_diag(l->c), l->loc, "'%s': %s", ir_ops[l->node->op].name, why);
  return -1;
}

/* Whether every dim of a gspec is known (an expression that outgrew the
 * dim table's limits is unknown); reports when not. */
static bool spec_dims_ok(const lctx *l, const gspec *s) {
  const ir_dim one[] = {s->m,      s->n,         s->k,       s->a_rs,    s->a_cs,   s->b_rs,
                        s->b_cs,   s->ldc,       s->bias_rs, s->bias_cs, s->aelems, s->belems,
                        s->celems, s->biaselems, s->a0,      s->b0,      s->c0,     s->bias0};
  bool ok = true;
  for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) ok = ok && one[i] != IR_DIM_UNKNOWN;
  for (int i = 0; i < s->nbatch; i++)
    ok = ok && s->bdims[i] != IR_DIM_UNKNOWN && s->astr[i] != IR_DIM_UNKNOWN &&
         s->bstr[i] != IR_DIM_UNKNOWN && s->cstr[i] != IR_DIM_UNKNOWN &&
         s->biasstr[i] != IR_DIM_UNKNOWN;
  if (!ok) shape_error(l, "a size of the product is too complex an expression");
  return ok;
}

/* Strides of a tensor of dims[rank] broadcast to `trank` dims (right
 * aligned): 0 for missing and size-1 dims. */
static void bcast_strides(kl_ctx *c, const ir_dim *dims, int rank, int trank, ir_dim *str) {
  ir_dim s = kl_d(c, 1);
  for (int i = trank - 1; i >= 0; i--) {
    int d = i - (trank - rank);
    if (d < 0 || dim_is(c, dims[d], 1))
      str[i] = kl_d(c, 0);
    else {
      str[i] = s;
      s = DMUL(c, s, dims[d]);
    }
  }
}

/* Checks that dims[rank] broadcasts to target[trank] (each dim the number
 * 1 or the target's dim itself). */
static bool broadcasts_to(kl_ctx *c, const ir_dim *dims, int rank, const ir_dim *target,
                          int trank) {
  if (rank > trank) return false;
  for (int i = 0; i < rank; i++) {
    ir_dim d = dims[i], t = target[trank - rank + i];
    if (!dim_is(c, d, 1) && d != t) return false;
  }
  return true;
}

static gspec gspec_new(const lctx *l) {
  gspec s;
  memset(&s, 0, sizeof s);
  ir_dim zero = kl_d(l->c, 0);
  s.m = s.n = s.k = s.a_rs = s.a_cs = s.b_rs = s.b_cs = s.ldc = zero;
  s.bias_rs = s.bias_cs = zero;
  s.aelems = s.belems = s.celems = s.biaselems = zero;
  s.a0 = s.b0 = s.c0 = s.bias0 = zero;
  for (int i = 0; i < 16; i++) s.bdims[i] = s.astr[i] = s.bstr[i] = s.cstr[i] = s.biasstr[i] = zero;
  s.dt = l->dt;
  s.abuf = s.bbuf = s.cbuf = -1;
  s.biasbuf = -1;
  s.alpha = 1.0f;
  s.beta = 1.0f;
  s.ep = l->ep;
  return s;
}

/* ---- linear ----------------------------------------------------------------
 */

/* B operand for x @ w^T with w [N, K]: w^T [K, N] with contiguous columns.
 * A weight is transposed at compile time; anything else by a kernel into a
 * scratch buffer. Sets bbuf, belems, b_rs, b_cs, b_is_weight. Returns 0,
 * or -1 after reporting. */
static int transposed_b(const lctx *l, ir_value w, ir_dim N, ir_dim K, gspec *s) {
  kl_ctx *c = l->c;
  s->belems = DMUL(c, N, K);
  s->b_rs = N;
  s->b_cs = kl_d(c, 1);
  if (dim_is(c, N, 1)) { /* w^T [K, 1] is w itself */
    s->bbuf = kl_value_buf(c, w);
    s->b_is_weight = kl_weight_data(c, w) != NULL;
    return 0;
  }
  const unsigned char *wd = kl_weight_data(c, w);
  size_t es = nn_dtype_size(s->dt);
  if (wd) {
    int64_t Nv, Kv;
    if (!kl_dim_const(c, N, &Nv)) return sym_error(l, N);
    if (!kl_dim_const(c, K, &Kv)) return sym_error(l, K);
    s->b_is_weight = true;
    if (s->dt == NN_DT_F32) {
      /* panels of PACK_B columns (ks_gemm.b_panel): w row n becomes
       * column n % PACK_B of panel n / PACK_B */
      int64_t np = (Nv + PACK_B - 1) / PACK_B;
      float *t = nn_alloc(kl_arena(c), sizeof(float) * (size_t)(np * PACK_B * Kv + 1));
      memset(t, 0, sizeof(float) * (size_t)(np * PACK_B * Kv));
      for (int64_t n = 0; n < Nv; n++)
        for (int64_t kk = 0; kk < Kv; kk++)
          memcpy(&t[(n / PACK_B) * PACK_B * Kv + kk * PACK_B + n % PACK_B],
                 wd + (size_t)(n * Kv + kk) * sizeof(float), sizeof(float));
      s->belems = kl_d(c, np * PACK_B * Kv);
      s->bbuf = kl_const_buf(c, s->dt, t, np * PACK_B * Kv);
      s->b_panel = PACK_B;
      return 0;
    }
    /* copy out first: kl_const_buf may move the blob wd points into */
    unsigned char *t = nn_alloc(kl_arena(c), es * (size_t)(Nv * Kv));
    for (int64_t n = 0; n < Nv; n++)
      for (int64_t kk = 0; kk < Kv; kk++)
        memcpy(t + (size_t)(kk * Nv + n) * es, wd + (size_t)(n * Kv + kk) * es, es);
    s->bbuf = kl_const_buf(c, s->dt, t, Nv * Kv);
    return 0;
  }
  be_bufid wt = kl_scratch_d(c, s->dt, s->belems);
  kernel *k = kl_kernel(c, "pack_transpose");
  int32_t dst = k_buf(k, s->dt, kelems(c, s->belems), true, "wt");
  int32_t src = k_buf(k, s->dt, kelems(c, s->belems), false, "w");
  kl_bind(c, k, dst, wt);
  kl_bind(c, k, src, kl_value_buf(c, w));
  int32_t kk = k_for_begin(k, I(k, 0), DX(c, k, K), KS_PARALLEL);
  int32_t n = k_for_begin(k, I(k, 0), DX(c, k, N), KS_VECTOR);
  k_store(k, dst, ADD(k, MUL(k, V(k, kk), DX(c, k, N)), V(k, n)),
          k_load(k, src, ADD(k, MUL(k, V(k, n), DX(c, k, K)), V(k, kk))));
  k_for_end(k);
  k_for_end(k);
  s->bbuf = wt;
  s->b_is_weight = false;
  return 0;
}

static int lower_linear(const lctx *l) {
  kl_ctx *c = l->c;
  ir_dim xd[16], wd[16], bd[16], od[16];
  ir_value x = l->node->in[0], w = l->node->in[1], b = l->node->in[2];
  int xr = tensor_shape(l, x, xd), wr = tensor_shape(l, w, wd);
  int orank = tensor_shape(l, l->node->out[0], od);
  if (xr < 0 || wr < 0 || orank < 0) return -1;
  if (xr < 1 || wr != 2 || !kl_dims_agree(c, wd[1], xd[xr - 1]))
    return shape_error(l, "expects x[..., K] and w[N, K]");
  ir_dim K = wd[1], N = wd[0], M = prod(c, xd, xr - 1);
  if (prod(c, od, orank) != DMUL(c, M, N)) return shape_error(l, "result shape does not match");
  gspec s = gspec_new(l);
  s.m = M;
  s.n = N;
  s.k = K;
  s.abuf = kl_value_buf(c, x);
  s.aelems = DMUL(c, M, K);
  s.a_rs = K;
  s.a_cs = kl_d(c, 1);
  if (transposed_b(l, w, N, K, &s) < 0) return -1;
  s.cbuf = result_buf(l);
  s.celems = DMUL(c, M, N);
  s.ldc = N;
  if (!is_none(l, b)) {
    int br = tensor_shape(l, b, bd);
    if (br < 0) return -1;
    if (!broadcasts_to(c, bd, br, &N, 1)) return shape_error(l, "bias must have N elements");
    s.biasbuf = kl_value_buf(c, b);
    s.biaselems = prod(c, bd, br);
    s.bias_rs = kl_d(c, 0);
    /* a bias of N values (N > 1, or symbolic: then N values at run time
     * too) has stride 1; one value is broadcast */
    int64_t nv;
    bool per_n = br == 1 && bd[0] == N && !(kl_dim_const(c, N, &nv) && nv <= 1);
    s.bias_cs = kl_d(c, per_n ? 1 : 0);
  }
  if (!spec_dims_ok(l, &s)) return -1;
  return emit_gemm_kernel(c, "linear", &s) < 0 ? -1 : 1;
}

/* ---- addmm / mm / bmm / baddbmm / matmul
 * --------------------------------------- */

/* Sets the bias of a (batched) product from `c` broadcast to
 * [batch..., M, N] (nbatch batch dims in s), scaled by beta. */
static int set_addend(const lctx *l, ir_value cv, double beta, gspec *s) {
  if (beta == 0.0) return 0; /* beta == 0 ignores c entirely */
  ir_dim cd[16], target[18], str[18];
  int cr = tensor_shape(l, cv, cd);
  if (cr < 0) return -1;
  int tr = s->nbatch + 2;
  memcpy(target, s->bdims, sizeof(ir_dim) * (size_t)s->nbatch);
  target[tr - 2] = s->m;
  target[tr - 1] = s->n;
  if (!broadcasts_to(l->c, cd, cr, target, tr))
    return shape_error(l, "the added tensor does not broadcast to the product's shape");
  bcast_strides(l->c, cd, cr, tr, str);
  s->biasbuf = kl_value_buf(l->c, cv);
  s->biaselems = prod(l->c, cd, cr);
  memcpy(s->biasstr, str, sizeof(ir_dim) * (size_t)s->nbatch);
  s->bias_rs = str[tr - 2];
  s->bias_cs = str[tr - 1];
  s->beta = (float)beta;
  return 0;
}

/* a [batch_a..., M, K] @ b [batch_b..., K, N] with the batch dims
 * broadcast (either list may be empty). A batch dim pair is the same dim,
 * or one of them is the number 1 (shape inference resolved broadcasting;
 * a symbolic dim is never taken for 1). */
static int batched_product(const lctx *l, ir_value a, const ir_dim *ad, int ar, ir_value b,
                           const ir_dim *bd, int br, gspec *s) {
  kl_ctx *c = l->c;
  int nba = ar - 2, nbb = br - 2;
  int nb = nba > nbb ? nba : nbb;
  if (nb > 14) return shape_error(l, "too many batch dims");
  ir_dim M = ad[ar - 2], K = ad[ar - 1], N = bd[br - 1];
  if (!kl_dims_agree(c, bd[br - 2], K)) return shape_error(l, "inner dims of the product differ");
  if (kl_dim_const(c, bd[br - 2], NULL)) K = bd[br - 2]; /* guarded equal */
  s->nbatch = nb;
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - nba), ib = i - (nb - nbb);
    ir_dim da = ia >= 0 ? ad[ia] : kl_d(c, 1), db = ib >= 0 ? bd[ib] : kl_d(c, 1);
    if (!kl_dims_agree(c, da, db) && !dim_is(c, da, 1) && !dim_is(c, db, 1))
      return shape_error(l, "batch dims do not broadcast");
    s->bdims[i] = dim_is(c, da, 1) ? db : da;
  }
  bcast_strides(c, ad, nba, nb, s->astr);
  bcast_strides(c, bd, nbb, nb, s->bstr);
  for (int i = 0; i < nb; i++) {
    s->astr[i] = DMUL(c, s->astr[i], DMUL(c, M, K));
    s->bstr[i] = DMUL(c, s->bstr[i], DMUL(c, K, N));
  }
  ir_dim cs = DMUL(c, M, N);
  for (int i = nb - 1; i >= 0; i--) {
    s->cstr[i] = cs;
    cs = DMUL(c, cs, s->bdims[i]);
  }
  s->m = M;
  s->n = N;
  s->k = K;
  s->a_rs = K;
  s->a_cs = kl_d(c, 1);
  s->b_rs = N;
  s->b_cs = kl_d(c, 1);
  s->ldc = N;
  s->abuf = kl_value_buf(c, a);
  s->aelems = prod(c, ad, ar);
  s->bbuf = kl_value_buf(c, b);
  s->belems = prod(c, bd, br);
  s->b_is_weight = kl_weight_data(c, b) != NULL;
  s->cbuf = result_buf(l);
  s->celems = cs;
  return 0;
}

static int lower_matmul(const lctx *l) {
  kl_ctx *c = l->c;
  ir_node *n = l->node;
  ir_op op = n->op;
  bool addend = op == NN_OP_ADDMM || op == NN_OP_BADDBMM;
  ir_value a = n->in[addend ? 1 : 0], b = n->in[addend ? 2 : 1];
  ir_dim ad[16], bd[16], od[16];
  int ar = tensor_shape(l, a, ad), br = tensor_shape(l, b, bd);
  int orank = tensor_shape(l, n->out[0], od);
  if (ar < 0 || br < 0 || orank < 0) return -1;
  if ((op == NN_OP_MM || op == NN_OP_ADDMM) && (ar != 2 || br != 2))
    return shape_error(l, "expects 2-d operands");
  if ((op == NN_OP_BMM || op == NN_OP_BADDBMM) &&
      (ar != 3 || br != 3 || !kl_dims_agree(c, ad[0], bd[0])))
    return shape_error(l, "expects 3-d operands with equal batch");
  if (ar == 0 || br == 0) return shape_error(l, "expects operands of rank 1 or more");
  gspec s = gspec_new(l);
  ir_dim one = kl_d(c, 1);
  if (ar == 1 && br == 1) { /* dot product */
    ir_dim a2[2] = {one, ad[0]}, b2[2] = {bd[0], one};
    if (batched_product(l, a, a2, 2, b, b2, 2, &s) < 0) return -1;
  } else if (br == 1 || (br == 2 && ar > 2)) {
    /* b is a vector or a plain matrix: a's batch folds into M */
    ir_dim a2[2] = {prod(c, ad, ar - 1), ad[ar - 1]};
    ir_dim b2[2] = {bd[0], br == 1 ? one : bd[1]};
    if (batched_product(l, a, a2, 2, b, b2, 2, &s) < 0) return -1;
  } else if (ar == 1) { /* [K] @ [..., K, N]: a row vector */
    ir_dim a2[2] = {one, ad[0]};
    if (batched_product(l, a, a2, 2, b, bd, br, &s) < 0) return -1;
  } else {
    if (batched_product(l, a, ad, ar, b, bd, br, &s) < 0) return -1;
  }
  if (prod(c, od, orank) != s.celems) return shape_error(l, "result shape does not match");
  if (addend) {
    double beta, alpha;
    if (scalar_arg(l, n->in[3], &beta) < 0 || scalar_arg(l, n->in[4], &alpha) < 0) return -1;
    s.alpha = (float)alpha;
    if (set_addend(l, n->in[0], beta, &s) < 0) return -1;
  }
  if (!spec_dims_ok(l, &s)) return -1;
  return emit_gemm_kernel(c, ir_ops[op].name, &s) < 0 ? -1 : 1;
}

/* ---- convolution -----------------------------------------------------------
 */

/* A 2-d convolution's geometry (1-d convolutions have H = kh = 1). The
 * batch and the spatial sizes may be symbolic; channels, kernel size and
 * the parameters are numbers. */
typedef struct conv {
  ir_dim n, h, w;                 /* input batch and spatial size */
  ir_dim hout, wout;              /* output spatial size (from the result) */
  int64_t cin, cout, kh, kw;      /* weight [cout, cin/groups, kh, kw] */
  int64_t sh, sw, ph, pw, dh, dw; /* stride, padding, dilation */
  int64_t groups;
  be_bufid x, wt, bias, out; /* program buffers (bias -1: none) */
  int a_panel;               /* wt packed in panels of this many rows per
                                group (ks_gemm.a_panel), or 0: [cout, Kc] */
  const kl_epilogue *ep;     /* fused epilogue on out, or NULL */
  nn_dtype dt;               /* dtype of x, w, bias, out (f32 accumulation) */
} conv;

/* The spatial sizes as expressions of a kernel: numbers, or (symbolic)
 * variables set where conv_sizes was called. */
typedef struct convx {
  kx_id h, w, hout, wout, P; /* P = hout * wout */
} convx;

static convx conv_sizes(kl_ctx *c, kernel *k, const conv *cv) {
  convx x;
  x.h = hoist(k, DX(c, k, cv->h));
  x.w = hoist(k, DX(c, k, cv->w));
  x.hout = hoist(k, DX(c, k, cv->hout));
  x.wout = hoist(k, DX(c, k, cv->wout));
  x.P = MUL(k, x.hout, x.wout);
  return x;
}

/* Valid output columns [lo, hi) of tap column j (a variable): those whose
 * input column ow*sw - pw + j*dw lies in [0, W). Sets the two variables. */
static void tap_range(kernel *k, const conv *cv, const convx *sz, int32_t j, int32_t lo,
                      int32_t hi) {
  kx_id base = ADD(k, I(k, cv->pw), MULC(k, V(k, j), -cv->dw)); /* pw - j*dw */
  kx_id l = k_bin(k, KX_FLOORDIV, ADD(k, base, I(k, cv->sw - 1)), I(k, cv->sw));
  k_let(k, lo, MINX(k, MAXX(k, l, I(k, 0)), sz->wout));
  kx_id h = ADD(k, k_bin(k, KX_FLOORDIV, ADD(k, base, SUB(k, sz->w, I(k, 1))), I(k, cv->sw)),
                I(k, 1));
  k_let(k, hi, MAXX(k, MINX(k, h, sz->wout), V(k, lo)));
}

/* ih = oh*sh - ph + i*dh, and the condition 0 <= ih < H. */
static kx_id row_in_range(kernel *k, const convx *sz, int32_t ih) {
  return k_bin(k, KX_AND, k_bin(k, KX_GE, V(k, ih), I(k, 0)), k_bin(k, KX_LT, V(k, ih), sz->h));
}

static void store_zeros(kernel *k, int32_t buf, nn_dtype dt, int32_t dst, kx_id lo, kx_id hi) {
  int32_t ow = k_for_begin(k, lo, hi, KS_VECTOR);
  k_store(k, buf, ADD(k, V(k, dst), V(k, ow)), k_const_f(k, dt, 0.0));
  k_for_end(k);
}

/* Depthwise (groups == cin == cout) with many taps: a direct kernel that
 * accumulates tap by tap into each output row.
 *   PARALLEL for nc in [0, N*C): ch = nc % C
 *     for oh: out row = bias[ch] or 0
 *       for i in [0, kh): ih = oh*sh - ph + i*dh; if 0 <= ih < H:
 *         for j in [0, kw): VECTOR for ow in the valid range of tap j:
 *           out[nc, oh, ow] += w[ch, i, j] * x[nc, ih, ow*sw - pw + j*dw] */
static int conv_depthwise_rows(kl_ctx *c, const conv *cv) {
  kernel *k = new_kernel(c, "conv_depthwise", cv->ep);
  int64_t C = cv->cin;
  ir_dim P = DMUL(c, cv->hout, cv->wout);
  ir_dim oelems = DMUL(c, DMULC(c, cv->n, C), P);
  ir_dim xelems = DMUL(c, DMUL(c, DMULC(c, cv->n, C), cv->h), cv->w);
  /* 16-bit out: rows accumulate in an f32 scratch, rounded into out when
   * complete (through the epilogue, if any). */
  bool narrow = cv->dt != NN_DT_F32;
  int32_t o = k_buf(k, NN_DT_F32, kelems(c, oelems), true, narrow ? "acc" : "out");
  int32_t x = k_buf(k, cv->dt, kelems(c, xelems), false, "x");
  int32_t w = k_buf(k, cv->dt, C * cv->kh * cv->kw, false, "w");
  kl_bind(c, k, o, narrow ? kl_scratch_d(c, NN_DT_F32, oelems) : cv->out);
  kl_bind(c, k, x, cv->x);
  kl_bind(c, k, w, cv->wt);
  int32_t out = o;
  if (narrow) {
    out = k_buf(k, cv->dt, kelems(c, oelems), true, "out");
    kl_bind(c, k, out, cv->out);
  }
  int32_t bias = -1;
  if (cv->bias >= 0) {
    bias = k_buf(k, cv->dt, C, false, "bias");
    kl_bind(c, k, bias, cv->bias);
  }
  int32_t ih = k_var(k, NN_DT_I64), dst = k_var(k, NN_DT_I64), src = k_var(k, NN_DT_I64);
  int32_t lo = k_var(k, NN_DT_I64), hi = k_var(k, NN_DT_I64), wv = k_var(k, NN_DT_F32);
  int32_t acc = -1, idx = -1;
  kx_id e = -1;
  if (cv->ep || narrow) { /* expressions only: built before any statement */
    acc = k_var(k, NN_DT_F32);
    idx = k_var(k, NN_DT_I64);
    e = cv->ep ? cv->ep->build(cv->ep->ctx, k, V(k, acc), V(k, idx)) : V(k, acc);
    if (e < 0) return -1;
  }
  int32_t nc = k_for_begin(k, I(k, 0), DX(c, k, DMULC(c, cv->n, C)), KS_PARALLEL);
  convx sz = conv_sizes(c, k, cv);
  int32_t ch = let_i64(k, k_bin(k, KX_MOD, V(k, nc), I(k, C)));
  int32_t oh = k_for_begin(k, I(k, 0), sz.hout, 0);
  k_let(k, dst, ADD(k, MUL(k, V(k, nc), sz.P), MUL(k, V(k, oh), sz.wout)));
  int32_t ow = k_for_begin(k, I(k, 0), sz.wout, KS_VECTOR);
  k_store(k, o, ADD(k, V(k, dst), V(k, ow)),
          bias >= 0 ? k_cast(k, NN_DT_F32, k_load(k, bias, V(k, ch))) : F(k, 0.0));
  k_for_end(k);
  int32_t i = k_for_begin(k, I(k, 0), I(k, cv->kh), 0);
  k_let(k, ih, ADD(k, MULC(k, V(k, oh), cv->sh), ADD(k, I(k, -cv->ph), MULC(k, V(k, i), cv->dh))));
  k_if_begin(k, row_in_range(k, &sz, ih));
  int32_t j = k_for_begin(k, I(k, 0), I(k, cv->kw), 0);
  tap_range(k, cv, &sz, j, lo, hi);
  k_let(k, wv,
        k_cast(k, NN_DT_F32,
               k_load(k, w,
                      ADD(k, MULC(k, ADD(k, MULC(k, V(k, ch), cv->kh), V(k, i)), cv->kw),
                          V(k, j)))));
  /* x index of ow = 0 (may be negative; only ow in [lo, hi) are read) */
  k_let(k, src,
        ADD(k, MUL(k, ADD(k, MUL(k, V(k, nc), sz.h), V(k, ih)), sz.w),
            ADD(k, I(k, -cv->pw), MULC(k, V(k, j), cv->dw))));
  ow = k_for_begin(k, V(k, lo), V(k, hi), KS_VECTOR);
  kx_id oidx = ADD(k, V(k, dst), V(k, ow));
  kx_id xv = k_cast(k, NN_DT_F32, k_load(k, x, ADD(k, V(k, src), MULC(k, V(k, ow), cv->sw))));
  k_store(k, o, oidx, ADD(k, k_load(k, o, oidx), MUL(k, V(k, wv), xv)));
  k_for_end(k); /* ow */
  k_for_end(k); /* j */
  k_if_end(k);
  k_for_end(k);           /* i */
  if (cv->ep || narrow) { /* the row is complete: out = round(ep(acc)) */
    ow = k_for_begin(k, I(k, 0), sz.wout, KS_VECTOR);
    k_let(k, idx, ADD(k, V(k, dst), V(k, ow)));
    k_let(k, acc, k_load(k, o, V(k, idx)));
    k_store(k, out, V(k, idx), k_cast(k, cv->dt, e));
    k_for_end(k);
  }
  k_for_end(k); /* oh */
  k_for_end(k); /* nc */
  return 0;
}

/* Depthwise kernels up to this many taps get the direct form below; larger
 * ones (long 1-d filters) accumulate tap by tap into the output row. */
#define DW_MAX_TAPS 64
/* Output rows narrower than this are done as one flat loop with per-lane
 * column checks (the border columns are a large part of them); wider ones
 * leave the border columns to short loops per row. */
#define DW_NARROW 32
#define DW_FLAT_MAX ((int64_t)1 << 22) /* and planes smaller than this */
/* Rows narrower than this: the whole plane in the flat loop, rows checked
 * per lane too (when it has planes either side) */
#define DW_TINY 10

/* The first output index whose taps all lie at or after input index 0:
 * ceil(p / s), clipped to [0, out). */
static kx_id dw_lo(kernel *k, int64_t p, int64_t s, kx_id out) {
  return MINX(k, I(k, (p + s - 1) / s), out);
}
/* One past the last output index whose taps all lie before input index
 * n: floor((n - 1 + p - (taps - 1)*d) / s) + 1, clipped to [lo, out). */
static kx_id dw_hi(kernel *k, kx_id n, int64_t p, int64_t s, int64_t d, int64_t taps, kx_id lo,
                   kx_id out) {
  kx_id last = FDIV(k, ADD(k, n, I(k, p - 1 - (taps - 1) * d)), I(k, s));
  return MAXX(k, MINX(k, ADD(k, last, I(k, 1)), out), lo);
}

/* State of the direct depthwise kernel while its loops are built. */
typedef struct dwk {
  kernel *k;
  const conv *cv;
  convx sz;         /* spatial sizes (numbers or variables) */
  int32_t x, out;   /* slots */
  int32_t *wv;      /* F32 vars: the channel's kh*kw weights */
  kx_id bias;       /* F32: the channel's bias, or 0 */
  int32_t *rb;      /* I64 vars: x index of tap row i's column 0, or of
                       the plane's first row when that row is outside */
  int32_t *rok;     /* BOOL vars: tap row i is inside the input */
  int32_t oh;       /* the output row (a loop variable) */
  int32_t dst;      /* I64 var: out index of (nc, oh, 0) */
  int32_t obase;    /* I64 var: out index of (nc, 0, 0) */
  int32_t plane;    /* I64 var: x index of (nc, 0, 0), an index always valid */
  int32_t acc, idx; /* the epilogue's input variables */
  kx_id e;          /* the stored value (epilogue and rounding) */
  int32_t colmask;  /* BOOL slot: [kw][P] whether tap column j of output
                       position p is inside (fixed sizes), or -1 */
  int64_t P;        /* with colmask: the output positions of a plane */
} dwk;

/* Sets the row variables of output row oh (a variable). */
static void dw_rows(dwk *d) {
  kernel *k = d->k;
  const conv *cv = d->cv;
  k_let(k, d->dst, ADD(k, V(k, d->obase), MUL(k, V(k, d->oh), d->sz.wout)));
  for (int64_t i = 0; i < cv->kh; i++) {
    kx_id ih = ADD(k, MULC(k, V(k, d->oh), cv->sh), I(k, i * cv->dh - cv->ph));
    k_let(k, d->rok[i],
          k_bin(k, KX_AND, k_bin(k, KX_GE, ih, I(k, 0)), k_bin(k, KX_LT, ih, d->sz.h)));
    k_let(k, d->rb[i],
          ADD(k, V(k, d->plane), k_select(k, V(k, d->rok[i]), MUL(k, ih, d->sz.w), I(k, 0))));
  }
}

/* out[idx] = e(sum), rounded to the output's dtype. */
static void dw_store(dwk *d, kx_id sum, kx_id idx) {
  kernel *k = d->k;
  k_let(k, d->idx, idx);
  k_let(k, d->acc, sum);
  k_store(k, d->out, V(k, d->idx), k_cast(k, d->cv->dt, d->e));
}

/* Whether the row loops also load the element after each tap row's last
 * tap (and add nothing from it). With stride 2 and dilation 1, the taps of
 * a row are kw consecutive elements, read with stride 2 along the loop:
 * the vectorizer loads pairs of consecutive elements as two wide loads and
 * two shuffles, and an odd kw leaves one tap without a partner, which it
 * would gather element by element instead. The extra load completes the
 * pair. */
static bool dw_pairs(const conv *cv) { return cv->sw == 2 && cv->dw == 1 && cv->kw % 2 == 1; }

/* 0, from an expression that loads x[xi] (dw_pairs): the vectorizer
 * cannot see that the load is never used (the plane's index is never
 * negative), so it keeps the load in the pair. */
static kx_id dw_unused(dwk *d, kx_id xi) {
  kernel *k = d->k;
  kx_id never = k_bin(k, KX_LT, V(k, d->plane), I(k, 0));
  return k_select(k, never, k_cast(k, NN_DT_F32, k_load(k, d->x, xi)), F(k, 0.0));
}

/* The sum of t[0..n) (n >= 1, t overwritten) as a balanced tree of adds
 * (the taps of one output are independent products). */
static kx_id tree_sum(kernel *k, kx_id *t, int n) {
  while (n > 1) {
    int h = 0;
    for (int i = 0; i + 1 < n; i += 2) t[h++] = ADD(k, t[i], t[i + 1]);
    if (n % 2) t[h++] = t[n - 1];
    n = h;
  }
  return t[0];
}

/* dw_loop's loop over [lo, hi); `pairs`: with dw_pairs' extra loads (hi
 * must leave the last interior column out). */
static void dw_loop_n(dwk *d, kx_id lo, kx_id hi, bool rows, bool cols, bool pairs) {
  kernel *k = d->k;
  const conv *cv = d->cv;
  int64_t a, b;
  if (is_num(k, lo, &a) && is_num(k, hi, &b) && a >= b) return;
  int32_t ow = k_for_begin(k, lo, hi, KS_VECTOR);
  kx_id *terms = nn_alloc(k->arena, sizeof(kx_id) * (size_t)(cv->kh * (cv->kw + 1) + 1));
  int nt = 0;
  terms[nt++] = d->bias;
  for (int64_t i = 0; i < cv->kh; i++) {
    for (int64_t j = 0; j < cv->kw; j++) {
      kx_id iw = ADD(k, MULC(k, V(k, ow), cv->sw), I(k, j * cv->dw - cv->pw));
      kx_id ok = rows ? V(k, d->rok[i]) : -1;
      kx_id xi = ADD(k, V(k, d->rb[i]), iw);
      if (cols) {
        kx_id cok = k_bin(k, KX_AND, k_bin(k, KX_GE, iw, I(k, 0)), k_bin(k, KX_LT, iw, d->sz.w));
        ok = ok >= 0 ? k_bin(k, KX_AND, ok, cok) : cok;
        xi = k_select(k, ok, xi, V(k, d->plane));
      }
      kx_id t = MUL(k, V(k, d->wv[i * cv->kw + j]), k_cast(k, NN_DT_F32, k_load(k, d->x, xi)));
      if (ok >= 0) t = k_select(k, ok, t, F(k, 0.0));
      terms[nt++] = t;
    }
    if (pairs) /* see dw_pairs; plane < 0 is never true */
      terms[nt++] = dw_unused(d, ADD(k, V(k, d->rb[i]),
                                     ADD(k, MULC(k, V(k, ow), cv->sw), I(k, cv->kw - cv->pw))));
  }
  dw_store(d, tree_sum(k, terms, nt), ADD(k, V(k, d->dst), V(k, ow)));
  k_for_end(k);
}

/* VECTOR for ow in [lo, hi) of row oh (dw_rows set):
 * out[dst + ow] = e(bias + sum_ij w_ij * x[tap]). `rows`: tap rows may be
 * outside the input (each tap a select on its row's flag, uniform along
 * the row, the load kept inside the plane by rb); `cols`: tap columns may
 * be outside too (then the load index is a select as well). A tap outside
 * adds nothing. Unchecked columns with dw_pairs: the last column apart,
 * without the extra load (which it would take from past the row). */
static void dw_loop(dwk *d, kx_id lo, kx_id hi, bool rows, bool cols) {
  if (cols || !dw_pairs(d->cv)) {
    dw_loop_n(d, lo, hi, rows, cols, false);
    return;
  }
  kernel *k = d->k;
  kx_id mid = hoist(k, MAXX(k, lo, SUB(k, hi, I(k, 1))));
  dw_loop_n(d, lo, mid, rows, false, true);
  dw_loop_n(d, mid, hi, rows, false, false);
}

/* A whole output row oh (dw_rows set): the columns whose taps are all
 * inside, and the checked columns either side. */
static void dw_row(dwk *d, kx_id owlo, kx_id owhi, bool rows) {
  dw_loop(d, I(d->k, 0), owlo, rows, true);
  dw_loop(d, owlo, owhi, rows, false);
  dw_loop(d, owhi, d->sz.wout, rows, true);
}

/* The interior rows [ohlo, ohhi) as one flat VECTOR loop over output
 * positions p = oh*wout + ow in [p0, p1) = [ohlo*wout + owlo, (ohhi-1)*wout
 * + owhi), for shapes where that is one arithmetic sequence in the input
 * too (sh*W == sw*wout: stride 1 with wout == W, stride 2 with W ==
 * 2*wout): tap (i, j) of p is x[plane + p*sw + (i*dh - ph)*W + j*dw - pw],
 * so rows of a few columns still fill whole vectors. In the border columns
 * some taps wrap around to the neighbouring row (still inside the plane,
 * as pw < W); those are dropped by a select on the tap's column, computed
 * per lane from ow = p - wout*floor((p + 1/2) / wout) in f32 (exact for
 * p < 2^22: the quotient is at least 1/(2 wout) away from an integer, more
 * than its rounding error). `rows`: the range is the whole plane and the
 * tap's row is checked too (the taps of the border rows then read the
 * neighbouring planes: the caller makes sure there are some). */
static void dw_flat(dwk *d, kx_id obase, kx_id p0, kx_id p1, bool checked, bool rows) {
  kernel *k = d->k;
  const conv *cv = d->cv;
  nn_arena *ar = k->arena;
  int32_t *roff = nn_alloc(ar, sizeof(int32_t) * (size_t)cv->kh);
  for (int64_t i = 0; i < cv->kh; i++) /* x offset of tap (i, 0) from p*sw */
    roff[i] = let_i64(k, ADD(k, V(k, d->plane),
                             ADD(k, MULC(k, d->sz.w, i * cv->dh - cv->ph), I(k, -cv->pw))));
  /* column tests in f32 (the vectorizer takes int -> float conversions,
   * not float -> int): exact while P < 2^22, which the caller checks */
  int32_t inv = k_var(k, NN_DT_F32), wof = k_var(k, NN_DT_F32), wf = k_var(k, NN_DT_F32);
  int32_t hf = k_var(k, NN_DT_F32);
  if (checked) {
    k_let(k, wof, k_cast(k, NN_DT_F32, d->sz.wout));
    k_let(k, wf, k_cast(k, NN_DT_F32, d->sz.w));
    k_let(k, hf, k_cast(k, NN_DT_F32, d->sz.h));
    k_let(k, inv, k_bin(k, KX_DIV, F(k, 1.0), V(k, wof)));
  }
  int32_t p = k_for_begin(k, p0, p1, KS_VECTOR);
  kx_id *cok = nn_alloc(ar, sizeof(kx_id) * (size_t)cv->kw);
  for (int64_t j = 0; j < cv->kw; j++) cok[j] = -1;
  kx_id pf = k_cast(k, NN_DT_F32, V(k, p));
  kx_id ohf = k_un(k, KX_FLOOR, MUL(k, ADD(k, pf, F(k, 0.5)), V(k, inv)));
  kx_id ow = SUB(k, pf, MUL(k, ohf, V(k, wof)));
  for (int64_t j = 0; checked && j < cv->kw; j++) {
    if (!rows && d->colmask >= 0) { /* from the table: one load per tap column */
      cok[j] = k_load(k, d->colmask, ADD(k, I(k, j * d->P), V(k, p)));
      continue;
    }
    kx_id iw = ADD(k, MUL(k, ow, F(k, (double)cv->sw)), F(k, (double)(j * cv->dw - cv->pw)));
    cok[j] = k_bin(k, KX_AND, k_bin(k, KX_GE, iw, F(k, 0.0)), k_bin(k, KX_LT, iw, V(k, wf)));
  }
  kx_id xp = MULC(k, V(k, p), cv->sw);
  kx_id *terms = nn_alloc(ar, sizeof(kx_id) * (size_t)(cv->kh * cv->kw + 1));
  int nt = 0;
  terms[nt++] = d->bias;
  for (int64_t i = 0; i < cv->kh; i++) {
    kx_id rok = -1;
    if (rows) {
      kx_id ih = ADD(k, MUL(k, ohf, F(k, (double)cv->sh)), F(k, (double)(i * cv->dh - cv->ph)));
      rok = k_bin(k, KX_AND, k_bin(k, KX_GE, ih, F(k, 0.0)), k_bin(k, KX_LT, ih, V(k, hf)));
    }
    for (int64_t j = 0; j < cv->kw; j++) {
      kx_id xi = ADD(k, ADD(k, V(k, roff[i]), xp), I(k, j * cv->dw));
      kx_id t = MUL(k, V(k, d->wv[i * cv->kw + j]), k_cast(k, NN_DT_F32, k_load(k, d->x, xi)));
      kx_id ok = rok >= 0 && cok[j] >= 0 ? k_bin(k, KX_AND, rok, cok[j]) : cok[j];
      terms[nt++] = ok >= 0 ? k_select(k, ok, t, F(k, 0.0)) : t;
    }
  }
  dw_store(d, tree_sum(k, terms, nt), ADD(k, obase, V(k, p)));
  k_for_end(k);
}

/* The narrow rows' column tests as a table for dw_flat (fixed sizes W,
 * wout and P output positions): for every tap column j and position p,
 * whether the tap's input column (p % wout)*sw - pw + j*dw lies in [0, W).
 * Sets d->colmask and d->P. */
static void dw_colmask(kl_ctx *c, dwk *d, int64_t W, int64_t wout, int64_t P) {
  const conv *cv = d->cv;
  unsigned char *m = nn_alloc(kl_arena(c), (size_t)(cv->kw * P));
  for (int64_t j = 0; j < cv->kw; j++)
    for (int64_t q = 0; q < P; q++) {
      int64_t iw = q % wout * cv->sw - cv->pw + j * cv->dw;
      m[j * P + q] = iw >= 0 && iw < W;
    }
  d->P = P;
  d->colmask = k_buf(d->k, NN_DT_BOOL, cv->kw * P, false, "colmask");
  kl_bind(c, d->k, d->colmask, kl_const_buf(c, NN_DT_BOOL, m, cv->kw * P));
}

/* The border rows [0, ohlo) and [ohhi, hout), every tap row checked. */
static void dw_border_rows(dwk *d, kx_id ohlo, kx_id ohhi, kx_id owlo, kx_id owhi) {
  kernel *k = d->k;
  const kx_id lo[2] = {I(k, 0), ohhi}, hi[2] = {ohlo, d->sz.hout};
  for (int e = 0; e < 2; e++) {
    int64_t a, b;
    if (is_num(k, lo[e], &a) && is_num(k, hi[e], &b) && a >= b) continue;
    d->oh = k_for_begin(k, lo[e], hi[e], 0);
    dw_rows(d);
    dw_row(d, owlo, owhi, true);
    k_for_end(k);
  }
}

/* Depthwise (groups == cin == cout), up to DW_MAX_TAPS taps: a direct
 * kernel that computes each output element once, as a straight sum over
 * the taps, vectorized along the output:
 *   PARALLEL for nc in [0, N*C): ch = nc % C; w_ij, bias of channel ch
 *     if flat (sh*W == sw*wout, interior not empty; decided at run time
 *     when the sizes are symbolic):
 *       rows narrower than DW_NARROW:
 *         rows narrower than DW_TINY, a plane with planes either side:
 *           dw_flat over the whole plane, rows and columns checked
 *         else: dw_flat over the interior rows [ohlo, ohhi), columns
 *           checked; the left border of row ohlo, the right one of
 *           ohhi - 1; the border rows [0, ohlo) and [ohhi, hout)
 *       wider rows: dw_flat over the interior rows unchecked; for each
 *         interior row its border columns; the border rows
 *     else, for every row oh:
 *       interior rows: VECTOR over the columns [owlo, owhi) unchecked,
 *                      the columns either side checked
 *       border rows:   the same, tap rows checked too
 * [owlo, owhi) and [ohlo, ohhi) are the outputs whose taps all lie inside
 * the input (numbers for static shapes), so the interior has no bounds
 * checks and padding needs no copy. The epilogue (and rounding of a 16-bit
 * result) applies to each sum before its single store. */
static int conv_depthwise(kl_ctx *c, const conv *cv) {
  if (cv->kh * cv->kw > DW_MAX_TAPS) return conv_depthwise_rows(c, cv);
  kernel *k = new_kernel(c, "conv_depthwise", cv->ep);
  nn_arena *ar = kl_arena(c);
  int64_t C = cv->cin, T = cv->kh * cv->kw;
  ir_dim P = DMUL(c, cv->hout, cv->wout);
  ir_dim oelems = DMUL(c, DMULC(c, cv->n, C), P);
  ir_dim xelems = DMUL(c, DMUL(c, DMULC(c, cv->n, C), cv->h), cv->w);
  dwk d = {.k = k, .cv = cv};
  d.out = k_buf(k, cv->dt, kelems(c, oelems), true, "out");
  d.x = k_buf(k, cv->dt, kelems(c, xelems), false, "x");
  int32_t w = k_buf(k, cv->dt, C * T, false, "w");
  kl_bind(c, k, d.out, cv->out);
  kl_bind(c, k, d.x, cv->x);
  kl_bind(c, k, w, cv->wt);
  int32_t bias = -1;
  if (cv->bias >= 0) {
    bias = k_buf(k, cv->dt, C, false, "bias");
    kl_bind(c, k, bias, cv->bias);
  }
  d.acc = k_var(k, NN_DT_F32);
  d.idx = k_var(k, NN_DT_I64);
  /* expressions only: built before any statement */
  d.e = cv->ep ? cv->ep->build(cv->ep->ctx, k, V(k, d.acc), V(k, d.idx)) : V(k, d.acc);
  if (d.e < 0) return -1;
  d.wv = nn_alloc(ar, sizeof(int32_t) * (size_t)T);
  d.rb = nn_alloc(ar, sizeof(int32_t) * (size_t)cv->kh);
  d.rok = nn_alloc(ar, sizeof(int32_t) * (size_t)cv->kh);
  for (int64_t t = 0; t < T; t++) d.wv[t] = k_var(k, NN_DT_F32);
  for (int64_t i = 0; i < cv->kh; i++) {
    d.rb[i] = k_var(k, NN_DT_I64);
    d.rok[i] = k_var(k, NN_DT_BOOL);
  }
  d.dst = k_var(k, NN_DT_I64);
  d.plane = k_var(k, NN_DT_I64);
  d.colmask = -1;
  int32_t nc = k_for_begin(k, I(k, 0), DX(c, k, DMULC(c, cv->n, C)), KS_PARALLEL);
  d.sz = conv_sizes(c, k, cv);
  int32_t ch = let_i64(k, k_bin(k, KX_MOD, V(k, nc), I(k, C)));
  for (int64_t t = 0; t < T; t++)
    k_let(k, d.wv[t], k_cast(k, NN_DT_F32, k_load(k, w, ADD(k, MULC(k, V(k, ch), T), I(k, t)))));
  d.bias = F(k, 0.0);
  if (bias >= 0) {
    int32_t bv = k_var(k, NN_DT_F32);
    k_let(k, bv, k_cast(k, NN_DT_F32, k_load(k, bias, V(k, ch))));
    d.bias = V(k, bv);
  }
  k_let(k, d.plane, MUL(k, V(k, nc), MUL(k, d.sz.h, d.sz.w)));
  d.obase = let_i64(k, MUL(k, V(k, nc), d.sz.P));
  /* the interior: outputs whose taps all lie inside the input */
  kx_id Wd = d.sz.w, Wo = d.sz.wout, Ho = d.sz.hout;
  kx_id owlo = hoist(k, dw_lo(k, cv->pw, cv->sw, Wo));
  kx_id owhi = hoist(k, dw_hi(k, Wd, cv->pw, cv->sw, cv->dw, cv->kw, owlo, Wo));
  kx_id ohlo = hoist(k, dw_lo(k, cv->ph, cv->sh, Ho));
  kx_id ohhi = hoist(k, dw_hi(k, d.sz.h, cv->ph, cv->sh, cv->dh, cv->kh, ohlo, Ho));
  /* the flat form: decided here for static sizes, else at run time */
  int64_t rlo, rhi, clo, chi, wn, won;
  int flat = -1; /* 1: always, 0: never, -1: when the run's sizes allow */
  if (is_num(k, ohlo, &rlo) && is_num(k, ohhi, &rhi) && is_num(k, owlo, &clo) &&
      is_num(k, owhi, &chi) && is_num(k, Wd, &wn) && is_num(k, Wo, &won))
    flat = rlo < rhi && clo < chi && cv->pw < wn && cv->sh * wn == cv->sw * won;
  if (flat < 0) {
    kx_id ok = k_bin(k, KX_EQ, MULC(k, Wd, cv->sh), MULC(k, Wo, cv->sw));
    ok = k_bin(k, KX_AND, ok, k_bin(k, KX_LT, ohlo, ohhi));
    ok = k_bin(k, KX_AND, ok, k_bin(k, KX_LT, owlo, owhi));
    ok = k_bin(k, KX_AND, ok, k_bin(k, KX_LT, I(k, cv->pw), Wd));
    k_if_begin(k, ok);
  }
  if (flat != 0) {
    kx_id p0 = ADD(k, MUL(k, ohlo, Wo), owlo);
    kx_id p1 = ADD(k, MUL(k, SUB(k, ohhi, I(k, 1)), Wo), owhi);
    /* narrow rows: the border columns in the flat loop, checked per lane
     * (but for two positions the flat range leaves out); wide rows: the
     * flat loop unchecked, the border columns fixed row by row after it */
    int64_t wv, pv;
    int narrow = is_num(k, Wo, &wv) && is_num(k, d.sz.P, &pv)
                     ? wv < DW_NARROW && pv < DW_FLAT_MAX
                     : -1;
    if (flat == 1 && narrow == 1) dw_colmask(c, &d, wn, won, pv);
    if (narrow < 0)
      k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_LT, Wo, I(k, DW_NARROW)),
                          k_bin(k, KX_LT, d.sz.P, I(k, DW_FLAT_MAX))));
    if (narrow != 0) {
      /* a tiny plane with planes before and after it: all of it in the
       * flat loop, rows checked per lane too (its taps read at most
       * ph*W + pw before it and one plane after it) */
      kx_id hw = MUL(k, d.sz.h, Wd);
      kx_id ext = ADD(k, MULC(k, SUB(k, d.sz.P, I(k, 1)), cv->sw),
                      ADD(k, MULC(k, Wd, (cv->kh - 1) * cv->dh - cv->ph),
                          I(k, (cv->kw - 1) * cv->dw - cv->pw)));
      kx_id inner = k_bin(k, KX_AND, k_bin(k, KX_GE, V(k, nc), I(k, 1)),
                          k_bin(k, KX_LT, ADD(k, V(k, nc), I(k, 1)), DX(c, k, DMULC(c, cv->n, C))));
      inner = k_bin(k, KX_AND, inner,
                    k_bin(k, KX_LE, ADD(k, MULC(k, Wd, cv->ph), I(k, cv->pw)), hw));
      inner = k_bin(k, KX_AND, inner, k_bin(k, KX_LT, ext, MULC(k, hw, 2)));
      inner = k_bin(k, KX_AND, inner, k_bin(k, KX_LT, Wo, I(k, DW_TINY)));
      k_if_begin(k, inner);
      dw_flat(&d, V(k, d.obase), I(k, 0), d.sz.P, true, true);
      k_else(k);
      dw_flat(&d, V(k, d.obase), p0, p1, true, false);
      const kx_id edge[2] = {ohlo, SUB(k, ohhi, I(k, 1))};
      for (int e = 0; e < 2; e++) {
        d.oh = let_i64(k, edge[e]);
        dw_rows(&d);
        if (e == 0)
          dw_loop(&d, I(k, 0), owlo, false, true);
        else
          dw_loop(&d, owhi, Wo, false, true);
      }
      dw_border_rows(&d, ohlo, ohhi, owlo, owhi);
      k_if_end(k);
    }
    if (narrow < 0) k_else(k);
    if (narrow != 1) {
      dw_flat(&d, V(k, d.obase), p0, p1, false, false);
      d.oh = k_for_begin(k, ohlo, ohhi, 0);
      dw_rows(&d);
      dw_loop(&d, I(k, 0), owlo, false, true);
      dw_loop(&d, owhi, Wo, false, true);
      k_for_end(k);
      dw_border_rows(&d, ohlo, ohhi, owlo, owhi);
    }
    if (narrow < 0) k_if_end(k);
  }
  if (flat < 0) k_else(k);
  if (flat != 1) {
    d.oh = k_for_begin(k, I(k, 0), Ho, 0);
    dw_rows(&d);
    int64_t a, b, h;
    bool all_rows = is_num(k, ohlo, &a) && is_num(k, ohhi, &b) && is_num(k, Ho, &h) && a == 0 &&
                    b == h;
    if (!all_rows)
      k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_GE, V(k, d.oh), ohlo),
                          k_bin(k, KX_LT, V(k, d.oh), ohhi)));
    dw_row(&d, owlo, owhi, false);
    if (!all_rows) {
      k_else(k);
      dw_row(&d, owlo, owhi, true);
      k_if_end(k);
    }
    k_for_end(k);
  }
  if (flat < 0) k_if_end(k);
  k_for_end(k); /* nc */
  return 0;
}

/* One row r of an im2col (tap (i, j) of channel plane `plane`; its valid
 * output columns [lo, hi)) when the convolution has stride 1 and keeps
 * the image's size: the output position p = oh*W + ow then reads input
 * position p + (i*dh - ph)*W + (j*dw - pw), so the tap's valid rows are
 * one contiguous run of the plane, copied in one VECTOR loop; the columns
 * of that run outside [lo, hi) (they read the neighbouring row's ends)
 * are zeroed after it, and so is everything before and after the run.
 * Small images (7x7, 14x14) thus cost one long copy per tap instead of a
 * short loop per output row. Every load stays inside the plane (the run
 * starts at a valid column of a valid row and ends at one). */
static void conv_im2col_flat(kernel *k, const conv *cv, const convx *sz, int32_t o, int32_t x,
                             int32_t r, int32_t plane, int32_t i, int32_t j, int32_t lo,
                             int32_t hi) {
  int32_t rlo = k_var(k, NN_DT_I64), rhi = k_var(k, NN_DT_I64), dst = k_var(k, NN_DT_I64);
  int32_t ps = k_var(k, NN_DT_I64), pe = k_var(k, NN_DT_I64), src = k_var(k, NN_DT_I64);
  /* the tap row ih = oh + dr is inside for oh in [rlo, rhi) */
  kx_id dr = ADD(k, MULC(k, V(k, i), cv->dh), I(k, -cv->ph));
  k_let(k, rlo, MINX(k, MAXX(k, SUB(k, I(k, 0), dr), I(k, 0)), sz->h));
  k_let(k, rhi, MAXX(k, MINX(k, SUB(k, sz->h, dr), sz->h), V(k, rlo)));
  k_let(k, dst, MUL(k, V(k, r), sz->P));
  k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_LT, V(k, lo), V(k, hi)),
                      k_bin(k, KX_LT, V(k, rlo), V(k, rhi))));
  k_let(k, ps, ADD(k, MUL(k, V(k, rlo), sz->w), V(k, lo)));
  k_let(k, pe, ADD(k, MUL(k, SUB(k, V(k, rhi), I(k, 1)), sz->w), V(k, hi)));
  /* p reads x[plane, p / W + dr, p % W + dc], dc = j*dw - pw */
  k_let(k, src,
        ADD(k, MUL(k, ADD(k, MUL(k, V(k, plane), sz->h), dr), sz->w),
            ADD(k, MULC(k, V(k, j), cv->dw), I(k, -cv->pw))));
  store_zeros(k, o, cv->dt, dst, I(k, 0), V(k, ps));
  int32_t p = k_for_begin(k, V(k, ps), V(k, pe), KS_VECTOR);
  k_store(k, o, ADD(k, V(k, dst), V(k, p)), k_load(k, x, ADD(k, V(k, src), V(k, p))));
  k_for_end(k);
  store_zeros(k, o, cv->dt, dst, V(k, pe), sz->P);
  /* the run's columns outside [lo, hi): scalar loops of a few elements */
  int32_t oh = k_for_begin(k, V(k, rlo), V(k, rhi), 0);
  kx_id row = ADD(k, V(k, dst), MUL(k, V(k, oh), sz->w));
  int32_t c0 = k_for_begin(k, I(k, 0), V(k, lo), 0);
  k_store(k, o, ADD(k, row, V(k, c0)), k_const_f(k, cv->dt, 0.0));
  k_for_end(k);
  int32_t c1 = k_for_begin(k, V(k, hi), sz->w, 0);
  k_store(k, o, ADD(k, row, V(k, c1)), k_const_f(k, cv->dt, 0.0));
  k_for_end(k);
  k_for_end(k); /* oh */
  k_else(k);
  store_zeros(k, o, cv->dt, dst, I(k, 0), sz->P);
  k_if_end(k);
}

/* im2col of images [n0, n0+nimg) into col [nimg*G, Kc, P] where
 * Kc = Cg*kh*kw, P = hout*wout; row r of col (all groups of all images in
 * order) is tap (ci, i, j) of channel plane n0*Cin + (r / Kc)*Cg + ci:
 *   PARALLEL for r in [0, nimg*G*Kc):
 *     for oh: ih = oh*sh - ph + i*dh
 *       if 0 <= ih < H: zeros, VECTOR copy x[plane, ih, ow*sw - pw + j*dw]
 *                       over the valid range, zeros
 *       else: zeros */
static void conv_im2col(kl_ctx *c, const conv *cv, be_bufid col, int64_t n0, ir_dim nimg) {
  kernel *k = kl_kernel(c, "im2col");
  k->im2col_b = cv->dt == NN_DT_F32; /* conv_gemm describes B (gim) */
  int64_t G = cv->groups, Cg = cv->cin / G, Kc = Cg * cv->kh * cv->kw;
  ir_dim P = DMUL(c, cv->hout, cv->wout);
  ir_dim rows = DMULC(c, nimg, G * Kc);
  int32_t o = k_buf(k, cv->dt, kelems(c, DMUL(c, rows, P)), true, "col");
  int32_t x = k_buf(k, cv->dt, kelems(c, DMUL(c, DMUL(c, DMULC(c, cv->n, cv->cin), cv->h), cv->w)),
                    false, "x");
  kl_bind(c, k, o, col);
  kl_bind(c, k, x, cv->x);
  int32_t ih = k_var(k, NN_DT_I64), dst = k_var(k, NN_DT_I64), src = k_var(k, NN_DT_I64);
  int32_t lo = k_var(k, NN_DT_I64), hi = k_var(k, NN_DT_I64);
  int32_t r = k_for_begin(k, I(k, 0), DX(c, k, rows), KS_PARALLEL);
  convx sz = conv_sizes(c, k, cv);
  kx_id rr = k_bin(k, KX_MOD, V(k, r), I(k, Kc));
  int32_t plane = let_i64(k, ADD(k, I(k, n0 * cv->cin),
                                 ADD(k, MULC(k, k_bin(k, KX_DIV, V(k, r), I(k, Kc)), Cg),
                                     k_bin(k, KX_DIV, rr, I(k, cv->kh * cv->kw)))));
  int32_t i = let_i64(k, k_bin(k, KX_MOD, k_bin(k, KX_DIV, V(k, r), I(k, cv->kw)), I(k, cv->kh)));
  int32_t j = let_i64(k, k_bin(k, KX_MOD, V(k, r), I(k, cv->kw)));
  tap_range(k, cv, &sz, j, lo, hi);
  if (cv->sh == 1 && cv->sw == 1 && cv->hout == cv->h && cv->wout == cv->w) {
    conv_im2col_flat(k, cv, &sz, o, x, r, plane, i, j, lo, hi);
    k_for_end(k); /* r */
    return;
  }
  int32_t oh = k_for_begin(k, I(k, 0), sz.hout, 0);
  k_let(k, ih, ADD(k, MULC(k, V(k, oh), cv->sh), ADD(k, I(k, -cv->ph), MULC(k, V(k, i), cv->dh))));
  k_let(k, dst, ADD(k, MUL(k, V(k, r), sz.P), MUL(k, V(k, oh), sz.wout)));
  k_if_begin(k, row_in_range(k, &sz, ih));
  k_let(k, src,
        ADD(k, MUL(k, ADD(k, MUL(k, V(k, plane), sz.h), V(k, ih)), sz.w),
            ADD(k, I(k, -cv->pw), MULC(k, V(k, j), cv->dw))));
  store_zeros(k, o, cv->dt, dst, I(k, 0), V(k, lo));
  int32_t ow = k_for_begin(k, V(k, lo), V(k, hi), KS_VECTOR);
  k_store(k, o, ADD(k, V(k, dst), V(k, ow)),
          k_load(k, x, ADD(k, V(k, src), MULC(k, V(k, ow), cv->sw))));
  k_for_end(k);
  store_zeros(k, o, cv->dt, dst, V(k, hi), sz.wout);
  k_else(k);
  store_zeros(k, o, cv->dt, dst, I(k, 0), sz.wout);
  k_if_end(k);
  k_for_end(k); /* oh */
  k_for_end(k); /* r */
}

/* The weight of a GEMM convolution: an f32 weight known at compile time
 * is packed, per group, in panels of PACK_A rows [G][ceil(Mg/PACK_A)][Kc]
 * [PACK_A] (zero rows past Mg), which replaces the plain weight in the
 * blob; anything else is used as it is. Sets cv->wt and cv->a_panel. */
static void pack_conv_weight(kl_ctx *c, conv *cv, ir_value w) {
  const unsigned char *wd = cv->dt == NN_DT_F32 ? kl_weight_data(c, w) : NULL;
  int64_t G = cv->groups, Mg = cv->cout / G;
  int64_t Kc = cv->cin / G * cv->kh * cv->kw;
  cv->a_panel = 0;
  if (!wd || Mg <= 1) {
    cv->wt = kl_value_buf(c, w);
    return;
  }
  int64_t np = (Mg + PACK_A - 1) / PACK_A, gp = np * PACK_A * Kc;
  float *t = nn_alloc(kl_arena(c), sizeof(float) * (size_t)(G * gp + 1));
  memset(t, 0, sizeof(float) * (size_t)(G * gp));
  for (int64_t g = 0; g < G; g++)
    for (int64_t m = 0; m < Mg; m++)
      for (int64_t kk = 0; kk < Kc; kk++)
        memcpy(&t[g * gp + (m / PACK_A) * PACK_A * Kc + kk * PACK_A + m % PACK_A],
               wd + (size_t)((g * Mg + m) * Kc + kk) * sizeof(float), sizeof(float));
  cv->wt = kl_const_buf(c, NN_DT_F32, t, G * gp);
  cv->a_panel = PACK_A;
}

/* Largest im2col buffer (elements); more images are done in chunks. */
#define IM2COL_MAX_ELEMS ((int64_t)16 << 20)

/* GEMMs out[n, g*Mg:(g+1)*Mg, :] = W_g [Mg, Kc] @ B_(n,g) [Kc, P] (+ bias)
 * for images [n0, n0+nimg) and every group; B is the im2col buffer
 * (b_is_col) or the input itself (1x1 convolutions). */
static int conv_gemm(const lctx *l, const conv *cv, be_bufid bbuf, ir_dim belems, bool b_is_col,
                     int64_t n0, ir_dim nimg) {
  kl_ctx *c = l->c;
  int64_t G = cv->groups, Cg = cv->cin / G, Mg = cv->cout / G;
  int64_t Kc = Cg * cv->kh * cv->kw;
  ir_dim P = DMUL(c, cv->hout, cv->wout);
  gspec s = gspec_new(l);
  s.ep = cv->ep;
  s.dt = cv->dt;
  s.m = kl_d(c, Mg);
  s.n = P;
  s.k = kl_d(c, Kc);
  s.a_rs = kl_d(c, Kc);
  s.a_cs = kl_d(c, 1);
  s.a_panel = cv->a_panel;
  s.b_rs = P;
  s.b_cs = kl_d(c, 1);
  s.ldc = P;
  s.abuf = cv->wt;
  s.aelems = kl_d(c, cv->cout * Kc);
  s.bbuf = bbuf;
  s.belems = belems;
  s.cbuf = cv->out;
  s.celems = DMUL(c, DMULC(c, cv->n, cv->cout), P);
  s.nbatch = 2;
  s.bdims[0] = nimg;
  s.bdims[1] = kl_d(c, G);
  s.astr[0] = kl_d(c, 0);
  s.astr[1] = kl_d(c, Mg * Kc);
  if (cv->a_panel > 0) { /* each group's rows in whole panels */
    int64_t gp = (Mg + cv->a_panel - 1) / cv->a_panel * cv->a_panel * Kc;
    s.aelems = kl_d(c, G * gp);
    s.astr[1] = kl_d(c, gp);
  }
  s.bstr[0] = DMULC(c, P, G * Kc);
  s.bstr[1] = DMULC(c, P, Kc); /* == Cin*P, Cg*P for 1x1 */
  s.b0 = b_is_col ? kl_d(c, 0) : DMULC(c, P, n0 * cv->cin);
  s.cstr[0] = DMULC(c, P, cv->cout);
  s.cstr[1] = DMULC(c, P, Mg);
  s.c0 = DMULC(c, P, n0 * cv->cout);
  if (cv->bias >= 0) {
    s.biasbuf = cv->bias;
    s.biaselems = kl_d(c, cv->cout);
    s.biasstr[0] = kl_d(c, 0);
    s.biasstr[1] = kl_d(c, Mg);
    s.bias_rs = kl_d(c, 1);
    s.bias_cs = kl_d(c, 0);
  }
  gim im;
  if (b_is_col && cv->dt == NN_DT_F32) { /* B is also the image's im2col */
    ir_dim plane = DMUL(c, cv->h, cv->w);
    im = (gim){.x = cv->x,
               .xelems = DMUL(c, DMULC(c, cv->n, cv->cin), plane),
               .x0 = DMULC(c, plane, n0 * cv->cin),
               .h = cv->h,
               .w = cv->w,
               .wout = cv->wout,
               .kh = cv->kh,
               .kw = cv->kw,
               .sh = cv->sh,
               .sw = cv->sw,
               .ph = cv->ph,
               .pw = cv->pw,
               .dh = cv->dh,
               .dw = cv->dw};
    im.xstr[0] = DMULC(c, plane, cv->cin);
    im.xstr[1] = DMULC(c, plane, Cg);
    s.im = &im;
  }
  if (!spec_dims_ok(l, &s)) return -1;
  return emit_gemm_kernel(c, "conv_gemm", &s);
}

/* ---- Winograd F(2x2, 3x3) -------------------------------------------------
 * A 3x3 stride-1 convolution computes each 2x2 block of output (a "tile")
 * from the 4x4 block of input under it with 16 products per input channel
 * instead of 36:
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * (a correlation, as PyTorch's convolution is). With T tiles in all (every
 * image's), the sum over input channels is 16 GEMMs, one per element xi of
 * the 4x4 transformed tile: M_xi [Cout, T] = U_xi [Cout, Cin] @ V_xi [Cin,
 * T], U = G g G^T (transformed and packed at compile time), V = B^T d B.
 * Three kernels: the input transform (V), the GEMMs, and the output
 * transform (with the bias and the epilogue). 2.25x fewer multiplications
 * for 4 (input) + 4 (output) floats of traffic per output position and
 * channel; the transforms only add, subtract and halve, so results stay
 * within a few ulps of the direct sum. */

/* Input channels below which the GEMM path is kept: the 16 GEMMs then
 * have K = Cin, too short for the microkernel to pay for loading and
 * storing its tile of C. Measured at one thread (GEMM path / Winograd):
 * 8 -> 64 channels at 28x28 0.035 / 0.048 ms, 3 -> 64 at 112x112 0.21 /
 * 0.30 ms; 16 -> 16 at 56x56 0.086 / 0.058 ms, 64 -> 8 at 28x28 0.082 /
 * 0.051 ms, 64 -> 64 at 56x56 0.99 / 0.55 ms. */
#define WINO_MIN_CIN 16

/* Whether convolution cv is lowered by Winograd's F(2x2, 3x3). */
static bool wino_fits(kl_ctx *c, const conv *cv, int64_t *n, int64_t *h, int64_t *w, int64_t *ho,
                      int64_t *wo) {
  return kl_target(c) == BE_TARGET_CPU && cv->dt == NN_DT_F32 && cv->groups == 1 && cv->kh == 3 &&
         cv->kw == 3 && cv->sh == 1 && cv->sw == 1 && cv->dh == 1 && cv->dw == 1 && cv->ph <= 2 &&
         cv->pw <= 2 && cv->cin >= WINO_MIN_CIN && kl_dim_const(c, cv->n, n) &&
         kl_dim_const(c, cv->h, h) && kl_dim_const(c, cv->w, w) && kl_dim_const(c, cv->hout, ho) &&
         kl_dim_const(c, cv->wout, wo) && *ho >= 2 && *wo >= 2;
}

/* U = G g G^T of every (output, input) channel pair, per xi in panels of
 * PACK_A output channels: U_xi[m, ci] at xi*gp + (m / PACK_A)*PACK_A*Cin +
 * ci*PACK_A + m % PACK_A, gp = ceil(Cout / PACK_A)*PACK_A*Cin. */
static be_bufid wino_weight(kl_ctx *c, const conv *cv, const unsigned char *g, int64_t *gp) {
  static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  int64_t M = cv->cout, C = cv->cin;
  *gp = (M + PACK_A - 1) / PACK_A * PACK_A * C;
  float *u = nn_alloc(kl_arena(c), sizeof(float) * (size_t)(16 * *gp));
  memset(u, 0, sizeof(float) * (size_t)(16 * *gp));
  for (int64_t m = 0; m < M; m++)
    for (int64_t ci = 0; ci < C; ci++) {
      float f[9];
      memcpy(f, g + (size_t)((m * C + ci) * 9) * sizeof(float), sizeof f);
      double t[4][3]; /* G g */
      for (int a = 0; a < 4; a++)
        for (int v = 0; v < 3; v++)
          t[a][v] = G[a][0] * f[v] + G[a][1] * f[3 + v] + G[a][2] * f[6 + v];
      for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
          double s = t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2];
          u[(a * 4 + b) * *gp + m / PACK_A * PACK_A * C + ci * PACK_A + m % PACK_A] = (float)s;
        }
    }
  return kl_const_buf(c, NN_DT_F32, u, 16 * *gp);
}

/* The tile grid: tiles cover the output in 2x2 blocks (the last row or
 * column of blocks half outside when the size is odd); tile (ty, tx) of
 * image n is number t = (n*th + ty)*tw + tx of T. */
typedef struct wgrid {
  int64_t N, n0, nimg;                   /* images in all; the chunk done: [n0, n0 + nimg) */
  int64_t C, M, H, W, HO, WO, th, tw, T; /* T: the chunk's tiles */
  int64_t vs, ms;                        /* element stride between the xi of V, of M */
} wgrid;

/* The stride between the 16 matrices of V (or M) of n elements each: n
 * rounded up to an odd number of cache lines. The transforms read or write
 * all 16 at once; at a multiple of 4 KiB apart (64 channels of 28x28
 * tiles) they would share one set of the L1 cache and evict each other. */
static int64_t wino_stride(int64_t n) {
  int64_t lines = (n + 15) / 16;
  return (lines | 1) * 16;
}

/* The input transform's loops over the tiles tx in [lo, hi) of tile row ty
 * (rb[i]: x index of the block's row i at column 0, rok[i]: that row is
 * inside the image; `rows`/`cols`: rows/columns may be outside, read as 0),
 * one per row a of V = B^T d B, which takes two rows of d B:
 *   VECTOR for tx: v[4a + b, ci, t0 + tx] = (B^T d B)[a, b], b = 0..3
 * Four loops of four stores each, not one of sixteen: with that many
 * stores in one loop the vectorizer no longer pairs the stride-2 loads
 * of a row into wide loads and shuffles, and gathers them instead. */
static void wino_in_loop(kernel *k, const wgrid *gr, const conv *cv, int32_t x, int32_t v,
                         const int32_t *rb, const int32_t *rok, int32_t plane, int32_t vbase,
                         int64_t lo, int64_t hi, bool rows, bool cols) {
  /* row a of B^T d B is (d B)[p] + (d B)[q] or (d B)[p] - (d B)[q]: {p, q, sign} */
  static const int use[4][3] = {{0, 2, -1}, {1, 2, 1}, {2, 1, -1}, {1, 3, -1}};
  if (lo >= hi) return;
  for (int a = 0; a < 4; a++) {
    int32_t tx = k_for_begin(k, I(k, lo), I(k, hi), KS_VECTOR);
    kx_id t[2][4];
    for (int r = 0; r < 2; r++) {
      int i = use[a][r];
      kx_id d[4];
      for (int j = 0; j < 4; j++) {
        kx_id iw = ADD(k, MULC(k, V(k, tx), 2), I(k, j - cv->pw));
        kx_id ok = rows ? V(k, rok[i]) : -1;
        if (cols) {
          kx_id cok = k_bin(k, KX_AND, k_bin(k, KX_GE, iw, I(k, 0)),
                            k_bin(k, KX_LT, iw, I(k, gr->W)));
          ok = ok >= 0 ? k_bin(k, KX_AND, ok, cok) : cok;
        }
        kx_id xi = ADD(k, V(k, rb[i]), iw); /* rb[i]: a row inside, always */
        if (cols) xi = k_select(k, ok, xi, V(k, plane));
        kx_id e = k_load(k, x, xi);
        d[j] = ok >= 0 ? k_select(k, ok, e, F(k, 0.0)) : e;
      }
      /* the row times B */
      t[r][0] = SUB(k, d[0], d[2]);
      t[r][1] = ADD(k, d[1], d[2]);
      t[r][2] = SUB(k, d[2], d[1]);
      t[r][3] = SUB(k, d[1], d[3]);
    }
    for (int b = 0; b < 4; b++) {
      kx_id val = use[a][2] < 0 ? SUB(k, t[0][b], t[1][b]) : ADD(k, t[0][b], t[1][b]);
      k_store(k, v, ADD(k, ADD(k, V(k, vbase), I(k, (4 * a + b) * gr->vs)), V(k, tx)), val);
    }
    k_for_end(k);
  }
}

/* V = B^T d B for every input channel plane and tile:
 *   PARALLEL for nc in [0, N*C): for ty: the block's rows, checked in
 *   the border tile rows; tiles whose columns all lie inside unchecked,
 *   the ones either side checked. */
static void wino_input(kl_ctx *c, const conv *cv, const wgrid *gr, be_bufid vbuf) {
  kernel *k = kl_kernel(c, "winograd_in");
  int32_t x = k_buf(k, NN_DT_F32, gr->N * gr->C * gr->H * gr->W, false, "x");
  int32_t v = k_buf(k, NN_DT_F32, 16 * gr->vs, true, "v");
  kl_bind(c, k, x, cv->x);
  kl_bind(c, k, v, vbuf);
  int32_t rb[4], rok[4];
  for (int i = 0; i < 4; i++) {
    rb[i] = k_var(k, NN_DT_I64);
    rok[i] = k_var(k, NN_DT_BOOL);
  }
  /* tiles whose 4 rows (columns) all lie inside: 2t - p >= 0, 2t - p + 3 < H */
  int64_t tylo = (cv->ph + 1) / 2, tyhi = (gr->H - 4 + cv->ph) / 2 + 1;
  int64_t txlo = (cv->pw + 1) / 2, txhi = (gr->W - 4 + cv->pw) / 2 + 1;
  if (tyhi > gr->th) tyhi = gr->th;
  if (txhi > gr->tw) txhi = gr->tw;
  if (tyhi < tylo) tyhi = tylo;
  if (txhi < txlo) txhi = txlo;
  int32_t nc = k_for_begin(k, I(k, 0), I(k, gr->nimg * gr->C), KS_PARALLEL);
  int32_t plane = let_i64(k, MULC(k, ADD(k, V(k, nc), I(k, gr->n0 * gr->C)), gr->H * gr->W));
  kx_id n = k_bin(k, KX_DIV, V(k, nc), I(k, gr->C)), ci = k_bin(k, KX_MOD, V(k, nc), I(k, gr->C));
  int32_t ty = k_for_begin(k, I(k, 0), I(k, gr->th), 0);
  for (int i = 0; i < 4; i++) {
    kx_id ih = ADD(k, MULC(k, V(k, ty), 2), I(k, i - cv->ph));
    k_let(k, rok[i],
          k_bin(k, KX_AND, k_bin(k, KX_GE, ih, I(k, 0)), k_bin(k, KX_LT, ih, I(k, gr->H))));
    k_let(k, rb[i], ADD(k, V(k, plane), k_select(k, V(k, rok[i]), MULC(k, ih, gr->W), I(k, 0))));
  }
  /* v index of (xi = 0, ci, tile (n, ty, 0)) */
  int32_t vbase = let_i64(k, ADD(k, MULC(k, ci, gr->T),
                                 MULC(k, ADD(k, MULC(k, n, gr->th), V(k, ty)), gr->tw)));
  kx_id inner = k_bin(k, KX_AND, k_bin(k, KX_GE, V(k, ty), I(k, tylo)),
                      k_bin(k, KX_LT, V(k, ty), I(k, tyhi)));
  for (int e = 0; e < 2; e++) { /* interior tile rows, then the border ones */
    if (e == 0)
      k_if_begin(k, inner);
    else
      k_else(k);
    wino_in_loop(k, gr, cv, x, v, rb, rok, plane, vbase, 0, txlo, e, true);
    wino_in_loop(k, gr, cv, x, v, rb, rok, plane, vbase, txlo, txhi, e, false);
    wino_in_loop(k, gr, cv, x, v, rb, rok, plane, vbase, txhi, gr->tw, e, true);
  }
  k_if_end(k);
  k_for_end(k); /* ty */
  k_for_end(k); /* nc */
}

/* The output transform's loop over tiles tx in [lo, hi) of tile row ty,
 * storing the first ni rows and nj columns of each 2x2 block:
 *   VECTOR for tx: y = A^T m A + bias; out[...] = ep(y) */
static void wino_out_loop(kernel *k, const wgrid *gr, int32_t mm, int32_t out, kx_id bias,
                          int32_t mbase, int32_t obase, int32_t acc, int32_t idx, kx_id e,
                          int64_t lo, int64_t hi, int ni, int nj) {
  if (lo >= hi) return;
  int32_t tx = k_for_begin(k, I(k, lo), I(k, hi), KS_VECTOR);
  kx_id m[16], s[8];
  for (int xi = 0; xi < 16; xi++)
    m[xi] = k_load(k, mm, ADD(k, ADD(k, V(k, mbase), I(k, xi * gr->ms)), V(k, tx)));
  for (int a = 0; a < 4; a++) { /* rows: m A */
    s[2 * a] = ADD(k, ADD(k, m[4 * a], m[4 * a + 1]), m[4 * a + 2]);
    s[2 * a + 1] = SUB(k, SUB(k, m[4 * a + 1], m[4 * a + 2]), m[4 * a + 3]);
  }
  for (int i = 0; i < ni; i++)
    for (int j = 0; j < nj; j++) { /* columns: A^T (m A) */
      kx_id y = i == 0 ? ADD(k, ADD(k, s[j], s[2 + j]), s[4 + j])
                       : SUB(k, SUB(k, s[2 + j], s[4 + j]), s[6 + j]);
      k_let(k, idx, ADD(k, ADD(k, V(k, obase), I(k, i * gr->WO + j)), MULC(k, V(k, tx), 2)));
      k_let(k, acc, bias >= 0 ? ADD(k, y, bias) : y);
      k_store(k, out, V(k, idx), e);
    }
  k_for_end(k);
}

/* Y = A^T M A + bias through the epilogue, for every output channel plane:
 *   PARALLEL for nm in [0, N*M): for each row of tiles: the full tiles,
 *   then (odd width) the last tile's first column; (odd height) the last
 *   row of tiles' first rows. */
static int wino_output(kl_ctx *c, const conv *cv, const wgrid *gr, be_bufid mbuf) {
  kernel *k = new_kernel(c, "winograd_out", cv->ep);
  int32_t mm = k_buf(k, NN_DT_F32, 16 * gr->ms, false, "m");
  int32_t out = k_buf(k, NN_DT_F32, gr->N * gr->M * gr->HO * gr->WO, true, "out");
  kl_bind(c, k, mm, mbuf);
  kl_bind(c, k, out, cv->out);
  int32_t bias = -1;
  if (cv->bias >= 0) {
    bias = k_buf(k, NN_DT_F32, gr->M, false, "bias");
    kl_bind(c, k, bias, cv->bias);
  }
  int32_t acc = k_var(k, NN_DT_F32), idx = k_var(k, NN_DT_I64);
  /* expressions only: built before any statement */
  kx_id e = cv->ep ? cv->ep->build(cv->ep->ctx, k, V(k, acc), V(k, idx)) : V(k, acc);
  if (e < 0) return -1;
  int32_t nm = k_for_begin(k, I(k, 0), I(k, gr->nimg * gr->M), KS_PARALLEL);
  kx_id n = k_bin(k, KX_DIV, V(k, nm), I(k, gr->M)), m = k_bin(k, KX_MOD, V(k, nm), I(k, gr->M));
  kx_id bv = -1;
  if (bias >= 0) {
    int32_t bf = k_var(k, NN_DT_F32);
    k_let(k, bf, k_load(k, bias, m));
    bv = V(k, bf);
  }
  int32_t mbase = k_var(k, NN_DT_I64), obase = k_var(k, NN_DT_I64);
  int64_t fy = gr->HO / 2, fx = gr->WO / 2; /* full tile rows, columns */
  for (int part = 0; part < 2; part++) {
    int ni = part == 0 ? 2 : 1;
    if (part == 1 && gr->HO % 2 == 0) break;
    int32_t ty = k_for_begin(k, I(k, part == 0 ? 0 : fy), I(k, part == 0 ? fy : fy + 1), 0);
    k_let(k, mbase,
          ADD(k, MULC(k, m, gr->T), MULC(k, ADD(k, MULC(k, n, gr->th), V(k, ty)), gr->tw)));
    k_let(k, obase,
          MULC(k,
               ADD(k, MULC(k, ADD(k, V(k, nm), I(k, gr->n0 * gr->M)), gr->HO),
                   MULC(k, V(k, ty), 2)),
               gr->WO));
    wino_out_loop(k, gr, mm, out, bv, mbase, obase, acc, idx, e, 0, fx, ni, 2);
    if (gr->WO % 2) wino_out_loop(k, gr, mm, out, bv, mbase, obase, acc, idx, e, fx, fx + 1, ni, 1);
    k_for_end(k);
  }
  k_for_end(k); /* nm */
  return 0;
}

/* Largest V or M of one chunk of images (elements); more images are done
 * in chunks, like im2col's. */
#define WINO_MAX_ELEMS ((int64_t)16 << 20)

/* Lowers cv (wino_fits) with weight data g [Cout, Cin, 3, 3] (f32). */
static int conv_winograd(const lctx *l, const conv *cv, const unsigned char *g, int64_t N,
                         int64_t H, int64_t W, int64_t HO, int64_t WO) {
  kl_ctx *c = l->c;
  wgrid gr = {.N = N, .C = cv->cin, .M = cv->cout, .H = H, .W = W, .HO = HO, .WO = WO};
  gr.th = (HO + 1) / 2;
  gr.tw = (WO + 1) / 2;
  int64_t per = 16 * (gr.C > gr.M ? gr.C : gr.M) * gr.th * gr.tw; /* per image */
  int64_t chunk = WINO_MAX_ELEMS / per;
  if (chunk < 1) chunk = 1;
  if (chunk > N) chunk = N;
  gr.T = chunk * gr.th * gr.tw;
  gr.vs = wino_stride(gr.C * gr.T);
  gr.ms = wino_stride(gr.M * gr.T);
  int64_t gp;
  be_bufid u = wino_weight(c, cv, g, &gp);
  be_bufid vbuf = kl_scratch(c, NN_DT_F32, 16 * gr.vs);
  be_bufid mbuf = kl_scratch(c, NN_DT_F32, 16 * gr.ms);
  for (gr.n0 = 0; gr.n0 < N; gr.n0 += chunk) {
    gr.nimg = N - gr.n0 < chunk ? N - gr.n0 : chunk;
    wino_input(c, cv, &gr, vbuf);
    gspec s = gspec_new(l);
    s.dt = NN_DT_F32;
    s.ep = NULL; /* the bias and the epilogue come with the output transform */
    s.m = kl_d(c, gr.M);
    s.n = kl_d(c, gr.nimg * gr.th * gr.tw);
    s.k = kl_d(c, gr.C);
    s.a_rs = kl_d(c, gr.C);
    s.a_cs = kl_d(c, 1);
    s.a_panel = PACK_A;
    s.b_rs = kl_d(c, gr.T);
    s.b_cs = kl_d(c, 1);
    s.ldc = kl_d(c, gr.T);
    s.abuf = u;
    s.aelems = kl_d(c, 16 * gp);
    s.bbuf = vbuf;
    s.belems = kl_d(c, 16 * gr.vs);
    s.cbuf = mbuf;
    s.celems = kl_d(c, 16 * gr.ms);
    s.nbatch = 1;
    s.bdims[0] = kl_d(c, 16);
    s.astr[0] = kl_d(c, gp);
    s.bstr[0] = kl_d(c, gr.vs);
    s.cstr[0] = kl_d(c, gr.ms);
    if (emit_gemm_kernel(c, "winograd_gemm", &s) < 0 || wino_output(c, cv, &gr, mbuf) < 0)
      return -1;
  }
  return 0;
}

static int lower_conv(const lctx *l) {
  kl_ctx *c = l->c;
  ir_node *n = l->node;
  ir_dim xd[16], wd[16], bd[16], od[16];
  int xr = tensor_shape(l, n->in[0], xd), wr = tensor_shape(l, n->in[1], wd);
  int orank = tensor_shape(l, n->out[0], od);
  if (xr < 0 || wr < 0 || orank < 0) return -1;
  const ir_const *tr;
  if (!ir_value_const(l->g, n->in[6], &tr) || tr->kind != IR_C_BOOL)
    return shape_error(l, "'transposed' must be a constant bool");
  if (tr->i) {
    nn_error(kl_diag(c), l->loc, "transposed convolution is not supported by the CPU backend yet");
    return -1;
  }
  if (xr != wr || (xr != 3 && xr != 4) || orank != xr) {
    nn_error(kl_diag(c), l->loc,
             "%d-d convolution is not supported by the CPU backend yet (1-d "
             "and 2-d are)",
             xr - 2);
    return -1;
  }
  int nsp = xr - 2;
  int64_t st[2], pad[2], dil[2];
  double groups;
  if (int_list_arg(l, n->in[3], nsp, "stride", st) < 0 ||
      int_list_arg(l, n->in[4], nsp, "padding", pad) < 0 ||
      int_list_arg(l, n->in[5], nsp, "dilation", dil) < 0 || scalar_arg(l, n->in[8], &groups) < 0)
    return -1;
  /* channels and the kernel's size are numbers (the weight's shape) */
  int64_t wnum[4];
  for (int i = 0; i < wr; i++)
    if (!kl_dim_const(c, wd[i], &wnum[i])) return sym_error(l, wd[i]);
  int64_t cin;
  if (!kl_dim_const(c, xd[1], &cin)) return sym_error(l, xd[1]);
  conv cv = {.n = xd[0], .cin = cin, .cout = wnum[0], .groups = (int64_t)groups};
  if (nsp == 1) {
    cv.h = kl_d(c, 1);
    cv.w = xd[2];
    cv.kh = 1;
    cv.kw = wnum[2];
    cv.hout = kl_d(c, 1);
    cv.wout = od[2];
    cv.sh = 1;
    cv.ph = 0;
    cv.dh = 1;
    cv.sw = st[0];
    cv.pw = pad[0];
    cv.dw = dil[0];
  } else {
    cv.h = xd[2];
    cv.w = xd[3];
    cv.kh = wnum[2];
    cv.kw = wnum[3];
    cv.hout = od[2];
    cv.wout = od[3];
    cv.sh = st[0];
    cv.sw = st[1];
    cv.ph = pad[0];
    cv.pw = pad[1];
    cv.dh = dil[0];
    cv.dw = dil[1];
  }
  int64_t G = cv.groups;
  if (G < 1 || cv.cin % G || cv.cout % G || wnum[1] != cv.cin / G || od[0] != cv.n ||
      !dim_is(c, od[1], cv.cout) || cv.sh < 1 || cv.sw < 1 || cv.dh < 1 || cv.dw < 1 || cv.ph < 0 ||
      cv.pw < 0)
    return shape_error(l, "inconsistent convolution shapes or parameters");
  /* the output size: checked when static; a symbolic one is shape
   * inference's floor-division expression, taken as it is */
  int64_t h, w, hout, wout;
  if (kl_dim_const(c, cv.h, &h) && kl_dim_const(c, cv.w, &w) && kl_dim_const(c, cv.hout, &hout) &&
      kl_dim_const(c, cv.wout, &wout) &&
      (hout != (h + 2 * cv.ph - cv.dh * (cv.kh - 1) - 1) / cv.sh + 1 ||
       wout != (w + 2 * cv.pw - cv.dw * (cv.kw - 1) - 1) / cv.sw + 1))
    return shape_error(l, "output size does not match the convolution's parameters");
  cv.x = kl_value_buf(c, n->in[0]);
  cv.wt = -1; /* the weight's buffer: plain or packed, below */
  cv.out = result_buf(l);
  cv.ep = l->ep;
  cv.dt = l->dt;
  cv.bias = -1;
  if (!is_none(l, n->in[2])) {
    int br = tensor_shape(l, n->in[2], bd);
    if (br < 0) return -1;
    if (br != 1 || !dim_is(c, bd[0], cv.cout))
      return shape_error(l, "bias must have one value per output channel");
    cv.bias = kl_value_buf(c, n->in[2]);
  }
  ir_dim P = DMUL(c, cv.hout, cv.wout);
  ir_dim xelems = DMUL(c, DMUL(c, DMULC(c, cv.n, cv.cin), cv.h), cv.w);
  if (dim_is(c, cv.n, 0) || dim_is(c, P, 0) || cv.cout == 0) return 1;
  if (P == IR_DIM_UNKNOWN || xelems == IR_DIM_UNKNOWN)
    return shape_error(l, "a size of the convolution is too complex an expression");
  if (G == cv.cin && cv.cout == cv.cin) {
    cv.wt = kl_value_buf(c, n->in[1]);
    return conv_depthwise(c, &cv);
  }
  int64_t wn, wh, ww, who, wwo;
  const unsigned char *wdata;
  if (wino_fits(c, &cv, &wn, &wh, &ww, &who, &wwo) && (wdata = kl_weight_data(c, n->in[1])))
    return conv_winograd(l, &cv, wdata, wn, wh, ww, who, wwo) < 0 ? -1 : 1;
  pack_conv_weight(c, &cv, n->in[1]);
  if (cv.kh == 1 && cv.kw == 1 && cv.sh == 1 && cv.sw == 1 && cv.ph == 0 && cv.pw == 0) {
    return conv_gemm(l, &cv, cv.x, xelems, false, 0, cv.n);
  }
  ir_dim per_img = DMULC(c, P, cv.cin * cv.kh * cv.kw);
  int64_t N, per;
  if (!kl_dim_const(c, cv.n, &N) || !kl_dim_const(c, per_img, &per)) {
    /* symbolic: every image in one im2col buffer (the chunking below
     * needs numbers) */
    be_bufid col = kl_scratch_d(c, cv.dt, DMUL(c, cv.n, per_img));
    conv_im2col(c, &cv, col, 0, cv.n);
    return conv_gemm(l, &cv, col, DMUL(c, cv.n, per_img), true, 0, cv.n) < 0 ? -1 : 1;
  }
  int64_t chunk = IM2COL_MAX_ELEMS / (per ? per : 1);
  if (chunk < 1) chunk = 1;
  if (chunk > N) chunk = N;
  be_bufid col = kl_scratch(c, cv.dt, chunk * per);
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    int64_t nimg = N - n0 < chunk ? N - n0 : chunk;
    conv_im2col(c, &cv, col, n0, kl_d(c, nimg));
    if (conv_gemm(l, &cv, col, kl_d(c, chunk * per), true, n0, kl_d(c, nimg)) < 0) return -1;
  }
  return 1;
}

/* Lowers node id (with epilogue ep, or NULL): 1, 0 when not gemm-like, -1
 * after reporting. */
static int lower_gemm_node(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  ir_graph *g = kl_graph(c);
  ir_node *node = ir_node_get(g, id);
  const ir_type *rt = node->nout ? ir_vtype(g, node->out[0]) : NULL;
  lctx l = {.c = c,
            .g = g,
            .node = node,
            .loc = node->loc,
            .ep = ep,
            .dt = rt && rt->kind == IR_T_TENSOR && rt->dtype != NN_DT_UNKNOWN ? rt->dtype
                                                                              : NN_DT_F32};
  switch (node->op) {
  case NN_OP_LINEAR: return lower_linear(&l) < 0 ? -1 : 1;
  case NN_OP_ADDMM:
  case NN_OP_MM:
  case NN_OP_BMM:
  case NN_OP_MATMUL:
  case NN_OP_BADDBMM: return lower_matmul(&l) < 0 ? -1 : 1;
  case NN_OP_CONVOLUTION: return lower_conv(&l) < 0 ? -1 : 1;
  default: return 0;
  }
}

int kl_lower_gemm(kl_ctx *c, ir_nodeid n) { return lower_gemm_node(c, n, NULL); }

int kl_lower_gemm_ep(kl_ctx *c, ir_nodeid n, const kl_epilogue *ep) {
  NN_ASSERT(ep && ep->build);
  return lower_gemm_node(c, n, ep);
}
