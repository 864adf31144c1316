/* tsprint.c — TorchScript AST → canonical source text.
 *
 * The printer (fe_block_print, fe_expr_print) writes the AST that tsparse.c
 * builds back as source-like text, in a canonical form used by tests: one
 * statement per line, two spaces per `indent` level; binary operators and
 * ternaries fully parenthesized "(a + b)", "(a if c else b)";
 * unary operators bare ("-x", "not x") unless that would change the parse;
 * calls `f(a, b, k=v)`; tuples "(a, b)" "(a,)" "()"; strings in double
 * quotes with \\ \" \n \t \r and other control and non-ASCII bytes as
 * three-digit octal escapes; floats with %.17g plus "." when the text would
 * read as an integer (non-finite values as float("inf") etc.); elif printed
 * as else: + nested if; `else:` only when the else block is non-empty;
 * def headers on one line "def f(self: T, x: Tensor=None) -> Tensor:";
 * annotated assignments "x : T = v".
 */
#include "frontend.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void print_str(nn_buf *b, const char *s, size_t len) {
  nn_buf_putn(b, "\"", 1);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '\\': nn_buf_putn(b, "\\\\", 2); break;
    case '"': nn_buf_putn(b, "\\\"", 2); break;
    case '\n': nn_buf_putn(b, "\\n", 2); break;
    case '\t': nn_buf_putn(b, "\\t", 2); break;
    case '\r': nn_buf_putn(b, "\\r", 2); break;
    default:
      if (c < 0x20 || c >= 0x7F)
        nn_buf_printf(b, "\\%03o", c);
      else
        nn_buf_putn(b, (const char *)&c, 1);
    }
  }
  nn_buf_putn(b, "\"", 1);
}

/* Finite floats print as numbers; the others as calls float("inf"). */
static void print_float(nn_buf *b, double f) {
  if (isnan(f)) {
    nn_buf_printf(b, "float(\"nan\")");
    return;
  }
  if (isinf(f)) {
    nn_buf_printf(b, "float(\"%sinf\")", f < 0 ? "-" : "");
    return;
  }
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.17g", f);
  nn_buf_printf(b, "%s", tmp);
  if (strspn(tmp, "-0123456789") == strlen(tmp)) nn_buf_putn(b, ".", 1);
}

static bool is_negative_literal(const fe_expr *e) {
  return (e->kind == FE_E_INT && e->u.i < 0) ||
         (e->kind == FE_E_FLOAT && isfinite(e->u.f) && signbit(e->u.f));
}

static void print_paren(nn_buf *b, const fe_expr *e, bool wrap) {
  if (wrap) nn_buf_putn(b, "(", 1);
  fe_expr_print(b, e);
  if (wrap) nn_buf_putn(b, ")", 1);
}

/* The object of a postfix (.name, call, subscript): numbers and unary
 * operators need parentheses there. */
static void print_postfix_obj(nn_buf *b, const fe_expr *e) {
  print_paren(b, e,
              e->kind == FE_E_INT || e->kind == FE_E_UNARY ||
                  (e->kind == FE_E_FLOAT && isfinite(e->u.f)));
}

static void print_list(nn_buf *b, fe_expr *const *items, int n) {
  for (int i = 0; i < n; i++) {
    if (i) nn_buf_putn(b, ", ", 2);
    fe_expr_print(b, items[i]);
  }
}

