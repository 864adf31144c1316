/* dims.c — dims: constants and symbolic expressions, hash-consed.
 *
 * Every graph owns a table of dim expressions (g->dims). Entries are never
 * changed or removed, and each distinct expression is stored once (a hash
 * index over (kind, c, name, a, b) lives behind g->dim_index), so two dims
 * are equal exactly when their ids are equal. Id 0 is IR_DIM_UNKNOWN ("?").
 *
 * Canonical form. The builders (ir_dim_add, _mul, _div, _floordiv, _mod)
 * never store an expression as written; they bring it to one canonical form
 * so that equal polynomials get equal ids:
 *
 *   - An "atom" is a symbol or a DIV/FLOORDIV/MOD node that could not be
 *     simplified away; atoms are opaque to everything else.
 *   - Every other dim is a polynomial with int64 coefficients over atoms,
 *     fully expanded: (s+1)*b becomes b*s+b, (s+1)+(s+1) becomes 2*s+2.
 *   - A monomial is a product of atoms, sorted, built as a left-nested MUL
 *     chain; a term is a monomial with its coefficient as the leftmost
 *     factor when it is not 1: MUL(MUL(2, b), s) prints "2*b*s".
 *   - A sum is a left-nested ADD chain of terms sorted by monomial, like
 *     terms collected, zero terms dropped, the constant last ("b*s+s+1").
 *   - The order is structural, never by id (ids depend on creation order):
 *     constants < products < symbols (by name) < DIV < FLOORDIV < MOD, then
 *     operands left to right. So products come first in sums ("b*s+s") and
 *     symbols sort by name inside products ("b*s").
 *
 * Division: a/b (exact), a//b and a%b first try to divide the polynomial a
 * by b when b is a single term (k, or k times a monomial): when every
 * coefficient of a is a multiple of k and every term contains b's atoms, the
 * quotient is exact, so (2*s+4)/2 = s+2, (b*s)//s = b and (4*s)%2 = 0.
 * Constants fold with Python's floor semantics for // and %. Anything else
 * (including division by zero, and an exact division of constants that does
 * not divide) becomes an atom kept as written, e.g. "s//2", "7/2".
 *
 * Limits: an expression that would overflow int64, nest deeper than
 * DIM_MAX_DEPTH or have more than DIM_MAX_TERMS terms becomes
 * IR_DIM_UNKNOWN; any operation with an unknown operand is unknown. This
 * keeps printing and comparison recursion bounded on hostile input.
 *
 * Text (ir_dim_print, read back by parse.c to the same id): constants in
 * decimal (negative ones with a leading '-'), symbols by name (quoted like a
 * string if not an identifier), "a+b", "a*b", "a/b", "a//b", "a%b".
 * Precedence: + is lowest, * / // % are equal and left-associative; an
 * operand is parenthesized when its precedence is lower than its operator's
 * (left side) or not higher (right side): "(s+1)//2", "b*(s//2)", "b*s/2".
 * A term with a negative coefficient after the first prints as a
 * subtraction: s + -1*t prints "s-t", s + -2 prints "s-2".
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

enum {
  DIM_MAX_DEPTH = 100, /* deepest expression tree kept */
  DIM_MAX_TERMS = 64,  /* most terms in a canonical sum */
  DIM_MAX_WORK = 4096, /* most terms in an intermediate product */
};

typedef struct dim_index {
  int32_t *slots;        /* id+1 per slot, 0 = empty */
  uint32_t cap;          /* slot count, a power of two */
  NN_VEC(uint8_t) depth; /* tree depth per dim id (leaves: 1) */
} dim_index;

