/* inspect_so.c — `nncc inspect OUT.so`: what a compiled model is, read
 * through the public runtime API (the same path an application takes):
 * its inputs and outputs, the compiler that made it, target, CPU and
 * required features, workspace (arena) and weights bytes. Symbolic dims
 * print as their names or expressions ("f32[b,3,h,w]"), and the symbols
 * with their ranges.
 */
#include "nncc.h"
#include "nncc_run.h"

#include <stdio.h>
#include <string.h>

static void print_io(const nncc_model *m, int outputs, int32_t i, const nncc_io_info *io) {
  printf("  %s %d: %s: %s[", outputs ? "output" : "input", i, io->name,
         nncc_dtype_name(io->dtype));
  for (int32_t k = 0; k < io->rank; k++) {
    nncc_dim_info d;
    if (io->dims[k] < 0 && nncc_model_dim(m, outputs, i, k, &d) == NNCC_OK && d.text)
      printf("%s%s", k ? "," : "", d.text);
    else
      printf("%s%lld", k ? "," : "", (long long)io->dims[k]);
  }
  printf("]\n");
}

int nncc_inspect_so(const char *path) {
  nncc_model *m = NULL;
  char *err = NULL;
  if (nncc_model_describe(path, &m, &err) != NNCC_OK) {
    fprintf(stderr, "nncc: error: %s\n", err ? err : path);
    nncc_free_message(err);
    return 1;
  }
  printf("model: %s\n", path);
  printf("name: %s\n", nncc_model_name(m));
  printf("compiler: %s\n", nncc_model_compiler(m));
  printf("target: %s, cpu %s\n", nncc_model_target(m), nncc_model_cpu(m));
  if (nncc_model_unusable(m)) printf("runs here: no (%s)\n", nncc_model_unusable(m));
  /* The features the code may use (LLVM also lists the ones it must not). */
  printf("features:");
  for (const char *f = nncc_model_features(m); *f;) {
    const char *e = strchr(f, ',');
    int n = e ? (int)(e - f) : (int)strlen(f);
    if (*f == '+') printf(" %.*s", n - 1, f + 1);
    f += n + (e != NULL);
  }
  printf("\n");
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
      if (sy.max == INT64_MAX) printf("  %s: %lld..\n", sy.name, (long long)sy.min);
      else printf("  %s: %lld..%lld\n", sy.name, (long long)sy.min, (long long)sy.max);
    }
  }
  nncc_model_close(m);
  return 0;
}
