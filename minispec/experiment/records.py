"""The records of a run folder, as typed models: what is written is what is read.

    EvalPoint     one evaluation of one trial (a line of trials/trial_000.json)
    TrialRecord   one finished trial: seeds, provenance, its points, its final errors
    RunSummary    statistics over a run's finished trials (summary.json)
    RunConfig     how the run was started (run.json): data root, threads, chunking
    SweepSummary  one point per run folder of a sweep (sweep.json)

Only `minispec.experiment.folder.RunFolder` writes them; readers get these
models back (`load_run`), never dicts. Non-finite floats (a diverged loss) are
held as None, as JSON writes them, so a record in memory equals the record
read back from its file, and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from minispec.experiment import stats


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Number = Annotated[float | None, BeforeValidator(_finite_or_none)]
"""A float that is None when it is not finite (JSON has no NaN)."""


class Record(BaseModel):
    """Base of every record: frozen, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EvalPoint(Record):
    """One evaluation of one trial. `epoch` is fractional when `evaluate` > 1;
    a diverged point has no errors and `diverged` set."""

    epoch: float
    step: int
    lr: float
    train_loss: Number
    losses: dict[str, Number]
    test_loss: Number
    train_error: Number
    test_error: Number
    train_errors: dict[str, Number] | None
    test_errors: dict[str, Number] | None
    wall_time: float
    diverged: bool


class FinalPoint(Record):
    """The last non-diverged evaluation of a trial: the numbers it reports."""

    epoch: float
    train_loss: Number
    test_loss: Number
    train_error: float
    test_error: float
    train_errors: dict[str, float]
    test_errors: dict[str, float]


class TrialSeeds(Record):
    """Where each random number of a trial came from (see `minispec.experiment.seeding`)."""

    seed: int
    data: int
    weights: int
    order: int
    torch: int


class TrialRecord(Record):
    """One finished trial (trials/trial_NNN.json). `chunk` lists the trials
    trained together with it as replicas of one model, `threads` the CPU
    threads torch used: with the backend and device they fix its float
    rounding (see docs/experiments.md, "the same numbers")."""

    trial: int
    spec: str
    spec_hash: str
    seeds: TrialSeeds
    heads: list[str]
    report: str
    epochs: int
    epochs_done: int
    diverged: bool
    diverged_epoch: int | None
    final: FinalPoint | None
    wall_time: float
    chunk: list[int]
    threads: int
    backend: str
    device: str
    data_source: str
    records: list[EvalPoint]

    def header(self) -> "TrialRecord":
        """The record without its evaluation points (what summaries need)."""
        return self.model_copy(update={"records": []})

    @property
    def finished_well(self) -> bool:
        """Not diverged, with a final point: it counts in the statistics."""
        return not self.diverged and self.final is not None


class Spread(Record):
    """Mean and sample std (None below 2 values) of `n` values."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Spread":
        return cls(mean=stats.mean(values), std=stats.std(values), n=len(values))


class HeadSpread(Record):
    test_error: Spread
    train_error: Spread


class TrialError(Record):
    trial: int
    test_error: float


class RunSummary(Record):
    """Statistics over the finished trials 0..trials_planned-1 (summary.json)."""

    spec: str
    source: str | None
    spec_hash: str
    report: str
    heads: dict[str, HeadSpread]
    trials_planned: int
    trials_finished: int
    trials_diverged: int
    diverged: list[int]
    complete: bool
    note: str
    epochs: int
    test_error: Spread
    train_error: Spread
    accuracy: Spread
    best: TrialError | None
    worst: TrialError | None
    params: int
    wall_time: float
    seconds_per_trial: float | None
    backend: str | None
    device: str | None
    data_source: str | None
    threads: str | None = None


class RunConfig(Record):
    """How a run trains its trials (run.json), fixed by its first start so that
    `--resume` groups and computes the remaining trials as the first start
    would have: trials are trained in chunks 0..chunk-1, chunk..2*chunk-1, ...
    of `chunk` trials (1 = one at a time), with `threads` CPU threads."""

    spec_hash: str
    chunk: int
    vectorized: bool
    threads: int
    data_root: str | None = None  # --data-root of the first start (`minispec eval RUN_DIR` draws from it)


class SweepPoint(Record):
    """One point of a sweep: its `--set` values (texts, as `--set` takes them),
    its run folder (relative to the sweep folder), the group of points it
    trains with as one model, its run summary, and Welch's test of its final
    test errors against the best point's (None for the best point itself)."""

    values: dict[str, str]
    folder: str
    spec_hash: str
    group: int
    summary: RunSummary | None = None
    t: float | None = None
    p_value: float | None = None


