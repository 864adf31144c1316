/* pickle.c — the pickle VM: bytes written by Python's or PyTorch's pickler
 * become a tree of fe_pval values.
 *
 * A pickle is a little stack-machine program. We run it the way Python's
 * unpickler does (a value stack, MARK positions, a memo table) but nothing it
 * names is ever executed: a GLOBAL only becomes an FE_PV_GLOBAL tagged with
 * which of the few known callables it is (torch._utils._rebuild_tensor_v2,
 * collections.OrderedDict, torch.<Type>Storage, ...), and REDUCE / NEWOBJ /
 * BUILD interpret those tags directly. Any other global is refused by name.
 * Persistent ids ('storage', torch.FloatStorage, key, location, numel[, view])
 * become shared fe_storage objects, one per key, loaded through the caller's
 * load_storage callback when one is given.
 *
 * The input is hostile until proven otherwise: every read is bounds-checked,
 * every length is checked against the bytes left, memo indices are bounded by
 * the input size, the value stack never pops past the last MARK, containers
 * may never come to contain themselves (a pickle can express cycles; we
 * refuse them so every consumer can walk the result recursively), and the
 * finished tree may nest at most FE_PICKLE_MAX_DEPTH levels. Values may be
 * shared (one memoized string or storage referenced from many places), so
 * the result is a DAG. Every failure is one located error,
 * "LABEL: byte N: ...", where N is the offset of the opcode at fault.
 */
#include "frontend.h"

#include <stdlib.h>
#include <string.h>

/* The deepest nesting of containers in a finished value tree. */
#define FE_PICKLE_MAX_DEPTH 1000

/* ---- values ------------------------------------------------------------ */

/* Every fe_pval this file creates is the first member of a pv_node, so a
 * value pointer can be widened to its node to reach the VM's bookkeeping. */
typedef struct pv_node {
  fe_pval v;           /* the public value; must stay first */
  uint32_t stamp;      /* last graph walk that visited this node */
  int32_t height;      /* nesting below this node: a lower bound while the
                          VM runs, exact after the depth check */
  fe_pglobal g;        /* GLOBAL: which known callable */
  nn_dtype storage_dt; /* GLOBAL of kind FE_PG_STORAGE: its element type */
  int64_t view_offset; /* STORAGE: first element of the view in the storage */
  int64_t view_numel;  /* STORAGE: elements visible through the view */
} pv_node;

static pv_node *node_of(fe_pval *v) { return (pv_node *)v; }

/* Containers that can grow (lists, dicts) keep the capacity implied by their
 * length: cap_for(n) slots are always allocated for n items. */
static int cap_for(int n) {
  int c = 4;
  while (c < n) c *= 2;
  return c;
}

/* ---- the machine --------------------------------------------------------- */

typedef struct skey {
  const char *s;  /* storage key (NUL-terminated copy) */
  size_t len;     /* key bytes */
  fe_storage *st; /* the one storage for that key */
} skey;

typedef struct vm {
  const uint8_t *buf;          /* the pickle */
  size_t len;                  /* bytes in buf */
  size_t pos;                  /* next byte to read */
  size_t op_pos;               /* offset of the opcode being run (for messages) */
  const char *label;           /* entry name for messages */
  const fe_pickle_opts *o;     /* caller's options (never NULL) */
  const char *const *prefixes; /* class prefixes, NULL-terminated */
  nn_arena *arena;             /* where every value lives */
  nn_diag *d;                  /* where the one error goes */
  int failed;                  /* an error has been reported */
  NN_VEC(fe_pval *) stack;     /* the value stack */
  NN_VEC(int) marks;           /* stack heights at each open MARK */
  fe_pval **memo;              /* memo slots, NULL where unset */
  size_t memo_cap;             /* slots allocated */
  size_t memo_count;           /* slots set (MEMOIZE appends at this index) */
  skey *skeys;                 /* open-addressing table of storages by key */
  size_t skeys_cap;            /* slots (a power of two) */
  size_t skeys_n;              /* storages so far */
  uint32_t stamp;              /* current graph-walk stamp */
  uint64_t walk_budget;        /* node visits left for cycle checks */
  NN_VEC(pv_node *) walk;      /* scratch stack for graph walks */
} vm;

/* Reports "LABEL: byte N: message" once and marks the run failed. Returns
 * NULL so callers can `return fail(...)`. */
