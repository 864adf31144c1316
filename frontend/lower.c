/* lower.c — from module tree + TorchScript code to one SSA graph.
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
#include "frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum lv_kind {
  LV_CONST,  /* c */
  LV_VALUE,  /* v */
  LV_MODULE, /* obj, path */
  LV_TUPLE,  /* items, n */
  LV_QUAL,   /* qual: a dotted name being resolved */
  LV_FUNC,   /* def (+ obj/path when it is a bound method) */
  LV_POISON, /* the result of something already reported */
} lv_kind;

typedef struct lval lval;
struct lval {
  lv_kind kind;
  ir_const c;         /* CONST */
  ir_value v;         /* VALUE */
  const fe_pval *obj; /* MODULE, FUNC (bound self) */
  const char *path;   /* MODULE, FUNC: module path, "" for the root */
  lval **items;       /* TUPLE */
  int n;              /* TUPLE */
  const char *qual;   /* QUAL */
  const fe_def *def;  /* FUNC */
  const fe_stmt *fn;  /* FUNC: the def statement (a method of a class) */
};

typedef struct binding {
  const char *name;
  lval *val;
} binding;

typedef struct frame {
  NN_VEC(binding) vars; /* name → lval; later bindings shadow earlier */
  const char *path;     /* module path of self, for node scopes */
  lval *ret;            /* set by return */
  bool returned;        /* a return statement ran */
  bool broke;           /* a break ran in the innermost loop */
  bool continued;       /* a continue ran in the innermost loop */
  int loops;            /* loops open in this frame (break/continue legal) */
  bool poisoned;        /* an error left names unbound: stay quiet about them */
} frame;

typedef struct weight_memo {
  const fe_tensor *t; /* the pickled tensor */
  ir_value v;         /* its WEIGHT value */
} weight_memo;

typedef struct lower {
  fe_model *m;
  nn_arena *arena;
  nn_diag *d;
  ir_graph *g;
  frame *f;  /* current frame */
  int depth; /* inlining depth */
  NN_VEC(weight_memo) weights;
  fe_lower_opts opts; /* resolver for shape-dependent control flow */
  int64_t unrolled;   /* loop iterations unrolled so far */
  int half_upcasts;   /* f16/bf16 weights computed in f32 */
} lower;

enum { MAX_INLINE_DEPTH = 256 };

static lval *eval(lower *L, const fe_expr *e);
static void exec_block(lower *L, const fe_block *b);
static void exec_for(lower *L, const fe_stmt *s);
static void exec_while(lower *L, const fe_stmt *s);

/* ---- lvals --------------------------------------------------------------- */

static lval *lv_new(lower *L, lv_kind k) {
  lval *v = nn_alloc(L->arena, sizeof *v);
  v->kind = k;
  return v;
}

static lval *lv_value(lower *L, ir_value v) {
  lval *x = lv_new(L, LV_VALUE);
  x->v = v;
  return x;
}

static lval *lv_const(lower *L, ir_const c) {
  lval *x = lv_new(L, LV_CONST);
  x->c = c;
  return x;
}

static lval *lv_int(lower *L, int64_t i) {
  return lv_const(L, (ir_const){.kind = IR_C_INT, .i = i});
}
static lval *lv_float(lower *L, double f) {
  return lv_const(L, (ir_const){.kind = IR_C_FLOAT, .f = f});
}
static lval *lv_bool(lower *L, bool b) {
  return lv_const(L, (ir_const){.kind = IR_C_BOOL, .i = b});
}
static lval *lv_none(lower *L) { return lv_const(L, (ir_const){.kind = IR_C_NONE}); }
static lval *lv_poison(lower *L) { return lv_new(L, LV_POISON); }

static lval *lv_qual(lower *L, const char *q) {
  lval *x = lv_new(L, LV_QUAL);
  x->qual = q;
  return x;
}

