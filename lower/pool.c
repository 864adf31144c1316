/* pool.c — max, average and adaptive pooling (1-d, 2-d and 3-d).
 *
 * Never a padded copy. Fixed windows without an indices output run as
 * passes over each output row whose innermost loop is a KS_VECTOR loop
 * over output columns with no checks (the range of columns each window
 * column can reach is computed up front); the indices form and adaptive
 * windows check bounds (KS_IF) per element; adaptive windows use
 * PyTorch's start = floor(i*in/out), end = ceil((i+1)*in/out). Max pooling
 * propagates NaN as PyTorch does.
 */
#include "lower.h"

#include <math.h>
#include <string.h>

/* One spatial dim's list parameter (1 or nsp elements; empty = dflt). */
static bool spatial(kl_ctx *c, int j, int nsp, const int64_t *dflt, int64_t *out) {
  const int64_t *v;
  int n;
  if (!kl_clist(c, j, &v, &n)) return false;
  if (n == 0 && dflt) {
    memcpy(out, dflt, sizeof *out * (size_t)nsp);
    return true;
  }
  if (n != 1 && n != nsp) return false;
  for (int i = 0; i < nsp; i++) out[i] = v[n == 1 ? 0 : i];
  return true;
}

/* The adaptive window [start, end) of output index o along a dim of input
 * size in and output size on: floor(o*in/on), ceil((o+1)*in/on). */
static void adaptive_window(kl_ctx *c, kernel *k, kx_id o, ir_dim in, ir_dim on, kx_id *start,
                            kx_id *end) {
  kx_id inx = kl_x(c, k, in), onx = kl_x(c, k, on);
  *start = k_bin(k, KX_FLOORDIV, k_bin(k, KX_MUL, o, inx), onx);
  *end = k_bin(k, KX_FLOORDIV,
               k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_bin(k, KX_ADD, o, k_i64(k, 1)), inx),
                     kl_x(c, k, kl_daddi(c, on, -1))),
               onx);
}

/* What pool_passes needs of one output row (see pool_rows). */
typedef struct pool_geom {
  bool avg;               /* sum (else max) */
  nn_dtype odt, cd;       /* output and compute dtypes */
  int32_t os, xs;         /* output and input slots */
  kx_id orow;             /* index of the row's first output element */
  const kx_id *lo, *hi;   /* per window column: its valid ow range */
  kx_id A, B;             /* the interior ow range (A <= B) */
  int64_t KW, sw, dw, pw; /* window columns, stride, dilation, padding */
  int32_t acc, xv;        /* variables (cd): the running value, one input */
  int32_t xp, nanv;       /* max over floats: a term waiting for its pair's
                             NaN check, and a NaN once one was seen */
  kx_id Bp;               /* max pooling, stride 2, odd KW: the interior
                             [A, Bp) loads paired columns (pool_loop); else -1 */
  kx_id never;            /* a condition that is false at run time */
} pool_geom;

/* One KS_VECTOR loop over ow in [from, to): each output element of the row
 * takes the terms of window rows [r0, r1) and columns [j0, j1), in that
 * order. `extra`: also the element after each row's last column, under a
 * select that is never taken (g->never): with stride 2 the columns then
 * come in consecutive pairs, which the vectorizer reads as two wide loads
 * and shuffles, where an odd column left alone would be gathered element
 * by element. The caller keeps that element inside the row. */
