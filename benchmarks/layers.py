"""Where a training step of the hand-written backend spends its time, layer by layer.

    .venv/bin/python benchmarks/layers.py                        # saux, 1 trial, 200 steps
    .venv/bin/python benchmarks/layers.py --spec disk --trials 50

Builds the spec's `ScratchModel` for `--trials` replicas, draws the training
batches once (as `benchmarks/trials.py` does for its one-step timings),
and times each layer's forward and backward with a clock around the call,
keyed by the layer's type and its input's shape (a layer applied twice, as a
shared extractor is, adds both calls). Prints microseconds per step, the
step's total and what the layers leave (the graph's own bookkeeping, the
losses and the optimizer). A clock around every call costs about a
microsecond a call; torch.profiler's costs more and distorts small ops.
No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minispec import data as datasets  # noqa: E402
from minispec.allocator import keep_freed_memory  # noqa: E402
from minispec.backends.scratch_graph import ScratchModel  # noqa: E402
from minispec.backends.targets import encode  # noqa: E402
from minispec.backends.weights import initial_state, trial_generator  # noqa: E402
from minispec.compiler import compile_file  # noqa: E402
from minispec.experiment.training import take  # noqa: E402
from minispec.scratch.module import Module  # noqa: E402


def batches(program, trials: int, count: int) -> list[tuple[dict, list]]:
    """`count` training batches of `trials` replicas, each replica its own shuffle of trial 0's data."""
    draw = datasets.load(program.data.name, dict(program.data.options), seed=0)
    def replicated(t: torch.Tensor) -> torch.Tensor:
        return t.unsqueeze(0).expand(trials, *t.shape).contiguous()

    inputs = {name: replicated(t) for name, t in draw.train.inputs.items()}
    raw = {name: replicated(t) for name, t in draw.train.targets.items()}
    encoded = [encode(loss, raw) for loss in program.losses]
    samples, size = len(draw.train), program.train.batch
    generator = torch.Generator().manual_seed(0)
    order = torch.stack([torch.randperm(samples, generator=generator) for _ in range(trials)])
    picked = [order[:, s : s + size] for s in range(0, samples - size + 1, size)][:count]
    return [({name: take(t, index) for name, t in inputs.items()}, [take(t, index) for t in encoded])
            for index in picked]


def per_layer(model: ScratchModel, steps: list, repeat: int) -> tuple[Counter, float]:
    """Seconds per step of each (layer, input shape), and of the whole step."""
    spent: Counter = Counter()

    def clocked(layer, method: str):
        original = getattr(layer, method)

        def call(*args):
            shape = tuple(args[0].shape[1:]) if args and isinstance(args[0], torch.Tensor) else ()
            start = time.perf_counter()
            try:
                return original(*args)
            finally:
                spent[f"{type(layer).__name__} {method} {shape}"] += time.perf_counter() - start

        setattr(layer, method, call)

    for layer in model.layers.values():
        if isinstance(layer, Module):
            clocked(layer, "forward")
            clocked(layer, "backward")
    for inputs, targets in steps[:10]:
        model.train_step(inputs, targets)  # warm up: optimizer state, first allocations
    spent.clear()
    start = time.perf_counter()
    for j in range(repeat):
        inputs, targets = steps[j % len(steps)]
        model.train_step(inputs, targets)
    total = (time.perf_counter() - start) / repeat
    return Counter({k: v / repeat for k, v in spent.items()}), total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="saux", help="a shipped spec name (default saux)")
    parser.add_argument("--trials", type=int, default=1, help="replicas trained at once (default 1)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps (default 200)")
    args = parser.parse_args(argv)
    spec = ROOT / "specs" / f"{args.spec}.mdl"
    if not spec.is_file():
        parser.error(f"no shipped spec {args.spec!r}: the names are those of specs/*.mdl")
    program = compile_file(str(spec), [])
    keep_freed_memory()  # as the training loop does: freed tensors' pages are kept, not faulted in again
    states = [initial_state(program, trial_generator(0, k)) for k in range(args.trials)]
    model = ScratchModel(program, states)
    steps = batches(program, args.trials, 20)
    print(f"{args.spec}, {args.trials} trial(s), batch {program.train.batch}, {torch.get_num_threads()} thread(s)")
    spent, total = per_layer(model, steps, args.steps)
    for label, seconds in spent.most_common():
        print(f"  {label:<48} {seconds * 1e6:9.0f} us")
    layers = sum(spent.values())
    print(f"  {'the step':<48} {total * 1e6:9.0f} us  (layers {layers * 1e6:.0f}, the rest {(total - layers) * 1e6:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