/* ---- the hash-consed table -------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static uint64_t expr_hash(const ir_dimexpr *e) {
  uint64_t h = mix((uint64_t)e->kind, (uint64_t)e->c);
  h = mix(h, (uint64_t)(uint32_t)e->a);
  h = mix(h, (uint64_t)(uint32_t)e->b);
  if (e->name)
    for (const char *s = e->name; *s; s++) h = mix(h, (unsigned char)*s);
  return h ^ (h >> 29);
}

static bool expr_same(const ir_dimexpr *x, const ir_dimexpr *y) {
  if (x->kind != y->kind || x->c != y->c || x->a != y->a || x->b != y->b) return false;
  if (!x->name || !y->name) return x->name == y->name;
  return strcmp(x->name, y->name) == 0;
}

static int depth_of(const dim_index *ix, ir_dim d) {
  return d < ix->depth.len ? ix->depth.data[d] : 1;
}

static void index_insert(dim_index *ix, const ir_graph *g, ir_dim id) {
  uint32_t i = (uint32_t)expr_hash(&g->dims.data[id]) & (ix->cap - 1);
  while (ix->slots[i]) i = (i + 1) & (ix->cap - 1);
  ix->slots[i] = id + 1;
}

static void index_grow(ir_graph *g, dim_index *ix) {
  ix->cap = ix->cap ? ix->cap * 2 : 64;
  ix->slots = nn_alloc(g->arena, sizeof *ix->slots * ix->cap);
  for (int id = 1; id < g->dims.len; id++) index_insert(ix, g, id);
}

static dim_index *get_index(ir_graph *g) {
  if (g->dims.len == 0) {
    ir_dimexpr unknown = {.kind = IR_DK_UNKNOWN};
    NN_PUSH(g->arena, g->dims, unknown);
  }
  dim_index *ix = g->dim_index;
  if (!ix) {
    ix = nn_alloc(g->arena, sizeof *ix);
    g->dim_index = ix;
    for (int id = 0; id < g->dims.len; id++) {
      /* Tables filled by hand (none today) get depth 1 per entry. */
      NN_PUSH(g->arena, ix->depth, 1);
    }
    index_grow(g, ix);
  }
  return ix;
}

/* Returns the id of *e, adding it when new. Binary kinds with an unknown
 * operand, or deeper than DIM_MAX_DEPTH, are unknown. */
static ir_dim intern(ir_graph *g, ir_dimexpr e) {
  dim_index *ix = get_index(g);
  int depth = 1;
  if (e.kind >= IR_DK_ADD) {
    if (e.a == IR_DIM_UNKNOWN || e.b == IR_DIM_UNKNOWN) return IR_DIM_UNKNOWN;
    int da = depth_of(ix, e.a), db = depth_of(ix, e.b);
    depth = 1 + (da > db ? da : db);
    if (depth > DIM_MAX_DEPTH) return IR_DIM_UNKNOWN;
  }
  uint32_t i = (uint32_t)expr_hash(&e) & (ix->cap - 1);
  for (; ix->slots[i]; i = (i + 1) & (ix->cap - 1))
    if (expr_same(&g->dims.data[ix->slots[i] - 1], &e)) return ix->slots[i] - 1;
  if (e.name) e.name = nn_strdup(g->arena, e.name);
  NN_PUSH(g->arena, g->dims, e);
  NN_PUSH(g->arena, ix->depth, (uint8_t)depth);
  ir_dim id = g->dims.len - 1;
  if ((uint32_t)g->dims.len * 2 > ix->cap)
    index_grow(g, ix);
  else
    ix->slots[i] = id + 1;
  return id;
}

static ir_dim bin(ir_graph *g, ir_dimkind k, ir_dim a, ir_dim b) {
  return intern(g, (ir_dimexpr){.kind = k, .a = a, .b = b});
}

ir_dim ir_dim_const(ir_graph *g, int64_t c) {
  return intern(g, (ir_dimexpr){.kind = IR_DK_CONST, .c = c});
}

ir_dim ir_dim_sym(ir_graph *g, const char *name) {
  return intern(g, (ir_dimexpr){.kind = IR_DK_SYM, .name = name ? name : ""});
}

const ir_dimexpr *ir_dim_get(const ir_graph *g, ir_dim d) {
  NN_ASSERT(d >= 0 && d < g->dims.len);
  return &g->dims.data[d];
}

bool ir_dim_is_const(const ir_graph *g, ir_dim d, int64_t *c) {
  if (d <= 0 || d >= g->dims.len || g->dims.data[d].kind != IR_DK_CONST) return false;
  if (c) *c = g->dims.data[d].c;
  return true;
}

static const ir_dimexpr *E(const ir_graph *g, ir_dim d) { return &g->dims.data[d]; }

/* ---- structural order ------------------------------------------------- */

static int kind_rank(ir_dimkind k) {
  switch (k) {
  case IR_DK_CONST: return 0;
  case IR_DK_MUL: return 1;
  case IR_DK_SYM: return 2;
  case IR_DK_DIV: return 3;
  case IR_DK_FLOORDIV: return 4;
  case IR_DK_MOD: return 5;
  case IR_DK_ADD: return 6;
  case IR_DK_UNKNOWN: return 7;
  }
  return 8;
}

/* A total order on dims that depends only on their structure; 0 exactly
 * when x == y (hash-consing makes structure and id agree). */
