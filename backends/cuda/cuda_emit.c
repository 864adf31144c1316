/* cuda_emit.c — kp_program → CUDA C source and launch table (backend.h).
 *
 * The source opens with the prelude (cuda_prelude.c: 16-bit float
 * conversions, integer arithmetic with the reference interpreter's
 * wrapping and floor semantics, NaN-propagating min/max, reductions),
 * then one `extern "C" __global__`
 * function per distinct kernel of the program (steps may share a kernel).
 * Every function takes an nncc_cu_args by value and names its slots as
 * typed pointers s0, s1, ...; every kernel variable becomes a local vN of
 * its held type (i64 for integers and bools, float for f32/f16/bf16,
 * double for f64). Expressions are printed inline, recursively.
 *
 * The semantics are kernel/interp.c's, operation by operation: integers
 * wrap to their dtype's width after every operation, f16/bf16 results are
 * rounded to the dtype after every operation (nn_rh, nn_rb), casts from
 * float to int truncate and saturate, division by zero gives 0. The same
 * text compiles with NVRTC for the device and, with tests/cuda/cuda_emu.h
 * included first, as host C++ (the emulation check).
 *
 * Forms (abi/cuda_table.h):
 *  - PAR: grid-stride over the root parallel loop, one iteration per
 *    thread; a flat elementwise loop (VECTOR, its stores at exactly the
 *    loop variable into f32 buffers it does not load) runs 4 iterations
 *    per thread, with float4 stores and float4 loads of the f32 buffers
 *    read at the loop variable, when those buffers are 16-byte aligned at
 *    run time; the rest (and misaligned buffers) one by one;
 *  - ROW: reductions (KS_REDUCE nests of LETs acc = acc + - max min x)
 *    inside the root parallel loop, or in a root that is no loop: a block
 *    per iteration; each reduction is flattened and strided over the
 *    block's threads from the op's identity, the partials combined by a
 *    warp butterfly (__shfl_xor_sync) and the warps' results through
 *    shared memory (nn_red_*), then joined to the accumulator's value
 *    before the loop; loops of independent iterations are strided too,
 *    row-level stores done by thread 0, with a barrier after each;
 *  - GEMM: tiled, TILE x TILE threads, A and B staged through shared
 *    memory, each thread summing its element over k in order, like the
 *    interpreter; with f16 A and B, on tensor cores (wmma 16x16x16 with
 *    f32 accumulators, 8 warps sharing K, summed through shared memory
 *    before the epilogue);
 *  - SERIAL: one thread.
 * GEMMs inside other nests are printed as plain loops.
 */
#include "../backend.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const nn_loc no_loc = {0};

/* ---- types ------------------------------------------------------------------- */

static bool is_f(nn_dtype t) { return nn_dtype_is_float(t); }

/* The C type a scalar of dtype t is held in. */
static const char *held(nn_dtype t) {
  return t == NN_DT_F64 ? "double" : is_f(t) ? "float" : "i64";
}

/* The C element type of a buffer of dtype t. */
static const char *elem(nn_dtype t) {
  switch (t) {
  case NN_DT_F32: return "float";
  case NN_DT_F64: return "double";
  case NN_DT_F16:
  case NN_DT_BF16: return "unsigned short";
  case NN_DT_I64: return "i64";
  case NN_DT_I32: return "int";
  case NN_DT_I16: return "short";
  case NN_DT_I8: return "signed char";
  case NN_DT_U8:
  case NN_DT_BOOL: return "unsigned char";
  default: return NULL;
  }
}

/* ---- expressions ------------------------------------------------------------- */

typedef struct em {
  const kernel *k;
  nn_buf *b;
  bool err;      /* an expression could not be printed */
  long budget;   /* characters left for this kernel (DAG blow-up guard) */
  nn_arena *a;   /* for the marks below */
  int32_t *mark; /* per expression: the walk that last visited it */
  int32_t walk;  /* the current walk's number */
  /* float4 printing (vec_body): while lane >= 0, a load of an f32 buffer
   * with vec_load[buf] at exactly variable vec_var reads component `lane`
   * of the float4 l<buf>_ loaded before */
  int lane;                         /* 0..3, or -1 */
  int32_t vec_var;                  /* the loop variable */
  bool vec_load[NNCC_CU_MAX_SLOTS]; /* buffers loaded as float4 */
} em;

static void ex(em *e, kx_id id);

/* Prints open, expression a, mid, expression b, close. */
static void ex2(em *e, const char *open, kx_id a, const char *mid, kx_id b, const char *close) {
  nn_buf_printf(e->b, "%s", open);
  ex(e, a);
  nn_buf_printf(e->b, "%s", mid);
  ex(e, b);
  nn_buf_printf(e->b, "%s", close);
}

/* Opens the wrap of an integer result to dtype t (closed by wrap_close). */
static void wrap_open(em *e, nn_dtype t) {
  switch (t) {
  case NN_DT_I32: nn_buf_printf(e->b, "(i64)(int)("); break;
  case NN_DT_I16: nn_buf_printf(e->b, "(i64)(short)("); break;
  case NN_DT_I8: nn_buf_printf(e->b, "(i64)(signed char)("); break;
  case NN_DT_U8: nn_buf_printf(e->b, "(i64)(unsigned char)("); break;
  case NN_DT_BOOL: nn_buf_printf(e->b, "(i64)(0 != ("); break;
  default: nn_buf_printf(e->b, "("); break;
  }
}
static void wrap_close(em *e, nn_dtype t) { nn_buf_printf(e->b, t == NN_DT_BOOL ? "))" : ")"); }

/* Opens the rounding of a float result to dtype t. */
static void rnd_open(em *e, nn_dtype t) {
  nn_buf_printf(e->b, t == NN_DT_F16 ? "nn_rh(" : t == NN_DT_BF16 ? "nn_rb(" : "(");
}

static void print_fconst(em *e, nn_dtype t, double v) {
  if (v != v) {
    nn_buf_printf(e->b, "nn_nan()");
    return;
  }
  if (isinf(v)) {
    nn_buf_printf(e->b, v > 0 ? "nn_inf()" : "(-nn_inf())");
    return;
  }
  char num[40];
  snprintf(num, sizeof num, t == NN_DT_F64 ? "%.17g" : "%.9g", v);
  /* "1" would be an int literal: make sure there is a point or exponent */
  bool point = strpbrk(num, ".e") != NULL;
  nn_buf_printf(e->b, "%s%s%s", num, point ? "" : ".0", t == NN_DT_F64 ? "" : "f");
}

static void print_iconst(em *e, int64_t v) {
  if (v == INT64_MIN)
    nn_buf_printf(e->b, "NN_I64_MIN");
  else
    nn_buf_printf(e->b, "(%lldLL)", (long long)v);
}

static const char *unary_fn(kx_op op, bool dbl) {
  switch (op) {
  case KX_ABS: return dbl ? "fabs" : "fabsf";
  case KX_EXP: return dbl ? "exp" : "expf";
  case KX_LOG: return dbl ? "log" : "logf";
  case KX_LOG1P: return dbl ? "log1p" : "log1pf";
  case KX_SQRT: return dbl ? "sqrt" : "sqrtf";
  case KX_TANH: return dbl ? "tanh" : "tanhf";
  case KX_ERF: return dbl ? "erf" : "erff";
  case KX_SIN: return dbl ? "sin" : "sinf";
  case KX_COS: return dbl ? "cos" : "cosf";
  case KX_FLOOR: return dbl ? "floor" : "floorf";
  case KX_CEIL: return dbl ? "ceil" : "ceilf";
  case KX_ROUND: return dbl ? "rint" : "rintf";
  default: return NULL;
  }
}

static void ex_load(em *e, const kx *x) {
  nn_dtype bt = e->k->bufs.data[x->buf].dtype;
  if (e->lane >= 0 && e->vec_load[x->buf] && e->k->exprs.data[x->a].op == KX_VAR &&
      e->k->exprs.data[x->a].var == e->vec_var) {
    nn_buf_printf(e->b, "(l%d_.%c)", x->buf, "xyzw"[e->lane]);
    return;
  }
  const char *cv = bt == NN_DT_F16    ? "nn_h2f"
                   : bt == NN_DT_BF16 ? "nn_b2f"
                   : bt == NN_DT_BOOL ? "(i64)(0 != "
                   : is_f(bt)         ? ""
                                      : "(i64)";
  nn_buf_printf(e->b, "%s(s%d[", cv, x->buf);
  ex(e, x->a);
  nn_buf_printf(e->b, "])%s", bt == NN_DT_BOOL ? ")" : "");
}

