/* shapes_meta.c — shape rules for creation ops and for the meta ops:
 * constants, weights, size/dim/numel, scalar arithmetic, lists, tuples.
 *
 * The meta ops are what traced shape arithmetic is made of: they compute
 * ints and int lists, not tensors. Their rules fill the side table (kval)
 * with what is known (a constant, a symbolic int equal to a dim, the
 * operands of a list or tuple, the pieces of a tensor list) so that the
 * consumers (view, expand, zeros, ...) see known shapes and shapes.c can
 * turn each meta node with a known scalar result into a CONSTANT. The
 * creation ops (zeros, full, arange, tensor) read such shapes and values.
 */
#include "shapes_internal.h"

#include <math.h>
#include <string.h>

/* ---- rules: creation -------------------------------------------------- */

/* The dtype of a Python number's type: int -> i64, float -> f32, bool. */
static nn_dtype number_dtype(const ir_type *t) {
  switch (t->kind) {
  case IR_T_INT: return NN_DT_I64;
  case IR_T_FLOAT: return NN_DT_F32;
  case IR_T_BOOL: return NN_DT_BOOL;
  case IR_T_TENSOR: return t->dtype;
  default: return NN_DT_UNKNOWN;
  }
}

/* zeros/ones(size, dtype?), full(size, value, dtype?). */
void sh_r_create(sh *s) {
  bool full = N(s)->op == NN_OP_FULL;
  int64_t *v;
  ir_dim *y;
  int n;
  if (!sh_opshape(s, 0, "size", false, &v, &y, &n)) return;
  ir_dim *o = dims_new(s, n);
  for (int j = 0; j < n; j++) {
    if (v[j] < 0 && v[j] != SH_SYM) {
      sh_err(s, "negative size %lld", (long long)v[j]);
      return;
    }
    o[j] = sh_shape_dim(s, v, y, j);
  }
  nn_dtype dt = full ? number_dtype(TY(s, 1)) : NN_DT_F32;
  if (!sh_opdtype(s, full ? 2 : 1, dt, &dt)) return;
  set(s, 0, tensor(s, dt, n, o));
}

/* zeros_like/ones_like(x, dtype?), full_like(x, value, dtype?). */
void sh_r_like(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  nn_dtype dt;
  if (!sh_opdtype(s, N(s)->op == NN_OP_FULL_LIKE ? 2 : 1, x->dtype, &dt)) return;
  set(s, 0, tensor(s, dt, x->rank, x->dims));
}

/* arange(start, end, step, dtype?): ceil((end - start) / step) elements. */
void sh_r_arange(sh *s) {
  double v[3];
  bool isint[3], all_int = true;
  for (int i = 0; i < 3; i++) {
    if (!sh_knum(s, i, &v[i], &isint[i])) {
      const ir_type *t = TY(s, i);
      kval *k = KI(s, i);
      /* arange(0, n, 1) with a symbolic int n has n elements */
      if (i == 1 && k->sym && !k->tensor) {
        isint[i] = true;
        v[i] = 0;
        continue;
      }
      if (t->kind != IR_T_UNKNOWN) sh_err(s, "the bounds of arange must be compile-time constants");
      return;
    }
    all_int = all_int && isint[i];
  }
  ir_dim len;
  kval *ke = KI(s, 1);
  if (!ke->known) {
    if (!(isint[0] && v[0] == 0 && isint[2] && v[2] == 1)) {
      sh_err(s, "the bounds of arange must be compile-time constants");
      return;
    }
    len = ke->sym;
  } else {
    if (v[2] == 0 || !isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2])) {
      sh_err(s, "invalid range");
      return;
    }
    double n = ceil((v[1] - v[0]) / v[2]);
    if (n < 0 || n > 9e15) {
      sh_err(s, "invalid range: %g elements", n);
      return;
    }
    len = D(s, (int64_t)n);
  }
  nn_dtype dt;
  if (!sh_opdtype(s, 3, all_int ? NN_DT_I64 : NN_DT_F32, &dt)) return;
  set(s, 0, tensor(s, dt, 1, &len));
}

/* tensor(data, dtype?): a 0-dim tensor for a number, [n] (or [n, m]) for
 * a (nested) list. */
