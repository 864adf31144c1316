/* seal.c — a model.so's integrity record, and the checks nncc_model_open
 * makes before the dynamic loader sees a file (format in abi.h "seal.c").
 *
 * Why before dlopen: the loader trusts the file. A truncated .so makes it
 * map pages past the end of the file, and the first touch of one kills
 * the process with SIGBUS; flipped bytes in code or weights load and run
 * silently. So the runtime library maps the file read-only and checks,
 * with bounds-checked reads only: the ELF header is one for this machine;
 * the program and section headers, every segment and every section lie
 * within the file; and, when the file is sealed, its size and hash match
 * the seal. Only then does it dlopen.
 *
 * The hash. Not a cryptographic one (a seal detects damage: interrupted
 * copies, partial downloads, flipped bits; someone who can rewrite the
 * file can rewrite the seal). It has to be fast, since it reads every byte
 * of a model that may be gigabytes: 64-byte stripes go into eight 64-bit
 * lanes, each lane adding the 32x32-bit product of the stripe word's
 * halves after mixing in a key word, and its neighbour adding the word
 * itself (so no input difference cancels in the product alone). The key
 * words slide by one word per stripe within a 1 KiB block, so reordered
 * stripes hash differently, and a block ends by scrambling every lane
 * (xor-shift, key, multiply), so reordered blocks do too. A final mix
 * folds the lanes with 128-bit products. The lane arithmetic is what SIMD
 * units do natively (x86 pmuludq): an AVX2 path, an SSE2 path and a
 * portable one compute the same value. A file is hashed in 4 MiB chunks,
 * on several threads, and the chunk hashes are hashed again.
 *
 * Needs libc and libpthread only.
 */
#include <elf.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SEAL_X86 1
#endif

#include "abi.h"

/* ---- the hash ------------------------------------------------------------ */

enum { STRIPE = 64, BLOCK_STRIPES = 16, BLOCK = STRIPE * BLOCK_STRIPES, NKEY = 32 };
#define MUL32 0x9E3779B1u
#define MUL64 0x9E3779B185EBCA87ull

static uint64_t rd64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Key words for a seed: words 0..23 feed stripes (stripe s of a block uses
 * s..s+7), 24..31 the end-of-block scramble. splitmix64. */
static void make_keys(uint64_t seed, uint64_t *k) {
  uint64_t x = seed ^ 0x6e6e63632d736c31ull;
  for (int i = 0; i < NKEY; i++) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    k[i] = z ^ (z >> 31);
  }
}

static void stripe(uint64_t *acc, const unsigned char *p, const uint64_t *key) {
  for (int i = 0; i < 8; i++) {
    uint64_t d = rd64(p + 8 * i), k = d ^ key[i];
    acc[i ^ 1] += d;
    acc[i] += (k & 0xffffffffu) * (k >> 32);
  }
}

static void scramble(uint64_t *acc, const uint64_t *key) {
  for (int i = 0; i < 8; i++) {
    uint64_t a = acc[i];
    a ^= a >> 47;
    a ^= key[i];
    acc[i] = a * MUL32;
  }
}

static void blocks_portable(uint64_t *acc, const unsigned char *p, size_t nblocks,
                            const uint64_t *k) {
  for (size_t b = 0; b < nblocks; b++, p += BLOCK) {
    for (int s = 0; s < BLOCK_STRIPES; s++) stripe(acc, p + s * STRIPE, k + s);
    scramble(acc, k + 24);
  }
}

#ifdef SEAL_X86
/* The same blocks two lanes per instruction (SSE2 is in every x86-64). */
static void blocks_sse2(uint64_t *acc, const unsigned char *p, size_t nblocks, const uint64_t *k) {
  __m128i a[4], mul = _mm_set1_epi32((int)MUL32);
  for (int i = 0; i < 4; i++) a[i] = _mm_loadu_si128((const __m128i *)(acc + 2 * i));
  for (size_t b = 0; b < nblocks; b++, p += BLOCK) {
    for (int s = 0; s < BLOCK_STRIPES; s++)
      for (int i = 0; i < 4; i++) {
        __m128i d = _mm_loadu_si128((const __m128i *)(p + s * STRIPE + 16 * i));
        __m128i x = _mm_xor_si128(d, _mm_loadu_si128((const __m128i *)(k + s + 2 * i)));
        a[i] = _mm_add_epi64(a[i], _mm_shuffle_epi32(d, 0x4e));
        a[i] = _mm_add_epi64(a[i], _mm_mul_epu32(x, _mm_srli_epi64(x, 32)));
      }
    for (int i = 0; i < 4; i++) {
      __m128i x = _mm_xor_si128(a[i], _mm_srli_epi64(a[i], 47));
      x = _mm_xor_si128(x, _mm_loadu_si128((const __m128i *)(k + 24 + 2 * i)));
      a[i] = _mm_add_epi64(_mm_mul_epu32(x, mul),
                           _mm_slli_epi64(_mm_mul_epu32(_mm_srli_epi64(x, 32), mul), 32));
    }
  }
  for (int i = 0; i < 4; i++) _mm_storeu_si128((__m128i *)(acc + 2 * i), a[i]);
}

