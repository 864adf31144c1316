/* expand.c — ATen ops expanded into the canonical ops once their operands
 * are typed: the losses, the distances, bilinear and broadcast_tensors.
 *
 * Each has its own row in ir/ops.def (shape rule `composite`, which leaves
 * the results untyped; lowering `removed`), so the schema table binds its
 * arguments like any op's and an IR file may name one. After the shapes
 * pass has typed the graph, pass_expand() replaces every such node whose
 * operands are typed by the formula PyTorch computes (its native
 * implementation, op by op) from elementwise math, reductions, gather and
 * where, inserted where the node was; the pipeline then types the graph
 * again (passes/pipeline.c), and repeats while a composite fed by another
 * one is left. The formulas need the operands' types: whether a
 * cross-entropy target holds class indices or probabilities, the class
 * count, a weight's shape. reduction is PyTorch's enum: 0 none, 1 mean,
 * 2 sum.
 *
 * Convolutions the lowering has no kernel for are rewritten here too: a
 * transposed one into a direct one, a 3-d one into 2-d ones.
 *
 * The recurrent layers (lstm, gru, rnn_tanh, rnn_relu) are composite rows
 * too, but the frontend expands them as it reads them
 * (frontend/lower_rnn.c); one met here comes from an IR file and is
 * refused.
 */
#include "passes.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { MAXR = 16 }; /* ranks a weights view is built for */

typedef struct bld {
  ir_graph *g;
  ir_nodeid at; /* the node being expanded: new nodes go before it */
  nn_loc loc;
  nn_diag *d;
  ir_value in[24];  /* its operands */
  ir_value more[3]; /* results after the first (multi-result ops) */
  const char *op;
  bool bad; /* an argument was refused (reported) */
} bld;

static ir_value E(bld *b, ir_op op, int n, ...) {
  ir_value in[8];
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) in[i] = va_arg(ap, ir_value);
  va_end(ap);
  ir_nodeid id = ir_insert_before(b->g, b->at, op, n, in, 1, b->loc);
  return ir_node_get(b->g, id)->out[0]; /* typed by the next shapes run */
}

static ir_value K(bld *b, ir_const c) {
  if (c.kind == IR_C_INTLIST) {
    int64_t *v = nn_alloc(b->g->arena, sizeof(int64_t) * (size_t)(c.n ? c.n : 1));
    if (c.n) memcpy(v, c.ints, sizeof(int64_t) * (size_t)c.n);
    c.ints = v;
  }
  ir_nodeid id = ir_insert_before(b->g, b->at, NN_OP_CONSTANT, 0, NULL, 1, b->loc);
  ir_node *n = ir_node_get(b->g, id);
  n->c = c;
  ir_set_type(b->g, n->out[0], ir_const_type(b->g, &c));
  return n->out[0];
}
static ir_value I(bld *b, int64_t i) { return K(b, (ir_const){.kind = IR_C_INT, .i = i}); }
static ir_value F(bld *b, double f) { return K(b, (ir_const){.kind = IR_C_FLOAT, .f = f}); }
static ir_value Bo(bld *b, bool v) { return K(b, (ir_const){.kind = IR_C_BOOL, .i = v}); }
static ir_value NONE(bld *b) { return K(b, (ir_const){.kind = IR_C_NONE}); }
static ir_value DIMS(bld *b, int n, const int64_t *d) {
  return K(b, (ir_const){.kind = IR_C_INTLIST, .n = n, .ints = (int64_t *)d});
}
static ir_value DIM1(bld *b, int64_t d) { return DIMS(b, 1, &d); }

static void fail(bld *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(bld *b, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!b->bad) nn_error(b->d, b->loc, "'%s': %s", b->op, msg);
  b->bad = true;
}

/* ---- arguments ------------------------------------------------------------- */

/* Tensor operand i. */
static ir_value T(bld *b, int i) { return b->in[i]; }

static const ir_type *TYP(bld *b, ir_value v) { return ir_vtype(b->g, v); }

/* Optional tensor operand i: IR_NOVAL when none. */
static ir_value OT(bld *b, int i) {
  return TYP(b, b->in[i])->kind == IR_T_NONE ? IR_NOVAL : b->in[i];
}

/* A number operand known at compile time. */
static double NUM(bld *b, int i, const char *what, double dflt) {
  const ir_const *c;
  if (ir_value_const(b->g, b->in[i], &c) &&
      (c->kind == IR_C_INT || c->kind == IR_C_FLOAT || c->kind == IR_C_BOOL))
    return c->kind == IR_C_FLOAT ? c->f : (double)c->i;
  fail(b, "%s must be known when the model is compiled", what);
  return dflt;
}

static int64_t INT(bld *b, int i, const char *what, int64_t dflt) {
  return (int64_t)NUM(b, i, what, (double)dflt);
}

/* The rank of a tensor value, -1 when unknown. */
static int rank_of(bld *b, ir_value v) {
  const ir_type *t = TYP(b, v);
  return t->kind == IR_T_TENSOR ? t->rank : -1;
}

/* ---- formulas ------------------------------------------------------------ */

static ir_value add(bld *b, ir_value x, ir_value y) { return E(b, NN_OP_ADD, 3, x, y, I(b, 1)); }
static ir_value sub(bld *b, ir_value x, ir_value y) { return E(b, NN_OP_SUB, 3, x, y, I(b, 1)); }
static ir_value mul(bld *b, ir_value x, ir_value y) { return E(b, NN_OP_MUL, 2, x, y); }
static ir_value dvd(bld *b, ir_value x, ir_value y) { return E(b, NN_OP_DIV, 3, x, y, NONE(b)); }
static ir_value un(bld *b, ir_op op, ir_value x) { return E(b, op, 1, x); }
static ir_value clamp_min(bld *b, ir_value x, double lo) {
  return E(b, NN_OP_CLAMP, 3, x, F(b, lo), NONE(b));
}
static ir_value where(bld *b, ir_value c, ir_value x, ir_value y) {
  return E(b, NN_OP_WHERE, 3, c, x, y);
}
static ir_value sum_dim(bld *b, ir_value x, int64_t d, bool keep) {
  return E(b, NN_OP_SUM, 4, x, DIM1(b, d), Bo(b, keep), NONE(b));
}
static ir_value sum_all(bld *b, ir_value x) {
  return E(b, NN_OP_SUM, 4, x, NONE(b), Bo(b, false), NONE(b));
}

/* The loss reduced as `reduction` says. */
static ir_value reduce(bld *b, ir_value x, int64_t r) {
  if (r == 0) return x;
  return E(b, r == 1 ? NN_OP_MEAN : NN_OP_SUM, 4, x, NONE(b), Bo(b, false), NONE(b));
}

