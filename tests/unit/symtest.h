/* symtest.h — the harness shared by the symbolic-dim lowering tests
 * (test_symgemm.c, test_symkern_ops.c).
 *
 * A case is a small IR graph whose inputs have named dims
 * ("x:f32[b,3,h,w]"). compare_lowerings() shapes and schedules it once with
 * the names and once per value set ("b=2;h=9") with the names replaced by
 * numbers, feeds both programs the same deterministic input data, runs them
 * with the reference interpreter (kp_interp_dims / kp_interp) and requires
 * bit-identical outputs. expect_symbolic_error() checks that a lowering
 * which needs a number reports the symbolic dim instead of crashing.
 * Everything is static: each test includes this header once.
 */
#ifndef NNCC_SYMTEST_H
#define NNCC_SYMTEST_H

#include "backends/backend.h"
#include "lower/lower.h"
#include "passes/passes.h"
#include "unit.h"

#include <ctype.h>

/* The generator behind all test data; tests set it to replay a case's
 * data when they recompute a result by hand. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static inline uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A value in [-2, 2) with 1/64 steps (exact in f16 too). */
static inline float rand_val(void) { return (float)((int)(next_rand() % 256) - 128) / 64.0f; }

/* Seeds rng from a weight's name: the data of weight "w" is the same in
 * every compilation of a case, and a test can replay it. */
static inline void seed_from_name(const char *name) {
  rng = 12345;
  for (const char *c = name; *c; c++) rng = rng * 31 + (unsigned char)*c;
}

/* "b=2;h=9" → the value of name (len bytes), or -1. */
static inline int64_t dim_value(const char *vals, const char *name, size_t len) {
  for (const char *p = vals; p && *p;) {
    const char *eq = strchr(p, '=');
    if (!eq) break;
    if ((size_t)(eq - p) == len && strncmp(p, name, len) == 0) return strtoll(eq + 1, NULL, 10);
    p = strchr(eq, ';');
    if (p) p++;
  }
  return -1;
}

/* specs with each dim name inside [...] replaced by its value in vals. */
static inline char *static_specs(const char *specs, const char *vals, nn_arena *a) {
  nn_buf b = {0};
  int depth = 0;
  for (const char *p = specs; *p;) {
    depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
    if (depth > 0 && (isalpha((unsigned char)*p) || *p == '_')) {
      const char *s = p;
      while (isalnum((unsigned char)*p) || *p == '_') p++;
      nn_buf_printf(&b, "%lld", (long long)dim_value(vals, s, (size_t)(p - s)));
      continue;
    }
    nn_buf_printf(&b, "%c", *p++);
  }
  char *r = nn_strdup(a, b.data ? b.data : "");
  nn_buf_free(&b);
  return r;
}

/* Gives every weight of g data from seed_from_name (f32 or f16 values of
 * rand_val); the generator's state is left as it was. */
static inline void attach_weights(ir_graph *g, nn_arena *a) {
  for (int i = 0; i < g->weights.len; i++) {
    ir_weight *w = &g->weights.data[i];
    int64_t n = 1;
    for (int k = 0; k < w->rank; k++) n *= w->sizes[k];
    uint64_t saved = rng;
    seed_from_name(w->name);
    size_t es = nn_dtype_size(w->dtype);
    unsigned char *d = nn_alloc(a, es * (size_t)(n + 1));
    for (int64_t e = 0; e < n; e++) {
      float v = rand_val();
      if (w->dtype == NN_DT_F16) {
        uint16_t h = nn_f32_to_f16(v);
        memcpy(d + (size_t)e * es, &h, es);
      } else {
        memcpy(d + (size_t)e * es, &v, es);
      }
    }
    rng = saved;
    w->data = d;
    w->nbytes = es * (size_t)n;
  }
}

/* Parses specs "x:f32[b,3];y:i64[4]" (pass_parse_input_spec each, at most
 * 8) into out; the count, or -1 after printing the error. */
static inline int parse_specs(const char *text, nn_arena *a, pass_input_spec *out) {
  int n = 0;
  for (const char *p = text; p && *p && n < 8; n++) {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char err[256];
    if (pass_parse_input_spec(nn_strndup(a, p, len), a, &out[n], err, sizeof err) < 0) {
      fprintf(stderr, "bad spec: %s\n", err);
      return -1;
    }
    p = end ? end + 1 : NULL;
  }
  return n;
}

/* Parses ir, attaches weight data, shapes it for specs, fuses it (when
 * asked) and schedules it; NULL after reporting into d. */
