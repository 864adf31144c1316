/* shapes.c — static shape inference: the dtype and dims of every value.
 *
 * The pass binds each graph input to its --input spec, then walks the graph
 * once in program order and gives every result a type with one rule per op
 * family (the table `rules` at the bottom maps each op of ops.def to its
 * rule). Dims are ir_dim expressions, so symbolic input dims ("batch") flow
 * through wherever the arithmetic is simple (sums, products, exact and floor
 * divisions); nothing here assumes a dim is a constant without checking.
 *
 * Beside the types, the pass keeps a side table of what is known about each
 * value at compile time (struct kval): an int/float/bool or int list, a
 * symbolic int equal to some dim (x.size(0) of a symbolic dim), the operands
 * a list or tuple was built from, and the exact type of each piece of a
 * tensor list (chunk, split, unbind). Shape arithmetic such as BERT's
 * `size -> num_to_tensor -> mul -> int -> list_construct -> view` is
 * evaluated with it, and every meta node (size, int, list_construct, ...)
 * whose scalar result becomes known is rewritten in place into a CONSTANT
 * node. Tensor-typed results (num_to_tensor, 0-dim tensor arithmetic) keep
 * their nodes; DCE, run later by the pipeline, removes the unused ones.
 *
 * Promotion follows PyTorch's result_type: categories bool < integral <
 * floating; among operands of the same category a tensor of rank > 0 decides
 * over a 0-dim tensor, which decides over a Python scalar; a higher category
 * always wins (a float scalar with an integral tensor gives f32, the default
 * dtype). prim::NumToTensor gives i64 for ints and bools and f64 for floats,
 * as torch 1.13 does.
 *
 * Symbolic dims whose equality cannot be decided here (broadcasting `b`
 * against `s`, a slice end against a symbolic size) are assumed to fit; a
 * later pass emits the runtime guards; each such assumption is passed to
 * the unify hook, through which input inference (infer_inputs.c) learns
 * which input symbols must be one. Errors are reported at the node's
 * location prefixed with the op's name; the failed results keep an unknown
 * type, which silences the rules downstream, so one run reports every
 * independent problem.
 *
 * Declared ranges of symbolic input dims (--input x:f32[b=1..32,...]) are
 * recorded in g->sym_ranges. A trial run (pass_shapes_with, partial) types
 * what it can with some inputs still unknown, reports nothing and folds
 * nothing, so the graph is left as it was apart from its types.
 *
 * The pass is four files. This one holds the machinery every rule uses
 * (reading operands, promotion, folding, broadcasting), the rule table and
 * the walk; the rules are in shapes_math.c, shapes_layout.c and
 * shapes_meta.c, and shapes_internal.h is what the four share.
 */
#include "shapes_internal.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* The type's text, e.g. "f32[2,3]", in the arena. */
const char *sh_tstr(sh *s, const ir_type *t) {
  nn_buf b = {0};
  ir_type_print(&b, s->g, t);
  const char *r = nn_strdup(s->a, b.data ? b.data : "");
  nn_buf_free(&b);
  return r;
}

/* Reports an error at the current node, prefixed with its op name. */
void sh_err(sh *s, const char *fmt, ...) {
  nn_buf b = {0};
  va_list ap;
  va_start(ap, fmt);
  nn_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  ir_node *n = N(s);
  if (!s->partial) nn_error(s->d, n->loc, "%s: %s", ir_ops[n->op].name, b.data);
  nn_buf_free(&b);
  s->errors++;
}

/* ---- reading operands ------------------------------------------------- */

/* Operand i as a tensor of known rank. NULL when its type is unknown (an
 * earlier error; nothing more is said) or when it is no tensor (reported). */
const ir_type *sh_tens(sh *s, int i) {
  const ir_type *t = TY(s, i);
  if (t->kind == IR_T_TENSOR && t->rank >= 0 && t->dims) return t;
  if (t->kind != IR_T_TENSOR && t->kind != IR_T_UNKNOWN)
    sh_err(s, "operand %d is %s, expected a tensor", i + 1, sh_tstr(s, t));
  return NULL;
}

bool sh_is_none(sh *s, int i) { return TY(s, i)->kind == IR_T_NONE; }
bool sh_is_unknown(sh *s, int i) { return TY(s, i)->kind == IR_T_UNKNOWN; }

/* A known non-tensor int (bools count as ints). */
bool sh_kint(const kval *k, int64_t *out) {
  if (!k->known || k->tensor) return false;
  if (k->c.kind != IR_C_INT && k->c.kind != IR_C_BOOL) return false;
  *out = k->c.i;
  return true;
}

