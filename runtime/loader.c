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
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  d = &full;
  if (d->struct_size < offsetof(nncc_model_desc, nsyms) || !d->compiler || !d->features ||
      !d->cpu || !d->target || !d->model_name || !d->check_cpu || !d->session_new ||
      !d->session_free || !d->run || d->ninputs < 0 || d->noutputs < 0 ||
      (d->ninputs && !d->inputs) || (d->noutputs && !d->outputs) || d->nsyms < 0 ||
      (d->nsyms > 0 && (!d->syms || !d->bind || !d->io_dims || !d->dim_text || !d->workspace_for ||
                        !d->run_dims || !d->set_workspace)) ||
      d->nsteps < 0 || (d->nsteps > 0 && (!d->steps || !d->set_profile)) || d->nkernels < 0)
    return rt_fail(err, NNCC_ERR_LOAD, "the model's description is malformed");
  for (int32_t i = 0; i < d->ninputs + d->noutputs; i++) {
    bool in = i < d->ninputs;
    const nncc_model_io *io = in ? &d->inputs[i] : &d->outputs[i - d->ninputs];
    const char *why = rt_bad_io(io, d->nsyms > 0);
    if (why)
      return rt_fail(err, NNCC_ERR_LOAD, "the model's %s %d %s", in ? "input" : "output",
                     in ? i : i - d->ninputs, why);
  }
  char msg[512];
  bool usable = d->check_cpu(msg, sizeof msg) == 0;
  if (!usable && !describe_only) return rt_fail(err, NNCC_ERR_UNSUPPORTED_CPU, "%s", msg);
  nncc_model *m = calloc(1, sizeof *m);
  if (!m || (!usable && !(m->unusable = strdup(msg)))) {
    free(m);
    return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "out of memory");
  }
  m->dl = dl;
  m->full = full;
  m->d = &m->full;
  *model = m;
  return NNCC_OK;
}

static nncc_status open_model(const char *path, bool describe_only, nncc_model **model,
                              char **err) {
  if (err) *err = NULL;
  if (!model) return rt_fail(err, NNCC_ERR_INVALID_ARG, "model is NULL");
  *model = NULL;
  if (!path) return rt_fail(err, NNCC_ERR_INVALID_ARG, "path is NULL");
  /* dlopen searches the library path for a name without a slash. */
  char *p = strchr(path, '/') ? strdup(path) : NULL;
  if (!p && asprintf(&p, "./%s", path) < 0) p = NULL;
  if (!p) return rt_fail(err, NNCC_ERR_OUT_OF_MEMORY, "out of memory");
  void *dl = dlopen(p, RTLD_NOW | RTLD_LOCAL);
  free(p);
  if (!dl) {
    const char *why = dlerror();
    return rt_fail(err, NNCC_ERR_LOAD, "can't load '%s': %s", path, why ? why : "unknown reason");
  }
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
  nncc_status st = rt_model_from_desc_ex(entry(), dl, describe_only, model, err);
  if (st != NNCC_OK) {
    dlclose(dl);
    if (err && *err) {
      char *msg = NULL;
      if (asprintf(&msg, "%s: %s", path, *err) >= 0) {
        free(*err);
        *err = msg;
      }
    }
  }
  return st;
}

nncc_status nncc_model_open(const char *path, nncc_model **model, char **err) {
  return open_model(path, false, model, err);
}

nncc_status nncc_model_describe(const char *path, nncc_model **model, char **err) {
  return open_model(path, true, model, err);
}

const char *nncc_model_unusable(const nncc_model *model) { return model ? model->unusable : NULL; }

void nncc_model_close(nncc_model *model) {
  if (!model) return;
  if (model->dl) dlclose(model->dl);
  free(model->unusable);
  free(model);
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
  info->text = m->d->dim_text(outputs != 0, i, d);
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
