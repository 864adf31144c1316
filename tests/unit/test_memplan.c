/* test_memplan.c — workspace planning (lower/memplan.c).
 *
 * Hand-made live ranges with known optimal plans: exact offsets, the lower
 * bound and the arena; a pattern plain greedy-by-size misses (a long-lived
 * buffer over runs of large short-lived ones) that the repair pass fixes;
 * and a hand-built four-step program planned by kl_memplan, checked for its
 * exact offsets and sizes, for kl_memplan_ok (and that it catches a bad
 * offset), and run through the reference interpreter so that reused bytes
 * still give the right answer.
 */
#include "../../backends/backend.h"
#include "../../lower/lower.h"
#include "../../abi/plan.h"
#include "unit.h"

/* No two blocks live at the same step share a byte; all are 64-aligned. */
static bool disjoint(const mp_block *b, int n) {
  for (int i = 0; i < n; i++) {
    if (b[i].offset % 64) return false;
    for (int j = i + 1; j < n; j++) {
      bool together = b[i].first <= b[j].last && b[j].first <= b[i].last;
      bool overlap = b[i].offset < b[j].offset + b[j].size && b[j].offset < b[i].offset + b[i].size;
      if (together && overlap) return false;
    }
  }
  return true;
}

static uint64_t top(const mp_block *b, int n) {
  uint64_t t = 0;
  for (int i = 0; i < n; i++)
    if (b[i].offset + b[i].size > t) t = b[i].offset + b[i].size;
  return t;
}

static void test_chain(void) {
  /* a -> b -> c: a and c never meet, so they share bytes */
  mp_block b[] = {{1024, 0, 1, 0}, {1024, 1, 2, 0}, {1024, 2, 3, 0}};
  CHECK_INT(mp_lower_bound(b, 3), 2048);
  CHECK_INT(mp_assign(b, 3), 2048);
  CHECK_INT(b[0].offset, 0);
  CHECK_INT(b[1].offset, 1024);
  CHECK_INT(b[2].offset, 0);
  CHECK(disjoint(b, 3));
}

static void test_disjoint_lifetimes(void) {
  /* nothing overlaps in time: everything at 0, the arena is the largest */
  mp_block b[] = {{64, 0, 0, 7}, {640, 1, 1, 7}, {128, 2, 5, 7}, {192, 6, 6, 7}};
  CHECK_INT(mp_lower_bound(b, 4), 640);
  CHECK_INT(mp_assign(b, 4), 640);
  for (int i = 0; i < 4; i++) CHECK_INT(b[i].offset, 0);
  CHECK_INT(mp_assign(b, 0), 0);
  CHECK_INT(mp_lower_bound(b, 0), 0);
}

static void test_bound_math(void) {
  /* live sums per step: 0: 64, 1: 64+128, 2: 64+128+256, 3: 256+512,
   * 4: 512 -> the bound is 768 (step 3), not the 448 of step 2 */
  mp_block b[] = {{64, 0, 2, 0}, {128, 1, 2, 0}, {256, 2, 3, 0}, {512, 3, 4, 0}};
  CHECK_INT(mp_lower_bound(b, 4), 768);
  CHECK_INT(mp_assign(b, 4), 768);
  CHECK(disjoint(b, 4));
  /* a buffer that ends at step s and one that starts at s both count at s */
  mp_block c[] = {{64, 0, 3, 0}, {64, 3, 4, 0}};
  CHECK_INT(mp_lower_bound(c, 2), 128);
  CHECK_INT(mp_assign(c, 2), 128);
  CHECK(disjoint(c, 2));
}

/* Residual blocks R spanning a pair of large blocks L, three times over:
 * stacking every L pair from 0 (what greedy-by-size does) leaves the second
 * residual no room but on top; the optimum alternates the residuals between
 * the bottom and the top and meets the bound. */
static void test_residual_runs(void) {
  mp_block b[] = {
      {64, 4, 13, 0},   {256, 8, 9, 0},  {256, 9, 10, 0},  {64, 13, 22, 0},  {256, 17, 18, 0},
      {256, 18, 19, 0}, {64, 22, 31, 0}, {256, 26, 27, 0}, {256, 27, 28, 0},
  };
  CHECK_INT(mp_lower_bound(b, 9), 576);
  CHECK_INT(mp_assign(b, 9), 576);
  CHECK(disjoint(b, 9));
  CHECK_INT(top(b, 9), 576);
}

/* A larger random-ish case: the plan is always valid and between the
 * bound and the naive sum. */
static void test_many(void) {
  enum { N = 300 };
  mp_block b[N];
  uint64_t naive = 0, x = 12345;
  for (int i = 0; i < N; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    int first = (int)((x >> 33) % 200);
    int len = (int)((x >> 20) % 12);
    b[i] = (mp_block){64 * (1 + (x >> 45) % 50), first, first + len, 0};
    naive += b[i].size;
  }
  uint64_t lb = mp_lower_bound(b, N);
  uint64_t arena = mp_assign(b, N);
  CHECK(disjoint(b, N));
  CHECK_INT(top(b, N), arena);
  CHECK(lb <= arena && arena <= naive);
  CHECK(arena * 10 <= lb * 11); /* within 10% of the bound */
}

