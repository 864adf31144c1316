/* kernel_gemm.c — gemm-like ops to kernels, and the portable GEMM expansion.
 *
 * Lowering (kl_lower_gemm). Every gemm-like op becomes one KS_GEMM statement,
 * wrapped in a loop over a flattened batch index when there is more than one
 * matrix product (bmm, broadcast matmul, images and groups of a
 * convolution). The loop computes each operand's offset from per-batch-dim
 * strides; a broadcast batch dim has stride 0. The bias field of the GEMM
 * carries linear's and convolution's bias and addmm/baddbmm's `c`.
 *
 *   linear      out[M, N] = x[M, K] @ w^T + bias. The weight is packed at
 *               compile time into w^T [K, N] (so B's columns are contiguous);
 *               a weight that is not a compile-time constant is transposed
 *               into a scratch buffer by a packing kernel first.
 *   matmul      numpy rules: 1-d operands, a batch folded into M when b is a
 *               plain matrix, batch broadcasting otherwise.
 *   convolution 1-d/2-d, non-transposed. Depthwise: a direct loop kernel.
 *               1x1 stride 1 unpadded: a GEMM on the input itself. Otherwise
 *               im2col into a scratch buffer (zeros for padded taps, computed
 *               from the window's valid range, no padded copy of the input)
 *               and a GEMM weight[Cout/g, Cin/g*kh*kw] @ col[.., Hout*Wout]
 *               per image and group.
 *
 * Epilogues (kl_lower_gemm_ep). A fused group headed by a gemm-like op
 * passes an epilogue builder: every kernel that writes the op's result
 * writes the group's result buffer instead, each element going through the
 * epilogue expression (ks_gemm.ep; for the direct depthwise convolution, a
 * pass over each finished output row). The intermediate product never
 * exists in memory.
 *
 * Expansion (k_expand_gemms). Backends without a native GEMM rewrite each
 * KS_GEMM into a blocked loop nest whose innermost loop is a VECTOR loop
 * over a fixed number (NR) of contiguous columns of C and B, inside a loop
 * over k, inside register tiles of MR rows of C; see expand_gemm() for the
 * exact structure; an epilogue runs over each macro tile of C after its
 * last K block. The reference interpreter executes KS_GEMM directly.
 */
#include "kernel.h"

#include <math.h>
#include <string.h>

/* ====================================================================== */
/* The expansion                                                          */
/* ====================================================================== */

/* Tiling of the expansion. MR x NR is the register tile (MR rows of C, NR
 * contiguous columns: 16 floats = two AVX2 or one AVX-512 vector per row);
 * MB x NB the macro tile one parallel iteration computes; KB the depth of a
 * K block (a KB x NR panel of B stays in L1 while the MR-row tiles of the
 * macro tile stream through it). */
enum {
  GEMM_MR = 6,
  GEMM_NR = 16,
  GEMM_MB = 48,  /* a multiple of MR */
  GEMM_NB = 256, /* a multiple of NR; lowered for small M to get more tiles */
  GEMM_KB = 256,
  GEMM_MIN_TILES = 32, /* macro tiles wanted for the thread pool */
};

/* State while one KS_GEMM is expanded. */
typedef struct gx {
  kernel *k;
  ks_gemm g;                /* a copy of the statement being expanded */
  int32_t aoff, boff, coff; /* I64 vars holding the operand offsets, or
                               -1 when the offset is the constant below */
  int32_t biasoff;          /* same for the bias */
  int64_t aoff_c, boff_c, coff_c, biasoff_c; /* constant offsets */
  int32_t vm, vn;                            /* tile origin (row, column) */
  int32_t va[GEMM_MR]; /* F32: alpha * A[row, k] of a tile's rows */
  int32_t vb;          /* F32: B[k, column] */
} gx;

static kx_id I(kernel *k, int64_t v) {
  return k_i64(k, v);
}
static kx_id V(kernel *k, int32_t var) {
  return k_varref(k, var);
}
static kx_id ADD(kernel *k, kx_id a, kx_id b) {
  return k_bin(k, KX_ADD, a, b);
}
static kx_id MUL(kernel *k, kx_id a, kx_id b) {
  return k_bin(k, KX_MUL, a, b);
}
static kx_id MULC(kernel *k, kx_id a, int64_t c) {
  return MUL(k, a, I(k, c));
}
static kx_id MINX(kernel *k, kx_id a, kx_id b) {
  return k_bin(k, KX_MIN, a, b);
}
static kx_id MAXX(kernel *k, kx_id a, kx_id b) {
  return k_bin(k, KX_MAX, a, b);
}
static kx_id F(kernel *k, double v) {
  return k_const_f(k, NN_DT_F32, v);
}

/* A fresh I64 variable set to e. */
static int32_t let_i64(kernel *k, kx_id e) {
  int32_t v = k_var(k, NN_DT_I64);
  k_let(k, v, e);
  return v;
}

/* An offset: variable `var`, or constant c when var is -1. */
static kx_id OFF(kernel *k, int32_t var, int64_t c) {
  return var >= 0 ? V(k, var) : I(k, c);
}

/* Element index of C[m, n], A[m, kk], B[kk, n], bias[m, n]. */
static kx_id c_idx(gx *x, kx_id m, kx_id n) {
  kernel *k = x->k;
  return ADD(k, ADD(k, OFF(k, x->coff, x->coff_c), MULC(k, m, x->g.ldc)), n);
}
static kx_id a_val(gx *x, kx_id m, kx_id kk) {
  kernel *k = x->k;
  kx_id idx = ADD(k, ADD(k, OFF(k, x->aoff, x->aoff_c), MULC(k, m, x->g.a_rs)),
                  MULC(k, kk, x->g.a_cs));
  kx_id v = k_cast(k, NN_DT_F32, k_load(k, x->g.a, idx));
  return x->g.alpha == 1.0f ? v : MUL(k, F(k, x->g.alpha), v);
}
static kx_id b_val(gx *x, kx_id kk, kx_id n) {
  kernel *k = x->k;
  kx_id idx = ADD(k, ADD(k, OFF(k, x->boff, x->boff_c), MULC(k, kk, x->g.b_rs)),
                  MULC(k, n, x->g.b_cs));
  return k_cast(k, NN_DT_F32, k_load(k, x->g.b, idx));
}
static kx_id bias_val(gx *x, kx_id m, kx_id n) {
  kernel *k = x->k;
  kx_id idx =
      ADD(k, ADD(k, OFF(k, x->biasoff, x->biasoff_c), MULC(k, m, x->g.bias_rs)),
          MULC(k, n, x->g.bias_cs));
  kx_id v = k_cast(k, NN_DT_F32, k_load(k, x->g.bias, idx));
  return x->g.beta == 1.0f ? v : MUL(k, F(k, x->g.beta), v);
}

/* The value C[m, n] starts from before the products are accumulated:
 * (accumulate ? C : 0) + beta * bias. Returns -1 when C needs no init
 * (accumulate without a bias). */
static kx_id init_val(gx *x, kx_id m, kx_id n) {
  kernel *k = x->k;
  kx_id v = x->g.accumulate ? k_load(k, x->g.c, c_idx(x, m, n)) : -1;
  if (x->g.bias >= 0) {
    kx_id b = bias_val(x, m, n);
    v = v < 0 ? b : ADD(k, v, b);
  }
  if (v < 0 && !x->g.accumulate)
    v = F(k, 0.0);
  return v;
}

/* The register tile: C[m0+i, n0+j] += alpha*A[m0+i, kk]*B[kk, n0+j] for
 * i < mr, j < nr, kk in [k0, k1), with m0, n0 given as expressions and
 * k0/k1 as variables:
 *   vm = m0; vn = n0
 *   for kk in [k0, k1):
 *     a_i = alpha * A[vm+i, kk]                 (i < mr)
 *     VECTOR for j in [0, nr):
 *       b = B[kk, vn+j]
 *       C[vm+i, vn+j] = C[vm+i, vn+j] + a_i*b   (i < mr)  */
