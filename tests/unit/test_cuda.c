/* test_cuda.c — the CUDA backend without a GPU (backends/cuda/,
 * abi/cuda_table.h): arch lists, the launch table's postfix
 * programs and grids, the emitted source and table for small graphs (IR
 * text → pass_shapes → kl_schedule → cuda_emit), the tensor-core GEMM
 * form (emitted, compiled by NVRTC, emulated), the emulation's warp
 * semantics, NVRTC's search when it is hidden, and, when NVRTC is present,
 * a real compile whose cubin is a CUDA ELF of the requested arch and whose
 * PTX has the kernel's entry. Emulation parts need g++ and NNCC_TEST_TMP.
 * The emulation check over the op table and the zoo is tests/cuda.sh.
 */
#include "backends/backend.h"
#include "lower/lower.h"
#include "passes/passes.h"
#include "unit.h"

#include <dlfcn.h>
#include <math.h>
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
  const int64_t prog[] = {NNCC_CU_DIM,      0, NNCC_CU_CONST, 3, NNCC_CU_ADD, 0, NNCC_CU_CONST, 2,
                          NNCC_CU_FLOORDIV, 0, NNCC_CU_END,   0, NNCC_CU_DIM, 1, NNCC_CU_CONST, -3,
                          NNCC_CU_MOD,      0, NNCC_CU_END,   0, NNCC_CU_ADD, 0, NNCC_CU_END,   0,
                          NNCC_CU_DIM,      5, NNCC_CU_END,   0};
  int n = (int)(sizeof prog / sizeof prog[0]);
  int64_t dims[2] = {8, 7};
  CHECK_INT(nncc_cu_eval(prog, n, 0, dims, 2), 5);
  CHECK_INT(nncc_cu_eval(prog, n, 12, dims, 2), -2); /* floor semantics */
  CHECK_INT(nncc_cu_eval(prog, n, 20, dims, 2), -1); /* stack underflow */
  CHECK_INT(nncc_cu_eval(prog, n, 24, dims, 2), -1); /* no such dim */
  CHECK_INT(nncc_cu_eval(prog, n, -1, dims, 2), -1);
  CHECK_INT(nncc_cu_eval(prog, 3, 0, dims, 2), -1); /* truncated */

  const int64_t p2[] = {NNCC_CU_CONST, 1000, NNCC_CU_END, 0, NNCC_CU_CONST, 33, NNCC_CU_END, 0,
                        NNCC_CU_CONST, 17,   NNCC_CU_END, 0, NNCC_CU_CONST, 1,  NNCC_CU_END, 0};
  nncc_cu_kernel ks[5] = {{"a", NNCC_CU_PAR, 0, 0, -1, -1, 0, 1},
                          {"b", NNCC_CU_GEMM, 1, 12, 4, 8, 0, 1},
                          {"c", NNCC_CU_SERIAL, 0, -1, -1, -1, 0, 1},
                          {"d", NNCC_CU_PAR, 0, 0, -1, -1, 0, 4},
                          {"e", NNCC_CU_ROW, 1, 4, -1, -1, 64, 1}};
  nncc_cu_table t = {.nkernels = 5, .kernels = ks, .prog = p2, .nprog = 16};
  unsigned g[3], b[3];
  nncc_cu_grid(&t, 0, NULL, 64, g, b);
  CHECK(g[0] == 4 && g[1] == 1 && g[2] == 1 && b[0] == 256 && b[1] == 1);
  nncc_cu_grid(&t, 1, NULL, 64, g, b);
  CHECK(g[0] == 2 && g[1] == 3 && g[2] == 1 && b[0] == 16 && b[1] == 16 && b[2] == 1);
  nncc_cu_grid(&t, 2, NULL, 64, g, b);
  CHECK(g[0] == 1 && g[1] == 1 && b[0] == 1);
  nncc_cu_grid(&t, 3, NULL, 64, g, b); /* float4: 1000 / (4 * 256) blocks */
  CHECK(g[0] == 1 && b[0] == 256);
  nncc_cu_grid(&t, 4, NULL, 64, g, b); /* rows: a block of 64 threads per row */
  CHECK(g[0] == 33 && g[1] == 1 && b[0] == 64 && b[1] == 1);
  ks[0].trip = -1; /* unknown trip count: the fallback grid */
  nncc_cu_grid(&t, 0, NULL, 64, g, b);
  CHECK_INT(g[0], 64);
}

