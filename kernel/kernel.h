/* kernel.h — the loop-nest form both backends print (DESIGN.md §2, §6).
 *
 * A scheduled op (or a fused group of ops) becomes one or more *kernels*.
 * A kernel is a small imperative program over int64 loop variables: nested
 * FOR loops, scalar temporaries, and STOREs of scalar expressions into
 * buffers, plus one coarse statement, GEMM, that each backend implements
 * with its own blocked microkernel or expands into loops. A *program* is
 * the list of steps (a kernel and the program buffers its slots are bound
 * to) that lower/ schedules from a graph and that a backend turns into
 * code: the LLVM backend into native code, the CUDA backend into CUDA C;
 * interp.c executes it directly (tests, and the reference for both).
 *
 * Sections, one per file:
 *   build.c   building kernels (expressions, statements)
 *   print.c   kernels and programs as text (--emit=kernels)
 *   verify.c  the checker (k_verify, kp_verify): ids, dtypes, loop bounds,
 *             constant indices against their buffers, slot counts against
 *             the target's limit
 *   expand.c  a KS_GEMM rewritten as a blocked loop nest, for targets with
 *             no native form for it
 *   interp.c  the reference interpreter, of one kernel and of a program
 *
 * Buffers are flat arrays of one dtype, indexed in elements. A kernel names
 * its buffers by slot (0..nbufs-1); the program binds slots to its buffers
 * (inputs, outputs, weights, workspace). All index arithmetic is int64; a
 * kernel never allocates memory.
 */
#ifndef NNCC_KERNEL_H
#define NNCC_KERNEL_H

#include "../ir/ir.h"
#include "../target/target.h"

/* Most slots any kernel has: the interpreter's and the schedule's binding
 * arrays are this long. A target may allow fewer (tg_target.max_slots). */
#define K_MAX_SLOTS 64

typedef int32_t kx_id; /* expression id in k->exprs; -1 = none */
typedef int32_t ks_id; /* statement id in k->stmts */

typedef enum kx_op {
  KX_CONST, /* i (integers, bools) or f (floats), of dtype */
  KX_VAR,   /* the current value of variable `var` (loop index or temp) */
  KX_LOAD,  /* buffer `buf` at element index a (an I64 expression) */
  /* unary, operand a */
  KX_NEG,
  KX_NOT,
  KX_ABS,
  KX_EXP,
  KX_LOG,
  KX_LOG1P,
  KX_SQRT,
  KX_RSQRT,
  KX_TANH,
  KX_ERF,
  KX_SIN,
  KX_COS,
  KX_FLOOR,
  KX_CEIL,
  KX_ROUND /* half to even */,
  KX_CAST, /* a converted to dtype (float→int truncates; →bool is != 0) */
  /* binary, operands a b, same dtype (result dtype = operands' dtype) */
  KX_ADD,
  KX_SUB,
  KX_MUL,
  KX_DIV /* ints: truncating */,
  KX_FLOORDIV,
  KX_MOD
  /* floor semantics like Python for ints and floats */,
  KX_MIN,
  KX_MAX,
  KX_POW,
  /* comparisons and logic: result dtype BOOL */
  KX_EQ,
  KX_NE,
  KX_LT,
  KX_LE,
  KX_GT,
  KX_GE,
  KX_AND,
  KX_OR,
  KX_SELECT, /* a (bool) ? b : c */
  KX_OP_COUNT
} kx_op;

/* How an operation's operands and result dtypes relate (k_op_class). */
typedef enum kx_class {
  KXC_LEAF,    /* CONST, VAR, LOAD */
  KXC_UNARY,   /* one operand of the result's dtype: NEG ... ROUND */
  KXC_NOT,     /* BOOL from an operand of any dtype */
  KXC_CAST,    /* an operand of any dtype converted to the result's */
  KXC_ARITH,   /* two operands of the result's dtype: ADD ... POW */
  KXC_COMPARE, /* BOOL from two operands of one dtype: EQ ... GE */
  KXC_LOGIC,   /* BOOL from two operands of any dtypes: AND, OR */
  KXC_SELECT,  /* a condition of any dtype, two arms of the result's dtype */
  KXC_INVALID, /* not an operation */
} kx_class;

