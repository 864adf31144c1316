/* infer_inputs.c — the dtype and rank of inputs given no --input spec.
 *
 * Without --input, each tensor input's dtype and rank are read off the way
 * the graph uses it, and every dim becomes a symbol unless the weights fix
 * it. The demand of a value is what its uses require of it (struct dem):
 * an exact rank, a conventional rank when nothing fixes one (linear input:
 * 2, [batch, features]; embedding indices: 2, [batch, seq]), bounds on the
 * rank, and a dtype. Uses that fix something: a convolution's input has
 * the weight's rank and dtype; linear and matmul operands the weight's
 * dtype; embedding, one_hot, gather and index_select indices are i64;
 * masks of masked_fill and where are bool; permute names the rank; norms,
 * softmax, size, slices and transposes bound it. Ops that keep the rank
 * (elementwise math, identities, to, slices, norms) pass the demand of
 * their result on to their operand; unsqueeze, select and reductions shift
 * it. A tensor broadcast against an operand of known rank is taken to be
 * of at most that rank (BERT's mask [b,s] unsqueezed against the scores).
 * The demand of a value whose type the shapes pass already knows is that
 * type, so each round can use what the previous one learned.
 *
 * Dims and unification: an inferred input gets one fresh symbol per dim.
 * Trial runs of the shapes pass (partial: the inputs not inferred yet stay
 * unknown) report every pair of dims a rule assumes equal: broadcasting,
 * matmul inner dims, concatenation, channel counts, layer_norm's shape.
 * When such a pair is an inferred symbol and another symbol or a constant,
 * the symbol is bound to it (union-find over symbol names; the class keeps
 * the name of its earliest member, a symbol of a user's --input spec
 * always wins and is never bound). Inference and trial runs alternate until
 * nothing changes (bounded), then each dtype still unknown is taken from
 * an input of exactly the same dims (BERT's attention mask is converted
 * with `to` before use, so only its likeness to input_ids tells i64).
 *
 * Symbol names: by the use that fixed the rank: a convolution's input is
 * [B,C,L], [B,C,H,W] or [B,C,D,H,W]; embedding indices [B,S] (rank 1:
 * [S]); a linear input of rank 2 [B,F]; any other dim is NAME_I (input
 * name, dim index: mask_0). A name already taken gets the input's name as
 * a suffix (H_y), then a number. Unification then merges the classes:
 * resnet18's input is x:f32[B,3,H,W]; BERT's three inputs are i64[B,S].
 */
#include "passes.h"

#include <limits.h>
#include <string.h>

/* ---- demands --------------------------------------------------------- */

typedef enum role {
  R_NONE,   /* generic names */
  R_CONV,   /* B, C, spatial */
  R_EMBED,  /* B, S */
  R_LINEAR, /* B, F */
} role;

typedef struct dem {
  int rank;    /* exact rank required by a use, or -1 */
  role rrole;  /* what fixed rank */
  int weak;    /* conventional rank when nothing fixes it, or -1 */
  role wrole;  /* what suggested weak */
  int lo, hi;  /* bounds on the rank (hi = INT_MAX: none) */
  nn_dtype dt; /* dtype required by a use, or UNKNOWN */
} dem;

static const dem dem_none = {-1, R_NONE, -1, R_NONE, 0, INT_MAX, NN_DT_UNKNOWN};

typedef struct inf {
  ir_graph *g;
  int *use_off; /* uses of value v: use_node/use_op[use_off[v]..[v+1]) */
  ir_nodeid *use_node;
  int *use_op; /* operand index of each use */
  dem *memo;   /* by value id */
  char *state; /* 0 = not computed, 1 = in progress, 2 = done */
  int depth;   /* recursion depth of demand() */
} inf;

/* Builds the use lists of live nodes. */
static void index_uses(inf *f) {
  ir_graph *g = f->g;
  int nv = g->values.len;
  f->use_off = nn_alloc(g->arena, sizeof(int) * (size_t)(nv + 2));
  memset(f->use_off, 0, sizeof(int) * (size_t)(nv + 2));
  int total = 0;
  for (int i = 0; i < g->order.len; i++) {
    ir_node *n = ir_node_get(g, g->order.data[i]);
    for (int j = 0; j < n->nin; j++)
      if (n->in[j] >= 0 && n->in[j] < nv) {
        f->use_off[n->in[j] + 1]++;
        total++;
      }
  }
  for (int v = 0; v < nv; v++) f->use_off[v + 1] += f->use_off[v];
  f->use_node = nn_alloc(g->arena, sizeof(ir_nodeid) * (size_t)(total + 1));
  f->use_op = nn_alloc(g->arena, sizeof(int) * (size_t)(total + 1));
  int *fill = nn_alloc(g->arena, sizeof(int) * (size_t)(nv + 1));
  memcpy(fill, f->use_off, sizeof(int) * (size_t)nv);
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    ir_node *n = ir_node_get(g, id);
    for (int j = 0; j < n->nin; j++)
      if (n->in[j] >= 0 && n->in[j] < nv) {
        int k = fill[n->in[j]]++;
        f->use_node[k] = id;
        f->use_op[k] = j;
      }
  }
}

/* v's type when the shapes pass knows its rank, else NULL. */
static const ir_type *known(inf *f, ir_value v) {
  const ir_type *t = ir_vtype(f->g, v);
  return t->kind == IR_T_TENSOR && t->rank >= 0 ? t : NULL;
}

