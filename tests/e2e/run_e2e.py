#!/usr/bin/env python3
"""run_e2e.py - compile every zoo model with nncc, run it, compare with PyTorch.

Usage: run_e2e.py --nncc PATH --zoo DIR [--only NAME,...] [--jobs N]
                  [--timeout S] [--keep]

DIR is the zoo make_zoo.py wrote: per model <name>.pt, <name>.json, the
example inputs <name>.in<i>.npy and PyTorch's outputs <name>.out<j>.npy.
For each model this script runs

  nncc <name>.pt -o <name>.so --input FLAG...     (the json's flags)
  nncc run <name>.so <name>.in0.npy ... --out-dir <name>.out/

(inputs passed by position, where tests/ops passes them by name) and
compares every output with the same rule as tests/ops/check_ops.py:
max|a - b| <= 1e-4 * max(1, max|ref|) for floats, exact for integers.

REQUIRED models must be in the zoo and must pass. EXPECTED_FAIL lists
models that use an op the backend does not support yet, with the reason:
a failure there prints XFAIL and does not count, a pass prints XPASS (time
to take it off the list). The last line is "e2e: N passed, M failed"
(XFAILs are in neither count); the exit status is 0 when nothing failed.
"""

import argparse
import concurrent.futures
import glob
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "ops"))
import check_ops  # noqa: E402  (re-runs under a python with numpy if needed)

# The models the end-to-end test is about: the seeds' ConvNet, an MLP,
# two torchvision CNNs, the BERT-style classifier with three int64 inputs,
# a model returning a tuple (losses, tensor_ops) and one returning a list.
REQUIRED = ("convnet", "mlp", "resnet18", "mobilenet_v2", "bert", "losses",
            "tensor_ops", "list_out")

# name -> why it cannot pass yet. Only for ops the backend lacks.
EXPECTED_FAIL = {
}


def main(argv):
  ap = argparse.ArgumentParser(description="Run the zoo through nncc.")
  ap.add_argument("--nncc", required=True)
  ap.add_argument("--zoo", required=True)
  ap.add_argument("--only", help="comma-separated model names")
  ap.add_argument("--jobs", type=int, default=2)
  ap.add_argument("--timeout", type=float, default=600,
                  help="seconds per nncc command")
  ap.add_argument("--keep", action="store_true",
                  help="keep the .so files and outputs (printed path)")
  args = ap.parse_args(argv)

  models = {}
  for path in sorted(glob.glob(os.path.join(args.zoo, "*.json"))):
    with open(path) as fp:
      info = json.load(fp)
    models[info["name"]] = info
  names = list(models)
  problems = []
  if args.only:
    names = [n for n in args.only.split(",") if n]
    problems += ["%s: not in the zoo" % n for n in names if n not in models]
  else:
    problems += ["%s: required but not in the zoo" % n
                 for n in REQUIRED if n not in models]
  names = [n for n in names if n in models]
  problems += ["%s: no %s.out0.npy (zoo written by an older make_zoo.py?)"
               % (n, n) for n in names
               if not os.path.isfile(os.path.join(args.zoo, n + ".out0.npy"))]
  if problems:
    for p in problems:
      print("error: " + p, file=sys.stderr)
    print("e2e: 0 passed, %d failed" % len(problems))
    return 1

  work = tempfile.mkdtemp(prefix="nncc-e2e-")

  def one(name):
    info = models[name]
    inputs, refs = check_ops.case_files(args.zoo, name, info)
    return check_ops.check_model(args.nncc,
                                 os.path.join(args.zoo, name + ".pt"), info,
                                 inputs, refs, os.path.join(work, name),
                                 check_ops.DEFAULT_TOL, args.timeout,
                                 named=False)

  passed = failed = xfail = xpass = 0
  with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
    futures = [pool.submit(one, n) for n in names]
    for name, fut in zip(names, futures):
      r = fut.result()
      known = EXPECTED_FAIL.get(name)
      if r["ok"]:
        passed += 1
        tag = "XPASS" if known else "PASS"
        xpass += 1 if known else 0
        print("%-5s %-20s err=%.2g compile=%.1fs%s" %
              (tag, name, r["err"], r["compile_s"],
               " (listed as expected to fail: %s)" % known if known else ""),
              flush=True)
      elif known:
        xfail += 1
        print("XFAIL %-20s %s [%s]" % (name, known, r["why"]), flush=True)
      else:
        failed += 1
        print("FAIL  %-20s %s" % (name, r["why"]), flush=True)
  if args.keep:
    print("kept the work folder %s" % work)
  else:
    shutil.rmtree(work, ignore_errors=True)
  if xfail or xpass:
    print("%d expected failures, %d unexpected passes" % (xfail, xpass))
  print("e2e: %d passed, %d failed" % (passed, failed))
  return 0 if failed == 0 else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
