/* print.c — the textual IR.
 *
 * The format, read back exactly by parse.c (print(parse(print(g))) is
 * byte-identical to print(g)):
 *
 *   graph forward(%0 x: f32[1,3,224,224], %1 mask: i64[b,s]) -> (f32[1,1000]) {
 *     %2 = constant(2) : int
 *     %3 = constant(1.5) : float
 *     %4 = constant(true) : bool
 *     %5 = constant(none) : none
 *     %6 = constant("cpu") : device
 *     %7 = constant("tanh") : str
 *     %8 = constant([1, 1]) : list<int>
 *     %9 = constant([0.5, 2.]) : list<float>
 *     %10 = weight("conv1.weight") : f32[64,3,7,7]
 *     %11 = convolution(%0, %10, %5, %8, %8, %8, %4, %8, %2) : f32[1,64,112,112]
 *     %12 = relu(%11) {inplace} : f32[1,64,112,112]
 *     %13, %14 = max_dim(%12, %2, %4) : f32[1,64,112], i64[1,64,112]
 *     return %11, %12
 *   }
 *
 * - Values are renumbered in print order: the inputs 0..n-1, then the
 *   results of the live nodes in program order (dead nodes are skipped). A
 *   value with no number (a result of a dead node, a bad id) prints "%?".
 * - Names (graph, inputs) print bare when they are identifiers
 *   ([A-Za-z_][A-Za-z0-9_]*), else as a quoted string. An input without a
 *   name prints as "%0: TYPE". The "-> (...)" list is the output types.
 * - Node line: "RESULTS = OP(OPERANDS) {ATTRS} : TYPES", results and types
 *   separated by ", "; a node without results prints "OP(OPERANDS) {ATTRS}".
 *   ATTRS, when any: "inplace" (IR_NF_INPLACE) and "index=N" (printed for
 *   tuple_get, and for any node whose index is not 0), joined by ", ".
 *   constant() holds the literal and weight() the weight's quoted name.
 * - Literals: ints in decimal; floats with the fewest significant digits
 *   (%.1g ... %.17g) that read back to the same double, always with a '.'
 *   or an exponent ("2.", "0.1", "1e+20"), or inf, -inf, nan; true, false,
 *   none; strings in double quotes with \" \\ \n \t and \xHH for other
 *   control and non-ASCII bytes; lists "[1, 2]".
 * - Types: tensors "f32[1,3,224,224]", dims as in dims.c ("f32[b,4*s]"), "?"
 *   for an unknown dim, "f32[*]" for unknown rank, "f32[]" for rank 0, "?"
 *   for an unknown dtype ("?[*]"); int float bool none str device unknown;
 *   "list<int>", "tuple<f32[1],int>".
 * - A node of a fused group (passes/fuse.c) gets `  group(N)` after its
 *   types, N renumbered 1, 2, ... in order of first appearance.
 * - IR_PRINT_LOC appends `  loc("file":line:col)` to nodes with a file;
 *   IR_PRINT_SCOPE appends `  scope("layer1.0")` to nodes with a non-empty
 *   scope.
 */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ir_number_values(const ir_graph *g, int32_t *num) {
  for (int v = 0; v < g->values.len; v++) num[v] = -1;
  int32_t next = 0;
  for (int i = 0; i < g->inputs.len; i++) {
    ir_value v = g->inputs.data[i];
    if (v >= 0 && v < g->values.len && num[v] < 0) num[v] = next++;
  }
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    if (id < 0 || id >= g->nodes.len) continue;
    const ir_node *n = &g->nodes.data[id];
    if (n->flags & IR_NF_DEAD) continue;
    for (int j = 0; j < n->nout; j++) {
      ir_value v = n->out[j];
      if (v >= 0 && v < g->values.len && num[v] < 0) num[v] = next++;
    }
  }
}

/* ---- literals --------------------------------------------------------- */

static void print_string(nn_buf *b, const char *s) {
  nn_buf_putn(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\')
      nn_buf_printf(b, "\\%c", *p);
    else if (*p == '\n')
      nn_buf_putn(b, "\\n", 2);
    else if (*p == '\t')
      nn_buf_putn(b, "\\t", 2);
    else if (*p < 0x20 || *p >= 0x7f)
      nn_buf_printf(b, "\\x%02x", *p);
    else
      nn_buf_putn(b, (const char *)p, 1);
  }
  nn_buf_putn(b, "\"", 1);
}

