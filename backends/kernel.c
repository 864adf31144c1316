/* kernel.c — building kernels (kernel.h) and printing them.
 *
 * Builders append expressions and statements to a kernel's arrays and
 * return their ids. Expressions are immutable once built; k_bin folds
 * arithmetic on I64 constants (and x+0, x*1, x*0, x//1, x%1) so index
 * math written naively stays small. Statements go into the innermost open
 * block: the root, or the body (or else branch) of the last FOR/IF begun
 * and not yet ended; kernel.open is that stack.
 *
 * The printed form (k_print), one statement per line, two spaces of
 * indentation per nesting level:
 *
 *   kernel NAME(SLOT, SLOT, ...)        SLOT = name: dtype[elems] [w]
 *                                       ("w" when the kernel writes it)
 *     for vN in [LO, HI) FLAGS:         FLAGS: parallel vector reduce
 *     let vN: DT = EXPR                 first assignment of a temporary
 *     vN = EXPR                         later assignments
 *     BUF[IDX] = EXPR                   store
 *     if COND: / else:
 *     gemm M=.. N=.. K=..: C[off; ldc] (= | +=) alpha * A[off; rs, cs] @
 *          B[off; rs, cs] [+ beta * BIAS[off; rs, cs]] [(b is weight)]
 *                                       (sizes, strides and offsets are
 *                                       expressions: numbers when static)
 *
 * Expressions: variables vN; loads BUF[IDX]; integer constants in decimal
 * (i64 bare, other dtypes as N:dtype, bools true/false); float constants
 * with %.9g (f64: %.17g) and a trailing '.' when they would read as
 * integers (f32 bare, other float dtypes with :dtype). Binary + - * / // %
 * == != < <= > >= && || are infix; an operand that is itself infix is
 * parenthesized. min max pow select and the unary functions are calls
 * (exp(x)); negation is -x, logical not !x, casts DT(x), e.g. f32(v3).
 */
#include "kernel.h"

#include <stdlib.h>
#include <string.h>

kernel *k_new(nn_arena *a, const char *name) {
  kernel *k = nn_alloc(a, sizeof *k);
  k->arena = a;
  k->name = nn_strdup(a, name ? name : "kernel");
  k->dims_slot = -1;
  return k;
}

int32_t k_buf(kernel *k, nn_dtype dt, int64_t elems, bool written, const char *name) {
  kbuf b = {.dtype = dt,
            .written = written,
            .elems = elems,
            .name = nn_strdup(k->arena, name ? name : "b")};
  NN_PUSH(k->arena, k->bufs, b);
  return k->bufs.len - 1;
}

int32_t k_var(kernel *k, nn_dtype dt) {
  NN_PUSH(k->arena, k->vars, dt);
  return k->vars.len - 1;
}

static kx_id push_expr(kernel *k, kx e) {
  NN_PUSH(k->arena, k->exprs, e);
  return k->exprs.len - 1;
}

static kx *X(const kernel *k, kx_id e) {
  NN_ASSERT(e >= 0 && e < k->exprs.len);
  return &k->exprs.data[e];
}

/* Wraps an int64 to the range of an integer dtype (two's complement), bool
 * to 0/1. */
static int64_t wrap_int(nn_dtype dt, int64_t v) {
  switch (dt) {
  case NN_DT_I32: return (int32_t)(uint32_t)(uint64_t)v;
  case NN_DT_I16: return (int16_t)(uint16_t)(uint64_t)v;
  case NN_DT_I8: return (int8_t)(uint8_t)(uint64_t)v;
  case NN_DT_U8: return (uint8_t)(uint64_t)v;
  case NN_DT_BOOL: return v != 0;
  default: return v;
  }
}

kx_id k_const_i(kernel *k, nn_dtype dt, int64_t v) {
  if (nn_dtype_is_float(dt)) return k_const_f(k, dt, (double)v);
  kx e = {.op = KX_CONST, .dtype = dt, .a = -1, .b = -1, .c = -1, .i = wrap_int(dt, v)};
  return push_expr(k, e);
}

