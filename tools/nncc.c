/* nncc.c — the command-line driver.
 *
 *   nncc MODEL.pt --emit=ir [--input NAME:DTYPE[DIMS]]... [pipeline flags]
 *   nncc FILE.nnir --emit=ir [--passes=LIST]       (textual IR in, for tests)
 *   nncc inspect MODEL.pt
 *   nncc --list-aten | --list-ops | --help | --version
 *
 * The whole compile is one readable function: import → lower → pipeline →
 * emit. Exit codes (DESIGN.md §8): 0 ok, 1 the model can't be compiled,
 * 2 bad command line, 3 internal error.
 */
#include "common/common.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/passes.h"
#include "backends/backend.h"
#include "nncc_run.h"

#include <errno.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NNCC_VERSION
#define NNCC_VERSION "0.0.0"
#endif
#ifndef NNCC_LLVM_VERSION
#define NNCC_LLVM_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_MODEL = 1, EXIT_USAGE = 2, EXIT_INTERNAL = 3 };

/* What --stats FILE.json reports (DESIGN.md §8). */
typedef struct stats {
  double t0;                 /* when the current phase started (ms) */
  const char *phase[8];      /* phase names, in order */
  double ms[8];              /* their durations */
  int nphases;
  int ops_in, ops_out;       /* non-meta ops after import / after the passes */
  int kernels;               /* scheduled kernels */
  uint64_t arena_bytes, arena_lower_bound_bytes, naive_bytes, weights_bytes;
  bool scheduled;            /* the backend ran (the memory numbers are real) */
} stats;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Ends the running phase under `name` and starts the next. */
static void phase_end(stats *st, const char *name) {
  double t = now_ms();
  if (st->nphases < NN_ARRAY_LEN(st->phase)) {
    st->phase[st->nphases] = name;
    st->ms[st->nphases++] = t - st->t0;
  }
  st->t0 = t;
}

static int count_ops(const ir_graph *g) {
  int n = 0;
  for (int i = 0; i < g->order.len; i++)
    n += ir_ops[g->nodes.data[g->order.data[i]].op].fusion != IR_FUSE_META;
  return n;
}

static void internal_exit(void) { _exit(EXIT_INTERNAL); }

static void usage(FILE *f) {
  fputs(
      "usage: nncc MODEL.pt -o OUT.so [options]   compile a traced TorchScript model\n"
      "       nncc run OUT.so [NAME=FILE.npy | FILE.npy]... [--out-dir DIR]\n"
      "                [--threads N] [--bench N]  run a compiled model on .npy inputs\n"
      "       nncc inspect MODEL.pt | OUT.so  describe an archive or a compiled model\n"
      "       nncc FILE.nnir [options]        run passes over textual IR\n"
      "\n"
      "options:\n"
      "  --input NAME:DTYPE[DIMS]   shape of a forward() input, one per input;\n"
      "                             DTYPE is f32 f16 bf16 f64 i64 i32 i16 i8 u8 bool,\n"
      "                             a dim is a number, a name (symbolic, chosen at\n"
      "                             run time; equal names are equal dims) or a name\n"
      "                             with a range (b=1..32); without --input, dtypes\n"
      "                             and ranks are inferred and every dim is symbolic;\n"
      "                             scalar inputs are NAME:int, NAME:float, NAME:bool\n"
      "  -o FILE                    output file (a model.so unless --emit says otherwise)\n"
      "  --weights FILE             load the parameters and buffers from a torch.save\n"
      "                             file (a state dict, names as in state_dict())\n"
      "  --weights-key KEY          the state dict's entry in a checkpoint dict, e.g.\n"
      "                             net or model.state_dict\n"
      "  --no-strict                with --weights: load what matches; missing and\n"
      "                             unexpected names are warnings, not errors\n"
      "  --emit=KIND                so (default with -o), obj (the object file),\n"
      "                             llvm (optimized LLVM IR), kernels (the scheduled\n"
      "                             loop nests), ir (the graph IR; stdout without -o)\n"
      "  -O0 .. -O3                 optimization level (default -O2)\n"
      "  --precision=P              fp32 (default), fp16 or bf16: values and weights\n"
      "                             in 16 bits; softmax, norms, reductions, exp/log/pow\n"
      "                             and the GEMM accumulation stay f32\n"
      "  --mcpu=NAME                target CPU for code generation (default: this host)\n"
      "  --stats FILE.json          write compile statistics: time per phase, ops in and\n"
      "                             out, kernels, arena bytes and its lower bound\n"
      "  --print-after=PASS         print the IR after PASS (import, canonicalize,\n"
      "                             shapes, fold, cleanup, fp16, fuse)\n"
      "  --print-after-all          print the IR after every pass\n"
      "  --stop-after=PASS          stop the pipeline after PASS\n"
      "  --passes=LIST              run these passes instead of the default\n"
      "                             pipeline (comma-separated, or none)\n"
      "  --print-loc                show source locations and module scopes in IR dumps\n"
      "  --verify-each              run the IR verifier after every pass\n"
      "  -Werror                    treat warnings as errors\n"
      "  --list-aten                list the supported TorchScript ops and the IR op\n"
      "                             each becomes\n"
      "  --list-ops                 list the IR ops\n"
      "  --version                  print the version\n"
      "  -h, --help                 print this help\n",
      f);
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "nncc: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'nncc --help' for usage)\n");
  return EXIT_USAGE;
}

