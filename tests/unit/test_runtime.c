/* test_runtime.c — the runtime library, the model runtime and artifact_link.
 *
 * - .npy: round trips for every dtype with the exact bytes np.save writes,
 *   and malformed files → NNCC_ERR_FORMAT with a clear message;
 * - a model.so linked by artifact_link from a hand-written object (a tiny C
 *   file compiled with $CC at test time standing in for the LLVM backend):
 *   its description, a run with exact results, and every kind of misuse
 *   (NULL arguments, wrong counts, dtypes, ranks, dims, flags);
 * - loader refusals: not a shared object, no entry point, another ABI
 *   version, a malformed description, a CPU feature the host lacks (both
 *   through a hand-built descriptor and through a real .so);
 * - artifact_link failures leave no output file behind.
 * Needs a C compiler ($CC or cc); skips when there is none.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "lower/lower.h"
#include "runtime/rt.h"
#include "unit.h"

static char tmpdir[1024];

static char *tmp_path(const char *name) {
  static char bufs[8][1200];
  static int k;
  char *b = bufs[k++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
  return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

static const char *cc(void) {
  const char *c = getenv("CC");
  return c && *c ? c : "cc";
}

/* Compiles C source text to an object; returns its bytes (malloc'd). */
static void *compile_obj(const char *src, const char *name, size_t *size) {
  char c_path[1200], o_path[1200], cmd[4096];
  snprintf(c_path, sizeof c_path, "%s/%s.c", tmpdir, name);
  snprintf(o_path, sizeof o_path, "%s/%s.o", tmpdir, name);
  write_bytes(c_path, src, strlen(src));
  snprintf(cmd, sizeof cmd, "%s -O1 -fPIC -c -o '%s' '%s'", cc(), o_path, c_path);
  if (system(cmd) != 0) return NULL;
  return unit_read_file(o_path, size);
}

/* ---- .npy ---------------------------------------------------------------- */

