/* shapes_math.c — shape rules for the ops that compute: elementwise math,
 * normalizations, gemm and convolution, pooling, reductions.
 *
 * Each rule (the contract is in shapes_internal.h) checks its operands,
 * reports at the node when they do not fit, and sets the result types.
 * Elementwise ops broadcast and promote as PyTorch does (shapes.c); when
 * their result is a known 0-dim tensor (shape arithmetic traced as tensor
 * ops) its value is folded too. Convolution and pooling share `window`, the
 * output length of a sliding window, which also takes symbolic input sizes.
 */
#include "shapes_internal.h"

#include <string.h>

/* ---- rules: elementwise ----------------------------------------------- */

/* One tensor in, the same shape out: activations, unary math, eval-mode
 * identities, tril/triu/flip/roll, scatter. */
void sh_r_unary(sh *s) {
  const ir_type *t = sh_tens(s, 0);
  if (!t) return;
  ir_op op = N(s)->op;
  nn_dtype dt = t->dtype;
  if ((ir_ops[op].flags & IR_FLOAT_ONLY) && dt != NN_DT_UNKNOWN && !nn_dtype_is_float(dt))
    dt = NN_DT_F32;
  if (op == NN_OP_LOGICAL_NOT || op == NN_OP_ISNAN || op == NN_OP_ISINF) dt = NN_DT_BOOL;
  if (op == NN_OP_BITWISE_NOT && nn_dtype_is_float(dt)) {
    sh_err(s, "expects an integral or bool tensor, got %s", sh_tstr(s, t));
    return;
  }
  set(s, 0, tensor(s, dt, t->rank, t->dims));
  kval *k = KI(s, 0);
  if (ir_ops[op].flags & IR_IDENTITY) {
    *KO(s, 0) = *k;
  } else if (op == NN_OP_NEG && (k->known || k->sym)) {
    kval zero = {.known = true, .c = {.kind = IR_C_INT}};
    sh_fold_into(s, 0, AR_SUB, &zero, k, true, dt, sh_category(dt) == 1);
  }
}

/* prelu(x, weight): x's type; the weight has one element, or one per
 * channel (dim 1 of x, which must then have rank >= 2). */
void sh_r_prelu(sh *s) {
  const ir_type *x = sh_tens(s, 0), *w = sh_tens(s, 1);
  if (!x || !w) return;
  if (w->rank > 1) {
    sh_err(s, "weight %s must be 1-d", sh_tstr(s, w));
    return;
  }
  int64_t n = 1;
  bool one = w->rank == 0 || (dc(s, w->dims[0], &n) && n == 1);
  if (!one) {
    if (x->rank < 2) {
      sh_err(s, "weight %s has several elements: the input %s needs a channel dim", sh_tstr(s, w),
             sh_tstr(s, x));
      return;
    }
    sh_assume_equal(s, w->dims[0], x->dims[1]);
  }
  set(s, 0, tensor(s, x->dtype, x->rank, x->dims));
}

/* Normalizations keep the input's type; their parameters are checked. */
void sh_r_norm(sh *s) {
  const ir_type *t = sh_tens(s, 0);
  if (!t) return;
  ir_op op = N(s)->op;
  if ((op == NN_OP_BATCH_NORM || op == NN_OP_INSTANCE_NORM) && t->rank < 2) {
    sh_err(s, "expects a tensor of rank >= 2, got %s", sh_tstr(s, t));
    return;
  }
  if (op == NN_OP_LAYER_NORM) {
    int64_t *ns;
    ir_dim *sy;
    int n;
    if (!sh_opshape(s, 1, "normalized_shape", false, &ns, &sy, &n)) return;
    bool ok = n <= t->rank;
    for (int i = 0; ok && i < n; i++) {
      ir_dim want = sh_shape_dim(s, ns, sy, i);
      ok = sh_may_equal(s, t->dims[t->rank - n + i], want);
    }
    if (!ok) {
      sh_err(s, "normalized_shape %s does not match the trailing dims of %s",
             sh_shape_str(s, n, ns, sy), sh_tstr(s, t));
      return;
    }
  }
  if (op == NN_OP_GROUP_NORM) {
    int64_t groups, c;
    if (!sh_need_int(s, 1, "num_groups", &groups)) return;
    if (t->rank < 2 || groups <= 0 || (dc(s, t->dims[1], &c) && c % groups != 0)) {
      sh_err(s, "cannot split the channels of %s into %lld groups", sh_tstr(s, t),
             (long long)groups);
      return;
    }
  }
  set(s, 0, tensor(s, t->dtype, t->rank, t->dims));
}

