#!/usr/bin/env python3
"""write_legacy.py - rewrite a TorchScript archive saved by PyTorch 1.13 in
the legacy format of PyTorch 1.0-1.2 (model.json), so that nncc's legacy
importer can be tested on models larger than the few real 2019 files.

Usage: write_legacy.py IN.pt OUT.pt [--buffers-as-attributes] [--deflate]

The legacy layout (docs: FORMATS.md section 5, checked against the real
files by check_structure.py):

  <p>/version          "1"
  <p>/code/<p>.py      the root module's methods, then one file per
                       submodule with methods: code/<p>_<path>.py
  <p>/attributes.pkl   a protocol-2 pickle of a tuple (always written)
  <p>/tensors/<N>      raw little-endian bytes, contiguous
  <p>/model.json       the ModelDef as JSON, written last

model.json follows the protobuf JSON mapping the old writer used:
lowerCamelCase keys in proto field order, int64 values as strings, enum
names for dataType, primitive fields printed even when default, empty
repeated fields left out (a 0-dim tensor has no "dims").

The code is the 1.13 archive's own (python_print output): every module
instance gets the methods of its class, the class wrapper and the
attribute declarations dropped, the defs dedented to the top level and
`self: <class>` shortened to `self`. `self.x` paths are left as they are:
the legacy importer reaches parameters and submodules through the module
tree. The 1.13 constants (constants.pkl) become tensors[0..K-1], so
`CONSTANTS.cN` keeps its meaning (in legacy files it indexes `tensors`);
parameters and buffers follow. With --buffers-as-attributes, buffers are
written as Tensor attributes instead (AttributeDef + attributes.pkl with
`torch.jit._pickle.build_tensor_from_id(N)`), as 1.1 wrote
`torch.jit.Attribute`s. With --deflate, model.json and the code files are
deflated, as the 1.2 writer did.
"""

import argparse
import json
import os
import pickle
import re
import struct
import sys
import zipfile

import torch

DTYPE_NAMES = {
    torch.float32: "FLOAT", torch.int64: "INT64", torch.int32: "INT32",
    torch.int16: "INT16", torch.int8: "INT8", torch.uint8: "UINT8",
    torch.bool: "BOOL", torch.float16: "FLOAT16", torch.float64: "DOUBLE",
}

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16, "LongStorage": torch.int64,
    "IntStorage": torch.int32, "ShortStorage": torch.int16,
    "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class LegacyError(Exception):
  pass


# ---- reading the 1.13 archive ----------------------------------------------

def read_constants(z, prefix):
  """The constants.pkl tuple, tensors rebuilt from constants/<key>."""
  name = prefix + "constants.pkl"
  if name not in z.namelist():
    return ()

  class Unpickler(pickle.Unpickler):
    def persistent_load(self, pid):
      kind, cls, key, _location, numel = pid[:5]
      if kind != "storage":
        raise LegacyError("unexpected persistent id %r" % (pid,))
      dtype = STORAGE_DTYPES[cls.__name__]
      data = bytearray(z.read(prefix + "constants/" + key))
      t = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
      return t[:numel].clone().storage()

  return Unpickler(__import__("io").BytesIO(z.read(name))).load()


def split_classes(z, prefix):
  """qualified class name -> list of method texts (each a list of lines,
  still indented as in the class)."""
  classes = {}
  for name in z.namelist():
    if not (name.startswith(prefix + "code/") and name.endswith(".py")):
      continue
    module = name[len(prefix + "code/"):-3].replace("/", ".")
    current = None  # the class being read
    method = None   # the method being read
    for line in z.read(name).decode("utf-8").splitlines():
      m = re.match(r"class (\w+)\(", line)
      if m:
        current = classes.setdefault(module + "." + m.group(1), [])
        method = None
        continue
      if current is None:
        if line.startswith(("def ", "class ")):
          raise LegacyError("%s: top-level function %r: not supported by the writer"
                            % (name, line))
        continue
      if line.startswith("  def "):
        method = [line]
        current.append(method)
      elif method is not None and (line.startswith("   ") or not line.strip()):
        method.append(line)
      else:
        method = None  # a class-level declaration
  return classes


def legacy_method(lines):
  """Dedents a method by one level and drops the self annotation."""
  header = 1  # lines of the signature, kept as they are after the first
  while header < len(lines) and not lines[header - 1].rstrip().endswith(":"):
    header += 1
  out = [l[2:] if l.startswith("  ") and i not in range(1, header) else l
         for i, l in enumerate(lines)]
  out[0] = re.sub(r"\(self: [\w.]+(,|\))", r"(self\1", out[0])
  return out


# ---- writing ----------------------------------------------------------------

def pickle_tuple(values):
  """A protocol-2 pickle of a tuple, written the way PyTorch's C++ pickler
  does (tensors as build_tensor_from_id(N))."""
  out = bytearray(b"\x80\x02(")
  memo = [0]

  def put():
    out.extend(b"q" + bytes([memo[0] & 0xFF]) if memo[0] < 256 else b"r" + struct.pack("<I", memo[0]))
    memo[0] += 1

  def val(v):
    if v is None:
      out.extend(b"N")
    elif isinstance(v, bool):
      out.extend(b"\x88" if v else b"\x89")
    elif isinstance(v, int):
      if 0 <= v < 256:
        out.extend(b"K" + bytes([v]))
      elif -2**31 <= v < 2**31:
        out.extend(b"J" + struct.pack("<i", v))
      else:
        out.extend(b"\x8a\x08" + struct.pack("<q", v))
    elif isinstance(v, float):
      out.extend(b"G" + struct.pack(">d", v))
    elif isinstance(v, str):
      b = v.encode("utf-8")
      out.extend(b"X" + struct.pack("<I", len(b)) + b)
      put()
    elif isinstance(v, TensorId):
      out.extend(b"ctorch.jit._pickle\nbuild_tensor_from_id\n")
      put()
      out.extend(b"(")
      val(v.index)
      out.extend(b"tR")
    else:
      raise LegacyError("cannot write attribute value %r" % (v,))

  for v in values:
    val(v)
  out.extend(b"t.")
  return bytes(out)


