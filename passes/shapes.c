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
 * later pass emits the runtime guards. Errors are reported at the node's
 * location prefixed with the op's name; the failed results keep an unknown
 * type, which silences the rules downstream, so one run reports every
 * independent problem.
 */
#include "passes.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- the side table of compile-time knowledge ------------------------- */

typedef struct kval {
  bool known;             /* c holds the value */
  bool tensor;            /* the value is a 0-dim tensor holding c */
  ir_const c;             /* INT/FLOAT/BOOL/STR or *LIST when known */
  ir_dim sym;             /* int value equal to this dim (0 = not known) */
  const ir_dim *sdims;    /* int list equal to these dims (sizes of x) */
  int nsdims;             /* element count of sdims */
  const ir_value *src;    /* list/tuple: the values it was built from */
  int nsrc;               /* element count of src */
  const ir_type **pieces; /* tensor list: the exact type of each element */
  int npieces;            /* element count of pieces */
  bool wrapped;           /* a 0-dim CONSTANTS.cN tensor: the tracer's
                             record of a Python number, which promotes like
                             a number, not like a 0-dim tensor */
} kval;

typedef struct sh {
  ir_graph *g;   /* the graph being typed */
  nn_diag *d;    /* where errors go */
  nn_arena *a;   /* g->arena */
  kval *kv;      /* by value id; grows with the graph */
  int nkv;       /* entries in kv */
  int errors;    /* errors reported */
  ir_nodeid nid; /* node being typed */
} sh;

#define SH_SYM INT64_MIN        /* opshape: the element is symbolic */
#define SH_NONE (INT64_MIN + 1) /* opshape: the element is none */
#define SH_END INT64_MAX        /* slice end meaning "to the end" */

static kval *K(sh *s, ir_value v) {
  NN_ASSERT(v >= 0 && v < s->g->values.len);
  if (v >= s->nkv) {
    int n = s->g->values.len + 16;
    s->kv = nn_realloc(s->a, s->kv, sizeof *s->kv * (size_t)s->nkv,
                       sizeof *s->kv * (size_t)n);
    s->nkv = n;
  }
  return &s->kv[v];
}

static ir_node *N(sh *s) {
  return ir_node_get(s->g, s->nid);
}
static ir_value IN(sh *s, int i) {
  return N(s)->in[i];
}
static const ir_type *TY(sh *s, int i) {
  return ir_vtype(s->g, IN(s, i));
}
static kval *KI(sh *s, int i) {
  return K(s, IN(s, i));
}
static kval *KO(sh *s, int r) {
  return K(s, N(s)->out[r]);
}
static void set(sh *s, int r, const ir_type *t) {
  ir_set_type(s->g, N(s)->out[r], t);
}
static ir_dim D(sh *s, int64_t c) {
  return ir_dim_const(s->g, c);
}
static bool dc(sh *s, ir_dim d, int64_t *c) {
  return ir_dim_is_const(s->g, d, c);
}
static const ir_type *tensor(sh *s, nn_dtype dt, int rank, const ir_dim *dims) {
  return ir_type_tensor(s->g, dt, rank, dims);
}
static const ir_type *scalar(sh *s, ir_tkind k) {
  return ir_type_scalar(s->g, k);
}
static ir_dim *dims_new(sh *s, int n) {
  return nn_alloc(s->a, sizeof(ir_dim) * (size_t)(n > 0 ? n : 1));
}

/* The type's text, e.g. "f32[2,3]", in the arena. */
static const char *tstr(sh *s, const ir_type *t) {
  nn_buf b = {0};
  ir_type_print(&b, s->g, t);
  const char *r = nn_strdup(s->a, b.data ? b.data : "");
  nn_buf_free(&b);
  return r;
}

/* Reports an error at the current node, prefixed with its op name. */
static void err(sh *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void err(sh *s, const char *fmt, ...) {
  nn_buf b = {0};
  va_list ap;
  va_start(ap, fmt);
  nn_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  ir_node *n = N(s);
  nn_error(s->d, n->loc, "%s: %s", ir_ops[n->op].name, b.data);
  nn_buf_free(&b);
  s->errors++;
}

/* ---- reading operands ------------------------------------------------- */

/* Operand i as a tensor of known rank. NULL when its type is unknown (an
 * earlier error; nothing more is said) or when it is no tensor (reported). */
static const ir_type *tens(sh *s, int i) {
  const ir_type *t = TY(s, i);
  if (t->kind == IR_T_TENSOR && t->rank >= 0 && t->dims)
    return t;
  if (t->kind != IR_T_TENSOR && t->kind != IR_T_UNKNOWN)
    err(s, "operand %d is %s, expected a tensor", i + 1, tstr(s, t));
  return NULL;
}

static bool is_none(sh *s, int i) {
  return TY(s, i)->kind == IR_T_NONE;
}
static bool is_unknown(sh *s, int i) {
  return TY(s, i)->kind == IR_T_UNKNOWN;
}

/* A known non-tensor int (bools count as ints). */
static bool kint(const kval *k, int64_t *out) {
  if (!k->known || k->tensor)
    return false;
  if (k->c.kind != IR_C_INT && k->c.kind != IR_C_BOOL)
    return false;
  *out = k->c.i;
  return true;
}

/* Operand i as a compile-time int; reports (unless its type is unknown)
 * when it is not one. */
static bool need_int(sh *s, int i, const char *what, int64_t *out) {
  if (kint(KI(s, i), out))
    return true;
  if (!is_unknown(s, i))
    err(s, "the %s argument is not a compile-time constant", what);
  return false;
}

/* Operand i as a compile-time number; *isint tells ints from floats. */
static bool knum(sh *s, int i, double *f, bool *isint) {
  kval *k = KI(s, i);
  if (!k->known || k->tensor)
    return false;
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
static bool opdtype(sh *s, int i, nn_dtype dflt, nn_dtype *out) {
  if (is_none(s, i)) {
    *out = dflt;
    return true;
  }
  int64_t st;
  if (!need_int(s, i, "dtype", &st))
    return false;
  nn_dtype dt = nn_dtype_from_scalar_type(st);
  if (dt == NN_DT_UNKNOWN) {
    err(s, "unsupported dtype (ScalarType %lld)", (long long)st);
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
static bool opshape(sh *s, int i, const char *what, bool allow_none,
                    int64_t **raw, ir_dim **sym, int *n) {
  kval *k = KI(s, i);
  enum { M_LIST, M_INT, M_SDIMS, M_SRC, M_SYM } mode;
  int len;
  if (k->tensor)
    goto fail;
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
      if (kint(ke, &c)) {
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
  if (!is_unknown(s, i))
    err(s, "the %s argument is not a compile-time constant", what);
  return false;
}

/* Operand i as a list of compile-time ints (no symbolic elements). */
static bool oplist(sh *s, int i, const char *what, int64_t **v, int *n) {
  ir_dim *y;
  if (!opshape(s, i, what, false, v, &y, n))
    return false;
  for (int j = 0; j < *n; j++)
    if ((*v)[j] == SH_SYM) {
      err(s, "the %s argument is not a compile-time constant", what);
      return false;
    }
  return true;
}

/* Normalizes dim d of a tensor of rank `rank` (negative counts from the
 * end; a 0-dim tensor accepts 0 and -1). `extra` widens the range (1 for
 * unsqueeze/stack, which may name the position after the last dim). */
static bool wrapdim(sh *s, int64_t d, int rank, int extra, int *out) {
  int64_t r = rank + extra;
  if (r <= 0)
    r = 1;
  if (d < -r || d >= r) {
    err(s, "dim %lld is out of range for a tensor of rank %d", (long long)d,
        rank);
    return false;
  }
  *out = (int)(d < 0 ? d + r : d);
  return true;
}

/* The dim-index operand i of a tensor of rank `rank`, normalized. */
static bool opdim(sh *s, int i, int rank, int extra, int *out) {
  int64_t d;
  return need_int(s, i, "dim", &d) && wrapdim(s, d, rank, extra, out);
}

/* Product of the dims (the element count). */
static ir_dim numel(sh *s, int n, const ir_dim *dims) {
  ir_dim p = D(s, 1);
  for (int i = 0; i < n; i++)
    p = ir_dim_mul(s->g, p, dims[i]);
  return p;
}

/* False only when both dims are constants and differ. */
static bool may_equal(sh *s, ir_dim a, ir_dim b) {
  int64_t x, y;
  if (a == b)
    return true;
  return !(dc(s, a, &x) && dc(s, b, &y) && x != y);
}

static void print_shape(sh *s, nn_buf *b, int n, const int64_t *raw,
                        const ir_dim *sym) {
  nn_buf_printf(b, "[");
  for (int j = 0; j < n; j++) {
    if (j)
      nn_buf_printf(b, ",");
    if (raw[j] == SH_SYM)
      ir_dim_print(b, s->g, sym[j]);
    else if (raw[j] == SH_NONE)
      nn_buf_printf(b, "none");
    else
      nn_buf_printf(b, "%lld", (long long)raw[j]);
  }
  nn_buf_printf(b, "]");
}

static const char *shape_str(sh *s, int n, const int64_t *raw,
                             const ir_dim *sym) {
  nn_buf b = {0};
  print_shape(s, &b, n, raw, sym);
  const char *r = nn_strdup(s->a, b.data);
  nn_buf_free(&b);
  return r;
}

/* ---- dtype promotion -------------------------------------------------- */

static int category(nn_dtype t) {
  if (t == NN_DT_BOOL)
    return 0;
  return nn_dtype_is_float(t) ? 2 : 1;
}

static int int_bits(nn_dtype t) {
  switch (t) {
  case NN_DT_I8:
  case NN_DT_U8:
    return 8;
  case NN_DT_I16:
    return 16;
  case NN_DT_I32:
    return 32;
  default:
    return 64;
  }
}

/* torch.promote_types on the dtypes nncc represents. */
static nn_dtype promote2(nn_dtype a, nn_dtype b) {
  if (a == NN_DT_UNKNOWN || b == NN_DT_UNKNOWN)
    return NN_DT_UNKNOWN;
  if (a == b)
    return a;
  if (a == NN_DT_BOOL)
    return b;
  if (b == NN_DT_BOOL)
    return a;
  int ca = category(a), cb = category(b);
  if (ca != cb)
    return ca > cb ? a : b;
  if (ca == 2) {
    if (a == NN_DT_F64 || b == NN_DT_F64)
      return NN_DT_F64;
    return NN_DT_F32; /* f32 with a 16-bit type, or f16 with bf16 */
  }
  if (a == NN_DT_U8 || b == NN_DT_U8) {
    nn_dtype o = a == NN_DT_U8 ? b : a;
    return o == NN_DT_I8 ? NN_DT_I16 : o;
  }
  return int_bits(a) >= int_bits(b) ? a : b;
}

/* result_type state: the promoted dtype of each priority tier. */
typedef struct prom {
  nn_dtype tier[3]; /* [2] tensors of rank > 0, [1] 0-dim, [0] scalars */
  bool unknown;     /* some operand's dtype is unknown */
} prom;

static void prom_add(prom *p, const ir_type *t) {
  nn_dtype dt;
  int tier;
  switch (t->kind) {
  case IR_T_TENSOR:
    dt = t->dtype;
    tier = t->rank == 0 ? 1 : 2;
    break;
  case IR_T_INT:
    dt = NN_DT_I64, tier = 0;
    break;
  case IR_T_FLOAT:
    dt = NN_DT_F32, tier = 0;
    break; /* the default dtype */
  case IR_T_BOOL:
    dt = NN_DT_BOOL, tier = 0;
    break;
  default:
    p->unknown = true;
    return;
  }
  if (dt == NN_DT_UNKNOWN)
    p->unknown = true;
  else if (p->tier[tier] == NN_DT_UNKNOWN)
    p->tier[tier] = dt;
  else
    p->tier[tier] = promote2(p->tier[tier], dt);
}

/* A lower tier only matters when its category is higher. */
static nn_dtype combine(nn_dtype hi, nn_dtype lo) {
  if (hi == NN_DT_UNKNOWN)
    return lo;
  if (lo != NN_DT_UNKNOWN && category(lo) > category(hi))
    return promote2(hi, lo);
  return hi;
}

static nn_dtype prom_result(const prom *p) {
  if (p->unknown)
    return NN_DT_UNKNOWN;
  return combine(p->tier[2], combine(p->tier[1], p->tier[0]));
}

/* Adds operand i of the current node, treating a wrapped number as the
 * Python scalar it was traced from. */
static kval *K(sh *s, ir_value v);
static const ir_type *scalar(sh *s, ir_tkind k);
static void prom_operand(sh *s, prom *p, ir_value v) {
  const ir_type *t = ir_vtype(s->g, v);
  if (t->kind == IR_T_TENSOR && t->dtype != NN_DT_UNKNOWN && K(s, v)->wrapped) {
    int c = category(t->dtype);
    prom_add(p, scalar(s, c == 2 ? IR_T_FLOAT : c == 1 ? IR_T_INT : IR_T_BOOL));
    return;
  }
  prom_add(p, t);
}

/* ---- folding known numbers -------------------------------------------- */

/* Abstract arithmetic shared by tensor ops on known 0-dim values and the
 * scalar_* ops. */
typedef enum arith {
  AR_NONE,
  AR_ADD,
  AR_SUB,
  AR_MUL,
  AR_DIV,
  AR_FLOORDIV,
  AR_TRUNCDIV,
  AR_MOD,
  AR_EQ,
  AR_NE,
  AR_LT,
  AR_LE,
  AR_GT,
  AR_GE,
  AR_AND,
  AR_OR,
  AR_MAX,
  AR_MIN,
  AR_POW,
} arith;

static bool is_num(const ir_const *c) {
  return c->kind == IR_C_INT || c->kind == IR_C_FLOAT || c->kind == IR_C_BOOL;
}
static double fnum(const ir_const *c) {
  return c->kind == IR_C_FLOAT ? c->f : (double)c->i;
}

static int64_t floordiv64(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}
static int64_t mod64(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0)))
    r += b;
  return r;
}

/* a OP b with Python semantics: ints stay ints except true division;
 * comparisons give bools. False when the result is not representable
 * (division by zero, overflow) or the operands are not numbers. */
static bool fold(arith op, const ir_const *a, const ir_const *b,
                 ir_const *out) {
  if (!is_num(a) || !is_num(b))
    return false;
  memset(out, 0, sizeof *out);
  bool ints = a->kind != IR_C_FLOAT && b->kind != IR_C_FLOAT;
  double x = fnum(a), y = fnum(b);
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
    if (op == AR_EQ)
      r = ints ? i == j : x == y;
    if (op == AR_NE)
      r = ints ? i != j : x != y;
    if (op == AR_LT)
      r = cmp < 0;
    if (op == AR_LE)
      r = cmp <= 0 && (ints || x == x);
    if (op == AR_GT)
      r = cmp > 0;
    if (op == AR_GE)
      r = cmp >= 0 && (ints || x == x);
    if (op == AR_AND)
      r = x != 0 && y != 0;
    if (op == AR_OR)
      r = x != 0 || y != 0;
    out->kind = IR_C_BOOL;
    out->i = r;
    return true;
  }
  default:
    break;
  }
  if (op == AR_DIV) {
    if (y == 0)
      return false;
    out->kind = IR_C_FLOAT;
    out->f = x / y;
    return true;
  }
  if (ints) {
    int64_t r;
    out->kind = IR_C_INT;
    switch (op) {
    case AR_ADD:
      if (__builtin_add_overflow(i, j, &r))
        return false;
      break;
    case AR_SUB:
      if (__builtin_sub_overflow(i, j, &r))
        return false;
      break;
    case AR_MUL:
      if (__builtin_mul_overflow(i, j, &r))
        return false;
      break;
    case AR_FLOORDIV:
    case AR_TRUNCDIV:
    case AR_MOD:
      if (j == 0 || (i == INT64_MIN && j == -1))
        return false;
      r = op == AR_FLOORDIV   ? floordiv64(i, j)
          : op == AR_TRUNCDIV ? i / j
                              : mod64(i, j);
      break;
    case AR_MAX:
      r = i > j ? i : j;
      break;
    case AR_MIN:
      r = i < j ? i : j;
      break;
    default:
      return false; /* int pow: not needed for shapes */
    }
    out->i = r;
    return true;
  }
  double r;
  switch (op) {
  case AR_ADD:
    r = x + y;
    break;
  case AR_SUB:
    r = x - y;
    break;
  case AR_MUL:
    r = x * y;
    break;
  case AR_FLOORDIV:
    if (y == 0)
      return false;
    r = floor(x / y);
    break;
  case AR_TRUNCDIV:
    if (y == 0)
      return false;
    r = trunc(x / y);
    break;
  case AR_MOD:
    if (y == 0)
      return false;
    r = fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0)))
      r += y;
    break;
  case AR_MAX:
    r = x > y ? x : y;
    break;
  case AR_MIN:
    r = x < y ? x : y;
    break;
  case AR_POW:
    r = pow(x, y);
    break;
  default:
    return false;
  }
  out->kind = IR_C_FLOAT;
  out->f = r;
  return true;
}

