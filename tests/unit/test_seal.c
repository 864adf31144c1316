/* test_seal.c — the integrity hash of a model.so (abi/seal.c).
 *
 * The seal's hash is part of the file format: a model sealed by one nncc
 * must verify with every later runtime, on every machine. So:
 *   - the portable, SSE2 and AVX2 code paths give the same value for every
 *     length around the stripe (64 B) and block (1 KiB) boundaries;
 *   - a few values are pinned (computed once, when the format was fixed);
 *   - every single-bit flip of a 10 KiB buffer, a swap of two 64-byte
 *     stripes within a block, and a swap of two blocks all change it;
 *   - ab_hash_image gives one value whatever the thread count, and sees a
 *     flip in any chunk.
 */
#include "../../abi/abi.h"
#include "unit.h"

static const char *const impls[] = {"portable", "sse2", "avx2"};

static void test_paths_agree(const unsigned char *buf) {
  static const size_t lens[] = {0,    1,    7,    8,    63,   64,   65,   127,  128,
                                1000, 1023, 1024, 1025, 1088, 2047, 2048, 4097, 10240};
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
    ab_hash_use("portable");
    uint64_t want = ab_hash(buf, lens[i], 7);
    for (int k = 1; k < 3; k++) {
      if (ab_hash_use(impls[k]) != 0) continue; /* not on this CPU */
      CHECK_INT(ab_hash(buf, lens[i], 7), want);
    }
  }
  ab_hash_use(NULL);
}

static void test_pinned(const unsigned char *buf) {
  /* fixed by the seal format (version 1); never change these */
  CHECK_INT(ab_hash("", 0, 0), (long long)0x5b3bb669c39eca5dull);
  CHECK_INT(ab_hash("nncc", 4, 0), (long long)0xe331ba96efb11f07ull);
  CHECK_INT(ab_hash(buf, 10240, 0), (long long)0xde928a170e4ee40cull);
  CHECK_INT(ab_hash_image(buf, 10240, 4), (long long)0xde928a170e4ee40cull);
}

static void test_sensitivity(unsigned char *buf) {
  uint64_t h0 = ab_hash(buf, 10240, 0);
  int same = 0;
  for (size_t bit = 0; bit < 10240 * 8; bit++) {
    buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    same += ab_hash(buf, 10240, 0) == h0;
    buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
  }
  CHECK_INT(same, 0);
  unsigned char tmp[1024];
  /* stripes 2 and 9 of block 3 */
  memcpy(tmp, buf + 3 * 1024 + 2 * 64, 64);
  memcpy(buf + 3 * 1024 + 2 * 64, buf + 3 * 1024 + 9 * 64, 64);
  memcpy(buf + 3 * 1024 + 9 * 64, tmp, 64);
  CHECK(ab_hash(buf, 10240, 0) != h0);
  memcpy(tmp, buf + 3 * 1024 + 2 * 64, 64);
  memcpy(buf + 3 * 1024 + 2 * 64, buf + 3 * 1024 + 9 * 64, 64);
  memcpy(buf + 3 * 1024 + 9 * 64, tmp, 64);
  CHECK_INT(ab_hash(buf, 10240, 0), h0);
  /* blocks 1 and 6 */
  memcpy(tmp, buf + 1024, 1024);
  memcpy(buf + 1024, buf + 6 * 1024, 1024);
  memcpy(buf + 6 * 1024, tmp, 1024);
  CHECK(ab_hash(buf, 10240, 0) != h0);
  memcpy(tmp, buf + 1024, 1024);
  memcpy(buf + 1024, buf + 6 * 1024, 1024);
  memcpy(buf + 6 * 1024, tmp, 1024);
  /* the seed counts */
  CHECK(ab_hash(buf, 10240, 1) != h0);
}

static void test_image(void) {
  size_t n = (size_t)21 << 20; /* 6 chunks, the last one short */
  unsigned char *big = malloc(n);
  for (size_t i = 0; i < n; i++) big[i] = (unsigned char)((i * 2654435761u) >> 13);
  uint64_t h1 = ab_hash_image(big, n, 1);
  CHECK_INT(ab_hash_image(big, n, 3), h1);
  CHECK_INT(ab_hash_image(big, n, 8), h1);
  CHECK_INT(ab_hash_image(big, n, 64), h1);
  for (int c = 0; c < 6; c++) {
    size_t at = (size_t)c * (4 << 20) + 12345;
    big[at] ^= 0x10;
    CHECK(ab_hash_image(big, n, 2) != h1);
    big[at] ^= 0x10;
  }
  CHECK(ab_hash_image(big, n - 1, 2) != h1);
  free(big);
}

int main(void) {
  unsigned char *buf = malloc(10240);
  for (int i = 0; i < 10240; i++) buf[i] = (unsigned char)(i * 131 + (i >> 7));
  test_paths_agree(buf);
  test_pinned(buf);
  test_sensitivity(buf);
  test_image();
  free(buf);
  return unit_report("test_seal");
}
