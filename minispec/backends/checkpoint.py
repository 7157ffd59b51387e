"""Weights on disk: one replica's canonical state as a safetensors file.

    save_state("runs/caux/trial_003.safetensors", model.state(3), {"spec": "caux", "trial": 3})
    state = load_state("runs/caux/trial_003.safetensors", program)   # checked against the program
    model.load_state(0, state)

Safetensors holds a JSON header and raw tensor bytes: reading one never runs
code. Pickle and torch.load are never used, so a weights file from a stranger
cannot execute anything; whatever is not a well-formed safetensors file, or
does not hold exactly the program's parameter and buffer names and shapes, is
refused with one `MinispecError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from minispec.errors import MinispecError
from minispec.ir.model import Program
from minispec.ir.ops import state_names

_SHOWN = 5  # names listed in an error before "and N more"
FLOAT_TYPES = (torch.float32, torch.float64)  # what a weights file may hold; others are refused, never cast


def expected_shapes(program: Program) -> dict[str, list[int]]:
    """Canonical state names of `program` and their shapes, in `initial_state` order."""
    shapes: dict[str, list[int]] = {}
    for owner in program.weight_owners:
        for name in state_names(owner):
            shapes[f"{owner.weights}.{name}"] = list({**owner.param_shapes, **owner.buffer_shapes}[name])
    return shapes


def save_state(path: str | Path, state: dict[str, torch.Tensor], metadata: dict[str, object] | None = None) -> None:
    """Write `state` (canonical names -> CPU tensors) to `path` as safetensors,
    atomically (a temporary file, then a rename); metadata values become strings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(temporary), metadata={str(k): str(v) for k, v in (metadata or {}).items()})
    os.replace(temporary, path)


def _listed(names) -> str:
    names = sorted(names)
    shown = ", ".join(f"`{n}`" for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _open(path: Path):
    if not path.is_file():
        raise MinispecError(f"weights file `{path}` does not exist or is not a file")
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as error:  # safetensors raises its own error type for every malformed file
        raise MinispecError(
            f"`{path}` is not a valid safetensors weights file ({error})",
            hint="minispec reads weights only from .safetensors files it wrote; pickle and torch.save files are refused",
        ) from None


def load_metadata(path: str | Path) -> dict[str, str]:
    """The metadata strings saved with a weights file (refused like `load_state` when malformed)."""
    with _open(Path(path)) as handle:
        return dict(handle.metadata() or {})


def load_state(path: str | Path, program: Program) -> dict[str, torch.Tensor]:
    """Read a safetensors weights file and check it against `program`'s canonical state.

    Raises MinispecError when the file is missing or not valid safetensors
    (pickle, random bytes, truncated), or when its names or shapes differ
    from the program's (missing, unexpected and mismatched names are listed).
    """
    path = Path(path)
    state: dict[str, torch.Tensor] = {}
    with _open(path) as handle:
        try:
            for name in handle.keys():
                state[name] = handle.get_tensor(name)
        except Exception as error:
            raise MinispecError(f"`{path}` is not a valid safetensors weights file ({error})") from None
    expected = expected_shapes(program)
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    mismatched = [
        f"`{name}` is {list(state[name].shape)}, expected {shape}"
        for name, shape in expected.items()
        if name in state and list(state[name].shape) != shape
    ]
    wrong_kind = [
        f"`{name}` is {str(state[name].dtype).removeprefix('torch.')}"
        for name in expected
        if name in state and state[name].dtype not in (
            (torch.int64,) if name.endswith(".num_batches_tracked") else FLOAT_TYPES)
    ]
    not_finite = [name for name in expected if name in state and state[name].dtype in FLOAT_TYPES
                  and not bool(torch.isfinite(state[name]).all())]
    problems = []
    if missing:
        problems.append(f"missing {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listed(unexpected)}")
    if mismatched:
        problems.append("wrong shape: " + "; ".join(mismatched[:_SHOWN]) + (f" and {len(mismatched) - _SHOWN} more" if len(mismatched) > _SHOWN else ""))
    if wrong_kind:
        problems.append("wrong type: " + "; ".join(wrong_kind[:_SHOWN])
                        + " (weights are float32 or float64; nothing is cast silently)")
    if not_finite:
        problems.append(f"NaN or infinite values in {_listed(not_finite)} (a diverged trial?)")
    if problems:
        raise MinispecError(
            f"weights in `{path}` do not fit spec `{program.name}`: " + "; ".join(problems),
            hint="were they saved from another spec, or from this spec with other parameters?",
        )
    return {name: state[name] for name in expected}
