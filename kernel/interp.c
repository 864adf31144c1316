/* interp.c — the reference interpreter for kernels and programs.
 *
 * k_interp walks a kernel's statements and evaluates expressions
 * recursively. It is the executable definition of the kernel form: the
 * LLVM and CUDA translations must agree with it, tests compare against it,
 * and the CUDA backend uses it to emulate kernels on the CPU. Clarity comes
 * first; it only needs to be fast enough for test-sized models.
 *
 * Semantics:
 *  - Loop variables are I64. A FOR evaluates lo and hi once, on entry, and
 *    runs var = lo, lo+1, ..., hi-1 (nothing when hi <= lo). Flags do not
 *    change the meaning (iterations run in order).
 *  - Scalars are held per their dtype: integers and bools as int64 (wrapped
 *    to the dtype's width after every operation, bools 0/1), floats as
 *    double holding a value representable in the dtype.
 *  - Float ops compute in the expression's dtype: f32 math in float (expf,
 *    tanhf, ...; + - * / sqrt done in double and rounded once, which is
 *    exact), f64 in double, f16/bf16 in f32 and rounded to the dtype
 *    (round to nearest even).
 *  - Integer ops compute in int64 (wrapping, no undefined behaviour):
 *    DIV truncates, FLOORDIV and MOD follow Python (floor; the remainder
 *    has the sign of the divisor); division or remainder by zero gives 0.
 *    Float FLOORDIV is floor(a / b); float MOD is fmod(a, b) moved into the
 *    divisor's sign. POW on ints is exact repeated squaring (a negative
 *    exponent gives 1/a truncated: 0 unless a is 1 or -1).
 *  - MIN/MAX on floats propagate NaN (like torch.maximum); ROUND is half
 *    to even; NOT gives bool (a == 0); ABS/NEG of ints wrap.
 *  - CAST float -> int truncates toward zero (NaN gives 0, out of range
 *    saturates before wrapping to the width); anything -> bool is != 0;
 *    int -> float rounds to nearest.
 *  - Comparisons compare the operands' values and give bool; AND/OR take
 *    nonzero as true. SELECT evaluates only the chosen operand (a
 *    translation may evaluate both, so lowerings keep both safe).
 *  - LOAD/STORE indices are checked against kbuf.elems (for a slot of
 *    symbolic size, elems -1, against the size k_interp_sized was given;
 *    k_interp leaves such slots unchecked): an access out of bounds stops
 *    the kernel with an error on stderr naming the kernel, the buffer and
 *    the index, and k_interp returns -1. Nothing is written out of bounds.
 *  - GEMM follows the definition in kernel.h with f32 arithmetic (the
 *    products summed in order over k in float); its sizes and strides are
 *    evaluated once, when the statement starts; an epilogue is evaluated
 *    per element of C just before its store.
 *
 * kp_interp runs a program's steps in order over buffers it allocates: the
 * caller's inputs and outputs, the weights blob, one workspace (for a
 * dynamic program, planned for the given dim values with the model
 * runtime's own planner, abi/plan.c) and the dims buffer.
 */
#include "kernel.h"
#include "../abi/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef union kval {
  int64_t i; /* integer and bool dtypes */
  double f;  /* float dtypes */
} kval;

typedef struct ist {
  const kernel *k;      /* the kernel being run */
  void *const *bufs;    /* slot pointers */
  const int64_t *sizes; /* element counts for slots whose kbuf.elems is -1,
                           or NULL (such slots are then not checked) */
  kval *vars;           /* current variable values */
  bool err;             /* an access failed: stop */
} ist;

/* Rounds x to a value representable in float dtype dt. */
static double rnd(nn_dtype dt, double x) {
  switch (dt) {
  case NN_DT_F32: return (float)x;
  case NN_DT_F16: return nn_f16_to_f32(nn_f32_to_f16((float)x));
  case NN_DT_BF16: return nn_bf16_to_f32(nn_f32_to_bf16((float)x));
  default: return x;
  }
}

/* ---- memory --------------------------------------------------------------- */

