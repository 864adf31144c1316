/* resize.c — upsample/interpolate: nearest, nearest-exact, linear (1-3
 * dims: linear, bilinear, trilinear) and cubic (2 dims: bicubic).
 *
 * One kernel, a loop nest over the output; per resized dim the source
 * coordinate is computed in f32 (f64 for f64 data) as PyTorch's CPU
 * kernels do:
 *   ratio   align_corners: (in-1)/(out-1) (0 when out is 1); else 1/scale
 *           when a scale factor was given, else in/out;
 *   nearest src = min(floor(dst*ratio), in-1); nearest-exact uses dst+0.5;
 *   linear  src = align ? ratio*dst : max(ratio*(dst+0.5)-0.5, 0), taps
 *           floor(src) and the next one (the last index repeats), weights
 *           1-t and t;
 *   cubic   the same src unclamped, taps floor(src)-1..+2 clamped into
 *           [0, in), Keys' weights with A = -0.75.
 * The output element is the sum over the product of every dim's taps
 * (2^k loads for linear, 16 for bicubic).
 */
#include "lower.h"

#include <string.h>

enum { RS_NEAREST, RS_NEAREST_EXACT, RS_LINEAR, RS_CUBIC };

typedef struct rdim {
  int ntaps;
  kx_id idx[4]; /* i64 source indices */
  kx_id w[4];   /* f32 weights (-1 for nearest: weight 1) */
} rdim;

/* a constant of the compute type (f64 for f64 data, else f32) */
static kx_id F(kernel *k, nn_dtype ct, double v) { return k_const_f(k, ct, v); }

/* The ratio of one dim, as an expression of the compute type (constants
 * rounded to f32 as PyTorch's float kernels compute them). */
static kx_id ratio_of(kl_ctx *c, kernel *k, nn_dtype ct, ir_dim in, ir_dim out, bool align,
                      bool has_scale, double scale) {
  int64_t i, o;
  bool known = kl_dim_const(c, in, &i) && kl_dim_const(c, out, &o);
  if (align) {
    if (known) return F(k, ct, o > 1 ? (float)(i - 1) / (float)(o - 1) : 0.0);
    kx_id om1 = kl_xt(c, k, kl_daddi(c, out, -1), ct);
    kx_id r = k_bin(k, KX_DIV, kl_xt(c, k, kl_daddi(c, in, -1), ct),
                    k_bin(k, KX_MAX, om1, F(k, ct, 1)));
    return k_select(k, k_bin(k, KX_GT, om1, F(k, ct, 0)), r, F(k, ct, 0));
  }
  if (has_scale && scale > 0) return F(k, ct, (float)(1.0 / scale));
  if (known) return F(k, ct, (float)i / (float)(o ? o : 1));
  return k_bin(k, KX_DIV, kl_xt(c, k, in, ct), kl_xt(c, k, out, ct));
}

/* Keys' cubic convolution kernel (A = -0.75) at distance x: for x in
 * [0, 1] ((A+2)x - (A+3))x^2 + 1, for x in [1, 2] ((Ax - 5A)x + 8A)x - 4A. */
static const double KEYS_A = -0.75;

static kx_id keys_near(kernel *k, nn_dtype ct, kx_id x) {
  kx_id p = k_bin(k, KX_SUB, k_bin(k, KX_MUL, F(k, ct, KEYS_A + 2), x), F(k, ct, KEYS_A + 3));
  return k_bin(k, KX_ADD, k_bin(k, KX_MUL, p, k_bin(k, KX_MUL, x, x)), F(k, ct, 1));
}

static kx_id keys_far(kernel *k, nn_dtype ct, kx_id x) {
  kx_id p = k_bin(k, KX_SUB, k_bin(k, KX_MUL, F(k, ct, KEYS_A), x), F(k, ct, 5 * KEYS_A));
  p = k_bin(k, KX_ADD, k_bin(k, KX_MUL, p, x), F(k, ct, 8 * KEYS_A));
  return k_bin(k, KX_SUB, k_bin(k, KX_MUL, p, x), F(k, ct, 4 * KEYS_A));
}

/* The four weights for the fraction t (taps at distances 1+t, t, 1-t, 2-t). */
static void cubic_weights(kernel *k, nn_dtype ct, kx_id t, kx_id *w) {
  kx_id one = F(k, ct, 1);
  kx_id u = k_bin(k, KX_SUB, one, t);
  w[0] = keys_far(k, ct, k_bin(k, KX_ADD, t, one));
  w[1] = keys_near(k, ct, t);
  w[2] = keys_near(k, ct, u);
  w[3] = keys_far(k, ct, k_bin(k, KX_ADD, u, one));
}

