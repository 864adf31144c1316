/* lower.h — from a shaped graph to a program of kernels (DESIGN.md §2).
 *
 * kl_schedule() walks the graph in program order and gives every value a
 * program buffer, then lowers every node, through the per-op table that
 * ir/ops.def defines (each row names its lowering, kl_lower_<name>), into
 * kernels of the loop-nest form (kernel/kernel.h); memplan packs the
 * workspace afterwards. Every target-specific choice (weight panels,
 * Winograd, which 16-bit GEMMs stay GEMMs) comes from the target
 * descriptor the program is lowered for (target/target.h, kl_tg()); a
 * lowering never asks which backend it serves.
 *
 * Files, by job:
 *   schedule.c   the driver: storage of inputs and outputs, the walk, the
 *                dispatch through the op table, the structural lowerings
 *                (none, alias, list pieces), kernel sharing, checks
 *   services.c   what every family uses: buffers, weights, dims, kernels
 *                and their bindings, operands, errors, loop nests
 *   memplan.c    liveness over the steps; offsets packed into one arena
 *   scalar.c     numbers computed at run time (sizes of symbolic dims)
 *   elementwise.c elementwise and broadcast ops, and their scalar form
 *   injective.c  layout and index ops: permute, slice, pad, upsample,
 *                gathers, index, scatter, cat/stack, list pieces, arange
 *   reduce.c     reductions, and row ops (softmax, log_softmax, cumsum)
 *   norm.c       batch, layer and group normalization
 *   pool.c       max/avg/adaptive pooling
 *   gemm.c       the batched GEMM kernel every gemm-like op becomes;
 *                linear, addmm/mm/bmm/baddbmm/matmul
 *   conv.c       convolution: dispatch, im2col + GEMM, 1x1 as GEMM
 *   conv_depthwise.c  depthwise convolution as a direct kernel
 *   conv_winograd.c   3x3 stride-1 convolution by Winograd F(2x2, 3x3)
 *   fuse.c       fused groups (passes/fuse.c decides them)
 *
 * Families call the services, never the schedule's walk, so there is no
 * circle: schedule.c → family → services.c. Symbolic sizes: a lowering
 * computes sizes, strides and trip counts as ir_dim values (the graph's
 * hash-consed dim expressions, ir.h): constants when the shape is static,
 * polynomials and floor-divisions over the inputs' named dims ("b", "s")
 * otherwise. ir_dim arithmetic folds constants, so a static model lowers
 * exactly as with int64 arithmetic; equality is id equality. Only where a
 * dim enters a kernel does it become an expression (kl_dimx): a constant,
 * or arithmetic over loads of the run's dim values (one I64 slot per
 * kernel, bound to the program's dims buffer).
 */
#ifndef NNCC_LOWER_H
#define NNCC_LOWER_H

#include "../kernel/kernel.h"

/* ====================================================================== */
/* schedule.c: the entry                                                  */
/* ====================================================================== */

/* Schedules a shaped graph for target t: every value gets storage, every
 * node becomes kernels, the workspace is planned, and in debug builds the
 * result is checked with kp_verify. Returns NULL after reporting errors
 * (e.g. an op with no code generation yet, listing every such node). */
kp_program *kl_schedule(ir_graph *g, nn_arena *arena, const tg_target *t, nn_diag *d);

/* Choices of a schedule beyond the target; a zeroed struct is the default. */
typedef struct kl_opts {
  bool no_checks; /* emit no run-time checks (kl_check): out-of-range indices
                     then read clamped elements instead of failing the run */
} kl_opts;
/* kl_schedule with options (o may be NULL). */
kp_program *kl_schedule_ex(ir_graph *g, nn_arena *arena, const tg_target *t, const kl_opts *o,
                           nn_diag *d);

/* ====================================================================== */
/* The lowering context and its services (services.c)                     */
/* ====================================================================== */