static void pool_loop(kernel *k, const pool_geom *g, const kx_id *rows, kx_id from, kx_id to,
                      int r0, int r1, int64_t j0, int64_t j1, bool extra) {
  kx_id ow = k_varref(k, k_for_begin(k, from, to, KS_VECTOR));
  kx_id oidx = k_bin(k, KX_ADD, g->orow, ow);
  /* LETs keep each statement small (acc is used twice per term) */
  k_let(k, g->acc, k_cast(k, g->cd, k_load(k, g->os, oidx)));
  kx_id acc = k_varref(k, g->acc);
  kx_id col = k_bin(k, KX_MUL, ow, k_i64(k, g->sw));
  /* max over floats: each term is one compare-and-select (a NaN already
   * in acc stays, as no comparison with it holds), and NaNs among the
   * terms are caught two at a time: x1 + x2 is a NaN when either is, and
   * (x1 != x1) | (x2 != x2) is a single unordered compare */
  bool fmax = !g->avg && nn_dtype_is_float(g->cd);
  kx_id nanv = fmax ? k_varref(k, g->nanv) : -1, xp = fmax ? k_varref(k, g->xp) : -1;
  if (fmax) k_let(k, g->nanv, k_const_f(k, g->cd, 0.0));
  bool pending = false;
  for (int rr = r0; rr < r1; rr++) {
    for (int64_t jj = j0; jj < j1 + (extra ? 1 : 0); jj++) {
      kx_id xi = k_bin(k, KX_ADD, rows[rr], k_bin(k, KX_ADD, col, k_i64(k, jj * g->dw - g->pw)));
      kx_id x = k_cast(k, g->cd, k_load(k, g->xs, xi));
      if (jj == j1) /* the pair's partner: never counted */
        x = k_select(k, g->never, x, kl_extreme(k, g->cd, false));
      if (g->avg) {
        k_let(k, g->acc, k_bin(k, KX_ADD, acc, x));
        continue;
      }
      k_let(k, g->xv, x);
      x = k_varref(k, g->xv);
      k_let(k, g->acc, k_select(k, k_bin(k, KX_GT, x, acc), x, acc));
      if (!fmax) continue;
      if (!pending) {
        k_let(k, g->xp, x);
      } else {
        kx_id uno = k_bin(k, KX_OR, k_bin(k, KX_NE, xp, xp), k_bin(k, KX_NE, x, x));
        k_let(k, g->nanv, k_select(k, uno, k_bin(k, KX_ADD, xp, x), nanv));
      }
      pending = !pending;
    }
  }
  if (fmax && pending) k_let(k, g->nanv, k_select(k, k_bin(k, KX_NE, xp, xp), xp, nanv));
  kx_id res = fmax ? k_select(k, k_bin(k, KX_NE, nanv, nanv), nanv, acc) : acc;
  k_store(k, g->os, oidx, k_cast(k, g->odt, res));
  k_for_end(k);
}

/* Adds the window rows starting at input elements rows[0..nrows) (all of
 * which exist) into the output row: the interior [A, B) in one KS_VECTOR
 * loop taking every row and column (split at Bp when paired loads apply,
 * see pool_loop), then per row and window column j the parts of
 * [lo_j, hi_j) left of A and right of B. Every output element thus takes
 * its terms in (row, column) order. */
static void pool_passes(kernel *k, const pool_geom *g, const kx_id *rows, int nrows) {
  if (g->Bp >= 0) {
    pool_loop(k, g, rows, g->A, g->Bp, 0, nrows, 0, g->KW, true);
    pool_loop(k, g, rows, g->Bp, g->B, 0, nrows, 0, g->KW, false);
  } else {
    pool_loop(k, g, rows, g->A, g->B, 0, nrows, 0, g->KW, false);
  }
  for (int r = 0; r < nrows; r++)
    for (int64_t j = 0; j < g->KW; j++)
      pool_loop(k, g, rows, g->lo[j], k_bin(k, KX_MIN, g->hi[j], g->A), r, r + 1, j, j + 1, false);
  for (int r = 0; r < nrows; r++)
    for (int64_t j = 0; j < g->KW; j++)
      pool_loop(k, g, rows, k_bin(k, KX_MAX, g->lo[j], g->B), g->hi[j], r, r + 1, j, j + 1, false);
}

/* Fixed-window pooling (no indices output) as passes over each output row,
 * for the vectorizer. For every output row (p, oh) — the parallel loop —
 * the row is first filled with the reduction's identity; then, for each
 * window row i whose input row exists, each window column j adds input
 * column ow*sw - pw + j*dw to output column ow for exactly the ow where
 * that column exists: lo_j <= ow < hi_j, bounds computed once, so the
 * innermost loops carry no checks and load at an index affine in ow. The
 * ow range every j shares (the interior) is one KS_VECTOR loop combining
 * all KW columns in one expression; the few columns left of and right of
 * it get a short loop per j. Output rows whose window rows all exist take
 * all KH*KW terms in one interior pass (pool_passes with every row). Each
 * output element thus sees its valid
 * window elements in the same order (rows, then columns) as the checked
 * form, so sums round alike; max keeps NaN (any NaN in the window gives
 * NaN) and padding never wins. Average pooling then divides the row by
 * its divisor. The output buffer holds the partial results, so the caller
 * uses this only when that loses nothing: max pooling (any dtype stores
 * the max exactly), or the output dtype is the compute dtype. */