typedef struct options {
  const char *model;     /* input file */
  const char *out;       /* -o */
  const char *emit;      /* --emit */
  NN_VEC(pass_input_spec) inputs;
  pass_opts po;
  bool print_loc;
  bool werror;
  int opt_level;         /* -O0..-O3 */
  const char *mcpu;      /* --mcpu */
  const char *weights;   /* --weights: a torch.save file, or NULL */
  const char *weights_key; /* --weights-key */
  bool no_strict;        /* --no-strict */
  const char *stats;     /* --stats FILE.json */
} options;

/* Matches "--name=value" or "--name value"; advances *i for the latter. */
static const char *opt_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n)) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] == 0) {
    if (*i + 1 >= argc) return "";
    return argv[++*i];
  }
  return NULL;
}

static int list_aten(void) {
  const char *last = "";
  for (int i = 0; fe_schema_at(i); i++) {
    const fe_schema *s = fe_schema_at(i);
    if (!strcmp(s->qualname, last)) continue;
    last = s->qualname;
    printf("%s %s\n", s->qualname, ir_ops[s->op].name);
    const char *colon = strstr(s->qualname, "::");
    const char *name = colon ? colon + 2 : s->qualname;
    size_t n = strlen(name);
    bool dunder = n > 4 && name[0] == '_' && name[1] == '_';
    bool scalar_op = ir_ops[s->op].fusion == IR_FUSE_META;
    int nrows;
    char inplace[256];
    snprintf(inplace, sizeof inplace, "%s_", s->qualname);
    if (!dunder && !scalar_op && !fe_schemas_for(inplace, &nrows))
      printf("%s %s\n", inplace, ir_ops[s->op].name);
  }
  return EXIT_OK;
}

static int list_ops(void) {
  for (int i = 0; i < NN_OP_COUNT; i++)
    printf("%-24s %-12s %s\n", ir_ops[i].name, ir_fusion_name(ir_ops[i].fusion), ir_ops[i].doc);
  return EXIT_OK;
}

/* ---- inspect ------------------------------------------------------------------ */

typedef struct op_count {
  const char *qualname;
  int count;
  nn_loc first;
} op_count;

typedef NN_VEC(op_count) op_counts;

static void count_call(nn_arena *a, op_counts *oc, const char *q, nn_loc loc) {
  for (int i = 0; i < oc->len; i++)
    if (!strcmp(oc->data[i].qualname, q)) {
      oc->data[i].count++;
      return;
    }
  op_count c = {q, 1, loc};
  NN_PUSH(a, *oc, c);
}

/* Dotted name of an attribute chain, or NULL. */
static const char *dotted(nn_arena *a, const fe_expr *e) {
  if (e->kind == FE_E_NAME) return e->u.name;
  if (e->kind != FE_E_ATTR) return NULL;
  const char *o = dotted(a, e->u.attr.obj);
  return o ? nn_sprintf(a, "%s.%s", o, e->u.attr.name) : NULL;
}

static void scan_expr(nn_arena *a, op_counts *oc, const fe_expr *e);

static void scan_exprs(nn_arena *a, op_counts *oc, fe_expr *const *v, int n) {
  for (int i = 0; i < n; i++)
    if (v[i]) scan_expr(a, oc, v[i]);
}

