/* inspect_pt.c — `nncc inspect MODEL.pt [--input SPEC]... [--json]
 * [--dot FILE]`: what a TorchScript archive holds and what it computes.
 *
 * The archive part reads the file without compiling it: format and
 * version, likely producer, the module tree with tensor counts, the
 * forward() inputs, and every op the code calls with whether nncc supports
 * it. The layer part lowers the model and runs the passes up to shape
 * inference (canonicalize, shapes), then prints one row per node that
 * computes a tensor: the module path of the layer (the node's scope), the
 * IR op, its result type, the parameters it reads and its MACs and FLOPs,
 * with totals. The counting convention (docs/CLI.md):
 *
 *   - convolution, linear, mm, bmm, matmul, addmm, baddbmm: MACs are the
 *     multiply-adds of the product (output elements × reduction length);
 *     FLOPs are 2 × MACs, plus 1 per output element for a bias (addmm's
 *     and baddbmm's c);
 *   - elementwise and broadcasting ops: 1 FLOP per output element;
 *   - max/avg pooling: output elements × kernel window; adaptive pooling,
 *     batch_norm, reductions, softmax, other norms and opaque ops: 1 FLOP
 *     per element of their first operand;
 *   - views, index math (slice, cat, transpose, ...), constants: 0.
 *
 * Params of a row are the parameters (not buffers: a class's
 * __parameters__, or requires_grad in archives without class code) among
 * the node's weight operands, each counted at its first use; the total
 * counts every parameter of the module tree, as torch's
 * sum(p.numel() for p in model.parameters()) does.
 *
 * Without --input the inputs' shapes are inferred (every dim symbolic) and
 * MACs/FLOPs come out as expressions in those symbols; when the model
 * can't be lowered or its inputs can't be inferred, the layer part says so
 * in one line (pass --input to see the errors). --dot FILE runs the rest
 * of the pipeline (fold, cleanup, fuse) and writes the final graph in
 * Graphviz form (ir/dot.c). An argument ending in ".so" is a compiled
 * model, described by tools/inspect_so.c (as text, or with --json).
 */
#include "common/common.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/passes.h"
#include "inspect_pt.h"
#include "nncc_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_MODEL = 1, EXIT_USAGE = 2 };

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "nncc: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'nncc inspect --help' for usage)\n");
  return EXIT_USAGE;
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* ---- ops the code calls --------------------------------------------------- */

typedef struct op_count {
  const char *qualname; /* "aten::relu" */
  int count;            /* calls in the code */
  nn_loc first;         /* the first call */
} op_count;

typedef NN_VEC(op_count) op_counts;

static void count_call(nn_arena *a, op_counts *oc, const char *q, nn_loc loc) {
  for (int i = 0; i < oc->len; i++)
    if (!strcmp(oc->data[i].qualname, q)) {
      oc->data[i].count++;
      return;
    }
  op_count c = {q, 1, loc};
  NN_PUSH(a, *oc, c);
}

/* Dotted name of an attribute chain, or NULL. */
static const char *dotted(nn_arena *a, const fe_expr *e) {
  if (e->kind == FE_E_NAME) return e->u.name;
  if (e->kind != FE_E_ATTR) return NULL;
  const char *o = dotted(a, e->u.attr.obj);
  return o ? nn_sprintf(a, "%s.%s", o, e->u.attr.name) : NULL;
}

static void scan_expr(nn_arena *a, op_counts *oc, const fe_expr *e);

static void scan_exprs(nn_arena *a, op_counts *oc, fe_expr *const *v, int n) {
  for (int i = 0; i < n; i++)
    if (v[i]) scan_expr(a, oc, v[i]);
}

static void scan_expr(nn_arena *a, op_counts *oc, const fe_expr *e) {
  switch (e->kind) {
  case FE_E_CALL: {
    const char *q = dotted(a, e->u.call.fn);
    if (q && !strncmp(q, "torch.", 6) && !strchr(q + 6, '.') && strcmp(q, "torch.device"))
      count_call(a, oc, nn_sprintf(a, "aten::%s", q + 6), e->loc);
    else if (q && !strncmp(q, "ops.", 4)) {
      const char *dot = strchr(q + 4, '.');
      if (dot)
        count_call(a, oc, nn_sprintf(a, "%.*s::%s", (int)(dot - q - 4), q + 4, dot + 1), e->loc);
    } else if (q && (!strcmp(q, "int") || !strcmp(q, "float") || !strcmp(q, "bool")))
      count_call(a, oc,
                 !strcmp(q, "int")     ? "aten::Int"
                 : !strcmp(q, "float") ? "aten::Float"
                                       : "aten::Bool",
                 e->loc);
    scan_expr(a, oc, e->u.call.fn);
    scan_exprs(a, oc, e->u.call.args, e->u.call.nargs);
    scan_exprs(a, oc, e->u.call.kwargs, e->u.call.nkw);
    break;
  }
  case FE_E_ATTR: scan_expr(a, oc, e->u.attr.obj); break;
  case FE_E_SUBSCRIPT:
    scan_expr(a, oc, e->u.sub.obj);
    scan_exprs(a, oc, e->u.sub.idx, e->u.sub.nidx);
    break;
  case FE_E_LIST:
  case FE_E_TUPLE: scan_exprs(a, oc, e->u.seq.items, e->u.seq.n); break;
  case FE_E_UNARY: scan_expr(a, oc, e->u.unary.a); break;
  case FE_E_BINARY:
    scan_expr(a, oc, e->u.binary.a);
    scan_expr(a, oc, e->u.binary.b);
    break;
  case FE_E_TERNARY:
    scan_expr(a, oc, e->u.ternary.cond);
    scan_expr(a, oc, e->u.ternary.then);
    scan_expr(a, oc, e->u.ternary.els);
    break;
  default: break;
  }
}

