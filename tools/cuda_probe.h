/* cuda_probe.h — is NVRTC on this machine? (tools/cuda_probe.c)
 *
 * nncc never links CUDA: NVRTC is loaded with dlopen when it is needed.
 * cuda_probe_nvrtc looks for it with the CUDA backend's own search
 * (cuda_nvrtc_find), for `nncc --version` and for anything else that wants
 * to say, before compiling, whether --target cuda can work here.
 */
#ifndef NNCC_CUDA_PROBE_H
#define NNCC_CUDA_PROBE_H

#include <stdbool.h>

typedef struct cuda_probe {
  bool found;        /* a library loaded and has nvrtcVersion */
  char path[1024];   /* found: the file that loaded (resolved through the
                        loader for a bare name when it can be) */
  int major, minor;  /* found: nvrtcVersion(), or 0.0 if it failed */
  char looked[2048]; /* not found: every place tried, comma-separated */
} cuda_probe;

/* Looks for libnvrtc.so.13, libnvrtc.so.12 and libnvrtc.so, in that order,
 * in $CUDA_HOME/lib64 and $CUDA_HOME/lib when CUDA_HOME is set, else
 * /usr/local/cuda/lib64; then in every directory of LD_LIBRARY_PATH; then,
 * only without CUDA_HOME, through the dynamic loader's own search. The
 * first that loads and defines nvrtcVersion wins and stays loaded. Fills
 * *p and returns p->found. */
bool cuda_probe_nvrtc(cuda_probe *p);

#endif
