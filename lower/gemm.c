/* gemm.c — the batched GEMM kernel, and linear / addmm / mm / bmm /
 * baddbmm / matmul.
 *
 * Every gemm-like op becomes one KS_GEMM statement (kl_gemm_kernel),
 * wrapped in a loop over a flattened batch index when there is more than
 * one matrix product (bmm, broadcast matmul, images and groups of a
 * convolution). The loop computes each operand's offset from per-batch-dim
 * strides; a broadcast batch dim has stride 0. The bias field of the GEMM
 * carries linear's and convolution's bias and addmm/baddbmm's `c`.
 *
 *   linear   out[M, N] = x[M, K] @ w^T + bias. The weight is packed at
 *            compile time: f32 into panels of the target's pack_b columns
 *            of w^T (ks_gemm.b_panel, what native microkernels stream),
 *            f16/bf16 into w^T [K, N] (so B's columns are contiguous); a
 *            weight that is not a compile-time constant is transposed into
 *            a scratch buffer by a packing kernel first.
 *   matmul   numpy rules: 1-d operands, a batch folded into M when b is a
 *            plain matrix, batch broadcasting otherwise.
 *
 * Symbolic dims. Sizes, strides and offsets are computed as dims of the
 * graph and become kernel expressions (kl_dimx) where a kernel uses them.
 * What must be a number: a packed weight's N and K; batch rows and
 * sequence lengths may be symbolic.
 *
 * Epilogues. A fused group headed by a gemm-like op passes an epilogue
 * builder (kl_epilogue): every kernel that writes the op's result writes
 * the group's result buffer instead, each element going through the
 * epilogue expression (ks_gemm.ep; for the direct depthwise convolution,
 * each output's sum before its store). The intermediate product never
 * exists in memory.
 *
 * 16-bit GEMMs (f16, bf16). A, B and the bias keep their dtype; the
 * products are summed in f32 into an f32 scratch of C's layout, and a
 * second kernel applies the epilogue and rounds into C. Where the target
 * has no native form for such a GEMM (tg_target.gemm_f16 / gemm_bf16) the
 * statement is expanded into loops at once (k_expand_gemms with the
 * target's tiling); otherwise it stays a KS_GEMM (tensor cores on CUDA).
 */
#include "lower.h"

#include <string.h>

/* base + sum_d ((bi / inner_d) % bdims[d]) * str[d] for the batch index
 * variable bi. */
static kx_id batch_off(kl_ctx *c, kernel *k, const kl_gspec *s, int32_t bi, const ir_dim *str,
                       ir_dim base) {
  kx_id e = kl_dimx(c, k, base);
  ir_dim inner = kl_d(c, 1);
  for (int d = s->nbatch - 1; d >= 0; d--) {
    int64_t bd;
    bool single = kl_dim_const(c, s->bdims[d], &bd) && bd <= 1;
    if (!kl_dis(c, str[d], 0) && !single) {
      kx_id idx = kl_dis(c, inner, 1) ? k_varref(k, bi)
                                      : k_bin(k, KX_DIV, k_varref(k, bi), kl_dimx(c, k, inner));
      if (d > 0) idx = k_bin(k, KX_MOD, idx, kl_dimx(c, k, s->bdims[d]));
      e = k_add(k, e, k_mul(k, idx, kl_dimx(c, k, str[d])));
    }
    inner = kl_dmul(c, inner, s->bdims[d]);
  }
  return e;
}

/* The batch loop of a gspec: none when the batch is one product (or
 * empty: *skip is then set), else a PARALLEL loop over it; returns its
 * variable or -1. */
static int32_t batch_loop(kl_ctx *c, kernel *k, const kl_gspec *s, bool *skip) {
  ir_dim nb = kl_numel(c, s->nbatch, s->bdims);
  int64_t v;
  bool num = kl_dim_const(c, nb, &v);
  *skip = num && v <= 0;
  if (num && v <= 1) return -1;
  return k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, nb), KS_PARALLEL);
}

