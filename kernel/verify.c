/* verify.c — the checker of the kernel form (k_verify) and of programs
 * (kp_verify).
 *
 * A kernel is checked in one walk from its root:
 *  - every id in range: expressions, statements, variables, slots; an
 *    expression refers only to earlier ones (the form is a DAG built
 *    bottom-up, and rewrites only append), a statement appears in one
 *    block only, blocks nest less than MAX_DEPTH deep, no block is open;
 *  - dtypes as the backends read them: loads of the slot's dtype at an
 *    I64 index, stores of the slot's dtype into a slot marked written,
 *    I64 loop bounds over an I64 variable, LETs of the variable's dtype,
 *    arithmetic on operands of the result's dtype, comparisons and logic
 *    giving BOOL, casts and conditions of any dtype;
 *  - GEMMs: their slots, I64 sizes, strides and offsets, f32 C, operands
 *    of one float dtype, packed panels with constant K;
 *  - ranges: every I64 expression gets an interval where one is known
 *    (constants, variables of loops with constant bounds, + - * min max,
 *    floor division and modulo by positive constants, select), and an
 *    access whose index interval is known must lie inside its slot's
 *    elements (when those are known; with `ranges` only: backends check
 *    the form on every compile, ranges in debug builds). Accesses under an IF are not
 *    checked (the condition is what keeps them in range: padding and
 *    window bounds), nor are those of a slot of symbolic size. Loop and
 *    GEMM sizes that are constants must not be negative;
 *  - at most max_slots slots; a loop variable is not reassigned nor reused
 *    by a nested loop while its loop runs; expressions nest less than
 *    MAX_EXPR_DEPTH deep.
 * The first problem found is reported at the kernel's location as
 * "kernel NAME: ..." and the kernel is rejected.
 *
 * A program adds: buffers of a known dtype and a size (symbolic only for
 * activations of a dynamic program), inputs and outputs that name graph
 * inputs and outputs, weights and static workspace buffers inside their
 * blob and arena, and for every step a binding of every slot to a buffer
 * of the slot's dtype that holds at least the slot's elements, no written
 * slot bound to an input or a weight.
 */
#include "kernel.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAX_DEPTH = 200,       /* statement nesting */
  MAX_EXPR_DEPTH = 2000, /* expression nesting */
};

typedef struct range {
  bool known;
  int64_t lo, hi; /* inclusive */
} range;

typedef struct vst {
  const kernel *k;
  int max_slots;
  bool ranges; /* check index ranges too */
  nn_diag *d;
  bool failed;
  range *var;      /* a loop variable's range while inside its loop */
  bool *in_loop;   /* a variable is the variable of an enclosing loop */
  int *checked;    /* statement number each expression was checked in */
  int depth;       /* expression nesting while checking */
  range *expr;     /* memo of expression ranges (per statement: vars change) */
  int *expr_epoch; /* statement number each memo entry belongs to */
  int epoch;
  bool *seen; /* statements met so far */
} vst;

__attribute__((format(printf, 2, 3))) static void bad(vst *v, const char *fmt, ...) {
  if (v->failed) return;
  v->failed = true;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  nn_error(v->d, v->k->loc, "kernel %s: %s", v->k->name ? v->k->name : "?", msg);
}

static const range unknown = {false, 0, 0};

static range mk(int64_t lo, int64_t hi) { return (range){true, lo, hi}; }

static int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The interval of I64 expression id (unknown when it can't be bounded or
 * the arithmetic would overflow). */
