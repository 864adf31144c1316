#!/usr/bin/env python3
"""make_models.py - build the benchmark's models for all three runtimes.

Usage: make_models.py OUTDIR NAME...      (names from MODELS, or gemm_MxKxN)
       make_models.py --list

For each name it writes, into OUTDIR:

  NAME.pt       the model traced with torch.jit.trace (for libtorch and nncc)
  NAME.onnx     the same model exported with torch.onnx.export, opset 13
                (for ONNX Runtime; not for the GEMM cases)
  NAME.in<i>.npy   the example inputs, in forward() order
  NAME.out<j>.npy  what the traced model computes for them (the reference)
  NAME.json     name, inputs (name, dtype, shape, nncc --input flag),
                outputs, flops (for the GEMM cases), torch_version

The model definitions are the zoo's (tests/zoo/make_zoo.py: the seeds'
ConvNet, the MLP, the BERT-style classifier, torchvision's networks with
random weights, torch.manual_seed(0)); only the shapes differ: the
torchvision networks run at 224x224, and the BERT classifier gets 128
position embeddings (the zoo's has 64) so that it runs at sequence 128.
A model is rebuilt only when its json is older than this file or
make_zoo.py.

gemm_MxKxN is torch.nn.Linear(K, N, bias=False) on an f32[M,K] input:
one GEMM, C = x @ W^T with W of shape [N,K], the layout bench/gemm_timer.c
gives OpenBLAS.
"""

import json
import os
import re
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ZOO_DIR = os.path.join(os.path.dirname(HERE), "tests", "zoo")
sys.path.insert(0, ZOO_DIR)
import make_zoo  # noqa: E402  (re-runs this script under a python with torch)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import numpy as np  # noqa: E402


class BenchBertConfig(make_zoo.BertConfig):
  max_positions = 128  # room for sequence 128


class Tiny(nn.Module):
  """Adds two 4-element vectors: what a run costs besides the work."""

  def forward(self, x, y):
    return x + y


class LstmClassifier(nn.Module):
  """A text classifier: embedding, two bidirectional LSTM layers of 256,
  a linear head on the last step's features."""

  def __init__(self):
    super().__init__()
    self.emb = nn.Embedding(1000, 128)
    self.lstm = nn.LSTM(128, 256, num_layers=2, bidirectional=True, batch_first=True)
    self.fc = nn.Linear(512, 4)

  def forward(self, ids):
    y, _ = self.lstm(self.emb(ids))
    return self.fc(y[:, -1])


def bert(batch, seq):
  return (lambda: make_zoo.BertClassifier(BenchBertConfig),
          [("i64", [batch, seq])] * 3)


# name -> (constructor, [(dtype, shape)] of the forward() inputs)
MODELS = {
  "tiny": (Tiny, [("f32", [4]), ("f32", [4])]),
  "mlp": (make_zoo.make_mlp, [("f32", [4, 64])]),
  "convnet": (make_zoo.ConvNet, [("f32", [1, 1, 28, 28])]),
  "bert_1x8": bert(1, 8),
  "bert_8x128": bert(8, 128),
  "lstm_8x64": (LstmClassifier, [("i64", [8, 64])]),
  "mobilenet_v2": (make_zoo.tv("mobilenet_v2"), [("f32", [1, 3, 224, 224])]),
  "resnet18": (make_zoo.tv("resnet18"), [("f32", [1, 3, 224, 224])]),
  "resnet50": (make_zoo.tv("resnet50"), [("f32", [1, 3, 224, 224])]),
}

GEMM_RE = re.compile(r"^gemm_(\d+)x(\d+)x(\d+)$")


def spec(name):
  """(constructor, input specs, flops or None) for a model name."""
  if name in MODELS:
    return MODELS[name] + (None,)
  g = GEMM_RE.match(name)
  if not g:
    raise KeyError(name)
  m, k, n = (int(v) for v in g.groups())
  return (lambda: nn.Linear(k, n, bias=False), [("f32", [m, k])],
          2 * m * k * n)


def example_inputs(name, specs):
  """Deterministic inputs: normal floats; BERT gets token ids in [0, 1000),
  an attention mask with the last two positions padded, segment ids."""
  gen = torch.Generator().manual_seed(1)
  out = []
  for i, (dt, shape) in enumerate(specs):
    if dt == "f32":
      out.append(torch.randn(*shape, generator=gen))
    elif i == 1:  # BERT's attention mask
      t = torch.ones(shape, dtype=torch.long)
      t[:, -2:] = 0
      out.append(t)
    else:
      out.append(torch.randint(0, 1000 if i == 0 else 2, shape, generator=gen,
                               dtype=torch.long))
  return out


def up_to_date(outdir, name):
  path = os.path.join(outdir, name + ".json")
  if not os.path.isfile(path):
    return False
  t = os.path.getmtime(path)
  return all(os.path.getmtime(p) < t for p in
             (os.path.abspath(__file__), os.path.join(ZOO_DIR, "make_zoo.py")))


def build(outdir, name):
  ctor, specs, flops = spec(name)
  torch.manual_seed(0)
  model = ctor().eval()
  inputs = example_inputs(name, specs)
  with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    traced = torch.jit.trace(model, tuple(inputs), check_trace=False)
    outs = make_zoo.flatten_outputs(traced(*inputs))
    traced.save(os.path.join(outdir, name + ".pt"))
    names = make_zoo.input_names(traced.graph)
    if flops is None:  # the GEMM cases are timed against OpenBLAS only
      torch.onnx.export(model, tuple(inputs),
                        os.path.join(outdir, name + ".onnx"),
                        opset_version=13, input_names=names,
                        output_names=["output_%d" % j
                                      for j in range(len(outs))],
                        do_constant_folding=True)
  for i, t in enumerate(inputs):
    np.save(os.path.join(outdir, "%s.in%d.npy" % (name, i)), t.numpy())
  for j, t in enumerate(outs):
    np.save(os.path.join(outdir, "%s.out%d.npy" % (name, j)),
            t.detach().numpy().astype(np.float32))
  info = {
    "name": name,
    "inputs": [{"name": n, "dtype": dt, "shape": shape,
                "flag": "%s:%s" % (n, make_zoo.fmt_type(dt, shape))}
               for n, (dt, shape) in zip(names, specs)],
    "outputs": [{"dtype": make_zoo.DTYPE_NAMES[o.dtype],
                 "shape": list(o.shape)} for o in outs],
    "flops": flops,
    "torch_version": torch.__version__,
  }
  path = os.path.join(outdir, name + ".json")
  with open(path + ".tmp", "w") as f:
    json.dump(info, f, indent=1)
  os.replace(path + ".tmp", path)


def main(argv):
  if argv[:1] == ["--list"]:
    print("\n".join(MODELS))
    return 0
  if len(argv) < 2:
    sys.stderr.write(__doc__)
    return 2
  outdir, names = argv[0], argv[1:]
  for n in names:
    try:
      spec(n)
    except KeyError:
      sys.stderr.write("make_models.py: error: unknown model %r\n" % n)
      return 2
  os.makedirs(outdir, exist_ok=True)
  torch.set_num_threads(max(1, os.cpu_count() or 1))
  failed = 0
  for n in names:
    if up_to_date(outdir, n):
      continue
    try:
      build(outdir, n)
      print("built %s" % n, flush=True)
    except Exception as e:  # report it and go on with the others
      failed += 1
      print("%s FAILED: %s: %s" % (n, type(e).__name__, e), flush=True)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
