/* tsparse.c — TorchScript tokens → AST.
 *
 * TorchScript archives carry their code as Python source written by
 * PyTorch's python_print (FORMATS.md §4, §5). This file parses that Python
 * subset from the tokens of tslex.c (a lexing error is an ERR token the
 * parser reports when it reaches it). The parser is recursive descent with
 * Python's precedence; it stops at the first error (reported located through
 * nn_error and unwound with longjmp) and fe_parse then returns an empty
 * block.
 *
 * Choices worth knowing when reading the AST:
 * - A minus directly before a number literal folds into the literal: `-1`
 *   is FE_E_INT -1, `-0.` is FE_E_FLOAT -0.0, and `-9223372036854775808`
 *   is FE_E_INT INT64_MIN (the only place 2^63 is accepted; bare it is
 *   "integer literal too large"). Not folded when the literal is followed by
 *   `**` or a postfix (`-2 ** 2` is -(2 ** 2)), nor for the int 0 (`-0`
 *   stays unary so it prints back the same). `-inf` stays
 *   FE_E_UNARY("-", NAME inf); lowering folds it.
 * - Literals are as tslex.c reads them; adjacent strings concatenate.
 * - Parenthesized expressions give the inner node (no paren node).
 * - Decorators (`@torch.jit.export`) are parsed and dropped.
 * - IMPORT keeps the whole statement as text ("import a.b as c",
 *   "from a import b"); GLOBAL keeps its names ("a, b").
 * - Chained comparisons (`a < b < c`), lambdas, comprehensions, star
 *   arguments, with/try are rejected with an error.
 * - Nesting (brackets, operator chains, postfix chains, blocks) is capped at
 *   FE_TS_MAX_DEPTH levels, so the AST height is bounded for every recursive
 *   consumer.
 * - Every node's loc is its first token (1-based line and byte column).
 *
 * The printer for this AST (fe_block_print, fe_expr_print) is in
 * tsprint.c.
 */
#include "frontend.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ====================================================================== */
/* Parser                                                                 */
/* ====================================================================== */

typedef NN_VEC(char) char_vec;

typedef struct parser {
  const fe_token *t; /* tokens, ending in EOF (maybe after an ERR) */
  int n;             /* number of tokens */
  int i;             /* next fe_token */
  nn_arena *a;       /* where the AST goes */
  nn_diag *d;        /* where the error goes */
  int depth;         /* current nesting, capped at FE_TS_MAX_DEPTH */
  jmp_buf fail;      /* where the first error unwinds to */
} parser;

typedef struct stmt_vec {
  fe_stmt **data;
  int len, cap;
} stmt_vec;
typedef struct expr_vec {
  fe_expr **data;
  int len, cap;
} expr_vec;

static const fe_token *peek(const parser *p) { return &p->t[p->i]; }
static const fe_token *peek2(const parser *p) {
  return &p->t[p->i + 1 < p->n ? p->i + 1 : p->n - 1];
}
static const fe_token *next(parser *p) {
  const fe_token *t = &p->t[p->i];
  if (t->kind != FE_TK_EOF && t->kind != FE_TK_ERR) p->i++;
  return t;
}
static bool is_op(const fe_token *t, const char *op) {
  return t->kind == FE_TK_OP && strcmp(t->text, op) == 0;
}
static bool is_kw(const fe_token *t, const char *kw) {
  return t->kind == FE_TK_KW && strcmp(t->text, kw) == 0;
}

/* How a fe_token reads in "but found ..." messages. */
static const char *tok_desc(parser *p, const fe_token *t) {
  switch (t->kind) {
  case FE_TK_EOF: return "end of file";
  case FE_TK_NEWLINE: return "end of line";
  case FE_TK_INDENT: return "indent";
  case FE_TK_DEDENT: return "dedent";
  case FE_TK_STR: return "a string literal";
  default: {
    int n = t->srclen > 40 ? 40 : (int)t->srclen;
    return nn_sprintf(p->a, "'%.*s%s'", n, t->src, t->srclen > 40 ? "..." : "");
  }
  }
}