static int64_t reduction(bld *b, int i) {
  int64_t r = INT(b, i, "reduction", 1);
  if (r < 0 || r > 2) {
    fail(b, "reduction %lld is not none (0), mean (1) or sum (2)", (long long)r);
  }
  return r;
}

/* p-norm of x over its last dim (pairwise_distance). */
static ir_value norm_last(bld *b, ir_value x, double p, bool keep) {
  return E(b, NN_OP_NORM, 4, x, F(b, p), DIM1(b, -1), Bo(b, keep));
}

static ir_value pairwise(bld *b, ir_value x1, ir_value x2, double p, double eps, bool keep) {
  return norm_last(b, E(b, NN_OP_ADD, 3, sub(b, x1, x2), F(b, eps), I(b, 1)), p, keep);
}

/* -w[t] * x[t] along the class dim cd of log-probabilities x, 0 where t is
 * ignore_index; *wsum gets sum(w[t]) over the rest (the mean's divisor). */
static ir_value nll_terms(bld *b, ir_value x, ir_value t, ir_value w, int64_t ignore, int cd,
                          ir_value *wsum) {
  ir_value valid = E(b, NN_OP_NE, 2, t, I(b, ignore));
  ir_value ts = where(b, valid, t, I(b, 0)); /* ignored targets index class 0 */
  ir_value picked = E(b, NN_OP_SQUEEZE, 2,
                      E(b, NN_OP_GATHER, 4, x, I(b, cd), E(b, NN_OP_UNSQUEEZE, 2, ts, I(b, cd)),
                        Bo(b, false)),
                      I(b, cd));
  ir_value wt = w != IR_NOVAL ? E(b, NN_OP_EMBEDDING, 5, E(b, NN_OP_UNSQUEEZE, 2, w, I(b, 1)), ts,
                                  I(b, -1), Bo(b, false), Bo(b, false))
                              : IR_NOVAL;
  if (wt != IR_NOVAL) wt = E(b, NN_OP_SQUEEZE, 2, wt, I(b, -1));
  ir_value validf = E(b, NN_OP_TO, 2, valid, I(b, 6)); /* float32 */
  ir_value wv = wt != IR_NOVAL ? mul(b, wt, validf) : validf;
  *wsum = sum_all(b, wv);
  return un(b, NN_OP_NEG, mul(b, picked, wv));
}

static ir_value nll(bld *b, ir_value x, ir_value t, ir_value w, int64_t r, int64_t ignore, int cd) {
  ir_value wsum;
  ir_value terms = nll_terms(b, x, t, w, ignore, cd, &wsum);
  if (r == 0) return terms;
  ir_value s = sum_all(b, terms);
  return r == 2 ? s : dvd(b, s, wsum);
}

/* The class dim of an input: 0 when unbatched (1-d), else 1. */
static int class_dim(bld *b, ir_value x) { return rank_of(b, x) == 1 ? 0 : 1; }

/* ---- attention ----------------------------------------------------------- */

static ir_value linear(bld *b, ir_value x, ir_value w, ir_value bias) {
  return E(b, NN_OP_LINEAR, 3, x, w, bias == IR_NOVAL ? NONE(b) : bias);
}

/* rows [k*E, (k+1)*E) of a packed in-projection weight or bias */
static ir_value third(bld *b, ir_value w, int64_t k, int64_t e) {
  return E(b, NN_OP_SLICE, 5, w, I(b, 0), I(b, k * e), I(b, (k + 1) * e), I(b, 1));
}

/* [B, T, E] -> [B, H, T, E/H] */
static ir_value heads(bld *b, ir_value x, int64_t h, int64_t dh) {
  int64_t hd[2] = {h, dh}, perm[4] = {0, 2, 1, 3};
  return E(b, NN_OP_PERMUTE, 2, E(b, NN_OP_UNFLATTEN, 3, x, I(b, -1), DIMS(b, 2, hd)),
           DIMS(b, 4, perm));
}

/* PyTorch's native multi-head attention (the eval-mode fast path): the
 * in-projection (q scaled by 1/sqrt(E/H) after its bias), softmax of
 * q k^T with the mask, the heads' outputs concatenated and projected.
 * *weights gets the attention weights, averaged over the heads when asked. */
static ir_value mha(bld *b, ir_value q, ir_value k, ir_value v, int64_t e, int64_t h, ir_value w_in,
                    ir_value b_in, ir_value w_out, ir_value b_out, ir_value mask, int64_t mask_type,
                    bool average, ir_value *weights) {
  if (h < 1 || e % h) {
    fail(b, "embed_dim %lld is not a multiple of num_heads %lld", (long long)e, (long long)h);
    return IR_NOVAL;
  }
  if (rank_of(b, q) != 3 || rank_of(b, k) != 3 || rank_of(b, v) != 3) {
    fail(b, "expects batched [B, T, E] query, key and value");
    return IR_NOVAL;
  }
  int64_t dh = e / h;
  ir_value qp = linear(b, q, third(b, w_in, 0, e), third(b, b_in, 0, e));
  ir_value kp = linear(b, k, third(b, w_in, 1, e), third(b, b_in, 1, e));
  ir_value vp = linear(b, v, third(b, w_in, 2, e), third(b, b_in, 2, e));
  qp = mul(b, heads(b, qp, h, dh), F(b, 1.0 / sqrt((double)dh)));
  ir_value scores = E(b, NN_OP_MATMUL, 2, qp,
                      E(b, NN_OP_TRANSPOSE, 3, heads(b, kp, h, dh), I(b, -1), I(b, -2)));
  if (mask != IR_NOVAL) {
    const ir_type *mt = TYP(b, mask);
    ir_value m = mask;
    if (mask_type == 1 && mt->rank == 2) /* key padding [B, S] -> [B, 1, 1, S] */
      m = E(b, NN_OP_UNSQUEEZE, 2, E(b, NN_OP_UNSQUEEZE, 2, m, I(b, 1)), I(b, 1));
    scores = mt->dtype == NN_DT_BOOL ? E(b, NN_OP_MASKED_FILL, 3, scores, m, F(b, -INFINITY))
                                     : add(b, scores, m);
  }
  ir_value attn = E(b, NN_OP_SOFTMAX, 3, scores, I(b, -1), NONE(b));
  int64_t perm[4] = {0, 2, 1, 3};
  ir_value ctx = E(b, NN_OP_PERMUTE, 2, E(b, NN_OP_MATMUL, 2, attn, heads(b, vp, h, dh)),
                   DIMS(b, 4, perm));
  ctx = E(b, NN_OP_FLATTEN, 3, ctx, I(b, 2), I(b, 3));
  *weights = average ? E(b, NN_OP_MEAN, 4, attn, DIM1(b, 1), Bo(b, false), NONE(b)) : attn;
  return linear(b, ctx, w_out, b_out);
}