/* Operand i as a compile-time int; reports (unless its type is unknown)
 * when it is not one. */
bool sh_need_int(sh *s, int i, const char *what, int64_t *out) {
  if (sh_kint(KI(s, i), out)) return true;
  if (!sh_is_unknown(s, i)) sh_err(s, "the %s argument is not a compile-time constant", what);
  return false;
}

/* Operand i as a compile-time number; *isint tells ints from floats. */
bool sh_knum(sh *s, int i, double *f, bool *isint) {
  kval *k = KI(s, i);
  if (!k->known || k->tensor) return false;
  if (k->c.kind == IR_C_FLOAT) {
    *f = k->c.f;
    *isint = false;
    return true;
  }
  if (k->c.kind == IR_C_INT || k->c.kind == IR_C_BOOL) {
    *f = (double)k->c.i;
    *isint = true;
    return true;
  }
  return false;
}

/* A dtype operand: none keeps `dflt`, a known ScalarType number converts.
 * Returns false after reporting. */
bool sh_opdtype(sh *s, int i, nn_dtype dflt, nn_dtype *out) {
  if (sh_is_none(s, i)) {
    *out = dflt;
    return true;
  }
  int64_t st;
  if (!sh_need_int(s, i, "dtype", &st)) return false;
  nn_dtype dt = nn_dtype_from_scalar_type(st);
  if (dt == NN_DT_UNKNOWN) {
    sh_err(s, "unsupported dtype (ScalarType %lld)", (long long)st);
    return false;
  }
  *out = dt;
  return true;
}

/* The dim that an int value equals: a known constant or a symbolic int;
 * 0 when neither. Used for shape arguments and symbolic arithmetic. */
static ir_dim vdim(sh *s, const kval *k) {
  int64_t c;
  if (k->known && (k->c.kind == IR_C_INT || k->c.kind == IR_C_BOOL)) {
    c = k->c.i;
    return D(s, c);
  }
  return k->sym;
}

/* Reads list operand i as a shape: element j is a constant (raw[j]), a
 * symbolic int (raw[j] == SH_SYM, sym[j] its dim) or, with allow_none, none
 * (raw[j] == SH_NONE). A single int is a one-element list. Reports (unless
 * the operand's type is unknown) when the list is not known. */
bool sh_opshape(sh *s, int i, const char *what, bool allow_none, int64_t **raw, ir_dim **sym,
                int *n) {
  kval *k = KI(s, i);
  enum { M_LIST, M_INT, M_SDIMS, M_SRC, M_SYM } mode;
  int len;
  if (k->tensor) goto fail;
  if (k->known && k->c.kind == IR_C_INTLIST)
    mode = M_LIST, len = k->c.n;
  else if (k->known && (k->c.kind == IR_C_INT || k->c.kind == IR_C_BOOL))
    mode = M_INT, len = 1;
  else if (k->sdims)
    mode = M_SDIMS, len = k->nsdims;
  else if (k->src)
    mode = M_SRC, len = k->nsrc;
  else if (k->sym)
    mode = M_SYM, len = 1;
  else
    goto fail;
  int64_t *r = nn_alloc(s->a, sizeof *r * (size_t)(len + 1));
  ir_dim *y = nn_alloc(s->a, sizeof *y * (size_t)(len + 1));
  for (int j = 0; j < len; j++) {
    int64_t c;
    if (mode == M_LIST) {
      r[j] = k->c.ints[j];
    } else if (mode == M_INT) {
      r[j] = k->c.i;
    } else if (mode == M_SDIMS || mode == M_SYM) {
      ir_dim d = mode == M_SDIMS ? k->sdims[j] : k->sym;
      if (dc(s, d, &c))
        r[j] = c;
      else
        r[j] = SH_SYM, y[j] = d;
    } else {
      ir_value e = k->src[j];
      kval *ke = K(s, e);
      if (sh_kint(ke, &c)) {
        r[j] = c;
      } else if (ke->sym && !ke->tensor) {
        if (dc(s, ke->sym, &c))
          r[j] = c;
        else
          r[j] = SH_SYM, y[j] = ke->sym;
      } else if (allow_none && ir_vtype(s->g, e)->kind == IR_T_NONE) {
        r[j] = SH_NONE;
      } else {
        goto fail;
      }
    }
  }
  *raw = r;
  *sym = y;
  *n = len;
  return true;
fail:
  if (!sh_is_unknown(s, i)) sh_err(s, "the %s argument is not a compile-time constant", what);
  return false;
}