static int dim_cmp(const ir_graph *g, ir_dim x, ir_dim y) {
  if (x == y) return 0;
  const ir_dimexpr *a = E(g, x), *b = E(g, y);
  int ra = kind_rank(a->kind), rb = kind_rank(b->kind);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (a->kind) {
  case IR_DK_CONST: return a->c < b->c ? -1 : a->c > b->c;
  case IR_DK_SYM: return strcmp(a->name, b->name);
  case IR_DK_UNKNOWN: return 0;
  default: {
    int r = dim_cmp(g, a->a, b->a);
    return r ? r : dim_cmp(g, a->b, b->b);
  }
  }
}

/* Stable merge sort of dim ids by dim_cmp (qsort has no context pointer). */
static void sort_dims(const ir_graph *g, ir_dim *v, int n, ir_dim *tmp) {
  if (n < 2) return;
  int h = n / 2;
  sort_dims(g, v, h, tmp);
  sort_dims(g, v + h, n - h, tmp);
  int i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = dim_cmp(g, v[j], v[i]) < 0 ? v[j++] : v[i++];
  while (i < h) tmp[k++] = v[i++];
  while (j < n) tmp[k++] = v[j++];
  memcpy(v, tmp, sizeof *v * (size_t)n);
}

/* ---- polynomials (temporary, malloc-backed) --------------------------- */

typedef struct term {
  int64_t k;   /* coefficient, never 0 after normalizing */
  ir_dim mono; /* an atom or a sorted MUL chain of atoms */
} term;

typedef struct poly {
  term *t;    /* terms */
  int n, cap; /* used and allocated */
  int64_t c;  /* the constant term */
  bool bad;   /* overflowed or hit a limit: the result is unknown */
} poly;

typedef struct atoms {
  ir_dim *v;  /* atom ids */
  int n, cap; /* used and allocated */
} atoms;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) nn_internal_error(__FILE__, __LINE__, "out of memory");
  return q;
}

static void atoms_push(atoms *a, ir_dim d) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 8;
    a->v = xrealloc(a->v, sizeof *a->v * (size_t)a->cap);
  }
  a->v[a->n++] = d;
}

static void poly_term(poly *p, int64_t k, ir_dim mono) {
  if (k == 0) return;
  if (p->n >= DIM_MAX_WORK) {
    p->bad = true;
    return;
  }
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 8;
    p->t = xrealloc(p->t, sizeof *p->t * (size_t)p->cap);
  }
  p->t[p->n++] = (term){k, mono};
}

static void poly_const(poly *p, int64_t k) {
  if (__builtin_add_overflow(p->c, k, &p->c)) p->bad = true;
}

/* Collects the factors of a MUL tree: constants multiply into *k, the rest
 * are appended to *out. */
static void factors(const ir_graph *g, ir_dim d, int64_t *k, atoms *out, bool *bad) {
  const ir_dimexpr *e = E(g, d);
  if (e->kind == IR_DK_MUL) {
    factors(g, e->a, k, out, bad);
    factors(g, e->b, k, out, bad);
  } else if (e->kind == IR_DK_CONST) {
    if (__builtin_mul_overflow(*k, e->c, k)) *bad = true;
  } else {
    atoms_push(out, d);
  }
}

static ir_dim build_mono(ir_graph *g, atoms *a) {
  ir_dim *tmp = xrealloc(NULL, sizeof *tmp * (size_t)a->n);
  sort_dims(g, a->v, a->n, tmp);
  free(tmp);
  ir_dim acc = a->v[0];
  for (int i = 1; i < a->n; i++) acc = bin(g, IR_DK_MUL, acc, a->v[i]);
  return acc;
}

/* Adds dim d to p. */
static void to_poly(ir_graph *g, ir_dim d, poly *p) {
  const ir_dimexpr *e = E(g, d);
  switch (e->kind) {
  case IR_DK_UNKNOWN: p->bad = true; return;
  case IR_DK_CONST: poly_const(p, e->c); return;
  case IR_DK_ADD: {
    ir_dim a = e->a, b = e->b;
    to_poly(g, a, p);
    to_poly(g, b, p);
    return;
  }
  case IR_DK_MUL: {
    int64_t k = 1;
    atoms a = {0};
    factors(g, d, &k, &a, &p->bad);
    if (a.n == 0)
      poly_const(p, k);
    else
      poly_term(p, k, build_mono(g, &a));
    free(a.v);
    return;
  }
  default: poly_term(p, 1, d); return;
  }
}

