/* graph.c — graphs, values, nodes, constants, weights and types.
 *
 * A graph is a handful of arena vectors indexed by small integer ids: nodes
 * by node id, values by value id, plus `order`, the ids of the live nodes in
 * program order. Nodes are never moved or renumbered once created: killing
 * a node only flags it IR_NF_DEAD and drops it from `order`, so ids held by
 * passes stay valid. The node array does grow, though, so a pointer from
 * ir_node_get() is only good until the next node is created.
 *
 * Types are immutable arena objects. The scalar ones (int, float, ...) are
 * created once per graph and cached in g->scalar_types; tensors, lists and
 * tuples are built fresh on each call and compared structurally with
 * ir_type_equal() (dims compare by id, which is exact because dims are
 * hash-consed, see dims.c).
 */
#include "ir.h"

#include <string.h>

/* ---- graphs ----------------------------------------------------------- */

ir_graph *ir_graph_new(nn_arena *arena, const char *name) {
  ir_graph *g = nn_alloc(arena, sizeof *g);
  g->arena = arena;
  g->name = nn_strdup(arena, name ? name : "");
  ir_dimexpr unknown = {.kind = IR_DK_UNKNOWN};
  NN_PUSH(arena, g->dims, unknown); /* id 0 = IR_DIM_UNKNOWN */
  return g;
}

static ir_value new_value(ir_graph *g, ir_nodeid def, int32_t idx, const ir_type *t) {
  ir_valinfo vi = {t ? t : ir_type_scalar(g, IR_T_UNKNOWN), def, idx, NULL};
  NN_PUSH(g->arena, g->values, vi);
  return g->values.len - 1;
}

ir_value ir_add_input(ir_graph *g, const char *name, const ir_type *t) {
  const char *n = name ? nn_strdup(g->arena, name) : NULL;
  ir_value v = new_value(g, -1, g->inputs.len, t);
  g->values.data[v].name = n;
  NN_PUSH(g->arena, g->inputs, v);
  NN_PUSH(g->arena, g->input_names, n);
  return v;
}

void ir_add_output(ir_graph *g, ir_value v) { NN_PUSH(g->arena, g->outputs, v); }

int32_t ir_add_weight(ir_graph *g, const ir_weight *w) {
  ir_weight c = *w;
  c.name = nn_strdup(g->arena, w->name ? w->name : "");
  if (c.rank < 0) c.rank = 0;
  int64_t *sizes = NULL, *strides = NULL;
  if (c.rank > 0) {
    sizes = nn_alloc(g->arena, sizeof *sizes * (size_t)c.rank);
    if (w->sizes) memcpy(sizes, w->sizes, sizeof *sizes * (size_t)c.rank);
    if (w->strides) {
      strides = nn_alloc(g->arena, sizeof *strides * (size_t)c.rank);
      memcpy(strides, w->strides, sizeof *strides * (size_t)c.rank);
    }
  }
  c.sizes = sizes;
  c.strides = strides;
  NN_PUSH(g->arena, g->weights, c);
  return g->weights.len - 1;
}

int64_t ir_weight_numel(const ir_weight *w) {
  int64_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= w->sizes[i];
  return n;
}

bool ir_weight_read(const ir_weight *w, void *out) {
  int64_t n = ir_weight_numel(w);
  size_t es = nn_dtype_size(w->dtype);
  int64_t idx[64] = {0}, stride[64] = {0}, s = 1;
  for (int i = (w->rank < 64 ? w->rank : 64) - 1; i >= 0; i--) {
    stride[i] = w->strides ? w->strides[i] : s;
    s *= w->sizes[i];
  }
  bool ok = true;
  for (int64_t e = 0; e < n; e++) {
    int64_t off = w->offset;
    for (int i = 0; i < w->rank && i < 64; i++) off += idx[i] * stride[i];
    if (w->data && off >= 0 && (uint64_t)(off + 1) * es <= w->nbytes)
      memcpy((unsigned char *)out + (size_t)e * es,
             (const unsigned char *)w->data + (size_t)off * es, es);
    else
      ok = false;
    for (int i = w->rank - 1; i >= 0; i--) {
      if (++idx[i] < w->sizes[i]) break;
      idx[i] = 0;
    }
  }
  return ok;
}