/* Element j of a shape read by sh_opshape as a dim (not for SH_NONE). */
ir_dim sh_shape_dim(sh *s, const int64_t *raw, const ir_dim *sym, int j) {
  return raw[j] == SH_SYM ? sym[j] : D(s, raw[j]);
}

/* Operand i as a list of compile-time ints (no symbolic elements). */
bool sh_oplist(sh *s, int i, const char *what, int64_t **v, int *n) {
  ir_dim *y;
  if (!sh_opshape(s, i, what, false, v, &y, n)) return false;
  for (int j = 0; j < *n; j++)
    if ((*v)[j] == SH_SYM) {
      sh_err(s, "the %s argument is not a compile-time constant", what);
      return false;
    }
  return true;
}

/* Normalizes dim d of a tensor of rank `rank` (negative counts from the
 * end; a 0-dim tensor accepts 0 and -1). `extra` widens the range (1 for
 * unsqueeze/stack, which may name the position after the last dim). */
bool sh_wrapdim(sh *s, int64_t d, int rank, int extra, int *out) {
  int64_t r = rank + extra;
  if (r <= 0) r = 1;
  if (d < -r || d >= r) {
    sh_err(s, "dim %lld is out of range for a tensor of rank %d", (long long)d, rank);
    return false;
  }
  *out = (int)(d < 0 ? d + r : d);
  return true;
}

/* The dim-index operand i of a tensor of rank `rank`, normalized. */
bool sh_opdim(sh *s, int i, int rank, int extra, int *out) {
  int64_t d;
  return sh_need_int(s, i, "dim", &d) && sh_wrapdim(s, d, rank, extra, out);
}

/* Product of the dims (the element count). */
ir_dim sh_numel(sh *s, int n, const ir_dim *dims) {
  ir_dim p = D(s, 1);
  for (int i = 0; i < n; i++) p = ir_dim_mul(s->g, p, dims[i]);
  return p;
}

/* A rule goes on assuming that dims a and b are equal (a runtime guard
 * checks it later); input inference listens, to bind the input symbols
 * involved. */
void sh_assume_equal(sh *s, ir_dim a, ir_dim b) {
  if (a == b || a == IR_DIM_UNKNOWN || b == IR_DIM_UNKNOWN) return;
  if (s->unify) s->unify(s->uctx, a, b);
  if (s->partial) return;
  /* a full run records the guard once */
  for (int i = 0; i < s->g->guards.len; i++) {
    const ir_guard *g = &s->g->guards.data[i];
    if ((g->a == a && g->b == b) || (g->a == b && g->b == a)) return;
  }
  ir_guard gd = {a, b, N(s)->loc};
  NN_PUSH(s->a, s->g->guards, gd);
}

/* False only when both dims are constants and differ; when they may be
 * equal, the caller goes on assuming that they are. */
bool sh_may_equal(sh *s, ir_dim a, ir_dim b) {
  int64_t x, y;
  if (a == b) return true;
  if (dc(s, a, &x) && dc(s, b, &y)) return x == y;
  sh_assume_equal(s, a, b);
  return true;
}

static void print_shape(sh *s, nn_buf *b, int n, const int64_t *raw, const ir_dim *sym) {
  nn_buf_printf(b, "[");
  for (int j = 0; j < n; j++) {
    if (j) nn_buf_printf(b, ",");
    if (raw[j] == SH_SYM)
      ir_dim_print(b, s->g, sym[j]);
    else if (raw[j] == SH_NONE)
      nn_buf_printf(b, "none");
    else
      nn_buf_printf(b, "%lld", (long long)raw[j]);
  }
  nn_buf_printf(b, "]");
}

const char *sh_shape_str(sh *s, int n, const int64_t *raw, const ir_dim *sym) {
  nn_buf b = {0};
  print_shape(s, &b, n, raw, sym);
  const char *r = nn_strdup(s->a, b.data);
  nn_buf_free(&b);
  return r;
}

/* ---- dtype promotion -------------------------------------------------- */

int sh_category(nn_dtype t) {
  if (t == NN_DT_BOOL) return 0;
  return nn_dtype_is_float(t) ? 2 : 1;
}

static int int_bits(nn_dtype t) {
  switch (t) {
  case NN_DT_I8:
  case NN_DT_U8: return 8;
  case NN_DT_I16: return 16;
  case NN_DT_I32: return 32;
  default: return 64;
  }
}

