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
`minispec.ir.cost.eval_chunk` samples, and a point is added to its trial;
with `train.eval_every` N, only at the end of every Nth epoch and of the
trial's last (`records_after`), the train loss averaged over the steps since.

A sweep's chunk gives each replica its own Program (`Chunk.points`): the
points of one graph that differ only in values changing no shape. The backend
gets their per-replica values as `hyper=` (`minispec.backends.replicas`);
each replica follows its own schedule, and a replica whose epochs are done
stops: its learning rate becomes 0 and its weights are taken at its last epoch.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from minispec import data as datasets
from minispec.allocator import keep_freed_memory
from minispec.backends.base import TrainableModel
from minispec.backends.replicas import ReplicaHyper
from minispec.backends.targets import encode, error_count
from minispec.backends.weights import initial_state, trial_generator, trial_seed
from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment.records import EvalPoint, FinalPoint, TrialRecord, TrialSeeds
from minispec.experiment.schedule import learning_rate
from minispec.experiment.seeding import data_seed, order_seed, torch_seed
from minispec.ir.cost import eval_chunk
from minispec.ir.model import Program, Train
from minispec.ir.ops import OPS


class BackendFactory(Protocol):
    """`make_model(program, states, device)`: a model of `len(states)` replicas.

    A factory that also accepts a keyword `generators` receives one CPU
    generator per replica, seeded `torch_seed(seed, trial)`, for backends that
    draw dropout masks per replica (then dropout, too, is the same whether a
    trial runs alone or vectorized). A factory that accepts `hyper` receives
    the replicas' own optimizer options, loss weights and dropout
    probabilities when they differ (a sweep). A backend that holds one replica
    only should raise ValueError when given several states.
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
    epoch counts written in), trained together as the replicas of one model.

    A sweep's chunk mixes points: `points[r]` and `point_hashes[r]` are the
    Program and spec hash of replica r (default: `program` and `spec_hash`
    for every replica); they differ from `program` only in shape-free values."""

    program: Program
    trials: tuple[int, ...]
    spec_hash: str
    device: str = "cpu"
    data_root: str | None = None
    earlier: Provenance = Provenance()
    points: tuple[Program, ...] = ()
    point_hashes: tuple[str, ...] = ()

    def replica_programs(self) -> list[Program]:
        return list(self.points) if self.points else [self.program] * len(self.trials)

    def replica_hashes(self) -> list[str]:
        return list(self.point_hashes) if self.point_hashes else [self.spec_hash] * len(self.trials)


@dataclass
class FinishedTrial:
    """A trained trial: its record, and its final state (None when it diverged)."""

    record: TrialRecord
    state: dict[str, torch.Tensor] | None


@dataclass
class Replica:
    """What the loop keeps for one replica (one trial) of the model."""

    trial: int
    program: Program  # its own (a sweep's point), or the run's
    order: torch.Generator  # shuffles its training set each epoch
    points: list[EvalPoint] = field(default_factory=list)
    active: bool = True  # neither diverged nor done
    diverged_epoch: int | None = None
    epochs_done: int = 0
    state: dict[str, torch.Tensor] | None = None  # its weights when its epochs are done
    wall_time: float = 0.0

    @property
    def seed(self) -> int:
        return self.program.train.seed

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None


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
    keep_freed_memory()  # a process-wide setting: no page faults for each new tensor (minispec.allocator)
    program, ids, device = chunk.program, list(chunk.trials), torch.device(chunk.device)
    replicas = [Replica(k, p, torch.Generator(device="cpu").manual_seed(order_seed(p.train.seed, k)))
                for k, p in zip(ids, chunk.replica_programs())]

    data = datasets.stack([datasets.load(program.data.name, dict(program.data.options),
                                         seed=data_seed(replica.seed, replica.trial), root=chunk.data_root)
                           for replica in replicas])
    _check_same(chunk.earlier.data_sources, data.source, "data from", "used", "resume with the same --data-root")
    splits = {name: on_device(program, split, device) for name, split in (("train", data.train), ("test", data.test))}
    model, varied = _build(program, replicas, backend_factory, device)
    backend = getattr(model, "backend", type(model).__qualname__)
    _check_same(chunk.earlier.backends, backend, "backend", "were run with", "resume with the same --backend")

    for replica in replicas:
        emit(ev.TrialStarted(replica.trial, replica.program.train.trials, replica.program.train.epochs))
    wall = _train(program, model, splits, replicas, len(data.train), emit, varied)

    heads = head_names(program)
    threads = torch.get_num_threads()
    finished = []
    for r, (replica, spec_hash) in enumerate(zip(replicas, chunk.replica_hashes())):
        k, seed, point = replica.trial, replica.seed, replica.program
        record = TrialRecord(
            trial=k, spec=point.name, spec_hash=spec_hash,
            seeds=TrialSeeds(seed=seed, data=data_seed(seed, k), weights=trial_seed(seed, k),
                             order=order_seed(seed, k), torch=torch_seed(replicas[0].seed, ids[0])),
            heads=heads, report=heads[main_head(program)], epochs=point.train.epochs, epochs_done=replica.epochs_done,
            diverged=replica.diverged, diverged_epoch=replica.diverged_epoch, final=_final(replica.points),
            wall_time=replica.wall_time or wall, chunk=ids, threads=threads, backend=backend, device=str(device),
            data_source=data.source, records=replica.points,
        )
        finished.append(FinishedTrial(record, None if replica.diverged else replica.state if replica.state is not None else model.state(r)))
    return finished


