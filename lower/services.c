/* services.c — what every lowering family uses (lower.h).
 *
 * Storage. Every value gets a program buffer, made when first asked for
 * (kl_value_buf):
 *  - weights are copied, contiguous, into one blob with every part 64-byte
 *    aligned (KP_BUF_WEIGHT); so are scalar constants a kernel reads;
 *  - every other result gets its own workspace buffer (KP_BUF_WORKSPACE)
 *    whose offset is provisional (one region per buffer) until memplan;
 *  - scalars (IR int/bool, float values) live in 1-element i64/f64
 *    buffers.
 * Kernels are registered as steps in the order they are made, each with
 * its slot bindings (kl_bind). The rest are small facts about the node
 * being lowered (its constant operands, shapes as dims), dim arithmetic,
 * loop nests over shapes, and errors located at the node.
 */
#include "lower.h"

#include <math.h>
#include <string.h>

/* ---- buffers ------------------------------------------------------------ */

kp_bufid kl_add_buf(kp_program *p, kp_bufkind kind, nn_dtype dt, ir_dim elems) {
  int64_t n = -1;
  if (!ir_dim_is_const(p->g, elems, &n)) n = -1;
  kp_buf b = {.kind = kind, .dtype = dt, .elems = n, .elems_d = elems, .index = -1};
  if (kind == KP_BUF_WORKSPACE && n >= 0) {
    b.offset = p->workspace_bytes;
    uint64_t bytes = (uint64_t)n * nn_dtype_size(dt);
    p->workspace_bytes += (bytes + 63) & ~(uint64_t)63;
  }
  NN_PUSH(p->arena, p->bufs, b);
  return p->bufs.len - 1;
}

static kp_bufid add_buf(kp_program *p, kp_bufkind kind, nn_dtype dt, int64_t elems) {
  return kl_add_buf(p, kind, dt, ir_dim_const(p->g, elems));
}

/* Appends bytes to the weights blob at a 64-byte boundary; returns the
 * offset. */
static uint64_t blob_append(kp_program *p, const void *data, size_t n) {
  while (p->weights.len % 64) NN_PUSH(p->arena, p->weights, 0);
  uint64_t off = (uint64_t)p->weights.len;
  for (size_t i = 0; i < n; i++) NN_PUSH(p->arena, p->weights, ((const unsigned char *)data)[i]);
  return off;
}

kp_bufid kl_const_buf(kl_ctx *c, nn_dtype dt, const void *data, int64_t elems) {
  kp_bufid b = add_buf(c->p, KP_BUF_WEIGHT, dt, elems);
  c->p->bufs.data[b].offset = blob_append(c->p, data, (size_t)elems * nn_dtype_size(dt));
  return b;
}

int kl_shape(kl_ctx *c, ir_value v, int64_t *dims) {
  ir_dim d[16];
  int r = kl_shape_d(c, v, d);
  for (int i = 0; i < r; i++) {
    if (!ir_dim_is_const(c->g, d[i], &dims[i])) {
      nn_error(c->d, ir_node_get(c->g, c->node)->loc,
               "code generation needs static shapes; dim %d of this value is symbolic", i);
      return -1;
    }
  }
  return r;
}

int kl_shape_d(kl_ctx *c, ir_value v, ir_dim *dims) {
  const ir_type *t = ir_vtype(c->g, v);
  if (t->kind != IR_T_TENSOR || t->rank < 0 || t->rank > 16) {
    nn_error(c->d, ir_node_get(c->g, c->node)->loc,
             "code generation needs a tensor of known rank (value of type kind %d)", (int)t->kind);
    return -1;
  }
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] == IR_DIM_UNKNOWN) {
      nn_error(c->d, ir_node_get(c->g, c->node)->loc,
               "code generation needs known dims; dim %d of this value is unknown", i);
      return -1;
    }
    dims[i] = t->dims[i];
  }
  return t->rank;
}

ir_dim kl_d(kl_ctx *c, int64_t v) { return ir_dim_const(c->g, v); }

