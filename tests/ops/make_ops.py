#!/usr/bin/env python3
"""make_ops.py - build the single-op test table for nncc's backend.

Usage: make_ops.py OUTDIR [--only SUBSTR] [--list]

Every case is a tiny nn.Module that calls one op (or one op plus the view
or cast it needs to be observable), traced with torch.jit.trace on fixed
example inputs and saved as OUTDIR/<case>.pt. Next to it go

  <case>.in<i>.npy    the example inputs, in forward() order
  <case>.out<j>.npy   what the traced module computes for them (tuples
                      flattened in order)
  <case>.alt<k>.in<i>.npy, <case>.alt<k>.out<j>.npy
                      up to two input sets at other shapes (batch and/or
                      last dim grown) on which the trace still computes
                      what eager mode does, with its outputs: the symbolic
                      check (check_ops.py --symbolic) runs on them
  <case>.json         name, covers (what the case exercises), inputs (name,
                      dtype, shape, flag: the ready-made --input value),
                      outputs (dtype, shape), alts (how many alternate
                      input sets), symbolic_gap (SYMBOLIC_GAPS' reason,
                      when listed), modules, functions and aten (the
                      torch.nn classes in it, the torch.nn.functional
                      functions its trace called, the ATen ops of the
                      traced graph: tests/ops/coverage.py reads them) and
                      tol, the relative
                      tolerance check_ops.py applies to floating outputs

Cases are generated from the CASES table at the bottom. Each one seeds
torch from its own name (module weights and inputs alike), so adding or
removing a case changes no other case's files. Inputs are spelled as
"KIND[DIMS]": f32 (standard normal), nan (f32 with NaNs and -infs),
pos (uniform in [0.5, 2.5), for log,
sqrt and pow), i64<HIGH (integers in [0, HIGH)), bool (a random mask).
"""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reexec import reexec  # noqa: E402
import time
import warnings
import zlib


try:
  import numpy as np
  import torch
  import torch.nn as nn
  import torch.nn.functional as F
except ImportError:
  reexec("NNCC_OPS_REEXEC", __file__)
  sys.stderr.write("make_ops.py: error: no python with torch and numpy "
                   "(tried %s, NNCC_PYTHON, /usr/bin/python3)\n" % sys.executable)
  sys.exit(2)


DEFAULT_TOL = 1e-4

DTYPE_NAMES = {
  torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16",
  torch.float64: "f64", torch.int64: "i64", torch.int32: "i32",
  torch.int16: "i16", torch.int8: "i8", torch.uint8: "u8", torch.bool: "bool",
}


# ---------------------------------------------------------------------------
# Wrappers: the traced module's forward() names its inputs x, y, z
# ---------------------------------------------------------------------------

class Fn1(nn.Module):
  def __init__(self, fn, **mods):
    super().__init__()
    self.fn = fn
    for k, m in mods.items():
      setattr(self, k, m)

  def forward(self, x):
    return self.fn(self, x)


class Fn2(Fn1):
  def forward(self, x, y):
    return self.fn(self, x, y)


class Fn3(Fn1):
  def forward(self, x, y, z):
    return self.fn(self, x, y, z)


WRAPPERS = {1: Fn1, 2: Fn2, 3: Fn3}


def f(fn, **mods):
  """A case body from a function of the inputs (and of submodules, reached
  through the first argument, the wrapper module)."""
  return ("fn", fn, mods)


def m(ctor, init=None):
  """A case body from an nn.Module constructor; init(module) may then set
  buffers (e.g. random running statistics)."""
  return ("mod", ctor, init)


def random_bn(bn):
  with torch.no_grad():
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.normal_()
    bn.bias.normal_()


class Residual(nn.Module):
  """relu(bn(conv3x3(x)) + x), the step of a ResNet basic block."""

  def __init__(self, c):
    super().__init__()
    self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
    self.bn = nn.BatchNorm2d(c)

  def forward(self, x):
    return torch.relu(self.bn(self.conv(x)) + x)


def random_bn_stats(bn):
  with torch.no_grad():
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)


def random_ln(ln):
  with torch.no_grad():
    ln.weight.normal_()
    ln.bias.normal_()


# ---------------------------------------------------------------------------
# The table: (name, body, input specs, covers[, tol])
# ---------------------------------------------------------------------------

X = "f32[2,3,17]"
P = "pos[2,3,17]"

