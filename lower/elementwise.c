/* elementwise.c — elementwise and broadcast ops, and their scalar form.
 *
 * One loop over the output elements when every tensor operand has the
 * output's shape (or one element), else a loop nest over the output dims
 * (outermost PARALLEL, innermost VECTOR) where each operand is indexed
 * with broadcast strides (0 on broadcast dims). A constant number operand
 * becomes a constant; a non-constant scalar (an IR int/float) is read from
 * its 1-element buffer. The value is computed in the node's result dtype
 * (f16/bf16 in f32); comparisons in the promoted dtype of their operands
 * (torch.result_type's rules). The scalar computation itself (map_scalar)
 * is exported as kl_scalar_op() for fused groups, so a fused and a
 * standalone op compute alike. arange fills the same kind of loop from
 * the element index.
 */
#include "lower.h"

#include <math.h>
#include <string.h>

typedef struct eop {
  bool present;      /* false for a none operand */
  const ir_const *c; /* a constant number, or NULL */
  ir_value v;        /* else the value read from its buffer */
  int rank;
  ir_dim dims[KL_MAXR];
} eop;

typedef struct emap {
  kernel *k;
  int nl;       /* loops opened */
  int32_t out;  /* output slot */
  kx_id oidx;   /* output index */
  nn_dtype odt; /* output dtype */
} emap;

/* Opens an elementwise kernel writing value `out`, with the operands
 * listed in `which` (node operand indices; none operands give -1 in
 * vals). vals[i] is operand which[i]'s element in its own dtype
 * (constants: i64, f64 or bool). */
static int emap_begin(kl_ctx *c, emap *m, ir_value out, int nops, const int *which, kx_id *vals) {
  ir_dim od[KL_MAXR];
  int orank = kl_vshape(c, out, od);
  if (orank < 0) return kl_unsupported(c);
  eop ops[8];
  NN_ASSERT(nops <= 8);
  bool flat = true;
  for (int i = 0; i < nops; i++) {
    eop *e = &ops[i];
    memset(e, 0, sizeof *e);
    int j = which[i];
    if (j >= kl_cur(c)->nin || kl_is_none(c, j)) continue;
    e->present = true;
    const ir_const *cn = kl_cst(c, j);
    if (cn && (cn->kind == IR_C_INT || cn->kind == IR_C_FLOAT || cn->kind == IR_C_BOOL)) {
      e->c = cn;
      continue;
    }
    if (cn) return kl_unsupported(c); /* a string, list or none where a number goes */
    e->v = kl_cur(c)->in[j];
    e->rank = kl_vshape(c, e->v, e->dims);
    if (e->rank < 0) return kl_unsupported(c);
    if (kl_cur(c)->op == NN_OP_PRELU && j == 1 && e->rank == 1 && orank >= 2) {
      /* prelu's weight runs along dim 1, the channels: [C] reads as [C,1,...] */
      for (int r = 1; r < orank - 1; r++) e->dims[r] = kl_d(c, 1);
      e->rank = orank - 1;
    }
    if (!kl_dis(c, kl_numel(c, e->rank, e->dims), 1) &&
        !(e->rank == orank && memcmp(e->dims, od, sizeof *od * (size_t)orank) == 0))
      flat = false;
    if (e->rank > orank) return kl_unsupported(c);
  }
  kernel *k = m->k = kl_kernel(c, ir_ops[kl_cur(c)->op].name);
  m->odt = kl_vdtype(c, out);
  ir_dim on = kl_numel(c, orank, od);
  m->out = kl_wslot(c, k, m->odt, on, kl_value_buf(c, out), "out");
  int32_t slots[8];
  for (int i = 0; i < nops; i++) {
    slots[i] = -1;
    if (ops[i].present && !ops[i].c) {
      char name[8];
      snprintf(name, sizeof name, "%c", 'a' + i);
      slots[i] = kl_vslot(c, k, ops[i].v, nops == 1 ? "x" : name);
    }
  }
  kx_id iv[KL_MAXR];
  ir_dim ost[KL_MAXR];
  if (flat) {
    m->nl = kl_nest(c, k, 1, &on, iv, true, true, 0);
    m->oidx = iv[0];
  } else {
    m->nl = kl_nest(c, k, orank, od, iv, true, true, 0);
    kl_cstrides(c, orank, od, ost);
    m->oidx = kl_lin(c, k, orank, iv, ost);
  }
  for (int i = 0; i < nops; i++) {
    eop *e = &ops[i];
    vals[i] = -1;
    if (!e->present) continue;
    if (e->c) {
      vals[i] = kl_scalar_const(k, e->c);
      continue;
    }
    kx_id idx;
    if (kl_dis(c, kl_numel(c, e->rank, e->dims), 1)) {
      idx = k_i64(k, 0);
    } else if (flat) {
      idx = m->oidx;
    } else {
      ir_dim st[KL_MAXR];
      kl_bstrides(c, e->rank, e->dims, orank, od, st);
      idx = kl_lin(c, k, orank, iv, st);
    }
    vals[i] = k_load(k, slots[i], idx);
  }
  return 0;
}

