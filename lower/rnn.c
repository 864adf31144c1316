/* rnn.c — one recurrent layer in one direction (rnn_scan) as one kernel.
 *
 * The input projection of every time step is already computed (a linear
 * over T*B rows that the frontend put before this node), so what is left
 * is the recurrence, serial in time:
 *
 *   h = h0; c = c0
 *   for t in 0..T (T-1..0 when reverse):
 *     G = h @ w_hh^T + b_hh                      one GEMM [B, P] x [P, G*H]
 *     per (b, j < H): the gate math on G and xp[t]; new c, h; y[t] = h
 *     (LSTM with a projection: h = h_full @ w_hr^T, a second GEMM)
 *   h_n = h; c_n = c
 *
 * The states live in f32 workspace (the op is on fp16's deny list, so the
 * operands are f32 too). The gate formulas are PyTorch's:
 *   lstm  i f g o = σ σ tanh σ of (xp + G) by quarter; c' = f c + i g;
 *         h' = o tanh(c')
 *   gru   r z = σ of (xp + G) by third; n = tanh(xp_n + r G_n) (b_hn sits
 *         inside the product, as in PyTorch); h' = (1 - z) n + z h
 *   rnn   h' = tanh(xp + G) or relu(xp + G)
 */
#include "lower.h"

#include <string.h>

static kx_id cf(kernel *k, double v) { return k_const_f(k, NN_DT_F32, v); }

static kx_id sigmoid(kernel *k, kx_id x) {
  return k_bin(k, KX_DIV, cf(k, 1), k_add(k, cf(k, 1), k_un(k, KX_EXP, k_un(k, KX_NEG, x))));
}

/* w[N, K] as a GEMM's B operand w^T (packed at compile time when it is a
 * weight: kl_gspec_wt); call before the kernel reading it is made. */
static int pack_wt(kl_ctx *c, ir_value w, int64_t N, int64_t K, kl_gspec *s) {
  memset(s, 0, sizeof *s);
  s->dt = NN_DT_F32;
  return kl_gspec_wt(c, w, kl_d(c, N), kl_d(c, K), s);
}

/* C[m, n] = sum_k A[m, k] * B[k, n] (+ bias[n]) over f32 slots, B as pack_wt
 * made it (slot w bound to its buffer). */
static void gemm_wt(kl_ctx *c, kernel *k, int32_t a, int32_t w, const kl_gspec *ws, int32_t out,
                    int32_t bias, ir_dim M, int64_t N, int64_t K) {
  ks_gemm g;
  memset(&g, 0, sizeof g);
  g.a = a;
  g.b = w;
  g.c = out;
  g.a_off = g.b_off = g.c_off = k_i64(k, 0);
  g.m = kl_dimx(c, k, M);
  g.n = k_i64(k, N);
  g.k = k_i64(k, K);
  g.a_rs = k_i64(k, K);
  g.a_cs = k_i64(k, 1);
  g.b_rs = kl_dimx(c, k, ws->b_rs);
  g.b_cs = kl_dimx(c, k, ws->b_cs);
  g.b_panel = ws->b_panel;
  g.b_is_weight = ws->b_is_weight;
  g.ldc = k_i64(k, N);
  g.alpha = 1;
  g.bias = bias;
  if (bias >= 0) {
    g.bias_off = k_i64(k, 0);
    g.bias_rs = k_i64(k, 0);
    g.bias_cs = k_i64(k, 1);
    g.beta = 1;
  } else {
    g.bias_off = -1;
  }
  k_gemm(k, &g);
}

/* for b < B, j < n: dst[b*n + j] = src[b*n + j] */
static void copy_rows(kl_ctx *c, kernel *k, int32_t dst, int32_t src, ir_dim B, int64_t n) {
  int32_t b = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, B), 0);
  int32_t j = k_for_begin(k, k_i64(k, 0), k_i64(k, n), KS_VECTOR);
  kx_id at = k_add(k, k_muli(k, k_varref(k, b), n), k_varref(k, j));
  k_store(k, dst, at, k_load(k, src, at));
  k_for_end(k);
  k_for_end(k);
}

