/* nncc.h — the public C API for running models compiled by nncc.
 *
 * A compiled model is a shared object (model.so) made by
 * `nncc MODEL.pt -o model.so`. This API loads it, describes its inputs and
 * outputs, and runs it:
 *
 *   nncc_model *m; nncc_session *s; char *err = NULL;
 *   if (nncc_model_open("model.so", &m, &err) != NNCC_OK) { ...; nncc_free_message(err); }
 *   nncc_session_create(m, 0, &s, &err);        // 0 = one thread per core
 *   nncc_tensor in = {x_data, NNCC_DTYPE_F32, 4, x_dims, 0};
 *   nncc_tensor out = {y_data, NNCC_DTYPE_F32, 2, y_dims, 0};
 *   nncc_session_run(s, &in, 1, &out, 1, &err);
 *   nncc_session_destroy(s); nncc_model_close(m);
 *
 * Conventions (as in LLVM-C):
 * - Handles are opaque. Every *_open / *_create has one *_close / *_destroy.
 * - Functions that can fail return an nncc_status and, when `err` is not
 *   NULL, store a malloc'd message in *err on failure (NULL on success);
 *   free it with nncc_free_message(). Nothing in this API aborts or exits
 *   on bad input.
 * - Enum values are numbered explicitly and never change meaning; new values
 *   are only appended.
 * - Tensors are contiguous, row-major (C order), in host memory, owned by
 *   the caller. Outputs are allocated by the caller with the size that
 *   nncc_model_output() describes.
 *
 * Threads: an nncc_model is immutable after nncc_model_open and may be used
 * from any number of threads at once. An nncc_session owns its workspace and
 * thread pool and is used by one thread at a time; run as many sessions
 * concurrently as you like (one per thread is the usual pattern). A call on
 * a session that another thread is using fails at once with NNCC_ERR_BUSY
 * (nothing is corrupted, nothing waits).
 *
 * Link with libnncc_runtime (and -ldl -lpthread on older C libraries).
 */
#ifndef NNCC_H
#define NNCC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes (numbered; never reorder) ------------------------------ */

typedef enum nncc_status {
  NNCC_OK = 0,
  NNCC_ERR_INVALID_ARG = 1,     /* a NULL handle/pointer, an index out of range */
  NNCC_ERR_IO = 2,              /* a file can't be opened, read or written */
  NNCC_ERR_LOAD = 3,            /* dlopen failed, or the file is no nncc model */
  NNCC_ERR_ABI = 4,             /* the model was built for another ABI version */
  NNCC_ERR_UNSUPPORTED_CPU = 5, /* this CPU lacks a feature the model needs (for a
                                   CUDA model: no usable driver or GPU) */
  NNCC_ERR_ARITY = 6,           /* wrong number of inputs or outputs */
  NNCC_ERR_DTYPE = 7,           /* a tensor's dtype differs from the model's */
  NNCC_ERR_SHAPE = 8,           /* a tensor's rank or a dim differs */
  NNCC_ERR_OUT_OF_MEMORY = 9,   /* an allocation or a thread creation failed */
  NNCC_ERR_RUNTIME = 10,        /* the model's code reported a failure */
  NNCC_ERR_FORMAT = 11,         /* a malformed or unsupported file (.npy) */
  NNCC_ERR_BUSY = 12,           /* the session is in use by another thread */
  NNCC_ERR_INPUT_VALUE = 13,    /* an input's values are invalid where PyTorch
                                   raises: an index out of range, a size that
                                   doesn't divide, ... (the message names the
                                   op, its source line and the value) */
} nncc_status;

/* "ok", "invalid argument", ...; never NULL (unknown codes give "unknown
 * status"). The string is static. */
const char *nncc_status_string(nncc_status s);

/* Frees a message returned through an `err` out-parameter (NULL is fine). */
void nncc_free_message(char *message);

/* The runtime library's version, e.g. "0.1.0". Static string. */
const char *nncc_version(void);

/* ---- element types (numbered; never reorder) ----------------------------- */

