/* lower_internal.h — what the files of the lowering (frontend/lower*.c)
 * share: the compile-time values (lval), frames, the lowering's state, and
 * the functions one file calls in another.
 *
 *   lower.c       lvals, frames, graph building, module attributes,
 *                 inlining, statements, the root (fe_lower)
 *   lower_call.c  ATen and prim calls through the schema table: argument
 *                 binding, operands with defaults, result types, folding
 *   lower_expr.c  expressions: constants folded, operators, calls,
 *                 attributes, subscripts
 */
#ifndef NNCC_LOWER_INTERNAL_H
#define NNCC_LOWER_INTERNAL_H

#include "frontend.h"

typedef enum lv_kind {
  LV_CONST,  /* c */
  LV_VALUE,  /* v */
  LV_MODULE, /* obj, path */
  LV_TUPLE,  /* items, n */
  LV_QUAL,   /* qual: a dotted name being resolved */
  LV_FUNC,   /* def (+ obj/path when it is a bound method) */
  LV_POISON, /* the result of something already reported */
} lv_kind;

typedef struct lval lval;
struct lval {
  lv_kind kind;
  ir_const c;         /* CONST */
  ir_value v;         /* VALUE */
  const fe_pval *obj; /* MODULE, FUNC (bound self) */
  const char *path;   /* MODULE, FUNC: module path, "" for the root */
  lval **items;       /* TUPLE */
  int n;              /* TUPLE */
  const char *qual;   /* QUAL */
  const fe_def *def;  /* FUNC */
  const fe_stmt *fn;  /* FUNC: the def statement (a method of a class) */
};

typedef struct binding {
  const char *name;
  lval *val;
} binding;

typedef struct frame {
  NN_VEC(binding) vars; /* name → lval; later bindings shadow earlier */
  const char *path;     /* module path of self, for node scopes */
  lval *ret;            /* set by return */
  bool returned;        /* a return statement ran */
  bool broke;           /* a break ran in the innermost loop */
  bool continued;       /* a continue ran in the innermost loop */
  int loops;            /* loops open in this frame (break/continue legal) */
  bool poisoned;        /* an error left names unbound: stay quiet about them */
} frame;

typedef struct weight_memo {
  const fe_tensor *t; /* the pickled tensor */
  ir_value v;         /* its WEIGHT value */
} weight_memo;

typedef struct lower {
  fe_model *m;
  nn_arena *arena;
  nn_diag *d;
  ir_graph *g;
  frame *f;  /* current frame */
  int depth; /* inlining depth */
  NN_VEC(weight_memo) weights;
  fe_lower_opts opts; /* resolver for shape-dependent control flow */
  int64_t unrolled;   /* loop iterations unrolled so far */
  int half_upcasts;   /* f16/bf16 weights computed in f32 */
} lower;

enum { MAX_INLINE_DEPTH = 256 };

typedef struct callargs {
  lval **pos; /* positional arguments */
  int npos;
  const char **kwn; /* keyword names */
  lval **kwv;       /* keyword values */
  int nkw;
} callargs;

/* ---- lower.c ------------------------------------------------------------- */

lval *lv_new(lower *L, lv_kind k);
lval *lv_value(lower *L, ir_value v);
lval *lv_const(lower *L, ir_const c);
lval *lv_int(lower *L, int64_t i);
lval *lv_float(lower *L, double f);
lval *lv_bool(lower *L, bool b);
lval *lv_none(lower *L);
lval *lv_poison(lower *L);
lval *lv_qual(lower *L, const char *q);
/* A description of v for messages ("a tensor", "the int 3", ...). */
const char *lv_describe(lower *L, const lval *v);
/* The value a name is bound to in the current frame, or NULL. */
lval *lw_lookup(lower *L, const char *name);
/* Appends a node (ir_append) with the frame's module path as its scope. */
ir_nodeid lw_append(lower *L, ir_op op, int nin, const ir_value *in, int nout, nn_loc loc);
ir_value lw_const_node(lower *L, const ir_const *c, nn_loc loc);
const ir_type *lw_tensor_unknown(lower *L);
/* A pickled attribute value as an lval (numbers, strings, lists, tensors
 * as weights, module objects). */
lval *lw_from_pval(lower *L, const fe_pval *p, const char *path, nn_loc loc);
/* Attribute `name` of module object mod. */
lval *lw_module_attr(lower *L, const lval *mod, const char *name, nn_loc loc);
/* v as an IR value (constants get a node), for an op operand. */
ir_value lw_materialize(lower *L, const lval *v, nn_loc loc);
/* Runs def fn with self (NULL for free functions) and arguments; returns
 * what it returns. */
lval *lw_inline_call(lower *L, const fe_stmt *fn, const lval *self, const char *path,
                     const callargs *a, nn_loc loc);

/* ---- lower_call.c -------------------------------------------------------- */

/* Calls ATen or prim op `qualname` through the schema table: the first
 * overload that accepts the arguments builds the canonical op. */
lval *lw_call_op(lower *L, const char *qualname, const callargs *a, nn_loc loc);

/* ---- lower_rnn.c --------------------------------------------------------- */

/* aten::lstm / gru / rnn_tanh / rnn_relu (op) with its schema's arguments
 * bound in slots, expanded into linear, rnn_scan, cat and stack nodes (see
 * the file); returns the op's result tuple, or a poison after reporting. */
lval *lw_expand_rnn(lower *L, ir_op op, lval **slots, nn_loc loc);

/* ---- lower_expr.c -------------------------------------------------------- */

/* An expression's value. */
lval *lw_eval(lower *L, const fe_expr *e);
lval *lw_eval_binary(lower *L, const fe_expr *e);
/* Binary operator op on two constants, or NULL when it does not fold. */
lval *lw_fold_binary(lower *L, const char *op, const lval *a, const lval *b);
/* v as a known constant number or truth value (true and *out set). */
bool lw_known_scalar(lower *L, const lval *v, ir_const *out);
bool lw_known_truth(lower *L, const lval *v, bool *out);

#endif