static ir_value layer_norm(bld *b, ir_value x, int64_t e, ir_value w, ir_value bias, double eps) {
  return E(b, NN_OP_LAYER_NORM, 6, x, DIM1(b, e), w, bias, F(b, eps), Bo(b, true));
}

/* ---- the ops ----------------------------------------------------------------- */

static ir_value expand_op(bld *b, ir_op op) {
  switch (op) {
  case NN_OP_BROADCAST_TENSORS: {
    ir_nodeid def = b->g->values.data[b->in[0]].def;
    const ir_node *ln = def >= 0 ? ir_node_get(b->g, def) : NULL;
    if (!ln || ln->op != NN_OP_LIST_CONSTRUCT || ln->nin < 1) {
      fail(b, "needs its tensors as a list written out");
      return IR_NOVAL;
    }
    int n = ln->nin;
    ir_value *vs = nn_alloc(b->g->arena, sizeof(ir_value) * (size_t)n);
    memcpy(vs, ln->in, sizeof(ir_value) * (size_t)n);
    ir_nodeid sid = ir_insert_before(b->g, b->at, NN_OP_BROADCAST_SIZES, n, vs, 1, b->loc);
    ir_value sizes = ir_node_get(b->g, sid)->out[0];
    ir_value *ex = nn_alloc(b->g->arena, sizeof(ir_value) * (size_t)n);
    for (int i = 0; i < n; i++) ex[i] = E(b, NN_OP_EXPAND, 3, vs[i], sizes, Bo(b, false));
    ir_nodeid lid = ir_insert_before(b->g, b->at, NN_OP_LIST_CONSTRUCT, n, ex, 1, b->loc);
    return ir_node_get(b->g, lid)->out[0];
  }
  case NN_OP_MSE_LOSS: {
    ir_value d = sub(b, T(b, 0), T(b, 1));
    return (reduce(b, mul(b, d, d), reduction(b, 2)));
  }
  case NN_OP_L1_LOSS:
    return (reduce(b, un(b, NN_OP_ABS, sub(b, T(b, 0), T(b, 1))), reduction(b, 2)));
  case NN_OP_SMOOTH_L1_LOSS:
  case NN_OP_HUBER_LOSS: {
    bool huber = op == NN_OP_HUBER_LOSS;
    double beta = NUM(b, 3, huber ? "delta" : "beta", 1.0);
    ir_value d = un(b, NN_OP_ABS, sub(b, T(b, 0), T(b, 1)));
    ir_value l;
    if (!huber && beta == 0) {
      l = d;
    } else {
      ir_value quad = mul(b, mul(b, d, d), F(b, huber ? 0.5 : 0.5 / beta));
      ir_value lin = sub(b, d, F(b, 0.5 * beta));
      if (huber) lin = mul(b, lin, F(b, beta));
      l = where(b, E(b, NN_OP_LT, 2, d, F(b, beta)), quad, lin);
    }
    return (reduce(b, l, reduction(b, 2)));
  }
  case NN_OP_BINARY_CROSS_ENTROPY: {
    ir_value x = T(b, 0), t = T(b, 1), w = OT(b, 2);
    ir_value lx = clamp_min(b, un(b, NN_OP_LOG, x), -100);
    ir_value l1x = clamp_min(b, un(b, NN_OP_LOG, E(b, NN_OP_RSUB, 3, x, F(b, 1), I(b, 1))), -100);
    ir_value l = un(b, NN_OP_NEG,
                    add(b, mul(b, t, lx), mul(b, E(b, NN_OP_RSUB, 3, t, F(b, 1), I(b, 1)), l1x)));
    if (w != IR_NOVAL) l = mul(b, l, w);
    return (reduce(b, l, reduction(b, 3)));
  }
  case NN_OP_BCE_WITH_LOGITS: {
    ir_value x = T(b, 0), t = T(b, 1), w = OT(b, 2), pw = OT(b, 3);
    /* log(1 + exp(-x)) computed stably */
    ir_value sp = add(b,
                      un(b, NN_OP_LOG1P, un(b, NN_OP_EXP, un(b, NN_OP_NEG, un(b, NN_OP_ABS, x)))),
                      clamp_min(b, un(b, NN_OP_NEG, x), 0));
    if (pw != IR_NOVAL) /* (pos_weight - 1) * t + 1 scales it */
      sp = mul(b, add(b, mul(b, sub(b, pw, F(b, 1)), t), F(b, 1)), sp);
    ir_value l = add(b, mul(b, E(b, NN_OP_RSUB, 3, t, F(b, 1), I(b, 1)), x), sp);
    if (w != IR_NOVAL) l = mul(b, l, w);
    return (reduce(b, l, reduction(b, 4)));
  }
  case NN_OP_NLL_LOSS: {
    ir_value x = T(b, 0);
    return (nll(b, x, T(b, 1), OT(b, 2), reduction(b, 3), INT(b, 4, "ignore_index", -100),
                class_dim(b, x)));
  }
  case NN_OP_CROSS_ENTROPY_LOSS: {
    ir_value x = T(b, 0), t = T(b, 1), w = OT(b, 2);
    int64_t r = reduction(b, 3), ignore = INT(b, 4, "ignore_index", -100);
    double eps = NUM(b, 5, "label_smoothing", 0.0);
    int cd = class_dim(b, x);
    ir_value ls = E(b, NN_OP_LOG_SOFTMAX, 3, x, I(b, cd), NONE(b));
    const ir_type *tt = ir_vtype(b->g, t), *xt = ir_vtype(b->g, x);
    bool probs = tt->kind == IR_T_TENSOR && nn_dtype_is_float(tt->dtype);
    if (tt->kind == IR_T_TENSOR && tt->dtype == NN_DT_UNKNOWN) {
      fail(b, "the target's dtype must be known (class indices or probabilities)");
      return IR_NOVAL;
    }
    ir_value C = E(b, NN_OP_SIZE, 2, x, I(b, cd)); /* the class count */
    /* the class weights broadcast over the class dim */
    ir_value wc = IR_NOVAL;
    if (w != IR_NOVAL) {
      int64_t shape[MAXR];
      int rk = xt->kind == IR_T_TENSOR ? xt->rank : -1;
      if (rk < 1 || rk > MAXR) {
        fail(b, "the input's rank must be known with weights");
        return IR_NOVAL;
      }
      for (int i = 0; i < rk; i++) shape[i] = i == cd ? -1 : 1;
      wc = E(b, NN_OP_VIEW, 2, w, DIMS(b, rk, shape));
    }
    if (probs) {
      ir_value tp = eps > 0
                        ? add(b, mul(b, t, F(b, 1 - eps)), E(b, NN_OP_SCALAR_DIV, 2, F(b, eps), C))
                        : t;
      ir_value prod = mul(b, ls, tp);
      if (wc != IR_NOVAL) prod = mul(b, prod, wc);
      ir_value per = un(b, NN_OP_NEG, sum_dim(b, prod, cd, false));
      if (r == 0) return (per);
      ir_value s = sum_all(b, per);
      if (r == 2) return (s);
      /* mean: over input.numel() / C */
      ir_value n = E(b, NN_OP_NUMEL, 1, x);
      return (dvd(b, mul(b, s, C), n));
    }
    ir_value wsum;
    ir_value terms = nll_terms(b, ls, t, w, ignore, cd, &wsum);
    ir_value out;
    if (r == 0)
      out = terms;
    else if (r == 2)
      out = sum_all(b, terms);
    else
      out = dvd(b, sum_all(b, terms), wsum);
    if (eps > 0) {
      ir_value sm = wc != IR_NOVAL ? mul(b, ls, wc) : ls;
      ir_value smooth = un(b, NN_OP_NEG, sum_dim(b, sm, cd, false));
      ir_value valid = E(b, NN_OP_NE, 2, t, I(b, ignore));
      smooth = where(b, valid, smooth, F(b, 0));
      ir_value sr;
      if (r == 0) {
        sr = smooth;
      } else if (r == 2) {
        sr = sum_all(b, smooth);
      } else {
        ir_value den = sum_all(b, E(b, NN_OP_TO, 2, valid, I(b, 6)));
        if (w != IR_NOVAL) den = wsum;
        sr = dvd(b, sum_all(b, smooth), den);
      }
      out = add(b, mul(b, out, F(b, 1 - eps)), dvd(b, mul(b, sr, F(b, eps)), C));
    }
    return (out);
  }
  case NN_OP_KL_DIV: {
    ir_value x = T(b, 0), t = T(b, 1);
    bool log_target = NUM(b, 3, "log_target", 0) != 0;
    ir_value l = log_target ? mul(b, un(b, NN_OP_EXP, t), sub(b, t, x))
                            : sub(b, E(b, NN_OP_XLOGY, 2, t, t), mul(b, t, x));
    return (reduce(b, l, reduction(b, 2)));
  }
  case NN_OP_SOFT_MARGIN_LOSS: {
    ir_value l = un(b, NN_OP_LOG1P, un(b, NN_OP_EXP, un(b, NN_OP_NEG, mul(b, T(b, 1), T(b, 0)))));
    return (reduce(b, l, reduction(b, 2)));
  }
  case NN_OP_MARGIN_RANKING_LOSS: {
    double margin = NUM(b, 3, "margin", 0);
    ir_value d = un(b, NN_OP_NEG, mul(b, T(b, 2), sub(b, T(b, 0), T(b, 1))));
    return (reduce(b, clamp_min(b, add(b, d, F(b, margin)), 0), reduction(b, 4)));
  }
  case NN_OP_HINGE_EMBEDDING_LOSS: {
    ir_value x = T(b, 0), t = T(b, 1);
    double margin = NUM(b, 2, "margin", 1);
    ir_value m = clamp_min(b, E(b, NN_OP_RSUB, 3, x, F(b, margin), I(b, 1)), 0);
    ir_value om = where(b, E(b, NN_OP_NE, 2, t, I(b, 1)), m, F(b, 0));
    ir_value os = where(b, E(b, NN_OP_NE, 2, t, I(b, -1)), x, F(b, 0));
    return (reduce(b, add(b, om, os), reduction(b, 3)));
  }
  case NN_OP_COSINE_EMBEDDING_LOSS: {
    ir_value x1 = T(b, 0), x2 = T(b, 1), t = T(b, 2);
    double margin = NUM(b, 3, "margin", 0);
    const double EPS = 1e-12;
    ir_value prod = sum_dim(b, mul(b, x1, x2), -1, false);
    ir_value m1 = add(b, sum_dim(b, mul(b, x1, x1), -1, false), F(b, EPS));
    ir_value m2 = add(b, sum_dim(b, mul(b, x2, x2), -1, false), F(b, EPS));
    ir_value cs = dvd(b, prod, un(b, NN_OP_SQRT, mul(b, m1, m2)));
    ir_value pos = E(b, NN_OP_RSUB, 3, cs, F(b, 1), I(b, 1));
    ir_value neg = clamp_min(b, sub(b, cs, F(b, margin)), 0);
    ir_value l = add(b, where(b, E(b, NN_OP_EQ, 2, t, I(b, 1)), pos, F(b, 0)),
                     where(b, E(b, NN_OP_EQ, 2, t, I(b, -1)), neg, F(b, 0)));
    return (reduce(b, l, reduction(b, 4)));
  }
  case NN_OP_TRIPLET_MARGIN_LOSS: {
    ir_value a = T(b, 0), p = T(b, 1), n = T(b, 2);
    double margin = NUM(b, 3, "margin", 1), pn = NUM(b, 4, "p", 2), eps = NUM(b, 5, "eps", 1e-6);
    bool swap = NUM(b, 6, "swap", 0) != 0;
    ir_value dp = pairwise(b, a, p, pn, eps, false), dn = pairwise(b, a, n, pn, eps, false);
    if (swap) dn = E(b, NN_OP_MINIMUM, 2, dn, pairwise(b, p, n, pn, eps, false));
    ir_value l = clamp_min(b, add(b, sub(b, dp, dn), F(b, margin)), 0);
    return (reduce(b, l, reduction(b, 7)));
  }
  case NN_OP_PAIRWISE_DISTANCE:
    return (pairwise(b, T(b, 0), T(b, 1), NUM(b, 2, "p", 2), NUM(b, 3, "eps", 1e-6),
                     NUM(b, 4, "keepdim", 0) != 0));
  case NN_OP_COSINE_SIMILARITY: {
    ir_value x1 = T(b, 0), x2 = T(b, 1);
    int64_t d = INT(b, 2, "dim", 1);
    double eps = NUM(b, 3, "eps", 1e-8);
    ir_value w12 = sum_dim(b, mul(b, x1, x2), d, false);
    ir_value w1 = sum_dim(b, mul(b, x1, x1), d, false);
    ir_value w2 = sum_dim(b, mul(b, x2, x2), d, false);
    ir_value n12 = un(b, NN_OP_SQRT, clamp_min(b, mul(b, w1, w2), eps * eps));
    return (dvd(b, w12, n12));
  }
  case NN_OP_POISSON_NLL_LOSS: {
    ir_value x = T(b, 0), t = T(b, 1);
    bool log_input = NUM(b, 2, "log_input", 1) != 0, full = NUM(b, 3, "full", 0) != 0;
    double eps = NUM(b, 4, "eps", 1e-8);
    ir_value l = log_input ? sub(b, un(b, NN_OP_EXP, x), mul(b, t, x))
                           : sub(b, x, mul(b, t, un(b, NN_OP_LOG, add(b, x, F(b, eps)))));
    if (full) { /* Stirling's term t log t - t + log(2 pi t)/2 where t > 1 */
      ir_value st = add(b, sub(b, mul(b, t, un(b, NN_OP_LOG, t)), t),
                        mul(b, un(b, NN_OP_LOG, mul(b, t, F(b, 6.283185307179586))), F(b, 0.5)));
      l = add(b, l, where(b, E(b, NN_OP_GT, 2, t, F(b, 1)), st, F(b, 0)));
    }
    return (reduce(b, l, reduction(b, 5)));
  }
  case NN_OP_MULTI_MARGIN_LOSS: {
    ir_value x = T(b, 0), t = T(b, 1), w = OT(b, 4);
    int64_t p = INT(b, 2, "p", 1);
    double margin = NUM(b, 3, "margin", 1);
    int64_t r = reduction(b, 5);
    if (rank_of(b, x) != 2 || (p != 1 && p != 2)) {
      fail(b, "supported on a 2-d input, p 1 or 2");
      return IR_NOVAL;
    }
    ir_value C = E(b, NN_OP_SIZE, 2, x, I(b, 1));
    ir_value tu = E(b, NN_OP_UNSQUEEZE, 2, t, I(b, 1));
    ir_value xy = E(b, NN_OP_GATHER, 4, x, I(b, 1), tu, Bo(b, false));
    ir_value z = clamp_min(b, add(b, sub(b, x, xy), F(b, margin)), 0);
    if (p == 2) z = mul(b, z, z);
    if (w != IR_NOVAL)
      z = mul(b, z,
              E(b, NN_OP_EMBEDDING, 5, E(b, NN_OP_UNSQUEEZE, 2, w, I(b, 1)), t, I(b, -1),
                Bo(b, false), Bo(b, false)));
    ir_value cls = E(b, NN_OP_ARANGE, 4, I(b, 0), C, I(b, 1), NONE(b));
    z = where(b, E(b, NN_OP_EQ, 2, cls, tu), F(b, 0), z);
    ir_value per = dvd(b, sum_dim(b, z, 1, false), C);
    return (reduce(b, per, r));
  }
  case NN_OP_BILINEAR: {
    /* y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j] + b[o]:
     * t = x1 @ W' (W' [I1, O*I2]), then (t viewed [..., O, I2] * x2[..., 1, I2]).sum(-1) */
    ir_value x1 = T(b, 0), x2 = T(b, 1), w = T(b, 2), bias = OT(b, 3);
    const ir_type *wt = ir_vtype(b->g, w);
    int64_t O, I1, I2;
    if (wt->kind != IR_T_TENSOR || wt->rank != 3 || !ir_dim_is_const(b->g, wt->dims[0], &O) ||
        !ir_dim_is_const(b->g, wt->dims[1], &I1) || !ir_dim_is_const(b->g, wt->dims[2], &I2)) {
      fail(b, "the weight's shape [out, in1, in2] must be known");
      return IR_NOVAL;
    }
    ir_value wp = E(b, NN_OP_RESHAPE, 2,
                    E(b, NN_OP_PERMUTE, 2, w, DIMS(b, 3, (int64_t[]){0, 2, 1})),
                    DIMS(b, 2, (int64_t[]){O * I2, I1}));
    ir_value tproj = E(b, NN_OP_LINEAR, 3, x1, wp, NONE(b));
    ir_value tv = E(b, NN_OP_UNFLATTEN, 3, tproj, I(b, -1), DIMS(b, 2, (int64_t[]){O, I2}));
    ir_value y = sum_dim(b, mul(b, tv, E(b, NN_OP_UNSQUEEZE, 2, x2, I(b, -2))), -1, false);
    if (bias != IR_NOVAL) y = add(b, y, bias);
    return (y);
  }
  case NN_OP_NATIVE_MHA: {
    int64_t mt = TYP(b, b->in[12])->kind == IR_T_NONE ? -1 : INT(b, 12, "mask_type", -1);
    ir_value w = IR_NOVAL;
    ir_value out = mha(b, T(b, 0), T(b, 1), T(b, 2), INT(b, 3, "embed_dim", 0),
                       INT(b, 4, "num_head", 0), T(b, 5), T(b, 6), T(b, 7), T(b, 8), OT(b, 9), mt,
                       NUM(b, 11, "average_attn_weights", 1) != 0, &w);
    b->more[0] = w;
    return out;
  }
  case NN_OP_TRANSFORMER_ENCODER_LAYER: {
    ir_value src = T(b, 0);
    int64_t e = INT(b, 1, "embed_dim", 0), h = INT(b, 2, "num_heads", 0);
    bool gelu = NUM(b, 7, "use_gelu", 0) != 0, norm_first = NUM(b, 8, "norm_first", 0) != 0;
    double eps = NUM(b, 9, "eps", 1e-5);
    int64_t mt = TYP(b, b->in[19])->kind == IR_T_NONE ? -1 : INT(b, 19, "mask_type", -1);
    if (b->bad) return IR_NOVAL;
    ir_value x = norm_first ? layer_norm(b, src, e, T(b, 10), T(b, 11), eps) : src;
    ir_value w = IR_NOVAL;
    x = mha(b, x, x, x, e, h, T(b, 3), T(b, 4), T(b, 5), T(b, 6), OT(b, 18), mt, false, &w);
    if (x == IR_NOVAL) return IR_NOVAL;
    x = add(b, x, src);
    if (!norm_first) x = layer_norm(b, x, e, T(b, 10), T(b, 11), eps);
    ir_value res = x;
    if (norm_first) x = layer_norm(b, x, e, T(b, 12), T(b, 13), eps);
    x = linear(b, x, T(b, 14), T(b, 15));
    x = gelu ? E(b, NN_OP_GELU, 2, x, K(b, (ir_const){.kind = IR_C_STR, .s = "none"}))
             : un(b, NN_OP_RELU, x);
    x = add(b, linear(b, x, T(b, 16), T(b, 17)), res);
    if (!norm_first) x = layer_norm(b, x, e, T(b, 12), T(b, 13), eps);
    return x;
  }
  case NN_OP_GLU: {
    ir_value x = T(b, 0);
    int64_t d = INT(b, 1, "dim", -1);
    ir_value n = E(b, NN_OP_SIZE, 2, x, I(b, d));
    ir_value half = E(b, NN_OP_SCALAR_FLOORDIV, 2, n, I(b, 2));
    ir_value a = E(b, NN_OP_SLICE, 5, x, I(b, d), I(b, 0), half, I(b, 1));
    ir_value g = E(b, NN_OP_SLICE, 5, x, I(b, d), half, n, I(b, 1));
    return mul(b, a, un(b, NN_OP_SIGMOID, g));
  }
  case NN_OP_MAX_POOL1D_INDICES: { /* over [.., C, 1, L] as 2-d pooling */
    const ir_const *kc, *sc, *pc, *dc;
    if (!ir_value_const(b->g, b->in[1], &kc) || !ir_value_const(b->g, b->in[2], &sc) ||
        !ir_value_const(b->g, b->in[3], &pc) || !ir_value_const(b->g, b->in[4], &dc) ||
        kc->kind != IR_C_INTLIST || kc->n != 1 || sc->kind != IR_C_INTLIST || sc->n > 1 ||
        pc->kind != IR_C_INTLIST || pc->n != 1 || dc->kind != IR_C_INTLIST || dc->n != 1) {
      fail(b, "kernel, stride, padding and dilation must be known one-element lists");
      return IR_NOVAL;
    }
    int64_t k2[2] = {1, kc->ints[0]}, s2[2] = {1, sc->n ? sc->ints[0] : kc->ints[0]};
    int64_t p2[2] = {0, pc->ints[0]}, d2[2] = {1, dc->ints[0]};
    ir_value x4 = E(b, NN_OP_UNSQUEEZE, 2, T(b, 0), I(b, -2));
    ir_value in[6] = {x4, DIMS(b, 2, k2), DIMS(b, 2, s2), DIMS(b, 2, p2), DIMS(b, 2, d2), b->in[5]};
    ir_nodeid id = ir_insert_before(b->g, b->at, NN_OP_MAX_POOL2D_INDICES, 6, in, 2, b->loc);
    ir_value v = ir_node_get(b->g, id)->out[0], ix = ir_node_get(b->g, id)->out[1];
    b->more[0] = E(b, NN_OP_SQUEEZE, 2, ix, I(b, -2));
    return E(b, NN_OP_SQUEEZE, 2, v, I(b, -2));
  }
  case NN_OP_EMBEDDING_BAG: {
    /* a [B, L] mask of which indices each bag holds, then a product with
     * the rows (sum, mean) or a masked max */
    ir_value w = T(b, 0), idx = T(b, 1), off = T(b, 2), psw = OT(b, 6);
    int64_t mode = INT(b, 4, "mode", 0);
    bool last = NUM(b, 7, "include_last_offset", 0) != 0;
    if (rank_of(b, idx) != 1 || rank_of(b, off) != 1 || mode < 0 || mode > 2) {
      fail(b, "expects 1-d indices and offsets and mode 0, 1 or 2");
      return IR_NOVAL;
    }
    for (int i = 1; i < 4; i++)
      if (ir_use_count(b->g, ir_node_get(b->g, b->at)->out[i]) > 0) {
        fail(b, "only its first result (the bags) is supported");
        return IR_NOVAL;
      }
    ir_value L = E(b, NN_OP_SIZE, 2, idx, I(b, 0));
    ir_value starts = off, ends;
    if (last) {
      starts = E(b, NN_OP_SLICE, 5, off, I(b, 0), I(b, 0), I(b, -1), I(b, 1));
      ends = E(b, NN_OP_SLICE, 5, off, I(b, 0), I(b, 1), I(b, INT64_MAX), I(b, 1));
    } else {
      ir_value lt = E(b, NN_OP_UNSQUEEZE, 2, E(b, NN_OP_NUM_TO_TENSOR, 1, L), I(b, 0));
      ir_value parts[2] = {E(b, NN_OP_SLICE, 5, off, I(b, 0), I(b, 1), I(b, INT64_MAX), I(b, 1)),
                           lt};
      ir_nodeid lid = ir_insert_before(b->g, b->at, NN_OP_LIST_CONSTRUCT, 2, parts, 1, b->loc);
      ends = E(b, NN_OP_CAT, 2, ir_node_get(b->g, lid)->out[0], I(b, 0));
    }
    ir_value pos = E(b, NN_OP_UNSQUEEZE, 2, E(b, NN_OP_ARANGE, 4, I(b, 0), L, I(b, 1), NONE(b)),
                     I(b, 0));
    ir_value in_bag = E(b, NN_OP_LOGICAL_AND, 2,
                        E(b, NN_OP_GE, 2, pos, E(b, NN_OP_UNSQUEEZE, 2, starts, I(b, 1))),
                        E(b, NN_OP_LT, 2, pos, E(b, NN_OP_UNSQUEEZE, 2, ends, I(b, 1))));
    if (TYP(b, b->in[8])->kind != IR_T_NONE) { /* padding_idx rows count nowhere */
      int64_t pad = INT(b, 8, "padding_idx", -1);
      ir_value keep = E(b, NN_OP_NE, 2, idx, I(b, pad));
      in_bag = E(b, NN_OP_LOGICAL_AND, 2, in_bag, E(b, NN_OP_UNSQUEEZE, 2, keep, I(b, 0)));
    }
    ir_value rows = E(b, NN_OP_EMBEDDING, 5, w, idx, I(b, -1), Bo(b, false), Bo(b, false));
    if (psw != IR_NOVAL) rows = mul(b, rows, E(b, NN_OP_UNSQUEEZE, 2, psw, I(b, 1)));
    ir_value maskf = E(b, NN_OP_TO, 2, in_bag, I(b, 6));
    ir_value count = sum_dim(b, maskf, 1, true); /* [B, 1] */
    if (mode == 2) {
      ir_value all = where(b, E(b, NN_OP_UNSQUEEZE, 2, in_bag, I(b, 2)),
                           E(b, NN_OP_UNSQUEEZE, 2, rows, I(b, 0)), F(b, -INFINITY));
      ir_value mx = E(b, NN_OP_AMAX, 3, all, DIM1(b, 1), Bo(b, false));
      return where(b, E(b, NN_OP_GT, 2, count, F(b, 0)), mx, F(b, 0));
    }
    ir_value out = E(b, NN_OP_MATMUL, 2, maskf, rows);
    return mode == 1 ? dvd(b, out, clamp_min(b, count, 1)) : out;
  }
  default: return IR_NOVAL;
  }
}