static void emit_tile(gx *x, kx_id m0, int mr, kx_id n0, int64_t nr, int32_t k0,
                      int32_t k1) {
  kernel *k = x->k;
  k_let(k, x->vm, m0);
  k_let(k, x->vn, n0);
  int32_t kk = k_for_begin(k, V(k, k0), V(k, k1), 0);
  for (int i = 0; i < mr; i++)
    k_let(k, x->va[i], a_val(x, ADD(k, V(k, x->vm), I(k, i)), V(k, kk)));
  int32_t j = k_for_begin(k, I(k, 0), I(k, nr), KS_VECTOR);
  k_let(k, x->vb, b_val(x, V(k, kk), ADD(k, V(k, x->vn), V(k, j))));
  for (int i = 0; i < mr; i++) {
    kx_id idx =
        c_idx(x, ADD(k, V(k, x->vm), I(k, i)), ADD(k, V(k, x->vn), V(k, j)));
    kx_id prod = MUL(k, V(k, x->va[i]), V(k, x->vb));
    k_store(k, x->g.c, idx, ADD(k, k_load(k, x->g.c, idx), prod));
  }
  k_for_end(k);
  k_for_end(k);
}

/* N == 1 (matrix-vector): one dot product per row, reduced over k. */
static void expand_gemv(gx *x, unsigned outer_flags) {
  kernel *k = x->k;
  const ks_gemm *g = &x->g;
  int32_t acc = k_var(k, NN_DT_F32);
  int32_t m = k_for_begin(k, I(k, 0), I(k, g->m), outer_flags);
  k_let(k, acc, F(k, 0.0));
  int32_t kk = k_for_begin(k, I(k, 0), I(k, g->k), KS_REDUCE);
  kx_id prod = MUL(
      k,
      k_cast(k, NN_DT_F32,
             k_load(k, g->a,
                    ADD(k,
                        ADD(k, OFF(k, x->aoff, x->aoff_c), MULC(k, V(k, m), g->a_rs)),
                        MULC(k, V(k, kk), g->a_cs)))),
      b_val(x, V(k, kk), I(k, 0)));
  k_let(k, acc, ADD(k, V(k, acc), prod));
  k_for_end(k);
  kx_id v = V(k, acc);
  if (g->alpha != 1.0f)
    v = MUL(k, F(k, g->alpha), v);
  kx_id init = init_val(x, V(k, m), I(k, 0));
  if (init >= 0)
    v = ADD(k, init, v);
  kx_id idx = c_idx(x, V(k, m), I(k, 0));
  if (g->epilogue) {
    k_let(k, g->ep_acc, v);
    k_let(k, g->ep_idx, idx);
    v = g->ep;
  }
  k_store(k, g->c, idx, v);
  k_for_end(k);
}

/* The epilogue over the macro tile rows [r0, r1) x columns [c0, c1) of C,
 * once its last K block is done: C[m, n] = ep(C[m, n]). */
static void emit_epilogue(gx *x, kx_id r0, kx_id r1, kx_id c0, kx_id c1) {
  kernel *k = x->k;
  const ks_gemm *g = &x->g;
  int32_t m = k_for_begin(k, r0, r1, 0);
  int32_t n = k_for_begin(k, c0, c1, KS_VECTOR);
  kx_id idx = c_idx(x, V(k, m), V(k, n));
  k_let(k, g->ep_idx, idx);
  k_let(k, g->ep_acc, k_load(k, g->c, idx));
  k_store(k, g->c, idx, g->ep);
  k_for_end(k);
  k_for_end(k);
}

/* Emits the loop nest for x->g at the current position of the builder:
 *
 *   [PARALLEL] for t in [0, nMB*nNB):          macro tile (mb, nb) = t / nNB, t
 * % nNB rows [r0, r1) = [mb*MB, min(r0+MB, M)), columns [c0, c1) likewise for m
 * in [r0, r1): VECTOR for n in [c0, c1): C[m, n] = init   (if any) for kb in
 * [0, ceil(K/KB)): k0 = kb*KB; k1 = min(k0+KB, K) for nt over the full
 * NR-column tiles of the macro tile: for mt over the full MR-row tiles: tile(MR
 * x NR) if the macro tile holds the M % MR tail rows: tile(M%MR x NR) if the
 * macro tile holds the N % NR tail columns: same with NR replaced by N % NR
 *
 * Every VECTOR loop has a constant trip count (NR or N % NR), so the
 * innermost loop vectorizes without a remainder. */
static void expand_gemm(gx *x, unsigned outer_flags) {
  kernel *k = x->k;
  const ks_gemm *g = &x->g;
  int64_t M = g->m, N = g->n, K = g->k;
  if (M <= 0 || N <= 0)
    return;
  if (N == 1) {
    expand_gemv(x, outer_flags);
    return;
  }
  int64_t rt_full = M / GEMM_MR, mtail = M % GEMM_MR;
  int64_t ct_full = N / GEMM_NR, ntail = N % GEMM_NR;
  int64_t mbt = GEMM_MB / GEMM_MR; /* row tiles per macro tile */
  int64_t nmb = (M + GEMM_MB - 1) / GEMM_MB;
  int64_t ct = (N + GEMM_NR - 1) / GEMM_NR;
  /* column tiles per macro tile: at most NB/NR, fewer (down to 4) when M
   * alone gives too few macro tiles */
  int64_t nbt = GEMM_NB / GEMM_NR;
  if (nmb < GEMM_MIN_TILES) {
    int64_t want = (GEMM_MIN_TILES + nmb - 1) / nmb; /* column blocks wanted */
    int64_t t = (ct + want - 1) / want;
    nbt = t < 4 ? 4 : t > nbt ? nbt : t;
  }
  int64_t nnb = (ct + nbt - 1) / nbt;
  int64_t nkb = (K + GEMM_KB - 1) / GEMM_KB;

  int32_t t = k_for_begin(k, I(k, 0), I(k, nmb * nnb), outer_flags);
  int32_t mb = let_i64(k, k_bin(k, KX_DIV, V(k, t), I(k, nnb)));
  int32_t nb = let_i64(k, k_bin(k, KX_MOD, V(k, t), I(k, nnb)));

  /* the macro tile: rows [r0, r1), columns [c0, c1) */
  kx_id r0 = MULC(k, V(k, mb), GEMM_MB);
  kx_id r1 =
      MINX(k, ADD(k, MULC(k, V(k, mb), GEMM_MB), I(k, GEMM_MB)), I(k, M));
  kx_id c0 = MULC(k, V(k, nb), nbt * GEMM_NR);
  kx_id c1 =
      MINX(k, ADD(k, MULC(k, V(k, nb), nbt * GEMM_NR), I(k, nbt * GEMM_NR)),
           I(k, N));
  /* init of the macro tile (nothing to do when accumulating without bias) */
  if (!g->accumulate || g->bias >= 0) {
    int32_t m = k_for_begin(k, r0, r1, 0);
    int32_t n = k_for_begin(k, c0, c1, KS_VECTOR);
    k_store(k, g->c, c_idx(x, V(k, m), V(k, n)), init_val(x, V(k, m), V(k, n)));
    k_for_end(k);
    k_for_end(k);
  }

  int32_t kb = k_for_begin(k, I(k, 0), I(k, nkb), 0);
  int32_t k0 = let_i64(k, MULC(k, V(k, kb), GEMM_KB));
  int32_t k1 = let_i64(k, MINX(k, ADD(k, V(k, k0), I(k, GEMM_KB)), I(k, K)));
  for (int pass = 0; pass < 2; pass++) {
    int64_t nr = pass == 0 ? GEMM_NR : ntail;
    if (nr == 0)
      continue;
    int32_t nt = -1;
    if (pass == 0) {
      kx_id lo = MULC(k, V(k, nb), nbt);
      kx_id hi =
          MINX(k, ADD(k, MULC(k, V(k, nb), nbt), I(k, nbt)), I(k, ct_full));
      nt = k_for_begin(k, lo, MAXX(k, lo, hi), 0);
    } else {
      k_if_begin(k, k_bin(k, KX_EQ, V(k, nb), I(k, ct_full / nbt)));
    }
    {
      kx_id lo = MULC(k, V(k, mb), mbt);
      kx_id hi =
          MINX(k, ADD(k, MULC(k, V(k, mb), mbt), I(k, mbt)), I(k, rt_full));
      int32_t mt = k_for_begin(k, lo, MAXX(k, lo, hi), 0);
      kx_id n0 =
          pass == 0 ? MULC(k, V(k, nt), GEMM_NR) : I(k, ct_full * GEMM_NR);
      emit_tile(x, MULC(k, V(k, mt), GEMM_MR), GEMM_MR, n0, nr, k0, k1);
      k_for_end(k);
    }
    if (mtail) {
      k_if_begin(k, k_bin(k, KX_EQ, V(k, mb), I(k, rt_full / mbt)));
      kx_id n0 =
          pass == 0 ? MULC(k, V(k, nt), GEMM_NR) : I(k, ct_full * GEMM_NR);
      emit_tile(x, I(k, rt_full * GEMM_MR), (int)mtail, n0, nr, k0, k1);
      k_if_end(k);
    }
    if (pass == 0)
      k_for_end(k);
    else
      k_if_end(k);
  }
  k_for_end(k); /* kb */
  if (g->epilogue)
    emit_epilogue(x, r0, r1, c0, c1);
  k_for_end(k); /* t */
}

