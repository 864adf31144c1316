/* schedule.c — from a shaped graph to a be_program: storage, then kernels.
 *
 * Storage. Every tensor value gets a program buffer:
 *  - graph inputs read the caller's memory (BE_BUF_INPUT);
 *  - weights are copied, contiguous, into one blob with every part 64-byte
 *    aligned (BE_BUF_WEIGHT); so are scalar constants a kernel reads;
 *  - view-class ops (view, reshape, flatten, squeeze, unsqueeze) and
 *    eval-mode identities alias their input's buffer: all buffers are
 *    contiguous row-major, so a view is the same bytes under another shape;
 *  - every other result gets its own workspace buffer (BE_BUF_WORKSPACE).
 *    Offsets are provisional (one region per buffer) until the steps are
 *    complete; then be_memplan (memplan.c) packs the buffers whose live
 *    ranges don't meet into shared bytes of one arena.
 *  - a workspace buffer holding a graph output becomes that output
 *    (BE_BUF_OUTPUT), so the producing kernel writes straight into the
 *    caller's memory; outputs that alias an input, a weight or another
 *    output get a copy kernel instead.
 * Kernels. Nodes are lowered in program order through kl_lower_node
 * (kernel_gemm.c, then kernel_ops.c); list-producing ops (chunk, split,
 * unbind) are lowered per piece where their pieces are unpacked.
 */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

struct kl_ctx {
  be_program *p;      /* the program being built */
  ir_graph *g;        /* its graph */
  nn_diag *d;         /* where errors go */
  ir_nodeid node;     /* the node being lowered */
  be_bufid *vbuf;     /* program buffer of each value, -1 if none yet */
  const void **vdata; /* contiguous weight data by value, when made */
  bool *needed;       /* by value: some kernel (or a graph output) reads it */
  int nkernels;       /* kernels created so far (for unique names) */
  be_target target;   /* the backend the kernels are for */
};

/* ---- buffers ------------------------------------------------------------ */

static be_bufid add_buf_d(be_program *p, be_bufkind kind, nn_dtype dt, ir_dim elems) {
  int64_t n = -1;
  if (!ir_dim_is_const(p->g, elems, &n)) n = -1;
  be_buf b = {.kind = kind, .dtype = dt, .elems = n, .elems_d = elems, .index = -1};
  if (kind == BE_BUF_WORKSPACE && n >= 0) {
    b.offset = p->workspace_bytes;
    uint64_t bytes = (uint64_t)n * nn_dtype_size(dt);
    p->workspace_bytes += (bytes + 63) & ~(uint64_t)63;
  }
  NN_PUSH(p->arena, p->bufs, b);
  return p->bufs.len - 1;
}

static be_bufid add_buf(be_program *p, be_bufkind kind, nn_dtype dt, int64_t elems) {
  return add_buf_d(p, kind, dt, ir_dim_const(p->g, elems));
}

/* Appends bytes to the weights blob at a 64-byte boundary; returns the
 * offset. */
static uint64_t blob_append(be_program *p, const void *data, size_t n) {
  while (p->weights.len % 64) NN_PUSH(p->arena, p->weights, 0);
  uint64_t off = (uint64_t)p->weights.len;
  for (size_t i = 0; i < n; i++) NN_PUSH(p->arena, p->weights, ((const unsigned char *)data)[i]);
  return off;
}

be_bufid kl_const_buf(kl_ctx *c, nn_dtype dt, const void *data, int64_t elems) {
  be_bufid b = add_buf(c->p, BE_BUF_WEIGHT, dt, elems);
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
  for (int i = 0; i < c->g->guards.len; i++) {
    const ir_guard *g = &c->g->guards.data[i];
    if ((g->a == a && g->b == b) || (g->a == b && g->b == a)) return true;
  }
  return false;
}

