/* plan.h — packing buffers with known live ranges into one arena.
 *
 * The placement core shared by the compiler's memory planner
 * (lower/memplan.c, for static shapes) and the model runtime
 * (runtime/model_rt.c, which plans a model with symbolic dims once per
 * distinct input shape). It needs only libc.
 */
#ifndef NNCC_PLAN_H
#define NNCC_PLAN_H

#include <stdint.h>

/* A buffer as the planner sees it: a size and the inclusive range of steps
 * during which its bytes must be kept. */
typedef struct mp_block {
  uint64_t size;   /* bytes, a multiple of 64 */
  int32_t first;   /* first step that reads or writes it */
  int32_t last;    /* last step that reads or writes it (>= first) */
  uint64_t offset; /* out: byte offset, a multiple of 64 */
} mp_block;

/* Assigns offsets so that blocks whose step ranges intersect never share a
 * byte. Tries several greedy orders (by size, by start, by lifetime, by
 * area) with best-fit and lowest-fit placement, keeps the smallest arena,
 * then repairs it while it is above the lower bound. Returns the arena size
 * (the largest offset + size, 0 when n == 0). Deterministic. When scratch
 * memory can't be had, falls back to one region per block (always valid). */
uint64_t mp_assign(mp_block *b, int n);
/* Max over steps of the summed sizes of the blocks live at that step: no
 * assignment can use fewer bytes. 0 when scratch memory can't be had. */
uint64_t mp_lower_bound(const mp_block *b, int n);

#endif