/* Parses, shapes and schedules IR text for target t; NULL on failure. */
static kp_program *schedule_for(nn_arena *a, const char *ir, const char *const *specs, int nspecs,
                                const tg_target *t) {
  nn_diag d;
  nn_diag_init(&d, stderr);
  ir_graph *g = ir_parse(ir, strlen(ir), "t.nnir", a, &d);
  pass_input_spec sp[4];
  char err[256];
  for (int i = 0; i < nspecs; i++)
    if (pass_parse_input_spec(specs[i], a, &sp[i], err, sizeof err)) return NULL;
  if (!g || pass_shapes(g, sp, nspecs, &d)) return NULL;
  return kl_schedule(g, a, t, &d);
}

/* The same for the CPU target (the host's level). */
static kp_program *schedule(nn_arena *a, const char *ir, const char *const *specs, int nspecs) {
  return schedule_for(a, ir, specs, nspecs, tg_host());
}

/* Schedules IR text and emits it into m, checking that this succeeds and
 * gives one kernel; false when there is no program. */
static bool emit_one(nn_arena *a, const char *ir, const char *const *specs, int nspecs,
                     cuda_module *m) {
  kp_program *p = schedule(a, ir, specs, nspecs);
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
  if (!emit_one(a,
                "graph forward(%0 x: unknown) -> (unknown) {\n"
                "  %1 = relu(%0) : unknown\n  return %1\n}\n",
                specs, 1, &m)) {
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
  CHECK_INT(m.table.kernels[0].vec, 4);
  CHECK_STR(k,
            "/* k0_relu: grid-stride over the parallel loop, float4 */\n"
            "extern \"C\" __global__ void nncc_k0_relu(struct nncc_cu_args A) {\n"
            "  float *__restrict__ s0 = (float *)A.p[0]; /* out */\n"
            "  const float *__restrict__ s1 = (const float *)A.p[1]; /* x */\n"
            "  i64 v0 = 0;\n"
            "  (void)v0;\n"
            "  const i64 lo_ = (0LL), hi_ = (6LL);\n"
            "  const i64 t_ = (i64)blockIdx.x * blockDim.x + threadIdx.x, "
            "nt_ = (i64)gridDim.x * blockDim.x;\n"
            "  i64 e4_ = lo_;\n"
            "  if (hi_ - lo_ >= 4 && (lo_ & 3) == 0 && ((0 | (u64)s0 | (u64)s1) & 15) == 0) {\n"
            "    e4_ = lo_ + ((hi_ - lo_) & ~(i64)3);\n"
            "    for (i64 it_ = lo_ + 4 * t_; it_ < e4_; it_ += 4 * nt_) {\n"
            "      float4 o0_;\n"
            "      const float4 l1_ = *(const float4 *)(s1 + it_);\n"
            "      v0 = it_ + 0;\n"
            "      o0_.x = (float)((nn_fmax((l1_.x), 0.0f)));\n"
            "      v0 = it_ + 1;\n"
            "      o0_.y = (float)((nn_fmax((l1_.y), 0.0f)));\n"
            "      v0 = it_ + 2;\n"
            "      o0_.z = (float)((nn_fmax((l1_.z), 0.0f)));\n"
            "      v0 = it_ + 3;\n"
            "      o0_.w = (float)((nn_fmax((l1_.w), 0.0f)));\n"
            "      *(float4 *)(s0 + it_) = o0_;\n"
            "    }\n"
            "  }\n"
            "  for (i64 it_ = e4_ + t_; it_ < hi_; it_ += nt_) {\n"
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
  if (!emit_one(a,
                "graph forward(%0 x: unknown, %1 w: unknown) -> (unknown) {\n"
                "  %2 = matmul(%0, %1) : unknown\n  return %2\n}\n",
                specs, 2, &m)) {
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

/* Compiles CUDA source src for the host against tests/cuda/cuda_emu.h
 * into NNCC_TEST_TMP/<name>.so (path in lib). Returns 0, or 1 when there
 * is no g++ or no NNCC_TEST_TMP (the caller skips), -1 on a failure. */
static int emu_build(const char *src, const char *name, char *lib, size_t cap) {
  const char *tmp = getenv("NNCC_TEST_TMP");
  char root[512], cu[1100], cmd[8192];
  snprintf(root, sizeof root, "%s", __FILE__); /* .../tests/unit/test_cuda.c */
  char *cut = strstr(root, "tests/unit/test_cuda.c");
  if (!cut || !tmp || system("g++ --version >/dev/null 2>&1") != 0) return 1;
  *cut = 0;
  snprintf(cu, sizeof cu, "%s/%s.cu", tmp, name);
  snprintf(lib, cap, "%s/%s.so", tmp, name);
  FILE *f = fopen(cu, "w");
  if (!f) return -1;
  fputs(src, f);
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "g++ -std=c++17 -O1 -fPIC -shared -w -include "
           "%stests/cuda/cuda_emu.h -x c++ %s -x c++ %stests/cuda/cuda_emu.cc -o %s",
           root, cu, root, lib);
  int rc = system(cmd);
  remove(cu);
  return rc == 0 ? 0 : -1;
}

/* The emulation's warp semantics: shuffles in lockstep over the 32 lanes
 * of one warp (a lane reads another lane's value of the same call), only
 * one warp of the block shuffling (legal on the device), and a block
 * barrier that a returned thread never reaches reported as divergence. */
static void test_emu_lanes(void) {
  static const char src[] =
      "struct nncc_cu_args { void *p[64]; };\n"
      "extern \"C\" __global__ void lanes(struct nncc_cu_args A) {\n"
      "  float *out = (float *)A.p[0];\n"
      "  unsigned t = threadIdx.x;\n"
      "  float v = (float)t;\n"
      "  if (t < 32)\n"
      "    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);\n"
      "  else\n"
      "    v = __shfl_down_sync(0xffffffffu, v, 1u);\n"
      "  out[t] = v;\n"
      "}\n"
      "extern \"C\" __global__ void diverge(struct nncc_cu_args A) {\n"
      "  if (threadIdx.x == 5) return;\n"
      "  __syncthreads();\n"
      "  ((float *)A.p[0])[threadIdx.x] = 1.0f;\n"
      "}\n";
  char lib[1100];
  int rc = emu_build(src, "lanes", lib, sizeof lib);
  if (rc == 1) {
    printf("test_emu_lanes: skipped (no g++ or no NNCC_TEST_TMP)\n");
    return;
  }
  CHECK_INT(rc, 0);
  void *h = rc == 0 ? dlopen(lib, RTLD_NOW | RTLD_LOCAL) : NULL;
  CHECK(h != NULL);
  if (!h) return;
  typedef void (*kern)(nncc_cu_args);
  int (*launch)(kern, const unsigned *, const unsigned *, int, const nncc_cu_args *);
  kern lanes, diverge;
  *(void **)&launch = dlsym(h, "nncc_emu_launch");
  *(void **)&lanes = dlsym(h, "lanes");
  *(void **)&diverge = dlsym(h, "diverge");
  CHECK(launch && lanes && diverge);
  if (launch && lanes && diverge) {
    float out[64] = {0};
    nncc_cu_args args;
    memset(&args, 0, sizeof args);
    args.p[0] = out;
    const unsigned grid[3] = {1, 1, 1}, block[3] = {64, 1, 1};
    CHECK_INT(launch(lanes, grid, block, 1, &args), 0);
    int bad = 0;
    for (int t = 0; t < 64; t++) {
      float want = t < 32 ? 496.0f : t < 63 ? (float)(t + 1) : 63.0f;
      bad += out[t] != want;
    }
    CHECK_INT(bad, 0);
    printf("test_emu_lanes: a divergence message follows, as expected\n");
    fflush(stdout);
    CHECK_INT(launch(diverge, grid, block, 1, &args), -1);
  }
  dlclose(h);
  remove(lib);
}

/* A 16-bit GEMM on tensor cores, built by hand: this takes the f32
 * matmul's program (a GEMM straight on the inputs) and makes A
 * and B f16 (the program's buffers and inputs too): the emitter must take
 * the KS_GEMM to wmma (16x16x16, f32 accumulation; M, N, K not multiples
 * of 16), NVRTC (when present) must give mma instructions, and the source
 * compiled for the host with tests/cuda/cuda_emu.h (when g++ is present)
 * must match the reference interpreter within 1e-4. */
static void test_emit_wmma(void) {
  nn_arena *a = nn_arena_new();
  const char *specs[] = {"x:f32[20,40]", "w:f32[40,24]"};
  kp_program *p = schedule(a,
                           "graph forward(%0 x: unknown, %1 w: unknown) -> (unknown) {\n"
                           "  %2 = matmul(%0, %1) : unknown\n  return %2\n}\n",
                           specs, 2);
  CHECK(p != NULL && p->steps.len == 1);
  if (!p || p->steps.len != 1) {
    nn_arena_free(a);
    return;
  }
  kernel *k = p->steps.data[0].k;
  const ks_gemm *g = NULL;
  for (int i = 0; i < k->stmts.len; i++)
    if (k->stmts.data[i].kind == KS_GEMM) g = &k->stmts.data[i].gemm;
  CHECK(g != NULL);
  if (!g) {
    nn_arena_free(a);
    return;
  }
  int32_t ops[2] = {g->a, g->b};
  for (int j = 0; j < 2; j++) {
    k->bufs.data[ops[j]].dtype = NN_DT_F16;
    kp_buf *pb = &p->bufs.data[p->steps.data[0].slots[ops[j]]];
    pb->dtype = NN_DT_F16;
    CHECK_INT(pb->kind, KP_BUF_INPUT);
    p->inputs.data[pb->index].dtype = NN_DT_F16;
  }
  nn_diag d;
  nn_diag_init(&d, stderr);
  cuda_module m;
  CHECK_INT(cuda_emit(p, &m, &d), 0);
  CHECK_INT(m.table.kernels[0].form, NNCC_CU_GEMM);
  CHECK(m.wmma);
  CHECK(strstr(m.src, "tensor-core GEMM (wmma) */") != NULL);
  CHECK(strstr(m.src, "nvcuda::wmma::mma_sync(fc_, fa_, fb_, fc_);") != NULL);
  CHECK(strstr(m.src, "i64 M_ = (20LL), N_ = (24LL), K_ = (40LL)") != NULL);
  char why[2048];
  void *h = cuda_nvrtc_open(why, sizeof why);
  if (h) {
    int archs[2] = {75, 90};
    cuda_images im;
    CHECK_INT(cuda_nvrtc_compile(m.src, archs, 2, NULL, &im, &d), 0);
    if (im.ptx) {
      CHECK(strstr(im.ptx, "wmma.mma.sync.aligned.row.row.m16n16k16.f32.f32") != NULL);
      check_cubin(im.cubin[0], im.cubin_size[0], 75);
    }
    cuda_images_free(&im);
  }
  /* the emulation */
  char lib[1100];
  int rc = emu_build(m.src, "wmma", lib, sizeof lib);
  if (rc == 1) {
    printf("test_emit_wmma: emulation skipped (no g++ or no NNCC_TEST_TMP)\n");
  } else {
    CHECK_INT(rc, 0);
    FILE *out = fopen("/dev/null", "w");
    CHECK_INT(cuda_emucheck(p, &m, lib, 1e-4, 7, out, &d), 0);
    if (out) fclose(out);
    remove(lib);
  }
  nn_arena_free(a);
}

/* The GEMM of a 16-bit linear layer (x @ w^T + b, w an input, so first
 * transposed by a packing kernel) as lowered for each target: the CPU
 * target expands it into loops (no KS_GEMM left, the LLVM microkernel
 * being f32 only); the CUDA target keeps the KS_GEMM over the 16-bit
 * operands with an f32 accumulator, followed by the kernel that rounds
 * it into the result, and the emitter takes f16
 * GEMMs to tensor cores (bf16 ones to the tiled form). The emulated
 * program must match the reference interpreter within the fp16 bound of
 * tests/cuda.sh (5e-3 relative to max(1, |ref|)); M, N and K are not
 * multiples of 16. */
static void test_f16_gemm_target(void) {
  static const char ir[] = "graph forward(%0 x: unknown, %1 w: unknown, %2 b: unknown) -> "
                           "(unknown) {\n"
                           "  %3 = linear(%0, %1, %2) : unknown\n  return %3\n}\n";
  static const struct {
    const char *specs[3];
    nn_dtype dt;
  } cases[] = {{{"x:f16[20,40]", "w:f16[24,40]", "b:f16[24]"}, NN_DT_F16},
               {{"x:bf16[20,40]", "w:bf16[24,40]", "b:bf16[24]"}, NN_DT_BF16}};
  for (int ci = 0; ci < 2; ci++) {
    nn_arena *a = nn_arena_new();
    int ngemm[2] = {0, 0};
    kp_program *pt[2];
    for (int t = 0; t < 2; t++) {
      pt[t] = schedule_for(a, ir, cases[ci].specs, 3, t ? tg_cuda() : tg_host());
      CHECK(pt[t] != NULL);
      for (int i = 0; pt[t] && i < pt[t]->steps.len; i++) {
        const kernel *k = pt[t]->steps.data[i].k;
        for (int j = 0; j < k->stmts.len; j++) ngemm[t] += k->stmts.data[j].kind == KS_GEMM;
      }
    }
    CHECK_INT(ngemm[0], 0);
    CHECK_INT(ngemm[1], 1);
    kp_program *p = pt[1];
    if (!p || !pt[0]) {
      nn_arena_free(a);
      continue;
    }
    CHECK_INT(p->steps.len, pt[0]->steps.len);
    CHECK_INT(p->steps.len, 3);
    if (p->steps.len != 3) {
      nn_arena_free(a);
      continue;
    }
    const kernel *k = p->steps.data[1].k;
    CHECK_INT(k->root.len, 1);
    const ks *r = &k->stmts.data[k->root.data[0]];
    CHECK_INT(r->kind, KS_GEMM);
    if (r->kind == KS_GEMM) {
      CHECK_INT(k->bufs.data[r->gemm.a].dtype, cases[ci].dt);
      CHECK_INT(k->bufs.data[r->gemm.b].dtype, cases[ci].dt);
      CHECK_INT(k->bufs.data[r->gemm.bias].dtype, cases[ci].dt);
      CHECK_INT(k->bufs.data[r->gemm.c].dtype, NN_DT_F32);
      CHECK(!r->gemm.epilogue);
    }
    CHECK_STR(p->steps.data[0].k->name, "k0_pack_transpose");
    CHECK_STR(p->steps.data[2].k->name, "k2_gemm_round");
    nn_diag d;
    nn_diag_init(&d, stderr);
    cuda_module m;
    CHECK_INT(cuda_emit(p, &m, &d), 0);
    CHECK_INT(m.table.nkernels, 3);
    CHECK_INT(m.tc.len, 3);
    if (m.table.nkernels != 3 || m.tc.len != 3) {
      nn_arena_free(a);
      continue;
    }
    bool f16 = cases[ci].dt == NN_DT_F16;
    CHECK_INT(m.table.kernels[1].form, NNCC_CU_GEMM);
    CHECK_INT(m.tc.data[0], 0);
    CHECK_INT(m.tc.data[1], f16);
    CHECK_INT(m.tc.data[2], 0);
    CHECK(m.wmma == f16);
    CHECK((strstr(m.src, "/* k1_linear: tiled GEMM, tensor-core GEMM (wmma) */") != NULL) == f16);
    CHECK((strstr(m.src, "/* k1_linear: tiled GEMM */") != NULL) == !f16);
    /* both targets' programs, interpreted on the same inputs, agree within
     * the fp16 bound: the same f32 sums, rounded once */
    uint16_t x[20 * 40], w[24 * 40], bias[24], out[2][20 * 24] = {{0}};
    uint64_t seed = 12345;
    uint16_t *ins[3] = {x, w, bias};
    int lens[3] = {20 * 40, 24 * 40, 24};
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < lens[i]; j++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)(seed >> 40) / (float)(1 << 24) * 2 - 1; /* [-1, 1) */
        ins[i][j] = f16 ? nn_f32_to_f16(u) : nn_f32_to_bf16(u);
      }
    double worst = 0;
    for (int t = 0; t < 2; t++) {
      void *in[3] = {x, w, bias}, *o[1] = {out[t]};
      CHECK_INT(kp_interp(pt[t], in, o), 0);
    }
    for (int j = 0; j < 20 * 24; j++) {
      double r = f16 ? nn_f16_to_f32(out[0][j]) : nn_bf16_to_f32(out[0][j]);
      double v = f16 ? nn_f16_to_f32(out[1][j]) : nn_bf16_to_f32(out[1][j]);
      double e = fabs(v - r) / fmax(1.0, fabs(r));
      worst = e > worst ? e : worst;
    }
    CHECK(worst <= 5e-3); /* (today they are identical: both sum in order over k) */
    int nonzero = 0;
    for (int j = 0; j < 20 * 24; j++) nonzero += (out[0][j] & 0x7fff) != 0;
    CHECK(nonzero > 20 * 24 / 2);
    char lib[1100];
    int rc = emu_build(m.src, f16 ? "f16gemm" : "bf16gemm", lib, sizeof lib);
    if (rc == 1) {
      printf("test_f16_gemm_target: emulation skipped (no g++ or no NNCC_TEST_TMP)\n");
    } else {
      CHECK_INT(rc, 0);
      char *text = NULL;
      size_t len = 0;
      FILE *out = open_memstream(&text, &len);
      CHECK_INT(cuda_emucheck(p, &m, lib, 5e-3, 3, out, &d), 0);
      fclose(out);
      CHECK(text && strstr(text, f16 ? "gemm 1 (wmma 1)" : "gemm 1 (wmma 0)") != NULL);
      CHECK(text && strstr(text, " 0 mismatching steps\n") != NULL);
      free(text);
      remove(lib);
    }
    nn_arena_free(a);
  }
}

static void test_nvrtc(void) {
  /* hidden: a CUDA_HOME with nothing in it, no library path */
  const char *home0 = getenv("CUDA_HOME"), *lp0 = getenv("LD_LIBRARY_PATH");
  char *home = home0 ? strdup(home0) : NULL;
  char *lp = lp0 ? strdup(lp0) : NULL;
  setenv("CUDA_HOME", "/nonexistent-cuda", 1);
  setenv("LD_LIBRARY_PATH", "", 1);
  char why[2048] = "";
  void *h = cuda_nvrtc_open(why, sizeof why);
  CHECK(h == NULL);
  CHECK(strstr(why, "--target cuda needs NVRTC") == why);
  CHECK(strstr(why, "CUDA_HOME=/nonexistent-cuda") != NULL);
  CHECK(strstr(why, "/nonexistent-cuda/lib64/libnvrtc.so.13") != NULL);
  CHECK(strstr(why, "LD_LIBRARY_PATH (empty)") != NULL);
  if (home)
    setenv("CUDA_HOME", home, 1);
  else
    unsetenv("CUDA_HOME");
  if (lp)
    setenv("LD_LIBRARY_PATH", lp, 1);
  else
    unsetenv("LD_LIBRARY_PATH");
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
  kp_program *p = schedule(a,
                           "graph forward(%0 x: unknown) -> (unknown) {\n"
                           "  %1 = tanh(%0) : unknown\n  return %1\n}\n",
                           specs, 1);
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
                               NULL, &im, &d),
            -1);
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
  test_emit_wmma();
  test_f16_gemm_target();
  test_emu_lanes();
  test_nvrtc();
  return unit_report("cuda");
}
