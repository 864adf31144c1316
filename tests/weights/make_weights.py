"""make_weights.py - models and torch.save files for the --weights test.

Usage: make_weights.py OUTDIR

For each small model (a ConvNet with batch norm, an MLP) it writes:
  NAME.pt            the model traced with one set of random weights
  NAME.in0.npy       an input
  NAME.ref.npy       PyTorch's output of a second instance (other weights)
and torch.save files holding the second instance's weights:
  NAME.zip.pth       state_dict(), zip format (the default)
  NAME.legacy.pth    state_dict(), _use_new_zipfile_serialization=False
  NAME.ckpt.pth      {"net": state_dict, "optimizer": ..., "epoch": 3}
  NAME.deep.pth      {"model": {"state_dict": state_dict}, "step": 7}
  NAME.extra.pth     one key missing (LAST.bias), one unexpected (extra.weight)
  NAME.shape.pth     LAST.weight with the wrong number of columns
  NAME.f16.pth       the float tensors as float16
  NAME.i32.pth       as zip, num_batches_tracked (if any) as int32
  NAME.module.pth    the whole pickled module (refused), zip and legacy
  NAME.module_legacy.pth
with NAME.ref_nostrict.npy (the missing key keeps the traced value) and
NAME.ref_f16.npy (weights rounded to float16), and cases.json describing
what each file should do and, for failures, the exact messages.
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn


class ConvNet(nn.Module):
  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
    self.bn1 = nn.BatchNorm2d(8)
    self.conv2 = nn.Conv2d(8, 16, 3)
    self.fc = nn.Linear(16, 10)

  def forward(self, x):
    x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
    x = torch.relu(self.conv2(x))
    x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
    return self.fc(x)


class MLP(nn.Module):
  def __init__(self):
    super().__init__()
    self.layers = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))

  def forward(self, x):
    return self.layers(x)


def randomize(m, seed):
  """Fresh random values for every parameter and buffer (batch norm
  statistics too, so that they matter)."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, t in m.state_dict().items():
      if t.dtype.is_floating_point:
        v = torch.rand(t.shape, generator=g) * 0.6 - 0.3
        if name.endswith("running_var"):
          v = v.abs() + 0.5
        t.copy_(v)
      else:
        t.fill_(5)


