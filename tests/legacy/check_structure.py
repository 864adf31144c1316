#!/usr/bin/env python3
"""check_structure.py - check that archives written by write_legacy.py are
shaped like the real legacy archives PyTorch 1.0-1.1 wrote.

Usage: check_structure.py --reference REAL.pt ARCHIVE.pt...
       check_structure.py --reference REAL.pt --self-test

REAL.pt is a real 2019 file (tch-rs_foo_legacy_2019.pt: it has tensors and
an attribute). Each ARCHIVE's model.json must have the same top-level keys
in the same order, and every field the reference has must have the same
kind of value wherever it appears (int64 values as strings of digits,
"dims" a list of such strings, "dataType" an enum name, ...). Fields the
reference lacks must be ones of torch.ModelDef that the small real file
has no use for (a ModuleDef's "submodules" and "parameters"). Besides
model.json: one top folder; "version" first and "1"; model.json last;
every data.key present and big enough for its dims; every code file
opens with `op_version_set = 0` and has top-level defs and no classes;
attributes.pkl a protocol-2 tuple. Real files pass too (--self-test checks
that the reference does and that broken copies of it fail). Prints one
line per problem and "structure: N archives ok, M bad"; exit status 0 when
all are ok.
"""

import argparse
import json
import re
import sys
import zipfile

ENUMS = {"FLOAT": 4, "INT64": 8, "INT32": 4, "INT16": 2, "INT8": 1,
         "UINT8": 1, "BYTE": 1, "BOOL": 1, "FLOAT16": 2, "DOUBLE": 8}

# ModuleDef fields a module may have beyond what the reference shows, with
# their kinds (relative to a module).
MODULE_EXTRA = {
    "submodules": "array",
    "submodules[]": "object",
    "parameters": "array",
    "parameters[]": "object",
    "parameters[].isBuffer": "bool",
    "parameters[].tensorId": "int64",
    "parameters[].name": "str",
    "attributes": "array",
    "attributes[]": "object",
    "attributes[].type": "str",
    "attributes[].name": "str",
    "attributes[].id": "int64",
    "torchscriptArena": "object",
    "torchscriptArena.key": "str",
    "name": "str",
    "optimize": "bool",
}


def kind(v):
  if isinstance(v, bool):
    return "bool"
  if isinstance(v, str):
    return "int64" if re.fullmatch(r"-?\d+", v) else "str"
  if isinstance(v, (int, float)):
    return "number"
  if isinstance(v, list):
    return "array"
  if isinstance(v, dict):
    return "object"
  return "null"


def fields(v, path=""):
  """(pattern, kind) for every value; array indices become [], and a
  module's path is relative to "mainModule" (submodules fold into it)."""
  out = [(path, kind(v))] if path else []
  if isinstance(v, dict):
    for k, x in v.items():
      out += fields(x, path + "." + k if path else k)
  elif isinstance(v, list):
    for x in v:
      out += fields(x, path + "[]")
  return out


def module_relative(pattern):
  """mainModule.submodules[].submodules[].name -> (True, "name")."""
  if not pattern.startswith("mainModule"):
    return False, pattern
  rest = pattern[len("mainModule"):]
  while True:
    m = re.match(r"\.submodules\[\](.*)", rest)
    if not m or not m.group(1):
      break
    rest = m.group(1)
  return True, rest.lstrip(".")


