/* npy.c — reading and writing NumPy .npy files (nncc.h ".npy files").
 *
 * A .npy file is: the magic "\x93NUMPY", a major and minor version byte, the
 * header length (u16 little-endian for version 1, u32 for 2 and 3), the
 * header — a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ending in '\n' — and then the raw elements. We
 * read any key order and spacing, but only little-endian (or byte-sized)
 * element types of the dtypes the API knows, and only C order; the data
 * must be exactly as long as the shape says. We write what np.save writes
 * (version 1.0, header padded so the data starts at a multiple of 64), so
 * our files are byte-identical to NumPy's.
 *
 * A tensor read here is one allocation: the nncc_tensor, its dims, then the
 * data at a 64-byte aligned offset.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* The numpy type string of each dtype ("" = none). */
static const char *npy_descr(nncc_dtype t) {
  switch (t) {
  case NNCC_DTYPE_F32: return "<f4";
  case NNCC_DTYPE_F64: return "<f8";
  case NNCC_DTYPE_F16: return "<f2";
  case NNCC_DTYPE_I64: return "<i8";
  case NNCC_DTYPE_I32: return "<i4";
  case NNCC_DTYPE_I16: return "<i2";
  case NNCC_DTYPE_I8: return "|i1";
  case NNCC_DTYPE_U8: return "|u1";
  case NNCC_DTYPE_BOOL: return "|b1";
  default: return "";
  }
}

/* Parses a numpy type string; UNKNOWN when unsupported. '=' (native) is
 * little-endian on every host we run on; byte-sized types take any order. */
static nncc_dtype npy_parse_descr(const char *s) {
  if (strlen(s) != 3) return NNCC_DTYPE_UNKNOWN;
  char order = s[0];
  if (order != '<' && order != '|' && order != '=' && order != '>') return NNCC_DTYPE_UNKNOWN;
  for (int t = NNCC_DTYPE_F32; t <= NNCC_DTYPE_BOOL; t++) {
    const char *d = npy_descr((nncc_dtype)t);
    if (!*d || strcmp(d + 1, s + 1)) continue;
    if (order == '>' && nncc_dtype_size((nncc_dtype)t) > 1) return NNCC_DTYPE_UNKNOWN;
    return (nncc_dtype)t;
  }
  return NNCC_DTYPE_UNKNOWN;
}

nncc_tensor *nncc_tensor_alloc(nncc_dtype dtype, int32_t rank, const int64_t *dims) {
  size_t esize = nncc_dtype_size(dtype);
  if (!esize || rank < 0 || rank > NNCC_MAX_RANK || (rank && !dims)) return NULL;
  uint64_t elems = 1;
  for (int32_t i = 0; i < rank; i++) {
    if (dims[i] < 0) return NULL;
    if (dims[i] && elems > ((uint64_t)1 << 62) / (uint64_t)dims[i]) return NULL;
    elems *= (uint64_t)dims[i];
  }
  if (elems > ((uint64_t)1 << 60) / esize) return NULL;
  size_t head = (sizeof(nncc_tensor) + NNCC_MAX_RANK * sizeof(int64_t) + 63) / 64 * 64;
  size_t bytes = (size_t)(elems * esize);
  if (bytes > SIZE_MAX - head - 64) return NULL;
  void *block = aligned_alloc(64, (head + bytes + 63) / 64 * 64);
  if (!block) return NULL;
  memset(block, 0, head + bytes);
  nncc_tensor *t = block;
  int64_t *d = (int64_t *)(t + 1);
  for (int32_t i = 0; i < rank; i++) d[i] = dims[i];
  *t = (nncc_tensor){(char *)block + head, dtype, rank, d, NNCC_TENSOR_HOST};
  return t;
}

void nncc_tensor_free(nncc_tensor *t) { free(t); }

/* ---- reading ---------------------------------------------------------------- */

typedef struct npy_lex {
  const char *p, *end; /* unread header text */
} npy_lex;

static void npy_ws(npy_lex *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}

static bool npy_eat(npy_lex *l, char c) {
  npy_ws(l);
  if (l->p < l->end && *l->p == c) {
    l->p++;
    return true;
  }
  return false;
}

/* A quoted Python string (no escapes) into buf[0..cap). */
static bool npy_string(npy_lex *l, char *buf, size_t cap) {
  npy_ws(l);
  if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return false;
  char q = *l->p++;
  size_t n = 0;
  while (l->p < l->end && *l->p != q) {
    if (n + 1 >= cap || *l->p == '\\') return false;
    buf[n++] = *l->p++;
  }
  if (l->p >= l->end) return false;
  l->p++;
  buf[n] = 0;
  return true;
}

