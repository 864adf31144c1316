/* schedule.c — from a shaped graph to a kp_program: storage, then kernels.
 *
 * Storage. Every tensor value gets a program buffer (services.c makes
 * them as they are asked for):
 *  - graph inputs read the caller's memory (KP_BUF_INPUT);
 *  - weights are copied, contiguous, into one blob with every part 64-byte
 *    aligned (KP_BUF_WEIGHT); so are scalar constants a kernel reads;
 *  - view-class ops (view, reshape, flatten, squeeze, unsqueeze) and
 *    eval-mode identities alias their input's buffer: all buffers are
 *    contiguous row-major, so a view is the same bytes under another shape;
 *  - every other result gets its own workspace buffer (KP_BUF_WORKSPACE).
 *    Offsets are provisional (one region per buffer) until the steps are
 *    complete; then kl_memplan (memplan.c) packs the buffers whose live
 *    ranges don't meet into shared bytes of one arena.
 *  - a workspace buffer holding a graph output becomes that output
 *    (KP_BUF_OUTPUT), so the producing kernel writes straight into the
 *    caller's memory; outputs that alias an input, a weight or another
 *    output get a copy kernel instead.
 * Kernels. Nodes are lowered in program order through the per-op table
 * (each ops.def row names its lowering: kl_lower_<name>); a fused group is
 * lowered whole by fuse.c. The structural lowerings are here: `on_use`
 * (nothing at the node: constants and weights are stored where they are
 * read, lists read by their consumers, chunk/split/unbind written per
 * piece where the list is unpacked: `list`), `alias` (views and
 * identities), `removed`. Every node
 * that cannot be lowered is reported, up to a limit, before giving up.
 */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

/* ---- the table ------------------------------------------------------------- */

/* Every op's lowering, as its ops.def row names it: kl_lower_<lower>. A
 * row may name `none` while an op is being added: the op is then reported
 * as not supported, and tests/unit/test_optable.c fails. */
#define kl_lower_none NULL
static const kl_lower_fn lowerings[NN_OP_COUNT] = {
#define OP(id, name, nin, nout, fusion, flags, shape, lower, doc) [NN_OP_##id] = kl_lower_##lower,
#include "../ir/ops.def"
#undef OP
};
#undef kl_lower_none

kl_lower_fn kl_lowering(ir_op op) { return op >= 0 && op < NN_OP_COUNT ? lowerings[op] : NULL; }

int kl_result(kl_ctx *c, int r) {
  if (r > 0) return 0;
  if (r == 0)
    return kl_fail(c, "code generation for '%s' is not supported yet", ir_ops[kl_cur(c)->op].name);
  return -1;
}

/* Lowers node n (c->node) through its row; an op whose results are not
 * tensors or numbers has no kernel form (but the structural ones). */
static int lower_by_table(kl_ctx *c, ir_nodeid n, const kl_epilogue *ep) {
  const ir_node *node = ir_node_get(c->g, n);
  kl_lower_fn fn = lowerings[node->op];
  bool structural = fn == kl_lower_on_use || fn == kl_lower_alias || fn == kl_lower_list ||
                    fn == kl_lower_scalar;
  for (int i = 0; i < node->nout && !structural; i++) {
    ir_tkind t = ir_vtype(c->g, node->out[i])->kind;
    if (t != IR_T_TENSOR && t != IR_T_INT && t != IR_T_FLOAT && t != IR_T_BOOL) fn = NULL;
  }
  if (!fn) return kl_result(c, 0);
  return fn(c, n, ep);
}

int kl_lower_node(kl_ctx *c, ir_nodeid n) {
  ir_nodeid was = kl_set_node(c, n);
  int r = lower_by_table(c, n, NULL);
  kl_set_node(c, was);
  return r;
}

int kl_lower_node_ep(kl_ctx *c, ir_nodeid n, const kl_epilogue *ep) {
  NN_ASSERT(ir_ops[ir_node_get(c->g, n)->op].fusion == IR_FUSE_GEMM);
  ir_nodeid was = kl_set_node(c, n);
  int r = lower_by_table(c, n, ep);
  kl_set_node(c, was);
  return r;
}

