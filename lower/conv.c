/* conv.c — convolution: the dispatch, im2col + GEMM, and 1x1 as a GEMM.
 *
 * 1-d and 2-d, non-transposed. By shape:
 *  - depthwise (groups == cin == cout): a direct kernel
 *    (conv_depthwise.c);
 *  - 3x3 stride 1 where the target offers Winograd (enough input
 *    channels, f32, fixed sizes): F(2x2, 3x3) (conv_winograd.c);
 *  - 1x1 stride 1 unpadded: a GEMM on the input itself;
 *  - otherwise im2col into a scratch buffer (zeros for padded taps,
 *    computed from the window's valid range, no padded copy of the input)
 *    and a GEMM weight[Cout/g, Cin/g*kh*kw] @ col[.., Hout*Wout] per image
 *    and group. An f32 weight known at compile time is packed into panels
 *    of the target's pack_a rows (ks_gemm.a_panel). The GEMM also
 *    describes its B as the input's im2col (ks_gemm.im2col) and the im2col
 *    kernel says so (kernel.im2col_b): a backend that packs B from the
 *    image itself skips the im2col kernel (the LLVM backend does).
 * Channels and the kernel's size are numbers (the weight's shape); batch
 * and spatial sizes may be symbolic. A convolution with a symbolic batch
 * or size puts every image in one im2col buffer (the chunking by images
 * needs numbers).
 */
#include "lower.h"

#include <string.h>

kl_convx kl_conv_sizes(kl_ctx *c, kernel *k, const kl_conv *cv) {
  kl_convx x;
  x.h = k_hoist(k, kl_dimx(c, k, cv->h));
  x.w = k_hoist(k, kl_dimx(c, k, cv->w));
  x.hout = k_hoist(k, kl_dimx(c, k, cv->hout));
  x.wout = k_hoist(k, kl_dimx(c, k, cv->wout));
  x.P = k_mul(k, x.hout, x.wout);
  return x;
}

/* Valid output columns [lo, hi) of tap column j (a variable): those whose
 * input column ow*sw - pw + j*dw lies in [0, W). Sets the two variables. */
void kl_conv_tap_range(kernel *k, const kl_conv *cv, const kl_convx *sz, int32_t j, int32_t lo,
                       int32_t hi) {
  kx_id base = k_add(k, k_i64(k, cv->pw), k_muli(k, k_varref(k, j), -cv->dw)); /* pw - j*dw */
  kx_id l = k_bin(k, KX_FLOORDIV, k_add(k, base, k_i64(k, cv->sw - 1)), k_i64(k, cv->sw));
  k_let(k, lo, k_min(k, k_max(k, l, k_i64(k, 0)), sz->wout));
  kx_id h = k_add(k,
                  k_bin(k, KX_FLOORDIV, k_add(k, base, k_sub(k, sz->w, k_i64(k, 1))),
                        k_i64(k, cv->sw)),
                  k_i64(k, 1));
  k_let(k, hi, k_max(k, k_min(k, h, sz->wout), k_varref(k, lo)));
}

/* ih = oh*sh - ph + i*dh, and the condition 0 <= ih < H. */
kx_id kl_conv_row_in_range(kernel *k, const kl_convx *sz, int32_t ih) {
  return k_bin(k, KX_AND, k_bin(k, KX_GE, k_varref(k, ih), k_i64(k, 0)),
               k_bin(k, KX_LT, k_varref(k, ih), sz->h));
}

