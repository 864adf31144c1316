/* backend.h — from a program of kernels to a model.so.
 *
 * The backends print the kernel form they are given (kernel/kernel.h); they
 * never lower the graph themselves (they may include kernel/ and target/,
 * never lower/). Sections, one per folder or file:
 *   llvm/        kp_program → LLVM module (one function per kernel plus
 *                nncc_graph_run), optimized for the target, emitted as an
 *                object file; the GEMM microkernels read their register
 *                tile and the packed panels' shapes from the program's
 *                target descriptor
 *   cuda/        kp_program → CUDA C (one __global__ function per distinct
 *                kernel) and its launch table (abi/cuda_table.h) → NVRTC →
 *                the object that stands in for the LLVM one; and the CPU
 *                emulation check of the emitted kernels
 *   artifact.c   object + weights + metadata + the model runtime →
 *                model.so, linked with the system C compiler (and the
 *                helpers both backends use to run it)
 *
 * The generated graph function and kernels follow the contract in
 * kernel/kernel.h and abi/abi.h.
 */
#ifndef NNCC_BACKEND_H
#define NNCC_BACKEND_H

#include "../kernel/kernel.h"
#include "../abi/cuda_table.h"

/* ---- llvm/ --------------------------------------------------------------- */

typedef struct llvm_opts {
  int opt_level;      /* 0..3 */
  const char *mcpu;   /* CPU name ("native" = host, the default) */
  const char *triple; /* target triple, NULL = host */
  /* Optional: told as code generation advances (nncc's progress line and
   * -ftime-report): stage "kernels" (done 0 of total steps) as kernels are
   * translated, "optimize" as each of the total functions goes through
   * the function passes (done of total) and once more (total, total) as
   * the module passes start, "object" as machine code is emitted. */
  void (*progress)(void *ctx, const char *stage, int done, int total);
  void *progress_ctx; /* passed to progress */
} llvm_opts;

typedef struct llvm_result {
  void *obj; /* the object file bytes (malloc'd) */
  size_t obj_size;
  char *ir_text;  /* textual LLVM IR when asked for (malloc'd) */
  char *cpu;      /* the resolved CPU name (malloc'd) */
  char *features; /* the target features it needs, "+avx2,+fma,..." */
} llvm_result;

/* The target descriptor of the CPU code is generated for under o (the
 * host's for --mcpu=native or none, else the named cpu's level; an
 * AArch64 triple's): what the driver lowers the program for. */
const tg_target *llvm_target(const llvm_opts *o);
/* Generates and optimizes the module, then emits an object. The register
 * tiles and packed panels are p->target's (a program built by hand, with
 * no target, gets llvm_target(o)'s). want_ir keeps the optimized IR text
 * too. Returns 0 or -1 after reporting (a program lowered for another
 * kind of target, too many slots, a malformed GEMM). */
int llvm_compile(const kp_program *p, const llvm_opts *o, bool want_ir, llvm_result *r, nn_diag *d);
void llvm_result_free(llvm_result *r);

/* ---- artifact.c ---------------------------------------------------------- */

typedef struct artifact_opts {
  const char *out;        /* OUT.so */
  const char *cc;         /* linker driver: $CC or "cc" */
  const char *model_name; /* recorded in the metadata */
  const char *target;     /* "cpu" (NULL) or "cuda", recorded likewise */
  const char *precision;  /* "f32", "f16" or "bf16" (--precision), recorded
                             likewise; NULL: the 16-bit float type the
                             program's weights and workspace use, if any */
} artifact_opts;

/* Links model.so from the object, the weights blob, the metadata and the
 * embedded model runtime. Writes to a temporary file and renames it, so a
 * failure leaves no OUT.so. Same inputs → byte-identical output. */
int artifact_link(const kp_program *p, const llvm_result *r, const artifact_opts *o, nn_diag *d);
/* Writes n bytes to path; -1 after reporting. */
int be_write_file(const char *path, const void *data, size_t n, nn_diag *d);
/* Runs argv (argv[0] looked up in PATH) with stdout and stderr going to
 * `log`. Returns 0 when it exits with status 0; otherwise reports that it
 * failed to `what`, with the command and its output, and returns -1. */
int be_run(char **argv, const char *log, const char *what, nn_diag *d);

/* ====================================================================== */
/* cuda/ (cuda_emit.c, cuda_nvrtc.c, cuda_artifact.c, cuda_emucheck.c)    */
/* ====================================================================== */
/* Mapping (DESIGN.md §6): a kernel whose root is one KS_PARALLEL FOR spreads
 * that loop's iterations over the grid (grid-stride; one iteration per
 * thread, four with float4 accesses for flat f32 elementwise loops, the
 * rest of the nest per thread), or, when its body reduces rows, a block
 * per iteration with the reductions spread over the block's threads; a
 * GEMM alone at the root, or alone inside a parallel root loop (a batch),
 * becomes a tiled kernel with shared-memory staging (tensor cores for f16
 * operands); a root of reductions that is no loop runs on one block;
 * anything else runs on one thread (cuda_emit.c has the details). Values of a
 * 16-bit float dtype are held in float and rounded after every operation,
 * exactly as the reference interpreter does, and stored as their bits. */

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
int cuda_emit(const kp_program *p, cuda_module *m, nn_diag *d);

/* cuda_prelude.c: the helpers every generated source starts with. */
void cuda_prelude(nn_buf *b);

/* ---- cuda/cuda_nvrtc.c ------------------------------------------------------------ */

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

/* ---- cuda/cuda_artifact.c ----------------------------------------------------------- */

/* Writes model.so for p: the launch table, the images and the CUDA model
 * runtime compiled into an object with $CC, then artifact_link. The
 * model's metadata says cpu "cuda sm_80,sm_90" and no CPU features. */
int cuda_artifact_link(const kp_program *p, const cuda_module *m, const cuda_images *im,
                       const artifact_opts *o, nn_diag *d);

/* ---- cuda/cuda_emucheck.c ------------------------------------------------------------- */

/* Runs p twice on the same deterministic random inputs (seed): with the
 * reference interpreter, and with the kernels of the emulation library lib
 * (the emitted source compiled for the host with tests/cuda/cuda_emu.h),
 * launched as the table says. After each step, compares the buffers it
 * wrote: |x - ref| <= tol * max(1, |ref|) for floats, equality otherwise;
 * then the emulated run takes the reference's values of those buffers, so
 * every step starts from the reference's operands.
 * A program with run-time checks (kernel.h KS_CHECK) is then run a second
 * time with element 0 of every integer input set to 1000000007, so that
 * checks fail: the status blocks are compared like any written buffer.
 * Prints one line per mismatching step and a summary to out (kernels by
 * form, the tensor-core GEMMs counted apart, the checks' second run's
 * status). Static programs only.
 * Returns 0 when everything matches, 1 on a mismatch, -1 after reporting
 * an error. */
int cuda_emucheck(const kp_program *p, const cuda_module *m, const char *lib, double tol,
                  unsigned seed, FILE *out, nn_diag *d);

#endif
