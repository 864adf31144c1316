/* injective.c — layout and index ops: each output element reads one
 * input element.
 *
 * A loop nest over the output, each element loaded from an index computed
 * from the output coordinates: permute, expand, repeat, slice, select,
 * flip, roll, pad, pixel_shuffle, upsample, tril/triu, embedding, index,
 * gather, index_select, one_hot, scatter. Padding and data-dependent
 * indices never read out of bounds: indices are clamped and the value
 * chosen with SELECT. Where PyTorch raises on an index's value (out of
 * range; negative, except for advanced indexing, which wraps it) the
 * kernel checks it too (kl_index, kl_check): the run then fails naming
 * the value, and the clamped index keeps the access in bounds meanwhile. cat/stack write one kernel per input into its
 * region; chunk/split/unbind are written per piece through
 * kl_lower_piece() where the list is unpacked.
 */
#include "lower.h"

#include <string.h>

/* The element of x at the coordinates xc (rank xr). */
static kx_id at(kl_ctx *c, kernel *k, int32_t slot, int xr, const ir_dim *xd, const kx_id *xc) {
  ir_dim st[KL_MAXR];
  kl_cstrides(c, xr, xd, st);
  return k_load(k, slot, kl_lin(c, k, xr, xc, st));
}

/* The element a reflect, replicate or circular pad reads: per padded dim,
 * the coordinate co = out - left is brought into [0, n): reflected about
 * the edges (-1 reads 1), clamped to them, or wrapped. PyTorch requires
 * pads smaller than the dim (reflect) or at most the dim (circular), so
 * one reflection or wrap suffices. */
static kx_id pad_mode(kl_ctx *c, kernel *k, int32_t xs, int xr, const ir_dim *xd, const kx_id *iv,
                      const int64_t *lv, int ln, const char *mode) {
  kx_id xc[KL_MAXR];
  for (int i = 0; i < xr; i++) xc[i] = iv[i];
  for (int j = 0; j < ln / 2; j++) {
    int d = xr - 1 - j;
    if (d < 0) return kl_unsupported(c);
    kx_id co = k_bin(k, KX_SUB, iv[d], k_i64(k, lv[2 * j]));
    kx_id n = kl_x(c, k, xd[d]), last = kl_x(c, k, kl_daddi(c, xd[d], -1));
    if (strcmp(mode, "reflect") == 0) {
      co = k_un(k, KX_ABS, co);                                                 /* the left edge */
      co = k_bin(k, KX_SUB, last, k_un(k, KX_ABS, k_bin(k, KX_SUB, last, co))); /* the right */
    } else if (strcmp(mode, "replicate") == 0) {
      co = k_bin(k, KX_MIN, k_bin(k, KX_MAX, co, k_i64(k, 0)), last);
    } else if (strcmp(mode, "circular") == 0) {
      co = k_bin(k, KX_MOD, co, n); /* floor mod: into [0, n) */
    } else {
      return kl_fail(c, "pad: mode \"%s\" is not one of constant, reflect, replicate, circular",
                     mode);
    }
    xc[d] = co;
  }
  return at(c, k, xs, xr, xd, xc);
}

/* A start offset along a dim of size `size` as an expression: v, counted
 * from the end when negative; with `clamp`, clamped into [0, size] like
 * slice's start (a start past a symbolic end needs no clamp: the slice is
 * then empty, and so is its loop). */
static kx_id start_at(kl_ctx *c, kernel *k, int64_t v, ir_dim size, bool clamp) {
  int64_t n;
  if (kl_dim_const(c, size, &n)) {
    if (v < 0) v += n;
    if (clamp) v = v < 0 ? 0 : v > n ? n : v;
    return k_i64(k, v);
  }
  if (v >= 0) return k_i64(k, v);
  kx_id s = kl_x(c, k, kl_daddi(c, size, v));
  return clamp ? k_bin(k, KX_MAX, s, k_i64(k, 0)) : s;
}

/* embedding and one_hot: per element of the index tensor (a loop nest over
 * its dims), the index is loaded and checked once (PyTorch raises for one
 * outside [0, n)), then an inner loop over the output's last dim writes a
 * row: the weight row it selects, or the one-hot row. */
