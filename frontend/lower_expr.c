/* lower_expr.c — TorchScript expressions to lvals.
 *
 * Every expression evaluates to an lval: constants fold (arithmetic,
 * comparisons, `is None` on known values), names are looked up in the
 * frame, attributes of module objects become weights, constants or
 * submodules, subscripts of tuples and constant lists are resolved,
 * calls go to inlined TorchScript functions and methods, to the schema
 * table (lower_call.c) or to the few builtins handled here (int(),
 * float(), len(), ...). What does not fold becomes IR through the ops.
 */
#include "lower_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- expressions ------------------------------------------------------------ */

static bool const_truth(const lval *v, bool *out) {
  if (v->kind != LV_CONST) return false;
  switch (v->c.kind) {
  case IR_C_BOOL:
  case IR_C_INT: *out = v->c.i != 0; return true;
  case IR_C_FLOAT: *out = v->c.f != 0; return true;
  case IR_C_NONE: *out = false; return true;
  default: return false;
  }
}

static bool const_num(const lval *v, double *f, bool *isint, int64_t *i) {
  if (v->kind != LV_CONST) return false;
  if (v->c.kind == IR_C_INT || v->c.kind == IR_C_BOOL) {
    *isint = true;
    *i = v->c.i;
    *f = (double)v->c.i;
    return true;
  }
  if (v->c.kind == IR_C_FLOAT) {
    *isint = false;
    *f = v->c.f;
    *i = 0;
    return true;
  }
  return false;
}

/* The compile-time value of a scalar: a constant, or a graph value the
 * driver's resolver can evaluate (shape arithmetic once input shapes are
 * known). */
bool lw_known_scalar(lower *L, const lval *v, ir_const *out) {
  if (v->kind == LV_CONST) {
    *out = v->c;
    return true;
  }
  if (v->kind != LV_VALUE || !L->opts.resolve) return false;
  ir_tkind k = ir_vtype(L->g, v->v)->kind;
  if (k != IR_T_INT && k != IR_T_BOOL && k != IR_T_FLOAT && k != IR_T_UNKNOWN) return false;
  return L->opts.resolve(L->opts.ctx, L->g, v->v, out) == 0;
}

/* A condition's truth when known at compile time. */
bool lw_known_truth(lower *L, const lval *v, bool *out) {
  ir_const c;
  if (!lw_known_scalar(L, v, &c)) return false;
  lval tmp = {.kind = LV_CONST, .c = c};
  return const_truth(&tmp, out);
}

static int64_t floordiv64(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}

/* Folds a binary op on two constants; NULL when not foldable. */
lval *lw_fold_binary(lower *L, const char *op, const lval *a, const lval *b) {
  double fa, fb;
  int64_t ia, ib;
  bool inta, intb;
  if (!const_num(a, &fa, &inta, &ia) || !const_num(b, &fb, &intb, &ib)) return NULL;
  bool ints = inta && intb;
  if (!strcmp(op, "+")) return ints ? lv_int(L, ia + ib) : lv_float(L, fa + fb);
  if (!strcmp(op, "-")) return ints ? lv_int(L, ia - ib) : lv_float(L, fa - fb);
  if (!strcmp(op, "*")) return ints ? lv_int(L, ia * ib) : lv_float(L, fa * fb);
  if (!strcmp(op, "/")) return fb != 0 ? lv_float(L, fa / fb) : NULL;
  if (!strcmp(op, "//")) {
    if (ints) return ib != 0 ? lv_int(L, floordiv64(ia, ib)) : NULL;
    return fb != 0 ? lv_float(L, floor(fa / fb)) : NULL;
  }
  if (!strcmp(op, "%")) {
    if (ints) return ib != 0 ? lv_int(L, ia - floordiv64(ia, ib) * ib) : NULL;
    return fb != 0 ? lv_float(L, fa - floor(fa / fb) * fb) : NULL;
  }
  if (!strcmp(op, "==")) return lv_bool(L, fa == fb);
  if (!strcmp(op, "!=")) return lv_bool(L, fa != fb);
  if (!strcmp(op, "<")) return lv_bool(L, fa < fb);
  if (!strcmp(op, "<=")) return lv_bool(L, fa <= fb);
  if (!strcmp(op, ">")) return lv_bool(L, fa > fb);
  if (!strcmp(op, ">=")) return lv_bool(L, fa >= fb);
  if (!strcmp(op, "and")) return lv_bool(L, fa != 0 && fb != 0);
  if (!strcmp(op, "or")) return lv_bool(L, fa != 0 || fb != 0);
  return NULL;
}

