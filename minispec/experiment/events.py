"""What the runner tells its `progress` callback, as small frozen records.

The runner never prints: it calls `progress(event)` with one of these, and a
front end (the CLI's `TqdmProgress`, a test, a notebook) decides what to show.
Order within a run:

    RunStarted
    for every pending trial (in a vectorized chunk: all of the chunk's, in turn)
        TrialStarted
        EpochFinished ...        (epochs * evaluate per trial; fewer if it diverges)
        TrialFinished            (after its files are written)
    RunFinished

Raising from the callback (KeyboardInterrupt, say) stops the run; every trial
whose TrialFinished was emitted is already on disk, so `resume=True` goes on
from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minispec.experiment.records import RunSummary


@dataclass(frozen=True)
class Event:
    """Base class of everything the runner reports."""


@dataclass(frozen=True)
class RunStarted(Event):
    """A run begins. `pending`: the trials it will train (finished ones are skipped).
    `pending_epochs`: the epochs they will train in all, when their `epochs`
    differ (a sweep over epochs); otherwise len(pending) * epochs."""

    spec: str
    folder: Path
    trials: int
    pending: tuple[int, ...]
    epochs: int
    evaluate: int
    vectorized: bool
    chunk: int
    plan: str = ""
    pending_epochs: int | None = None

    @property
    def total_epochs(self) -> int:
        """The epochs the pending trials will train in all."""
        return self.pending_epochs if self.pending_epochs is not None else len(self.pending) * self.epochs


@dataclass(frozen=True)
class TrialStarted(Event):
    trial: int
    trials: int
    epochs: int


@dataclass(frozen=True)
class EpochFinished(Event):
    """An evaluation point of one trial. `epoch` is fractional when
    `evaluate` > 1 (1.5 = half-way through the second epoch); `end_of_epoch`
    is true at the last evaluation point of an epoch. `epochs_since`: the
    epochs the trial completed since its previous point (`eval_every` of
    them, fewer at the last; 0 within an epoch), so a display can count
    progress without keeping state per trial number, which a sweep's points
    share."""

    trial: int
    epoch: float
    epochs: int
    step: int
    lr: float
    loss: float
    train_error: float
    test_error: float
    end_of_epoch: bool
    test_loss: float | None = None
    epochs_since: int = 1


@dataclass(frozen=True)
class TrialFinished(Event):
    """A trial's files are written. Diverged trials stop early: `epochs_done`
    is the number of epochs they completed."""

    trial: int
    trials: int
    diverged: bool
    diverged_epoch: int | None
    epochs_done: int
    epochs: int
    test_error: float | None
    wall_time: float


@dataclass(frozen=True)
class RunFinished(Event):
    folder: Path
    summary: RunSummary
