/* test_ir.c — the IR layer: op table, dims, types, printer, parser,
 * verifier.
 *
 * The printed form is compared with exact expected text, parsed back and
 * printed again (byte-identical), and fed garbage that must only produce
 * located errors. Dims are checked for their canonical forms and
 * hash-consing; the verifier and the parser for their exact messages.
 */
#include "../../ir/ir.h"
#include "unit.h"

#include <math.h>

static const nn_loc NOLOC = {0};

/* Diagnostics captured into a string. */
typedef struct capture {
  nn_diag d;  /* the sink to pass */
  char *text; /* what was printed, after capture_end */
  size_t len; /* its length */
} capture;

static void capture_begin(capture *c) {
  c->text = NULL;
  c->len = 0;
  nn_diag_init(&c->d, open_memstream(&c->text, &c->len));
}

static const char *capture_end(capture *c) {
  fclose(c->d.out);
  return c->text;
}

static char *print_graph(const ir_graph *g, unsigned flags) {
  nn_buf b = {0};
  ir_print(&b, g, flags);
  return b.data; /* caller frees */
}

static char *dim_text(const ir_graph *g, ir_dim d) {
  static char out[256];
  nn_buf b = {0};
  ir_dim_print(&b, g, d);
  snprintf(out, sizeof out, "%s", b.data ? b.data : "");
  nn_buf_free(&b);
  return out;
}

/* Parses text, prints it; returns malloc'd text or NULL (errors to stderr). */
static char *reprint(const char *text, unsigned flags) {
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  ir_graph *g = ir_parse(text, strlen(text), "t.nnir", a, &d);
  char *out = g ? print_graph(g, flags) : NULL;
  nn_arena_free(a);
  return out;
}

/* ---- op table --------------------------------------------------------- */

static void test_ops(void) {
  CHECK_INT(ir_op_lookup("convolution"), NN_OP_CONVOLUTION);
  CHECK_INT(ir_op_lookup("constant"), NN_OP_CONSTANT);
  CHECK_INT(ir_op_lookup("max_pool2d_with_indices"), NN_OP_MAX_POOL2D_INDICES);
  CHECK_INT(ir_op_lookup("tensor"), NN_OP_TENSOR_FROM);
  CHECK_INT(ir_op_lookup("conv"), NN_OP_COUNT);
  CHECK_INT(ir_op_lookup(""), NN_OP_COUNT);
  CHECK_INT(ir_ops[NN_OP_MAX_DIM].nout, 2);
  CHECK_INT(ir_ops[NN_OP_LIST_CONSTRUCT].nin, -1);
  CHECK_STR(ir_ops[NN_OP_RELU].name, "relu");
  CHECK_STR(ir_fusion_name(ir_ops[NN_OP_ADD].fusion), "broadcast");
  CHECK_STR(ir_fusion_name(IR_FUSE_GEMM), "gemm");
  int mismatched = 0;
  for (int op = 0; op < NN_OP_COUNT; op++) mismatched += ir_op_lookup(ir_ops[op].name) != (ir_op)op;
  CHECK_INT(mismatched, 0);
}

/* ---- the example graph ------------------------------------------------ */

static const ir_type *tensor(ir_graph *g, nn_dtype dt, int rank, const int64_t *sizes) {
  ir_dim d[8];
  for (int i = 0; i < rank; i++) d[i] = ir_dim_const(g, sizes[i]);
  return ir_type_tensor(g, dt, rank, d);
}

static ir_graph *build_example(nn_arena *a) {
  ir_graph *g = ir_graph_new(a, "forward");
  ir_value x = ir_add_input(g, "x", tensor(g, NN_DT_F32, 4, (int64_t[]){1, 3, 224, 224}));
  ir_dim bs[2] = {ir_dim_sym(g, "b"), ir_dim_sym(g, "s")};
  ir_add_input(g, "attention_mask", ir_type_tensor(g, NN_DT_I64, 2, bs));
  ir_value two = ir_const_int(g, 2, NOLOC);
  ir_value f15 = ir_const_float(g, 1.5, NOLOC);
  ir_value t = ir_const_bool(g, true, NOLOC);
  ir_value none = ir_const_none(g, NOLOC);
  ir_const dev = {.kind = IR_C_DEVICE, .s = "cpu"};
  ir_const_value(g, &dev, NOLOC);
  char tanh_s[] = "tanh"; /* copied by ir_const_value */
  ir_const str = {.kind = IR_C_STR, .s = tanh_s};
  ir_const_value(g, &str, NOLOC);
  tanh_s[0] = 'X';
  ir_const il = {.kind = IR_C_INTLIST, .n = 2, .ints = (int64_t[]){1, 1}};
  ir_value ones = ir_const_value(g, &il, NOLOC);
  ir_const fl = {.kind = IR_C_FLOATLIST, .n = 2, .floats = (double[]){0.5, 2.0}};
  ir_const_value(g, &fl, NOLOC);
  ir_weight w = {.name = "conv1.weight",
                 .dtype = NN_DT_F32,
                 .rank = 4,
                 .sizes = (int64_t[]){64, 3, 7, 7}};
  int32_t wi = ir_add_weight(g, &w);
  ir_nodeid wn = ir_append(g, NN_OP_WEIGHT, 0, NULL, 1, NOLOC);
  ir_node_get(g, wn)->weight = wi;
  ir_value wv = ir_node_get(g, wn)->out[0];
  ir_set_type(g, wv, tensor(g, NN_DT_F32, 4, (int64_t[]){64, 3, 7, 7}));
  ir_value cin[9] = {x, wv, none, ones, ones, ones, t, ones, two};
  nn_loc cl = {"code/__torch__/Net.py", 12, 5};
  ir_nodeid conv = ir_append(g, NN_OP_CONVOLUTION, 9, cin, 1, cl);
  ir_node_get(g, conv)->scope = "conv1";
  ir_value cv = ir_node_get(g, conv)->out[0];
  const ir_type *ct = tensor(g, NN_DT_F32, 4, (int64_t[]){1, 64, 112, 112});
  ir_set_type(g, cv, ct);
  ir_nodeid relu = ir_append(g, NN_OP_RELU, 1, &cv, 1, NOLOC);
  ir_node_get(g, relu)->flags |= IR_NF_INPLACE;
  ir_value rv = ir_node_get(g, relu)->out[0];
  ir_set_type(g, rv, ct);
  ir_nodeid mx = ir_append(g, NN_OP_MAX_DIM, 3, (ir_value[]){rv, two, t}, 2, NOLOC);
  ir_set_type(g, ir_node_get(g, mx)->out[0], tensor(g, NN_DT_F32, 3, (int64_t[]){1, 64, 112}));
  ir_set_type(g, ir_node_get(g, mx)->out[1], tensor(g, NN_DT_I64, 3, (int64_t[]){1, 64, 112}));
  ir_nodeid tc = ir_append(g, NN_OP_TUPLE_CONSTRUCT, 2, (ir_value[]){two, f15}, 1, NOLOC);
  const ir_type *el[2] = {ir_type_scalar(g, IR_T_INT), ir_type_scalar(g, IR_T_FLOAT)};
  ir_value tv = ir_node_get(g, tc)->out[0];
  ir_set_type(g, tv, ir_type_tuple(g, 2, el));
  ir_nodeid tg = ir_append(g, NN_OP_TUPLE_GET, 1, &tv, 1, NOLOC);
  ir_node_get(g, tg)->index = 1;
  ir_set_type(g, ir_node_get(g, tg)->out[0], ir_type_scalar(g, IR_T_FLOAT));
  ir_add_output(g, cv);
  ir_add_output(g, rv);
  return g;
}

