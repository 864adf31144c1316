/* llvmtest.h — helpers shared by the unit tests of the backend's code
 * generation (test_llvm, test_llvm_gemm, test_vmath, test_gemm).
 *
 * Programs are built by hand (lt_add_buf), compiled with llvm_compile, and
 * the object is linked with the system C compiler ($CC, else cc) into a
 * shared object together with a small runtime stub, rt.c, in a temporary
 * directory (lt_setup; under $NNCC_TEST_TMP when set, else /tmp), then
 * loaded with dlopen and run through its nncc_graph_run (lt_load_object).
 * lt_gemm_shape sets the sizes and operand layouts of a test GEMM.
 * Include after unit.h: failures are CHECKs and count like the test's own.
 */
#ifndef NNCC_LLVMTEST_H
#define NNCC_LLVMTEST_H

#include "../../backends/backend.h"
#include "../../lower/lower.h"
#include "unit.h"

#include <dlfcn.h>
#include <unistd.h>

/* nncc_graph_run of a compiled program. */
typedef int (*graph_fn)(void *const *inputs, void *const *outputs, unsigned char *workspace,
                        const unsigned char *weights, void *pool, const int64_t *dims,
                        const int64_t *offsets, int64_t *status);

/* The opening of nncc_rt_parallel_for, for a test's runtime stub: a
 * serial stand-in for the model runtime's thread pool, calling
 * fn(slots, begin, end) over [0, n) in chunks of the test's choosing. */
#define LT_RT_PARALLEL_FOR                                                    \
  "void nncc_rt_parallel_for(void *pool, void (*fn)(void *const *, int64_t, " \
  "int64_t),\n"                                                               \
  "                          void *const *slots, int64_t n) {\n"              \
  "  (void)pool;\n"

static char lt_dir[512]; /* the temporary directory (lt_setup) */
static int lt_so_count;  /* shared objects linked so far (their names) */

/* xorshift64: the next pseudo-random value of state *s (nonzero). */
static inline uint64_t lt_xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* A pseudo-random float in [-1, 1) from state *s. */
static inline float lt_frand(uint64_t *s) {
  return (float)((double)(lt_xorshift(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Writes n bytes of data to path (a CHECK for opening and one for writing). */
static inline void lt_write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (!f) return;
  CHECK(fwrite(data, 1, n, f) == n);
  fclose(f);
}

/* The path of the runtime stub in lt_dir. */
static inline const char *lt_rt_path(void) {
  static char rt[600];
  snprintf(rt, sizeof rt, "%s/rt.c", lt_dir);
  return rt;
}

/* Creates lt_dir, named after the test (skips the test when it can't),
 * and writes the runtime stub rt_source into it unless NULL. */
static inline void lt_setup(const char *name, const char *rt_source) {
  const char *base = getenv("NNCC_TEST_TMP");
  snprintf(lt_dir, sizeof lt_dir, "%s/nncc_test_%s_XXXXXX", base && *base ? base : "/tmp", name);
  if (!mkdtemp(lt_dir)) unit_skip("no temporary directory");
  if (rt_source) lt_write_file(lt_rt_path(), rt_source, strlen(rt_source));
}

/* Removes the runtime stub and lt_dir. */
static inline void lt_cleanup(void) {
  remove(lt_rt_path());
  rmdir(lt_dir);
}

/* Links the object of r with lt_dir/rt.c into a shared object and loads
 * it; *fn gets its nncc_graph_run. Returns the dlopen handle, or NULL on
 * failure (after a failed CHECK). The object and the shared object are
 * removed again. */
static inline void *lt_load_object(const llvm_result *r, graph_fn *fn) {
  char obj[600], so[600], cmd[2048];
  int id = lt_so_count++;
  snprintf(obj, sizeof obj, "%s/m%d.o", lt_dir, id);
  snprintf(so, sizeof so, "%s/m%d.so", lt_dir, id);
  lt_write_file(obj, r->obj, r->obj_size);
  const char *cc = getenv("CC");
  snprintf(cmd, sizeof cmd, "%s -shared -fPIC -o %s %s %s/rt.c -lm", cc && *cc ? cc : "cc", so, obj,
           lt_dir);
  int rc = system(cmd);
  CHECK_INT(rc, 0);
  remove(obj);
  if (rc != 0) return NULL;
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  remove(so);
  if (!h) fprintf(stderr, "dlopen: %s\n", dlerror());
  CHECK(h != NULL);
  if (!h) return NULL;
  *(void **)fn = dlsym(h, "nncc_graph_run");
  CHECK(*fn != NULL);
  return *fn ? h : NULL;
}

/* Adds a buffer to p: a new graph input or output of `elems` elements
 * (1-d, named "t"), or a weight or workspace buffer at `offset`. */
static inline kp_bufid lt_add_buf(kp_program *p, kp_bufkind kind, nn_dtype dt, int64_t elems,
                                  uint64_t offset) {
  kp_buf b = {.kind = kind, .dtype = dt, .elems = elems, .offset = offset};
  kp_io io = {.name = "t", .dtype = dt, .rank = 1, .dims = NULL};
  if (kind == KP_BUF_INPUT) {
    b.index = p->inputs.len;
    NN_PUSH(p->arena, p->inputs, io);
  } else if (kind == KP_BUF_OUTPUT) {
    b.index = p->outputs.len;
    NN_PUSH(p->arena, p->outputs, io);
  }
  NN_PUSH(p->arena, p->bufs, b);
  return p->bufs.len - 1;
}

/* Sets the sizes of GEMM g (kernel k) to M x N over K and the layouts of
 * its operands: A [M, K] row-major, or stored [K, M] when a_trans; B
 * [K, N] row-major, or stored [N, K] when b_trans; a_panel / b_panel the
 * packed layouts (0 for none). */
static inline void lt_gemm_shape(kernel *k, ks_gemm *g, kx_id M, kx_id N, kx_id K, bool a_trans,
                                 bool b_trans, int a_panel, int b_panel) {
  g->m = M;
  g->n = N;
  g->k = K;
  g->a_rs = a_trans ? k_i64(k, 1) : K;
  g->a_cs = a_trans ? M : k_i64(k, 1);
  g->b_rs = b_trans ? k_i64(k, 1) : N;
  g->b_cs = b_trans ? K : k_i64(k, 1);
  g->a_panel = a_panel;
  g->b_panel = b_panel;
}

/* Opens a PARALLEL loop over `batch` items around a test GEMM when batch
 * > 1; *loop gets its variable (-1: no loop). Returns the item's index
 * (the constant 0 without a loop), to move the operands' offsets by. */
static inline kx_id lt_batch_begin(kernel *k, int64_t batch, int32_t *loop) {
  *loop = -1;
  if (batch > 1) *loop = k_for_begin(k, k_i64(k, 0), k_i64(k, batch), KS_PARALLEL);
  return *loop >= 0 ? k_varref(k, *loop) : k_i64(k, 0);
}

/* Adds GEMM g and closes the batch loop of lt_batch_begin, if any. */
static inline void lt_batch_end(kernel *k, const ks_gemm *g, int32_t loop) {
  k_gemm(k, g);
  if (loop >= 0) k_for_end(k);
}

#endif
