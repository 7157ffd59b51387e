"""Where a vectorized epoch's time goes: training steps against evaluation, and the top kernels.

    .venv/bin/python benchmarks/profile_epoch.py                       # disk, 50 trials, torch and scratch
    .venv/bin/python benchmarks/profile_epoch.py --spec saux --trials 8 --epochs 1

Trains `--trials` trials of the spec as one model (the runner's own loop,
`minispec.experiment.training.train_chunk`) for `--epochs` epochs after one
warm-up epoch, and reports (1) the share of the wall time spent in
`train_step` and in `evaluate`, (2) the top-level ATen ops (kernels
dispatched from Python) per step, and (3) torch.profiler's top ops by self
time with their input shapes, over one more epoch. Thread count: torch's (set OMP_NUM_THREADS to change it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minispec.backends import make_model  # noqa: E402
from minispec.compiler import compile_file  # noqa: E402
from minispec.experiment import training  # noqa: E402
from minispec.experiment.training import Chunk, train_chunk  # noqa: E402


def profile_backend(spec: str, backend: str, trials: int, epochs: int, top: int) -> None:
    program = compile_file(spec, [f"epochs={epochs}"])
    spent = {"train_step": 0.0, "evaluate": 0.0}
    steps = [0]

    def factory(program, states, device, generators=None):
        model = make_model(backend, program, states, device, generators=generators)
        step = model.train_step

        def timed_step(inputs, targets):
            start = time.perf_counter()
            out = step(inputs, targets)
            spent["train_step"] += time.perf_counter() - start
            steps[0] += 1
            return out

        model.train_step = timed_step
        return model

    evaluate = training.evaluate

    def timed_evaluate(*args, **kwargs):
        start = time.perf_counter()
        out = evaluate(*args, **kwargs)
        spent["evaluate"] += time.perf_counter() - start
        return out

    training.evaluate = timed_evaluate
    try:
        chunk = Chunk(program, tuple(range(trials)), "profile")
        warm = Chunk(compile_file(spec, ["epochs=1"]), tuple(range(trials)), "profile")
        train_chunk(warm, factory)
        spent.update(train_step=0.0, evaluate=0.0)
        steps[0] = 0
        start = time.perf_counter()
        train_chunk(chunk, factory)
        wall = time.perf_counter() - start
        took, stepped = dict(spent), steps[0]  # the profiled epoch below is not counted
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            train_chunk(Chunk(compile_file(spec, ["epochs=1"]), tuple(range(trials)), "profile"), factory)
    finally:
        training.evaluate = evaluate
    per_epoch = stepped / epochs
    print(f"\n== {backend}: {Path(spec).stem}, {trials} trials x {epochs} epochs, {torch.get_num_threads()} thread(s): "
          f"{wall:.2f} s")
    print(f"train_step {took['train_step']:.2f} s ({100 * took['train_step'] / wall:.0f}%), "
          f"{per_epoch:.0f} steps an epoch, {1e3 * took['train_step'] / stepped:.2f} ms a step; "
          f"evaluate {took['evaluate']:.2f} s ({100 * took['evaluate'] / wall:.0f}%); "
          f"the rest (data, shuffling, records) {wall - took['train_step'] - took['evaluate']:.2f} s")
    top_level = [e for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")]
    print(f"{len(top_level) / per_epoch:.0f} top-level ATen ops per training step (the epoch's evaluation included)")
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=top,
                                                              max_name_column_width=28, max_shapes_column_width=60))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="disk", help="a shipped spec name (default disk)")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--backends", default="torch,scratch")
    parser.add_argument("--top", type=int, default=12, help="ops to list (default 12)")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        profile_backend(str(ROOT / "specs" / f"{args.spec}.mdl"), backend.strip(), args.trials, args.epochs, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