/* torch.promote_types on the dtypes nncc represents. */
nn_dtype sh_promote2(nn_dtype a, nn_dtype b) {
  if (a == NN_DT_UNKNOWN || b == NN_DT_UNKNOWN) return NN_DT_UNKNOWN;
  if (a == b) return a;
  if (a == NN_DT_BOOL) return b;
  if (b == NN_DT_BOOL) return a;
  int ca = sh_category(a), cb = sh_category(b);
  if (ca != cb) return ca > cb ? a : b;
  if (ca == 2) {
    if (a == NN_DT_F64 || b == NN_DT_F64) return NN_DT_F64;
    return NN_DT_F32; /* f32 with a 16-bit type, or f16 with bf16 */
  }
  if (a == NN_DT_U8 || b == NN_DT_U8) {
    nn_dtype o = a == NN_DT_U8 ? b : a;
    return o == NN_DT_I8 ? NN_DT_I16 : o;
  }
  return int_bits(a) >= int_bits(b) ? a : b;
}

void sh_prom_add(prom *p, const ir_type *t) {
  nn_dtype dt;
  int tier;
  switch (t->kind) {
  case IR_T_TENSOR:
    dt = t->dtype;
    tier = t->rank == 0 ? 1 : 2;
    break;
  case IR_T_INT: dt = NN_DT_I64, tier = 0; break;
  case IR_T_FLOAT: dt = NN_DT_F32, tier = 0; break; /* the default dtype */
  case IR_T_BOOL: dt = NN_DT_BOOL, tier = 0; break;
  default: p->unknown = true; return;
  }
  if (dt == NN_DT_UNKNOWN)
    p->unknown = true;
  else if (p->tier[tier] == NN_DT_UNKNOWN)
    p->tier[tier] = dt;
  else
    p->tier[tier] = sh_promote2(p->tier[tier], dt);
}

/* A lower tier only matters when its category is higher. */
static nn_dtype combine(nn_dtype hi, nn_dtype lo) {
  if (hi == NN_DT_UNKNOWN) return lo;
  if (lo != NN_DT_UNKNOWN && sh_category(lo) > sh_category(hi)) return sh_promote2(hi, lo);
  return hi;
}

nn_dtype sh_prom_result(const prom *p) {
  if (p->unknown) return NN_DT_UNKNOWN;
  return combine(p->tier[2], combine(p->tier[1], p->tier[0]));
}

/* Adds operand i of the current node, treating a wrapped number as the
 * Python scalar it was traced from. */
void sh_prom_operand(sh *s, prom *p, ir_value v) {
  const ir_type *t = ir_vtype(s->g, v);
  if (t->kind == IR_T_TENSOR && t->dtype != NN_DT_UNKNOWN && K(s, v)->wrapped) {
    int c = sh_category(t->dtype);
    sh_prom_add(p, scalar(s, c == 2 ? IR_T_FLOAT : c == 1 ? IR_T_INT : IR_T_BOOL));
    return;
  }
  sh_prom_add(p, t);
}

/* ---- folding known numbers -------------------------------------------- */

bool sh_is_num(const ir_const *c) {
  return c->kind == IR_C_INT || c->kind == IR_C_FLOAT || c->kind == IR_C_BOOL;
}
double sh_fnum(const ir_const *c) { return c->kind == IR_C_FLOAT ? c->f : (double)c->i; }

