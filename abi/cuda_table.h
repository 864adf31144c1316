/* cuda_table.h — the launch table of a CUDA model (backends/cuda/).
 *
 * The CUDA emitter turns a kp_program into CUDA C source (one __global__
 * function per distinct kernel) plus this table, which says how to run
 * the program: which kernel each step launches, which program buffer each
 * of its slots is bound to, and how to size the grid. Every kernel takes one
 * argument, an nncc_cu_args holding its slots' pointers, by value.
 *
 * The table is plain data with no other nncc header, because three places
 * read it: the model runtime inside a CUDA model.so (runtime/model_rt_cuda.c,
 * launching through the driver), the emulation check (backends/cuda/
 * cuda_emucheck.c, launching the same source compiled for the host), and
 * the emitter that fills it.
 *
 * Sizes that depend on symbolic dims are small postfix programs over the
 * run's dim values (nncc_cu_eval): pairs (op, arg) in one int64 array,
 * ended by NNCC_CU_END. A program that could not be encoded is -1 and the
 * runtime then uses a default grid (kernels are grid-stride, so any grid is
 * correct).
 */
#ifndef NNCC_CUDA_TABLE_H
#define NNCC_CUDA_TABLE_H

#include <stdint.h>

#define NNCC_CU_MAX_SLOTS 64 /* as the reference interpreter's steps */
#define NNCC_CU_BLOCK 256    /* threads per block of the elementwise forms */
#define NNCC_CU_TILE 16      /* GEMM tile edge (blocks of TILE x TILE) */

/* The pointers of one launch; passed by value (512 bytes of parameters). */
typedef struct nncc_cu_args {
  void *p[NNCC_CU_MAX_SLOTS]; /* slot i's buffer (device memory) */
} nncc_cu_args;

/* How a kernel maps onto the grid. */
enum {
  NNCC_CU_PAR = 0,    /* root = one parallel FOR: grid-stride over its
                         iterations, 1-D blocks of NNCC_CU_BLOCK threads */
  NNCC_CU_GEMM = 1,   /* root = one GEMM, or one parallel FOR around a GEMM
                         (the batch, over grid z): tiled, TILE x TILE
                         threads per block, shared-memory staging */
  NNCC_CU_SERIAL = 2, /* anything else: one thread runs the whole nest */
  NNCC_CU_ROW = 3,    /* a nest of reductions: one block per iteration of
                         the root parallel loop (or one block for a root
                         that is not a loop); the block's threads stride
                         each reduction and elementwise loop of the row
                         and combine partial results with warp shuffles
                         and shared memory; `threads` threads per block */
  NNCC_CU_NFORMS = 4,
};

/* Postfix ops (nncc_cu_eval). */
enum {
  NNCC_CU_END = 0,
  NNCC_CU_CONST,
  NNCC_CU_DIM,
  NNCC_CU_ADD,
  NNCC_CU_SUB,
  NNCC_CU_MUL,
  NNCC_CU_DIV,
  NNCC_CU_FLOORDIV,
  NNCC_CU_MOD,
  NNCC_CU_MIN,
  NNCC_CU_MAX,
};

/* Field notes. nncc_cu_kernel: name = the __global__ function's
 * (extern "C") name; form = NNCC_CU_PAR/GEMM/SERIAL; sync = uses
 * __syncthreads; trip = PAR, ROW: iterations (ROW: 1 block without a
 * root loop), GEMM: batch count; m, n = GEMM: rows and columns of C (all
 * programs, or -1); threads = ROW: threads per block (a multiple of 32);
 * vec = PAR: iterations per thread (4 with float4 accesses, else 1). nncc_cu_buf: kind =
 * NNCC_CU_INPUT..DIMS; index = which input/output; offset = WEIGHT/
 * WORKSPACE byte offset (static programs); elems = element count
 * (program); esize = bytes per element; NNCC_CU_STATUS is the run's status
 * block of checks (kernel.h KP_BUF_STATUS), zeroed before a run and read
 * after it. nncc_cu_step: kernel index; its
 * slots are slots[slot0 .. slot0 + nslots). nncc_cu_table: the arrays,
 * nsyms = dim values a run gives, dynamic = workspace offsets come per
 * run. nncc_cu_model: what a CUDA model.so hands to its runtime: the
 * table, the cubins by arch (ascending), the PTX of the newest arch and the
 * model's input and output counts. */