static bool npy_word(npy_lex *l, const char *w) {
  npy_ws(l);
  size_t n = strlen(w);
  if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n)) return false;
  l->p += n;
  return true;
}

/* The shape tuple: "()" "(3,)" "(2, 3)" (a trailing comma is optional).
 * Python ints may carry an 'L' suffix (NumPy on Python 2). */
static bool npy_shape(npy_lex *l, int64_t *dims, int32_t *rank) {
  if (!npy_eat(l, '(')) return false;
  *rank = 0;
  for (;;) {
    if (npy_eat(l, ')')) return true;
    npy_ws(l);
    if (l->p >= l->end || *l->p < '0' || *l->p > '9') return false;
    int64_t v = 0;
    while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
      if (v > (INT64_MAX - 9) / 10) return false;
      v = v * 10 + (*l->p++ - '0');
    }
    if (l->p < l->end && *l->p == 'L') l->p++;
    if (*rank >= NNCC_MAX_RANK) return false;
    dims[(*rank)++] = v;
    if (!npy_eat(l, ',')) {
      return npy_eat(l, ')');
    }
  }
}

nncc_status nncc_npy_parse(const void *bytes, size_t size, nncc_tensor **tensor, char **err) {
  if (err) *err = NULL;
  if (!tensor) return rt_fail(err, NNCC_ERR_INVALID_ARG, "tensor is NULL");
  *tensor = NULL;
  if (!bytes && size) return rt_fail(err, NNCC_ERR_INVALID_ARG, "bytes is NULL");
  const unsigned char *b = bytes;
  if (size < 10 || memcmp(b, "\x93NUMPY", 6))
    return rt_fail(err, NNCC_ERR_FORMAT, "not a .npy file (no \\x93NUMPY magic)");
  int major = b[6];
  size_t hlen, start;
  if (major == 1) {
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return rt_fail(err, NNCC_ERR_FORMAT, "truncated .npy header");
    hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    start = 12;
  } else {
    return rt_fail(err, NNCC_ERR_FORMAT, "unsupported .npy format version %d.%d", major, b[7]);
  }
  if (hlen > size - start)
    return rt_fail(err, NNCC_ERR_FORMAT, "truncated .npy header (%zu bytes announced, %zu present)",
                   hlen, size - start);
  npy_lex l = {(const char *)b + start, (const char *)b + start + hlen};
  char key[32], descr[32] = "";
  int fortran = -1;
  int32_t rank = -1;
  int64_t dims[NNCC_MAX_RANK];
  if (!npy_eat(&l, '{')) return rt_fail(err, NNCC_ERR_FORMAT, "malformed .npy header (no '{')");
  while (!npy_eat(&l, '}')) {
    if (!npy_string(&l, key, sizeof key) || !npy_eat(&l, ':'))
      return rt_fail(err, NNCC_ERR_FORMAT, "malformed .npy header (expected 'key':)");
    if (!strcmp(key, "descr")) {
      if (!npy_string(&l, descr, sizeof descr))
        return rt_fail(err, NNCC_ERR_FORMAT,
                       "unsupported .npy dtype (structured or malformed 'descr')");
    } else if (!strcmp(key, "fortran_order")) {
      if (npy_word(&l, "True"))
        fortran = 1;
      else if (npy_word(&l, "False"))
        fortran = 0;
      else
        return rt_fail(err, NNCC_ERR_FORMAT, "malformed .npy header ('fortran_order')");
    } else if (!strcmp(key, "shape")) {
      if (!npy_shape(&l, dims, &rank))
        return rt_fail(err, NNCC_ERR_FORMAT,
                       "malformed .npy header ('shape' is not a tuple of at most %d ints)",
                       NNCC_MAX_RANK);
    } else {
      return rt_fail(err, NNCC_ERR_FORMAT, "malformed .npy header (unknown key '%s')", key);
    }
    if (!npy_eat(&l, ',')) {
      if (npy_eat(&l, '}')) break;
      return rt_fail(err, NNCC_ERR_FORMAT, "malformed .npy header (expected ',' or '}')");
    }
  }
  if (!*descr || fortran < 0 || rank < 0)
    return rt_fail(err, NNCC_ERR_FORMAT,
                   "malformed .npy header (needs 'descr', 'fortran_order' and 'shape')");
  if (fortran)
    return rt_fail(err, NNCC_ERR_FORMAT,
                   "Fortran-order .npy arrays are not supported (save a C-contiguous array)");
  nncc_dtype dt = npy_parse_descr(descr);
  if (dt == NNCC_DTYPE_UNKNOWN)
    return rt_fail(err, NNCC_ERR_FORMAT,
                   "unsupported .npy dtype '%s' (supported: little-endian f4 f8 f2 i8 i4 "
                   "i2 i1 u1 b1)",
                   descr);
  nncc_tensor *t = nncc_tensor_alloc(dt, rank, dims);
  if (!t) return rt_fail(err, NNCC_ERR_FORMAT, "the .npy array is too large");
  size_t want = (size_t)nncc_tensor_elems(t) * nncc_dtype_size(dt);
  size_t have = size - start - hlen;
  if (have != want) {
    nncc_tensor_free(t);
    return rt_fail(err, NNCC_ERR_FORMAT, "the .npy data is %zu bytes, the shape needs %zu (%s)",
                   have, want, have < want ? "truncated" : "trailing bytes");
  }
  if (want) memcpy(t->data, b + start + hlen, want);
  if (dt == NNCC_DTYPE_BOOL) {
    unsigned char *p = t->data;
    for (size_t i = 0; i < want; i++) p[i] = p[i] != 0;
  }
  *tensor = t;
  return NNCC_OK;
}

