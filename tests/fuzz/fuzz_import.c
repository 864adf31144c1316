/* fuzz_import.c — fuzzing the whole import: archive → pickles → code → IR.
 *
 * LLVMFuzzerTestOneInput runs what `nncc MODEL.pt --emit=ir` runs before the
 * passes: fe_import on the input as a model file, then fe_lower on the
 * result. fe_import takes a path, so the bytes go into an anonymous memory
 * file (memfd) named through /proc/self/fd. The only outcomes allowed are a
 * graph or reported errors; a crash, a sanitizer report or a hang is a bug.
 *
 * Mutating a real archive mostly breaks a CRC, so the target reads two
 * kinds of input:
 *
 *   - bytes starting with "NNZ1\n": a plain-text list of entries,
 *
 *       NNZ1\n
 *       @@ model/data.pkl\n<bytes>\n@@ model/code/__torch__.py\n<bytes>...
 *
 *     (an entry's bytes run up to the next "\n@@ " or the end), which the
 *     target packs into a valid stored zip with correct CRCs first; this
 *     way mutations reach the pickles, the code files and the lowering.
 *   - anything else: the model file itself.
 *
 * (import_run.h has the packing and the run.) Built with -fsanitize=fuzzer
 * it is a libFuzzer target. Built with -DNNCC_FUZZ_STANDALONE it is a
 * plain program (driver.h):
 *
 *   fuzz_import [-n N] FILE...
 *
 * running every FILE as is, then N (default 200) mutated variants of each.
 */
#include "import_run.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Container inputs above this many entries are cut. */
#define MAX_ENTRIES 4096

/* Finds the next "\n@@ " at or after `from`; returns size when none. */
static size_t next_marker(const uint8_t *s, size_t size, size_t from) {
  for (size_t i = from; i + 4 <= size; i++)
    if (s[i] == '\n' && memcmp(s + i, "\n@@ ", 4) == 0) return i;
  return size;
}

/* Splits the container form s[0..size) (starting "NNZ1\n") into parts and
 * packs them into a stored zip (malloc'd; its length in *out_len). */
static uint8_t *unpack_container(const uint8_t *s, size_t size, size_t *out_len) {
  static zip_part parts[MAX_ENTRIES];
  int n = 0;
  /* the header's "\n" starts the first marker */
  size_t i = next_marker(s, size, 4);
  while (i < size && n < MAX_ENTRIES) {
    size_t name_at = i + 4, nl = name_at;
    while (nl < size && s[nl] != '\n') nl++;
    size_t data_at = nl < size ? nl + 1 : size;
    size_t end = next_marker(s, size, data_at);
    if (nl - name_at <= 0xffff && (uint64_t)(end - data_at) < 0xffffffffu)
      parts[n++] = (zip_part){s + name_at, nl - name_at, s + data_at, end - data_at};
    i = end;
  }
  return zip_pack(parts, n, out_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size >= 5 && memcmp(data, "NNZ1\n", 5) == 0) {
    size_t len = 0;
    uint8_t *zip = unpack_container(data, size, &len);
    import_run(zip, len);
    free(zip);
  } else {
    import_run(data, size);
  }
  return 0;
}

#ifdef NNCC_FUZZ_STANDALONE
#include "driver.h"

/* Pickle opcodes, code punctuation and zip signature bytes. */
static const uint8_t import_dict[] = {
    0x00, 0x01, 0x7f, 0x80, 0xff, 'P', 'K', '(', ')', '.', ':', ',', '[',
    ']',  '\n', ' ',  'q',  'X',  'K', 'J', 'c', 'b', 'R', 't', '}', 0x8a,
};

int main(int argc, char **argv) {
  static const fuzz_target t = {
      .name = "fuzz_import",
      .default_n = 200,
      .kinds = FUZZ_FLIP_BIT | FUZZ_SET_DICT | FUZZ_SET_RANDOM | FUZZ_SET_ONES4 | FUZZ_TRUNCATE |
               FUZZ_INSERT_DICT | FUZZ_DELETE_RUN | FUZZ_DUP_SLICE,
      .dict = import_dict,
      .ndict = sizeof import_dict,
  };
  return fuzz_main(&t, argc, argv);
}

#endif
