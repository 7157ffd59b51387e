"""Training beside a busy process: minispec and a plain PyTorch loop, quiet and loaded.

    .venv/bin/python benchmarks/contention.py                 # disk, 10 trials x 20 epochs (a few minutes)
    .venv/bin/python benchmarks/contention.py --quick         # seconds
    .venv/bin/python benchmarks/contention.py --spec saux --trials 4 --epochs 1 --out contention.json

Each path runs as its own process, as a user starts it, timed end to end
(start-up, data, training, evaluation, run folder), once on a quiet machine,
once while `--load` busy processes (a Python busy loop each, pinned to
the last usable cores) run beside it from before its start, and, with
`--load-after S`, once more with the load started S seconds after the
process (it chose its threads on a quiet machine); the load is stopped after
each measurement. Paths:

    plain               the plain loop of benchmarks/trials.py, with PyTorch's defaults
                        (one thread per core, OpenMP's default wait policy)
    minispec torch      `python -m minispec.cli run SPEC --backend torch ...`: the
    minispec scratch    thread policy of minispec.threads (a bounded idle spin,
                        threads chosen from the work and the free cores)
    minispec torch      the same command with PyTorch's defaults forced
      (no policy)       (OMP_NUM_THREADS = cores, OMP_WAIT_POLICY=ACTIVE)
    minispec torch      the same command with idle threads that sleep at once
      (passive)         (OMP_WAIT_POLICY=PASSIVE, the policy before this one)

Reported: seconds quiet, seconds loaded (and loaded mid-run), and loaded / quiet. The issue's
target: minispec loaded <= 2x its quiet time where the plain loop is > 10x.
A path still running after `--timeout` seconds is stopped and reported as
at least that. No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "while True: pass"


def usable_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def start_load(count: int) -> list[subprocess.Popen]:
    """`count` busy processes, each pinned to one of the last usable cores where pinning exists."""
    cores = usable_cores()
    procs = []
    for i in range(count):
        proc = subprocess.Popen([sys.executable, "-c", BUSY])
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(proc.pid, {cores[-1 - i % len(cores)]})
        procs.append(proc)
    time.sleep(0.5)  # let them reach the scheduler's steady state
    return procs


def stop_load(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def commands(args: argparse.Namespace, out: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """path -> (argv, environment changes)."""
    py = sys.executable
    common = [args.spec_path, "--trials", str(args.trials), "--epochs", str(args.epochs)]
    cores = str(len(usable_cores()))
    plain_env = {"OMP_WAIT_POLICY": "", "OMP_NUM_THREADS": "", "MKL_NUM_THREADS": ""}
    return {
        "plain": ([py, __file__, "--child-plain", "--spec", args.spec, "--trials", str(args.trials), "--epochs",
                   str(args.epochs)], plain_env),
        "minispec torch": ([py, "-m", "minispec.cli", "run", *common, "--backend", "torch", "--out",
                            str(out / "torch")], plain_env),
        "minispec scratch": ([py, "-m", "minispec.cli", "run", *common, "--backend", "scratch", "--out",
                              str(out / "scratch")], plain_env),
        "minispec torch (no policy)": ([py, "-m", "minispec.cli", "run", *common, "--backend", "torch", "--out",
                                       str(out / "torch-defaults")],
                                      {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": cores, "MKL_NUM_THREADS": ""}),
        "minispec torch (passive)": ([py, "-m", "minispec.cli", "run", *common, "--backend", "torch", "--out",
                                     str(out / "torch-passive")], {**plain_env, "OMP_WAIT_POLICY": "PASSIVE"}),
    }


def timed_run(argv: list[str], changes: dict[str, str], timeout: float, load: int = 0,
              load_after: float | None = None) -> tuple[float, bool]:
    """Seconds end to end, and whether it finished within `timeout`; `load` busy
    processes beside it, started before it, or `load_after` seconds after its start."""
    env = {k: v for k, v in os.environ.items() if k not in changes}
    env.update({k: v for k, v in changes.items() if v})
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    busy = start_load(load) if load and load_after is None else []
    start = time.perf_counter()
    try:
        with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) as child:
            if load and load_after is not None:
                try:
                    child.wait(load_after)
                except subprocess.TimeoutExpired:
                    busy = start_load(load)
            try:
                _, stderr = child.communicate(timeout=max(0.0, timeout - (time.perf_counter() - start)))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                return timeout, False
    finally:
        stop_load(busy)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{stderr[-2000:]}")
    return time.perf_counter() - start, True


def child_plain(spec: str, trials: int, epochs: int) -> None:
    """The plain loop of benchmarks/trials.py, in this process, with PyTorch's defaults."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch
    from trials import CASES, plain_trials

    from minispec.compiler import compile_file

    case = CASES[spec]
    plain_trials(case, compile_file(str(ROOT / case.spec)), trials, epochs, torch.device("cpu"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="disk", choices=("disk", "saux"), help="which spec (default disk)")
    parser.add_argument("--trials", type=int, help="trials (default 10; --quick 2)")
    parser.add_argument("--epochs", type=int, help="epochs (default 20; --quick 2)")
    parser.add_argument("--load", type=int, default=1, help="busy processes beside each loaded run (default 1)")
    parser.add_argument("--load-after", type=float,
                        help="also time each path with the load started this many seconds after it")
    parser.add_argument("--timeout", type=float, default=240, help="seconds before a run is stopped (default 240)")
    parser.add_argument("--paths", help="comma-separated paths to time (default all)")
    parser.add_argument("--quick", action="store_true", help="a short version")
    parser.add_argument("--out", type=Path, help="write the figures as JSON to this file")
    parser.add_argument("--child-plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.trials = args.trials or (2 if args.quick else 10)
    args.epochs = args.epochs or (2 if args.quick else 20)
    if args.child_plain:
        child_plain(args.spec, args.trials, args.epochs)
        return 0
    args.spec_path = f"specs/{args.spec}.mdl"

    rows = []
    with tempfile.TemporaryDirectory(prefix="minispec-contention-") as tmp:
        table = commands(args, Path(tmp))
        wanted = [p.strip() for p in args.paths.split(",")] if args.paths else list(table)
        for name in wanted:
            if name not in table:
                parser.error(f"unknown path {name!r}: choose among {', '.join(table)}")
        for name in wanted:
            argv_, changes = table[name]
            figures = {}
            conditions = {"quiet": (0, None), "loaded": (args.load, None)}
            if args.load_after is not None:
                conditions["loaded mid-run"] = (args.load, args.load_after)
            for condition, (load, after) in conditions.items():
                for sub in Path(tmp).glob("*"):  # each run writes a fresh folder
                    subprocess.run(["rm", "-rf", str(sub)], check=True)
                seconds, finished = timed_run(argv_, changes, args.timeout, load, after)
                figures[condition] = {"seconds": seconds, "finished": finished,
                                      "load_average": [round(x, 2) for x in os.getloadavg()]}
                print(f"  {name}, {condition}: {'' if finished else '>'}{seconds:.2f} s", file=sys.stderr, flush=True)
            ratio = figures["loaded"]["seconds"] / figures["quiet"]["seconds"]
            row = {"path": name, **figures, "loaded_over_quiet": ratio,
                   "ratio_is_lower_bound": not figures["loaded"]["finished"]}
            if "loaded mid-run" in figures:
                row["mid_run_over_quiet"] = figures["loaded mid-run"]["seconds"] / figures["quiet"]["seconds"]
            rows.append(row)

    print(f"\n{args.spec}, {args.trials} trials x {args.epochs} epochs, {len(usable_cores())} cores, "
          f"{args.load} busy process(es) when loaded"
          + (f" (mid-run: from {args.load_after:g} s after the start)" if args.load_after is not None else ""))
    mid = args.load_after is not None
    print(f"{'path':<28}{'quiet s':>9}{'loaded s':>10}{'loaded/quiet':>14}" + (f"{'mid-run s':>11}{'mid/quiet':>11}" if mid else ""))
    for row in rows:
        bound = ">" if row["ratio_is_lower_bound"] else ""
        line = (f"{row['path']:<28}{row['quiet']['seconds']:>9.2f}{bound:>4}{row['loaded']['seconds']:>6.2f}"
                f"{bound:>5}{row['loaded_over_quiet']:>8.2f}x")
        if mid:
            late = row["loaded mid-run"]
            line += f"{'' if late['finished'] else '>':>5}{late['seconds']:>6.2f}{row['mid_run_over_quiet']:>10.2f}x"
        print(line)
    if args.out:
        report = {"command": " ".join(["contention.py"] + (argv if argv is not None else sys.argv[1:])),
                  "spec": args.spec, "trials": args.trials, "epochs": args.epochs, "load": args.load,
                  "load_after": args.load_after,
                  "cores": len(usable_cores()), "rows": rows}
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
