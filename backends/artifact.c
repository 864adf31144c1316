/* artifact.c — linking model.so (backend.h "artifact.c").
 *
 * The inputs: the generated object (llvm_result), the weights blob and the
 * description of the inputs/outputs (kp_program), and the model runtime
 * object embedded in nncc itself (abi/abi.h, nncc_embedded_model_rt).
 * In a private temporary directory (mkdtemp) we write
 *   model.o      the generated code
 *   model_rt.o   the embedded model runtime
 *   weights.bin  the weights blob          ┐ pulled into data.o by
 *   meta.bin     the metadata blob (abi.h) ┘ data.s through .incbin
 *   data.s       assembler: the two blobs in read-only sections, the
 *                weights 64-byte aligned (no giant LLVM constant)
 *   exports.map  a version script exporting nncc_model_v1 only
 *   note.ld      a linker script fragment placing the seal's size note
 * then run `$CC -c data.s` and
 *   $CC -shared -o OUT.tmp-PID model.o data.o model_rt.o -Wl,--version-script=...
 *       -Wl,-T,note.ld -Wl,--build-id=none -Wl,--no-undefined -Wl,-z,noexecstack -lm -lpthread
 * seal the result (ab_seal_fd: the size in the .note.nncc note data.s
 * reserves, the integrity trailer, fsync), and rename OUT.tmp-PID to OUT,
 * so a failure never leaves OUT behind and OUT is never a partial file:
 * a model replaced this way is either the old file or the whole new one.
 *
 * Determinism: the same inputs give the same bytes. Nothing variable goes
 * in: no build id, data.s names itself with a fixed `.file` so the temporary
 * directory's name is not recorded, and ld writes no timestamps.
 * The compiler's output is captured and shown in the error when it fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../abi/abi.h"
#include "backend.h"

#ifndef NNCC_VERSION
#define NNCC_VERSION "0.0.0"
#endif
#ifndef NNCC_LLVM_VERSION
#define NNCC_LLVM_VERSION "?"
#endif

static const nn_loc no_loc = {0};

/* ---- the metadata blob ------------------------------------------------------- */

typedef NN_VEC(unsigned char) bytevec;

static void put_le(nn_arena *a, bytevec *v, uint64_t x, int bytes) {
  for (int i = 0; i < bytes; i++) NN_PUSH(a, *v, (unsigned char)(x >> (8 * i)));
}

static void put_str(nn_arena *a, bytevec *v, const char *s) {
  size_t n = s ? strlen(s) : 0;
  put_le(a, v, n, 4);
  for (size_t i = 0; i < n; i++) NN_PUSH(a, *v, (unsigned char)s[i]);
}

/* The dim expressions the metadata names, numbered in the order written
 * (operands before their users). */
typedef struct meta_exprs {
  const kp_program *p;
  int32_t *index; /* by ir_dim: expression number, -1 = not yet */
  ir_dim *order;  /* by expression number: the dim */
  int n;
} meta_exprs;

/* The expression number of d (a non-constant dim or any operand of one). */
static int32_t expr_of(meta_exprs *m, ir_dim d) {
  if (m->index[d] >= 0) return m->index[d];
  const ir_dimexpr *e = ir_dim_get(m->p->g, d);
  if (e->kind >= IR_DK_ADD) {
    ir_dim a = e->a, b = e->b;
    expr_of(m, a);
    expr_of(m, b);
  }
  m->index[d] = m->n;
  m->order[m->n++] = d;
  return m->index[d];
}