static bool const_int(inf *f, ir_value v, int64_t *out) {
  const ir_const *c;
  if (!ir_value_const(f->g, v, &c) || (c->kind != IR_C_INT && c->kind != IR_C_BOOL)) return false;
  *out = c->i;
  return true;
}

static bool const_list(inf *f, ir_value v, const int64_t **ints, int *n) {
  const ir_const *c;
  if (!ir_value_const(f->g, v, &c) || c->kind != IR_C_INTLIST) return false;
  *ints = c->ints;
  *n = c->n;
  return true;
}

static void at_least(dem *u, int lo) {
  if (lo > u->lo) u->lo = lo;
}
static void at_most(dem *u, int hi) {
  if (hi >= 0 && hi < u->hi) u->hi = hi;
}
static void exact(dem *u, int rank, role r) {
  if (rank >= 0 && u->rank < 0) u->rank = rank, u->rrole = r;
}
static void conventional(dem *u, int rank, role r) {
  if (u->weak < 0) u->weak = rank, u->wrole = r;
}

/* A dim index operand bounds the rank from below: d >= 0 needs d+1 dims,
 * d < 0 needs -d. */
static void dim_bound(inf *f, dem *u, ir_value v) {
  int64_t d;
  if (const_int(f, v, &d) && d > -64 && d < 64) at_least(u, (int)(d >= 0 ? d + 1 : -d));
}

/* The demand of the result passed on to an operand of the same rank
 * (shifted by `by` dims), with its dtype when `same_dtype`. */
static dem pass_on(const dem *o, int by, bool same_dtype) {
  dem u = dem_none;
  if (o->rank >= 0 && o->rank + by >= 0) u.rank = o->rank + by, u.rrole = by ? R_NONE : o->rrole;
  if (o->weak >= 0 && o->weak + by >= 0) u.weak = o->weak + by, u.wrole = by ? R_NONE : o->wrole;
  u.lo = o->lo + by > 0 ? o->lo + by : 0;
  u.hi = o->hi == INT_MAX ? INT_MAX : (o->hi + by >= 0 ? o->hi + by : 0);
  if (same_dtype) u.dt = o->dt;
  return u;
}

static void merge(dem *acc, const dem *u) {
  exact(acc, u->rank, u->rrole);
  if (u->weak >= 0) conventional(acc, u->weak, u->wrole);
  at_least(acc, u->lo);
  at_most(acc, u->hi);
  if (acc->dt == NN_DT_UNKNOWN) acc->dt = u->dt;
}

static dem demand(inf *f, ir_value v);

/* An op whose result keeps operand 0's rank (ops.def: IR_KEEPS_RANK). */
static bool is_unary(ir_op op) { return ir_ops[op].flags & IR_KEEPS_RANK; }

static bool is_broadcast(ir_op op) { return ir_ops[op].fusion == IR_FUSE_BROADCAST; }

static bool is_compare(ir_op op) {
  return (op >= NN_OP_EQ && op <= NN_OP_GE) || op == NN_OP_LOGICAL_AND || op == NN_OP_LOGICAL_OR ||
         op == NN_OP_LOGICAL_XOR || op == NN_OP_WHERE;
}

/* Operand i of a broadcasting op: the result's rank when every other
 * tensor operand is known and of lower rank; at most the others' ranks
 * otherwise. The dtype is a floating partner's (x + w: w's dtype; an
 * integral partner, such as a one_hot, promotes), else the result's. */
static dem broadcast_operand(inf *f, ir_node *n, int i, const dem *o) {
  ir_op op = n->op;
  dem u = dem_none;
  int others[2], nothers = 0;
  if (op == NN_OP_MASKED_FILL) {
    if (i == 0) return pass_on(o, 0, true); /* the mask broadcasts to x */
    const ir_type *x = i == 1 ? known(f, n->in[0]) : NULL;
    if (x) at_most(&u, x->rank);
    if (i == 1) u.dt = NN_DT_BOOL;
    return u;
  }
  if (op == NN_OP_WHERE) {
    for (int j = 0; j < 3; j++)
      if (j != i) others[nothers++] = j;
  } else if (i <= 1) {
    others[nothers++] = 1 - i;
  } else {
    return u; /* alpha */
  }
  int maxr = -1;
  bool unknown_other = false;
  nn_dtype other_dt = NN_DT_UNKNOWN;
  for (int k = 0; k < nothers; k++) {
    int j = others[k];
    if (j >= n->nin) continue;
    const ir_type *t = ir_vtype(f->g, n->in[j]);
    if (t->kind == IR_T_TENSOR && t->rank >= 0) {
      if (t->rank > maxr) maxr = t->rank;
      /* where's condition does not decide the values' dtype */
      if (t->rank > 0 && other_dt == NN_DT_UNKNOWN && nn_dtype_is_float(t->dtype) &&
          !(op == NN_OP_WHERE && j == 0))
        other_dt = t->dtype;
    } else if (t->kind == IR_T_TENSOR || t->kind == IR_T_UNKNOWN) {
      unknown_other = true;
    }
  }
  bool values = !is_compare(op) || (op == NN_OP_WHERE && i > 0);
  if (!unknown_other && maxr <= 0)
    u = pass_on(o, 0, values);
  else if (!unknown_other && o->rank > maxr)
    exact(&u, o->rank, o->rrole);
  else
    at_most(&u, o->rank >= 0 ? o->rank : maxr);
  if (op == NN_OP_WHERE && i == 0)
    u.dt = NN_DT_BOOL;
  else if (values && u.dt == NN_DT_UNKNOWN)
    u.dt = other_dt != NN_DT_UNKNOWN ? other_dt : o->dt;
  return u;
}

