"""Shared pieces of the torch.nn backend tests: programs, batches and hand-written references."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from minispec.compiler import compile_file
from minispec.ir.model import Program

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.mdl"))

# Every op the IR knows, on the disk data set: batchnorm1d, leaky_relu, dropout,
# residual add, repeat, tanh, sigmoid, log_softmax; mse(onehot), bce and nll losses.
DISK = """
spec disk_mlp
data disk(train=200, test=200)
net {
    h = x | linear(25) | batchnorm(eps=0.001, momentum=0.2) | leaky_relu(0.1) | dropout(0.1)
          | residual { linear(25) | tanh } | repeat 2 { linear(25) | relu }
    out = h | linear(2)
    prob = h | linear(1) | sigmoid
    soft = h | linear(2) | log_softmax
}
loss {
    out mse(onehot(target))
    prob bce(target) weight 0.5
    soft nll(target) weight 0.1
}
train {
    optimizer adam(lr=0.01)
}
"""

# Convolutions with stride, padding and no bias, average pooling, a shared
# instance used three times, and node names that clash with Python and nn.Module
# (`torch`, `self`, `F`, `lambda`, `half`, `to`).
ODD = """
spec odd_names
data mnist(train=10, test=10)
net {
    torch = x | conv2d(4, 3, stride=2, pad=1, bias=false) | avgpool(2, stride=1) | batchnorm | relu
    lambda = instance { conv2d(4, 1) | tanh }
    half = lambda(torch)
    self = lambda(half)
    F = lambda(self)
    to = concat(F, half) | flatten | dropout(0.2) | linear(10, bias=false)
}
loss {
    to cross_entropy(target)
}
train {
    optimizer adadelta(lr=1.0)
}
"""

EXTRA = {"disk_mlp": DISK, "odd_names": ODD}
PROGRAMS = [path.stem for path in SPECS] + list(EXTRA)
# The same without dropout (p = 0): a vectorized replica must equal its sequential run.
EXTRA.update({
    "disk_nodrop": DISK.replace("dropout(0.1)", "dropout(0.0)"),
    "odd_nodrop": ODD.replace("dropout(0.2)", "dropout(0.0)"),
})


@lru_cache(maxsize=None)
def program(name: str, overrides: tuple[str, ...] = ()) -> Program:
    """A shipped spec by file stem (`caux`, `sn_conv`...) or one of EXTRA, compiled once."""
    if name in EXTRA:
        path = Path(tempfile.mkdtemp(prefix="minispec_torch_nn_")) / f"{name}.mdl"
        path.write_text(EXTRA[name], encoding="utf-8")
        return compile_file(path, list(overrides))
    return compile_file(ROOT / "specs" / f"{name}.mdl", list(overrides))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_inputs(p: Program, batch: int, seed: int = 0, dtype=torch.float32) -> dict[str, torch.Tensor]:
    g = gen(seed)
    return {name: torch.randn(batch, *shape, generator=g, dtype=dtype) for name, shape in p.data.inputs.items()}


def random_raw_targets(p: Program, batch: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = gen(seed)
    return {
        name: torch.randint(0, p.data.num_classes[name], (batch, *shape), generator=g)
        for name, shape in p.data.targets.items()
    }


# --- hand-written references, in the style of the course's solutions ------------


class CourseWSN(nn.Module):
    """WSN as one writes it by hand; the `caux=True` variant adds the digit heads.

    Layers are created in the order of the spec's weight owners, so after
    torch.manual_seed(s) they hold the same numbers as initial_state(gen(s)).
    """

    def __init__(self, caux: bool = False):
        super().__init__()
        self.caux = caux
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.bn2 = nn.BatchNorm2d(64)
        if caux:
            self.aux_a = nn.Linear(256, 10)
            self.aux_b = nn.Linear(256, 10)
        self.fc1 = nn.Linear(512, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 32)
        self.fc4 = nn.Linear(32, 2)

    def features(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), kernel_size=2)
        return x.view(x.size(0), -1)

    def forward(self, x):
        a = self.features(x[:, 0:1])
        b = self.features(x[:, 1:2])
        h = torch.cat((a, b), 1)
        h = F.relu(self.fc1(h))
        h = F.relu(self.fc2(h))
        h = F.relu(self.fc3(h))
        out = self.fc4(h)
        if self.caux:
            return out, self.aux_a(a), self.aux_b(b)
        return out


# Reference attribute -> canonical (spec) name.
WSN_NAMES = {
    "conv1": "extract:1:conv2d",
    "bn1": "extract:2:batchnorm",
    "conv2": "extract:5:conv2d",
    "bn2": "extract:6:batchnorm",
    "aux_a": "digit_a",
    "aux_b": "digit_b",
    "fc1": "out:2:linear",
    "fc2": "out:4:linear",
    "fc3": "out:6:linear",
    "fc4": "out",
}


def canonical(reference_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A CourseWSN state under the spec's canonical names."""
    renamed = {}
    for key, value in reference_state.items():
        layer, _, name = key.partition(".")
        renamed[f"{WSN_NAMES[layer]}.{name}"] = value
    return renamed
