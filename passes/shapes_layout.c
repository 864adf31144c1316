/* shapes_layout.c — shape rules for the ops that move elements without
 * computing them: view and reshape, flatten, squeeze, expand, permute,
 * slicing, splitting, concatenation, padding, upsampling, and indexing.
 *
 * These are the rules where symbolic dims matter most: a view of [b,s,768]
 * as [b,s,12,64] must carry b and s through, an inferred -1 is a quotient
 * of dim expressions, and slices of symbolic dims get lengths computed with
 * Python's clamping where the bounds are constants. Where the equality of
 * two symbolic dims cannot be decided, a rule assumes that they fit; a
 * later pass emits the runtime guards.
 */
#include "shapes_internal.h"

#include <math.h>
#include <string.h>

/* ---- rules: shape and layout ------------------------------------------ */

/* Appends the factors of d (a product is split into its operands; the
 * constant factors multiply into *c). */
static void factors(sh *s, ir_dim d, ir_dim *out, int *n, int cap, int64_t *c) {
  const ir_dimexpr *e = ir_dim_get(s->g, d);
  int64_t k;
  if (dc(s, d, &k) && !__builtin_mul_overflow(*c, k, &k)) {
    *c = k;
  } else if (e && e->kind == IR_DK_MUL && *n + 2 <= cap) {
    factors(s, e->a, out, n, cap, c);
    factors(s, e->b, out, n, cap, c);
  } else if (*n < cap) {
    out[(*n)++] = d;
  }
}

/* total / known where known divides total: equal factors cancel first,
 * so [b,24,2,h,w] viewed as [b,-1,h,w] gives 48 rather than a quotient of
 * expanded polynomials. */
static ir_dim quotient(sh *s, int nt, const ir_dim *td, int nk, const ir_dim *kd) {
  enum { CAP = 64 };
  ir_dim t[CAP], k[CAP];
  int n1 = 0, n2 = 0;
  int64_t c1 = 1, c2 = 1;
  for (int i = 0; i < nt; i++) factors(s, td[i], t, &n1, CAP, &c1);
  for (int i = 0; i < nk; i++) factors(s, kd[i], k, &n2, CAP, &c2);
  int left = 0;
  for (int j = 0; j < n2; j++) {
    int hit = -1;
    for (int i = 0; i < n1 && hit < 0; i++)
      if (t[i] == k[j]) hit = i;
    if (hit < 0) {
      k[left++] = k[j];
      continue;
    }
    t[hit] = t[--n1];
  }
  ir_dim num = sh_numel(s, n1, t), den = sh_numel(s, left, k);
  if (c2 != 0 && c1 % c2 == 0)
    num = ir_dim_mul(s->g, num, D(s, c1 / c2));
  else
    num = ir_dim_mul(s->g, num, D(s, c1)), den = ir_dim_mul(s->g, den, D(s, c2));
  return ir_dim_div(s->g, num, den);
}

/* view/reshape(x, shape): one -1 is inferred from the element count. */
void sh_r_view(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int64_t *v;
  ir_dim *y;
  int n;
  if (!sh_opshape(s, 1, "shape", false, &v, &y, &n)) return;
  int infer = -1;
  ir_dim *o = dims_new(s, n);
  ir_dim known = D(s, 1);
  for (int j = 0; j < n; j++) {
    if (v[j] == -1 && infer < 0) {
      infer = j;
      continue;
    }
    if (v[j] < 0 && v[j] != SH_SYM) {
      sh_err(s, "invalid size %lld in shape %s", (long long)v[j], sh_shape_str(s, n, v, y));
      return;
    }
    o[j] = sh_shape_dim(s, v, y, j);
    known = ir_dim_mul(s->g, known, o[j]);
  }
  ir_dim total = sh_numel(s, x->rank, x->dims);
  bool any_unknown = known == IR_DIM_UNKNOWN || total == IR_DIM_UNKNOWN;
  for (int i = 0; i < x->rank; i++)
    if (x->dims[i] == IR_DIM_UNKNOWN) any_unknown = false; /* nothing to say */
  if (any_unknown) {
    sh_err(s, "the element count of %s or %s is out of range", sh_tstr(s, x),
           sh_shape_str(s, n, v, y));
    return;
  }
  int64_t ct, ck;
  bool consts = dc(s, total, &ct) && dc(s, known, &ck);
  if (infer >= 0) {
    if (consts && (ck == 0 || ct % ck != 0)) goto bad;
    ir_dim *kd = dims_new(s, n);
    int nk = 0;
    for (int j = 0; j < n; j++)
      if (j != infer) kd[nk++] = o[j];
    o[infer] = consts ? ir_dim_div(s->g, total, known) : quotient(s, x->rank, x->dims, nk, kd);
    /* PyTorch raises when the element count is not a multiple of the
     * known sizes: at run time a guard checks it (nothing is added when it
     * always is: the remainder folds to 0) */
    if (!consts) sh_assume_equal(s, ir_dim_mod(s->g, total, known), D(s, 0));
  } else if (consts && ct != ck) {
    goto bad;
  } else if (!consts) {
    sh_assume_equal(s, total, known); /* the sizes must hold every element */
  }
  set(s, 0, tensor(s, x->dtype, n, o));
  return;
bad:
  sh_err(s, "cannot view %s as %s", sh_tstr(s, x), sh_shape_str(s, n, v, y));
}

