/* test_symkern_ops.c — kernel_ops.c with symbolic dims: each case is a
 * small IR graph whose inputs have named dims ("x:f32[b,3,h,w]"). It is
 * lowered once symbolically and run by the reference interpreter with
 * several values of the dims, and lowered again statically with those
 * values written as numbers; both runs get the same input data and must
 * give bit-identical outputs (the symbolic kernels read their sizes from
 * the dims buffer, the static ones have them as constants, the arithmetic
 * is the same). A few cases are also checked against values worked out
 * here (adaptive pooling to 1x1, mean, layer_norm), and ops that need a
 * number must report a symbolic dim, not crash.
 */
#include "backends/backend.h"
#include "passes/passes.h"
#include "unit.h"

#include <ctype.h>
#include <math.h>

/* Deterministic input data. */
static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* "b=2;h=9" → the value of name, or -1. */
static int64_t dim_value(const char *vals, const char *name, size_t len) {
  const char *p = vals;
  while (p && *p) {
    const char *eq = strchr(p, '=');
    if (!eq)
      break;
    if ((size_t)(eq - p) == len && strncmp(p, name, len) == 0)
      return strtoll(eq + 1, NULL, 10);
    p = strchr(eq, ';');
    if (p)
      p++;
  }
  return -1;
}

/* specs with each dim name inside [...] replaced by its value. */
static char *static_specs(const char *specs, const char *vals, nn_arena *a) {
  nn_buf b = {0};
  int depth = 0;
  for (const char *p = specs; *p;) {
    if (*p == '[')
      depth++;
    if (*p == ']')
      depth--;
    if (depth > 0 && (isalpha((unsigned char)*p) || *p == '_')) {
      const char *s = p;
      while (isalnum((unsigned char)*p) || *p == '_')
        p++;
      nn_buf_printf(&b, "%lld", (long long)dim_value(vals, s, (size_t)(p - s)));
      continue;
    }
    nn_buf_printf(&b, "%c", *p++);
  }
  char *r = nn_strdup(a, b.data ? b.data : "");
  nn_buf_free(&b);
  return r;
}

/* Parses specs "x:f32[b,3];y:i64[4]" (pass_parse_input_spec each). */
static int parse_specs(const char *text, nn_arena *a, pass_input_spec *out) {
  int n = 0;
  const char *p = text;
  while (p && *p && n < 8) {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char err[256];
    if (pass_parse_input_spec(nn_strndup(a, p, len), a, &out[n], err,
                              sizeof err) < 0) {
      fprintf(stderr, "bad spec: %s\n", err);
      return -1;
    }
    n++;
    p = end ? end + 1 : NULL;
  }
  return n;
}

/* Parses, shapes and schedules; NULL after reporting. */
static be_program *compile(const char *ir, const char *specs, nn_arena *a,
                           nn_diag *d) {
  ir_graph *g = ir_parse(ir, strlen(ir), "t.nnir", a, d);
  pass_input_spec sp[8];
  int n = parse_specs(specs, a, sp);
  if (!g || n < 0 || pass_shapes(g, sp, n, d) != 0)
    return NULL;
  return be_schedule(g, a, d);
}

static int64_t io_elems(const be_program *p, const be_io *io,
                        const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < io->rank; i++) {
    if (io->dims[i] >= 0) {
      n *= io->dims[i];
      continue;
    }
    bool ok = true;
    n *= be_dim_eval(p, io->dims_d[i], dims, &ok);
    CHECK(ok);
  }
  return n;
}

/* True when any kernel of p reads the dims buffer. */
static bool uses_dims(const be_program *p) {
  for (int i = 0; i < p->steps.len; i++)
    if (p->steps.data[i].k->dims_slot >= 0)
      return true;
  return false;
}

typedef struct run_out {
  int n;                /* outputs */
  void *data[8];        /* malloc'd */
  int64_t bytes[8];
} run_out;

/* Fills inputs of p with data (ints in [0, 4), floats in [-2, 2) with
 * 1/64 steps), sized for the dims. */
static void make_inputs(const be_program *p, const int64_t *dims,
                        void **in) {
  for (int i = 0; i < p->inputs.len; i++) {
    const be_io *io = &p->inputs.data[i];
    int64_t n = io_elems(p, io, dims);
    size_t es = nn_dtype_size(io->dtype);
    in[i] = calloc((size_t)(n ? n : 1), es);
    for (int64_t j = 0; j < n; j++) {
      uint64_t r = next_rand();
      if (io->dtype == NN_DT_F32)
        ((float *)in[i])[j] = (float)((int)(r % 256) - 128) / 64.0f;
      else if (io->dtype == NN_DT_I64)
        ((int64_t *)in[i])[j] = (int64_t)(r % 4);
    }
  }
}