static int term_cmp(const ir_graph *g, const term *x, const term *y) {
  return dim_cmp(g, x->mono, y->mono);
}

static void sort_terms(const ir_graph *g, term *v, int n, term *tmp) {
  if (n < 2) return;
  int h = n / 2;
  sort_terms(g, v, h, tmp);
  sort_terms(g, v + h, n - h, tmp);
  int i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = term_cmp(g, &v[j], &v[i]) < 0 ? v[j++] : v[i++];
  while (i < h) tmp[k++] = v[i++];
  while (j < n) tmp[k++] = v[j++];
  memcpy(v, tmp, sizeof *v * (size_t)n);
}

/* Builds the canonical dim of p and frees p's storage. */
static ir_dim from_poly(ir_graph *g, poly *p) {
  ir_dim result = IR_DIM_UNKNOWN;
  if (p->bad) goto done;
  term *tmp = xrealloc(NULL, sizeof *tmp * (size_t)(p->n ? p->n : 1));
  sort_terms(g, p->t, p->n, tmp);
  free(tmp);
  int w = 0; /* collect like terms (adjacent after sorting), drop zeros */
  for (int i = 0; i < p->n;) {
    term t = p->t[i++];
    while (i < p->n && p->t[i].mono == t.mono)
      if (__builtin_add_overflow(t.k, p->t[i++].k, &t.k)) goto done;
    if (t.k != 0) p->t[w++] = t;
  }
  if (w > DIM_MAX_TERMS) goto done;
  ir_dim acc = IR_DIM_UNKNOWN;
  for (int i = 0; i < w; i++) {
    ir_dim t = p->t[i].mono;
    if (p->t[i].k != 1) {
      atoms a = {0};
      int64_t one = 1;
      bool bad = false;
      factors(g, t, &one, &a, &bad);
      t = ir_dim_const(g, p->t[i].k);
      for (int j = 0; j < a.n; j++) t = bin(g, IR_DK_MUL, t, a.v[j]);
      free(a.v);
    }
    acc = i == 0 ? t : bin(g, IR_DK_ADD, acc, t);
    if (acc == IR_DIM_UNKNOWN) goto done;
  }
  if (w == 0)
    result = ir_dim_const(g, p->c);
  else
    result = p->c ? bin(g, IR_DK_ADD, acc, ir_dim_const(g, p->c)) : acc;
done:
  free(p->t);
  return result;
}

static ir_dim mono_product(ir_graph *g, ir_dim x, ir_dim y) {
  atoms a = {0};
  int64_t k = 1;
  bool bad = false;
  factors(g, x, &k, &a, &bad);
  factors(g, y, &k, &a, &bad);
  ir_dim m = build_mono(g, &a);
  free(a.v);
  return m;
}

static void poly_mul(ir_graph *g, const poly *x, const poly *y, poly *r) {
  r->bad = x->bad || y->bad;
  if (r->bad) return;
  if ((int64_t)(x->n + 1) * (y->n + 1) > DIM_MAX_WORK) {
    r->bad = true;
    return;
  }
  int64_t k;
  if (__builtin_mul_overflow(x->c, y->c, &k)) r->bad = true;
  poly_const(r, k);
  for (int i = 0; i < x->n; i++) {
    if (__builtin_mul_overflow(x->t[i].k, y->c, &k)) r->bad = true;
    poly_term(r, k, x->t[i].mono);
  }
  for (int j = 0; j < y->n; j++) {
    if (__builtin_mul_overflow(y->t[j].k, x->c, &k)) r->bad = true;
    poly_term(r, k, y->t[j].mono);
  }
  for (int i = 0; i < x->n && !r->bad; i++)
    for (int j = 0; j < y->n; j++) {
      if (__builtin_mul_overflow(x->t[i].k, y->t[j].k, &k)) r->bad = true;
      poly_term(r, k, mono_product(g, x->t[i].mono, y->t[j].mono));
    }
}

/* *q = k / d when d divides k exactly and the quotient fits. */
static bool div_exact(int64_t k, int64_t d, int64_t *q) {
  if (d == 0) return false;
  if (d == -1) {
    if (k == INT64_MIN) return false;
    *q = -k;
    return true;
  }
  if (k % d) return false;
  *q = k / d;
  return true;
}

/* Divides x by y exactly into r when y is a single term k*m (or a nonzero
 * constant) that divides every term of x; false otherwise. */
