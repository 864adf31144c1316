/* parse.c — reading the textual IR back.
 *
 * The input is exactly what print.c writes (see the format there), with
 * optional group(N), loc(...) and scope(...) suffixes (in that order),
 * blank lines, and comment lines whose first non-blank characters are "//"
 * (elsewhere "//" is the floor division of dims). Line breaks are otherwise just white space.
 *
 * The parser is a hand-written lexer plus recursive descent. It stops at the
 * first error, reported through nn_error as "FILE:LINE:COL: message" at the
 * offending token, and returns NULL; recursion depth (nested types and
 * parenthesized dims) is bounded, and the text need not be NUL-terminated,
 * so any byte string is safe input.
 *
 * What the text maps to: the graph's inputs with their names and types;
 * one node per line in program order with its attributes (constant value,
 * weight, inplace, index), group, loc, scope and result types; the
 * outputs. Value numbers only name values inside the text: they must be
 * defined before use and only once, but need not be dense. A
 * weight("name") node refers to a weight of that name, created on first
 * sight with the dtype and sizes of the node's type (when it is a tensor of
 * constant dims) and no data.
 * Nodes without a loc(...) get no location.
 */
#include "ir.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 64 }; /* nesting of types and parenthesized dims */

typedef enum tkind {
  TK_EOF,
  TK_IDENT,
  TK_INT,    /* digits */
  TK_FLOAT,  /* digits with '.' or an exponent */
  TK_STRING, /* "..." */
  TK_PUNCT,  /* one of ()[]{}<>,:=*+-/%? or -> or // */
} tkind;

enum { P_ARROW = 256, P_FLOORDIV }; /* two-character puncts */

typedef struct token {
  tkind kind;
  const char *start; /* first byte in the text */
  size_t len;        /* bytes */
  int line, col;     /* 1-based position */
  uint64_t u;        /* INT: value */
  bool overflow;     /* INT: did not fit in 64 bits */
  double f;          /* FLOAT: value */
  const char *s;     /* STRING: decoded contents (arena) */
  int punct;         /* PUNCT: the character, or P_ARROW / P_FLOORDIV */
} token;

typedef struct valslot {
  uint64_t num; /* the N of %N */
  ir_value v;   /* its value, IR_NOVAL = empty slot */
} valslot;

typedef struct parser {
  const char *text;              /* input, not necessarily NUL-terminated */
  size_t len;                    /* bytes of input */
  size_t pos;                    /* next byte to lex */
  int line, col;                 /* position of text[pos] */
  bool line_start;               /* only blanks so far on this line */
  const char *file;              /* for error locations */
  nn_arena *arena;               /* owns the graph */
  nn_diag *d;                    /* error sink */
  ir_graph *g;                   /* being built */
  token tok;                     /* current token */
  int depth;                     /* current nesting */
  jmp_buf fail;                  /* taken after the first error */
  valslot *vals;                 /* %N -> value (open addressing) */
  uint32_t vcap;                 /* slots in vals, a power of two */
  uint32_t vcount;               /* used slots */
  NN_VEC(ir_value) args;         /* scratch: a node's operands */
  NN_VEC(const ir_type *) types; /* scratch: result types */
} parser;

/* ---- errors ----------------------------------------------------------- */

static _Noreturn __attribute__((format(printf, 4, 5))) void
fail_at(parser *p, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nn_vreport(p->d, "error", (nn_loc){p->file, line, col}, fmt, ap);
  va_end(ap);
  p->d->errors++;
  longjmp(p->fail, 1);
}

/* The current token for "found X" in messages. */
static const char *describe(parser *p) {
  const token *t = &p->tok;
  if (t->kind == TK_EOF) return "end of input";
  size_t n = t->len > 32 ? 32 : t->len;
  return nn_sprintf(p->arena, "'%.*s%s'", (int)n, t->start, t->len > 32 ? "..." : "");
}

#define FAIL(p, ...) fail_at((p), (p)->tok.line, (p)->tok.col, __VA_ARGS__)

/* ---- lexer ------------------------------------------------------------ */

static int peekc(const parser *p, size_t ahead) {
  return p->pos + ahead < p->len ? (unsigned char)p->text[p->pos + ahead] : -1;
}

