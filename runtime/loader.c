/* loader.c — opening a model.so and describing it (nncc.h "models").
 *
 * nncc_model_open dlopens the file (RTLD_NOW | RTLD_LOCAL: every symbol is
 * resolved now, so a broken .so fails here, and nothing it defines leaks
 * into the process), finds the one entry point nncc_model_v1, and checks,
 * in order: the ABI version, that the description is well formed (counts,
 * ranks, dtypes, dims), and that the CPU has the features the code was
 * compiled for. Every failure is a status and a message; the handle is
 * immutable afterwards, so the accessors need no locking.
 *
 * Also here: status and dtype names, messages, nncc_version.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

#ifndef NNCC_VERSION
#define NNCC_VERSION "0.0.0"
#endif

nncc_status rt_fail(char **err, nncc_status st, const char *fmt, ...) {
  if (!err) return st;
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  *err = msg;
  return st;
}

void nncc_free_message(char *message) { free(message); }

const char *nncc_version(void) { return NNCC_VERSION; }

const char *nncc_status_string(nncc_status s) {
  switch (s) {
  case NNCC_OK: return "ok";
  case NNCC_ERR_INVALID_ARG: return "invalid argument";
  case NNCC_ERR_IO: return "i/o error";
  case NNCC_ERR_LOAD: return "can't load the model";
  case NNCC_ERR_ABI: return "model ABI version mismatch";
  case NNCC_ERR_UNSUPPORTED_CPU: return "unsupported CPU";
  case NNCC_ERR_ARITY: return "wrong number of tensors";
  case NNCC_ERR_DTYPE: return "wrong dtype";
  case NNCC_ERR_SHAPE: return "wrong shape";
  case NNCC_ERR_OUT_OF_MEMORY: return "out of memory";
  case NNCC_ERR_RUNTIME: return "the model failed";
  case NNCC_ERR_FORMAT: return "malformed file";
  case NNCC_ERR_BUSY: return "session busy";
  case NNCC_ERR_INPUT_VALUE: return "invalid input value";
  }
  return "unknown status";
}

size_t nncc_dtype_size(nncc_dtype t) {
  switch (t) {
  case NNCC_DTYPE_F64:
  case NNCC_DTYPE_I64: return 8;
  case NNCC_DTYPE_F32:
  case NNCC_DTYPE_I32: return 4;
  case NNCC_DTYPE_F16:
  case NNCC_DTYPE_BF16:
  case NNCC_DTYPE_I16: return 2;
  case NNCC_DTYPE_I8:
  case NNCC_DTYPE_U8:
  case NNCC_DTYPE_BOOL: return 1;
  case NNCC_DTYPE_UNKNOWN: break;
  }
  return 0;
}

const char *nncc_dtype_name(nncc_dtype t) {
  static const char *const names[] = {"?",   "f32", "f16", "bf16", "f64", "i64",
                                      "i32", "i16", "i8",  "u8",   "bool"};
  return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

int64_t nncc_tensor_elems(const nncc_tensor *t) {
  if (!t) return 0;
  int64_t n = 1;
  for (int32_t i = 0; i < t->rank && t->dims; i++) n *= t->dims[i];
  return n;
}

/* Checks one io record of a descriptor; NULL if fine, else what is wrong. */
static const char *rt_bad_io(const nncc_model_io *io, bool symbolic) {
  if (!io->name) return "has no name";
  if (nncc_dtype_size((nncc_dtype)io->dtype) == 0) return "has an unknown dtype";
  if (io->rank < 0 || io->rank > NNCC_MAX_RANK) return "has a bad rank";
  if (io->rank > 0 && !io->dims) return "has no dims";
  for (int32_t k = 0; k < io->rank; k++)
    if (io->dims[k] < (symbolic ? -1 : 0)) return "has a negative dim";
  return NULL;
}

nncc_status rt_model_from_desc(const nncc_model_desc *d, void *dl, nncc_model **model, char **err) {
  return rt_model_from_desc_ex(d, dl, false, model, err);
}

/* Checks a descriptor's fields (the functions only when `fns`); NULL when
 * fine, else what is wrong, in `buf`. */