static const char *lv_describe(lower *L, const lval *v) {
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

static lval *lookup(lower *L, const char *name) {
  for (int i = L->f->vars.len - 1; i >= 0; i--)
    if (strcmp(L->f->vars.data[i].name, name) == 0) return L->f->vars.data[i].val;
  return NULL;
}

/* ---- graph building -------------------------------------------------------- */

static ir_nodeid append(lower *L, ir_op op, int nin, const ir_value *in, int nout, nn_loc loc) {
  ir_nodeid n = ir_append(L->g, op, nin, in, nout, loc);
  ir_node_get(L->g, n)->scope = L->f ? L->f->path : "";
  return n;
}

static ir_value const_node(lower *L, const ir_const *c, nn_loc loc) {
  ir_value v = ir_const_value(L->g, c, loc);
  ir_node_get(L->g, L->g->values.data[v].def)->scope = L->f ? L->f->path : "";
  return v;
}

static const ir_type *tensor_unknown(lower *L) {
  return ir_type_tensor(L->g, NN_DT_UNKNOWN, -1, NULL);
}

/* A .half()-ed model: the CPU backend computes in f32 (until --precision
 * fp16 exists), so f16/bf16 weights become contiguous f32 copies. Returns
 * false when the tensor doesn't fit its storage. */
static bool upcast_half(lower *L, ir_weight *w) {
  int64_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= w->sizes[i];
  bool bf16 = w->dtype == NN_DT_BF16;
  float *out = nn_alloc(L->arena, sizeof(float) * (size_t)(n > 0 ? n : 1));
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
    if (!w->data || off < 0 || (uint64_t)(off + 1) * 2 > w->nbytes) return false;
    uint16_t h;
    memcpy(&h, (const unsigned char *)w->data + off * 2, 2);
    out[e] = bf16 ? nn_bf16_to_f32(h) : nn_f16_to_f32(h);
    for (int i = w->rank - 1; i >= 0; i--) {
      if (++idx[i] < w->sizes[i]) break;
      idx[i] = 0;
    }
  }
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
  ir_nodeid n = append(L, NN_OP_WEIGHT, 0, NULL, 1, loc);
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
static lval *from_pval(lower *L, const fe_pval *p, const char *path, nn_loc loc) {
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
      x->items[i] = from_pval(L, p->u.seq.items[i], nn_sprintf(L->arena, "%s.%d", path, i), loc);
      if (!x->items[i]) return NULL;
    }
    return x;
  }
  default: return NULL;
  }
}

