/* kernel_ops.c — IR nodes → kernels for every op that is not gemm-like.
 *
 * kl_lower_elementwise() lowers one node into one or more kernels over
 * contiguous row-major buffers, by family (below). Sizes, strides and trip
 * counts are ir_dim values (constants for static shapes, expressions over
 * the inputs' named dims otherwise) that enter a kernel through kl_dimx, so
 * one kernel serves every value of a symbolic dim; the few decisions that
 * need a number report a symbolic dim they meet as not supported yet.
 *
 *  - elementwise / broadcast (emap_*): one loop over the output elements
 *    when every tensor operand has the output's shape, else a loop nest
 *    over the output dims (outermost PARALLEL, innermost VECTOR) where each
 *    operand is indexed with broadcast strides (0 on broadcast dims). A
 *    constant number operand becomes a constant; a non-constant scalar
 *    (an IR int/float) is read from its 1-element buffer. The value is
 *    computed in the node's result dtype (f16/bf16 in f32); comparisons in
 *    the promoted dtype of their operands (torch.result_type's rules). The
 *    scalar computation itself (map_scalar) is exported as kl_scalar_op()
 *    for fused groups, so a fused and a standalone op compute alike.
 *  - injective (inj_*): a loop nest over the output, each element loaded
 *    from an index computed from the output coordinates (permute, expand,
 *    repeat, slice, select, flip, roll, pad, pixel_shuffle, upsample,
 *    tril/triu, embedding, index, gather, index_select, one_hot). Padding
 *    and data-dependent indices never read out of bounds: indices are
 *    clamped and the value chosen with SELECT. cat/stack write one kernel
 *    per input into its region; chunk/split/unbind are written per piece
 *    through kl_lower_piece() where the list is unpacked.
 *  - reductions (red_*): loops over the kept dims (outermost PARALLEL)
 *    around loops over the reduced dims (KS_REDUCE) that carry a LET
 *    accumulator; softmax/log_softmax/cumsum and the normalizations use one
 *    kernel with a parallel loop over rows and several inner passes.
 *  - pooling: never a padded copy. Fixed windows without an indices output
 *    run as passes over each output row whose innermost loop is a
 *    KS_VECTOR loop over output columns with no checks (the range of
 *    columns each window column can reach is computed up front); the
 *    indices form and adaptive windows check bounds (KS_IF) per element;
 *    adaptive windows use PyTorch's start = floor(i*in/out),
 *    end = ceil((i+1)*in/out).
 *
 * Scalars (IR int/bool, float values) live in 1-element i64/f64 buffers,
 * as the schedule stores them.
 */
#include "kernel.h"

#include <math.h>
#include <string.h>

#define MAXR 16 /* ranks supported (kl_shape's limit) */

typedef struct L {
  kl_ctx *c;        /* lowering context */
  ir_graph *g;      /* the graph */
  ir_nodeid id;     /* the node */
  const ir_node *n; /* the node (the graph does not change while lowering) */
  nn_arena *a;      /* the program's arena */
} L;

/* ---- operands and errors ------------------------------------------------ */

static int fail(L *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(L *l, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  nn_error(kl_diag(l->c), l->n->loc, "%s", msg);
  return -1;
}

/* Returns -1 itself: the analyzer does not follow variadic fail(). */
static int unsupported(L *l) {
  fail(l, "code generation for '%s' with these operands is not supported yet",
       ir_ops[l->n->op].name);
  return -1;
}

static const ir_type *T(L *l, ir_value v) { return ir_vtype(l->g, v); }

static bool is_none(L *l, int j) { return j < l->n->nin && T(l, l->n->in[j])->kind == IR_T_NONE; }

static const ir_const *cst(L *l, int j) {
  const ir_const *c;
  if (j >= l->n->nin || !ir_value_const(l->g, l->n->in[j], &c)) return NULL;
  return c;
}

/* Operand j as a constant int (ints and bools). */
static bool cint(L *l, int j, int64_t *out) {
  const ir_const *c = cst(l, j);
  if (!c || (c->kind != IR_C_INT && c->kind != IR_C_BOOL)) return false;
  *out = c->i;
  return true;
}

/* Operand j as a constant number. */
static bool cnum(L *l, int j, double *out) {
  const ir_const *c = cst(l, j);
  if (!c) return false;
  if (c->kind == IR_C_INT || c->kind == IR_C_BOOL)
    *out = (double)c->i;
  else if (c->kind == IR_C_FLOAT)
    *out = c->f;
  else
    return false;
  return true;
}

/* Operand j as a constant int list (a single int counts as [i]). */
static bool clist(L *l, int j, const int64_t **v, int *n) {
  const ir_const *c = cst(l, j);
  if (!c) return false;
  if (c->kind == IR_C_INTLIST || c->kind == IR_C_BOOLLIST) {
    *v = c->ints;
    *n = c->n;
    return true;
  }
  if (c->kind == IR_C_INT) {
    int64_t *one = nn_alloc(l->a, sizeof *one);
    *one = c->i;
    *v = one;
    *n = 1;
    return true;
  }
  return false;
}

static const char *cstr(L *l, int j) {
  const ir_const *c = cst(l, j);
  return c && c->kind == IR_C_STR ? c->s : NULL;
}

/* The element dtype of a value's storage. */
static nn_dtype vdtype(L *l, ir_value v) {
  const ir_type *t = T(l, v);
  switch (t->kind) {
  case IR_T_TENSOR: return t->dtype;
  case IR_T_INT:
  case IR_T_BOOL: return NN_DT_I64;
  case IR_T_FLOAT: return NN_DT_F64;
  default: return NN_DT_UNKNOWN;
  }
}

/* Shape of a value as dims (scalars: rank 0); -1 after reporting. */
static int vshape(L *l, ir_value v, ir_dim *dims) {
  const ir_type *t = T(l, v);
  if (t->kind == IR_T_INT || t->kind == IR_T_FLOAT || t->kind == IR_T_BOOL) return 0;
  if (t->kind != IR_T_TENSOR) return -1;
  if (t->rank > MAXR) {
    fail(l, "tensors of rank %d are not supported", t->rank);
    return -1; /* (not `return fail()`: see unsupported()) */
  }
  return kl_shape_d(l->c, v, dims);
}

/* ---- dim arithmetic ------------------------------------------------------------ *
 * Sizes, strides and trip counts are ir_dim values: constants when the
 * shapes are static (they fold, so the numbers are those int64 arithmetic
 * would give), expressions over the inputs' named dims otherwise. They
 * become kernel expressions only where they enter a kernel (X). */

static ir_dim dn(L *l, int64_t v) { return kl_d(l->c, v); }
static ir_dim dadd(L *l, ir_dim a, ir_dim b) { return ir_dim_add(l->g, a, b); }
static ir_dim dmul(L *l, ir_dim a, ir_dim b) { return ir_dim_mul(l->g, a, b); }
static ir_dim daddi(L *l, ir_dim a, int64_t b) { return dadd(l, a, dn(l, b)); }

static bool dconst(L *l, ir_dim d, int64_t *v) {
  return d != IR_DIM_UNKNOWN && kl_dim_const(l->c, d, v);
}

/* d is the number v. */
static bool dis(L *l, ir_dim d, int64_t v) {
  int64_t x;
  return dconst(l, d, &x) && x == v;
}

/* d as an I64 expression of kernel k. An unknown dim (only from int64
 * overflow of a size: the schedule reports the tensor as too large) is
 * reported and reads as 0. */
static kx_id X(L *l, kernel *k, ir_dim d) {
  if (d == IR_DIM_UNKNOWN) {
    fail(l, "a size of this op does not fit in 64 bits");
    return k_i64(k, 0);
  }
  return kl_dimx(l->c, k, d);
}

/* d as a number of dtype dt (a constant when d is one). */
static kx_id XT(L *l, kernel *k, ir_dim d, nn_dtype dt) {
  int64_t v;
  if (dconst(l, d, &v)) return k_const_i(k, dt, v);
  return k_cast(k, dt, X(l, k, d));
}

/* An element count for k_buf: the number, or -1 when symbolic. */
static int64_t belems(L *l, ir_dim d) {
  int64_t v;
  return dconst(l, d, &v) ? v : -1;
}

/* Reports that the op needs dim d to be a number. */
static int symbolic(L *l, ir_dim d) {
  nn_buf b = {0};
  ir_dim_print(&b, l->g, d);
  fail(l,
       "code generation for '%s' with symbolic dim %s is not supported "
       "yet",
       ir_ops[l->n->op].name, b.data ? b.data : "?");
  nn_buf_free(&b);
  return -1;
}

static ir_dim numel(L *l, int rank, const ir_dim *dims) {
  ir_dim n = dn(l, 1);
  for (int i = 0; i < rank; i++) n = dmul(l, n, dims[i]);
  return n;
}

static void cstrides(L *l, int rank, const ir_dim *dims, ir_dim *st) {
  ir_dim s = dn(l, 1);
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s = dmul(l, s, dims[i]);
  }
}

static int wrapdim(int64_t d, int rank) {
  if (d < 0) d += rank;
  return d < 0 || d >= (rank ? rank : 1) ? -1 : (int)d;
}

/* A kernel slot for value v (its whole storage), bound to its buffer. */
static int32_t vslot(L *l, kernel *k, ir_value v, const char *name) {
  ir_dim dims[MAXR];
  int r = vshape(l, v, dims);
  int32_t s = k_buf(k, vdtype(l, v), r < 0 ? 1 : belems(l, numel(l, r, dims)), false, name);
  kl_bind(l->c, k, s, kl_value_buf(l->c, v));
  return s;
}

/* A written kernel slot of `elems` elements bound to program buffer b. */
static int32_t wslot(L *l, kernel *k, nn_dtype dt, ir_dim elems, be_bufid b, const char *name) {
  int32_t s = k_buf(k, dt, belems(l, elems), true, name);
  kl_bind(l->c, k, s, b);
  return s;
}

/* Compute dtype for float math in dtype dt. */
static nn_dtype compute_dt(nn_dtype dt) {
  return dt == NN_DT_F16 || dt == NN_DT_BF16 ? NN_DT_F32 : dt;
}

/* The lowest value of dt (-inf for floats), or the highest. */
static kx_id k_extreme(kernel *k, nn_dtype dt, bool highest) {
  if (nn_dtype_is_float(dt)) return k_const_f(k, dt, highest ? INFINITY : -INFINITY);
  int64_t v;
  switch (dt) {
  case NN_DT_I32: v = highest ? INT32_MAX : INT32_MIN; break;
  case NN_DT_I16: v = highest ? INT16_MAX : INT16_MIN; break;
  case NN_DT_I8: v = highest ? INT8_MAX : INT8_MIN; break;
  case NN_DT_U8: v = highest ? 255 : 0; break;
  case NN_DT_BOOL: v = highest ? 1 : 0; break;
  default: v = highest ? INT64_MAX : INT64_MIN; break;
  }
  return k_const_i(k, dt, v);
}

/* ---- loops ----------------------------------------------------------------- */

/* Opens loops over dims[0..rank) and fills iv with each dim's coordinate
 * (the constant 0 for dims known to be 1, which get no loop; a symbolic dim
 * always gets one). The first loop is PARALLEL; the last gets VECTOR when
 * `vector`, `extra` flags go on all. Returns the number of loops opened
 * (for nest_end). */
static int nest(L *l, kernel *k, int rank, const ir_dim *dims, kx_id *iv, bool parallel,
                bool vector, unsigned extra) {
  int last = -1, first = -1, nl = 0;
  for (int i = 0; i < rank; i++)
    if (!dis(l, dims[i], 1)) {
      last = i;
      if (first < 0) first = i;
    }
  for (int i = 0; i < rank; i++) {
    if (dis(l, dims[i], 1)) {
      iv[i] = k_i64(k, 0);
      continue;
    }
    unsigned f = extra;
    if (i == first && parallel) f |= KS_PARALLEL;
    if (i == last && vector) f |= KS_VECTOR;
    iv[i] = k_varref(k, k_for_begin(k, k_i64(k, 0), X(l, k, dims[i]), f));
    nl++;
  }
  return nl;
}