/* Converts a known number to the category of dtype dt (a tensor's value). */
static bool to_category(ir_const *c, nn_dtype dt) {
  if (!is_num(c) || dt == NN_DT_UNKNOWN)
    return false;
  int cat = category(dt);
  if (cat == 2 && c->kind != IR_C_FLOAT) {
    c->f = (double)c->i;
    c->kind = IR_C_FLOAT;
  } else if (cat == 1 && c->kind != IR_C_INT) {
    if (c->kind == IR_C_FLOAT) {
      if (!(c->f > -9.2e18 && c->f < 9.2e18))
        return false;
      c->i = (int64_t)c->f;
    }
    c->kind = IR_C_INT;
  } else if (cat == 0 && c->kind != IR_C_BOOL) {
    c->i = fnum(c) != 0;
    c->kind = IR_C_BOOL;
  }
  return true;
}

/* Symbolic int arithmetic: a OP b on dims, 0 when not expressible. */
static ir_dim sym_arith(sh *s, arith op, ir_dim a, ir_dim b) {
  int64_t c;
  if (!a || !b)
    return 0;
  switch (op) {
  case AR_ADD:
    return ir_dim_add(s->g, a, b);
  case AR_MUL:
    return ir_dim_mul(s->g, a, b);
  case AR_SUB:
    if (dc(s, b, &c) && c != INT64_MIN)
      return ir_dim_add(s->g, a, D(s, -c));
    return 0;
  case AR_FLOORDIV:
    if (dc(s, b, &c) && c > 0)
      return ir_dim_floordiv(s->g, a, b);
    return 0;
  case AR_MOD:
    if (dc(s, b, &c) && c > 0)
      return ir_dim_mod(s->g, a, b);
    return 0;
  default:
    return 0;
  }
}

/* Result kval r of the current node from known operand values ka OP kb.
 * `tensor` marks a 0-dim tensor result of dtype dt. */
