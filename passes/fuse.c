/* fuse.c — which nodes share one kernel.
 *
 * The pass sets ir_node.group; the backend (lower/fuse.c) turns each group
 * into one loop nest (or one GEMM with an epilogue) that writes only the
 * group's last result. Decisions read the op table's fusion class, never
 * op names:
 *
 *  - a chain is a run of nodes n0 -> n1 -> ... -> nk where each n(i+1) is
 *    the only node that uses n(i)'s result (and that result is no graph
 *    output), so no intermediate is needed anywhere else and nothing is
 *    computed twice;
 *  - a chain may start at an ELEMENTWISE/BROADCAST node, at a GEMM node
 *    (convolution, linear, matmul, ...), whose chain becomes its epilogue:
 *    bias add, residual add of another tensor, activation, scale; or at an
 *    INJECTIVE node, whose elements the chain then computes from its
 *    index math (a concatenation followed by norm and activation, as in
 *    DenseNet; the backend lowers a head it has no index math for on its
 *    own and fuses the rest);
 *  - every later member is ELEMENTWISE or BROADCAST and has the same
 *    result shape as the chain's first node (a broadcast that grows the
 *    shape ends the chain); after a GEMM, the members also keep its dtype,
 *    as the epilogue stores into the GEMM's output;
 *  - ops that create tensors from scalars (IR_CREATES) and eval-mode
 *    identities (IR_IDENTITY, aliased by the backend) never join; VIEW,
 *    INJECTIVE, REDUCTION and OPAQUE ops end a chain (a view is free, the
 *    others need their own loop structure); META nodes are not looked at;
 *  - a chain of one node is no group.
 *
 * Chains are found greedily in program order, each from its earliest node.
 * Members need not be adjacent in program order; the pass moves each
 * member down to its chain's last node (see below), which makes every
 * group a contiguous run, as ir_verify requires. Group ids count from 1 in
 * order of the chains' first nodes.
 *
 * Reductions fused with their neighbours (softmax, layer_norm) are not done
 * yet: they need a loop structure of their own.
 */
#include "passes.h"

#include <string.h>

/* Whether n may be a non-first member of a chain (or start one). */
static bool elementwise(const ir_node *n) {
  ir_fusion f = ir_ops[n->op].fusion;
  return (f == IR_FUSE_ELEMENTWISE || f == IR_FUSE_BROADCAST) &&
         !(ir_ops[n->op].flags & (IR_CREATES | IR_IDENTITY)) && n->nout == 1;
}

static bool gemm(const ir_node *n) { return ir_ops[n->op].fusion == IR_FUSE_GEMM && n->nout == 1; }

/* Whether n may start a chain whose other members read its result as index
 * math (concatenation): INJECTIVE ops. */
static bool injective(const ir_node *n) {
  return ir_ops[n->op].fusion == IR_FUSE_INJECTIVE && n->nout == 1;
}

/* Same tensor shape (dims are hash-consed: equal ids are equal dims). */
static bool same_shape(const ir_type *a, const ir_type *b) {
  return a->kind == IR_T_TENSOR && b->kind == IR_T_TENSOR && a->rank >= 0 && a->rank == b->rank &&
         a->dims && b->dims && !memcmp(a->dims, b->dims, sizeof *a->dims * (size_t)a->rank);
}

/* The one node using v, or -1 when v has no use, several using nodes, or
 * is a graph output. users[] holds, per value, the using node (-1 none,
 * -2 several). */
static ir_nodeid only_user(const ir_nodeid *users, ir_value v) {
  return users[v] >= 0 ? users[v] : -1;
}

int pass_fuse(ir_graph *g, nn_diag *d) {
  (void)d;
  int nv = g->values.len;
  ir_nodeid *users = nn_alloc(g->arena, sizeof *users * (size_t)(nv + 1));
  for (int v = 0; v < nv; v++) users[v] = -1;
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    const ir_node *n = ir_node_get(g, id);
    for (int j = 0; j < n->nin; j++) {
      ir_value v = n->in[j];
      if (v < 0 || v >= nv) continue;
      users[v] = users[v] == -1 || users[v] == id ? id : -2;
    }
  }
  for (int i = 0; i < g->outputs.len; i++)
    if (g->outputs.data[i] >= 0 && g->outputs.data[i] < nv) users[g->outputs.data[i]] = -2;

  for (int i = 0; i < g->order.len; i++) ir_node_get(g, g->order.data[i])->group = 0;

  NN_VEC(ir_nodeid) chain = {0};
  int32_t next_group = 1;
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid head = g->order.data[i];
    const ir_node *h = ir_node_get(g, head);
    if (h->group || !(elementwise(h) || gemm(h) || injective(h))) continue;
    const ir_type *shape = ir_vtype(g, h->out[0]);
    if (shape->kind != IR_T_TENSOR || shape->rank < 0) continue;
    chain.len = 0;
    NN_PUSH(g->arena, chain, head);
    for (ir_nodeid cur = head;;) {
      ir_nodeid u = only_user(users, ir_node_get(g, cur)->out[0]);
      if (u < 0) break;
      const ir_node *un = ir_node_get(g, u);
      if (un->group || !elementwise(un)) break;
      const ir_type *ut = ir_vtype(g, un->out[0]);
      if (!same_shape(ut, shape) || (gemm(h) && ut->dtype != shape->dtype)) break;
      NN_PUSH(g->arena, chain, u);
      cur = u;
    }
    if (chain.len < 2) continue;
    for (int k = 0; k < chain.len; k++) ir_node_get(g, chain.data[k])->group = next_group;
    next_group++;
  }

  /* Make every group contiguous: each member moves down to its group's
   * last member, keeping the members' order. Sound because a member's
   * result is read by later members only, and its operands are defined
   * before its old place. Groups may interleave (two independent chains),
   * so several groups can be held at once. */
  int32_t *last_pos = nn_alloc(g->arena, sizeof *last_pos * (size_t)next_group);
  for (int k = 0; k < next_group; k++) last_pos[k] = -1;
  for (int i = 0; i < g->order.len; i++) {
    const ir_node *n = ir_node_get(g, g->order.data[i]);
    if (n->group > 0) last_pos[n->group] = i;
  }
  ir_nodeid *order = nn_alloc(g->arena, sizeof *order * (size_t)(g->order.len + 1));
  NN_VEC(ir_nodeid) held = {0};
  int w = 0;
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    int32_t grp = ir_node_get(g, id)->group;
    if (grp == 0) {
      order[w++] = id;
      continue;
    }
    NN_PUSH(g->arena, held, id);
    if (i != last_pos[grp]) continue;
    int keep = 0;
    for (int k = 0; k < held.len; k++) {
      ir_nodeid m = held.data[k];
      if (ir_node_get(g, m)->group == grp)
        order[w++] = m;
      else
        held.data[keep++] = m;
    }
    held.len = keep;
  }
  NN_ASSERT(w == g->order.len && held.len == 0);
  if (w) memcpy(g->order.data, order, sizeof *order * (size_t)w); /* none: no array */
  return 0;
}
