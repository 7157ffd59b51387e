"""Trials of one Program, trained through any backend, into a run folder.

    run_experiment(program, backend_factory=..., out_dir=...) -> RunResult

The runner never knows which backend it drives: `backend_factory(program,
states, device)` returns a `TrainableModel` holding `len(states)` replicas.
A sequential trial is a model of one replica; a vectorized chunk is one model
of R replicas. Both go through the same loop below, with a leading replica
axis on every tensor, so a trial computes the same numbers either way (see
`minispec.experiment.seeding` for where each random number comes from).

Per epoch e (0-based): the learning rate of the schedule is set, each
replica's training set is shuffled by its own generator, and the batches
(the last one may be smaller) are stepped in order. At `train.evaluate`
evenly spaced steps of the epoch (the last at its end) every replica is
evaluated on its full train and test sets, in chunks of
`minispec.ir.cost.eval_chunk` samples, and a record is added to its trial.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from minispec import data as datasets
from minispec.backends.base import TrainableModel
from minispec.backends.checkpoint import save_state
from minispec.backends.weights import initial_state, trial_generator, trial_seed
from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment import folder as rf
from minispec.experiment.folder import RunResult, program_hash
from minispec.experiment.planning import plan_run
from minispec.experiment.schedule import learning_rate
from minispec.experiment.seeding import data_seed, order_seed, torch_seed
from minispec.ir.cost import eval_chunk
from minispec.ir.model import Program
from minispec.ir.targets import encode, error_count

class BackendFactory(Protocol):
    """`make_model(program, states, device)`: a model of `len(states)` replicas.

    A factory that also accepts a keyword `generators` receives one CPU
    generator per replica, seeded `torch_seed(seed, trial)`, for backends that
    draw dropout masks per replica (then dropout, too, is the same whether a
    trial runs alone or vectorized). A backend that holds one replica only
    should raise ValueError when given several states.
    """

    def __call__(self, program: Program, states: list[dict[str, torch.Tensor]], device: torch.device) -> TrainableModel: ...


class _OneReplicaOnly(Exception):
    """The backend refused several replicas (raised ValueError for R > 1)."""


def with_overrides(program: Program, trials: int | None = None, epochs: int | None = None) -> Program:
    """The program with the run's trial and epoch counts written into `train`.

    Epochs change what a trial computes, so they enter the spec hash; the
    trial count does not (see `program_hash`)."""
    update: dict[str, int] = {}
    for name, value in (("trials", trials), ("epochs", epochs)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MinispecError(f"--{name} must be a positive whole number, got {value!r}", hint=f"for example --{name} 10")
        update[name] = value
    if not update:
        return program
    return program.model_copy(update={"train": program.train.model_copy(update=update)})


def head_names(program: Program) -> list[str]:
    """One name per loss (the loss node; `node_i` when a node carries several losses)."""
    nodes = [loss.node for loss in program.losses]
    return [node if nodes.count(node) == 1 else f"{node}_{i}" for i, node in enumerate(nodes)]


def main_head(program: Program) -> int:
    """Index of the loss whose error is the run's error (`train.report`)."""
    for i, loss in enumerate(program.losses):
        if loss.node == program.train.report:
            return i
    raise MinispecError(f"`report {program.train.report}` names a node without a loss")


