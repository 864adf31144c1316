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
  be_program *p;    /* the program being built */
  ir_graph *g;      /* its graph */
  nn_diag *d;       /* where errors go */
  ir_nodeid node;   /* the node being lowered */
  be_bufid *vbuf;   /* program buffer of each value, -1 if none yet */
  const void **vdata; /* contiguous weight data by value, when made */
  int nkernels;     /* kernels created so far (for unique names) */
};

/* ---- buffers ------------------------------------------------------------ */

static be_bufid add_buf(be_program *p, be_bufkind kind, nn_dtype dt, int64_t elems) {
  be_buf b = {.kind = kind, .dtype = dt, .elems = elems, .index = -1};
  if (kind == BE_BUF_WORKSPACE) {
    b.offset = p->workspace_bytes;
    uint64_t bytes = (uint64_t)elems * nn_dtype_size(dt);
    p->workspace_bytes += (bytes + 63) & ~(uint64_t)63;
  }
  NN_PUSH(p->arena, p->bufs, b);
  return p->bufs.len - 1;
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
  const ir_type *t = ir_vtype(c->g, v);
  if (t->kind != IR_T_TENSOR || t->rank < 0 || t->rank > 16) {
    nn_error(c->d, ir_node_get(c->g, c->node)->loc,
             "code generation needs a tensor of known rank (value of type kind %d)", (int)t->kind);
    return -1;
  }
  for (int i = 0; i < t->rank; i++) {
    if (!ir_dim_is_const(c->g, t->dims[i], &dims[i])) {
      nn_error(c->d, ir_node_get(c->g, c->node)->loc,
               "code generation needs static shapes; dim %d of this value is symbolic", i);
      return -1;
    }
  }
  return t->rank;
}

/* Element count of a tensor value; an error (and *ok false) when it, or
 * its size in bytes, doesn't fit comfortably in int64 (2^62 bytes): every
 * index the kernels compute stays far from overflow. */
static int64_t value_elems(kl_ctx *c, ir_value v, bool *ok) {
  int64_t dims[16];
  int r = kl_shape(c, v, dims);
  *ok = r >= 0;
  int64_t n = 1, bytes;
  for (int i = 0; i < r && *ok; i++) *ok = !__builtin_mul_overflow(n, dims[i], &n);
  size_t es = nn_dtype_size(ir_vtype(c->g, v)->dtype);
  if (*ok && (__builtin_mul_overflow(n, (int64_t)(es ? es : 1), &bytes) ||
              bytes > ((int64_t)1 << 62))) *ok = false;
  if (!*ok && r >= 0)
    nn_error(c->d, ir_node_get(c->g, c->node)->loc,
             "a tensor of this shape is too large (more than 2^62 bytes)");
  return *ok ? n : 0;
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
      if (w->strides) stride = w->strides[i];
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
  case IR_C_INT: case IR_C_BOOL: {
    int64_t v = k->i;
    return kl_const_buf(c, k->kind == IR_C_BOOL ? NN_DT_I64 : NN_DT_I64, &v, 1);
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
    int64_t e = value_elems(c, v, &ok);
    if (ok) b = add_buf(c->p, BE_BUF_WORKSPACE, t->dtype, e);
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
static void copy_kernel(kl_ctx *c, be_bufid dst, be_bufid src, int64_t elems) {
  kernel *k = kl_kernel(c, "copy");
  const be_buf *d = &c->p->bufs.data[dst], *s = &c->p->bufs.data[src];
  int32_t o = k_buf(k, d->dtype, elems, true, "out");
  int32_t x = k_buf(k, s->dtype, elems, false, "x");
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, elems), KS_PARALLEL | KS_VECTOR);
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
    /* Lists and tuples are read by their consumers; scalars must have been
     * folded by shape inference. */
    if (n->op == NN_OP_LIST_CONSTRUCT || n->op == NN_OP_TUPLE_CONSTRUCT) return 0;
    if (n->op == NN_OP_NUM_TO_TENSOR || n->op == NN_OP_CHUNK) return 0;
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
    be_bufid out = add_buf(p, BE_BUF_OUTPUT, buf->dtype, buf->elems);
    p->bufs.data[out].index = j;
    c->node = c->g->values.data[v].def;
    copy_kernel(c, out, b, p->bufs.data[b].elems);
  }
}

