/* pool.c — the thread pool inside every model.so (no OpenMP, pthreads only).
 *
 * A session owns one pool; the generated graph function hands it to
 * nncc_rt_parallel_for for each parallel kernel. A pool of T threads has
 * T - 1 workers; the calling thread is the T-th and works too.
 *
 * Splitting. A job over [0, n) is cut into p = min(n, 8 T) pieces of
 * near-equal size, always the same for a given n (so results never depend
 * on timing: iterations are independent, and each piece covers the same
 * iterations on every run). Thread u (the caller is 0) has a home range,
 * the u-th of T near-equal runs of consecutive pieces, and claims pieces
 * one at a time from it; when it is empty, from the other threads'
 * ranges in turn, until none is left. So a thread that is slowed down (by
 * the OS, or by a piece that costs more, like a GEMM's edge tile) takes
 * fewer pieces instead of making the others wait, and otherwise each
 * thread works on the same part of every kernel's iteration space: the
 * output columns of a GEMM (the positions of a convolution), so the next
 * layer mostly reads what the same core wrote. With one shared counter
 * the pieces fell to the threads at random, and a 2-thread resnet18 lost
 * up to a sixth of its time to moving activations between the cores'
 * caches.
 *
 * Small kernels run inline. The pool knows only n, and the cost of an
 * iteration differs by orders of magnitude between kernels, so it learns
 * the cost: every call is timed, and a small table keyed by the kernel
 * function (open addressing: each kernel its own entry, see rt_cost_of)
 * keeps a running estimate of the kernel's single-thread time
 * (for a split call, the calling thread's own time per piece times the
 * pieces, so hand-off delays don't inflate it). A kernel seen for the first time
 * runs inline (that measures it); afterwards it is split across the
 * threads only when the estimate is at least RT_INLINE_NS, because handing
 * work to a spinning worker costs about a microsecond of latency (and a
 * sleeping one tens of microseconds) while splitting W of work saves at
 * most W (1 - 1/T). Shapes are static, so a kernel's cost hardly changes
 * from run to run and the decision settles after the first run.
 *
 * Hand-off. One 64-bit atomic per thread, its home range's counter,
 * holds the job's generation in its high half and the next unclaimed
 * piece of the range in its low half; `ticket` holds the generation
 * alone, for the workers to wait on. The caller closes every range (no
 * piece number is that high), writes the job (atomically, field by
 * field), opens the ranges under generation gen + 1 and then publishes
 * the ticket; a thread claims a piece by a compare-and-swap from (gen, c)
 * to (gen, c + 1), so it can only ever claim a piece of the generation
 * whose job it read: a worker that wakes late, after that job is finished
 * and another published, fails its swap and starts over with the new
 * ticket, and a closed range gives nothing to a thread that read an old
 * counter and then half-written fields. A thread
 * that ran a piece counts it in `done`; the
 * caller, once no piece is left to claim, spins and then sleeps until
 * `done` reaches the job's pieces. So the caller waits only for pieces
 * that are running, never for a worker that has not woken up yet (on a
 * busy machine a descheduled worker would otherwise stall every kernel).
 * Workers spin on the ticket's generation for up to RT_SPIN_NS (kernels
 * come back to back, and a sleeping thread takes tens of microseconds to
 * wake), then sleep on `wake`. The mutex is taken only to sleep or to wake
 * a sleeper: `sleeping` and `waiting` are checked after the counters they
 * guard (sequentially consistent atomics on both sides), so no wake-up is
 * lost. The counters each live on their own cache line so spinning
 * threads don't slow the writers of the others.
 *
 * Compiled with -fvisibility=hidden into the embedded model runtime: none of
 * these symbols leave the model.so.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../abi/abi.h"

#define RT_SPIN_NS 200000      /* busy-wait this long before sleeping */
#define RT_INLINE_NS 6000.0    /* kernels estimated cheaper run inline */
#define RT_PIECES_PER_THREAD 8 /* pieces per thread of a split job */
#define RT_COST_SLOTS 512      /* cost table entries (a power of 2) */
#define RT_COST_PROBES 32      /* entries searched for a kernel's own */

#if defined(__x86_64__) || defined(__i386__)
#define rt_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define rt_relax() __asm__ __volatile__("yield")
#else
#define rt_relax() ((void)0)
#endif

/* A job as the threads read it: every field atomic, because a late
 * worker may read it while the caller writes the next one (its swap on the
 * ticket then fails and it reads again). */
typedef struct rt_job {
  _Atomic(nncc_rt_kernel_fn) fn; /* the kernel */
  _Atomic(void *const *) slots;  /* its buffers */
  _Atomic int64_t n;             /* iterations */
  atomic_int npieces;            /* pieces the job is cut into */
} rt_job;

/* The learned single-thread cost of one kernel. */
typedef struct rt_cost {
  nncc_rt_kernel_fn fn; /* the kernel, NULL for an empty entry */
  double ns;            /* running estimate of its single-thread time */
} rt_cost;

