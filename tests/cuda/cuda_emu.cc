/* cuda_emu.cc — the launcher of the emulation (see cuda_emu.h).
 *
 * Linked with a generated model.cu into one host shared object; exports
 *   int nncc_emu_launch(void (*fn)(nncc_cu_args), const unsigned grid[3],
 *                       const unsigned block[3], int sync,
 *                       const nncc_cu_args *args);
 * which runs fn over the whole grid and returns 0, or -1 when a barrier
 * was reached by only some threads of a block (divergence), or a block is
 * larger than 1024 threads. With sync = 0 the kernel promises no barrier
 * and each thread runs to completion in turn; a barrier reached anyway is
 * reported as an error. Not thread-safe: one launch at a time.
 *
 * Two kinds of barrier: the block's (__syncthreads: every live thread of
 * the block) and the warp's (__syncwarp and the two steps of a shuffle:
 * the live lanes of one warp, threads 32w .. 32w + 31 in linear order).
 * The scheduler runs every thread that is not waiting until it waits or
 * ends, then releases each warp whose lanes all wait at a warp barrier and
 * the block when all its threads wait at a block barrier; when nothing can
 * be released some threads wait for others that never come (divergence,
 * or a warp barrier where a lane has already returned).
 */
#include "cuda_emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

struct nncc_cu_args {
  void *p[64];
};

extern "C" {
nncc_emu_dim3 nncc_emu_thread_idx, nncc_emu_block_idx, nncc_emu_block_dim, nncc_emu_grid_dim;
}

enum { MAX_THREADS = 1024, STACK = 128 * 1024 };
enum { W_NONE = 0, W_BLOCK = 1, W_WARP = 2 }; /* what a thread waits at */

typedef void (*kern_fn)(nncc_cu_args);

static struct {
  bool fibers;                     /* threads are fibers (sync kernels) */
  unsigned n;                      /* threads in the block */
  unsigned cur;                    /* the running thread */
  ucontext_t sched;                /* the launcher's context */
  ucontext_t ctx[MAX_THREADS];
  char *stacks;                    /* n * STACK bytes */
  bool done[MAX_THREADS];
  unsigned char wait[MAX_THREADS]; /* W_NONE, W_BLOCK or W_WARP */
  bool bad;                        /* barrier misuse seen */
  double xchg[MAX_THREADS];        /* shuffle exchange slots */
  kern_fn fn;
  const nncc_cu_args *args;
} E;

/* The fiber stacks live as long as the library: freed when it is unloaded
 * (the check dlcloses it after each model). */
__attribute__((destructor)) static void free_stacks(void) {
  free(E.stacks);
  E.stacks = NULL;
}

extern "C" unsigned nncc_emu_linear_tid(void) { return E.cur; }
extern "C" double *nncc_emu_xchg(void) { return E.xchg; }

static void set_tid(unsigned t) {
  E.cur = t;
  unsigned bx = nncc_emu_block_dim.x, by = nncc_emu_block_dim.y;
  nncc_emu_thread_idx.x = t % bx;
  nncc_emu_thread_idx.y = (t / bx) % by;
  nncc_emu_thread_idx.z = t / (bx * by);
}

/* Waits at a barrier of kind w (back to the scheduler until released). */
static void wait_at(unsigned char w) {
  if (!E.fibers) {
    E.bad = true; /* a barrier in a kernel launched without fibers */
    return;
  }
  unsigned me = E.cur;
  E.wait[me] = w;
  swapcontext(&E.ctx[me], &E.sched);
  set_tid(me);
}

extern "C" void nncc_emu_sync(void) { wait_at(W_BLOCK); }
extern "C" void nncc_emu_warp_sync(void) { wait_at(W_WARP); }

static void fiber_main(void) {
  E.fn(*E.args);
  E.done[E.cur] = true;
  /* returning resumes uc_link = the launcher */
}

