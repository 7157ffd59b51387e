"""One sweep in process, on 1 and on 2 Ray worker processes, and what the driver's single writer costs.

    .venv/bin/python benchmarks/cluster.py --epochs 480 --out bench-cluster.json   # docs/cluster.md's figures
    .venv/bin/python benchmarks/cluster.py --trials 4 --epochs 5         # a quick look

The sweep: specs/disk.mdl (the 2-25-25-25-1 Tanh MLP on 1000 generated
points), `--grid lr=0.003,0.01,0.03,0.1`, T trials per point, E epochs: all
points share one shape, so they are one group of 4 x T replicas, cut into
chunks of `--chunk` replicas (default: half of them, one chunk per worker of
the 2-worker cluster). Every arm trains the same chunks with one CPU thread,
so every arm computes the same numbers bit for bit (the script checks it);
only where the chunks train differs:

- in process: the chunks one after the other (`InProcess(threads=1)`);
- Ray, W workers: a head started on 127.0.0.1 with W CPUs (`ray start --head
  --block --num-cpus W`: at most W tasks of one CPU at once), the sweep run
  through `RayExecutor`, the head stopped.

A Ray arm is timed from the first connection to the sweep folder being
complete: connecting (the head's port is open, but a head just started is
still getting ready: this is reported apart), the memory probe, the
workers' imports, training, the driver's writes. The time the
workers spent in their tasks is reported too; the rest is start-up and the
driver's share. The driver's single writer is timed twice: every
`RunFolder.save_trial` of the 2-worker sweep (weights, record with one
evaluation point per epoch, summary), and `save_trial` alone over many
trials of disk and of SAUX (51k-parameter conv extractor) with 100
evaluation points each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial, wraps
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# keep the Ray of this benchmark on the loopback, without token authentication
# (Ray reads these when it is imported)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from minispec.backends import make_model  # noqa: E402
from minispec.experiment.executors import InProcess, RayExecutor  # noqa: E402
from minispec.experiment.folder import RunFolder  # noqa: E402
from minispec.experiment.sweep import Axis, plan_sweep, run_sweep  # noqa: E402

LRS = "lr=0.003,0.01,0.03,0.1"
POINTS = len(LRS.split(","))

factory = partial(make_model, "torch")  # travels to the workers by reference to minispec


class WriterClock:
    """Wraps `RunFolder.save_trial` to add up the driver's seconds in it."""

    def __init__(self) -> None:
        self.seconds, self.trials = 0.0, 0
        self._original = RunFolder.save_trial

    def __enter__(self) -> "WriterClock":
        original = self._original

        @wraps(original)
        def timed(folder, record, state):
            started = time.perf_counter()
            try:
                return original(folder, record, state)
            finally:
                self.seconds += time.perf_counter() - started
                self.trials += 1

        RunFolder.save_trial = timed
        return self

    def __exit__(self, *exc) -> None:
        RunFolder.save_trial = self._original


def start_head(cpus: int, temp: str) -> tuple[subprocess.Popen, str]:
    import socket

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
                head.kill()
                raise RuntimeError("the Ray head did not start")
            time.sleep(0.2)


def sweep(out: Path, trials: int, epochs: int, chunk: int, executor) -> tuple[float, list]:
    plan = plan_sweep(ROOT / "specs" / "disk.mdl", [Axis.parse(LRS)], trials=trials, epochs=epochs)
    started = time.perf_counter()
    result = run_sweep(plan, backend_factory=factory, out_dir=out, executor=executor, chunk=chunk)
    seconds = time.perf_counter() - started
    errors = [[t.final.test_error for t in run.trials] for run in result.runs]
    return seconds, errors