bool kl_dim_const(kl_ctx *c, ir_dim d, int64_t *v) {
  int64_t x;
  return ir_dim_is_const(c->g, d, v ? v : &x);
}

kx_id kl_dimx(kl_ctx *c, kernel *k, ir_dim d) {
  int64_t v;
  if (ir_dim_is_const(c->g, d, &v)) return k_i64(k, v);
  const ir_dimexpr *e = ir_dim_get(c->g, d);
  kx_op op;
  switch (e->kind) {
  case IR_DK_SYM: {
    int i = 0;
    while (i < c->p->syms.len && c->p->syms.data[i].dim != d) i++;
    NN_ASSERT(i < c->p->syms.len && c->p->dims_buf >= 0);
    if (k->dims_slot < 0) {
      k->dims_slot = k_buf(k, NN_DT_I64, c->p->syms.len, false, "dims");
      kl_bind(c, k, k->dims_slot, c->p->dims_buf);
    }
    return k_load(k, k->dims_slot, k_i64(k, i));
  }
  case IR_DK_ADD: op = KX_ADD; break;
  case IR_DK_MUL: op = KX_MUL; break;
  case IR_DK_DIV: op = KX_DIV; break;
  case IR_DK_FLOORDIV: op = KX_FLOORDIV; break;
  case IR_DK_MOD: op = KX_MOD; break;
  default: NN_ASSERT(!"unknown dim in code generation"); return k_i64(k, 0);
  }
  ir_dim a = e->a, b = e->b; /* e may move when the table grows */
  kx_id x = kl_dimx(c, k, a);
  return k_bin(k, op, x, kl_dimx(c, k, b));
}

bool kl_dims_agree(kl_ctx *c, ir_dim a, ir_dim b) {
  if (a == b) return true;
  /* the guards' closure: a chain of assumed equalities joins a to b */
  int n = c->g->guards.len;
  if (n == 0) return false;
  ir_dim *seen = nn_alloc(c->p->arena, sizeof(ir_dim) * (size_t)(n + 1));
  int nseen = 0;
  seen[nseen++] = a;
  for (int k = 0; k < nseen; k++)
    for (int i = 0; i < n; i++) {
      const ir_guard *g = &c->g->guards.data[i];
      ir_dim other = g->a == seen[k] ? g->b : g->b == seen[k] ? g->a : IR_DIM_UNKNOWN;
      if (other == IR_DIM_UNKNOWN) continue;
      if (other == b) return true;
      bool dup = false;
      for (int j = 0; j < nseen && !dup; j++) dup = seen[j] == other;
      if (!dup && nseen <= n) seen[nseen++] = other;
    }
  return false;
}

kp_bufid kl_scratch_d(kl_ctx *c, nn_dtype dt, ir_dim elems) {
  return kl_add_buf(c->p, KP_BUF_WORKSPACE, dt, elems);
}

/* Element count of a tensor value as a dim; an error (and *ok false) when
 * a constant count, or its size in bytes, doesn't fit comfortably in int64
 * (2^62 bytes): every index the kernels compute stays far from overflow.
 * Symbolic counts are checked at run time (the runtime refuses shapes whose
 * buffers would be that large). */
static ir_dim value_elems(kl_ctx *c, ir_value v, bool *ok) {
  ir_dim dims[16];
  int r = kl_shape_d(c, v, dims);
  *ok = r >= 0;
  ir_dim n = ir_dim_const(c->g, 1);
  int64_t cn = 1, bytes;
  bool is_const = true;
  for (int i = 0; i < r && *ok; i++) {
    int64_t dv;
    n = ir_dim_mul(c->g, n, dims[i]);
    if (ir_dim_is_const(c->g, dims[i], &dv))
      *ok = !__builtin_mul_overflow(cn, dv, &cn);
    else
      is_const = false;
  }
  size_t es = nn_dtype_size(ir_vtype(c->g, v)->dtype);
  if (*ok && is_const &&
      (__builtin_mul_overflow(cn, (int64_t)(es ? es : 1), &bytes) || bytes > ((int64_t)1 << 62)))
    *ok = false;
  if (*ok && n == IR_DIM_UNKNOWN) *ok = false;
  if (!*ok && r >= 0)
    nn_error(c->d, ir_node_get(c->g, c->node)->loc,
             "a tensor of this shape is too large (more than 2^62 bytes)");
  return *ok ? n : ir_dim_const(c->g, 0);
}

