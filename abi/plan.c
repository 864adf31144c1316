/* plan.c — packing buffers with live ranges into one arena (plan.h).
 *
 * Two buffers whose live ranges share a step must not share a byte; others
 * may. This is interval colouring with sizes (dynamic storage allocation).
 * Greedy placement does well in practice: take the blocks in some order
 * and put each at the offset that best fits among the already placed
 * blocks it conflicts with (the smallest gap that holds it, else on top).
 * Several orders are tried — largest first, earliest first, longest-lived
 * first, largest area (bytes x steps) — with best-fit and lowest-fit gap
 * choice each, and the smallest arena wins. While it is above the lower
 * bound, a repair pass moves the block that set the arena's top to the
 * front of the order and places again (a long-lived residual over runs of
 * large short-lived buffers needs this). Ties break by block index, so the
 * plan is deterministic.
 *
 * This file is compiled into the compiler and into every model.so's
 * runtime, so it uses libc only.
 */
#include "plan.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- placement ---------------------------------------------------------- */

/* A sort key: blocks are placed by key1 descending, then key2 ascending,
 * then index ascending. */
typedef struct mp_key {
  uint64_t key1, key2;
  int idx;
} mp_key;

static int key_cmp(const void *pa, const void *pb) {
  const mp_key *a = pa, *b = pb;
  if (a->key1 != b->key1) return a->key1 > b->key1 ? -1 : 1;
  if (a->key2 != b->key2) return a->key2 < b->key2 ? -1 : 1;
  return (a->idx > b->idx) - (a->idx < b->idx);
}

static int offset_cmp(const void *pa, const void *pb) {
  const mp_block *a = *(const mp_block *const *)pa, *b = *(const mp_block *const *)pb;
  if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
  return (a->size > b->size) - (a->size < b->size);
}

static bool live_together(const mp_block *a, const mp_block *b) {
  return a->first <= b->last && b->first <= a->last;
}

enum { ORDER_SIZE, ORDER_START, ORDER_LIFETIME, ORDER_AREA, ORDER_COUNT };

static uint64_t order_key(const mp_block *b, int order, uint64_t *key2) {
  uint64_t life = (uint64_t)b->last - (uint64_t)b->first + 1; /* last >= first */
  switch (order) {
  case ORDER_SIZE: *key2 = (uint64_t)b->first; return b->size;
  case ORDER_START: *key2 = UINT64_MAX - b->size; return UINT64_MAX - (uint64_t)b->first;
  case ORDER_LIFETIME: *key2 = UINT64_MAX - b->size; return life;
  default: *key2 = (uint64_t)b->first; return b->size / 64 * life;
  }
}

/* One greedy pass: places the blocks in `order`, writing offs[i] for block
 * i; best_fit picks the tightest gap that holds a block, else the lowest.
 * Returns the arena size. `conf` has room for n pointers. */
static uint64_t place(const mp_block *b, int n, const mp_key *order, bool best_fit, uint64_t *offs,
                      mp_block *tmp, const mp_block **conf) {
  uint64_t arena = 0;
  for (int oi = 0; oi < n; oi++) {
    int i = order[oi].idx;
    tmp[i] = b[i];
    /* the placed blocks live at the same time as i, by offset */
    int nc = 0;
    for (int pj = 0; pj < oi; pj++) {
      const mp_block *o = &tmp[order[pj].idx];
      if (o->size && live_together(o, &b[i])) conf[nc++] = o;
    }
    qsort(conf, (size_t)nc, sizeof *conf, offset_cmp);
    uint64_t at = UINT64_MAX, best_gap = UINT64_MAX, top = 0;
    for (int c = 0; c < nc; c++) {
      if (conf[c]->offset >= top && conf[c]->offset - top >= b[i].size) {
        uint64_t gap = conf[c]->offset - top;
        if (at == UINT64_MAX || (best_fit && gap < best_gap)) {
          at = top;
          best_gap = gap;
        }
      }
      uint64_t end = conf[c]->offset + conf[c]->size;
      if (end > top) top = end;
    }
    if (at == UINT64_MAX) at = top;
    tmp[i].offset = offs[i] = at;
    if (at + b[i].size > arena) arena = at + b[i].size;
  }
  return arena;
}