/* The schedule's state while it lowers one program; a lowering sees the
 * node being lowered (kl_node) and asks the services below for storage,
 * kernels and facts. Only schedule.c and services.c read its fields. */
typedef struct kl_ctx {
  kp_program *p;      /* the program being built */
  ir_graph *g;        /* its graph */
  nn_diag *d;         /* where errors go */
  const tg_target *t; /* what the target offers */
  ir_nodeid node;     /* the node being lowered (kl_node) */
  ir_nodeid owner;    /* the node the steps made now belong to: the
                            node itself, or the head of the fused group
                            whose member it is */
  kp_bufid *vbuf;     /* program buffer of each value, -1 if none yet */
  const void **vdata; /* contiguous weight data by value, when made */
  bool *needed;       /* by value: some kernel (or a graph output) reads it */
  int nkernels;       /* kernels created so far (for unique names) */
  bool checks;        /* emit run-time checks (kl_check) */
} kl_ctx;

/* A gemm-like node lowered with an epilogue (the rest of a fused group). */
typedef struct kl_epilogue {
  kp_bufid out;     /* the buffer written instead of the node's result */
  const char *name; /* kernel name suffix, e.g. "add_relu" */
  /* Builds, in kernel k, the F32 value stored at element idx (an I64
   * expression, the flat index into `out`) from the node's own F32 result
   * acc, binding the slots it loads; -1 after reporting an error. Called
   * once per kernel that writes `out`. */
  kx_id (*build)(void *ctx, kernel *k, kx_id acc, kx_id idx);
  void *ctx; /* build's first argument */
} kl_epilogue;

/* ---- the context ---------------------------------------------------------- */

ir_graph *kl_graph(kl_ctx *c);
nn_arena *kl_arena(kl_ctx *c);
nn_diag *kl_diag(kl_ctx *c);
ir_nodeid kl_node(kl_ctx *c);      /* the node being lowered */
ir_node *kl_cur(kl_ctx *c);        /* ... as a node (the graph does not
                                     change while lowering) */
const tg_target *kl_tg(kl_ctx *c); /* the target lowered for */
/* Makes id the node being lowered (a member of a fused group, whose steps
 * still belong to the group's head); returns the previous one. */
ir_nodeid kl_set_node(kl_ctx *c, ir_nodeid id);

/* ---- kernels and storage -------------------------------------------------- */

/* Creates a kernel for the node being lowered and registers it as the next
 * step (of the owner node), named "kN_<what>" (N unique in the program). */
kernel *kl_kernel(kl_ctx *c, const char *what);
/* The same, named after `what` and, with an epilogue, after the fused ops
 * too ("conv_gemm_add_relu"). */
kernel *kl_kernel_ep(kl_ctx *c, const char *what, const kl_epilogue *ep);
/* Binds kernel slot `slot` to program buffer b. Every slot must be bound. */
void kl_bind(kl_ctx *c, kernel *k, int32_t slot, kp_bufid b);
/* A new program buffer of `elems` elements (schedule.c: inputs, outputs,
 * the dims buffer); a workspace buffer gets a provisional offset. */
kp_bufid kl_add_buf(kp_program *p, kp_bufkind kind, nn_dtype dt, ir_dim elems);
/* The program buffer holding value v (input, weight, workspace...). */
kp_bufid kl_value_buf(kl_ctx *c, ir_value v);
/* A fresh workspace buffer of `elems` elements, live for this node only. */
kp_bufid kl_scratch(kl_ctx *c, nn_dtype dt, int64_t elems);
kp_bufid kl_scratch_d(kl_ctx *c, nn_dtype dt, ir_dim elems); /* any dim */
/* A new compile-time constant buffer (e.g. a pre-packed weight): the bytes
 * are copied into the weights blob. */
kp_bufid kl_const_buf(kl_ctx *c, nn_dtype dt, const void *data, int64_t elems);
/* The bytes of a weight value as a contiguous row-major array (for
 * compile-time packing), or NULL when v is not a weight. */