static void scan_block(nn_arena *a, op_counts *oc, const fe_block *b) {
  for (int i = 0; i < b->n; i++) {
    const fe_stmt *s = b->stmts[i];
    switch (s->kind) {
    case FE_S_EXPR:
    case FE_S_RETURN:
    case FE_S_RAISE:
      if (s->u.expr) scan_expr(a, oc, s->u.expr);
      break;
    case FE_S_ASSIGN: scan_expr(a, oc, s->u.assign.value); break;
    case FE_S_AUGASSIGN: scan_expr(a, oc, s->u.aug.value); break;
    case FE_S_ANNASSIGN:
      if (s->u.ann.value) scan_expr(a, oc, s->u.ann.value);
      break;
    case FE_S_IF:
      scan_expr(a, oc, s->u.if_.cond);
      scan_block(a, oc, &s->u.if_.then);
      scan_block(a, oc, &s->u.if_.els);
      break;
    case FE_S_FOR:
      scan_expr(a, oc, s->u.for_.iter);
      scan_block(a, oc, &s->u.for_.body);
      break;
    case FE_S_WHILE:
      scan_expr(a, oc, s->u.while_.cond);
      scan_block(a, oc, &s->u.while_.body);
      break;
    case FE_S_DEF: scan_block(a, oc, &s->u.def.body); break;
    case FE_S_CLASS: scan_block(a, oc, &s->u.class_.body); break;
    default: break;
    }
  }
}

static bool op_supported(nn_arena *a, const char *q) {
  int n;
  if (fe_schemas_for(q, &n)) return true;
  size_t l = strlen(q);
  if (l > 1 && q[l - 1] == '_') return fe_schemas_for(nn_strndup(a, q, l - 1), &n) != NULL;
  return false;
}

/* ---- the module tree and its parameters ----------------------------------- */

typedef struct module_row {
  const char *path; /* "layer1.0.conv1", "" for the root */
  const char *cls;  /* class name, "Conv2d" */
  int depth;        /* nesting depth, 0 for the root */
  int64_t elems;    /* elements of its own tensors (parameters and buffers) */
} module_row;

typedef struct param {
  const char *name; /* "layer1.0.conv1.weight" */
  int64_t numel;    /* elements */
} param;

typedef struct archive_info {
  NN_VEC(module_row) modules; /* depth-first, parents first */
  NN_VEC(param) params;       /* every parameter (not buffers) */
  int tensors;                /* parameter and buffer tensors */
  int64_t elems, bytes;       /* their elements and bytes */
  int64_t param_elems;        /* elements of the parameters alone */
} archive_info;

static int64_t numel_of(const fe_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->sizes[i];
  return n;
}

/* The names in a class body's `__parameters__ = ["weight", "bias", ]`;
 * false when the class (or the statement) isn't there. */
static bool class_params(const fe_model *m, const fe_pval *obj, nn_arena *a, const fe_expr **list) {
  const fe_def *def = fe_find_def(m, nn_sprintf(a, "%s.%s", obj->u.obj.module, obj->u.obj.name));
  if (!def || def->stmt->kind != FE_S_CLASS) return false;
  const fe_block *body = &def->stmt->u.class_.body;
  for (int i = 0; i < body->n; i++) {
    const fe_stmt *s = body->stmts[i];
    if (s->kind != FE_S_ASSIGN || s->u.assign.ntargets != 1) continue;
    const fe_expr *t = s->u.assign.targets[0], *v = s->u.assign.value;
    if (t->kind == FE_E_NAME && !strcmp(t->u.name, "__parameters__") && v &&
        (v->kind == FE_E_LIST || v->kind == FE_E_TUPLE)) {
      *list = v;
      return true;
    }
  }
  return false;
}

static bool listed(const fe_expr *list, const char *name) {
  for (int i = 0; i < list->u.seq.n; i++) {
    const fe_expr *e = list->u.seq.items[i];
    if (e->kind == FE_E_STR && !strcmp(e->u.str.s, name)) return true;
  }
  return false;
}