static int run(const be_program *p, const int64_t *dims, void **in,
               run_out *o) {
  o->n = p->outputs.len;
  for (int i = 0; i < o->n; i++) {
    const be_io *io = &p->outputs.data[i];
    o->bytes[i] = io_elems(p, io, dims) * (int64_t)nn_dtype_size(io->dtype);
    o->data[i] = calloc(1, (size_t)o->bytes[i] + 8);
    memset(o->data[i], 0x5a, (size_t)o->bytes[i]);
  }
  return dims ? be_interp_dims(p, dims, in, o->data) : be_interp(p, in, o->data);
}

static void free_out(run_out *o) {
  for (int i = 0; i < o->n; i++)
    free(o->data[i]);
}

/* Lowers `ir` symbolically and, for each value set in vals[] ("b=2;h=9"),
 * statically; compares the interpreted outputs. When `first` is not NULL,
 * the symbolic outputs of the first value set are copied there (f32). */
static void check_case(const char *name, const char *ir, const char *specs,
                       const char *const *vals, int nvals, float *first,
                       int nfirst) {
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  be_program *sym = compile(ir, specs, a, &d);
  CHECK(sym != NULL);
  if (!sym) {
    fprintf(stderr, "  case %s: symbolic lowering failed\n", name);
    nn_arena_free(a);
    return;
  }
  CHECK(sym->syms.len > 0);
  CHECK(uses_dims(sym));
  for (int v = 0; v < nvals; v++) {
    int64_t dims[8];
    for (int i = 0; i < sym->syms.len && i < 8; i++) {
      const char *sn = sym->syms.data[i].name;
      dims[i] = dim_value(vals[v], sn, strlen(sn));
    }
    nn_arena *sa = nn_arena_new();
    be_program *st = compile(ir, static_specs(specs, vals[v], sa), sa, &d);
    CHECK(st != NULL);
    if (!st) {
      fprintf(stderr, "  case %s [%s]: static lowering failed\n", name, vals[v]);
      nn_arena_free(sa);
      continue;
    }
    CHECK(!uses_dims(st));
    void *in[8] = {0};
    make_inputs(sym, dims, in);
    run_out os = {0}, ss = {0};
    CHECK_INT(run(sym, dims, in, &os), 0);
    CHECK_INT(run(st, NULL, in, &ss), 0);
    CHECK_INT(os.n, ss.n);
    for (int i = 0; i < os.n && i < ss.n; i++) {
      CHECK_INT(os.bytes[i], ss.bytes[i]);
      bool same = os.bytes[i] == ss.bytes[i] &&
                  memcmp(os.data[i], ss.data[i], (size_t)os.bytes[i]) == 0;
      CHECK(same);
      if (!same)
        fprintf(stderr, "  case %s [%s]: output %d differs\n", name, vals[v], i);
    }
    if (v == 0 && first && os.n > 0)
      memcpy(first, os.data[0],
             (size_t)(os.bytes[0] < (int64_t)(nfirst * sizeof(float))
                          ? os.bytes[0] : (int64_t)(nfirst * sizeof(float))));
    free_out(&os);
    free_out(&ss);
    for (int i = 0; i < sym->inputs.len; i++)
      free(in[i]);
    nn_arena_free(sa);
  }
  nn_arena_free(a);
}

#define CASE(name, ir, specs, ...)                                            \
  do {                                                                        \
    const char *const vals_[] = {__VA_ARGS__};                                \
    check_case(name, ir, specs, vals_, (int)(sizeof vals_ / sizeof *vals_),   \
               NULL, 0);                                                      \
  } while (0)

#define G1(body, ret) "graph forward(%0 x: unknown) -> (unknown) {\n" body \
                      "  return " ret "\n}\n"