/* A weight as a contiguous row-major array in the arena, walking its
 * strides (pickled tensors may be views into a larger storage). Memoized
 * per value; the pointer stays valid for the compilation. */
static const void *weight_contig(kl_ctx *c, ir_value v, const ir_weight *w) {
  if (c->vdata[v]) return c->vdata[v];
  int64_t n = ir_weight_numel(w);
  unsigned char *tmp = nn_alloc(c->p->arena, (size_t)n * nn_dtype_size(w->dtype) + 1);
  (void)ir_weight_read(w, tmp); /* elements outside the storage read as 0 */
  c->vdata[v] = tmp;
  return tmp;
}

static kp_bufid weight_buf(kl_ctx *c, ir_value v, const ir_weight *w) {
  return kl_const_buf(c, w->dtype, weight_contig(c, v, w), ir_weight_numel(w));
}

/* A constant scalar as a one-element weight buffer. */
static kp_bufid const_scalar_buf(kl_ctx *c, const ir_const *k) {
  switch (k->kind) {
  case IR_C_INT:
  case IR_C_BOOL: {
    int64_t v = k->i;
    return kl_const_buf(c, NN_DT_I64, &v, 1); /* bools as 0/1 */
  }
  case IR_C_FLOAT: {
    double v = k->f;
    return kl_const_buf(c, NN_DT_F64, &v, 1);
  }
  default: return -1;
  }
}

kp_bufid kl_value_buf(kl_ctx *c, ir_value v) {
  if (c->vbuf[v] >= 0) return c->vbuf[v];
  const ir_type *t = ir_vtype(c->g, v);
  ir_nodeid def = c->g->values.data[v].def;
  const ir_node *n = def >= 0 ? ir_node_get(c->g, def) : NULL;
  kp_bufid b = -1;
  if (n && n->op == NN_OP_CONSTANT) {
    b = const_scalar_buf(c, &n->c);
  } else if (n && n->op == NN_OP_WEIGHT) {
    b = weight_buf(c, v, &c->g->weights.data[n->weight]);
  } else if (t->kind == IR_T_TENSOR) {
    bool ok;
    ir_dim e = value_elems(c, v, &ok);
    if (ok) b = kl_add_buf(c->p, KP_BUF_WORKSPACE, t->dtype, e);
  } else if (t->kind == IR_T_INT || t->kind == IR_T_BOOL) {
    b = add_buf(c->p, KP_BUF_WORKSPACE, NN_DT_I64, 1);
  } else if (t->kind == IR_T_FLOAT) {
    b = add_buf(c->p, KP_BUF_WORKSPACE, NN_DT_F64, 1);
  }
  if (b < 0) {
    nn_error(c->d, n ? n->loc : (nn_loc){0}, "no storage for a value of this type");
    b = add_buf(c->p, KP_BUF_WORKSPACE, NN_DT_U8, 1);
  }
  c->vbuf[v] = b;
  return b;
}

kp_bufid kl_scratch(kl_ctx *c, nn_dtype dt, int64_t elems) {
  return add_buf(c->p, KP_BUF_WORKSPACE, dt, elems);
}

/* Packing a weight at compile time reads it here without putting the
 * unpacked copy into the blob (only buffers kernels bind go there). */
const void *kl_weight_data(kl_ctx *c, ir_value v) {
  ir_nodeid def = c->g->values.data[v].def;
  if (def < 0) return NULL;
  const ir_node *n = ir_node_get(c->g, def);
  if (n->op != NN_OP_WEIGHT) return NULL;
  return weight_contig(c, v, &c->g->weights.data[n->weight]);
}

