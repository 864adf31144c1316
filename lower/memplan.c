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
 *    memory (KP_BUF_INPUT/OUTPUT) and take no workspace.
 *  - Placement: mp_assign (abi/plan.c, shared with the model
 *    runtime, which plans models with symbolic dims per input shape).
 *  - Bounds. At any step the live buffers need their summed sizes, so the
 *    maximum of that over steps is a lower bound on every plan; the naive
 *    plan (one region per buffer) is the sum of all sizes. Both are
 *    recorded next to the arena size for --stats and --emit=kernels.
 * A buffer's step range only ever covers whole steps, so a kernel never
 * sees two of its slots overlap (no in-place reuse yet: the kernel's
 * output gets bytes disjoint from every input it reads).
 * Every size and offset is a multiple of 64 bytes.
 */
#include "lower.h"
#include "../abi/plan.h"

#include <stdlib.h>
#include <string.h>

static uint64_t round64(uint64_t n) { return (n + 63) & ~(uint64_t)63; }

/* ---- programs ----------------------------------------------------------- */

static uint64_t buf_bytes(const kp_buf *x) {
  return round64((uint64_t)x->elems * nn_dtype_size(x->dtype));
}

/* first[b] / last[b]: the step range binding buffer b, -1 when unbound. */
static void live_ranges(const kp_program *p, int32_t *first, int32_t *last) {
  for (int i = 0; i < p->bufs.len; i++) first[i] = last[i] = -1;
  for (int s = 0; s < p->steps.len; s++) {
    const kp_step *st = &p->steps.data[s];
    for (int k = 0; k < st->k->bufs.len; k++) {
      kp_bufid id = st->slots[k];
      NN_ASSERT(id >= 0 && id < p->bufs.len);
      if (first[id] < 0) first[id] = s;
      last[id] = s;
    }
  }
}

/* A dynamic program: the sizes are known only at run time, so only the
 * live ranges are recorded here; the model runtime (and kp_interp_dims)
 * calls mp_assign once per distinct shape. */
static void plan_dynamic(kp_program *p, const int32_t *first, const int32_t *last) {
  for (int i = 0; i < p->bufs.len; i++) {
    kp_buf *x = &p->bufs.data[i];
    if (x->kind != KP_BUF_WORKSPACE) continue;
    x->offset = 0;
    if (first[i] < 0) continue;
    kp_dynblock b = {.buf = i, .first = first[i], .last = last[i]};
    NN_PUSH(p->arena, p->dynblocks, b);
  }
  p->workspace_bytes = p->arena_lower_bound_bytes = p->naive_bytes = 0;
}

void kl_memplan(kp_program *p) {
  int nb = p->bufs.len;
  int32_t *first = nn_alloc(p->arena, sizeof *first * (size_t)(nb + 1));
  int32_t *last = nn_alloc(p->arena, sizeof *last * (size_t)(nb + 1));
  for (int i = 0; i < nb && !p->dynamic; i++) p->dynamic = p->bufs.data[i].elems < 0;
  if (p->dynamic) {
    live_ranges(p, first, last);
    plan_dynamic(p, first, last);
    return;
  }
  int32_t *blk = nn_alloc(p->arena, sizeof *blk * (size_t)(nb + 1));
  mp_block *b = nn_alloc(p->arena, sizeof *b * (size_t)(nb + 1));
  live_ranges(p, first, last);
  int n = 0;
  uint64_t naive = 0, unbound = 0;
  for (int i = 0; i < nb; i++) {
    kp_buf *x = &p->bufs.data[i];
    blk[i] = -1;
    if (x->kind != KP_BUF_WORKSPACE) continue;
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
  uint64_t arena = mp_assign(b, n);
  for (int i = 0; i < nb; i++)
    if (blk[i] >= 0) p->bufs.data[i].offset = b[blk[i]].offset;
  p->arena_lower_bound_bytes = mp_lower_bound(b, n);
  p->workspace_bytes = arena > unbound ? arena : unbound;
  p->naive_bytes = naive;
  NN_ASSERT(kl_memplan_ok(p));
}

bool kl_memplan_ok(const kp_program *p) {
  if (p->dynamic) return true; /* planned per shape at run time */
  int nb = p->bufs.len;
  int32_t *first = nn_alloc(p->arena, sizeof *first * (size_t)(nb + 1));
  int32_t *last = nn_alloc(p->arena, sizeof *last * (size_t)(nb + 1));
  live_ranges(p, first, last);
  bool ok = true;
  for (int i = 0; ok && i < nb; i++) {
    const kp_buf *x = &p->bufs.data[i];
    if (x->kind != KP_BUF_WORKSPACE) continue;
    uint64_t xs = buf_bytes(x);
    if (x->offset % 64 || x->offset + xs > p->workspace_bytes || x->offset + xs < x->offset)
      ok = false;
    if (first[i] < 0 || xs == 0) continue;
    for (int j = i + 1; ok && j < nb; j++) {
      const kp_buf *y = &p->bufs.data[j];
      uint64_t ys = buf_bytes(y);
      if (y->kind != KP_BUF_WORKSPACE || first[j] < 0 || ys == 0) continue;
      bool together = first[i] <= last[j] && first[j] <= last[i];
      bool overlap = x->offset < y->offset + ys && y->offset < x->offset + xs;
      if (together && overlap) ok = false;
    }
  }
  return ok;
}