/* Spatial dims of a pooling op's input (after [batch,] channels). */
static int spatial_dims(ir_op op) {
  switch (op) {
  case NN_OP_MAX_POOL1D:
  case NN_OP_AVG_POOL1D:
  case NN_OP_ADAPTIVE_AVG_POOL1D:
  case NN_OP_ADAPTIVE_MAX_POOL1D: return 1;
  case NN_OP_MAX_POOL3D:
  case NN_OP_MAX_POOL3D_INDICES:
  case NN_OP_AVG_POOL3D:
  case NN_OP_ADAPTIVE_AVG_POOL3D:
  case NN_OP_ADAPTIVE_MAX_POOL3D: return 3;
  default: return 2;
  }
}

/* The highest known rank among operands [0, n) of node nd but i, or -1. */
static int partner_rank(inf *f, const ir_node *nd, int n, int i) {
  int r = -1;
  for (int j = 0; j < n && j < nd->nin; j++) {
    const ir_type *t = j != i ? known(f, nd->in[j]) : NULL;
    if (t && t->rank > r) r = t->rank;
  }
  return r;
}

/* What one use (operand i of node n) demands of its operand. */
static dem use_demand(inf *f, ir_node *n, int i) {
  ir_op op = n->op;
  dem u = dem_none;
  if (n->nout < 1) return u;
  dem o = dem_none;
  if (op != NN_OP_LIST_CONSTRUCT && op != NN_OP_TUPLE_CONSTRUCT && op != NN_OP_SIZE &&
      op != NN_OP_DIM && op != NN_OP_SIZES)
    o = demand(f, n->out[0]);
  const ir_type *w;
  int64_t d;
  const int64_t *ints;
  int nints;
  if (is_unary(op) && i == 0 && op != NN_OP_RESIZE && op != NN_OP_PRELU)
    return pass_on(&o, 0, true); /* (those two know more: below) */
  if (is_broadcast(op) && i <= 2) return broadcast_operand(f, n, i, &o);
  switch (op) {
  case NN_OP_TO:
  case NN_OP_TYPE_AS: return i == 0 ? pass_on(&o, 0, false) : u;
  case NN_OP_SOFTMAX:
  case NN_OP_LOG_SOFTMAX:
  case NN_OP_CUMSUM:
    if (i != 0) return u;
    u = pass_on(&o, 0, op != NN_OP_CUMSUM);
    dim_bound(f, &u, n->in[1]);
    return u;
  case NN_OP_BATCH_NORM:
  case NN_OP_INSTANCE_NORM:
  case NN_OP_LAYER_NORM:
  case NN_OP_GROUP_NORM: {
    if (i != 0) return u;
    u = pass_on(&o, 0, true);
    int wi = op == NN_OP_BATCH_NORM || op == NN_OP_INSTANCE_NORM ? 1 : 2;
    if ((w = known(f, n->in[wi]))) u.dt = w->dtype;
    at_least(&u, op == NN_OP_LAYER_NORM ? 1 : 2);
    if (op == NN_OP_LAYER_NORM && const_list(f, n->in[1], &ints, &nints)) at_least(&u, nints);
    return u;
  }
  case NN_OP_RESIZE: { /* the list's length is the count of resized dims */
    if (i != 0) return u;
    u.dt = o.dt;
    const ir_const *lc;
    if (const_list(f, n->in[1], &ints, &nints) && nints >= 1)
      exact(&u, nints + 2, R_NONE);
    else if (ir_value_const(f->g, n->in[2], &lc) && lc->kind == IR_C_FLOATLIST && lc->n >= 1)
      exact(&u, lc->n + 2, R_NONE);
    return u;
  }
  case NN_OP_PRELU: /* the weight's dtype; a weight per channel needs dim 1 */
    if (i != 0) return u;
    u = pass_on(&o, 0, true);
    if ((w = known(f, n->in[1]))) {
      int64_t c;
      u.dt = w->dtype;
      if (w->rank == 1 && !(ir_dim_is_const(f->g, w->dims[0], &c) && c == 1)) at_least(&u, 2);
    }
    return u;
  /* losses and distances (expanded later, passes/expand.c): the operands
   * they compare have one shape, 2-d when nothing says otherwise; class
   * targets are i64 of one dim less than the scores */
  case NN_OP_NLL_LOSS:
  case NN_OP_CROSS_ENTROPY_LOSS:
  case NN_OP_MULTI_MARGIN_LOSS:
    if (i == 0) {
      if (op == NN_OP_MULTI_MARGIN_LOSS) exact(&u, 2, R_NONE);
      conventional(&u, 2, R_NONE);
      at_least(&u, 1);
      u.dt = NN_DT_F32;
    } else if (i == 1) {
      if ((w = known(f, n->in[0])) && w->rank >= 1) exact(&u, w->rank - 1, R_NONE);
      conventional(&u, 1, R_NONE);
      u.dt = NN_DT_I64;
    }
    return u;
  case NN_OP_MSE_LOSS:
  case NN_OP_L1_LOSS:
  case NN_OP_SMOOTH_L1_LOSS:
  case NN_OP_HUBER_LOSS:
  case NN_OP_BINARY_CROSS_ENTROPY:
  case NN_OP_BCE_WITH_LOGITS:
  case NN_OP_KL_DIV:
  case NN_OP_SOFT_MARGIN_LOSS:
  case NN_OP_POISSON_NLL_LOSS:
  case NN_OP_HINGE_EMBEDDING_LOSS:
  case NN_OP_MARGIN_RANKING_LOSS:
  case NN_OP_TRIPLET_MARGIN_LOSS:
  case NN_OP_PAIRWISE_DISTANCE:
  case NN_OP_COSINE_SIMILARITY:
  case NN_OP_COSINE_EMBEDDING_LOSS:
  case NN_OP_BILINEAR: {
    int compared = op == NN_OP_MARGIN_RANKING_LOSS || op == NN_OP_TRIPLET_MARGIN_LOSS ? 3 : 2;
    bool target_less = op == NN_OP_COSINE_EMBEDDING_LOSS && i == 2;
    if (i >= compared && !target_less) return u;
    int r = partner_rank(f, n, 2, target_less ? -1 : i);
    if (r >= 0) exact(&u, target_less ? r - 1 : r, R_NONE);
    conventional(&u, target_less ? 1 : 2, R_NONE);
    if (op == NN_OP_BILINEAR) conventional(&u, 2, R_LINEAR);
    u.dt = NN_DT_F32;
    return u;
  }
  case NN_OP_NATIVE_MHA: /* batched [B, T, E] query, key and value */
  case NN_OP_TRANSFORMER_ENCODER_LAYER:
    if (i <= (op == NN_OP_NATIVE_MHA ? 2 : 0)) {
      exact(&u, 3, R_NONE);
      u.dt = NN_DT_F32;
    }
    return u;
  case NN_OP_RNN_SCAN: /* xp[T, B, G*H]; the rest are weights and states */
    if (i == 0) {
      exact(&u, 3, R_NONE);
      u.dt = NN_DT_F32;
    }
    return u;
  case NN_OP_CONVOLUTION:
    if (i == 0 && (w = known(f, n->in[1])) && w->rank >= 3) {
      exact(&u, w->rank, R_CONV);
      u.dt = w->dtype;
    }
    return u;
  case NN_OP_LINEAR:
    if (i != 0) return u;
    exact(&u, o.rank, o.rank == 2 ? R_LINEAR : R_NONE);
    conventional(&u, 2, R_LINEAR);
    at_least(&u, 1);
    if ((w = known(f, n->in[1]))) u.dt = w->dtype;
    return u;
  case NN_OP_MM:
  case NN_OP_ADDMM:
  case NN_OP_BMM:
  case NN_OP_BADDBMM:
  case NN_OP_MATMUL: {
    int first = (op == NN_OP_ADDMM || op == NN_OP_BADDBMM) ? 1 : 0;
    if (i < first) return pass_on(&o, 0, true); /* the added bias broadcasts */
    int other = i == first ? first + 1 : first;
    if (op == NN_OP_MM || op == NN_OP_ADDMM) exact(&u, 2, R_NONE);
    if (op == NN_OP_BMM || op == NN_OP_BADDBMM) exact(&u, 3, R_NONE);
    if ((w = known(f, n->in[other]))) {
      u.dt = w->dtype;
      if (w->rank == 1)
        exact(&u, o.rank >= 0 ? o.rank + 1 : -1, R_NONE);
      else if (o.rank >= 0 && w->rank < o.rank)
        exact(&u, o.rank, R_NONE);
      else if (o.rank >= 0)
        at_most(&u, o.rank);
      else
        at_most(&u, w->rank);
    }
    conventional(&u, 2, R_NONE);
    return u;
  }
  case NN_OP_EMBEDDING:
    if (i != 1) return u;
    exact(&u, o.rank >= 1 ? o.rank - 1 : -1, R_EMBED);
    conventional(&u, 2, R_EMBED);
    u.dt = NN_DT_I64;
    return u;
  case NN_OP_ONE_HOT:
    if (i != 0) return u;
    exact(&u, o.rank >= 1 ? o.rank - 1 : -1, R_NONE);
    conventional(&u, 1, R_NONE);
    u.dt = NN_DT_I64;
    return u;
  case NN_OP_INDEX_SELECT:
    if (i == 2) {
      exact(&u, 1, R_NONE);
      u.dt = NN_DT_I64;
    } else if (i == 0) {
      u = pass_on(&o, 0, true);
    }
    return u;
  case NN_OP_GATHER:
    if (i == 2) {
      u.dt = NN_DT_I64;
      if ((w = known(f, n->in[0]))) exact(&u, w->rank, R_NONE);
      exact(&u, o.rank, R_NONE);
    } else if (i == 0) {
      if ((w = known(f, n->in[2]))) exact(&u, w->rank, R_NONE);
      u.dt = o.dt;
    }
    return u;
  case NN_OP_UNSQUEEZE:
    if (i != 0) return u;
    u = pass_on(&o, -1, true);
    if (const_int(f, n->in[1], &d) && d >= 0 && d < 64) at_least(&u, (int)d);
    return u;
  case NN_OP_SELECT:
    if (i != 0) return u;
    u = pass_on(&o, 1, true);
    dim_bound(f, &u, n->in[1]);
    return u;
  case NN_OP_SLICE:
  case NN_OP_NARROW:
  case NN_OP_TRANSPOSE:
    if (i != 0) return u;
    u = pass_on(&o, 0, true);
    dim_bound(f, &u, n->in[1]);
    if (op == NN_OP_TRANSPOSE) dim_bound(f, &u, n->in[2]);
    return u;
  case NN_OP_T:
    if (i != 0) return u;
    u = pass_on(&o, 0, true);
    at_most(&u, 2);
    return u;
  case NN_OP_PERMUTE:
    if (i != 0) return u;
    u = pass_on(&o, 0, true);
    if (const_list(f, n->in[1], &ints, &nints)) exact(&u, nints, R_NONE);
    return u;
  case NN_OP_MAX_POOL2D:
  case NN_OP_MAX_POOL2D_INDICES:
  case NN_OP_AVG_POOL2D:
  case NN_OP_ADAPTIVE_AVG_POOL2D:
  case NN_OP_ADAPTIVE_MAX_POOL2D:
  case NN_OP_UPSAMPLE_NEAREST2D:
  case NN_OP_PIXEL_SHUFFLE:
  case NN_OP_PIXEL_UNSHUFFLE:
  case NN_OP_MAX_POOL1D:
  case NN_OP_AVG_POOL1D:
  case NN_OP_ADAPTIVE_AVG_POOL1D:
  case NN_OP_ADAPTIVE_MAX_POOL1D:
  case NN_OP_MAX_POOL3D:
  case NN_OP_MAX_POOL3D_INDICES:
  case NN_OP_AVG_POOL3D:
  case NN_OP_ADAPTIVE_AVG_POOL3D:
  case NN_OP_ADAPTIVE_MAX_POOL3D: {
    /* [batch,] channels, then 1, 2 or 3 spatial dims: batched by convention */
    if (i != 0) return u;
    int nsp = spatial_dims(op);
    u = pass_on(&o, 0, true);
    conventional(&u, nsp + 2, R_NONE);
    at_least(&u, nsp + 1);
    return u;
  }
  case NN_OP_SUM:
  case NN_OP_MEAN:
  case NN_OP_AMAX:
  case NN_OP_AMIN:
  case NN_OP_NORM: {
    if (i != 0) return u;
    int di = op == NN_OP_NORM ? 2 : 1, ki = op == NN_OP_NORM ? 3 : 2;
    int64_t keep;
    if (!const_int(f, n->in[ki], &keep) || !const_list(f, n->in[di], &ints, &nints)) return u;
    u = pass_on(&o, keep ? 0 : nints, op != NN_OP_SUM);
    for (int k = 0; k < nints; k++)
      if (ints[k] > -64 && ints[k] < 64) at_least(&u, (int)(ints[k] >= 0 ? ints[k] + 1 : -ints[k]));
    return u;
  }
  case NN_OP_MAX_DIM:
  case NN_OP_MIN_DIM:
  case NN_OP_ARGMAX:
  case NN_OP_ARGMIN: {
    if (i != 0) return u;
    int64_t keep;
    if (const_int(f, n->in[2], &keep) && const_int(f, n->in[1], &d))
      u = pass_on(&o, keep ? 0 : 1, op == NN_OP_MAX_DIM || op == NN_OP_MIN_DIM);
    dim_bound(f, &u, n->in[1]);
    return u;
  }
  case NN_OP_UNFLATTEN:
    if (i != 0) return u;
    u.dt = o.dt;
    dim_bound(f, &u, n->in[1]);
    return u;
  case NN_OP_FLATTEN:
    if (i != 0) return u;
    u.dt = o.dt;
    dim_bound(f, &u, n->in[1]);
    dim_bound(f, &u, n->in[2]);
    return u;
  case NN_OP_VIEW:
  case NN_OP_RESHAPE:
  case NN_OP_SQUEEZE:
  case NN_OP_REPEAT:
  case NN_OP_TILE:
    if (i == 0) u.dt = o.dt;
    return u;
  case NN_OP_EXPAND:
    if (i == 0) {
      u.dt = o.dt;
      at_most(&u, o.rank);
    }
    return u;
  case NN_OP_EXPAND_AS:
    if (i == 1)
      exact(&u, o.rank, o.rrole);
    else
      at_most(&u, o.rank), u.dt = o.dt;
    return u;
  case NN_OP_SIZE:
    if (i == 0) dim_bound(f, &u, n->in[1]);
    return u;
  case NN_OP_LIST_CONSTRUCT: {
    /* an element of a list given to cat, stack or index */
    ir_value l = n->out[0];
    for (int k = f->use_off[l]; k < f->use_off[l + 1]; k++) {
      ir_node *m = ir_node_get(f->g, f->use_node[k]);
      dem e = dem_none;
      if ((m->op == NN_OP_CAT || m->op == NN_OP_STACK) && f->use_op[k] == 0) {
        dem mo = demand(f, m->out[0]);
        e = pass_on(&mo, m->op == NN_OP_STACK ? -1 : 0, true);
      } else if (m->op == NN_OP_INDEX && f->use_op[k] == 1) {
        conventional(&e, 1, R_NONE);
        e.dt = NN_DT_I64;
      } else if (m->op == NN_OP_BROADCAST_TENSORS) {
        /* the losses' broadcast of input and target: one rank for all, what
         * the elements' results demand, else the known partner's, else 2 */
        int r = partner_rank(f, n, n->nin, i);
        if (r >= 0) exact(&e, r, R_NONE);
        conventional(&e, 2, R_NONE);
        e.dt = NN_DT_F32;
      }
      merge(&u, &e);
    }
    return u;
  }
  default: return u;
  }
}