ir_graph *kl_graph(kl_ctx *c) { return c->g; }
nn_arena *kl_arena(kl_ctx *c) { return c->p->arena; }
nn_diag *kl_diag(kl_ctx *c) { return c->d; }
ir_nodeid kl_node(kl_ctx *c) { return c->node; }
const tg_target *kl_tg(kl_ctx *c) { return c->t; }
ir_node *kl_cur(kl_ctx *c) { return ir_node_get(c->g, c->node); }
ir_nodeid kl_set_node(kl_ctx *c, ir_nodeid id) {
  ir_nodeid was = c->node;
  c->node = id;
  return was;
}
bool kl_needed(kl_ctx *c, ir_value v) { return c->needed[v]; }

/* ---- kernels ------------------------------------------------------------ */

kernel *kl_kernel(kl_ctx *c, const char *what) {
  kernel *k = k_new(c->p->arena, nn_sprintf(c->p->arena, "k%d_%s", c->nkernels++, what));
  k->loc = c->owner >= 0 ? ir_node_get(c->g, c->owner)->loc : (nn_loc){0};
  kp_step s = {.k = k, .slots = NULL, .node = c->owner};
  NN_PUSH(c->p->arena, c->p->steps, s);
  return k;
}

void kl_bind(kl_ctx *c, kernel *k, int32_t slot, kp_bufid b) {
  kp_step *s = NULL;
  for (int i = c->p->steps.len - 1; i >= 0 && !s; i--)
    if (c->p->steps.data[i].k == k) s = &c->p->steps.data[i];
  NN_ASSERT(s && slot >= 0 && slot < k->bufs.len);
  if (!s->slots) {
    s->slots = nn_alloc(c->p->arena, sizeof(kp_bufid) * K_MAX_SLOTS);
    for (int i = 0; i < K_MAX_SLOTS; i++) s->slots[i] = -1;
  }
  NN_ASSERT(slot < K_MAX_SLOTS);
  s->slots[slot] = b;
}

kernel *kl_kernel_ep(kl_ctx *c, const char *what, const kl_epilogue *ep) {
  if (ep && ep->name && ep->name[0]) what = nn_sprintf(kl_arena(c), "%s_%s", what, ep->name);
  return kl_kernel(c, what);
}

/* ---- operands of the node being lowered --------------------------------------- */

void kl_report(kl_ctx *c, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  nn_error(kl_diag(c), kl_cur(c)->loc, "%s", msg);
}

void kl_report_unsupported(kl_ctx *c) {
  kl_report(c, "code generation for '%s' with these operands is not supported yet",
            ir_ops[kl_cur(c)->op].name);
}

bool kl_is_none(kl_ctx *c, int j) {
  const ir_node *n = kl_cur(c);
  return j < n->nin && ir_vtype(c->g, n->in[j])->kind == IR_T_NONE;
}

const ir_const *kl_cst(kl_ctx *c, int j) {
  const ir_node *n = kl_cur(c);
  const ir_const *k;
  if (j >= n->nin || !ir_value_const(c->g, n->in[j], &k)) return NULL;
  return k;
}

/* Operand j as a constant int (ints and bools). */
bool kl_cint(kl_ctx *c, int j, int64_t *out) {
  const ir_const *k = kl_cst(c, j);
  if (!k || (k->kind != IR_C_INT && k->kind != IR_C_BOOL)) return false;
  *out = k->i;
  return true;
}

/* Operand j as a constant number. */
bool kl_cnum(kl_ctx *c, int j, double *out) {
  const ir_const *k = kl_cst(c, j);
  if (!k) return false;
  if (k->kind == IR_C_INT || k->kind == IR_C_BOOL)
    *out = (double)k->i;
  else if (k->kind == IR_C_FLOAT)
    *out = k->f;
  else
    return false;
  return true;
}