be_bufid kl_scratch_d(kl_ctx *c, nn_dtype dt, ir_dim elems) {
  return add_buf_d(c->p, BE_BUF_WORKSPACE, dt, elems);
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
  int64_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= w->sizes[i];
  size_t es = nn_dtype_size(w->dtype);
  unsigned char *tmp = nn_alloc(c->p->arena, (size_t)n * es + 1);
  int64_t idx[64] = {0};
  for (int64_t e = 0; e < n; e++) {
    int64_t off = w->offset;
    for (int i = 0; i < w->rank && i < 64; i++) {
      int64_t stride = 1;
      if (w->strides)
        stride = w->strides[i];
      else
        for (int j = i + 1; j < w->rank; j++) stride *= w->sizes[j];
      off += idx[i] * stride;
    }
    if (w->data && off >= 0 && (uint64_t)(off + 1) * es <= w->nbytes)
      memcpy(tmp + (size_t)e * es, (const unsigned char *)w->data + (size_t)off * es, es);
    for (int i = w->rank - 1; i >= 0; i--) {
      if (++idx[i] < w->sizes[i]) break;
      idx[i] = 0;
    }
  }
  c->vdata[v] = tmp;
  return tmp;
}

static be_bufid weight_buf(kl_ctx *c, ir_value v, const ir_weight *w) {
  int64_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= w->sizes[i];
  return kl_const_buf(c, w->dtype, weight_contig(c, v, w), n);
}

/* A constant scalar as a one-element weight buffer. */
static be_bufid const_scalar_buf(kl_ctx *c, const ir_const *k) {
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

be_bufid kl_value_buf(kl_ctx *c, ir_value v) {
  if (c->vbuf[v] >= 0) return c->vbuf[v];
  const ir_type *t = ir_vtype(c->g, v);
  ir_nodeid def = c->g->values.data[v].def;
  const ir_node *n = def >= 0 ? ir_node_get(c->g, def) : NULL;
  be_bufid b = -1;
  if (n && n->op == NN_OP_CONSTANT) {
    b = const_scalar_buf(c, &n->c);
  } else if (n && n->op == NN_OP_WEIGHT) {
    b = weight_buf(c, v, &c->g->weights.data[n->weight]);
  } else if (t->kind == IR_T_TENSOR) {
    bool ok;
    ir_dim e = value_elems(c, v, &ok);
    if (ok) b = add_buf_d(c->p, BE_BUF_WORKSPACE, t->dtype, e);
  } else if (t->kind == IR_T_INT || t->kind == IR_T_BOOL) {
    b = add_buf(c->p, BE_BUF_WORKSPACE, NN_DT_I64, 1);
  } else if (t->kind == IR_T_FLOAT) {
    b = add_buf(c->p, BE_BUF_WORKSPACE, NN_DT_F64, 1);
  }
  if (b < 0) {
    nn_error(c->d, n ? n->loc : (nn_loc){0}, "no storage for a value of this type");
    b = add_buf(c->p, BE_BUF_WORKSPACE, NN_DT_U8, 1);
  }
  c->vbuf[v] = b;
  return b;
}

be_bufid kl_scratch(kl_ctx *c, nn_dtype dt, int64_t elems) {
  return add_buf(c->p, BE_BUF_WORKSPACE, dt, elems);
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
be_target kl_target(kl_ctx *c) { return c->target; }

/* ---- kernels ------------------------------------------------------------ */

kernel *kl_kernel(kl_ctx *c, const char *what) {
  kernel *k = k_new(c->p->arena, nn_sprintf(c->p->arena, "k%d_%s", c->nkernels++, what));
  k->loc = c->node >= 0 ? ir_node_get(c->g, c->node)->loc : (nn_loc){0};
  be_step s = {.k = k, .slots = NULL, .node = c->node};
  NN_PUSH(c->p->arena, c->p->steps, s);
  return k;
}

void kl_bind(kl_ctx *c, kernel *k, int32_t slot, be_bufid b) {
  be_step *s = NULL;
  for (int i = c->p->steps.len - 1; i >= 0 && !s; i--)
    if (c->p->steps.data[i].k == k) s = &c->p->steps.data[i];
  NN_ASSERT(s && slot >= 0 && slot < k->bufs.len);
  if (!s->slots) {
    s->slots = nn_alloc(c->p->arena, sizeof(be_bufid) * 64);
    for (int i = 0; i < 64; i++) s->slots[i] = -1;
  }
  NN_ASSERT(slot < 64);
  s->slots[slot] = b;
}

/* A copy kernel: dst[i] = src[i] (with a cast when dtypes differ). */
static void copy_kernel(kl_ctx *c, be_bufid dst, be_bufid src, ir_dim elems) {
  kernel *k = kl_kernel(c, "copy");
  const be_buf *d = &c->p->bufs.data[dst], *s = &c->p->bufs.data[src];
  int64_t n;
  if (!ir_dim_is_const(c->g, elems, &n)) n = -1;
  int32_t o = k_buf(k, d->dtype, n, true, "out");
  int32_t x = k_buf(k, s->dtype, n, false, "x");
  int32_t i = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, elems), KS_PARALLEL | KS_VECTOR);
  k_store(k, o, k_varref(k, i), k_cast(k, d->dtype, k_load(k, x, k_varref(k, i))));
  k_for_end(k);
  kl_bind(c, k, o, dst);
  kl_bind(c, k, x, src);
}

