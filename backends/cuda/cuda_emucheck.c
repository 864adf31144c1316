/* cuda_emucheck.c — the emulation check of the CUDA backend (backend.h).
 *
 * Without a GPU, the generated CUDA C is proven by running it on the CPU:
 * tests/cuda.sh compiles the emitted source as host C++ together with
 * tests/cuda/cuda_emu.h/.cc into a shared library, and this file loads it
 * (dlopen), launches every step's kernel as the launch table says (the
 * same grid the device runtime would use) and compares each step's written
 * buffers with the reference interpreter's (k_interp) run of the same
 * step. Both runs start from the same inputs and weights but keep separate
 * workspaces and outputs; after each step the reference's values of the
 * buffers it wrote are copied over, so every step is checked on the same
 * operands as the reference's, one broken kernel is reported once, and the
 * steps after it are still checked. (Kernels that sum in another order
 * than the interpreter - tensor-core GEMMs, block reductions - differ from
 * it in the last bits of f32; carried into a step that rounds to f16 and
 * then cancels, such as a residual add, one f16 ulp of a large value
 * would be compared against a small result.)
 */
#include "../backend.h"

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef int (*emu_launch_fn)(void (*fn)(nncc_cu_args), const unsigned grid[3],
                             const unsigned block[3], int sync, const nncc_cu_args *args);

static const nn_loc no_loc = {0};

/* A deterministic generator (xorshift). */
static uint64_t next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void fill(void *data, nn_dtype dt, int64_t n, uint64_t *rng) {
  for (int64_t i = 0; i < n; i++) {
    double u = (double)(next(rng) >> 11) / 9007199254740992.0 * 2 - 1; /* [-1, 1) */
    int64_t k = (int64_t)(next(rng) % 2);
    switch (dt) {
    case NN_DT_F32: ((float *)data)[i] = (float)u; break;
    case NN_DT_F64: ((double *)data)[i] = u; break;
    case NN_DT_F16: ((uint16_t *)data)[i] = nn_f32_to_f16((float)u); break;
    case NN_DT_BF16: ((uint16_t *)data)[i] = nn_f32_to_bf16((float)u); break;
    case NN_DT_I64: ((int64_t *)data)[i] = k; break;
    case NN_DT_I32: ((int32_t *)data)[i] = (int32_t)k; break;
    case NN_DT_I16: ((int16_t *)data)[i] = (int16_t)k; break;
    case NN_DT_I8: ((int8_t *)data)[i] = (int8_t)k; break;
    case NN_DT_U8:
    case NN_DT_BOOL: ((uint8_t *)data)[i] = (uint8_t)k; break;
    default: break;
    }
  }
}

/* Element i of a buffer as a double (floats) or an integer held in one. */
static double get(const void *data, nn_dtype dt, int64_t i) {
  switch (dt) {
  case NN_DT_F32: return ((const float *)data)[i];
  case NN_DT_F64: return ((const double *)data)[i];
  case NN_DT_F16: return nn_f16_to_f32(((const uint16_t *)data)[i]);
  case NN_DT_BF16: return nn_bf16_to_f32(((const uint16_t *)data)[i]);
  case NN_DT_I64: return (double)((const int64_t *)data)[i];
  case NN_DT_I32: return ((const int32_t *)data)[i];
  case NN_DT_I16: return ((const int16_t *)data)[i];
  case NN_DT_I8: return ((const int8_t *)data)[i];
  case NN_DT_U8:
  case NN_DT_BOOL: return ((const uint8_t *)data)[i];
  default: return 0;
  }
}

typedef struct world {
  unsigned char *ws;               /* workspace */
  void **outputs;                  /* by output index */
  int64_t status[KP_STATUS_WORDS]; /* the run's status block (checks) */
} world;

static void *slot_ptr(const kp_program *p, world *w, void *const *inputs, kp_bufid id,
                      int64_t *dims) {
  const kp_buf *b = &p->bufs.data[id];
  switch (b->kind) {
  case KP_BUF_INPUT: return inputs[b->index];
  case KP_BUF_OUTPUT: return w->outputs[b->index];
  case KP_BUF_WEIGHT: return (void *)(p->weights.data + b->offset);
  case KP_BUF_WORKSPACE: return w->ws + b->offset;
  case KP_BUF_DIMS: return dims;
  case KP_BUF_STATUS: return w->status;
  }
  return NULL;
}

