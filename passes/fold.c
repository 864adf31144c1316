/* fold.c — batch_norm folded into the convolution or linear before it, or
 * else into a broadcast multiply-add.
 *
 * In eval mode batch_norm is a per-channel affine map,
 *   y = (x - mean) * s + beta,   s = gamma / sqrt(var + eps),
 * so when x comes straight out of a convolution (channel = dim 1 = the
 * weight's dim 0) or a 2-d linear (channel = dim 1 = the weight's dim 0),
 * the map moves into that op's parameters:
 *   w'[c, ...] = w[c, ...] * s[c]
 *   b'[c]      = (b[c] - mean[c]) * s[c] + beta[c]      (b = 0 when none)
 * computed in double and stored as f32 in new weights (arena memory, named
 * after the originals plus ".bn_folded"), and the batch_norm disappears.
 *
 * Conditions, all checked: training is the constant false and eps a
 * constant number; the producer is a non-transposed convolution, or a
 * linear whose result has rank 2; the producer's result has no other use
 * and is not a graph output; its weight and bias (if any) and the
 * batch_norm's weight/bias (if any), mean and var are WEIGHT nodes of f32
 * whose sizes agree (weight dim 0 = C, the others [C]). The originals stay
 * untouched (another op may share them); DCE drops them when unused.
 *
 * A batch_norm that cannot fold into its producer (DenseNet's norm after a
 * concatenation, a pre-activation block) but whose statistics are such
 * weights becomes y = x * scale + shift with scale and shift new weights
 * of shape [C, 1, ...]: two broadcast ops instead of an opaque one, which
 * the fusion pass merges with what surrounds them.
 *
 * A graph read back from text has weights without data: the rewrite is
 * then made all the same, with data-less folded weights, so the IR-level
 * effect can be tested as golden files; if some operands have data and
 * others do not, nothing is folded. Shapes must be known (the pass runs
 * after shape inference).
 */
#include "passes.h"

#include <math.h>
#include <string.h>

/* The weight behind value v, or NULL when v is not a WEIGHT node's. */
static const ir_weight *weight_of(ir_graph *g, ir_value v) {
  ir_nodeid def = g->values.data[v].def;
  if (def < 0) return NULL;
  const ir_node *n = ir_node_get(g, def);
  if (n->op != NN_OP_WEIGHT || n->weight < 0 || n->weight >= g->weights.len) return NULL;
  return &g->weights.data[n->weight];
}

static bool is_none(ir_graph *g, ir_value v) { return ir_vtype(g, v)->kind == IR_T_NONE; }

static int64_t wnumel(const ir_weight *w) {
  int64_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= w->sizes[i];
  return n;
}

/* Element e (row-major over the sizes) of an f32 weight, walking its
 * strides; false when it lies outside the bytes available. */
static bool welem(const ir_weight *w, int64_t e, double *out) {
  int64_t off = w->offset;
  for (int i = w->rank - 1; i >= 0; i--) {
    int64_t size = w->sizes[i] > 0 ? w->sizes[i] : 1;
    int64_t idx = e % size;
    e /= size;
    int64_t stride = 1;
    if (w->strides)
      stride = w->strides[i];
    else
      for (int j = i + 1; j < w->rank; j++) stride *= w->sizes[j];
    off += idx * stride;
  }
  if (!w->data || off < 0 || (uint64_t)(off + 1) * sizeof(float) > w->nbytes) return false;
  float f;
  memcpy(&f, (const unsigned char *)w->data + (size_t)off * sizeof(float), sizeof f);
  *out = f;
  return true;
}

/* An f32 weight of sizes [c] (when rank1) or with dim 0 = c. */
static bool fits(const ir_weight *w, int64_t c, bool rank1) {
  if (!w || w->dtype != NN_DT_F32 || w->rank < 1 || w->sizes[0] != c) return false;
  if (rank1 && w->rank != 1) return false;
  for (int i = 0; i < w->rank; i++)
    if (w->sizes[i] < 0) return false;
  return true;
}