static void emap_end(emap *m, kx_id val) {
  k_store(m->k, m->out, m->oidx, k_cast(m->k, m->odt, val));
  kl_nest_end(m->k, m->nl);
}

/* torch.result_type over the operands `which` (tensors of rank > 0 win
 * over 0-dim tensors, which win over numbers, unless a lower tier has a
 * higher category: bool < int < float). */
static int category(nn_dtype t) { return t == NN_DT_BOOL ? 0 : nn_dtype_is_float(t) ? 2 : 1; }
static int int_bits(nn_dtype t) {
  return t == NN_DT_I8 || t == NN_DT_U8 ? 8 : t == NN_DT_I16 ? 16 : t == NN_DT_I32 ? 32 : 64;
}
static nn_dtype promote2(nn_dtype a, nn_dtype b) {
  if (a == NN_DT_UNKNOWN) return b;
  if (b == NN_DT_UNKNOWN || a == b) return a;
  int ca = category(a), cb = category(b);
  if (ca != cb) return ca > cb ? a : b;
  if (ca == 2) return a == NN_DT_F64 || b == NN_DT_F64 ? NN_DT_F64 : NN_DT_F32;
  if (a == NN_DT_U8 || b == NN_DT_U8) {
    nn_dtype o = a == NN_DT_U8 ? b : a;
    return o == NN_DT_I8 ? NN_DT_I16 : o;
  }
  return int_bits(a) >= int_bits(b) ? a : b;
}
static nn_dtype result_type(kl_ctx *c, int nops, const int *which) {
  nn_dtype tier[3] = {0, 0, 0};
  for (int i = 0; i < nops; i++) {
    int j = which[i];
    if (j >= kl_cur(c)->nin || kl_is_none(c, j)) continue;
    const ir_type *t = ir_vtype(kl_graph(c), kl_cur(c)->in[j]);
    nn_dtype dt;
    int tr;
    if (t->kind == IR_T_TENSOR)
      dt = t->dtype, tr = t->rank == 0 ? 1 : 2;
    else if (t->kind == IR_T_FLOAT)
      dt = NN_DT_F32, tr = 0;
    else if (t->kind == IR_T_BOOL)
      dt = NN_DT_BOOL, tr = 0;
    else
      dt = NN_DT_I64, tr = 0;
    tier[tr] = promote2(tier[tr], dt);
  }
  nn_dtype r = tier[2];
  for (int t = 1; t >= 0; t--)
    if (r == NN_DT_UNKNOWN)
      r = tier[t];
    else if (tier[t] != NN_DT_UNKNOWN && category(tier[t]) > category(r))
      r = promote2(r, tier[t]);
  return r;
}

/* trunc(x) for a float x */
static kx_id k_trunc(kernel *k, kx_id x) {
  kx_id zero = k_const_f(k, k->exprs.data[x].dtype, 0);
  return k_select(k, k_bin(k, KX_LT, x, zero), k_un(k, KX_CEIL, x), k_un(k, KX_FLOOR, x));
}

/* e^x - 1 for a float x, accurate near 0: with u = e^x rounded,
 * (u - 1) * x / ln u cancels u's rounding error (Kahan); u == 1 gives x,
 * and past x = 50 (u - 1 == u in any float type here) u itself, so that
 * an infinite u does not become inf/inf. */
