/* fuse.c — a fused group of IR nodes → kernels.
 *
 * passes/fuse.c marks groups (ir_node.group): runs of nodes in program order
 * whose members' results, except the last one's, are used inside the group
 * only. Here a group becomes kernels that store only the last member's
 * result; the other members' results live in registers.
 *
 *  - Elementwise/broadcast groups become ONE kernel: a loop nest over the
 *    result's shape (outermost PARALLEL, innermost VECTOR; a single flat
 *    loop when every operand has that shape or one element), where each
 *    operand from outside the group is loaded at its broadcast index and
 *    every member is computed in order by kl_scalar_op() (elementwise.c),
 *    the same scalar code its standalone kernel uses, so fusing never
 *    changes a result bit.
 *  - A group headed by a gemm-like op is lowered by its own lowering with
 *    the rest of the group as the epilogue of each kernel writing the
 *    product (kl_lower_node_ep, gemm.c and conv*.c): the epilogue builder below computes the members
 *    from the product's element and the flat index of that element.
 *  - A group headed by a concatenation of listed tensors is one kernel
 *    over the rows of the result that reads each row from the input it
 *    comes from (lower_cat_group); other injective heads are lowered on
 *    their own and the rest of the group is fused without them.
 *
 * The members all have the result's shape (the fusion pass groups only
 * such nodes), so an operand's broadcast index follows from the result's
 * coordinates. Shapes are dims of the graph (ir_dim), possibly symbolic:
 * an operand dim is broadcast when it is the number 1 and must otherwise
 * be the result's dim itself (shape inference resolved broadcasting; a
 * symbolic dim is never taken for 1); sizes and strides become kernel
 * expressions through kl_dimx, numbers when static. A group the scalar form cannot express (a member without
 * one, an operand that is a string or a list) is lowered member by member
 * through kl_lower_node, which gives every member's result storage again:
 * slower, never wrong.
 */
#include "lower.h"

#include <string.h>

#define MAXSLOTS 48 /* distinct external operands per group kernel, at most */
/* Slots a group kernel keeps for its own besides the external operands:
 * its output, the dims, a GEMM's A, B, C, bias and image. */
#define OWN_SLOTS 16

/* A group being lowered. */
typedef struct grp {
  kl_ctx *c;
  ir_graph *g;
  const ir_nodeid *nodes; /* the members, in program order */
  int n;                  /* member count */
  bool head;              /* nodes[0] is gemm-like or injective: computed
                             by its own code, the rest is fused onto it */
  bool gemm;              /* nodes[0] is gemm-like */
  int rank;               /* the result's shape */
  ir_dim od[KL_MAXR];
  ir_dim ost[KL_MAXR]; /* its contiguous strides */
  bool flat;           /* every operand has the result's shape or one
                       element: one flat loop, no index math */
  /* while building one kernel: */
  kernel *k;
  kx_id flat_idx;              /* I64: flat index of the element computed */
  const kx_id *iv;             /* coordinates (NULL: derive from flat_idx) */
  ir_value slot_val[MAXSLOTS]; /* external operands loaded so far... */
  int32_t slot[MAXSLOTS];      /* ...and their slots */
  int nslots;
} grp;

static bool same_dims(int r, const ir_dim *a, const ir_dim *b) {
  return !memcmp(a, b, sizeof *a * (size_t)r);
}

/* Shape of an operand value (scalars: rank 0); -1 when it is not a tensor
 * or number, or a dim is unknown. Reports nothing. */
static int operand_shape(grp *G, ir_value v, ir_dim *dims) {
  const ir_type *t = ir_vtype(G->g, v);
  if (t->kind == IR_T_INT || t->kind == IR_T_FLOAT || t->kind == IR_T_BOOL) return 0;
  if (t->kind != IR_T_TENSOR || t->rank < 0 || t->rank > KL_MAXR) return -1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] == IR_DIM_UNKNOWN) return -1;
    dims[i] = t->dims[i];
  }
  return t->rank;
}

