"""Two readings of a trained digit-pair net: its learned head, and its digit heads read directly.

    table = read_runs(["runs/ws_aux_bn-1a2b3c4d"])
    print(format_readings(table))

A digit-pair spec with a 10-way head on each digit (`classes[0]`, `classes[1]`)
can answer "is the first digit <= the second?" in two ways: through the head
the spec reports (a learned comparator, trained on the pairs), or by comparing
the two predicted digits directly: argmax(head a) <= argmax(head b), which
needs no training of its own. Both are evaluated here from a run folder's
saved weights, on each trial's own train and test pairs, so a gap between
them can be told apart from a gap in the digit heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from minispec import data as datasets
from minispec.backends.targets import decide, select
from minispec.errors import MinispecError
from minispec.experiment import stats
from minispec.experiment.folder import RunResult, load_run
from minispec.experiment.trained import run_program, trained_model, trial_data
from minispec.experiment.training import main_head
from minispec.ir.model import Loss, Program

CHUNK = 500  # pairs per predict call


@dataclass(frozen=True)
class Reading:
    """Error fractions (0..1) of one trial: the learned head and the direct comparison, on train and test."""

    trial: int
    learned_train: float
    learned_test: float
    direct_train: float
    direct_test: float


@dataclass(frozen=True)
class RunReadings:
    spec: str
    folder: Path
    readings: list[Reading]

    def spread(self, field: str) -> tuple[float | None, float | None]:
        """(mean, sample std) of one reading over the trials."""
        values = [getattr(r, field) for r in self.readings]
        return stats.mean(values), stats.std(values)


def digit_heads(program: Program) -> tuple[Loss, Loss]:
    """The losses on `classes[0]` and `classes[1]` with 10-way argmax heads; an error for people otherwise."""
    found = {}
    for loss in program.losses:
        if loss.target.name == "classes" and loss.decision == "argmax" and loss.classes == 10:
            found.setdefault(loss.target.index, loss)
    if program.data.name != "mnist_pairs" or set(found) != {0, 1}:
        raise MinispecError(f"spec `{program.name}` has no 10-way head on each digit to read directly",
                            hint="direct reading needs losses like `digit_a cross_entropy(classes[0])` "
                                 "and `digit_b cross_entropy(classes[1])`")
    return found[0], found[1]


@torch.no_grad()
def _errors(model, program: Program, split: datasets.Split, heads: tuple[Loss, Loss]) -> tuple[list, list]:
    """(learned, direct) error fractions per replica on one stacked split."""
    report = program.losses[main_head(program)]
    size = len(split)
    learned = torch.zeros(model.replicas)
    direct = torch.zeros(model.replicas)
    for start in range(0, size, CHUNK):
        end = min(start + CHUNK, size)
        inputs = {n: t[:, start:end].to(model.device) for n, t in split.inputs.items()}
        raw = {n: t[:, start:end] for n, t in split.targets.items()}
        outputs = {n: t.cpu() for n, t in model.predict(inputs).items()}
        truth = select(report, raw)
        learned += (decide(report, outputs[report.node]) != truth).sum(dim=-1)
        first, second = (decide(loss, outputs[loss.node]) for loss in heads)
        direct += ((first <= second).long() != truth).sum(dim=-1)
    return (learned / size).tolist(), (direct / size).tolist()


def read_run(run: RunResult, backend: str = "torch", device: str | torch.device = "cpu",
             data_root: str | None = None) -> RunReadings:
    """Both readings of every trained trial of `run`."""
    program = run_program(run)
    heads = digit_heads(program)
    model, chosen = trained_model(run, None, backend, device)
    draw = datasets.stack([trial_data(program, k, data_root) for k in chosen])
    learned_train, direct_train = _errors(model, program, draw.train, heads)
    learned_test, direct_test = _errors(model, program, draw.test, heads)
    readings = [Reading(k, learned_train[r], learned_test[r], direct_train[r], direct_test[r])
                for r, k in enumerate(chosen)]
    return RunReadings(spec=run.spec, folder=run.folder, readings=readings)


def read_runs(folders: Sequence[str | Path], backend: str = "torch", data_root: str | None = None) -> list[RunReadings]:
    return [read_run(load_run(folder), backend, data_root=data_root) for folder in folders]


def format_readings(table: Sequence[RunReadings]) -> str:
    """One line per run: trials, then mean ± std (%) of each reading on test and train."""
    columns = ("learned_test", "direct_test", "learned_train", "direct_train")
    header = ["spec", "trials", "learned head test (%)", "digits read directly test (%)",
              "learned head train (%)", "digits read directly train (%)"]
    rows = []
    for run in table:
        cells = [run.spec, str(len(run.readings))]
        for column in columns:
            mean, std = run.spread(column)
            cells.append(f"{100 * mean:.2f} ± {100 * (std or 0.0):.2f}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
