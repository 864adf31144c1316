#!/usr/bin/env python3
"""run_legacy.py - zoo models rewritten in the legacy format, compiled by
nncc and compared with PyTorch.

Usage: run_legacy.py --nncc PATH --zoo DIR [--reference REAL.pt]
                     [--only NAME,...] [--keep]

For each model: write_legacy.py turns DIR/<name>.pt (saved by PyTorch
1.13) into a legacy archive (model.json), check_structure.py compares it
with the real 2019 file REAL.pt when given, then

  nncc <name>.pt -o <name>.so --input FLAG...   (flags from <name>.json)
  nncc run <name>.so <in0.npy> ... --out-dir <name>.out/

and every output must satisfy max|a - b| <= 1e-4 * max(1, max|ref|) (exact
for integers). Inputs and references are the zoo's <name>.in<i>.npy and
<name>.out<j>.npy; when those are absent they are made here: random inputs
(floats normal, integers 0 or 1) and the outputs of the 1.13 model in
PyTorch. Some models are written with options that exercise other paths
of the importer (VARIANTS). The last line is "legacy: N passed, M failed".
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_structure  # noqa: E402
import write_legacy  # noqa: E402

MODELS = ("mlp", "convnet", "resnet18", "bert", "losses", "tensor_ops")

# Writer options per model: BatchNorm buffers as attributes.pkl tensors
# (build_tensor_from_id), deflated model.json and code (as 1.2 wrote them).
VARIANTS = {"resnet18": {"buffers_as_attributes": True},
            "bert": {"deflate": True}}


def last_lines(text, n=3):
  lines = [l for l in text.strip().splitlines() if l.strip()]
  return " | ".join(lines[-n:]) if lines else "(no output)"


def make_case(zoo, name, info, work):
  """Input and reference .npy paths, from the zoo or made here."""
  ins = [os.path.join(zoo, "%s.in%d.npy" % (name, i)) for i in range(len(info["inputs"]))]
  refs = [os.path.join(zoo, "%s.out%d.npy" % (name, j)) for j in range(len(info["outputs"]))]
  if all(map(os.path.isfile, ins + refs)):
    return ins, refs
  torch.manual_seed(0)
  tensors = []
  for i in info["inputs"]:
    dt = getattr(torch, {"f32": "float32", "i64": "int64", "i32": "int32",
                         "f64": "float64"}[i["dtype"]])
    shape = i["shape"]
    tensors.append(torch.randn(shape, dtype=dt) if dt.is_floating_point
                   else torch.randint(0, 2, shape, dtype=dt))
  out = torch.jit.load(os.path.join(zoo, name + ".pt"))(*tensors)
  flat = []

  def walk(v):
    if isinstance(v, torch.Tensor):
      flat.append(v)
    else:
      for x in v:
        walk(x)
  walk(out)
  ins = [os.path.join(work, "in%d.npy" % i) for i in range(len(tensors))]
  refs = [os.path.join(work, "ref%d.npy" % j) for j in range(len(flat))]
  for p, t in zip(ins, tensors):
    np.save(p, t.numpy())
  for p, t in zip(refs, flat):
    np.save(p, t.detach().numpy())
  return ins, refs


def compare(ref, got):
  if ref.shape != got.shape or ref.dtype != got.dtype:
    return "is %s%s, expected %s%s" % (got.dtype, list(got.shape), ref.dtype, list(ref.shape))
  if ref.dtype.kind in "iub":
    return "" if np.array_equal(ref, got) else "integers differ"
  r, g = ref.astype(np.float64), got.astype(np.float64)
  same = (r == g) | (np.isnan(r) & np.isnan(g))  # equal infinities, both NaN
  if not np.array_equal(np.isfinite(r), np.isfinite(g)) or not same[~np.isfinite(r)].all():
    return "infinities or NaNs differ"
  fin = np.isfinite(r)
  err = float(np.max(np.abs(g[fin] - r[fin]), initial=0))
  tol = 1e-4 * max(1.0, float(np.max(np.abs(r[fin]), initial=0)))
  return "" if err <= tol else "max error %.3g > %.3g" % (err, tol)


def run_one(args, name, work):
  with open(os.path.join(args.zoo, name + ".json")) as f:
    info = json.load(f)
  os.makedirs(work, exist_ok=True)
  pt = os.path.join(work, name + ".pt")
  try:
    write_legacy.write_legacy(os.path.join(args.zoo, name + ".pt"), pt,
                              **VARIANTS.get(name, {}))
  except write_legacy.LegacyError as e:
    return "write: %s" % e
  if args.reference:
    problems = []
    with open(args.reference, "rb") as f:
      import zipfile
      z = zipfile.ZipFile(f)
      ref = json.loads(z.read([n for n in z.namelist() if n.endswith("/model.json")][0]))
    if not check_structure.check_archive(pt, ref, problems):
      return "structure: " + "; ".join(problems)
  ins, refs = make_case(args.zoo, name, info, work)
  so = os.path.join(work, name + ".so")
  cmd = [args.nncc, pt, "-o", so]
  for i in info["inputs"]:
    cmd += ["--input", i["flag"]]
  r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
  if r.returncode != 0:
    return "compile exit %d: %s" % (r.returncode, last_lines(r.stdout.decode()))
  outdir = os.path.join(work, "out")
  shutil.rmtree(outdir, ignore_errors=True)
  os.makedirs(outdir)
  r = subprocess.run([args.nncc, "run", so] + ins + ["--out-dir", outdir],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
  if r.returncode != 0:
    return "run exit %d: %s" % (r.returncode, last_lines(r.stdout.decode()))
  got = sorted(glob.glob(os.path.join(outdir, "output_*.npy")),
               key=lambda p: int(p.rsplit("_", 1)[1][:-4]))
  if len(got) != len(refs):
    return "%d outputs, expected %d" % (len(got), len(refs))
  whys = []
  for j, (g, rf) in enumerate(zip(got, refs)):
    why = compare(np.load(rf), np.load(g))
    if why:
      whys.append("output_%d %s" % (j, why))
  return "; ".join(whys)


def main(argv):
  ap = argparse.ArgumentParser(description="Legacy-format zoo models through nncc.")
  ap.add_argument("--nncc", required=True)
  ap.add_argument("--zoo", required=True)
  ap.add_argument("--reference", help="a real legacy archive (check_structure.py)")
  ap.add_argument("--only", help="comma-separated model names")
  ap.add_argument("--keep", action="store_true")
  a = ap.parse_args(argv)
  names = a.only.split(",") if a.only else list(MODELS)
  work = tempfile.mkdtemp(prefix="nncc-legacy-")
  passed = failed = 0
  for name in names:
    if not os.path.isfile(os.path.join(a.zoo, name + ".json")):
      why = "not in the zoo"
    else:
      try:
        why = run_one(a, name, os.path.join(work, name))
      except subprocess.TimeoutExpired:
        why = "timed out"
    if why:
      failed += 1
      print("FAIL  %-12s %s" % (name, why), flush=True)
    else:
      passed += 1
      print("PASS  %s" % name, flush=True)
  if a.keep:
    print("kept the work folder %s" % work)
  else:
    shutil.rmtree(work, ignore_errors=True)
  print("legacy: %d passed, %d failed" % (passed, failed))
  return 0 if failed == 0 else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
