"""What a run will cost before it runs: arithmetic per sample and memory.

Used by the resource guard (refuse a run that cannot fit, before allocating),
by the chunking of vectorized trials, and by the benchmarks (GFLOP/s).
The estimates are deliberately simple and a little pessimistic.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from minispec.errors import MinispecError
from minispec.ir.model import Program
from minispec.ir.ops import OPS

FLOAT_BYTES = 4
# Optimizer state per parameter, in multiples of the parameter count.
OPTIMIZER_STATE = {"sgd": 1, "adam": 2, "adadelta": 2}


def forward_flops(program: Program) -> int:
    """Floating-point operations of one forward pass for one sample."""
    shapes = {node.id: node.shape for node in program.nodes}
    return sum(OPS[node.op].cost(node.attrs, [shapes[i] for i in node.inputs], node.shape) for node in program.nodes)


def train_flops(program: Program, samples: int) -> int:
    """Operations to train on `samples` samples (forward + backward, about 3x forward)."""
    return 3 * forward_flops(program) * samples


# Bytes a training process uses beyond its tensors: the torch backend's first
# model imports torch._dynamo (about 170 MB), and the allocator keeps freed
# blocks. A run of the disk net on 10^6 samples peaked 355-550 MB above the
# process's memory before it (the estimate without this is 190 MB); the
# hand-written backend takes about 25 MB on a tiny run.
# tests/experiment/test_estimates.py holds the estimate to measured peaks.
WORKING_MEMORY = 512 * 1024**2
TARGET_BYTES = 8  # raw targets are int64 class indices
ORDER_BYTES = 16  # a shuffled order per training sample (randperm, then stacked over replicas)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a command needs: a fixed working memory, and per replica its
    parameters, activations and data (so `fitting` can chunk replicas)."""

    working: int
    parameters: int
    activations: int
    data: int
    replicas: int = 1

    @property
    def total(self) -> int:
        return self.working + self.parameters + self.activations + self.data

    def fitting(self, budget: int) -> int:
        """How many replicas fit `budget` together (at least 1)."""
        per_replica = max(1, (self.total - self.working) // max(1, self.replicas))
        return max(1, (budget - self.working) // per_replica)

    def describe(self) -> str:
        return (f"parameters and optimizer state {format_bytes(self.parameters)}, activations "
                f"{format_bytes(self.activations)}, data {format_bytes(self.data)}, working memory "
                f"{format_bytes(self.working)}")


def activation_floats(program: Program) -> int:
    """Floats kept per sample between forward and backward (every node's output)."""
    return sum(math.prod(node.shape) for node in program.nodes
               if not (OPS[node.op].has("data") or OPS[node.op].has("view")))


# Activations of one evaluation call, over all replicas (floats): 64 MB on a CPU,
# where a call on much larger tensors is slower than several calls that fit; a GPU
# wants few large calls.
EVAL_FLOATS = {"cpu": 16_000_000, "cuda": 1_000_000_000}
EVAL_SAMPLES = 1000  # at most, per replica and call
# On a CPU, calls of 500 samples evaluate the disk net over 50 replicas faster per
# sample than calls of 1000 (2.5 against 4.1 ms per 1000 samples, torch backend;
# docs/performance.md): their activations stay in the caches.
EVAL_CALL_SAMPLES = {"cpu": 500, "cuda": EVAL_SAMPLES}


def eval_chunk(program: Program, replicas: int, device_type: str = "cpu") -> int:
    """Samples per replica in one evaluation (predict) call: EVAL_CALL_SAMPLES of the
    device, or fewer when the activations of `replicas` replicas would pass EVAL_FLOATS."""
    budget = EVAL_FLOATS.get(device_type, EVAL_FLOATS["cpu"])
    most = EVAL_CALL_SAMPLES.get(device_type, EVAL_SAMPLES)
    return max(1, min(most, budget // (replicas * max(1, activation_floats(program)))))


def estimate_memory(program: Program, replicas: int, batch: int | None = None, *, training: bool = True,
                    data: bool = True, float_bytes: int = FLOAT_BYTES, models: int = 1) -> MemoryEstimate:
    """Bytes needed to train (`training`) or evaluate `replicas` trials at once,
    a little pessimistic: the initial state and the model's parameters with
    their gradients and optimizer state; activations of a training batch kept
    for the backward pass (and of the largest evaluation call); and each
    replica's data set as drawn, stacked and normalized (inputs up to three
    times), its raw and encoded targets and, when training, its shuffled
    orders. `data=False`: a random batch only (check --smoke, verify);
    `models`: that many models side by side (verify builds two)."""
    batch = batch or program.train.batch
    copies = (2 + 1 + OPTIMIZER_STATE[program.train.optimizer.kind]) if training else 2
    parameters = copies * program.total_params * replicas * float_bytes * models
    per_sample = activation_floats(program)
    kept = (2 * batch if training else 0) + (EVAL_SAMPLES if data else 0)
    activations = max(kept, batch) * per_sample * replicas * float_bytes * models
    drawn = 0
    if data:
        input_bytes = 3 * FLOAT_BYTES * sum(math.prod(shape) for shape in program.data.inputs.values())
        target_bytes = 2 * TARGET_BYTES * sum(math.prod(shape) or 1 for shape in program.data.targets.values())
        encoded_bytes = sum(0 if loss.encoding == "index" else
                            FLOAT_BYTES * (loss.classes if loss.encoding == "onehot" else 1) for loss in program.losses)
        sizes = {side: int(program.data.options.get(side) or 2500) for side in ("train", "test")}
        per = input_bytes + target_bytes + encoded_bytes
        drawn = (sizes["train"] * (per + (ORDER_BYTES if training else 0)) + sizes["test"] * per) * replicas
    return MemoryEstimate(WORKING_MEMORY, parameters, activations, drawn, replicas)


def require_memory(estimate: MemoryEstimate, what: str, budget: int | None = None, device: str = "cpu") -> int:
    """The one resource guard, in front of every command that builds a model
    or draws data: refuse, before anything is allocated, what would not fit
    `budget` (default: what the device has free). Returns the budget."""
    budget = budget if budget is not None else available_memory(device)
    if estimate.total > budget:
        raise MinispecError(
            f"{what} needs about {format_bytes(estimate.total)} ({estimate.describe()}), "
            f"more than the {format_bytes(budget)} available",
            hint="use a smaller batch, fewer or narrower layers, less data, or raise --max-memory",
        )
    return budget


PLOT_BYTES = 256 * 1024  # curves.png, at most (about 40 KiB for one run of two heads)
SMALL_FILES = 4096  # spec_hash.txt, run.json, and the summary without its heads


def estimate_disk(program: Program, pending: int, planned: int | None = None) -> int:
    """Bytes a run writes into its folder, a little pessimistic: program.json,
    the weights and record of each of `pending` trials, the summary, curves.csv
    over the `planned` trials and curves.png, plus one temporary copy of the
    largest file (every file is written beside its final name, then moved)."""
    planned = planned or pending
    points = program.train.epochs * program.train.evaluate // program.train.eval_every + 1
    names = [loss.node + "_00" for loss in program.losses]  # a head's name, with room for `node_i`
    point = 256 + sum(3 * (len(name) + 28) for name in names)  # one evaluation point of a trial's JSON
    tensors = sum(len(owner.param_shapes) + len(owner.buffer_shapes) for owner in program.weight_owners)
    buffers = sum(math.prod(shape) for owner in program.weight_owners for shape in owner.buffer_shapes.values())
    weights = program.total_params * FLOAT_BYTES + buffers * 8 + 128 * tensors + 1024  # buffers may be int64
    record = 1024 + 64 * len(names) + points * point
    row = 128 + sum(3 * 24 for _ in names)  # one line of curves.csv
    program_json = len(program.model_dump_json(indent=1)) + 1
    summary = SMALL_FILES + 512 * len(names)
    csv = planned * points * row
    largest = max(weights, record, program_json, csv, PLOT_BYTES)
    return program_json + pending * (weights + record) + summary + csv + PLOT_BYTES + largest


def available_memory(device: str = "cpu") -> int:
    """Bytes this process may reasonably use on the device: free GPU memory, or
    the machine's available memory (MemAvailable on Linux)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text: str) -> int:
    """`8GiB`, `512M`, `1.5G`, `1000000` -> bytes (a positive, finite size)."""
    units = {"": 1, "B": 1, "K": 1024, "KB": 1000, "KIB": 1024, "M": 1024**2, "MB": 1000**2, "MIB": 1024**2,
             "G": 1024**3, "GB": 1000**3, "GIB": 1024**3, "T": 1024**4, "TB": 1000**4, "TIB": 1024**4}
    cleaned = text.strip().upper().replace(" ", "")
    number = cleaned.rstrip("KMGTIB")
    unit = cleaned[len(number):]
    try:
        value = float(number) * units[unit]
    except (KeyError, ValueError):
        raise MinispecError(f"cannot read `{text}` as a memory size", hint="for example 8GiB or 512MiB") from None
    if not math.isfinite(value) or value < 1:
        raise MinispecError(f"`{text}` is not a usable memory size: it must be a positive, finite number of bytes",
                            hint="for example 8GiB or 512MiB")
    return int(value)