static void scan_expr(nn_arena *a, op_counts *oc, const fe_expr *e) {
  switch (e->kind) {
  case FE_E_CALL: {
    const char *q = dotted(a, e->u.call.fn);
    if (q && !strncmp(q, "torch.", 6) && !strchr(q + 6, '.') && strcmp(q, "torch.device"))
      count_call(a, oc, nn_sprintf(a, "aten::%s", q + 6), e->loc);
    else if (q && !strncmp(q, "ops.", 4)) {
      const char *dot = strchr(q + 4, '.');
      if (dot)
        count_call(a, oc, nn_sprintf(a, "%.*s::%s", (int)(dot - q - 4), q + 4, dot + 1), e->loc);
    } else if (q && (!strcmp(q, "int") || !strcmp(q, "float") || !strcmp(q, "bool")))
      count_call(a, oc, !strcmp(q, "int") ? "aten::Int" : !strcmp(q, "float") ? "aten::Float" : "aten::Bool", e->loc);
    scan_expr(a, oc, e->u.call.fn);
    scan_exprs(a, oc, e->u.call.args, e->u.call.nargs);
    scan_exprs(a, oc, e->u.call.kwargs, e->u.call.nkw);
    break;
  }
  case FE_E_ATTR: scan_expr(a, oc, e->u.attr.obj); break;
  case FE_E_SUBSCRIPT:
    scan_expr(a, oc, e->u.sub.obj);
    scan_exprs(a, oc, e->u.sub.idx, e->u.sub.nidx);
    break;
  case FE_E_LIST: case FE_E_TUPLE: scan_exprs(a, oc, e->u.seq.items, e->u.seq.n); break;
  case FE_E_UNARY: scan_expr(a, oc, e->u.unary.a); break;
  case FE_E_BINARY:
    scan_expr(a, oc, e->u.binary.a);
    scan_expr(a, oc, e->u.binary.b);
    break;
  case FE_E_TERNARY:
    scan_expr(a, oc, e->u.ternary.cond);
    scan_expr(a, oc, e->u.ternary.then);
    scan_expr(a, oc, e->u.ternary.els);
    break;
  default: break;
  }
}

static void scan_block(nn_arena *a, op_counts *oc, const fe_block *b) {
  for (int i = 0; i < b->n; i++) {
    const fe_stmt *s = b->stmts[i];
    switch (s->kind) {
    case FE_S_EXPR: case FE_S_RETURN: case FE_S_RAISE:
      if (s->u.expr) scan_expr(a, oc, s->u.expr);
      break;
    case FE_S_ASSIGN: scan_expr(a, oc, s->u.assign.value); break;
    case FE_S_AUGASSIGN: scan_expr(a, oc, s->u.aug.value); break;
    case FE_S_ANNASSIGN:
      if (s->u.ann.value) scan_expr(a, oc, s->u.ann.value);
      break;
    case FE_S_IF:
      scan_expr(a, oc, s->u.if_.cond);
      scan_block(a, oc, &s->u.if_.then);
      scan_block(a, oc, &s->u.if_.els);
      break;
    case FE_S_FOR:
      scan_expr(a, oc, s->u.for_.iter);
      scan_block(a, oc, &s->u.for_.body);
      break;
    case FE_S_WHILE:
      scan_expr(a, oc, s->u.while_.cond);
      scan_block(a, oc, &s->u.while_.body);
      break;
    case FE_S_DEF: scan_block(a, oc, &s->u.def.body); break;
    case FE_S_CLASS: scan_block(a, oc, &s->u.class_.body); break;
    default: break;
    }
  }
}

static bool op_supported(nn_arena *a, const char *q) {
  int n;
  if (fe_schemas_for(q, &n)) return true;
  size_t l = strlen(q);
  if (l > 1 && q[l - 1] == '_') return fe_schemas_for(nn_strndup(a, q, l - 1), &n) != NULL;
  return false;
}

typedef struct tally {
  int64_t elems;  /* tensor elements */
  int64_t bytes;  /* tensor bytes */
  int tensors;    /* tensor count */
} tally;

static int64_t numel_of(const fe_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->sizes[i];
  return n;
}

/* Prints the module tree; returns the totals of the subtree. */
static tally print_modules(const fe_pval *obj, const char *path, int depth, nn_arena *a) {
  tally own = {0}, total = {0};
  const fe_pval *st = obj->u.obj.state;
  if (st && st->kind == FE_PV_DICT)
    for (int i = 0; i < st->u.dict.n; i++) {
      const fe_pval *v = st->u.dict.vals[i];
      if (v->kind == FE_PV_TENSOR) {
        own.elems += numel_of(v->u.tensor);
        own.bytes += numel_of(v->u.tensor) * (int64_t)nn_dtype_size(v->u.tensor->dtype);
        own.tensors++;
      }
    }
  printf("  %*s%-*s %-28s %10lld params\n", depth * 2, "", 30 - depth * 2,
         *path ? path : "(root)", obj->u.obj.name, (long long)own.elems);
  total = own;
  if (st && st->kind == FE_PV_DICT)
    for (int i = 0; i < st->u.dict.n; i++) {
      const fe_pval *v = st->u.dict.vals[i];
      const fe_pval *k = st->u.dict.keys[i];
      if (v->kind != FE_PV_OBJECT || k->kind != FE_PV_STR || depth > 64) continue;
      const char *name = k->u.str.s;
      tally t = print_modules(v, *path ? nn_sprintf(a, "%s.%s", path, name) : name, depth + 1, a);
      total.elems += t.elems;
      total.bytes += t.bytes;
      total.tensors += t.tensors;
    }
  return total;
}

