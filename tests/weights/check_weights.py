"""check_weights.py - runs the --weights cases that make_weights.py wrote.

Usage: check_weights.py --nncc PATH --dir DIR

Each case of DIR/cases.json compiles MODEL.pt with --weights FILE (and its
flags). A case that should load must exit 0 with exactly the expected
warnings on stderr, and `nncc run` of the result must match PyTorch's output
of the second instance: max|a-b| <= 1e-4 * max(1, max|ref|). A case that
should fail must exit 1 with exactly the expected stderr lines. Two controls
keep the comparison honest (the traced weights alone must NOT match) and the
option checks must give usage errors (exit 2). Prints one line per case and
"weights: N passed, M failed".
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def run(cmd):
  p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, timeout=300)
  return p.returncode, p.stdout, p.stderr


def max_err(out_npy, ref_npy):
  a, b = np.load(out_npy), np.load(ref_npy)
  if a.shape != b.shape:
    return None, "output shape %s, expected %s" % (a.shape, b.shape)
  err = float(np.abs(a.astype(np.float64) - b).max())
  tol = 1e-4 * max(1.0, float(np.abs(b).max()))
  return err <= tol, "max|a-b| = %.3g (tolerance %.3g)" % (err, tol)


def compile_and_run(nncc, case, weights, flags, work, tag):
  so = os.path.join(work, tag + ".so")
  cmd = [nncc, case["model_pt"], "-o", so, "--input", case["shape"]]
  if weights:
    cmd += ["--weights", weights]
  rc, _, err = run(cmd + flags)
  if rc != 0:
    return rc, err, None
  outdir = os.path.join(work, tag + ".out")
  rrc, _, rerr = run([nncc, "run", so, case["input"], "--out-dir", outdir])
  if rrc != 0:
    return rc, err, "nncc run failed (%d): %s" % (rrc, rerr.strip())
  return rc, err, os.path.join(outdir, "output_0.npy")


def check_case(nncc, case, work, tag):
  rc, err, out = compile_and_run(nncc, case, case["weights"], case["flags"], work, tag)
  lines = err.splitlines()
  if not case["ok"]:
    if rc != 1:
      return False, "exit %d, expected 1; stderr:\n%s" % (rc, err)
    if lines != case["stderr"]:
      return False, "stderr:\n%s\nexpected:\n%s" % (err, "\n".join(case["stderr"]))
    return True, "fails as expected"
  if rc != 0:
    return False, "exit %d; stderr:\n%s" % (rc, err)
  if lines != case["stderr"]:
    return False, "stderr:\n%s\nexpected:\n%s" % (err, "\n".join(case["stderr"]))
  if not out or not out.endswith(".npy"):
    return False, out
  good, msg = max_err(out, case["ref"])
  return bool(good), msg


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--nncc", required=True)
  ap.add_argument("--dir", required=True)
  args = ap.parse_args()
  with open(os.path.join(args.dir, "cases.json")) as f:
    cases = json.load(f)
  work = tempfile.mkdtemp(prefix="nncc-weights-")
  passed = failed = 0

  def report(name, good, msg):
    nonlocal passed, failed
    print("%s %s: %s" % ("ok  " if good else "FAIL", name, msg), flush=True)
    if good:
      passed += 1
    else:
      failed += 1

  models = {}
  for i, c in enumerate(cases):
    c["model_pt"] = os.path.join(args.dir, c["model"] + ".pt")
    models.setdefault(c["model"], c)
    name = "%s --weights %s %s" % (c["model"], os.path.basename(c["weights"]),
                                   " ".join(c["flags"]))
    good, msg = check_case(args.nncc, c, work, "case%d" % i)
    report(name.strip(), good, msg)

  # Controls: without --weights the traced (other) weights give another output.
  for m, c in models.items():
    rc, err, out = compile_and_run(args.nncc, c, None, [], work, "control_" + m)
    if rc != 0 or not out or not out.endswith(".npy"):
      report("%s (control, no --weights)" % m, False, "exit %d: %s %s" % (rc, err, out))
      continue
    good, msg = max_err(out, os.path.join(args.dir, m + ".ref.npy"))
    report("%s (control, no --weights)" % m, good is False, "differs from the reference: " + msg)

  # Option checks.
  c = next(iter(models.values()))
  for flags, want in [(["--weights-key", "net"], "nncc: error: --weights-key needs --weights FILE"),
                      (["--no-strict"], "nncc: error: --no-strict needs --weights FILE")]:
    rc, _, err = run([args.nncc, c["model_pt"], "--emit=ir", "--input", c["shape"]] + flags)
    good = rc == 2 and err.splitlines()[:1] == [want]
    report(" ".join(flags) + " without --weights", good,
           "exit %d: %s" % (rc, (err.strip().splitlines() or [""])[0]))

  print("weights: %d passed, %d failed" % (passed, failed))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