typedef struct kx {
  kx_op op;
  nn_dtype dtype; /* result type */
  kx_id a, b, c;  /* operands, -1 when unused */
  int64_t i;      /* CONST of an integer/bool dtype */
  double f;       /* CONST of a float dtype */
  int32_t var;    /* VAR */
  int32_t buf;    /* LOAD */
} kx;

typedef enum ks_kind {
  KS_FOR,   /* for var in [lo, hi): body */
  KS_LET,   /* var = val (declares or overwrites a scalar temporary) */
  KS_STORE, /* buf[idx] = val */
  KS_IF,    /* if cond: body (else: els) */
  KS_GEMM,  /* see ks_gemm */
  KS_CHECK, /* a run-time check (where PyTorch raises): when cond (BOOL) is
               false, the run fails with check `var` (kp_program.checks),
               naming the I64 values val (the offending value, e.g. an
               index) and idx (the size it was checked against). buf is the
               kernel's status slot (kernel.status_slot): the first failure
               of a run, of any thread, is recorded there atomically as
               [0] = check + 1, [1] = val, [2] = idx; later ones are
               dropped. Execution goes on: the code after a check must be
               safe for any value (indices stay clamped) */
} ks_kind;

/* FOR flags. */
enum {
  KS_PARALLEL = 1 << 0, /* iterations are independent; the backend may split
                           them across threads (used on the outermost loop) */
  KS_VECTOR = 1 << 1,   /* iterations are independent and the innermost
                           loop: vectorize */
  KS_REDUCE = 1 << 2,   /* carries a reduction through a LET variable */
};

/* C[c_off + m*ldc + n] (= or +=) alpha * sum_k A[a_off + m*a_rs + k*a_cs] *
 * B[b_off + k*b_rs + n*b_cs] (+ beta-scaled bias[bias_off + n*bias_cs +
 * m*bias_rs]) for m < M, n < N. Offsets, sizes and strides are I64
 * expressions of the kernel: constants when the shapes are static (the
 * usual case, which backends specialize on), expressions over the run's
 * dim values (lower/: kl_dimx) when a dim is symbolic. Offsets may use variables of
 * loops around the GEMM (a batch, conv groups); sizes and strides never
 * do. C is F32; A, B and the bias are F32, or, on a target with a native
 * 16-bit GEMM (tg_target.gemm_f16 / gemm_bf16; lowering expands such GEMMs
 * for the others), F16/BF16, widened to f32 as they are loaded, the
 * products summed in f32. */
/* B of a convolution's GEMM described as the im2col of its input image
 * (ks_gemm.im2col), for backends that pack B straight from the image
 * instead of reading the materialized im2col buffer:
 *   B[kk, n] = x[x_off + ci*H*W + ih*W + iw]  when 0 <= ih < H, 0 <= iw < W,
 *              else 0,
 * with kk = (ci*kh + i)*kw + j, n0 + n = oh*wout + ow, ih = oh*sh - ph +
 * i*dh, iw = ow*sw - pw + j*dw. The GEMM's own B operand (b, b_off,
 * strides) still names that buffer, and the kernel writing it is marked
 * kernel.im2col_b, so a backend may ignore this description. f32 only. */
typedef struct ks_im2col {
  int32_t x;                              /* slot of the image */
  kx_id x_off;                            /* offset of the group's first input
                                             channel (may use loop variables) */
  kx_id n0;                               /* output position of B's column 0 */
  kx_id h, w, wout;                       /* input height, width; output width
                                             (never loop variables) */
  int64_t kh, kw, sh, sw, ph, pw, dh, dw; /* kernel size, stride, padding,
                                             dilation */
} ks_im2col;