/* The op that produced a list value, when it is chunk/split/unbind. */
static ir_nodeid list_source(ir_graph *g, ir_value list) {
  ir_nodeid def = g->values.data[list].def;
  if (def < 0) return -1;
  ir_op op = ir_node_get(g, def)->op;
  return op == NN_OP_CHUNK || op == NN_OP_SPLIT || op == NN_OP_UNBIND ? def : -1;
}

static bool is_alias_op(const ir_node *n) {
  return ir_ops[n->op].fusion == IR_FUSE_VIEW || (ir_ops[n->op].flags & IR_IDENTITY);
}

int kl_lower_node(kl_ctx *c, ir_nodeid n) {
  int r = kl_lower_gemm(c, n);
  if (r == 0) r = kl_lower_elementwise(c, n);
  if (r == 0) {
    const ir_node *node = ir_node_get(c->g, n);
    nn_error(c->d, node->loc, "code generation for '%s' is not supported yet",
             ir_ops[node->op].name);
    return -1;
  }
  return r < 0 ? -1 : 0;
}

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
  if (ir_value_const(c->g, n->in[j], &cv)) {
    if (cv->kind == IR_C_FLOAT) return k_const_f(k, NN_DT_F64, cv->f);
    if (cv->kind == IR_C_INT || cv->kind == IR_C_BOOL) return k_i64(k, cv->i);
    return -1;
  }
  const ir_type *t = ir_vtype(c->g, n->in[j]);
  nn_dtype dt = scalar_dtype(t);
  if (dt == NN_DT_UNKNOWN || (t->kind == IR_T_TENSOR && t->rank != 0)) return -1;
  int32_t slot = k_buf(k, dt, 1, false, "x");
  kl_bind(c, k, slot, kl_value_buf(c, n->in[j]));
  return k_load(k, slot, k_i64(k, 0));
}

/* Lowers a number-valued META node whose value depends on symbolic dims:
 * out[0] = its value. Returns 0, or 1 when the op has no such form. */
