/* abi.h — the contract between a model.so and the code that loads it.
 *
 * A model.so made by nncc holds four parts (backends/artifact.c links them):
 *   1. the generated code (an LLVM object) defining
 *        int nncc_graph_run(void *const *inputs, void *const *outputs,
 *                           unsigned char *workspace,
 *                           const unsigned char *weights, void *pool,
 *                           const int64_t *dims, const int64_t *offsets,
 *                           int64_t *status);
 *      which returns 0 on success, and calling nncc_rt_parallel_for below;
 *      before each step s it calls nncc_rt_prof_mark(s), and once more
 *      with the step count before returning, but only when
 *      nncc_rt_profiling (read once per call) is not zero;
 *      dims (one value per symbol) and offsets (workspace byte offset of
 *      each program buffer, planned per shape) are read only by models
 *      with symbolic dims, and may be NULL for the others; status is the
 *      run's status block (kernel.h KP_STATUS_WORDS int64, zeroed by the
 *      caller), where run-time checks record the first failure (read only
 *      by models with checks: the metadata lists them);
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
 *   (format version 5 and later; version 4 blobs end here)
 *   u32      number of run-time checks, then per check (kernel.h kp_check;
 *            a failed one is reported by its position): u8 kind (0: an
 *            index valid in [0, n), 1: in [-n, n), 2: a class value valid in
 *            [0, n)), i32 the dim indexed (-1 when unsaid), str the op
 *            ("embedding"), str the tensor checked ("input_ids"), str the
 *            op's module scope, str its source location ("ENTRY:LINE")
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
#define NNCC_META_VERSION 5
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
  /* ---- run-time checks (metadata version 5; absent before: struct_size) */
  int32_t nrtchecks; /* checks the code makes where PyTorch raises */
  /* After run or run_dims returned NNCC_RT_CHECK_FAILED: what failed, as
   * "input_ids: index 7 out of range [0, 5) in embedding at emb
   * (model.py:3)", into msg[0..cap). */
  void (*check_message)(void *session, char *msg, size_t cap);
} nncc_model_desc;

/* What run and run_dims return when a run-time check failed (the outputs
 * are then unspecified). */
#define NNCC_RT_CHECK_FAILED (-3)
/* int64 words of a run's status block (= kernel.h KP_STATUS_WORDS). */
#define NNCC_STATUS_WORDS 8

typedef const nncc_model_desc *(*nncc_model_entry_fn)(void);

/* ---- meta.c: the metadata blob, parsed ------------------------------------
 * Shared by the model runtime in every model.so and by the runtime library
 * (which describes a model.so from its bytes, without loading it). */

/* One dim expression. */
typedef struct ab_expr {
  const char *text; /* as printed by nncc */
  uint8_t kind;     /* 0 const, 1 symbol, 2 add, 3 mul, 4 div, 5 floordiv, 6 mod */
  int64_t c;        /* const: the value; symbol: its index */
  uint32_t a, b;    /* operands (earlier expressions) */
} ab_expr;

/* A workspace buffer planned per shape. */
typedef struct ab_block {
  uint32_t buf, esize, elems, first, last;
} ab_block;

/* A run-time check (format version 5). */
typedef struct ab_rtcheck {
  uint8_t kind;      /* 0 index [0, n), 1 index [-n, n), 2 class [0, n) */
  int32_t dim;       /* -1 when unsaid */
  const char *op;    /* "embedding" */
  const char *what;  /* "input_ids" */
  const char *scope; /* "" at the root */
  const char *loc;   /* "ENTRY:LINE", "" when unknown */
} ab_rtcheck;

/* A parsed blob: the descriptor's data fields (its functions are the
 * reader's to fill) and what the descriptor doesn't hold. */
typedef struct ab_meta {
  nncc_model_desc desc;
  nncc_model_sym *syms;
  ab_expr *exprs;
  uint32_t nexprs;
  uint32_t *checks; /* expressions that must be >= 1 */
  uint32_t nchecks;
  uint32_t *guards;       /* pairs of expressions that must be equal */
  const char **guard_loc; /* where each was assumed */
  uint32_t nguards;
  uint32_t nbufs;
  ab_block *blocks;
  uint32_t nblocks;
  const int64_t *dims_base; /* the descriptor's io dims array */
  int64_t *enc;             /* the io dims as written (same layout) */
  int32_t nio_dims;         /* entries of both */
  ab_rtcheck *rtchecks;     /* run-time checks, by position */
  uint32_t nrtchecks;
  void *block; /* the one allocation behind it all */
} ab_meta;

/* Parses blob[0..len); 0, or -1 (malformed, or out of memory) with *m
 * zeroed. Free with ab_meta_free. */
int ab_meta_parse(const unsigned char *blob, size_t len, ab_meta *m);
void ab_meta_free(ab_meta *m);
/* Every expression's value for these symbol values (floor semantics for
 * // and %, 0 for a zero divisor, wrapping arithmetic: checks catch
 * nonsense) into out[0..nexprs). */
void ab_meta_eval(const ab_meta *m, const int64_t *values, int64_t *out);
/* The descriptor's bind, io_dims, dim_text (see nncc_model_desc). */
int ab_meta_bind(const ab_meta *m, const int64_t *const *input_dims, int64_t *values, char *msg,
                 size_t cap);
void ab_meta_io_dims(const ab_meta *m, int outputs, int32_t i, const int64_t *values,
                     int64_t *dims);
