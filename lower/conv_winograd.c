/* conv_winograd.c — 3x3 stride-1 convolution by Winograd's F(2x2, 3x3).
 *
 * A 3x3 stride-1 convolution computes each 2x2 block of output (a "tile")
 * from the 4x4 block of input under it with 16 products per input channel
 * instead of 36:
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * (a correlation, as PyTorch's convolution is). With T tiles in all (every
 * image's), the sum over input channels is 16 GEMMs, one per element xi of
 * the 4x4 transformed tile: M_xi [Cout, T] = U_xi [Cout, Cin] @ V_xi [Cin,
 * T], U = G g G^T (transformed and packed at compile time), V = B^T d B.
 * Three kernels: the input transform (V), the GEMMs, and the output
 * transform (with the bias and the epilogue). 2.25x fewer multiplications
 * for 4 (input) + 4 (output) floats of traffic per output position and
 * channel; the transforms only add, subtract and halve, so results stay
 * within a few ulps of the direct sum. The target decides whether and from
 * how many input channels (tg_target.winograd, winograd_min_cin): below
 * that, the 16 GEMMs have K = Cin, too short for a microkernel to pay for
 * loading and storing its tile of C.
 */
#include "lower.h"

#include <string.h>

/* Whether convolution cv is lowered by Winograd's F(2x2, 3x3). */
bool kl_wino_fits(kl_ctx *c, const kl_conv *cv, int64_t *n, int64_t *h, int64_t *w, int64_t *ho,
                  int64_t *wo) {
  const tg_target *t = kl_tg(c);
  return t->winograd && cv->dt == NN_DT_F32 && cv->groups == 1 && cv->kh == 3 && cv->kw == 3 &&
         cv->sh == 1 && cv->sw == 1 && cv->dh == 1 && cv->dw == 1 && cv->ph <= 2 && cv->pw <= 2 &&
         cv->cin >= t->winograd_min_cin && kl_dim_const(c, cv->n, n) && kl_dim_const(c, cv->h, h) &&
         kl_dim_const(c, cv->w, w) && kl_dim_const(c, cv->hout, ho) &&
         kl_dim_const(c, cv->wout, wo) && *ho >= 2 && *wo >= 2;
}

/* U = G g G^T of every (output, input) channel pair, per xi in panels of
 * PACK_A output channels: U_xi[m, ci] at xi*gp + (m / PACK_A)*PACK_A*Cin +
 * ci*PACK_A + m % PACK_A, gp = ceil(Cout / PACK_A)*PACK_A*Cin. */
static kp_bufid wino_weight(kl_ctx *c, const kl_conv *cv, const unsigned char *g, int64_t *gp) {
  static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  const int PACK_A = kl_tg(c)->pack_a;
  int64_t M = cv->cout, C = cv->cin;
  *gp = (M + PACK_A - 1) / PACK_A * PACK_A * C;
  float *u = nn_alloc(kl_arena(c), sizeof(float) * (size_t)(16 * *gp));
  memset(u, 0, sizeof(float) * (size_t)(16 * *gp));
  for (int64_t m = 0; m < M; m++)
    for (int64_t ci = 0; ci < C; ci++) {
      float f[9];
      memcpy(f, g + (size_t)((m * C + ci) * 9) * sizeof(float), sizeof f);
      double t[4][3]; /* G g */
      for (int a = 0; a < 4; a++)
        for (int v = 0; v < 3; v++)
          t[a][v] = G[a][0] * f[v] + G[a][1] * f[3 + v] + G[a][2] * f[6 + v];
      for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
          double s = t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2];
          u[(a * 4 + b) * *gp + m / PACK_A * PACK_A * C + ci * PACK_A + m % PACK_A] = (float)s;
        }
    }
  return kl_const_buf(c, NN_DT_F32, u, 16 * *gp);
}

/* The tile grid: tiles cover the output in 2x2 blocks (the last row or
 * column of blocks half outside when the size is odd); tile (ty, tx) of
 * image n is number t = (n*th + ty)*tw + tx of T. */