static const char *bad_desc(const nncc_model_desc *d, bool fns, char *buf, size_t cap) {
  if (d->struct_size < offsetof(nncc_model_desc, nsyms) || !d->compiler || !d->features ||
      !d->cpu || !d->target || !d->model_name || d->ninputs < 0 || d->noutputs < 0 ||
      (d->ninputs && !d->inputs) || (d->noutputs && !d->outputs) || d->nsyms < 0 ||
      (d->nsyms > 0 && !d->syms) || d->nsteps < 0 || (d->nsteps > 0 && !d->steps) ||
      d->nrtchecks < 0 || d->nkernels < 0)
    return "the model's description is malformed";
  if (fns && (!d->check_cpu || !d->session_new || !d->session_free || !d->run ||
              (d->nsyms > 0 && (!d->bind || !d->io_dims || !d->dim_text || !d->workspace_for ||
                                !d->run_dims || !d->set_workspace)) ||
              (d->nsteps > 0 && !d->set_profile) || (d->nrtchecks > 0 && !d->check_message)))
    return "the model's description is malformed";
  for (int32_t i = 0; i < d->ninputs + d->noutputs; i++) {
    bool in = i < d->ninputs;
    const nncc_model_io *io = in ? &d->inputs[i] : &d->outputs[i - d->ninputs];
    const char *why = rt_bad_io(io, d->nsyms > 0);
    if (why) {
      snprintf(buf, cap, "the model's %s %d %s", in ? "input" : "output", in ? i : i - d->ninputs,
               why);
      return buf;
    }
  }
  return NULL;
}

/* A model handle around a copy of descriptor d (the fields a model built
 * before they existed read zero). */
static nncc_model *new_model(const nncc_model_desc *d, const char *unusable) {
  nncc_model *m = calloc(1, sizeof *m);
  if (!m || (unusable && !(m->unusable = strdup(unusable)))) {
    free(m);
    return NULL;
  }
  memset(&m->full, 0, sizeof m->full);
  if (d->struct_size >= offsetof(nncc_model_desc, nsyms))
    memcpy(&m->full, d, d->struct_size < sizeof m->full ? d->struct_size : sizeof m->full);
  m->d = &m->full;
  m->refs = 1;
  return m;
}

nncc_status rt_model_from_desc_ex(const nncc_model_desc *d, void *dl, bool describe_only,
                                  nncc_model **model, char **err) {
  if (err) *err = NULL;
  if (!model) return rt_fail(err, NNCC_ERR_INVALID_ARG, "model is NULL");
  *model = NULL;
  if (!d) return rt_fail(err, NNCC_ERR_LOAD, "the model's description is malformed");
  if (d->abi_version != NNCC_ABI_VERSION)
    return rt_fail(err, NNCC_ERR_ABI,
                   "the model was built for ABI version %u; this runtime supports %u",
                   d->abi_version, NNCC_ABI_VERSION);
  /* Models built before the symbolic-dims fields existed have a shorter
   * descriptor: copy what they have, the rest reads as zero (no symbols). */
  nncc_model_desc full;
  memset(&full, 0, sizeof full);
  if (d->struct_size >= offsetof(nncc_model_desc, nsyms))
    memcpy(&full, d, d->struct_size < sizeof full ? d->struct_size : sizeof full);
  else
    full.struct_size = d->struct_size;
  char buf[160];
  const char *why = bad_desc(&full, true, buf, sizeof buf);
  if (why) return rt_fail(err, NNCC_ERR_LOAD, "%s", why);
  char msg[512];
  bool usable = full.check_cpu(msg, sizeof msg) == 0;
  if (!usable && !describe_only) return rt_fail(err, NNCC_ERR_UNSUPPORTED_CPU, "%s", msg);
  nncc_model *m = new_model(&full, usable ? NULL : msg);
  if (!m) return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "out of memory");
  m->dl = dl;
  *model = m;
  return NNCC_OK;
}

/* ---- opening a file ------------------------------------------------------------ */

/* Whether this process can run a CUDA model (for a model only described;
 * a loaded CUDA model answers through its descriptor's check_cpu): the
 * driver loads, cuInit succeeds, there is a GPU. The driver stays loaded
 * (unloading it is not supported by every version). */
