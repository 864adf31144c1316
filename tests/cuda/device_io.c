/* device_io.c — device-memory tensors (NNCC_TENSOR_DEVICE) through
 * nncc_session_run; run by tests/cuda.sh.
 *
 *   device_io refuse CPU_MODEL.so
 *     A CPU model refuses a device input and a device output, and a tensor
 *     with unknown flag bits, with NNCC_ERR_INVALID_ARG and the documented
 *     messages; the same run with host memory still succeeds afterwards.
 *   device_io gpu CUDA_MODEL.so
 *     Runs the model (static shapes) on deterministic inputs twice: with
 *     host tensors, and with every input and output in device memory
 *     (cuMemAlloc through the driver, the device's primary context, as the
 *     model's runtime uses); the outputs must be bit-identical. Exits 77
 *     when the driver or a GPU is missing.
 * Prints one line per check; exit 0 when all pass, 1 otherwise.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncc.h"

static int fails;

static void check(int ok, const char *what, const char *detail) {
  printf("%s %s%s%s\n", ok ? "ok" : "FAIL", what, detail ? ": " : "", detail ? detail : "");
  fails += !ok;
}

/* Tensors for every input and output of m, with host buffers filled with a
 * fixed pattern (inputs) or zeros (outputs). */
typedef struct io_set {
  int n; /* tensors */
  nncc_tensor t[16];
  size_t bytes[16];
} io_set;

static int make_io(const nncc_model *m, int outputs, io_set *s) {
  s->n = outputs ? nncc_model_num_outputs(m) : nncc_model_num_inputs(m);
  if (s->n > 16) return -1;
  for (int i = 0; i < s->n; i++) {
    nncc_io_info info;
    if ((outputs ? nncc_model_output(m, i, &info) : nncc_model_input(m, i, &info)) != NNCC_OK)
      return -1;
    nncc_tensor *t = &s->t[i];
    memset(t, 0, sizeof *t);
    t->dtype = info.dtype;
    t->rank = info.rank;
    t->dims = info.dims;
    int64_t n = nncc_tensor_elems(t);
    if (n < 0) return -1; /* a symbolic dim: not for this test */
    size_t es = nncc_dtype_size(info.dtype);
    s->bytes[i] = (size_t)n * es;
    unsigned char *p = calloc(s->bytes[i] + 16, 1);
    if (!p) return -1;
    for (size_t k = 0; !outputs && k < (size_t)n; k++) {
      float v = (float)((k * 37 + (size_t)i * 11) % 19) / 19.0f - 0.5f;
      if (info.dtype == NNCC_DTYPE_F32)
        memcpy(p + k * 4, &v, 4);
      else if (info.dtype == NNCC_DTYPE_I64) {
        int64_t x = (int64_t)(k % 7);
        memcpy(p + k * 8, &x, 8);
      } else
        p[k * es] = (unsigned char)(k % 3);
    }
    t->data = p;
  }
  return 0;
}

static void free_io(io_set *s) {
  for (int i = 0; i < s->n; i++) free(s->t[i].data);
}

static int refuse(const char *path) {
  nncc_model *m;
  nncc_session *s;
  char *err = NULL;
  io_set in, out;
  if (nncc_model_open(path, &m, &err) != NNCC_OK || nncc_session_create(m, 1, &s, &err)) {
    printf("FAIL open %s: %s\n", path, err ? err : "?");
    return 1;
  }
  if (make_io(m, 0, &in) || make_io(m, 1, &out) || in.n < 1 || out.n < 1) {
    printf("FAIL %s: needs a static model with inputs and outputs\n", path);
    return 1;
  }
  char want[512];
  nncc_io_info i0, o0;
  nncc_model_input(m, 0, &i0);
  nncc_model_output(m, 0, &o0);
  in.t[0].flags = NNCC_TENSOR_DEVICE;
  nncc_status st = nncc_session_run(s, in.t, (size_t)in.n, out.t, (size_t)out.n, &err);
  snprintf(want, sizeof want,
           "input 0 ('%s'): device memory (NNCC_TENSOR_DEVICE) needs a model "
           "compiled with --target cuda; this model's target is 'cpu' (pass host memory)",
           i0.name);
  check(st == NNCC_ERR_INVALID_ARG && err && !strcmp(err, want), "device input refused", err);
  free(err);
  in.t[0].flags = NNCC_TENSOR_HOST;
  out.t[0].flags = NNCC_TENSOR_DEVICE;
  st = nncc_session_run(s, in.t, (size_t)in.n, out.t, (size_t)out.n, &err);
  snprintf(want, sizeof want,
           "output 0 ('%s'): device memory (NNCC_TENSOR_DEVICE) needs a model "
           "compiled with --target cuda; this model's target is 'cpu' (pass host memory)",
           o0.name);
  check(st == NNCC_ERR_INVALID_ARG && err && !strcmp(err, want), "device output refused", err);
  free(err);
  out.t[0].flags = NNCC_TENSOR_HOST;
  in.t[0].flags = 0x6;
  st = nncc_session_run(s, in.t, (size_t)in.n, out.t, (size_t)out.n, &err);
  snprintf(want, sizeof want,
           "input 0 ('%s'): flags 0x6 has unknown bits 0x6 (known: "
           "NNCC_TENSOR_DEVICE = 0x1)",
           i0.name);
  check(st == NNCC_ERR_INVALID_ARG && err && !strcmp(err, want), "unknown flag bits refused", err);
  free(err);
  in.t[0].flags = NNCC_TENSOR_HOST;
  st = nncc_session_run(s, in.t, (size_t)in.n, out.t, (size_t)out.n, &err);
  check(st == NNCC_OK, "host run after the refusals", err);
  free(err);
  free_io(&in);
  free_io(&out);
  nncc_session_destroy(s);
  nncc_model_close(m);
  return fails ? 1 : 0;
}