def _check_same(earlier: frozenset[str], now: str, what: str, verb: str, hint: str) -> None:
    if earlier and now not in earlier:
        raise MinispecError(f"cannot resume with {what} {now}: the finished trials {verb} " + "; ".join(sorted(earlier)),
                            hint=f"{hint}, or choose another --out")


def _build(program: Program, replicas: list[Replica], backend_factory: BackendFactory,
           device: torch.device) -> tuple[TrainableModel, bool]:
    """The model of the chunk's replicas, from each trial's initial state, and
    whether the replicas' hyperparameters differ (then they were given as `hyper`)."""
    states = [initial_state(r.program, trial_generator(r.seed, r.trial)) for r in replicas]
    torch.manual_seed(torch_seed(replicas[0].seed, replicas[0].trial))
    extra: dict[str, Any] = {}
    if _accepts(backend_factory, "generators"):
        # on the model's device: a GPU draws its dropout masks where they are used
        extra["generators"] = [torch.Generator(device=device).manual_seed(torch_seed(r.seed, r.trial)) for r in replicas]
    hyper = ReplicaHyper.of([r.program for r in replicas])
    varied = hyper != ReplicaHyper.of([program] * len(replicas))
    if varied:
        if not _accepts(backend_factory, "hyper"):
            raise MinispecError("this backend cannot give the replicas of one model their own hyperparameters",
                                hint="sweep with --no-vectorize (one model per trial)")
        extra["hyper"] = hyper
    try:
        return backend_factory(program, states, device, **extra), varied
    except ValueError as error:
        if len(replicas) > 1:
            raise OneReplicaOnly(str(error)) from error
        raise