static void advance(parser *p) {
  if (p->text[p->pos] == '\n') {
    p->line++;
    p->col = 1;
    p->line_start = true;
  } else {
    p->col++;
  }
  p->pos++;
}

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void lex_string(parser *p, token *t) {
  advance(p); /* the opening quote */
  char *out = nn_alloc(p->arena, 1);
  size_t n = 0, cap = 1;
  for (;;) {
    int c = peekc(p, 0);
    if (c < 0 || c == '\n') fail_at(p, t->line, t->col, "unterminated string");
    int line = p->line, col = p->col;
    advance(p);
    if (c == '"') break;
    if (c < 0x20) fail_at(p, line, col, "control character in string");
    if (c == '\\') {
      int e = peekc(p, 0);
      if (e == '"' || e == '\\') {
        c = e;
      } else if (e == 'n') {
        c = '\n';
      } else if (e == 't') {
        c = '\t';
      } else if (e == 'x' && hexval(peekc(p, 1)) >= 0 && hexval(peekc(p, 2)) >= 0) {
        c = hexval(peekc(p, 1)) * 16 + hexval(peekc(p, 2));
        advance(p);
        advance(p);
        if (c == 0) fail_at(p, line, col, "\\x00 in string");
      } else {
        fail_at(p, line, col, "invalid escape in string");
      }
      advance(p);
    }
    if (n + 1 >= cap) {
      out = nn_realloc(p->arena, out, cap, cap * 2);
      cap *= 2;
    }
    out[n++] = (char)c;
  }
  out[n] = 0;
  t->kind = TK_STRING;
  t->s = out;
}

static void lex_number(parser *p, token *t) {
  bool is_float = false;
  t->u = 0;
  t->overflow = false;
  while (is_digit(peekc(p, 0))) {
    unsigned dig = (unsigned)(peekc(p, 0) - '0');
    if (t->u > (UINT64_MAX - dig) / 10) t->overflow = true;
    t->u = t->u * 10 + dig;
    advance(p);
  }
  if (peekc(p, 0) == '.') {
    is_float = true;
    advance(p);
    while (is_digit(peekc(p, 0))) advance(p);
  }
  int e = peekc(p, 0);
  if ((e == 'e' || e == 'E') &&
      (is_digit(peekc(p, 1)) ||
       ((peekc(p, 1) == '+' || peekc(p, 1) == '-') && is_digit(peekc(p, 2))))) {
    is_float = true;
    advance(p);
    advance(p);
    while (is_digit(peekc(p, 0))) advance(p);
  }
  t->kind = is_float ? TK_FLOAT : TK_INT;
  if (is_float) {
    size_t n = (size_t)(p->text + p->pos - t->start);
    char *s = nn_strndup(p->arena, t->start, n);
    t->f = strtod(s, NULL);
  }
}

static void next(parser *p) {
  /* Blanks, line breaks and comment lines. */
  for (;;) {
    int c = peekc(p, 0);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      advance(p);
    } else if (c == '/' && peekc(p, 1) == '/' && p->line_start) {
      while (peekc(p, 0) >= 0 && peekc(p, 0) != '\n') advance(p);
    } else {
      break;
    }
  }
  token *t = &p->tok;
  memset(t, 0, sizeof *t);
  t->start = p->text + p->pos;
  t->line = p->line;
  t->col = p->col;
  int c = peekc(p, 0);
  if (c < 0) {
    t->kind = TK_EOF;
    return;
  }
  p->line_start = false;
  if (is_alpha(c)) {
    while (is_alpha(peekc(p, 0)) || is_digit(peekc(p, 0))) advance(p);
    t->kind = TK_IDENT;
  } else if (is_digit(c)) {
    lex_number(p, t);
  } else if (c == '"') {
    lex_string(p, t);
  } else if (c == '-' && peekc(p, 1) == '>') {
    advance(p);
    advance(p);
    t->kind = TK_PUNCT;
    t->punct = P_ARROW;
  } else if (c == '/' && peekc(p, 1) == '/') {
    advance(p);
    advance(p);
    t->kind = TK_PUNCT;
    t->punct = P_FLOORDIV;
  } else if (c && strchr("()[]{}<>,:=*+-/%?", c)) {
    advance(p);
    t->kind = TK_PUNCT;
    t->punct = c;
  } else {
    fail_at(p, t->line, t->col, "unexpected character '\\x%02x'", c);
  }
  t->len = (size_t)(p->text + p->pos - t->start);
}

/* ---- token helpers ---------------------------------------------------- */