void fe_expr_print(nn_buf *b, const fe_expr *e) {
  if (!e) {
    nn_buf_printf(b, "<null>");
    return;
  }
  switch (e->kind) {
  case FE_E_NAME: nn_buf_printf(b, "%s", e->u.name); break;
  case FE_E_INT: nn_buf_printf(b, "%lld", (long long)e->u.i); break;
  case FE_E_FLOAT: print_float(b, e->u.f); break;
  case FE_E_STR: print_str(b, e->u.str.s, e->u.str.len); break;
  case FE_E_TRUE: nn_buf_printf(b, "True"); break;
  case FE_E_FALSE: nn_buf_printf(b, "False"); break;
  case FE_E_NONE: nn_buf_printf(b, "None"); break;
  case FE_E_ATTR:
    print_postfix_obj(b, e->u.attr.obj);
    nn_buf_printf(b, ".%s", e->u.attr.name);
    break;
  case FE_E_CALL:
    print_postfix_obj(b, e->u.call.fn);
    nn_buf_putn(b, "(", 1);
    print_list(b, e->u.call.args, e->u.call.nargs);
    for (int i = 0; i < e->u.call.nkw; i++) {
      if (i || e->u.call.nargs) nn_buf_putn(b, ", ", 2);
      nn_buf_printf(b, "%s=", e->u.call.kwnames[i]);
      fe_expr_print(b, e->u.call.kwargs[i]);
    }
    nn_buf_putn(b, ")", 1);
    break;
  case FE_E_SUBSCRIPT:
    print_postfix_obj(b, e->u.sub.obj);
    nn_buf_putn(b, "[", 1);
    print_list(b, e->u.sub.idx, e->u.sub.nidx);
    nn_buf_putn(b, "]", 1);
    break;
  case FE_E_SLICE:
    if (e->u.slice.lo) fe_expr_print(b, e->u.slice.lo);
    nn_buf_putn(b, ":", 1);
    if (e->u.slice.hi) fe_expr_print(b, e->u.slice.hi);
    if (e->u.slice.step) {
      nn_buf_putn(b, ":", 1);
      fe_expr_print(b, e->u.slice.step);
    }
    break;
  case FE_E_LIST:
    nn_buf_putn(b, "[", 1);
    print_list(b, e->u.seq.items, e->u.seq.n);
    nn_buf_putn(b, "]", 1);
    break;
  case FE_E_TUPLE:
    nn_buf_putn(b, "(", 1);
    print_list(b, e->u.seq.items, e->u.seq.n);
    if (e->u.seq.n == 1) nn_buf_putn(b, ",", 1);
    nn_buf_putn(b, ")", 1);
    break;
  case FE_E_DICT:
    nn_buf_putn(b, "{", 1);
    for (int i = 0; i < e->u.dict.n; i++) {
      if (i) nn_buf_putn(b, ", ", 2);
      fe_expr_print(b, e->u.dict.keys[i]);
      nn_buf_putn(b, ": ", 2);
      fe_expr_print(b, e->u.dict.vals[i]);
    }
    nn_buf_putn(b, "}", 1);
    break;
  case FE_E_UNARY: {
    const fe_expr *a = e->u.unary.a;
    bool is_not = strcmp(e->u.unary.op, "not") == 0;
    nn_buf_printf(b, "%s%s", e->u.unary.op, is_not ? " " : "");
    /* "-not x" would not parse. */
    print_paren(b, a, !is_not && a->kind == FE_E_UNARY && strcmp(a->u.unary.op, "not") == 0);
    break;
  }
  case FE_E_BINARY: {
    const char *op = e->u.binary.op;
    bool logic = strcmp(op, "and") == 0 || strcmp(op, "or") == 0;
    bool pow = strcmp(op, "**") == 0;
    const fe_expr *a = e->u.binary.a, *c = e->u.binary.b;
    /* `not x` binds looser than everything but and/or; a unary or negative
     * base of ** would bind looser than the **. */
    bool wrap_a = (a->kind == FE_E_UNARY && !strcmp(a->u.unary.op, "not") && !logic) ||
                  (pow && (a->kind == FE_E_UNARY || is_negative_literal(a)));
    bool wrap_c = c->kind == FE_E_UNARY && !strcmp(c->u.unary.op, "not") && !logic;
    nn_buf_putn(b, "(", 1);
    print_paren(b, a, wrap_a);
    nn_buf_printf(b, " %s ", op);
    print_paren(b, c, wrap_c);
    nn_buf_putn(b, ")", 1);
    break;
  }
  case FE_E_TERNARY:
    nn_buf_putn(b, "(", 1);
    fe_expr_print(b, e->u.ternary.then);
    nn_buf_printf(b, " if ");
    fe_expr_print(b, e->u.ternary.cond);
    nn_buf_printf(b, " else ");
    fe_expr_print(b, e->u.ternary.els);
    nn_buf_putn(b, ")", 1);
    break;
  }
}

static void put_indent(nn_buf *b, int indent) {
  for (int i = 0; i < indent; i++) nn_buf_putn(b, "  ", 2);
}

/* A nested block; an empty one prints as `pass` so the text stays valid. */
static void print_body(nn_buf *b, const fe_block *blk, int indent) {
  if (blk->n == 0) {
    put_indent(b, indent);
    nn_buf_printf(b, "pass\n");
    return;
  }
  fe_block_print(b, blk, indent);
}

