/* symbolic.c — the runtime API on a model with symbolic dims
 * (tests/runtime.sh).
 *
 *   nncc_test_symbolic SYMBOLIC.so STATIC3.so STATIC7.so
 *
 * SYMBOLIC.so is a model with one input f32[b,F] compiled with
 * `--input 'input:f32[b=1..16,F]'`; STATIC3.so and STATIC7.so are the same
 * model compiled at b = 3 and b = 7. Checks, through nncc.h only:
 *   - the description: one symbol "b" ranging over 1..16, input dim 0 reads
 *     -1 with text "b", output dim 0 is "b";
 *   - nncc_model_output_dims and nncc_model_workspace_size for b = 3, 7, 16
 *     (the workspace grows with b and is never 0);
 *   - one session running b = 3, 7, 3 again: each result equals the static
 *     build's at the same b within 1e-5 (relative to max(1, |ref|));
 *   - caller-provided workspace: exactly the size asked for works, and a
 *     larger shape then fails with NNCC_ERR_OUT_OF_MEMORY, not a crash;
 *   - the errors: b = 17 (out of range), rank 1, a wrong constant dim, an
 *     output of the wrong shape — NNCC_ERR_SHAPE with the exact messages.
 * Exit 0 when everything holds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/include/nncc.h"

static int fails;

#define EXPECT(cond, ...)                                 \
  do {                                                    \
    if (!(cond)) {                                        \
      fails++;                                            \
      fprintf(stderr, "symbolic.c:%d: FAIL: ", __LINE__); \
      fprintf(stderr, __VA_ARGS__);                       \
      fprintf(stderr, "\n");                              \
    }                                                     \
  } while (0)

static nncc_model *open_model(const char *path) {
  nncc_model *m = NULL;
  char *err = NULL;
  if (nncc_model_open(path, &m, &err) != NNCC_OK) {
    fprintf(stderr, "symbolic.c: can't open %s: %s\n", path, err ? err : "?");
    exit(1);
  }
  return m;
}

/* An input f32[b, f] with deterministic values. */
static nncc_tensor *make_input(int64_t b, int64_t f) {
  int64_t dims[2] = {b, f};
  nncc_tensor *t = nncc_tensor_alloc(NNCC_DTYPE_F32, 2, dims);
  for (int64_t i = 0; i < b * f; i++) {
    uint32_t h = (uint32_t)i * 2654435761u;
    h ^= h >> 13;
    ((float *)t->data)[i] = (float)(h % 2001) / 1000.0f - 1.0f;
  }
  return t;
}

/* Runs model m (a new one-thread session) on x; the output is allocated
 * with the dims nncc_model_output_dims gives. */
static nncc_tensor *run_once(nncc_model *m, nncc_session *s, const nncc_tensor *x) {
  int64_t dims[NNCC_MAX_RANK];
  char *err = NULL;
  nncc_io_info info;
  nncc_model_output(m, 0, &info);
  if (nncc_model_output_dims(m, x, 1, 0, dims, &err) != NNCC_OK) {
    EXPECT(0, "output_dims: %s", err ? err : "?");
    nncc_free_message(err);
    return NULL;
  }
  nncc_tensor *y = nncc_tensor_alloc(info.dtype, info.rank, dims);
  if (nncc_session_run(s, x, 1, y, 1, &err) != NNCC_OK) {
    EXPECT(0, "run: %s", err ? err : "?");
    nncc_free_message(err);
    nncc_tensor_free(y);
    return NULL;
  }
  return y;
}

static void compare(const nncc_tensor *got, const nncc_tensor *want, const char *what) {
  if (!got || !want) return;
  EXPECT(nncc_tensor_elems(got) == nncc_tensor_elems(want), "%s: sizes differ", what);
  int64_t n = nncc_tensor_elems(want);
  double worst = 0, top = 1;
  for (int64_t i = 0; i < n; i++) {
    double a = ((const float *)got->data)[i], b = ((const float *)want->data)[i];
    if (fabs(b) > top) top = fabs(b);
    if (fabs(a - b) > worst || a != a) worst = a != a ? 1e30 : fabs(a - b);
  }
  EXPECT(worst <= 1e-5 * top, "%s: max |diff| %g", what, worst);
}