void sh_r_tensor_from(sh *s) {
  const ir_type *t = TY(s, 0);
  kval *k = KI(s, 0);
  ir_dim dd[2];
  int rank = 0;
  const ir_type *elem = t;
  if (t->kind == IR_T_LIST) {
    int n = -1;
    if (k->known && k->c.kind >= IR_C_INTLIST)
      n = k->c.n;
    else if (k->src)
      n = k->nsrc;
    else if (k->sdims)
      n = k->nsdims;
    if (n < 0) {
      sh_err(s, "the data argument is not a compile-time constant");
      return;
    }
    dd[rank++] = D(s, n);
    elem = t->elems[0];
    if (elem->kind == IR_T_LIST) {
      kval *k0 = k->src && n > 0 ? K(s, k->src[0]) : NULL;
      int m = !k0 ? -1 : k0->known ? k0->c.n : k0->src ? k0->nsrc : -1;
      if (m < 0) {
        sh_err(s, "the data argument is not a compile-time constant");
        return;
      }
      dd[rank++] = D(s, m);
      elem = elem->elems[0];
    }
  }
  nn_dtype dt = number_dtype(elem);
  if (elem->kind == IR_T_UNKNOWN && !sh_is_unknown(s, 0)) dt = NN_DT_F32;
  if (!sh_opdtype(s, 1, dt, &dt)) return;
  set(s, 0, tensor(s, dt, rank, dd));
  if (rank == 0 && k->known && sh_is_num(&k->c)) {
    ir_const c = k->c;
    if (sh_to_category(&c, dt)) {
      KO(s, 0)->known = true;
      KO(s, 0)->tensor = true;
      KO(s, 0)->c = c;
    }
  }
}

/* ---- rules: meta (scalars, lists, tuples) ----------------------------- */

static void known_int(sh *s, int r, int64_t v) {
  kval *k = KO(s, r);
  k->known = true;
  k->c.kind = IR_C_INT;
  k->c.i = v;
}

/* An int result equal to dim d: known when d is a constant. */
static void dim_int(sh *s, int r, ir_dim d) {
  int64_t c;
  if (dc(s, d, &c))
    known_int(s, r, c);
  else
    KO(s, r)->sym = d;
}

/* constant: the attribute is the value. */
void sh_r_constant(sh *s) {
  ir_node *n = N(s);
  if (ir_vtype(s->g, n->out[0])->kind == IR_T_UNKNOWN) set(s, 0, ir_const_type(s->g, &n->c));
  kval *k = KO(s, 0);
  k->known = true;
  k->c = n->c;
}

/* weight: typed by the importer; typed from the weight record if not. */
/* A 0-dim weight's value is known at compile time (CONSTANTS.cN scalars of
 * traced shape arithmetic, e.g. the 2 in a channel-shuffle view). */
static void weight_value(const ir_weight *w, kval *k) {
  if (w->rank != 0 || !w->data) return;
  size_t es = nn_dtype_size(w->dtype);
  if (w->offset < 0 || (size_t)(w->offset + 1) * es > w->nbytes) return;
  const unsigned char *p = (const unsigned char *)w->data + (size_t)w->offset * es;
  ir_const c = {0};
  switch (w->dtype) {
  case NN_DT_I64: {
    int64_t v;
    memcpy(&v, p, 8);
    c.kind = IR_C_INT;
    c.i = v;
    break;
  }
  case NN_DT_I32: {
    int32_t v;
    memcpy(&v, p, 4);
    c.kind = IR_C_INT;
    c.i = v;
    break;
  }
  case NN_DT_F64: {
    double v;
    memcpy(&v, p, 8);
    c.kind = IR_C_FLOAT;
    c.f = v;
    break;
  }
  case NN_DT_F32: {
    float v;
    memcpy(&v, p, 4);
    c.kind = IR_C_FLOAT;
    c.f = v;
    break;
  }
  case NN_DT_BOOL:
    c.kind = IR_C_BOOL;
    c.i = p[0] != 0;
    break;
  default: return;
  }
  k->known = true;
  k->tensor = true;
  k->c = c;
  k->wrapped = !strncmp(w->name, "CONSTANTS.", 10);
}

