/* pipeline.c — the pass pipeline, readable top to bottom, and the parser
 * for --input specs. The shapes step infers the inputs that no --input
 * names (infer_inputs.c) before it runs, and, once the graph is typed,
 * expands the composite ops (losses, distances, bilinear: expand.c) and
 * types the graph again.
 *
 * The default pipeline is: canonicalize, shapes, fold (batch_norm into the
 * convolution before it; it needs the shapes of the weights), cleanup
 * (canonicalize again, to merge and drop the shape arithmetic that shapes
 * folded away and the weights fold replaced), fp16 (16-bit values and
 * weights with --precision fp16|bf16, a no-op otherwise; before fuse so the
 * groups see the final dtypes), fuse (last: it counts uses,
 * so the dead shape arithmetic must be gone, and a later CSE could merge
 * nodes of two groups). --passes=a,b replaces it (golden
 * tests run one pass at a time); --print-after/--print-after-all dump the IR
 * after a pass; --stop-after ends the pipeline early. The verifier runs
 * after every pass when verify_each is set (debug builds and tests).
 */
#include "passes.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Also "cleanup": after shapes and fold, merge the equal constants and drop
 * what no longer feeds an output. */
static int run_canonicalize(ir_graph *g, const pass_opts *o, nn_diag *d) {
  (void)o;
  return pass_canonicalize(g, d);
}

/* Inputs without an --input spec are inferred first (infer_inputs.c);
 * composites are expanded once typed (expand.c). */
static int run_shapes(ir_graph *g, const pass_opts *o, nn_diag *d) {
  bool missing = false;
  for (int i = 0; i < g->inputs.len && !missing; i++) {
    const char *name = i < g->input_names.len ? g->input_names.data[i] : NULL;
    bool have = false;
    for (int j = 0; name && j < o->ninputs && !have; j++)
      have = o->inputs[j].name && !strcmp(o->inputs[j].name, name);
    missing = !have;
  }
  const pass_input_spec *specs = o->inputs;
  int n = o->ninputs;
  if (missing) {
    pass_input_spec *all;
    int errors = pass_infer_inputs(g, o->inputs, o->ninputs, o->inputs_loc, &all, &n, d);
    if (errors) return errors;
    specs = all;
  }
  int errors = pass_shapes(g, specs, n, d);
  /* composites (expand.c) are expanded once typed, and the graph typed
   * again; a composite fed by another waits for the next round */
  for (int round = 0; !errors && round < 16; round++) {
    int r = pass_expand(g, d);
    if (r < 0) return 1;
    if (r == 0) break;
    errors = pass_shapes(g, specs, n, d);
  }
  return errors;
}

static int run_fold(ir_graph *g, const pass_opts *o, nn_diag *d) {
  (void)o;
  return pass_fold(g, d);
}

static int run_fp16(ir_graph *g, const pass_opts *o, nn_diag *d) {
  return pass_fp16(g, o->precision, d);
}

static int run_fuse(ir_graph *g, const pass_opts *o, nn_diag *d) {
  (void)o;
  return pass_fuse(g, d);
}

/* The default pipeline, in order; pass_names and messages derive from it. */
static const struct {
  const char *name;                                     /* as in --passes */
  int (*run)(ir_graph *, const pass_opts *, nn_diag *); /* returns errors */
} passes[] = {
    {"canonicalize", run_canonicalize}, {"shapes", run_shapes}, {"fold", run_fold},
    {"cleanup", run_canonicalize},      {"fp16", run_fp16},     {"fuse", run_fuse},
};

const char *const pass_names[] = {"canonicalize", "shapes", "fold", "cleanup",
                                  "fp16",         "fuse",   NULL};
_Static_assert(NN_ARRAY_LEN(pass_names) == NN_ARRAY_LEN(passes) + 1,
               "pass_names lists the passes table");

static int find_pass(const char *name, size_t n) {
  for (int i = 0; i < NN_ARRAY_LEN(passes); i++)
    if (strlen(passes[i].name) == n && !strncmp(passes[i].name, name, n)) return i;
  return -1;
}

int pass_check_list(const char *list, char *err, size_t errlen) {
  if (!strcmp(list, "none")) return 0;
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (!n) {
      snprintf(err, errlen, "empty pass name in '%s'", list);
      return -1;
    }
    if (find_pass(p, n) < 0) {
      int k = snprintf(err, errlen, "unknown pass '%.*s' (passes:", (int)n, p);
      for (int i = 0; i < NN_ARRAY_LEN(passes) && k > 0 && (size_t)k < errlen; i++)
        k += snprintf(err + k, errlen - (size_t)k, "%s%s", i ? ", " : " ", passes[i].name);
      if (k > 0 && (size_t)k < errlen) snprintf(err + k, errlen - (size_t)k, ")");
      return -1;
    }
    p += n + (e != NULL);
  }
  return 0;
}

static void dump(ir_graph *g, const pass_opts *o, const char *after) {
  FILE *f = o->dump ? o->dump : stdout;
  nn_buf b = {0};
  ir_print(&b, g, o->print_flags);
  fprintf(f, "// IR after %s\n%s", after, b.data ? b.data : "");
  nn_buf_free(&b);
}

/* Runs pass i; returns errors, or -1 to stop the pipeline cleanly. */
static int run_one(ir_graph *g, int i, const pass_opts *o, nn_diag *d) {
  int errors = passes[i].run(g, o, d);
  if (errors) return errors;
  if (o->verify_each && ir_verify(g, d)) return 1;
  if (o->print_after_all || (o->print_after && !strcmp(o->print_after, passes[i].name)))
    dump(g, o, passes[i].name);
  if (o->stop_after && !strcmp(o->stop_after, passes[i].name)) return -1;
  return 0;
}

