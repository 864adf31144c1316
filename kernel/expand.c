/* expand.c — a KS_GEMM as a blocked loop nest (k_expand_gemms).
 *
 * For a target with no native form of a GEMM (the CPU's 16-bit GEMMs, and
 * the few shapes the LLVM microkernels do not take), each KS_GEMM is
 * rewritten into loops whose innermost loop is a VECTOR loop over a fixed
 * number (nr) of contiguous columns of C and B, inside a loop over k,
 * inside register tiles of mr rows of C (expand_gemm() has the exact
 * structure); an epilogue runs over each macro tile of C after its last K
 * block. Symbolic sizes give the same structure with expressions (read
 * once per macro tile) and run-time tails. The tiling comes from the
 * target descriptor (tg_expand): mr x nr is the register tile (nr = 16
 * floats: two AVX2 or one AVX-512 vector per row), mb x nb the macro tile
 * one parallel iteration computes, kb the depth of a K block (a kb x nr
 * panel of B stays in L1 while the mr-row tiles of the macro tile stream
 * through it). B packed in panels of exactly nr columns keeps the vector
 * loop's accesses contiguous.
 */
#include "kernel.h"

#include <string.h>

#define MAX_MR 16 /* register tile rows this file supports */

/* State while one KS_GEMM is expanded. */
typedef struct gx {
  kernel *k;
  const tg_expand *t;                        /* the tiling */
  ks_gemm g;                                 /* a copy of the statement being expanded; a
                                                size or stride that is not a constant is
                                                replaced by a variable holding it */
  int32_t aoff, boff, coff;                  /* I64 vars holding the operand offsets, or
                                                -1 when the offset is the constant below */
  int32_t biasoff;                           /* same for the bias */
  int64_t aoff_c, boff_c, coff_c, biasoff_c; /* constant offsets */
  int32_t vm, vn;                            /* tile origin (row, column) */
  int32_t va[MAX_MR];                        /* F32: alpha * A[row, k] of a tile's rows */
  int32_t vb;                                /* F32: B[k, column] */
} gx;

/* An offset: variable `var`, or constant c when var is -1. */
static kx_id OFF(kernel *k, int32_t var, int64_t c) {
  return var >= 0 ? k_varref(k, var) : k_i64(k, c);
}

/* Element index of C[m, n], A[m, kk], B[kk, n], bias[m, n]. */
static kx_id c_idx(gx *x, kx_id m, kx_id n) {
  kernel *k = x->k;
  return k_add(k, k_add(k, OFF(k, x->coff, x->coff_c), k_mul(k, m, x->g.ldc)), n);
}
/* Index of element (r, kk) of an operand stored in panels of p rows (or
 * columns) K deep: (r / p)*p*K + kk*p + r % p (ks_gemm.a_panel). */
static kx_id panel_idx(kernel *k, kx_id K, int64_t p, kx_id r, kx_id kk) {
  kx_id P = k_i64(k, p);
  return k_add(k, k_add(k, k_mul(k, k_bin(k, KX_DIV, r, P), k_mul(k, P, K)), k_mul(k, kk, P)),
               k_bin(k, KX_MOD, r, P));
}
/* A[m, kk] as loaded (f32), and alpha * A[m, kk]. */
static kx_id a_raw(gx *x, kx_id m, kx_id kk) {
  kernel *k = x->k;
  kx_id idx = x->g.a_panel > 0
                  ? k_add(k, OFF(k, x->aoff, x->aoff_c), panel_idx(k, x->g.k, x->g.a_panel, m, kk))
                  : k_add(k, k_add(k, OFF(k, x->aoff, x->aoff_c), k_mul(k, m, x->g.a_rs)),
                          k_mul(k, kk, x->g.a_cs));
  return k_cast(k, NN_DT_F32, k_load(k, x->g.a, idx));
}
static kx_id a_val(gx *x, kx_id m, kx_id kk) {
  kernel *k = x->k;
  kx_id v = a_raw(x, m, kk);
  return x->g.alpha == 1.0f ? v : k_mul(k, k_f32(k, x->g.alpha), v);
}
static kx_id b_val(gx *x, kx_id kk, kx_id n) {
  kernel *k = x->k;
  kx_id idx = x->g.b_panel > 0
                  ? k_add(k, OFF(k, x->boff, x->boff_c), panel_idx(k, x->g.k, x->g.b_panel, n, kk))
                  : k_add(k, k_add(k, OFF(k, x->boff, x->boff_c), k_mul(k, kk, x->g.b_rs)),
                          k_mul(k, n, x->g.b_cs));
  return k_cast(k, NN_DT_F32, k_load(k, x->g.b, idx));
}
/* B[kk, n0 + j] inside a register tile whose first column n0 is a
 * multiple of NR: with panels of exactly NR columns, the panel is n0's
 * and the column in it j, which keeps the vector loop's accesses
 * contiguous. */