CASES = [
  # conv2d
  ("conv_3x3", m(lambda: nn.Conv2d(3, 8, 3)), ["f32[1,3,17,17]"],
   "conv2d 3x3, no padding"),
  ("conv_s2_p1", m(lambda: nn.Conv2d(3, 16, 3, stride=2, padding=1)),
   ["f32[1,3,33,33]"], "conv2d stride 2, padding 1"),
  ("conv_stem_7x7", m(lambda: nn.Conv2d(3, 8, 7, stride=2, padding=3)),
   ["f32[1,3,33,33]"], "conv2d 7x7 stride 2 padding 3 (resnet stem)"),
  ("conv_dilation2", m(lambda: nn.Conv2d(4, 8, 3, padding=2, dilation=2)),
   ["f32[1,4,17,17]"], "conv2d dilation 2"),
  ("conv_groups2", m(lambda: nn.Conv2d(4, 8, 3, padding=1, groups=2)),
   ["f32[2,4,7,7]"], "grouped conv2d, batch 2"),
  ("conv_depthwise", m(lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8)),
   ["f32[1,8,17,17]"], "depthwise conv2d 3x3"),
  ("conv_depthwise_5x5_s2",
   m(lambda: nn.Conv2d(8, 8, 5, stride=2, padding=2, groups=8)),
   ["f32[1,8,33,33]"], "depthwise conv2d 5x5 stride 2"),
  ("conv_depthwise_mult2", m(lambda: nn.Conv2d(4, 8, 3, groups=4)),
   ["f32[1,4,7,7]"], "depthwise conv2d with channel multiplier 2"),
  ("conv_1x1_nobias", m(lambda: nn.Conv2d(16, 7, 1, bias=False)),
   ["f32[1,16,7,7]"], "pointwise conv2d without bias"),
  ("conv_rect", m(lambda: nn.Conv2d(3, 5, (3, 1), stride=(2, 1),
                                    padding=(1, 0))),
   ["f32[1,3,17,7]"], "conv2d with a 3x1 kernel and per-axis stride/padding"),
  ("conv_batch3_k7_s3", m(lambda: nn.Conv2d(1, 3, 7, stride=3)),
   ["f32[3,1,33,33]"], "conv2d batch 3, one input channel, stride 3"),
  ("conv_1x1_input", m(lambda: nn.Conv2d(3, 4, 3, padding=1)),
   ["f32[1,3,1,1]"], "conv2d on a 1x1 image (all padding)"),
  # 3x3 stride-1 convolutions with 16+ channels: Winograd F(2x2, 3x3)
  ("conv_winograd", m(lambda: nn.Conv2d(16, 24, 3, padding=1)),
   ["f32[1,16,14,14]"], "conv2d 3x3 by Winograd, even size"),
  ("conv_winograd_odd", m(lambda: nn.Conv2d(20, 17, 3, padding=1, bias=False)),
   ["f32[2,20,9,11]"], "conv2d 3x3 by Winograd, odd sizes, batch 2, no bias"),
  ("conv_winograd_pad", m(lambda: nn.Conv2d(16, 16, 3, padding=(0, 2))),
   ["f32[1,16,7,5]"], "conv2d 3x3 by Winograd, padding 0 and 2"),
  ("conv_winograd_residual", m(lambda: Residual(32), lambda r: random_bn(r.bn)),
   ["f32[1,32,7,7]"], "conv2d 3x3 by Winograd with batchnorm, residual add "
   "and relu fused"),

  # linear / addmm / matmul / bmm
  ("linear_2d", m(lambda: nn.Linear(17, 33)), ["f32[3,17]"], "linear"),
  ("linear_3d", m(lambda: nn.Linear(7, 5)), ["f32[2,3,7]"],
   "linear on a 3-d input"),
  ("linear_nobias_1out", m(lambda: nn.Linear(33, 1, bias=False)),
   ["f32[1,33]"], "linear without bias, one output feature"),
  ("addmm", f(lambda s, b, x, w: torch.addmm(b, x, w)),
   ["f32[5]", "f32[3,7]", "f32[7,5]"], "addmm with a broadcast bias"),
  ("addmm_alpha_beta",
   f(lambda s, b, x, w: torch.addmm(b, x, w, beta=0.5, alpha=2.0)),
   ["f32[3,5]", "f32[3,7]", "f32[7,5]"], "addmm with beta and alpha"),
  ("mm", f(lambda s, x, y: torch.mm(x, y)), ["f32[1,33]", "f32[33,17]"],
   "mm"),
  ("matmul_2d", f(lambda s, x, y: torch.matmul(x, y)),
   ["f32[3,7]", "f32[7,5]"], "matmul 2-d"),
  ("matmul_bcast", f(lambda s, x, y: torch.matmul(x, y)),
   ["f32[2,1,3,7]", "f32[4,7,5]"], "matmul with broadcast batch dims"),
  ("matmul_mat_vec", f(lambda s, x, y: torch.matmul(x, y)),
   ["f32[3,7]", "f32[7]"], "matmul matrix x vector"),
  ("matmul_vec_batch", f(lambda s, x, y: torch.matmul(x, y)),
   ["f32[7]", "f32[2,7,5]"], "matmul vector x batched matrix"),
  ("matmul_3d_2d", f(lambda s, x, y: torch.matmul(x, y)),
   ["f32[2,3,17]", "f32[17,33]"], "matmul 3-d x 2-d"),
  ("matmul_transposed", f(lambda s, x, y: torch.matmul(x, y.transpose(-1, -2))),
   ["f32[2,3,7]", "f32[2,5,7]"], "matmul with a transposed operand"),
  ("bmm", f(lambda s, x, y: torch.bmm(x, y)), ["f32[4,3,7]", "f32[4,7,5]"],
   "bmm"),

  # batch_norm (eval)
  ("batchnorm2d", m(lambda: nn.BatchNorm2d(7).eval(), random_bn),
   ["f32[2,7,3,3]"], "batch_norm eval with running stats, 4-d"),
  ("batchnorm1d", m(lambda: nn.BatchNorm1d(17).eval(), random_bn),
   ["f32[3,17]"], "batch_norm eval, 2-d"),
  ("batchnorm1d_3d", m(lambda: nn.BatchNorm1d(5).eval(), random_bn),
   ["f32[2,5,7]"], "batch_norm eval, 3-d"),

  # activations
  ("relu", f(lambda s, x: F.relu(x)), [X], "relu"),
  ("relu_inplace", f(lambda s, x: F.relu(x * 1.0, inplace=True)), [X],
   "relu_ (in place)"),
  ("relu6", f(lambda s, x: F.relu6(x * 4)), [X], "relu6"),
  ("hardtanh", f(lambda s, x: F.hardtanh(x, -0.5, 1.5)), [X], "hardtanh"),
  ("relu_nan", f(lambda s, x: F.relu(x)), ["nan[2,3,17]"],
   "relu keeps NaNs, -inf gives 0"),
  ("hardtanh_nan", f(lambda s, x: F.hardtanh(x * 4, -0.5, 1.5)),
   ["nan[2,3,17]"], "hardtanh keeps NaNs"),
  ("clamp_nan", f(lambda s, x: torch.clamp(x, max=0.25)), ["nan[2,3,17]"],
   "clamp with only a maximum keeps NaNs"),
  ("sigmoid", f(lambda s, x: torch.sigmoid(x * 3)), [X], "sigmoid"),
  ("tanh", f(lambda s, x: torch.tanh(x * 2)), [X], "tanh"),
  ("gelu_erf", f(lambda s, x: F.gelu(x * 2)), [X], "gelu (erf form)"),
  ("gelu_tanh", f(lambda s, x: F.gelu(x * 2, approximate="tanh")), [X],
   "gelu (tanh approximation)"),
  ("silu", f(lambda s, x: F.silu(x * 2)), [X], "silu"),
  ("hardswish", f(lambda s, x: F.hardswish(x * 3)), [X], "hardswish"),
  ("hardsigmoid", f(lambda s, x: F.hardsigmoid(x * 3)), [X], "hardsigmoid"),
  ("selu", m(lambda: nn.SELU()), ["nan[2,3,17]"], "SELU over NaNs and -infs"),
  ("celu", m(lambda: nn.CELU(0.7)), [X], "CELU with alpha 0.7"),
  ("rrelu_eval", m(lambda: nn.RReLU(0.1, 0.4).eval()), [X], "RReLU in eval mode"),
  ("hardshrink", m(lambda: nn.Hardshrink(0.8)), ["nan[2,3,17]"], "Hardshrink over NaNs"),
  ("softshrink", m(lambda: nn.Softshrink(0.3)), ["nan[2,3,17]"], "Softshrink over NaNs"),
  ("logsigmoid", f(lambda s, x: F.logsigmoid(x * 40)), [X], "LogSigmoid, large |x|"),
  ("prelu_1", m(lambda: nn.PReLU()), ["f32[2,5,7,3]"], "PReLU, one slope"),
  ("prelu_c", m(lambda: nn.PReLU(5), lambda p: p.weight.data.uniform_(-1, 1)),
   ["f32[2,5,7,3]"], "PReLU, a slope per channel"),
  ("prelu_c_2d", m(lambda: nn.PReLU(6), lambda p: p.weight.data.uniform_(-1, 1)),
   ["f32[3,6]"], "PReLU per channel on [N, C]"),
  # padding modes (aten::pad and the reflection/replication ops)
  ("pad_constant_mod", m(lambda: nn.ConstantPad2d((1, 2, 0, 3), 1.5)), ["f32[2,3,5,4]"],
   "ConstantPad2d, uneven"),
  ("pad_zero", m(lambda: nn.ZeroPad2d(2)), ["f32[1,3,5,4]"], "ZeroPad2d"),
  ("pad_constant_3d", m(lambda: nn.ConstantPad3d(1, -2.0)), ["f32[1,2,3,4,5]"], "ConstantPad3d"),
  ("pad_reflect1d", m(lambda: nn.ReflectionPad1d((3, 1))), ["f32[2,3,5]"], "ReflectionPad1d"),
  ("pad_reflect2d", m(lambda: nn.ReflectionPad2d((1, 3, 2, 0))), ["f32[2,3,5,4]"],
   "ReflectionPad2d, uneven"),
  ("pad_reflect3d", m(lambda: nn.ReflectionPad3d(1)), ["f32[1,2,3,4,5]"], "ReflectionPad3d"),
  ("pad_replicate1d", m(lambda: nn.ReplicationPad1d((2, 4))), ["f32[2,3,5]"],
   "ReplicationPad1d"),
  ("pad_replicate2d", m(lambda: nn.ReplicationPad2d((3, 0, 1, 2))), ["f32[2,3,5,4]"],
   "ReplicationPad2d"),
  ("pad_replicate3d", m(lambda: nn.ReplicationPad3d((1, 2, 0, 1, 2, 0))), ["f32[1,2,3,4,5]"],
   "ReplicationPad3d"),
  ("pad_circular", f(lambda s, x: F.pad(x, (2, 1, 3, 4), mode="circular")), ["f32[2,3,5,4]"],
   "F.pad circular"),
  ("pad_reflect_fn", f(lambda s, x: F.pad(x, (2, 2), mode="reflect") * 2), ["f32[2,3,7]"],
   "F.pad reflect on the last dim"),

  # upsampling (interpolate)
  ("up_nearest_scale", m(lambda: nn.Upsample(scale_factor=2)), ["f32[2,3,5,4]"],
   "Upsample nearest by scale 2"),
  ("up_nearest_frac", f(lambda s, x: F.interpolate(x, scale_factor=1.7)), ["f32[1,3,5,4]"],
   "interpolate nearest by scale 1.7"),
  ("up_nearest_size", f(lambda s, x: F.interpolate(x, size=(7, 3))), ["f32[1,3,5,4]"],
   "interpolate nearest to a size (down in one dim)"),
  ("up_nearest_exact", f(lambda s, x: F.interpolate(x, scale_factor=1.5, mode="nearest-exact")),
   ["f32[1,3,5,4]"], "nearest-exact"),
  ("up_nearest1d", f(lambda s, x: F.interpolate(x, scale_factor=3)), ["f32[2,3,5]"],
   "nearest 1-d"),
  ("up_nearest3d", f(lambda s, x: F.interpolate(x, scale_factor=(2, 1, 2))), ["f32[1,2,3,4,5]"],
   "nearest 3-d"),
  ("up_bilinear", m(lambda: nn.Upsample(scale_factor=2, mode="bilinear")), ["f32[2,3,5,4]"],
   "bilinear by scale 2"),
  ("up_bilinear_ac", f(lambda s, x: F.interpolate(x, size=(9, 7), mode="bilinear",
                                                  align_corners=True)),
   ["f32[1,3,5,4]"], "bilinear to a size, align_corners"),
  ("up_bilinear_down", f(lambda s, x: F.interpolate(x, size=(3, 2), mode="bilinear")),
   ["f32[1,3,8,7]"], "bilinear downsampling"),
  ("up_bilinear_frac", f(lambda s, x: F.interpolate(x, scale_factor=1.3, mode="bilinear")),
   ["f32[1,2,5,6]"], "bilinear by scale 1.3"),
  ("up_linear", f(lambda s, x: F.interpolate(x, scale_factor=2.5, mode="linear")),
   ["f32[2,3,7]"], "linear 1-d"),
  ("up_linear_ac", f(lambda s, x: F.interpolate(x, size=11, mode="linear", align_corners=True)),
   ["f32[2,3,7]"], "linear 1-d, align_corners"),
  ("up_trilinear", f(lambda s, x: F.interpolate(x, scale_factor=2, mode="trilinear")),
   ["f32[1,2,3,4,5]"], "trilinear"),
  ("up_bicubic", f(lambda s, x: F.interpolate(x, scale_factor=2, mode="bicubic")),
   ["f32[1,3,5,4]"], "bicubic"),
  ("up_bicubic_ac", f(lambda s, x: F.interpolate(x, size=(6, 9), mode="bicubic",
                                                 align_corners=True)),
   ["f32[1,3,5,4]"], "bicubic to a size, align_corners"),
  ("up_bilinear_1x1", f(lambda s, x: F.interpolate(x, size=(1, 3), mode="bilinear",
                                                   align_corners=True)),
   ["f32[1,2,5,4]"], "bilinear to one row with align_corners (ratio 0)"),

  ("instnorm2d", m(lambda: nn.InstanceNorm2d(4)), ["f32[2,4,5,6]"], "InstanceNorm2d"),
  ("instnorm2d_affine", m(lambda: nn.InstanceNorm2d(4, affine=True), random_ln),
   ["f32[2,4,5,6]"], "InstanceNorm2d with affine parameters"),
  ("instnorm1d", m(lambda: nn.InstanceNorm1d(3)), ["f32[2,3,9]"], "InstanceNorm1d"),
  ("instnorm3d", m(lambda: nn.InstanceNorm3d(2, affine=True), random_ln), ["f32[1,2,3,4,5]"],
   "InstanceNorm3d with affine parameters"),
  ("instnorm2d_running", m(lambda: nn.InstanceNorm2d(4, track_running_stats=True).eval(),
                           random_bn_stats),
   ["f32[2,4,5,6]"], "InstanceNorm2d with running statistics (eval)"),
  ("unflatten", m(lambda: nn.Unflatten(1, (2, -1))), ["f32[2,6,5]"], "Unflatten with -1"),
  ("unflatten_last", f(lambda s, x: x.unflatten(-1, (3, 1, 2)) * 2), ["f32[2,6]"],
   "unflatten of the last dim"),
  ("pixel_unshuffle", m(lambda: nn.PixelUnshuffle(3)), ["f32[2,2,6,9]"], "PixelUnshuffle by 3"),
  ("pixel_roundtrip", f(lambda s, x: F.pixel_shuffle(F.pixel_unshuffle(x, 2) * 2, 2)),
   ["f32[1,3,4,6]"], "pixel_unshuffle then pixel_shuffle"),
  ("channel_shuffle", m(lambda: nn.ChannelShuffle(3)), ["f32[2,6,3,4]"], "ChannelShuffle, 3 groups"),
  ("lstm_cell", m(lambda: nn.LSTMCell(8, 6)), ["f32[3,8]"],
   "LSTMCell (unsafe_chunk of the gates), zero state"),
  ("gru_cell", m(lambda: nn.GRUCell(8, 6)), ["f32[3,8]"], "GRUCell, zero state"),
  ("lstm", m(lambda: nn.LSTM(8, 6)), ["f32[5,3,8]"], "LSTM, one layer, zero state; output, h_n, c_n"),
  ("lstm_2l_bi_bf", m(lambda: nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)),
   ["f32[3,5,8]"], "LSTM, two bidirectional layers, batch_first"),
  ("lstm_proj", m(lambda: nn.LSTM(8, 6, proj_size=4, num_layers=2)), ["f32[5,3,8]"],
   "LSTM with proj_size, two layers"),
  ("lstm_nobias", m(lambda: nn.LSTM(7, 5, bias=False)), ["f32[4,2,7]"], "LSTM without biases"),
  ("lstm_state", f(lambda s, x, h, c: s.l(x, (h, c)), l=nn.LSTM(8, 6, bidirectional=True)),
   ["f32[5,3,8]", "f32[2,3,6]", "f32[2,3,6]"], "LSTM with a given initial state"),
  ("lstm_unbatched", m(lambda: nn.LSTM(8, 6)), ["f32[5,8]"], "LSTM on an unbatched sequence"),
  ("lstm_one_step", m(lambda: nn.LSTM(3, 4, batch_first=True)), ["f32[1,1,3]"],
   "LSTM, one step of batch 1"),
  ("gru", m(lambda: nn.GRU(8, 6, batch_first=True)), ["f32[3,5,8]"], "GRU, batch_first"),
  ("gru_2l_bi", m(lambda: nn.GRU(8, 6, num_layers=2, bidirectional=True)), ["f32[4,2,8]"],
   "GRU, two bidirectional layers"),
  ("gru_state", f(lambda s, x, h: s.g(x, h), g=nn.GRU(5, 7, bias=False)),
   ["f32[6,2,5]", "f32[1,2,7]"], "GRU without biases, given initial state"),
  ("rnn_tanh", m(lambda: nn.RNN(8, 6)), ["f32[5,3,8]"], "RNN (tanh)"),
  ("rnn_relu", m(lambda: nn.RNN(8, 6, nonlinearity="relu", num_layers=2, bidirectional=True)),
   ["f32[5,3,8]"], "RNN (relu), two bidirectional layers"),

  # every torch.nn class and torch.nn.functional function once more as such
  # (tests/ops/coverage.py counts which a case uses)
  ("nn_identity", m(lambda: nn.Identity()), ["f32[3,5]"], "nn.Identity"),
  ("nn_flatten", m(lambda: nn.Flatten()), ["f32[2,3,4,5]"], "nn.Flatten"),
  ("nn_conv1d", m(lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1)), ["f32[2,4,11]"],
   "nn.Conv1d, stride 2, padding 1"),
  ("nn_conv3d", m(lambda: nn.Conv3d(3, 4, 3, padding=1)), ["f32[1,3,5,6,7]"], "nn.Conv3d"),
  ("nn_conv_transpose1d", m(lambda: nn.ConvTranspose1d(4, 6, 3, stride=2)), ["f32[2,4,9]"],
   "nn.ConvTranspose1d, stride 2"),
  ("nn_conv_transpose2d", m(lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                       output_padding=1)),
   ["f32[2,4,5,6]"], "nn.ConvTranspose2d, stride 2, output_padding 1"),
  ("nn_conv_transpose3d", m(lambda: nn.ConvTranspose3d(3, 2, 3)), ["f32[1,3,4,5,5]"],
   "nn.ConvTranspose3d"),
  ("conv_t2d_groups_dil", m(lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=2, dilation=2,
                                                      groups=2, output_padding=1)),
   ["f32[2,4,5,4]"], "ConvTranspose2d with groups, dilation, output_padding"),
  ("conv_t1d_crop", m(lambda: nn.ConvTranspose1d(3, 2, 3, stride=3, padding=3, bias=False)),
   ["f32[2,3,6]"], "ConvTranspose1d whose padding crops (padding > dilation*(k-1))"),
  ("conv3d_strided_groups", m(lambda: nn.Conv3d(4, 4, 3, stride=(2, 1, 2), padding=(1, 0, 1),
                                                dilation=(2, 1, 1), groups=2, bias=False)),
   ["f32[2,4,7,5,6]"], "Conv3d with per-dim stride, padding, dilation, groups"),
  ("nn_activations", f(lambda s, x: s.a(x) + s.b(x) + s.c(x) + s.d(x) + s.e(x) + s.g(x),
                       a=nn.ReLU(), b=nn.ReLU6(), c=nn.Sigmoid(), d=nn.Tanh(), e=nn.Hardtanh(-2, 2),
                       g=nn.Threshold(0.1, 20.0)),
   ["f32[3,7]"], "nn.ReLU, ReLU6, Sigmoid, Tanh, Hardtanh, Threshold"),
  ("nn_activations2", f(lambda s, x: s.a(x) + s.b(x) + s.c(x) + s.d(x) + s.e(x) + s.g(x),
                        a=nn.ELU(0.5), b=nn.GELU("tanh"), c=nn.LeakyReLU(0.2), d=nn.LogSigmoid(),
                        e=nn.Softplus(2, 5), g=nn.Softsign()),
   ["f32[3,7]"], "nn.ELU, GELU (tanh), LeakyReLU, LogSigmoid, Softplus, Softsign"),
  ("nn_activations3", f(lambda s, x: s.a(x) + s.b(x) + s.c(x) + s.d(x) + s.e(x),
                        a=nn.Tanhshrink(), b=nn.Hardsigmoid(), c=nn.Hardswish(), d=nn.SiLU(),
                        e=nn.Mish()),
   ["f32[3,7]"], "nn.Tanhshrink, Hardsigmoid, Hardswish, SiLU, Mish"),
  ("nn_softmaxes", f(lambda s, x: (s.a(x), s.b(x), s.c(x), s.d(x)), a=nn.Softmax(1),
                     b=nn.LogSoftmax(-1), c=nn.Softmin(1), d=nn.Softmax2d()),
   ["f32[2,3,4,5]"], "nn.Softmax, LogSoftmax, Softmin, Softmax2d"),
  ("nn_glu", m(lambda: nn.GLU(1)), ["f32[3,8,5]"], "nn.GLU over dim 1"),
  ("F_activations", f(lambda s, x: F.sigmoid(x) + F.tanh(x) + F.softsign(x) + F.tanhshrink(x)
                      + F.mish(x) + F.elu(x) + F.leaky_relu(x, 0.3) + F.threshold(x, 0.2, -1.0)),
   ["f32[3,7]"], "F.sigmoid, tanh, softsign, tanhshrink, mish, elu, leaky_relu, threshold"),
  ("F_glu", f(lambda s, x: F.glu(x, 1)), ["f32[3,8,5]"], "F.glu over dim 1"),
  ("F_softmin", f(lambda s, x: F.softmin(x, dim=-1)), ["f32[3,7]"], "F.softmin"),
  ("F_inplace", f(lambda s, x: F.relu_(x * 1) + F.elu_(x * 1) + F.celu_(x * 1) +
                  F.leaky_relu_(x * 1, 0.1) + F.hardtanh_(x * 1) + F.selu_(x * 1) +
                  F.threshold_(x * 1, 0.5, 2.0) + F.rrelu_(x * 1, training=False)),
   ["f32[3,7]"], "the in-place forms: relu_, elu_, celu_, leaky_relu_, hardtanh_, selu_, threshold_, rrelu_"),
  ("nn_pool1d", f(lambda s, x: (s.a(x), s.b(x), s.c(x), s.d(x)), a=nn.AvgPool1d(3, 2, 1),
                  b=nn.MaxPool1d(3, 2, ceil_mode=True), c=nn.AdaptiveAvgPool1d(4),
                  d=nn.AdaptiveMaxPool1d(3)),
   ["f32[2,3,11]"], "nn.AvgPool1d, MaxPool1d (ceil_mode), AdaptiveAvgPool1d, AdaptiveMaxPool1d"),
  ("nn_pool2d", f(lambda s, x: (s.a(x), s.b(x), s.c(x), s.d(x)), a=nn.AvgPool2d(3, 2, 1),
                  b=nn.MaxPool2d(3, 2, dilation=2), c=nn.AdaptiveAvgPool2d((3, 2)),
                  d=nn.AdaptiveMaxPool2d(3)),
   ["f32[2,3,11,10]"], "nn.AvgPool2d, MaxPool2d (dilation), AdaptiveAvgPool2d, AdaptiveMaxPool2d"),
  ("nn_pool3d", f(lambda s, x: (s.a(x), s.b(x)), a=nn.AdaptiveMaxPool3d(2),
                  b=nn.AdaptiveAvgPool3d((1, 2, 3))),
   ["f32[1,2,5,6,7]"], "nn.AdaptiveMaxPool3d, AdaptiveAvgPool3d"),
  ("F_pool_indices", f(lambda s, x: (F.max_pool1d_with_indices(x.flatten(2), 3)[0],
                                     F.max_pool2d_with_indices(x, 2)[1],
                                     F.adaptive_max_pool2d(x, 3),
                                     F.adaptive_max_pool2d_with_indices(x, 2)[1],
                                     F.adaptive_max_pool1d_with_indices(x.flatten(2), 5)[1],
                                     F.max_pool1d(x.flatten(2), 4))),
   ["f32[2,3,6,7]"], "max_pool1d/2d_with_indices, adaptive_max_pool1d/2d (with indices), max_pool1d"),
  ("F_pool3d_indices", f(lambda s, x: (F.max_pool3d_with_indices(x, 2)[1],
                                       F.adaptive_max_pool3d_with_indices(x, 2)[1])),
   ["f32[1,2,4,5,6]"], "max_pool3d_with_indices, adaptive_max_pool3d_with_indices"),
  ("nn_batchnorm3d", m(lambda: nn.BatchNorm3d(3).eval(), random_bn), ["f32[2,3,4,5,3]"],
   "nn.BatchNorm3d in eval mode"),
  ("nn_groupnorm", m(lambda: nn.GroupNorm(2, 6), random_ln), ["f32[2,6,5,4]"], "nn.GroupNorm"),
  ("F_group_norm", f(lambda s, x: F.group_norm(x, 3)), ["f32[2,6,7]"], "F.group_norm, no affine"),
  ("nn_dropouts", f(lambda s, x: s.a(x.flatten(2)).unflatten(2, (4, 5)) + s.b(x) +
                    s.c(x.unsqueeze(0)).squeeze(0) + s.d(x) + s.e(x) + s.g(x),
                    a=nn.Dropout1d(), b=nn.Dropout2d(), c=nn.Dropout3d(), d=nn.AlphaDropout(),
                    e=nn.FeatureAlphaDropout(), g=nn.Dropout()),
   ["f32[2,3,4,5]"], "the dropouts in eval mode (identity)"),
  ("F_dropouts", f(lambda s, x: F.dropout1d(x.flatten(2), training=False).unflatten(2, (4, 5))
                   + F.dropout2d(x, training=False)
                   + F.dropout3d(x.unsqueeze(0), training=False).squeeze(0) + F.alpha_dropout(x)
                   + F.feature_alpha_dropout(x) + F.dropout(x, training=False)),
   ["f32[2,3,4,5]"], "F.dropout* with training off (identity)"),
  ("nn_pixel_shuffle", m(lambda: nn.PixelShuffle(2)), ["f32[2,8,3,4]"], "nn.PixelShuffle"),
  ("nn_upsampling", f(lambda s, x: (s.a(x), s.b(x)), a=nn.UpsamplingNearest2d(scale_factor=2),
                      b=nn.UpsamplingBilinear2d(size=(5, 7))),
   ["f32[1,2,3,4]"], "nn.UpsamplingNearest2d, UpsamplingBilinear2d (align_corners)"),
  ("F_upsample", f(lambda s, x: (F.upsample(x, scale_factor=2), F.upsample_nearest(x, size=(4, 6)),
                                 F.upsample_bilinear(x, scale_factor=2))),
   ["f32[1,2,3,4]"], "the deprecated F.upsample, upsample_nearest, upsample_bilinear"),
  ("nn_constant_pad1d", m(lambda: nn.ConstantPad1d((2, 1), 3.5)), ["f32[2,3,5]"],
   "nn.ConstantPad1d"),
  ("nn_rnn_cell", m(lambda: nn.RNNCell(8, 6)), ["f32[3,8]"], "nn.RNNCell, zero state"),
  ("nn_lp_pool", f(lambda s, x: (s.a(x), s.b(x.flatten(2))), a=nn.LPPool2d(2, 2),
                   b=nn.LPPool1d(3, 3)),
   ["pos[2,3,6,7]"], "nn.LPPool2d (p 2), LPPool1d (p 3)"),
  ("F_normalize", f(lambda s, x: (F.normalize(x), F.normalize(x, p=1, dim=-1))), ["f32[3,7,2]"],
   "F.normalize, p 2 over dim 1 and p 1 over the last"),
  ("nn_gaussian_nll", m(lambda: nn.GaussianNLLLoss()), ["f32[4,5]", "f32[4,5]", "pos[4,5]"],
   "nn.GaussianNLLLoss"),
  ("nn_multilabel_soft_margin", m(lambda: nn.MultiLabelSoftMarginLoss()), ["f32[4,5]", "i64<2[4,5]"],
   "nn.MultiLabelSoftMarginLoss"),
  ("nn_bce_loss", f(lambda s, x, y: s.l(torch.sigmoid(x), torch.sigmoid(y)), l=nn.BCELoss()),
   ["f32[4,6]", "f32[4,6]"], "nn.BCELoss"),
  ("nn_soft_margin", f(lambda s, x, y: s.l(x, torch.sign(y)), l=nn.SoftMarginLoss()),
   ["f32[4,6]", "f32[4,6]"], "nn.SoftMarginLoss"),
  ("nn_hinge_embedding", f(lambda s, x, y: s.l(x, (y > 0).float() * 2 - 1),
                           l=nn.HingeEmbeddingLoss()),
   ["f32[4,6]", "f32[4,6]"], "nn.HingeEmbeddingLoss"),
  ("nn_margin_ranking", f(lambda s, a, b, y: s.l(a, b, torch.sign(y)), l=nn.MarginRankingLoss(0.1)),
   ["f32[7]", "f32[7]", "f32[7]"], "nn.MarginRankingLoss"),
  ("nn_cosine_embedding", f(lambda s, a, b, y: s.l(a, b, (y > 0).float() * 2 - 1),
                            l=nn.CosineEmbeddingLoss()),
   ["f32[5,8]", "f32[5,8]", "f32[5]"], "nn.CosineEmbeddingLoss"),
  ("nn_nll_loss2d", m(lambda: nn.NLLLoss2d()), ["f32[2,4,3,5]", "i64<4[2,3,5]"], "nn.NLLLoss2d"),
  ("nn_triplet_distance", m(lambda: nn.TripletMarginWithDistanceLoss()),
   ["f32[5,8]", "f32[5,8]", "f32[5,8]"], "nn.TripletMarginWithDistanceLoss, default distance"),
  ("nn_sequential", m(lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))),
   ["f32[3,4]"], "nn.Sequential of Linear, ReLU, Linear"),
  ("nn_module_list", f(lambda s, x: s.l[1](s.l[0](x)), l=nn.ModuleList([nn.Linear(4, 5),
                                                                          nn.ReLU()])),
   ["f32[3,4]"], "nn.ModuleList holding a Linear and a ReLU"),

  ("embedding_bag_mean", m(lambda: nn.EmbeddingBag(10, 4, mode="mean")), ["i64<10[3,5]"],
   "EmbeddingBag, mean of 2-d bags"),
  ("embedding_bag_sum_offsets", f(lambda s, i: s.e(i, torch.tensor([0, 2, 2, 5])),
                                  e=nn.EmbeddingBag(10, 4, mode="sum")),
   ["i64<10[8]"], "EmbeddingBag, sum over bags by offsets, one bag empty"),
  ("embedding_bag_max", m(lambda: nn.EmbeddingBag(10, 4, mode="max")), ["i64<10[3,5]"],
   "EmbeddingBag, max of 2-d bags"),
  ("embedding_bag_pad", f(lambda s, i: s.e(i, torch.tensor([0, 3, 6])),
                          e=nn.EmbeddingBag(10, 4, mode="mean", padding_idx=0)),
   ["i64<3[8]"], "EmbeddingBag, mean, padding_idx (rows left out of the count)"),
  ("embedding_bag_weighted", f(lambda s, i, w: s.e(i, torch.tensor([0, 4]), per_sample_weights=w),
                               e=nn.EmbeddingBag(10, 4, mode="sum")),
   ["i64<10[8]", "f32[8]"], "EmbeddingBag, sum with per_sample_weights"),

  # attention: the eval-mode fast paths traced under no_grad, and the rest
  ("mha_fast", f(lambda s, x: s.a(x, x, x, need_weights=False)[0],
                 a=nn.MultiheadAttention(8, 2, batch_first=True)),
   ["f32[2,5,8]"], "MultiheadAttention fast path (_native_multi_head_attention)"),
  ("mha_fast_padding", f(lambda s, x, m: s.a(x, x, x, key_padding_mask=m < 1, need_weights=False)[0],
                         a=nn.MultiheadAttention(12, 3, batch_first=True)),
   ["f32[3,6,12]", "i64<4[3,6]"], "MultiheadAttention fast path with a key padding mask"),
  ("mha_weights", f(lambda s, q, k: s.a(q, k, k), a=nn.MultiheadAttention(8, 4, batch_first=True)),
   ["f32[2,5,8]", "f32[2,7,8]"], "MultiheadAttention, cross attention, averaged weights"),
  ("mha_weights_per_head", f(lambda s, x: s.a(x, x, x, average_attn_weights=False),
                             a=nn.MultiheadAttention(8, 2)),
   ["f32[5,2,8]"], "MultiheadAttention, sequence first, weights per head"),
  ("mha_kdim_vdim", f(lambda s, q, k, v: s.a(q, k, v)[0],
                      a=nn.MultiheadAttention(8, 2, kdim=6, vdim=4, batch_first=True)),
   ["f32[2,5,8]", "f32[2,3,6]", "f32[2,3,4]"], "MultiheadAttention with kdim and vdim"),
  ("encoder_layer_fast", m(lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)),
   ["f32[2,5,8]"], "TransformerEncoderLayer fast path (_transformer_encoder_layer_fwd)"),
  ("encoder_layer_fast_gelu_pre",
   m(lambda: nn.TransformerEncoderLayer(12, 3, 20, activation="gelu", norm_first=True,
                                        batch_first=True)),
   ["f32[3,4,12]"], "TransformerEncoderLayer fast path, gelu, norm_first"),
  ("encoder_layer_fast_padding",
   f(lambda s, x, m: s.l(x, src_key_padding_mask=m < 1),
     l=nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)),
   ["f32[2,5,8]", "i64<4[2,5]"], "TransformerEncoderLayer fast path with a padding mask"),
  ("encoder_stack", m(lambda: nn.TransformerEncoder(
      nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2, enable_nested_tensor=False)),
   ["f32[2,5,8]"], "TransformerEncoder of two fast-path layers"),
  ("encoder_layer_seq_first", m(lambda: nn.TransformerEncoderLayer(8, 2, 16)), ["f32[5,2,8]"],
   "TransformerEncoderLayer, sequence first (no fast path)"),
  ("transformer", f(lambda s, a, b: s.t(a, b), t=nn.Transformer(
      8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16, batch_first=True)),
   ["f32[2,5,8]", "f32[2,4,8]"], "nn.Transformer, one encoder and one decoder layer"),

  # losses and distances (expanded after shape inference)
  ("mse_loss", m(lambda: nn.MSELoss()), ["f32[4,5]", "f32[4,5]"], "MSELoss, mean"),
  ("mse_loss_sum_bcast", f(lambda s, x, y: F.mse_loss(x, y.expand_as(x), reduction="sum")),
   ["f32[3,4,5]", "f32[4,5]"], "mse_loss, sum, target expanded"),
  ("l1_loss_none", m(lambda: nn.L1Loss(reduction="none")), ["f32[3,6]", "f32[3,6]"],
   "L1Loss, no reduction"),
  ("smooth_l1_beta", m(lambda: nn.SmoothL1Loss(beta=0.5)), ["f32[4,9]", "f32[4,9]"],
   "SmoothL1Loss, beta 0.5"),
  ("smooth_l1_beta0", m(lambda: nn.SmoothL1Loss(beta=0.0, reduction="sum")),
   ["f32[4,9]", "f32[4,9]"], "SmoothL1Loss, beta 0 (L1), sum"),
  ("huber_loss", m(lambda: nn.HuberLoss(delta=2.0, reduction="none")), ["f32[5,3]", "f32[5,3]"],
   "HuberLoss, delta 2, no reduction"),
  ("bce", f(lambda s, x, y: F.binary_cross_entropy(torch.sigmoid(x), torch.sigmoid(y))),
   ["f32[4,6]", "f32[4,6]"], "binary_cross_entropy of probabilities, mean"),
  ("bce_hard_sum", f(lambda s, x, y: F.binary_cross_entropy(torch.sigmoid(x * 30), (y > 0).float(),
                                                            reduction="sum")),
   ["f32[4,6]", "f32[4,6]"], "binary_cross_entropy, hard targets, saturated logs (the -100 clamp), sum"),
  ("bce_logits", m(lambda: nn.BCEWithLogitsLoss()), ["f32[4,6]", "f32[4,6]"],
   "BCEWithLogitsLoss (soft targets), mean"),
  ("bce_logits_pos_weight",
   f(lambda s, x, y, w: F.binary_cross_entropy_with_logits(x * 4, torch.sigmoid(y), pos_weight=w,
                                                           reduction="none")),
   ["f32[4,6]", "f32[4,6]", "pos[6]"], "binary_cross_entropy_with_logits, pos_weight, none"),
  ("cross_entropy", m(lambda: nn.CrossEntropyLoss()), ["f32[4,7]", "i64<7[4]"],
   "CrossEntropyLoss, class indices, mean"),
  ("cross_entropy_weight_ignore",
   f(lambda s, x, t, w: F.cross_entropy(x, t, weight=w, ignore_index=2)),
   ["f32[8,5]", "i64<5[8]", "pos[5]"], "cross_entropy with class weights and ignore_index"),
  ("cross_entropy_smooth", m(lambda: nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")),
   ["f32[6,4]", "i64<4[6]"], "CrossEntropyLoss, label smoothing 0.1, sum"),
  ("cross_entropy_smooth_weight",
   f(lambda s, x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.2, ignore_index=1)),
   ["f32[9,4]", "i64<4[9]", "pos[4]"], "cross_entropy: label smoothing, weights, ignore_index"),
  ("cross_entropy_nd", m(lambda: nn.CrossEntropyLoss(reduction="none")),
   ["f32[2,5,3,4]", "i64<5[2,3,4]"], "CrossEntropyLoss on a 2-d map of classes, no reduction"),
  ("cross_entropy_probs", f(lambda s, x, y: F.cross_entropy(x, torch.softmax(y, 1),
                                                           label_smoothing=0.05)),
   ["f32[4,7]", "f32[4,7]"], "cross_entropy with probabilities as target, label smoothing"),
  ("cross_entropy_unbatched", m(lambda: nn.CrossEntropyLoss()), ["f32[7]", "i64<7[]"],
   "CrossEntropyLoss of one sample (class dim 0)"),
  ("nll_loss", f(lambda s, x, t: F.nll_loss(torch.log_softmax(x, 1), t)), ["f32[5,6]", "i64<6[5]"],
   "nll_loss of log_softmax, mean"),
  ("nll_loss_weight_none",
   f(lambda s, x, t, w: F.nll_loss(x, t, weight=w, ignore_index=0, reduction="none")),
   ["f32[6,3]", "i64<3[6]", "pos[3]"], "nll_loss, weights, ignore_index, no reduction"),
  ("nll_loss_2d", m(lambda: nn.NLLLoss(reduction="sum")), ["f32[2,4,3,5]", "i64<4[2,3,5]"],
   "NLLLoss on a 2-d map (nll_loss2d), sum"),
  ("kl_div_batchmean", f(lambda s, x, y: F.kl_div(torch.log_softmax(x, 1), torch.softmax(y, 1),
                                                  reduction="batchmean")),
   ["f32[4,6]", "f32[4,6]"], "kl_div, batchmean"),
  ("kl_div_log_target", m(lambda: nn.KLDivLoss(reduction="none", log_target=True)),
   ["f32[3,5]", "f32[3,5]"], "KLDivLoss with log_target, no reduction"),
  ("soft_margin", f(lambda s, x, y: F.soft_margin_loss(x, torch.sign(y))),
   ["f32[4,6]", "f32[4,6]"], "soft_margin_loss"),
  ("cosine_embedding", f(lambda s, a, b, y: F.cosine_embedding_loss(a, b, (y > 0).float() * 2 - 1,
                                                                     margin=0.2)),
   ["f32[5,8]", "f32[5,8]", "f32[5]"], "cosine_embedding_loss, margin 0.2"),
  ("margin_ranking", f(lambda s, a, b, y: F.margin_ranking_loss(a, b, torch.sign(y), margin=0.3,
                                                                reduction="none")),
   ["f32[7]", "f32[7]", "f32[7]"], "margin_ranking_loss, no reduction"),
  ("hinge_embedding", f(lambda s, x, y: F.hinge_embedding_loss(x, (y > 0).float() * 2 - 1,
                                                               margin=0.5)),
   ["f32[4,6]", "f32[4,6]"], "hinge_embedding_loss, margin 0.5"),
  ("triplet_margin", m(lambda: nn.TripletMarginLoss(margin=0.5, p=1, swap=True)),
   ["f32[5,8]", "f32[5,8]", "f32[5,8]"], "TripletMarginLoss, p 1, swap"),
  ("pairwise_distance", m(lambda: nn.PairwiseDistance(p=3, keepdim=True)),
   ["f32[4,9]", "f32[4,9]"], "PairwiseDistance, p 3, keepdim"),
  ("cosine_similarity", m(lambda: nn.CosineSimilarity(dim=-1)), ["f32[3,4,5]", "f32[4,5]"],
   "CosineSimilarity over the last dim, broadcasting"),
  ("cosine_similarity_dim1", f(lambda s, x, y: F.cosine_similarity(x, y)), ["f32[2,6,3]", "f32[2,6,3]"],
   "cosine_similarity over dim 1"),
  ("poisson_nll", m(lambda: nn.PoissonNLLLoss()), ["f32[4,5]", "pos[4,5]"], "PoissonNLLLoss"),
  ("poisson_nll_full", m(lambda: nn.PoissonNLLLoss(log_input=False, full=True, reduction="sum")),
   ["pos[4,5]", "pos[4,5]"], "PoissonNLLLoss, rates, Stirling term, sum"),
  ("multi_margin", m(lambda: nn.MultiMarginLoss()), ["f32[4,6]", "i64<6[4]"], "MultiMarginLoss"),
  ("multi_margin_p2_weight",
   f(lambda s, x, t, w: F.multi_margin_loss(x, t, p=2, margin=0.5, weight=w, reduction="none")),
   ["f32[5,3]", "i64<3[5]", "pos[3]"], "multi_margin_loss, p 2, margin, weights, no reduction"),
  ("bilinear", m(lambda: nn.Bilinear(6, 4, 5)), ["f32[3,6]", "f32[3,4]"], "Bilinear"),
  ("bilinear_nobias_3d", m(lambda: nn.Bilinear(3, 5, 2, bias=False)), ["f32[2,4,3]", "f32[2,4,5]"],
   "Bilinear without bias, leading dims"),

  # elementwise arithmetic
  ("add", f(lambda s, x, y: x + y), [X, X], "add, same shapes"),
  ("add_bcast", f(lambda s, x, y: x + y), ["f32[3,1,7]", "f32[5,1]"],
   "add broadcasting both operands"),
  ("add_alpha", f(lambda s, x, y: torch.add(x, y, alpha=2)), [X, "f32[17]"],
   "add with alpha"),
  ("add_scalar", f(lambda s, x: x + 3.5), [X], "add a scalar"),
  ("add_0dim", f(lambda s, x, y: x + y), [X, "f32[]"],
   "add a 0-dim tensor input"),
  ("add_inplace", f(lambda s, x, y: (x * 1.0).add_(y)), [X, "f32[1,3,1]"],
   "add_ (in place) with broadcasting"),
  ("add_int", f(lambda s, x, y: x + y), ["i64<100[3,7]", "i64<100[7]"],
   "add on int64"),
  ("add_mixed", f(lambda s, x, y: x + y), ["f32[3,7]", "i64<10[3,7]"],
   "add f32 + i64 (type promotion)"),
  ("sub", f(lambda s, x, y: x - y), [X, X], "sub"),
  ("sub_bcast", f(lambda s, x, y: x - y), ["f32[2,3,7]", "f32[7]"],
   "sub with broadcasting"),
  ("sub_scalar", f(lambda s, x: x - 0.25), [X], "sub a scalar"),
  ("mul", f(lambda s, x, y: x * y), [X, X], "mul"),
  ("mul_bcast", f(lambda s, x, y: x * y), ["f32[1,3,1,1]", "f32[2,3,7,7]"],
   "mul broadcasting a per-channel scale"),
  ("mul_scalar", f(lambda s, x: x * -1.75), [X], "mul by a scalar"),
  ("mul_int_scalar", f(lambda s, x: x * 3), ["i64<100[3,7]"],
   "mul int64 by an int scalar"),
  ("div", f(lambda s, x, y: x / y), [X, P], "div"),
  ("div_bcast", f(lambda s, x, y: x / y), ["f32[2,3,7]", "pos[3,1]"],
   "div with broadcasting"),
  ("div_scalar", f(lambda s, x: x / 7.0), [X], "div by a scalar"),
  ("scalar_div", f(lambda s, x: 2.0 / x), [P], "scalar / tensor"),
  ("pow_2", f(lambda s, x: x ** 2), [X], "pow by an int scalar"),
  ("pow_half", f(lambda s, x: x ** 0.5), [P], "pow by a float scalar"),
  ("pow_tensor", f(lambda s, x, y: torch.pow(x, y)), [P, "f32[17]"],
   "pow tensor ** tensor with broadcasting"),
  ("rsub_scalar", f(lambda s, x: 1.0 - x), [X], "rsub (scalar - tensor)"),
  ("rsub_tensor", f(lambda s, x, y: torch.rsub(x, y, alpha=2)), [X, X],
   "rsub of two tensors with alpha"),
  ("neg", f(lambda s, x: -x), [X], "neg"),
  ("exp", f(lambda s, x: torch.exp(x)), [X], "exp"),
  ("log", f(lambda s, x: torch.log(x)), [P], "log"),
  ("sqrt", f(lambda s, x: torch.sqrt(x)), [P], "sqrt"),
  ("expm1", f(lambda s, x: torch.expm1(x)), ["nan[2,3,17]"], "expm1 over NaNs and -infs"),
  ("expm1_tiny", f(lambda s, x: torch.expm1(x * 1e-5) * 1e5), [X],
   "expm1 near 0 (where exp(x) - 1 loses every digit)"),
  ("exp2_log2", f(lambda s, x: torch.exp2(x) + torch.log2(x)), [P], "exp2 and log2"),
  ("log10_int", f(lambda s, x: torch.log10(x + 1)), ["i64<1000[3,7]"],
   "log10 of int64 (a float result)"),
  ("tan_sinh_cosh", f(lambda s, x: torch.tan(x) + torch.sinh(x) * torch.cosh(x)), [X],
   "tan, sinh, cosh"),
  ("sinh_tiny", f(lambda s, x: torch.sinh(x * 1e-5) * 1e5), [X], "sinh near 0"),
  ("deg2rad_rad2deg", f(lambda s, x: torch.deg2rad(x) * torch.rad2deg(x)), [X],
   "deg2rad, rad2deg"),
  ("trunc_frac", f(lambda s, x: torch.trunc(x * 3) + torch.frac(x * 3) * 10),
   ["nan[2,3,17]"], "trunc and frac over NaNs and -infs"),
  ("fix_int", f(lambda s, x: torch.fix(x - 50)), ["i64<100[3,7]"], "trunc of int64: itself"),
  ("sign_sgn", f(lambda s, x: torch.sign(x) * 2 + torch.sgn(x)), ["nan[2,3,17]"],
   "sign and sgn (NaN gives 0)"),
  ("sign_int", f(lambda s, x: torch.sign(x - 50)), ["i64<100[3,7]"], "sign of int64"),
  ("isnan_isinf", f(lambda s, x: torch.isnan(x) | torch.isinf(x * 1e38)), ["nan[2,3,17]"],
   "isnan and isinf"),
  ("bitwise_not", f(lambda s, x: torch.bitwise_not(x - 50)), ["i64<100[3,7]"],
   "bitwise_not of int64"),
  ("bitwise_bool", f(lambda s, x, y: ((x > 0) & (y < 1)) ^ (x < -1) | torch.bitwise_or(y > 0, x < 0)),
   [X, "f32[17]"], "&, |, ^ and bitwise_or of bool tensors"),
  ("bitwise_not_bool", f(lambda s, x: torch.bitwise_not(x > 0)), [X], "bitwise_not of bool"),
  ("logical_xor", f(lambda s, x, y: torch.logical_xor(x > 0, y)), [X, "f32[17]"],
   "logical_xor with broadcasting (floats as bools)"),
  ("fmod", f(lambda s, x, y: torch.fmod(x * 4, y)), [X, P], "fmod (sign of the dividend)"),
  ("fmod_scalar", f(lambda s, x: torch.fmod(x, -0.7)), [X], "fmod by a negative scalar"),
  ("fmod_int", f(lambda s, x, y: torch.fmod(x - 50, y + 1)), ["i64<100[3,7]", "i64<9[7]"],
   "fmod of int64 (C's %)"),
  ("hypot", f(lambda s, x, y: torch.hypot(x, y)), [X, "f32[3,1]"], "hypot with broadcasting"),
  ("xlogy", f(lambda s, x, y: torch.xlogy(torch.relu(x), y)), [X, P],
   "xlogy (0 where x is 0)"),
  ("xlogy_scalar", f(lambda s, x: torch.xlogy(2.0, x)), [P], "xlogy of a scalar"),


  # pooling
  ("maxpool_2", f(lambda s, x: F.max_pool2d(x, 2)), ["f32[1,3,17,17]"],
   "max_pool2d 2x2 (odd input size)"),
  ("maxpool_3_s2_p1", f(lambda s, x: F.max_pool2d(x, 3, 2, 1)),
   ["f32[1,4,33,33]"], "max_pool2d 3x3 stride 2 padding 1"),
  ("maxpool_ceil", f(lambda s, x: F.max_pool2d(x, 3, 2, ceil_mode=True)),
   ["f32[1,3,17,17]"], "max_pool2d ceil_mode"),
  ("maxpool_3_s2_p1_nan", f(lambda s, x: F.max_pool2d(x, 3, 2, 1)),
   ["nan[1,4,33,34]"], "max_pool2d 3x3 stride 2 over NaNs and -infs"),
  ("maxpool_2_nan", f(lambda s, x: F.max_pool2d(x, 2)), ["nan[2,3,16,19]"],
   "max_pool2d 2x2 over NaNs and -infs"),
  ("maxpool_5_s1_p2_nan", f(lambda s, x: F.max_pool2d(x, 5, 1, 2)),
   ["nan[1,2,12,37]"], "max_pool2d 5x5 stride 1 (odd term counts) over NaNs"),
  ("avgpool_2", f(lambda s, x: F.avg_pool2d(x, 2, 2)), ["f32[2,3,7,7]"],
   "avg_pool2d 2x2"),
  ("avgpool_3_p1", f(lambda s, x: F.avg_pool2d(x, 3, 1, 1)),
   ["f32[1,3,7,7]"], "avg_pool2d padding counted"),
  ("avgpool_3_p1_exclude",
   f(lambda s, x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)),
   ["f32[1,3,7,7]"], "avg_pool2d padding not counted"),
  ("avgpool_ceil", f(lambda s, x: F.avg_pool2d(x, 2, 2, ceil_mode=True)),
   ["f32[1,3,7,7]"], "avg_pool2d ceil_mode"),
  ("adaptive_avg_1", f(lambda s, x: F.adaptive_avg_pool2d(x, 1)),
   ["f32[2,8,7,7]"], "adaptive_avg_pool2d to 1x1"),
  ("adaptive_avg_2x3", f(lambda s, x: F.adaptive_avg_pool2d(x, (2, 3))),
   ["f32[1,3,7,7]"], "adaptive_avg_pool2d to 2x3 (uneven windows)"),

  ("maxpool3d", m(lambda: nn.MaxPool3d(2)), ["f32[1,2,5,6,7]"], "MaxPool3d 2 (odd sizes)"),
  ("maxpool3d_s_p_d", f(lambda s, x: F.max_pool3d(x, (3, 2, 3), (2, 1, 2), (1, 0, 1), (1, 2, 1))),
   ["nan[2,2,6,7,8]"], "max_pool3d with stride, padding, dilation, over NaNs"),
  ("maxpool3d_ceil_idx", f(lambda s, x: F.max_pool3d(x, 2, 2, ceil_mode=True,
                                                     return_indices=True)),
   ["f32[1,2,5,5,3]"], "max_pool3d ceil_mode with indices"),
  ("avgpool3d", m(lambda: nn.AvgPool3d(3, 2, 1)), ["f32[1,2,5,6,7]"], "AvgPool3d, padding counted"),
  ("avgpool3d_exclude", f(lambda s, x: F.avg_pool3d(x, 2, 1, 1, count_include_pad=False)),
   ["f32[1,2,5,6,7]"], "avg_pool3d, padding not counted"),
  ("avgpool3d_divisor", f(lambda s, x: F.avg_pool3d(x, 3, 2, 1, ceil_mode=True,
                                                    divisor_override=5)),
   ["f32[1,2,5,6,7]"], "avg_pool3d ceil_mode with divisor_override"),
  ("adaptive_avg3d", m(lambda: nn.AdaptiveAvgPool3d((2, 3, 1))), ["f32[2,3,5,7,4]"],
   "AdaptiveAvgPool3d (uneven windows)"),
  ("adaptive_max3d", f(lambda s, x: F.adaptive_max_pool3d(x, (2, 2, 3), return_indices=True)),
   ["f32[1,2,5,5,7]"], "adaptive_max_pool3d with indices"),
  ("adaptive_max1d", f(lambda s, x: F.adaptive_max_pool1d(x, 3, return_indices=True)),
   ["f32[2,3,8]"], "adaptive_max_pool1d with indices"),
  ("local_response_norm", m(lambda: nn.LocalResponseNorm(3)), ["f32[2,5,4,6]"],
   "LocalResponseNorm (an avg_pool3d over channels)"),

  # reductions
  ("mean_last", f(lambda s, x: x.mean(-1)), [X], "mean over the last dim"),
  ("mean_hw_keepdim", f(lambda s, x: x.mean([2, 3], keepdim=True)),
   ["f32[2,3,7,7]"], "mean over [2,3] keepdim"),
  ("mean_all", f(lambda s, x: x.mean()), [X], "mean of everything"),
  ("sum_dim1", f(lambda s, x: x.sum(1)), [X], "sum over dim 1"),
  ("sum_all", f(lambda s, x: torch.sum(x)), ["f32[33,17]"],
   "sum of everything"),

  ("sum_int", f(lambda s, x: x.sum(0)), ["i64<100[7,3]"], "sum of int64"),
  ("max_dim", f(lambda s, x: torch.max(x, 1)), [X],
   "max over a dim: values and indices"),
  ("max_all", f(lambda s, x: torch.max(x)), [X], "max of everything"),
  ("argmax_last", f(lambda s, x: torch.argmax(x, -1)), [X],
   "argmax over the last dim"),
  ("argmax_keepdim", f(lambda s, x: torch.argmax(x, 1, keepdim=True)), [X],
   "argmax keepdim"),

  # softmax
  ("softmax_last", f(lambda s, x: F.softmax(x * 3, dim=-1)), [X],
   "softmax over the last dim"),
  ("softmax_dim1", f(lambda s, x: F.softmax(x, dim=1)), ["f32[2,7,3,3]"],
   "softmax over channels of a 4-d tensor"),
  ("log_softmax_last", f(lambda s, x: F.log_softmax(x * 3, dim=-1)), [X],
   "log_softmax over the last dim"),


  # layer_norm
  ("layernorm_last", m(lambda: nn.LayerNorm(33), random_ln), ["f32[2,7,33]"],
   "layer_norm over the last dim"),
  ("layernorm_2dims", m(lambda: nn.LayerNorm([7, 33], eps=1e-12), random_ln),
   ["f32[2,7,33]"], "layer_norm over two dims, eps 1e-12"),
  ("layernorm_noaffine", f(lambda s, x: F.layer_norm(x, (17,))), [X],
   "layer_norm without weight and bias"),

  # embedding / index / gather / one_hot
  ("embedding", m(lambda: nn.Embedding(50, 17)), ["i64<50[2,7]"],
   "embedding"),
  ("embedding_padding_idx", m(lambda: nn.Embedding(10, 3, padding_idx=0)),
   ["i64<10[17]"], "embedding with padding_idx"),
  ("index_rows", f(lambda s, x, i: x[i]), ["f32[7,3]", "i64<7[5]"],
   "index (tensor of row ids)"),
  ("index_cols", f(lambda s, x, i: x[:, i]), ["f32[3,7]", "i64<7[2,5]"],
   "index on dim 1 with a 2-d index"),
  ("gather_dim1", f(lambda s, x, i: torch.gather(x, 1, i)),
   ["f32[3,7]", "i64<7[3,4]"], "gather over dim 1"),
  ("gather_dim0", f(lambda s, x, i: torch.gather(x, 0, i)),
   ["f32[5,3]", "i64<5[2,3]"], "gather over dim 0"),
  ("one_hot", f(lambda s, i: F.one_hot(i, 5)), ["i64<5[7]"], "one_hot"),
  ("one_hot_float", f(lambda s, i, x: F.one_hot(i, 4).float() * x),
   ["i64<4[3,2]", "f32[3,2,4]"], "one_hot cast to float and used"),

  # views and copies
  ("view", f(lambda s, x: x.view(6, 17)), [X], "view"),
  ("view_infer", f(lambda s, x: x.view(-1, 3, 1)), [X], "view with -1"),
  ("reshape_transposed", f(lambda s, x: x.transpose(1, 2).reshape(2, -1)),
   [X], "reshape of a non-contiguous tensor"),
  ("flatten_1", f(lambda s, x: torch.flatten(x, 1)), ["f32[2,3,7,7]"],
   "flatten from dim 1"),
  ("flatten_all", f(lambda s, x: x.flatten()), [X], "flatten everything"),
  ("squeeze_dim", f(lambda s, x: x.squeeze(1)), ["f32[3,1,7]"],
   "squeeze one dim"),
  ("squeeze_all", f(lambda s, x: x.squeeze()), ["f32[1,3,1,7]"],
   "squeeze every size-1 dim"),

  ("unsqueeze_last", f(lambda s, x: x.unsqueeze(-1) * 2), [X],
   "unsqueeze(-1)"),
  ("permute", f(lambda s, x: x.permute(0, 2, 3, 1)), ["f32[2,3,5,7]"],
   "permute NCHW to NHWC"),
  ("transpose", f(lambda s, x: x.transpose(0, 2)), [X], "transpose"),
  ("transpose_contiguous",
   f(lambda s, x: x.transpose(1, 2).contiguous() + 1), [X],
   "transpose then contiguous"),
  ("t", f(lambda s, x: x.t()), ["f32[3,17]"], "t()"),
  ("expand", f(lambda s, x: x.expand(3, 7)), ["f32[3,1]"], "expand"),
  ("expand_new_dim", f(lambda s, x: x.expand(2, -1, -1)), ["f32[3,7]"],
   "expand with a new leading dim and -1"),
  ("expand_as", f(lambda s, x, y: x.expand_as(y) + y),
   ["f32[1,7]", "f32[3,7]"], "expand_as"),
  ("repeat", f(lambda s, x: x.repeat(2, 3)), ["f32[3,7]"], "repeat"),
  ("repeat_new_dims", f(lambda s, x: x.repeat(2, 1, 1)), ["i64<100[3,7]"],
   "repeat adding a dim, int64"),
  ("tile", f(lambda s, x: torch.tile(x, (2,))), [X], "tile with fewer dims than the rank"),
  ("tile_new_dims", f(lambda s, x: torch.tile(x, (2, 1, 3))), ["f32[3,7]"],
   "tile adding a dim"),
  ("mv", f(lambda s, x, y: torch.mv(x, y)), ["f32[5,17]", "f32[17]"], "mv"),
  ("dot", f(lambda s, x, y: torch.dot(x, y) * x), ["f32[17]", "f32[17]"], "dot"),

  # slice / select / chunk / cat / stack
  ("slice", f(lambda s, x: x[:, 1:5]), ["f32[3,17]"], "slice"),
  ("slice_step", f(lambda s, x: x[:, ::2]), ["f32[3,17]"], "slice step 2"),
  ("slice_negative", f(lambda s, x: x[..., -3:]), [X], "slice from -3"),
  ("slice_2dims", f(lambda s, x: x[1:, 2:9:3]), ["f32[3,17]"],
   "slices on two dims"),
  ("select", f(lambda s, x: x[1]), [X], "select dim 0"),
  ("select_negative", f(lambda s, x: x[:, -1]), [X], "select index -1"),
  ("select_token0", f(lambda s, x: x[:, 0] * 2), ["f32[2,7,33]"],
   "select token 0 (BERT pooler)"),
  ("chunk_3", f(lambda s, x: x.chunk(3, dim=-1)), ["f32[2,7]"],
   "chunk into 3 uneven parts (tuple output)"),
  ("chunk_2", f(lambda s, x: x.chunk(2, dim=1)), ["f32[1,8,3,3]"],
   "chunk over channels"),
  ("cat_dim0", f(lambda s, x, y: torch.cat([x, y], 0)),
   ["f32[3,7]", "f32[1,7]"], "cat on dim 0"),
  ("cat_last3", f(lambda s, x, y, z: torch.cat([x, y, z], -1)),
   ["f32[2,3,1]", "f32[2,3,17]", "f32[2,3,7]"], "cat of three on dim -1"),
  ("cat_int", f(lambda s, x, y: torch.cat([x, y], 1)),
   ["i64<100[2,3]", "i64<100[2,5]"], "cat on int64"),
  ("stack_0", f(lambda s, x, y: torch.stack([x, y])), [X, X],
   "stack on dim 0"),
  ("stack_last", f(lambda s, x, y: torch.stack([x, y], -1)),
   ["f32[3,7]", "f32[3,7]"], "stack on dim -1"),

  # tril / ones / zeros / arange
  ("tril", f(lambda s, x: torch.tril(x)), ["f32[7,7]"], "tril"),
  ("tril_diag_neg", f(lambda s, x: torch.tril(x, -1)), ["f32[3,5,7]"],
   "tril diagonal -1, batched, non-square"),
  ("ones_from_size", f(lambda s, x: torch.ones(x.size(0), x.size(1)) + x),
   ["f32[3,7]"], "ones from runtime sizes"),
  ("zeros_from_size", f(lambda s, x: torch.zeros(x.size()) - x), [X],
   "zeros from size()"),
  ("zeros_like", f(lambda s, x: torch.zeros_like(x) + 2), [X], "zeros_like"),

  ("arange_size", f(lambda s, x: torch.arange(x.size(1)) + x),
   ["f32[2,7]"], "arange(size) broadcast-added to f32"),
  ("arange_start_step", f(lambda s, x: torch.arange(1, 17, 3) * x),
   ["i64<10[6]"], "arange(start, end, step), int64"),
  ("arange_float", f(lambda s, x: torch.arange(0.0, 1.0, 0.125) + x),
   ["f32[8]"], "arange with float bounds"),

  # casts
  ("to_i64", f(lambda s, x: (x * 10).to(torch.int64)), [X],
   "to(int64) truncates"),
  ("to_f32", f(lambda s, x: x.to(torch.float32) / 3), ["i64<100[3,7]"],
   "to(float32) of int64"),
  ("float_of_bool", f(lambda s, x: (x > 0).float()), [X],
   "comparison then float()"),
  ("to_bool", f(lambda s, x: x.to(torch.bool)), ["i64<3[3,7]"],
   "to(bool)"),
  ("to_f64", f(lambda s, x: x.to(torch.float64)), [X], "to(float64)"),


  # masked_fill and comparisons
  ("masked_fill", f(lambda s, x, mask: x.masked_fill(mask, 0.5)),
   ["f32[3,7]", "bool[3,7]"], "masked_fill with a bool input mask"),
  ("masked_fill_bcast", f(lambda s, x, mask: x.masked_fill(mask, -1e4)),
   ["f32[2,3,7]", "bool[1,7]"], "masked_fill with a broadcast mask"),
  ("masked_fill_neg_inf",
   f(lambda s, x: x.masked_fill(torch.tril(torch.ones(7, 7)) == 0,
                                float("-inf"))),
   ["f32[2,7,7]"], "masked_fill with -inf from a causal mask"),
  ("causal_softmax",
   f(lambda s, x: F.softmax(x.masked_fill(
       torch.tril(torch.ones(x.size(-1), x.size(-1))) == 0, float("-inf")),
       dim=-1)),
   ["f32[2,7,7]"], "masked_fill -inf then softmax (causal attention)"),
  ("compare_ops", f(lambda s, x, y: ((x > y), (x <= 0.5), (x == x), (x != y))),
   [X, X], "gt / le / eq / ne producing bools"),
  ("extended_mask",
   f(lambda s, i: (1.0 - i.unsqueeze(1).unsqueeze(2).to(torch.float32))
     * -10000.0),
   ["i64<2[2,7]"], "BERT's extended attention mask: unsqueeze, to, rsub, mul"),
]