static int cuda_usable(char *msg, size_t cap) {
  void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char *why = dlerror();
    snprintf(msg, cap,
             "this model runs on a CUDA GPU, but the CUDA driver (libcuda.so.1) can't be "
             "loaded: %s",
             why ? why : "unknown reason");
    return -1;
  }
  int (*init)(unsigned);
  int (*count)(int *);
  *(void **)&init = dlsym(dl, "cuInit");
  *(void **)&count = dlsym(dl, "cuDeviceGetCount");
  int n = 0, r = init && count ? init(0) : -1;
  if (r != 0) {
    snprintf(msg, cap, "cuInit failed (error %d; no usable CUDA GPU?)", r);
    return -1;
  }
  if (count(&n) != 0 || n < 1) {
    snprintf(msg, cap, "no CUDA GPU found");
    return -1;
  }
  return 0;
}

/* Describes the file from its bytes: the metadata blob parsed, nothing run. */
static nncc_status describe_file(const char *path, const unsigned char *p, const ab_image *im,
                                 nncc_model **model, char **err) {
  if (!im->meta_len)
    return rt_fail(err, NNCC_ERR_LOAD,
                   "can't load '%s': not a model compiled by nncc (no nncc metadata found; a "
                   "stripped file?)",
                   path);
  ab_meta *meta = calloc(1, sizeof *meta);
  if (!meta) return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "out of memory");
  if (ab_meta_parse(p + im->meta_off, (size_t)im->meta_len, meta) != 0) {
    free(meta);
    return rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': the model's description is malformed",
                   path);
  }
  char buf[512];
  const char *why = bad_desc(&meta->desc, false, buf, sizeof buf);
  if (why) {
    ab_meta_free(meta);
    free(meta);
    return rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': %s", path, why);
  }
  char msg[512];
  msg[0] = 0;
  int unusable;
  if (ab_machine_check(im->machine, msg, sizeof msg) != 0)
    unusable = -1; /* another machine's code */
  else if (!strcmp(meta->desc.target, "cuda"))
    unusable = cuda_usable(msg, sizeof msg);
  else
    unusable = ab_cpu_check(meta->desc.features, meta->desc.cpu, msg, sizeof msg);
  nncc_model *m = new_model(&meta->desc, unusable ? msg : NULL);
  if (!m) {
    ab_meta_free(meta);
    free(meta);
    return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "out of memory");
  }
  m->meta = meta;
  *model = m;
  return NNCC_OK;
}

/* Whether `path` names the file open as `st` (device and inode). */
static bool same_file(const char *path, const struct stat *st) {
  struct stat ps;
  return stat(path, &ps) == 0 && ps.st_ino == st->st_ino && ps.st_dev == st->st_dev;
}

/* Loads the checked file, the one `st` describes. The dynamic loader opens
 * files by name only, so the name must still lead to that file before and
 * after: a model replaced by rename in between (the way to deploy one) is
 * noticed, and open_model checks the new file from the start. (A
 * /proc/self/fd/N name can't be used: the loader also matches loaded
 * objects by name, and fd numbers are reused.) *changed is set then. */
static void *load_checked(const char *path, const struct stat *st, bool *changed, char *why,
                          size_t cap) {
  *changed = false;
  /* dlopen searches the library path for a name without a slash. */
  char *p = strchr(path, '/') ? strdup(path) : NULL;
  if (!p && asprintf(&p, "./%s", path) < 0) p = NULL;
  if (!p) {
    snprintf(why, cap, "out of memory");
    return NULL;
  }
  void *dl = NULL;
  if (!same_file(p, st)) {
    *changed = true;
  } else if (!(dl = dlopen(p, RTLD_NOW | RTLD_LOCAL))) {
    const char *e = dlerror();
    size_t n = strlen(p);
    /* "NAME: why": the caller names the file already */
    if (e && !strncmp(e, p, n) && !strncmp(e + n, ": ", 2)) e += n + 2;
    snprintf(why, cap, "%s", e ? e : "unknown reason");
  } else if (!same_file(p, st)) {
    dlclose(dl);
    dl = NULL;
    *changed = true;
  }
  if (*changed) snprintf(why, cap, "the file was replaced while it was being opened");
  free(p);
  return dl;
}

