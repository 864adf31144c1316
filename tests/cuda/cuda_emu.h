/* cuda_emu.h — runs nncc's generated CUDA C on the CPU.
 *
 * Included first (g++ -include tests/cuda/cuda_emu.h -x c++ model.cu) it
 * makes the CUDA source emitted by backends/cuda/cuda_emit.c ordinary host
 * C++: __global__/__device__ vanish, threadIdx/blockIdx/blockDim/gridDim
 * read the emulated thread's coordinates, and the block-level primitives
 * get real per-thread semantics. tests/cuda/cuda_emu.cc launches kernels:
 * the blocks of a grid run one after another; the threads of a block run
 * one after another when the kernel has no barrier, and otherwise as
 * fibers (ucontext), each running until its next __syncthreads, so every
 * thread of the block reaches a barrier before any leaves it (a barrier
 * that not all threads reach is reported as divergence). Since a block's
 * threads share one OS thread, __shared__ variables are function statics,
 * shared by the block as on the device and reused by the next block.
 *
 * Provided: the coordinates; __syncthreads (a barrier of the block);
 * __syncwarp and the warp shuffles (__shfl_sync, __shfl_xor_sync,
 * __shfl_down_sync) in lockstep over the 32 lanes of a warp: each lane
 * publishes its value, waits at a barrier of its warp, reads the source
 * lane's value of the same call, and waits again; atomicAdd/atomicMax/atomicMin/atomicCAS (plain updates:
 * no thread is preempted between barriers); __float_as_uint and friends;
 * float4; __half/__nv_bfloat16 as 16-bit storage with float conversions; and
 * 16x16x16 wmma fragments (load, mma with f32 accumulation, store) for
 * half operands.
 */
#ifndef NNCC_CUDA_EMU_H
#define NNCC_CUDA_EMU_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

/* CUDA's 16-byte vector of four floats (the float4 loads and stores of
 * elementwise kernels); the same size and alignment as on the device. */
struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};

struct nncc_emu_dim3 {
  unsigned x, y, z; /* as CUDA's uint3/dim3 */
};

/* The running thread's coordinates (set by the launcher before it runs or
 * resumes a thread). */
extern "C" nncc_emu_dim3 nncc_emu_thread_idx, nncc_emu_block_idx, nncc_emu_block_dim,
    nncc_emu_grid_dim;
#define threadIdx nncc_emu_thread_idx
#define blockIdx nncc_emu_block_idx
#define blockDim nncc_emu_block_dim
#define gridDim nncc_emu_grid_dim
#define warpSize 32

/* A barrier of the block: returns once every thread of the block reached
 * it; a barrier of the warp: once every lane of the calling thread's warp
 * reached one (cuda_emu.cc). */
extern "C" void nncc_emu_sync(void);
extern "C" void nncc_emu_warp_sync(void);
/* This thread's linear index in its block, and the exchange slots the
 * shuffles use (one per thread of the block). */
extern "C" unsigned nncc_emu_linear_tid(void);
extern "C" double *nncc_emu_xchg(void);
static inline void __syncthreads(void) { nncc_emu_sync(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
  (void)mask;
  nncc_emu_warp_sync();
}

/* Lane exchange: thread t publishes v, its warp waits, t reads lane src
 * (its own value when src is outside the warp), the warp waits again. */
template <class T> static inline T nncc_emu_shfl(T v, int src_lane_abs, bool valid) {
  unsigned me = nncc_emu_linear_tid();
  double *x = nncc_emu_xchg();
  memcpy(&x[me], &v, sizeof v < sizeof(double) ? sizeof v : sizeof(double));
  nncc_emu_warp_sync();
  T r = v;
  if (valid) memcpy(&r, &x[src_lane_abs], sizeof v < sizeof(double) ? sizeof v : sizeof(double));
  nncc_emu_warp_sync();
  return r;
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int lane, int width = 32) {
  (void)mask;
  unsigned me = nncc_emu_linear_tid(), base = me - me % (unsigned)width;
  return nncc_emu_shfl(v, (int)(base + (unsigned)lane % (unsigned)width), true);
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lm, int width = 32) {
  (void)mask;
  unsigned me = nncc_emu_linear_tid(), base = me - me % (unsigned)width;
  unsigned src = base + ((me % (unsigned)width) ^ (unsigned)lm);
  return nncc_emu_shfl(v, (int)src, src < base + (unsigned)width);
}
template <class T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
  (void)mask;
  unsigned me = nncc_emu_linear_tid(), lane = me % (unsigned)width;
  return nncc_emu_shfl(v, (int)(me + d), lane + d < (unsigned)width);
}

/* Atomics: no thread runs between another's read and write. */
template <class T> static inline T atomicAdd(T *p, T v) {
  T o = *p;
  *p = o + v;
  return o;
}
template <class T> static inline T atomicMax(T *p, T v) {
  T o = *p;
  *p = o > v ? o : v;
  return o;
}
template <class T> static inline T atomicMin(T *p, T v) {
  T o = *p;
  *p = o < v ? o : v;
  return o;
}
template <class T> static inline T atomicCAS(T *p, T cmp, T v) {
  T o = *p;
  if (o == cmp) *p = v;
  return o;
}
#define __noinline__ __attribute__((noinline))

