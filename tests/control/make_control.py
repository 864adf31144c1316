"""Scripted models with static control flow, and one with data-dependent
control flow, for tests/control.sh. Usage: make_control.py OUTDIR

Each model is torch.jit.script-ed (loops and ifs survive in the saved code),
saved with an input .npy and PyTorch's output .npy; control.json lists the
--input flags."""
import json
import os
import sys

import numpy as np
import torch


class RowProduct(torch.nn.Module):
    """The legacy fixtures' foo3: product of the rows, a loop over size(0)."""

    def forward(self, x):
        result = x[0]
        for i in range(x.size(0)):
            if i != 0:
                result = result * x[i]
        return result


class WhileBreak(torch.nn.Module):
    """while with a counter, break and continue, an if on a shape."""

    def forward(self, x):
        k = 0
        y = x
        while k < 10:
            k += 1
            if k == 2:
                continue
            if k > 4:
                break
            y = torch.tanh(y) + float(k)
        if x.size(1) > 3:
            y = y * 2.0
        else:
            y = y * 3.0
        return y


class Blocks(torch.nn.Module):
    """A loop over a ModuleList and over a constant list of scales."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(3)])

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        for s in [0.5, 2.0]:
            x = x * s
        return x


class DataDependent(torch.nn.Module):
    """An if on tensor data: must be refused with a located error."""

    def forward(self, x):
        if bool(x.sum() > 0):
            return x + 1
        return x - 1


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    cases = {
        "row_product": (RowProduct(), [torch.rand(4, 5) + 0.5]),
        "while_break": (WhileBreak(), [torch.randn(2, 5)]),
        "blocks": (Blocks(), [torch.randn(3, 8)]),
        "data_dependent": (DataDependent(), [torch.randn(2, 2)]),
    }
    meta = {}
    for name, (mod, inputs) in cases.items():
        m = torch.jit.script(mod.eval())
        m.save(os.path.join(out, name + ".pt"))
        flags = []
        names = [a.name for a in m.forward.schema.arguments[1:]]
        for i, (n, t) in enumerate(zip(names, inputs)):
            np.save(os.path.join(out, "%s.in%d.npy" % (name, i)), t.numpy())
            flags.append("%s:f32[%s]" % (n, ",".join(str(d) for d in t.shape)))
        with torch.no_grad():
            ref = m(*inputs)
        np.save(os.path.join(out, name + ".out0.npy"), ref.numpy())
        meta[name] = flags
    json.dump(meta, open(os.path.join(out, "control.json"), "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