static const struct {
  const char *op;   /* source operator */
  const char *aten; /* the schema's qualname for scalars */
} binops[] = {
    {"+", "aten::add"},       {"-", "aten::sub"},       {"*", "aten::mul"}, {"/", "aten::div"},
    {"//", "aten::floordiv"}, {"%", "aten::remainder"}, {"==", "aten::eq"}, {"!=", "aten::ne"},
    {"<", "aten::lt"},        {"<=", "aten::le"},       {">", "aten::gt"},  {">=", "aten::ge"},
};

lval *lw_eval_binary(lower *L, const fe_expr *e) {
  const char *op = e->u.binary.op;
  lval *a = lw_eval(L, e->u.binary.a);
  lval *b = lw_eval(L, e->u.binary.b);
  if (a->kind == LV_POISON || b->kind == LV_POISON) return lv_poison(L);
  if (!strcmp(op, "is") || !strcmp(op, "is not")) {
    bool an = a->kind == LV_CONST && a->c.kind == IR_C_NONE;
    bool bn = b->kind == LV_CONST && b->c.kind == IR_C_NONE;
    bool known = an || bn; /* anything but a None constant is not None */
    if (known) {
      bool same = an && bn;
      return lv_bool(L, !strcmp(op, "is") ? same : !same);
    }
  }
  lval *f = lw_fold_binary(L, op, a, b);
  if (f) return f;
  for (int i = 0; i < NN_ARRAY_LEN(binops); i++) {
    if (strcmp(binops[i].op, op)) continue;
    lval *args[2] = {a, b};
    callargs ca = {.pos = args, .npos = 2};
    return lw_call_op(L, binops[i].aten, &ca, e->loc);
  }
  nn_error(L->d, e->loc, "operator '%s' on %s and %s is not supported", op, lv_describe(L, a),
           lv_describe(L, b));
  return lv_poison(L);
}

static lval *eval_unary(lower *L, const fe_expr *e) {
  lval *a = lw_eval(L, e->u.unary.a);
  const char *op = e->u.unary.op;
  if (a->kind == LV_POISON) return a;
  if (a->kind == LV_CONST) {
    if (!strcmp(op, "-") && a->c.kind == IR_C_INT) return lv_int(L, -a->c.i);
    if (!strcmp(op, "-") && a->c.kind == IR_C_FLOAT) return lv_float(L, -a->c.f);
    if (!strcmp(op, "+") && (a->c.kind == IR_C_INT || a->c.kind == IR_C_FLOAT)) return a;
    bool t;
    if (!strcmp(op, "not") && const_truth(a, &t)) return lv_bool(L, !t);
  }
  if (!strcmp(op, "-")) {
    lval *args[1] = {a};
    callargs ca = {.pos = args, .npos = 1};
    return lw_call_op(L, "aten::neg", &ca, e->loc);
  }
  nn_error(L->d, e->loc, "operator '%s' on %s is not supported", op, lv_describe(L, a));
  return lv_poison(L);
}

static lval *eval_list(lower *L, const fe_expr *e) {
  int n = e->u.seq.n;
  lval **items = nn_alloc(L->arena, sizeof(lval *) * (size_t)(n + 1));
  bool ints = n > 0, floats = n > 0, bools = n > 0;
  for (int i = 0; i < n; i++) {
    items[i] = lw_eval(L, e->u.seq.items[i]);
    if (items[i]->kind == LV_POISON) return items[i];
    bool c = items[i]->kind == LV_CONST;
    ints &= c && items[i]->c.kind == IR_C_INT;
    floats &= c && (items[i]->c.kind == IR_C_FLOAT || items[i]->c.kind == IR_C_INT);
    bools &= c && items[i]->c.kind == IR_C_BOOL;
  }
  if (ints || floats || bools) {
    ir_const c = {.kind = ints ? IR_C_INTLIST : bools ? IR_C_BOOLLIST : IR_C_FLOATLIST, .n = n};
    int64_t *iv = nn_alloc(L->arena, sizeof(int64_t) * (size_t)n);
    double *fv = nn_alloc(L->arena, sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
      iv[i] = items[i]->c.i;
      fv[i] = items[i]->c.kind == IR_C_FLOAT ? items[i]->c.f : (double)items[i]->c.i;
    }
    c.ints = iv;
    c.floats = fv;
    return lv_const(L, c);
  }
  lval *t = lv_new(L, LV_TUPLE); /* becomes list_construct when used */
  t->items = items;
  t->n = n;
  return t;
}