__attribute__((target("avx2"))) static void
blocks_avx2(uint64_t *acc, const unsigned char *p, size_t nblocks, const uint64_t *k) {
  __m256i a[2], mul = _mm256_set1_epi32((int)MUL32);
  for (int i = 0; i < 2; i++) a[i] = _mm256_loadu_si256((const __m256i *)(acc + 4 * i));
  for (size_t b = 0; b < nblocks; b++, p += BLOCK) {
    for (int s = 0; s < BLOCK_STRIPES; s++)
      for (int i = 0; i < 2; i++) {
        __m256i d = _mm256_loadu_si256((const __m256i *)(p + s * STRIPE + 32 * i));
        __m256i x = _mm256_xor_si256(d, _mm256_loadu_si256((const __m256i *)(k + s + 4 * i)));
        a[i] = _mm256_add_epi64(a[i], _mm256_shuffle_epi32(d, 0x4e));
        a[i] = _mm256_add_epi64(a[i], _mm256_mul_epu32(x, _mm256_srli_epi64(x, 32)));
      }
    for (int i = 0; i < 2; i++) {
      __m256i x = _mm256_xor_si256(a[i], _mm256_srli_epi64(a[i], 47));
      x = _mm256_xor_si256(x, _mm256_loadu_si256((const __m256i *)(k + 24 + 4 * i)));
      a[i] = _mm256_add_epi64(_mm256_mul_epu32(x, mul),
                              _mm256_slli_epi64(_mm256_mul_epu32(_mm256_srli_epi64(x, 32), mul),
                                                32));
    }
  }
  for (int i = 0; i < 2; i++) _mm256_storeu_si256((__m256i *)(acc + 4 * i), a[i]);
}
#endif

typedef void (*blocks_fn)(uint64_t *, const unsigned char *, size_t, const uint64_t *);

/* The widest path this CPU runs. NNCC_SEAL_HASH=portable|sse2 forces a
 * narrower one (the tests compare them). */
static blocks_fn pick_blocks(void) {
  const char *force = getenv("NNCC_SEAL_HASH");
  if (force && !strcmp(force, "portable")) return blocks_portable;
#ifdef SEAL_X86
  if (force && !strcmp(force, "sse2")) return blocks_sse2;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return blocks_avx2;
  return blocks_sse2;
#else
  return blocks_portable;
#endif
}

static blocks_fn g_blocks;
static pthread_once_t g_blocks_once = PTHREAD_ONCE_INIT;
static void init_blocks(void) { g_blocks = pick_blocks(); }

int ab_hash_use(const char *impl) {
  pthread_once(&g_blocks_once, init_blocks);
  if (!impl) {
    g_blocks = pick_blocks();
    return 0;
  }
  if (!strcmp(impl, "portable")) {
    g_blocks = blocks_portable;
    return 0;
  }
#ifdef SEAL_X86
  if (!strcmp(impl, "sse2")) {
    g_blocks = blocks_sse2;
    return 0;
  }
  __builtin_cpu_init();
  if (!strcmp(impl, "avx2") && __builtin_cpu_supports("avx2")) {
    g_blocks = blocks_avx2;
    return 0;
  }
#endif
  return -1;
}

static uint64_t fold(uint64_t a, uint64_t b) {
  unsigned __int128 m = (unsigned __int128)a * b;
  return (uint64_t)m ^ (uint64_t)(m >> 64);
}

