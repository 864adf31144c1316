/* unit.h — a tiny test harness for the unit tests.
 *
 * CHECK(cond) and friends record a failure with file and line and go on;
 * UNIT_MAIN's return value is the process exit code (0 pass, 1 fail).
 * unit_skip() exits 77, which CTest reports as skipped.
 */
#ifndef NNCC_UNIT_H
#define NNCC_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failures;
static int unit_checks;

#define CHECK(c)                                                            \
  do {                                                                      \
    unit_checks++;                                                          \
    if (!(c)) {                                                             \
      unit_failures++;                                                      \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
    }                                                                       \
  } while (0)

#define CHECK_INT(a, b)                                                                           \
  do {                                                                                            \
    long long a_ = (long long)(a), b_ = (long long)(b);                                           \
    unit_checks++;                                                                                \
    if (a_ != b_) {                                                                               \
      unit_failures++;                                                                            \
      fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, a_, #b, \
              b_);                                                                                \
    }                                                                                             \
  } while (0)

#define CHECK_STR(a, b)                                                                           \
  do {                                                                                            \
    const char *a_ = (a), *b_ = (b);                                                              \
    unit_checks++;                                                                                \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                      \
      unit_failures++;                                                                            \
      fprintf(stderr, "%s:%d: %s is\n---\n%s\n---\nexpected\n---\n%s\n---\n", __FILE__, __LINE__, \
              #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                        \
    }                                                                                             \
  } while (0)

static inline int unit_report(const char *name) {
  printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
  return unit_failures ? 1 : 0;
}

static inline void unit_skip(const char *why) {
  printf("skipped: %s\n", why);
  exit(77);
}

/* Reads a whole file into malloc'd memory (NUL-terminated); NULL, with
 * *len = 0, if it can't be read. */
static inline char *unit_read_file(const char *path, size_t *len) {
  if (len) *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  char *buf = n >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)n + 1) : NULL;
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    fclose(f);
    return NULL;
  }
  buf[n] = 0;
  fclose(f);
  if (len) *len = (size_t)n;
  return buf;
}

/* Path of a real archive in the shared fixtures, or NULL when absent. */
static inline const char *unit_real_fixture(const char *name) {
  static char buf[4096];
  const char *dir = getenv("NNCC_FIXTURES_REAL");
  if (!dir) return NULL;
  snprintf(buf, sizeof buf, "%s/%s", dir, name);
  FILE *f = fopen(buf, "rb");
  if (!f) return NULL;
  fclose(f);
  return buf;
}

#endif
