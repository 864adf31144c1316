/* lower_call.c — ATen and prim calls through the schema table.
 *
 * A call's arguments are matched against the overloads schema.c parsed
 * from frontend/schemas.def, in order: the first overload whose
 * parameters accept the arguments' coarse kinds (tensor, int, float, list
 * of ints, ...) builds the canonical op of ir/ops.def, with defaults filled
 * in and mapping literals parsed. Calls whose operands are all known
 * numbers fold at once (scalar arithmetic, comparisons); results get the
 * types known before shape inference (sizes are ints, list ops give lists).
 * An op with no row is reported by name, once per call site.
 */
#include "lower_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- literal parsing (schema defaults and mapping literals) ---------------- */

/* Parses a Python literal as written in schemas.def. */
static bool parse_literal(lower *L, const char *s, ir_const *c) {
  while (*s == ' ') s++;
  memset(c, 0, sizeof *c);
  if (!strcmp(s, "None")) {
    c->kind = IR_C_NONE;
    return true;
  }
  if (!strcmp(s, "True")) {
    c->kind = IR_C_BOOL;
    c->i = 1;
    return true;
  }
  if (!strcmp(s, "False")) {
    c->kind = IR_C_BOOL;
    c->i = 0;
    return true;
  }
  if (*s == '"' || *s == '\'') {
    size_t n = strlen(s);
    c->kind = IR_C_STR;
    c->s = nn_strndup(L->arena, s + 1, n >= 2 ? n - 2 : 0);
    return true;
  }
  if (*s == '[') {
    NN_VEC(int64_t) iv = {0};
    NN_VEC(double) fv = {0};
    bool isfloat = false, isbool = false;
    const char *p = s + 1;
    while (*p && *p != ']') {
      while (*p == ' ' || *p == ',') p++;
      if (*p == ']') break;
      char *end;
      if (!strncmp(p, "True", 4) || !strncmp(p, "False", 5)) {
        isbool = true;
        int64_t b = *p == 'T';
        NN_PUSH(L->arena, iv, b);
        NN_PUSH(L->arena, fv, (double)b);
        p += b ? 4 : 5;
        continue;
      }
      double f = strtod(p, &end);
      if (end == p) return false;
      for (const char *q = p; q < end; q++)
        if (*q == '.' || *q == 'e' || *q == 'E') isfloat = true;
      NN_PUSH(L->arena, iv, (int64_t)f);
      NN_PUSH(L->arena, fv, f);
      p = end;
    }
    c->kind = isfloat ? IR_C_FLOATLIST : isbool ? IR_C_BOOLLIST : IR_C_INTLIST;
    c->n = iv.len;
    c->ints = iv.data ? iv.data : nn_alloc(L->arena, 8);
    c->floats = fv.data ? fv.data : nn_alloc(L->arena, 8);
    return true;
  }
  char *end;
  if (strpbrk(s, ".eE") || !strcmp(s, "inf") || !strcmp(s, "-inf")) {
    c->kind = IR_C_FLOAT;
    c->f = strtod(s, &end);
  } else {
    c->kind = IR_C_INT;
    c->i = strtoll(s, &end, 10);
  }
  return end != s;
}

/* ---- op calls through the schema table ----------------------------------- */

typedef enum coarse {
  K_TENSOR,
  K_INT,
  K_FLOAT,
  K_BOOL,
  K_NONE,
  K_STR,
  K_DEVICE,
  K_INTLIST,
  K_FLOATLIST,
  K_BOOLLIST,
  K_TENSORLIST,
  K_LIST,
  K_ANY,
  K_OTHER,
} coarse;