# Cases whose symbolic check (check_ops.py --symbolic) fails for a reason
# nncc does not handle yet, with the reason; such a case must keep failing
# there (one that passes is reported, so the list cannot go stale).
SYMBOLIC_GAPS = {
  "addmm": "the added vector's symbolic dim is not unified with the product's columns",
  "addmm_alpha_beta": "the added matrix's symbolic dims are not unified with the product's",
  "chunk_3": "chunk of a symbolic dim (ceil-sized pieces) is not supported",
  "embedding_bag_mean": "arange up to a symbolic numel() passed through NumToTensor "
                        "(EmbeddingBag's offsets of a 2-d input)",
  "embedding_bag_max": "arange up to a symbolic numel() passed through NumToTensor "
                       "(EmbeddingBag's offsets of a 2-d input)",
  "up_bilinear_frac": "a fractional scale factor on a symbolic size (floor of a double product)",
  "up_linear": "a fractional scale factor on a symbolic size (floor of a double product)",
  "up_nearest_exact": "a fractional scale factor on a symbolic size (floor of a double product)",
  "up_nearest_frac": "a fractional scale factor on a symbolic size (floor of a double product)",
}


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------

SPEC_RE = re.compile(r"^(f32|nan|pos|bool|i64<(\d+))\[([\d,]*)\]$")