/* flatten(x, start_dim, end_dim). */
void sh_r_flatten(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int a, b;
  if (!sh_opdim(s, 1, x->rank, 0, &a) || !sh_opdim(s, 2, x->rank, 0, &b)) return;
  if (x->rank == 0) {
    ir_dim one = D(s, 1);
    set(s, 0, tensor(s, x->dtype, 1, &one));
    return;
  }
  if (a > b) {
    sh_err(s, "start_dim %d is after end_dim %d", a, b);
    return;
  }
  int r = x->rank - (b - a);
  ir_dim *o = dims_new(s, r);
  memcpy(o, x->dims, sizeof *o * (size_t)a);
  o[a] = sh_numel(s, b - a + 1, x->dims + a);
  memcpy(o + a + 1, x->dims + b + 1, sizeof *o * (size_t)(x->rank - b - 1));
  set(s, 0, tensor(s, x->dtype, r, o));
}

/* unflatten(x, dim, sizes): dim becomes len(sizes) dims; one size may be
 * -1 (inferred), and their product must be the dim's size. */
void sh_r_unflatten(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int d;
  int64_t *v;
  int n;
  if (!sh_opdim(s, 1, x->rank, 0, &d) || !sh_oplist(s, 2, "sizes", &v, &n)) return;
  if (x->rank == 0 || n < 1 || x->rank - 1 + n > 64) {
    sh_err(s, "cannot unflatten %s into %d dims", sh_tstr(s, x), n);
    return;
  }
  int infer = -1;
  int64_t known = 1;
  for (int j = 0; j < n; j++) {
    if (v[j] == -1 && infer < 0) {
      infer = j;
    } else if (v[j] < 0 || (v[j] && known > INT64_MAX / v[j])) {
      sh_err(s, "bad sizes %s", sh_shape_str(s, n, v, NULL));
      return;
    } else {
      known *= v[j];
    }
  }
  int r = x->rank - 1 + n;
  ir_dim *o = dims_new(s, r);
  memcpy(o, x->dims, sizeof *o * (size_t)d);
  for (int j = 0; j < n; j++) o[d + j] = D(s, v[j]);
  ir_dim dd = x->dims[d];
  int64_t c;
  if (infer >= 0) {
    if (known == 0) {
      sh_err(s, "cannot infer a -1 size next to a 0 in %s", sh_shape_str(s, n, v, NULL));
      return;
    }
    if (dc(s, dd, &c) && c % known) {
      sh_err(s, "sizes %s do not divide dim %d of %s", sh_shape_str(s, n, v, NULL), d,
             sh_tstr(s, x));
      return;
    }
    o[d + infer] = ir_dim_div(s->g, dd, D(s, known));
    sh_assume_equal(s, ir_dim_mod(s->g, dd, D(s, known)), D(s, 0));
  } else if (dc(s, dd, &c) && c != known) {
    sh_err(s, "sizes %s do not multiply to dim %d of %s", sh_shape_str(s, n, v, NULL), d,
           sh_tstr(s, x));
    return;
  } else {
    sh_assume_equal(s, dd, D(s, known));
  }
  memcpy(o + d + n, x->dims + d + 1, sizeof *o * (size_t)(x->rank - d - 1));
  set(s, 0, tensor(s, x->dtype, r, o));
}

/* squeeze(x, dim?): removes size-1 dims (only the named one when given;
 * a dim of another size is left alone). */
void sh_r_squeeze(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int only = -1;
  if (!sh_is_none(s, 1) && !sh_opdim(s, 1, x->rank, 0, &only)) return;
  ir_dim *o = dims_new(s, x->rank);
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    int64_t c;
    bool one = dc(s, x->dims[i], &c) && c == 1;
    if (!(one && (only < 0 || only == i))) o[r++] = x->dims[i];
  }
  set(s, 0, tensor(s, x->dtype, r, o));
}

/* unsqueeze(x, dim): dim may be rank (append); negative adds rank + 1. */
void sh_r_unsqueeze(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int d;
  if (!sh_opdim(s, 1, x->rank, 1, &d)) return;
  ir_dim *o = dims_new(s, x->rank + 1);
  memcpy(o, x->dims, sizeof *o * (size_t)d);
  o[d] = D(s, 1);
  memcpy(o + d + 1, x->dims + d, sizeof *o * (size_t)(x->rank - d));
  set(s, 0, tensor(s, x->dtype, x->rank + 1, o));
}

