/* run_model.c — a small application of the nncc runtime API (nncc.h).
 *
 *   run_model MODEL.so [INPUT.npy...] [SYMBOL=VALUE...]
 *
 * Opens a compiled model, prints what it was compiled with and its inputs
 * and outputs, fills each input from the matching .npy file (in order) or
 * with deterministic values, runs it once, and prints the top-5 entries of
 * the first output. A model compiled with symbolic dims (no --input) takes
 * its generated inputs' shapes from SYMBOL=VALUE arguments (B=2 H=28 W=28)
 * and asks the runtime for the outputs' shapes. Everything an application
 * needs is here: open, describe, create a session, run, and the cleanup,
 * with every error checked.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncc.h"

/* Prints "name: f32[1,3,224,224]" (symbolic dims by name: "f32[B,3,H,W]"). */
static void print_io(const nncc_model *m, int outputs, int i, const nncc_io_info *info) {
  printf("  %s %d: %s: %s[", outputs ? "output" : "input", i, info->name,
         nncc_dtype_name(info->dtype));
  for (int32_t k = 0; k < info->rank; k++) {
    nncc_dim_info d;
    if (info->dims[k] < 0 && nncc_model_dim(m, outputs, i, k, &d) == NNCC_OK)
      printf("%s%s", k ? "," : "", d.text);
    else
      printf("%s%lld", k ? "," : "", (long long)info->dims[k]);
  }
  printf("]\n");
}

/* The dims of a generated input: symbolic ones from the SYMBOL=VALUE
 * arguments. False (with a message) when one is missing. */
static bool input_dims(const nncc_model *m, int32_t i, const nncc_io_info *info, int argc,
                       char **argv, int64_t *dims) {
  for (int32_t k = 0; k < info->rank; k++) {
    dims[k] = info->dims[k];
    if (dims[k] >= 0) continue;
    nncc_dim_info d;
    nncc_model_dim(m, 0, i, k, &d);
    size_t n = strlen(d.text);
    for (int a = 2; a < argc && dims[k] < 0; a++)
      if (!strncmp(argv[a], d.text, n) && argv[a][n] == '=')
        dims[k] = strtoll(argv[a] + n + 1, NULL, 10);
    if (dims[k] < 0) {
      fprintf(stderr, "run_model: input %d dim %d is symbolic (%s); give %s=VALUE\n", (int)i,
              (int)k, d.text, d.text);
      return false;
    }
  }
  return true;
}

/* Element i of t as a double (for ranking any dtype). */
static double value_at(const nncc_tensor *t, int64_t i) {
  switch (t->dtype) {
  case NNCC_DTYPE_F32: return ((const float *)t->data)[i];
  case NNCC_DTYPE_F64: return ((const double *)t->data)[i];
  case NNCC_DTYPE_I64: return (double)((const int64_t *)t->data)[i];
  case NNCC_DTYPE_I32: return ((const int32_t *)t->data)[i];
  case NNCC_DTYPE_I16: return ((const int16_t *)t->data)[i];
  case NNCC_DTYPE_I8: return ((const int8_t *)t->data)[i];
  case NNCC_DTYPE_U8:
  case NNCC_DTYPE_BOOL: return ((const uint8_t *)t->data)[i];
  default: return 0; /* f16/bf16: not decoded by this example */
  }
}