typedef struct wgrid {
  int64_t N, n0, nimg;                   /* images in all; the chunk done: [n0, n0 + nimg) */
  int64_t C, M, H, W, HO, WO, th, tw, T; /* T: the chunk's tiles */
  int64_t vs, ms;                        /* element stride between the xi of V, of M */
} wgrid;

/* The stride between the 16 matrices of V (or M) of n elements each: n
 * rounded up to an odd number of cache lines. The transforms read or write
 * all 16 at once; at a multiple of 4 KiB apart (64 channels of 28x28
 * tiles) they would share one set of the L1 cache and evict each other. */
static int64_t wino_stride(int64_t n) {
  int64_t lines = (n + 15) / 16;
  return (lines | 1) * 16;
}

/* The input transform's loops over the tiles tx in [lo, hi) of tile row ty
 * (rb[i]: x index of the block's row i at column 0, rok[i]: that row is
 * inside the image; `rows`/`cols`: rows/columns may be outside, read as 0),
 * one per row a of V = B^T d B, which takes two rows of d B:
 *   VECTOR for tx: v[4a + b, ci, t0 + tx] = (B^T d B)[a, b], b = 0..3
 * Four loops of four stores each, not one of sixteen: with that many
 * stores in one loop the vectorizer no longer pairs the stride-2 loads
 * of a row into wide loads and shuffles, and gathers them instead. */
static void wino_in_loop(kernel *k, const wgrid *gr, const kl_conv *cv, int32_t x, int32_t v,
                         const int32_t *rb, const int32_t *rok, int32_t plane, int32_t vbase,
                         int64_t lo, int64_t hi, bool rows, bool cols) {
  /* row a of B^T d B is (d B)[p] + (d B)[q] or (d B)[p] - (d B)[q]: {p, q, sign} */
  static const int use[4][3] = {{0, 2, -1}, {1, 2, 1}, {2, 1, -1}, {1, 3, -1}};
  if (lo >= hi) return;
  for (int a = 0; a < 4; a++) {
    int32_t tx = k_for_begin(k, k_i64(k, lo), k_i64(k, hi), KS_VECTOR);
    kx_id t[2][4];
    for (int r = 0; r < 2; r++) {
      int i = use[a][r];
      kx_id d[4];
      for (int j = 0; j < 4; j++) {
        kx_id iw = k_add(k, k_muli(k, k_varref(k, tx), 2), k_i64(k, j - cv->pw));
        kx_id ok = rows ? k_varref(k, rok[i]) : -1;
        if (cols) {
          kx_id cok = k_bin(k, KX_AND, k_bin(k, KX_GE, iw, k_i64(k, 0)),
                            k_bin(k, KX_LT, iw, k_i64(k, gr->W)));
          ok = ok >= 0 ? k_bin(k, KX_AND, ok, cok) : cok;
        }
        kx_id xi = k_add(k, k_varref(k, rb[i]), iw); /* rb[i]: a row inside, always */
        if (cols) xi = k_select(k, ok, xi, k_varref(k, plane));
        kx_id e = k_load(k, x, xi);
        d[j] = ok >= 0 ? k_select(k, ok, e, k_f32(k, 0.0)) : e;
      }
      /* the row times B */
      t[r][0] = k_sub(k, d[0], d[2]);
      t[r][1] = k_add(k, d[1], d[2]);
      t[r][2] = k_sub(k, d[2], d[1]);
      t[r][3] = k_sub(k, d[1], d[3]);
    }
    for (int b = 0; b < 4; b++) {
      kx_id val = use[a][2] < 0 ? k_sub(k, t[0][b], t[1][b]) : k_add(k, t[0][b], t[1][b]);
      k_store(k, v,
              k_add(k, k_add(k, k_varref(k, vbase), k_i64(k, (4 * a + b) * gr->vs)),
                    k_varref(k, tx)),
              val);
    }
    k_for_end(k);
  }
}

/* V = B^T d B for every input channel plane and tile:
 *   PARALLEL for nc in [0, N*C): for ty: the block's rows, checked in
 *   the border tile rows; tiles whose columns all lie inside unchecked,
 *   the ones either side checked. */