/* What the uses of v demand of it; the shapes pass's type when known. */
static dem demand(inf *f, ir_value v) {
  if (v < 0 || v >= f->g->values.len) return dem_none;
  if (f->state[v] == 2) return f->memo[v];
  dem acc = dem_none;
  const ir_type *t = known(f, v);
  if (t) {
    exact(&acc, t->rank, R_NONE);
    acc.dt = t->dtype;
  } else if (f->state[v] == 0 && f->depth < 256) {
    /* SSA has no cycles (state 1 guards bad input); the walk in reverse
     * program order keeps the recursion shallow, the depth bound keeps it
     * safe */
    f->state[v] = 1;
    f->depth++;
    for (int k = f->use_off[v]; k < f->use_off[v + 1]; k++) {
      dem u = use_demand(f, ir_node_get(f->g, f->use_node[k]), f->use_op[k]);
      merge(&acc, &u);
    }
    f->depth--;
  }
  f->memo[v] = acc;
  f->state[v] = 2;
  return acc;
}

/* ---- symbols and unification ----------------------------------------- */

typedef struct symcls {
  const char *name; /* the symbol */
  int parent;       /* union-find parent (itself at the root) */
  bool user;        /* from a user's --input spec: never bound */
  bool has_c;       /* the class is bound to the constant c */
  int64_t c;
} symcls;