/* Releases what can be released after a round: each warp whose lanes all
 * wait at a warp barrier, and the block when all its threads wait at a
 * block barrier (a thread that returned never arrives). Returns how many
 * threads it released. */
static unsigned release(unsigned n) {
  unsigned freed = 0, live = 0, at_block = 0;
  for (unsigned w0 = 0; w0 < n; w0 += 32) {
    unsigned end = w0 + 32 < n ? w0 + 32 : n, lanes = 0, waiting = 0, gone = 0;
    for (unsigned t = w0; t < end; t++) {
      if (E.done[t]) gone++;
      else lanes++;
      if (!E.done[t] && E.wait[t] == W_WARP) waiting++;
    }
    if (waiting > 0 && waiting == lanes && gone == 0) {
      for (unsigned t = w0; t < end; t++) E.wait[t] = W_NONE;
      freed += waiting;
    }
  }
  for (unsigned t = 0; t < n; t++)
    if (!E.done[t]) {
      live++;
      at_block += E.wait[t] == W_BLOCK;
    }
  if (live == n && at_block == live) { /* a thread that returned never arrives */
    for (unsigned t = 0; t < n; t++) E.wait[t] = W_NONE;
    freed += live;
  }
  return freed;
}

/* Runs the current block's n threads as fibers; -1 on divergence. */
static __attribute__((noinline)) int run_block_fibers(unsigned n) {
  for (unsigned t = 0; t < n; t++) {
    E.done[t] = false;
    E.wait[t] = W_NONE;
    getcontext(&E.ctx[t]);
    E.ctx[t].uc_stack.ss_sp = E.stacks + (size_t)t * STACK;
    E.ctx[t].uc_stack.ss_size = STACK;
    E.ctx[t].uc_link = &E.sched;
    makecontext(&E.ctx[t], fiber_main, 0);
  }
  /* rounds: every thread not waiting runs to its next barrier or its end */
  for (;;) {
    unsigned ended = 0, waiting = 0;
    for (unsigned t = 0; t < n; t++) {
      if (E.done[t] || E.wait[t] != W_NONE) continue;
      set_tid(t);
      swapcontext(&E.sched, &E.ctx[t]);
    }
    for (unsigned t = 0; t < n; t++) {
      if (E.done[t]) ended++;
      else waiting++;
    }
    if (waiting == 0) return 0;
    if (release(n) == 0) { /* some threads wait for others that never come */
      fprintf(stderr, "cuda_emu: block (%u,%u,%u): %u threads wait at a barrier that %u "
                      "threads never reach (%u returned)\n", nncc_emu_block_idx.x,
              nncc_emu_block_idx.y, nncc_emu_block_idx.z, waiting, n - waiting, ended);
      return -1;
    }
  }
}

extern "C" __attribute__((visibility("default"))) int
nncc_emu_launch(kern_fn fn, const unsigned grid[3], const unsigned block[3], int sync,
                const nncc_cu_args *args) {
  unsigned n = block[0] * block[1] * block[2];
  if (n == 0 || n > MAX_THREADS) return -1;
  E.fn = fn;
  E.args = args;
  E.n = n;
  E.fibers = sync != 0;
  E.bad = false;
  if (E.fibers && !E.stacks) {
    E.stacks = (char *)malloc((size_t)MAX_THREADS * STACK);
    if (!E.stacks) return -1;
  }
  nncc_emu_block_dim = {block[0], block[1], block[2]};
  nncc_emu_grid_dim = {grid[0], grid[1], grid[2]};
  for (unsigned bz = 0; bz < grid[2]; bz++)
    for (unsigned by = 0; by < grid[1]; by++)
      for (unsigned bx = 0; bx < grid[0]; bx++) {
        nncc_emu_block_idx = {bx, by, bz};
        if (!E.fibers) {
          for (unsigned t = 0; t < n; t++) {
            set_tid(t);
            fn(*args);
          }
          if (E.bad) return -1;
          continue;
        }
        if (run_block_fibers(n)) return -1;
      }
  return 0;
}