static int lower_resize(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_dim od[KL_MAXR], xd[KL_MAXR];
  int orank = kl_vshape(c, n->out[0], od), xr = kl_vshape(c, n->in[0], xd);
  if (orank < 0 || xr != orank) return kl_unsupported(c);
  const char *mode = kl_cstr(c, 3);
  if (!mode) return kl_unsupported(c);
  int m = !strcmp(mode, "nearest")         ? RS_NEAREST
          : !strcmp(mode, "nearest-exact") ? RS_NEAREST_EXACT
          : !strcmp(mode, "linear")        ? RS_LINEAR
          : !strcmp(mode, "cubic")         ? RS_CUBIC
                                           : -1;
  if (m < 0) return kl_fail(c, "upsample: mode \"%s\" is not supported", mode);
  int nsp = 0;
  const int64_t *osz;
  const ir_const *sc = kl_is_none(c, 2) ? NULL : kl_cst(c, 2);
  if (!kl_is_none(c, 1) && kl_clist(c, 1, &osz, &nsp)) {
  } else if (sc && sc->kind == IR_C_FLOATLIST) {
    nsp = sc->n;
  } else {
    return kl_unsupported(c);
  }
  if (nsp < 1 || nsp > 3 || nsp > xr - 2 || (m == RS_CUBIC && nsp != 2)) return kl_unsupported(c);
  bool align = false;
  if (m >= RS_LINEAR && !kl_is_none(c, 4)) {
    const ir_const *ac = kl_cst(c, 4);
    if (!ac || ac->kind != IR_C_BOOL) return kl_unsupported(c);
    align = ac->i != 0;
  }
  nn_dtype dt = kl_vdtype(c, n->out[0]);
  nn_dtype ct = dt == NN_DT_F64 ? NN_DT_F64 : NN_DT_F32;
  kernel *k = kl_kernel(c, "upsample");
  int32_t os = kl_wslot(c, k, dt, kl_numel(c, orank, od), kl_value_buf(c, n->out[0]), "out");
  int32_t xs = kl_vslot(c, k, n->in[0], "x");
  kx_id iv[KL_MAXR];
  int nl = kl_nest(c, k, orank, od, iv, true, true, 0);
  rdim rd[3];
  for (int j = 0; j < nsp; j++) {
    int d = xr - nsp + j;
    bool has = sc && sc->kind == IR_C_FLOATLIST && j < sc->n;
    kx_id ratio = ratio_of(c, k, ct, xd[d], od[d], align, has, has ? sc->floats[j] : 0);
    kx_id dst = k_cast(k, ct, iv[d]), last = kl_x(c, k, kl_daddi(c, xd[d], -1));
    rdim *r = &rd[j];
    if (m == RS_NEAREST || m == RS_NEAREST_EXACT) {
      if (m == RS_NEAREST_EXACT) dst = k_bin(k, KX_ADD, dst, F(k, ct, 0.5));
      kx_id s = k_cast(k, NN_DT_I64, k_un(k, KX_FLOOR, k_bin(k, KX_MUL, dst, ratio)));
      r->ntaps = 1;
      r->idx[0] = k_bin(k, KX_MIN, s, last);
      r->w[0] = -1;
      continue;
    }
    kx_id src = align ? k_bin(k, KX_MUL, ratio, dst)
                      : k_bin(k, KX_SUB,
                              k_bin(k, KX_MUL, ratio, k_bin(k, KX_ADD, dst, F(k, ct, 0.5))),
                              F(k, ct, 0.5));
    if (m == RS_LINEAR) {
      if (!align) src = k_bin(k, KX_MAX, src, F(k, ct, 0));
      kx_id i0 = k_cast(k, NN_DT_I64, k_un(k, KX_FLOOR, src));
      kx_id t = k_bin(k, KX_SUB, src, k_cast(k, ct, i0));
      r->ntaps = 2;
      r->idx[0] = k_bin(k, KX_MIN, i0, last);
      r->idx[1] = k_bin(k, KX_MIN, k_bin(k, KX_ADD, i0, k_i64(k, 1)), last);
      r->w[0] = k_bin(k, KX_SUB, F(k, ct, 1), t);
      r->w[1] = t;
    } else {
      kx_id fl = k_un(k, KX_FLOOR, src);
      kx_id i0 = k_cast(k, NN_DT_I64, fl);
      kx_id t = k_bin(k, KX_SUB, src, fl);
      r->ntaps = 4;
      for (int q = 0; q < 4; q++)
        r->idx[q] = k_bin(k, KX_MIN,
                          k_bin(k, KX_MAX, k_bin(k, KX_ADD, i0, k_i64(k, q - 1)), k_i64(k, 0)),
                          last);
      cubic_weights(k, ct, t, r->w);
    }
  }
  /* the sum over every combination of taps */
  int total = 1;
  for (int j = 0; j < nsp; j++) total *= rd[j].ntaps;
  ir_dim st[KL_MAXR];
  kl_cstrides(c, xr, xd, st);
  kx_id acc = -1;
  for (int combo = 0; combo < total; combo++) {
    kx_id xc[KL_MAXR], w = -1;
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0, rest = combo; j < nsp; j++) {
      int q = rest % rd[j].ntaps;
      rest /= rd[j].ntaps;
      xc[xr - nsp + j] = rd[j].idx[q];
      if (rd[j].w[q] >= 0) w = w < 0 ? rd[j].w[q] : k_bin(k, KX_MUL, w, rd[j].w[q]);
    }
    kx_id v = k_load(k, xs, kl_lin(c, k, xr, xc, st));
    if (w >= 0) v = k_bin(k, KX_MUL, k_cast(k, ct, v), w);
    acc = acc < 0 ? v : k_bin(k, KX_ADD, acc, v);
  }
  ir_dim ost[KL_MAXR];
  kl_cstrides(c, orank, od, ost);
  k_store(k, os, kl_lin(c, k, orank, iv, ost), k_cast(k, dt, acc));
  kl_nest_end(k, nl);
  return 1;
}

int kl_lower_resize(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_resize(c));
}