/* The archive itself doesn't name its producer; the format version and
 * entries that only some releases write narrow it down (FORMATS.md §3, §8). */
static const char *producer_of(const fe_model *m) {
  if (fe_archive_find(m->archive, "bytecode.pkl")) return "PyTorch lite interpreter (bytecode.pkl present)";
  if (fe_archive_find(m->archive, ".data/version") ||
      fe_archive_find(m->archive, ".data/serialization_id"))
    return "PyTorch 1.13 or newer (.data/ entries)";
  switch (m->version) {
  case 1: return "PyTorch 1.3-1.4 (format version 1)";
  case 2: return "PyTorch 1.4-1.5 (format version 2)";
  case 3: return "PyTorch 1.6 or newer (format version 3)";
  default: return m->version > 3 ? "PyTorch 1.7 or newer" : "unknown (no version entry)";
  }
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

static int cmd_inspect(int argc, char **argv) {
  if (argc == 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
    puts("usage: nncc inspect MODEL.pt | OUT.so\n\n"
         "Prints the archive's format and version, its likely producer, the module\n"
         "tree with parameter counts, the parameters' total elements and bytes, the\n"
         "forward() inputs, and every op the code uses with whether nncc supports it.\n"
         "For a compiled OUT.so: its inputs and outputs, compiler, target, CPU\n"
         "features, workspace and weights bytes.");
    return EXIT_OK;
  }
  if (argc != 1) return usage_error("inspect takes one MODEL.pt or OUT.so argument%s", "");
  const char *path = argv[0];
  if (ends_with(path, ".so")) return nncc_inspect_so(path);
  nn_arena *arena = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  fe_model *m = fe_import(path, arena, &d);
  if (!m) {
    nn_arena_free(arena);
    return EXIT_MODEL;
  }
  d.source = fe_model_source_line;
  d.source_ctx = m;
  printf("archive: %s\n", path);
  if (m->format == FE_FMT_LEGACY) {
    printf("format: legacy TorchScript archive (model.json, PyTorch 1.0-1.2), version %lld\n",
           (long long)m->version);
    printf("producer: %s\n", m->producer ? m->producer : "unknown");
  } else {
    printf("format: TorchScript archive (torch.jit.save), file format version %lld\n",
           (long long)m->version);
    printf("producer: %s\n", producer_of(m));
  }
  printf("top folder: %s\n", fe_archive_prefix(m->archive));
  if (m->op_version_set >= 0) printf("op_version_set: %lld\n", (long long)m->op_version_set);
  printf("entries: %d, code files: %d\n", fe_archive_count(m->archive), m->codes.len);
  printf("root module: %s.%s\n", m->root->u.obj.module, m->root->u.obj.name);
  printf("modules:\n");
  tally t = print_modules(m->root, "", 0, arena);
  printf("parameters and buffers: %d tensors, %lld elements, %lld bytes\n", t.tensors,
         (long long)t.elems, (long long)t.bytes);

  /* Inputs: the root forward's parameters. */
  const fe_def *def = fe_find_def(m, nn_sprintf(arena, "%s.%s", m->root->u.obj.module, m->root->u.obj.name));
  const fe_stmt *fwd = NULL;
  if (def && def->stmt->kind == FE_S_CLASS)
    for (int i = 0; i < def->stmt->u.class_.body.n; i++) {
      const fe_stmt *s = def->stmt->u.class_.body.stmts[i];
      if (s->kind == FE_S_DEF && !strcmp(s->u.def.name, "forward")) fwd = s;
    }
  if (fwd) {
    printf("inputs:\n");
    for (int i = 1; i < fwd->u.def.nparams; i++) {
      nn_buf b = {0};
      if (fwd->u.def.params[i].type) fe_expr_print(&b, fwd->u.def.params[i].type);
      printf("  %s: %s\n", fwd->u.def.params[i].name, b.data ? b.data : "Tensor");
      nn_buf_free(&b);
    }
  } else {
    printf("inputs: none (the root module has no forward method)\n");
  }

  op_counts oc = {0};
  for (int i = 0; i < m->codes.len; i++) scan_block(arena, &oc, &m->codes.data[i]->ast);
  int unsupported = 0;
  printf("ops used (%d kinds):\n", oc.len);
  for (int i = 0; i < oc.len; i++) {
    bool ok = op_supported(arena, oc.data[i].qualname);
    unsupported += !ok;
    printf("  %-32s %5d  %s\n", oc.data[i].qualname, oc.data[i].count,
           ok ? "supported" : "NOT SUPPORTED");
  }
  if (unsupported) printf("%d op kinds are not supported\n", unsupported);
  fe_model_close(m);
  nn_arena_free(arena);
  return EXIT_OK;
}

/* ---- compile ------------------------------------------------------------------- */


static ir_graph *load_ir_text(const char *path, nn_arena *arena, nn_diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    nn_error(d, (nn_loc){path, 0, 0}, "cannot open: %s", strerror(errno));
    return NULL;
  }
  nn_buf b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) nn_buf_putn(&b, chunk, n);
  fclose(f);
  ir_graph *g = ir_parse(b.data ? b.data : "", b.len, path, arena, d);
  nn_buf_free(&b);
  return g;
}