/* Whether v (a member of a gemm group) has the dtype of the gemm's result,
 * and that is f32, f16 or bf16: what the GEMM's epilogue can store. */
static bool gemm_dtype(grp *G, ir_value v) {
  const ir_node *h = ir_node_get(G->g, G->nodes[0]);
  nn_dtype dt = ir_vtype(G->g, h->out[0])->dtype;
  return (dt == NN_DT_F32 || dt == NN_DT_F16 || dt == NN_DT_BF16) && ir_vtype(G->g, v)->dtype == dt;
}

/* The member (index into G->nodes, < before) that defines v, or -1. */
static int member_of(grp *G, ir_value v, int before) {
  ir_nodeid def = G->g->values.data[v].def;
  for (int i = 0; i < before; i++)
    if (G->nodes[i] == def) return i;
  return -1;
}

/* External operands a group kernel may have on the target. */
static int max_external(grp *G) {
  int n = kl_tg(G->c)->max_slots - OWN_SLOTS;
  return n < MAXSLOTS ? n : MAXSLOTS;
}

/* Whether the group can be lowered fused; fills the result shape and
 * `flat`. Emits nothing and reports nothing: a false answer means "lower
 * the members one by one", which reports any real error itself. */
static bool check(grp *G) {
  const ir_node *last = ir_node_get(G->g, G->nodes[G->n - 1]);
  if (last->nout != 1) return false;
  G->rank = operand_shape(G, last->out[0], G->od);
  if (G->rank < 0 || ir_vtype(G->g, last->out[0])->kind != IR_T_TENSOR) return false;
  ir_dim s = ir_dim_const(G->g, 1);
  for (int i = G->rank - 1; i >= 0; i--) {
    G->ost[i] = s;
    s = ir_dim_mul(G->g, s, G->od[i]);
  }
  if (s == IR_DIM_UNKNOWN) return false; /* too complex an expression */
  G->flat = true;
  int external = 0;
  for (int m = G->head ? 1 : 0; m < G->n; m++) {
    ir_nodeid id = G->nodes[m];
    const ir_node *n = ir_node_get(G->g, id);
    int which[4];
    int nops = kl_scalar_operands(G->c, id, which);
    if (nops < 0) return false;
    ir_dim d[KL_MAXR];
    if (operand_shape(G, n->out[0], d) != G->rank || !same_dims(G->rank, d, G->od)) return false;
    /* a gemm epilogue stores into the gemm's output: every member has the
     * gemm's float dtype (16-bit C is rounded from f32, gemm.c) */
    if (G->gemm && !gemm_dtype(G, n->out[0])) return false;
    for (int i = 0; i < nops; i++) {
      int j = which[i];
      if (j >= n->nin) continue;
      ir_value v = n->in[j];
      const ir_type *t = ir_vtype(G->g, v);
      if (t->kind == IR_T_NONE) continue;
      if (member_of(G, v, m) >= 0) continue;
      const ir_const *c;
      if (ir_value_const(G->g, v, &c)) {
        if (c->kind != IR_C_INT && c->kind != IR_C_FLOAT && c->kind != IR_C_BOOL) return false;
        continue;
      }
      int r = operand_shape(G, v, d);
      if (r < 0 || r > G->rank || kl_vdtype(G->c, v) == NN_DT_UNKNOWN) return false;
      for (int k = 0; k < r; k++) /* right-aligned broadcast */
        if (!kl_dis(G->c, d[k], 1) && d[k] != G->od[G->rank - r + k]) return false;
      if (!kl_dis(G->c, kl_numel(G->c, r, d), 1) && !(r == G->rank && same_dims(r, d, G->od)))
        G->flat = false;
      if (++external > max_external(G)) return false;
    }
  }
  if (G->head) { /* the head's result has the group's shape, so its flat
                    index (C's, for a gemm) is the result's */
    const ir_node *h = ir_node_get(G->g, G->nodes[0]);
    ir_dim d[KL_MAXR];
    if (h->nout != 1 || (G->gemm && !gemm_dtype(G, h->out[0])) ||
        operand_shape(G, h->out[0], d) != G->rank || !same_dims(G->rank, d, G->od))
      return false;
  }
  return true;
}

