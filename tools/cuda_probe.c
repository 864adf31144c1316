/* cuda_probe.c — finding NVRTC without linking it (cuda_probe.h).
 *
 * The search is the CUDA backend's own (cuda_nvrtc_find in
 * backends/cuda/cuda_nvrtc.c), so what `nncc --version` reports is what
 * --target cuda will load; this file only adds NVRTC's version.
 */
#include "cuda_probe.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/backend.h"

typedef int (*nvrtc_version_fn)(int *major, int *minor);

bool cuda_probe_nvrtc(cuda_probe *p) {
  memset(p, 0, sizeof *p);
  cuda_nvrtc_where *w = malloc(sizeof *w);
  if (!w) {
    snprintf(p->looked, sizeof p->looked, "nowhere: out of memory");
    return false;
  }
  /* NVRTC stays loaded: the backend would load it again next, and its
   * allocations at load time are then still reachable, not leaks */
  void *h = cuda_nvrtc_find(w);
  if (h) {
    nvrtc_version_fn version;
    *(void **)&version = dlsym(h, "nvrtcVersion");
    snprintf(p->path, sizeof p->path, "%s", w->path);
    if (!version || version(&p->major, &p->minor) != 0) p->major = p->minor = 0;
    p->found = true;
  } else {
    snprintf(p->looked, sizeof p->looked, "%s", w->looked);
  }
  free(w);
  return p->found;
}