static const char *EXAMPLE =
    "graph forward(%0 x: f32[1,3,224,224], %1 attention_mask: i64[b,s]) -> (f32[1,64,112,112], "
    "f32[1,64,112,112]) {\n"
    "  %2 = constant(2) : int\n"
    "  %3 = constant(1.5) : float\n"
    "  %4 = constant(true) : bool\n"
    "  %5 = constant(none) : none\n"
    "  %6 = constant(\"cpu\") : device\n"
    "  %7 = constant(\"tanh\") : str\n"
    "  %8 = constant([1, 1]) : list<int>\n"
    "  %9 = constant([0.5, 2.]) : list<float>\n"
    "  %10 = weight(\"conv1.weight\") : f32[64,3,7,7]\n"
    "  %11 = convolution(%0, %10, %5, %8, %8, %8, %4, %8, %2) : f32[1,64,112,112]\n"
    "  %12 = relu(%11) {inplace} : f32[1,64,112,112]\n"
    "  %13, %14 = max_dim(%12, %2, %4) : f32[1,64,112], i64[1,64,112]\n"
    "  %15 = tuple_construct(%2, %3) : tuple<int,float>\n"
    "  %16 = tuple_get(%15) {index=1} : float\n"
    "  return %11, %12\n"
    "}\n";

static void test_example(void) {
  nn_arena *a = nn_arena_new();
  ir_graph *g = build_example(a);
  char *text = print_graph(g, 0);
  CHECK_STR(text, EXAMPLE);
  char *again = reprint(text, 0);
  CHECK_STR(again, text);
  free(again);

  /* With locations and scopes. */
  char *full = print_graph(g, IR_PRINT_LOC | IR_PRINT_SCOPE);
  CHECK(strstr(full, "  %11 = convolution(%0, %10, %5, %8, %8, %8, %4, %8, %2) : "
                     "f32[1,64,112,112]  loc(\"code/__torch__/Net.py\":12:5)  "
                     "scope(\"conv1\")\n") != NULL);
  again = reprint(full, IR_PRINT_LOC | IR_PRINT_SCOPE);
  CHECK_STR(again, full);
  free(again);
  again = reprint(full, 0); /* the suffixes are optional information */
  CHECK_STR(again, text);
  free(again);
  free(full);

  capture c;
  capture_begin(&c);
  CHECK_INT(ir_verify(g, &c.d), 0);
  CHECK_STR(capture_end(&c), "");
  free(c.text);

  /* The parsed graph has the same structure, weights and constants. */
  nn_arena *b = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  ir_graph *p = ir_parse(text, strlen(text), "x.nnir", b, &d);
  CHECK(p != NULL);
  if (p) {
    CHECK_INT(p->inputs.len, 2);
    CHECK_STR(p->input_names.data[1], "attention_mask");
    CHECK_INT(p->weights.len, 1);
    CHECK_STR(p->weights.data[0].name, "conv1.weight");
    CHECK_INT(p->weights.data[0].rank, 4);
    CHECK_INT(p->weights.data[0].sizes[1], 3);
    CHECK_INT(p->weights.data[0].dtype, NN_DT_F32);
    CHECK(p->weights.data[0].data == NULL);
    const ir_const *k;
    CHECK(ir_value_const(p, 6, &k) && k->kind == IR_C_DEVICE);
    CHECK(ir_value_const(p, 9, &k) && k->kind == IR_C_FLOATLIST && k->n == 2 &&
          k->floats[1] == 2.0);
    CHECK(!ir_value_const(p, 0, &k));
    CHECK_INT(ir_use_count(p, 8), 4);
    CHECK_INT(ir_use_count(p, 11), 2);
    CHECK_INT(ir_verify(p, &d), 0);
    /* Node ids: the 8 constants, the weight, then convolution (9). */
    CHECK(ir_node_get(p, 10)->flags & IR_NF_INPLACE);
    CHECK_INT(ir_node_get(p, 10)->op, NN_OP_RELU);
    CHECK_INT(ir_node_get(p, 13)->index, 1);
    CHECK_INT(ir_node_get(p, 8)->weight, 0);
  }
  nn_arena_free(b);
  free(text);
  nn_arena_free(a);
}

