/* lower.c — from module tree + TorchScript code to one SSA graph
 * (lower_internal.h lists the files).
 *
 * The lowering is an abstract interpreter over the AST of root.forward.
 * Every expression evaluates to an `lval`, a compile-time description of
 * what the name would hold when the model runs:
 *   - a constant (literals, module attributes that are numbers or strings),
 *     kept out of the graph until an op needs it as an operand;
 *   - an IR value (a graph input or an op result);
 *   - a module object (self, self.conv1, getattr(self, "0")), carrying its
 *     path so parameters become weights named "layer1.0.conv1.weight";
 *   - a tuple of lvals, a dotted name being built ("torch", "ops.prim",
 *     "__torch__.torch.nn.functional"), or a function definition.
 * Method calls on module objects and calls of TorchScript functions are
 * inlined by interpreting their bodies in a fresh frame, so the result is a
 * single straight-line graph. Calls of ATen/prim ops go through the schema
 * table (schema.c): the first overload that accepts the arguments builds the
 * canonical op's operands, filling defaults. In-place spellings (relu_)
 * become the pure op with IR_NF_INPLACE set; canonicalize decides whether
 * that is safe to drop.
 *
 * Errors are reported at the source location of the construct and lowering
 * goes on where it can (an unsupported op yields a "poison" value that
 * silences follow-on errors), so one run lists every unsupported op.
 */
#include "lower_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void exec_block(lower *L, const fe_block *b);
static void exec_for(lower *L, const fe_stmt *s);
static void exec_while(lower *L, const fe_stmt *s);

/* ---- lvals --------------------------------------------------------------- */

lval *lv_new(lower *L, lv_kind k) {
  lval *v = nn_alloc(L->arena, sizeof *v);
  v->kind = k;
  return v;
}

lval *lv_value(lower *L, ir_value v) {
  lval *x = lv_new(L, LV_VALUE);
  x->v = v;
  return x;
}

lval *lv_const(lower *L, ir_const c) {
  lval *x = lv_new(L, LV_CONST);
  x->c = c;
  return x;
}

lval *lv_int(lower *L, int64_t i) { return lv_const(L, (ir_const){.kind = IR_C_INT, .i = i}); }
lval *lv_float(lower *L, double f) { return lv_const(L, (ir_const){.kind = IR_C_FLOAT, .f = f}); }
lval *lv_bool(lower *L, bool b) { return lv_const(L, (ir_const){.kind = IR_C_BOOL, .i = b}); }
lval *lv_none(lower *L) { return lv_const(L, (ir_const){.kind = IR_C_NONE}); }
lval *lv_poison(lower *L) { return lv_new(L, LV_POISON); }

lval *lv_qual(lower *L, const char *q) {
  lval *x = lv_new(L, LV_QUAL);
  x->qual = q;
  return x;
}

const char *lv_describe(lower *L, const lval *v) {
  switch (v->kind) {
  case LV_CONST:
    switch (v->c.kind) {
    case IR_C_INT: return "int";
    case IR_C_FLOAT: return "float";
    case IR_C_BOOL: return "bool";
    case IR_C_NONE: return "None";
    case IR_C_STR: return "str";
    case IR_C_DEVICE: return "Device";
    case IR_C_INTLIST: return "List[int]";
    case IR_C_FLOATLIST: return "List[float]";
    case IR_C_BOOLLIST: return "List[bool]";
    }
    return "constant";
  case LV_VALUE: {
    const ir_type *t = ir_vtype(L->g, v->v);
    switch (t->kind) {
    case IR_T_TENSOR: return "Tensor";
    case IR_T_INT: return "int";
    case IR_T_FLOAT: return "float";
    case IR_T_BOOL: return "bool";
    case IR_T_LIST: return "List";
    case IR_T_TUPLE: return "Tuple";
    default: return "value";
    }
  }
  case LV_MODULE: return "module";
  case LV_TUPLE: return "tuple";
  case LV_QUAL: return nn_sprintf(L->arena, "'%s'", v->qual);
  case LV_FUNC: return "function";
  case LV_POISON: return "value";
  }
  return "?";
}

/* ---- frames -------------------------------------------------------------- */

static void bind(lower *L, const char *name, lval *v) {
  binding b = {name, v};
  NN_PUSH(L->arena, L->f->vars, b);
}