static void *fail(vm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *fail(vm *m, const char *fmt, ...) {
  if (m->failed) return NULL;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  nn_loc loc = {m->label, 0, 0};
  nn_error(m->d, loc, "byte %zu: %s", m->op_pos, msg);
  m->failed = 1;
  return NULL;
}

static fe_pval *new_val(vm *m, fe_pkind k) {
  pv_node *n = nn_alloc(m->arena, sizeof *n);
  n->v.kind = k;
  n->view_offset = 0;
  n->view_numel = -1;
  return &n->v;
}

static fe_pval *new_int(vm *m, int64_t i) {
  fe_pval *v = new_val(m, FE_PV_INT);
  v->u.i = i;
  return v;
}

static fe_pval *new_bool(vm *m, bool b) {
  fe_pval *v = new_val(m, FE_PV_BOOL);
  v->u.b = b;
  return v;
}

/* A STR or BYTES value holding a NUL-terminated copy of s[0..n). */
static fe_pval *new_str(vm *m, fe_pkind k, const void *s, size_t n) {
  fe_pval *v = new_val(m, k);
  char *c = nn_alloc(m->arena, n + 1);
  if (n) memcpy(c, s, n);
  v->u.str.s = c;
  v->u.str.len = n;
  return v;
}

/* A TUPLE or LIST of items[0..n) (copied). Lists get growable capacity. */
static fe_pval *new_seq(vm *m, fe_pkind k, fe_pval **items, int n) {
  fe_pval *v = new_val(m, k);
  int cap = k == FE_PV_LIST ? cap_for(n) : n;
  v->u.seq.items = nn_alloc(m->arena, sizeof(fe_pval *) * (size_t)(cap ? cap : 1));
  if (n) memcpy(v->u.seq.items, items, sizeof(fe_pval *) * (size_t)n);
  v->u.seq.n = n;
  int32_t h = 0;
  for (int i = 0; i < n; i++)
    if (node_of(items[i])->height > h) h = node_of(items[i])->height;
  if (h >= FE_PICKLE_MAX_DEPTH)
    return fail(m, "values nested more than %d levels deep", FE_PICKLE_MAX_DEPTH);
  node_of(v)->height = h + 1;
  return v;
}

static fe_pval *new_dict(vm *m) {
  fe_pval *v = new_val(m, FE_PV_DICT);
  v->u.dict.keys = nn_alloc(m->arena, sizeof(fe_pval *) * (size_t)cap_for(0));
  v->u.dict.vals = nn_alloc(m->arena, sizeof(fe_pval *) * (size_t)cap_for(0));
  node_of(v)->height = 1;
  return v;
}

/* ---- cycle and depth checks ------------------------------------------------ */

static void walk_push_children(vm *m, fe_pval *v) {
  switch (v->kind) {
  case FE_PV_TUPLE:
  case FE_PV_LIST:
    for (int i = 0; i < v->u.seq.n; i++) NN_PUSH(m->arena, m->walk, node_of(v->u.seq.items[i]));
    break;
  case FE_PV_DICT:
    for (int i = 0; i < v->u.dict.n; i++) {
      NN_PUSH(m->arena, m->walk, node_of(v->u.dict.keys[i]));
      NN_PUSH(m->arena, m->walk, node_of(v->u.dict.vals[i]));
    }
    break;
  case FE_PV_OBJECT:
    if (v->u.obj.state) NN_PUSH(m->arena, m->walk, node_of(v->u.obj.state));
    break;
  default: break;
  }
}

static bool is_container(const fe_pval *v) {
  return v->kind == FE_PV_TUPLE || v->kind == FE_PV_LIST || v->kind == FE_PV_DICT ||
         v->kind == FE_PV_OBJECT;
}

/* Before `item` is stored inside container `c`: fails if c is reachable from
 * item, which would make a cycle. The walks of one run share a budget
 * proportional to the input size so hostile input cannot make this
 * quadratic; real files stay far below it.
 *
 * Also keeps pv_node.height a lower bound of every container's nesting while
 * the VM runs (containers only ever gain items, so a recorded height never
 * exceeds the true one) and fails as soon as c would nest more than
 * FE_PICKLE_MAX_DEPTH levels: a pickle building a million nested lists one
 * APPEND at a time stops after a thousand short walks instead of walking
 * ever deeper trees until the budget runs out. check_depth() recomputes the
 * exact heights at the end. */
static int check_acyclic(vm *m, fe_pval *c, fe_pval *item) {
  if (!is_container(item)) return 0;
  int32_t h = node_of(item)->height;
  if (h >= FE_PICKLE_MAX_DEPTH) {
    fail(m, "values nested more than %d levels deep", FE_PICKLE_MAX_DEPTH);
    return -1;
  }
  m->stamp++;
  m->walk.len = 0;
  NN_PUSH(m->arena, m->walk, node_of(item));
  while (m->walk.len) {
    pv_node *n = m->walk.data[--m->walk.len];
    if (n->stamp == m->stamp) continue;
    n->stamp = m->stamp;
    if (&n->v == c) {
      fail(m, "a container would contain itself (cyclic pickles are not supported)");
      return -1;
    }
    if (m->walk_budget == 0) {
      fail(m, "pickle too complex: too many shared containers to check");
      return -1;
    }
    m->walk_budget--;
    walk_push_children(m, &n->v);
  }
  if (h + 1 > node_of(c)->height) node_of(c)->height = h + 1;
  return 0;
}

/* Computes the nesting height of every container reachable from root (a DAG
 * by construction) without recursion; fails beyond FE_PICKLE_MAX_DEPTH. */
static int check_depth(vm *m, fe_pval *root) {
  /* Entries are pushed twice: first to expand (stamp != cur), then, marked
   * by a NULL separator, to sum up the children's heights. */
  m->stamp++;
  uint32_t expanding = m->stamp, done = ++m->stamp;
  m->walk.len = 0;
  NN_PUSH(m->arena, m->walk, node_of(root));
  while (m->walk.len) {
    pv_node *n = m->walk.data[m->walk.len - 1];
    if (n == NULL) { /* separator: the node below has its children done */
      m->walk.len--;
      pv_node *p = m->walk.data[--m->walk.len];
      int32_t h = 0;
      fe_pval *v = &p->v;
      if (v->kind == FE_PV_TUPLE || v->kind == FE_PV_LIST)
        for (int i = 0; i < v->u.seq.n; i++) {
          int32_t ch = node_of(v->u.seq.items[i])->height;
          if (ch > h) h = ch;
        }
      else if (v->kind == FE_PV_DICT)
        for (int i = 0; i < v->u.dict.n; i++) {
          int32_t ck = node_of(v->u.dict.keys[i])->height;
          int32_t cv = node_of(v->u.dict.vals[i])->height;
          if (ck > h) h = ck;
          if (cv > h) h = cv;
        }
      else if (v->kind == FE_PV_OBJECT && v->u.obj.state)
        h = node_of(v->u.obj.state)->height;
      p->height = h + 1;
      p->stamp = done;
      if (p->height > FE_PICKLE_MAX_DEPTH) {
        fail(m, "values nested more than %d levels deep", FE_PICKLE_MAX_DEPTH);
        return -1;
      }
      continue;
    }
    if (n->stamp == expanding || n->stamp == done || !is_container(&n->v)) {
      if (!is_container(&n->v)) n->height = 0;
      m->walk.len--;
      continue;
    }
    n->stamp = expanding;
    NN_PUSH(m->arena, m->walk, (pv_node *)NULL);
    walk_push_children(m, &n->v);
  }
  return 0;
}

/* ---- containers ------------------------------------------------------------ */

static int list_append(vm *m, fe_pval *list, fe_pval *item) {
  if (check_acyclic(m, list, item)) return -1;
  int n = list->u.seq.n;
  if (n >= (1 << 28)) {
    fail(m, "list too long");
    return -1;
  }
  if (n == cap_for(n))
    list->u.seq.items = nn_realloc(m->arena, list->u.seq.items, sizeof(fe_pval *) * (size_t)n,
                                   sizeof(fe_pval *) * (size_t)cap_for(n + 1));
  list->u.seq.items[list->u.seq.n++] = item;
  return 0;
}

/* Adds key: val at the end. Keys are not deduplicated (PyTorch never writes a
 * key twice); fe_pdict_get returns the last match, as Python would. */
static int dict_set(vm *m, fe_pval *dict, fe_pval *key, fe_pval *val) {
  if (check_acyclic(m, dict, key) || check_acyclic(m, dict, val)) return -1;
  int n = dict->u.dict.n;
  if (n >= (1 << 28)) {
    fail(m, "dict too large");
    return -1;
  }
  if (n == cap_for(n)) {
    size_t o = sizeof(fe_pval *) * (size_t)n;
    size_t nw = sizeof(fe_pval *) * (size_t)cap_for(n + 1);
    dict->u.dict.keys = nn_realloc(m->arena, dict->u.dict.keys, o, nw);
    dict->u.dict.vals = nn_realloc(m->arena, dict->u.dict.vals, o, nw);
  }
  dict->u.dict.keys[n] = key;
  dict->u.dict.vals[n] = val;
  dict->u.dict.n = n + 1;
  return 0;
}

/* ---- stack --------------------------------------------------------------- */

static int base(const vm *m) { return m->marks.len ? m->marks.data[m->marks.len - 1] : 0; }

static int push(vm *m, fe_pval *v) {
  if (!v) return -1;
  if (m->stack.len >= (1 << 28)) {
    fail(m, "value stack too deep");
    return -1;
  }
  NN_PUSH(m->arena, m->stack, v);
  return 0;
}

/* Pops one value; never past the last MARK. */
static fe_pval *pop(vm *m, const char *op) {
  if (m->stack.len <= base(m)) return fail(m, "stack underflow in %s", op);
  return m->stack.data[--m->stack.len];
}

static fe_pval *top(vm *m, const char *op) {
  if (m->stack.len <= base(m)) return fail(m, "stack underflow in %s", op);
  return m->stack.data[m->stack.len - 1];
}

/* Pops everything above the last MARK and the MARK itself; *items points at
 * the popped values (still valid until the next push). */
static int pop_mark(vm *m, const char *op, fe_pval ***items, int *n) {
  if (m->marks.len == 0) {
    fail(m, "%s without a MARK", op);
    return -1;
  }
  int b = m->marks.data[--m->marks.len];
  *items = m->stack.data ? m->stack.data + b : NULL;
  *n = m->stack.len - b;
  NN_ASSERT(*n == 0 || *items);
  m->stack.len = b;
  return 0;
}

/* ---- reading ------------------------------------------------------------- */

static const char *op_name(int op);

/* Makes sure n more bytes are there for the current opcode. */
static int need(vm *m, size_t n) {
  if (m->len - m->pos < n) {
    fail(m, "truncated pickle: %s needs %zu more bytes, %zu left", op_name(m->buf[m->op_pos]), n,
         m->len - m->pos);
    return -1;
  }
  return 0;
}

static uint64_t rd_le(vm *m, int n) {
  uint64_t u = 0;
  for (int i = 0; i < n; i++) u |= (uint64_t)m->buf[m->pos + (size_t)i] << (8 * i);
  m->pos += (size_t)n;
  return u;
}

/* Reads an n-byte little-endian length, checks it against the bytes left. */
static int rd_len(vm *m, int n, size_t *out) {
  if (need(m, (size_t)n)) return -1;
  uint64_t u = rd_le(m, n);
  if (u > m->len - m->pos) {
    fail(m, "%s length %llu exceeds the %zu bytes left", op_name(m->buf[m->op_pos]),
         (unsigned long long)u, m->len - m->pos);
    return -1;
  }
  *out = (size_t)u;
  return 0;
}

/* Reads a newline-terminated line (protocol 0 arguments); *s is not
 * NUL-terminated, *n excludes the newline. */
static int rd_line(vm *m, const char **s, size_t *n) {
  const uint8_t *p = m->buf + m->pos;
  const uint8_t *nl = memchr(p, '\n', m->len - m->pos);
  if (!nl) {
    fail(m, "truncated pickle: %s argument has no terminating newline", op_name(m->buf[m->op_pos]));
    return -1;
  }
  *s = (const char *)p;
  *n = (size_t)(nl - p);
  m->pos += *n + 1;
  return 0;
}

/* Two's-complement little-endian integer of any width (LONG1 / LONG4). */
static fe_pval *decode_long(vm *m, const uint8_t *p, size_t n) {
  if (n == 0) return new_int(m, 0);
  int neg = (p[n - 1] & 0x80) != 0;
  for (size_t i = 8; i < n; i++)
    if (p[i] != (neg ? 0xff : 0x00)) return fail(m, "integer too large");
  size_t k = n < 8 ? n : 8;
  uint64_t u = 0;
  for (size_t i = 0; i < k; i++) u |= (uint64_t)p[i] << (8 * i);
  if (n < 8 && neg) u |= ~(uint64_t)0 << (8 * n);
  if (n > 8 && (int)(u >> 63) != neg) return fail(m, "integer too large");
  int64_t i;
  memcpy(&i, &u, sizeof i);
  return new_int(m, i);
}

/* Decimal text (INT, LONG, GET, PUT arguments); "01"/"00" are the protocol 0
 * spellings of True/False and are handled by the caller. */
static int parse_dec(vm *m, const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == n) {
    fail(m, "malformed integer '%.*s'", (int)(n > 40 ? 40 : n), s);
    return -1;
  }
  uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      fail(m, "malformed integer '%.*s'", (int)(n > 40 ? 40 : n), s);
      return -1;
    }
    unsigned dg = (unsigned)(s[i] - '0');
    if (u > (lim - dg) / 10) {
      fail(m, "integer too large");
      return -1;
    }
    u = u * 10 + dg;
  }
  if (neg) {
    *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
  } else {
    *out = (int64_t)u;
  }
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Appends code point cp as UTF-8 to out (room for 4 bytes assumed). */
static size_t put_utf8(char *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Next code point of UTF-8 text s[*i..n), or -1 if malformed. */
static int32_t next_utf8(const uint8_t *s, size_t n, size_t *i) {
  uint8_t c = s[(*i)++];
  if (c < 0x80) return c;
  int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
  if (more < 0 || c > 0xf4) return -1;
  int32_t cp = c & (0x3f >> more);
  for (int k = 0; k < more; k++) {
    if (*i >= n || (s[*i] & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (s[(*i)++] & 0x3f);
  }
  return cp;
}

/* STRING 'S': a Python 2 repr, quoted with ' or ", with backslash escapes. */
static fe_pval *decode_string_repr(vm *m, const char *s, size_t n) {
  if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0])
    return fail(m, "STRING argument is not a quoted string");
  s++;
  n -= 2;
  char *out = nn_alloc(m->arena, n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    char c = s[i++];
    if (c != '\\' || i == n) {
      out[o++] = c;
      continue;
    }
    char e = s[i++];
    switch (e) {
    case 'n': out[o++] = '\n'; break;
    case 't': out[o++] = '\t'; break;
    case 'r': out[o++] = '\r'; break;
    case 'a': out[o++] = '\a'; break;
    case 'b': out[o++] = '\b'; break;
    case 'f': out[o++] = '\f'; break;
    case 'v': out[o++] = '\v'; break;
    case '\\':
    case '\'':
    case '"': out[o++] = e; break;
    case 'x':
      if (i + 2 > n || hexval(s[i]) < 0 || hexval(s[i + 1]) < 0)
        return fail(m, "bad \\x escape in STRING argument");
      out[o++] = (char)(hexval(s[i]) * 16 + hexval(s[i + 1]));
      i += 2;
      break;
    default:
      if (e >= '0' && e <= '7') {
        int v = e - '0';
        for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++)
          v = v * 8 + (s[i++] - '0');
        out[o++] = (char)(v & 0xff);
      } else { /* unknown escapes keep their backslash, as in Python */
        out[o++] = '\\';
        out[o++] = e;
      }
    }
  }
  fe_pval *v = new_val(m, FE_PV_STR);
  v->u.str.s = out;
  v->u.str.len = o;
  return v;
}

