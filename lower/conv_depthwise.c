/* conv_depthwise.c — depthwise convolution (groups == cin == cout) as a
 * direct kernel.
 *
 * Up to DW_MAX_TAPS taps, each output's taps are summed at once (as a
 * tree), vectorized along the output, with the interior (every tap inside
 * the input) unchecked and the padded border checked per tap; narrow rows
 * go through one flat loop with per-lane column checks read from a
 * compile-time table. Longer filters accumulate tap by tap into each
 * output row. Padding never needs a copy of the input; a fused epilogue
 * (and the rounding of a 16-bit result) applies to each sum before its
 * single store.
 */
#include "lower.h"

#include <string.h>

/* Depthwise (groups == cin == cout) with many taps: a direct kernel that
 * accumulates tap by tap into each output row.
 *   PARALLEL for nc in [0, N*C): ch = nc % C
 *     for oh: out row = bias[ch] or 0
 *       for i in [0, kh): ih = oh*sh - ph + i*dh; if 0 <= ih < H:
 *         for j in [0, kw): VECTOR for ow in the valid range of tap j:
 *           out[nc, oh, ow] += w[ch, i, j] * x[nc, ih, ow*sw - pw + j*dw] */
static int conv_depthwise_rows(kl_ctx *c, const kl_conv *cv) {
  kernel *k = kl_kernel_ep(c, "conv_depthwise", cv->ep);
  int64_t C = cv->cin;
  ir_dim P = kl_dmul(c, cv->hout, cv->wout);
  ir_dim oelems = kl_dmul(c, kl_dmuli(c, cv->n, C), P);
  ir_dim xelems = kl_dmul(c, kl_dmul(c, kl_dmuli(c, cv->n, C), cv->h), cv->w);
  /* 16-bit out: rows accumulate in an f32 scratch, rounded into out when
   * complete (through the epilogue, if any). */
  bool narrow = cv->dt != NN_DT_F32;
  int32_t o = k_buf(k, NN_DT_F32, kl_elems(c, oelems), true, narrow ? "acc" : "out");
  int32_t x = k_buf(k, cv->dt, kl_elems(c, xelems), false, "x");
  int32_t w = k_buf(k, cv->dt, C * cv->kh * cv->kw, false, "w");
  kl_bind(c, k, o, narrow ? kl_scratch_d(c, NN_DT_F32, oelems) : cv->out);
  kl_bind(c, k, x, cv->x);
  kl_bind(c, k, w, cv->wt);
  int32_t out = o;
  if (narrow) {
    out = k_buf(k, cv->dt, kl_elems(c, oelems), true, "out");
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
    e = cv->ep ? cv->ep->build(cv->ep->ctx, k, k_varref(k, acc), k_varref(k, idx))
               : k_varref(k, acc);
    if (e < 0) return -1;
  }
  int32_t nc = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, kl_dmuli(c, cv->n, C)), KS_PARALLEL);
  kl_convx sz = kl_conv_sizes(c, k, cv);
  int32_t ch = k_let_i64(k, k_bin(k, KX_MOD, k_varref(k, nc), k_i64(k, C)));
  int32_t oh = k_for_begin(k, k_i64(k, 0), sz.hout, 0);
  k_let(k, dst, k_add(k, k_mul(k, k_varref(k, nc), sz.P), k_mul(k, k_varref(k, oh), sz.wout)));
  int32_t ow = k_for_begin(k, k_i64(k, 0), sz.wout, KS_VECTOR);
  k_store(k, o, k_add(k, k_varref(k, dst), k_varref(k, ow)),
          bias >= 0 ? k_cast(k, NN_DT_F32, k_load(k, bias, k_varref(k, ch))) : k_f32(k, 0.0));
  k_for_end(k);
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, cv->kh), 0);
  k_let(k, ih,
        k_add(k, k_muli(k, k_varref(k, oh), cv->sh),
              k_add(k, k_i64(k, -cv->ph), k_muli(k, k_varref(k, i), cv->dh))));
  k_if_begin(k, kl_conv_row_in_range(k, &sz, ih));
  int32_t j = k_for_begin(k, k_i64(k, 0), k_i64(k, cv->kw), 0);
  kl_conv_tap_range(k, cv, &sz, j, lo, hi);
  k_let(k, wv,
        k_cast(k, NN_DT_F32,
               k_load(k, w,
                      k_add(k,
                            k_muli(k, k_add(k, k_muli(k, k_varref(k, ch), cv->kh), k_varref(k, i)),
                                   cv->kw),
                            k_varref(k, j)))));
  /* x index of ow = 0 (may be negative; only ow in [lo, hi) are read) */
  k_let(k, src,
        k_add(k, k_mul(k, k_add(k, k_mul(k, k_varref(k, nc), sz.h), k_varref(k, ih)), sz.w),
              k_add(k, k_i64(k, -cv->pw), k_muli(k, k_varref(k, j), cv->dw))));
  ow = k_for_begin(k, k_varref(k, lo), k_varref(k, hi), KS_VECTOR);
  kx_id oidx = k_add(k, k_varref(k, dst), k_varref(k, ow));
  kx_id xv = k_cast(k, NN_DT_F32,
                    k_load(k, x, k_add(k, k_varref(k, src), k_muli(k, k_varref(k, ow), cv->sw))));
  k_store(k, o, oidx, k_add(k, k_load(k, o, oidx), k_mul(k, k_varref(k, wv), xv)));
  k_for_end(k); /* ow */
  k_for_end(k); /* j */
  k_if_end(k);
  k_for_end(k);           /* i */
  if (cv->ep || narrow) { /* the row is complete: out = round(ep(acc)) */
    ow = k_for_begin(k, k_i64(k, 0), sz.wout, KS_VECTOR);
    k_let(k, idx, k_add(k, k_varref(k, dst), k_varref(k, ow)));
    k_let(k, acc, k_load(k, o, k_varref(k, idx)));
    k_store(k, out, k_varref(k, idx), k_cast(k, cv->dt, e));
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
  return k_min(k, k_i64(k, (p + s - 1) / s), out);
}
/* One past the last output index whose taps all lie before input index
 * n: floor((n - 1 + p - (taps - 1)*d) / s) + 1, clipped to [lo, out). */