void kl_store_zeros(kernel *k, int32_t buf, nn_dtype dt, int32_t dst, kx_id lo, kx_id hi) {
  int32_t ow = k_for_begin(k, lo, hi, KS_VECTOR);
  k_store(k, buf, k_add(k, k_varref(k, dst), k_varref(k, ow)), k_const_f(k, dt, 0.0));
  k_for_end(k);
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
static void conv_im2col_flat(kernel *k, const kl_conv *cv, const kl_convx *sz, int32_t o, int32_t x,
                             int32_t r, int32_t plane, int32_t i, int32_t j, int32_t lo,
                             int32_t hi) {
  int32_t rlo = k_var(k, NN_DT_I64), rhi = k_var(k, NN_DT_I64), dst = k_var(k, NN_DT_I64);
  int32_t ps = k_var(k, NN_DT_I64), pe = k_var(k, NN_DT_I64), src = k_var(k, NN_DT_I64);
  /* the tap row ih = oh + dr is inside for oh in [rlo, rhi) */
  kx_id dr = k_add(k, k_muli(k, k_varref(k, i), cv->dh), k_i64(k, -cv->ph));
  k_let(k, rlo, k_min(k, k_max(k, k_sub(k, k_i64(k, 0), dr), k_i64(k, 0)), sz->h));
  k_let(k, rhi, k_max(k, k_min(k, k_sub(k, sz->h, dr), sz->h), k_varref(k, rlo)));
  k_let(k, dst, k_mul(k, k_varref(k, r), sz->P));
  k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_LT, k_varref(k, lo), k_varref(k, hi)),
                      k_bin(k, KX_LT, k_varref(k, rlo), k_varref(k, rhi))));
  k_let(k, ps, k_add(k, k_mul(k, k_varref(k, rlo), sz->w), k_varref(k, lo)));
  k_let(k, pe, k_add(k, k_mul(k, k_sub(k, k_varref(k, rhi), k_i64(k, 1)), sz->w), k_varref(k, hi)));
  /* p reads x[plane, p / W + dr, p % W + dc], dc = j*dw - pw */
  k_let(k, src,
        k_add(k, k_mul(k, k_add(k, k_mul(k, k_varref(k, plane), sz->h), dr), sz->w),
              k_add(k, k_muli(k, k_varref(k, j), cv->dw), k_i64(k, -cv->pw))));
  kl_store_zeros(k, o, cv->dt, dst, k_i64(k, 0), k_varref(k, ps));
  int32_t p = k_for_begin(k, k_varref(k, ps), k_varref(k, pe), KS_VECTOR);
  k_store(k, o, k_add(k, k_varref(k, dst), k_varref(k, p)),
          k_load(k, x, k_add(k, k_varref(k, src), k_varref(k, p))));
  k_for_end(k);
  kl_store_zeros(k, o, cv->dt, dst, k_varref(k, pe), sz->P);
  /* the run's columns outside [lo, hi): scalar loops of a few elements */
  int32_t oh = k_for_begin(k, k_varref(k, rlo), k_varref(k, rhi), 0);
  kx_id row = k_add(k, k_varref(k, dst), k_mul(k, k_varref(k, oh), sz->w));
  int32_t c0 = k_for_begin(k, k_i64(k, 0), k_varref(k, lo), 0);
  k_store(k, o, k_add(k, row, k_varref(k, c0)), k_const_f(k, cv->dt, 0.0));
  k_for_end(k);
  int32_t c1 = k_for_begin(k, k_varref(k, hi), sz->w, 0);
  k_store(k, o, k_add(k, row, k_varref(k, c1)), k_const_f(k, cv->dt, 0.0));
  k_for_end(k);
  k_for_end(k); /* oh */
  k_else(k);
  kl_store_zeros(k, o, cv->dt, dst, k_i64(k, 0), sz->P);
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
static void conv_im2col(kl_ctx *c, const kl_conv *cv, kp_bufid col, int64_t n0, ir_dim nimg) {
  kernel *k = kl_kernel(c, "im2col");
  k->im2col_b = cv->dt == NN_DT_F32; /* conv_gemm describes B (gim) */
  int64_t G = cv->groups, Cg = cv->cin / G, Kc = Cg * cv->kh * cv->kw;
  ir_dim P = kl_dmul(c, cv->hout, cv->wout);
  ir_dim rows = kl_dmuli(c, nimg, G * Kc);
  int32_t o = k_buf(k, cv->dt, kl_elems(c, kl_dmul(c, rows, P)), true, "col");
  int32_t x = k_buf(k, cv->dt,
                    kl_elems(c, kl_dmul(c, kl_dmul(c, kl_dmuli(c, cv->n, cv->cin), cv->h), cv->w)),
                    false, "x");
  kl_bind(c, k, o, col);
  kl_bind(c, k, x, cv->x);
  int32_t ih = k_var(k, NN_DT_I64), dst = k_var(k, NN_DT_I64), src = k_var(k, NN_DT_I64);
  int32_t lo = k_var(k, NN_DT_I64), hi = k_var(k, NN_DT_I64);
  int32_t r = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, rows), KS_PARALLEL);
  kl_convx sz = kl_conv_sizes(c, k, cv);
  kx_id rr = k_bin(k, KX_MOD, k_varref(k, r), k_i64(k, Kc));
  int32_t plane =
      k_let_i64(k, k_add(k, k_i64(k, n0 * cv->cin),
                         k_add(k, k_muli(k, k_bin(k, KX_DIV, k_varref(k, r), k_i64(k, Kc)), Cg),
                               k_bin(k, KX_DIV, rr, k_i64(k, cv->kh * cv->kw)))));
  int32_t i = k_let_i64(k, k_bin(k, KX_MOD, k_bin(k, KX_DIV, k_varref(k, r), k_i64(k, cv->kw)),
                                 k_i64(k, cv->kh)));
  int32_t j = k_let_i64(k, k_bin(k, KX_MOD, k_varref(k, r), k_i64(k, cv->kw)));
  kl_conv_tap_range(k, cv, &sz, j, lo, hi);
  if (cv->sh == 1 && cv->sw == 1 && cv->hout == cv->h && cv->wout == cv->w) {
    conv_im2col_flat(k, cv, &sz, o, x, r, plane, i, j, lo, hi);
    k_for_end(k); /* r */
    return;
  }
  int32_t oh = k_for_begin(k, k_i64(k, 0), sz.hout, 0);
  k_let(k, ih,
        k_add(k, k_muli(k, k_varref(k, oh), cv->sh),
              k_add(k, k_i64(k, -cv->ph), k_muli(k, k_varref(k, i), cv->dh))));
  k_let(k, dst, k_add(k, k_mul(k, k_varref(k, r), sz.P), k_mul(k, k_varref(k, oh), sz.wout)));
  k_if_begin(k, kl_conv_row_in_range(k, &sz, ih));
  k_let(k, src,
        k_add(k, k_mul(k, k_add(k, k_mul(k, k_varref(k, plane), sz.h), k_varref(k, ih)), sz.w),
              k_add(k, k_i64(k, -cv->pw), k_muli(k, k_varref(k, j), cv->dw))));
  kl_store_zeros(k, o, cv->dt, dst, k_i64(k, 0), k_varref(k, lo));
  int32_t ow = k_for_begin(k, k_varref(k, lo), k_varref(k, hi), KS_VECTOR);
  k_store(k, o, k_add(k, k_varref(k, dst), k_varref(k, ow)),
          k_load(k, x, k_add(k, k_varref(k, src), k_muli(k, k_varref(k, ow), cv->sw))));
  k_for_end(k);
  kl_store_zeros(k, o, cv->dt, dst, k_varref(k, hi), sz.wout);
  k_else(k);
  kl_store_zeros(k, o, cv->dt, dst, k_i64(k, 0), sz.wout);
  k_if_end(k);
  k_for_end(k); /* oh */
  k_for_end(k); /* r */
}