static nncc_status open_model(const char *path, uint32_t flags, int tries, nncc_model **model,
                              char **err) {
  if (err) *err = NULL;
  if (!model) return rt_fail(err, NNCC_ERR_INVALID_ARG, "model is NULL");
  *model = NULL;
  if (!path) return rt_fail(err, NNCC_ERR_INVALID_ARG, "path is NULL");
  if (flags & ~(uint32_t)(NNCC_OPEN_DESCRIBE | NNCC_OPEN_NO_VERIFY))
    return rt_fail(err, NNCC_ERR_INVALID_ARG, "unknown flags 0x%x",
                   flags & ~(uint32_t)(NNCC_OPEN_DESCRIBE | NNCC_OPEN_NO_VERIFY));
  bool describe = flags & NNCC_OPEN_DESCRIBE;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': not a regular file", path);
  }
  if (st.st_size == 0) {
    close(fd);
    return rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': the file is empty", path);
  }
  if ((uint64_t)st.st_size > SIZE_MAX) {
    close(fd);
    return rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': the file is too large", path);
  }
  size_t size = (size_t)st.st_size;
  /* Read-only and private: nothing of the file is ever executable here.
   * (The hashing threads map the pages in, each its own part.) */
  bool verify = !(flags & NNCC_OPEN_NO_VERIFY);
  const unsigned char *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    return rt_fail(err, e == ENOMEM ? NNCC_ERR_OUT_OF_MEMORY : NNCC_ERR_LOAD,
                   "can't load '%s': can't map it: %s", path, strerror(e));
  }
  ab_image im;
  char why[512];
  ab_verdict v = ab_image_check(p, size,
                                (verify ? 0 : AB_SKIP_HASH) | (describe ? AB_ANY_MACHINE : 0), &im,
                                why, sizeof why);
  nncc_status verdict_st = NNCC_OK;
  if (v != AB_OK) {
    verdict_st = rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': %s", path, why);
  } else if (describe) {
    verdict_st = describe_file(path, p, &im, model, err);
  }
  munmap((void *)p, size);
  if (v != AB_OK || describe) {
    close(fd);
    return verdict_st;
  }
  bool changed;
  void *dl = load_checked(path, &st, &changed, why, sizeof why);
  close(fd);
  if (!dl && changed && tries > 1) return open_model(path, flags, tries - 1, model, err);
  if (!dl) return rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': %s", path, why);
  dlerror();
  nncc_model_entry_fn entry;
  *(void **)&entry = dlsym(dl, NNCC_ENTRY_SYMBOL);
  if (!entry) {
    dlclose(dl);
    return rt_fail(err, NNCC_ERR_LOAD,
                   "'%s' is not a model compiled by nncc (no %s symbol; an older "
                   "or newer ABI?)",
                   path, NNCC_ENTRY_SYMBOL);
  }
  nncc_status st2 = rt_model_from_desc_ex(entry(), dl, false, model, err);
  if (st2 != NNCC_OK) {
    dlclose(dl);
    if (err && *err) {
      char *msg = NULL;
      if (asprintf(&msg, "%s: %s", path, *err) >= 0) {
        free(*err);
        *err = msg;
      }
    }
  }
  return st2;
}

nncc_status nncc_model_open_ex(const char *path, uint32_t flags, nncc_model **model, char **err) {
  return open_model(path, flags, 3, model, err);
}

nncc_status nncc_model_open(const char *path, nncc_model **model, char **err) {
  return open_model(path, 0, 3, model, err);
}

nncc_status nncc_model_describe(const char *path, nncc_model **model, char **err) {
  return open_model(path, NNCC_OPEN_DESCRIBE, 3, model, err);
}

const char *nncc_model_unusable(const nncc_model *model) { return model ? model->unusable : NULL; }

/* Frees the handle once it is closed and its last session is gone. */
void rt_model_unref(nncc_model *m) {
  if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (m->dl) dlclose(m->dl);
  if (m->meta) {
    ab_meta_free(m->meta);
    free(m->meta);
  }
  free(m->unusable);
  free(m);
}

void nncc_model_close(nncc_model *model) {
  if (!model) return;
  rt_model_unref(model);
}

int32_t nncc_model_num_inputs(const nncc_model *m) { return m ? m->d->ninputs : 0; }
int32_t nncc_model_num_outputs(const nncc_model *m) { return m ? m->d->noutputs : 0; }

static nncc_status rt_io(const nncc_model_io *io, int32_t n, int32_t i, nncc_io_info *info) {
  if (!info || i < 0 || i >= n) return NNCC_ERR_INVALID_ARG;
  *info = (nncc_io_info){io[i].name, (nncc_dtype)io[i].dtype, io[i].rank, io[i].dims};
  return NNCC_OK;
}

