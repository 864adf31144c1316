/* verify.c — structural checks on a graph.
 *
 * ir_verify() runs after the frontend and (in debug builds) after every
 * pass. It checks what every other part of nncc takes for granted:
 *   - program order names each live node once, and no dead node;
 *   - operand and result counts match the op table (variadic rows excepted);
 *   - every operand is a graph input or a result of a live node placed
 *     earlier in program order;
 *   - every result names its node as its one definition, and has a type;
 *   - CONSTANT nodes hold a well-formed constant typed as ir_const_type()
 *     says (or not typed yet); WEIGHT nodes name an existing weight whose
 *     dtype and sizes agree with a fully known tensor type;
 *   - graph inputs and outputs are valid values, outputs of live nodes;
 *   - fused groups (ir_node.group > 0) are contiguous runs of program order
 *     whose members have one result each; the first member is
 *     ELEMENTWISE, BROADCAST, GEMM or INJECTIVE, the others ELEMENTWISE or
 *     BROADCAST;
 *     a member's result is used by later members of the same group only,
 *     except the last member's, which is the group's one escaping value.
 *
 * Each problem is one error "verify: node %N (op): ..." at the node's source
 * location, where %N is the node's first result as ir_print numbers it
 * ("node #ID (op)" when the node has no printed result). It never stops at
 * the first problem and never crashes on a broken graph; the return value
 * is the problem count.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

typedef struct vctx {
  const ir_graph *g; /* being checked */
  nn_diag *d;        /* sink */
  int32_t *num;      /* print numbering of values */
  int *pos;          /* program-order position per node id, -1 if none */
  int errors;        /* problems so far */
} vctx;

static bool valid_value(const ir_graph *g, ir_value v) { return v >= 0 && v < g->values.len; }

static const char *op_name(ir_op op) { return (unsigned)op < NN_OP_COUNT ? ir_ops[op].name : "?"; }

/* Reports "verify: node %N (op): <message>" at n's location. */
static __attribute__((format(printf, 4, 5))) void
node_error(vctx *c, ir_nodeid id, const ir_node *n, const char *fmt, ...) {
  nn_buf msg = {0};
  if (n->nout > 0 && valid_value(c->g, n->out[0]) && c->num[n->out[0]] >= 0)
    nn_buf_printf(&msg, "verify: node %%%d (%s): ", c->num[n->out[0]], op_name(n->op));
  else
    nn_buf_printf(&msg, "verify: node #%d (%s): ", id, op_name(n->op));
  va_list ap;
  va_start(ap, fmt);
  nn_buf_vprintf(&msg, fmt, ap);
  va_end(ap);
  nn_error(c->d, n->loc, "%s", msg.data);
  nn_buf_free(&msg);
  c->errors++;
}

static __attribute__((format(printf, 2, 3))) void graph_error(vctx *c, const char *fmt, ...) {
  nn_buf msg = {0};
  va_list ap;
  va_start(ap, fmt);
  nn_buf_vprintf(&msg, fmt, ap);
  va_end(ap);
  nn_error(c->d, (nn_loc){0}, "verify: %s", msg.data);
  nn_buf_free(&msg);
  c->errors++;
}

/* "%N" of a value for messages ("%?" when it has no number). */
static const char *vname(vctx *c, ir_value v, char *buf, size_t n) {
  if (valid_value(c->g, v) && c->num[v] >= 0)
    snprintf(buf, n, "%%%d", c->num[v]);
  else
    snprintf(buf, n, "%%?");
  return buf;
}