typedef struct ks_gemm {
  int32_t a, b, c;           /* buffer slots */
  kx_id a_off, b_off, c_off; /* element offsets (I64 expressions) */
  kx_id m, n, k;             /* sizes (I64 expressions, >= 0 at run time) */
  kx_id a_rs, a_cs;          /* A strides (row = m, col = k) */
  kx_id b_rs, b_cs;          /* B strides (row = k, col = n) */
  kx_id ldc;                 /* C row stride (column stride 1) */
  float alpha;               /* scale of the product */
  int32_t bias;              /* buffer slot of a bias, or -1 */
  kx_id bias_off;            /* its offset */
  kx_id bias_rs, bias_cs;    /* bias strides over m and n (constant 0 =
                                broadcast) */
  float beta;                /* scale of the bias */
  bool accumulate;           /* C += ... instead of C = ... */
  bool b_is_weight;          /* B is a compile-time constant (may be packed;
                                its sizes and strides are then constants) */
  /* Panel layouts of operands packed at compile time (weights), for
   * backends whose microkernel reads them as contiguous streams. 0 (the
   * zeroed default): the strides above. P > 0: the operand is stored in
   * panels of P rows of A (a_panel) or P columns of B (b_panel), each
   * panel K elements deep, the last one zero-padded:
   *   A[m, k] at a_off + (m / P)*P*K + k*P + m % P   (a_rs, a_cs unused)
   *   B[k, n] at b_off + (n / P)*P*K + k*P + n % P   (b_rs, b_cs unused)
   * K is then a constant. */
  int32_t a_panel, b_panel;
  /* Epilogue (fused groups, lower/fuse.c). When `epilogue` is set, the
   * value v defined above for C[m, n] (after the last K block) is not
   * stored as is: the F32 variable ep_acc is set to v, the I64 variable
   * ep_idx to c_off + m*ldc + n, and the F32 expression ep (over those
   * variables, loads of other buffers, constants and variables defined
   * around the GEMM) is stored instead. ep never loads C. A zeroed ks_gemm
   * has no epilogue. */
  bool epilogue;           /* apply ep */
  kx_id ep;                /* the stored value */
  int32_t ep_acc, ep_idx;  /* its input variables */
  const ks_im2col *im2col; /* B as an image's im2col (see ks_im2col), or
                              NULL (the zeroed default) */
} ks_gemm;

typedef struct ks {
  ks_kind kind;
  int32_t var;    /* FOR, LET */
  kx_id lo, hi;   /* FOR bounds (I64) */
  unsigned flags; /* FOR: KS_* */
  ks_id *body;    /* FOR, IF: statements */
  int nbody;
  ks_id *els; /* IF: else statements */
  int nels;
  kx_id cond;     /* IF */
  int32_t buf;    /* STORE */
  kx_id idx, val; /* STORE index, value; LET value */
  ks_gemm gemm;   /* GEMM */
} ks;

typedef struct kbuf {
  nn_dtype dtype;   /* element type */
  bool written;     /* the kernel stores into it */
  int64_t elems;    /* elements the kernel may touch (for checks); -1
                       when the size depends on symbolic dims (the
                       interpreter then checks against the bound
                       program buffer's size at run time) */
  const char *name; /* for printing, e.g. "x", "out", "w" */
} kbuf;

typedef struct kernel {
  nn_arena *arena;
  const char *name;      /* e.g. "k12_convolution" (unique per program) */
  NN_VEC(kbuf) bufs;     /* slots */
  NN_VEC(nn_dtype) vars; /* variable types (loop vars are I64) */
  NN_VEC(kx) exprs;
  NN_VEC(ks) stmts;
  NN_VEC(ks_id) root;  /* top-level statements, in order */
  nn_loc loc;          /* source of the op, for profiling and errors */
  int32_t dims_slot;   /* the slot bound to the run's dim values (an I64
                         buffer, one element per symbol; kl_dimx creates
                         it on first use), -1 when the kernel has none */
  int32_t status_slot; /* the slot bound to the run's status block (KS_CHECK
                          writes it; kl_check creates it on first use), -1
                          when the kernel has no check */
  bool im2col_b;       /* the kernel only writes the im2col buffer that the
                         GEMMs of the next step read as B, and those GEMMs
                         carry ks_gemm.im2col: a backend that packs B from
                         the image may skip this kernel */
  /* building state (build.c): the FOR/IF statements not yet ended,
   * innermost last; an IF whose else branch is open is stored as -(id+1) */
  NN_VEC(ks_id) open;
} kernel;

/* ====================================================================== */
/* The program: steps over program buffers                                */
/* ====================================================================== */