uint64_t ab_hash(const void *data, size_t n, uint64_t seed) {
  pthread_once(&g_blocks_once, init_blocks);
  const unsigned char *p = data;
  uint64_t k[NKEY], acc[8];
  make_keys(seed, k);
  for (int i = 0; i < 8; i++) acc[i] = k[(i * 3 + 5) % NKEY] ^ (uint64_t)i;
  size_t nblocks = n / BLOCK;
  if (nblocks) g_blocks(acc, p, nblocks, k);
  size_t done = nblocks * BLOCK, rest = n - done;
  for (size_t s = 0; s < rest / STRIPE; s++) stripe(acc, p + done + s * STRIPE, k + s);
  /* The last 64 bytes once more (zero-padded when n < 64), under their own
   * keys, so the tail's bytes and n's low bits always count. */
  unsigned char last[STRIPE] = {0};
  if (n >= STRIPE)
    memcpy(last, p + n - STRIPE, STRIPE);
  else if (n)
    memcpy(last, p, n);
  stripe(acc, last, k + 16);
  uint64_t h = (uint64_t)n * MUL64;
  for (int i = 0; i < 4; i++) h += fold(acc[2 * i] ^ k[2 * i], acc[2 * i + 1] ^ k[2 * i + 1]);
  h ^= h >> 37;
  h *= 0x165667919E3779F9ull;
  h ^= h >> 32;
  return h;
}

/* ---- hashing a file on several threads ------------------------------------- */

enum { CHUNK = 4 << 20, MAX_HASH_THREADS = 8 };

typedef struct hash_job {
  const unsigned char *p;
  size_t n;
  uint64_t *out; /* one hash per chunk */
  size_t first, last;
} hash_job;

static void hash_chunks(const hash_job *j) {
  for (size_t c = j->first; c < j->last; c++) {
    size_t off = c * (size_t)CHUNK, len = j->n - off < CHUNK ? j->n - off : CHUNK;
    j->out[c] = ab_hash(j->p + off, len, c + 1);
  }
}

static void *hash_thread(void *arg) {
  hash_chunks(arg);
  return NULL;
}

uint64_t ab_hash_image(const unsigned char *p, size_t n, int threads) {
  size_t nchunks = n ? (n + CHUNK - 1) / CHUNK : 0;
  if (nchunks <= 1) return ab_hash(p, n, 0);
  uint64_t stack[64], *h = nchunks <= 64 ? stack : malloc(nchunks * sizeof *h);
  if (!h) return ab_hash(p, n, 0) ^ 1; /* never equal to the real one */
  if (threads > MAX_HASH_THREADS) threads = MAX_HASH_THREADS;
  if (threads < 1) threads = 1;
  if ((size_t)threads > nchunks) threads = (int)nchunks;
  hash_job jobs[MAX_HASH_THREADS] = {{0}};
  pthread_t tid[MAX_HASH_THREADS];
  bool started[MAX_HASH_THREADS] = {false};
  for (int t = 0; t < threads; t++)
    jobs[t] = (hash_job){p, n, h, nchunks * (size_t)t / (size_t)threads,
                         nchunks * (size_t)(t + 1) / (size_t)threads};
  for (int t = 1; t < threads; t++)
    started[t] = pthread_create(&tid[t], NULL, hash_thread, &jobs[t]) == 0;
  hash_chunks(&jobs[0]);
  for (int t = 1; t < threads; t++) {
    if (started[t])
      pthread_join(tid[t], NULL);
    else
      hash_chunks(&jobs[t]); /* no thread: do its share here */
  }
  unsigned char buf[8 * 64], *b = nchunks <= 64 ? buf : malloc(nchunks * 8);
  uint64_t r;
  if (!b) {
    r = ab_hash(p, n, 0) ^ 1;
  } else {
    for (size_t c = 0; c < nchunks; c++)
      for (int i = 0; i < 8; i++) b[8 * c + (size_t)i] = (unsigned char)(h[c] >> (8 * i));
    r = ab_hash(b, nchunks * 8, (uint64_t)n);
    if (b != buf) free(b);
  }
  if (h != stack) free(h);
  return r;
}

/* ---- reading the ELF structure ------------------------------------------------ */

/* Bounds-checked little-endian reads: every one goes through here. */
typedef struct img {
  const unsigned char *p;
  uint64_t size;
} img;

