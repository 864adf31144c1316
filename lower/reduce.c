/* reduce.c — reductions, and ops over rows (softmax, log_softmax,
 * cumsum).
 *
 * Loops over the kept dims (outermost PARALLEL) around loops over the
 * reduced dims (KS_REDUCE) that carry a LET accumulator; argmax/argmin and
 * max/min along a dim carry the index too. softmax, log_softmax and cumsum
 * use one kernel with a parallel loop over rows and several inner passes.
 */
#include "lower.h"

#include <math.h>
#include <string.h>

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_NORM, R_ARGMAX, R_ARGMIN };

/* Generic reduction of x over the dims in mask: loops over the kept dims
 * (PARALLEL outermost) around loops over the reduced ones (REDUCE).
 * out (and, for arg kinds, idx_out) are written at the kept coordinates.
 * norm_p is used by R_NORM. */
static int reduce(kl_ctx *c, int kind, const bool *mask, ir_value out, ir_value idx_out,
                  double norm_p) {
  ir_value xv = kl_cur(c)->in[0];
  ir_dim xd[KL_MAXR];
  int xr = kl_vshape(c, xv, xd);
  if (xr < 0) return kl_unsupported(c);
  ir_dim kd[KL_MAXR], rd[KL_MAXR], xst[KL_MAXR], kst[KL_MAXR], rst[KL_MAXR];
  int kr = 0, rr = 0, kmap[KL_MAXR], rmap[KL_MAXR];
  kl_cstrides(c, xr, xd, xst);
  for (int i = 0; i < xr; i++) {
    if (mask[i])
      rmap[rr] = i, rd[rr++] = xd[i];
    else
      kmap[kr] = i, kd[kr++] = xd[i];
  }
  kl_cstrides(c, kr, kd, kst);
  kl_cstrides(c, rr, rd, rst);
  ir_dim count = kl_numel(c, rr, rd);
  nn_dtype xdt = kl_vdtype(c, xv);
  nn_dtype odt = out != IR_NOVAL ? kl_vdtype(c, out) : xdt;
  bool arg = kind == R_ARGMAX || kind == R_ARGMIN;
  /* accumulate in the output's dtype (values for arg kinds: x's) */
  nn_dtype ad = kl_compute_dt(arg ? xdt : odt);
  if (kind == R_MAX || kind == R_MIN) ad = kl_compute_dt(xdt);
  kernel *k = kl_kernel(c, ir_ops[kl_cur(c)->op].name);
  int32_t os = -1, is = -1;
  ir_dim kn = kl_numel(c, kr, kd);
  if (out != IR_NOVAL) os = kl_wslot(c, k, odt, kn, kl_value_buf(c, out), "out");
  if (idx_out != IR_NOVAL) is = kl_wslot(c, k, NN_DT_I64, kn, kl_value_buf(c, idx_out), "idx");
  int32_t xs = kl_vslot(c, k, xv, "x");
  kx_id kv[KL_MAXR], rv[KL_MAXR], xc[KL_MAXR];
  int nl = kl_nest(c, k, kr, kd, kv, true, false, 0);
  int32_t acc = k_var(k, ad), ai = -1;
  bool hi = kind == R_MIN || kind == R_ARGMIN || (kind == R_NORM && isinf(norm_p) && norm_p < 0);
  kx_id init;
  if (kind == R_MAX || kind == R_MIN || arg || (kind == R_NORM && isinf(norm_p)))
    init = kl_extreme(k, ad, hi);
  else
    init = k_const_i(k, ad, 0);
  k_let(k, acc, init);
  if (arg) {
    ai = k_var(k, NN_DT_I64);
    k_let(k, ai, k_i64(k, 0));
  }
  int rl = kl_nest(c, k, rr, rd, rv, false, false, KS_REDUCE);
  for (int i = 0; i < kr; i++) xc[kmap[i]] = kv[i];
  for (int i = 0; i < rr; i++) xc[rmap[i]] = rv[i];
  kx_id x = k_cast(k, ad, k_load(k, xs, kl_lin(c, k, xr, xc, xst)));
  kx_id a = k_varref(k, acc), nv;
  switch (kind) {
  case R_SUM:
  case R_MEAN: nv = k_bin(k, KX_ADD, a, x); break;
  case R_MAX: nv = k_bin(k, KX_MAX, a, x); break;
  case R_MIN: nv = k_bin(k, KX_MIN, a, x); break;
  case R_NORM: {
    kx_id ax = k_un(k, KX_ABS, x);
    if (isinf(norm_p))
      nv = k_bin(k, norm_p > 0 ? KX_MAX : KX_MIN, a, ax);
    else if (norm_p == 0)
      nv = k_bin(k, KX_ADD, a, k_cast(k, ad, k_bin(k, KX_NE, x, k_const_i(k, ad, 0))));
    else if (norm_p == 1)
      nv = k_bin(k, KX_ADD, a, ax);
    else if (norm_p == 2)
      nv = k_bin(k, KX_ADD, a, k_bin(k, KX_MUL, x, x));
    else
      nv = k_bin(k, KX_ADD, a, k_bin(k, KX_POW, ax, k_const_f(k, ad, norm_p)));
    break;
  }
  default: { /* arg: strict improvement keeps the first index; NaN wins */
    kx_id better = k_bin(k, kind == R_ARGMAX ? KX_GT : KX_LT, x, a);
    if (nn_dtype_is_float(ad))
      better = k_bin(k, KX_OR, better,
                     k_bin(k, KX_AND, k_bin(k, KX_NE, x, x), k_bin(k, KX_EQ, a, a)));
    int32_t bv = k_var(k, NN_DT_BOOL);
    k_let(k, bv, better);
    kx_id b = k_varref(k, bv);
    k_let(k, ai, k_select(k, b, kl_lin(c, k, rr, rv, rst), k_varref(k, ai)));
    nv = k_select(k, b, x, k_varref(k, acc));
    break;
  }
  }
  k_let(k, acc, nv);
  kl_nest_end(k, rl);
  kx_id res = k_varref(k, acc);
  if (kind == R_MEAN) res = k_bin(k, KX_DIV, res, kl_xt(c, k, count, ad));
  if (kind == R_NORM && !isinf(norm_p) && norm_p != 0 && norm_p != 1)
    res = norm_p == 2 ? k_un(k, KX_SQRT, res)
                      : k_bin(k, KX_POW, res, k_const_f(k, ad, 1.0 / norm_p));
  kx_id oidx = kl_lin(c, k, kr, kv, kst);
  if (os >= 0) k_store(k, os, oidx, k_cast(k, odt, res));
  if (is >= 0) k_store(k, is, oidx, k_varref(k, ai));
  kl_nest_end(k, nl);
  return 1;
}

