/* kernel.h — the loop-nest form every backend lowers (DESIGN.md §6).
 *
 * A scheduled op (or, once fusion exists, a fused group) becomes one or more
 * *kernels*. A kernel is a small imperative program over int64 loop
 * variables: nested FOR loops, scalar temporaries, and STOREs of scalar
 * expressions into buffers, plus one coarse statement, GEMM, that each
 * backend implements with its own blocked microkernel. The LLVM backend
 * turns this form into LLVM IR; the CUDA backend will print it as CUDA C;
 * kernel_interp.c executes it directly (tests, and a reference for both).
 *
 * Sections, one per file:
 *   kernel.c        building kernels (expressions, statements), printing
 *   kernel_ops.c    IR node → kernels, per op family (elementwise, broadcast,
 *                   injective, reductions, pooling, normalization, ...)
 *   kernel_gemm.c   IR node → kernels for gemm-like ops (linear, matmul,
 *                   addmm, bmm, convolution through im2col, Winograd or
 *                   directly),
 *                   with an optional elementwise epilogue
 *   kernel_fuse.c   a fused group of IR nodes → kernels
 *   kernel_interp.c the reference interpreter
 *
 * Buffers are flat arrays of one dtype, indexed in elements. A kernel names
 * its buffers by slot (0..nbufs-1); the schedule binds slots to the graph's
 * storage (inputs, outputs, weights, workspace). All index arithmetic is
 * int64; a kernel never allocates memory.
 */
#ifndef NNCC_KERNEL_H
#define NNCC_KERNEL_H

#include "../ir/ir.h"

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
 * dim values (kl_dimx) when a dim is symbolic. Offsets may use variables of
 * loops around the GEMM (a batch, conv groups); sizes and strides never
 * do. C is F32; A, B and the bias are F32, or (CUDA target only: the
 * CPU target expands such GEMMs when lowering them) F16/BF16, widened to
 * f32 as they are loaded, the products summed in f32. */
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
  /* Epilogue (fused groups, kernel_fuse.c). When `epilogue` is set, the
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
  NN_VEC(ks_id) root; /* top-level statements, in order */
  nn_loc loc;         /* source of the op, for profiling and errors */
  int32_t dims_slot;  /* the slot bound to the run's dim values (an I64
                         buffer, one element per symbol; kl_dimx creates
                         it on first use), -1 when the kernel has none */
  bool im2col_b;      /* the kernel only writes the im2col buffer that the
                         GEMMs of the next step read as B, and those GEMMs
                         carry ks_gemm.im2col: a backend that packs B from
                         the image may skip this kernel */
  /* building state (kernel.c): the FOR/IF statements not yet ended,
   * innermost last; an IF whose else branch is open is stored as -(id+1) */
  NN_VEC(ks_id) open;
} kernel;

/* ---- kernel.c: building ------------------------------------------------- */

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
/* Prints a kernel as readable pseudo-code (tests, --emit=kernels). */
void k_print(nn_buf *b, const kernel *k);

/* ---- kernel_ops.c / kernel_gemm.c: lowering IR nodes ---------------------- */

/* What a node's lowering needs to know and may ask for. The schedule fills
 * the value→slot mapping: `slot_of(v)` returns which *program buffer* holds
 * value v; the lowering creates kernels whose buffer slots it binds with
 * kl_bind(). Shapes are the node's static types (every dim constant). */
typedef struct kl_ctx kl_ctx;

/* A program buffer id (graph-level storage), see backend.h. */
typedef int32_t be_bufid;

/* The backend a program is lowered for (be_schedule_for). Lowerings give
 * every backend the same semantics; they only keep a statement native
 * where that backend has a form for it: CUDA takes KS_GEMMs over 16-bit
 * operands (tensor cores), which the CPU backend gets expanded. */
typedef enum be_target {
  BE_TARGET_CPU,  /* the LLVM backend (the default) */
  BE_TARGET_CUDA, /* the CUDA backend (backends/cuda/) */
} be_target;