typedef struct pair {
  ir_dim a, b; /* dims a shapes rule assumed equal */
} pair;

typedef struct st {
  ir_graph *g;
  nn_arena *a;
  NN_VEC(symcls) syms; /* every symbol of the specs; index order = age */
  NN_VEC(pair) pairs;  /* collected by the last trial run */
} st;

static int sym_find(st *s, const char *name) {
  for (int i = 0; i < s->syms.len; i++)
    if (!strcmp(s->syms.data[i].name, name)) return i;
  return -1;
}

static int sym_add(st *s, const char *name, bool user) {
  int i = sym_find(s, name);
  if (i >= 0) return i;
  symcls c = {name, s->syms.len, user, false, 0};
  NN_PUSH(s->a, s->syms, c);
  return s->syms.len - 1;
}

static int root(st *s, int i) {
  while (s->syms.data[i].parent != i) i = s->syms.data[i].parent;
  return i;
}

static void collect(void *ctx, ir_dim a, ir_dim b) {
  st *s = ctx;
  pair p = {a, b};
  if (s->pairs.len < 100000) NN_PUSH(s->a, s->pairs, p);
}

/* Class of a dim that is a plain symbol, or -1. */
static int dim_class(st *s, ir_dim d) {
  const ir_dimexpr *e = ir_dim_get(s->g, d);
  if (!e || e->kind != IR_DK_SYM || !e->name) return -1;
  int i = sym_find(s, e->name);
  return i < 0 ? -1 : root(s, i);
}