static coarse coarse_of_type(const ir_type *t) {
  switch (t->kind) {
  case IR_T_TENSOR: return K_TENSOR;
  case IR_T_INT: return K_INT;
  case IR_T_FLOAT: return K_FLOAT;
  case IR_T_BOOL: return K_BOOL;
  case IR_T_NONE: return K_NONE;
  case IR_T_STR: return K_STR;
  case IR_T_DEVICE: return K_DEVICE;
  case IR_T_LIST: {
    const ir_type *e = t->elems[0];
    if (e->kind == IR_T_TENSOR) return K_TENSORLIST;
    if (e->kind == IR_T_INT) return K_INTLIST;
    if (e->kind == IR_T_FLOAT) return K_FLOATLIST;
    if (e->kind == IR_T_BOOL) return K_BOOLLIST;
    return K_LIST;
  }
  case IR_T_UNKNOWN: return K_ANY;
  default: return K_OTHER;
  }
}

static coarse coarse_of(lower *L, const lval *v) {
  switch (v->kind) {
  case LV_CONST:
    switch (v->c.kind) {
    case IR_C_INT: return K_INT;
    case IR_C_FLOAT: return K_FLOAT;
    case IR_C_BOOL: return K_BOOL;
    case IR_C_NONE: return K_NONE;
    case IR_C_STR: return K_STR;
    case IR_C_DEVICE: return K_DEVICE;
    case IR_C_INTLIST: return K_INTLIST;
    case IR_C_FLOATLIST: return K_FLOATLIST;
    case IR_C_BOOLLIST: return K_BOOLLIST;
    }
    return K_OTHER;
  case LV_VALUE: return coarse_of_type(ir_vtype(L->g, v->v));
  case LV_TUPLE: {
    if (v->n == 0) return K_LIST;
    coarse all = K_ANY;
    for (int i = 0; i < v->n; i++) {
      coarse k = coarse_of(L, v->items[i]);
      if (k == K_NONE) continue; /* Tensor?[] lists hold None */
      if (all == K_ANY)
        all = k;
      else if (all != k)
        return K_LIST;
    }
    if (all == K_TENSOR) return K_TENSORLIST;
    if (all == K_INT) return K_INTLIST;
    if (all == K_FLOAT) return K_FLOATLIST;
    if (all == K_BOOL) return K_BOOLLIST;
    return K_LIST;
  }
  case LV_POISON: return K_ANY;
  default: return K_OTHER;
  }
}

/* Does an argument of coarse kind k fit parameter p? */
static bool accepts(const fe_sparam *p, coarse k) {
  if (k == K_ANY) return true;
  if (k == K_NONE) return p->optional || p->type == FE_AT_OTHER;
  switch (p->type) {
  case FE_AT_TENSOR: return k == K_TENSOR;
  case FE_AT_TENSOR_LIST: return k == K_TENSORLIST || k == K_LIST;
  case FE_AT_INT: return k == K_INT || k == K_BOOL;
  case FE_AT_INT_LIST: return k == K_INTLIST || (k == K_LIST) || (p->list_len > 0 && k == K_INT);
  case FE_AT_FLOAT: return k == K_FLOAT || k == K_INT;
  case FE_AT_FLOAT_LIST: return k == K_FLOATLIST || k == K_INTLIST;
  case FE_AT_BOOL: return k == K_BOOL;
  case FE_AT_BOOL_LIST: return k == K_BOOLLIST;
  case FE_AT_SCALAR: return k == K_INT || k == K_FLOAT || k == K_BOOL;
  case FE_AT_STR: return k == K_STR;
  case FE_AT_DEVICE: return k == K_DEVICE || k == K_STR;
  case FE_AT_ENUM: return k == K_INT;
  case FE_AT_ANY: return true;
  case FE_AT_ANY_LIST:
    return k == K_TENSORLIST || k == K_INTLIST || k == K_FLOATLIST || k == K_BOOLLIST ||
           k == K_LIST;
  case FE_AT_OTHER: return false;
  }
  return false;
}

/* Binds call arguments to the schema's parameters; NULL slots are
 * defaulted. Returns false when this overload doesn't accept the call. */
