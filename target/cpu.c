/* cpu.c — the CPU levels, and the level of a CPU.
 *
 * Each x86-64 level is the psABI's micro-architecture level (x86-64-v2:
 * SSE4.2 and POPCNT; -v3: AVX2, FMA, BMI; -v4: AVX-512 F/BW/CD/DQ/VL),
 * described by what code generation uses: the vector width and the GEMM
 * register tile that fits its register file (AVX-512: 8 rows x 3 vectors
 * of 16 = 24 of the 32 zmm registers; AVX2: 4 x 3 vectors of 8 = 12 of 16
 * ymm; SSE and NEON: 4 x 3 of 4). Packing, the portable GEMM expansion and
 * the Winograd choice are the same on every level today, so one lowering
 * serves them all; a level that wants other panels says so here.
 *
 * tg_for_cpu() reads LLVM's feature list when it has one (the host's, for
 * --mcpu=native) and otherwise the cpu name (--mcpu=NAME, whose features
 * LLVM derives from the name): the tables below name the x86 cpus this
 * LLVM knows with AVX-512 and with AVX2+FMA. A name it does not know
 * compiles for a generic cpu, so it must not pick a wide level.
 */
#include "target.h"

#include <string.h>

#ifndef NNCC_LLVM_MAJOR
#define NNCC_LLVM_MAJOR 14
#endif

/* A level: what differs is the vector width (W floats) and the register
 * tile's rows (MR); the packing, the expansion's tiling and the Winograd
 * choice are shared. Winograd pays from 16 input channels: below, the 16
 * GEMMs have K = Cin, too short for the microkernel to pay for loading and
 * storing its tile of C. Measured at one thread (GEMM path / Winograd),
 * AVX-512: 8 -> 64 channels at 28x28 0.035 / 0.048 ms, 3 -> 64 at 112x112
 * 0.21 / 0.30 ms; 16 -> 16 at 56x56 0.086 / 0.058 ms, 64 -> 8 at 28x28
 * 0.082 / 0.051 ms, 64 -> 64 at 56x56 0.99 / 0.55 ms. */
#define CPU_LEVEL(NAME, CPU, W, MR)                                                        \
  {                                                                                        \
    .name = (NAME), .kind = TG_CPU, .llvm_cpu = (CPU), .vec_floats = (W), .gemm_mr = (MR), \
    .gemm_nv = 3, .gemm_kc = 256, .pack_a = 8, .pack_b = 16,                               \
    .expand = {.mr = 6, .nr = 16, .mb = 48, .nb = 256, .kb = 256, .min_tiles = 32},        \
    .winograd = true, .winograd_min_cin = 16, .gemm_f16 = false, .gemm_bf16 = false,       \
    .dot_i8 = false, .max_slots = 64                                                       \
  }

static const tg_target levels[] = {
    CPU_LEVEL("x86-64", "x86-64", 4, 4),       CPU_LEVEL("x86-64-v2", "x86-64-v2", 4, 4),
    CPU_LEVEL("x86-64-v3", "x86-64-v3", 8, 4), CPU_LEVEL("x86-64-v4", "x86-64-v4", 16, 8),
    CPU_LEVEL("aarch64", "generic", 4, 4),
};
enum { X86_64, X86_64_V2, X86_64_V3, X86_64_V4, AARCH64, NLEVELS };

const tg_target *tg_cpu_level(const char *name) {
  for (int i = 0; i < NLEVELS; i++)
    if (name && strcmp(levels[i].name, name) == 0) return &levels[i];
  return NULL;
}

/* Whether comma-separated feature list `fs` enables `name` ("+name"). */
static bool has_feature(const char *fs, const char *name) {
  size_t n = strlen(name);
  for (const char *p = fs; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n + 1 && p[0] == '+' && strncmp(p + 1, name, n) == 0) return true;
    p = e ? e + 1 : NULL;
  }
  return false;
}

static bool in_list(const char *cpu, const char *const *names) {
  for (int i = 0; names[i]; i++)
    if (strcmp(cpu, names[i]) == 0) return true;
  return false;
}

/* x86 cpus the LLVM nncc is built with knows (NNCC_LLVM_MAJOR, from the
 * build), by the widest level they reach. */
static const char *const avx512_cpus[] =
    {"skylake-avx512",
     "skx",
     "cascadelake",
     "cooperlake",
     "cannonlake",
     "icelake-client",
     "icelake-server",
     "tigerlake",
     "sapphirerapids",
     "rocketlake",
     "knl",
     "knm",
     "x86-64-v4",
#if NNCC_LLVM_MAJOR >= 16
     "znver4",
     "graniterapids",
     "emeraldrapids",
#endif
     NULL};
static const char *const avx2_cpus[] = {"haswell",    "broadwell",  "skylake", "alderlake",
                                        "znver1",     "znver2",     "znver3",  "x86-64-v3",
                                        "bdver4",     "core-avx2",
#if NNCC_LLVM_MAJOR >= 15
                                        "raptorlake", "meteorlake",
#endif
                                        NULL};
static const char *const sse42_cpus[] =
    {"nehalem",    "corei7",     "westmere", "sandybridge", "corei7-avx",    "ivybridge",
     "core-avx-i", "silvermont", "slm",      "goldmont",    "goldmont-plus", "tremont",
     "bdver1",     "bdver2",     "bdver3",   "btver2",      "x86-64-v2",     NULL};

const tg_target *tg_for_cpu(const char *triple, const char *cpu, const char *features) {
  if (triple && (strncmp(triple, "aarch64", 7) == 0 || strncmp(triple, "arm64", 5) == 0))
    return &levels[AARCH64];
  const char *fs = features ? features : "";
  cpu = cpu ? cpu : "";
  if (fs[0]) {
    if (has_feature(fs, "avx512f")) return &levels[X86_64_V4];
    if (has_feature(fs, "avx2") && has_feature(fs, "fma")) return &levels[X86_64_V3];
    if (has_feature(fs, "sse4.2")) return &levels[X86_64_V2];
    return &levels[X86_64];
  }
  if (in_list(cpu, avx512_cpus)) return &levels[X86_64_V4];
  if (in_list(cpu, avx2_cpus)) return &levels[X86_64_V3];
  if (in_list(cpu, sse42_cpus)) return &levels[X86_64_V2];
  return &levels[X86_64];
}

const tg_target *tg_host(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return &levels[X86_64_V4];
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &levels[X86_64_V3];
  if (__builtin_cpu_supports("sse4.2")) return &levels[X86_64_V2];
  return &levels[X86_64];
#elif defined(__aarch64__)
  return &levels[AARCH64];
#else
  return &levels[X86_64];
#endif
}