/* Expands statement s (a KS_GEMM) at the builder's current position (the
 * root; the caller moves the new statements where s was). */
static void expand_stmt(kernel *k, ks_id s, bool parallel) {
  gx x = {.k = k, .g = k->stmts.data[s].gemm};
  const kx_id offs[4] = {x.g.a_off, x.g.b_off, x.g.c_off,
                         x.g.bias >= 0 ? x.g.bias_off : -1};
  int32_t *vars[4] = {&x.aoff, &x.boff, &x.coff, &x.biasoff};
  int64_t *consts[4] = {&x.aoff_c, &x.boff_c, &x.coff_c, &x.biasoff_c};
  for (int i = 0; i < 4; i++) {
    const kx *e = offs[i] >= 0 ? &k->exprs.data[offs[i]] : NULL;
    *vars[i] = -1;
    *consts[i] = 0;
    if (e && e->op == KX_CONST) {
      *consts[i] = e->i;
    } else if (e) {
      *vars[i] = let_i64(k, offs[i]);
      parallel = false; /* the root is no longer the loop alone */
    }
  }
  x.vm = k_var(k, NN_DT_I64);
  x.vn = k_var(k, NN_DT_I64);
  for (int i = 0; i < GEMM_MR; i++)
    x.va[i] = k_var(k, NN_DT_F32);
  x.vb = k_var(k, NN_DT_F32);
  expand_gemm(&x, parallel ? KS_PARALLEL : 0);
}

/* Rewrites the GEMMs inside the bodies of statement s (recursively). The
 * expansion is built at the root, then moved into the body. */
static void rewrite_children(kernel *k, ks_id s);

static void rewrite_block(kernel *k, ks_id **body, int *n) {
  NN_VEC(ks_id) out = {0};
  for (int i = 0; i < *n; i++) {
    ks_id id = (*body)[i];
    if (k->stmts.data[id].kind == KS_GEMM) {
      int mark = k->root.len;
      expand_stmt(k, id, false);
      for (int j = mark; j < k->root.len; j++)
        NN_PUSH(k->arena, out, k->root.data[j]);
      k->root.len = mark;
    } else {
      rewrite_children(k, id);
      NN_PUSH(k->arena, out, id);
    }
  }
  *body = out.data;
  *n = out.len;
}

static void rewrite_children(kernel *k, ks_id s) {
  ks_kind kind = k->stmts.data[s].kind;
  if (kind != KS_FOR && kind != KS_IF)
    return;
  /* work on copies: building statements may move k->stmts */
  ks_id *body = k->stmts.data[s].body, *els = k->stmts.data[s].els;
  int nbody = k->stmts.data[s].nbody, nels = k->stmts.data[s].nels;
  rewrite_block(k, &body, &nbody);
  if (kind == KS_IF)
    rewrite_block(k, &els, &nels);
  k->stmts.data[s].body = body;
  k->stmts.data[s].nbody = nbody;
  k->stmts.data[s].els = els;
  k->stmts.data[s].nels = nels;
}

void k_expand_gemms(kernel *k) {
  NN_ASSERT(k->open.len == 0);
  int n = k->root.len;
  ks_id *old = nn_alloc(k->arena, sizeof(ks_id) * (size_t)(n + 1));
  memcpy(old, k->root.data, sizeof(ks_id) * (size_t)n);
  bool only = n == 1;
  k->root.len = 0;
  for (int i = 0; i < n; i++) {
    if (k->stmts.data[old[i]].kind == KS_GEMM) {
      expand_stmt(k, old[i], only);
    } else {
      rewrite_children(k, old[i]);
      NN_PUSH(k->arena, k->root, old[i]);
    }
  }
}

/* ====================================================================== */
/* Lowering                                                               */
/* ====================================================================== */

/* One batched GEMM kernel: the template `g` (sizes, strides, alpha, beta,
 * bias strides over m/n) run for every index of a batch of `nbatch` dims;
 * each operand's offset is base + sum_d index_d * stride_d. */
typedef struct gspec {
  ks_gemm g; /* template; slots and offsets are set here */
  be_bufid abuf, bbuf, cbuf, biasbuf; /* program buffers (biasbuf -1: none) */
  int64_t aelems, belems, celems, biaselems;         /* their element counts */
  int nbatch;                                        /* batch dims */
  int64_t bdims[16];                                 /* batch sizes */
  int64_t astr[16], bstr[16], cstr[16], biasstr[16]; /* per batch dim */
  int64_t a0, b0, c0, bias0;                         /* base offsets */
  const kl_epilogue *ep; /* applied to every element of C, or NULL */
  nn_dtype dt;           /* dtype of A, B, bias and C (F32, F16 or BF16);
                            products are accumulated in f32 all the same */
} gspec;

static int64_t prod(const int64_t *d, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    p *= d[i];
  return p;
}

/* base + sum_d ((bi / inner_d) % bdims[d]) * str[d] for the batch index
 * variable bi. */
static kx_id batch_off(kernel *k, const gspec *s, int32_t bi,
                       const int64_t *str, int64_t base) {
  kx_id e = I(k, base);
  int64_t inner = 1;
  for (int d = s->nbatch - 1; d >= 0; d--) {
    if (str[d] != 0 && s->bdims[d] > 1) {
      kx_id idx =
          inner == 1 ? V(k, bi) : k_bin(k, KX_DIV, V(k, bi), I(k, inner));
      if (d > 0)
        idx = k_bin(k, KX_MOD, idx, I(k, s->bdims[d]));
      e = ADD(k, e, MULC(k, idx, str[d]));
    }
    inner *= s->bdims[d];
  }
  return e;
}

/* A kernel for the node being lowered, named after `what` and, with an
 * epilogue, after the fused ops too ("conv_gemm_add_relu"). */
static kernel *new_kernel(kl_ctx *c, const char *what, const kl_epilogue *ep) {
  if (ep && ep->name && ep->name[0])
    what = nn_sprintf(kl_arena(c), "%s_%s", what, ep->name);
  return kl_kernel(c, what);
}

/* 16-bit C (s->dt F16/BF16): the second kernel, rounding the f32 products
 * in acc into C through the epilogue:
 *   [PARALLEL for bi in batch:] PARALLEL-or-serial for m: VECTOR for n:
 *     out[c_off + m*ldc + n] = round(ep(acc[same index]))  */