static kx_id k_expm1(kernel *k, kx_id x) {
  nn_dtype t = k->exprs.data[x].dtype;
  kx_id u = k_un(k, KX_EXP, x), one = k_const_f(k, t, 1);
  kx_id um1 = k_bin(k, KX_SUB, u, one);
  kx_id kahan = k_bin(k, KX_DIV, k_bin(k, KX_MUL, um1, x), k_un(k, KX_LOG, u));
  kx_id mid = k_select(k, k_bin(k, KX_EQ, um1, k_const_f(k, t, -1)), k_const_f(k, t, -1), kahan);
  kx_id small = k_select(k, k_bin(k, KX_EQ, u, one), x, mid);
  return k_select(k, k_bin(k, KX_GT, x, k_const_f(k, t, 50)), u, small);
}

/* The operands lower_map reads as elements: fills which[] (node operand
 * indices, at most 4) and returns their count. */
static int map_operands(const ir_node *n, int *which) {
  ir_op op = n->op;
  int nops;
  for (int i = 0; i < 4; i++) which[i] = i;
  switch (op) {
  case NN_OP_ZEROS:
  case NN_OP_ONES:
  case NN_OP_ZEROS_LIKE:
  case NN_OP_ONES_LIKE: nops = 0; break;
  case NN_OP_FULL:
  case NN_OP_FULL_LIKE: which[0] = 1, nops = 1; break;
  case NN_OP_GELU:
  case NN_OP_TO:
  case NN_OP_TYPE_AS:
  case NN_OP_DROPOUT:
  case NN_OP_CONTIGUOUS:
  case NN_OP_DETACH:
  case NN_OP_CLONE:
  case NN_OP_MUL:
  case NN_OP_DIV:
  case NN_OP_FLOOR_DIVIDE:
  case NN_OP_REMAINDER:
  case NN_OP_POW:
  case NN_OP_MAXIMUM:
  case NN_OP_MINIMUM:
  case NN_OP_EQ:
  case NN_OP_NE:
  case NN_OP_LT:
  case NN_OP_LE:
  case NN_OP_GT:
  case NN_OP_GE:
  case NN_OP_LOGICAL_AND:
  case NN_OP_LOGICAL_OR:
    nops = op == NN_OP_GELU || op == NN_OP_TO || op == NN_OP_TYPE_AS || op == NN_OP_DROPOUT ||
                   op == NN_OP_CONTIGUOUS || op == NN_OP_DETACH || op == NN_OP_CLONE
               ? 1
               : 2;
    break;
  default: nops = n->nin < 4 ? n->nin : 4; break;
  }
  return nops;
}

/* The scalar computation of an elementwise/broadcast node: v[i] is the
 * element of operand which[i] (map_operands) in that operand's own dtype,
 * -1 for a none operand. Returns the result element cast to the node's
 * result dtype, or -1 after reporting an error. */
