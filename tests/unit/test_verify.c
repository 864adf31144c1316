/* test_verify.c — the kernel checker (kernel/verify.c).
 *
 * A well-formed kernel passes; each way of breaking one (an index past its
 * slot, a loop that runs past its buffer, an operand of the wrong dtype or
 * missing, a store into a slot not marked written, a block left open, a
 * statement in two blocks, more slots than the target allows, a GEMM with
 * a 16-bit C) is rejected with the message that names it. Accesses under
 * an IF are left to their condition. A program whose step binds a slot to
 * a buffer of another dtype, or writes an input, is rejected too; and every
 * program the schedule makes verifies (the debug builds check that after
 * every schedule; here a few real lowerings are checked in any build).
 */
#include "backends/backend.h"
#include "lower/lower.h"
#include "passes/passes.h"
#include "unit.h"

/* k_verify's result and, when want is not NULL, that its message has it. */
static void expect(const kernel *k, int max_slots, const char *want) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  nn_diag d;
  nn_diag_init(&d, f);
  int r = k_verify(k, max_slots, true, &d);
  fclose(f);
  CHECK_INT(r, want ? -1 : 0);
  if (want && !strstr(text, want)) fprintf(stderr, "'%s' lacks '%s'\n", text, want);
  if (!want && r) fprintf(stderr, "unexpected: %s\n", text);
  CHECK(!want || strstr(text, want) != NULL);
  free(text);
}

/* out[i] = x[i + off] + 1 for i in [0, n): slots of 8 elements. */
static kernel *shifted(nn_arena *a, int64_t n, int64_t off) {
  kernel *k = k_new(a, "k0_shift");
  int32_t o = k_buf(k, NN_DT_F32, 8, true, "out");
  int32_t x = k_buf(k, NN_DT_F32, 8, false, "x");
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, n), KS_PARALLEL | KS_VECTOR);
  kx_id v = k_load(k, x, k_add(k, k_varref(k, i), k_i64(k, off)));
  k_store(k, o, k_varref(k, i), k_bin(k, KX_ADD, v, k_f32(k, 1)));
  k_for_end(k);
  return k;
}

static void test_ranges(void) {
  nn_arena *a = nn_arena_new();
  expect(shifted(a, 8, 0), 64, NULL);
  expect(shifted(a, 7, 1), 64, NULL);
  expect(shifted(a, 8, 1), 64, "index in [1, 8] is outside slot 1 (x, 8 elements)");
  expect(shifted(a, 9, 0), 64, "index in [0, 8] is outside slot 1 (x, 8 elements)");
  expect(shifted(a, 8, -1), 64, "index in [-1, 6]");

  /* floor division and modulo bound an index; a clamp does too */
  kernel *k = k_new(a, "k1_rows");
  int32_t o = k_buf(k, NN_DT_F32, 12, true, "out");
  int32_t x = k_buf(k, NN_DT_F32, 4, false, "x");
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, 12), KS_PARALLEL);
  kx_id row = k_fdiv(k, k_varref(k, i), k_i64(k, 3));
  k_store(k, o, k_varref(k, i), k_load(k, x, row));
  kx_id col = k_bin(k, KX_MOD, k_varref(k, i), k_i64(k, 4));
  k_store(k, o, k_varref(k, i), k_load(k, x, col));
  kx_id cl = k_min(k, k_max(k, k_sub(k, k_varref(k, i), k_i64(k, 5)), k_i64(k, 0)), k_i64(k, 3));
  k_store(k, o, k_varref(k, i), k_load(k, x, cl));
  k_for_end(k);
  expect(k, 64, NULL);

  /* an access guarded by an IF is the condition's business */
  k = k_new(a, "k2_pad");
  o = k_buf(k, NN_DT_F32, 10, true, "out");
  x = k_buf(k, NN_DT_F32, 8, false, "x");
  i = k_for_begin(k, k_i64(k, 0), k_i64(k, 10), 0);
  kx_id j = k_sub(k, k_varref(k, i), k_i64(k, 1));
  k_if_begin(k, k_bin(k, KX_AND, k_bin(k, KX_GE, j, k_i64(k, 0)), k_bin(k, KX_LT, j, k_i64(k, 8))));
  k_store(k, o, k_varref(k, i), k_load(k, x, j));
  k_else(k);
  k_store(k, o, k_varref(k, i), k_f32(k, 0));
  k_if_end(k);
  k_for_end(k);
  expect(k, 64, NULL);
  /* ...but both arms of a select must be safe */
  k = k_new(a, "k3_select");
  o = k_buf(k, NN_DT_F32, 10, true, "out");
  x = k_buf(k, NN_DT_F32, 8, false, "x");
  i = k_for_begin(k, k_i64(k, 0), k_i64(k, 10), 0);
  j = k_sub(k, k_varref(k, i), k_i64(k, 1));
  kx_id in = k_bin(k, KX_GE, j, k_i64(k, 0));
  k_store(k, o, k_varref(k, i), k_select(k, in, k_load(k, x, j), k_f32(k, 0)));
  k_for_end(k);
  expect(k, 64, "index in [-1, 8] is outside slot 1");
  nn_arena_free(a);
}

