/* pool.c — the thread pool inside every model.so (no OpenMP, pthreads only).
 *
 * A session owns one pool; the generated graph function hands it to
 * nncc_rt_parallel_for for each parallel kernel. A pool of T threads has
 * T - 1 workers; the calling thread is the T-th. A job over [0, n) is cut
 * into c = min(T, n) contiguous chunks of near-equal size; chunk 0 runs on
 * the caller and chunk w on worker w (a static assignment: chunks are equal
 * and kernels are uniform, and it makes the split — and so any per-chunk
 * floating-point order — the same on every run).
 *
 * Hand-off: the caller publishes the job under the mutex and bumps `gen`;
 * workers spin briefly on `gen` (kernels come back to back, and a sleeping
 * thread takes tens of microseconds to wake), then sleep on `wake`. Each
 * participating worker decrements `pending` when its chunk is done; the
 * caller spins, then sleeps on `done`, until `pending` is 0. A new job can't
 * start before `pending` reaches 0, so a worker never sees a job change
 * under it; a worker that slept through a job it had no chunk of simply
 * copies the newest one.
 *
 * Compiled with -fvisibility=hidden into the embedded model runtime: none of
 * these symbols leave the model.so.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "abi.h"

#define RT_SPIN 4000 /* busy-wait iterations before sleeping (~10-100 us) */

#if defined(__x86_64__) || defined(__i386__)
#define rt_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define rt_relax() __asm__ __volatile__("yield")
#else
#define rt_relax() ((void)0)
#endif

typedef struct rt_job {
  nncc_rt_kernel_fn fn; /* the kernel */
  void *const *slots;   /* its buffers */
  int64_t n;            /* iterations */
  int nchunks;          /* chunks this job is cut into (<= nthreads) */
} rt_job;

typedef struct rt_worker {
  rt_pool *pool;
  int id; /* 1..nthreads-1; runs chunk `id` */
} rt_worker;

struct rt_pool {
  int nthreads;          /* including the caller */
  pthread_t *threads;    /* nthreads - 1 workers */
  rt_worker *workers;    /* their arguments */
  int started;           /* workers actually started */
  pthread_mutex_t mu;    /* guards job, stop, sleeping */
  pthread_cond_t wake;   /* workers wait here for a new gen */
  pthread_cond_t done;   /* the caller waits here for pending == 0 */
  rt_job job;            /* the current job (written under mu) */
  bool stop;             /* shutting down */
  int sleeping;          /* workers blocked on wake */
  atomic_ulong gen;      /* job generation, bumped per job */
  atomic_int pending;    /* chunks of the current job not yet finished */
};

/* Iterations [begin, end) of chunk c out of nchunks. */
static void rt_chunk(int64_t n, int c, int nchunks, int64_t *begin, int64_t *end) {
  int64_t q = n / nchunks, r = n % nchunks; /* the first r chunks get q + 1 */
  *begin = q * c + (c < r ? c : r);
  *end = *begin + q + (c < r ? 1 : 0);
}

static void rt_finish_chunk(rt_pool *p) {
  if (atomic_fetch_sub(&p->pending, 1) == 1) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->mu);
  }
}

static void *rt_worker_main(void *arg) {
  rt_worker *w = arg;
  rt_pool *p = w->pool;
  unsigned long seen = 0;
  for (;;) {
    for (int i = 0; i < RT_SPIN && atomic_load(&p->gen) == seen; i++) rt_relax();
    pthread_mutex_lock(&p->mu);
    while (!p->stop && atomic_load(&p->gen) == seen) {
      p->sleeping++;
      pthread_cond_wait(&p->wake, &p->mu);
      p->sleeping--;
    }
    if (p->stop) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    rt_job job = p->job;
    seen = atomic_load(&p->gen);
    pthread_mutex_unlock(&p->mu);
    if (w->id < job.nchunks) {
      int64_t b, e;
      rt_chunk(job.n, w->id, job.nchunks, &b, &e);
      job.fn(job.slots, b, e);
      rt_finish_chunk(p);
    }
  }
}

rt_pool *rt_pool_new(int nthreads) {
  if (nthreads < 1) nthreads = 1;
  rt_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->nthreads = nthreads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->gen, 0);
  atomic_init(&p->pending, 0);
  if (nthreads > 1) {
    p->threads = calloc((size_t)nthreads - 1, sizeof *p->threads);
    p->workers = calloc((size_t)nthreads - 1, sizeof *p->workers);
    if (!p->threads || !p->workers) {
      rt_pool_free(p);
      return NULL;
    }
    for (int i = 0; i < nthreads - 1; i++) {
      p->workers[i] = (rt_worker){p, i + 1};
      if (pthread_create(&p->threads[i], NULL, rt_worker_main, &p->workers[i])) {
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
  free(p->workers);
  free(p);
}

void nncc_rt_parallel_for(void *pool, nncc_rt_kernel_fn fn, void *const *slots,
                          int64_t n) {
  rt_pool *p = pool;
  if (n <= 0) return;
  if (!p || p->nthreads <= 1 || n == 1) {
    fn(slots, 0, n);
    return;
  }
  int nchunks = n < p->nthreads ? (int)n : p->nthreads;
  pthread_mutex_lock(&p->mu);
  p->job = (rt_job){fn, slots, n, nchunks};
  atomic_store(&p->pending, nchunks - 1); /* the workers' chunks */
  atomic_fetch_add(&p->gen, 1);
  if (p->sleeping) pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);

  int64_t b, e;
  rt_chunk(n, 0, nchunks, &b, &e);
  fn(slots, b, e);

  for (int i = 0; i < RT_SPIN && atomic_load(&p->pending) != 0; i++) rt_relax();
  if (atomic_load(&p->pending) != 0) {
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
  }
}