static bool in_file(const img *f, uint64_t off, uint64_t len) {
  return off <= f->size && len <= f->size - off;
}
static uint64_t get(const img *f, uint64_t off, int bytes) {
  if (!in_file(f, off, (uint64_t)bytes)) return 0;
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)f->p[off + (uint64_t)i] << (8 * i);
  return v;
}

static uint64_t end_of(uint64_t off, uint64_t len) {
  return off > UINT64_MAX - len ? UINT64_MAX : off + len;
}

typedef struct phdr {
  uint32_t type, flags;
  uint64_t off, vaddr, filesz, memsz, align;
} phdr;

static phdr get_phdr(const img *f, uint64_t at) {
  return (phdr){(uint32_t)get(f, at, 4), (uint32_t)get(f, at + 4, 4), get(f, at + 8, 8),
                get(f, at + 16, 8),      get(f, at + 32, 8),          get(f, at + 40, 8),
                get(f, at + 48, 8)};
}

typedef struct shdr {
  uint32_t name, type;
  uint64_t off, size;
  uint32_t link;
  uint64_t entsize;
} shdr;

static shdr get_shdr(const img *f, uint64_t at) {
  return (shdr){(uint32_t)get(f, at, 4), (uint32_t)get(f, at + 4, 4),  get(f, at + 24, 8),
                get(f, at + 32, 8),      (uint32_t)get(f, at + 40, 4), get(f, at + 56, 8)};
}

static uint16_t host_machine(void) {
#if defined(__x86_64__)
  return EM_X86_64;
#elif defined(__aarch64__)
  return EM_AARCH64;
#else
  return 0;
#endif
}

static const char *machine_name(uint16_t m) {
  switch (m) {
  case EM_X86_64: return "x86-64";
  case EM_AARCH64: return "aarch64";
  case EM_386: return "i386";
  case EM_ARM: return "arm";
  case EM_RISCV: return "riscv";
  case EM_PPC64: return "ppc64";
  case EM_S390: return "s390";
  }
  return NULL;
}

int ab_machine_check(uint16_t machine, char *msg, size_t cap) {
  if (machine == host_machine()) return 0;
  const char *n = machine_name(machine), *h = machine_name(host_machine());
  if (n)
    snprintf(msg, cap, "compiled for %s; this machine is %s", n, h ? h : "another");
  else
    snprintf(msg, cap, "compiled for ELF machine %u; this machine is %s", (unsigned)machine,
             h ? h : "another");
  return -1;
}

/* The size the NNCC note records, or 0 when there is none (or it lies
 * partly outside the file). */
static uint64_t note_size(const img *f, uint64_t phoff, uint16_t phnum) {
  for (uint16_t i = 0; i < phnum; i++) {
    phdr h = get_phdr(f, phoff + (uint64_t)i * sizeof(Elf64_Phdr));
    if (h.type != PT_NOTE || !in_file(f, h.off, h.filesz)) continue;
    uint64_t a = h.align == 8 ? 8 : 4, at = h.off, end = h.off + h.filesz;
    while (end - at >= 12) {
      uint64_t namesz = get(f, at, 4), descsz = get(f, at + 4, 4), type = get(f, at + 8, 4);
      uint64_t name = at + 12, desc = name + (namesz + a - 1) / a * a;
      uint64_t next = desc + (descsz + a - 1) / a * a;
      if (next > end || next <= at) break;
      if (namesz == sizeof NNCC_NOTE_NAME && type == NNCC_NOTE_SEAL && descsz >= 8 &&
          !memcmp(f->p + name, NNCC_NOTE_NAME, sizeof NNCC_NOTE_NAME))
        return get(f, desc, 8);
      at = next;
    }
  }
  return 0;
}

/* The file offset of virtual address v (in a loaded segment's file part)
 * with at least len bytes after it there; UINT64_MAX when none. */
static uint64_t vaddr_to_off(const img *f, uint64_t phoff, uint16_t phnum, uint64_t v,
                             uint64_t len) {
  for (uint16_t i = 0; i < phnum; i++) {
    phdr h = get_phdr(f, phoff + (uint64_t)i * sizeof(Elf64_Phdr));
    if (h.type != PT_LOAD || v < h.vaddr || v - h.vaddr > h.filesz) continue;
    if (len > h.filesz - (v - h.vaddr)) continue;
    return h.off + (v - h.vaddr);
  }
  return UINT64_MAX;
}

/* Finds the metadata blob through the nncc_meta / nncc_meta_end symbols of
 * .symtab (models made before the seal; a stripped one has none). */
