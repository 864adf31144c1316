/* nncc.c — the command-line driver.
 *
 *   nncc MODEL.pt --emit=ir [--input NAME:DTYPE[DIMS]]... [pipeline flags]
 *   nncc FILE.nnir --emit=ir [--passes=LIST]       (textual IR in, for tests)
 *   nncc inspect MODEL.pt [--input SPEC]... [--json] [--dot FILE] | OUT.so
 *                                              (tools/inspect_pt.c)
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
#include "lower/lower.h"
#include "backends/backend.h"
#include "nncc_run.h"
#include "progress.h"
#include "cuda_probe.h"
#include "inspect_pt.h"

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
  double t0;            /* when the current phase started (ms) */
  const char *phase[8]; /* phase names, in order */
  double ms[8];         /* their durations */
  int nphases;
  int ops_in, ops_out; /* non-meta ops after import / after the passes */
  int kernels;         /* scheduled kernels */
  uint64_t arena_bytes, arena_lower_bound_bytes, naive_bytes, weights_bytes;
  bool scheduled; /* the backend ran (the memory numbers are real) */
  prog *pg;       /* the progress line and -ftime-report */
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
  if (st->pg) prog_phase_end(st->pg, name, t - st->t0);
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
  fputs("usage: nncc MODEL.pt -o OUT.so [options]   compile a traced TorchScript model\n"
        "       nncc run OUT.so [NAME=FILE.npy | FILE.npy]... [--out-dir DIR]\n"
        "                [--threads N] [--bench N] [--profile]\n"
        "                                       run a compiled model on .npy inputs\n"
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
        "  --no-runtime-checks        don't check index values at run time (by default a\n"
        "                             run fails where PyTorch raises: an index out of\n"
        "                             range in embedding, gather, index, scatter, ...)\n"
        "  --target=T                 cpu (default) or cuda (kernels for NVIDIA GPUs,\n"
        "                             compiled with NVRTC; --emit=cuda prints them)\n"
        "  --cuda-arch=LIST           GPU archs for --target cuda (default sm_80,sm_90):\n"
        "                             a cubin each, plus PTX for the newest\n"
        "  --stats FILE.json          write compile statistics: time per phase, ops in and\n"
        "                             out, kernels, arena bytes and its lower bound\n"
        "  -ftime-report              print each phase's time and memory at the end (on a\n"
        "                             terminal, a progress line shows the running phase)\n"
        "  --print-after=PASS         print the IR after PASS (import, canonicalize,\n"
        "                             shapes, fold, cleanup, fp16, fuse)\n"
        "  --print-after-all          print the IR after every pass\n"
        "  --stop-after=PASS          stop the pipeline after PASS\n"
        "  --passes=LIST              run these passes instead of the default\n"
        "                             pipeline (comma-separated, or none)\n"
        "  --print-loc                show source locations and module scopes in IR dumps\n"
        "  --verify-each              run the IR verifier after every pass\n"
        "  -Werror                    treat warnings as errors\n"
        "  -Wall                      also print remarks on harmless rewrites\n"
        "  --list-aten                list the supported TorchScript ops and the IR op\n"
        "                             each becomes\n"
        "  --list-ops                 list the IR ops\n"
        "  --version                  print the versions of nncc and LLVM, and whether\n"
        "                             NVRTC (for --target cuda) was found\n"
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
  const char *model; /* input file */
  const char *out;   /* -o */
  const char *emit;  /* --emit */
  NN_VEC(pass_input_spec) inputs;
  pass_opts po;
  bool print_loc;
  bool werror;
  bool wall;                      /* -Wall: show remarks */
  int opt_level;                  /* -O0..-O3 */
  const char *mcpu;               /* --mcpu */
  const char *weights;            /* --weights: a torch.save file, or NULL */
  const char *weights_key;        /* --weights-key */
  bool no_strict;                 /* --no-strict */
  const char *stats;              /* --stats FILE.json */
  bool time_report;               /* -ftime-report */
  bool target_cuda;               /* --target cuda */
  int cuda_archs[CUDA_MAX_ARCHS]; /* --cuda-arch, ascending */
  int ncuda_archs;
  const char *cuda_emu_lib; /* --cuda-emu-lib (for --emit=cuda-emucheck) */
  bool no_runtime_checks;   /* --no-runtime-checks */
} options;