static void ex_cast(em *e, const kx *x) {
  nn_dtype from = e->k->exprs.data[x->a].dtype, to = x->dtype;
  if (to == NN_DT_BOOL) {
    nn_buf_printf(e->b, "(i64)(0 != (");
    ex(e, x->a);
    nn_buf_printf(e->b, "))");
  } else if (is_f(to)) {
    rnd_open(e, to);
    nn_buf_printf(e->b, to == NN_DT_F64 ? "(double)("
                        : is_f(from)    ? "(float)("
                                        : "(float)(double)(");
    ex(e, x->a);
    nn_buf_printf(e->b, "))");
  } else {
    wrap_open(e, to);
    if (is_f(from)) nn_buf_printf(e->b, "nn_f2i((double)(");
    ex(e, x->a);
    if (is_f(from)) nn_buf_printf(e->b, "))");
    wrap_close(e, to);
  }
}

static void ex_unary(em *e, const kx *x) {
  nn_dtype t = x->dtype;
  if (is_f(t)) {
    bool dbl = t == NN_DT_F64;
    rnd_open(e, t);
    if (x->op == KX_NEG)
      nn_buf_printf(e->b, "-(");
    else if (x->op == KX_RSQRT)
      nn_buf_printf(e->b, dbl ? "1.0 / sqrt(" : "1.0f / sqrtf(");
    else
      nn_buf_printf(e->b, "%s(", unary_fn(x->op, dbl));
    ex(e, x->a);
    nn_buf_printf(e->b, "))");
    return;
  }
  wrap_open(e, t);
  switch (x->op) {
  case KX_NEG: nn_buf_printf(e->b, "nn_neg("); break;
  case KX_ABS: nn_buf_printf(e->b, "nn_iabs("); break;
  case KX_FLOOR:
  case KX_CEIL:
  case KX_ROUND: nn_buf_printf(e->b, "("); break;
  case KX_RSQRT: nn_buf_printf(e->b, "nn_f2i(1.0 / sqrt((double)"); break;
  default: nn_buf_printf(e->b, "nn_f2i(%s((double)", unary_fn(x->op, true)); break;
  }
  ex(e, x->a);
  bool two = x->op != KX_NEG && x->op != KX_ABS && x->op != KX_FLOOR && x->op != KX_CEIL &&
             x->op != KX_ROUND;
  nn_buf_printf(e->b, two ? "))" : ")");
  wrap_close(e, t);
}

static void ex_binary(em *e, const kx *x) {
  nn_dtype t = x->dtype;
  if (is_f(t)) {
    bool dbl = t == NN_DT_F64;
    const char *infix = x->op == KX_ADD   ? ") + ("
                        : x->op == KX_SUB ? ") - ("
                        : x->op == KX_MUL ? ") * ("
                        : x->op == KX_DIV ? ") / ("
                                          : NULL;
    rnd_open(e, t);
    if (infix) {
      ex2(e, "(", x->a, infix, x->b, ")");
    } else if (x->op == KX_FLOORDIV) {
      nn_buf_printf(e->b, "%s(", dbl ? "floor" : "floorf");
      rnd_open(e, t);
      ex2(e, "(", x->a, ") / (", x->b, ")))");
    } else {
      const char *fn = x->op == KX_MOD   ? (dbl ? "nn_fmodd" : "nn_fmodf")
                       : x->op == KX_MIN ? (dbl ? "nn_dmin" : "nn_fmin")
                       : x->op == KX_MAX ? (dbl ? "nn_dmax" : "nn_fmax")
                                         : (dbl ? "pow" : "powf");
      nn_buf_printf(e->b, "%s", fn);
      ex2(e, "(", x->a, ", ", x->b, ")");
    }
    nn_buf_printf(e->b, ")");
    return;
  }
  static const char *const fns[] =
      {[KX_ADD] = "nn_add",  [KX_SUB] = "nn_sub",           [KX_MUL] = "nn_mul",
       [KX_DIV] = "nn_div",  [KX_FLOORDIV] = "nn_floordiv", [KX_MOD] = "nn_mod",
       [KX_MIN] = "nn_imin", [KX_MAX] = "nn_imax",          [KX_POW] = "nn_ipow"};
  wrap_open(e, t);
  nn_buf_printf(e->b, "%s", fns[x->op]);
  ex2(e, "(", x->a, ", ", x->b, ")");
  wrap_close(e, t);
}

static void ex(em *e, kx_id id) {
  if (e->err) return;
  if (id < 0 || id >= e->k->exprs.len || (long)e->b->len > e->budget) {
    e->err = true;
    return;
  }
  const kx *x = &e->k->exprs.data[id];
  switch (x->op) {
  case KX_CONST:
    if (is_f(x->dtype))
      print_fconst(e, x->dtype, x->f);
    else
      print_iconst(e, x->i);
    return;
  case KX_VAR: nn_buf_printf(e->b, "v%d", x->var); return;
  case KX_LOAD: ex_load(e, x); return;
  case KX_CAST: ex_cast(e, x); return;
  case KX_NOT:
    nn_buf_printf(e->b, "(i64)(0 == (");
    ex(e, x->a);
    nn_buf_printf(e->b, "))");
    return;
  case KX_SELECT:
    ex2(e, "((", x->a, ") ? (", x->b, ") : (");
    ex(e, x->c);
    nn_buf_printf(e->b, "))");
    return;
  case KX_EQ:
  case KX_NE:
  case KX_LT:
  case KX_LE:
  case KX_GT:
  case KX_GE: {
    static const char *const ops[] = {[KX_EQ] = ") == (", [KX_NE] = ") != (", [KX_LT] = ") < (",
                                      [KX_LE] = ") <= (", [KX_GT] = ") > (",  [KX_GE] = ") >= ("};
    ex2(e, "(i64)((", x->a, ops[x->op], x->b, "))");
    return;
  }
  case KX_AND:
  case KX_OR:
    ex2(e, "(i64)((0 != (", x->a, x->op == KX_AND ? ")) && (0 != (" : ")) || (0 != (", x->b, ")))");
    return;
  default: break;
  }
  if (x->op >= KX_NEG && x->op <= KX_ROUND)
    ex_unary(e, x);
  else if (x->op >= KX_ADD && x->op <= KX_POW)
    ex_binary(e, x);
  else
    e->err = true;
}

/* ---- statements -------------------------------------------------------------- */

static void indent(em *e, int depth) { nn_buf_printf(e->b, "%*s", 2 * depth, ""); }

/* The store of value expression (printer callback below) into buf[idx]. */
static void store_open(em *e, int32_t buf) {
  nn_dtype bt = e->k->bufs.data[buf].dtype;
  nn_buf_printf(e->b, "%s(",
                bt == NN_DT_F16    ? "nn_f2h((float)"
                : bt == NN_DT_BF16 ? "nn_f2b((float)"
                : bt == NN_DT_BOOL ? "(unsigned char)(0 != "
                                   : "");
  if (bt != NN_DT_F16 && bt != NN_DT_BF16 && bt != NN_DT_BOOL)
    nn_buf_printf(e->b, "(%s)(", elem(bt));
}
static void store_close(em *e) { nn_buf_printf(e->b, "))"); }

static void stmts(em *e, const ks_id *ids, int n, int depth);

/* The element index of operand x ('a' or 'b') at [row, col] for its
 * layout: the strides xrs_ and xcs_, or (panel > 0) panels of `panel`
 * entries of index p (rows of A, columns of B) K deep (kernel.h). */
static void operand_index(em *e, char x, int panel, const char *p, const char *k, const char *row,
                          const char *col) {
  if (panel > 0)
    nn_buf_printf(e->b, "%co_ + (%s / %d) * (%d * K_) + %s * %d + %s %% %d", x, p, panel, panel, k,
                  panel, p, panel);
  else
    nn_buf_printf(e->b, "%co_ + %s * %crs_ + %s * %ccs_", x, row, x, col, x);
}

/* The conversion to float of an element of GEMM operand buffer buf (f32,
 * f16 or bf16), opened here and closed by "])" after the index: e.g.
 * "nn_h2f(s3[". */
static void opload(em *e, int32_t buf) {
  nn_dtype t = e->k->bufs.data[buf].dtype;
  nn_buf_printf(e->b, "%s(s%d[",
                t == NN_DT_F16    ? "nn_h2f"
                : t == NN_DT_BF16 ? "nn_b2f"
                                  : "(float)",
                buf);
}