static bool poly_div(ir_graph *g, const poly *x, const poly *y, poly *r) {
  if (x->bad || y->bad) return false;
  int64_t kd;
  atoms da = {0};
  if (y->n == 0) {
    kd = y->c;
  } else if (y->n == 1 && y->c == 0) {
    kd = y->t[0].k;
    int64_t one = 1;
    bool bad = false;
    factors(g, y->t[0].mono, &one, &da, &bad);
  } else {
    return false;
  }
  bool ok = kd != 0;
  if (ok && x->c) {
    int64_t q;
    ok = da.n == 0 && div_exact(x->c, kd, &q);
    if (ok) poly_const(r, q);
  }
  ir_dim *tmp = NULL;
  if (da.n) {
    tmp = xrealloc(NULL, sizeof *tmp * (size_t)da.n);
    sort_dims(g, da.v, da.n, tmp);
  }
  for (int i = 0; ok && i < x->n; i++) {
    int64_t q, one = 1;
    ok = div_exact(x->t[i].k, kd, &q);
    if (!ok) break;
    atoms ta = {0}, rest = {0};
    bool bad = false;
    factors(g, x->t[i].mono, &one, &ta, &bad); /* sorted: a canonical mono */
    int j = 0;
    for (int t = 0; t < ta.n; t++) { /* rest = ta minus da (multisets) */
      if (j < da.n && ta.v[t] == da.v[j])
        j++;
      else
        atoms_push(&rest, ta.v[t]);
    }
    ok = j == da.n;
    if (ok) {
      if (rest.n)
        poly_term(r, q, build_mono(g, &rest));
      else
        poly_const(r, q);
    }
    free(ta.v);
    free(rest.v);
  }
  free(tmp);
  free(da.v);
  return ok && !r->bad;
}

/* ---- the builders ----------------------------------------------------- */

ir_dim ir_dim_add(ir_graph *g, ir_dim a, ir_dim b) {
  if (a == IR_DIM_UNKNOWN || b == IR_DIM_UNKNOWN) return IR_DIM_UNKNOWN;
  poly p = {0};
  to_poly(g, a, &p);
  to_poly(g, b, &p);
  return from_poly(g, &p);
}

ir_dim ir_dim_mul(ir_graph *g, ir_dim a, ir_dim b) {
  if (a == IR_DIM_UNKNOWN || b == IR_DIM_UNKNOWN) return IR_DIM_UNKNOWN;
  poly x = {0}, y = {0}, r = {0};
  to_poly(g, a, &x);
  to_poly(g, b, &y);
  poly_mul(g, &x, &y, &r);
  free(x.t);
  free(y.t);
  return from_poly(g, &r);
}

ir_dim ir_dim_sub(ir_graph *g, ir_dim a, ir_dim b) {
  return ir_dim_add(g, a, ir_dim_mul(g, ir_dim_const(g, -1), b));
}

/* The quotient of a by b when it is exact, else IR_DIM_UNKNOWN. */
static ir_dim exact_quotient(ir_graph *g, ir_dim a, ir_dim b) {
  int64_t cb;
  if (ir_dim_is_const(g, b, &cb) && cb == 0) return IR_DIM_UNKNOWN;
  if (a == b) return ir_dim_const(g, 1);
  poly x = {0}, y = {0}, r = {0};
  to_poly(g, a, &x);
  to_poly(g, b, &y);
  bool ok = poly_div(g, &x, &y, &r);
  free(x.t);
  free(y.t);
  if (!ok) {
    free(r.t);
    return IR_DIM_UNKNOWN;
  }
  return from_poly(g, &r);
}

ir_dim ir_dim_div(ir_graph *g, ir_dim a, ir_dim b) {
  if (a == IR_DIM_UNKNOWN || b == IR_DIM_UNKNOWN) return IR_DIM_UNKNOWN;
  ir_dim q = exact_quotient(g, a, b);
  return q != IR_DIM_UNKNOWN ? q : bin(g, IR_DK_DIV, a, b);
}

ir_dim ir_dim_floordiv(ir_graph *g, ir_dim a, ir_dim b) {
  if (a == IR_DIM_UNKNOWN || b == IR_DIM_UNKNOWN) return IR_DIM_UNKNOWN;
  int64_t x, y;
  if (ir_dim_is_const(g, a, &x) && ir_dim_is_const(g, b, &y) && y != 0) {
    if (x == INT64_MIN && y == -1) return IR_DIM_UNKNOWN;
    int64_t q = x / y;
    if (x % y != 0 && ((x < 0) != (y < 0))) q--;
    return ir_dim_const(g, q);
  }
  ir_dim q = exact_quotient(g, a, b);
  return q != IR_DIM_UNKNOWN ? q : bin(g, IR_DK_FLOORDIV, a, b);
}

