#!/usr/bin/env python3
"""bench.py - time nncc-compiled models against libtorch and ONNX Runtime,
and nncc's GEMM against OpenBLAS, interleaved in one run.

Usage: bench.py --nncc PATH --work DIR --timer LIBTORCH_TIMER
                [--nncc-timer PATH] [--ort-timer JS] [--node NODE]
                [--node-path DIR] [--gemm-timer PATH]
                [--models a,b,...] [--gemm all|none|MxKxN,...]
                [--threads 1,2] [--rounds R] [--runs N] [--quick]
                [--results FILE|-]

Normally started by bench/bench.sh, which builds the timers and installs
ONNX Runtime first. Steps:

 1. bench/make_models.py traces the models (the zoo's definitions) into
    DIR/models, exports them to ONNX (opset 13) and saves inputs and
    PyTorch's outputs; GEMM cases are Linear(K, N, bias=False) on [M, K].
 2. nncc compiles each (`nncc M.pt -o M.so --input ...`: wall time and .so
    size are reported) and `nncc run` must reproduce PyTorch's outputs
    (the tolerance of tests/ops).
 3. For each model and thread count, R rounds; each round runs the
    libtorch timer, the ORT timer and the nncc timer, one process each,
    N timed calls after a warm-up. Every timer prints its per-call times;
    a figure in the table is the median over all calls of all rounds.
    Peak RSS is each timer process's ru_maxrss (the largest over rounds).
    The ORT timer also checks its first output against PyTorch's.
 4. GEMM: per case, R rounds of OpenBLAS's cblas_sgemm (bench/gemm_timer.c,
    one thread) then nncc's compiled Linear (one thread); GFLOP/s from the
    medians.

It prints the tables (markdown) and writes them to --results (default
bench/RESULTS.md next to this script; '-' writes nothing). The issue's
targets are shown beside the ratios. Exit status: 0 when every model
compiled, ran and matched PyTorch, 1 otherwise (missed targets do not
change it).
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "ops"))
import check_ops  # noqa: E402

LAT_RE = re.compile(r"latency_ms min=([\d.eE+-]+) median=([\d.eE+-]+) "
                    r"max=([\d.eE+-]+) runs=(\d+) threads=(\d+)")
TIMES_RE = re.compile(r"^times_ms((?: [\d.eE+-]+)+)\s*$", re.M)
HOP_RE = re.compile(r"node_hop_ms median=([\d.eE+-]+)")
ERR_RE = re.compile(r"max_abs_err ([\d.eE+-]+) max_abs_ref ([\d.eE+-]+)")
CFG_RE = re.compile(r"^openblas (.*)$", re.M)

# name, timed calls per round, target (the peer and the ratio nncc/peer
# must not exceed), what it is. The order is the table's.
MODELS = [
  ("resnet18", 15, ("ORT", 1.0), "torchvision resnet18, f32[1,3,224,224]"),
  ("resnet50", 8, ("ORT", 1.0), "torchvision resnet50, f32[1,3,224,224]"),
  ("mobilenet_v2", 30, ("ORT", 1.0),
   "torchvision mobilenet_v2, f32[1,3,224,224]"),
  ("convnet", 400, ("libtorch", 0.5), "the seeds' ConvNet, f32[1,1,28,28]"),
  ("bert_1x8", 300, ("ORT", 0.8),
   "BERT-style classifier (L=2, H=128), batch 1 x seq 8"),
  ("bert_8x128", 25, ("ORT", 0.8), "the same, batch 8 x seq 128"),
  ("lstm_8x64", 20, ("ORT", 1.0),
   "text classifier: embedding 128, 2 bidirectional LSTM layers of 256, i64[8,64]"),
  ("mlp", 1000, ("libtorch", 0.5), "MLP 64-128-64-10, f32[4,64]"),
  ("tiny", 3000, None, "x + y on f32[4]: per-call overhead"),
]
MODEL_NAMES = [m[0] for m in MODELS]

# (M, K, N): square ones must reach 0.9x OpenBLAS, skinny ones beat it.
GEMM_CASES = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
              (1, 1024, 1024), (1, 2048, 2048), (8, 1024, 1024),
              (16, 2048, 2048), (32, 1024, 1024), (64, 512, 512),
              (64, 2048, 2048)]
SQUARE_TARGET, SKINNY_TARGET = 0.9, 1.0


class Timing:
  """What one timer process reported."""

  def __init__(self):
    self.times = []      # every timed call, ms
    self.medians = []    # each round's median, ms
    self.rss_kib = 0     # largest ru_maxrss over the rounds
    self.extra = {}      # node_hop_ms, max_abs_err, max_abs_ref, openblas
    self.error = None    # why a round failed (then no more rounds)

  def median(self):
    if self.times:
      return statistics.median(self.times)
    return statistics.median(self.medians) if self.medians else None


def run_timer(cmd, env, timeout, into):
  """Runs one timer process; adds its times, rss and extras to `into`
  (a Timing). Returns False (and sets into.error) when it failed."""
  with tempfile.TemporaryFile() as out:
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    try:
      _, status, usage = os.wait4(p.pid, 0)
    finally:
      killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read().decode("utf-8", "replace")
  lat = LAT_RE.search(text)
  if p.returncode != 0 or not lat:
    into.error = "%s exit %d: %s" % (os.path.basename(cmd[0]) if
                                     "node" not in cmd[0] else "ort_timer.js",
                                     p.returncode, check_ops.last_lines(text))
    return False
  into.medians.append(float(lat.group(2)))
  t = TIMES_RE.search(text)
  if t:
    into.times.extend(float(v) for v in t.group(1).split())
  into.rss_kib = max(into.rss_kib, usage.ru_maxrss)
  for rx, keys in ((HOP_RE, ["node_hop_ms"]),
                   (ERR_RE, ["max_abs_err", "max_abs_ref"])):
    mt = rx.search(text)
    if mt:
      for k, v in zip(keys, mt.groups()):
        into.extra[k] = float(v)
  mt = CFG_RE.search(text)
  if mt:
    into.extra["openblas"] = mt.group(1).strip()
  return True


def thread_env(threads, node_path):
  env = dict(os.environ)
  # libtorch parallelizes with OpenMP (at::set_num_threads, oneDNN) and
  # calls BLAS (OpenBLAS through libblas.so.3 once libopenblas-dev is in)
  # from one thread. Debian's OpenBLAS runs its own pthreads, which spin
  # after each call: with 2 of them beside 2 OpenMP threads on 2 cores,
  # resnet18 took 950 ms instead of 30-50. So BLAS gets one thread.
  env["OMP_NUM_THREADS"] = str(threads)
  env["OPENBLAS_NUM_THREADS"] = "1"
  # OpenBLAS picks its kernel for the CPU itself (an OPENBLAS_CORETYPE in
  # the environment would force one; RESULTS.md says when it was set).
  env.pop("OPENBLAS_CORETYPE", None)
  if node_path:
    env["NODE_PATH"] = node_path
  return env


def compile_and_check(args, mdir, name):
  """Compiles a model with nncc and checks it against PyTorch. Returns
  (info, inputs, row) where row holds compile_s, size, ok, note, so."""
  with open(os.path.join(mdir, name + ".json")) as fp:
    info = json.load(fp)
  inputs, refs = check_ops.case_files(mdir, name, info)
  work = os.path.join(args.work, "nncc", name)
  res = check_ops.check_model(args.nncc, os.path.join(mdir, name + ".pt"),
                              info, inputs, refs, work, check_ops.DEFAULT_TOL,
                              1800, named=False)
  so = os.path.join(work, name + ".so")
  row = {"compile_s": res["compile_s"], "ok": res["ok"], "so": so,
         "size": os.path.getsize(so) if os.path.isfile(so) else None,
         "runnable": res["stage"] == "compare",
         "note": "" if res["ok"] else "%s: %s" % (res["stage"], res["why"])}
  # The same model without run-time checks: timed too when its code differs
  # (the model has checks), to measure what they cost.
  row["so_nocheck"] = None
  if row["runnable"]:
    nc = os.path.join(work, name + "_nocheck.so")
    flags = ["--input=" + i["flag"] for i in info["inputs"]]
    r = subprocess.run([args.nncc, os.path.join(mdir, name + ".pt"), "-o", nc,
                        "--no-runtime-checks"] + flags, capture_output=True)
    if r.returncode == 0:
      with open(so, "rb") as a, open(nc, "rb") as b:
        if a.read() != b.read():
          row["so_nocheck"] = nc
  return info, inputs, row


def nncc_cmd(args, so, inputs, runs, warmup, threads):
  if args.nncc_timer:
    return [args.nncc_timer, so] + inputs + [
        "--runs", str(runs), "--warmup", str(warmup), "--threads",
        str(threads), "--times"]
  # `nncc run --bench`: one warm-up, the median only (3 decimals)
  return [args.nncc, "run", so] + inputs + [
      "--out-dir", os.path.join(os.path.dirname(so), "bench.out"),
      "--threads", str(threads), "--bench", str(runs)]


def scaled_runs(args, default):
  if args.runs:
    return args.runs
  return max(3, default // 4) if args.quick else default


def warmup_for(runs):
  return max(2, min(20, runs // 5))


def bench_model(args, mdir, name, runs_default):
  """Compiles, checks and times one model. Returns its result dict."""
  info, inputs, row = compile_and_check(args, mdir, name)
  pt = os.path.join(mdir, name + ".pt")
  onnx = os.path.join(mdir, name + ".onnx")
  runs = scaled_runs(args, runs_default)
  warm = warmup_for(runs)
  row.update({"name": name, "runs": runs, "by_threads": {}})
  for threads in args.threads:
    env = thread_env(threads, args.node_path)
    peers = {"libtorch": Timing(), "ORT": Timing(), "nncc": Timing(),
             "nncc_nocheck": Timing()}
    cmds = {
      "libtorch": [args.timer, pt] + inputs + [
          "--runs", str(runs), "--warmup", str(warm), "--threads",
          str(threads), "--times"],
      "ORT": [args.node, args.ort_timer, onnx] + inputs + [
          "--runs", str(runs), "--warmup", str(warm), "--threads",
          str(threads), "--times", "--ref",
          os.path.join(mdir, name + ".out0.npy")],
      "nncc": nncc_cmd(args, row["so"], inputs, runs, warm, threads),
      "nncc_nocheck": (nncc_cmd(args, row["so_nocheck"], inputs, runs, warm,
                                threads) if row["so_nocheck"] else None),
    }
    if not cmds["nncc_nocheck"]:
      del cmds["nncc_nocheck"]
    if not args.ort_timer:
      del cmds["ORT"]
    if not row["runnable"]:
      del cmds["nncc"]
      cmds.pop("nncc_nocheck", None)
    for _ in range(args.rounds):
      for peer, cmd in cmds.items():
        if peers[peer].error is None:
          run_timer(cmd, env, 1800, peers[peer])
    row["by_threads"][threads] = peers
    print("  %-13s threads=%d  %s" % (name, threads, "  ".join(
        "%s %s" % (p, fmt_ms(t.median())) for p, t in peers.items())),
        file=sys.stderr, flush=True)
  return row


def cpu_info():
  """(model name, flags set, AMD family/model text) from /proc/cpuinfo."""
  try:
    with open("/proc/cpuinfo") as f:
      text = f.read()
  except OSError:
    return "?", set(), ""

  def field(key):
    mt = re.search(r"^%s\s*:\s*(.*)$" % key, text, re.M)
    return mt.group(1).strip() if mt else ""
  fam = field("cpu family")
  zen = {"23": "Zen/Zen 2", "25": "Zen 3/Zen 4", "26": "Zen 5"}
  ident = "family %s model %s" % (fam, field("model"))
  if field("vendor_id") == "AuthenticAMD" and fam in zen:
    ident += ": " + zen[fam]
  return field("model name") or "?", set(field("flags").split()), ident


def has_avx512():
  return "avx512f" in cpu_info()[1]


def gemm_runs(args, m, k, n):
  """Calls per round: about 0.4 s of OpenBLAS work (100 GFLOP/s, or
  15 GB/s for the weight when M is small), 5..300."""
  est_ms = max(2.0 * m * k * n / 1e8, 4.0 * k * n / 15e6)
  runs = int(min(300, max(5, 400 / est_ms)))
  return scaled_runs(args, runs) if not args.runs else args.runs


def bench_gemm(args, mdir, case):
  m, k, n = case
  name = "gemm_%dx%dx%d" % case
  info, inputs, row = compile_and_check(args, mdir, name)
  runs = gemm_runs(args, m, k, n)
  warm = warmup_for(runs)
  env = thread_env(1, None)
  # Also OpenBLAS's AVX2 kernel, forced: the figure to compare with where
  # OpenBLAS's own choice uses AVX-512.
  env_avx2 = dict(env, OPENBLAS_CORETYPE="Haswell")
  blas, blas2, nn = Timing(), Timing(), Timing()
  gcmd = [args.gemm_timer, str(m), str(k), str(n), "--runs", str(runs),
          "--warmup", str(warm), "--threads", "1", "--times"]
  cmds = [(blas, gcmd, env)]
  if has_avx512():
    cmds.append((blas2, gcmd, env_avx2))
  if row["runnable"]:
    cmds.append((nn, nncc_cmd(args, row["so"], inputs, runs, warm, 1), env))
  for _ in range(args.rounds):
    for t, cmd, e in cmds:
      if t.error is None:
        run_timer(cmd, e, 1800, t)
  row.update({"name": name, "case": case, "flops": info["flops"],
              "blas": blas, "blas2": blas2, "nncc": nn, "runs": runs})
  print("  %-20s OpenBLAS %s  OpenBLAS AVX2 %s  nncc %s"
        % (name, fmt_ms(blas.median()), fmt_ms(blas2.median()),
           fmt_ms(nn.median())), file=sys.stderr, flush=True)
  return row


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------

def fmt_ms(v):
  if v is None:
    return "-"
  if v >= 100:
    return "%.1f" % v
  if v >= 1:
    return "%.2f" % v
  if v >= 0.01:
    return "%.4f" % v
  return "%.5f" % v


def fmt_ratio(a, b):
  return "%.2fx" % (a / b) if a and b else "-"


def machine_lines(args, gemm_rows):
  cpu, have, ident = cpu_info()
  flags = ", ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16")
                    if f in have)
  load = "%s (%s at the end)" % (args.load_start, load_average())

  def out(cmd):
    try:
      return subprocess.run(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, timeout=60).stdout \
          .decode("utf-8", "replace").strip()
    except Exception:  # a missing tool only blanks its field
      return "?"

  nncc_v = out([args.nncc, "--version"]).splitlines()
  torch_v = out([sys.executable, "-c", "import torch; print(torch.__version__)"])
  ort_v = "?"
  try:
    with open(os.path.join(args.node_path or "", "onnxruntime-node",
                           "package.json")) as f:
      ort_v = json.load(f)["version"]
  except (OSError, ValueError, KeyError):
    pass
  node_v = out([args.node, "--version"]) if args.ort_timer else "-"
  blas = "?"
  for row in gemm_rows:
    blas = row["blas"].extra.get("openblas", blas)
  libblas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
  lt_blas = ("OpenBLAS" if "openblas" in libblas else
             "reference BLAS" if "/blas/" in libblas else libblas)
  return [
    "Machine: %s (%s), %d cores (%s); load average (1, 5, 15 min) at "
    "the start %s: other work on the machine slows the 2-thread runs most."
    % (cpu, ident, os.cpu_count() or 0, flags or "no AVX2", load),
    "Versions: %s; torch/libtorch %s (BLAS: %s, one thread; convolutions: oneDNN); "
    "ONNX Runtime %s (npm onnxruntime-node, Node %s); %s."
    % (nncc_v[0] if nncc_v else "nncc ?", torch_v, lt_blas, ort_v, node_v,
       blas if blas != "?" else "OpenBLAS not measured"),
  ] + ([
    "**The machine was busy** (load average above the core count): the "
    "figures, the 2-thread ones most, are disturbed; run again when it "
    "is quieter."] if busy(args.load_start, os.cpu_count()) or
    busy(load_average(), os.cpu_count()) else []) + ([
    "The environment sets OPENBLAS_CORETYPE=%s; the benchmark unsets it "
    "for libtorch and OpenBLAS so that OpenBLAS picks its kernel itself."
    % os.environ["OPENBLAS_CORETYPE"]] if os.environ.get("OPENBLAS_CORETYPE")
    else [])


def load_average():
  try:
    with open("/proc/loadavg") as f:
      return " ".join(f.read().split()[:3])
  except OSError:
    return "?"


def busy(load, cores):
  try:
    return float(load.split()[0]) > (cores or 1)
  except (ValueError, IndexError):
    return False


def target_text(target):
  if not target:
    return "-", None
  peer, ratio = target
  return "<= %.1fx %s" % (ratio, peer), (peer, ratio)


def render(args, rows, gemm_rows, started, elapsed):
  lines = []
  add = lines.append
  add("# nncc benchmark results")
  add("")
  add("Generated by `bench/bench.sh` on %s (the run took %.0f s)."
      % (started.strftime("%Y-%m-%d %H:%M"), elapsed))
  add("")
  for ln in machine_lines(args, gemm_rows):
    add(ln)
  add("")
  add("Each figure is the median over every timed call of %d rounds; in a "
      "round the libtorch timer, the ONNX Runtime timer and the nncc timer "
      "run one after the other, each in its own process, each doing a "
      "warm-up and then the calls counted in `runs`. Machines here are "
      "noisy: compare ratios from one run." % args.rounds)
  add("")
  if rows:
    add("## Models: latency (ms)")
    add("")
    add("| model | thr | runs | libtorch | ORT | nncc | nncc/libtorch "
        "| nncc/ORT | target | met |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
      target = dict((m[0], m[2]) for m in MODELS)[row["name"]]
      ttext, t = target_text(target)
      for threads, peers in sorted(row["by_threads"].items()):
        lt, ort, nn = (peers[p].median() for p in ("libtorch", "ORT", "nncc"))
        met = "-"
        if t:
          base = lt if t[0] == "libtorch" else ort
          if nn and base:
            met = "yes" if nn / base <= t[1] else "**no**"
        add("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            row["name"], threads, row["runs"], fmt_ms(lt), fmt_ms(ort),
            fmt_ms(nn), fmt_ratio(nn, lt), fmt_ratio(nn, ort), ttext, met))
    add("")
    add("## Models: compile, size, memory")
    add("")
    add("| model | what | nncc compile s | .so KiB | peak RSS MiB libtorch "
        "| ORT | nncc | nncc vs PyTorch | ORT vs PyTorch (max abs err) |")
    add("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
      what = dict((m[0], m[3]) for m in MODELS)[row["name"]]
      rss = {}
      for p in ("libtorch", "ORT", "nncc"):
        v = max((pp[p].rss_kib for pp in row["by_threads"].values()),
                default=0)
        rss[p] = "%.0f" % (v / 1024.0) if v else "-"
      ort_err = "-"
      for peers in row["by_threads"].values():
        e = peers["ORT"].extra
        if "max_abs_err" in e:
          ort_err = "%.2g (max abs ref %.2g)" % (e["max_abs_err"],
                                                 e["max_abs_ref"])
      add("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
          row["name"], what,
          "%.2f" % row["compile_s"] if row["compile_s"] is not None else "-",
          "%d" % (row["size"] // 1024) if row["size"] is not None else "-",
          rss["libtorch"], rss["ORT"], rss["nncc"],
          "ok" if row["ok"] else "**FAILED**", ort_err))
    add("")
    add("Peak RSS is the timer process's (libtorch: the C++ timer with the "
        "TorchScript module; ORT: Node with the session; nncc: the C "
        "timer with the .so); the `tiny` row is each runtime's floor.")
    add("")
    checked = [r for r in rows if r.get("so_nocheck")]
    add("## Run-time checks: their cost")
    add("")
    if checked:
      add("Models whose code checks index values (embedding, gather, "
          "index, ... where PyTorch raises), timed in the same rounds "
          "compiled with and without `--no-runtime-checks`; every other "
          "model's code has no check (its two builds are byte-identical).")
      add("")
      add("| model | thr | nncc ms | no checks ms | checks cost |")
      add("|---|---|---|---|---|")
      for row in checked:
        for threads, peers in sorted(row["by_threads"].items()):
          a, b = peers["nncc"].median(), peers["nncc_nocheck"].median()
          add("| %s | %d | %s | %s | %s |" % (
              row["name"], threads, fmt_ms(a), fmt_ms(b),
              "%+.1f%%" % ((a / b - 1) * 100) if a and b else "-"))
    else:
      add("No model of this run has run-time checks in its code.")
    add("")
    tiny = [r for r in rows if r["name"] == "tiny"]
    if tiny:
      add("## Per-call overhead (`tiny`)")
      add("")
      for threads, peers in sorted(tiny[0]["by_threads"].items()):
        hop = peers["ORT"].extra.get("node_hop_ms")
        add("- %d thread%s: libtorch %s µs, ONNX Runtime through Node %s µs "
            "(of which the event-loop hop onnxruntime-node adds around the "
            "native run: %s µs), nncc %s µs."
            % (threads, "" if threads == 1 else "s",
               fmt_us(peers["libtorch"].median()), fmt_us(peers["ORT"].median()),
               fmt_us(hop), fmt_us(peers["nncc"].median())))
      add("")
      add("The ORT figures include Node's per-call cost (the binding, "
          "tensor wrapping, the hop), so for sub-millisecond models "
          "nncc/ORT is flattering to nncc by about that much; the nncc "
          "timer calls nncc_session_run directly (clock reads included).")
      add("")
  if gemm_rows:
    add("## GEMM: nncc against OpenBLAS sgemm, 1 thread")
    add("")
    add("C[M,N] = A[M,K] W[N,K]^T: OpenBLAS `cblas_sgemm` (row-major, W "
        "transposed) against nncc's compile of `Linear(K, N, bias=False)` "
        "on f32[M,K] (the weight is a constant nncc may lay out at compile "
        "time; OpenBLAS packs it on every call). \"OpenBLAS\" runs the "
        "kernel OpenBLAS picks for this CPU (named in the versions line); "
        "\"AVX2\" is the same library forced to its AVX2 kernel "
        "(`OPENBLAS_CORETYPE=Haswell`). The target is the issue's: at "
        "least 0.9x OpenBLAS for the square sizes, faster for the skinny "
        "ones; \"met\" is judged against both (OpenBLAS / AVX2).")
    add("")
    add("| M | K | N | runs | OpenBLAS ms | AVX2 ms | nncc ms "
        "| OpenBLAS GFLOP/s | AVX2 GFLOP/s | nncc GFLOP/s "
        "| speed nncc/OpenBLAS | nncc/AVX2 | target | met | compile s |")
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def gflops(flops, ms):
      return flops / (ms * 1e6) if ms else None

    for row in gemm_rows:
      m, k, n = row["case"]
      b, b5, c = (row[p].median() for p in ("blas", "blas2", "nncc"))
      gb, gb5, gc = (gflops(row["flops"], v) for v in (b, b5, c))
      square = m >= 256
      goal = SQUARE_TARGET if square else SKINNY_TARGET
      ttext = (">= %.1fx" if square else "> %.1fx") % goal

      def met(ref):
        if not (ref and gc):
          return "-"
        ok = gc / ref >= goal if square else gc / ref > goal
        return "yes" if ok else "**no**"

      def num(v):
        return "%.1f" % v if v else "-"

      note = "" if row["ok"] else " (**FAILED check**)"
      add("| %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s "
          "| %s | %s / %s | %s%s |" % (
              m, k, n, row["runs"], fmt_ms(b), fmt_ms(b5), fmt_ms(c),
              num(gb), num(gb5), num(gc),
              "%.3fx" % (gc / gb) if gb and gc else "-",
              "%.3fx" % (gc / gb5) if gb5 and gc else "-", ttext,
              met(gb), met(gb5),
              "%.2f" % row["compile_s"] if row["compile_s"] is not None
              else "-", note))
    add("")
  notes = []
  for row in rows + gemm_rows:
    if row["note"]:
      notes.append("- %s: nncc %s" % (row["name"], row["note"]))
    timings = ([row["blas"], row["blas2"], row["nncc"]] if "blas" in row
               else
               [t for peers in row["by_threads"].values()
                for t in peers.values()])
    for t in timings:
      if t.error:
        notes.append("- %s: %s" % (row["name"], t.error))
  if notes:
    add("## Problems")
    add("")
    lines.extend(sorted(set(notes)))
    add("")
  return "\n".join(lines)


def fmt_us(ms):
  return "%.2f" % (ms * 1000.0) if ms is not None else "-"


def parse_gemm(text):
  if text == "all":
    return list(GEMM_CASES)
  if text == "none":
    return []
  cases = []
  for part in text.split(","):
    mt = re.match(r"^(\d+)x(\d+)x(\d+)$", part.strip())
    if not mt:
      raise argparse.ArgumentTypeError("bad GEMM case %r (MxKxN)" % part)
    cases.append(tuple(int(v) for v in mt.groups()))
  return cases


def main(argv):
  ap = argparse.ArgumentParser(
      description="nncc vs libtorch and ONNX Runtime; nncc GEMM vs OpenBLAS.")
  ap.add_argument("--nncc", required=True)
  ap.add_argument("--work", required=True)
  ap.add_argument("--timer", required=True, help="built libtorch_timer")
  ap.add_argument("--nncc-timer", help="built nncc_timer (else nncc run "
                  "--bench, which reports medians to a microsecond)")
  ap.add_argument("--ort-timer", help="ort_timer.js (else no ORT column)")
  ap.add_argument("--node", default="node")
  ap.add_argument("--node-path", help="node_modules holding onnxruntime-node")
  ap.add_argument("--gemm-timer", help="built gemm_timer (else no GEMM)")
  ap.add_argument("--models", default=",".join(MODEL_NAMES),
                  help="comma-separated, from: " + ",".join(MODEL_NAMES))
  ap.add_argument("--gemm", default="all", help="all, none or MxKxN,...")
  ap.add_argument("--threads", default="1,2", help="e.g. 1,2")
  ap.add_argument("--rounds", type=int, default=4)
  ap.add_argument("--runs", type=int, default=0,
                  help="timed calls per round for every model (default: "
                  "per model)")
  ap.add_argument("--quick", action="store_true",
                  help="a quarter of the calls and 2 rounds")
  ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
  args = ap.parse_args(argv)
  names = [n for n in args.models.split(",") if n]
  bad = [n for n in names if n not in MODEL_NAMES]
  if bad:
    ap.error("unknown model(s): %s" % ", ".join(bad))
  names = [n for n in MODEL_NAMES if n in names]  # the table's order
  gemm = parse_gemm(args.gemm) if args.gemm_timer else []
  args.threads = [int(t) for t in str(args.threads).split(",") if t]
  if args.quick and args.rounds == 4:
    args.rounds = 2
  if args.rounds < 1 or not args.threads or min(args.threads) < 1:
    ap.error("--rounds and --threads must be >= 1")

  started = datetime.datetime.now()
  args.load_start = load_average()
  t0 = time.time()
  mdir = os.path.join(args.work, "models")
  gemm_names = ["gemm_%dx%dx%d" % c for c in gemm]
  print("building the models in %s" % mdir, file=sys.stderr, flush=True)
  r = subprocess.run([sys.executable, os.path.join(HERE, "make_models.py"),
                      mdir] + names + gemm_names)
  if r.returncode != 0:
    print("bench.py: error: make_models.py failed", file=sys.stderr)
    return 1

  rows, gemm_rows = [], []
  runs_of = dict((m[0], m[1]) for m in MODELS)
  for name in names:
    rows.append(bench_model(args, mdir, name, runs_of[name]))
  for case in gemm:
    gemm_rows.append(bench_gemm(args, mdir, case))

  text = render(args, rows, gemm_rows, started, time.time() - t0)
  print()
  print(text)
  if args.results != "-":
    with open(args.results + ".tmp", "w") as f:
      f.write(text)
    os.replace(args.results + ".tmp", args.results)
    print("wrote %s" % args.results, file=sys.stderr)
  return 0 if all(r["ok"] for r in rows + gemm_rows) else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
