/* common.h — the few things every layer of nncc shares.
 *
 * - nn_arena: a bump allocator. A compilation owns one arena; everything
 *   the frontend, the IR and the passes allocate lives there and is freed at
 *   once with nn_arena_free(). Nothing allocated from an arena is freed alone.
 * - nn_dtype: element types, numbered as in the public API (never reorder).
 * - nn_diag: the user-facing diagnostics sink. Errors about the user's input
 *   (a malformed archive, an unsupported op) are reported here with a
 *   location and counted; the caller decides what to do when the count is
 *   non-zero. Library code never exits.
 * - NN_ASSERT: broken invariants inside nncc (not the user's fault).
 */
#ifndef NNCC_COMMON_H
#define NNCC_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- arena ------------------------------------------------------------ */

typedef struct nn_arena nn_arena;

nn_arena *nn_arena_new(void);
void nn_arena_free(nn_arena *a);
/* Zeroed, 16-byte aligned memory that lives until nn_arena_free(). Aborts
 * through NN_ASSERT only if the system is out of memory. */
void *nn_alloc(nn_arena *a, size_t size);
/* Grow an arena array: returns a new array of new_n elements holding the
 * first old_n elements of p (p may be NULL when old_n is 0). */
void *nn_realloc(nn_arena *a, void *p, size_t old_size, size_t new_size);
char *nn_strdup(nn_arena *a, const char *s);
char *nn_strndup(nn_arena *a, const char *s, size_t n);
char *nn_sprintf(nn_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t nn_arena_bytes(const nn_arena *a); /* bytes handed out so far */

/* A growable array in an arena: `NN_VEC(int) v = {0}; NN_PUSH(arena, v, 3);` */
#define NN_VEC(T) \
  struct {        \
    T *data;      \
    int len, cap; \
  }
#define NN_PUSH(arena, v, x)                                                        \
  do {                                                                              \
    if ((v).len == (v).cap) {                                                       \
      int nc_ = (v).cap ? (v).cap * 2 : 8;                                          \
      (v).data = nn_realloc((arena), (v).data, sizeof(*(v).data) * (size_t)(v).cap, \
                            sizeof(*(v).data) * (size_t)nc_);                       \
      (v).cap = nc_;                                                                \
    }                                                                               \
    (v).data[(v).len++] = (x);                                                      \
  } while (0)

/* A growable string (malloc-backed, for printers). */
typedef struct nn_buf {
  char *data; /* NUL-terminated */
  size_t len; /* bytes, excluding the NUL */
  size_t cap; /* allocated bytes */
} nn_buf;
void nn_buf_printf(nn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nn_buf_vprintf(nn_buf *b, const char *fmt, va_list ap);
void nn_buf_putn(nn_buf *b, const char *s, size_t n);
void nn_buf_free(nn_buf *b);

/* ---- dtypes ----------------------------------------------------------- */

/* Numbered as in runtime/include/nncc.h; never reorder. */
typedef enum nn_dtype {
  NN_DT_UNKNOWN = 0,
  NN_DT_F32 = 1,
  NN_DT_F16 = 2,
  NN_DT_BF16 = 3,
  NN_DT_F64 = 4,
  NN_DT_I64 = 5,
  NN_DT_I32 = 6,
  NN_DT_I16 = 7,
  NN_DT_I8 = 8,
  NN_DT_U8 = 9,
  NN_DT_BOOL = 10,
  NN_DT_COUNT
} nn_dtype;

const char *nn_dtype_name(nn_dtype t);  /* "f32", "i64", ...; "?" if unknown */
nn_dtype nn_dtype_parse(const char *s); /* inverse; NN_DT_UNKNOWN if none */
size_t nn_dtype_size(nn_dtype t);       /* bytes per element; 0 if unknown */
/* PyTorch's ScalarType numbering (FORMATS.md §7) to ours; UNKNOWN for
 * complex, quantized and anything else we cannot represent. */
nn_dtype nn_dtype_from_scalar_type(int64_t st);
int64_t nn_dtype_to_scalar_type(nn_dtype t); /* -1 if none */
/* "Float", "Long", ... as in torch.<Name>Storage; UNKNOWN if not known. */
nn_dtype nn_dtype_from_storage_name(const char *name);
int nn_dtype_is_float(nn_dtype t);

/* 16-bit floats: f32 → f16/bf16 round to nearest even (overflow to ±inf,
 * NaN stays a quiet NaN); f16/bf16 → f32 is exact. The one definition the
 * frontend, the passes and the kernel interpreter share (the LLVM backend
 * generates the same arithmetic). */
uint16_t nn_f32_to_f16(float f);
float nn_f16_to_f32(uint16_t h);
uint16_t nn_f32_to_bf16(float f);
float nn_bf16_to_f32(uint16_t h);

/* ---- diagnostics ------------------------------------------------------ */

/* A place in the user's input. file is the archive entry (e.g.
 * "model_jit/code/__torch__/Net.py") or a path; line/col are 1-based, or 0
 * when unknown (then only the file is printed). */
typedef struct nn_loc {
  const char *file; /* entry name or path; NULL if unknown */
  int line;         /* 1-based; 0 = none */
  int col;          /* 1-based; 0 = none */
} nn_loc;

/* Returns the text of line `line` of `file` (without newline) and its length,
 * or NULL; used to show the source line and a caret under errors. */
typedef const char *(*nn_source_fn)(void *ctx, const char *file, int line, size_t *len);

/* Writes into buf[0..n) a one-line account of where the code at file:line:col
 * came from in the user's own program, e.g. "traced from /home/u/net.py:42",
 * and returns 1; returns 0 (buf unspecified) when that is not known. Called
 * only while a diagnostic is printed, so it may do slow work lazily. */
typedef int (*nn_origin_fn)(void *ctx, const char *file, int line, int col, char *buf, size_t n);

typedef struct nn_diag {
  FILE *out;           /* where messages go (stderr by default) */
  int errors;          /* errors reported so far */
  int warnings;        /* warnings reported so far */
  int werror;          /* treat warnings as errors */
  int wall;            /* also show remarks (nn_remark) */
  nn_source_fn source; /* optional: source line lookup for carets */
  void *source_ctx;    /* passed to source */
  nn_origin_fn origin; /* optional: user-level origin, printed as a note
                          after the caret of errors and warnings */
  void *origin_ctx;    /* passed to origin */
} nn_diag;

void nn_diag_init(nn_diag *d, FILE *out);
/* "nncc: error: FILE:LINE:COL: message\n" then, when the source line is
 * known, the line and a caret under COL. */
void nn_error(nn_diag *d, nn_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void nn_warning(nn_diag *d, nn_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A "remark:" about something nncc changed that is expected and harmless
 * (e.g. an in-place op computed out of place). Printed like a warning, with
 * its source line, only when d->wall is set (-Wall); never counts as a
 * warning and never fails the run, -Werror or not. */
void nn_remark(nn_diag *d, nn_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A "note:" line attached to the previous error or warning. */
void nn_note(nn_diag *d, nn_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void nn_vreport(nn_diag *d, const char *kind, nn_loc loc, const char *fmt, va_list ap);

/* ---- invariants ------------------------------------------------------- */

/* Broken invariant inside nncc: prints "nncc: internal error: FILE:LINE:
 * message" and calls nn_fatal_hook (default: abort()). The CLI sets the hook
 * to exit with code 3. */
extern void (*nn_fatal_hook)(void);
/* (noreturn as an attribute: cppcheck 2.10 drops a _Noreturn that an
 * __attribute__ follows) */
void nn_internal_error(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define NN_ASSERT(c)                                                             \
  do {                                                                           \
    if (!(c)) nn_internal_error(__FILE__, __LINE__, "assertion failed: %s", #c); \
  } while (0)
#define NN_UNREACHABLE() nn_internal_error(__FILE__, __LINE__, "unreachable")

#define NN_ARRAY_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