/* UNICODE 'V': raw-unicode-escape (Latin-1 bytes plus \uXXXX / \UXXXXXXXX). */
static fe_pval *decode_raw_unicode(vm *m, const char *s, size_t n) {
  char *out = nn_alloc(m->arena, 2 * n + 1); /* escapes shrink, Latin-1 doubles */
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    uint8_t c = (uint8_t)s[i];
    int w = 0;
    if (c == '\\' && i + 1 < n) w = s[i + 1] == 'u' ? 4 : s[i + 1] == 'U' ? 8 : 0;
    if (w) {
      if (i + 2 + (size_t)w > n) return fail(m, "truncated \\u escape in UNICODE argument");
      uint32_t cp = 0;
      for (int k = 0; k < w; k++) {
        int h = hexval(s[i + 2 + (size_t)k]);
        if (h < 0) return fail(m, "bad \\u escape in UNICODE argument");
        cp = cp * 16 + (uint32_t)h;
      }
      if (cp > 0x10ffff) return fail(m, "bad \\U escape in UNICODE argument");
      o += put_utf8(out + o, cp);
      i += 2 + (size_t)w;
    } else {
      o += put_utf8(out + o, c);
      i++;
    }
  }
  fe_pval *v = new_val(m, FE_PV_STR);
  v->u.str.s = out;
  v->u.str.len = o;
  return v;
}

/* ---- globals ------------------------------------------------------------- */

static fe_pval *new_global(vm *m, const char *module, const char *name, fe_pglobal g) {
  fe_pval *v = new_val(m, FE_PV_GLOBAL);
  v->u.obj.module = module;
  v->u.obj.name = name;
  node_of(v)->g = g;
  return v;
}

/* GLOBAL module.name as a value, by the allow-list (pickle_globals.c): an
 * FE_PV_GLOBAL for callables and classes we understand, an FE_PV_INT for
 * torch dtype / memory-format names, or an error. Nothing is ever
 * imported or called. */
static fe_pval *resolve_global(vm *m, const char *module, const char *name) {
  nn_dtype dt = NN_DT_UNKNOWN;
  int64_t num = 0;
  char why[256];
  fe_pglobal g = fe_pickle_global(module, name, m->prefixes, &dt, &num, why, sizeof why);
  if (g == FE_PG_REFUSED) return fail(m, "%s", why);
  if (g == FE_PG_NUMBER) return new_int(m, num);
  fe_pval *v = new_global(m, module, name, g);
  if (g == FE_PG_STORAGE) node_of(v)->storage_dt = dt;
  return v;
}