static bool is_punct(const parser *p, int c) {
  return p->tok.kind == TK_PUNCT && p->tok.punct == c;
}

static bool accept(parser *p, int c) {
  if (!is_punct(p, c)) return false;
  next(p);
  return true;
}

static void expect(parser *p, int c) {
  if (!accept(p, c)) {
    const char *want = c == P_ARROW ? "->" : nn_sprintf(p->arena, "%c", c);
    FAIL(p, "expected '%s', found %s", want, describe(p));
  }
}

static bool is_ident(const parser *p, const char *s) {
  return p->tok.kind == TK_IDENT && p->tok.len == strlen(s) &&
         memcmp(p->tok.start, s, p->tok.len) == 0;
}

static const char *tok_text(parser *p) { return nn_strndup(p->arena, p->tok.start, p->tok.len); }

/* An integer with an optional leading '-', fitting int64. */
static int64_t parse_int(parser *p) {
  bool neg = accept(p, '-');
  if (p->tok.kind != TK_INT) FAIL(p, "expected an integer, found %s", describe(p));
  uint64_t u = p->tok.u;
  if (p->tok.overflow || u > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) FAIL(p, "integer out of range");
  next(p);
  return neg ? (int64_t)(0 - u) : (int64_t)u;
}

/* A bare identifier or a quoted string. */
static const char *parse_name(parser *p) {
  const char *s;
  if (p->tok.kind == TK_IDENT)
    s = tok_text(p);
  else if (p->tok.kind == TK_STRING)
    s = p->tok.s;
  else
    FAIL(p, "expected a name, found %s", describe(p));
  next(p);
  return s;
}

static void enter(parser *p) {
  if (++p->depth > MAX_DEPTH) FAIL(p, "nesting too deep");
}

/* ---- dims and types --------------------------------------------------- */

static ir_dim parse_sum(parser *p);

static ir_dim parse_factor(parser *p) {
  ir_graph *g = p->g;
  if (accept(p, '?')) return IR_DIM_UNKNOWN;
  if (p->tok.kind == TK_INT || is_punct(p, '-')) return ir_dim_const(g, parse_int(p));
  if (p->tok.kind == TK_IDENT || p->tok.kind == TK_STRING) return ir_dim_sym(g, parse_name(p));
  if (is_punct(p, '(')) {
    enter(p);
    next(p);
    ir_dim d = parse_sum(p);
    expect(p, ')');
    p->depth--;
    return d;
  }
  FAIL(p, "expected a dim, found %s", describe(p));
}

static ir_dim parse_product(parser *p) {
  ir_dim d = parse_factor(p);
  for (;;) {
    if (accept(p, '*'))
      d = ir_dim_mul(p->g, d, parse_factor(p));
    else if (accept(p, '/'))
      d = ir_dim_div(p->g, d, parse_factor(p));
    else if (accept(p, P_FLOORDIV))
      d = ir_dim_floordiv(p->g, d, parse_factor(p));
    else if (accept(p, '%'))
      d = ir_dim_mod(p->g, d, parse_factor(p));
    else
      return d;
  }
}

static ir_dim parse_sum(parser *p) {
  ir_dim d = parse_product(p);
  for (;;) {
    if (accept(p, '+')) {
      d = ir_dim_add(p->g, d, parse_product(p));
    } else if (accept(p, '-')) {
      ir_dim t = ir_dim_mul(p->g, ir_dim_const(p->g, -1), parse_product(p));
      d = ir_dim_add(p->g, d, t);
    } else {
      return d;
    }
  }
}

static const ir_type *parse_tensor(parser *p, nn_dtype dt) {
  expect(p, '[');
  if (accept(p, '*')) {
    expect(p, ']');
    return ir_type_tensor(p->g, dt, -1, NULL);
  }
  NN_VEC(ir_dim) dims = {0};
  if (!is_punct(p, ']')) {
    do NN_PUSH(p->arena, dims, parse_sum(p));
    while (accept(p, ','));
  }
  expect(p, ']');
  return ir_type_tensor(p->g, dt, dims.len, dims.data);
}