/* Creates a kernel for the node being lowered and registers it in order. */
kernel *kl_kernel(kl_ctx *c, const char *what);
/* Binds kernel slot `slot` to program buffer b. Every slot must be bound. */
void kl_bind(kl_ctx *c, kernel *k, int32_t slot, be_bufid b);
/* The program buffer holding tensor value v (input, weight, workspace...). */
be_bufid kl_value_buf(kl_ctx *c, ir_value v);
/* A fresh workspace buffer of `elems` elements, live for this node only. */
be_bufid kl_scratch(kl_ctx *c, nn_dtype dt, int64_t elems);
/* A new compile-time constant buffer (e.g. a pre-packed weight): the bytes
 * are copied into the weights blob. */
be_bufid kl_const_buf(kl_ctx *c, nn_dtype dt, const void *data, int64_t elems);
/* The bytes of a weight value (for compile-time packing), or NULL. */
const void *kl_weight_data(kl_ctx *c, ir_value v);
ir_graph *kl_graph(kl_ctx *c);
nn_arena *kl_arena(kl_ctx *c);
nn_diag *kl_diag(kl_ctx *c);

/* Static shape of a tensor value: fills dims (up to 16) and returns rank, or
 * -1 after reporting an error when a dim is not constant. Lowerings that
 * handle symbolic dims use kl_shape_d instead. */
int kl_shape(kl_ctx *c, ir_value v, int64_t *dims);

/* ---- symbolic sizes ------------------------------------------------------
 * A lowering computes sizes, strides and trip counts as ir_dim values (the
 * graph's hash-consed dim expressions, ir.h): constants when the shape is
 * static, polynomials/floor-divisions over the inputs' named dims ("b",
 * "s") otherwise. Arithmetic goes through ir_dim_add/_sub/_mul/_floordiv/
 * _mod (which fold constants, so a static model lowers exactly as with
 * int64 arithmetic); equality is id equality (d1 == d2), and
 * kl_dim_const() tells whether a dim is a known number. Only where a dim
 * enters the kernel does it become an expression: kl_dimx(c, k, d) gives a
 * constant for a constant dim, else arithmetic over loads of the run's dim
 * values (one I64 slot per kernel, bound to the program's dims buffer). */
/* Shape of a tensor value (any dims): fills dims (up to 16) and returns
 * the rank, or -1 after reporting (not a tensor, unknown rank or dim). */
int kl_shape_d(kl_ctx *c, ir_value v, ir_dim *dims);
/* d as an I64 expression of kernel k. */
kx_id kl_dimx(kl_ctx *c, kernel *k, ir_dim d);
/* The dim holding the number v (ir_dim_const of the graph). */
ir_dim kl_d(kl_ctx *c, int64_t v);
/* True and *v set when d is a known number. */
bool kl_dim_const(kl_ctx *c, ir_dim d, int64_t *v);
/* Whether dims a and b are the same dim, or shape inference assumed them
 * equal and recorded a guard that the runtime checks before every run (a
 * flattened conv output with symbolic H, W meeting a linear layer's fixed
 * features). A lowering may then use either; prefer the constant one. */
bool kl_dims_agree(kl_ctx *c, ir_dim a, ir_dim b);
/* A workspace buffer of `elems` elements (kl_scratch for any dim). */
be_bufid kl_scratch_d(kl_ctx *c, nn_dtype dt, ir_dim elems);

/* Lowers node n (any op whose fusion class is not META or VIEW) into kernels
 * that write its result(s) into kl_value_buf(out). Returns 0, or -1 after
 * reporting a located error ("code generation for op X is not supported").
 * Dispatches to the family lowerings below. */
int kl_lower_node(kl_ctx *c, ir_nodeid n);
/* Families (kernel_ops.c, kernel_gemm.c); return 1 if they handled the op,
 * 0 if not theirs, -1 on error. */
int kl_lower_elementwise(kl_ctx *c, ir_nodeid id);
int kl_lower_gemm(kl_ctx *c, ir_nodeid n);
/* kernel_gemm.c: rewrites every KS_GEMM of k, in place, into an equivalent
 * blocked loop nest (for backends without a native GEMM microkernel):
 * macro tiles of C (the outermost loop; KS_PARALLEL when the GEMM was k's
 * only root statement), K blocks, MR-row register tiles whose innermost
 * loop is a KS_VECTOR loop of constant trip count over contiguous columns
 * of C and B (with a symbolic N, the column tail's loop runs N % NR times;
 * with a symbolic M, the row tail is done a row at a time). C itself is
 * the accumulator. Symbolic sizes and strides are read once per macro
 * tile, into variables. With constant sizes the result is the same as
 * ever. Uses new variables; k must be complete (no open block). */