def _train(program: Program, model: TrainableModel, splits: dict[str, dict], replicas: list[Replica],
           n_train: int, emit: Callable[[ev.Event], None], varied: bool = False) -> float:
    """The epochs of the chunk; fills each replica's points (and, when a
    replica's own epochs are done before the chunk's, its state). Returns the wall time."""
    train = program.train
    R = len(replicas)
    heads = head_names(program)
    main = heads[main_head(program)]
    weights = torch.tensor([[loss.weight for loss in r.program.losses] for r in replicas], dtype=torch.float64)
    device = model.device
    bounds = batch_bounds(n_train, train.batch, uses_batch_statistics(program))
    steps = len(bounds)
    evaluate_after = sorted({max(1, round((j + 1) * steps / train.evaluate)) for j in range(train.evaluate)})
    x_train, enc_train = splits["train"]["inputs"], splits["train"]["encoded"]

    started = time.perf_counter()
    global_step = 0
    loss_sum = torch.zeros(R, len(program.losses), dtype=torch.float64, device=device)
    last_point = [0] * R  # the global step of each replica's last point: loss_sum holds the steps since
    for epoch in range(train_epochs(replicas)):
        lrs = [learning_rate(r.program.train, epoch) if r.active else 0.0 for r in replicas]
        model.set_learning_rate(lrs if varied else learning_rate(train, epoch))
        order = torch.stack([torch.randperm(n_train, generator=replica.order) for replica in replicas]).to(device)
        for step, (start, end) in enumerate(bounds):
            index = order[:, start:end]
            inputs = {name: take(t, index) for name, t in x_train.items()}
            targets = [take(t, index) for t in enc_train]
            loss_sum += model.train_step(inputs, targets).detach().to(torch.float64)
            global_step += 1
            if step + 1 not in evaluate_after:
                continue
            end_of_epoch = step + 1 == steps
            records = [r.active and (not end_of_epoch or records_after(r.program.train, epoch + 1)) for r in replicas]
            if not any(records):
                continue
            since = torch.tensor([global_step - last for last in last_point], dtype=torch.float64)
            means = loss_sum.cpu() / since.unsqueeze(1)  # mean over the steps since the trial's last point
            totals = (means * weights).sum(dim=1)
            loss_sum[torch.tensor(records, device=device)] = 0.0
            last_point = [global_step if rec else last for rec, last in zip(records, last_point)]
            epoch_at = round(epoch + (step + 1) / steps, 6)
            finite = torch.isfinite(totals).tolist()
            mean_values, total_values = means.tolist(), totals.tolist()  # Python floats, read once
            errors = None
            if any(rec and ok for rec, ok in zip(records, finite)):
                errors = evaluate(model, program, splits, R, weights)
            wall = time.perf_counter() - started
            for r, replica in enumerate(replicas):
                if not records[r]:
                    continue
                losses = dict(zip(heads, mean_values[r]))
                common = dict(epoch=epoch_at, step=global_step, lr=lrs[r], train_loss=total_values[r],
                              losses=losses, wall_time=wall)
                if not finite[r]:
                    replica.active = False
                    replica.diverged_epoch = epoch + 1
                    replica.wall_time = wall
                    replica.points.append(EvalPoint(**common, test_loss=None, train_error=None, test_error=None,
                                                    train_errors=None, test_errors=None, diverged=True))
                    continue
                train_errors = dict(zip(heads, errors["train"]["errors"][r]))
                test_errors = dict(zip(heads, errors["test"]["errors"][r]))
                point = EvalPoint(**common, test_loss=errors["test"]["loss"][r], train_error=train_errors[main],
                                  test_error=test_errors[main], train_errors=train_errors, test_errors=test_errors,
                                  diverged=False)
                replica.points.append(point)
                since = epoch + 1 - replica.epochs_done if end_of_epoch else 0
                if end_of_epoch:
                    replica.epochs_done = epoch + 1
                emit(ev.EpochFinished(replica.trial, epoch_at, replica.program.train.epochs, global_step, lrs[r],
                                      point.train_loss, point.train_error, point.test_error, end_of_epoch,
                                      point.test_loss, epochs_since=since))
            if not any(replica.active for replica in replicas):
                return time.perf_counter() - started
        for r, replica in enumerate(replicas):
            if replica.active and epoch + 1 == replica.program.train.epochs < train_epochs(replicas):
                replica.active = False  # done before the chunk: keep its weights as they are now
                replica.state = model.state(r)
                replica.wall_time = time.perf_counter() - started
    return time.perf_counter() - started


def records_after(train: Train, epochs_done: int) -> bool:
    """Whether a trial records a point at the end of epoch `epochs_done`: every
    `eval_every` epochs, and after its last epoch."""
    return epochs_done % train.eval_every == 0 or epochs_done == train.epochs


