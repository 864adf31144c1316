#!/usr/bin/env python3
"""check_ops.py - compile every single-op case with nncc, run it, compare.

Usage: check_ops.py --nncc PATH --dir OUTDIR [--only SUBSTR] [--jobs N]
                    [--keep] [--timeout S]

OUTDIR is what make_ops.py wrote: per case <case>.pt, <case>.json,
<case>.in<i>.npy and <case>.out<j>.npy. For each case this script runs

  nncc <case>.pt -o <case>.so --input FLAG...
  nncc run <case>.so NAME=<case>.in<i>.npy... --out-dir <case>.out/

and compares every DIR/output_<j>.npy with <case>.out<j>.npy (see
compare() for the rule). It prints one PASS or FAIL line per case, in
table order, and ends with the line "ops: N passed, M failed"; the exit
status is 0 only when every case passes. Compiles run in parallel (2 jobs
by default). Needs numpy (the script re-runs itself under
/usr/bin/python3 when the first python3 lacks it); torch is not needed.

The compile-run-compare steps are shared with tests/e2e/run_e2e.py.
"""

import argparse
import concurrent.futures
import glob
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reexec import reexec  # noqa: E402
import tempfile
import time


try:
  import numpy as np
except ImportError:
  reexec("NNCC_CHECK_REEXEC", sys.argv[0])  # the running script: this one or run_e2e.py
  sys.stderr.write("error: numpy is needed (tried %s, NNCC_PYTHON, "
                   "/usr/bin/python3)\n" % sys.executable)
  sys.exit(2)

DEFAULT_TOL = 1e-4

# When a float reference is small (max|ref| < 1), the rule's floor of 1
# turns it into an absolute bound of tol, which a wrong result can meet:
# several zoo CNNs with random weights output logits around 1e-9, where
# all-zeros would pass. Such outputs must also be within SMALL_REF_REL of
# max|ref| (a norm-relative bound, looser than tol since float32 sums in
# another order differ by ~1e-6 of the scale).
SMALL_REF_REL = 1e-3


def compare(ref, got, tol=DEFAULT_TOL):
  """Checks one output against its reference. Returns (ok, err, why):
  floats must have the same dtype and shape, non-finite values (inf, nan)
  in the same places, and max|got - ref| <= tol * max(1, max|ref|) over
  the finite ones, and when 0 < max|ref| < 1 also
  max|got - ref| <= SMALL_REF_REL * max|ref|; integers and bools must be
  equal. err is the max absolute error (None where it does not apply)."""
  if got.dtype != ref.dtype:
    return False, None, "dtype %s, expected %s" % (got.dtype, ref.dtype)
  if got.shape != ref.shape:
    return False, None, "shape %s, expected %s" % (list(got.shape),
                                                    list(ref.shape))
  if not np.issubdtype(ref.dtype, np.floating):
    bad = np.count_nonzero(got != ref)
    if bad:
      at = tuple(int(i) for i in np.argwhere(got != ref)[0])
      return False, None, ("%d of %d elements differ; first at %s: %s, "
                           "expected %s" % (bad, ref.size, list(at),
                                            got[at], ref[at]))
    return True, 0.0, ""
  ref64 = ref.astype(np.float64)
  got64 = got.astype(np.float64)
  fin = np.isfinite(ref64)
  same_special = np.where(fin, np.isfinite(got64),
                          (np.isnan(ref64) & np.isnan(got64)) |
                          (ref64 == got64))
  if not same_special.all():
    at = tuple(int(i) for i in np.argwhere(~same_special)[0])
    return False, None, ("inf/nan mismatch at %s: %s, expected %s"
                         % (list(at), got64[at], ref64[at]))
  if not fin.any():
    return True, 0.0, ""
  diff = np.abs(got64[fin] - ref64[fin])
  err = float(diff.max())
  scale = float(np.abs(ref64[fin]).max())
  bound = tol * max(1.0, scale)
  if err > bound:
    return False, err, "max abs error %.3g > %.3g" % (err, bound)
  if 0.0 < scale < 1.0 and err > SMALL_REF_REL * scale:
    return False, err, ("max abs error %.3g > %.3g (%g of max|ref| %.3g)"
                        % (err, SMALL_REF_REL * scale, SMALL_REF_REL, scale))
  return True, err, ""


def run_cmd(cmd, timeout):
  """Runs cmd; returns (exit code or None on timeout, combined output)."""
  try:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
  except subprocess.TimeoutExpired:
    return None, "timed out after %ss" % timeout
  except OSError as e:
    return 127, str(e)
  return r.returncode, r.stdout.decode("utf-8", "replace")


def last_lines(text, n=3):
  lines = [l for l in text.strip().splitlines() if l.strip()]
  return " | ".join(lines[-n:]) if lines else "(no output)"