static void print_stmt(nn_buf *b, const fe_stmt *s, int indent) {
  put_indent(b, indent);
  switch (s->kind) {
  case FE_S_EXPR: fe_expr_print(b, s->u.expr); break;
  case FE_S_ASSIGN:
    for (int i = 0; i < s->u.assign.ntargets; i++) {
      fe_expr_print(b, s->u.assign.targets[i]);
      nn_buf_printf(b, " = ");
    }
    fe_expr_print(b, s->u.assign.value);
    break;
  case FE_S_AUGASSIGN:
    fe_expr_print(b, s->u.aug.target);
    nn_buf_printf(b, " %s ", s->u.aug.op);
    fe_expr_print(b, s->u.aug.value);
    break;
  case FE_S_ANNASSIGN:
    fe_expr_print(b, s->u.ann.target);
    nn_buf_printf(b, " : ");
    fe_expr_print(b, s->u.ann.type);
    if (s->u.ann.value) {
      nn_buf_printf(b, " = ");
      fe_expr_print(b, s->u.ann.value);
    }
    break;
  case FE_S_RETURN:
  case FE_S_RAISE:
  case FE_S_DEL:
    nn_buf_printf(b, "%s",
                  s->kind == FE_S_RETURN  ? "return"
                  : s->kind == FE_S_RAISE ? "raise"
                                          : "del");
    if (s->u.expr) {
      nn_buf_putn(b, " ", 1);
      fe_expr_print(b, s->u.expr);
    }
    break;
  case FE_S_IF:
    nn_buf_printf(b, "if ");
    fe_expr_print(b, s->u.if_.cond);
    nn_buf_printf(b, ":\n");
    print_body(b, &s->u.if_.then, indent + 1);
    if (s->u.if_.els.n) {
      put_indent(b, indent);
      nn_buf_printf(b, "else:\n");
      fe_block_print(b, &s->u.if_.els, indent + 1);
    }
    return;
  case FE_S_FOR:
    nn_buf_printf(b, "for ");
    fe_expr_print(b, s->u.for_.target);
    nn_buf_printf(b, " in ");
    fe_expr_print(b, s->u.for_.iter);
    nn_buf_printf(b, ":\n");
    print_body(b, &s->u.for_.body, indent + 1);
    return;
  case FE_S_WHILE:
    nn_buf_printf(b, "while ");
    fe_expr_print(b, s->u.while_.cond);
    nn_buf_printf(b, ":\n");
    print_body(b, &s->u.while_.body, indent + 1);
    return;
  case FE_S_PASS: nn_buf_printf(b, "pass"); break;
  case FE_S_BREAK: nn_buf_printf(b, "break"); break;
  case FE_S_CONTINUE: nn_buf_printf(b, "continue"); break;
  case FE_S_ASSERT:
    nn_buf_printf(b, "assert ");
    fe_expr_print(b, s->u.assert_.cond);
    if (s->u.assert_.msg) {
      nn_buf_printf(b, ", ");
      fe_expr_print(b, s->u.assert_.msg);
    }
    break;
  case FE_S_GLOBAL: nn_buf_printf(b, "global %s", s->u.import.text); break;
  case FE_S_IMPORT: nn_buf_printf(b, "%s", s->u.import.text); break;
  case FE_S_DEF:
    nn_buf_printf(b, "def %s(", s->u.def.name);
    for (int i = 0; i < s->u.def.nparams; i++) {
      const fe_param *prm = &s->u.def.params[i];
      nn_buf_printf(b, "%s%s", i ? ", " : "", prm->name);
      if (prm->type) {
        nn_buf_printf(b, ": ");
        fe_expr_print(b, prm->type);
      }
      if (prm->deflt) {
        nn_buf_printf(b, "=");
        fe_expr_print(b, prm->deflt);
      }
    }
    nn_buf_printf(b, ")");
    if (s->u.def.ret) {
      nn_buf_printf(b, " -> ");
      fe_expr_print(b, s->u.def.ret);
    }
    nn_buf_printf(b, ":\n");
    print_body(b, &s->u.def.body, indent + 1);
    return;
  case FE_S_CLASS:
    nn_buf_printf(b, "class %s", s->u.class_.name);
    if (s->u.class_.nbases) {
      nn_buf_putn(b, "(", 1);
      print_list(b, s->u.class_.bases, s->u.class_.nbases);
      nn_buf_putn(b, ")", 1);
    }
    nn_buf_printf(b, ":\n");
    print_body(b, &s->u.class_.body, indent + 1);
    return;
  }
  nn_buf_putn(b, "\n", 1);
}

void fe_block_print(nn_buf *b, const fe_block *blk, int indent) {
  for (int i = 0; i < blk->n; i++) print_stmt(b, blk->stmts[i], indent);
}