const void *kl_weight_data(kl_ctx *c, ir_value v);
/* Whether some kernel (or a graph output) reads value v. */
bool kl_needed(kl_ctx *c, ir_value v);
/* A kernel slot for value v (its whole storage, read), bound to its buffer. */
int32_t kl_vslot(kl_ctx *c, kernel *k, ir_value v, const char *name);
/* A written kernel slot of `elems` elements bound to program buffer b. */
int32_t kl_wslot(kl_ctx *c, kernel *k, nn_dtype dt, ir_dim elems, kp_bufid b, const char *name);

/* ---- operands of the node being lowered ----------------------------------- */

/* Operand j is a none (or the node has no operand j). */
bool kl_is_none(kl_ctx *c, int j);
/* Operand j as a constant (NULL when it is not one), an int (ints and
 * bools), a number, an int list (a single int counts as [i]) or a string. */
const ir_const *kl_cst(kl_ctx *c, int j);
bool kl_cint(kl_ctx *c, int j, int64_t *out);
bool kl_cnum(kl_ctx *c, int j, double *out);
bool kl_clist(kl_ctx *c, int j, const int64_t **v, int *n);
const char *kl_cstr(kl_ctx *c, int j);
/* The element dtype of a value's storage (ints and bools as I64, floats
 * as F64; UNKNOWN for lists and the like). */
nn_dtype kl_vdtype(kl_ctx *c, ir_value v);
/* The dtype float math in dt computes in (f16/bf16 in f32). */
nn_dtype kl_compute_dt(nn_dtype dt);
/* A dim index d of a rank-`rank` tensor with negative values counting
 * from the end; -1 when out of range (rank 0 takes 0 and -1). */
int kl_wrapdim(int64_t d, int rank);

/* ---- shapes and dims ------------------------------------------------------ */

#define KL_MAXR 16 /* ranks supported */

/* Shape of a tensor value (any dims): fills dims (up to KL_MAXR) and
 * returns the rank, or -1 after reporting (not a tensor, unknown rank or
 * dim). */
int kl_shape_d(kl_ctx *c, ir_value v, ir_dim *dims);
/* The same, every dim a number: -1 after reporting a symbolic one. */
int kl_shape(kl_ctx *c, ir_value v, int64_t *dims);
/* Shape of any value as dims (a scalar has rank 0); -1 after reporting. */
int kl_vshape(kl_ctx *c, ir_value v, ir_dim *dims);
/* The dim holding the number v, and dim arithmetic in the graph. */
ir_dim kl_d(kl_ctx *c, int64_t v);
ir_dim kl_dadd(kl_ctx *c, ir_dim a, ir_dim b);
ir_dim kl_dmul(kl_ctx *c, ir_dim a, ir_dim b);
ir_dim kl_dmuli(kl_ctx *c, ir_dim a, int64_t b);
ir_dim kl_daddi(kl_ctx *c, ir_dim a, int64_t b);
/* True and *v set when d is a known number (v may be NULL). */
bool kl_dim_const(kl_ctx *c, ir_dim d, int64_t *v);
/* d is the number v. */
bool kl_dis(kl_ctx *c, ir_dim d, int64_t v);
/* An element count for k_buf: the number, or -1 when symbolic. */
int64_t kl_elems(kl_ctx *c, ir_dim d);
/* The product of dims[0..rank), and the contiguous strides of that shape. */
ir_dim kl_numel(kl_ctx *c, int rank, const ir_dim *dims);
void kl_cstrides(kl_ctx *c, int rank, const ir_dim *dims, ir_dim *st);
/* Strides of an input of shape (r, d) broadcast to an output of rank R and
 * dims od: right-aligned, 0 where the input has no dim or a dim known to
 * be 1 that the output does not have (shape inference resolved
 * broadcasting, so a symbolic input dim equals the output's). */