def make_input(spec, gen):
  mt = SPEC_RE.match(spec)
  if not mt:
    raise ValueError("bad input spec %r" % spec)
  shape = [int(d) for d in mt.group(3).split(",") if d]
  kind = mt.group(1)
  if kind == "f32":
    return torch.randn(shape, generator=gen)
  if kind == "nan":  # f32 with every 7th element NaN and every 11th -inf
    x = torch.randn(shape, generator=gen).flatten()
    x[3::7] = float("nan")
    x[5::11] = float("-inf")
    return x.reshape(shape)
  if kind == "pos":
    return torch.rand(shape, generator=gen) * 2.0 + 0.5
  if kind == "bool":
    return torch.rand(shape, generator=gen) < 0.5
  return torch.randint(0, int(mt.group(2)), shape, generator=gen,
                       dtype=torch.int64)


def flatten_outputs(out):
  if isinstance(out, torch.Tensor):
    return [out]
  if isinstance(out, (tuple, list)):
    res = []
    for o in out:
      res.extend(flatten_outputs(o))
    return res
  raise TypeError("unexpected output type %r" % type(out))


def input_names(graph):
  return [re.sub(r"\.\d+$", "", v.debugName())
          for i, v in enumerate(graph.inputs()) if i > 0]


def fmt_type(dt, shape):
  return "%s[%s]" % (dt, ",".join(str(d) for d in shape))