static const ir_type *parse_type(parser *p) {
  ir_graph *g = p->g;
  const ir_type *t = NULL;
  enter(p);
  if (accept(p, '?')) {
    t = parse_tensor(p, NN_DT_UNKNOWN);
  } else if (p->tok.kind == TK_IDENT) {
    static const struct {
      const char *name;
      ir_tkind kind;
    } scalars[] = {{"int", IR_T_INT}, {"float", IR_T_FLOAT},   {"none", IR_T_NONE},
                   {"str", IR_T_STR}, {"device", IR_T_DEVICE}, {"unknown", IR_T_UNKNOWN}};
    for (int i = 0; i < NN_ARRAY_LEN(scalars) && !t; i++)
      if (is_ident(p, scalars[i].name)) {
        next(p);
        t = ir_type_scalar(g, scalars[i].kind);
      }
    if (t) {
      /* done */
    } else if (is_ident(p, "list")) {
      next(p);
      expect(p, '<');
      t = ir_type_list(g, parse_type(p));
      expect(p, '>');
    } else if (is_ident(p, "tuple")) {
      next(p);
      expect(p, '<');
      NN_VEC(const ir_type *) elems = {0};
      if (!is_punct(p, '>')) {
        do NN_PUSH(p->arena, elems, parse_type(p));
        while (accept(p, ','));
      }
      expect(p, '>');
      t = ir_type_tuple(g, elems.len, elems.data);
    } else {
      const char *name = tok_text(p);
      nn_dtype dt = nn_dtype_parse(name);
      int line = p->tok.line, col = p->tok.col;
      next(p);
      if (dt != NN_DT_UNKNOWN && is_punct(p, '['))
        t = parse_tensor(p, dt);
      else if (strcmp(name, "bool") == 0)
        t = ir_type_scalar(g, IR_T_BOOL);
      else
        fail_at(p, line, col, "unknown type '%s'", name);
    }
  } else {
    FAIL(p, "expected a type, found %s", describe(p));
  }
  p->depth--;
  return t;
}

/* ---- values ----------------------------------------------------------- */

static uint32_t num_hash(uint64_t n) {
  n ^= n >> 33;
  n *= 0xff51afd7ed558ccdull;
  return (uint32_t)(n ^ (n >> 32));
}

static valslot *val_slot(parser *p, uint64_t num) {
  uint32_t i = num_hash(num) & (p->vcap - 1);
  while (p->vals[i].v != IR_NOVAL && p->vals[i].num != num) i = (i + 1) & (p->vcap - 1);
  return &p->vals[i];
}

static void val_bind(parser *p, uint64_t num, ir_value v) {
  if ((p->vcount + 1) * 2 > p->vcap) {
    valslot *old = p->vals;
    uint32_t oldcap = p->vcap;
    p->vcap = oldcap ? oldcap * 2 : 256;
    p->vals = nn_alloc(p->arena, sizeof *p->vals * p->vcap);
    for (uint32_t i = 0; i < p->vcap; i++) p->vals[i].v = IR_NOVAL;
    for (uint32_t i = 0; i < oldcap; i++)
      if (old[i].v != IR_NOVAL) *val_slot(p, old[i].num) = old[i];
  }
  valslot *s = val_slot(p, num);
  NN_ASSERT(s->v == IR_NOVAL);
  s->num = num;
  s->v = v;
  p->vcount++;
}

static ir_value val_find(parser *p, uint64_t num) {
  return p->vcap ? val_slot(p, num)->v : IR_NOVAL;
}

/* "%N" where N is not yet defined; returns N. */
static uint64_t parse_def(parser *p) {
  if (!is_punct(p, '%')) FAIL(p, "expected a value, found %s", describe(p));
  next(p);
  if (p->tok.kind != TK_INT || p->tok.overflow)
    FAIL(p, "expected a value number, found %s", describe(p));
  uint64_t num = p->tok.u;
  if (val_find(p, num) != IR_NOVAL)
    FAIL(p, "value %%%llu is defined twice", (unsigned long long)num);
  next(p);
  return num;
}

/* "%N" for a defined value. */
static ir_value parse_use(parser *p) {
  int line = p->tok.line, col = p->tok.col;
  if (!is_punct(p, '%')) FAIL(p, "expected a value, found %s", describe(p));
  next(p);
  if (p->tok.kind != TK_INT || p->tok.overflow)
    FAIL(p, "expected a value number, found %s", describe(p));
  ir_value v = val_find(p, p->tok.u);
  if (v == IR_NOVAL)
    fail_at(p, line, col, "use of undefined value %%%llu", (unsigned long long)p->tok.u);
  next(p);
  return v;
}

/* ---- literals --------------------------------------------------------- */

typedef enum lkind { L_INT, L_FLOAT, L_BOOL, L_NONE, L_STR, L_LIST } lkind;

