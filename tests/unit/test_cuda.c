/* test_cuda.c — the CUDA backend without a GPU (backends/cuda/,
 * runtime/cuda/cuda_table.h): arch lists, the launch table's postfix
 * programs and grids, the emitted source and table for small graphs (IR
 * text → pass_shapes → be_schedule → cuda_emit), NVRTC's search when it is
 * hidden, and, when NVRTC is present, a real compile whose cubin is a CUDA
 * ELF of the requested arch and whose PTX has the kernel's entry. The
 * emulation check over the op table and the zoo is tests/cuda.sh.
 */
#include "backends/cuda/cuda.h"
#include "passes/passes.h"
#include "unit.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static void test_archs(void) {
  int a[CUDA_MAX_ARCHS];
  char err[256] = "";
  CHECK_INT(cuda_parse_archs("sm_90,sm_80,80", a, CUDA_MAX_ARCHS, err, sizeof err), 2);
  CHECK_INT(a[0], 80);
  CHECK_INT(a[1], 90);
  CHECK_INT(cuda_parse_archs("75", a, CUDA_MAX_ARCHS, err, sizeof err), 1);
  CHECK_INT(a[0], 75);
  CHECK_INT(cuda_parse_archs("sm_x", a, CUDA_MAX_ARCHS, err, sizeof err), -1);
  CHECK_STR(err, "--cuda-arch: 'sm_x' is not an arch like sm_80");
  CHECK_INT(cuda_parse_archs("", a, CUDA_MAX_ARCHS, err, sizeof err), -1);
  CHECK_INT(cuda_parse_archs("sm_80,,sm_90", a, CUDA_MAX_ARCHS, err, sizeof err), -1);
  CHECK_STR(err, "--cuda-arch: bad item in 'sm_80,,sm_90'");
}

static void test_eval_and_grid(void) {
  /* (d0 + 3) // 2, d1 % -3, and malformed programs */
  const int64_t prog[] = {NNCC_CU_DIM, 0, NNCC_CU_CONST, 3, NNCC_CU_ADD, 0, NNCC_CU_CONST, 2,
                          NNCC_CU_FLOORDIV, 0, NNCC_CU_END, 0,
                          NNCC_CU_DIM, 1, NNCC_CU_CONST, -3, NNCC_CU_MOD, 0, NNCC_CU_END, 0,
                          NNCC_CU_ADD, 0, NNCC_CU_END, 0,
                          NNCC_CU_DIM, 5, NNCC_CU_END, 0};
  int n = (int)(sizeof prog / sizeof prog[0]);
  int64_t dims[2] = {8, 7};
  CHECK_INT(nncc_cu_eval(prog, n, 0, dims, 2), 5);
  CHECK_INT(nncc_cu_eval(prog, n, 12, dims, 2), -2); /* floor semantics */
  CHECK_INT(nncc_cu_eval(prog, n, 20, dims, 2), -1); /* stack underflow */
  CHECK_INT(nncc_cu_eval(prog, n, 24, dims, 2), -1); /* no such dim */
  CHECK_INT(nncc_cu_eval(prog, n, -1, dims, 2), -1);
  CHECK_INT(nncc_cu_eval(prog, 3, 0, dims, 2), -1);  /* truncated */

  const int64_t p2[] = {NNCC_CU_CONST, 1000, NNCC_CU_END, 0, NNCC_CU_CONST, 33, NNCC_CU_END, 0,
                        NNCC_CU_CONST, 17, NNCC_CU_END, 0, NNCC_CU_CONST, 1, NNCC_CU_END, 0};
  nncc_cu_kernel ks[3] = {{"a", NNCC_CU_PAR, 0, 0, -1, -1},
                          {"b", NNCC_CU_GEMM, 1, 12, 4, 8},
                          {"c", NNCC_CU_SERIAL, 0, -1, -1, -1}};
  nncc_cu_table t = {.nkernels = 3, .kernels = ks, .prog = p2, .nprog = 16};
  unsigned g[3], b[3];
  nncc_cu_grid(&t, 0, NULL, 64, g, b);
  CHECK(g[0] == 4 && g[1] == 1 && g[2] == 1 && b[0] == 256 && b[1] == 1);
  nncc_cu_grid(&t, 1, NULL, 64, g, b);
  CHECK(g[0] == 2 && g[1] == 3 && g[2] == 1 && b[0] == 16 && b[1] == 16 && b[2] == 1);
  nncc_cu_grid(&t, 2, NULL, 64, g, b);
  CHECK(g[0] == 1 && g[1] == 1 && b[0] == 1);
  ks[0].trip = -1; /* unknown trip count: the fallback grid */
  nncc_cu_grid(&t, 0, NULL, 64, g, b);
  CHECK_INT(g[0], 64);
}