static void io_of(kl_ctx *c, ir_value v, const char *name, be_io *io) {
  const ir_type *t = ir_vtype(c->g, v);
  io->name = name;
  io->dtype = t->kind == IR_T_TENSOR ? t->dtype
              : t->kind == IR_T_FLOAT ? NN_DT_F64
              : t->kind == IR_T_BOOL ? NN_DT_BOOL : NN_DT_I64;
  io->rank = t->kind == IR_T_TENSOR ? t->rank : 0;
  int64_t *dims = nn_alloc(c->p->arena, sizeof(int64_t) * (size_t)(io->rank + 1));
  if (io->rank > 0) kl_shape(c, v, dims);
  io->dims = dims;
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
  be_program *p = nn_alloc(arena, sizeof *p);
  p->arena = arena;
  p->g = g;
  kl_ctx c = {.p = p, .g = g, .d = d, .node = -1};
  c.vbuf = nn_alloc(arena, sizeof(be_bufid) * (size_t)(g->values.len + 1));
  for (int i = 0; i < g->values.len; i++) c.vbuf[i] = -1;
  c.vdata = nn_alloc(arena, sizeof(void *) * (size_t)(g->values.len + 1));
  int errors0 = d->errors;

  /* Generated code has static shapes for now: say so once, per input,
   * rather than at every op a symbolic dim reaches. */
  for (int i = 0; i < g->inputs.len; i++) {
    const ir_type *t = ir_vtype(g, g->inputs.data[i]);
    for (int k = 0; t->kind == IR_T_TENSOR && k < t->rank; k++) {
      int64_t v;
      if (ir_dim_is_const(g, t->dims[k], &v)) continue;
      nn_buf dim = {0};
      ir_dim_print(&dim, g, t->dims[k]);
      nn_error(d, (nn_loc){0},
               "input '%s': dim %d is symbolic (%s); code generation needs numbers for now "
               "(symbolic dims work with --emit=ir)", g->input_names.data[i], k, dim.data);
      nn_buf_free(&dim);
      break;
    }
  }
  if (d->errors > errors0) return NULL;
  for (int i = 0; i < g->inputs.len; i++) {
    be_io io;
    io_of(&c, g->inputs.data[i], g->input_names.data[i], &io);
    NN_PUSH(arena, p->inputs, io);
    be_bufid b = add_buf(p, BE_BUF_INPUT, io.dtype, 1);
    int64_t n = 1;
    for (int k = 0; k < io.rank; k++) n *= io.dims[k];
    p->bufs.data[b].elems = n;
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
    for (int k = 0; k < s->k->bufs.len; k++)
      NN_ASSERT(s->slots && s->slots[k] >= 0);
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
  }
  return "?";
}

void be_program_print(nn_buf *b, const be_program *p) {
  nn_buf_printf(b, "program: %d buffers, %d kernels, workspace %llu bytes, weights %d bytes\n",
                p->bufs.len, p->steps.len, (unsigned long long)p->workspace_bytes, p->weights.len);
  for (int i = 0; i < p->bufs.len; i++) {
    const be_buf *x = &p->bufs.data[i];
    nn_buf_printf(b, "  b%d: %s", i, kind_name(x->kind));
    if (x->kind == BE_BUF_INPUT || x->kind == BE_BUF_OUTPUT) nn_buf_printf(b, " %d", x->index);
    else nn_buf_printf(b, " +%llu", (unsigned long long)x->offset);
    nn_buf_printf(b, " %s[%lld]\n", nn_dtype_name(x->dtype), (long long)x->elems);
  }
  for (int i = 0; i < p->steps.len; i++) {
    const be_step *s = &p->steps.data[i];
    nn_buf_printf(b, "step %d:", i);
    for (int k = 0; k < s->k->bufs.len; k++) nn_buf_printf(b, " b%d", s->slots[k]);
    nn_buf_printf(b, "\n");
    k_print(b, s->k);
  }
  nn_buf_printf(b, "memory: arena %llu bytes, lower bound %llu, naive %llu\n",
                (unsigned long long)p->workspace_bytes,
                (unsigned long long)p->arena_lower_bound_bytes,
                (unsigned long long)p->naive_bytes);
}

int be_interp(const be_program *p, void *const *inputs, void *const *outputs) {
  unsigned char *ws = calloc(1, p->workspace_bytes + 64);
  if (!ws) return -1;
  int rc = 0;
  for (int i = 0; i < p->steps.len && !rc; i++) {
    const be_step *s = &p->steps.data[i];
    void *slots[64];
    for (int k = 0; k < s->k->bufs.len; k++) {
      const be_buf *b = &p->bufs.data[s->slots[k]];
      switch (b->kind) {
      case BE_BUF_INPUT: slots[k] = inputs[b->index]; break;
      case BE_BUF_OUTPUT: slots[k] = outputs[b->index]; break;
      case BE_BUF_WEIGHT: slots[k] = (void *)(p->weights.data + b->offset); break;
      case BE_BUF_WORKSPACE: slots[k] = ws + b->offset; break;
      }
    }
    rc = k_interp(s->k, slots);
  }
  free(ws);
  return rc;
}