static void walk_modules(const fe_model *m, const fe_pval *obj, const char *path, int depth,
                         archive_info *ai, nn_arena *a) {
  module_row row = {path, obj->u.obj.name, depth, 0};
  int at = ai->modules.len;
  NN_PUSH(a, ai->modules, row);
  const fe_pval *st = obj->u.obj.state;
  if (!st || st->kind != FE_PV_DICT) return;
  const fe_expr *plist = NULL;
  bool have_list = class_params(m, obj, a, &plist);
  for (int i = 0; i < st->u.dict.n; i++) {
    const fe_pval *v = st->u.dict.vals[i], *k = st->u.dict.keys[i];
    if (v->kind != FE_PV_TENSOR) continue;
    int64_t n = numel_of(v->u.tensor);
    ai->modules.data[at].elems += n;
    ai->elems += n;
    ai->bytes += n * (int64_t)nn_dtype_size(v->u.tensor->dtype);
    ai->tensors++;
    if (k->kind != FE_PV_STR) continue;
    bool is_param = have_list ? listed(plist, k->u.str.s) : v->u.tensor->requires_grad;
    if (!is_param) continue;
    param p = {*path ? nn_sprintf(a, "%s.%s", path, k->u.str.s) : k->u.str.s, n};
    NN_PUSH(a, ai->params, p);
    ai->param_elems += n;
  }
  for (int i = 0; i < st->u.dict.n; i++) {
    const fe_pval *v = st->u.dict.vals[i], *k = st->u.dict.keys[i];
    if (v->kind != FE_PV_OBJECT || k->kind != FE_PV_STR || depth > 64) continue;
    const char *name = k->u.str.s;
    walk_modules(m, v, *path ? nn_sprintf(a, "%s.%s", path, name) : name, depth + 1, ai, a);
  }
}

/* The archive itself doesn't name its producer; the format version and
 * entries that only some releases write narrow it down (FORMATS.md §3, §8). */
static const char *producer_of(const fe_model *m) {
  if (m->format == FE_FMT_LEGACY) return m->producer ? m->producer : "unknown";
  if (fe_archive_find(m->archive, "bytecode.pkl"))
    return "PyTorch lite interpreter (bytecode.pkl present)";
  if (fe_archive_find(m->archive, ".data/version") ||
      fe_archive_find(m->archive, ".data/serialization_id"))
    return "PyTorch 1.13 or newer (.data/ entries)";
  switch (m->version) {
  case 1: return "PyTorch 1.3-1.4 (format version 1)";
  case 2: return "PyTorch 1.4-1.5 (format version 2)";
  case 3: return "PyTorch 1.6 or newer (format version 3)";
  default: return m->version > 3 ? "PyTorch 1.7 or newer" : "unknown (no version entry)";
  }
}

/* The root module's forward, or NULL. */
static const fe_stmt *root_forward(const fe_model *m, nn_arena *a) {
  const fe_def *def = fe_find_def(m, nn_sprintf(a, "%s.%s", m->root->u.obj.module,
                                                m->root->u.obj.name));
  const fe_stmt *fwd = NULL;
  if (def && def->stmt->kind == FE_S_CLASS)
    for (int i = 0; i < def->stmt->u.class_.body.n; i++) {
      const fe_stmt *s = def->stmt->u.class_.body.stmts[i];
      if (s->kind == FE_S_DEF && !strcmp(s->u.def.name, "forward")) fwd = s;
    }
  return fwd;
}

/* ---- layers: MACs and FLOPs ---------------------------------------------- */

typedef struct layer_row {
  const char *layer;  /* module path, "(root)" for "" */
  const char *op;     /* IR op name */
  const char *output; /* result type(s) as the IR prints them */
  int64_t params;     /* parameter elements read first here */
  ir_dim macs;        /* multiply-adds (IR_DIM_UNKNOWN: can't tell) */
  ir_dim flops;       /* floating-point operations */
} layer_row;

typedef struct layers {
  bool ok;                    /* the model lowered and its shapes are known */
  NN_VEC(const char *) specs; /* the input shapes used ("x:f32[1,3,224,224]") */
  NN_VEC(layer_row) rows;
  ir_dim macs, flops; /* totals */
  int64_t row_params; /* params over the rows */
  ir_graph *g;        /* the graph (after shapes) */
} layers;

/* Element count of tensor value v, or IR_DIM_UNKNOWN. */
static ir_dim numel_dim(ir_graph *g, ir_value v) {
  if (v < 0) return IR_DIM_UNKNOWN;
  const ir_type *t = ir_vtype(g, v);
  if (t->kind != IR_T_TENSOR || t->rank < 0 || !t->dims) return IR_DIM_UNKNOWN;
  ir_dim n = ir_dim_const(g, 1);
  for (int i = 0; i < t->rank; i++) n = ir_dim_mul(g, n, t->dims[i]);
  return n;
}

/* Dim k of tensor value v (negative k counts from the end), or unknown. */
static ir_dim dim_at(ir_graph *g, ir_value v, int k) {
  const ir_type *t = ir_vtype(g, v);
  if (t->kind != IR_T_TENSOR || t->rank <= 0 || !t->dims) return IR_DIM_UNKNOWN;
  if (k < 0) k += t->rank;
  return k >= 0 && k < t->rank ? t->dims[k] : IR_DIM_UNKNOWN;
}