static kx_id map_scalar(kl_ctx *c, kernel *k, const kx_id *v) {
  const ir_node *n = kl_cur(c);
  ir_op op = n->op;
  int which[4];
  int nops = map_operands(n, which);
  ir_value out = n->out[0];
  nn_dtype rdt = kl_vdtype(c, out);
  nn_dtype cd = kl_compute_dt(rdt);
  const char *mode = NULL;
  if (op == NN_OP_DIV && !kl_is_none(c, 2)) {
    mode = kl_cstr(c, 2);
    if (!mode || (strcmp(mode, "trunc") && strcmp(mode, "floor")))
      return kl_fail(c, "div: rounding_mode must be none, \"trunc\" or \"floor\"");
  }
  const char *approx = op == NN_OP_GELU ? kl_cstr(c, 1) : NULL;
  bool cmp = op >= NN_OP_EQ && op <= NN_OP_GE;
  if (cmp) cd = kl_compute_dt(result_type(c, 2, which));
  if (op == NN_OP_ISNAN || op == NN_OP_ISINF) cd = kl_compute_dt(result_type(c, 1, which));
#define C(x) k_const_f(k, cd, (x))
#define A(i) k_cast(k, cd, v[i])
#define BIN(o, a, b) k_bin(k, o, a, b)
#define UN(o, a) k_un(k, o, a)
  kx_id x = nops > 0 && v[0] >= 0 ? A(0) : -1, r = -1;
  switch (op) {
  case NN_OP_ZEROS:
  case NN_OP_ZEROS_LIKE: r = C(0); break;
  case NN_OP_ONES:
  case NN_OP_ONES_LIKE: r = C(1); break;
  case NN_OP_FULL:
  case NN_OP_FULL_LIKE:
  case NN_OP_TO:
  case NN_OP_TYPE_AS:
  case NN_OP_DROPOUT:
  case NN_OP_CONTIGUOUS:
  case NN_OP_DETACH:
  case NN_OP_CLONE: r = v[0]; break;
  case NN_OP_RELU: r = BIN(KX_MAX, x, C(0)); break;
  case NN_OP_RELU6: r = BIN(KX_MIN, BIN(KX_MAX, x, C(0)), C(6)); break;
  case NN_OP_HARDTANH: r = BIN(KX_MIN, BIN(KX_MAX, x, A(1)), A(2)); break;
  case NN_OP_LEAKY_RELU:
  case NN_OP_PRELU: /* its weight's element for this channel (emap_begin) */
    r = k_select(k, BIN(KX_GT, x, C(0)), x, BIN(KX_MUL, x, A(1)));
    break;
  case NN_OP_CELU: {
    kx_id neg = BIN(KX_MUL, A(1), BIN(KX_SUB, UN(KX_EXP, BIN(KX_DIV, x, A(1))), C(1)));
    r = k_select(k, BIN(KX_GT, x, C(0)), x, neg);
    break;
  }
  case NN_OP_RRELU: {
    bool training = false;
    const ir_const *tc = kl_cst(c, 3);
    training = tc && tc->kind == IR_C_BOOL && tc->i;
    if (training) return kl_fail(c, "rrelu in training mode draws random slopes: not supported");
    kx_id slope = BIN(KX_MUL, BIN(KX_ADD, A(1), A(2)), C(0.5));
    r = k_select(k, BIN(KX_GE, x, C(0)), x, BIN(KX_MUL, x, slope));
    break;
  }
  case NN_OP_HARDSHRINK: /* NaN is outside [-lambd, lambd]: kept */
    r = k_select(k, BIN(KX_AND, BIN(KX_GE, x, UN(KX_NEG, A(1))), BIN(KX_LE, x, A(1))), C(0), x);
    break;
  case NN_OP_SOFTSHRINK: /* NaN fails both tests: 0, as PyTorch gives */
    r = k_select(k, BIN(KX_GT, x, A(1)), BIN(KX_SUB, x, A(1)),
                 k_select(k, BIN(KX_LT, x, UN(KX_NEG, A(1))), BIN(KX_ADD, x, A(1)), C(0)));
    break;
  case NN_OP_LOG_SIGMOID: /* min(x, 0) - log1p(e^-|x|): no overflow either way */
    r = BIN(KX_SUB, BIN(KX_MIN, x, C(0)), UN(KX_LOG1P, UN(KX_EXP, UN(KX_NEG, UN(KX_ABS, x)))));
    break;
  case NN_OP_ELU: {
    kx_id neg = BIN(KX_MUL, BIN(KX_SUB, UN(KX_EXP, BIN(KX_MUL, x, A(3))), C(1)),
                    BIN(KX_MUL, A(1), A(2)));
    r = k_select(k, BIN(KX_GT, x, C(0)), BIN(KX_MUL, x, A(2)), neg);
    break;
  }
  case NN_OP_THRESHOLD: r = k_select(k, BIN(KX_GT, x, A(1)), x, A(2)); break;
  case NN_OP_SIGMOID: r = BIN(KX_DIV, C(1), BIN(KX_ADD, C(1), UN(KX_EXP, UN(KX_NEG, x)))); break;
  case NN_OP_TANH: r = UN(KX_TANH, x); break;
  case NN_OP_GELU:
    if (approx && strcmp(approx, "tanh") == 0) {
      kx_id x3 = BIN(KX_MUL, BIN(KX_MUL, x, x), x);
      kx_id in = BIN(KX_MUL, C(0.7978845608028654), BIN(KX_ADD, x, BIN(KX_MUL, C(0.044715), x3)));
      r = BIN(KX_MUL, BIN(KX_MUL, C(0.5), x), BIN(KX_ADD, C(1), UN(KX_TANH, in)));
    } else if (!approx || strcmp(approx, "none") == 0) {
      r = BIN(KX_MUL, BIN(KX_MUL, C(0.5), x),
              BIN(KX_ADD, C(1), UN(KX_ERF, BIN(KX_MUL, x, C(0.7071067811865476)))));
    } else {
      return kl_fail(c, "gelu: approximate must be \"none\" or \"tanh\"");
    }
    break;
  case NN_OP_SILU: r = BIN(KX_DIV, x, BIN(KX_ADD, C(1), UN(KX_EXP, UN(KX_NEG, x)))); break;
  case NN_OP_MISH: r = BIN(KX_MUL, x, UN(KX_TANH, UN(KX_LOG1P, UN(KX_EXP, x)))); break;
  case NN_OP_HARDSWISH:
  case NN_OP_HARDSIGMOID: {
    kx_id h = BIN(KX_DIV, BIN(KX_MIN, BIN(KX_MAX, BIN(KX_ADD, x, C(3)), C(0)), C(6)), C(6));
    r = op == NN_OP_HARDSWISH ? BIN(KX_MUL, x, h) : h;
    break;
  }
  case NN_OP_SOFTPLUS: {
    kx_id bx = BIN(KX_MUL, x, A(1));
    r = k_select(k, BIN(KX_GT, bx, A(2)), x, BIN(KX_DIV, UN(KX_LOG1P, UN(KX_EXP, bx)), A(1)));
    break;
  }
  case NN_OP_NEG: r = UN(KX_NEG, x); break;
  case NN_OP_EXP: r = UN(KX_EXP, x); break;
  case NN_OP_LOG: r = UN(KX_LOG, x); break;
  case NN_OP_LOG1P: r = UN(KX_LOG1P, x); break;
  case NN_OP_SQRT: r = UN(KX_SQRT, x); break;
  case NN_OP_RSQRT: r = UN(KX_RSQRT, x); break;
  case NN_OP_ABS: r = UN(KX_ABS, x); break;
  case NN_OP_ERF: r = UN(KX_ERF, x); break;
  case NN_OP_RECIPROCAL: r = BIN(KX_DIV, C(1), x); break;
  case NN_OP_FLOOR: r = UN(KX_FLOOR, x); break;
  case NN_OP_CEIL: r = UN(KX_CEIL, x); break;
  case NN_OP_ROUND: r = UN(KX_ROUND, x); break;
  case NN_OP_SIN: r = UN(KX_SIN, x); break;
  case NN_OP_COS: r = UN(KX_COS, x); break;
  case NN_OP_LOGICAL_NOT: r = UN(KX_NOT, v[0]); break;
  case NN_OP_EXPM1: r = k_expm1(k, x); break;
  case NN_OP_EXP2: r = UN(KX_EXP, BIN(KX_MUL, x, C(0.69314718055994531))); break;
  case NN_OP_LOG2: r = BIN(KX_MUL, UN(KX_LOG, x), C(1.4426950408889634)); break;
  case NN_OP_LOG10: r = BIN(KX_MUL, UN(KX_LOG, x), C(0.43429448190325183)); break;
  case NN_OP_TAN: r = BIN(KX_DIV, UN(KX_SIN, x), UN(KX_COS, x)); break;
  case NN_OP_SINH: /* halves of expm1: no cancellation near 0 */
    r = BIN(KX_MUL, BIN(KX_SUB, k_expm1(k, x), k_expm1(k, UN(KX_NEG, x))), C(0.5));
    break;
  case NN_OP_COSH:
    r = BIN(KX_MUL, BIN(KX_ADD, UN(KX_EXP, x), UN(KX_EXP, UN(KX_NEG, x))), C(0.5));
    break;
  case NN_OP_DEG2RAD: r = BIN(KX_MUL, x, C(0.017453292519943295)); break;
  case NN_OP_RAD2DEG: r = BIN(KX_MUL, x, C(57.295779513082323)); break;
  case NN_OP_TRUNC: r = nn_dtype_is_float(cd) ? k_trunc(k, x) : x; break;
  case NN_OP_FRAC: r = nn_dtype_is_float(cd) ? BIN(KX_SUB, x, k_trunc(k, x)) : C(0); break;
  case NN_OP_SIGN: /* NaN compares false both ways: 0, as PyTorch gives */
    if (cd == NN_DT_BOOL)
      r = x;
    else
      r = k_select(k, BIN(KX_GT, x, C(0)), C(1), k_select(k, BIN(KX_LT, x, C(0)), C(-1), C(0)));
    break;
  case NN_OP_ISNAN:
    r = nn_dtype_is_float(cd) ? BIN(KX_NE, x, x) : k_const_f(k, NN_DT_BOOL, 0);
    break;
  case NN_OP_ISINF:
    r = nn_dtype_is_float(cd) ? BIN(KX_EQ, UN(KX_ABS, x), C(INFINITY))
                              : k_const_f(k, NN_DT_BOOL, 0);
    break;
  case NN_OP_BITWISE_NOT: /* two's complement: ~x = -x - 1 */
    r = cd == NN_DT_BOOL ? UN(KX_NOT, v[0]) : BIN(KX_SUB, UN(KX_NEG, x), C(1));
    break;
  case NN_OP_CLAMP:
    r = x;
    if (v[1] >= 0) r = BIN(KX_MAX, r, A(1));
    if (v[2] >= 0) r = BIN(KX_MIN, r, A(2));
    break;
  case NN_OP_ADD:
  case NN_OP_SUB:
  case NN_OP_RSUB: {
    int ia = op == NN_OP_RSUB ? 1 : 0, ib = 1 - ia;
    kx_id b = A(ib);
    double alpha;
    if (!(v[2] >= 0 && kl_cnum(c, 2, &alpha) && alpha == 1)) b = BIN(KX_MUL, b, A(2));
    r = BIN(op == NN_OP_ADD ? KX_ADD : KX_SUB, A(ia), b);
    break;
  }
  case NN_OP_MUL: r = BIN(KX_MUL, x, A(1)); break;
  case NN_OP_DIV:
    if (mode && strcmp(mode, "floor") == 0)
      r = BIN(KX_FLOORDIV, x, A(1));
    else if (mode && nn_dtype_is_float(cd)) /* "trunc" */
      r = k_trunc(k, BIN(KX_DIV, x, A(1)));
    else /* true division, or trunc of ints (which KX_DIV is) */
      r = BIN(KX_DIV, x, A(1));
    break;
  case NN_OP_FLOOR_DIVIDE: r = BIN(KX_FLOORDIV, x, A(1)); break;
  case NN_OP_REMAINDER: r = BIN(KX_MOD, x, A(1)); break;
  case NN_OP_POW: r = BIN(KX_POW, x, A(1)); break;
  case NN_OP_MAXIMUM: r = BIN(KX_MAX, x, A(1)); break;
  case NN_OP_MINIMUM: r = BIN(KX_MIN, x, A(1)); break;
  case NN_OP_EQ: r = BIN(KX_EQ, x, A(1)); break;
  case NN_OP_NE: r = BIN(KX_NE, x, A(1)); break;
  case NN_OP_LT: r = BIN(KX_LT, x, A(1)); break;
  case NN_OP_LE: r = BIN(KX_LE, x, A(1)); break;
  case NN_OP_GT: r = BIN(KX_GT, x, A(1)); break;
  case NN_OP_GE: r = BIN(KX_GE, x, A(1)); break;
  case NN_OP_LOGICAL_AND:
  case NN_OP_LOGICAL_OR:
    r = BIN(op == NN_OP_LOGICAL_AND ? KX_AND : KX_OR, k_cast(k, NN_DT_BOOL, v[0]),
            k_cast(k, NN_DT_BOOL, v[1]));
    break;
  case NN_OP_BITWISE_AND:
  case NN_OP_BITWISE_OR:
  case NN_OP_BITWISE_XOR: /* on bools: the logical ops */
    if (cd != NN_DT_BOOL)
      return kl_fail(c, "%s of %s tensors is not supported yet (only of bool tensors)",
                     ir_ops[op].name, nn_dtype_name(cd));
    r = BIN(op == NN_OP_BITWISE_AND ? KX_AND : op == NN_OP_BITWISE_OR ? KX_OR : KX_NE, A(0), A(1));
    break;
  case NN_OP_LOGICAL_XOR:
    r = BIN(KX_NE, k_cast(k, NN_DT_BOOL, v[0]), k_cast(k, NN_DT_BOOL, v[1]));
    break;
  case NN_OP_FMOD: { /* integers: KX_DIV truncates, so this is C's % */
    kx_id q = BIN(KX_DIV, x, A(1));
    r = BIN(KX_SUB, x, BIN(KX_MUL, nn_dtype_is_float(cd) ? k_trunc(k, q) : q, A(1)));
    break;
  }
  case NN_OP_HYPOT: r = UN(KX_SQRT, BIN(KX_ADD, BIN(KX_MUL, x, x), BIN(KX_MUL, A(1), A(1)))); break;
  case NN_OP_XLOGY: { /* 0 where x == 0, unless y is NaN */
    kx_id zero = BIN(KX_AND, BIN(KX_EQ, x, C(0)), BIN(KX_EQ, A(1), A(1)));
    r = k_select(k, zero, C(0), BIN(KX_MUL, x, UN(KX_LOG, A(1))));
    break;
  }
  case NN_OP_WHERE: r = k_select(k, k_cast(k, NN_DT_BOOL, v[0]), A(1), A(2)); break;
  case NN_OP_MASKED_FILL: r = k_select(k, k_cast(k, NN_DT_BOOL, v[1]), A(2), x); break;
  default: NN_UNREACHABLE();
  }
#undef C
#undef A
#undef BIN
#undef UN
  return k_cast(k, rdt, r);
}