static ir_tkind const_tkind(ir_ckind k, ir_tkind *elem) {
  *elem = IR_T_UNKNOWN;
  switch (k) {
  case IR_C_INT: return IR_T_INT;
  case IR_C_FLOAT: return IR_T_FLOAT;
  case IR_C_BOOL: return IR_T_BOOL;
  case IR_C_NONE: return IR_T_NONE;
  case IR_C_STR: return IR_T_STR;
  case IR_C_DEVICE: return IR_T_DEVICE;
  case IR_C_INTLIST: *elem = IR_T_INT; return IR_T_LIST;
  case IR_C_FLOATLIST: *elem = IR_T_FLOAT; return IR_T_LIST;
  case IR_C_BOOLLIST: *elem = IR_T_BOOL; return IR_T_LIST;
  }
  return IR_T_UNKNOWN;
}

static const char *scalar_name(ir_tkind k) {
  switch (k) {
  case IR_T_INT: return "int";
  case IR_T_FLOAT: return "float";
  case IR_T_BOOL: return "bool";
  case IR_T_NONE: return "none";
  case IR_T_STR: return "str";
  case IR_T_DEVICE: return "device";
  default: return "unknown";
  }
}

static void check_constant(vctx *c, ir_nodeid id, const ir_node *n) {
  const ir_const *k = &n->c;
  if ((unsigned)k->kind > IR_C_BOOLLIST) {
    node_error(c, id, n, "invalid constant kind %d", (int)k->kind);
    return;
  }
  if ((k->kind == IR_C_STR || k->kind == IR_C_DEVICE) && !k->s)
    node_error(c, id, n, "string constant without a string");
  if (k->kind >= IR_C_INTLIST) {
    bool floats = k->kind == IR_C_FLOATLIST;
    if (k->n < 0 || (k->n > 0 && (floats ? !k->floats : !k->ints)))
      node_error(c, id, n, "list constant without its elements");
  }
  if (n->nout < 1 || !valid_value(c->g, n->out[0])) return;
  const ir_type *t = c->g->values.data[n->out[0]].type;
  if (!t || t->kind == IR_T_UNKNOWN) return;
  ir_tkind elem, want = const_tkind(k->kind, &elem);
  bool ok = t->kind == want;
  if (ok && want == IR_T_LIST) ok = t->nelems == 1 && t->elems[0] && t->elems[0]->kind == elem;
  if (!ok) {
    nn_buf have = {0};
    ir_type_print(&have, c->g, t);
    const char *w = scalar_name(want);
    if (want == IR_T_LIST)
      w = elem == IR_T_INT ? "list<int>" : elem == IR_T_FLOAT ? "list<float>" : "list<bool>";
    node_error(c, id, n, "constant has type %s, expected %s", have.data, w);
    nn_buf_free(&have);
  }
}

static void check_weight(vctx *c, ir_nodeid id, const ir_node *n) {
  const ir_graph *g = c->g;
  if (n->weight < 0 || n->weight >= g->weights.len) {
    node_error(c, id, n, "weight index %d out of range (%d weights)", n->weight, g->weights.len);
    return;
  }
  const ir_weight *w = &g->weights.data[n->weight];
  if (n->nout < 1 || !valid_value(g, n->out[0])) return;
  const ir_type *t = g->values.data[n->out[0]].type;
  if (!t || t->kind != IR_T_TENSOR || t->rank < 0 || t->dtype == NN_DT_UNKNOWN) return;
  for (int i = 0; i < t->rank; i++)
    if (!ir_dim_is_const(g, t->dims[i], NULL)) return;
  bool ok = t->dtype == w->dtype && t->rank == w->rank;
  for (int i = 0; ok && i < t->rank; i++) {
    int64_t s;
    ir_dim_is_const(g, t->dims[i], &s);
    ok = w->sizes && w->sizes[i] == s;
  }
  if (!ok) {
    nn_buf have = {0}, want = {0};
    ir_type_print(&have, g, t);
    nn_buf_printf(&want, "%s[", nn_dtype_name(w->dtype));
    for (int i = 0; i < w->rank; i++)
      nn_buf_printf(&want, "%s%lld", i ? "," : "", w->sizes ? (long long)w->sizes[i] : -1LL);
    nn_buf_printf(&want, "]");
    node_error(c, id, n, "type %s does not match weight \"%s\" (%s)", have.data,
               w->name ? w->name : "", want.data);
    nn_buf_free(&have);
    nn_buf_free(&want);
  }
}