void sh_r_weight(sh *s) {
  ir_node *n = N(s);
  if (n->weight < 0 || n->weight >= s->g->weights.len) return;
  const ir_weight *w = &s->g->weights.data[n->weight];
  weight_value(w, K(s, n->out[0]));
  if (ir_vtype(s->g, n->out[0])->kind != IR_T_UNKNOWN) return;
  if (w->rank < 0 || (w->rank > 0 && !w->sizes)) return;
  ir_dim *o = dims_new(s, w->rank);
  for (int i = 0; i < w->rank; i++) o[i] = D(s, w->sizes[i]);
  set(s, 0, tensor(s, w->dtype, w->rank, o));
}

/* size(x, dim), sizes(x), dim(x), sh_numel(x). */
void sh_r_size(sh *s) {
  ir_op op = N(s)->op;
  bool list = op == NN_OP_SIZES || op == NN_OP_BROADCAST_SIZES;
  set(s, 0, list ? ir_type_list(s->g, scalar(s, IR_T_INT)) : scalar(s, IR_T_INT));
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  if (op == NN_OP_BROADCAST_SIZES) { /* the broadcast of every operand, as a tensor's */
    int r = x->rank;
    const ir_dim *d = x->dims;
    for (int i = 1; i < N(s)->nin; i++) {
      const ir_type *y = sh_tens(s, i);
      ir_dim *o;
      if (!y || !sh_bcast(s, r, d, y->rank, y->dims, &r, &o)) return;
      d = o;
    }
    x = tensor(s, x->dtype, r, d);
  }
  switch (op) {
  case NN_OP_SIZE: {
    int d;
    if (x->rank == 0) {
      sh_err(s, "a 0-dim tensor has no dims");
      return;
    }
    if (sh_opdim(s, 1, x->rank, 0, &d)) dim_int(s, 0, x->dims[d]);
    break;
  }
  case NN_OP_DIM: known_int(s, 0, x->rank); break;
  case NN_OP_NUMEL: dim_int(s, 0, sh_numel(s, x->rank, x->dims)); break;
  default: { /* SIZES */
    kval *k = KO(s, 0);
    int64_t *v = nn_alloc(s->a, sizeof *v * (size_t)(x->rank + 1));
    bool all = true;
    for (int i = 0; i < x->rank; i++) all = all && dc(s, x->dims[i], &v[i]);
    if (all) {
      k->known = true;
      k->c.kind = IR_C_INTLIST;
      k->c.n = x->rank;
      k->c.ints = v;
    } else {
      k->sdims = x->dims;
      k->nsdims = x->rank;
    }
  }
  }
}

/* num_to_tensor(n): a 0-dim tensor, i64 for ints and bools, f64 for
 * floats (prim::NumToTensor); the value stays known. */
void sh_r_num_to_tensor(sh *s) {
  const ir_type *t = TY(s, 0);
  nn_dtype dt = t->kind == IR_T_FLOAT ? NN_DT_F64
                : t->kind == IR_T_INT || t->kind == IR_T_BOOL
                    ? NN_DT_I64
                    : NN_DT_UNKNOWN;
  if (dt == NN_DT_UNKNOWN) {
    if (!sh_is_unknown(s, 0)) sh_err(s, "expects a number, got %s", sh_tstr(s, t));
    return;
  }
  set(s, 0, tensor(s, dt, 0, NULL));
  kval k = *KI(s, 0);
  if (k.known && sh_to_category(&k.c, dt)) {
    k.tensor = true;
    *KO(s, 0) = k;
  } else if (k.sym) {
    KO(s, 0)->sym = k.sym;
    KO(s, 0)->tensor = true;
  }
}

/* int(t), float(t), bool(t), scalar_implicit(t): tensors must be 0-dim. */
void sh_r_to_scalar(sh *s) {
  ir_op op = N(s)->op;
  const ir_type *t = TY(s, 0);
  ir_tkind k = op == NN_OP_TO_INT ? IR_T_INT : op == NN_OP_TO_FLOAT ? IR_T_FLOAT : IR_T_BOOL;
  if (op == NN_OP_SCALAR_IMPLICIT) {
    if (t->kind != IR_T_TENSOR) {
      if (!sh_is_unknown(s, 0)) sh_tens(s, 0);
      return;
    }
    k = t->dtype == NN_DT_BOOL ? IR_T_BOOL : nn_dtype_is_float(t->dtype) ? IR_T_FLOAT : IR_T_INT;
  }
  set(s, 0, scalar(s, k));
  if (t->kind == IR_T_TENSOR && t->rank > 0) {
    int64_t c = 0;
    bool one = true;
    for (int i = 0; i < t->rank; i++) one = one && dc(s, t->dims[i], &c) && c == 1;
    if (!one) {
      sh_err(s, "only a one-element tensor converts to a number, got %s", sh_tstr(s, t));
      return;
    }
  }
  kval in = *KI(s, 0);
  kval *o = KO(s, 0);
  if (in.known && sh_is_num(&in.c)) {
    ir_const c = in.c;
    nn_dtype cat = k == IR_T_INT ? NN_DT_I64 : k == IR_T_FLOAT ? NN_DT_F32 : NN_DT_BOOL;
    if (sh_to_category(&c, cat)) {
      o->known = true;
      o->c = c;
    }
  } else if (in.sym && k == IR_T_INT) {
    o->sym = in.sym;
  }
}

