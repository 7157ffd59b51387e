"""The trial loop: train one chunk of trials of one program as the replicas of one model.

    train_chunk(Chunk(program, trials=(0, 1, 2), spec_hash=...), backend_factory, emit) -> [FinishedTrial]

This is the unit of work of a run: it reads and writes no file, so a remote
worker can call it and hand the finished trials (records and weights) back to
the one process that writes the run folder. It never knows which backend it
drives: `backend_factory(program, states, device)` returns a `TrainableModel`
holding `len(states)` replicas. A sequential trial is a model of one replica;
a vectorized chunk is one model of R replicas. Both go through the same loop,
with a leading replica axis on every tensor, so a trial computes the same
numbers either way (see `minispec.experiment.seeding` for where each random
number comes from).

Per epoch e (0-based): the learning rate of the schedule is set, each
replica's training set is shuffled by its own generator, and the batches
(the last one may be smaller) are stepped in order. At `train.evaluate`
evenly spaced steps of the epoch (the last at its end) every replica is
evaluated on its full train and test sets, in chunks of
`minispec.ir.cost.eval_chunk` samples, and a point is added to its trial.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from minispec import data as datasets
from minispec.backends.base import TrainableModel
from minispec.backends.weights import initial_state, trial_generator, trial_seed
from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment.records import EvalPoint, FinalPoint, TrialRecord, TrialSeeds
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


class OneReplicaOnly(Exception):
    """The backend refused several replicas (raised ValueError for R > 1); the cause is chained."""


@dataclass(frozen=True)
class Provenance:
    """Backends and data sources of a run's finished trials: a chunk of a
    resumed run must match them (checked before it trains)."""

    backends: frozenset[str] = frozenset()
    data_sources: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Chunk:
    """A unit of work: trials `trials` of `program` (with its run's trial and
    epoch counts written in), trained together as the replicas of one model."""

    program: Program
    trials: tuple[int, ...]
    spec_hash: str
    device: str = "cpu"
    data_root: str | None = None
    earlier: Provenance = Provenance()


@dataclass
class FinishedTrial:
    """A trained trial: its record, and its final state (None when it diverged)."""

    record: TrialRecord
    state: dict[str, torch.Tensor] | None


@dataclass
class Replica:
    """What the loop keeps for one replica (one trial) of the model."""

    trial: int
    order: torch.Generator  # shuffles its training set each epoch
    points: list[EvalPoint] = field(default_factory=list)
    active: bool = True
    diverged_epoch: int | None = None
    epochs_done: int = 0


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


def train_chunk(chunk: Chunk, backend_factory: BackendFactory,
                emit: Callable[[ev.Event], None] | None = None) -> list[FinishedTrial]:
    """Train the trials of `chunk` as the R replicas of one model; return them in order.

    Emits TrialStarted and EpochFinished (never TrialFinished: the trial is
    finished when its files are written, which is the caller's job).
    Raises OneReplicaOnly when the backend refuses R > 1 replicas, and
    MinispecError when the chunk's data source or backend differ from `chunk.earlier`."""
    emit = emit or (lambda event: None)
    program, ids, device = chunk.program, list(chunk.trials), torch.device(chunk.device)
    train = program.train
    seed = train.seed

    data = datasets.stack([datasets.load(program.data.name, dict(program.data.options), seed=data_seed(seed, k),
                                         root=chunk.data_root) for k in ids])
    _check_same(chunk.earlier.data_sources, data.source, "data from", "used", "resume with the same --data-root")
    splits = {name: on_device(program, split, device) for name, split in (("train", data.train), ("test", data.test))}
    model = _build(program, ids, backend_factory, device)
    backend = getattr(model, "backend", type(model).__qualname__)
    _check_same(chunk.earlier.backends, backend, "backend", "were run with", "resume with the same --backend")

    replicas = [Replica(k, torch.Generator(device="cpu").manual_seed(order_seed(seed, k))) for k in ids]
    for k in ids:
        emit(ev.TrialStarted(k, train.trials, train.epochs))
    wall = _train(program, model, splits, replicas, len(data.train), emit)

    heads = head_names(program)
    threads = torch.get_num_threads()
    finished = []
    for r, replica in enumerate(replicas):
        k = replica.trial
        record = TrialRecord(
            trial=k, spec=program.name, spec_hash=chunk.spec_hash,
            seeds=TrialSeeds(seed=seed, data=data_seed(seed, k), weights=trial_seed(seed, k),
                             order=order_seed(seed, k), torch=torch_seed(seed, ids[0])),
            heads=heads, report=heads[main_head(program)], epochs=train.epochs, epochs_done=replica.epochs_done,
            diverged=not replica.active, diverged_epoch=replica.diverged_epoch, final=_final(replica.points),
            wall_time=wall, chunk=ids, threads=threads, backend=backend, device=str(device),
            data_source=data.source, records=replica.points,
        )
        finished.append(FinishedTrial(record, model.state(r) if replica.active else None))
    return finished


def _check_same(earlier: frozenset[str], now: str, what: str, verb: str, hint: str) -> None:
    if earlier and now not in earlier:
        raise MinispecError(f"cannot resume with {what} {now}: the finished trials {verb} " + "; ".join(sorted(earlier)),
                            hint=f"{hint}, or choose another --out")


def _build(program: Program, ids: list[int], backend_factory: BackendFactory, device: torch.device) -> TrainableModel:
    """The model of the chunk's replicas, from each trial's initial state."""
    seed = program.train.seed
    states = [initial_state(program, trial_generator(seed, k)) for k in ids]
    torch.manual_seed(torch_seed(seed, ids[0]))
    extra = {}
    if _accepts_generators(backend_factory):
        extra["generators"] = [torch.Generator(device="cpu").manual_seed(torch_seed(seed, k)) for k in ids]
    try:
        return backend_factory(program, states, device, **extra)
    except ValueError as error:
        if len(ids) > 1:
            raise OneReplicaOnly(str(error)) from error
        raise


def _train(program: Program, model: TrainableModel, splits: dict[str, dict], replicas: list[Replica],
           n_train: int, emit: Callable[[ev.Event], None]) -> float:
    """The epochs of the chunk; fills each replica's points. Returns the wall time."""
    train = program.train
    R = len(replicas)
    heads = head_names(program)
    main = heads[main_head(program)]
    weights = torch.tensor([loss.weight for loss in program.losses], dtype=torch.float64)
    device = model.device
    steps = math.ceil(n_train / train.batch)
    evaluate_after = sorted({max(1, round((j + 1) * steps / train.evaluate)) for j in range(train.evaluate)})
    rows = torch.arange(R, device=device).unsqueeze(1)
    x_train, enc_train = splits["train"]["inputs"], splits["train"]["encoded"]

    started = time.perf_counter()
    global_step = 0
    for epoch in range(train.epochs):
        lr = learning_rate(train, epoch)
        model.set_learning_rate(lr)
        order = torch.stack([torch.randperm(n_train, generator=replica.order) for replica in replicas]).to(device)
        loss_sum = torch.zeros(R, len(program.losses), dtype=torch.float64, device=device)
        since = 0
        for step in range(steps):
            index = order[:, step * train.batch : (step + 1) * train.batch]
            inputs = {name: t[rows, index] for name, t in x_train.items()}
            targets = [t[rows, index] for t in enc_train]
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
            epoch_at = round(epoch + (step + 1) / steps, 6)
            finite = torch.isfinite(totals).tolist()
            errors = None
            if any(replica.active and ok for replica, ok in zip(replicas, finite)):
                errors = evaluate(model, program, splits, R)
            wall = time.perf_counter() - started
            for r, replica in enumerate(replicas):
                if not replica.active:
                    continue
                losses = {h: means[r, i].item() for i, h in enumerate(heads)}
                common = dict(epoch=epoch_at, step=global_step, lr=lr, train_loss=totals[r].item(), losses=losses,
                              wall_time=wall)
                if not finite[r]:
                    replica.active = False
                    replica.diverged_epoch = epoch + 1
                    replica.points.append(EvalPoint(**common, test_loss=None, train_error=None, test_error=None,
                                                    train_errors=None, test_errors=None, diverged=True))
                    continue
                train_errors = dict(zip(heads, errors["train"]["errors"][r]))
                test_errors = dict(zip(heads, errors["test"]["errors"][r]))
                point = EvalPoint(**common, test_loss=errors["test"]["loss"][r], train_error=train_errors[main],
                                  test_error=test_errors[main], train_errors=train_errors, test_errors=test_errors,
                                  diverged=False)
                replica.points.append(point)
                if end_of_epoch:
                    replica.epochs_done = epoch + 1
                emit(ev.EpochFinished(replica.trial, epoch_at, train.epochs, global_step, lr, point.train_loss,
                                      point.train_error, point.test_error, end_of_epoch))
            if not any(replica.active for replica in replicas):
                return time.perf_counter() - started
    return time.perf_counter() - started


def _final(points: Sequence[EvalPoint]) -> FinalPoint | None:
    """The last non-diverged point: what the trial reports."""
    good = [point for point in points if not point.diverged]
    if not good:
        return None
    last = good[-1]
    return FinalPoint(epoch=last.epoch, train_loss=last.train_loss, test_loss=last.test_loss,
                      train_error=last.train_error, test_error=last.test_error,
                      train_errors=last.train_errors, test_errors=last.test_errors)


def _accepts_generators(factory: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "generators" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def on_device(program: Program, split: datasets.Split, device: torch.device) -> dict[str, Any]:
    """A stacked split's inputs, raw targets and per-loss encoded targets on `device`."""
    raw = {name: t.to(device) for name, t in split.targets.items()}
    return {
        "inputs": {name: t.to(device) for name, t in split.inputs.items()},
        "raw": raw,
        "encoded": [encode(loss, raw) for loss in program.losses],
        "size": len(split),
    }


@torch.no_grad()
def evaluate(model: TrainableModel, program: Program, splits: dict[str, dict], replicas: int) -> dict[str, dict]:
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