static inline kp_program *compile(const char *ir, const char *specs, bool fuse, nn_arena *a,
                                  nn_diag *d) {
  ir_graph *g = ir_parse(ir, strlen(ir), "t.nnir", a, d);
  if (!g) return NULL;
  attach_weights(g, a);
  pass_input_spec sp[8];
  int n = parse_specs(specs, a, sp);
  if (n < 0 || pass_shapes(g, sp, n, d) != 0) return NULL;
  if (fuse && pass_fuse(g, d) != 0) return NULL;
  return kl_schedule(g, a, tg_host(), d);
}

/* Dim i of io, a symbolic one evaluated for dims (NULL: none); -1 when it
 * cannot be evaluated. */
static inline int64_t io_dim(const kp_program *p, const kp_io *io, int i, const int64_t *dims) {
  if (io->dims[i] >= 0) return io->dims[i];
  bool ok = true;
  int64_t v = kp_dim_eval(p, io->dims_d[i], dims, &ok);
  return ok ? v : -1;
}

/* Elements of io for dims (see io_dim); every dim must evaluate. */
static inline int64_t io_elems(const kp_program *p, const kp_io *io, const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < io->rank; i++) {
    int64_t v = io_dim(p, io, i, dims);
    if (io->dims[i] < 0) CHECK(v >= 0);
    n *= v < 0 ? 0 : v;
  }
  return n;
}

/* Checks that the inputs and outputs of sym (evaluated for dims) and of
 * the static program st have the same dtypes and shapes; false if not. */
static inline bool same_io(const kp_program *sym, const int64_t *dims, const kp_program *st) {
  bool same = true;
  for (int side = 0; side < 2; side++) {
    const kp_io *a = side ? sym->outputs.data : sym->inputs.data;
    const kp_io *b = side ? st->outputs.data : st->inputs.data;
    int na = side ? sym->outputs.len : sym->inputs.len;
    int nb = side ? st->outputs.len : st->inputs.len;
    CHECK_INT(na, nb);
    same = same && na == nb;
    for (int i = 0; i < na && i < nb; i++) {
      CHECK_INT(a[i].dtype, b[i].dtype);
      CHECK_INT(a[i].rank, b[i].rank);
      same = same && a[i].dtype == b[i].dtype && a[i].rank == b[i].rank;
      for (int k = 0; k < a[i].rank && k < b[i].rank; k++) {
        int64_t da = io_dim(sym, &a[i], k, dims);
        CHECK_INT(da, b[i].dims[k]);
        same = same && da == b[i].dims[k];
      }
    }
  }
  return same;
}

/* True when any kernel of p reads the dims buffer. */
static inline bool uses_dims(const kp_program *p) {
  for (int i = 0; i < p->steps.len; i++)
    if (p->steps.data[i].k->dims_slot >= 0) return true;
  return false;
}

/* Expands every GEMM step of p into plain loops. */
static inline void expand_all(kp_program *p) {
  for (int i = 0; i < p->steps.len; i++) k_expand_gemms(p->steps.data[i].k, &tg_host()->expand);
}

/* Allocates and fills the inputs of p (at most 8), sized for dims: f32 and
 * f16 get rand_val, i64 gets ints in [0, 4). Free each in[i]. */
static inline void make_inputs(const kp_program *p, const int64_t *dims, void **in) {
  for (int i = 0; i < p->inputs.len && i < 8; i++) {
    const kp_io *io = &p->inputs.data[i];
    int64_t n = io_elems(p, io, dims);
    size_t es = nn_dtype_size(io->dtype);
    in[i] = calloc((size_t)(n ? n : 1), es);
    for (int64_t j = 0; j < n; j++) {
      if (io->dtype == NN_DT_F32) {
        ((float *)in[i])[j] = rand_val();
      } else if (io->dtype == NN_DT_F16) {
        uint16_t h = nn_f32_to_f16(rand_val());
        memcpy((char *)in[i] + (size_t)j * es, &h, es);
      } else if (io->dtype == NN_DT_I64) {
        ((int64_t *)in[i])[j] = (int64_t)(next_rand() % 4);
      }
    }
  }
}

typedef struct run_out {
  int n;            /* outputs (at most 8) */
  void *data[8];    /* malloc'd, filled with 0x5a before the run */
  int64_t bytes[8]; /* size of data[i] */
} run_out;

/* Runs p (dims NULL: static) on in into o; the interpreter's status. */
static inline int run(const kp_program *p, const int64_t *dims, void **in, run_out *o) {
  o->n = p->outputs.len < 8 ? p->outputs.len : 8;
  for (int i = 0; i < o->n; i++) {
    const kp_io *io = &p->outputs.data[i];
    o->bytes[i] = io_elems(p, io, dims) * (int64_t)nn_dtype_size(io->dtype);
    o->data[i] = malloc((size_t)o->bytes[i] + 8);
    memset(o->data[i], 0x5a, (size_t)o->bytes[i]);
  }
  return dims ? kp_interp_dims(p, dims, in, o->data) : kp_interp(p, in, o->data);
}