/* 16-bit C (s->dt F16/BF16): the second kernel, rounding the f32 products
 * in acc into C through the epilogue:
 *   [PARALLEL for bi in batch:] PARALLEL-or-serial for m: VECTOR for n:
 *     out[c_off + m*ldc + n] = round(ep(acc[same index]))  */
static int emit_round_kernel(kl_ctx *c, const kl_gspec *s, kp_bufid acc) {
  kernel *k = kl_kernel_ep(c, "gemm_round", s->ep);
  int32_t a = k_buf(k, NN_DT_F32, kl_elems(c, s->celems), false, "acc");
  int32_t o = k_buf(k, s->dt, kl_elems(c, s->celems), true, "out");
  kl_bind(c, k, a, acc);
  kl_bind(c, k, o, s->cbuf);
  int32_t ep_acc = -1, ep_idx = -1;
  kx_id ep = -1;
  if (s->ep) { /* expressions only: built before any statement */
    ep_acc = k_var(k, NN_DT_F32);
    ep_idx = k_var(k, NN_DT_I64);
    ep = s->ep->build(s->ep->ctx, k, k_varref(k, ep_acc), k_varref(k, ep_idx));
    if (ep < 0) return -1;
  }
  bool skip;
  int32_t bi = batch_loop(c, k, s, &skip);
  kx_id coff = bi >= 0 ? batch_off(c, k, s, bi, s->cstr, s->c0) : kl_dimx(c, k, s->c0);
  int32_t m = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, s->m), bi >= 0 ? 0 : KS_PARALLEL);
  int32_t n = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, s->n), KS_VECTOR);
  kx_id idx = k_add(k, k_add(k, coff, k_mul(k, k_varref(k, m), kl_dimx(c, k, s->ldc))),
                    k_varref(k, n));
  kx_id v = k_load(k, a, idx);
  if (ep >= 0) {
    k_let(k, ep_idx, idx);
    k_let(k, ep_acc, v);
    v = ep;
  }
  k_store(k, o, idx, k_cast(k, s->dt, v));
  k_for_end(k);
  k_for_end(k);
  if (bi >= 0) k_for_end(k);
  return 0;
}

/* Emits the kernel(s); returns 0, or -1 when the epilogue failed
 * (reported). Products are accumulated in f32: A, B and the bias are
 * widened as they are loaded; a 16-bit C is accumulated in an f32 scratch
 * of C's layout and rounded by a second kernel (emit_round_kernel). */