/* ---- persistent ids -------------------------------------------------------- */

static uint64_t hash_key(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h;
}

/* Finds the slot for key (empty if absent). */
static skey *skey_slot(vm *m, const char *s, size_t n) {
  size_t mask = m->skeys_cap - 1;
  for (size_t i = hash_key(s, n) & mask;; i = (i + 1) & mask) {
    skey *k = &m->skeys[i];
    if (!k->st || (k->len == n && !memcmp(k->s, s, n))) return k;
  }
}

static void skey_grow(vm *m) {
  skey *old = m->skeys;
  size_t oc = m->skeys_cap;
  m->skeys_cap = oc ? oc * 2 : 64;
  m->skeys = nn_alloc(m->arena, sizeof(skey) * m->skeys_cap);
  for (size_t i = 0; i < oc; i++)
    if (old[i].st) *skey_slot(m, old[i].s, old[i].len) = old[i];
}

static bool as_int(const fe_pval *v, int64_t *out) {
  if (v->kind == FE_PV_INT) {
    *out = v->u.i;
    return true;
  }
  return false;
}

/* The storage for a key: the same fe_storage for every use of one key. Calls
 * load_storage once, when the key is first seen. */
static fe_storage *get_storage(vm *m, fe_pval *key, const char *loc, nn_dtype dt, int64_t numel) {
  if (m->skeys_n * 2 >= m->skeys_cap) skey_grow(m);
  skey *k = skey_slot(m, key->u.str.s, key->u.str.len);
  if (k->st) {
    if (k->st->dtype != dt || k->st->numel != numel)
      return fail(m, "storage \"%.100s\" is used with different types or sizes", key->u.str.s);
    return k->st;
  }
  size_t es = nn_dtype_size(dt);
  if (numel < 0 || (uint64_t)numel > (uint64_t)INT64_MAX / es)
    return fail(m, "storage \"%.100s\" has an impossible size of %lld elements", key->u.str.s,
                (long long)numel);
  fe_storage *st = nn_alloc(m->arena, sizeof *st);
  st->key = key->u.str.s;
  st->location = loc;
  st->dtype = dt;
  st->numel = numel;
  k->s = key->u.str.s;
  k->len = key->u.str.len;
  k->st = st;
  m->skeys_n++;
  if (m->o->load_storage) {
    if (m->o->load_storage(m->o->ctx, st, m->d)) {
      m->failed = 1; /* the callback reported the error */
      return NULL;
    }
    uint64_t want = (uint64_t)numel * es;
    if (st->data && st->nbytes < want)
      return fail(m, "storage \"%.100s\" holds %zu bytes, expected %llu", st->key, st->nbytes,
                  (unsigned long long)want);
  }
  return st;
}

/* BINPERSID / PERSID: ('storage', torch.<T>Storage, key, location, numel)
 * with an optional sixth element: None, or (view_key, offset, size) for a
 * legacy view into the storage. */
static fe_pval *persistent_load(vm *m, fe_pval *pid) {
  if (pid->kind != FE_PV_TUPLE || pid->u.seq.n < 1 || pid->u.seq.items[0]->kind != FE_PV_STR)
    return fail(m, "unsupported persistent id (expected a tuple starting with a string, got %s)",
                pid->kind == FE_PV_TUPLE ? "another tuple" : fe_pkind_name(pid->kind));
  fe_pval **a = pid->u.seq.items;
  int n = pid->u.seq.n;
  const char *type = a[0]->u.str.s;
  if (!strcmp(type, "module"))
    return fail(m, "whole-module torch.save files are not supported; save the state_dict");
  if (strcmp(type, "storage")) return fail(m, "unsupported persistent id type '%.100s'", type);
  if (n != 5 && n != 6) return fail(m, "storage persistent id has %d elements, expected 5 or 6", n);
  if (a[1]->kind != FE_PV_GLOBAL || node_of(a[1])->g != FE_PG_STORAGE)
    return fail(m, "storage persistent id: element 1 is not a torch storage type");
  int64_t numel;
  if (a[2]->kind != FE_PV_STR || a[3]->kind != FE_PV_STR || !as_int(a[4], &numel))
    return fail(m, "storage persistent id: expected (key: str, location: str, numel: int)");
  fe_storage *st = get_storage(m, a[2], a[3]->u.str.s, node_of(a[1])->storage_dt, numel);
  if (!st) return NULL;
  fe_pval *v = new_val(m, FE_PV_STORAGE);
  v->u.storage = st;
  node_of(v)->view_offset = 0;
  node_of(v)->view_numel = st->numel;
  if (n == 6 && a[5]->kind != FE_PV_NONE) {
    fe_pval *vm_ = a[5];
    int64_t off, size;
    if (vm_->kind != FE_PV_TUPLE || vm_->u.seq.n != 3 || vm_->u.seq.items[0]->kind != FE_PV_STR ||
        !as_int(vm_->u.seq.items[1], &off) || !as_int(vm_->u.seq.items[2], &size))
      return fail(m, "storage persistent id: view metadata is not (key, offset, size)");
    if (off < 0 || size < 0 || off > st->numel || size > st->numel - off)
      return fail(m, "storage view [%lld, +%lld) lies outside storage \"%.100s\" of %lld elements",
                  (long long)off, (long long)size, st->key, (long long)st->numel);
    node_of(v)->view_offset = off;
    node_of(v)->view_numel = size;
  }
  return v;
}

/* ---- applying known globals -------------------------------------------------- */

/* Reads a tuple or list of ints into a new arena array. */
static int64_t *int_seq(vm *m, fe_pval *v, const char *what, int *rank) {
  if (v->kind != FE_PV_TUPLE && v->kind != FE_PV_LIST)
    return fail(m, "tensor %s is a %s, expected a tuple of ints", what, fe_pkind_name(v->kind));
  int n = v->u.seq.n;
  int64_t *out = nn_alloc(m->arena, sizeof(int64_t) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    if (!as_int(v->u.seq.items[i], &out[i]))
      return fail(m, "tensor %s holds a %s, expected ints", what,
                  fe_pkind_name(v->u.seq.items[i]->kind));
    if (out[i] < 0) return fail(m, "tensor %s holds a negative value", what);
  }
  *rank = n;
  return n ? out : NULL;
}

/* _rebuild_tensor(storage, offset, size, stride) and
 * _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]). */