/* Literals: escapes, float spellings, special values, lists. */
static void test_literals(void) {
  nn_arena *a = nn_arena_new();
  ir_graph *g = ir_graph_new(a, "input.1");
  ir_add_input(g, "x.1", ir_type_tensor(g, NN_DT_UNKNOWN, -1, NULL));
  ir_add_input(g, NULL, ir_type_tensor(g, NN_DT_BOOL, 0, NULL));
  ir_add_input(g, "y", ir_type_tensor(g, NN_DT_F16, 2, NULL));
  ir_const s = {.kind = IR_C_STR, .s = "a\"b\\c\nd\te\x01\xc3\xa9"};
  ir_const_value(g, &s, NOLOC);
  double fs[] = {0.1, -0.0, 1e20, 1.0 / 3, INFINITY, -INFINITY, NAN, 123456789.0, 5e-324};
  for (int i = 0; i < NN_ARRAY_LEN(fs); i++) ir_const_float(g, fs[i], NOLOC);
  ir_const_int(g, INT64_MIN, NOLOC);
  ir_const bl = {.kind = IR_C_BOOLLIST, .n = 2, .ints = (int64_t[]){1, 0}};
  ir_const_value(g, &bl, NOLOC);
  ir_const el = {.kind = IR_C_FLOATLIST, .n = 0, .floats = (double[]){0}};
  ir_const_value(g, &el, NOLOC);
  ir_const eb = {.kind = IR_C_BOOLLIST, .n = 0, .ints = (int64_t[]){0}};
  ir_const_value(g, &eb, NOLOC);
  ir_const e2 = {.kind = IR_C_INTLIST, .n = 3, .ints = (int64_t[]){-1, 0, 7}};
  ir_const_value(g, &e2, NOLOC);
  const ir_type *lt = ir_type_list(g, ir_type_tensor(g, NN_DT_F32, 2, NULL));
  ir_nodeid lc = ir_append(g, NN_OP_LIST_CONSTRUCT, 0, NULL, 1, NOLOC);
  ir_set_type(g, ir_node_get(g, lc)->out[0], lt);
  ir_append(g, NN_OP_LIST_UNPACK, 1, (ir_value[]){ir_node_get(g, lc)->out[0]}, 0,
            (nn_loc){"f", 0, 0});
  const char *want =
      "graph \"input.1\"(%0 \"x.1\": ?[*], %1: bool[], %2 y: f16[?,?]) -> () {\n"
      "  %3 = constant(\"a\\\"b\\\\c\\nd\\te\\x01\\xc3\\xa9\") : str\n"
      "  %4 = constant(0.1) : float\n"
      "  %5 = constant(-0.) : float\n"
      "  %6 = constant(1e+20) : float\n"
      "  %7 = constant(0.3333333333333333) : float\n"
      "  %8 = constant(inf) : float\n"
      "  %9 = constant(-inf) : float\n"
      "  %10 = constant(nan) : float\n"
      "  %11 = constant(123456789.) : float\n"
      "  %12 = constant(5e-324) : float\n"
      "  %13 = constant(-9223372036854775808) : int\n"
      "  %14 = constant([true, false]) : list<bool>\n"
      "  %15 = constant([]) : list<float>\n"
      "  %16 = constant([]) : list<bool>\n"
      "  %17 = constant([-1, 0, 7]) : list<int>\n"
      "  %18 = list_construct() : list<f32[?,?]>\n"
      "  list_unpack(%18)  loc(\"f\":0:0)\n"
      "  return\n"
      "}\n";
  char *text = print_graph(g, IR_PRINT_LOC);
  CHECK_STR(text, want);
  char *again = reprint(text, IR_PRINT_LOC);
  CHECK_STR(again, want);
  free(again);
  /* The parsed constants hold the exact values. */
  nn_diag d;
  nn_diag_init(&d, stderr);
  nn_arena *b = nn_arena_new();
  ir_graph *p = ir_parse(text, strlen(text), "t", b, &d);
  const ir_const *k;
  CHECK(p && ir_value_const(p, 3, &k) && strcmp(k->s, s.s) == 0);
  CHECK(p && ir_value_const(p, 7, &k) && k->f == 1.0 / 3);
  CHECK(p && ir_value_const(p, 5, &k) && k->f == 0 && signbit(k->f));
  CHECK(p && ir_value_const(p, 10, &k) && isnan(k->f));
  CHECK(p && ir_value_const(p, 12, &k) && k->f == 5e-324);
  CHECK(p && ir_value_const(p, 13, &k) && k->i == INT64_MIN);
  CHECK(p && ir_value_const(p, 15, &k) && k->kind == IR_C_FLOATLIST && k->n == 0);
  CHECK(p && ir_value_const(p, 16, &k) && k->kind == IR_C_BOOLLIST);
  CHECK_STR(p ? p->name : NULL, "input.1");
  nn_arena_free(b);
  free(text);

  /* Comments, blank lines and free spacing are accepted. */
  const char *loose = "// a comment line\n"
                      "\n"
                      "graph   f ( %5 x : f32[ 2 , s ] ) -> ( f32[2,s] ) {\n"
                      "   // another\n"
                      "  %9 = relu( %5 )  :  f32[2, s]\n"
                      "  return %9 }\n";
  again = reprint(loose, 0);
  CHECK_STR(again, "graph f(%0 x: f32[2,s]) -> (f32[2,s]) {\n"
                   "  %1 = relu(%0) : f32[2,s]\n"
                   "  return %1\n"
                   "}\n");
  free(again);
  nn_arena_free(a);
}

/* ---- dims ------------------------------------------------------------- */