int kl_gemm_kernel(kl_ctx *c, const char *what, const kl_gspec *s) {
  bool narrow = s->dt != NN_DT_F32;
  kernel *k = kl_kernel_ep(c, what, narrow ? NULL : s->ep);
  ks_gemm g;
  memset(&g, 0, sizeof g);
  kp_bufid cbuf = narrow ? kl_scratch_d(c, NN_DT_F32, s->celems) : s->cbuf;
  g.a = k_buf(k, s->dt, kl_elems(c, s->aelems), false, "a");
  g.b = k_buf(k, s->dt, kl_elems(c, s->belems), false, "b");
  g.c = k_buf(k, NN_DT_F32, kl_elems(c, s->celems), true, narrow ? "acc" : "out");
  kl_bind(c, k, g.a, s->abuf);
  kl_bind(c, k, g.b, s->bbuf);
  kl_bind(c, k, g.c, cbuf);
  g.bias = -1;
  if (s->biasbuf >= 0) {
    g.bias = k_buf(k, s->dt, kl_elems(c, s->biaselems), false, "bias");
    kl_bind(c, k, g.bias, s->biasbuf);
  }
  g.alpha = s->alpha;
  g.beta = s->beta;
  g.b_is_weight = s->b_is_weight;
  g.a_panel = s->a_panel;
  g.b_panel = s->b_panel;
  g.m = kl_dimx(c, k, s->m);
  g.n = kl_dimx(c, k, s->n);
  g.k = kl_dimx(c, k, s->k);
  g.a_rs = kl_dimx(c, k, s->a_rs);
  g.a_cs = kl_dimx(c, k, s->a_cs);
  g.b_rs = kl_dimx(c, k, s->b_rs);
  g.b_cs = kl_dimx(c, k, s->b_cs);
  g.ldc = kl_dimx(c, k, s->ldc);
  g.bias_rs = kl_dimx(c, k, s->bias_rs);
  g.bias_cs = kl_dimx(c, k, s->bias_cs);
  if (s->ep && !narrow) { /* expressions only: built before any statement */
    g.epilogue = true;
    g.ep_acc = k_var(k, NN_DT_F32);
    g.ep_idx = k_var(k, NN_DT_I64);
    g.ep = s->ep->build(s->ep->ctx, k, k_varref(k, g.ep_acc), k_varref(k, g.ep_idx));
    if (g.ep < 0) return -1;
  }
  bool skip;
  int32_t bi = batch_loop(c, k, s, &skip);
  if (bi >= 0) {
    g.a_off = batch_off(c, k, s, bi, s->astr, s->a0);
    g.b_off = batch_off(c, k, s, bi, s->bstr, s->b0);
    g.c_off = batch_off(c, k, s, bi, s->cstr, s->c0);
    g.bias_off = g.bias >= 0 ? batch_off(c, k, s, bi, s->biasstr, s->bias0) : -1;
  } else {
    g.a_off = kl_dimx(c, k, s->a0);
    g.b_off = kl_dimx(c, k, s->b0);
    g.c_off = kl_dimx(c, k, s->c0);
    g.bias_off = g.bias >= 0 ? kl_dimx(c, k, s->bias0) : -1;
  }
  if (s->im && !narrow) {
    const kl_gim *im = s->im;
    ks_im2col *ic = nn_alloc(kl_arena(c), sizeof *ic);
    ic->x = k_buf(k, NN_DT_F32, kl_elems(c, im->xelems), false, "x");
    kl_bind(c, k, ic->x, im->x);
    ic->x_off = bi >= 0 ? batch_off(c, k, s, bi, im->xstr, im->x0) : kl_dimx(c, k, im->x0);
    ic->n0 = k_i64(k, 0);
    ic->h = kl_dimx(c, k, im->h);
    ic->w = kl_dimx(c, k, im->w);
    ic->wout = kl_dimx(c, k, im->wout);
    ic->kh = im->kh, ic->kw = im->kw, ic->sh = im->sh, ic->sw = im->sw;
    ic->ph = im->ph, ic->pw = im->pw, ic->dh = im->dh, ic->dw = im->dw;
    g.im2col = ic;
  }
  if (!skip) k_gemm(k, &g);
  if (bi >= 0) k_for_end(k);
  /* A 16-bit GEMM the target has no native form for (the CPU's
   * microkernels are f32 only) is expanded here: the loads in the
   * expansion widen A, B and the bias. A target with one (CUDA: f16 on
   * tensor cores, bf16 tiled) keeps the statement; the sum is f32 into the
   * same accumulator either way. */
  const tg_target *t = kl_tg(c);
  if (narrow && !(s->dt == NN_DT_F16 ? t->gemm_f16 : t->gemm_bf16)) {
    k_expand_gemms(k, &t->expand);
    /* the GEMM statement is no longer reachable; make it an inert LET so
     * that no backend takes the kernel for one with a GEMM left */
    int32_t dead = k_var(k, NN_DT_I64);
    kx_id zero = k_i64(k, 0);
    for (int i = 0; i < k->stmts.len; i++)
      if (k->stmts.data[i].kind == KS_GEMM) {
        ks *st = &k->stmts.data[i];
        memset(st, 0, sizeof *st);
        st->kind = KS_LET;
        st->var = dead;
        st->val = zero;
      }
#ifndef NDEBUG
    if (k_verify(k, t->max_slots, true, kl_diag(c))) NN_ASSERT(!"the expanded GEMM verifies");
#endif
  }
  if (narrow && !skip) return emit_round_kernel(c, s, cbuf);
  return 0;
}

/* ---- operands ------------------------------------------------------------ */

/* Where the node's result goes: its own buffer, or the fused group's. */
kp_bufid kl_gop_result(const kl_gop *l) {
  return l->ep ? l->ep->out : kl_value_buf(l->c, l->node->out[0]);
}