/* ---- nodes ------------------------------------------------------------ */

/* Creates the node and its results; does not touch `order`. */
static ir_nodeid new_node(ir_graph *g, ir_op op, int nin, const ir_value *in, int nout,
                          nn_loc loc) {
  NN_ASSERT(nin >= 0 && nout >= 0);
  ir_node n = {0};
  n.op = op;
  n.nin = nin;
  n.in = nn_alloc(g->arena, sizeof *n.in * (size_t)(nin ? nin : 1));
  if (nin) memcpy(n.in, in, sizeof *n.in * (size_t)nin);
  n.nout = nout;
  n.out = nn_alloc(g->arena, sizeof *n.out * (size_t)(nout ? nout : 1));
  n.weight = -1;
  n.loc = loc;
  n.scope = "";
  NN_PUSH(g->arena, g->nodes, n);
  ir_nodeid id = g->nodes.len - 1;
  for (int i = 0; i < nout; i++) g->nodes.data[id].out[i] = new_value(g, id, i, NULL);
  return id;
}

ir_nodeid ir_append(ir_graph *g, ir_op op, int nin, const ir_value *in, int nout, nn_loc loc) {
  ir_nodeid id = new_node(g, op, nin, in, nout, loc);
  NN_PUSH(g->arena, g->order, id);
  return id;
}

static int order_index(const ir_graph *g, ir_nodeid n) {
  for (int i = 0; i < g->order.len; i++)
    if (g->order.data[i] == n) return i;
  return -1;
}

ir_nodeid ir_insert_before(ir_graph *g, ir_nodeid before, ir_op op, int nin, const ir_value *in,
                           int nout, nn_loc loc) {
  int at = order_index(g, before);
  NN_ASSERT(at >= 0); /* `before` must be live */
  ir_nodeid id = new_node(g, op, nin, in, nout, loc);
  NN_PUSH(g->arena, g->order, id); /* grow by one, then shift into place */
  memmove(&g->order.data[at + 1], &g->order.data[at],
          sizeof *g->order.data * (size_t)(g->order.len - 1 - at));
  g->order.data[at] = id;
  return id;
}

void ir_set_type(ir_graph *g, ir_value v, const ir_type *t) {
  NN_ASSERT(v >= 0 && v < g->values.len);
  g->values.data[v].type = t ? t : ir_type_scalar(g, IR_T_UNKNOWN);
}

/* ---- constants -------------------------------------------------------- */

const ir_type *ir_const_type(ir_graph *g, const ir_const *c) {
  switch (c->kind) {
  case IR_C_INT: return ir_type_scalar(g, IR_T_INT);
  case IR_C_FLOAT: return ir_type_scalar(g, IR_T_FLOAT);
  case IR_C_BOOL: return ir_type_scalar(g, IR_T_BOOL);
  case IR_C_NONE: return ir_type_scalar(g, IR_T_NONE);
  case IR_C_STR: return ir_type_scalar(g, IR_T_STR);
  case IR_C_DEVICE: return ir_type_scalar(g, IR_T_DEVICE);
  case IR_C_INTLIST: return ir_type_list(g, ir_type_scalar(g, IR_T_INT));
  case IR_C_FLOATLIST: return ir_type_list(g, ir_type_scalar(g, IR_T_FLOAT));
  case IR_C_BOOLLIST: return ir_type_list(g, ir_type_scalar(g, IR_T_BOOL));
  }
  return ir_type_scalar(g, IR_T_UNKNOWN);
}

