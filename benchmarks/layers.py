"""Where a training step of the hand-written backend spends its time, layer by layer.

    .venv/bin/python benchmarks/layers.py                        # saux, 1 trial, 200 steps
    .venv/bin/python benchmarks/layers.py --spec disk --trials 50
    .venv/bin/python benchmarks/layers.py --against /tmp/old     # this step against another checkout's layers

Builds the spec's `ScratchModel` for `--trials` replicas, draws the training
batches once (as `benchmarks/trials.py` does for its one-step timings),
and times each layer's forward and backward with a clock around the call,
keyed by the layer's type and its input's shape (a layer applied twice, as a
shared extractor is, adds both calls). Prints microseconds per step, the
step's total and what the layers leave (the graph's own bookkeeping, the
losses and the optimizer). A clock around every call costs about a
microsecond a call; torch.profiler's costs more and distorts small ops.
No figure here is asserted anywhere.

`--against CHECKOUT` compares whole steps instead: a second model, the same
weights, whose layers are switched to the classes of the same name defined
in CHECKOUT's `minispec/scratch/*.py` (git worktree add /tmp/old <rev>).
The two models take turns, a block of a few steps each, and the median of
the blocks' ratios is printed: on a machine whose speed drifts by tens of
percent within minutes, this resolves a difference of a few percent that
alternated runs of whole processes do not. Only changes inside layer
classes are compared: CHECKOUT's modules import this checkout's package,
and the graph, losses and optimizer are this checkout's.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
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


BLOCK = 4  # steps each model takes in its turn with --against


def warm_up(model: ScratchModel, steps: list) -> None:
    """Ten steps before any clock: the optimizer's state and the first allocations."""
    for inputs, targets in steps[:10]:
        model.train_step(inputs, targets)


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
    warm_up(model, steps)
    spent.clear()
    start = time.perf_counter()
    for j in range(repeat):
        inputs, targets = steps[j % len(steps)]
        model.train_step(inputs, targets)
    total = (time.perf_counter() - start) / repeat
    return Counter({k: v / repeat for k, v in spent.items()}), total


def layer_classes(checkout: Path) -> dict[str, type]:
    """The Module subclasses defined in CHECKOUT's minispec/scratch/*.py, by name
    (module.py, which defines the base class itself, and __init__.py aside)."""
    classes = {}
    for path in sorted((checkout / "minispec" / "scratch").glob("*.py")):
        if path.name in ("__init__.py", "module.py"):
            continue
        spec = importlib.util.spec_from_file_location(f"against_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        classes.update({name: value for name, value in vars(module).items()
                        if isinstance(value, type) and issubclass(value, Module) and value.__module__ == module.__name__})
    return classes


def switched(model: ScratchModel, classes: dict[str, type]) -> list[str]:
    """Switch each layer of `model` to the class of its name in `classes`; the names switched."""
    names = []
    for layer in model.layers.values():
        other = classes.get(type(layer).__name__)
        if other is not None and other is not type(layer):
            layer.__class__ = other
            names.append(other.__name__)
    return sorted(set(names))


def interleaved(models: list[ScratchModel], steps: list, rounds: int, block: int) -> list[list[float]]:
    """Seconds per step of each model in each round; the models take turns, in an order that alternates."""
    for model in models:
        warm_up(model, steps)
    seconds: list[list[float]] = [[] for _ in models]
    for r in range(rounds):
        order = range(len(models)) if r % 2 == 0 else reversed(range(len(models)))
        for i in order:
            start = time.perf_counter()
            for j in range(block):
                inputs, targets = steps[(r * block + j) % len(steps)]
                models[i].train_step(inputs, targets)
            seconds[i].append((time.perf_counter() - start) / block)
    return seconds


def against(program, states, steps, checkout: Path, rounds: int) -> None:
    here = ScratchModel(program, states)
    there = ScratchModel(program, states)
    names = switched(there, layer_classes(checkout))
    differ = [path.name for path in sorted((checkout / "minispec" / "scratch").glob("*.py"))
              if not (ROOT / "minispec" / "scratch" / path.name).is_file()
              or path.read_bytes() != (ROOT / "minispec" / "scratch" / path.name).read_bytes()]
    print(f"  against {checkout}: its {', '.join(names) or 'no class'} in place of this checkout's; "
          f"files that differ: {', '.join(differ) or 'none'}")
    try:
        ours, theirs = interleaved([here, there], steps, rounds, BLOCK)
    except (AttributeError, TypeError) as error:
        raise SystemExit(f"layers.py: the classes of {checkout} do not fit this checkout's layers: {error}") from error
    ratios = [b / a for a, b in zip(ours, theirs)]
    quartiles = statistics.quantiles(ratios, n=4)
    print(f"  {'this checkout':<48} {statistics.median(ours) * 1e6:9.0f} us a step")
    print(f"  {str(checkout):<48} {statistics.median(theirs) * 1e6:9.0f} us a step")
    print(f"  {checkout} / this checkout: {statistics.median(ratios):.3f}, median of {rounds} blocks of {BLOCK} steps "
          f"(half of them between {quartiles[0]:.3f} and {quartiles[2]:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="saux", help="a shipped spec name (default saux)")
    parser.add_argument("--trials", type=int, default=1, help="replicas trained at once (default 1)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps (default 200)")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="time whole steps against the layer classes of another checkout, taking turns")
    parser.add_argument("--rounds", type=int, default=200, help="turns of each model with --against (default 200)")
    args = parser.parse_args(argv)
    if args.against is not None and not (args.against / "minispec" / "scratch").is_dir():
        parser.error(f"--against {args.against}: no minispec/scratch/ there (give a checkout's root)")
    spec = ROOT / "specs" / f"{args.spec}.mdl"
    if not spec.is_file():
        parser.error(f"no shipped spec {args.spec!r}: the names are those of specs/*.mdl")
    program = compile_file(str(spec), [])
    keep_freed_memory()  # as the training loop does: freed tensors' pages are kept, not faulted in again
    states = [initial_state(program, trial_generator(0, k)) for k in range(args.trials)]
    steps = batches(program, args.trials, 20)
    print(f"{args.spec}, {args.trials} trial(s), batch {program.train.batch}, {torch.get_num_threads()} thread(s)")
    if args.against is not None:
        against(program, states, steps, args.against.resolve(), args.rounds)
        return 0
    spent, total = per_layer(ScratchModel(program, states), steps, args.steps)
    for label, seconds in spent.most_common():
        print(f"  {label:<48} {seconds * 1e6:9.0f} us")
    layers = sum(spent.values())
    print(f"  {'the step':<48} {total * 1e6:9.0f} us  (layers {layers * 1e6:.0f}, the rest {(total - layers) * 1e6:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