def main():
  out = sys.argv[1]
  os.makedirs(out, exist_ok=True)
  torch.manual_seed(0)
  cases = []
  for name, cls, shape, last in [("convnet", ConvNet, (2, 3, 12, 12), "fc"),
                                 ("mlp", MLP, (4, 32), "layers.2")]:
    p = lambda suffix: os.path.join(out, name + suffix)
    m1 = cls().eval()
    randomize(m1, 1)
    x = torch.rand(shape) * 2 - 1
    torch.jit.trace(m1, x).save(p(".pt"))
    np.save(p(".in0.npy"), x.numpy())

    m2 = cls().eval()
    randomize(m2, 2)
    sd = {k: v.clone() for k, v in m2.state_dict().items()}
    with torch.no_grad():
      np.save(p(".ref.npy"), m2(x).numpy())

    torch.save(sd, p(".zip.pth"))
    torch.save(sd, p(".legacy.pth"), _use_new_zipfile_serialization=False)
    # The checkpoint recipe: an optimizer with state (momentum buffers after
    # one step), then the weights restored to sd.
    opt = torch.optim.SGD(m2.parameters(), lr=0.01, momentum=0.9)
    m2(x).sum().backward()
    opt.step()
    m2.load_state_dict(sd)
    torch.save({"net": m2.state_dict(), "optimizer": opt.state_dict(), "epoch": 3},
               p(".ckpt.pth"))
    torch.save({"model": {"state_dict": m2.state_dict()}, "step": 7}, p(".deep.pth"))

    extra = dict(sd)
    del extra[last + ".bias"]
    extra["extra.weight"] = torch.ones(3, 3)
    torch.save(extra, p(".extra.pth"))
    m3 = cls().eval()
    m3.load_state_dict(m1.state_dict())
    m3.load_state_dict(extra, strict=False)
    with torch.no_grad():
      np.save(p(".ref_nostrict.npy"), m3(x).numpy())

    bad = dict(sd)
    w = bad[last + ".weight"]
    bad[last + ".weight"] = torch.zeros(w.shape[0], w.shape[1] + 1)
    torch.save(bad, p(".shape.pth"))

    half = {k: v.half() if v.dtype.is_floating_point else v for k, v in sd.items()}
    torch.save(half, p(".f16.pth"))
    m4 = cls().eval()
    m4.load_state_dict(half)
    with torch.no_grad():
      np.save(p(".ref_f16.npy"), m4(x).numpy())

    i32 = {k: v.int() if k.endswith("num_batches_tracked") else v for k, v in sd.items()}
    torch.save(i32, p(".i32.pth"))
    torch.save(m2, p(".module.pth"))
    torch.save(m2, p(".module_legacy.pth"), _use_new_zipfile_serialization=False)

    ok = lambda f, ref, flags=(), warn=(): {
        "model": name, "weights": f, "flags": list(flags), "ok": True, "ref": ref,
        "stderr": list(warn)}
    fail = lambda f, lines, flags=(): {
        "model": name, "weights": f, "flags": list(flags), "ok": False, "stderr": lines}
    wpath = lambda f: p(f)
    cases += [
        ok(wpath(".zip.pth"), p(".ref.npy")),
        ok(wpath(".legacy.pth"), p(".ref.npy")),
        ok(wpath(".ckpt.pth"), p(".ref.npy"), ["--weights-key", "net"]),
        ok(wpath(".deep.pth"), p(".ref.npy"), ["--weights-key=model.state_dict"]),
        ok(wpath(".f16.pth"), p(".ref_f16.npy")),
        ok(wpath(".i32.pth"), p(".ref.npy")),
        ok(wpath(".extra.pth"), p(".ref_nostrict.npy"), ["--no-strict"], [
            "nncc: warning: %s: missing key '%s.bias'" % (wpath(".extra.pth"), last),
            "nncc: warning: %s: unexpected key 'extra.weight'" % wpath(".extra.pth")]),
        fail(wpath(".extra.pth"), [
            "nncc: error: %s: missing key '%s.bias'" % (wpath(".extra.pth"), last),
            "nncc: error: %s: unexpected key 'extra.weight'" % wpath(".extra.pth"),
            "nncc: note: %s: --no-strict loads the matching tensors and only warns about "
            "missing and unexpected keys" % wpath(".extra.pth")]),
        fail(wpath(".shape.pth"), [
            "nncc: error: size mismatch for '%s.weight': f32[%d,%d] in %s, f32[%d,%d] in the model"
            % (last, w.shape[0], w.shape[1] + 1, wpath(".shape.pth"), w.shape[0], w.shape[1])]),
        fail(wpath(".shape.pth"), [
            "nncc: error: size mismatch for '%s.weight': f32[%d,%d] in %s, f32[%d,%d] in the model"
            % (last, w.shape[0], w.shape[1] + 1, wpath(".shape.pth"), w.shape[0], w.shape[1])],
            ["--no-strict"]),
        fail(wpath(".ckpt.pth"), [
            "nncc: error: %s: the file is a dict but not a state dict (names to tensors); its keys "
            "are 'net' (a state dict of %d tensors), 'optimizer' (a dict of 2 entries), 'epoch' "
            "(the int 3)" % (wpath(".ckpt.pth"), len(sd)),
            "nncc: note: %s: pick the state dict with --weights-key net" % wpath(".ckpt.pth")]),
        fail(wpath(".module.pth"), [
            "nncc: error: %s holds a whole pickled module; save model.state_dict() instead"
            % wpath(".module.pth")]),
        fail(wpath(".module_legacy.pth"), [
            "nncc: error: %s holds a whole pickled module; save model.state_dict() instead"
            % wpath(".module_legacy.pth")]),
    ]
    for c in cases:
      if c["model"] == name:
        c["input"] = p(".in0.npy")
        c["shape"] = "x:f32[%s]" % ",".join(str(d) for d in shape)
  with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)


if __name__ == "__main__":
  main()
