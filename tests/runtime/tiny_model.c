/* tiny_model.c — a hand-written stand-in for the generated code of a model,
 * used by tests/runtime.sh to exercise linking (backends/artifact.c), the
 * model runtime and the runtime library without the LLVM backend.
 *
 * It follows the generated code's contract (abi/abi.h): one input x
 * f32[64,256]; weights w f32[256] at offset 0 of the blob; a workspace of
 * 64 floats; outputs output_0 f32[64,256] = x[i,j] * w[j] + rowsum(x[i])
 * and row_sum f32[64] = rowsum(x[i]). Rows are split across the pool.
 */
#include <stdint.h>

void nncc_rt_parallel_for(void *pool, void (*fn)(void *const *, int64_t, int64_t),
                          void *const *slots, int64_t n);

enum { ROWS = 64, COLS = 256 };

/* slots: x, ws */
static void k_rowsum(void *const *slots, int64_t begin, int64_t end) {
  const float *x = slots[0];
  float *ws = slots[1];
  for (int64_t i = begin; i < end; i++) {
    float s = 0;
    for (int64_t j = 0; j < COLS; j++) s += x[i * COLS + j];
    ws[i] = s;
  }
}

/* slots: x, w, ws, out */
static void k_scale(void *const *slots, int64_t begin, int64_t end) {
  const float *x = slots[0], *w = slots[1], *ws = slots[2];
  float *out = slots[3];
  for (int64_t i = begin; i < end; i++)
    for (int64_t j = 0; j < COLS; j++) out[i * COLS + j] = x[i * COLS + j] * w[j] + ws[i];
}

/* slots: ws, out */
static void k_copy(void *const *slots, int64_t begin, int64_t end) {
  const float *ws = slots[0];
  float *out = slots[1];
  (void)begin;
  (void)end;
  for (int64_t i = 0; i < ROWS; i++) out[i] = ws[i];
}

int nncc_graph_run(void *const *inputs, void *const *outputs, unsigned char *workspace,
                   const unsigned char *weights, void *pool, const int64_t *dims,
                   const int64_t *offsets, int64_t *status) {
  (void)dims;
  (void)offsets;
  (void)status;
  if (((uintptr_t)workspace & 63) || ((uintptr_t)weights & 63)) return 5;
  void *s0[] = {inputs[0], workspace};
  nncc_rt_parallel_for(pool, k_rowsum, s0, ROWS);
  void *s1[] = {inputs[0], (void *)weights, workspace, outputs[0]};
  nncc_rt_parallel_for(pool, k_scale, s1, ROWS);
  void *s2[] = {workspace, outputs[1]};
  k_copy(s2, 0, 1);
  return 0;
}