/* Does the pipeline as configured run `pass`? (--passes picks the list,
 * --stop-after cuts it.) */
static bool pipeline_runs(const options *o, const char *pass) {
  const char *stop = o->po.stop_after;
  if (stop && !strcmp(stop, "import")) return false;
  if (o->po.passes) {
    for (const char *p = o->po.passes; *p;) {
      const char *e = strchr(p, ',');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      if (strlen(pass) == n && !strncmp(p, pass, n)) return true;
      if (stop && strlen(stop) == n && !strncmp(p, stop, n)) return false;
      p += n + (e != NULL);
    }
    return false;
  }
  for (int i = 0; pass_names[i]; i++) {
    if (!strcmp(pass_names[i], pass)) return true;
    if (stop && !strcmp(pass_names[i], stop)) return false;
  }
  return false;
}

/* An --input naming no input is reported before anything runs. Inputs
 * that no --input names are inferred by the shapes pass from their uses
 * (passes/infer_inputs.c), which reports the ones it cannot infer. */
static void report_unknown_inputs(const ir_graph *g, const options *o, nn_diag *d) {
  for (int k = 0; k < o->inputs.len; k++) {
    bool known = false;
    for (int i = 0; i < g->inputs.len; i++) known |= !strcmp(o->inputs.data[k].name, g->input_names.data[i]);
    if (known) continue;
    nn_buf all = {0};
    for (int i = 0; i < g->inputs.len; i++)
      nn_buf_printf(&all, "%s%s", i ? ", " : "", g->input_names.data[i]);
    nn_error(d, (nn_loc){0}, "--input names '%s', but the model's inputs are: %s",
             o->inputs.data[k].name, all.data ? all.data : "(none)");
    nn_buf_free(&all);
    return;
  }
}

static int write_output(const options *o, const char *text, size_t len, nn_diag *d) {
  if (!o->out || !strcmp(o->out, "-")) {
    fwrite(text, 1, len, stdout);
    return 0;
  }
  /* Write to a temporary file and rename, so a failure leaves no output. */
  char *tmp = malloc(strlen(o->out) + 16);
  sprintf(tmp, "%s.tmpXXXXXX", o->out);
  int fd = mkstemp(tmp);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  bool ok = f && fwrite(text, 1, len, f) == len;
  if (f && fclose(f)) ok = false;
  if (ok && rename(tmp, o->out)) ok = false;
  if (!ok) {
    unlink(tmp);
    nn_error(d, (nn_loc){o->out, 0, 0}, "cannot write the output file");
  }
  free(tmp);
  return ok ? 0 : -1;
}

/* "dir/resnet18.pt" → "resnet18": the name recorded in the model.so. */
static const char *model_name(const char *path, nn_arena *arena) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  return nn_strndup(arena, base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
}