static bool ident_like(const char *s) {
  if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
  for (s++; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return false;
  return true;
}

void ir_print_name(nn_buf *b, const char *s) {
  if (ident_like(s))
    nn_buf_printf(b, "%s", s);
  else
    print_string(b, s);
}

static void print_float(nn_buf *b, double f) {
  if (isnan(f)) {
    nn_buf_putn(b, "nan", 3);
    return;
  }
  if (isinf(f)) {
    nn_buf_printf(b, "%s", f < 0 ? "-inf" : "inf");
    return;
  }
  char s[40];
  for (int digits = 1; digits <= 17; digits++) {
    snprintf(s, sizeof s, "%.*g", digits, f);
    double back = strtod(s, NULL);
    /* bitwise on purpose: -0.0 must come back as -0.0 */
    // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison)
    if (memcmp(&back, &f, sizeof f) == 0) break;
  }
  nn_buf_printf(b, "%s", s);
  if (!strpbrk(s, ".e")) nn_buf_putn(b, ".", 1);
}

static void print_const(nn_buf *b, const ir_const *c) {
  switch (c->kind) {
  case IR_C_INT: nn_buf_printf(b, "%lld", (long long)c->i); return;
  case IR_C_FLOAT: print_float(b, c->f); return;
  case IR_C_BOOL: nn_buf_printf(b, "%s", c->i ? "true" : "false"); return;
  case IR_C_NONE: nn_buf_putn(b, "none", 4); return;
  case IR_C_STR:
  case IR_C_DEVICE: print_string(b, c->s); return;
  case IR_C_INTLIST:
  case IR_C_FLOATLIST:
  case IR_C_BOOLLIST:
    nn_buf_putn(b, "[", 1);
    for (int i = 0; i < c->n; i++) {
      if (i) nn_buf_putn(b, ", ", 2);
      if (c->kind == IR_C_FLOATLIST)
        print_float(b, c->floats ? c->floats[i] : 0);
      else if (c->kind == IR_C_BOOLLIST)
        nn_buf_printf(b, "%s", c->ints && c->ints[i] ? "true" : "false");
      else
        nn_buf_printf(b, "%lld", c->ints ? (long long)c->ints[i] : 0LL);
    }
    nn_buf_putn(b, "]", 1);
    return;
  }
  nn_buf_putn(b, "?", 1);
}

/* ---- types ------------------------------------------------------------ */

void ir_type_print(nn_buf *b, const ir_graph *g, const ir_type *t) {
  if (!t) {
    nn_buf_putn(b, "unknown", 7);
    return;
  }
  switch (t->kind) {
  case IR_T_UNKNOWN: nn_buf_putn(b, "unknown", 7); return;
  case IR_T_INT: nn_buf_putn(b, "int", 3); return;
  case IR_T_FLOAT: nn_buf_putn(b, "float", 5); return;
  case IR_T_BOOL: nn_buf_putn(b, "bool", 4); return;
  case IR_T_NONE: nn_buf_putn(b, "none", 4); return;
  case IR_T_STR: nn_buf_putn(b, "str", 3); return;
  case IR_T_DEVICE: nn_buf_putn(b, "device", 6); return;
  case IR_T_TENSOR:
    nn_buf_printf(b, "%s[", nn_dtype_name(t->dtype));
    if (t->rank < 0 || !t->dims) {
      nn_buf_putn(b, "*", 1);
    } else {
      for (int i = 0; i < t->rank; i++) {
        if (i) nn_buf_putn(b, ",", 1);
        ir_dim_print(b, g, t->dims[i]);
      }
    }
    nn_buf_putn(b, "]", 1);
    return;
  case IR_T_LIST:
  case IR_T_TUPLE:
    nn_buf_printf(b, "%s<", t->kind == IR_T_LIST ? "list" : "tuple");
    for (int i = 0; i < t->nelems; i++) {
      if (i) nn_buf_putn(b, ",", 1);
      ir_type_print(b, g, t->elems[i]);
    }
    nn_buf_putn(b, ">", 1);
    return;
  }
  nn_buf_putn(b, "unknown", 7);
}

/* ---- graphs ----------------------------------------------------------- */

static void print_value(nn_buf *b, const ir_graph *g, const int32_t *num, ir_value v) {
  if (v >= 0 && v < g->values.len && num[v] >= 0)
    nn_buf_printf(b, "%%%d", num[v]);
  else
    nn_buf_putn(b, "%?", 2);
}

static void print_vtype(nn_buf *b, const ir_graph *g, ir_value v) {
  ir_type_print(b, g, v >= 0 && v < g->values.len ? g->values.data[v].type : NULL);
}

/* Group ids print renumbered 1, 2, ... in order of first appearance, so
 * the text does not depend on how the fusion pass counted. */
typedef struct groupnum {
  int32_t *orig; /* group ids seen, in order of first appearance */
  int n, cap;
} groupnum;

static int32_t group_number(groupnum *gn, int32_t id) {
  if (gn->n > 0 && gn->orig[gn->n - 1] == id) return gn->n; /* the usual case */
  for (int i = 0; i < gn->n; i++)
    if (gn->orig[i] == id) return i + 1;
  if (gn->n == gn->cap) {
    gn->cap = gn->cap ? gn->cap * 2 : 16;
    gn->orig = realloc(gn->orig, sizeof *gn->orig * (size_t)gn->cap);
    if (!gn->orig) nn_internal_error(__FILE__, __LINE__, "out of memory");
  }
  gn->orig[gn->n++] = id;
  return gn->n;
}

static void print_node(nn_buf *b, const ir_graph *g, const int32_t *num, const ir_node *n,
                       unsigned flags, groupnum *gn) {
  nn_buf_putn(b, "  ", 2);
  for (int i = 0; i < n->nout; i++) {
    if (i) nn_buf_putn(b, ", ", 2);
    print_value(b, g, num, n->out[i]);
  }
  if (n->nout) nn_buf_putn(b, " = ", 3);
  nn_buf_printf(b, "%s(", (unsigned)n->op < NN_OP_COUNT ? ir_ops[n->op].name : "?");
  if (n->op == NN_OP_CONSTANT) {
    print_const(b, &n->c);
  } else if (n->op == NN_OP_WEIGHT) {
    if (n->weight >= 0 && n->weight < g->weights.len)
      print_string(b, g->weights.data[n->weight].name);
    else
      nn_buf_putn(b, "?", 1);
  }
  for (int i = 0; i < n->nin; i++) {
    if (i || n->op == NN_OP_CONSTANT || n->op == NN_OP_WEIGHT) nn_buf_putn(b, ", ", 2);
    print_value(b, g, num, n->in[i]);
  }
  nn_buf_putn(b, ")", 1);
  bool inplace = n->flags & IR_NF_INPLACE;
  bool index = n->op == NN_OP_TUPLE_GET || n->index != 0;
  if (inplace || index) {
    nn_buf_putn(b, " {", 2);
    if (inplace) nn_buf_printf(b, "inplace%s", index ? ", " : "");
    if (index) nn_buf_printf(b, "index=%lld", (long long)n->index);
    nn_buf_putn(b, "}", 1);
  }
  if (n->nout) {
    nn_buf_putn(b, " : ", 3);
    for (int i = 0; i < n->nout; i++) {
      if (i) nn_buf_putn(b, ", ", 2);
      print_vtype(b, g, n->out[i]);
    }
  }
  if (n->group > 0) nn_buf_printf(b, "  group(%d)", group_number(gn, n->group));
  if ((flags & IR_PRINT_LOC) && n->loc.file) {
    nn_buf_putn(b, "  loc(", 6);
    print_string(b, n->loc.file);
    nn_buf_printf(b, ":%d:%d)", n->loc.line, n->loc.col);
  }
  if ((flags & IR_PRINT_SCOPE) && n->scope && n->scope[0]) {
    nn_buf_putn(b, "  scope(", 8);
    print_string(b, n->scope);
    nn_buf_putn(b, ")", 1);
  }
  nn_buf_putn(b, "\n", 1);
}

void ir_print(nn_buf *b, const ir_graph *g, unsigned flags) {
  int32_t *num = malloc(sizeof *num * (size_t)(g->values.len + 1));
  if (!num) nn_internal_error(__FILE__, __LINE__, "out of memory");
  ir_number_values(g, num);
  nn_buf_putn(b, "graph ", 6);
  ir_print_name(b, g->name ? g->name : "");
  nn_buf_putn(b, "(", 1);
  for (int i = 0; i < g->inputs.len; i++) {
    if (i) nn_buf_putn(b, ", ", 2);
    print_value(b, g, num, g->inputs.data[i]);
    const char *name = i < g->input_names.len ? g->input_names.data[i] : NULL;
    if (name) {
      nn_buf_putn(b, " ", 1);
      ir_print_name(b, name);
    }
    nn_buf_putn(b, ": ", 2);
    print_vtype(b, g, g->inputs.data[i]);
  }
  nn_buf_putn(b, ") -> (", 6);
  for (int i = 0; i < g->outputs.len; i++) {
    if (i) nn_buf_putn(b, ", ", 2);
    print_vtype(b, g, g->outputs.data[i]);
  }
  nn_buf_putn(b, ") {\n", 4);
  groupnum gn = {0};
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid id = g->order.data[i];
    if (id < 0 || id >= g->nodes.len) continue;
    const ir_node *n = &g->nodes.data[id];
    if (!(n->flags & IR_NF_DEAD)) print_node(b, g, num, n, flags, &gn);
  }
  free(gn.orig);
  nn_buf_putn(b, "  return", 8);
  for (int i = 0; i < g->outputs.len; i++) {
    nn_buf_putn(b, i ? ", " : " ", i ? 2 : 1);
    print_value(b, g, num, g->outputs.data[i]);
  }
  nn_buf_putn(b, "\n}\n", 3);
  free(num);
}