/* Runs every step in both worlds (the reference interpreter in w[0], the
 * emulated CUDA kernels in w[1]) and compares what each step wrote;
 * returns the number of mismatching steps, or -1 when the reference
 * itself failed. */
static int run_pass(const kp_program *p, const cuda_module *m, emu_launch_fn launch,
                    void (**fns)(nncc_cu_args), void *const *inputs, world *w, int64_t *dims,
                    double tol, FILE *out, int64_t *compared_out, double *worst_out, nn_diag *d) {
  int bad_steps = 0;
  int64_t compared = 0;
  double worst = 0;
  for (int si = 0; si < p->steps.len; si++) {
    const kp_step *s = &p->steps.data[si];
    const nncc_cu_step *cs = &m->table.steps[si];
    void *ref[NNCC_CU_MAX_SLOTS];
    nncc_cu_args args;
    memset(&args, 0, sizeof args);
    for (int k = 0; k < s->k->bufs.len; k++) {
      ref[k] = slot_ptr(p, &w[0], inputs, s->slots[k], dims);
      args.p[k] = slot_ptr(p, &w[1], inputs, s->slots[k], dims);
    }
    if (k_interp(s->k, ref)) {
      nn_error(d, no_loc, "the reference interpreter failed at step %d (%s)", si, s->k->name);
      return -1;
    }
    unsigned grid[3], block[3];
    nncc_cu_grid(&m->table, cs->kernel, NULL, 64, grid, block);
    if (launch(fns[cs->kernel], grid, block, m->table.kernels[cs->kernel].sync, &args)) {
      fprintf(out, "step %d (%s): the emulated launch failed\n", si, s->k->name);
      bad_steps++;
    }
    for (int k = 0; k < s->k->bufs.len; k++) {
      if (!s->k->bufs.data[k].written) continue;
      const kp_buf *b = &p->bufs.data[s->slots[k]];
      int64_t first = -1, nbad = 0;
      double fr = 0, fe = 0;
      for (int64_t e = 0; e < b->elems; e++) {
        double r = get(ref[k], b->dtype, e), x = get(args.p[k], b->dtype, e);
        compared++;
        if (r == x || (r != r && x != x)) continue;
        double err = fabs(x - r) / fmax(1.0, fabs(r));
        if (!nn_dtype_is_float(b->dtype) || !(err <= tol)) {
          if (first < 0) {
            first = e;
            fr = r;
            fe = x;
          }
          nbad++;
        }
        if (err > worst || err != err) worst = err != err ? INFINITY : err;
      }
      if (nbad) {
        fprintf(out,
                "step %d (%s, form %d): buffer '%s' differs at %lld of %lld elements, "
                "first at %lld: reference %.9g, emulated %.9g\n",
                si, s->k->name, m->table.kernels[cs->kernel].form, s->k->bufs.data[k].name,
                (long long)nbad, (long long)b->elems, (long long)first, fr, fe);
        bad_steps++;
      }
      if (args.p[k] != ref[k])
        memcpy(args.p[k], ref[k], (size_t)b->elems * nn_dtype_size(b->dtype));
    }
  }
  *compared_out += compared;
  if (worst > *worst_out || worst != worst) *worst_out = worst;
  return bad_steps;
}