/* scalar_add ... scalar_ge, scalar_neg: int op int is int (true division
 * is float), anything with a float is float, comparisons are bool. */
void sh_r_scalar(sh *s) {
  ir_op op = N(s)->op;
  int nin = N(s)->nin;
  bool f = false;
  for (int i = 0; i < nin; i++) {
    ir_tkind k = TY(s, i)->kind;
    if (k == IR_T_UNKNOWN) return;
    if (k != IR_T_INT && k != IR_T_FLOAT && k != IR_T_BOOL) {
      sh_err(s, "operand %d is %s, expected a number", i + 1, sh_tstr(s, TY(s, i)));
      return;
    }
    f = f || k == IR_T_FLOAT;
  }
  if (op == NN_OP_SCALAR_NEG) {
    set(s, 0, scalar(s, f ? IR_T_FLOAT : IR_T_INT));
    kval zero = {.known = true, .c = {.kind = IR_C_INT}};
    sh_fold_into(s, 0, AR_SUB, &zero, KI(s, 0), false, NN_DT_UNKNOWN, !f);
    return;
  }
  arith ar = sh_arith_of(op);
  ir_tkind k = sh_is_bool_result(ar) ? IR_T_BOOL : (f || ar == AR_DIV) ? IR_T_FLOAT : IR_T_INT;
  set(s, 0, scalar(s, k));
  sh_fold_into(s, 0, ar, KI(s, 0), KI(s, 1), false, NN_DT_UNKNOWN, k == IR_T_INT);
}

/* list_construct(a, b, ...): list<type of the first non-none operand>;
 * known numbers make a known list, and the operands are remembered. */
void sh_r_list_construct(sh *s) {
  ir_node *n = N(s);
  int cnt = n->nin;
  const ir_type *elem = NULL;
  const ir_type **p = nn_alloc(s->a, sizeof *p * (size_t)(cnt + 1));
  for (int i = 0; i < cnt; i++) {
    p[i] = TY(s, i);
    if (!elem && p[i]->kind != IR_T_NONE) elem = p[i];
  }
  if (!elem) elem = scalar(s, cnt ? IR_T_NONE : IR_T_INT);
  set(s, 0, ir_type_list(s->g, elem));
  kval *k = KO(s, 0);
  k->src = N(s)->in;
  k->nsrc = cnt;
  k->pieces = p;
  k->npieces = cnt;
  /* a known list when every element is a known number of one kind */
  ir_ckind kind = cnt ? KI(s, 0)->c.kind : IR_C_INT;
  for (int i = 0; i < cnt; i++) {
    kval *e = KI(s, i);
    if (!e->known || e->tensor || e->c.kind != kind ||
        (kind != IR_C_INT && kind != IR_C_FLOAT && kind != IR_C_BOOL))
      return;
  }
  ir_const c = {.kind = kind == IR_C_INT     ? IR_C_INTLIST
                        : kind == IR_C_FLOAT ? IR_C_FLOATLIST
                                             : IR_C_BOOLLIST,
                .n = cnt};
  if (kind == IR_C_FLOAT) {
    double *f = nn_alloc(s->a, sizeof *f * (size_t)(cnt + 1));
    for (int i = 0; i < cnt; i++) f[i] = KI(s, i)->c.f;
    c.floats = f;
  } else {
    int64_t *v = nn_alloc(s->a, sizeof *v * (size_t)(cnt + 1));
    for (int i = 0; i < cnt; i++) v[i] = KI(s, i)->c.i;
    c.ints = v;
  }
  k->known = true;
  k->c = c;
}