static void nest_end(kernel *k, int nl) {
  while (nl-- > 0) k_for_end(k);
}

/* sum iv[i] * st[i] */
static kx_id lin(L *l, kernel *k, int rank, const kx_id *iv, const ir_dim *st) {
  kx_id e = k_i64(k, 0);
  for (int i = 0; i < rank; i++) e = k_bin(k, KX_ADD, e, k_bin(k, KX_MUL, iv[i], X(l, k, st[i])));
  return e;
}

/* Strides of an input of shape (r, d) broadcast to an output of rank R:
 * right-aligned, 0 where the input has no dim or a dim known to be 1 that
 * the output does not have (shape inference resolved broadcasting, so a
 * symbolic input dim equals the output's). */
static void bstrides(L *l, int r, const ir_dim *d, int R, const ir_dim *od, ir_dim *st) {
  ir_dim cs[MAXR];
  cstrides(l, r, d, cs);
  for (int i = 0; i < R; i++) {
    int j = i - (R - r);
    st[i] = j < 0 || (dis(l, d[j], 1) && !dis(l, od[i], 1)) ? dn(l, 0) : cs[j];
  }
}

/* e clamped into [lo, hi]. */
static kx_id clampd(L *l, kernel *k, kx_id e, int64_t lo, ir_dim hi) {
  kx_id lx = k_i64(k, lo);
  return k_bin(k, KX_MIN, k_bin(k, KX_MAX, e, lx), X(l, k, hi));
}

/* ---- elementwise and broadcast ----------------------------------------------- */