/* A weight name not used yet: base + ".bn_folded" (+ ".N"). */
static const char *fresh_name(ir_graph *g, const char *base) {
  const char *name = nn_sprintf(g->arena, "%s.bn_folded", base);
  for (int k = 2;; k++) {
    bool taken = false;
    for (int i = 0; i < g->weights.len && !taken; i++)
      taken = g->weights.data[i].name && !strcmp(g->weights.data[i].name, name);
    if (!taken) return name;
    name = nn_sprintf(g->arena, "%s.bn_folded.%d", base, k);
  }
}

/* A new WEIGHT node (before node `before`) for an f32 tensor of sizes
 * [rank] with data (or none); returns its value. */
static ir_value new_weight(ir_graph *g, ir_nodeid before, const char *name, int rank,
                           const int64_t *sizes, const float *data, nn_loc loc) {
  ir_weight w =
      {.name = fresh_name(g, name), .dtype = NN_DT_F32, .rank = rank, .sizes = sizes, .data = data};
  if (data) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= sizes[i];
    w.nbytes = (size_t)n * sizeof(float);
  }
  int32_t wi = ir_add_weight(g, &w);
  ir_nodeid id = ir_insert_before(g, before, NN_OP_WEIGHT, 0, NULL, 1, loc);
  ir_node *n = ir_node_get(g, id);
  n->weight = wi;
  ir_dim dims[16];
  for (int i = 0; i < rank && i < 16; i++) dims[i] = ir_dim_const(g, sizes[i]);
  ir_set_type(g, n->out[0], ir_type_tensor(g, NN_DT_F32, rank, dims));
  return n->out[0];
}

static bool graph_output(const ir_graph *g, ir_value v) {
  for (int i = 0; i < g->outputs.len; i++)
    if (g->outputs.data[i] == v) return true;
  return false;
}

/* An eval-mode batch_norm's eps; false when bn is not one (training, or
 * eps not a constant number). */
static bool eval_bn(ir_graph *g, const ir_node *bn, double *eps) {
  const ir_const *k;
  if (!ir_value_const(g, bn->in[5], &k) || k->kind != IR_C_BOOL || k->i) return false;
  if (!ir_value_const(g, bn->in[7], &k)) return false;
  if (k->kind == IR_C_FLOAT)
    *eps = k->f;
  else if (k->kind == IR_C_INT)
    *eps = (double)k->i;
  else
    return false;
  return true;
}