static void wino_input(kl_ctx *c, const kl_conv *cv, const wgrid *gr, kp_bufid vbuf) {
  kernel *k = kl_kernel(c, "winograd_in");
  int32_t x = k_buf(k, NN_DT_F32, gr->N * gr->C * gr->H * gr->W, false, "x");
  int32_t v = k_buf(k, NN_DT_F32, 16 * gr->vs, true, "v");
  kl_bind(c, k, x, cv->x);
  kl_bind(c, k, v, vbuf);
  int32_t rb[4], rok[4];
  for (int i = 0; i < 4; i++) {
    rb[i] = k_var(k, NN_DT_I64);
    rok[i] = k_var(k, NN_DT_BOOL);
  }
  /* tiles whose 4 rows (columns) all lie inside: 2t - p >= 0, 2t - p + 3 < H */
  int64_t tylo = (cv->ph + 1) / 2, tyhi = (gr->H - 4 + cv->ph) / 2 + 1;
  int64_t txlo = (cv->pw + 1) / 2, txhi = (gr->W - 4 + cv->pw) / 2 + 1;
  if (tyhi > gr->th) tyhi = gr->th;
  if (txhi > gr->tw) txhi = gr->tw;
  if (tyhi < tylo) tyhi = tylo;
  if (txhi < txlo) txhi = txlo;
  int32_t nc = k_for_begin(k, k_i64(k, 0), k_i64(k, gr->nimg * gr->C), KS_PARALLEL);
  int32_t plane = k_let_i64(k, k_muli(k, k_add(k, k_varref(k, nc), k_i64(k, gr->n0 * gr->C)),
                                      gr->H * gr->W));
  kx_id n = k_bin(k, KX_DIV, k_varref(k, nc), k_i64(k, gr->C)),
        ci = k_bin(k, KX_MOD, k_varref(k, nc), k_i64(k, gr->C));
  int32_t ty = k_for_begin(k, k_i64(k, 0), k_i64(k, gr->th), 0);
  for (int i = 0; i < 4; i++) {
    kx_id ih = k_add(k, k_muli(k, k_varref(k, ty), 2), k_i64(k, i - cv->ph));
    k_let(k, rok[i],
          k_bin(k, KX_AND, k_bin(k, KX_GE, ih, k_i64(k, 0)), k_bin(k, KX_LT, ih, k_i64(k, gr->H))));
    k_let(k, rb[i],
          k_add(k, k_varref(k, plane),
                k_select(k, k_varref(k, rok[i]), k_muli(k, ih, gr->W), k_i64(k, 0))));
  }
  /* v index of (xi = 0, ci, tile (n, ty, 0)) */
  int32_t vbase =
      k_let_i64(k, k_add(k, k_muli(k, ci, gr->T),
                         k_muli(k, k_add(k, k_muli(k, n, gr->th), k_varref(k, ty)), gr->tw)));
  kx_id inner = k_bin(k, KX_AND, k_bin(k, KX_GE, k_varref(k, ty), k_i64(k, tylo)),
                      k_bin(k, KX_LT, k_varref(k, ty), k_i64(k, tyhi)));
  for (int e = 0; e < 2; e++) { /* interior tile rows, then the border ones */
    if (e == 0)
      k_if_begin(k, inner);
    else
      k_else(k);
    wino_in_loop(k, gr, cv, x, v, rb, rok, plane, vbase, 0, txlo, e, true);
    wino_in_loop(k, gr, cv, x, v, rb, rok, plane, vbase, txlo, txhi, e, false);
    wino_in_loop(k, gr, cv, x, v, rb, rok, plane, vbase, txhi, gr->tw, e, true);
  }
  k_if_end(k);
  k_for_end(k); /* ty */
  k_for_end(k); /* nc */
}

/* The output transform's loop over tiles tx in [lo, hi) of tile row ty,
 * storing the first ni rows and nj columns of each 2x2 block:
 *   VECTOR for tx: y = A^T m A + bias; out[...] = ep(y) */