def check_archive(path, ref_model, problems):
  before = len(problems)

  def bad(msg):
    line = "%s: %s" % (path, msg)
    if line not in problems:
      problems.append(line)

  z = zipfile.ZipFile(path)
  names = z.namelist()
  tops = {n.split("/")[0] for n in names}
  if len(tops) != 1:
    bad("entries under %d top folders %s" % (len(tops), sorted(tops)))
    return False
  p = names[0].split("/")[0] + "/"
  if names[0] != p + "version" or z.read(names[0]).strip() != b"1":
    bad("the first entry is not version = 1")
  if names[-1] != p + "model.json":
    bad("model.json is not the last entry")
  model = json.loads(z.read(p + "model.json"))

  # Keys and kinds against the reference.
  # Empty repeated fields are left out: a model without tensors has no
  # "tensors" key.
  if list(model) != [k for k in ref_model if k in model or k != "tensors"]:
    bad("top-level keys %s, reference %s" % (list(model), list(ref_model)))
  ref_kinds = dict(fields(ref_model))
  ref_module = {}
  for pat, k in ref_kinds.items():
    is_mod, rel = module_relative(pat)
    if is_mod and rel:
      ref_module[rel] = k
  for pat, k in fields(model):
    is_mod, rel = module_relative(pat)
    if is_mod and rel:
      want = ref_module.get(rel, MODULE_EXTRA.get(rel))
    else:
      want = ref_kinds.get(pat)
      if pat == "tensors" or pat.startswith("tensors[]"):
        # A file may have tensors when the reference has none.
        want = want or {"tensors": "array", "tensors[]": "object"}.get(pat)
    if want is None:
      bad("field %s is not in the reference" % pat)
    elif want != k and not (want == "str" and k == "int64"):  # name "0"
      bad("field %s is a %s, the reference has a %s" % (pat, k, want))

  # Tensors: data present and large enough.
  for i, t in enumerate(model.get("tensors", [])):
    if t.get("dataType") not in ENUMS:
      bad("tensors[%d].dataType %r is not an enum name" % (i, t.get("dataType")))
      continue
    if "dims" in t and len(t["dims"]) != len(t.get("strides", [])):
      bad("tensors[%d]: dims and strides differ in length" % i)
    numel = 1
    for d in t.get("dims", []):
      numel *= int(d)
    key = p + t["data"]["key"]
    if not re.fullmatch(r"tensors/\d+", t["data"]["key"]) or key not in names:
      bad("tensors[%d].data.key %r is missing" % (i, t["data"]["key"]))
    elif z.getinfo(key).file_size < numel * ENUMS[t["dataType"]]:
      bad("tensors[%d]: %s is too small" % (i, key))

  # Code files and attributes.pkl.
  def walk(md):
    yield md
    for s in md.get("submodules", []):
      yield from walk(s)
  for md in walk(model["mainModule"]):
    key = md.get("torchscriptArena", {}).get("key")
    if key is None:
      continue
    if p + key not in names:
      bad("code file %s is missing" % key)
      continue
    text = z.read(p + key).decode("utf-8")
    if not text.startswith("op_version_set = 0\n"):
      bad("%s does not open with op_version_set = 0" % key)
    if re.search(r"^class ", text, re.M) or not re.search(r"^def \w+\(self", text, re.M):
      bad("%s: expected top-level defs and no class" % key)
    for m in re.finditer(r"CONSTANTS\.c(\d+)", text):
      if int(m.group(1)) >= len(model.get("tensors", [])):
        bad("%s: %s is beyond tensors" % (key, m.group(0)))
  if p + "attributes.pkl" in names:
    a = z.read(p + "attributes.pkl")
    if not (a.startswith(b"\x80\x02(") and a.endswith(b"t.")):
      bad("attributes.pkl is not a protocol-2 tuple")
  return len(problems) == before


def self_test(reference):
  """Archives made from the reference with one thing wrong must each fail
  with the expected problem; the reference itself must pass."""
  import os
  import tempfile
  with zipfile.ZipFile(reference) as z:
    entries = [(i.filename, z.read(i)) for i in z.infolist()]
  p = entries[0][0].split("/")[0] + "/"
  model = json.loads(dict(entries)[p + "model.json"])

  def mutated(fn):
    m = json.loads(json.dumps(model))
    es = [list(e) for e in entries]
    fn(m, es)
    for e in es:
      if e[0] == p + "model.json":
        e[1] = json.dumps(m).encode()
    return es

  def code(es, text):
    for e in es:
      if "/code/" in e[0]:
        e[1] = text.encode()

  cases = {
      "field tensors[].dims[] is a number, the reference has a int64":
          lambda m, es: m["tensors"][0].update(dims=[1]),
      "field tensors[].offset is a number, the reference has a int64":
          lambda m, es: m["tensors"][0].update(offset=0),
      "tensors[0].dataType 'Float' is not an enum name":
          lambda m, es: m["tensors"][0].update(dataType="Float"),
      "field mainModule.parameter is not in the reference":
          lambda m, es: m["mainModule"].update(parameter=[]),
      "model.json is not the last entry":
          lambda m, es: es.append(es.pop(0)),
      "expected top-level defs and no class":
          lambda m, es: code(es, "op_version_set = 0\nclass Foo(Module):\n  def forward(self):\n    return 1\n"),
  }
  failures = 0
  with tempfile.TemporaryDirectory() as d:
    for want, fn in cases.items():
      path = os.path.join(d, "case.pt")
      with zipfile.ZipFile(path, "w") as z:
        for name, data in mutated(fn):
          z.writestr(name, data)
      problems = []
      check_archive(path, model, problems)
      if not any(want in pr for pr in problems):
        failures += 1
        print("self-test: expected %r, got %s" % (want, problems))
    problems = []
    if not check_archive(reference, model, problems):
      failures += 1
      print("self-test: the reference fails: %s" % problems)
  print("check_structure self-test: %d cases, %d failed" % (len(cases) + 1, failures))
  return failures == 0


def main(argv):
  ap = argparse.ArgumentParser(description="Check legacy archives' structure.")
  ap.add_argument("--reference", required=True)
  ap.add_argument("--self-test", action="store_true")
  ap.add_argument("archives", nargs="*")
  a = ap.parse_args(argv)
  if a.self_test:
    return 0 if self_test(a.reference) else 1
  with zipfile.ZipFile(a.reference) as z:
    ref = json.loads(z.read([n for n in z.namelist() if n.endswith("/model.json")][0]))
  problems = []
  good = sum(check_archive(p, ref, problems) for p in a.archives)
  for pr in problems:
    print(pr)
  print("structure: %d archives ok, %d bad" % (good, len(a.archives) - good))
  return 0 if good == len(a.archives) else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