/* The last stage: print the IR, or generate code and write obj/llvm/so. */
static int emit(const options *o, ir_graph *g, nn_arena *arena, nn_diag *d, stats *st) {
  const char *kind = o->emit ? o->emit : "so";
  nn_buf b = {0};
  int w = -1;
  if (!strcmp(kind, "ir")) {
    ir_print(&b, g, o->po.print_flags);
    w = write_output(o, b.data ? b.data : "", b.len, d);
    nn_buf_free(&b);
    return w ? EXIT_MODEL : EXIT_OK;
  }
  be_program *p = be_schedule(g, arena, d);
  if (!p) return EXIT_MODEL;
  phase_end(st, "schedule");
  st->scheduled = true;
  st->kernels = p->steps.len;
  st->arena_bytes = p->workspace_bytes;
  st->arena_lower_bound_bytes = p->arena_lower_bound_bytes;
  st->naive_bytes = p->naive_bytes;
  st->weights_bytes = (uint64_t)p->weights.len;
  if (!strcmp(kind, "kernels")) {
    be_program_print(&b, p);
    w = write_output(o, b.data ? b.data : "", b.len, d);
    nn_buf_free(&b);
    return w ? EXIT_MODEL : EXIT_OK;
  }
  llvm_opts lo = {.opt_level = o->opt_level, .mcpu = o->mcpu};
  llvm_result r = {0};
  if (llvm_compile(p, &lo, !strcmp(kind, "llvm"), &r, d)) return EXIT_MODEL;
  phase_end(st, "codegen");
  if (!strcmp(kind, "llvm")) {
    w = write_output(o, r.ir_text ? r.ir_text : "", r.ir_text ? strlen(r.ir_text) : 0, d);
  } else if (!strcmp(kind, "obj")) {
    w = write_output(o, r.obj, r.obj_size, d);
  } else {
    artifact_opts ao = {.out = o->out, .cc = getenv("CC"), .model_name = model_name(o->model, arena)};
    w = artifact_link(p, &r, &ao, d);
    phase_end(st, "link");
  }
  llvm_result_free(&r);
  return w ? EXIT_MODEL : EXIT_OK;
}

/* Lets the lowering unroll loops and fold ifs that depend on shapes: runs
 * shape inference over the graph built so far with the --input specs and
 * reports whether v became a constant. Errors here are not reported: the
 * full shapes pass reports them later, in context. */
static int resolve_value(void *ctx, ir_graph *g, ir_value v, ir_const *out) {
  const options *o = ctx;
  if (!o->inputs.len) return -1;
  FILE *null = fopen("/dev/null", "w");
  if (!null) return -1;
  nn_diag quiet;
  nn_diag_init(&quiet, null);
  pass_shapes(g, o->inputs.data, o->inputs.len, &quiet);
  fclose(null);
  const ir_const *c;
  if (!ir_value_const(g, v, &c)) return -1;
  *out = *c;
  return 0;
}

/* A .half()-ed model computes in f32 on the CPU for now: its weights were
 * converted while lowering; f16/bf16 inputs are converted on entry. */
static void cast_half_inputs(ir_graph *g, const options *o, int nweights, nn_diag *d) {
  nn_warning(d, (nn_loc){o->model, 0, 0},
             "%d f16/bf16 weight tensors: the CPU backend computes this model in f32 "
             "and returns f32 outputs", nweights);
  for (int i = 0; i < g->inputs.len && g->order.len; i++) {
    const pass_input_spec *spec = NULL;
    for (int k = 0; k < o->inputs.len; k++)
      if (!strcmp(o->inputs.data[k].name, g->input_names.data[i])) spec = &o->inputs.data[k];
    if (!spec || (spec->dtype != NN_DT_F16 && spec->dtype != NN_DT_BF16)) continue;
    ir_value x = g->inputs.data[i];
    ir_nodeid first = g->order.data[0];
    ir_nodeid kc = ir_insert_before(g, first, NN_OP_CONSTANT, 0, NULL, 1, (nn_loc){0});
    ir_node *c = ir_node_get(g, kc);
    c->c = (ir_const){.kind = IR_C_INT, .i = nn_dtype_to_scalar_type(NN_DT_F32)};
    c->scope = "";
    ir_set_type(g, c->out[0], ir_type_scalar(g, IR_T_INT));
    ir_value in[2] = {x, c->out[0]};
    ir_nodeid kt = ir_insert_before(g, first, NN_OP_TO, 2, in, 1, (nn_loc){0});
    ir_node_get(g, kt)->scope = "";
    ir_value y = ir_node_get(g, kt)->out[0];
    ir_replace_uses(g, x, y);
    ir_node_get(g, kt)->in[0] = x; /* the cast itself still reads the input */
  }
}

static int write_stats(const options *o, const stats *st, nn_diag *d) {
  FILE *f = fopen(o->stats, "w");
  if (!f) {
    nn_error(d, (nn_loc){o->stats, 0, 0}, "cannot write: %s", strerror(errno));
    return -1;
  }
  double total = 0;
  fprintf(f, "{\n  \"compile_ms\": {");
  for (int i = 0; i < st->nphases; i++) {
    fprintf(f, "%s\"%s\": %.3f", i ? ", " : "", st->phase[i], st->ms[i]);
    total += st->ms[i];
  }
  fprintf(f, "%s\"total\": %.3f},\n", st->nphases ? ", " : "", total);
  fprintf(f, "  \"ops_in\": %d,\n  \"ops_out\": %d,\n  \"kernels\": %d,\n", st->ops_in,
          st->ops_out, st->kernels);
  fprintf(f, "  \"arena_bytes\": %llu,\n  \"arena_lower_bound_bytes\": %llu,\n",
          (unsigned long long)st->arena_bytes, (unsigned long long)st->arena_lower_bound_bytes);
  fprintf(f, "  \"naive_bytes\": %llu,\n  \"weights_bytes\": %llu\n}\n",
          (unsigned long long)st->naive_bytes, (unsigned long long)st->weights_bytes);
  return fclose(f) ? -1 : 0;
}