static bool is_none(const ir_graph *g, ir_value v) {
  const ir_const *c;
  return v < 0 || (ir_value_const(g, v, &c) && c->kind == IR_C_NONE);
}

/* Product of a constant int list operand (a pooling kernel), or unknown;
 * a one-element list stands for `spatial` equal dims. */
static ir_dim window(ir_graph *g, ir_value v, int spatial) {
  const ir_const *c;
  if (!ir_value_const(g, v, &c)) return IR_DIM_UNKNOWN;
  if (c->kind == IR_C_INT) return ir_dim_const(g, spatial == 2 ? c->i * c->i : c->i);
  if (c->kind != IR_C_INTLIST || c->n < 1) return IR_DIM_UNKNOWN;
  int64_t p = 1;
  for (int i = 0; i < c->n; i++) {
    if (c->ints[i] < 0 || c->ints[i] > (1 << 20)) return IR_DIM_UNKNOWN;
    p *= c->ints[i];
  }
  if (c->n == 1 && spatial == 2) p *= c->ints[0];
  return ir_dim_const(g, p);
}

/* MACs and FLOPs of one node under the convention in the file comment. */
static void count_node(ir_graph *g, const ir_node *nd, ir_dim *macs, ir_dim *flops) {
  ir_dim zero = ir_dim_const(g, 0), two = ir_dim_const(g, 2);
  ir_dim out = nd->nout >= 1 ? numel_dim(g, nd->out[0]) : IR_DIM_UNKNOWN;
  ir_dim in0 = nd->nin >= 1 ? numel_dim(g, nd->in[0]) : IR_DIM_UNKNOWN;
  *macs = zero;
  *flops = zero;
  ir_dim k = IR_DIM_UNKNOWN; /* reduction length of a product */
  bool bias = false;
  switch (nd->op) {
  case NN_OP_CONVOLUTION: {
    /* weight [Cout, Cin/groups, k...] (transposed: [Cin, Cout/groups, k...]) */
    const ir_type *w = ir_vtype(g, nd->in[1]);
    if (w->kind == IR_T_TENSOR && w->rank >= 2 && w->dims) {
      k = ir_dim_const(g, 1);
      for (int i = 1; i < w->rank; i++) k = ir_dim_mul(g, k, w->dims[i]);
    }
    const ir_const *c;
    bool transposed = ir_value_const(g, nd->in[6], &c) && c->kind == IR_C_BOOL && c->i;
    *macs = ir_dim_mul(g, transposed ? in0 : out, k);
    bias = !is_none(g, nd->in[2]);
    break;
  }
  case NN_OP_LINEAR:
    *macs = ir_dim_mul(g, out, dim_at(g, nd->in[0], -1));
    bias = !is_none(g, nd->in[2]);
    break;
  case NN_OP_MM:
  case NN_OP_BMM:
  case NN_OP_MATMUL: *macs = ir_dim_mul(g, out, dim_at(g, nd->in[0], -1)); break;
  case NN_OP_ADDMM:
  case NN_OP_BADDBMM:
    *macs = ir_dim_mul(g, out, dim_at(g, nd->in[1], -1));
    bias = true;
    break;
  case NN_OP_MAX_POOL2D:
  case NN_OP_MAX_POOL2D_INDICES:
  case NN_OP_AVG_POOL2D: *flops = ir_dim_mul(g, out, window(g, nd->in[1], 2)); return;
  case NN_OP_MAX_POOL1D:
  case NN_OP_AVG_POOL1D: *flops = ir_dim_mul(g, out, window(g, nd->in[1], 1)); return;
  default: {
    ir_fusion f = ir_ops[nd->op].fusion;
    if (f == IR_FUSE_META || f == IR_FUSE_VIEW || f == IR_FUSE_INJECTIVE ||
        (ir_ops[nd->op].flags & IR_CREATES))
      return;
    *flops = f == IR_FUSE_ELEMENTWISE || f == IR_FUSE_BROADCAST ? out : in0;
    return;
  }
  }
  *flops = ir_dim_mul(g, two, *macs);
  if (bias) *flops = ir_dim_add(g, *flops, out);
}

static void quiet_diag(nn_diag *d, FILE **null) {
  *null = fopen("/dev/null", "w");
  nn_diag_init(d, *null ? *null : stderr);
}

/* Lets the lowering unroll loops whose trip counts depend on the inputs'
 * shapes (as the compile does): shape inference over the partial graph. */
static int resolve_value(void *ctx, ir_graph *g, ir_value v, ir_const *out) {
  const NN_VEC(pass_input_spec) *specs = ctx;
  if (!specs->len) return -1;
  FILE *null;
  nn_diag quiet;
  quiet_diag(&quiet, &null);
  if (!null) return -1;
  pass_shapes(g, specs->data, specs->len, &quiet);
  fclose(null);
  const ir_const *c;
  if (!ir_value_const(g, v, &c)) return -1;
  *out = *c;
  return 0;
}

typedef NN_VEC(pass_input_spec) spec_vec;

