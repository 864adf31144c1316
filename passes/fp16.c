/* fp16.c — reduced precision (--precision fp16|bf16): values and weights in
 * 16 bits, with the numerically delicate ops kept in f32.
 *
 * Every f32 tensor computed by an op that is not on the deny list below
 * becomes an f16 (or bf16) tensor; the backend computes each element in f32
 * registers and rounds it once when it is stored. f32 weights that feed
 * such ops are converted to 16 bits here (round to nearest even), so the
 * compiled model carries half the weight bytes. Where a 16-bit value flows
 * into a deny-listed op a `to` cast back to f32 is inserted (and a cast to
 * 16 bits where an f32 value flows into a 16-bit op). Graph inputs and
 * outputs keep their declared dtypes: the casts sit at the entry and the
 * exit, so the compiled model's interface does not change. Constants,
 * integer and bool tensors, and ops that create tensors from scalars or
 * convert dtypes themselves (`to`) are left alone.
 *
 * The deny list (stays in f32) is one table, f32_ops[], plus the rule that
 * every REDUCTION-class op stays f32 (softmax, log_softmax, layer_norm,
 * group_norm, sum, mean, norm, cumsum, ...). Gemm-like ops are 16-bit: the
 * CPU GEMM reads 16-bit operands and accumulates in f32 (lower/gemm.c). A
 * weight read by 16-bit ops is converted whoever else reads it (f32
 * readers get a cast); one read only by f32 ops stays f32.
 *
 * A no-op unless the precision is F16 or BF16. Run it after shapes (it
 * needs every value's dtype) and before fuse (so fused groups see the final
 * dtypes).
 */
#include "passes.h"

#include <string.h>

/* ---- the deny list ------------------------------------------------------ */

/* THE deny list: ops computed in f32 whatever the precision, besides every
 * REDUCTION-class op (softmax, log_softmax, layer_norm, group_norm, sum,
 * mean, norm, cumsum, ...), which stays f32 by the rule in stays_f32().
 * Weights read only by these ops stay f32. */
static const ir_op f32_ops[] = {NN_OP_EXP, NN_OP_LOG, NN_OP_LOG1P, NN_OP_POW,
                                /* a recurrence carries its state through every step */
                                NN_OP_RNN_SCAN};

/* Whether op must see f32 operands and produce f32 results. */
static bool stays_f32(ir_op op) {
  if (ir_ops[op].fusion == IR_FUSE_REDUCTION) return true;
  for (int i = 0; i < NN_ARRAY_LEN(f32_ops); i++)
    if (f32_ops[i] == op) return true;
  return false;
}

/* Ops whose result dtype is not a function of their operands' (they state
 * it or create the tensor): never retyped, operands left alone. */
static bool keeps_types(ir_op op) {
  return op == NN_OP_TO || (ir_ops[op].flags & IR_CREATES) || ir_ops[op].fusion == IR_FUSE_META;
}

/* ---- the pass ------------------------------------------------------------ */

typedef struct fctx {
  ir_graph *g;
  nn_dtype lowp;                     /* F16 or BF16 */
  ir_value *to_lowp;                 /* per value: its 16-bit cast, or IR_NOVAL */
  ir_value *to_f32;                  /* per 16-bit value: its f32 cast, or IR_NOVAL */
  int nvals;                         /* entries in the two maps */
  ir_value dtype_const[NN_DT_COUNT]; /* the ScalarType constant per target
                                        dtype, made once, or IR_NOVAL */
} fctx;

static bool is_f32_tensor(const ir_graph *g, ir_value v) {
  const ir_type *t = ir_vtype(g, v);
  return t->kind == IR_T_TENSOR && t->dtype == NN_DT_F32;
}

static bool is_lowp_tensor(const fctx *f, ir_value v) {
  const ir_type *t = ir_vtype(f->g, v);
  return t->kind == IR_T_TENSOR && t->dtype == f->lowp;
}

/* Whether v is an f32 tensor or a list of f32 tensors (chunk, split). */
static bool is_f32_like(const ir_graph *g, ir_value v) {
  const ir_type *t = ir_vtype(g, v);
  if (t->kind == IR_T_LIST && t->nelems >= 1) t = t->elems[0];
  return t->kind == IR_T_TENSOR && t->dtype == NN_DT_F32;
}

/* Gives v (a tensor, or a list of tensors) the element type dt. */
static void retype(ir_graph *g, ir_value v, nn_dtype dt) {
  const ir_type *t = ir_vtype(g, v);
  if (t->kind == IR_T_LIST) {
    const ir_type *e = t->elems[0];
    ir_set_type(g, v, ir_type_list(g, ir_type_tensor(g, dt, e->rank, e->dims)));
    return;
  }
  ir_set_type(g, v, ir_type_tensor(g, dt, t->rank, t->dims));
}

