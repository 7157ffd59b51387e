"""disk: points in the unit square, labelled by a disk of area 1/2 (Project 2).

    x:      [N, 2] float32, uniform in [0, 1]^2
    target: [N] long, 1 when (x0 - 0.5)^2 + (x1 - 0.5)^2 < 1 / (2 pi), else 0

The disk has centre (0.5, 0.5) and radius 1/sqrt(2 pi), so each class holds
half of the square. Train and test points are drawn independently (one seeded
generator, train first). No normalisation.
"""

from __future__ import annotations

import math
from typing import Any, TYPE_CHECKING


from minispec.data.base import Dataset, DatasetInfo, Option, Split, check_options, generator

if TYPE_CHECKING:
    import torch

SOURCE = "uniform points in [0,1]^2 labelled by the disk of area 1/2 (generated)"
RADIUS_SQUARED = 1 / (2 * math.pi)

INFO = DatasetInfo(
    name="disk",
    summary="2-D points in [0,1]^2, target 1 inside the disk of centre (0.5, 0.5) and area 1/2",
    options=(
        Option("train", "size", 1000, "number of training points"),
        Option("test", "size", 1000, "number of test points"),
    ),
    inputs="x: [N, 2] float32",
    targets="target: [N] long (2 classes)",
)


def describe(options: dict[str, Any]):
    check_options(INFO, options)
    return {"x": [2]}, {"target": []}, {"target": 2}


def label(x: torch.Tensor) -> torch.Tensor:
    """1 inside the disk, 0 outside: [..., 2] -> [...] long."""
    return ((x - 0.5).pow(2).sum(dim=-1) < RADIUS_SQUARED).long()


def load(options: dict[str, Any], seed: int, root: str | None = None) -> Dataset:
    import torch
    opts = check_options(INFO, options)
    rng = generator(seed)
    x_train = torch.rand(opts["train"], 2, generator=rng)
    x_test = torch.rand(opts["test"], 2, generator=rng)
    return Dataset(
        train=Split({"x": x_train}, {"target": label(x_train)}),
        test=Split({"x": x_test}, {"target": label(x_test)}),
        source=SOURCE,
    )