static callargs eval_args(lower *L, const fe_expr *e, int skip) {
  callargs a = {0};
  int n = e->u.call.nargs - skip;
  a.pos = nn_alloc(L->arena, sizeof(lval *) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; i++) a.pos[i] = lw_eval(L, e->u.call.args[skip + i]);
  a.npos = n > 0 ? n : 0;
  a.nkw = e->u.call.nkw;
  a.kwn = e->u.call.kwnames;
  a.kwv = nn_alloc(L->arena, sizeof(lval *) * (size_t)(a.nkw + 1));
  for (int i = 0; i < a.nkw; i++) a.kwv[i] = lw_eval(L, e->u.call.kwargs[i]);
  return a;
}

static lval *attr_of(lower *L, lval *obj, const char *name, nn_loc loc) {
  switch (obj->kind) {
  case LV_MODULE: return lw_module_attr(L, obj, name, loc);
  case LV_QUAL: {
    if (!strcmp(obj->qual, "CONSTANTS") && name[0] == 'c') {
      char *end;
      long idx = strtol(name + 1, &end, 10);
      const fe_pval *cs = L->m->constants;
      if (*end || !cs || cs->kind != FE_PV_TUPLE || idx < 0 || idx >= cs->u.seq.n) {
        nn_error(L->d, loc, "CONSTANTS.%s does not exist in %s", name,
                 L->m->format == FE_FMT_LEGACY ? "model.json's tensors" : "constants.pkl");
        return lv_poison(L);
      }
      lval *r = lw_from_pval(L, cs->u.seq.items[idx], nn_sprintf(L->arena, "CONSTANTS.%s", name),
                             loc);
      if (!r) {
        nn_error(L->d, loc, "CONSTANTS.%s holds a %s, which nncc cannot use", name,
                 fe_pkind_name(cs->u.seq.items[idx]->kind));
        return lv_poison(L);
      }
      return r;
    }
    return lv_qual(L, nn_sprintf(L->arena, "%s.%s", obj->qual, name));
  }
  case LV_POISON: return obj;
  default:
    nn_error(L->d, loc, "attribute '%s' of a %s is not supported", name, lv_describe(L, obj));
    return lv_poison(L);
  }
}

/* int(x), float(x), bool(x) on constants fold; otherwise aten::Int etc. */
static lval *call_builtin_cast(lower *L, const char *which, const callargs *a, nn_loc loc) {
  if (a->npos == 1 && a->nkw == 0 && a->pos[0]->kind == LV_CONST) {
    double f;
    int64_t i;
    bool isint;
    if (const_num(a->pos[0], &f, &isint, &i)) {
      if (!strcmp(which, "int")) return lv_int(L, isint ? i : (int64_t)f);
      if (!strcmp(which, "float")) return lv_float(L, f);
      if (!strcmp(which, "bool")) return lv_bool(L, f != 0);
    }
  }
  const char *q = !strcmp(which, "int")     ? "aten::Int"
                  : !strcmp(which, "float") ? "aten::Float"
                                            : "aten::Bool";
  return lw_call_op(L, q, a, loc);
}