static int lower_reduce(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_op op = n->op;
  ir_dim xd[KL_MAXR];
  int xr = kl_vshape(c, n->in[0], xd);
  if (xr < 0) return kl_unsupported(c);
  bool mask[KL_MAXR] = {false};
  int idims = op == NN_OP_NORM ? 2 : 1;
  switch (op) {
  case NN_OP_SUM:
  case NN_OP_MEAN:
  case NN_OP_AMAX:
  case NN_OP_AMIN:
  case NN_OP_NORM: {
    const int64_t *v;
    int nv = 0;
    if (!kl_is_none(c, idims) && !kl_clist(c, idims, &v, &nv)) return kl_unsupported(c);
    for (int i = 0; i < xr; i++) mask[i] = nv == 0;
    for (int j = 0; j < nv; j++) {
      int d = kl_wrapdim(v[j], xr);
      if (d < 0) return kl_unsupported(c);
      if (xr) mask[d] = true;
    }
    double p = 2;
    if (op == NN_OP_NORM && !kl_is_none(c, 1) && !kl_cnum(c, 1, &p)) return kl_unsupported(c);
    int kind = op == NN_OP_SUM    ? R_SUM
               : op == NN_OP_MEAN ? R_MEAN
               : op == NN_OP_AMAX ? R_MAX
               : op == NN_OP_AMIN ? R_MIN
                                  : R_NORM;
    return reduce(c, kind, mask, n->out[0], IR_NOVAL, p);
  }
  case NN_OP_MAX_ALL:
  case NN_OP_MIN_ALL:
    for (int i = 0; i < xr; i++) mask[i] = true;
    return reduce(c, op == NN_OP_MAX_ALL ? R_MAX : R_MIN, mask, n->out[0], IR_NOVAL, 0);
  case NN_OP_MAX_DIM:
  case NN_OP_MIN_DIM:
  case NN_OP_ARGMAX:
  case NN_OP_ARGMIN: {
    bool arg = op == NN_OP_ARGMAX || op == NN_OP_ARGMIN;
    int64_t dim;
    if (arg && kl_is_none(c, 1)) {
      for (int i = 0; i < xr; i++) mask[i] = true;
    } else {
      if (!kl_cint(c, 1, &dim) || kl_wrapdim(dim, xr) < 0) return kl_unsupported(c);
      if (xr) mask[kl_wrapdim(dim, xr)] = true;
    }
    int kind = op == NN_OP_MAX_DIM || op == NN_OP_ARGMAX ? R_ARGMAX : R_ARGMIN;
    return reduce(c, kind, mask, arg ? IR_NOVAL : n->out[0], arg ? n->out[0] : n->out[1], 0);
  }
  default: NN_UNREACHABLE();
  }
}