static void meta_from_symtab(const img *f, uint64_t phoff, uint16_t phnum, uint64_t shoff,
                             uint16_t shnum, ab_image *out) {
  for (uint16_t i = 0; i < shnum; i++) {
    shdr s = get_shdr(f, shoff + (uint64_t)i * sizeof(Elf64_Shdr));
    if (s.type != SHT_SYMTAB || s.entsize != sizeof(Elf64_Sym) || s.link >= shnum) continue;
    shdr str = get_shdr(f, shoff + (uint64_t)s.link * sizeof(Elf64_Shdr));
    if (!in_file(f, s.off, s.size) || !in_file(f, str.off, str.size)) continue;
    uint64_t begin = 0, end = 0;
    bool have_begin = false, have_end = false;
    for (uint64_t e = 0; e < s.size / sizeof(Elf64_Sym); e++) {
      uint64_t at = s.off + e * sizeof(Elf64_Sym);
      uint64_t name = get(f, at, 4);
      static const char b[] = "nncc_meta", en[] = "nncc_meta_end";
      if (name >= str.size) continue;
      const char *nm = (const char *)f->p + str.off + name;
      uint64_t room = str.size - name;
      if (room > sizeof en - 1 && !memcmp(nm, en, sizeof en)) {
        end = get(f, at + 8, 8);
        have_end = true;
      } else if (room > sizeof b - 1 && !memcmp(nm, b, sizeof b)) {
        begin = get(f, at + 8, 8);
        have_begin = true;
      }
    }
    if (!have_begin || !have_end || end <= begin) return;
    uint64_t off = vaddr_to_off(f, phoff, phnum, begin, end - begin);
    if (off == UINT64_MAX) return;
    out->meta_off = off;
    out->meta_len = end - begin;
    return;
  }
}

/* The seal at the end of the file, if it is one (magic, version, size and
 * its own hash right). */
static bool read_seal(const img *f, uint64_t *body, uint64_t *hash, uint64_t *moff,
                      uint64_t *mlen) {
  if (f->size < NNCC_SEAL_BYTES) return false;
  uint64_t at = f->size - NNCC_SEAL_BYTES;
  const unsigned char *t = f->p + at;
  if (memcmp(t, NNCC_SEAL_MAGIC, 8) || get(f, at + 8, 4) != NNCC_SEAL_VERSION ||
      get(f, at + 12, 4) != NNCC_SEAL_BYTES || get(f, at + 56, 8) != ab_hash(t, 56, 0x5345414c))
    return false;
  *body = get(f, at + 16, 8);
  *hash = get(f, at + 24, 8);
  *moff = get(f, at + 32, 8);
  *mlen = get(f, at + 40, 8);
  return true;
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > MAX_HASH_THREADS ? MAX_HASH_THREADS : (int)n;
}

#define FAIL(v, ...) (snprintf(msg, cap, __VA_ARGS__), (v))