/* Broadcasting binary ops: add sub rsub mul div floor_divide remainder pow
 * maximum minimum, comparisons, logical and/or. Either side may be a
 * scalar; the result is a tensor unless both are (then it is a scalar). */
void sh_r_binary(sh *s) {
  ir_op op = N(s)->op;
  int ia = 0, ib = 1; /* rsub computes b - alpha*a */
  if (op == NN_OP_RSUB) ia = 1, ib = 0;
  const ir_type *ta = TY(s, ia), *tb = TY(s, ib);
  int ra, rb;
  const ir_dim *da, *db;
  if (!sh_bshape(ta, &ra, &da) || !sh_bshape(tb, &rb, &db)) {
    for (int i = 0; i < 2; i++) {
      const ir_type *t = TY(s, i);
      if (t->kind != IR_T_UNKNOWN && t->kind != IR_T_TENSOR && !sh_bshape(t, &ra, &da))
        sh_err(s, "operand %d is %s, expected a tensor or a number", i + 1, sh_tstr(s, t));
    }
    return;
  }
  arith ar = sh_arith_of(op);
  bool true_div = false;
  if (op == NN_OP_DIV) {
    kval *km = KI(s, 2);
    if (sh_is_none(s, 2))
      true_div = true;
    else if (km->known && km->c.kind == IR_C_STR && km->c.s && strcmp(km->c.s, "floor") == 0)
      ar = AR_FLOORDIV;
    else if (km->known && km->c.kind == IR_C_STR && km->c.s && strcmp(km->c.s, "trunc") == 0)
      ar = AR_TRUNCDIV;
    else if (!sh_is_unknown(s, 2)) {
      sh_err(s, "rounding_mode must be none, \"trunc\" or \"floor\"");
      return;
    }
  }
  /* alpha scales the second operand of add/sub/rsub */
  kval kb = *K(s, IN(s, ib));
  if (op == NN_OP_ADD || op == NN_OP_SUB || op == NN_OP_RSUB) {
    kval *kal = KI(s, 2);
    bool one = kal->known && sh_is_num(&kal->c) && sh_fnum(&kal->c) == 1;
    if (!one) {
      ir_const c;
      if (kal->known && kb.known && sh_fold(AR_MUL, &kb.c, &kal->c, &c))
        kb.c = c;
      else
        kb.known = false;
      kb.sym = 0;
    }
  }
  const kval *ka = K(s, IN(s, ia));
  bool a_t = ta->kind == IR_T_TENSOR, b_t = tb->kind == IR_T_TENSOR;
  if (!a_t && !b_t) {
    /* number OP number: a scalar result */
    bool f = ta->kind == IR_T_FLOAT || tb->kind == IR_T_FLOAT || true_div;
    ir_tkind k = sh_is_bool_result(ar) ? IR_T_BOOL : f ? IR_T_FLOAT : IR_T_INT;
    set(s, 0, scalar(s, k));
    kval x = *ka, y = kb;
    x.tensor = y.tensor = false;
    sh_fold_into(s, 0, ar, &x, &y, false, NN_DT_UNKNOWN, k == IR_T_INT);
    return;
  }
  int rr;
  ir_dim *dd;
  if (!sh_bcast(s, ra, da, rb, db, &rr, &dd)) {
    sh_err(s, "cannot broadcast %s with %s", sh_tstr(s, TY(s, 0)), sh_tstr(s, TY(s, 1)));
    return;
  }
  prom p = {0};
  sh_prom_operand(s, &p, IN(s, ia));
  sh_prom_operand(s, &p, IN(s, ib));
  nn_dtype dt = sh_prom_result(&p);
  if (sh_is_bool_result(ar) || op == NN_OP_LOGICAL_XOR)
    dt = NN_DT_BOOL;
  else if ((true_div || op == NN_OP_HYPOT || op == NN_OP_XLOGY) && dt != NN_DT_UNKNOWN &&
           !nn_dtype_is_float(dt))
    dt = NN_DT_F32;
  set(s, 0, tensor(s, dt, rr, dd));
  if (rr == 0 && dt != NN_DT_UNKNOWN)
    sh_fold_into(s, 0, ar, ka, &kb, true, dt, sh_category(dt) == 1);
}