/* The table types as one macro, so the CUDA artifact step can write the
 * same definitions into the C file it generates (NNCC_CU_TYPES_TEXT). The
 * fields are documented above in the comments of each member. */
#define NNCC_CU_TYPES                               \
  typedef struct nncc_cu_kernel {                   \
    const char *name;                               \
    int32_t form;                                   \
    int32_t sync;                                   \
    int32_t trip;                                   \
    int32_t m, n;                                   \
    int32_t threads;                                \
    int32_t vec;                                    \
  } nncc_cu_kernel;                                 \
  enum {                                            \
    NNCC_CU_INPUT = 0,                              \
    NNCC_CU_OUTPUT,                                 \
    NNCC_CU_WEIGHT,                                 \
    NNCC_CU_WORKSPACE,                              \
    NNCC_CU_DIMS,                                   \
    NNCC_CU_STATUS                                  \
  };                                                \
  typedef struct nncc_cu_buf {                      \
    int32_t kind;                                   \
    int32_t index;                                  \
    uint64_t offset;                                \
    int32_t elems;                                  \
    uint32_t esize;                                 \
  } nncc_cu_buf;                                    \
  typedef struct nncc_cu_step {                     \
    int32_t kernel;                                 \
    int32_t slot0;                                  \
    int32_t nslots;                                 \
  } nncc_cu_step;                                   \
  typedef struct nncc_cu_table {                    \
    int32_t nkernels, nsteps, nbufs, nslots, nprog; \
    const nncc_cu_kernel *kernels;                  \
    const nncc_cu_step *steps;                      \
    const nncc_cu_buf *bufs;                        \
    const int32_t *slots;                           \
    const int64_t *prog;                            \
    int32_t nsyms;                                  \
    int32_t dynamic;                                \
    uint64_t workspace_bytes;                       \
    uint64_t weights_bytes;                         \
  } nncc_cu_table;                                  \
  typedef struct nncc_cu_model {                    \
    const nncc_cu_table *table;                     \
    int32_t narchs;                                 \
    const int32_t *archs;                           \
    const unsigned char *const *cubins;             \
    const uint64_t *cubin_sizes;                    \
    const char *ptx;                                \
    int32_t ninputs, noutputs;                      \
  } nncc_cu_model;
NNCC_CU_TYPES
/* Device-memory tensors (nncc.h NNCC_TENSOR_DEVICE). The session runtime
 * (runtime/session.c) calls the model with its own arrays of data
 * pointers, ninputs input pointers followed by one NULL entry. When a run
 * has device tensors, that entry is NNCC_CU_IO_TAG instead and the next one
 * points to ninputs + noutputs uint32_t flags (the tensors' nncc_tensor
 * flags, inputs first); nncc_cu_run then uses those pointers as device
 * memory as they are, with no copy. A runtime older than this writes NULL
 * there, so every tensor is host memory. */
#define NNCC_CU_IO_TAG ((void *)(uintptr_t)0x4e4e4343494f4647ull) /* "NNCCIOFG" */
#define NNCC_CU_IO_DEVICE 1u                                      /* = NNCC_TENSOR_DEVICE */

#define NNCC_CU_STR_(...) #__VA_ARGS__
#define NNCC_CU_STR(...) NNCC_CU_STR_(__VA_ARGS__)
#define NNCC_CU_TYPES_TEXT NNCC_CU_STR(NNCC_CU_TYPES)

/* Value of the postfix program at prog[at..] for dim values dims (floor
 * semantics for FLOORDIV/MOD, 0 for a zero divisor, wrapping arithmetic);
 * -1 when at < 0 or the program is malformed. */