/* Tries to fold batch_norm node bn into its producer; true when done. */
static bool fold_one(ir_graph *g, ir_nodeid bn_id) {
  const ir_node *bn = ir_node_get(g, bn_id);
  const ir_const *k;
  double eps;
  if (!eval_bn(g, bn, &eps)) return false;

  ir_value x = bn->in[0];
  ir_nodeid pid = g->values.data[x].def;
  if (pid < 0) return false;
  const ir_node *p = ir_node_get(g, pid);
  int bias_in;
  if (p->op == NN_OP_CONVOLUTION) {
    if (!ir_value_const(g, p->in[6], &k) || k->kind != IR_C_BOOL || k->i) return false;
    bias_in = 2;
  } else if (p->op == NN_OP_LINEAR) {
    const ir_type *t = ir_vtype(g, p->out[0]);
    if (t->kind != IR_T_TENSOR || t->rank != 2) return false;
    bias_in = 2;
  } else {
    return false;
  }
  if (ir_use_count(g, x) != 1 || graph_output(g, x)) return false;

  const ir_weight *w = weight_of(g, p->in[1]);
  if (!w || w->rank < 1) return false;
  int64_t C = w->sizes[0];
  if (!fits(w, C, false)) return false;
  const ir_weight *b = is_none(g, p->in[bias_in]) ? NULL : weight_of(g, p->in[bias_in]);
  if (!is_none(g, p->in[bias_in]) && !fits(b, C, true)) return false;
  const ir_weight *gam = is_none(g, bn->in[1]) ? NULL : weight_of(g, bn->in[1]);
  const ir_weight *bet = is_none(g, bn->in[2]) ? NULL : weight_of(g, bn->in[2]);
  const ir_weight *mean = weight_of(g, bn->in[3]), *var = weight_of(g, bn->in[4]);
  if ((!is_none(g, bn->in[1]) && !fits(gam, C, true)) ||
      (!is_none(g, bn->in[2]) && !fits(bet, C, true)) || !fits(mean, C, true) ||
      !fits(var, C, true))
    return false;
  /* the batch_norm's channel dim (1) must be the producer's channel */
  const ir_type *xt = ir_vtype(g, x);
  int64_t xc;
  if (xt->kind != IR_T_TENSOR || xt->rank < 2 || !ir_dim_is_const(g, xt->dims[1], &xc) || xc != C)
    return false;

  /* all with data, or all without (a graph read from text) */
  const ir_weight *all[6] = {w, b, gam, bet, mean, var};
  int with = 0, present = 0;
  for (int i = 0; i < 6; i++)
    if (all[i]) {
      present++;
      with += all[i]->data != NULL;
    }
  if (with != 0 && with != present) return false;
  bool data = with > 0;

  int64_t per = C ? wnumel(w) / C : 0;
  float *nw = NULL, *nb = NULL;
  if (data) {
    nw = nn_alloc(g->arena, sizeof(float) * (size_t)(C * per + 1));
    nb = nn_alloc(g->arena, sizeof(float) * (size_t)(C + 1));
    for (int64_t c = 0; c < C; c++) {
      double gv = 1, bv = 0, mv, vv, wb = 0, we;
      if ((gam && !welem(gam, c, &gv)) || (bet && !welem(bet, c, &bv)) || !welem(mean, c, &mv) ||
          !welem(var, c, &vv) || (b && !welem(b, c, &wb)))
        return false;
      double s = gv / sqrt(vv + eps);
      for (int64_t e = 0; e < per; e++) {
        if (!welem(w, c * per + e, &we)) return false;
        nw[c * per + e] = (float)(we * s);
      }
      nb[c] = (float)((wb - mv) * s + bv);
    }
  }

  /* rewrite: new weights before the producer, the producer reads them,
   * the batch_norm's users read the producer */
  nn_loc loc = p->loc;
  const char *wname = w->name ? w->name : "weight";
  const char *bname;
  if (b && b->name) {
    bname = b->name;
  } else {
    size_t n = strlen(wname);
    bname = n > 7 && !strcmp(wname + n - 7, ".weight")
                ? nn_sprintf(g->arena, "%.*s.bias", (int)(n - 7), wname)
                : nn_sprintf(g->arena, "%s.bias", wname);
  }
  int64_t *wsizes = nn_alloc(g->arena, sizeof(int64_t) * (size_t)w->rank);
  memcpy(wsizes, w->sizes, sizeof(int64_t) * (size_t)w->rank);
  int64_t *bsizes = nn_alloc(g->arena, sizeof(int64_t));
  bsizes[0] = C;
  ir_value wv = new_weight(g, pid, wname, w->rank, wsizes, nw, loc);
  ir_value bv = new_weight(g, pid, bname, 1, bsizes, nb, loc);
  ir_node *pm = ir_node_get(g, pid); /* re-fetch: nodes may have moved */
  pm->in[1] = wv;
  pm->in[bias_in] = bv;
  ir_replace_uses(g, ir_node_get(g, bn_id)->out[0], x);
  ir_kill(g, bn_id);
  return true;
}

/* A batch_norm that folds into no producer, with f32 input and parameters:
 * y = x * scale + shift, scale = gamma / sqrt(var + eps) and shift = beta -
 * mean * scale computed here (double, stored f32) as weights of shape
 * [C, 1, ...] (broadcasting over the dims after 1), so that the opaque
 * batch_norm becomes two broadcast ops the fusion pass can merge with its
 * neighbours. True when done. */
