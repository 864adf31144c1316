/* cuda_nvrtc.c — compiling the emitted CUDA C with NVRTC (backend.h).
 *
 * NVRTC is loaded with dlopen when --target cuda is used, never linked, so
 * nncc builds and runs on machines without CUDA. Where we look, in order,
 * for libnvrtc.so.13, libnvrtc.so.12 and libnvrtc.so: $CUDA_HOME/lib64 and
 * $CUDA_HOME/lib when CUDA_HOME is set, else /usr/local/cuda/lib64; then
 * every directory of LD_LIBRARY_PATH; then, only when CUDA_HOME is unset,
 * the loader's default search (ld.so.cache). A set CUDA_HOME thus chooses
 * the toolkit: nncc never silently uses another one. A library without
 * nvrtcVersion is not NVRTC and is skipped. When nothing loads, the message
 * lists every place tried. `nncc --version` reports the same search
 * (tools/cuda_probe.c calls cuda_nvrtc_find).
 *
 * Before compiling, the requested archs are checked against the list this
 * NVRTC supports (nvrtcGetSupportedArchs): CUDA 13 dropped sm_70 (Volta),
 * and asking for it gives an error naming the CUDA version found and the
 * lowest arch it supports.
 *
 * Each requested arch gets a cubin (-arch=sm_XX); the newest also gets PTX
 * (-arch=compute_XX), which a newer GPU's driver can compile. On a compile
 * error NVRTC's log is reported and the source is saved for the user.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "../backend.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const nn_loc no_loc = {0};

int cuda_parse_archs(const char *s, int *archs, int max, char *err, size_t cap) {
  int n = 0;
  const char *p = s ? s : "";
  if (!*p) {
    snprintf(err, cap, "--cuda-arch: empty list (expected e.g. sm_80,sm_90)");
    return -1;
  }
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[32];
    if (len == 0 || len >= sizeof item) {
      snprintf(err, cap, "--cuda-arch: bad item in '%s'", s);
      return -1;
    }
    memcpy(item, p, len);
    item[len] = 0;
    const char *num = !strncmp(item, "sm_", 3) ? item + 3 : item;
    char *stop;
    long v = strtol(num, &stop, 10);
    if (*num == 0 || *stop || v < 50 || v > 200) {
      snprintf(err, cap, "--cuda-arch: '%s' is not an arch like sm_80", item);
      return -1;
    }
    bool dup = false;
    for (int i = 0; i < n; i++) dup |= archs[i] == v;
    if (!dup) {
      if (n >= max) {
        snprintf(err, cap, "--cuda-arch: at most %d archs", max);
        return -1;
      }
      int i = n++;
      while (i > 0 && archs[i - 1] > v) {
        archs[i] = archs[i - 1];
        i--;
      }
      archs[i] = (int)v;
    }
    p += len;
    if (*p == ',') p++;
  }
  return n;
}

/* Appends text to the comma-separated list in buf (cap bytes; the end is
 * cut when it is full). */
static void list_add(char *buf, size_t cap, const char *text) {
  size_t n = strlen(buf);
  for (const char *t = n ? ", " : ""; *t && n + 1 < cap; t++) buf[n++] = *t;
  for (const char *t = text; *t && n + 1 < cap; t++) buf[n++] = *t;
  buf[n] = 0;
}

/* Tries dir/name for every NVRTC name (the loader's search when dir is
 * NULL); a library that loads but lacks nvrtcVersion is no NVRTC and is
 * closed again. Records what it tried in w. */
static void *try_dir(const char *dir, cuda_nvrtc_where *w) {
  static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
  list_add(w->looked, sizeof w->looked, dir ? dir : "the loader path");
  for (int i = 0; i < 3; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", dir ? dir : "", dir ? "/" : "", names[i]);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    void *version = h ? dlsym(h, "nvrtcVersion") : NULL;
    if (version) {
      Dl_info info;
      const char *file = dladdr(version, &info) && info.dli_fname ? info.dli_fname : path;
      w->path[0] = 0;
      list_add(w->path, sizeof w->path, dir ? path : file);
      return h;
    }
    if (h) dlclose(h);
    list_add(w->tried, sizeof w->tried, path);
  }
  return NULL;
}

void *cuda_nvrtc_find(cuda_nvrtc_where *w) {
  const char *home = getenv("CUDA_HOME"), *lp = getenv("LD_LIBRARY_PATH");
  bool has_home = home && *home;
  memset(w, 0, sizeof *w);
  void *h = NULL;
  char dir[4096];
  /* 1. the toolkit: $CUDA_HOME when set (it then decides), else the usual one */
  snprintf(dir, sizeof dir, "%s/lib64", has_home ? home : "/usr/local/cuda");
  h = try_dir(dir, w);
  if (!h && has_home) {
    snprintf(dir, sizeof dir, "%s/lib", home);
    h = try_dir(dir, w);
  }
  /* 2. every directory of LD_LIBRARY_PATH */
  for (const char *p = lp ? lp : ""; *p && !h;) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > 0 && n < sizeof dir) {
      memcpy(dir, p, n);
      dir[n] = 0;
      h = try_dir(dir, w);
    }
    p += n;
    if (*p == ':') p++;
  }
  /* 3. without CUDA_HOME: the loader's own search (ld.so.cache) */
  if (!h && !has_home) h = try_dir(NULL, w);
  return h;
}

