/* cuda.c — NVIDIA GPUs, through the CUDA backend (backends/cuda/).
 *
 * The backend keeps a KS_GEMM over f16 operands as a GEMM and runs it on
 * tensor cores (wmma), and one over bf16 in its tiled form; both sum in
 * f32. Its GEMM reads packed weights through their panel index arithmetic,
 * so the panels are the CPU's (one packing code path in lowering). A
 * kernel's slots travel as one by-value parameter of NNCC_CU_MAX_SLOTS
 * pointers (abi/cuda_table.h). No Winograd: the backend has no transform
 * kernels tuned for it. Every GEMM has a native form, so there is no
 * expansion tiling; the CPU-only fields (vector width, microkernel tile)
 * describe nothing here and are zero.
 */
#include "target.h"

#include "../abi/cuda_table.h"

static const tg_target cuda = {
    .name = "cuda",
    .kind = TG_CUDA,
    .pack_a = 8,
    .pack_b = 16,
    .winograd = false,
    .gemm_f16 = true,
    .gemm_bf16 = true,
    .dot_i8 = false,
    .max_slots = NNCC_CU_MAX_SLOTS,
};

const tg_target *tg_cuda(void) { return &cuda; }