static void check_node(vctx *c, ir_nodeid id, int at) {
  const ir_graph *g = c->g;
  const ir_node *n = &g->nodes.data[id];
  char b1[32];
  if ((unsigned)n->op >= NN_OP_COUNT) {
    node_error(c, id, n, "invalid op %d", (int)n->op);
    return;
  }
  const ir_opinfo *info = &ir_ops[n->op];
  if (info->nin >= 0 && n->nin != info->nin)
    node_error(c, id, n, "has %d operands, expected %d", n->nin, info->nin);
  if (info->nout >= 0 && n->nout != info->nout)
    node_error(c, id, n, "has %d results, expected %d", n->nout, info->nout);
  for (int i = 0; i < n->nin; i++) {
    ir_value v = n->in[i];
    if (!valid_value(g, v)) {
      node_error(c, id, n, "operand %d is not a value", i);
      continue;
    }
    const ir_valinfo *vi = &g->values.data[v];
    if (vi->def < 0) {
      if (vi->idx < 0 || vi->idx >= g->inputs.len || g->inputs.data[vi->idx] != v)
        node_error(c, id, n, "operand %d (%s) has no definition", i, vname(c, v, b1, sizeof b1));
    } else if (vi->def >= g->nodes.len || c->pos[vi->def] < 0) {
      node_error(c, id, n, "operand %d is defined by a removed node", i);
    } else if (c->pos[vi->def] >= at) {
      node_error(c, id, n, "operand %d (%s) is used before its definition", i,
                 vname(c, v, b1, sizeof b1));
    }
  }
  for (int i = 0; i < n->nout; i++) {
    ir_value v = n->out[i];
    if (!valid_value(g, v)) {
      node_error(c, id, n, "result %d is not a value", i);
      continue;
    }
    const ir_valinfo *vi = &g->values.data[v];
    if (vi->def != id || vi->idx != i)
      node_error(c, id, n, "result %d (%s) has another definition", i, vname(c, v, b1, sizeof b1));
    if (!vi->type) node_error(c, id, n, "result %d has no type", i);
  }
  if (n->op == NN_OP_CONSTANT) check_constant(c, id, n);
  if (n->op == NN_OP_WEIGHT) check_weight(c, id, n);
}

/* Whether the member at position i of program order is followed by a
 * member of the same group. */
static bool group_continues(const ir_graph *g, int i) {
  if (i + 1 >= g->order.len) return false;
  ir_nodeid id = g->order.data[i], next = g->order.data[i + 1];
  if (id < 0 || id >= g->nodes.len || next < 0 || next >= g->nodes.len) return false;
  return g->nodes.data[id].group > 0 && g->nodes.data[next].group == g->nodes.data[id].group;
}

