/* canonicalize.c — puts a freshly imported graph into canonical form.
 *
 * In order:
 *  1. In-place ops (relu_, add_) become their pure forms. In SSA the result
 *     of an in-place op is a new value, so any later use of the mutated
 *     operand must read the result instead; those uses are redirected. This
 *     is only sound when no other live value aliases the operand's memory:
 *     if the operand is a view (slice, select, view, transpose, ...) of a
 *     tensor that is read after the mutation, the mutation is observable
 *     through that tensor, and the model is rejected with a located error.
 *     Otherwise the rewrite is harmless; with -Wall it is a remark, once
 *     per op kind, at the first place it happens.
 *  2. Eval-mode identities (ops flagged IR_IDENTITY: dropout with
 *     train=False, contiguous, detach, clone) are replaced by their input. A
 *     dropout in training mode is a warning: inference drops it all the same.
 *  3. CSE: pure nodes with the same op, operands and attributes merge
 *     (constants by value), keeping the first.
 *  4. DCE: nodes whose results reach no graph output are removed.
 */
#include "passes.h"

#include <string.h>

/* ---- 1. in-place ops --------------------------------------------------- */

/* The value a view-like op reads its memory from, or IR_NOVAL. */
static ir_value view_base(ir_graph *g, ir_value v) {
  ir_nodeid def = g->values.data[v].def;
  if (def < 0) return IR_NOVAL;
  const ir_node *n = ir_node_get(g, def);
  ir_fusion f = ir_ops[n->op].fusion;
  bool viewish = f == IR_FUSE_VIEW || n->op == NN_OP_SLICE || n->op == NN_OP_SELECT ||
                 n->op == NN_OP_NARROW || n->op == NN_OP_TRANSPOSE || n->op == NN_OP_PERMUTE ||
                 n->op == NN_OP_T || n->op == NN_OP_EXPAND || n->op == NN_OP_LIST_UNPACK;
  if (!viewish || n->nin == 0) return IR_NOVAL;
  if (ir_ops[n->op].flags & IR_IDENTITY) return n->in[0];
  return n->in[0];
}

/* Does any node after position `pos` (or a graph output) read v? */
static bool used_after(ir_graph *g, const int *posv, int pos, ir_value v) {
  for (int i = 0; i < g->outputs.len; i++)
    if (g->outputs.data[i] == v) return true;
  for (int k = 0; k < g->order.len; k++) {
    ir_nodeid id = g->order.data[k];
    if (posv[id] <= pos) continue;
    const ir_node *n = ir_node_get(g, id);
    for (int j = 0; j < n->nin; j++)
      if (n->in[j] == v) return true;
  }
  return false;
}

static int purify_inplace(ir_graph *g, nn_diag *d) {
  int errors = 0;
  int *posv = ir_positions(g);
  bool remarked[NN_OP_COUNT] = {0}; /* one -Wall remark per op kind */
  for (int k = 0; k < g->order.len; k++) {
    ir_nodeid id = g->order.data[k];
    ir_node *n = ir_node_get(g, id);
    if (!(n->flags & IR_NF_INPLACE)) continue;
    n->flags &= ~(unsigned)IR_NF_INPLACE;
    if (n->nin == 0 || n->nout == 0) continue;
    ir_value x = n->in[0], r = n->out[0];
    /* Reject when an aliasing base is still read after the mutation. */
    bool aliased = false;
    for (ir_value b = view_base(g, x); b != IR_NOVAL; b = view_base(g, b)) {
      if (used_after(g, posv, posv[id], b)) {
        nn_error(d, n->loc,
                 "in-place '%s_' writes into a view of a tensor that is read "
                 "afterwards; this aliasing is not supported",
                 ir_ops[n->op].name);
        errors++;
        aliased = true;
        break;
      }
    }
    if (!aliased && !remarked[n->op]) {
      remarked[n->op] = true;
      nn_remark(d, n->loc, "in-place '%s_' computed out of place (nothing else observes its input)",
                ir_ops[n->op].name);
    }
    ir_replace_uses_after(g, id, x, r);
  }
  return errors;
}

/* ---- 2. identities ------------------------------------------------------ */

static void drop_identities(ir_graph *g, nn_diag *d) {
  for (int k = 0; k < g->order.len; k++) {
    ir_nodeid id = g->order.data[k];
    ir_node *n = ir_node_get(g, id);
    if (!(ir_ops[n->op].flags & IR_IDENTITY) || n->nin == 0 || n->nout != 1) continue;
    if (n->op == NN_OP_DROPOUT && n->nin >= 3) {
      const ir_const *train;
      if (ir_value_const(g, n->in[2], &train) && train->kind == IR_C_BOOL && train->i) {
        nn_warning(d, n->loc, "dropout in training mode; compiled for inference, it is removed");
      } else if (!ir_value_const(g, n->in[2], &train)) {
        continue; /* train computed at run time: keep */
      }
    }
    ir_replace_uses(g, n->out[0], n->in[0]);
  }
}