/* Applies the collected pairs; true when some class changed. */
static bool unify_pairs(st *s) {
  bool changed = false;
  for (int k = 0; k < s->pairs.len; k++) {
    ir_dim a = s->pairs.data[k].a, b = s->pairs.data[k].b;
    int ca = dim_class(s, a), cb = dim_class(s, b);
    int64_t c;
    if (ca < 0 && cb >= 0) {
      int t = ca;
      ca = cb, cb = t;
      b = a; /* the constant side; a is not read again */
    }
    if (ca < 0) continue;
    symcls *x = &s->syms.data[ca];
    if (cb < 0) {
      if (!ir_dim_is_const(s->g, b, &c) || c < 0 || x->user || x->has_c) continue;
      x->has_c = true;
      x->c = c;
      changed = true;
      continue;
    }
    if (ca == cb) continue;
    symcls *y = &s->syms.data[cb];
    if (x->user && y->user) continue;
    if (x->has_c && y->has_c) continue;
    /* the user's symbol, else the older one, names the class */
    int keep = x->user ? ca : y->user ? cb : ca < cb ? ca : cb;
    int drop = keep == ca ? cb : ca;
    symcls *kp = &s->syms.data[keep], *dp = &s->syms.data[drop];
    if (kp->user && dp->has_c) continue; /* a user's symbol is never bound to a constant */
    if (dp->has_c) kp->has_c = true, kp->c = dp->c;
    dp->parent = keep;
    changed = true;
  }
  s->pairs.len = 0;
  return changed;
}

/* Rewrites a spec's dims through the classes. */
static void apply_classes(st *s, pass_input_spec *sp) {
  for (int i = 0; i < sp->rank; i++) {
    pass_dimspec *ds = &sp->dims[i];
    if (!ds->name) continue;
    int k = sym_find(s, ds->name);
    if (k < 0) continue;
    symcls *r = &s->syms.data[root(s, k)];
    if (r->has_c) {
      ds->name = NULL;
      ds->value = r->c;
      ds->has_range = false;
    } else {
      ds->name = r->name;
    }
  }
}