/* Reports an error located at loc and unwinds. */
static _Noreturn void fail_at(parser *p, nn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void fail_at(parser *p, nn_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nn_vreport(p->d, "error", loc, fmt, ap);
  va_end(ap);
  p->d->errors++;
  longjmp(p->fail, 1);
}

/* Reports "<what> but found <t>" at t and unwinds; when t is a lexing
 * error, reports that error instead. */
static _Noreturn void fail_tok(parser *p, const fe_token *t, const char *what) {
  if (t->kind == FE_TK_ERR) fail_at(p, t->loc, "%s", t->text);
  fail_at(p, t->loc, "%s but found %s", what, tok_desc(p, t));
}

static void expect_op(parser *p, const char *op, const char *context) {
  if (is_op(peek(p), op)) {
    next(p);
    return;
  }
  fail_tok(p, peek(p),
           nn_sprintf(p->a, "expected '%s'%s%s", op, context ? " " : "", context ? context : ""));
}

static void expect_kw(parser *p, const char *kw, const char *context) {
  if (is_kw(peek(p), kw)) {
    next(p);
    return;
  }
  fail_tok(p, peek(p), nn_sprintf(p->a, "expected '%s' %s", kw, context));
}

static const char *expect_name(parser *p, const char *what) {
  const fe_token *t = peek(p);
  if (t->kind != FE_TK_NAME) fail_tok(p, t, what);
  next(p);
  return t->text;
}

/* One more level of nesting at t; callers restore p->depth when done. */
static void enter(parser *p, const fe_token *t) {
  if (++p->depth > FE_TS_MAX_DEPTH)
    fail_at(p, t->loc, "nesting too deep (more than %d levels)", FE_TS_MAX_DEPTH);
}

static fe_expr *new_expr(parser *p, fe_ekind kind, nn_loc loc) {
  fe_expr *e = nn_alloc(p->a, sizeof *e);
  e->kind = kind;
  e->loc = loc;
  return e;
}

static fe_expr *new_binary(parser *p, const char *op, fe_expr *a, fe_expr *b, nn_loc loc) {
  fe_expr *e = new_expr(p, FE_E_BINARY, loc);
  e->u.binary.op = op;
  e->u.binary.a = a;
  e->u.binary.b = b;
  return e;
}

/* True when t can begin an expression (used after a trailing comma). */
static bool starts_expr(const fe_token *t) {
  switch (t->kind) {
  case FE_TK_NAME:
  case FE_TK_INT:
  case FE_TK_FLOAT:
  case FE_TK_STR: return true;
  case FE_TK_KW:
    return is_kw(t, "True") || is_kw(t, "False") || is_kw(t, "None") || is_kw(t, "not");
  case FE_TK_OP:
    return is_op(t, "(") || is_op(t, "[") || is_op(t, "{") || is_op(t, "-") || is_op(t, "+") ||
           is_op(t, "~");
  default: return false;
  }
}

static fe_expr *parse_test(parser *p);
static fe_expr *parse_binlevel(parser *p, int level);
static fe_expr *parse_factor(parser *p);

/* Items of a bracketed display up to `close` (consumed). The opening
 * bracket has been consumed; *trailing is set when a comma follows the last
 * item. */
static expr_vec parse_items(parser *p, const char *close, bool *trailing) {
  expr_vec v = {0};
  *trailing = false;
  while (!is_op(peek(p), close)) {
    NN_PUSH(p->a, v, parse_test(p));
    *trailing = false;
    if (!is_op(peek(p), ",")) break;
    next(p);
    *trailing = true;
  }
  expect_op(p, close, NULL);
  return v;
}

static fe_expr *parse_atom(parser *p) {
  const fe_token *t = peek(p);
  fe_expr *e;
  switch (t->kind) {
  case FE_TK_NAME:
    next(p);
    e = new_expr(p, FE_E_NAME, t->loc);
    e->u.name = t->text;
    return e;
  case FE_TK_INT:
    if (t->u > (uint64_t)INT64_MAX) fail_at(p, t->loc, "integer literal too large");
    next(p);
    e = new_expr(p, FE_E_INT, t->loc);
    e->u.i = (int64_t)t->u;
    return e;
  case FE_TK_FLOAT:
    next(p);
    e = new_expr(p, FE_E_FLOAT, t->loc);
    e->u.f = t->f;
    return e;
  case FE_TK_STR: {
    size_t total = 0;
    int k = p->i;
    for (; p->t[k].kind == FE_TK_STR; k++) total += p->t[k].slen;
    char *s = nn_alloc(p->a, total + 1), *w = s;
    for (; peek(p)->kind == FE_TK_STR; next(p)) {
      if (peek(p)->slen) memcpy(w, peek(p)->s, peek(p)->slen);
      w += peek(p)->slen;
    }
    e = new_expr(p, FE_E_STR, t->loc);
    e->u.str.s = s;
    e->u.str.len = total;
    return e;
  }
  case FE_TK_KW:
    if (is_kw(t, "True") || is_kw(t, "False") || is_kw(t, "None")) {
      next(p);
      return new_expr(p,
                      is_kw(t, "True")    ? FE_E_TRUE
                      : is_kw(t, "False") ? FE_E_FALSE
                                          : FE_E_NONE,
                      t->loc);
    }
    break;
  case FE_TK_OP:
    if (is_op(t, "(")) {
      next(p);
      if (is_op(peek(p), ")")) {
        next(p);
        return new_expr(p, FE_E_TUPLE, t->loc);
      }
      fe_expr *first = parse_test(p);
      if (!is_op(peek(p), ",")) {
        expect_op(p, ")", NULL);
        return first;
      }
      next(p);
      bool trailing;
      expr_vec v = parse_items(p, ")", &trailing);
      e = new_expr(p, FE_E_TUPLE, t->loc);
      e->u.seq.n = v.len + 1;
      e->u.seq.items = nn_alloc(p->a, sizeof(fe_expr *) * (size_t)(v.len + 1));
      e->u.seq.items[0] = first;
      for (int i = 0; i < v.len; i++) e->u.seq.items[i + 1] = v.data[i];
      return e;
    }
    if (is_op(t, "[")) {
      next(p);
      bool trailing;
      expr_vec v = parse_items(p, "]", &trailing);
      e = new_expr(p, FE_E_LIST, t->loc);
      e->u.seq.items = v.data;
      e->u.seq.n = v.len;
      return e;
    }
    if (is_op(t, "{")) {
      next(p);
      expr_vec keys = {0}, vals = {0};
      while (!is_op(peek(p), "}")) {
        NN_PUSH(p->a, keys, parse_test(p));
        expect_op(p, ":", "in dict literal");
        NN_PUSH(p->a, vals, parse_test(p));
        if (!is_op(peek(p), ",")) break;
        next(p);
      }
      expect_op(p, "}", NULL);
      e = new_expr(p, FE_E_DICT, t->loc);
      e->u.dict.keys = keys.data;
      e->u.dict.vals = vals.data;
      e->u.dict.n = keys.len;
      return e;
    }
    break;
  default: break;
  }
  fail_tok(p, t, "expected expression");
}

/* One subscript item: an expression or a slice lo:hi:step. */
static fe_expr *parse_subscript_item(parser *p) {
  const fe_token *start = peek(p);
  fe_expr *lo = NULL;
  if (!is_op(start, ":")) {
    lo = parse_test(p);
    if (!is_op(peek(p), ":")) return lo;
  }
  next(p); /* ':' */
  fe_expr *e = new_expr(p, FE_E_SLICE, start->loc);
  e->u.slice.lo = lo;
  const fe_token *t = peek(p);
  if (!is_op(t, ":") && !is_op(t, ",") && !is_op(t, "]")) e->u.slice.hi = parse_test(p);
  if (is_op(peek(p), ":")) {
    next(p);
    t = peek(p);
    if (!is_op(t, ",") && !is_op(t, "]")) e->u.slice.step = parse_test(p);
  }
  return e;
}

/* Call arguments after '(' up to and including ')'. */
static void parse_call_args(parser *p, fe_expr *call) {
  expr_vec args = {0}, kwargs = {0};
  NN_VEC(const char *) kwnames = {0};
  while (!is_op(peek(p), ")")) {
    const fe_token *t = peek(p);
    if (t->kind == FE_TK_NAME && is_op(peek2(p), "=")) {
      next(p);
      next(p);
      NN_PUSH(p->a, kwnames, t->text);
      NN_PUSH(p->a, kwargs, parse_test(p));
    } else {
      if (kwargs.len) fail_at(p, t->loc, "positional argument follows keyword argument");
      NN_PUSH(p->a, args, parse_test(p));
    }
    if (!is_op(peek(p), ",")) break;
    next(p);
  }
  expect_op(p, ")", NULL);
  call->u.call.args = args.data;
  call->u.call.nargs = args.len;
  call->u.call.kwnames = kwnames.data;
  call->u.call.kwargs = kwargs.data;
  call->u.call.nkw = kwargs.len;
}

static fe_expr *parse_postfix(parser *p) {
  int saved = p->depth;
  nn_loc start = peek(p)->loc;
  fe_expr *e = parse_atom(p);
  for (;;) {
    const fe_token *t = peek(p);
    if (is_op(t, ".")) {
      enter(p, t);
      next(p);
      const fe_token *n = peek(p);
      if (n->kind != FE_TK_NAME && n->kind != FE_TK_KW)
        fail_tok(p, n, "expected attribute name after '.'");
      next(p);
      fe_expr *a = new_expr(p, FE_E_ATTR, start);
      a->u.attr.obj = e;
      a->u.attr.name = n->text;
      e = a;
    } else if (is_op(t, "(")) {
      enter(p, t);
      next(p);
      fe_expr *c = new_expr(p, FE_E_CALL, start);
      c->u.call.fn = e;
      parse_call_args(p, c);
      e = c;
    } else if (is_op(t, "[")) {
      enter(p, t);
      next(p);
      expr_vec idx = {0};
      for (;;) {
        NN_PUSH(p->a, idx, parse_subscript_item(p));
        if (!is_op(peek(p), ",")) break;
        next(p);
        if (is_op(peek(p), "]")) break;
      }
      expect_op(p, "]", NULL);
      fe_expr *s = new_expr(p, FE_E_SUBSCRIPT, start);
      s->u.sub.obj = e;
      s->u.sub.idx = idx.data;
      s->u.sub.nidx = idx.len;
      e = s;
    } else {
      break;
    }
  }
  p->depth = saved;
  return e;
}

static fe_expr *parse_power(parser *p) {
  nn_loc start = peek(p)->loc;
  fe_expr *a = parse_postfix(p);
  if (!is_op(peek(p), "**")) return a;
  int saved = p->depth;
  enter(p, next(p));
  fe_expr *b = parse_factor(p);
  p->depth = saved;
  return new_binary(p, "**", a, b, start);
}

/* Unary -, +, ~; a minus right before a number literal folds into it. */
static fe_expr *parse_factor(parser *p) {
  const fe_token *t = peek(p);
  const char *op = is_op(t, "-") ? "-" : is_op(t, "+") ? "+" : is_op(t, "~") ? "~" : NULL;
  if (!op) return parse_power(p);
  int saved = p->depth;
  enter(p, t);
  next(p);
  const fe_token *lit = peek(p), *after = peek2(p);
  /* (-0 as an int would lose its minus sign in print; keep it unary.) */
  if (op[0] == '-' && ((lit->kind == FE_TK_INT && lit->u != 0) || lit->kind == FE_TK_FLOAT) &&
      !is_op(after, "**") && !is_op(after, "(") && !is_op(after, "[") && !is_op(after, ".")) {
    next(p);
    fe_expr *e;
    if (lit->kind == FE_TK_INT) {
      e = new_expr(p, FE_E_INT, t->loc);
      e->u.i = lit->u == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)lit->u;
    } else {
      e = new_expr(p, FE_E_FLOAT, t->loc);
      e->u.f = -lit->f;
    }
    p->depth = saved;
    return e;
  }
  fe_expr *e = new_expr(p, FE_E_UNARY, t->loc);
  e->u.unary.op = op;
  e->u.unary.a = parse_factor(p);
  p->depth = saved;
  return e;
}

