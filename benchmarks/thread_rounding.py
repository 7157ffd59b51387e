"""Does a run's result depend on the CPU thread count? Every record, 1 thread against N.

    .venv/bin/python benchmarks/thread_rounding.py specs/disk.mdl --trials 50 --epochs 2
    .venv/bin/python benchmarks/thread_rounding.py specs/saux.mdl --trials 2 --epochs 1 --threads 2

Trains the same run (vectorized, both backends) with each thread count and
compares every number of every trial's records (losses, errors), printing
the first differences. Not a test: the answer depends on the machine's
kernels (see docs/performance.md, "Beside a busy process").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minispec.backends import make_model  # noqa: E402
from minispec.compiler import compile_file  # noqa: E402
from minispec.experiment import run_experiment  # noqa: E402


def records(spec: str, backend: str, trials: int, epochs: int, threads: int) -> list[dict]:
    """Every evaluation record of every trial, trained with `threads` threads (OMP_NUM_THREADS-style:
    the runner's policy keeps a count the user set)."""
    torch.set_num_threads(threads)

    def factory(program, states, device, generators=None):
        return make_model(backend, program, states, device, generators=generators)

    with tempfile.TemporaryDirectory() as tmp:
        run = run_experiment(compile_file(spec), backend_factory=factory, trials=trials, epochs=epochs,
                             out_dir=Path(tmp) / "run", vectorize=True)
        return [r.model_dump(exclude={"wall_time"}) for t in run.trials for r in t.records]


def differences(a, b, path=""):
    if isinstance(a, dict):
        for key in a:
            yield from differences(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield path, a, b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="N (default: torch's count)")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the runner keeps a count the user set
    for backend in ("torch", "scratch"):
        one = records(args.spec, backend, args.trials, args.epochs, 1)
        many = records(args.spec, backend, args.trials, args.epochs, args.threads)
        found = list(differences(one, many))
        print(f"{backend}: {len(found)} of the numbers differ between 1 and {args.threads} threads")
        for path, x, y in found[:5]:
            print(f"  {path}: {x!r} vs {y!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