static kx_id dw_hi(kernel *k, kx_id n, int64_t p, int64_t s, int64_t d, int64_t taps, kx_id lo,
                   kx_id out) {
  kx_id last = k_fdiv(k, k_add(k, n, k_i64(k, p - 1 - (taps - 1) * d)), k_i64(k, s));
  return k_max(k, k_min(k, k_add(k, last, k_i64(k, 1)), out), lo);
}

/* State of the direct depthwise kernel while its loops are built. */
typedef struct dwk {
  kernel *k;
  const kl_conv *cv;
  kl_convx sz;      /* spatial sizes (numbers or variables) */
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
  const kl_conv *cv = d->cv;
  k_let(k, d->dst, k_add(k, k_varref(k, d->obase), k_mul(k, k_varref(k, d->oh), d->sz.wout)));
  for (int64_t i = 0; i < cv->kh; i++) {
    kx_id ih = k_add(k, k_muli(k, k_varref(k, d->oh), cv->sh), k_i64(k, i * cv->dh - cv->ph));
    k_let(k, d->rok[i],
          k_bin(k, KX_AND, k_bin(k, KX_GE, ih, k_i64(k, 0)), k_bin(k, KX_LT, ih, d->sz.h)));
    k_let(k, d->rb[i],
          k_add(k, k_varref(k, d->plane),
                k_select(k, k_varref(k, d->rok[i]), k_mul(k, ih, d->sz.w), k_i64(k, 0))));
  }
}

/* out[idx] = e(sum), rounded to the output's dtype. */
static void dw_store(dwk *d, kx_id sum, kx_id idx) {
  kernel *k = d->k;
  k_let(k, d->idx, idx);
  k_let(k, d->acc, sum);
  k_store(k, d->out, k_varref(k, d->idx), k_cast(k, d->cv->dt, d->e));
}

/* Whether the row loops also load the element after each tap row's last
 * tap (and add nothing from it). With stride 2 and dilation 1, the taps of
 * a row are kw consecutive elements, read with stride 2 along the loop:
 * the vectorizer loads pairs of consecutive elements as two wide loads and
 * two shuffles, and an odd kw leaves one tap without a partner, which it
 * would gather element by element instead. The extra load completes the
 * pair. */
static bool dw_pairs(const kl_conv *cv) { return cv->sw == 2 && cv->dw == 1 && cv->kw % 2 == 1; }