bool kl_gop_none(const kl_gop *l, ir_value v) {
  return v == IR_NOVAL || ir_vtype(l->g, v)->kind == IR_T_NONE;
}

/* Shape of a tensor operand of the node's dtype (dims may be symbolic);
 * -1 after reporting. */
int kl_gop_shape(const kl_gop *l, ir_value v, ir_dim *dims) {
  const ir_type *t = ir_vtype(l->g, v);
  if (t->kind == IR_T_TENSOR && t->dtype != NN_DT_UNKNOWN &&
      ((l->dt != NN_DT_F32 && l->dt != NN_DT_F16 && l->dt != NN_DT_BF16) || t->dtype != l->dt)) {
    nn_error(kl_diag(l->c), l->loc,
             "'%s' on %s tensors with a %s result is not supported by the CPU "
             "backend (f32, f16 or bf16 throughout)",
             ir_ops[l->node->op].name, nn_dtype_name(t->dtype), nn_dtype_name(l->dt));
    return -1;
  }
  return kl_shape_d(l->c, v, dims);
}

/* "code generation for 'OP' with symbolic dim D is not supported yet" */
int kl_gop_sym_error(const kl_gop *l, ir_dim d) {
  nn_buf b = {0};
  ir_dim_print(&b, l->g, d);
  nn_error(kl_diag(l->c), l->loc,
           "code generation for '%s' with symbolic dim %s is not supported yet",
           ir_ops[l->node->op].name, b.data ? b.data : "?");
  nn_buf_free(&b);
  return -1;
}

/* A number operand (int, float or bool constant). */
int kl_gop_scalar(const kl_gop *l, ir_value v, double *out) {
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
  nn_error(kl_diag(l->c), l->loc, "'%s' needs a constant number for its scalar operands",
           ir_ops[l->node->op].name);
  return -1;
}

/* An int list operand with 1 or n elements, spread to n. */
int kl_gop_ints(const kl_gop *l, ir_value v, int n, const char *what, int64_t *out) {
  const ir_const *k;
  if (ir_value_const(l->g, v, &k) && k->kind == IR_C_INTLIST && (k->n == 1 || k->n == n)) {
    for (int i = 0; i < n; i++) out[i] = k->ints[k->n == 1 ? 0 : i];
    return 0;
  }
  if (ir_value_const(l->g, v, &k) && k->kind == IR_C_INT) {
    for (int i = 0; i < n; i++) out[i] = k->i;
    return 0;
  }
  nn_error(kl_diag(l->c), l->loc, "convolution: %s must be a constant list of 1 or %d ints", what,
           n);
  return -1;
}

int kl_gop_shape_error(const kl_gop *l, const char *why) {
  nn_error(kl_diag(l->c), l->loc, "'%s': %s", ir_ops[l->node->op].name, why);
  return -1;
}

/* Whether every dim of a gspec is known (an expression that outgrew the
 * dim table's limits is unknown); reports when not. */
bool kl_gspec_ok(const kl_gop *l, const kl_gspec *s) {
  const ir_dim one[] = {s->m,      s->n,         s->k,       s->a_rs,    s->a_cs,   s->b_rs,
                        s->b_cs,   s->ldc,       s->bias_rs, s->bias_cs, s->aelems, s->belems,
                        s->celems, s->biaselems, s->a0,      s->b0,      s->c0,     s->bias0};
  bool ok = true;
  for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) ok = ok && one[i] != IR_DIM_UNKNOWN;
  for (int i = 0; i < s->nbatch; i++)
    ok = ok && s->bdims[i] != IR_DIM_UNKNOWN && s->astr[i] != IR_DIM_UNKNOWN &&
         s->bstr[i] != IR_DIM_UNKNOWN && s->cstr[i] != IR_DIM_UNKNOWN &&
         s->biasstr[i] != IR_DIM_UNKNOWN;
  if (!ok) kl_gop_shape_error(l, "a size of the product is too complex an expression");
  return ok;
}

/* Strides of a tensor of dims[rank] broadcast to `trank` dims (right
 * aligned): 0 for missing and size-1 dims. */
