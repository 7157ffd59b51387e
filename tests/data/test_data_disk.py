"""The disk data set of Project 2."""

import math

import torch

from minispec.data import load


def test_disk_points_and_labels():
    data = load("disk", {}, seed=0)
    for split in (data.train, data.test):
        x, target = split.inputs["x"], split.targets["target"]
        assert x.shape == (1000, 2) and x.dtype == torch.float32
        assert target.shape == (1000,) and target.dtype == torch.long
        assert 0 <= x.min() and x.max() <= 1
        inside = (x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.5) ** 2 < 1 / (2 * math.pi)
        assert torch.equal(target, inside.long())
    assert not torch.equal(data.train.inputs["x"], data.test.inputs["x"])


def test_disk_has_area_one_half():
    data = load("disk", {"train": 20000, "test": 1}, seed=1)
    fraction = data.train.targets["target"].float().mean().item()
    assert abs(fraction - 0.5) < 0.02