/* ---- the structural lowerings ------------------------------------------------ */

int kl_lower_on_use(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  (void)c, (void)id, (void)ep;
  return 0;
}

int kl_lower_removed(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  (void)id, (void)ep;
  return kl_fail(c, "internal error: '%s' should have been removed before code generation",
                 ir_ops[kl_cur(c)->op].name);
}

int kl_lower_alias(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep);
  const ir_node *n = ir_node_get(c->g, id);
  c->vbuf[n->out[0]] = kl_value_buf(c, n->in[0]);
  return 0;
}

/* The op that produced a list value, when it is chunk/split/unbind. */
static ir_nodeid list_source(ir_graph *g, ir_value list) {
  ir_nodeid def = g->values.data[list].def;
  if (def < 0) return -1;
  ir_op op = ir_node_get(g, def)->op;
  return op == NN_OP_CHUNK || op == NN_OP_SPLIT || op == NN_OP_UNBIND ? def : -1;
}

/* list_unpack / list_get of a chunk, split or unbind: each piece written
 * into the element's own buffer. */
int kl_lower_list(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep);
  const ir_node *n = ir_node_get(c->g, id);
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
unsupported_list:
  return kl_fail(c, "this use of a list is not supported by code generation yet");
}

/* A copy kernel: dst[i] = src[i] (with a cast when dtypes differ). */
static void copy_kernel(kl_ctx *c, kp_bufid dst, kp_bufid src, ir_dim elems) {
  kernel *k = kl_kernel(c, "copy");
  const kp_buf *d = &c->p->bufs.data[dst], *s = &c->p->bufs.data[src];
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

/* needed[v]: a kernel reads value v, or it is a graph output. Walks the
 * program backwards: a node that becomes kernels reads all its operands
 * but lists of ints (sizes, dims: their values are in the result's type,
 * which is what lowerings read); a META node (numbers, lists) reads its
 * operands when its result is needed. */
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
      bool alias = lowerings[n->op] == kl_lower_alias;
      reads = !alias;
      if (alias && n->nin > 0) c->needed[n->in[0]] |= c->needed[n->out[0]];
    }
    for (int i = 0; reads && i < n->nin; i++) {
      const ir_type *t = ir_vtype(g, n->in[i]);
      bool int_list = t->kind == IR_T_LIST && t->elems && t->elems[0]->kind == IR_T_INT;
      if (!int_list || ir_ops[n->op].fusion == IR_FUSE_META) c->needed[n->in[i]] = true;
    }
  }
}

/* Graph outputs: write in place when possible, else copy. */
static void bind_outputs(kl_ctx *c) {
  kp_program *p = c->p;
  for (int j = 0; j < c->g->outputs.len; j++) {
    ir_value v = c->g->outputs.data[j];
    kp_bufid b = kl_value_buf(c, v);
    kp_buf *buf = &p->bufs.data[b];
    if (buf->kind == KP_BUF_WORKSPACE) {
      buf->kind = KP_BUF_OUTPUT;
      buf->index = j;
      continue;
    }
    kp_bufid out = kl_add_buf(p, KP_BUF_OUTPUT, buf->dtype, buf->elems_d);
    p->bufs.data[out].index = j;
    c->node = c->owner = c->g->values.data[v].def;
    copy_kernel(c, out, b, p->bufs.data[b].elems_d);
  }
}

static void io_of(kl_ctx *c, ir_value v, const char *name, kp_io *io) {
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
  kp_program *p = c->p;
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
      kp_sym sy = {.name = e->name, .dim = d, .lo = 1, .hi = INT64_MAX};
      for (int j = 0; j < g->sym_ranges.len; j++)
        if (!strcmp(g->sym_ranges.data[j].name, e->name)) {
          sy.lo = g->sym_ranges.data[j].lo;
          sy.hi = g->sym_ranges.data[j].hi;
        }
      NN_PUSH(p->arena, p->syms, sy);
    }
  }
  if (p->syms.len > 0)
    p->dims_buf = kl_add_buf(p, KP_BUF_DIMS, NN_DT_I64, ir_dim_const(g, p->syms.len));
}