static int emit_round_kernel(kl_ctx *c, const gspec *s, be_bufid acc) {
  kernel *k = new_kernel(c, "gemm_round", s->ep);
  int32_t a = k_buf(k, NN_DT_F32, s->celems, false, "acc");
  int32_t o = k_buf(k, s->dt, s->celems, true, "out");
  kl_bind(c, k, a, acc);
  kl_bind(c, k, o, s->cbuf);
  int32_t ep_acc = -1, ep_idx = -1;
  kx_id ep = -1;
  if (s->ep) { /* expressions only: built before any statement */
    ep_acc = k_var(k, NN_DT_F32);
    ep_idx = k_var(k, NN_DT_I64);
    ep = s->ep->build(s->ep->ctx, k, V(k, ep_acc), V(k, ep_idx));
    if (ep < 0)
      return -1;
  }
  int64_t nb = prod(s->bdims, s->nbatch);
  int32_t bi = -1;
  if (nb > 1)
    bi = k_for_begin(k, I(k, 0), I(k, nb), KS_PARALLEL);
  kx_id coff = bi >= 0 ? batch_off(k, s, bi, s->cstr, s->c0) : I(k, s->c0);
  int32_t m = k_for_begin(k, I(k, 0), I(k, s->g.m), bi >= 0 ? 0 : KS_PARALLEL);
  int32_t n = k_for_begin(k, I(k, 0), I(k, s->g.n), KS_VECTOR);
  kx_id idx = ADD(k, ADD(k, coff, MULC(k, V(k, m), s->g.ldc)), V(k, n));
  kx_id v = k_load(k, a, idx);
  if (ep >= 0) {
    k_let(k, ep_idx, idx);
    k_let(k, ep_acc, v);
    v = ep;
  }
  k_store(k, o, idx, k_cast(k, s->dt, v));
  k_for_end(k);
  k_for_end(k);
  if (bi >= 0)
    k_for_end(k);
  return 0;
}

/* Emits the kernel(s); returns 0, or -1 when the epilogue failed
 * (reported). Products are accumulated in f32: A, B and the bias are
 * widened as they are loaded; a 16-bit C is accumulated in an f32 scratch
 * of C's layout and rounded by a second kernel (emit_round_kernel). */
static int emit_gemm_kernel(kl_ctx *c, const char *what, const gspec *s) {
  bool narrow = s->dt != NN_DT_F32;
  kernel *k = new_kernel(c, what, narrow ? NULL : s->ep);
  ks_gemm g = s->g;
  be_bufid cbuf = narrow ? kl_scratch(c, NN_DT_F32, s->celems) : s->cbuf;
  g.a = k_buf(k, s->dt, s->aelems, false, "a");
  g.b = k_buf(k, s->dt, s->belems, false, "b");
  g.c = k_buf(k, NN_DT_F32, s->celems, true, narrow ? "acc" : "out");
  kl_bind(c, k, g.a, s->abuf);
  kl_bind(c, k, g.b, s->bbuf);
  kl_bind(c, k, g.c, cbuf);
  g.bias = -1;
  if (s->biasbuf >= 0) {
    g.bias = k_buf(k, s->dt, s->biaselems, false, "bias");
    kl_bind(c, k, g.bias, s->biasbuf);
  }
  if (s->ep && !narrow) { /* expressions only: built before any statement */
    g.epilogue = true;
    g.ep_acc = k_var(k, NN_DT_F32);
    g.ep_idx = k_var(k, NN_DT_I64);
    g.ep = s->ep->build(s->ep->ctx, k, V(k, g.ep_acc), V(k, g.ep_idx));
    if (g.ep < 0)
      return -1;
  }
  int64_t nb = prod(s->bdims, s->nbatch);
  int32_t bi = -1;
  if (nb > 1)
    bi = k_for_begin(k, I(k, 0), I(k, nb), KS_PARALLEL);
  if (bi >= 0) {
    g.a_off = batch_off(k, s, bi, s->astr, s->a0);
    g.b_off = batch_off(k, s, bi, s->bstr, s->b0);
    g.c_off = batch_off(k, s, bi, s->cstr, s->c0);
    g.bias_off = g.bias >= 0 ? batch_off(k, s, bi, s->biasstr, s->bias0) : -1;
  } else {
    g.a_off = I(k, s->a0);
    g.b_off = I(k, s->b0);
    g.c_off = I(k, s->c0);
    g.bias_off = g.bias >= 0 ? I(k, s->bias0) : -1;
  }
  if (nb > 0)
    k_gemm(k, &g);
  if (bi >= 0)
    k_for_end(k);
  /* Backends take KS_GEMM with f32 operands only: a 16-bit GEMM is
   * expanded here (the loads in the expansion widen A, B and the bias). */
  if (narrow) {
    k_expand_gemms(k);
    /* the GEMM statement is no longer reachable; make it an inert LET so
     * that no backend takes the kernel for one with a GEMM left */
    int32_t dead = k_var(k, NN_DT_I64);
    kx_id zero = I(k, 0);
    for (int i = 0; i < k->stmts.len; i++)
      if (k->stmts.data[i].kind == KS_GEMM) {
        ks *st = &k->stmts.data[i];
        memset(st, 0, sizeof *st);
        st->kind = KS_LET;
        st->var = dead;
        st->val = zero;
      }
  }
  if (narrow && nb > 0)
    return emit_round_kernel(c, s, cbuf);
  return 0;
}

/* ---- operands ------------------------------------------------------------ */

typedef struct lctx {
  kl_ctx *c;
  ir_graph *g;
  ir_node *node;
  nn_loc loc;
  const kl_epilogue *ep; /* fused epilogue, or NULL */
  nn_dtype dt;           /* the node's float dtype: every tensor operand and
                            the result have it (F32, F16 or BF16) */
} lctx;

/* Where the node's result goes: its own buffer, or the fused group's. */
static be_bufid result_buf(const lctx *l) {
  return l->ep ? l->ep->out : kl_value_buf(l->c, l->node->out[0]);
}

static bool is_none(const lctx *l, ir_value v) {
  return v == IR_NOVAL || ir_vtype(l->g, v)->kind == IR_T_NONE;
}

/* Shape of a tensor operand of the node's dtype; -1 after reporting. */
static int tensor_shape(const lctx *l, ir_value v, int64_t *dims) {
  const ir_type *t = ir_vtype(l->g, v);
  if (t->kind == IR_T_TENSOR && t->dtype != NN_DT_UNKNOWN &&
      ((l->dt != NN_DT_F32 && l->dt != NN_DT_F16 && l->dt != NN_DT_BF16) ||
       t->dtype != l->dt)) {
    nn_error(kl_diag(l->c), l->loc,
             "'%s' on %s tensors with a %s result is not supported by the CPU "
             "backend (f32, f16 or bf16 throughout)",
             ir_ops[l->node->op].name, nn_dtype_name(t->dtype), nn_dtype_name(l->dt));
    return -1;
  }
  return kl_shape(l->c, v, dims);
}

/* A number operand (int, float or bool constant). */
static int scalar_arg(const lctx *l, ir_value v, double *out) {
  const ir_const *k;
  if (ir_value_const(l->g, v, &k)) {
    if (k->kind == IR_C_INT || k->kind == IR_C_BOOL) {
      *out = (double)k->i;
      return 0;
    }
    if (k->kind == IR_C_FLOAT) {
      *out = k->f;
      return 0;
    }
  }
  nn_error(kl_diag(l->c), l->loc,
           "'%s' needs a constant number for its scalar operands",
           ir_ops[l->node->op].name);
  return -1;
}

/* An int list operand with 1 or n elements, spread to n. */
static int int_list_arg(const lctx *l, ir_value v, int n, const char *what,
                        int64_t *out) {
  const ir_const *k;
  if (ir_value_const(l->g, v, &k) && k->kind == IR_C_INTLIST &&
      (k->n == 1 || k->n == n)) {
    for (int i = 0; i < n; i++)
      out[i] = k->ints[k->n == 1 ? 0 : i];
    return 0;
  }
  if (ir_value_const(l->g, v, &k) && k->kind == IR_C_INT) {
    for (int i = 0; i < n; i++)
      out[i] = k->i;
    return 0;
  }
  nn_error(kl_diag(l->c), l->loc,
           "convolution: %s must be a constant list of 1 or %d ints", what, n);
  return -1;
}