static size_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static void test_npy_roundtrip(void) {
  static const struct {
    nncc_dtype dt;
    const char *descr;
  } cases[] = {{NNCC_DTYPE_F32, "<f4"}, {NNCC_DTYPE_F64, "<f8"}, {NNCC_DTYPE_F16, "<f2"},
               {NNCC_DTYPE_I64, "<i8"}, {NNCC_DTYPE_I32, "<i4"}, {NNCC_DTYPE_I16, "<i2"},
               {NNCC_DTYPE_I8, "|i1"},  {NNCC_DTYPE_U8, "|u1"},  {NNCC_DTYPE_BOOL, "|b1"}};
  const int64_t dims[] = {2, 3};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    nncc_tensor *t = nncc_tensor_alloc(cases[c].dt, 2, dims);
    CHECK(t != NULL);
    if (!t) continue;
    size_t es = nncc_dtype_size(cases[c].dt), bytes = 6 * es;
    CHECK_INT((uintptr_t)t->data % 64, 0);
    unsigned char *p = t->data;
    for (size_t i = 0; i < bytes; i++)
      p[i] = cases[c].dt == NNCC_DTYPE_BOOL ? (unsigned char)(i % 2) : (unsigned char)(i * 37 + 11);
    char *path = tmp_path("rt.npy"), *err = NULL;
    CHECK_INT(nncc_npy_write(path, t, &err), NNCC_OK);
    CHECK(err == NULL);
    /* The header np.save writes: 118 bytes of dict + '\n' after 10 bytes. */
    size_t len = 0;
    char *file = unit_read_file(path, &len);
    CHECK_INT(len, 128 + bytes);
    char want[200];
    snprintf(want, sizeof want, "{'descr': '%s', 'fortran_order': False, 'shape': (2, 3), }",
             cases[c].descr);
    if (file && len >= 128) {
      CHECK(memcmp(file, "\x93NUMPY\x01\x00v\x00", 10) == 0);
      CHECK(memcmp(file + 10, want, strlen(want)) == 0);
      CHECK_INT(file[127], '\n');
      CHECK_INT(file[126], ' ');
      CHECK(memcmp(file + 128, t->data, bytes) == 0);
    }
    free(file);
    nncc_tensor *u = NULL;
    CHECK_INT(nncc_npy_read(path, &u, &err), NNCC_OK);
    if (u) {
      CHECK_INT(u->dtype, cases[c].dt);
      CHECK_INT(u->rank, 2);
      CHECK_INT(u->dims[0], 2);
      CHECK_INT(u->dims[1], 3);
      CHECK_INT(u->flags, 0);
      CHECK(memcmp(u->data, t->data, bytes) == 0);
    }
    nncc_tensor_free(u);
    nncc_tensor_free(t);
  }
  /* 1-d, 0-d and empty shapes use np.save's spelling. */
  const int64_t d5[] = {5}, d102[] = {1, 0, 2};
  nncc_tensor *t1 = nncc_tensor_alloc(NNCC_DTYPE_I64, 1, d5);
  nncc_tensor *t0 = nncc_tensor_alloc(NNCC_DTYPE_BOOL, 0, NULL);
  nncc_tensor *te = nncc_tensor_alloc(NNCC_DTYPE_U8, 3, d102);
  CHECK(t1 && t0 && te);
  if (t1 && t0 && te) {
    CHECK_INT(nncc_npy_write(tmp_path("a.npy"), t1, NULL), NNCC_OK);
    CHECK_INT(nncc_npy_write(tmp_path("b.npy"), t0, NULL), NNCC_OK);
    CHECK_INT(nncc_npy_write(tmp_path("c.npy"), te, NULL), NNCC_OK);
    CHECK_INT(file_size(tmp_path("a.npy")), 168);
    CHECK_INT(file_size(tmp_path("b.npy")), 129);
    CHECK_INT(file_size(tmp_path("c.npy")), 128);
    char *f = unit_read_file(tmp_path("a.npy"), NULL);
    CHECK(f && !memcmp(f + 10, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", 57));
    free(f);
    f = unit_read_file(tmp_path("b.npy"), NULL);
    CHECK(f && !memcmp(f + 10, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", 55));
    free(f);
    nncc_tensor *u = NULL;
    CHECK_INT(nncc_npy_read(tmp_path("c.npy"), &u, NULL), NNCC_OK);
    CHECK(u && u->rank == 3 && u->dims[1] == 0 && nncc_tensor_elems(u) == 0);
    nncc_tensor_free(u);
    CHECK_INT(nncc_npy_read(tmp_path("b.npy"), &u, NULL), NNCC_OK);
    CHECK(u && u->rank == 0 && nncc_tensor_elems(u) == 1);
    nncc_tensor_free(u);
  }
  nncc_tensor_free(t1);
  nncc_tensor_free(t0);
  nncc_tensor_free(te);
  /* bf16 has no .npy dtype. */
  nncc_tensor *tb = nncc_tensor_alloc(NNCC_DTYPE_BF16, 0, NULL);
  char *err = NULL;
  CHECK_INT(nncc_npy_write(tmp_path("d.npy"), tb, &err), NNCC_ERR_FORMAT);
  CHECK_STR(err, "dtype bf16 can't be stored in a .npy file");
  nncc_free_message(err);
  nncc_tensor_free(tb);
}

/* Parses a .npy made of header text hdr (version 1.0) plus n data bytes;
 * returns the status and stores the message in msg. */
static nncc_status npy_try(const char *hdr, size_t n, char *msg, size_t cap) {
  unsigned char buf[1024] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  size_t h = strlen(hdr);
  buf[8] = (unsigned char)h;
  buf[9] = (unsigned char)(h >> 8);
  memcpy(buf + 10, hdr, h);
  nncc_tensor *t = NULL;
  char *err = NULL;
  nncc_status st = nncc_npy_parse(buf, 10 + h + n, &t, &err);
  snprintf(msg, cap, "%s", err ? err : "");
  nncc_free_message(err);
  nncc_tensor_free(t);
  return st;
}

static void test_npy_malformed(void) {
  char m[512];
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, m, sizeof m),
            NNCC_OK);
  /* Any key order and spacing, and Python 2's long ints. */
  CHECK_INT(npy_try("{\"shape\":(2L,),\"fortran_order\":False,\"descr\":\"<f4\"}\n", 8, m,
                    sizeof m),
            NNCC_OK);
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_STR(m, "Fortran-order .npy arrays are not supported (save a C-contiguous array)");
  CHECK_INT(npy_try("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_STR(m, "unsupported .npy dtype '>f4' (supported: little-endian f4 f8 f2 i8 i4 i2 i1 "
               "u1 b1)");
  CHECK_INT(npy_try("{'descr': '>u1', 'fortran_order': False, 'shape': (2,), }", 2, m, sizeof m),
            NNCC_OK);
  CHECK_INT(npy_try("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_INT(npy_try("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, m,
                    sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_STR(m, "unsupported .npy dtype (structured or malformed 'descr')");
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 7, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_STR(m, "the .npy data is 7 bytes, the shape needs 8 (truncated)");
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 9, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_STR(m, "the .npy data is 9 bytes, the shape needs 8 (trailing bytes)");
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': False}", 4, m, sizeof m), NNCC_ERR_FORMAT);
  CHECK_STR(m, "malformed .npy header (needs 'descr', 'fortran_order' and 'shape')");
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 8, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': False, 'shape': "
                    "(1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }",
                    4, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': False, 'shape': "
                    "(99999999999, 99999999999, 99999999999), }",
                    4, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_STR(m, "the .npy array is too large");
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", 4, m, sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_INT(npy_try("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4, m,
                    sizeof m),
            NNCC_ERR_FORMAT);
  CHECK_STR(m, "malformed .npy header (unknown key 'x')");
  CHECK_INT(npy_try("{'descr': '<f4' 'shape': (1,)}", 4, m, sizeof m), NNCC_ERR_FORMAT);
  CHECK_INT(npy_try("", 0, m, sizeof m), NNCC_ERR_FORMAT);
  CHECK_INT(npy_try("{'descr': '<f4", 0, m, sizeof m), NNCC_ERR_FORMAT);

  nncc_tensor *t = NULL;
  char *err = NULL;
  CHECK_INT(nncc_npy_parse("PK\3\4 not numpy", 15, &t, &err), NNCC_ERR_FORMAT);
  CHECK_STR(err, "not a .npy file (no \\x93NUMPY magic)");
  nncc_free_message(err);
  CHECK_INT(nncc_npy_parse("\x93NUMPY\x04\x00\x10\x00", 10, &t, &err), NNCC_ERR_FORMAT);
  CHECK_STR(err, "unsupported .npy format version 4.0");
  nncc_free_message(err);
  CHECK_INT(nncc_npy_parse("\x93NUMPY\x01\x00\xff\x00{", 11, &t, &err), NNCC_ERR_FORMAT);
  CHECK_STR(err, "truncated .npy header (255 bytes announced, 1 present)");
  nncc_free_message(err);
  CHECK(t == NULL);
  CHECK_INT(nncc_npy_parse(NULL, 0, NULL, NULL), NNCC_ERR_INVALID_ARG);
  CHECK_INT(nncc_npy_read(tmp_path("missing.npy"), &t, &err), NNCC_ERR_IO);
  CHECK(err && strstr(err, "missing.npy': No such file or directory"));
  nncc_free_message(err);
  /* Every truncation of a valid file fails cleanly (ASan watches the reads). */
  size_t len = 0;
  nncc_tensor *v = nncc_tensor_alloc(NNCC_DTYPE_F32, 1, (const int64_t[]){3});
  nncc_npy_write(tmp_path("v.npy"), v, NULL);
  nncc_tensor_free(v);
  char *file = unit_read_file(tmp_path("v.npy"), &len);
  int ok = 0;
  for (size_t n = 0; file && n < len; n++) {
    char *copy = malloc(n ? n : 1);
    memcpy(copy, file, n);
    if (nncc_npy_parse(copy, n, &t, NULL) == NNCC_ERR_FORMAT && !t) ok++;
    free(copy);
  }
  CHECK_INT(ok, (int)len);
  free(file);
}

/* ---- models ---------------------------------------------------------------- */

/* y[i,j] = 2 * x[i,j] + w[j] for x f32[2,3], w f32[3] (the weights blob);
 * the second output counts runs in the workspace (per session). */
static const char *model_src =
    "#include <stdint.h>\n"
    "void nncc_rt_parallel_for(void *, void (*)(void *const *, int64_t, int64_t),\n"
    "                          void *const *, int64_t);\n"
    "static void k(void *const *s, int64_t b, int64_t e) {\n"
    "  const float *x = s[0], *w = s[1]; float *y = s[2];\n"
    "  for (int64_t i = b; i < e; i++)\n"
    "    for (int j = 0; j < 3; j++) y[i * 3 + j] = 2 * x[i * 3 + j] + w[j];\n"
    "}\n"
    "int nncc_graph_run(void *const *in, void *const *out, unsigned char *ws,\n"
    "                   const unsigned char *weights, void *pool, const int64_t *dims,\n"
    "                   const int64_t *offs, int64_t *status) {\n"
    "  (void)dims; (void)offs; (void)status;\n"
    "  void *s[] = {in[0], (void *)weights, out[0]};\n"
    "  nncc_rt_parallel_for(pool, k, s, 2);\n"
    "  int64_t *count = (int64_t *)ws; *count += 1;\n"
    "  *(int64_t *)out[1] = *count;\n"
    "  return ((uintptr_t)ws | (uintptr_t)weights) & 63 ? 9 : 0;\n"
    "}\n";

static const int64_t x_dims[] = {2, 3}, one_dims[] = {1};
/* 290 kernels of 16 iterations of about 1 us each: enough that the pool
 * splits every one of them once it has measured it (the estimate is far
 * above its inline threshold). Each call counts itself, so a kernel that
 * ran inline was called once and a split one 16 times (one call per
 * piece, whichever thread runs it). Output 1 is the number of kernels
 * that ran inline this run. More kernels than the pool's old cost table
 * had entries, so kernels that share an entry would show up as inline. */
static const char *many_kernels_src =
    "#include <stdint.h>\n"
    "#include <string.h>\n"
    "#include <time.h>\n"
    "void nncc_rt_parallel_for(void *, void (*)(void *const *, int64_t, int64_t),\n"
    "                          void *const *, int64_t);\n"
    "static int calls[300];\n"
    "static int64_t now(void) {\n"
    "  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);\n"
    "  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;\n"
    "}\n"
    "static void work(int id, int64_t b, int64_t e) {\n"
    "  __atomic_fetch_add(&calls[id], 1, __ATOMIC_RELAXED);\n"
    "  for (int64_t i = b; i < e; i++) { int64_t t0 = now(); while (now() - t0 < 1000) {} }\n"
    "}\n"
    "#define K(i) static void k##i(void *const *s, int64_t b, int64_t e) \\\n"
    "  { (void)s; work(i, b, e); }\n"
    "#define K10(t) K(t##0) K(t##1) K(t##2) K(t##3) K(t##4) K(t##5) K(t##6) \\\n"
    "  K(t##7) K(t##8) K(t##9)\n"
    "#define T10(t) k##t##0, k##t##1, k##t##2, k##t##3, k##t##4, k##t##5, k##t##6, k##t##7, \\\n"
    "  k##t##8, k##t##9,\n"
    "K10(1) K10(2) K10(3) K10(4) K10(5) K10(6) K10(7) K10(8) K10(9) K10(10) K10(11) K10(12)\n"
    "K10(13) K10(14) K10(15) K10(16) K10(17) K10(18) K10(19) K10(20) K10(21) K10(22) K10(23)\n"
    "K10(24) K10(25) K10(26) K10(27) K10(28) K10(29)\n"
    "static void (*const ks[])(void *const *, int64_t, int64_t) = {\n"
    "  T10(1) T10(2) T10(3) T10(4) T10(5) T10(6) T10(7) T10(8) T10(9) T10(10) T10(11) T10(12)\n"
    "  T10(13) T10(14) T10(15) T10(16) T10(17) T10(18) T10(19) T10(20) T10(21) T10(22) T10(23)\n"
    "  T10(24) T10(25) T10(26) T10(27) T10(28) T10(29)};\n"
    "int nncc_graph_run(void *const *in, void *const *out, unsigned char *ws,\n"
    "                   const unsigned char *weights, void *pool, const int64_t *dims,\n"
    "                   const int64_t *offs, int64_t *status) {\n"
    "  (void)ws; (void)weights; (void)dims; (void)offs; (void)status;\n"
    "  memcpy(out[0], in[0], 6 * sizeof(float));\n"
    "  memset(calls, 0, sizeof calls);\n"
    "  int n = (int)(sizeof ks / sizeof *ks);\n"
    "  for (int i = 0; i < n; i++) nncc_rt_parallel_for(pool, ks[i], 0, 16);\n"
    "  int64_t inl = 0;\n"
    "  for (int i = 10; i < 10 + n; i++) inl += calls[i] == 1;\n"
    "  *(int64_t *)out[1] = inl;\n"
    "  return 0;\n"
    "}\n";

/* Links a model from obj into out with the given features. */
static int link_test_model(const char *out, void *obj, size_t size, const char *features,
                           const char *ccmd) {
  nn_arena *a = nn_arena_new();
  kp_program *p = nn_alloc(a, sizeof *p);
  p->arena = a;
  NN_PUSH(a, p->inputs, ((kp_io){"x", NN_DT_F32, 2, x_dims, NULL}));
  NN_PUSH(a, p->outputs, ((kp_io){"output_0", NN_DT_F32, 2, x_dims, NULL}));
  NN_PUSH(a, p->outputs, ((kp_io){"runs", NN_DT_I64, 1, one_dims, NULL}));
  p->workspace_bytes = 8;
  const float w[3] = {0.5f, -1.0f, 100.0f};
  unsigned char wb[sizeof w];
  memcpy(wb, w, sizeof w);
  for (size_t i = 0; i < sizeof wb; i++) NN_PUSH(a, p->weights, wb[i]);
  llvm_result r = {obj, size, NULL, "testcpu", (char *)features};
  artifact_opts o = {out, ccmd, "test_model", NULL, NULL};
  nn_diag d;
  nn_diag_init(&d, stderr);
  int rc = artifact_link(p, &r, &o, &d);
  nn_arena_free(a);
  return rc;
}

static void test_model_run(const char *so) {
  nncc_model *m = NULL;
  char *err = NULL;
  CHECK_INT(nncc_model_open(so, &m, &err), NNCC_OK);
  CHECK(err == NULL);
  if (!m) {
    fprintf(stderr, "open: %s\n", err);
    nncc_free_message(err);
    return;
  }
  CHECK_INT(nncc_model_num_inputs(m), 1);
  CHECK_INT(nncc_model_num_outputs(m), 2);
  nncc_io_info info;
  CHECK_INT(nncc_model_input(m, 0, &info), NNCC_OK);
  CHECK_STR(info.name, "x");
  CHECK_INT(info.dtype, NNCC_DTYPE_F32);
  CHECK_INT(info.rank, 2);
  CHECK(info.dims[0] == 2 && info.dims[1] == 3);
  CHECK_INT(nncc_model_output(m, 1, &info), NNCC_OK);
  CHECK_STR(info.name, "runs");
  CHECK_INT(info.dtype, NNCC_DTYPE_I64);
  CHECK_INT(nncc_model_input(m, 1, &info), NNCC_ERR_INVALID_ARG);
  CHECK_INT(nncc_model_output(m, -1, &info), NNCC_ERR_INVALID_ARG);
  CHECK_INT(nncc_model_input(m, 0, NULL), NNCC_ERR_INVALID_ARG);
  CHECK_STR(nncc_model_name(m), "test_model");
  CHECK_STR(nncc_model_target(m), "cpu");
  CHECK_STR(nncc_model_precision(m), "f32");
  CHECK_INT(nncc_model_num_kernels(m), 0);
  CHECK_STR(nncc_model_cpu(m), "testcpu");
  CHECK_STR(nncc_model_features(m), "+64bit,+sse2,+cx8");
  CHECK(!strncmp(nncc_model_compiler(m), "nncc ", 5));
  CHECK_INT(nncc_model_workspace_bytes(m), 8);
  CHECK_INT(nncc_model_weights_bytes(m), 12);

  nncc_session *s = NULL;
  CHECK_INT(nncc_session_create(m, 2, &s, &err), NNCC_OK);
  CHECK_INT(nncc_session_threads(s), 2);
  float x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {0};
  int64_t runs = 0, bad_dims[] = {2, 4}, rank1[] = {6};
  nncc_tensor in = {x, NNCC_DTYPE_F32, 2, x_dims, 0};
  nncc_tensor outs[2] = {{y, NNCC_DTYPE_F32, 2, x_dims, 0},
                         {&runs, NNCC_DTYPE_I64, 1, one_dims, 0}};
  CHECK_INT(nncc_session_run(s, &in, 1, outs, 2, &err), NNCC_OK);
  CHECK(err == NULL);
  const float want[6] = {2.5f, 3.0f, 106.0f, 8.5f, 9.0f, 112.0f};
  CHECK(memcmp(y, want, sizeof y) == 0); // NOLINT(bugprone-suspicious-memory-comparison): exact
  CHECK_INT(runs, 1);
  CHECK_INT(nncc_session_run(s, &in, 1, outs, 2, NULL), NNCC_OK);
  CHECK_INT(runs, 2); /* the workspace belongs to the session */

  /* Misuse: every case is a status and a message naming the problem. */
  CHECK_INT(nncc_session_run(s, &in, 2, outs, 2, &err), NNCC_ERR_ARITY);
  CHECK_STR(err, "2 inputs given, the model has 1");
  nncc_free_message(err);
  CHECK_INT(nncc_session_run(s, &in, 1, outs, 1, &err), NNCC_ERR_ARITY);
  CHECK_STR(err, "1 output given, the model has 2");
  nncc_free_message(err);
  CHECK_INT(nncc_session_run(s, NULL, 1, outs, 2, &err), NNCC_ERR_INVALID_ARG);
  nncc_free_message(err);
  nncc_tensor bad = in;
  bad.dtype = NNCC_DTYPE_F64;
  CHECK_INT(nncc_session_run(s, &bad, 1, outs, 2, &err), NNCC_ERR_DTYPE);
  CHECK_STR(err, "input 0 ('x'): dtype f64, the model expects f32[2,3]");
  nncc_free_message(err);
  bad = in;
  bad.rank = 1;
  bad.dims = rank1;
  CHECK_INT(nncc_session_run(s, &bad, 1, outs, 2, &err), NNCC_ERR_SHAPE);
  CHECK_STR(err, "input 0 ('x'): rank 1, the model expects rank 2 [2,3]");
  nncc_free_message(err);
  bad = in;
  bad.dims = bad_dims;
  CHECK_INT(nncc_session_run(s, &bad, 1, outs, 2, &err), NNCC_ERR_SHAPE);
  CHECK_STR(err, "input 0 ('x'): dim 1 is 4, the model expects 3 (shape [2,3])");
  nncc_free_message(err);
  bad = in;
  bad.dims = NULL;
  CHECK_INT(nncc_session_run(s, &bad, 1, outs, 2, &err), NNCC_ERR_INVALID_ARG);
  CHECK_STR(err, "input 0 ('x'): dims is NULL");
  nncc_free_message(err);
  bad = in;
  bad.data = NULL;
  CHECK_INT(nncc_session_run(s, &bad, 1, outs, 2, &err), NNCC_ERR_INVALID_ARG);
  CHECK_STR(err, "input 0 ('x'): data is NULL");
  nncc_free_message(err);
  bad = in;
  bad.flags = 4;
  CHECK_INT(nncc_session_run(s, &bad, 1, outs, 2, &err), NNCC_ERR_INVALID_ARG);
  CHECK_STR(err, "input 0 ('x'): flags 0x4 has unknown bits 0x4 (known: NNCC_TENSOR_DEVICE = 0x1)");
  nncc_free_message(err);
  bad.flags = NNCC_TENSOR_DEVICE; /* a CPU model takes host memory only */
  CHECK_INT(nncc_session_run(s, &bad, 1, outs, 2, &err), NNCC_ERR_INVALID_ARG);
  CHECK_STR(err, "input 0 ('x'): device memory (NNCC_TENSOR_DEVICE) needs a model compiled with "
                 "--target cuda; this model's target is 'cpu' (pass host memory)");
  nncc_free_message(err);
  nncc_tensor bad_out[2] = {outs[0], outs[1]};
  bad_out[1].dtype = NNCC_DTYPE_I32;
  CHECK_INT(nncc_session_run(s, &in, 1, bad_out, 2, &err), NNCC_ERR_DTYPE);
  CHECK_STR(err, "output 1 ('runs'): dtype i32, the model expects i64[1]");
  nncc_free_message(err);
  CHECK_INT(runs, 2); /* no failed call ran the model */
  CHECK_INT(nncc_session_run(NULL, &in, 1, outs, 2, &err), NNCC_ERR_INVALID_ARG);
  CHECK_STR(err, "session is NULL");
  nncc_free_message(err);

  /* Sessions are independent: a second one has its own workspace. */
  nncc_session *s2 = NULL;
  CHECK_INT(nncc_session_create(m, 1, &s2, NULL), NNCC_OK);
  CHECK_INT(nncc_session_run(s2, &in, 1, outs, 2, NULL), NNCC_OK);
  CHECK_INT(runs, 1);
  nncc_session_destroy(s2);
  nncc_session_destroy(s);

  CHECK_INT(nncc_session_create(NULL, 1, &s, &err), NNCC_ERR_INVALID_ARG);
  CHECK(s == NULL);
  nncc_free_message(err);
  CHECK_INT(nncc_session_create(m, 1, NULL, NULL), NNCC_ERR_INVALID_ARG);
  CHECK_INT(nncc_session_create(m, 5000, &s, &err), NNCC_ERR_INVALID_ARG);
  CHECK_STR(err, "5000 threads is too many (at most 1024)");
  nncc_free_message(err);
  CHECK_INT(nncc_session_create(m, 0, &s, NULL), NNCC_OK); /* one per CPU */
  CHECK(nncc_session_threads(s) >= 1);
  nncc_session_destroy(s);
  nncc_model_close(m);
}

/* A feature this CPU lacks that the model runtime can test, or NULL. */
static const char *missing_feature(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) return "avx512f";
  if (!__builtin_cpu_supports("xop")) return "xop";
  if (!__builtin_cpu_supports("fma4")) return "fma4";
  if (!__builtin_cpu_supports("avx512vbmi2")) return "avx512vbmi2";
#endif
  return NULL;
}

static int fake_check_cpu(char *msg, size_t cap) {
  snprintf(msg, cap, "this CPU lacks made-up-feature");
  return -1;
}
// NOLINTNEXTLINE(readability-non-const-parameter): the check_cpu hook's signature
static int ok_check_cpu(char *msg, size_t cap) {
  (void)msg;
  (void)cap;
  return 0;
}
static void *fake_session_new(int n) {
  (void)n;
  return NULL;
}
static void fake_session_free(void *s) { (void)s; }
static int fake_run(void *s, void *const *in, void *const *out) {
  (void)s, (void)in, (void)out;
  return 0;
}

/* The pool learns every kernel's cost separately: after one run, each of
 * many costly kernels is split across the threads, none left inline. */
static void test_pool_costs(void) {
  size_t size = 0;
  void *obj = compile_obj(many_kernels_src, "many", &size);
  CHECK(obj != NULL);
  if (!obj) return;
  CHECK_INT(link_test_model(tmp_path("many.so"), obj, size, "+64bit,+sse2,+cx8", cc()), 0);
  free(obj);
  nncc_model *m = NULL;
  CHECK_INT(nncc_model_open(tmp_path("many.so"), &m, NULL), NNCC_OK);
  if (!m) return;
  float x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {0};
  int64_t inl = -1;
  nncc_tensor in = {x, NNCC_DTYPE_F32, 2, x_dims, 0};
  nncc_tensor outs[2] = {{y, NNCC_DTYPE_F32, 2, x_dims, 0}, {&inl, NNCC_DTYPE_I64, 1, one_dims, 0}};
  for (int threads = 1; threads <= 2; threads++) {
    nncc_session *s = NULL;
    CHECK_INT(nncc_session_create(m, threads, &s, NULL), NNCC_OK);
    if (!s) continue;
    /* the first run measures each kernel (inline); later ones split */
    for (int run = 0; run < 3; run++)
      CHECK_INT(nncc_session_run(s, &in, 1, outs, 2, NULL), NNCC_OK);
    CHECK_INT(inl, threads == 1 ? 290 : 0);
    nncc_session_destroy(s);
  }
  nncc_model_close(m);
}

static void test_loader_refusals(void *obj, size_t size) {
  nncc_model *m = (nncc_model *)1;
  char *err = NULL;
  CHECK_INT(nncc_model_open(NULL, &m, &err), NNCC_ERR_INVALID_ARG);
  CHECK(m == NULL);
  nncc_free_message(err);
  CHECK_INT(nncc_model_open("x.so", NULL, NULL), NNCC_ERR_INVALID_ARG);
  CHECK_INT(nncc_model_open(tmp_path("none.so"), &m, &err), NNCC_ERR_LOAD);
  CHECK(err && strstr(err, "none.so") != NULL);
  nncc_free_message(err);
  write_bytes(tmp_path("junk.so"), "not an ELF file", 15);
  CHECK_INT(nncc_model_open(tmp_path("junk.so"), &m, &err), NNCC_ERR_LOAD);
  nncc_free_message(err);
  /* A shared object that is not a model. */
  char cmd[4096];
  write_bytes(tmp_path("other.c"), "int other(void) { return 1; }\n", 30);
  snprintf(cmd, sizeof cmd, "%s -shared -fPIC -o '%s' '%s'", cc(), tmp_path("other.so"),
           tmp_path("other.c"));
  if (system(cmd) == 0) {
    CHECK_INT(nncc_model_open(tmp_path("other.so"), &m, &err), NNCC_ERR_LOAD);
    CHECK(err && strstr(err, "is not a model compiled by nncc (no nncc_model_v1 symbol"));
    nncc_free_message(err);
  }
  /* Hand-built descriptors: ABI version, malformed, CPU features. */
  static const nncc_model_io io = {"x", NNCC_DTYPE_F32, 1, one_dims};
  nncc_model_desc d =
      {NNCC_ABI_VERSION,
       sizeof d,
       "nncc test",
       "m",
       "cpu",
       "cpu0",
       "+made-up-feature",
       0,
       0,
       1,
       1,
       &io,
       &io,
       fake_check_cpu,
       fake_session_new,
       fake_session_free,
       fake_run,
       0,
       NULL,
       NULL,
       NULL,
       NULL,
       NULL,
       NULL,
       NULL,
       0,
       NULL,
       NULL,
       "bf16",
       3,
       0,
       NULL};
  CHECK_INT(rt_model_from_desc(&d, NULL, &m, &err), NNCC_ERR_UNSUPPORTED_CPU);
  CHECK_STR(err, "this CPU lacks made-up-feature");
  nncc_free_message(err);
  d.check_cpu = ok_check_cpu;
  d.abi_version = 2;
  CHECK_INT(rt_model_from_desc(&d, NULL, &m, &err), NNCC_ERR_ABI);
  CHECK_STR(err, "the model was built for ABI version 2; this runtime supports 1");
  nncc_free_message(err);
  d.abi_version = NNCC_ABI_VERSION;
  nncc_model_io bad_io = {"y", NNCC_DTYPE_F32, 17, one_dims};
  d.outputs = &bad_io;
  CHECK_INT(rt_model_from_desc(&d, NULL, &m, &err), NNCC_ERR_LOAD);
  CHECK_STR(err, "the model's output 0 has a bad rank");
  nncc_free_message(err);
  bad_io = (nncc_model_io){"y", 42, 1, one_dims};
  CHECK_INT(rt_model_from_desc(&d, NULL, &m, &err), NNCC_ERR_LOAD);
  CHECK_STR(err, "the model's output 0 has an unknown dtype");
  nncc_free_message(err);
  d.outputs = &io;
  CHECK_INT(rt_model_from_desc(NULL, NULL, &m, &err), NNCC_ERR_LOAD);
  nncc_free_message(err);
  CHECK_INT(rt_model_from_desc(&d, NULL, &m, &err), NNCC_OK);
  CHECK_STR(nncc_model_precision(m), "bf16");
  CHECK_INT(nncc_model_num_kernels(m), 3);
  nncc_model_close(m);
  /* A model built before metadata version 4: no precision, no kernel count. */
  d.struct_size = offsetof(nncc_model_desc, precision);
  CHECK_INT(rt_model_from_desc(&d, NULL, &m, &err), NNCC_OK);
  CHECK_STR(nncc_model_precision(m), "");
  CHECK_INT(nncc_model_num_kernels(m), 0);
  d.struct_size = sizeof d;
  nncc_session *s = NULL;
  CHECK_INT(nncc_session_create(m, 1, &s, &err), NNCC_ERR_OUT_OF_MEMORY);
  CHECK(s == NULL && err != NULL);
  nncc_free_message(err);
  nncc_model_close(m);

  /* The real check in a real .so: require a feature this CPU lacks. */
  const char *f = missing_feature();
  if (f) {
    char feats[128], want[256];
    snprintf(feats, sizeof feats, "+64bit,+sse2,+%s,+made-up-feature", f);
    CHECK_INT(link_test_model(tmp_path("needs.so"), obj, size, feats, cc()), 0);
    CHECK_INT(nncc_model_open(tmp_path("needs.so"), &m, &err), NNCC_ERR_UNSUPPORTED_CPU);
    snprintf(want, sizeof want, "%s: this CPU lacks %s (the model was compiled for CPU 'testcpu')",
             tmp_path("needs.so"), f);
    CHECK_STR(err, want);
    CHECK(m == NULL);
    nncc_free_message(err);
  }
}

static void test_link_failures(void *obj, size_t size) {
  /* The compiler fails: nothing is left behind. */
  CHECK_INT(link_test_model(tmp_path("fail.so"), obj, size, "", "false"), -1);
  CHECK_INT(access(tmp_path("fail.so"), F_OK), -1);
  CHECK_INT(link_test_model(tmp_path("fail.so"), obj, size, "", "/no/such/cc"), -1);
  CHECK_INT(access(tmp_path("fail.so"), F_OK), -1);
  /* An object with an undefined symbol fails at link time, not at load. */
  size_t n;
  void *o = compile_obj(
      "extern int nowhere(void);\n"
      "int nncc_graph_run(void *const *i, void *const *o, unsigned char *w,\n"
      "  const unsigned char *b, void *p, const long *d, const long *f, long *s) { return "
      "nowhere(); }\n",
      "undef", &n);
  CHECK(o != NULL);
  if (o) {
    CHECK_INT(link_test_model(tmp_path("fail.so"), o, n, "", cc()), -1);
    CHECK_INT(access(tmp_path("fail.so"), F_OK), -1);
  }
  free(o);
  /* No temporary files remain next to the output. */
  DIR *dir = opendir(tmpdir);
  int tmps = 0;
  for (struct dirent *e; dir && (e = readdir(dir));)
    if (strstr(e->d_name, ".tmp-")) tmps++;
  if (dir) closedir(dir);
  CHECK_INT(tmps, 0);
}

static void rm_rf(const char *path) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "can't remove %s\n", path);
}