lval *lw_lookup(lower *L, const char *name) {
  for (int i = L->f->vars.len - 1; i >= 0; i--)
    if (strcmp(L->f->vars.data[i].name, name) == 0) return L->f->vars.data[i].val;
  return NULL;
}

/* ---- graph building -------------------------------------------------------- */

ir_nodeid lw_append(lower *L, ir_op op, int nin, const ir_value *in, int nout, nn_loc loc) {
  ir_nodeid n = ir_append(L->g, op, nin, in, nout, loc);
  ir_node_get(L->g, n)->scope = L->f ? L->f->path : "";
  return n;
}

ir_value lw_const_node(lower *L, const ir_const *c, nn_loc loc) {
  ir_value v = ir_const_value(L->g, c, loc);
  ir_node_get(L->g, L->g->values.data[v].def)->scope = L->f ? L->f->path : "";
  return v;
}

const ir_type *lw_tensor_unknown(lower *L) { return ir_type_tensor(L->g, NN_DT_UNKNOWN, -1, NULL); }

/* A .half()-ed model: the CPU backend computes in f32 (until --precision
 * fp16 exists), so f16/bf16 weights become contiguous f32 copies. Returns
 * false when the tensor doesn't fit its storage. */
static bool upcast_half(lower *L, ir_weight *w) {
  int64_t n = ir_weight_numel(w);
  bool bf16 = w->dtype == NN_DT_BF16;
  uint16_t *bits = nn_alloc(L->arena, sizeof(uint16_t) * (size_t)(n > 0 ? n : 1));
  float *out = nn_alloc(L->arena, sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!ir_weight_read(w, bits)) return false;
  for (int64_t e = 0; e < n; e++) out[e] = bf16 ? nn_bf16_to_f32(bits[e]) : nn_f16_to_f32(bits[e]);
  w->dtype = NN_DT_F32;
  w->strides = NULL;
  w->offset = 0;
  w->data = out;
  w->nbytes = sizeof(float) * (size_t)n;
  L->half_upcasts++;
  return true;
}

static ir_value weight_value(lower *L, const fe_tensor *t, const char *name, nn_loc loc) {
  for (int i = 0; i < L->weights.len; i++)
    if (L->weights.data[i].t == t) return L->weights.data[i].v;
  ir_weight w = {
      .name = name,
      .dtype = t->dtype,
      .rank = t->rank,
      .sizes = t->sizes,
      .strides = t->strides,
      .offset = t->offset,
      .data = t->storage ? t->storage->data : NULL,
      .nbytes = t->storage ? t->storage->nbytes : 0,
  };
  if ((w.dtype == NN_DT_F16 || w.dtype == NN_DT_BF16) && !upcast_half(L, &w)) {
    nn_error(L->d, loc, "tensor '%s' does not fit in its storage", name);
  }
  int32_t wi = ir_add_weight(L->g, &w);
  ir_nodeid n = lw_append(L, NN_OP_WEIGHT, 0, NULL, 1, loc);
  ir_node *node = ir_node_get(L->g, n);
  node->weight = wi;
  ir_value v = node->out[0];
  ir_dim dims[64];
  int rank = t->rank < 64 ? t->rank : 64;
  for (int i = 0; i < rank; i++) dims[i] = ir_dim_const(L->g, t->sizes[i]);
  ir_set_type(L->g, v, ir_type_tensor(L->g, w.dtype, rank, dims));
  weight_memo wm = {t, v};
  NN_PUSH(L->arena, L->weights, wm);
  return v;
}

/* ---- constants from pickled attributes --------------------------------------- */

static const char *join_path(lower *L, const char *path, const char *name) {
  return *path ? nn_sprintf(L->arena, "%s.%s", path, name) : name;
}

/* Converts a pickled attribute value to an lval; NULL if it has no
 * compile-time meaning (reported by the caller). */