static void wino_out_loop(kernel *k, const wgrid *gr, int32_t mm, int32_t out, kx_id bias,
                          int32_t mbase, int32_t obase, int32_t acc, int32_t idx, kx_id e,
                          int64_t lo, int64_t hi, int ni, int nj) {
  if (lo >= hi) return;
  int32_t tx = k_for_begin(k, k_i64(k, lo), k_i64(k, hi), KS_VECTOR);
  kx_id m[16], s[8];
  for (int xi = 0; xi < 16; xi++)
    m[xi] = k_load(k, mm,
                   k_add(k, k_add(k, k_varref(k, mbase), k_i64(k, xi * gr->ms)), k_varref(k, tx)));
  for (int a = 0; a < 4; a++) { /* rows: m A */
    s[2 * a] = k_add(k, k_add(k, m[4 * a], m[4 * a + 1]), m[4 * a + 2]);
    s[2 * a + 1] = k_sub(k, k_sub(k, m[4 * a + 1], m[4 * a + 2]), m[4 * a + 3]);
  }
  for (int i = 0; i < ni; i++)
    for (int j = 0; j < nj; j++) { /* columns: A^T (m A) */
      kx_id y = i == 0 ? k_add(k, k_add(k, s[j], s[2 + j]), s[4 + j])
                       : k_sub(k, k_sub(k, s[2 + j], s[4 + j]), s[6 + j]);
      k_let(k, idx,
            k_add(k, k_add(k, k_varref(k, obase), k_i64(k, i * gr->WO + j)),
                  k_muli(k, k_varref(k, tx), 2)));
      k_let(k, acc, bias >= 0 ? k_add(k, y, bias) : y);
      k_store(k, out, k_varref(k, idx), e);
    }
  k_for_end(k);
}

/* Y = A^T M A + bias through the epilogue, for every output channel plane:
 *   PARALLEL for nm in [0, N*M): for each row of tiles: the full tiles,
 *   then (odd width) the last tile's first column; (odd height) the last
 *   row of tiles' first rows. */
static int wino_output(kl_ctx *c, const kl_conv *cv, const wgrid *gr, kp_bufid mbuf) {
  kernel *k = kl_kernel_ep(c, "winograd_out", cv->ep);
  int32_t mm = k_buf(k, NN_DT_F32, 16 * gr->ms, false, "m");
  int32_t out = k_buf(k, NN_DT_F32, gr->N * gr->M * gr->HO * gr->WO, true, "out");
  kl_bind(c, k, mm, mbuf);
  kl_bind(c, k, out, cv->out);
  int32_t bias = -1;
  if (cv->bias >= 0) {
    bias = k_buf(k, NN_DT_F32, gr->M, false, "bias");
    kl_bind(c, k, bias, cv->bias);
  }
  int32_t acc = k_var(k, NN_DT_F32), idx = k_var(k, NN_DT_I64);
  /* expressions only: built before any statement */
  kx_id e = cv->ep ? cv->ep->build(cv->ep->ctx, k, k_varref(k, acc), k_varref(k, idx))
                   : k_varref(k, acc);
  if (e < 0) return -1;
  int32_t nm = k_for_begin(k, k_i64(k, 0), k_i64(k, gr->nimg * gr->M), KS_PARALLEL);
  kx_id n = k_bin(k, KX_DIV, k_varref(k, nm), k_i64(k, gr->M)),
        m = k_bin(k, KX_MOD, k_varref(k, nm), k_i64(k, gr->M));
  kx_id bv = -1;
  if (bias >= 0) {
    int32_t bf = k_var(k, NN_DT_F32);
    k_let(k, bf, k_load(k, bias, m));
    bv = k_varref(k, bf);
  }
  int32_t mbase = k_var(k, NN_DT_I64), obase = k_var(k, NN_DT_I64);
  int64_t fy = gr->HO / 2, fx = gr->WO / 2; /* full tile rows, columns */
  for (int part = 0; part < 2; part++) {
    int ni = part == 0 ? 2 : 1;
    if (part == 1 && gr->HO % 2 == 0) break;
    int32_t ty = k_for_begin(k, k_i64(k, part == 0 ? 0 : fy), k_i64(k, part == 0 ? fy : fy + 1), 0);
    k_let(k, mbase,
          k_add(k, k_muli(k, m, gr->T),
                k_muli(k, k_add(k, k_muli(k, n, gr->th), k_varref(k, ty)), gr->tw)));
    k_let(k, obase,
          k_muli(k,
                 k_add(k, k_muli(k, k_add(k, k_varref(k, nm), k_i64(k, gr->n0 * gr->M)), gr->HO),
                       k_muli(k, k_varref(k, ty), 2)),
                 gr->WO));
    wino_out_loop(k, gr, mm, out, bv, mbase, obase, acc, idx, e, 0, fx, ni, 2);
    if (gr->WO % 2) wino_out_loop(k, gr, mm, out, bv, mbase, obase, acc, idx, e, fx, fx + 1, ni, 1);
    k_for_end(k);
  }
  k_for_end(k); /* nm */
  return 0;
}