static void put_exprs(nn_arena *a, bytevec *v, meta_exprs *m) {
  const ir_graph *g = m->p->g;
  put_le(a, v, (uint64_t)m->n, 4);
  for (int i = 0; i < m->n; i++) {
    const ir_dimexpr *e = ir_dim_get(g, m->order[i]);
    nn_buf txt = {0};
    ir_dim_print(&txt, g, m->order[i]);
    put_str(a, v, txt.data ? txt.data : "");
    nn_buf_free(&txt);
    switch (e->kind) {
    case IR_DK_CONST:
      put_le(a, v, 0, 1);
      put_le(a, v, (uint64_t)e->c, 8);
      break;
    case IR_DK_SYM: {
      int s = 0;
      while (s < m->p->syms.len && m->p->syms.data[s].dim != m->order[i]) s++;
      NN_ASSERT(s < m->p->syms.len);
      put_le(a, v, 1, 1);
      put_le(a, v, (uint64_t)s, 4);
      break;
    }
    default: {
      int kind = e->kind == IR_DK_ADD        ? 2
                 : e->kind == IR_DK_MUL      ? 3
                 : e->kind == IR_DK_DIV      ? 4
                 : e->kind == IR_DK_FLOORDIV ? 5
                                             : 6;
      NN_ASSERT(e->kind >= IR_DK_ADD && e->kind <= IR_DK_MOD);
      put_le(a, v, (uint64_t)kind, 1);
      put_le(a, v, (uint64_t)m->index[e->a], 4);
      put_le(a, v, (uint64_t)m->index[e->b], 4);
    }
    }
  }
}

/* A dim as written in an io record: the number, or -1 - its expression. */
static int64_t io_dim(meta_exprs *m, const kp_io *io, int k) {
  if (io->dims[k] >= 0) return io->dims[k];
  return -1 - (int64_t)m->index[io->dims_d[k]];
}

static void put_ios(nn_arena *a, bytevec *v, meta_exprs *m, const kp_io *ios, int n) {
  put_le(a, v, (uint64_t)n, 4);
  for (int i = 0; i < n; i++) {
    put_str(a, v, ios[i].name);
    put_le(a, v, (uint64_t)ios[i].dtype, 4);
    put_le(a, v, (uint64_t)ios[i].rank, 4);
    for (int k = 0; k < ios[i].rank; k++) put_le(a, v, (uint64_t)io_dim(m, &ios[i], k), 8);
  }
}

/* The step table (abi.h, version 3): per step its kernel, the IR ops it
 * computes (every member of a fused group, in program order), the module
 * scope and the source line, so that a run-time profile can name them. */
static void put_steps(nn_arena *a, bytevec *v, const kp_program *p) {
  const ir_graph *g = p->g;
  int32_t *pos = NULL; /* by node id: position in g->order */
  if (g) {
    pos = nn_alloc(a, sizeof *pos * (size_t)(g->nodes.len + 1));
    for (int i = 0; i < g->order.len; i++) pos[g->order.data[i]] = i;
  }
  put_le(a, v, (uint64_t)p->steps.len, 4);
  for (int s = 0; s < p->steps.len; s++) {
    const kp_step *st = &p->steps.data[s];
    nn_buf ops = {0}, where = {0};
    const char *scope = "";
    if (g && st->node >= 0 && st->node < g->nodes.len) {
      const ir_node *n = &g->nodes.data[st->node];
      scope = n->scope ? n->scope : "";
      nn_buf_printf(&ops, "%s", ir_ops[n->op].name);
      for (int i = pos[st->node] + 1; n->group > 0 && i < g->order.len; i++) {
        const ir_node *m = &g->nodes.data[g->order.data[i]];
        if (m->group != n->group) break;
        nn_buf_printf(&ops, "+%s", ir_ops[m->op].name);
      }
    }
    nn_loc loc = st->k->loc;
    if (loc.file && loc.line > 0) nn_buf_printf(&where, "%s:%d", loc.file, loc.line);
    put_str(a, v, st->k->name);
    put_str(a, v, ops.data ? ops.data : "");
    put_str(a, v, scope);
    put_str(a, v, where.data ? where.data : "");
    nn_buf_free(&ops);
    nn_buf_free(&where);
  }
}