/* 0, from an expression that loads x[xi] (dw_pairs): the vectorizer
 * cannot see that the load is never used (the plane's index is never
 * negative), so it keeps the load in the pair. */
static kx_id dw_unused(dwk *d, kx_id xi) {
  kernel *k = d->k;
  kx_id never = k_bin(k, KX_LT, k_varref(k, d->plane), k_i64(k, 0));
  return k_select(k, never, k_cast(k, NN_DT_F32, k_load(k, d->x, xi)), k_f32(k, 0.0));
}

/* The sum of t[0..n) (n >= 1, t overwritten) as a balanced tree of adds
 * (the taps of one output are independent products). */
static kx_id tree_sum(kernel *k, kx_id *t, int n) {
  while (n > 1) {
    int h = 0;
    for (int i = 0; i + 1 < n; i += 2) t[h++] = k_add(k, t[i], t[i + 1]);
    if (n % 2) t[h++] = t[n - 1];
    n = h;
  }
  return t[0];
}

/* dw_loop's loop over [lo, hi); `pairs`: with dw_pairs' extra loads (hi
 * must leave the last interior column out). */
static void dw_loop_n(dwk *d, kx_id lo, kx_id hi, bool rows, bool cols, bool pairs) {
  kernel *k = d->k;
  const kl_conv *cv = d->cv;
  int64_t a, b;
  if (k_const_i64(k, lo, &a) && k_const_i64(k, hi, &b) && a >= b) return;
  int32_t ow = k_for_begin(k, lo, hi, KS_VECTOR);
  kx_id *terms = nn_alloc(k->arena, sizeof(kx_id) * (size_t)(cv->kh * (cv->kw + 1) + 1));
  int nt = 0;
  terms[nt++] = d->bias;
  for (int64_t i = 0; i < cv->kh; i++) {
    for (int64_t j = 0; j < cv->kw; j++) {
      kx_id iw = k_add(k, k_muli(k, k_varref(k, ow), cv->sw), k_i64(k, j * cv->dw - cv->pw));
      kx_id ok = rows ? k_varref(k, d->rok[i]) : -1;
      kx_id xi = k_add(k, k_varref(k, d->rb[i]), iw);
      if (cols) {
        kx_id cok = k_bin(k, KX_AND, k_bin(k, KX_GE, iw, k_i64(k, 0)),
                          k_bin(k, KX_LT, iw, d->sz.w));
        ok = ok >= 0 ? k_bin(k, KX_AND, ok, cok) : cok;
        xi = k_select(k, ok, xi, k_varref(k, d->plane));
      }
      kx_id t = k_mul(k, k_varref(k, d->wv[i * cv->kw + j]),
                      k_cast(k, NN_DT_F32, k_load(k, d->x, xi)));
      if (ok >= 0) t = k_select(k, ok, t, k_f32(k, 0.0));
      terms[nt++] = t;
    }
    if (pairs) /* see dw_pairs; plane < 0 is never true */
      terms[nt++] = dw_unused(d, k_add(k, k_varref(k, d->rb[i]),
                                       k_add(k, k_muli(k, k_varref(k, ow), cv->sw),
                                             k_i64(k, cv->kw - cv->pw))));
  }
  dw_store(d, tree_sum(k, terms, nt), k_add(k, k_varref(k, d->dst), k_varref(k, ow)));
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
  kx_id mid = k_hoist(k, k_max(k, lo, k_sub(k, hi, k_i64(k, 1))));
  dw_loop_n(d, lo, mid, rows, false, true);
  dw_loop_n(d, mid, hi, rows, false, false);
}

/* A whole output row oh (dw_rows set): the columns whose taps are all
 * inside, and the checked columns either side. */
