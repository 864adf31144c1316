/* target.h — what a target offers, as data.
 *
 * Lowering (lower/) makes every target-specific choice by reading one of
 * these descriptors: how weights are packed, whether a convolution may go
 * through Winograd, which 16-bit GEMMs stay GEMMs, how many slots a kernel
 * may have. The backends read the same descriptor for their register
 * tiles instead of repeating its numbers, so a packed layout the lowering
 * chose and the microkernel that reads it cannot drift apart. Lowering
 * never asks which backend it serves; it asks the descriptor what exists.
 *
 * A CPU is described per ISA level (x86-64, x86-64-v2, -v3 with AVX2 and
 * FMA, -v4 with AVX-512, and AArch64); tg_for_cpu() maps the CPU and
 * features code is generated for onto its level. Lowering a model once per
 * descriptor is how one .so can carry code for several levels.
 *
 * Files:
 *   cpu.c   the CPU levels, and which level a CPU name or feature list is
 *   cuda.c  NVIDIA GPUs through the CUDA backend
 *
 * Descriptors are immutable statics: compare them by address.
 */
#ifndef NNCC_TARGET_H
#define NNCC_TARGET_H

#include <stdbool.h>

typedef enum tg_kind {
  TG_CPU,  /* code through the LLVM backend (backends/llvm/) */
  TG_CUDA, /* CUDA C through NVRTC (backends/cuda/) */
} tg_kind;

/* The loop nest a GEMM becomes where a target has no native form for it
 * (k_expand_gemms, kernel/expand.c): register tiles of mr rows by nr
 * contiguous columns of C (the innermost, vectorized loop runs over the nr
 * columns), macro tiles of mb x nb that one parallel iteration computes,
 * K blocks of kb, and at least min_tiles macro tiles for the thread pool
 * (nb shrinks for small M until there are). */
typedef struct tg_expand {
  int mr, nr;    /* register tile */
  int mb, nb;    /* macro tile (multiples of mr and nr) */
  int kb;        /* K block depth */
  int min_tiles; /* macro tiles wanted for the thread pool */
} tg_expand;

typedef struct tg_target {
  const char *name; /* "x86-64-v4", "aarch64", "cuda", ... */
  tg_kind kind;
  const char *llvm_cpu; /* the LLVM cpu name that means exactly this level
                           ("x86-64-v3"), NULL when there is none */
  int vec_floats;       /* f32 lanes of the widest vector register */
  /* The native GEMM microkernel (LLVM backend): a register tile of gemm_mr
   * rows of C by gemm_nv vectors of vec_floats columns, K in blocks of
   * gemm_kc. */
  int gemm_mr, gemm_nv, gemm_kc;
  /* Weights packed at compile time (ks_gemm.a_panel / b_panel): a
   * convolution's weight (A) in panels of pack_a rows, a linear layer's w^T
   * (B) in panels of pack_b columns. A microkernel reads a panel as one
   * contiguous stream; the LLVM backend's narrow microkernel holds one
   * column of an A panel (pack_a floats) in one vector register. */
  int pack_a, pack_b;
  tg_expand expand;     /* GEMMs without a native form, as loops */
  bool winograd;        /* 3x3 stride-1 f32 convolutions with fixed sizes
                           through Winograd's F(2x2, 3x3) */
  int winograd_min_cin; /* ... when they have at least this many input
                           channels (below, K = Cin is too short for the
                           microkernel to pay for its C tile) */
  bool gemm_f16;        /* a GEMM over f16 operands stays a KS_GEMM (the
                           backend has a native form: tensor cores); else
                           lowering expands it into loops at once */
  bool gemm_bf16;       /* the same for bf16 operands */
  bool dot_i8;          /* int8 dot products with i32 sums */
  int max_slots;        /* most buffer slots (arguments) one kernel may
                           take */
} tg_target;

/* ---- cpu.c ---------------------------------------------------------------- */

/* The CPU level named `name` ("x86-64", "x86-64-v2", "x86-64-v3",
 * "x86-64-v4", "aarch64"), or NULL. */
const tg_target *tg_cpu_level(const char *name);
/* The level of the CPU code is generated for: `triple` (NULL or "" for an
 * x86-64 host), LLVM's `cpu` name and its feature list `features`
 * ("+avx2,+fma,-avx512f,..."; empty when the cpu name implies them, as for
 * --mcpu=NAME). A cpu LLVM does not know is taken for the baseline. */
const tg_target *tg_for_cpu(const char *triple, const char *cpu, const char *features);
/* The level of the machine running this code (tests, tools that lower for
 * the host without a backend at hand). */
const tg_target *tg_host(void);

/* ---- cuda.c --------------------------------------------------------------- */

/* NVIDIA GPUs (every arch the CUDA backend compiles for). */
const tg_target *tg_cuda(void);

#endif
