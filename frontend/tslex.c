/* tslex.c — TorchScript source → tokens.
 *
 * The whole file becomes a token array first, with Python's layout rules:
 * INDENT/DEDENT tokens from leading spaces (any consistent width; a tab in
 * indentation is an error), no NEWLINE inside (), [] and {}, backslash
 * continuation, comments, blank lines, CRLF. Integer literals are decimal,
 * 0x, 0o or 0b, floats use strtod; strings '…', "…", triple-quoted, with
 * optional r/b/u prefixes, escapes \n \t \r \a \b \f \v \\ \' \" \xHH and
 * octal \ooo give one byte each, \uXXXX and \UXXXXXXXX give UTF-8, unknown
 * escapes keep the backslash. A lexing error becomes a final ERR token
 * carrying its message, so errors are still reported in source order: the
 * parser (tsparse.c) reports it when it reaches it. Brackets may nest at
 * most FE_TS_MAX_DEPTH deep, and lexing stops once the arena holds
 * TS_ARENA_LIMIT bytes.
 */
#include "frontend.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Lexing stops once the caller's arena holds this many bytes: a few KB of
 * deflated code can inflate to megabytes of one-byte tokens, each of which
 * costs about a hundred bytes of token and AST, so without a cap a small
 * hostile archive could take any amount of memory. Real code files are
 * orders of magnitude below it. */
#define TS_ARENA_LIMIT ((size_t)256 << 20)

typedef struct lexer {
  const char *src;       /* the file */
  size_t len;            /* its length */
  size_t pos;            /* next byte */
  int line;              /* line of pos, 1-based */
  size_t line_start;     /* offset of the first byte of that line */
  const char *file;      /* for locations */
  nn_arena *arena;       /* tokens and decoded strings */
  NN_VEC(fe_token) toks; /* output */
  NN_VEC(int) indents;   /* open indentation widths; indents.data[0] == 0 */
  int brackets;          /* open (, [, { */
  bool failed;           /* an ERR fe_token was emitted */
} lexer;

/* Operators, longest spellings first so the first match is the longest. */
static const char *const ts_ops[] = {
    "**=", "//=", ">>=", "<<=", "->", "**", "//", "==", "!=", "<=", ">=", "<<", ">>", "+=", "-=",
    "*=",  "/=",  "%=",  "&=",  "|=", "^=", "@=", "+",  "-",  "*",  "/",  "%",  "@",  "<",  ">",
    "=",   ",",   ":",   ".",   "(",  ")",  "[",  "]",  "{",  "}",  "&",  "|",  "^",  "~",  ";",
};

static const char *const ts_keywords[] = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield",
};

static int lx_at(const lexer *l, size_t i) { return i < l->len ? (unsigned char)l->src[i] : -1; }

static nn_loc lx_loc(const lexer *l, size_t pos) {
  nn_loc loc = {l->file, l->line, (int)(pos - l->line_start) + 1};
  return loc;
}

static fe_token *lx_push(lexer *l, fe_tkind kind, nn_loc loc, size_t start, size_t end) {
  fe_token t = {0};
  t.kind = kind;
  t.loc = loc;
  t.src = l->src + start;
  t.srclen = end - start;
  NN_PUSH(l->arena, l->toks, t);
  return &l->toks.data[l->toks.len - 1];
}

