/* shapes_internal.h — what the files of the shapes pass share.
 *
 * pass_shapes (shapes.c) walks the graph and types each node with the rule
 * of its op family. The rules live in three files: shapes_math.c
 * (elementwise, gemm and convolution, pooling, reductions), shapes_layout.c
 * (views, slices, concatenation, padding, indexing) and shapes_meta.c
 * (creation, and the scalar, list and tuple ops that carry shape
 * arithmetic). shapes.c keeps everything they have in common: the side
 * table of compile-time knowledge (kval), the readers of operands, which
 * report at the current node, dtype promotion, folding of known numbers,
 * broadcasting, and the table that maps each op to its rule.
 *
 * A rule takes the pass state, reads the current node's operands (IN, TY,
 * KI, the sh_op* readers), and sets each result's type (set) and what is
 * known about it (KO). On bad input it reports through sh_err and leaves
 * the results unknown. Nothing declared here is used outside passes/shapes*.
 */
#ifndef NNCC_PASSES_SHAPES_INTERNAL_H
#define NNCC_PASSES_SHAPES_INTERNAL_H

#include "passes.h"

/* ---- the side table of compile-time knowledge ------------------------- */

typedef struct kval {
  bool known;             /* c holds the value */
  bool tensor;            /* the value is a 0-dim tensor holding c */
  ir_const c;             /* INT/FLOAT/BOOL/STR or *LIST when known */
  ir_dim sym;             /* int value equal to this dim (0 = not known) */
  const ir_dim *sdims;    /* int list equal to these dims (sizes of x) */
  int nsdims;             /* element count of sdims */
  const ir_value *src;    /* list/tuple: the values it was built from */
  int nsrc;               /* element count of src */
  const ir_type **pieces; /* tensor list: the exact type of each element */
  int npieces;            /* element count of pieces */
  bool wrapped;           /* a 0-dim CONSTANTS.cN tensor: the tracer's
                             record of a Python number, which promotes like
                             a number, not like a 0-dim tensor */
} kval;

typedef struct sh {
  ir_graph *g;   /* the graph being typed */
  nn_diag *d;    /* where errors go */
  nn_arena *a;   /* g->arena */
  kval *kv;      /* by value id; grows with the graph */
  int nkv;       /* entries in kv */
  int errors;    /* errors reported */
  ir_nodeid nid; /* node being typed */
  bool partial;  /* a trial run for input inference: inputs without a spec
                    stay unknown, nothing is reported or folded */
  /* told of each pair of distinct dims a rule assumes equal, or NULL */
  void (*unify)(void *ctx, ir_dim a, ir_dim b);
  void *uctx; /* unify's ctx */
} sh;

#define SH_SYM INT64_MIN        /* opshape: the element is symbolic */
#define SH_NONE (INT64_MIN + 1) /* opshape: the element is none */
#define SH_END INT64_MAX        /* slice end meaning "to the end" */

/* What is known about value v (zeroed until a rule sets it). */
static inline kval *K(sh *s, ir_value v) {
  NN_ASSERT(v >= 0 && v < s->g->values.len);
  if (v >= s->nkv) {
    int n = s->g->values.len + 16;
    s->kv = nn_realloc(s->a, s->kv, sizeof *s->kv * (size_t)s->nkv, sizeof *s->kv * (size_t)n);
    s->nkv = n;
  }
  return &s->kv[v];
}

/* ---- the current node ------------------------------------------------- */

static inline ir_node *N(sh *s) { return ir_node_get(s->g, s->nid); }
static inline ir_value IN(sh *s, int i) { return N(s)->in[i]; }
static inline const ir_type *TY(sh *s, int i) { return ir_vtype(s->g, IN(s, i)); }
static inline kval *KI(sh *s, int i) { return K(s, IN(s, i)); }
static inline kval *KO(sh *s, int r) { return K(s, N(s)->out[r]); }
static inline void set(sh *s, int r, const ir_type *t) { ir_set_type(s->g, N(s)->out[r], t); }
static inline ir_dim D(sh *s, int64_t c) { return ir_dim_const(s->g, c); }
static inline bool dc(sh *s, ir_dim d, int64_t *c) { return ir_dim_is_const(s->g, d, c); }
static inline const ir_type *tensor(sh *s, nn_dtype dt, int rank, const ir_dim *dims) {
  return ir_type_tensor(s->g, dt, rank, dims);
}
static inline const ir_type *scalar(sh *s, ir_tkind k) { return ir_type_scalar(s->g, k); }
static inline ir_dim *dims_new(sh *s, int n) {
  return nn_alloc(s->a, sizeof(ir_dim) * (size_t)(n > 0 ? n : 1));
}

/* ---- shapes.c: reporting and reading operands ------------------------- */