ab_verdict ab_image_check(const unsigned char *p, size_t size, unsigned flags, ab_image *out,
                          char *msg, size_t cap) {
  img f = {p, size};
  memset(out, 0, sizeof *out);
  if (cap) msg[0] = 0;
  unsigned long long found = (unsigned long long)size;
  if (size < 4 || memcmp(p, ELFMAG, SELFMAG))
    return size == 0 ? FAIL(AB_NOT_ELF, "the file is empty")
                     : FAIL(AB_NOT_ELF, "not a shared object (no ELF header)");
  if (size < sizeof(Elf64_Ehdr))
    return FAIL(AB_TRUNCATED, "truncated (expected at least %zu bytes, found %llu)",
                sizeof(Elf64_Ehdr), found);
  if (p[EI_CLASS] != ELFCLASS64 || p[EI_DATA] != ELFDATA2LSB)
    return FAIL(AB_NOT_ELF, "not a 64-bit little-endian ELF file (nncc models are)");
  uint16_t type = (uint16_t)get(&f, 16, 2), machine = (uint16_t)get(&f, 18, 2);
  uint64_t phoff = get(&f, 32, 8), shoff = get(&f, 40, 8);
  uint16_t phentsize = (uint16_t)get(&f, 54, 2), phnum = (uint16_t)get(&f, 56, 2);
  uint16_t shentsize = (uint16_t)get(&f, 58, 2), shnum = (uint16_t)get(&f, 60, 2);
  uint16_t shstrndx = (uint16_t)get(&f, 62, 2);
  out->machine = machine;

  /* 1. The seal, when there is one, decides everything else: a size or
   * hash mismatch is all that matters about a damaged file. */
  uint64_t body = 0, hash = 0, moff = 0, mlen = 0;
  bool sealed = read_seal(&f, &body, &hash, &moff, &mlen);
  if (sealed) {
    if (body != size - NNCC_SEAL_BYTES)
      return FAIL(AB_CORRUPTED, "corrupted (its integrity record says %llu bytes, found %llu)",
                  (unsigned long long)(body + NNCC_SEAL_BYTES), found);
    if (!(flags & AB_SKIP_HASH) && ab_hash_image(p, (size_t)body, online_cpus()) != hash)
      return FAIL(AB_CORRUPTED,
                  "corrupted (its contents don't match the checksum nncc recorded when it "
                  "wrote the file)");
    f.size = body; /* the ELF part */
  }
  const char *why = sealed ? "corrupted" : "truncated";
  ab_verdict bad = sealed ? AB_CORRUPTED : AB_TRUNCATED;

  /* 2. Headers. */
  if (type != ET_DYN)
    return FAIL(sealed ? AB_CORRUPTED : AB_NOT_ELF,
                "an ELF file, but not a shared object (type %u)", (unsigned)type);
  if (!(flags & AB_ANY_MACHINE) && ab_machine_check(machine, msg, cap) != 0) return AB_FOREIGN;
  if (phentsize != sizeof(Elf64_Phdr) || phnum == 0 || phnum == PN_XNUM ||
      (shnum && shentsize != sizeof(Elf64_Shdr)) || (!shnum && shoff) ||
      (shnum && shstrndx >= shnum))
    return FAIL(AB_CORRUPTED, "corrupted (its ELF header is inconsistent)");
  uint64_t ph_end = end_of(phoff, (uint64_t)phnum * sizeof(Elf64_Phdr));
  if (ph_end > f.size)
    return FAIL(bad, "%s (expected at least %llu bytes, found %llu)", why,
                (unsigned long long)ph_end, found);

  /* 3. How long the file should be: the seal's note. */
  uint64_t want = note_size(&f, phoff, phnum);
  if (!sealed && want) {
    if (want > size)
      return FAIL(AB_TRUNCATED, "truncated (expected %llu bytes, found %llu)",
                  (unsigned long long)want, found);
    if (want < size)
      return FAIL(AB_CORRUPTED, "corrupted (expected %llu bytes, found %llu)",
                  (unsigned long long)want, found);
    return FAIL(AB_CORRUPTED, "corrupted (the integrity record at its end is damaged)");
  }
  if (sealed && want != size)
    return FAIL(AB_CORRUPTED, "corrupted (its size note says %llu bytes, found %llu)",
                (unsigned long long)want, found);

  /* 4. Every segment and section within the file. */
  uint64_t need = ph_end;
  bool have_load = false, have_dynamic = false;
  for (uint16_t i = 0; i < phnum; i++) {
    phdr h = get_phdr(&f, phoff + (uint64_t)i * sizeof(Elf64_Phdr));
    if (h.type == PT_LOAD) {
      have_load = true;
      if (h.filesz > h.memsz ||
          (h.align > 1 && ((h.align & (h.align - 1)) || (h.vaddr - h.off) % h.align)))
        return FAIL(AB_CORRUPTED, "corrupted (loadable segment %u is inconsistent)", (unsigned)i);
    }
    if (h.type == PT_DYNAMIC) have_dynamic = true;
    if (h.type != PT_NULL && h.filesz) {
      uint64_t e = end_of(h.off, h.filesz);
      if (e > need) need = e;
    }
  }
  if (!have_load || !have_dynamic)
    return FAIL(AB_CORRUPTED, "corrupted (it has no %s)",
                have_load ? "dynamic section" : "loadable segment");
  if (shnum) {
    uint64_t sh_end = end_of(shoff, (uint64_t)shnum * sizeof(Elf64_Shdr));
    if (sh_end > need) need = sh_end;
    if (sh_end <= f.size)
      for (uint16_t i = 0; i < shnum; i++) {
        shdr s = get_shdr(&f, shoff + (uint64_t)i * sizeof(Elf64_Shdr));
        if (s.type == SHT_NOBITS || s.type == SHT_NULL) continue;
        uint64_t e = end_of(s.off, s.size);
        if (e > need) need = e;
      }
  }
  if (need > f.size)
    return need == UINT64_MAX || sealed
               ? FAIL(AB_CORRUPTED, "corrupted (a segment or section lies outside the file)")
               : FAIL(AB_TRUNCATED, "truncated (expected at least %llu bytes, found %llu)",
                      (unsigned long long)need, found);

  /* 5. The metadata blob. */
  out->sealed = sealed;
  out->body = f.size;
  if (sealed) {
    if (mlen && in_file(&f, moff, mlen)) {
      out->meta_off = moff;
      out->meta_len = mlen;
    }
  } else {
    meta_from_symtab(&f, phoff, phnum, shoff, shnum, out);
  }
  return AB_OK;
}

