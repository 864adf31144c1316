"""Half and bfloat16 archives for tests/half.sh. Usage: make_half.py OUTDIR

The seeds' inference recipe: trace a model, then convert it with .half()
(or .to(torch.bfloat16)) and save. PyTorch 1.13 on the CPU can't run most
half kernels (conv, addmm), so the reference is the converted model run in
float32 on the half-rounded input: exactly what nncc computes (f16/bf16
weights widened to f32)."""
import copy
import json
import os
import sys

import numpy as np
import torch
import torchvision


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.mean([2, 3]))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    models = {
        "net": (Net().eval(), torch.randn(2, 3, 9, 9)),
        "resnet18": (torchvision.models.resnet18().eval(), torch.randn(1, 3, 64, 64)),
    }
    meta = {}
    for mname, (model, x) in models.items():
        for dt, tag, npdt in [(torch.half, "f16", np.float16), (torch.bfloat16, "bf16", None)]:
            name = "%s_%s" % (mname, tag)
            traced = torch.jit.trace(copy.deepcopy(model), x).to(dt)
            traced.save(os.path.join(out, name + ".pt"))
            xr = x.to(dt)
            with torch.no_grad():
                ref = torch.jit.load(os.path.join(out, name + ".pt")).float()(xr.float())
            # numpy has no bfloat16: feed the bf16-rounded values as f32.
            np.save(os.path.join(out, name + ".in0.npy"),
                    xr.numpy() if npdt is not None else xr.float().numpy())
            np.save(os.path.join(out, name + ".out0.npy"), ref.numpy())
            meta[name] = "x:%s[%s]" % ("f16" if npdt is not None else "f32",
                                       ",".join(str(d) for d in x.shape))
    json.dump(meta, open(os.path.join(out, "half.json"), "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