/* Row-wise ops along one dim d of x: softmax, log_softmax, cumsum. The
 * loops run over every dim but d (PARALLEL outermost); inside, passes
 * over d. */
static int lower_rows(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_op op = n->op;
  ir_dim xd[KL_MAXR];
  int64_t dim;
  int xr = kl_vshape(c, n->in[0], xd);
  if (xr < 0 || !kl_cint(c, 1, &dim) || kl_wrapdim(dim, xr) < 0) return kl_unsupported(c);
  int d = xr ? kl_wrapdim(dim, xr) : -1;
  ir_dim od[KL_MAXR], ost[KL_MAXR];
  int orank = 0;
  for (int i = 0; i < xr; i++)
    if (i != d) od[orank++] = xd[i];
  kl_cstrides(c, xr, xd, ost);
  ir_dim len = d >= 0 ? xd[d] : kl_d(c, 1), dst = d >= 0 ? ost[d] : kl_d(c, 1);
  nn_dtype odt = kl_vdtype(c, n->out[0]), cd = kl_compute_dt(odt);
  kernel *k = kl_kernel(c, ir_ops[op].name);
  int32_t os = kl_wslot(c, k, odt, kl_numel(c, xr, xd), kl_value_buf(c, n->out[0]), "out");
  int32_t xs = kl_vslot(c, k, n->in[0], "x");
  kx_id kv[KL_MAXR];
  int nl = kl_nest(c, k, orank, od, kv, true, false, 0);
  /* row base: kept coordinates times x's strides */
  kx_id base = k_i64(k, 0);
  for (int i = 0, j = 0; i < xr; i++)
    if (i != d) base = k_bin(k, KX_ADD, base, k_bin(k, KX_MUL, kv[j++], kl_x(c, k, ost[i])));
  kx_id lenx = kl_x(c, k, len), dstx = kl_x(c, k, dst);
#define ROWIDX(v) k_bin(k, KX_ADD, base, k_bin(k, KX_MUL, (v), dstx))
#define XAT(v) k_cast(k, cd, k_load(k, xs, ROWIDX(v)))
  if (op == NN_OP_CUMSUM) {
    int32_t acc = k_var(k, cd);
    k_let(k, acc, k_const_i(k, cd, 0));
    kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), lenx, KS_REDUCE));
    k_let(k, acc, k_bin(k, KX_ADD, k_varref(k, acc), XAT(j)));
    k_store(k, os, ROWIDX(j), k_cast(k, odt, k_varref(k, acc)));
    k_for_end(k);
  } else {
    int32_t mx = k_var(k, cd), sm = k_var(k, cd);
    k_let(k, mx, kl_extreme(k, cd, false));
    kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), lenx, KS_REDUCE));
    k_let(k, mx, k_bin(k, KX_MAX, k_varref(k, mx), XAT(j)));
    k_for_end(k);
    k_let(k, sm, k_const_i(k, cd, 0));
    j = k_varref(k, k_for_begin(k, k_i64(k, 0), lenx, KS_REDUCE));
    k_let(k, sm,
          k_bin(k, KX_ADD, k_varref(k, sm),
                k_un(k, KX_EXP, k_bin(k, KX_SUB, XAT(j), k_varref(k, mx)))));
    k_for_end(k);
    j = k_varref(k, k_for_begin(k, k_i64(k, 0), lenx, KS_VECTOR));
    kx_id sh = k_bin(k, KX_SUB, XAT(j), k_varref(k, mx)), r;
    if (op == NN_OP_SOFTMAX)
      r = k_bin(k, KX_DIV, k_un(k, KX_EXP, sh), k_varref(k, sm));
    else
      r = k_bin(k, KX_SUB, sh, k_un(k, KX_LOG, k_varref(k, sm)));
    k_store(k, os, ROWIDX(j), k_cast(k, odt, r));
    k_for_end(k);
  }
#undef ROWIDX
#undef XAT
  kl_nest_end(k, nl);
  return 1;
}

int kl_lower_reduce(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_reduce(c));
}

int kl_lower_rows(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_rows(c));
}
