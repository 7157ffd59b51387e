"""The decision-map figure, checked pixel by pixel on a map whose boundary is known."""

import numpy as np
import pytest

from minispec.render.decision import RIGHT, WRONG, DecisionMap, decision_figure, plot_decision


def vertical_map(title="hand-set"):
    """score = x[0] on [0, 1]^2, level 0.5: class 1 right of x[0] = 0.5.

    Two test points: (0.2, 0.8) labelled 1 (predicted 0: wrong), (0.8, 0.2) labelled 1 (right)."""
    xs = np.linspace(0, 1, 100)
    score = np.tile(xs, (100, 1))
    points = np.array([[0.2, 0.8], [0.8, 0.2]])
    labels = np.array([1, 1])
    right = (score[0, np.round(points[:, 0] * 99).astype(int)] > 0.5) == labels
    return DecisionMap(xs=xs, ys=xs, score=score, level=0.5, points=points, labels=labels, right=right, title=title)


def pixels(fig):
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)


def at(fig, image, ax, x, y):
    px, py = ax.transData.transform((x, y))
    return image[int(round(image.shape[0] - py)), int(round(px))]


def hex_rgb(colour):
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def test_a_known_map_draws_its_classes_boundary_and_points_where_they_are():
    m = vertical_map()
    assert m.right.tolist() == [False, True] and m.test_error == 0.5
    fig = decision_figure([m])
    image = pixels(fig)
    ax = fig.axes[0]
    low, high = at(fig, image, ax, 0.05, 0.5), at(fig, image, ax, 0.95, 0.5)
    assert low[2] > low[0] + 80, low          # class 0 side: blue
    assert high[0] > high[2] + 80, high       # class 1 side: red
    # the boundary: a dark line crossing x[0] = 0.5 at every height, nowhere else
    for y in (0.3, 0.5, 0.7):
        row = [at(fig, image, ax, x, y).sum() for x in np.linspace(0.3, 0.7, 81)]
        darkest = int(np.argmin(row))
        assert row[darkest] < 150 and abs(np.linspace(0.3, 0.7, 81)[darkest] - 0.5) <= 0.01
    assert np.abs(at(fig, image, ax, 0.2, 0.8) - hex_rgb(WRONG)).max() < 40
    assert np.abs(at(fig, image, ax, 0.8, 0.2) - hex_rgb(RIGHT)).max() < 40


def test_several_maps_give_one_panel_each_or_one_mean_panel(tmp_path):
    maps = [vertical_map("a"), vertical_map("b"), vertical_map("c")]
    panels = [ax for ax in decision_figure(maps).axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(panels) == 3
    mean = [ax for ax in decision_figure(maps, mean=True).axes if ax.get_label() != "<colorbar>"]
    assert len(mean) == 1 and "mean of 3 trials" in mean[0].get_title()
    path = plot_decision(maps, tmp_path / "deep" / "map.png", mean=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_map_is_an_error():
    with pytest.raises(ValueError):
        decision_figure([])