static bool check(ist *s, int32_t buf, int64_t idx, const char *what) {
  const kbuf *b = &s->k->bufs.data[buf];
  /* a symbolic size: the bound buffer's, when the caller gave it */
  int64_t elems = b->elems >= 0 ? b->elems : s->sizes ? s->sizes[buf] : INT64_MAX;
  if (idx >= 0 && idx < elems && s->bufs[buf]) return true;
  if (!s->err)
    fprintf(stderr,
            "nncc: kernel %s: %s of buffer '%s' at index %lld is out of "
            "bounds (%lld elements)\n",
            s->k->name, what, b->name, (long long)idx, (long long)elems);
  s->err = true;
  return false;
}

static kval load(ist *s, int32_t buf, int64_t idx) {
  kval v = {0};
  if (!check(s, buf, idx, "load")) return v;
  const void *p = s->bufs[buf];
  switch (s->k->bufs.data[buf].dtype) {
  case NN_DT_F32: v.f = ((const float *)p)[idx]; break;
  case NN_DT_F64: v.f = ((const double *)p)[idx]; break;
  case NN_DT_F16: v.f = nn_f16_to_f32(((const uint16_t *)p)[idx]); break;
  case NN_DT_BF16: v.f = nn_bf16_to_f32(((const uint16_t *)p)[idx]); break;
  case NN_DT_I64: v.i = ((const int64_t *)p)[idx]; break;
  case NN_DT_I32: v.i = ((const int32_t *)p)[idx]; break;
  case NN_DT_I16: v.i = ((const int16_t *)p)[idx]; break;
  case NN_DT_I8: v.i = ((const int8_t *)p)[idx]; break;
  case NN_DT_U8: v.i = ((const uint8_t *)p)[idx]; break;
  case NN_DT_BOOL: v.i = ((const uint8_t *)p)[idx] != 0; break;
  default: NN_UNREACHABLE();
  }
  return v;
}

static void store(ist *s, int32_t buf, int64_t idx, kval v) {
  if (!check(s, buf, idx, "store")) return;
  void *p = s->bufs[buf];
  switch (s->k->bufs.data[buf].dtype) {
  case NN_DT_F32: ((float *)p)[idx] = (float)v.f; break;
  case NN_DT_F64: ((double *)p)[idx] = v.f; break;
  case NN_DT_F16: ((uint16_t *)p)[idx] = nn_f32_to_f16((float)v.f); break;
  case NN_DT_BF16: ((uint16_t *)p)[idx] = nn_f32_to_bf16((float)v.f); break;
  case NN_DT_I64: ((int64_t *)p)[idx] = v.i; break;
  case NN_DT_I32: ((int32_t *)p)[idx] = (int32_t)v.i; break;
  case NN_DT_I16: ((int16_t *)p)[idx] = (int16_t)v.i; break;
  case NN_DT_I8: ((int8_t *)p)[idx] = (int8_t)v.i; break;
  case NN_DT_U8: ((uint8_t *)p)[idx] = (uint8_t)v.i; break;
  case NN_DT_BOOL: ((uint8_t *)p)[idx] = v.i != 0; break;
  default: NN_UNREACHABLE();
  }
}

/* ---- expressions ------------------------------------------------------------ */

static int64_t i_floordiv(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (a == INT64_MIN && b == -1) return INT64_MIN;
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}