typedef enum nncc_dtype {
  NNCC_DTYPE_UNKNOWN = 0,
  NNCC_DTYPE_F32 = 1,
  NNCC_DTYPE_F16 = 2,
  NNCC_DTYPE_BF16 = 3,
  NNCC_DTYPE_F64 = 4,
  NNCC_DTYPE_I64 = 5,
  NNCC_DTYPE_I32 = 6,
  NNCC_DTYPE_I16 = 7,
  NNCC_DTYPE_I8 = 8,
  NNCC_DTYPE_U8 = 9,
  NNCC_DTYPE_BOOL = 10, /* one byte, 0 or 1 */
} nncc_dtype;

/* Bytes per element (0 for an unknown dtype). */
size_t nncc_dtype_size(nncc_dtype t);
/* "f32", "f16", "bf16", "f64", "i64", "i32", "i16", "i8", "u8", "bool";
 * "?" for an unknown dtype. Static string. */
const char *nncc_dtype_name(nncc_dtype t);

/* ---- tensors --------------------------------------------------------------- */

/* The largest rank a tensor may have. */
#define NNCC_MAX_RANK 16

/* nncc_tensor.flags */
enum {
  NNCC_TENSOR_HOST = 0,        /* data is host memory */
  NNCC_TENSOR_DEVICE = 1 << 0, /* data is CUDA device memory (a CUdeviceptr
                                  cast to void *) of the device the session
                                  runs on; only for models compiled with
                                  --target cuda. Other bits must be 0. */
};

/* A contiguous row-major tensor. The struct and everything it points to
 * belong to the caller; nncc never keeps the pointers past the call. */
typedef struct nncc_tensor {
  void *data;          /* first element */
  nncc_dtype dtype;    /* element type */
  int32_t rank;        /* number of dims, 0..NNCC_MAX_RANK (0 = scalar) */
  const int64_t *dims; /* rank sizes (may be NULL when rank is 0) */
  uint32_t flags;      /* NNCC_TENSOR_*; 0 for host memory */
} nncc_tensor;

/* Element count of t (1 for a scalar); 0 when t is NULL. */
int64_t nncc_tensor_elems(const nncc_tensor *t);

/* ---- models ------------------------------------------------------------------ */

typedef struct nncc_model nncc_model;

/* Describes one input or output. The pointers stay valid until the model is
 * closed. A dim is >= 0, or -1 for a dim chosen at run time (a model
 * compiled with symbolic dims; see "symbolic dims" below). */
typedef struct nncc_io_info {
  const char *name;    /* forward() parameter name, or "output_N" */
  nncc_dtype dtype;    /* element type */
  int32_t rank;        /* number of dims */
  const int64_t *dims; /* rank sizes */
} nncc_io_info;

/* Loads a compiled model. On success *model is a new handle (close it with
 * nncc_model_close).
 *
 * Before anything of the file is mapped executable, the file is checked
 * from a read-only mapping: an ELF shared object for this machine whose
 * segments and sections all lie within the file, and, for a model made by
 * an nncc that seals its output (every current one), whose size and
 * checksum match the record nncc appended. A cut, padded or altered file
 * fails with NNCC_ERR_LOAD and a message that says so: "can't load
 * 'm.so': truncated (expected 946176 bytes, found 20480)" or "... corrupted
 * (its contents don't match the checksum ...)". The checksum reads the
 * whole file once (about 8 ms per 100 MB on one core, split over up to 8
 * threads); NNCC_OPEN_NO_VERIFY skips it.
 *
 * Other failures: NNCC_ERR_LOAD (no such file, not a shared object, not an
 * nncc model, malformed description), NNCC_ERR_ABI (built for another ABI
 * version) or NNCC_ERR_UNSUPPORTED_CPU (the message names the missing CPU
 * features).
 *
 * Replacing a deployed model: write the new file next to the old one and
 * rename() it over the old one (`mv`, `install`; nncc itself writes its
 * output that way). Processes that have the old file open keep it; new
 * opens get the new one. Never overwrite a model.so in place (`cp new.so
 * model.so`, a download into the same path): a process that has it loaded
 * can die of SIGBUS when its pages change or disappear under it. */
nncc_status nncc_model_open(const char *path, nncc_model **model, char **err);
/* Opens a model only to describe it (nncc inspect): the same checks, then
 * the description is read from the file's metadata blob, bounds-checked;
 * the file is never loaded, mapped executable or run (nothing of its
 * code, constructors included, executes). A model this machine can't run
 * (missing CPU features, no CUDA GPU, another architecture) still opens;
 * nncc_model_unusable says why. Sessions can't be created from it
 * (NNCC_ERR_UNSUPPORTED_CPU when it is unusable, else
 * NNCC_ERR_INVALID_ARG); the other accessors work as for an opened model.
 * Models made before nncc sealed its output are found through their
 * symbol table (a stripped one can't be described). */
