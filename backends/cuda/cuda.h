/* cuda.h — the CUDA backend: be_program → CUDA C → NVRTC → model.so.
 *
 * Sections, one per file:
 *   cuda_emit.c      be_program → CUDA C source (one __global__ function per
 *                    distinct kernel) and the launch table
 *                    (runtime/cuda/cuda_table.h)
 *   cuda_nvrtc.c     NVRTC, loaded with dlopen at compile time: a cubin per
 *                    requested arch plus PTX for the newest
 *   cuda_artifact.c  the table, the images and the CUDA model runtime
 *                    (runtime/model_rt_cuda.c) → the object artifact_link
 *                    links into model.so
 *   cuda_emucheck.c  runs the source compiled for the host against the
 *                    emulation header (tests/cuda/cuda_emu.h) and compares
 *                    every step with the reference interpreter
 *
 * Mapping (DESIGN.md §6): a kernel whose root is one KS_PARALLEL FOR spreads
 * that loop's iterations over the grid (grid-stride; one iteration per
 * thread, four with float4 accesses for flat f32 elementwise loops, the
 * rest of the nest per thread), or, when its body reduces rows, a block
 * per iteration with the reductions spread over the block's threads; a
 * GEMM alone at the root, or alone inside a parallel root loop (a batch),
 * becomes a tiled kernel with shared-memory staging (tensor cores for f16
 * operands); a root of reductions that is no loop runs on one block;
 * anything else runs on one thread (cuda_emit.c has the details). Values of a
 * 16-bit float dtype are held in float and rounded after every operation,
 * exactly as the reference interpreter does, and stored as their bits.
 */
#ifndef NNCC_CUDA_H
#define NNCC_CUDA_H

#include "../backend.h"
#include "../../runtime/cuda/cuda_table.h"

/* The emitted program: source and launch table (arena memory). */
typedef struct cuda_module {
  char *src; /* CUDA C, NUL-terminated */
  size_t src_len;
  nncc_cu_table table; /* arrays below */
  NN_VEC(nncc_cu_kernel) kernels;
  NN_VEC(nncc_cu_step) steps;
  NN_VEC(nncc_cu_buf) bufs;
  NN_VEC(int32_t) slots;
  NN_VEC(int64_t) prog;
  bool wmma; /* some kernel uses tensor cores (the
                source includes <mma.h>) */
  NN_VEC(unsigned char)
  tc; /* by kernel (table order): 1 when it is
         a tensor-core GEMM (wmma) */
} cuda_module;

/* Emits p. Returns 0, or -1 after reporting (a kernel with more slots than
 * NNCC_CU_MAX_SLOTS, an expression the printer does not know). */
int cuda_emit(const be_program *p, cuda_module *m, nn_diag *d);

/* ---- cuda_nvrtc.c ------------------------------------------------------------ */

#define CUDA_MAX_ARCHS 8

typedef struct cuda_images {
  int narchs;
  int archs[CUDA_MAX_ARCHS];   /* e.g. 70, 80, 90 (ascending) */
  void *cubin[CUDA_MAX_ARCHS]; /* malloc'd */
  size_t cubin_size[CUDA_MAX_ARCHS];
  char *ptx;       /* for the newest arch (compute_XX), malloc'd */
  size_t ptx_size; /* bytes, the NUL included */
} cuda_images;

/* Parses "sm_70,sm_80,sm_90" (or "70,80") into archs, sorted, without
 * duplicates. Returns the count, or -1 with a message in err. */
int cuda_parse_archs(const char *s, int *archs, int max, char *err, size_t cap);
/* Where NVRTC was found, or where it was looked for (cuda_nvrtc_find). */
typedef struct cuda_nvrtc_where {
  char path[1024];   /* found: the file that loaded (resolved through the
                        loader for a bare name) */
  char looked[2048]; /* the directories tried in order, comma-separated;
                        "the loader path" for the loader's own search */
  char tried[4096];  /* every file name tried without success */
} cuda_nvrtc_where;

/* Finds NVRTC (the search order is in cuda_nvrtc.c): a library that loads
 * and defines nvrtcVersion. Returns the dlopen handle (it stays loaded) or
 * NULL; fills *w either way. */
void *cuda_nvrtc_find(cuda_nvrtc_where *w);
/* The same, with a message in why naming every place it looked when NVRTC
 * is not found. */
void *cuda_nvrtc_open(char *why, size_t cap);
/* Compiles src for every arch. An arch this NVRTC does not support is
 * reported with its CUDA version and lowest arch (CUDA 13 has no sm_70).
 * A source using wmma (#include <mma.h>) gets the toolkit's include folder.
 * On an NVRTC error: reports its log and, when save_src is not NULL, writes
 * the source there and says so. Returns 0 or -1 after reporting. */
int cuda_nvrtc_compile(const char *src, const int *archs, int narchs, const char *save_src,
                       cuda_images *out, nn_diag *d);
void cuda_images_free(cuda_images *im);

/* ---- cuda_artifact.c ----------------------------------------------------------- */

/* Writes model.so for p: the launch table, the images and the CUDA model
 * runtime compiled into an object with $CC, then artifact_link. The
 * model's metadata says cpu "cuda sm_80,sm_90" and no CPU features. */
int cuda_artifact_link(const be_program *p, const cuda_module *m, const cuda_images *im,
                       const artifact_opts *o, nn_diag *d);

/* ---- cuda_emucheck.c ------------------------------------------------------------- */

/* Runs p twice on the same deterministic random inputs (seed): with the
 * reference interpreter, and with the kernels of the emulation library lib
 * (the emitted source compiled for the host with tests/cuda/cuda_emu.h),
 * launched as the table says. After each step, compares the buffers it
 * wrote: |x - ref| <= tol * max(1, |ref|) for floats, equality otherwise;
 * then the emulated run takes the reference's values of those buffers, so
 * every step starts from the reference's operands.
 * Prints one line per mismatching step and a summary to out (kernels by
 * form, the tensor-core GEMMs counted apart). Static programs only.
 * Returns 0 when everything matches, 1 on a mismatch, -1 after reporting
 * an error. */
int cuda_emucheck(const be_program *p, const cuda_module *m, const char *lib, double tol,
                  unsigned seed, FILE *out, nn_diag *d);

#endif