static inline void free_out(run_out *o) {
  for (int i = 0; i < o->n; i++) free(o->data[i]);
}

/* One case for compare_lowerings(). */
typedef struct sym_case {
  const char *name;    /* for messages */
  const char *ir;      /* the graph as IR text */
  const char *specs;   /* input specs with named dims, "x:f32[b,3];y:f32[b]" */
  bool fuse;           /* run pass_fuse before scheduling */
  bool expand;         /* also compare with every GEMM expanded into loops */
  const char *kernels; /* expected kernel names of the symbolic program
                          without the "kN_" prefix, or NULL (not checked) */
  uint64_t seed;       /* not 0: value set v's inputs come from rng =
                          seed + v; 0: they continue from the current rng */
  float *first;        /* not NULL: gets output 0 of the symbolic program for
                          the first value set (unexpanded) */
  int64_t nfirst;      /* floats first has room for */
} sym_case;

/* Lowers c symbolically and, for each of the nvals value sets in vals
 * ("b=2;h=9"), statically; every output pair must be bit-identical. With
 * c->expand, all of it is done a second time with the GEMMs expanded. */
static inline void compare_lowerings(const sym_case *c, const char *const *vals, int nvals) {
  for (int expand = 0; expand < (c->expand ? 2 : 1); expand++) {
    nn_arena *a = nn_arena_new();
    nn_diag d;
    nn_diag_init(&d, stderr);
    kp_program *sym = compile(c->ir, c->specs, c->fuse, a, &d);
    CHECK(sym != NULL);
    if (!sym) {
      fprintf(stderr, "  case %s: symbolic lowering failed\n", c->name);
      nn_arena_free(a);
      return;
    }
    CHECK(sym->syms.len > 0);
    CHECK(uses_dims(sym));
    if (c->kernels && !expand) {
      char names[512] = "";
      for (int i = 0; i < sym->steps.len; i++) {
        const char *nm = strchr(sym->steps.data[i].k->name, '_');
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", i ? "," : "", nm ? nm + 1 : "?");
      }
      CHECK_STR(names, c->kernels);
    }
    if (expand) expand_all(sym);
    for (int v = 0; v < nvals; v++) {
      int64_t dims[8] = {0};
      for (int i = 0; i < sym->syms.len && i < 8; i++) {
        const char *sn = sym->syms.data[i].name;
        dims[i] = dim_value(vals[v], sn, strlen(sn));
      }
      nn_arena *sa = nn_arena_new();
      kp_program *st = compile(c->ir, static_specs(c->specs, vals[v], sa), c->fuse, sa, &d);
      CHECK(st != NULL);
      if (!st) {
        fprintf(stderr, "  case %s [%s]: static lowering failed\n", c->name, vals[v]);
        nn_arena_free(sa);
        continue;
      }
      CHECK(!uses_dims(st));
      if (!same_io(sym, dims, st)) {
        fprintf(stderr,
                "  case %s [%s]: programs differ in their inputs or "
                "outputs\n",
                c->name, vals[v]);
        nn_arena_free(sa);
        continue;
      }
      if (expand) expand_all(st);
      if (c->seed) rng = c->seed + (uint64_t)v;
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
          fprintf(stderr, "  case %s [%s] (expand %d): output %d differs\n", c->name, vals[v],
                  expand, i);
      }
      if (v == 0 && !expand && c->first && os.n > 0) {
        int64_t room = c->nfirst * (int64_t)sizeof(float);
        memcpy(c->first, os.data[0], (size_t)(os.bytes[0] < room ? os.bytes[0] : room));
      }
      free_out(&os);
      free_out(&ss);
      for (int i = 0; i < 8; i++) free(in[i]);
      nn_arena_free(sa);
    }
    nn_arena_free(a);
  }
}

/* Compiles ir for specs (unfused), which must fail with exactly one error
 * whose text contains want. */
static inline void expect_symbolic_error(const char *ir, const char *specs, const char *want) {
  nn_arena *a = nn_arena_new();
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  nn_diag d;
  nn_diag_init(&d, f ? f : stderr);
  kp_program *p = compile(ir, specs, false, a, &d);
  if (f) fclose(f);
  CHECK(p == NULL);
  CHECK_INT(d.errors, 1);
  bool found = text && strstr(text, want) != NULL;
  CHECK(found);
  if (!found) fprintf(stderr, "diagnostics: %s\n", text ? text : "(none)");
  free(text);
  nn_arena_free(a);
}

#endif
