/* fuzz_pickle.c — fuzz target for the pickle VM (frontend/pickle.c).
 *
 * LLVMFuzzerTestOneInput runs fe_unpickle on the input with a storage loader
 * that hands out zeroed bytes of the right size (so tensor paths, storage
 * sharing and bounds checks are exercised), prints any result (the printer
 * must cope with whatever the VM builds), and then unpickles what follows the
 * first STOP, as the legacy torch.save reader does.
 *
 * Built with -DNNCC_FUZZ_STANDALONE it gets the main() of driver.h: every
 * file named on the command line is run as is and then as N (default 2000)
 * deterministic variants (bit flips, truncations, insertions and overwrites
 * of opcode bytes, random bytes, deleted runs), so CI can run it without
 * libFuzzer:
 *   fuzz_pickle [-n N] FILE...
 */
#include "frontend/frontend.h"

#include <stdlib.h>
#include <string.h>

/* Storages bigger than this are refused by the loader, as a real loader
 * refuses entries that are not in the archive. */
#define FUZZ_MAX_STORAGE (1u << 20)

typedef struct fuzz_loader {
  nn_arena *arena; /* where fake storage bytes live */
  size_t total;    /* bytes handed out for this input */
} fuzz_loader;

static int fuzz_load(void *ctx, fe_storage *s, nn_diag *d) {
  fuzz_loader *l = ctx;
  size_t es = nn_dtype_size(s->dtype);
  if (s->numel < 0 || (uint64_t)s->numel > FUZZ_MAX_STORAGE / es ||
      l->total + (size_t)s->numel * es > 16 * FUZZ_MAX_STORAGE) {
    nn_error(d, (nn_loc){"fuzz", 0, 0}, "storage %s too large", s->key);
    return -1;
  }
  s->nbytes = (size_t)s->numel * es;
  s->data = nn_alloc(l->arena, s->nbytes ? s->nbytes : 1);
  l->total += s->nbytes;
  return 0;
}

static FILE *devnull(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  return f;
}

static void run_one(const uint8_t *data, size_t size, nn_arena *arena) {
  fuzz_loader l = {arena, 0};
  fe_pickle_opts o = {.label = "fuzz", .load_storage = fuzz_load, .ctx = &l};
  nn_diag d;
  nn_diag_init(&d, devnull());
  size_t used = 0;
  fe_pval *v = fe_unpickle(data, size, &o, arena, &d, &used);
  if (!v) {
    if (d.errors == 0) __builtin_trap(); /* a failure must say why */
    return;
  }
  if (d.errors != 0 || used == 0 || used > size) __builtin_trap();
  nn_buf b = {0};
  fe_pval_print(&b, v, 0);
  nn_buf_free(&b);
  fe_pdict_get(v, "weight");
  if (used < size) {
    v = fe_unpickle(data + used, size - used, &o, arena, &d, NULL);
    if (v) {
      fe_pval_print(&b, v, 2);
      nn_buf_free(&b);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nn_arena *arena = nn_arena_new();
  run_one(data, size, arena);
  nn_arena_free(arena);
  return 0;
}

#ifdef NNCC_FUZZ_STANDALONE
#include "driver.h"

/* Bytes worth inserting: opcodes and small lengths. */
static const uint8_t pickle_dict[] = {
    '(',  '.',  '0',  '1',  '2',  'F',  'I',  'J',  'K',  'L',  'M',  'N',  'P',
    'Q',  'R',  'S',  'T',  'U',  'V',  'X',  'a',  'b',  'c',  'd',  '}',  'e',
    'g',  'h',  'j',  'l',  ']',  'p',  'q',  'r',  's',  't',  ')',  'u',  'G',
    'B',  'C',  0x80, 0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d,
    0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x00, 0x01, 0x7f, 0xff, '\n',
};

int main(int argc, char **argv) {
  static const fuzz_target t = {
      .name = "fuzz_pickle",
      .default_n = 2000,
      .kinds = FUZZ_FLIP_BIT | FUZZ_TRUNCATE | FUZZ_INSERT_DICT | FUZZ_SET_DICT | FUZZ_SET_RANDOM |
               FUZZ_DELETE_RUN,
      .dict = pickle_dict,
      .ndict = sizeof pickle_dict,
  };
  return fuzz_main(&t, argc, argv);
}

#endif