/* Left-associative binary levels, loosest first: | ^ & shifts + * ... */
static const char *const ts_binlevels[][6] = {
    {"|"}, {"^"}, {"&"}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "//", "%", "@"},
};

static fe_expr *parse_binlevel(parser *p, int level) {
  if (level == NN_ARRAY_LEN(ts_binlevels)) return parse_factor(p);
  nn_loc start = peek(p)->loc;
  int saved = p->depth;
  fe_expr *a = parse_binlevel(p, level + 1);
  for (;;) {
    const char *op = NULL;
    for (int i = 0; i < 6 && ts_binlevels[level][i]; i++)
      if (is_op(peek(p), ts_binlevels[level][i])) op = ts_binlevels[level][i];
    if (!op) break;
    enter(p, next(p));
    fe_expr *b = parse_binlevel(p, level + 1);
    a = new_binary(p, op, a, b, start);
  }
  p->depth = saved;
  return a;
}

/* The comparison operator at the next fe_token(s), or NULL; *ntok gets how
 * many tokens it spans. */
static const char *cmp_op(const parser *p, int *ntok) {
  const fe_token *t = peek(p), *t2 = peek2(p);
  static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
  *ntok = 1;
  for (int i = 0; i < NN_ARRAY_LEN(ops); i++)
    if (is_op(t, ops[i])) return ops[i];
  if (is_kw(t, "in")) return "in";
  if (is_kw(t, "is")) {
    if (is_kw(t2, "not")) {
      *ntok = 2;
      return "is not";
    }
    return "is";
  }
  if (is_kw(t, "not") && is_kw(t2, "in")) {
    *ntok = 2;
    return "not in";
  }
  return NULL;
}