static void dw_row(dwk *d, kx_id owlo, kx_id owhi, bool rows) {
  dw_loop(d, k_i64(d->k, 0), owlo, rows, true);
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
  const kl_conv *cv = d->cv;
  nn_arena *ar = k->arena;
  int32_t *roff = nn_alloc(ar, sizeof(int32_t) * (size_t)cv->kh);
  for (int64_t i = 0; i < cv->kh; i++) /* x offset of tap (i, 0) from p*sw */
    roff[i] = k_let_i64(k, k_add(k, k_varref(k, d->plane),
                                 k_add(k, k_muli(k, d->sz.w, i * cv->dh - cv->ph),
                                       k_i64(k, -cv->pw))));
  /* column tests in f32 (the vectorizer takes int -> float conversions,
   * not float -> int): exact while P < 2^22, which the caller checks */
  int32_t inv = k_var(k, NN_DT_F32), wof = k_var(k, NN_DT_F32), wf = k_var(k, NN_DT_F32);
  int32_t hf = k_var(k, NN_DT_F32);
  if (checked) {
    k_let(k, wof, k_cast(k, NN_DT_F32, d->sz.wout));
    k_let(k, wf, k_cast(k, NN_DT_F32, d->sz.w));
    k_let(k, hf, k_cast(k, NN_DT_F32, d->sz.h));
    k_let(k, inv, k_bin(k, KX_DIV, k_f32(k, 1.0), k_varref(k, wof)));
  }
  int32_t p = k_for_begin(k, p0, p1, KS_VECTOR);
  kx_id *cok = nn_alloc(ar, sizeof(kx_id) * (size_t)cv->kw);
  for (int64_t j = 0; j < cv->kw; j++) cok[j] = -1;
  kx_id pf = k_cast(k, NN_DT_F32, k_varref(k, p));
  kx_id ohf = k_un(k, KX_FLOOR, k_mul(k, k_add(k, pf, k_f32(k, 0.5)), k_varref(k, inv)));
  kx_id ow = k_sub(k, pf, k_mul(k, ohf, k_varref(k, wof)));
  for (int64_t j = 0; checked && j < cv->kw; j++) {
    if (!rows && d->colmask >= 0) { /* from the table: one load per tap column */
      cok[j] = k_load(k, d->colmask, k_add(k, k_i64(k, j * d->P), k_varref(k, p)));
      continue;
    }
    kx_id iw = k_add(k, k_mul(k, ow, k_f32(k, (double)cv->sw)),
                     k_f32(k, (double)(j * cv->dw - cv->pw)));
    cok[j] = k_bin(k, KX_AND, k_bin(k, KX_GE, iw, k_f32(k, 0.0)),
                   k_bin(k, KX_LT, iw, k_varref(k, wf)));
  }
  kx_id xp = k_muli(k, k_varref(k, p), cv->sw);
  kx_id *terms = nn_alloc(ar, sizeof(kx_id) * (size_t)(cv->kh * cv->kw + 1));
  int nt = 0;
  terms[nt++] = d->bias;
  for (int64_t i = 0; i < cv->kh; i++) {
    kx_id rok = -1;
    if (rows) {
      kx_id ih = k_add(k, k_mul(k, ohf, k_f32(k, (double)cv->sh)),
                       k_f32(k, (double)(i * cv->dh - cv->ph)));
      rok = k_bin(k, KX_AND, k_bin(k, KX_GE, ih, k_f32(k, 0.0)),
                  k_bin(k, KX_LT, ih, k_varref(k, hf)));
    }
    for (int64_t j = 0; j < cv->kw; j++) {
      kx_id xi = k_add(k, k_add(k, k_varref(k, roff[i]), xp), k_i64(k, j * cv->dw));
      kx_id t = k_mul(k, k_varref(k, d->wv[i * cv->kw + j]),
                      k_cast(k, NN_DT_F32, k_load(k, d->x, xi)));
      kx_id ok = rok >= 0 && cok[j] >= 0 ? k_bin(k, KX_AND, rok, cok[j]) : cok[j];
      terms[nt++] = ok >= 0 ? k_select(k, ok, t, k_f32(k, 0.0)) : t;
    }
  }
  dw_store(d, tree_sum(k, terms, nt), k_add(k, obase, k_varref(k, p)));
  k_for_end(k);
}

/* The narrow rows' column tests as a table for dw_flat (fixed sizes W,
 * wout and P output positions): for every tap column j and position p,
 * whether the tap's input column (p % wout)*sw - pw + j*dw lies in [0, W).
 * Sets d->colmask and d->P. */