/* Matches "--name=value" or "--name value"; advances *i for the latter. */
static const char *opt_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n)) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] == 0) {
    if (*i + 1 >= argc || !argv[*i + 1]) return "";
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

/* One line per IR op: name, fusion class ("composite" for the ops expanded
 * into others before lowering), what it computes. */
static int list_ops(void) {
  for (int i = 0; i < NN_OP_COUNT; i++) {
    const char *cls = !strcmp(ir_ops[i].shape, "composite") ? "composite"
                                                            : ir_fusion_name(ir_ops[i].fusion);
    printf("%-24s %-12s %s\n", ir_ops[i].name, cls, ir_ops[i].doc);
  }
  return EXIT_OK;
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
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
    for (int i = 0; i < g->inputs.len; i++)
      known |= !strcmp(o->inputs.data[k].name, g->input_names.data[i]);
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

/* --precision as the model's metadata records it ("f32", "f16", "bf16"). */
static const char *precision_name(nn_dtype p) {
  return p == NN_DT_F16 || p == NN_DT_BF16 ? nn_dtype_name(p) : "f32";
}

/* --target cuda (and --emit=cuda / cuda-emucheck): CUDA C from the
 * scheduled program; printed, checked in emulation against the reference
 * interpreter (tests), or compiled with NVRTC and linked into OUT.so. */
static int emit_cuda(const options *o, kp_program *p, const char *kind, nn_arena *arena, nn_diag *d,
                     stats *st) {
  cuda_module m;
  if (cuda_emit(p, &m, d)) return EXIT_MODEL;
  phase_end(st, "codegen");
  if (!strcmp(kind, "cuda")) return write_output(o, m.src, m.src_len, d) ? EXIT_MODEL : EXIT_OK;
  if (!strcmp(kind, "cuda-emucheck")) {
    if (!o->cuda_emu_lib) {
      nn_error(d, (nn_loc){0}, "--emit=cuda-emucheck needs --cuda-emu-lib FILE.so");
      return EXIT_MODEL;
    }
    double tol = o->po.precision == NN_DT_F32 ? 1e-4 : 5e-3;
    return cuda_emucheck(p, &m, o->cuda_emu_lib, tol, 1, stdout, d) ? EXIT_MODEL : EXIT_OK;
  }
  if (strcmp(kind, "so") && strcmp(kind, "cuda-images")) {
    nn_error(d, (nn_loc){0},
             "--target cuda writes a model.so, CUDA C (--emit=cuda) or the "
             "NVRTC images (--emit=cuda-images -o DIR)");
    return EXIT_MODEL;
  }
  static const int dflt[] = {80, 90};
  const int *archs = o->ncuda_archs ? o->cuda_archs : dflt;
  int narchs = o->ncuda_archs ? o->ncuda_archs : 2;
  cuda_images im;
  const char *save = nn_sprintf(arena, "%s.cu", o->out);
  if (cuda_nvrtc_compile(m.src, archs, narchs, save, &im, d)) return EXIT_MODEL;
  phase_end(st, "nvrtc");
  if (!strcmp(kind, "cuda-images")) { /* DIR/sm_XX.cubin per arch, DIR/compute_XX.ptx */
    int w = 0;
    for (int i = 0; i <= im.narchs && !w; i++) {
      bool ptx = i == im.narchs;
      const char *path = nn_sprintf(arena, "%s/%s_%d.%s", o->out, ptx ? "compute" : "sm",
                                    im.archs[ptx ? i - 1 : i], ptx ? "ptx" : "cubin");
      FILE *f = fopen(path, "wb");
      size_t n = ptx ? im.ptx_size - 1 : im.cubin_size[i];
      if (!f || fwrite(ptx ? (const void *)im.ptx : im.cubin[i], 1, n, f) != n) w = -1;
      if (f && fclose(f)) w = -1;
      if (w) nn_error(d, (nn_loc){0}, "can't write '%s' (does the directory exist?)", path);
    }
    cuda_images_free(&im);
    return w ? EXIT_MODEL : EXIT_OK;
  }
  artifact_opts ao = {.out = o->out,
                      .cc = getenv("CC"),
                      .model_name = model_name(o->model, arena),
                      .precision = precision_name(o->po.precision)};
  int w = cuda_artifact_link(p, &m, &im, &ao, d);
  phase_end(st, "link");
  cuda_images_free(&im);
  return w ? EXIT_MODEL : EXIT_OK;
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
  bool cuda = o->target_cuda || !strcmp(kind, "cuda") || !strcmp(kind, "cuda-emucheck");
  llvm_opts lo = {.opt_level = o->opt_level,
                  .mcpu = o->mcpu,
                  .progress = prog_llvm,
                  .progress_ctx = st->pg};
  kl_opts ko = {.no_checks = o->no_runtime_checks};
  kp_program *p = kl_schedule_ex(g, arena, cuda ? tg_cuda() : llvm_target(&lo), &ko, d);
  if (!p) return EXIT_MODEL;
  phase_end(st, "schedule");
  st->scheduled = true;
  st->kernels = p->steps.len;
  st->arena_bytes = p->workspace_bytes;
  st->arena_lower_bound_bytes = p->arena_lower_bound_bytes;
  st->naive_bytes = p->naive_bytes;
  st->weights_bytes = (uint64_t)p->weights.len;
  if (!strcmp(kind, "kernels")) {
    kp_print(&b, p);
    w = write_output(o, b.data ? b.data : "", b.len, d);
    nn_buf_free(&b);
    return w ? EXIT_MODEL : EXIT_OK;
  }
  if (cuda) return emit_cuda(o, p, kind, arena, d, st);
  llvm_result r = {0};
  if (llvm_compile(p, &lo, !strcmp(kind, "llvm"), &r, d)) return EXIT_MODEL;
  phase_end(st, "codegen");
  if (!strcmp(kind, "llvm")) {
    w = write_output(o, r.ir_text ? r.ir_text : "", r.ir_text ? strlen(r.ir_text) : 0, d);
  } else if (!strcmp(kind, "obj")) {
    w = write_output(o, r.obj, r.obj_size, d);
  } else {
    artifact_opts ao = {.out = o->out,
                        .cc = getenv("CC"),
                        .model_name = model_name(o->model, arena),
                        .precision = precision_name(o->po.precision)};
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
             "and returns f32 outputs",
             nweights);
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
  fprintf(f, "  \"ops_in\": %d,\n  \"ops_out\": %d,\n  \"kernels\": %d,\n", st->ops_in, st->ops_out,
          st->kernels);
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
  d.wall = o->wall;
  int rc = EXIT_MODEL;
  fe_model *m = NULL;
  ir_graph *g;
  stats st = {.t0 = now_ms()};
  /* the progress line only when nothing else is printed on the way */
  bool quiet_run = o->out && strcmp(o->out, "-") && !o->po.print_after && !o->po.print_after_all;
  prog pg;
  prog_start(&pg, o->model, arena, quiet_run && prog_live(), o->time_report);
  st.pg = &pg;
  d.out = prog_diag_stream(&pg);

  if (ends_with(o->model, ".nnir")) {
    g = load_ir_text(o->model, arena, &d);
  } else {
    m = fe_import(o->model, arena, &d);
    if (!m) goto done;
    d.source = fe_model_source_line;
    d.source_ctx = m;
    if (o->weights && fe_weights_load(m, o->weights, o->weights_key, !o->no_strict, arena, &d))
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
  prog_finish(&pg, stderr);
  if (m) fe_model_close(m);
  nn_arena_free(arena);
  return rc;
}

/* --version: nncc's version, the LLVM it was built with, and whether
 * NVRTC (loaded with dlopen by --target cuda) is on this machine. */
static int print_version(void) {
  printf("nncc %s\nLLVM %s\n", NNCC_VERSION, NNCC_LLVM_VERSION);
  cuda_probe cp;
  if (cuda_probe_nvrtc(&cp))
    printf("NVRTC: found (%s, version %d.%d)\n", cp.path, cp.major, cp.minor);
  else
    printf("NVRTC: not found (looked in %s)\n", cp.looked);
  return EXIT_OK;
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
    if (!strcmp(a, "--version")) return print_version();
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
                           "fold, cleanup, fp16, fuse), not '%s'",
                           v);
      o.po.print_after = v;
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      o.opt_level = a[2] - '0';
    } else if (!strcmp(a, "-ftime-report")) {
      o.time_report = true;
    } else if ((v = opt_value(argc, argv, &i, "--stats"))) {
      if (!*v) return usage_error("--stats needs a file name%s", "");
      o.stats = v;
    } else if ((v = opt_value(argc, argv, &i, "--target"))) {
      if (!strcmp(v, "cuda"))
        o.target_cuda = true;
      else if (!strcmp(v, "cpu"))
        o.target_cuda = false;
      else
        return usage_error("--target: expected cpu or cuda, not '%s'", v);
    } else if ((v = opt_value(argc, argv, &i, "--cuda-arch"))) {
      char err[256];
      o.ncuda_archs = cuda_parse_archs(v, o.cuda_archs, CUDA_MAX_ARCHS, err, sizeof err);
      if (o.ncuda_archs < 0) return usage_error("%s", err);
    } else if ((v = opt_value(argc, argv, &i, "--cuda-emu-lib"))) {
      o.cuda_emu_lib = v;
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
    } else if (!strcmp(a, "--no-runtime-checks")) {
      o.no_runtime_checks = true;
    } else if (!strcmp(a, "--print-after-all")) {
      o.po.print_after_all = true;
    } else if ((v = opt_value(argc, argv, &i, "--stop-after"))) {
      if (strcmp(v, "import") && (!*v || strchr(v, ',') || pass_check_list(v, err, sizeof err)))
        return usage_error("--stop-after takes one pass name (import, canonicalize, shapes, "
                           "fold, cleanup, fp16, fuse), not '%s'",
                           v);
      o.po.stop_after = v;
    } else if ((v = opt_value(argc, argv, &i, "--precision"))) {
      if (!strcmp(v, "fp32"))
        o.po.precision = NN_DT_F32;
      else if (!strcmp(v, "fp16"))
        o.po.precision = NN_DT_F16;
      else if (!strcmp(v, "bf16"))
        o.po.precision = NN_DT_BF16;
      else
        return usage_error("--precision: expected fp32, fp16 or bf16, not '%s'", v);
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
    } else if (!strcmp(a, "-Wall")) {
      o.wall = true;
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
  static const char *const kinds[] = {"ir",      "so",   "obj",           "llvm",
                                      "kernels", "cuda", "cuda-emucheck", "cuda-images"};
  bool known = !o.emit;
  for (int k = 0; k < NN_ARRAY_LEN(kinds); k++) known |= o.emit && !strcmp(o.emit, kinds[k]);
  if (!known)
    return usage_error("unknown --emit kind '%s' (one of ir, so, obj, llvm, kernels)", o.emit);
  if (o.emit && strcmp(o.emit, "ir") && !pipeline_runs(&o, "shapes"))
    return usage_error("--emit=%s needs the shapes pass; --stop-after/--passes leave it out "
                       "(only --emit=ir can print such a graph)",
                       o.emit);
  if (!o.emit && o.out && !pipeline_runs(&o, "shapes"))
    return usage_error("code generation needs the shapes pass; --stop-after/--passes leave it "
                       "out (only --emit=ir can print such a graph)%s",
                       "");
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
  if (!strcmp(argv[1], "inspect")) return nncc_cmd_inspect(argc - 2, argv + 2);
  if (!strcmp(argv[1], "run")) return nncc_cmd_run(argc - 2, argv + 2);
  nn_arena *arena = nn_arena_new();
  int rc = cmd_compile(argc, argv, arena);
  nn_arena_free(arena);
  return rc;
}