/* expand(x, size, implicit): -1 keeps a dim; new dims lead. */
void sh_r_expand(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int64_t *v;
  ir_dim *y;
  int n;
  if (!sh_opshape(s, 1, "size", false, &v, &y, &n)) return;
  if (n < x->rank) goto bad;
  ir_dim *o = dims_new(s, n);
  for (int j = 0; j < n; j++) {
    int i = j - (n - x->rank); /* x's dim, or < 0 for a new one */
    if (v[j] == -1) {
      if (i < 0) goto bad;
      o[j] = x->dims[i];
      continue;
    }
    if (v[j] < 0 && v[j] != SH_SYM) goto bad;
    o[j] = sh_shape_dim(s, v, y, j);
    int64_t c;
    if (i >= 0 && !(dc(s, x->dims[i], &c) && c == 1) && !sh_may_equal(s, x->dims[i], o[j]))
      goto bad;
  }
  set(s, 0, tensor(s, x->dtype, n, o));
  return;
bad:
  sh_err(s, "cannot expand %s to %s", sh_tstr(s, x), sh_shape_str(s, n, v, y));
}

/* expand_as(x, other): other's shape, x's dtype. */
void sh_r_expand_as(sh *s) {
  const ir_type *x = sh_tens(s, 0), *o = sh_tens(s, 1);
  if (!x || !o) return;
  int rr;
  ir_dim *dd;
  if (x->rank > o->rank || !sh_bcast(s, x->rank, x->dims, o->rank, o->dims, &rr, &dd)) {
    sh_err(s, "cannot expand %s to %s", sh_tstr(s, x), sh_tstr(s, o));
    return;
  }
  set(s, 0, tensor(s, x->dtype, o->rank, o->dims));
}

/* repeat(x, repeats): len(repeats) >= rank; x is padded with leading 1s.
 * tile(x, dims): the same, with dims padded with leading 1s to the rank. */
void sh_r_repeat(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int64_t *v;
  int n;
  if (!sh_oplist(s, 1, N(s)->op == NN_OP_TILE ? "dims" : "repeats", &v, &n)) return;
  if (n < x->rank && N(s)->op == NN_OP_TILE) {
    int64_t *p = nn_alloc(s->a, sizeof *p * (size_t)x->rank);
    for (int j = 0; j < x->rank; j++) p[j] = j < x->rank - n ? 1 : v[j - (x->rank - n)];
    v = p, n = x->rank;
  }
  if (n < x->rank) {
    sh_err(s, "repeats has %d elements, fewer than the rank of %s", n, sh_tstr(s, x));
    return;
  }
  ir_dim *o = dims_new(s, n);
  for (int j = 0; j < n; j++) {
    int i = j - (n - x->rank);
    if (v[j] < 0) {
      sh_err(s, "negative repeat count %lld", (long long)v[j]);
      return;
    }
    o[j] = ir_dim_mul(s->g, i >= 0 ? x->dims[i] : D(s, 1), D(s, v[j]));
  }
  set(s, 0, tensor(s, x->dtype, n, o));
}

/* upsample(x, output_size?, scale_factors?, mode, align_corners?): the
 * last k dims (k: the length of whichever list is given) become
 * output_size, or floor(size * scale). */
void sh_r_resize(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int r = x->rank;
  ir_dim *o = dims_new(s, r);
  memcpy(o, x->dims, sizeof *o * (size_t)r);
  int n;
  if (!sh_is_none(s, 1)) {
    int64_t *v;
    ir_dim *y;
    if (!sh_opshape(s, 1, "output_size", false, &v, &y, &n)) return;
    if (n < 1 || n > 3 || n > r - 2) {
      sh_err(s, "output_size has %d elements for %s (1 to 3, leaving batch and channels)", n,
             sh_tstr(s, x));
      return;
    }
    for (int j = 0; j < n; j++) o[r - n + j] = sh_shape_dim(s, v, y, j);
  } else {
    kval *k = KI(s, 2);
    if (!k->known || k->c.kind != IR_C_FLOATLIST) {
      if (!sh_is_unknown(s, 2)) sh_err(s, "needs output_size or constant scale_factors");
      return;
    }
    n = k->c.n;
    if (n < 1 || n > 3 || n > r - 2) {
      sh_err(s, "scale_factors has %d elements for %s (1 to 3, leaving batch and channels)", n,
             sh_tstr(s, x));
      return;
    }
    for (int j = 0; j < n; j++) {
      double f = k->c.floats[j];
      ir_dim in = x->dims[r - n + j];
      int64_t c;
      if (!(f > 0 && f < 1e9)) {
        sh_err(s, "scale factor %g is out of range", f);
        return;
      }
      if (dc(s, in, &c) && (double)c * f < 1e15)
        o[r - n + j] = D(s, (int64_t)floor((double)c * f));
      else if (dc(s, in, &c)) {
        sh_err(s, "the output size is out of range");
        return;
      } else if (f == floor(f))
        o[r - n + j] = ir_dim_mul(s->g, in, D(s, (int64_t)f));
      else {
        sh_err(s, "a fractional scale of a symbolic size is not supported");
        return;
      }
    }
  }
  set(s, 0, tensor(s, x->dtype, r, o));
}

