/* test_pool_kern.c — fixed-window pooling kernels (lower/pool.c) against
 * values worked out here. Each case lowers a small graph of max_pool,
 * max_pool_with_indices and avg_pool (count_include_pad on and off, a
 * divisor_override) for one window geometry — kernel, stride, padding,
 * dilation, ceil_mode, 1-d or 2-d, windows wider than the input — runs it
 * with the reference interpreter on data holding a NaN and -inf, and
 * checks every element: max exactly (padding never wins, a NaN in the
 * window gives NaN), the values beside the indices bit-identical to the
 * plain max (the two are lowered differently), the indices the first
 * maximum, averages to rounding. The harness is symtest.h.
 */
#include "symtest.h"

#include <math.h>

typedef struct pcase {
  int nsp;                        /* spatial dims: 1 or 2 */
  int64_t H, W;                   /* input plane (H = 1 for 1-d) */
  int64_t k[2], s[2], p[2], d[2]; /* window geometry (rows, columns) */
  bool ceil;                      /* ceil_mode */
} pcase;

/* PyTorch's pooled size of one dim. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil) {
  int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t o = (span + (ceil ? s - 1 : 0)) / s + 1;
  if (ceil && (o - 1) * s >= in + p) o--;
  return o;
}

static char *fmt_list(char *buf, const pcase *c, const int64_t *v) {
  if (c->nsp == 1)
    sprintf(buf, "[%lld]", (long long)v[1]);
  else
    sprintf(buf, "[%lld, %lld]", (long long)v[0], (long long)v[1]);
  return buf;
}

static void check_pool(const pcase *c) {
  char ir[2048], spec[64], kb[32], sb[32], pb[32], db[32];
  const char *dim = c->nsp == 1 ? "1d" : "2d";
  fmt_list(kb, c, c->k), fmt_list(sb, c, c->s), fmt_list(pb, c, c->p);
  fmt_list(db, c, c->d);
  snprintf(ir, sizeof ir,
           "graph forward(%%0 x: unknown) -> (unknown, unknown, unknown, "
           "unknown, unknown, unknown) {\n"
           "  %%1 = constant(%s) : list<int>\n"
           "  %%2 = constant(%s) : list<int>\n"
           "  %%3 = constant(%s) : list<int>\n"
           "  %%4 = constant(%s) : list<int>\n"
           "  %%5 = constant(%s) : bool\n"
           "  %%6 = constant(true) : bool\n"
           "  %%7 = constant(false) : bool\n"
           "  %%8 = max_pool%s(%%0, %%1, %%2, %%3, %%4, %%5) : unknown\n"
           "  %%9, %%10 = max_pool2d_with_indices(%%0, %%1, %%2, %%3, %%4, "
           "%%5) : unknown, unknown\n"
           "  %%11 = avg_pool%s(%%0, %%1, %%2, %%3, %%5, %%6%s) : unknown\n"
           "  %%12 = avg_pool%s(%%0, %%1, %%2, %%3, %%5, %%7%s) : unknown\n"
           "  %%13 = constant(5) : int\n"
           "  %%14 = avg_pool2d(%%0, %%1, %%2, %%3, %%5, %%6, %%13) : unknown\n"
           "  return %%8, %%9, %%10, %%11, %%12, %%14\n}\n",
           kb, sb, pb, db, c->ceil ? "true" : "false", dim, dim, c->nsp == 2 ? ", %15" : "", dim,
           c->nsp == 2 ? ", %15" : "");
  /* the 1-d forms have no indices or divisor variant: use them on [2,3,1,W]
   * via the 2-d ops only in 2-d cases */
  if (c->nsp == 1) {
    snprintf(ir, sizeof ir,
             "graph forward(%%0 x: unknown) -> (unknown, unknown, unknown) {\n"
             "  %%1 = constant(%s) : list<int>\n"
             "  %%2 = constant(%s) : list<int>\n"
             "  %%3 = constant(%s) : list<int>\n"
             "  %%4 = constant(%s) : list<int>\n"
             "  %%5 = constant(%s) : bool\n"
             "  %%6 = constant(true) : bool\n"
             "  %%7 = constant(false) : bool\n"
             "  %%8 = max_pool1d(%%0, %%1, %%2, %%3, %%4, %%5) : unknown\n"
             "  %%11 = avg_pool1d(%%0, %%1, %%2, %%3, %%5, %%6) : unknown\n"
             "  %%12 = avg_pool1d(%%0, %%1, %%2, %%3, %%5, %%7) : unknown\n"
             "  return %%8, %%11, %%12\n}\n",
             kb, sb, pb, db, c->ceil ? "true" : "false");
    snprintf(spec, sizeof spec, "x:f32[2,3,%lld]", (long long)c->W);
  } else {
    /* the avg_pool2d divisor operand %15 is none */
    char *r = strstr(ir, "  %8 =");
    char tail[2048];
    snprintf(tail, sizeof tail, "%s", r);
    snprintf(r, sizeof ir - (size_t)(r - ir), "  %%15 = constant(none) : none\n%s", tail);
    snprintf(spec, sizeof spec, "x:f32[2,3,%lld,%lld]", (long long)c->H, (long long)c->W);
  }
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  kp_program *p = compile(ir, spec, false, a, &d);
  CHECK(p != NULL && p->inputs.len == 1);
  if (!p || p->inputs.len != 1) {
    nn_arena_free(a);
    return;
  }
  void *in[8] = {0};
  make_inputs(p, NULL, in);
  float *x = in[0];
  int64_t HW = c->H * c->W, P = 6;
  x[1] = NAN;                      /* plane 0 */
  x[HW + HW / 2] = -INFINITY;      /* plane 1 */
  for (int64_t j = 0; j < HW; j++) /* plane 2: all -inf but one NaN */
    x[2 * HW + j] = -INFINITY;
  x[2 * HW + HW - 1] = NAN;
  for (int64_t j = 0; j < HW; j++) /* plane 3: negative, padding must lose */
    x[3 * HW + j] = -100.0f - (float)j;
  run_out o;
  CHECK_INT(run(p, NULL, in, &o), 0);
  int64_t OH = c->nsp == 1 ? 1 : out_size(c->H, c->k[0], c->s[0], c->p[0], c->d[0], c->ceil);
  int64_t OW = out_size(c->W, c->k[1], c->s[1], c->p[1], c->d[1], c->ceil);
  int64_t AOH = c->nsp == 1 ? 1 : out_size(c->H, c->k[0], c->s[0], c->p[0], 1, c->ceil);
  int64_t AOW = out_size(c->W, c->k[1], c->s[1], c->p[1], 1, c->ceil);
  int64_t on = P * OH * OW, an = P * AOH * AOW;
  bool two = c->nsp == 2;
  CHECK_INT(o.n, two ? 6 : 3);
  CHECK_INT(o.bytes[0], on * 4);
  CHECK_INT(o.bytes[two ? 3 : 1], an * 4);
  int bad = 0;
  for (int64_t pl = 0; pl < P && o.n >= 3; pl++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        float m = -INFINITY;
        int64_t mi = -1;
        for (int64_t i = 0; i < c->k[0]; i++)
          for (int64_t j = 0; j < c->k[1]; j++) {
            int64_t h = oh * c->s[0] - c->p[0] + i * c->d[0];
            int64_t w = ow * c->s[1] - c->p[1] + j * c->d[1];
            if (h < 0 || h >= c->H || w < 0 || w >= c->W) continue;
            float v = x[pl * HW + h * c->W + w];
            if (mi < 0 || v > m || isnan(v)) m = v, mi = h * c->W + w;
          }
        int64_t e = (pl * OH + oh) * OW + ow;
        float got = ((float *)o.data[0])[e];
        if (!(got == m || (isnan(got) && isnan(m)))) bad++;
        if (two) {
          /* bit for bit: NaNs included */
          // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison)
          if (memcmp((float *)o.data[1] + e, &got, 4) != 0 || ((int64_t *)o.data[2])[e] != mi)
            bad++;
        }
      }
  for (int64_t pl = 0; pl < P; pl++)
    for (int64_t oh = 0; oh < AOH; oh++)
      for (int64_t ow = 0; ow < AOW; ow++) {
        int64_t hs = oh * c->s[0] - c->p[0], ws = ow * c->s[1] - c->p[1];
        int64_t he = hs + c->k[0], we = ws + c->k[1];
        if (he > c->H + c->p[0]) he = c->H + c->p[0];
        if (we > c->W + c->p[1]) we = c->W + c->p[1];
        int64_t size = (he - hs) * (we - ws);
        hs = hs < 0 ? 0 : hs, ws = ws < 0 ? 0 : ws;
        he = he > c->H ? c->H : he, we = we > c->W ? c->W : we;
        float s = 0;
        for (int64_t h = hs; h < he; h++)
          for (int64_t w = ws; w < we; w++) s += x[pl * HW + h * c->W + w];
        float want[3] = {s / (float)size, s / (float)((he - hs) * (we - ws)), s / 5.0f};
        int64_t e = (pl * AOH + oh) * AOW + ow;
        for (int v = 0; v < (two ? 3 : 2); v++) {
          float got = ((float *)o.data[(two ? 3 : 1) + v])[e];
          if (isnan(want[v])
                  ? !isnan(got)
                  : !(got == want[v] || fabsf(got - want[v]) <= 1e-6f * (1 + fabsf(want[v]))))
            bad++;
        }
      }
  if (bad)
    fprintf(stderr,
            "pool case %s k=%lld,%lld s=%lld,%lld p=%lld,%lld "
            "d=%lld,%lld ceil=%d: %d bad elements\n",
            spec, (long long)c->k[0], (long long)c->k[1], (long long)c->s[0], (long long)c->s[1],
            (long long)c->p[0], (long long)c->p[1], (long long)c->d[0], (long long)c->d[1], c->ceil,
            bad);
  CHECK_INT(bad, 0);
  free_out(&o);
  for (int i = 0; i < p->inputs.len && i < 8; i++) free(in[i]);
  nn_arena_free(a);
}