/* Records a lexing error as the last fe_token; lexing stops. */
static void lx_error(lexer *l, nn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lx_error(lexer *l, nn_loc loc, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fe_token *t = lx_push(l, FE_TK_ERR, loc, l->pos, l->pos);
  t->text = nn_strdup(l->arena, msg);
  l->failed = true;
}

static bool is_newline(int c) { return c == '\n' || c == '\r'; }
static bool is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(int c) { return is_ident_start(c) || is_digit(c); }
static int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Consumes "\n", "\r\n" or "\r" at pos and starts the next line. */
static void lx_newline(lexer *l) {
  int c = lx_at(l, l->pos++);
  if (c == '\r' && lx_at(l, l->pos) == '\n') l->pos++;
  l->line++;
  l->line_start = l->pos;
}

typedef NN_VEC(char) char_vec;

static void put_utf8(lexer *l, char_vec *out, uint32_t cp) {
  if (cp < 0x80) {
    NN_PUSH(l->arena, *out, (char)cp);
  } else if (cp < 0x800) {
    NN_PUSH(l->arena, *out, (char)(0xC0 | (cp >> 6)));
    NN_PUSH(l->arena, *out, (char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    NN_PUSH(l->arena, *out, (char)(0xE0 | (cp >> 12)));
    NN_PUSH(l->arena, *out, (char)(0x80 | ((cp >> 6) & 0x3F)));
    NN_PUSH(l->arena, *out, (char)(0x80 | (cp & 0x3F)));
  } else {
    NN_PUSH(l->arena, *out, (char)(0xF0 | (cp >> 18)));
    NN_PUSH(l->arena, *out, (char)(0x80 | ((cp >> 12) & 0x3F)));
    NN_PUSH(l->arena, *out, (char)(0x80 | ((cp >> 6) & 0x3F)));
    NN_PUSH(l->arena, *out, (char)(0x80 | (cp & 0x3F)));
  }
}

/* Decodes one escape; pos is just after the backslash. Returns false after
 * reporting an error. */
static bool lx_escape(lexer *l, char_vec *out, nn_loc bs_loc) {
  int c = lx_at(l, l->pos);
  switch (c) {
  case 'n':
    NN_PUSH(l->arena, *out, '\n');
    l->pos++;
    return true;
  case 't':
    NN_PUSH(l->arena, *out, '\t');
    l->pos++;
    return true;
  case 'r':
    NN_PUSH(l->arena, *out, '\r');
    l->pos++;
    return true;
  case 'a':
    NN_PUSH(l->arena, *out, '\a');
    l->pos++;
    return true;
  case 'b':
    NN_PUSH(l->arena, *out, '\b');
    l->pos++;
    return true;
  case 'f':
    NN_PUSH(l->arena, *out, '\f');
    l->pos++;
    return true;
  case 'v':
    NN_PUSH(l->arena, *out, '\v');
    l->pos++;
    return true;
  case '\\':
  case '\'':
  case '"':
    NN_PUSH(l->arena, *out, (char)c);
    l->pos++;
    return true;
  case '\n':
  case '\r': /* backslash-newline: continues the string */ lx_newline(l); return true;
  case 'x':
  case 'u':
  case 'U': {
    int n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
    uint32_t v = 0;
    for (int i = 1; i <= n; i++) {
      int h = hex_value(lx_at(l, l->pos + (size_t)i));
      if (h < 0) {
        lx_error(l, bs_loc, "invalid \\%c escape: expected %d hex digits", c, n);
        return false;
      }
      v = v * 16 + (uint32_t)h;
    }
    l->pos += (size_t)n + 1;
    if (c == 'x') {
      NN_PUSH(l->arena, *out, (char)v);
    } else if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
      lx_error(l, bs_loc, "invalid \\%c escape: not a code point", c);
      return false;
    } else {
      put_utf8(l, out, v);
    }
    return true;
  }
  default:
    if (c >= '0' && c <= '7') {
      unsigned v = 0;
      for (int i = 0; i < 3 && lx_at(l, l->pos) >= '0' && lx_at(l, l->pos) <= '7'; i++)
        v = v * 8 + (unsigned)(l->src[l->pos++] - '0');
      if (v > 0xFF) {
        lx_error(l, bs_loc, "octal escape out of range");
        return false;
      }
      NN_PUSH(l->arena, *out, (char)v);
      return true;
    }
    if (c == 'N') {
      lx_error(l, bs_loc, "unsupported escape '\\N'");
      return false;
    }
    /* Unknown escape (or end of input): keep the backslash, as Python does;
     * the loop then sees the next byte normally. */
    NN_PUSH(l->arena, *out, '\\');
    return true;
  }
}

/* Lexes a string starting at pos (after any prefix letters). */
static void lx_string(lexer *l, size_t start, nn_loc loc, bool raw) {
  char q = l->src[l->pos];
  bool triple = lx_at(l, l->pos + 1) == q && lx_at(l, l->pos + 2) == q;
  l->pos += triple ? 3 : 1;
  char_vec out = {0};
  for (;;) {
    int c = lx_at(l, l->pos);
    if (c < 0 || (!triple && is_newline(c))) {
      lx_error(l, loc, triple ? "unterminated triple-quoted string" : "unterminated string");
      return;
    }
    if (c == q && (!triple || (lx_at(l, l->pos + 1) == q && lx_at(l, l->pos + 2) == q))) {
      l->pos += triple ? 3 : 1;
      break;
    }
    if (is_newline(c)) { /* inside a triple-quoted string */
      lx_newline(l);
      NN_PUSH(l->arena, out, '\n');
      continue;
    }
    if (c == '\\') {
      nn_loc bs = lx_loc(l, l->pos);
      l->pos++;
      if (raw) {
        NN_PUSH(l->arena, out, '\\');
        int d = lx_at(l, l->pos);
        if (d == q || d == '\\') {
          NN_PUSH(l->arena, out, (char)d);
          l->pos++;
        }
        continue;
      }
      if (!lx_escape(l, &out, bs)) return;
      continue;
    }
    NN_PUSH(l->arena, out, (char)c);
    l->pos++;
  }
  fe_token *t = lx_push(l, FE_TK_STR, loc, start, l->pos);
  char *s = nn_alloc(l->arena, (size_t)out.len + 1);
  if (out.len) memcpy(s, out.data, (size_t)out.len);
  t->s = s;
  t->slen = (size_t)out.len;
}

/* Lexes a number literal at pos. */
static void lx_number(lexer *l) {
  size_t start = l->pos;
  nn_loc loc = lx_loc(l, start);
  int c = lx_at(l, l->pos), c1 = lx_at(l, l->pos + 1);
  bool is_float = false, too_large = false;
  uint64_t u = 0;
  const uint64_t limit = (uint64_t)1 << 63;
  if (c == '0' && c1 > 0 && strchr("xXoObB", c1)) {
    int base = (c1 == 'x' || c1 == 'X') ? 16 : (c1 == 'o' || c1 == 'O') ? 8 : 2;
    l->pos += 2;
    size_t digits = 0;
    for (;;) {
      int h = hex_value(lx_at(l, l->pos));
      if (h < 0 || h >= base) break;
      if (u > (UINT64_MAX - (uint64_t)h) / (uint64_t)base) too_large = true;
      u = u * (uint64_t)base + (uint64_t)h;
      l->pos++;
      digits++;
    }
    if (digits == 0 || is_ident_char(lx_at(l, l->pos))) {
      lx_error(l, loc, "invalid number literal");
      return;
    }
  } else {
    while (is_digit(lx_at(l, l->pos))) l->pos++;
    if (lx_at(l, l->pos) == '.') {
      is_float = true;
      l->pos++;
      while (is_digit(lx_at(l, l->pos))) l->pos++;
    }
    int e = lx_at(l, l->pos);
    if (e == 'e' || e == 'E') {
      size_t k = l->pos + 1;
      if (lx_at(l, k) == '+' || lx_at(l, k) == '-') k++;
      if (!is_digit(lx_at(l, k))) {
        lx_error(l, loc, "invalid number literal: missing exponent digits");
        return;
      }
      is_float = true;
      l->pos = k;
      while (is_digit(lx_at(l, l->pos))) l->pos++;
    }
    if (is_ident_char(lx_at(l, l->pos))) {
      lx_error(l, loc, "invalid number literal");
      return;
    }
    if (!is_float) {
      bool nonzero = false;
      for (size_t i = start; i < l->pos; i++) {
        uint64_t d = (uint64_t)(l->src[i] - '0');
        if (d) nonzero = true;
        if (u > (UINT64_MAX - d) / 10) too_large = true;
        u = u * 10 + d;
      }
      if (l->src[start] == '0' && nonzero) {
        lx_error(l, loc, "invalid number literal: leading zeros");
        return;
      }
    }
  }
  if (is_float) {
    fe_token *t = lx_push(l, FE_TK_FLOAT, loc, start, l->pos);
    t->f = strtod(nn_strndup(l->arena, l->src + start, l->pos - start), NULL);
    return;
  }
  if (too_large || u > limit) {
    l->pos = start;
    lx_error(l, loc, "integer literal too large");
    return;
  }
  fe_token *t = lx_push(l, FE_TK_INT, loc, start, l->pos);
  t->u = u;
}

/* Measures the indentation of the line starting at pos and emits INDENT or
 * DEDENT tokens. Returns false when the line is blank or a comment (it is
 * then consumed) or on error. */
static bool lx_indent(lexer *l) {
  size_t p = l->pos;
  int width = 0;
  size_t tab = (size_t)-1;
  for (;; p++) {
    int c = lx_at(l, p);
    if (c == ' ')
      width++;
    else if (c == '\f')
      width = 0;
    else if (c == '\t') {
      if (tab == (size_t)-1) tab = p;
    } else
      break;
  }
  int c = lx_at(l, p);
  if (c < 0) { /* trailing whitespace at end of file */
    l->pos = p;
    return false;
  }
  if (c == '#' || is_newline(c)) {
    while (lx_at(l, p) >= 0 && !is_newline(lx_at(l, p))) p++;
    l->pos = p;
    if (p < l->len) lx_newline(l);
    return false;
  }
  if (tab != (size_t)-1) {
    l->pos = tab;
    lx_error(l, lx_loc(l, tab), "tab character in indentation");
    return false;
  }
  l->pos = p;
  nn_loc loc = lx_loc(l, p);
  int top = l->indents.data[l->indents.len - 1];
  if (width > top) {
    NN_PUSH(l->arena, l->indents, width);
    lx_push(l, FE_TK_INDENT, loc, p, p);
  } else if (width < top) {
    while (l->indents.len > 1 && l->indents.data[l->indents.len - 1] > width) {
      l->indents.len--;
      lx_push(l, FE_TK_DEDENT, loc, p, p);
    }
    if (l->indents.data[l->indents.len - 1] != width) {
      lx_error(l, loc, "inconsistent dedent");
      return false;
    }
  }
  return true;
}

static void lx_all(lexer *l) {
  NN_PUSH(l->arena, l->indents, 0);
  bool line_start = true;
  while (!l->failed) {
    if (nn_arena_bytes(l->arena) > TS_ARENA_LIMIT) {
      lx_error(l, lx_loc(l, l->pos), "code too large: reading it would take more than %zu MiB",
               TS_ARENA_LIMIT >> 20);
      break;
    }
    if (line_start && l->brackets == 0) {
      if (!lx_indent(l)) {
        if (l->failed || l->pos >= l->len) break;
        continue;
      }
      line_start = false;
    }
    int c = lx_at(l, l->pos);
    if (c == ' ' || c == '\t' || c == '\f') {
      l->pos++;
      continue;
    }
    if (c < 0) break;
    size_t start = l->pos;
    nn_loc loc = lx_loc(l, start);
    if (c == '#') {
      while (lx_at(l, l->pos) >= 0 && !is_newline(lx_at(l, l->pos))) l->pos++;
      continue;
    }
    if (is_newline(c)) {
      if (l->brackets == 0) {
        lx_push(l, FE_TK_NEWLINE, loc, start, start);
        line_start = true;
      }
      lx_newline(l);
      continue;
    }
    if (c == '\\') {
      if (is_newline(lx_at(l, l->pos + 1))) {
        l->pos++;
        lx_newline(l);
        continue;
      }
      lx_error(l, loc, "unexpected '\\' (a line continuation must end the line)");
      break;
    }
    if (is_ident_start(c)) {
      while (is_ident_char(lx_at(l, l->pos))) l->pos++;
      size_t n = l->pos - start;
      int q = lx_at(l, l->pos);
      if (n <= 2 && (q == '"' || q == '\'') && strspn(l->src + start, "rRbBuU") >= n) {
        bool raw = memchr(l->src + start, 'r', n) || memchr(l->src + start, 'R', n);
        lx_string(l, start, loc, raw);
        continue;
      }
      const char *text = nn_strndup(l->arena, l->src + start, n);
      fe_tkind kind = FE_TK_NAME;
      for (int i = 0; i < NN_ARRAY_LEN(ts_keywords); i++)
        if (strcmp(text, ts_keywords[i]) == 0) kind = FE_TK_KW;
      lx_push(l, kind, loc, start, l->pos)->text = text;
      continue;
    }
    if (is_digit(c) || (c == '.' && is_digit(lx_at(l, l->pos + 1)))) {
      lx_number(l);
      continue;
    }
    if (c == '"' || c == '\'') {
      lx_string(l, start, loc, false);
      continue;
    }
    const char *op = NULL;
    for (int i = 0; i < NN_ARRAY_LEN(ts_ops) && !op; i++) {
      size_t n = strlen(ts_ops[i]);
      if (l->len - l->pos >= n && memcmp(l->src + l->pos, ts_ops[i], n) == 0) op = ts_ops[i];
    }
    if (!op) {
      if (c > 32 && c < 127)
        lx_error(l, loc, "unexpected character '%c'", c);
      else
        lx_error(l, loc, "unexpected byte 0x%02x", (unsigned)c);
      break;
    }
    l->pos += strlen(op);
    if (strchr("([{", op[0]) && op[1] == 0 && ++l->brackets > FE_TS_MAX_DEPTH) {
      /* The parser would stop here too; stopping now keeps a file of a
       * million '(' from becoming a million tokens first. */
      lx_error(l, loc, "nesting too deep (more than %d levels)", FE_TS_MAX_DEPTH);
      break;
    }
    if (strchr(")]}", op[0]) && op[1] == 0 && l->brackets > 0) l->brackets--;
    lx_push(l, FE_TK_OP, loc, start, l->pos)->text = op;
  }
  nn_loc end = lx_loc(l, l->pos);
  if (!l->failed && l->brackets == 0) {
    if (l->toks.len > 0 && l->toks.data[l->toks.len - 1].kind != FE_TK_NEWLINE &&
        l->toks.data[l->toks.len - 1].kind != FE_TK_DEDENT)
      lx_push(l, FE_TK_NEWLINE, end, l->pos, l->pos);
    for (; l->indents.len > 1; l->indents.len--) lx_push(l, FE_TK_DEDENT, end, l->pos, l->pos);
  }
  lx_push(l, FE_TK_EOF, end, l->pos, l->pos);
}

fe_token *fe_lex(const char *src, size_t len, const char *file, nn_arena *arena, int *ntok,
                 bool *failed) {
  lexer l = {0};
  l.src = src ? src : "";
  l.len = src ? len : 0;
  l.line = 1;
  l.file = nn_strdup(arena, file ? file : "<input>");
  l.arena = arena;
  lx_all(&l);
  *ntok = l.toks.len;
  *failed = l.failed;
  return l.toks.data;
}