int main(void) {
  const char *root = getenv("NNCC_TEST_TMP");
  snprintf(tmpdir, sizeof tmpdir, "%s/test_runtime-XXXXXX", root && *root ? root : "/tmp");
  if (!mkdtemp(tmpdir)) unit_skip("can't create a temporary directory");

  CHECK_STR(nncc_status_string(NNCC_ERR_SHAPE), "wrong shape");
  CHECK_STR(nncc_status_string((nncc_status)99), "unknown status");
  CHECK_STR(nncc_dtype_name(NNCC_DTYPE_BOOL), "bool");
  CHECK_INT(nncc_dtype_size(NNCC_DTYPE_BF16), 2);
  CHECK_INT(nncc_dtype_size((nncc_dtype)99), 0);
  CHECK_INT(NNCC_DTYPE_BOOL, NN_DT_BOOL); /* the public numbering is nn_dtype's */
  CHECK_INT(NNCC_DTYPE_F16, NN_DT_F16);
  CHECK(nncc_version()[0] != 0);

  test_npy_roundtrip();
  test_npy_malformed();

  size_t size = 0;
  void *obj = compile_obj(model_src, "model", &size);
  if (!obj) {
    rm_rf(tmpdir);
    unit_skip("no working C compiler ($CC or cc)");
  }
  int rc = link_test_model(tmp_path("model.so"), obj, size, "+64bit,+sse2,+cx8", cc());
  CHECK_INT(rc, 0);
  if (rc == 0) test_model_run(tmp_path("model.so"));
  test_pool_costs();
  test_loader_refusals(obj, size);
  test_link_failures(obj, size);
  free(obj);
  rm_rf(tmpdir);
  return unit_report("runtime");
}
