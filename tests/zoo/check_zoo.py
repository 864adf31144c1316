#!/usr/bin/env python3
"""check_zoo.py - check nncc's import of every model in the zoo.

Usage: check_zoo.py --nncc PATH --zoo DIR [--only NAME,...] [--timeout S]
       check_zoo.py --self-test

The zoo (DIR/<name>.pt + DIR/<name>.json) is written by make_zoo.py. For
each model this script runs the nncc CLI three times and checks:

 (a) import: `nncc MODEL.pt --emit=ir --stop-after=import` prints the IR
     right after import. Every ATen kind the json lists is mapped through
     `nncc --list-aten` (lines "QUALNAME OPNAME") onto nncc op names; a
     kind missing from that table is reported as "not supported by nncc".
     The mapped multiset must equal the multiset of op names in the IR,
     counting only op names that some aten::* / prim::NumToTensor row of
     the table produces (constants, weights, lists and tuples have no ATen
     kind in the json and are left out on both sides).
 (b) shapes: `nncc MODEL.pt --emit=ir --input FLAG...` (the json's flags)
     must print a header whose `-> (...)` types equal the json's outputs,
     written like f32[1,1000] (a 0-dim tensor is f32[]; tuples flatten).
 (c) round trip: that final IR, saved as a .nnir file and printed again
     with `nncc FILE.nnir --emit=ir --passes=none`, comes back byte for byte.

It prints one PASS/FAIL line per model (with the reasons under a FAIL) and
ends with "zoo: N passed, M failed"; the exit status is 0 only when every
model passes. Only the standard library is needed (no torch).
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Kinds make_zoo.py counts besides aten::*; keep in step with make_zoo.py.
EXTRA_KINDS = ("prim::NumToTensor",)

# "  %3 = op(" or "  %3, %4 = op(": the op name is what follows "= ".
NODE_RE = re.compile(r"^\s*%[\w.]+(?:\s*,\s*%[\w.]+)*\s*=\s*([A-Za-z_][\w.:]*)\(")


class CheckError(Exception):
  """Output of nncc that this script cannot make sense of."""


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

def parse_list_aten(text):
  """`nncc --list-aten` output -> {qualname: set of opnames}. A qualname may
  have several rows (aten::mul -> mul for tensors, scalar_mul for ints).
  Blank lines and lines starting with '#' are ignored; anything else must
  be two words."""
  table = collections.defaultdict(set)
  for n, line in enumerate(text.splitlines(), 1):
    line = line.strip()
    if not line or line.startswith("#"):
      continue
    words = line.split()
    if len(words) != 2:
      raise CheckError("--list-aten line %d is not 'QUALNAME OPNAME': %r"
                       % (n, line))
    table[words[0]].add(words[1])
  if not table:
    raise CheckError("--list-aten printed no rows")
  return dict(table)


def counted_kind(kind):
  return kind.startswith("aten::") or kind in EXTRA_KINDS


def split_top(text, sep=","):
  """Splits text at sep where no (), [] or {} is open; strips the parts."""
  parts, depth, cur = [], 0, []
  for ch in text:
    if ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
      if depth < 0:
        raise CheckError("unbalanced brackets in %r" % text)
    if ch == sep and depth == 0:
      parts.append("".join(cur).strip())
      cur = []
    else:
      cur.append(ch)
  if depth != 0:
    raise CheckError("unbalanced brackets in %r" % text)
  last = "".join(cur).strip()
  if last or parts:
    parts.append(last)
  return parts


def matching_close(text, start):
  """Index of the bracket closing the one at text[start]."""
  pairs = {"(": ")", "[": "]", "{": "}"}
  stack = []
  for i in range(start, len(text)):
    ch = text[i]
    if ch in pairs:
      stack.append(pairs[ch])
    elif ch in ")]}":
      if not stack or stack.pop() != ch:
        break
      if not stack:
        return i
  raise CheckError("no closing bracket in %r" % text[start:])


def flatten_types(types):
  """Flattens tuple types, "(A, B)" or "tuple(A, B)", into their elements;
  removes blanks so "f32[1, 10]" compares equal to "f32[1,10]"."""
  out = []
  for t in types:
    t = re.sub(r"\s+", "", t)
    inner = None
    if t.startswith("(") and matching_close(t, 0) == len(t) - 1:
      inner = t[1:-1]
    elif t.startswith("tuple(") and matching_close(t, 5) == len(t) - 1:
      inner = t[6:-1]
    if inner is None:
      out.append(t)
    else:
      out.extend(flatten_types(split_top(inner)))
  return out


def parse_ir(text):
  """IR text -> (inputs, outputs, ops): the header's input declarations as
  written ("%0 x: f32[1,3]"), the flattened output types, and a Counter of
  the op names of every node line."""
  header = None
  ops = collections.Counter()
  for line in text.splitlines():
    s = line.strip()
    if header is None and s.startswith("graph "):
      header = s
      continue
    m = NODE_RE.match(line)
    if m:
      ops[m.group(1)] += 1
  if header is None:
    raise CheckError("no 'graph NAME(...) -> ... {' header in the IR")
  open_paren = header.find("(")
  if open_paren < 0:
    raise CheckError("malformed graph header: %r" % header)
  close = matching_close(header, open_paren)
  inputs = split_top(header[open_paren + 1:close])
  rest = header[close + 1:].strip()
  if not rest.startswith("->") or not rest.endswith("{"):
    raise CheckError("graph header lacks '-> TYPES {': %r" % header)
  outs = rest[2:-1].strip()
  if not outs:
    raise CheckError("graph header has no output types: %r" % header)
  return inputs, flatten_types([outs]), ops


def fmt_type(dtype, shape):
  return "%s[%s]" % (dtype, ",".join(str(d) for d in shape))


# ---------------------------------------------------------------------------
# Comparisons (pure functions: each returns a list of failure lines)
# ---------------------------------------------------------------------------

def op_groups(table):
  """Partitions the counted kinds of the table and the op names they map to
  into connected groups: aten::mul -> {mul, scalar_mul} and aten::add ->
  {add, scalar_add} are two groups; aten::size and aten::len, both -> size,
  are one. Counts can only be compared per group, since the json records
  kinds, not which overload each use resolved to. Returns {op: group id}
  and {kind: group id}."""
  parent = {}

  def find(x):
    while parent.setdefault(x, x) != x:
      parent[x] = parent[parent[x]]
      x = parent[x]
    return x

  for kind, ops in table.items():
    if counted_kind(kind):
      for op in ops:
        parent[find(("k", kind))] = find(("o", op))
  op_group, kind_group = {}, {}
  for node in list(parent):
    (kind_group if node[0] == "k" else op_group)[node[1]] = find(node)
  return op_group, kind_group


def compare_ops(aten_ops, table, ir_ops):
  """Checks (a). aten_ops: {kind: count} from the json; table: --list-aten
  as parse_list_aten returns it; ir_ops: Counter of the IR's op names."""
  errors = []
  for kind, n in sorted(aten_ops.items()):
    if kind not in table:
      errors.append("not supported by nncc: %s (%d uses)" % (kind, n))
  if errors:
    return errors
  op_group, kind_group = op_groups(table)
  want = collections.Counter()
  for kind, n in aten_ops.items():
    want[kind_group[kind]] += n
  got = collections.Counter()
  for op, n in ir_ops.items():
    if op in op_group:
      got[op_group[op]] += n
  diffs = [g for g in set(got) | set(want) if got[g] != want[g]]
  members = {g: sorted(op for op, og in op_group.items() if og == g)
             for g in diffs}
  if diffs:
    errors.append("import op counts differ (op: nncc vs torch):")
    for g in sorted(diffs, key=lambda g: members[g]):
      ops = members[g]
      kinds = sorted(k for k in aten_ops if kind_group[k] == g)
      label = "/".join(ops)
      if len(ops) > 1:
        label += " (%s)" % ", ".join("%s %d" % (op, ir_ops[op]) for op in ops)
      errors.append("  %-24s %5d vs %5d%s" % (
          label, got[g], want[g],
          "  (" + ", ".join("%s %d" % (k, aten_ops[k]) for k in kinds) + ")"
          if kinds else ""))
  return errors