ir_value ir_const_value(ir_graph *g, const ir_const *c, nn_loc loc) {
  ir_const k = *c;
  if (k.s) k.s = nn_strdup(g->arena, k.s);
  if (k.n < 0) k.n = 0;
  if (k.ints) {
    int64_t *p = nn_alloc(g->arena, sizeof *p * (size_t)(k.n ? k.n : 1));
    if (k.n) memcpy(p, c->ints, sizeof *p * (size_t)k.n);
    k.ints = p;
  }
  if (k.floats) {
    double *p = nn_alloc(g->arena, sizeof *p * (size_t)(k.n ? k.n : 1));
    if (k.n) memcpy(p, c->floats, sizeof *p * (size_t)k.n);
    k.floats = p;
  }
  const ir_type *t = ir_const_type(g, &k);
  ir_nodeid id = ir_append(g, NN_OP_CONSTANT, 0, NULL, 1, loc);
  ir_node *n = ir_node_get(g, id);
  n->c = k;
  ir_set_type(g, n->out[0], t);
  return n->out[0];
}

ir_value ir_const_int(ir_graph *g, int64_t i, nn_loc loc) {
  ir_const c = {.kind = IR_C_INT, .i = i};
  return ir_const_value(g, &c, loc);
}

ir_value ir_const_float(ir_graph *g, double f, nn_loc loc) {
  ir_const c = {.kind = IR_C_FLOAT, .f = f};
  return ir_const_value(g, &c, loc);
}

ir_value ir_const_bool(ir_graph *g, bool b, nn_loc loc) {
  ir_const c = {.kind = IR_C_BOOL, .i = b ? 1 : 0};
  return ir_const_value(g, &c, loc);
}

ir_value ir_const_none(ir_graph *g, nn_loc loc) {
  ir_const c = {.kind = IR_C_NONE};
  return ir_const_value(g, &c, loc);
}

/* The pointer is into the node array: valid until the next node is made. */
bool ir_value_const(const ir_graph *g, ir_value v, const ir_const **c) {
  if (v < 0 || v >= g->values.len) return false;
  ir_nodeid d = g->values.data[v].def;
  if (d < 0 || d >= g->nodes.len) return false;
  const ir_node *n = &g->nodes.data[d];
  if (n->op != NN_OP_CONSTANT || (n->flags & IR_NF_DEAD)) return false;
  if (c) *c = &n->c;
  return true;
}

/* ---- uses ------------------------------------------------------------- */

static void replace_in_node(ir_node *n, ir_value from, ir_value to) {
  for (int i = 0; i < n->nin; i++)
    if (n->in[i] == from) n->in[i] = to;
}

static void replace_in_outputs(ir_graph *g, ir_value from, ir_value to) {
  for (int i = 0; i < g->outputs.len; i++)
    if (g->outputs.data[i] == from) g->outputs.data[i] = to;
}

void ir_replace_uses(ir_graph *g, ir_value from, ir_value to) {
  for (int i = 0; i < g->order.len; i++)
    replace_in_node(&g->nodes.data[g->order.data[i]], from, to);
  replace_in_outputs(g, from, to);
}

void ir_replace_uses_after(ir_graph *g, ir_nodeid after, ir_value from, ir_value to) {
  int at = order_index(g, after);
  NN_ASSERT(at >= 0);
  for (int i = at + 1; i < g->order.len; i++)
    replace_in_node(&g->nodes.data[g->order.data[i]], from, to);
  replace_in_outputs(g, from, to);
}

int ir_use_count(const ir_graph *g, ir_value v) {
  int count = 0;
  for (int i = 0; i < g->order.len; i++) {
    const ir_node *n = &g->nodes.data[g->order.data[i]];
    for (int j = 0; j < n->nin; j++) count += n->in[j] == v;
  }
  for (int i = 0; i < g->outputs.len; i++) count += g->outputs.data[i] == v;
  return count;
}