const char *sh_tstr(sh *s, const ir_type *t);
void sh_err(sh *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const ir_type *sh_tens(sh *s, int i);
bool sh_is_none(sh *s, int i);
bool sh_is_unknown(sh *s, int i);
bool sh_kint(const kval *k, int64_t *out);
bool sh_need_int(sh *s, int i, const char *what, int64_t *out);
bool sh_knum(sh *s, int i, double *f, bool *isint);
bool sh_opdtype(sh *s, int i, nn_dtype dflt, nn_dtype *out);
bool sh_opshape(sh *s, int i, const char *what, bool allow_none, int64_t **raw, ir_dim **sym,
                int *n);
ir_dim sh_shape_dim(sh *s, const int64_t *raw, const ir_dim *sym, int j);
bool sh_oplist(sh *s, int i, const char *what, int64_t **v, int *n);
bool sh_wrapdim(sh *s, int64_t d, int rank, int extra, int *out);
bool sh_opdim(sh *s, int i, int rank, int extra, int *out);
ir_dim sh_numel(sh *s, int n, const ir_dim *dims);
bool sh_may_equal(sh *s, ir_dim a, ir_dim b);
void sh_assume_equal(sh *s, ir_dim a, ir_dim b);
const char *sh_shape_str(sh *s, int n, const int64_t *raw, const ir_dim *sym);

/* ---- shapes.c: dtype promotion ---------------------------------------- */

/* result_type state: the promoted dtype of each priority tier. */
typedef struct prom {
  nn_dtype tier[3]; /* [2] tensors of rank > 0, [1] 0-dim, [0] scalars */
  bool unknown;     /* some operand's dtype is unknown */
} prom;

int sh_category(nn_dtype t);
nn_dtype sh_promote2(nn_dtype a, nn_dtype b);
void sh_prom_add(prom *p, const ir_type *t);
void sh_prom_operand(sh *s, prom *p, ir_value v);
nn_dtype sh_prom_result(const prom *p);

/* ---- shapes.c: folding known numbers ---------------------------------- */

/* Abstract arithmetic shared by tensor ops on known 0-dim values and the
 * scalar_* ops. */
typedef enum arith {
  AR_NONE,
  AR_ADD,
  AR_SUB,
  AR_MUL,
  AR_DIV,
  AR_FLOORDIV,
  AR_TRUNCDIV,
  AR_MOD,
  AR_EQ,
  AR_NE,
  AR_LT,
  AR_LE,
  AR_GT,
  AR_GE,
  AR_AND,
  AR_OR,
  AR_MAX,
  AR_MIN,
  AR_POW,
} arith;

bool sh_is_num(const ir_const *c);
double sh_fnum(const ir_const *c);
int64_t sh_floordiv64(int64_t a, int64_t b);
bool sh_fold(arith op, const ir_const *a, const ir_const *b, ir_const *out);
bool sh_to_category(ir_const *c, nn_dtype dt);
void sh_fold_into(sh *s, int r, arith op, const kval *ka, const kval *kb, bool is_tensor,
                  nn_dtype dt, bool ints);
arith sh_arith_of(ir_op op);
bool sh_is_bool_result(arith a);

/* ---- shapes.c: broadcasting ------------------------------------------- */

bool sh_bcast(sh *s, int ra, const ir_dim *a, int rb, const ir_dim *b, int *rr, ir_dim **out);
bool sh_bshape(const ir_type *t, int *r, const ir_dim **d);

/* ---- the rules, one per op family (the table is in shapes.c) ---------- */

/* shapes_math.c */
void sh_r_unary(sh *s);
void sh_r_norm(sh *s);
void sh_r_prelu(sh *s);
void sh_r_binary(sh *s);
void sh_r_where(sh *s);
void sh_r_masked_fill(sh *s);
void sh_r_clamp(sh *s);
void sh_r_to(sh *s);
void sh_r_matmul(sh *s);
void sh_r_linear(sh *s);
void sh_r_composite(sh *s);
void sh_r_rnn_scan(sh *s);
void sh_r_conv(sh *s);
void sh_r_pool(sh *s);
void sh_r_adaptive(sh *s);
void sh_r_reduce(sh *s);
void sh_r_reduce_all(sh *s);
void sh_r_reduce_dim(sh *s);
void sh_r_softmax(sh *s);

/* shapes_layout.c */
void sh_r_view(sh *s);
void sh_r_flatten(sh *s);
void sh_r_unflatten(sh *s);
void sh_r_squeeze(sh *s);
void sh_r_unsqueeze(sh *s);
void sh_r_expand(sh *s);
void sh_r_expand_as(sh *s);
void sh_r_repeat(sh *s);
void sh_r_resize(sh *s);
void sh_r_permute(sh *s);
void sh_r_transpose(sh *s);
void sh_r_slice(sh *s);
void sh_r_select(sh *s);
void sh_r_narrow(sh *s);
void sh_r_split(sh *s);
void sh_r_cat(sh *s);
void sh_r_pad(sh *s);
void sh_r_pixel_shuffle(sh *s);
void sh_r_upsample(sh *s);
void sh_r_embedding(sh *s);
void sh_r_index(sh *s);
void sh_r_gather(sh *s);
void sh_r_index_select(sh *s);
void sh_r_one_hot(sh *s);

/* shapes_meta.c */
void sh_r_create(sh *s);
void sh_r_like(sh *s);
void sh_r_arange(sh *s);
void sh_r_tensor_from(sh *s);
void sh_r_constant(sh *s);
void sh_r_weight(sh *s);
void sh_r_size(sh *s);
void sh_r_num_to_tensor(sh *s);
void sh_r_to_scalar(sh *s);
void sh_r_scalar(sh *s);
void sh_r_list_construct(sh *s);
void sh_r_unpack(sh *s);
void sh_r_get(sh *s);
void sh_r_tuple_construct(sh *s);

#endif