void *cuda_nvrtc_open(char *why, size_t cap) {
  const char *home = getenv("CUDA_HOME"), *lp = getenv("LD_LIBRARY_PATH");
  bool has_home = home && *home;
  cuda_nvrtc_where *w = malloc(sizeof *w);
  if (!w) {
    snprintf(why, cap, "out of memory");
    return NULL;
  }
  void *h = cuda_nvrtc_find(w);
  if (!h)
    snprintf(why, cap,
             "--target cuda needs NVRTC (libnvrtc.so.13, .so.12 or .so from a CUDA toolkit), "
             "which was not found. Looked in %s (CUDA_HOME=%s), then LD_LIBRARY_PATH (%s)%s. "
             "Tried: %s. Install the CUDA toolkit or set CUDA_HOME to it",
             has_home ? "$CUDA_HOME/lib64 and $CUDA_HOME/lib" : "/usr/local/cuda/lib64",
             has_home ? home : "unset", lp && *lp ? lp : "empty",
             has_home ? "" : ", then the loader's default path", w->tried);
  free(w);
  return h;
}

/* The NVRTC entry points we use (the C API's signatures, with opaque
 * handles as void *). */
typedef struct nvrtc_api {
  int (*create)(void **prog, const char *src, const char *name, int nh, const char *const *h,
                const char *const *hn);
  int (*compile)(void *prog, int nopt, const char *const *opts);
  int (*log_size)(void *prog, size_t *n);
  int (*log)(void *prog, char *out);
  int (*cubin_size)(void *prog, size_t *n);
  int (*cubin)(void *prog, char *out);
  int (*ptx_size)(void *prog, size_t *n);
  int (*ptx)(void *prog, char *out);
  int (*destroy)(void **prog);
  const char *(*error_string)(int r);
} nvrtc_api;

