/* abi.h — the contract between a model.so and the code that loads it.
 *
 * A model.so made by nncc holds four parts (backends/artifact.c links them):
 *   1. the generated code (an LLVM object) defining
 *        int nncc_graph_run(void *const *inputs, void *const *outputs,
 *                           unsigned char *workspace,
 *                           const unsigned char *weights, void *pool,
 *                           const int64_t *dims, const int64_t *offsets);
 *      which returns 0 on success, and calling nncc_rt_parallel_for below;
 *      before each step s it calls nncc_rt_prof_mark(s), and once more
 *      with the step count before returning, but only when
 *      nncc_rt_profiling (read once per call) is not zero;
 *      dims (one value per symbol) and offsets (workspace byte offset of
 *      each program buffer, planned per shape) are read only by models
 *      with symbolic dims, and may be NULL for the others;
 *   2. a data object: the weights blob (symbol nncc_weights, 64-byte
 *      aligned, read only) and the metadata blob (nncc_meta .. nncc_meta_end,
 *      format below);
 *   3. the model runtime (runtime/model_rt.c + runtime/pool.c), compiled
 *      once when nncc is built and embedded in the nncc binary;
 *   4. nothing else: it needs only libc, libm, libpthread (and libdl).
 * Exactly one symbol is exported:
 *        const nncc_model_desc *nncc_model_v1(void);
 * It returns the model's description (parsed from the metadata blob once,
 * thread-safely), or NULL when the metadata blob is malformed. The
 * description lives until the .so is unloaded.
 *
 * The runtime library (runtime/loader.c, session.c) only talks to a model
 * through this descriptor, so a model.so keeps working with newer runtimes
 * as long as NNCC_ABI_VERSION does not change. Rules for changing it: new
 * fields are appended to nncc_model_desc (struct_size tells which exist);
 * a change to the meaning of an existing field bumps NNCC_ABI_VERSION and
 * the entry point name (nncc_model_v2).
 *
 * Metadata blob (all integers little-endian; "str" = u32 length + that many
 * bytes, no NUL; the blob is 8-byte aligned in the .so):
 *   char[8]  magic "NNCCMETA"
 *   u32      format version (NNCC_META_VERSION)
 *   u32      total blob length in bytes, header included
 *   str      compiler        e.g. "nncc 0.1.0 (LLVM 14.0.6)"
 *   str      model name      e.g. "model_jit"
 *   str      target          "cpu"
 *   str      cpu             the LLVM CPU name the code was tuned for
 *   str      features        LLVM target features, "+avx2,+fma,..."
 *   u64      workspace bytes per session (0 for a model with symbols)
 *   u64      weights bytes
 *   u32      number of symbols, then per symbol: str name, i64 lo, i64 hi
 *   u32      number of dim expressions, then per expression (each may use
 *            only earlier ones): str text (as nncc prints the dim), u8 kind,
 *            then for kind 0 (constant) i64 value; 1 (symbol) u32 symbol;
 *            2 add, 3 mul, 4 exact div, 5 floor div, 6 floor mod: u32 a,
 *            u32 b (expression indices)
 *   u32      number of inputs, then per input:  io
 *   u32      number of outputs, then per output: io
 *   u32      number of checked dims, then that many u32 expressions that
 *            must be >= 1 for a run to be allowed (every symbolic dim of
 *            every tensor in the program)
 *   u32      number of guards, then per guard: u32 a, u32 b (expressions
 *            that must be equal for a run to be allowed), str the source
 *            location of the op that assumed it
 *   u32      number of program buffers (0 for a static model)
 *   u32      number of planned blocks, then per block: u32 buffer, u32
 *            element size, u32 element-count expression, u32 first step,
 *            u32 last step (the workspace buffers, planned per shape)
 *   (format version 3 and later; version 2 blobs end here)
 *   u32      number of steps of the graph function, then per step, in
 *            execution order: str kernel name ("k12_convolution"), str the
 *            IR ops it computes joined by '+' ("convolution+relu"), str the
 *            module scope of its first op ("layer1.0.conv1", "" at the
 *            root), str the op's source location ("ENTRY:LINE", "" when
 *            unknown) — the rows of a run-time profile
 *   (format version 4 and later; version 3 blobs end here)
 *   str      precision       "f32", "f16" or "bf16": --precision
 *   u32      number of distinct compiled kernels (CPU functions or CUDA
 *            kernels; steps may share one)
 * where io = str name, u32 dtype (nncc_dtype numbering), u32 rank (<= 16),
 * then rank × i64 dims: a dim >= 0 is that number, a dim < 0 is the
 * expression -1 - dim.
 */