static void test_dims(void) {
  nn_arena *a = nn_arena_new();
  ir_graph *g = ir_graph_new(a, "d");
  ir_dim s = ir_dim_sym(g, "s"), b = ir_dim_sym(g, "b");
  ir_dim c1 = ir_dim_const(g, 1), c2 = ir_dim_const(g, 2);
  CHECK_INT(ir_dim_sym(g, "s"), s);
  CHECK_INT(ir_dim_const(g, 2), c2);
  CHECK_STR(dim_text(g, IR_DIM_UNKNOWN), "?");
  CHECK_INT(ir_dim_get(g, IR_DIM_UNKNOWN)->kind, IR_DK_UNKNOWN);

  ir_dim sp1 = ir_dim_add(g, s, c1);
  CHECK_INT(ir_dim_add(g, c1, s), sp1);
  CHECK_STR(dim_text(g, sp1), "s+1");
  CHECK_STR(dim_text(g, ir_dim_add(g, sp1, sp1)), "2*s+2");
  CHECK_INT(ir_dim_add(g, sp1, sp1), ir_dim_mul(g, c2, sp1));
  CHECK_INT(ir_dim_div(g, ir_dim_mul(g, s, c2), c2), s);
  CHECK_INT(ir_dim_mul(g, c1, s), s);
  CHECK_INT(ir_dim_add(g, s, ir_dim_const(g, 0)), s);
  CHECK_INT(ir_dim_mul(g, s, ir_dim_const(g, 0)), ir_dim_const(g, 0));
  CHECK_INT(ir_dim_div(g, s, c1), s);
  CHECK_INT(ir_dim_floordiv(g, s, c1), s);
  CHECK_INT(ir_dim_mod(g, s, c1), ir_dim_const(g, 0));

  /* Constant folding, Python semantics for // and %. */
  int64_t v = 0;
  CHECK(ir_dim_is_const(g, ir_dim_mul(g, ir_dim_const(g, 6), ir_dim_const(g, 7)), &v) && v == 42);
  CHECK(ir_dim_is_const(g, ir_dim_add(g, ir_dim_const(g, 6), ir_dim_const(g, -7)), &v) && v == -1);
  CHECK(ir_dim_is_const(g, ir_dim_div(g, ir_dim_const(g, 12), ir_dim_const(g, 4)), &v) && v == 3);
  CHECK(ir_dim_is_const(g, ir_dim_floordiv(g, ir_dim_const(g, -7), c2), &v) && v == -4);
  CHECK(ir_dim_is_const(g, ir_dim_floordiv(g, ir_dim_const(g, 7), ir_dim_const(g, -2)), &v) &&
        v == -4);
  CHECK(ir_dim_is_const(g, ir_dim_floordiv(g, ir_dim_const(g, 7), c2), &v) && v == 3);
  CHECK(ir_dim_is_const(g, ir_dim_mod(g, ir_dim_const(g, -7), ir_dim_const(g, 3)), &v) && v == 2);
  CHECK(ir_dim_is_const(g, ir_dim_mod(g, ir_dim_const(g, 7), ir_dim_const(g, -3)), &v) && v == -2);
  CHECK(ir_dim_is_const(g, ir_dim_mod(g, ir_dim_const(g, -6), ir_dim_const(g, 3)), &v) && v == 0);
  CHECK(!ir_dim_is_const(g, s, &v));
  CHECK_STR(dim_text(g, ir_dim_div(g, ir_dim_const(g, 7), c2)), "7/2");
  CHECK_STR(dim_text(g, ir_dim_floordiv(g, s, ir_dim_const(g, 0))), "s//0");
  CHECK_INT(ir_dim_add(g, ir_dim_const(g, INT64_MAX), c1), IR_DIM_UNKNOWN);
  CHECK_INT(ir_dim_add(g, s, IR_DIM_UNKNOWN), IR_DIM_UNKNOWN);

  /* Canonical order and expansion. */
  ir_dim bs = ir_dim_mul(g, s, b);
  CHECK_INT(ir_dim_mul(g, b, s), bs);
  CHECK_STR(dim_text(g, bs), "b*s");
  CHECK_STR(dim_text(g, ir_dim_mul(g, sp1, b)), "b*s+b");
  CHECK_STR(dim_text(g, ir_dim_mul(g, ir_dim_mul(g, c2, s), ir_dim_mul(g, b, ir_dim_const(g, 3)))),
            "6*b*s");
  ir_dim neg = ir_dim_add(g, b, ir_dim_mul(g, ir_dim_const(g, -1), s));
  CHECK_STR(dim_text(g, neg), "b-s");
  CHECK_INT(ir_dim_add(g, neg, s), b);
  CHECK_STR(dim_text(g, ir_dim_add(g, s, ir_dim_const(g, -3))), "s-3");
  CHECK_STR(dim_text(g, ir_dim_mul(g, ir_dim_const(g, -2), s)), "-2*s");
  CHECK_STR(dim_text(g, ir_dim_add(g, b, ir_dim_mul(g, ir_dim_const(g, -2), s))), "b-2*s");
  CHECK_STR(dim_text(g, ir_dim_add(g, ir_dim_mul(g, s, s), sp1)), "s*s+s+1");
  ir_dim sm1 = ir_dim_add(g, s, ir_dim_const(g, -1));
  CHECK_STR(dim_text(g, ir_dim_mul(g, sp1, sm1)), "s*s-1");
  CHECK_STR(dim_text(g, ir_dim_add(g, ir_dim_mul(g, sp1, sp1), ir_dim_const(g, -1))), "s*s+2*s");

  /* Exact division of polynomials; the rest stays as written. */
  ir_dim s2p4 = ir_dim_add(g, ir_dim_mul(g, s, c2), ir_dim_const(g, 4));
  CHECK_STR(dim_text(g, ir_dim_div(g, s2p4, c2)), "s+2");
  CHECK_INT(ir_dim_floordiv(g, bs, s), b);
  CHECK_INT(ir_dim_div(g, sp1, sp1), c1);
  CHECK_INT(ir_dim_mod(g, ir_dim_mul(g, ir_dim_const(g, 4), s), c2), ir_dim_const(g, 0));
  ir_dim half = ir_dim_floordiv(g, sp1, c2);
  CHECK_STR(dim_text(g, half), "(s+1)//2");
  CHECK_STR(dim_text(g, ir_dim_mul(g, half, b)), "b*((s+1)//2)");
  CHECK_STR(dim_text(g, ir_dim_div(g, bs, c2)), "b*s/2");
  CHECK_STR(dim_text(g, ir_dim_mod(g, s, ir_dim_const(g, 8))), "s%8");
  CHECK_STR(dim_text(g, ir_dim_add(g, b, ir_dim_mul(g, ir_dim_const(g, -1), half))), "b-(s+1)//2");
  ir_dim q = ir_dim_sym(g, "a b");
  CHECK_STR(dim_text(g, ir_dim_add(g, q, c1)), "\"a b\"+1");

  /* Everything above prints and parses back to the same id. */
  ir_dim all[] = {sp1,
                  bs,
                  neg,
                  half,
                  s2p4,
                  ir_dim_mul(g, half, b),
                  ir_dim_div(g, bs, c2),
                  ir_dim_add(g, ir_dim_mul(g, s, s), sp1),
                  ir_dim_mod(g, ir_dim_add(g, b, ir_dim_const(g, -5)), ir_dim_const(g, -3)),
                  ir_dim_floordiv(g, ir_dim_mul(g, ir_dim_const(g, -2), half), s),
                  ir_dim_add(g, q, c1),
                  ir_dim_add(g, b, ir_dim_const(g, INT64_MIN)),
                  ir_dim_mul(g, ir_dim_const(g, INT64_MIN), s),
                  ir_dim_add(g, b, ir_dim_mul(g, ir_dim_const(g, -1), ir_dim_div(g, bs, c2))),
                  ir_dim_const(g, -9),
                  ir_dim_mul(g, sp1, sm1)};
  ir_add_input(g, "x", ir_type_tensor(g, NN_DT_F32, NN_ARRAY_LEN(all), all));
  for (int i = 0; i < NN_ARRAY_LEN(all); i++) CHECK(all[i] != IR_DIM_UNKNOWN);
  char *text = print_graph(g, 0);
  CHECK_STR(text, "graph d(%0 x: f32[s+1,b*s,b-s,(s+1)//2,2*s+4,b*((s+1)//2),b*s/2,"
                  "s*s+s+1,(b-5)%-3,-2*((s+1)//2)//s,\"a b\"+1,b+-9223372036854775808,"
                  "-9223372036854775808*s,b-b*s/2,-9,s*s-1]) -> () {\n  return\n}\n");
  nn_arena *pa = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  ir_graph *p = ir_parse(text, strlen(text), "d", pa, &d);
  CHECK(p != NULL);
  if (p) {
    const ir_type *t = ir_vtype(p, p->inputs.data[0]);
    int same = 0;
    for (int i = 0; i < t->rank; i++) {
      nn_buf x = {0}, y = {0};
      ir_dim_print(&x, g, all[i]);
      ir_dim_print(&y, p, t->dims[i]);
      same += strcmp(x.data, y.data) == 0;
      nn_buf_free(&x);
      nn_buf_free(&y);
    }
    CHECK_INT(same, NN_ARRAY_LEN(all));
    /* Same id within the parsed graph for an equivalent spelling. */
    CHECK_INT(ir_dim_add(p, ir_dim_sym(p, "s"), ir_dim_const(p, 1)), t->dims[0]);
  }
  nn_arena_free(pa);
  free(text);

  /* Within one graph, re-parsing a printed dim in a type yields the id. */
  nn_arena_free(a);
}