static void test_elementwise(void) {
  /* flat loop; broadcast of a [w] row and a [b,1,w] tensor; a scalar */
  CASE("relu", G1("  %1 = relu(%0) : unknown\n", "%1"), "x:f32[b,s]",
       "b=1;s=1", "b=2;s=7", "b=3;s=16");
  CASE("broadcast",
       "graph forward(%0 x: unknown, %1 y: unknown, %2 z: unknown) -> (unknown, unknown) {\n"
       "  %3 = constant(1) : int\n"
       "  %4 = add(%0, %1, %3) : unknown\n"
       "  %5 = mul(%4, %2) : unknown\n"
       "  %6 = constant(2.5) : float\n"
       "  %7 = where(%0, %6, %5) : unknown\n"
       "  return %5, %7\n}\n",
       "x:f32[b,h,w];y:f32[w];z:f32[b,1,w]", "b=1;h=1;w=1", "b=2;h=3;w=5",
       "b=3;h=4;w=2");
}

static void test_norm_rows(void) {
  float ln[12];
  const char *ir_ln =
      "graph forward(%0 x: unknown, %1 w: unknown, %2 b: unknown) -> (unknown) {\n"
      "  %3 = constant([4]) : list<int>\n"
      "  %4 = constant(1e-05) : float\n"
      "  %5 = constant(true) : bool\n"
      "  %6 = layer_norm(%0, %3, %1, %2, %4, %5) : unknown\n"
      "  return %6\n}\n";
  const char *const v1[] = {"b=1;s=3", "b=2;s=5"};
  rng = 99;
  check_case("layer_norm", ir_ln, "x:f32[b,s,4];w:f32[4];b:f32[4]", v1, 2, ln,
             12);
  /* recompute the first value set's layer_norm with the same data */
  rng = 99;
  float x[12], w[4], bb[4];
  for (int j = 0; j < 12; j++)
    x[j] = (float)((int)(next_rand() % 256) - 128) / 64.0f;
  for (int j = 0; j < 4; j++)
    w[j] = (float)((int)(next_rand() % 256) - 128) / 64.0f;
  for (int j = 0; j < 4; j++)
    bb[j] = (float)((int)(next_rand() % 256) - 128) / 64.0f;
  for (int r = 0; r < 3; r++) {
    double m = 0, var = 0;
    for (int j = 0; j < 4; j++)
      m += x[r * 4 + j] / 4.0;
    for (int j = 0; j < 4; j++)
      var += (x[r * 4 + j] - m) * (x[r * 4 + j] - m) / 4.0;
    for (int j = 0; j < 4; j++) {
      double want = (x[r * 4 + j] - m) / sqrt(var + 1e-5) * w[j] + bb[j];
      CHECK(fabs(ln[r * 4 + j] - want) < 1e-4 * (1 + fabs(want)));
    }
  }
  CASE("softmax",
       "graph forward(%0 x: unknown) -> (unknown, unknown, unknown) {\n"
       "  %1 = constant(-1) : int\n"
       "  %2 = constant(none) : none\n"
       "  %3 = softmax(%0, %1, %2) : unknown\n"
       "  %4 = constant(1) : int\n"
       "  %5 = log_softmax(%0, %4, %2) : unknown\n"
       "  %6 = cumsum(%0, %4, %2) : unknown\n"
       "  return %3, %5, %6\n}\n",
       "x:f32[b,h,s]", "b=1;h=2;s=1", "b=2;h=3;s=8");
  CASE("batch_group_norm",
       "graph forward(%0 x: unknown, %1 w: unknown, %2 m: unknown, %3 v: unknown) -> (unknown, unknown) {\n"
       "  %4 = constant(false) : bool\n"
       "  %5 = constant(0.1) : float\n"
       "  %6 = constant(1e-05) : float\n"
       "  %7 = batch_norm(%0, %1, %2, %2, %3, %4, %5, %6, %4) : unknown\n"
       "  %8 = constant(2) : int\n"
       "  %9 = constant(none) : none\n"
       "  %10 = group_norm(%0, %8, %1, %9, %6, %4) : unknown\n"
       "  return %7, %10\n}\n",
       "x:f32[b,4,h,w];w:f32[4];m:f32[4];v:f32[4]", "b=1;h=1;w=1",
       "b=2;h=3;w=5");
}