/* permute(x, dims). */
void sh_r_permute(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int64_t *v;
  int n;
  if (!sh_oplist(s, 1, "dims", &v, &n)) return;
  if (n != x->rank) {
    sh_err(s, "%d dims given for %s", n, sh_tstr(s, x));
    return;
  }
  bool *seen = nn_alloc(s->a, (size_t)n + 1);
  ir_dim *o = dims_new(s, n);
  for (int j = 0; j < n; j++) {
    int d;
    if (!sh_wrapdim(s, v[j], x->rank, 0, &d)) return;
    if (seen[d]) {
      sh_err(s, "dim %lld appears twice", (long long)v[j]);
      return;
    }
    seen[d] = true;
    o[j] = x->dims[d];
  }
  set(s, 0, tensor(s, x->dtype, n, o));
}

/* transpose(x, d0, d1) and t(x) (rank <= 2). */
void sh_r_transpose(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int a = 0, b = 1;
  if (N(s)->op == NN_OP_T) {
    if (x->rank > 2) {
      sh_err(s, "expects a tensor of rank <= 2, got %s", sh_tstr(s, x));
      return;
    }
    if (x->rank < 2) {
      set(s, 0, x);
      return;
    }
  } else if (!sh_opdim(s, 1, x->rank, 0, &a) || !sh_opdim(s, 2, x->rank, 0, &b)) {
    return;
  }
  ir_dim *o = dims_new(s, x->rank);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  if (x->rank) {
    o[a] = x->dims[b];
    o[b] = x->dims[a];
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
}

/* The tensor with dim d replaced by `size` (0 = removed). */
static const ir_type *with_dim(sh *s, const ir_type *x, int d, ir_dim size) {
  ir_dim *o = dims_new(s, x->rank);
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    if (i != d)
      o[r++] = x->dims[i];
    else if (size)
      o[r++] = size;
  }
  return tensor(s, x->dtype, r, o);
}

/* Length of x[start:end:step] on a dim of size `size` with Python's
 * clamping; start/end may be SH_NONE. Symbolic sizes work when the
 * bounds are constants (assumed within the dim). 0 after reporting. */
static ir_dim slice_len(sh *s, ir_dim size, int64_t start, int64_t end, int64_t step) {
  int64_t n;
  if (start == SH_NONE) start = 0;
  if (end == SH_NONE) end = SH_END;
  if (dc(s, size, &n)) {
    if (start < 0) start = start + n < 0 ? 0 : start + n;
    if (end < 0) end = end + n < 0 ? 0 : end + n;
    if (start > n) start = n;
    if (end > n) end = n;
    return D(s, end > start ? (end - start - 1) / step + 1 : 0);
  }
  ir_dim a = start >= 0 ? D(s, start) : ir_dim_add(s->g, size, D(s, start));
  ir_dim b = end >= ((int64_t)1 << 62) ? size
             : end >= 0                ? D(s, end)
                                       : ir_dim_add(s->g, size, D(s, end));
  int64_t ca, cb;
  if (dc(s, a, &ca) && dc(s, b, &cb)) return D(s, cb > ca ? (cb - ca - 1) / step + 1 : 0);
  ir_dim len;
  if (dc(s, a, &ca))
    len = ir_dim_add(s->g, b, D(s, -ca));
  else if (a == size && b == size)
    len = D(s, 0);
  else if (dc(s, b, &cb)) {
    /* size + start .. cb with start < 0: length -start when it reaches */
    sh_err(s, "cannot slice a symbolic dim from %lld to %lld", (long long)start, (long long)end);
    return 0;
  } else {
    /* both relative to size: (size + e) - (size + s) = e - s */
    int64_t d;
    if (__builtin_sub_overflow(end >= ((int64_t)1 << 62) ? 0 : end, start, &d)) d = 0;
    len = D(s, d > 0 ? d : 0);
  }
  if (step == 1) return len;
  return ir_dim_floordiv(s->g, ir_dim_add(s->g, len, D(s, step - 1)), D(s, step));
}

