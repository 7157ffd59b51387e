"""The sweep figure: test error against the swept values, from plain series.

    one key     mean test error against the value, a band of ± one std over trials
                (a log axis when the values are positive numbers spanning 10x or more)
    two keys    a heatmap of the mean test error, each cell labelled mean ± std
                (a scatter coloured by error when the points do not fill a grid: random search)
    more keys   one line per combination of the other keys against the first key

A point with diverged trials is marked: "k/n diverged" beside it, and a
point whose every trial diverged (it has no error to draw) is a red x at the
top of the plot, or "diverged" in its heatmap cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from pathlib import Path


@dataclass(frozen=True)
class SweepSeries:
    """What the sweep plot draws: plain numbers, no run folders."""

    keys: list[str]
    labels: list[list[str]]  # the values of each key, in order of first appearance
    mean: dict[tuple[str, ...], float]  # point values -> mean test error (fraction)
    std: dict[tuple[str, ...], float]
    diverged: dict[tuple[str, ...], tuple[int, int]] = field(default_factory=dict)  # -> (diverged, trials)



def draw_sweep(series: SweepSeries, path: str | Path, *, title: str) -> Path:
    """Write the PNG; returns its path."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7.5, 4.8), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    keys, labels = series.keys, series.labels
    full_grid = len(set(series.mean) | set(series.diverged)) == len(list(product(*labels)))
    if not series.mean:
        ax.text(0.5, 0.5, "no finished trial to plot", ha="center", va="center", transform=ax.transAxes)
    elif len(keys) == 2 and full_grid:
        _heatmap(fig, ax, series)
    elif len(keys) == 2:
        _scatter(fig, ax, series)
    else:
        others = list(product(*labels[1:]))
        positions, numeric = _positions(labels[0])
        for g, rest in enumerate(others):
            points = [(x,) + rest for x in labels[0] if (x,) + rest in series.mean]
            if not points:
                continue
            x = [positions[labels[0].index(p[0])] for p in points]
            mean = [100 * series.mean[p] for p in points]
            std = [100 * series.std[p] for p in points]
            label = ", ".join(f"{k}={v}" for k, v in zip(keys[1:], rest)) or "mean ± std over trials"
            color = colors[g % len(colors)]
            ax.plot(x, mean, "o-", color=color, linewidth=1.6, label=label)
            ax.fill_between(x, [max(m - s, 0) for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=color, alpha=0.2, linewidth=0)
        _mark_diverged(ax, series, positions)
        if numeric and _spans_decades(labels[0]):
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(labels[0])), labels[0], rotation=20, fontsize=8)
        ax.set_xlabel(keys[0])
        ax.set_ylabel("test error (%)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, framealpha=0.85)
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path


def _heatmap(fig, ax, series: SweepSeries) -> None:
    import math

    rows, cols = series.labels
    grid = [[100 * series.mean.get((r, c), math.nan) for c in cols] for r in rows]
    image = ax.imshow(grid, cmap="viridis_r", aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            diverged = _diverged_note(series, (r, c))
            if (r, c) in series.mean:
                ax.text(j, i, f"{100 * series.mean[(r, c)]:.2f}\n± {100 * series.std[(r, c)]:.2f}"
                        + (f"\n{diverged}" if diverged else ""), ha="center", va="center", fontsize=7,
                        bbox={"facecolor": "white", "alpha": 0.6, "linewidth": 0, "pad": 1.5})
            elif diverged:
                ax.text(j, i, "diverged", ha="center", va="center", fontsize=7, color="red")
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel(series.keys[1])
    ax.set_ylabel(series.keys[0])
    fig.colorbar(image, ax=ax, label="mean test error (%)")


def _scatter(fig, ax, series: SweepSeries) -> None:
    points = list(series.mean)
    x = [float(p[1]) for p in points]
    y = [float(p[0]) for p in points]
    image = ax.scatter(x, y, c=[100 * series.mean[p] for p in points], cmap="viridis_r", s=40)
    lost = [p for p in series.diverged if p not in series.mean]
    if lost:
        ax.scatter([float(p[1]) for p in lost], [float(p[0]) for p in lost], marker="x", color="red", s=40,
                   label="every trial diverged")
        ax.legend(fontsize=8, framealpha=0.85)
        x, y = x + [float(p[1]) for p in lost], y + [float(p[0]) for p in lost]
    for axis_values, setter in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if min(axis_values) > 0 and max(axis_values) / min(axis_values) >= 10:
            setter("log")
    ax.set_xlabel(series.keys[1])
    ax.set_ylabel(series.keys[0])
    fig.colorbar(image, ax=ax, label="mean test error (%)")


def _diverged_note(series: SweepSeries, point: tuple[str, ...]) -> str:
    """"k/n diverged" for a point with diverged trials, else ""."""
    if point not in series.diverged:
        return ""
    diverged, trials = series.diverged[point]
    return f"{diverged}/{trials} diverged"


def _mark_diverged(ax, series: SweepSeries, positions: list[float]) -> None:
    """On the line plot: the note beside a point with diverged trials; a red x at
    the top for a point whose every trial diverged."""
    first = series.labels[0]
    for point in series.diverged:
        x = positions[first.index(point[0])]
        if point in series.mean:
            ax.annotate(_diverged_note(series, point), (x, 100 * series.mean[point]), textcoords="offset points",
                        xytext=(4, 6), fontsize=7, color="red")
        else:
            ax.plot([x], [0.96], "x", color="red", markersize=8, transform=ax.get_xaxis_transform())
            ax.annotate(_diverged_note(series, point), (x, 0.96), xycoords=ax.get_xaxis_transform(),
                        textcoords="offset points", xytext=(0, -12), ha="center", fontsize=7, color="red")


def _positions(values: list[str]) -> tuple[list[float], bool]:
    """Numeric values as themselves, anything else as 0, 1, 2, ..."""
    try:
        return [float(v) for v in values], True
    except ValueError:
        return [float(i) for i in range(len(values))], False


def _spans_decades(values: list[str]) -> bool:
    numbers = [float(v) for v in values]
    return min(numbers) > 0 and max(numbers) / min(numbers) >= 10
