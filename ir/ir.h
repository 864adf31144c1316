/* ir.h — nncc's graph IR: one header for the whole layer.
 *
 * Sections, one per file:
 *   ops.def / ops.c   the op table (enum, names, arity, fusion class, flags)
 *   graph.c           graphs, values, nodes, constants, weights, types
 *   dims.c            dims: constants or symbolic expressions, hash-consed
 *   print.c           the textual form
 *   parse.c           reading the textual form back (exact round trip)
 *   verify.c          structural checks (SSA, arity, types where known)
 *
 * The model: a graph is a list of nodes in program order (straight-line,
 * SSA). Nodes and values are small integer ids into per-graph arrays; all
 * memory lives in the compilation's arena. A value is a graph input or one
 * result of one node. Constants and weights are nodes (CONSTANT, WEIGHT) so
 * every operand is a value. Every node carries the source location it came
 * from and the module path ("scope") of the layer that produced it.
 */
#ifndef NNCC_IR_H
#define NNCC_IR_H

#include "../common/common.h"

#include <stdbool.h>

/* ====================================================================== */
/* ops.def — the op table                                                 */
/* ====================================================================== */

/* Fusion classes (what the fusion pass reads; never switch on op names). */
typedef enum ir_fusion {
  IR_FUSE_META,        /* constants, weights, scalar/shape arithmetic, lists:
                          no kernel, evaluated at compile time or on the host */
  IR_FUSE_ELEMENTWISE, /* one output element from the same element of inputs */
  IR_FUSE_BROADCAST,   /* elementwise with numpy broadcasting */
  IR_FUSE_INJECTIVE,   /* each output element reads one input element (slice,
                          cat, transpose, gather): fusable as index math */
  IR_FUSE_VIEW,        /* reinterprets memory, never a kernel (view, reshape
                          of contiguous, squeeze, unsqueeze) */
  IR_FUSE_REDUCTION,   /* reduces over dims (sum, mean, softmax, layer_norm) */
  IR_FUSE_GEMM,        /* gemm-like with a fusable elementwise epilogue */
  IR_FUSE_OPAQUE,      /* everything else: its own kernel */
} ir_fusion;

/* Op flags. */
enum {
  IR_PURE = 1 << 0,       /* no side effects: may be removed if unused, CSE'd */
  IR_IDENTITY = 1 << 1,   /* in eval mode returns operand 0 unchanged (dropout,
                           contiguous, detach, clone) */
  IR_CREATES = 1 << 2,    /* creates a tensor from scalars (ones, zeros, arange) */
  IR_KEEPS_RANK = 1 << 3, /* the result has operand 0's rank, and its dtype
                             unless IR_FLOAT_ONLY promotes it (activations,
                             unary math, pad, clamp, identities) */
  IR_FLOAT_ONLY = 1 << 4, /* floating-only math: an integral operand gives
                             an f32 result (exp, sigmoid, sqrt, ...) */
};

typedef enum ir_op {
#define OP(id, name, nin, nout, fusion, flags, shape, lower, doc) NN_OP_##id,
#include "ops.def"
#undef OP
  NN_OP_COUNT
} ir_op;

typedef struct ir_opinfo {
  const char *name;  /* textual name, e.g. "convolution" */
  int nin;           /* operand count, -1 = variadic */
  int nout;          /* result count, -1 = variadic */
  ir_fusion fusion;  /* fusion class */
  unsigned flags;    /* IR_PURE | ... */
  const char *shape; /* its shape rule's name (sh_r_<shape>) */
  const char *lower; /* its lowering's name (kl_lower_<lower>), "none" or
                        "removed" */
  const char *doc;   /* one-line semantics (docs/IR.md is generated from it) */
} ir_opinfo;

extern const ir_opinfo ir_ops[NN_OP_COUNT];
ir_op ir_op_lookup(const char *name); /* NN_OP_COUNT if none */
const char *ir_fusion_name(ir_fusion f);

/* ====================================================================== */
/* dims.c — dims: constants or symbolic expressions                       */
/* ====================================================================== */

/* A dim is an id into the graph's dim table. Dims are hash-consed: equal
 * expressions (after simplification) have equal ids, so dims compare with
 * ==. Two ids are fixed in every graph: */
typedef int32_t ir_dim;
#define IR_DIM_UNKNOWN 0 /* not inferred yet; prints as "?" */

