#!/usr/bin/env python3
"""make_zoo.py - build the model zoo used by nncc's end-to-end import tests.

Usage: make_zoo.py OUTDIR [--only NAME,...] [--list]

Every model is built with random weights (torch.manual_seed(0) before it is
constructed; nothing is ever downloaded), switched to eval mode, traced with
torch.jit.trace on a fixed example input and saved as OUTDIR/<name>.pt.
Next to it goes OUTDIR/<name>.json, the facts the checker compares nncc
against:

  name          the model's zoo name
  inputs        per forward() parameter: name (as in the saved code's
                `def forward(self, ...)`), dtype ("f32", "i64", ...), shape,
                and flag, the ready-made `--input NAME:DTYPE[DIMS]` value
  outputs       per output tensor (tuples flattened in order): dtype, shape
  aten_ops      multiset of node kinds in the traced forward (every block,
                submodule calls inlined, no graph optimization) that start
                with "aten::", plus "prim::NumToTensor": what the archive's
                code/ spells out
  torch_version the torch that wrote the archive

Next to them go the example inputs the model was traced with,
OUTDIR/<name>.in<i>.npy (one per forward() parameter, in order), and what
the traced module computes for them, OUTDIR/<name>.out<j>.npy (one per
output tensor, tuples and lists flattened in order; floating outputs are
stored as float32): the references for the end-to-end tests.

Before writing the json the script reads the saved archive back: the
parameter names of the top-level forward() in code/__torch__/ must equal
the traced graph's input names, and the reloaded module must have the same
op multiset as the trace and compute the same outputs, bit for bit. Any model that fails to build, trace or verify
makes the script exit 1 (the others are still written).

The models live in this file; MODELS at the bottom lists them in build
order with their example inputs. Everything is deterministic: the same
torch gives the same json files.
"""

import argparse
import collections
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reexec import reexec  # noqa: E402
import time
import warnings
import zipfile

import numpy as np


try:
  import torch
  import torch.nn as nn
  import torch.nn.functional as F
  import torchvision
except ImportError:
  reexec("NNCC_ZOO_REEXEC", __file__)
  sys.stderr.write("make_zoo.py: error: no python with torch and torchvision "
                   "(tried %s, NNCC_PYTHON, /usr/bin/python3)\n" % sys.executable)
  sys.exit(2)


# ---------------------------------------------------------------------------
# Small models written here
# ---------------------------------------------------------------------------

class ConvNet(nn.Module):
  """The MNIST classifier from the seed notes: two conv/relu/pool stages,
  a flatten through x.view(x.size(0), -1), then three linear layers."""

  def __init__(self):
    super().__init__()
    self.conv1 = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1), nn.ReLU(),
                               nn.AvgPool2d(2, 2))
    self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 3, 1, 1), nn.ReLU(),
                               nn.MaxPool2d(2, 2))
    self.fc = nn.Sequential(nn.Linear(32 * 7 * 7, 128), nn.ReLU(),
                            nn.Linear(128, 64), nn.ReLU())
    self.out = nn.Linear(64, 10)

  def forward(self, x):
    x = self.conv1(x)
    x = self.conv2(x)
    x = x.view(x.size(0), -1)
    x = self.fc(x)
    return self.out(x)


def make_mlp():
  return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64),
                       nn.ReLU(), nn.Linear(64, 10))


class BertConfig:
  vocab_size = 1000
  hidden = 128
  heads = 2
  layers = 2
  intermediate = 512
  max_positions = 256
  type_vocab = 2
  classes = 15
  eps = 1e-12
  dropout = 0.1


class BertEmbeddings(nn.Module):
  """Token + position + segment embeddings, LayerNorm, dropout. Position
  ids come from input_ids.size(1), so shape arithmetic lands in the trace."""

  def __init__(self, c):
    super().__init__()
    self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden)
    self.position_embeddings = nn.Embedding(c.max_positions, c.hidden)
    self.token_type_embeddings = nn.Embedding(c.type_vocab, c.hidden)
    self.LayerNorm = nn.LayerNorm(c.hidden, eps=c.eps)
    self.dropout = nn.Dropout(c.dropout)

  def forward(self, input_ids, token_type_ids):
    seq_length = input_ids.size(1)
    position_ids = torch.arange(seq_length, dtype=torch.long,
                                device=input_ids.device)
    position_ids = position_ids.unsqueeze(0).expand_as(input_ids)
    emb = (self.word_embeddings(input_ids) +
           self.position_embeddings(position_ids) +
           self.token_type_embeddings(token_type_ids))
    return self.dropout(self.LayerNorm(emb))


