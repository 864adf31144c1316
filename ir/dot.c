/* dot.c — the graph as Graphviz text (`nncc inspect MODEL.pt --dot FILE`).
 *
 * One box per node that computes a tensor (every op whose fusion class is
 * not META), labelled with the op and its result type; one ellipse per
 * graph input and output. Constants, weights and list/tuple plumbing are
 * left out: an edge into a node comes from the computing nodes (or inputs)
 * that its operands derive from, looking through META nodes, so a `cat`
 * of a list still shows an edge from each listed tensor. The nodes of one
 * fused group (ir_node.group > 0) sit in one cluster, "group N", which is
 * how the fusion pass's decisions show up in the picture. The tooltip of a
 * node is its module scope.
 */
#include "ir.h"

#include <stdio.h>
#include <string.h>

/* Appends s with '"' and '\' escaped, for a double-quoted dot string. */
static void put_escaped(nn_buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"' || s[i] == '\\') nn_buf_putn(b, "\\", 1);
    if (s[i] == '\n')
      nn_buf_putn(b, "\\n", 2);
    else
      nn_buf_putn(b, &s[i], 1);
  }
}

static bool computes(const ir_graph *g, ir_nodeid n) {
  return ir_ops[g->nodes.data[n].op].fusion != IR_FUSE_META;
}

/* The node's box: "nN [label=...]", indented deeper inside a cluster. */
static void put_node(nn_buf *b, const ir_graph *g, ir_nodeid n, bool nested) {
  const ir_node *nd = &g->nodes.data[n];
  nn_buf t = {0};
  nn_buf_printf(&t, "%s", ir_ops[nd->op].name);
  for (int k = 0; k < nd->nout; k++) {
    nn_buf_printf(&t, k ? ", " : "\n");
    ir_type_print(&t, g, ir_vtype(g, nd->out[k]));
  }
  nn_buf_printf(b, "%sn%d [label=\"", nested ? "    " : "  ", (int)n);
  put_escaped(b, t.data ? t.data : "", t.len);
  nn_buf_printf(b, "\", tooltip=\"");
  const char *scope = nd->scope && *nd->scope ? nd->scope : "(root)";
  put_escaped(b, scope, strlen(scope));
  nn_buf_printf(b, "\"];\n");
  nn_buf_free(&t);
}

/* Writes the edges into `to` (a dot node name) from what value v derives
 * from. `stamp`/`mark` keep one edge per source: mark[n] == stamp means
 * node n was already linked to `to`; depth bounds the walk through META
 * chains. */
static void put_edges(nn_buf *b, const ir_graph *g, ir_value v, const char *to, int *mark,
                      int stamp, int depth) {
  if (v < 0 || v >= g->values.len || depth > 64) return;
  ir_nodeid def = g->values.data[v].def;
  if (def < 0) {
    int idx = g->values.data[v].idx;
    nn_buf_printf(b, "  in%d -> %s;\n", (int)idx, to);
    return;
  }
  if (mark[def] == stamp) return;
  mark[def] = stamp;
  if (computes(g, def)) {
    nn_buf_printf(b, "  n%d -> %s;\n", (int)def, to);
    return;
  }
  const ir_node *nd = &g->nodes.data[def];
  for (int k = 0; k < nd->nin; k++) put_edges(b, g, nd->in[k], to, mark, stamp, depth + 1);
}

void ir_dot(nn_buf *b, const ir_graph *g) {
  nn_buf_printf(b, "digraph \"");
  put_escaped(b, g->name ? g->name : "graph", strlen(g->name ? g->name : "graph"));
  nn_buf_printf(b, "\" {\n");
  nn_buf_printf(b, "  rankdir=TB;\n");
  nn_buf_printf(b, "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", "
                   "fontname=\"Helvetica\", fontsize=10];\n");
  nn_buf_printf(b, "  edge [color=\"#555555\", arrowsize=0.6];\n");
  for (int i = 0; i < g->inputs.len; i++) {
    nn_buf t = {0};
    const char *name = i < g->input_names.len && g->input_names.data[i] ? g->input_names.data[i]
                                                                        : "input";
    nn_buf_printf(&t, "%s\n", name);
    ir_type_print(&t, g, ir_vtype(g, g->inputs.data[i]));
    nn_buf_printf(b, "  in%d [shape=ellipse, fillcolor=\"#fff5d6\", label=\"", i);
    put_escaped(b, t.data ? t.data : "", t.len);
    nn_buf_printf(b, "\"];\n");
    nn_buf_free(&t);
  }
  /* Nodes, a cluster around each fused group (its members are contiguous
   * in program order, ir_verify). */
  int32_t open = 0;
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid n = g->order.data[i];
    if (!computes(g, n)) continue;
    int32_t grp = g->nodes.data[n].group;
    if (grp != open && open > 0) nn_buf_printf(b, "  }\n");
    if (grp != open && grp > 0)
      nn_buf_printf(b,
                    "  subgraph cluster_g%d {\n    label=\"group %d\"; style=\"rounded,dashed\"; "
                    "color=\"#3366aa\"; fontname=\"Helvetica\"; fontsize=9;\n",
                    (int)grp, (int)grp);
    open = grp;
    put_node(b, g, n, grp > 0);
  }
  if (open > 0) nn_buf_printf(b, "  }\n");
  /* Edges. */
  int *mark = nn_alloc(g->arena, sizeof(int) * (size_t)(g->nodes.len ? g->nodes.len : 1));
  int stamp = 0;
  char to[32];
  for (int i = 0; i < g->order.len; i++) {
    ir_nodeid n = g->order.data[i];
    if (!computes(g, n)) continue;
    const ir_node *nd = &g->nodes.data[n];
    snprintf(to, sizeof to, "n%d", (int)n);
    stamp++;
    for (int k = 0; k < nd->nin; k++) put_edges(b, g, nd->in[k], to, mark, stamp, 0);
  }
  for (int i = 0; i < g->outputs.len; i++) {
    nn_buf_printf(b, "  out%d [shape=ellipse, fillcolor=\"#e3f4e1\", label=\"output %d\"];\n", i,
                  i);
    snprintf(to, sizeof to, "out%d", i);
    stamp++;
    put_edges(b, g, g->outputs.data[i], to, mark, stamp, 0);
  }
  nn_buf_printf(b, "}\n");
}