kx_id k_const_f(kernel *k, nn_dtype dt, double v) {
  if (!nn_dtype_is_float(dt)) {
    /* same conversion as a CAST: truncation, saturating, NaN -> 0 */
    int64_t i = v != v ? 0 : v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
    if (dt == NN_DT_BOOL) i = v != 0;
    return k_const_i(k, dt, i);
  }
  if (dt == NN_DT_F32 || dt == NN_DT_F16 || dt == NN_DT_BF16) v = (double)(float)v;
  kx e = {.op = KX_CONST, .dtype = dt, .a = -1, .b = -1, .c = -1, .f = v};
  return push_expr(k, e);
}

kx_id k_i64(kernel *k, int64_t v) { return k_const_i(k, NN_DT_I64, v); }

kx_id k_varref(kernel *k, int32_t var) {
  NN_ASSERT(var >= 0 && var < k->vars.len);
  kx e = {.op = KX_VAR, .dtype = k->vars.data[var], .a = -1, .b = -1, .c = -1, .var = var};
  return push_expr(k, e);
}

kx_id k_load(kernel *k, int32_t buf, kx_id idx) {
  NN_ASSERT(buf >= 0 && buf < k->bufs.len);
  NN_ASSERT(X(k, idx)->dtype == NN_DT_I64);
  kx e = {.op = KX_LOAD, .dtype = k->bufs.data[buf].dtype, .a = idx, .b = -1, .c = -1, .buf = buf};
  return push_expr(k, e);
}

kx_id k_un(kernel *k, kx_op op, kx_id a) {
  NN_ASSERT(op >= KX_NEG && op <= KX_ROUND);
  nn_dtype dt = op == KX_NOT ? NN_DT_BOOL : X(k, a)->dtype;
  kx e = {.op = op, .dtype = dt, .a = a, .b = -1, .c = -1};
  return push_expr(k, e);
}

static bool is_i64_const(const kernel *k, kx_id e, int64_t *v) {
  const kx *x = X(k, e);
  if (x->op != KX_CONST || x->dtype != NN_DT_I64) return false;
  *v = x->i;
  return true;
}

static int64_t floordiv_i(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}