void ir_kill(ir_graph *g, ir_nodeid n) {
  NN_ASSERT(n >= 0 && n < g->nodes.len);
  if (g->nodes.data[n].flags & IR_NF_DEAD) return;
  g->nodes.data[n].flags |= IR_NF_DEAD;
  int at = order_index(g, n);
  if (at < 0) return;
  memmove(&g->order.data[at], &g->order.data[at + 1],
          sizeof *g->order.data * (size_t)(g->order.len - at - 1));
  g->order.len--;
}

void ir_compact(ir_graph *g) {
  int w = 0;
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    if (!(g->nodes.data[id].flags & IR_NF_DEAD)) g->order.data[w++] = id;
  }
  g->order.len = w;
}

int *ir_positions(ir_graph *g) {
  int *pos = nn_alloc(g->arena, sizeof *pos * (size_t)(g->nodes.len + 1));
  for (int i = 0; i < g->nodes.len; i++) pos[i] = -1;
  for (int i = 0; i < g->order.len; i++) pos[g->order.data[i]] = i;
  return pos;
}

/* ---- types ------------------------------------------------------------ */

const ir_type *ir_type_scalar(ir_graph *g, ir_tkind k) {
  NN_ASSERT(k != IR_T_TENSOR && k != IR_T_LIST && k != IR_T_TUPLE);
  NN_ASSERT(k >= IR_T_UNKNOWN && k <= IR_T_TUPLE);
  if (!g->scalar_types[k]) {
    ir_type *t = nn_alloc(g->arena, sizeof *t);
    t->kind = k;
    t->rank = -1;
    g->scalar_types[k] = t;
  }
  return g->scalar_types[k];
}

const ir_type *ir_type_tensor(ir_graph *g, nn_dtype dt, int rank, const ir_dim *dims) {
  NN_ASSERT(rank >= -1);
  ir_type *t = nn_alloc(g->arena, sizeof *t);
  t->kind = IR_T_TENSOR;
  t->dtype = dt;
  t->rank = rank;
  if (rank >= 0) {
    ir_dim *d = nn_alloc(g->arena, sizeof *d * (size_t)(rank ? rank : 1));
    if (dims && rank) memcpy(d, dims, sizeof *d * (size_t)rank);
    t->dims = d;
  }
  return t;
}

const ir_type *ir_type_list(ir_graph *g, const ir_type *elem) {
  ir_type *t = nn_alloc(g->arena, sizeof *t);
  const ir_type **e = nn_alloc(g->arena, sizeof *e);
  e[0] = elem ? elem : ir_type_scalar(g, IR_T_UNKNOWN);
  t->kind = IR_T_LIST;
  t->rank = -1;
  t->elems = e;
  t->nelems = 1;
  return t;
}

const ir_type *ir_type_tuple(ir_graph *g, int n, const ir_type *const *elems) {
  NN_ASSERT(n >= 0);
  ir_type *t = nn_alloc(g->arena, sizeof *t);
  const ir_type **e = nn_alloc(g->arena, sizeof *e * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) e[i] = elems[i] ? elems[i] : ir_type_scalar(g, IR_T_UNKNOWN);
  t->kind = IR_T_TUPLE;
  t->rank = -1;
  t->elems = e;
  t->nelems = n;
  return t;
}

bool ir_type_equal(const ir_type *a, const ir_type *b) {
  if (a == b) return true;
  if (!a || !b || a->kind != b->kind) return false;
  switch (a->kind) {
  case IR_T_TENSOR:
    if (a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
      if (a->dims[i] != b->dims[i]) return false;
    return true;
  case IR_T_LIST:
  case IR_T_TUPLE:
    if (a->nelems != b->nelems) return false;
    for (int i = 0; i < a->nelems; i++)
      if (!ir_type_equal(a->elems[i], b->elems[i])) return false;
    return true;
  default: return true;
  }
}