/* Index of an operand of shape (r, d) at the current element: 0 for one
 * element, the flat index for the result's own shape, else the sum of the
 * result's coordinates times the operand's broadcast strides (coordinates
 * from the loop variables, or divided out of the flat index). */
static kx_id operand_index(grp *G, int r, const ir_dim *d) {
  kernel *k = G->k;
  if (kl_dis(G->c, kl_numel(G->c, r, d), 1)) return k_i64(k, 0);
  if (r == G->rank && same_dims(r, d, G->od)) return G->flat_idx;
  ir_dim cs[KL_MAXR], s = ir_dim_const(G->g, 1);
  for (int i = r - 1; i >= 0; i--) {
    cs[i] = s;
    s = ir_dim_mul(G->g, s, d[i]);
  }
  kx_id e = k_i64(k, 0);
  for (int i = 0; i < G->rank; i++) {
    int j = i - (G->rank - r);
    if (j < 0 || kl_dis(G->c, d[j], 1)) continue; /* broadcast: stride 0 */
    kx_id coord = G->iv
                      ? G->iv[i]
                      : k_bin(k, KX_MOD, k_bin(k, KX_DIV, G->flat_idx, kl_dimx(G->c, k, G->ost[i])),
                              kl_dimx(G->c, k, G->od[i]));
    e = k_bin(k, KX_ADD, e, k_bin(k, KX_MUL, coord, kl_dimx(G->c, k, cs[j])));
  }
  return e;
}

/* The element of external operand v at the current element (a slot bound
 * on first use). */
static kx_id load_external(grp *G, ir_value v) {
  kernel *k = G->k;
  ir_dim d[KL_MAXR];
  int r = operand_shape(G, v, d);
  NN_ASSERT(r >= 0); /* check() */
  int32_t slot = -1;
  for (int i = 0; i < G->nslots; i++)
    if (G->slot_val[i] == v) slot = G->slot[i];
  if (slot < 0) {
    NN_ASSERT(G->nslots < MAXSLOTS);
    /* "a", "b", ... as elementwise.c names operands; "e0", "e1", ... in a
     * gemm epilogue, whose kernel already has an "a" and a "b" */
    const char *name = G->gemm ? nn_sprintf(kl_arena(G->c), "e%d", G->nslots)
                               : nn_sprintf(kl_arena(G->c), "%c", 'a' + G->nslots % 26);
    slot = k_buf(k, kl_vdtype(G->c, v), kl_elems(G->c, kl_numel(G->c, r, d)), false, name);
    kl_bind(G->c, k, slot, kl_value_buf(G->c, v));
    G->slot_val[G->nslots] = v;
    G->slot[G->nslots++] = slot;
  }
  return k_load(k, slot, operand_index(G, r, d));
}

/* Computes members [from, n) at the current element; `first` is the value
 * of member from-1 when from > 0 (the gemm's product). Returns the last
 * member's element (in its dtype), or -1 after reporting. */
static kx_id compute(grp *G, int from, kx_id first) {
  kx_id *val = nn_alloc(kl_arena(G->c), sizeof(kx_id) * (size_t)G->n);
  if (from > 0) val[from - 1] = first;
  for (int m = from; m < G->n; m++) {
    ir_nodeid id = G->nodes[m];
    const ir_node *n = ir_node_get(G->g, id);
    int which[4];
    int nops = kl_scalar_operands(G->c, id, which);
    NN_ASSERT(nops >= 0 && nops <= 4); /* check() */
    kx_id v[4];
    for (int i = 0; i < nops; i++) {
      int j = which[i];
      v[i] = -1;
      if (j >= n->nin || ir_vtype(G->g, n->in[j])->kind == IR_T_NONE) continue;
      int def = member_of(G, n->in[j], m);
      const ir_const *c;
      if (def >= 0)
        v[i] = val[def];
      else if (ir_value_const(G->g, n->in[j], &c))
        v[i] = kl_scalar_const(G->k, c);
      else
        v[i] = load_external(G, n->in[j]);
    }
    val[m] = kl_scalar_op(G->c, G->k, id, v);
    if (val[m] < 0) return -1;
  }
  return val[G->n - 1];
}