/* ---- 3-d convolution as 2-d ones ---------------------------------------------
 * y[n, :, o] = sum_j conv2d(x[n, :, o*sd + j*dd], w[:, :, j]) over the kernel
 * depth j: per j, the depth slice of (depth-padded) x read with the
 * depth stride, with the output depths folded into the batch, one 2-d
 * convolution (the fast path: im2col + GEMM, Winograd, depthwise), then the
 * kd results summed and unfolded. */
static bool conv3d_node(ir_graph *g, const ir_node *n) {
  const ir_const *tr;
  if (n->op != NN_OP_CONVOLUTION || n->nin != 9) return false;
  const ir_type *x = ir_vtype(g, n->in[0]);
  return x->kind == IR_T_TENSOR && x->rank == 5 && ir_value_const(g, n->in[6], &tr) &&
         tr->kind == IR_C_BOOL && !tr->i;
}

static bool list3(bld *b, int i, int64_t *v) {
  const ir_const *c;
  if (!ir_value_const(b->g, b->in[i], &c) || c->kind != IR_C_INTLIST || (c->n != 1 && c->n != 3))
    return false;
  for (int k = 0; k < 3; k++) v[k] = c->ints[c->n == 1 ? 0 : k];
  return true;
}

static ir_value conv3d(bld *b) {
  ir_value x = T(b, 0), w = T(b, 1), bias = OT(b, 2);
  int64_t st[3], pd[3], dl[3], groups = INT(b, 8, "groups", 1);
  const ir_type *xt = TYP(b, x), *wt = TYP(b, w);
  int64_t kd, D, N;
  if (!list3(b, 3, st) || !list3(b, 4, pd) || !list3(b, 5, dl) || wt->kind != IR_T_TENSOR ||
      wt->rank != 5 || !ir_dim_is_const(b->g, wt->dims[2], &kd)) {
    fail(b, "3-d convolution needs known stride, padding and dilation and a 5-d weight");
    return IR_NOVAL;
  }
  bool dknown = ir_dim_is_const(b->g, xt->dims[2], &D);
  bool nknown = ir_dim_is_const(b->g, xt->dims[0], &N);
  int64_t Do = dknown ? (D + 2 * pd[0] - dl[0] * (kd - 1) - 1) / st[0] + 1 : -1;
  if (!dknown && !nknown) {
    fail(b, "3-d convolution with both the batch and the depth symbolic is not supported yet");
    return IR_NOVAL;
  }
  if (dknown && Do < 1) {
    fail(b, "the kernel does not fit the padded depth");
    return IR_NOVAL;
  }
  ir_value xp = x;
  if (pd[0] > 0) {
    int64_t pads[6] = {0, 0, 0, 0, pd[0], pd[0]};
    xp = E(b, NN_OP_PAD, 3, x, DIMS(b, 6, pads), F(b, 0));
  }
  int64_t perm[5] = {0, 2, 1, 3, 4};
  int64_t s2[2] = {st[1], st[2]}, p2[2] = {pd[1], pd[2]}, d2[2] = {dl[1], dl[2]}, op2[2] = {0, 0};
  ir_value y = IR_NOVAL;
  for (int64_t j = 0; j < kd; j++) {
    int64_t back = dl[0] * (kd - 1) - j * dl[0]; /* depths the kernel's rest needs */
    ir_value xj = E(b, NN_OP_SLICE, 5, xp, I(b, 2), I(b, j * dl[0]), I(b, back ? -back : INT64_MAX),
                    I(b, st[0]));
    xj = E(b, NN_OP_FLATTEN, 3, E(b, NN_OP_PERMUTE, 2, xj, DIMS(b, 5, perm)), I(b, 0), I(b, 1));
    ir_value wj = E(b, NN_OP_SELECT, 3, w, I(b, 2), I(b, j));
    ir_value cin[9] = {xj,
                       wj,
                       j == 0 && bias != IR_NOVAL ? bias : NONE(b),
                       DIMS(b, 2, s2),
                       DIMS(b, 2, p2),
                       DIMS(b, 2, d2),
                       Bo(b, false),
                       DIMS(b, 2, op2),
                       I(b, groups)};
    ir_nodeid id = ir_insert_before(b->g, b->at, NN_OP_CONVOLUTION, 9, cin, 1, b->loc);
    ir_value yj = ir_node_get(b->g, id)->out[0];
    y = y == IR_NOVAL ? yj : add(b, y, yj);
  }
  int64_t split[2] = {dknown ? -1 : N, dknown ? Do : -1};
  y = E(b, NN_OP_UNFLATTEN, 3, y, I(b, 0), DIMS(b, 2, split));
  return E(b, NN_OP_PERMUTE, 2, y, DIMS(b, 5, perm));
}