/* Inserts `to(v, dt)` before node `before` (at the end when before < 0);
 * returns its result. */
static ir_value insert_cast(fctx *f, ir_nodeid before, ir_value v, nn_dtype dt) {
  ir_graph *g = f->g;
  if (f->dtype_const[dt] == IR_NOVAL) { /* program order: it dominates later casts */
    ir_nodeid kc = before < 0
                       ? ir_append(g, NN_OP_CONSTANT, 0, NULL, 1, (nn_loc){0})
                       : ir_insert_before(g, before, NN_OP_CONSTANT, 0, NULL, 1, (nn_loc){0});
    ir_node *c = ir_node_get(g, kc);
    c->c = (ir_const){.kind = IR_C_INT, .i = nn_dtype_to_scalar_type(dt)};
    c->scope = "";
    ir_set_type(g, c->out[0], ir_type_scalar(g, IR_T_INT));
    f->dtype_const[dt] = c->out[0];
  }
  ir_value in[2] = {v, f->dtype_const[dt]};
  ir_nodeid kt = before < 0 ? ir_append(g, NN_OP_TO, 2, in, 1, (nn_loc){0})
                            : ir_insert_before(g, before, NN_OP_TO, 2, in, 1, (nn_loc){0});
  ir_node *t = ir_node_get(g, kt);
  ir_nodeid def = g->values.data[v].def;
  t->scope = def >= 0 ? ir_node_get(g, def)->scope : "";
  t->loc = def >= 0 ? ir_node_get(g, def)->loc : (nn_loc){0};
  ir_value r = t->out[0];
  const ir_type *vt = ir_vtype(g, v);
  ir_set_type(g, r, ir_type_tensor(g, dt, vt->rank, vt->dims));
  return r;
}

/* Converts the f32 weight behind node wn to 16 bits in arena memory
 * (contiguous, row-major); data may be NULL (IR read back from text). */
static void convert_weight(fctx *f, ir_node *wn) {
  ir_graph *g = f->g;
  ir_weight *w = &g->weights.data[wn->weight];
  NN_ASSERT(w->dtype == NN_DT_F32);
  int64_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= w->sizes[i];
  uint16_t *out = NULL;
  if (w->data && n > 0) {
    out = nn_alloc(g->arena, (size_t)n * 2);
    const float *src = w->data;
    int64_t *idx = nn_alloc(g->arena, sizeof(int64_t) * (size_t)(w->rank + 1));
    memset(idx, 0, sizeof(int64_t) * (size_t)(w->rank + 1));
    for (int64_t e = 0; e < n; e++) {
      int64_t off = w->offset;
      for (int d = 0; d < w->rank; d++) {
        int64_t st = w->strides ? w->strides[d] : 1;
        if (!w->strides) /* contiguous: stride = product of the dims after d */
          for (int k = d + 1; k < w->rank; k++) st *= w->sizes[k];
        off += idx[d] * st;
      }
      /* outside the storage (a malformed archive): 0, as the backend does */
      float x = off >= 0 && (uint64_t)(off + 1) * 4 <= w->nbytes ? src[off] : 0.0f;
      out[e] = f->lowp == NN_DT_F16 ? nn_f32_to_f16(x) : nn_f32_to_bf16(x);
      for (int d = w->rank - 1; d >= 0; d--) { /* next index, row-major */
        if (++idx[d] < w->sizes[d]) break;
        idx[d] = 0;
      }
    }
  }
  w->dtype = f->lowp;
  w->strides = NULL;
  w->offset = 0;
  w->data = out; /* NULL when there was no data (or no element) */
  w->nbytes = out ? (size_t)n * 2 : 0;
  retype(g, wn->out[0], f->lowp);
}

/* The 16-bit version of f32 operand v of node `at`: a weight is converted
 * in place (f32 readers of it get a cast), anything else gets one cast. */
static ir_value lowp_of(fctx *f, ir_nodeid at, ir_value v) {
  ir_graph *g = f->g;
  ir_nodeid def = g->values.data[v].def;
  if (def >= 0 && ir_node_get(g, def)->op == NN_OP_WEIGHT) {
    convert_weight(f, ir_node_get(g, def));
    return v;
  }
  if (f->to_lowp[v] == IR_NOVAL) f->to_lowp[v] = insert_cast(f, at, v, f->lowp);
  return f->to_lowp[v];
}