nncc_status nncc_model_describe(const char *path, nncc_model **model, char **err);

/* nncc_model_open_ex flags */
enum {
  NNCC_OPEN_DESCRIBE = 1 << 0,  /* nncc_model_describe */
  NNCC_OPEN_NO_VERIFY = 1 << 1, /* skip the checksum (for files verified
                                   elsewhere); the size and ELF structure
                                   are still checked */
};
/* nncc_model_open (flags 0) or nncc_model_describe (NNCC_OPEN_DESCRIBE),
 * with flags. Unknown flag bits give NNCC_ERR_INVALID_ARG. */
nncc_status nncc_model_open_ex(const char *path, uint32_t flags, nncc_model **model, char **err);
/* Why this machine can't run the model (opened by nncc_model_describe), or
 * NULL when it can. Owned by the model. */
const char *nncc_model_unusable(const nncc_model *model);
/* Closes the handle. The model is unloaded when its last session is
 * destroyed (at once when it has none); the handle must not be used after
 * this call. NULL is fine. */
void nncc_model_close(nncc_model *model);

/* Counts of inputs and outputs (0 for a NULL model). */
int32_t nncc_model_num_inputs(const nncc_model *model);
int32_t nncc_model_num_outputs(const nncc_model *model);
/* Describes input/output i. NNCC_ERR_INVALID_ARG for a bad index or NULL. */
nncc_status nncc_model_input(const nncc_model *model, int32_t i, nncc_io_info *info);
nncc_status nncc_model_output(const nncc_model *model, int32_t i, nncc_io_info *info);

/* Strings recorded at compile time; owned by the model, valid until it is
 * closed; "" when absent or for a NULL model. */
const char *nncc_model_compiler(const nncc_model *model);  /* "nncc 0.1.0 (LLVM 14.0.6)" */
const char *nncc_model_name(const nncc_model *model);      /* e.g. "model_jit" */
const char *nncc_model_target(const nncc_model *model);    /* "cpu" */
const char *nncc_model_cpu(const nncc_model *model);       /* e.g. "skylake" */
const char *nncc_model_features(const nncc_model *model);  /* "+avx2,+fma,..." */
const char *nncc_model_precision(const nncc_model *model); /* "f32", "f16", "bf16" */
/* Distinct compiled kernels (CPU functions or CUDA kernels) of the model;
 * 0 for a NULL model. */
int32_t nncc_model_num_kernels(const nncc_model *model);
/* Run-time checks the model's code makes where PyTorch raises on the
 * values of a tensor (an index out of range: see nncc_session_run); 0 for
 * a model compiled with --no-runtime-checks, by an nncc without them, or
 * a NULL model. */
int32_t nncc_model_num_checks(const nncc_model *model);
/* Bytes of workspace each session allocates; bytes of embedded weights. */
uint64_t nncc_model_workspace_bytes(const nncc_model *model);
uint64_t nncc_model_weights_bytes(const nncc_model *model);

/* ---- symbolic dims -------------------------------------------------------------
 *
 * A model compiled without fixed shapes (`nncc model.pt -o model.so`, or
 * --input x:f32[b=1..32,3,h,w]) has named dims ("symbols") whose values
 * come from the input tensors of each run: any value within the symbol's
 * range, the same value wherever a symbol appears. Output dims are
 * expressions of the symbols; ask for them (or for the workspace a run
 * needs) with the input shapes before running. */

typedef struct nncc_symbol_info {
  const char *name; /* e.g. "b" */
  int64_t min, max; /* allowed values, inclusive */
} nncc_symbol_info;

typedef struct nncc_dim_info {
  int64_t value;    /* the dim, or -1 when it is chosen at run time */
  const char *text; /* NULL for a number; else how it is written: a
                       symbol ("b") or an expression ("h//32") */
  int64_t min, max; /* the values it may take (a symbol's range; 1 and
                       INT64_MAX for an expression; value for a number) */
} nncc_dim_info;