void k_expand_gemms(kernel *k);
/* Writes piece `piece` of a chunk/split/unbind node into program buffer
 * dst (kernel_ops.c; the schedule calls it where the list is unpacked).
 * Returns 0 or -1 after reporting. */
int kl_lower_piece(kl_ctx *c, ir_nodeid split_node, int piece, be_bufid dst);
/* The node being lowered. */
ir_nodeid kl_node(kl_ctx *c);
/* The backend the program is lowered for. */
be_target kl_target(kl_ctx *c);

/* ---- kernel_fuse.c: fused groups (passes/fuse.c decides them) ------------- */

/* Lowers the fused group nodes[0..n) (program order; the members of one
 * ir_node.group, verified by ir_verify) into kernels that write only the
 * last member's result; no other member's result gets storage.
 *  - elementwise/broadcast groups: ONE kernel, a loop nest over the
 *    result's shape (a flat loop when every operand has that shape or one
 *    element), each external operand loaded with its broadcast index, each
 *    member computed by kl_scalar_op in order;
 *  - a gemm-like first member: its own kernels (im2col, GEMM) with the
 *    other members as the GEMM's epilogue (kl_lower_gemm_ep).
 * A group whose members have no scalar form (tril, arange), or operands
 * the scalar form does not take, is lowered member by member instead.
 * Returns 0, or -1 after reporting. */
int kl_lower_group(kl_ctx *c, const ir_nodeid *nodes, int n);

/* kernel_ops.c: the scalar form of elementwise and broadcast ops, used by
 * their own kernels and by fused groups alike. */
/* Fills which[] (at most 4) with the node operand indices that node id
 * reads as elements and returns their count, or -1 when it has no scalar
 * form (not elementwise/broadcast, or index math such as tril, arange). */
int kl_scalar_operands(kl_ctx *c, ir_nodeid id, int *which);
/* A constant number as an element (i64, f64 or bool), or -1 when c is not
 * a number. */
kx_id kl_scalar_const(kernel *k, const ir_const *c);
/* The result element of node id, cast to its result dtype, built in k from
 * vals[i] = the element of operand which[i] in that operand's dtype (-1
 * for a none operand). Returns -1 after reporting an error. */
kx_id kl_scalar_op(kl_ctx *c, kernel *k, ir_nodeid id, const kx_id *vals);

/* kernel_gemm.c: a gemm-like node lowered with an epilogue. */
typedef struct kl_epilogue {
  be_bufid out;     /* the buffer written instead of the node's result */
  const char *name; /* kernel name suffix, e.g. "add_relu" */
  /* Builds, in kernel k, the F32 value stored at element idx (an I64
   * expression, the flat index into `out`) from the node's own F32 result
   * acc, binding the slots it loads; -1 after reporting an error. Called
   * once per kernel that writes `out`. */
  kx_id (*build)(void *ctx, kernel *k, kx_id acc, kx_id idx);
  void *ctx; /* build's first argument */
} kl_epilogue;
/* Lowers gemm-like node n so that each element of its result goes through
 * ep before it is stored into ep->out (the GEMM's C, or the direct
 * depthwise convolution's output). `out` must not share memory with any
 * buffer the epilogue loads: C is the accumulator across K blocks. build
 * creates expressions and slots only, never statements. Returns 1, 0 when
 * n is not an op kernel_gemm.c lowers (nothing emitted), or -1 after
 * reporting. */
int kl_lower_gemm_ep(kl_ctx *c, ir_nodeid n, const kl_epilogue *ep);

/* ---- kernel_interp.c ------------------------------------------------------ */

/* Runs a kernel with slot pointers bufs[0..nbufs). Returns 0, or -1 on an
 * out-of-bounds access (checked against kbuf.elems; a slot whose elems is
 * -1 is checked against elems[slot] when elems is not NULL, else not at
 * all). */
int k_interp(const kernel *k, void *const *bufs);
int k_interp_sized(const kernel *k, void *const *bufs, const int64_t *elems);

#endif