const char *ab_meta_dim_text(const ab_meta *m, int outputs, int32_t i, int32_t d);
/* The message of a failed run-time check from a run's status block (kernel.h
 * KP_STATUS_WORDS: [0] check + 1, [1] value, [2] size): "input_ids: index
 * 1000000000 out of range [0, 21128) in embedding at bert.embeddings
 * (bert/code/__torch__.py:42)". 0, or -1 (and a generic message) when the
 * check isn't in the table. */
int ab_meta_check_message(const ab_meta *m, const int64_t *status, char *msg, size_t cap);
/* Plans the workspace for these values: offs[buf] for every planned buffer
 * (offs may be NULL). Returns the arena bytes, UINT64_MAX when a size
 * overflows or memory is short. */
uint64_t ab_meta_plan(const ab_meta *m, const int64_t *values, int64_t *offs);

/* ---- cpu.c: the CPU check ------------------------------------------------ */

/* 0 when the running CPU has every feature of `features` (LLVM's list,
 * "+avx2,+fma,...") that can be tested; otherwise -1 with "this CPU lacks
 * avx512f, avx512bw (the model was compiled for CPU 'cpu')" in msg. */
int ab_cpu_check(const char *features, const char *cpu, char *msg, size_t cap);

/* ---- seal.c: checking a model.so before anything maps it executable -------
 *
 * nncc appends an integrity record (the seal) to every model.so it links,
 * and records the file's final size in an ELF note near its start:
 *
 *   ELF note (section .note.nncc, in the first loadable segment):
 *     name "NNCC", type NNCC_NOTE_SEAL, desc: u64 the file's total size
 *     (trailer included), u64 zero
 *   trailer (the last NNCC_SEAL_BYTES bytes, all little-endian):
 *     char[8] "NNCCSEAL", u32 version (1), u32 trailer bytes (64),
 *     u64 body bytes (the file before the trailer), u64 ab_hash_image of
 *     the body, u64 file offset of the metadata blob, u64 its bytes,
 *     u64 zero, u64 ab_hash of the trailer's first 56 bytes
 *
 * The note survives most truncations (it sits in the first 4 KiB), so a
 * cut file says how long it should be; the trailer's own hash tells a
 * damaged trailer from a file without one. ELF loaders ignore bytes past
 * the last section, so a sealed file is an ordinary shared object. Files
 * made before the seal existed have neither and are checked structurally
 * only. */
#define NNCC_SEAL_MAGIC "NNCCSEAL"
#define NNCC_SEAL_VERSION 1
#define NNCC_SEAL_BYTES 64
#define NNCC_NOTE_NAME "NNCC"
#define NNCC_NOTE_SEAL 1

/* A 64-bit hash of p[0..n) (not cryptographic: it detects damage, not
 * tampering). The same value on every machine. */
uint64_t ab_hash(const void *data, size_t n, uint64_t seed);
/* Tests only (not thread-safe): makes ab_hash use one code path,
 * "portable", "sse2" or "avx2" (NULL: the best this CPU runs). -1 when
 * this build or CPU lacks it. */
int ab_hash_use(const char *impl);
/* The hash a seal records: ab_hash over 4 MiB chunks, combined, computed
 * on up to `threads` threads (<= 1: the caller's only). */
uint64_t ab_hash_image(const unsigned char *p, size_t n, int threads);

typedef enum ab_verdict {
  AB_OK = 0,
  AB_NOT_ELF,   /* not a 64-bit little-endian ELF shared object */
  AB_FOREIGN,   /* an ELF shared object for another machine */
  AB_TRUNCATED, /* shorter than it says it is */
  AB_CORRUPTED, /* the seal doesn't match, or the ELF structure is broken */
} ab_verdict;

/* What ab_image_check learned about a file. */
typedef struct ab_image {
  int sealed;        /* it has a valid seal (checked, unless AB_SKIP_HASH) */
  uint64_t body;     /* bytes of the ELF part (the file without its trailer) */
  uint64_t meta_off; /* file range of the metadata blob (the seal's record, */
  uint64_t meta_len; /* or the nncc_meta symbols of .symtab); 0, 0 if unknown */
  uint16_t machine;  /* e_machine */
} ab_image;

enum {
  AB_SKIP_HASH = 1 << 0,   /* don't hash the body (the caller verifies elsewhere) */
  AB_ANY_MACHINE = 1 << 1, /* accept an ELF for another machine (describing) */
};

/* Checks file bytes p[0..size) as nncc_model_open must before dlopen: an
 * ELF shared object for this machine whose headers, segments and sections
 * lie within the file, and, when it is sealed, whose size and hash match
 * the seal. Reads nothing outside p[0..size). AB_OK, or the verdict with
 * a sentence in msg ("truncated (expected 946176 bytes, found 1024)"). */
ab_verdict ab_image_check(const unsigned char *p, size_t size, unsigned flags, ab_image *out,
                          char *msg, size_t cap);
/* 0 when ELF machine `machine` is this one; else -1 and "compiled for
 * aarch64; this machine is x86-64" in msg. */
int ab_machine_check(uint16_t machine, char *msg, size_t cap);
/* Seals the linked model.so open (read-write) as fd: writes the size into
 * its note, appends the trailer and syncs it to disk. 0, or -1 with msg. */
int ab_seal_fd(int fd, char *msg, size_t cap);

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