lval *lw_from_pval(lower *L, const fe_pval *p, const char *path, nn_loc loc) {
  switch (p->kind) {
  case FE_PV_NONE: return lv_none(L);
  case FE_PV_BOOL: return lv_bool(L, p->u.b);
  case FE_PV_INT: return lv_int(L, p->u.i);
  case FE_PV_FLOAT: return lv_float(L, p->u.f);
  case FE_PV_STR: return lv_const(L, (ir_const){.kind = IR_C_STR, .s = p->u.str.s});
  case FE_PV_DEVICE: return lv_const(L, (ir_const){.kind = IR_C_DEVICE, .s = p->u.device});
  case FE_PV_TENSOR: {
    if (!p->u.tensor->storage || !p->u.tensor->storage->data) {
      nn_error(L->d, loc, "tensor '%s' has no data in the archive", path);
      return lv_poison(L);
    }
    return lv_value(L, weight_value(L, p->u.tensor, path, loc));
  }
  case FE_PV_OBJECT: {
    lval *x = lv_new(L, LV_MODULE);
    x->obj = p;
    x->path = path;
    return x;
  }
  case FE_PV_TUPLE:
  case FE_PV_LIST: {
    /* All ints → an int list constant; otherwise a tuple of lvals. */
    bool ints = true, floats = true;
    for (int i = 0; i < p->u.seq.n; i++) {
      fe_pkind k = p->u.seq.items[i]->kind;
      ints &= k == FE_PV_INT;
      floats &= k == FE_PV_FLOAT || k == FE_PV_INT;
    }
    if (p->u.seq.n > 0 && (ints || floats)) {
      ir_const c = {.kind = ints ? IR_C_INTLIST : IR_C_FLOATLIST, .n = p->u.seq.n};
      int64_t *iv = nn_alloc(L->arena, sizeof(int64_t) * (size_t)c.n);
      double *fv = nn_alloc(L->arena, sizeof(double) * (size_t)c.n);
      for (int i = 0; i < c.n; i++) {
        const fe_pval *it = p->u.seq.items[i];
        iv[i] = it->kind == FE_PV_INT ? it->u.i : 0;
        fv[i] = it->kind == FE_PV_INT ? (double)it->u.i : it->u.f;
      }
      c.ints = iv;
      c.floats = fv;
      return lv_const(L, c);
    }
    lval *x = lv_new(L, LV_TUPLE);
    x->n = p->u.seq.n;
    x->items = nn_alloc(L->arena, sizeof(lval *) * (size_t)(x->n + 1));
    for (int i = 0; i < x->n; i++) {
      x->items[i] = lw_from_pval(L, p->u.seq.items[i], nn_sprintf(L->arena, "%s.%d", path, i), loc);
      if (!x->items[i]) return NULL;
    }
    return x;
  }
  default: return NULL;
  }
}

/* self.name on a module object. */
lval *lw_module_attr(lower *L, const lval *mod, const char *name, nn_loc loc) {
  const fe_pval *state = mod->obj->u.obj.state;
  const fe_pval *p = state ? fe_pdict_get(state, name) : NULL;
  if (p) {
    lval *r = lw_from_pval(L, p, join_path(L, mod->path, name), loc);
    if (!r) {
      nn_error(L->d, loc, "attribute '%s' of module '%s' holds a %s, which nncc cannot use", name,
               *mod->path ? mod->path : "self", fe_pkind_name(p->kind));
      return lv_poison(L);
    }
    return r;
  }
  /* A method of the module's class: a bound function. */
  const char *cls = nn_sprintf(L->arena, "%s.%s", mod->obj->u.obj.module, mod->obj->u.obj.name);
  const fe_def *def = fe_find_def(L->m, cls);
  if (def && def->stmt->kind == FE_S_CLASS) {
    const fe_block *body = &def->stmt->u.class_.body;
    for (int i = 0; i < body->n; i++) {
      const fe_stmt *s = body->stmts[i];
      if (s->kind == FE_S_DEF && strcmp(s->u.def.name, name) == 0) {
        lval *f = lv_new(L, LV_FUNC);
        f->def = def;
        f->fn = s;
        f->obj = mod->obj;
        f->path = mod->path;
        return f;
      }
    }
  } else if (!def) {
    nn_error(L->d, loc, "no code for class '%s' in the archive", cls);
    return lv_poison(L);
  }
  nn_error(L->d, loc, "module '%s' (%s) has no attribute '%s'", *mod->path ? mod->path : "self",
           mod->obj->u.obj.name, name);
  return lv_poison(L);
}

/* ---- materializing operands ---------------------------------------------- */