/* ---- writing the seal ------------------------------------------------------- */

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The file offset of the NNCC note's description. */
static uint64_t note_desc_off(const img *f, uint64_t phoff, uint16_t phnum) {
  for (uint16_t i = 0; i < phnum; i++) {
    phdr h = get_phdr(f, phoff + (uint64_t)i * sizeof(Elf64_Phdr));
    if (h.type != PT_NOTE || !in_file(f, h.off, h.filesz)) continue;
    uint64_t a = h.align == 8 ? 8 : 4, at = h.off, end = h.off + h.filesz;
    while (end - at >= 12) {
      uint64_t namesz = get(f, at, 4), descsz = get(f, at + 4, 4), type = get(f, at + 8, 4);
      uint64_t name = at + 12, desc = name + (namesz + a - 1) / a * a;
      uint64_t next = desc + (descsz + a - 1) / a * a;
      if (next > end || next <= at) break;
      if (namesz == sizeof NNCC_NOTE_NAME && type == NNCC_NOTE_SEAL && descsz >= 8 &&
          !memcmp(f->p + name, NNCC_NOTE_NAME, sizeof NNCC_NOTE_NAME))
        return desc;
      at = next;
    }
  }
  return 0;
}

int ab_seal_fd(int fd, char *msg, size_t cap) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr))
    return FAIL(-1, "can't seal the model: the linked file is unreadable or too small");
  size_t size = (size_t)st.st_size;
  unsigned char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return FAIL(-1, "can't seal the model: mmap failed");
  img f = {p, size};
  uint64_t phoff = get(&f, 32, 8);
  uint16_t phnum = (uint16_t)get(&f, 56, 2);
  ab_image im;
  char why[200];
  why[0] = 0;
  if (ab_image_check(p, size, AB_SKIP_HASH | AB_ANY_MACHINE, &im, why, sizeof why) != AB_OK ||
      !im.meta_len || im.sealed) {
    munmap(p, size);
    return FAIL(-1, "can't seal the model: %s",
                why[0]      ? why
                : im.sealed ? "it is sealed already"
                            : "no metadata blob found");
  }
  uint64_t desc = note_desc_off(&f, phoff, phnum);
  unsigned char v[8];
  put64(v, (uint64_t)size + NNCC_SEAL_BYTES);
  /* The note first: the hash covers it (the shared mapping sees the write). */
  if (!desc || pwrite(fd, v, 8, (off_t)desc) != 8) {
    munmap(p, size);
    return FAIL(-1, "can't seal the model: %s",
                desc ? "write failed" : "the linked file has no NNCC note");
  }
  unsigned char t[NNCC_SEAL_BYTES] = {0};
  memcpy(t, NNCC_SEAL_MAGIC, 8);
  for (int i = 0; i < 4; i++) {
    t[8 + i] = (unsigned char)(NNCC_SEAL_VERSION >> (8 * i));
    t[12 + i] = (unsigned char)(NNCC_SEAL_BYTES >> (8 * i));
  }
  put64(t + 16, size);
  put64(t + 24, ab_hash_image(p, size, online_cpus()));
  put64(t + 32, im.meta_off);
  put64(t + 40, im.meta_len);
  put64(t + 56, ab_hash(t, 56, 0x5345414c));
  munmap(p, size);
  if (pwrite(fd, t, sizeof t, (off_t)size) != (ssize_t)sizeof t || fsync(fd) != 0)
    return FAIL(-1, "can't seal the model: write failed");
  return 0;
}