/* The generated graph function of a CPU program has the C signature
 *   int nncc_graph_run(void *const *inputs, void *const *outputs,
 *                      unsigned char *workspace,
 *                      const unsigned char *weights, void *pool);
 * and each kernel function
 *   void kN(void *const *slots, int64_t begin, int64_t end);
 * When a kernel's root is a single KS_PARALLEL loop over [0, n) with a
 * constant n, the loop runs over [begin, end) and the graph function calls
 *   nncc_rt_parallel_for(pool, kN, slots, n)
 * (runtime/model_rt.c); otherwise kN is called once with (0, 1). */

typedef int32_t kp_bufid; /* program buffer id in kp_program.bufs */

typedef enum kp_bufkind {
  KP_BUF_INPUT,     /* graph input `index` (caller's memory, read only) */
  KP_BUF_OUTPUT,    /* graph output `index` (caller's memory) */
  KP_BUF_WEIGHT,    /* `offset` bytes into the weights blob (read only) */
  KP_BUF_WORKSPACE, /* `offset` bytes into the session's workspace */
  KP_BUF_DIMS,      /* the run's dim values: one int64 per program symbol
                       (kp_program.syms), read only */
  KP_BUF_STATUS,    /* the run's status block: KP_STATUS_WORDS int64, zero
                       before the run, written by KS_CHECK */
} kp_bufkind;

/* Words of the status block: [0] failed check + 1 (0: none), [1] the
 * offending value, [2] the size it was checked against; the rest pad it
 * to a cache line. */
#define KP_STATUS_WORDS 8

/* What a check tests (kp_check.kind), and so how its failure reads. */
typedef enum kp_check_kind {
  KP_CHECK_INDEX,      /* an index into a dim of size n must lie in [0, n) */
  KP_CHECK_INDEX_WRAP, /* ... in [-n, n) (negative ones count from the end) */
  KP_CHECK_CLASS,      /* a class value (one_hot) must lie in [0, n) */
} kp_check_kind;

/* A run-time check of the program (KS_CHECK names it by position). */
typedef struct kp_check {
  kp_check_kind kind;
  const char *op;    /* the IR op, "embedding" */
  const char *what;  /* the tensor holding the checked values: the graph
                        input's name, else the value's name, else "index" */
  int32_t dim;       /* the dim indexed, -1 when it goes unsaid */
  nn_loc loc;        /* the op's source */
  const char *scope; /* the op's module path, "" at the root */
} kp_check;

typedef struct kp_buf {
  kp_bufkind kind;
  nn_dtype dtype;  /* element type */
  int64_t elems;   /* element count; -1 when it depends on symbolic dims */
  ir_dim elems_d;  /* element count as a dim of the graph (always set) */
  int32_t index;   /* INPUT/OUTPUT: which */
  uint64_t offset; /* WEIGHT/WORKSPACE: byte offset, a multiple of 64 */
} kp_buf;

typedef struct kp_step {
  kernel *k;       /* the kernel */
  kp_bufid *slots; /* program buffer bound to each kernel slot */
  ir_nodeid node;  /* the IR node it came from */
} kp_step;

typedef struct kp_io {
  const char *name; /* forward() parameter name, or "output_N" */
  nn_dtype dtype;
  int rank;
  const int64_t *dims;  /* -1 for a symbolic dim */
  const ir_dim *dims_d; /* the dims as dims of the graph */
} kp_io;

/* A symbolic dim of the inputs: its value comes from the input tensors at
 * run time and must lie in [lo, hi]. */
typedef struct kp_sym {
  const char *name; /* e.g. "b" */
  ir_dim dim;       /* its IR_DK_SYM dim */
  int64_t lo, hi;   /* declared range (1..INT64_MAX when none) */
} kp_sym;

/* A workspace buffer of a dynamic program, planned at run time. */
typedef struct kp_dynblock {
  kp_bufid buf;  /* the workspace buffer (its elems_d and dtype) */
  int32_t first; /* first step binding it */
  int32_t last;  /* last step binding it */
} kp_dynblock;