/* where(cond, a, b): three-way broadcast; dtype from a and b. */
void sh_r_where(sh *s) {
  int r[3];
  const ir_dim *d[3];
  for (int i = 0; i < 3; i++)
    if (!sh_bshape(TY(s, i), &r[i], &d[i])) {
      if (!sh_is_unknown(s, i)) sh_tens(s, i);
      return;
    }
  int r1, r2;
  ir_dim *d1, *d2;
  if (!sh_bcast(s, r[0], d[0], r[1], d[1], &r1, &d1) ||
      !sh_bcast(s, r1, d1, r[2], d[2], &r2, &d2)) {
    sh_err(s, "cannot broadcast %s, %s and %s", sh_tstr(s, TY(s, 0)), sh_tstr(s, TY(s, 1)),
           sh_tstr(s, TY(s, 2)));
    return;
  }
  prom p = {0};
  sh_prom_operand(s, &p, IN(s, 1));
  sh_prom_operand(s, &p, IN(s, 2));
  set(s, 0, tensor(s, sh_prom_result(&p), r2, d2));
}

/* masked_fill(x, mask, value): x's type; the mask must broadcast to x. */
void sh_r_masked_fill(sh *s) {
  const ir_type *x = sh_tens(s, 0), *m = sh_tens(s, 1);
  if (!x || !m) return;
  int rr;
  ir_dim *dd;
  bool ok = sh_bcast(s, x->rank, x->dims, m->rank, m->dims, &rr, &dd) && rr == x->rank;
  for (int i = 0; ok && i < rr; i++) ok = sh_may_equal(s, dd[i], x->dims[i]);
  if (!ok) {
    sh_err(s, "cannot broadcast the mask %s to %s", sh_tstr(s, m), sh_tstr(s, x));
    return;
  }
  set(s, 0, x);
}

/* clamp(x, min?, max?): x's shape, promoted with the bounds. */
void sh_r_clamp(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  prom p = {0};
  sh_prom_add(&p, x);
  for (int i = 1; i < 3; i++)
    if (!sh_is_none(s, i)) sh_prom_operand(s, &p, IN(s, i));
  set(s, 0, tensor(s, sh_prom_result(&p), x->rank, x->dims));
}

/* to(x, dtype?) and type_as(x, other). */
void sh_r_to(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  nn_dtype dt;
  if (N(s)->op == NN_OP_TYPE_AS) {
    const ir_type *o = sh_tens(s, 1);
    if (!o) return;
    dt = o->dtype;
  } else if (!sh_opdtype(s, 1, x->dtype, &dt)) {
    return;
  }
  set(s, 0, tensor(s, dt, x->rank, x->dims));
  kval k = *KI(s, 0);
  if (k.tensor && ((k.known && sh_to_category(&k.c, dt)) || (k.sym && sh_category(dt) == 1)))
    *KO(s, 0) = k;
}

/* ---- rules: gemm-like ------------------------------------------------- */

/* numpy matmul of shapes a and b (ranks >= 1) with batch broadcasting.
 * Reports mismatches with the operands' types ta/tb. */
static bool matmul_shape(sh *s, const ir_type *ta, const ir_type *tb, int ra, const ir_dim *a,
                         int rb, const ir_dim *b, int *rr, ir_dim **out) {
  if (ra < 1 || rb < 1) {
    sh_err(s, "expects tensors of rank >= 1, got %s and %s", sh_tstr(s, ta), sh_tstr(s, tb));
    return false;
  }
  ir_dim ka = a[ra - 1], kb = rb >= 2 ? b[rb - 2] : b[0];
  if (!sh_may_equal(s, ka, kb)) {
    sh_err(s, "cannot multiply %s by %s", sh_tstr(s, ta), sh_tstr(s, tb));
    return false;
  }
  int nba = ra >= 2 ? ra - 2 : 0, nbb = rb >= 2 ? rb - 2 : 0, nb;
  ir_dim *bd;
  if (!sh_bcast(s, nba, a, nbb, b, &nb, &bd)) {
    sh_err(s, "cannot broadcast the batch dims of %s and %s", sh_tstr(s, ta), sh_tstr(s, tb));
    return false;
  }
  ir_dim *o = dims_new(s, nb + 2);
  memcpy(o, bd, sizeof *o * (size_t)nb);
  int r = nb;
  if (ra >= 2) o[r++] = a[ra - 2];
  if (rb >= 2) o[r++] = b[rb - 1];
  *rr = r;
  *out = o;
  return true;
}