/* Largest V or M of one chunk of images (elements); more images are done
 * in chunks, like im2col's. */
#define WINO_MAX_ELEMS ((int64_t)16 << 20)

/* Lowers cv (wino_fits) with weight data g [Cout, Cin, 3, 3] (f32). */
int kl_conv_winograd(const kl_gop *l, const kl_conv *cv, const unsigned char *g, int64_t N,
                     int64_t H, int64_t W, int64_t HO, int64_t WO) {
  kl_ctx *c = l->c;
  wgrid gr = {.N = N, .C = cv->cin, .M = cv->cout, .H = H, .W = W, .HO = HO, .WO = WO};
  gr.th = (HO + 1) / 2;
  gr.tw = (WO + 1) / 2;
  int64_t per = 16 * (gr.C > gr.M ? gr.C : gr.M) * gr.th * gr.tw; /* per image */
  int64_t chunk = WINO_MAX_ELEMS / per;
  if (chunk < 1) chunk = 1;
  if (chunk > N) chunk = N;
  gr.T = chunk * gr.th * gr.tw;
  gr.vs = wino_stride(gr.C * gr.T);
  gr.ms = wino_stride(gr.M * gr.T);
  int64_t gp;
  kp_bufid u = wino_weight(c, cv, g, &gp);
  kp_bufid vbuf = kl_scratch(c, NN_DT_F32, 16 * gr.vs);
  kp_bufid mbuf = kl_scratch(c, NN_DT_F32, 16 * gr.ms);
  for (gr.n0 = 0; gr.n0 < N; gr.n0 += chunk) {
    gr.nimg = N - gr.n0 < chunk ? N - gr.n0 : chunk;
    wino_input(c, cv, &gr, vbuf);
    kl_gspec s = kl_gspec_new(l);
    s.dt = NN_DT_F32;
    s.ep = NULL; /* the bias and the epilogue come with the output transform */
    s.m = kl_d(c, gr.M);
    s.n = kl_d(c, gr.nimg * gr.th * gr.tw);
    s.k = kl_d(c, gr.C);
    s.a_rs = kl_d(c, gr.C);
    s.a_cs = kl_d(c, 1);
    s.a_panel = kl_tg(c)->pack_a;
    s.b_rs = kl_d(c, gr.T);
    s.b_cs = kl_d(c, 1);
    s.ldc = kl_d(c, gr.T);
    s.abuf = u;
    s.aelems = kl_d(c, 16 * gp);
    s.bbuf = vbuf;
    s.belems = kl_d(c, 16 * gr.vs);
    s.cbuf = mbuf;
    s.celems = kl_d(c, 16 * gr.ms);
    s.nbatch = 1;
    s.bdims[0] = kl_d(c, 16);
    s.astr[0] = kl_d(c, gp);
    s.bstr[0] = kl_d(c, gr.vs);
    s.cstr[0] = kl_d(c, gr.ms);
    if (kl_gemm_kernel(c, "winograd_gemm", &s) < 0 || wino_output(c, cv, &gr, mbuf) < 0) return -1;
  }
  return 0;
}