static void dw_colmask(kl_ctx *c, dwk *d, int64_t W, int64_t wout, int64_t P) {
  const kl_conv *cv = d->cv;
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
  const kx_id lo[2] = {k_i64(k, 0), ohhi}, hi[2] = {ohlo, d->sz.hout};
  for (int e = 0; e < 2; e++) {
    int64_t a, b;
    if (k_const_i64(k, lo[e], &a) && k_const_i64(k, hi[e], &b) && a >= b) continue;
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
int kl_conv_depthwise(kl_ctx *c, const kl_conv *cv) {
  if (cv->kh * cv->kw > DW_MAX_TAPS) return conv_depthwise_rows(c, cv);
  kernel *k = kl_kernel_ep(c, "conv_depthwise", cv->ep);
  nn_arena *ar = kl_arena(c);
  int64_t C = cv->cin, T = cv->kh * cv->kw;
  ir_dim P = kl_dmul(c, cv->hout, cv->wout);
  ir_dim oelems = kl_dmul(c, kl_dmuli(c, cv->n, C), P);
  ir_dim xelems = kl_dmul(c, kl_dmul(c, kl_dmuli(c, cv->n, C), cv->h), cv->w);
  dwk d = {.k = k, .cv = cv};
  d.out = k_buf(k, cv->dt, kl_elems(c, oelems), true, "out");
  d.x = k_buf(k, cv->dt, kl_elems(c, xelems), false, "x");
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
  d.e = cv->ep ? cv->ep->build(cv->ep->ctx, k, k_varref(k, d.acc), k_varref(k, d.idx))
               : k_varref(k, d.acc);
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
  int32_t nc = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, kl_dmuli(c, cv->n, C)), KS_PARALLEL);
  d.sz = kl_conv_sizes(c, k, cv);
  int32_t ch = k_let_i64(k, k_bin(k, KX_MOD, k_varref(k, nc), k_i64(k, C)));
  for (int64_t t = 0; t < T; t++)
    k_let(k, d.wv[t],
          k_cast(k, NN_DT_F32, k_load(k, w, k_add(k, k_muli(k, k_varref(k, ch), T), k_i64(k, t)))));
  d.bias = k_f32(k, 0.0);
  if (bias >= 0) {
    int32_t bv = k_var(k, NN_DT_F32);
    k_let(k, bv, k_cast(k, NN_DT_F32, k_load(k, bias, k_varref(k, ch))));
    d.bias = k_varref(k, bv);
  }
  k_let(k, d.plane, k_mul(k, k_varref(k, nc), k_mul(k, d.sz.h, d.sz.w)));
  d.obase = k_let_i64(k, k_mul(k, k_varref(k, nc), d.sz.P));
  /* the interior: outputs whose taps all lie inside the input */
  kx_id Wd = d.sz.w, Wo = d.sz.wout, Ho = d.sz.hout;
  kx_id owlo = k_hoist(k, dw_lo(k, cv->pw, cv->sw, Wo));
  kx_id owhi = k_hoist(k, dw_hi(k, Wd, cv->pw, cv->sw, cv->dw, cv->kw, owlo, Wo));
  kx_id ohlo = k_hoist(k, dw_lo(k, cv->ph, cv->sh, Ho));
  kx_id ohhi = k_hoist(k, dw_hi(k, d.sz.h, cv->ph, cv->sh, cv->dh, cv->kh, ohlo, Ho));
  /* the flat form: decided here for static sizes, else at run time */
  int64_t rlo, rhi, clo, chi, wn, won;
  int flat = -1; /* 1: always, 0: never, -1: when the run's sizes allow */
  if (k_const_i64(k, ohlo, &rlo) && k_const_i64(k, ohhi, &rhi) && k_const_i64(k, owlo, &clo) &&
      k_const_i64(k, owhi, &chi) && k_const_i64(k, Wd, &wn) && k_const_i64(k, Wo, &won))
    flat = rlo < rhi && clo < chi && cv->pw < wn && cv->sh * wn == cv->sw * won;
  if (flat < 0) {
    kx_id ok = k_bin(k, KX_EQ, k_muli(k, Wd, cv->sh), k_muli(k, Wo, cv->sw));
    ok = k_bin(k, KX_AND, ok, k_bin(k, KX_LT, ohlo, ohhi));
    ok = k_bin(k, KX_AND, ok, k_bin(k, KX_LT, owlo, owhi));
    ok = k_bin(k, KX_AND, ok, k_bin(k, KX_LT, k_i64(k, cv->pw), Wd));
    k_if_begin(k, ok);
  }
  if (flat != 0) {
    kx_id p0 = k_add(k, k_mul(k, ohlo, Wo), owlo);
    kx_id p1 = k_add(k, k_mul(k, k_sub(k, ohhi, k_i64(k, 1)), Wo), owhi);
    /* narrow rows: the border columns in the flat loop, checked per lane
     * (but for two positions the flat range leaves out); wide rows: the
     * flat loop unchecked, the border columns fixed row by row after it */
    int64_t wv, pv;
    int narrow = k_const_i64(k, Wo, &wv) && k_const_i64(k, d.sz.P, &pv)
                     ? wv < DW_NARROW && pv < DW_FLAT_MAX
                     : -1;
    if (flat == 1 && narrow == 1) dw_colmask(c, &d, wn, won, pv);
    if (narrow < 0)
      k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_LT, Wo, k_i64(k, DW_NARROW)),
                          k_bin(k, KX_LT, d.sz.P, k_i64(k, DW_FLAT_MAX))));
    if (narrow != 0) {
      /* a tiny plane with planes before and after it: all of it in the
       * flat loop, rows checked per lane too (its taps read at most
       * ph*W + pw before it and one plane after it) */
      kx_id hw = k_mul(k, d.sz.h, Wd);
      kx_id ext = k_add(k, k_muli(k, k_sub(k, d.sz.P, k_i64(k, 1)), cv->sw),
                        k_add(k, k_muli(k, Wd, (cv->kh - 1) * cv->dh - cv->ph),
                              k_i64(k, (cv->kw - 1) * cv->dw - cv->pw)));
      kx_id inner = k_bin(k, KX_AND, k_bin(k, KX_GE, k_varref(k, nc), k_i64(k, 1)),
                          k_bin(k, KX_LT, k_add(k, k_varref(k, nc), k_i64(k, 1)),
                                kl_dimx(c, k, kl_dmuli(c, cv->n, C))));
      inner = k_bin(k, KX_AND, inner,
                    k_bin(k, KX_LE, k_add(k, k_muli(k, Wd, cv->ph), k_i64(k, cv->pw)), hw));
      inner = k_bin(k, KX_AND, inner, k_bin(k, KX_LT, ext, k_muli(k, hw, 2)));
      inner = k_bin(k, KX_AND, inner, k_bin(k, KX_LT, Wo, k_i64(k, DW_TINY)));
      k_if_begin(k, inner);
      dw_flat(&d, k_varref(k, d.obase), k_i64(k, 0), d.sz.P, true, true);
      k_else(k);
      dw_flat(&d, k_varref(k, d.obase), p0, p1, true, false);
      const kx_id edge[2] = {ohlo, k_sub(k, ohhi, k_i64(k, 1))};
      for (int e = 0; e < 2; e++) {
        d.oh = k_let_i64(k, edge[e]);
        dw_rows(&d);
        if (e == 0)
          dw_loop(&d, k_i64(k, 0), owlo, false, true);
        else
          dw_loop(&d, owhi, Wo, false, true);
      }
      dw_border_rows(&d, ohlo, ohhi, owlo, owhi);
      k_if_end(k);
    }
    if (narrow < 0) k_else(k);
    if (narrow != 1) {
      dw_flat(&d, k_varref(k, d.obase), p0, p1, false, false);
      d.oh = k_for_begin(k, ohlo, ohhi, 0);
      dw_rows(&d);
      dw_loop(&d, k_i64(k, 0), owlo, false, true);
      dw_loop(&d, owhi, Wo, false, true);
      k_for_end(k);
      dw_border_rows(&d, ohlo, ohhi, owlo, owhi);
    }
    if (narrow < 0) k_if_end(k);
  }
  if (flat < 0) k_else(k);
  if (flat != 1) {
    d.oh = k_for_begin(k, k_i64(k, 0), Ho, 0);
    dw_rows(&d);
    int64_t a, b, h;
    bool all_rows = k_const_i64(k, ohlo, &a) && k_const_i64(k, ohhi, &b) &&
                    k_const_i64(k, Ho, &h) && a == 0 && b == h;
    if (!all_rows)
      k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_GE, k_varref(k, d.oh), ohlo),
                          k_bin(k, KX_LT, k_varref(k, d.oh), ohhi)));
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