def compare_outputs(want_outputs, got_types):
  """Checks (b): json outputs against the header's flattened types."""
  want = [fmt_type(o["dtype"], o["shape"]) for o in want_outputs]
  if want != got_types:
    return ["output types differ: nncc -> (%s), torch -> (%s)"
            % (", ".join(got_types), ", ".join(want))]
  return []


def compare_text(first, second):
  """Checks (c): the reprinted IR must equal the printed one byte for byte."""
  if first == second:
    return []
  a, b = first.splitlines(), second.splitlines()
  for i in range(max(len(a), len(b))):
    la = a[i] if i < len(a) else "<end of text>"
    lb = b[i] if i < len(b) else "<end of text>"
    if la != lb:
      return ["round trip differs at line %d:" % (i + 1),
              "  printed:   %s" % la, "  reprinted: %s" % lb]
  return ["round trip differs in line endings or the final newline"]


# ---------------------------------------------------------------------------
# Running nncc
# ---------------------------------------------------------------------------

class Nncc:
  def __init__(self, path, timeout):
    self.path = path
    self.timeout = timeout

  def run(self, args):
    """Runs nncc; returns stdout, or raises CheckError naming the command,
    the exit status and the end of stderr."""
    cmd = [self.path] + args
    shown = " ".join(["nncc"] + args)
    try:
      p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=self.timeout)
    except subprocess.TimeoutExpired:
      raise CheckError("`%s` ran past %ds" % (shown, self.timeout))
    except OSError as e:
      raise CheckError("`%s` did not start: %s" % (shown, e))
    if p.returncode != 0:
      err = p.stderr.decode("utf-8", "replace").strip().splitlines()
      status = ("killed by signal %d" % -p.returncode if p.returncode < 0
                else "exit %d" % p.returncode)
      tail = "".join("\n    " + l for l in err[-8:])
      raise CheckError("`%s` failed (%s)%s" % (shown, status, tail))
    return p.stdout.decode("utf-8", "replace")