/* ---- transposed convolution as a direct one ----------------------------------
 * conv_transpose(x, w, stride s, padding p, output_padding q, dilation d,
 * groups g) is the stride-1 convolution, dilation d, of x with s-1 zeros
 * between its elements and d(k-1)-p zeros around (q more at the end), by
 * w flipped in space with its in and out channels swapped per group. */
static bool conv_t_node(ir_graph *g, const ir_node *n) {
  const ir_const *tr;
  if (n->op != NN_OP_CONVOLUTION || n->nin != 9) return false;
  const ir_type *x = ir_vtype(g, n->in[0]);
  return x->kind == IR_T_TENSOR && x->rank >= 3 && x->rank <= 5 &&
         ir_value_const(g, n->in[6], &tr) && tr->kind == IR_C_BOOL && tr->i;
}

static bool listn(bld *b, int i, int n, int64_t *v) {
  const ir_const *c;
  if (!ir_value_const(b->g, b->in[i], &c) || c->kind != IR_C_INTLIST || (c->n != 1 && c->n != n))
    return false;
  for (int k = 0; k < n; k++) v[k] = c->ints[c->n == 1 ? 0 : k];
  return true;
}

static ir_value conv_transposed(bld *b) {
  ir_value x = T(b, 0), w = T(b, 1), bias = OT(b, 2);
  const ir_type *xt = TYP(b, x), *wt = TYP(b, w);
  int ns = xt->rank - 2;
  int64_t st[3], pd[3], dl[3], op[3], k[3], groups = INT(b, 8, "groups", 1), cin, coutg;
  bool ok = listn(b, 3, ns, st) && listn(b, 4, ns, pd) && listn(b, 5, ns, dl) &&
            listn(b, 7, ns, op) && wt->kind == IR_T_TENSOR && wt->rank == xt->rank &&
            ir_dim_is_const(b->g, wt->dims[0], &cin) && ir_dim_is_const(b->g, wt->dims[1], &coutg);
  for (int i = 0; ok && i < ns; i++) ok = ir_dim_is_const(b->g, wt->dims[2 + i], &k[i]);
  if (!ok || groups < 1 || cin % groups) {
    fail(b, "transposed convolution needs known stride, padding, dilation, output_padding and "
            "weight shape");
    return IR_NOVAL;
  }
  for (int i = 0; i < ns; i++) {
    int dim = 2 + i;
    if (st[i] > 1) { /* s-1 zeros after every element, the last ones dropped */
      ir_value u = E(b, NN_OP_UNSQUEEZE, 2, x, I(b, dim + 1));
      ir_value z = E(b, NN_OP_ZEROS_LIKE, 2, u, NONE(b));
      ir_value parts[4] = {u, z, z, z};
      ir_value *items = nn_alloc(b->g->arena, sizeof(ir_value) * (size_t)st[i]);
      for (int64_t j = 0; j < st[i]; j++) items[j] = parts[j ? 1 : 0];
      ir_nodeid lid = ir_insert_before(b->g, b->at, NN_OP_LIST_CONSTRUCT, (int)st[i], items, 1,
                                       b->loc);
      x = E(b, NN_OP_CAT, 2, ir_node_get(b->g, lid)->out[0], I(b, dim + 1));
      x = E(b, NN_OP_FLATTEN, 3, x, I(b, dim), I(b, dim + 1));
      x = E(b, NN_OP_SLICE, 5, x, I(b, dim), I(b, 0), I(b, -(st[i] - 1)), I(b, 1));
    }
    int64_t lo = dl[i] * (k[i] - 1) - pd[i], hi = lo + op[i];
    if (lo < 0 || hi < 0) {                                      /* crop first */
      int64_t a = lo < 0 ? -lo : 0, e = hi < 0 ? hi : INT64_MAX; /* from the end */
      x = E(b, NN_OP_SLICE, 5, x, I(b, dim), I(b, a), I(b, e), I(b, 1));
    }
    if (lo > 0 || hi > 0) {
      int64_t pads[6] = {0};
      int at = 2 * (ns - 1 - i);
      pads[at] = lo > 0 ? lo : 0;
      pads[at + 1] = hi > 0 ? hi : 0;
      x = E(b, NN_OP_PAD, 3, x, DIMS(b, 2 * ns, pads), F(b, 0));
    }
  }
  /* w [Cin, Cout/g, k...] -> flipped, [g, Cin/g, Cout/g, k...] -> [Cout, Cin/g, k...] */
  int64_t sp[3] = {2, 3, 4}, gs[2] = {groups, cin / groups};
  ir_value wf = E(b, NN_OP_FLIP, 2, w, DIMS(b, ns, sp));
  wf = E(b, NN_OP_UNFLATTEN, 3, wf, I(b, 0), DIMS(b, 2, gs));
  wf = E(b, NN_OP_TRANSPOSE, 3, wf, I(b, 1), I(b, 2));
  wf = E(b, NN_OP_FLATTEN, 3, wf, I(b, 0), I(b, 1));
  int64_t one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
  ir_value cin9[9] = {x,
                      wf,
                      bias != IR_NOVAL ? bias : NONE(b),
                      DIMS(b, ns, one),
                      DIMS(b, ns, zero),
                      DIMS(b, ns, dl),
                      Bo(b, false),
                      DIMS(b, ns, zero),
                      I(b, groups)};
  ir_nodeid id = ir_insert_before(b->g, b->at, NN_OP_CONVOLUTION, 9, cin9, 1, b->loc);
  (void)coutg;
  return ir_node_get(b->g, id)->out[0];
}