nncc_status nncc_npy_read(const char *path, nncc_tensor **tensor, char **err) {
  if (err) *err = NULL;
  if (!tensor) return rt_fail(err, NNCC_ERR_INVALID_ARG, "tensor is NULL");
  *tensor = NULL;
  if (!path) return rt_fail(err, NNCC_ERR_INVALID_ARG, "path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return rt_fail(err, NNCC_ERR_IO, "can't open '%s': %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      size_t nc = cap ? cap * 2 : 1 << 16;
      char *nb = realloc(buf, nc);
      if (!nb) {
        free(buf);
        fclose(f);
        return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "'%s': out of memory", path);
      }
      buf = nb;
      cap = nc;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  bool failed = ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    return rt_fail(err, NNCC_ERR_IO, "can't read '%s'", path);
  }
  nncc_status st = nncc_npy_parse(buf, len, tensor, err);
  free(buf);
  if (st != NNCC_OK && err && *err) {
    char *msg = NULL;
    if (asprintf(&msg, "%s: %s", path, *err) >= 0) {
      free(*err);
      *err = msg;
    }
  }
  return st;
}

/* ---- writing ------------------------------------------------------------------ */

nncc_status nncc_npy_write(const char *path, const nncc_tensor *t, char **err) {
  if (err) *err = NULL;
  if (!path || !t) return rt_fail(err, NNCC_ERR_INVALID_ARG, "path or tensor is NULL");
  const char *descr = npy_descr(t->dtype);
  if (!*descr)
    return rt_fail(err, NNCC_ERR_FORMAT, "dtype %s can't be stored in a .npy file",
                   nncc_dtype_name(t->dtype));
  if (t->rank < 0 || t->rank > NNCC_MAX_RANK || (t->rank && !t->dims))
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "bad tensor rank or dims");
  char h[64 + 24 * NNCC_MAX_RANK + 128];
  int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int32_t i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0) return rt_fail(err, NNCC_ERR_INVALID_ARG, "negative dim");
    n += snprintf(h + n, sizeof h - (size_t)n, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
  }
  n += snprintf(h + n, sizeof h - (size_t)n, "%s), }", t->rank == 1 ? "," : "");
  /* Pad with spaces and a final '\n' so 10 + header is a multiple of 64. */
  int total = (10 + n + 1 + 63) / 64 * 64;
  while (10 + n + 1 < total) h[n++] = ' ';
  h[n++] = '\n';
  unsigned char pre[10] =
      {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
  size_t bytes = (size_t)nncc_tensor_elems(t) * nncc_dtype_size(t->dtype);
  if (bytes && !t->data) return rt_fail(err, NNCC_ERR_INVALID_ARG, "tensor data is NULL");
  FILE *f = fopen(path, "wb");
  if (!f) return rt_fail(err, NNCC_ERR_IO, "can't create '%s': %s", path, strerror(errno));
  bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(h, 1, (size_t)n, f) == (size_t)n &&
            (!bytes || fwrite(t->data, 1, bytes, f) == bytes);
  if (fclose(f) != 0) ok = false;
  if (!ok) return rt_fail(err, NNCC_ERR_IO, "can't write '%s'", path);
  return NNCC_OK;
}
