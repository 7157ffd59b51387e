"""Learning curves drawn from plain series: a line and a band per series.

    draw_bands([Band("saux", epochs, means, stds)], "curves.png", ylabel="test error (%)")

The caller (`minispec.experiment.plots`) turns runs into series: this module
knows nothing of run folders. Each band is a mean line and a shaded
mean ± spread; a dashed band shares the colour of the solid one before it
with the same `group`. Errors are drawn in percent (clipped to 0..100);
losses on a log scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Band:
    """One curve: `mean[i] ± spread[i]` at `x[i]`, drawn in colour number `group`."""

    label: str
    x: Sequence[float]
    mean: Sequence[float]
    spread: Sequence[float]
    group: int = 0
    dashed: bool = False


def draw_bands(bands: Sequence[Band], path: str | Path, *, ylabel: str, title: str, percent: bool = True,
               xlabel: str = "epoch", empty: str = "no finished trial to plot") -> Path:
    """Write a PNG of the bands; `percent`: values are fractions drawn in %,
    else they are drawn as they are on a log scale. Returns the path written."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scale = 100.0 if percent else 1.0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A bare Figure on the Agg canvas: no pyplot, so no global backend or figure state is touched.
    fig = Figure(figsize=(7.5, 4.6), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = [band for band in bands if len(band.x)]
    for band in drawn:
        color = colors[band.group % len(colors)]
        mean = [m * scale for m in band.mean]
        low = [(m - s) * scale for m, s in zip(band.mean, band.spread)]
        high = [(m + s) * scale for m, s in zip(band.mean, band.spread)]
        if percent:
            low = [max(v, 0.0) for v in low]
            high = [min(v, 100.0) for v in high]
        unit = "%" if percent else ""
        text = f"{band.label}, final {mean[-1]:.2f} ± {band.spread[-1] * scale:.2f}{unit}"
        ax.plot(band.x, mean, "--" if band.dashed else "-", color=color, linewidth=1.6, label=text)
        ax.fill_between(band.x, low, high, color=color, alpha=0.1 if band.dashed else 0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if not percent and drawn:
        ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    if percent:
        ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=11)
    if drawn:
        ax.legend(fontsize=8, loc="upper right", framealpha=0.85)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path
