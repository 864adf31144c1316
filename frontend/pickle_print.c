/* pickle_print.c — fe_pval trees as indented text, for tests and debugging.
 *
 * fe_pval_print writes one line per value (the format is in frontend.h).
 * The unpickler (pickle.c) builds a DAG, not a tree: a shared value prints
 * once per use, so the walk stops at a fixed depth and line count rather
 * than trusting the input to be small. Scalars follow Python's repr closely
 * enough to read a dump at a glance (floats as the shortest text that reads
 * back to the same double, bytes as b"..." with \xNN escapes).
 */
#include "frontend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Printing walks the value as a tree (shared values print once per use), so
 * it stops after this many lines and below this depth. */
#define PRINT_MAX_LINES 100000
#define PRINT_MAX_DEPTH 64

typedef struct printer {
  nn_buf *b;  /* output */
  long lines; /* lines written so far */
} printer;

/* A quoted string: printable ASCII and UTF-8 as is (for STR), other bytes as
 * \n \t \\ \" or \xNN. */
static void print_quoted(nn_buf *b, const char *s, size_t n, bool bytes) {
  nn_buf_putn(b, bytes ? "b\"" : "\"", bytes ? 2 : 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      nn_buf_printf(b, "\\%c", c);
    else if (c == '\n')
      nn_buf_putn(b, "\\n", 2);
    else if (c == '\t')
      nn_buf_putn(b, "\\t", 2);
    else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80))
      nn_buf_printf(b, "\\x%02x", c);
    else
      nn_buf_putn(b, (const char *)&c, 1);
  }
  nn_buf_putn(b, "\"", 1);
}

/* Shortest text that reads back as the same double, always with a '.', an
 * exponent, or an inf/nan spelling, as Python's repr. */
static void print_float(nn_buf *b, double f) {
  if (isnan(f)) {
    nn_buf_printf(b, "nan");
    return;
  }
  if (isinf(f)) {
    nn_buf_printf(b, f < 0 ? "-inf" : "inf");
    return;
  }
  char t[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(t, sizeof t, "%.*g", p, f);
    if (strtod(t, NULL) == f) break;
  }
  nn_buf_printf(b, "%s%s", t, strpbrk(t, ".e") ? "" : ".0");
}

static void print_dims(nn_buf *b, const int64_t *v, int n) {
  nn_buf_putn(b, "[", 1);
  for (int i = 0; i < n; i++) nn_buf_printf(b, "%s%lld", i ? ", " : "", (long long)v[i]);
  nn_buf_putn(b, "]", 1);
}

static void print_storage_ref(nn_buf *b, const fe_storage *s) {
  nn_buf_printf(b, "\"%s\" (%s, %lld elems)", s->key ? s->key : "?",
                s->location ? s->location : "?", (long long)s->numel);
}

/* One value on the current line: scalars fully, containers as a head such as
 * "dict(2)" (their items follow on the next lines). */
static void print_head(nn_buf *b, const fe_pval *v) {
  switch (v->kind) {
  case FE_PV_NONE: nn_buf_printf(b, "None"); break;
  case FE_PV_BOOL: nn_buf_printf(b, v->u.b ? "True" : "False"); break;
  case FE_PV_INT: nn_buf_printf(b, "%lld", (long long)v->u.i); break;
  case FE_PV_FLOAT: print_float(b, v->u.f); break;
  case FE_PV_STR: print_quoted(b, v->u.str.s, v->u.str.len, false); break;
  case FE_PV_BYTES: print_quoted(b, v->u.str.s, v->u.str.len, true); break;
  case FE_PV_TUPLE:
  case FE_PV_LIST: nn_buf_printf(b, "%s(%d)", fe_pkind_name(v->kind), v->u.seq.n); break;
  case FE_PV_DICT: nn_buf_printf(b, "dict(%d)", v->u.dict.n); break;
  case FE_PV_TENSOR: {
    const fe_tensor *t = v->u.tensor;
    nn_buf_printf(b, "tensor %s", nn_dtype_name(t->dtype));
    print_dims(b, t->sizes, t->rank);
    nn_buf_printf(b, " strides ");
    print_dims(b, t->strides, t->rank);
    nn_buf_printf(b, " offset %lld", (long long)t->offset);
    if (t->storage) {
      nn_buf_printf(b, " storage ");
      print_storage_ref(b, t->storage);
    }
    if (t->legacy_id >= 0) nn_buf_printf(b, " legacy_id %lld", (long long)t->legacy_id);
    if (t->requires_grad) nn_buf_printf(b, " requires_grad");
    break;
  }
  case FE_PV_STORAGE:
    nn_buf_printf(b, "storage %s ", nn_dtype_name(v->u.storage->dtype));
    print_storage_ref(b, v->u.storage);
    break;
  case FE_PV_GLOBAL: nn_buf_printf(b, "global %s.%s", v->u.obj.module, v->u.obj.name); break;
  case FE_PV_OBJECT: nn_buf_printf(b, "object %s.%s", v->u.obj.module, v->u.obj.name); break;
  case FE_PV_DEVICE: nn_buf_printf(b, "device \"%s\"", v->u.device); break;
  default: nn_buf_printf(b, "?"); break;
  }
}

/* Writes `prefix` + head of v as one line at `indent`, then v's items. */
static void print_rec(printer *p, const char *prefix, const fe_pval *key, const fe_pval *v,
                      int indent, int depth) {
  if (p->lines >= PRINT_MAX_LINES) return;
  if (++p->lines == PRINT_MAX_LINES) {
    nn_buf_printf(p->b, "%*s... (output truncated)\n", indent, "");
    return;
  }
  nn_buf_printf(p->b, "%*s%s", indent, "", prefix);
  if (key) {
    print_head(p->b, key);
    nn_buf_printf(p->b, ": ");
  }
  if (!v) {
    nn_buf_printf(p->b, "NULL\n");
    return;
  }
  print_head(p->b, v);
  nn_buf_printf(p->b, "\n");
  bool items = (v->kind == FE_PV_TUPLE || v->kind == FE_PV_LIST) ? v->u.seq.n > 0
               : v->kind == FE_PV_DICT                           ? v->u.dict.n > 0
                                       : v->kind == FE_PV_OBJECT && v->u.obj.state;
  if (!items) return;
  if (depth >= PRINT_MAX_DEPTH) {
    p->lines++;
    nn_buf_printf(p->b, "%*s...\n", indent + 2, "");
    return;
  }
  if (v->kind == FE_PV_TUPLE || v->kind == FE_PV_LIST)
    for (int i = 0; i < v->u.seq.n; i++)
      print_rec(p, "", NULL, v->u.seq.items[i], indent + 2, depth + 1);
  else if (v->kind == FE_PV_DICT)
    for (int i = 0; i < v->u.dict.n; i++)
      print_rec(p, "", v->u.dict.keys[i], v->u.dict.vals[i], indent + 2, depth + 1);
  else
    print_rec(p, "state: ", NULL, v->u.obj.state, indent + 2, depth + 1);
}

void fe_pval_print(nn_buf *b, const fe_pval *v, int indent) {
  printer p = {b, 0};
  print_rec(&p, "", NULL, v, indent, 0);
}