/* slice(x, dim, start?, end?, step). */
void sh_r_slice(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int d;
  int64_t start = SH_NONE, end = SH_NONE, step;
  if (!sh_opdim(s, 1, x->rank, 0, &d) ||
      (!sh_is_none(s, 2) && !sh_need_int(s, 2, "start", &start)) ||
      (!sh_is_none(s, 3) && !sh_need_int(s, 3, "end", &end)) || !sh_need_int(s, 4, "step", &step))
    return;
  if (x->rank == 0) {
    sh_err(s, "cannot slice a 0-dim tensor");
    return;
  }
  if (step <= 0) {
    sh_err(s, "step must be positive, got %lld", (long long)step);
    return;
  }
  ir_dim len = slice_len(s, x->dims[d], start, end, step);
  if (len) set(s, 0, with_dim(s, x, d, len));
}

/* select(x, dim, index): the dim is removed. */
void sh_r_select(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int d;
  int64_t idx, n;
  if (!sh_opdim(s, 1, x->rank, 0, &d) || !sh_need_int(s, 2, "index", &idx)) return;
  if (x->rank == 0) {
    sh_err(s, "cannot select from a 0-dim tensor");
    return;
  }
  if (dc(s, x->dims[d], &n) && (idx < -n || idx >= n)) {
    sh_err(s, "index %lld is out of range for dim %d of %s", (long long)idx, d, sh_tstr(s, x));
    return;
  }
  set(s, 0, with_dim(s, x, d, 0));
}

/* narrow(x, dim, start, length). */
void sh_r_narrow(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int d;
  int64_t start, len, n;
  if (!sh_opdim(s, 1, x->rank, 0, &d) || !sh_need_int(s, 2, "start", &start) ||
      !sh_need_int(s, 3, "length", &len))
    return;
  if (x->rank == 0 || len < 0 ||
      (dc(s, x->dims[d], &n) &&
       (start < -n || start > n || (start < 0 ? start + n : start) + len > n))) {
    sh_err(s, "cannot narrow %s at dim %d from %lld by %lld", sh_tstr(s, x), d, (long long)start,
           (long long)len);
    return;
  }
  set(s, 0, with_dim(s, x, d, D(s, len)));
}

/* Types the current node's result as a tensor list of the given pieces:
 * list<first piece>, each piece's exact type recorded. */
static void set_pieces(sh *s, const ir_type **pieces, int n, nn_dtype dt) {
  const ir_type *elem = n ? pieces[0] : tensor(s, dt, -1, NULL);
  set(s, 0, ir_type_list(s->g, elem));
  KO(s, 0)->pieces = pieces;
  KO(s, 0)->npieces = n;
}

/* chunk(x, chunks, dim), split(x, size | sizes, dim), unbind(x, dim). */
void sh_r_split(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  ir_op op = N(s)->op;
  int d;
  if (!sh_opdim(s, op == NN_OP_UNBIND ? 1 : 2, x->rank, 0, &d)) return;
  if (x->rank == 0) {
    sh_err(s, "cannot split a 0-dim tensor");
    return;
  }
  int64_t n;
  if (!dc(s, x->dims[d], &n)) {
    sh_err(s, "cannot split the symbolic dim %d of %s", d, sh_tstr(s, x));
    return;
  }
  int64_t *sizes;
  int count;
  if (op == NN_OP_UNBIND) {
    if (n > (1 << 20)) {
      sh_err(s, "too many pieces");
      return;
    }
    count = (int)n;
    sizes = NULL;
  } else {
    int64_t *v;
    int nv;
    if (!sh_oplist(s, 1, op == NN_OP_CHUNK ? "chunks" : "split_size", &v, &nv)) return;
    int64_t piece;
    if (op == NN_OP_SPLIT && (nv != 1 || TY(s, 1)->kind == IR_T_LIST)) {
      /* explicit sizes */
      int64_t sum = 0;
      for (int j = 0; j < nv; j++) {
        if (v[j] < 0 || __builtin_add_overflow(sum, v[j], &sum)) sum = -1;
        if (sum < 0) break;
      }
      if (sum != n) {
        sh_err(s, "split sizes %s do not add up to %lld", sh_shape_str(s, nv, v, NULL),
               (long long)n);
        return;
      }
      sizes = v;
      count = nv;
      goto build;
    }
    if (op == NN_OP_CHUNK) {
      if (v[0] <= 0) {
        sh_err(s, "chunks must be positive, got %lld", (long long)v[0]);
        return;
      }
      piece = n > 0 ? (n - 1) / v[0] + 1 : 0;
    } else {
      piece = v[0];
    }
    if (piece <= 0 && n != 0) {
      sh_err(s, "split size must be positive, got %lld", (long long)piece);
      return;
    }
    int64_t cnt = n == 0 ? 1 : (n - 1) / piece + 1;
    if (cnt > (1 << 20)) {
      sh_err(s, "too many pieces");
      return;
    }
    count = (int)cnt;
    sizes = nn_alloc(s->a, sizeof *sizes * (size_t)(count + 1));
    for (int j = 0; j < count; j++) sizes[j] = n - piece * j < piece ? n - piece * j : piece;
  }
build:;
  const ir_type **p = nn_alloc(s->a, sizeof *p * (size_t)(count + 1));
  for (int j = 0; j < count; j++) p[j] = with_dim(s, x, d, sizes ? D(s, sizes[j]) : 0);
  set_pieces(s, p, count, x->dtype);
}