typedef struct eop {
  bool present;      /* false for a none operand */
  const ir_const *c; /* a constant number, or NULL */
  ir_value v;        /* else the value read from its buffer */
  int rank;
  ir_dim dims[MAXR];
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
static int emap_begin(L *l, emap *m, ir_value out, int nops, const int *which, kx_id *vals) {
  ir_dim od[MAXR];
  int orank = vshape(l, out, od);
  if (orank < 0) return unsupported(l);
  eop ops[8];
  NN_ASSERT(nops <= 8);
  bool flat = true;
  for (int i = 0; i < nops; i++) {
    eop *e = &ops[i];
    memset(e, 0, sizeof *e);
    int j = which[i];
    if (j >= l->n->nin || is_none(l, j)) continue;
    e->present = true;
    const ir_const *c = cst(l, j);
    if (c && (c->kind == IR_C_INT || c->kind == IR_C_FLOAT || c->kind == IR_C_BOOL)) {
      e->c = c;
      continue;
    }
    if (c) return unsupported(l); /* a string, list or none where a number goes */
    e->v = l->n->in[j];
    e->rank = vshape(l, e->v, e->dims);
    if (e->rank < 0) return unsupported(l);
    if (!dis(l, numel(l, e->rank, e->dims), 1) &&
        !(e->rank == orank && memcmp(e->dims, od, sizeof *od * (size_t)orank) == 0))
      flat = false;
    if (e->rank > orank) return unsupported(l);
  }
  kernel *k = m->k = kl_kernel(l->c, ir_ops[l->n->op].name);
  m->odt = vdtype(l, out);
  ir_dim on = numel(l, orank, od);
  m->out = wslot(l, k, m->odt, on, kl_value_buf(l->c, out), "out");
  int32_t slots[8];
  for (int i = 0; i < nops; i++) {
    slots[i] = -1;
    if (ops[i].present && !ops[i].c) {
      char name[8];
      snprintf(name, sizeof name, "%c", 'a' + i);
      slots[i] = vslot(l, k, ops[i].v, nops == 1 ? "x" : name);
    }
  }
  kx_id iv[MAXR];
  ir_dim ost[MAXR];
  if (flat) {
    m->nl = nest(l, k, 1, &on, iv, true, true, 0);
    m->oidx = iv[0];
  } else {
    m->nl = nest(l, k, orank, od, iv, true, true, 0);
    cstrides(l, orank, od, ost);
    m->oidx = lin(l, k, orank, iv, ost);
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
    if (dis(l, numel(l, e->rank, e->dims), 1)) {
      idx = k_i64(k, 0);
    } else if (flat) {
      idx = m->oidx;
    } else {
      ir_dim st[MAXR];
      bstrides(l, e->rank, e->dims, orank, od, st);
      idx = lin(l, k, orank, iv, st);
    }
    vals[i] = k_load(k, slots[i], idx);
  }
  return 0;
}

static void emap_end(emap *m, kx_id val) {
  k_store(m->k, m->out, m->oidx, k_cast(m->k, m->odt, val));
  nest_end(m->k, m->nl);
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
static nn_dtype result_type(L *l, int nops, const int *which) {
  nn_dtype tier[3] = {0, 0, 0};
  for (int i = 0; i < nops; i++) {
    int j = which[i];
    if (j >= l->n->nin || is_none(l, j)) continue;
    const ir_type *t = T(l, l->n->in[j]);
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
static kx_id map_scalar(L *l, kernel *k, const kx_id *v) {
  const ir_node *n = l->n;
  ir_op op = n->op;
  int which[4];
  int nops = map_operands(n, which);
  ir_value out = n->out[0];
  nn_dtype rdt = vdtype(l, out);
  nn_dtype cd = compute_dt(rdt);
  const char *mode = NULL;
  if (op == NN_OP_DIV && !is_none(l, 2)) {
    mode = cstr(l, 2);
    if (!mode || (strcmp(mode, "trunc") && strcmp(mode, "floor")))
      return fail(l, "div: rounding_mode must be none, \"trunc\" or \"floor\"");
  }
  const char *approx = op == NN_OP_GELU ? cstr(l, 1) : NULL;
  bool cmp = op >= NN_OP_EQ && op <= NN_OP_GE;
  if (cmp) cd = compute_dt(result_type(l, 2, which));
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
  case NN_OP_LEAKY_RELU: r = k_select(k, BIN(KX_GT, x, C(0)), x, BIN(KX_MUL, x, A(1))); break;
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
      return fail(l, "gelu: approximate must be \"none\" or \"tanh\"");
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
    if (!(v[2] >= 0 && cnum(l, 2, &alpha) && alpha == 1)) b = BIN(KX_MUL, b, A(2));
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

static int lower_map(L *l) {
  int which[4];
  int nops = map_operands(l->n, which);
  emap m;
  kx_id v[4] = {-1, -1, -1, -1};
  if (emap_begin(l, &m, l->n->out[0], nops, which, v) < 0) return -1;
  kx_id r = map_scalar(l, m.k, v);
  if (r < 0) return -1;
  emap_end(&m, r);
  return 1;
}

/* arange(start, end, step, dtype?): out[i] = start + i*step, computed in
 * i64 for integer results and f64 for floats. */
static int lower_arange(L *l) {
  double start, step;
  if (!cnum(l, 0, &start) || !cnum(l, 2, &step))
    return fail(l, "the bounds of arange must be compile-time constants");
  emap m;
  kx_id v[1];
  if (emap_begin(l, &m, l->n->out[0], 0, NULL, v) < 0) return -1;
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

/* ---- injective ops ------------------------------------------------------------- */

/* The element of x at the coordinates xc (rank xr). */
static kx_id at(L *l, kernel *k, int32_t slot, int xr, const ir_dim *xd, const kx_id *xc) {
  ir_dim st[MAXR];
  cstrides(l, xr, xd, st);
  return k_load(k, slot, lin(l, k, xr, xc, st));
}

/* A start offset along a dim of size `size` as an expression: v, counted
 * from the end when negative; with `clamp`, clamped into [0, size] like
 * slice's start (a start past a symbolic end needs no clamp: the slice is
 * then empty, and so is its loop). */
static kx_id start_at(L *l, kernel *k, int64_t v, ir_dim size, bool clamp) {
  int64_t n;
  if (dconst(l, size, &n)) {
    if (v < 0) v += n;
    if (clamp) v = v < 0 ? 0 : v > n ? n : v;
    return k_i64(k, v);
  }
  if (v >= 0) return k_i64(k, v);
  kx_id s = X(l, k, daddi(l, size, v));
  return clamp ? k_bin(k, KX_MAX, s, k_i64(k, 0)) : s;
}

/* Kernels with one output loop nest where each element is computed from
 * the output coordinates. */
static int lower_inj(L *l) {
  const ir_node *n = l->n;
  ir_op op = n->op;
  ir_value out = n->out[0];
  ir_dim od[MAXR], xd[MAXR];
  int orank = vshape(l, out, od);
  int xr = vshape(l, n->in[0], xd);
  if (orank < 0 || xr < 0) return unsupported(l);
  nn_dtype odt = vdtype(l, out);
  ir_dim xst[MAXR];
  cstrides(l, xr, xd, xst);
  /* operand checks before any kernel is created */
  int64_t i0 = 0, i1 = 0, i2 = 0;
  const int64_t *lv = NULL, *lv2 = NULL;
  int ln = 0, ln2 = 0;
  switch (op) {
  case NN_OP_PERMUTE:
  case NN_OP_FLIP:
  case NN_OP_REPEAT:
  case NN_OP_PAD:
    if (!clist(l, 1, &lv, &ln)) return unsupported(l);
    break;
  case NN_OP_ROLL:
    if (!clist(l, 1, &lv, &ln) || !clist(l, 2, &lv2, &ln2)) return unsupported(l);
    break;
  case NN_OP_TRANSPOSE:
    if (!cint(l, 1, &i0) || !cint(l, 2, &i1)) return unsupported(l);
    break;
  case NN_OP_SELECT:
  case NN_OP_TRIL:
  case NN_OP_TRIU:
  case NN_OP_PIXEL_SHUFFLE:
  case NN_OP_GATHER:
  case NN_OP_INDEX_SELECT:
    if (!cint(l, 1, &i0) || (op == NN_OP_SELECT && !cint(l, 2, &i1))) return unsupported(l);
    break;
  case NN_OP_NARROW:
    if (!cint(l, 1, &i0) || !cint(l, 2, &i1) || !cint(l, 3, &i2)) return unsupported(l);
    break;
  case NN_OP_SLICE:
    if (!cint(l, 1, &i0) || !cint(l, 4, &i2) || i2 <= 0) return unsupported(l);
    i1 = 0;
    if (!is_none(l, 2) && !cint(l, 2, &i1)) return unsupported(l);
    break;
  default: break;
  }
  kernel *k = kl_kernel(l->c, ir_ops[op].name);
  int32_t os = wslot(l, k, odt, numel(l, orank, od), kl_value_buf(l->c, out), "out");
  int32_t xs = vslot(l, k, n->in[0], op == NN_OP_EMBEDDING ? "w" : "x");
  nn_dtype xdt = vdtype(l, n->in[0]);
  kx_id iv[MAXR] = {0}, xc[MAXR] = {0};
  int nl = nest(l, k, orank, od, iv, true, true, 0);
  ir_dim ost[MAXR];
  cstrides(l, orank, od, ost);
  kx_id val = -1;
  switch (op) {
  case NN_OP_PERMUTE:
  case NN_OP_TRANSPOSE:
  case NN_OP_T: {
    int p[MAXR];
    for (int i = 0; i < xr; i++) p[i] = i;
    if (op == NN_OP_PERMUTE) {
      for (int i = 0; i < xr && i < ln; i++) p[i] = wrapdim(lv[i], xr);
    } else if (xr >= 2) {
      int a = op == NN_OP_T ? 0 : wrapdim(i0, xr);
      int b = op == NN_OP_T ? 1 : wrapdim(i1, xr);
      if (a < 0 || b < 0) return unsupported(l);
      p[a] = b, p[b] = a;
    }
    for (int i = 0; i < xr; i++)
      if (p[i] < 0) return unsupported(l);
    kx_id e = k_i64(k, 0);
    for (int j = 0; j < orank && j < xr; j++)
      e = k_bin(k, KX_ADD, e, k_bin(k, KX_MUL, iv[j], X(l, k, xst[p[j]])));
    val = k_load(k, xs, e);
    break;
  }
  case NN_OP_EXPAND:
  case NN_OP_EXPAND_AS: {
    ir_dim st[MAXR];
    bstrides(l, xr, xd, orank, od, st);
    val = k_load(k, xs, lin(l, k, orank, iv, st));
    break;
  }
  case NN_OP_REPEAT:
    for (int i = 0; i < xr; i++) {
      int j = i + (orank - xr);
      xc[i] = k_bin(k, KX_MOD, iv[j], X(l, k, xd[i]));
    }
    val = at(l, k, xs, xr, xd, xc);
    break;
  case NN_OP_SLICE:
  case NN_OP_NARROW:
  case NN_OP_SELECT: {
    int d = wrapdim(i0, xr);
    if (d < 0) return unsupported(l);
    int64_t step = op == NN_OP_SLICE ? i2 : 1;
    kx_id start = start_at(l, k, i1, xd[d], op == NN_OP_SLICE);
    for (int i = 0, j = 0; i < xr; i++) {
      if (i == d && op == NN_OP_SELECT) {
        xc[i] = start;
        continue;
      }
      xc[i] = i == d ? k_bin(k, KX_ADD, start, k_bin(k, KX_MUL, iv[j], k_i64(k, step))) : iv[j];
      j++;
    }
    val = at(l, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_FLIP:
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0; j < ln; j++) {
      int d = wrapdim(lv[j], xr);
      if (d < 0) return unsupported(l);
      xc[d] = k_bin(k, KX_SUB, X(l, k, daddi(l, xd[d], -1)), iv[d]);
    }
    val = at(l, k, xs, xr, xd, xc);
    break;
  case NN_OP_ROLL:
    if (ln2 == 0) { /* flattened */
      ir_dim tot = numel(l, xr, xd);
      kx_id f = lin(l, k, orank, iv, ost);
      int64_t sh = ln ? lv[0] : 0;
      val = k_load(k, xs,
                   k_bin(k, KX_MOD, k_bin(k, KX_SUB, f, k_i64(k, sh)),
                         X(l, k, dis(l, tot, 0) ? dn(l, 1) : tot)));
      break;
    }
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0; j < ln2 && j < ln; j++) {
      int d = wrapdim(lv2[j], xr);
      if (d < 0) return unsupported(l);
      xc[d] = k_bin(k, KX_MOD, k_bin(k, KX_SUB, xc[d], k_i64(k, lv[j])), X(l, k, xd[d]));
    }
    val = at(l, k, xs, xr, xd, xc);
    break;
  case NN_OP_PAD: {
    kx_id ok = k_const_i(k, NN_DT_BOOL, 1);
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0; j < ln / 2; j++) {
      int d = xr - 1 - j;
      if (d < 0) return unsupported(l);
      kx_id c = k_bin(k, KX_SUB, iv[d], k_i64(k, lv[2 * j]));
      ok = k_bin(k, KX_AND, ok,
                 k_bin(k, KX_AND, k_bin(k, KX_GE, c, k_i64(k, 0)),
                       k_bin(k, KX_LT, c, X(l, k, xd[d]))));
      xc[d] = clampd(l, k, c, 0, dis(l, xd[d], 0) ? dn(l, 0) : daddi(l, xd[d], -1));
    }
    double fill = 0;
    if (!is_none(l, 2) && !cnum(l, 2, &fill)) return unsupported(l);
    if (dis(l, numel(l, xr, xd), 0))
      val = k_const_f(k, xdt, fill);
    else
      val = k_select(k, ok, at(l, k, xs, xr, xd, xc), k_const_f(k, xdt, fill));
    break;
  }
  case NN_OP_PIXEL_SHUFFLE: {
    int64_t f = i0;
    if (xr < 3 || f <= 0) return unsupported(l);
    for (int i = 0; i < xr - 3; i++) xc[i] = iv[i];
    kx_id oh = iv[xr - 2], ow = iv[xr - 1], rf = k_i64(k, f);
    xc[xr - 3] = k_bin(k, KX_ADD, k_bin(k, KX_MUL, iv[xr - 3], k_i64(k, f * f)),
                       k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_bin(k, KX_MOD, oh, rf), rf),
                             k_bin(k, KX_MOD, ow, rf)));
    xc[xr - 2] = k_bin(k, KX_FLOORDIV, oh, rf);
    xc[xr - 1] = k_bin(k, KX_FLOORDIV, ow, rf);
    val = at(l, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_UPSAMPLE_NEAREST2D: {
    if (xr < 2) return unsupported(l);
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0; j < 2; j++) {
      int d = xr - 2 + j;
      /* PyTorch: src = min(floor(dst * scale), in - 1) in float, scale =
       * 1/scale_factor when given, else in/out */
      double sc;
      int64_t in, on;
      kx_id scale;
      if (cnum(l, 2 + j, &sc) && sc > 0)
        scale = k_const_f(k, NN_DT_F32, (float)(1.0 / sc));
      else if (dconst(l, xd[d], &in) && dconst(l, od[d], &on))
        scale = k_const_f(k, NN_DT_F32, (float)in / (float)(on ? on : 1));
      else
        scale = k_bin(k, KX_DIV, k_cast(k, NN_DT_F32, X(l, k, xd[d])),
                      k_cast(k, NN_DT_F32, X(l, k, od[d])));
      kx_id fpos = k_bin(k, KX_MUL, k_cast(k, NN_DT_F32, iv[d]), scale);
      xc[d] = k_cast(k, NN_DT_I64, k_un(k, KX_FLOOR, fpos));
      xc[d] = k_bin(k, KX_MIN, xc[d], X(l, k, daddi(l, xd[d], -1)));
    }
    val = at(l, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_TRIL:
  case NN_OP_TRIU: {
    if (xr < 2) return unsupported(l);
    kx_id diff = k_bin(k, KX_SUB, iv[xr - 1], iv[xr - 2]);
    kx_id keep = k_bin(k, op == NN_OP_TRIL ? KX_LE : KX_GE, diff, k_i64(k, i0));
    val = k_select(k, keep, k_load(k, xs, lin(l, k, orank, iv, ost)), k_const_i(k, xdt, 0));
    break;
  }
  case NN_OP_EMBEDDING: {
    ir_dim idims[MAXR];
    int ir_ = vshape(l, n->in[1], idims);
    if (xr != 2 || ir_ < 0) return unsupported(l);
    int32_t is = vslot(l, k, n->in[1], "idx");
    ir_dim ist[MAXR];
    cstrides(l, ir_, idims, ist);
    kx_id row = k_cast(k, NN_DT_I64, k_load(k, is, lin(l, k, ir_, iv, ist)));
    row = clampd(l, k, row, 0, daddi(l, xd[0], -1));
    val = k_load(k, xs, k_bin(k, KX_ADD, k_bin(k, KX_MUL, row, X(l, k, xd[1])), iv[orank - 1]));
    break;
  }
  case NN_OP_GATHER:
  case NN_OP_INDEX_SELECT: {
    int d = wrapdim(i0, xr);
    ir_dim idims[MAXR];
    int ir_ = vshape(l, n->in[2], idims);
    if (d < 0 || ir_ < 0 || xr == 0) return unsupported(l);
    int32_t is = vslot(l, k, n->in[2], "idx");
    kx_id ie;
    if (op == NN_OP_GATHER) {
      ir_dim ist[MAXR];
      cstrides(l, ir_, idims, ist);
      ie = lin(l, k, ir_, iv, ist);
    } else {
      ie = iv[d];
    }
    kx_id c = k_cast(k, NN_DT_I64, k_load(k, is, ie));
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    xc[d] = clampd(l, k, c, 0, daddi(l, xd[d], -1));
    val = at(l, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_ONE_HOT: {
    ir_dim ist[MAXR];
    cstrides(l, xr, xd, ist);
    kx_id c = k_cast(k, NN_DT_I64, k_load(k, xs, lin(l, k, xr, iv, ist)));
    val = k_cast(k, NN_DT_I64, k_bin(k, KX_EQ, c, iv[orank - 1]));
    break;
  }
  default: NN_UNREACHABLE();
  }
  k_store(k, os, lin(l, k, orank, iv, ost), k_cast(k, odt, val));
  nest_end(k, nl);
  return 1;
}

/* index(x, indices): advanced indexing with integer index tensors (none
 * entries keep their dim); the broadcast index shape replaces the indexed
 * dims where they are adjacent, else it leads (shapes.c's rule). Negative
 * indices count from the end; indices are clamped into range. */
static int lower_index(L *l) {
  const ir_node *n = l->n;
  ir_nodeid def = l->g->values.data[n->in[1]].def;
  const ir_node *ln = def >= 0 ? ir_node_get(l->g, def) : NULL;
  if (!ln || ln->op != NN_OP_LIST_CONSTRUCT) return unsupported(l);
  ir_dim xd[MAXR], od[MAXR];
  int xr = vshape(l, n->in[0], xd), orank = vshape(l, n->out[0], od);
  if (xr < 0 || orank < 0 || ln->nin > xr) return unsupported(l);
  int ni = ln->nin, first = -1, last = -1, br = 0;
  bool adjacent = true;
  ir_dim bd[MAXR];
  for (int j = 0; j < ni; j++) {
    const ir_type *t = T(l, ln->in[j]);
    if (t->kind == IR_T_NONE) continue;
    if (t->kind != IR_T_TENSOR || t->dtype == NN_DT_BOOL || t->dtype == NN_DT_U8)
      return unsupported(l);
    if (first >= 0 && last != j - 1) adjacent = false;
    if (first < 0) first = j;
    last = j;
    ir_dim d[MAXR];
    int r = vshape(l, ln->in[j], d);
    if (r < 0) return unsupported(l);
    /* broadcast (bd, br) with (d, r) */
    int rr = r > br ? r : br;
    ir_dim nd[MAXR] = {0};
    for (int i = 0; i < rr; i++) {
      int a = i - (rr - br), b = i - (rr - r);
      ir_dim x = a >= 0 ? bd[a] : dn(l, 1), y = b >= 0 ? d[b] : dn(l, 1);
      nd[i] = dis(l, x, 1) ? y : x;
    }
    memcpy(bd, nd, sizeof nd);
    br = rr;
  }
  if (adjacent && (first < 0 || first >= MAXR)) return unsupported(l);
  kernel *k = kl_kernel(l->c, "index");
  nn_dtype odt = vdtype(l, n->out[0]);
  int32_t os = wslot(l, k, odt, numel(l, orank, od), kl_value_buf(l->c, n->out[0]), "out");
  int32_t xs = vslot(l, k, n->in[0], "x");
  kx_id iv[MAXR] = {0}, xc[MAXR] = {0};
  int nl = nest(l, k, orank, od, iv, true, true, 0);
  /* coordinates of the broadcast index shape within the output */
  int bpos = adjacent ? first : 0;
  const kx_id *bc = iv + bpos;
  int r = 0; /* output dim cursor for the non-indexed dims */
  if (!adjacent) r = br;
  for (int i = 0; i < xr; i++) {
    bool indexed = i < ni && T(l, ln->in[i])->kind != IR_T_NONE;
    if (adjacent && i == first) r += br;
    if (!indexed) {
      xc[i] = iv[r++];
      continue;
    }
    ir_dim d[MAXR], st[MAXR];
    int ir_ = vshape(l, ln->in[i], d);
    bstrides(l, ir_, d, br, bd, st);
    char name[16];
    snprintf(name, sizeof name, "i%d", i);
    int32_t is = vslot(l, k, ln->in[i], name);
    kx_id c = k_cast(k, NN_DT_I64, k_load(k, is, lin(l, k, br, bc, st)));
    c = k_select(k, k_bin(k, KX_LT, c, k_i64(k, 0)), k_bin(k, KX_ADD, c, X(l, k, xd[i])), c);
    xc[i] = clampd(l, k, c, 0, daddi(l, xd[i], -1));
  }
  ir_dim ost[MAXR];
  cstrides(l, orank, od, ost);
  k_store(k, os, lin(l, k, orank, iv, ost), k_cast(k, odt, at(l, k, xs, xr, xd, xc)));
  nest_end(k, nl);
  return 1;
}

/* scatter(x, dim, index, src | value): a copy of x, then (sequentially, so
 * later writes win) out[.. index[i] ..] = src[i] over index's elements. */
static int lower_scatter(L *l) {
  const ir_node *n = l->n;
  ir_dim xd[MAXR], id[MAXR], sd[MAXR];
  int64_t dim;
  int xr = vshape(l, n->in[0], xd), ir_ = vshape(l, n->in[2], id);
  if (xr < 0 || ir_ != xr || !cint(l, 1, &dim) || wrapdim(dim, xr) < 0) return unsupported(l);
  int d = wrapdim(dim, xr);
  const ir_const *vc = cst(l, 3);
  int sr = vc ? 0 : vshape(l, n->in[3], sd);
  if (!vc && sr != xr && sr != 0) return unsupported(l);
  nn_dtype odt = vdtype(l, n->out[0]);
  ir_dim tot = numel(l, xr, xd);
  be_bufid ob = kl_value_buf(l->c, n->out[0]);
  /* copy */
  kernel *k = kl_kernel(l->c, "scatter_copy");
  int32_t os = wslot(l, k, odt, tot, ob, "out");
  int32_t xs = vslot(l, k, n->in[0], "x");
  kx_id iv[MAXR];
  int nl = nest(l, k, 1, &tot, iv, true, true, 0);
  k_store(k, os, iv[0], k_cast(k, odt, k_load(k, xs, iv[0])));
  nest_end(k, nl);
  /* scatter */
  k = kl_kernel(l->c, "scatter");
  os = wslot(l, k, odt, tot, ob, "out");
  int32_t is = vslot(l, k, n->in[2], "idx");
  int32_t ss = vc ? -1 : vslot(l, k, n->in[3], "src");
  nl = nest(l, k, ir_, id, iv, false, false, 0);
  ir_dim ist[MAXR];
  cstrides(l, ir_, id, ist);
  kx_id xc[MAXR];
  for (int i = 0; i < xr; i++) xc[i] = iv[i];
  xc[d] = clampd(l, k, k_cast(k, NN_DT_I64, k_load(k, is, lin(l, k, ir_, iv, ist))), 0,
                 daddi(l, xd[d], -1));
  kx_id val;
  if (vc)
    val = vc->kind == IR_C_FLOAT ? k_const_f(k, odt, vc->f) : k_const_i(k, odt, vc->i);
  else if (sr == 0)
    val = k_load(k, ss, k_i64(k, 0));
  else {
    ir_dim sst[MAXR];
    cstrides(l, sr, sd, sst);
    val = k_load(k, ss, lin(l, k, sr, iv, sst));
  }
  ir_dim xst[MAXR];
  cstrides(l, xr, xd, xst);
  k_store(k, os, lin(l, k, xr, xc, xst), k_cast(k, odt, val));
  nest_end(k, nl);
  return 1;
}

/* ---- lists: cat, stack, pieces -------------------------------------------------- */

/* A tensor that is a piece of a list: the value `v` itself (dim < 0), or
 * the part of v starting at `start` along `dim` (removed when `removed`).
 * Shape inference splits only dims that are numbers, so `start` is one;
 * the other dims may be symbolic. */
typedef struct piece {
  ir_value v; /* the whole tensor */
  int vrank;
  ir_dim vdims[MAXR];
  int dim;       /* split dim, -1 for the whole tensor */
  int64_t start; /* offset along dim */
  bool removed;  /* unbind: dim dropped */
  int rank;      /* the piece's shape */
  ir_dim dims[MAXR];
} piece;

/* Piece p of chunk/split/unbind node sn; -1 after reporting. */
static int split_piece(L *l, ir_nodeid sn, int p, piece *out) {
  const ir_node *n = ir_node_get(l->g, sn);
  memset(out, 0, sizeof *out);
  out->v = n->in[0];
  out->vrank = vshape(l, out->v, out->vdims);
  if (out->vrank <= 0) return -1;
  int64_t dim;
  int di = n->op == NN_OP_UNBIND ? 1 : 2;
  const ir_const *dc;
  if (!ir_value_const(l->g, n->in[di], &dc) || dc->kind != IR_C_INT) return -1;
  dim = dc->i;
  int d = wrapdim(dim, out->vrank);
  if (d < 0) return -1;
  int64_t size, start = 0, len = 0;
  if (!dconst(l, out->vdims[d], &size)) return -1;
  if (n->op == NN_OP_UNBIND) {
    if (p < 0 || p >= size) return -1;
    start = p, len = 1;
    out->removed = true;
  } else {
    const ir_const *sc;
    if (!ir_value_const(l->g, n->in[1], &sc)) return -1;
    if (sc->kind == IR_C_INTLIST) { /* split with explicit sizes */
      if (p < 0 || p >= sc->n) return -1;
      for (int j = 0; j < p; j++) start += sc->ints[j];
      len = sc->ints[p];
    } else if (sc->kind == IR_C_INT && sc->i > 0) {
      int64_t piece_len = n->op == NN_OP_CHUNK ? (size > 0 ? (size - 1) / sc->i + 1 : 0) : sc->i;
      int64_t count = piece_len ? (size - 1) / piece_len + 1 : 1;
      if (p < 0 || p >= count) return -1;
      start = piece_len * p;
      len = size - start < piece_len ? size - start : piece_len;
    } else {
      return -1;
    }
    if (start < 0 || len < 0 || start + len > size) return -1;
  }
  out->dim = d;
  out->start = start;
  out->rank = 0;
  for (int i = 0; i < out->vrank; i++) {
    if (i == d && out->removed) continue;
    out->dims[out->rank++] = i == d ? dn(l, len) : out->vdims[i];
  }
  return 0;
}

/* One kernel copying piece pc into buffer dst (dtype ddt, delems
 * elements): element c of the piece goes to dst[base + sum c[i]*ost[i]]. */
static void copy_piece(L *l, const piece *pc, be_bufid dst, nn_dtype ddt, ir_dim delems,
                       ir_dim base, const ir_dim *ost, const char *what) {
  if (dis(l, numel(l, pc->rank, pc->dims), 0)) return;
  kernel *k = kl_kernel(l->c, what);
  int32_t os = wslot(l, k, ddt, delems, dst, "out");
  int32_t xs = vslot(l, k, pc->v, "x");
  kx_id iv[MAXR], xc[MAXR];
  int nl = nest(l, k, pc->rank, pc->dims, iv, true, true, 0);
  for (int i = 0, j = 0; i < pc->vrank; i++) {
    if (i == pc->dim && pc->removed) {
      xc[i] = k_i64(k, pc->start);
      continue;
    }
    xc[i] = i == pc->dim ? k_bin(k, KX_ADD, iv[j], k_i64(k, pc->start)) : iv[j];
    j++;
  }
  kx_id oidx = k_bin(k, KX_ADD, X(l, k, base), lin(l, k, pc->rank, iv, ost));
  k_store(k, os, oidx, k_cast(k, ddt, at(l, k, xs, pc->vrank, pc->vdims, xc)));
  nest_end(k, nl);
}

static int lower_cat(L *l) {
  const ir_node *n = l->n;
  ir_value list = n->in[0];
  ir_nodeid def = l->g->values.data[list].def;
  const ir_node *ln = def >= 0 ? ir_node_get(l->g, def) : NULL;
  if (!ln) return unsupported(l);
  int count;
  bool from_split = ln->op == NN_OP_CHUNK || ln->op == NN_OP_SPLIT || ln->op == NN_OP_UNBIND;
  if (ln->op == NN_OP_LIST_CONSTRUCT) {
    count = ln->nin;
  } else if (from_split) {
    count = 0;
    piece tmp;
    while (count < (1 << 20) && split_piece(l, def, count, &tmp) == 0) count++;
  } else {
    return unsupported(l);
  }
  ir_dim od[MAXR] = {0}, ost[MAXR] = {0};
  int64_t dim;
  int orank = vshape(l, n->out[0], od);
  if (orank < 0 || !cint(l, 1, &dim)) return unsupported(l);
  bool stack = n->op == NN_OP_STACK;
  int d = wrapdim(dim, orank);
  if (d < 0) return unsupported(l);
  cstrides(l, orank, od, ost);
  be_bufid dst = kl_value_buf(l->c, n->out[0]);
  nn_dtype odt = vdtype(l, n->out[0]);
  ir_dim on = numel(l, orank, od);
  ir_dim off = dn(l, 0);
  for (int j = 0; j < count; j++) {
    piece pc;
    if (from_split) {
      if (split_piece(l, def, j, &pc) < 0) return unsupported(l);
    } else {
      memset(&pc, 0, sizeof pc);
      pc.v = ln->in[j];
      pc.dim = -1;
      pc.vrank = vshape(l, pc.v, pc.vdims);
      if (pc.vrank < 0) return unsupported(l);
      pc.rank = pc.vrank;
      memcpy(pc.dims, pc.vdims, sizeof pc.dims);
    }
    ir_dim pst[MAXR];
    if (stack) {
      if (pc.rank != orank - 1) return unsupported(l);
      for (int i = 0; i < pc.rank; i++) pst[i] = ost[i < d ? i : i + 1];
      copy_piece(l, &pc, dst, odt, on, dmul(l, dn(l, j), ost[d]), pst, "stack");
    } else {
      if (pc.rank == 1 && dis(l, pc.dims[0], 0) && orank != 1) continue; /* legacy empty tensor */
      if (pc.rank != orank) return unsupported(l);
      copy_piece(l, &pc, dst, odt, on, dmul(l, off, ost[d]), ost, "cat");
      off = dadd(l, off, pc.dims[d]);
    }
  }
  return 1;
}

int kl_lower_piece(kl_ctx *c, ir_nodeid split_node, int p, be_bufid dst) {
  L l = {.c = c, .g = kl_graph(c), .id = split_node, .a = kl_arena(c)};
  l.n = ir_node_get(l.g, split_node);
  piece pc;
  if (split_piece(&l, split_node, p, &pc) < 0)
    return fail(&l, "cannot take piece %d of '%s'", p, ir_ops[l.n->op].name);
  ir_dim st[MAXR];
  cstrides(&l, pc.rank, pc.dims, st);
  copy_piece(&l, &pc, dst, vdtype(&l, pc.v), numel(&l, pc.rank, pc.dims), dn(&l, 0), st,
             ir_ops[l.n->op].name);
  return 0;
}

/* ---- reductions ------------------------------------------------------------------- */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_NORM, R_ARGMAX, R_ARGMIN };

/* Generic reduction of x over the dims in mask: loops over the kept dims
 * (PARALLEL outermost) around loops over the reduced ones (REDUCE).
 * out (and, for arg kinds, idx_out) are written at the kept coordinates.
 * norm_p is used by R_NORM. */
static int reduce(L *l, int kind, const bool *mask, ir_value out, ir_value idx_out, double norm_p) {
  ir_value xv = l->n->in[0];
  ir_dim xd[MAXR];
  int xr = vshape(l, xv, xd);
  if (xr < 0) return unsupported(l);
  ir_dim kd[MAXR], rd[MAXR], xst[MAXR], kst[MAXR], rst[MAXR];
  int kr = 0, rr = 0, kmap[MAXR], rmap[MAXR];
  cstrides(l, xr, xd, xst);
  for (int i = 0; i < xr; i++) {
    if (mask[i])
      rmap[rr] = i, rd[rr++] = xd[i];
    else
      kmap[kr] = i, kd[kr++] = xd[i];
  }
  cstrides(l, kr, kd, kst);
  cstrides(l, rr, rd, rst);
  ir_dim count = numel(l, rr, rd);
  nn_dtype xdt = vdtype(l, xv);
  nn_dtype odt = out != IR_NOVAL ? vdtype(l, out) : xdt;
  bool arg = kind == R_ARGMAX || kind == R_ARGMIN;
  /* accumulate in the output's dtype (values for arg kinds: x's) */
  nn_dtype ad = compute_dt(arg ? xdt : odt);
  if (kind == R_MAX || kind == R_MIN) ad = compute_dt(xdt);
  kernel *k = kl_kernel(l->c, ir_ops[l->n->op].name);
  int32_t os = -1, is = -1;
  ir_dim kn = numel(l, kr, kd);
  if (out != IR_NOVAL) os = wslot(l, k, odt, kn, kl_value_buf(l->c, out), "out");
  if (idx_out != IR_NOVAL) is = wslot(l, k, NN_DT_I64, kn, kl_value_buf(l->c, idx_out), "idx");
  int32_t xs = vslot(l, k, xv, "x");
  kx_id kv[MAXR], rv[MAXR], xc[MAXR];
  int nl = nest(l, k, kr, kd, kv, true, false, 0);
  int32_t acc = k_var(k, ad), ai = -1;
  bool hi = kind == R_MIN || kind == R_ARGMIN || (kind == R_NORM && isinf(norm_p) && norm_p < 0);
  kx_id init;
  if (kind == R_MAX || kind == R_MIN || arg || (kind == R_NORM && isinf(norm_p)))
    init = k_extreme(k, ad, hi);
  else
    init = k_const_i(k, ad, 0);
  k_let(k, acc, init);
  if (arg) {
    ai = k_var(k, NN_DT_I64);
    k_let(k, ai, k_i64(k, 0));
  }
  int rl = nest(l, k, rr, rd, rv, false, false, KS_REDUCE);
  for (int i = 0; i < kr; i++) xc[kmap[i]] = kv[i];
  for (int i = 0; i < rr; i++) xc[rmap[i]] = rv[i];
  kx_id x = k_cast(k, ad, k_load(k, xs, lin(l, k, xr, xc, xst)));
  kx_id a = k_varref(k, acc), nv;
  switch (kind) {
  case R_SUM:
  case R_MEAN: nv = k_bin(k, KX_ADD, a, x); break;
  case R_MAX: nv = k_bin(k, KX_MAX, a, x); break;
  case R_MIN: nv = k_bin(k, KX_MIN, a, x); break;
  case R_NORM: {
    kx_id ax = k_un(k, KX_ABS, x);
    if (isinf(norm_p))
      nv = k_bin(k, norm_p > 0 ? KX_MAX : KX_MIN, a, ax);
    else if (norm_p == 0)
      nv = k_bin(k, KX_ADD, a, k_cast(k, ad, k_bin(k, KX_NE, x, k_const_i(k, ad, 0))));
    else if (norm_p == 1)
      nv = k_bin(k, KX_ADD, a, ax);
    else if (norm_p == 2)
      nv = k_bin(k, KX_ADD, a, k_bin(k, KX_MUL, x, x));
    else
      nv = k_bin(k, KX_ADD, a, k_bin(k, KX_POW, ax, k_const_f(k, ad, norm_p)));
    break;
  }
  default: { /* arg: strict improvement keeps the first index; NaN wins */
    kx_id better = k_bin(k, kind == R_ARGMAX ? KX_GT : KX_LT, x, a);
    if (nn_dtype_is_float(ad))
      better = k_bin(k, KX_OR, better,
                     k_bin(k, KX_AND, k_bin(k, KX_NE, x, x), k_bin(k, KX_EQ, a, a)));
    int32_t bv = k_var(k, NN_DT_BOOL);
    k_let(k, bv, better);
    kx_id b = k_varref(k, bv);
    k_let(k, ai, k_select(k, b, lin(l, k, rr, rv, rst), k_varref(k, ai)));
    nv = k_select(k, b, x, k_varref(k, acc));
    break;
  }
  }
  k_let(k, acc, nv);
  nest_end(k, rl);
  kx_id res = k_varref(k, acc);
  if (kind == R_MEAN) res = k_bin(k, KX_DIV, res, XT(l, k, count, ad));
  if (kind == R_NORM && !isinf(norm_p) && norm_p != 0 && norm_p != 1)
    res = norm_p == 2 ? k_un(k, KX_SQRT, res)
                      : k_bin(k, KX_POW, res, k_const_f(k, ad, 1.0 / norm_p));
  kx_id oidx = lin(l, k, kr, kv, kst);
  if (os >= 0) k_store(k, os, oidx, k_cast(k, odt, res));
  if (is >= 0) k_store(k, is, oidx, k_varref(k, ai));
  nest_end(k, nl);
  return 1;
}

static int lower_reduce(L *l) {
  const ir_node *n = l->n;
  ir_op op = n->op;
  ir_dim xd[MAXR];
  int xr = vshape(l, n->in[0], xd);
  if (xr < 0) return unsupported(l);
  bool mask[MAXR] = {false};
  int idims = op == NN_OP_NORM ? 2 : 1;
  switch (op) {
  case NN_OP_SUM:
  case NN_OP_MEAN:
  case NN_OP_AMAX:
  case NN_OP_AMIN:
  case NN_OP_NORM: {
    const int64_t *v;
    int nv = 0;
    if (!is_none(l, idims) && !clist(l, idims, &v, &nv)) return unsupported(l);
    for (int i = 0; i < xr; i++) mask[i] = nv == 0;
    for (int j = 0; j < nv; j++) {
      int d = wrapdim(v[j], xr);
      if (d < 0) return unsupported(l);
      if (xr) mask[d] = true;
    }
    double p = 2;
    if (op == NN_OP_NORM && !is_none(l, 1) && !cnum(l, 1, &p)) return unsupported(l);
    int kind = op == NN_OP_SUM    ? R_SUM
               : op == NN_OP_MEAN ? R_MEAN
               : op == NN_OP_AMAX ? R_MAX
               : op == NN_OP_AMIN ? R_MIN
                                  : R_NORM;
    return reduce(l, kind, mask, n->out[0], IR_NOVAL, p);
  }
  case NN_OP_MAX_ALL:
  case NN_OP_MIN_ALL:
    for (int i = 0; i < xr; i++) mask[i] = true;
    return reduce(l, op == NN_OP_MAX_ALL ? R_MAX : R_MIN, mask, n->out[0], IR_NOVAL, 0);
  case NN_OP_MAX_DIM:
  case NN_OP_MIN_DIM:
  case NN_OP_ARGMAX:
  case NN_OP_ARGMIN: {
    bool arg = op == NN_OP_ARGMAX || op == NN_OP_ARGMIN;
    int64_t dim;
    if (arg && is_none(l, 1)) {
      for (int i = 0; i < xr; i++) mask[i] = true;
    } else {
      if (!cint(l, 1, &dim) || wrapdim(dim, xr) < 0) return unsupported(l);
      if (xr) mask[wrapdim(dim, xr)] = true;
    }
    int kind = op == NN_OP_MAX_DIM || op == NN_OP_ARGMAX ? R_ARGMAX : R_ARGMIN;
    return reduce(l, kind, mask, arg ? IR_NOVAL : n->out[0], arg ? n->out[0] : n->out[1], 0);
  }
  default: NN_UNREACHABLE();
  }
}

/* Row-wise ops along one dim d of x: softmax, log_softmax, cumsum. The
 * loops run over every dim but d (PARALLEL outermost); inside, passes
 * over d. */
static int lower_rows(L *l) {
  const ir_node *n = l->n;
  ir_op op = n->op;
  ir_dim xd[MAXR];
  int64_t dim;
  int xr = vshape(l, n->in[0], xd);
  if (xr < 0 || !cint(l, 1, &dim) || wrapdim(dim, xr) < 0) return unsupported(l);
  int d = xr ? wrapdim(dim, xr) : -1;
  ir_dim od[MAXR], ost[MAXR];
  int orank = 0;
  for (int i = 0; i < xr; i++)
    if (i != d) od[orank++] = xd[i];
  cstrides(l, xr, xd, ost);
  ir_dim len = d >= 0 ? xd[d] : dn(l, 1), dst = d >= 0 ? ost[d] : dn(l, 1);
  nn_dtype odt = vdtype(l, n->out[0]), cd = compute_dt(odt);
  kernel *k = kl_kernel(l->c, ir_ops[op].name);
  int32_t os = wslot(l, k, odt, numel(l, xr, xd), kl_value_buf(l->c, n->out[0]), "out");
  int32_t xs = vslot(l, k, n->in[0], "x");
  kx_id kv[MAXR];
  int nl = nest(l, k, orank, od, kv, true, false, 0);
  /* row base: kept coordinates times x's strides */
  kx_id base = k_i64(k, 0);
  for (int i = 0, j = 0; i < xr; i++)
    if (i != d) base = k_bin(k, KX_ADD, base, k_bin(k, KX_MUL, kv[j++], X(l, k, ost[i])));
  kx_id lenx = X(l, k, len), dstx = X(l, k, dst);
#define ROWIDX(v) k_bin(k, KX_ADD, base, k_bin(k, KX_MUL, (v), dstx))
#define XAT(v) k_cast(k, cd, k_load(k, xs, ROWIDX(v)))
  if (op == NN_OP_CUMSUM) {
    int32_t acc = k_var(k, cd);
    k_let(k, acc, k_const_i(k, cd, 0));
    kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), lenx, KS_REDUCE));
    k_let(k, acc, k_bin(k, KX_ADD, k_varref(k, acc), XAT(j)));
    k_store(k, os, ROWIDX(j), k_cast(k, odt, k_varref(k, acc)));
    k_for_end(k);
  } else {
    int32_t mx = k_var(k, cd), sm = k_var(k, cd);
    k_let(k, mx, k_extreme(k, cd, false));
    kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), lenx, KS_REDUCE));
    k_let(k, mx, k_bin(k, KX_MAX, k_varref(k, mx), XAT(j)));
    k_for_end(k);
    k_let(k, sm, k_const_i(k, cd, 0));
    j = k_varref(k, k_for_begin(k, k_i64(k, 0), lenx, KS_REDUCE));
    k_let(k, sm,
          k_bin(k, KX_ADD, k_varref(k, sm),
                k_un(k, KX_EXP, k_bin(k, KX_SUB, XAT(j), k_varref(k, mx)))));
    k_for_end(k);
    j = k_varref(k, k_for_begin(k, k_i64(k, 0), lenx, KS_VECTOR));
    kx_id sh = k_bin(k, KX_SUB, XAT(j), k_varref(k, mx)), r;
    if (op == NN_OP_SOFTMAX)
      r = k_bin(k, KX_DIV, k_un(k, KX_EXP, sh), k_varref(k, sm));
    else
      r = k_bin(k, KX_SUB, sh, k_un(k, KX_LOG, k_varref(k, sm)));
    k_store(k, os, ROWIDX(j), k_cast(k, odt, r));
    k_for_end(k);
  }
#undef ROWIDX
#undef XAT
  nest_end(k, nl);
  return 1;
}

/* ---- normalization -------------------------------------------------------------- */

/* Optional per-element parameter p[idx] (1 or 0 when absent). */
static kx_id param(kernel *k, int32_t slot, kx_id idx, nn_dtype cd, double dflt) {
  return slot < 0 ? k_const_f(k, cd, dflt) : k_cast(k, cd, k_load(k, slot, idx));
}

static int32_t opt_slot(L *l, kernel *k, int j, const char *name) {
  return is_none(l, j) ? -1 : vslot(l, k, l->n->in[j], name);
}

/* Mean and biased variance of count elements at x[base + j], j < count,
 * into LET variables *mean and *rstd = rsqrt(var + eps). */
static void moments(L *l, kernel *k, int32_t xs, kx_id base, ir_dim count, nn_dtype cd, double eps,
                    int32_t *mean, int32_t *rstd) {
  kx_id cx = X(l, k, count);
  int32_t s = k_var(k, cd);
  k_let(k, s, k_const_i(k, cd, 0));
  kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), cx, KS_REDUCE));
  kx_id x = k_cast(k, cd, k_load(k, xs, k_bin(k, KX_ADD, base, j)));
  k_let(k, s, k_bin(k, KX_ADD, k_varref(k, s), x));
  k_for_end(k);
  *mean = k_var(k, cd);
  k_let(k, *mean, k_bin(k, KX_DIV, k_varref(k, s), XT(l, k, count, cd)));
  int32_t q = k_var(k, cd);
  k_let(k, q, k_const_i(k, cd, 0));
  j = k_varref(k, k_for_begin(k, k_i64(k, 0), cx, KS_REDUCE));
  x = k_cast(k, cd, k_load(k, xs, k_bin(k, KX_ADD, base, j)));
  kx_id dv = k_bin(k, KX_SUB, x, k_varref(k, *mean));
  k_let(k, q, k_bin(k, KX_ADD, k_varref(k, q), k_bin(k, KX_MUL, dv, dv)));
  k_for_end(k);
  *rstd = k_var(k, cd);
  k_let(k, *rstd,
        k_un(k, KX_RSQRT,
             k_bin(k, KX_ADD, k_bin(k, KX_DIV, k_varref(k, q), XT(l, k, count, cd)),
                   k_const_f(k, cd, eps))));
}

