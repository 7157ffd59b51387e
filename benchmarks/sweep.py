"""A learning-rate sweep three ways, on one machine, in one run.

    .venv/bin/python benchmarks/sweep.py                     # 8 learning rates x 10 trials x 200 epochs
    .venv/bin/python benchmarks/sweep.py --quick             # a short version (seconds)
    .venv/bin/python benchmarks/sweep.py --out sweep-bench.json

The spec is seed 001's disk net (specs/disk_onehot.mdl with --set optimizer=sgd:
2-25-25-25-2 Tanh, one-hot targets, MSE, SGD, batch 100, 1000 generated points), swept over
`--lrs` with `--trials` trials per learning rate:

    sweep      `minispec sweep SPEC --grid lr=...`: every point and trial as the
               replicas of ONE model (one process)
    runs       one `minispec run SPEC --set lr=X` per learning rate, one after the
               other (each vectorizes its own trials, as `run` chooses)
    plain      a hand-written PyTorch loop over the points x trials trainings, one
               after the other, in this process (nn.Sequential, torch.optim.SGD,
               shuffled mini-batches, the test error after every epoch as
               minispec records it)

Each path is timed end to end (for the commands: the process, data, training,
evaluation after every epoch and the folders written). The sweep's mean test
error per learning rate is printed beside the runs' (they train the same
trials: equal up to float rounding). No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minispec import data as datasets  # noqa: E402
from minispec.compiler import compile_file  # noqa: E402
from minispec.experiment.seeding import data_seed  # noqa: E402

SPEC = "specs/disk_onehot.mdl"
SGD = "optimizer=sgd"  # with it: seed 001's 2-25-25-25-2 Tanh net, one-hot targets, MSE, plain SGD
LRS = "0.005,0.01,0.02,0.05,0.1,0.2,0.5,1"


def minispec(*args: str) -> float:
    """Run `python -m minispec ARGS` in a fresh process; its seconds."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "minispec", *args], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"minispec {' '.join(args)} failed:\n{result.stderr}")
    return seconds


def plain(lrs: list[float], trials: int, epochs: int) -> dict[float, list[float]]:
    """The trainings one by one, as a student writes them; final test error of each."""
    program = compile_file(ROOT / SPEC, [SGD])
    finals: dict[float, list[float]] = {}
    for lr in lrs:
        for k in range(trials):
            draw = datasets.load(program.data.name, dict(program.data.options), seed=data_seed(program.train.seed, k))
            x, y = draw.train.inputs["x"], draw.train.targets["target"]
            x_test, y_test = draw.test.inputs["x"], draw.test.targets["target"]
            onehot = F.one_hot(y, 2).float()
            torch.manual_seed(k)
            model = nn.Sequential(nn.Linear(2, 25), nn.Tanh(), nn.Linear(25, 25), nn.Tanh(), nn.Linear(25, 25),
                                  nn.Tanh(), nn.Linear(25, 2))
            optimizer = torch.optim.SGD(model.parameters(), lr=lr)
            for _ in range(epochs):
                for index in torch.randperm(len(x)).split(program.train.batch):
                    loss = F.mse_loss(model(x[index]), onehot[index])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                with torch.no_grad():
                    error = (model(x_test).argmax(1) != y_test).float().mean().item()
            finals.setdefault(lr, []).append(error)
    return finals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lrs", default=LRS, help=f"learning rates (default {LRS})")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2 learning rates x 2 trials x 2 epochs")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.lrs, args.trials, args.epochs = "0.1,0.5", 2, 2
    lrs = args.lrs.split(",")
    common = ["--trials", str(args.trials), "--epochs", str(args.epochs), "--set", SGD]

    with tempfile.TemporaryDirectory() as scratch:
        sweep_seconds = minispec("sweep", SPEC, "--grid", "lr=" + ",".join(lrs), *common, "--out", f"{scratch}/sweep")
        runs_seconds = sum(minispec("run", SPEC, "--set", f"lr={lr}", *common, "--out", f"{scratch}/run_{i}")
                           for i, lr in enumerate(lrs))
        summary = json.loads(Path(f"{scratch}/sweep/sweep.json").read_text())
        sweep_means = {p["values"]["lr"]: p["summary"]["test_error"]["mean"] for p in summary["points"]}
        run_means = {lr: json.loads(Path(f"{scratch}/run_{i}/summary.json").read_text())["test_error"]["mean"]
                     for i, lr in enumerate(lrs)}
    start = time.perf_counter()
    plain_finals = plain([float(lr) for lr in lrs], args.trials, args.epochs)
    plain_seconds = time.perf_counter() - start

    trainings = len(lrs) * args.trials
    print(f"{len(lrs)} learning rates x {args.trials} trials x {args.epochs} epochs of {SPEC} "
          f"({trainings} trainings), {torch.get_num_threads()} torch thread(s), {platform.processor() or platform.machine()}")
    print(f"{'path':<8} {'seconds':>8} {'x sweep':>9}")
    for name, seconds in (("sweep", sweep_seconds), ("runs", runs_seconds), ("plain", plain_seconds)):
        print(f"{name:<8} {seconds:>8.1f} {seconds / sweep_seconds:>9.1f}x")
    print(f"{'lr':<6} {'sweep %':>8} {'runs %':>8} {'plain %':>8}")
    for lr in lrs:
        plain_mean = sum(plain_finals[float(lr)]) / args.trials
        cells = [sweep_means[lr], run_means[lr], plain_mean]
        print(f"{lr:<6} " + " ".join("diverged".rjust(8) if c is None or c != c else f"{100 * c:>8.2f}" for c in cells))
    if args.out:
        args.out.write_text(json.dumps({
            "spec": SPEC, "lrs": lrs, "trials": args.trials, "epochs": args.epochs,
            "threads": torch.get_num_threads(), "machine": platform.machine(),
            "seconds": {"sweep": sweep_seconds, "runs": runs_seconds, "plain": plain_seconds},
            "speedup": {"vs_runs": runs_seconds / sweep_seconds, "vs_plain": plain_seconds / sweep_seconds},
            "mean_test_error": {"sweep": sweep_means, "runs": run_means,
                                "plain": {lr: sum(plain_finals[float(lr)]) / args.trials for lr in lrs}},
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