def run_experiment(
    program: Program,
    *,
    backend_factory: BackendFactory,
    trials: int | None = None,
    epochs: int | None = None,
    device: str | torch.device = "cpu",
    out_dir: str | Path,
    data_root: str | None = None,
    resume: bool = False,
    progress: Callable[[ev.Event], None] | None = None,
    vectorize: bool | None = None,
    chunk: int | None = None,
    max_memory: int | None = None,
) -> RunResult:
    """Train trials 0..T-1 of `program` (T = `trials` or `program.train.trials`)
    and write the run folder `out_dir` (see `minispec.experiment.folder`).

    resume: go on with a folder of the same spec hash, skipping its finished
    trials (without it, a folder holding results is refused). vectorize: train
    trials as replicas of one model, at most `chunk` at a time and as many as
    fit `max_memory` (default: what the device has free); None: decide by the
    fixed rule of `minispec.experiment.planning`, falling back to one trial
    at a time if the backend refuses several replicas. A run whose single
    trial would not fit the memory budget, or whose files would not fit the
    disk, is refused before anything is allocated.
    Raises MinispecError for bad arguments, a folder that would be
    overwritten, or a spec hash that does not match on resume.
    """
    program = with_overrides(program, trials, epochs)
    planned = program.train.trials
    device = torch.device(device)
    folder = Path(out_dir)
    spec_hash = program_hash(program)
    emit = progress or (lambda event: None)
    auto = vectorize is None
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise MinispecError(f"--chunk must be a positive whole number, got {chunk!r}", hint="for example --chunk 10")

    finished = _open_folder(folder, spec_hash, resume)  # trial -> its record without the per-epoch list
    pending = [k for k in range(planned) if k not in finished]
    plan = plan_run(program, device, len(pending), vectorize, max_memory, folder, chunk)
    rf.write_atomic(folder / "program.json", program.model_dump_json(indent=1) + "\n")
    rf.write_atomic(folder / "spec_hash.txt", spec_hash + "\n")
    # a readable summary from the start: a run killed before its first trial ends still has one
    rf.write_atomic(folder / "summary.json", rf.dump_json(rf.summarize(program, spec_hash, finished, planned)))

    size = plan.chunk
    emit(ev.RunStarted(program.name, folder, planned, tuple(pending), program.train.epochs,
                       program.train.evaluate, plan.vectorize, size, plan.reason))
    earlier = {"backend": {t["backend"] for t in finished.values()},
               "data_source": {t["data_source"] for t in finished.values()}}

    queue = list(pending)
    while queue:
        ids = queue[:size]
        try:
            results = _train_chunk(program, ids, backend_factory, device, data_root, spec_hash, earlier, emit)
        except _OneReplicaOnly as error:
            if not auto:
                raise MinispecError(
                    f"this backend cannot train {len(ids)} trials as replicas of one model: {error.__cause__}",
                    hint="run without --vectorize (one trial at a time), or choose a backend that vectorizes",
                ) from None
            size = 1  # auto mode: fall back to one trial at a time
            continue
        queue = queue[len(ids):]
        for result in results:
            k = result["trial"]
            state = result.pop("_state")
            if state is not None:  # diverged trials keep no weights
                save_state(folder / rf.WEIGHTS / f"{rf.trial_name(k)}.safetensors", state,
                                {"spec_hash": spec_hash, "spec": program.name, "trial": str(k)})
            rf.write_atomic(folder / rf.TRIALS / f"{rf.trial_name(k)}.json", rf.dump_trial(result))
            finished[k] = _header(result)
            rf.write_atomic(folder / "summary.json", rf.dump_json(rf.summarize(program, spec_hash, finished, planned)))
            final = result["final"]
            emit(ev.TrialFinished(k, planned, result["diverged"], result["diverged_epoch"],
                                  result["epochs_done"], program.train.epochs,
                                  None if result["diverged"] or final is None else final["test_error"],
                                  result["wall_time"]))

    summary = rf.summarize(program, spec_hash, finished, planned)
    rf.write_atomic(folder / "summary.json", rf.dump_json(summary))
    run = rf.load_run(folder)
    rf.write_atomic(folder / "curves.csv", rf.curves_csv({t["trial"]: t for t in run.trials}, planned))
    from minispec.render.curves import plot_curves

    plot_curves([run], folder / "curves.png")
    emit(ev.RunFinished(folder, run.summary))
    return run


def _header(trial: dict[str, Any]) -> dict[str, Any]:
    """A trial as read back from its file, without the per-evaluation records
    (what summaries need; the records stay on disk)."""
    return _json_round_trip({key: value for key, value in trial.items() if key != "records"})


def _open_folder(folder: Path, spec_hash: str, resume: bool) -> dict[int, dict[str, Any]]:
    """Check the folder may be written; return its finished trials (resume)."""
    if folder.exists() and not folder.is_dir():
        raise MinispecError(f"{folder} exists and is not a folder", hint="choose another --out")
    if rf.holds_run(folder) and not resume:
        raise MinispecError(
            f"{folder} already holds a run",
            hint="pass --resume to go on with it, or choose another --out (nothing is ever overwritten)",
        )
    if not resume or not rf.holds_run(folder):
        folder.mkdir(parents=True, exist_ok=True)
        return {}
    found = rf.read_hash(folder)
    if found is None:
        raise MinispecError(f"{folder} holds trials but no spec_hash.txt", hint="it is not a minispec run folder; choose another --out")
    if found != spec_hash:
        raise MinispecError(
            f"cannot resume {folder}: it was run with spec hash {found[:12]}…, this spec has {spec_hash[:12]}…",
            hint="the spec (or --set, --epochs) changed since; resume with the same spec, or choose another --out",
        )
    rf.remove_stale_temporaries(folder)
    trials = {k: _header(trial) for k, trial in rf.read_trials(folder).items()}
    for k, trial in trials.items():
        if trial.get("spec_hash") != spec_hash:
            raise MinispecError(
                f"cannot resume {folder}: trial {k} was run with spec hash {str(trial.get('spec_hash'))[:12]}…, "
                f"this spec has {spec_hash[:12]}…",
                hint="choose another --out",
            )
    return trials