static fe_pval *rebuild_tensor(vm *m, fe_pval **a, int n, bool v2) {
  if (v2 ? n != 6 && n != 7 : n != 4)
    return fail(m, "%s takes %s arguments, got %d", v2 ? "_rebuild_tensor_v2" : "_rebuild_tensor",
                v2 ? "6 or 7" : "4", n);
  if (a[0]->kind != FE_PV_STORAGE)
    return fail(m, "tensor storage argument is a %s", fe_pkind_name(a[0]->kind));
  fe_tensor *t = nn_alloc(m->arena, sizeof *t);
  pv_node *sn = node_of(a[0]);
  t->storage = a[0]->u.storage;
  t->dtype = t->storage->dtype;
  t->legacy_id = -1;
  int64_t off;
  if (!as_int(a[1], &off) || off < 0) return fail(m, "tensor offset is not a non-negative int");
  int rs = 0, rt = 0;
  if (!(t->sizes = int_seq(m, a[2], "size", &rs)) && m->failed) return NULL;
  if (rs > 64) return fail(m, "tensor has %d dims (at most 64 are supported)", rs);
  if (!(t->strides = int_seq(m, a[3], "stride", &rt)) && m->failed) return NULL;
  if (rs != rt) return fail(m, "tensor has %d sizes but %d strides", rs, rt);
  t->rank = rs;
  if (v2) {
    if (a[4]->kind == FE_PV_BOOL)
      t->requires_grad = a[4]->u.b;
    else if (a[4]->kind == FE_PV_INT)
      t->requires_grad = a[4]->u.i != 0;
    else
      return fail(m, "tensor requires_grad is a %s", fe_pkind_name(a[4]->kind));
  }
  /* The last element reached must lie inside the (view of the) storage. */
  int64_t numel = sn->view_numel, last = off;
  bool empty = false, ovf = false;
  for (int i = 0; i < t->rank; i++) empty |= t->sizes[i] == 0;
  for (int i = 0; i < t->rank && !empty; i++) {
    int64_t step;
    ovf |= __builtin_mul_overflow(t->sizes[i] - 1, t->strides[i], &step);
    ovf |= __builtin_add_overflow(last, step, &last);
  }
  /* Its element count times the element size must fit in int64 even when
   * zero strides make it far bigger than the storage (an expanded tensor):
   * everything downstream computes sizes in int64 bytes. */
  int64_t bytes = (int64_t)nn_dtype_size(t->dtype);
  bool huge = false;
  for (int i = 0; i < t->rank && !empty; i++)
    huge |= __builtin_mul_overflow(bytes, t->sizes[i], &bytes);
  if (ovf || huge || (empty ? off > numel : last >= numel)) {
    char desc[200];
    size_t k = (size_t)snprintf(desc, sizeof desc, "[");
    for (int i = 0; i < t->rank; i++) {
      if (i == 8) { /* enough to recognise the tensor */
        k += (size_t)snprintf(desc + k, sizeof desc - k, ", ...");
        break;
      }
      k += (size_t)snprintf(desc + k, sizeof desc - k, "%s%lld", i ? ", " : "",
                            (long long)t->sizes[i]);
    }
    snprintf(desc + k, sizeof desc - k, "]");
    if (huge && !ovf)
      return fail(m, "tensor of size %s has more elements than fit in 2^63 bytes", desc);
    return fail(m,
                "tensor of size %s with offset %lld does not fit in storage \"%.100s\" "
                "of %lld elements",
                desc, (long long)off, t->storage->key, (long long)numel);
  }
  t->offset = off + sn->view_offset;
  fe_pval *v = new_val(m, FE_PV_TENSOR);
  v->u.tensor = t;
  return v;
}

/* _codecs.encode(str, 'latin1'): bytes pickled by Python 3 at protocol 2. */
static fe_pval *codecs_encode(vm *m, fe_pval **a, int n) {
  if (n < 1 || n > 2 || a[0]->kind != FE_PV_STR)
    return fail(m, "_codecs.encode expects (str, encoding)");
  const char *enc = "utf-8";
  if (n == 2) {
    if (a[1]->kind != FE_PV_STR) return fail(m, "_codecs.encode expects (str, encoding)");
    enc = a[1]->u.str.s;
  }
  const uint8_t *s = (const uint8_t *)a[0]->u.str.s;
  size_t len = a[0]->u.str.len;
  if (!strcmp(enc, "utf-8") || !strcmp(enc, "utf8")) return new_str(m, FE_PV_BYTES, s, len);
  if (strcmp(enc, "latin1") && strcmp(enc, "latin-1"))
    return fail(m, "_codecs.encode with unsupported encoding '%.40s'", enc);
  char *out = nn_alloc(m->arena, len + 1);
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    int32_t cp = next_utf8(s, len, &i);
    if (cp < 0 || cp > 0xff) return fail(m, "_codecs.encode: string is not Latin-1");
    out[o++] = (char)cp;
  }
  fe_pval *v = new_val(m, FE_PV_BYTES);
  v->u.str.s = out;
  v->u.str.len = o;
  return v;
}

/* The dotted name of the global fn, for messages. */
#define QN fn->u.obj.module, fn->u.obj.name

/* What REDUCE (and NEWOBJ) do with a known global and its argument tuple. */
static fe_pval *apply(vm *m, fe_pval *fn, fe_pval *args, const char *op) {
  if (fn->kind != FE_PV_GLOBAL)
    return fail(m, "%s applied to a %s, expected a global", op, fe_pkind_name(fn->kind));
  if (args->kind != FE_PV_TUPLE)
    return fail(m, "%s arguments are a %s, expected a tuple", op, fe_pkind_name(args->kind));
  fe_pval **a = args->u.seq.items;
  int n = args->u.seq.n;
  switch (node_of(fn)->g) {
  case FE_PG_REBUILD_TENSOR: return rebuild_tensor(m, a, n, false);
  case FE_PG_REBUILD_TENSOR_V2: return rebuild_tensor(m, a, n, true);
  case FE_PG_REBUILD_PARAMETER: {
    if (n < 3 || n > 4 || a[0]->kind != FE_PV_TENSOR || a[1]->kind != FE_PV_BOOL)
      return fail(m, "%s.%s expects (tensor, requires_grad, hooks)", QN);
    fe_pval *v = new_val(m, FE_PV_TENSOR);
    fe_tensor *t = nn_alloc(m->arena, sizeof *t);
    *t = *a[0]->u.tensor;
    t->requires_grad = a[1]->u.b;
    v->u.tensor = t;
    return v;
  }
  case FE_PG_ORDERED_DICT:
  case FE_PG_SET: {
    bool dict = node_of(fn)->g == FE_PG_ORDERED_DICT;
    if (n == 0) return dict ? new_dict(m) : new_seq(m, FE_PV_LIST, NULL, 0);
    if (!dict && n == 1 && (a[0]->kind == FE_PV_LIST || a[0]->kind == FE_PV_TUPLE))
      return new_seq(m, FE_PV_LIST, a[0]->u.seq.items, a[0]->u.seq.n);
    return fail(m, "%s.%s with arguments is not supported", QN);
  }
  case FE_PG_BUILD_LIST:
    if (n != 1 || a[0]->kind != FE_PV_LIST) return fail(m, "%s.%s expects one list", QN);
    return a[0];
  case FE_PG_RESTORE_TYPE_TAG:
    if (n != 2 || a[1]->kind != FE_PV_STR) return fail(m, "%s.%s expects (value, type)", QN);
    return a[0];
  case FE_PG_TENSOR_FROM_ID: {
    int64_t id;
    if (n != 1 || !as_int(a[0], &id) || id < 0) return fail(m, "%s.%s expects one index", QN);
    fe_pval *v = new_val(m, FE_PV_TENSOR);
    v->u.tensor = nn_alloc(m->arena, sizeof(fe_tensor));
    v->u.tensor->legacy_id = id;
    return v;
  }
  case FE_PG_DEVICE: {
    int64_t idx = -1;
    if (n < 1 || n > 2 || a[0]->kind != FE_PV_STR ||
        (n == 2 && a[1]->kind != FE_PV_NONE && !as_int(a[1], &idx)))
      return fail(m, "%s.%s expects (type[, index])", QN);
    fe_pval *v = new_val(m, FE_PV_DEVICE);
    v->u.device = idx >= 0 ? nn_sprintf(m->arena, "%.100s:%lld", a[0]->u.str.s, (long long)idx)
                           : a[0]->u.str.s;
    return v;
  }
  case FE_PG_SIZE:
    if (n != 1 || (a[0]->kind != FE_PV_TUPLE && a[0]->kind != FE_PV_LIST))
      return fail(m, "%s.%s expects one tuple", QN);
    return a[0];
  case FE_PG_CODECS_ENCODE: return codecs_encode(m, a, n);
  case FE_PG_CLASS: {
    if (n != 0) return fail(m, "%s of class %s.%s with arguments is not supported", op, QN);
    fe_pval *v = new_val(m, FE_PV_OBJECT);
    v->u.obj.module = fn->u.obj.module;
    v->u.obj.name = fn->u.obj.name;
    return v;
  }
  case FE_PG_STORAGE:
  case FE_PG_NONE:
  case FE_PG_NUMBER:
  case FE_PG_REFUSED: break; /* never an FE_PV_GLOBAL */
  }
  return fail(m, "%s of %s.%s is not supported", op, QN);
}

