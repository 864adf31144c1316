/* gemm_timer.c - time OpenBLAS's single-precision GEMM on one shape, the
 * reference nncc's own GEMM is measured against (bench/bench.py, --gemm).
 *
 *   gemm_timer M K N [--runs R] [--warmup W] [--threads T] [--times]
 *
 * Computes C[M,N] = A[M,K] * W[N,K]^T with cblas_sgemm (row-major, W
 * transposed): the layout of torch.nn.Linear without bias, which is what
 * nncc compiles for the same shape. A and W hold pseudo-random values in
 * [-1, 1). OpenBLAS runs with T threads (default 1, set through
 * openblas_set_num_threads). W untimed calls (default 3), then R timed
 * calls (default 20), and prints the same lines as the other timers:
 *   latency_ms min=X median=Y max=Z runs=R threads=T
 *   times_ms t1 t2 ...            (with --times)
 * and `openblas <config string>` first, which names the library's version
 * and the kernel it picked for this CPU.
 *
 * Build (bench/bench.sh does it):
 *   cc -O2 bench/gemm_timer.c $(pkg-config --cflags --libs openblas) -o gemm_timer
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Declared by OpenBLAS's cblas.h; repeated here in case another cblas.h is
 * found first. */
void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* n floats in [-1, 1) from a fixed xorshift sequence, 64-byte aligned. */
static float *random_floats(size_t n, unsigned seed) {
  float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
  if (!p) return NULL;
  unsigned x = seed ? seed : 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (float)(x >> 8) / (float)(1u << 23) - 1.0f;
  }
  return p;
}

int main(int argc, char **argv) {
  long dim[3] = {0, 0, 0};
  int ndim = 0, runs = 20, warmup = 3, threads = 1, times = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--times")) {
      times = 1;
    } else if (!strcmp(a, "--runs") || !strcmp(a, "--warmup") || !strcmp(a, "--threads")) {
      if (i + 1 >= argc) goto usage;
      int v = atoi(argv[++i]);
      if (a[2] == 'r')
        runs = v;
      else if (a[2] == 'w')
        warmup = v;
      else
        threads = v;
    } else if (ndim < 3) {
      dim[ndim++] = atol(a);
    } else {
      goto usage;
    }
  }
  if (ndim != 3 || runs < 1 || threads < 1 || dim[0] < 1 || dim[1] < 1 || dim[2] < 1 ||
      dim[0] > 65536 || dim[1] > 65536 || dim[2] > 65536)
    goto usage;
  long m = dim[0], k = dim[1], n = dim[2];

  openblas_set_num_threads(threads);
  printf("openblas %s\n", openblas_get_config());
  float *a = random_floats((size_t)(m * k), 1), *w = random_floats((size_t)(n * k), 2);
  float *c = random_floats((size_t)(m * n), 3);
  double *ms = calloc((size_t)runs, sizeof *ms);
  if (!a || !w || !c || !ms) {
    fprintf(stderr, "gemm_timer: error: out of memory\n");
    return 1;
  }
  for (int r = -warmup; r < runs; r++) {
    double t0 = now_ms();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, w,
                (int)k, 0.0f, c, (int)n);
    if (r >= 0) ms[r] = now_ms() - t0;
  }
  if (times) {
    printf("times_ms");
    for (int r = 0; r < runs; r++) printf(" %.6f", ms[r]);
    printf("\n");
  }
  qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
  double median = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
  printf("latency_ms min=%.4f median=%.4f max=%.4f runs=%d threads=%d\n", ms[0], median,
         ms[runs - 1], runs, threads);
  free(a);
  free(w);
  free(c);
  free(ms);
  return 0;

usage:
  fprintf(stderr, "usage: gemm_timer M K N [--runs R] [--warmup W] [--threads T] [--times]\n");
  return 2;
}
