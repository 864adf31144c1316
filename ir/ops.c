/* ops.c — the op table as data.
 *
 * ir_ops[] is generated from ops.def (one X-macro row per op), so the enum in
 * ir.h and this table can never disagree. ir_op_lookup() maps the textual
 * name used by the IR printer and parser back to the enum through a small
 * open-addressing hash built once on first use.
 */
#include "ir.h"

#include <pthread.h>
#include <string.h>

const ir_opinfo ir_ops[NN_OP_COUNT] = {
#define OP(id, name, nin, nout, fusion, flags, shape, lower, doc) \
  [NN_OP_##id] = {name, nin, nout, fusion, flags, #shape, #lower, doc},
#include "ops.def"
#undef OP
};

/* Hash slots hold op+1 (0 = empty); the table is at least twice the op
 * count so probing always ends. */
enum { LOOKUP_SLOTS = 1024 };
_Static_assert(LOOKUP_SLOTS >= 2 * NN_OP_COUNT, "grow LOOKUP_SLOTS");
static uint16_t lookup_slots[LOOKUP_SLOTS];
static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void lookup_init(void) {
  for (int op = 0; op < NN_OP_COUNT; op++) {
    uint32_t i = name_hash(ir_ops[op].name) & (LOOKUP_SLOTS - 1);
    while (lookup_slots[i]) {
      /* Two rows with one name would make the text ambiguous. */
      NN_ASSERT(strcmp(ir_ops[lookup_slots[i] - 1].name, ir_ops[op].name) != 0);
      i = (i + 1) & (LOOKUP_SLOTS - 1);
    }
    lookup_slots[i] = (uint16_t)(op + 1);
  }
}

ir_op ir_op_lookup(const char *name) {
  if (!name) return NN_OP_COUNT;
  pthread_once(&lookup_once, lookup_init);
  uint32_t i = name_hash(name) & (LOOKUP_SLOTS - 1);
  while (lookup_slots[i]) {
    int op = lookup_slots[i] - 1;
    if (strcmp(ir_ops[op].name, name) == 0) return (ir_op)op;
    i = (i + 1) & (LOOKUP_SLOTS - 1);
  }
  return NN_OP_COUNT;
}

const char *ir_fusion_name(ir_fusion f) {
  switch (f) {
  case IR_FUSE_META: return "meta";
  case IR_FUSE_ELEMENTWISE: return "elementwise";
  case IR_FUSE_BROADCAST: return "broadcast";
  case IR_FUSE_INJECTIVE: return "injective";
  case IR_FUSE_VIEW: return "view";
  case IR_FUSE_REDUCTION: return "reduction";
  case IR_FUSE_GEMM: return "gemm";
  case IR_FUSE_OPAQUE: return "opaque";
  }
  return "?";
}
