#!/usr/bin/env python3
"""bench.py - time nncc-compiled models against libtorch on one thread.

Usage: bench.py --nncc PATH --timer PATH --work DIR [--models a,b,...]
                [--runs N] [--rounds R] [--threads T]

Normally started by bench/bench.sh, which builds the libtorch timer
(bench/libtorch_timer.cpp) first. For each model (default resnet18,
convnet, mlp; any zoo name works) this script

 1. traces it with PyTorch through tests/zoo/make_zoo.py into DIR/zoo
    (which also saves the example inputs and PyTorch's outputs),
 2. compiles it with `nncc MODEL.pt -o DIR/NAME.so --input ...`, timing the
    compile and noting the .so size, and checks once that `nncc run`
    reproduces PyTorch's outputs (the tolerance of tests/ops),
 3. times it R rounds, each round running the libtorch timer (N timed
    forward() calls after warm-up) and then `nncc run --bench N`, so that
    both see the same machine conditions; the figure reported for each is
    the median over the rounds of the per-round medians.

It prints a table: model, libtorch ms, nncc ms, the ratio nncc/libtorch,
compile time and .so size, then whether the target (resnet18 at batch 1
under 10x libtorch's single-thread time) is met. Exit status: 0 when every
model compiled, ran and matched PyTorch, 1 otherwise.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "ops"))
import check_ops  # noqa: E402

LAT_RE = re.compile(r"latency_ms min=([\d.eE+-]+) median=([\d.eE+-]+) "
                    r"max=([\d.eE+-]+) runs=(\d+) threads=(\d+)")
TARGET = ("resnet18", 10.0)


def latency(cmd):
  """Runs a timing command; returns its median in ms (or raises)."""
  r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     timeout=1800)
  out = r.stdout.decode("utf-8", "replace")
  mt = LAT_RE.search(out)
  if r.returncode != 0 or not mt:
    raise RuntimeError("%s failed (exit %d): %s" % (os.path.basename(cmd[0]),
                                                    r.returncode,
                                                    check_ops.last_lines(out)))
  return float(mt.group(2))


def main(argv):
  ap = argparse.ArgumentParser(description="nncc vs libtorch, one thread.")
  ap.add_argument("--nncc", required=True)
  ap.add_argument("--timer", required=True, help="built libtorch_timer")
  ap.add_argument("--work", required=True)
  ap.add_argument("--models", default="resnet18,convnet,mlp")
  ap.add_argument("--runs", type=int, default=30)
  ap.add_argument("--rounds", type=int, default=3)
  ap.add_argument("--threads", type=int, default=1)
  args = ap.parse_args(argv)
  names = [n for n in args.models.split(",") if n]

  zoo = os.path.join(args.work, "zoo")
  r = subprocess.run([sys.executable, os.path.join(SRC, "tests", "zoo",
                                                   "make_zoo.py"),
                      zoo, "--only", ",".join(names)])
  if r.returncode != 0:
    print("bench.py: error: make_zoo.py failed", file=sys.stderr)
    return 1

  rows = []
  bad = 0
  for name in names:
    with open(os.path.join(zoo, name + ".json")) as fp:
      info = json.load(fp)
    inputs, refs = check_ops.case_files(zoo, name, info)
    pt = os.path.join(zoo, name + ".pt")
    res = check_ops.check_model(args.nncc, pt, info, inputs, refs,
                                os.path.join(args.work, name),
                                check_ops.DEFAULT_TOL, 1800, named=False)
    so = os.path.join(args.work, name, name + ".so")
    row = {"name": name, "compile_s": res["compile_s"], "lt": None,
           "nn": None, "size": None, "note": ""}
    if os.path.isfile(so):
      row["size"] = os.path.getsize(so)
    if not res["ok"]:
      bad += 1
      row["note"] = "%s failed: %s" % (res["stage"], res["why"])
    lt_cmd = [args.timer, pt] + inputs + ["--runs", str(args.runs),
                                          "--threads", str(args.threads)]
    nn_cmd = [args.nncc, "run", so] + inputs + [
        "--out-dir", os.path.join(args.work, name, "bench.out"),
        "--threads", str(args.threads), "--bench", str(args.runs)]
    os.makedirs(os.path.join(args.work, name, "bench.out"), exist_ok=True)
    lts, nns = [], []
    for _ in range(args.rounds):
      try:
        lts.append(latency(lt_cmd))
      except Exception as e:
        row["note"] += " libtorch: %s" % e
        break
      if res["stage"] in ("run", "compile"):
        continue  # nothing to time: the .so did not compile or run
      try:
        nns.append(latency(nn_cmd))
      except Exception as e:
        row["note"] += " nncc: %s" % e
        break
    if lts:
      row["lt"] = statistics.median(lts)
    if nns:
      row["nn"] = statistics.median(nns)
    rows.append(row)
    print("%-12s done" % name, file=sys.stderr, flush=True)

  def ms(v):
    return "%.4f" % v if v is not None else "-"

  print()
  print("threads=%d, runs=%d per round, %d rounds (median of round medians)"
        % (args.threads, args.runs, args.rounds))
  print("%-14s %12s %10s %12s %11s %10s" % ("model", "libtorch ms", "nncc ms",
                                            "nncc/libtorch", "compile s",
                                            "so KiB"))
  for row in rows:
    ratio = (row["nn"] / row["lt"]) if row["nn"] and row["lt"] else None
    row["ratio"] = ratio
    print("%-14s %12s %10s %12s %11s %10s" % (
        row["name"], ms(row["lt"]), ms(row["nn"]),
        "%.2fx" % ratio if ratio is not None else "-",
        "%.2f" % row["compile_s"] if row["compile_s"] is not None else "-",
        "%d" % (row["size"] // 1024) if row["size"] is not None else "-"))
  for row in rows:
    if row["note"]:
      print("note: %s: %s" % (row["name"], row["note"].strip()))
  for row in rows:
    if row["name"] == TARGET[0]:
      if row["ratio"] is None:
        print("target: %s under %gx libtorch: not measured"
              % (TARGET[0], TARGET[1]))
      else:
        print("target: %s under %gx libtorch: %s (%.2fx)"
              % (TARGET[0], TARGET[1],
                 "met" if row["ratio"] < TARGET[1] else "NOT met",
                 row["ratio"]))
  return 1 if bad else 0


if __name__ == "__main__":
  start = time.time()
  rc = main(sys.argv[1:])
  print("bench took %.0fs" % (time.time() - start), file=sys.stderr)
  sys.exit(rc)