void kl_bstrides(kl_ctx *c, int r, const ir_dim *d, int R, const ir_dim *od, ir_dim *st);
/* Whether dims a and b are the same dim, or shape inference assumed them
 * equal and recorded a guard that the runtime checks before every run (a
 * flattened conv output with symbolic H, W meeting a linear layer's fixed
 * features). A lowering may then use either; prefer the constant one. */
bool kl_dims_agree(kl_ctx *c, ir_dim a, ir_dim b);
/* d as an I64 expression of kernel k. */
kx_id kl_dimx(kl_ctx *c, kernel *k, ir_dim d);
/* The same, reporting a dim that overflowed int64 (IR_DIM_UNKNOWN; the
 * schedule reports such a tensor as too large) and giving 0 for it. */
kx_id kl_x(kl_ctx *c, kernel *k, ir_dim d);
/* d as a number of dtype dt (a constant when d is one). */
kx_id kl_xt(kl_ctx *c, kernel *k, ir_dim d, nn_dtype dt);

/* ---- loop nests ----------------------------------------------------------- */

/* Opens loops over dims[0..rank) and fills iv with each dim's coordinate
 * (the constant 0 for dims known to be 1, which get no loop; a symbolic dim
 * always gets one). The first loop is PARALLEL when `parallel`; the last
 * gets VECTOR when `vector`, `extra` flags go on all. Returns the number of
 * loops opened (for kl_nest_end). */
int kl_nest(kl_ctx *c, kernel *k, int rank, const ir_dim *dims, kx_id *iv, bool parallel,
            bool vector, unsigned extra);
void kl_nest_end(kernel *k, int nl);
/* sum iv[i] * st[i] */
kx_id kl_lin(kl_ctx *c, kernel *k, int rank, const kx_id *iv, const ir_dim *st);
/* e clamped into [lo, hi]. */
kx_id kl_clampd(kl_ctx *c, kernel *k, kx_id e, int64_t lo, ir_dim hi);
/* The lowest value of dt (-inf for floats), or the highest. */
kx_id kl_extreme(kernel *k, nn_dtype dt, bool highest);

/* ---- run-time checks --------------------------------------------------------- */

/* Where PyTorch raises on the values of a tensor (an index out of range),
 * the program checks at run time: when the BOOL expression ok is false,
 * the run fails naming the I64 value val, the I64 size it was checked
 * against, the tensor `what` the values came from (its name), the dim
 * indexed (-1: unsaid) and the node being lowered (op, source, scope).
 * Adds a KS_CHECK to k (its status slot made on first use), or nothing
 * when the schedule has checks off. The code around must stay safe for any
 * value: a check does not stop the kernel. */
void kl_check(kl_ctx *c, kernel *k, kx_id ok, kx_id val, kx_id size, kp_check_kind kind,
              ir_value what, int32_t dim);
/* An index e (I64) into a dim of size n made safe to load with, after the
 * check PyTorch makes: with `wrap`, negative indices count from the end
 * and [-n, n) is valid, else [0, n); an invalid one fails the run (kl_check,
 * KP_CHECK_INDEX or _WRAP) and is clamped into [0, n - 1]. */
kx_id kl_index(kl_ctx *c, kernel *k, kx_id e, ir_dim n, bool wrap, ir_value what, int32_t dim);

/* ---- errors (at the node being lowered) ----------------------------------- */

/* Report an error at the node's location; the "return -1" forms are
 * macros and inline functions, so that static analysis sees the -1. */
