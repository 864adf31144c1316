#!/usr/bin/env python3
"""make_legacy_debug.py - writes small model.json-era archives (the layout
PyTorch 1.2's torch.jit.save wrote) whose code calls an op nncc does not
support, with and without debug records, to test the origin notes of
diagnostics in legacy archives. Plain python3 (no torch).

Usage: make_legacy_debug.py OUTDIR

Writes:
  traced.pt    debug/traced.pkl: a traced call stack ("PATH(LINE): FUNC"
               lines, innermost first, torch's own frames included)
  scripted.pt  debug/scripted.pkl: a scripted function's source text, its
               file and first line
  renamed.pt   the traced records in debug/elsewhere.pkl, as model.json says
  unnamed.pt   debug/unnamed.pkl present but model.json names no records
  nodebug.pt   the same code, no debug records (as 1.0 and 1.1 wrote)
  badpkl.pt    debug/badpkl.pkl is not a pickle

The layout (FORMATS.md, "Legacy archives"): <p>/version, <p>/code/<p>.py,
<p>/debug/<p>.pkl, <p>/model.json last; model.json names the code in
mainModule.torchscriptArena.key and the records in
mainModule.torchscriptDebugArena.key. A debug pkl is a protocol-2 pickle of
a tuple of records (byte offset in the code file, source range), a source
range being ((text, filename, first line), start, end), each record holding
from its offset to the next one's.
"""
import json
import os
import pickle
import sys
import zipfile

CODE = ("op_version_set = 0\n"
        "def forward(self,\n"
        "    x: Tensor) -> Tensor:\n"
        "  _0 = torch.relu(x)\n"
        "  return torch.frobnicate(_0)\n")

# A traced stack for each statement: torch's own frames come first.
STACK_RELU = ("/usr/lib/python3/dist-packages/torch/nn/modules/module.py(1194): _call_impl\n"
              "/home/u/models/net.py(21): forward\n"
              "/home/u/models/trace_it.py(9): <module>\n")
STACK_FROB = ("/usr/lib/python3/dist-packages/torch/nn/modules/module.py(1194): _call_impl\n"
              "/home/u/models/net.py(23): forward\n"
              "/home/u/models/trace_it.py(9): <module>\n")
# A scripted function: the source text begins at line 40 of net.py.
SCRIPT = ("    def forward(self, x):\n"
          "        y = torch.relu(x)\n"
          "        return torch.frobnicate(y)\n")


def records(kind):
    """The debug records of CODE: one from the top, one per statement."""
    relu_at = CODE.index("_0 = torch.relu")
    frob_at = CODE.index("return torch.frobnicate")
    if kind == "traced":
        relu = ((STACK_RELU, None, 0), 0, len(STACK_RELU))
        frob = ((STACK_FROB, None, 0), 0, len(STACK_FROB))
    else:
        src = (SCRIPT, "/home/u/models/net.py", 40)
        relu = (src, SCRIPT.index("torch.relu"), SCRIPT.index("torch.relu") + 10)
        frob = (src, SCRIPT.index("torch.frobnicate"), len(SCRIPT) - 2)
    return ((0, relu), (relu_at, relu), (frob_at, frob))


def write(path, name, debug, debug_key="", named=True):
    module = {"torchscriptArena": {"key": "code/%s.py" % name}, "name": name,
              "optimize": True}
    debug_key = debug_key or "debug/%s.pkl" % name
    if debug is not None and named:
        module["torchscriptDebugArena"] = {"key": debug_key}
    model = {"protoVersion": "5", "mainModule": module, "producerName": "pytorch",
             "producerVersion": "1.0"}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name + "/version", "1\n")
        z.writestr("%s/code/%s.py" % (name, name), CODE)
        if debug is not None:
            z.writestr("%s/%s" % (name, debug_key), debug)
        z.writestr(name + "/model.json", json.dumps(model, separators=(",", ":")))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "traced.pt"), "traced", pickle.dumps(records("traced"), protocol=2))
    write(os.path.join(out, "scripted.pt"), "scripted",
          pickle.dumps(records("scripted"), protocol=2))
    traced = pickle.dumps(records("traced"), protocol=2)
    write(os.path.join(out, "renamed.pt"), "renamed", traced, "debug/elsewhere.pkl")
    write(os.path.join(out, "unnamed.pt"), "unnamed", traced, named=False)
    write(os.path.join(out, "nodebug.pt"), "nodebug", None)
    write(os.path.join(out, "badpkl.pt"), "badpkl", b"not a pickle")


if __name__ == "__main__":
    main()