/* Lowers m and infers shapes into L. Errors go to d; returns 0 or -1. */
static int build_layers(fe_model *m, spec_vec *specs, const archive_info *ai, layers *L,
                        nn_arena *a, nn_diag *d) {
  fe_lower_opts lo = {.resolve = resolve_value, .ctx = specs};
  ir_graph *g = fe_lower_with(m, &lo, a, d);
  if (!g || d->errors) return -1;
  for (int k = 0; k < specs->len; k++) {
    bool known = false;
    for (int i = 0; i < g->input_names.len; i++)
      known |= !strcmp(specs->data[k].name, g->input_names.data[i]);
    if (!known) {
      nn_error(d, (nn_loc){m->path, 0, 0}, "--input names '%s', which is not an input of the model",
               specs->data[k].name);
      return -1;
    }
  }
  if (pass_canonicalize(g, d)) return -1;
  pass_input_spec *all;
  int n;
  if (pass_infer_inputs(g, specs->data, specs->len, (nn_loc){m->path, 0, 0}, &all, &n, d))
    return -1;
  if (pass_shapes(g, all, n, d) || d->errors) return -1;
  for (int i = 0; i < n; i++) NN_PUSH(a, L->specs, pass_input_spec_str(&all[i], a));

  bool *counted = nn_alloc(a, (size_t)(ai->params.len ? ai->params.len : 1));
  L->macs = L->flops = ir_dim_const(g, 0);
  for (int i = 0; i < g->order.len; i++) {
    const ir_node *nd = &g->nodes.data[g->order.data[i]];
    if (ir_ops[nd->op].fusion == IR_FUSE_META) continue;
    layer_row r = {0};
    r.layer = nd->scope && *nd->scope ? nd->scope : "(root)";
    r.op = ir_ops[nd->op].name;
    nn_buf t = {0};
    for (int k = 0; k < nd->nout; k++) {
      if (k) nn_buf_printf(&t, ", ");
      ir_type_print(&t, g, ir_vtype(g, nd->out[k]));
    }
    r.output = nn_strndup(a, t.data ? t.data : "", t.len);
    nn_buf_free(&t);
    for (int k = 0; k < nd->nin; k++) {
      ir_nodeid def = nd->in[k] >= 0 ? g->values.data[nd->in[k]].def : -1;
      if (def < 0 || g->nodes.data[def].op != NN_OP_WEIGHT) continue;
      int32_t w = g->nodes.data[def].weight;
      if (w < 0 || w >= g->weights.len) continue;
      for (int p = 0; p < ai->params.len; p++)
        if (!counted[p] && !strcmp(ai->params.data[p].name, g->weights.data[w].name)) {
          counted[p] = true;
          r.params += ai->params.data[p].numel;
        }
    }
    count_node(g, nd, &r.macs, &r.flops);
    L->macs = ir_dim_add(g, L->macs, r.macs);
    L->flops = ir_dim_add(g, L->flops, r.flops);
    L->row_params += r.params;
    NN_PUSH(a, L->rows, r);
  }
  L->g = g;
  L->ok = true;
  return 0;
}

/* ---- printing ------------------------------------------------------------ */

/* "1234567" → "1,234,567". */
static const char *grouped(int64_t v, nn_arena *a) {
  char digits[32];
  snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
  nn_buf b = {0};
  if (v < 0) nn_buf_printf(&b, "-");
  size_t n = strlen(digits);
  for (size_t i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) nn_buf_printf(&b, ",");
    nn_buf_putn(&b, &digits[i], 1);
  }
  const char *s = nn_strndup(a, b.data, b.len);
  nn_buf_free(&b);
  return s;
}

/* A count as text: grouped digits, the expression when symbolic, "?"
 * when unknown. */
static const char *count_text(const ir_graph *g, ir_dim d, nn_arena *a) {
  int64_t c;
  if (d == IR_DIM_UNKNOWN) return "?";
  if (ir_dim_is_const(g, d, &c)) return grouped(c, a);
  nn_buf b = {0};
  ir_dim_print(&b, g, d);
  const char *s = nn_strndup(a, b.data ? b.data : "", b.len);
  nn_buf_free(&b);
  return s;
}

/* "1.81 G" for a constant count, "" otherwise. */
static const char *short_text(const ir_graph *g, ir_dim d, nn_arena *a) {
  int64_t c;
  if (!ir_dim_is_const(g, d, &c)) return "";
  double v = (double)c;
  if (v >= 1e9) return nn_sprintf(a, " (%.2f G)", v / 1e9);
  if (v >= 1e6) return nn_sprintf(a, " (%.2f M)", v / 1e6);
  if (v >= 1e3) return nn_sprintf(a, " (%.2f K)", v / 1e3);
  return "";
}

static int width(const char *s) { return (int)strlen(s); }