static range erange(vst *v, kx_id id) {
  if (v->expr_epoch[id] == v->epoch) return v->expr[id];
  const kx *e = &v->k->exprs.data[id];
  range r = unknown, a = unknown, b = unknown;
  if (e->dtype == NN_DT_I64) {
    if (e->op != KX_CONST && e->op != KX_VAR && e->op != KX_LOAD && e->a >= 0) a = erange(v, e->a);
    if (e->b >= 0 && e->op != KX_SELECT) b = erange(v, e->b);
    int64_t x, y;
    switch (e->op) {
    case KX_CONST: r = mk(e->i, e->i); break;
    case KX_VAR: r = v->var[e->var]; break;
    case KX_ADD:
      if (a.known && b.known && !__builtin_add_overflow(a.lo, b.lo, &x) &&
          !__builtin_add_overflow(a.hi, b.hi, &y))
        r = mk(x, y);
      break;
    case KX_SUB:
      if (a.known && b.known && !__builtin_sub_overflow(a.lo, b.hi, &x) &&
          !__builtin_sub_overflow(a.hi, b.lo, &y))
        r = mk(x, y);
      break;
    case KX_MUL:
      if (a.known && b.known) {
        int64_t p[4];
        bool ok = !__builtin_mul_overflow(a.lo, b.lo, &p[0]) &&
                  !__builtin_mul_overflow(a.lo, b.hi, &p[1]) &&
                  !__builtin_mul_overflow(a.hi, b.lo, &p[2]) &&
                  !__builtin_mul_overflow(a.hi, b.hi, &p[3]);
        if (ok) {
          r = mk(p[0], p[0]);
          for (int i = 1; i < 4; i++) {
            if (p[i] < r.lo) r.lo = p[i];
            if (p[i] > r.hi) r.hi = p[i];
          }
        }
      }
      break;
    case KX_MIN:
      if (a.known && b.known)
        r = mk(a.lo < b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi);
      else if (a.known)
        r = mk(INT64_MIN, a.hi); /* at most a */
      else if (b.known)
        r = mk(INT64_MIN, b.hi);
      if (r.known && r.lo == INT64_MIN) r = unknown; /* only an upper bound */
      break;
    case KX_MAX:
      if (a.known && b.known) r = mk(a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
      break;
    case KX_DIV:
    case KX_FLOORDIV:
      if (a.known && b.known && b.lo == b.hi && b.lo > 0)
        r = e->op == KX_DIV ? mk(a.lo / b.lo, a.hi / b.lo)
                            : mk(floordiv(a.lo, b.lo), floordiv(a.hi, b.lo));
      break;
    case KX_MOD:
      if (b.known && b.lo == b.hi && b.lo > 0) {
        r = mk(0, b.lo - 1);
        if (a.known && a.lo >= 0 && a.hi < b.lo) r = a;
      }
      break;
    case KX_SELECT:
      a = erange(v, e->b);
      b = erange(v, e->c);
      if (a.known && b.known) r = mk(a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
      break;
    case KX_CAST: r = a; break; /* from I64 (other dtypes: the operand is unknown) */
    default: break;
    }
    if (e->op == KX_CAST && v->k->exprs.data[e->a].dtype != NN_DT_I64) r = unknown;
  }
  v->expr[id] = r;
  v->expr_epoch[id] = v->epoch;
  return r;
}

/* Whether expression `opnd`, operand `which` of expression id (or, with
 * id < 0, of statement -id-1), exists, comes before id, and has dtype t
 * (NN_DT_UNKNOWN: any dtype). */
static bool operand(vst *v, int id, char which, kx_id opnd, nn_dtype t) {
  const char *what = id >= 0 ? "expression" : "statement";
  int n = id >= 0 ? id : -id - 1;
  if (opnd < 0 || opnd >= v->k->exprs.len) {
    bad(v, "%s %d: operand %c is missing", what, n, which);
    return false;
  }
  if (id >= 0 && opnd >= id) {
    bad(v, "expression %d: operand %c (expression %d) is not an earlier expression", n, which,
        opnd);
    return false;
  }
  nn_dtype have = v->k->exprs.data[opnd].dtype;
  if (t != NN_DT_UNKNOWN && have != t) {
    bad(v, "%s %d: operand %c is %s, expected %s", what, n, which, nn_dtype_name(have),
        nn_dtype_name(t));
    return false;
  }
  return true;
}

/* Checks an access of slot `buf` at index expression idx (unchecked range
 * under an IF). */
static void access(vst *v, kx_id id, int32_t buf, kx_id idx, bool guarded, const char *what) {
  const kernel *k = v->k;
  if (buf < 0 || buf >= k->bufs.len) {
    bad(v, "%s %d: no slot %d", what, id, buf);
    return;
  }
  int64_t n = k->bufs.data[buf].elems;
  if (!v->ranges || guarded || n < 0) return;
  range r = erange(v, idx);
  if (r.known && (r.lo < 0 || r.hi >= n))
    bad(v,
        "%s %d: index in [%" PRId64 ", %" PRId64 "] is outside slot %d (%s, %" PRId64 " elements)",
        what, id, r.lo, r.hi, buf, k->bufs.data[buf].name ? k->bufs.data[buf].name : "?", n);
}

/* Checks expression id and its operands, once per statement. */
static void expr(vst *v, kx_id id, bool guarded);

static void expr_body(vst *v, kx_id id, bool guarded) {
  const kernel *k = v->k;
  const kx *e = &k->exprs.data[id];
  nn_dtype t = e->dtype;
  if (nn_dtype_size(t) == 0) {
    bad(v, "expression %d has no dtype", id);
    return;
  }
  switch (k_op_class(e->op)) {
  case KXC_LEAF:
    if (e->op == KX_VAR) {
      if (e->var < 0 || e->var >= k->vars.len)
        bad(v, "expression %d: no variable %d", id, e->var);
      else if (k->vars.data[e->var] != t)
        bad(v, "expression %d: variable v%d is %s, not %s", id, e->var,
            nn_dtype_name(k->vars.data[e->var]), nn_dtype_name(t));
    } else if (e->op == KX_LOAD && operand(v, id, 'a', e->a, NN_DT_I64)) {
      expr(v, e->a, guarded);
      if (e->buf >= 0 && e->buf < k->bufs.len && k->bufs.data[e->buf].dtype != t)
        bad(v, "expression %d: loads %s from a %s slot", id, nn_dtype_name(t),
            nn_dtype_name(k->bufs.data[e->buf].dtype));
      access(v, id, e->buf, e->a, guarded, "load");
    }
    return;
  case KXC_NOT:
  case KXC_CAST:
    if (e->op == KX_NOT && t != NN_DT_BOOL) bad(v, "expression %d: not must be bool", id);
    if (operand(v, id, 'a', e->a, NN_DT_UNKNOWN)) expr(v, e->a, guarded);
    return;
  case KXC_UNARY:
    if (operand(v, id, 'a', e->a, t)) expr(v, e->a, guarded);
    return;
  case KXC_ARITH:
    if (operand(v, id, 'a', e->a, t) && operand(v, id, 'b', e->b, t)) {
      expr(v, e->a, guarded);
      expr(v, e->b, guarded);
    }
    return;
  case KXC_COMPARE:
  case KXC_LOGIC: {
    if (t != NN_DT_BOOL) bad(v, "expression %d: a comparison or logic op must be bool", id);
    bool cmp = k_op_class(e->op) == KXC_COMPARE;
    if (operand(v, id, 'a', e->a, NN_DT_UNKNOWN) &&
        operand(v, id, 'b', e->b, cmp ? k->exprs.data[e->a].dtype : NN_DT_UNKNOWN)) {
      expr(v, e->a, guarded);
      expr(v, e->b, guarded);
    }
    return;
  }
  case KXC_SELECT:
    if (operand(v, id, 'a', e->a, NN_DT_UNKNOWN) && operand(v, id, 'b', e->b, t) &&
        operand(v, id, 'c', e->c, t)) {
      expr(v, e->a, guarded);
      /* both arms must be safe: a translation may evaluate both */
      expr(v, e->b, guarded);
      expr(v, e->c, guarded);
    }
    return;
  case KXC_INVALID: break;
  }
  bad(v, "expression %d: unknown operation %d", id, (int)e->op);
}

static void expr(vst *v, kx_id id, bool guarded) {
  if (v->failed) return;
  if (id < 0 || id >= v->k->exprs.len) {
    bad(v, "reference to missing expression %d", id);
    return;
  }
  if (v->checked[id] == v->epoch) return; /* a DAG: once per statement */
  if (++v->depth > MAX_EXPR_DEPTH) {
    bad(v, "expression %d nests too deeply", id);
    return;
  }
  expr_body(v, id, guarded);
  v->depth--;
  v->checked[id] = v->epoch;
}

/* An I64 size, offset or stride expression of a GEMM. */
static bool gemm_i64(vst *v, ks_id s, kx_id e, const char *what) {
  if (e < 0 || e >= v->k->exprs.len || v->k->exprs.data[e].dtype != NN_DT_I64) {
    bad(v, "statement %d: GEMM %s is not an I64 expression", s, what);
    return false;
  }
  expr(v, e, true);
  return true;
}

static void gemm(vst *v, ks_id s, const ks_gemm *g) {
  const kernel *k = v->k;
  int32_t slots[4] = {g->a, g->b, g->c, g->bias};
  for (int i = 0; i < 4; i++)
    if ((i < 3 || g->bias >= 0) && (slots[i] < 0 || slots[i] >= k->bufs.len)) {
      bad(v, "statement %d: GEMM operand %c names no slot", s, "abcz"[i]);
      return;
    }
  kx_id sizes[] = {g->m, g->n, g->k, g->a_off, g->b_off, g->c_off, g->ldc};
  static const char *const names[] = {"M", "N", "K", "a_off", "b_off", "c_off", "ldc"};
  for (int i = 0; i < 7; i++)
    if (!gemm_i64(v, s, sizes[i], names[i])) return;
  if (g->a_panel <= 0 && (!gemm_i64(v, s, g->a_rs, "a_rs") || !gemm_i64(v, s, g->a_cs, "a_cs")))
    return;
  if (g->b_panel <= 0 && (!gemm_i64(v, s, g->b_rs, "b_rs") || !gemm_i64(v, s, g->b_cs, "b_cs")))
    return;
  if (g->bias >= 0 &&
      (!gemm_i64(v, s, g->bias_off, "bias_off") || !gemm_i64(v, s, g->bias_rs, "bias_rs") ||
       !gemm_i64(v, s, g->bias_cs, "bias_cs")))
    return;
  nn_dtype dt = k->bufs.data[g->a].dtype;
  if (k->bufs.data[g->c].dtype != NN_DT_F32 || !nn_dtype_is_float(dt) ||
      k->bufs.data[g->b].dtype != dt || (g->bias >= 0 && k->bufs.data[g->bias].dtype != dt)) {
    bad(v, "statement %d: a GEMM sums into f32 from operands of one float dtype", s);
    return;
  }
  if (!k->bufs.data[g->c].written)
    bad(v, "statement %d: GEMM writes slot %d, which is not marked written", s, g->c);
  int64_t kv;
  if ((g->a_panel > 0 || g->b_panel > 0) && !k_const_i64(k, g->k, &kv))
    bad(v, "statement %d: a packed GEMM operand needs a constant K", s);
  int64_t x;
  for (int i = 0; i < 3; i++)
    if (k_const_i64(k, sizes[i], &x) && x < 0)
      bad(v, "statement %d: GEMM %s is negative", s, names[i]);
  if (g->epilogue) {
    if (g->ep_acc < 0 || g->ep_acc >= k->vars.len || k->vars.data[g->ep_acc] != NN_DT_F32 ||
        g->ep_idx < 0 || g->ep_idx >= k->vars.len || k->vars.data[g->ep_idx] != NN_DT_I64)
      bad(v, "statement %d: the GEMM epilogue's variables are not an f32 and an i64", s);
    else if (v->in_loop[g->ep_acc] || v->in_loop[g->ep_idx])
      bad(v, "statement %d: the GEMM epilogue's variables are loop variables", s);
    else if (g->ep < 0 || g->ep >= k->exprs.len || k->exprs.data[g->ep].dtype != NN_DT_F32)
      bad(v, "statement %d: the GEMM epilogue is not an f32 expression", s);
    else
      expr(v, g->ep, true); /* its indices are over ep_idx: not bounded here */
  }
  if (g->im2col) {
    const ks_im2col *ic = g->im2col;
    if (ic->x < 0 || ic->x >= k->bufs.len || k->bufs.data[ic->x].dtype != NN_DT_F32) {
      bad(v, "statement %d: the GEMM's image must be an f32 slot", s);
      return;
    }
    kx_id xs[] = {ic->x_off, ic->n0, ic->h, ic->w, ic->wout};
    static const char *const xn[] = {"image offset", "image n0", "image H", "image W",
                                     "image W out"};
    for (int i = 0; i < 5; i++)
      if (!gemm_i64(v, s, xs[i], xn[i])) return;
  }
}

static void block(vst *v, const ks_id *ids, int n, int depth, bool guarded);

static void stmt(vst *v, ks_id id, int depth, bool guarded) {
  const kernel *k = v->k;
  if (v->failed) return;
  if (id < 0 || id >= k->stmts.len) {
    bad(v, "reference to missing statement %d", id);
    return;
  }
  if (v->seen[id]) {
    bad(v, "statement %d appears twice", id);
    return;
  }
  v->seen[id] = true;
  if (depth > MAX_DEPTH) {
    bad(v, "statement %d nests too deeply", id);
    return;
  }
  v->epoch++; /* variable ranges may differ from the last statement's */
  const ks *s = &k->stmts.data[id];
  switch (s->kind) {
  case KS_FOR: {
    if (s->var < 0 || s->var >= k->vars.len || k->vars.data[s->var] != NN_DT_I64) {
      bad(v, "statement %d: the loop variable is not an I64 variable", id);
      return;
    }
    if (v->in_loop[s->var]) {
      bad(v, "statement %d: loop variable v%d is already in use by an enclosing loop", id, s->var);
      return;
    }
    if (!operand(v, -id - 1, 'l', s->lo, NN_DT_I64) || !operand(v, -id - 1, 'h', s->hi, NN_DT_I64))
      return;
    expr(v, s->lo, guarded);
    expr(v, s->hi, guarded);
    range lo = erange(v, s->lo), hi = erange(v, s->hi), saved = v->var[s->var];
    v->var[s->var] = lo.known && hi.known && hi.hi > lo.lo ? mk(lo.lo, hi.hi - 1) : unknown;
    v->in_loop[s->var] = true;
    block(v, s->body, s->nbody, depth + 1, guarded);
    v->in_loop[s->var] = false;
    v->var[s->var] = saved;
    v->epoch++;
    return;
  }
  case KS_LET:
    if (s->var < 0 || s->var >= k->vars.len) {
      bad(v, "statement %d: no variable %d", id, s->var);
      return;
    }
    if (v->in_loop[s->var]) {
      bad(v, "statement %d: assigns loop variable v%d inside its loop", id, s->var);
      return;
    }
    if (operand(v, -id - 1, 'v', s->val, k->vars.data[s->var])) expr(v, s->val, guarded);
    return;
  case KS_STORE:
    if (s->buf < 0 || s->buf >= k->bufs.len) {
      bad(v, "statement %d: stores to no slot %d", id, s->buf);
      return;
    }
    if (!k->bufs.data[s->buf].written) {
      bad(v, "statement %d: stores to slot %d, which is not marked written", id, s->buf);
      return;
    }
    if (!operand(v, -id - 1, 'i', s->idx, NN_DT_I64) ||
        !operand(v, -id - 1, 'v', s->val, k->bufs.data[s->buf].dtype))
      return;
    expr(v, s->idx, guarded);
    expr(v, s->val, guarded);
    access(v, id, s->buf, s->idx, guarded, "statement");
    return;
  case KS_CHECK:
    if (s->buf < 0 || s->buf >= k->bufs.len || s->buf != k->status_slot ||
        k->bufs.data[s->buf].dtype != NN_DT_I64 || !k->bufs.data[s->buf].written ||
        (k->bufs.data[s->buf].elems >= 0 && k->bufs.data[s->buf].elems < KP_STATUS_WORDS)) {
      bad(v, "statement %d: a check must record into the kernel's status slot", id);
      return;
    }
    if (s->var < 0) {
      bad(v, "statement %d: check %d does not exist", id, s->var);
      return;
    }
    if (!operand(v, -id - 1, 'c', s->cond, NN_DT_BOOL) ||
        !operand(v, -id - 1, 'v', s->val, NN_DT_I64) ||
        !operand(v, -id - 1, 'i', s->idx, NN_DT_I64))
      return;
    expr(v, s->cond, guarded);
    expr(v, s->val, guarded);
    expr(v, s->idx, guarded);
    return;
  case KS_IF:
    if (!operand(v, -id - 1, 'c', s->cond, NN_DT_UNKNOWN)) return;
    expr(v, s->cond, guarded);
    block(v, s->body, s->nbody, depth + 1, true);
    block(v, s->els, s->nels, depth + 1, true);
    return;
  case KS_GEMM: gemm(v, id, &s->gemm); return;
  default: bad(v, "statement %d has unknown kind %d", id, (int)s->kind); return;
  }
}

static void block(vst *v, const ks_id *ids, int n, int depth, bool guarded) {
  if (n > 0 && !ids) {
    bad(v, "a block of %d statements has none", n);
    return;
  }
  for (int i = 0; i < n && !v->failed; i++) stmt(v, ids[i], depth, guarded);
}

int k_verify(const kernel *k, int max_slots, bool ranges, nn_diag *d) {
  vst v = {.k = k, .max_slots = max_slots, .ranges = ranges, .d = d};
  if (k->open.len) bad(&v, "%d blocks are still open", k->open.len);
  if (k->bufs.len > max_slots)
    bad(&v, "%d slots, more than the %d the target allows", k->bufs.len, max_slots);
  if (k->dims_slot >= k->bufs.len) bad(&v, "the dims slot %d is not a slot", k->dims_slot);
  if (k->status_slot >= k->bufs.len) bad(&v, "the status slot %d is not a slot", k->status_slot);
  for (int i = 0; i < k->bufs.len && !v.failed; i++)
    if (nn_dtype_size(k->bufs.data[i].dtype) == 0) bad(&v, "slot %d has no dtype", i);
  if (v.failed) return -1;
  size_t ne = (size_t)k->exprs.len + 1, nv = (size_t)k->vars.len + 1;
  v.var = calloc(nv, sizeof *v.var);
  v.expr = calloc(ne, sizeof *v.expr);
  v.expr_epoch = calloc(ne, sizeof *v.expr_epoch);
  v.seen = calloc((size_t)k->stmts.len + 1, sizeof *v.seen);
  v.in_loop = calloc(nv, sizeof *v.in_loop);
  v.checked = calloc(ne, sizeof *v.checked);
  NN_ASSERT(v.var && v.expr && v.expr_epoch && v.seen && v.in_loop && v.checked);
  for (size_t i = 0; i < ne; i++) v.expr_epoch[i] = v.checked[i] = -1;
  block(&v, k->root.data, k->root.len, 0, false);
  free(v.var);
  free(v.expr);
  free(v.expr_epoch);
  free(v.seen);
  free(v.in_loop);
  free(v.checked);
  return v.failed ? -1 : 0;
}

/* ---- programs ------------------------------------------------------------ */

/* Byte size of buffer b's elements, saturating instead of overflowing. */
static uint64_t buf_bytes(const kp_buf *b) {
  uint64_t es = nn_dtype_size(b->dtype);
  if (b->elems <= 0 || es == 0) return 0;
  if ((uint64_t)b->elems > UINT64_MAX / es) return UINT64_MAX;
  return (uint64_t)b->elems * es;
}

int kp_verify_bindings(const kp_program *p, nn_diag *d) {
  nn_loc none = {0};
  for (int i = 0; i < p->bufs.len; i++) {
    const kp_buf *b = &p->bufs.data[i];
    if (nn_dtype_size(b->dtype) == 0 || (b->elems < 0 && !p->dynamic)) {
      nn_error(d, none, "buffer b%d has an invalid dtype or size", i);
      return -1;
    }
    if (b->elems < 0 && b->kind != KP_BUF_WORKSPACE && b->kind != KP_BUF_INPUT &&
        b->kind != KP_BUF_OUTPUT) {
      nn_error(d, none, "buffer b%d: only activations may have symbolic sizes", i);
      return -1;
    }
    switch (b->kind) {
    case KP_BUF_INPUT:
    case KP_BUF_OUTPUT: {
      int n = b->kind == KP_BUF_INPUT ? p->inputs.len : p->outputs.len;
      if (b->index < 0 || b->index >= n) {
        nn_error(d, none, "buffer b%d names graph %s %d of %d", i,
                 b->kind == KP_BUF_INPUT ? "input" : "output", b->index, n);
        return -1;
      }
      break;
    }
    case KP_BUF_DIMS:
      if (b->elems != p->syms.len || b->dtype != NN_DT_I64) {
        nn_error(d, none, "buffer b%d: the dims buffer must hold one i64 per symbol", i);
        return -1;
      }
      break;
    case KP_BUF_STATUS:
      if (b->elems != KP_STATUS_WORDS || b->dtype != NN_DT_I64 || i != p->status_buf) {
        nn_error(d, none, "buffer b%d: the status buffer must be the program's, %d i64", i,
                 KP_STATUS_WORDS);
        return -1;
      }
      break;
    case KP_BUF_WEIGHT:
    case KP_BUF_WORKSPACE: {
      if (p->dynamic && b->kind == KP_BUF_WORKSPACE) break; /* placed at run time */
      uint64_t limit = b->kind == KP_BUF_WEIGHT ? (uint64_t)p->weights.len : p->workspace_bytes;
      uint64_t n = buf_bytes(b);
      if (b->offset > limit || n > limit - b->offset) {
        nn_error(d, none,
                 "buffer b%d (%" PRIu64 " bytes at %" PRIu64 ") lies outside the %s (%" PRIu64
                 " bytes)",
                 i, n, b->offset, b->kind == KP_BUF_WEIGHT ? "weights" : "workspace", limit);
        return -1;
      }
      break;
    }
    default: nn_error(d, none, "buffer b%d has unknown kind %d", i, (int)b->kind); return -1;
    }
  }
  for (int s = 0; s < p->steps.len; s++) {
    const kp_step *st = &p->steps.data[s];
    const kernel *k = st->k;
    if (!k || !k->name || !k->name[0]) {
      nn_error(d, none, "step %d has no kernel", s);
      return -1;
    }
    if (k->bufs.len > 0 && !st->slots) {
      nn_error(d, k->loc, "step %d (%s) has no slot bindings", s, k->name);
      return -1;
    }
    for (int i = 0; i < k->bufs.len; i++) {
      kp_bufid id = st->slots[i];
      const kbuf *kb = &k->bufs.data[i];
      if (id < 0 || id >= p->bufs.len) {
        nn_error(d, k->loc, "step %d (%s): slot %d is bound to no buffer", s, k->name, i);
        return -1;
      }
      const kp_buf *b = &p->bufs.data[id];
      bool size_ok = kb->elems < 0 ? b->elems < 0 || p->dynamic
                                   : b->elems < 0 || kb->elems <= b->elems;
      if (b->dtype != kb->dtype || !size_ok) {
        nn_error(d, k->loc,
                 "step %d (%s): slot %d (%s[%" PRId64 "]) does not fit buffer b%d (%s[%" PRId64
                 "])",
                 s, k->name, i, nn_dtype_name(kb->dtype), kb->elems, id, nn_dtype_name(b->dtype),
                 b->elems);
        return -1;
      }
      if (kb->written && (b->kind == KP_BUF_INPUT || b->kind == KP_BUF_WEIGHT)) {
        nn_error(d, k->loc, "step %d (%s): slot %d writes read-only buffer b%d", s, k->name, i, id);
        return -1;
      }
    }
  }
  return 0;
}

int kp_verify(const kp_program *p, nn_diag *d) {
  if (kp_verify_bindings(p, d)) return -1;
  int max_slots = p->target ? p->target->max_slots : K_MAX_SLOTS;
  for (int s = 0; s < p->steps.len; s++) {
    const kernel *k = p->steps.data[s].k;
    bool done = false; /* shared kernels are checked once */
    for (int j = 0; j < s && !done; j++) done = p->steps.data[j].k == k;
    if (!done && k_verify(k, max_slots, true, d)) return -1;
  }
  return 0;
}