int pass_pipeline_run(ir_graph *g, const pass_opts *o, nn_diag *d) {
  if (o->passes) {
    if (!strcmp(o->passes, "none")) return 0;
    for (const char *p = o->passes; *p;) {
      const char *e = strchr(p, ',');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      int i = find_pass(p, n);
      NN_ASSERT(i >= 0); /* checked by pass_check_list */
      int r = run_one(g, i, o, d);
      if (r) return r < 0 ? 0 : r;
      p += n + (e != NULL);
    }
    return 0;
  }
  for (int i = 0; i < NN_ARRAY_LEN(passes); i++) {
    int r = run_one(g, i, o, d);
    if (r) return r < 0 ? 0 : r;
  }
  return 0;
}

/* ---- --input specs ---------------------------------------------------------- */

static bool parse_int(const char **p, int64_t *v) {
  const char *s = *p;
  if (!isdigit((unsigned char)*s)) return false;
  int64_t x = 0;
  while (isdigit((unsigned char)*s)) {
    if (x > (INT64_MAX - 9) / 10) return false;
    x = x * 10 + (*s++ - '0');
  }
  *v = x;
  *p = s;
  return true;
}

int pass_parse_input_spec(const char *text, nn_arena *arena, pass_input_spec *out, char *err,
                          size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *colon = strchr(text, ':');
  if (!colon || colon == text) {
    snprintf(err, errlen, "expected NAME:DTYPE[DIMS] in '%s' (e.g. x:f32[1,3,224,224])", text);
    return -1;
  }
  out->name = nn_strndup(arena, text, (size_t)(colon - text));
  const char *t = colon + 1;
  const char *br = strchr(t, '[');
  char *dt = nn_strndup(arena, t, br ? (size_t)(br - t) : strlen(t));
  if (!br) {
    out->rank = -1;
    if (!strcmp(dt, "int"))
      out->kind = IR_T_INT;
    else if (!strcmp(dt, "float"))
      out->kind = IR_T_FLOAT;
    else if (!strcmp(dt, "bool"))
      out->kind = IR_T_BOOL;
    else {
      snprintf(err, errlen, "expected DTYPE[DIMS] or int/float/bool after '%s:' in '%s'", out->name,
               text);
      return -1;
    }
    return 0;
  }
  out->kind = IR_T_TENSOR;
  out->dtype = nn_dtype_parse(dt);
  if (out->dtype == NN_DT_UNKNOWN) {
    snprintf(err, errlen,
             "unknown dtype '%s' in '%s' (one of f32 f16 bf16 f64 i64 i32 i16 i8 u8 bool)", dt,
             text);
    return -1;
  }
  const char *p = br + 1;
  NN_VEC(pass_dimspec) dims = {0};
  while (*p != ']') {
    pass_dimspec ds = {0};
    if (isdigit((unsigned char)*p)) {
      if (!parse_int(&p, &ds.value)) goto bad_dim;
    } else if (isalpha((unsigned char)*p) || *p == '_') {
      const char *s = p;
      while (isalnum((unsigned char)*p) || *p == '_') p++;
      ds.name = nn_strndup(arena, s, (size_t)(p - s));
      if (*p == '=') {
        p++;
        if (!parse_int(&p, &ds.lo) || strncmp(p, "..", 2)) goto bad_dim;
        p += 2;
        if (!parse_int(&p, &ds.hi) || ds.lo > ds.hi) goto bad_dim;
        ds.has_range = true;
      }
    } else {
      goto bad_dim;
    }
    NN_PUSH(arena, dims, ds);
    if (*p == ',')
      p++;
    else if (*p != ']')
      goto bad_dim;
  }
  if (p[1]) {
    snprintf(err, errlen, "unexpected text after ']' in '%s'", text);
    return -1;
  }
  out->rank = dims.len;
  out->dims = dims.data;
  return 0;
bad_dim:
  snprintf(err, errlen, "bad dim at '%s' in '%s' (a dim is a number, a name, or name=LO..HI)", p,
           text);
  return -1;
}

const char *pass_input_spec_str(const pass_input_spec *sp, nn_arena *arena) {
  nn_buf b = {0};
  nn_buf_printf(&b, "%s:", sp->name ? sp->name : "?");
  if (sp->kind != IR_T_TENSOR) {
    nn_buf_printf(&b, "%s",
                  sp->kind == IR_T_INT    ? "int"
                  : sp->kind == IR_T_BOOL ? "bool"
                                          : "float");
  } else {
    nn_buf_printf(&b, "%s[", nn_dtype_name(sp->dtype));
    for (int i = 0; sp->dims && i < sp->rank; i++) {
      const pass_dimspec *ds = &sp->dims[i];
      if (i) nn_buf_printf(&b, ",");
      if (!ds->name)
        nn_buf_printf(&b, "%lld", (long long)ds->value);
      else if (ds->has_range)
        nn_buf_printf(&b, "%s=%lld..%lld", ds->name, (long long)ds->lo, (long long)ds->hi);
      else
        nn_buf_printf(&b, "%s", ds->name);
    }
    nn_buf_printf(&b, "]");
  }
  const char *r = nn_strdup(arena, b.data);
  nn_buf_free(&b);
  return r;
}