/* Random expressions: the canonical dim must evaluate like the expression
 * as built (Python // and %), for several values of the symbols, and print
 * and parse back to the same text. */
typedef struct rtree {
  int op;    /* 0 const, 1 sym, 2 add, 3 mul, 4 exact div of l*r by r, 5 //, 6 % */
  int l, r;  /* operands (tree indices) */
  int64_t c; /* const value or symbol index */
} rtree;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 11);
}

static int64_t py_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static int64_t py_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

static int gen_tree(rtree *t, int *n, int depth) {
  int i = (*n)++;
  int op = depth <= 0 ? (int)(rnd() % 2) : (int)(rnd() % 7);
  t[i].op = op;
  if (op == 0) t[i].c = (int64_t)(rnd() % 11) - 5;
  if (op == 1) t[i].c = rnd() % 3;
  if (op >= 2) {
    int l = gen_tree(t, n, depth - 1);
    int r = gen_tree(t, n, depth - 1);
    t[i].l = l;
    t[i].r = r;
  }
  return i;
}

static const char *const SYMS[3] = {"b", "s", "t"};

/* Reference value; *ok = false on division by zero. */
static int64_t tree_eval(const rtree *t, int i, const int64_t *env, bool *ok) {
  if (t[i].op == 0) return t[i].c;
  if (t[i].op == 1) return env[t[i].c];
  int64_t a = tree_eval(t, t[i].l, env, ok), b = tree_eval(t, t[i].r, env, ok);
  switch (t[i].op) {
  case 2: return a + b;
  case 3: return a * b;
  case 4:
    if (b == 0) *ok = false;
    return a; /* (a*b)/b */
  default:
    if (b == 0) {
      *ok = false;
      return 0;
    }
    return t[i].op == 5 ? py_floordiv(a, b) : py_mod(a, b);
  }
}

static ir_dim tree_dim(ir_graph *g, const rtree *t, int i) {
  if (t[i].op == 0) return ir_dim_const(g, t[i].c);
  if (t[i].op == 1) return ir_dim_sym(g, SYMS[t[i].c]);
  ir_dim a = tree_dim(g, t, t[i].l), b = tree_dim(g, t, t[i].r);
  switch (t[i].op) {
  case 2: return ir_dim_add(g, a, b);
  case 3: return ir_dim_mul(g, a, b);
  case 4: return ir_dim_div(g, ir_dim_mul(g, a, b), b);
  case 5: return ir_dim_floordiv(g, a, b);
  default: return ir_dim_mod(g, a, b);
  }
}

/* Value of a canonical dim; *ok = false on division by zero or an inexact
 * division. */
static int64_t dim_eval(const ir_graph *g, ir_dim d, const int64_t *env, bool *ok) {
  const ir_dimexpr *e = ir_dim_get(g, d);
  if (e->kind == IR_DK_CONST) return e->c;
  if (e->kind == IR_DK_SYM) {
    for (int i = 0; i < 3; i++)
      if (strcmp(e->name, SYMS[i]) == 0) return env[i];
    *ok = false;
    return 0;
  }
  if (e->kind == IR_DK_UNKNOWN) {
    *ok = false;
    return 0;
  }
  int64_t a = dim_eval(g, e->a, env, ok), b = dim_eval(g, e->b, env, ok);
  switch (e->kind) {
  case IR_DK_ADD: return a + b;
  case IR_DK_MUL: return a * b;
  default:
    if (b == 0) {
      *ok = false;
      return 0;
    }
    if (e->kind == IR_DK_DIV && a % b != 0) *ok = false;
    return e->kind == IR_DK_MOD ? py_mod(a, b) : py_floordiv(a, b);
  }
}

static void test_dims_random(void) {
  int wrong = 0, compared = 0, unknown = 0, reparsed = 0;
  nn_diag d;
  nn_diag_init(&d, stderr);
  for (int iter = 0; iter < 400; iter++) {
    rtree t[64];
    int n = 0;
    gen_tree(t, &n, 1 + (int)(rnd() % 4));
    nn_arena *a = nn_arena_new();
    ir_graph *g = ir_graph_new(a, "r");
    ir_dim dm = tree_dim(g, t, 0);
    if (dm == IR_DIM_UNKNOWN) {
      unknown++;
      nn_arena_free(a);
      continue;
    }
    for (int e = 0; e < 6; e++) {
      int64_t env[3] = {1 + rnd() % 7, 1 + rnd() % 7, 1 + rnd() % 7};
      bool ok1 = true, ok2 = true;
      int64_t want = tree_eval(t, 0, env, &ok1);
      if (!ok1) continue;
      int64_t have = dim_eval(g, dm, env, &ok2);
      compared++;
      if (!ok2 || have != want) {
        wrong++;
        fprintf(stderr, "dim %s: %lld, expected %lld\n", dim_text(g, dm), (long long)have,
                (long long)want);
      }
    }
    ir_add_input(g, "x", ir_type_tensor(g, NN_DT_F32, 1, &dm));
    char *text = print_graph(g, 0);
    char *again = reprint(text, 0);
    reparsed += again && strcmp(text, again) == 0;
    free(text);
    free(again);
    nn_arena_free(a);
  }
  CHECK_INT(wrong, 0);
  CHECK(compared > 1000);
  CHECK_INT(reparsed, 400 - unknown);
  CHECK_INT(unknown, 0);
}