/* A list operand from a tuple of lvals. */
static ir_value materialize_list(lower *L, lval *const *items, int n, nn_loc loc) {
  ir_value *in = nn_alloc(L->arena, sizeof(ir_value) * (size_t)(n + 1));
  const ir_type *elem = NULL;
  for (int i = 0; i < n; i++) {
    in[i] = lw_materialize(L, items[i], loc);
    const ir_type *t = ir_vtype(L->g, in[i]);
    if (!elem && t->kind != IR_T_NONE) elem = t;
  }
  ir_nodeid nd = lw_append(L, NN_OP_LIST_CONSTRUCT, n, in, 1, loc);
  ir_value out = ir_node_get(L->g, nd)->out[0];
  if (!elem) elem = ir_type_scalar(L->g, IR_T_UNKNOWN);
  ir_set_type(L->g, out,
              ir_type_list(L->g, elem->kind == IR_T_TENSOR ? lw_tensor_unknown(L) : elem));
  return out;
}

ir_value lw_materialize(lower *L, const lval *v, nn_loc loc) {
  switch (v->kind) {
  case LV_CONST: return lw_const_node(L, &v->c, loc);
  case LV_VALUE: return v->v;
  case LV_TUPLE: return materialize_list(L, v->items, v->n, loc);
  case LV_POISON: return ir_const_none(L->g, loc);
  default:
    nn_error(L->d, loc, "a %s cannot be used as a value here", lv_describe(L, v));
    return ir_const_none(L->g, loc);
  }
}

/* ---- inlining ---------------------------------------------------------------- */

/* Runs a def with `self` (may be NULL for free functions) and arguments;
 * returns what it returns. */
lval *lw_inline_call(lower *L, const fe_stmt *fn, const lval *self, const char *path,
                     const callargs *a, nn_loc loc) {
  if (L->depth >= MAX_INLINE_DEPTH) {
    nn_error(L->d, loc, "calls nest deeper than %d levels (recursion?)", MAX_INLINE_DEPTH);
    return lv_poison(L);
  }
  frame fr = {0};
  fr.path = path ? path : (L->f ? L->f->path : "");
  frame *saved = L->f;
  /* Evaluate defaults in the caller's frame, then switch. */
  int np = fn->u.def.nparams;
  lval **vals = nn_alloc(L->arena, sizeof(lval *) * (size_t)(np + 1));
  int first = 0;
  if (self) {
    if (np == 0) {
      nn_error(L->d, fn->loc, "method '%s' takes no self", fn->u.def.name);
      return lv_poison(L);
    }
    vals[0] = (lval *)self;
    first = 1;
  }
  if (a->npos > np - first) {
    nn_error(L->d, loc, "'%s' takes %d arguments, %d given", fn->u.def.name, np - first, a->npos);
    return lv_poison(L);
  }
  for (int i = 0; i < a->npos; i++) vals[first + i] = a->pos[i];
  for (int k = 0; k < a->nkw; k++) {
    int found = -1;
    for (int i = first; i < np; i++)
      if (strcmp(fn->u.def.params[i].name, a->kwn[k]) == 0) found = i;
    if (found < 0) {
      nn_error(L->d, loc, "'%s' has no parameter '%s'", fn->u.def.name, a->kwn[k]);
      return lv_poison(L);
    }
    vals[found] = a->kwv[k];
  }
  for (int i = first; i < np; i++) {
    if (vals[i]) continue;
    if (!fn->u.def.params[i].deflt) {
      nn_error(L->d, loc, "missing argument '%s' of '%s'", fn->u.def.params[i].name,
               fn->u.def.name);
      return lv_poison(L);
    }
    vals[i] = lw_eval(L, fn->u.def.params[i].deflt);
  }
  L->f = &fr;
  L->depth++;
  for (int i = 0; i < np; i++) bind(L, fn->u.def.params[i].name, vals[i]);
  exec_block(L, &fn->u.def.body);
  L->depth--;
  L->f = saved;
  return fr.ret ? fr.ret : lv_none(L);
}

/* ---- statements ---------------------------------------------------------------- */