ir_dim ir_dim_mod(ir_graph *g, ir_dim a, ir_dim b) {
  if (a == IR_DIM_UNKNOWN || b == IR_DIM_UNKNOWN) return IR_DIM_UNKNOWN;
  int64_t x, y;
  if (ir_dim_is_const(g, a, &x) && ir_dim_is_const(g, b, &y) && y != 0) {
    if (y == -1) return ir_dim_const(g, 0);
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return ir_dim_const(g, r);
  }
  if (exact_quotient(g, a, b) != IR_DIM_UNKNOWN) return ir_dim_const(g, 0);
  return bin(g, IR_DK_MOD, a, b);
}

/* ---- printing --------------------------------------------------------- */

static int prec(const ir_graph *g, ir_dim d) {
  switch (E(g, d)->kind) {
  case IR_DK_ADD: return 1;
  case IR_DK_MUL:
  case IR_DK_DIV:
  case IR_DK_FLOORDIV:
  case IR_DK_MOD: return 2;
  default: return 3;
  }
}

static void print_rec(nn_buf *b, const ir_graph *g, ir_dim d);

static void print_operand(nn_buf *b, const ir_graph *g, ir_dim d, bool paren) {
  if (paren) nn_buf_putn(b, "(", 1);
  print_rec(b, g, d);
  if (paren) nn_buf_putn(b, ")", 1);
}

/* The leftmost factor of a MUL chain. */
static const ir_dimexpr *leftmost(const ir_graph *g, ir_dim d) {
  while (E(g, d)->kind == IR_DK_MUL) d = E(g, d)->a;
  return E(g, d);
}

/* True when d, the right operand of an ADD, prints as "-<negated d>". */
static bool negative_term(const ir_graph *g, ir_dim d) {
  const ir_dimexpr *l = leftmost(g, d);
  return l->kind == IR_DK_CONST && l->c < 0 && l->c != INT64_MIN;
}

/* Prints -d for a negative_term(); returns false when nothing was printed
 * (a coefficient of -1 vanishes from a product; `factor` says d is the
 * leftmost factor of one). */
static bool print_negated(nn_buf *b, const ir_graph *g, ir_dim d, bool factor) {
  const ir_dimexpr *e = E(g, d);
  if (e->kind == IR_DK_CONST) {
    if (e->c == -1 && factor) return false;
    nn_buf_printf(b, "%lld", -(long long)e->c);
    return true;
  }
  if (print_negated(b, g, e->a, true)) {
    nn_buf_putn(b, "*", 1);
    print_operand(b, g, e->b, prec(g, e->b) <= 2);
  } else {
    print_operand(b, g, e->b, prec(g, e->b) < 2);
  }
  return true;
}

static void print_rec(nn_buf *b, const ir_graph *g, ir_dim d) {
  if (d < 0 || d >= g->dims.len) {
    nn_buf_putn(b, "?", 1);
    return;
  }
  const ir_dimexpr *e = E(g, d);
  const char *op = NULL;
  switch (e->kind) {
  case IR_DK_UNKNOWN: nn_buf_putn(b, "?", 1); return;
  case IR_DK_CONST: nn_buf_printf(b, "%lld", (long long)e->c); return;
  case IR_DK_SYM: ir_print_name(b, e->name); return;
  case IR_DK_ADD:
    print_operand(b, g, e->a, false);
    if (negative_term(g, e->b)) {
      nn_buf_putn(b, "-", 1);
      print_negated(b, g, e->b, false);
    } else {
      nn_buf_putn(b, "+", 1);
      print_operand(b, g, e->b, prec(g, e->b) <= 1);
    }
    return;
  case IR_DK_MUL: op = "*"; break;
  case IR_DK_DIV: op = "/"; break;
  case IR_DK_FLOORDIV: op = "//"; break;
  case IR_DK_MOD: op = "%"; break;
  }
  print_operand(b, g, e->a, prec(g, e->a) < 2);
  nn_buf_printf(b, "%s", op);
  print_operand(b, g, e->b, prec(g, e->b) <= 2);
}

void ir_dim_print(nn_buf *b, const ir_graph *g, ir_dim d) { print_rec(b, g, d); }