/* Keeps offs as the plan when arena beats *best. */
static void keep(mp_block *b, int n, const uint64_t *offs, uint64_t arena, uint64_t *best) {
  if (arena >= *best) return;
  *best = arena;
  for (int i = 0; i < n; i++) b[i].offset = offs[i];
}

/* One region per block, in order: the plan when scratch memory is short. */
static uint64_t stack_all(mp_block *b, int n) {
  uint64_t top = 0;
  for (int i = 0; i < n; i++) {
    b[i].offset = top;
    top += b[i].size;
  }
  return top;
}

uint64_t mp_assign(mp_block *b, int n) {
  if (n <= 0) return 0;
  size_t un = (size_t)n;
  mp_key *order = malloc(sizeof *order * un);
  mp_key *best_order = malloc(sizeof *best_order * un);
  uint64_t *offs = malloc(sizeof *offs * un);
  mp_block *tmp = malloc(sizeof *tmp * un);
  const mp_block **conf = malloc(sizeof *conf * un);
  bool *bumped = calloc(un, sizeof *bumped);
  uint64_t best = UINT64_MAX;
  if (!order || !best_order || !offs || !tmp || !conf || !bumped) {
    best = stack_all(b, n);
    goto done;
  }
  uint64_t bound = mp_lower_bound(b, n);
  bool best_fit = true;
  for (int ord = 0; ord < ORDER_COUNT && best > bound; ord++) {
    for (int i = 0; i < n; i++) {
      order[i].key1 = order_key(&b[i], ord, &order[i].key2);
      order[i].idx = i;
    }
    qsort(order, (size_t)n, sizeof *order, key_cmp);
    for (int fit = 1; fit >= 0 && best > bound; fit--) {
      uint64_t arena = place(b, n, order, fit, offs, tmp, conf);
      if (arena < best) {
        memcpy(best_order, order, sizeof *order * (size_t)n);
        best_fit = fit;
      }
      keep(b, n, offs, arena, &best);
    }
  }
  /* Repair: the block that first reached the arena's top was placed too
   * late to find room below (typically a long-lived residual over a run of
   * large short-lived buffers, all stacked from 0). Place it first and try
   * again, each block at most once, while the plan stays above the bound
   * and the work stays modest (each pass is quadratic in n). */
  int passes = (int)(200000000 / ((int64_t)n * n + 1));
  if (passes > 64) passes = 64;
  memcpy(order, best_order, sizeof *order * (size_t)n);
  for (int it = 0; it < passes && best > bound; it++) {
    uint64_t arena = place(b, n, order, best_fit, offs, tmp, conf);
    keep(b, n, offs, arena, &best);
    int crit = 0;
    while (offs[order[crit].idx] + b[order[crit].idx].size != arena) crit++;
    if (bumped[order[crit].idx]) break;
    bumped[order[crit].idx] = true;
    mp_key k = order[crit];
    memmove(order + 1, order, sizeof *order * (size_t)crit);
    order[0] = k;
  }
done:
  free(order);
  free(best_order);
  free(offs);
  free(tmp);
  free(conf);
  free(bumped);
  return best;
}

/* ---- bounds ------------------------------------------------------------- */

typedef struct mp_event {
  int32_t step;  /* where the size enters (first) or leaves (last + 1) */
  int64_t delta; /* +size or -size; leaves sort before enters */
} mp_event;

static int event_cmp(const void *pa, const void *pb) {
  const mp_event *a = pa, *b = pb;
  if (a->step != b->step) return a->step < b->step ? -1 : 1;
  return (a->delta > b->delta) - (a->delta < b->delta);
}

uint64_t mp_lower_bound(const mp_block *b, int n) {
  if (n <= 0) return 0;
  mp_event *ev = malloc(sizeof *ev * (size_t)n * 2);
  if (!ev) return 0;
  for (int i = 0; i < n; i++) {
    ev[2 * i] = (mp_event){b[i].first, (int64_t)b[i].size};
    ev[2 * i + 1] = (mp_event){b[i].last + 1, -(int64_t)b[i].size};
  }
  qsort(ev, (size_t)n * 2, sizeof *ev, event_cmp);
  int64_t live = 0, most = 0;
  for (int i = 0; i < 2 * n; i++) {
    live += ev[i].delta;
    if (live > most) most = live;
  }
  free(ev);
  return (uint64_t)most;
}