static kx_id b_tile_val(gx *x, kx_id kk, kx_id n0, kx_id j) {
  kernel *k = x->k;
  if (x->g.b_panel != x->t->nr) return b_val(x, kk, k_add(k, n0, j));
  kx_id idx = k_add(k, k_add(k, OFF(k, x->boff, x->boff_c), k_mul(k, n0, x->g.k)),
                    k_add(k, k_muli(k, kk, x->t->nr), j));
  return k_cast(k, NN_DT_F32, k_load(k, x->g.b, idx));
}
static kx_id bias_val(gx *x, kx_id m, kx_id n) {
  kernel *k = x->k;
  kx_id idx = k_add(k, k_add(k, OFF(k, x->biasoff, x->biasoff_c), k_mul(k, m, x->g.bias_rs)),
                    k_mul(k, n, x->g.bias_cs));
  kx_id v = k_cast(k, NN_DT_F32, k_load(k, x->g.bias, idx));
  return x->g.beta == 1.0f ? v : k_mul(k, k_f32(k, x->g.beta), v);
}

/* Replaces the strides of x->g that are not constants by variables set
 * here (at the top of a parallel iteration). */
static void hoist_strides(gx *x) {
  kernel *k = x->k;
  ks_gemm *g = &x->g;
  g->a_rs = k_hoist(k, g->a_rs);
  g->a_cs = k_hoist(k, g->a_cs);
  g->b_rs = k_hoist(k, g->b_rs);
  g->b_cs = k_hoist(k, g->b_cs);
  g->ldc = k_hoist(k, g->ldc);
  if (g->bias >= 0) {
    g->bias_rs = k_hoist(k, g->bias_rs);
    g->bias_cs = k_hoist(k, g->bias_cs);
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
    v = v < 0 ? b : k_add(k, v, b);
  }
  if (v < 0 && !x->g.accumulate) v = k_f32(k, 0.0);
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
  int32_t kk = k_for_begin(k, k_varref(k, k0), k_varref(k, k1), 0);
  for (int i = 0; i < mr; i++)
    k_let(k, x->va[i], a_val(x, k_add(k, k_varref(k, x->vm), k_i64(k, i)), k_varref(k, kk)));
  int32_t j = k_for_begin(k, k_i64(k, 0), nr, KS_VECTOR);
  k_let(k, x->vb, b_tile_val(x, k_varref(k, kk), k_varref(k, x->vn), k_varref(k, j)));
  for (int i = 0; i < mr; i++) {
    kx_id idx = c_idx(x, k_add(k, k_varref(k, x->vm), k_i64(k, i)),
                      k_add(k, k_varref(k, x->vn), k_varref(k, j)));
    kx_id prod = k_mul(k, k_varref(k, x->va[i]), k_varref(k, x->vb));
    k_store(k, x->g.c, idx, k_add(k, k_load(k, x->g.c, idx), prod));
  }
  k_for_end(k);
  k_for_end(k);
}