class TensorId:
  def __init__(self, index):
    self.index = index


class Writer:
  def __init__(self, name, buffers_as_attributes):
    self.name = name                # the top folder
    self.tensors = []               # TensorDef dicts
    self.blobs = []                 # bytes of tensors/N
    self.by_key = {}                # (data_ptr, dtype, shape, stride) -> id
    self.attributes = []            # attributes.pkl values
    self.code = []                  # (entry, text)
    self.buffers_as_attributes = buffers_as_attributes

  def tensor(self, t):
    t = t.detach()
    key = (t.data_ptr(), t.dtype, tuple(t.shape), t.stride(), t.storage_offset())
    if t.numel() and key in self.by_key:
      return self.by_key[key]
    if t.dtype not in DTYPE_NAMES:
      raise LegacyError("dtype %s has no legacy name" % t.dtype)
    c = t.contiguous()
    strides, s = [], 1
    for d in reversed(c.shape):
      strides.insert(0, s)
      s *= d
    n = len(self.tensors)
    td = {}
    if c.dim():
      td["dims"] = [str(d) for d in c.shape]
    td["offset"] = "0"
    if c.dim():
      td["strides"] = [str(x) for x in strides]
    td["requiresGrad"] = False
    td["dataType"] = DTYPE_NAMES[c.dtype]
    td["data"] = {"key": "tensors/%d" % n}
    td["device"] = "cpu"
    self.tensors.append(td)
    self.blobs.append(c.numpy().tobytes() if c.dtype != torch.bool
                      else c.to(torch.uint8).numpy().tobytes())
    self.by_key[key] = n
    return n

  def module(self, sm, path, classes):
    """The ModuleDef of ScriptModule sm at `path` (a list of names)."""
    md = {}
    qual = sm._c._type().qualified_name()
    methods = classes.get(qual, [])
    if methods:
      entry = "code/%s.py" % "_".join([self.name] + path)
      lines = ["op_version_set = 0"]
      for m in methods:
        lines += legacy_method(m)
      self.code.append((entry, "\n".join(lines) + "\n"))
    subs = [self.module(child, path + [name], classes)
            for name, child in sm.named_children()]
    if subs:
      md["submodules"] = subs
    if methods:
      md["torchscriptArena"] = {"key": entry}
    params = []
    for pname, p in sm.named_parameters(recurse=False):
      params.append({"isBuffer": False, "tensorId": str(self.tensor(p)), "name": pname})
    attrs = []
    for bname, b in sm.named_buffers(recurse=False):
      if self.buffers_as_attributes:
        attrs.append({"type": "Tensor", "name": bname, "id": str(len(self.attributes))})
        self.attributes.append(TensorId(self.tensor(b)))
      else:
        params.append({"isBuffer": True, "tensorId": str(self.tensor(b)), "name": bname})
    if params:
      md["parameters"] = params
    md["name"] = path[-1] if path else self.name
    md["optimize"] = True
    if attrs:
      md["attributes"] = attrs
    return md


def write_legacy(src, dst, buffers_as_attributes=False, deflate=False):
  z = zipfile.ZipFile(src)
  prefix = z.namelist()[0].split("/")[0] + "/"
  name = os.path.splitext(os.path.basename(dst))[0]
  w = Writer(name, buffers_as_attributes)
  for c in read_constants(z, prefix):
    if not isinstance(c, torch.Tensor):
      raise LegacyError("constant %r is not a tensor: not supported by the writer" % (c,))
    w.tensor(c)
  # Constants first, each its own tensors[N] even when equal to another.
  w.by_key.clear()
  classes = split_classes(z, prefix)
  sm = torch.jit.load(src)
  main = w.module(sm, [], classes)
  model = {"protoVersion": "3", "mainModule": main, "producerName": "pytorch",
           "producerVersion": "1.0"}
  if w.tensors:
    model["tensors"] = w.tensors
  with zipfile.ZipFile(dst, "w") as out:
    def add(rel, data, compress=False):
      info = zipfile.ZipInfo(name + "/" + rel, date_time=(2019, 5, 1, 12, 0, 0))
      info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
      # Align the data to 64 bytes with an "FB" extra field, as PyTorch does.
      here = out.fp.tell() + 30 + len(info.filename.encode()) + 4
      pad = (-here) % 64
      info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
      out.writestr(info, data)
    add("version", b"1\n")
    for entry, text in w.code:
      add(entry, text.encode("utf-8"), deflate)
    add("attributes.pkl", pickle_tuple(w.attributes))
    for i, blob in enumerate(w.blobs):
      add("tensors/%d" % i, blob)
    add("model.json", json.dumps(model, separators=(",", ":")).encode("utf-8"), deflate)


def main(argv):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("src")
  ap.add_argument("dst")
  ap.add_argument("--buffers-as-attributes", action="store_true")
  ap.add_argument("--deflate", action="store_true")
  a = ap.parse_args(argv)
  try:
    write_legacy(a.src, a.dst, a.buffers_as_attributes, a.deflate)
  except LegacyError as e:
    print("write_legacy.py: %s: %s" % (a.src, e), file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
