/* test_optable.c — the per-op table of ir/ops.def is complete and agrees
 * with itself.
 *
 * Every row names a shape rule (passes/shapes.c reads sh_r_<shape>) and a
 * lowering (lower/schedule.c reads kl_lower_<lower>); a row that names
 * `none` for either is an op that cannot be compiled yet, and fails here by
 * name. A lowering of `removed` (the passes guarantee the op is gone before
 * lowering) counts as one.
 * The properties that other passes read from the flags must match the
 * lowering: an alias (no kernel, the result shares operand 0's storage) is
 * exactly a view or an eval-mode identity; only gemm-like ops take a fused
 * epilogue, and each has a lowering that accepts one; broadcasting and
 * keeps-rank ops have a rank-preserving shape rule.
 */
#include "ir/ir.h"
#include "lower/lower.h"
#include "passes/passes.h"
#include "unit.h"

static void test_complete(void) {
  int missing = 0;
  for (int op = 0; op < NN_OP_COUNT; op++) {
    const ir_opinfo *o = &ir_ops[op];
    bool removed = strcmp(o->lower, "removed") == 0;
    if (!pass_shapes_has_rule((ir_op)op)) {
      fprintf(stderr, "op %s has no shape rule (ops.def names '%s')\n", o->name, o->shape);
      missing++;
    }
    if (!kl_lowering((ir_op)op) && !removed) {
      fprintf(stderr, "op %s has no lowering (ops.def names '%s')\n", o->name, o->lower);
      missing++;
    }
    CHECK(strcmp(o->shape, "none") != 0);
    CHECK(strcmp(o->lower, "none") != 0);
  }
  CHECK_INT(missing, 0);
}

static void test_consistent(void) {
  for (int op = 0; op < NN_OP_COUNT; op++) {
    const ir_opinfo *o = &ir_ops[op];
    kl_lower_fn f = kl_lowering((ir_op)op);
    bool alias = f == kl_lower_alias;
    bool view = o->fusion == IR_FUSE_VIEW || (o->flags & IR_IDENTITY);
    if (alias != view)
      fprintf(stderr, "op %s: lowering %s, fusion %s\n", o->name, o->lower,
              ir_fusion_name(o->fusion));
    CHECK(alias == view);
    if (o->fusion == IR_FUSE_GEMM) {
      bool ep = f == kl_lower_linear || f == kl_lower_matmul || f == kl_lower_conv;
      if (!ep) fprintf(stderr, "gemm-like op %s cannot take a fused epilogue\n", o->name);
      CHECK(ep);
    }
    if (o->fusion == IR_FUSE_META) {
      bool meta = f == kl_lower_on_use || f == kl_lower_list || f == kl_lower_scalar;
      if (!meta) fprintf(stderr, "meta op %s has a kernel lowering (%s)\n", o->name, o->lower);
      CHECK(meta);
    }
    if (o->flags & IR_FLOAT_ONLY) CHECK(o->fusion == IR_FUSE_ELEMENTWISE);
    if (o->flags & IR_KEEPS_RANK) CHECK(o->nout == 1 && o->nin != 0);
  }
}

int main(void) {
  test_complete();
  test_consistent();
  return unit_report("optable");
}