static lval *eval_call(lower *L, const fe_expr *e) {
  const fe_expr *fnx = e->u.call.fn;
  /* (obj).method(args): method call on a module → inline. */
  lval *callee;
  if (fnx->kind == FE_E_ATTR) {
    lval *obj = lw_eval(L, fnx->u.attr.obj);
    callee = attr_of(L, obj, fnx->u.attr.name, fnx->loc);
  } else {
    callee = lw_eval(L, fnx);
  }
  if (callee->kind == LV_POISON) {
    eval_args(L, e, 0); /* still report problems inside the arguments */
    return callee;
  }
  if (callee->kind == LV_FUNC) {
    callargs a = eval_args(L, e, 0);
    lval *self = NULL;
    if (callee->obj) {
      self = lv_new(L, LV_MODULE);
      self->obj = callee->obj;
      self->path = callee->path;
    }
    return lw_inline_call(L, callee->fn, self, callee->obj ? callee->path : NULL, &a, e->loc);
  }
  if (callee->kind != LV_QUAL) {
    nn_error(L->d, e->loc, "a %s is not callable", lv_describe(L, callee));
    return lv_poison(L);
  }
  const char *q = callee->qual;
  /* Builtins that only shape the code, not the computation. */
  if (!strcmp(q, "annotate") || !strcmp(q, "unchecked_cast")) {
    if (e->u.call.nargs != 2) goto bad_arity;
    lval *v = lw_eval(L, e->u.call.args[1]);
    /* The printer writes aten::ScalarImplicit (and Int/FloatImplicit) of a
     * 0-dim tensor as annotate(number, t): keep that conversion. */
    const fe_expr *ty = e->u.call.args[0];
    if (v->kind == LV_VALUE && ir_vtype(L->g, v->v)->kind == IR_T_TENSOR && ty->kind == FE_E_NAME) {
      const char *conv = !strcmp(ty->u.name, "number")  ? "aten::ScalarImplicit"
                         : !strcmp(ty->u.name, "float") ? "aten::FloatImplicit"
                         : !strcmp(ty->u.name, "int")   ? "aten::IntImplicit"
                                                        : NULL;
      if (conv) {
        lval *args[1] = {v};
        callargs ca = {.pos = args, .npos = 1};
        return lw_call_op(L, conv, &ca, e->loc);
      }
    }
    return v;
  }
  if (!strcmp(q, "uninitialized")) return lv_none(L);
  if (!strcmp(q, "getattr")) {
    if (e->u.call.nargs != 2) goto bad_arity;
    lval *obj = lw_eval(L, e->u.call.args[0]);
    lval *name = lw_eval(L, e->u.call.args[1]);
    if (name->kind != LV_CONST || name->c.kind != IR_C_STR) {
      nn_error(L->d, e->loc, "getattr needs a constant attribute name");
      return lv_poison(L);
    }
    return attr_of(L, obj, name->c.s, e->loc);
  }
  callargs a = eval_args(L, e, 0);
  if (!strcmp(q, "int") || !strcmp(q, "float") || !strcmp(q, "bool"))
    return call_builtin_cast(L, q, &a, e->loc);
  if (!strcmp(q, "len")) return lw_call_op(L, "aten::len", &a, e->loc);
  if (!strcmp(q, "torch.device")) {
    if (a.npos == 1 && a.pos[0]->kind == LV_CONST && a.pos[0]->c.kind == IR_C_STR)
      return lv_const(L, (ir_const){.kind = IR_C_DEVICE, .s = a.pos[0]->c.s});
    nn_error(L->d, e->loc, "torch.device needs a constant string");
    return lv_poison(L);
  }
  if (!strncmp(q, "torch.", 6)) {
    const char *name = q + 6;
    if (strchr(name, '.')) {
      nn_error(L->d, e->loc, "unsupported call '%s'", q);
      return lv_poison(L);
    }
    return lw_call_op(L, nn_sprintf(L->arena, "aten::%s", name), &a, e->loc);
  }
  if (!strncmp(q, "ops.", 4)) {
    const char *ns = q + 4;
    const char *dot = strchr(ns, '.');
    if (!dot || strchr(dot + 1, '.')) {
      nn_error(L->d, e->loc, "unsupported call '%s'", q);
      return lv_poison(L);
    }
    return lw_call_op(L, nn_sprintf(L->arena, "%.*s::%s", (int)(dot - ns), ns, dot + 1), &a,
                      e->loc);
  }
  if (!strncmp(q, "__torch__.", 10)) {
    const fe_def *def = fe_find_def(L->m, q);
    if (def && def->stmt->kind == FE_S_DEF)
      return lw_inline_call(L, def->stmt, NULL, NULL, &a, e->loc);
    if (def)
      nn_error(L->d, e->loc, "constructing TorchScript class '%s' is not supported yet", q);
    else
      nn_error(L->d, e->loc, "no definition of '%s' in the archive's code", q);
    return lv_poison(L);
  }
  nn_error(L->d, e->loc, "unsupported call '%s'", q);
  return lv_poison(L);
bad_arity:
  nn_error(L->d, e->loc, "'%s' takes 2 arguments", q);
  return lv_poison(L);
}