/* The element index of A[m, k] (B[k, n]). */
static void a_index(em *e, const ks_gemm *g, const char *m, const char *k) {
  operand_index(e, 'a', g->a_panel, m, k, m, k);
}
static void b_index(em *e, const ks_gemm *g, const char *k, const char *n) {
  operand_index(e, 'b', g->b_panel, n, k, k, n);
}

/* The local variables of a printed GEMM, in gemm_vars' order: sizes and
 * offsets from GV_M, strides of A, B and C from GV_ARS, the bias's offset
 * and strides from GV_BIAS. */
enum { GV_M = 0, GV_ARS = 6, GV_BIAS = 11, GV_COUNT = 14 };

/* Prints `name = expression`, comma-separated, for the GEMM variables
 * [first, end). */
static void gemm_vars(em *e, const ks_gemm *g, int first, int end) {
  static const char *const names[GV_COUNT] = {"M_",   "N_",     "K_",      "ao_",    "bo_",
                                              "co_",  "ars_",   "acs_",    "brs_",   "bcs_",
                                              "ldc_", "biaso_", "biasrs_", "biascs_"};
  const kx_id ids[GV_COUNT] = {g->m,     g->n,        g->k,       g->a_off,  g->b_off,
                               g->c_off, g->a_rs,     g->a_cs,    g->b_rs,   g->b_cs,
                               g->ldc,   g->bias_off, g->bias_rs, g->bias_cs};
  for (int i = first; i < end; i++) {
    nn_buf_printf(e->b, "%s%s = ", i > first ? ", " : "", names[i]);
    ex(e, ids[i]);
  }
}

/* The end of a GEMM element at m_, n_ (its sum over k in acc_), at depth:
 * alpha, bias, accumulation and epilogue, then the store to C. `ci` is the
 * declaration of the element's index ("i64" or "const i64"). */
static void gemm_finish(em *e, const ks_gemm *g, int depth, const char *ci) {
  indent(e, depth);
  nn_buf_printf(e->b, "float r_ = (float)%.17g * acc_;\n", (double)g->alpha);
  if (g->bias >= 0) {
    indent(e, depth);
    nn_buf_printf(e->b, "r_ += (float)%.17g * ", (double)g->beta);
    opload(e, g->bias);
    nn_buf_printf(e->b, "biaso_ + n_ * biascs_ + m_ * biasrs_]);\n");
  }
  indent(e, depth);
  nn_buf_printf(e->b, "%s ci_ = co_ + m_ * ldc_ + n_;\n", ci);
  if (g->accumulate) {
    indent(e, depth);
    nn_buf_printf(e->b, "r_ += (float)s%d[ci_];\n", g->c);
  }
  if (g->epilogue) {
    indent(e, depth);
    nn_buf_printf(e->b, "v%d = r_; v%d = ci_;\n", g->ep_acc, g->ep_idx);
    indent(e, depth);
    nn_buf_printf(e->b, "r_ = ");
    ex(e, g->ep);
    nn_buf_printf(e->b, ";\n");
  }
  indent(e, depth);
  nn_buf_printf(e->b, "s%d[ci_] = r_;\n", g->c);
}

/* A GEMM as plain loops on one thread (its definition in kernel.h). */
static void gemm_loops(em *e, const ks_gemm *g, int depth) {
  indent(e, depth);
  nn_buf_printf(e->b, "{\n");
  indent(e, depth + 1);
  nn_buf_printf(e->b, "i64 ");
  gemm_vars(e, g, GV_M, GV_ARS);
  nn_buf_printf(e->b, ",\n");
  indent(e, depth + 3);
  gemm_vars(e, g, GV_ARS, GV_BIAS);
  if (g->bias >= 0) {
    nn_buf_printf(e->b, ", ");
    gemm_vars(e, g, GV_BIAS, GV_COUNT);
  }
  nn_buf_printf(e->b, ";\n");
  indent(e, depth + 1);
  nn_buf_printf(e->b, "for (i64 m_ = 0; m_ < M_; m_++)\n");
  indent(e, depth + 1);
  nn_buf_printf(e->b, "for (i64 n_ = 0; n_ < N_; n_++) {\n");
  indent(e, depth + 2);
  nn_buf_printf(e->b, "float acc_ = 0;\n");
  indent(e, depth + 2);
  nn_buf_printf(e->b, "for (i64 k_ = 0; k_ < K_; k_++) acc_ += ");
  opload(e, g->a);
  a_index(e, g, "m_", "k_");
  nn_buf_printf(e->b, "]) * ");
  opload(e, g->b);
  b_index(e, g, "k_", "n_");
  nn_buf_printf(e->b, "]);\n");
  gemm_finish(e, g, depth + 2, "i64");
  indent(e, depth + 1);
  nn_buf_printf(e->b, "}\n");
  indent(e, depth);
  nn_buf_printf(e->b, "}\n");
}

static void stmt(em *e, ks_id id, int depth) {
  const ks *s = &e->k->stmts.data[id];
  switch (s->kind) {
  case KS_FOR:
    indent(e, depth);
    nn_buf_printf(e->b, "for (i64 lo%d_ = ", id);
    ex(e, s->lo);
    nn_buf_printf(e->b, ", hi%d_ = ", id);
    ex(e, s->hi);
    nn_buf_printf(e->b, ", i%d_ = lo%d_; i%d_ < hi%d_; i%d_++) {\n", id, id, id, id, id);
    indent(e, depth + 1);
    nn_buf_printf(e->b, "v%d = i%d_;\n", s->var, id);
    stmts(e, s->body, s->nbody, depth + 1);
    indent(e, depth);
    nn_buf_printf(e->b, "}\n");
    return;
  case KS_LET:
    indent(e, depth);
    nn_buf_printf(e->b, "v%d = ", s->var);
    ex(e, s->val);
    nn_buf_printf(e->b, ";\n");
    return;
  case KS_STORE:
    indent(e, depth);
    nn_buf_printf(e->b, "s%d[", s->buf);
    ex(e, s->idx);
    nn_buf_printf(e->b, "] = ");
    store_open(e, s->buf);
    ex(e, s->val);
    store_close(e);
    nn_buf_printf(e->b, ";\n");
    return;
  case KS_IF:
    indent(e, depth);
    nn_buf_printf(e->b, "if (");
    ex(e, s->cond);
    nn_buf_printf(e->b, ") {\n");
    stmts(e, s->body, s->nbody, depth + 1);
    if (s->nels) {
      indent(e, depth);
      nn_buf_printf(e->b, "} else {\n");
      stmts(e, s->els, s->nels, depth + 1);
    }
    indent(e, depth);
    nn_buf_printf(e->b, "}\n");
    return;
  case KS_GEMM: gemm_loops(e, &s->gemm, depth); return;
  case KS_CHECK:
    indent(e, depth);
    nn_buf_printf(e->b, "if (!(");
    ex(e, s->cond);
    nn_buf_printf(e->b, ")) nn_check_fail(s%d, %d, ", s->buf, s->var);
    ex(e, s->val);
    nn_buf_printf(e->b, ", ");
    ex(e, s->idx);
    nn_buf_printf(e->b, ");\n");
    return;
  }
}

static void stmts(em *e, const ks_id *ids, int n, int depth) {
  for (int i = 0; i < n && !e->err; i++) stmt(e, ids[i], depth);
}

/* ---- kernels ------------------------------------------------------------------- */

/* The form of kernel k and, for GEMM, the GEMM statement and the batch
 * loop (or -1). */
static int form_of(const kernel *k, ks_id *gemm, ks_id *batch) {
  *gemm = -1;
  *batch = -1;
  if (k->root.len != 1) return NNCC_CU_SERIAL;
  const ks *r = &k->stmts.data[k->root.data[0]];
  if (r->kind == KS_GEMM) {
    *gemm = k->root.data[0];
    return NNCC_CU_GEMM;
  }
  if (r->kind != KS_FOR || !(r->flags & KS_PARALLEL)) return NNCC_CU_SERIAL;
  if (r->nbody == 1 && k->stmts.data[r->body[0]].kind == KS_GEMM) {
    *gemm = r->body[0];
    *batch = k->root.data[0];
    return NNCC_CU_GEMM;
  }
  return NNCC_CU_PAR;
}

/* Appends the postfix program of kernel expression x (I64 constants, dims
 * loads, + - * / // % min max); false when x has anything else. */
