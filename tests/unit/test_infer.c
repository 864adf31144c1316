/* test_infer.c — tests for input inference (passes/infer_inputs.c) and the
 * recording of declared symbol ranges by the shapes pass.
 *
 * Each inference case is IR text whose inputs have no spec; the inferred
 * specs are compared as --input text ("x:f32[B,3,H,W]"). The golden tests
 * (tests/golden/shapes/infer_*) show the same through nncc; these check
 * the API contract: one spec per input after the user's own, the error
 * count and messages, and g->sym_ranges.
 */
#include "passes/passes.h"
#include "unit.h"

typedef struct run {
  nn_arena *a;
  ir_graph *g;
  nn_diag d;
  char *diag; /* the diagnostics text */
  size_t diag_len;
  FILE *f;
} run;

static void run_open(run *r, const char *ir) {
  memset(r, 0, sizeof *r);
  r->a = nn_arena_new();
  r->f = open_memstream(&r->diag, &r->diag_len);
  nn_diag_init(&r->d, r->f);
  r->g = ir_parse(ir, strlen(ir), "t.nnir", r->a, &r->d);
  CHECK(r->g != NULL);
}

static void run_close(run *r) {
  fclose(r->f);
  free(r->diag);
  nn_arena_free(r->a);
}

/* Specs from "--input" texts separated by ';'. */
static int parse_specs(run *r, const char *text, pass_input_spec *out) {
  int n = 0;
  char err[256];
  for (const char *p = text; p && *p;) {
    const char *e = strchr(p, ';');
    char *one = nn_strndup(r->a, p, e ? (size_t)(e - p) : strlen(p));
    CHECK_INT(pass_parse_input_spec(one, r->a, &out[n], err, sizeof err), 0);
    n++;
    p = e ? e + 1 : NULL;
  }
  return n;
}

/* Infers the inputs of `ir` given `given`; returns the specs joined by
 * spaces, or "errors:\n" and the diagnostics. Caller frees. */
static char *infer(const char *ir, const char *given) {
  run r;
  run_open(&r, ir);
  nn_buf b = {0};
  if (r.g) {
    pass_input_spec sp[8], *all = NULL;
    int n = parse_specs(&r, given, sp), nall = 0;
    int errors = pass_infer_inputs(r.g, sp, n, (nn_loc){"m.pt", 0, 0}, &all, &nall, &r.d);
    CHECK_INT(errors, r.d.errors);
    fflush(r.f);
    if (errors) {
      nn_buf_printf(&b, "errors:\n%s", r.diag ? r.diag : "");
    } else {
      CHECK_INT(nall, r.g->inputs.len);
      for (int i = 0; i < nall; i++)
        nn_buf_printf(&b, "%s%s", i ? " " : "", pass_input_spec_str(&all[i], r.a));
      /* the specs type the graph without errors */
      CHECK_INT(pass_shapes(r.g, all, nall, &r.d), 0);
    }
  }
  char *res = strdup(b.data ? b.data : "");
  nn_buf_free(&b);
  run_close(&r);
  return res;
}

#define INFER(ir, given, expected) \
  do {                             \
    char *got_ = infer(ir, given); \
    CHECK_STR(got_, expected);     \
    free(got_);                    \
  } while (0)

static void test_conv_and_linear(void) {
  /* conv1d: 3-d of the weight's dtype with 4 channels (2 groups of 2) */
  INFER("graph forward(%0 x: ?[*]) -> (?[*]) {\n"
        "  %1 = weight(\"w\") : f16[6,2,3]\n"
        "  %2 = constant(none) : none\n"
        "  %3 = constant([1]) : list<int>\n"
        "  %4 = constant([0]) : list<int>\n"
        "  %5 = constant(false) : bool\n"
        "  %6 = constant(2) : int\n"
        "  %7 = convolution(%0, %1, %2, %3, %4, %3, %5, %4, %6) : ?[*]\n"
        "  return %7\n"
        "}\n",
        "", "x:f16[B,4,L]");
  /* linear: [batch, in_features] unless a use needs more dims; here a
   * permute of its result names 3 */
  INFER("graph forward(%0 x: ?[*], %1 y: ?[*]) -> (?[*], ?[*]) {\n"
        "  %2 = weight(\"w\") : f32[5,7]\n"
        "  %3 = constant(none) : none\n"
        "  %4 = linear(%0, %2, %3) : ?[*]\n"
        "  %5 = linear(%1, %2, %3) : ?[*]\n"
        "  %6 = constant([2, 0, 1]) : list<int>\n"
        "  %7 = permute(%5, %6) : ?[*]\n"
        "  return %4, %7\n"
        "}\n",
        "", "x:f32[B,7] y:f32[y_0,y_1,7]");
}