def on_ray(workers: int, out: Path, trials: int, epochs: int, chunk: int) -> dict:
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    head, address = start_head(workers, temp)
    try:
        executor = RayExecutor(address=address)
        try:
            started = time.perf_counter()
            executor.connect()
            connect = time.perf_counter() - started
            with WriterClock() as writer:
                seconds, errors = sweep(out, trials, epochs, chunk, executor)
            seconds += connect
        finally:
            executor.close()
        per_worker = [vars(w) for w in executor.workers()]
        busiest = max(w["seconds"] for w in per_worker)
        return {"workers": workers, "seconds": seconds, "connect_seconds": connect, "errors": errors,
                "per_worker": per_worker,
                "busiest_worker_seconds": busiest, "not_in_tasks_seconds": seconds - busiest,
                "writer_seconds_per_trial": writer.seconds / writer.trials, "trials_written": writer.trials}
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def writer_cost(spec: str, trials: int, out: Path) -> dict:
    """Seconds per `save_trial` of a finished trial with 100 evaluation records."""
    from minispec.backends.checkpoint import load_state
    from minispec.compiler import compile_file
    from minispec.experiment import run_experiment
    from minispec.experiment.records import RunConfig

    settings = ["data.train=200", "data.test=200"] if spec == "saux" else []
    program = compile_file(ROOT / "specs" / f"{spec}.mdl", settings)
    run = run_experiment(program, backend_factory=factory, trials=1, epochs=1, out_dir=out / f"{spec}-one",
                         executor=InProcess(threads=1))
    record = run.trials[0]
    record = record.model_copy(update={"records": record.records * 100, "epochs": 100})  # 100 records, as 100 epochs
    state = load_state(Path(run.folder) / "weights" / "trial_000.safetensors", run.program)
    target = program.model_copy(update={"train": program.train.model_copy(update={"trials": trials})})
    with RunFolder.open(out / f"{spec}-writes", target) as folder:
        folder.start(RunConfig(spec_hash=folder.spec_hash, chunk=1, vectorized=False, threads=1))
        started = time.perf_counter()
        for k in range(trials):
            folder.save_trial(record.model_copy(update={"trial": k, "spec_hash": folder.spec_hash}), state)
        seconds = time.perf_counter() - started
    return {"spec": spec, "params": program.total_params, "trials": trials, "seconds_per_trial": seconds / trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="trials per sweep point")
    parser.add_argument("--epochs", type=int, default=1200, help="480: the figures of docs/cluster.md")
    parser.add_argument("--chunk", type=int, help="replicas per chunk (default: half of the 4 x T replicas)")
    parser.add_argument("--writes", type=int, default=50, help="trials written to time the writer alone")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    chunk = args.chunk or max(1, POINTS * args.trials // 2)
    torch.set_num_threads(1)
    figures = {"trials": args.trials, "epochs": args.epochs, "grid": LRS, "replicas": POINTS * args.trials,
               "chunk": chunk, "load_before": os.getloadavg()}
    print(f"sweep: {POINTS} x {args.trials} replicas x {args.epochs} epochs, chunks of {chunk}; "
          f"load average {figures['load_before'][0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        seconds, local_errors = sweep(root / "local", args.trials, args.epochs, chunk, InProcess(threads=1))
        figures["in_process"] = {"seconds": seconds}
        print(f"in process (1 thread, chunks one after the other): {seconds:.1f} s", flush=True)
        for workers in (1, 2):
            result = on_ray(workers, root / f"ray{workers}", args.trials, args.epochs, chunk)
            result["same_errors_as_in_process"] = result.pop("errors") == local_errors
            figures[f"ray_{workers}"] = result
            print(f"Ray, {workers} worker process(es): {result['seconds']:.1f} s (connecting "
                  f"{result['connect_seconds']:.1f} s; busiest worker in its tasks "
                  f"{result['busiest_worker_seconds']:.1f} s; same errors as in process: "
                  f"{result['same_errors_as_in_process']}; driver's writer "
                  f"{1000 * result['writer_seconds_per_trial']:.1f} ms per trial)", flush=True)
        ray_1, ray_2 = figures["ray_1"]["seconds"], figures["ray_2"]["seconds"]
        figures["ratio_1_over_2_workers"] = ray_1 / ray_2
        figures["ratio_in_process_over_2_workers"] = figures["in_process"]["seconds"] / ray_2
        print(f"1 worker / 2 workers: {ray_1 / ray_2:.2f}x; in process / 2 workers: "
              f"{figures['ratio_in_process_over_2_workers']:.2f}x", flush=True)
        figures["writer"] = [writer_cost(spec, args.writes, root) for spec in ("disk", "saux")]
        for row in figures["writer"]:
            print(f"writer alone, {row['spec']} ({row['params']:,} parameters, 100 records a trial): "
                  f"{1000 * row['seconds_per_trial']:.1f} ms per trial")
    figures["load_after"] = os.getloadavg()
    print(f"load average after: {figures['load_after'][0]:.2f}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