static void assign_target(lower *L, const fe_expr *t, lval *v) {
  if (t->kind == FE_E_NAME) {
    bind(L, t->u.name, v);
    return;
  }
  if (t->kind == FE_E_TUPLE || t->kind == FE_E_LIST) {
    int n = t->u.seq.n;
    if (v->kind == LV_POISON) {
      for (int i = 0; i < n; i++) assign_target(L, t->u.seq.items[i], v);
      return;
    }
    if (v->kind == LV_TUPLE) {
      if (v->n != n) {
        nn_error(L->d, t->loc, "cannot unpack %d values into %d names", v->n, n);
        for (int i = 0; i < n; i++) assign_target(L, t->u.seq.items[i], lv_poison(L));
        return;
      }
      for (int i = 0; i < n; i++) assign_target(L, t->u.seq.items[i], v->items[i]);
      return;
    }
    if (v->kind == LV_VALUE && ir_vtype(L->g, v->v)->kind == IR_T_LIST) {
      ir_nodeid nd = lw_append(L, NN_OP_LIST_UNPACK, 1, &v->v, n, t->loc);
      const ir_type *et = ir_vtype(L->g, v->v)->elems[0];
      for (int i = 0; i < n; i++) {
        ir_value o = ir_node_get(L->g, nd)->out[i];
        ir_set_type(L->g, o, et);
        assign_target(L, t->u.seq.items[i], lv_value(L, o));
      }
      return;
    }
    nn_error(L->d, t->loc, "cannot unpack a %s", lv_describe(L, v));
    for (int i = 0; i < n; i++) assign_target(L, t->u.seq.items[i], lv_poison(L));
    return;
  }
  nn_error(L->d, t->loc, "assignment to this kind of target is not supported");
}

static void exec_stmt(lower *L, const fe_stmt *s) {
  switch (s->kind) {
  case FE_S_EXPR: lw_eval(L, s->u.expr); break;
  case FE_S_ASSIGN: {
    lval *v = lw_eval(L, s->u.assign.value);
    for (int i = 0; i < s->u.assign.ntargets; i++) assign_target(L, s->u.assign.targets[i], v);
    break;
  }
  case FE_S_ANNASSIGN:
    if (s->u.ann.value) assign_target(L, s->u.ann.target, lw_eval(L, s->u.ann.value));
    break;
  case FE_S_AUGASSIGN: {
    fe_expr bin = {.kind = FE_E_BINARY, .loc = s->loc};
    char op[4] = {0};
    size_t n = strlen(s->u.aug.op);
    memcpy(op, s->u.aug.op, n > 1 && n < 4 ? n - 1 : 0);
    bin.u.binary.op = nn_strdup(L->arena, op);
    bin.u.binary.a = s->u.aug.target;
    bin.u.binary.b = s->u.aug.value;
    assign_target(L, s->u.aug.target, lw_eval_binary(L, &bin));
    break;
  }
  case FE_S_RETURN:
    L->f->ret = s->u.expr ? lw_eval(L, s->u.expr) : lv_none(L);
    L->f->returned = true;
    break;
  case FE_S_IF: {
    lval *c = lw_eval(L, s->u.if_.cond);
    bool t;
    if (c->kind == LV_POISON) break;
    if (lw_known_truth(L, c, &t)) {
      exec_block(L, t ? &s->u.if_.then : &s->u.if_.els);
      break;
    }
    nn_error(L->d, s->loc,
             "'if' on a value known only at run time is not supported (data-dependent control "
             "flow)");
    L->f->poisoned = true;
    break;
  }
  case FE_S_FOR: exec_for(L, s); break;
  case FE_S_WHILE: exec_while(L, s); break;
  case FE_S_PASS:
  case FE_S_IMPORT:
  case FE_S_GLOBAL:
  case FE_S_ASSERT:
  case FE_S_DEL: break;
  case FE_S_RAISE: nn_error(L->d, s->loc, "the model raises an exception on this path"); break;
  case FE_S_BREAK:
  case FE_S_CONTINUE:
    if (!L->f->loops) {
      nn_error(L->d, s->loc, "'%s' outside a loop", s->kind == FE_S_BREAK ? "break" : "continue");
      break;
    }
    if (s->kind == FE_S_BREAK)
      L->f->broke = true;
    else
      L->f->continued = true;
    break;
  case FE_S_DEF:
  case FE_S_CLASS: nn_error(L->d, s->loc, "nested definitions are not supported"); break;
  }
}

static void exec_block(lower *L, const fe_block *b) {
  for (int i = 0; i < b->n && !L->f->returned && !L->f->broke && !L->f->continued; i++)
    exec_stmt(L, b->stmts[i]);
}