void kl_report(kl_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "code generation for 'OP' with these operands is not supported yet" */
void kl_report_unsupported(kl_ctx *c);
/* "code generation for 'OP' with symbolic dim D is not supported yet" */
void kl_report_symbolic(kl_ctx *c, ir_dim d);
#define kl_fail(c, ...) (kl_report((c), __VA_ARGS__), -1)
static inline int kl_unsupported(kl_ctx *c) {
  kl_report_unsupported(c);
  return -1;
}
static inline int kl_symbolic(kl_ctx *c, ir_dim d) {
  kl_report_symbolic(c, d);
  return -1;
}

/* ====================================================================== */
/* The per-op table                                                       */
/* ====================================================================== */

/* A lowering: writes node id's results (into kl_value_buf of each, or,
 * with an epilogue, into ep->out through ep->build: only the gemm-like
 * family takes one, for the head of a fused group). Returns 0, or -1 after
 * reporting a located error. Every op's lowering is named by its ops.def
 * row; the families define them. */
typedef int (*kl_lower_fn)(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep);
#define OP(id, name, nin, nout, fusion, flags, shape, lower, doc) \
  int kl_lower_##lower(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep);
#include "../ir/ops.def"
#undef OP
/* The lowering of op (NULL for a row that names none yet). */
kl_lower_fn kl_lowering(ir_op op);
/* Lowers node n through the table, as the schedule does (fused groups
 * call it for members they cannot fuse): 0 or -1 after reporting. */
int kl_lower_node(kl_ctx *c, ir_nodeid n);
/* The same for a gemm-like node with an epilogue. */
int kl_lower_node_ep(kl_ctx *c, ir_nodeid n, const kl_epilogue *ep);
/* Maps a family's internal result (1 lowered, 0 no form for these
 * operands, -1 reported) to a lowering's: 0 reports "not supported". */
int kl_result(kl_ctx *c, int r);

/* ====================================================================== */
/* Shared across families                                                 */
/* ====================================================================== */

/* ---- elementwise.c: the scalar form of elementwise and broadcast ops,
 * used by their own kernels and by fused groups alike. */
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

/* ---- injective.c ---------------------------------------------------------- */

/* Writes piece `piece` of a chunk/split/unbind node into program buffer
 * dst (the schedule calls it where the list is unpacked). Returns 0 or -1
 * after reporting. */
int kl_lower_piece(kl_ctx *c, ir_nodeid split_node, int piece, kp_bufid dst);

/* ---- fuse.c: fused groups ------------------------------------------------- */

/* Lowers the fused group nodes[0..n) (program order; the members of one
 * ir_node.group, verified by ir_verify) into kernels that write only the
 * last member's result; no other member's result gets storage.
 *  - elementwise/broadcast groups: ONE kernel, a loop nest over the
 *    result's shape (a flat loop when every operand has that shape or one
 *    element), each external operand loaded with its broadcast index, each
 *    member computed by kl_scalar_op in order;
 *  - a gemm-like first member: its own kernels (im2col, GEMM) with the
 *    other members as the GEMM's epilogue (kl_lower_node_ep).
 * A group whose members have no scalar form (tril, arange), or operands
 * the scalar form does not take, is lowered member by member instead.
 * Returns 0, or -1 after reporting. */
int kl_lower_group(kl_ctx *c, const ir_nodeid *nodes, int n);

/* ---- gemm.c, conv*.c: the gemm-like family -------------------------------- */

/* B of a convolution's GEMM as the im2col of its input (ks_im2col), with
 * the image's offset per batch dim like the operands'. */
typedef struct kl_gim {
  kp_bufid x;                             /* the input image */
  ir_dim xelems;                          /* its element count */
  ir_dim xstr[16], x0;                    /* offset per batch dim, and base */
  ir_dim h, w, wout;                      /* input height, width; output width */
  int64_t kh, kw, sh, sw, ph, pw, dh, dw; /* the convolution's parameters */
} kl_gim;

/* One batched GEMM kernel: the template (sizes, strides, alpha, beta, bias
 * strides over m/n) run for every index of a batch of `nbatch` dims; each
 * operand's offset is base + sum_d index_d * stride_d. */
typedef struct kl_gspec {
  ir_dim m, n, k;                                   /* sizes */
  ir_dim a_rs, a_cs, b_rs, b_cs;                    /* A and B strides */
  ir_dim ldc;                                       /* C row stride */
  ir_dim bias_rs, bias_cs;                          /* bias strides over m and n */
  float alpha, beta;                                /* scales of the product and the bias */
  bool b_is_weight;                                 /* B is a compile-time constant */
  int a_panel, b_panel;                             /* panel layouts (ks_gemm), 0: strides */
  kp_bufid abuf, bbuf, cbuf, biasbuf;               /* program buffers (biasbuf -1: none) */
  ir_dim aelems, belems, celems, biaselems;         /* their element counts */
  int nbatch;                                       /* batch dims */
  ir_dim bdims[16];                                 /* batch sizes */
  ir_dim astr[16], bstr[16], cstr[16], biasstr[16]; /* per batch dim */
  ir_dim a0, b0, c0, bias0;                         /* base offsets */
  const kl_epilogue *ep;                            /* applied to every element of C, or NULL */
  nn_dtype dt;                                      /* dtype of A, B, bias and C (F32, F16 or BF16);
                                                       products are accumulated in f32 all the same */
  const kl_gim *im; /* B also described as an im2col (f32), or NULL */
} kl_gspec;

/* A gemm-like node being lowered. */
typedef struct kl_gop {
  kl_ctx *c;
  ir_graph *g;
  ir_node *node;
  nn_loc loc;
  const kl_epilogue *ep; /* fused epilogue, or NULL */
  nn_dtype dt;           /* the node's float dtype: every tensor operand and
                            the result have it (F32, F16 or BF16) */
} kl_gop;

/* The gemm-like node id with epilogue ep (or NULL). */
kl_gop kl_gop_of(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep);
/* A spec with the node's dtype and epilogue, no bias, unit scales. */
kl_gspec kl_gspec_new(const kl_gop *l);
/* Whether s's shapes are consistent (else reported, with l's node). */
bool kl_gspec_ok(const kl_gop *l, const kl_gspec *s);
/* B of s as w^T, for w[N, K] row-major (linear's weight; N and K known
 * when w is a weight): a weight is packed at compile time (f32: the
 * target's column panels, ks_gemm.b_panel; 16-bit: transposed), any other
 * value transposed by a kernel emitted now. Sets bbuf, belems, b_rs, b_cs,
 * b_panel and b_is_weight; 0, or -1 after reporting a symbolic size. */
int kl_gspec_wt(kl_ctx *c, ir_value w, ir_dim N, ir_dim K, kl_gspec *s);
/* Emits the kernel(s) of s, named `what`; returns 0, or -1 when the
 * epilogue failed (reported). Products are accumulated in f32: A, B and
 * the bias are widened as they are loaded; a 16-bit C is accumulated in an
 * f32 scratch of C's layout and rounded by a second kernel. A 16-bit GEMM
 * the target has no native form for is expanded into loops here. */
int kl_gemm_kernel(kl_ctx *c, const char *what, const kl_gspec *s);
/* Where the node's result goes: its own buffer, or the fused group's. */
kp_bufid kl_gop_result(const kl_gop *l);
/* Whether value v is absent or none. */
bool kl_gop_none(const kl_gop *l, ir_value v);
/* Shape of a tensor operand of the node's dtype (dims may be symbolic);
 * -1 after reporting. */
int kl_gop_shape(const kl_gop *l, ir_value v, ir_dim *dims);
/* Errors: a dim that must be a number, inconsistent shapes; -1. */
int kl_gop_sym_error(const kl_gop *l, ir_dim d);
int kl_gop_shape_error(const kl_gop *l, const char *why);
/* A constant number operand, and a constant int list of n items (one item
 * applies to all); -1 after reporting. */
int kl_gop_scalar(const kl_gop *l, ir_value v, double *out);
int kl_gop_ints(const kl_gop *l, ir_value v, int n, const char *what, int64_t *out);

/* A 2-d convolution's geometry (1-d convolutions have H = kh = 1). The
 * batch and the spatial sizes may be symbolic; channels, kernel size and
 * the parameters are numbers. */
typedef struct kl_conv {
  ir_dim n, h, w;                 /* input batch and spatial size */
  ir_dim hout, wout;              /* output spatial size (from the result) */
  int64_t cin, cout, kh, kw;      /* weight [cout, cin/groups, kh, kw] */
  int64_t sh, sw, ph, pw, dh, dw; /* stride, padding, dilation */
  int64_t groups;
  kp_bufid x, wt, bias, out; /* program buffers (bias -1: none) */
  int a_panel;               /* wt packed in panels of this many rows per
                                group (ks_gemm.a_panel), or 0: [cout, Kc] */
  const kl_epilogue *ep;     /* fused epilogue on out, or NULL */
  nn_dtype dt;               /* dtype of x, w, bias, out (f32 accumulation) */
} kl_conv;

/* The spatial sizes as expressions of a kernel: numbers, or (symbolic)
 * variables set where kl_conv_sizes was called. */
typedef struct kl_convx {
  kx_id h, w, hout, wout, P; /* P = hout * wout */
} kl_convx;
kl_convx kl_conv_sizes(kl_ctx *c, kernel *k, const kl_conv *cv);
/* Valid output columns [lo, hi) of tap column j (a variable): those whose
 * input column ow*sw - pw + j*dw lies in [0, W). Sets the two variables. */
void kl_conv_tap_range(kernel *k, const kl_conv *cv, const kl_convx *sz, int32_t j, int32_t lo,
                       int32_t hi);
/* ih = oh*sh - ph + i*dh (variable ih), and the condition 0 <= ih < H. */
kx_id kl_conv_row_in_range(kernel *k, const kl_convx *sz, int32_t ih);
/* buf[dst + ow] = 0 for ow in [lo, hi), a VECTOR loop (dst a variable). */
void kl_store_zeros(kernel *k, int32_t buf, nn_dtype dt, int32_t dst, kx_id lo, kx_id hi);
/* conv_depthwise.c: groups == cin == cout, as a direct kernel; 1 done or
 * -1 after reporting. */
int kl_conv_depthwise(kl_ctx *c, const kl_conv *cv);
/* conv_winograd.c: whether cv is lowered by Winograd's F(2x2, 3x3) (the
 * target offers it, f32, 3x3 stride 1, enough input channels, fixed
 * sizes, which it returns), and that lowering with weight data g
 * [Cout, Cin, 3, 3] in g: 0 or -1 after reporting. */
bool kl_wino_fits(kl_ctx *c, const kl_conv *cv, int64_t *n, int64_t *h, int64_t *w, int64_t *ho,
                  int64_t *wo);
int kl_conv_winograd(const kl_gop *l, const kl_conv *cv, const unsigned char *g, int64_t N,
                     int64_t H, int64_t W, int64_t HO, int64_t WO);

/* ---- memplan.c ------------------------------------------------------------ */

/* Plans the workspace of a scheduled program: every KP_BUF_WORKSPACE
 * buffer lives from the first step that binds it to the last (a buffer no
 * later step reads dies at its writer; a node's scratch dies with the
 * node); buffers no step binds are placed at offset 0. Sets every
 * workspace buffer's offset, workspace_bytes (the arena),
 * arena_lower_bound_bytes and naive_bytes. The placement core (mp_assign,
 * mp_lower_bound) is abi/plan.h, shared with the model runtime. */
void kl_memplan(kp_program *p);
/* True when no two workspace buffers bound in overlapping step ranges share
 * a byte and every workspace buffer lies inside workspace_bytes (tests and
 * an internal check after planning). */
bool kl_memplan_ok(const kp_program *p);

#endif
