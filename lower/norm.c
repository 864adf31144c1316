/* norm.c — batch, instance, layer and group normalization.
 *
 * Eval-mode batch norm is a per-channel scale and shift (a batch_norm the
 * fold pass could not fold into a convolution). Layer and group norm
 * compute each row's moments in one pass over the row, then normalize it
 * with the affine parameters in a second; one kernel with a parallel loop
 * over rows, f16/bf16 computed in f32. Instance norm is group norm with a
 * group per channel (or, with running statistics, batch norm).
 */
#include "lower.h"

#include <math.h>
#include <string.h>

/* Optional per-element parameter p[idx] (1 or 0 when absent). */
static kx_id param(kernel *k, int32_t slot, kx_id idx, nn_dtype cd, double dflt) {
  return slot < 0 ? k_const_f(k, cd, dflt) : k_cast(k, cd, k_load(k, slot, idx));
}

static int32_t opt_slot(kl_ctx *c, kernel *k, int j, const char *name) {
  return kl_is_none(c, j) ? -1 : kl_vslot(c, k, kl_cur(c)->in[j], name);
}

/* Mean and biased variance of count elements at x[base + j], j < count,
 * into LET variables *mean and *rstd = rsqrt(var + eps). */
static void moments(kl_ctx *c, kernel *k, int32_t xs, kx_id base, ir_dim count, nn_dtype cd,
                    double eps, int32_t *mean, int32_t *rstd) {
  kx_id cx = kl_x(c, k, count);
  int32_t s = k_var(k, cd);
  k_let(k, s, k_const_i(k, cd, 0));
  kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), cx, KS_REDUCE));
  kx_id x = k_cast(k, cd, k_load(k, xs, k_bin(k, KX_ADD, base, j)));
  k_let(k, s, k_bin(k, KX_ADD, k_varref(k, s), x));
  k_for_end(k);
  *mean = k_var(k, cd);
  k_let(k, *mean, k_bin(k, KX_DIV, k_varref(k, s), kl_xt(c, k, count, cd)));
  int32_t q = k_var(k, cd);
  k_let(k, q, k_const_i(k, cd, 0));
  j = k_varref(k, k_for_begin(k, k_i64(k, 0), cx, KS_REDUCE));
  x = k_cast(k, cd, k_load(k, xs, k_bin(k, KX_ADD, base, j)));
  kx_id dv = k_bin(k, KX_SUB, x, k_varref(k, *mean));
  k_let(k, q, k_bin(k, KX_ADD, k_varref(k, q), k_bin(k, KX_MUL, dv, dv)));
  k_for_end(k);
  *rstd = k_var(k, cd);
  k_let(k, *rstd,
        k_un(k, KX_RSQRT,
             k_bin(k, KX_ADD, k_bin(k, KX_DIV, k_varref(k, q), kl_xt(c, k, count, cd)),
                   k_const_f(k, cd, eps))));
}

/* The second pass over a row of the normalized dims: out[base + s] =
 * x[base + s] * sc + sh for s < Sx, one KS_VECTOR loop (sc, sh: LET
 * variables of the compute type cd). */
static void scale_shift_row(kernel *k, int32_t xs, int32_t os, kx_id base, kx_id Sx, int32_t sc,
                            int32_t sh, nn_dtype cd, nn_dtype odt) {
  kx_id s = k_varref(k, k_for_begin(k, k_i64(k, 0), Sx, KS_VECTOR));
  kx_id idx = k_bin(k, KX_ADD, base, s);
  kx_id y = k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_cast(k, cd, k_load(k, xs, idx)), k_varref(k, sc)),
                  k_varref(k, sh));
  k_store(k, os, idx, k_cast(k, odt, y));
  k_for_end(k);
}

