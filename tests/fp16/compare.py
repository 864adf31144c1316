"""compare.py - error of a 16-bit compiled model against PyTorch's f32 result.

Usage: compare.py ZOODIR NAME PRECISION OUTDIR

Reads every ZOODIR/NAME.out<j>.npy (PyTorch's f32 outputs) and the matching
OUTDIR/output_<j>.npy (nncc's, compiled with --precision PRECISION), prints
one line "NAME PRECISION max_abs=... max_rel=..." (max_rel: the largest
absolute error over the largest |reference|), and exits 1 when an output's
shape differs or max_abs > BOUND * max(1, max |reference|).
"""
import glob
import os
import sys

import numpy as np

# Bounds: max |nncc - torch| <= BOUND * max(1, max |torch|) over all
# outputs. Measured max |err| / max |torch| (convnet, mlp, resnet18, bert;
# f32 GEMM accumulation, softmax/norms/reductions/exp/log/pow in f32):
# fp16 <= 6e-4, bf16 <= 5.2e-3. The bounds leave about 8x room: each 16-bit
# activation is rounded by 2^-11 (fp16) or 2^-8 (bf16) relative, and that
# compounds over the depth. max(1, ...): outputs far below 1 are judged in
# absolute terms (the zoo's mobilenet_v2 outputs are ~3e-9, below f16's
# normal range, so its f16 result is 0 there, as PyTorch's .half() gives).
BOUNDS = {"fp16": 5e-3, "bf16": 4e-2, "fp32": 1e-4}


def main():
  zoo, name, prec, outdir = sys.argv[1:5]
  refs = sorted(glob.glob(os.path.join(zoo, name + ".out*.npy")))
  if not refs:
    print("%s %s: no reference outputs" % (name, prec))
    return 1
  max_abs, scale, ok = 0.0, 0.0, True
  for j in range(len(refs)):
    ref = np.load(os.path.join(zoo, "%s.out%d.npy" % (name, j)))
    got = np.load(os.path.join(outdir, "output_%d.npy" % j))
    if ref.shape != got.shape:
      print("%s %s: output %d has shape %s, expected %s" %
            (name, prec, j, got.shape, ref.shape))
      ok = False
      continue
    if ref.dtype.kind != "f":  # integer outputs must match exactly
      ok &= bool((ref == got).all())
      continue
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    fin = np.isfinite(ref)  # inf and nan must be reproduced exactly
    same = (ref[~fin] == got[~fin]) | (np.isnan(ref[~fin]) & np.isnan(got[~fin]))
    ok &= bool(same.all())
    err = np.abs(got[fin] - ref[fin])
    if err.size:
      max_abs = max(max_abs, float(np.nan_to_num(err, nan=np.inf).max()))
      scale = max(scale, float(np.abs(ref[fin]).max()))
  rel = max_abs / scale if scale > 0 else max_abs
  ok &= max_abs <= BOUNDS[prec] * max(1.0, scale)
  print("%-14s %s max_abs=%.3g max|ref|=%.3g max_rel=%.3g bound=%.0e %s" %
        (name, prec, max_abs, scale, rel, BOUNDS[prec], "ok" if ok else "OVER"))
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
