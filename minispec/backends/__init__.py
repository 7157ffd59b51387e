"""Backends: lowerings of a valid Program to a trainable model.

`make_model` is the one door the runner, `verify`, `eval` and the CLI use; they
never import a backend directly. Each backend gets the initial states of its
replicas (from `minispec.backends.weights.initial_state`) so both start alike.

torch is imported inside the functions: `minispec.backends.torch_nn.emit`
lives below this package and writes text without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minispec.backends.replicas import ReplicaHyper
from minispec.errors import MinispecError
from minispec.ir.model import Program

if TYPE_CHECKING:
    import torch

    from minispec.backends.base import TrainableModel

BACKENDS = {
    "torch": "PyTorch: torch.nn modules trained with autograd and torch.optim",
    "scratch": "the hand-written framework: forward and backward written by hand, no autograd, no torch.nn",
}


def make_model(
    backend: str,
    program: Program,
    states: list[dict[str, torch.Tensor]],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    generators: list[torch.Generator] | None = None,
    hyper: ReplicaHyper | None = None,
) -> TrainableModel:
    """A model of `len(states)` replicas, in float32 unless `dtype` says otherwise.
    `generators` (one per replica) drive the dropout masks, in both backends;
    without them each backend seeds its own from torch's global RNG. `hyper`:
    per-replica optimizer options, loss weights and dropout probabilities (a
    sweep's points as one model)."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    if backend == "torch":
        from minispec.backends.torch_nn import TorchModel, VectorizedTorchModel

        if len(states) == 1:
            return TorchModel(program, states, device=device, dtype=dtype, generators=generators)
        return VectorizedTorchModel(program, states, device=device, dtype=dtype, generators=generators, hyper=hyper)
    if backend == "scratch":
        from minispec.backends.scratch_graph import ScratchModel

        return ScratchModel(program, states, device=device, dtype=dtype, dropout_generators=generators, hyper=hyper)
    raise MinispecError(f"unknown backend `{backend}`", hint="backends: " + ", ".join(BACKENDS))


def backend_factory(backend: str):
    """What `run_experiment` takes to build `backend`'s models: a function of
    (program, states, device, generators, hyper) -> `make_model(backend, ...)`."""
    if backend not in BACKENDS:
        raise MinispecError(f"unknown backend `{backend}`", hint="backends: " + ", ".join(BACKENDS))

    def factory(program, states, device, generators=None, hyper=None):
        return make_model(backend, program, states, device=device, generators=generators, hyper=hyper)

    return factory


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:1` or `auto` (CUDA when present) -> a device; a
    request for CUDA on a machine without it is one clear error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MinispecError(f"unknown device `{name}`", hint="use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MinispecError("--device cuda was asked for, but PyTorch sees no CUDA device on this machine",
                            hint="use --device cpu, or --device auto to take CUDA only when present")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MinispecError(f"there is no CUDA device {device.index}",
                            hint=f"this machine has {torch.cuda.device_count()}")
    if device.type not in ("cpu", "cuda"):
        raise MinispecError(f"device `{name}` is not supported", hint="use cpu, cuda or auto")
    return device