/* The message of a run expected to fail with status want. */
static void expect_error(nncc_session *s, const nncc_tensor *x, const nncc_tensor *y,
                         nncc_status want, const char *msg) {
  char *err = NULL;
  nncc_status st = nncc_session_run(s, x, 1, y, 1, &err);
  EXPECT(st == want && err && !strcmp(err, msg), "want %d '%s', got %d '%s'", (int)want, msg,
         (int)st, err ? err : "(none)");
  nncc_free_message(err);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: nncc_test_symbolic SYMBOLIC.so STATIC3.so STATIC7.so\n");
    return 2;
  }
  nncc_model *m = open_model(argv[1]), *m3 = open_model(argv[2]), *m7 = open_model(argv[3]);
  char *err = NULL;

  /* the description */
  EXPECT(nncc_model_num_symbols(m) == 1, "symbols: %d", (int)nncc_model_num_symbols(m));
  EXPECT(nncc_model_num_symbols(m3) == 0, "a static model has no symbols");
  nncc_symbol_info sy;
  EXPECT(nncc_model_symbol(m, 0, &sy) == NNCC_OK && !strcmp(sy.name, "b") && sy.min == 1 &&
             sy.max == 16,
         "symbol 0: %s %lld..%lld", sy.name, (long long)sy.min, (long long)sy.max);
  EXPECT(nncc_model_symbol(m, 1, &sy) == NNCC_ERR_INVALID_ARG, "symbol 1 exists");
  nncc_io_info in;
  nncc_model_input(m, 0, &in);
  EXPECT(in.rank == 2 && in.dims[0] == -1 && in.dims[1] > 0, "input dims");
  int64_t features = in.dims[1];
  nncc_dim_info di;
  EXPECT(nncc_model_dim(m, 0, 0, 0, &di) == NNCC_OK && di.value == -1 && di.text &&
             !strcmp(di.text, "b") && di.min == 1 && di.max == 16,
         "input dim 0");
  EXPECT(nncc_model_dim(m, 0, 0, 1, &di) == NNCC_OK && di.value == features && !di.text,
         "input dim 1");
  EXPECT(nncc_model_dim(m, 1, 0, 0, &di) == NNCC_OK && di.text && !strcmp(di.text, "b"),
         "output dim 0");
  EXPECT(nncc_model_dim(m, 0, 0, 2, &di) == NNCC_ERR_INVALID_ARG, "dim 2 exists");

  /* shapes and workspace sizes */
  nncc_tensor *x3 = make_input(3, features), *x7 = make_input(7, features);
  nncc_tensor *x16 = make_input(16, features), *x17 = make_input(17, features);
  uint64_t w3 = 0, w7 = 0, w16 = 0;
  EXPECT(nncc_model_workspace_size(m, x3, 1, &w3, &err) == NNCC_OK && w3 > 0, "ws 3");
  EXPECT(nncc_model_workspace_size(m, x7, 1, &w7, &err) == NNCC_OK && w7 >= w3, "ws 7");
  EXPECT(nncc_model_workspace_size(m, x16, 1, &w16, &err) == NNCC_OK && w16 >= w7, "ws 16");
  int64_t od[NNCC_MAX_RANK];
  EXPECT(nncc_model_output_dims(m, x7, 1, 0, od, &err) == NNCC_OK && od[0] == 7,
         "output dims at b=7");

  /* one session, shapes changing: results equal the static builds' */
  nncc_session *s, *s3, *s7;
  nncc_session_create(m, 1, &s, &err);
  nncc_session_create(m3, 1, &s3, &err);
  nncc_session_create(m7, 1, &s7, &err);
  nncc_tensor *r3 = run_once(m3, s3, x3), *r7 = run_once(m7, s7, x7);
  nncc_tensor *a = run_once(m, s, x3), *b = run_once(m, s, x7), *c = run_once(m, s, x3);
  compare(a, r3, "b=3");
  compare(b, r7, "b=7");
  compare(c, r3, "b=3 again");

  /* caller memory: enough for b = 3, then too small for b = 16 */
  void *mem = aligned_alloc(64, (size_t)((w3 + 63) / 64 * 64));
  EXPECT(nncc_session_set_workspace(s, (char *)mem + 1, w3, &err) == NNCC_ERR_INVALID_ARG,
         "misaligned workspace accepted");
  nncc_free_message(err);
  EXPECT(nncc_session_set_workspace(s, mem, w3, &err) == NNCC_OK, "set_workspace");
  nncc_tensor *d = run_once(m, s, x3);
  compare(d, r3, "b=3 in caller memory");
  if (w16 > w3) {
    int64_t dims16[2] = {16, 0};
    nncc_model_output_dims(m, x16, 1, 0, dims16, &err);
    nncc_io_info out;
    nncc_model_output(m, 0, &out);
    nncc_tensor *y16 = nncc_tensor_alloc(out.dtype, out.rank, dims16);
    char *e = NULL;
    EXPECT(nncc_session_run(s, x16, 1, y16, 1, &e) == NNCC_ERR_OUT_OF_MEMORY,
           "a run larger than the caller's workspace: %s", e ? e : "ok?");
    nncc_free_message(e);
    nncc_tensor_free(y16);
  }
  EXPECT(nncc_session_set_workspace(s, NULL, 0, &err) == NNCC_OK, "back to own memory");
  nncc_tensor *e16 = run_once(m, s, x16);
  EXPECT(e16 != NULL, "b=16 in session memory");

  /* errors */
  expect_error(s, x17, a, NNCC_ERR_SHAPE,
               "input 0 ('input'): dim 0 is 17, outside the range of b (1..16)");
  int64_t flat_dims[1] = {features};
  nncc_tensor flat = {x3->data, NNCC_DTYPE_F32, 1, flat_dims, 0};
  char want[256];
  snprintf(want, sizeof want, "input 0 ('input'): rank 1, the model expects rank 2 [b,%lld]",
           (long long)features);
  expect_error(s, &flat, a, NNCC_ERR_SHAPE, want);
  int64_t wrong_dims[2] = {3, features + 1};
  nncc_tensor wrong = {x7->data, NNCC_DTYPE_F32, 2, wrong_dims, 0};
  snprintf(want, sizeof want, "input 0 ('input'): dim 1 is %lld, the model expects %lld",
           (long long)features + 1, (long long)features);
  expect_error(s, &wrong, a, NNCC_ERR_SHAPE, want);
  if (a && b) { /* b=7's input with b=3's output */
    nncc_io_info out;
    nncc_model_output(m, 0, &out);
    snprintf(want, sizeof want, "output 0 ('%s'): dim 0 is 3, the model expects 7 (shape [7,%lld])",
             out.name, (long long)a->dims[1]);
    expect_error(s, x7, a, NNCC_ERR_SHAPE, want);
  }

  nncc_tensor *all[] = {x3, x7, x16, x17, r3, r7, a, b, c, d, e16};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) nncc_tensor_free(all[i]);
  nncc_session_destroy(s);
  nncc_session_destroy(s3);
  nncc_session_destroy(s7);
  free(mem);
  nncc_model_close(m);
  nncc_model_close(m3);
  nncc_model_close(m7);
  if (fails) fprintf(stderr, "symbolic.c: %d failed\n", fails);
  return fails ? 1 : 0;
}