static int lower_map(kl_ctx *c) {
  int which[4];
  int nops = map_operands(kl_cur(c), which);
  emap m;
  kx_id v[4] = {-1, -1, -1, -1};
  if (emap_begin(c, &m, kl_cur(c)->out[0], nops, which, v) < 0) return -1;
  kx_id r = map_scalar(c, m.k, v);
  if (r < 0) return -1;
  emap_end(&m, r);
  return 1;
}

/* arange(start, end, step, dtype?): out[i] = start + i*step, computed in
 * i64 for integer results and f64 for floats. */
static int lower_arange(kl_ctx *c) {
  double start, step;
  if (!kl_cnum(c, 0, &start) || !kl_cnum(c, 2, &step))
    return kl_fail(c, "the bounds of arange must be compile-time constants");
  emap m;
  kx_id v[1];
  if (emap_begin(c, &m, kl_cur(c)->out[0], 0, NULL, v) < 0) return -1;
  kernel *k = m.k;
  kx_id r;
  if (nn_dtype_is_float(m.odt))
    r = k_bin(k, KX_ADD, k_const_f(k, NN_DT_F64, start),
              k_bin(k, KX_MUL, k_cast(k, NN_DT_F64, m.oidx), k_const_f(k, NN_DT_F64, step)));
  else
    r = k_bin(k, KX_ADD, k_i64(k, (int64_t)start),
              k_bin(k, KX_MUL, m.oidx, k_i64(k, (int64_t)step)));
  emap_end(&m, r);
  return 1;
}

