/* common.c — arena, growable strings, dtype tables and diagnostics.
 *
 * The arena hands out memory from 64 KiB chunks (larger requests get their
 * own chunk); nothing is freed before nn_arena_free(). Diagnostics print at
 * once, in the order they are reported, so a compile that finds several
 * unsupported ops lists all of them.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------ */

typedef struct chunk {
  struct chunk *next; /* older chunks */
  size_t used;        /* bytes used in data */
  size_t size;        /* bytes available in data */
  _Alignas(16) unsigned char data[];
} chunk;

struct nn_arena {
  chunk *head;  /* the chunk being filled, then older ones */
  size_t total; /* bytes handed out */
};

enum { CHUNK_SIZE = 64 * 1024 };

nn_arena *nn_arena_new(void) {
  nn_arena *a = calloc(1, sizeof *a);
  if (!a) nn_internal_error(__FILE__, __LINE__, "out of memory");
  return a;
}

void nn_arena_free(nn_arena *a) {
  if (!a) return;
  for (chunk *c = a->head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(a);
}

void *nn_alloc(nn_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  chunk *c = a->head;
  if (!c || c->size - c->used < size) {
    size_t cs = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
    chunk *n = malloc(sizeof(chunk) + cs);
    if (!n) nn_internal_error(__FILE__, __LINE__, "out of memory (%zu bytes)", size);
    n->used = 0;
    n->size = cs;
    if (cs != CHUNK_SIZE && c) {
      /* A big block: keep filling the current chunk afterwards. */
      n->next = c->next;
      c->next = n;
    } else {
      n->next = c;
      a->head = n;
    }
    c = n;
  }
  void *p = c->data + c->used;
  c->used += size;
  a->total += size;
  memset(p, 0, size);
  return p;
}

void *nn_realloc(nn_arena *a, void *p, size_t old_size, size_t new_size) {
  void *q = nn_alloc(a, new_size);
  if (p && old_size) memcpy(q, p, old_size < new_size ? old_size : new_size);
  return q;
}

char *nn_strndup(nn_arena *a, const char *s, size_t n) {
  char *d = nn_alloc(a, n + 1);
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

char *nn_strdup(nn_arena *a, const char *s) { return nn_strndup(a, s, strlen(s)); }

char *nn_sprintf(nn_arena *a, const char *fmt, ...) {
  va_list ap, aq;
  va_start(ap, fmt);
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *d = nn_alloc(a, (size_t)n + 1);
  vsnprintf(d, (size_t)n + 1, fmt, aq);
  va_end(aq);
  return d;
}

size_t nn_arena_bytes(const nn_arena *a) { return a->total; }

/* ---- buffers ---------------------------------------------------------- */

static void buf_reserve(nn_buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->len + extra + 1) nc *= 2;
  char *d = realloc(b->data, nc);
  if (!d) nn_internal_error(__FILE__, __LINE__, "out of memory");
  b->data = d;
  b->cap = nc;
}

void nn_buf_vprintf(nn_buf *b, const char *fmt, va_list ap) {
  va_list aq;
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, aq);
  va_end(aq);
  buf_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void nn_buf_printf(nn_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nn_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void nn_buf_putn(nn_buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

void nn_buf_free(nn_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- dtypes ----------------------------------------------------------- */

static const struct {
  const char *name;    /* our spelling */
  size_t size;         /* bytes */
  int scalar_type;     /* PyTorch ScalarType number */
  const char *storage; /* torch.<X>Storage */
} dtypes[NN_DT_COUNT] = {
    [NN_DT_UNKNOWN] = {"?", 0, -1, NULL},   [NN_DT_F32] = {"f32", 4, 6, "Float"},
    [NN_DT_F16] = {"f16", 2, 5, "Half"},    [NN_DT_BF16] = {"bf16", 2, 15, "BFloat16"},
    [NN_DT_F64] = {"f64", 8, 7, "Double"},  [NN_DT_I64] = {"i64", 8, 4, "Long"},
    [NN_DT_I32] = {"i32", 4, 3, "Int"},     [NN_DT_I16] = {"i16", 2, 2, "Short"},
    [NN_DT_I8] = {"i8", 1, 1, "Char"},      [NN_DT_U8] = {"u8", 1, 0, "Byte"},
    [NN_DT_BOOL] = {"bool", 1, 11, "Bool"},
};

const char *nn_dtype_name(nn_dtype t) { return (unsigned)t < NN_DT_COUNT ? dtypes[t].name : "?"; }

nn_dtype nn_dtype_parse(const char *s) {
  for (int i = 1; i < NN_DT_COUNT; i++)
    if (strcmp(s, dtypes[i].name) == 0) return (nn_dtype)i;
  return NN_DT_UNKNOWN;
}

size_t nn_dtype_size(nn_dtype t) { return (unsigned)t < NN_DT_COUNT ? dtypes[t].size : 0; }

nn_dtype nn_dtype_from_scalar_type(int64_t st) {
  for (int i = 1; i < NN_DT_COUNT; i++)
    if (dtypes[i].scalar_type == st) return (nn_dtype)i;
  return NN_DT_UNKNOWN;
}

int64_t nn_dtype_to_scalar_type(nn_dtype t) {
  return (unsigned)t < NN_DT_COUNT ? dtypes[t].scalar_type : -1;
}

nn_dtype nn_dtype_from_storage_name(const char *name) {
  for (int i = 1; i < NN_DT_COUNT; i++)
    if (strcmp(name, dtypes[i].storage) == 0) return (nn_dtype)i;
  return NN_DT_UNKNOWN;
}

int nn_dtype_is_float(nn_dtype t) {
  return t == NN_DT_F32 || t == NN_DT_F16 || t == NN_DT_BF16 || t == NN_DT_F64;
}

/* ---- 16-bit floats ----------------------------------------------------- */

uint16_t nn_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
  if (exp == 0xff) /* inf, nan */
    return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) { /* subnormal or zero */
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000;
    int shift = 14 - e;
    uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    h++; /* may carry into the exponent, up to inf: correct */
  return (uint16_t)(sign | h);
}

float nn_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, x;
  if (exp == 0x1f) {
    x = sign | 0x7f800000 | (man << 13);
  } else if (exp == 0) {
    if (!man) {
      x = sign;
    } else {
      int e = -1;
      do {
        man <<= 1;
        e++;
      } while (!(man & 0x400));
      x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &x, 4);
  return f;
}

uint16_t nn_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
  uint32_t rounding = 0x7fff + ((x >> 16) & 1);
  return (uint16_t)((x + rounding) >> 16);
}

float nn_bf16_to_f32(uint16_t h) {
  uint32_t x = (uint32_t)h << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

/* ---- diagnostics ------------------------------------------------------ */

void nn_diag_init(nn_diag *d, FILE *out) {
  memset(d, 0, sizeof *d);
  d->out = out ? out : stderr;
}

static void print_loc(FILE *f, nn_loc loc) {
  if (!loc.file) return;
  if (loc.line > 0 && loc.col > 0)
    fprintf(f, "%s:%d:%d: ", loc.file, loc.line, loc.col);
  else if (loc.line > 0)
    fprintf(f, "%s:%d: ", loc.file, loc.line);
  else
    fprintf(f, "%s: ", loc.file);
}

static void print_caret(nn_diag *d, nn_loc loc) {
  if (!d->source || !loc.file || loc.line <= 0) return;
  size_t len = 0;
  const char *text = d->source(d->source_ctx, loc.file, loc.line, &len);
  if (!text) return;
  fprintf(d->out, "  %.*s\n", (int)len, text);
  if (loc.col > 0 && (size_t)loc.col <= len + 1) {
    fputs("  ", d->out);
    for (int i = 1; i < loc.col; i++) fputc(text[i - 1] == '\t' ? '\t' : ' ', d->out);
    fputs("^\n", d->out);
  }
}

/* The user-level origin of loc, as a note line, when the callback knows it. */
static void print_origin(nn_diag *d, nn_loc loc) {
  if (!d->origin || !loc.file || loc.line <= 0) return;
  char buf[512];
  buf[0] = 0;
  if (d->origin(d->origin_ctx, loc.file, loc.line, loc.col, buf, sizeof buf) != 1) return;
  buf[sizeof buf - 1] = 0;
  fprintf(d->out ? d->out : stderr, "nncc: note: %s\n", buf);
}

void nn_vreport(nn_diag *d, const char *kind, nn_loc loc, const char *fmt, va_list ap) {
  FILE *f = d->out ? d->out : stderr;
  fprintf(f, "nncc: %s: ", kind);
  print_loc(f, loc);
  vfprintf(f, fmt, ap);
  fputc('\n', f);
  if (strcmp(kind, "note") != 0) {
    print_caret(d, loc);
    print_origin(d, loc);
  }
}

void nn_error(nn_diag *d, nn_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nn_vreport(d, "error", loc, fmt, ap);
  va_end(ap);
  d->errors++;
}

void nn_warning(nn_diag *d, nn_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nn_vreport(d, d->werror ? "error" : "warning", loc, fmt, ap);
  va_end(ap);
  if (d->werror)
    d->errors++;
  else
    d->warnings++;
}

void nn_remark(nn_diag *d, nn_loc loc, const char *fmt, ...) {
  if (!d->wall) return;
  va_list ap;
  va_start(ap, fmt);
  nn_vreport(d, "remark", loc, fmt, ap);
  va_end(ap);
}

void nn_note(nn_diag *d, nn_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nn_vreport(d, "note", loc, fmt, ap);
  va_end(ap);
}

/* ---- invariants ------------------------------------------------------- */

void (*nn_fatal_hook)(void) = abort;

void nn_internal_error(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nncc: internal error: %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  nn_fatal_hook();
  abort();
}