/* Parses, shapes, schedules and emits IR text; NULL on failure. */
static be_program *schedule(nn_arena *a, const char *ir, const char *const *specs, int nspecs) {
  nn_diag d;
  nn_diag_init(&d, stderr);
  ir_graph *g = ir_parse(ir, strlen(ir), "t.nnir", a, &d);
  pass_input_spec sp[4];
  char err[256];
  for (int i = 0; i < nspecs; i++)
    if (pass_parse_input_spec(specs[i], a, &sp[i], err, sizeof err)) return NULL;
  if (!g || pass_shapes(g, sp, nspecs, &d)) return NULL;
  return be_schedule(g, a, &d);
}

/* Schedules IR text and emits it into m, checking that this succeeds and
 * gives one kernel; false when there is no program. */
static bool emit_one(nn_arena *a, const char *ir, const char *const *specs, int nspecs,
                     cuda_module *m) {
  be_program *p = schedule(a, ir, specs, nspecs);
  CHECK(p != NULL);
  if (!p) return false;
  nn_diag d;
  nn_diag_init(&d, stderr);
  CHECK_INT(cuda_emit(p, m, &d), 0);
  CHECK_INT(m->table.nkernels, 1);
  return true;
}

static void test_emit_relu(void) {
  nn_arena *a = nn_arena_new();
  const char *specs[] = {"x:f32[2,3]"};
  cuda_module m;
  if (!emit_one(a, "graph forward(%0 x: unknown) -> (unknown) {\n"
                   "  %1 = relu(%0) : unknown\n  return %1\n}\n", specs, 1, &m)) {
    nn_arena_free(a);
    return;
  }
  CHECK_INT(m.table.nsteps, 1);
  CHECK_STR(m.table.kernels[0].name, "nncc_k0_relu");
  CHECK_INT(m.table.kernels[0].form, NNCC_CU_PAR);
  CHECK_INT(nncc_cu_eval(m.table.prog, m.table.nprog, m.table.kernels[0].trip, NULL, 0), 6);
  CHECK_INT(m.table.steps[0].nslots, 2);
  CHECK_INT(m.table.bufs[m.table.slots[0]].kind, NNCC_CU_OUTPUT);
  CHECK_INT(m.table.bufs[m.table.slots[1]].kind, NNCC_CU_INPUT);
  const char *k = strstr(m.src, "/* k0_relu");
  CHECK_STR(k, "/* k0_relu: grid-stride over the parallel loop */\n"
               "extern \"C\" __global__ void nncc_k0_relu(struct nncc_cu_args A) {\n"
               "  float *__restrict__ s0 = (float *)A.p[0]; /* out */\n"
               "  const float *__restrict__ s1 = (const float *)A.p[1]; /* x */\n"
               "  i64 v0 = 0;\n"
               "  (void)v0;\n"
               "  const i64 lo_ = (0LL), hi_ = (6LL);\n"
               "  for (i64 it_ = lo_ + (i64)blockIdx.x * blockDim.x + threadIdx.x; it_ < hi_; "
               "it_ += (i64)gridDim.x * blockDim.x) {\n"
               "    v0 = it_;\n"
               "    s0[v0] = ((float)((nn_fmax((s1[v0]), 0.0f))));\n"
               "  }\n"
               "}\n\n");
  nn_arena_free(a);
}

static void test_emit_gemm(void) {
  nn_arena *a = nn_arena_new();
  const char *specs[] = {"x:f32[5,7]", "w:f32[7,3]"};
  cuda_module m;
  if (!emit_one(a, "graph forward(%0 x: unknown, %1 w: unknown) -> (unknown) {\n"
                   "  %2 = matmul(%0, %1) : unknown\n  return %2\n}\n", specs, 2, &m)) {
    nn_arena_free(a);
    return;
  }
  const nncc_cu_kernel *k = &m.table.kernels[0];
  CHECK_INT(k->form, NNCC_CU_GEMM);
  CHECK_INT(k->sync, 1);
  unsigned g[3], b[3];
  nncc_cu_grid(&m.table, 0, NULL, 64, g, b);
  CHECK(g[0] == 1 && g[1] == 1 && g[2] == 1 && b[0] == 16 && b[1] == 16);
  CHECK(strstr(m.src, "__shared__ float As_[16][17], Bs_[16][17];") != NULL);
  CHECK(strstr(m.src, "i64 M_ = (5LL), N_ = (3LL), K_ = (7LL)") != NULL);
  CHECK(strstr(m.src, "__syncthreads();") != NULL);
  nn_arena_free(a);
}