def alt_specs(specs):
  """Candidate input specs at other shapes, for the symbolic check: the
  batch (dim 0) one larger in every input sharing input 0's, the last dim
  two larger in every input sharing input 0's, and both. Dims of 1 stay 1
  (they broadcast; the symbolic check keeps them fixed)."""
  parsed = []
  for sp in specs:
    mt = SPEC_RE.match(sp)
    parsed.append((sp[:sp.index("[")], [int(d) for d in mt.group(3).split(",") if d]))
  if not parsed[0][1]:
    return []
  b0, l0 = parsed[0][1][0], parsed[0][1][-1]

  def grow(first, last):
    out = []
    for kind, dims in parsed:
      d = list(dims)
      if first and d and d[0] == b0 and b0 != 1:
        d[0] += 1
      if last and d and d[-1] == l0 and l0 != 1 and not (first and len(d) == 1 and dims[0] == b0):
        d[-1] += 2
      out.append("%s[%s]" % (kind, ",".join(str(v) for v in d)))
    return out
  return [grow(True, False), grow(False, True), grow(True, True)]


def alternates(module, traced, specs, seed):
  """Up to two input sets at other shapes on which the trace still computes
  what eager mode does (a trace that baked a size in does not), with the
  outputs: the symbolic check runs the compiled model on them."""
  found = []
  for k, alt in enumerate(alt_specs(specs)):
    if len(found) == 2:
      break
    gen = torch.Generator().manual_seed(seed + 1 + k)
    try:
      ins = [make_input(sp, gen) for sp in alt]
      with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = flatten_outputs(traced(*[t.clone() for t in ins]))
        want = flatten_outputs(module(*[t.clone() for t in ins]))
    except Exception:  # the op does not take these shapes
      continue
    same = len(got) == len(want) and all(
        a.shape == b.shape and a.dtype == b.dtype and
        (torch.equal(a, b) or (a.is_floating_point() and
                               torch.allclose(a, b, equal_nan=True)))
        for a, b in zip(got, want))
    if same:
      found.append((ins, got))
  return found