static void fold_into(sh *s, int r, arith op, const kval *ka, const kval *kb,
                      bool is_tensor, nn_dtype dt, bool ints) {
  kval *ko = KO(s, r);
  if (ka->known && kb->known) {
    ir_const c;
    if (!fold(op, &ka->c, &kb->c, &c))
      return;
    if (is_tensor && !to_category(&c, dt))
      return;
    ko->known = true;
    ko->tensor = is_tensor;
    ko->c = c;
    return;
  }
  /* int arithmetic on a symbolic size stays symbolic */
  if (!ints)
    return;
  ir_dim a = vdim(s, ka), b = vdim(s, kb);
  ir_dim d = sym_arith(s, op, a, b);
  if (!d)
    return;
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

/* ---- broadcasting ----------------------------------------------------- */

/* numpy broadcasting of two shapes; false on a provable mismatch. */
static bool bcast(sh *s, int ra, const ir_dim *a, int rb, const ir_dim *b,
                  int *rr, ir_dim **out) {
  int r = ra > rb ? ra : rb;
  ir_dim *o = dims_new(s, r);
  for (int i = 0; i < r; i++) {
    int ia = ra - r + i, ib = rb - r + i;
    ir_dim x = ia >= 0 ? a[ia] : D(s, 1), y = ib >= 0 ? b[ib] : D(s, 1);
    int64_t cx = -1, cy = -1;
    bool kx = dc(s, x, &cx), ky = dc(s, y, &cy);
    if (x == y)
      o[i] = x;
    else if (kx && cx == 1)
      o[i] = y;
    else if (ky && cy == 1)
      o[i] = x;
    else if (kx && ky)
      return false;
    else
      o[i] = kx ? x : y; /* assumed equal; a guard checks it later */
  }
  *rr = r;
  *out = o;
  return true;
}

/* Shape of a broadcast operand: tensors have their dims, scalars rank 0. */
static bool bshape(const ir_type *t, int *r, const ir_dim **d) {
  if (t->kind == IR_T_TENSOR) {
    if (t->rank < 0 || !t->dims)
      return false;
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

/* ---- rules: elementwise ----------------------------------------------- */

/* Ops whose integral inputs give f32 results (floating-only math). */
static bool floating_only(ir_op op) {
  switch (op) {
  case NN_OP_SIGMOID:
  case NN_OP_TANH:
  case NN_OP_GELU:
  case NN_OP_SILU:
  case NN_OP_MISH:
  case NN_OP_HARDSWISH:
  case NN_OP_HARDSIGMOID:
  case NN_OP_SOFTPLUS:
  case NN_OP_ELU:
  case NN_OP_EXP:
  case NN_OP_LOG:
  case NN_OP_LOG1P:
  case NN_OP_SQRT:
  case NN_OP_RSQRT:
  case NN_OP_ERF:
  case NN_OP_RECIPROCAL:
  case NN_OP_SIN:
  case NN_OP_COS:
    return true;
  default:
    return false;
  }
}

/* One tensor in, the same shape out: activations, unary math, eval-mode
 * identities, tril/triu/flip/roll, scatter. */
static void r_unary(sh *s) {
  const ir_type *t = tens(s, 0);
  if (!t)
    return;
  ir_op op = N(s)->op;
  nn_dtype dt = t->dtype;
  if (floating_only(op) && dt != NN_DT_UNKNOWN && !nn_dtype_is_float(dt))
    dt = NN_DT_F32;
  if (op == NN_OP_LOGICAL_NOT)
    dt = NN_DT_BOOL;
  set(s, 0, tensor(s, dt, t->rank, t->dims));
  kval *k = KI(s, 0);
  if (ir_ops[op].flags & IR_IDENTITY) {
    *KO(s, 0) = *k;
  } else if (op == NN_OP_NEG && (k->known || k->sym)) {
    kval zero = {.known = true, .c = {.kind = IR_C_INT}};
    fold_into(s, 0, AR_SUB, &zero, k, true, dt, category(dt) == 1);
  }
}

/* Normalizations keep the input's type; their parameters are checked. */
static void r_norm(sh *s) {
  const ir_type *t = tens(s, 0);
  if (!t)
    return;
  ir_op op = N(s)->op;
  if (op == NN_OP_BATCH_NORM && t->rank < 2) {
    err(s, "expects a tensor of rank >= 2, got %s", tstr(s, t));
    return;
  }
  if (op == NN_OP_LAYER_NORM) {
    int64_t *ns;
    ir_dim *sy;
    int n;
    if (!opshape(s, 1, "normalized_shape", false, &ns, &sy, &n))
      return;
    bool ok = n <= t->rank;
    for (int i = 0; ok && i < n; i++) {
      ir_dim want = ns[i] == SH_SYM ? sy[i] : D(s, ns[i]);
      ok = may_equal(s, t->dims[t->rank - n + i], want);
    }
    if (!ok) {
      err(s, "normalized_shape %s does not match the trailing dims of %s",
          shape_str(s, n, ns, sy), tstr(s, t));
      return;
    }
  }
  if (op == NN_OP_GROUP_NORM) {
    int64_t groups, c;
    if (!need_int(s, 1, "num_groups", &groups))
      return;
    if (t->rank < 2 || groups <= 0 ||
        (dc(s, t->dims[1], &c) && c % groups != 0)) {
      err(s, "cannot split the channels of %s into %lld groups", tstr(s, t),
          (long long)groups);
      return;
    }
  }
  set(s, 0, tensor(s, t->dtype, t->rank, t->dims));
}

static arith arith_of(ir_op op) {
  switch (op) {
  case NN_OP_ADD:
  case NN_OP_SCALAR_ADD:
    return AR_ADD;
  case NN_OP_SUB:
  case NN_OP_RSUB:
  case NN_OP_SCALAR_SUB:
    return AR_SUB;
  case NN_OP_MUL:
  case NN_OP_SCALAR_MUL:
    return AR_MUL;
  case NN_OP_DIV:
  case NN_OP_SCALAR_DIV:
    return AR_DIV;
  case NN_OP_FLOOR_DIVIDE:
  case NN_OP_SCALAR_FLOORDIV:
    return AR_FLOORDIV;
  case NN_OP_REMAINDER:
  case NN_OP_SCALAR_MOD:
    return AR_MOD;
  case NN_OP_POW:
    return AR_POW;
  case NN_OP_MAXIMUM:
    return AR_MAX;
  case NN_OP_MINIMUM:
    return AR_MIN;
  case NN_OP_EQ:
  case NN_OP_SCALAR_EQ:
    return AR_EQ;
  case NN_OP_NE:
  case NN_OP_SCALAR_NE:
    return AR_NE;
  case NN_OP_LT:
  case NN_OP_SCALAR_LT:
    return AR_LT;
  case NN_OP_LE:
  case NN_OP_SCALAR_LE:
    return AR_LE;
  case NN_OP_GT:
  case NN_OP_SCALAR_GT:
    return AR_GT;
  case NN_OP_GE:
  case NN_OP_SCALAR_GE:
    return AR_GE;
  case NN_OP_LOGICAL_AND:
    return AR_AND;
  case NN_OP_LOGICAL_OR:
    return AR_OR;
  default:
    return AR_NONE;
  }
}

static bool is_bool_result(arith a) {
  return a >= AR_EQ && a <= AR_OR;
}

/* Broadcasting binary ops: add sub rsub mul div floor_divide remainder pow
 * maximum minimum, comparisons, logical and/or. Either side may be a
 * scalar; the result is a tensor unless both are (then it is a scalar). */
static void r_binary(sh *s) {
  ir_op op = N(s)->op;
  int ia = 0, ib = 1; /* rsub computes b - alpha*a */
  if (op == NN_OP_RSUB)
    ia = 1, ib = 0;
  const ir_type *ta = TY(s, ia), *tb = TY(s, ib);
  int ra, rb;
  const ir_dim *da, *db;
  if (!bshape(ta, &ra, &da) || !bshape(tb, &rb, &db)) {
    for (int i = 0; i < 2; i++) {
      const ir_type *t = TY(s, i);
      if (t->kind != IR_T_UNKNOWN && t->kind != IR_T_TENSOR &&
          !bshape(t, &ra, &da))
        err(s, "operand %d is %s, expected a tensor or a number", i + 1,
            tstr(s, t));
    }
    return;
  }
  arith ar = arith_of(op);
  bool true_div = false;
  if (op == NN_OP_DIV) {
    kval *km = KI(s, 2);
    if (is_none(s, 2))
      true_div = true;
    else if (km->known && km->c.kind == IR_C_STR && km->c.s &&
             strcmp(km->c.s, "floor") == 0)
      ar = AR_FLOORDIV;
    else if (km->known && km->c.kind == IR_C_STR && km->c.s &&
             strcmp(km->c.s, "trunc") == 0)
      ar = AR_TRUNCDIV;
    else if (!is_unknown(s, 2)) {
      err(s, "rounding_mode must be none, \"trunc\" or \"floor\"");
      return;
    }
  }
  /* alpha scales the second operand of add/sub/rsub */
  kval kb = *K(s, IN(s, ib));
  if (op == NN_OP_ADD || op == NN_OP_SUB || op == NN_OP_RSUB) {
    kval *kal = KI(s, 2);
    bool one = kal->known && is_num(&kal->c) && fnum(&kal->c) == 1;
    if (!one) {
      ir_const c;
      if (kal->known && kb.known && fold(AR_MUL, &kb.c, &kal->c, &c))
        kb.c = c;
      else
        kb.known = false;
      kb.sym = 0;
    }
  }
  const kval *ka = K(s, IN(s, ia));
  bool a_t = ta->kind == IR_T_TENSOR, b_t = tb->kind == IR_T_TENSOR;
  if (!a_t && !b_t) {
    /* number OP number: a scalar result */
    bool f = ta->kind == IR_T_FLOAT || tb->kind == IR_T_FLOAT || true_div;
    ir_tkind k = is_bool_result(ar) ? IR_T_BOOL : f ? IR_T_FLOAT : IR_T_INT;
    set(s, 0, scalar(s, k));
    kval x = *ka, y = kb;
    x.tensor = y.tensor = false;
    fold_into(s, 0, ar, &x, &y, false, NN_DT_UNKNOWN, k == IR_T_INT);
    return;
  }
  int rr;
  ir_dim *dd;
  if (!bcast(s, ra, da, rb, db, &rr, &dd)) {
    err(s, "cannot broadcast %s with %s", tstr(s, TY(s, 0)), tstr(s, TY(s, 1)));
    return;
  }
  prom p = {0};
  prom_operand(s, &p, IN(s, ia));
  prom_operand(s, &p, IN(s, ib));
  nn_dtype dt = prom_result(&p);
  if (is_bool_result(ar))
    dt = NN_DT_BOOL;
  else if (true_div && dt != NN_DT_UNKNOWN && !nn_dtype_is_float(dt))
    dt = NN_DT_F32;
  set(s, 0, tensor(s, dt, rr, dd));
  if (rr == 0 && dt != NN_DT_UNKNOWN)
    fold_into(s, 0, ar, ka, &kb, true, dt, category(dt) == 1);
}

/* where(cond, a, b): three-way broadcast; dtype from a and b. */
static void r_where(sh *s) {
  int r[3];
  const ir_dim *d[3];
  for (int i = 0; i < 3; i++)
    if (!bshape(TY(s, i), &r[i], &d[i])) {
      if (!is_unknown(s, i))
        tens(s, i);
      return;
    }
  int r1, r2;
  ir_dim *d1, *d2;
  if (!bcast(s, r[0], d[0], r[1], d[1], &r1, &d1) ||
      !bcast(s, r1, d1, r[2], d[2], &r2, &d2)) {
    err(s, "cannot broadcast %s, %s and %s", tstr(s, TY(s, 0)),
        tstr(s, TY(s, 1)), tstr(s, TY(s, 2)));
    return;
  }
  prom p = {0};
  prom_operand(s, &p, IN(s, 1));
  prom_operand(s, &p, IN(s, 2));
  set(s, 0, tensor(s, prom_result(&p), r2, d2));
}

/* masked_fill(x, mask, value): x's type; the mask must broadcast to x. */
static void r_masked_fill(sh *s) {
  const ir_type *x = tens(s, 0), *m = tens(s, 1);
  if (!x || !m)
    return;
  int rr;
  ir_dim *dd;
  bool ok =
      bcast(s, x->rank, x->dims, m->rank, m->dims, &rr, &dd) && rr == x->rank;
  for (int i = 0; ok && i < rr; i++)
    ok = may_equal(s, dd[i], x->dims[i]);
  if (!ok) {
    err(s, "cannot broadcast the mask %s to %s", tstr(s, m), tstr(s, x));
    return;
  }
  set(s, 0, x);
}

/* clamp(x, min?, max?): x's shape, promoted with the bounds. */
static void r_clamp(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  prom p = {0};
  prom_add(&p, x);
  for (int i = 1; i < 3; i++)
    if (!is_none(s, i))
      prom_operand(s, &p, IN(s, i));
  set(s, 0, tensor(s, prom_result(&p), x->rank, x->dims));
}

/* to(x, dtype?) and type_as(x, other). */
static void r_to(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  nn_dtype dt;
  if (N(s)->op == NN_OP_TYPE_AS) {
    const ir_type *o = tens(s, 1);
    if (!o)
      return;
    dt = o->dtype;
  } else if (!opdtype(s, 1, x->dtype, &dt)) {
    return;
  }
  set(s, 0, tensor(s, dt, x->rank, x->dims));
  kval k = *KI(s, 0);
  if (k.known && k.tensor && to_category(&k.c, dt))
    *KO(s, 0) = k;
  else if (k.sym && k.tensor && category(dt) == 1)
    *KO(s, 0) = k;
}

/* ---- rules: gemm-like ------------------------------------------------- */

/* numpy matmul of shapes a and b (ranks >= 1) with batch broadcasting.
 * Reports mismatches with the operands' types ta/tb. */
static bool matmul_shape(sh *s, const ir_type *ta, const ir_type *tb, int ra,
                         const ir_dim *a, int rb, const ir_dim *b, int *rr,
                         ir_dim **out) {
  if (ra < 1 || rb < 1) {
    err(s, "expects tensors of rank >= 1, got %s and %s", tstr(s, ta),
        tstr(s, tb));
    return false;
  }
  ir_dim ka = a[ra - 1], kb = rb >= 2 ? b[rb - 2] : b[0];
  if (!may_equal(s, ka, kb)) {
    err(s, "cannot multiply %s by %s", tstr(s, ta), tstr(s, tb));
    return false;
  }
  int nba = ra >= 2 ? ra - 2 : 0, nbb = rb >= 2 ? rb - 2 : 0, nb;
  ir_dim *bd;
  if (!bcast(s, nba, a, nbb, b, &nb, &bd)) {
    err(s, "cannot broadcast the batch dims of %s and %s", tstr(s, ta),
        tstr(s, tb));
    return false;
  }
  ir_dim *o = dims_new(s, nb + 2);
  memcpy(o, bd, sizeof *o * (size_t)nb);
  int r = nb;
  if (ra >= 2)
    o[r++] = a[ra - 2];
  if (rb >= 2)
    o[r++] = b[rb - 1];
  *rr = r;
  *out = o;
  return true;
}

/* mm, bmm, matmul, addmm (c, a, b, ...), baddbmm (c, a, b, ...). */
static void r_matmul(sh *s) {
  ir_op op = N(s)->op;
  int first = (op == NN_OP_ADDMM || op == NN_OP_BADDBMM) ? 1 : 0;
  const ir_type *ta = tens(s, first), *tb = tens(s, first + 1);
  if (!ta || !tb)
    return;
  int want = (op == NN_OP_MM || op == NN_OP_ADDMM)      ? 2
             : (op == NN_OP_BMM || op == NN_OP_BADDBMM) ? 3
                                                        : 0;
  if (want && (ta->rank != want || tb->rank != want)) {
    err(s, "expects %d-d tensors, got %s and %s", want, tstr(s, ta),
        tstr(s, tb));
    return;
  }
  if (want == 3 && !may_equal(s, ta->dims[0], tb->dims[0])) {
    err(s, "batch sizes differ: %s and %s", tstr(s, ta), tstr(s, tb));
    return;
  }
  int rr;
  ir_dim *dd;
  if (!matmul_shape(s, ta, tb, ta->rank, ta->dims, tb->rank, tb->dims, &rr,
                    &dd))
    return;
  set(s, 0, tensor(s, promote2(ta->dtype, tb->dtype), rr, dd));
}

/* linear(x, w, bias?): x @ w^T, w is [out, in] (or [in]). */
static void r_linear(sh *s) {
  const ir_type *x = tens(s, 0), *w = tens(s, 1);
  if (!x || !w)
    return;
  if (w->rank != 1 && w->rank != 2) {
    err(s, "expects a 1-d or 2-d weight, got %s", tstr(s, w));
    return;
  }
  ir_dim wt[2] = {w->dims[w->rank - 1], w->rank == 2 ? w->dims[0] : 0};
  int rr;
  ir_dim *dd;
  if (!matmul_shape(s, x, w, x->rank, x->dims, w->rank, wt, &rr, &dd))
    return;
  set(s, 0, tensor(s, promote2(x->dtype, w->dtype), rr, dd));
}

/* A per-spatial-dim parameter list: one element applies to every dim;
 * an empty list gives `dflt` (NULL: an error). */
static bool spatial(sh *s, int i, const char *what, int nsp,
                    const int64_t *dflt, int64_t lo, int64_t *out) {
  int64_t *v;
  int n;
  if (!oplist(s, i, what, &v, &n))
    return false;
  if (n == 0 && dflt) {
    memcpy(out, dflt, sizeof *out * (size_t)nsp);
    return true;
  }
  if (n != 1 && n != nsp) {
    err(s, "%s must have 1 or %d elements, got %d", what, nsp, n);
    return false;
  }
  for (int j = 0; j < nsp; j++) {
    out[j] = v[n == 1 ? 0 : j];
    if (out[j] < lo || out[j] > ((int64_t)1 << 40)) {
      err(s, "%s must be >= %lld, got %lld", what, (long long)lo,
          (long long)out[j]);
      return false;
    }
  }
  return true;
}

/* Output size of a sliding window (conv and pooling) along one dim:
 * floor((in + 2p - d(k-1) - 1) / s) + 1, or with ceil_mode the ceiling,
 * minus one when the last window would start past the input and its left
 * padding. Symbolic inputs work without ceil_mode. 0 after reporting. */
static ir_dim window(sh *s, ir_dim in, int64_t k, int64_t st, int64_t pad,
                     int64_t dil, bool ceil_mode) {
  int64_t span = dil * (k - 1) + 1, c;
  if (!dc(s, in, &c)) {
    if (ceil_mode) {
      err(s, "ceil_mode with a symbolic input size is not supported");
      return 0;
    }
    ir_dim t = ir_dim_add(s->g, in, D(s, 2 * pad - span));
    return ir_dim_add(s->g, ir_dim_floordiv(s->g, t, D(s, st)), D(s, 1));
  }
  if (c < 0 || c > ((int64_t)1 << 60)) {
    err(s, "the input size %lld is out of range", (long long)c);
    return 0;
  }
  int64_t num = c + 2 * pad - span;
  int64_t out = (num >= 0 || ceil_mode)
                    ? floordiv64(num + (ceil_mode ? st - 1 : 0), st) + 1
                    : 0;
  if (ceil_mode && out > 0 && (out - 1) * st >= c + pad)
    out--;
  if (out < 1) {
    err(s, "the input size %lld is too small for a window of %lld",
        (long long)c, (long long)span);
    return 0;
  }
  return D(s, out);
}

/* convolution(x, w, bias?, stride, padding, dilation, transposed,
 * output_padding, groups): N-d, batched or not. */
static void r_conv(sh *s) {
  const ir_type *x = tens(s, 0), *w = tens(s, 1);
  if (!x || !w)
    return;
  int nsp = w->rank - 2;
  if (nsp < 1 || (x->rank != w->rank && x->rank != w->rank - 1)) {
    err(s, "input %s does not fit weight %s", tstr(s, x), tstr(s, w));
    return;
  }
  int64_t st[8], pad[8], dil[8], opad[8], groups, transposed;
  if (nsp > 8) {
    err(s, "at most 8 spatial dims are supported");
    return;
  }
  if (!spatial(s, 3, "stride", nsp, NULL, 1, st) ||
      !spatial(s, 4, "padding", nsp, NULL, 0, pad) ||
      !spatial(s, 5, "dilation", nsp, NULL, 1, dil) ||
      !need_int(s, 6, "transposed", &transposed) ||
      !need_int(s, 8, "groups", &groups))
    return;
  int64_t zeros[8] = {0};
  if (transposed && !spatial(s, 7, "output_padding", nsp, zeros, 0, opad))
    return;
  if (groups < 1) {
    err(s, "groups must be >= 1, got %lld", (long long)groups);
    return;
  }
  int batched = x->rank == w->rank;
  ir_dim cin = x->dims[batched], cout;
  /* weight: [out, in/groups, k...], transposed [in, out/groups, k...] */
  ir_dim want =
      transposed ? w->dims[0] : ir_dim_mul(s->g, w->dims[1], D(s, groups));
  if (!may_equal(s, cin, want)) {
    err(s,
        "input %s has a different channel count than weight %s expects "
        "(groups=%lld)",
        tstr(s, x), tstr(s, w), (long long)groups);
    return;
  }
  cout = transposed ? ir_dim_mul(s->g, w->dims[1], D(s, groups)) : w->dims[0];
  ir_dim *o = dims_new(s, x->rank);
  if (batched)
    o[0] = x->dims[0];
  o[batched] = cout;
  for (int i = 0; i < nsp; i++) {
    ir_dim in = x->dims[batched + 1 + i];
    int64_t k;
    if (!dc(s, w->dims[2 + i], &k) || k < 1 || k > ((int64_t)1 << 40)) {
      err(s, "the kernel size of %s is not a positive constant", tstr(s, w));
      return;
    }
    if (!transposed) {
      o[batched + 1 + i] = window(s, in, k, st[i], pad[i], dil[i], false);
      if (!o[batched + 1 + i])
        return;
    } else {
      /* (in - 1)*s - 2p + d(k-1) + output_padding + 1 */
      ir_dim t = ir_dim_mul(s->g, ir_dim_add(s->g, in, D(s, -1)), D(s, st[i]));
      o[batched + 1 + i] = ir_dim_add(
          s->g, t, D(s, dil[i] * (k - 1) + opad[i] + 1 - 2 * pad[i]));
    }
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
}

/* ---- rules: pooling --------------------------------------------------- */

/* max_pool{1,2}d(x, k, s, p, d, ceil), max_pool2d_with_indices,
 * avg_pool{1,2}d(x, k, s, p, ceil, count_include_pad[, divisor]). */
static void r_pool(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  ir_op op = N(s)->op;
  int nsp = (op == NN_OP_MAX_POOL1D || op == NN_OP_AVG_POOL1D) ? 1 : 2;
  bool avg = op == NN_OP_AVG_POOL2D || op == NN_OP_AVG_POOL1D;
  if (x->rank != nsp + 1 && x->rank != nsp + 2) {
    err(s, "expects a %d-d or %d-d input, got %s", nsp + 1, nsp + 2,
        tstr(s, x));
    return;
  }
  int64_t k[2], st[2], pad[2], dil[2] = {1, 1}, ceil_mode;
  if (!spatial(s, 1, "kernel_size", nsp, NULL, 1, k) ||
      !spatial(s, 2, "stride", nsp, k, 1, st) ||
      !spatial(s, 3, "padding", nsp, NULL, 0, pad) ||
      (!avg && !spatial(s, 4, "dilation", nsp, NULL, 1, dil)) ||
      !need_int(s, avg ? 4 : 5, "ceil_mode", &ceil_mode))
    return;
  ir_dim *o = dims_new(s, x->rank);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  for (int i = 0; i < nsp; i++) {
    if (pad[i] * 2 > k[i]) {
      err(s, "padding %lld is more than half the kernel size %lld",
          (long long)pad[i], (long long)k[i]);
      return;
    }
    int j = x->rank - nsp + i;
    o[j] = window(s, x->dims[j], k[i], st[i], pad[i], dil[i], ceil_mode);
    if (!o[j])
      return;
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
  if (N(s)->nout == 2)
    set(s, 1, tensor(s, NN_DT_I64, x->rank, o));
}

/* adaptive_{avg,max}_pool{1,2}d(x, output_size): the spatial dims become
 * output_size (none keeps the input's). */
static void r_adaptive(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int nsp = N(s)->op == NN_OP_ADAPTIVE_AVG_POOL1D ? 1 : 2;
  if (x->rank != nsp + 1 && x->rank != nsp + 2) {
    err(s, "expects a %d-d or %d-d input, got %s", nsp + 1, nsp + 2,
        tstr(s, x));
    return;
  }
  int64_t *v;
  ir_dim *y;
  int n;
  if (!opshape(s, 1, "output_size", true, &v, &y, &n))
    return;
  if (n != 1 && n != nsp) {
    err(s, "output_size must have %d elements, got %d", nsp, n);
    return;
  }
  ir_dim *o = dims_new(s, x->rank);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  for (int i = 0; i < nsp; i++) {
    int j = n == 1 ? 0 : i, at = x->rank - nsp + i;
    if (v[j] == SH_NONE)
      continue;
    if (v[j] == SH_SYM) {
      o[at] = y[j];
    } else if (v[j] < 0) {
      err(s, "output_size must be >= 0, got %lld", (long long)v[j]);
      return;
    } else {
      o[at] = D(s, v[j]);
    }
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
  if (N(s)->nout == 2)
    set(s, 1, tensor(s, NN_DT_I64, x->rank, o));
}

/* ---- rules: reductions ------------------------------------------------ */

/* The shape left after reducing `mask` dims of x (kept as 1 with keepdim). */
static const ir_type *reduced(sh *s, const ir_type *x, const bool *mask,
                              bool keepdim, nn_dtype dt) {
  ir_dim *o = dims_new(s, x->rank);
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    if (!mask[i])
      o[r++] = x->dims[i];
    else if (keepdim)
      o[r++] = D(s, 1);
  }
  return tensor(s, dt, r, o);
}

/* sum/mean(x, dims?, keepdim, dtype?), amax/amin(x, dims, keepdim),
 * norm(x, p?, dims, keepdim): none or empty dims reduce everything. */
static void r_reduce(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  ir_op op = N(s)->op;
  int idims = op == NN_OP_NORM ? 2 : 1, ikeep = idims + 1;
  int64_t keep;
  if (!need_int(s, ikeep, "keepdim", &keep))
    return;
  bool *mask = nn_alloc(s->a, (size_t)x->rank + 1);
  int64_t *v = NULL;
  int n = 0;
  if (!is_none(s, idims) && !oplist(s, idims, "dims", &v, &n))
    return;
  for (int i = 0; i < x->rank; i++)
    mask[i] = n == 0;
  for (int j = 0; j < n; j++) {
    int d;
    if (!wrapdim(s, v[j], x->rank, 0, &d))
      return;
    if (x->rank == 0)
      continue;
    if (mask[d]) {
      err(s, "dim %lld appears twice", (long long)v[j]);
      return;
    }
    mask[d] = true;
  }
  nn_dtype dt = x->dtype;
  if (op == NN_OP_SUM && dt != NN_DT_UNKNOWN && category(dt) < 2)
    dt = NN_DT_I64;
  if (op == NN_OP_NORM && dt != NN_DT_UNKNOWN && category(dt) < 2)
    dt = NN_DT_F32;
  if ((op == NN_OP_SUM || op == NN_OP_MEAN) && !opdtype(s, 3, dt, &dt))
    return;
  set(s, 0, reduced(s, x, mask, keep, dt));
}

/* max_all/min_all(x): 0-dim. */
static void r_reduce_all(sh *s) {
  const ir_type *x = tens(s, 0);
  if (x)
    set(s, 0, tensor(s, x->dtype, 0, NULL));
}

/* max_dim/min_dim(x, dim, keepdim) -> (values, i64 indices);
 * argmax/argmin(x, dim?, keepdim) -> i64 (all dims when dim is none). */
static void r_reduce_dim(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int64_t keep;
  if (!need_int(s, 2, "keepdim", &keep))
    return;
  bool *mask = nn_alloc(s->a, (size_t)x->rank + 1);
  ir_op op = N(s)->op;
  bool arg = op == NN_OP_ARGMAX || op == NN_OP_ARGMIN;
  if (arg && is_none(s, 1)) {
    for (int i = 0; i < x->rank; i++)
      mask[i] = true;
  } else {
    int d;
    if (!opdim(s, 1, x->rank, 0, &d))
      return;
    if (x->rank)
      mask[d] = true;
  }
  if (arg) {
    set(s, 0, reduced(s, x, mask, keep, NN_DT_I64));
  } else {
    set(s, 0, reduced(s, x, mask, keep, x->dtype));
    set(s, 1, reduced(s, x, mask, keep, NN_DT_I64));
  }
}

/* softmax/log_softmax/cumsum(x, dim, dtype?): x's shape. */
static void r_softmax(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int d;
  if (!opdim(s, 1, x->rank, 0, &d))
    return;
  nn_dtype dt = x->dtype;
  if (N(s)->op == NN_OP_CUMSUM && dt != NN_DT_UNKNOWN && category(dt) < 2)
    dt = NN_DT_I64;
  if (!opdtype(s, 2, dt, &dt))
    return;
  set(s, 0, tensor(s, dt, x->rank, x->dims));
}

/* ---- rules: shape and layout ------------------------------------------ */

/* view/reshape(x, shape): one -1 is inferred from the element count. */
static void r_view(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int64_t *v;
  ir_dim *y;
  int n;
  if (!opshape(s, 1, "shape", false, &v, &y, &n))
    return;
  int infer = -1;
  ir_dim *o = dims_new(s, n);
  ir_dim known = D(s, 1);
  for (int j = 0; j < n; j++) {
    if (v[j] == -1 && infer < 0) {
      infer = j;
      continue;
    }
    if (v[j] < 0 && v[j] != SH_SYM) {
      err(s, "invalid size %lld in shape %s", (long long)v[j],
          shape_str(s, n, v, y));
      return;
    }
    o[j] = v[j] == SH_SYM ? y[j] : D(s, v[j]);
    known = ir_dim_mul(s->g, known, o[j]);
  }
  ir_dim total = numel(s, x->rank, x->dims);
  bool any_unknown = known == IR_DIM_UNKNOWN || total == IR_DIM_UNKNOWN;
  for (int i = 0; i < x->rank; i++)
    if (x->dims[i] == IR_DIM_UNKNOWN)
      any_unknown = false; /* nothing to say */
  if (any_unknown) {
    err(s, "the element count of %s or %s is out of range", tstr(s, x),
        shape_str(s, n, v, y));
    return;
  }
  int64_t ct, ck;
  bool consts = dc(s, total, &ct) && dc(s, known, &ck);
  if (infer >= 0) {
    if (consts && (ck == 0 || ct % ck != 0))
      goto bad;
    o[infer] = ir_dim_div(s->g, total, known);
  } else if (consts && ct != ck) {
    goto bad;
  }
  set(s, 0, tensor(s, x->dtype, n, o));
  return;
bad:
  err(s, "cannot view %s as %s", tstr(s, x), shape_str(s, n, v, y));
}

/* flatten(x, start_dim, end_dim). */
static void r_flatten(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int a, b;
  if (!opdim(s, 1, x->rank, 0, &a) || !opdim(s, 2, x->rank, 0, &b))
    return;
  if (x->rank == 0) {
    ir_dim one = D(s, 1);
    set(s, 0, tensor(s, x->dtype, 1, &one));
    return;
  }
  if (a > b) {
    err(s, "start_dim %d is after end_dim %d", a, b);
    return;
  }
  int r = x->rank - (b - a);
  ir_dim *o = dims_new(s, r);
  memcpy(o, x->dims, sizeof *o * (size_t)a);
  o[a] = numel(s, b - a + 1, x->dims + a);
  memcpy(o + a + 1, x->dims + b + 1, sizeof *o * (size_t)(x->rank - b - 1));
  set(s, 0, tensor(s, x->dtype, r, o));
}

/* squeeze(x, dim?): removes size-1 dims (only the named one when given;
 * a dim of another size is left alone). */
static void r_squeeze(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int only = -1;
  if (!is_none(s, 1) && !opdim(s, 1, x->rank, 0, &only))
    return;
  ir_dim *o = dims_new(s, x->rank);
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    int64_t c;
    bool one = dc(s, x->dims[i], &c) && c == 1;
    if (!(one && (only < 0 || only == i)))
      o[r++] = x->dims[i];
  }
  set(s, 0, tensor(s, x->dtype, r, o));
}

/* unsqueeze(x, dim): dim may be rank (append); negative adds rank + 1. */
static void r_unsqueeze(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int d;
  if (!opdim(s, 1, x->rank, 1, &d))
    return;
  ir_dim *o = dims_new(s, x->rank + 1);
  memcpy(o, x->dims, sizeof *o * (size_t)d);
  o[d] = D(s, 1);
  memcpy(o + d + 1, x->dims + d, sizeof *o * (size_t)(x->rank - d));
  set(s, 0, tensor(s, x->dtype, x->rank + 1, o));
}

/* expand(x, size, implicit): -1 keeps a dim; new dims lead. */
static void r_expand(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int64_t *v;
  ir_dim *y;
  int n;
  if (!opshape(s, 1, "size", false, &v, &y, &n))
    return;
  if (n < x->rank)
    goto bad;
  ir_dim *o = dims_new(s, n);
  for (int j = 0; j < n; j++) {
    int i = j - (n - x->rank); /* x's dim, or < 0 for a new one */
    if (v[j] == -1) {
      if (i < 0)
        goto bad;
      o[j] = x->dims[i];
      continue;
    }
    if (v[j] < 0 && v[j] != SH_SYM)
      goto bad;
    o[j] = v[j] == SH_SYM ? y[j] : D(s, v[j]);
    int64_t c;
    if (i >= 0 && !(dc(s, x->dims[i], &c) && c == 1) &&
        !may_equal(s, x->dims[i], o[j]))
      goto bad;
  }
  set(s, 0, tensor(s, x->dtype, n, o));
  return;
bad:
  err(s, "cannot expand %s to %s", tstr(s, x), shape_str(s, n, v, y));
}

/* expand_as(x, other): other's shape, x's dtype. */
static void r_expand_as(sh *s) {
  const ir_type *x = tens(s, 0), *o = tens(s, 1);
  if (!x || !o)
    return;
  int rr;
  ir_dim *dd;
  if (x->rank > o->rank ||
      !bcast(s, x->rank, x->dims, o->rank, o->dims, &rr, &dd)) {
    err(s, "cannot expand %s to %s", tstr(s, x), tstr(s, o));
    return;
  }
  set(s, 0, tensor(s, x->dtype, o->rank, o->dims));
}

/* repeat(x, repeats): len(repeats) >= rank; x is padded with leading 1s. */
static void r_repeat(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int64_t *v;
  int n;
  if (!oplist(s, 1, "repeats", &v, &n))
    return;
  if (n < x->rank) {
    err(s, "repeats has %d elements, fewer than the rank of %s", n, tstr(s, x));
    return;
  }
  ir_dim *o = dims_new(s, n);
  for (int j = 0; j < n; j++) {
    int i = j - (n - x->rank);
    if (v[j] < 0) {
      err(s, "negative repeat count %lld", (long long)v[j]);
      return;
    }
    o[j] = ir_dim_mul(s->g, i >= 0 ? x->dims[i] : D(s, 1), D(s, v[j]));
  }
  set(s, 0, tensor(s, x->dtype, n, o));
}

/* permute(x, dims). */
static void r_permute(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int64_t *v;
  int n;
  if (!oplist(s, 1, "dims", &v, &n))
    return;
  if (n != x->rank) {
    err(s, "%d dims given for %s", n, tstr(s, x));
    return;
  }
  bool *seen = nn_alloc(s->a, (size_t)n + 1);
  ir_dim *o = dims_new(s, n);
  for (int j = 0; j < n; j++) {
    int d;
    if (!wrapdim(s, v[j], x->rank, 0, &d))
      return;
    if (seen[d]) {
      err(s, "dim %lld appears twice", (long long)v[j]);
      return;
    }
    seen[d] = true;
    o[j] = x->dims[d];
  }
  set(s, 0, tensor(s, x->dtype, n, o));
}

/* transpose(x, d0, d1) and t(x) (rank <= 2). */
static void r_transpose(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int a = 0, b = 1;
  if (N(s)->op == NN_OP_T) {
    if (x->rank > 2) {
      err(s, "expects a tensor of rank <= 2, got %s", tstr(s, x));
      return;
    }
    if (x->rank < 2) {
      set(s, 0, x);
      return;
    }
  } else if (!opdim(s, 1, x->rank, 0, &a) || !opdim(s, 2, x->rank, 0, &b)) {
    return;
  }
  ir_dim *o = dims_new(s, x->rank);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  if (x->rank) {
    o[a] = x->dims[b];
    o[b] = x->dims[a];
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
}

/* The tensor with dim d replaced by `size` (0 = removed). */
static const ir_type *with_dim(sh *s, const ir_type *x, int d, ir_dim size) {
  ir_dim *o = dims_new(s, x->rank);
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    if (i != d)
      o[r++] = x->dims[i];
    else if (size)
      o[r++] = size;
  }
  return tensor(s, x->dtype, r, o);
}

/* Length of x[start:end:step] on a dim of size `size` with Python's
 * clamping; start/end may be SH_NONE. Symbolic sizes work when the
 * bounds are constants (assumed within the dim). 0 after reporting. */
static ir_dim slice_len(sh *s, ir_dim size, int64_t start, int64_t end,
                        int64_t step) {
  int64_t n;
  if (start == SH_NONE)
    start = 0;
  if (end == SH_NONE)
    end = SH_END;
  if (dc(s, size, &n)) {
    if (start < 0)
      start = start + n < 0 ? 0 : start + n;
    if (end < 0)
      end = end + n < 0 ? 0 : end + n;
    if (start > n)
      start = n;
    if (end > n)
      end = n;
    return D(s, end > start ? (end - start - 1) / step + 1 : 0);
  }
  ir_dim a = start >= 0 ? D(s, start) : ir_dim_add(s->g, size, D(s, start));
  ir_dim b = end >= ((int64_t)1 << 62) ? size
             : end >= 0                ? D(s, end)
                                       : ir_dim_add(s->g, size, D(s, end));
  int64_t ca, cb;
  if (dc(s, a, &ca) && dc(s, b, &cb))
    return D(s, cb > ca ? (cb - ca - 1) / step + 1 : 0);
  ir_dim len;
  if (dc(s, a, &ca))
    len = ir_dim_add(s->g, b, D(s, -ca));
  else if (a == size && b == size)
    len = D(s, 0);
  else if (dc(s, b, &cb)) {
    /* size + start .. cb with start < 0: length -start when it reaches */
    err(s, "cannot slice a symbolic dim from %lld to %lld", (long long)start,
        (long long)end);
    return 0;
  } else {
    /* both relative to size: (size + e) - (size + s) = e - s */
    int64_t d;
    if (__builtin_sub_overflow(end >= ((int64_t)1 << 62) ? 0 : end, start, &d))
      d = 0;
    len = D(s, d > 0 ? d : 0);
  }
  if (step == 1)
    return len;
  return ir_dim_floordiv(s->g, ir_dim_add(s->g, len, D(s, step - 1)),
                         D(s, step));
}

/* slice(x, dim, start?, end?, step). */
static void r_slice(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int d;
  int64_t start = SH_NONE, end = SH_NONE, step;
  if (!opdim(s, 1, x->rank, 0, &d) ||
      (!is_none(s, 2) && !need_int(s, 2, "start", &start)) ||
      (!is_none(s, 3) && !need_int(s, 3, "end", &end)) ||
      !need_int(s, 4, "step", &step))
    return;
  if (x->rank == 0) {
    err(s, "cannot slice a 0-dim tensor");
    return;
  }
  if (step <= 0) {
    err(s, "step must be positive, got %lld", (long long)step);
    return;
  }
  ir_dim len = slice_len(s, x->dims[d], start, end, step);
  if (len)
    set(s, 0, with_dim(s, x, d, len));
}

/* select(x, dim, index): the dim is removed. */
static void r_select(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int d;
  int64_t idx, n;
  if (!opdim(s, 1, x->rank, 0, &d) || !need_int(s, 2, "index", &idx))
    return;
  if (x->rank == 0) {
    err(s, "cannot select from a 0-dim tensor");
    return;
  }
  if (dc(s, x->dims[d], &n) && (idx < -n || idx >= n)) {
    err(s, "index %lld is out of range for dim %d of %s", (long long)idx, d,
        tstr(s, x));
    return;
  }
  set(s, 0, with_dim(s, x, d, 0));
}

/* narrow(x, dim, start, length). */
static void r_narrow(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int d;
  int64_t start, len, n;
  if (!opdim(s, 1, x->rank, 0, &d) || !need_int(s, 2, "start", &start) ||
      !need_int(s, 3, "length", &len))
    return;
  if (x->rank == 0 || len < 0 ||
      (dc(s, x->dims[d], &n) && (start < -n || start > n ||
                                 (start < 0 ? start + n : start) + len > n))) {
    err(s, "cannot narrow %s at dim %d from %lld by %lld", tstr(s, x), d,
        (long long)start, (long long)len);
    return;
  }
  set(s, 0, with_dim(s, x, d, D(s, len)));
}

/* Types the current node's result as a tensor list of the given pieces:
 * list<first piece>, each piece's exact type recorded. */
static void set_pieces(sh *s, const ir_type **pieces, int n, nn_dtype dt) {
  const ir_type *elem = n ? pieces[0] : tensor(s, dt, -1, NULL);
  set(s, 0, ir_type_list(s->g, elem));
  KO(s, 0)->pieces = pieces;
  KO(s, 0)->npieces = n;
}

/* chunk(x, chunks, dim), split(x, size | sizes, dim), unbind(x, dim). */
static void r_split(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  ir_op op = N(s)->op;
  int d;
  if (!opdim(s, op == NN_OP_UNBIND ? 1 : 2, x->rank, 0, &d))
    return;
  if (x->rank == 0) {
    err(s, "cannot split a 0-dim tensor");
    return;
  }
  int64_t n;
  if (!dc(s, x->dims[d], &n)) {
    err(s, "cannot split the symbolic dim %d of %s", d, tstr(s, x));
    return;
  }
  int64_t *sizes;
  int count;
  if (op == NN_OP_UNBIND) {
    if (n > (1 << 20)) {
      err(s, "too many pieces");
      return;
    }
    count = (int)n;
    sizes = NULL;
  } else {
    int64_t *v;
    int nv;
    if (!oplist(s, 1, op == NN_OP_CHUNK ? "chunks" : "split_size", &v, &nv))
      return;
    int64_t piece;
    if (op == NN_OP_SPLIT && (nv != 1 || TY(s, 1)->kind == IR_T_LIST)) {
      /* explicit sizes */
      int64_t sum = 0;
      for (int j = 0; j < nv; j++) {
        if (v[j] < 0 || __builtin_add_overflow(sum, v[j], &sum))
          sum = -1;
        if (sum < 0)
          break;
      }
      if (sum != n) {
        err(s, "split sizes %s do not add up to %lld",
            shape_str(s, nv, v, NULL), (long long)n);
        return;
      }
      sizes = v;
      count = nv;
      goto build;
    }
    if (op == NN_OP_CHUNK) {
      if (v[0] <= 0) {
        err(s, "chunks must be positive, got %lld", (long long)v[0]);
        return;
      }
      piece = n > 0 ? (n - 1) / v[0] + 1 : 0;
    } else {
      piece = v[0];
    }
    if (piece <= 0 && n > 0) {
      err(s, "split size must be positive, got %lld", (long long)piece);
      return;
    }
    int64_t cnt = n == 0 ? 1 : (n - 1) / piece + 1;
    if (cnt > (1 << 20)) {
      err(s, "too many pieces");
      return;
    }
    count = (int)cnt;
    sizes = nn_alloc(s->a, sizeof *sizes * (size_t)(count + 1));
    for (int j = 0; j < count; j++)
      sizes[j] = n - piece * j < piece ? n - piece * j : piece;
  }
build:;
  const ir_type **p = nn_alloc(s->a, sizeof *p * (size_t)(count + 1));
  for (int j = 0; j < count; j++)
    p[j] = with_dim(s, x, d, sizes ? D(s, sizes[j]) : 0);
  set_pieces(s, p, count, x->dtype);
}

/* The element types of a tensor-list operand (from list_construct, chunk,
 * split, unbind); NULL after reporting. */
static const ir_type **list_pieces(sh *s, int i, int *n) {
  kval *k = KI(s, i);
  if (k->pieces) {
    *n = k->npieces;
    return k->pieces;
  }
  if (!is_unknown(s, i))
    err(s, "the tensor list is not known at compile time");
  return NULL;
}

/* cat(tensors, dim) and stack(tensors, dim). */
static void r_cat(sh *s) {
  int n;
  const ir_type **p = list_pieces(s, 0, &n);
  if (!p)
    return;
  bool stack = N(s)->op == NN_OP_STACK;
  /* cat skips legacy empty 1-d tensors ([0]) next to real ones */
  const ir_type *ref = NULL;
  prom pr = {0};
  for (int j = 0; j < n; j++) {
    const ir_type *t = p[j];
    if (t->kind != IR_T_TENSOR || t->rank < 0) {
      if (t->kind != IR_T_UNKNOWN && t->kind != IR_T_TENSOR)
        err(s, "element %d is %s, expected a tensor", j, tstr(s, t));
      return;
    }
    int64_t c;
    bool empty = !stack && t->rank == 1 && dc(s, t->dims[0], &c) && c == 0;
    if (!ref || (!empty && ref->rank == 1 && dc(s, ref->dims[0], &c) && c == 0))
      ref = t;
    pr.tier[2] = pr.tier[2] ? promote2(pr.tier[2], t->dtype) : t->dtype;
  }
  if (!ref) {
    err(s, "expects a non-empty list of tensors");
    return;
  }
  int d;
  if (!opdim(s, 1, ref->rank, stack ? 1 : 0, &d))
    return;
  if (!stack && ref->rank == 0) {
    err(s, "cannot concatenate 0-dim tensors");
    return;
  }
  ir_dim *o = dims_new(s, ref->rank + 1);
  memcpy(o, ref->dims, sizeof *o * (size_t)ref->rank);
  if (!stack)
    o[d] = D(s, 0);
  for (int j = 0; j < n; j++) {
    const ir_type *t = p[j];
    int64_t c;
    if (!stack && t->rank == 1 && dc(s, t->dims[0], &c) && c == 0 &&
        ref->rank != 1)
      continue;
    bool ok = t->rank == ref->rank;
    for (int i = 0; ok && i < t->rank; i++)
      ok = (!stack && i == d) || may_equal(s, t->dims[i], ref->dims[i]);
    if (!ok) {
      err(s, "cannot %s %s with %s", stack ? "stack" : "concatenate",
          tstr(s, ref), tstr(s, t));
      return;
    }
    if (!stack)
      o[d] = ir_dim_add(s->g, o[d], t->dims[d]);
  }
  if (stack) {
    memmove(o + d + 1, o + d, sizeof *o * (size_t)(ref->rank - d));
    o[d] = D(s, n);
  }
  set(s, 0, tensor(s, pr.tier[2], ref->rank + stack, o));
}

/* constant_pad_nd(x, pad, value): pairs from the last dim; negative pads
 * shrink. */
static void r_pad(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int64_t *v;
  int n;
  if (!oplist(s, 1, "pad", &v, &n))
    return;
  if (n % 2 || n / 2 > x->rank) {
    err(s, "pad has %d elements; expects an even count of at most %d", n,
        2 * x->rank);
    return;
  }
  ir_dim *o = dims_new(s, x->rank);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  for (int j = 0; j < n / 2; j++) {
    int i = x->rank - 1 - j;
    int64_t c, add;
    if (__builtin_add_overflow(v[2 * j], v[2 * j + 1], &add) ||
        add < -((int64_t)1 << 40) || add > ((int64_t)1 << 40)) {
      err(s, "pad is out of range");
      return;
    }
    o[i] = ir_dim_add(s->g, x->dims[i], D(s, add));
    if (dc(s, o[i], &c) && c < 0) {
      err(s, "padding %s by %s leaves a negative size", tstr(s, x),
          shape_str(s, n, v, NULL));
      return;
    }
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
}

/* pixel_shuffle(x, r): [..., C*r*r, H, W] -> [..., C, H*r, W*r]. */
static void r_pixel_shuffle(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int64_t r, c;
  if (!need_int(s, 1, "upscale_factor", &r))
    return;
  int k = x->rank;
  if (k < 3 || r <= 0 || r > (1 << 20) ||
      (dc(s, x->dims[k - 3], &c) && c % (r * r) != 0)) {
    err(s, "cannot shuffle %s by %lld", tstr(s, x), (long long)r);
    return;
  }
  ir_dim *o = dims_new(s, k);
  memcpy(o, x->dims, sizeof *o * (size_t)k);
  o[k - 3] = ir_dim_div(s->g, x->dims[k - 3], D(s, r * r));
  o[k - 2] = ir_dim_mul(s->g, x->dims[k - 2], D(s, r));
  o[k - 1] = ir_dim_mul(s->g, x->dims[k - 1], D(s, r));
  set(s, 0, tensor(s, x->dtype, k, o));
}

/* upsample_nearest2d(x, output_size?, scale_h?, scale_w?). */
static void r_upsample(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int k = x->rank;
  if (k < 3) {
    err(s, "expects a tensor of rank >= 3, got %s", tstr(s, x));
    return;
  }
  ir_dim *o = dims_new(s, k);
  memcpy(o, x->dims, sizeof *o * (size_t)k);
  if (!is_none(s, 1)) {
    int64_t *v;
    ir_dim *y;
    int n;
    if (!opshape(s, 1, "output_size", false, &v, &y, &n))
      return;
    if (n != 2) {
      err(s, "output_size must have 2 elements, got %d", n);
      return;
    }
    for (int j = 0; j < 2; j++)
      o[k - 2 + j] = v[j] == SH_SYM ? y[j] : D(s, v[j]);
  } else {
    for (int j = 0; j < 2; j++) {
      double f;
      bool isint;
      int64_t c;
      if (!knum(s, 2 + j, &f, &isint) || !(f > 0 && f < 1e9)) {
        if (!is_unknown(s, 2 + j))
          err(s, "needs a constant output_size or scale factors");
        return;
      }
      ir_dim in = x->dims[k - 2 + j];
      if (dc(s, in, &c) && (double)c * f < 1e15)
        o[k - 2 + j] = D(s, (int64_t)floor((double)c * f));
      else if (dc(s, in, &c)) {
        err(s, "the output size is out of range");
        return;
      } else if (f == floor(f))
        o[k - 2 + j] = ir_dim_mul(s->g, in, D(s, (int64_t)f));
      else {
        err(s, "a fractional scale of a symbolic size is not supported");
        return;
      }
    }
  }
  set(s, 0, tensor(s, x->dtype, k, o));
}

/* ---- rules: indexing and gathering ------------------------------------ */

/* embedding(w, indices, ...): indices' shape + [embedding_dim]. */
static void r_embedding(sh *s) {
  const ir_type *w = tens(s, 0), *ix = tens(s, 1);
  if (!w || !ix)
    return;
  if (w->rank != 2) {
    err(s, "expects a 2-d weight, got %s", tstr(s, w));
    return;
  }
  ir_dim *o = dims_new(s, ix->rank + 1);
  memcpy(o, ix->dims, sizeof *o * (size_t)ix->rank);
  o[ix->rank] = w->dims[1];
  set(s, 0, tensor(s, w->dtype, ix->rank + 1, o));
}

/* index(x, indices): advanced indexing. None entries keep their dim; the
 * index tensors broadcast together; their shape replaces the indexed dims
 * in place when those are adjacent, else it leads. */
static void r_index(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  kval *k = KI(s, 1);
  if (!k->src) {
    if (!is_unknown(s, 1))
      err(s, "the index list is not known at compile time");
    return;
  }
  int n = k->nsrc;
  if (n > x->rank) {
    err(s, "too many indices (%d) for %s", n, tstr(s, x));
    return;
  }
  int br = 0, first = -1, last = -1;
  ir_dim *bd = NULL;
  bool adjacent = true;
  for (int j = 0; j < n; j++) {
    const ir_type *t = ir_vtype(s->g, k->src[j]);
    if (t->kind == IR_T_NONE)
      continue;
    if (t->kind != IR_T_TENSOR || t->rank < 0) {
      if (t->kind != IR_T_UNKNOWN)
        err(s, "index %d is %s, expected a tensor or none", j, tstr(s, t));
      return;
    }
    if (t->dtype == NN_DT_BOOL || t->dtype == NN_DT_U8) {
      err(s, "boolean mask indexing is not supported");
      return;
    }
    if (first >= 0 && last != j - 1)
      adjacent = false;
    if (first < 0)
      first = j;
    last = j;
    int r;
    ir_dim *o;
    if (!bcast(s, br, bd, t->rank, t->dims, &r, &o)) {
      err(s, "cannot broadcast the index tensors together");
      return;
    }
    br = r;
    bd = o;
  }
  if (first < 0) {
    set(s, 0, x);
    return;
  }
  int nidx = 0;
  for (int j = first; j <= last; j++)
    if (ir_vtype(s->g, k->src[j])->kind != IR_T_NONE)
      nidx++;
  int rr = x->rank - nidx + br;
  ir_dim *o = dims_new(s, rr);
  int r = 0;
  if (!adjacent) {
    memcpy(o, bd, sizeof *o * (size_t)br);
    r = br;
  }
  for (int i = 0; i < x->rank; i++) {
    bool indexed = i < n && ir_vtype(s->g, k->src[i])->kind != IR_T_NONE;
    if (adjacent && i == first) {
      memcpy(o + r, bd, sizeof *o * (size_t)br);
      r += br;
    }
    if (!indexed)
      o[r++] = x->dims[i];
  }
  set(s, 0, tensor(s, x->dtype, rr, o));
}

/* gather(x, dim, index, sparse_grad): index's shape. */
static void r_gather(sh *s) {
  const ir_type *x = tens(s, 0), *ix = tens(s, 2);
  if (!x || !ix)
    return;
  int d;
  if (!opdim(s, 1, x->rank, 0, &d))
    return;
  if (ix->rank != x->rank && !(x->rank == 0 && ix->rank <= 1)) {
    err(s, "index %s must have the rank of %s", tstr(s, ix), tstr(s, x));
    return;
  }
  set(s, 0, tensor(s, x->dtype, ix->rank, ix->dims));
}

/* index_select(x, dim, index): dim becomes index's length. */
static void r_index_select(sh *s) {
  const ir_type *x = tens(s, 0), *ix = tens(s, 2);
  if (!x || !ix)
    return;
  int d;
  if (!opdim(s, 1, x->rank, 0, &d))
    return;
  if (ix->rank > 1) {
    err(s, "index must be 0-d or 1-d, got %s", tstr(s, ix));
    return;
  }
  if (x->rank == 0)
    set(s, 0, x);
  else
    set(s, 0, with_dim(s, x, d, numel(s, ix->rank, ix->dims)));
}

/* one_hot(x, num_classes): i64, a new last dim of num_classes. */
static void r_one_hot(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  int64_t n;
  if (!need_int(s, 1, "num_classes", &n))
    return;
  if (n < 0) {
    err(s, "one_hot needs num_classes");
    return;
  }
  ir_dim *o = dims_new(s, x->rank + 1);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  o[x->rank] = D(s, n);
  set(s, 0, tensor(s, NN_DT_I64, x->rank + 1, o));
}

/* ---- rules: creation -------------------------------------------------- */

/* The dtype of a Python number's type: int -> i64, float -> f32, bool. */
static nn_dtype number_dtype(const ir_type *t) {
  switch (t->kind) {
  case IR_T_INT:
    return NN_DT_I64;
  case IR_T_FLOAT:
    return NN_DT_F32;
  case IR_T_BOOL:
    return NN_DT_BOOL;
  case IR_T_TENSOR:
    return t->dtype;
  default:
    return NN_DT_UNKNOWN;
  }
}

/* zeros/ones(size, dtype?), full(size, value, dtype?). */
static void r_create(sh *s) {
  bool full = N(s)->op == NN_OP_FULL;
  int64_t *v;
  ir_dim *y;
  int n;
  if (!opshape(s, 0, "size", false, &v, &y, &n))
    return;
  ir_dim *o = dims_new(s, n);
  for (int j = 0; j < n; j++) {
    if (v[j] < 0 && v[j] != SH_SYM) {
      err(s, "negative size %lld", (long long)v[j]);
      return;
    }
    o[j] = v[j] == SH_SYM ? y[j] : D(s, v[j]);
  }
  nn_dtype dt = full ? number_dtype(TY(s, 1)) : NN_DT_F32;
  if (!opdtype(s, full ? 2 : 1, dt, &dt))
    return;
  set(s, 0, tensor(s, dt, n, o));
}

/* zeros_like/ones_like(x, dtype?), full_like(x, value, dtype?). */
static void r_like(sh *s) {
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  nn_dtype dt;
  if (!opdtype(s, N(s)->op == NN_OP_FULL_LIKE ? 2 : 1, x->dtype, &dt))
    return;
  set(s, 0, tensor(s, dt, x->rank, x->dims));
}

/* arange(start, end, step, dtype?): ceil((end - start) / step) elements. */
static void r_arange(sh *s) {
  double v[3];
  bool isint[3], all_int = true;
  for (int i = 0; i < 3; i++) {
    if (!knum(s, i, &v[i], &isint[i])) {
      const ir_type *t = TY(s, i);
      kval *k = KI(s, i);
      /* arange(0, n, 1) with a symbolic int n has n elements */
      if (i == 1 && k->sym && !k->tensor) {
        isint[i] = true;
        v[i] = 0;
        continue;
      }
      if (t->kind != IR_T_UNKNOWN)
        err(s, "the bounds of arange must be compile-time constants");
      return;
    }
    all_int = all_int && isint[i];
  }
  ir_dim len;
  kval *ke = KI(s, 1);
  if (!ke->known) {
    if (!(isint[0] && v[0] == 0 && isint[2] && v[2] == 1)) {
      err(s, "the bounds of arange must be compile-time constants");
      return;
    }
    len = ke->sym;
  } else {
    if (v[2] == 0 || !isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2])) {
      err(s, "invalid range");
      return;
    }
    double n = ceil((v[1] - v[0]) / v[2]);
    if (n < 0 || n > 9e15) {
      err(s, "invalid range: %g elements", n);
      return;
    }
    len = D(s, (int64_t)n);
  }
  nn_dtype dt;
  if (!opdtype(s, 3, all_int ? NN_DT_I64 : NN_DT_F32, &dt))
    return;
  set(s, 0, tensor(s, dt, 1, &len));
}

/* tensor(data, dtype?): a 0-dim tensor for a number, [n] (or [n, m]) for
 * a (nested) list. */
static void r_tensor_from(sh *s) {
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
      err(s, "the data argument is not a compile-time constant");
      return;
    }
    dd[rank++] = D(s, n);
    elem = t->elems[0];
    if (elem->kind == IR_T_LIST) {
      kval *k0 = k->src && n > 0 ? K(s, k->src[0]) : NULL;
      int m = !k0 ? -1 : k0->known ? k0->c.n : k0->src ? k0->nsrc : -1;
      if (m < 0) {
        err(s, "the data argument is not a compile-time constant");
        return;
      }
      dd[rank++] = D(s, m);
      elem = elem->elems[0];
    }
  }
  nn_dtype dt = number_dtype(elem);
  if (elem->kind == IR_T_UNKNOWN && !is_unknown(s, 0))
    dt = NN_DT_F32;
  if (!opdtype(s, 1, dt, &dt))
    return;
  set(s, 0, tensor(s, dt, rank, dd));
  if (rank == 0 && k->known && is_num(&k->c)) {
    ir_const c = k->c;
    if (to_category(&c, dt)) {
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
static void r_constant(sh *s) {
  ir_node *n = N(s);
  if (ir_vtype(s->g, n->out[0])->kind == IR_T_UNKNOWN)
    set(s, 0, ir_const_type(s->g, &n->c));
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
  case NN_DT_I64: { int64_t v; memcpy(&v, p, 8); c.kind = IR_C_INT; c.i = v; break; }
  case NN_DT_I32: { int32_t v; memcpy(&v, p, 4); c.kind = IR_C_INT; c.i = v; break; }
  case NN_DT_F64: { double v; memcpy(&v, p, 8); c.kind = IR_C_FLOAT; c.f = v; break; }
  case NN_DT_F32: { float v; memcpy(&v, p, 4); c.kind = IR_C_FLOAT; c.f = v; break; }
  case NN_DT_BOOL: c.kind = IR_C_BOOL; c.i = p[0] != 0; break;
  default: return;
  }
  k->known = true;
  k->tensor = true;
  k->c = c;
  k->wrapped = !strncmp(w->name, "CONSTANTS.", 10);
}

static void r_weight(sh *s) {
  ir_node *n = N(s);
  if (n->weight < 0 || n->weight >= s->g->weights.len)
    return;
  const ir_weight *w = &s->g->weights.data[n->weight];
  weight_value(w, K(s, n->out[0]));
  if (ir_vtype(s->g, n->out[0])->kind != IR_T_UNKNOWN)
    return;
  if (w->rank < 0 || (w->rank > 0 && !w->sizes))
    return;
  ir_dim *o = dims_new(s, w->rank);
  for (int i = 0; i < w->rank; i++)
    o[i] = D(s, w->sizes[i]);
  set(s, 0, tensor(s, w->dtype, w->rank, o));
}

/* size(x, dim), sizes(x), dim(x), numel(x). */
static void r_size(sh *s) {
  ir_op op = N(s)->op;
  set(s, 0,
      op == NN_OP_SIZES ? ir_type_list(s->g, scalar(s, IR_T_INT))
                        : scalar(s, IR_T_INT));
  const ir_type *x = tens(s, 0);
  if (!x)
    return;
  switch (op) {
  case NN_OP_SIZE: {
    int d;
    if (x->rank == 0) {
      err(s, "a 0-dim tensor has no dims");
      return;
    }
    if (opdim(s, 1, x->rank, 0, &d))
      dim_int(s, 0, x->dims[d]);
    break;
  }
  case NN_OP_DIM:
    known_int(s, 0, x->rank);
    break;
  case NN_OP_NUMEL:
    dim_int(s, 0, numel(s, x->rank, x->dims));
    break;
  default: { /* SIZES */
    kval *k = KO(s, 0);
    int64_t *v = nn_alloc(s->a, sizeof *v * (size_t)(x->rank + 1));
    bool all = true;
    for (int i = 0; i < x->rank; i++)
      all = all && dc(s, x->dims[i], &v[i]);
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
static void r_num_to_tensor(sh *s) {
  const ir_type *t = TY(s, 0);
  nn_dtype dt = t->kind == IR_T_FLOAT                         ? NN_DT_F64
                : t->kind == IR_T_INT || t->kind == IR_T_BOOL ? NN_DT_I64
                                                              : NN_DT_UNKNOWN;
  if (dt == NN_DT_UNKNOWN) {
    if (!is_unknown(s, 0))
      err(s, "expects a number, got %s", tstr(s, t));
    return;
  }
  set(s, 0, tensor(s, dt, 0, NULL));
  kval k = *KI(s, 0);
  if (k.known && to_category(&k.c, dt)) {
    k.tensor = true;
    *KO(s, 0) = k;
  } else if (k.sym) {
    KO(s, 0)->sym = k.sym;
    KO(s, 0)->tensor = true;
  }
}

/* int(t), float(t), bool(t), scalar_implicit(t): tensors must be 0-dim. */
static void r_to_scalar(sh *s) {
  ir_op op = N(s)->op;
  const ir_type *t = TY(s, 0);
  ir_tkind k = op == NN_OP_TO_INT     ? IR_T_INT
               : op == NN_OP_TO_FLOAT ? IR_T_FLOAT
                                      : IR_T_BOOL;
  if (op == NN_OP_SCALAR_IMPLICIT) {
    if (t->kind != IR_T_TENSOR) {
      if (!is_unknown(s, 0))
        tens(s, 0);
      return;
    }
    k = t->dtype == NN_DT_BOOL        ? IR_T_BOOL
        : nn_dtype_is_float(t->dtype) ? IR_T_FLOAT
                                      : IR_T_INT;
  }
  set(s, 0, scalar(s, k));
  if (t->kind == IR_T_TENSOR && t->rank > 0) {
    int64_t c = 0;
    bool one = true;
    for (int i = 0; i < t->rank; i++)
      one = one && dc(s, t->dims[i], &c) && c == 1;
    if (!one) {
      err(s, "only a one-element tensor converts to a number, got %s",
          tstr(s, t));
      return;
    }
  }
  kval in = *KI(s, 0);
  kval *o = KO(s, 0);
  if (in.known && is_num(&in.c)) {
    ir_const c = in.c;
    nn_dtype cat = k == IR_T_INT     ? NN_DT_I64
                   : k == IR_T_FLOAT ? NN_DT_F32
                                     : NN_DT_BOOL;
    if (to_category(&c, cat)) {
      o->known = true;
      o->c = c;
    }
  } else if (in.sym && k == IR_T_INT) {
    o->sym = in.sym;
  }
}

/* scalar_add ... scalar_ge, scalar_neg: int op int is int (true division
 * is float), anything with a float is float, comparisons are bool. */
static void r_scalar(sh *s) {
  ir_op op = N(s)->op;
  int nin = N(s)->nin;
  bool f = false;
  for (int i = 0; i < nin; i++) {
    ir_tkind k = TY(s, i)->kind;
    if (k == IR_T_UNKNOWN)
      return;
    if (k != IR_T_INT && k != IR_T_FLOAT && k != IR_T_BOOL) {
      err(s, "operand %d is %s, expected a number", i + 1, tstr(s, TY(s, i)));
      return;
    }
    f = f || k == IR_T_FLOAT;
  }
  if (op == NN_OP_SCALAR_NEG) {
    set(s, 0, scalar(s, f ? IR_T_FLOAT : IR_T_INT));
    kval zero = {.known = true, .c = {.kind = IR_C_INT}};
    fold_into(s, 0, AR_SUB, &zero, KI(s, 0), false, NN_DT_UNKNOWN, !f);
    return;
  }
  arith ar = arith_of(op);
  ir_tkind k = is_bool_result(ar)    ? IR_T_BOOL
               : (f || ar == AR_DIV) ? IR_T_FLOAT
                                     : IR_T_INT;
  set(s, 0, scalar(s, k));
  fold_into(s, 0, ar, KI(s, 0), KI(s, 1), false, NN_DT_UNKNOWN, k == IR_T_INT);
}

/* list_construct(a, b, ...): list<type of the first non-none operand>;
 * known numbers make a known list, and the operands are remembered. */
static void r_list_construct(sh *s) {
  ir_node *n = N(s);
  int cnt = n->nin;
  const ir_type *elem = NULL;
  const ir_type **p = nn_alloc(s->a, sizeof *p * (size_t)(cnt + 1));
  for (int i = 0; i < cnt; i++) {
    p[i] = TY(s, i);
    if (!elem && p[i]->kind != IR_T_NONE)
      elem = p[i];
  }
  if (!elem)
    elem = scalar(s, cnt ? IR_T_NONE : IR_T_INT);
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
    for (int i = 0; i < cnt; i++)
      f[i] = KI(s, i)->c.f;
    c.floats = f;
  } else {
    int64_t *v = nn_alloc(s->a, sizeof *v * (size_t)(cnt + 1));
    for (int i = 0; i < cnt; i++)
      v[i] = KI(s, i)->c.i;
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
  if (k->src)
    return k->nsrc;
  if (k->pieces)
    return k->npieces;
  if (k->known && k->c.kind >= IR_C_INTLIST)
    return k->c.n;
  if (k->sdims)
    return k->nsdims;
  if (t->kind == IR_T_TUPLE)
    return t->nelems;
  return -1;
}

/* list_unpack, tuple_unpack: one result per element. */
static void r_unpack(sh *s) {
  const ir_type *t = TY(s, 0);
  bool tuple = N(s)->op == NN_OP_TUPLE_UNPACK;
  if (t->kind == IR_T_UNKNOWN)
    return;
  if (t->kind != (tuple ? IR_T_TUPLE : IR_T_LIST)) {
    err(s, "expects a %s, got %s", tuple ? "tuple" : "list", tstr(s, t));
    return;
  }
  kval k = *KI(s, 0);
  int n = count_of(&k, t), nout = N(s)->nout;
  if (n >= 0 && n != nout) {
    err(s, "the %s has %d elements, unpacked into %d", tuple ? "tuple" : "list",
        n, nout);
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
static void r_get(sh *s) {
  const ir_type *t = TY(s, 0);
  bool tuple = N(s)->op == NN_OP_TUPLE_GET;
  if (t->kind == IR_T_UNKNOWN)
    return;
  if (t->kind != (tuple ? IR_T_TUPLE : IR_T_LIST)) {
    err(s, "expects a %s, got %s", tuple ? "tuple" : "list", tstr(s, t));
    return;
  }
  kval k = *KI(s, 0);
  int n = count_of(&k, t);
  int64_t j;
  if (tuple)
    j = N(s)->index;
  else if (!kint(KI(s, 1), &j)) {
    set(s, 0, k.pieces && k.npieces ? k.pieces[0] : t->elems[0]);
    return;
  }
  if (n < 0) {
    set(s, 0, t->elems[0]);
    return;
  }
  if (j < -n || j >= n) {
    err(s, "index %lld is out of range for %d elements", (long long)j, n);
    return;
  }
  element(s, &k, t, j < 0 ? j + n : j, 0);
}

/* tuple_construct(a, b, ...): a tuple of the operands' types. */
static void r_tuple_construct(sh *s) {
  ir_node *n = N(s);
  const ir_type **e = nn_alloc(s->a, sizeof *e * (size_t)(n->nin + 1));
  for (int i = 0; i < n->nin; i++)
    e[i] = TY(s, i);
  set(s, 0, ir_type_tuple(s->g, n->nin, e));
  KO(s, 0)->src = N(s)->in;
  KO(s, 0)->nsrc = N(s)->nin;
}

/* ---- the rule table --------------------------------------------------- */

typedef void (*rule_fn)(sh *s);

static const rule_fn rules[NN_OP_COUNT] = {
    /* meta */
    [NN_OP_CONSTANT] = r_constant,
    [NN_OP_WEIGHT] = r_weight,
    [NN_OP_SIZE] = r_size,
    [NN_OP_SIZES] = r_size,
    [NN_OP_DIM] = r_size,
    [NN_OP_NUMEL] = r_size,
    [NN_OP_NUM_TO_TENSOR] = r_num_to_tensor,
    [NN_OP_TO_INT] = r_to_scalar,
    [NN_OP_TO_FLOAT] = r_to_scalar,
    [NN_OP_TO_BOOL] = r_to_scalar,
    [NN_OP_SCALAR_IMPLICIT] = r_to_scalar,
    [NN_OP_SCALAR_ADD] = r_scalar,
    [NN_OP_SCALAR_SUB] = r_scalar,
    [NN_OP_SCALAR_MUL] = r_scalar,
    [NN_OP_SCALAR_DIV] = r_scalar,
    [NN_OP_SCALAR_FLOORDIV] = r_scalar,
    [NN_OP_SCALAR_MOD] = r_scalar,
    [NN_OP_SCALAR_NEG] = r_scalar,
    [NN_OP_SCALAR_EQ] = r_scalar,
    [NN_OP_SCALAR_NE] = r_scalar,
    [NN_OP_SCALAR_LT] = r_scalar,
    [NN_OP_SCALAR_LE] = r_scalar,
    [NN_OP_SCALAR_GT] = r_scalar,
    [NN_OP_SCALAR_GE] = r_scalar,
    [NN_OP_LIST_CONSTRUCT] = r_list_construct,
    [NN_OP_LIST_UNPACK] = r_unpack,
    [NN_OP_LIST_GET] = r_get,
    [NN_OP_TUPLE_CONSTRUCT] = r_tuple_construct,
    [NN_OP_TUPLE_UNPACK] = r_unpack,
    [NN_OP_TUPLE_GET] = r_get,
    /* identities and unary elementwise */
    [NN_OP_DROPOUT] = r_unary,
    [NN_OP_CONTIGUOUS] = r_unary,
    [NN_OP_DETACH] = r_unary,
    [NN_OP_CLONE] = r_unary,
    [NN_OP_RELU] = r_unary,
    [NN_OP_RELU6] = r_unary,
    [NN_OP_LEAKY_RELU] = r_unary,
    [NN_OP_ELU] = r_unary,
    [NN_OP_THRESHOLD] = r_unary,
    [NN_OP_HARDTANH] = r_unary,
    [NN_OP_SIGMOID] = r_unary,
    [NN_OP_TANH] = r_unary,
    [NN_OP_GELU] = r_unary,
    [NN_OP_SILU] = r_unary,
    [NN_OP_MISH] = r_unary,
    [NN_OP_HARDSWISH] = r_unary,
    [NN_OP_HARDSIGMOID] = r_unary,
    [NN_OP_SOFTPLUS] = r_unary,
    [NN_OP_NEG] = r_unary,
    [NN_OP_EXP] = r_unary,
    [NN_OP_LOG] = r_unary,
    [NN_OP_LOG1P] = r_unary,
    [NN_OP_SQRT] = r_unary,
    [NN_OP_RSQRT] = r_unary,
    [NN_OP_ABS] = r_unary,
    [NN_OP_ERF] = r_unary,
    [NN_OP_RECIPROCAL] = r_unary,
    [NN_OP_FLOOR] = r_unary,
    [NN_OP_CEIL] = r_unary,
    [NN_OP_ROUND] = r_unary,
    [NN_OP_SIN] = r_unary,
    [NN_OP_COS] = r_unary,
    [NN_OP_LOGICAL_NOT] = r_unary,
    [NN_OP_TRIL] = r_unary,
    [NN_OP_TRIU] = r_unary,
    [NN_OP_FLIP] = r_unary,
    [NN_OP_ROLL] = r_unary,
    [NN_OP_SCATTER] = r_unary,
    [NN_OP_CLAMP] = r_clamp,
    [NN_OP_TO] = r_to,
    [NN_OP_TYPE_AS] = r_to,
    /* gemm-like */
    [NN_OP_CONVOLUTION] = r_conv,
    [NN_OP_LINEAR] = r_linear,
    [NN_OP_ADDMM] = r_matmul,
    [NN_OP_MM] = r_matmul,
    [NN_OP_BMM] = r_matmul,
    [NN_OP_MATMUL] = r_matmul,
    [NN_OP_BADDBMM] = r_matmul,
    /* normalization */
    [NN_OP_BATCH_NORM] = r_norm,
    [NN_OP_LAYER_NORM] = r_norm,
    [NN_OP_GROUP_NORM] = r_norm,
    /* broadcasting binary */
    [NN_OP_ADD] = r_binary,
    [NN_OP_SUB] = r_binary,
    [NN_OP_RSUB] = r_binary,
    [NN_OP_MUL] = r_binary,
    [NN_OP_DIV] = r_binary,
    [NN_OP_FLOOR_DIVIDE] = r_binary,
    [NN_OP_REMAINDER] = r_binary,
    [NN_OP_POW] = r_binary,
    [NN_OP_MAXIMUM] = r_binary,
    [NN_OP_MINIMUM] = r_binary,
    [NN_OP_EQ] = r_binary,
    [NN_OP_NE] = r_binary,
    [NN_OP_LT] = r_binary,
    [NN_OP_LE] = r_binary,
    [NN_OP_GT] = r_binary,
    [NN_OP_GE] = r_binary,
    [NN_OP_LOGICAL_AND] = r_binary,
    [NN_OP_LOGICAL_OR] = r_binary,
    [NN_OP_WHERE] = r_where,
    [NN_OP_MASKED_FILL] = r_masked_fill,
    /* reductions */
    [NN_OP_SUM] = r_reduce,
    [NN_OP_MEAN] = r_reduce,
    [NN_OP_AMAX] = r_reduce,
    [NN_OP_AMIN] = r_reduce,
    [NN_OP_NORM] = r_reduce,
    [NN_OP_MAX_ALL] = r_reduce_all,
    [NN_OP_MIN_ALL] = r_reduce_all,
    [NN_OP_MAX_DIM] = r_reduce_dim,
    [NN_OP_MIN_DIM] = r_reduce_dim,
    [NN_OP_ARGMAX] = r_reduce_dim,
    [NN_OP_ARGMIN] = r_reduce_dim,
    [NN_OP_SOFTMAX] = r_softmax,
    [NN_OP_LOG_SOFTMAX] = r_softmax,
    [NN_OP_CUMSUM] = r_softmax,
    /* pooling */
    [NN_OP_MAX_POOL2D] = r_pool,
    [NN_OP_MAX_POOL2D_INDICES] = r_pool,
    [NN_OP_AVG_POOL2D] = r_pool,
    [NN_OP_MAX_POOL1D] = r_pool,
    [NN_OP_AVG_POOL1D] = r_pool,
    [NN_OP_ADAPTIVE_AVG_POOL2D] = r_adaptive,
    [NN_OP_ADAPTIVE_MAX_POOL2D] = r_adaptive,
    [NN_OP_ADAPTIVE_AVG_POOL1D] = r_adaptive,
    /* indexing */
    [NN_OP_EMBEDDING] = r_embedding,
    [NN_OP_INDEX] = r_index,
    [NN_OP_GATHER] = r_gather,
    [NN_OP_INDEX_SELECT] = r_index_select,
    [NN_OP_ONE_HOT] = r_one_hot,
    /* shape and layout */
    [NN_OP_VIEW] = r_view,
    [NN_OP_RESHAPE] = r_view,
    [NN_OP_FLATTEN] = r_flatten,
    [NN_OP_SQUEEZE] = r_squeeze,
    [NN_OP_UNSQUEEZE] = r_unsqueeze,
    [NN_OP_EXPAND] = r_expand,
    [NN_OP_EXPAND_AS] = r_expand_as,
    [NN_OP_REPEAT] = r_repeat,
    [NN_OP_PERMUTE] = r_permute,
    [NN_OP_TRANSPOSE] = r_transpose,
    [NN_OP_T] = r_transpose,
    [NN_OP_SLICE] = r_slice,
    [NN_OP_SELECT] = r_select,
    [NN_OP_NARROW] = r_narrow,
    [NN_OP_CHUNK] = r_split,
    [NN_OP_SPLIT] = r_split,
    [NN_OP_UNBIND] = r_split,
    [NN_OP_CAT] = r_cat,
    [NN_OP_STACK] = r_cat,
    [NN_OP_PAD] = r_pad,
    [NN_OP_PIXEL_SHUFFLE] = r_pixel_shuffle,
    [NN_OP_UPSAMPLE_NEAREST2D] = r_upsample,
    /* creation */
    [NN_OP_ZEROS] = r_create,
    [NN_OP_ONES] = r_create,
    [NN_OP_FULL] = r_create,
    [NN_OP_ZEROS_LIKE] = r_like,
    [NN_OP_ONES_LIKE] = r_like,
    [NN_OP_FULL_LIKE] = r_like,
    [NN_OP_ARANGE] = r_arange,
    [NN_OP_TENSOR_FROM] = r_tensor_from,
};

/* ---- folding meta nodes into constants -------------------------------- */

static bool foldable(const kval *k) {
  return k->known && !k->tensor && k->c.kind != IR_C_STR &&
         k->c.kind != IR_C_DEVICE;
}

/* A meta node whose scalar result is known becomes a CONSTANT node in
 * place. A multi-result node (list_unpack, tuple_unpack) stays; each of
 * its known scalar results that is still used gets a new constant inserted
 * before it, which takes over the uses (DCE removes the node later). */
static void fold_node(sh *s) {
  ir_node *n = N(s);
  if (ir_ops[n->op].fusion != IR_FUSE_META || n->op == NN_OP_CONSTANT ||
      n->op == NN_OP_WEIGHT)
    return;
  if (n->nout == 1) {
    if (!foldable(KO(s, 0)))
      return;
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
    if (!foldable(K(s, old)) || ir_use_count(s->g, old) == 0)
      continue;
    nn_loc loc = cur->loc;
    const char *scope = cur->scope;
    ir_const c = K(s, old)->c;
    ir_nodeid id =
        ir_insert_before(s->g, s->nid, NN_OP_CONSTANT, 0, NULL, 1, loc);
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
    o[i] = sp->dims[i].name ? ir_dim_sym(s->g, sp->dims[i].name)
                            : D(s, sp->dims[i].value);
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
      if (specs[j].name && strcmp(specs[j].name, name) == 0)
        sp = &specs[j];
    if (!sp) {
      nn_error(s->d, none,
               "no shape for input '%s': pass --input %s:DTYPE[DIMS]",
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
    if (found)
      continue;
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

/* ---- the pass --------------------------------------------------------- */

int pass_shapes(ir_graph *g, const pass_input_spec *specs, int nspecs,
                nn_diag *d) {
  sh s = {.g = g, .d = d, .a = g->arena};
  s.nkv = g->values.len + 16;
  s.kv = nn_alloc(g->arena, sizeof *s.kv * (size_t)s.nkv);
  int errors = bind_inputs(&s, specs, nspecs);
  /* walk a copy: folding may insert constants into the order */
  int n = g->order.len;
  ir_nodeid *order = nn_alloc(g->arena, sizeof *order * (size_t)(n + 1));
  memcpy(order, g->order.data, sizeof *order * (size_t)n);
  const ir_type *unknown = ir_type_scalar(g, IR_T_UNKNOWN);
  for (int i = 0; i < n; i++) {
    if (order[i] < 0 || order[i] >= g->nodes.len)
      continue;
    s.nid = order[i];
    ir_node *node = N(&s);
    if (node->flags & IR_NF_DEAD)
      continue;
    bool bad = false;
    for (int j = 0; j < node->nin; j++)
      bad = bad || node->in[j] < 0 || node->in[j] >= g->values.len;
    for (int j = 0; j < node->nout; j++)
      bad = bad || node->out[j] < 0 || node->out[j] >= g->values.len;
    if (bad || (int)node->op < 0 || node->op >= NN_OP_COUNT) {
      nn_error(d, node->loc, "shapes: node %d refers to a missing value",
               (int)s.nid);
      s.errors++;
      continue;
    }
    const ir_opinfo *info = &ir_ops[node->op];
    if ((info->nin >= 0 && node->nin != info->nin) ||
        (info->nout >= 0 && node->nout != info->nout)) {
      err(&s, "expects %d operands and %d results, has %d and %d", info->nin,
          info->nout, node->nin, node->nout);
      continue;
    }
    if (node->op != NN_OP_CONSTANT && node->op != NN_OP_WEIGHT)
      for (int r = 0; r < node->nout; r++)
        ir_set_type(g, node->out[r], unknown);
    for (int r = 0; r < node->nout; r++)
      memset(K(&s, node->out[r]), 0, sizeof(kval));
    rule_fn fn = rules[node->op];
    NN_ASSERT(fn); /* every op of ops.def has a rule */
    fn(&s);
    fold_node(&s);
  }
  return errors + s.errors;
}