static void test_reduce(void) {
  float mean[6];
  const char *ir =
      "graph forward(%0 x: unknown) -> (unknown, unknown, unknown, unknown, unknown) {\n"
      "  %1 = constant([2, 3]) : list<int>\n"
      "  %2 = constant(false) : bool\n"
      "  %3 = constant(none) : none\n"
      "  %4 = mean(%0, %1, %2, %3) : unknown\n"
      "  %5 = constant([0]) : list<int>\n"
      "  %6 = constant(true) : bool\n"
      "  %7 = sum(%0, %5, %6, %3) : unknown\n"
      "  %8 = constant(-1) : int\n"
      "  %9, %10 = max_dim(%0, %8, %2) : unknown, unknown\n"
      "  %11 = argmax(%0, %3, %2) : unknown\n"
      "  return %4, %7, %9, %10, %11\n}\n";
  const char *const v[] = {"b=2;h=2;w=3", "b=1;h=1;w=1", "b=3;h=5;w=4"};
  rng = 7;
  check_case("reduce", ir, "x:f32[b,3,h,w]", v, 3, mean, 6);
  rng = 7;
  float x[36];
  for (int j = 0; j < 36; j++)
    x[j] = (float)((int)(next_rand() % 256) - 128) / 64.0f;
  for (int p = 0; p < 6; p++) {
    float s = 0;
    for (int j = 0; j < 6; j++)
      s += x[p * 6 + j];
    CHECK(mean[p] == s / 6.0f);
  }
}

static void test_pool(void) {
  float gap[6];
  const char *ir =
      "graph forward(%0 x: unknown) -> (unknown, unknown, unknown, unknown) {\n"
      "  %1 = constant([1, 1]) : list<int>\n"
      "  %2 = adaptive_avg_pool2d(%0, %1) : unknown\n"
      "  %3 = constant([3, 3]) : list<int>\n"
      "  %4 = constant([2, 2]) : list<int>\n"
      "  %5 = constant([1, 1]) : list<int>\n"
      "  %6 = constant(false) : bool\n"
      "  %7 = max_pool2d(%0, %3, %4, %5, %5, %6) : unknown\n"
      "  %8 = constant(true) : bool\n"
      "  %9 = constant(none) : none\n"
      "  %10 = avg_pool2d(%0, %3, %4, %5, %6, %8, %9) : unknown\n"
      "  %11 = constant([2, 3]) : list<int>\n"
      "  %12, %13 = adaptive_max_pool2d(%0, %11) : unknown, unknown\n"
      "  return %2, %7, %10, %12\n}\n";
  const char *const v[] = {"b=2;h=5;w=4", "b=1;h=1;w=1", "b=1;h=8;w=9",
                           "b=2;h=2;w=7"};
  rng = 5;
  check_case("pool", ir, "x:f32[b,3,h,w]", v, 4, gap, 6);
  rng = 5;
  float x[120];
  for (int j = 0; j < 120; j++)
    x[j] = (float)((int)(next_rand() % 256) - 128) / 64.0f;
  for (int p = 0; p < 6; p++) {
    float s = 0;
    for (int j = 0; j < 20; j++)
      s += x[p * 20 + j];
    CHECK(gap[p] == s / 20.0f);
  }
}