/* A thread's home range of pieces: gen << 32 | the next piece in it to
 * claim (the range ends where the next thread's begins). On its own cache
 * line: its owner claims from it all the time, others only once theirs
 * is empty. */
typedef struct rt_claim {
  _Alignas(64) _Atomic uint64_t next;
} rt_claim;

struct rt_pool {
  int nthreads;                         /* including the caller */
  pthread_t *threads;                   /* nthreads - 1 workers */
  int started;                          /* workers actually started */
  pthread_mutex_t mu;                   /* taken to sleep on wake/done and to signal them */
  pthread_cond_t wake;                  /* workers wait here for a new gen */
  pthread_cond_t done;                  /* the caller waits here for all pieces done */
  rt_job job;                           /* the current job (see rt_job) */
  bool stop;                            /* shutting down (under mu) */
  rt_cost cost[RT_COST_SLOTS];          /* caller-only: learned kernel costs */
  rt_claim *claim;                      /* per thread (0: the caller): its home range */
  atomic_int next_index;                /* workers take indices 1, 2, ... as they start */
  _Alignas(64) _Atomic uint64_t ticket; /* gen << 32: the current job's generation */
  _Alignas(64) atomic_int done_pieces;  /* pieces of this gen finished */
  _Alignas(64) atomic_int sleeping;     /* workers blocked (or about to) on wake */
  atomic_int waiting;                   /* the caller is blocked (or about to) on done */
};

static uint64_t rt_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t rt_gen(uint64_t ticket) { return (uint32_t)(ticket >> 32); }

/* First piece of thread u's home range among np pieces and T threads. */
static int rt_home(int u, int np, int T) { return (int)((int64_t)u * np / T); }

/* Claims and runs pieces of the job of generation gen until none is left
 * (or a newer job replaced it): first from the home range of thread
 * `self`, then from the others' in turn; returns how many it ran. */
static int rt_work(rt_pool *p, uint32_t gen, int self) {
  int ran = 0, T = p->started + 1;
  for (int k = 0; k < T; k++) {
    int u = (self + k) % T;
    rt_claim *cl = &p->claim[u];
    for (;;) {
      uint64_t t = atomic_load(&cl->next);
      if (rt_gen(t) != gen) return ran; /* a newer job, or this one closed */
      /* read the job, then claim: the swap succeeds only if the counter
       * (so the job) is still the one read */
      nncc_rt_kernel_fn fn = atomic_load_explicit(&p->job.fn, memory_order_relaxed);
      void *const *slots = atomic_load_explicit(&p->job.slots, memory_order_relaxed);
      int64_t n = atomic_load_explicit(&p->job.n, memory_order_relaxed);
      int np = atomic_load_explicit(&p->job.npieces, memory_order_relaxed);
      uint32_t c = (uint32_t)t;
      if (c >= (uint32_t)rt_home(u + 1, np, T)) break; /* u's range is empty */
      if (!atomic_compare_exchange_weak(&cl->next, &t, t + 1)) continue;
      /* the first r pieces get q + 1 iterations */
      int64_t q = n / np, r = n % np;
      int64_t begin = q * c + ((int64_t)c < r ? c : r);
      fn(slots, begin, begin + q + ((int64_t)c < r ? 1 : 0));
      ran++;
      if (atomic_fetch_add(&p->done_pieces, 1) + 1 == np && atomic_load(&p->waiting)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
      }
    }
  }
  return ran;
}

static void *rt_worker_main(void *arg) {
  rt_pool *p = arg;
  int self = atomic_fetch_add(&p->next_index, 1) + 1;
  uint32_t seen = 0;
  for (;;) {
    if (rt_gen(atomic_load(&p->ticket)) == seen) {
      uint64_t t0 = rt_now_ns();
      for (int i = 1; rt_gen(atomic_load(&p->ticket)) == seen; i++) {
        rt_relax();
        if (i % 256 == 0 && rt_now_ns() - t0 > RT_SPIN_NS) break;
      }
    }
    if (rt_gen(atomic_load(&p->ticket)) == seen) {
      pthread_mutex_lock(&p->mu);
      atomic_fetch_add(&p->sleeping, 1);
      while (!p->stop && rt_gen(atomic_load(&p->ticket)) == seen)
        pthread_cond_wait(&p->wake, &p->mu);
      atomic_fetch_sub(&p->sleeping, 1);
      bool stop = p->stop;
      pthread_mutex_unlock(&p->mu);
      if (stop) return NULL;
    }
    seen = rt_gen(atomic_load(&p->ticket));
    rt_work(p, seen, self);
  }
}

