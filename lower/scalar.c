/* scalar.c — numbers computed at run time.
 *
 * Shape arithmetic (size, numel, int(), scalar + - * / comparisons) folds
 * to constants at compile time when the shapes are static. With symbolic
 * dims a number may depend on a dim's value; when some kernel reads it,
 * it is computed by a one-element kernel into its 1-element buffer (i64
 * for ints and bools, f64 for floats). A number that depends on tensor
 * data instead is not supported yet.
 */
#include "lower.h"

/* The storage dtype of a scalar or 0-dim tensor value. */
static nn_dtype scalar_dtype(const ir_type *t) {
  switch (t->kind) {
  case IR_T_TENSOR: return t->dtype;
  case IR_T_FLOAT: return NN_DT_F64;
  case IR_T_INT:
  case IR_T_BOOL: return NN_DT_I64;
  default: return NN_DT_UNKNOWN;
  }
}

/* Operand j of n as an element of kernel k: a constant, or a load of its
 * one-element buffer. */
static kx_id scalar_operand(kl_ctx *c, kernel *k, const ir_node *n, int j) {
  const ir_const *cv;
  if (ir_value_const(kl_graph(c), n->in[j], &cv)) {
    if (cv->kind == IR_C_FLOAT) return k_const_f(k, NN_DT_F64, cv->f);
    if (cv->kind == IR_C_INT || cv->kind == IR_C_BOOL) return k_i64(k, cv->i);
    return -1;
  }
  const ir_type *t = ir_vtype(kl_graph(c), n->in[j]);
  nn_dtype dt = scalar_dtype(t);
  if (dt == NN_DT_UNKNOWN || (t->kind == IR_T_TENSOR && t->rank != 0)) return -1;
  int32_t slot = k_buf(k, dt, 1, false, "x");
  kl_bind(c, k, slot, kl_value_buf(c, n->in[j]));
  return k_load(k, slot, k_i64(k, 0));
}

/* Lowers a number-valued META node whose value depends on symbolic dims:
 * out[0] = its value. Returns 0, or 1 when the op has no such form. */
static int lower_meta_scalar(kl_ctx *c, ir_nodeid id) {
  const ir_node *n = ir_node_get(kl_graph(c), id);
  if (n->nout != 1) return 1;
  const ir_type *rt = ir_vtype(kl_graph(c), n->out[0]);
  nn_dtype odt = scalar_dtype(rt);
  if (odt == NN_DT_UNKNOWN || (rt->kind == IR_T_TENSOR && rt->rank != 0)) return 1;
  kernel *k = kl_kernel(c, ir_ops[n->op].name);
  kx_id v = -1;
  switch (n->op) {
  case NN_OP_SIZE:
  case NN_OP_NUMEL: {
    const ir_type *xt = ir_vtype(kl_graph(c), n->in[0]);
    if (xt->kind != IR_T_TENSOR || xt->rank < 0) return 1;
    ir_dim d = ir_dim_const(kl_graph(c), 1);
    if (n->op == NN_OP_NUMEL) {
      for (int i = 0; i < xt->rank; i++) d = ir_dim_mul(kl_graph(c), d, xt->dims[i]);
    } else {
      const ir_const *cv;
      if (!ir_value_const(kl_graph(c), n->in[1], &cv) || cv->kind != IR_C_INT) return 1;
      int64_t i = cv->i < 0 ? cv->i + xt->rank : cv->i;
      if (i < 0 || i >= xt->rank) return 1;
      d = xt->dims[i];
    }
    if (d == IR_DIM_UNKNOWN) return 1;
    v = kl_dimx(c, k, d);
    break;
  }
  case NN_OP_NUM_TO_TENSOR:
  case NN_OP_TO_INT:
  case NN_OP_TO_FLOAT:
  case NN_OP_TO_BOOL:
  case NN_OP_SCALAR_IMPLICIT:
  case NN_OP_SCALAR_NEG:
    v = scalar_operand(c, k, n, 0);
    if (v >= 0 && n->op == NN_OP_TO_BOOL)
      v = k_bin(k, KX_NE, v,
                k->exprs.data[v].dtype == NN_DT_F64 ? k_const_f(k, NN_DT_F64, 0) : k_i64(k, 0));
    if (v >= 0 && n->op == NN_OP_SCALAR_NEG) v = k_un(k, KX_NEG, v);
    break;
  case NN_OP_SCALAR_ADD:
  case NN_OP_SCALAR_SUB:
  case NN_OP_SCALAR_MUL:
  case NN_OP_SCALAR_DIV:
  case NN_OP_SCALAR_FLOORDIV:
  case NN_OP_SCALAR_MOD:
  case NN_OP_SCALAR_EQ:
  case NN_OP_SCALAR_NE:
  case NN_OP_SCALAR_LT:
  case NN_OP_SCALAR_LE:
  case NN_OP_SCALAR_GT:
  case NN_OP_SCALAR_GE: {
    kx_id a = scalar_operand(c, k, n, 0), b = scalar_operand(c, k, n, 1);
    if (a < 0 || b < 0) return 1;
    /* ints stay ints unless a float is involved (or it is true division) */
    bool fl = k->exprs.data[a].dtype == NN_DT_F64 || k->exprs.data[b].dtype == NN_DT_F64 ||
              n->op == NN_OP_SCALAR_DIV;
    nn_dtype cdt = fl ? NN_DT_F64 : NN_DT_I64;
    a = k_cast(k, cdt, a);
    b = k_cast(k, cdt, b);
    static const struct {
      ir_op op;
      kx_op kx;
    } map[] = {{NN_OP_SCALAR_ADD, KX_ADD},
               {NN_OP_SCALAR_SUB, KX_SUB},
               {NN_OP_SCALAR_MUL, KX_MUL},
               {NN_OP_SCALAR_DIV, KX_DIV},
               {NN_OP_SCALAR_FLOORDIV, KX_FLOORDIV},
               {NN_OP_SCALAR_MOD, KX_MOD},
               {NN_OP_SCALAR_EQ, KX_EQ},
               {NN_OP_SCALAR_NE, KX_NE},
               {NN_OP_SCALAR_LT, KX_LT},
               {NN_OP_SCALAR_LE, KX_LE},
               {NN_OP_SCALAR_GT, KX_GT},
               {NN_OP_SCALAR_GE, KX_GE}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
      if (map[i].op == n->op) v = k_bin(k, map[i].kx, a, b);
    break;
  }
  default: return 1;
  }
  if (v < 0) return 1;
  int32_t o = k_buf(k, odt, 1, true, "out");
  k_store(k, o, k_i64(k, 0), k_cast(k, odt, v));
  kl_bind(c, k, o, kl_value_buf(c, n->out[0]));
  return 0;
}

int kl_lower_scalar(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep);
  const ir_node *n = kl_cur(c);
  if (n->nout == 1 && !kl_needed(c, n->out[0])) return 0;
  int r = lower_meta_scalar(c, id);
  if (r <= 0) return r;
  return kl_fail(c,
                 "'%s' computes a number from tensor data at run time; that is not supported yet",
                 ir_ops[n->op].name);
}