def take(samples: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Each replica's own samples: out[r, i] = samples[r, index[r, i]] (samples [R, N, ...], index [R, B]).

    One `index_select` of whole samples from the [R*N, ...] view: several times
    faster than indexing with a [R, 1] row tensor beside `index`, and than a
    `gather` of every float for samples of hundreds of floats (a pair of digits)."""
    replicas, n = samples.shape[:2]
    rows = (index + torch.arange(replicas, device=index.device).unsqueeze(1) * n).reshape(-1)
    return samples.reshape(replicas * n, *samples.shape[2:]).index_select(0, rows).view(*index.shape, *samples.shape[2:])


def train_epochs(replicas: Sequence[Replica]) -> int:
    """The epochs the chunk runs: the most any replica asks for."""
    return max(r.program.train.epochs for r in replicas)


def uses_batch_statistics(program: Program) -> bool:
    return any(OPS[node.op].has("batch_statistics") for node in program.nodes)


def check_batches(program: Program, batch: int | None = None, samples: int | None = None) -> None:
    """Refuse a net that normalises by batch statistics when a training batch
    would hold one sample (`batch` 1, or a training set of one sample)."""
    node = next((n for n in program.nodes if OPS[n.op].has("batch_statistics")), None)
    batch = batch or program.train.batch
    samples = samples if samples is not None else program.data.options.get("train")
    if node is None or (batch > 1 and samples != 1):
        return
    raise MinispecError(
        f"`{node.id}` normalises by batch statistics, which a training batch of one sample does not have",
        node.span, hint="train with `batch` 2 or more (and at least 2 training samples), or remove the batchnorm",
    )


def batch_bounds(samples: int, batch: int, merge_single: bool) -> list[tuple[int, int]]:
    """[start, end) of each training batch of an epoch, in order: full batches
    and a smaller last one. With `merge_single` (a net that normalises by batch
    statistics, which a batch of one sample does not have, in either backend)
    a last batch of one sample joins the batch before it."""
    bounds = [(start, min(start + batch, samples)) for start in range(0, samples, batch)]
    if merge_single and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], samples)]
    return bounds


def _final(points: Sequence[EvalPoint]) -> FinalPoint | None:
    """The last non-diverged point: what the trial reports."""
    good = [point for point in points if not point.diverged]
    if not good:
        return None
    last = good[-1]
    return FinalPoint(epoch=last.epoch, train_loss=last.train_loss, test_loss=last.test_loss,
                      train_error=last.train_error, test_error=last.test_error,
                      train_errors=last.train_errors, test_errors=last.test_errors)


def _accepts(factory: Callable[..., Any], keyword: str) -> bool:
    """Whether a factory takes the keyword argument `keyword`."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


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
def evaluate(model: TrainableModel, program: Program, splits: dict[str, dict], replicas: int,
             weights: torch.Tensor | None = None, loss_on: Collection[str] = ("test",)) -> dict[str, dict]:
    """Error fraction per replica and head on each split ("errors"), and the
    weighted loss per replica (loss weights [L] or [R, L]; default the
    program's) on the splits named in `loss_on` ("loss"): a point records the
    test loss only, so the training set's losses are not computed.

    Counts and loss sums stay on the model's device and are read once, at
    the end: on a GPU an evaluation waits for the device once, not once per
    chunk and head."""
    if weights is None:
        weights = torch.tensor([loss.weight for loss in program.losses], dtype=torch.float64)
    chunk = eval_chunk(program, replicas, model.device.type)
    sums = {}
    for name, split in splits.items():
        size = split["size"]
        wrong = torch.zeros(replicas, len(program.losses), dtype=torch.long, device=model.device)
        loss_sum = torch.zeros(replicas, len(program.losses), dtype=torch.float64, device=model.device)
        for start in range(0, size, chunk):
            end = min(start + chunk, size)
            outputs = model.predict({n: t[:, start:end] for n, t in split["inputs"].items()})
            raw = {n: t[:, start:end] for n, t in split["raw"].items()}
            for i, loss in enumerate(program.losses):
                wrong[:, i] += error_count(loss, outputs[loss.node], raw)
            if name in loss_on:
                losses = model.losses(outputs, [t[:, start:end] for t in split["encoded"]])
                loss_sum += losses.detach().to(torch.float64) * (end - start)
        sums[name] = (wrong, loss_sum)
    read = torch.stack([torch.cat([w.to(torch.float64), l], dim=1) for w, l in sums.values()]).cpu()  # the one wait
    out = {}
    for (name, split), values in zip(splits.items(), read):
        size, heads = split["size"], len(program.losses)
        wrong, loss_sum = values[:, :heads], values[:, heads:]
        out[name] = {"errors": (wrong / size).tolist()}
        if name in loss_on:
            out[name]["loss"] = ((loss_sum / size) * weights).sum(dim=1).tolist()
    return out