/* Runs one unrolled iteration; returns false when the loop must stop. */
static bool run_iteration(lower *L, const fe_stmt *s, const fe_block *body) {
  if (++L->unrolled > L->opts.max_unroll) {
    nn_error(L->d, s->loc, "unrolling this loop exceeds %d iterations in total",
             L->opts.max_unroll);
    return false;
  }
  L->f->loops++;
  exec_block(L, body);
  L->f->loops--;
  L->f->continued = false;
  if (L->f->broke) {
    L->f->broke = false;
    return false;
  }
  return !L->f->returned;
}

/* for x in range(a[, b[, c]]) with known bounds, or over a tuple or a
 * constant list: unrolled. Anything else depends on run-time data. */
static void exec_for(lower *L, const fe_stmt *s) {
  const fe_expr *it = s->u.for_.iter;
  const fe_block *body = &s->u.for_.body;
  if (it->kind == FE_E_CALL && it->u.call.fn->kind == FE_E_NAME &&
      !strcmp(it->u.call.fn->u.name, "range") && !lw_lookup(L, "range")) {
    int n = it->u.call.nargs;
    if (n < 1 || n > 3 || it->u.call.nkw) {
      nn_error(L->d, it->loc, "range() takes 1 to 3 arguments");
      return;
    }
    int64_t b[3] = {0, 0, 1};
    for (int i = 0; i < n; i++) {
      lval *v = lw_eval(L, it->u.call.args[i]);
      ir_const c;
      if (v->kind == LV_POISON) return;
      if (!lw_known_scalar(L, v, &c) || c.kind != IR_C_INT) {
        nn_error(L->d, it->u.call.args[i]->loc,
                 "the trip count of this 'for' loop is not known at compile time%s",
                 L->opts.resolve ? "" : " (pass --input shapes so it can be computed)");
        L->f->poisoned = true;
        return;
      }
      b[n == 1 ? 1 : i] = c.i;
    }
    if (b[2] == 0) {
      nn_error(L->d, it->loc, "range() step is zero");
      return;
    }
    for (int64_t i = b[0]; b[2] > 0 ? i < b[1] : i > b[1]; i += b[2]) {
      assign_target(L, s->u.for_.target, lv_int(L, i));
      if (!run_iteration(L, s, body)) break;
    }
    return;
  }
  lval *v = lw_eval(L, it);
  if (v->kind == LV_POISON) return;
  if (v->kind == LV_TUPLE) {
    for (int i = 0; i < v->n; i++) {
      assign_target(L, s->u.for_.target, v->items[i]);
      if (!run_iteration(L, s, body)) break;
    }
    return;
  }
  if (v->kind == LV_CONST &&
      (v->c.kind == IR_C_INTLIST || v->c.kind == IR_C_FLOATLIST || v->c.kind == IR_C_BOOLLIST)) {
    for (int i = 0; i < v->c.n; i++) {
      lval *x = v->c.kind == IR_C_FLOATLIST  ? lv_float(L, v->c.floats[i])
                : v->c.kind == IR_C_BOOLLIST ? lv_bool(L, v->c.ints[i] != 0)
                                             : lv_int(L, v->c.ints[i]);
      assign_target(L, s->u.for_.target, x);
      if (!run_iteration(L, s, body)) break;
    }
    return;
  }
  nn_error(L->d, it->loc,
           "'for' over a %s is not supported: only loops over range() with a "
           "compile-time trip count, tuples and constant lists are unrolled",
           lv_describe(L, v));
}

/* while c: unrolled while c is known at compile time. */
static void exec_while(lower *L, const fe_stmt *s) {
  for (;;) {
    lval *c = lw_eval(L, s->u.while_.cond);
    bool t;
    if (c->kind == LV_POISON) return;
    if (!lw_known_truth(L, c, &t)) {
      nn_error(L->d, s->loc,
               "'while' on a value known only at run time is not supported "
               "(data-dependent control flow)");
      L->f->poisoned = true;
      return;
    }
    if (!t || !run_iteration(L, s, &s->u.while_.body)) return;
  }
}

/* ---- the root ------------------------------------------------------------------- */

static const char *type_text(lower *L, const fe_expr *t) {
  nn_buf b = {0};
  fe_expr_print(&b, t);
  const char *s = nn_strdup(L->arena, b.data ? b.data : "");
  nn_buf_free(&b);
  return s;
}