/* ---- naming ---------------------------------------------------------- */

static const char *role_name(role r, int rank, int i) {
  static const char *const conv[4][5] = {{"B", "C", "L"},
                                         {"B", "C", "H", "W"},
                                         {"B", "C", "D", "H", "W"}};
  if (r == R_CONV && rank >= 3 && rank <= 5) return conv[rank - 3][i];
  if (r == R_EMBED && rank == 2) return i ? "S" : "B";
  if (r == R_EMBED && rank == 1) return "S";
  if (r == R_LINEAR && rank == 2) return i ? "F" : "B";
  return NULL;
}

static bool name_taken(st *s, const char *n) { return sym_find(s, n) >= 0; }

/* A fresh symbol for dim i of input `in`. */
static const char *fresh(st *s, const char *in, role r, int rank, int i) {
  const char *base = role_name(r, rank, i);
  nn_buf b = {0};
  if (base && !name_taken(s, base)) {
    nn_buf_printf(&b, "%s", base);
  } else {
    if (base)
      nn_buf_printf(&b, "%s_%s", base, in);
    else
      nn_buf_printf(&b, "%s_%d", in, i);
    for (int k = 2; name_taken(s, b.data); k++) {
      b.len = 0;
      if (base)
        nn_buf_printf(&b, "%s_%s%d", base, in, k);
      else
        nn_buf_printf(&b, "%s_%d_%d", in, i, k);
    }
  }
  const char *name = nn_strdup(s->a, b.data);
  nn_buf_free(&b);
  sym_add(s, name, false);
  return name;
}

/* ---- the inference --------------------------------------------------- */

/* The dims of two specs are the same (after unification). */
static bool same_dims(const pass_input_spec *a, const pass_input_spec *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++) {
    const pass_dimspec *x = &a->dims[i], *y = &b->dims[i];
    if (!x->name != !y->name) return false;
    if (x->name ? strcmp(x->name, y->name) != 0 : x->value != y->value) return false;
  }
  return true;
}

/* The flags to pass, built from what is known: an input whose rank is
 * unknown shows DIMS (never a made-up shape), with a note per such input
 * giving the bounds its uses put on the rank. */
static void example_note(ir_graph *g, pass_input_spec *all, const bool *ok, const dem *u, nn_loc at,
                         nn_diag *d) {
  nn_buf ex = {0};
  for (int i = 0; i < g->inputs.len; i++) {
    const pass_input_spec *sp = &all[i];
    if (sp->kind != IR_T_TENSOR) {
      nn_buf_printf(&ex, " --input %s:%s", sp->name,
                    sp->kind == IR_T_INT    ? "int"
                    : sp->kind == IR_T_BOOL ? "bool"
                                            : "float");
    } else if (ok[i] || sp->rank >= 0) {
      pass_input_spec e = *sp;
      if (e.dtype == NN_DT_UNKNOWN) e.dtype = NN_DT_F32;
      nn_buf_printf(&ex, " --input %s", pass_input_spec_str(&e, g->arena));
    } else {
      nn_dtype dt = u[i].dt == NN_DT_UNKNOWN ? NN_DT_F32 : u[i].dt;
      nn_buf_printf(&ex, " --input %s:%s[DIMS]", sp->name, nn_dtype_name(dt));
    }
  }
  if (at.file)
    nn_note(d, (nn_loc){0}, "for example: nncc %s --emit=ir%s", at.file, ex.data ? ex.data : "");
  else
    nn_note(d, (nn_loc){0}, "for example:%s", ex.data ? ex.data : "");
  nn_buf_free(&ex);
  for (int i = 0; i < g->inputs.len; i++) {
    if (ok[i] || all[i].kind != IR_T_TENSOR || all[i].rank >= 0) continue;
    const char *nm = all[i].name;
    if (u[i].lo > 0 && u[i].hi != INT_MAX)
      nn_note(d, (nn_loc){0},
              "DIMS of '%s': its uses allow rank %d to %d; give the dims you traced "
              "it with, naming those that vary (%s:f32[b,16])",
              nm, u[i].lo, u[i].hi, nm);
    else if (u[i].lo > 0)
      nn_note(d, (nn_loc){0},
              "DIMS of '%s': its uses need rank %d or more; give the dims you "
              "traced it with, naming those that vary (%s:f32[b,16])",
              nm, u[i].lo, nm);
    else
      nn_note(d, (nn_loc){0},
              "DIMS of '%s': nothing in the model fixes its rank; give the dims "
              "you traced it with, naming those that vary (%s:f32[b,16])",
              nm, nm);
  }
}