static void pool_rows(kl_ctx *c, kernel *k, bool avg, ir_dim P, ir_dim H, ir_dim W, ir_dim OH,
                      ir_dim OW, const int64_t *ks, const int64_t *st, const int64_t *pd,
                      const int64_t *dl, int64_t cip, int64_t divisor, nn_dtype odt, nn_dtype cd,
                      int32_t os, int32_t xs) {
  ir_dim dims[2] = {P, OH};
  kx_id v[2];
  int nl = kl_nest(c, k, 2, dims, v, true, false, 0);
  kx_id p = v[0], oh = v[1];
  kx_id Hx = kl_x(c, k, H), Wx = kl_x(c, k, W), OWx = kl_x(c, k, OW);
  kx_id orow = k_bin(k, KX_ADD, k_bin(k, KX_MUL, p, k_bin(k, KX_MUL, kl_x(c, k, OH), OWx)),
                     k_bin(k, KX_MUL, oh, OWx));
  kx_id xplane = k_bin(k, KX_MUL, p, k_bin(k, KX_MUL, Hx, Wx));
  kx_id hs = k_bin(k, KX_SUB, k_bin(k, KX_MUL, oh, k_i64(k, st[0])), k_i64(k, pd[0]));
  /* identity */
  kx_id ow = k_varref(k, k_for_begin(k, k_i64(k, 0), OWx, KS_VECTOR));
  k_store(k, os, k_bin(k, KX_ADD, orow, ow),
          k_cast(k, odt, avg ? k_const_i(k, cd, 0) : kl_extreme(k, cd, false)));
  k_for_end(k);
  /* valid ow range per window column: [lo_j, hi_j) */
  kx_id lo[64], hi[64], A = k_i64(k, 0), B = OWx;
  int64_t KW = ks[1];
  for (int64_t j = 0; j < KW; j++) {
    int64_t off = j * dl[1] - pd[1]; /* input column = ow*sw + off */
    lo[j] = k_bin(k, KX_MAX, k_i64(k, 0),
                  k_bin(k, KX_FLOORDIV, k_i64(k, -off + st[1] - 1), k_i64(k, st[1])));
    hi[j] = k_bin(k, KX_MIN, OWx,
                  k_bin(k, KX_ADD,
                        k_bin(k, KX_FLOORDIV, k_bin(k, KX_SUB, Wx, k_i64(k, 1 + off)),
                              k_i64(k, st[1])),
                        k_i64(k, 1)));
    A = k_bin(k, KX_MAX, A, lo[j]);
    B = k_bin(k, KX_MIN, B, hi[j]);
  }
  B = k_bin(k, KX_MAX, A, B);
  pool_geom g = {.avg = avg,
                 .odt = odt,
                 .cd = cd,
                 .os = os,
                 .xs = xs,
                 .orow = orow,
                 .lo = lo,
                 .hi = hi,
                 .A = A,
                 .B = B,
                 .KW = KW,
                 .sw = st[1],
                 .dw = dl[1],
                 .pw = pd[1],
                 .acc = k_var(k, cd),
                 .xv = k_var(k, cd),
                 .xp = k_var(k, cd),
                 .nanv = k_var(k, cd),
                 .Bp = -1,
                 .never = -1};
  if (!avg && st[1] == 2 && dl[1] == 1 && KW % 2 == 1 && nn_dtype_is_float(cd)) {
    /* the partner column KW - pw must exist too: ow < its hi */
    kx_id hp = k_bin(k, KX_ADD,
                     k_bin(k, KX_FLOORDIV, k_bin(k, KX_SUB, Wx, k_i64(k, 1 + KW - pd[1])),
                           k_i64(k, 2)),
                     k_i64(k, 1));
    g.Bp = k_bin(k, KX_MAX, A, k_bin(k, KX_MIN, B, hp));
    g.never = k_bin(k, KX_LT, p, k_i64(k, 0)); /* planes count from 0 */
  }
  kx_id last = k_bin(k, KX_ADD, hs, k_i64(k, (ks[0] - 1) * dl[0]));
  bool unroll = ks[0] > 1 && ks[0] * KW <= 64;
  if (unroll) {
    /* every window row exists: all KH*KW terms in one interior pass */
    kx_id rows[64];
    for (int64_t i = 0; i < ks[0]; i++)
      rows[i] = k_bin(k, KX_ADD, xplane,
                      k_bin(k, KX_MUL, k_bin(k, KX_ADD, hs, k_i64(k, i * dl[0])), Wx));
    k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_GE, hs, k_i64(k, 0)), k_bin(k, KX_LT, last, Hx)));
    pool_passes(k, &g, rows, (int)ks[0]);
    k_else(k);
  }
  kx_id i = k_varref(k, k_for_begin(k, k_i64(k, 0), k_i64(k, ks[0]), 0));
  kx_id ih = k_bin(k, KX_ADD, hs, k_bin(k, KX_MUL, i, k_i64(k, dl[0])));
  k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_GE, ih, k_i64(k, 0)), k_bin(k, KX_LT, ih, Hx)));
  kx_id xrow = k_bin(k, KX_ADD, xplane, k_bin(k, KX_MUL, ih, Wx));
  pool_passes(k, &g, &xrow, 1);
  k_if_end(k);
  k_for_end(k);
  if (unroll) k_if_end(k);
  if (avg) {
    ow = k_varref(k, k_for_begin(k, k_i64(k, 0), OWx, KS_VECTOR));
    kx_id div;
    if (divisor) {
      div = k_i64(k, divisor);
    } else {
      kx_id ws = k_bin(k, KX_SUB, k_bin(k, KX_MUL, ow, k_i64(k, st[1])), k_i64(k, pd[1]));
      kx_id hend = k_bin(k, KX_MIN, k_bin(k, KX_ADD, hs, k_i64(k, ks[0])),
                         kl_x(c, k, kl_daddi(c, H, pd[0])));
      kx_id wend = k_bin(k, KX_MIN, k_bin(k, KX_ADD, ws, k_i64(k, ks[1])),
                         kl_x(c, k, kl_daddi(c, W, pd[1])));
      if (cip) {
        div = k_bin(k, KX_MUL, k_bin(k, KX_SUB, hend, hs), k_bin(k, KX_SUB, wend, ws));
      } else {
        kx_id h0 = k_bin(k, KX_MAX, hs, k_i64(k, 0)), w0 = k_bin(k, KX_MAX, ws, k_i64(k, 0));
        kx_id h1 = k_bin(k, KX_MIN, hend, Hx), w1 = k_bin(k, KX_MIN, wend, Wx);
        div = k_bin(k, KX_MUL, k_bin(k, KX_SUB, h1, h0), k_bin(k, KX_SUB, w1, w0));
      }
    }
    kx_id oidx = k_bin(k, KX_ADD, orow, ow);
    k_store(k, os, oidx, k_bin(k, KX_DIV, k_load(k, os, oidx), k_cast(k, cd, div)));
    k_for_end(k);
  }
  kl_nest_end(k, nl);
}