/* mm, bmm, matmul, addmm (c, a, b, ...), baddbmm (c, a, b, ...). */
void sh_r_matmul(sh *s) {
  ir_op op = N(s)->op;
  int first = (op == NN_OP_ADDMM || op == NN_OP_BADDBMM) ? 1 : 0;
  const ir_type *ta = sh_tens(s, first), *tb = sh_tens(s, first + 1);
  if (!ta || !tb) return;
  int want = (op == NN_OP_MM || op == NN_OP_ADDMM) ? 2
             : (op == NN_OP_BMM || op == NN_OP_BADDBMM)
                 ? 3
                 : 0;
  if (want && (ta->rank != want || tb->rank != want)) {
    sh_err(s, "expects %d-d tensors, got %s and %s", want, sh_tstr(s, ta), sh_tstr(s, tb));
    return;
  }
  if (want == 3 && !sh_may_equal(s, ta->dims[0], tb->dims[0])) {
    sh_err(s, "batch sizes differ: %s and %s", sh_tstr(s, ta), sh_tstr(s, tb));
    return;
  }
  int rr;
  ir_dim *dd;
  if (!matmul_shape(s, ta, tb, ta->rank, ta->dims, tb->rank, tb->dims, &rr, &dd)) return;
  set(s, 0, tensor(s, sh_promote2(ta->dtype, tb->dtype), rr, dd));
}

/* linear(x, w, bias?): x @ w^T, w is [out, in] (or [in]). */
void sh_r_linear(sh *s) {
  const ir_type *x = sh_tens(s, 0), *w = sh_tens(s, 1);
  if (!x || !w) return;
  if (w->rank != 1 && w->rank != 2) {
    sh_err(s, "expects a 1-d or 2-d weight, got %s", sh_tstr(s, w));
    return;
  }
  ir_dim wt[2] = {w->dims[w->rank - 1], w->rank == 2 ? w->dims[0] : 0};
  int rr;
  ir_dim *dd;
  if (!matmul_shape(s, x, w, x->rank, x->dims, w->rank, wt, &rr, &dd)) return;
  set(s, 0, tensor(s, sh_promote2(x->dtype, w->dtype), rr, dd));
}

/* Composite ops (passes/expand.c) stay untyped until they are expanded;
 * ops after one wait for the next run. */
void sh_r_composite(sh *s) { (void)s; }

static bool rank_is(sh *s, const ir_type *t, int rank, const char *what) {
  if (t->rank == rank) return true;
  sh_err(s, "%s must be %d-d, got %s", what, rank, sh_tstr(s, t));
  return false;
}