def check_model(nncc, pt, info, inputs, refs, work, tol, timeout,
                named=True):
  """Compiles pt with info's --input flags into work/, runs it on the input
  files and compares with the reference files. Returns a dict: ok, stage
  (compile, run, compare), why, err (worst absolute error), compile_s."""
  res = {"ok": False, "stage": "compile", "why": "", "err": None,
         "compile_s": None}
  os.makedirs(work, exist_ok=True)
  so = os.path.join(work, info["name"] + ".so")
  outdir = os.path.join(work, info["name"] + ".out")
  shutil.rmtree(outdir, ignore_errors=True)
  os.makedirs(outdir)
  cmd = [nncc, pt, "-o", so]
  for i in info["inputs"]:
    cmd += ["--input", i["flag"]]
  t0 = time.time()
  rc, out = run_cmd(cmd, timeout)
  res["compile_s"] = time.time() - t0
  if rc != 0:
    res["why"] = "compile exit %s: %s" % (rc, last_lines(out))
    return res
  if not os.path.isfile(so):
    res["why"] = "compile exited 0 but wrote no %s" % so
    return res
  res["stage"] = "run"
  cmd = [nncc, "run", so]
  for i, path in zip(info["inputs"], inputs):
    cmd.append("%s=%s" % (i["name"], path) if named else path)
  cmd += ["--out-dir", outdir]
  rc, out = run_cmd(cmd, timeout)
  if rc != 0:
    res["why"] = "run exit %s: %s" % (rc, last_lines(out))
    return res
  res["stage"] = "compare"
  written = sorted(os.listdir(outdir))
  expected = ["output_%d.npy" % j for j in range(len(refs))]
  extra = [w for w in written if w not in expected]
  missing = [e for e in expected if e not in written]
  if missing or extra:
    res["why"] = "outputs written %s, expected %s" % (written, expected)
    return res
  worst = 0.0
  whys = []
  for j, ref_path in enumerate(refs):
    try:
      got = np.load(os.path.join(outdir, expected[j]), allow_pickle=False)
    except Exception as e:  # a malformed .npy is a failure, not a crash
      whys.append("output_%d: unreadable .npy: %s" % (j, e))
      continue
    ref = np.load(ref_path, allow_pickle=False)
    ok, err, why = compare(ref, got, tol)
    if err is not None:
      worst = max(worst, err)
    if not ok:
      whys.append("output_%d: %s" % (j, why))
  res["err"] = worst
  if whys:
    res["why"] = "; ".join(whys)
    return res
  res["ok"] = True
  return res


def case_files(d, name, info):
  inputs = [os.path.join(d, "%s.in%d.npy" % (name, i))
            for i in range(len(info["inputs"]))]
  refs = [os.path.join(d, "%s.out%d.npy" % (name, j))
          for j in range(len(info["outputs"]))]
  return inputs, refs


def check_symbolic(nncc, pt, info, sets, work, tol, timeout):
  """Compiles pt with symbolic dims: as a user would first, with no
  --input (dtypes, ranks and the dims weights fix inferred), and when that
  fails or guesses another rank than the case's (an elementwise op alone
  says nothing of its input's rank: 2 is the convention) as nncc then asks,
  with --input NAME:DTYPE[NAME_0,5,...]: the dims the shape sets vary
  symbolic, the others as traced. Runs it on each (inputs, refs) set: the
  case's own and its alternates at other shapes. Returns a dict like
  check_model's."""
  res = {"ok": False, "stage": "compile", "why": "", "err": None,
         "compile_s": None}
  os.makedirs(work, exist_ok=True)
  so = os.path.join(work, info["name"] + ".sym.so")
  # the dims the shape sets vary are symbolic, the others as traced
  shapes = [[np.load(path, mmap_mode="r").shape for path in inputs] for inputs, _ in sets]
  flags = []
  for j, i in enumerate(info["inputs"]):
    vary = [any(len(sh[j]) > d and sh[j][d] != n for sh in shapes)
            for d, n in enumerate(i["shape"])]
    dims = ",".join("%s_%d" % (i["name"], d) if v else str(n)
                    for d, (n, v) in enumerate(zip(i["shape"], vary)))
    flags += ["--input", "%s:%s[%s]" % (i["name"], i["dtype"], dims)]
  t0 = time.time()
  rc, out = run_cmd([nncc, pt, "-o", so], timeout)
  how = "without --input"
  if rc == 0 and not sets_run(nncc, so, info, sets[:1], work, tol, timeout)[0]:
    rc, out = 1, "inferred another signature than the case's"
  if rc != 0:
    first = "exit %s without --input: %s" % (rc, last_lines(out, 1))
    rc, out = run_cmd([nncc, pt, "-o", so] + flags, timeout)
    how = "with " + " ".join(flags[1::2])
    if rc != 0:
      res["compile_s"] = time.time() - t0
      res["why"] = "symbolic compile %s; exit %s %s: %s" % (first, rc, how, last_lines(out))
      return res
  res["compile_s"] = time.time() - t0
  ok, stage, why, worst = sets_run(nncc, so, info, sets, work, tol, timeout)
  res["stage"] = stage
  if not ok:
    res["why"] = "%s (compiled %s)" % (why, how)
    return res
  res["err"] = worst
  res["ok"] = True
  return res