/* ---- verifier --------------------------------------------------------- */

static void test_verify(void) {
  nn_arena *a = nn_arena_new();
  ir_graph *g = ir_graph_new(a, "v");
  ir_value x = ir_add_input(g, "x", ir_type_tensor(g, NN_DT_F32, 1, NULL));
  nn_loc l1 = {"m.py", 3, 7};
  ir_nodeid r = ir_append(g, NN_OP_RELU, 1, &x, 1, l1);
  ir_value rv = ir_node_get(g, r)->out[0];
  /* A use before its definition: sigmoid(relu) placed before relu. */
  ir_nodeid sg = ir_insert_before(g, r, NN_OP_SIGMOID, 1, &rv, 1, (nn_loc){"m.py", 2, 1});
  /* Wrong operand count. */
  ir_append(g, NN_OP_ADD, 2, (ir_value[]){x, rv}, 1, NOLOC);
  ir_add_output(g, rv);
  ir_add_output(g, 99);
  char *text = print_graph(g, 0);
  CHECK_STR(text, "graph v(%0 x: f32[?]) -> (unknown, unknown) {\n"
                  "  %1 = sigmoid(%2) : unknown\n"
                  "  %2 = relu(%0) : unknown\n"
                  "  %3 = add(%0, %2) : unknown\n"
                  "  return %2, %?\n"
                  "}\n");
  free(text);
  capture c;
  capture_begin(&c);
  CHECK_INT(ir_verify(g, &c.d), 3);
  CHECK_STR(capture_end(&c), "nncc: error: m.py:2:1: verify: node %1 (sigmoid): operand 0 (%2) is "
                             "used before its definition\n"
                             "nncc: error: verify: node %3 (add): has 2 operands, expected 3\n"
                             "nncc: error: verify: output 1 is undefined\n");
  free(c.text);

  /* Killing nodes: uses of removed results are reported. */
  g->outputs.len = 1;
  ir_kill(g, sg);
  CHECK_INT(g->order.len, 2);
  ir_kill(g, r);
  capture_begin(&c);
  CHECK_INT(ir_verify(g, &c.d), 3);
  CHECK_STR(capture_end(&c),
            "nncc: error: verify: node %1 (add): has 2 operands, expected 3\n"
            "nncc: error: verify: node %1 (add): operand 1 is defined by a removed node\n"
            "nncc: error: verify: output 0 is defined by a removed node\n");
  free(c.text);

  /* Constants, weights and result counts. */
  ir_graph *h = ir_graph_new(a, "w");
  ir_value k = ir_const_int(h, 3, NOLOC);
  ir_set_type(h, k, ir_type_scalar(h, IR_T_FLOAT));
  ir_weight w = {.name = "fc.weight", .dtype = NN_DT_F32, .rank = 2, .sizes = (int64_t[]){4, 5}};
  ir_nodeid wn = ir_append(h, NN_OP_WEIGHT, 0, NULL, 1, NOLOC);
  ir_node_get(h, wn)->weight = ir_add_weight(h, &w);
  ir_set_type(h, ir_node_get(h, wn)->out[0], tensor(h, NN_DT_F32, 2, (int64_t[]){4, 6}));
  ir_nodeid w2 = ir_append(h, NN_OP_WEIGHT, 0, NULL, 1, NOLOC);
  ir_node_get(h, w2)->weight = 5;
  ir_append(h, NN_OP_MAX_DIM, 3, (ir_value[]){k, k, k}, 1, NOLOC);
  capture_begin(&c);
  CHECK_INT(ir_verify(h, &c.d), 4);
  CHECK_STR(capture_end(&c),
            "nncc: error: verify: node %0 (constant): constant has type float, expected int\n"
            "nncc: error: verify: node %1 (weight): type f32[4,6] does not match weight "
            "\"fc.weight\" (f32[4,5])\n"
            "nncc: error: verify: node %2 (weight): weight index 5 out of range (1 weights)\n"
            "nncc: error: verify: node %3 (max_dim): has 1 results, expected 2\n");
  free(c.text);
  nn_arena_free(a);
}

/* ---- graph editing ---------------------------------------------------- */

