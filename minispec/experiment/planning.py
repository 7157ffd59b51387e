"""How to run the trials: the resource guard, vectorize or not, chunk sizes.

    plan_run(program, device, pending, vectorize, max_memory, folder) -> Plan

Before anything is allocated, the memory one trial needs is estimated
(`minispec.ir.cost`) and compared with the budget (`--max-memory`, default
what the device has free): a run whose single trial cannot fit is refused, and
vectorized trials are chunked so that a chunk fits. The disk is checked the
same way for the weights and records the run will write.

Vectorize or not, when the user did not say: on a GPU, vectorize (per-step
overhead dominates small models there); on the CPU, vectorize when a training
step of one trial is under `CPU_VECTORIZE_FLOPS`. Below it (the disk MLPs,
the MNIST MLPs, every digit-pair convnet of specs/) batching the trials
removes the fixed cost of each step and is faster in both backends, or no
slower; above it (the 10-block ResNet, 22 GFLOP a step) one trial's tensors
are already large and R of them only add memory traffic: the hand-written
backend runs 1.6x slower vectorized there. The rule is a fixed function of
the spec, never a timing, so the same command always takes the same path and
gives the same numbers bit for bit. The figures come from
`benchmarks/trials.py` (see docs/performance.md).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from minispec.errors import MinispecError
from minispec.ir.cost import available_memory, estimate_memory, format_bytes, train_flops
from minispec.ir.model import Program

CPU_VECTORIZE_FLOPS = 2e9  # training arithmetic of one step of one trial, below which a CPU vectorizes
RECORD_BYTES = 600  # one evaluation record of a trial file, roughly, per head


@dataclass(frozen=True)
class Plan:
    vectorize: bool
    chunk: int
    reason: str
    fitting: int  # trials whose replicas fit the memory budget together


def plan_run(
    program: Program,
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
        return Plan(False, 1, "one trial at a time" + (" (asked)" if vectorize is False else ""), fitting)
    size = min(pending, fitting, chunk or pending)
    if vectorize:
        return Plan(True, size, f"vectorized, {size} trials at a time" + _memory_note(size, pending, fitting), fitting)
    if device.type == "cuda":
        return Plan(True, size, f"vectorized on the GPU, {size} trials at a time" + _memory_note(size, pending, fitting), fitting)
    step = train_flops(program, program.train.batch)
    if step < CPU_VECTORIZE_FLOPS:
        return Plan(True, size, f"vectorized, {size} trials at a time (a step is {step / 1e6:.1f} MFLOP per trial)"
                    + _memory_note(size, pending, fitting), fitting)
    return Plan(False, 1, f"one trial at a time (a step is {step / 1e9:.1f} GFLOP per trial: "
                          "large tensors already)", fitting)


def _memory_note(size: int, pending: int, fitting: int) -> str:
    return " to fit the memory budget" if size < pending and size == fitting else ""


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
