/* fuzz_modeljson.c — fuzzing the legacy model.json reader
 * (frontend/import_legacy.c) through the whole import.
 *
 * The input is the text of model.json. LLVMFuzzerTestOneInput packs it into
 * a legacy archive (PyTorch 1.0-1.2 layout, top folder "m/") next to fixed
 * entries that model.json files commonly name: a version, tensors/0..3 of
 * 256 bytes each, attributes.pkl holding an empty tuple, and code files
 * code/m.py, code/foo.py and code/foo1.py .. code/foo3.py with a forward
 * method. Then it imports and lowers the archive (import_run.h): JSON
 * syntax, field types, tensor ids, dims, strides and offsets against the
 * entry sizes, submodule nesting and code keys all see hostile values.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DNNCC_FUZZ_STANDALONE it is a plain program (driver.h):
 *
 *   fuzz_modeljson [-n N] model.json...
 *
 * running every file as is, then N (default 1000) mutated variants of each.
 */
#include "import_run.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PART(name, text) \
  { (const uint8_t *)(name), sizeof(name) - 1, (const uint8_t *)(text), sizeof(text) - 1 }

static const char code[] = "op_version_set = 0\n"
                           "def forward(self,\n"
                           "    x: Tensor) -> Tensor:\n"
                           "  _0 = torch.add(torch.mul(CONSTANTS.c0, x), x, alpha=1)\n"
                           "  return _0\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t tensor[256];
  if (size >= 0xffffffffu) return 0;
  zip_part parts[] = {
      PART("m/version", "1\n"),
      {(const uint8_t *)"m/model.json", 12, data, size},
      {(const uint8_t *)"m/tensors/0", 11, tensor, sizeof tensor},
      {(const uint8_t *)"m/tensors/1", 11, tensor, sizeof tensor},
      {(const uint8_t *)"m/tensors/2", 11, tensor, sizeof tensor},
      {(const uint8_t *)"m/tensors/3", 11, tensor, sizeof tensor},
      PART("m/attributes.pkl", "\x80\x02)."),
      PART("m/code/m.py", code),
      PART("m/code/foo.py", code),
      PART("m/code/foo1.py", code),
      PART("m/code/foo2.py", code),
      PART("m/code/foo3.py", code),
  };
  size_t len = 0;
  uint8_t *zip = zip_pack(parts, (int)(sizeof parts / sizeof parts[0]), &len);
  import_run(zip, len);
  free(zip);
  return 0;
}

#ifdef NNCC_FUZZ_STANDALONE
#include "driver.h"

/* JSON punctuation, digits and the letters of true/false/null. */
static const uint8_t json_dict[] = {'{', '}', '[', ']', ':', ',',  '"', '-',  '0', '1',
                                    '9', 'e', '.', 't', 'n', '\\', ' ', 0x00, 0xff};

int main(int argc, char **argv) {
  static const fuzz_target t = {
      .name = "fuzz_modeljson",
      .default_n = 1000,
      .kinds = FUZZ_FLIP_BIT | FUZZ_SET_DICT | FUZZ_SET_RANDOM | FUZZ_TRUNCATE | FUZZ_INSERT_DICT |
               FUZZ_DELETE_RUN | FUZZ_DUP_SLICE | FUZZ_COPY_SLICE,
      .dict = json_dict,
      .ndict = sizeof json_dict,
  };
  return fuzz_main(&t, argc, argv);
}

#endif