/* ---- 3. CSE --------------------------------------------------------------- */

typedef struct cse_table {
  char **keys;    /* owned copies of node keys */
  ir_value *vals; /* first result of the node with that key */
  int cap;        /* power of two */
  int len;
} cse_table;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Finds key; inserts (key, v) if absent. Returns the stored value. */
static ir_value cse_lookup(nn_arena *a, cse_table *t, const char *key, ir_value v) {
  if (t->len * 2 >= t->cap) {
    int nc = t->cap ? t->cap * 2 : 256;
    char **nk = nn_alloc(a, sizeof(char *) * (size_t)nc);
    ir_value *nv = nn_alloc(a, sizeof(ir_value) * (size_t)nc);
    for (int i = 0; i < t->cap; i++) {
      if (!t->keys[i]) continue;
      uint64_t h = hash_str(t->keys[i]) & (uint64_t)(nc - 1);
      while (nk[h]) h = (h + 1) & (uint64_t)(nc - 1);
      nk[h] = t->keys[i];
      nv[h] = t->vals[i];
    }
    t->keys = nk;
    t->vals = nv;
    t->cap = nc;
  }
  uint64_t h = hash_str(key) & (uint64_t)(t->cap - 1);
  while (t->keys[h]) {
    if (!strcmp(t->keys[h], key)) return t->vals[h];
    h = (h + 1) & (uint64_t)(t->cap - 1);
  }
  t->keys[h] = nn_strdup(a, key);
  t->vals[h] = v;
  t->len++;
  return v;
}

static void node_key(nn_buf *b, const ir_graph *g, const ir_node *n) {
  b->len = 0;
  if (b->data) b->data[0] = 0;
  nn_buf_printf(b, "%d|", (int)n->op);
  for (int i = 0; i < n->nin; i++) nn_buf_printf(b, "%d,", n->in[i]);
  if (n->op == NN_OP_CONSTANT) {
    const ir_const *c = &n->c;
    nn_buf_printf(b, "|c%d:%lld:%a:", (int)c->kind, (long long)c->i, c->f);
    if (c->s) nn_buf_printf(b, "%zu:%s", strlen(c->s), c->s);
    for (int i = 0; i < c->n; i++) {
      if (c->ints) nn_buf_printf(b, "%lld,", (long long)c->ints[i]);
      if (c->floats) nn_buf_printf(b, "%a,", c->floats[i]);
    }
  }
  if (n->op == NN_OP_WEIGHT) nn_buf_printf(b, "|w%d", n->weight);
  if (n->op == NN_OP_TUPLE_GET) nn_buf_printf(b, "|i%lld", (long long)n->index);
  (void)g;
}

static void cse(ir_graph *g) {
  cse_table t = {0};
  nn_buf key = {0};
  for (int k = 0; k < g->order.len; k++) {
    ir_nodeid id = g->order.data[k];
    ir_node *n = ir_node_get(g, id);
    if (!(ir_ops[n->op].flags & IR_PURE) || n->nout != 1 || (n->flags & IR_NF_INPLACE)) continue;
    node_key(&key, g, n);
    ir_value first = cse_lookup(g->arena, &t, key.data, n->out[0]);
    if (first != n->out[0]) ir_replace_uses(g, n->out[0], first);
  }
  nn_buf_free(&key);
}

/* ---- 4. DCE --------------------------------------------------------------- */

void pass_dce(ir_graph *g) {
  bool *live = nn_alloc(g->arena, (size_t)g->values.len + 1);
  for (int i = 0; i < g->outputs.len; i++) live[g->outputs.data[i]] = true;
  for (int k = g->order.len - 1; k >= 0; k--) {
    ir_nodeid id = g->order.data[k];
    ir_node *n = ir_node_get(g, id);
    bool any = !(ir_ops[n->op].flags & IR_PURE);
    for (int j = 0; j < n->nout; j++) any |= live[n->out[j]];
    if (!any) {
      n->flags |= IR_NF_DEAD;
      continue;
    }
    for (int j = 0; j < n->nin; j++) live[n->in[j]] = true;
  }
  ir_compact(g);
}

int pass_canonicalize(ir_graph *g, nn_diag *d) {
  int errors = purify_inplace(g, d);
  drop_identities(g, d);
  cse(g);
  pass_dce(g);
  return errors;
}