/* Operand j as a constant int list (a single int counts as [i]). */
bool kl_clist(kl_ctx *c, int j, const int64_t **v, int *n) {
  const ir_const *k = kl_cst(c, j);
  if (!k) return false;
  if (k->kind == IR_C_INTLIST || k->kind == IR_C_BOOLLIST) {
    *v = k->ints;
    *n = k->n;
    return true;
  }
  if (k->kind == IR_C_INT) {
    int64_t *one = nn_alloc(kl_arena(c), sizeof *one);
    *one = k->i;
    *v = one;
    *n = 1;
    return true;
  }
  return false;
}

const char *kl_cstr(kl_ctx *c, int j) {
  const ir_const *k = kl_cst(c, j);
  return k && k->kind == IR_C_STR ? k->s : NULL;
}

/* The element dtype of a value's storage. */
nn_dtype kl_vdtype(kl_ctx *c, ir_value v) {
  const ir_type *t = ir_vtype(kl_graph(c), v);
  switch (t->kind) {
  case IR_T_TENSOR: return t->dtype;
  case IR_T_INT:
  case IR_T_BOOL: return NN_DT_I64;
  case IR_T_FLOAT: return NN_DT_F64;
  default: return NN_DT_UNKNOWN;
  }
}

/* Shape of a value as dims (scalars: rank 0); -1 after reporting. */
int kl_vshape(kl_ctx *c, ir_value v, ir_dim *dims) {
  const ir_type *t = ir_vtype(kl_graph(c), v);
  if (t->kind == IR_T_INT || t->kind == IR_T_FLOAT || t->kind == IR_T_BOOL) return 0;
  if (t->kind != IR_T_TENSOR) return -1;
  if (t->rank > KL_MAXR) {
    return kl_fail(c, "tensors of rank %d are not supported", t->rank);
  }
  return kl_shape_d(c, v, dims);
}

/* ---- dim arithmetic ------------------------------------------------------------ *
 * Sizes, strides and trip counts are ir_dim values: constants when the
 * shapes are static (they fold, so the numbers are those int64 arithmetic
 * would give), expressions over the inputs' named dims otherwise. They
 * become kernel expressions only where they enter a kernel (X). */

ir_dim kl_dadd(kl_ctx *c, ir_dim a, ir_dim b) { return ir_dim_add(c->g, a, b); }
ir_dim kl_dmul(kl_ctx *c, ir_dim a, ir_dim b) { return ir_dim_mul(c->g, a, b); }
ir_dim kl_daddi(kl_ctx *c, ir_dim a, int64_t b) { return kl_dadd(c, a, kl_d(c, b)); }
ir_dim kl_dmuli(kl_ctx *c, ir_dim a, int64_t b) { return kl_dmul(c, a, kl_d(c, b)); }

/* d is the number v. */
bool kl_dis(kl_ctx *c, ir_dim d, int64_t v) {
  int64_t x;
  return kl_dim_const(c, d, &x) && x == v;
}

/* d as an I64 expression of kernel k. An unknown dim (only from int64
 * overflow of a size: the schedule reports the tensor as too large) is
 * reported and reads as 0. */
kx_id kl_x(kl_ctx *c, kernel *k, ir_dim d) {
  if (d == IR_DIM_UNKNOWN) {
    kl_report(c, "a size of this op does not fit in 64 bits");
    return k_i64(k, 0);
  }
  return kl_dimx(c, k, d);
}

/* d as a number of dtype dt (a constant when d is one). */
kx_id kl_xt(kl_ctx *c, kernel *k, ir_dim d, nn_dtype dt) {
  int64_t v;
  if (kl_dim_const(c, d, &v)) return k_const_i(k, dt, v);
  return k_cast(k, dt, kl_x(c, k, d));
}

/* An element count for k_buf: the number, or -1 when symbolic. */
int64_t kl_elems(kl_ctx *c, ir_dim d) {
  int64_t v;
  return kl_dim_const(c, d, &v) ? v : -1;
}