static fe_expr *parse_comparison(parser *p) {
  nn_loc start = peek(p)->loc;
  fe_expr *a = parse_binlevel(p, 0);
  int ntok;
  const char *op = cmp_op(p, &ntok);
  if (!op) return a;
  int saved = p->depth;
  enter(p, peek(p));
  for (int i = 0; i < ntok; i++) next(p);
  fe_expr *b = parse_binlevel(p, 0);
  if (cmp_op(p, &ntok)) fail_at(p, peek(p)->loc, "chained comparisons are not supported");
  p->depth = saved;
  return new_binary(p, op, a, b, start);
}

static fe_expr *parse_not(parser *p) {
  const fe_token *t = peek(p);
  if (!is_kw(t, "not")) return parse_comparison(p);
  int saved = p->depth;
  enter(p, t);
  next(p);
  fe_expr *e = new_expr(p, FE_E_UNARY, t->loc);
  e->u.unary.op = "not";
  e->u.unary.a = parse_not(p);
  p->depth = saved;
  return e;
}

static fe_expr *parse_and_or(parser *p, bool is_or) {
  nn_loc start = peek(p)->loc;
  int saved = p->depth;
  const char *kw = is_or ? "or" : "and";
  fe_expr *a = is_or ? parse_and_or(p, false) : parse_not(p);
  while (is_kw(peek(p), kw)) {
    enter(p, next(p));
    fe_expr *b = is_or ? parse_and_or(p, false) : parse_not(p);
    a = new_binary(p, kw, a, b, start);
  }
  p->depth = saved;
  return a;
}