int main(void) {
  rng = 4242;
  static const pcase cases[] = {
      /* resnet's stem pool */
      {2, 11, 12, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false},
      /* stride 2, odd window widths: the interior loads paired columns */
      {2, 6, 11, {3, 3}, {2, 2}, {0, 0}, {1, 1}, false},
      {2, 6, 13, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
      {2, 5, 8, {1, 1}, {2, 2}, {0, 0}, {1, 1}, false},
      {2, 4, 40, {3, 5}, {2, 2}, {1, 2}, {1, 1}, false},
      {2, 10, 9, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
      {2, 7, 7, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
      {2, 7, 7, {2, 2}, {2, 2}, {0, 0}, {1, 1}, true},
      {2, 9, 10, {3, 3}, {1, 1}, {1, 1}, {2, 2}, false},
      {2, 5, 13, {2, 4}, {1, 3}, {1, 2}, {2, 1}, true},
      {2, 4, 6, {1, 1}, {1, 1}, {0, 0}, {1, 1}, false},
      /* windows wider than the input: no interior columns */
      {2, 3, 2, {5, 5}, {1, 1}, {2, 2}, {1, 1}, false},
      {2, 1, 1, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
      {2, 2, 3, {3, 5}, {3, 2}, {1, 2}, {1, 1}, true},
      /* 1-d */
      {1, 1, 10, {1, 3}, {1, 2}, {0, 1}, {1, 1}, false},
      {1, 1, 11, {1, 4}, {1, 3}, {0, 2}, {1, 1}, true},
      {1, 1, 9, {1, 2}, {1, 1}, {0, 0}, {1, 3}, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_pool(&cases[i]);
  return unit_report("pool_kern");
}
