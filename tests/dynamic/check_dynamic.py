#!/usr/bin/env python3
"""check_dynamic.py - one compiled model, many input shapes.

Usage: check_dynamic.py --nncc PATH --zoo DIR [--only NAME,...] [--jobs N]
                        [--timeout S] [--keep]

DIR is the zoo tests/zoo/make_zoo.py wrote (<name>.pt, <name>.json, ...).
Every model is compiled ONCE with no --input, so every input dim is
symbolic, and the one .so is then run at several shapes:

  nncc <name>.pt -o <name>.so                       (no --input)
  nncc run <name>.so NAME=FILE.npy... --out-dir OUT/

Cases, each printed as one PASS or FAIL line:

  compile NAME        the compile without --input succeeds; for the models
                      in MAY_NOT_INFER it may instead fail with the located
                      "cannot infer ..." error that asks for --input
  run NAME SHAPE      the .so run at SHAPE matches PyTorch: CNNs, the MLP
                      and list_out at batch 1, 3 and 8 (the json's spatial
                      size; a few also at other spatial sizes, since H and
                      W are symbolic too), bert at (batch, seq) in
                      BERT_SHAPES; inputs drawn by torch with a fixed seed
                      per case; reference = torch.jit.load(NAME.pt)(inputs)
                      under torch.no_grad()
  tiny NAME SHAPE     a spatial size too small for some models: where
                      PyTorch computes a result nncc must match it, where
                      PyTorch raises nncc must exit with an error saying a
                      dim "must be at least 1" (never crash)
  bert-range ...      bert compiled with b=1..4, s=1..64: in-range shapes
                      match PyTorch; a dim out of range, dims inconsistent
                      across inputs and a wrong dtype are exact errors
  rank resnet18       a 3-D input is an error naming the rank
  inspect ...         `nncc inspect` shows symbolic dims and the symbols

Outputs are compared with tests/ops/check_ops.py's compare(): same dtype
and shape as PyTorch's, floats within 1e-4 * max(1, max|ref|), integers
exactly. An expected error must come with a plain failing exit status
(1 or 2; not 0, not 3 = internal error, not a signal) and the exact
message text on stderr. The last line is "dynamic: N passed, M failed";
the exit status is 0 only when nothing failed, 77 when no python with
torch is at hand.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from reexec import reexec  # noqa: E402

try:
  import numpy as np
  import torch
except ImportError:
  reexec("NNCC_DYNAMIC_REEXEC", __file__)
  print("skipped: no python with torch and numpy (tried %s, NNCC_PYTHON, "
        "/usr/bin/python3)" % sys.executable)
  sys.exit(77)

sys.path.insert(0, os.path.join(HERE, "..", "ops"))
import check_ops  # noqa: E402

# Models whose input signature can be inferred from the archive: they must
# compile without --input.
CNNS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small",
        "squeezenet1_0", "densenet121", "shufflenet_v2_x0_5",
        "efficientnet_b0", "googlenet", "regnet_y_400mf", "convnext_tiny",
        "mnasnet0_5", "convnet")
BATCHED = ("mlp", "list_out")  # [batch, features] inputs
MUST_COMPILE = CNNS + BATCHED + ("bert",)

# Models for which inferring the inputs may legitimately fail (name -> why).
# Such a model passes its compile case either by compiling (its outputs are
# then checked at the json's shapes on the zoo's own inputs) or by failing
# with the "cannot infer ..." error that asks for --input.
MAY_NOT_INFER = {
  "tensor_ops": "data is only used through repeat/sum/unsqueeze; its dtype "
                "and rank may not be recoverable",
  "losses": "labels is used as one_hot/gather indices; its rank may not be "
            "recoverable",
}

BATCHES = (1, 3, 8)

# Extra spatial sizes (H, W), at the given batch: H and W are symbolic too.
EXTRA_SPATIAL = {
  "resnet18": [(2, (96, 96)), (3, (160, 128))],
  "mobilenet_v2": [(2, (96, 128))],
  "shufflenet_v2_x0_5": [(2, (128, 64))],
}

# Spatial sizes at the edge: PyTorch decides whether they work (resnet18
# does even at 1x1 thanks to its padding and adaptive pool; squeezenet's
# unpadded 7x7 stride-2 conv and ceil-mode pools do not).
TINY = [("resnet18", 2, (8, 8)), ("resnet18", 1, (1, 1)),
        ("squeezenet1_0", 1, (4, 4)), ("squeezenet1_0", 2, (8, 8))]

# (batch, seq) for the BERT-style model compiled without --input. A seq
# longer than the model's position table (64 in make_zoo.py) is not a valid
# input for PyTorch either (embedding index out of range): such a case is
# reported as SKIP, counted in neither total.
BERT_SHAPES = [(1, 5), (3, 64), (2, 200)]

BERT_RANGE_FLAGS = ["--input", "input_ids:i64[b=1..4,s=1..64]",
                    "--input", "attention_mask:i64[b,s]",
                    "--input", "segment_ids:i64[b,s]"]

# Every symbol name nncc may print: an identifier.
NAME = r"[A-Za-z_][A-Za-z0-9_]*"


# ---------------------------------------------------------------------------
# Running nncc
# ---------------------------------------------------------------------------

def run(cmd, timeout):
  """Runs cmd; returns (status, stdout, stderr). status is the exit code,
  a negative signal number, or None on a timeout."""
  try:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
  except subprocess.TimeoutExpired:
    return None, "", "timed out after %ss" % timeout
  except OSError as e:
    return 127, "", str(e)
  return (r.returncode, r.stdout.decode("utf-8", "replace"),
          r.stderr.decode("utf-8", "replace"))


def tail(text, n=3):
  lines = [l for l in text.strip().splitlines() if l.strip()]
  return " | ".join(lines[-n:]) if lines else "(no output)"


def first_error(text):
  """The first "error:" line of text (else its last lines)."""
  for l in text.splitlines():
    if "error:" in l:
      return l.strip()
  return tail(text)


SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
             "internal error")


def describe_status(rc, err):
  """Why a command's status is not a clean one, or None when it is clean
  (an exit status of its own; no signal, timeout or sanitizer report)."""
  if rc is None:
    return "timed out"
  if rc < 0:
    return "killed by signal %d: %s" % (-rc, tail(err))
  if rc >= 128:
    return "exit %d (a crash?): %s" % (rc, tail(err))
  if rc >= 126:
    return "exit %d (could not start): %s" % (rc, tail(err))
  for s in SANITIZER:
    if s in err:
      return "stderr reports %r: %s" % (s, tail(err))
  return None


def expect_error(cmd, needles, timeout):
  """The command must fail cleanly (exit 1 or 2) with every string of
  needles in its stderr. Returns (ok, why)."""
  rc, _, err = run(cmd, timeout)
  bad = describe_status(rc, err)
  if bad:
    return False, bad
  if rc == 0:
    return False, "exit 0, expected an error containing %r" % needles[0]
  if rc not in (1, 2):
    return False, "exit %d (1 or 2 expected): %s" % (rc, tail(err))
  missing = [n for n in needles if n not in err]
  if missing:
    return False, "stderr lacks %r: %s" % (missing[0], tail(err))
  return True, "exit %d: %s" % (rc, first_error(err)[:120])


def compile_model(nncc, pt, so, flags, timeout):
  """nncc pt -o so [flags]. Returns (status, stderr, seconds)."""
  t0 = time.time()
  rc, out, err = run([nncc, pt, "-o", so] + flags, timeout)
  return rc, out + err, time.time() - t0


def run_and_compare(nncc, so, names, arrays, refs, work, timeout):
  """Saves arrays as work/in<i>.npy, runs `nncc run so NAME=FILE...` and
  compares every output with refs (numpy arrays). Returns (ok, why, err)."""
  shutil.rmtree(work, ignore_errors=True)
  outdir = os.path.join(work, "out")
  os.makedirs(outdir)
  cmd = [nncc, "run", so]
  for i, (n, a) in enumerate(zip(names, arrays)):
    path = os.path.join(work, "in%d.npy" % i)
    np.save(path, a)
    cmd.append("%s=%s" % (n, path))
  cmd += ["--out-dir", outdir]
  rc, _, err = run(cmd, timeout)
  bad = describe_status(rc, err)
  if bad:
    return False, "run: " + bad, None
  if rc != 0:
    return False, "run exit %d: %s" % (rc, tail(err)), None
  written = sorted(os.listdir(outdir))
  expected = sorted("output_%d.npy" % j for j in range(len(refs)))
  if written != expected:
    return False, "outputs written %s, expected %s" % (written, expected), None
  worst = 0.0
  whys = []
  for j, ref in enumerate(refs):
    try:
      got = np.load(os.path.join(outdir, "output_%d.npy" % j),
                    allow_pickle=False)
    except Exception as e:  # a malformed .npy is a failure, not a crash
      whys.append("output_%d: unreadable .npy: %s" % (j, e))
      continue
    ok, e, why = check_ops.compare(ref, got)
    if e is not None:
      worst = max(worst, e)
    if not ok:
      whys.append("output_%d: %s" % (j, why))
  return not whys, "; ".join(whys), worst


# ---------------------------------------------------------------------------
# Inputs and references
# ---------------------------------------------------------------------------

def flatten(out):
  if isinstance(out, torch.Tensor):
    return [out]
  if isinstance(out, (tuple, list)):
    return [t for o in out for t in flatten(o)]
  raise TypeError("unexpected output type %r" % type(out))


def to_numpy(t):
  a = t.detach().numpy()
  return a.astype(np.float32) if t.is_floating_point() else a


class Models:
  """torch.jit.load'ed zoo modules, loaded once each."""

  def __init__(self, zoo):
    self.zoo = zoo
    self.cache = {}

  def get(self, name):
    if name not in self.cache:
      self.cache[name] = torch.jit.load(os.path.join(self.zoo, name + ".pt"))
    return self.cache[name]

  def reference(self, name, tensors):
    """PyTorch's outputs as numpy arrays, or the exception it raised."""
    try:
      with torch.no_grad():
        return [to_numpy(t) for t in flatten(self.get(name)(*tensors))]
    except Exception as e:  # the model rejects the shape: reported as such
      return e

  def bert_sizes(self):
    """(vocab, max positions, segment types) read from the bert weights."""
    sd = self.get("bert").state_dict()
    return (sd["embeddings.word_embeddings.weight"].shape[0],
            sd["embeddings.position_embeddings.weight"].shape[0],
            sd["embeddings.token_type_embeddings.weight"].shape[0])