static int64_t mod_i(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

kx_id k_bin(kernel *k, kx_op op, kx_id a, kx_id b) {
  NN_ASSERT(op >= KX_ADD && op <= KX_OR);
  nn_dtype dt = X(k, a)->dtype;
  NN_ASSERT(dt == X(k, b)->dtype);
  int64_t x = 0, y = 0;
  bool ca = is_i64_const(k, a, &x), cb = is_i64_const(k, b, &y);
  if (ca && cb) {
    switch (op) {
    case KX_ADD: return k_i64(k, (int64_t)((uint64_t)x + (uint64_t)y));
    case KX_SUB: return k_i64(k, (int64_t)((uint64_t)x - (uint64_t)y));
    case KX_MUL: return k_i64(k, (int64_t)((uint64_t)x * (uint64_t)y));
    case KX_FLOORDIV:
      if (y != 0 && !(x == INT64_MIN && y == -1)) return k_i64(k, floordiv_i(x, y));
      break;
    case KX_MOD:
      if (y != 0 && y != -1) return k_i64(k, mod_i(x, y));
      break;
    case KX_MIN: return k_i64(k, x < y ? x : y);
    case KX_MAX: return k_i64(k, x > y ? x : y);
    default: break;
    }
  }
  if (dt == NN_DT_I64) {
    if (op == KX_ADD && ca && x == 0) return b;
    if ((op == KX_ADD || op == KX_SUB) && cb && y == 0) return a;
    if (op == KX_MUL && ((ca && x == 0) || (cb && y == 0))) return k_i64(k, 0);
    if (op == KX_MUL && ca && x == 1) return b;
    if ((op == KX_MUL || op == KX_FLOORDIV || op == KX_DIV) && cb && y == 1) return a;
    if (op == KX_MOD && cb && y == 1) return k_i64(k, 0);
  }
  bool cmp = op >= KX_EQ;
  kx e = {.op = op, .dtype = cmp ? NN_DT_BOOL : dt, .a = a, .b = b, .c = -1};
  return push_expr(k, e);
}

kx_id k_select(kernel *k, kx_id c, kx_id a, kx_id b) {
  NN_ASSERT(X(k, c)->dtype == NN_DT_BOOL);
  NN_ASSERT(X(k, a)->dtype == X(k, b)->dtype);
  kx e = {.op = KX_SELECT, .dtype = X(k, a)->dtype, .a = c, .b = a, .c = b};
  return push_expr(k, e);
}

kx_id k_cast(kernel *k, nn_dtype dt, kx_id a) {
  const kx *x = X(k, a);
  if (x->dtype == dt) return a;
  if (x->op == KX_CONST) /* fold: same rules as the interpreter's CAST */
    return nn_dtype_is_float(x->dtype) ? k_const_f(k, dt, x->f) : k_const_i(k, dt, x->i);
  kx e = {.op = KX_CAST, .dtype = dt, .a = a, .b = -1, .c = -1};
  return push_expr(k, e);
}

/* ---- statements ---------------------------------------------------------- */

static ks_id push_stmt(kernel *k, ks s) {
  NN_PUSH(k->arena, k->stmts, s);
  return k->stmts.len - 1;
}

/* Appends id to a block whose capacity is implicitly the next power of two
 * of its length (blocks grow by doubling). */
static void block_add(nn_arena *a, ks_id **body, int *n, ks_id id) {
  int len = *n;
  if (len == 0 || (len & (len - 1)) == 0) {
    int cap = len ? len * 2 : 4;
    if (len == 0 || len >= 4)
      *body = nn_realloc(a, *body, sizeof(ks_id) * (size_t)(len ? len : 0),
                         sizeof(ks_id) * (size_t)cap);
  }
  (*body)[(*n)++] = id;
}

static void append(kernel *k, ks_id id) {
  if (k->open.len == 0) {
    NN_PUSH(k->arena, k->root, id);
    return;
  }
  ks_id top = k->open.data[k->open.len - 1];
  if (top < 0) {
    ks *s = &k->stmts.data[-top - 1];
    block_add(k->arena, &s->els, &s->nels, id);
  } else {
    ks *s = &k->stmts.data[top];
    block_add(k->arena, &s->body, &s->nbody, id);
  }
}

int32_t k_for_begin(kernel *k, kx_id lo, kx_id hi, unsigned flags) {
  NN_ASSERT(X(k, lo)->dtype == NN_DT_I64 && X(k, hi)->dtype == NN_DT_I64);
  int32_t v = k_var(k, NN_DT_I64);
  ks s = {.kind = KS_FOR,
          .var = v,
          .lo = lo,
          .hi = hi,
          .flags = flags,
          .cond = -1,
          .idx = -1,
          .val = -1};
  ks_id id = push_stmt(k, s);
  append(k, id);
  NN_PUSH(k->arena, k->open, id);
  return v;
}

void k_for_end(kernel *k) {
  NN_ASSERT(k->open.len > 0);
  ks_id top = k->open.data[k->open.len - 1];
  NN_ASSERT(top >= 0 && k->stmts.data[top].kind == KS_FOR);
  k->open.len--;
}

void k_if_begin(kernel *k, kx_id cond) {
  NN_ASSERT(X(k, cond)->dtype == NN_DT_BOOL);
  ks s = {.kind = KS_IF, .var = -1, .lo = -1, .hi = -1, .cond = cond, .idx = -1, .val = -1};
  ks_id id = push_stmt(k, s);
  append(k, id);
  NN_PUSH(k->arena, k->open, id);
}

void k_else(kernel *k) {
  NN_ASSERT(k->open.len > 0);
  ks_id top = k->open.data[k->open.len - 1];
  NN_ASSERT(top >= 0 && k->stmts.data[top].kind == KS_IF);
  k->open.data[k->open.len - 1] = -top - 1;
}

void k_if_end(kernel *k) {
  NN_ASSERT(k->open.len > 0);
  ks_id top = k->open.data[k->open.len - 1];
  ks_id id = top < 0 ? -top - 1 : top;
  NN_ASSERT(k->stmts.data[id].kind == KS_IF);
  k->open.len--;
}

void k_let(kernel *k, int32_t var, kx_id val) {
  NN_ASSERT(var >= 0 && var < k->vars.len);
  NN_ASSERT(X(k, val)->dtype == k->vars.data[var]);
  ks s = {.kind = KS_LET, .var = var, .lo = -1, .hi = -1, .cond = -1, .idx = -1, .val = val};
  append(k, push_stmt(k, s));
}

void k_store(kernel *k, int32_t buf, kx_id idx, kx_id val) {
  NN_ASSERT(buf >= 0 && buf < k->bufs.len);
  NN_ASSERT(X(k, idx)->dtype == NN_DT_I64);
  NN_ASSERT(X(k, val)->dtype == k->bufs.data[buf].dtype);
  k->bufs.data[buf].written = true;
  ks s = {.kind = KS_STORE,
          .var = -1,
          .lo = -1,
          .hi = -1,
          .cond = -1,
          .buf = buf,
          .idx = idx,
          .val = val};
  append(k, push_stmt(k, s));
}

/* Whether e is an I64 expression of k. */
static bool is_i64(const kernel *k, kx_id e) {
  return e >= 0 && e < k->exprs.len && k->exprs.data[e].dtype == NN_DT_I64;
}

void k_gemm(kernel *k, const ks_gemm *g) {
  NN_ASSERT(g->a >= 0 && g->a < k->bufs.len && g->b >= 0 && g->b < k->bufs.len && g->c >= 0 &&
            g->c < k->bufs.len);
  NN_ASSERT(is_i64(k, g->m) && is_i64(k, g->n) && is_i64(k, g->k) && is_i64(k, g->a_rs) &&
            is_i64(k, g->a_cs) && is_i64(k, g->b_rs) && is_i64(k, g->b_cs) && is_i64(k, g->ldc) &&
            is_i64(k, g->a_off) && is_i64(k, g->b_off) && is_i64(k, g->c_off));
  NN_ASSERT(g->bias < 0 || (g->bias < k->bufs.len && is_i64(k, g->bias_off) &&
                            is_i64(k, g->bias_rs) && is_i64(k, g->bias_cs)));
  k->bufs.data[g->c].written = true;
  ks s = {.kind = KS_GEMM,
          .var = -1,
          .lo = -1,
          .hi = -1,
          .cond = -1,
          .idx = -1,
          .val = -1,
          .gemm = *g};
  append(k, push_stmt(k, s));
}

/* ---- printing ------------------------------------------------------------ */

static const char *const un_names[] = {
    [KX_NEG] = "-",       [KX_NOT] = "!",       [KX_ABS] = "abs",     [KX_EXP] = "exp",
    [KX_LOG] = "log",     [KX_LOG1P] = "log1p", [KX_SQRT] = "sqrt",   [KX_RSQRT] = "rsqrt",
    [KX_TANH] = "tanh",   [KX_ERF] = "erf",     [KX_SIN] = "sin",     [KX_COS] = "cos",
    [KX_FLOOR] = "floor", [KX_CEIL] = "ceil",   [KX_ROUND] = "round",
};

static const char *infix(kx_op op) {
  switch (op) {
  case KX_ADD: return "+";
  case KX_SUB: return "-";
  case KX_MUL: return "*";
  case KX_DIV: return "/";
  case KX_FLOORDIV: return "//";
  case KX_MOD: return "%";
  case KX_EQ: return "==";
  case KX_NE: return "!=";
  case KX_LT: return "<";
  case KX_LE: return "<=";
  case KX_GT: return ">";
  case KX_GE: return ">=";
  case KX_AND: return "&&";
  case KX_OR: return "||";
  default: return NULL;
  }
}

static void print_float(nn_buf *b, nn_dtype dt, double f) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, dt == NN_DT_F64 ? "%.17g" : "%.9g", f);
  nn_buf_printf(b, "%s%s", tmp, strpbrk(tmp, ".eEni") ? "" : ".");
}