typedef enum ir_dimkind {
  IR_DK_UNKNOWN,  /* "?" */
  IR_DK_CONST,    /* c */
  IR_DK_SYM,      /* a named input dim, e.g. "batch" */
  IR_DK_ADD,      /* a + b */
  IR_DK_MUL,      /* a * b */
  IR_DK_DIV,      /* a / b, known to divide exactly */
  IR_DK_FLOORDIV, /* a // b */
  IR_DK_MOD,      /* a % b */
} ir_dimkind;

typedef struct ir_dimexpr {
  ir_dimkind kind;
  int64_t c;        /* CONST: the value */
  const char *name; /* SYM: the name */
  ir_dim a, b;      /* binary kinds: operands */
} ir_dimexpr;

typedef struct ir_graph ir_graph;

ir_dim ir_dim_const(ir_graph *g, int64_t c);
ir_dim ir_dim_sym(ir_graph *g, const char *name);
/* Build and simplify: constants fold, x+0, x*1, x*0, x/1 vanish, sums and
 * products are put in a canonical operand order. */
ir_dim ir_dim_add(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_dim_mul(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_dim_sub(ir_graph *g, ir_dim a, ir_dim b); /* a + (-1)*b */
ir_dim ir_dim_div(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_dim_floordiv(ir_graph *g, ir_dim a, ir_dim b);
ir_dim ir_dim_mod(ir_graph *g, ir_dim a, ir_dim b);
const ir_dimexpr *ir_dim_get(const ir_graph *g, ir_dim d);
/* True and *c set when d is a constant. */
bool ir_dim_is_const(const ir_graph *g, ir_dim d, int64_t *c);
void ir_dim_print(nn_buf *b, const ir_graph *g, ir_dim d);

/* ====================================================================== */
/* graph.c — types, values, nodes, graphs                                 */
/* ====================================================================== */

typedef enum ir_tkind {
  IR_T_UNKNOWN, /* not inferred yet */
  IR_T_TENSOR,
  IR_T_INT,
  IR_T_FLOAT,
  IR_T_BOOL,
  IR_T_NONE,
  IR_T_STR,
  IR_T_DEVICE,
  IR_T_LIST,  /* homogeneous: elems[0] is the element type */
  IR_T_TUPLE, /* elems[0..nelems) */
} ir_tkind;

typedef struct ir_type ir_type;
struct ir_type {
  ir_tkind kind;
  nn_dtype dtype;        /* TENSOR: element type, UNKNOWN if not inferred */
  int rank;              /* TENSOR: number of dims, -1 if unknown */
  const ir_dim *dims;    /* TENSOR: rank dims; NULL when rank is -1 */
  const ir_type **elems; /* LIST: 1 element type; TUPLE: nelems */
  int nelems;
};

/* Types are immutable; build them with these (arena-owned). */
const ir_type *ir_type_scalar(ir_graph *g, ir_tkind k); /* not TENSOR/LIST/TUPLE */
const ir_type *ir_type_tensor(ir_graph *g, nn_dtype dt, int rank,
                              const ir_dim *dims); /* dims copied; NULL+rank>=0
                                                      = all dims unknown */
const ir_type *ir_type_list(ir_graph *g, const ir_type *elem);
const ir_type *ir_type_tuple(ir_graph *g, int n, const ir_type *const *elems);
bool ir_type_equal(const ir_type *a, const ir_type *b);
void ir_type_print(nn_buf *b, const ir_graph *g, const ir_type *t);

typedef int32_t ir_value; /* index into g->values; IR_NOVAL = none */
typedef int32_t ir_nodeid;
#define IR_NOVAL (-1)

typedef enum ir_ckind {
  IR_C_INT,
  IR_C_FLOAT,
  IR_C_BOOL,
  IR_C_NONE,
  IR_C_STR,
  IR_C_DEVICE,
  IR_C_INTLIST,
  IR_C_FLOATLIST,
  IR_C_BOOLLIST,
} ir_ckind;

/* A compile-time constant (the attribute of a CONSTANT node). */
typedef struct ir_const {
  ir_ckind kind;
  int64_t i;            /* INT, BOOL (0/1) */
  double f;             /* FLOAT */
  const char *s;        /* STR, DEVICE */
  int n;                /* *LIST: element count */
  const int64_t *ints;  /* INTLIST, BOOLLIST */
  const double *floats; /* FLOATLIST */
} ir_const;

/* A weight: a named tensor whose bytes live in the archive mapping (or in
 * arena memory after a pass rewrote them). data may be NULL for graphs read
 * back from text. */
typedef struct ir_weight {
  const char *name; /* "layer1.0.conv1.weight", "CONSTANTS.c0" */
  nn_dtype dtype;   /* element type */
  int rank;
  const int64_t *sizes;   /* rank sizes */
  const int64_t *strides; /* rank strides in elements (NULL = contiguous) */
  int64_t offset;         /* storage offset in elements */
  const void *data;       /* storage base (element 0 of the storage) */
  size_t nbytes;          /* bytes available at data */
} ir_weight;

/* Node flags. */
enum {
  IR_NF_INPLACE = 1 << 0, /* written in place in the source (relu_, add_):
                             the result replaces operand 0's contents */
  IR_NF_DEAD = 1 << 1,    /* removed; skipped by everything, dropped by
                             ir_compact() */
};

typedef struct ir_node {
  ir_op op;
  int nin;           /* operand count */
  ir_value *in;      /* operands */
  int nout;          /* result count */
  ir_value *out;     /* results */
  unsigned flags;    /* IR_NF_* */
  ir_const c;        /* CONSTANT: the value */
  int32_t weight;    /* WEIGHT: index into g->weights */
  int64_t index;     /* TUPLE_GET: the element index */
  nn_loc loc;        /* source location */
  const char *scope; /* module path of the producing layer, "" for root */
  int32_t group;     /* fused group (passes/fuse.c): 0 = not fused; nodes
                        with the same positive id form one kernel (the
                        invariant is stated at ir_verify) */
} ir_node;

typedef struct ir_valinfo {
  const ir_type *type; /* never NULL; IR_T_UNKNOWN before inference */
  ir_nodeid def;       /* producing node, or -1 for a graph input */
  int32_t idx;         /* result index in def, or input index */
  const char *name;    /* source-level name hint ("x", "input"), or NULL */
} ir_valinfo;

/* The declared range of a symbolic input dim (--input x:f32[b=1..32,...]). */
typedef struct ir_symrange {
  const char *name; /* the symbol */
  int64_t lo, hi;   /* inclusive */
} ir_symrange;

/* A run-time requirement on symbolic dims: shape inference went on
 * assuming a == b (a broadcast of two symbolic dims, a product's inner
 * dims, a flattened conv output meeting a linear layer's features); the
 * compiled model checks it before running. */
typedef struct ir_guard {
  ir_dim a, b; /* must be equal at run time */
  nn_loc loc;  /* the op that assumed it */
} ir_guard;

struct ir_graph {
  nn_arena *arena;                  /* owns everything below */
  const char *name;                 /* "forward" */
  NN_VEC(ir_node) nodes;            /* by id */
  NN_VEC(ir_nodeid) order;          /* program order (ids of live nodes) */
  NN_VEC(ir_valinfo) values;        /* by id */
  NN_VEC(ir_value) inputs;          /* graph inputs, in order */
  NN_VEC(const char *) input_names; /* names of the inputs ("x") */
  NN_VEC(ir_value) outputs;         /* graph outputs, in order */
  NN_VEC(ir_weight) weights;        /* by index */
  NN_VEC(ir_dimexpr) dims;          /* dim table; [0] is UNKNOWN */
  void *dim_index;                  /* hash index over dims (dims.c) */
  NN_VEC(ir_symrange)
  sym_ranges; /* declared ranges of symbolic input dims
                 (set by the shapes pass; a symbol with
                 no entry ranges over 1..INT64_MAX) */
  NN_VEC(ir_guard)
  guards;                                      /* equalities the shapes pass assumed
                                                  (recomputed by every full run) */
  const ir_type *scalar_types[IR_T_TUPLE + 1]; /* cached scalar types */
};

ir_graph *ir_graph_new(nn_arena *arena, const char *name);
ir_value ir_add_input(ir_graph *g, const char *name, const ir_type *t);
void ir_add_output(ir_graph *g, ir_value v);
int32_t ir_add_weight(ir_graph *g, const ir_weight *w); /* copied */
/* The number of elements of w (the product of its sizes). */
int64_t ir_weight_numel(const ir_weight *w);
/* Copies w's elements in row-major order into out (numel elements of
 * nn_dtype_size(w->dtype) bytes), walking its strides from its offset: a
 * pickled tensor may be a view into a larger storage. An element outside
 * the storage (or with no data) is left as out holds it and makes the
 * result false. */
bool ir_weight_read(const ir_weight *w, void *out);

/* Appends a node at the end of the program order with nin operands and nout
 * fresh results of unknown type. Returns its id; the node pointer is valid
 * until the next node is created. */
ir_nodeid ir_append(ir_graph *g, ir_op op, int nin, const ir_value *in, int nout, nn_loc loc);
/* Same, inserted just before node `before` in program order. */
ir_nodeid ir_insert_before(ir_graph *g, ir_nodeid before, ir_op op, int nin, const ir_value *in,
                           int nout, nn_loc loc);
static inline ir_node *ir_node_get(ir_graph *g, ir_nodeid n) { return &g->nodes.data[n]; }
static inline const ir_type *ir_vtype(const ir_graph *g, ir_value v) {
  return g->values.data[v].type;
}
void ir_set_type(ir_graph *g, ir_value v, const ir_type *t);
/* Convenience: a CONSTANT node; returns its value (typed). */
ir_value ir_const_value(ir_graph *g, const ir_const *c, nn_loc loc);
ir_value ir_const_int(ir_graph *g, int64_t i, nn_loc loc);
ir_value ir_const_float(ir_graph *g, double f, nn_loc loc);
ir_value ir_const_bool(ir_graph *g, bool b, nn_loc loc);
ir_value ir_const_none(ir_graph *g, nn_loc loc);
/* True and *c set when v is the result of a CONSTANT node. */
bool ir_value_const(const ir_graph *g, ir_value v, const ir_const **c);
const ir_type *ir_const_type(ir_graph *g, const ir_const *c);
/* Replaces every use of `from` (operands and graph outputs) by `to`. */
void ir_replace_uses(ir_graph *g, ir_value from, ir_value to);
/* Same, but only in nodes after `after` in program order (and outputs). */
void ir_replace_uses_after(ir_graph *g, ir_nodeid after, ir_value from, ir_value to);
/* Number of uses (operands of live nodes + graph outputs). */
int ir_use_count(const ir_graph *g, ir_value v);
void ir_kill(ir_graph *g, ir_nodeid n); /* marks dead, removes from order */
/* Drops dead nodes and unused values' storage is kept; renumbers nothing.
 * Rebuilds g->order without dead nodes. */
void ir_compact(ir_graph *g);
/* Position of each node in program order (for "is after" queries); returns
 * an arena array indexed by node id, -1 for dead nodes. */
int *ir_positions(ir_graph *g);

/* ====================================================================== */
/* print.c / parse.c — the textual form                                   */
/* ====================================================================== */

/* Print flags. */
enum {
  IR_PRINT_LOC = 1 << 0,   /* append loc("file":line:col) to nodes */
  IR_PRINT_SCOPE = 1 << 1, /* append scope("path") to nodes */
};
/* Prints the graph. Values are renumbered %0, %1, ... in print order
 * (inputs first), so print(parse(print(g))) == print(g) byte for byte. */
void ir_print(nn_buf *b, const ir_graph *g, unsigned flags);
/* Prints a name bare when it is an identifier ([A-Za-z_][A-Za-z0-9_]*),
 * else as a quoted string with the escapes of string literals. Graph and
 * input names print this way, and so do symbolic dims (dims.c). */
void ir_print_name(nn_buf *b, const char *s);
/* Parses text written by ir_print. `file` names the text in errors.
 * Returns NULL after reporting located errors. */
ir_graph *ir_parse(const char *text, size_t len, const char *file, nn_arena *arena, nn_diag *d);
/* The numbering ir_print uses: num[v] = N of the "%N" it prints for value
 * v, or -1 when v is not printed (a result of a dead node). num must have
 * g->values.len entries. verify.c names values the same way. */
void ir_number_values(const ir_graph *g, int32_t *num);

/* ====================================================================== */
/* verify.c                                                               */
/* ====================================================================== */

/* Checks: operand/result counts match the op table; every operand is
 * defined before use in program order; each value has one definition;
 * outputs are defined; CONSTANT/WEIGHT attributes are valid; fused groups
 * are well formed: a group's members are contiguous in program order, each
 * has one result; the first member's fusion class is ELEMENTWISE,
 * BROADCAST, GEMM or INJECTIVE, the others' ELEMENTWISE or BROADCAST; every member but
 * the last is used only by later members of its group (never by another
 * node or as a graph output), so the last member's result is the one value
 * that escapes. Reports each problem through d as "verify: ..." naming the
 * node, returns the count. */
int ir_verify(const ir_graph *g, nn_diag *d);

/* ====================================================================== */
/* dot.c — Graphviz                                                        */
/* ====================================================================== */

/* Appends the graph in Graphviz dot syntax: a box per tensor-computing
 * node labelled op and result type, ellipses for inputs and outputs,
 * fused groups as clusters. Uses g->arena for scratch. */
void ir_dot(nn_buf *b, const ir_graph *g);

#endif