static void test_form(void) {
  nn_arena *a = nn_arena_new();
  kernel *k = shifted(a, 8, 0);
  const ks *loop = &k->stmts.data[k->root.data[0]];
  ks *st = &k->stmts.data[loop->body[0]];
  kx *add = &k->exprs.data[st->val];

  kx_id b = add->b;
  add->b = k->exprs.data[add->a].a; /* the load's index: an i64 operand of an f32 add */
  expect(k, 64, "operand b is i64, expected f32");
  add->b = 100000;
  expect(k, 64, "operand b is missing");
  add->b = st->val; /* itself: not an earlier expression */
  expect(k, 64, "operand b (expression 6) is not an earlier expression");
  add->b = b;
  add->op = KX_OP_COUNT;
  expect(k, 64, "unknown operation");
  add->op = KX_ADD;
  expect(k, 64, NULL);

  k->bufs.data[0].written = false;
  expect(k, 64, "stores to slot 0, which is not marked written");
  k->bufs.data[0].written = true;
  expect(k, 1, "2 slots, more than the 1 the target allows");

  kx_id idx = st->idx;
  st->idx = st->val; /* an f32 index */
  expect(k, 64, "operand i is f32, expected i64");
  st->idx = idx;

  /* the loop's statement also at the root */
  NN_PUSH(a, k->root, loop->body[0]);
  expect(k, 64, "appears twice");
  k->root.len--;

  /* a block left open */
  k_for_begin(k, k_i64(k, 0), k_i64(k, 1), 0);
  expect(k, 64, "1 blocks are still open");
  nn_arena_free(a);
}

static void test_gemm(void) {
  nn_arena *a = nn_arena_new();
  kernel *k = k_new(a, "k0_gemm");
  ks_gemm g;
  memset(&g, 0, sizeof g);
  g.a = k_buf(k, NN_DT_F32, 6, false, "a");
  g.b = k_buf(k, NN_DT_F32, 6, false, "b");
  g.c = k_buf(k, NN_DT_F32, 4, true, "c");
  g.bias = -1;
  g.m = k_i64(k, 2), g.n = k_i64(k, 2), g.k = k_i64(k, 3);
  g.a_rs = k_i64(k, 3), g.a_cs = k_i64(k, 1), g.b_rs = k_i64(k, 2), g.b_cs = k_i64(k, 1);
  g.ldc = k_i64(k, 2);
  g.a_off = g.b_off = g.c_off = k_i64(k, 0);
  g.alpha = 1;
  k_gemm(k, &g);
  expect(k, 64, NULL);
  k->bufs.data[g.c].dtype = NN_DT_F16;
  expect(k, 64, "a GEMM sums into f32 from operands of one float dtype");
  k->bufs.data[g.c].dtype = NN_DT_F32;
  k->stmts.data[k->root.data[0]].gemm.m = k_i64(k, -2);
  expect(k, 64, "GEMM M is negative");
  nn_arena_free(a);
}

/* Real lowerings verify, and a broken binding is caught. */
static void test_programs(void) {
  static const char *const src[] = {
      "graph forward(%0 x: f32[2,3,9,9], %1 w: f32[4,3,3,3]) -> (f32[2,4,5,5]) {\n"
      "  %2 = constant([2, 2]) : list<int>\n  %3 = constant([1, 1]) : list<int>\n"
      "  %4 = constant(false) : bool\n  %5 = constant([0, 0]) : list<int>\n"
      "  %6 = constant(1) : int\n  %7 = constant(none) : none\n"
      "  %8 = convolution(%0, %1, %7, %2, %3, %3, %4, %5, %6) : f32[2,4,5,5]\n"
      "  %9 = relu(%8) : f32[2,4,5,5]\n  return %9\n}\n",
      "graph forward(%0 x: f32[3,5,7]) -> (f32[3,7]) {\n  %1 = constant(-1) : int\n"
      "  %2 = constant(none) : none\n  %3 = softmax(%0, %1, %2) : f32[3,5,7]\n"
      "  %4 = constant([1]) : list<int>\n  %5 = constant(false) : bool\n"
      "  %6 = sum(%3, %4, %5, %2) : f32[3,7]\n  return %6\n}\n",
  };
  static const char *const specs[][2] = {{"x:f32[2,3,9,9]", "w:f32[4,3,3,3]"},
                                         {"x:f32[3,5,7]", NULL}};
  for (size_t i = 0; i < sizeof src / sizeof *src; i++) {
    nn_arena *a = nn_arena_new();
    nn_diag d;
    nn_diag_init(&d, stderr);
    ir_graph *g = ir_parse(src[i], strlen(src[i]), "t.nnir", a, &d);
    CHECK(g != NULL);
    if (!g) continue;
    pass_input_spec sp[2];
    int n = 0;
    char err[256];
    for (int j = 0; j < 2 && specs[i][j]; j++)
      CHECK_INT(pass_parse_input_spec(specs[i][j], a, &sp[n++], err, sizeof err), 0);
    CHECK_INT(pass_shapes(g, sp, n, &d), 0);
    kp_program *p = kl_schedule(g, a, tg_host(), &d);
    CHECK(p != NULL);
    if (p) {
      CHECK_INT(kp_verify(p, &d), 0);
      /* bind the first step's output slot to the graph input */
      kp_step *s = &p->steps.data[0];
      kp_bufid saved = s->slots[0];
      for (int b = 0; b < p->bufs.len; b++)
        if (p->bufs.data[b].kind == KP_BUF_INPUT) s->slots[0] = b;
      char *text = NULL;
      size_t len = 0;
      FILE *f = open_memstream(&text, &len);
      nn_diag q;
      nn_diag_init(&q, f);
      CHECK_INT(kp_verify(p, &q), -1);
      fclose(f);
      CHECK(strstr(text, "does not fit buffer") || strstr(text, "writes read-only buffer"));
      free(text);
      s->slots[0] = saved;
    }
    nn_arena_free(a);
  }
}

int main(void) {
  test_ranges();
  test_form();
  test_gemm();
  test_programs();
  return unit_report("verify");
}