/* Deterministic inputs: a smooth pattern in [-1, 1] (floats) or small ints. */
static void fill(nncc_tensor *t) {
  int64_t n = nncc_tensor_elems(t);
  for (int64_t i = 0; i < n; i++) {
    double v = (double)((i * 37) % 101) / 50.0 - 1.0;
    switch (t->dtype) {
    case NNCC_DTYPE_F32: ((float *)t->data)[i] = (float)v; break;
    case NNCC_DTYPE_F64: ((double *)t->data)[i] = v; break;
    case NNCC_DTYPE_I64: ((int64_t *)t->data)[i] = i % 7; break;
    case NNCC_DTYPE_I32: ((int32_t *)t->data)[i] = (int32_t)(i % 7); break;
    default:
      memset((char *)t->data + i * (int64_t)nncc_dtype_size(t->dtype), 0,
             nncc_dtype_size(t->dtype));
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.so [INPUT.npy...] [SYMBOL=VALUE...]\n", argv[0]);
    return 2;
  }
  char *err = NULL;
  nncc_model *model = NULL;
  nncc_session *session = NULL;
  nncc_tensor **ins = NULL, **outs = NULL, *in_v = NULL, *out_v = NULL;
  int rc = 1;
  nncc_status st = nncc_model_open(argv[1], &model, &err);
  if (st != NNCC_OK) goto fail;
  int32_t nin = nncc_model_num_inputs(model), nout = nncc_model_num_outputs(model);
  printf("model %s (%s; target %s, cpu %s)\n", nncc_model_name(model), nncc_model_compiler(model),
         nncc_model_target(model), nncc_model_cpu(model));
  ins = calloc((size_t)nin + 1, sizeof *ins);
  outs = calloc((size_t)nout + 1, sizeof *outs);
  in_v = calloc((size_t)nin + 1, sizeof *in_v);
  out_v = calloc((size_t)nout + 1, sizeof *out_v);
  if (!ins || !outs || !in_v || !out_v) goto fail;
  int nfiles = 0; /* the .npy arguments come first */
  while (nfiles + 2 < argc && !strchr(argv[nfiles + 2], '=')) nfiles++;
  for (int32_t i = 0; i < nin; i++) {
    nncc_io_info info;
    int64_t dims[NNCC_MAX_RANK];
    nncc_model_input(model, i, &info);
    print_io(model, 0, i, &info);
    if (i < nfiles) {
      if ((st = nncc_npy_read(argv[i + 2], &ins[i], &err)) != NNCC_OK) goto fail;
    } else {
      if (!input_dims(model, i, &info, argc, argv, dims)) {
        rc = 2;
        goto done;
      }
      if (!(ins[i] = nncc_tensor_alloc(info.dtype, info.rank, dims))) goto fail;
      fill(ins[i]);
    }
    in_v[i] = *ins[i];
  }
  for (int32_t i = 0; i < nout; i++) {
    nncc_io_info info;
    int64_t dims[NNCC_MAX_RANK];
    nncc_model_output(model, i, &info);
    print_io(model, 1, i, &info);
    /* the output's shape for these inputs (checks them, too) */
    if ((st = nncc_model_output_dims(model, in_v, (size_t)nin, i, dims, &err)) != NNCC_OK)
      goto fail;
    if (!(outs[i] = nncc_tensor_alloc(info.dtype, info.rank, dims))) goto fail;
    out_v[i] = *outs[i];
  }
  if ((st = nncc_session_create(model, 0, &session, &err)) != NNCC_OK) goto fail;
  if ((st = nncc_session_run(session, in_v, (size_t)nin, out_v, (size_t)nout, &err)) != NNCC_OK)
    goto fail;

  if (nout > 0) {
    nncc_io_info info;
    nncc_model_output(model, 0, &info);
    int64_t n = nncc_tensor_elems(outs[0]);
    int64_t top[5];
    int ntop = 0;
    for (int64_t i = 0; i < n; i++) { /* insertion into a sorted top-5 */
      double v = value_at(outs[0], i);
      int k = ntop < 5 ? ntop++ : 5;
      while (k > 0 && value_at(outs[0], top[k - 1]) < v) {
        if (k < 5) top[k] = top[k - 1];
        k--;
      }
      if (k < 5) top[k] = i;
    }
    printf("top-%d of %s:\n", ntop, info.name);
    for (int k = 0; k < ntop; k++)
      printf("  [%lld] %.6g\n", (long long)top[k], value_at(outs[0], top[k]));
  }
  rc = 0;
fail:
  if (rc == 1) {
    fprintf(stderr, "run_model: %s\n",
            err             ? err
            : st != NNCC_OK ? nncc_status_string(st)
                            : "out of memory");
  }
done:
  nncc_free_message(err);
  nncc_session_destroy(session);
  for (int32_t i = 0; ins && i < nncc_model_num_inputs(model); i++) nncc_tensor_free(ins[i]);
  for (int32_t i = 0; outs && i < nncc_model_num_outputs(model); i++) nncc_tensor_free(outs[i]);
  free(ins);
  free(outs);
  free(in_v);
  free(out_v);
  nncc_model_close(model);
  return rc;
}
