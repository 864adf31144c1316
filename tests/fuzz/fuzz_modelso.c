/* fuzz_modelso.c — fuzzing the reader behind nncc_model_describe: the ELF
 * and seal checks (abi/seal.c) and the metadata parser (abi/meta.c), on
 * bytes that need not be a model at all.
 *
 * Each input is checked twice by ab_image_check, with the checksum and
 * without it (so that damaged structure reaches the ELF reader instead of
 * stopping at the hash), for any machine. When it passes and a metadata
 * blob was found, the blob is parsed and every dim of every input and
 * output printed through ab_meta_dim_text, and the symbols bound from
 * input dims of 2 (ab_meta_bind, then the workspace plan) — what describing
 * and running a model read. Nothing is ever mapped executable or loaded.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DNNCC_FUZZ_STANDALONE it is a plain program (driver.h):
 *
 *   fuzz_modelso [-n N] model.so...
 *
 * running every file as is, then N (default 300) mutated variants of each.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../abi/abi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ab_image im;
  char msg[512];
  (void)ab_image_check(data, size, AB_ANY_MACHINE, &im, msg, sizeof msg);
  if (ab_image_check(data, size, AB_SKIP_HASH | AB_ANY_MACHINE, &im, msg, sizeof msg) != AB_OK ||
      !im.meta_len || im.meta_off > size || im.meta_len > size - im.meta_off)
    return 0;
  ab_meta m;
  if (ab_meta_parse(data + im.meta_off, (size_t)im.meta_len, &m) != 0) return 0;
  const nncc_model_desc *d = &m.desc;
  size_t chars = strlen(d->compiler) + strlen(d->features);
  int64_t *in_dims = calloc((size_t)d->ninputs * NNCC_META_MAX_RANK + 1, sizeof *in_dims);
  const int64_t **ptrs = calloc((size_t)d->ninputs + 1, sizeof *ptrs);
  for (int outputs = 0; outputs < 2; outputs++) {
    int32_t n = outputs ? d->noutputs : d->ninputs;
    const nncc_model_io *ios = outputs ? d->outputs : d->inputs;
    for (int32_t i = 0; i < n; i++)
      for (int32_t k = 0; k < ios[i].rank; k++) {
        if (ios[i].dims[k] < 0) {
          const char *t = ab_meta_dim_text(&m, outputs, i, k);
          if (t) chars += strlen(t);
        }
        if (!outputs && in_dims)
          in_dims[i * NNCC_META_MAX_RANK + k] = ios[i].dims[k] < 0 ? 2 : ios[i].dims[k];
      }
  }
  if (in_dims && ptrs && d->nsyms > 0) {
    for (int32_t i = 0; i < d->ninputs; i++) ptrs[i] = in_dims + i * NNCC_META_MAX_RANK;
    int64_t *values = calloc((size_t)d->nsyms, sizeof *values);
    if (values && ab_meta_bind(&m, ptrs, values, msg, sizeof msg) == 0) {
      int64_t dims[NNCC_META_MAX_RANK];
      for (int32_t o = 0; o < d->noutputs; o++) ab_meta_io_dims(&m, 1, o, values, dims);
      (void)ab_meta_plan(&m, values, NULL);
    }
    free(values);
  }
  free(in_dims);
  free(ptrs);
  ab_meta_free(&m);
  return chars == (size_t)-1; /* keeps the reads */
}

#ifdef NNCC_FUZZ_STANDALONE
#include "driver.h"

/* Bytes worth writing: ELF header values, marks of the seal. */
static const uint8_t so_dict[] = {0x00, 0x01, 0x02, 0x03, 0x3e, 0x7f, 0x80, 0xb7, 0xff,
                                  'E',  'L',  'F',  'N',  'C',  'S',  'A',  '@'};

int main(int argc, char **argv) {
  static const fuzz_target t = {
      .name = "fuzz_modelso",
      .default_n = 300,
      .kinds = FUZZ_FLIP_BIT | FUZZ_TRUNCATE | FUZZ_SET_DICT | FUZZ_SET_RANDOM | FUZZ_SET_ONES4 |
               FUZZ_COPY_SLICE | FUZZ_DELETE_RUN,
      .dict = so_dict,
      .ndict = sizeof so_dict,
  };
  return fuzz_main(&t, argc, argv);
}

#endif
