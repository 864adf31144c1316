/* inspect_so.c — `nncc inspect OUT.so [--json]`: what a compiled model is,
 * read through the runtime API (the same path an application takes): its
 * inputs and outputs, the compiler that made it, target, CPU and required
 * features (for a CUDA model the GPU archs it carries code for), the
 * precision it computes in, its distinct kernels and program steps,
 * workspace (arena) and weights bytes. Symbolic dims print as their names
 * or expressions ("f32[b,3,h,w]"), and the symbols with their ranges.
 *
 * The step count is the one fact nncc.h does not offer (applications see
 * it only through a profiling session, which a model this machine can't
 * run has none of); it is read from the descriptor (runtime/rt.h).
 *
 * --json prints the same facts as one JSON object; the key names follow
 * `nncc inspect MODEL.pt --json` ("format", "input_shapes") and --stats
 * ("arena_bytes", "weights_bytes", "kernels") where they meet.
 */
#include "nncc.h"
#include "nncc_run.h"
#include "inspect_pt.h"
#include "runtime/rt.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The CUDA archs of a model: its cpu field reads "cuda sm_80,sm_90"
 * (backends/cuda/cuda_artifact.c); "" for any other model. */
static const char *cuda_archs(const nncc_model *m) {
  const char *cpu = nncc_model_cpu(m);
  if (strcmp(nncc_model_target(m), "cuda") || strncmp(cpu, "cuda ", 5)) return "";
  return cpu + 5;
}

/* Calls item(ctx, s, n) for every non-empty item of a comma-separated list
 * s; with plus_only, only for the items that start with '+', without it. */
static void each_item(const char *s, bool plus_only, void (*item)(void *, const char *, int),
                      void *ctx) {
  while (*s) {
    const char *e = strchr(s, ',');
    int n = e ? (int)(e - s) : (int)strlen(s);
    if (plus_only && n > 1 && *s == '+')
      item(ctx, s + 1, n - 1);
    else if (!plus_only && n > 0)
      item(ctx, s, n);
    s += n + (e != NULL);
  }
}

/* A dim as text: the number, or its symbol or expression. */
static void dim_text(const nncc_model *m, int outputs, int32_t i, const nncc_io_info *io, int32_t k,
                     char *buf, size_t cap) {
  nncc_dim_info d;
  if (io->dims[k] < 0 && nncc_model_dim(m, outputs, i, k, &d) == NNCC_OK && d.text)
    snprintf(buf, cap, "%s", d.text);
  else
    snprintf(buf, cap, "%lld", (long long)io->dims[k]);
}

/* ---- text ------------------------------------------------------------------ */

static void print_io(const nncc_model *m, int outputs, int32_t i, const nncc_io_info *io) {
  printf("  %s %d: %s: %s[", outputs ? "output" : "input", i, io->name, nncc_dtype_name(io->dtype));
  for (int32_t k = 0; k < io->rank; k++) {
    char t[256];
    dim_text(m, outputs, i, io, k, t, sizeof t);
    printf("%s%s", k ? "," : "", t);
  }
  printf("]\n");
}

static void print_word(void *ctx, const char *s, int n) {
  (void)ctx;
  printf(" %.*s", n, s);
}