int pass_infer_inputs(ir_graph *g, const pass_input_spec *specs, int nspecs, nn_loc at,
                      pass_input_spec **out, int *nout, nn_diag *d) {
  nn_arena *A = g->arena;
  int nin = g->inputs.len;
  st s = {.g = g, .a = A};
  /* all[i]: the spec of input i (given, inferred, or rank -1 = not yet) */
  pass_input_spec *all = nn_alloc(A, sizeof *all * (size_t)(nin + 1));
  bool *given = nn_alloc(A, (size_t)nin + 1);
  bool *done = nn_alloc(A, (size_t)nin + 1);
  for (int j = 0; j < nspecs; j++)
    for (int i = 0; specs[j].kind == IR_T_TENSOR && specs[j].dims && i < specs[j].rank; i++)
      if (specs[j].dims[i].name) sym_add(&s, specs[j].dims[i].name, true);
  for (int i = 0; i < nin; i++) {
    const char *name = i < g->input_names.len && g->input_names.data[i] ? g->input_names.data[i]
                                                                        : "input";
    given[i] = done[i] = false;
    for (int j = 0; j < nspecs && !given[i]; j++)
      if (specs[j].name && !strcmp(specs[j].name, name)) {
        all[i] = specs[j];
        given[i] = done[i] = true;
      }
    if (given[i]) continue;
    memset(&all[i], 0, sizeof all[i]);
    all[i].name = name;
    all[i].rank = -1;
    all[i].kind = IR_T_TENSOR;
    ir_tkind k = ir_vtype(g, g->inputs.data[i])->kind;
    if (k == IR_T_INT || k == IR_T_FLOAT || k == IR_T_BOOL) {
      all[i].kind = k;
      done[i] = true;
    }
  }
  inf f = {.g = g};
  index_uses(&f);
  int nv = g->values.len;
  f.memo = nn_alloc(A, sizeof *f.memo * (size_t)(nv + 1));
  f.state = nn_alloc(A, (size_t)nv + 1);
  pass_shapes_hooks hooks = {.partial = true, .unify = collect, .ctx = &s};
  pass_input_spec *cur = nn_alloc(A, sizeof *cur * (size_t)(nin + nspecs + 1));
  for (int round = 0; round < 4 * nin + 8; round++) {
    int n = 0;
    for (int i = 0; i < nin; i++)
      if (done[i]) cur[n++] = all[i];
    pass_shapes_with(g, cur, n, &hooks, d);
    bool changed = unify_pairs(&s);
    for (int i = 0; i < nin; i++)
      if (!given[i] && done[i] && all[i].kind == IR_T_TENSOR) apply_classes(&s, &all[i]);
    /* infer what the trial run's types now allow */
    memset(f.state, 0, (size_t)nv);
    for (int k = g->order.len - 1; k >= 0; k--) {
      ir_node *node = ir_node_get(g, g->order.data[k]);
      for (int r = 0; r < node->nout; r++) demand(&f, node->out[r]);
    }
    for (int i = 0; i < nin; i++) {
      if (done[i]) continue;
      dem u = demand(&f, g->inputs.data[i]);
      int rank = u.rank;
      role r = u.rrole;
      if (rank < 0 && u.weak >= u.lo && u.weak <= u.hi) rank = u.weak, r = u.wrole;
      if (rank < 0 && u.hi != INT_MAX && u.hi >= u.lo) rank = u.hi, r = R_NONE;
      if (rank < 0 || rank > 64) continue;
      all[i].rank = rank;
      all[i].dtype = u.dt;
      all[i].dims = nn_alloc(A, sizeof(pass_dimspec) * (size_t)(rank + 1));
      for (int k = 0; k < rank; k++) {
        memset(&all[i].dims[k], 0, sizeof(pass_dimspec));
        all[i].dims[k].name = fresh(&s, all[i].name, r, rank, k);
      }
      done[i] = true;
      changed = true;
    }
    if (!changed) break;
  }
  /* dtypes left open: from an input of the same dims */
  for (int i = 0; i < nin; i++) {
    if (given[i] || !done[i] || all[i].kind != IR_T_TENSOR || all[i].dtype != NN_DT_UNKNOWN)
      continue;
    for (int j = 0; j < nin && all[i].dtype == NN_DT_UNKNOWN; j++)
      if (j != i && done[j] && all[j].kind == IR_T_TENSOR && all[j].dtype != NN_DT_UNKNOWN &&
          same_dims(&all[i], &all[j]))
        all[i].dtype = all[j].dtype;
  }
  int errors = 0;
  bool *ok = nn_alloc(A, (size_t)nin + 1);
  for (int i = 0; i < nin; i++) {
    ok[i] = done[i] && (all[i].kind != IR_T_TENSOR || all[i].dtype != NN_DT_UNKNOWN);
    if (ok[i]) continue;
    const char *what = done[i] ? "dtype" : "rank";
    nn_error(d, at,
             "cannot infer the %s of input '%s' from its uses; pass --input "
             "%s:DTYPE[DIMS]",
             what, all[i].name, all[i].name);
    errors++;
  }
  if (errors) {
    dem *u = nn_alloc(A, sizeof *u * (size_t)(nin + 1));
    for (int i = 0; i < nin; i++) {
      memset(f.state, 0, (size_t)nv);
      u[i] = done[i] ? dem_none : demand(&f, g->inputs.data[i]);
    }
    example_note(g, all, ok, u, at, d);
    return errors;
  }
  /* the user's specs (also those naming no input: pass_shapes reports
   * them), then the inferred ones */
  int n = 0;
  for (int j = 0; j < nspecs; j++) cur[n++] = specs[j];
  for (int i = 0; i < nin; i++)
    if (!given[i]) cur[n++] = all[i];
  *out = cur;
  *nout = n;
  return 0;
}