static int compile(options *o) {
  nn_arena *arena = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  d.werror = o->werror;
  int rc = EXIT_MODEL;
  fe_model *m = NULL;
  ir_graph *g;
  stats st = {.t0 = now_ms()};

  if (ends_with(o->model, ".nnir")) {
    g = load_ir_text(o->model, arena, &d);
  } else {
    m = fe_import(o->model, arena, &d);
    if (!m) goto done;
    d.source = fe_model_source_line;
    d.source_ctx = m;
    if (o->weights &&
        fe_weights_load(m, o->weights, o->weights_key, !o->no_strict, arena, &d))
      goto done;
    int half = 0;
    fe_lower_opts lo = {.resolve = resolve_value, .ctx = o, .half_upcasts = &half};
    g = fe_lower_with(m, &lo, arena, &d);
    if (g && half) cast_half_inputs(g, o, half, &d);
  }
  if (!g || d.errors) goto done;
  phase_end(&st, "import");
  st.ops_in = count_ops(g);
  if (o->po.verify_each && ir_verify(g, &d)) goto done;
  if (o->po.print_after_all || (o->po.print_after && !strcmp(o->po.print_after, "import"))) {
    nn_buf b = {0};
    ir_print(&b, g, o->po.print_flags);
    printf("// IR after import\n%s", b.data ? b.data : "");
    nn_buf_free(&b);
  }
  bool stop_import = o->po.stop_after && !strcmp(o->po.stop_after, "import");
  bool runs_shapes = pipeline_runs(o, "shapes");
  if (runs_shapes) {
    report_unknown_inputs(g, o, &d);
    if (d.errors) goto done;
  }
  if (!stop_import) {
    o->po.inputs = o->inputs.data;
    o->po.ninputs = o->inputs.len;
    o->po.inputs_loc = (nn_loc){o->model, 0, 0};
    if (pass_pipeline_run(g, &o->po, &d) || d.errors) goto done;
    phase_end(&st, "passes");
  }
  st.ops_out = count_ops(g);
  rc = emit(o, g, arena, &d, &st);
  if (rc == EXIT_OK && o->stats && write_stats(o, &st, &d)) rc = EXIT_MODEL;
done:
  if (m) fe_model_close(m);
  nn_arena_free(arena);
  return rc;
}

/* Parses the command line into o (option values live in arena) and
 * compiles; returns the exit code. */