/* Element j of a list or tuple value: its type and what is known. */
static void element(sh *s, const kval *k, const ir_type *t, int64_t j, int r) {
  kval *o = KO(s, r);
  if (k->src) {
    set(s, r, ir_vtype(s->g, k->src[j]));
    *o = *K(s, k->src[j]);
    return;
  }
  if (k->pieces)
    set(s, r, k->pieces[j]);
  else if (t->kind == IR_T_TUPLE)
    set(s, r, t->elems[j]);
  else
    set(s, r, t->elems[0]);
  if (k->known && (k->c.kind == IR_C_INTLIST || k->c.kind == IR_C_BOOLLIST)) {
    o->known = true;
    o->c.kind = k->c.kind == IR_C_INTLIST ? IR_C_INT : IR_C_BOOL;
    o->c.i = k->c.ints[j];
  } else if (k->known && k->c.kind == IR_C_FLOATLIST) {
    o->known = true;
    o->c.kind = IR_C_FLOAT;
    o->c.f = k->c.floats[j];
  } else if (k->sdims) {
    dim_int(s, r, k->sdims[j]);
  }
}

/* The element count of a list/tuple value when known, else -1. */
static int count_of(const kval *k, const ir_type *t) {
  if (k->src) return k->nsrc;
  if (k->pieces) return k->npieces;
  if (k->known && k->c.kind >= IR_C_INTLIST) return k->c.n;
  if (k->sdims) return k->nsdims;
  if (t->kind == IR_T_TUPLE) return t->nelems;
  return -1;
}

/* Operand 0 as the tuple (or list) the current node expects; NULL when its
 * type is unknown or after reporting. */
static const ir_type *seq_operand(sh *s, bool tuple) {
  const ir_type *t = TY(s, 0);
  if (t->kind == IR_T_UNKNOWN) return NULL;
  if (t->kind != (tuple ? IR_T_TUPLE : IR_T_LIST)) {
    sh_err(s, "expects a %s, got %s", tuple ? "tuple" : "list", sh_tstr(s, t));
    return NULL;
  }
  return t;
}

/* list_unpack, tuple_unpack: one result per element. */
void sh_r_unpack(sh *s) {
  bool tuple = N(s)->op == NN_OP_TUPLE_UNPACK;
  const ir_type *t = seq_operand(s, tuple);
  if (!t) return;
  kval k = *KI(s, 0);
  int n = count_of(&k, t), nout = N(s)->nout;
  if (n >= 0 && n != nout) {
    sh_err(s, "the %s has %d elements, unpacked into %d", tuple ? "tuple" : "list", n, nout);
    return;
  }
  for (int r = 0; r < nout; r++) {
    if (n < 0)
      set(s, r, t->elems[0]);
    else
      element(s, &k, t, r, r);
  }
}

/* list_get(list, i) and tuple_get(tuple) [index attribute]. */
void sh_r_get(sh *s) {
  bool tuple = N(s)->op == NN_OP_TUPLE_GET;
  const ir_type *t = seq_operand(s, tuple);
  if (!t) return;
  kval k = *KI(s, 0);
  int n = count_of(&k, t);
  int64_t j;
  if (tuple)
    j = N(s)->index;
  else if (!sh_kint(KI(s, 1), &j)) {
    set(s, 0, k.pieces && k.npieces ? k.pieces[0] : t->elems[0]);
    return;
  }
  if (n < 0) {
    set(s, 0, t->elems[0]);
    return;
  }
  if (j < -n || j >= n) {
    sh_err(s, "index %lld is out of range for %d elements", (long long)j, n);
    return;
  }
  element(s, &k, t, j < 0 ? j + n : j, 0);
}

/* tuple_construct(a, b, ...): a tuple of the operands' types. */
void sh_r_tuple_construct(sh *s) {
  ir_node *n = N(s);
  const ir_type **e = nn_alloc(s->a, sizeof *e * (size_t)(n->nin + 1));
  for (int i = 0; i < n->nin; i++) e[i] = TY(s, i);
  set(s, 0, ir_type_tuple(s->g, n->nin, e));
  KO(s, 0)->src = N(s)->in;
  KO(s, 0)->nsrc = N(s)->nin;
}