static int lower_rows(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  bool emb = n->op == NN_OP_EMBEDDING;
  ir_value idx = emb ? n->in[1] : n->in[0];
  ir_dim od[KL_MAXR], xd[KL_MAXR], idims[KL_MAXR];
  int orank = kl_vshape(c, n->out[0], od), xr = kl_vshape(c, n->in[0], xd);
  int ir_ = kl_vshape(c, idx, idims);
  if (orank < 1 || ir_ < 0 || ir_ != orank - 1 || (emb && xr != 2)) return kl_unsupported(c);
  nn_dtype odt = kl_vdtype(c, n->out[0]);
  kernel *k = kl_kernel(c, ir_ops[n->op].name);
  int32_t os = kl_wslot(c, k, odt, kl_numel(c, orank, od), kl_value_buf(c, n->out[0]), "out");
  int32_t ws = emb ? kl_vslot(c, k, n->in[0], "w") : -1;
  int32_t is = kl_vslot(c, k, idx, emb ? "idx" : "x");
  kx_id iv[KL_MAXR] = {0};
  int nl = kl_nest(c, k, ir_, idims, iv, true, false, 0);
  ir_dim ist[KL_MAXR];
  kl_cstrides(c, ir_, idims, ist);
  kx_id flat = k_hoist(k, kl_lin(c, k, ir_, iv, ist)); /* the index element */
  kx_id raw = k_hoist(k, k_cast(k, NN_DT_I64, k_load(k, is, flat)));
  ir_dim width = od[orank - 1];
  kx_id wx = kl_x(c, k, width);
  kx_id row;
  if (emb) {
    row = kl_index(c, k, raw, xd[0], false, idx, -1);
  } else {
    kl_check(c, k, k_bin(k, KX_AND, k_bin(k, KX_GE, raw, k_i64(k, 0)), k_bin(k, KX_LT, raw, wx)),
             raw, wx, KP_CHECK_CLASS, idx, -1);
    row = raw;
  }
  row = k_hoist(k, row);
  kx_id base = k_hoist(k, k_bin(k, KX_MUL, flat, wx));
  int32_t j = k_for_begin(k, k_i64(k, 0), wx, KS_VECTOR);
  kx_id jv = k_varref(k, j), val;
  if (emb)
    val = k_load(k, ws, k_bin(k, KX_ADD, k_bin(k, KX_MUL, row, kl_x(c, k, xd[1])), jv));
  else
    val = k_cast(k, NN_DT_I64, k_bin(k, KX_EQ, row, jv));
  k_store(k, os, k_bin(k, KX_ADD, base, jv), k_cast(k, odt, val));
  k_for_end(k);
  kl_nest_end(k, nl);
  return 1;
}

/* Kernels with one output loop nest where each element is computed from
 * the output coordinates. */