/* self.name on a module object. */
static lval *module_attr(lower *L, const lval *mod, const char *name, nn_loc loc) {
  const fe_pval *state = mod->obj->u.obj.state;
  const fe_pval *p = state ? fe_pdict_get(state, name) : NULL;
  if (p) {
    lval *r = from_pval(L, p, join_path(L, mod->path, name), loc);
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

static ir_value materialize(lower *L, const lval *v, nn_loc loc);

/* A list operand from a tuple of lvals. */
static ir_value materialize_list(lower *L, lval *const *items, int n, nn_loc loc) {
  ir_value *in = nn_alloc(L->arena, sizeof(ir_value) * (size_t)(n + 1));
  const ir_type *elem = NULL;
  for (int i = 0; i < n; i++) {
    in[i] = materialize(L, items[i], loc);
    const ir_type *t = ir_vtype(L->g, in[i]);
    if (!elem && t->kind != IR_T_NONE) elem = t;
  }
  ir_nodeid nd = append(L, NN_OP_LIST_CONSTRUCT, n, in, 1, loc);
  ir_value out = ir_node_get(L->g, nd)->out[0];
  if (!elem) elem = ir_type_scalar(L->g, IR_T_UNKNOWN);
  ir_set_type(L->g, out, ir_type_list(L->g, elem->kind == IR_T_TENSOR ? tensor_unknown(L) : elem));
  return out;
}

static ir_value materialize(lower *L, const lval *v, nn_loc loc) {
  switch (v->kind) {
  case LV_CONST: return const_node(L, &v->c, loc);
  case LV_VALUE: return v->v;
  case LV_TUPLE: return materialize_list(L, v->items, v->n, loc);
  case LV_POISON: return ir_const_none(L->g, loc);
  default:
    nn_error(L->d, loc, "a %s cannot be used as a value here", lv_describe(L, v));
    return ir_const_none(L->g, loc);
  }
}

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

typedef struct callargs {
  lval **pos; /* positional arguments */
  int npos;
  const char **kwn; /* keyword names */
  lval **kwv;       /* keyword values */
  int nkw;
} callargs;

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
    return materialize(L, arg, loc);
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
  return const_node(L, &c, loc);
}

/* Result types the lowering knows before shape inference. */
static void type_results(lower *L, const ir_node *n) {
  ir_graph *g = L->g;
  const ir_type *t = tensor_unknown(L);
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
  case NN_OP_UNBIND: t = ir_type_list(g, tensor_unknown(L)); break;
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
static lval *fold_binary(lower *L, const char *op, const lval *a, const lval *b);
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
    if (ops[i].op == s->op) return fold_binary(L, ops[i].py, a, b);
  return NULL;
}

static bool is_dunder(const char *name) {
  size_t n = strlen(name);
  return n > 4 && name[0] == '_' && name[1] == '_' && name[n - 1] == '_' && name[n - 2] == '_';
}

static lval *call_op(lower *L, const char *qualname, const callargs *a, nn_loc loc) {
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
  int nin = s->nmap;
  ir_value *in = nn_alloc(L->arena, sizeof(ir_value) * (size_t)(nin + 1));
  for (int i = 0; i < nin; i++) {
    const fe_smap *mp = &s->map[i];
    if (mp->param < 0) {
      ir_const c;
      if (!parse_literal(L, mp->literal, &c))
        nn_internal_error(__FILE__, __LINE__, "schemas.def: bad literal '%s'", mp->literal);
      in[i] = const_node(L, &c, loc);
    } else {
      in[i] = param_operand(L, &s->params[mp->param], slots[mp->param], loc);
    }
  }
  int nout = ir_ops[s->op].nout;
  if (nout < 0) nout = 1;
  ir_nodeid nd = append(L, s->op, nin, in, nout, loc);
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

/* ---- inlining ---------------------------------------------------------------- */

/* Runs a def with `self` (may be NULL for free functions) and arguments;
 * returns what it returns. */
static lval *inline_call(lower *L, const fe_stmt *fn, const lval *self, const char *path,
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
    vals[i] = eval(L, fn->u.def.params[i].deflt);
  }
  L->f = &fr;
  L->depth++;
  for (int i = 0; i < np; i++) bind(L, fn->u.def.params[i].name, vals[i]);
  exec_block(L, &fn->u.def.body);
  L->depth--;
  L->f = saved;
  return fr.ret ? fr.ret : lv_none(L);
}

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
static bool known_scalar(lower *L, const lval *v, ir_const *out) {
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
static bool known_truth(lower *L, const lval *v, bool *out) {
  ir_const c;
  if (!known_scalar(L, v, &c)) return false;
  lval tmp = {.kind = LV_CONST, .c = c};
  return const_truth(&tmp, out);
}

static int64_t floordiv64(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}

/* Folds a binary op on two constants; NULL when not foldable. */
static lval *fold_binary(lower *L, const char *op, const lval *a, const lval *b) {
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

static lval *eval_binary(lower *L, const fe_expr *e) {
  const char *op = e->u.binary.op;
  lval *a = eval(L, e->u.binary.a);
  lval *b = eval(L, e->u.binary.b);
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
  lval *f = fold_binary(L, op, a, b);
  if (f) return f;
  for (int i = 0; i < NN_ARRAY_LEN(binops); i++) {
    if (strcmp(binops[i].op, op)) continue;
    lval *args[2] = {a, b};
    callargs ca = {.pos = args, .npos = 2};
    return call_op(L, binops[i].aten, &ca, e->loc);
  }
  nn_error(L->d, e->loc, "operator '%s' on %s and %s is not supported", op, lv_describe(L, a),
           lv_describe(L, b));
  return lv_poison(L);
}

static lval *eval_unary(lower *L, const fe_expr *e) {
  lval *a = eval(L, e->u.unary.a);
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
    return call_op(L, "aten::neg", &ca, e->loc);
  }
  nn_error(L->d, e->loc, "operator '%s' on %s is not supported", op, lv_describe(L, a));
  return lv_poison(L);
}

static lval *eval_list(lower *L, const fe_expr *e) {
  int n = e->u.seq.n;
  lval **items = nn_alloc(L->arena, sizeof(lval *) * (size_t)(n + 1));
  bool ints = n > 0, floats = n > 0, bools = n > 0;
  for (int i = 0; i < n; i++) {
    items[i] = eval(L, e->u.seq.items[i]);
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
  for (int i = 0; i < n; i++) a.pos[i] = eval(L, e->u.call.args[skip + i]);
  a.npos = n > 0 ? n : 0;
  a.nkw = e->u.call.nkw;
  a.kwn = e->u.call.kwnames;
  a.kwv = nn_alloc(L->arena, sizeof(lval *) * (size_t)(a.nkw + 1));
  for (int i = 0; i < a.nkw; i++) a.kwv[i] = eval(L, e->u.call.kwargs[i]);
  return a;
}

static lval *attr_of(lower *L, lval *obj, const char *name, nn_loc loc) {
  switch (obj->kind) {
  case LV_MODULE: return module_attr(L, obj, name, loc);
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
      lval *r = from_pval(L, cs->u.seq.items[idx], nn_sprintf(L->arena, "CONSTANTS.%s", name), loc);
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
  return call_op(L, q, a, loc);
}

static lval *eval_call(lower *L, const fe_expr *e) {
  const fe_expr *fnx = e->u.call.fn;
  /* (obj).method(args): method call on a module → inline. */
  lval *callee;
  if (fnx->kind == FE_E_ATTR) {
    lval *obj = eval(L, fnx->u.attr.obj);
    callee = attr_of(L, obj, fnx->u.attr.name, fnx->loc);
  } else {
    callee = eval(L, fnx);
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
    return inline_call(L, callee->fn, self, callee->obj ? callee->path : NULL, &a, e->loc);
  }
  if (callee->kind != LV_QUAL) {
    nn_error(L->d, e->loc, "a %s is not callable", lv_describe(L, callee));
    return lv_poison(L);
  }
  const char *q = callee->qual;
  /* Builtins that only shape the code, not the computation. */
  if (!strcmp(q, "annotate") || !strcmp(q, "unchecked_cast")) {
    if (e->u.call.nargs != 2) goto bad_arity;
    lval *v = eval(L, e->u.call.args[1]);
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
        return call_op(L, conv, &ca, e->loc);
      }
    }
    return v;
  }
  if (!strcmp(q, "uninitialized")) return lv_none(L);
  if (!strcmp(q, "getattr")) {
    if (e->u.call.nargs != 2) goto bad_arity;
    lval *obj = eval(L, e->u.call.args[0]);
    lval *name = eval(L, e->u.call.args[1]);
    if (name->kind != LV_CONST || name->c.kind != IR_C_STR) {
      nn_error(L->d, e->loc, "getattr needs a constant attribute name");
      return lv_poison(L);
    }
    return attr_of(L, obj, name->c.s, e->loc);
  }
  callargs a = eval_args(L, e, 0);
  if (!strcmp(q, "int") || !strcmp(q, "float") || !strcmp(q, "bool"))
    return call_builtin_cast(L, q, &a, e->loc);
  if (!strcmp(q, "len")) return call_op(L, "aten::len", &a, e->loc);
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
    return call_op(L, nn_sprintf(L->arena, "aten::%s", name), &a, e->loc);
  }
  if (!strncmp(q, "ops.", 4)) {
    const char *ns = q + 4;
    const char *dot = strchr(ns, '.');
    if (!dot || strchr(dot + 1, '.')) {
      nn_error(L->d, e->loc, "unsupported call '%s'", q);
      return lv_poison(L);
    }
    return call_op(L, nn_sprintf(L->arena, "%.*s::%s", (int)(dot - ns), ns, dot + 1), &a, e->loc);
  }
  if (!strncmp(q, "__torch__.", 10)) {
    const fe_def *def = fe_find_def(L->m, q);
    if (def && def->stmt->kind == FE_S_DEF)
      return inline_call(L, def->stmt, NULL, NULL, &a, e->loc);
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
  lval *obj = eval(L, e->u.sub.obj);
  if (obj->kind == LV_QUAL) return obj; /* a type like List[int] */
  if (obj->kind == LV_POISON) return obj;
  if (e->u.sub.nidx != 1 || e->u.sub.idx[0]->kind == FE_E_SLICE) {
    nn_error(L->d, e->loc, "only single-index subscripts are supported");
    return lv_poison(L);
  }
  lval *idx = eval(L, e->u.sub.idx[0]);
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
  return call_op(L, "aten::__getitem__", &ca, e->loc);
}

static lval *eval(lower *L, const fe_expr *e) {
  switch (e->kind) {
  case FE_E_NAME: {
    const char *n = e->u.name;
    lval *v = lookup(L, n);
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
  case FE_E_ATTR: return attr_of(L, eval(L, e->u.attr.obj), e->u.attr.name, e->loc);
  case FE_E_CALL: return eval_call(L, e);
  case FE_E_SUBSCRIPT: return eval_subscript(L, e);
  case FE_E_LIST: return eval_list(L, e);
  case FE_E_TUPLE: {
    lval *t = lv_new(L, LV_TUPLE);
    t->n = e->u.seq.n;
    t->items = nn_alloc(L->arena, sizeof(lval *) * (size_t)(t->n + 1));
    for (int i = 0; i < t->n; i++) t->items[i] = eval(L, e->u.seq.items[i]);
    return t;
  }
  case FE_E_UNARY: return eval_unary(L, e);
  case FE_E_BINARY: return eval_binary(L, e);
  case FE_E_TERNARY: {
    lval *c = eval(L, e->u.ternary.cond);
    bool t;
    if (c->kind == LV_POISON) return c;
    if (known_truth(L, c, &t)) return eval(L, t ? e->u.ternary.then : e->u.ternary.els);
    nn_error(L->d, e->loc, "a conditional expression on a run-time value is not supported");
    return lv_poison(L);
  }
  case FE_E_DICT: nn_error(L->d, e->loc, "dict values are not supported"); return lv_poison(L);
  case FE_E_SLICE: nn_error(L->d, e->loc, "slices are not supported here"); return lv_poison(L);
  }
  return lv_poison(L);
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
      ir_nodeid nd = append(L, NN_OP_LIST_UNPACK, 1, &v->v, n, t->loc);
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
  case FE_S_EXPR: eval(L, s->u.expr); break;
  case FE_S_ASSIGN: {
    lval *v = eval(L, s->u.assign.value);
    for (int i = 0; i < s->u.assign.ntargets; i++) assign_target(L, s->u.assign.targets[i], v);
    break;
  }
  case FE_S_ANNASSIGN:
    if (s->u.ann.value) assign_target(L, s->u.ann.target, eval(L, s->u.ann.value));
    break;
  case FE_S_AUGASSIGN: {
    fe_expr bin = {.kind = FE_E_BINARY, .loc = s->loc};
    char op[4] = {0};
    size_t n = strlen(s->u.aug.op);
    memcpy(op, s->u.aug.op, n > 1 && n < 4 ? n - 1 : 0);
    bin.u.binary.op = nn_strdup(L->arena, op);
    bin.u.binary.a = s->u.aug.target;
    bin.u.binary.b = s->u.aug.value;
    assign_target(L, s->u.aug.target, eval_binary(L, &bin));
    break;
  }
  case FE_S_RETURN:
    L->f->ret = s->u.expr ? eval(L, s->u.expr) : lv_none(L);
    L->f->returned = true;
    break;
  case FE_S_IF: {
    lval *c = eval(L, s->u.if_.cond);
    bool t;
    if (c->kind == LV_POISON) break;
    if (known_truth(L, c, &t)) {
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
      !strcmp(it->u.call.fn->u.name, "range") && !lookup(L, "range")) {
    int n = it->u.call.nargs;
    if (n < 1 || n > 3 || it->u.call.nkw) {
      nn_error(L->d, it->loc, "range() takes 1 to 3 arguments");
      return;
    }
    int64_t b[3] = {0, 0, 1};
    for (int i = 0; i < n; i++) {
      lval *v = eval(L, it->u.call.args[i]);
      ir_const c;
      if (v->kind == LV_POISON) return;
      if (!known_scalar(L, v, &c) || c.kind != IR_C_INT) {
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
  lval *v = eval(L, it);
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
    lval *c = eval(L, s->u.while_.cond);
    bool t;
    if (c->kind == LV_POISON) return;
    if (!known_truth(L, c, &t)) {
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
      t = tensor_unknown(L);
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
  case LV_CONST: ir_add_output(L->g, const_node(L, &v->c, loc)); return;
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
  lval *ret = inline_call(&L, fwd, self, "", &a, fwd->loc);
  L.f = &top;
  add_outputs(&L, ret, fwd->loc);
  if (o && o->half_upcasts) *o->half_upcasts = L.half_upcasts;
  if (d->errors) return NULL;
  return L.g;
}
