"""Learning curves of runs: mean ± std over trials per epoch, as in the seed-000 figures.

    plot_curves(results, path, metric="test_error")

One colour per run; the line is the mean over the run's finished,
non-diverged trials at each evaluation point, the band mean ± one sample
standard deviation. For error metrics the test curve is solid and, with
`train=True`, the train curve of the same run is dashed. Used for a run's
`curves.png` and for the overlay of `minispec compare`; `redraw_curves`,
`compare_folders` and `draw_decision` redraw figures from run folders
without training (`minispec plot`). The series are
computed here and drawn by `minispec.render.curves`, which knows no run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from minispec.errors import MinispecError
from minispec.experiment import stats
from minispec.experiment.folder import RunResult, load_run
from minispec.render.curves import Band, draw_bands

if TYPE_CHECKING:
    from minispec.experiment.compare import Comparison
    from minispec.render.decision import DecisionMap

METRICS = {
    "test_error": ("test error (%)", "train_error"),
    "train_error": ("train error (%)", None),
    "train_loss": ("training loss", None),
    "test_loss": ("test loss", "train_loss"),
}


def curve(result: RunResult, metric: str) -> tuple[list[float], list[float], list[float], int]:
    """(epochs, mean, std, trials) of `metric` over a run's non-diverged trials.

    A point is kept where every such trial has a finite value; std is 0 with one trial.
    """
    trials = [t for t in result.trials if not t.diverged]
    columns: dict[float, list[float]] = {}
    for trial in trials:
        for point in trial.records:
            value = getattr(point, metric)
            if value is not None and math.isfinite(value):
                columns.setdefault(point.epoch, []).append(value)
    epochs, means, stds = [], [], []
    for epoch in sorted(columns):
        values = columns[epoch]
        if len(values) != len(trials):
            continue
        epochs.append(epoch)
        means.append(stats.mean(values))
        stds.append(stats.std(values) or 0.0)
    return epochs, means, stds, len(trials)


def plot_curves(results: Sequence[RunResult], path: str | Path, metric: str = "test_error", *,
                train: bool = True, title: str | None = None) -> Path:
    """Write a PNG of `metric` per epoch, mean ± std over trials, one line and band per run.

    metric: test_error (with the train error dashed when `train`), train_error,
    train_loss or test_loss (with the training loss dashed when `train`).
    Returns the path written.
    """
    if metric not in METRICS:
        raise MinispecError(f"unknown curve metric `{metric}`", hint="one of: " + ", ".join(METRICS))
    label, companion = METRICS[metric]
    both = train and companion is not None
    if both and metric.endswith("error"):
        label = "error (%)"
    several_backends = len({r.summary.backend for r in results}) > 1
    bands = []
    for i, result in enumerate(results):
        name = "" if len(results) == 1 else _run_label(result, several_backends)
        series = [(metric, False)] + ([(companion, True)] if both else [])
        for key, dashed in series:
            side = key.split("_")[0]
            epochs, means, stds, _ = curve(result, key)
            what = " ".join(part for part in (name, side if both or not name else "") if part)
            bands.append(Band(what, epochs, means, stds, group=i, dashed=dashed))
    return draw_bands(bands, path, ylabel=label, title=title or _title(results, label),
                      percent=metric.endswith("error"))


def _run_label(result: RunResult, with_backend: bool = False) -> str:
    summary = result.summary
    n = summary.test_error.n
    extra = f", {summary.trials_diverged} diverged" if summary.trials_diverged else ""
    backend = f" [{summary.backend}]" if with_backend else ""
    return f"{result.spec}{backend} ({n} trial{'s' if n != 1 else ''}{extra})"


def _title(results: Sequence[RunResult], label: str) -> str:
    if len(results) == 1:
        result = results[0]
        summary = result.summary
        n = summary.test_error.n
        extra = f" of {summary.trials_planned} planned" if summary.trials_finished < summary.trials_planned else ""
        return f"{result.spec}: {label}, mean ± std over {n} trial{'s' if n != 1 else ''}{extra}"
    names = " vs ".join(r.spec for r in results) if len(results) <= 3 else f"{len(results)} specs"
    return f"{names}: {label}, mean ± std over trials"


# ---------------------------------------------------------------- `minispec plot`: figures from run folders


def redraw_curves(folders: Sequence[str | Path], metric: str = "test_error", output: str | Path | None = None,
                  train: bool = True) -> list[Path]:
    """Each run's curves figure again: into its own folder (`curves.png`, or
    `curves_<metric>.png` for another metric), or all runs overlaid in `output`."""
    runs = [load_run(folder) for folder in folders]
    if output is not None:
        return [plot_curves(runs, output, metric=metric, train=train)]
    name = "curves.png" if metric == "test_error" else f"curves_{metric}.png"
    return [plot_curves([run], run.folder / name, metric=metric, train=train) for run in runs]


def compare_folders(folders: Sequence[str | Path], output: str | Path, metric: str = "test_error") -> "Comparison":
    """The table of `minispec compare` (Welch's p against the first run) and its
    overlay plot, from finished run folders."""
    from minispec.experiment.compare import Comparison
    from minispec.experiment.tables import summary_table

    runs = [load_run(folder) for folder in folders]
    plot = plot_curves(runs, output, metric=metric, train=len(runs) <= 2)
    return Comparison(results=runs, rows=summary_table(runs), plot=plot)


def draw_decision(
    folder: str | Path,
    output: str | Path | None = None,
    trials: Sequence[int] | None = None,
    mean: bool = False,
    resolution: int | None = None,
    backend: str = "torch",
    device: str = "cpu",
) -> tuple[Path, list["DecisionMap"]]:
    """The decision map of a run's trials (one panel each, or their mean) into
    `output` (default: `<folder>/decision.png`, `decision_mean.png` with `mean`)."""
    from minispec.experiment.decision import RESOLUTION, decision_maps
    from minispec.render.decision import plot_decision

    run = load_run(folder)
    maps = decision_maps(run, trials, resolution or RESOLUTION, backend, device)
    if output is None:
        output = run.folder / ("decision_mean.png" if mean else "decision.png")
    return plot_decision(maps, output, mean=mean, title=f"{run.spec}: decision map"), maps