static void bcast_strides(kl_ctx *c, const ir_dim *dims, int rank, int trank, ir_dim *str) {
  ir_dim s = kl_d(c, 1);
  for (int i = trank - 1; i >= 0; i--) {
    int d = i - (trank - rank);
    if (d < 0 || kl_dis(c, dims[d], 1))
      str[i] = kl_d(c, 0);
    else {
      str[i] = s;
      s = kl_dmul(c, s, dims[d]);
    }
  }
}

/* Whether element counts a and b are equal: the same dim, or, when shape
 * inference assumed dims of different inputs equal (guards, checked before
 * every run), taken on its word: a product of such dims is a different
 * expression of the same number. */
static bool same_count(kl_ctx *c, ir_dim a, ir_dim b) {
  return a == b || kl_graph(c)->guards.len > 0;
}

/* Checks that dims[rank] broadcasts to target[trank] (each dim the number
 * 1 or the target's dim itself). */
static bool broadcasts_to(kl_ctx *c, const ir_dim *dims, int rank, const ir_dim *target,
                          int trank) {
  if (rank > trank) return false;
  for (int i = 0; i < rank; i++) {
    ir_dim d = dims[i], t = target[trank - rank + i];
    if (!kl_dis(c, d, 1) && !kl_dims_agree(c, d, t)) return false;
  }
  return true;
}

kl_gspec kl_gspec_new(const kl_gop *l) {
  kl_gspec s;
  memset(&s, 0, sizeof s);
  ir_dim zero = kl_d(l->c, 0);
  s.m = s.n = s.k = s.a_rs = s.a_cs = s.b_rs = s.b_cs = s.ldc = zero;
  s.bias_rs = s.bias_cs = zero;
  s.aelems = s.belems = s.celems = s.biaselems = zero;
  s.a0 = s.b0 = s.c0 = s.bias0 = zero;
  for (int i = 0; i < 16; i++) s.bdims[i] = s.astr[i] = s.bstr[i] = s.cstr[i] = s.biasstr[i] = zero;
  s.dt = l->dt;
  s.abuf = s.bbuf = s.cbuf = -1;
  s.biasbuf = -1;
  s.alpha = 1.0f;
  s.beta = 1.0f;
  s.ep = l->ep;
  return s;
}

/* ---- linear ----------------------------------------------------------------
 */

/* B operand for x @ w^T with w [N, K]: w^T [K, N] with contiguous columns.
 * A weight is transposed at compile time; anything else by a kernel into a
 * scratch buffer. Sets bbuf, belems, b_rs, b_cs, b_is_weight. Returns 0,
 * or -1 after reporting. */