static int lower_norm(L *l) {
  const ir_node *n = l->n;
  ir_op op = n->op;
  ir_dim xd[MAXR];
  int xr = vshape(l, n->in[0], xd);
  double eps;
  nn_dtype odt = vdtype(l, n->out[0]), cd = compute_dt(odt);
  if (xr < 0 || !cnum(l, op == NN_OP_BATCH_NORM ? 7 : 4, &eps)) return unsupported(l);
  ir_dim tot = numel(l, xr, xd);
  be_bufid ob = kl_value_buf(l->c, n->out[0]);
  if (op == NN_OP_LAYER_NORM) {
    const int64_t *ns;
    int nn_;
    if (!clist(l, 1, &ns, &nn_)) {
      /* a list built at run time (sizes of a symbolic shape): its length */
      ir_nodeid def = l->g->values.data[n->in[1]].def;
      const ir_node *ln = def >= 0 ? ir_node_get(l->g, def) : NULL;
      if (!ln || ln->op != NN_OP_LIST_CONSTRUCT) return unsupported(l);
      nn_ = ln->nin;
    }
    if (nn_ > xr) return unsupported(l);
    /* rows of m elements: the trailing nn_ dims of x (shape inference
     * checked them against normalized_shape) */
    ir_dim m = numel(l, nn_, xd + xr - nn_);
    ir_dim rows = dis(l, m, 0) ? dn(l, 0) : numel(l, xr - nn_, xd);
    kernel *k = kl_kernel(l->c, "layer_norm");
    int32_t os = wslot(l, k, odt, tot, ob, "out");
    int32_t xs = vslot(l, k, n->in[0], "x");
    int32_t ws = opt_slot(l, k, 2, "w"), bs = opt_slot(l, k, 3, "b");
    kx_id r = k_varref(k, k_for_begin(k, k_i64(k, 0), X(l, k, rows), KS_PARALLEL));
    kx_id base = k_bin(k, KX_MUL, r, X(l, k, m));
    int32_t mean, rstd;
    moments(l, k, xs, base, m, cd, eps, &mean, &rstd);
    kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), X(l, k, m), KS_VECTOR));
    kx_id idx = k_bin(k, KX_ADD, base, j);
    kx_id x = k_cast(k, cd, k_load(k, xs, idx));
    kx_id y = k_bin(k, KX_MUL, k_bin(k, KX_SUB, x, k_varref(k, mean)), k_varref(k, rstd));
    y = k_bin(k, KX_ADD, k_bin(k, KX_MUL, y, param(k, ws, j, cd, 1)), param(k, bs, j, cd, 0));
    k_store(k, os, idx, k_cast(k, odt, y));
    k_for_end(k);
    k_for_end(k);
    return 1;
  }
  if (xr < 2) return unsupported(l);
  ir_dim N = xd[0], C = xd[1], NC = dmul(l, N, C);
  ir_dim S = dis(l, NC, 0) ? dn(l, 0) : numel(l, xr - 2, xd + 2);
  if (op == NN_OP_GROUP_NORM) {
    int64_t G, Cn;
    if (!cint(l, 1, &G) || G <= 0) return unsupported(l);
    if (!dconst(l, C, &Cn)) return symbolic(l, C);
    if (Cn % G) return unsupported(l);
    int64_t cg = Cn / G;
    ir_dim gs = dmul(l, dn(l, cg), S);
    kernel *k = kl_kernel(l->c, "group_norm");
    int32_t os = wslot(l, k, odt, tot, ob, "out");
    int32_t xs = vslot(l, k, n->in[0], "x");
    int32_t ws = opt_slot(l, k, 2, "w"), bs = opt_slot(l, k, 3, "b");
    kx_id ng = k_varref(k, k_for_begin(k, k_i64(k, 0), X(l, k, dmul(l, N, dn(l, G))), KS_PARALLEL));
    kx_id base = k_bin(k, KX_MUL, ng, X(l, k, gs));
    int32_t mean, rstd;
    moments(l, k, xs, base, gs, cd, eps, &mean, &rstd);
    kx_id cc = k_varref(k, k_for_begin(k, k_i64(k, 0), k_i64(k, cg), 0));
    kx_id ch = k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_bin(k, KX_MOD, ng, k_i64(k, G)), k_i64(k, cg)),
                     cc);
    int32_t sc = k_var(k, cd), sh = k_var(k, cd);
    k_let(k, sc, k_bin(k, KX_MUL, k_varref(k, rstd), param(k, ws, ch, cd, 1)));
    k_let(k, sh,
          k_bin(k, KX_SUB, param(k, bs, ch, cd, 0),
                k_bin(k, KX_MUL, k_varref(k, mean), k_varref(k, sc))));
    kx_id Sx = X(l, k, S);
    kx_id s = k_varref(k, k_for_begin(k, k_i64(k, 0), Sx, KS_VECTOR));
    kx_id idx = k_bin(k, KX_ADD, k_bin(k, KX_ADD, base, k_bin(k, KX_MUL, cc, Sx)), s);
    kx_id y = k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_cast(k, cd, k_load(k, xs, idx)), k_varref(k, sc)),
                    k_varref(k, sh));
    k_store(k, os, idx, k_cast(k, odt, y));
    k_for_end(k);
    k_for_end(k);
    k_for_end(k);
    return 1;
  }
  /* batch_norm, eval mode */
  int64_t training;
  if (!cint(l, 5, &training)) return unsupported(l);
  if (training) return fail(l, "batch_norm in training mode is not supported");
  if (is_none(l, 3) || is_none(l, 4))
    return fail(l, "batch_norm without running statistics is not supported");
  kernel *k = kl_kernel(l->c, "batch_norm");
  int32_t os = wslot(l, k, odt, tot, ob, "out");
  int32_t xs = vslot(l, k, n->in[0], "x");
  int32_t ws = opt_slot(l, k, 1, "w"), bs = opt_slot(l, k, 2, "b");
  int32_t ms = vslot(l, k, n->in[3], "mean"), vs = vslot(l, k, n->in[4], "var");
  kx_id nc = k_varref(k, k_for_begin(k, k_i64(k, 0), X(l, k, NC), KS_PARALLEL));
  kx_id c = k_bin(k, KX_MOD, nc, X(l, k, C));
  int32_t sc = k_var(k, cd), sh = k_var(k, cd);
  k_let(k, sc,
        k_bin(k, KX_MUL, param(k, ws, c, cd, 1),
              k_un(k, KX_RSQRT, k_bin(k, KX_ADD, param(k, vs, c, cd, 1), k_const_f(k, cd, eps)))));
  k_let(k, sh,
        k_bin(k, KX_SUB, param(k, bs, c, cd, 0),
              k_bin(k, KX_MUL, param(k, ms, c, cd, 0), k_varref(k, sc))));
  kx_id Sx = X(l, k, S);
  kx_id s = k_varref(k, k_for_begin(k, k_i64(k, 0), Sx, KS_VECTOR));
  kx_id idx = k_bin(k, KX_ADD, k_bin(k, KX_MUL, nc, Sx), s);
  kx_id y = k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_cast(k, cd, k_load(k, xs, idx)), k_varref(k, sc)),
                  k_varref(k, sh));
  k_store(k, os, idx, k_cast(k, odt, y));
  k_for_end(k);
  k_for_end(k);
  return 1;
}