typedef struct kp_program {
  nn_arena *arena;
  ir_graph *g;              /* the graph it was scheduled from */
  const tg_target *target;  /* the target it was lowered for (NULL for a
                               program built by hand: a backend then uses
                               the descriptor of what it compiles for) */
  NN_VEC(kp_buf) bufs;      /* by kp_bufid */
  NN_VEC(kp_step) steps;    /* in execution order */
  NN_VEC(kp_io) inputs;     /* graph inputs */
  NN_VEC(kp_io) outputs;    /* graph outputs */
  NN_VEC(kp_sym) syms;      /* symbolic dims, in dims-buffer order */
  kp_bufid dims_buf;        /* the KP_BUF_DIMS buffer, -1 if no symbol */
  kp_bufid status_buf;      /* the KP_BUF_STATUS buffer, -1 if no check */
  NN_VEC(kp_check) checks;  /* the run-time checks (KS_CHECK) */
  uint64_t workspace_bytes; /* session workspace size (the arena); 0
                               for a dynamic program */
  bool dynamic;             /* some dim is symbolic: workspace offsets
                               are planned at run time (dynblocks) */
  NN_VEC(kp_dynblock)
  dynblocks;                        /* dynamic: every workspace buffer a step
                                       binds, with its live step range */
  uint64_t arena_lower_bound_bytes; /* max live workspace bytes at any step */
  uint64_t naive_bytes;             /* every workspace buffer in its own region */
  NN_VEC(unsigned char) weights;    /* the weights blob (parts 64-aligned) */
} kp_program;

/* ---- build.c -------------------------------------------------------------- */

kernel *k_new(nn_arena *a, const char *name);
int32_t k_buf(kernel *k, nn_dtype dt, int64_t elems, bool written, const char *name);
int32_t k_var(kernel *k, nn_dtype dt);
kx_id k_const_i(kernel *k, nn_dtype dt, int64_t v);
kx_id k_const_f(kernel *k, nn_dtype dt, double v);
kx_id k_i64(kernel *k, int64_t v); /* I64 constant */
kx_id k_varref(kernel *k, int32_t var);
kx_id k_load(kernel *k, int32_t buf, kx_id idx);
kx_id k_un(kernel *k, kx_op op, kx_id a);
kx_id k_bin(kernel *k, kx_op op, kx_id a, kx_id b); /* folds I64 constants */
kx_id k_select(kernel *k, kx_id c, kx_id a, kx_id b);
kx_id k_cast(kernel *k, nn_dtype dt, kx_id a); /* no-op when already dt */
/* Statements are appended to the innermost open block: the root, or the
 * body of the last k_for_begin/k_if_begin not yet ended. */
int32_t k_for_begin(kernel *k, kx_id lo, kx_id hi, unsigned flags); /* returns the loop var */
void k_for_end(kernel *k);
void k_if_begin(kernel *k, kx_id cond);
void k_else(kernel *k);
void k_if_end(kernel *k);
void k_let(kernel *k, int32_t var, kx_id val);
void k_store(kernel *k, int32_t buf, kx_id idx, kx_id val);
void k_gemm(kernel *k, const ks_gemm *g);
/* A KS_CHECK: when ok is false, check `check` fails with the I64 values
 * val and size, recorded in status slot `status`. */
void k_check(kernel *k, kx_id ok, kx_id val, kx_id size, int32_t status, int32_t check);
/* The class of op (KXC_INVALID for a value that is no kx_op). */
kx_class k_op_class(kx_op op);
/* True and *v set when e is an I64 constant of k. */
bool k_const_i64(const kernel *k, kx_id e, int64_t *v);
/* A fresh I64 variable set to e here; returns the variable. */
int32_t k_let_i64(kernel *k, kx_id e);
/* e itself when it is a constant, else a fresh variable set to it here
 * (a size over the run's dims, read once rather than in every iteration). */
kx_id k_hoist(kernel *k, kx_id e);
/* An integer wrapped to the range of dtype dt (two's complement), bool to
 * 0/1: what storing it in a dt buffer keeps. */
int64_t k_wrap_int(nn_dtype dt, int64_t v);

