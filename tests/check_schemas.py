#!/usr/bin/env python3
"""check_schemas.py — checks frontend/schemas.def against the local torch.

For every SCHEMA(qualname, op, "signature", "mapping") row it checks that:
  - the local torch registers an overload of `qualname` with the same
    arguments: names, order, keyword-only split, types (alias annotations
    ignored, SymInt taken as int) and defaults (compared as values, so
    1e-05 equals 1.0000000000000001e-05 and 'none' equals "none");
    rows preceded by a comment starting with "legacy:" are exempt from the
    comparison, but torch must still register some op of that name, or the
    name must be in LEGACY_ALLOWLIST below with a reason;
  - `op` is a row of ir/ops.def, the mapping has exactly its nin items,
    each item names an argument of the signature or is label=LITERAL with a
    Python literal and a label equal to the ops.def doc's operand name at
    that position;
  - no row repeats another, and within one qualname no overload taking a
    tensor comes after one that takes none (the lowering tries rows in
    order and scalar overloads must not shadow tensor ones).
Prints one line per failing row and, last, "schemas: N passed, M failed".
Exit status 0 when all pass, 1 on any failure, 77 when no interpreter with
torch can be found.

  usage: check_schemas.py SCHEMAS_DEF OPS_DEF [--coverage]

--coverage also lists the ops.def ops that no row maps to (informational).
When the running interpreter lacks torch, the script re-runs itself under
$NNCC_PYTHON, /usr/bin/python3 or python3, whichever imports torch first.
"""

import ast
import os
import re
import shutil
import subprocess
import sys

# Names a legacy row may use although the local torch registers no op of
# that name at all: qualname -> where the spelling is documented.
LEGACY_ALLOWLIST = {
}

# ops.def rows the lowering builds directly; they need no schema row.
LOWERING_MADE = {
    "CONSTANT", "WEIGHT", "LIST_CONSTRUCT", "LIST_UNPACK",
    "TUPLE_CONSTRUCT", "TUPLE_UNPACK", "TUPLE_GET",
}

TENSOR_TYPES = re.compile(r"^Tensor(\?|\[\]|\?\[\])?\??$")