static int shape_error(const lctx *l, const char *why) {
  nn_error(kl_diag(l->c), l->loc, "'%s': %s", ir_ops[l->node->op].name, why);
  return -1;
}

/* Strides of a tensor of dims[rank] broadcast to `trank` dims (right
 * aligned): 0 for missing and size-1 dims. */
static void bcast_strides(const int64_t *dims, int rank, int trank,
                          int64_t *str) {
  int64_t s = 1;
  for (int i = trank - 1; i >= 0; i--) {
    int d = i - (trank - rank);
    if (d < 0 || dims[d] == 1)
      str[i] = 0;
    else {
      str[i] = s;
      s *= dims[d];
    }
  }
}

/* Checks that dims[rank] broadcasts to target[trank]. */
static bool broadcasts_to(const int64_t *dims, int rank, const int64_t *target,
                          int trank) {
  if (rank > trank)
    return false;
  for (int i = 0; i < rank; i++) {
    int64_t d = dims[i], t = target[trank - rank + i];
    if (d != 1 && d != t)
      return false;
  }
  return true;
}

static gspec gspec_new(const kl_epilogue *ep, nn_dtype dt) {
  gspec s;
  memset(&s, 0, sizeof s);
  s.dt = dt;
  s.biasbuf = -1;
  s.g.alpha = 1.0f;
  s.g.beta = 1.0f;
  s.g.bias = -1;
  s.g.a_off = s.g.b_off = s.g.c_off = s.g.bias_off = -1;
  s.ep = ep;
  return s;
}

/* ---- linear ----------------------------------------------------------------
 */

/* B operand for x @ w^T with w [N, K]: w^T [K, N] with contiguous columns.
 * A weight is transposed at compile time; anything else by a kernel into a
 * scratch buffer. Sets bbuf, belems, b_rs, b_cs, b_is_weight. */
static void transposed_b(const lctx *l, ir_value w, int64_t N, int64_t K,
                         gspec *s) {
  kl_ctx *c = l->c;
  s->belems = N * K;
  s->g.b_rs = N;
  s->g.b_cs = 1;
  if (N == 1) { /* w^T [K, 1] is w itself */
    s->bbuf = kl_value_buf(c, w);
    s->g.b_is_weight = kl_weight_data(c, w) != NULL;
    return;
  }
  const unsigned char *wd = kl_weight_data(c, w);
  size_t es = nn_dtype_size(s->dt);
  if (wd) {
    /* copy out first: kl_const_buf may move the blob wd points into */
    unsigned char *t = nn_alloc(kl_arena(c), es * (size_t)(N * K));
    for (int64_t n = 0; n < N; n++)
      for (int64_t kk = 0; kk < K; kk++)
        memcpy(t + (size_t)(kk * N + n) * es, wd + (size_t)(n * K + kk) * es, es);
    s->bbuf = kl_const_buf(c, s->dt, t, N * K);
    s->g.b_is_weight = true;
    return;
  }
  be_bufid wt = kl_scratch(c, s->dt, N * K);
  kernel *k = kl_kernel(c, "pack_transpose");
  int32_t dst = k_buf(k, s->dt, N * K, true, "wt");
  int32_t src = k_buf(k, s->dt, N * K, false, "w");
  kl_bind(c, k, dst, wt);
  kl_bind(c, k, src, kl_value_buf(c, w));
  int32_t kk = k_for_begin(k, I(k, 0), I(k, K), KS_PARALLEL);
  int32_t n = k_for_begin(k, I(k, 0), I(k, N), KS_VECTOR);
  k_store(k, dst, ADD(k, MULC(k, V(k, kk), N), V(k, n)),
          k_load(k, src, ADD(k, MULC(k, V(k, n), K), V(k, kk))));
  k_for_end(k);
  k_for_end(k);
  s->bbuf = wt;
  s->g.b_is_weight = false;
}

static int lower_linear(const lctx *l) {
  int64_t xd[16], wd[16], bd[16], od[16];
  ir_value x = l->node->in[0], w = l->node->in[1], b = l->node->in[2];
  int xr = tensor_shape(l, x, xd), wr = tensor_shape(l, w, wd);
  int orank = tensor_shape(l, l->node->out[0], od);
  if (xr < 0 || wr < 0 || orank < 0)
    return -1;
  if (xr < 1 || wr != 2 || wd[1] != xd[xr - 1])
    return shape_error(l, "expects x[..., K] and w[N, K]");
  int64_t K = wd[1], N = wd[0], M = prod(xd, xr - 1);
  if (prod(od, orank) != M * N)
    return shape_error(l, "result shape does not match");
  gspec s = gspec_new(l->ep, l->dt);
  s.g.m = M;
  s.g.n = N;
  s.g.k = K;
  s.abuf = kl_value_buf(l->c, x);
  s.aelems = M * K;
  s.g.a_rs = K;
  s.g.a_cs = 1;
  transposed_b(l, w, N, K, &s);
  s.cbuf = result_buf(l);
  s.celems = M * N;
  s.g.ldc = N;
  if (!is_none(l, b)) {
    int br = tensor_shape(l, b, bd);
    if (br < 0)
      return -1;
    if (!broadcasts_to(bd, br, &N, 1))
      return shape_error(l, "bias must have N elements");
    s.biasbuf = kl_value_buf(l->c, b);
    s.biaselems = prod(bd, br);
    s.g.bias_rs = 0;
    s.g.bias_cs = br == 1 && bd[0] == N && N > 1 ? 1 : 0;
  }
  return emit_gemm_kernel(l->c, "linear", &s) < 0 ? -1 : 1;
}

/* ---- addmm / mm / bmm / baddbmm / matmul
 * --------------------------------------- */

/* Sets the bias of a (batched) product from `c` broadcast to
 * [batch..., M, N] (nbatch batch dims in s), scaled by beta. */
static int set_addend(const lctx *l, ir_value cv, double beta, gspec *s) {
  if (beta == 0.0)
    return 0; /* beta == 0 ignores c entirely */
  int64_t cd[16], target[18], str[18];
  int cr = tensor_shape(l, cv, cd);
  if (cr < 0)
    return -1;
  int tr = s->nbatch + 2;
  memcpy(target, s->bdims, sizeof(int64_t) * (size_t)s->nbatch);
  target[tr - 2] = s->g.m;
  target[tr - 1] = s->g.n;
  if (!broadcasts_to(cd, cr, target, tr))
    return shape_error(
        l, "the added tensor does not broadcast to the product's shape");
  bcast_strides(cd, cr, tr, str);
  s->biasbuf = kl_value_buf(l->c, cv);
  s->biaselems = prod(cd, cr);
  memcpy(s->biasstr, str, sizeof(int64_t) * (size_t)s->nbatch);
  s->g.bias_rs = str[tr - 2];
  s->g.bias_cs = str[tr - 1];
  s->g.beta = (float)beta;
  return 0;
}

/* a [batch_a..., M, K] @ b [batch_b..., K, N] with the batch dims
 * broadcast (either list may be empty). */