static void test_edit(void) {
  nn_arena *a = nn_arena_new();
  ir_graph *g = ir_graph_new(a, "e");
  ir_value x = ir_add_input(g, "x", ir_type_tensor(g, NN_DT_F32, 1, NULL));
  ir_nodeid n1 = ir_append(g, NN_OP_RELU, 1, &x, 1, NOLOC);
  ir_value v1 = ir_node_get(g, n1)->out[0];
  ir_nodeid n2 = ir_append(g, NN_OP_EXP, 1, &v1, 1, NOLOC);
  ir_value v2 = ir_node_get(g, n2)->out[0];
  ir_nodeid n3 = ir_append(g, NN_OP_MUL, 2, (ir_value[]){v1, v2}, 1, NOLOC);
  ir_value v3 = ir_node_get(g, n3)->out[0];
  ir_add_output(g, v3);
  ir_add_output(g, v1);
  CHECK_INT(ir_use_count(g, v1), 3);
  CHECK_INT(ir_node_get(g, n1)->scope[0], 0);
  CHECK_INT(ir_vtype(g, v1)->kind, IR_T_UNKNOWN);
  /* Insert a neg before exp and reroute later uses of v1 through it. */
  ir_nodeid nn = ir_insert_before(g, n2, NN_OP_NEG, 1, &v1, 1, NOLOC);
  ir_value vn = ir_node_get(g, nn)->out[0];
  ir_replace_uses_after(g, nn, v1, vn);
  CHECK_INT(ir_use_count(g, v1), 1);
  CHECK_INT(ir_use_count(g, vn), 3);
  int *pos = ir_positions(g);
  CHECK_INT(pos[n1], 0);
  CHECK_INT(pos[nn], 1);
  CHECK_INT(pos[n2], 2);
  CHECK_INT(pos[n3], 3);
  ir_replace_uses(g, vn, v1);
  CHECK_INT(ir_use_count(g, vn), 0);
  CHECK_INT(ir_use_count(g, v1), 4);
  ir_kill(g, nn);
  pos = ir_positions(g);
  CHECK_INT(pos[nn], -1);
  CHECK_INT(pos[n3], 2);
  g->nodes.data[n2].flags |= IR_NF_DEAD; /* dead but still in order */
  CHECK_INT(g->order.len, 3);
  ir_compact(g);
  CHECK_INT(g->order.len, 2);
  char *text = print_graph(g, 0);
  CHECK_STR(text, "graph e(%0 x: f32[?]) -> (unknown, unknown) {\n"
                  "  %1 = relu(%0) : unknown\n"
                  "  %2 = mul(%1, %?) : unknown\n"
                  "  return %2, %1\n"
                  "}\n");
  free(text);
  /* Types: structural equality, scalars cached. */
  CHECK(ir_type_scalar(g, IR_T_INT) == ir_type_scalar(g, IR_T_INT));
  ir_dim d2[2] = {ir_dim_sym(g, "b"), ir_dim_const(g, 3)};
  CHECK(ir_type_equal(ir_type_tensor(g, NN_DT_F32, 2, d2), ir_type_tensor(g, NN_DT_F32, 2, d2)));
  CHECK(!ir_type_equal(ir_type_tensor(g, NN_DT_F32, 2, d2), ir_type_tensor(g, NN_DT_F16, 2, d2)));
  CHECK(
      !ir_type_equal(ir_type_tensor(g, NN_DT_F32, 2, d2), ir_type_tensor(g, NN_DT_F32, -1, NULL)));
  const ir_type *e1[2] = {ir_type_list(g, ir_type_scalar(g, IR_T_INT)),
                          ir_type_scalar(g, IR_T_NONE)};
  const ir_type *e2[2] = {ir_type_list(g, ir_type_scalar(g, IR_T_INT)),
                          ir_type_scalar(g, IR_T_STR)};
  CHECK(ir_type_equal(ir_type_tuple(g, 2, e1), ir_type_tuple(g, 2, e1)));
  CHECK(!ir_type_equal(ir_type_tuple(g, 2, e1), ir_type_tuple(g, 2, e2)));
  ir_const il = {.kind = IR_C_INTLIST, .n = 1, .ints = (int64_t[]){4}};
  CHECK(ir_type_equal(ir_const_type(g, &il), e1[0]));
  nn_arena_free(a);
}

/* ---- parse errors ----------------------------------------------------- */

static const char *parse_error(const char *text) {
  static char out[512];
  capture c;
  capture_begin(&c);
  nn_arena *a = nn_arena_new();
  ir_graph *g = ir_parse(text, strlen(text), "t.nnir", a, &c.d);
  capture_end(&c);
  snprintf(out, sizeof out, "%s%s", g ? "(parsed) " : "", c.text ? c.text : "");
  free(c.text);
  nn_arena_free(a);
  return out;
}

static void test_parse_errors(void) {
  const char *head = "graph f(%0 x: f32[2]) -> (f32[2]) {\n";
  char buf[512];
  snprintf(buf, sizeof buf, "%s  %%1 = foo(%%0) : f32[2]\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:8: unknown op 'foo'\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%7) : f32[2]\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:13: use of undefined value %7\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%1) : f32[2]\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:13: use of undefined value %1\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%0) : f33[2]\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:19: unknown type 'f33'\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%0) : f32[2,]\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:25: expected a dim, found ']'\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%0) : 3\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:19: expected a type, found '3'\n");
  snprintf(buf, sizeof buf, "%s  %%0 = relu(%%0) : f32[2]\n  return %%0\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:4: value %0 is defined twice\n");
  snprintf(buf, sizeof buf, "%s  %%1, %%2 = relu(%%0) : f32[2]\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:21: node has 2 results but 1 types\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%0) {fast} : f32[2]\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:18: unknown attribute 'fast'\n");
  snprintf(buf, sizeof buf, "%s  %%1 = constant([1, true]) : list<int>\n  return %%0\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:17: list constant mixes bools and numbers\n");
  snprintf(buf, sizeof buf, "%s  %%1 = constant(99999999999999999999) : int\n  return %%0\n}\n",
           head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:17: integer out of range\n");
  snprintf(buf, sizeof buf, "%s  %%1 = constant(\"ab) : str\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:17: unterminated string\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%0) : f32[2]\n  return %%1\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:4:1: expected '}', found end of input\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%0", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:2:15: expected ')', found end of input\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%0) : f32[2]\n  return %%1\n}\n}", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:5:1: expected end of input, found '}'\n");
  snprintf(buf, sizeof buf, "%s  %%1 = relu(%%0) : f32[3]\n  return %%1\n}\n", head);
  CHECK_STR(parse_error(buf),
            "nncc: error: t.nnir:1:27: output 0 has type f32[3] but the signature says f32[2]\n");
  snprintf(buf, sizeof buf, "%s  return\n}\n", head);
  CHECK_STR(parse_error(buf), "nncc: error: t.nnir:1:27: the signature lists 1 output types but "
                              "return has 0 values\n");
  CHECK_STR(parse_error(""), "nncc: error: t.nnir:1:1: expected 'graph', found end of input\n");
  CHECK_STR(parse_error("graph g() -> () {\n  @\n"),
            "nncc: error: t.nnir:2:3: unexpected character '\\x40'\n");
  CHECK_STR(parse_error("graph g(%0: "
                        "list<list<list<list<list<list<list<list<list<list<list<list<list<list<"
                        "list<list<list<list<list<list<list<list<list<list<list<list<list<list<"
                        "list<list<list<list<list<list<list<list<list<list<list<list<list<list<"
                        "list<list<list<list<list<list<list<list<list<list<list<list<list<list<"
                        "list<list<list<list<list<list<list<list<int") +
                13,
            "t.nnir:1:333: nesting too deep\n");
  CHECK_STR(parse_error("graph g() -> () {\n  return\n}\n"), "(parsed) ");
}

/* Random bytes and mutations of valid text must only produce errors. */