int kl_gspec_wt(kl_ctx *c, ir_value w, ir_dim N, ir_dim K, kl_gspec *s) {
  s->belems = kl_dmul(c, N, K);
  s->b_rs = N;
  s->b_cs = kl_d(c, 1);
  if (kl_dis(c, N, 1)) { /* w^T [K, 1] is w itself */
    s->bbuf = kl_value_buf(c, w);
    s->b_is_weight = kl_weight_data(c, w) != NULL;
    return 0;
  }
  const unsigned char *wd = kl_weight_data(c, w);
  size_t es = nn_dtype_size(s->dt);
  if (wd) {
    int64_t Nv, Kv;
    if (!kl_dim_const(c, N, &Nv)) return kl_symbolic(c, N);
    if (!kl_dim_const(c, K, &Kv)) return kl_symbolic(c, K);
    s->b_is_weight = true;
    if (s->dt == NN_DT_F32) {
      /* panels of PACK_B columns (ks_gemm.b_panel): w row n becomes
       * column n % PACK_B of panel n / PACK_B */
      const int PACK_B = kl_tg(c)->pack_b;
      int64_t np = (Nv + PACK_B - 1) / PACK_B;
      float *t = nn_alloc(kl_arena(c), sizeof(float) * (size_t)(np * PACK_B * Kv + 1));
      memset(t, 0, sizeof(float) * (size_t)(np * PACK_B * Kv));
      for (int64_t n = 0; n < Nv; n++)
        for (int64_t kk = 0; kk < Kv; kk++)
          memcpy(&t[(n / PACK_B) * PACK_B * Kv + kk * PACK_B + n % PACK_B],
                 wd + (size_t)(n * Kv + kk) * sizeof(float), sizeof(float));
      s->belems = kl_d(c, np * PACK_B * Kv);
      s->bbuf = kl_const_buf(c, s->dt, t, np * PACK_B * Kv);
      s->b_panel = PACK_B;
      return 0;
    }
    /* copy out first: kl_const_buf may move the blob wd points into */
    unsigned char *t = nn_alloc(kl_arena(c), es * (size_t)(Nv * Kv));
    for (int64_t n = 0; n < Nv; n++)
      for (int64_t kk = 0; kk < Kv; kk++)
        memcpy(t + (size_t)(kk * Nv + n) * es, wd + (size_t)(n * Kv + kk) * es, es);
    s->bbuf = kl_const_buf(c, s->dt, t, Nv * Kv);
    return 0;
  }
  kp_bufid wt = kl_scratch_d(c, s->dt, s->belems);
  kernel *k = kl_kernel(c, "pack_transpose");
  int32_t dst = k_buf(k, s->dt, kl_elems(c, s->belems), true, "wt");
  int32_t src = k_buf(k, s->dt, kl_elems(c, s->belems), false, "w");
  kl_bind(c, k, dst, wt);
  kl_bind(c, k, src, kl_value_buf(c, w));
  int32_t kk = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, K), KS_PARALLEL);
  int32_t n = k_for_begin(k, k_i64(k, 0), kl_dimx(c, k, N), KS_VECTOR);
  k_store(k, dst, k_add(k, k_mul(k, k_varref(k, kk), kl_dimx(c, k, N)), k_varref(k, n)),
          k_load(k, src, k_add(k, k_mul(k, k_varref(k, n), kl_dimx(c, k, K)), k_varref(k, kk))));
  k_for_end(k);
  k_for_end(k);
  s->bbuf = wt;
  s->b_is_weight = false;
  return 0;
}

static int lower_linear(const kl_gop *l) {
  kl_ctx *c = l->c;
  ir_dim xd[16], wd[16], bd[16], od[16];
  ir_value x = l->node->in[0], w = l->node->in[1], b = l->node->in[2];
  int xr = kl_gop_shape(l, x, xd), wr = kl_gop_shape(l, w, wd);
  int orank = kl_gop_shape(l, l->node->out[0], od);
  if (xr < 0 || wr < 0 || orank < 0) return -1;
  if (xr < 1 || wr != 2 || !kl_dims_agree(c, wd[1], xd[xr - 1]))
    return kl_gop_shape_error(l, "expects x[..., K] and w[N, K]");
  ir_dim K = wd[1], N = wd[0], M = kl_numel(c, xr - 1, xd);
  if (!same_count(c, kl_numel(c, orank, od), kl_dmul(c, M, N)))
    return kl_gop_shape_error(l, "result shape does not match");
  kl_gspec s = kl_gspec_new(l);
  s.m = M;
  s.n = N;
  s.k = K;
  s.abuf = kl_value_buf(c, x);
  s.aelems = kl_dmul(c, M, K);
  s.a_rs = K;
  s.a_cs = kl_d(c, 1);
  if (kl_gspec_wt(c, w, N, K, &s) < 0) return -1;
  s.cbuf = kl_gop_result(l);
  s.celems = kl_dmul(c, M, N);
  s.ldc = N;
  if (!kl_gop_none(l, b)) {
    int br = kl_gop_shape(l, b, bd);
    if (br < 0) return -1;
    if (!broadcasts_to(c, bd, br, &N, 1)) return kl_gop_shape_error(l, "bias must have N elements");
    s.biasbuf = kl_value_buf(c, b);
    s.biaselems = kl_numel(c, br, bd);
    s.bias_rs = kl_d(c, 0);
    /* a bias of N values (N > 1, or symbolic: then N values at run time
     * too) has stride 1; one value is broadcast */
    int64_t nv;
    bool per_n = br == 1 && bd[0] == N && !(kl_dim_const(c, N, &nv) && nv <= 1);
    s.bias_cs = kl_d(c, per_n ? 1 : 0);
  }
  if (!kl_gspec_ok(l, &s)) return -1;
  return kl_gemm_kernel(c, "linear", &s) < 0 ? -1 : 1;
}