typedef struct literal {
  lkind kind;
  int64_t i;                    /* INT, BOOL */
  double f;                     /* FLOAT */
  const char *s;                /* STR */
  NN_VEC(struct literal) elems; /* LIST */
} literal;

/* A number (int or float, optional '-'), inf, nan, true or false. */
static literal parse_scalar(parser *p) {
  literal l = {0};
  bool neg = is_punct(p, '-');
  if (is_ident(p, "true") || is_ident(p, "false")) {
    l.kind = L_BOOL;
    l.i = is_ident(p, "true");
    next(p);
  } else if (is_ident(p, "nan")) {
    l.kind = L_FLOAT;
    l.f = NAN;
    next(p);
  } else if (neg || p->tok.kind == TK_INT || p->tok.kind == TK_FLOAT || is_ident(p, "inf")) {
    if (neg) next(p);
    if (p->tok.kind == TK_FLOAT || is_ident(p, "inf")) {
      l.kind = L_FLOAT;
      l.f = p->tok.kind == TK_FLOAT ? p->tok.f : INFINITY;
      if (neg) l.f = -l.f;
      next(p);
    } else if (p->tok.kind == TK_INT) {
      l.kind = L_INT;
      if (p->tok.overflow || p->tok.u > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        FAIL(p, "integer out of range");
      l.i = neg ? (int64_t)(0 - p->tok.u) : (int64_t)p->tok.u;
      next(p);
    } else {
      FAIL(p, "expected a number, found %s", describe(p));
    }
  } else {
    FAIL(p, "expected a constant, found %s", describe(p));
  }
  return l;
}

static literal parse_literal(parser *p) {
  literal l = {0};
  if (is_ident(p, "none")) {
    l.kind = L_NONE;
    next(p);
  } else if (p->tok.kind == TK_STRING) {
    l.kind = L_STR;
    l.s = p->tok.s;
    next(p);
  } else if (accept(p, '[')) {
    l.kind = L_LIST;
    if (!is_punct(p, ']')) {
      do NN_PUSH(p->arena, l.elems, parse_scalar(p));
      while (accept(p, ','));
    }
    expect(p, ']');
  } else {
    l = parse_scalar(p);
  }
  return l;
}

/* The constant of literal l; `t` (the result's type, or NULL) tells str
 * from device and the element kind of an empty list. */
static ir_const make_const(parser *p, const literal *l, const ir_type *t, int line, int col) {
  ir_const c = {0};
  switch (l->kind) {
  case L_INT:
    c.kind = IR_C_INT;
    c.i = l->i;
    break;
  case L_FLOAT:
    c.kind = IR_C_FLOAT;
    c.f = l->f;
    break;
  case L_BOOL:
    c.kind = IR_C_BOOL;
    c.i = l->i;
    break;
  case L_NONE: c.kind = IR_C_NONE; break;
  case L_STR:
    c.kind = t && t->kind == IR_T_DEVICE ? IR_C_DEVICE : IR_C_STR;
    c.s = l->s;
    break;
  case L_LIST: {
    int n = l->elems.len, nbool = 0, nfloat = 0;
    for (int i = 0; i < n; i++) {
      nbool += l->elems.data[i].kind == L_BOOL;
      nfloat += l->elems.data[i].kind == L_FLOAT;
    }
    ir_tkind ek = t && t->kind == IR_T_LIST ? t->elems[0]->kind : IR_T_INT;
    if (nbool && nbool != n) fail_at(p, line, col, "list constant mixes bools and numbers");
    if (nbool || (n == 0 && ek == IR_T_BOOL))
      c.kind = IR_C_BOOLLIST;
    else if (nfloat || ek == IR_T_FLOAT)
      c.kind = IR_C_FLOATLIST;
    else
      c.kind = IR_C_INTLIST;
    c.n = n;
    if (c.kind == IR_C_FLOATLIST) {
      double *f = nn_alloc(p->arena, sizeof *f * (size_t)(n ? n : 1));
      for (int i = 0; i < n; i++) {
        const literal *e = &l->elems.data[i];
        f[i] = e->kind == L_FLOAT ? e->f : (double)e->i;
      }
      c.floats = f;
    } else {
      int64_t *v = nn_alloc(p->arena, sizeof *v * (size_t)(n ? n : 1));
      for (int i = 0; i < n; i++) v[i] = l->elems.data[i].i;
      c.ints = v;
    }
    break;
  }
  }
  return c;
}

/* The index of the weight called `name`, created from type t if new. */
static int32_t weight_for(parser *p, const char *name, const ir_type *t) {
  ir_graph *g = p->g;
  for (int i = 0; i < g->weights.len; i++)
    if (strcmp(g->weights.data[i].name, name) == 0) return i;
  ir_weight w = {0};
  w.name = name;
  if (t && t->kind == IR_T_TENSOR) {
    w.dtype = t->dtype;
    bool sized = t->rank >= 0;
    for (int i = 0; sized && i < t->rank; i++) sized = ir_dim_is_const(g, t->dims[i], NULL);
    if (sized && t->rank > 0) {
      int64_t *sizes = nn_alloc(p->arena, sizeof *sizes * (size_t)t->rank);
      for (int i = 0; i < t->rank; i++) ir_dim_is_const(g, t->dims[i], &sizes[i]);
      w.rank = t->rank;
      w.sizes = sizes;
    }
  }
  return ir_add_weight(g, &w);
}

/* ---- statements ------------------------------------------------------- */

/* One node: `defs` (ndefs numbers) were parsed before the '='. */
static void parse_node(parser *p, const uint64_t *defs, int ndefs) {
  ir_graph *g = p->g;
  if (p->tok.kind != TK_IDENT) FAIL(p, "expected an op, found %s", describe(p));
  const char *name = tok_text(p);
  ir_op op = ir_op_lookup(name);
  if (op == NN_OP_COUNT) FAIL(p, "unknown op '%s'", name);
  next(p);
  expect(p, '(');
  p->args.len = 0;
  literal lit = {0};
  const char *wname = NULL;
  int lit_line = p->tok.line, lit_col = p->tok.col;
  bool first = true;
  if (op == NN_OP_CONSTANT) {
    lit = parse_literal(p);
    first = false;
  } else if (op == NN_OP_WEIGHT) {
    if (p->tok.kind != TK_STRING) FAIL(p, "expected a weight name, found %s", describe(p));
    wname = p->tok.s;
    next(p);
    first = false;
  }
  if (first ? !is_punct(p, ')') : accept(p, ',')) {
    do NN_PUSH(p->arena, p->args, parse_use(p));
    while (accept(p, ','));
  }
  expect(p, ')');

  unsigned flags = 0;
  int64_t index = 0;
  if (accept(p, '{')) {
    do {
      if (is_ident(p, "inplace")) {
        next(p);
        flags |= IR_NF_INPLACE;
      } else if (is_ident(p, "index")) {
        next(p);
        expect(p, '=');
        index = parse_int(p);
      } else {
        FAIL(p, "unknown attribute %s", describe(p));
      }
    } while (accept(p, ','));
    expect(p, '}');
  }

  p->types.len = 0;
  if (ndefs > 0) {
    int line = p->tok.line, col = p->tok.col;
    expect(p, ':');
    do NN_PUSH(p->arena, p->types, parse_type(p));
    while (accept(p, ','));
    if (p->types.len != ndefs)
      fail_at(p, line, col, "node has %d results but %d types", ndefs, p->types.len);
  }

  int32_t group = 0;
  if (is_ident(p, "group")) {
    next(p);
    expect(p, '(');
    int line = p->tok.line, col = p->tok.col;
    int64_t gid = parse_int(p);
    if (gid <= 0 || gid > INT32_MAX)
      fail_at(p, line, col, "group id must be a positive 32-bit number");
    group = (int32_t)gid;
    expect(p, ')');
  }
  nn_loc loc = {0};
  if (is_ident(p, "loc")) {
    next(p);
    expect(p, '(');
    if (p->tok.kind != TK_STRING) FAIL(p, "expected a file name, found %s", describe(p));
    loc.file = p->tok.s;
    next(p);
    expect(p, ':');
    int64_t line = parse_int(p);
    expect(p, ':');
    int64_t col = parse_int(p);
    if (line < 0 || line > INT_MAX || col < 0 || col > INT_MAX) FAIL(p, "location out of range");
    loc.line = (int)line;
    loc.col = (int)col;
    expect(p, ')');
  }
  const char *scope = "";
  if (is_ident(p, "scope")) {
    next(p);
    expect(p, '(');
    if (p->tok.kind != TK_STRING) FAIL(p, "expected a scope string, found %s", describe(p));
    scope = p->tok.s;
    next(p);
    expect(p, ')');
  }

  const ir_type *t0 = ndefs > 0 ? p->types.data[0] : NULL;
  ir_const c = {0};
  int32_t weight = -1;
  if (op == NN_OP_CONSTANT) c = make_const(p, &lit, t0, lit_line, lit_col);
  if (op == NN_OP_WEIGHT) weight = weight_for(p, wname, t0);

  ir_nodeid id = ir_append(g, op, p->args.len, p->args.data, ndefs, loc);
  ir_node *n = ir_node_get(g, id);
  n->flags = flags;
  n->index = index;
  n->scope = scope;
  n->group = group;
  n->c = c;
  n->weight = weight;
  for (int i = 0; i < ndefs; i++) {
    ir_value v = n->out[i];
    ir_set_type(g, v, p->types.data[i]);
    val_bind(p, defs[i], v);
  }
}

static void parse_body(parser *p) {
  NN_VEC(uint64_t) defs = {0};
  for (;;) {
    if (is_ident(p, "return")) {
      next(p);
      if (is_punct(p, '%')) {
        do ir_add_output(p->g, parse_use(p));
        while (accept(p, ','));
      }
      expect(p, '}');
      return;
    }
    defs.len = 0;
    if (is_punct(p, '%')) {
      for (;;) {
        int line = p->tok.line, col = p->tok.col;
        uint64_t num = parse_def(p);
        for (int i = 0; i < defs.len; i++)
          if (defs.data[i] == num)
            fail_at(p, line, col, "value %%%llu is defined twice", (unsigned long long)num);
        NN_PUSH(p->arena, defs, num);
        if (!accept(p, ',')) break;
      }
      expect(p, '=');
    } else if (p->tok.kind != TK_IDENT) {
      FAIL(p, "expected a node or 'return', found %s", describe(p));
    }
    parse_node(p, defs.data, defs.len);
  }
}

static ir_graph *parse_graph(parser *p) {
  if (!is_ident(p, "graph")) FAIL(p, "expected 'graph', found %s", describe(p));
  next(p);
  p->g = ir_graph_new(p->arena, parse_name(p));
  ir_graph *g = p->g;
  expect(p, '(');
  if (!is_punct(p, ')')) {
    do {
      uint64_t num = parse_def(p);
      const char *name = NULL;
      if (!is_punct(p, ':')) name = parse_name(p);
      expect(p, ':');
      const ir_type *t = parse_type(p);
      val_bind(p, num, ir_add_input(g, name, t));
    } while (accept(p, ','));
  }
  expect(p, ')');
  expect(p, P_ARROW);
  expect(p, '(');
  NN_VEC(const ir_type *) outs = {0};
  int sig_line = p->tok.line, sig_col = p->tok.col;
  if (!is_punct(p, ')')) {
    do NN_PUSH(p->arena, outs, parse_type(p));
    while (accept(p, ','));
  }
  expect(p, ')');
  expect(p, '{');
  parse_body(p);
  if (p->tok.kind != TK_EOF) FAIL(p, "expected end of input, found %s", describe(p));
  if (outs.len != g->outputs.len)
    fail_at(p, sig_line, sig_col, "the signature lists %d output types but return has %d values",
            outs.len, g->outputs.len);
  for (int i = 0; i < outs.len; i++) {
    if (ir_type_equal(outs.data[i], ir_vtype(g, g->outputs.data[i]))) continue;
    nn_buf want = {0}, have = {0};
    ir_type_print(&want, g, outs.data[i]);
    ir_type_print(&have, g, ir_vtype(g, g->outputs.data[i]));
    const char *w = nn_strdup(p->arena, want.data), *h = nn_strdup(p->arena, have.data);
    nn_buf_free(&want);
    nn_buf_free(&have);
    fail_at(p, sig_line, sig_col, "output %d has type %s but the signature says %s", i, h, w);
  }
  return g;
}

ir_graph *ir_parse(const char *text, size_t len, const char *file, nn_arena *arena, nn_diag *d) {
  parser *p = nn_alloc(arena, sizeof *p);
  p->text = text ? text : "";
  p->len = text ? len : 0;
  p->line = p->col = 1;
  p->line_start = true;
  p->file = file ? file : "<ir>";
  p->arena = arena;
  p->d = d;
  if (setjmp(p->fail)) return NULL;
  next(p);
  return parse_graph(p);
}