static void test_garbage(void) {
  FILE *null = fopen("/dev/null", "w");
  nn_diag d;
  nn_diag_init(&d, null);
  static const char alphabet[] = "%=(),:[]{}<>*+-/?\"\\ \n0123456789abcdefgilnoprstuxz.";
  int parsed = 0;
  for (int iter = 0; iter < 3000; iter++) {
    char buf[600];
    size_t n;
    if (iter % 3 == 0) { /* random tokens */
      n = rnd() % sizeof buf;
      for (size_t i = 0; i < n; i++)
        buf[i] = (char)(iter % 2 ? rnd() : (unsigned)alphabet[rnd() % (sizeof alphabet - 1)]);
    } else { /* mutate the example */
      n = strlen(EXAMPLE) < sizeof buf ? strlen(EXAMPLE) : sizeof buf;
      memcpy(buf, EXAMPLE, n);
      int muts = 1 + (int)(rnd() % 4);
      for (int m = 0; m < muts; m++) {
        size_t at = rnd() % n;
        switch (rnd() % 3) {
        case 0: buf[at] = alphabet[rnd() % (sizeof alphabet - 1)]; break;
        case 1: n = at; break; /* truncate */
        default: buf[at] = (char)rnd(); break;
        }
        if (n == 0) break;
      }
    }
    nn_arena *a = nn_arena_new();
    /* Exact-size heap copy so ASan sees any read past the end. */
    char *copy = malloc(n ? n : 1);
    memcpy(copy, buf, n);
    ir_graph *g = ir_parse(copy, n, "fuzz", a, &d);
    if (g) {
      parsed++;
      nn_buf b = {0};
      ir_print(&b, g, IR_PRINT_LOC | IR_PRINT_SCOPE);
      ir_verify(g, &d);
      nn_buf_free(&b);
    }
    free(copy);
    nn_arena_free(a);
  }
  fclose(null);
  CHECK(parsed < 3000);
}

/* ---- a larger generated graph ----------------------------------------- */

static void test_large(void) {
  nn_arena *a = nn_arena_new();
  ir_graph *g = ir_graph_new(a, "big");
  ir_dim bdim = ir_dim_sym(g, "batch");
  NN_VEC(ir_value) vals = {0};
  for (int i = 0; i < 3; i++) {
    ir_dim dims[3] = {bdim, ir_dim_const(g, 8 + i),
                      ir_dim_mul(g, ir_dim_sym(g, "s"), ir_dim_const(g, i + 1))};
    NN_PUSH(a, vals, ir_add_input(g, i ? NULL : "in", ir_type_tensor(g, NN_DT_F32, 3, dims)));
  }
  int made = 0;
  while (made < 200) {
    ir_op op = (ir_op)(rnd() % NN_OP_COUNT);
    nn_loc loc = {rnd() % 2 ? "gen.py" : NULL, (int)(rnd() % 100), (int)(rnd() % 80)};
    if (op == NN_OP_CONSTANT) {
      static const int64_t ints[2] = {3, -4}, bools[2] = {1, 0};
      static const double floats[2] = {0.25, -1e-7};
      ir_const c = {.kind = (ir_ckind)(rnd() % 9),
                    .i = (int64_t)rnd() - 1000,
                    .f = (double)rnd() / 7.0,
                    .s = "s\"x",
                    .n = 2,
                    .ints = ints,
                    .floats = floats};
      if (c.kind == IR_C_BOOL || c.kind == IR_C_BOOLLIST) {
        c.i = 1;
        c.ints = bools;
      }
      NN_PUSH(a, vals, ir_const_value(g, &c, loc));
      made++;
      continue;
    }
    if (op == NN_OP_WEIGHT) {
      ir_weight w = {.name = nn_sprintf(a, "layer%d.weight", made % 7),
                     .dtype = NN_DT_F32,
                     .rank = 2,
                     .sizes = (int64_t[]){made % 7 + 1, 3}};
      ir_nodeid n = ir_append(g, NN_OP_WEIGHT, 0, NULL, 1, loc);
      /* Reuse a weight of the same name (the parser dedupes by name). */
      int32_t wi = -1;
      for (int i = 0; i < g->weights.len; i++)
        if (strcmp(g->weights.data[i].name, w.name) == 0) wi = i;
      ir_node_get(g, n)->weight = wi >= 0 ? wi : ir_add_weight(g, &w);
      ir_value v = ir_node_get(g, n)->out[0];
      ir_set_type(g, v, tensor(g, NN_DT_F32, 2, (int64_t[]){made % 7 + 1, 3}));
      NN_PUSH(a, vals, v);
      made++;
      continue;
    }
    int nin = ir_ops[op].nin >= 0 ? ir_ops[op].nin : (int)(rnd() % 4);
    int nout = ir_ops[op].nout >= 0 ? ir_ops[op].nout : (int)(rnd() % 3);
    ir_value in[16];
    for (int i = 0; i < nin; i++) in[i] = vals.data[rnd() % (unsigned)vals.len];
    ir_nodeid n = ir_append(g, op, nin, in, nout, loc);
    if (rnd() % 4 == 0) ir_node_get(g, n)->scope = nn_sprintf(a, "block%d.sub", made % 5);
    if (rnd() % 5 == 0) ir_node_get(g, n)->flags |= IR_NF_INPLACE;
    if (op == NN_OP_TUPLE_GET) ir_node_get(g, n)->index = rnd() % 3;
    for (int i = 0; i < nout; i++) {
      ir_value v = ir_node_get(g, n)->out[i];
      ir_dim dims[2] = {ir_dim_add(g, bdim, ir_dim_const(g, made % 3)),
                        ir_dim_floordiv(g, ir_dim_sym(g, "s"), ir_dim_const(g, 1 + made % 4))};
      if (rnd() % 3) ir_set_type(g, v, ir_type_tensor(g, (nn_dtype)(rnd() % NN_DT_COUNT), 2, dims));
      NN_PUSH(a, vals, v);
    }
    made++;
  }
  for (int i = 0; i < 4; i++) ir_add_output(g, vals.data[vals.len - 1 - i * 5]);
  capture c;
  capture_begin(&c);
  CHECK_INT(ir_verify(g, &c.d), 0);
  CHECK_STR(capture_end(&c), "");
  free(c.text);
  unsigned flags[2] = {0, IR_PRINT_LOC | IR_PRINT_SCOPE};
  for (int f = 0; f < 2; f++) {
    char *text = print_graph(g, flags[f]);
    char *again = reprint(text, flags[f]);
    CHECK(again && strcmp(text, again) == 0);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    CHECK_INT(lines, 203);
    free(text);
    free(again);
  }
  nn_arena_free(a);
}

int main(void) {
  test_ops();
  test_example();
  test_literals();
  test_dims();
  test_dims_random();
  test_verify();
  test_edit();
  test_parse_errors();
  test_garbage();
  test_large();
  return unit_report("ir");
}