/* Adds graph inputs for forward's parameters; returns their lvals. */
static bool make_inputs(lower *L, const fe_stmt *fn, callargs *a) {
  int np = fn->u.def.nparams;
  a->pos = nn_alloc(L->arena, sizeof(lval *) * (size_t)(np + 1));
  bool ok = true;
  for (int i = 1; i < np; i++) {
    const fe_param *p = &fn->u.def.params[i];
    const char *tt = p->type ? type_text(L, p->type) : "Tensor";
    const ir_type *t;
    if (!strcmp(tt, "Tensor") || !strcmp(tt, "Optional[Tensor]"))
      t = lw_tensor_unknown(L);
    else if (!strcmp(tt, "float"))
      t = ir_type_scalar(L->g, IR_T_FLOAT);
    else if (!strcmp(tt, "int"))
      t = ir_type_scalar(L->g, IR_T_INT);
    else if (!strcmp(tt, "bool"))
      t = ir_type_scalar(L->g, IR_T_BOOL);
    else {
      nn_error(L->d, p->loc,
               "input '%s' has type %s; nncc compiles models whose inputs are tensors or numbers",
               p->name, tt);
      ok = false;
      t = ir_type_scalar(L->g, IR_T_UNKNOWN);
    }
    ir_value v = ir_add_input(L->g, p->name, t);
    a->pos[a->npos++] = lv_value(L, v);
  }
  return ok;
}

static void add_outputs(lower *L, const lval *v, nn_loc loc) {
  switch (v->kind) {
  case LV_TUPLE:
    for (int i = 0; i < v->n; i++) add_outputs(L, v->items[i], loc);
    return;
  case LV_VALUE: {
    const ir_node *def = L->g->values.data[v->v].def >= 0
                             ? ir_node_get(L->g, L->g->values.data[v->v].def)
                             : NULL;
    if (def && def->op == NN_OP_LIST_CONSTRUCT) {
      for (int i = 0; i < def->nin; i++) ir_add_output(L->g, def->in[i]);
      return;
    }
    ir_add_output(L->g, v->v);
    return;
  }
  case LV_CONST: ir_add_output(L->g, lw_const_node(L, &v->c, loc)); return;
  case LV_POISON: return;
  default:
    nn_error(L->d, loc, "forward() returns a %s, which nncc cannot output", lv_describe(L, v));
  }
}

ir_graph *fe_lower(fe_model *m, nn_arena *arena, nn_diag *d) {
  return fe_lower_with(m, NULL, arena, d);
}

ir_graph *fe_lower_with(fe_model *m, const fe_lower_opts *o, nn_arena *arena, nn_diag *d) {
  lower L = {.m = m, .arena = arena, .d = d};
  if (o) L.opts = *o;
  if (L.opts.max_unroll <= 0) L.opts.max_unroll = 10000;
  const fe_pval *root = m->root;
  const char *cls = nn_sprintf(arena, "%s.%s", root->u.obj.module, root->u.obj.name);
  const fe_def *def = fe_find_def(m, cls);
  nn_loc at = {m->path, 0, 0};
  if (!def || def->stmt->kind != FE_S_CLASS) {
    nn_error(d, at, "no code for the root module's class '%s'", cls);
    return NULL;
  }
  const fe_stmt *fwd = NULL;
  const fe_block *body = &def->stmt->u.class_.body;
  for (int i = 0; i < body->n; i++)
    if (body->stmts[i]->kind == FE_S_DEF && !strcmp(body->stmts[i]->u.def.name, "forward"))
      fwd = body->stmts[i];
  if (!fwd) {
    nn_error(d, (nn_loc){def->code->entry, def->stmt->loc.line, def->stmt->loc.col},
             "the root module '%s' has no forward() method: nothing to compile", root->u.obj.name);
    return NULL;
  }
  L.g = ir_graph_new(arena, "forward");
  frame top = {.path = ""};
  L.f = &top;
  callargs a = {0};
  if (!make_inputs(&L, fwd, &a)) return NULL;
  lval *self = lv_new(&L, LV_MODULE);
  self->obj = root;
  self->path = "";
  lval *ret = lw_inline_call(&L, fwd, self, "", &a, fwd->loc);
  L.f = &top;
  add_outputs(&L, ret, fwd->loc);
  if (o && o->half_upcasts) *o->half_upcasts = L.half_upcasts;
  if (d->errors) return NULL;
  return L.g;
}