typedef NN_VEC(int64_t) progvec;
static bool enc_kx(nn_arena *a, progvec *v, const kernel *k, kx_id id, int depth) {
  if (id < 0 || id >= k->exprs.len || depth > 14) return false;
  const kx *x = &k->exprs.data[id];
  int op;
  switch (x->op) {
  case KX_CONST:
    if (is_f(x->dtype)) return false;
    NN_PUSH(a, *v, NNCC_CU_CONST);
    NN_PUSH(a, *v, x->i);
    return true;
  case KX_LOAD: {
    if (x->buf != k->dims_slot) return false;
    const kx *ix = x->a >= 0 && x->a < k->exprs.len ? &k->exprs.data[x->a] : NULL;
    if (!ix || ix->op != KX_CONST) return false;
    NN_PUSH(a, *v, NNCC_CU_DIM);
    NN_PUSH(a, *v, ix->i);
    return true;
  }
  case KX_ADD: op = NNCC_CU_ADD; break;
  case KX_SUB: op = NNCC_CU_SUB; break;
  case KX_MUL: op = NNCC_CU_MUL; break;
  case KX_DIV: op = NNCC_CU_DIV; break;
  case KX_FLOORDIV: op = NNCC_CU_FLOORDIV; break;
  case KX_MOD: op = NNCC_CU_MOD; break;
  case KX_MIN: op = NNCC_CU_MIN; break;
  case KX_MAX: op = NNCC_CU_MAX; break;
  default: return false;
  }
  if (is_f(x->dtype)) return false;
  if (!enc_kx(a, v, k, x->a, depth + 1) || !enc_kx(a, v, k, x->b, depth + 1)) return false;
  NN_PUSH(a, *v, op);
  NN_PUSH(a, *v, 0);
  return true;
}

/* Appends program v, ended, to m's programs; returns where it starts. */
static int32_t prog_append(nn_arena *a, cuda_module *m, const progvec *v) {
  int32_t at = m->prog.len;
  for (int i = 0; i < v->len; i++) NN_PUSH(a, m->prog, v->data[i]);
  NN_PUSH(a, m->prog, NNCC_CU_END);
  NN_PUSH(a, m->prog, 0);
  return at;
}

/* A program for hi - lo of kernel expressions (lo may be -1: none). */
static int32_t prog_kx(nn_arena *a, cuda_module *m, const kernel *k, kx_id lo, kx_id hi) {
  progvec v = {0};
  bool ok = enc_kx(a, &v, k, hi, 0);
  if (ok && lo >= 0) {
    ok = enc_kx(a, &v, k, lo, 0);
    NN_PUSH(a, v, NNCC_CU_SUB);
    NN_PUSH(a, v, 0);
  }
  if (!ok) return -1;
  return prog_append(a, m, &v);
}

/* A program for dim d of p's graph. */
static bool enc_dim(nn_arena *a, progvec *v, const kp_program *p, ir_dim d, int depth) {
  if (!p->g || depth > 30) return false;
  int64_t c;
  if (ir_dim_is_const(p->g, d, &c)) {
    NN_PUSH(a, *v, NNCC_CU_CONST);
    NN_PUSH(a, *v, c);
    return true;
  }
  const ir_dimexpr *x = ir_dim_get(p->g, d);
  if (x->kind == IR_DK_SYM) {
    for (int i = 0; i < p->syms.len; i++)
      if (p->syms.data[i].dim == d) {
        NN_PUSH(a, *v, NNCC_CU_DIM);
        NN_PUSH(a, *v, i);
        return true;
      }
    return false;
  }
  int op = x->kind == IR_DK_ADD        ? NNCC_CU_ADD
           : x->kind == IR_DK_MUL      ? NNCC_CU_MUL
           : x->kind == IR_DK_DIV      ? NNCC_CU_DIV
           : x->kind == IR_DK_FLOORDIV ? NNCC_CU_FLOORDIV
           : x->kind == IR_DK_MOD      ? NNCC_CU_MOD
                                       : -1;
  if (op < 0) return false;
  if (!enc_dim(a, v, p, x->a, depth + 1) || !enc_dim(a, v, p, x->b, depth + 1)) return false;
  NN_PUSH(a, *v, op);
  NN_PUSH(a, *v, 0);
  return true;
}

static int32_t prog_dim(nn_arena *a, cuda_module *m, const kp_program *p, const kp_buf *b) {
  progvec v = {0};
  if (b->elems >= 0) {
    NN_PUSH(a, v, NNCC_CU_CONST);
    NN_PUSH(a, v, b->elems);
  } else if (!enc_dim(a, &v, p, b->elems_d, 0)) {
    return -1;
  }
  return prog_append(a, m, &v);
}

