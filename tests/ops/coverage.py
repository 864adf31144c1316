#!/usr/bin/env python3
"""coverage.py - the coverage table of torch.nn against the op cases.

Usage: coverage.py CASEDIR [--write FILE] [--check FILE] [--allow-gaps]

Enumerates, from the installed torch, every class in torch.nn.modules.__all__
and every public function of torch.nn.functional, and classifies each:

  covered       some case of tests/ops/make_ops.py uses the class, or its
                trace called the function (make_ops.py records both, and the
                ATen ops of each trace, in CASEDIR/<case>.json)
  out of scope  listed in OUT_OF_SCOPE below, with the reason
  gap           listed in GAPS below: in scope, not supported yet, with why

A name in none of the three fails the check (a class or function that a
newer torch added, or a case that was removed), and so does a listed one
that a case now covers (the lists cannot go stale). Gaps fail it too unless
--allow-gaps (tests/ops.sh passes it and prints the count: the coverage
issue is done when there are none).

--write FILE writes the table as Markdown (docs/COVERAGE.md); --check FILE
fails when FILE differs from it (the committed table must be current).
Needs torch (re-runs itself under /usr/bin/python3 or NNCC_PYTHON).
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reexec import reexec  # noqa: E402

try:
  import torch
  import torch.nn.functional as F
  import torch.nn.modules as M
except ImportError:
  reexec("NNCC_COVERAGE_REEXEC", __file__)
  sys.stderr.write("coverage.py: error: no python with torch\n")
  sys.exit(2)

LAZY = "identical to the non-lazy class once traced (the trace records the materialized module)"
CONTAINER = "a container: tracing records the modules it holds, which are covered one by one"
HELPER = "a helper of torch.nn.functional's own code, not a computation"
RANDOM = "random on every call: no fixed function to compile"

OUT_OF_SCOPE = {
  "Module": CONTAINER, "Container": CONTAINER,
  "ModuleDict": CONTAINER, "ParameterList": CONTAINER,
  "ParameterDict": CONTAINER,
  "RNNBase": "abstract base of RNN, LSTM and GRU",
  "RNNCellBase": "abstract base of RNNCell, LSTMCell and GRUCell",
  "LazyLinear": LAZY, "LazyConv1d": LAZY, "LazyConv2d": LAZY, "LazyConv3d": LAZY,
  "LazyConvTranspose1d": LAZY, "LazyConvTranspose2d": LAZY, "LazyConvTranspose3d": LAZY,
  "LazyBatchNorm1d": LAZY, "LazyBatchNorm2d": LAZY, "LazyBatchNorm3d": LAZY,
  "LazyInstanceNorm1d": LAZY, "LazyInstanceNorm2d": LAZY, "LazyInstanceNorm3d": LAZY,
  "FractionalMaxPool2d": RANDOM, "FractionalMaxPool3d": RANDOM,
  "fractional_max_pool2d": RANDOM, "fractional_max_pool3d": RANDOM,
  "fractional_max_pool2d_with_indices": RANDOM, "fractional_max_pool3d_with_indices": RANDOM,
  "gumbel_softmax": RANDOM,
  "SyncBatchNorm": "multi-process training; a traced eval-mode model holds BatchNorm's ops",
  "assert_int_or_pair": HELPER,
}

GAPS = {
  "CTCLoss": "aten::ctc_loss (a dynamic programme over alignments) is not supported",
  "ctc_loss": "aten::ctc_loss is not supported",
  "MultiLabelMarginLoss": "aten::multilabel_margin_loss is not supported",
  "multilabel_margin_loss": "aten::multilabel_margin_loss is not supported",
  "MaxUnpool1d": "aten::max_unpool (a scatter by the pooling's indices) is not supported",
  "MaxUnpool2d": "aten::max_unpool2d is not supported",
  "MaxUnpool3d": "aten::max_unpool3d is not supported",
  "max_unpool1d": "aten::max_unpool2d is not supported",
  "max_unpool2d": "aten::max_unpool2d is not supported",
  "max_unpool3d": "aten::max_unpool3d is not supported",
  "Unfold": "aten::im2col is not supported",
  "unfold": "aten::im2col is not supported",
  "Fold": "aten::col2im is not supported",
  "fold": "aten::col2im is not supported",
  "AdaptiveLogSoftmaxWithLoss": "its forward needs a target and returns a named tuple; "
                                "log_prob/predict are not forward",
  "affine_grid": "aten::affine_grid_generator is not supported",
  "grid_sample": "aten::grid_sampler is not supported",
  "CrossMapLRN2d": "a legacy autograd Function that tracing records as a Python op",
}


def torch_names():
  mods = [n for n in M.__all__]
  funcs = [n for n in dir(F) if not n.startswith("_") and callable(getattr(F, n))
           and not isinstance(getattr(F, n), type)
           and getattr(getattr(F, n), "__module__", "") == F.__name__]
  return [("module", n) for n in mods] + [("function", n) for n in sorted(funcs)]


def load_cases(d):
  cases = []
  for path in sorted(glob.glob(os.path.join(d, "*.json"))):
    with open(path) as fp:
      cases.append(json.load(fp))
  return cases


def classify(cases):
  """[(kind, name, status, detail, cases, aten)] and a list of problems."""
  uses = {}
  for c in cases:
    for key, kind in (("modules", "module"), ("functions", "function")):
      for n in c.get(key, []):
        uses.setdefault((kind, n), []).append(c)
  rows, problems = [], []
  names = torch_names()
  known = {n for _, n in names}
  for lst, what in ((OUT_OF_SCOPE, "OUT_OF_SCOPE"), (GAPS, "GAPS")):
    for n in sorted(lst):
      if n not in known:
        problems.append("%s lists '%s', which this torch does not have" % (what, n))
  for kind, n in names:
    cs = uses.get((kind, n), [])
    aten = sorted({a for c in cs for a in c.get("aten", [])
                   if a not in ("aten::size", "aten::Int")})
    if cs and (n in OUT_OF_SCOPE or n in GAPS):
      problems.append("%s '%s' is covered by case %s yet listed in %s" %
                      (kind, n, cs[0]["name"], "OUT_OF_SCOPE" if n in OUT_OF_SCOPE else "GAPS"))
    if cs:
      rows.append((kind, n, "covered", "", [c["name"] for c in cs], aten))
    elif n in OUT_OF_SCOPE:
      rows.append((kind, n, "out of scope", OUT_OF_SCOPE[n], [], []))
    elif n in GAPS:
      rows.append((kind, n, "gap", GAPS[n], [], []))
    else:
      rows.append((kind, n, "uncovered", "", [], []))
      problems.append("%s '%s' is covered by no case and listed nowhere" % (kind, n))
  return rows, problems


def markdown(rows):
  count = {}
  for r in rows:
    count[r[2]] = count.get(r[2], 0) + 1
  out = ["# Coverage of torch.nn",
         "",
         "Generated by `tests/ops/coverage.py` from the op cases of "
         "`tests/ops/make_ops.py` (torch %s); `tests/ops.sh` checks that this "
         "file is current. A class or function is covered when a case uses it "
         "(every case is compiled, run and compared with PyTorch, with fixed "
         "and with symbolic dims); the ATen ops are those of the cases' traces."
         % torch.__version__.split("+")[0],
         "",
         "Totals: %s." % ", ".join("%d %s" % (count[k], label) for k, label in
                                   (("covered", "covered"), ("out of scope", "out of scope"),
                                    ("gap", "gaps"), ("uncovered", "uncovered")) if k in count),
         ""]
  for kind, title in (("module", "torch.nn modules"), ("function", "torch.nn.functional")):
    out += ["## %s" % title, "", "| name | status | cases | ATen ops |", "|---|---|---|---|"]
    for r in rows:
      if r[0] != kind:
        continue
      cs = ", ".join("`%s`" % c for c in r[4][:4]) + (" (+%d)" % (len(r[4]) - 4)
                                                       if len(r[4]) > 4 else "")
      status = r[2] if not r[3] else "%s: %s" % (r[2], r[3])
      out.append("| `%s` | %s | %s | %s |" % (r[1], status, cs,
                                              " ".join("`%s`" % a[6:] for a in r[5])))
    out.append("")
  return "\n".join(out)


def main(argv):
  ap = argparse.ArgumentParser(description="torch.nn coverage of the op cases.")
  ap.add_argument("casedir")
  ap.add_argument("--write", help="write the Markdown table here")
  ap.add_argument("--check", help="fail when this file differs from the table")
  ap.add_argument("--allow-gaps", action="store_true")
  args = ap.parse_args(argv)
  cases = load_cases(args.casedir)
  if not cases:
    print("coverage.py: error: no cases in %s" % args.casedir, file=sys.stderr)
    return 2
  rows, problems = classify(cases)
  text = markdown(rows)
  if args.write:
    with open(args.write, "w") as fp:
      fp.write(text)
  if args.check:
    try:
      with open(args.check) as fp:
        old = fp.read()
    except OSError:
      old = None
    if old != text:
      problems.append("%s is not current: regenerate it with tests/ops/coverage.py CASEDIR "
                      "--write %s" % (args.check, args.check))
  gaps = [r for r in rows if r[2] == "gap"]
  for r in gaps:
    print("GAP  %-10s %-32s %s" % (r[0], r[1], r[3]))
  for p in problems:
    print("FAIL %s" % p)
  covered = sum(1 for r in rows if r[2] == "covered")
  scope = sum(1 for r in rows if r[2] == "out of scope")
  print("coverage: %d names: %d covered, %d out of scope, %d gaps, %d problems"
        % (len(rows), covered, scope, len(gaps), len(problems)))
  if problems or (gaps and not args.allow_gaps):
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