rt_pool *rt_pool_new(int nthreads) {
  if (nthreads < 1) nthreads = 1;
  size_t bytes = (sizeof(rt_pool) + 63) / 64 * 64;
  rt_pool *p = aligned_alloc(64, bytes);
  if (!p) return NULL;
  memset(p, 0, bytes);
  p->nthreads = nthreads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->ticket, 0);
  atomic_init(&p->done_pieces, 0);
  atomic_init(&p->sleeping, 0);
  atomic_init(&p->waiting, 0);
  atomic_init(&p->next_index, 0);
  p->claim = aligned_alloc(64, sizeof(rt_claim) * (size_t)nthreads);
  if (!p->claim) {
    rt_pool_free(p);
    return NULL;
  }
  for (int i = 0; i < nthreads; i++) atomic_init(&p->claim[i].next, 0);
  if (nthreads > 1) {
    p->threads = calloc((size_t)nthreads - 1, sizeof *p->threads);
    if (!p->threads) {
      rt_pool_free(p);
      return NULL;
    }
    for (int i = 0; i < nthreads - 1; i++) {
      if (pthread_create(&p->threads[i], NULL, rt_worker_main, p)) {
        rt_pool_free(p);
        return NULL;
      }
      p->started++;
    }
  }
  return p;
}

void rt_pool_free(rt_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->mu);
  free(p->threads);
  free(p->claim);
  free(p);
}

/* Runs job over all threads of p and returns when every piece is done.
 * Returns the job's single-thread time as the caller's own pieces imply it
 * (their time, times the pieces per piece it ran), which leaves out the
 * hand-off; -1 when the caller ran no piece. */
static double rt_run_split(rt_pool *p, nncc_rt_kernel_fn fn, void *const *slots, int64_t n,
                           int npieces) {
  /* Every piece of the previous job is done. Close its home ranges first
   * (no piece number is that high), so that a thread which read an old
   * counter and then some fields of the job being written can't claim
   * anything; then write the job, open the ranges under a new generation
   * and publish it. */
  int T = p->started + 1;
  uint32_t gen = rt_gen(atomic_load(&p->ticket)) + 1;
  for (int u = 0; u < T; u++)
    atomic_store(&p->claim[u].next, ((uint64_t)(gen - 1) << 32) | 0xffffffffu);
  atomic_store(&p->done_pieces, 0);
  atomic_store_explicit(&p->job.fn, fn, memory_order_relaxed);
  atomic_store_explicit(&p->job.slots, slots, memory_order_relaxed);
  atomic_store_explicit(&p->job.n, n, memory_order_relaxed);
  atomic_store_explicit(&p->job.npieces, npieces, memory_order_relaxed);
  for (int u = 0; u < T; u++)
    atomic_store(&p->claim[u].next, ((uint64_t)gen << 32) | (uint32_t)rt_home(u, npieces, T));
  atomic_store(&p->ticket, (uint64_t)gen << 32);
  if (atomic_load(&p->sleeping)) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
  uint64_t t0 = rt_now_ns();
  int ran = rt_work(p, gen, 0);
  double ns = ran ? (double)(rt_now_ns() - t0) * npieces / ran : -1;
  for (int i = 0; i < 20000 && atomic_load(&p->done_pieces) != npieces; i++) rt_relax();
  if (atomic_load(&p->done_pieces) != npieces) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->waiting, 1);
    while (atomic_load(&p->done_pieces) != npieces) pthread_cond_wait(&p->done, &p->mu);
    atomic_store(&p->waiting, 0);
    pthread_mutex_unlock(&p->mu);
  }
  return ns;
}

/* The cost entry of kernel fn: its own, else an empty one to fill, found
 * by linear probing from the hash of its address (kernels must not share
 * an entry: two that evict each other would both run inline forever, and
 * whether two collide depends on where the model was loaded). Only when
 * RT_COST_PROBES entries from fn's home are all taken does fn reuse its
 * home entry. */
static rt_cost *rt_cost_of(rt_pool *p, nncc_rt_kernel_fn fn) {
  uintptr_t h = ((uintptr_t)fn >> 4) * (uintptr_t)0x9e3779b97f4a7c15ull;
  size_t home = (size_t)(h >> 24);
  for (size_t i = 0; i < RT_COST_PROBES; i++) {
    rt_cost *c = &p->cost[(home + i) & (RT_COST_SLOTS - 1)];
    if (c->fn == fn || !c->fn) return c;
  }
  return &p->cost[home & (RT_COST_SLOTS - 1)];
}

void nncc_rt_parallel_for(void *pool, nncc_rt_kernel_fn fn, void *const *slots, int64_t n) {
  rt_pool *p = pool;
  if (n <= 0) return;
  if (!p || p->started == 0 || n == 1) {
    fn(slots, 0, n);
    return;
  }
  rt_cost *c = rt_cost_of(p, fn);
  double ns;
  if (c->fn == fn && c->ns >= RT_INLINE_NS) {
    int64_t most = (int64_t)RT_PIECES_PER_THREAD * (p->started + 1);
    ns = rt_run_split(p, fn, slots, n, (int)(n < most ? n : most));
    if (ns < 0) return;
  } else {
    uint64_t t0 = rt_now_ns();
    fn(slots, 0, n);
    ns = (double)(rt_now_ns() - t0);
  }
  if (c->fn != fn) {
    c->fn = fn;
    c->ns = ns;
  } else {
    c->ns = 0.75 * c->ns + 0.25 * ns;
  }
}