static int lower_inj(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_op op = n->op;
  ir_value out = n->out[0];
  ir_dim od[KL_MAXR], xd[KL_MAXR];
  int orank = kl_vshape(c, out, od);
  int xr = kl_vshape(c, n->in[0], xd);
  if (orank < 0 || xr < 0) return kl_unsupported(c);
  nn_dtype odt = kl_vdtype(c, out);
  ir_dim xst[KL_MAXR];
  kl_cstrides(c, xr, xd, xst);
  /* operand checks before any kernel is created */
  int64_t i0 = 0, i1 = 0, i2 = 0;
  const int64_t *lv = NULL, *lv2 = NULL;
  int ln = 0, ln2 = 0;
  switch (op) {
  case NN_OP_PERMUTE:
  case NN_OP_FLIP:
  case NN_OP_REPEAT:
  case NN_OP_TILE:
  case NN_OP_PAD:
  case NN_OP_PAD_MODE:
    if (!kl_clist(c, 1, &lv, &ln)) return kl_unsupported(c);
    break;
  case NN_OP_ROLL:
    if (!kl_clist(c, 1, &lv, &ln) || !kl_clist(c, 2, &lv2, &ln2)) return kl_unsupported(c);
    break;
  case NN_OP_TRANSPOSE:
    if (!kl_cint(c, 1, &i0) || !kl_cint(c, 2, &i1)) return kl_unsupported(c);
    break;
  case NN_OP_SELECT:
  case NN_OP_TRIL:
  case NN_OP_TRIU:
  case NN_OP_PIXEL_SHUFFLE:
  case NN_OP_PIXEL_UNSHUFFLE:
  case NN_OP_CHANNEL_SHUFFLE:
  case NN_OP_GATHER:
  case NN_OP_INDEX_SELECT:
    if (!kl_cint(c, 1, &i0) || (op == NN_OP_SELECT && !kl_cint(c, 2, &i1)))
      return kl_unsupported(c);
    break;
  case NN_OP_NARROW:
    if (!kl_cint(c, 1, &i0) || !kl_cint(c, 2, &i1) || !kl_cint(c, 3, &i2)) return kl_unsupported(c);
    break;
  case NN_OP_SLICE:
    if (!kl_cint(c, 1, &i0) || !kl_cint(c, 4, &i2) || i2 <= 0) return kl_unsupported(c);
    i1 = 0;
    if (!kl_is_none(c, 2) && !kl_cint(c, 2, &i1)) return kl_unsupported(c);
    break;
  case NN_OP_EMBEDDING:
  case NN_OP_ONE_HOT: return lower_rows(c);
  default: break;
  }
  kernel *k = kl_kernel(c, ir_ops[op].name);
  int32_t os = kl_wslot(c, k, odt, kl_numel(c, orank, od), kl_value_buf(c, out), "out");
  int32_t xs = kl_vslot(c, k, n->in[0], op == NN_OP_EMBEDDING ? "w" : "x");
  nn_dtype xdt = kl_vdtype(c, n->in[0]);
  kx_id iv[KL_MAXR] = {0}, xc[KL_MAXR] = {0};
  int nl = kl_nest(c, k, orank, od, iv, true, true, 0);
  ir_dim ost[KL_MAXR];
  kl_cstrides(c, orank, od, ost);
  kx_id val = -1;
  switch (op) {
  case NN_OP_PERMUTE:
  case NN_OP_TRANSPOSE:
  case NN_OP_T: {
    int p[KL_MAXR];
    for (int i = 0; i < xr; i++) p[i] = i;
    if (op == NN_OP_PERMUTE) {
      for (int i = 0; i < xr && i < ln; i++) p[i] = kl_wrapdim(lv[i], xr);
    } else if (xr >= 2) {
      int a = op == NN_OP_T ? 0 : kl_wrapdim(i0, xr);
      int b = op == NN_OP_T ? 1 : kl_wrapdim(i1, xr);
      if (a < 0 || b < 0) return kl_unsupported(c);
      p[a] = b, p[b] = a;
    }
    for (int i = 0; i < xr; i++)
      if (p[i] < 0) return kl_unsupported(c);
    kx_id e = k_i64(k, 0);
    for (int j = 0; j < orank && j < xr; j++)
      e = k_bin(k, KX_ADD, e, k_bin(k, KX_MUL, iv[j], kl_x(c, k, xst[p[j]])));
    val = k_load(k, xs, e);
    break;
  }
  case NN_OP_EXPAND:
  case NN_OP_EXPAND_AS: {
    ir_dim st[KL_MAXR];
    kl_bstrides(c, xr, xd, orank, od, st);
    val = k_load(k, xs, kl_lin(c, k, orank, iv, st));
    break;
  }
  case NN_OP_REPEAT:
  case NN_OP_TILE: /* dims shorter than the rank leave the leading dims (shapes pass) */
    for (int i = 0; i < xr; i++) {
      int j = i + (orank - xr);
      xc[i] = k_bin(k, KX_MOD, iv[j], kl_x(c, k, xd[i]));
    }
    val = at(c, k, xs, xr, xd, xc);
    break;
  case NN_OP_SLICE:
  case NN_OP_NARROW:
  case NN_OP_SELECT: {
    int d = kl_wrapdim(i0, xr);
    if (d < 0) return kl_unsupported(c);
    int64_t step = op == NN_OP_SLICE ? i2 : 1;
    kx_id start = start_at(c, k, i1, xd[d], op == NN_OP_SLICE);
    for (int i = 0, j = 0; i < xr; i++) {
      if (i == d && op == NN_OP_SELECT) {
        xc[i] = start;
        continue;
      }
      xc[i] = i == d ? k_bin(k, KX_ADD, start, k_bin(k, KX_MUL, iv[j], k_i64(k, step))) : iv[j];
      j++;
    }
    val = at(c, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_FLIP:
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0; j < ln; j++) {
      int d = kl_wrapdim(lv[j], xr);
      if (d < 0) return kl_unsupported(c);
      xc[d] = k_bin(k, KX_SUB, kl_x(c, k, kl_daddi(c, xd[d], -1)), iv[d]);
    }
    val = at(c, k, xs, xr, xd, xc);
    break;
  case NN_OP_ROLL:
    if (ln2 == 0) { /* flattened */
      ir_dim tot = kl_numel(c, xr, xd);
      kx_id f = kl_lin(c, k, orank, iv, ost);
      int64_t sh = ln ? lv[0] : 0;
      val = k_load(k, xs,
                   k_bin(k, KX_MOD, k_bin(k, KX_SUB, f, k_i64(k, sh)),
                         kl_x(c, k, kl_dis(c, tot, 0) ? kl_d(c, 1) : tot)));
      break;
    }
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0; j < ln2 && j < ln; j++) {
      int d = kl_wrapdim(lv2[j], xr);
      if (d < 0) return kl_unsupported(c);
      xc[d] = k_bin(k, KX_MOD, k_bin(k, KX_SUB, xc[d], k_i64(k, lv[j])), kl_x(c, k, xd[d]));
    }
    val = at(c, k, xs, xr, xd, xc);
    break;
  case NN_OP_PAD:
  case NN_OP_PAD_MODE: {
    const char *mode = op == NN_OP_PAD_MODE ? kl_cstr(c, 2) : "constant";
    if (!mode) return kl_unsupported(c);
    if (strcmp(mode, "constant") != 0) {
      val = pad_mode(c, k, xs, xr, xd, iv, lv, ln, mode);
      if (val < 0) return -1;
      break;
    }
    kx_id ok = k_const_i(k, NN_DT_BOOL, 1);
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0; j < ln / 2; j++) {
      int d = xr - 1 - j;
      if (d < 0) return kl_unsupported(c);
      kx_id co = k_bin(k, KX_SUB, iv[d], k_i64(k, lv[2 * j]));
      ok = k_bin(k, KX_AND, ok,
                 k_bin(k, KX_AND, k_bin(k, KX_GE, co, k_i64(k, 0)),
                       k_bin(k, KX_LT, co, kl_x(c, k, xd[d]))));
      xc[d] = kl_clampd(c, k, co, 0, kl_dis(c, xd[d], 0) ? kl_d(c, 0) : kl_daddi(c, xd[d], -1));
    }
    double fill = 0;
    int vi = op == NN_OP_PAD_MODE ? 3 : 2;
    if (!kl_is_none(c, vi) && !kl_cnum(c, vi, &fill)) return kl_unsupported(c);
    if (kl_dis(c, kl_numel(c, xr, xd), 0))
      val = k_const_f(k, xdt, fill);
    else
      val = k_select(k, ok, at(c, k, xs, xr, xd, xc), k_const_f(k, xdt, fill));
    break;
  }
  case NN_OP_PIXEL_SHUFFLE: {
    int64_t f = i0;
    if (xr < 3 || f <= 0) return kl_unsupported(c);
    for (int i = 0; i < xr - 3; i++) xc[i] = iv[i];
    kx_id oh = iv[xr - 2], ow = iv[xr - 1], rf = k_i64(k, f);
    xc[xr - 3] = k_bin(k, KX_ADD, k_bin(k, KX_MUL, iv[xr - 3], k_i64(k, f * f)),
                       k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_bin(k, KX_MOD, oh, rf), rf),
                             k_bin(k, KX_MOD, ow, rf)));
    xc[xr - 2] = k_bin(k, KX_FLOORDIV, oh, rf);
    xc[xr - 1] = k_bin(k, KX_FLOORDIV, ow, rf);
    val = at(c, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_UPSAMPLE_NEAREST2D: {
    if (xr < 2) return kl_unsupported(c);
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    for (int j = 0; j < 2; j++) {
      int d = xr - 2 + j;
      /* PyTorch: src = min(floor(dst * scale), in - 1) in float, scale =
       * 1/scale_factor when given, else in/out */
      double sc;
      int64_t in, on;
      kx_id scale;
      if (kl_cnum(c, 2 + j, &sc) && sc > 0)
        scale = k_const_f(k, NN_DT_F32, (float)(1.0 / sc));
      else if (kl_dim_const(c, xd[d], &in) && kl_dim_const(c, od[d], &on))
        scale = k_const_f(k, NN_DT_F32, (float)in / (float)(on ? on : 1));
      else
        scale = k_bin(k, KX_DIV, k_cast(k, NN_DT_F32, kl_x(c, k, xd[d])),
                      k_cast(k, NN_DT_F32, kl_x(c, k, od[d])));
      kx_id fpos = k_bin(k, KX_MUL, k_cast(k, NN_DT_F32, iv[d]), scale);
      xc[d] = k_cast(k, NN_DT_I64, k_un(k, KX_FLOOR, fpos));
      xc[d] = k_bin(k, KX_MIN, xc[d], kl_x(c, k, kl_daddi(c, xd[d], -1)));
    }
    val = at(c, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_PIXEL_UNSHUFFLE: {
    /* out[.., c*f*f + i*f + j, h, w] = x[.., c, h*f + i, w*f + j] */
    int64_t f = i0;
    if (xr < 3 || f <= 0) return kl_unsupported(c);
    for (int i = 0; i < xr - 3; i++) xc[i] = iv[i];
    kx_id oc = iv[xr - 3], rf = k_i64(k, f), ff = k_i64(k, f * f);
    kx_id rem = k_bin(k, KX_MOD, oc, ff);
    xc[xr - 3] = k_bin(k, KX_FLOORDIV, oc, ff);
    xc[xr - 2] = k_bin(k, KX_ADD, k_bin(k, KX_MUL, iv[xr - 2], rf), k_bin(k, KX_FLOORDIV, rem, rf));
    xc[xr - 1] = k_bin(k, KX_ADD, k_bin(k, KX_MUL, iv[xr - 1], rf), k_bin(k, KX_MOD, rem, rf));
    val = at(c, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_CHANNEL_SHUFFLE: {
    /* output channel a*g + b reads input channel b*(C/g) + a */
    if (xr < 2 || i0 <= 0) return kl_unsupported(c);
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    kx_id g = k_i64(k, i0), per = k_bin(k, KX_FLOORDIV, kl_x(c, k, xd[1]), g);
    xc[1] = k_bin(k, KX_ADD, k_bin(k, KX_MUL, k_bin(k, KX_MOD, iv[1], g), per),
                  k_bin(k, KX_FLOORDIV, iv[1], g));
    val = at(c, k, xs, xr, xd, xc);
    break;
  }
  case NN_OP_TRIL:
  case NN_OP_TRIU: {
    if (xr < 2) return kl_unsupported(c);
    kx_id diff = k_bin(k, KX_SUB, iv[xr - 1], iv[xr - 2]);
    kx_id keep = k_bin(k, op == NN_OP_TRIL ? KX_LE : KX_GE, diff, k_i64(k, i0));
    val = k_select(k, keep, k_load(k, xs, kl_lin(c, k, orank, iv, ost)), k_const_i(k, xdt, 0));
    break;
  }
  case NN_OP_GATHER:
  case NN_OP_INDEX_SELECT: {
    int d = kl_wrapdim(i0, xr);
    ir_dim idims[KL_MAXR];
    int ir_ = kl_vshape(c, n->in[2], idims);
    if (d < 0 || ir_ < 0 || xr == 0) return kl_unsupported(c);
    int32_t is = kl_vslot(c, k, n->in[2], "idx");
    kx_id ie;
    if (op == NN_OP_GATHER) {
      ir_dim ist[KL_MAXR];
      kl_cstrides(c, ir_, idims, ist);
      ie = kl_lin(c, k, ir_, iv, ist);
    } else {
      ie = iv[d];
    }
    kx_id co = k_cast(k, NN_DT_I64, k_load(k, is, ie));
    for (int i = 0; i < xr; i++) xc[i] = iv[i];
    /* PyTorch: an index outside [0, size) raises, negative ones too */
    xc[d] = kl_index(c, k, co, xd[d], false, n->in[2], op == NN_OP_GATHER ? d : -1);
    val = at(c, k, xs, xr, xd, xc);
    break;
  }
  default: NN_UNREACHABLE();
  }
  k_store(k, os, kl_lin(c, k, orank, iv, ost), k_cast(k, odt, val));
  kl_nest_end(k, nl);
  return 1;
}

/* index(x, indices): advanced indexing with integer index tensors (none
 * entries keep their dim); the broadcast index shape replaces the indexed
 * dims where they are adjacent, else it leads (shapes.c's rule). Negative
 * indices count from the end; ones outside [-size, size) fail the run. */
static int lower_index(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_nodeid def = kl_graph(c)->values.data[n->in[1]].def;
  const ir_node *ln = def >= 0 ? ir_node_get(kl_graph(c), def) : NULL;
  if (!ln || ln->op != NN_OP_LIST_CONSTRUCT) return kl_unsupported(c);
  ir_dim xd[KL_MAXR], od[KL_MAXR];
  int xr = kl_vshape(c, n->in[0], xd), orank = kl_vshape(c, n->out[0], od);
  if (xr < 0 || orank < 0 || ln->nin > xr) return kl_unsupported(c);
  int ni = ln->nin, first = -1, last = -1, br = 0;
  bool adjacent = true;
  ir_dim bd[KL_MAXR];
  for (int j = 0; j < ni; j++) {
    const ir_type *t = ir_vtype(kl_graph(c), ln->in[j]);
    if (t->kind == IR_T_NONE) continue;
    if (t->kind != IR_T_TENSOR || t->dtype == NN_DT_BOOL || t->dtype == NN_DT_U8)
      return kl_unsupported(c);
    if (first >= 0 && last != j - 1) adjacent = false;
    if (first < 0) first = j;
    last = j;
    ir_dim d[KL_MAXR];
    int r = kl_vshape(c, ln->in[j], d);
    if (r < 0) return kl_unsupported(c);
    /* broadcast (bd, br) with (d, r) */
    int rr = r > br ? r : br;
    ir_dim nd[KL_MAXR] = {0};
    for (int i = 0; i < rr; i++) {
      int a = i - (rr - br), b = i - (rr - r);
      ir_dim x = a >= 0 ? bd[a] : kl_d(c, 1), y = b >= 0 ? d[b] : kl_d(c, 1);
      nd[i] = kl_dis(c, x, 1) ? y : x;
    }
    memcpy(bd, nd, sizeof nd);
    br = rr;
  }
  if (adjacent && (first < 0 || first >= KL_MAXR)) return kl_unsupported(c);
  kernel *k = kl_kernel(c, "index");
  nn_dtype odt = kl_vdtype(c, n->out[0]);
  int32_t os = kl_wslot(c, k, odt, kl_numel(c, orank, od), kl_value_buf(c, n->out[0]), "out");
  int32_t xs = kl_vslot(c, k, n->in[0], "x");
  kx_id iv[KL_MAXR] = {0}, xc[KL_MAXR] = {0};
  int nl = kl_nest(c, k, orank, od, iv, true, true, 0);
  /* coordinates of the broadcast index shape within the output */
  int bpos = adjacent ? first : 0;
  const kx_id *bc = iv + bpos;
  int r = 0; /* output dim cursor for the non-indexed dims */
  if (!adjacent) r = br;
  for (int i = 0; i < xr; i++) {
    bool indexed = i < ni && ir_vtype(kl_graph(c), ln->in[i])->kind != IR_T_NONE;
    if (adjacent && i == first) r += br;
    if (!indexed) {
      xc[i] = iv[r++];
      continue;
    }
    ir_dim d[KL_MAXR], st[KL_MAXR];
    int ir_ = kl_vshape(c, ln->in[i], d);
    kl_bstrides(c, ir_, d, br, bd, st);
    char name[16];
    snprintf(name, sizeof name, "i%d", i);
    int32_t is = kl_vslot(c, k, ln->in[i], name);
    kx_id co = k_cast(k, NN_DT_I64, k_load(k, is, kl_lin(c, k, br, bc, st)));
    /* PyTorch: negative indices count from the end; outside [-size, size)
     * raises */
    xc[i] = kl_index(c, k, co, xd[i], true, ln->in[i], i);
  }
  ir_dim ost[KL_MAXR];
  kl_cstrides(c, orank, od, ost);
  k_store(k, os, kl_lin(c, k, orank, iv, ost), k_cast(k, odt, at(c, k, xs, xr, xd, xc)));
  kl_nest_end(k, nl);
  return 1;
}

/* scatter(x, dim, index, src | value): a copy of x, then (sequentially, so
 * later writes win) out[.. index[i] ..] = src[i] over index's elements. */
static int lower_scatter(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_dim xd[KL_MAXR], id[KL_MAXR], sd[KL_MAXR];
  int64_t dim;
  int xr = kl_vshape(c, n->in[0], xd), ir_ = kl_vshape(c, n->in[2], id);
  if (xr < 0 || ir_ != xr || !kl_cint(c, 1, &dim) || kl_wrapdim(dim, xr) < 0)
    return kl_unsupported(c);
  int d = kl_wrapdim(dim, xr);
  const ir_const *vc = kl_cst(c, 3);
  int sr = vc ? 0 : kl_vshape(c, n->in[3], sd);
  if (!vc && sr != xr && sr != 0) return kl_unsupported(c);
  nn_dtype odt = kl_vdtype(c, n->out[0]);
  ir_dim tot = kl_numel(c, xr, xd);
  kp_bufid ob = kl_value_buf(c, n->out[0]);
  /* copy */
  kernel *k = kl_kernel(c, "scatter_copy");
  int32_t os = kl_wslot(c, k, odt, tot, ob, "out");
  int32_t xs = kl_vslot(c, k, n->in[0], "x");
  kx_id iv[KL_MAXR];
  int nl = kl_nest(c, k, 1, &tot, iv, true, true, 0);
  k_store(k, os, iv[0], k_cast(k, odt, k_load(k, xs, iv[0])));
  kl_nest_end(k, nl);
  /* scatter */
  k = kl_kernel(c, "scatter");
  os = kl_wslot(c, k, odt, tot, ob, "out");
  int32_t is = kl_vslot(c, k, n->in[2], "idx");
  int32_t ss = vc ? -1 : kl_vslot(c, k, n->in[3], "src");
  nl = kl_nest(c, k, ir_, id, iv, false, false, 0);
  ir_dim ist[KL_MAXR];
  kl_cstrides(c, ir_, id, ist);
  kx_id xc[KL_MAXR];
  for (int i = 0; i < xr; i++) xc[i] = iv[i];
  /* PyTorch: an index outside [0, size) raises, negative ones too */
  xc[d] = kl_index(c, k, k_cast(k, NN_DT_I64, k_load(k, is, kl_lin(c, k, ir_, iv, ist))), xd[d],
                   false, n->in[2], d);
  kx_id val;
  if (vc)
    val = vc->kind == IR_C_FLOAT ? k_const_f(k, odt, vc->f) : k_const_i(k, odt, vc->i);
  else if (sr == 0)
    val = k_load(k, ss, k_i64(k, 0));
  else {
    ir_dim sst[KL_MAXR];
    kl_cstrides(c, sr, sd, sst);
    val = k_load(k, ss, kl_lin(c, k, sr, iv, sst));
  }
  ir_dim xst[KL_MAXR];
  kl_cstrides(c, xr, xd, xst);
  k_store(k, os, kl_lin(c, k, xr, xc, xst), k_cast(k, odt, val));
  kl_nest_end(k, nl);
  return 1;
}

/* ---- lists: cat, stack, pieces -------------------------------------------------- */

/* A tensor that is a piece of a list: the value `v` itself (dim < 0), or
 * the part of v starting at `start` along `dim` (removed when `removed`).
 * Shape inference splits only dims that are numbers, so `start` is one;
 * the other dims may be symbolic. */
typedef struct piece {
  ir_value v; /* the whole tensor */
  int vrank;
  ir_dim vdims[KL_MAXR];
  int dim;       /* split dim, -1 for the whole tensor */
  int64_t start; /* offset along dim */
  bool removed;  /* unbind: dim dropped */
  int rank;      /* the piece's shape */
  ir_dim dims[KL_MAXR];
} piece;

/* Piece p of chunk/split/unbind node sn; -1 after reporting. */
static int split_piece(kl_ctx *c, ir_nodeid sn, int p, piece *out) {
  const ir_node *n = ir_node_get(kl_graph(c), sn);
  memset(out, 0, sizeof *out);
  out->v = n->in[0];
  out->vrank = kl_vshape(c, out->v, out->vdims);
  if (out->vrank <= 0) return -1;
  int64_t dim;
  int di = n->op == NN_OP_UNBIND ? 1 : 2;
  const ir_const *dc;
  if (!ir_value_const(kl_graph(c), n->in[di], &dc) || dc->kind != IR_C_INT) return -1;
  dim = dc->i;
  int d = kl_wrapdim(dim, out->vrank);
  if (d < 0) return -1;
  int64_t size, start = 0, len = 0;
  if (!kl_dim_const(c, out->vdims[d], &size)) return -1;
  if (n->op == NN_OP_UNBIND) {
    if (p < 0 || p >= size) return -1;
    start = p, len = 1;
    out->removed = true;
  } else {
    const ir_const *sc;
    if (!ir_value_const(kl_graph(c), n->in[1], &sc)) return -1;
    if (sc->kind == IR_C_INTLIST) { /* split with explicit sizes */
      if (p < 0 || p >= sc->n) return -1;
      for (int j = 0; j < p; j++) start += sc->ints[j];
      len = sc->ints[p];
    } else if (sc->kind == IR_C_INT && sc->i > 0) {
      int64_t piece_len = n->op == NN_OP_CHUNK ? (size > 0 ? (size - 1) / sc->i + 1 : 0) : sc->i;
      int64_t count = piece_len ? (size - 1) / piece_len + 1 : 1;
      if (p < 0 || p >= count) return -1;
      start = piece_len * p;
      len = size - start < piece_len ? size - start : piece_len;
    } else {
      return -1;
    }
    if (start < 0 || len < 0 || start + len > size) return -1;
  }
  out->dim = d;
  out->start = start;
  out->rank = 0;
  for (int i = 0; i < out->vrank; i++) {
    if (i == d && out->removed) continue;
    out->dims[out->rank++] = i == d ? kl_d(c, len) : out->vdims[i];
  }
  return 0;
}

/* One kernel copying piece pc into buffer dst (dtype ddt, delems
 * elements): element c of the piece goes to dst[base + sum c[i]*ost[i]]. */
static void copy_piece(kl_ctx *c, const piece *pc, kp_bufid dst, nn_dtype ddt, ir_dim delems,
                       ir_dim base, const ir_dim *ost, const char *what) {
  if (kl_dis(c, kl_numel(c, pc->rank, pc->dims), 0)) return;
  kernel *k = kl_kernel(c, what);
  int32_t os = kl_wslot(c, k, ddt, delems, dst, "out");
  int32_t xs = kl_vslot(c, k, pc->v, "x");
  kx_id iv[KL_MAXR], xc[KL_MAXR];
  int nl = kl_nest(c, k, pc->rank, pc->dims, iv, true, true, 0);
  for (int i = 0, j = 0; i < pc->vrank; i++) {
    if (i == pc->dim && pc->removed) {
      xc[i] = k_i64(k, pc->start);
      continue;
    }
    xc[i] = i == pc->dim ? k_bin(k, KX_ADD, iv[j], k_i64(k, pc->start)) : iv[j];
    j++;
  }
  kx_id oidx = k_bin(k, KX_ADD, kl_x(c, k, base), kl_lin(c, k, pc->rank, iv, ost));
  k_store(k, os, oidx, k_cast(k, ddt, at(c, k, xs, pc->vrank, pc->vdims, xc)));
  kl_nest_end(k, nl);
}

static int lower_cat(kl_ctx *c) {
  const ir_node *n = kl_cur(c);
  ir_value list = n->in[0];
  ir_nodeid def = kl_graph(c)->values.data[list].def;
  const ir_node *ln = def >= 0 ? ir_node_get(kl_graph(c), def) : NULL;
  if (!ln) return kl_unsupported(c);
  int count;
  bool from_split = ln->op == NN_OP_CHUNK || ln->op == NN_OP_SPLIT || ln->op == NN_OP_UNBIND;
  if (ln->op == NN_OP_LIST_CONSTRUCT) {
    count = ln->nin;
  } else if (from_split) {
    count = 0;
    piece tmp;
    while (count < (1 << 20) && split_piece(c, def, count, &tmp) == 0) count++;
  } else {
    return kl_unsupported(c);
  }
  ir_dim od[KL_MAXR] = {0}, ost[KL_MAXR] = {0};
  int64_t dim;
  int orank = kl_vshape(c, n->out[0], od);
  if (orank < 0 || !kl_cint(c, 1, &dim)) return kl_unsupported(c);
  bool stack = n->op == NN_OP_STACK;
  int d = kl_wrapdim(dim, orank);
  if (d < 0) return kl_unsupported(c);
  kl_cstrides(c, orank, od, ost);
  kp_bufid dst = kl_value_buf(c, n->out[0]);
  nn_dtype odt = kl_vdtype(c, n->out[0]);
  ir_dim on = kl_numel(c, orank, od);
  ir_dim off = kl_d(c, 0);
  for (int j = 0; j < count; j++) {
    piece pc;
    if (from_split) {
      if (split_piece(c, def, j, &pc) < 0) return kl_unsupported(c);
    } else {
      memset(&pc, 0, sizeof pc);
      pc.v = ln->in[j];
      pc.dim = -1;
      pc.vrank = kl_vshape(c, pc.v, pc.vdims);
      if (pc.vrank < 0) return kl_unsupported(c);
      pc.rank = pc.vrank;
      memcpy(pc.dims, pc.vdims, sizeof pc.dims);
    }
    ir_dim pst[KL_MAXR];
    if (stack) {
      if (pc.rank != orank - 1) return kl_unsupported(c);
      for (int i = 0; i < pc.rank; i++) pst[i] = ost[i < d ? i : i + 1];
      copy_piece(c, &pc, dst, odt, on, kl_dmul(c, kl_d(c, j), ost[d]), pst, "stack");
    } else {
      if (pc.rank == 1 && kl_dis(c, pc.dims[0], 0) && orank != 1)
        continue; /* legacy empty tensor */
      if (pc.rank != orank) return kl_unsupported(c);
      copy_piece(c, &pc, dst, odt, on, kl_dmul(c, off, ost[d]), ost, "cat");
      off = kl_dadd(c, off, pc.dims[d]);
    }
  }
  return 1;
}

int kl_lower_piece(kl_ctx *c, ir_nodeid split_node, int p, kp_bufid dst) {
  const ir_node *sn = ir_node_get(kl_graph(c), split_node);
  piece pc;
  if (split_piece(c, split_node, p, &pc) < 0) {
    nn_error(kl_diag(c), sn->loc, "cannot take piece %d of '%s'", p, ir_ops[sn->op].name);
    return -1;
  }
  ir_dim st[KL_MAXR];
  kl_cstrides(c, pc.rank, pc.dims, st);
  copy_piece(c, &pc, dst, kl_vdtype(c, pc.v), kl_numel(c, pc.rank, pc.dims), kl_d(c, 0), st,
             ir_ops[sn->op].name);
  return 0;
}

int kl_lower_inj(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_inj(c));
}

int kl_lower_index(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_index(c));
}

int kl_lower_scatter(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_scatter(c));
}

int kl_lower_cat(kl_ctx *c, ir_nodeid id, const kl_epilogue *ep) {
  NN_ASSERT(!ep && id == kl_node(c));
  return kl_result(c, lower_cat(c));
}