static bool fold_affine(ir_graph *g, ir_nodeid bn_id) {
  const ir_node *bn = ir_node_get(g, bn_id);
  double eps;
  if (!eval_bn(g, bn, &eps)) return false;
  ir_value x = bn->in[0];
  const ir_type *xt = ir_vtype(g, x);
  int64_t C;
  if (xt->kind != IR_T_TENSOR || xt->dtype != NN_DT_F32 || xt->rank < 2 || xt->rank > 16 ||
      !ir_dim_is_const(g, xt->dims[1], &C))
    return false;
  const ir_weight *gam = is_none(g, bn->in[1]) ? NULL : weight_of(g, bn->in[1]);
  const ir_weight *bet = is_none(g, bn->in[2]) ? NULL : weight_of(g, bn->in[2]);
  const ir_weight *mean = weight_of(g, bn->in[3]), *var = weight_of(g, bn->in[4]);
  if ((!is_none(g, bn->in[1]) && !fits(gam, C, true)) ||
      (!is_none(g, bn->in[2]) && !fits(bet, C, true)) || !fits(mean, C, true) ||
      !fits(var, C, true))
    return false;
  const ir_weight *all[4] = {gam, bet, mean, var};
  int with = 0, present = 0;
  for (int i = 0; i < 4; i++)
    if (all[i]) {
      present++;
      with += all[i]->data != NULL;
    }
  if (with != 0 && with != present) return false;
  float *sc = NULL, *sh = NULL;
  if (with) {
    sc = nn_alloc(g->arena, sizeof(float) * (size_t)(C + 1));
    sh = nn_alloc(g->arena, sizeof(float) * (size_t)(C + 1));
    for (int64_t c = 0; c < C; c++) {
      double gv = 1, bv = 0, mv, vv;
      if ((gam && !welem(gam, c, &gv)) || (bet && !welem(bet, c, &bv)) || !welem(mean, c, &mv) ||
          !welem(var, c, &vv))
        return false;
      double s = gv / sqrt(vv + eps);
      sc[c] = (float)s;
      sh[c] = (float)(bv - mv * s);
    }
  }
  /* names after the statistics' module: "bn1.running_mean" -> "bn1" */
  const char *mname = mean->name ? mean->name : "batch_norm";
  const char *dot = strrchr(mname, '.');
  const char *base = dot ? nn_strndup(g->arena, mname, (size_t)(dot - mname)) : mname;
  int rank = xt->rank - 1;
  int64_t *sizes = nn_alloc(g->arena, sizeof(int64_t) * (size_t)rank);
  sizes[0] = C;
  for (int i = 1; i < rank; i++) sizes[i] = 1;
  nn_loc loc = bn->loc;
  ir_value sv = new_weight(g, bn_id, nn_sprintf(g->arena, "%s.scale", base), rank, sizes, sc, loc);
  ir_value hv = new_weight(g, bn_id, nn_sprintf(g->arena, "%s.shift", base), rank, sizes, sh, loc);
  ir_nodeid one = ir_insert_before(g, bn_id, NN_OP_CONSTANT, 0, NULL, 1, loc);
  ir_node *on = ir_node_get(g, one);
  on->c = (ir_const){.kind = IR_C_INT, .i = 1};
  ir_set_type(g, on->out[0], ir_const_type(g, &on->c));
  ir_value onev = on->out[0];
  ir_value min[2] = {x, sv};
  ir_nodeid mul = ir_insert_before(g, bn_id, NN_OP_MUL, 2, min, 1, loc);
  ir_value mv = ir_node_get(g, mul)->out[0];
  ir_set_type(g, mv, xt);
  ir_value ain[3] = {mv, hv, onev};
  ir_nodeid add = ir_insert_before(g, bn_id, NN_OP_ADD, 3, ain, 1, loc);
  ir_value av = ir_node_get(g, add)->out[0];
  ir_set_type(g, av, xt);
  const char *scope = ir_node_get(g, bn_id)->scope;
  ir_node_get(g, mul)->scope = scope;
  ir_node_get(g, add)->scope = scope;
  ir_replace_uses(g, ir_node_get(g, bn_id)->out[0], av);
  ir_kill(g, bn_id);
  return true;
}

int pass_fold(ir_graph *g, nn_diag *d) {
  (void)d;
  /* collect first: folding inserts nodes into the program order */
  NN_VEC(ir_nodeid) bns = {0};
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    if (ir_node_get(g, id)->op == NN_OP_BATCH_NORM) NN_PUSH(g->arena, bns, id);
  }
  for (int i = 0; i < bns.len; i++)
    if (!fold_one(g, bns.data[i])) fold_affine(g, bns.data[i]);
  pass_dce(g);
  return 0;
}