static void test_injective(void) {
  CASE("permute_transpose",
       G1("  %1 = constant([0, 2, 1]) : list<int>\n"
          "  %2 = permute(%0, %1) : unknown\n"
          "  %3 = constant(0) : int\n"
          "  %4 = constant(2) : int\n"
          "  %5 = transpose(%2, %3, %4) : unknown\n",
          "%5"),
       "x:f32[b,s,4]", "b=1;s=1", "b=2;s=5");
  CASE("slice_select",
       "graph forward(%0 x: unknown) -> (unknown, unknown, unknown, unknown) {\n"
       "  %1 = constant(1) : int\n"
       "  %2 = constant(0) : int\n"
       "  %3 = constant(9223372036854775807) : int\n"
       "  %4 = constant(2) : int\n"
       "  %5 = slice(%0, %1, %1, %3, %4) : unknown\n"
       "  %6 = constant(-1) : int\n"
       "  %7 = select(%0, %1, %6) : unknown\n"
       "  %8 = select(%0, %1, %2) : unknown\n"
       "  %9 = constant(-3) : int\n"
       "  %10 = slice(%0, %1, %9, %3, %1) : unknown\n"
       "  return %5, %7, %8, %10\n}\n",
       "x:f32[b,s,3]", "b=1;s=3", "b=2;s=7", "b=1;s=4");
  CASE("expand_repeat_flip",
       "graph forward(%0 x: unknown) -> (unknown, unknown, unknown) {\n"
       "  %1 = constant(1) : int\n"
       "  %5 = constant([3, -1, -1]) : list<int>\n"
       "  %6 = constant(false) : bool\n"
       "  %7 = expand(%0, %5, %6) : unknown\n"
       "  %8 = constant([2, 1, 2]) : list<int>\n"
       "  %9 = repeat(%0, %8) : unknown\n"
       "  %10 = constant([0, 2]) : list<int>\n"
       "  %11 = flip(%9, %10) : unknown\n"
       "  %12 = constant([1]) : list<int>\n"
       "  %13 = constant([2]) : list<int>\n"
       "  %14 = roll(%11, %12, %13) : unknown\n"
       "  return %7, %11, %14\n}\n",
       "x:f32[1,s,s]", "s=1", "s=4");
  CASE("cat_stack_chunk",
       "graph forward(%0 x: unknown, %1 y: unknown) -> (unknown, unknown, unknown, unknown) {\n"
       "  %2 = constant(1) : int\n"
       "  %3 = list_construct(%0, %1, %0) : unknown\n"
       "  %4 = cat(%3, %2) : unknown\n"
       "  %5 = list_construct(%0, %0) : unknown\n"
       "  %6 = stack(%5, %2) : unknown\n"
       "  %7 = constant(2) : int\n"
       "  %8 = chunk(%4, %7, %7) : unknown\n"
       "  %9, %10 = list_unpack(%8) : unknown, unknown\n"
       "  return %4, %6, %9, %10\n}\n",
       "x:f32[b,s,4];y:f32[b,t,4]", "b=1;s=1;t=1", "b=2;s=3;t=5");
  CASE("embedding_tril_pad",
       "graph forward(%0 w: unknown, %1 i: unknown, %2 x: unknown) -> (unknown, unknown, unknown) {\n"
       "  %3 = constant(-1) : int\n"
       "  %4 = constant(false) : bool\n"
       "  %5 = embedding(%0, %1, %3, %4, %4) : unknown\n"
       "  %6 = constant(0) : int\n"
       "  %7 = tril(%2, %6) : unknown\n"
       "  %8 = constant([1, 2, 0, 1]) : list<int>\n"
       "  %9 = constant(0.5) : float\n"
       "  %10 = constant_pad_nd(%2, %8, %9) : unknown\n"
       "  return %5, %7, %10\n}\n",
       "w:f32[4,3];i:i64[b,s];x:f32[b,s,s]", "b=1;s=1", "b=2;s=5");
  CASE("upsample_index_select",
       "graph forward(%0 x: unknown, %1 i: unknown, %2 j: unknown) -> (unknown, unknown, unknown) {\n"
       "  %3 = constant(none) : none\n"
       "  %4 = constant(2.) : float\n"
       "  %5 = upsample_nearest2d(%0, %3, %4, %4) : unknown\n"
       "  %6 = constant(1) : int\n"
       "  %7 = index_select(%0, %6, %1) : unknown\n"
       "  %8 = constant(false) : bool\n"
       "  %9 = gather(%0, %6, %2, %8) : unknown\n"
       "  return %5, %7, %9\n}\n",
       "x:f32[b,4,h,w];i:i64[3];j:i64[b,2,h,w]", "b=1;h=1;w=1",
       "b=2;h=3;w=5");
}

/* An op that needs a number reports the symbolic dim (no crash). */
static void test_symbolic_errors(void) {
  nn_arena *a = nn_arena_new();
  nn_diag d;
  FILE *msgs = tmpfile();
  nn_diag_init(&d, msgs);
  be_program *p = compile(
      "graph forward(%0 x: unknown) -> (unknown) {\n"
      "  %1 = constant(1) : int\n"
      "  %2 = constant(none) : none\n"
      "  %3 = constant(1e-05) : float\n"
      "  %4 = constant(false) : bool\n"
      "  %5 = group_norm(%0, %1, %2, %2, %3, %4) : unknown\n"
      "  return %5\n}\n",
      "x:f32[2,c,3]", a, &d);
  CHECK(p == NULL);
  CHECK_INT(d.errors, 1);
  char text[512] = {0};
  if (msgs) {
    rewind(msgs);
    size_t got = fread(text, 1, sizeof text - 1, msgs);
    text[got] = 0;
    fclose(msgs);
  }
  CHECK(strstr(text, "code generation for 'group_norm' with symbolic dim c "
                     "is not supported yet") != NULL);
  nn_arena_free(a);
}

int main(void) {
  test_elementwise();
  test_norm_rows();
  test_reduce();
  test_pool();
  test_injective();
  test_symbolic_errors();
  return unit_report("symkern_ops");
}