def ensure_torch():
  """Imports torch, re-running this script under another interpreter when
  the current one lacks it. Returns the torch module."""
  try:
    import torch  # noqa: F401
    return torch
  except ImportError:
    pass
  if os.environ.get("NNCC_CHECK_SCHEMAS_REEXEC"):
    print("skipped: no python3 with torch")
    sys.exit(77)
  candidates = [os.environ.get("NNCC_PYTHON", ""), "/usr/bin/python3",
                shutil.which("python3") or ""]
  me = os.path.realpath(sys.executable)
  for py in candidates:
    if not py or not os.path.exists(py) or os.path.realpath(py) == me:
      continue
    ok = subprocess.run([py, "-c", "import torch"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL).returncode == 0
    if ok:
      env = dict(os.environ, NNCC_CHECK_SCHEMAS_REEXEC="1")
      os.execve(py, [py, os.path.abspath(__file__)] + sys.argv[1:], env)
  print("skipped: no python3 with torch")
  sys.exit(77)


# ---- small parsers ------------------------------------------------------

def split_top(text, sep):
  """Splits text at `sep` characters that are outside (), [], {} and
  quotes. sep is "," or " " (any run of whitespace)."""
  parts, depth, quote, cur = [], 0, None, []
  i = 0
  while i < len(text):
    c = text[i]
    if quote:
      cur.append(c)
      if c == "\\" and i + 1 < len(text):
        cur.append(text[i + 1])
        i += 1
      elif c == quote:
        quote = None
    elif c in "\"'":
      quote = c
      cur.append(c)
    elif c in "([{":
      depth += 1
      cur.append(c)
    elif c in ")]}":
      depth -= 1
      cur.append(c)
    elif depth == 0 and (c == sep or (sep == " " and c.isspace())):
      parts.append("".join(cur))
      cur = []
    else:
      cur.append(c)
    i += 1
  parts.append("".join(cur))
  if sep == " ":
    return [p for p in parts if p]
  return [p.strip() for p in parts]


def c_unescape(s):
  """Undoes the escapes a C string literal in schemas.def may use."""
  return re.sub(r'\\(["\\])', r"\1", s)


ALIAS = re.compile(r"\((?:[a-z](?:\|[a-z])*!?(?:\s*->\s*\*)?|\*)\)")


def norm_type(t):
  """A type with alias annotations removed and SymInt read as int."""
  t = ALIAS.sub("", t.strip())
  t = re.sub(r"\bSymInt\b", "int", t)
  return re.sub(r"\s+", " ", t)


class Arg:
  def __init__(self, typ, name, default, kwonly):
    self.typ = typ            # type as written
    self.name = name          # argument name
    self.default = default    # default as written, or None when absent
    self.kwonly = kwonly      # declared after `*`

  def __repr__(self):
    d = "" if self.default is None else "=" + self.default
    return "%s%s %s%s" % ("*, " if self.kwonly else "", self.typ, self.name, d)


def parse_args(sig):
  """Parses an argument list "Tensor self, *, Scalar alpha=1" into Args.
  Raises ValueError on malformed text."""
  args, kwonly = [], False
  if not sig.strip():
    return args
  for item in split_top(sig, ","):
    if item == "*":
      if kwonly:
        raise ValueError("two `*` markers")
      kwonly = True
      continue
    default = None
    eq = split_top(item, "=")
    if len(eq) > 2:
      raise ValueError("malformed argument %r" % item)
    if len(eq) == 2:
      item, default = eq[0].strip(), eq[1].strip()
      if not default:
        raise ValueError("empty default in %r" % item)
    pieces = item.rsplit(None, 1)
    if len(pieces) != 2 or not re.match(r"^[A-Za-z_]\w*$", pieces[1]):
      raise ValueError("malformed argument %r" % item)
    args.append(Arg(pieces[0].strip(), pieces[1], default, kwonly))
  names = [a.name for a in args]
  if len(set(names)) != len(names):
    raise ValueError("repeated argument name")
  return args


def literal(text):
  """The value of a Python literal as (ok, value)."""
  try:
    return True, ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return False, None


def value_key(v):
  """A comparison key that keeps True apart from 1 and None apart from 0."""
  if v is None or isinstance(v, bool):
    return ("const", v)
  if isinstance(v, (int, float)):
    return ("num", float(v))
  if isinstance(v, str):
    return ("str", v)
  if isinstance(v, (list, tuple)):
    return ("list", tuple(value_key(x) for x in v))
  return ("other", repr(v))


def same_default(a, b):
  if a is None or b is None:
    return a is None and b is None
  oka, va = literal(a)
  okb, vb = literal(b)
  if oka and okb:
    return value_key(va) == value_key(vb)
  return a.replace("'", '"') == b.replace("'", '"')


def literal_ok(v):
  if v is None or isinstance(v, (bool, int, float, str)):
    return True
  if isinstance(v, list):
    return all(x is None or isinstance(x, (bool, int, float)) for x in v)
  return False


# ---- ops.def ------------------------------------------------------------

OP_ROW = re.compile(
    r'^OP\(\s*(\w+)\s*,\s*"([^"]*)"\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\w+)'
    r'\s*,\s*([^,]+?)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)\s*$')


def doc_operands(doc):
  """Operand names from an ops.def doc "(x, w, bias?, stride:list<int>) ->
  ...": a list of sets of accepted names ("src|value" gives both), or None
  when the doc has no leading operand list."""
  if not doc.startswith("("):
    return None
  depth = 0
  for i, c in enumerate(doc):
    depth += c == "("
    depth -= c == ")"
    if depth == 0:
      inner = doc[1:i]
      break
  else:
    return None
  if not inner.strip():
    return []
  names = []
  for item in split_top(inner, ","):
    item = item.split(":", 1)[0].strip()
    names.append({n.strip().rstrip("?") for n in item.split("|")})
  return names


def parse_ops(path):
  ops, order = {}, []
  with open(path, encoding="utf-8") as f:
    for ln, line in enumerate(f, 1):
      if not line.startswith("OP("):
        continue
      m = OP_ROW.match(line.strip())
      if not m:
        sys.exit("%s:%d: cannot parse OP row" % (path, ln))
      ident, _name, nin, _nout, _fuse, _flags, _shape, _lower, doc = m.groups()
      ops[ident] = {"nin": int(nin), "operands": doc_operands(c_unescape(doc))}
      order.append(ident)
  if not ops:
    sys.exit("%s: no OP rows" % path)
  return ops, order


# ---- schemas.def --------------------------------------------------------

STR = r'"((?:[^"\\]|\\.)*)"'
TOKEN = re.compile(
    r"(?P<comment>/\*.*?\*/)"
    r"|(?P<row>SCHEMA\(\s*" + STR + r"\s*,\s*(\w+)\s*,\s*" + STR +
    r"\s*,\s*" + STR + r"\s*\))"
    r"|(?P<space>\s+)", re.S)


class Row:
  def __init__(self, line, qual, op, sig, mapping, legacy):
    self.line = line          # line number in schemas.def
    self.qual = qual          # "aten::add"
    self.op = op              # "ADD"
    self.sig = sig            # unescaped signature text
    self.mapping = mapping    # unescaped mapping text
    self.legacy = legacy      # the legacy comment, or None


def parse_schemas(path):
  """Returns (rows, errors); errors are messages for text that is neither a
  comment nor a SCHEMA row."""
  with open(path, encoding="utf-8") as f:
    text = f.read()
  rows, errors, pos, legacy = [], [], 0, None
  while pos < len(text):
    m = TOKEN.match(text, pos)
    line = text.count("\n", 0, pos) + 1
    if not m:
      snippet = text[pos:pos + 40].split("\n")[0]
      errors.append("%s:%d: not a SCHEMA row or comment: %s" %
                    (path, line, snippet))
      nl = text.find("\n", pos)
      pos = len(text) if nl < 0 else nl + 1
      continue
    if m.group("comment"):
      body = m.group("comment")[2:-2].strip()
      if body.startswith("legacy:"):
        legacy = body
    elif m.group("row"):
      qual, op, sig, mapping = m.group(3, 4, 5, 6)
      rows.append(Row(line, qual, op, c_unescape(sig), c_unescape(mapping),
                      legacy))
      legacy = None
    pos = m.end()
  return rows, errors


# ---- the checks ---------------------------------------------------------

def registered_schemas(torch):
  """qualname -> list of (overload name, [Arg]) from the local torch."""
  reg = {}
  for s in torch._C._jit_get_all_schemas():
    text = str(s)
    open_ = text.index("(")
    close = text.rindex(") -> ") if ") -> " in text else text.rindex(")")
    try:
      args = parse_args(text[open_ + 1:close])
    except ValueError:
      continue
    reg.setdefault(s.name, []).append((s.overload_name, args))
  return reg


def diff_args(mine, theirs):
  """The first difference between two argument lists, or None."""
  for i, (a, b) in enumerate(zip(mine, theirs)):
    if a.name != b.name:
      return "argument %d is %r, torch has %r" % (i, a.name, b.name)
    if norm_type(a.typ) != norm_type(b.typ):
      return "%s: type %r, torch has %r" % (a.name, a.typ, b.typ)
    if a.kwonly != b.kwonly:
      return "%s: keyword-only %s, torch says %s" % (a.name, a.kwonly,
                                                     b.kwonly)
    if not same_default(a.default, b.default):
      return "%s: default %s, torch has %s" % (a.name, a.default, b.default)
  if len(mine) != len(theirs):
    return "%d arguments, torch has %d" % (len(mine), len(theirs))
  return None


def check_signature(row, args, reg):
  """An error message, or None when the row matches a registered schema."""
  overloads = reg.get(row.qual)
  if row.legacy:
    if overloads or row.qual in LEGACY_ALLOWLIST:
      return None
    return ("legacy row, but torch registers no %s and it is not in "
            "LEGACY_ALLOWLIST" % row.qual)
  if not overloads:
    return "torch registers no op named %s" % row.qual
  best = None
  for oname, theirs in overloads:
    d = diff_args(args, theirs)
    if d is None:
      return None
    # Prefer the overload agreeing on the most leading argument names.
    score = 0
    for a, b in zip(args, theirs):
      if a.name != b.name:
        break
      score += 1
    score = score * 2 + (len(args) == len(theirs))
    if best is None or score > best[0]:
      best = (score, oname, d)
  _, oname, d = best
  return "no overload of %s matches; nearest %s%s: %s" % (
      row.qual, row.qual, "." + oname if oname else "", d)


def check_mapping(row, args, ops):
  """Error messages about the mapping of one row."""
  errs = []
  op = ops.get(row.op)
  if op is None:
    return ["op %s is not in ops.def" % row.op]
  if op["nin"] < 0:
    return ["op %s is variadic; the lowering builds it directly" % row.op]
  items = split_top(row.mapping, " ")
  if len(items) != op["nin"]:
    errs.append("mapping has %d items, %s takes %d operands" %
                (len(items), row.op, op["nin"]))
  names = {a.name for a in args}
  seen = set()
  for i, item in enumerate(items):
    head = split_top(item, "=")
    if len(head) == 2:
      label, lit = head
      if not re.match(r"^[A-Za-z_]\w*$", label):
        errs.append("item %r: bad label" % item)
        continue
      ok, v = literal(lit)
      if not ok or not literal_ok(v):
        errs.append("item %r: %r is not a supported literal" % (item, lit))
      want = op["operands"]
      if want is not None and i < len(want) and label not in want[i]:
        errs.append("item %r: operand %d of %s is %s" %
                    (item, i, row.op, "|".join(sorted(want[i]))))
    elif len(head) == 1:
      if item not in names:
        errs.append("item %r names no argument of the signature" % item)
      elif item in seen:
        errs.append("argument %r mapped twice" % item)
      seen.add(item)
    else:
      errs.append("item %r: malformed" % item)
  return errs


def takes_tensor(args):
  return any(TENSOR_TYPES.match(norm_type(a.typ)) for a in args)


def main(argv):
  flags = [a for a in argv if a.startswith("--")]
  paths = [a for a in argv if not a.startswith("--")]
  if len(paths) != 2 or any(f != "--coverage" for f in flags):
    sys.stderr.write("usage: check_schemas.py SCHEMAS_DEF OPS_DEF "
                     "[--coverage]\n")
    return 2
  torch = ensure_torch()
  schemas_path, ops_path = paths
  ops, op_order = parse_ops(ops_path)
  rows, errors = parse_schemas(schemas_path)
  reg = registered_schemas(torch)
  for e in errors:
    print(e)
  passed, failed = 0, len(errors)
  seen_sigs = {}
  scalar_seen = {}   # qualname -> line of the first tensor-free row
  for row in rows:
    where = "%s:%d: %s -> %s" % (schemas_path, row.line, row.qual, row.op)
    errs = []
    try:
      args = parse_args(row.sig)
    except ValueError as e:
      args = None
      errs.append("signature: %s" % e)
    if args is not None:
      e = check_signature(row, args, reg)
      if e:
        errs.append(e)
      errs += check_mapping(row, args, ops)
      key = (row.qual, tuple((norm_type(a.typ), a.name, a.kwonly)
                             for a in args))
      if key in seen_sigs:
        errs.append("repeats the row at line %d" % seen_sigs[key])
      seen_sigs.setdefault(key, row.line)
      if takes_tensor(args):
        if row.qual in scalar_seen:
          errs.append("tensor overload after the scalar overload at line %d"
                      % scalar_seen[row.qual])
      else:
        scalar_seen.setdefault(row.qual, row.line)
    if errs:
      failed += 1
      for e in errs:
        print("%s: %s" % (where, e))
    else:
      passed += 1
  if "--coverage" in flags:
    mapped = {r.op for r in rows}
    missing = [o for o in op_order if o not in mapped]
    print("coverage: %d of %d ops.def ops have schema rows" %
          (len(op_order) - len(missing), len(op_order)))
    for o in missing:
      note = " (built by the lowering)" if o in LOWERING_MADE else ""
      print("  no row: %s%s" % (o, note))
  print("schemas: %d passed, %d failed" % (passed, failed))
  return 0 if failed == 0 else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