void kl_report_symbolic(kl_ctx *c, ir_dim d) {
  nn_buf b = {0};
  ir_dim_print(&b, kl_graph(c), d);
  kl_report(c, "code generation for '%s' with symbolic dim %s is not supported yet",
            ir_ops[kl_cur(c)->op].name, b.data ? b.data : "?");
  nn_buf_free(&b);
}

ir_dim kl_numel(kl_ctx *c, int rank, const ir_dim *dims) {
  ir_dim n = kl_d(c, 1);
  for (int i = 0; i < rank; i++) n = kl_dmul(c, n, dims[i]);
  return n;
}

void kl_cstrides(kl_ctx *c, int rank, const ir_dim *dims, ir_dim *st) {
  ir_dim s = kl_d(c, 1);
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s = kl_dmul(c, s, dims[i]);
  }
}

int kl_wrapdim(int64_t d, int rank) {
  if (d < 0) d += rank;
  return d < 0 || d >= (rank ? rank : 1) ? -1 : (int)d;
}

/* A kernel slot for value v (its whole storage), bound to its buffer. */
int32_t kl_vslot(kl_ctx *c, kernel *k, ir_value v, const char *name) {
  ir_dim dims[KL_MAXR];
  int r = kl_vshape(c, v, dims);
  int32_t s = k_buf(k, kl_vdtype(c, v), r < 0 ? 1 : kl_elems(c, kl_numel(c, r, dims)), false, name);
  kl_bind(c, k, s, kl_value_buf(c, v));
  return s;
}

/* A written kernel slot of `elems` elements bound to program buffer b. */
int32_t kl_wslot(kl_ctx *c, kernel *k, nn_dtype dt, ir_dim elems, kp_bufid b, const char *name) {
  int32_t s = k_buf(k, dt, kl_elems(c, elems), true, name);
  kl_bind(c, k, s, b);
  return s;
}

/* Compute dtype for float math in dtype dt. */
nn_dtype kl_compute_dt(nn_dtype dt) { return dt == NN_DT_F16 || dt == NN_DT_BF16 ? NN_DT_F32 : dt; }