static int batched_product(const lctx *l, ir_value a, const int64_t *ad, int ar,
                           ir_value b, const int64_t *bd, int br, gspec *s) {
  int nba = ar - 2, nbb = br - 2;
  int nb = nba > nbb ? nba : nbb;
  if (nb > 14)
    return shape_error(l, "too many batch dims");
  int64_t M = ad[ar - 2], K = ad[ar - 1], N = bd[br - 1];
  if (bd[br - 2] != K)
    return shape_error(l, "inner dims of the product differ");
  s->nbatch = nb;
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - nba), ib = i - (nb - nbb);
    int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return shape_error(l, "batch dims do not broadcast");
    s->bdims[i] = da > db ? da : db;
  }
  bcast_strides(ad, nba, nb, s->astr);
  bcast_strides(bd, nbb, nb, s->bstr);
  for (int i = 0; i < nb; i++) {
    s->astr[i] *= M * K;
    s->bstr[i] *= K * N;
  }
  int64_t cs = M * N;
  for (int i = nb - 1; i >= 0; i--) {
    s->cstr[i] = cs;
    cs *= s->bdims[i];
  }
  s->g.m = M;
  s->g.n = N;
  s->g.k = K;
  s->g.a_rs = K;
  s->g.a_cs = 1;
  s->g.b_rs = N;
  s->g.b_cs = 1;
  s->g.ldc = N;
  s->abuf = kl_value_buf(l->c, a);
  s->aelems = prod(ad, ar);
  s->bbuf = kl_value_buf(l->c, b);
  s->belems = prod(bd, br);
  s->g.b_is_weight = kl_weight_data(l->c, b) != NULL;
  s->cbuf = result_buf(l);
  s->celems = cs;
  return 0;
}

static int lower_matmul(const lctx *l) {
  ir_node *n = l->node;
  ir_op op = n->op;
  bool addend = op == NN_OP_ADDMM || op == NN_OP_BADDBMM;
  ir_value a = n->in[addend ? 1 : 0], b = n->in[addend ? 2 : 1];
  int64_t ad[16], bd[16], od[16];
  int ar = tensor_shape(l, a, ad), br = tensor_shape(l, b, bd);
  int orank = tensor_shape(l, n->out[0], od);
  if (ar < 0 || br < 0 || orank < 0)
    return -1;
  if ((op == NN_OP_MM || op == NN_OP_ADDMM) && (ar != 2 || br != 2))
    return shape_error(l, "expects 2-d operands");
  if ((op == NN_OP_BMM || op == NN_OP_BADDBMM) &&
      (ar != 3 || br != 3 || ad[0] != bd[0]))
    return shape_error(l, "expects 3-d operands with equal batch");
  if (ar == 0 || br == 0)
    return shape_error(l, "expects operands of rank 1 or more");
  gspec s = gspec_new(l->ep, l->dt);
  if (ar == 1 && br == 1) { /* dot product */
    int64_t a2[2] = {1, ad[0]}, b2[2] = {bd[0], 1};
    if (batched_product(l, a, a2, 2, b, b2, 2, &s) < 0)
      return -1;
  } else if (br == 1 || (br == 2 && ar > 2)) {
    /* b is a vector or a plain matrix: a's batch folds into M */
    int64_t a2[2] = {prod(ad, ar - 1), ad[ar - 1]};
    int64_t b2[2] = {bd[0], br == 1 ? 1 : bd[1]};
    if (batched_product(l, a, a2, 2, b, b2, 2, &s) < 0)
      return -1;
  } else if (ar == 1) { /* [K] @ [..., K, N]: a row vector */
    int64_t a2[2] = {1, ad[0]};
    if (batched_product(l, a, a2, 2, b, bd, br, &s) < 0)
      return -1;
  } else {
    if (batched_product(l, a, ad, ar, b, bd, br, &s) < 0)
      return -1;
  }
  if (prod(od, orank) != s.celems)
    return shape_error(l, "result shape does not match");
  if (addend) {
    double beta, alpha;
    if (scalar_arg(l, n->in[3], &beta) < 0 ||
        scalar_arg(l, n->in[4], &alpha) < 0)
      return -1;
    s.g.alpha = (float)alpha;
    if (set_addend(l, n->in[0], beta, &s) < 0)
      return -1;
  }
  return emit_gemm_kernel(l->c, ir_ops[op].name, &s) < 0 ? -1 : 1;
}

/* ---- convolution -----------------------------------------------------------
 */

/* A 2-d convolution's geometry (1-d convolutions have H = kh = 1). */
typedef struct conv {
  int64_t n, cin, h, w;           /* input */
  int64_t cout, kh, kw;           /* weight [cout, cin/groups, kh, kw] */
  int64_t hout, wout;             /* output spatial size */
  int64_t sh, sw, ph, pw, dh, dw; /* stride, padding, dilation */
  int64_t groups;
  be_bufid x, wt, bias, out; /* program buffers (bias -1: none) */
  const kl_epilogue *ep;     /* fused epilogue on out, or NULL */
  nn_dtype dt;               /* dtype of x, w, bias, out (f32 accumulation) */
} conv;

/* Valid output columns [lo, hi) of tap column j (a variable): those whose
 * input column ow*sw - pw + j*dw lies in [0, W). Sets the two variables. */
static void tap_range(kernel *k, const conv *cv, int32_t j, int32_t lo,
                      int32_t hi) {
  kx_id base = ADD(k, I(k, cv->pw), MULC(k, V(k, j), -cv->dw)); /* pw - j*dw */
  kx_id l = k_bin(k, KX_FLOORDIV, ADD(k, base, I(k, cv->sw - 1)), I(k, cv->sw));
  k_let(k, lo, MINX(k, MAXX(k, l, I(k, 0)), I(k, cv->wout)));
  kx_id h =
      ADD(k, k_bin(k, KX_FLOORDIV, ADD(k, base, I(k, cv->w - 1)), I(k, cv->sw)),
          I(k, 1));
  k_let(k, hi, MAXX(k, MINX(k, h, I(k, cv->wout)), V(k, lo)));
}

/* ih = oh*sh - ph + i*dh, and the condition 0 <= ih < H. */
static kx_id row_in_range(kernel *k, const conv *cv, int32_t ih) {
  return k_bin(k, KX_AND, k_bin(k, KX_GE, V(k, ih), I(k, 0)),
               k_bin(k, KX_LT, V(k, ih), I(k, cv->h)));
}

static void store_zeros(kernel *k, int32_t buf, nn_dtype dt, int32_t dst,
                        kx_id lo, kx_id hi) {
  int32_t ow = k_for_begin(k, lo, hi, KS_VECTOR);
  k_store(k, buf, ADD(k, V(k, dst), V(k, ow)), k_const_f(k, dt, 0.0));
  k_for_end(k);
}

/* Depthwise (groups == cin == cout): a direct kernel.
 *   PARALLEL for nc in [0, N*C): ch = nc % C
 *     for oh: out row = bias[ch] or 0
 *       for i in [0, kh): ih = oh*sh - ph + i*dh; if 0 <= ih < H:
 *         for j in [0, kw): VECTOR for ow in the valid range of tap j:
 *           out[nc, oh, ow] += w[ch, i, j] * x[nc, ih, ow*sw - pw + j*dw] */