void sh_r_rnn_scan(sh *s) {
  const ir_type *xp = sh_tens(s, 0), *h0 = sh_tens(s, 1), *w = sh_tens(s, 3);
  if (!xp || !h0 || !w) return;
  const kval *km = KI(s, 6);
  if (!km->known || km->c.kind != IR_C_STR) {
    sh_err(s, "mode must be a known string");
    return;
  }
  const char *m = km->c.s;
  int64_t gates = !strcmp(m, "lstm")  ? 4
                  : !strcmp(m, "gru") ? 3
                  : !strcmp(m, "rnn_tanh") || !strcmp(m, "rnn_relu")
                      ? 1
                      : 0;
  if (!gates) {
    sh_err(s, "unknown mode '%s' (lstm, gru, rnn_tanh, rnn_relu)", m);
    return;
  }
  if (!rank_is(s, xp, 3, "xp") || !rank_is(s, h0, 2, "h0") || !rank_is(s, w, 2, "w_hh")) return;
  if (!nn_dtype_is_float(xp->dtype)) {
    sh_err(s, "expects floating-point tensors, got %s", sh_tstr(s, xp));
    return;
  }
  int64_t gh;
  if (!dc(s, w->dims[0], &gh) || gh % gates) {
    sh_err(s, "w_hh %s must have a known multiple of %lld rows", sh_tstr(s, w), (long long)gates);
    return;
  }
  ir_dim H = D(s, gh / gates), P = w->dims[1], B = h0->dims[0], T = xp->dims[0];
  if (!sh_may_equal(s, xp->dims[2], w->dims[0]) || !sh_may_equal(s, xp->dims[1], B) ||
      !sh_may_equal(s, h0->dims[1], P)) {
    sh_err(s, "xp %s, h0 %s and w_hh %s do not agree (xp[T, B, G*H], h0[B, P], w_hh[G*H, P])",
           sh_tstr(s, xp), sh_tstr(s, h0), sh_tstr(s, w));
    return;
  }
  if (!sh_is_none(s, 5)) {
    const ir_type *wr = sh_tens(s, 5);
    if (!wr || !rank_is(s, wr, 2, "w_hr")) return;
    if (gates != 4 || !sh_may_equal(s, wr->dims[0], P) || !sh_may_equal(s, wr->dims[1], H)) {
      sh_err(s, "w_hr %s must be [%s, H] and belongs to an lstm", sh_tstr(s, wr), sh_tstr(s, h0));
      return;
    }
  } else if (!sh_may_equal(s, P, H)) {
    sh_err(s, "w_hh %s must be square without a projection", sh_tstr(s, w));
    return;
  }
  if (!sh_is_none(s, 2)) {
    const ir_type *c0 = sh_tens(s, 2);
    if (!c0 || !rank_is(s, c0, 2, "c0")) return;
    if (!sh_may_equal(s, c0->dims[0], B) || !sh_may_equal(s, c0->dims[1], H)) {
      sh_err(s, "c0 %s must be [B, H]", sh_tstr(s, c0));
      return;
    }
  } else if (gates == 4) {
    sh_err(s, "an lstm needs c0");
    return;
  }
  if (!sh_is_none(s, 4)) {
    const ir_type *b = sh_tens(s, 4);
    if (!b) return;
    if (b->rank != 1 || !sh_may_equal(s, b->dims[0], w->dims[0])) {
      sh_err(s, "b_hh %s must have the %lld elements of w_hh's rows", sh_tstr(s, b), (long long)gh);
      return;
    }
  }
  set(s, 0, tensor(s, xp->dtype, 3, (ir_dim[]){T, B, P}));
  set(s, 1, tensor(s, xp->dtype, 2, (ir_dim[]){B, P}));
  ir_dim cd[2] = {B, gates == 4 ? H : P};
  set(s, 2, tensor(s, xp->dtype, 2, cd));
}

/* A per-spatial-dim parameter list: one element applies to every dim;
 * an empty list gives `dflt` (NULL: an error). */
static bool spatial(sh *s, int i, const char *what, int nsp, const int64_t *dflt, int64_t lo,
                    int64_t *out) {
  int64_t *v;
  int n;
  if (!sh_oplist(s, i, what, &v, &n)) return false;
  if (n == 0 && dflt) {
    memcpy(out, dflt, sizeof *out * (size_t)nsp);
    return true;
  }
  if (n != 1 && n != nsp) {
    sh_err(s, "%s must have 1 or %d elements, got %d", what, nsp, n);
    return false;
  }
  for (int j = 0; j < nsp; j++) {
    out[j] = v[n == 1 ? 0 : j];
    if (out[j] < lo || out[j] > ((int64_t)1 << 40)) {
      sh_err(s, "%s must be >= %lld, got %lld", what, (long long)lo, (long long)out[j]);
      return false;
    }
  }
  return true;
}

/* Output size of a sliding window (conv and pooling) along one dim:
 * floor((in + 2p - d(k-1) - 1) / s) + 1, or with ceil_mode the ceiling,
 * minus one when the last window would start past the input and its left
 * padding. Symbolic inputs work, with ceil_mode only where that last
 * window can never be dropped. 0 after reporting. */