/* The run-time check table (abi.h, version 5): what a failed check names. */
static void put_checks(nn_arena *a, bytevec *v, const kp_program *p) {
  _Static_assert(KP_STATUS_WORDS == NNCC_STATUS_WORDS, "one status block layout");
  put_le(a, v, (uint64_t)p->checks.len, 4);
  for (int i = 0; i < p->checks.len; i++) {
    const kp_check *c = &p->checks.data[i];
    nn_buf where = {0};
    if (c->loc.file && c->loc.line > 0) nn_buf_printf(&where, "%s:%d", c->loc.file, c->loc.line);
    put_le(a, v, c->kind == KP_CHECK_INDEX ? 0 : c->kind == KP_CHECK_INDEX_WRAP ? 1 : 2, 1);
    put_le(a, v, (uint64_t)(int64_t)c->dim, 4);
    put_str(a, v, c->op);
    put_str(a, v, c->what);
    put_str(a, v, c->scope);
    put_str(a, v, where.data ? where.data : "");
    nn_buf_free(&where);
  }
}

/* The precision recorded when the driver names none: bf16 or f16 when a
 * weight or workspace buffer holds that type (the fp16 pass ran), else f32.
 * Inputs and outputs are left out: they keep the model's own dtypes. */
static const char *program_precision(const kp_program *p) {
  const char *prec = "f32";
  for (int i = 0; i < p->bufs.len; i++) {
    const kp_buf *b = &p->bufs.data[i];
    if (b->kind != KP_BUF_WEIGHT && b->kind != KP_BUF_WORKSPACE) continue;
    if (b->dtype == NN_DT_BF16) return "bf16";
    if (b->dtype == NN_DT_F16) prec = "f16";
  }
  return prec;
}

/* Distinct kernels among the steps: a kernel two steps share is compiled
 * once, by the LLVM and the CUDA backends alike. */
static int count_kernels(const kp_program *p) {
  int n = 0;
  for (int s = 0; s < p->steps.len; s++) {
    int t = 0;
    while (t < s && p->steps.data[t].k != p->steps.data[s].k) t++;
    n += t == s;
  }
  return n;
}