def check_model(nncc, table, zoo, info, tmpdir):
  """Runs checks (a), (b), (c) on one model; returns the failure lines."""
  name = info["name"]
  pt = os.path.join(zoo, name + ".pt")
  errors = []
  try:  # (a)
    text = nncc.run([pt, "--emit=ir", "--stop-after=import"])
    _, _, ops = parse_ir(text)
    errors += compare_ops(info["aten_ops"], table, ops)
  except CheckError as e:
    errors.append("import: %s" % e)
  final = None
  try:  # (b)
    args = [pt, "--emit=ir"]
    for inp in info["inputs"]:
      args += ["--input", inp["flag"]]
    final = nncc.run(args)
    _, outs, _ = parse_ir(final)
    errors += compare_outputs(info["outputs"], outs)
  except CheckError as e:
    errors.append("shapes: %s" % e)
  if final is not None:  # (c)
    path = os.path.join(tmpdir, name + ".nnir")
    with open(path, "w", encoding="utf-8", newline="") as f:
      f.write(final)
    try:
      again = nncc.run([path, "--emit=ir", "--passes=none"])
      errors += compare_text(final, again)
    except CheckError as e:
      errors.append("round trip: %s" % e)
  return errors


def load_zoo(zoo, only):
  names = sorted(f[:-5] for f in os.listdir(zoo) if f.endswith(".json"))
  if only:
    wanted = [n for n in only.split(",") if n]
    missing = [n for n in wanted if n not in names]
    if missing:
      raise CheckError("not in %s: %s" % (zoo, ", ".join(missing)))
    names = wanted
  if not names:
    raise CheckError("no models (*.json) in %s" % zoo)
  infos = []
  for n in names:
    with open(os.path.join(zoo, n + ".json"), encoding="utf-8") as f:
      infos.append(json.load(f))
  return infos