int kl_lower_rnn(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  (void)ep;
  ir_node *n = kl_cur(c);
  (void)id;
  const char *mode = kl_cstr(c, 6);
  int64_t rev = 0;
  if (!mode || !kl_cint(c, 7, &rev)) return kl_unsupported(c);
  bool lstm = !strcmp(mode, "lstm"), gru = !strcmp(mode, "gru");
  bool relu = !strcmp(mode, "rnn_relu");
  int64_t gates = lstm ? 4 : gru ? 3 : 1;
  ir_dim xd[KL_MAXR], wd[KL_MAXR], hd[KL_MAXR];
  if (kl_shape_d(c, n->in[0], xd) != 3 || kl_shape_d(c, n->in[3], wd) != 2 ||
      kl_shape_d(c, n->in[1], hd) != 2)
    return kl_unsupported(c);
  for (int i = 0; i < 6; i++)
    if (!kl_is_none(c, i) && kl_vdtype(c, n->in[i]) != NN_DT_F32) return kl_unsupported(c);
  int64_t GH, P;
  if (!kl_dim_const(c, wd[0], &GH)) return kl_symbolic(c, wd[0]);
  if (!kl_dim_const(c, wd[1], &P)) return kl_symbolic(c, wd[1]);
  int64_t H = GH / gates;
  ir_dim T = xd[0], B = hd[0];
  bool proj = !kl_is_none(c, 5), bias = !kl_is_none(c, 4);

  kl_gspec whh, whr;
  if (pack_wt(c, n->in[3], GH, P, &whh) < 0 || (proj && pack_wt(c, n->in[5], P, H, &whr) < 0))
    return -1;
  kernel *k = kl_kernel(c, lstm ? "lstm_scan" : gru ? "gru_scan" : "rnn_scan");
  int32_t sx = kl_vslot(c, k, n->in[0], "xp");
  int32_t sh0 = kl_vslot(c, k, n->in[1], "h0");
  int32_t sc0 = lstm ? kl_vslot(c, k, n->in[2], "c0") : -1;
  int32_t sw = k_buf(k, NN_DT_F32, kl_elems(c, whh.belems), false, "w_hh");
  kl_bind(c, k, sw, whh.bbuf);
  int32_t sb = bias ? kl_vslot(c, k, n->in[4], "b_hh") : -1;
  int32_t swr = -1;
  if (proj) {
    swr = k_buf(k, NN_DT_F32, kl_elems(c, whr.belems), false, "w_hr");
    kl_bind(c, k, swr, whr.bbuf);
  }
  ir_dim BP = kl_dmuli(c, B, P), BH = kl_dmuli(c, B, H);
  int32_t sy = kl_wslot(c, k, NN_DT_F32, kl_dmul(c, T, BP), kl_value_buf(c, n->out[0]), "y");
  int32_t shn = kl_wslot(c, k, NN_DT_F32, BP, kl_value_buf(c, n->out[1]), "h_n");
  ir_dim cn_elems = lstm ? BH : BP;
  int32_t scn = kl_wslot(c, k, NN_DT_F32, cn_elems, kl_value_buf(c, n->out[2]), "c_n");
  int32_t sh = kl_wslot(c, k, NN_DT_F32, BP, kl_scratch_d(c, NN_DT_F32, BP), "h");
  int32_t sg = kl_wslot(c, k, NN_DT_F32, kl_dmuli(c, B, GH),
                        kl_scratch_d(c, NN_DT_F32, kl_dmuli(c, B, GH)), "gates");
  int32_t scs = lstm ? kl_wslot(c, k, NN_DT_F32, BH, kl_scratch_d(c, NN_DT_F32, BH), "c") : -1;
  int32_t shf = proj ? kl_wslot(c, k, NN_DT_F32, BH, kl_scratch_d(c, NN_DT_F32, BH), "h_full") : -1;

  copy_rows(c, k, sh, sh0, B, P);
  if (lstm) copy_rows(c, k, scs, sc0, B, H);
  int32_t t = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, T), 0);
  kx_id tt = k_varref(k, t);
  if (rev) tt = k_sub(k, k_sub(k, kl_dimx(c, k, T), k_i64(k, 1)), tt);
  tt = k_varref(k, k_let_i64(k, tt));
  gemm_wt(c, k, sh, sw, &whh, sg, sb, B, GH, P);
  int32_t b = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, B), 0);
  int32_t j = k_for_begin(k, k_i64(k, 0), k_i64(k, H), KS_VECTOR);
  kx_id bv = k_varref(k, b), jv = k_varref(k, j);
  kx_id xo = k_add(k, k_muli(k, k_add(k, k_mul(k, tt, kl_dimx(c, k, B)), bv), GH), jv);
  kx_id go = k_add(k, k_muli(k, bv, GH), jv);
  /* gate q's pre-activation parts: xp and the recurrent product */