/* The name of the fused ops [from, n), joined by '_'. */
static const char *group_name(grp *G, int from) {
  nn_buf b = {0};
  for (int m = from; m < G->n; m++)
    nn_buf_printf(&b, "%s%s", m > from ? "_" : "", ir_ops[ir_node_get(G->g, G->nodes[m])->op].name);
  const char *s = nn_strdup(kl_arena(G->c), b.data ? b.data : "");
  nn_buf_free(&b);
  return s;
}

/* ---- elementwise groups --------------------------------------------------- */

static int lower_elementwise(grp *G) {
  ir_value out = ir_node_get(G->g, G->nodes[G->n - 1])->out[0];
  kernel *k = G->k = kl_kernel(G->c, group_name(G, 0));
  nn_dtype odt = kl_vdtype(G->c, out);
  ir_dim total = kl_numel(G->c, G->rank, G->od);
  bool one = kl_dis(G->c, total, 1);
  int32_t os = k_buf(k, odt, kl_elems(G->c, total), true, "out");
  kl_bind(G->c, k, os, kl_value_buf(G->c, out));
  /* loops: flat, or one per dim that is not the number 1 (first PARALLEL,
   * last VECTOR) */
  int nl = 0;
  kx_id iv[KL_MAXR];
  if (G->flat) {
    G->iv = NULL;
    G->flat_idx = one ? k_i64(k, 0)
                      : k_varref(k, k_for_begin(k, k_i64(k, 0), kl_dimx(G->c, k, total),
                                                KS_PARALLEL | KS_VECTOR));
    nl = one ? 0 : 1;
  } else {
    int first = -1, last = -1;
    for (int i = 0; i < G->rank; i++)
      if (!kl_dis(G->c, G->od[i], 1)) {
        if (first < 0) first = i;
        last = i;
      }
    kx_id idx = k_i64(k, 0);
    for (int i = 0; i < G->rank; i++) {
      if (kl_dis(G->c, G->od[i], 1)) {
        iv[i] = k_i64(k, 0);
        continue;
      }
      unsigned f = (i == first ? KS_PARALLEL : 0) | (i == last ? KS_VECTOR : 0);
      iv[i] = k_varref(k, k_for_begin(k, k_i64(k, 0), kl_dimx(G->c, k, G->od[i]), f));
      idx = k_bin(k, KX_ADD, idx, k_bin(k, KX_MUL, iv[i], kl_dimx(G->c, k, G->ost[i])));
      nl++;
    }
    G->iv = iv;
    G->flat_idx = idx;
  }
  kx_id r = compute(G, 0, -1);
  G->iv = NULL; /* iv is this frame's */
  if (r < 0) return -1;
  k_store(k, os, G->flat_idx, k_cast(k, odt, r));
  while (nl-- > 0) k_for_end(k);
  return 0;
}

/* ---- gemm groups -------------------------------------------------------------- */

/* kl_epilogue.build: the members after the gemm, from its product `acc` at
 * flat index idx of the result. */
static kx_id build_epilogue(void *ctx, kernel *k, kx_id acc, kx_id idx) {
  grp *G = ctx;
  G->k = k;
  G->flat_idx = idx;
  G->iv = NULL;
  G->nslots = 0; /* slots are per kernel */
  kx_id r = compute(G, 1, acc);
  return r < 0 ? -1 : k_cast(k, NN_DT_F32, r);
}