/* The number of symbols (0 for a model whose shapes are all fixed). */
int32_t nncc_model_num_symbols(const nncc_model *model);
/* Describes symbol s (0 <= s < nncc_model_num_symbols). */
nncc_status nncc_model_symbol(const nncc_model *model, int32_t s, nncc_symbol_info *info);
/* Describes dim d of input i (outputs = 0) or output i (outputs = 1). */
nncc_status nncc_model_dim(const nncc_model *model, int outputs, int32_t i, int32_t d,
                           nncc_dim_info *info);
/* Checks the inputs' dtypes and shapes as nncc_session_run would (their
 * data may be NULL) and writes output o's dims into dims[0..rank). Errors:
 * NNCC_ERR_ARITY, NNCC_ERR_DTYPE, NNCC_ERR_SHAPE (a message naming the
 * input and dim: a dim outside its symbol's range, a symbol given two
 * values, a shape that makes some tensor empty). */
nncc_status nncc_model_output_dims(const nncc_model *model, const nncc_tensor *inputs,
                                   size_t ninputs, int32_t o, int64_t *dims, char **err);
/* The workspace bytes a run on inputs of these shapes needs (for a fixed
 * model, nncc_model_workspace_bytes). Same checks and errors as above. */
nncc_status nncc_model_workspace_size(const nncc_model *model, const nncc_tensor *inputs,
                                      size_t ninputs, uint64_t *bytes, char **err);

/* ---- sessions ---------------------------------------------------------------- */

typedef struct nncc_session nncc_session;

/* Creates a session: a workspace and a pool of nthreads threads (the calling
 * thread counts as one; nthreads <= 0 means one per online CPU). The
 * session keeps the model loaded until it is destroyed, even past
 * nncc_model_close. A model opened with nncc_model_describe has no code to
 * run: NNCC_ERR_INVALID_ARG (NNCC_ERR_UNSUPPORTED_CPU when it is unusable
 * here). */
nncc_status nncc_session_create(const nncc_model *model, int nthreads, nncc_session **session,
                                char **err);
/* Frees a session (NULL is fine). Not while a call on it is in progress
 * (the one use of a session from two threads that is not caught). */
void nncc_session_destroy(nncc_session *session);
/* The number of threads the session runs with (>= 1; 0 for NULL). */
int nncc_session_threads(const nncc_session *session);

/* Makes the session use caller memory as its workspace (64-byte aligned,
 * at least nncc_model_workspace_size bytes for the shapes it will run;
 * a run that needs more fails with NNCC_ERR_OUT_OF_MEMORY). mem NULL goes
 * back to memory the session manages. The memory must outlive its use. */
nncc_status nncc_session_set_workspace(nncc_session *session, void *mem, uint64_t bytes,
                                       char **err);

/* Runs the model once. inputs[0..ninputs) and outputs[0..noutputs) follow
 * the model's order; every count, dtype, rank and dim must equal the
 * model's (else NNCC_ERR_ARITY / NNCC_ERR_DTYPE / NNCC_ERR_SHAPE with a
 * message naming the tensor and the dim); for symbolic dims, the inputs
 * bind the symbols and the outputs must have the dims that follows
 * (nncc_model_output_dims). A session plans its workspace once per
 * distinct input shape and reuses it while the shape repeats. Output
 * memory is written, input memory only read: an output that shares memory
 * with an input or another output is refused (NNCC_ERR_INVALID_ARG).
 *
 * Where PyTorch raises on the values of the inputs (an index out of range
 * in embedding, gather, index_select, indexing, scatter or one_hot; a
 * reshape or a broadcast that the run's sizes don't allow), the run fails
 * with NNCC_ERR_INPUT_VALUE and a message naming the input, the value, the
 * op and its source line: "input_ids: index 1000000000 out of range
 * [-21128, 21128) in embedding (model.py:42)". Outputs are then
 * unspecified. Negative indices wrap exactly where PyTorch wraps them.
 *
 * Use a session from one thread at a time: a run, set_workspace or
 * set_profiling on a session that another thread is in returns
 * NNCC_ERR_BUSY at once. */
nncc_status nncc_session_run(nncc_session *session, const nncc_tensor *inputs, size_t ninputs,
                             const nncc_tensor *outputs, size_t noutputs, char **err);