static int conv_depthwise(kl_ctx *c, const conv *cv) {
  kernel *k = new_kernel(c, "conv_depthwise", cv->ep);
  int64_t C = cv->cin, P = cv->hout * cv->wout;
  /* 16-bit out: rows accumulate in an f32 scratch, rounded into out when
   * complete (through the epilogue, if any). */
  bool narrow = cv->dt != NN_DT_F32;
  int32_t o = k_buf(k, NN_DT_F32, cv->n * C * P, true, narrow ? "acc" : "out");
  int32_t x = k_buf(k, cv->dt, cv->n * C * cv->h * cv->w, false, "x");
  int32_t w = k_buf(k, cv->dt, C * cv->kh * cv->kw, false, "w");
  kl_bind(c, k, o, narrow ? kl_scratch(c, NN_DT_F32, cv->n * C * P) : cv->out);
  kl_bind(c, k, x, cv->x);
  kl_bind(c, k, w, cv->wt);
  int32_t out = o;
  if (narrow) {
    out = k_buf(k, cv->dt, cv->n * C * P, true, "out");
    kl_bind(c, k, out, cv->out);
  }
  int32_t bias = -1;
  if (cv->bias >= 0) {
    bias = k_buf(k, cv->dt, C, false, "bias");
    kl_bind(c, k, bias, cv->bias);
  }
  int32_t ih = k_var(k, NN_DT_I64), dst = k_var(k, NN_DT_I64),
          src = k_var(k, NN_DT_I64);
  int32_t lo = k_var(k, NN_DT_I64), hi = k_var(k, NN_DT_I64),
          wv = k_var(k, NN_DT_F32);
  int32_t acc = -1, idx = -1;
  kx_id e = -1;
  if (cv->ep || narrow) { /* expressions only: built before any statement */
    acc = k_var(k, NN_DT_F32);
    idx = k_var(k, NN_DT_I64);
    e = cv->ep ? cv->ep->build(cv->ep->ctx, k, V(k, acc), V(k, idx)) : V(k, acc);
    if (e < 0)
      return -1;
  }
  int32_t nc = k_for_begin(k, I(k, 0), I(k, cv->n * C), KS_PARALLEL);
  int32_t ch = let_i64(k, k_bin(k, KX_MOD, V(k, nc), I(k, C)));
  int32_t oh = k_for_begin(k, I(k, 0), I(k, cv->hout), 0);
  k_let(k, dst, ADD(k, MULC(k, V(k, nc), P), MULC(k, V(k, oh), cv->wout)));
  int32_t ow = k_for_begin(k, I(k, 0), I(k, cv->wout), KS_VECTOR);
  k_store(k, o, ADD(k, V(k, dst), V(k, ow)),
          bias >= 0 ? k_cast(k, NN_DT_F32, k_load(k, bias, V(k, ch))) : F(k, 0.0));
  k_for_end(k);
  int32_t i = k_for_begin(k, I(k, 0), I(k, cv->kh), 0);
  k_let(k, ih,
        ADD(k, MULC(k, V(k, oh), cv->sh),
            ADD(k, I(k, -cv->ph), MULC(k, V(k, i), cv->dh))));
  k_if_begin(k, row_in_range(k, cv, ih));
  int32_t j = k_for_begin(k, I(k, 0), I(k, cv->kw), 0);
  tap_range(k, cv, j, lo, hi);
  k_let(
      k, wv,
      k_cast(k, NN_DT_F32,
             k_load(k, w,
                    ADD(k, MULC(k, ADD(k, MULC(k, V(k, ch), cv->kh), V(k, i)), cv->kw),
                        V(k, j)))));
  /* x index of ow = 0 (may be negative; only ow in [lo, hi) are read) */
  k_let(k, src,
        ADD(k, MULC(k, ADD(k, MULC(k, V(k, nc), cv->h), V(k, ih)), cv->w),
            ADD(k, I(k, -cv->pw), MULC(k, V(k, j), cv->dw))));
  ow = k_for_begin(k, V(k, lo), V(k, hi), KS_VECTOR);
  kx_id oidx = ADD(k, V(k, dst), V(k, ow));
  kx_id xv = k_cast(k, NN_DT_F32, k_load(k, x, ADD(k, V(k, src), MULC(k, V(k, ow), cv->sw))));
  k_store(k, o, oidx, ADD(k, k_load(k, o, oidx), MUL(k, V(k, wv), xv)));
  k_for_end(k); /* ow */
  k_for_end(k); /* j */
  k_if_end(k);
  k_for_end(k); /* i */
  if (cv->ep || narrow) { /* the row is complete: out = round(ep(acc)) */
    ow = k_for_begin(k, I(k, 0), I(k, cv->wout), KS_VECTOR);
    k_let(k, idx, ADD(k, V(k, dst), V(k, ow)));
    k_let(k, acc, k_load(k, o, V(k, idx)));
    k_store(k, out, V(k, idx), k_cast(k, cv->dt, e));
    k_for_end(k);
  }
  k_for_end(k); /* oh */
  k_for_end(k); /* nc */
  return 0;
}

/* im2col of images [n0, n0+nimg) into col [nimg*G, Kc, P] where
 * Kc = Cg*kh*kw, P = hout*wout; row r of col (all groups of all images in
 * order) is tap (ci, i, j) of channel plane n0*Cin + (r / Kc)*Cg + ci:
 *   PARALLEL for r in [0, nimg*G*Kc):
 *     for oh: ih = oh*sh - ph + i*dh
 *       if 0 <= ih < H: zeros, VECTOR copy x[plane, ih, ow*sw - pw + j*dw]
 *                       over the valid range, zeros
 *       else: zeros */
static void conv_im2col(kl_ctx *c, const conv *cv, be_bufid col, int64_t n0,
                        int64_t nimg) {
  kernel *k = kl_kernel(c, "im2col");
  int64_t G = cv->groups, Cg = cv->cin / G, Kc = Cg * cv->kh * cv->kw;
  int64_t P = cv->hout * cv->wout;
  int32_t o = k_buf(k, cv->dt, nimg * G * Kc * P, true, "col");
  int32_t x = k_buf(k, cv->dt, cv->n * cv->cin * cv->h * cv->w, false, "x");
  kl_bind(c, k, o, col);
  kl_bind(c, k, x, cv->x);
  int32_t ih = k_var(k, NN_DT_I64), dst = k_var(k, NN_DT_I64),
          src = k_var(k, NN_DT_I64);
  int32_t lo = k_var(k, NN_DT_I64), hi = k_var(k, NN_DT_I64);
  int32_t r = k_for_begin(k, I(k, 0), I(k, nimg * G * Kc), KS_PARALLEL);
  kx_id rr = k_bin(k, KX_MOD, V(k, r), I(k, Kc));
  int32_t plane =
      let_i64(k, ADD(k, I(k, n0 * cv->cin),
                     ADD(k, MULC(k, k_bin(k, KX_DIV, V(k, r), I(k, Kc)), Cg),
                         k_bin(k, KX_DIV, rr, I(k, cv->kh * cv->kw)))));
  int32_t i =
      let_i64(k, k_bin(k, KX_MOD, k_bin(k, KX_DIV, V(k, r), I(k, cv->kw)),
                       I(k, cv->kh)));
  int32_t j = let_i64(k, k_bin(k, KX_MOD, V(k, r), I(k, cv->kw)));
  tap_range(k, cv, j, lo, hi);
  int32_t oh = k_for_begin(k, I(k, 0), I(k, cv->hout), 0);
  k_let(k, ih,
        ADD(k, MULC(k, V(k, oh), cv->sh),
            ADD(k, I(k, -cv->ph), MULC(k, V(k, i), cv->dh))));
  k_let(k, dst, ADD(k, MULC(k, V(k, r), P), MULC(k, V(k, oh), cv->wout)));
  k_if_begin(k, row_in_range(k, cv, ih));
  k_let(k, src,
        ADD(k, MULC(k, ADD(k, MULC(k, V(k, plane), cv->h), V(k, ih)), cv->w),
            ADD(k, I(k, -cv->pw), MULC(k, V(k, j), cv->dw))));
  store_zeros(k, o, cv->dt, dst, I(k, 0), V(k, lo));
  int32_t ow = k_for_begin(k, V(k, lo), V(k, hi), KS_VECTOR);
  k_store(k, o, ADD(k, V(k, dst), V(k, ow)),
          k_load(k, x, ADD(k, V(k, src), MULC(k, V(k, ow), cv->sw))));
  k_for_end(k);
  store_zeros(k, o, cv->dt, dst, V(k, hi), I(k, cv->wout));
  k_else(k);
  store_zeros(k, o, cv->dt, dst, I(k, 0), I(k, cv->wout));
  k_if_end(k);
  k_for_end(k); /* oh */
  k_for_end(k); /* r */
}

/* Largest im2col buffer (elements); more images are done in chunks. */
#define IM2COL_MAX_ELEMS ((int64_t)16 << 20)

/* GEMMs out[n, g*Mg:(g+1)*Mg, :] = W_g [Mg, Kc] @ B_(n,g) [Kc, P] (+ bias)
 * for images [n0, n0+nimg) and every group; B is the im2col buffer
 * (b_is_col) or the input itself (1x1 convolutions). */