#ifndef NNCC_ABI_H
#define NNCC_ABI_H

#include <stddef.h>
#include <stdint.h>

#define NNCC_ABI_VERSION 1
#define NNCC_META_MAGIC "NNCCMETA"
#define NNCC_META_VERSION 4
#define NNCC_META_MAX_RANK 16
#define NNCC_ENTRY_SYMBOL "nncc_model_v1"

/* One input or output of the model. */
typedef struct nncc_model_io {
  const char *name;    /* NUL-terminated */
  int32_t dtype;       /* nncc_dtype / nn_dtype numbering */
  int32_t rank;        /* 0..NNCC_META_MAX_RANK */
  const int64_t *dims; /* rank sizes; -1 for a dim chosen at run time */
} nncc_model_io;

/* A symbolic dim of the inputs. */
typedef struct nncc_model_sym {
  const char *name; /* e.g. "b" */
  int64_t lo, hi;   /* the values a run may give it, inclusive */
} nncc_model_sym;

/* One step of the graph function, for profiles (metadata version 3). */
typedef struct nncc_model_step {
  const char *kernel; /* generated kernel name, "k12_convolution" */
  const char *ops;    /* IR ops it computes, "convolution+relu" */
  const char *scope;  /* module path of its first op, "" at the root */
  const char *loc;    /* source "ENTRY:LINE", "" when unknown */
} nncc_model_step;

/* What nncc_model_v1() returns. Every pointer lives until dlclose. */
typedef struct nncc_model_desc {
  uint32_t abi_version;     /* NNCC_ABI_VERSION */
  uint32_t struct_size;     /* sizeof(nncc_model_desc) of the model's build */
  const char *compiler;     /* the compiler's version string */
  const char *model_name;   /* from artifact_opts.model_name */
  const char *target;       /* "cpu" */
  const char *cpu;          /* LLVM CPU name */
  const char *features;     /* LLVM target features ("+avx2,+fma,...") */
  uint64_t workspace_bytes; /* per session */
  uint64_t weights_bytes;   /* size of the embedded weights blob */
  int32_t ninputs;          /* inputs[0..ninputs) */
  int32_t noutputs;         /* outputs[0..noutputs) */
  const nncc_model_io *inputs;
  const nncc_model_io *outputs;
  /* Returns 0 when this CPU has every feature in `features` that the model
   * runtime knows how to test; otherwise writes a message ("this CPU lacks
   * avx512f, avx512bw ...") into msg[0..cap) and returns -1. */
  int (*check_cpu)(char *msg, size_t cap);
  /* A new session: a 64-byte aligned workspace and a thread pool of
   * nthreads threads, the caller included (nthreads >= 1). NULL when out of
   * memory or a thread can't be started. */
  void *(*session_new)(int nthreads);
  void (*session_free)(void *session);
  /* Runs nncc_graph_run with the session's workspace and pool. inputs and
   * outputs are data pointers in the model's order, already validated by
   * the caller. Returns 0 or the graph function's non-zero status. */
  int (*run)(void *session, void *const *inputs, void *const *outputs);
  /* ---- symbolic dims (every model has these fields; nsyms is 0 for a
   * model whose shapes are all static, and then only run is needed) ---- */
  int32_t nsyms;
  const nncc_model_sym *syms;
  /* Binds the symbols from the inputs' dims (input_dims[i] holds input i's
   * rank dims, ranks already checked): every constant dim must match, every
   * symbol must get one value within its range, and every symbolic dim of
   * the program must come out >= 1. Fills values[0..nsyms) and returns 0,
   * or writes a message naming the input and dim into msg and returns -1. */
  int (*bind)(const int64_t *const *input_dims, int64_t *values, char *msg, size_t cap);
  /* The dims of input (outputs = 0) or output (outputs = 1) i for these
   * symbol values. */
  void (*io_dims)(int outputs, int32_t i, const int64_t *values, int64_t *dims);
  /* How dim d of input/output i is written ("b", "h//32", "3"). */
  const char *(*dim_text)(int outputs, int32_t i, int32_t d);
  /* Workspace bytes a run with these symbol values needs (the planned
   * arena); UINT64_MAX when it would not fit in memory. */
  uint64_t (*workspace_for)(const int64_t *values);
  /* Runs with bound symbol values (the plan is cached per distinct values).
   * Returns 0, -2 when the workspace can't be had (allocation failed, or a
   * caller-provided one is too small), or the graph function's status. */
  int (*run_dims)(void *session, const int64_t *values, void *const *inputs, void *const *outputs);
  /* Makes the session use caller memory (64-byte aligned, `bytes` long)
   * as its workspace from now on; NULL returns to session-owned memory.
   * Returns 0, or -1 when mem is misaligned. */
  int (*set_workspace)(void *session, void *mem, uint64_t bytes);
  /* ---- profiling (absent from models built before it: struct_size) ---- */
  int32_t nsteps;               /* steps of the graph function */
  const nncc_model_step *steps; /* steps[0..nsteps) */
  /* From the next run on, every run of the session adds each step's wall
   * time in nanoseconds to ns[0..nsteps) (caller memory, used until
   * profiling is turned off); ns NULL turns profiling off. */
  void (*set_profile)(void *session, uint64_t *ns);
  /* ---- metadata version 4 (absent from older models: struct_size) ---- */
  const char *precision; /* "f32", "f16", "bf16"; NULL when unknown */
  int32_t nkernels;      /* distinct compiled kernels; 0 unknown */
} nncc_model_desc;

