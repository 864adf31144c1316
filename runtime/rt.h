/* rt.h — internals shared by the files of libnncc_runtime (loader.c,
 * session.c, npy.c). Applications use include/nncc.h only.
 */
#ifndef NNCC_RT_H
#define NNCC_RT_H

#include <stdbool.h>

#include "../abi/abi.h"
#include "include/nncc.h"

/* An open model: the dlopen handle and the model's descriptor; or, for a
 * model only described (nncc_model_describe), the metadata parsed from the
 * file and a descriptor without functions. */
struct nncc_model {
  void *dl;                 /* dlopen handle; NULL for rt_model_from_desc
                               and for a described model */
  ab_meta *meta;            /* a described model's parsed metadata (the
                               descriptor's strings point into it); NULL
                               for a loaded one */
  int refs;                 /* 1 for the open handle + 1 per live session
                               (atomic): closing a model with live sessions
                               frees it when the last one is destroyed */
  const nncc_model_desc *d; /* &full: the model's descriptor as this
                               runtime knows it */
  nncc_model_desc full;     /* a copy of the model's descriptor; fields a
                               model built before they existed are zero */
  char *unusable;           /* nncc_model_describe: why this machine can't
                               run it (malloc'd), NULL when it can */
};

/* Stores a malloc'd printf-style message in *err (when err is not NULL) and
 * returns st, so callers can write `return rt_fail(err, NNCC_ERR_X, ...)`. */
nncc_status rt_fail(char **err, nncc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes a model handle from a descriptor: checks the ABI version, that the
 * description is well formed, and the CPU's features. `dl` (may be NULL) is
 * the handle nncc_model_close will dlclose. Used by nncc_model_open and by
 * tests that build descriptors by hand. On failure dl is NOT closed. */
nncc_status rt_model_from_desc(const nncc_model_desc *d, void *dl, nncc_model **model, char **err);
/* The same; with describe_only, a failed CPU/device check does not fail:
 * the reason is kept in model->unusable and sessions are refused. */
nncc_status rt_model_from_desc_ex(const nncc_model_desc *d, void *dl, bool describe_only,
                                  nncc_model **model, char **err);

/* Drops one reference (nncc_model_close, nncc_session_destroy); the last
 * frees the model. */
void rt_model_unref(nncc_model *m);

/* The descriptor's symbolic-dim functions, for a loaded model or from the
 * parsed metadata of a described one. */
int rt_bind(const nncc_model *m, const int64_t *const *input_dims, int64_t *values, char *msg,
            size_t cap);
void rt_io_dims(const nncc_model *m, int outputs, int32_t i, const int64_t *values, int64_t *dims);
const char *rt_dim_text(const nncc_model *m, int outputs, int32_t i, int32_t d);
uint64_t rt_workspace_for(const nncc_model *m, const int64_t *values);

#endif