static void test_unify_with_given(void) {
  /* b broadcasts against the given a: its symbols join a's, and its
   * last dim becomes a's constant */
  INFER("graph forward(%0 a: ?[*], %1 b: ?[*]) -> (?[*]) {\n"
        "  %2 = weight(\"w\") : f32[3,3]\n"
        "  %3 = matmul(%1, %2) : ?[*]\n"
        "  %4 = constant(1) : int\n"
        "  %5 = add(%0, %3, %4) : ?[*]\n"
        "  return %5\n"
        "}\n",
        "a:f32[n=1..4,3]", "a:f32[n=1..4,3] b:f32[n,3]");
  /* two inferred inputs unify; the older symbol names the class */
  INFER("graph forward(%0 p: ?[*], %1 q: ?[*]) -> (?[*]) {\n"
        "  %2 = weight(\"e\") : f32[10,4]\n"
        "  %3 = constant(-1) : int\n"
        "  %4 = constant(false) : bool\n"
        "  %5 = embedding(%2, %0, %3, %4, %4) : ?[*]\n"
        "  %6 = embedding(%2, %1, %3, %4, %4) : ?[*]\n"
        "  %7 = constant([0, 2, 1]) : list<int>\n"
        "  %8 = permute(%6, %7) : ?[*]\n"
        "  %9 = matmul(%5, %8) : ?[*]\n"
        "  return %9\n"
        "}\n",
        "", "p:i64[B,S] q:i64[B,S_q]");
}

static void test_errors(void) {
  INFER("graph forward(%0 x: ?[*], %1 n: int) -> (?[*]) {\n"
        "  %2 = constant([-1]) : list<int>\n"
        "  %3 = view(%0, %2) : ?[*]\n"
        "  return %3\n"
        "}\n",
        "",
        "errors:\n"
        "nncc: error: m.pt: cannot infer the rank of input 'x' from its uses; "
        "pass --input x:DTYPE[DIMS]\n"
        "nncc: note: for example: nncc m.pt --emit=ir --input "
        "x:f32[DIMS] --input n:int\n"
        "nncc: note: DIMS of 'x': nothing in the model fixes its rank; give the dims you traced "
        "it with, naming those that vary (x:f32[b,16])\n");
}

/* The shapes pass records declared ranges; two ranges for one symbol are
 * an error. */
static void test_ranges(void) {
  const char *ir = "graph forward(%0 a: ?[*], %1 b: ?[*]) -> (?[*]) {\n"
                   "  %2 = constant(1) : int\n"
                   "  %3 = add(%0, %1, %2) : ?[*]\n"
                   "  return %3\n"
                   "}\n";
  run r;
  run_open(&r, ir);
  pass_input_spec sp[4];
  int n = parse_specs(&r, "a:f32[b=1..32,s,4];b:f32[b=1..32,s=2..64,4]", sp);
  CHECK_INT(pass_shapes(r.g, sp, n, &r.d), 0);
  CHECK_INT(r.g->sym_ranges.len, 2);
  if (r.g->sym_ranges.len == 2) {
    CHECK_STR(r.g->sym_ranges.data[0].name, "b");
    CHECK_INT(r.g->sym_ranges.data[0].lo, 1);
    CHECK_INT(r.g->sym_ranges.data[0].hi, 32);
    CHECK_STR(r.g->sym_ranges.data[1].name, "s");
    CHECK_INT(r.g->sym_ranges.data[1].lo, 2);
    CHECK_INT(r.g->sym_ranges.data[1].hi, 64);
  }
  /* a second run replaces the table; no range, no entry */
  n = parse_specs(&r, "a:f32[b,s,4];b:f32[b,s,4]", sp);
  CHECK_INT(pass_shapes(r.g, sp, n, &r.d), 0);
  CHECK_INT(r.g->sym_ranges.len, 0);
  n = parse_specs(&r, "a:f32[b=1..32,4];b:f32[b=1..16,4]", sp);
  CHECK_INT(pass_shapes(r.g, sp, n, &r.d), 1);
  fflush(r.f);
  CHECK_STR(r.diag, "nncc: error: --input b: symbol 'b' ranges over 1..16 here but "
                    "over 1..32 in an earlier --input\n");
  run_close(&r);
}

int main(void) {
  test_conv_and_linear();
  test_unify_with_given();
  test_errors();
  test_ranges();
  return unit_report("infer");
}
