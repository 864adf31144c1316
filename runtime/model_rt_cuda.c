/* model_rt_cuda.c — the device half of a CUDA model.so.
 *
 * A model compiled with --target cuda carries, besides the usual model
 * runtime (model_rt.c: metadata, sessions, symbolic dims), a launch table
 * and device images (abi/cuda_table.h) and a generated
 * nncc_graph_run that calls nncc_cu_run below. This file is compiled once
 * when nncc is built and embedded in nncc (runtime/CMakeLists.txt); the
 * CUDA artifact step links it into the model.
 *
 * The CUDA driver is loaded with dlopen ("libcuda.so.1") on first use, so
 * the .so itself depends on nothing CUDA. First use also: cuInit, the first
 * device's primary context, the image that fits the device (the cubin of
 * the same major arch and the highest minor not above the device's, else
 * the PTX when its arch is not above the device's), the kernels, the
 * weights uploaded once, and one stream. A run copies the inputs to the
 * device, launches every step on the stream (grids from the table and the
 * run's dim values), copies the outputs back and waits. Tensors the
 * caller passed as device memory (NNCC_CU_IO_TAG in cuda_table.h) are
 * neither copied in nor out: the kernels read and write them in place.
 *
 * Failures never crash: no driver, no GPU, an arch the images don't cover,
 * out of device memory, a failed launch all come back as a negative
 * status with a message kept for nncc_cu_last_error(). Runs are
 * serialized by one lock (the device state is per process).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../abi/cuda_table.h"

#define RT_HIDDEN __attribute__((visibility("hidden")))

/* The generated code hands over an nncc_cu_model (cuda_table.h). */

/* Status codes of nncc_cu_run. */
enum {
  CU_ERR_NO_DRIVER = -101, /* libcuda.so.1 could not be loaded */
  CU_ERR_NO_DEVICE = -102, /* cuInit failed or no device */
  CU_ERR_ARCH = -103,      /* no image for this device */
  CU_ERR_MEMORY = -104,    /* device allocation failed */
  CU_ERR_LAUNCH = -105,    /* a copy or launch failed */
  CU_ERR_TABLE = -106,     /* malformed table */
};

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

static struct {
  pthread_mutex_t lock;
  int state; /* 0 untried, 1 ready, < 0 the failure */
  char msg[512];
  void *dl;
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(int *, int);
  CUresult (*cuDeviceGetAttribute)(int *, int, int);
  CUresult (*cuDevicePrimaryCtxRetain)(void **, int);
  CUresult (*cuCtxSetCurrent)(void *);
  CUresult (*cuModuleLoadData)(void **, const void *);
  CUresult (*cuModuleGetFunction)(void **, void *, const char *);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, void *);
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, void *);
  CUresult (*cuStreamCreate)(void **, unsigned);
  CUresult (*cuStreamSynchronize)(void *);
  CUresult (*cuLaunchKernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, void *, void **, void **);
  CUresult (*cuGetErrorString)(CUresult, const char **);
  void *ctx, *module, *stream;
  void **fns; /* by kernel */
  CUdeviceptr weights;
  CUdeviceptr ws; /* workspace, grown as needed */
  uint64_t ws_bytes;
  CUdeviceptr io; /* inputs, outputs and dims, grown as needed */
  uint64_t io_bytes;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int fail(int code, const char *fmt, const char *a, const char *b) {
  snprintf(G.msg, sizeof G.msg, fmt, a ? a : "", b ? b : "");
  return code;
}

static const char *cu_err(CUresult r) {
  const char *s = NULL;
  if (G.cuGetErrorString) G.cuGetErrorString(r, &s);
  return s ? s : "unknown CUDA error";
}

/* The latest failure's message (empty when none). */
RT_HIDDEN const char *nncc_cu_last_error(void) { return G.msg; }

