/* memplan.c — packing a program's workspace buffers into one arena.
 *
 * The schedule gives every intermediate tensor (and every scratch buffer a
 * lowering asks for) its own workspace buffer. Most of them are dead long
 * before the program ends, so their bytes can be shared. Planning works on
 * the step list, which is the execution order:
 *  - Liveness. A workspace buffer is live from the first step that binds it
 *    (its writer) to the last step that binds it (its last reader),
 *    inclusive. A buffer no later step reads dies at its writer; a scratch
 *    buffer is bound only by its own node's steps, so it dies with the node.
 *    Views already share their input's buffer id, so one range covers the
 *    value and all its views. Graph inputs and outputs are the caller's
 *    memory (BE_BUF_INPUT/OUTPUT) and take no workspace.
 *  - Placement. Two buffers whose live ranges share a step must not share a
 *    byte; others may. This is interval colouring with sizes (dynamic
 *    storage allocation). Greedy placement does well in practice: take the
 *    buffers in some order and put each at the offset that best fits among
 *    the already placed buffers it conflicts with (the smallest gap that
 *    holds it, else on top). Several orders are tried — largest first,
 *    earliest first, longest-lived first, largest area (bytes × steps) —
 *    with best-fit and lowest-fit gap choice each, and the smallest arena
 *    wins. While it is above the lower bound, a repair pass moves the
 *    block that set the arena's top to the front of the order and places
 *    again (a long-lived residual over runs of large short-lived buffers
 *    needs this). Ties break by buffer index, so the plan is deterministic.
 *  - Bounds. At any step the live buffers need their summed sizes, so the
 *    maximum of that over steps is a lower bound on every plan; the naive
 *    plan (one region per buffer) is the sum of all sizes. Both are
 *    recorded next to the arena size for --stats and --emit=kernels.
 * A buffer's step range only ever covers whole steps, so a kernel never
 * sees two of its slots overlap (no in-place reuse yet: the kernel's
 * output gets bytes disjoint from every input it reads).
 * Every size and offset is a multiple of 64 bytes.
 */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