static void print_expr(nn_buf *b, const kernel *k, kx_id id) {
  if (id < 0 || id >= k->exprs.len) {
    nn_buf_printf(b, "<bad>");
    return;
  }
  const kx *e = &k->exprs.data[id];
  switch (e->op) {
  case KX_CONST:
    if (nn_dtype_is_float(e->dtype)) {
      print_float(b, e->dtype, e->f);
      if (e->dtype != NN_DT_F32) nn_buf_printf(b, ":%s", nn_dtype_name(e->dtype));
    } else if (e->dtype == NN_DT_BOOL) {
      nn_buf_printf(b, "%s", e->i ? "true" : "false");
    } else {
      nn_buf_printf(b, "%lld", (long long)e->i);
      if (e->dtype != NN_DT_I64) nn_buf_printf(b, ":%s", nn_dtype_name(e->dtype));
    }
    return;
  case KX_VAR: nn_buf_printf(b, "v%d", e->var); return;
  case KX_LOAD:
    nn_buf_printf(b, "%s[", k->bufs.data[e->buf].name);
    print_expr(b, k, e->a);
    nn_buf_printf(b, "]");
    return;
  case KX_CAST:
    nn_buf_printf(b, "%s(", nn_dtype_name(e->dtype));
    print_expr(b, k, e->a);
    nn_buf_printf(b, ")");
    return;
  case KX_NEG:
  case KX_NOT: {
    bool paren = e->a >= 0 && e->a < k->exprs.len && infix(k->exprs.data[e->a].op) != NULL;
    nn_buf_printf(b, "%s%s", un_names[e->op], paren ? "(" : "");
    print_expr(b, k, e->a);
    nn_buf_printf(b, "%s", paren ? ")" : "");
    return;
  }
  case KX_MIN:
  case KX_MAX:
  case KX_POW:
    nn_buf_printf(b, "%s(", e->op == KX_MIN ? "min" : e->op == KX_MAX ? "max" : "pow");
    print_expr(b, k, e->a);
    nn_buf_printf(b, ", ");
    print_expr(b, k, e->b);
    nn_buf_printf(b, ")");
    return;
  case KX_SELECT:
    nn_buf_printf(b, "select(");
    print_expr(b, k, e->a);
    nn_buf_printf(b, ", ");
    print_expr(b, k, e->b);
    nn_buf_printf(b, ", ");
    print_expr(b, k, e->c);
    nn_buf_printf(b, ")");
    return;
  default: break;
  }
  const char *op = infix(e->op);
  if (op) {
    for (int side = 0; side < 2; side++) {
      kx_id o = side ? e->b : e->a;
      bool paren = o >= 0 && o < k->exprs.len && infix(k->exprs.data[o].op) != NULL;
      if (side) nn_buf_printf(b, " %s ", op);
      nn_buf_printf(b, "%s", paren ? "(" : "");
      print_expr(b, k, o);
      nn_buf_printf(b, "%s", paren ? ")" : "");
    }
    return;
  }
  if (e->op >= KX_NEG && e->op <= KX_ROUND) {
    nn_buf_printf(b, "%s(", un_names[e->op]);
    print_expr(b, k, e->a);
    nn_buf_printf(b, ")");
    return;
  }
  nn_buf_printf(b, "<op %d>", (int)e->op);
}