class Recorder:
  """While active, notes the name of every torch.nn.functional function
  called (the case's own calls and those of the modules it uses), by
  wrapping each public one; the coverage check reads the names."""

  def __init__(self):
    self.called = set()
    self.saved = {}

  def __enter__(self):
    for name in dir(F):
      fn = getattr(F, name)
      if name.startswith("_") or not callable(fn) or isinstance(fn, type) or \
         getattr(fn, "__module__", "") != F.__name__:
        continue
      self.saved[name] = fn

      def wrapper(*a, _name=name, _fn=fn, **k):
        self.called.add(_name)
        return _fn(*a, **k)
      setattr(F, name, wrapper)
    return self

  def __exit__(self, *exc):
    for name, fn in self.saved.items():
      setattr(F, name, fn)
    return False


def build(case, outdir):
  name, body, specs, covers = case[:4]
  tol = case[4] if len(case) > 4 else DEFAULT_TOL
  seed = zlib.crc32(name.encode())
  torch.manual_seed(seed)
  if body[0] == "fn":
    module = WRAPPERS[len(specs)](body[1], **body[2])
  else:
    module = body[1]()
    if body[2]:
      body[2](module)
  module = module.eval()
  gen = torch.Generator().manual_seed(seed)
  inputs = [make_input(s, gen) for s in specs]
  with torch.no_grad(), warnings.catch_warnings(), Recorder() as rec:
    warnings.simplefilter("ignore")
    traced = torch.jit.trace(module, tuple(inputs), check_trace=False)
  with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    outs = flatten_outputs(traced(*[t.clone() for t in inputs]))
    expect = flatten_outputs(module(*[t.clone() for t in inputs]))
  for a, b in zip(outs, expect):
    if not torch.equal(a, b) and not (a.is_floating_point() and
                                      torch.allclose(a, b, equal_nan=True)):
      raise RuntimeError("the trace computes something else than eager mode")
  names = input_names(traced.graph)
  if len(names) != len(inputs):
    raise RuntimeError("graph has %d inputs, expected %d"
                       % (len(names), len(inputs)))
  torch.jit.save(traced, os.path.join(outdir, name + ".pt"))
  for i, t in enumerate(inputs):
    np.save(os.path.join(outdir, "%s.in%d.npy" % (name, i)), t.numpy())
  alts = alternates(module, traced, specs, seed)
  for k, (ins, outs_k) in enumerate(alts):
    for i, t in enumerate(ins):
      np.save(os.path.join(outdir, "%s.alt%d.in%d.npy" % (name, k, i)), t.numpy())
    for j, t in enumerate(outs_k):
      np.save(os.path.join(outdir, "%s.alt%d.out%d.npy" % (name, k, j)), t.numpy())
  for j, t in enumerate(outs):
    np.save(os.path.join(outdir, "%s.out%d.npy" % (name, j)), t.numpy())
  info = {
    "name": name,
    "covers": covers,
    "inputs": [{"name": n, "dtype": DTYPE_NAMES[t.dtype],
                "shape": list(t.shape),
                "flag": "%s:%s" % (n, fmt_type(DTYPE_NAMES[t.dtype], t.shape))}
               for n, t in zip(names, inputs)],
    "outputs": [{"dtype": DTYPE_NAMES[o.dtype], "shape": list(o.shape)}
                for o in outs],
    "tol": tol,
    "alts": len(alts),
    # what the case exercises, for the coverage table (tests/ops/coverage.py)
    "modules": sorted({type(mm).__name__ for mm in module.modules()
                       if type(mm).__module__.startswith("torch.nn.modules")}),
    "functions": sorted(rec.called),
    "aten": sorted({n.kind() for n in traced.inlined_graph.nodes()
                    if n.kind().startswith("aten::")}),
  }
  if name in SYMBOLIC_GAPS:
    info["symbolic_gap"] = SYMBOLIC_GAPS[name]
  path = os.path.join(outdir, name + ".json")
  with open(path + ".tmp", "w") as fp:
    fp.write("{\n%s\n}\n" % ",\n".join(
        " %s: %s" % (json.dumps(k), json.dumps(info[k])) for k in info))
  os.replace(path + ".tmp", path)  # the json, written last, marks success
  return info


