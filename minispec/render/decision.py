"""Decision maps: a trained model's output over the square of its 2-D inputs.

    figure = decision_figure(maps, mean=False)
    plot_decision(maps, "runs/disk/decision.png", mean=False)

A `DecisionMap` holds what one trained trial says about the input square: its
class-1 score on a grid (read so that the model predicts class 1 exactly where
the score is above `level`), and its test points with the true labels and
whether the model got each right. The figure draws the score as colour, the
decision boundary (the contour at `level`) as a black line, and the test
points as dots (class 1 filled, class 0 hollow) in green when right and red
when wrong. Several maps give one panel each, or with `mean=True` one panel
of their mean score with the mean boundary thick and each trial's boundary
thin (test points differ per trial, so the mean panel draws none).

Nothing here imports torch: the maps are built by
`minispec.experiment.decision` from a run folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RIGHT = "#1a9850"
WRONG = "#d73027"
COLORMAP = "RdBu_r"  # low (class 0) blue, high (class 1) red


@dataclass(frozen=True)
class DecisionMap:
    """One trial's view of the input square.

    xs, ys: the grid's coordinates (ascending); score[i, j] is the score at
    (xs[j], ys[i]); level: the score at which the decision flips (class 1
    above it); points [N, 2], labels [N] (0/1) and right [N] (bool): the test
    set and whether each point was classified right; title names the panel.
    """

    xs: np.ndarray
    ys: np.ndarray
    score: np.ndarray
    level: float
    points: np.ndarray
    labels: np.ndarray
    right: np.ndarray
    title: str

    @property
    def test_error(self) -> float:
        return float(1.0 - self.right.mean()) if len(self.right) else math.nan


def decision_figure(maps: Sequence[DecisionMap], mean: bool = False, title: str | None = None):
    """A matplotlib Figure (Agg canvas, no pyplot state) of the maps: one panel
    per map, or one panel of their mean with `mean=True`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not maps:
        raise ValueError("decision_figure needs at least one map")
    panels = 1 if mean else len(maps)
    columns = min(panels, 4)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(3.4 * columns + 1.0, 3.3 * rows + 0.5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    low, high = _score_range(maps)
    image = None
    if mean:
        score = np.mean([m.score for m in maps], axis=0)
        first = maps[0]
        image = _draw_score(axes[0], first.xs, first.ys, score, low, high)
        for m in maps:
            _contour(axes[0], m.xs, m.ys, m.score, m.level, width=0.6, alpha=0.35)
        _contour(axes[0], first.xs, first.ys, score, first.level, width=2.0, alpha=1.0)
        errors = [m.test_error for m in maps]
        axes[0].set_title(f"mean of {len(maps)} trials (thin: each trial), "
                          f"test error {100 * np.mean(errors):.2f}%", fontsize=9)
    else:
        for ax, m in zip(axes, maps):
            image = _draw_score(ax, m.xs, m.ys, m.score, low, high)
            _contour(ax, m.xs, m.ys, m.score, m.level, width=1.6, alpha=1.0)
            _points(ax, m)
            ax.set_title(f"{m.title}: test error {100 * m.test_error:.2f}%", fontsize=9)
    for ax in axes[panels:]:
        ax.set_visible(False)
    for ax in axes[:panels]:
        ax.set_aspect("equal")
        ax.set_xlabel("x[0]", fontsize=8)
        ax.set_ylabel("x[1]", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=list(axes[:panels]), shrink=0.8, label="class-1 score")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_decision(maps: Sequence[DecisionMap], path: str | Path, mean: bool = False, title: str | None = None) -> Path:
    """Write the figure of `decision_figure` as a PNG (atomically) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = decision_figure(maps, mean=mean, title=title)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path


def _score_range(maps: Sequence[DecisionMap]) -> tuple[float, float]:
    """Colour limits centred on the decision level, so the boundary sits at the colormap's middle."""
    level = maps[0].level
    spread = max(float(np.max(np.abs(m.score - m.level))) for m in maps) or 1.0
    return level - spread, level + spread


def _draw_score(ax, xs, ys, score, low, high):
    return ax.pcolormesh(xs, ys, score, cmap=COLORMAP, vmin=low, vmax=high, shading="nearest", rasterized=True)


def _contour(ax, xs, ys, score, level, width, alpha):
    if score.min() < level < score.max():
        ax.contour(xs, ys, score, levels=[level], colors="black", linewidths=width, alpha=alpha)


def _points(ax, m: DecisionMap) -> None:
    for label, face in ((1, None), (0, "none")):
        for right, colour in ((True, RIGHT), (False, WRONG)):
            chosen = (m.labels == label) & (m.right == right)
            if chosen.any():
                ax.scatter(m.points[chosen, 0], m.points[chosen, 1], s=7 if right else 14, linewidths=0.7,
                           facecolors=colour if face is None else face, edgecolors=colour, zorder=3)