def gen_for(case):
  """A torch generator seeded from the case's name: every case draws its
  own inputs, the same on every run."""
  return torch.Generator().manual_seed(zlib.crc32(case.encode()))


def float_inputs(case, shapes):
  g = gen_for(case)
  return [torch.randn(*s, generator=g) for s in shapes]


def bert_inputs(case, batch, seq, vocab, types):
  """input_ids in [0, vocab), attention_mask of 0/1 with a 1 in every row
  (position 0), segment_ids in [0, types)."""
  g = gen_for(case)
  ids = torch.randint(0, vocab, (batch, seq), generator=g, dtype=torch.long)
  mask = torch.randint(0, 2, (batch, seq), generator=g, dtype=torch.long)
  mask[:, 0] = 1
  seg = torch.randint(0, types, (batch, seq), generator=g, dtype=torch.long)
  return [ids, mask, seg]


def shape_text(shapes):
  return " ".join("[%s]" % ",".join(str(d) for d in s) for s in shapes)


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

class Case:
  """One line of the report: a check run after its model compiled."""

  def __init__(self, label, model, fn):
    self.label = label    # what the PASS/FAIL line says
    self.model = model    # the compile it needs (a key of the builds)
    self.fn = fn          # fn(so) -> (ok, detail); ok None means SKIP