/* ---- the scalar form, shared with fused groups (fuse.c) ------------------ */

int kl_scalar_operands(kl_ctx *c, ir_nodeid id, int *which) {
  ir_graph *g = kl_graph(c);
  const ir_node *n = ir_node_get(g, id);
  /* the ops whose own lowering is this file's map have a scalar form;
   * index math (tril, arange) and rows still being written do not */
  if (kl_lowering(n->op) != kl_lower_map) return -1;
  ir_fusion f = ir_ops[n->op].fusion;
  if ((f != IR_FUSE_ELEMENTWISE && f != IR_FUSE_BROADCAST) || n->nout != 1 ||
      ir_vtype(g, n->out[0])->kind != IR_T_TENSOR)
    return -1;
  return map_operands(n, which);
}

kx_id kl_scalar_const(kernel *k, const ir_const *c) {
  switch (c->kind) {
  case IR_C_FLOAT: return k_const_f(k, NN_DT_F64, c->f);
  case IR_C_BOOL: return k_const_i(k, NN_DT_BOOL, c->i);
  case IR_C_INT: return k_i64(k, c->i);
  default: return -1;
  }
}

kx_id kl_scalar_op(kl_ctx *c, kernel *k, ir_nodeid id, const kx_id *vals) {
  ir_nodeid was = kl_set_node(c, id); /* a member of a fused group */
  kx_id r = map_scalar(c, k, vals);
  kl_set_node(c, was);
  return r;
}

int kl_lower_map(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_map(c));
}

int kl_lower_arange(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_arange(c));
}