static void print_layers(const layers *L, const archive_info *ai, nn_arena *a) {
  const ir_graph *g = L->g;
  printf("layers (input shapes:");
  for (int i = 0; i < L->specs.len; i++) printf(" %s", L->specs.data[i]);
  printf("%s):\n", L->specs.len ? "" : " none");
  /* Symbolic counts are long expressions: the table then leaves them out
   * (--json has them) and only the totals show them. */
  int64_t c0;
  bool fixed = ir_dim_is_const(g, L->flops, &c0) && ir_dim_is_const(g, L->macs, &c0);
  int ncol = fixed ? 6 : 4;
  const char *head[6] = {"layer", "op", "output", "params", "MACs", "FLOPs"};
  int w[6];
  for (int c = 0; c < 6; c++) w[c] = c < ncol ? width(head[c]) : 0;
  const char **cells = nn_alloc(a, sizeof(char *) * 6 * (size_t)(L->rows.len + 1));
  for (int i = 0; i <= L->rows.len; i++) {
    const char **row = cells + 6 * i;
    if (i < L->rows.len) {
      const layer_row *r = &L->rows.data[i];
      row[0] = r->layer;
      row[1] = r->op;
      row[2] = r->output;
      row[3] = r->params ? grouped(r->params, a) : "";
      row[4] = count_text(g, r->macs, a);
      row[5] = count_text(g, r->flops, a);
    } else {
      row[0] = "total";
      row[1] = row[2] = "";
      row[3] = grouped(ai->param_elems, a);
      row[4] = count_text(g, L->macs, a);
      row[5] = count_text(g, L->flops, a);
    }
    for (int c = 0; c < ncol; c++)
      if (width(row[c]) > w[c]) w[c] = width(row[c]);
  }
  for (int i = -1; i <= L->rows.len; i++) {
    const char **row = i < 0 ? head : cells + 6 * i;
    nn_buf b = {0};
    nn_buf_printf(&b, "  %-*s  %-*s  %-*s  %*s", w[0], row[0], w[1], row[1], w[2], row[2], w[3],
                  row[3]);
    if (fixed) nn_buf_printf(&b, "  %*s  %*s", w[4], row[4], w[5], row[5]);
    while (b.len && b.data[b.len - 1] == ' ') b.len--; /* no trailing blanks */
    printf("%.*s\n", (int)b.len, b.data);
    nn_buf_free(&b);
  }
  if (!fixed)
    printf("(symbolic shapes: MACs and FLOPs per layer are in --json, or pass --input with "
           "numbers)\n");
  printf("total params: %s%s\n", grouped(ai->param_elems, a),
         short_text(g, ir_dim_const(L->g, ai->param_elems), a));
  if (L->row_params != ai->param_elems)
    printf("  (%s of them read by the layers above)\n", grouped(L->row_params, a));
  printf("total MACs: %s%s\n", count_text(g, L->macs, a), short_text(g, L->macs, a));
  printf("total FLOPs: %s%s\n", count_text(g, L->flops, a), short_text(g, L->flops, a));
  printf("(MACs: multiply-adds of convolutions and matrix products; FLOPs: 2 per\n"
         " multiply-add, 1 per bias add and per element of other ops; see docs/CLI.md)\n");
}