static int lower_pool(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_op op = n->op;
  int nsp = op == NN_OP_MAX_POOL1D || op == NN_OP_AVG_POOL1D || op == NN_OP_ADAPTIVE_AVG_POOL1D ||
                    op == NN_OP_ADAPTIVE_MAX_POOL1D
                ? 1
            : op == NN_OP_MAX_POOL3D || op == NN_OP_MAX_POOL3D_INDICES || op == NN_OP_AVG_POOL3D ||
                    op == NN_OP_ADAPTIVE_AVG_POOL3D || op == NN_OP_ADAPTIVE_MAX_POOL3D
                ? 3
                : 2;
  bool avg = op == NN_OP_AVG_POOL2D || op == NN_OP_AVG_POOL1D || op == NN_OP_AVG_POOL3D ||
             op == NN_OP_ADAPTIVE_AVG_POOL2D || op == NN_OP_ADAPTIVE_AVG_POOL1D ||
             op == NN_OP_ADAPTIVE_AVG_POOL3D;
  bool adaptive = op == NN_OP_ADAPTIVE_AVG_POOL1D || op == NN_OP_ADAPTIVE_MAX_POOL1D ||
                  op == NN_OP_ADAPTIVE_AVG_POOL2D || op == NN_OP_ADAPTIVE_MAX_POOL2D ||
                  op == NN_OP_ADAPTIVE_AVG_POOL3D || op == NN_OP_ADAPTIVE_MAX_POOL3D;
  ir_dim xd[KL_MAXR], od[KL_MAXR];
  int xr = kl_vshape(c, n->in[0], xd), orank = kl_vshape(c, n->out[0], od);
  if (xr < nsp + 1 || orank != xr) return kl_unsupported(c);
  /* nd window dims: 1-d and 2-d pool as 2-d ([P, H, W] -> [P, OH, OW],
   * H = 1 for 1-d), 3-d as [P, D, H, W] */
  int nd = nsp == 3 ? 3 : 2;
  ir_dim S[3] = {0}, O[3] = {0};
  for (int j = 0; j < nd; j++) {
    int a = xr - nd + j;
    bool absent = j < nd - nsp; /* the 1 of a 1-d pool */
    S[j] = absent ? kl_d(c, 1) : xd[a];
    O[j] = absent ? kl_d(c, 1) : od[a];
  }
  ir_dim P = kl_numel(c, xr - nsp, xd);
  int64_t ks[3] = {1, 1, 1}, st[3] = {1, 1, 1}, pd[3] = {0, 0, 0}, dl[3] = {1, 1, 1};
  int64_t ceil_mode = 0, cip = 1, divisor = 0;
  if (!adaptive) {
    int64_t t[3], sv[3], p[3], d[3] = {1, 1, 1};
    if (!spatial(c, 1, nsp, NULL, t) || !spatial(c, 2, nsp, t, sv) ||
        !spatial(c, 3, nsp, NULL, p) || (!avg && !spatial(c, 4, nsp, NULL, d)))
      return kl_unsupported(c);
    for (int i = 0; i < nsp; i++) {
      int j = i + nd - nsp;
      ks[j] = t[i], st[j] = sv[i], pd[j] = p[i], dl[j] = d[i];
    }
    if (!kl_cint(c, avg ? 4 : 5, &ceil_mode)) return kl_unsupported(c);
    if (avg && !kl_cint(c, 5, &cip)) return kl_unsupported(c);
    if ((op == NN_OP_AVG_POOL2D || op == NN_OP_AVG_POOL3D) && !kl_is_none(c, 6) &&
        !kl_cint(c, 6, &divisor))
      return kl_unsupported(c);
  }
  nn_dtype odt = kl_vdtype(c, n->out[0]), cd = kl_compute_dt(odt);
  kernel *k = kl_kernel(c, ir_ops[op].name);
  ir_dim on = P;
  for (int j = 0; j < nd; j++) on = kl_dmul(c, on, O[j]);
  int32_t os = kl_wslot(c, k, odt, on, kl_value_buf(c, n->out[0]), "out");
  int32_t is = -1;
  if (n->nout == 2) is = kl_wslot(c, k, NN_DT_I64, on, kl_value_buf(c, n->out[1]), "idx");
  int32_t xs = kl_vslot(c, k, n->in[0], "x");
  if (nd == 2 && !adaptive && is < 0 && (!avg || odt == cd) && ks[1] <= 64) {
    pool_rows(c, k, avg, P, S[0], S[1], O[0], O[1], ks, st, pd, dl, cip, divisor, odt, cd, os, xs);
    return 1;
  }
  ir_dim dims[4] = {P, O[0], O[1], O[2]};
  kx_id v[4];
  int nl = kl_nest(c, k, nd + 1, dims, v, true, false, 0);
  kx_id p = v[0], Sx[3] = {-1, -1, -1};
  for (int j = 0; j < nd; j++) Sx[j] = kl_x(c, k, S[j]);
  /* window bounds per dim: [lo, hi) of input positions, clamped */
  kx_id ws[3], we[3], div = -1;
  if (adaptive) {
    for (int j = 0; j < nd; j++) adaptive_window(c, k, v[1 + j], S[j], O[j], &ws[j], &we[j]);
    if (avg) {
      div = k_bin(k, KX_SUB, we[0], ws[0]);
      for (int j = 1; j < nd; j++) div = k_bin(k, KX_MUL, div, k_bin(k, KX_SUB, we[j], ws[j]));
    }
  } else {
    /* first position of the window (may be negative: padding) */
    for (int j = 0; j < nd; j++)
      ws[j] = k_bin(k, KX_SUB, k_bin(k, KX_MUL, v[1 + j], k_i64(k, st[j])), k_i64(k, pd[j]));
    if (avg) {
      kx_id end[3], lo[3], hi[3], size = -1, valid = -1;
      for (int j = 0; j < nd; j++)
        end[j] = k_bin(k, KX_MIN, k_bin(k, KX_ADD, ws[j], k_i64(k, ks[j])),
                       kl_x(c, k, kl_daddi(c, S[j], pd[j])));
      for (int j = 0; j < nd; j++) {
        kx_id e = k_bin(k, KX_SUB, end[j], ws[j]);
        size = j ? k_bin(k, KX_MUL, size, e) : e;
      }
      for (int j = 0; j < nd; j++) lo[j] = k_bin(k, KX_MAX, ws[j], k_i64(k, 0));
      for (int j = 0; j < nd; j++) hi[j] = k_bin(k, KX_MIN, end[j], Sx[j]);
      for (int j = 0; j < nd; j++) {
        kx_id e = k_bin(k, KX_SUB, hi[j], lo[j]);
        valid = j ? k_bin(k, KX_MUL, valid, e) : e;
      }
      div = divisor ? k_i64(k, divisor) : cip ? size : valid;
    }
  }
  int32_t acc = k_var(k, cd), ai = k_var(k, NN_DT_I64);
  k_let(k, acc, avg ? k_const_i(k, cd, 0) : kl_extreme(k, cd, false));
  k_let(k, ai, k_i64(k, -1));
  kx_id ix[3];
  if (adaptive) {
    for (int j = 0; j < nd; j++) ix[j] = k_varref(k, k_for_begin(k, ws[j], we[j], KS_REDUCE));
  } else {
    for (int j = 0; j < nd; j++) {
      kx_id t = k_varref(k, k_for_begin(k, k_i64(k, 0), k_i64(k, ks[j]), KS_REDUCE));
      ix[j] = k_bin(k, KX_ADD, ws[j], k_bin(k, KX_MUL, t, k_i64(k, dl[j])));
    }
    kx_id ok = -1;
    for (int j = 0; j < nd; j++) {
      kx_id in = k_bin(k, KX_AND, k_bin(k, KX_GE, ix[j], k_i64(k, 0)),
                       k_bin(k, KX_LT, ix[j], Sx[j]));
      ok = j ? k_bin(k, KX_AND, ok, in) : in;
    }
    k_if_begin(k, ok);
  }
  /* the position within the spatial volume (max pooling's index), and the
   * volume's size */
  kx_id plane = ix[0], vol = Sx[0];
  for (int j = 1; j < nd; j++) {
    plane = k_bin(k, KX_ADD, k_bin(k, KX_MUL, plane, Sx[j]), ix[j]);
    vol = k_bin(k, KX_MUL, vol, Sx[j]);
  }
  kx_id x = k_cast(k, cd, k_load(k, xs, k_bin(k, KX_ADD, k_bin(k, KX_MUL, p, vol), plane)));
  if (avg) {
    k_let(k, acc, k_bin(k, KX_ADD, k_varref(k, acc), x));
  } else {
    int32_t xv = k_var(k, cd);
    k_let(k, xv, x);
    kx_id xr_ = k_varref(k, xv);
    kx_id better = k_bin(k, KX_GT, xr_, k_varref(k, acc));
    if (nn_dtype_is_float(cd)) better = k_bin(k, KX_OR, better, k_bin(k, KX_NE, xr_, xr_));
    better = k_bin(k, KX_OR, better, k_bin(k, KX_LT, k_varref(k, ai), k_i64(k, 0)));
    k_if_begin(k, better);
    k_let(k, acc, xr_);
    k_let(k, ai, plane);
    k_if_end(k);
  }
  if (!adaptive) k_if_end(k);
  for (int j = 0; j < nd; j++) k_for_end(k);
  kx_id res = k_varref(k, acc);
  if (avg) res = k_bin(k, KX_DIV, res, k_cast(k, cd, div));
  kx_id oidx = p;
  for (int j = 0; j < nd; j++)
    oidx = k_bin(k, KX_ADD, k_bin(k, KX_MUL, oidx, kl_x(c, k, O[j])), v[1 + j]);
  k_store(k, os, oidx, k_cast(k, odt, res));
  if (is >= 0) k_store(k, is, oidx, k_varref(k, ai));
  kl_nest_end(k, nl);
  return 1;
}

int kl_lower_pool(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_pool(c));
}