static int cmd_compile(int argc, char **argv, nn_arena *arena) {
  static options o;
  o.po.dump = stdout;
#ifndef NDEBUG
  o.po.verify_each = true; /* debug builds check the IR after every pass */
#endif
  o.emit = NULL;
  o.opt_level = 2;
  char err[512];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return EXIT_OK;
    }
    if (!strcmp(a, "--version")) {
      printf("nncc %s (LLVM %s; NVRTC: not used by this build)\n", NNCC_VERSION, NNCC_LLVM_VERSION);
      return EXIT_OK;
    }
    if (!strcmp(a, "--list-aten")) return list_aten();
    if (!strcmp(a, "--list-ops")) return list_ops();
    if ((v = opt_value(argc, argv, &i, "--input"))) {
      pass_input_spec spec;
      if (pass_parse_input_spec(v, arena, &spec, err, sizeof err))
        return usage_error("--input: %s", err);
      for (int k = 0; k < o.inputs.len; k++)
        if (!strcmp(o.inputs.data[k].name, spec.name))
          return usage_error("--input '%s' given twice", spec.name);
      NN_PUSH(arena, o.inputs, spec);
    } else if ((v = opt_value(argc, argv, &i, "--emit"))) {
      o.emit = v;
    } else if ((v = opt_value(argc, argv, &i, "-o"))) {
      if (!*v) return usage_error("-o needs a file name%s", "");
      o.out = v;
    } else if ((v = opt_value(argc, argv, &i, "--print-after"))) {
      if (strcmp(v, "import") && (!*v || strchr(v, ',') || pass_check_list(v, err, sizeof err)))
        return usage_error("--print-after takes one pass name (import, canonicalize, shapes, "
                           "fold, cleanup, fp16, fuse), not '%s'", v);
      o.po.print_after = v;
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      o.opt_level = a[2] - '0';
    } else if ((v = opt_value(argc, argv, &i, "--stats"))) {
      if (!*v) return usage_error("--stats needs a file name%s", "");
      o.stats = v;
    } else if ((v = opt_value(argc, argv, &i, "--mcpu"))) {
      if (!*v) return usage_error("--mcpu needs a CPU name%s", "");
      o.mcpu = v;
    } else if ((v = opt_value(argc, argv, &i, "--weights"))) {
      if (!*v) return usage_error("--weights needs a file name%s", "");
      o.weights = v;
    } else if ((v = opt_value(argc, argv, &i, "--weights-key"))) {
      if (!*v) return usage_error("--weights-key needs a key%s", "");
      o.weights_key = v;
    } else if (!strcmp(a, "--no-strict")) {
      o.no_strict = true;
    } else if (!strcmp(a, "--print-after-all")) {
      o.po.print_after_all = true;
    } else if ((v = opt_value(argc, argv, &i, "--stop-after"))) {
      if (strcmp(v, "import") && (!*v || strchr(v, ',') || pass_check_list(v, err, sizeof err)))
        return usage_error("--stop-after takes one pass name (import, canonicalize, shapes, "
                           "fold, cleanup, fp16, fuse), not '%s'", v);
      o.po.stop_after = v;
    } else if ((v = opt_value(argc, argv, &i, "--precision"))) {
      if (!strcmp(v, "fp32")) o.po.precision = NN_DT_F32;
      else if (!strcmp(v, "fp16")) o.po.precision = NN_DT_F16;
      else if (!strcmp(v, "bf16")) o.po.precision = NN_DT_BF16;
      else return usage_error("--precision: expected fp32, fp16 or bf16, not '%s'", v);
    } else if ((v = opt_value(argc, argv, &i, "--passes"))) {
      if (!*v) return usage_error("--passes needs a list of passes, or none%s", "");
      if (pass_check_list(v, err, sizeof err)) return usage_error("--passes: %s", err);
      o.po.passes = v;
    } else if (!strcmp(a, "--print-loc")) {
      o.po.print_flags |= IR_PRINT_LOC | IR_PRINT_SCOPE;
    } else if (!strcmp(a, "--verify-each")) {
      o.po.verify_each = true;
    } else if (!strcmp(a, "-Werror")) {
      o.werror = true;
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown option '%s'", a);
    } else if (o.model) {
      return usage_error("more than one model given ('%s')", a);
    } else {
      o.model = a;
    }
  }
  if (!o.model) return usage_error("no model given%s", "");
  if ((o.weights_key || o.no_strict) && !o.weights)
    return usage_error("%s needs --weights FILE", o.weights_key ? "--weights-key" : "--no-strict");
  if (o.weights && ends_with(o.model, ".nnir"))
    return usage_error("--weights applies to a TorchScript model, not to textual IR%s", "");
  static const char *const kinds[] = {"ir", "so", "obj", "llvm", "kernels"};
  bool known = !o.emit;
  for (int k = 0; k < NN_ARRAY_LEN(kinds); k++) known |= o.emit && !strcmp(o.emit, kinds[k]);
  if (!known) return usage_error("unknown --emit kind '%s' (one of ir, so, obj, llvm, kernels)", o.emit);
  if (o.emit && strcmp(o.emit, "ir") && !pipeline_runs(&o, "shapes"))
    return usage_error("--emit=%s needs the shapes pass; --stop-after/--passes leave it out "
                       "(only --emit=ir can print such a graph)", o.emit);
  if (!o.emit && o.out && !pipeline_runs(&o, "shapes"))
    return usage_error("code generation needs the shapes pass; --stop-after/--passes leave it "
                       "out (only --emit=ir can print such a graph)%s", "");
  bool binary = !o.emit || !strcmp(o.emit, "so") || !strcmp(o.emit, "obj");
  if (!o.out && binary)
    return usage_error("no output file: pass -o OUT.so (or --emit=ir to print the IR)%s", "");
  if (o.out && !strcmp(o.out, "-") && (!o.emit || !strcmp(o.emit, "so")))
    return usage_error("a shared object can't be written to stdout%s", "");
  return compile(&o);
}

int main(int argc, char **argv) {
  nn_fatal_hook = internal_exit;
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "inspect")) return cmd_inspect(argc - 2, argv + 2);
  if (!strcmp(argv[1], "run")) return nncc_cmd_run(argc - 2, argv + 2);
  nn_arena *arena = nn_arena_new();
  int rc = cmd_compile(argc, argv, arena);
  nn_arena_free(arena);
  return rc;
}