/* The element types of a tensor-list operand (from list_construct, chunk,
 * split, unbind); NULL after reporting. */
static const ir_type **list_pieces(sh *s, int i, int *n) {
  kval *k = KI(s, i);
  if (k->pieces) {
    *n = k->npieces;
    return k->pieces;
  }
  if (!sh_is_unknown(s, i)) sh_err(s, "the tensor list is not known at compile time");
  return NULL;
}

/* cat(tensors, dim) and stack(tensors, dim). */
void sh_r_cat(sh *s) {
  int n;
  const ir_type **p = list_pieces(s, 0, &n);
  if (!p) return;
  bool stack = N(s)->op == NN_OP_STACK;
  /* cat skips legacy empty 1-d tensors ([0]) next to real ones */
  const ir_type *ref = NULL;
  prom pr = {0};
  for (int j = 0; j < n; j++) {
    const ir_type *t = p[j];
    if (t->kind != IR_T_TENSOR || t->rank < 0) {
      if (t->kind != IR_T_UNKNOWN && t->kind != IR_T_TENSOR)
        sh_err(s, "element %d is %s, expected a tensor", j, sh_tstr(s, t));
      return;
    }
    int64_t c;
    bool empty = !stack && t->rank == 1 && dc(s, t->dims[0], &c) && c == 0;
    if (!ref || (!empty && ref->rank == 1 && dc(s, ref->dims[0], &c) && c == 0)) ref = t;
    pr.tier[2] = pr.tier[2] ? sh_promote2(pr.tier[2], t->dtype) : t->dtype;
  }
  if (!ref) {
    sh_err(s, "expects a non-empty list of tensors");
    return;
  }
  int d;
  if (!sh_opdim(s, 1, ref->rank, stack ? 1 : 0, &d)) return;
  if (!stack && ref->rank == 0) {
    sh_err(s, "cannot concatenate 0-dim tensors");
    return;
  }
  ir_dim *o = dims_new(s, ref->rank + 1);
  memcpy(o, ref->dims, sizeof *o * (size_t)ref->rank);
  if (!stack) o[d] = D(s, 0);
  for (int j = 0; j < n; j++) {
    const ir_type *t = p[j];
    int64_t c;
    if (!stack && t->rank == 1 && dc(s, t->dims[0], &c) && c == 0 && ref->rank != 1) continue;
    bool ok = t->rank == ref->rank;
    for (int i = 0; ok && i < t->rank; i++)
      ok = (!stack && i == d) || sh_may_equal(s, t->dims[i], ref->dims[i]);
    if (!ok) {
      sh_err(s, "cannot %s %s with %s", stack ? "stack" : "concatenate", sh_tstr(s, ref),
             sh_tstr(s, t));
      return;
    }
    if (!stack) o[d] = ir_dim_add(s->g, o[d], t->dims[d]);
  }
  if (stack) {
    memmove(o + d + 1, o + d, sizeof *o * (size_t)(ref->rank - d));
    o[d] = D(s, n);
  }
  set(s, 0, tensor(s, pr.tier[2], ref->rank + stack, o));
}

/* constant_pad_nd(x, pad, value): pairs from the last dim; negative pads
 * shrink. */
void sh_r_pad(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int64_t *v;
  int n;
  if (!sh_oplist(s, 1, "pad", &v, &n)) return;
  if (n % 2 || n / 2 > x->rank) {
    sh_err(s, "pad has %d elements; expects an even count of at most %d", n, 2 * x->rank);
    return;
  }
  ir_dim *o = dims_new(s, x->rank);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  for (int j = 0; j < n / 2; j++) {
    int i = x->rank - 1 - j;
    int64_t c, add;
    if (__builtin_add_overflow(v[2 * j], v[2 * j + 1], &add) || add < -((int64_t)1 << 40) ||
        add > ((int64_t)1 << 40)) {
      sh_err(s, "pad is out of range");
      return;
    }
    o[i] = ir_dim_add(s->g, x->dims[i], D(s, add));
    if (dc(s, o[i], &c) && c < 0) {
      sh_err(s, "padding %s by %s leaves a negative size", sh_tstr(s, x),
             sh_shape_str(s, n, v, NULL));
      return;
    }
  }
  set(s, 0, tensor(s, x->dtype, x->rank, o));
}

/* pixel_shuffle(x, r): [..., C*r*r, H, W] -> [..., C, H*r, W*r];
 * pixel_unshuffle(x, r) the inverse; channel_shuffle(x, g): x's shape, C
 * a multiple of g. */