static int conv_gemm(kl_ctx *c, const conv *cv, be_bufid bbuf, int64_t belems,
                      bool b_is_col, int64_t n0, int64_t nimg) {
  int64_t G = cv->groups, Cg = cv->cin / G, Mg = cv->cout / G;
  int64_t Kc = Cg * cv->kh * cv->kw, P = cv->hout * cv->wout;
  gspec s = gspec_new(cv->ep, cv->dt);
  s.g.m = Mg;
  s.g.n = P;
  s.g.k = Kc;
  s.g.a_rs = Kc;
  s.g.a_cs = 1;
  s.g.b_rs = P;
  s.g.b_cs = 1;
  s.g.ldc = P;
  s.abuf = cv->wt;
  s.aelems = cv->cout * Kc;
  s.bbuf = bbuf;
  s.belems = belems;
  s.cbuf = cv->out;
  s.celems = cv->n * cv->cout * P;
  s.nbatch = 2;
  s.bdims[0] = nimg;
  s.bdims[1] = G;
  s.astr[0] = 0;
  s.astr[1] = Mg * Kc;
  s.bstr[0] = G * Kc * P;
  s.bstr[1] = Kc * P; /* == Cin*P, Cg*P for 1x1 */
  s.b0 = b_is_col ? 0 : n0 * cv->cin * P;
  s.cstr[0] = cv->cout * P;
  s.cstr[1] = Mg * P;
  s.c0 = n0 * cv->cout * P;
  if (cv->bias >= 0) {
    s.biasbuf = cv->bias;
    s.biaselems = cv->cout;
    s.biasstr[0] = 0;
    s.biasstr[1] = Mg;
    s.g.bias_rs = 1;
    s.g.bias_cs = 0;
  }
  return emit_gemm_kernel(c, "conv_gemm", &s);
}

static int lower_conv(const lctx *l) {
  ir_node *n = l->node;
  int64_t xd[16], wd[16], bd[16], od[16];
  int xr = tensor_shape(l, n->in[0], xd), wr = tensor_shape(l, n->in[1], wd);
  int orank = tensor_shape(l, n->out[0], od);
  if (xr < 0 || wr < 0 || orank < 0)
    return -1;
  const ir_const *tr;
  if (!ir_value_const(l->g, n->in[6], &tr) || tr->kind != IR_C_BOOL)
    return shape_error(l, "'transposed' must be a constant bool");
  if (tr->i) {
    nn_error(kl_diag(l->c), l->loc,
             "transposed convolution is not supported by the CPU backend yet");
    return -1;
  }
  if (xr != wr || (xr != 3 && xr != 4) || orank != xr) {
    nn_error(kl_diag(l->c), l->loc,
             "%d-d convolution is not supported by the CPU backend yet (1-d "
             "and 2-d are)",
             xr - 2);
    return -1;
  }
  int nsp = xr - 2;
  int64_t st[2], pad[2], dil[2];
  double groups;
  if (int_list_arg(l, n->in[3], nsp, "stride", st) < 0 ||
      int_list_arg(l, n->in[4], nsp, "padding", pad) < 0 ||
      int_list_arg(l, n->in[5], nsp, "dilation", dil) < 0 ||
      scalar_arg(l, n->in[8], &groups) < 0)
    return -1;
  conv cv = {
      .n = xd[0], .cin = xd[1], .cout = wd[0], .groups = (int64_t)groups};
  if (nsp == 1) {
    cv.h = 1;
    cv.w = xd[2];
    cv.kh = 1;
    cv.kw = wd[2];
    cv.hout = 1;
    cv.wout = od[2];
    cv.sh = 1;
    cv.ph = 0;
    cv.dh = 1;
    cv.sw = st[0];
    cv.pw = pad[0];
    cv.dw = dil[0];
  } else {
    cv.h = xd[2];
    cv.w = xd[3];
    cv.kh = wd[2];
    cv.kw = wd[3];
    cv.hout = od[2];
    cv.wout = od[3];
    cv.sh = st[0];
    cv.sw = st[1];
    cv.ph = pad[0];
    cv.pw = pad[1];
    cv.dh = dil[0];
    cv.dw = dil[1];
  }
  int64_t G = cv.groups;
  if (G < 1 || cv.cin % G || cv.cout % G || wd[1] != cv.cin / G ||
      od[0] != cv.n || od[1] != cv.cout || cv.sh < 1 || cv.sw < 1 ||
      cv.dh < 1 || cv.dw < 1 || cv.ph < 0 || cv.pw < 0)
    return shape_error(l, "inconsistent convolution shapes or parameters");
  if (cv.hout != (cv.h + 2 * cv.ph - cv.dh * (cv.kh - 1) - 1) / cv.sh + 1 ||
      cv.wout != (cv.w + 2 * cv.pw - cv.dw * (cv.kw - 1) - 1) / cv.sw + 1)
    return shape_error(
        l, "output size does not match the convolution's parameters");
  cv.x = kl_value_buf(l->c, n->in[0]);
  cv.wt = kl_value_buf(l->c, n->in[1]);
  cv.out = result_buf(l);
  cv.ep = l->ep;
  cv.dt = l->dt;
  cv.bias = -1;
  if (!is_none(l, n->in[2])) {
    int br = tensor_shape(l, n->in[2], bd);
    if (br < 0)
      return -1;
    if (br != 1 || bd[0] != cv.cout)
      return shape_error(l, "bias must have one value per output channel");
    cv.bias = kl_value_buf(l->c, n->in[2]);
  }
  int64_t P = cv.hout * cv.wout;
  if (cv.n == 0 || P == 0 || cv.cout == 0)
    return 1;
  if (G == cv.cin && cv.cout == cv.cin) {
    return conv_depthwise(l->c, &cv);
  } else if (cv.kh == 1 && cv.kw == 1 && cv.sh == 1 && cv.sw == 1 &&
             cv.ph == 0 && cv.pw == 0) {
    return conv_gemm(l->c, &cv, cv.x, cv.n * cv.cin * P, false, 0, cv.n);
  } else {
    int64_t per_img = cv.cin * cv.kh * cv.kw * P;
    int64_t chunk = IM2COL_MAX_ELEMS / (per_img ? per_img : 1);
    if (chunk < 1)
      chunk = 1;
    if (chunk > cv.n)
      chunk = cv.n;
    be_bufid col = kl_scratch(l->c, cv.dt, chunk * per_img);
    for (int64_t n0 = 0; n0 < cv.n; n0 += chunk) {
      int64_t nimg = cv.n - n0 < chunk ? cv.n - n0 : chunk;
      conv_im2col(l->c, &cv, col, n0, nimg);
      if (conv_gemm(l->c, &cv, col, chunk * per_img, true, n0, nimg) < 0)
        return -1;
    }
  }
  return 1;
}

/* Lowers node id (with epilogue ep, or NULL): 1, 0 when not gemm-like, -1
 * after reporting. */
static int lower_gemm_node(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  ir_graph *g = kl_graph(c);
  ir_node *node = ir_node_get(g, id);
  const ir_type *rt = node->nout ? ir_vtype(g, node->out[0]) : NULL;
  lctx l = {.c = c, .g = g, .node = node, .loc = node->loc, .ep = ep,
            .dt = rt && rt->kind == IR_T_TENSOR && rt->dtype != NN_DT_UNKNOWN ? rt->dtype
                                                                             : NN_DT_F32};
  switch (node->op) {
  case NN_OP_LINEAR:
    return lower_linear(&l) < 0 ? -1 : 1;
  case NN_OP_ADDMM:
  case NN_OP_MM:
  case NN_OP_BMM:
  case NN_OP_MATMUL:
  case NN_OP_BADDBMM:
    return lower_matmul(&l) < 0 ? -1 : 1;
  case NN_OP_CONVOLUTION:
    return lower_conv(&l) < 0 ? -1 : 1;
  default:
    return 0;
  }
}

int kl_lower_gemm(kl_ctx *c, ir_nodeid id) {
  return lower_gemm_node(c, id, NULL);
}

int kl_lower_gemm_ep(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(ep && ep->build);
  return lower_gemm_node(c, id, ep);
}