#define XP(q) k_load(k, sx, k_add(k, xo, k_i64(k, (q)*H)))
#define RG(q) k_load(k, sg, k_add(k, go, k_i64(k, (q)*H)))
  kx_id hv;
  if (lstm) {
    kx_id ig = sigmoid(k, k_add(k, XP(0), RG(0)));
    kx_id fg = sigmoid(k, k_add(k, XP(1), RG(1)));
    kx_id gg = k_un(k, KX_TANH, k_add(k, XP(2), RG(2)));
    kx_id og = sigmoid(k, k_add(k, XP(3), RG(3)));
    kx_id ci = k_add(k, k_muli(k, bv, H), jv);
    kx_id cv = k_add(k, k_mul(k, fg, k_load(k, scs, ci)), k_mul(k, ig, gg));
    int32_t cvar = k_var(k, NN_DT_F32);
    k_let(k, cvar, cv);
    k_store(k, scs, ci, k_varref(k, cvar));
    hv = k_mul(k, og, k_un(k, KX_TANH, k_varref(k, cvar)));
  } else if (gru) {
    kx_id r = sigmoid(k, k_add(k, XP(0), RG(0)));
    kx_id z = sigmoid(k, k_add(k, XP(1), RG(1)));
    kx_id nn = k_un(k, KX_TANH, k_add(k, XP(2), k_mul(k, r, RG(2))));
    kx_id hprev = k_load(k, sh, k_add(k, k_muli(k, bv, P), jv));
    hv = k_add(k, k_mul(k, k_sub(k, cf(k, 1), z), nn), k_mul(k, z, hprev));
  } else {
    kx_id a = k_add(k, XP(0), RG(0));
    hv = relu ? k_bin(k, KX_MAX, a, cf(k, 0)) : k_un(k, KX_TANH, a);
  }
#undef XP
#undef RG
  int32_t hvar = k_var(k, NN_DT_F32);
  k_let(k, hvar, hv);
  if (proj) {
    k_store(k, shf, k_add(k, k_muli(k, bv, H), jv), k_varref(k, hvar));
  } else {
    kx_id hi = k_add(k, k_muli(k, bv, P), jv);
    k_store(k, sh, hi, k_varref(k, hvar));
    k_store(k, sy,
            k_add(k, k_mul(k, k_add(k, k_mul(k, tt, kl_dimx(c, k, B)), bv), k_i64(k, P)), jv),
            k_varref(k, hvar));
  }
  k_for_end(k);
  k_for_end(k);
  if (proj) {
    gemm_wt(c, k, shf, swr, &whr, sh, -1, B, P, H);
    int32_t b2 = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, B), 0);
    int32_t j2 = k_for_begin(k, k_i64(k, 0), k_i64(k, P), KS_VECTOR);
    kx_id hi = k_add(k, k_muli(k, k_varref(k, b2), P), k_varref(k, j2));
    kx_id yo = k_add(k, k_muli(k, k_add(k, k_mul(k, tt, kl_dimx(c, k, B)), k_varref(k, b2)), P),
                     k_varref(k, j2));
    k_store(k, sy, yo, k_load(k, sh, hi));
    k_for_end(k);
    k_for_end(k);
  }
  k_for_end(k); /* t */
  copy_rows(c, k, shn, sh, B, P);
  copy_rows(c, k, scn, lstm ? scs : sh, B, lstm ? H : P);
  return 0;
}