/* The lowest value of dt (-inf for floats), or the highest. */
kx_id kl_extreme(kernel *k, nn_dtype dt, bool highest) {
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
int kl_nest(kl_ctx *c, kernel *k, int rank, const ir_dim *dims, kx_id *iv, bool parallel,
            bool vector, unsigned extra) {
  int last = -1, first = -1, nl = 0;
  for (int i = 0; i < rank; i++)
    if (!kl_dis(c, dims[i], 1)) {
      last = i;
      if (first < 0) first = i;
    }
  for (int i = 0; i < rank; i++) {
    if (kl_dis(c, dims[i], 1)) {
      iv[i] = k_i64(k, 0);
      continue;
    }
    unsigned f = extra;
    if (i == first && parallel) f |= KS_PARALLEL;
    if (i == last && vector) f |= KS_VECTOR;
    iv[i] = k_varref(k, k_for_begin(k, k_i64(k, 0), kl_x(c, k, dims[i]), f));
    nl++;
  }
  return nl;
}

void kl_nest_end(kernel *k, int nl) {
  while (nl-- > 0) k_for_end(k);
}

/* sum iv[i] * st[i] */
kx_id kl_lin(kl_ctx *c, kernel *k, int rank, const kx_id *iv, const ir_dim *st) {
  kx_id e = k_i64(k, 0);
  for (int i = 0; i < rank; i++)
    e = k_bin(k, KX_ADD, e, k_bin(k, KX_MUL, iv[i], kl_x(c, k, st[i])));
  return e;
}

/* Strides of an input of shape (r, d) broadcast to an output of rank R:
 * right-aligned, 0 where the input has no dim or a dim known to be 1 that
 * the output does not have (shape inference resolved broadcasting, so a
 * symbolic input dim equals the output's). */
void kl_bstrides(kl_ctx *c, int r, const ir_dim *d, int R, const ir_dim *od, ir_dim *st) {
  ir_dim cs[KL_MAXR];
  kl_cstrides(c, r, d, cs);
  for (int i = 0; i < R; i++) {
    int j = i - (R - r);
    st[i] = j < 0 || (kl_dis(c, d[j], 1) && !kl_dis(c, od[i], 1)) ? kl_d(c, 0) : cs[j];
  }
}

/* ---- run-time checks --------------------------------------------------------- */

/* How the checked tensor is named in a failure: the graph input it is, the
 * name the source gave it, or "index". */
static const char *value_name(kl_ctx *c, ir_value v) {
  const ir_graph *g = c->g;
  for (int i = 0; i < g->inputs.len; i++)
    if (g->inputs.data[i] == v) return g->input_names.data[i];
  const char *n = v >= 0 && v < g->values.len ? g->values.data[v].name : NULL;
  return n && *n ? n : "index";
}

void kl_check(kl_ctx *c, kernel *k, kx_id ok, kx_id val, kx_id size, kp_check_kind kind,
              ir_value what, int32_t dim) {
  if (!c->checks) return;
  kp_program *p = c->p;
  if (p->status_buf < 0)
    p->status_buf = kl_add_buf(p, KP_BUF_STATUS, NN_DT_I64, ir_dim_const(c->g, KP_STATUS_WORDS));
  if (k->status_slot < 0) {
    k->status_slot = k_buf(k, NN_DT_I64, KP_STATUS_WORDS, true, "status");
    kl_bind(c, k, k->status_slot, p->status_buf);
  }
  const ir_node *n = kl_cur(c);
  kp_check ck = {.kind = kind,
                 .op = ir_ops[n->op].name,
                 .what = value_name(c, what),
                 .dim = dim,
                 .loc = n->loc,
                 .scope = n->scope ? n->scope : ""};
  int32_t id = 0;
  while (id < p->checks.len) {
    const kp_check *o = &p->checks.data[id];
    if (o->kind == ck.kind && o->dim == ck.dim && !strcmp(o->op, ck.op) &&
        !strcmp(o->what, ck.what) && !strcmp(o->scope, ck.scope) && o->loc.line == ck.loc.line &&
        o->loc.col == ck.loc.col &&
        (o->loc.file == ck.loc.file ||
         (o->loc.file && ck.loc.file && !strcmp(o->loc.file, ck.loc.file))))
      break;
    id++;
  }
  if (id == p->checks.len) NN_PUSH(p->arena, p->checks, ck);
  k_check(k, ok, val, size, k->status_slot, id);
}

kx_id kl_index(kl_ctx *c, kernel *k, kx_id e, ir_dim n, bool wrap, ir_value what, int32_t dim) {
  kx_id size = kl_x(c, k, n), zero = k_i64(k, 0);
  /* a variable: the value is read once (the check and the index share it) */
  if (k->exprs.data[e].op != KX_VAR) e = k_hoist(k, e);
  kx_id lo = wrap ? k_bin(k, KX_SUB, zero, size) : zero;
  kx_id ok = k_bin(k, KX_AND, k_bin(k, KX_GE, e, lo), k_bin(k, KX_LT, e, size));
  kl_check(c, k, ok, e, size, wrap ? KP_CHECK_INDEX_WRAP : KP_CHECK_INDEX, what, dim);
  if (wrap) e = k_select(k, k_bin(k, KX_LT, e, zero), k_bin(k, KX_ADD, e, size), e);
  return kl_clampd(c, k, e, 0, kl_dis(c, n, 0) ? kl_d(c, 0) : kl_daddi(c, n, -1));
}

/* e clamped into [lo, hi]. */
kx_id kl_clampd(kl_ctx *c, kernel *k, kx_id e, int64_t lo, ir_dim hi) {
  kx_id lx = k_i64(k, lo);
  return k_bin(k, KX_MIN, k_bin(k, KX_MAX, e, lx), kl_x(c, k, hi));
}
