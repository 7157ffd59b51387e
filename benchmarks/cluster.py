"""One sweep on Ray with 1 and with 2 worker processes, and what the driver's single writer costs.

    .venv/bin/python benchmarks/cluster.py                  # the figures of docs/cluster.md
    .venv/bin/python benchmarks/cluster.py --trials 4 --epochs 5 --out bench.json   # quicker

The sweep: specs/disk.mdl (the 2-25-25-25-1 Tanh MLP on 1000 generated
points), `--grid lr=0.003,0.01,0.03,0.1`, T trials per point, E epochs: all
points share one shape, so they train as one group of 4 x T replicas, cut
into one chunk per worker. For each worker count W a Ray head is started on
127.0.0.1 with W CPUs (`ray start --head --block --num-cpus W`: W worker
processes of one thread each), the sweep runs through `RayExecutor`, and the
head is stopped. Timed from the first connection to the sweep folder being
complete: connecting, the workers' imports, training, and the driver's writes.
The same sweep in this process (one thread, one chunk) is the reference.

The writer: `RunFolder.save_trial` (weights, trial record, summary) timed
over the trials of a finished run, per trial, for disk and for SAUX (its
conv extractor: 51k parameters) with 100 evaluation records per trial.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# keep the Ray of this benchmark on the loopback (Ray reads this when it is imported)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from minispec.backends import make_model  # noqa: E402
from minispec.experiment.executors import InProcess, RayExecutor  # noqa: E402
from minispec.experiment.sweep import Axis, plan_sweep, run_sweep  # noqa: E402

LRS = "lr=0.003,0.01,0.03,0.1"


factory = partial(make_model, "torch")  # per-replica generators and hyperparameters; picklable by reference


def start_head(cpus: int, temp: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    head = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}",
         f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return head, f"127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or head.poll() is not None:
                raise RuntimeError("the Ray head did not start")
            time.sleep(0.2)


def sweep(out: Path, trials: int, epochs: int, executor) -> tuple[float, list]:
    plan = plan_sweep(ROOT / "specs" / "disk.mdl", [Axis.parse(LRS)], trials=trials, epochs=epochs)
    started = time.perf_counter()
    result = run_sweep(plan, backend_factory=factory, out_dir=out, executor=executor)
    seconds = time.perf_counter() - started
    errors = [[t.final.test_error for t in run.trials] for run in result.runs]
    return seconds, errors


def on_ray(workers: int, out: Path, trials: int, epochs: int) -> dict:
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    head, address = start_head(workers, temp)
    try:
        executor = RayExecutor(address=address)
        try:
            seconds, errors = sweep(out, trials, epochs, executor)
        finally:
            executor.close()
        return {"workers": workers, "seconds": seconds, "errors": errors,
                "per_worker": [vars(w) for w in executor.workers()]}
    finally:
        head.send_signal(signal.SIGTERM)
        head.wait(timeout=60)


def writer_cost(spec: str, trials: int, out: Path) -> dict:
    """Seconds per `save_trial` of a finished trial with 100 evaluation records."""
    from minispec.compiler import compile_file
    from minispec.experiment import run_experiment
    from minispec.experiment.folder import RunFolder

    settings = ["data.train=200", "data.test=200"] if spec == "saux" else []
    program = compile_file(ROOT / "specs" / f"{spec}.mdl", settings)
    run = run_experiment(program, backend_factory=factory, trials=1, epochs=1, out_dir=out / f"{spec}-one",
                         executor=InProcess(threads=1))
    record = run.trials[0]
    record = record.model_copy(update={"records": record.records * 100, "epochs": 100})  # 100 records, as 100 epochs
    from minispec.backends.checkpoint import load_state

    state = load_state(Path(run.folder) / "weights" / "trial_000.safetensors", run.program)
    target = program.model_copy(update={"train": program.train.model_copy(update={"trials": trials})})
    with RunFolder.open(out / f"{spec}-writes", target) as folder:
        from minispec.experiment.records import RunConfig

        folder.start(RunConfig(spec_hash=folder.spec_hash, chunk=1, vectorized=False, threads=1))
        started = time.perf_counter()
        for k in range(trials):
            folder.save_trial(record.model_copy(update={"trial": k, "spec_hash": folder.spec_hash}), state)
        seconds = time.perf_counter() - started
    return {"spec": spec, "params": program.total_params, "trials": trials, "seconds_per_trial": seconds / trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="trials per sweep point")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--writes", type=int, default=50, help="trials written to time the writer")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    figures = {"trials": args.trials, "epochs": args.epochs, "grid": LRS}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        seconds, local_errors = sweep(root / "local", args.trials, args.epochs, InProcess(threads=1))
        figures["in_process"] = {"seconds": seconds}
        print(f"in process (1 thread, one chunk): {seconds:.1f} s", flush=True)
        for workers in (1, 2):
            result = on_ray(workers, root / f"ray{workers}", args.trials, args.epochs)
            figures[f"ray_{workers}"] = {k: v for k, v in result.items() if k != "errors"}
            same = result["errors"] == local_errors if workers == 1 else None
            print(f"Ray, {workers} worker process(es): {result['seconds']:.1f} s"
                  + ("" if same is None else f"  (same errors as in process: {same})"), flush=True)
        ratio = figures["ray_1"]["seconds"] / figures["ray_2"]["seconds"]
        figures["ratio_1_over_2"] = ratio
        print(f"1 worker / 2 workers: {ratio:.2f}x")
        figures["writer"] = [writer_cost(spec, args.writes, root) for spec in ("disk", "saux")]
        for row in figures["writer"]:
            print(f"writer, {row['spec']} ({row['params']:,} parameters, 100 records a trial): "
                  f"{1000 * row['seconds_per_trial']:.1f} ms per trial")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