void sh_r_pixel_shuffle(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int64_t r, c;
  ir_op op = N(s)->op;
  if (!sh_need_int(s, 1,
                   op == NN_OP_CHANNEL_SHUFFLE ? "groups"
                   : op == NN_OP_PIXEL_SHUFFLE ? "upscale_factor"
                                               : "downscale_factor",
                   &r))
    return;
  int k = x->rank;
  if (op == NN_OP_CHANNEL_SHUFFLE) {
    if (k < 3 || r <= 0 || (dc(s, x->dims[1], &c) && c % r != 0)) {
      sh_err(s, "cannot shuffle the channels of %s in %lld groups", sh_tstr(s, x), (long long)r);
      return;
    }
    if (!dc(s, x->dims[1], &c)) sh_assume_equal(s, ir_dim_mod(s->g, x->dims[1], D(s, r)), D(s, 0));
    set(s, 0, tensor(s, x->dtype, k, x->dims));
    return;
  }
  if (op == NN_OP_PIXEL_UNSHUFFLE) {
    int64_t h, w;
    if (k < 3 || r <= 0 || r > (1 << 20) || (dc(s, x->dims[k - 2], &h) && h % r) ||
        (dc(s, x->dims[k - 1], &w) && w % r)) {
      sh_err(s, "cannot unshuffle %s by %lld", sh_tstr(s, x), (long long)r);
      return;
    }
    ir_dim *o = dims_new(s, k);
    memcpy(o, x->dims, sizeof *o * (size_t)k);
    o[k - 3] = ir_dim_mul(s->g, x->dims[k - 3], D(s, r * r));
    for (int j = 1; j <= 2; j++) {
      o[k - j] = ir_dim_div(s->g, x->dims[k - j], D(s, r));
      if (!dc(s, x->dims[k - j], &h))
        sh_assume_equal(s, ir_dim_mod(s->g, x->dims[k - j], D(s, r)), D(s, 0));
    }
    set(s, 0, tensor(s, x->dtype, k, o));
    return;
  }
  if (k < 3 || r <= 0 || r > (1 << 20) || (dc(s, x->dims[k - 3], &c) && c % (r * r) != 0)) {
    sh_err(s, "cannot shuffle %s by %lld", sh_tstr(s, x), (long long)r);
    return;
  }
  ir_dim *o = dims_new(s, k);
  memcpy(o, x->dims, sizeof *o * (size_t)k);
  o[k - 3] = ir_dim_div(s->g, x->dims[k - 3], D(s, r * r));
  o[k - 2] = ir_dim_mul(s->g, x->dims[k - 2], D(s, r));
  o[k - 1] = ir_dim_mul(s->g, x->dims[k - 1], D(s, r));
  set(s, 0, tensor(s, x->dtype, k, o));
}

/* upsample_nearest2d(x, output_size?, scale_h?, scale_w?). */
void sh_r_upsample(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int k = x->rank;
  if (k < 3) {
    sh_err(s, "expects a tensor of rank >= 3, got %s", sh_tstr(s, x));
    return;
  }
  ir_dim *o = dims_new(s, k);
  memcpy(o, x->dims, sizeof *o * (size_t)k);
  if (!sh_is_none(s, 1)) {
    int64_t *v;
    ir_dim *y;
    int n;
    if (!sh_opshape(s, 1, "output_size", false, &v, &y, &n)) return;
    if (n != 2) {
      sh_err(s, "output_size must have 2 elements, got %d", n);
      return;
    }
    for (int j = 0; j < 2; j++) o[k - 2 + j] = sh_shape_dim(s, v, y, j);
  } else {
    for (int j = 0; j < 2; j++) {
      double f;
      bool isint;
      int64_t c;
      if (!sh_knum(s, 2 + j, &f, &isint) || !(f > 0 && f < 1e9)) {
        if (!sh_is_unknown(s, 2 + j)) sh_err(s, "needs a constant output_size or scale factors");
        return;
      }
      ir_dim in = x->dims[k - 2 + j];
      if (dc(s, in, &c) && (double)c * f < 1e15)
        o[k - 2 + j] = D(s, (int64_t)floor((double)c * f));
      else if (dc(s, in, &c)) {
        sh_err(s, "the output size is out of range");
        return;
      } else if (f == floor(f))
        o[k - 2 + j] = ir_dim_mul(s->g, in, D(s, (int64_t)f));
      else {
        sh_err(s, "a fractional scale of a symbolic size is not supported");
        return;
      }
    }
  }
  set(s, 0, tensor(s, x->dtype, k, o));
}

/* ---- rules: indexing and gathering ------------------------------------ */