/* ---- pooling ---------------------------------------------------------------------- */

/* One spatial dim's list parameter (1 or nsp elements; empty = dflt). */
static bool spatial(L *l, int j, int nsp, const int64_t *dflt, int64_t *out) {
  const int64_t *v;
  int n;
  if (!clist(l, j, &v, &n)) return false;
  if (n == 0 && dflt) {
    memcpy(out, dflt, sizeof *out * (size_t)nsp);
    return true;
  }
  if (n != 1 && n != nsp) return false;
  for (int i = 0; i < nsp; i++) out[i] = v[n == 1 ? 0 : i];
  return true;
}

/* The adaptive window [start, end) of output index o along a dim of input
 * size in and output size on: floor(o*in/on), ceil((o+1)*in/on). */
static void adaptive_window(L *l, kernel *k, kx_id o, ir_dim in, ir_dim on, kx_id *start,
                            kx_id *end) {
  kx_id inx = X(l, k, in), onx = X(l, k, on);
  *start = k_bin(k, KX_FLOORDIV, k_bin(k, KX_MUL, o, inx), onx);
  *end = k_bin(k, KX_FLOORDIV,
               k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_bin(k, KX_ADD, o, k_i64(k, 1)), inx),
                     X(l, k, daddi(l, on, -1))),
               onx);
}