static inline float __uint_as_float(unsigned x) {
  float f;
  memcpy(&f, &x, 4);
  return f;
}
static inline float __int_as_float(int x) {
  float f;
  memcpy(&f, &x, 4);
  return f;
}
static inline unsigned __float_as_uint(float f) {
  unsigned x;
  memcpy(&x, &f, 4);
  return x;
}
static inline int __float_as_int(float f) {
  int x;
  memcpy(&x, &f, 4);
  return x;
}

/* 16-bit float storage types with conversions (round to nearest even). */
struct __half {
  unsigned short bits;
};
struct __nv_bfloat16 {
  unsigned short bits;
};
static inline float __half2float(__half h) {
  unsigned s = (unsigned)(h.bits & 0x8000) << 16, e = (h.bits >> 10) & 0x1f, m = h.bits & 0x3ff, x;
  if (e == 0x1f)
    x = s | 0x7f800000u | (m << 13);
  else if (e == 0) {
    if (!m)
      x = s;
    else {
      int k = -1;
      do {
        m <<= 1;
        k++;
      } while (!(m & 0x400));
      x = s | ((unsigned)(127 - 15 - k) << 23) | ((m & 0x3ff) << 13);
    }
  } else
    x = s | ((e + 127 - 15) << 23) | (m << 13);
  return __uint_as_float(x);
}
static inline __half __float2half(float f) {
  unsigned x = __float_as_uint(f), s = (x >> 16) & 0x8000, e8 = (x >> 23) & 0xff, m = x & 0x7fffff;
  __half r;
  int e = (int)e8 - 127 + 15;
  if (e8 == 0xff) {
    r.bits = (unsigned short)(s | 0x7c00 | (m ? 0x200 : 0));
    return r;
  }
  if (e >= 31) {
    r.bits = (unsigned short)(s | 0x7c00);
    return r;
  }
  if (e <= 0) {
    if (e < -10) {
      r.bits = (unsigned short)s;
      return r;
    }
    m |= 0x800000;
    int sh = 14 - e;
    unsigned h = m >> sh, rem = m & ((1u << sh) - 1), hf = 1u << (sh - 1);
    if (rem > hf || (rem == hf && (h & 1))) h++;
    r.bits = (unsigned short)(s | h);
    return r;
  }
  unsigned h = ((unsigned)e << 10) | (m >> 13), rem = m & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  r.bits = (unsigned short)(s | h);
  return r;
}
static inline float __bfloat162float(__nv_bfloat16 b) {
  return __uint_as_float((unsigned)b.bits << 16);
}
static inline __nv_bfloat16 __float2bfloat16(float f) {
  unsigned x = __float_as_uint(f);
  __nv_bfloat16 r;
  if ((x & 0x7fffffffu) > 0x7f800000u)
    r.bits = (unsigned short)((x >> 16) | 0x40);
  else
    r.bits = (unsigned short)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
  return r;
}

/* Tensor-core fragments (16x16x16, half inputs, float accumulator). On the
 * device a fragment is spread over a warp; here each thread holds the whole
 * tile, which gives the same results for warp-uniform use. */
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
  T x[M * (K > N ? K : N)]; /* row-major M x max(K, N) */
  enum { num_elements = M * (K > N ? K : N) };
};
template <class Use, int M, int N, int K, class T, class L>
static inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, T v) {
  for (int i = 0; i < M * (K > N ? K : N); i++) f.x[i] = v;
}
template <int M, int N, int K, class L>
static inline void
load_matrix_sync(fragment<matrix_a, M, N, K, __half, L> &f, const __half *p, unsigned ld) {
  bool col = sizeof(L) && __is_same(L, col_major);
  for (int i = 0; i < M; i++)
    for (int k = 0; k < K; k++) f.x[i * K + k] = col ? p[k * ld + i] : p[i * ld + k];
}
template <int M, int N, int K, class L>
static inline void
load_matrix_sync(fragment<matrix_b, M, N, K, __half, L> &f, const __half *p, unsigned ld) {
  bool col = sizeof(L) && __is_same(L, col_major);
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) f.x[k * N + j] = col ? p[j * ld + k] : p[k * ld + j];
}
/* d = a * b + c; the fragments hold their tiles in logical order (the
 * loads resolved the memory layouts), so any layouts combine. */
template <int M, int N, int K, class LA, class LB>
static inline void
mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, __half, LA> &a,
         const fragment<matrix_b, M, N, K, __half, LB> &b,
         const fragment<accumulator, M, N, K, float> &c) {
  float t[M * N];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float s = c.x[i * N + j];
      for (int k = 0; k < K; k++) s += __half2float(a.x[i * K + k]) * __half2float(b.x[k * N + j]);
      t[i * N + j] = s;
    }
  memcpy(d.x, t, sizeof t);
}
template <int M, int N, int K>
static inline void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f,
                                     unsigned ld, layout_t l) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++)
      if (l == mem_row_major)
        p[i * ld + j] = f.x[i * N + j];
      else
        p[j * ld + i] = f.x[i * N + j];
}
} // namespace wmma
} // namespace nvcuda

#endif