/* The cubin's ELF header: machine 190 (NVIDIA CUDA) and the arch in
 * e_flags bits 8..15. */
static void check_cubin(const unsigned char *c, size_t n, int arch) {
  CHECK(n > 64 && !memcmp(c, "\177ELF", 4));
  if (n <= 64) return;
  CHECK_INT(c[18] | c[19] << 8, 190);
  uint32_t flags = (uint32_t)c[48] | (uint32_t)c[49] << 8 | (uint32_t)c[50] << 16 |
                   (uint32_t)c[51] << 24;
  CHECK_INT((int)((flags >> 8) & 0xff), arch);
}

static void test_nvrtc(void) {
  /* hidden: a CUDA_HOME with nothing in it, no library path */
  char *home = getenv("CUDA_HOME") ? strdup(getenv("CUDA_HOME")) : NULL;
  char *lp = getenv("LD_LIBRARY_PATH") ? strdup(getenv("LD_LIBRARY_PATH")) : NULL;
  setenv("CUDA_HOME", "/nonexistent-cuda", 1);
  setenv("LD_LIBRARY_PATH", "", 1);
  char why[2048] = "";
  void *h = cuda_nvrtc_open(why, sizeof why);
  CHECK(h == NULL);
  CHECK(strstr(why, "--target cuda needs NVRTC") == why);
  CHECK(strstr(why, "CUDA_HOME=/nonexistent-cuda") != NULL);
  CHECK(strstr(why, "/nonexistent-cuda/lib64/libnvrtc.so.13") != NULL);
  CHECK(strstr(why, "LD_LIBRARY_PATH (empty)") != NULL);
  if (home) setenv("CUDA_HOME", home, 1); else unsetenv("CUDA_HOME");
  if (lp) setenv("LD_LIBRARY_PATH", lp, 1); else unsetenv("LD_LIBRARY_PATH");
  free(home);
  free(lp);

  h = cuda_nvrtc_open(why, sizeof why);
  if (!h) {
    fprintf(stderr, "test_cuda: NVRTC absent, its compile checks skipped\n");
    return;
  }
  dlclose(h);
  nn_arena *a = nn_arena_new();
  const char *specs[] = {"x:f16[4,5]"};
  be_program *p = schedule(a, "graph forward(%0 x: unknown) -> (unknown) {\n"
                              "  %1 = tanh(%0) : unknown\n  return %1\n}\n", specs, 1);
  nn_diag d;
  nn_diag_init(&d, stderr);
  cuda_module m;
  cuda_images im;
  int archs[2] = {80, 90};
  CHECK(p && cuda_emit(p, &m, &d) == 0);
  if (p && cuda_nvrtc_compile(m.src, archs, 2, NULL, &im, &d) == 0) {
    CHECK_INT(im.narchs, 2);
    check_cubin(im.cubin[0], im.cubin_size[0], 80);
    check_cubin(im.cubin[1], im.cubin_size[1], 90);
    CHECK(im.ptx && strstr(im.ptx, ".target sm_90") != NULL);
    CHECK(im.ptx && strstr(im.ptx, ".entry nncc_k0_tanh(") != NULL);
    cuda_images_free(&im);
  } else {
    CHECK(0);
  }
  /* a compile error: NVRTC's log is reported */
  nn_diag_init(&d, fopen("/dev/null", "w"));
  CHECK_INT(cuda_nvrtc_compile("extern \"C\" __global__ void f() { undefined_thing; }", archs, 1,
                               NULL, &im, &d), -1);
  CHECK_INT(d.errors, 1);
  fclose(d.out);
  nn_arena_free(a);
}

/* NVRTC keeps an internal cache it never frees; under LeakSanitizer that is
 * NVRTC's, not ours. (A hook LSan reads; harmless in other builds.) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libnvrtc.so\n"; }

int main(void) {
  test_archs();
  test_eval_and_grid();
  test_emit_relu();
  test_emit_gemm();
  test_nvrtc();
  return unit_report("cuda");
}
