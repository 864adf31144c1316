/* fuzz_pickle.c — fuzz target for the pickle VM (frontend/pickle.c).
 *
 * LLVMFuzzerTestOneInput runs fe_unpickle on the input with a storage loader
 * that hands out zeroed bytes of the right size (so tensor paths, storage
 * sharing and bounds checks are exercised), prints any result (the printer
 * must cope with whatever the VM builds), and then unpickles what follows the
 * first STOP, as the legacy torch.save reader does.
 *
 * Built with -DNNCC_FUZZ_STANDALONE it gets its own main(): every file named
 * on the command line is run as is and then through a fixed number of
 * deterministic mutations (xorshift-driven byte flips, truncations,
 * insertions of opcode bytes, chunk copies), so CI can run it without
 * libFuzzer:
 *   fuzz_pickle [-n MUTATIONS_PER_FILE] FILE...
 */
#include "frontend/frontend.h"

#include <stdlib.h>
#include <string.h>

/* Storages bigger than this are refused by the loader, as a real loader
 * refuses entries that are not in the archive. */
#define FUZZ_MAX_STORAGE (1u << 20)

typedef struct fuzz_loader {
  nn_arena *arena;  /* where fake storage bytes live */
  size_t total;     /* bytes handed out for this input */
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

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t xorshift(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Bytes worth inserting: opcodes and small lengths. */
static const uint8_t interesting[] = {
    '(', '.', '0', '1', '2', 'F', 'I', 'J', 'K', 'L', 'M', 'N', 'P', 'Q', 'R',
    'S', 'T', 'U', 'V', 'X', 'a', 'b', 'c', 'd', '}', 'e', 'g', 'h', 'j', 'l',
    ']', 'p', 'q', 'r', 's', 't', ')', 'u', 'G', 'B', 'C', 0x80, 0x81, 0x85,
    0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91,
    0x92, 0x93, 0x94, 0x95, 0x00, 0x01, 0x7f, 0xff, '\n',
};

/* Writes a mutation of in[0..n) into out (room for n + 4 bytes); returns
 * its length. */
static size_t mutate(const uint8_t *in, size_t n, uint8_t *out) {
  memcpy(out, in, n);
  int rounds = 1 + (int)(xorshift() % 4);
  for (int r = 0; r < rounds; r++) {
    size_t at = n ? (size_t)(xorshift() % n) : 0;
    switch (xorshift() % 6) {
    case 0: /* flip a bit */
      if (n) out[at] ^= (uint8_t)(1u << (xorshift() % 8));
      break;
    case 1: /* truncate */
      n = at;
      break;
    case 2: /* insert an interesting byte (at most 4 rounds: room enough) */
      memmove(out + at + 1, out + at, n - at);
      out[at] = interesting[xorshift() % sizeof interesting];
      n++;
      break;
    case 3: /* overwrite with an interesting byte */
      if (n) out[at] = interesting[xorshift() % sizeof interesting];
      break;
    case 4: /* overwrite with a random byte */
      if (n) out[at] = (uint8_t)xorshift();
      break;
    default: { /* delete a short run */
      size_t k = 1 + (size_t)(xorshift() % 8);
      if (at + k > n) k = n - at;
      memmove(out + at, out + at + k, n - at - k);
      n -= k;
    }
    }
  }
  return n;
}

int main(int argc, char **argv) {
  long per_file = 2000;
  int files = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-n") && i + 1 < argc) {
      per_file = strtol(argv[++i], NULL, 10);
      continue;
    }
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "fuzz_pickle: cannot open %s\n", argv[i]);
      return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    uint8_t *mut = malloc(2 * (size_t)n + 64);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    for (long k = 0; k < per_file; k++) {
      size_t m = mutate(buf, got, mut);
      /* an exactly-sized copy so sanitizers see reads past the end */
      uint8_t *exact = malloc(m ? m : 1);
      memcpy(exact, mut, m);
      LLVMFuzzerTestOneInput(exact, m);
      free(exact);
    }
    free(buf);
    free(mut);
    files++;
  }
  printf("fuzz_pickle: %d files, %ld mutations each, no crash\n", files, per_file);
  return 0;
}

#endif