/* ---- profiling -----------------------------------------------------------------
 *
 * A session can time every step of the model's program (one generated
 * kernel each: a fused group of IR ops) over its runs. Each step is named
 * by its kernel, the IR ops it computes, the module path of the layer and
 * the source line in the traced model's code. Profiling costs one clock
 * read per step while it is on, and nothing measurable while it is off.
 *
 * With NNCC_PROFILE=1 (any value but "" or "0") in the environment, every
 * session starts profiling when it is created and nncc_session_destroy
 * prints the sorted table (nncc_session_profile_report) to stderr. */

typedef struct nncc_profile_row {
  int32_t step;       /* position in the model's program, from 0 */
  const char *kernel; /* generated kernel, e.g. "k12_convolution" */
  const char *ops;    /* the IR ops it computes, e.g. "convolution+relu" */
  const char *scope;  /* module path of the layer, e.g. "layer1.0.conv1";
                         "" at the root or when unknown */
  const char *loc;    /* source "ENTRY:LINE" in the model's code; "" when
                         unknown */
  uint64_t ns;        /* wall time in the step over all profiled runs */
  double percent;     /* ns as a share of the sum over every step */
} nncc_profile_row;

/* Starts (on != 0) or stops timing the session's runs. Stopping keeps the
 * counts for nncc_session_profile; starting again adds to them. Fails
 * with NNCC_ERR_INVALID_ARG for a model compiled by an nncc without
 * profiling, NNCC_ERR_OUT_OF_MEMORY when the counters can't be had. */
nncc_status nncc_session_set_profiling(nncc_session *session, int on, char **err);
/* Zeroes the session's profile counts (whether or not it profiles). */
void nncc_session_profile_reset(nncc_session *session);
/* The profile so far: *nrows gets the number of steps; rows[0..min(cap,
 * *nrows)) get them sorted by time, the most first (equal times in program
 * order); *runs (may be NULL) the number of profiled runs and *run_ns
 * (may be NULL) their total wall time inside nncc_session_run. The
 * strings belong to the model. Call with cap 0 for the count.
 * NNCC_ERR_INVALID_ARG for a NULL session or nrows. */
nncc_status nncc_session_profile(const nncc_session *session, nncc_profile_row *rows, int32_t cap,
                                 int32_t *nrows, uint64_t *runs, uint64_t *run_ns);
/* The profile as a table, as NNCC_PROFILE=1 prints it: a header line
 * (model, runs, threads, time per run), then one line per step with its
 * time per run, %, cumulative %, step, kernel, ops, scope and source.
 * A malloc'd string (free with nncc_free_message); NULL for a NULL session
 * or when out of memory. */
char *nncc_session_profile_report(const nncc_session *session);

/* ---- .npy files (NumPy format 1.0/2.0/3.0, little-endian, C order) ---------- */

/* Reads a .npy file into one malloc'd block holding the nncc_tensor, its dims
 * and its data (64-byte aligned); free it with nncc_tensor_free. Supported
 * dtypes: f32 f64 f16 i64 i32 i16 i8 u8 bool. NNCC_ERR_IO when the file
 * can't be read, NNCC_ERR_FORMAT when it is malformed or unsupported
 * (Fortran order, big-endian, another dtype). */
nncc_status nncc_npy_read(const char *path, nncc_tensor **tensor, char **err);
/* The same from bytes in memory (the bytes are copied). */
nncc_status nncc_npy_parse(const void *bytes, size_t size, nncc_tensor **tensor, char **err);
/* Writes t as a .npy file (format 1.0, the header NumPy's np.save writes).
 * NNCC_ERR_FORMAT for a dtype .npy can't hold (bf16). */
nncc_status nncc_npy_write(const char *path, const nncc_tensor *t, char **err);
/* Frees a tensor made by nncc_npy_read/parse or nncc_tensor_alloc (NULL is
 * fine). */
void nncc_tensor_free(nncc_tensor *t);
/* Allocates a zeroed tensor (struct, dims and 64-byte aligned data in one
 * block) shaped like info; NULL when out of memory or info is invalid. */
nncc_tensor *nncc_tensor_alloc(nncc_dtype dtype, int32_t rank, const int64_t *dims);

#ifdef __cplusplus
}
#endif

#endif