static int cmp_run(const void *a, const void *b) {
  const int32_t *x = a, *y = b; /* {group id, position} */
  return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* The group checks (see the file comment), linear in the graph's size plus
 * a sort of the runs. Runs after the per-node checks, so positions are
 * known; tolerates broken operands (already reported). */
static void check_groups(vctx *c) {
  const ir_graph *g = c->g;
  int32_t *runs = malloc(sizeof *runs * 2 * (size_t)(g->order.len + 1));
  if (!runs) nn_internal_error(__FILE__, __LINE__, "out of memory");
  int nruns = 0;
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    if (id < 0 || id >= g->nodes.len || c->pos[id] != i) continue;
    const ir_node *n = &g->nodes.data[id];
    if (n->group < 0) node_error(c, id, n, "negative group id %d", n->group);
    /* operands: a non-last member's result may feed its own group only */
    for (int k = 0; k < n->nin; k++) {
      ir_value v = n->in[k];
      if (!valid_value(g, v)) continue;
      ir_nodeid d = g->values.data[v].def;
      if (d < 0 || d >= g->nodes.len || c->pos[d] < 0) continue;
      const ir_node *dn = &g->nodes.data[d];
      if (dn->group > 0 && dn->group != n->group && group_continues(g, c->pos[d]))
        node_error(c, d, dn, "result is used outside its group");
    }
    if (n->group <= 0) continue;
    bool first = i == 0 || !group_continues(g, i - 1);
    if (first) {
      runs[2 * nruns] = n->group;
      runs[2 * nruns + 1] = i;
      nruns++;
    }
    ir_fusion f = (unsigned)n->op < NN_OP_COUNT ? ir_ops[n->op].fusion : IR_FUSE_OPAQUE;
    bool ew = f == IR_FUSE_ELEMENTWISE || f == IR_FUSE_BROADCAST;
    if (!(ew || (first && (f == IR_FUSE_GEMM || f == IR_FUSE_INJECTIVE))))
      node_error(c, id, n, "an op of fusion class %s cannot be %s member of a group",
                 ir_fusion_name(f), first ? "the first" : "a later");
    if (n->nout != 1) node_error(c, id, n, "a group member must have one result");
    if (n->nout >= 1 && group_continues(g, i))
      for (int j = 0; j < g->outputs.len; j++)
        if (g->outputs.data[j] == n->out[0])
          node_error(c, id, n, "result is a graph output but not the last member of its group");
  }
  qsort(runs, (size_t)nruns, sizeof *runs * 2, cmp_run);
  for (int r = 1; r < nruns; r++)
    if (runs[2 * r] == runs[2 * r - 2]) {
      ir_nodeid id = g->order.data[runs[2 * r + 1]];
      node_error(c, id, &g->nodes.data[id], "group members are not contiguous in program order");
    }
  free(runs);
}

int ir_verify(const ir_graph *g, nn_diag *d) {
  vctx c = {g, d, NULL, NULL, 0};
  c.num = malloc(sizeof *c.num * (size_t)(g->values.len + 1));
  c.pos = malloc(sizeof *c.pos * (size_t)(g->nodes.len + 1));
  if (!c.num || !c.pos) nn_internal_error(__FILE__, __LINE__, "out of memory");
  ir_number_values(g, c.num);
  for (int i = 0; i < g->nodes.len; i++) c.pos[i] = -1;

  /* Program order first: positions are needed by the use checks. */
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    if (id < 0 || id >= g->nodes.len) {
      graph_error(&c, "program order entry %d is not a node (#%d)", i, id);
    } else if (g->nodes.data[id].flags & IR_NF_DEAD) {
      node_error(&c, id, &g->nodes.data[id], "dead but in program order");
    } else if (c.pos[id] >= 0) {
      node_error(&c, id, &g->nodes.data[id], "appears twice in program order");
    } else {
      c.pos[id] = i;
    }
  }
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    if (id >= 0 && id < g->nodes.len && c.pos[id] == i) check_node(&c, id, i);
  }

  for (int i = 0; i < g->inputs.len; i++) {
    ir_value v = g->inputs.data[i];
    if (!valid_value(g, v) || g->values.data[v].def != -1 || g->values.data[v].idx != i)
      graph_error(&c, "input %d is not a graph input value", i);
  }
  for (int i = 0; i < g->outputs.len; i++) {
    ir_value v = g->outputs.data[i];
    if (!valid_value(g, v)) {
      graph_error(&c, "output %d is undefined", i);
      continue;
    }
    ir_nodeid def = g->values.data[v].def;
    if (def >= 0 && (def >= g->nodes.len || c.pos[def] < 0))
      graph_error(&c, "output %d is defined by a removed node", i);
  }
  check_groups(&c);
  free(c.num);
  free(c.pos);
  return c.errors;
}