/* N == 1 (matrix-vector): one dot product per row, reduced over k. */
static void expand_gemv(gx *x, unsigned outer_flags) {
  kernel *k = x->k;
  const ks_gemm *g = &x->g;
  int32_t acc = k_var(k, NN_DT_F32);
  int32_t m = k_for_begin(k, k_i64(k, 0), g->m, outer_flags);
  kx_id K = k_hoist(k, g->k);
  hoist_strides(x);
  k_let(k, acc, k_f32(k, 0.0));
  int32_t kk = k_for_begin(k, k_i64(k, 0), K, KS_REDUCE);
  kx_id prod = k_mul(k, a_raw(x, k_varref(k, m), k_varref(k, kk)),
                     b_val(x, k_varref(k, kk), k_i64(k, 0)));
  k_let(k, acc, k_add(k, k_varref(k, acc), prod));
  k_for_end(k);
  kx_id v = k_varref(k, acc);
  if (g->alpha != 1.0f) v = k_mul(k, k_f32(k, g->alpha), v);
  kx_id init = init_val(x, k_varref(k, m), k_i64(k, 0));
  if (init >= 0) v = k_add(k, init, v);
  kx_id idx = c_idx(x, k_varref(k, m), k_i64(k, 0));
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
  kx_id idx = c_idx(x, k_varref(k, m), k_varref(k, n));
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
static tiling macro_tiling(kernel *k, const tg_expand *T, kx_id M, kx_id N, bool let) {
  tiling t;
  t.nmb = k_cdiv(k, M, k_i64(k, T->mb));
  t.ct = k_cdiv(k, N, k_i64(k, T->nr));
  t.nbt = k_i64(k, T->nb / T->nr);
  int64_t nmb;
  if (!k_const_i64(k, t.nmb, &nmb) || nmb < T->min_tiles) {
    /* column blocks wanted; max(nmb, 1) keeps a symbolic M of 0 (a
     * floor division) from dividing by zero */
    kx_id want = k_cdiv(k, k_i64(k, T->min_tiles), k_max(k, t.nmb, k_i64(k, 1)));
    if (let) want = k_hoist(k, want);
    kx_id c = k_cdiv(k, t.ct, want);
    t.nbt = k_min(k, k_max(k, c, k_i64(k, 4)), t.nbt);
  }
  if (let) t.nbt = k_hoist(k, t.nbt);
  t.nnb = k_cdiv(k, t.ct, t.nbt);
  if (let) t.nnb = k_hoist(k, t.nnb);
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
  const tg_expand *T = x->t;
  int64_t mv, nv;
  bool m_num = k_const_i64(k, g->m, &mv), n_num = k_const_i64(k, g->n, &nv);
  if ((m_num && mv <= 0) || (n_num && nv <= 0)) return;
  if (n_num && nv == 1) {
    expand_gemv(x, outer_flags);
    return;
  }
  const int64_t mbt = T->mb / T->mr; /* row tiles per macro tile */
  tiling tl = macro_tiling(k, T, g->m, g->n, false);
  int32_t t = k_for_begin(k, k_i64(k, 0), k_mul(k, tl.nmb, tl.nnb), outer_flags);
  /* inside the parallel loop: the sizes (when symbolic) as variables, and
   * the tiling again from them */
  kx_id M = k_hoist(k, g->m), N = k_hoist(k, g->n), K = k_hoist(k, g->k);
  tl = macro_tiling(k, T, M, N, true);
  kx_id nbt = tl.nbt, nnb = tl.nnb;
  kx_id rt_full = k_hoist(k, k_fdiv(k, M, k_i64(k, T->mr)));
  kx_id ct_full = k_hoist(k, k_fdiv(k, N, k_i64(k, T->nr)));
  kx_id ntail = k_hoist(k, k_bin(k, KX_MOD, N, k_i64(k, T->nr)));
  int64_t mtail = 0;
  bool mtail_num = k_const_i64(k, k_bin(k, KX_MOD, M, k_i64(k, T->mr)), &mtail);
  hoist_strides(x);
  int32_t mb = k_let_i64(k, k_bin(k, KX_DIV, k_varref(k, t), nnb));
  int32_t nb = k_let_i64(k, k_bin(k, KX_MOD, k_varref(k, t), nnb));

  /* the macro tile: rows [r0, r1), columns [c0, c1) */
  kx_id r0 = k_muli(k, k_varref(k, mb), T->mb);
  kx_id r1 = k_min(k, k_add(k, k_muli(k, k_varref(k, mb), T->mb), k_i64(k, T->mb)), M);
  kx_id nbw = k_muli(k, nbt, T->nr); /* columns per block */
  kx_id c0 = k_mul(k, k_varref(k, nb), nbw);
  kx_id c1 = k_min(k, k_add(k, k_mul(k, k_varref(k, nb), nbw), nbw), N);
  /* init of the macro tile (nothing to do when accumulating without bias) */
  if (!g->accumulate || g->bias >= 0) {
    int32_t m = k_for_begin(k, r0, r1, 0);
    int32_t n = k_for_begin(k, c0, c1, KS_VECTOR);
    k_store(k, g->c, c_idx(x, k_varref(k, m), k_varref(k, n)),
            init_val(x, k_varref(k, m), k_varref(k, n)));
    k_for_end(k);
    k_for_end(k);
  }

  int32_t kb = k_for_begin(k, k_i64(k, 0), k_cdiv(k, K, k_i64(k, T->kb)), 0);
  int32_t k0 = k_let_i64(k, k_muli(k, k_varref(k, kb), T->kb));
  int32_t k1 = k_let_i64(k, k_min(k, k_add(k, k_varref(k, k0), k_i64(k, T->kb)), K));
  for (int pass = 0; pass < 2; pass++) {
    kx_id nr = pass == 0 ? k_i64(k, T->nr) : ntail;
    int64_t nrv;
    bool nr_num = k_const_i64(k, nr, &nrv);
    if (nr_num && nrv == 0) continue;
    int32_t nt = -1;
    if (pass == 0) {
      kx_id lo = k_mul(k, k_varref(k, nb), nbt);
      kx_id hi = k_min(k, k_add(k, k_mul(k, k_varref(k, nb), nbt), nbt), ct_full);
      nt = k_for_begin(k, lo, k_max(k, lo, hi), 0);
    } else {
      kx_id cond = k_bin(k, KX_EQ, k_varref(k, nb), k_fdiv(k, ct_full, nbt));
      if (!nr_num) /* a symbolic N may have no tail */
        cond = k_bin(k, KX_AND, cond, k_bin(k, KX_GT, nr, k_i64(k, 0)));
      k_if_begin(k, cond);
    }
    kx_id n0 = pass == 0 ? k_muli(k, k_varref(k, nt), T->nr) : k_muli(k, ct_full, T->nr);
    {
      kx_id lo = k_muli(k, k_varref(k, mb), mbt);
      kx_id hi = k_min(k, k_add(k, k_muli(k, k_varref(k, mb), mbt), k_i64(k, mbt)), rt_full);
      int32_t mt = k_for_begin(k, lo, k_max(k, lo, hi), 0);
      emit_tile(x, k_muli(k, k_varref(k, mt), T->mr), T->mr, n0, nr, k0, k1);
      k_for_end(k);
    }
    if (!mtail_num || mtail) {
      k_if_begin(k, k_bin(k, KX_EQ, k_varref(k, mb), k_fdiv(k, rt_full, k_i64(k, mbt))));
      if (mtail_num) {
        emit_tile(x, k_muli(k, rt_full, T->mr), (int)mtail, n0, nr, k0, k1);
      } else { /* the tail rows one by one (none when MR divides M) */
        int32_t r = k_for_begin(k, k_muli(k, rt_full, T->mr), M, 0);
        emit_tile(x, k_varref(k, r), 1, n0, nr, k0, k1);
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
static void expand_stmt(kernel *k, const tg_expand *T, ks_id s, bool parallel) {
  gx x = {.k = k, .t = T, .g = k->stmts.data[s].gemm};
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
      *vars[i] = k_let_i64(k, offs[i]);
      parallel = false; /* the root is no longer the loop alone */
    }
  }
  x.vm = k_var(k, NN_DT_I64);
  x.vn = k_var(k, NN_DT_I64);
  for (int i = 0; i < T->mr; i++) x.va[i] = k_var(k, NN_DT_F32);
  x.vb = k_var(k, NN_DT_F32);
  expand_gemm(&x, parallel ? KS_PARALLEL : 0);
}

/* Rewrites the GEMMs inside the bodies of statement s (recursively). The
 * expansion is built at the root, then moved into the body. */
static void rewrite_children(kernel *k, const tg_expand *T, ks_id s);

static void rewrite_block(kernel *k, const tg_expand *T, ks_id **body, int *n) {
  NN_VEC(ks_id) out = {0};
  for (int i = 0; i < *n; i++) {
    ks_id id = (*body)[i];
    if (k->stmts.data[id].kind == KS_GEMM) {
      int mark = k->root.len;
      expand_stmt(k, T, id, false);
      for (int j = mark; j < k->root.len; j++) NN_PUSH(k->arena, out, k->root.data[j]);
      k->root.len = mark;
    } else {
      rewrite_children(k, T, id);
      NN_PUSH(k->arena, out, id);
    }
  }
  *body = out.data;
  *n = out.len;
}

static void rewrite_children(kernel *k, const tg_expand *T, ks_id s) {
  ks_kind kind = k->stmts.data[s].kind;
  if (kind != KS_FOR && kind != KS_IF) return;
  /* work on copies: building statements may move k->stmts */
  ks_id *body = k->stmts.data[s].body, *els = k->stmts.data[s].els;
  int nbody = k->stmts.data[s].nbody, nels = k->stmts.data[s].nels;
  rewrite_block(k, T, &body, &nbody);
  if (kind == KS_IF) rewrite_block(k, T, &els, &nels);
  k->stmts.data[s].body = body;
  k->stmts.data[s].nbody = nbody;
  k->stmts.data[s].els = els;
  k->stmts.data[s].nels = nels;
}

void k_expand_gemms(kernel *k, const tg_expand *T) {
  NN_ASSERT(k->open.len == 0);
  NN_ASSERT(T->mr >= 1 && T->mr <= MAX_MR && T->nr >= 1 && T->mb % T->mr == 0 &&
            T->nb % T->nr == 0 && T->kb >= 1 && T->min_tiles >= 1);
  int n = k->root.len;
  ks_id *old = nn_alloc(k->arena, sizeof(ks_id) * (size_t)(n + 1));
  memcpy(old, k->root.data, sizeof(ks_id) * (size_t)n);
  bool only = n == 1;
  k->root.len = 0;
  for (int i = 0; i < n; i++) {
    if (k->stmts.data[old[i]].kind == KS_GEMM) {
      expand_stmt(k, T, old[i], only);
    } else {
      rewrite_children(k, T, old[i]);
      NN_PUSH(k->arena, k->root, old[i]);
    }
  }
}