#undef QN

/* BUILD: state applied to an object. A dict's state holds Python attributes
 * (an OrderedDict state dict carries `_metadata`), not items: dropped. */
static int build(vm *m, fe_pval *obj, fe_pval *state) {
  switch (obj->kind) {
  case FE_PV_OBJECT:
    if (check_acyclic(m, obj, state)) return -1;
    obj->u.obj.state = state;
    return 0;
  case FE_PV_DICT:
  case FE_PV_TENSOR: return 0;
  default: fail(m, "BUILD on a %s is not supported", fe_pkind_name(obj->kind)); return -1;
  }
}

/* ---- the interpreter loop ---------------------------------------------------- */

enum {
  OP_MARK = '(',
  OP_STOP = '.',
  OP_POP = '0',
  OP_POP_MARK = '1',
  OP_DUP = '2',
  OP_FLOAT = 'F',
  OP_INT = 'I',
  OP_BININT = 'J',
  OP_BININT1 = 'K',
  OP_LONG = 'L',
  OP_BININT2 = 'M',
  OP_NONE = 'N',
  OP_PERSID = 'P',
  OP_BINPERSID = 'Q',
  OP_REDUCE = 'R',
  OP_STRING = 'S',
  OP_BINSTRING = 'T',
  OP_SHORT_BINSTRING = 'U',
  OP_UNICODE = 'V',
  OP_BINUNICODE = 'X',
  OP_APPEND = 'a',
  OP_BUILD = 'b',
  OP_GLOBAL = 'c',
  OP_DICT = 'd',
  OP_EMPTY_DICT = '}',
  OP_APPENDS = 'e',
  OP_GET = 'g',
  OP_BINGET = 'h',
  OP_LONG_BINGET = 'j',
  OP_LIST = 'l',
  OP_EMPTY_LIST = ']',
  OP_PUT = 'p',
  OP_BINPUT = 'q',
  OP_LONG_BINPUT = 'r',
  OP_SETITEM = 's',
  OP_TUPLE = 't',
  OP_EMPTY_TUPLE = ')',
  OP_SETITEMS = 'u',
  OP_BINFLOAT = 'G',
  OP_BINBYTES = 'B',
  OP_SHORT_BINBYTES = 'C',
  OP_PROTO = 0x80,
  OP_NEWOBJ = 0x81,
  OP_TUPLE1 = 0x85,
  OP_TUPLE2 = 0x86,
  OP_TUPLE3 = 0x87,
  OP_NEWTRUE = 0x88,
  OP_NEWFALSE = 0x89,
  OP_LONG1 = 0x8a,
  OP_LONG4 = 0x8b,
  OP_SHORT_BINUNICODE = 0x8c,
  OP_BINUNICODE8 = 0x8d,
  OP_BINBYTES8 = 0x8e,
  OP_EMPTY_SET = 0x8f,
  OP_ADDITEMS = 0x90,
  OP_FROZENSET = 0x91,
  OP_NEWOBJ_EX = 0x92,
  OP_STACK_GLOBAL = 0x93,
  OP_MEMOIZE = 0x94,
  OP_FRAME = 0x95,
};

static const char *op_name(int op) {
  switch (op) {
  case OP_MARK: return "MARK";
  case OP_STOP: return "STOP";
  case OP_POP: return "POP";
  case OP_POP_MARK: return "POP_MARK";
  case OP_DUP: return "DUP";
  case OP_FLOAT: return "FLOAT";
  case OP_INT: return "INT";
  case OP_BININT: return "BININT";
  case OP_BININT1: return "BININT1";
  case OP_LONG: return "LONG";
  case OP_BININT2: return "BININT2";
  case OP_NONE: return "NONE";
  case OP_PERSID: return "PERSID";
  case OP_BINPERSID: return "BINPERSID";
  case OP_REDUCE: return "REDUCE";
  case OP_STRING: return "STRING";
  case OP_BINSTRING: return "BINSTRING";
  case OP_SHORT_BINSTRING: return "SHORT_BINSTRING";
  case OP_UNICODE: return "UNICODE";
  case OP_BINUNICODE: return "BINUNICODE";
  case OP_APPEND: return "APPEND";
  case OP_BUILD: return "BUILD";
  case OP_GLOBAL: return "GLOBAL";
  case OP_DICT: return "DICT";
  case OP_EMPTY_DICT: return "EMPTY_DICT";
  case OP_APPENDS: return "APPENDS";
  case OP_GET: return "GET";
  case OP_BINGET: return "BINGET";
  case OP_LONG_BINGET: return "LONG_BINGET";
  case OP_LIST: return "LIST";
  case OP_EMPTY_LIST: return "EMPTY_LIST";
  case OP_PUT: return "PUT";
  case OP_BINPUT: return "BINPUT";
  case OP_LONG_BINPUT: return "LONG_BINPUT";
  case OP_SETITEM: return "SETITEM";
  case OP_TUPLE: return "TUPLE";
  case OP_EMPTY_TUPLE: return "EMPTY_TUPLE";
  case OP_SETITEMS: return "SETITEMS";
  case OP_BINFLOAT: return "BINFLOAT";
  case OP_BINBYTES: return "BINBYTES";
  case OP_SHORT_BINBYTES: return "SHORT_BINBYTES";
  case OP_PROTO: return "PROTO";
  case OP_NEWOBJ: return "NEWOBJ";
  case OP_TUPLE1: return "TUPLE1";
  case OP_TUPLE2: return "TUPLE2";
  case OP_TUPLE3: return "TUPLE3";
  case OP_NEWTRUE: return "NEWTRUE";
  case OP_NEWFALSE: return "NEWFALSE";
  case OP_LONG1: return "LONG1";
  case OP_LONG4: return "LONG4";
  case OP_SHORT_BINUNICODE: return "SHORT_BINUNICODE";
  case OP_BINUNICODE8: return "BINUNICODE8";
  case OP_BINBYTES8: return "BINBYTES8";
  case OP_EMPTY_SET: return "EMPTY_SET";
  case OP_ADDITEMS: return "ADDITEMS";
  case OP_FROZENSET: return "FROZENSET";
  case OP_NEWOBJ_EX: return "NEWOBJ_EX";
  case OP_STACK_GLOBAL: return "STACK_GLOBAL";
  case OP_MEMOIZE: return "MEMOIZE";
  case OP_FRAME: return "FRAME";
  default: return "opcode";
  }
}

static int memo_put(vm *m, uint64_t idx) {
  fe_pval *v = top(m, op_name(m->buf[m->op_pos]));
  if (!v) return -1;
  /* A writer numbers memo entries from 0 and spends at least two bytes on
   * each, so an index beyond the input size is garbage, not a big pickle. */
  if (idx > m->len) {
    fail(m, "memo index %llu out of range", (unsigned long long)idx);
    return -1;
  }
  if (idx >= m->memo_cap) {
    size_t nc = m->memo_cap ? m->memo_cap : 64;
    while (nc <= idx) nc *= 2;
    m->memo = nn_realloc(m->arena, m->memo, sizeof(fe_pval *) * m->memo_cap,
                         sizeof(fe_pval *) * nc);
    m->memo_cap = nc;
  }
  if (!m->memo[idx]) m->memo_count++;
  m->memo[idx] = v;
  return 0;
}