/* Shorthands of k_bin for index arithmetic (and k_f32 for f32 constants). */
static inline kx_id k_add(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_ADD, a, b); }
static inline kx_id k_sub(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_SUB, a, b); }
static inline kx_id k_mul(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_MUL, a, b); }
static inline kx_id k_muli(kernel *k, kx_id a, int64_t c) { return k_mul(k, a, k_i64(k, c)); }
static inline kx_id k_min(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_MIN, a, b); }
static inline kx_id k_max(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_MAX, a, b); }
static inline kx_id k_f32(kernel *k, double v) { return k_const_f(k, NN_DT_F32, v); }
/* a // b, and ceil(a / b) for a >= 0, b > 0 (numbers fold) */
static inline kx_id k_fdiv(kernel *k, kx_id a, kx_id b) { return k_bin(k, KX_FLOORDIV, a, b); }
static inline kx_id k_cdiv(kernel *k, kx_id a, kx_id b) {
  return k_fdiv(k, k_add(k, a, k_sub(k, b, k_i64(k, 1))), b);
}

/* ---- print.c -------------------------------------------------------------- */

/* A kernel as readable pseudo-code (tests, --emit=kernels). */
void k_print(nn_buf *b, const kernel *k);
/* A program: buffers, then each step's bindings and kernel. */
void kp_print(nn_buf *b, const kp_program *p);

/* ---- verify.c ------------------------------------------------------------- */

/* Checks that k is well formed (verify.c has the list: ids, dtypes, GEMMs,
 * at most max_slots slots) and, with `ranges`, that every index whose
 * interval is known lies inside its slot. Returns 0, or -1 after reporting
 * the first problem at the kernel's location. */
int k_verify(const kernel *k, int max_slots, bool ranges, nn_diag *d);
/* Checks a program's buffers and every step's bindings (each slot bound to
 * a buffer of its dtype and size, no written slot bound to an input or a
 * weight); 0 or -1 after reporting. */
int kp_verify_bindings(const kp_program *p, nn_diag *d);
/* kp_verify_bindings, then k_verify (ranges included) of every distinct
 * kernel against the program's target's slot limit (K_MAX_SLOTS without a
 * target). */
int kp_verify(const kp_program *p, nn_diag *d);

/* ---- expand.c ------------------------------------------------------------- */

/* Rewrites every KS_GEMM of k, in place, into an equivalent blocked loop
 * nest with tiling t (for targets without a native form of that GEMM):
 * macro tiles of C (the outermost loop; KS_PARALLEL when the GEMM was k's
 * only root statement), K blocks, mr-row register tiles whose innermost
 * loop is a KS_VECTOR loop of constant trip count over nr contiguous
 * columns of C and B (with a symbolic N, the column tail's loop runs
 * N % nr times; with a symbolic M, the row tail is done a row at a time).
 * C itself is the accumulator. Symbolic sizes and strides are read once
 * per macro tile, into variables. Uses new variables; k must be complete
 * (no open block). */
void k_expand_gemms(kernel *k, const tg_expand *t);

/* ---- interp.c ------------------------------------------------------------- */

/* Runs a kernel with slot pointers bufs[0..nbufs). Returns 0, or -1 on an
 * out-of-bounds access (checked against kbuf.elems; a slot whose elems is
 * -1 is checked against elems[slot] when elems is not NULL, else not at
 * all). */
int k_interp(const kernel *k, void *const *bufs);
int k_interp_sized(const kernel *k, void *const *bufs, const int64_t *elems);
/* Runs a static program: inputs/outputs are contiguous arrays in graph
 * order. Returns 0, -1 (an access out of bounds) or 1 (a run-time check
 * failed). */
int kp_interp(const kp_program *p, void *const *inputs, void *const *outputs);
/* The same for a dynamic program, with dims[i] the value of p->syms[i]
 * (the caller checks them against the inputs): plans the workspace for
 * these values, then interprets with bounds checks. */
int kp_interp_dims(const kp_program *p, const int64_t *dims, void *const *inputs,
                   void *const *outputs);
/* kp_interp_dims with the run's status block (KP_STATUS_WORDS words,
 * zeroed first; may be NULL): on 1, status[0] - 1 is the failed check of
 * p->checks, status[1] the offending value, status[2] the size. */
int kp_interp_status(const kp_program *p, const int64_t *dims, void *const *inputs,
                     void *const *outputs, int64_t *status);
/* The value of dim d of p's graph when p->syms[i] is dims[i] (floor
 * semantics for // and %; 0 for division by zero); *ok false when d is
 * unknown or names no program symbol. */
int64_t kp_dim_eval(const kp_program *p, ir_dim d, const int64_t *dims, bool *ok);

#endif