nncc_status nncc_model_input(const nncc_model *m, int32_t i, nncc_io_info *info) {
  if (!m) return NNCC_ERR_INVALID_ARG;
  return rt_io(m->d->inputs, m->d->ninputs, i, info);
}

nncc_status nncc_model_output(const nncc_model *m, int32_t i, nncc_io_info *info) {
  if (!m) return NNCC_ERR_INVALID_ARG;
  return rt_io(m->d->outputs, m->d->noutputs, i, info);
}

const char *nncc_model_compiler(const nncc_model *m) { return m ? m->d->compiler : ""; }
const char *nncc_model_name(const nncc_model *m) { return m ? m->d->model_name : ""; }
const char *nncc_model_target(const nncc_model *m) { return m ? m->d->target : ""; }
const char *nncc_model_cpu(const nncc_model *m) { return m ? m->d->cpu : ""; }
const char *nncc_model_features(const nncc_model *m) { return m ? m->d->features : ""; }
/* Models whose metadata predates version 4 have neither field: their
 * descriptor copy reads zero there (rt_model_from_desc_ex). */
const char *nncc_model_precision(const nncc_model *m) {
  return m && m->d->precision ? m->d->precision : "";
}
int32_t nncc_model_num_kernels(const nncc_model *m) { return m ? m->d->nkernels : 0; }
int32_t nncc_model_num_checks(const nncc_model *m) { return m ? m->d->nrtchecks : 0; }
uint64_t nncc_model_workspace_bytes(const nncc_model *m) { return m ? m->d->workspace_bytes : 0; }
uint64_t nncc_model_weights_bytes(const nncc_model *m) { return m ? m->d->weights_bytes : 0; }

int32_t nncc_model_num_symbols(const nncc_model *m) { return m ? m->d->nsyms : 0; }

nncc_status nncc_model_symbol(const nncc_model *m, int32_t s, nncc_symbol_info *info) {
  if (!m || !info || s < 0 || s >= m->d->nsyms) return NNCC_ERR_INVALID_ARG;
  *info = (nncc_symbol_info){m->d->syms[s].name, m->d->syms[s].lo, m->d->syms[s].hi};
  return NNCC_OK;
}

nncc_status nncc_model_dim(const nncc_model *m, int outputs, int32_t i, int32_t d,
                           nncc_dim_info *info) {
  if (!m || !info || i < 0 || i >= (outputs ? m->d->noutputs : m->d->ninputs))
    return NNCC_ERR_INVALID_ARG;
  const nncc_model_io *io = outputs ? &m->d->outputs[i] : &m->d->inputs[i];
  if (d < 0 || d >= io->rank) return NNCC_ERR_INVALID_ARG;
  int64_t v = io->dims[d];
  *info = (nncc_dim_info){v, NULL, v, v};
  if (v >= 0) return NNCC_OK;
  info->text = rt_dim_text(m, outputs != 0, i, d);
  info->min = 1;
  info->max = INT64_MAX;
  for (int32_t s = 0; info->text && s < m->d->nsyms; s++)
    if (!strcmp(m->d->syms[s].name, info->text)) {
      info->min = m->d->syms[s].lo;
      info->max = m->d->syms[s].hi;
    }
  if (!info->text) info->text = "?";
  return NNCC_OK;
}

/* ---- symbolic dims of a loaded or a described model ---------------------------- */

int rt_bind(const nncc_model *m, const int64_t *const *input_dims, int64_t *values, char *msg,
            size_t cap) {
  return m->meta ? ab_meta_bind(m->meta, input_dims, values, msg, cap)
                 : m->d->bind(input_dims, values, msg, cap);
}

void rt_io_dims(const nncc_model *m, int outputs, int32_t i, const int64_t *values, int64_t *dims) {
  if (m->meta)
    ab_meta_io_dims(m->meta, outputs, i, values, dims);
  else
    m->d->io_dims(outputs, i, values, dims);
}

const char *rt_dim_text(const nncc_model *m, int outputs, int32_t i, int32_t d) {
  return m->meta ? ab_meta_dim_text(m->meta, outputs, i, d) : m->d->dim_text(outputs, i, d);
}

uint64_t rt_workspace_for(const nncc_model *m, const int64_t *values) {
  return m->meta ? ab_meta_plan(m->meta, values, NULL) : m->d->workspace_for(values);
}