/* Builds the metadata blob (format in abi/abi.h). */
static bytevec build_meta(const kp_program *p, const llvm_result *r, const artifact_opts *o) {
  nn_arena *a = p->arena;
  const ir_graph *g = p->g;
  bytevec v = {0};
  for (int i = 0; i < 8; i++) NN_PUSH(a, v, (unsigned char)NNCC_META_MAGIC[i]);
  put_le(a, &v, NNCC_META_VERSION, 4);
  put_le(a, &v, 0, 4); /* total length, patched below */
  put_str(a, &v, "nncc " NNCC_VERSION " (LLVM " NNCC_LLVM_VERSION ")");
  put_str(a, &v, o->model_name ? o->model_name : "");
  put_str(a, &v, o->target ? o->target : "cpu");
  put_str(a, &v, r->cpu ? r->cpu : "");
  put_str(a, &v, r->features ? r->features : "");
  put_le(a, &v, p->workspace_bytes, 8);
  put_le(a, &v, (uint64_t)p->weights.len, 8);
  put_le(a, &v, (uint64_t)p->syms.len, 4);
  for (int i = 0; i < p->syms.len; i++) {
    put_str(a, &v, p->syms.data[i].name);
    put_le(a, &v, (uint64_t)p->syms.data[i].lo, 8);
    put_le(a, &v, (uint64_t)p->syms.data[i].hi, 8);
  }
  /* every expression the rest names: io dims, checked dims, block sizes */
  meta_exprs m = {.p = p};
  int ndims = g && p->syms.len > 0 ? g->dims.len : 0;
  m.index = nn_alloc(a, sizeof *m.index * (size_t)(ndims + 1));
  m.order = nn_alloc(a, sizeof *m.order * (size_t)(ndims + 1));
  for (int i = 0; i < ndims; i++) m.index[i] = -1;
  NN_VEC(int32_t) checks = {0};
  if (p->syms.len > 0) {
    for (int i = 0; i < p->inputs.len + p->outputs.len; i++) {
      const kp_io *io = i < p->inputs.len ? &p->inputs.data[i]
                                          : &p->outputs.data[i - p->inputs.len];
      for (int k = 0; k < io->rank; k++)
        if (io->dims[k] < 0) expr_of(&m, io->dims_d[k]);
    }
    for (int i = 0; i < g->values.len; i++) {
      const ir_type *t = g->values.data[i].type;
      ir_nodeid def = g->values.data[i].def;
      if (!t || t->kind != IR_T_TENSOR || t->rank <= 0) continue;
      if (def >= 0 && (g->nodes.data[def].flags & IR_NF_DEAD)) continue;
      for (int k = 0; k < t->rank; k++) {
        if (ir_dim_is_const(g, t->dims[k], NULL) || t->dims[k] == IR_DIM_UNKNOWN) continue;
        bool fresh = m.index[t->dims[k]] < 0;
        int32_t x = expr_of(&m, t->dims[k]);
        bool listed = false;
        for (int j = 0; j < checks.len && !fresh && !listed; j++) listed = checks.data[j] == x;
        if (!listed) NN_PUSH(a, checks, x);
      }
    }
    for (int i = 0; i < p->dynblocks.len; i++)
      expr_of(&m, p->bufs.data[p->dynblocks.data[i].buf].elems_d);
    for (int i = 0; i < g->guards.len; i++) {
      expr_of(&m, g->guards.data[i].a);
      expr_of(&m, g->guards.data[i].b);
    }
  }
  put_exprs(a, &v, &m);
  put_ios(a, &v, &m, p->inputs.data, p->inputs.len);
  put_ios(a, &v, &m, p->outputs.data, p->outputs.len);
  put_le(a, &v, (uint64_t)checks.len, 4);
  for (int i = 0; i < checks.len; i++) put_le(a, &v, (uint64_t)checks.data[i], 4);
  int nguards = p->syms.len > 0 ? g->guards.len : 0;
  put_le(a, &v, (uint64_t)nguards, 4);
  for (int i = 0; i < nguards; i++) {
    const ir_guard *gd = &g->guards.data[i];
    put_le(a, &v, (uint64_t)m.index[gd->a], 4);
    put_le(a, &v, (uint64_t)m.index[gd->b], 4);
    char where[512];
    snprintf(where, sizeof where, "%s:%d:%d", gd->loc.file ? gd->loc.file : "?", gd->loc.line,
             gd->loc.col);
    put_str(a, &v, where);
  }
  put_le(a, &v, p->dynamic ? (uint64_t)p->bufs.len : 0, 4);
  put_le(a, &v, p->dynamic ? (uint64_t)p->dynblocks.len : 0, 4);
  for (int i = 0; p->dynamic && i < p->dynblocks.len; i++) {
    const kp_dynblock *b = &p->dynblocks.data[i];
    const kp_buf *x = &p->bufs.data[b->buf];
    put_le(a, &v, (uint64_t)b->buf, 4);
    put_le(a, &v, nn_dtype_size(x->dtype), 4);
    put_le(a, &v, (uint64_t)m.index[x->elems_d], 4);
    put_le(a, &v, (uint64_t)b->first, 4);
    put_le(a, &v, (uint64_t)b->last, 4);
  }
  put_steps(a, &v, p);
  put_str(a, &v, o->precision ? o->precision : program_precision(p));
  put_le(a, &v, (uint64_t)count_kernels(p), 4);
  put_checks(a, &v, p);
  for (int i = 0; i < 4; i++) v.data[12 + i] = (unsigned char)((unsigned)v.len >> (8 * i));
  return v;
}

/* ---- files and processes ----------------------------------------------------- */