static lval *eval_subscript(lower *L, const fe_expr *e) {
  lval *obj = lw_eval(L, e->u.sub.obj);
  if (obj->kind == LV_QUAL) return obj; /* a type like List[int] */
  if (obj->kind == LV_POISON) return obj;
  if (e->u.sub.nidx != 1 || e->u.sub.idx[0]->kind == FE_E_SLICE) {
    nn_error(L->d, e->loc, "only single-index subscripts are supported");
    return lv_poison(L);
  }
  lval *idx = lw_eval(L, e->u.sub.idx[0]);
  if (obj->kind == LV_TUPLE && idx->kind == LV_CONST && idx->c.kind == IR_C_INT) {
    int64_t i = idx->c.i < 0 ? idx->c.i + obj->n : idx->c.i;
    if (i < 0 || i >= obj->n) {
      nn_error(L->d, e->loc, "index %lld out of range for a tuple of %d", (long long)idx->c.i,
               obj->n);
      return lv_poison(L);
    }
    return obj->items[i];
  }
  if (obj->kind == LV_CONST && obj->c.kind == IR_C_INTLIST && idx->kind == LV_CONST &&
      idx->c.kind == IR_C_INT) {
    int64_t i = idx->c.i < 0 ? idx->c.i + obj->c.n : idx->c.i;
    if (i < 0 || i >= obj->c.n) {
      nn_error(L->d, e->loc, "index %lld out of range for a list of %d", (long long)idx->c.i,
               obj->c.n);
      return lv_poison(L);
    }
    return lv_int(L, obj->c.ints[i]);
  }
  lval *args[2] = {obj, idx};
  callargs ca = {.pos = args, .npos = 2};
  return lw_call_op(L, "aten::__getitem__", &ca, e->loc);
}

lval *lw_eval(lower *L, const fe_expr *e) {
  switch (e->kind) {
  case FE_E_NAME: {
    const char *n = e->u.name;
    lval *v = lw_lookup(L, n);
    if (v) return v;
    if (!strcmp(n, "inf")) return lv_float(L, INFINITY);
    if (!strcmp(n, "nan")) return lv_float(L, NAN);
    static const char *const quals[] = {
        "torch",  "ops",      "__torch__",      "CONSTANTS",     "int",     "float",
        "bool",   "annotate", "unchecked_cast", "uninitialized", "getattr", "len",
        "Tensor", "List",     "Tuple",          "Optional",      "Dict",    "Final",
        "str",    "Any",      "NoneType",       "Device",        "number",
    };
    for (int i = 0; i < NN_ARRAY_LEN(quals); i++)
      if (!strcmp(n, quals[i])) return lv_qual(L, n);
    if (L->f->poisoned) return lv_poison(L);
    nn_error(L->d, e->loc, "undefined name '%s'", n);
    return lv_poison(L);
  }
  case FE_E_INT: return lv_int(L, e->u.i);
  case FE_E_FLOAT: return lv_float(L, e->u.f);
  case FE_E_STR: return lv_const(L, (ir_const){.kind = IR_C_STR, .s = e->u.str.s});
  case FE_E_TRUE: return lv_bool(L, true);
  case FE_E_FALSE: return lv_bool(L, false);
  case FE_E_NONE: return lv_none(L);
  case FE_E_ATTR: return attr_of(L, lw_eval(L, e->u.attr.obj), e->u.attr.name, e->loc);
  case FE_E_CALL: return eval_call(L, e);
  case FE_E_SUBSCRIPT: return eval_subscript(L, e);
  case FE_E_LIST: return eval_list(L, e);
  case FE_E_TUPLE: {
    lval *t = lv_new(L, LV_TUPLE);
    t->n = e->u.seq.n;
    t->items = nn_alloc(L->arena, sizeof(lval *) * (size_t)(t->n + 1));
    for (int i = 0; i < t->n; i++) t->items[i] = lw_eval(L, e->u.seq.items[i]);
    return t;
  }
  case FE_E_UNARY: return eval_unary(L, e);
  case FE_E_BINARY: return lw_eval_binary(L, e);
  case FE_E_TERNARY: {
    lval *c = lw_eval(L, e->u.ternary.cond);
    bool t;
    if (c->kind == LV_POISON) return c;
    if (lw_known_truth(L, c, &t)) return lw_eval(L, t ? e->u.ternary.then : e->u.ternary.els);
    nn_error(L->d, e->loc, "a conditional expression on a run-time value is not supported");
    return lv_poison(L);
  }
  case FE_E_DICT: nn_error(L->d, e->loc, "dict values are not supported"); return lv_poison(L);
  case FE_E_SLICE: nn_error(L->d, e->loc, "slices are not supported here"); return lv_poison(L);
  }
  return lv_poison(L);
}