static ir_dim window(sh *s, ir_dim in, int64_t k, int64_t st, int64_t pad, int64_t dil,
                     bool ceil_mode) {
  int64_t span = dil * (k - 1) + 1, c;
  if (!dc(s, in, &c)) {
    /* With ceil_mode the last window is dropped when it would start past
     * the input and its left padding, which needs (out-1)*st >= in + pad;
     * since (out-1)*st <= in + 2*pad - span + st - 1, that never happens
     * when st + pad - 1 < span (pooling windows no longer than their
     * stride plus padding, such as 3x3 stride 2), and the ceiling is a
     * floor division of a shifted numerator. */
    if (ceil_mode && st + pad - 1 >= span) {
      sh_err(s, "ceil_mode with a symbolic input size is not supported "
                "for a stride larger than the window");
      return 0;
    }
    ir_dim t = ir_dim_add(s->g, in, D(s, 2 * pad - span + (ceil_mode ? st - 1 : 0)));
    return ir_dim_add(s->g, ir_dim_floordiv(s->g, t, D(s, st)), D(s, 1));
  }
  if (c < 0 || c > ((int64_t)1 << 60)) {
    sh_err(s, "the input size %lld is out of range", (long long)c);
    return 0;
  }
  int64_t num = c + 2 * pad - span;
  int64_t out = (num >= 0 || ceil_mode) ? sh_floordiv64(num + (ceil_mode ? st - 1 : 0), st) + 1 : 0;
  if (ceil_mode && out > 0 && (out - 1) * st >= c + pad) out--;
  if (out < 1) {
    sh_err(s, "the input size %lld is too small for a window of %lld", (long long)c,
           (long long)span);
    return 0;
  }
  return D(s, out);
}

/* convolution(x, w, bias?, stride, padding, dilation, transposed,
 * output_padding, groups): N-d, batched or not. */
