/* passes.h — the pass layer: IR → IR transformations and the pipeline.
 *
 * Sections, one per file:
 *   pipeline.c      the ordered pass list, --print-after, input specs
 *   canonicalize.c  in-place → pure, eval-mode identities, DCE, CSE
 *   shapes.c        dtype and dims of every value; folds shape arithmetic
 *                   (its rules: shapes_math.c, shapes_layout.c, shapes_meta.c)
 *   infer_inputs.c  the dtype and rank of inputs without an --input spec,
 *                   from their uses; dims symbolic, unified across inputs
 *   fold.c          batch_norm folded into the convolution/linear before it
 *                   (else into a broadcast multiply-add)
 *   fp16.c          --precision fp16|bf16: 16-bit values and weights
 *   fuse.c          fused groups: elementwise chains, gemm epilogues
 *
 * Passes never call the frontend; they report problems with the user's model
 * through nn_diag at the node's source location and return the number of
 * errors (0 = success).
 */
#ifndef NNCC_PASSES_H
#define NNCC_PASSES_H

#include "../ir/ir.h"

/* One dim of an --input spec: "224", "b", "b=1..32". */
typedef struct pass_dimspec {
  const char *name; /* symbolic name, or NULL for a number */
  int64_t value;    /* the number when name is NULL */
  int64_t lo, hi;   /* range when has_range */
  bool has_range;
} pass_dimspec;

/* --input NAME:DTYPE[DIMS] */
typedef struct pass_input_spec {
  const char *name;   /* the forward() parameter name */
  nn_dtype dtype;     /* element type */
  int rank;           /* number of dims */
  pass_dimspec *dims; /* rank dims */
  /* Scalar inputs ("incr:float", "n:int") have rank -1 and kind set. */
  ir_tkind kind; /* IR_T_TENSOR, or IR_T_INT/IR_T_FLOAT/IR_T_BOOL */
} pass_input_spec;

/* Parses "x:f32[1,3,224,224]", "ids:i64[b=1..32,s]", "incr:float".
 * Returns 0, or -1 with a message in err ("expected ':' after the input
 * name in 'x[1,2]'"). */
int pass_parse_input_spec(const char *text, nn_arena *arena, pass_input_spec *out, char *err,
                          size_t errlen);

/* ---- passes ------------------------------------------------------------ */

/* in-place → pure where no alias observes it; eval-mode identities removed;
 * CSE of constants and pure ops; DCE. */
int pass_canonicalize(ir_graph *g, nn_diag *d);
/* Dead-code elimination alone (used by other passes). */
void pass_dce(ir_graph *g);
/* Static shape inference: every input must have a spec (matched by name).
 * Sets every value's type; folds size/int/list arithmetic to constants;
 * records the declared ranges of symbols in g->sym_ranges (a symbol given
 * two different ranges is an error); reports shape errors at the node's
 * location. */
int pass_shapes(ir_graph *g, const pass_input_spec *specs, int nspecs, nn_diag *d);
/* Whether op has a shape rule (its ops.def row names one). */
bool pass_shapes_has_rule(ir_op op);
/* What input inference needs from a run of the shapes pass. */
typedef struct pass_shapes_hooks {
  bool partial; /* a trial run: inputs without a spec stay unknown; nothing
                   is reported, folded or recorded in g->sym_ranges (types
                   are still set); the error count is still returned */
  void (*unify)(void *ctx, ir_dim a, ir_dim b); /* called for each pair of
                                                   distinct dims that a rule assumes equal (broadcast,
                                                   matmul inner dims, cat, channel counts), or NULL */
  void *ctx;                                    /* passed to unify */
} pass_shapes_hooks;
/* pass_shapes with hooks (NULL: none). */
int pass_shapes_with(ir_graph *g, const pass_input_spec *specs, int nspecs,
                     const pass_shapes_hooks *hooks, nn_diag *d);
/* infer_inputs.c: completes the specs: returns in *out (arena) one spec
 * per graph input, in input order: the user's spec where `specs` names
 * the input, else one inferred from the input's uses (see the file for
 * the rules and the naming of the symbols). Reports at `at` (the model
 * file) each input whose dtype or rank cannot be inferred, with a note
 * showing the --input flags, and returns the error count. --input names
 * that match no input are left for pass_shapes to report. */
int pass_infer_inputs(ir_graph *g, const pass_input_spec *specs, int nspecs, nn_loc at,
                      pass_input_spec **out, int *nout, nn_diag *d);
/* The text of a spec as --input takes it ("x:f32[B,3,H,W]"), in arena. */
const char *pass_input_spec_str(const pass_input_spec *sp, nn_arena *arena);
/* fold.c: eval-mode batch_norm right after a convolution or 2-d linear
 * (the only use of its result) whose weight, bias and statistics are f32
 * weights becomes new weights of that op; any other eval-mode batch_norm
 * with f32 weight statistics becomes x * scale + shift (new [C,1,...]
 * weights). Needs shapes. Never fails (returns 0); what does not qualify
 * stays. */
int pass_fold(ir_graph *g, nn_diag *d);

/* expand.c: replaces every composite node (losses, distances, bilinear,
 * broadcast_tensors: the ops.def rows whose shape rule is `composite`)
 * whose operands are typed by the ops it stands for, untyped, inserted in
 * its place. Returns how many it expanded (run the shapes pass again when
 * > 0), or -1 after reporting errors, among them a composite left when
 * none could be expanded. */
int pass_expand(ir_graph *g, nn_diag *d);
/* fp16.c: with precision F16 or BF16, f32 tensors computed by ops off the
 * deny list (see the file) become 16-bit, f32 weights become 16-bit
 * weights (data converted into the arena), and `to` casts join the two;
 * inputs and outputs keep their dtypes. Any other precision: a no-op.
 * Needs shapes; run it before fuse. Returns 0. */
int pass_fp16(ir_graph *g, nn_dtype precision, nn_diag *d);
/* fuse.c: sets ir_node.group (see the file comment for the rules) and
 * reorders program order so that each group is contiguous. Needs shapes;
 * run it last (a later CSE could merge nodes of two groups). Returns 0. */
int pass_fuse(ir_graph *g, nn_diag *d);

/* ---- pipeline ---------------------------------------------------------- */

typedef struct pass_opts {
  const pass_input_spec *inputs; /* --input specs; the shapes pass infers
                                    the inputs they leave out */
  int ninputs;
  nn_loc inputs_loc;       /* where errors about inputs point (the
                              model file) */
  const char *print_after; /* pass name, or NULL */
  bool print_after_all;
  unsigned print_flags;   /* IR_PRINT_* */
  FILE *dump;             /* where dumps go (stdout) */
  bool verify_each;       /* run ir_verify after every pass */
  const char *stop_after; /* pass name to stop after, or NULL */
  const char *passes;     /* comma-separated pass list replacing the
                             default pipeline ("none" = no pass), or
                             NULL for the default */
  nn_dtype precision;     /* --precision: F16/BF16 run the fp16 pass
                             (F32 or UNKNOWN: full precision) */
} pass_opts;

/* Names of the passes in order, NULL-terminated ("canonicalize", "shapes").
 * The frontend's own step is called "import". */
extern const char *const pass_names[];
/* Checks a --passes list; returns 0 or -1 with a message in err. */
int pass_check_list(const char *list, char *err, size_t errlen);
/* Runs the pipeline; returns the error count. */
int pass_pipeline_run(ir_graph *g, const pass_opts *o, nn_diag *d);

#endif