/* The weight of a GEMM convolution: an f32 weight known at compile time
 * is packed, per group, in panels of PACK_A rows [G][ceil(Mg/PACK_A)][Kc]
 * [PACK_A] (zero rows past Mg), which replaces the plain weight in the
 * blob; anything else is used as it is. Sets cv->wt and cv->a_panel. */
static void pack_conv_weight(kl_ctx *c, kl_conv *cv, ir_value w) {
  const unsigned char *wd = cv->dt == NN_DT_F32 ? kl_weight_data(c, w) : NULL;
  int64_t G = cv->groups, Mg = cv->cout / G;
  int64_t Kc = cv->cin / G * cv->kh * cv->kw;
  cv->a_panel = 0;
  if (!wd || Mg <= 1) {
    cv->wt = kl_value_buf(c, w);
    return;
  }
  const int PACK_A = kl_tg(c)->pack_a;
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
static int conv_gemm(const kl_gop *l, const kl_conv *cv, kp_bufid bbuf, ir_dim belems,
                     bool b_is_col, int64_t n0, ir_dim nimg) {
  kl_ctx *c = l->c;
  int64_t G = cv->groups, Cg = cv->cin / G, Mg = cv->cout / G;
  int64_t Kc = Cg * cv->kh * cv->kw;
  ir_dim P = kl_dmul(c, cv->hout, cv->wout);
  kl_gspec s = kl_gspec_new(l);
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
  s.celems = kl_dmul(c, kl_dmuli(c, cv->n, cv->cout), P);
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
  s.bstr[0] = kl_dmuli(c, P, G * Kc);
  s.bstr[1] = kl_dmuli(c, P, Kc); /* == Cin*P, Cg*P for 1x1 */
  s.b0 = b_is_col ? kl_d(c, 0) : kl_dmuli(c, P, n0 * cv->cin);
  s.cstr[0] = kl_dmuli(c, P, cv->cout);
  s.cstr[1] = kl_dmuli(c, P, Mg);
  s.c0 = kl_dmuli(c, P, n0 * cv->cout);
  if (cv->bias >= 0) {
    s.biasbuf = cv->bias;
    s.biaselems = kl_d(c, cv->cout);
    s.biasstr[0] = kl_d(c, 0);
    s.biasstr[1] = kl_d(c, Mg);
    s.bias_rs = kl_d(c, 1);
    s.bias_cs = kl_d(c, 0);
  }
  kl_gim im;
  if (b_is_col && cv->dt == NN_DT_F32) { /* B is also the image's im2col */
    ir_dim plane = kl_dmul(c, cv->h, cv->w);
    im = (kl_gim){.x = cv->x,
                  .xelems = kl_dmul(c, kl_dmuli(c, cv->n, cv->cin), plane),
                  .x0 = kl_dmuli(c, plane, n0 * cv->cin),
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
    im.xstr[0] = kl_dmuli(c, plane, cv->cin);
    im.xstr[1] = kl_dmuli(c, plane, Cg);
    s.im = &im;
  }
  if (!kl_gspec_ok(l, &s)) return -1;
  return kl_gemm_kernel(c, "conv_gemm", &s);
}

static int lower_conv(const kl_gop *l) {
  kl_ctx *c = l->c;
  ir_node *n = l->node;
  ir_dim xd[16], wd[16], bd[16], od[16];
  int xr = kl_gop_shape(l, n->in[0], xd), wr = kl_gop_shape(l, n->in[1], wd);
  int orank = kl_gop_shape(l, n->out[0], od);
  if (xr < 0 || wr < 0 || orank < 0) return -1;
  const ir_const *tr;
  if (!ir_value_const(l->g, n->in[6], &tr) || tr->kind != IR_C_BOOL)
    return kl_gop_shape_error(l, "'transposed' must be a constant bool");
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
  if (kl_gop_ints(l, n->in[3], nsp, "stride", st) < 0 ||
      kl_gop_ints(l, n->in[4], nsp, "padding", pad) < 0 ||
      kl_gop_ints(l, n->in[5], nsp, "dilation", dil) < 0 || kl_gop_scalar(l, n->in[8], &groups) < 0)
    return -1;
  /* channels and the kernel's size are numbers (the weight's shape) */
  int64_t wnum[4];
  for (int i = 0; i < wr; i++)
    if (!kl_dim_const(c, wd[i], &wnum[i])) return kl_gop_sym_error(l, wd[i]);
  int64_t cin;
  if (!kl_dim_const(c, xd[1], &cin)) return kl_gop_sym_error(l, xd[1]);
  kl_conv cv = {.n = xd[0], .cin = cin, .cout = wnum[0], .groups = (int64_t)groups};
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
      !kl_dis(c, od[1], cv.cout) || cv.sh < 1 || cv.sw < 1 || cv.dh < 1 || cv.dw < 1 || cv.ph < 0 ||
      cv.pw < 0)
    return kl_gop_shape_error(l, "inconsistent convolution shapes or parameters");
  /* the output size: checked when static; a symbolic one is shape
   * inference's floor-division expression, taken as it is */
  int64_t h, w, hout, wout;
  if (kl_dim_const(c, cv.h, &h) && kl_dim_const(c, cv.w, &w) && kl_dim_const(c, cv.hout, &hout) &&
      kl_dim_const(c, cv.wout, &wout) &&
      (hout != (h + 2 * cv.ph - cv.dh * (cv.kh - 1) - 1) / cv.sh + 1 ||
       wout != (w + 2 * cv.pw - cv.dw * (cv.kw - 1) - 1) / cv.sw + 1))
    return kl_gop_shape_error(l, "output size does not match the convolution's parameters");
  cv.x = kl_value_buf(c, n->in[0]);
  cv.wt = -1; /* the weight's buffer: plain or packed, below */
  cv.out = kl_gop_result(l);
  cv.ep = l->ep;
  cv.dt = l->dt;
  cv.bias = -1;
  if (!kl_gop_none(l, n->in[2])) {
    int br = kl_gop_shape(l, n->in[2], bd);
    if (br < 0) return -1;
    if (br != 1 || !kl_dis(c, bd[0], cv.cout))
      return kl_gop_shape_error(l, "bias must have one value per output channel");
    cv.bias = kl_value_buf(c, n->in[2]);
  }
  ir_dim P = kl_dmul(c, cv.hout, cv.wout);
  ir_dim xelems = kl_dmul(c, kl_dmul(c, kl_dmuli(c, cv.n, cv.cin), cv.h), cv.w);
  if (kl_dis(c, cv.n, 0) || kl_dis(c, P, 0) || cv.cout == 0) return 1;
  if (P == IR_DIM_UNKNOWN || xelems == IR_DIM_UNKNOWN)
    return kl_gop_shape_error(l, "a size of the convolution is too complex an expression");
  if (G == cv.cin && cv.cout == cv.cin) {
    cv.wt = kl_value_buf(c, n->in[1]);
    return kl_conv_depthwise(c, &cv);
  }
  int64_t wn, wh, ww, who, wwo;
  const unsigned char *wdata;
  if (kl_wino_fits(c, &cv, &wn, &wh, &ww, &who, &wwo) && (wdata = kl_weight_data(c, n->in[1])))
    return kl_conv_winograd(l, &cv, wdata, wn, wh, ww, who, wwo) < 0 ? -1 : 1;
  pack_conv_weight(c, &cv, n->in[1]);
  if (cv.kh == 1 && cv.kw == 1 && cv.sh == 1 && cv.sw == 1 && cv.ph == 0 && cv.pw == 0) {
    return conv_gemm(l, &cv, cv.x, xelems, false, 0, cv.n);
  }
  ir_dim per_img = kl_dmuli(c, P, cv.cin * cv.kh * cv.kw);
  int64_t N, per;
  if (!kl_dim_const(c, cv.n, &N) || !kl_dim_const(c, per_img, &per)) {
    /* symbolic: every image in one im2col buffer (the chunking below
     * needs numbers) */
    kp_bufid col = kl_scratch_d(c, cv.dt, kl_dmul(c, cv.n, per_img));
    conv_im2col(c, &cv, col, 0, cv.n);
    return conv_gemm(l, &cv, col, kl_dmul(c, cv.n, per_img), true, 0, cv.n) < 0 ? -1 : 1;
  }
  int64_t chunk = IM2COL_MAX_ELEMS / (per ? per : 1);
  if (chunk < 1) chunk = 1;
  if (chunk > N) chunk = N;
  kp_bufid col = kl_scratch(c, cv.dt, chunk * per);
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    int64_t nimg = N - n0 < chunk ? N - n0 : chunk;
    conv_im2col(c, &cv, col, n0, kl_d(c, nimg));
    if (conv_gemm(l, &cv, col, kl_d(c, chunk * per), true, n0, kl_d(c, nimg)) < 0) return -1;
  }
  return 1;
}

int kl_lower_conv(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  kl_gop l = kl_gop_of(c, id, ep);
  return lower_conv(&l) < 0 ? -1 : 0;
}
