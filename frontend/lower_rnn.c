/* lower_rnn.c — the recurrent layers (aten::lstm, gru, rnn_tanh, rnn_relu)
 * expanded as the frontend reads them.
 *
 * A traced nn.LSTM/GRU/RNN calls one ATen op that runs every layer in
 * both directions. The graph gets, per layer and direction, the input
 * projection of every time step as one linear (a GEMM over T*B rows) and
 * an rnn_scan (the recurrence: a small GEMM per step and the gate math),
 * then the directions concatenated along the features as the next layer's
 * input; the final states are stacked like PyTorch's h_n and c_n.
 * batch_first transposes in and out. Dropout between layers is identity at
 * inference.
 *
 * The parameter list is PyTorch's flat order: for each layer, for each
 * direction, w_ih, w_hh, then b_ih, b_hh with biases, then w_hr with a
 * projection (proj_size > 0, LSTM only).
 */
#include "lower_internal.h"

#include <string.h>

static ir_value node1(lower *L, ir_op op, int nin, const ir_value *in, nn_loc loc) {
  ir_nodeid id = lw_append(L, op, nin, in, 1, loc);
  ir_value v = ir_node_get(L->g, id)->out[0];
  ir_set_type(L->g, v, lw_tensor_unknown(L));
  return v;
}

static ir_value cst(lower *L, ir_const c, nn_loc loc) { return lw_const_node(L, &c, loc); }

static ir_value cint(lower *L, int64_t i, nn_loc loc) {
  return cst(L, (ir_const){.kind = IR_C_INT, .i = i}, loc);
}

/* The tensors of a list operand written out in the call ([h0, c0],
 * [w_ih, w_hh, ...]); false after reporting anything else. */
static bool tensor_items(lower *L, const lval *v, const char *what, const char *op, ir_value **out,
                         int *n, nn_loc loc) {
  if (!v || v->kind != LV_TUPLE) {
    nn_error(L->d, loc, "'%s' needs its %s as a list written out in the call, got %s", op, what,
             v ? lv_describe(L, v) : "nothing");
    return false;
  }
  *out = nn_alloc(L->arena, sizeof(ir_value) * (size_t)(v->n + 1));
  for (int i = 0; i < v->n; i++) {
    if (v->items[i]->kind != LV_VALUE) {
      nn_error(L->d, loc, "'%s': %s[%d] is %s, not a tensor", op, what, i,
               lv_describe(L, v->items[i]));
      return false;
    }
    (*out)[i] = v->items[i]->v;
  }
  *n = v->n;
  return true;
}

static bool known(lower *L, const lval *v, const char *what, const char *op, ir_const *c,
                  nn_loc loc) {
  if (v && lw_known_scalar(L, v, c)) return true;
  nn_error(L->d, loc, "'%s': %s must be known when the model is compiled", op, what);
  return false;
}