int cuda_emucheck(const kp_program *p, const cuda_module *m, const char *lib, double tol,
                  unsigned seed, FILE *out, nn_diag *d) {
  if (p->dynamic || p->syms.len > 0) {
    nn_error(d, no_loc, "the CUDA emulation check needs a program with static shapes");
    return -1;
  }
  void *dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    nn_error(d, no_loc, "can't load the emulation library: %s", dlerror());
    return -1;
  }
  emu_launch_fn launch = (emu_launch_fn)dlsym(dl, "nncc_emu_launch");
  void (**fns)(nncc_cu_args) = calloc((size_t)m->table.nkernels + 1, sizeof *fns);
  int rc = -1;
  if (!launch || !fns) {
    nn_error(d, no_loc, "the emulation library %s has no nncc_emu_launch", lib);
    goto done_dl;
  }
  for (int i = 0; i < m->table.nkernels; i++) {
    *(void **)&fns[i] = dlsym(dl, m->table.kernels[i].name);
    if (!fns[i]) {
      nn_error(d, no_loc, "the emulation library %s lacks kernel %s", lib,
               m->table.kernels[i].name);
      goto done_dl;
    }
  }
  /* inputs, and the two worlds */
  uint64_t rng = 0x9e3779b97f4a7c15ull ^ seed;
  int ni = p->inputs.len, no = p->outputs.len;
  void **inputs = calloc((size_t)ni + 1, sizeof *inputs);
  world w[2];
  memset(w, 0, sizeof w);
  int64_t dims[1] = {0};
  for (int i = 0; i < ni; i++) {
    const kp_io *io = &p->inputs.data[i];
    int64_t n = 1;
    for (int k = 0; k < io->rank; k++) n *= io->dims[k];
    inputs[i] = calloc((size_t)n * nn_dtype_size(io->dtype) + 64, 1);
    if (inputs[i]) fill(inputs[i], io->dtype, n, &rng);
  }
  for (int j = 0; j < 2; j++) {
    w[j].ws = calloc(p->workspace_bytes + 64, 1);
    w[j].outputs = calloc((size_t)no + 1, sizeof(void *));
    for (int i = 0; i < no && w[j].outputs; i++) {
      const kp_io *io = &p->outputs.data[i];
      int64_t n = 1;
      for (int k = 0; k < io->rank; k++) n *= io->dims[k];
      w[j].outputs[i] = calloc((size_t)n * nn_dtype_size(io->dtype) + 64, 1);
    }
  }
  if (!inputs || !w[0].ws || !w[1].ws || !w[0].outputs || !w[1].outputs) {
    nn_error(d, no_loc, "out of memory for the emulation check");
    goto done;
  }
  int forms[NNCC_CU_NFORMS] = {0}, nvec = 0, ntc = 0;
  double worst = 0;
  int64_t compared = 0;
  for (int i = 0; i < m->table.nkernels; i++) {
    forms[m->table.kernels[i].form]++;
    nvec += m->table.kernels[i].vec > 1;
    ntc += i < m->tc.len && m->tc.data[i];
  }
  int bad_steps = run_pass(p, m, launch, fns, inputs, w, dims, tol, out, &compared, &worst, d);
  if (bad_steps < 0) goto done;
  if (p->checks.len > 0) {
    /* Once more with one index out of every range: element 0 of each
     * integer input set to 1000000007, so the run-time checks fail; their
     * status blocks (written buffers) are compared like any other. */
    for (int i = 0; i < ni; i++) {
      const kp_io *io = &p->inputs.data[i];
      int64_t n = 1;
      for (int k = 0; k < io->rank; k++) n *= io->dims[k];
      if (n < 1 || nn_dtype_is_float(io->dtype) || io->dtype == NN_DT_BOOL) continue;
      if (io->dtype == NN_DT_I64) ((int64_t *)inputs[i])[0] = 1000000007;
      if (io->dtype == NN_DT_I32) ((int32_t *)inputs[i])[0] = 1000000007;
    }
    for (int j = 0; j < 2; j++) memset(w[j].status, 0, sizeof w[j].status);
    int bad2 = run_pass(p, m, launch, fns, inputs, w, dims, tol, out, &compared, &worst, d);
    if (bad2 < 0) goto done;
    bad_steps += bad2;
  }
  fprintf(out,
          "emucheck: %d steps, %d kernels (par %d (float4 %d), gemm %d (wmma %d), "
          "serial %d, row %d), %lld values compared, max rel err %.3g, %d mismatching "
          "steps",
          p->steps.len, m->table.nkernels, forms[NNCC_CU_PAR], nvec, forms[NNCC_CU_GEMM], ntc,
          forms[NNCC_CU_SERIAL], forms[NNCC_CU_ROW], (long long)compared, worst, bad_steps);
  if (p->checks.len > 0) /* the second run: which check failed, on what */
    fprintf(out, "; %d run-time checks, with an index of 1000000007: status [%lld, %lld, %lld]",
            p->checks.len, (long long)w[0].status[0], (long long)w[0].status[1],
            (long long)w[0].status[2]);
  fprintf(out, "\n");
  rc = bad_steps ? 1 : 0;
done:
  for (int i = 0; inputs && i < ni; i++) free(inputs[i]);
  free(inputs);
  for (int j = 0; j < 2; j++) {
    for (int i = 0; i < no && w[j].outputs; i++) free(w[j].outputs[i]);
    free(w[j].outputs);
    free(w[j].ws);
  }
done_dl:
  free(fns);
  dlclose(dl);
  return rc;
}