static bool bind_args(lower *L, const fe_schema *s, const callargs *a, lval **slots) {
  int npos_params = 0;
  for (int i = 0; i < s->nparams; i++)
    if (!s->params[i].kwonly) npos_params++;
  if (a->npos > npos_params) return false;
  for (int i = 0; i < s->nparams; i++) slots[i] = NULL;
  for (int i = 0; i < a->npos; i++) slots[i] = a->pos[i];
  for (int k = 0; k < a->nkw; k++) {
    int found = -1;
    for (int i = 0; i < s->nparams; i++)
      if (strcmp(s->params[i].name, a->kwn[k]) == 0) found = i;
    if (found < 0 || slots[found]) return false;
    slots[found] = a->kwv[k];
  }
  for (int i = 0; i < s->nparams; i++) {
    if (!slots[i]) {
      if (!s->params[i].deflt) return false;
      continue;
    }
    if (!accepts(&s->params[i], coarse_of(L, slots[i]))) return false;
  }
  return true;
}

/* The operand for parameter p from an argument (or its default). */
static ir_value param_operand(lower *L, const fe_sparam *p, const lval *arg, nn_loc loc) {
  ir_const c;
  if (!arg) {
    if (!parse_literal(L, p->deflt, &c))
      nn_internal_error(__FILE__, __LINE__, "schemas.def: bad default '%s'", p->deflt);
  } else if (arg->kind == LV_CONST) {
    c = arg->c;
  } else {
    return lw_materialize(L, arg, loc);
  }
  /* int[N] given one int (a default like stride=1, or a scalar arg). */
  if (c.kind == IR_C_INT && p->type == FE_AT_INT_LIST) {
    int n = p->list_len > 0 ? p->list_len : 1;
    int64_t *v = nn_alloc(L->arena, sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = c.i;
    c = (ir_const){.kind = IR_C_INTLIST, .n = n, .ints = v};
  } else if (c.kind == IR_C_INT && p->type == FE_AT_FLOAT) {
    c = (ir_const){.kind = IR_C_FLOAT, .f = (double)c.i};
  } else if (c.kind == IR_C_INTLIST && p->type == FE_AT_FLOAT_LIST) {
    double *v = nn_alloc(L->arena, sizeof(double) * (size_t)(c.n + 1));
    for (int i = 0; i < c.n; i++) v[i] = (double)c.ints[i];
    c = (ir_const){.kind = IR_C_FLOATLIST, .n = c.n, .floats = v};
  } else if (c.kind == IR_C_STR && p->type == FE_AT_DEVICE) {
    c.kind = IR_C_DEVICE;
  }
  return lw_const_node(L, &c, loc);
}

/* Result types the lowering knows before shape inference. */
static void type_results(lower *L, const ir_node *n) {
  ir_graph *g = L->g;
  const ir_type *t = lw_tensor_unknown(L);
  switch (n->op) {
  case NN_OP_SIZE:
  case NN_OP_DIM:
  case NN_OP_NUMEL:
  case NN_OP_TO_INT: t = ir_type_scalar(g, IR_T_INT); break;
  case NN_OP_TO_FLOAT:
  case NN_OP_SCALAR_DIV: t = ir_type_scalar(g, IR_T_FLOAT); break;
  case NN_OP_TO_BOOL:
  case NN_OP_SCALAR_EQ:
  case NN_OP_SCALAR_NE:
  case NN_OP_SCALAR_LT:
  case NN_OP_SCALAR_LE:
  case NN_OP_SCALAR_GT:
  case NN_OP_SCALAR_GE: t = ir_type_scalar(g, IR_T_BOOL); break;
  case NN_OP_SIZES: t = ir_type_list(g, ir_type_scalar(g, IR_T_INT)); break;
  case NN_OP_SCALAR_IMPLICIT: t = ir_type_scalar(g, IR_T_FLOAT); break;
  case NN_OP_SCALAR_ADD:
  case NN_OP_SCALAR_SUB:
  case NN_OP_SCALAR_MUL:
  case NN_OP_SCALAR_FLOORDIV:
  case NN_OP_SCALAR_MOD:
  case NN_OP_SCALAR_NEG: {
    bool isfloat = false;
    for (int i = 0; i < n->nin; i++) isfloat |= ir_vtype(g, n->in[i])->kind == IR_T_FLOAT;
    t = ir_type_scalar(g, isfloat ? IR_T_FLOAT : IR_T_INT);
    break;
  }
  case NN_OP_LIST_GET: {
    const ir_type *lt = ir_vtype(g, n->in[0]);
    t = lt->kind == IR_T_LIST ? lt->elems[0] : ir_type_scalar(g, IR_T_UNKNOWN);
    break;
  }
  case NN_OP_CHUNK:
  case NN_OP_SPLIT:
  case NN_OP_BROADCAST_TENSORS:
  case NN_OP_UNBIND: t = ir_type_list(g, lw_tensor_unknown(L)); break;
  default: break;
  }
  for (int i = 0; i < n->nout; i++) {
    const ir_type *ti = t;
    if ((n->op == NN_OP_MAX_DIM || n->op == NN_OP_MIN_DIM || n->op == NN_OP_MAX_POOL2D_INDICES ||
         n->op == NN_OP_ADAPTIVE_MAX_POOL2D) &&
        i == 1)
      ti = ir_type_tensor(g, NN_DT_I64, -1, NULL);
    ir_set_type(g, n->out[i], ti);
  }
}

/* Scalar ops on constants fold at once (scripted code: torch.ne(i, 0)
 * on an unrolled loop index), so conditions built from them are known. */
static lval *fold_scalar_op(lower *L, const fe_schema *s, lval **slots) {
  static const struct {
    ir_op op;       /* scalar op */
    const char *py; /* the Python operator it computes */
  } ops[] = {
      {NN_OP_SCALAR_ADD, "+"}, {NN_OP_SCALAR_SUB, "-"},       {NN_OP_SCALAR_MUL, "*"},
      {NN_OP_SCALAR_DIV, "/"}, {NN_OP_SCALAR_FLOORDIV, "//"}, {NN_OP_SCALAR_MOD, "%"},
      {NN_OP_SCALAR_EQ, "=="}, {NN_OP_SCALAR_NE, "!="},       {NN_OP_SCALAR_LT, "<"},
      {NN_OP_SCALAR_LE, "<="}, {NN_OP_SCALAR_GT, ">"},        {NN_OP_SCALAR_GE, ">="},
  };
  if (s->nmap != 2 || s->map[0].param < 0 || s->map[1].param < 0) return NULL;
  const lval *a = slots[s->map[0].param], *b = slots[s->map[1].param];
  if (!a || !b || a->kind != LV_CONST || b->kind != LV_CONST) return NULL;
  for (int i = 0; i < NN_ARRAY_LEN(ops); i++)
    if (ops[i].op == s->op) return lw_fold_binary(L, ops[i].py, a, b);
  return NULL;
}

static bool is_dunder(const char *name) {
  size_t n = strlen(name);
  return n > 4 && name[0] == '_' && name[1] == '_' && name[n - 1] == '_' && name[n - 2] == '_';
}

lval *lw_call_op(lower *L, const char *qualname, const callargs *a, nn_loc loc) {
  /* len() of a compile-time list or tuple is a constant. */
  if (!strcmp(qualname, "aten::len") && a->npos == 1 && a->nkw == 0) {
    const lval *x = a->pos[0];
    if (x->kind == LV_TUPLE) return lv_int(L, x->n);
    if (x->kind == LV_CONST &&
        (x->c.kind == IR_C_INTLIST || x->c.kind == IR_C_FLOATLIST || x->c.kind == IR_C_BOOLLIST))
      return lv_int(L, x->c.n);
  }
  int nrows;
  bool inplace = false;
  const fe_schema *const *rows = fe_schemas_for(qualname, &nrows);
  size_t ql = strlen(qualname);
  const char *colon = strstr(qualname, "::");
  if (!rows && ql > 1 && qualname[ql - 1] == '_' && colon && !is_dunder(colon + 2)) {
    char *pure = nn_strndup(L->arena, qualname, ql - 1);
    rows = fe_schemas_for(pure, &nrows);
    inplace = rows != NULL;
  }
  if (!rows) {
    const char *near = fe_schema_nearest(qualname);
    if (near)
      nn_error(L->d, loc, "unsupported op '%s' (did you mean '%s'?)", qualname, near);
    else
      nn_error(L->d, loc, "unsupported op '%s'; please report it with the model attached",
               qualname);
    return lv_poison(L);
  }
  /* Poisoned arguments: the problem was reported already. (Checked after
   * the op itself, so every unsupported op is reported.) */
  for (int i = 0; i < a->npos; i++)
    if (a->pos[i]->kind == LV_POISON) return lv_poison(L);
  for (int i = 0; i < a->nkw; i++)
    if (a->kwv[i]->kind == LV_POISON) return lv_poison(L);
  int maxp = 0;
  for (int r = 0; r < nrows; r++)
    if (rows[r]->nparams > maxp) maxp = rows[r]->nparams;
  lval **slots = nn_alloc(L->arena, sizeof(lval *) * (size_t)(maxp + 1));
  const fe_schema *s = NULL;
  for (int r = 0; r < nrows && !s; r++)
    if (bind_args(L, rows[r], a, slots)) s = rows[r];
  if (!s) {
    nn_buf b = {0};
    for (int i = 0; i < a->npos; i++)
      nn_buf_printf(&b, "%s%s", i ? ", " : "", lv_describe(L, a->pos[i]));
    for (int i = 0; i < a->nkw; i++)
      nn_buf_printf(&b, "%s%s=%s", a->npos + i ? ", " : "", a->kwn[i], lv_describe(L, a->kwv[i]));
    nn_error(L->d, loc, "no form of '%s' accepts (%s)", qualname, b.data ? b.data : "");
    for (int r = 0; r < nrows; r++)
      nn_note(L->d, (nn_loc){0}, "candidate: %s(%s)", qualname, rows[r]->sig);
    nn_buf_free(&b);
    return lv_poison(L);
  }
  lval *folded = fold_scalar_op(L, s, slots);
  if (folded) return folded;
  if (s->op == NN_OP_LSTM || s->op == NN_OP_GRU || s->op == NN_OP_RNN_TANH ||
      s->op == NN_OP_RNN_RELU)
    return lw_expand_rnn(L, s->op, slots, loc);
  int nin = s->nmap;
  ir_value *in = nn_alloc(L->arena, sizeof(ir_value) * (size_t)(nin + 1));
  for (int i = 0; i < nin; i++) {
    const fe_smap *mp = &s->map[i];
    if (mp->param < 0) {
      ir_const c;
      if (!parse_literal(L, mp->literal, &c))
        nn_internal_error(__FILE__, __LINE__, "schemas.def: bad literal '%s'", mp->literal);
      in[i] = lw_const_node(L, &c, loc);
    } else {
      in[i] = param_operand(L, &s->params[mp->param], slots[mp->param], loc);
    }
  }
  int nout = ir_ops[s->op].nout;
  if (nout < 0) nout = 1;
  ir_nodeid nd = lw_append(L, s->op, nin, in, nout, loc);
  ir_node *node = ir_node_get(L->g, nd);
  if (inplace) node->flags |= IR_NF_INPLACE;
  type_results(L, node);
  if (nout == 1) return lv_value(L, node->out[0]);
  lval *t = lv_new(L, LV_TUPLE);
  t->n = nout;
  t->items = nn_alloc(L->arena, sizeof(lval *) * (size_t)nout);
  for (int i = 0; i < nout; i++) t->items[i] = lv_value(L, node->out[i]);
  return t;
}