int be_write_file(const char *path, const void *data, size_t n, nn_diag *d) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    nn_error(d, no_loc, "can't create '%s': %s", path, strerror(errno));
    return -1;
  }
  int ok = (n == 0 || fwrite(data, 1, n, f) == n);
  if (fclose(f) != 0) ok = 0;
  if (!ok) {
    nn_error(d, no_loc, "can't write '%s': %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

int be_run(char **argv, const char *log, const char *what, nn_diag *d) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    nn_error(d, no_loc, "can't run the C compiler '%s' to %s: %s", argv[0], what, strerror(rc));
    return -1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      nn_error(d, no_loc, "waiting for '%s': %s", argv[0], strerror(errno));
      return -1;
    }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  char out[2048] = "";
  FILE *f = fopen(log, "rb");
  if (f) {
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
    fclose(f);
  }
  nn_buf cmd = {0};
  for (int i = 0; argv[i]; i++) nn_buf_printf(&cmd, "%s%s", i ? " " : "", argv[i]);
  nn_error(d, no_loc, "the C compiler '%s' failed to %s (%s %d)\n  command: %s%s%s", argv[0], what,
           WIFEXITED(status) ? "exit status" : "signal",
           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), cmd.data, *out ? "\n" : "",
           out);
  nn_buf_free(&cmd);
  return -1;
}

/* Splits $CC ("ccache gcc -m64") on spaces into argv[0..n); returns n. */
static int split_cc(nn_arena *a, const char *cc, char **argv, int max) {
  char *s = nn_strdup(a, cc);
  int n = 0;
  for (char *tok = strtok(s, " \t"); tok && n < max; tok = strtok(NULL, " \t")) argv[n++] = tok;
  return n;
}

static const char *data_asm =
    "# nncc model data: the weights blob and the model description.\n"
    "\t.file\t\"nncc_data.s\"\n"
    "\t.section\t.rodata.nncc_weights,\"a\"\n"
    "\t.balign\t64\n"
    "\t.globl\tnncc_weights\n"
    "\t.hidden\tnncc_weights\n"
    "\t.type\tnncc_weights, \"object\"\n"
    "nncc_weights:\n"
    "\t.incbin\t\"%s/weights.bin\"\n"
    "\t.size\tnncc_weights, . - nncc_weights\n"
    "\t.byte\t0\n" /* a distinct address even when there are no weights */
    "\t.section\t.rodata.nncc_meta,\"a\"\n"
    "\t.balign\t8\n"
    "\t.globl\tnncc_meta\n"
    "\t.hidden\tnncc_meta\n"
    "\t.globl\tnncc_meta_end\n"
    "\t.hidden\tnncc_meta_end\n"
    "nncc_meta:\n"
    "\t.incbin\t\"%s/meta.bin\"\n"
    "nncc_meta_end:\n"
    /* The seal's size note (abi.h "seal.c"), filled in by ab_seal_fd. */
    "\t.section\t.note.nncc,\"a\",\"note\"\n"
    "\t.balign\t4\n"
    "\t.long\t5\n"
    "\t.long\t16\n"
    "\t.long\t1\n"
    "\t.asciz\t\"NNCC\"\n"
    "\t.balign\t4\n"
    "\t.quad\t0\n"
    "\t.quad\t0\n"
    "\t.section\t.note.GNU-stack,\"\",\"progbits\"\n";

/* ---- linking ------------------------------------------------------------------- */