class SweepGroup(Record):
    """Points whose Programs differ in no shape, trained as the replicas of one
    model: replica j of the group is trial j % trials of point points[j // trials],
    in chunks 0..chunk-1, chunk..2*chunk-1, ... fixed by the sweep's first start
    (so a resumed sweep computes every remaining trial as the first would have)."""

    points: list[int]
    chunk: int
    vectorized: bool


class SweepSummary(Record):
    """A sweep folder (sweep.json): one run folder per point, the table's numbers,
    and how the points were grouped and chunked."""

    spec: str
    keys: list[str]
    trials: int
    threads: int
    groups: list[SweepGroup]
    points: list[SweepPoint]
    best: int | None = None  # the point of lowest mean test error
    complete: bool = False


def summarize(name: str, source: str | None, report: str, epochs: int, params: int, spec_hash: str,
              trials: dict[int, TrialRecord], planned: int) -> RunSummary:
    """Statistics over the finished trials 0..planned-1 (diverged ones counted apart)."""
    considered = [trials[k] for k in sorted(trials) if k < planned]
    good = [t for t in considered if t.finished_well]
    diverged = [t.trial for t in considered if t.diverged]
    test = [t.final.test_error for t in good]
    heads = {
        head: HeadSpread(test_error=Spread.of([t.final.test_errors[head] for t in good]),
                         train_error=Spread.of([t.final.train_errors[head] for t in good]))
        for head in (considered[0].heads if considered else [])
    }
    best = min(good, key=lambda t: (t.final.test_error, t.trial), default=None)
    worst = max(good, key=lambda t: (t.final.test_error, -t.trial), default=None)
    chunks = {tuple(t.chunk): t.wall_time for t in considered}
    wall = math.fsum(chunks.values())
    note = f"statistics over {len(good)} trial(s)"
    if diverged:
        note += f"; {len(diverged)} diverged trial(s) left out: {', '.join(map(str, diverged))}"
    if len(considered) < planned:
        note += f"; {planned - len(considered)} of {planned} planned trial(s) not finished"
    error = Spread.of(test)
    return RunSummary(
        spec=name, source=source, spec_hash=spec_hash, report=report, heads=heads,
        trials_planned=planned, trials_finished=len(considered), trials_diverged=len(diverged),
        diverged=diverged, complete=len(considered) == planned, note=note, epochs=epochs,
        test_error=error, train_error=Spread.of([t.final.train_error for t in good]),
        accuracy=Spread(mean=None if error.mean is None else 1.0 - error.mean, std=error.std, n=error.n),
        best=None if best is None else TrialError(trial=best.trial, test_error=best.final.test_error),
        worst=None if worst is None else TrialError(trial=worst.trial, test_error=worst.final.test_error),
        params=params, wall_time=wall, seconds_per_trial=wall / len(considered) if considered else None,
        backend=_joined(t.backend for t in considered), device=_joined(t.device for t in considered),
        data_source=_joined(t.data_source for t in considered),
        threads=_joined(str(t.threads) for t in considered),
    )


def _joined(values) -> str | None:
    distinct = list(dict.fromkeys(values))
    return "; ".join(distinct) if distinct else None