/* What pool_passes needs of one output row (see pool_rows). */
typedef struct pool_geom {
  bool avg;               /* sum (else max) */
  nn_dtype odt, cd;       /* output and compute dtypes */
  int32_t os, xs;         /* output and input slots */
  kx_id orow;             /* index of the row's first output element */
  const kx_id *lo, *hi;   /* per window column: its valid ow range */
  kx_id A, B;             /* the interior ow range (A <= B) */
  int64_t KW, sw, dw, pw; /* window columns, stride, dilation, padding */
  int32_t acc, xv;        /* variables (cd): the running value, one input */
  int32_t xp, nanv;       /* max over floats: a term waiting for its pair's
                             NaN check, and a NaN once one was seen */
  kx_id Bp;               /* max pooling, stride 2, odd KW: the interior
                             [A, Bp) loads paired columns (pool_loop); else -1 */
  kx_id never;            /* a condition that is false at run time */
} pool_geom;

/* One KS_VECTOR loop over ow in [from, to): each output element of the row
 * takes the terms of window rows [r0, r1) and columns [j0, j1), in that
 * order. `extra`: also the element after each row's last column, under a
 * select that is never taken (g->never): with stride 2 the columns then
 * come in consecutive pairs, which the vectorizer reads as two wide loads
 * and shuffles, where an odd column left alone would be gathered element
 * by element. The caller keeps that element inside the row. */