def check_all(nncc_path, zoo, only, timeout, out=sys.stdout):
  """The whole check; returns the exit status."""
  try:
    infos = load_zoo(zoo, only)
  except (CheckError, OSError, ValueError) as e:
    print("check_zoo.py: error: %s" % e, file=out)
    return 2
  nncc = Nncc(nncc_path, timeout)
  try:
    table = parse_list_aten(nncc.run(["--list-aten"]))
  except CheckError as e:
    for info in infos:
      print("FAIL %s: no op table: %s" % (info["name"], e), file=out)
    print("zoo: 0 passed, %d failed" % len(infos), file=out)
    return 1
  passed = failed = 0
  tmpdir = tempfile.mkdtemp(prefix="nncc-zoo-")
  try:
    for info in infos:
      errors = check_model(nncc, table, zoo, info, tmpdir)
      if errors:
        failed += 1
        print("FAIL %s" % info["name"], file=out)
        for e in errors:
          print("    " + e.replace("\n", "\n    "), file=out)
      else:
        passed += 1
        print("PASS %s" % info["name"], file=out)
      out.flush()
  finally:
    shutil.rmtree(tmpdir, ignore_errors=True)
  print("zoo: %d passed, %d failed" % (passed, failed), file=out)
  return 0 if failed == 0 else 1


# ---------------------------------------------------------------------------
# Self-test: the parsers on hand-written IR, then a whole run against a
# stand-in nncc written in Python.
# ---------------------------------------------------------------------------

SAMPLE_TABLE = """\
# qualname opname
aten::_convolution convolution
aten::conv2d convolution
aten::relu relu
aten::relu_ relu
aten::max_pool2d max_pool2d
aten::max aten_max_dim
aten::size size
aten::Int int
prim::NumToTensor num_to_tensor
aten::view view
aten::mul mul
aten::mul scalar_mul
aten::len size
prim::ListConstruct list_construct
"""

SAMPLE_IMPORT = """\
graph forward(%0 x: f32[?,?,?,?]) -> (?) {
  %1 = weight("conv.weight") : f32[4,1,3,3]
  %2 = constant(1) : int
  %3 = list_construct(%2, %2) : list<int>
  %4 = constant(none) : none
  %5 = convolution(%0, %1, %4, %3, %3, %3, %2, %3, %2) : ?
  %6 = relu(%5) : ?
  %7 = relu(%6) : ?
  %8, %9 = aten_max_dim(%7, %2) : ?, ?
  %10 = constant(0) : int
  %11 = size(%8, %10) : int
  %12 = num_to_tensor(%11) : ?
  %13 = int(%12) : int
  %14 = constant(-1) : int
  %15 = list_construct(%13, %14) : list<int>
  %16 = view(%8, %15) : ?
  %17 = scalar_mul(%13, %13) : int
  %18 = mul(%16, %16) : ?
  return %18, %9
}
"""

SAMPLE_AATEN = {"aten::_convolution": 1, "aten::relu": 1, "aten::relu_": 1,
                "aten::max": 1, "aten::size": 1, "prim::NumToTensor": 1,
                "aten::Int": 1, "aten::view": 1, "aten::mul": 2}

SAMPLE_FINAL = """\
graph forward(%0 x: f32[1,1,5,5]) -> (f32[1,12], tuple(i64[1,3,3], f32[])) {
  %1 = weight("conv.weight") : f32[4,1,3,3]
  %2 = convolution(%0, %1) : f32[1,4,3,3]
  return %2
}
"""

FAKE_NNCC = r'''
import sys
args = sys.argv[1:]
if args == ["--list-aten"]:
  sys.stdout.write(TABLE)
elif "--stop-after=import" in args:
  sys.stdout.write(IMPORT)
elif "--passes=none" in args:
  text = open(args[0]).read()
  sys.stdout.write(text.replace("MANGLE", "mangle"))
elif "--input" in args:
  if args[0].endswith("bad.pt"):
    sys.stderr.write("nncc: error: bad.pt:1:1: no\n")
    sys.exit(1)
  sys.stdout.write(FINAL)
else:
  sys.exit(2)
'''