/* The few driver entry points the GPU check needs. */
static struct {
  int (*init)(unsigned);
  int (*dev_get)(int *, int);
  int (*retain)(void **, int);
  int (*set_current)(void *);
  int (*alloc)(unsigned long long *, size_t);
  int (*free)(unsigned long long);
  int (*htod)(unsigned long long, const void *, size_t);
  int (*dtoh)(void *, unsigned long long, size_t);
} cu;

static int gpu(const char *path) {
  void *dl = dlopen("libcuda.so.1", RTLD_NOW);
  if (!dl) {
    printf("skipped: no CUDA driver (%s)\n", dlerror());
    return 77;
  }
  *(void **)&cu.init = dlsym(dl, "cuInit");
  *(void **)&cu.dev_get = dlsym(dl, "cuDeviceGet");
  *(void **)&cu.retain = dlsym(dl, "cuDevicePrimaryCtxRetain");
  *(void **)&cu.set_current = dlsym(dl, "cuCtxSetCurrent");
  *(void **)&cu.alloc = dlsym(dl, "cuMemAlloc_v2");
  *(void **)&cu.free = dlsym(dl, "cuMemFree_v2");
  *(void **)&cu.htod = dlsym(dl, "cuMemcpyHtoD_v2");
  *(void **)&cu.dtoh = dlsym(dl, "cuMemcpyDtoH_v2");
  int dev;
  void *ctx;
  if (!cu.init || !cu.alloc || !cu.dtoh || cu.init(0) || cu.dev_get(&dev, 0) ||
      cu.retain(&ctx, dev) || cu.set_current(ctx)) {
    printf("skipped: no usable GPU\n");
    return 77;
  }
  nncc_model *m;
  nncc_session *s;
  char *err = NULL;
  io_set in, out, dout;
  if (nncc_model_open(path, &m, &err) != NNCC_OK || nncc_session_create(m, 1, &s, &err)) {
    printf("FAIL open %s: %s\n", path, err ? err : "?");
    return 1;
  }
  if (make_io(m, 0, &in) || make_io(m, 1, &out) || make_io(m, 1, &dout)) {
    printf("FAIL %s: needs a static model\n", path);
    return 1;
  }
  nncc_status st = nncc_session_run(s, in.t, (size_t)in.n, out.t, (size_t)out.n, &err);
  check(st == NNCC_OK, "host run", err);
  free(err);
  /* the same run with every tensor in device memory */
  nncc_tensor din[16], dot[16];
  unsigned long long dp[32] = {0};
  for (int i = 0; i < in.n; i++) {
    din[i] = in.t[i];
    if (cu.alloc(&dp[i], in.bytes[i] + 16) || cu.htod(dp[i], in.t[i].data, in.bytes[i])) {
      printf("FAIL device allocation\n");
      return 1;
    }
    din[i].data = (void *)(uintptr_t)dp[i];
    din[i].flags = NNCC_TENSOR_DEVICE;
  }
  for (int i = 0; i < dout.n; i++) {
    dot[i] = dout.t[i];
    if (cu.alloc(&dp[16 + i], dout.bytes[i] + 16)) {
      printf("FAIL device allocation\n");
      return 1;
    }
    dot[i].data = (void *)(uintptr_t)dp[16 + i];
    dot[i].flags = NNCC_TENSOR_DEVICE;
  }
  st = nncc_session_run(s, din, (size_t)in.n, dot, (size_t)dout.n, &err);
  check(st == NNCC_OK, "device run", err);
  free(err);
  for (int i = 0; i < dout.n; i++) {
    cu.dtoh(dout.t[i].data, dp[16 + i], dout.bytes[i]);
    char what[64];
    snprintf(what, sizeof what, "output %d (%zu bytes) equals the host run's", i, dout.bytes[i]);
    check(!memcmp(dout.t[i].data, out.t[i].data, dout.bytes[i]), what, NULL);
  }
  for (int i = 0; i < 32; i++)
    if (dp[i]) cu.free(dp[i]);
  free_io(&in);
  free_io(&out);
  free_io(&dout);
  nncc_session_destroy(s);
  nncc_model_close(m);
  return fails ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "refuse") && strcmp(argv[1], "gpu"))) {
    fprintf(stderr, "usage: device_io refuse|gpu MODEL.so\n");
    return 2;
  }
  return !strcmp(argv[1], "refuse") ? refuse(argv[2]) : gpu(argv[2]);
}