/* Steps whose kernels have the same code — everything k_print shows but
 * the name: buffers with dtypes and sizes, loops, expressions, constants —
 * share one kernel, so the backend compiles it once (the repeated blocks of
 * resnet and densenet). Bindings stay per step. */
static void share_kernels(kp_program *p) {
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

kp_program *kl_schedule(ir_graph *g, nn_arena *arena, const tg_target *t, nn_diag *d) {
  return kl_schedule_ex(g, arena, t, NULL, d);
}

kp_program *kl_schedule_ex(ir_graph *g, nn_arena *arena, const tg_target *t, const kl_opts *o,
                           nn_diag *d) {
  kp_program *p = nn_alloc(arena, sizeof *p);
  p->arena = arena;
  p->g = g;
  p->target = t;
  p->status_buf = -1;
  kl_ctx c =
      {.p = p, .g = g, .d = d, .t = t, .node = -1, .owner = -1, .checks = !(o && o->no_checks)};
  c.vbuf = nn_alloc(arena, sizeof(kp_bufid) * (size_t)(g->values.len + 1));
  for (int i = 0; i < g->values.len; i++) c.vbuf[i] = -1;
  c.vdata = nn_alloc(arena, sizeof(void *) * (size_t)(g->values.len + 1));
  c.needed = nn_alloc(arena, sizeof(bool) * (size_t)(g->values.len + 1));
  mark_needed(&c);
  int errors0 = d->errors;

  collect_syms(&c);
  if (d->errors > errors0) return NULL;
  for (int i = 0; i < g->inputs.len; i++) {
    kp_io io;
    io_of(&c, g->inputs.data[i], g->input_names.data[i], &io);
    NN_PUSH(arena, p->inputs, io);
    ir_dim n = ir_dim_const(g, 1);
    for (int k = 0; k < io.rank; k++) n = ir_dim_mul(g, n, io.dims_d[k]);
    kp_bufid b = kl_add_buf(p, KP_BUF_INPUT, io.dtype, n);
    p->bufs.data[b].index = i;
    c.vbuf[g->inputs.data[i]] = b;
  }
  for (int k = 0; k < g->order.len; k++) {
    ir_nodeid id = g->order.data[k];
    int32_t grp = ir_node_get(g, id)->group, r;
    if (grp > 0) { /* a fused group (contiguous): lowered whole, here */
      int e = k + 1;
      while (e < g->order.len && ir_node_get(g, g->order.data[e])->group == grp) e++;
      c.node = c.owner = id;
      r = kl_lower_group(&c, &g->order.data[k], e - k);
      k = e - 1;
    } else {
      c.node = c.owner = id;
      r = lower_by_table(&c, id, NULL);
    }
    if (r < 0 && d->errors > errors0 + 20) break;
  }
  if (d->errors > errors0) return NULL;
  for (int j = 0; j < g->outputs.len; j++) {
    kp_io io;
    io_of(&c, g->outputs.data[j], nn_sprintf(arena, "output_%d", j), &io);
    NN_PUSH(arena, p->outputs, io);
  }
  bind_outputs(&c);
  /* Every slot of every kernel must be bound. */
  for (int i = 0; i < p->steps.len; i++) {
    kp_step *s = &p->steps.data[i];
    for (int k = 0; k < s->k->bufs.len; k++) NN_ASSERT(s->slots && s->slots[k] >= 0);
  }
  if (d->errors > errors0) return NULL;
  share_kernels(p);
  kl_memplan(p);
#ifndef NDEBUG
  if (kp_verify(p, d)) NN_ASSERT(!"the scheduled program verifies (kp_verify)");
#endif
  return p;
}