/* test: or_test ['if' or_test 'else' test] */
static fe_expr *parse_test(parser *p) {
  const fe_token *t = peek(p);
  int saved = p->depth;
  enter(p, t);
  fe_expr *e = parse_and_or(p, true);
  if (is_kw(peek(p), "if")) {
    next(p);
    fe_expr *cond = parse_and_or(p, true);
    expect_kw(p, "else", "in conditional expression");
    fe_expr *els = parse_test(p);
    fe_expr *te = new_expr(p, FE_E_TERNARY, t->loc);
    te->u.ternary.cond = cond;
    te->u.ternary.then = e;
    te->u.ternary.els = els;
    e = te;
  }
  p->depth = saved;
  return e;
}

/* A comma-separated list of `item`s; a tuple when a comma appears (a
 * trailing comma is allowed). `for_target` parses items at the | level so
 * that `in` ends the list. */
static fe_expr *parse_exprlist(parser *p, bool for_target) {
  nn_loc start = peek(p)->loc;
  fe_expr *first = for_target ? parse_binlevel(p, 0) : parse_test(p);
  if (!is_op(peek(p), ",")) return first;
  expr_vec v = {0};
  NN_PUSH(p->a, v, first);
  while (is_op(peek(p), ",")) {
    next(p);
    if (!starts_expr(peek(p))) break;
    NN_PUSH(p->a, v, for_target ? parse_binlevel(p, 0) : parse_test(p));
  }
  fe_expr *e = new_expr(p, FE_E_TUPLE, start);
  e->u.seq.items = v.data;
  e->u.seq.n = v.len;
  return e;
}

static const char *ekind_desc(const fe_expr *e) {
  switch (e->kind) {
  case FE_E_CALL: return "function call";
  case FE_E_INT:
  case FE_E_FLOAT:
  case FE_E_STR:
  case FE_E_TRUE:
  case FE_E_FALSE:
  case FE_E_NONE: return "literal";
  case FE_E_UNARY:
  case FE_E_BINARY: return "operator";
  case FE_E_TERNARY: return "conditional expression";
  case FE_E_DICT: return "dict literal";
  case FE_E_SLICE: return "slice";
  default: return "expression";
  }
}

/* Checks that e can be assigned to (names, attributes, subscripts, tuples
 * and lists of those). */
static void check_target(parser *p, const fe_expr *e, bool allow_seq) {
  if (e->kind == FE_E_NAME || e->kind == FE_E_ATTR || e->kind == FE_E_SUBSCRIPT) return;
  if (allow_seq && (e->kind == FE_E_TUPLE || e->kind == FE_E_LIST)) {
    for (int i = 0; i < e->u.seq.n; i++) check_target(p, e->u.seq.items[i], true);
    return;
  }
  fail_at(p, e->loc, "cannot assign to %s", ekind_desc(e));
}

static fe_stmt *new_stmt(parser *p, fe_skind kind, nn_loc loc) {
  fe_stmt *s = nn_alloc(p->a, sizeof *s);
  s->kind = kind;
  s->loc = loc;
  return s;
}