int64_t sh_floordiv64(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}
static int64_t mod64(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

/* a OP b with Python semantics: ints stay ints except true division;
 * comparisons give bools. False when the result is not representable
 * (division by zero, overflow) or the operands are not numbers. */
bool sh_fold(arith op, const ir_const *a, const ir_const *b, ir_const *out) {
  if (!sh_is_num(a) || !sh_is_num(b)) return false;
  memset(out, 0, sizeof *out);
  bool ints = a->kind != IR_C_FLOAT && b->kind != IR_C_FLOAT;
  double x = sh_fnum(a), y = sh_fnum(b);
  int64_t i = a->i, j = b->i;
  int cmp = ints ? (i < j ? -1 : i > j) : (x < y ? -1 : x > y);
  switch (op) {
  case AR_EQ:
  case AR_NE:
  case AR_LT:
  case AR_LE:
  case AR_GT:
  case AR_GE:
  case AR_AND:
  case AR_OR: {
    bool r = false;
    if (op == AR_EQ) r = ints ? i == j : x == y;
    if (op == AR_NE) r = ints ? i != j : x != y;
    if (op == AR_LT) r = cmp < 0;
    if (op == AR_LE) r = cmp <= 0 && (ints || x == x);
    if (op == AR_GT) r = cmp > 0;
    if (op == AR_GE) r = cmp >= 0 && (ints || x == x);
    if (op == AR_AND) r = x != 0 && y != 0;
    if (op == AR_OR) r = x != 0 || y != 0;
    out->kind = IR_C_BOOL;
    out->i = r;
    return true;
  }
  default: break;
  }
  if (op == AR_DIV) {
    if (y == 0) return false;
    out->kind = IR_C_FLOAT;
    out->f = x / y;
    return true;
  }
  if (ints) {
    int64_t r;
    out->kind = IR_C_INT;
    switch (op) {
    case AR_ADD:
      if (__builtin_add_overflow(i, j, &r)) return false;
      break;
    case AR_SUB:
      if (__builtin_sub_overflow(i, j, &r)) return false;
      break;
    case AR_MUL:
      if (__builtin_mul_overflow(i, j, &r)) return false;
      break;
    case AR_FLOORDIV:
    case AR_TRUNCDIV:
    case AR_MOD:
      if (j == 0 || (i == INT64_MIN && j == -1)) return false;
      r = op == AR_FLOORDIV ? sh_floordiv64(i, j) : op == AR_TRUNCDIV ? i / j : mod64(i, j);
      break;
    case AR_MAX: r = i > j ? i : j; break;
    case AR_MIN: r = i < j ? i : j; break;
    default: return false; /* int pow: not needed for shapes */
    }
    out->i = r;
    return true;
  }
  double r;
  switch (op) {
  case AR_ADD: r = x + y; break;
  case AR_SUB: r = x - y; break;
  case AR_MUL: r = x * y; break;
  case AR_FLOORDIV:
    if (y == 0) return false;
    r = floor(x / y);
    break;
  case AR_TRUNCDIV:
    if (y == 0) return false;
    r = trunc(x / y);
    break;
  case AR_MOD:
    if (y == 0) return false;
    r = fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    break;
  case AR_MAX: r = x > y ? x : y; break;
  case AR_MIN: r = x < y ? x : y; break;
  case AR_POW: r = pow(x, y); break;
  default: return false;
  }
  out->kind = IR_C_FLOAT;
  out->f = r;
  return true;
}

/* Converts a known number to the category of dtype dt (a tensor's value). */
bool sh_to_category(ir_const *c, nn_dtype dt) {
  if (!sh_is_num(c) || dt == NN_DT_UNKNOWN) return false;
  int cat = sh_category(dt);
  if (cat == 2 && c->kind != IR_C_FLOAT) {
    c->f = (double)c->i;
    c->kind = IR_C_FLOAT;
  } else if (cat == 1 && c->kind != IR_C_INT) {
    if (c->kind == IR_C_FLOAT) {
      if (!(c->f > -9.2e18 && c->f < 9.2e18)) return false;
      c->i = (int64_t)c->f;
    }
    c->kind = IR_C_INT;
  } else if (cat == 0 && c->kind != IR_C_BOOL) {
    c->i = sh_fnum(c) != 0;
    c->kind = IR_C_BOOL;
  }
  return true;
}

/* Symbolic int arithmetic: a OP b on dims, 0 when not expressible. */
static ir_dim sym_arith(sh *s, arith op, ir_dim a, ir_dim b) {
  int64_t c;
  if (!a || !b) return 0;
  switch (op) {
  case AR_ADD: return ir_dim_add(s->g, a, b);
  case AR_MUL: return ir_dim_mul(s->g, a, b);
  case AR_SUB:
    if (dc(s, b, &c) && c != INT64_MIN) return ir_dim_add(s->g, a, D(s, -c));
    return 0;
  case AR_FLOORDIV:
    if (dc(s, b, &c) && c > 0) return ir_dim_floordiv(s->g, a, b);
    return 0;
  case AR_MOD:
    if (dc(s, b, &c) && c > 0) return ir_dim_mod(s->g, a, b);
    return 0;
  default: return 0;
  }
}

/* Result kval r of the current node from known operand values ka OP kb.
 * `tensor` marks a 0-dim tensor result of dtype dt. */
void sh_fold_into(sh *s, int r, arith op, const kval *ka, const kval *kb, bool is_tensor,
                  nn_dtype dt, bool ints) {
  kval *ko = KO(s, r);
  if (ka->known && kb->known) {
    ir_const c;
    if (!sh_fold(op, &ka->c, &kb->c, &c)) return;
    if (is_tensor && !sh_to_category(&c, dt)) return;
    ko->known = true;
    ko->tensor = is_tensor;
    ko->c = c;
    return;
  }
  /* int arithmetic on a symbolic size stays symbolic */
  if (!ints) return;
  ir_dim a = vdim(s, ka), b = vdim(s, kb);
  ir_dim d = sym_arith(s, op, a, b);
  if (!d) return;
  int64_t c;
  if (dc(s, d, &c)) {
    ko->known = true;
    ko->c.kind = IR_C_INT;
    ko->c.i = c;
  } else {
    ko->sym = d;
  }
  ko->tensor = is_tensor;
}

arith sh_arith_of(ir_op op) {
  switch (op) {
  case NN_OP_ADD:
  case NN_OP_SCALAR_ADD: return AR_ADD;
  case NN_OP_SUB:
  case NN_OP_RSUB:
  case NN_OP_SCALAR_SUB: return AR_SUB;
  case NN_OP_MUL:
  case NN_OP_SCALAR_MUL: return AR_MUL;
  case NN_OP_DIV:
  case NN_OP_SCALAR_DIV: return AR_DIV;
  case NN_OP_FLOOR_DIVIDE:
  case NN_OP_SCALAR_FLOORDIV: return AR_FLOORDIV;
  case NN_OP_REMAINDER:
  case NN_OP_SCALAR_MOD: return AR_MOD;
  case NN_OP_POW: return AR_POW;
  case NN_OP_MAXIMUM: return AR_MAX;
  case NN_OP_MINIMUM: return AR_MIN;
  case NN_OP_EQ:
  case NN_OP_SCALAR_EQ: return AR_EQ;
  case NN_OP_NE:
  case NN_OP_SCALAR_NE: return AR_NE;
  case NN_OP_LT:
  case NN_OP_SCALAR_LT: return AR_LT;
  case NN_OP_LE:
  case NN_OP_SCALAR_LE: return AR_LE;
  case NN_OP_GT:
  case NN_OP_SCALAR_GT: return AR_GT;
  case NN_OP_GE:
  case NN_OP_SCALAR_GE: return AR_GE;
  case NN_OP_LOGICAL_AND: return AR_AND;
  case NN_OP_LOGICAL_OR: return AR_OR;
  default: return AR_NONE;
  }
}

bool sh_is_bool_result(arith a) { return a >= AR_EQ && a <= AR_OR; }

/* ---- broadcasting ----------------------------------------------------- */

/* numpy broadcasting of two shapes; false on a provable mismatch. */
bool sh_bcast(sh *s, int ra, const ir_dim *a, int rb, const ir_dim *b, int *rr, ir_dim **out) {
  int r = ra > rb ? ra : rb;
  ir_dim *o = dims_new(s, r);
  for (int i = 0; i < r; i++) {
    int ia = ra - r + i, ib = rb - r + i;
    ir_dim x = ia >= 0 ? a[ia] : D(s, 1), y = ib >= 0 ? b[ib] : D(s, 1);
    int64_t cx = -1, cy = -1;
    bool kx = dc(s, x, &cx), ky = dc(s, y, &cy);
    /* one case per line of the broadcast rule, in order */
    // NOLINTBEGIN(bugprone-branch-clone)
    if (x == y)
      o[i] = x;
    else if (kx && cx == 1)
      o[i] = y;
    else if (ky && cy == 1)
      o[i] = x;
    // NOLINTEND(bugprone-branch-clone)
    else if (kx && ky)
      return false;
    else {
      o[i] = kx ? x : y; /* assumed equal; a guard checks it later */
      sh_assume_equal(s, x, y);
    }
  }
  *rr = r;
  *out = o;
  return true;
}

/* Shape of a broadcast operand: tensors have their dims, scalars rank 0. */
bool sh_bshape(const ir_type *t, int *r, const ir_dim **d) {
  if (t->kind == IR_T_TENSOR) {
    if (t->rank < 0 || !t->dims) return false;
    *r = t->rank;
    *d = t->dims;
    return true;
  }
  if (t->kind == IR_T_INT || t->kind == IR_T_FLOAT || t->kind == IR_T_BOOL) {
    *r = 0;
    *d = NULL;
    return true;
  }
  return false;
}

/* ---- the rule table --------------------------------------------------- */

typedef void (*rule_fn)(sh *s);

/* Every op's rule, as its ops.def row names it: sh_r_<shape>. A row may
 * name `none` while an op is being added; pass_shapes then reports the op
 * as unsupported and tests/unit/test_optable.c fails. */
#define sh_r_none NULL
static const rule_fn rules[NN_OP_COUNT] = {
#define OP(id, name, nin, nout, fusion, flags, shape, lower, doc) [NN_OP_##id] = sh_r_##shape,
#include "../ir/ops.def"
#undef OP
};
#undef sh_r_none

bool pass_shapes_has_rule(ir_op op) { return op >= 0 && op < NN_OP_COUNT && rules[op] != NULL; }

/* ---- folding meta nodes into constants -------------------------------- */

static bool foldable(const kval *k) {
  return k->known && !k->tensor && k->c.kind != IR_C_STR && k->c.kind != IR_C_DEVICE;
}

/* A meta node whose scalar result is known becomes a CONSTANT node in
 * place. A multi-result node (list_unpack, tuple_unpack) stays; each of
 * its known scalar results that is still used gets a new constant inserted
 * before it, which takes over the uses (DCE removes the node later). */
static void fold_node(sh *s) {
  ir_node *n = N(s);
  if (ir_ops[n->op].fusion != IR_FUSE_META || n->op == NN_OP_CONSTANT || n->op == NN_OP_WEIGHT)
    return;
  if (n->nout == 1) {
    if (!foldable(KO(s, 0))) return;
    n->op = NN_OP_CONSTANT;
    n->nin = 0;
    n->in = NULL;
    n->c = KO(s, 0)->c;
    n->index = 0;
    set(s, 0, ir_const_type(s->g, &n->c));
    kval *k = KO(s, 0);
    k->src = NULL;
    k->nsrc = 0;
    return;
  }
  for (int r = 0; r < n->nout; r++) {
    ir_node *cur = N(s); /* inserting may move the node array */
    ir_value old = cur->out[r];
    if (!foldable(K(s, old)) || ir_use_count(s->g, old) == 0) continue;
    nn_loc loc = cur->loc;
    const char *scope = cur->scope;
    ir_const c = K(s, old)->c;
    ir_nodeid id = ir_insert_before(s->g, s->nid, NN_OP_CONSTANT, 0, NULL, 1, loc);
    ir_node *cn = ir_node_get(s->g, id);
    cn->c = c;
    cn->scope = scope;
    ir_value nv = cn->out[0];
    ir_set_type(s->g, nv, ir_const_type(s->g, &c));
    kval copy = *K(s, old);
    *K(s, nv) = copy;
    ir_replace_uses(s->g, old, nv);
  }
}

/* ---- binding inputs --------------------------------------------------- */

static const ir_type *spec_type(sh *s, const pass_input_spec *sp) {
  if (sp->kind == IR_T_INT || sp->kind == IR_T_FLOAT || sp->kind == IR_T_BOOL)
    return scalar(s, sp->kind);
  int rank = sp->rank < 0 || !sp->dims ? 0 : sp->rank;
  ir_dim *o = dims_new(s, rank);
  for (int i = 0; i < rank; i++)
    o[i] = sp->dims[i].name ? ir_dim_sym(s->g, sp->dims[i].name) : D(s, sp->dims[i].value);
  return tensor(s, sp->dtype, rank, o);
}

static int bind_inputs(sh *s, const pass_input_spec *specs, int nspecs) {
  ir_graph *g = s->g;
  int errors = 0;
  nn_loc none = {NULL, 0, 0};
  for (int i = 0; i < g->inputs.len; i++) {
    const char *name = i < g->input_names.len ? g->input_names.data[i] : NULL;
    const pass_input_spec *sp = NULL;
    for (int j = 0; name && j < nspecs && !sp; j++)
      if (specs[j].name && strcmp(specs[j].name, name) == 0) sp = &specs[j];
    if (!sp && s->partial) {
      ir_set_type(g, g->inputs.data[i], scalar(s, IR_T_UNKNOWN));
      continue;
    }
    if (!sp) {
      nn_error(s->d, none, "no shape for input '%s': pass --input %s:DTYPE[DIMS]",
               name ? name : "?", name ? name : "?");
      errors++;
      continue;
    }
    ir_set_type(g, g->inputs.data[i], spec_type(s, sp));
  }
  for (int j = 0; j < nspecs; j++) {
    bool found = false;
    for (int i = 0; i < g->input_names.len && !found; i++)
      found = specs[j].name && g->input_names.data[i] &&
              strcmp(specs[j].name, g->input_names.data[i]) == 0;
    if (found || s->partial) continue;
    nn_buf b = {0};
    for (int i = 0; i < g->input_names.len; i++)
      nn_buf_printf(&b, "%s%s", i ? ", " : "",
                    g->input_names.data[i] ? g->input_names.data[i] : "?");
    nn_error(s->d, none, "--input names '%s', but the model's inputs are: %s",
             specs[j].name ? specs[j].name : "?", b.data ? b.data : "(none)");
    nn_buf_free(&b);
    errors++;
  }
  return errors;
}

/* Records the declared range of every symbol of the specs in
 * g->sym_ranges (replacing what an earlier run recorded). A symbol
 * declared with two different ranges is an error. */
static int record_ranges(sh *s, const pass_input_spec *specs, int nspecs) {
  ir_graph *g = s->g;
  int errors = 0;
  g->sym_ranges.len = 0;
  for (int j = 0; j < nspecs; j++) {
    const pass_input_spec *sp = &specs[j];
    for (int i = 0; sp->kind == IR_T_TENSOR && sp->dims && i < sp->rank; i++) {
      const pass_dimspec *ds = &sp->dims[i];
      if (!ds->name || !ds->has_range) continue;
      ir_symrange *old = NULL;
      for (int k = 0; k < g->sym_ranges.len && !old; k++)
        if (!strcmp(g->sym_ranges.data[k].name, ds->name)) old = &g->sym_ranges.data[k];
      if (!old) {
        ir_symrange r = {ds->name, ds->lo, ds->hi};
        NN_PUSH(s->a, g->sym_ranges, r);
      } else if (old->lo != ds->lo || old->hi != ds->hi) {
        if (!s->partial)
          nn_error(s->d, (nn_loc){0},
                   "--input %s: symbol '%s' ranges over %lld..%lld here but "
                   "over %lld..%lld in an earlier --input",
                   sp->name ? sp->name : "?", ds->name, (long long)ds->lo, (long long)ds->hi,
                   (long long)old->lo, (long long)old->hi);
        errors++;
      }
    }
  }
  return errors;
}

/* ---- the pass --------------------------------------------------------- */

int pass_shapes(ir_graph *g, const pass_input_spec *specs, int nspecs, nn_diag *d) {
  return pass_shapes_with(g, specs, nspecs, NULL, d);
}

int pass_shapes_with(ir_graph *g, const pass_input_spec *specs, int nspecs,
                     const pass_shapes_hooks *hooks, nn_diag *d) {
  sh s = {.g = g, .d = d, .a = g->arena};
  if (hooks) {
    s.partial = hooks->partial;
    s.unify = hooks->unify;
    s.uctx = hooks->ctx;
  }
  s.nkv = g->values.len + 16;
  s.kv = nn_alloc(g->arena, sizeof *s.kv * (size_t)s.nkv);
  int errors = bind_inputs(&s, specs, nspecs);
  if (!s.partial) {
    errors += record_ranges(&s, specs, nspecs);
    g->guards.len = 0; /* this run finds them again */
  }
  /* walk a copy: folding may insert constants into the order */
  int n = g->order.len;
  ir_nodeid *order = nn_alloc(g->arena, sizeof *order * (size_t)(n + 1));
  if (n > 0) memcpy(order, g->order.data, sizeof *order * (size_t)n);
  const ir_type *unknown = ir_type_scalar(g, IR_T_UNKNOWN);
  for (int i = 0; i < n; i++) {
    if (order[i] < 0 || order[i] >= g->nodes.len) continue;
    s.nid = order[i];
    ir_node *node = N(&s);
    if (node->flags & IR_NF_DEAD) continue;
    bool bad = false;
    for (int j = 0; j < node->nin; j++)
      bad = bad || node->in[j] < 0 || node->in[j] >= g->values.len;
    for (int j = 0; j < node->nout; j++)
      bad = bad || node->out[j] < 0 || node->out[j] >= g->values.len;
    if (bad || (int)node->op < 0 || node->op >= NN_OP_COUNT) {
      if (!s.partial)
        nn_error(d, node->loc, "shapes: node %d refers to a missing value", (int)s.nid);
      s.errors++;
      continue;
    }
    const ir_opinfo *info = &ir_ops[node->op];
    if ((info->nin >= 0 && node->nin != info->nin) ||
        (info->nout >= 0 && node->nout != info->nout)) {
      sh_err(&s, "expects %d operands and %d results, has %d and %d", info->nin, info->nout,
             node->nin, node->nout);
      continue;
    }
    if (node->op != NN_OP_CONSTANT && node->op != NN_OP_WEIGHT)
      for (int r = 0; r < node->nout; r++) ir_set_type(g, node->out[r], unknown);
    for (int r = 0; r < node->nout; r++) memset(K(&s, node->out[r]), 0, sizeof(kval));
    rule_fn fn = rules[node->op];
    if (!fn) { /* a row being added (ops.def names no rule yet) */
      sh_err(&s, "'%s' has no shape rule yet", info->name);
      continue;
    }
    fn(&s);
    if (!s.partial) fold_node(&s);
  }
  return errors + s.errors;
}