static int lower_norm(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_op op = n->op;
  ir_dim xd[KL_MAXR];
  int xr = kl_vshape(c, n->in[0], xd);
  double eps;
  nn_dtype odt = kl_vdtype(c, n->out[0]), cd = kl_compute_dt(odt);
  bool bn_layout = op == NN_OP_BATCH_NORM || op == NN_OP_INSTANCE_NORM;
  if (xr < 0 || !kl_cnum(c, bn_layout ? 7 : 4, &eps)) return kl_unsupported(c);
  ir_dim tot = kl_numel(c, xr, xd);
  kp_bufid ob = kl_value_buf(c, n->out[0]);
  if (op == NN_OP_LAYER_NORM) {
    const int64_t *ns;
    int nn_;
    if (!kl_clist(c, 1, &ns, &nn_)) {
      /* a list built at run time (sizes of a symbolic shape): its length */
      ir_nodeid def = kl_graph(c)->values.data[n->in[1]].def;
      const ir_node *ln = def >= 0 ? ir_node_get(kl_graph(c), def) : NULL;
      if (!ln || ln->op != NN_OP_LIST_CONSTRUCT) return kl_unsupported(c);
      nn_ = ln->nin;
    }
    if (nn_ > xr) return kl_unsupported(c);
    /* rows of m elements: the trailing nn_ dims of x (shape inference
     * checked them against normalized_shape) */
    ir_dim m = kl_numel(c, nn_, xd + xr - nn_);
    ir_dim rows = kl_dis(c, m, 0) ? kl_d(c, 0) : kl_numel(c, xr - nn_, xd);
    kernel *k = kl_kernel(c, "layer_norm");
    int32_t os = kl_wslot(c, k, odt, tot, ob, "out");
    int32_t xs = kl_vslot(c, k, n->in[0], "x");
    int32_t ws = opt_slot(c, k, 2, "w"), bs = opt_slot(c, k, 3, "b");
    kx_id r = k_varref(k, k_for_begin(k, k_i64(k, 0), kl_x(c, k, rows), KS_PARALLEL));
    kx_id base = k_bin(k, KX_MUL, r, kl_x(c, k, m));
    int32_t mean, rstd;
    moments(c, k, xs, base, m, cd, eps, &mean, &rstd);
    kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), kl_x(c, k, m), KS_VECTOR));
    kx_id idx = k_bin(k, KX_ADD, base, j);
    kx_id x = k_cast(k, cd, k_load(k, xs, idx));
    kx_id y = k_bin(k, KX_MUL, k_bin(k, KX_SUB, x, k_varref(k, mean)), k_varref(k, rstd));
    y = k_bin(k, KX_ADD, k_bin(k, KX_MUL, y, param(k, ws, j, cd, 1)), param(k, bs, j, cd, 0));
    k_store(k, os, idx, k_cast(k, odt, y));
    k_for_end(k);
    k_for_end(k);
    return 1;
  }
  if (xr < 2) return kl_unsupported(c);
  ir_dim N = xd[0], C = xd[1], NC = kl_dmul(c, N, C);
  ir_dim S = kl_dis(c, NC, 0) ? kl_d(c, 0) : kl_numel(c, xr - 2, xd + 2);
  if (op == NN_OP_GROUP_NORM) {
    int64_t G, Cn;
    if (!kl_cint(c, 1, &G) || G <= 0) return kl_unsupported(c);
    if (!kl_dim_const(c, C, &Cn)) return kl_symbolic(c, C);
    if (Cn % G) return kl_unsupported(c);
    int64_t cg = Cn / G;
    ir_dim gs = kl_dmul(c, kl_d(c, cg), S);
    kernel *k = kl_kernel(c, "group_norm");
    int32_t os = kl_wslot(c, k, odt, tot, ob, "out");
    int32_t xs = kl_vslot(c, k, n->in[0], "x");
    int32_t ws = opt_slot(c, k, 2, "w"), bs = opt_slot(c, k, 3, "b");
    kx_id ng = k_varref(k, k_for_begin(k, k_i64(k, 0), kl_x(c, k, kl_dmul(c, N, kl_d(c, G))),
                                       KS_PARALLEL));
    kx_id base = k_bin(k, KX_MUL, ng, kl_x(c, k, gs));
    int32_t mean, rstd;
    moments(c, k, xs, base, gs, cd, eps, &mean, &rstd);
    kx_id cc = k_varref(k, k_for_begin(k, k_i64(k, 0), k_i64(k, cg), 0));
    kx_id ch = k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_bin(k, KX_MOD, ng, k_i64(k, G)), k_i64(k, cg)),
                     cc);
    int32_t sc = k_var(k, cd), sh = k_var(k, cd);
    k_let(k, sc, k_bin(k, KX_MUL, k_varref(k, rstd), param(k, ws, ch, cd, 1)));
    k_let(k, sh,
          k_bin(k, KX_SUB, param(k, bs, ch, cd, 0),
                k_bin(k, KX_MUL, k_varref(k, mean), k_varref(k, sc))));
    kx_id Sx = kl_x(c, k, S);
    scale_shift_row(k, xs, os, k_bin(k, KX_ADD, base, k_bin(k, KX_MUL, cc, Sx)), Sx, sc, sh, cd,
                    odt);
    k_for_end(k);
    k_for_end(k);
    return 1;
  }
  int64_t training;
  if (!kl_cint(c, 5, &training)) return kl_unsupported(c);
  if (op == NN_OP_INSTANCE_NORM && training) {
    /* use_input_stats: the moments of each (sample, channel) row */
    kernel *k = kl_kernel(c, "instance_norm");
    int32_t os = kl_wslot(c, k, odt, tot, ob, "out");
    int32_t xs = kl_vslot(c, k, n->in[0], "x");
    int32_t ws = opt_slot(c, k, 1, "w"), bs = opt_slot(c, k, 2, "b");
    kx_id nc = k_varref(k, k_for_begin(k, k_i64(k, 0), kl_x(c, k, NC), KS_PARALLEL));
    kx_id Sx = kl_x(c, k, S);
    kx_id base = k_bin(k, KX_MUL, nc, Sx);
    int32_t mean, rstd;
    moments(c, k, xs, base, S, cd, eps, &mean, &rstd);
    kx_id ch = k_bin(k, KX_MOD, nc, kl_x(c, k, C));
    int32_t sc = k_var(k, cd), sh = k_var(k, cd);
    k_let(k, sc, k_bin(k, KX_MUL, k_varref(k, rstd), param(k, ws, ch, cd, 1)));
    k_let(k, sh,
          k_bin(k, KX_SUB, param(k, bs, ch, cd, 0),
                k_bin(k, KX_MUL, k_varref(k, mean), k_varref(k, sc))));
    scale_shift_row(k, xs, os, base, Sx, sc, sh, cd, odt);
    k_for_end(k);
    return 1;
  }
  /* batch_norm in eval mode, and instance_norm with running statistics */
  if (training) return kl_fail(c, "batch_norm in training mode is not supported");
  if (kl_is_none(c, 3) || kl_is_none(c, 4))
    return kl_fail(c, "batch_norm without running statistics is not supported");
  kernel *k = kl_kernel(c, "batch_norm");
  int32_t os = kl_wslot(c, k, odt, tot, ob, "out");
  int32_t xs = kl_vslot(c, k, n->in[0], "x");
  int32_t ws = opt_slot(c, k, 1, "w"), bs = opt_slot(c, k, 2, "b");
  int32_t ms = kl_vslot(c, k, n->in[3], "mean"), vs = kl_vslot(c, k, n->in[4], "var");
  kx_id nc = k_varref(k, k_for_begin(k, k_i64(k, 0), kl_x(c, k, NC), KS_PARALLEL));
  kx_id ch = k_bin(k, KX_MOD, nc, kl_x(c, k, C));
  int32_t sc = k_var(k, cd), sh = k_var(k, cd);
  k_let(k, sc,
        k_bin(k, KX_MUL, param(k, ws, ch, cd, 1),
              k_un(k, KX_RSQRT, k_bin(k, KX_ADD, param(k, vs, ch, cd, 1), k_const_f(k, cd, eps)))));
  k_let(k, sh,
        k_bin(k, KX_SUB, param(k, bs, ch, cd, 0),
              k_bin(k, KX_MUL, param(k, ms, ch, cd, 0), k_varref(k, sc))));
  kx_id Sx = kl_x(c, k, S);
  scale_shift_row(k, xs, os, k_bin(k, KX_MUL, nc, Sx), Sx, sc, sh, cd, odt);
  k_for_end(k);
  return 1;
}

int kl_lower_norm(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_norm(c));
}