/* Whether op is expanded here or by the frontend (its shape rule is
 * `composite`). */
static bool composite(ir_op op) { return !strcmp(ir_ops[op].shape, "composite"); }

static bool frontend_only(ir_op op) {
  return op == NN_OP_LSTM || op == NN_OP_GRU || op == NN_OP_RNN_TANH || op == NN_OP_RNN_RELU;
}

/* Whether every tensor operand of n is typed (a list's elements too). */
static bool typed(ir_graph *g, const ir_node *n) {
  for (int i = 0; i < n->nin; i++) {
    const ir_type *t = ir_vtype(g, n->in[i]);
    if (t->kind == IR_T_UNKNOWN || (t->kind == IR_T_TENSOR && (t->rank < 0 || !t->dims)))
      return false;
    if (t->kind == IR_T_LIST) {
      ir_nodeid def = g->values.data[n->in[i]].def;
      const ir_node *ln = def >= 0 ? ir_node_get(g, def) : NULL;
      if (ln && ln->op == NN_OP_LIST_CONSTRUCT && !typed(g, ln)) return false;
    }
  }
  return true;
}

/* When v is a list_construct, its list_unpack users (broadcast_tensors'
 * result unpacked into names) read the elements straight away. */
static void unpack_list(ir_graph *g, ir_value v) {
  ir_nodeid def = g->values.data[v].def;
  const ir_node *ln = def >= 0 ? ir_node_get(g, def) : NULL;
  if (!ln || ln->op != NN_OP_LIST_CONSTRUCT) return;
  for (int k = 0; k < g->order.len; k++) {
    ir_nodeid id = g->order.data[k];
    ir_node *u = ir_node_get(g, id);
    if (u->op != NN_OP_LIST_UNPACK || u->in[0] != v || u->nout != ln->nin) continue;
    for (int i = 0; i < u->nout; i++) ir_replace_uses(g, u->out[i], ln->in[i]);
    ir_kill(g, id);
    k--; /* the order lost this node */
  }
}