static int lower_meta_scalar(kl_ctx *c, ir_nodeid id) {
  const ir_node *n = ir_node_get(c->g, id);
  if (n->nout != 1) return 1;
  const ir_type *rt = ir_vtype(c->g, n->out[0]);
  nn_dtype odt = scalar_dtype(rt);
  if (odt == NN_DT_UNKNOWN || (rt->kind == IR_T_TENSOR && rt->rank != 0)) return 1;
  kernel *k = kl_kernel(c, ir_ops[n->op].name);
  kx_id v = -1;
  switch (n->op) {
  case NN_OP_SIZE:
  case NN_OP_NUMEL: {
    const ir_type *xt = ir_vtype(c->g, n->in[0]);
    if (xt->kind != IR_T_TENSOR || xt->rank < 0) return 1;
    ir_dim d = ir_dim_const(c->g, 1);
    if (n->op == NN_OP_NUMEL) {
      for (int i = 0; i < xt->rank; i++) d = ir_dim_mul(c->g, d, xt->dims[i]);
    } else {
      const ir_const *cv;
      if (!ir_value_const(c->g, n->in[1], &cv) || cv->kind != IR_C_INT) return 1;
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

/* needed[v]: a kernel reads value v, or it is a graph output. Walks the
 * program backwards: a node that becomes kernels reads all its operands; a
 * META node (numbers, lists) reads its operands when its result is needed. */
static void mark_needed(kl_ctx *c) {
  ir_graph *g = c->g;
  for (int j = 0; j < g->outputs.len; j++) c->needed[g->outputs.data[j]] = true;
  for (int k = g->order.len - 1; k >= 0; k--) {
    const ir_node *n = ir_node_get(g, g->order.data[k]);
    if (n->flags & IR_NF_DEAD) continue;
    bool reads;
    if (ir_ops[n->op].fusion == IR_FUSE_META) {
      reads = false;
      for (int i = 0; i < n->nout; i++) reads |= c->needed[n->out[i]];
    } else {
      reads = !is_alias_op(n);
      if (is_alias_op(n) && n->nin > 0) c->needed[n->in[0]] |= c->needed[n->out[0]];
    }
    for (int i = 0; reads && i < n->nin; i++) c->needed[n->in[i]] = true;
  }
}

static int lower_node(kl_ctx *c, ir_nodeid id) {
  ir_node *n = ir_node_get(c->g, id);
  c->node = id;
  if (n->op == NN_OP_CONSTANT || n->op == NN_OP_WEIGHT) return 0; /* on use */
  if (is_alias_op(n)) {
    c->vbuf[n->out[0]] = kl_value_buf(c, n->in[0]);
    return 0;
  }
  if (n->op == NN_OP_LIST_UNPACK || n->op == NN_OP_LIST_GET) {
    ir_nodeid src = list_source(c->g, n->in[0]);
    if (src < 0) goto unsupported_list;
    for (int i = 0; i < n->nout; i++) {
      int piece = i;
      if (n->op == NN_OP_LIST_GET) {
        const ir_const *k;
        if (!ir_value_const(c->g, n->in[1], &k) || k->kind != IR_C_INT) goto unsupported_list;
        piece = (int)k->i;
      }
      if (kl_lower_piece(c, src, piece, kl_value_buf(c, n->out[i])) < 0) return -1;
    }
    return 0;
  }
  if (ir_ops[n->op].fusion == IR_FUSE_META) {
    /* Lists and tuples are read by their consumers; a number that shape
     * inference could not fold (it depends on a symbolic dim) is computed
     * by a one-element kernel when some kernel reads it. */
    if (n->op == NN_OP_LIST_CONSTRUCT || n->op == NN_OP_TUPLE_CONSTRUCT) return 0;
    if (n->op == NN_OP_CHUNK) return 0;
    if (n->nout == 1 && !c->needed[n->out[0]]) return 0;
    int r = lower_meta_scalar(c, id);
    if (r <= 0) return r;
    nn_error(c->d, n->loc,
             "'%s' computes a number from tensor data at run time; that is not supported yet",
             ir_ops[n->op].name);
    return -1;
  }
  if (n->op == NN_OP_CHUNK || n->op == NN_OP_SPLIT || n->op == NN_OP_UNBIND) return 0;
  return kl_lower_node(c, id);
unsupported_list:
  nn_error(c->d, n->loc, "this use of a list is not supported by code generation yet");
  return -1;
}

/* Graph outputs: write in place when possible, else copy. */
static void bind_outputs(kl_ctx *c) {
  be_program *p = c->p;
  for (int j = 0; j < c->g->outputs.len; j++) {
    ir_value v = c->g->outputs.data[j];
    be_bufid b = kl_value_buf(c, v);
    be_buf *buf = &p->bufs.data[b];
    if (buf->kind == BE_BUF_WORKSPACE) {
      buf->kind = BE_BUF_OUTPUT;
      buf->index = j;
      continue;
    }
    be_bufid out = add_buf_d(p, BE_BUF_OUTPUT, buf->dtype, buf->elems_d);
    p->bufs.data[out].index = j;
    c->node = c->g->values.data[v].def;
    copy_kernel(c, out, b, p->bufs.data[b].elems_d);
  }
}

static void io_of(kl_ctx *c, ir_value v, const char *name, be_io *io) {
  const ir_type *t = ir_vtype(c->g, v);
  io->name = name;
  io->dtype = t->kind == IR_T_TENSOR  ? t->dtype
              : t->kind == IR_T_FLOAT ? NN_DT_F64
              : t->kind == IR_T_BOOL  ? NN_DT_BOOL
                                      : NN_DT_I64;
  io->rank = t->kind == IR_T_TENSOR ? t->rank : 0;
  int64_t *dims = nn_alloc(c->p->arena, sizeof(int64_t) * (size_t)(io->rank + 1));
  ir_dim *dd = nn_alloc(c->p->arena, sizeof(ir_dim) * (size_t)(io->rank + 1));
  if (io->rank > 0 && kl_shape_d(c, v, dd) >= 0)
    for (int i = 0; i < io->rank; i++)
      if (!ir_dim_is_const(c->g, dd[i], &dims[i])) dims[i] = -1;
  io->dims = dims;
  io->dims_d = dd;
}

/* The symbols of the inputs' dims, in order of first appearance, with their
 * declared ranges; the dims buffer when there is any. An input dim that is
 * neither a number nor a plain symbol is refused (--input only writes
 * those). */
static void collect_syms(kl_ctx *c) {
  be_program *p = c->p;
  ir_graph *g = c->g;
  p->dims_buf = -1;
  for (int i = 0; i < g->inputs.len; i++) {
    const ir_type *t = ir_vtype(g, g->inputs.data[i]);
    for (int k = 0; t->kind == IR_T_TENSOR && k < t->rank; k++) {
      ir_dim d = t->dims[k];
      if (ir_dim_is_const(g, d, NULL)) continue;
      const ir_dimexpr *e = ir_dim_get(g, d);
      if (e->kind != IR_DK_SYM) {
        nn_buf txt = {0};
        ir_dim_print(&txt, g, d);
        nn_error(c->d, (nn_loc){0},
                 "input '%s': dim %d is '%s'; an input dim must be a number or a name",
                 g->input_names.data[i], k, txt.data ? txt.data : "?");
        nn_buf_free(&txt);
        continue;
      }
      bool seen = false;
      for (int j = 0; j < p->syms.len; j++) seen |= p->syms.data[j].dim == d;
      if (seen) continue;
      be_sym sy = {.name = e->name, .dim = d, .lo = 1, .hi = INT64_MAX};
      for (int j = 0; j < g->sym_ranges.len; j++)
        if (!strcmp(g->sym_ranges.data[j].name, e->name)) {
          sy.lo = g->sym_ranges.data[j].lo;
          sy.hi = g->sym_ranges.data[j].hi;
        }
      NN_PUSH(p->arena, p->syms, sy);
    }
  }
  if (p->syms.len > 0) p->dims_buf = add_buf(p, BE_BUF_DIMS, NN_DT_I64, p->syms.len);
}

/* Steps whose kernels have the same code — everything k_print shows but
 * the name: buffers with dtypes and sizes, loops, expressions, constants —
 * share one kernel, so the backend compiles it once (the repeated blocks of
 * resnet and densenet). Bindings stay per step. */
static void share_kernels(be_program *p) {
  int cap = 16;
  while (cap < 2 * p->steps.len) cap *= 2;
  const char **keys = nn_alloc(p->arena, sizeof(char *) * (size_t)cap);
  kernel **vals = nn_alloc(p->arena, sizeof(kernel *) * (size_t)cap);
  nn_buf b = {0};
  for (int i = 0; i < p->steps.len; i++) {
    b.len = 0;
    k_print(&b, p->steps.data[i].k);
    const char *sig = b.data ? strchr(b.data, '(') : NULL;
    if (!sig) continue;
    uint64_t h = 1469598103934665603ull;
    for (const char *c = sig; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    uint64_t j = h & (uint64_t)(cap - 1);
    while (keys[j] && strcmp(keys[j], sig)) j = (j + 1) & (uint64_t)(cap - 1);
    if (keys[j]) {
      p->steps.data[i].k = vals[j];
    } else {
      keys[j] = nn_strdup(p->arena, sig);
      vals[j] = p->steps.data[i].k;
    }
  }
  nn_buf_free(&b);
}

be_program *be_schedule(ir_graph *g, nn_arena *arena, nn_diag *d) {
  return be_schedule_for(g, arena, BE_TARGET_CPU, d);
}

be_program *be_schedule_for(ir_graph *g, nn_arena *arena, be_target target, nn_diag *d) {
  be_program *p = nn_alloc(arena, sizeof *p);
  p->arena = arena;
  p->g = g;
  kl_ctx c = {.p = p, .g = g, .d = d, .node = -1, .target = target};
  c.vbuf = nn_alloc(arena, sizeof(be_bufid) * (size_t)(g->values.len + 1));
  for (int i = 0; i < g->values.len; i++) c.vbuf[i] = -1;
  c.vdata = nn_alloc(arena, sizeof(void *) * (size_t)(g->values.len + 1));
  c.needed = nn_alloc(arena, sizeof(bool) * (size_t)(g->values.len + 1));
  mark_needed(&c);
  int errors0 = d->errors;

  collect_syms(&c);
  if (d->errors > errors0) return NULL;
  for (int i = 0; i < g->inputs.len; i++) {
    be_io io;
    io_of(&c, g->inputs.data[i], g->input_names.data[i], &io);
    NN_PUSH(arena, p->inputs, io);
    ir_dim n = ir_dim_const(g, 1);
    for (int k = 0; k < io.rank; k++) n = ir_dim_mul(g, n, io.dims_d[k]);
    be_bufid b = add_buf_d(p, BE_BUF_INPUT, io.dtype, n);
    p->bufs.data[b].index = i;
    c.vbuf[g->inputs.data[i]] = b;
  }
  for (int k = 0; k < g->order.len; k++) {
    ir_nodeid id = g->order.data[k];
    int32_t grp = ir_node_get(g, id)->group, r;
    if (grp > 0) { /* a fused group (contiguous): lowered whole, here */
      int e = k + 1;
      while (e < g->order.len && ir_node_get(g, g->order.data[e])->group == grp) e++;
      c.node = id;
      r = kl_lower_group(&c, &g->order.data[k], e - k);
      k = e - 1;
    } else {
      r = lower_node(&c, id);
    }
    if (r < 0 && d->errors > errors0 + 20) break;
  }
  if (d->errors > errors0) return NULL;
  for (int j = 0; j < g->outputs.len; j++) {
    be_io io;
    io_of(&c, g->outputs.data[j], nn_sprintf(arena, "output_%d", j), &io);
    NN_PUSH(arena, p->outputs, io);
  }
  bind_outputs(&c);
  /* Every slot of every kernel must be bound. */
  for (int i = 0; i < p->steps.len; i++) {
    be_step *s = &p->steps.data[i];
    for (int k = 0; k < s->k->bufs.len; k++) NN_ASSERT(s->slots && s->slots[k] >= 0);
  }
  if (d->errors > errors0) return NULL;
  share_kernels(p);
  be_memplan(p);
  return p;
}

/* ---- printing and interpretation --------------------------------------- */

static const char *kind_name(be_bufkind k) {
  switch (k) {
  case BE_BUF_INPUT: return "input";
  case BE_BUF_OUTPUT: return "output";
  case BE_BUF_WEIGHT: return "weight";
  case BE_BUF_WORKSPACE: return "workspace";
  case BE_BUF_DIMS: return "dims";
  }
  return "?";
}

void be_program_print(nn_buf *b, const be_program *p) {
  nn_buf_printf(b, "program: %d buffers, %d kernels, workspace %llu bytes, weights %d bytes\n",
                p->bufs.len, p->steps.len, (unsigned long long)p->workspace_bytes, p->weights.len);
  for (int i = 0; i < p->bufs.len; i++) {
    const be_buf *x = &p->bufs.data[i];
    nn_buf_printf(b, "  b%d: %s", i, kind_name(x->kind));
    if (x->kind == BE_BUF_INPUT || x->kind == BE_BUF_OUTPUT)
      nn_buf_printf(b, " %d", x->index);
    else if (x->kind == BE_BUF_WEIGHT || (x->kind == BE_BUF_WORKSPACE && !p->dynamic))
      nn_buf_printf(b, " +%llu", (unsigned long long)x->offset);
    nn_buf_printf(b, " %s[", nn_dtype_name(x->dtype));
    if (x->elems >= 0)
      nn_buf_printf(b, "%lld", (long long)x->elems);
    else
      ir_dim_print(b, p->g, x->elems_d);
    nn_buf_printf(b, "]\n");
  }
  for (int i = 0; i < p->steps.len; i++) {
    const be_step *s = &p->steps.data[i];
    nn_buf_printf(b, "step %d:", i);
    for (int k = 0; k < s->k->bufs.len; k++) nn_buf_printf(b, " b%d", s->slots[k]);
    nn_buf_printf(b, "\n");
    k_print(b, s->k);
  }
  if (p->dynamic) {
    nn_buf_printf(b, "memory: planned at run time (symbols:");
    for (int i = 0; i < p->syms.len; i++) nn_buf_printf(b, " %s", p->syms.data[i].name);
    nn_buf_printf(b, ")\n");
    return;
  }
  nn_buf_printf(b, "memory: arena %llu bytes, lower bound %llu, naive %llu\n",
                (unsigned long long)p->workspace_bytes,
                (unsigned long long)p->arena_lower_bound_bytes, (unsigned long long)p->naive_bytes);
}

int64_t be_dim_eval(const be_program *p, ir_dim d, const int64_t *dims, bool *ok) {
  int64_t v;
  if (ir_dim_is_const(p->g, d, &v)) return v;
  const ir_dimexpr *e = ir_dim_get(p->g, d);
  if (e->kind == IR_DK_SYM) {
    for (int i = 0; i < p->syms.len; i++)
      if (p->syms.data[i].dim == d) return dims[i];
    *ok = false;
    return 0;
  }
  if (e->kind == IR_DK_UNKNOWN || e->kind == IR_DK_CONST) {
    *ok = false;
    return 0;
  }
  int64_t x = be_dim_eval(p, e->a, dims, ok), y = be_dim_eval(p, e->b, dims, ok), r;
  switch (e->kind) {
  case IR_DK_ADD: return (int64_t)((uint64_t)x + (uint64_t)y);
  case IR_DK_MUL: return (int64_t)((uint64_t)x * (uint64_t)y);
  case IR_DK_DIV: return y == 0 || (x == INT64_MIN && y == -1) ? 0 : x / y;
  case IR_DK_FLOORDIV:
    if (y == 0 || (x == INT64_MIN && y == -1)) return 0;
    r = x / y;
    return (x % y != 0 && ((x < 0) != (y < 0))) ? r - 1 : r;
  case IR_DK_MOD:
    if (y == 0 || y == -1) return 0;
    r = x % y;
    return r != 0 && ((r < 0) != (y < 0)) ? r + y : r;
  default: *ok = false; return 0;
  }
}

/* Interprets p with workspace ws, buffer byte offsets offs (by buffer id)
 * and element counts elems (by buffer id). */
static int interp_steps(const be_program *p, unsigned char *ws, const uint64_t *offs,
                        const int64_t *elems, const int64_t *dims, void *const *inputs,
                        void *const *outputs) {
  int rc = 0;
  for (int i = 0; i < p->steps.len && !rc; i++) {
    const be_step *s = &p->steps.data[i];
    void *slots[64];
    int64_t sizes[64];
    for (int k = 0; k < s->k->bufs.len; k++) {
      const be_buf *b = &p->bufs.data[s->slots[k]];
      sizes[k] = elems[s->slots[k]];
      switch (b->kind) {
      case BE_BUF_INPUT: slots[k] = inputs[b->index]; break;
      case BE_BUF_OUTPUT: slots[k] = outputs[b->index]; break;
      case BE_BUF_WEIGHT: slots[k] = (void *)(p->weights.data + b->offset); break;
      case BE_BUF_WORKSPACE: slots[k] = ws + offs[s->slots[k]]; break;
      case BE_BUF_DIMS: slots[k] = (void *)dims; break;
      }
    }
    rc = k_interp_sized(s->k, slots, sizes);
  }
  return rc;
}

int be_interp_dims(const be_program *p, const int64_t *dims, void *const *inputs,
                   void *const *outputs) {
  int nb = p->bufs.len, n = p->dynblocks.len;
  int64_t *elems = calloc((size_t)nb + 1, sizeof *elems);
  uint64_t *offs = calloc((size_t)nb + 1, sizeof *offs);
  mp_block *blk = calloc((size_t)n + 1, sizeof *blk);
  int rc = -1;
  unsigned char *ws = NULL;
  if (!elems || !offs || !blk) goto out;
  bool ok = true;
  for (int i = 0; i < nb; i++) {
    const be_buf *b = &p->bufs.data[i];
    elems[i] = b->elems >= 0 ? b->elems : be_dim_eval(p, b->elems_d, dims, &ok);
    if (elems[i] < 0) ok = false;
    offs[i] = b->offset;
  }
  if (!ok) goto out;
  uint64_t arena = p->workspace_bytes;
  if (p->dynamic) {
    for (int j = 0; j < n; j++) {
      const be_buf *b = &p->bufs.data[p->dynblocks.data[j].buf];
      uint64_t bytes = (uint64_t)elems[p->dynblocks.data[j].buf] * nn_dtype_size(b->dtype);
      blk[j] = (mp_block){.size = (bytes + 63) & ~(uint64_t)63,
                          .first = p->dynblocks.data[j].first,
                          .last = p->dynblocks.data[j].last};
    }
    arena = mp_assign(blk, n);
    for (int j = 0; j < n; j++) offs[p->dynblocks.data[j].buf] = blk[j].offset;
  }
  ws = calloc(1, arena + 64);
  if (!ws) goto out;
  rc = interp_steps(p, ws, offs, elems, dims, inputs, outputs);
out:
  free(ws);
  free(blk);
  free(offs);
  free(elems);
  return rc;
}

int be_interp(const be_program *p, void *const *inputs, void *const *outputs) {
  if (p->dynamic || p->syms.len > 0) return -1; /* needs dim values */
  return be_interp_dims(p, NULL, inputs, outputs);
}