def _json_round_trip(value: Any) -> Any:
    """What a value reads back as from its JSON file (non-finite floats -> None),
    so a run and its resumed twin hold identical Python values."""
    import json

    return json.loads(rf.dump_json(value))


def _gather(tensor: torch.Tensor, rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tensor [R, N, ...] at index [R, B] -> [R, B, ...] (each replica its own samples)."""
    return tensor[rows, index]


def _train_chunk(
    program: Program,
    ids: Sequence[int],
    backend_factory: BackendFactory,
    device: torch.device,
    data_root: str | None,
    spec_hash: str,
    earlier: dict[str, set[str]],
    emit: Callable[[ev.Event], None],
) -> list[dict[str, Any]]:
    """Train trials `ids` as the R replicas of one model; return their trial records."""
    train = program.train
    seed = train.seed
    R = len(ids)
    heads = head_names(program)
    main = main_head(program)
    weights = torch.tensor([loss.weight for loss in program.losses], dtype=torch.float64)

    draws = [datasets.load(program.data.name, dict(program.data.options), seed=data_seed(seed, k), root=data_root)
             for k in ids]
    data = datasets.stack(draws)
    if earlier["data_source"] and data.source not in earlier["data_source"]:
        raise MinispecError(
            f"cannot resume with data from {data.source}: the finished trials used "
            + "; ".join(sorted(earlier["data_source"])),
            hint="resume with the same --data-root, or choose another --out",
        )
    splits = {name: _on_device(program, split, device) for name, split in (("train", data.train), ("test", data.test))}
    n_train = len(data.train)
    states = [initial_state(program, trial_generator(seed, k)) for k in ids]
    orders = [torch.Generator(device="cpu").manual_seed(order_seed(seed, k)) for k in ids]

    torch.manual_seed(torch_seed(seed, ids[0]))
    extra = {}
    if _accepts_generators(backend_factory):
        extra["generators"] = [torch.Generator(device="cpu").manual_seed(torch_seed(seed, k)) for k in ids]
    try:
        model = backend_factory(program, states, device, **extra)
    except ValueError as error:
        if R > 1:
            raise _OneReplicaOnly() from error
        raise
    backend = getattr(model, "backend", type(model).__qualname__)
    if earlier["backend"] and backend not in earlier["backend"]:
        raise MinispecError(
            f"cannot resume with backend {backend}: the finished trials were run with "
            + ", ".join(sorted(earlier["backend"])),
            hint="resume with the same --backend, or choose another --out",
        )
    for k in ids:
        emit(ev.TrialStarted(k, train.trials, train.epochs))

    batch = train.batch
    steps = math.ceil(n_train / batch)
    evaluate_after = sorted({max(1, round((j + 1) * steps / train.evaluate)) for j in range(train.evaluate)})
    rows = torch.arange(R, device=device).unsqueeze(1)
    x_train, enc_train = splits["train"]["inputs"], splits["train"]["encoded"]

    records: list[list[dict]] = [[] for _ in ids]
    active = [True] * R
    diverged_epoch: list[int | None] = [None] * R
    epochs_done = [0] * R
    started = time.perf_counter()
    global_step = 0
    for epoch in range(train.epochs):
        lr = learning_rate(train, epoch)
        model.set_learning_rate(lr)
        order = torch.stack([torch.randperm(n_train, generator=g) for g in orders]).to(device)
        loss_sum = torch.zeros(R, len(program.losses), dtype=torch.float64, device=device)
        since = 0
        for step in range(steps):
            index = order[:, step * batch : (step + 1) * batch]
            inputs = {name: _gather(t, rows, index) for name, t in x_train.items()}
            targets = [_gather(t, rows, index) for t in enc_train]
            loss_sum += model.train_step(inputs, targets).detach().to(torch.float64)
            since += 1
            global_step += 1
            if step + 1 not in evaluate_after:
                continue
            means = (loss_sum / since).cpu()
            totals = (means * weights).sum(dim=1)
            loss_sum.zero_()
            since = 0
            end_of_epoch = step + 1 == steps
            point = {"epoch": round(epoch + (step + 1) / steps, 6), "step": global_step, "lr": lr}
            finite = torch.isfinite(totals).tolist()
            if any(a and f for a, f in zip(active, finite)):
                errors = _evaluate(model, program, splits, R)
            wall = time.perf_counter() - started
            for r, k in enumerate(ids):
                if not active[r]:
                    continue
                losses = {h: means[r, i].item() for i, h in enumerate(heads)}
                if not finite[r]:
                    active[r] = False
                    diverged_epoch[r] = epoch + 1
                    records[r].append({**point, "train_loss": totals[r].item(), "losses": losses, "test_loss": None,
                                       "train_error": None, "test_error": None, "train_errors": None,
                                       "test_errors": None, "wall_time": wall, "diverged": True})
                    continue
                train_errors = {h: errors["train"]["errors"][r][i] for i, h in enumerate(heads)}
                test_errors = {h: errors["test"]["errors"][r][i] for i, h in enumerate(heads)}
                record = {**point, "train_loss": totals[r].item(), "losses": losses,
                          "test_loss": errors["test"]["loss"][r], "train_error": train_errors[heads[main]],
                          "test_error": test_errors[heads[main]], "train_errors": train_errors,
                          "test_errors": test_errors, "wall_time": wall, "diverged": False}
                records[r].append(record)
                if end_of_epoch:
                    epochs_done[r] = epoch + 1
                emit(ev.EpochFinished(k, point["epoch"], train.epochs, global_step, lr, record["train_loss"],
                                      record["train_error"], record["test_error"], end_of_epoch))
            if not any(active):
                break
        if not any(active):
            break
    wall = time.perf_counter() - started

    results = []
    for r, k in enumerate(ids):
        good = [rec for rec in records[r] if not rec["diverged"]]
        last = good[-1] if good else None
        final = None
        if last is not None:
            final = {key: last[key] for key in ("epoch", "train_loss", "test_loss", "train_error", "test_error",
                                                "train_errors", "test_errors")}
        results.append({
            "trial": k,
            "spec": program.name,
            "spec_hash": spec_hash,
            "seeds": {"seed": seed, "data": data_seed(seed, k), "weights": trial_seed(seed, k),
                      "order": order_seed(seed, k), "torch": torch_seed(seed, ids[0])},
            "heads": heads,
            "report": heads[main],
            "epochs": train.epochs,
            "epochs_done": epochs_done[r],
            "diverged": not active[r],
            "diverged_epoch": diverged_epoch[r],
            "final": final,
            "wall_time": wall,
            "chunk": list(ids),
            "backend": backend,
            "device": str(device),
            "data_source": data.source,
            "records": records[r],
            "_state": None if not active[r] else model.state(r),
        })
    return results


def _accepts_generators(factory: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "generators" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _on_device(program: Program, split: datasets.Split, device: torch.device) -> dict[str, Any]:
    """A stacked split's inputs, raw targets and per-loss encoded targets on `device`."""
    raw = {name: t.to(device) for name, t in split.targets.items()}
    return {
        "inputs": {name: t.to(device) for name, t in split.inputs.items()},
        "raw": raw,
        "encoded": [encode(loss, raw) for loss in program.losses],
        "size": len(split),
    }


@torch.no_grad()
def _evaluate(model: TrainableModel, program: Program, splits: dict[str, dict], replicas: int) -> dict[str, dict]:
    """Error fraction per replica and head, and the weighted loss per replica, on each split."""
    weights = torch.tensor([loss.weight for loss in program.losses], dtype=torch.float64)
    chunk = eval_chunk(program, replicas, model.device.type)
    out = {}
    for name, split in splits.items():
        size = split["size"]
        wrong = torch.zeros(replicas, len(program.losses), dtype=torch.long)
        loss_sum = torch.zeros(replicas, len(program.losses), dtype=torch.float64)
        for start in range(0, size, chunk):
            end = min(start + chunk, size)
            outputs = model.predict({n: t[:, start:end] for n, t in split["inputs"].items()})
            raw = {n: t[:, start:end] for n, t in split["raw"].items()}
            for i, loss in enumerate(program.losses):
                wrong[:, i] += error_count(loss, outputs[loss.node], raw).cpu()
            losses = model.losses(outputs, [t[:, start:end] for t in split["encoded"]])
            loss_sum += losses.detach().cpu().to(torch.float64) * (end - start)
        out[name] = {
            "errors": (wrong.to(torch.float64) / size).tolist(),
            "loss": ((loss_sum / size) * weights).sum(dim=1).tolist(),
        }
    return out