static void pool_loop(kernel *k, const pool_geom *g, const kx_id *rows, kx_id from, kx_id to,
                      int r0, int r1, int64_t j0, int64_t j1, bool extra) {
  kx_id ow = k_varref(k, k_for_begin(k, from, to, KS_VECTOR));
  kx_id oidx = k_bin(k, KX_ADD, g->orow, ow);
  /* LETs keep each statement small (acc is used twice per term) */
  k_let(k, g->acc, k_cast(k, g->cd, k_load(k, g->os, oidx)));
  kx_id acc = k_varref(k, g->acc);
  kx_id col = k_bin(k, KX_MUL, ow, k_i64(k, g->sw));
  /* max over floats: each term is one compare-and-select (a NaN already
   * in acc stays, as no comparison with it holds), and NaNs among the
   * terms are caught two at a time: x1 + x2 is a NaN when either is, and
   * (x1 != x1) | (x2 != x2) is a single unordered compare */
  bool fmax = !g->avg && nn_dtype_is_float(g->cd);
  kx_id nanv = fmax ? k_varref(k, g->nanv) : -1, xp = fmax ? k_varref(k, g->xp) : -1;
  if (fmax) k_let(k, g->nanv, k_const_f(k, g->cd, 0.0));
  bool pending = false;
  for (int rr = r0; rr < r1; rr++) {
    for (int64_t jj = j0; jj < j1 + (extra ? 1 : 0); jj++) {
      kx_id xi = k_bin(k, KX_ADD, rows[rr], k_bin(k, KX_ADD, col, k_i64(k, jj * g->dw - g->pw)));
      kx_id x = k_cast(k, g->cd, k_load(k, g->xs, xi));
      if (jj == j1) /* the pair's partner: never counted */
        x = k_select(k, g->never, x, k_extreme(k, g->cd, false));
      if (g->avg) {
        k_let(k, g->acc, k_bin(k, KX_ADD, acc, x));
        continue;
      }
      k_let(k, g->xv, x);
      x = k_varref(k, g->xv);
      k_let(k, g->acc, k_select(k, k_bin(k, KX_GT, x, acc), x, acc));
      if (!fmax) continue;
      if (!pending) {
        k_let(k, g->xp, x);
      } else {
        kx_id uno = k_bin(k, KX_OR, k_bin(k, KX_NE, xp, xp), k_bin(k, KX_NE, x, x));
        k_let(k, g->nanv, k_select(k, uno, k_bin(k, KX_ADD, xp, x), nanv));
      }
      pending = !pending;
    }
  }
  if (fmax && pending) k_let(k, g->nanv, k_select(k, k_bin(k, KX_NE, xp, xp), xp, nanv));
  kx_id res = fmax ? k_select(k, k_bin(k, KX_NE, nanv, nanv), nanv, acc) : acc;
  k_store(k, g->os, oidx, k_cast(k, g->odt, res));
  k_for_end(k);
}

/* Adds the window rows starting at input elements rows[0..nrows) (all of
 * which exist) into the output row: the interior [A, B) in one KS_VECTOR
 * loop taking every row and column (split at Bp when paired loads apply,
 * see pool_loop), then per row and window column j the parts of
 * [lo_j, hi_j) left of A and right of B. Every output element thus takes
 * its terms in (row, column) order. */
static void pool_passes(kernel *k, const pool_geom *g, const kx_id *rows, int nrows) {
  if (g->Bp >= 0) {
    pool_loop(k, g, rows, g->A, g->Bp, 0, nrows, 0, g->KW, true);
    pool_loop(k, g, rows, g->Bp, g->B, 0, nrows, 0, g->KW, false);
  } else {
    pool_loop(k, g, rows, g->A, g->B, 0, nrows, 0, g->KW, false);
  }
  for (int r = 0; r < nrows; r++)
    for (int64_t j = 0; j < g->KW; j++)
      pool_loop(k, g, rows, g->lo[j], k_bin(k, KX_MIN, g->hi[j], g->A), r, r + 1, j, j + 1, false);
  for (int r = 0; r < nrows; r++)
    for (int64_t j = 0; j < g->KW; j++)
      pool_loop(k, g, rows, k_bin(k, KX_MAX, g->lo[j], g->B), g->hi[j], r, r + 1, j, j + 1, false);
}

/* Fixed-window pooling (no indices output) as passes over each output row,
 * for the vectorizer. For every output row (p, oh) — the parallel loop —
 * the row is first filled with the reduction's identity; then, for each
 * window row i whose input row exists, each window column j adds input
 * column ow*sw - pw + j*dw to output column ow for exactly the ow where
 * that column exists: lo_j <= ow < hi_j, bounds computed once, so the
 * innermost loops carry no checks and load at an index affine in ow. The
 * ow range every j shares (the interior) is one KS_VECTOR loop combining
 * all KW columns in one expression; the few columns left of and right of
 * it get a short loop per j. Output rows whose window rows all exist take
 * all KH*KW terms in one interior pass (pool_passes with every row). Each
 * output element thus sees its valid
 * window elements in the same order (rows, then columns) as the checked
 * form, so sums round alike; max keeps NaN (any NaN in the window gives
 * NaN) and padding never wins. Average pooling then divides the row by
 * its divisor. The output buffer holds the partial results, so the caller
 * uses this only when that loses nothing: max pooling (any dtype stores
 * the max exactly), or the output dtype is the compute dtype. */
static void pool_rows(L *l, kernel *k, bool avg, ir_dim P, ir_dim H, ir_dim W, ir_dim OH, ir_dim OW,
                      const int64_t *ks, const int64_t *st, const int64_t *pd, const int64_t *dl,
                      int64_t cip, int64_t divisor, nn_dtype odt, nn_dtype cd, int32_t os,
                      int32_t xs) {
  ir_dim dims[2] = {P, OH};
  kx_id v[2];
  int nl = nest(l, k, 2, dims, v, true, false, 0);
  kx_id p = v[0], oh = v[1];
  kx_id Hx = X(l, k, H), Wx = X(l, k, W), OWx = X(l, k, OW);
  kx_id orow = k_bin(k, KX_ADD, k_bin(k, KX_MUL, p, k_bin(k, KX_MUL, X(l, k, OH), OWx)),
                     k_bin(k, KX_MUL, oh, OWx));
  kx_id xplane = k_bin(k, KX_MUL, p, k_bin(k, KX_MUL, Hx, Wx));
  kx_id hs = k_bin(k, KX_SUB, k_bin(k, KX_MUL, oh, k_i64(k, st[0])), k_i64(k, pd[0]));
  /* identity */
  kx_id ow = k_varref(k, k_for_begin(k, k_i64(k, 0), OWx, KS_VECTOR));
  k_store(k, os, k_bin(k, KX_ADD, orow, ow),
          k_cast(k, odt, avg ? k_const_i(k, cd, 0) : k_extreme(k, cd, false)));
  k_for_end(k);
  /* valid ow range per window column: [lo_j, hi_j) */
  kx_id lo[64], hi[64], A = k_i64(k, 0), B = OWx;
  int64_t KW = ks[1];
  for (int64_t j = 0; j < KW; j++) {
    int64_t off = j * dl[1] - pd[1]; /* input column = ow*sw + off */
    lo[j] = k_bin(k, KX_MAX, k_i64(k, 0),
                  k_bin(k, KX_FLOORDIV, k_i64(k, -off + st[1] - 1), k_i64(k, st[1])));
    hi[j] = k_bin(k, KX_MIN, OWx,
                  k_bin(k, KX_ADD,
                        k_bin(k, KX_FLOORDIV, k_bin(k, KX_SUB, Wx, k_i64(k, 1 + off)),
                              k_i64(k, st[1])),
                        k_i64(k, 1)));
    A = k_bin(k, KX_MAX, A, lo[j]);
    B = k_bin(k, KX_MIN, B, hi[j]);
  }
  B = k_bin(k, KX_MAX, A, B);
  pool_geom g = {.avg = avg,
                 .odt = odt,
                 .cd = cd,
                 .os = os,
                 .xs = xs,
                 .orow = orow,
                 .lo = lo,
                 .hi = hi,
                 .A = A,
                 .B = B,
                 .KW = KW,
                 .sw = st[1],
                 .dw = dl[1],
                 .pw = pd[1],
                 .acc = k_var(k, cd),
                 .xv = k_var(k, cd),
                 .xp = k_var(k, cd),
                 .nanv = k_var(k, cd),
                 .Bp = -1,
                 .never = -1};
  if (!avg && st[1] == 2 && dl[1] == 1 && KW % 2 == 1 && nn_dtype_is_float(cd)) {
    /* the partner column KW - pw must exist too: ow < its hi */
    kx_id hp = k_bin(k, KX_ADD,
                     k_bin(k, KX_FLOORDIV, k_bin(k, KX_SUB, Wx, k_i64(k, 1 + KW - pd[1])),
                           k_i64(k, 2)),
                     k_i64(k, 1));
    g.Bp = k_bin(k, KX_MAX, A, k_bin(k, KX_MIN, B, hp));
    g.never = k_bin(k, KX_LT, p, k_i64(k, 0)); /* planes count from 0 */
  }
  kx_id last = k_bin(k, KX_ADD, hs, k_i64(k, (ks[0] - 1) * dl[0]));
  bool unroll = ks[0] > 1 && ks[0] * KW <= 64;
  if (unroll) {
    /* every window row exists: all KH*KW terms in one interior pass */
    kx_id rows[64];
    for (int64_t i = 0; i < ks[0]; i++)
      rows[i] = k_bin(k, KX_ADD, xplane,
                      k_bin(k, KX_MUL, k_bin(k, KX_ADD, hs, k_i64(k, i * dl[0])), Wx));
    k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_GE, hs, k_i64(k, 0)), k_bin(k, KX_LT, last, Hx)));
    pool_passes(k, &g, rows, (int)ks[0]);
    k_else(k);
  }
  kx_id i = k_varref(k, k_for_begin(k, k_i64(k, 0), k_i64(k, ks[0]), 0));
  kx_id ih = k_bin(k, KX_ADD, hs, k_bin(k, KX_MUL, i, k_i64(k, dl[0])));
  k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_GE, ih, k_i64(k, 0)), k_bin(k, KX_LT, ih, Hx)));
  kx_id xrow = k_bin(k, KX_ADD, xplane, k_bin(k, KX_MUL, ih, Wx));
  pool_passes(k, &g, &xrow, 1);
  k_if_end(k);
  k_for_end(k);
  if (unroll) k_if_end(k);
  if (avg) {
    ow = k_varref(k, k_for_begin(k, k_i64(k, 0), OWx, KS_VECTOR));
    kx_id div;
    if (divisor) {
      div = k_i64(k, divisor);
    } else {
      kx_id ws = k_bin(k, KX_SUB, k_bin(k, KX_MUL, ow, k_i64(k, st[1])), k_i64(k, pd[1]));
      kx_id hend = k_bin(k, KX_MIN, k_bin(k, KX_ADD, hs, k_i64(k, ks[0])),
                         X(l, k, daddi(l, H, pd[0])));
      kx_id wend = k_bin(k, KX_MIN, k_bin(k, KX_ADD, ws, k_i64(k, ks[1])),
                         X(l, k, daddi(l, W, pd[1])));
      if (cip) {
        div = k_bin(k, KX_MUL, k_bin(k, KX_SUB, hend, hs), k_bin(k, KX_SUB, wend, ws));
      } else {
        kx_id h0 = k_bin(k, KX_MAX, hs, k_i64(k, 0)), w0 = k_bin(k, KX_MAX, ws, k_i64(k, 0));
        kx_id h1 = k_bin(k, KX_MIN, hend, Hx), w1 = k_bin(k, KX_MIN, wend, Wx);
        div = k_bin(k, KX_MUL, k_bin(k, KX_SUB, h1, h0), k_bin(k, KX_SUB, w1, w0));
      }
    }
    kx_id oidx = k_bin(k, KX_ADD, orow, ow);
    k_store(k, os, oidx, k_bin(k, KX_DIV, k_load(k, os, oidx), k_cast(k, cd, div)));
    k_for_end(k);
  }
  nest_end(k, nl);
}

