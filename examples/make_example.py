"""Writes examples/model_jit.pt, the bundled example for `make demo`.

A small digit classifier in the style of the ConvNet people train on MNIST:
conv → relu → avg-pool → conv → relu → max-pool → flatten (via view and
size, the way traced code reshapes) → linear → relu → linear. Random
weights from a fixed seed; traced and saved exactly as users do:

    torch.jit.trace(model, example).save("model_jit.pt")

Run with an interpreter that has torch:  /usr/bin/python3 examples/make_example.py
"""
import os
import torch
from torch import nn


class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 4, 3, 1, 1), nn.ReLU(), nn.AvgPool2d(2, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(4, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.fc = nn.Sequential(nn.Linear(8 * 7 * 7, 32), nn.ReLU())
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.conv2(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return self.out(x)


def main():
    torch.manual_seed(0)
    model = SmallConvNet().eval()
    example = torch.randn(1, 1, 28, 28)
    here = os.path.dirname(os.path.abspath(__file__))
    torch.jit.trace(model, example).save(os.path.join(here, "model_jit.pt"))


if __name__ == "__main__":
    main()