typedef const nncc_model_desc *(*nncc_model_entry_fn)(void);

/* ---- inside model.so: the generated code's view of the runtime ----------- */

/* A kernel: processes iterations [begin, end) of its parallel loop. */
typedef void (*nncc_rt_kernel_fn)(void *const *slots, int64_t begin, int64_t end);

/* Runs fn over [0, n): splits the range into min(n, threads) contiguous
 * chunks, one per pool thread (the caller runs the first), and returns when
 * all are done. With a NULL pool, one thread or n <= 1 it calls fn(slots, 0,
 * n) directly. A pool is used by one thread at a time. (runtime/pool.c) */
void nncc_rt_parallel_for(void *pool, nncc_rt_kernel_fn fn, void *const *slots, int64_t n);

/* Profiling hooks (model_rt.c). nncc_rt_profiling counts the sessions of
 * this model.so that profile; while it is 0 the graph function makes no
 * call. nncc_rt_prof_mark(s) ends step s - 1 (s > 0) and starts step s
 * of the session running on the calling thread; it does nothing when that
 * session doesn't profile. */
extern int nncc_rt_profiling;
void nncc_rt_prof_mark(int32_t step);

typedef struct rt_pool rt_pool;
/* A pool of nthreads threads counting the caller (nthreads - 1 workers are
 * started); NULL when a thread can't be started or memory is short. */
rt_pool *rt_pool_new(int nthreads);
void rt_pool_free(rt_pool *p);

/* ---- the embedded model runtime (generated when nncc is built) ----------- */

/* The relocatable object of model_rt.c + pool.c, linked into every model.so
 * by artifact.c. Defined in a file generated by runtime/CMakeLists.txt. */
extern const unsigned char nncc_embedded_model_rt[];
extern const size_t nncc_embedded_model_rt_size;

/* The relocatable object of model_rt_cuda.c (the device half of a CUDA
 * model.so), linked in by backends/cuda/cuda_artifact.c for --target cuda
 * only. Also generated by runtime/CMakeLists.txt. */
extern const unsigned char nncc_embedded_model_rt_cuda[];
extern const size_t nncc_embedded_model_rt_cuda_size;

#endif