def main(argv):
  ap = argparse.ArgumentParser(description="nncc with symbolic input shapes.")
  ap.add_argument("--nncc", required=True)
  ap.add_argument("--zoo", required=True)
  ap.add_argument("--only", help="comma-separated model names (bert-range "
                  "for the ranged bert build)")
  ap.add_argument("--jobs", type=int, default=2)
  ap.add_argument("--timeout", type=float, default=600,
                  help="seconds per nncc command")
  ap.add_argument("--keep", action="store_true",
                  help="keep the .so files, inputs and outputs")
  args = ap.parse_args(argv)
  t_start = time.time()
  torch.set_num_threads(1)  # the compiles run beside the references

  infos = {}
  for name in MUST_COMPILE + tuple(MAY_NOT_INFER):
    path = os.path.join(args.zoo, name + ".json")
    if os.path.isfile(path):
      with open(path) as fp:
        infos[name] = json.load(fp)
  wanted = set(MUST_COMPILE + tuple(MAY_NOT_INFER) + ("bert-range",))
  if args.only:
    wanted = {n for n in args.only.split(",") if n}
  unknown = wanted - set(MUST_COMPILE) - set(MAY_NOT_INFER) - {"bert-range"}
  missing = [n for n in MUST_COMPILE + tuple(MAY_NOT_INFER)
             if n in wanted and n not in infos]
  if "bert-range" in wanted and "bert" not in infos:
    missing.append("bert")
  if unknown or missing:
    for n in sorted(unknown):
      print("error: %s: not a model of this test" % n, file=sys.stderr)
    for n in missing:
      print("error: %s: not in the zoo %s" % (n, args.zoo), file=sys.stderr)
    print("dynamic: 0 passed, %d failed" % (len(unknown) + len(missing)))
    return 1

  work = tempfile.mkdtemp(prefix="nncc-dynamic-")
  nncc, to = os.path.abspath(args.nncc), args.timeout
  pt = lambda n: os.path.join(args.zoo, n + ".pt")  # noqa: E731

  # --- compiles, started first (slowest first) and run in the background
  builds = {}  # key -> (pt name, flags)
  order = sorted((n for n in infos if n in wanted),
                 key=lambda n: (n != "densenet121", n != "resnet50", n))
  for n in order:
    builds[n] = (n, [])
  if "bert-range" in wanted:
    builds["bert-range"] = ("bert", BERT_RANGE_FLAGS)
  pool = concurrent.futures.ThreadPoolExecutor(max(1, args.jobs))
  compiled = {}
  for key, (n, flags) in builds.items():
    compiled[key] = pool.submit(compile_model, nncc, pt(n),
                                os.path.join(work, key + ".so"), flags, to)

  # --- the cases, with inputs and references made while the compiles run
  models = Models(args.zoo)
  cases = []

  def add(label, model, fn):
    cases.append(Case(label, model, fn))

  def numeric(label, model, pt_name, names, tensors):
    """A case that runs the .so on tensors and compares with PyTorch."""
    ref = models.reference(pt_name, tensors)
    arrays = [t.numpy() for t in tensors]
    d = os.path.join(work, re.sub(r"[^A-Za-z0-9_.-]+", "_", label))

    def fn(so):
      if isinstance(ref, Exception):
        return False, "PyTorch itself raised: %s" % str(ref).splitlines()[-1]
      ok, why, err = run_and_compare(nncc, so, names, arrays, ref, d, to)
      return ok, ("err=%.2g" % err) if ok else why
    add(label, model, fn)

  def tiny(label, model, names, tensors):
    """Matches PyTorch where it computes, else a clean 'at least 1' error."""
    ref = models.reference(model, tensors)
    if not isinstance(ref, Exception):
      numeric(label, model, model, names, tensors)
      return
    d = os.path.join(work, re.sub(r"[^A-Za-z0-9_.-]+", "_", label))

    def fn(so):
      os.makedirs(d, exist_ok=True)
      cmd = [nncc, "run", so]
      for i, (n, t) in enumerate(zip(names, tensors)):
        p = os.path.join(d, "in%d.npy" % i)
        np.save(p, t.numpy())
        cmd.append("%s=%s" % (n, p))
      ok, why = expect_error(cmd + ["--out-dir", d], ["must be at least 1"],
                             to)
      return ok, "an error, as in PyTorch (%s)" % why if ok else why
    add(label, model, fn)

  for n in order:
    info = infos[n]
    names = [i["name"] for i in info["inputs"]]
    base = info["inputs"][0]["shape"]

    def compile_case(so, n=n):
      rc, out, secs = compiled[n].result()
      bad = describe_status(rc, out)
      if bad:
        return False, "compile: " + bad
      if rc == 0:
        return True, "compile=%.1fs" % secs
      if n in MAY_NOT_INFER and rc == 1 and "cannot infer" in out \
          and "--input" in out:
        return True, "cannot infer its inputs (accepted: %s)" % first_error(out)
      return False, "compile exit %d: %s" % (rc, tail(out))
    cases.append(Case("compile %s" % n, None, compile_case))

    if n in CNNS or n in BATCHED:
      shapes = [[b] + base[1:] for b in BATCHES]
      for b, hw in EXTRA_SPATIAL.get(n, []):
        shapes.append([b] + base[1:2] + list(hw))
      for s in shapes:
        label = "run %s %s" % (n, shape_text([s]))
        numeric(label, n, n, names, float_inputs(label, [s]))
      for m, b, hw in TINY:
        if m == n:
          s = [b] + base[1:2] + list(hw)
          label = "tiny %s %s" % (n, shape_text([s]))
          tiny(label, n, names, float_inputs(label, [s]))
    elif n == "bert":
      vocab, maxpos, types = models.bert_sizes()
      for b, s in BERT_SHAPES:
        label = "run bert b=%d s=%d" % (b, s)
        if s > maxpos:
          add(label, n, lambda so, s=s: (
              None, "seq %d exceeds the model's %d position embeddings "
              "(PyTorch raises too)" % (s, maxpos)))
          continue
        numeric(label, n, n, names, bert_inputs(label, b, s, vocab, types))
    else:  # MAY_NOT_INFER: the zoo's own inputs and outputs, if it compiled
      ins, outs = check_ops.case_files(args.zoo, n, info)
      d = os.path.join(work, "run_" + n)
      shp = shape_text([i["shape"] for i in info["inputs"]])

      def zoo_case(so, n=n, names=names, ins=ins, outs=outs, d=d):
        rc, _, _ = compiled[n].result()
        if rc != 0:
          return None, "not compiled (inputs not inferred)"
        arrays = [np.load(p) for p in ins]
        refs = [np.load(p) for p in outs]
        ok, why, err = run_and_compare(nncc, so, names, arrays, refs, d, to)
        return ok, ("err=%.2g" % err) if ok else why
      add("run %s %s" % (n, shp), n, zoo_case)

  if "resnet18" in builds:
    def rank_case(so):
      d = os.path.join(work, "rank")
      os.makedirs(d, exist_ok=True)
      p = os.path.join(d, "x.npy")
      np.save(p, np.zeros((3, 64, 64), np.float32))
      return expect_error([nncc, "run", so, "x=" + p, "--out-dir", d],
                          ["input 0 ('x'): rank 3, the model expects rank 4"],
                          to)
    add("rank resnet18 [3,64,64]", "resnet18", rank_case)

    def inspect_r18(so):
      rc, out, err = run([nncc, "inspect", so], to)
      bad = describe_status(rc, err)
      if bad or rc != 0:
        return False, bad or "exit %d: %s" % (rc, tail(err))
      pat = r"input 0: x: f32\[(%s),3,(%s),(%s)\]" % (NAME, NAME, NAME)
      m = re.search(pat, out)
      if not m:
        line = [l for l in out.splitlines() if "input 0" in l]
        return False, "no line matching %r (got %r)" % (
            pat, line[0].strip() if line else out[-200:])
      if not re.search(r"^symbols:$", out, re.M):
        return False, "no 'symbols:' section"
      for sym in sorted(set(m.groups())):
        if not re.search(r"^\s+%s: \d+\.\.(\d+)?$" % re.escape(sym), out, re.M):
          return False, "symbol %s is not listed under symbols:" % sym
      return True, m.group(0)
    add("inspect resnet18", "resnet18", inspect_r18)

  if "bert-range" in builds:
    vocab, maxpos, types = models.bert_sizes()
    names = ["input_ids", "attention_mask", "segment_ids"]
    for b, s in [(2, 16), (4, 64), (1, 1)]:
      label = "bert-range run b=%d s=%d" % (b, s)
      numeric(label, "bert-range", "bert", names,
              bert_inputs(label, b, s, vocab, types))

    def bert_error(label, arrays, needle):
      d = os.path.join(work, re.sub(r"[^A-Za-z0-9_.-]+", "_", label))

      def fn(so, names=names):
        os.makedirs(d, exist_ok=True)
        cmd = [nncc, "run", so]
        for i, (n, a) in enumerate(zip(names, arrays)):
          p = os.path.join(d, "in%d.npy" % i)
          np.save(p, a)
          cmd.append("%s=%s" % (n, p))
        return expect_error(cmd + ["--out-dir", d], [needle], to)
      add(label, "bert-range", fn)

    ones = lambda b, s, dt=np.int64: np.ones((b, s), dt)  # noqa: E731
    bert_error("bert-range error batch 5", [ones(5, 8)] * 3,
               "input 0 ('input_ids'): dim 0 is 5, outside the range of b "
               "(1..4)")
    bert_error("bert-range error seq 65", [ones(2, 65)] * 3,
               "input 0 ('input_ids'): dim 1 is 65, outside the range of s "
               "(1..64)")
    bert_error("bert-range error [1,5] vs [1,7]",
               [ones(1, 5), ones(1, 7), ones(1, 5)],
               "input 1 ('attention_mask'): dim 1 is 7, but s is 5 "
               "(input 0 'input_ids' dim 1)")
    bert_error("bert-range error f32 input_ids",
               [ones(1, 5, np.float32), ones(1, 5), ones(1, 5)],
               "input 0 ('input_ids'): dtype f32, the model expects i64")

    def inspect_bert(so):
      rc, out, err = run([nncc, "inspect", so], to)
      bad = describe_status(rc, err)
      if bad or rc != 0:
        return False, bad or "exit %d: %s" % (rc, tail(err))
      for pat in (r"^symbols:$", r"^\s+b: 1\.\.4$", r"^\s+s: 1\.\.64$",
                  r"input 0: input_ids: i64\[b,s\]"):
        if not re.search(pat, out, re.M):
          return False, "no line matching %r in:\n%s" % (pat, out)
      return True, "b: 1..4, s: 1..64"
    add("inspect bert-range", "bert-range", inspect_bert)

  # --- run the cases: each waits for its compile; two at a time
  def go(case):
    so = None
    if case.model is not None:
      rc, out, _ = compiled[case.model].result()
      so = os.path.join(work, case.model + ".so")
      if rc != 0 and case.model not in MAY_NOT_INFER:
        return False, "not compiled: %s" % first_error(out)
    try:
      return case.fn(so)
    except Exception as e:  # a bug in a case is a failure, not a traceback
      return False, "%s: %s" % (type(e).__name__, e)

  futures = [pool.submit(go, c) for c in cases]
  passed = failed = skipped = 0
  for case, fut in zip(cases, futures):
    ok, detail = fut.result()
    if ok is None:
      skipped += 1
      tag = "SKIP"
    elif ok:
      passed += 1
      tag = "PASS"
    else:
      failed += 1
      tag = "FAIL"
    print("%s %-42s %s" % (tag, case.label, detail), flush=True)
  pool.shutdown()
  if args.keep:
    print("kept the work folder %s" % work)
  else:
    shutil.rmtree(work, ignore_errors=True)
  if skipped:
    print("%d skipped" % skipped)
  print("took %.0fs" % (time.time() - t_start))
  print("dynamic: %d passed, %d failed" % (passed, failed))
  return 0 if failed == 0 else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