static int64_t i_mod(int64_t a, int64_t b) {
  if (b == 0 || b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

static int64_t i_pow(int64_t a, int64_t e) {
  if (e < 0) return a == 1 ? 1 : a == -1 ? (e % 2 ? -1 : 1) : 0;
  uint64_t r = 1, base = (uint64_t)a;
  while (e) {
    if (e & 1) r *= base;
    base *= base;
    e >>= 1;
  }
  return (int64_t)r;
}

static int64_t f_to_i(double f) {
  if (f != f) return 0;
  if (f >= 9223372036854775807.0) return INT64_MAX;
  if (f <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)f;
}

static double f_unary(kx_op op, nn_dtype dt, double x) {
  bool d = dt == NN_DT_F64;
  float f = (float)x;
  switch (op) {
  case KX_NEG: return -x;
  case KX_ABS: return fabs(x);
  case KX_EXP: return d ? exp(x) : expf(f);
  case KX_LOG: return d ? log(x) : logf(f);
  case KX_LOG1P: return d ? log1p(x) : log1pf(f);
  case KX_SQRT: return sqrt(x);
  case KX_RSQRT: return d ? 1.0 / sqrt(x) : 1.0f / sqrtf(f);
  case KX_TANH: return d ? tanh(x) : tanhf(f);
  case KX_ERF: return d ? erf(x) : erff(f);
  case KX_SIN: return d ? sin(x) : sinf(f);
  case KX_COS: return d ? cos(x) : cosf(f);
  case KX_FLOOR: return floor(x);
  case KX_CEIL: return ceil(x);
  case KX_ROUND: return nearbyint(x); /* default mode: half to even */
  default: NN_UNREACHABLE();
  }
}

static double f_binary(kx_op op, nn_dtype dt, double a, double b) {
  bool d = dt == NN_DT_F64;
  switch (op) {
  case KX_ADD: return a + b;
  case KX_SUB: return a - b;
  case KX_MUL: return a * b;
  case KX_DIV: return a / b;
  case KX_FLOORDIV: return floor(rnd(dt, a / b));
  case KX_MOD: {
    double r = d ? fmod(a, b) : fmodf((float)a, (float)b);
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  }
  case KX_MIN: return a != a || b != b ? NAN : a < b ? a : b;
  case KX_MAX: return a != a || b != b ? NAN : a > b ? a : b;
  case KX_POW: return d ? pow(a, b) : powf((float)a, (float)b);
  default: NN_UNREACHABLE();
  }
}

static int64_t i_binary(kx_op op, int64_t a, int64_t b) {
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  switch (op) {
  case KX_ADD: return (int64_t)(ua + ub);
  case KX_SUB: return (int64_t)(ua - ub);
  case KX_MUL: return (int64_t)(ua * ub);
  case KX_DIV:
    if (b == 0) return 0;
    return a == INT64_MIN && b == -1 ? INT64_MIN : a / b;
  case KX_FLOORDIV: return i_floordiv(a, b);
  case KX_MOD: return i_mod(a, b);
  case KX_MIN: return a < b ? a : b;
  case KX_MAX: return a > b ? a : b;
  case KX_POW: return i_pow(a, b);
  default: NN_UNREACHABLE();
  }
}

static kval ev(ist *s, kx_id id) {
  const kx *e = &s->k->exprs.data[id];
  kval r = {0};
  bool fl = nn_dtype_is_float(e->dtype);
  switch (e->op) {
  case KX_CONST:
    if (fl)
      r.f = e->f;
    else
      r.i = e->i;
    return r;
  case KX_VAR: return s->vars[e->var];
  case KX_LOAD: return load(s, e->buf, ev(s, e->a).i);
  case KX_CAST: {
    nn_dtype from = s->k->exprs.data[e->a].dtype;
    kval a = ev(s, e->a);
    bool ffl = nn_dtype_is_float(from);
    if (e->dtype == NN_DT_BOOL)
      r.i = ffl ? a.f != 0 : a.i != 0;
    else if (fl)
      r.f = rnd(e->dtype, ffl ? a.f : (double)a.i);
    else
      r.i = k_wrap_int(e->dtype, ffl ? f_to_i(a.f) : a.i);
    return r;
  }
  case KX_NOT: {
    kval a = ev(s, e->a);
    r.i = nn_dtype_is_float(s->k->exprs.data[e->a].dtype) ? a.f == 0 : a.i == 0;
    return r;
  }
  case KX_SELECT: return ev(s, e->a).i ? ev(s, e->b) : ev(s, e->c);
  case KX_EQ:
  case KX_NE:
  case KX_LT:
  case KX_LE:
  case KX_GT:
  case KX_GE:
  case KX_AND:
  case KX_OR: {
    bool ofl = nn_dtype_is_float(s->k->exprs.data[e->a].dtype);
    kval a = ev(s, e->a), b = ev(s, e->b);
    double x = ofl ? a.f : 0, y = ofl ? b.f : 0;
    int64_t p = a.i, q = b.i;
    switch (e->op) {
    case KX_EQ: r.i = ofl ? x == y : p == q; break;
    case KX_NE: r.i = ofl ? x != y : p != q; break;
    case KX_LT: r.i = ofl ? x < y : p < q; break;
    case KX_LE: r.i = ofl ? x <= y : p <= q; break;
    case KX_GT: r.i = ofl ? x > y : p > q; break;
    case KX_GE: r.i = ofl ? x >= y : p >= q; break;
    case KX_AND: r.i = (ofl ? x != 0 : p != 0) && (ofl ? y != 0 : q != 0); break;
    default: r.i = (ofl ? x != 0 : p != 0) || (ofl ? y != 0 : q != 0); break;
    }
    return r;
  }
  default: break;
  }
  if (e->op >= KX_NEG && e->op <= KX_ROUND) {
    kval a = ev(s, e->a);
    if (fl) {
      r.f = rnd(e->dtype, f_unary(e->op, e->dtype, a.f));
    } else if (e->op == KX_NEG) {
      r.i = k_wrap_int(e->dtype, (int64_t)(0 - (uint64_t)a.i));
    } else if (e->op == KX_ABS) {
      r.i = k_wrap_int(e->dtype, a.i < 0 ? (int64_t)(0 - (uint64_t)a.i) : a.i);
    } else if (e->op == KX_FLOOR || e->op == KX_CEIL || e->op == KX_ROUND) {
      r.i = a.i;
    } else { /* transcendental on an int: through double, truncated */
      r.i = k_wrap_int(e->dtype, f_to_i(f_unary(e->op, NN_DT_F64, (double)a.i)));
    }
    return r;
  }
  NN_ASSERT(e->op >= KX_ADD && e->op <= KX_POW);
  kval a = ev(s, e->a), b = ev(s, e->b);
  if (fl)
    r.f = rnd(e->dtype, f_binary(e->op, e->dtype, a.f, b.f));
  else
    r.i = k_wrap_int(e->dtype, i_binary(e->op, a.i, b.i));
  return r;
}

/* ---- statements -------------------------------------------------------------- */

/* a*b + c*d + e in wrapping int64 arithmetic (indices of a bad kernel may
 * overflow; the bounds check then catches them without undefined
 * behaviour). */
static int64_t lin(int64_t e, int64_t a, int64_t b, int64_t c, int64_t d) {
  return (int64_t)((uint64_t)e + (uint64_t)a * (uint64_t)b + (uint64_t)c * (uint64_t)d);
}

static void run_gemm(ist *s, const ks_gemm *g) {
  int64_t ao = ev(s, g->a_off).i, bo = ev(s, g->b_off).i, co = ev(s, g->c_off).i;
  int64_t biaso = g->bias >= 0 ? ev(s, g->bias_off).i : 0;
  /* sizes and strides: evaluated once, like FOR bounds */
  int64_t M = ev(s, g->m).i, N = ev(s, g->n).i, K = ev(s, g->k).i;
  int64_t a_rs = ev(s, g->a_rs).i, a_cs = ev(s, g->a_cs).i;
  int64_t b_rs = ev(s, g->b_rs).i, b_cs = ev(s, g->b_cs).i;
  int64_t ldc = ev(s, g->ldc).i;
  int64_t bias_rs = g->bias >= 0 ? ev(s, g->bias_rs).i : 0;
  int64_t bias_cs = g->bias >= 0 ? ev(s, g->bias_cs).i : 0;
  for (int64_t m = 0; m < M && !s->err; m++)
    for (int64_t n = 0; n < N && !s->err; n++) {
      float acc = 0;
      for (int64_t k = 0; k < K && !s->err; k++) {
        /* panel layouts (ks_gemm.a_panel / b_panel) or plain strides */
        int64_t ai = g->a_panel > 0 ? lin(lin(ao, m / g->a_panel, g->a_panel * K, k, g->a_panel),
                                          m % g->a_panel, 1, 0, 0)
                                    : lin(ao, m, a_rs, k, a_cs);
        int64_t bi = g->b_panel > 0 ? lin(lin(bo, n / g->b_panel, g->b_panel * K, k, g->b_panel),
                                          n % g->b_panel, 1, 0, 0)
                                    : lin(bo, k, b_rs, n, b_cs);
        float x = (float)load(s, g->a, ai).f;
        float y = (float)load(s, g->b, bi).f;
        acc += x * y;
      }
      float v = g->alpha * acc;
      if (g->bias >= 0)
        v += g->beta * (float)load(s, g->bias, lin(biaso, n, bias_cs, m, bias_rs)).f;
      int64_t ci = lin(co, m, ldc, n, 1);
      if (g->accumulate) v += (float)load(s, g->c, ci).f;
      if (s->err) return;
      kval out = {.f = v};
      if (g->epilogue) {
        s->vars[g->ep_acc] = out;
        s->vars[g->ep_idx].i = ci;
        out = ev(s, g->ep);
        if (s->err) return;
      }
      store(s, g->c, ci, out);
    }
}

static void run_block(ist *s, const ks_id *ids, int n);

static void run_stmt(ist *s, ks_id id) {
  const ks *st = &s->k->stmts.data[id];
  switch (st->kind) {
  case KS_FOR: {
    int64_t lo = ev(s, st->lo).i, hi = ev(s, st->hi).i;
    for (int64_t i = lo; i < hi && !s->err; i++) {
      s->vars[st->var].i = i;
      run_block(s, st->body, st->nbody);
    }
    return;
  }
  case KS_LET: {
    kval v = ev(s, st->val);
    if (!s->err) s->vars[st->var] = v;
    return;
  }
  case KS_STORE: {
    int64_t idx = ev(s, st->idx).i;
    kval v = ev(s, st->val);
    if (!s->err) store(s, st->buf, idx, v);
    return;
  }
  case KS_IF:
    if (ev(s, st->cond).i)
      run_block(s, st->body, st->nbody);
    else
      run_block(s, st->els, st->nels);
    return;
  case KS_GEMM: run_gemm(s, &st->gemm); return;
  case KS_CHECK: {
    kval ok = ev(s, st->cond), val = ev(s, st->val), size = ev(s, st->idx);
    if (s->err || ok.i) return;
    int64_t *status = s->bufs[st->buf];
    if (!status) {
      s->err = true;
      return;
    }
    int64_t none = 0;
    /* the first failure wins, whichever thread it is on */
    if (__atomic_compare_exchange_n(&status[0], &none, (int64_t)st->var + 1, false,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
      status[1] = val.i;
      status[2] = size.i;
    }
    return;
  }
  }
}

static void run_block(ist *s, const ks_id *ids, int n) {
  for (int i = 0; i < n && !s->err; i++) run_stmt(s, ids[i]);
}

int k_interp(const kernel *k, void *const *bufs) { return k_interp_sized(k, bufs, NULL); }

int k_interp_sized(const kernel *k, void *const *bufs, const int64_t *elems) {
  ist s = {.k = k, .bufs = bufs, .sizes = elems};
  s.vars = calloc((size_t)k->vars.len + 1, sizeof *s.vars);
  NN_ASSERT(s.vars);
  run_block(&s, k->root.data, k->root.len);
  free(s.vars);
  return s.err ? -1 : 0;
}

/* ---- programs ------------------------------------------------------------ */

int64_t kp_dim_eval(const kp_program *p, ir_dim d, const int64_t *dims, bool *ok) {
  int64_t v;
  if (ir_dim_is_const(p->g, d, &v)) return v;
  const ir_dimexpr *e = ir_dim_get(p->g, d);
  if (e->kind == IR_DK_SYM) {
    for (int i = 0; i < p->syms.len; i++)
      if (p->syms.data[i].dim == d) return dims[i];
    *ok = false;
    return 0;
  }
  if (e->kind == IR_DK_UNKNOWN || e->kind == IR_DK_CONST) {
    *ok = false;
    return 0;
  }
  int64_t x = kp_dim_eval(p, e->a, dims, ok), y = kp_dim_eval(p, e->b, dims, ok), r;
  switch (e->kind) {
  case IR_DK_ADD: return (int64_t)((uint64_t)x + (uint64_t)y);
  case IR_DK_MUL: return (int64_t)((uint64_t)x * (uint64_t)y);
  case IR_DK_DIV: return y == 0 || (x == INT64_MIN && y == -1) ? 0 : x / y;
  case IR_DK_FLOORDIV:
    if (y == 0 || (x == INT64_MIN && y == -1)) return 0;
    r = x / y;
    return (x % y != 0 && ((x < 0) != (y < 0))) ? r - 1 : r;
  case IR_DK_MOD:
    if (y == 0 || y == -1) return 0;
    r = x % y;
    return r != 0 && ((r < 0) != (y < 0)) ? r + y : r;
  default: *ok = false; return 0;
  }
}

/* Interprets p with workspace ws, buffer byte offsets offs (by buffer id)
 * and element counts elems (by buffer id). */
static int interp_steps(const kp_program *p, unsigned char *ws, const uint64_t *offs,
                        const int64_t *elems, const int64_t *dims, void *const *inputs,
                        void *const *outputs, int64_t *status) {
  int rc = 0;
  for (int i = 0; i < p->steps.len && !rc; i++) {
    const kp_step *s = &p->steps.data[i];
    void *slots[K_MAX_SLOTS];
    int64_t sizes[K_MAX_SLOTS];
    for (int k = 0; k < s->k->bufs.len; k++) {
      const kp_buf *b = &p->bufs.data[s->slots[k]];
      sizes[k] = elems[s->slots[k]];
      switch (b->kind) {
      case KP_BUF_INPUT: slots[k] = inputs[b->index]; break;
      case KP_BUF_OUTPUT: slots[k] = outputs[b->index]; break;
      case KP_BUF_WEIGHT: slots[k] = (void *)(p->weights.data + b->offset); break;
      case KP_BUF_WORKSPACE: slots[k] = ws + offs[s->slots[k]]; break;
      case KP_BUF_DIMS: slots[k] = (void *)dims; break;
      case KP_BUF_STATUS: slots[k] = status; break;
      }
    }
    rc = k_interp_sized(s->k, slots, sizes);
  }
  return rc;
}

int kp_interp_status(const kp_program *p, const int64_t *dims, void *const *inputs,
                     void *const *outputs, int64_t *status) {
  int64_t own[KP_STATUS_WORDS];
  if (!status) status = own;
  memset(status, 0, sizeof(int64_t) * KP_STATUS_WORDS);
  int nb = p->bufs.len, n = p->dynblocks.len;
  int64_t *elems = calloc((size_t)nb + 1, sizeof *elems);
  uint64_t *offs = calloc((size_t)nb + 1, sizeof *offs);
  mp_block *blk = calloc((size_t)n + 1, sizeof *blk);
  int rc = -1;
  unsigned char *ws = NULL;
  if (!elems || !offs || !blk) goto out;
  bool ok = true;
  for (int i = 0; i < nb; i++) {
    const kp_buf *b = &p->bufs.data[i];
    elems[i] = b->elems >= 0 ? b->elems : kp_dim_eval(p, b->elems_d, dims, &ok);
    if (elems[i] < 0) ok = false;
    offs[i] = b->offset;
  }
  if (!ok) goto out;
  uint64_t arena = p->workspace_bytes;
  if (p->dynamic) {
    for (int j = 0; j < n; j++) {
      const kp_buf *b = &p->bufs.data[p->dynblocks.data[j].buf];
      uint64_t bytes = (uint64_t)elems[p->dynblocks.data[j].buf] * nn_dtype_size(b->dtype);
      blk[j] = (mp_block){.size = (bytes + 63) & ~(uint64_t)63,
                          .first = p->dynblocks.data[j].first,
                          .last = p->dynblocks.data[j].last};
    }
    arena = mp_assign(blk, n);
    for (int j = 0; j < n; j++) offs[p->dynblocks.data[j].buf] = blk[j].offset;
  }
  ws = calloc(1, arena + 64);
  if (!ws) goto out;
  rc = interp_steps(p, ws, offs, elems, dims, inputs, outputs, status);
  if (rc == 0 && status[0] != 0) rc = 1;
out:
  free(ws);
  free(blk);
  free(offs);
  free(elems);
  return rc;
}

int kp_interp_dims(const kp_program *p, const int64_t *dims, void *const *inputs,
                   void *const *outputs) {
  return kp_interp_status(p, dims, inputs, outputs, NULL);
}

int kp_interp(const kp_program *p, void *const *inputs, void *const *outputs) {
  if (p->dynamic || p->syms.len > 0) return -1; /* needs dim values */
  return kp_interp_dims(p, NULL, inputs, outputs);
}
