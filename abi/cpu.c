/* cpu.c — does the running CPU have the features a model was compiled for?
 *
 * Two callers: the model runtime inside every model.so (its descriptor's
 * check_cpu, run by nncc_model_open before any generated code) and the
 * runtime library, which answers the same question for a model it only
 * describes without loading it (nncc_model_describe). Needs only libc.
 */
#include <stdio.h>
#include <string.h>

#include "abi.h"

/* Whether the running CPU has LLVM feature `name`: 1 yes, 0 no, -1 unknown
 * (features this file can't test are assumed present; LLVM lists many that
 * every CPU of the target has, like "64bit" or "cx8"). */
static int cpu_has(const char *name) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  /* __builtin_cpu_supports needs a literal, hence the table of macros. */
  // clang-format off
#define F(llvm, gcc)                                                            \
  if (!strcmp(name, llvm)) return __builtin_cpu_supports(gcc) ? 1 : 0;
  F("cmov", "cmov") F("mmx", "mmx") F("popcnt", "popcnt") F("sse", "sse")
  F("sse2", "sse2") F("sse3", "sse3") F("ssse3", "ssse3") F("sse4.1", "sse4.1")
  F("sse4.2", "sse4.2") F("avx", "avx") F("avx2", "avx2") F("fma", "fma")
  F("fma4", "fma4") F("xop", "xop") F("sse4a", "sse4a") F("bmi", "bmi")
  F("bmi2", "bmi2") F("aes", "aes") F("pclmul", "pclmul")
  F("avx512f", "avx512f") F("avx512vl", "avx512vl") F("avx512bw", "avx512bw")
  F("avx512dq", "avx512dq") F("avx512cd", "avx512cd")
  F("avx512ifma", "avx512ifma") F("avx512vbmi", "avx512vbmi")
  F("avx512vnni", "avx512vnni") F("avx512vbmi2", "avx512vbmi2")
  F("avx512bitalg", "avx512bitalg") F("avx512vpopcntdq", "avx512vpopcntdq")
  F("gfni", "gfni") F("vpclmulqdq", "vpclmulqdq")
#if !defined(__clang__) && __GNUC__ >= 11 /* names older GCCs and clang 14 reject */
  F("f16c", "f16c") F("avx512bf16", "avx512bf16") F("avx512vp2intersect", "avx512vp2intersect")
  F("avxvnni", "avxvnni") F("amx-tile", "amx-tile") F("amx-int8", "amx-int8")
  F("amx-bf16", "amx-bf16") F("avx512fp16", "avx512fp16") F("movbe", "movbe")
  F("adx", "adx") F("lzcnt", "lzcnt") F("sha", "sha")
#endif
#undef F
#else
  (void)name;
#endif
  return -1;
  // clang-format on
}

int ab_cpu_check(const char *features, const char *cpu, char *msg, size_t cap) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  __builtin_cpu_init();
#endif
  const char *f = features ? features : "";
  size_t used = 0;
  int missing = 0;
  if (cap) msg[0] = 0;
  while (*f) {
    const char *end = strchr(f, ',');
    size_t n = end ? (size_t)(end - f) : strlen(f);
    char name[64];
    if (n > 1 && n < sizeof name && f[0] == '+') {
      memcpy(name, f + 1, n - 1);
      name[n - 1] = 0;
      if (cpu_has(name) == 0) {
        if (cap > used) {
          int w = snprintf(msg + used, cap - used, "%s%s", missing ? ", " : "this CPU lacks ",
                           name);
          if (w > 0) used += (size_t)w;
          if (used >= cap) used = cap - 1;
        }
        missing++;
      }
    }
    f += n;
    if (*f == ',') f++;
  }
  if (missing && cap > used)
    snprintf(msg + used, cap - used, " (the model was compiled for CPU '%s')", cpu ? cpu : "?");
  return missing ? -1 : 0;
}