def main(argv):
  ap = argparse.ArgumentParser(description="Build nncc's single-op tests.")
  ap.add_argument("outdir", nargs="?")
  ap.add_argument("--only", help="only cases whose name contains this")
  ap.add_argument("--list", action="store_true", help="list the cases")
  args = ap.parse_args(argv)
  names = [c[0] for c in CASES]
  dup = sorted({n for n in names if names.count(n) > 1})
  if dup:
    sys.stderr.write("make_ops.py: error: duplicate cases: %s\n" % dup)
    return 2
  wanted = [c for c in CASES if not args.only or args.only in c[0]]
  if args.list:
    for c in wanted:
      print("%-24s %-28s %s" % (c[0], " ".join(c[2]), c[3]))
    return 0
  if not args.outdir:
    ap.error("OUTDIR is required")
  os.makedirs(args.outdir, exist_ok=True)
  torch.set_num_threads(1)  # deterministic reductions
  start = time.time()
  failed = 0
  for case in wanted:
    try:
      build(case, args.outdir)
    except Exception as e:  # report and go on with the next case
      failed += 1
      print("%-24s FAILED: %s: %s" % (case[0], type(e).__name__, e),
            flush=True)
  print("built %d of %d op cases in %.1fs"
        % (len(wanted) - failed, len(wanted), time.time() - start))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