/* ---- a program ---------------------------------------------------------- */

static kp_bufid add(kp_program *p, kp_bufkind kind, int64_t elems, int32_t index) {
  kp_buf b = {.kind = kind,
              .dtype = NN_DT_F32,
              .elems = elems,
              .index = index,
              .offset = 4096 * (uint64_t)p->bufs.len /* stale, replanned */};
  NN_PUSH(p->arena, p->bufs, b);
  return p->bufs.len - 1;
}

/* out[i] = in[i % in_n + off] * mul + add over i < out_n, as one step. */
static void step(kp_program *p, kp_bufid out, int64_t out_n, kp_bufid in, int64_t in_n, int64_t off,
                 double mul, double addend) {
  kernel *k = k_new(p->arena, nn_sprintf(p->arena, "k%d", p->steps.len));
  int32_t o = k_buf(k, NN_DT_F32, out_n, true, "out");
  int32_t x = k_buf(k, NN_DT_F32, in_n, false, "x");
  int32_t i = k_for_begin(k, k_i64(k, 0), k_i64(k, out_n), KS_PARALLEL);
  kx_id idx = k_bin(k, KX_ADD, k_bin(k, KX_MOD, k_varref(k, i), k_i64(k, in_n - off)),
                    k_i64(k, off));
  kx_id v = k_bin(k, KX_MUL, k_load(k, x, idx), k_const_f(k, NN_DT_F32, mul));
  k_store(k, o, k_varref(k, i), k_bin(k, KX_ADD, v, k_const_f(k, NN_DT_F32, addend)));
  k_for_end(k);
  kp_bufid *slots = nn_alloc(p->arena, sizeof(kp_bufid) * 2);
  slots[o] = out;
  slots[x] = in;
  kp_step s = {.k = k, .slots = slots, .node = -1};
  NN_PUSH(p->arena, p->steps, s);
}

static void test_program(nn_arena *a) {
  kp_program *p = nn_alloc(a, sizeof *p);
  p->arena = a;
  kp_bufid x = add(p, KP_BUF_INPUT, 16, 0);
  kp_bufid t1 = add(p, KP_BUF_WORKSPACE, 16, -1);    /* steps 0..1, 64 B */
  kp_bufid t2 = add(p, KP_BUF_WORKSPACE, 32, -1);    /* steps 1..2, 128 B */
  kp_bufid t3 = add(p, KP_BUF_WORKSPACE, 16, -1);    /* steps 2..3, 64 B */
  kp_bufid unused = add(p, KP_BUF_WORKSPACE, 8, -1); /* bound by no step */
  kp_bufid out = add(p, KP_BUF_OUTPUT, 16, 0);
  step(p, t1, 16, x, 16, 0, 1, 1);   /* t1 = x + 1 */
  step(p, t2, 32, t1, 16, 0, 2, 0);  /* t2[j] = 2 * t1[j % 16] */
  step(p, t3, 16, t2, 32, 16, 2, 0); /* t3[i] = 2 * t2[16 + i] */
  step(p, out, 16, t3, 16, 0, 1, 1); /* out = t3 + 1 */
  kl_memplan(p);
  /* largest first: t2 at 0; t1 beside it; t3 meets only t2, so it takes
   * t1's bytes */
  CHECK_INT(p->bufs.data[t2].offset, 0);
  CHECK_INT(p->bufs.data[t1].offset, 128);
  CHECK_INT(p->bufs.data[t3].offset, 128);
  CHECK_INT(p->bufs.data[unused].offset, 0);
  CHECK_INT(p->workspace_bytes, 192);
  CHECK_INT(p->arena_lower_bound_bytes, 192);
  CHECK_INT(p->naive_bytes, 64 + 128 + 64 + 64);
  CHECK(kl_memplan_ok(p));

  float xin[16], res[16];
  for (int i = 0; i < 16; i++) xin[i] = (float)i;
  void *ins[] = {xin}, *outs[] = {res};
  CHECK_INT(kp_interp(p, ins, outs), 0);
  for (int i = 0; i < 16; i++) CHECK_INT((int)res[i], 4 * i + 5);

  nn_buf b = {0};
  kp_print(&b, p);
  const char *last = strstr(b.data, "memory: ");
  CHECK_STR(last, "memory: arena 192 bytes, lower bound 192, naive 320\n");

  /* the checker notices buffers that meet in time and in memory */
  p->bufs.data[t3].offset = 64;
  CHECK(!kl_memplan_ok(p));
  p->bufs.data[t3].offset = 128;
  p->bufs.data[t1].offset = 192; /* past the workspace */
  CHECK(!kl_memplan_ok(p));
  nn_buf_free(&b);
}

int main(void) {
  nn_arena *a = nn_arena_new();
  test_chain();
  test_disjoint_lifetimes();
  test_bound_math();
  test_residual_runs();
  test_many();
  test_program(a);
  nn_arena_free(a);
  return unit_report("memplan");
}