def sets_run(nncc, so, info, sets, work, tol, timeout):
  """Runs so on each (inputs, refs) set and compares. Returns (ok, stage,
  why, worst error)."""
  worst = 0.0
  for k, (inputs, refs) in enumerate(sets):
    outdir = os.path.join(work, "%s.sym%d.out" % (info["name"], k))
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    cmd = [nncc, "run", so] + ["%s=%s" % (i["name"], path)
                               for i, path in zip(info["inputs"], inputs)]
    rc, out = run_cmd(cmd + ["--out-dir", outdir], timeout)
    if rc != 0:
      return False, "run", "shape set %d: run exit %s: %s" % (k, rc, last_lines(out)), None
    for j, ref_path in enumerate(refs):
      path = os.path.join(outdir, "output_%d.npy" % j)
      try:
        got = np.load(path, allow_pickle=False)
      except Exception as e:
        return False, "compare", "shape set %d: output_%d: %s" % (k, j, e), None
      ok, err, why = compare(np.load(ref_path, allow_pickle=False), got, tol)
      if err is not None:
        worst = max(worst, err)
      if not ok:
        return False, "compare", "shape set %d: output_%d: %s" % (k, j, why), None
  return True, "compare", "", worst


def alt_sets(d, name, info):
  """The case's alternate (inputs, refs) sets (make_ops.py's .alt files)."""
  sets = []
  for k in range(info.get("alts", 0)):
    sets.append(([os.path.join(d, "%s.alt%d.in%d.npy" % (name, k, i))
                  for i in range(len(info["inputs"]))],
                 [os.path.join(d, "%s.alt%d.out%d.npy" % (name, k, j))
                  for j in range(len(info["outputs"]))]))
  return sets


def main(argv):
  ap = argparse.ArgumentParser(description="Check nncc on single-op cases.")
  ap.add_argument("--nncc", required=True)
  ap.add_argument("--dir", required=True, help="make_ops.py's OUTDIR")
  ap.add_argument("--only", help="only cases whose name contains this")
  ap.add_argument("--jobs", type=int, default=2)
  ap.add_argument("--timeout", type=float, default=120,
                  help="seconds per nncc command")
  ap.add_argument("--symbolic", action="store_true",
                  help="compile with symbolic dims (each input's dtype and "
                       "rank given, no size) and run on the case's inputs and "
                       "its alternates at other shapes")
  ap.add_argument("--keep", action="store_true",
                  help="keep the .so files and outputs (printed path)")
  args = ap.parse_args(argv)

  cases = []
  for path in sorted(glob.glob(os.path.join(args.dir, "*.json"))):
    with open(path) as fp:
      info = json.load(fp)
    if args.only and args.only not in info["name"]:
      continue
    cases.append(info)
  if not cases:
    print("check_ops.py: error: no cases in %s" % args.dir, file=sys.stderr)
    return 2

  work = tempfile.mkdtemp(prefix="nncc-ops-")

  def one(info):
    name = info["name"]
    inputs, refs = case_files(args.dir, name, info)
    if args.symbolic:
      return check_symbolic(args.nncc, os.path.join(args.dir, name + ".pt"), info,
                            [(inputs, refs)] + alt_sets(args.dir, name, info),
                            os.path.join(work, name), info.get("tol", DEFAULT_TOL),
                            args.timeout)
    return check_model(args.nncc, os.path.join(args.dir, name + ".pt"), info,
                       inputs, refs, os.path.join(work, name),
                       info.get("tol", DEFAULT_TOL), args.timeout)

  passed = failed = gaps = 0
  with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
    futures = [pool.submit(one, info) for info in cases]
    for info, fut in zip(cases, futures):
      r = fut.result()
      gap = info.get("symbolic_gap") if args.symbolic else None
      if gap and r["ok"]:
        failed += 1
        print("FAIL %-24s passes with symbolic dims now: take it out of make_ops.py's "
              "SYMBOLIC_GAPS" % info["name"], flush=True)
      elif gap:
        gaps += 1
        print("GAP  %-24s %s" % (info["name"], gap), flush=True)
      elif r["ok"]:
        passed += 1
        extra = " shapes=%d" % (1 + info.get("alts", 0)) if args.symbolic else ""
        print("PASS %-24s err=%.2g%s" % (info["name"], r["err"], extra), flush=True)
      else:
        failed += 1
        print("FAIL %-24s %s" % (info["name"], r["why"]), flush=True)
  if args.keep:
    print("kept the work folder %s" % work)
  else:
    shutil.rmtree(work, ignore_errors=True)
  if args.symbolic:
    print("ops (symbolic dims): %d passed, %d known gaps, %d failed" % (passed, gaps, failed))
  else:
    print("ops: %d passed, %d failed" % (passed, failed))
  return 0 if failed == 0 else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
