"""How to run the trials: the resource guard, vectorize or not, chunk sizes.

    plan_run(program, factory, device, pending, vectorize, max_memory, folder) -> Plan

Before anything is allocated, the memory one trial needs is estimated
(`minispec.ir.cost`) and compared with the budget (`--max-memory`, default
what the device has free): a run whose single trial cannot fit is refused, and
vectorized trials are chunked so that a chunk fits. The disk is checked the
same way for the weights and records the run will write.

Vectorize or not, when the user did not say: on a GPU, vectorize (per-step
overhead dominates small models there); on the CPU, measure a few training
steps of one replica and of a chunk of replicas on a random batch, and
vectorize only when it is faster per trial.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from minispec.backends.smoke import random_batch
from minispec.backends.weights import initial_state, trial_generator
from minispec.errors import MinispecError
from minispec.ir import targets
from minispec.ir.cost import available_memory, estimate_memory, format_bytes
from minispec.ir.model import Program

CALIBRATION_REPLICAS = 16
CALIBRATION_STEPS = 4
RECORD_BYTES = 600  # one evaluation record of a trial file, roughly, per head


@dataclass(frozen=True)
class Plan:
    vectorize: bool
    chunk: int
    reason: str


def plan_run(
    program: Program,
    factory,
    device: torch.device,
    pending: int,
    vectorize: bool | None,
    max_memory: int | None,
    folder: Path,
    chunk: int | None = None,
) -> Plan:
    budget = max_memory if max_memory is not None else available_memory(str(device))
    one = estimate_memory(program, 1).total
    if one > budget:
        raise MinispecError(
            f"one trial of `{program.name}` needs about {format_bytes(one)} "
            f"(parameters, activations of a batch of {program.train.batch} and the data), "
            f"more than the {format_bytes(budget)} available",
            hint="use a smaller batch, fewer or narrower layers, less data, or raise --max-memory",
        )
    _check_disk(program, pending, folder)
    fitting = max(1, budget // one)
    if pending <= 1 or vectorize is False:
        return Plan(False, 1, "one trial at a time" + (" (asked)" if vectorize is False else ""))
    size = min(pending, fitting, chunk or pending)
    if vectorize:
        return Plan(True, size, f"vectorized, {size} trials at a time" + _memory_note(size, pending, fitting))
    if device.type == "cuda":
        return Plan(True, size, f"vectorized on the GPU, {size} trials at a time" + _memory_note(size, pending, fitting))
    per_trial_alone, per_trial_together = _measure(program, factory, device, min(size, CALIBRATION_REPLICAS))
    if per_trial_together is None:
        return Plan(False, 1, "one trial at a time (this backend trains one replica per model)")
    if per_trial_together < 0.9 * per_trial_alone:
        speedup = per_trial_alone / per_trial_together
        return Plan(True, size, f"vectorized, {size} trials at a time (measured {speedup:.1f}x faster per trial)")
    return Plan(False, 1, "one trial at a time (measured faster than vectorized for this spec)")


def _memory_note(size: int, pending: int, fitting: int) -> str:
    return f" to fit the memory budget" if size < pending and size == fitting else ""


def _check_disk(program: Program, pending: int, folder: Path) -> None:
    heads = len(program.losses)
    records = program.train.epochs * program.train.evaluate * RECORD_BYTES * heads
    per_trial = program.total_params * 4 + records
    needed = per_trial * pending
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise MinispecError(
            f"the run would write about {format_bytes(needed)} ({pending} trials), "
            f"but only {format_bytes(free)} is free under {existing}",
            hint="free some space, choose another --out, or run fewer trials",
        )


def _measure(program: Program, factory, device: torch.device, replicas: int) -> tuple[float, float | None]:
    """Seconds per trial-step training alone and as one of `replicas` replicas."""
    timings = []
    for count in (1, replicas):
        states = [initial_state(program, trial_generator(program.train.seed, k)) for k in range(count)]
        try:
            model = factory(program, states, device)
        except ValueError:
            return timings[0], None
        generator = torch.Generator().manual_seed(0)
        inputs, raw = random_batch(program, program.train.batch, generator)
        inputs = {name: tensor.expand(count, *tensor.shape[1:]).contiguous().to(device) for name, tensor in inputs.items()}
        raw = {name: tensor.expand(count, *tensor.shape[1:]).contiguous() for name, tensor in raw.items()}
        encoded = [targets.encode(loss, raw).to(device) for loss in program.losses]
        model.train_step(inputs, encoded)  # warm-up
        start = time.perf_counter()
        for _ in range(CALIBRATION_STEPS):
            model.train_step(inputs, encoded)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append((time.perf_counter() - start) / CALIBRATION_STEPS / count)
    return timings[0], timings[1]
