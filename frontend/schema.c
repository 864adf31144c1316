/* schema.c — the ATen schema table.
 *
 * frontend/schemas.def lists, for every op spelling nncc accepts, the
 * argument list as PyTorch declares it (names, types, defaults, keyword-only
 * marker) and how those arguments become the operands of one canonical IR op
 * from ir/ops.def. This file parses those rows once, on first use, into
 * fe_schema records that the lowering matches calls against. A row that does
 * not parse is a bug in the table, so it is an internal error, not a user
 * diagnostic (tests/check_schemas.py keeps the table honest against torch).
 */
#include "frontend.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
  const char *qualname; /* "aten::add" */
  ir_op op;             /* canonical op */
  const char *sig;      /* argument list */
  const char *map;      /* operand mapping */
} row;

static const row rows[] = {
#define SCHEMA(q, op, sig, map) {q, NN_OP_##op, sig, map},
#include "schemas.def"
#undef SCHEMA
};

enum { NROWS = sizeof rows / sizeof rows[0] };

static fe_schema table[NROWS];                    /* parsed rows, same order */
static const fe_schema *sorted[NROWS];            /* by qualname, stable */
static pthread_once_t parsed = PTHREAD_ONCE_INIT; /* the table, parsed once */

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  NN_ASSERT(d);
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

static char *xstrdup(const char *s) { return dupn(s, strlen(s)); }

/* calloc that cannot return NULL (the table is small; failure is fatal). */
static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  NN_ASSERT(p);
  return p;
}

static char *trim(char *s) {
  /* s comes from dupn(), whose memcpy the analyzer does not follow */
  // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.ArraySubscript)
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
  return s;
}

/* Splits `s` at top-level commas (outside brackets and quotes). */
static int split_commas(const char *s, char ***out) {
  int n = 0, cap = 8, depth = 0;
  char **v = malloc(sizeof(char *) * (size_t)cap);
  NN_ASSERT(v);
  const char *start = s;
  char quote = 0;
  for (const char *p = s;; p++) {
    if (quote) {
      if (*p == '\\' && p[1])
        p++;
      else if (*p == quote)
        quote = 0;
      else if (!*p)
        break;
      continue;
    }
    if (*p == '"' || *p == '\'')
      quote = *p;
    else if (*p == '[' || *p == '(')
      depth++;
    else if (*p == ']' || *p == ')')
      depth--;
    if ((*p == ',' && depth == 0) || !*p) {
      if (n == cap) {
        char **nv = realloc(v, sizeof(char *) * (size_t)(cap *= 2));
        NN_ASSERT(nv);
        v = nv;
      }
      v[n++] = dupn(start, (size_t)(p - start));
      if (!*p) break;
      start = p + 1;
    }
  }
  *out = v;
  return n;
}

static fe_atype parse_type(const char *t, int *list_len, bool *optional, const char *qualname) {
  char buf[64];
  size_t n = 0;
  *list_len = 0;
  *optional = false;
  /* Drop alias annotations like Tensor(a!) and collect the rest. */
  for (const char *p = t; *p && n + 1 < sizeof buf; p++) {
    if (*p == '(') {
      while (*p && *p != ')') p++;
      if (!*p) break;
      continue;
    }
    buf[n++] = *p;
  }
  buf[n] = 0;
  if (n && buf[n - 1] == '?') {
    *optional = true;
    buf[--n] = 0;
  }
  bool list = false;
  char *br = strchr(buf, '[');
  if (br) {
    list = true;
    *list_len = (int)strtol(br + 1, NULL, 10);
    if (br > buf && br[-1] == '?') { /* Tensor?[] */
      br[-1] = 0;
    }
    *br = 0;
  }
  if (strcmp(buf, "t") == 0) return list ? FE_AT_ANY_LIST : FE_AT_ANY;
  if (strcmp(buf, "Tensor") == 0) return list ? FE_AT_TENSOR_LIST : FE_AT_TENSOR;
  if (strcmp(buf, "int") == 0 || strcmp(buf, "SymInt") == 0)
    return list ? FE_AT_INT_LIST : FE_AT_INT;
  if (strcmp(buf, "float") == 0) return list ? FE_AT_FLOAT_LIST : FE_AT_FLOAT;
  if (strcmp(buf, "bool") == 0) return list ? FE_AT_BOOL_LIST : FE_AT_BOOL;
  if (list)
    nn_internal_error(__FILE__, __LINE__, "schemas.def: %s: unsupported list type '%s'", qualname,
                      t);
  if (strcmp(buf, "Scalar") == 0 || strcmp(buf, "number") == 0) return FE_AT_SCALAR;
  if (strcmp(buf, "str") == 0) return FE_AT_STR;
  if (strcmp(buf, "Device") == 0) return FE_AT_DEVICE;
  if (strcmp(buf, "ScalarType") == 0 || strcmp(buf, "Layout") == 0 ||
      strcmp(buf, "MemoryFormat") == 0)
    return FE_AT_ENUM;
  return FE_AT_OTHER;
}