static int save_source(const char *src, const char *path) {
  FILE *f = path ? fopen(path, "w") : NULL;
  if (!f) return -1;
  size_t n = strlen(src);
  int ok = fwrite(src, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

/* One NVRTC compile for option arch_opt; fills *bin (cubin or PTX). */
static int compile_one(const nvrtc_api *api, const char *src, const char *arch_opt, bool ptx,
                       const char *inc, const char *save_src, void **bin, size_t *size,
                       nn_diag *d) {
  void *prog = NULL;
  int r = api->create(&prog, src, "model.cu", 0, NULL, NULL);
  if (r != 0) {
    nn_error(d, no_loc, "NVRTC can't create a program: %s", api->error_string(r));
    return -1;
  }
  const char *opts[] = {arch_opt, "-default-device", "-std=c++17", inc};
  r = api->compile(prog, inc ? 4 : 3, opts);
  if (r != 0) {
    size_t n = 0;
    char *log = NULL;
    if (api->log_size(prog, &n) == 0 && n > 0 && (log = malloc(n + 1)) && api->log(prog, log) == 0)
      log[n] = 0;
    bool saved = save_src && save_source(src, save_src) == 0;
    nn_error(d, no_loc, "NVRTC failed for %s: %s\n%s%s%s", arch_opt, api->error_string(r),
             log ? log : "(no log)", saved ? "the generated source was saved as " : "",
             saved ? save_src : "");
    free(log);
    api->destroy(&prog);
    return -1;
  }
  size_t n = 0;
  r = ptx ? api->ptx_size(prog, &n) : api->cubin_size(prog, &n);
  char *out = r == 0 && n ? malloc(n) : NULL;
  if (out) r = ptx ? api->ptx(prog, out) : api->cubin(prog, out);
  api->destroy(&prog);
  if (!out || r != 0) {
    free(out);
    nn_error(d, no_loc, "NVRTC produced no %s for %s", ptx ? "PTX" : "cubin", arch_opt);
    return -1;
  }
  *bin = out;
  *size = n;
  return 0;
}

/* "-I<toolkit>/include" for the toolkit NVRTC (handle h) comes from
 * (<toolkit>/lib64/libnvrtc.so.N), when that folder has the wmma header
 * (mma.h), which NVRTC does not carry built in; else NULL. */
static const char *toolkit_include(void *h, char *buf, size_t cap) {
  Dl_info info;
  void *sym = dlsym(h, "nvrtcCreateProgram");
  if (!sym || !dladdr(sym, &info) || !info.dli_fname) return NULL;
  char dir[1024];
  size_t n = strlen(info.dli_fname);
  if (n >= sizeof dir) return NULL;
  memcpy(dir, info.dli_fname, n + 1);
  for (int up = 0; up < 2; up++) { /* strip the file name, then lib64 */
    char *slash = strrchr(dir, '/');
    if (!slash) return NULL;
    *slash = 0;
  }
  char probe[1100];
  snprintf(probe, sizeof probe, "%s/include/mma.h", dir);
  if (access(probe, R_OK) != 0) return NULL;
  snprintf(buf, cap, "-I%s/include", dir);
  return buf;
}

/* Checks that NVRTC (handle h) supports every arch; reports the first that
 * it doesn't with the CUDA version and the lowest arch it has. An NVRTC
 * without nvrtcGetSupportedArchs (before CUDA 11.2) is not checked here. */
static int check_archs(void *h, const int *archs, int narchs, nn_diag *d) {
  int (*num)(int *);
  int (*list)(int *);
  int (*version)(int *, int *);
  *(void **)&num = dlsym(h, "nvrtcGetNumSupportedArchs");
  *(void **)&list = dlsym(h, "nvrtcGetSupportedArchs");
  *(void **)&version = dlsym(h, "nvrtcVersion");
  int n = 0, major = 0, minor = 0;
  if (!num || !list || num(&n) != 0 || n <= 0 || n > 256) return 0;
  int have[256];
  if (list(have) != 0) return 0;
  if (!version || version(&major, &minor) != 0) major = minor = 0;
  int lowest = have[0], highest = have[0];
  for (int i = 1; i < n; i++) {
    if (have[i] < lowest) lowest = have[i];
    if (have[i] > highest) highest = have[i];
  }
  for (int i = 0; i < narchs; i++) {
    bool ok = false;
    for (int j = 0; j < n && !ok; j++) ok = have[j] == archs[i];
    if (ok) continue;
    nn_error(d, no_loc,
             "--cuda-arch sm_%d: the NVRTC found (CUDA %d.%d) can't compile for it; its "
             "lowest arch is sm_%d (it supports sm_%d to sm_%d)%s",
             archs[i], major, minor, lowest, lowest, highest,
             archs[i] < lowest ? ". Older GPUs need an older CUDA toolkit (set CUDA_HOME)" : "");
    return -1;
  }
  return 0;
}

int cuda_nvrtc_compile(const char *src, const int *archs, int narchs, const char *save_src,
                       cuda_images *out, nn_diag *d) {
  memset(out, 0, sizeof *out);
  char why[2048];
  void *h = cuda_nvrtc_open(why, sizeof why);
  if (!h) {
    nn_error(d, no_loc, "%s", why);
    return -1;
  }
  nvrtc_api api;
  struct {
    void **slot;
    const char *name;
  } syms[] = {{(void **)&api.create, "nvrtcCreateProgram"},
              {(void **)&api.compile, "nvrtcCompileProgram"},
              {(void **)&api.log_size, "nvrtcGetProgramLogSize"},
              {(void **)&api.log, "nvrtcGetProgramLog"},
              {(void **)&api.cubin_size, "nvrtcGetCUBINSize"},
              {(void **)&api.cubin, "nvrtcGetCUBIN"},
              {(void **)&api.ptx_size, "nvrtcGetPTXSize"},
              {(void **)&api.ptx, "nvrtcGetPTX"},
              {(void **)&api.destroy, "nvrtcDestroyProgram"},
              {(void **)&api.error_string, "nvrtcGetErrorString"}};
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(h, syms[i].name);
    if (!*syms[i].slot) {
      nn_error(d, no_loc, "the NVRTC library found lacks %s (too old?)", syms[i].name);
      dlclose(h);
      return -1;
    }
  }
  if (check_archs(h, archs, narchs, d)) return -1;
  char incbuf[1100];
  const char *inc = strstr(src, "#include <mma.h>") ? toolkit_include(h, incbuf, sizeof incbuf)
                                                    : NULL;
  int rc = 0;
  out->narchs = narchs;
  for (int i = 0; i < narchs && !rc; i++) {
    char opt[32];
    out->archs[i] = archs[i];
    snprintf(opt, sizeof opt, "-arch=sm_%d", archs[i]);
    rc = compile_one(&api, src, opt, false, inc, save_src, &out->cubin[i], &out->cubin_size[i], d);
  }
  if (!rc && narchs > 0) {
    char opt[32];
    void *ptx = NULL;
    snprintf(opt, sizeof opt, "-arch=compute_%d", archs[narchs - 1]);
    rc = compile_one(&api, src, opt, true, inc, save_src, &ptx, &out->ptx_size, d);
    out->ptx = ptx;
  }
  /* NVRTC stays loaded: it keeps internal caches that would show up as
   * leaks once its code is unmapped, and a compile may come again. */
  if (rc) cuda_images_free(out);
  return rc;
}

void cuda_images_free(cuda_images *im) {
  for (int i = 0; i < im->narchs; i++) free(im->cubin[i]);
  free(im->ptx);
  memset(im, 0, sizeof *im);
}
