/* build.c — building kernels (kernel.h).
 *
 * Builders append expressions and statements to a kernel's arrays and
 * return their ids. Expressions are immutable once built; k_bin folds
 * arithmetic on I64 constants (and x+0, x*1, x*0, x//1, x%1) so index
 * math written naively stays small. Statements go into the innermost open
 * block: the root, or the body (or else branch) of the last FOR/IF begun
 * and not yet ended; kernel.open is that stack.
 */
#include "kernel.h"

#include <stdlib.h>
#include <string.h>

kernel *k_new(nn_arena *a, const char *name) {
  kernel *k = nn_alloc(a, sizeof *k);
  k->arena = a;
  k->name = nn_strdup(a, name ? name : "kernel");
  k->dims_slot = -1;
  k->status_slot = -1;
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

int64_t k_wrap_int(nn_dtype dt, int64_t v) {
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
  kx e = {.op = KX_CONST, .dtype = dt, .a = -1, .b = -1, .c = -1, .i = k_wrap_int(dt, v)};
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

bool k_const_i64(const kernel *k, kx_id e, int64_t *v) {
  if (e < 0 || e >= k->exprs.len) return false;
  const kx *x = &k->exprs.data[e];
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
  bool ca = k_const_i64(k, a, &x), cb = k_const_i64(k, b, &y);
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

void k_check(kernel *k, kx_id ok, kx_id val, kx_id size, int32_t status, int32_t check) {
  NN_ASSERT(status >= 0 && status < k->bufs.len && k->bufs.data[status].dtype == NN_DT_I64);
  NN_ASSERT(ok >= 0 && ok < k->exprs.len && is_i64(k, val) && is_i64(k, size) && check >= 0);
  k->bufs.data[status].written = true;
  ks s = {.kind = KS_CHECK,
          .var = check,
          .lo = -1,
          .hi = -1,
          .cond = ok,
          .buf = status,
          .idx = size,
          .val = val};
  append(k, push_stmt(k, s));
}

int32_t k_let_i64(kernel *k, kx_id e) {
  int32_t v = k_var(k, NN_DT_I64);
  k_let(k, v, e);
  return v;
}

kx_id k_hoist(kernel *k, kx_id e) {
  int64_t v;
  return k_const_i64(k, e, &v) ? e : k_varref(k, k_let_i64(k, e));
}

kx_class k_op_class(kx_op op) {
  switch (op) {
  case KX_CONST:
  case KX_VAR:
  case KX_LOAD: return KXC_LEAF;
  case KX_NEG:
  case KX_ABS:
  case KX_EXP:
  case KX_LOG:
  case KX_LOG1P:
  case KX_SQRT:
  case KX_RSQRT:
  case KX_TANH:
  case KX_ERF:
  case KX_SIN:
  case KX_COS:
  case KX_FLOOR:
  case KX_CEIL:
  case KX_ROUND: return KXC_UNARY;
  case KX_NOT: return KXC_NOT;
  case KX_CAST: return KXC_CAST;
  case KX_ADD:
  case KX_SUB:
  case KX_MUL:
  case KX_DIV:
  case KX_FLOORDIV:
  case KX_MOD:
  case KX_MIN:
  case KX_MAX:
  case KX_POW: return KXC_ARITH;
  case KX_EQ:
  case KX_NE:
  case KX_LT:
  case KX_LE:
  case KX_GT:
  case KX_GE: return KXC_COMPARE;
  case KX_AND:
  case KX_OR: return KXC_LOGIC;
  case KX_SELECT: return KXC_SELECT;
  default: return KXC_INVALID;
  }
}