/* ---- addmm / mm / bmm / baddbmm / matmul
 * --------------------------------------- */

/* Sets the bias of a (batched) product from `c` broadcast to
 * [batch..., M, N] (nbatch batch dims in s), scaled by beta. */
static int set_addend(const kl_gop *l, ir_value cv, double beta, kl_gspec *s) {
  if (beta == 0.0) return 0; /* beta == 0 ignores c entirely */
  ir_dim cd[16], target[18], str[18] = {0};
  int cr = kl_gop_shape(l, cv, cd);
  if (cr < 0) return -1;
  int tr = s->nbatch + 2;
  memcpy(target, s->bdims, sizeof(ir_dim) * (size_t)s->nbatch);
  target[tr - 2] = s->m;
  target[tr - 1] = s->n;
  if (!broadcasts_to(l->c, cd, cr, target, tr))
    return kl_gop_shape_error(l, "the added tensor does not broadcast to the product's shape");
  bcast_strides(l->c, cd, cr, tr, str);
  s->biasbuf = kl_value_buf(l->c, cv);
  s->biaselems = kl_numel(l->c, cr, cd);
  memcpy(s->biasstr, str, sizeof(ir_dim) * (size_t)s->nbatch);
  s->bias_rs = str[tr - 2];
  s->bias_cs = str[tr - 1];
  s->beta = (float)beta;
  return 0;
}

/* a [batch_a..., M, K] @ b [batch_b..., K, N] with the batch dims
 * broadcast (either list may be empty). A batch dim pair is the same dim,
 * or one of them is the number 1 (shape inference resolved broadcasting;
 * a symbolic dim is never taken for 1). */
static int batched_product(const kl_gop *l, ir_value a, const ir_dim *ad, int ar, ir_value b,
                           const ir_dim *bd, int br, kl_gspec *s) {
  kl_ctx *c = l->c;
  int nba = ar - 2, nbb = br - 2;
  int nb = nba > nbb ? nba : nbb;
  if (nb > 14) return kl_gop_shape_error(l, "too many batch dims");
  ir_dim M = ad[ar - 2], K = ad[ar - 1], N = bd[br - 1];
  if (!kl_dims_agree(c, bd[br - 2], K))
    return kl_gop_shape_error(l, "inner dims of the product differ");
  if (kl_dim_const(c, bd[br - 2], NULL)) K = bd[br - 2]; /* guarded equal */
  s->nbatch = nb;
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - nba), ib = i - (nb - nbb);
    ir_dim da = ia >= 0 ? ad[ia] : kl_d(c, 1), db = ib >= 0 ? bd[ib] : kl_d(c, 1);
    if (!kl_dims_agree(c, da, db) && !kl_dis(c, da, 1) && !kl_dis(c, db, 1))
      return kl_gop_shape_error(l, "batch dims do not broadcast");
    s->bdims[i] = kl_dis(c, da, 1) ? db : da;
  }
  bcast_strides(c, ad, nba, nb, s->astr);
  bcast_strides(c, bd, nbb, nb, s->bstr);
  for (int i = 0; i < nb; i++) {
    s->astr[i] = kl_dmul(c, s->astr[i], kl_dmul(c, M, K));
    s->bstr[i] = kl_dmul(c, s->bstr[i], kl_dmul(c, K, N));
  }
  ir_dim cs = kl_dmul(c, M, N);
  for (int i = nb - 1; i >= 0; i--) {
    s->cstr[i] = cs;
    cs = kl_dmul(c, cs, s->bdims[i]);
  }
  s->m = M;
  s->n = N;
  s->k = K;
  s->a_rs = K;
  s->a_cs = kl_d(c, 1);
  s->b_rs = N;
  s->b_cs = kl_d(c, 1);
  s->ldc = N;
  s->abuf = kl_value_buf(c, a);
  s->aelems = kl_numel(c, ar, ad);
  s->bbuf = kl_value_buf(c, b);
  s->belems = kl_numel(c, br, bd);
  s->b_is_weight = kl_weight_data(c, b) != NULL;
  s->cbuf = kl_gop_result(l);
  s->celems = cs;
  return 0;
}

