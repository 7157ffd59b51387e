"""Learning curves of runs: mean ± std over trials per epoch, as in the seed-000 figures.

    plot_curves(results, path, metric="test_error")

One colour per run; the line is the mean over the run's finished,
non-diverged trials at each evaluation point, the band mean ± one sample
standard deviation. For error metrics the test curve is solid and, with
`train=True`, the train curve of the same run is dashed. Errors are drawn in
percent; losses on a log scale. Used for a run's `curves.png` and for the
overlay of `minispec compare`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minispec.experiment.folder import RunResult

METRICS = {
    "test_error": ("test error (%)", "train_error"),
    "train_error": ("train error (%)", None),
    "train_loss": ("training loss", None),
    "test_loss": ("test loss", "train_loss"),
}


def curve(result: "RunResult", metric: str) -> tuple[list[float], list[float], list[float], int]:
    """(epochs, mean, std, trials) of `metric` over a run's non-diverged trials.

    A point is kept where every such trial has a finite value; std is 0 with one trial.
    """
    trials = [t for t in result.trials if not t["diverged"]]
    columns: dict[float, list[float]] = {}
    for trial in trials:
        for record in trial["records"]:
            value = record.get(metric)
            if value is not None and math.isfinite(value):
                columns.setdefault(record["epoch"], []).append(value)
    epochs, means, stds = [], [], []
    for epoch in sorted(columns):
        values = columns[epoch]
        if len(values) != len(trials):
            continue
        centre = math.fsum(values) / len(values)
        spread = math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        epochs.append(epoch)
        means.append(centre)
        stds.append(spread)
    return epochs, means, stds, len(trials)


def plot_curves(
    results: Sequence["RunResult"],
    path: str | Path,
    metric: str = "test_error",
    *,
    train: bool = True,
    title: str | None = None,
) -> Path:
    """Write a PNG of `metric` per epoch, mean ± std over trials, one line and band per run.

    metric: test_error (with the train error dashed when `train`), train_error,
    train_loss or test_loss (with the training loss dashed when `train`).
    Returns the path written.
    """
    if metric not in METRICS:
        from minispec.errors import MinispecError

        raise MinispecError(f"unknown curve metric `{metric}`", hint="one of: " + ", ".join(METRICS))
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    label, companion = METRICS[metric]
    both = train and companion is not None
    if both and metric.endswith("error"):
        label = "error (%)"
    is_error = metric.endswith("error")
    scale = 100.0 if is_error else 1.0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    # A bare Figure on the Agg canvas: no pyplot, so no global backend or figure state is touched.
    fig = Figure(figsize=(7.5, 4.6), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = False
    several_backends = len({r.summary.get("backend") for r in results}) > 1
    for i, result in enumerate(results):
        color = colors[i % len(colors)]
        name = "" if len(results) == 1 else _run_label(result, several_backends)
        series = [(metric, "-", metric.split("_")[0])]
        if both:
            series.append((companion, "--", companion.split("_")[0]))
        for key, style, side in series:
            epochs, means, stds, n = curve(result, key)
            if not epochs:
                continue
            mean = [m * scale for m in means]
            low = [(m - s) * scale for m, s in zip(means, stds)]
            high = [(m + s) * scale for m, s in zip(means, stds)]
            if is_error:
                low = [max(v, 0.0) for v in low]
                high = [min(v, 100.0) for v in high]
            unit = "%" if is_error else ""
            what = " ".join(part for part in (name, side if both or not name else "") if part)
            text = f"{what}, final {mean[-1]:.2f} ± {stds[-1] * scale:.2f}{unit}"
            ax.plot(epochs, mean, style, color=color, linewidth=1.6, label=text)
            ax.fill_between(epochs, low, high, color=color, alpha=0.2 if style == "-" else 0.1, linewidth=0)
            drawn = True

    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    if not is_error and drawn:
        ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    if is_error:
        ax.set_ylim(bottom=0)
    ax.set_title(title or _title(results, label), fontsize=11)
    if drawn:
        ax.legend(fontsize=8, loc="upper right", framealpha=0.85)
    else:
        ax.text(0.5, 0.5, "no finished trial to plot", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path


def _run_label(result: "RunResult", with_backend: bool = False) -> str:
    summary = result.summary
    n = summary.get("test_error", {}).get("n", len(result.trials))
    extra = f", {summary['trials_diverged']} diverged" if summary.get("trials_diverged") else ""
    backend = f" [{summary.get('backend')}]" if with_backend else ""
    return f"{result.spec}{backend} ({n} trial{'s' if n != 1 else ''}{extra})"


def _title(results: Sequence["RunResult"], label: str) -> str:
    if len(results) == 1:
        result = results[0]
        summary = result.summary
        n = summary.get("test_error", {}).get("n", len(result.trials))
        extra = ""
        if summary.get("trials_finished", n) < summary.get("trials_planned", n):
            extra = f" of {summary['trials_planned']} planned"
        return f"{result.spec}: {label}, mean ± std over {n} trial{'s' if n != 1 else ''}{extra}"
    names = " vs ".join(r.spec for r in results) if len(results) <= 3 else f"{len(results)} specs"
    return f"{names}: {label}, mean ± std over trials"
