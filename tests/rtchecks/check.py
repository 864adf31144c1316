"""check.py - index values that PyTorch refuses fail the compiled model too.

For every op whose result depends on index *values* (embedding, gather,
index_select, advanced indexing, scatter, one_hot) a small module is traced
with a valid index tensor and compiled by nncc with fixed shapes. Then one
element of the index is replaced by each of: a valid value, -1, -n, -n-1,
n, n+3, 10**9, -10**9 and 2**40 (n: the size of the dim it indexes, or the
class count), and PyTorch and the compiled model run on the same input:

  - where PyTorch raises, `nncc run` must exit 1 with the message naming
    the tensor, the value and the valid range, e.g.
    "idx: index 1000000000 out of range [0, 7) in embedding";
  - where PyTorch returns (negative indices it wraps, in advanced
    indexing), the outputs must be equal, exactly: these ops copy.

Reshapes of an input with a symbolic dim (SHAPE_CASES) run at several
values of it: where PyTorch refuses the element count, `nncc run` fails
naming the broken requirement and the dim's value; elsewhere the outputs
are equal.

A model compiled with --no-runtime-checks must run every variant without
an error (documented: the indices are clamped then). Prints one line per
failure and a summary; exit status 1 on any failure.

Usage: check.py --nncc NNCC --work DIR
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)


class Emb(nn.Module):
    def __init__(self):
        super().__init__()
        self.e = nn.Embedding(7, 3)

    def forward(self, idx):
        return self.e(idx)


class FEmb(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 4))

    def forward(self, idx):
        return F.embedding(idx, self.w) * 2


class Gather(nn.Module):
    def __init__(self, dim, shape):
        super().__init__()
        self.dim = dim
        self.register_buffer("x", torch.randn(*shape))

    def forward(self, idx):
        return torch.gather(self.x, self.dim, idx)


class IndexSelect(nn.Module):
    def __init__(self, dim, shape):
        super().__init__()
        self.dim = dim
        self.register_buffer("x", torch.randn(*shape))

    def forward(self, idx):
        return torch.index_select(self.x, self.dim, idx)


class Index(nn.Module):
    def __init__(self, shape, where):
        super().__init__()
        self.where = where
        self.register_buffer("x", torch.randn(*shape))

    def forward(self, idx):
        if self.where == 0:
            return self.x[idx]
        return self.x[:, idx]


class Index2(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("x", torch.randn(4, 6))

    def forward(self, idx):
        return self.x[idx, torch.tensor([0, 2, 5])]


class Scatter(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value
        self.register_buffer("src", torch.randn(3, 2))

    def forward(self, idx):
        z = torch.zeros(3, 5)
        if self.value:
            return z.scatter(1, idx, 1.5)
        return z.scatter(1, idx, self.src)


class OneHot(nn.Module):
    def forward(self, idx):
        return F.one_hot(idx, 6)


# name, module, valid index tensor, size of the indexed dim (or classes),
# position of the element replaced, what nncc's message says
CASES = [
    ("embedding", Emb(), torch.tensor([[1, 2, 3], [4, 5, 6]]), 7, 4, "index"),
    ("embedding_f", FEmb(), torch.tensor([0, 4, 2]), 5, 1, "index"),
    ("gather_dim1", Gather(1, (3, 5)), torch.tensor([[0, 1, 4, 2]] * 3), 5, 6, "index"),
    ("gather_dim0", Gather(0, (3, 5)), torch.tensor([[0, 1, 2, 0, 1], [2, 2, 1, 0, 0]]), 3, 3,
     "index"),
    ("index_select0", IndexSelect(0, (6, 4)), torch.tensor([5, 0, 3]), 6, 2, "index"),
    ("index_select1", IndexSelect(1, (3, 6)), torch.tensor([1, 0, 5, 2]), 6, 0, "index"),
    ("index_rows", Index((5, 4), 0), torch.tensor([4, 0, 2]), 5, 1, "index"),
    ("index_cols", Index((3, 5), 1), torch.tensor([[0, 4], [3, 1]]), 5, 3, "index"),
    ("index_two", Index2(), torch.tensor([3, 1, 0]), 4, 2, "index"),
    ("scatter_src", Scatter(False), torch.tensor([[0, 4], [1, 2], [3, 3]]), 5, 3, "index"),
    ("scatter_value", Scatter(True), torch.tensor([[0, 4], [1, 2], [3, 3]]), 5, 0, "index"),
    ("one_hot", OneHot(), torch.tensor([0, 5, 2, 3]), 6, 2, "class"),
]


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(*self.shape) * 2


# Reshapes of an input with a symbolic dim: the element count must fit the
# target sizes for some b, as PyTorch checks on every call. name, module,
# --input spec, b when traced, the values of b tried, the words nncc's error must hold when
# PyTorch raises (the failed requirement and the dim's value).
SHAPE_CASES = [
    ("reshape_infer", Reshape(-1, 10), "x:f32[b,5]", 4, [1, 2, 3, 4, 7],
     "%10 = 5 must equal 0: b="),
    ("reshape_fixed", Reshape(2, 10), "x:f32[b,5]", 4, [3, 4, 5], "must equal 20: b="),
    ("reshape_split", Reshape(-1, 2, 3), "x:f32[b,3]", 2, [2, 4, 5], "must equal 0: b="),
]


def shape_cases(a, fail):
    """Runs SHAPE_CASES; returns (cases run, cases where PyTorch raised)."""
    total, raised = 0, 0
    for name, mod, spec, tb, bs, needle in SHAPE_CASES:
        pt = os.path.join(a.work, name + ".pt")
        cols = int(spec.split(",")[1].rstrip("]"))
        torch.jit.trace(mod, (torch.randn(tb, cols),)).save(pt)
        so = os.path.join(a.work, name + ".so")
        r = subprocess.run([a.nncc, pt, "-o", so, "--input", spec], capture_output=True,
                           text=True)
        if r.returncode != 0:
            fail("%s: nncc exit %d: %s" % (name, r.returncode, r.stderr.strip()))
            continue
        for b in bs:
            total += 1
            x = torch.randn(b, cols)
            inp = os.path.join(a.work, name + "_in.npy")
            np.save(inp, x.numpy())
            try:
                want = mod(x).numpy()
            except RuntimeError:
                want = None
            out = os.path.join(a.work, "out_" + name)
            r = subprocess.run([a.nncc, "run", so, inp, "--out-dir", out], capture_output=True,
                               text=True)
            case = "%s with b=%d" % (name, b)
            if want is None:
                raised += 1
                # b=1 with (-1, 10) would make a dim of 0: that requirement
                # is checked first and named instead
                expect = (needle if needle in r.stderr or b != 1 else "must be at least 1): b=") \
                    + str(b)
                if r.returncode != 1 or expect not in r.stderr:
                    fail("%s: PyTorch raised; nncc exit %d, '%s' (want 1, '%s')"
                         % (case, r.returncode, r.stderr.strip(), expect))
            else:
                got = np.load(os.path.join(out, "output_0.npy")) if r.returncode == 0 else None
                if got is None or got.shape != want.shape or not np.array_equal(got, want):
                    fail("%s: PyTorch returned %s; nncc exit %d '%s'"
                         % (case, tuple(want.shape), r.returncode, r.stderr.strip()))
    return total, raised


def values(n, valid):
    return [valid, -1, -n, -n - 1, n, n + 3, 10**9, -(10**9), 2**40]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nncc", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    fails, raised, wrapped, total = 0, 0, 0, 0

    def fail(msg):
        nonlocal fails
        fails += 1
        print("FAIL " + msg)

    for name, mod, idx, n, pos, word in CASES:
        mod.eval()
        pt = os.path.join(a.work, name + ".pt")
        torch.jit.trace(mod, (idx,)).save(pt)
        spec = "idx:i64[%s]" % ",".join(str(d) for d in idx.shape)
        sos = {}
        for flag in ("", "--no-runtime-checks"):
            so = os.path.join(a.work, name + ("_nocheck" if flag else "") + ".so")
            cmd = [a.nncc, pt, "-o", so, "--input", spec] + ([flag] if flag else [])
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                fail("%s: nncc %s exit %d: %s" % (name, flag, r.returncode, r.stderr.strip()))
                so = None
            sos[flag] = so
        if not sos[""]:
            continue
        for v in values(n, int(idx.flatten()[pos])):
            total += 1
            x = idx.clone()
            x.view(-1)[pos] = v
            inp = os.path.join(a.work, "%s_in.npy" % name)
            np.save(inp, x.numpy())
            try:
                want = mod(x)
                err = None
            except (IndexError, RuntimeError) as e:
                want, err = None, str(e).split("\n")[0]
            out = os.path.join(a.work, "out_" + name)
            r = subprocess.run([a.nncc, "run", sos[""], inp, "--out-dir", out],
                               capture_output=True, text=True)
            case = "%s with %d at %d" % (name, v, pos)
            if err is not None:
                raised += 1
                lo = -n if (word == "index" and name.startswith("index_")
                            and "select" not in name) else 0
                expect = "%s %d out of range [%d, %d)" % (word, v, lo, n)
                if r.returncode != 1 or expect not in r.stderr:
                    fail("%s: PyTorch raised '%s'; nncc exit %d, '%s' (want 1, '%s')"
                         % (case, err, r.returncode, r.stderr.strip(), expect))
            else:
                wrapped += 1
                got = np.load(os.path.join(out, "output_0.npy")) if r.returncode == 0 else None
                if r.returncode != 0 or got.shape != tuple(want.shape) or not np.array_equal(
                        got, want.detach().numpy()):
                    fail("%s: PyTorch returned a result; nncc exit %d '%s', outputs %s"
                         % (case, r.returncode, r.stderr.strip(),
                            "differ" if got is not None else "missing"))
            if sos["--no-runtime-checks"]:
                r = subprocess.run([a.nncc, "run", sos["--no-runtime-checks"], inp, "--out-dir",
                                    out], capture_output=True, text=True)
                if r.returncode != 0:
                    fail("%s, --no-runtime-checks: exit %d '%s'" % (case, r.returncode,
                                                                   r.stderr.strip()))
    stotal, sraised = shape_cases(a, fail)
    print("rtchecks: %d cases over %d ops: PyTorch raised in %d (nncc must fail), returned in "
          "%d (outputs must match); %d reshapes of a symbolic dim: %d refused, as in PyTorch; "
          "%d failure(s)" % (total, len(CASES), raised, wrapped, stotal, sraised, fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