static const char *const ts_augops[] = {"+=", "-=", "*=", "/=",  "//=", "%=", "**=",
                                        "&=", "|=", "^=", "<<=", ">>=", "@="};

/* Expression statement or assignment of any form. */
static fe_stmt *parse_expr_stmt(parser *p) {
  const fe_token *start = peek(p);
  fe_expr *e = parse_exprlist(p, false);
  const fe_token *t = peek(p);
  if (is_op(t, ":")) {
    if (e->kind != FE_E_NAME && e->kind != FE_E_ATTR && e->kind != FE_E_SUBSCRIPT)
      fail_at(p, e->loc, "illegal target for annotation");
    next(p);
    fe_stmt *s = new_stmt(p, FE_S_ANNASSIGN, start->loc);
    s->u.ann.target = e;
    s->u.ann.type = parse_test(p);
    if (is_op(peek(p), "=")) {
      next(p);
      s->u.ann.value = parse_exprlist(p, false);
    }
    return s;
  }
  for (int i = 0; i < NN_ARRAY_LEN(ts_augops); i++) {
    if (!is_op(t, ts_augops[i])) continue;
    check_target(p, e, false);
    next(p);
    fe_stmt *s = new_stmt(p, FE_S_AUGASSIGN, start->loc);
    s->u.aug.target = e;
    s->u.aug.op = ts_augops[i];
    s->u.aug.value = parse_exprlist(p, false);
    return s;
  }
  if (is_op(t, "=")) {
    expr_vec targets = {0};
    fe_expr *value = e;
    while (is_op(peek(p), "=")) {
      check_target(p, value, true);
      NN_PUSH(p->a, targets, value);
      next(p);
      value = parse_exprlist(p, false);
    }
    fe_stmt *s = new_stmt(p, FE_S_ASSIGN, start->loc);
    s->u.assign.targets = targets.data;
    s->u.assign.ntargets = targets.len;
    s->u.assign.value = value;
    return s;
  }
  fe_stmt *s = new_stmt(p, FE_S_EXPR, start->loc);
  s->u.expr = e;
  return s;
}

/* Appends s to an arena string under construction (arena memory, so an
 * error unwinding through the parser leaks nothing). */
static void cv_put(parser *p, char_vec *v, const char *s) {
  for (; *s; s++) NN_PUSH(p->a, *v, *s);
}

static const char *cv_str(parser *p, const char_vec *v) {
  return nn_strndup(p->a, v->data ? v->data : "", (size_t)v->len);
}

/* A dotted module name (with leading dots for `from`), appended to v. */
static void parse_dotted(parser *p, char_vec *v, bool allow_dots) {
  bool dots = false;
  if (allow_dots)
    while (is_op(peek(p), ".")) {
      next(p);
      cv_put(p, v, ".");
      dots = true;
    }
  if (dots && is_kw(peek(p), "import")) return; /* from . import x */
  cv_put(p, v, expect_name(p, "expected module name"));
  while (is_op(peek(p), ".")) {
    next(p);
    cv_put(p, v, ".");
    cv_put(p, v, expect_name(p, "expected name after '.'"));
  }
}

static void parse_as_name(parser *p, char_vec *v) {
  if (!is_kw(peek(p), "as")) return;
  next(p);
  cv_put(p, v, " as ");
  cv_put(p, v, expect_name(p, "expected name after 'as'"));
}

static fe_stmt *parse_import(parser *p) {
  const fe_token *t = next(p);
  fe_stmt *s = new_stmt(p, FE_S_IMPORT, t->loc);
  char_vec v = {0};
  if (is_kw(t, "import")) {
    cv_put(p, &v, "import ");
    for (;;) {
      parse_dotted(p, &v, false);
      parse_as_name(p, &v);
      if (!is_op(peek(p), ",")) break;
      next(p);
      cv_put(p, &v, ", ");
    }
  } else {
    cv_put(p, &v, "from ");
    parse_dotted(p, &v, true);
    expect_kw(p, "import", "after module name");
    cv_put(p, &v, " import ");
    if (is_op(peek(p), "*")) {
      next(p);
      cv_put(p, &v, "*");
    } else {
      bool paren = is_op(peek(p), "(");
      if (paren) next(p);
      for (;;) {
        cv_put(p, &v, expect_name(p, "expected name to import"));
        parse_as_name(p, &v);
        if (!is_op(peek(p), ",")) break;
        next(p);
        if (paren && is_op(peek(p), ")")) break;
        cv_put(p, &v, ", ");
      }
      if (paren) expect_op(p, ")", NULL);
    }
  }
  s->u.import.text = cv_str(p, &v);
  return s;
}

