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
from minispec.ir.cost import estimate_disk, estimate_memory, format_bytes, require_memory, train_flops
from minispec.experiment.training import check_batches
from minispec.ir.model import Program

CPU_VECTORIZE_FLOPS = 2e9  # training arithmetic of one step of one trial, below which a CPU vectorizes


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
    check_batches(program)
    one = estimate_memory(program, 1)
    budget = require_memory(one, f"one trial of `{program.name}` (batch {program.train.batch})", max_memory,
                            str(device))
    _check_disk(program, pending, folder)
    fitting = one.fitting(budget)
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
    needed = estimate_disk(program, pending, program.train.trials)
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