/* 1 done, -1 after reporting. */
static int lower_gemm_group(grp *G) {
  ir_value out = ir_node_get(G->g, G->nodes[G->n - 1])->out[0];
  kl_epilogue ep = {.out = kl_value_buf(G->c, out),
                    .name = group_name(G, 1),
                    .build = build_epilogue,
                    .ctx = G};
  return kl_lower_node_ep(G->c, G->nodes[0], &ep) < 0 ? -1 : 1;
}

/* ---- concatenation groups ---------------------------------------------------- */

/* cat(list_construct(x0, x1, ...), dim) followed by the rest of the group,
 * as ONE kernel over the rows of the result (a row: all dims after `dim`):
 *   PARALLEL for r in [0, pre*C):  p = r / C, c = r % C
 *     if c < off1: VECTOR for q in [0, post): v = x0[(p*C0 + c)*post + q]
 *     elif c < off2: ... x1 at c - off1 ...
 *       out[r*post + q] = rest of the group(v)
 * Returns 1 done, 0 when the head is not such a cat (nothing emitted), -1
 * after reporting. */
static int lower_cat_group(grp *G) {
  const ir_node *h = ir_node_get(G->g, G->nodes[0]);
  if (h->op != NN_OP_CAT || h->nin != 2) return 0;
  ir_nodeid ldef = G->g->values.data[h->in[0]].def;
  const ir_node *ln = ldef >= 0 ? ir_node_get(G->g, ldef) : NULL;
  const ir_const *dc;
  if (!ln || ln->op != NN_OP_LIST_CONSTRUCT || ln->nin < 1 || ln->nin > max_external(G) ||
      !ir_value_const(G->g, h->in[1], &dc) || dc->kind != IR_C_INT)
    return 0;
  int64_t dim = dc->i < 0 ? dc->i + G->rank : dc->i;
  if (dim < 0 || dim >= G->rank) return 0;
  int d = (int)dim;
  nn_dtype odt = ir_vtype(G->g, h->out[0])->dtype;
  ir_dim off[MAXSLOTS + 1]; /* start of each input along d */
  off[0] = ir_dim_const(G->g, 0);
  for (int i = 0; i < ln->nin; i++) {
    ir_dim pd[KL_MAXR];
    ir_value v = ln->in[i];
    if (operand_shape(G, v, pd) != G->rank || ir_vtype(G->g, v)->kind != IR_T_TENSOR ||
        ir_vtype(G->g, v)->dtype != odt)
      return 0;
    for (int k = 0; k < G->rank; k++)
      if (k != d && pd[k] != G->od[k]) return 0;
    off[i + 1] = ir_dim_add(G->g, off[i], pd[d]);
  }
  if (off[ln->nin] != G->od[d] || off[ln->nin] == IR_DIM_UNKNOWN) return 0;
  ir_dim pre = kl_numel(G->c, d, G->od), C = G->od[d],
         post = kl_numel(G->c, G->rank - d - 1, G->od + d + 1);
  ir_dim total = kl_numel(G->c, G->rank, G->od);
  if (pre == IR_DIM_UNKNOWN || post == IR_DIM_UNKNOWN || total == IR_DIM_UNKNOWN) return 0;

  ir_value out = ir_node_get(G->g, G->nodes[G->n - 1])->out[0];
  nn_dtype rdt = kl_vdtype(G->c, out);
  kernel *k = G->k = kl_kernel(G->c, nn_sprintf(kl_arena(G->c), "cat_%s", group_name(G, 1)));
  G->nslots = 0;
  int32_t os = k_buf(k, rdt, kl_elems(G->c, total), true, "out");
  kl_bind(G->c, k, os, kl_value_buf(G->c, out));
  int32_t xs[MAXSLOTS];
  for (int i = 0; i < ln->nin; i++) {
    ir_dim ci = ir_dim_sub(G->g, off[i + 1], off[i]);
    xs[i] = k_buf(k, odt, kl_elems(G->c, ir_dim_mul(G->g, ir_dim_mul(G->g, ci, pre), post)), false,
                  nn_sprintf(kl_arena(G->c), "x%d", i));
    kl_bind(G->c, k, xs[i], kl_value_buf(G->c, ln->in[i]));
  }
  if (kl_dis(G->c, total, 0)) return 1;
#define DX(dd) kl_dimx(G->c, k, (dd))
  kx_id r = k_varref(k, k_for_begin(k, k_i64(k, 0), DX(ir_dim_mul(G->g, pre, C)), KS_PARALLEL));
  kx_id p = k_bin(k, KX_DIV, r, DX(C)), c = k_bin(k, KX_MOD, r, DX(C));
  int nif = 0;
  for (int i = 0; i < ln->nin; i++) {
    ir_dim ci = ir_dim_sub(G->g, off[i + 1], off[i]);
    if (kl_dis(G->c, ci, 0)) continue;
    bool last = off[i + 1] == C;
    if (!last) {
      k_if_begin(k, k_bin(k, KX_LT, c, DX(off[i + 1])));
      nif++;
    }
    kx_id q = k_varref(k, k_for_begin(k, k_i64(k, 0), DX(post), KS_VECTOR));
    /* coordinates of the element: dims before d from p, d is c, after from q */
    kx_id iv[KL_MAXR];
    ir_dim inner = ir_dim_const(G->g, 1);
    for (int j = d - 1; j >= 0; j--) {
      iv[j] = k_bin(k, KX_MOD, k_bin(k, KX_DIV, p, DX(inner)), DX(G->od[j]));
      inner = ir_dim_mul(G->g, inner, G->od[j]);
    }
    iv[d] = c;
    inner = ir_dim_const(G->g, 1);
    for (int j = G->rank - 1; j > d; j--) {
      iv[j] = k_bin(k, KX_MOD, k_bin(k, KX_DIV, q, DX(inner)), DX(G->od[j]));
      inner = ir_dim_mul(G->g, inner, G->od[j]);
    }
    G->iv = iv;
    G->flat_idx = k_bin(k, KX_ADD, k_bin(k, KX_MUL, r, DX(post)), q);
    kx_id src =
        k_bin(k, KX_ADD,
              k_bin(k, KX_MUL,
                    k_bin(k, KX_ADD, k_bin(k, KX_MUL, p, DX(ci)), k_bin(k, KX_SUB, c, DX(off[i]))),
                    DX(post)),
              q);
#undef DX
    kx_id v = compute(G, 1, k_load(k, xs[i], src));
    G->iv = NULL; /* iv is this iteration's */
    if (v < 0) return -1;
    k_store(k, os, G->flat_idx, k_cast(k, rdt, v));
    k_for_end(k);
    if (!last) k_else(k);
  }
  while (nif-- > 0) k_if_end(k);
  k_for_end(k);
  return 1;
}

/* ---- entry ------------------------------------------------------------------ */

int kl_lower_group(kl_ctx *c, const ir_nodeid *nodes, int n) {
  NN_ASSERT(n >= 1);
  grp G = {.c = c, .g = kl_graph(c), .nodes = nodes, .n = n};
  ir_fusion f = ir_ops[ir_node_get(G.g, nodes[0])->op].fusion;
  G.gemm = f == IR_FUSE_GEMM;
  G.head = G.gemm || f == IR_FUSE_INJECTIVE;
  if (G.head) {
    if (n >= 2 && check(&G)) {
      int r = G.gemm ? lower_gemm_group(&G) : lower_cat_group(&G);
      if (r != 0) return r < 0 ? -1 : 0;
    }
    /* the head on its own (its result gets storage), the rest fused */
    if (kl_lower_node(c, nodes[0]) < 0) return -1;
    return n > 1 ? kl_lower_group(c, nodes + 1, n - 1) : 0;
  }
  if (n >= 2 && check(&G)) return lower_elementwise(&G);
  for (int i = 0; i < n; i++)
    if (kl_lower_node(c, nodes[i]) < 0) return -1;
  return 0;
}
