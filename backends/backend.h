/* backend.h — from a shaped graph to a model.so.
 *
 * Sections, one per file:
 *   schedule.c        graph → be_program: storage for every tensor value
 *                     (views share their input's buffer), weights laid out
 *                     in one 64-byte-aligned blob, every node lowered to
 *                     kernels (kernel.h) in program order
 *   memplan.c         workspace planning: live ranges of workspace buffers
 *                     over the steps, offsets packed into one arena
 *   llvm/llvm_*.c     be_program → LLVM module (one function per kernel plus
 *                     nncc_graph_run), optimized for the target, emitted as
 *                     an object file
 *   artifact.c        object + weights + metadata + the model runtime →
 *                     model.so, linked with the system C compiler
 *
 * The generated graph function has the C signature
 *   int nncc_graph_run(void *const *inputs, void *const *outputs,
 *                      unsigned char *workspace,
 *                      const unsigned char *weights, void *pool);
 * and each kernel function
 *   void kN(void *const *slots, int64_t begin, int64_t end);
 * When a kernel's root is a single KS_PARALLEL loop over [0, n) with a
 * constant n, the loop runs over [begin, end) and the graph function calls
 *   nncc_rt_parallel_for(pool, kN, slots, n)
 * (runtime/model_rt.c); otherwise kN is called once with (0, 1).
 */
#ifndef NNCC_BACKEND_H
#define NNCC_BACKEND_H

#include "kernel.h"
#include "../runtime/plan.h"

typedef enum be_bufkind {
  BE_BUF_INPUT,     /* graph input `index` (caller's memory, read only) */
  BE_BUF_OUTPUT,    /* graph output `index` (caller's memory) */
  BE_BUF_WEIGHT,    /* `offset` bytes into the weights blob (read only) */
  BE_BUF_WORKSPACE, /* `offset` bytes into the session's workspace */
  BE_BUF_DIMS,      /* the run's dim values: one int64 per program symbol
                       (be_program.syms), read only */
} be_bufkind;

typedef struct be_buf {
  be_bufkind kind;
  nn_dtype dtype;  /* element type */
  int64_t elems;   /* element count; -1 when it depends on symbolic dims */
  ir_dim elems_d;  /* element count as a dim of the graph (always set) */
  int32_t index;   /* INPUT/OUTPUT: which */
  uint64_t offset; /* WEIGHT/WORKSPACE: byte offset, a multiple of 64 */
} be_buf;

typedef struct be_step {
  kernel *k;       /* the kernel */
  be_bufid *slots; /* program buffer bound to each kernel slot */
  ir_nodeid node;  /* the IR node it came from */
} be_step;

typedef struct be_io {
  const char *name; /* forward() parameter name, or "output_N" */
  nn_dtype dtype;
  int rank;
  const int64_t *dims;  /* -1 for a symbolic dim */
  const ir_dim *dims_d; /* the dims as dims of the graph */
} be_io;

/* A symbolic dim of the inputs: its value comes from the input tensors at
 * run time and must lie in [lo, hi]. */
typedef struct be_sym {
  const char *name; /* e.g. "b" */
  ir_dim dim;       /* its IR_DK_SYM dim */
  int64_t lo, hi;   /* declared range (1..INT64_MAX when none) */
} be_sym;

/* A workspace buffer of a dynamic program, planned at run time. */
typedef struct be_dynblock {
  be_bufid buf;  /* the workspace buffer (its elems_d and dtype) */
  int32_t first; /* first step binding it */
  int32_t last;  /* last step binding it */
} be_dynblock;

typedef struct be_program {
  nn_arena *arena;
  ir_graph *g;              /* the graph it was scheduled from */
  NN_VEC(be_buf) bufs;      /* by be_bufid */
  NN_VEC(be_step) steps;    /* in execution order */
  NN_VEC(be_io) inputs;     /* graph inputs */
  NN_VEC(be_io) outputs;    /* graph outputs */
  NN_VEC(be_sym) syms;      /* symbolic dims, in dims-buffer order */
  be_bufid dims_buf;        /* the BE_BUF_DIMS buffer, -1 if no symbol */
  uint64_t workspace_bytes; /* session workspace size (the arena); 0
                               for a dynamic program */
  bool dynamic;             /* some dim is symbolic: workspace offsets
                               are planned at run time (dynblocks) */
  NN_VEC(be_dynblock)
  dynblocks;                        /* dynamic: every workspace buffer a step
                                       binds, with its live step range */
  uint64_t arena_lower_bound_bytes; /* max live workspace bytes at any step */
  uint64_t naive_bytes;             /* every workspace buffer in its own region */
  NN_VEC(unsigned char) weights;    /* the weights blob (parts 64-aligned) */
} be_program;

/* Schedules a shaped graph (every tensor dim constant). Returns NULL after
 * reporting errors (e.g. an op with no code generation yet). */
be_program *be_schedule(ir_graph *g, nn_arena *arena, nn_diag *d);
/* The same for a given backend (be_target): be_schedule is
 * be_schedule_for(g, arena, BE_TARGET_CPU, d). */
be_program *be_schedule_for(ir_graph *g, nn_arena *arena, be_target target, nn_diag *d);
/* Human-readable dump: buffers, then each step's kernel (--emit=kernels). */
void be_program_print(nn_buf *b, const be_program *p);
/* Runs a program with the reference interpreter (tests): inputs/outputs are
 * contiguous arrays in graph order. Returns 0 or -1. */
int be_interp(const be_program *p, void *const *inputs, void *const *outputs);
/* The same for a dynamic program, with dims[i] the value of p->syms[i]
 * (the caller checks them against the inputs): plans the workspace for
 * these values, then interprets with bounds checks. */
int be_interp_dims(const be_program *p, const int64_t *dims, void *const *inputs,
                   void *const *outputs);
/* The value of dim d of p's graph when p->syms[i] is dims[i] (floor
 * semantics for // and %; 0 for division by zero); *ok false when d is
 * unknown or names no program symbol. */
int64_t be_dim_eval(const be_program *p, ir_dim d, const int64_t *dims, bool *ok);

/* ---- memplan.c ---------------------------------------------------------- */

/* The placement core (mp_block, mp_assign, mp_lower_bound) is
 * runtime/plan.h, shared with the model runtime. */
/* Plans the workspace of a scheduled program: every BE_BUF_WORKSPACE buffer
 * lives from the first step that binds it to the last (a buffer no later
 * step reads dies at its writer; a node's scratch dies with the node);
 * buffers no step binds are placed at offset 0. Sets every workspace
 * buffer's offset, workspace_bytes (the arena), arena_lower_bound_bytes and
 * naive_bytes. */
void be_memplan(be_program *p);
/* True when no two workspace buffers bound in overlapping step ranges share
 * a byte and every workspace buffer lies inside workspace_bytes (tests and
 * an internal check after planning). */
bool be_memplan_ok(const be_program *p);

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

/* Generates and optimizes the module, then emits an object. want_ir keeps
 * the optimized IR text too. Returns 0 or -1 after reporting. */
int llvm_compile(const be_program *p, const llvm_opts *o, bool want_ir, llvm_result *r, nn_diag *d);
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
int artifact_link(const be_program *p, const llvm_result *r, const artifact_opts *o, nn_diag *d);

#endif
