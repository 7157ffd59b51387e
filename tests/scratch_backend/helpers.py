"""Programs and batches shared by the hand-written backend's tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from minispec.backends.weights import initial_state, trial_generator
from minispec.compiler import compile_file
from minispec.ir.model import Program
from minispec.ir.targets import encode

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.mdl"))
# The ResNet rung has 10 residual blocks; two exercise the same code.
OVERRIDES = {"resnet": ("depth=2",)}


@lru_cache(maxsize=None)
def program(name: str) -> Program:
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