static int lower_matmul(const kl_gop *l) {
  kl_ctx *c = l->c;
  ir_node *n = l->node;
  ir_op op = n->op;
  bool addend = op == NN_OP_ADDMM || op == NN_OP_BADDBMM;
  ir_value a = n->in[addend ? 1 : 0], b = n->in[addend ? 2 : 1];
  ir_dim ad[16], bd[16], od[16];
  int ar = kl_gop_shape(l, a, ad), br = kl_gop_shape(l, b, bd);
  int orank = kl_gop_shape(l, n->out[0], od);
  if (ar < 0 || br < 0 || orank < 0) return -1;
  if ((op == NN_OP_MM || op == NN_OP_ADDMM) && (ar != 2 || br != 2))
    return kl_gop_shape_error(l, "expects 2-d operands");
  if ((op == NN_OP_BMM || op == NN_OP_BADDBMM) &&
      (ar != 3 || br != 3 || !kl_dims_agree(c, ad[0], bd[0])))
    return kl_gop_shape_error(l, "expects 3-d operands with equal batch");
  if (ar == 0 || br == 0) return kl_gop_shape_error(l, "expects operands of rank 1 or more");
  kl_gspec s = kl_gspec_new(l);
  ir_dim one = kl_d(c, 1);
  if (ar == 1 && br == 1) { /* dot product */
    ir_dim a2[2] = {one, ad[0]}, b2[2] = {bd[0], one};
    if (batched_product(l, a, a2, 2, b, b2, 2, &s) < 0) return -1;
  } else if (br == 1 || (br == 2 && ar > 2)) {
    /* b is a vector or a plain matrix: a's batch folds into M */
    ir_dim a2[2] = {kl_numel(c, ar - 1, ad), ad[ar - 1]};
    ir_dim b2[2] = {bd[0], br == 1 ? one : bd[1]};
    if (batched_product(l, a, a2, 2, b, b2, 2, &s) < 0) return -1;
  } else if (ar == 1) { /* [K] @ [..., K, N]: a row vector */
    ir_dim a2[2] = {one, ad[0]};
    if (batched_product(l, a, a2, 2, b, bd, br, &s) < 0) return -1;
  } else {
    if (batched_product(l, a, ad, ar, b, bd, br, &s) < 0) return -1;
  }
  if (!same_count(c, kl_numel(c, orank, od), s.celems))
    return kl_gop_shape_error(l, "result shape does not match");
  if (addend) {
    double beta, alpha;
    if (kl_gop_scalar(l, n->in[3], &beta) < 0 || kl_gop_scalar(l, n->in[4], &alpha) < 0) return -1;
    s.alpha = (float)alpha;
    if (set_addend(l, n->in[0], beta, &s) < 0) return -1;
  }
  if (!kl_gspec_ok(l, &s)) return -1;
  return kl_gemm_kernel(c, ir_ops[op].name, &s) < 0 ? -1 : 1;
}

/* ---- entries ---------------------------------------------------------------- */

kl_gop kl_gop_of(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep || ep->build);
  ir_graph *g = kl_graph(c);
  ir_node *node = ir_node_get(g, id);
  const ir_type *rt = node->nout ? ir_vtype(g, node->out[0]) : NULL;
  return (kl_gop){.c = c,
                  .g = g,
                  .node = node,
                  .loc = node->loc,
                  .ep = ep,
                  .dt = rt && rt->kind == IR_T_TENSOR && rt->dtype != NN_DT_UNKNOWN ? rt->dtype
                                                                                    : NN_DT_F32};
}

int kl_lower_linear(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  kl_gop l = kl_gop_of(c, id, ep);
  return lower_linear(&l) < 0 ? -1 : 0;
}

int kl_lower_matmul(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  kl_gop l = kl_gop_of(c, id, ep);
  return lower_matmul(&l) < 0 ? -1 : 0;
}