static int memo_get(vm *m, uint64_t idx) {
  if (idx >= m->memo_cap || !m->memo[idx]) {
    fail(m, "memo entry %llu is not set", (unsigned long long)idx);
    return -1;
  }
  return push(m, m->memo[idx]);
}

/* Reads a text argument as a decimal index (PUT / GET). */
static int rd_dec_line(vm *m, int64_t *out) {
  const char *s;
  size_t n;
  if (rd_line(m, &s, &n) || parse_dec(m, s, n, out)) return -1;
  if (*out < 0) {
    fail(m, "negative memo index");
    return -1;
  }
  return 0;
}

/* Pops a MARK-delimited run and pushes it as a tuple or list. */
static int collect(vm *m, fe_pkind k, const char *op) {
  fe_pval **items;
  int n;
  if (pop_mark(m, op, &items, &n)) return -1;
  return push(m, new_seq(m, k, items, n));
}

static int do_global(vm *m, const char *mod, size_t nm, const char *name, size_t nn) {
  if (nm == 0 || nn == 0) {
    fail(m, "GLOBAL with an empty module or name");
    return -1;
  }
  if (memchr(mod, 0, nm) || memchr(name, 0, nn)) {
    fail(m, "GLOBAL name contains a NUL byte");
    return -1;
  }
  return push(m, resolve_global(m, nn_strndup(m->arena, mod, nm), nn_strndup(m->arena, name, nn)));
}