void sh_r_conv(sh *s) {
  const ir_type *x = sh_tens(s, 0), *w = sh_tens(s, 1);
  if (!x || !w) return;
  int nsp = w->rank - 2;
  if (nsp < 1 || (x->rank != w->rank && x->rank != w->rank - 1)) {
    sh_err(s, "input %s does not fit weight %s", sh_tstr(s, x), sh_tstr(s, w));
    return;
  }
  int64_t st[8], pad[8], dil[8], opad[8], groups, transposed;
  if (nsp > 8) {
    sh_err(s, "at most 8 spatial dims are supported");
    return;
  }
  if (!spatial(s, 3, "stride", nsp, NULL, 1, st) || !spatial(s, 4, "padding", nsp, NULL, 0, pad) ||
      !spatial(s, 5, "dilation", nsp, NULL, 1, dil) ||
      !sh_need_int(s, 6, "transposed", &transposed) || !sh_need_int(s, 8, "groups", &groups))
    return;
  int64_t zeros[8] = {0};
  if (transposed && !spatial(s, 7, "output_padding", nsp, zeros, 0, opad)) return;
  if (groups < 1) {
    sh_err(s, "groups must be >= 1, got %lld", (long long)groups);
    return;
  }
  int batched = x->rank == w->rank;
  ir_dim cin = x->dims[batched], cout;
  /* weight: [out, in/groups, k...], transposed [in, out/groups, k...] */
  ir_dim want = transposed ? w->dims[0] : ir_dim_mul(s->g, w->dims[1], D(s, groups));
  if (!sh_may_equal(s, cin, want)) {
    sh_err(s,
           "input %s has a different channel count than weight %s expects "
           "(groups=%lld)",
           sh_tstr(s, x), sh_tstr(s, w), (long long)groups);
    return;
  }
  cout = transposed ? ir_dim_mul(s->g, w->dims[1], D(s, groups)) : w->dims[0];
  ir_dim *o = dims_new(s, x->rank);
  if (batched) o[0] = x->dims[0];
  o[batched] = cout;
  for (int i = 0; i < nsp; i++) {
    ir_dim in = x->dims[batched + 1 + i];
    int64_t k;
    if (!dc(s, w->dims[2 + i], &k) || k < 1 || k > ((int64_t)1 << 40)) {
      sh_err(s, "the kernel size of %s is not a positive constant", sh_tstr(s, w));
      return;
    }
    if (!transposed) {
      o[batched + 1 + i] = window(s, in, k, st[i], pad[i], dil[i], false);
      if (!o[batched + 1 + i]) return;
    } else {
      /* (in - 1)*s - 2p + d(k-1) + output_padding + 1 */
      ir_dim t = ir_dim_mul(s->g, ir_dim_add(s->g, in, D(s, -1)), D(s, st[i]));
      o[batched + 1 + i] = ir_dim_add(s->g, t, D(s, dil[i] * (k - 1) + opad[i] + 1 - 2 * pad[i]));
    }
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
}

/* ---- rules: pooling --------------------------------------------------- */

/* max_pool{1,2}d(x, k, s, p, d, ceil), max_pool2d_with_indices,
 * avg_pool{1,2}d(x, k, s, p, ceil, count_include_pad[, divisor]). */
void sh_r_pool(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  ir_op op = N(s)->op;
  int nsp = (op == NN_OP_MAX_POOL1D || op == NN_OP_AVG_POOL1D) ? 1
            : (op == NN_OP_MAX_POOL3D || op == NN_OP_MAX_POOL3D_INDICES || op == NN_OP_AVG_POOL3D)
                ? 3
                : 2;
  bool avg = op == NN_OP_AVG_POOL2D || op == NN_OP_AVG_POOL1D || op == NN_OP_AVG_POOL3D;
  if (x->rank != nsp + 1 && x->rank != nsp + 2) {
    sh_err(s, "expects a %d-d or %d-d input, got %s", nsp + 1, nsp + 2, sh_tstr(s, x));
    return;
  }
  int64_t k[3], st[3], pad[3], dil[3] = {1, 1, 1}, ceil_mode;
  if (!spatial(s, 1, "kernel_size", nsp, NULL, 1, k) || !spatial(s, 2, "stride", nsp, k, 1, st) ||
      !spatial(s, 3, "padding", nsp, NULL, 0, pad) ||
      (!avg && !spatial(s, 4, "dilation", nsp, NULL, 1, dil)) ||
      !sh_need_int(s, avg ? 4 : 5, "ceil_mode", &ceil_mode))
    return;
  ir_dim *o = dims_new(s, x->rank);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  for (int i = 0; i < nsp; i++) {
    if (pad[i] * 2 > k[i]) {
      sh_err(s, "padding %lld is more than half the kernel size %lld", (long long)pad[i],
             (long long)k[i]);
      return;
    }
    int j = x->rank - nsp + i;
    o[j] = window(s, x->dims[j], k[i], st[i], pad[i], dil[i], ceil_mode);
    if (!o[j]) return;
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
  if (N(s)->nout == 2) set(s, 1, tensor(s, NN_DT_I64, x->rank, o));
}

/* adaptive_{avg,max}_pool{1,2,3}d(x, output_size): the spatial dims become
 * output_size (none keeps the input's). */
void sh_r_adaptive(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  ir_op op = N(s)->op;
  int nsp = op == NN_OP_ADAPTIVE_AVG_POOL1D || op == NN_OP_ADAPTIVE_MAX_POOL1D ? 1
            : op == NN_OP_ADAPTIVE_AVG_POOL3D || op == NN_OP_ADAPTIVE_MAX_POOL3D
                ? 3
                : 2;
  if (x->rank != nsp + 1 && x->rank != nsp + 2) {
    sh_err(s, "expects a %d-d or %d-d input, got %s", nsp + 1, nsp + 2, sh_tstr(s, x));
    return;
  }
  int64_t *v;
  ir_dim *y;
  int n;
  if (!sh_opshape(s, 1, "output_size", true, &v, &y, &n)) return;
  if (n != 1 && n != nsp) {
    sh_err(s, "output_size must have %d elements, got %d", nsp, n);
    return;
  }
  ir_dim *o = dims_new(s, x->rank);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  for (int i = 0; i < nsp; i++) {
    int j = n == 1 ? 0 : i, at = x->rank - nsp + i;
    if (v[j] == SH_NONE) continue;
    if (v[j] == SH_SYM) {
      o[at] = y[j];
    } else if (v[j] < 0) {
      sh_err(s, "output_size must be >= 0, got %lld", (long long)v[j]);
      return;
    } else {
      o[at] = D(s, v[j]);
    }
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
  if (N(s)->nout == 2) set(s, 1, tensor(s, NN_DT_I64, x->rank, o));
}

/* ---- rules: reductions ------------------------------------------------ */

/* The shape left after reducing `mask` dims of x (kept as 1 with keepdim). */
static const ir_type *reduced(sh *s, const ir_type *x, const bool *mask, bool keepdim,
                              nn_dtype dt) {
  ir_dim *o = dims_new(s, x->rank);
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    if (!mask[i])
      o[r++] = x->dims[i];
    else if (keepdim)
      o[r++] = D(s, 1);
  }
  return tensor(s, dt, r, o);
}

/* sum/mean(x, dims?, keepdim, dtype?), amax/amin(x, dims, keepdim),
 * norm(x, p?, dims, keepdim): none or empty dims reduce everything. */
void sh_r_reduce(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  ir_op op = N(s)->op;
  int idims = op == NN_OP_NORM ? 2 : 1, ikeep = idims + 1;
  int64_t keep;
  if (!sh_need_int(s, ikeep, "keepdim", &keep)) return;
  bool *mask = nn_alloc(s->a, (size_t)x->rank + 1);
  int64_t *v = NULL;
  int n = 0;
  if (!sh_is_none(s, idims) && !sh_oplist(s, idims, "dims", &v, &n)) return;
  for (int i = 0; i < x->rank; i++) mask[i] = n == 0;
  for (int j = 0; j < n; j++) {
    int d;
    if (!sh_wrapdim(s, v[j], x->rank, 0, &d)) return;
    if (x->rank == 0) continue;
    if (mask[d]) {
      sh_err(s, "dim %lld appears twice", (long long)v[j]);
      return;
    }
    mask[d] = true;
  }
  nn_dtype dt = x->dtype;
  if (op == NN_OP_SUM && dt != NN_DT_UNKNOWN && sh_category(dt) < 2) dt = NN_DT_I64;
  if (op == NN_OP_NORM && dt != NN_DT_UNKNOWN && sh_category(dt) < 2) dt = NN_DT_F32;
  if ((op == NN_OP_SUM || op == NN_OP_MEAN) && !sh_opdtype(s, 3, dt, &dt)) return;
  set(s, 0, reduced(s, x, mask, keep, dt));
}

/* max_all/min_all(x): 0-dim. */
void sh_r_reduce_all(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (x) set(s, 0, tensor(s, x->dtype, 0, NULL));
}

/* max_dim/min_dim(x, dim, keepdim) -> (values, i64 indices);
 * argmax/argmin(x, dim?, keepdim) -> i64 (all dims when dim is none). */
void sh_r_reduce_dim(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int64_t keep;
  if (!sh_need_int(s, 2, "keepdim", &keep)) return;
  bool *mask = nn_alloc(s->a, (size_t)x->rank + 1);
  ir_op op = N(s)->op;
  bool arg = op == NN_OP_ARGMAX || op == NN_OP_ARGMIN;
  if (arg && sh_is_none(s, 1)) {
    for (int i = 0; i < x->rank; i++) mask[i] = true;
  } else {
    int d;
    if (!sh_opdim(s, 1, x->rank, 0, &d)) return;
    if (x->rank) mask[d] = true;
  }
  if (arg) {
    set(s, 0, reduced(s, x, mask, keep, NN_DT_I64));
  } else {
    set(s, 0, reduced(s, x, mask, keep, x->dtype));
    set(s, 1, reduced(s, x, mask, keep, NN_DT_I64));
  }
}

/* softmax/log_softmax/cumsum(x, dim, dtype?): x's shape. */
void sh_r_softmax(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int d;
  if (!sh_opdim(s, 1, x->rank, 0, &d)) return;
  nn_dtype dt = x->dtype;
  if (N(s)->op == NN_OP_CUMSUM && dt != NN_DT_UNKNOWN && sh_category(dt) < 2) dt = NN_DT_I64;
  if (!sh_opdtype(s, 2, dt, &dt)) return;
  set(s, 0, tensor(s, dt, x->rank, x->dims));
}