int artifact_link(const kp_program *p, const llvm_result *r, const artifact_opts *o, nn_diag *d) {
  NN_ASSERT(p && r && o && o->out);
  nn_arena *a = p->arena;
  if (!r->obj || !r->obj_size) {
    nn_error(d, no_loc, "no object code to link");
    return -1;
  }
  const char *tmproot = getenv("TMPDIR");
  if (!tmproot || !*tmproot) tmproot = "/tmp";
  char *dir = nn_sprintf(a, "%s/nncc-link-XXXXXX", tmproot);
  if (!mkdtemp(dir)) {
    nn_error(d, no_loc, "can't create a temporary directory in '%s': %s", tmproot, strerror(errno));
    return -1;
  }
  static const char *const files[] = {"model.o", "model_rt.o",  "weights.bin", "meta.bin", "data.s",
                                      "data.o",  "exports.map", "note.ld",     "cc.log"};
#define TMP(name) nn_sprintf(a, "%s/%s", dir, name)
  char *out_tmp = nn_sprintf(a, "%s.tmp-%ld", o->out, (long)getpid());
  int rc = -1;
  bytevec meta = build_meta(p, r, o);
  if (be_write_file(TMP("model.o"), r->obj, r->obj_size, d) ||
      be_write_file(TMP("model_rt.o"), nncc_embedded_model_rt, nncc_embedded_model_rt_size, d) ||
      be_write_file(TMP("weights.bin"), p->weights.data, (size_t)p->weights.len, d) ||
      be_write_file(TMP("meta.bin"), meta.data, (size_t)meta.len, d))
    goto done;
  char *s = nn_sprintf(a, data_asm, dir, dir);
  if (be_write_file(TMP("data.s"), s, strlen(s), d)) goto done;
  s = "{\n  global: " NNCC_ENTRY_SYMBOL ";\n  local: *;\n};\n";
  if (be_write_file(TMP("exports.map"), s, strlen(s), d)) goto done;
  /* The size note goes before .dynsym, into the file's first page, where a
   * cut file still has it (ld would put an orphan note after the weights).
   * INSERT keeps the linker's own script (GNU ld and lld). */
  s = "SECTIONS { .note.nncc : { KEEP(*(.note.nncc)) } } INSERT BEFORE .dynsym;\n";
  if (be_write_file(TMP("note.ld"), s, strlen(s), d)) goto done;

  const char *cc = o->cc && *o->cc ? o->cc : "cc";
  char *argv[64];
  int n = split_cc(a, cc, argv, 32);
  if (n == 0) {
    nn_error(d, no_loc, "the C compiler command is empty");
    goto done;
  }
  int base = n;
  argv[n++] = "-c";
  argv[n++] = "-o";
  argv[n++] = TMP("data.o");
  argv[n++] = TMP("data.s");
  argv[n] = NULL;
  if (be_run(argv, TMP("cc.log"), "assemble the model data", d)) goto done;

  n = base;
  argv[n++] = "-shared";
  argv[n++] = "-o";
  argv[n++] = out_tmp;
  argv[n++] = TMP("model.o");
  argv[n++] = TMP("data.o");
  argv[n++] = TMP("model_rt.o");
  argv[n++] = nn_sprintf(a, "-Wl,--version-script=%s/exports.map", dir);
  argv[n++] = nn_sprintf(a, "-Wl,-T,%s/note.ld", dir);
  argv[n++] = "-Wl,--build-id=none";
  argv[n++] = "-Wl,--no-undefined";
  argv[n++] = "-Wl,-z,noexecstack";
  argv[n++] = "-Wl,-z,relro";
  argv[n++] = "-Wl,-z,now";
  argv[n++] = "-lm";
  argv[n++] = "-lpthread";
  argv[n] = NULL;
  if (be_run(argv, TMP("cc.log"), "link the model", d)) {
    unlink(out_tmp);
    goto done;
  }
  /* The seal (abi.h "seal.c"): the size note, the trailer, then fsync, so
   * the rename below never publishes a file that isn't all on disk. */
  int fd = open(out_tmp, O_RDWR | O_CLOEXEC);
  char why[256];
  if (fd < 0 || ab_seal_fd(fd, why, sizeof why) != 0) {
    nn_error(d, no_loc, "%s", fd < 0 ? "can't reopen the linked model to seal it" : why);
    if (fd >= 0) close(fd);
    unlink(out_tmp);
    goto done;
  }
  close(fd);
  if (rename(out_tmp, o->out) != 0) {
    nn_error(d, no_loc, "can't rename '%s' to '%s': %s", out_tmp, o->out, strerror(errno));
    unlink(out_tmp);
    goto done;
  }
  rc = 0;
done:
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(TMP(files[i]));
  rmdir(dir);
#undef TMP
  return rc;
}
