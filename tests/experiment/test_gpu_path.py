"""The GPU path: no host-device synchronisation inside an epoch, dropout masks drawn on the device.

The CUDA tests count synchronisations with torch's sync debug mode and skip
cleanly without a CUDA device; the CPU test checks what a GPU run relies on:
the runner hands the backend generators on the model's device.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from minispec.backends import make_model
from minispec.compiler import compile_file
from minispec.experiment.folder import program_hash
from minispec.experiment.training import Chunk, train_chunk
from tests.conftest import ROOT

SPEC = """spec drop
data disk(train=200, test=200)
net {
    out = x | linear(16) | relu | dropout(0.5) | linear(1)
}
loss {
    out mse(target)
}
train {
    optimizer adam(lr=0.01)
    batch 50
    epochs 1
    trials 3
}
"""

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def program(write_spec, batch: int = 50):
    return compile_file(str(write_spec(SPEC)), [f"batch={batch}"])


def factory(backend: str, seen: list | None = None):
    def make(program, states, device, generators=None, hyper=None):
        if seen is not None:
            seen.extend(generators)
        return make_model(backend, program, states, device, generators=generators, hyper=hyper)

    return make


def test_the_runner_gives_generators_on_the_models_device(write_spec):
    seen = []
    train_chunk(Chunk(program(write_spec), (0, 1, 2), "hash", device="cpu"), factory("scratch", seen))
    assert len(seen) == 3 and all(g.device == torch.device("cpu") for g in seen)


def synchronisations(chunk: Chunk, backend: str) -> int:
    """How many times a chunk's training waits for the device (torch's sync debug mode)."""
    train_chunk(chunk, factory(backend))  # warm up: first allocations, kernels loaded
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_chunk(chunk, factory(backend))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("backend", ["torch", "scratch"])
def test_an_epoch_waits_for_the_device_only_to_evaluate(write_spec, backend):
    """Four times the steps per epoch, the same number of waits: none of them is per step."""
    few = synchronisations(Chunk(program(write_spec, batch=100), (0, 1, 2), "hash", device="cuda"), backend)
    many = synchronisations(Chunk(program(write_spec, batch=25), (0, 1, 2), "hash", device="cuda"), backend)
    assert few == many
    assert few > 0  # the evaluation's one read is seen: the count works


def sweep_chunk(batch: int, optimizers: list[str], device: str) -> Chunk:
    """A sweep's chunk: one replica per optimizer, each its own momentum, weight decay and learning rate."""
    spec = str(ROOT / "tests/experiment/specs/sweepable.mdl")
    points = [compile_file(spec, [f"optimizer={o}", f"batch={batch}", "epochs=1"]) for o in optimizers]
    return Chunk(points[0], tuple(range(len(points))), program_hash(points[0]), device=device, points=tuple(points),
                 point_hashes=tuple(program_hash(p) for p in points))


SWEEPS = {
    "sgd": ["sgd(lr=0.1, momentum=0.5)", "sgd(lr=0.05, weight_decay=0.01)", "sgd(lr=0.05, momentum=0.9)"],
    "adam": ["adam(lr=0.01)", "adam(lr=0.03, beta1=0.8, weight_decay=0.001)"],
}


@pytest.mark.parametrize("optimizers", SWEEPS.values(), ids=SWEEPS.keys())
def test_a_sweeps_chunk_trains_with_its_own_options_per_replica(optimizers):
    """The chunk the CUDA count below uses, on the CPU: it trains, and its replicas' options differ."""
    finished = train_chunk(sweep_chunk(25, optimizers, "cpu"), factory("scratch"))
    assert len(finished) == len(optimizers) and all(f.state is not None for f in finished)
    assert len({f.record.spec_hash for f in finished}) == len(optimizers)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("backend", ["torch", "scratch"])
@pytest.mark.parametrize("optimizers", SWEEPS.values(), ids=SWEEPS.keys())
def test_a_sweeps_epoch_waits_for_the_device_only_to_evaluate(backend, optimizers):
    """Per-replica momentum and weight decay are decided once, not read from a tensor each step."""
    few = synchronisations(sweep_chunk(100, optimizers, "cuda"), backend)
    many = synchronisations(sweep_chunk(25, optimizers, "cuda"), backend)
    assert few == many > 0


@pytest.mark.cuda
@cuda
def test_dropout_masks_are_drawn_on_the_device(write_spec):
    seen = []
    train_chunk(Chunk(program(write_spec), (0, 1, 2), "hash", device="cuda"), factory("torch", seen))
    assert all(g.device.type == "cuda" for g in seen)
