"""The sweep figure marks diverged trials: a note beside a point that lost some, a
red x (or a "diverged" cell) for a point that lost all and so has no error to draw."""

import matplotlib.axes
import pytest

from minispec.render.sweep import SweepSeries, draw_sweep


@pytest.fixture
def texts(monkeypatch):
    """Every string the figure writes with Axes.text or Axes.annotate."""
    seen = []
    text, annotate = matplotlib.axes.Axes.text, matplotlib.axes.Axes.annotate

    def record_text(self, x, y, s, *args, **kwargs):
        seen.append(s)
        return text(self, x, y, s, *args, **kwargs)

    def record_annotation(self, s, *args, **kwargs):
        seen.append(s)
        return annotate(self, s, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "text", record_text)
    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", record_annotation)
    return seen


def test_one_key_notes_partly_and_wholly_diverged_points(tmp_path, texts):
    series = SweepSeries(keys=["lr"], labels=[["0.1", "0.5", "1"]],
                         mean={("0.1",): 0.07, ("0.5",): 0.05}, std={("0.1",): 0.03, ("0.5",): 0.02},
                         diverged={("0.5",): (48, 50), ("1",): (50, 50)})
    path = draw_sweep(series, tmp_path / "sweep.png", title="t")
    assert path.stat().st_size > 0
    assert "48/50 diverged" in texts and "50/50 diverged" in texts
    assert not any("0.1" in t for t in texts)  # a point without diverged trials gets no note


def test_two_keys_write_diverged_in_the_cell(tmp_path, texts):
    series = SweepSeries(keys=["lr", "momentum"], labels=[["0.1", "1"], ["0", "0.9"]],
                         mean={("0.1", "0"): 0.1, ("0.1", "0.9"): 0.2, ("1", "0"): 0.3},
                         std={("0.1", "0"): 0.0, ("0.1", "0.9"): 0.0, ("1", "0"): 0.0},
                         diverged={("1", "0"): (1, 4), ("1", "0.9"): (4, 4)})
    draw_sweep(series, tmp_path / "sweep.png", title="t")
    assert "diverged" in texts
    assert any(t.endswith("1/4 diverged") for t in texts)