/* A C identifier for kernel k. */
static const char *kname(nn_arena *a, const kernel *k) {
  char *s = nn_sprintf(a, "nncc_%s", k->name ? k->name : "k");
  for (char *c = s; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
      *c = '_';
  return s;
}

static void kernel_head(em *e, const char *name) {
  const kernel *k = e->k;
  nn_buf_printf(e->b, "extern \"C\" __global__ void %s(struct nncc_cu_args A) {\n", name);
  for (int i = 0; i < k->bufs.len; i++)
    nn_buf_printf(e->b, "  %s%s *__restrict__ s%d = (%s%s *)A.p[%d]; /* %s */\n",
                  k->bufs.data[i].written ? "" : "const ", elem(k->bufs.data[i].dtype), i,
                  k->bufs.data[i].written ? "" : "const ", elem(k->bufs.data[i].dtype), i,
                  k->bufs.data[i].name ? k->bufs.data[i].name : "");
  for (int i = 0; i < k->vars.len; i++)
    nn_buf_printf(e->b, "  %s v%d = 0;\n", held(k->vars.data[i]), i);
  for (int i = 0; i < k->vars.len; i++) nn_buf_printf(e->b, "  (void)v%d;\n", i);
}

/* Whether GEMM g runs on tensor cores (wmma): f16 operands, an f32 C. */
static bool gemm_tc(const kernel *k, const ks_gemm *g) {
  return k->bufs.data[g->a].dtype == NN_DT_F16 && k->bufs.data[g->b].dtype == NN_DT_F16 &&
         k->bufs.data[g->c].dtype == NN_DT_F32;
}

/* The tile loop of a tensor-core GEMM (gemm_kernel, tc): the block's 8
 * warps take 16-deep K slices in turn (warp w the slices w, w + 8, ...),
 * each staging its 16x16 A and B slices as half in shared memory (zeros
 * outside the matrices) and multiplying them into a 16x16 f32 accumulator
 * fragment with wmma; the fragments go to shared memory, and each thread
 * sums its element of C over the warps in order and finishes it (alpha,
 * bias, epilogue) as the other GEMM forms do. */
static void gemm_tc_tile(em *e, const ks_gemm *g, int d) {
  nn_buf *b = e->b;
  indent(e, d);
  nn_buf_printf(b, "nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> fc_;\n");
  indent(e, d);
  nn_buf_printf(b, "nvcuda::wmma::fill_fragment(fc_, 0.0f);\n");
  indent(e, d);
  nn_buf_printf(b, "for (i64 kb_ = 0; kb_ < K_; kb_ += 128) {\n");
  indent(e, d + 1);
  nn_buf_printf(b, "const i64 k0_ = kb_ + 16 * w_;\n");
  indent(e, d + 1);
  nn_buf_printf(b, "for (int x_ = l_; x_ < 256; x_ += 32) {\n");
  indent(e, d + 2);
  nn_buf_printf(b, "const i64 r_ = x_ >> 4, c_ = x_ & 15, am_ = m0_ + r_, ak_ = k0_ + c_, "
                   "bk_ = k0_ + r_, bn_ = n0_ + c_;\n");
  indent(e, d + 2);
  nn_buf_printf(b, "((unsigned short *)Ah_[w_])[x_] = am_ < M_ && ak_ < K_ ? s%d[", g->a);
  a_index(e, g, "am_", "ak_");
  nn_buf_printf(b, "] : (unsigned short)0;\n");
  indent(e, d + 2);
  nn_buf_printf(b, "((unsigned short *)Bh_[w_])[x_] = bk_ < K_ && bn_ < N_ ? s%d[", g->b);
  b_index(e, g, "bk_", "bn_");
  nn_buf_printf(b, "] : (unsigned short)0;\n");
  indent(e, d + 1);
  nn_buf_printf(b, "}\n");
  indent(e, d + 1);
  nn_buf_printf(b, "__syncthreads();\n");
  indent(e, d + 1);
  nn_buf_printf(b, "nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, "
                   "nvcuda::wmma::row_major> fa_;\n");
  indent(e, d + 1);
  nn_buf_printf(b, "nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __half, "
                   "nvcuda::wmma::row_major> fb_;\n");
  indent(e, d + 1);
  nn_buf_printf(b, "nvcuda::wmma::load_matrix_sync(fa_, Ah_[w_], 16);\n");
  indent(e, d + 1);
  nn_buf_printf(b, "nvcuda::wmma::load_matrix_sync(fb_, Bh_[w_], 16);\n");
  indent(e, d + 1);
  nn_buf_printf(b, "nvcuda::wmma::mma_sync(fc_, fa_, fb_, fc_);\n");
  indent(e, d + 1);
  nn_buf_printf(b, "__syncthreads();\n");
  indent(e, d);
  nn_buf_printf(b, "}\n");
  indent(e, d);
  nn_buf_printf(b, "nvcuda::wmma::store_matrix_sync(Cw_[w_], fc_, 16, "
                   "nvcuda::wmma::mem_row_major);\n");
  indent(e, d);
  nn_buf_printf(b, "__syncthreads();\n");
  indent(e, d);
  nn_buf_printf(b, "const i64 m_ = m0_ + ty_, n_ = n0_ + tx_;\n");
  indent(e, d);
  nn_buf_printf(b, "float acc_ = Cw_[0][ty_ * 16 + tx_];\n");
  indent(e, d);
  nn_buf_printf(b, "for (int q_ = 1; q_ < 8; q_++) acc_ += Cw_[q_][ty_ * 16 + tx_];\n");
  indent(e, d);
  nn_buf_printf(b, "if (m_ < M_ && n_ < N_) {\n");
  gemm_finish(e, g, d + 1, "const i64");
  indent(e, d);
  nn_buf_printf(b, "}\n");
  indent(e, d);
  nn_buf_printf(b, "__syncthreads();\n");
}

/* The body of a GEMM-form kernel: tiles of TILE x TILE elements of C, one
 * per block (grid-stride), with the A and B slices staged through shared
 * memory; on tensor cores when tc (gemm_tc_tile). */
static void gemm_kernel(em *e, const ks_gemm *g, const ks *batch, bool tc) {
  nn_buf *b = e->b;
  int T = NNCC_CU_TILE;
  if (tc)
    nn_buf_printf(b, "  __shared__ __align__(32) __half Ah_[8][256], Bh_[8][256];\n"
                     "  __shared__ __align__(32) float Cw_[8][256];\n");
  else
    nn_buf_printf(b, "  __shared__ float As_[%d][%d], Bs_[%d][%d];\n", T, T + 1, T, T + 1);
  nn_buf_printf(b, "  const i64 tx_ = threadIdx.x, ty_ = threadIdx.y;\n");
  if (tc) /* warp and lane */
    nn_buf_printf(b,
                  "  const int w_ = (int)(ty_ * %d + tx_) >> 5, "
                  "l_ = (int)(ty_ * %d + tx_) & 31;\n",
                  T, T);
  int depth = 1;
  if (batch) {
    nn_buf_printf(b, "  for (i64 lo_ = ");
    ex(e, batch->lo);
    nn_buf_printf(b, ", hi_ = ");
    ex(e, batch->hi);
    nn_buf_printf(b, ", z_ = lo_ + blockIdx.z; z_ < hi_; z_ += gridDim.z) {\n");
    nn_buf_printf(b, "    v%d = z_;\n", batch->var);
    depth = 2;
  }
  indent(e, depth);
  nn_buf_printf(b, "i64 ");
  gemm_vars(e, g, GV_M, GV_BIAS);
  nn_buf_printf(b, ";\n");
  if (g->bias >= 0) {
    indent(e, depth);
    nn_buf_printf(b, "i64 ");
    gemm_vars(e, g, GV_BIAS, GV_COUNT);
    nn_buf_printf(b, ";\n");
  }
  indent(e, depth);
  nn_buf_printf(b, "for (i64 m0_ = (i64)blockIdx.y * %d; m0_ < M_; m0_ += (i64)gridDim.y * %d)\n",
                T, T);
  indent(e, depth);
  nn_buf_printf(b, "for (i64 n0_ = (i64)blockIdx.x * %d; n0_ < N_; n0_ += (i64)gridDim.x * %d) {\n",
                T, T);
  int d = depth + 1;
  if (tc) {
    gemm_tc_tile(e, g, d);
  } else {
    indent(e, d);
    nn_buf_printf(b, "const i64 m_ = m0_ + ty_, n_ = n0_ + tx_;\n");
    indent(e, d);
    nn_buf_printf(b, "float acc_ = 0;\n");
    indent(e, d);
    nn_buf_printf(b, "for (i64 k0_ = 0; k0_ < K_; k0_ += %d) {\n", T);
    indent(e, d + 1);
    nn_buf_printf(b, "const i64 ka_ = k0_ + tx_, kb_ = k0_ + ty_;\n");
    indent(e, d + 1);
    nn_buf_printf(b, "As_[ty_][tx_] = m_ < M_ && ka_ < K_ ? ");
    opload(e, g->a);
    a_index(e, g, "m_", "ka_");
    nn_buf_printf(b, "]) : 0.0f;\n");
    indent(e, d + 1);
    nn_buf_printf(b, "Bs_[ty_][tx_] = kb_ < K_ && n_ < N_ ? ");
    opload(e, g->b);
    b_index(e, g, "kb_", "n_");
    nn_buf_printf(b, "]) : 0.0f;\n");
    indent(e, d + 1);
    nn_buf_printf(b, "__syncthreads();\n");
    indent(e, d + 1);
    nn_buf_printf(b, "const int kn_ = K_ - k0_ < %d ? (int)(K_ - k0_) : %d;\n", T, T);
    indent(e, d + 1);
    nn_buf_printf(b, "for (int kk_ = 0; kk_ < kn_; kk_++) "
                     "acc_ += As_[ty_][kk_] * Bs_[kk_][tx_];\n");
    indent(e, d + 1);
    nn_buf_printf(b, "__syncthreads();\n");
    indent(e, d);
    nn_buf_printf(b, "}\n");
    indent(e, d);
    nn_buf_printf(b, "if (m_ < M_ && n_ < N_) {\n");
    gemm_finish(e, g, d + 1, "const i64");
    indent(e, d);
    nn_buf_printf(b, "}\n");
  }
  indent(e, depth);
  nn_buf_printf(b, "}\n");
  if (batch) nn_buf_printf(b, "  }\n");
}

/* ---- the row form: reductions spread over a block ------------------------------ */

/* Whether expression id reads variable v. */
static bool uses_var_walk(em *e, kx_id id, int32_t v) {
  if (id < 0 || id >= e->k->exprs.len || e->mark[id] == e->walk) return false;
  e->mark[id] = e->walk;
  const kx *x = &e->k->exprs.data[id];
  if (x->op == KX_VAR) return x->var == v;
  return uses_var_walk(e, x->a, v) || uses_var_walk(e, x->b, v) || uses_var_walk(e, x->c, v);
}
static bool uses_var(em *e, kx_id id, int32_t v) {
  if (!e->mark) e->mark = nn_alloc(e->a, sizeof *e->mark * (size_t)(e->k->exprs.len + 1));
  if (e->walk == 0) memset(e->mark, 0xff, sizeof *e->mark * (size_t)(e->k->exprs.len + 1));
  e->walk++;
  return uses_var_walk(e, id, v);
}

#define RED_MAX_DEPTH 8
/* A parallel loop becomes the row form when some reduction of its body
 * runs at least this many iterations (or a symbolic count). */
#define ROW_MIN 16

/* A reduction nest: perfectly nested KS_REDUCE loops (bounds independent of
 * the nest's own variables) around LETs acc = acc op x, op + max or min, acc
 * of a held type the block reductions know (f32, f64, i64), x free of every
 * accumulator of the nest. */
typedef struct rednest {
  int depth; /* loops */
  const ks *loop[RED_MAX_DEPTH];
  const ks_id *lets; /* the innermost body */
  int nlets;
  int64_t total; /* iterations when constant, else -1 */
} rednest;

/* The op of accumulation LET s (KX_ADD/MAX/MIN), or -1. */
static int acc_op(em *e, const ks *s) {
  const kernel *k = e->k;
  nn_dtype t = k->vars.data[s->var];
  if (t != NN_DT_F32 && t != NN_DT_F64 && t != NN_DT_I64) return -1;
  const kx *x = &k->exprs.data[s->val];
  if ((x->op != KX_ADD && x->op != KX_MAX && x->op != KX_MIN) || x->dtype != t) return -1;
  const kx *a = &k->exprs.data[x->a], *b = &k->exprs.data[x->b];
  kx_id other = a->op == KX_VAR && a->var == s->var   ? x->b
                : b->op == KX_VAR && b->var == s->var ? x->a
                                                      : -1;
  if (other < 0 || uses_var(e, other, s->var)) return -1;
  return x->op;
}

/* Fills r when the REDUCE loop `id` heads a reduction nest. */
static bool red_nest(em *e, ks_id id, rednest *r) {
  const kernel *k = e->k;
  memset(r, 0, sizeof *r);
  r->total = 1;
  const ks *s = &k->stmts.data[id];
  for (;;) {
    if (s->kind != KS_FOR || !(s->flags & KS_REDUCE) || r->depth == RED_MAX_DEPTH) return false;
    for (int i = 0; i < r->depth; i++)
      if (uses_var(e, s->lo, r->loop[i]->var) || uses_var(e, s->hi, r->loop[i]->var)) return false;
    r->loop[r->depth++] = s;
    const kx *lo = &k->exprs.data[s->lo], *hi = &k->exprs.data[s->hi];
    if (r->total >= 0 && lo->op == KX_CONST && hi->op == KX_CONST)
      r->total *= hi->i > lo->i ? hi->i - lo->i : 0;
    else
      r->total = -1;
    if (s->nbody == 1 && k->stmts.data[s->body[0]].kind == KS_FOR) {
      s = &k->stmts.data[s->body[0]];
      continue;
    }
    break;
  }
  r->lets = s->body;
  r->nlets = s->nbody;
  if (s->nbody == 0) return false;
  for (int i = 0; i < s->nbody; i++) {
    const ks *l = &k->stmts.data[s->body[i]];
    if (l->kind != KS_LET || acc_op(e, l) < 0) return false;
    for (int j = 0; j < s->nbody; j++) {
      const ks *o = &k->stmts.data[s->body[j]];
      if (o->kind != KS_LET) return false;
      if (j != i && (o->var == l->var || uses_var(e, o->val, l->var))) return false;
    }
    for (int j = 0; j < r->depth; j++)
      if (r->loop[j]->var == l->var) return false;
  }
  return true;
}

/* Whether statements ids run as a row: uniform LETs, loops and IFs (all
 * threads alike), row-level STOREs (thread 0), reduction nests (strided,
 * then combined) and loops of independent iterations (strided). Counts the
 * nests in *nred and keeps the largest constant iteration count in *most
 * (-1 when some nest's is symbolic). */
static bool row_ok(em *e, const ks_id *ids, int n, int *nred, int64_t *most) {
  for (int i = 0; i < n; i++) {
    const ks *s = &e->k->stmts.data[ids[i]];
    rednest r;
    switch (s->kind) {
    case KS_LET:
    case KS_CHECK: /* every thread checks; the first failure is kept */
    case KS_STORE: break;
    case KS_GEMM: return false;
    case KS_IF:
      if (!row_ok(e, s->body, s->nbody, nred, most) || !row_ok(e, s->els, s->nels, nred, most))
        return false;
      break;
    case KS_FOR:
      if (s->flags & KS_REDUCE) {
        if (!red_nest(e, ids[i], &r)) return false;
        (*nred)++;
        if (r.total < 0 || *most < 0)
          *most = -1;
        else if (r.total > *most)
          *most = r.total;
      } else if (!(s->flags & (KS_VECTOR | KS_PARALLEL))) {
        if (!row_ok(e, s->body, s->nbody, nred, most)) return false;
      }
      break;
    }
  }
  return true;
}

static void row_stmts(em *e, const ks_id *ids, int n, int depth);

/* A reduction nest (red_nest) over the block: each thread sums its share
 * of the flattened iterations from the op's identity, the block combines
 * the partials, and the accumulator's value before the nest joins last. */
static void row_reduce(em *e, const rednest *r, int depth, int id) {
  const kernel *k = e->k;
  nn_buf *b = e->b;
  indent(e, depth);
  nn_buf_printf(b, "{ /* reduction over the block */\n");
  for (int i = 0; i < r->nlets; i++) {
    const ks *l = &k->stmts.data[r->lets[i]];
    nn_dtype t = k->vars.data[l->var];
    int op = acc_op(e, l);
    const char *ident = op == KX_ADD     ? "0"
                        : t == NN_DT_I64 ? (op == KX_MAX ? "NN_I64_MIN" : "9223372036854775807LL")
                        : op == KX_MAX   ? "-nn_inf()"
                                         : "nn_inf()";
    indent(e, depth + 1);
    nn_buf_printf(b, "const %s r%d_ = v%d; v%d = %s;\n", held(t), i, l->var, l->var, ident);
  }
  for (int i = 0; i < r->depth; i++) {
    indent(e, depth + 1);
    nn_buf_printf(b, "const i64 lo%d_%d_ = ", id, i);
    ex(e, r->loop[i]->lo);
    nn_buf_printf(b, ", hi%d_%d_ = ", id, i);
    ex(e, r->loop[i]->hi);
    nn_buf_printf(b, ", n%d_%d_ = hi%d_%d_ > lo%d_%d_ ? hi%d_%d_ - lo%d_%d_ : 0;\n", id, i, id, i,
                  id, i, id, i, id, i);
  }
  indent(e, depth + 1);
  nn_buf_printf(b, "const i64 nf%d_ = ", id);
  for (int i = 0; i < r->depth; i++) nn_buf_printf(b, "%sn%d_%d_", i ? " * " : "", id, i);
  nn_buf_printf(b, ";\n");
  indent(e, depth + 1);
  nn_buf_printf(b, "for (i64 f_ = threadIdx.x; f_ < nf%d_; f_ += blockDim.x) {\n", id);
  indent(e, depth + 2);
  nn_buf_printf(b, "i64 q_ = f_;\n");
  for (int i = r->depth - 1; i >= 0; i--) {
    indent(e, depth + 2);
    if (i > 0)
      nn_buf_printf(b, "v%d = lo%d_%d_ + q_ %% n%d_%d_; q_ /= n%d_%d_;\n", r->loop[i]->var, id, i,
                    id, i, id, i);
    else
      nn_buf_printf(b, "v%d = lo%d_0_ + q_;\n", r->loop[0]->var, id);
  }
  stmts(e, r->lets, r->nlets, depth + 2);
  indent(e, depth + 1);
  nn_buf_printf(b, "}\n");
  for (int i = 0; i < r->nlets; i++) {
    const ks *l = &k->stmts.data[r->lets[i]];
    nn_dtype t = k->vars.data[l->var];
    int op = acc_op(e, l);
    char c = (char)(t == NN_DT_F32 ? 'f' : t == NN_DT_F64 ? 'd' : 'i');
    const char *on = op == KX_ADD ? "add" : op == KX_MAX ? "max" : "min";
    const char *join = op == KX_ADD     ? (t == NN_DT_I64 ? "nn_add" : "NN_ADD_")
                       : t == NN_DT_I64 ? (op == KX_MAX ? "nn_imax" : "nn_imin")
                       : t == NN_DT_F64 ? (op == KX_MAX ? "nn_dmax" : "nn_dmin")
                       : op == KX_MAX   ? "nn_fmax"
                                        : "nn_fmin";
    indent(e, depth + 1);
    nn_buf_printf(b, "v%d = %s(r%d_, nn_red_%c_%s(v%d, (%s *)nn_sh_));\n", l->var, join, i, c, on,
                  l->var, held(t));
  }
  indent(e, depth);
  nn_buf_printf(b, "}\n");
}

static void row_stmt(em *e, ks_id id, int depth) {
  const ks *s = &e->k->stmts.data[id];
  nn_buf *b = e->b;
  rednest r;
  switch (s->kind) {
  case KS_LET:
  case KS_CHECK: stmt(e, id, depth); return;
  case KS_STORE:
    indent(e, depth);
    nn_buf_printf(b, "if (threadIdx.x == 0) {\n");
    stmt(e, id, depth + 1);
    indent(e, depth);
    nn_buf_printf(b, "}\n");
    indent(e, depth);
    nn_buf_printf(b, "__syncthreads();\n");
    return;
  case KS_IF:
    indent(e, depth);
    nn_buf_printf(b, "if (");
    ex(e, s->cond);
    nn_buf_printf(b, ") {\n");
    row_stmts(e, s->body, s->nbody, depth + 1);
    if (s->nels) {
      indent(e, depth);
      nn_buf_printf(b, "} else {\n");
      row_stmts(e, s->els, s->nels, depth + 1);
    }
    indent(e, depth);
    nn_buf_printf(b, "}\n");
    return;
  case KS_FOR: {
    if (s->flags & KS_REDUCE) {
      if (red_nest(e, id, &r))
        row_reduce(e, &r, depth, id);
      else
        e->err = true; /* row_ok accepted it */
      return;
    }
    bool strided = (s->flags & (KS_VECTOR | KS_PARALLEL)) != 0;
    indent(e, depth);
    nn_buf_printf(b, "for (i64 lo%d_ = ", id);
    ex(e, s->lo);
    nn_buf_printf(b, ", hi%d_ = ", id);
    ex(e, s->hi);
    if (strided)
      nn_buf_printf(b, ", i%d_ = lo%d_ + threadIdx.x; i%d_ < hi%d_; i%d_ += blockDim.x) {\n", id,
                    id, id, id, id);
    else
      nn_buf_printf(b, ", i%d_ = lo%d_; i%d_ < hi%d_; i%d_++) {\n", id, id, id, id, id);
    indent(e, depth + 1);
    nn_buf_printf(b, "v%d = i%d_;\n", s->var, id);
    if (strided)
      stmts(e, s->body, s->nbody, depth + 1);
    else
      row_stmts(e, s->body, s->nbody, depth + 1);
    indent(e, depth);
    nn_buf_printf(b, "}\n");
    if (strided) {
      indent(e, depth);
      nn_buf_printf(b, "__syncthreads();\n");
    }
    return;
  }
  case KS_GEMM: e->err = true; return;
  }
}

static void row_stmts(em *e, const ks_id *ids, int n, int depth) {
  for (int i = 0; i < n && !e->err; i++) row_stmt(e, ids[i], depth);
}

/* ---- float4 elementwise loops ---------------------------------------------------- */

/* Whether PAR root loop r can run 4 iterations per thread with float4
 * loads and stores: a VECTOR loop (of 4 iterations or more, or a count
 * known only at run time) whose body is LETs and STOREs into f32 buffers at
 * exactly the loop variable, none of them also loaded. Marks the
 * f32 buffers loaded at the loop variable in e->vec_load. */
static bool vec_ok(em *e, const ks *r) {
  const kernel *k = e->k;
  if (!(r->flags & KS_VECTOR) || r->nbody == 0) return false;
  int64_t lo, hi; /* fewer than 4 iterations known: no float4 form to take */
  if (k_const_i64(k, r->lo, &lo) && k_const_i64(k, r->hi, &hi) && hi - lo < 4) return false;
  bool stored[NNCC_CU_MAX_SLOTS] = {0};
  int nstores = 0;
  for (int i = 0; i < r->nbody; i++) {
    const ks *s = &k->stmts.data[r->body[i]];
    if (s->kind == KS_LET) continue;
    if (s->kind != KS_STORE || k->bufs.data[s->buf].dtype != NN_DT_F32) return false;
    const kx *ix = &k->exprs.data[s->idx];
    if (ix->op != KX_VAR || ix->var != r->var) return false;
    stored[s->buf] = true;
    nstores++;
  }
  memset(e->vec_load, 0, sizeof e->vec_load);
  for (int i = 0; i < k->exprs.len; i++) {
    const kx *x = &k->exprs.data[i];
    if (x->op != KX_LOAD) continue;
    if (stored[x->buf]) return false;
    const kx *ix = &k->exprs.data[x->a];
    if (k->bufs.data[x->buf].dtype == NN_DT_F32 && ix->op == KX_VAR && ix->var == r->var)
      e->vec_load[x->buf] = true;
  }
  return nstores > 0;
}

/* The body of a float4 PAR kernel (vec_ok): a float4 loop over the first
 * multiple of 4 iterations when lo_ and every float4 buffer are 16-byte
 * aligned, then the scalar grid-stride loop over the rest. */
static void vec_body(em *e, const ks *r) {
  const kernel *k = e->k;
  nn_buf *b = e->b;
  bool stored[NNCC_CU_MAX_SLOTS] = {0};
  for (int i = 0; i < r->nbody; i++) {
    const ks *s = &k->stmts.data[r->body[i]];
    if (s->kind == KS_STORE) stored[s->buf] = true;
  }
  nn_buf_printf(b, "  const i64 t_ = (i64)blockIdx.x * blockDim.x + threadIdx.x, "
                   "nt_ = (i64)gridDim.x * blockDim.x;\n  i64 e4_ = lo_;\n"
                   "  if (hi_ - lo_ >= 4 && (lo_ & 3) == 0 && ((0");
  for (int i = 0; i < k->bufs.len; i++)
    if (stored[i] || e->vec_load[i]) nn_buf_printf(b, " | (u64)s%d", i);
  nn_buf_printf(b, ") & 15) == 0) {\n    e4_ = lo_ + ((hi_ - lo_) & ~(i64)3);\n"
                   "    for (i64 it_ = lo_ + 4 * t_; it_ < e4_; it_ += 4 * nt_) {\n");
  for (int i = 0; i < k->bufs.len; i++) {
    if (e->vec_load[i])
      nn_buf_printf(b, "      const float4 l%d_ = *(const float4 *)(s%d + it_);\n", i, i);
    if (stored[i]) nn_buf_printf(b, "      float4 o%d_;\n", i);
  }
  e->vec_var = r->var;
  for (int lane = 0; lane < 4 && !e->err; lane++) {
    e->lane = lane;
    nn_buf_printf(b, "      v%d = it_ + %d;\n", r->var, lane);
    for (int i = 0; i < r->nbody; i++) {
      const ks *s = &k->stmts.data[r->body[i]];
      if (s->kind == KS_LET) {
        stmt(e, r->body[i], 3);
        continue;
      }
      nn_buf_printf(b, "      o%d_.%c = (float)(", s->buf, "xyzw"[lane]);
      ex(e, s->val);
      nn_buf_printf(b, ");\n");
    }
  }
  e->lane = -1;
  for (int i = 0; i < k->bufs.len; i++)
    if (stored[i]) nn_buf_printf(b, "      *(float4 *)(s%d + it_) = o%d_;\n", i, i);
  nn_buf_printf(b, "    }\n  }\n  for (i64 it_ = e4_ + t_; it_ < hi_; it_ += nt_) {\n");
  nn_buf_printf(b, "    v%d = it_;\n", r->var);
  stmts(e, r->body, r->nbody, 2);
  nn_buf_printf(b, "  }\n");
}

/* Emits kernel k as a __global__ function; fills its table entry. */
static int emit_kernel(const kp_program *p, cuda_module *m, nn_buf *b, const kernel *k,
                       nncc_cu_kernel *out, nn_diag *d) {
  nn_arena *a = p->arena;
  if (k->bufs.len > NNCC_CU_MAX_SLOTS) {
    nn_error(d, k->loc, "CUDA code generation: kernel '%s' has %d buffers (at most %d)", k->name,
             k->bufs.len, NNCC_CU_MAX_SLOTS);
    return -1;
  }
  for (int i = 0; i < k->bufs.len; i++)
    if (!elem(k->bufs.data[i].dtype)) {
      nn_error(d, k->loc, "CUDA code generation: kernel '%s' has a buffer of dtype %s", k->name,
               nn_dtype_name(k->bufs.data[i].dtype));
      return -1;
    }
  for (int i = 0; i < k->stmts.len; i++)
    if (k->stmts.data[i].kind == KS_GEMM) {
      const ks_gemm *g = &k->stmts.data[i].gemm;
      nn_dtype ta = k->bufs.data[g->a].dtype, tb = k->bufs.data[g->b].dtype;
      nn_dtype tbias = g->bias >= 0 ? k->bufs.data[g->bias].dtype : NN_DT_F32;
      bool ok = k->bufs.data[g->c].dtype == NN_DT_F32;
      ok &= ta == NN_DT_F32 || ta == NN_DT_F16 || ta == NN_DT_BF16;
      ok &= tb == NN_DT_F32 || tb == NN_DT_F16 || tb == NN_DT_BF16;
      ok &= tbias == NN_DT_F32 || tbias == NN_DT_F16 || tbias == NN_DT_BF16;
      if (!ok) {
        nn_error(d, k->loc,
                 "CUDA code generation: kernel '%s' has a GEMM over buffers of "
                 "other dtypes than f32, f16 and bf16 (C: f32)",
                 k->name);
        return -1;
      }
    }
  const char *name = kname(a, k);
  ks_id gemm, batch;
  int form = form_of(k, &gemm, &batch);
  em e = {.k = k, .b = b, .budget = (long)b->len + (64L << 20), .a = a, .lane = -1, .vec_var = -1};
  /* reductions: the row form when the rows are long enough (or there is
   * no parallel loop to spread) */
  const ks *root = k->root.len == 1 ? &k->stmts.data[k->root.data[0]] : NULL;
  int nred = 0;
  int64_t most = 0;
  bool row_par = false; /* the row form over the root parallel loop */
  if (form == NNCC_CU_PAR) {
    row_par = row_ok(&e, root->body, root->nbody, &nred, &most) && nred > 0 &&
              (most < 0 || most >= ROW_MIN);
    if (row_par) form = NNCC_CU_ROW;
  } else if (form == NNCC_CU_SERIAL && row_ok(&e, k->root.data, k->root.len, &nred, &most) &&
             nred > 0) {
    form = NNCC_CU_ROW;
  }
  bool vec = form == NNCC_CU_PAR && vec_ok(&e, root);
  bool tc = form == NNCC_CU_GEMM && gemm_tc(k, &k->stmts.data[gemm].gemm);
  int threads = most < 0 || most >= NNCC_CU_BLOCK ? NNCC_CU_BLOCK
                : most <= 32                      ? 32
                                                  : (int)((most + 31) / 32 * 32);
  *out = (nncc_cu_kernel){.name = name,
                          .form = form,
                          .sync = form == NNCC_CU_GEMM || form == NNCC_CU_ROW,
                          .trip = -1,
                          .m = -1,
                          .n = -1,
                          .threads = form == NNCC_CU_ROW ? threads : 0,
                          .vec = vec ? 4 : 1};
  NN_PUSH(a, m->tc, (unsigned char)tc); /* pushed with *out by the caller */
  if (tc && !m->wmma) {
    /* the header of the wmma API (not for the emulation, which has its own) */
    nn_buf_printf(b, "#ifndef NNCC_CUDA_EMU_H\n#include <mma.h>\n#include <cuda_fp16.h>\n"
                     "#endif\n");
    m->wmma = true;
  }
  nn_buf_printf(b, "/* %s: %s */\n", k->name,
                form == NNCC_CU_PAR    ? (vec ? "grid-stride over the parallel loop, float4"
                                              : "grid-stride over the parallel loop")
                : form == NNCC_CU_GEMM ? (tc ? "tiled GEMM, tensor-core GEMM (wmma)" : "tiled GEMM")
                : form == NNCC_CU_ROW  ? "a block per row, reductions over the block"
                                       : "one thread");
  kernel_head(&e, name);
  if (form == NNCC_CU_PAR) {
    const ks *r = root;
    nn_buf_printf(b, "  const i64 lo_ = ");
    ex(&e, r->lo);
    nn_buf_printf(b, ", hi_ = ");
    ex(&e, r->hi);
    nn_buf_printf(b, ";\n");
    if (vec) {
      vec_body(&e, r);
    } else {
      nn_buf_printf(b, "  for (i64 it_ = lo_ + (i64)blockIdx.x * blockDim.x + threadIdx.x; "
                       "it_ < hi_; it_ += (i64)gridDim.x * blockDim.x) {\n");
      nn_buf_printf(b, "    v%d = it_;\n", r->var);
      stmts(&e, r->body, r->nbody, 2);
      nn_buf_printf(b, "  }\n");
    }
    out->trip = prog_kx(a, m, k, r->lo, r->hi);
  } else if (form == NNCC_CU_ROW) {
    nn_buf_printf(b, "  __shared__ double nn_sh_[32]; /* the warps' partial results */\n");
    if (row_par) {
      nn_buf_printf(b, "  const i64 lo_ = ");
      ex(&e, root->lo);
      nn_buf_printf(b, ", hi_ = ");
      ex(&e, root->hi);
      nn_buf_printf(b, ";\n  for (i64 it_ = lo_ + blockIdx.x; it_ < hi_; it_ += gridDim.x) {\n");
      nn_buf_printf(b, "    v%d = it_;\n", root->var);
      row_stmts(&e, root->body, root->nbody, 2);
      nn_buf_printf(b, "  }\n");
      out->trip = prog_kx(a, m, k, root->lo, root->hi);
    } else {
      nn_buf_printf(b, "  if (blockIdx.x != 0) return;\n");
      row_stmts(&e, k->root.data, k->root.len, 1);
      NN_PUSH(a, m->prog, NNCC_CU_CONST);
      out->trip = m->prog.len - 1;
      NN_PUSH(a, m->prog, 1);
      NN_PUSH(a, m->prog, NNCC_CU_END);
      NN_PUSH(a, m->prog, 0);
    }
  } else if (form == NNCC_CU_GEMM) {
    const ks_gemm *g = &k->stmts.data[gemm].gemm;
    const ks *bl = batch >= 0 ? &k->stmts.data[batch] : NULL;
    gemm_kernel(&e, g, bl, tc);
    out->m = prog_kx(a, m, k, -1, g->m);
    out->n = prog_kx(a, m, k, -1, g->n);
    out->trip = bl ? prog_kx(a, m, k, bl->lo, bl->hi) : -1;
    if (!bl) {
      NN_PUSH(a, m->prog, NNCC_CU_CONST);
      out->trip = m->prog.len - 1;
      NN_PUSH(a, m->prog, 1);
      NN_PUSH(a, m->prog, NNCC_CU_END);
      NN_PUSH(a, m->prog, 0);
    }
  } else {
    nn_buf_printf(b, "  if (blockIdx.x != 0 || threadIdx.x != 0) return;\n");
    stmts(&e, k->root.data, k->root.len, 1);
  }
  nn_buf_printf(b, "}\n\n");
  if (e.err) {
    nn_error(d, k->loc,
             "CUDA code generation: kernel '%s' has an expression the printer does "
             "not handle (or is too large)",
             k->name);
    return -1;
  }
  return 0;
}

int cuda_emit(const kp_program *p, cuda_module *m, nn_diag *d) {
  nn_arena *a = p->arena;
  memset(m, 0, sizeof *m);
  nn_buf b = {0};
  cuda_prelude(&b);
  const kernel **seen = nn_alloc(a, sizeof *seen * (size_t)(p->steps.len + 1));
  int nseen = 0, rc = 0;
  for (int i = 0; i < p->steps.len && !rc; i++) {
    const kp_step *s = &p->steps.data[i];
    int ki = -1;
    for (int j = 0; j < nseen && ki < 0; j++)
      if (seen[j] == s->k) ki = j;
    if (ki < 0) {
      nncc_cu_kernel kk;
      if (emit_kernel(p, m, &b, s->k, &kk, d)) {
        rc = -1;
        break;
      }
      ki = nseen;
      seen[nseen++] = s->k;
      NN_PUSH(a, m->kernels, kk);
    }
    nncc_cu_step st = {.kernel = ki, .slot0 = m->slots.len, .nslots = s->k->bufs.len};
    for (int k = 0; k < s->k->bufs.len; k++) NN_PUSH(a, m->slots, s->slots[k]);
    NN_PUSH(a, m->steps, st);
  }
  for (int i = 0; i < p->bufs.len && !rc; i++) {
    const kp_buf *x = &p->bufs.data[i];
    nncc_cu_buf cb = {.kind = (int32_t)x->kind,
                      .index = x->index,
                      .offset = x->offset,
                      .esize = (uint32_t)nn_dtype_size(x->dtype)};
    cb.elems = prog_dim(a, m, p, x);
    if (cb.elems < 0) {
      nn_error(d, no_loc, "CUDA code generation: the size of buffer b%d is not expressible", i);
      rc = -1;
    }
    NN_PUSH(a, m->bufs, cb);
  }
  if (!rc) {
    m->src = nn_strndup(a, b.data ? b.data : "", b.len);
    m->src_len = b.len;
    m->table = (nncc_cu_table){.nkernels = m->kernels.len,
                               .nsteps = m->steps.len,
                               .nbufs = m->bufs.len,
                               .nslots = m->slots.len,
                               .nprog = m->prog.len,
                               .kernels = m->kernels.data,
                               .steps = m->steps.data,
                               .bufs = m->bufs.data,
                               .slots = m->slots.data,
                               .prog = m->prog.data,
                               .nsyms = p->syms.len,
                               .dynamic = p->dynamic,
                               .workspace_bytes = p->workspace_bytes,
                               .weights_bytes = (uint64_t)p->weights.len};
  }
  nn_buf_free(&b);
  return rc;
}