/* embedding(w, indices, ...): indices' shape + [embedding_dim]. */
void sh_r_embedding(sh *s) {
  const ir_type *w = sh_tens(s, 0), *ix = sh_tens(s, 1);
  if (!w || !ix) return;
  if (w->rank != 2) {
    sh_err(s, "expects a 2-d weight, got %s", sh_tstr(s, w));
    return;
  }
  ir_dim *o = dims_new(s, ix->rank + 1);
  memcpy(o, ix->dims, sizeof *o * (size_t)ix->rank);
  o[ix->rank] = w->dims[1];
  set(s, 0, tensor(s, w->dtype, ix->rank + 1, o));
}

/* index(x, indices): advanced indexing. None entries keep their dim; the
 * index tensors broadcast together; their shape replaces the indexed dims
 * in place when those are adjacent, else it leads. */
void sh_r_index(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  kval *k = KI(s, 1);
  if (!k->src) {
    if (!sh_is_unknown(s, 1)) sh_err(s, "the index list is not known at compile time");
    return;
  }
  int n = k->nsrc;
  if (n > x->rank) {
    sh_err(s, "too many indices (%d) for %s", n, sh_tstr(s, x));
    return;
  }
  int br = 0, first = -1, last = -1;
  ir_dim *bd = NULL;
  bool adjacent = true;
  for (int j = 0; j < n; j++) {
    const ir_type *t = ir_vtype(s->g, k->src[j]);
    if (t->kind == IR_T_NONE) continue;
    if (t->kind != IR_T_TENSOR || t->rank < 0) {
      if (t->kind != IR_T_UNKNOWN)
        sh_err(s, "index %d is %s, expected a tensor or none", j, sh_tstr(s, t));
      return;
    }
    if (t->dtype == NN_DT_BOOL || t->dtype == NN_DT_U8) {
      sh_err(s, "boolean mask indexing is not supported");
      return;
    }
    if (first >= 0 && last != j - 1) adjacent = false;
    if (first < 0) first = j;
    last = j;
    int r;
    ir_dim *o;
    if (!sh_bcast(s, br, bd, t->rank, t->dims, &r, &o)) {
      sh_err(s, "cannot broadcast the index tensors together");
      return;
    }
    br = r;
    bd = o;
  }
  if (first < 0) {
    set(s, 0, x);
    return;
  }
  int nidx = 0;
  for (int j = first; j <= last; j++)
    if (ir_vtype(s->g, k->src[j])->kind != IR_T_NONE) nidx++;
  int rr = x->rank - nidx + br;
  ir_dim *o = dims_new(s, rr);
  int r = 0;
  if (!adjacent) {
    memcpy(o, bd, sizeof *o * (size_t)br);
    r = br;
  }
  for (int i = 0; i < x->rank; i++) {
    bool indexed = i < n && ir_vtype(s->g, k->src[i])->kind != IR_T_NONE;
    if (adjacent && i == first) {
      memcpy(o + r, bd, sizeof *o * (size_t)br);
      r += br;
    }
    if (!indexed) o[r++] = x->dims[i];
  }
  set(s, 0, tensor(s, x->dtype, rr, o));
}

/* gather(x, dim, index, sparse_grad): index's shape. */
void sh_r_gather(sh *s) {
  const ir_type *x = sh_tens(s, 0), *ix = sh_tens(s, 2);
  if (!x || !ix) return;
  int d;
  if (!sh_opdim(s, 1, x->rank, 0, &d)) return;
  if (ix->rank != x->rank && !(x->rank == 0 && ix->rank <= 1)) {
    sh_err(s, "index %s must have the rank of %s", sh_tstr(s, ix), sh_tstr(s, x));
    return;
  }
  set(s, 0, tensor(s, x->dtype, ix->rank, ix->dims));
}

/* index_select(x, dim, index): dim becomes index's length. */
void sh_r_index_select(sh *s) {
  const ir_type *x = sh_tens(s, 0), *ix = sh_tens(s, 2);
  if (!x || !ix) return;
  int d;
  if (!sh_opdim(s, 1, x->rank, 0, &d)) return;
  if (ix->rank > 1) {
    sh_err(s, "index must be 0-d or 1-d, got %s", sh_tstr(s, ix));
    return;
  }
  if (x->rank == 0)
    set(s, 0, x);
  else
    set(s, 0, with_dim(s, x, d, sh_numel(s, ix->rank, ix->dims)));
}

/* one_hot(x, num_classes): i64, a new last dim of num_classes. */
void sh_r_one_hot(sh *s) {
  const ir_type *x = sh_tens(s, 0);
  if (!x) return;
  int64_t n;
  if (!sh_need_int(s, 1, "num_classes", &n)) return;
  if (n < 0) {
    sh_err(s, "one_hot needs num_classes");
    return;
  }
  ir_dim *o = dims_new(s, x->rank + 1);
  memcpy(o, x->dims, sizeof *o * (size_t)x->rank);
  o[x->rank] = D(s, n);
  set(s, 0, tensor(s, NN_DT_I64, x->rank + 1, o));
}