class BertSelfAttention(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.num_heads = c.heads
    self.head_size = c.hidden // c.heads
    self.all_head_size = self.num_heads * self.head_size
    self.query = nn.Linear(c.hidden, self.all_head_size)
    self.key = nn.Linear(c.hidden, self.all_head_size)
    self.value = nn.Linear(c.hidden, self.all_head_size)
    self.dropout = nn.Dropout(c.dropout)

  def split_heads(self, x):
    new_shape = x.size()[:-1] + (self.num_heads, self.head_size)
    return x.view(*new_shape).permute(0, 2, 1, 3)

  def forward(self, hidden, mask):
    q = self.split_heads(self.query(hidden))
    k = self.split_heads(self.key(hidden))
    v = self.split_heads(self.value(hidden))
    scores = torch.matmul(q, k.transpose(-1, -2))
    scores = scores / math.sqrt(self.head_size)
    scores = scores + mask
    probs = self.dropout(F.softmax(scores, dim=-1))
    ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
    new_shape = ctx.size()[:-2] + (self.all_head_size,)
    return ctx.view(*new_shape)


class BertLayer(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.attention = BertSelfAttention(c)
    self.attn_dense = nn.Linear(c.hidden, c.hidden)
    self.attn_dropout = nn.Dropout(c.dropout)
    self.attn_norm = nn.LayerNorm(c.hidden, eps=c.eps)
    self.intermediate = nn.Linear(c.hidden, c.intermediate)
    self.output = nn.Linear(c.intermediate, c.hidden)
    self.out_dropout = nn.Dropout(c.dropout)
    self.out_norm = nn.LayerNorm(c.hidden, eps=c.eps)

  def forward(self, hidden, mask):
    a = self.attn_dropout(self.attn_dense(self.attention(hidden, mask)))
    a = self.attn_norm(a + hidden)
    h = F.gelu(self.intermediate(a))
    h = self.out_dropout(self.output(h))
    return self.out_norm(h + a)


class BertClassifier(nn.Module):
  """A small BERT-style sentence classifier (15 classes)."""

  def __init__(self, c=BertConfig):
    super().__init__()
    self.embeddings = BertEmbeddings(c)
    self.layers = nn.ModuleList([BertLayer(c) for _ in range(c.layers)])
    self.pooler = nn.Linear(c.hidden, c.hidden)
    self.dropout = nn.Dropout(c.dropout)
    self.classifier = nn.Linear(c.hidden, c.classes)

  def forward(self, input_ids, attention_mask, segment_ids):
    ext = attention_mask.unsqueeze(1).unsqueeze(2)
    ext = ext.to(dtype=self.pooler.weight.dtype)
    ext = (1.0 - ext) * -10000.0
    h = self.embeddings(input_ids, segment_ids)
    for layer in self.layers:
      h = layer(h, ext)
    pooled = torch.tanh(self.pooler(h[:, 0]))
    return self.classifier(self.dropout(pooled))


class BCEFocalLoss(nn.Module):
  """Focal loss for binary / multi-label classification (seed notes)."""

  def __init__(self, gamma=2, alpha=0.25):
    super().__init__()
    self.gamma = gamma
    self.alpha = alpha

  def forward(self, logits, labels):
    probs = torch.sigmoid(logits)
    loss = (-self.alpha * (1 - probs) ** self.gamma * labels * torch.log(probs)
            - (1 - self.alpha) * probs ** self.gamma * (1 - labels)
            * torch.log(1 - probs))
    return torch.mean(loss)


class MultiCEFocalLoss(nn.Module):
  """Multi-class focal loss through softmax and a one-hot mask (seed notes);
  the per-class weights are a plain tensor attribute, so tracing turns them
  into an archive constant."""

  def __init__(self, class_num, gamma=2):
    super().__init__()
    self.alpha = torch.ones(class_num, 1)
    self.gamma = gamma
    self.class_num = class_num

  def forward(self, logits, labels):
    probs = F.softmax(logits, dim=1)
    class_mask = F.one_hot(labels, self.class_num)
    ids = labels.view(-1, 1)
    alpha = self.alpha[ids.view(-1)]
    probs = (probs * class_mask).sum(1).view(-1, 1)
    log_p = probs.log()
    loss = -alpha * torch.pow((1 - probs), self.gamma) * log_p
    return loss.mean()


class MultiClassFocalLossWithAlpha(nn.Module):
  """Focal loss with per-class alpha through log_softmax and gather (seed
  notes); alpha is a registered buffer here."""

  def __init__(self, alpha, gamma=2):
    super().__init__()
    self.register_buffer("alpha", torch.tensor(alpha))
    self.gamma = gamma

  def forward(self, pred, target):
    alpha = self.alpha[target]
    log_softmax = torch.log_softmax(pred, dim=1)
    logpt = torch.gather(log_softmax, dim=1, index=target.view(-1, 1))
    logpt = logpt.view(-1)
    ce_loss = -logpt
    pt = torch.exp(logpt)
    focal = alpha * (1 - pt) ** self.gamma * ce_loss
    return torch.sum(focal)


class DiceLoss(nn.Module):
  """1 - dice coefficient of sigmoid(inputs) against targets (seed notes)."""

  def forward(self, inputs, targets, smooth=1):
    inputs = torch.sigmoid(inputs)
    inputs = inputs.view(-1)
    targets = targets.view(-1)
    intersection = (inputs * targets).sum()
    dice = (2. * intersection + smooth) / (inputs.sum() + targets.sum() + smooth)
    return 1 - dice


class Losses(nn.Module):
  """All four losses on one batch: logits f32[N,C], labels i64[N] class ids.
  The multi-label losses see the labels one-hot encoded (i64 for the BCE
  focal loss, so type promotion shows up; f32 for dice)."""

  def __init__(self, classes=4):
    super().__init__()
    self.classes = classes
    self.bce_focal = BCEFocalLoss()
    self.ce_focal = MultiCEFocalLoss(classes)
    self.alpha_focal = MultiClassFocalLossWithAlpha([0.1, 0.2, 0.3, 0.4])
    self.dice = DiceLoss()

  def forward(self, logits, labels):
    onehot = F.one_hot(labels, self.classes)
    return (self.bce_focal(logits, onehot),
            self.ce_focal(logits, labels),
            self.alpha_focal(logits, labels),
            self.dice(logits, onehot.float()))


class TensorOps(nn.Module):
  """The seed notes' basic vector operations (copying and reshaping), plus
  a causal mask, on data i64[2,3] and x f32[2,3,4]."""

  def forward(self, data, x):
    # In-batch copy: [[1,2,3],[4,5,6]] -> [[1,2,3],[1,2,3],[4,5,6],[4,5,6]].
    d = data.unsqueeze(1)
    copied = d.repeat(1, 2, 1).view(-1, d.size(-1))
    # Element copy: [[1,2,3],...] -> [[1,1,2,2,3,3],...].
    e = data.unsqueeze(-1).repeat(1, 1, 2)
    interleaved = e.view(e.size(0), -1)
    # Causal attention mask from the runtime length.
    n = x.size(1)
    causal = torch.tril(torch.ones(n, n))
    scores = torch.matmul(x, x.transpose(1, 2))
    scores = scores.masked_fill(causal == 0, float("-inf"))
    stacked = torch.stack([x, x * 2], dim=2).unsqueeze(4)
    padded = torch.cat([x, torch.zeros(x.size(0), n, 1)], dim=2)
    first = x[:, :1, :].expand(-1, n, -1)
    permuted = x.permute(2, 0, 1).contiguous()
    lo, hi = x.chunk(2, dim=2)
    squeezed = x[:, 0:1].squeeze(1)
    flat = x.flatten(1).reshape(4, -1)
    pos = torch.arange(n) + data.sum()
    last = x[:, -1]
    return (copied, interleaved, scores, stacked, padded, first, permuted,
            lo - hi, squeezed, flat, pos, last)


class ListOut(nn.Module):
  """A multi-head model whose forward returns a Python list of tensors (the
  trace ends in prim::ListConstruct rather than a tuple): a shared trunk,
  two linear heads and a softmax of the first head."""

  def __init__(self):
    super().__init__()
    self.trunk = nn.Linear(16, 32)
    self.heads = nn.ModuleList([nn.Linear(32, 4), nn.Linear(32, 3)])

  def forward(self, x):
    h = F.relu(self.trunk(x))
    outs = [head(h) for head in self.heads]
    outs.append(torch.softmax(outs[0], dim=-1))
    return outs


# ---------------------------------------------------------------------------
# The zoo
# ---------------------------------------------------------------------------

def tv(name, **kw):
  """A torchvision constructor with random weights (never downloads)."""
  return lambda: getattr(torchvision.models, name)(weights=None, **kw)


def img(n, c, h, w):
  return [("f32", [n, c, h, w])]


# name, constructor, example inputs [(dtype, shape)], what it covers.
MODELS = [
  ("convnet", ConvNet, img(1, 1, 28, 28),
   "conv2d, relu, avg_pool2d, max_pool2d, view via size(0), linear"),
  ("mlp", make_mlp, [("f32", [4, 64])],
   "linear and relu only, batch 4"),
  ("resnet18", tv("resnet18"), img(1, 3, 224, 224),
   "conv/batch_norm/relu_, max_pool2d, residual add_, adaptive_avg_pool2d, flatten"),
  ("mobilenet_v2", tv("mobilenet_v2"), img(1, 3, 224, 224),
   "depthwise conv, hardtanh_ (ReLU6), inverted residuals, dropout"),
  ("mobilenet_v3_small", tv("mobilenet_v3_small"), img(1, 3, 224, 224),
   "hardswish_, hardsigmoid, squeeze-excitation (mul by pooled scale)"),
  ("squeezenet1_0", tv("squeezenet1_0"), img(1, 3, 96, 96),
   "max_pool2d with ceil_mode, cat of fire-module branches"),
  ("densenet121", tv("densenet121"), img(1, 3, 64, 64),
   "deep chains of cat, batch_norm before conv, avg_pool2d transitions"),
  ("shufflenet_v2_x0_5", tv("shufflenet_v2_x0_5"), img(1, 3, 96, 96),
   "chunk, channel shuffle (view/transpose/contiguous/view), mean([2,3])"),
  ("efficientnet_b0", tv("efficientnet_b0"), img(1, 3, 64, 64),
   "silu_, sigmoid squeeze-excitation, stochastic depth in eval"),
  ("googlenet", tv("googlenet", aux_logits=False, init_weights=False),
   img(1, 3, 64, 64),
   "inception branches joined by cat, max_pool2d ceil_mode"),
  ("regnet_y_400mf", tv("regnet_y_400mf"), img(1, 3, 64, 64),
   "grouped conv, squeeze-excitation"),
  ("convnext_tiny", tv("convnext_tiny"), img(1, 3, 64, 64),
   "7x7 depthwise conv, permute, layer_norm, gelu, layer scale mul"),
  ("mnasnet0_5", tv("mnasnet0_5"), img(1, 3, 64, 64),
   "depthwise separable blocks, mean([2,3])"),
  ("resnet50", tv("resnet50"), img(1, 3, 64, 64),
   "bottleneck blocks with 1x1 convs and downsample branches"),
  ("bert", BertClassifier,
   [("i64", [1, 8]), ("i64", [1, 8]), ("i64", [1, 8])],
   "embedding, arange from size(1), layer_norm, matmul attention, softmax, "
   "gelu, rsub mask, slice/select of token 0, tanh"),
  ("losses", Losses, [("f32", [5, 4]), ("i64", [5])],
   "sigmoid, log, pow, one_hot, index, gather, log_softmax, mean, sum, "
   "tuple of 0-dim outputs"),
  ("tensor_ops", TensorOps, [("i64", [2, 3]), ("f32", [2, 3, 4])],
   "repeat, tril, stack, cat, expand, permute, chunk, squeeze, flatten, "
   "ones/zeros/arange, masked_fill, reshape, view, slice/select"),
  ("list_out", ListOut, [("f32", [3, 16])],
   "a list of three tensors as the output (prim::ListConstruct), linear "
   "heads, softmax"),
]

DTYPE_NAMES = {
  torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16",
  torch.float64: "f64", torch.int64: "i64", torch.int32: "i32",
  torch.int16: "i16", torch.int8: "i8", torch.uint8: "u8", torch.bool: "bool",
}
TORCH_DTYPES = {v: k for k, v in DTYPE_NAMES.items()}

# Integer example inputs are drawn from [0, INT_HIGH[name]) so they are valid
# token ids / class ids / attention masks for every model that takes them.
INT_HIGH = {"bert": [1000, 2, 2], "losses": [None, 4], "tensor_ops": [10, None]}


def example_inputs(name, specs):
  gen = torch.Generator().manual_seed(1)
  out = []
  for i, (dt, shape) in enumerate(specs):
    if dt == "f32":
      out.append(torch.randn(*shape, generator=gen))
    else:
      high = INT_HIGH[name][i]
      t = torch.randint(0, high, shape, generator=gen,
                        dtype=TORCH_DTYPES[dt])
      if name == "bert" and i == 1:
        t = torch.ones(shape, dtype=torch.long)
        t[:, -2:] = 0  # two padding positions
      out.append(t)
  return out


def count_ops(module):
  """Multiset of aten::* (and prim::NumToTensor) node kinds of module's
  forward with every submodule call inlined, blocks included.

  The inlining is done here, graph by graph, rather than through
  module.inlined_graph: that one inlines the callees' *optimized* graphs,
  where peephole rules have already folded int(NumToTensor(size(x, i)))
  back to size(x, i). nncc reads the saved code, which still spells out
  those ops, so the unoptimized graphs are the reference."""
  counts = collections.Counter()

  def walk_block(block, env):
    for node in block.nodes():
      kind = node.kind()
      if kind == "prim::GetAttr":
        owner = env.get(node.input().unique())
        if owner is not None:
          attr = owner.getattr(node.s("name"))
          if isinstance(attr, torch._C.ScriptObject):
            env[node.output().unique()] = attr
      elif kind == "prim::CallMethod":
        target = env[next(node.inputs()).unique()]
        walk_graph(target._get_method(node.s("name")).graph, target)
      elif kind == "prim::CallFunction":
        raise RuntimeError("unexpected prim::CallFunction in a traced graph")
      elif kind.startswith("aten::") or kind == "prim::NumToTensor":
        counts[kind] += 1
      for b in node.blocks():
        walk_block(b, env)

  def walk_graph(graph, cmod):
    walk_block(graph.block(), {next(graph.inputs()).unique(): cmod})

  walk_graph(module._c._get_method("forward").graph, module._c)
  return dict(sorted(counts.items()))


def input_names(graph):
  names = []
  for i, v in enumerate(graph.inputs()):
    if i == 0:
      continue  # self
    names.append(re.sub(r"\.\d+$", "", v.debugName()))
  return names


def flatten_outputs(out):
  if isinstance(out, torch.Tensor):
    return [out]
  if isinstance(out, (tuple, list)):
    res = []
    for o in out:
      res.extend(flatten_outputs(o))
    return res
  raise TypeError("unexpected output type %r" % type(out))


def saved_forward_params(path, qualname):
  """Parameter names of `def forward(self, ...)` of class `qualname`
  (e.g. "__torch__.torchvision.models.resnet.ResNet") as written in the
  archive's code/ folder."""
  parts = qualname.split(".")
  module_file = "/".join(parts[:-1]) + ".py"
  cls = parts[-1]
  with zipfile.ZipFile(path) as z:
    entry = [n for n in z.namelist() if n.split("/", 1)[-1] ==
             "code/" + module_file]
    if len(entry) != 1:
      raise RuntimeError("no code/%s in %s" % (module_file, path))
    src = z.read(entry[0]).decode("utf-8")
  m = re.search(r"^class %s\(Module\):\n(.*?)(?=^class |\Z)" % re.escape(cls),
                src, re.S | re.M)
  if not m:
    raise RuntimeError("class %s not found in code/%s" % (cls, module_file))
  f = re.search(r"def forward\(self(.*?)\)\s*->", m.group(1), re.S)
  if not f:
    raise RuntimeError("forward() of %s not found" % cls)
  # "self: __torch__.X,\n    x: Tensor, y: Tensor": each name precedes a ":".
  return re.findall(r",\s*(\w+)\s*:", f.group(1))


def save_arrays(outdir, name, inputs, outs):
  """The example inputs as <name>.in<i>.npy and the traced module's outputs
  as <name>.out<j>.npy (floating outputs as float32)."""
  for i, t in enumerate(inputs):
    np.save(os.path.join(outdir, "%s.in%d.npy" % (name, i)), t.numpy())
  for j, t in enumerate(outs):
    a = t.detach().numpy()
    if t.is_floating_point():
      a = a.astype(np.float32)
    np.save(os.path.join(outdir, "%s.out%d.npy" % (name, j)), a)


def fmt_type(dt, shape):
  return "%s[%s]" % (dt, ",".join(str(d) for d in shape))


def to_json(info):
  """json.dumps with one input/output/op per line (shapes stay on one line)."""
  lines = ["{", '  "name": %s,' % json.dumps(info["name"])]
  for key in ("inputs", "outputs"):
    items = [json.dumps(x) for x in info[key]]
    lines.append('  "%s": [\n    %s\n  ],' % (key, ",\n    ".join(items)))
  ops = ["%s: %d" % (json.dumps(k), v) for k, v in info["aten_ops"].items()]
  lines.append('  "aten_ops": {\n    %s\n  },' % ",\n    ".join(ops))
  lines.append('  "torch_version": %s' % json.dumps(info["torch_version"]))
  lines.append("}")
  text = "\n".join(lines) + "\n"
  assert json.loads(text) == info
  return text


def build(name, ctor, specs, outdir):
  torch.manual_seed(0)
  model = ctor().eval()
  inputs = example_inputs(name, specs)
  with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    # The reload below re-runs the archive instead of check_trace's re-trace.
    traced = torch.jit.trace(model, tuple(inputs), check_trace=False)
    outs = flatten_outputs(traced(*inputs))
  pt_path = os.path.join(outdir, name + ".pt")
  torch.jit.save(traced, pt_path)  # the json, written last, marks success
  save_arrays(outdir, name, inputs, outs)

  ops = count_ops(traced)
  names = input_names(traced.graph)
  if len(names) != len(specs):
    raise RuntimeError("graph has %d inputs, expected %d" % (len(names),
                                                             len(specs)))
  saved = saved_forward_params(pt_path, traced._c._type().qualified_name())
  if saved != names:
    raise RuntimeError("graph input names %s differ from saved forward %s"
                       % (names, saved))
  loaded = torch.jit.load(pt_path)
  reloaded = count_ops(loaded)
  if reloaded != ops:
    raise RuntimeError("reloaded archive has other ops: %s vs %s"
                       % (reloaded, ops))
  with torch.no_grad():
    again = flatten_outputs(loaded(*inputs))
  if len(again) != len(outs) or not all(
      a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
      for a, b in zip(again, outs)):
    raise RuntimeError("the reloaded archive computes other outputs")

  info = {
    "name": name,
    "inputs": [{"name": n, "dtype": dt, "shape": shape,
                "flag": "%s:%s" % (n, fmt_type(dt, shape))}
               for n, (dt, shape) in zip(names, specs)],
    "outputs": [{"dtype": DTYPE_NAMES[o.dtype], "shape": list(o.shape)}
                for o in outs],
    "aten_ops": ops,
    "torch_version": torch.__version__,
  }
  json_path = os.path.join(outdir, name + ".json")
  with open(json_path + ".tmp", "w") as f:
    f.write(to_json(info))
  os.replace(json_path + ".tmp", json_path)
  return info


def main(argv):
  ap = argparse.ArgumentParser(description="Build nncc's model zoo.")
  ap.add_argument("outdir", nargs="?")
  ap.add_argument("--only", help="comma-separated model names")
  ap.add_argument("--list", action="store_true", help="list the models")
  args = ap.parse_args(argv)
  if args.list:
    for name, _, _, covers in MODELS:
      print("%-20s %s" % (name, covers))
    return 0
  if not args.outdir:
    ap.error("OUTDIR is required")
  wanted = [m for m in MODELS]
  if args.only:
    names = [n for n in args.only.split(",") if n]
    known = {m[0] for m in MODELS}
    bad = [n for n in names if n not in known]
    if bad:
      ap.error("unknown model(s): %s" % ", ".join(bad))
    wanted = [m for m in MODELS if m[0] in names]
  os.makedirs(args.outdir, exist_ok=True)
  torch.set_num_threads(max(1, os.cpu_count() or 1))

  failed = 0
  start = time.time()
  for name, ctor, specs, _ in wanted:
    t0 = time.time()
    try:
      info = build(name, ctor, specs, args.outdir)
    except Exception as e:  # report and go on with the next model
      failed += 1
      print("%-20s FAILED: %s: %s" % (name, type(e).__name__, e), flush=True)
      continue
    outs = ", ".join(fmt_type(o["dtype"], o["shape"]) for o in info["outputs"])
    print("%-20s %5.1fs %4d aten ops %3d kinds -> %s" %
          (name, time.time() - t0, sum(info["aten_ops"].values()),
           len(info["aten_ops"]), outs), flush=True)
  print("built %d of %d models in %.1fs" % (len(wanted) - failed, len(wanted),
                                            time.time() - start))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