int pass_expand(ir_graph *g, nn_diag *d) {
  int expanded = 0, errors = 0, waiting = 0;
  ir_nodeid first_waiting = -1;
  int n = g->order.len;
  ir_nodeid *order = nn_alloc(g->arena, sizeof *order * (size_t)(n + 1));
  if (n) memcpy(order, g->order.data, sizeof *order * (size_t)n);
  for (int k = 0; k < n; k++) {
    ir_node *node = ir_node_get(g, order[k]);
    bool c3 = !(node->flags & IR_NF_DEAD) && conv3d_node(g, node);
    bool ct = !(node->flags & IR_NF_DEAD) && conv_t_node(g, node);
    if ((node->flags & IR_NF_DEAD) || (!composite(node->op) && !c3 && !ct)) continue;
    if (frontend_only(node->op)) {
      nn_error(d, node->loc,
               "'%s' is expanded by the frontend as it reads a model; an IR file spells out its "
               "linear and rnn_scan nodes",
               ir_ops[node->op].name);
      errors++;
      continue;
    }
    if (!typed(g, node)) {
      if (first_waiting < 0) first_waiting = order[k];
      waiting++;
      continue;
    }
    bld b = {.g = g, .at = order[k], .loc = node->loc, .d = d, .op = ir_ops[node->op].name};
    NN_ASSERT(node->nin <= 24 && node->nout <= 4);
    memcpy(b.in, node->in, sizeof(ir_value) * (size_t)node->nin);
    ir_op op = node->op;
    int nout = node->nout;
    ir_value outs[4];
    memcpy(outs, node->out, sizeof(ir_value) * (size_t)nout);
    ir_value r = ct ? conv_transposed(&b) : c3 ? conv3d(&b) : expand_op(&b, op);
    if (b.bad || r == IR_NOVAL) {
      if (!b.bad) nn_error(d, b.loc, "'%s' cannot be expanded here", b.op);
      errors++;
      continue;
    }
    ir_replace_uses(g, outs[0], r);
    for (int i = 1; i < nout; i++) ir_replace_uses(g, outs[i], b.more[i - 1]);
    ir_kill(g, order[k]);
    unpack_list(g, r);
    expanded++;
  }
  if (errors) return -1;
  if (!expanded && waiting) {
    const ir_node *w = ir_node_get(g, first_waiting);
    nn_error(d, w->loc, "'%s': the types of its operands are not known, so it cannot be expanded",
             ir_ops[w->op].name);
    return -1;
  }
  return expanded;
}