static int lower_pool(L *l) {
  const ir_node *n = l->n;
  ir_op op = n->op;
  bool one = op == NN_OP_MAX_POOL1D || op == NN_OP_AVG_POOL1D || op == NN_OP_ADAPTIVE_AVG_POOL1D;
  bool avg = op == NN_OP_AVG_POOL2D || op == NN_OP_AVG_POOL1D || op == NN_OP_ADAPTIVE_AVG_POOL2D ||
             op == NN_OP_ADAPTIVE_AVG_POOL1D;
  bool adaptive = op == NN_OP_ADAPTIVE_AVG_POOL2D || op == NN_OP_ADAPTIVE_MAX_POOL2D ||
                  op == NN_OP_ADAPTIVE_AVG_POOL1D;
  int nsp = one ? 1 : 2;
  ir_dim xd[MAXR], od[MAXR];
  int xr = vshape(l, n->in[0], xd), orank = vshape(l, n->out[0], od);
  if (xr < nsp + 1 || orank != xr) return unsupported(l);
  /* as 2-d: [P, H, W] -> [P, OH, OW] */
  ir_dim H = one ? dn(l, 1) : xd[xr - 2], W = xd[xr - 1];
  ir_dim OH = one ? dn(l, 1) : od[xr - 2], OW = od[xr - 1];
  ir_dim P = numel(l, xr - nsp, xd);
  int64_t ks[2] = {1, 1}, st[2] = {1, 1}, pd[2] = {0, 0}, dl[2] = {1, 1};
  int64_t ceil_mode = 0, cip = 1, divisor = 0;
  if (!adaptive) {
    int64_t t[2], s[2], p[2], d[2] = {1, 1};
    if (!spatial(l, 1, nsp, NULL, t) || !spatial(l, 2, nsp, t, s) || !spatial(l, 3, nsp, NULL, p) ||
        (!avg && !spatial(l, 4, nsp, NULL, d)))
      return unsupported(l);
    for (int i = 0; i < nsp; i++) {
      int j = i + 2 - nsp;
      ks[j] = t[i], st[j] = s[i], pd[j] = p[i], dl[j] = d[i];
    }
    if (!cint(l, avg ? 4 : 5, &ceil_mode)) return unsupported(l);
    if (avg && !cint(l, 5, &cip)) return unsupported(l);
    if (op == NN_OP_AVG_POOL2D && !is_none(l, 6) && !cint(l, 6, &divisor)) return unsupported(l);
  }
  nn_dtype odt = vdtype(l, n->out[0]), cd = compute_dt(odt);
  kernel *k = kl_kernel(l->c, ir_ops[op].name);
  ir_dim on = dmul(l, dmul(l, P, OH), OW);
  int32_t os = wslot(l, k, odt, on, kl_value_buf(l->c, n->out[0]), "out");
  int32_t is = -1;
  if (n->nout == 2) is = wslot(l, k, NN_DT_I64, on, kl_value_buf(l->c, n->out[1]), "idx");
  int32_t xs = vslot(l, k, n->in[0], "x");
  if (!adaptive && is < 0 && (!avg || odt == cd) && ks[1] <= 64) {
    pool_rows(l, k, avg, P, H, W, OH, OW, ks, st, pd, dl, cip, divisor, odt, cd, os, xs);
    return 1;
  }
  ir_dim dims[3] = {P, OH, OW};
  kx_id v[3];
  int nl = nest(l, k, 3, dims, v, true, false, 0);
  kx_id p = v[0], oh = v[1], ow = v[2];
  kx_id Hx = X(l, k, H), Wx = X(l, k, W);
  /* window bounds per dim: [hs, he) of input rows, clamped */
  kx_id hs, he, ws, we, div = -1;
  if (adaptive) {
    adaptive_window(l, k, oh, H, OH, &hs, &he);
    adaptive_window(l, k, ow, W, OW, &ws, &we);
    if (avg) div = k_bin(k, KX_MUL, k_bin(k, KX_SUB, he, hs), k_bin(k, KX_SUB, we, ws));
  } else {
    /* first row of the window (may be negative: padding) */
    hs = k_bin(k, KX_SUB, k_bin(k, KX_MUL, oh, k_i64(k, st[0])), k_i64(k, pd[0]));
    ws = k_bin(k, KX_SUB, k_bin(k, KX_MUL, ow, k_i64(k, st[1])), k_i64(k, pd[1]));
    he = we = -1;
    if (avg) {
      kx_id hend = k_bin(k, KX_MIN, k_bin(k, KX_ADD, hs, k_i64(k, ks[0])),
                         X(l, k, daddi(l, H, pd[0])));
      kx_id wend = k_bin(k, KX_MIN, k_bin(k, KX_ADD, ws, k_i64(k, ks[1])),
                         X(l, k, daddi(l, W, pd[1])));
      kx_id size = k_bin(k, KX_MUL, k_bin(k, KX_SUB, hend, hs), k_bin(k, KX_SUB, wend, ws));
      kx_id h0 = k_bin(k, KX_MAX, hs, k_i64(k, 0)), w0 = k_bin(k, KX_MAX, ws, k_i64(k, 0));
      kx_id h1 = k_bin(k, KX_MIN, hend, Hx), w1 = k_bin(k, KX_MIN, wend, Wx);
      kx_id valid = k_bin(k, KX_MUL, k_bin(k, KX_SUB, h1, h0), k_bin(k, KX_SUB, w1, w0));
      div = divisor ? k_i64(k, divisor) : cip ? size : valid;
    }
  }
  int32_t acc = k_var(k, cd), ai = k_var(k, NN_DT_I64);
  k_let(k, acc, avg ? k_const_i(k, cd, 0) : k_extreme(k, cd, false));
  k_let(k, ai, k_i64(k, -1));
  kx_id ih, iw;
  if (adaptive) {
    ih = k_varref(k, k_for_begin(k, hs, he, KS_REDUCE));
    iw = k_varref(k, k_for_begin(k, ws, we, KS_REDUCE));
  } else {
    kx_id i = k_varref(k, k_for_begin(k, k_i64(k, 0), k_i64(k, ks[0]), KS_REDUCE));
    ih = k_bin(k, KX_ADD, hs, k_bin(k, KX_MUL, i, k_i64(k, dl[0])));
    kx_id j = k_varref(k, k_for_begin(k, k_i64(k, 0), k_i64(k, ks[1]), KS_REDUCE));
    iw = k_bin(k, KX_ADD, ws, k_bin(k, KX_MUL, j, k_i64(k, dl[1])));
    kx_id ok = k_bin(k, KX_AND,
                     k_bin(k, KX_AND, k_bin(k, KX_GE, ih, k_i64(k, 0)), k_bin(k, KX_LT, ih, Hx)),
                     k_bin(k, KX_AND, k_bin(k, KX_GE, iw, k_i64(k, 0)), k_bin(k, KX_LT, iw, Wx)));
    k_if_begin(k, ok);
  }
  kx_id plane = k_bin(k, KX_ADD, k_bin(k, KX_MUL, ih, Wx), iw);
  kx_id x = k_cast(k, cd,
                   k_load(k, xs,
                          k_bin(k, KX_ADD, k_bin(k, KX_MUL, p, k_bin(k, KX_MUL, Hx, Wx)), plane)));
  if (avg) {
    k_let(k, acc, k_bin(k, KX_ADD, k_varref(k, acc), x));
  } else {
    int32_t xv = k_var(k, cd);
    k_let(k, xv, x);
    kx_id xr_ = k_varref(k, xv);
    kx_id better = k_bin(k, KX_GT, xr_, k_varref(k, acc));
    if (nn_dtype_is_float(cd)) better = k_bin(k, KX_OR, better, k_bin(k, KX_NE, xr_, xr_));
    better = k_bin(k, KX_OR, better, k_bin(k, KX_LT, k_varref(k, ai), k_i64(k, 0)));
    k_if_begin(k, better);
    k_let(k, acc, xr_);
    k_let(k, ai, plane);
    k_if_end(k);
  }
  if (!adaptive) k_if_end(k);
  k_for_end(k);
  k_for_end(k);
  kx_id res = k_varref(k, acc);
  if (avg) res = k_bin(k, KX_DIV, res, k_cast(k, cd, div));
  kx_id OWx = X(l, k, OW);
  kx_id plane_out = k_bin(k, KX_MUL, X(l, k, OH), OWx);
  kx_id oidx = k_bin(k, KX_ADD, k_bin(k, KX_MUL, p, plane_out),
                     k_bin(k, KX_ADD, k_bin(k, KX_MUL, oh, OWx), ow));
  k_store(k, os, oidx, k_cast(k, odt, res));
  if (is >= 0) k_store(k, is, oidx, k_varref(k, ai));
  nest_end(k, nl);
  return 1;
}

/* ---- the scalar form, shared with fused groups (kernel_fuse.c) ------------------- */

int kl_scalar_operands(kl_ctx *c, ir_nodeid id, int *which) {
  ir_graph *g = kl_graph(c);
  const ir_node *n = ir_node_get(g, id);
  switch (n->op) {
  case NN_OP_ARANGE:
  case NN_OP_TRIL:
  case NN_OP_TRIU: return -1; /* index math: lowered with their coordinates */
  default: break;
  }
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
  L l = {.c = c, .g = kl_graph(c), .id = id, .a = kl_arena(c)};
  l.n = ir_node_get(l.g, id);
  return map_scalar(&l, k, vals);
}

/* ---- dispatch --------------------------------------------------------------------- */

int kl_lower_elementwise(kl_ctx *c, ir_nodeid id) {
  L l = {.c = c, .g = kl_graph(c), .id = id, .a = kl_arena(c)};
  l.n = ir_node_get(l.g, id);
  ir_op op = l.n->op;
  for (int i = 0; i < l.n->nout; i++) {
    const ir_type *t = T(&l, l.n->out[i]);
    if (t->kind != IR_T_TENSOR && t->kind != IR_T_INT && t->kind != IR_T_FLOAT &&
        t->kind != IR_T_BOOL && op != NN_OP_CHUNK && op != NN_OP_SPLIT && op != NN_OP_UNBIND)
      return 0;
  }
  switch (op) {
  case NN_OP_CONVOLUTION:
  case NN_OP_LINEAR:
  case NN_OP_ADDMM:
  case NN_OP_MM:
  case NN_OP_BMM:
  case NN_OP_MATMUL:
  case NN_OP_BADDBMM: return 0;
  case NN_OP_CHUNK:
  case NN_OP_SPLIT:
  case NN_OP_UNBIND: return 1; /* written per piece by kl_lower_piece */
  case NN_OP_ARANGE: return lower_arange(&l);
  case NN_OP_PERMUTE:
  case NN_OP_TRANSPOSE:
  case NN_OP_T:
  case NN_OP_EXPAND:
  case NN_OP_EXPAND_AS:
  case NN_OP_REPEAT:
  case NN_OP_SLICE:
  case NN_OP_SELECT:
  case NN_OP_NARROW:
  case NN_OP_FLIP:
  case NN_OP_ROLL:
  case NN_OP_PAD:
  case NN_OP_PIXEL_SHUFFLE:
  case NN_OP_UPSAMPLE_NEAREST2D:
  case NN_OP_TRIL:
  case NN_OP_TRIU:
  case NN_OP_EMBEDDING:
  case NN_OP_GATHER:
  case NN_OP_INDEX_SELECT:
  case NN_OP_ONE_HOT: return lower_inj(&l);
  case NN_OP_INDEX: return lower_index(&l);
  case NN_OP_SCATTER: return lower_scatter(&l);
  case NN_OP_CAT:
  case NN_OP_STACK: return lower_cat(&l);
  case NN_OP_SUM:
  case NN_OP_MEAN:
  case NN_OP_AMAX:
  case NN_OP_AMIN:
  case NN_OP_MAX_ALL:
  case NN_OP_MIN_ALL:
  case NN_OP_MAX_DIM:
  case NN_OP_MIN_DIM:
  case NN_OP_ARGMAX:
  case NN_OP_ARGMIN:
  case NN_OP_NORM: return lower_reduce(&l);
  case NN_OP_SOFTMAX:
  case NN_OP_LOG_SOFTMAX:
  case NN_OP_CUMSUM: return lower_rows(&l);
  case NN_OP_LAYER_NORM:
  case NN_OP_GROUP_NORM:
  case NN_OP_BATCH_NORM: return lower_norm(&l);
  case NN_OP_MAX_POOL2D:
  case NN_OP_MAX_POOL2D_INDICES:
  case NN_OP_AVG_POOL2D:
  case NN_OP_ADAPTIVE_AVG_POOL2D:
  case NN_OP_ADAPTIVE_MAX_POOL2D:
  case NN_OP_MAX_POOL1D:
  case NN_OP_AVG_POOL1D:
  case NN_OP_ADAPTIVE_AVG_POOL1D: return lower_pool(&l);
  default: break;
  }
  ir_fusion f = ir_ops[op].fusion;
  if (f == IR_FUSE_ELEMENTWISE || f == IR_FUSE_BROADCAST || op == NN_OP_CONTIGUOUS ||
      op == NN_OP_DETACH || op == NN_OP_CLONE)
    return lower_map(&l);
  return 0;
}
