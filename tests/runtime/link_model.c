/* link_model.c — links a model.so from a hand-made object (tests/runtime.sh).
 *
 *   nncc_test_link_model OUT.so OBJ.o [FEATURES [CPU]]
 *
 * Builds the kp_program that tests/runtime/tiny_model.c implements (input
 * x f32[64,256], weights w f32[256], outputs output_0 f32[64,256] and
 * row_sum f32[64]) and calls artifact_link with OBJ.o's bytes as the
 * generated object. $CC picks the linker driver. Exit 0 or 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "lower/lower.h"

static const int64_t x_dims[] = {64, 256}, sum_dims[] = {64};

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OUT.so OBJ.o [FEATURES [CPU]]\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[2], "rb");
  if (!f) {
    perror(argv[2]);
    return 1;
  }
  static unsigned char obj[1 << 20];
  size_t n = fread(obj, 1, sizeof obj, f);
  fclose(f);

  nn_arena *a = nn_arena_new();
  kp_program *p = nn_alloc(a, sizeof *p);
  p->arena = a;
  kp_io x = {"x", NN_DT_F32, 2, x_dims, NULL};
  kp_io y = {"output_0", NN_DT_F32, 2, x_dims, NULL};
  kp_io s = {"row_sum", NN_DT_F32, 1, sum_dims, NULL};
  NN_PUSH(a, p->inputs, x);
  NN_PUSH(a, p->outputs, y);
  NN_PUSH(a, p->outputs, s);
  p->workspace_bytes = 64 * sizeof(float);
  for (int j = 0; j < 256; j++) {
    float w = (float)(j % 7 - 3) * 0.25f;
    unsigned char b[4];
    memcpy(b, &w, 4);
    for (int k = 0; k < 4; k++) NN_PUSH(a, p->weights, b[k]);
  }
  llvm_result r = {obj, n, NULL, argc > 4 ? argv[4] : "x86-64", argc > 3 ? argv[3] : "+sse2"};
  const char *cc = getenv("CC");
  artifact_opts o = {argv[1], cc && *cc ? cc : "cc", "tiny", NULL, NULL};
  nn_diag d;
  nn_diag_init(&d, stderr);
  int rc = artifact_link(p, &r, &o, &d);
  nn_arena_free(a);
  return rc ? 1 : 0;
}