static uint64_t round64(uint64_t n) { return (n + 63) & ~(uint64_t)63; }

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
  uint64_t life = (uint64_t)(b->last - b->first + 1);
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
static uint64_t place(const mp_block *b, int n, const mp_key *order, bool best_fit,
                      uint64_t *offs, mp_block *tmp, const mp_block **conf) {
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

uint64_t mp_assign(mp_block *b, int n, nn_arena *a) {
  if (n <= 0) return 0;
  uint64_t bound = mp_lower_bound(b, n, a);
  mp_key *order = nn_alloc(a, sizeof *order * (size_t)n);
  mp_key *best_order = nn_alloc(a, sizeof *best_order * (size_t)n);
  uint64_t *offs = nn_alloc(a, sizeof *offs * (size_t)n);
  mp_block *tmp = nn_alloc(a, sizeof *tmp * (size_t)n);
  const mp_block **conf = nn_alloc(a, sizeof *conf * (size_t)n);
  bool *bumped = nn_alloc(a, sizeof *bumped * (size_t)n);
  uint64_t best = UINT64_MAX;
  bool best_fit = true;
  for (int ord = 0; ord < ORDER_COUNT && best > bound; ord++) {
    for (int i = 0; i < n; i++) {
      NN_ASSERT(b[i].size % 64 == 0 && b[i].first <= b[i].last);
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
  return best;
}

/* ---- bounds ------------------------------------------------------------- */

typedef struct mp_event {
  int32_t step;   /* where the size enters (first) or leaves (last + 1) */
  int64_t delta;  /* +size or -size; leaves sort before enters */
} mp_event;

static int event_cmp(const void *pa, const void *pb) {
  const mp_event *a = pa, *b = pb;
  if (a->step != b->step) return a->step < b->step ? -1 : 1;
  return (a->delta > b->delta) - (a->delta < b->delta);
}

uint64_t mp_lower_bound(const mp_block *b, int n, nn_arena *a) {
  if (n <= 0) return 0;
  mp_event *ev = nn_alloc(a, sizeof *ev * (size_t)n * 2);
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
  return (uint64_t)most;
}

/* ---- programs ----------------------------------------------------------- */

static uint64_t buf_bytes(const be_buf *x) {
  return round64((uint64_t)x->elems * nn_dtype_size(x->dtype));
}

/* first[b] / last[b]: the step range binding buffer b, -1 when unbound. */
static void live_ranges(const be_program *p, int32_t *first, int32_t *last) {
  for (int i = 0; i < p->bufs.len; i++) first[i] = last[i] = -1;
  for (int s = 0; s < p->steps.len; s++) {
    const be_step *st = &p->steps.data[s];
    for (int k = 0; k < st->k->bufs.len; k++) {
      be_bufid id = st->slots[k];
      NN_ASSERT(id >= 0 && id < p->bufs.len);
      if (first[id] < 0) first[id] = s;
      last[id] = s;
    }
  }
}

void be_memplan(be_program *p) {
  int nb = p->bufs.len;
  int32_t *first = nn_alloc(p->arena, sizeof *first * (size_t)(nb + 1));
  int32_t *last = nn_alloc(p->arena, sizeof *last * (size_t)(nb + 1));
  int32_t *blk = nn_alloc(p->arena, sizeof *blk * (size_t)(nb + 1));
  mp_block *b = nn_alloc(p->arena, sizeof *b * (size_t)(nb + 1));
  live_ranges(p, first, last);
  int n = 0;
  uint64_t naive = 0, unbound = 0;
  for (int i = 0; i < nb; i++) {
    be_buf *x = &p->bufs.data[i];
    blk[i] = -1;
    if (x->kind != BE_BUF_WORKSPACE) continue;
    uint64_t size = buf_bytes(x);
    naive += size;
    x->offset = 0;
    if (first[i] < 0) {
      /* no kernel touches it; it must still lie inside the workspace */
      if (size > unbound) unbound = size;
      continue;
    }
    if (size == 0) continue;
    blk[i] = n;
    b[n++] = (mp_block){.size = size, .first = first[i], .last = last[i]};
  }
  uint64_t arena = mp_assign(b, n, p->arena);
  for (int i = 0; i < nb; i++)
    if (blk[i] >= 0) p->bufs.data[i].offset = b[blk[i]].offset;
  p->arena_lower_bound_bytes = mp_lower_bound(b, n, p->arena);
  p->workspace_bytes = arena > unbound ? arena : unbound;
  p->naive_bytes = naive;
  NN_ASSERT(be_memplan_ok(p));
}

bool be_memplan_ok(const be_program *p) {
  int nb = p->bufs.len;
  int32_t *first = nn_alloc(p->arena, sizeof *first * (size_t)(nb + 1));
  int32_t *last = nn_alloc(p->arena, sizeof *last * (size_t)(nb + 1));
  live_ranges(p, first, last);
  bool ok = true;
  for (int i = 0; ok && i < nb; i++) {
    const be_buf *x = &p->bufs.data[i];
    if (x->kind != BE_BUF_WORKSPACE) continue;
    uint64_t xs = buf_bytes(x);
    if (x->offset % 64 || x->offset + xs > p->workspace_bytes || x->offset + xs < x->offset)
      ok = false;
    if (first[i] < 0 || xs == 0) continue;
    for (int j = i + 1; ok && j < nb; j++) {
      const be_buf *y = &p->bufs.data[j];
      uint64_t ys = buf_bytes(y);
      if (y->kind != BE_BUF_WORKSPACE || first[j] < 0 || ys == 0) continue;
      bool together = first[i] <= last[j] && first[j] <= last[i];
      bool overlap = x->offset < y->offset + ys && y->offset < x->offset + xs;
      if (together && overlap) ok = false;
    }
  }
  return ok;
}
