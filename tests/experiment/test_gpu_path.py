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
from minispec.experiment.training import Chunk, train_chunk

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
    def make(program, states, device, generators=None):
        if seen is not None:
            seen.extend(generators)
        return make_model(backend, program, states, device, generators=generators)

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


@pytest.mark.cuda
@cuda
def test_dropout_masks_are_drawn_on_the_device(write_spec):
    seen = []
    train_chunk(Chunk(program(write_spec), (0, 1, 2), "hash", device="cuda"), factory("torch", seen))
    assert all(g.device.type == "cuda" for g in seen)