static int load_driver(void) {
  G.dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!G.dl)
    return fail(CU_ERR_NO_DRIVER,
                "this model runs on a CUDA GPU, but the CUDA driver (libcuda.so.1) can't be "
                "loaded: %s%s",
                dlerror(), NULL);
  struct {
    void **p;
    const char *name;
  } s[] = {{(void **)&G.cuInit, "cuInit"},
           {(void **)&G.cuDeviceGetCount, "cuDeviceGetCount"},
           {(void **)&G.cuDeviceGet, "cuDeviceGet"},
           {(void **)&G.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
           {(void **)&G.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
           {(void **)&G.cuCtxSetCurrent, "cuCtxSetCurrent"},
           {(void **)&G.cuModuleLoadData, "cuModuleLoadData"},
           {(void **)&G.cuModuleGetFunction, "cuModuleGetFunction"},
           {(void **)&G.cuMemAlloc, "cuMemAlloc_v2"},
           {(void **)&G.cuMemFree, "cuMemFree_v2"},
           {(void **)&G.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
           {(void **)&G.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
           {(void **)&G.cuStreamCreate, "cuStreamCreate"},
           {(void **)&G.cuStreamSynchronize, "cuStreamSynchronize"},
           {(void **)&G.cuLaunchKernel, "cuLaunchKernel"},
           {(void **)&G.cuGetErrorString, "cuGetErrorString"}};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
    if (!(*s[i].p = dlsym(G.dl, s[i].name)))
      return fail(CU_ERR_NO_DRIVER, "the CUDA driver lacks %s%s", s[i].name, NULL);
  return 0;
}

/* Whether this process can run CUDA code at all (driver, cuInit, a GPU):
 * checked when the model is opened (model_rt.c), so a machine without a
 * GPU gets a clear error from nncc_model_open rather than from the first
 * run. 0, or -1 with the reason in msg. */
RT_HIDDEN int nncc_cu_probe(char *msg, size_t cap) {
  pthread_mutex_lock(&G.lock);
  int rc = G.dl ? 0 : load_driver();
  int n = 0;
  CUresult r = 0;
  if (!rc && ((r = G.cuInit(0)) != 0 || G.cuDeviceGetCount(&n) != 0 || n < 1))
    rc = fail(CU_ERR_NO_DEVICE,
              r ? "cuInit failed: %s (no usable CUDA GPU?)%s" : "no CUDA GPU found%s%s",
              r ? cu_err(r) : NULL, NULL);
  if (rc) snprintf(msg, cap, "%s", G.msg);
  pthread_mutex_unlock(&G.lock);
  return rc ? -1 : 0;
}

static int init(const nncc_cu_model *m, const unsigned char *weights) {
  int rc = load_driver();
  if (rc) return rc;
  CUresult r = G.cuInit(0);
  int n = 0, dev = 0, major = 0, minor = 0;
  if (r != 0)
    return fail(CU_ERR_NO_DEVICE, "cuInit failed: %s (no usable CUDA GPU?)%s", cu_err(r), NULL);
  if (G.cuDeviceGetCount(&n) != 0 || n < 1)
    return fail(CU_ERR_NO_DEVICE, "no CUDA GPU found%s%s", NULL, NULL);
  if ((r = G.cuDeviceGet(&dev, 0)) != 0 || (r = G.cuDeviceGetAttribute(&major, 75, dev)) != 0 ||
      (r = G.cuDeviceGetAttribute(&minor, 76, dev)) != 0)
    return fail(CU_ERR_NO_DEVICE, "can't query the CUDA GPU: %s%s", cu_err(r), NULL);
  int cc = major * 10 + minor, pick = -1;
  for (int i = 0; i < m->narchs; i++)
    if (m->archs[i] / 10 == major && m->archs[i] <= cc) pick = i;
  const void *image = pick >= 0 ? (const void *)m->cubins[pick]
                      : m->ptx && m->narchs > 0 && m->archs[m->narchs - 1] <= cc
                          ? (const void *)m->ptx
                          : NULL;
  if (!image) {
    char have[128] = "", dv[16];
    for (int i = 0; i < m->narchs; i++)
      snprintf(have + strlen(have), sizeof have - strlen(have), "%ssm_%d", i ? "," : "",
               m->archs[i]);
    snprintf(dv, sizeof dv, "sm_%d", cc);
    return fail(CU_ERR_ARCH,
                "the model was compiled for %s; this GPU is %s (recompile with "
                "--cuda-arch)",
                have, dv);
  }
  if ((r = G.cuDevicePrimaryCtxRetain(&G.ctx, dev)) != 0 || (r = G.cuCtxSetCurrent(G.ctx)) != 0)
    return fail(CU_ERR_NO_DEVICE, "can't make a CUDA context: %s%s", cu_err(r), NULL);
  if ((r = G.cuModuleLoadData(&G.module, image)) != 0)
    return fail(CU_ERR_ARCH, "the GPU refused the model's code: %s%s", cu_err(r), NULL);
  const nncc_cu_table *t = m->table;
  G.fns = calloc((size_t)t->nkernels + 1, sizeof *G.fns);
  if (!G.fns) return fail(CU_ERR_MEMORY, "out of host memory%s%s", NULL, NULL);
  for (int i = 0; i < t->nkernels; i++)
    if ((r = G.cuModuleGetFunction(&G.fns[i], G.module, t->kernels[i].name)) != 0)
      return fail(CU_ERR_TABLE, "kernel %s is missing from the image: %s", t->kernels[i].name,
                  cu_err(r));
  if ((r = G.cuStreamCreate(&G.stream, 0)) != 0)
    return fail(CU_ERR_NO_DEVICE, "can't make a CUDA stream: %s%s", cu_err(r), NULL);
  if (t->weights_bytes) {
    if (G.cuMemAlloc(&G.weights, t->weights_bytes) != 0)
      return fail(CU_ERR_MEMORY, "out of GPU memory for the weights%s%s", NULL, NULL);
    if ((r = G.cuMemcpyHtoDAsync(G.weights, weights, t->weights_bytes, G.stream)) != 0 ||
        (r = G.cuStreamSynchronize(G.stream)) != 0)
      return fail(CU_ERR_LAUNCH, "uploading the weights failed: %s%s", cu_err(r), NULL);
  }
  return 1;
}

/* Makes *p at least `bytes` long (device memory). */
static int grow(CUdeviceptr *p, uint64_t *have, uint64_t bytes) {
  if (bytes <= *have) return 0;
  if (*p) G.cuMemFree(*p);
  *p = 0;
  *have = 0;
  if (G.cuMemAlloc(p, bytes) != 0)
    return fail(CU_ERR_MEMORY, "out of GPU memory (%s%s)", "run", NULL);
  *have = bytes;
  return 0;
}

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* Runs the model (see abi.h nncc_graph_run). Returns 0 or a CU_ERR_*. */
RT_HIDDEN int nncc_cu_run(const nncc_cu_model *m, void *const *inputs, void *const *outputs,
                          const unsigned char *weights, const int64_t *dims, const int64_t *offsets,
                          int64_t *status) {
  const nncc_cu_table *t = m->table;
  /* the session runtime's device flags, when it gives any */
  const uint32_t *dev = inputs && inputs[m->ninputs] == NNCC_CU_IO_TAG
                            ? (const uint32_t *)inputs[m->ninputs + 1]
                            : NULL;
#define IN_DEV(i) (dev && (dev[(i)] & NNCC_CU_IO_DEVICE))
#define OUT_DEV(i) (dev && (dev[m->ninputs + (i)] & NNCC_CU_IO_DEVICE))
  pthread_mutex_lock(&G.lock);
  int rc = 0;
  if (G.state == 0) G.state = init(m, weights);
  if (G.state < 0) {
    rc = G.state;
    goto out;
  }
  /* sizes: workspace extent, and one region per input/output plus dims */
  uint64_t ws = t->dynamic ? 0 : t->workspace_bytes, iob = 0;
  uint64_t *bytes = calloc((size_t)t->nbufs + 1, sizeof *bytes);
  uint64_t *at = calloc((size_t)t->nbufs + 1, sizeof *at);
  if (!bytes || !at) {
    free(bytes);
    free(at);
    rc = fail(CU_ERR_MEMORY, "out of host memory%s%s", NULL, NULL);
    goto out;
  }
  for (int i = 0; i < t->nbufs; i++) {
    const nncc_cu_buf *b = &t->bufs[i];
    int64_t n = nncc_cu_eval(t->prog, t->nprog, b->elems, dims, t->nsyms);
    bytes[i] = n > 0 ? (uint64_t)n * b->esize : 0;
    if (b->kind == NNCC_CU_WORKSPACE && t->dynamic && offsets) {
      uint64_t end = (uint64_t)offsets[i] + bytes[i];
      if (end > ws) ws = end;
    }
    if (b->kind == NNCC_CU_INPUT || b->kind == NNCC_CU_OUTPUT || b->kind == NNCC_CU_DIMS ||
        b->kind == NNCC_CU_STATUS) {
      at[i] = iob;
      iob += align64(bytes[i] ? bytes[i] : 1);
    }
  }
  CUresult r = 0;
  if ((rc = grow(&G.ws, &G.ws_bytes, ws + 64)) || (rc = grow(&G.io, &G.io_bytes, iob + 64)))
    goto done;
  for (int i = 0; i < t->nbufs && !r; i++) {
    const nncc_cu_buf *b = &t->bufs[i];
    if (b->kind == NNCC_CU_INPUT && bytes[i] && !IN_DEV(b->index))
      r = G.cuMemcpyHtoDAsync(G.io + at[i], inputs[b->index], bytes[i], G.stream);
    if (b->kind == NNCC_CU_DIMS && bytes[i])
      r = G.cuMemcpyHtoDAsync(G.io + at[i], dims, bytes[i], G.stream);
    if (b->kind == NNCC_CU_STATUS && bytes[i] && status) /* zeroed by the caller */
      r = G.cuMemcpyHtoDAsync(G.io + at[i], status, bytes[i], G.stream);
  }
  for (int s = 0; s < t->nsteps && !r; s++) {
    const nncc_cu_step *st = &t->steps[s];
    nncc_cu_args args;
    memset(&args, 0, sizeof args);
    if (st->kernel < 0 || st->kernel >= t->nkernels || st->nslots > NNCC_CU_MAX_SLOTS) {
      rc = fail(CU_ERR_TABLE, "malformed launch table%s%s", NULL, NULL);
      goto done;
    }
    for (int k = 0; k < st->nslots; k++) {
      int32_t id = t->slots[st->slot0 + k];
      const nncc_cu_buf *b = &t->bufs[id];
      CUdeviceptr p = 0;
      switch (b->kind) {
      case NNCC_CU_INPUT:
        p = IN_DEV(b->index) ? (CUdeviceptr)(uintptr_t)inputs[b->index] : G.io + at[id];
        break;
      case NNCC_CU_OUTPUT:
        p = OUT_DEV(b->index) ? (CUdeviceptr)(uintptr_t)outputs[b->index] : G.io + at[id];
        break;
      case NNCC_CU_DIMS:
      case NNCC_CU_STATUS: p = G.io + at[id]; break;
      case NNCC_CU_WEIGHT: p = G.weights + b->offset; break;
      default: p = G.ws + (t->dynamic && offsets ? (uint64_t)offsets[id] : b->offset); break;
      }
      args.p[k] = (void *)(uintptr_t)p;
    }
    unsigned grid[3], block[3];
    nncc_cu_grid(t, st->kernel, dims, 1024, grid, block);
    void *params[] = {&args};
    r = G.cuLaunchKernel(G.fns[st->kernel], grid[0], grid[1], grid[2], block[0], block[1], block[2],
                         0, G.stream, params, NULL);
  }
  for (int i = 0; i < t->nbufs && !r; i++) {
    const nncc_cu_buf *b = &t->bufs[i];
    if (b->kind == NNCC_CU_OUTPUT && bytes[i] && !OUT_DEV(b->index))
      r = G.cuMemcpyDtoHAsync(outputs[b->index], G.io + at[i], bytes[i], G.stream);
    if (b->kind == NNCC_CU_STATUS && bytes[i] && status)
      r = G.cuMemcpyDtoHAsync(status, G.io + at[i], bytes[i], G.stream);
  }
  if (!r) r = G.cuStreamSynchronize(G.stream);
  if (r) rc = fail(CU_ERR_LAUNCH, "a CUDA launch or copy failed: %s%s", cu_err(r), NULL);
done:
  free(bytes);
  free(at);
out:
  pthread_mutex_unlock(&G.lock);
  return rc;
#undef IN_DEV
#undef OUT_DEV
}