/* One small statement (no compound, no trailing newline). */
static fe_stmt *parse_small(parser *p) {
  const fe_token *t = peek(p);
  if (t->kind == FE_TK_KW) {
    static const struct {
      const char *kw;
      fe_skind kind;
    } simple[] = {{"pass", FE_S_PASS}, {"break", FE_S_BREAK}, {"continue", FE_S_CONTINUE}};
    for (int i = 0; i < NN_ARRAY_LEN(simple); i++)
      if (is_kw(t, simple[i].kw)) {
        next(p);
        return new_stmt(p, simple[i].kind, t->loc);
      }
    if (is_kw(t, "return") || is_kw(t, "raise") || is_kw(t, "del")) {
      next(p);
      fe_stmt *s = new_stmt(p,
                            is_kw(t, "return")  ? FE_S_RETURN
                            : is_kw(t, "raise") ? FE_S_RAISE
                                                : FE_S_DEL,
                            t->loc);
      if (starts_expr(peek(p)) || s->kind == FE_S_DEL)
        s->u.expr = s->kind == FE_S_RAISE ? parse_test(p) : parse_exprlist(p, false);
      return s;
    }
    if (is_kw(t, "assert")) {
      next(p);
      fe_stmt *s = new_stmt(p, FE_S_ASSERT, t->loc);
      s->u.assert_.cond = parse_test(p);
      if (is_op(peek(p), ",")) {
        next(p);
        s->u.assert_.msg = parse_test(p);
      }
      return s;
    }
    if (is_kw(t, "global")) {
      next(p);
      fe_stmt *s = new_stmt(p, FE_S_GLOBAL, t->loc);
      char_vec v = {0};
      for (;;) {
        cv_put(p, &v, expect_name(p, "expected name after 'global'"));
        if (!is_op(peek(p), ",")) break;
        next(p);
        cv_put(p, &v, ", ");
      }
      s->u.import.text = cv_str(p, &v);
      return s;
    }
    if (is_kw(t, "import") || is_kw(t, "from")) return parse_import(p);
  }
  return parse_expr_stmt(p);
}

/* Small statements separated by ';' up to the end of the line. */
static void parse_simple_line(parser *p, stmt_vec *out) {
  for (;;) {
    NN_PUSH(p->a, *out, parse_small(p));
    if (!is_op(peek(p), ";")) break;
    next(p);
    if (peek(p)->kind == FE_TK_NEWLINE) break;
  }
  if (peek(p)->kind != FE_TK_NEWLINE) fail_tok(p, peek(p), "expected end of line");
  next(p);
}

static void parse_stmt(parser *p, stmt_vec *out);

/* The body after ':' — statements on the same line, or an indented block. */
static fe_block parse_suite(parser *p) {
  stmt_vec v = {0};
  int saved = p->depth;
  enter(p, peek(p));
  if (peek(p)->kind == FE_TK_NEWLINE) {
    next(p);
    if (peek(p)->kind != FE_TK_INDENT) fail_tok(p, peek(p), "expected an indented block");
    next(p);
    while (peek(p)->kind != FE_TK_DEDENT && peek(p)->kind != FE_TK_EOF) parse_stmt(p, &v);
    next(p);
  } else {
    parse_simple_line(p, &v);
  }
  p->depth = saved;
  fe_block b = {v.data, v.len};
  return b;
}

/* if / elif: the keyword is the next fe_token. */
static fe_stmt *parse_if(parser *p) {
  const fe_token *t = next(p);
  int saved = p->depth;
  enter(p, t);
  fe_stmt *s = new_stmt(p, FE_S_IF, t->loc);
  s->u.if_.cond = parse_test(p);
  expect_op(p, ":", is_kw(t, "if") ? "after if condition" : "after elif condition");
  s->u.if_.then = parse_suite(p);
  if (is_kw(peek(p), "elif")) {
    s->u.if_.els.stmts = nn_alloc(p->a, sizeof(fe_stmt *));
    s->u.if_.els.stmts[0] = parse_if(p);
    s->u.if_.els.n = 1;
  } else if (is_kw(peek(p), "else")) {
    next(p);
    expect_op(p, ":", "after 'else'");
    s->u.if_.els = parse_suite(p);
  }
  p->depth = saved;
  return s;
}

