"""What every data set shares: the returned tensors, option checking, stacking.

A draw is a `Dataset` of two `Split`s (train, test). A split holds plain
tensors: `inputs` (e.g. `x`: [N, 2, 14, 14] float32) and `targets` (class
indices, e.g. `target`: [N] long, `classes`: [N, 2] long). `stack` puts T
draws side by side for vectorized trials: every tensor gets a leading trials
axis, [T, N, ...].

Options are checked here once, the same way for every data set: unknown names
get the nearest valid name as a hint, sizes must be positive integers and
switches booleans. Every user mistake is a `MinispecError`.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal, TYPE_CHECKING


from minispec.errors import MinispecError

if TYPE_CHECKING:
    import torch

Shapes = dict[str, list[int]]


@dataclass(frozen=True)
class Split:
    """One side (train or test) of a draw.

    inputs: name -> [N, *sample_shape] (float32); targets: name -> [N, ...]
    (long class indices). After `stack`, every tensor has a leading trials axis
    [T, N, ...] and `trials` is T; `len()` is N either way.
    """

    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    trials: int | None = None

    def __len__(self) -> int:
        tensor = next(iter({**self.inputs, **self.targets}.values()), None)
        if tensor is None:
            return 0
        return int(tensor.shape[0 if self.trials is None else 1])


@dataclass(frozen=True)
class Dataset:
    """One trial's draw: the train and test splits and where the data came from."""

    train: Split
    test: Split
    source: str


@dataclass(frozen=True)
class Option:
    """One option of a data set.

    kind `size`: a positive integer (a number of samples); `bool`: a switch.
    `default` None means "depends on the data": see `help`.
    """

    name: str
    kind: Literal["size", "bool"]
    default: Any
    help: str


@dataclass(frozen=True)
class DatasetInfo:
    """What `minispec` knows about a data set without loading it."""

    name: str
    summary: str
    options: tuple[Option, ...]
    inputs: str
    targets: str

    def option_names(self) -> list[str]:
        return [option.name for option in self.options]

    def signature(self) -> str:
        """`name(opt=default, ...)` as written in a spec."""
        parts = []
        for option in self.options:
            default = option.default
            if default is None:
                default = "auto"
            elif isinstance(default, bool):
                default = "true" if default else "false"
            parts.append(f"{option.name}={default}")
        return f"{self.name}({', '.join(parts)})"


def check_options(info: DatasetInfo, options: dict[str, Any]) -> dict[str, Any]:
    """Every option of `info` with its value: given ones checked, the others defaulted."""
    valid = info.option_names()
    for name in options:
        if name not in valid:
            close = difflib.get_close_matches(str(name), valid, n=1)
            guess = f"did you mean `{close[0]}`? " if close else ""
            raise MinispecError(
                f"data set `{info.name}` has no option `{name}`",
                hint=f"{guess}valid options: {info.signature()}",
            )
    resolved = {}
    for option in info.options:
        value = options.get(option.name, option.default)
        if option.name in options and not (value is None and option.default is None):
            value = _check_value(info, option, value)
        resolved[option.name] = value
    return resolved


def _check_value(info: DatasetInfo, option: Option, value: Any) -> Any:
    where = f"{info.name}({option.name}=...)"
    if option.kind == "bool":
        if isinstance(value, bool):
            return value
        raise MinispecError(
            f"{where}: `{option.name}` must be true or false, got {value!r}",
            hint=f"write {option.name}=true or {option.name}=false",
        )
    number = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    if number is None or number <= 0:
        raise MinispecError(
            f"{where}: `{option.name}` must be a positive whole number of samples, got {value!r}",
            hint=f"for example {option.name}=1000",
        )
    return number


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise MinispecError(f"the data seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) < 2**63:
        raise MinispecError(f"the data seed must be between 0 and 2**63 - 1, got {seed}")
    return int(seed)


def generator(seed: int) -> torch.Generator:
    """A private CPU generator: draws never touch (nor depend on) the global RNG."""
    import torch
    return torch.Generator(device="cpu").manual_seed(seed)


def normalize(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Subtract the training mean and divide by the training std (scalars), both sides."""
    import torch
    mean, std = train.mean(), train.std()
    std = std if std > 0 else torch.ones_like(std)
    return (train - mean) / std, (test - mean) / std


def stack(datasets: list[Dataset]) -> Dataset:
    """Stack per-trial draws along a new leading axis: [N, ...] -> [T, N, ...].

    All draws must come from the same data set with the same options (same
    tensor names and shapes).
    """
    if not datasets:
        raise MinispecError("cannot stack an empty list of data set draws")
    for dataset in datasets:
        for split in (dataset.train, dataset.test):
            if split.trials is not None:
                raise MinispecError("cannot stack draws that are already stacked")
    sources = list(dict.fromkeys(dataset.source for dataset in datasets))
    return Dataset(
        train=_stack_splits([dataset.train for dataset in datasets]),
        test=_stack_splits([dataset.test for dataset in datasets]),
        source=sources[0] if len(sources) == 1 else "; ".join(sources),
    )


def _stack_splits(splits: list[Split]) -> Split:
    import torch
    first = splits[0]
    for split in splits[1:]:
        for mine, theirs in ((first.inputs, split.inputs), (first.targets, split.targets)):
            same = mine.keys() == theirs.keys() and all(
                mine[name].shape == theirs[name].shape and mine[name].dtype == theirs[name].dtype
                for name in mine
            )
            if not same:
                raise MinispecError(
                    "cannot stack draws of different shapes",
                    hint="stack only draws of one data set with the same options",
                )
    return Split(
        inputs={name: torch.stack([s.inputs[name] for s in splits]) for name in first.inputs},
        targets={name: torch.stack([s.targets[name] for s in splits]) for name in first.targets},
        trials=len(splits),
    )


def too_many(info_name: str, option: str, asked: int, limit: int, what: str, embedded: bool) -> MinispecError:
    """The error for a size larger than the digits at hand allow."""
    if embedded:
        hint = (
            "the embedded digits are a 5,000-image sample of MNIST; for more, "
            "point --data-root at a folder with full MNIST (see docs/data.md)"
        )
    else:
        hint = f"use at most {option}={limit}"
    return MinispecError(
        f"{info_name}: {option}={asked} needs more digits than there are: at most {limit} {what}",
        hint=hint,
    )