/* Runs one opcode; returns 1 at STOP, 0 to go on, -1 on error. */
static int step(vm *m, fe_pval **result) {
  m->op_pos = m->pos;
  if (m->pos >= m->len) {
    fail(m, "truncated pickle: no STOP opcode");
    return -1;
  }
  int op = m->buf[m->pos++];
  const char *name = op_name(op);
  const char *s;
  size_t n;
  fe_pval **items;
  int ni;
  switch (op) {
  case OP_PROTO:
    if (need(m, 1)) return -1;
    if (m->buf[m->pos] > 5) {
      fail(m, "unsupported pickle protocol %d", m->buf[m->pos]);
      return -1;
    }
    m->pos++;
    return 0;
  case OP_FRAME: /* framing is only a buffering hint */ return rd_len(m, 8, &n);
  case OP_STOP: {
    if (m->stack.len != 1 || m->marks.len) {
      fail(m, "STOP with %d values on the stack and %d open MARKs (expected 1 value)", m->stack.len,
           m->marks.len);
      return -1;
    }
    *result = m->stack.data[0];
    return 1;
  }
  case OP_MARK: NN_PUSH(m->arena, m->marks, m->stack.len); return 0;
  case OP_POP:
    if (m->stack.len > base(m)) {
      m->stack.len--;
      return 0;
    }
    return pop_mark(m, name, &items, &ni);
  case OP_POP_MARK: return pop_mark(m, name, &items, &ni);
  case OP_DUP: {
    fe_pval *v = top(m, name);
    return v ? push(m, v) : -1;
  }

  /* -- scalars -- */
  case OP_NONE: return push(m, new_val(m, FE_PV_NONE));
  case OP_NEWTRUE:
  case OP_NEWFALSE: return push(m, new_bool(m, op == OP_NEWTRUE));
  case OP_BININT1:
    if (need(m, 1)) return -1;
    return push(m, new_int(m, (int64_t)rd_le(m, 1)));
  case OP_BININT2:
    if (need(m, 2)) return -1;
    return push(m, new_int(m, (int64_t)rd_le(m, 2)));
  case OP_BININT:
    if (need(m, 4)) return -1;
    return push(m, new_int(m, (int32_t)(uint32_t)rd_le(m, 4)));
  case OP_LONG1:
  case OP_LONG4: {
    /* LONG4's length is a signed 32-bit number */
    if (op == OP_LONG4 && (need(m, 4) || (m->buf[m->pos + 3] & 0x80))) {
      fail(m, "LONG4 with a negative length");
      return -1;
    }
    if (rd_len(m, op == OP_LONG1 ? 1 : 4, &n)) return -1;
    fe_pval *v = decode_long(m, m->buf + m->pos, n);
    m->pos += n;
    return push(m, v);
  }
  case OP_INT: {
    int64_t i;
    if (rd_line(m, &s, &n)) return -1;
    if (n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1'))
      return push(m, new_bool(m, s[1] == '1'));
    if (parse_dec(m, s, n, &i)) return -1;
    return push(m, new_int(m, i));
  }
  case OP_LONG: {
    int64_t i;
    if (rd_line(m, &s, &n)) return -1;
    if (n && s[n - 1] == 'L') n--;
    if (parse_dec(m, s, n, &i)) return -1;
    return push(m, new_int(m, i));
  }
  case OP_BINFLOAT: {
    if (need(m, 8)) return -1;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = (u << 8) | m->buf[m->pos++];
    fe_pval *v = new_val(m, FE_PV_FLOAT);
    memcpy(&v->u.f, &u, sizeof u);
    return push(m, v);
  }
  case OP_FLOAT: {
    if (rd_line(m, &s, &n)) return -1;
    char *c = nn_strndup(m->arena, s, n), *end;
    fe_pval *v = new_val(m, FE_PV_FLOAT);
    v->u.f = strtod(c, &end);
    if (n == 0 || *end || strlen(c) != n) {
      fail(m, "malformed float '%.40s'", c);
      return -1;
    }
    return push(m, v);
  }

  /* -- strings and bytes -- */
  case OP_BINUNICODE:
  case OP_SHORT_BINUNICODE:
  case OP_BINUNICODE8:
  case OP_BINSTRING:
  case OP_SHORT_BINSTRING:
  case OP_BINBYTES:
  case OP_SHORT_BINBYTES:
  case OP_BINBYTES8: {
    int w = op == OP_SHORT_BINUNICODE || op == OP_SHORT_BINSTRING || op == OP_SHORT_BINBYTES ? 1
            : op == OP_BINUNICODE8 || op == OP_BINBYTES8
                ? 8
                : 4;
    /* BINSTRING's length is a signed 32-bit number */
    if (op == OP_BINSTRING && (need(m, 4) || (m->buf[m->pos + 3] & 0x80))) {
      fail(m, "BINSTRING with a negative length");
      return -1;
    }
    if (rd_len(m, w, &n)) return -1;
    fe_pkind k = op == OP_BINBYTES || op == OP_SHORT_BINBYTES || op == OP_BINBYTES8
                     ? FE_PV_BYTES
                     : FE_PV_STR;
    fe_pval *v = new_str(m, k, m->buf + m->pos, n);
    m->pos += n;
    return push(m, v);
  }
  case OP_STRING:
    if (rd_line(m, &s, &n)) return -1;
    return push(m, decode_string_repr(m, s, n));
  case OP_UNICODE:
    if (rd_line(m, &s, &n)) return -1;
    return push(m, decode_raw_unicode(m, s, n));

  /* -- containers -- */
  case OP_EMPTY_TUPLE: return push(m, new_seq(m, FE_PV_TUPLE, NULL, 0));
  case OP_TUPLE1:
  case OP_TUPLE2:
  case OP_TUPLE3: {
    int k = op - OP_TUPLE1 + 1;
    if (m->stack.len - base(m) < k) {
      fail(m, "stack underflow in %s", name);
      return -1;
    }
    m->stack.len -= k;
    return push(m, new_seq(m, FE_PV_TUPLE, m->stack.data + m->stack.len, k));
  }
  case OP_TUPLE: return collect(m, FE_PV_TUPLE, name);
  case OP_EMPTY_LIST:
  case OP_EMPTY_SET: return push(m, new_seq(m, FE_PV_LIST, NULL, 0));
  case OP_LIST:
  case OP_FROZENSET: return collect(m, FE_PV_LIST, name);
  case OP_APPEND: {
    fe_pval *v = pop(m, name), *l = v ? top(m, name) : NULL;
    if (!l) return -1;
    if (l->kind != FE_PV_LIST) {
      fail(m, "APPEND to a %s", fe_pkind_name(l->kind));
      return -1;
    }
    return list_append(m, l, v);
  }
  case OP_APPENDS:
  case OP_ADDITEMS: {
    if (pop_mark(m, name, &items, &ni)) return -1;
    fe_pval *l = top(m, name);
    if (!l) return -1;
    if (l->kind != FE_PV_LIST) {
      fail(m, "%s to a %s", name, fe_pkind_name(l->kind));
      return -1;
    }
    for (int i = 0; i < ni; i++)
      if (list_append(m, l, items[i])) return -1;
    return 0;
  }
  case OP_EMPTY_DICT: return push(m, new_dict(m));
  case OP_DICT:
  case OP_SETITEMS: {
    if (pop_mark(m, name, &items, &ni)) return -1;
    if (ni % 2) {
      fail(m, "%s with an odd number of items", name);
      return -1;
    }
    fe_pval *dct;
    if (op == OP_DICT) {
      dct = new_dict(m);
      /* the new dict goes where the MARK was; items still sit above it */
      fe_pval **copy = nn_alloc(m->arena, sizeof(fe_pval *) * (size_t)(ni ? ni : 1));
      if (ni) memcpy(copy, items, sizeof(fe_pval *) * (size_t)ni);
      items = copy;
      if (push(m, dct)) return -1;
    } else if (!(dct = top(m, name))) {
      return -1;
    }
    if (dct->kind != FE_PV_DICT) {
      fail(m, "%s on a %s", name, fe_pkind_name(dct->kind));
      return -1;
    }
    for (int i = 0; i < ni; i += 2)
      if (dict_set(m, dct, items[i], items[i + 1])) return -1;
    return 0;
  }
  case OP_SETITEM: {
    fe_pval *v = pop(m, name), *k = v ? pop(m, name) : NULL, *dct = k ? top(m, name) : NULL;
    if (!dct) return -1;
    if (dct->kind != FE_PV_DICT) {
      fail(m, "SETITEM on a %s", fe_pkind_name(dct->kind));
      return -1;
    }
    return dict_set(m, dct, k, v);
  }

  /* -- memo -- */
  case OP_BINPUT:
    if (need(m, 1)) return -1;
    return memo_put(m, rd_le(m, 1));
  case OP_LONG_BINPUT:
    if (need(m, 4)) return -1;
    return memo_put(m, rd_le(m, 4));
  case OP_MEMOIZE: return memo_put(m, m->memo_count);
  case OP_PUT: {
    int64_t i;
    return rd_dec_line(m, &i) ? -1 : memo_put(m, (uint64_t)i);
  }
  case OP_BINGET:
    if (need(m, 1)) return -1;
    return memo_get(m, rd_le(m, 1));
  case OP_LONG_BINGET:
    if (need(m, 4)) return -1;
    return memo_get(m, rd_le(m, 4));
  case OP_GET: {
    int64_t i;
    return rd_dec_line(m, &i) ? -1 : memo_get(m, (uint64_t)i);
  }

  /* -- globals and objects -- */
  case OP_GLOBAL: {
    const char *mod, *nm;
    size_t nmod, nname;
    if (rd_line(m, &mod, &nmod) || rd_line(m, &nm, &nname)) return -1;
    return do_global(m, mod, nmod, nm, nname);
  }
  case OP_STACK_GLOBAL: {
    fe_pval *nm = pop(m, name), *mod = nm ? pop(m, name) : NULL;
    if (!mod) return -1;
    if (nm->kind != FE_PV_STR || mod->kind != FE_PV_STR) {
      fail(m, "STACK_GLOBAL needs two strings");
      return -1;
    }
    return do_global(m, mod->u.str.s, mod->u.str.len, nm->u.str.s, nm->u.str.len);
  }
  case OP_REDUCE:
  case OP_NEWOBJ: {
    fe_pval *args = pop(m, name), *fn = args ? pop(m, name) : NULL;
    if (!fn) return -1;
    return push(m, apply(m, fn, args, name));
  }
  case OP_NEWOBJ_EX: {
    fe_pval *kw = pop(m, name), *args = kw ? pop(m, name) : NULL;
    fe_pval *fn = args ? pop(m, name) : NULL;
    if (!fn) return -1;
    if (kw->kind != FE_PV_DICT || kw->u.dict.n != 0) {
      fail(m, "NEWOBJ_EX with keyword arguments is not supported");
      return -1;
    }
    return push(m, apply(m, fn, args, name));
  }
  case OP_BUILD: {
    fe_pval *state = pop(m, name), *obj = state ? top(m, name) : NULL;
    if (!obj) return -1;
    return build(m, obj, state);
  }
  case OP_BINPERSID: {
    fe_pval *pid = pop(m, name);
    return pid ? push(m, persistent_load(m, pid)) : -1;
  }
  case OP_PERSID:
    if (rd_line(m, &s, &n)) return -1;
    return push(m, persistent_load(m, new_str(m, FE_PV_STR, s, n)));
  default: fail(m, "unsupported pickle opcode 0x%02x", op); return -1;
  }
}

fe_pval *fe_unpickle(const void *buf, size_t len, const fe_pickle_opts *o, nn_arena *arena,
                     nn_diag *d, size_t *consumed) {
  static const fe_pickle_opts no_opts;
  static const char *const default_prefixes[] = {"__torch__.", "__main__.", NULL};
  vm m;
  memset(&m, 0, sizeof m);
  m.buf = buf;
  m.len = buf ? len : 0;
  m.o = o ? o : &no_opts;
  m.label = m.o->label ? m.o->label : "pickle";
  m.prefixes = m.o->class_prefixes ? m.o->class_prefixes : default_prefixes;
  m.arena = arena;
  m.d = d;
  m.walk_budget = 64 * (uint64_t)m.len + (1u << 20);
  if (consumed) *consumed = 0;
  fe_pval *result = NULL;
  int r;
  while ((r = step(&m, &result)) == 0) {
  }
  if (r < 0) return NULL;
  if (check_depth(&m, result)) return NULL;
  if (consumed) *consumed = m.pos;
  return result;
}

/* ---- helpers --------------------------------------------------------------- */

fe_pval *fe_pdict_get(const fe_pval *dict, const char *key) {
  if (!dict || dict->kind != FE_PV_DICT || !key) return NULL;
  size_t n = strlen(key);
  for (int i = dict->u.dict.n - 1; i >= 0; i--) {
    const fe_pval *k = dict->u.dict.keys[i];
    if (k->kind == FE_PV_STR && k->u.str.len == n && !memcmp(k->u.str.s, key, n))
      return dict->u.dict.vals[i];
  }
  return NULL;
}

const char *fe_pkind_name(fe_pkind k) {
  static const char *const names[] = {
      [FE_PV_NONE] = "none",     [FE_PV_BOOL] = "bool",       [FE_PV_INT] = "int",
      [FE_PV_FLOAT] = "float",   [FE_PV_STR] = "str",         [FE_PV_BYTES] = "bytes",
      [FE_PV_TUPLE] = "tuple",   [FE_PV_LIST] = "list",       [FE_PV_DICT] = "dict",
      [FE_PV_TENSOR] = "tensor", [FE_PV_STORAGE] = "storage", [FE_PV_GLOBAL] = "global",
      [FE_PV_OBJECT] = "object", [FE_PV_DEVICE] = "device",
  };
  return (unsigned)k < (unsigned)NN_ARRAY_LEN(names) && names[k] ? names[k] : "?";
}