lval *lw_expand_rnn(lower *L, ir_op op, lval **slots, nn_loc loc) {
  const char *name = ir_ops[op].name;
  const char *mode = op == NN_OP_LSTM ? "lstm" : op == NN_OP_GRU ? "gru" : name;
  ir_const hb, nl, bi, bf;
  if (!known(L, slots[3], "has_biases", name, &hb, loc) ||
      !known(L, slots[4], "num_layers", name, &nl, loc) ||
      !known(L, slots[7], "bidirectional", name, &bi, loc) ||
      !known(L, slots[8], "batch_first", name, &bf, loc))
    return lv_poison(L);
  ir_value *params, *hx;
  int np, nh = 1;
  if (!tensor_items(L, slots[2], "params", name, &params, &np, loc)) return lv_poison(L);
  if (op == NN_OP_LSTM) {
    if (!tensor_items(L, slots[1], "hx", name, &hx, &nh, loc)) return lv_poison(L);
    if (nh != 2) {
      nn_error(L->d, loc, "'lstm': hx must be [h0, c0], got %d tensors", nh);
      return lv_poison(L);
    }
  } else {
    if (slots[1]->kind != LV_VALUE) {
      nn_error(L->d, loc, "'%s': hx must be a tensor, got %s", name, lv_describe(L, slots[1]));
      return lv_poison(L);
    }
    hx = &slots[1]->v;
  }
  int64_t layers = nl.i, dirs = bi.i ? 2 : 1;
  int64_t base = hb.i ? 4 : 2;
  int64_t per = layers > 0 && np % (layers * dirs) == 0 ? np / (layers * dirs) : -1;
  bool proj = per == base + 1 && op == NN_OP_LSTM;
  if (layers < 1 || (per != base && !proj)) {
    nn_error(L->d, loc, "'%s': %d parameter tensors do not fit %lld layer(s), %lld direction(s)%s",
             name, np, (long long)layers, (long long)dirs,
             hb.i ? " with biases" : " without biases");
    return lv_poison(L);
  }
  ir_value none = cst(L, (ir_const){.kind = IR_C_NONE}, loc);
  ir_value modev = cst(L, (ir_const){.kind = IR_C_STR, .s = mode}, loc);
  ir_value x = slots[0]->kind == LV_VALUE ? slots[0]->v : lw_materialize(L, slots[0], loc);
  if (bf.i)
    x = node1(L, NN_OP_TRANSPOSE, 3, (ir_value[]){x, cint(L, 0, loc), cint(L, 1, loc)}, loc);
  lval *hs = lv_new(L, LV_TUPLE), *cs = lv_new(L, LV_TUPLE);
  int nstates = (int)(layers * dirs);
  hs->items = nn_alloc(L->arena, sizeof(lval *) * (size_t)nstates);
  cs->items = nn_alloc(L->arena, sizeof(lval *) * (size_t)nstates);
  for (int64_t l = 0; l < layers; l++) {
    lval *ys = lv_new(L, LV_TUPLE);
    ys->items = nn_alloc(L->arena, sizeof(lval *) * 2);
    for (int64_t d = 0; d < dirs; d++) {
      int64_t idx = l * dirs + d;
      const ir_value *p = params + idx * per;
      ir_value b_ih = hb.i ? p[2] : none, b_hh = hb.i ? p[3] : none;
      ir_value w_hr = proj ? p[per - 1] : none;
      ir_value xp = node1(L, NN_OP_LINEAR, 3, (ir_value[]){x, p[0], b_ih}, loc);
      ir_value at = cint(L, idx, loc), zero = cint(L, 0, loc);
      ir_value h0 = node1(L, NN_OP_SELECT, 3, (ir_value[]){hx[0], zero, at}, loc);
      ir_value c0 = op == NN_OP_LSTM ? node1(L, NN_OP_SELECT, 3, (ir_value[]){hx[1], zero, at}, loc)
                                     : none;
      ir_value rev = cst(L, (ir_const){.kind = IR_C_BOOL, .i = d == 1}, loc);
      ir_value in[8] = {xp, h0, c0, p[1], b_hh, w_hr, modev, rev};
      ir_nodeid sid = lw_append(L, NN_OP_RNN_SCAN, 8, in, 3, loc);
      const ir_node *sn = ir_node_get(L->g, sid);
      ir_value y = sn->out[0], hn = sn->out[1], cn = sn->out[2];
      for (int r = 0; r < 3; r++) ir_set_type(L->g, sn->out[r], lw_tensor_unknown(L));
      ys->items[ys->n++] = lv_value(L, y);
      hs->items[hs->n++] = lv_value(L, hn);
      cs->items[cs->n++] = lv_value(L, cn);
    }
    x = dirs == 1 ? ys->items[0]->v
                  : node1(L, NN_OP_CAT, 2,
                          (ir_value[]){lw_materialize(L, ys, loc), cint(L, 2, loc)}, loc);
  }
  if (bf.i)
    x = node1(L, NN_OP_TRANSPOSE, 3, (ir_value[]){x, cint(L, 0, loc), cint(L, 1, loc)}, loc);
  lval *t = lv_new(L, LV_TUPLE);
  t->n = ir_ops[op].nout;
  t->items = nn_alloc(L->arena, sizeof(lval *) * 3);
  t->items[0] = lv_value(L, x);
  t->items[1] = lv_value(L, node1(L, NN_OP_STACK, 2,
                                  (ir_value[]){lw_materialize(L, hs, loc), cint(L, 0, loc)}, loc));
  if (op == NN_OP_LSTM)
    t->items[2] = lv_value(L,
                           node1(L, NN_OP_STACK, 2,
                                 (ir_value[]){lw_materialize(L, cs, loc), cint(L, 0, loc)}, loc));
  return t;
}
