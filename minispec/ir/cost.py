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


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    activations: int
    data: int

    @property
    def total(self) -> int:
        return self.parameters + self.activations + self.data


def activation_floats(program: Program) -> int:
    """Floats kept per sample between forward and backward (every node's output)."""
    return sum(math.prod(node.shape) for node in program.nodes
               if not (OPS[node.op].has("data") or OPS[node.op].has("view")))


# Activations of one evaluation call, over all replicas (floats): 64 MB on a CPU,
# where a call on much larger tensors is slower than several calls that fit; a GPU
# wants few large calls.
EVAL_FLOATS = {"cpu": 16_000_000, "cuda": 1_000_000_000}
EVAL_SAMPLES = 1000  # at most, per replica and call


def eval_chunk(program: Program, replicas: int, device_type: str = "cpu") -> int:
    """Samples per replica in one evaluation (predict) call: EVAL_SAMPLES, or
    fewer when the activations of `replicas` replicas would pass EVAL_FLOATS."""
    budget = EVAL_FLOATS.get(device_type, EVAL_FLOATS["cpu"])
    return max(1, min(EVAL_SAMPLES, budget // (replicas * max(1, activation_floats(program)))))


def estimate_memory(program: Program, replicas: int, batch: int | None = None) -> MemoryEstimate:
    """Bytes needed to train `replicas` trials at once: parameters with their
    gradients and optimizer state, activations of a training batch (and of an
    evaluation chunk), and the replicas' data sets."""
    batch = batch or program.train.batch
    state = 2 + OPTIMIZER_STATE[program.train.optimizer.kind]
    parameters = state * program.total_params * replicas * FLOAT_BYTES
    per_sample = activation_floats(program)
    activations = (2 * batch + EVAL_SAMPLES) * per_sample * replicas * FLOAT_BYTES  # the largest eval call
    sample_floats = sum(math.prod(shape) for shape in program.data.inputs.values())
    samples = sum(int(program.data.options.get(side) or 2500) for side in ("train", "test"))
    data = samples * sample_floats * replicas * FLOAT_BYTES
    return MemoryEstimate(parameters, activations, data)


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
    """`8GiB`, `512M`, `1.5G`, `1000000` -> bytes."""
    units = {"": 1, "B": 1, "K": 1024, "KB": 1000, "KIB": 1024, "M": 1024**2, "MB": 1000**2, "MIB": 1024**2,
             "G": 1024**3, "GB": 1000**3, "GIB": 1024**3, "T": 1024**4, "TB": 1000**4, "TIB": 1024**4}
    cleaned = text.strip().upper().replace(" ", "")
    number = cleaned.rstrip("KMGTIB")
    unit = cleaned[len(number):]
    try:
        return int(float(number) * units[unit])
    except (KeyError, ValueError):
        raise MinispecError(f"cannot read `{text}` as a memory size", hint="for example 8GiB or 512MiB") from None