/* Fills *s (overwritten whole) from row r. */
static void parse_row(const row *r, fe_schema *s) {
  *s = (fe_schema){.qualname = r->qualname, .op = r->op, .sig = r->sig};
  char **parts;
  int np = split_commas(r->sig, &parts);
  s->params = xcalloc((size_t)np + 1, sizeof(fe_sparam));
  bool kwonly = false;
  for (int i = 0; i < np; i++) {
    char *p = trim(parts[i]);
    if (!*p) continue; /* empty signature */
    if (strcmp(p, "*") == 0) {
      kwonly = true;
      continue;
    }
    fe_sparam *sp = &s->params[s->nparams++];
    char *eq = strchr(p, '=');
    if (eq) {
      *eq = 0;
      sp->deflt = xstrdup(trim(eq + 1));
    }
    char *sp_ = strrchr(trim(p), ' ');
    if (!sp_)
      nn_internal_error(__FILE__, __LINE__, "schemas.def: %s: bad argument '%s'", r->qualname, p);
    *sp_ = 0;
    sp->name = xstrdup(trim(sp_ + 1));
    sp->type = parse_type(trim(p), &sp->list_len, &sp->optional, r->qualname);
    sp->kwonly = kwonly;
    if (sp->deflt && strcmp(sp->deflt, "None") == 0) sp->optional = true;
  }
  for (int i = 0; i < np; i++) free(parts[i]);
  free(parts);

  /* The mapping: space-separated argument names or label=literal. Literals
   * may contain spaces inside brackets or quotes. */
  int nin = ir_ops[r->op].nin;
  s->map = xcalloc((size_t)(nin > 0 ? nin : 1) + 8, sizeof(fe_smap));
  const char *m = r->map;
  while (*m) {
    while (*m == ' ') m++;
    if (!*m) break;
    const char *start = m;
    int depth = 0;
    char quote = 0;
    for (; *m; m++) {
      if (quote) {
        if (*m == '\\' && m[1])
          m++;
        else if (*m == quote)
          quote = 0;
        continue;
      }
      if (*m == '"' || *m == '\'')
        quote = *m;
      else if (*m == '[' || *m == '(')
        depth++;
      else if (*m == ']' || *m == ')')
        depth--;
      else if (*m == ' ' && depth == 0)
        break;
    }
    char *item = dupn(start, (size_t)(m - start));
    if (nin >= 0 && s->nmap >= nin)
      nn_internal_error(__FILE__, __LINE__, "schemas.def: %s: more than %d operands in '%s'",
                        r->qualname, nin, r->map);
    fe_smap *sm = &s->map[s->nmap++];
    char *eq = strchr(item, '=');
    if (eq) {
      sm->param = -1;
      sm->literal = xstrdup(eq + 1);
      free(item);
      continue;
    }
    sm->param = -1;
    for (int k = 0; k < s->nparams; k++)
      if (strcmp(s->params[k].name, item) == 0) sm->param = k;
    if (sm->param < 0)
      nn_internal_error(__FILE__, __LINE__, "schemas.def: %s: '%s' is not an argument of (%s)",
                        r->qualname, item, r->sig);
    free(item);
  }
  if (nin >= 0 && s->nmap != nin)
    nn_internal_error(__FILE__, __LINE__, "schemas.def: %s: %d operands mapped, %s takes %d",
                      r->qualname, s->nmap, ir_ops[r->op].name, nin);
}

static int cmp_qualname(const void *a, const void *b) {
  const fe_schema *x = *(const fe_schema *const *)a, *y = *(const fe_schema *const *)b;
  int c = strcmp(x->qualname, y->qualname);
  if (c) return c;
  return x < y ? -1 : x > y; /* stable: file order within a name */
}

static void parse_all(void) {
  for (int i = 0; i < NROWS; i++) {
    parse_row(&rows[i], &table[i]);
    sorted[i] = &table[i];
  }
  qsort(sorted, NROWS, sizeof sorted[0], cmp_qualname);
}

/* Threads may compile models at once: the table is parsed exactly once. */
static void ensure_parsed(void) { pthread_once(&parsed, parse_all); }

const fe_schema *const *fe_schemas_for(const char *qualname, int *n) {
  ensure_parsed();
  int lo = 0, hi = NROWS;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (strcmp(sorted[mid]->qualname, qualname) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  int k = lo;
  while (k < NROWS && strcmp(sorted[k]->qualname, qualname) == 0) k++;
  *n = k - lo;
  return *n ? &sorted[lo] : NULL;
}

const fe_schema *fe_schema_at(int i) {
  ensure_parsed();
  return i >= 0 && i < NROWS ? &table[i] : NULL;
}

static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 99;
  int d[64][64];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  return d[la][lb];
}

/* Compares the op names after "::", so the namespace doesn't count. */
const char *fe_schema_nearest(const char *qualname) {
  ensure_parsed();
  const char *q = strstr(qualname, "::");
  q = q ? q + 2 : qualname;
  const char *best = NULL;
  int bestd = 1 << 30;
  for (int i = 0; i < NROWS; i++) {
    const char *c = strstr(table[i].qualname, "::");
    int dd = edit_distance(q, c ? c + 2 : table[i].qualname);
    if (dd < bestd) {
      bestd = dd;
      best = table[i].qualname;
    }
  }
  /* Only suggest a near miss: a typo, not a different op. */
  int limit = (int)strlen(q) / 4;
  return best && bestd <= (limit > 1 ? limit : 1) ? best : NULL;
}
