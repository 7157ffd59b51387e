"""Programs and batches shared by the hand-written backend's tests."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import torch

from minispec.backends.targets import encode
from minispec.backends.weights import initial_state, trial_generator
from minispec.compiler import compile_file
from minispec.ir.model import Program

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.mdl"))
# The ResNet rung has 10 residual blocks; two exercise the same code. Narrow ResNet-18 stages too.
OVERRIDES = {"resnet": ("depth=2",), "resnet18_pairs": ("c1=4", "c2=4", "c3=8", "c4=8")}


# Every op and loss the IR knows, beyond the shipped specs: batchnorm1d, leaky_relu,
# a residual on flat features, softmax + nll, sigmoid + bce, mse on one-hot targets,
# Adam through a bias followed by batchnorm (its true gradient is zero).
ALL_OPS = """
spec all_ops
data disk(train=10, test=10)
net {
    h = x | linear(16) | batchnorm | leaky_relu(0.1) | dropout(0.1)
          | residual { linear(16) | tanh } | linear(16) | relu
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

# Strided, padded, bias-free convolution, overlapping average pooling, one
# instance applied three times in a chain, a concat of two of its uses.
CONV = """
spec conv_odd
data mnist(train=10, test=10)
net {
    t = x | conv2d(4, 3, stride=2, pad=1, bias=false) | avgpool(2, stride=1) | batchnorm | relu
    shared = instance { conv2d(4, 1) | tanh }
    u = shared(t)
    v = shared(u)
    w = shared(v)
    out = concat(w, u) | maxpool(3, stride=2) | flatten | dropout(0.2) | linear(10, bias=false)
}
loss {
    out cross_entropy(target)
}
train {
    optimizer adadelta(lr=1.0)
}
"""
EXTRA = {"all_ops": ALL_OPS, "conv_odd": CONV}


@lru_cache(maxsize=None)
def program(name: str) -> Program:
    """A shipped spec by file stem, or one of EXTRA."""
    if name in EXTRA:
        path = Path(tempfile.mkdtemp(prefix="minispec_scratch_")) / f"{name}.mdl"
        path.write_text(EXTRA[name], encoding="utf-8")
        return compile_file(path)
    return compile_file(ROOT / "specs" / f"{name}.mdl", list(OVERRIDES.get(name, ())))


def states(p: Program, trials, dtype=torch.float64) -> list[dict[str, torch.Tensor]]:
    return [initial_state(p, trial_generator(0, k), dtype=dtype) for k in trials]


def batch(p: Program, replicas: int, size: int, seed: int, dtype=torch.float64):
    """Inputs [R, B, ...] and encoded targets [R, B, ...] (different data per replica)."""
    g = torch.Generator().manual_seed(seed)
    inputs = {name: torch.randn(replicas, size, *shape, generator=g, dtype=dtype) for name, shape in p.data.inputs.items()}
    raw = {
        name: torch.randint(0, p.data.num_classes[name], (replicas, size, *shape), generator=g)
        for name, shape in p.data.targets.items()
    }
    return inputs, [encode(loss, raw, dtype) for loss in p.losses]
