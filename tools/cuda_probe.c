/* cuda_probe.c — finding NVRTC without linking it (cuda_probe.h).
 *
 * Each candidate is dlopened with RTLD_LAZY | RTLD_LOCAL (nothing it
 * defines leaks into the process) and must define nvrtcVersion; one that
 * doesn't is closed again. A bare name that the loader found is reported
 * by the file it came from (dladdr on nvrtcVersion).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "cuda_probe.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*nvrtc_version_fn)(int *major, int *minor);

/* Tries one candidate; true (with p filled) when it is NVRTC. */
static bool try_load(cuda_probe *p, const char *name) {
  void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
  if (!h) return false;
  nvrtc_version_fn version;
  *(void **)&version = dlsym(h, "nvrtcVersion");
  if (!version) {
    dlclose(h);
    return false;
  }
  Dl_info info;
  const char *file = dladdr(*(void **)&version, &info) && info.dli_fname ? info.dli_fname : name;
  snprintf(p->path, sizeof p->path, "%s", strchr(name, '/') ? name : file);
  if (version(&p->major, &p->minor) != 0) p->major = p->minor = 0;
  /* NVRTC stays loaded: the backend would load it again next, and its
   * allocations at load time are then still reachable, not leaks */
  p->found = true;
  return true;
}

/* Appends text to p->looked, comma-separated (truncated when long). */
static void looked(cuda_probe *p, const char *text) {
  size_t n = strlen(p->looked);
  if (n + 1 < sizeof p->looked)
    snprintf(p->looked + n, sizeof p->looked - n, "%s%s", n ? ", " : "", text);
}

bool cuda_probe_nvrtc(cuda_probe *p) {
  static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
  const int nnames = (int)(sizeof names / sizeof *names);
  memset(p, 0, sizeof *p);
  const char *home = getenv("CUDA_HOME");
  const char *dirs[2] = {home && *home ? home : NULL, "/usr/local/cuda"};
  char path[1200];
  for (int d = 0; d < 2; d++) {
    if (!dirs[d] || (d == 1 && dirs[0] && !strcmp(dirs[0], dirs[1]))) continue;
    snprintf(path, sizeof path, "%s/lib64", dirs[d]);
    looked(p, path);
    for (int i = 0; i < nnames; i++) {
      snprintf(path, sizeof path, "%s/lib64/%s", dirs[d], names[i]);
      if (try_load(p, path)) return true;
    }
  }
  looked(p, "the loader path");
  for (int i = 0; i < nnames; i++)
    if (try_load(p, names[i])) return true;
  return false;
}
