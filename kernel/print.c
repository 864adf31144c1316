/* print.c — kernels and programs as text (--emit=kernels, tests).
 *
 * The printed form of a kernel (k_print), one statement per line, two spaces of
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
  case KS_CHECK:
    nn_buf_printf(b, "check #%d ", s->var);
    print_expr(b, k, s->cond);
    nn_buf_printf(b, " else fail(");
    print_expr(b, k, s->val);
    nn_buf_printf(b, ", ");
    print_expr(b, k, s->idx);
    nn_buf_printf(b, ") -> %s\n", k->bufs.data[s->buf].name);
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

/* ---- programs ------------------------------------------------------------ */

static const char *kind_name(kp_bufkind k) {
  switch (k) {
  case KP_BUF_INPUT: return "input";
  case KP_BUF_OUTPUT: return "output";
  case KP_BUF_WEIGHT: return "weight";
  case KP_BUF_WORKSPACE: return "workspace";
  case KP_BUF_DIMS: return "dims";
  case KP_BUF_STATUS: return "status";
  }
  return "?";
}

void kp_print(nn_buf *b, const kp_program *p) {
  nn_buf_printf(b, "program: %d buffers, %d kernels, workspace %llu bytes, weights %d bytes\n",
                p->bufs.len, p->steps.len, (unsigned long long)p->workspace_bytes, p->weights.len);
  for (int i = 0; i < p->bufs.len; i++) {
    const kp_buf *x = &p->bufs.data[i];
    nn_buf_printf(b, "  b%d: %s", i, kind_name(x->kind));
    if (x->kind == KP_BUF_INPUT || x->kind == KP_BUF_OUTPUT)
      nn_buf_printf(b, " %d", x->index);
    else if (x->kind == KP_BUF_WEIGHT || (x->kind == KP_BUF_WORKSPACE && !p->dynamic))
      nn_buf_printf(b, " +%llu", (unsigned long long)x->offset);
    nn_buf_printf(b, " %s[", nn_dtype_name(x->dtype));
    if (x->elems >= 0)
      nn_buf_printf(b, "%lld", (long long)x->elems);
    else
      ir_dim_print(b, p->g, x->elems_d);
    nn_buf_printf(b, "]\n");
  }
  for (int i = 0; i < p->steps.len; i++) {
    const kp_step *s = &p->steps.data[i];
    nn_buf_printf(b, "step %d:", i);
    for (int k = 0; k < s->k->bufs.len; k++) nn_buf_printf(b, " b%d", s->slots[k]);
    nn_buf_printf(b, "\n");
    k_print(b, s->k);
  }
  if (p->dynamic) {
    nn_buf_printf(b, "memory: planned at run time (symbols:");
    for (int i = 0; i < p->syms.len; i++) nn_buf_printf(b, " %s", p->syms.data[i].name);
    nn_buf_printf(b, ")\n");
    return;
  }
  nn_buf_printf(b, "memory: arena %llu bytes, lower bound %llu, naive %llu\n",
                (unsigned long long)p->workspace_bytes,
                (unsigned long long)p->arena_lower_bound_bytes, (unsigned long long)p->naive_bytes);
}