def self_test():
  fails = []

  def expect(cond, what):
    if not cond:
      fails.append(what)

  table = parse_list_aten(SAMPLE_TABLE)
  expect(table["aten::relu_"] == {"relu"} and len(table) == 13 and
         table["aten::mul"] == {"mul", "scalar_mul"}, "table parse")
  try:
    parse_list_aten("aten::x\n")
    expect(False, "one-word table line accepted")
  except CheckError:
    pass

  inputs, outs, ops = parse_ir(SAMPLE_IMPORT)
  expect(inputs == ["%0 x: f32[?,?,?,?]"], "inputs %r" % inputs)
  expect(outs == ["?"], "outputs %r" % outs)
  expect(ops == collections.Counter({
      "constant": 4, "list_construct": 2, "weight": 1, "convolution": 1,
      "relu": 2, "aten_max_dim": 1, "size": 1, "num_to_tensor": 1,
      "int": 1, "view": 1, "mul": 1, "scalar_mul": 1}), "ops %r" % ops)

  expect(compare_ops(SAMPLE_AATEN, table, ops) == [], "ops should match")
  got = compare_ops(dict(SAMPLE_AATEN, **{"aten::relu": 2}), table, ops)
  expect(got == ["import op counts differ (op: nncc vs torch):",
                 "  relu                         2 vs     3  "
                 "(aten::relu 2, aten::relu_ 1)"], "diff %r" % got)
  got = compare_ops(dict(SAMPLE_AATEN, **{"aten::mul": 1, "aten::len": 1}),
                    table, ops)
  expect(got == ["import op counts differ (op: nncc vs torch):",
                 "  mul/scalar_mul (mul 1, scalar_mul 1)     2 vs     1  "
                 "(aten::mul 1)",
                 "  size                         1 vs     2  "
                 "(aten::len 1, aten::size 1)"], "diff %r" % got)
  got = compare_ops(dict(SAMPLE_AATEN, **{"aten::foo": 3}), table, ops)
  expect(got == ["not supported by nncc: aten::foo (3 uses)"], "unsup %r" % got)

  _, outs, _ = parse_ir(SAMPLE_FINAL)
  expect(outs == ["f32[1,12]", "i64[1,3,3]", "f32[]"], "final %r" % outs)
  want = [{"dtype": "f32", "shape": [1, 12]}, {"dtype": "i64", "shape": [1, 3, 3]},
          {"dtype": "f32", "shape": []}]
  expect(compare_outputs(want, outs) == [], "outputs should match")
  got = compare_outputs(want[:1], ["f32[1, 12]"])
  expect(got == ["output types differ: nncc -> (f32[1, 12]), "
                 "torch -> (f32[1,12])"], "out diff %r" % got)
  got = flatten_types(["(f32[1, 12], tuple(i64[3], (f32[])), int)"])
  expect(got == ["f32[1,12]", "i64[3]", "f32[]", "int"], "flatten %r" % got)
  _, outs, _ = parse_ir("graph g(%0 a: f32[2]) -> f32[2] {\n  return %0\n}\n")
  expect(outs == ["f32[2]"], "bare output %r" % outs)
  for bad in ("no header\n", "graph g(%0 a: f32[2] -> f32[2] {\n",
              "graph g(%0 a: f32[2]) {\n"):
    try:
      parse_ir(bad)
      expect(False, "malformed header accepted: %r" % bad)
    except CheckError:
      pass

  expect(compare_text("a\nb\n", "a\nb\n") == [], "same text")
  expect(compare_text("a\nb\n", "a\nc\n")[0] == "round trip differs at line 2:",
         "text diff")
  expect(compare_text("a\n", "a") ==
         ["round trip differs in line endings or the final newline"], "eol")

  # A whole run: three models against a stand-in nncc. "good" passes;
  # "wrong" lists an op the table lacks and a wrong output shape; "bad"
  # makes nncc fail and has a round trip that changes a line.
  tmp = tempfile.mkdtemp(prefix="nncc-zoo-selftest-")
  try:
    fake = os.path.join(tmp, "nncc")
    with open(fake, "w") as f:
      f.write("#!%s\n" % sys.executable)
      f.write("TABLE = %r\nIMPORT = %r\nFINAL = %r\n"
              % (SAMPLE_TABLE, SAMPLE_IMPORT, SAMPLE_FINAL))
      f.write(FAKE_NNCC)
    os.chmod(fake, 0o755)
    zoo = os.path.join(tmp, "zoo")
    os.mkdir(zoo)
    base = {"inputs": [{"name": "x", "dtype": "f32", "shape": [1, 1, 5, 5],
                        "flag": "x:f32[1,1,5,5]"}],
            "outputs": want, "aten_ops": SAMPLE_AATEN, "torch_version": "t"}
    models = {
      "good": base,
      "wrong": dict(base, aten_ops=dict(SAMPLE_AATEN, **{"aten::foo": 2}),
                    outputs=want[:2]),
      "bad": base,
    }
    for name, info in models.items():
      with open(os.path.join(zoo, name + ".json"), "w") as f:
        json.dump(dict(info, name=name), f)
      open(os.path.join(zoo, name + ".pt"), "w").close()

    class Out:
      text = ""

      def write(self, s):
        Out.text += s

      def flush(self):
        pass

    rc = check_all(fake, zoo, None, 60, out=Out())
    expect(rc == 1, "run rc %d" % rc)
    want_text = (
      "FAIL bad\n"
      "    shapes: `nncc %s --emit=ir --input x:f32[1,1,5,5]` failed (exit 1)\n"
      "        nncc: error: bad.pt:1:1: no\n"
      "PASS good\n"
      "FAIL wrong\n"
      "    not supported by nncc: aten::foo (2 uses)\n"
      "    output types differ: nncc -> (f32[1,12], i64[1,3,3], f32[]), "
      "torch -> (f32[1,12], i64[1,3,3])\n"
      "zoo: 1 passed, 2 failed\n") % os.path.join(zoo, "bad.pt")
    expect(Out.text == want_text, "run output:\n%s" % Out.text)
    Out.text = ""
    rc = check_all(fake, zoo, "good", 60, out=Out())
    expect(rc == 0 and Out.text == "PASS good\nzoo: 1 passed, 0 failed\n",
           "--only good: %d %r" % (rc, Out.text))
    # A round trip that changes the text is caught.
    final2 = SAMPLE_FINAL.replace("conv.weight", "MANGLE")
    with open(fake) as f:
      src = f.read()
    with open(fake, "w") as f:
      f.write(src.replace(repr(SAMPLE_FINAL), repr(final2)))
    Out.text = ""
    rc = check_all(fake, zoo, "good", 60, out=Out())
    expect(rc == 1 and "round trip differs at line 2:" in Out.text,
           "round trip run: %r" % Out.text)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)

  for f in fails:
    print("self-test FAILED: %s" % f)
  print("self-test: %s" % ("ok" if not fails else "%d failures" % len(fails)))
  return 1 if fails else 0


def main(argv):
  ap = argparse.ArgumentParser(description="Check nncc against the model zoo.")
  ap.add_argument("--nncc", help="path to the nncc binary")
  ap.add_argument("--zoo", help="folder written by make_zoo.py")
  ap.add_argument("--only", help="comma-separated model names")
  ap.add_argument("--timeout", type=int, default=300,
                  help="seconds allowed per nncc run (default 300)")
  ap.add_argument("--self-test", action="store_true",
                  help="test this script's parsing and checks, then exit")
  args = ap.parse_args(argv)
  if args.self_test:
    return self_test()
  if not args.nncc or not args.zoo:
    ap.error("--nncc and --zoo are required")
  return check_all(args.nncc, args.zoo, args.only, args.timeout)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