static void print_text(const char *path, const nncc_model *m, int32_t nsteps) {
  printf("model: %s\n", path);
  printf("name: %s\n", nncc_model_name(m));
  printf("compiler: %s\n", nncc_model_compiler(m));
  if (*cuda_archs(m))
    printf("target: cuda, archs %s\n", cuda_archs(m));
  else
    printf("target: %s, cpu %s\n", nncc_model_target(m), nncc_model_cpu(m));
  if (nncc_model_unusable(m)) printf("runs here: no (%s)\n", nncc_model_unusable(m));
  /* The features the code may use (LLVM also lists the ones it must not). */
  if (!*cuda_archs(m)) {
    printf("features:");
    each_item(nncc_model_features(m), true, print_word, NULL);
    printf("\n");
  }
  /* Models built before these were recorded leave them empty. */
  const char *prec = nncc_model_precision(m);
  printf("precision: %s\n", *prec ? prec : "(not recorded)");
  if (nncc_model_num_kernels(m) > 0 || nsteps == 0)
    printf("kernels: %d\n", nncc_model_num_kernels(m));
  else
    printf("kernels: (not recorded)\n");
  printf("steps: %d\n", nsteps);
  printf("run-time checks: %d\n", nncc_model_num_checks(m));
  if (nncc_model_num_symbols(m) > 0)
    printf("workspace (arena): planned per input shape\n");
  else
    printf("workspace (arena): %llu bytes per session\n",
           (unsigned long long)nncc_model_workspace_bytes(m));
  printf("weights: %llu bytes\n", (unsigned long long)nncc_model_weights_bytes(m));
  printf("inputs:\n");
  for (int32_t i = 0; i < nncc_model_num_inputs(m); i++) {
    nncc_io_info io;
    if (nncc_model_input(m, i, &io) == NNCC_OK) print_io(m, 0, i, &io);
  }
  printf("outputs:\n");
  for (int32_t i = 0; i < nncc_model_num_outputs(m); i++) {
    nncc_io_info io;
    if (nncc_model_output(m, i, &io) == NNCC_OK) print_io(m, 1, i, &io);
  }
  if (nncc_model_num_symbols(m) > 0) {
    printf("symbols:\n");
    for (int32_t s = 0; s < nncc_model_num_symbols(m); s++) {
      nncc_symbol_info sy;
      if (nncc_model_symbol(m, s, &sy) != NNCC_OK) continue;
      if (sy.max == INT64_MAX)
        printf("  %s: %lld..\n", sy.name, (long long)sy.min);
      else
        printf("  %s: %lld..%lld\n", sy.name, (long long)sy.min, (long long)sy.max);
    }
  }
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_str(const char *s) { inspect_json_strn(s, -1); }

/* A list item: ", " before every item but the first (*ctx counts them). */
static void json_item(void *ctx, const char *s, int n) {
  int *count = ctx;
  printf("%s", (*count)++ ? ", " : "");
  inspect_json_strn(s, n);
}

static void json_ios(const nncc_model *m, int outputs) {
  int32_t n = outputs ? nncc_model_num_outputs(m) : nncc_model_num_inputs(m);
  printf("  \"%s\": [", outputs ? "outputs" : "inputs");
  for (int32_t i = 0; i < n; i++) {
    nncc_io_info io;
    if ((outputs ? nncc_model_output(m, i, &io) : nncc_model_input(m, i, &io)) != NNCC_OK) continue;
    printf("%s\n    {\"name\": ", i ? "," : "");
    json_str(io.name);
    printf(", \"dtype\": \"%s\", \"dims\": [", nncc_dtype_name(io.dtype));
    for (int32_t k = 0; k < io.rank; k++) {
      char t[256];
      dim_text(m, outputs, i, &io, k, t, sizeof t);
      printf("%s", k ? ", " : "");
      if (io.dims[k] < 0)
        json_str(t);
      else
        printf("%s", t);
    }
    printf("]}");
  }
  printf("%s],\n", n ? "\n  " : "");
}

static void print_json(const char *path, const nncc_model *m, int32_t nsteps) {
  printf("{\n  \"model\": ");
  json_str(path);
  printf(",\n  \"format\": \"model.so\",\n  \"name\": ");
  json_str(nncc_model_name(m));
  printf(",\n  \"compiler\": ");
  json_str(nncc_model_compiler(m));
  printf(",\n  \"target\": ");
  json_str(nncc_model_target(m));
  printf(",\n  \"cpu\": ");
  json_str(nncc_model_cpu(m));
  printf(",\n  \"archs\": [");
  int count = 0;
  each_item(cuda_archs(m), false, json_item, &count);
  printf("],\n  \"features\": [");
  count = 0;
  each_item(nncc_model_features(m), true, json_item, &count);
  printf("],\n  \"runs_here\": %s,\n  \"unusable\": ", nncc_model_unusable(m) ? "false" : "true");
  if (nncc_model_unusable(m))
    json_str(nncc_model_unusable(m));
  else
    printf("null");
  /* null: not recorded (a model compiled before they were) */
  printf(",\n  \"precision\": ");
  if (*nncc_model_precision(m))
    json_str(nncc_model_precision(m));
  else
    printf("null");
  if (nncc_model_num_kernels(m) > 0 || nsteps == 0)
    printf(",\n  \"kernels\": %d", nncc_model_num_kernels(m));
  else
    printf(",\n  \"kernels\": null");
  printf(",\n  \"steps\": %d,\n  \"runtime_checks\": %d,\n  \"arena_bytes\": ", nsteps,
         nncc_model_num_checks(m));
  if (nncc_model_num_symbols(m) > 0)
    printf("null");
  else
    printf("%llu", (unsigned long long)nncc_model_workspace_bytes(m));
  printf(",\n  \"weights_bytes\": %llu,\n  \"input_shapes\": [",
         (unsigned long long)nncc_model_weights_bytes(m));
  for (int32_t i = 0; i < nncc_model_num_inputs(m); i++) {
    nncc_io_info io;
    if (nncc_model_input(m, i, &io) != NNCC_OK) continue;
    char spec[4096];
    size_t len = (size_t)snprintf(spec, sizeof spec, "%s:%s[", io.name, nncc_dtype_name(io.dtype));
    for (int32_t k = 0; k < io.rank && len < sizeof spec; k++) {
      char t[256];
      dim_text(m, 0, i, &io, k, t, sizeof t);
      len += (size_t)snprintf(spec + len, sizeof spec - len, "%s%s", k ? "," : "", t);
    }
    if (len < sizeof spec) snprintf(spec + len, sizeof spec - len, "]");
    printf("%s", i ? ", " : "");
    json_str(spec);
  }
  printf("],\n");
  json_ios(m, 0);
  json_ios(m, 1);
  printf("  \"symbols\": [");
  for (int32_t s = 0; s < nncc_model_num_symbols(m); s++) {
    nncc_symbol_info sy;
    if (nncc_model_symbol(m, s, &sy) != NNCC_OK) continue;
    printf("%s\n    {\"name\": ", s ? "," : "");
    json_str(sy.name);
    printf(", \"min\": %lld, \"max\": ", (long long)sy.min);
    if (sy.max == INT64_MAX)
      printf("null}");
    else
      printf("%lld}", (long long)sy.max);
  }
  printf("%s]\n}\n", nncc_model_num_symbols(m) > 0 ? "\n  " : "");
}

/* ---- the command ----------------------------------------------------------- */

int nncc_inspect_so_ex(const char *path, bool json) {
  nncc_model *m = NULL;
  char *err = NULL;
  if (nncc_model_describe(path, &m, &err) != NNCC_OK) {
    fprintf(stderr, "nncc: error: %s\n", err ? err : path);
    nncc_free_message(err);
    return 1;
  }
  int32_t nsteps = m->d->nsteps;
  if (json)
    print_json(path, m, nsteps);
  else
    print_text(path, m, nsteps);
  nncc_model_close(m);
  return 0;
}

int nncc_inspect_so(const char *path) { return nncc_inspect_so_ex(path, false); }