static fe_stmt *parse_def(parser *p) {
  const fe_token *t = next(p);
  fe_stmt *s = new_stmt(p, FE_S_DEF, t->loc);
  s->u.def.name = expect_name(p, "expected function name after 'def'");
  expect_op(p, "(", "after function name");
  NN_VEC(fe_param) params = {0};
  while (!is_op(peek(p), ")")) {
    fe_param prm = {0};
    prm.loc = peek(p)->loc;
    prm.name = expect_name(p, "expected parameter name");
    if (is_op(peek(p), ":")) {
      next(p);
      prm.type = parse_test(p);
    }
    if (is_op(peek(p), "=")) {
      next(p);
      prm.deflt = parse_test(p);
    }
    NN_PUSH(p->a, params, prm);
    if (!is_op(peek(p), ",")) break;
    next(p);
  }
  expect_op(p, ")", "after parameters");
  s->u.def.params = params.data;
  s->u.def.nparams = params.len;
  if (is_op(peek(p), "->")) {
    next(p);
    s->u.def.ret = parse_test(p);
  }
  expect_op(p, ":", "after function header");
  s->u.def.body = parse_suite(p);
  return s;
}

static fe_stmt *parse_class(parser *p) {
  const fe_token *t = next(p);
  fe_stmt *s = new_stmt(p, FE_S_CLASS, t->loc);
  s->u.class_.name = expect_name(p, "expected class name after 'class'");
  if (is_op(peek(p), "(")) {
    next(p);
    bool trailing;
    expr_vec v = parse_items(p, ")", &trailing);
    s->u.class_.bases = v.data;
    s->u.class_.nbases = v.len;
  }
  expect_op(p, ":", "after class header");
  s->u.class_.body = parse_suite(p);
  return s;
}

static void parse_stmt(parser *p, stmt_vec *out) {
  const fe_token *t = peek(p);
  if (t->kind == FE_TK_INDENT) fail_at(p, t->loc, "unexpected indent");
  if (t->kind == FE_TK_NEWLINE) { /* only after an ERR-free ';' edge; skip */
    next(p);
    return;
  }
  if (is_op(t, "@")) {
    while (is_op(peek(p), "@")) { /* decorators: parsed and dropped */
      next(p);
      parse_test(p);
      if (peek(p)->kind != FE_TK_NEWLINE)
        fail_tok(p, peek(p), "expected end of line after decorator");
      next(p);
    }
    if (!is_kw(peek(p), "def") && !is_kw(peek(p), "class"))
      fail_tok(p, peek(p), "expected 'def' or 'class' after decorator");
    t = peek(p);
  }
  if (t->kind == FE_TK_KW) {
    fe_stmt *s = NULL;
    if (is_kw(t, "if")) {
      s = parse_if(p);
    } else if (is_kw(t, "while")) {
      next(p);
      s = new_stmt(p, FE_S_WHILE, t->loc);
      s->u.while_.cond = parse_test(p);
      expect_op(p, ":", "after while condition");
      s->u.while_.body = parse_suite(p);
    } else if (is_kw(t, "for")) {
      next(p);
      s = new_stmt(p, FE_S_FOR, t->loc);
      s->u.for_.target = parse_exprlist(p, true);
      check_target(p, s->u.for_.target, true);
      expect_kw(p, "in", "after for target");
      s->u.for_.iter = parse_exprlist(p, false);
      expect_op(p, ":", "after for iterable");
      s->u.for_.body = parse_suite(p);
    } else if (is_kw(t, "def")) {
      s = parse_def(p);
    } else if (is_kw(t, "class")) {
      s = parse_class(p);
    } else if (is_kw(t, "with") || is_kw(t, "try") || is_kw(t, "async") || is_kw(t, "nonlocal")) {
      fail_at(p, t->loc, "'%s' statements are not supported", t->text);
    }
    if (s) {
      NN_PUSH(p->a, *out, s);
      return;
    }
  }
  parse_simple_line(p, out);
}

fe_block fe_parse(const char *src, size_t len, const char *file, nn_arena *arena, nn_diag *d) {
  fe_block empty = {NULL, 0};
  bool failed;
  parser p = {0};
  p.t = fe_lex(src, len, file, arena, &p.n, &failed);
  p.a = arena;
  p.d = d;
  stmt_vec v = {0};
  if (setjmp(p.fail)) return empty;
  while (peek(&p)->kind != FE_TK_EOF) parse_stmt(&p, &v);
  if (failed) /* the parser stops at ERR only through fail_tok */
    fail_tok(&p, &p.t[p.n - 2], "unexpected input");
  fe_block b = {v.data, v.len};
  return b;
}