static void indent(nn_buf *b, int depth) {
  for (int i = 0; i < depth; i++) nn_buf_printf(b, "  ");
}

static void print_gemm_operand(nn_buf *b, const kernel *k, int32_t buf, kx_id off, kx_id rs,
                               kx_id cs) {
  nn_buf_printf(b, "%s[", k->bufs.data[buf].name);
  print_expr(b, k, off);
  nn_buf_printf(b, "; ");
  print_expr(b, k, rs);
  nn_buf_printf(b, ", ");
  print_expr(b, k, cs);
  nn_buf_printf(b, "]");
}

static void print_block(nn_buf *b, const kernel *k, const ks_id *ids, int n, int depth,
                        bool *declared);

static void print_stmt(nn_buf *b, const kernel *k, ks_id id, int depth, bool *declared) {
  const ks *s = &k->stmts.data[id];
  indent(b, depth);
  switch (s->kind) {
  case KS_FOR:
    nn_buf_printf(b, "for v%d in [", s->var);
    print_expr(b, k, s->lo);
    nn_buf_printf(b, ", ");
    print_expr(b, k, s->hi);
    nn_buf_printf(b, ")%s%s%s:\n", s->flags & KS_PARALLEL ? " parallel" : "",
                  s->flags & KS_VECTOR ? " vector" : "", s->flags & KS_REDUCE ? " reduce" : "");
    print_block(b, k, s->body, s->nbody, depth + 1, declared);
    return;
  case KS_LET:
    if (!declared[s->var]) {
      declared[s->var] = true;
      nn_buf_printf(b, "let v%d: %s = ", s->var, nn_dtype_name(k->vars.data[s->var]));
    } else {
      nn_buf_printf(b, "v%d = ", s->var);
    }
    print_expr(b, k, s->val);
    nn_buf_printf(b, "\n");
    return;
  case KS_STORE:
    nn_buf_printf(b, "%s[", k->bufs.data[s->buf].name);
    print_expr(b, k, s->idx);
    nn_buf_printf(b, "] = ");
    print_expr(b, k, s->val);
    nn_buf_printf(b, "\n");
    return;
  case KS_IF:
    nn_buf_printf(b, "if ");
    print_expr(b, k, s->cond);
    nn_buf_printf(b, ":\n");
    print_block(b, k, s->body, s->nbody, depth + 1, declared);
    if (s->nels) {
      indent(b, depth);
      nn_buf_printf(b, "else:\n");
      print_block(b, k, s->els, s->nels, depth + 1, declared);
    }
    return;
  case KS_GEMM: {
    const ks_gemm *g = &s->gemm;
    /* sizes and strides print as expressions: a constant reads as the
     * bare number, e.g. "gemm M=64 N=1000 K=512" */
    nn_buf_printf(b, "gemm M=");
    print_expr(b, k, g->m);
    nn_buf_printf(b, " N=");
    print_expr(b, k, g->n);
    nn_buf_printf(b, " K=");
    print_expr(b, k, g->k);
    nn_buf_printf(b, ": %s[", k->bufs.data[g->c].name);
    print_expr(b, k, g->c_off);
    nn_buf_printf(b, "; ");
    print_expr(b, k, g->ldc);
    nn_buf_printf(b, "] %s %.9g * ", g->accumulate ? "+=" : "=", (double)g->alpha);
    print_gemm_operand(b, k, g->a, g->a_off, g->a_rs, g->a_cs);
    nn_buf_printf(b, " @ ");
    print_gemm_operand(b, k, g->b, g->b_off, g->b_rs, g->b_cs);
    if (g->bias >= 0) {
      nn_buf_printf(b, " + %.9g * ", (double)g->beta);
      print_gemm_operand(b, k, g->bias, g->bias_off, g->bias_rs, g->bias_cs);
    }
    nn_buf_printf(b, "%s\n", g->b_is_weight ? " (b is weight)" : "");
    if (g->epilogue) {
      indent(b, depth + 1);
      nn_buf_printf(b, "epilogue v%d = C element, v%d = its index: store ", g->ep_acc, g->ep_idx);
      print_expr(b, k, g->ep);
      nn_buf_printf(b, "\n");
    }
    if (g->im2col) { /* part of the code: kernels are shared by their print */
      const ks_im2col *ic = g->im2col;
      indent(b, depth + 1);
      nn_buf_printf(b, "b is the im2col of %s[", k->bufs.data[ic->x].name);
      print_expr(b, k, ic->x_off);
      nn_buf_printf(b, "] h=");
      print_expr(b, k, ic->h);
      nn_buf_printf(b, " w=");
      print_expr(b, k, ic->w);
      nn_buf_printf(b, " wout=");
      print_expr(b, k, ic->wout);
      nn_buf_printf(b, " n0=");
      print_expr(b, k, ic->n0);
      nn_buf_printf(b, " kernel %lldx%lld stride %lldx%lld padding %lldx%lld dilation %lldx%lld\n",
                    (long long)ic->kh, (long long)ic->kw, (long long)ic->sh, (long long)ic->sw,
                    (long long)ic->ph, (long long)ic->pw, (long long)ic->dh, (long long)ic->dw);
    }
    return;
  }
  }
}

static void print_block(nn_buf *b, const kernel *k, const ks_id *ids, int n, int depth,
                        bool *declared) {
  for (int i = 0; i < n; i++) print_stmt(b, k, ids[i], depth, declared);
}

void k_print(nn_buf *b, const kernel *k) {
  nn_buf_printf(b, "kernel %s(", k->name);
  for (int i = 0; i < k->bufs.len; i++) {
    const kbuf *kb = &k->bufs.data[i];
    nn_buf_printf(b, "%s%s: %s[%lld]%s", i ? ", " : "", kb->name, nn_dtype_name(kb->dtype),
                  (long long)kb->elems, kb->written ? " w" : "");
  }
  nn_buf_printf(b, ")\n");
  bool *declared = calloc((size_t)k->vars.len + 1, 1);
  NN_ASSERT(declared);
  print_block(b, k, k->root.data, k->root.len, 1, declared);
  free(declared);
}