void inspect_json_strn(const char *s, int n) {
  putchar('"');
  const unsigned char *p = (const unsigned char *)s, *end = p + (n < 0 ? strlen(s) : (size_t)n);
  for (; p < end; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

static void json_str(const char *s) { inspect_json_strn(s, -1); }

/* A count in JSON: a number when constant, the expression as a string
 * when symbolic, null when unknown. */
static void json_count(const ir_graph *g, ir_dim d) {
  int64_t c;
  if (d == IR_DIM_UNKNOWN) {
    printf("null");
  } else if (ir_dim_is_const(g, d, &c)) {
    printf("%lld", (long long)c);
  } else {
    nn_buf b = {0};
    ir_dim_print(&b, g, d);
    json_str(b.data ? b.data : "");
    nn_buf_free(&b);
  }
}

static void print_json(const fe_model *m, const archive_info *ai, const fe_stmt *fwd,
                       const op_counts *oc, const layers *L, nn_arena *a) {
  printf("{\n  \"archive\": ");
  json_str(m->path);
  printf(",\n  \"format\": \"%s\",\n  \"version\": %lld,\n  \"producer\": ",
         m->format == FE_FMT_LEGACY ? "legacy" : "torchscript", (long long)m->version);
  json_str(producer_of(m));
  printf(",\n  \"root_module\": ");
  json_str(nn_sprintf(a, "%s.%s", m->root->u.obj.module, m->root->u.obj.name));
  printf(",\n  \"modules\": [");
  for (int i = 0; i < ai->modules.len; i++) {
    const module_row *r = &ai->modules.data[i];
    printf("%s\n    {\"path\": ", i ? "," : "");
    json_str(r->path);
    printf(", \"class\": ");
    json_str(r->cls);
    printf(", \"tensor_elements\": %lld}", (long long)r->elems);
  }
  printf("\n  ],\n  \"params\": %lld,\n  \"tensors\": %d,\n  \"tensor_elements\": %lld,\n"
         "  \"tensor_bytes\": %lld,\n  \"forward_inputs\": [",
         (long long)ai->param_elems, ai->tensors, (long long)ai->elems, (long long)ai->bytes);
  for (int i = 1; fwd && i < fwd->u.def.nparams; i++) {
    printf("%s", i > 1 ? ", " : "");
    json_str(fwd->u.def.params[i].name);
  }
  printf("],\n  \"ops\": [");
  for (int i = 0; i < oc->len; i++) {
    printf("%s\n    {\"op\": ", i ? "," : "");
    json_str(oc->data[i].qualname);
    printf(", \"count\": %d, \"supported\": %s}", oc->data[i].count,
           op_supported(a, oc->data[i].qualname) ? "true" : "false");
  }
  printf("\n  ],\n");
  if (!L->ok) {
    printf("  \"input_shapes\": null,\n  \"layers\": null,\n  \"total\": null\n}\n");
    return;
  }
  printf("  \"input_shapes\": [");
  for (int i = 0; i < L->specs.len; i++) {
    printf("%s", i ? ", " : "");
    json_str(L->specs.data[i]);
  }
  printf("],\n  \"layers\": [");
  for (int i = 0; i < L->rows.len; i++) {
    const layer_row *r = &L->rows.data[i];
    printf("%s\n    {\"layer\": ", i ? "," : "");
    json_str(r->layer);
    printf(", \"op\": ");
    json_str(r->op);
    printf(", \"output\": ");
    json_str(r->output);
    printf(", \"params\": %lld, \"macs\": ", (long long)r->params);
    json_count(L->g, r->macs);
    printf(", \"flops\": ");
    json_count(L->g, r->flops);
    printf("}");
  }
  printf("\n  ],\n  \"total\": {\"params\": %lld, \"layer_params\": %lld, \"macs\": ",
         (long long)ai->param_elems, (long long)L->row_params);
  json_count(L->g, L->macs);
  printf(", \"flops\": ");
  json_count(L->g, L->flops);
  printf("}\n}\n");
}

/* ---- the command ---------------------------------------------------------- */

static const char help[] =
    "usage: nncc inspect MODEL.pt [--input NAME:DTYPE[DIMS]]... [--json] [--dot FILE]\n"
    "       nncc inspect OUT.so [--json]\n"
    "\n"
    "For a TorchScript archive: its format and version, its likely producer,\n"
    "the module tree, the parameters' total elements and bytes, the forward()\n"
    "inputs, every op the code uses with whether nncc supports it, and a table\n"
    "of layers: module path, IR op, output shape, parameters, MACs and FLOPs,\n"
    "with totals (a multiply-add is 1 MAC and 2 FLOPs). Without --input the\n"
    "input shapes are inferred with symbolic dims, and MACs and FLOPs are\n"
    "expressions in them.\n"
    "\n"
    "  --input NAME:DTYPE[DIMS]  an input's shape, as for compiling\n"
    "  --json                    print the same as one JSON object\n"
    "  --dot FILE                write the optimized graph (after fusion) in\n"
    "                            Graphviz form; fused groups are clusters\n"
    "                            (render with: dot -Tsvg FILE -o graph.svg)\n"
    "\n"
    "For a compiled OUT.so: its inputs and outputs, symbolic dims and their\n"
    "ranges, compiler, target, CPU features (for --target cuda: the GPU archs),\n"
    "precision, distinct kernels and program steps, workspace and weights\n"
    "bytes; --json prints the same as one JSON object.\n";

static int write_file(const char *path, const char *text, size_t len, nn_diag *d) {
  FILE *f = fopen(path, "wb");
  bool ok = f && fwrite(text, 1, len, f) == len;
  int err = errno;
  if (f && fclose(f)) ok = false, err = errno;
  if (!ok) nn_error(d, (nn_loc){path, 0, 0}, "cannot write: %s", strerror(err));
  return ok ? 0 : -1;
}

static int inspect_pt(const char *path, spec_vec *specs, bool json, const char *dot,
                      nn_arena *arena) {
  nn_diag d;
  nn_diag_init(&d, stderr);
  fe_model *m = fe_import(path, arena, &d);
  if (!m) return EXIT_MODEL;
  d.source = fe_model_source_line;
  d.source_ctx = m;

  archive_info ai = {0};
  walk_modules(m, m->root, "", 0, &ai, arena);
  const fe_stmt *fwd = root_forward(m, arena);
  op_counts oc = {0};
  for (int i = 0; i < m->codes.len; i++) scan_block(arena, &oc, &m->codes.data[i]->ast);

  /* The layers. With --input or --dot, errors are the user's to see and
   * fail the command; without, the table is a bonus and a failure is one
   * line. */
  layers L = {0};
  bool strict = specs->len > 0 || dot;
  FILE *null = NULL;
  nn_diag ld;
  if (strict) {
    ld = d;
  } else {
    quiet_diag(&ld, &null);
    ld.source = d.source;
    ld.source_ctx = d.source_ctx;
  }
  int lrc = build_layers(m, specs, &ai, &L, arena, &ld);
  if (null) fclose(null);
  if (lrc && strict) {
    fe_model_close(m);
    return EXIT_MODEL;
  }

  if (json) {
    print_json(m, &ai, fwd, &oc, &L, arena);
  } else {
    printf("archive: %s\n", path);
    if (m->format == FE_FMT_LEGACY)
      printf("format: legacy TorchScript archive (model.json, PyTorch 1.0-1.2), version %lld\n",
             (long long)m->version);
    else
      printf("format: TorchScript archive (torch.jit.save), file format version %lld\n",
             (long long)m->version);
    printf("producer: %s\n", producer_of(m));
    printf("top folder: %s\n", fe_archive_prefix(m->archive));
    if (m->op_version_set >= 0) printf("op_version_set: %lld\n", (long long)m->op_version_set);
    printf("entries: %d, code files: %d\n", fe_archive_count(m->archive), m->codes.len);
    printf("root module: %s.%s\n", m->root->u.obj.module, m->root->u.obj.name);
    printf("modules:\n");
    for (int i = 0; i < ai.modules.len; i++) {
      const module_row *r = &ai.modules.data[i];
      printf("  %*s%-*s %-28s %10lld params\n", r->depth * 2, "", 30 - r->depth * 2,
             *r->path ? r->path : "(root)", r->cls, (long long)r->elems);
    }
    printf("parameters and buffers: %d tensors, %lld elements, %lld bytes\n", ai.tensors,
           (long long)ai.elems, (long long)ai.bytes);
    if (fwd) {
      printf("inputs:\n");
      for (int i = 1; i < fwd->u.def.nparams; i++) {
        nn_buf b = {0};
        if (fwd->u.def.params[i].type) fe_expr_print(&b, fwd->u.def.params[i].type);
        printf("  %s: %s\n", fwd->u.def.params[i].name, b.data ? b.data : "Tensor");
        nn_buf_free(&b);
      }
    } else {
      printf("inputs: none (the root module has no forward method)\n");
    }
    int unsupported = 0;
    printf("ops used (%d kinds):\n", oc.len);
    for (int i = 0; i < oc.len; i++) {
      bool ok = op_supported(arena, oc.data[i].qualname);
      unsupported += !ok;
      printf("  %-32s %5d  %s\n", oc.data[i].qualname, oc.data[i].count,
             ok ? "supported" : "NOT SUPPORTED");
    }
    if (unsupported) printf("%d op kinds are not supported\n", unsupported);
    if (L.ok)
      print_layers(&L, &ai, arena);
    else
      printf("layers: not available (the model does not lower, or its input shapes can't be "
             "inferred; pass --input NAME:DTYPE[DIMS] to see why)\n");
  }

  int rc = EXIT_OK;
  if (dot) {
    /* The rest of the default pipeline: what the backend would get. */
    ir_graph *g = L.g;
    if (pass_fold(g, &d) || pass_canonicalize(g, &d) || pass_fuse(g, &d) || d.errors) {
      rc = EXIT_MODEL;
    } else {
      nn_buf b = {0};
      ir_dot(&b, g);
      if (write_file(dot, b.data ? b.data : "", b.len, &d)) rc = EXIT_MODEL;
      nn_buf_free(&b);
    }
  }
  fe_model_close(m);
  return rc;
}

int nncc_cmd_inspect(int argc, char **argv) {
  const char *path = NULL, *dot = NULL;
  bool json = false;
  nn_arena *arena = nn_arena_new();
  spec_vec specs = {0};
  char err[512];
  int rc = -1;
  for (int i = 0; i < argc && rc < 0; i++) {
    const char *a = argv[i];
    const char *v = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(help, stdout);
      rc = EXIT_OK;
    } else if (!strcmp(a, "--json")) {
      json = true;
    } else if (!strncmp(a, "--input", 7) && (a[7] == '=' || !a[7])) {
      v = a[7] ? a + 8 : i + 1 < argc ? argv[++i] : "";
      pass_input_spec spec;
      if (pass_parse_input_spec(v, arena, &spec, err, sizeof err)) {
        rc = usage_error("--input: %s", err);
        break;
      }
      for (int k = 0; k < specs.len && rc < 0; k++)
        if (!strcmp(specs.data[k].name, spec.name))
          rc = usage_error("--input '%s' given twice", spec.name);
      NN_PUSH(arena, specs, spec);
    } else if (!strncmp(a, "--dot", 5) && (a[5] == '=' || !a[5])) {
      dot = a[5] ? a + 6 : i + 1 < argc ? argv[++i] : "";
      if (!*dot) rc = usage_error("--dot needs a file name%s", "");
    } else if (a[0] == '-' && a[1]) {
      rc = usage_error("inspect: unknown option '%s'", a);
    } else if (path) {
      rc = usage_error("inspect takes one MODEL.pt or OUT.so argument, not also '%s'", a);
    } else {
      path = a;
    }
  }
  if (rc < 0 && !path) rc = usage_error("inspect needs a MODEL.pt or OUT.so argument%s", "");
  if (rc < 0 && ends_with(path, ".so")) {
    if (specs.len || dot)
      rc = usage_error("--input and --dot apply to a MODEL.pt, not to '%s'", path);
    else
      rc = nncc_inspect_so_ex(path, json);
  }
  if (rc < 0) rc = inspect_pt(path, &specs, json, dot, arena);
  nn_arena_free(arena);
  return rc;
}