static ir_value f32_of(fctx *f, ir_nodeid at, ir_value v) {
  if (f->to_f32[v] == IR_NOVAL) f->to_f32[v] = insert_cast(f, at, v, NN_DT_F32);
  return f->to_f32[v];
}

int pass_fp16(ir_graph *g, nn_dtype precision, nn_diag *d) {
  (void)d;
  if (precision != NN_DT_F16 && precision != NN_DT_BF16) return 0;
  fctx f = {.g = g, .lowp = precision};
  for (int i = 0; i < NN_DT_COUNT; i++) f.dtype_const[i] = IR_NOVAL;
  /* Casts add values; the maps cover the values that exist now (casts are
   * never cast again). */
  f.nvals = g->values.len;
  f.to_lowp = nn_alloc(g->arena, sizeof(ir_value) * (size_t)(f.nvals + 1));
  f.to_f32 = nn_alloc(g->arena, sizeof(ir_value) * (size_t)(f.nvals + 1));
  for (int i = 0; i < f.nvals; i++) f.to_lowp[i] = f.to_f32[i] = IR_NOVAL;
  int norder = g->order.len;
  ir_nodeid *order = nn_alloc(g->arena, sizeof(ir_nodeid) * (size_t)(norder + 1));
  memcpy(order, g->order.data, sizeof(ir_nodeid) * (size_t)norder);

  for (int oi = 0; oi < norder; oi++) {
    ir_nodeid id = order[oi];
    ir_node *n = ir_node_get(g, id);
    if (n->flags & IR_NF_DEAD) continue;
    ir_op op = n->op;
    if (op == NN_OP_LIST_UNPACK) { /* the elements of a 16-bit list */
      const ir_type *t = ir_vtype(g, n->in[0]);
      if (t->kind == IR_T_LIST && t->nelems >= 1 && t->elems[0]->kind == IR_T_TENSOR &&
          t->elems[0]->dtype == f.lowp)
        for (int r = 0; r < n->nout; r++)
          if (is_f32_tensor(g, n->out[r])) retype(g, n->out[r], f.lowp);
      continue;
    }
    bool lists = op == NN_OP_LIST_CONSTRUCT;
    if (keeps_types(op) && !lists) continue;
    if (stays_f32(op)) continue; /* widened below */
    /* A 16-bit op: only when it computes an f32 tensor. */
    bool any = false;
    if (lists) { /* a list of f32 tensors (for cat, stack): 16-bit */
      n = ir_node_get(g, id);
      const ir_type *t = ir_vtype(g, n->out[0]);
      any = t->kind == IR_T_LIST && t->nelems >= 1 && t->elems[0]->kind == IR_T_TENSOR &&
            t->elems[0]->dtype == NN_DT_F32;
      if (!any) continue;
    } else {
      /* An op reading non-float tensors too (index, mask) is fine; one
       * whose results are not all f32 tensors (or lists of them) is left
       * alone. */
      any = n->nout > 0;
      for (int r = 0; r < n->nout; r++)
        if (!is_f32_like(g, n->out[r])) any = false;
      if (!any) continue;
    }
    for (int i = 0; i < ir_node_get(g, id)->nin; i++) {
      ir_value v = ir_node_get(g, id)->in[i];
      if (v < f.nvals && is_f32_tensor(g, v)) {
        ir_value c = lowp_of(&f, id, v);
        ir_node_get(g, id)->in[i] = c;
      }
    }
    n = ir_node_get(g, id);
    for (int r = 0; r < n->nout; r++) retype(g, n->out[r], f.lowp);
  }

  /* Deny-listed ops read f32: widen their 16-bit operands (after the loop
   * above, which may convert a weight after an f32 op read it). */
  for (int oi = 0; oi < norder; oi++) {
    ir_nodeid id = order[oi];
    if ((ir_node_get(g, id)->flags & IR_NF_DEAD) || !stays_f32(ir_node_get(g, id)->op)) continue;
    for (int i = 0; i < ir_node_get(g, id)->nin; i++) {
      ir_value v = ir_node_get(g, id)->in[i];
      if (v < f.nvals && is_lowp_tensor(&f, v)) {
        ir_value c = f32_of(&f, id, v);
        ir_node_get(g, id)->in[i] = c;
      }
    }
  }

  /* Outputs keep their f32 dtype: cast back at the exit. */
  for (int i = 0; i < g->outputs.len; i++) {
    ir_value v = g->outputs.data[i];
    if (!is_lowp_tensor(&f, v)) continue;
    ir_value r = insert_cast(&f, -1, v, NN_DT_F32);
    g->outputs.data[i] = r;
  }
  return 0;
}