static inline int64_t nncc_cu_eval(const int64_t *prog, int32_t nprog, int32_t at,
                                   const int64_t *dims, int32_t ndims) {
  int64_t st[32];
  int sp = 0;
  if (at < 0) return -1;
  for (int32_t i = at; i + 1 < nprog; i += 2) {
    int64_t op = prog[i], arg = prog[i + 1], x, y, r;
    if (op == NNCC_CU_END) return sp == 1 ? st[0] : -1;
    if (op == NNCC_CU_CONST || op == NNCC_CU_DIM) {
      if (sp >= 32) return -1;
      if (op == NNCC_CU_DIM && (arg < 0 || arg >= ndims || !dims)) return -1;
      st[sp++] = op == NNCC_CU_CONST ? arg : dims[arg];
      continue;
    }
    if (sp < 2) return -1;
    y = st[--sp];
    x = st[--sp];
    switch (op) {
    case NNCC_CU_ADD: r = (int64_t)((uint64_t)x + (uint64_t)y); break;
    case NNCC_CU_SUB: r = (int64_t)((uint64_t)x - (uint64_t)y); break;
    case NNCC_CU_MUL: r = (int64_t)((uint64_t)x * (uint64_t)y); break;
    case NNCC_CU_DIV: r = y == 0 || (x == INT64_MIN && y == -1) ? 0 : x / y; break;
    case NNCC_CU_FLOORDIV:
      if (y == 0 || (x == INT64_MIN && y == -1)) {
        r = 0;
        break;
      }
      r = x / y;
      if (x % y != 0 && ((x < 0) != (y < 0))) r--;
      break;
    case NNCC_CU_MOD:
      if (y == 0 || y == -1) {
        r = 0;
        break;
      }
      r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      break;
    case NNCC_CU_MIN: r = x < y ? x : y; break;
    case NNCC_CU_MAX: r = x > y ? x : y; break;
    default: return -1;
    }
    st[sp++] = r;
  }
  return -1;
}

/* Launch shape of kernel ki for dim values dims: grid and block sizes.
 * Kernels loop grid-stride, so a clamped grid is still correct; a size
 * whose program is -1 takes `fallback` blocks. */
static inline void nncc_cu_grid(const nncc_cu_table *t, int32_t ki, const int64_t *dims,
                                unsigned fallback, unsigned grid[3], unsigned block[3]) {
  const nncc_cu_kernel *k = &t->kernels[ki];
  int64_t g[3] = {1, 1, 1};
  unsigned b[3] = {1, 1, 1};
  if (k->form == NNCC_CU_PAR) {
    int64_t n = nncc_cu_eval(t->prog, t->nprog, k->trip, dims, t->nsyms);
    int64_t per = (int64_t)NNCC_CU_BLOCK * (k->vec > 1 ? k->vec : 1);
    g[0] = n < 0 ? (int64_t)fallback : (n + per - 1) / per;
    b[0] = NNCC_CU_BLOCK;
  } else if (k->form == NNCC_CU_ROW) {
    int64_t n = nncc_cu_eval(t->prog, t->nprog, k->trip, dims, t->nsyms);
    g[0] = n < 0 ? (int64_t)fallback : n;
    b[0] = k->threads >= 32 && k->threads <= 1024 ? (unsigned)k->threads : NNCC_CU_BLOCK;
  } else if (k->form == NNCC_CU_GEMM) {
    int64_t n = nncc_cu_eval(t->prog, t->nprog, k->n, dims, t->nsyms);
    int64_t m = nncc_cu_eval(t->prog, t->nprog, k->m, dims, t->nsyms);
    int64_t z = nncc_cu_eval(t->prog, t->nprog, k->trip, dims, t->nsyms);
    g[0] = n < 0 ? (int64_t)fallback : (n + NNCC_CU_TILE - 1) / NNCC_CU_TILE;
    g[1] = m < 0 ? (int64_t)fallback : (m + NNCC_CU_TILE - 1) / NNCC_CU_TILE;
    g[2] = z < 0 ? (int64_t)fallback : z;
    b[0] = b[1] = NNCC_CU_TILE;
  }
  for (int i = 0; i < 3; i++) {
    grid[i] = (unsigned)(g[i] < 1 ? 1 : g[i] > 65535 ? 65535 : g[i]);
    block[i] = b[i];
  }
}

#endif
