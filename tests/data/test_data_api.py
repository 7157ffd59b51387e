"""describe/load agreement, option checking, seeding and stacking of minispec.data."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minispec.data import DATASETS, Dataset, Split, describe, load, stack
from minispec.errors import MinispecError

SMALL = {
    "mnist_pairs": {"train": 40, "test": 30},
    "mnist": {"train": 40, "test": 30},
    "disk": {"train": 40, "test": 30},
}


def _shapes(split: Split):
    inputs = {name: list(t.shape[1:]) for name, t in split.inputs.items()}
    targets = {name: list(t.shape[1:]) for name, t in split.targets.items()}
    return inputs, targets


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_describe_agrees_with_load(name):
    inputs, targets, classes = describe(name, SMALL[name])
    data = load(name, SMALL[name], seed=0)
    for split, n in ((data.train, 40), (data.test, 30)):
        assert len(split) == n
        assert _shapes(split) == (inputs, targets)
        assert all(t.dtype == torch.float32 for t in split.inputs.values())
        assert all(t.dtype == torch.long for t in split.targets.values())
        for target, count in classes.items():
            assert 0 <= split.targets[target].min() and split.targets[target].max() < count
    assert data.source


def test_describe_values():
    assert describe("mnist_pairs", {}) == (
        {"x": [2, 14, 14]},
        {"target": [], "classes": [2]},
        {"target": 2, "classes": 10},
    )
    assert describe("mnist", {}) == ({"x": [1, 28, 28]}, {"target": []}, {"target": 10})
    assert describe("mnist", {"flatten": True})[0] == {"x": [784]}
    assert describe("disk", {}) == ({"x": [2]}, {"target": []}, {"target": 2})


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(DATASETS)),
    train=st.integers(1, 60),
    test=st.integers(1, 60),
    flag=st.booleans(),
)
def test_describe_agrees_with_load_any_options(name, train, test, flag):
    options = {"train": train, "test": test}
    if name == "mnist":
        options["flatten"] = flag
    if name != "disk":
        options["normalize"] = flag
    inputs, targets, _ = describe(name, options)
    data = load(name, options, seed=train * 100 + test)
    assert (len(data.train), len(data.test)) == (train, test)
    assert _shapes(data.train) == (inputs, targets)
    assert _shapes(data.test) == (inputs, targets)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_same_seed_same_tensors_other_seed_differs(name):
    a = load(name, SMALL[name], seed=7)
    b = load(name, SMALL[name], seed=7)
    c = load(name, SMALL[name], seed=8)
    for side in ("train", "test"):
        sa, sb, sc = getattr(a, side), getattr(b, side), getattr(c, side)
        for key in sa.inputs:
            assert torch.equal(sa.inputs[key], sb.inputs[key])
            assert not torch.equal(sa.inputs[key], sc.inputs[key])
        for key in sa.targets:
            assert torch.equal(sa.targets[key], sb.targets[key])


def test_draws_do_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load("mnist_pairs", SMALL["mnist_pairs"], seed=1)
    load("disk", SMALL["disk"], seed=1)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(5)
    a = load("disk", SMALL["disk"], seed=1)
    torch.manual_seed(6)
    b = load("disk", SMALL["disk"], seed=1)
    assert torch.equal(a.train.inputs["x"], b.train.inputs["x"])


@pytest.mark.parametrize(
    "name, options, words",
    [
        ("mnist_pairs", {"trian": 10}, ["no option `trian`", "did you mean `train`"]),
        ("mnist", {"flaten": True}, ["no option `flaten`", "did you mean `flatten`"]),
        ("disk", {"normalize": True}, ["no option `normalize`", "disk(train=1000, test=1000)"]),
        ("mnist_pairs", {"train": 0}, ["positive", "got 0"]),
        ("mnist_pairs", {"test": -5}, ["positive", "got -5"]),
        ("disk", {"train": 2.5}, ["positive", "2.5"]),
        ("disk", {"train": True}, ["positive"]),
        ("disk", {"train": "100"}, ["positive"]),
        ("mnist", {"train": 0}, ["positive"]),
        ("mnist", {"flatten": "yes"}, ["true or false"]),
        ("mnist_pairs", {"normalize": 1}, ["true or false"]),
        ("mnsit", {}, ["unknown data set `mnsit`", "did you mean `mnist`"]),
    ],
)
def test_bad_options_are_one_clear_error(name, options, words):
    for call in (lambda: describe(name, options), lambda: load(name, options, seed=0)):
        with pytest.raises(MinispecError) as caught:
            call()
        text = caught.value.render()
        for word in words:
            assert word in text
        assert caught.value.hint


def test_integral_float_sizes_are_accepted():
    assert len(load("disk", {"train": 1e2, "test": 3.0}, seed=0).train) == 100


def test_bad_seed():
    with pytest.raises(MinispecError):
        load("disk", {}, seed="one")
    with pytest.raises(MinispecError):
        load("disk", {}, seed=-1)


def test_too_many_pairs_on_embedded_digits_names_the_limit():
    assert len(load("mnist_pairs", {"train": 1250, "test": 1250}, seed=0).test) == 1250
    with pytest.raises(MinispecError) as caught:
        load("mnist_pairs", {"train": 1251}, seed=0)
    assert "1250" in caught.value.message
    assert "--data-root" in caught.value.hint
    with pytest.raises(MinispecError) as caught:
        load("mnist", {"test": 2501}, seed=0)
    assert "2500" in caught.value.message


def test_stack_adds_a_trials_axis():
    draws = [load("mnist_pairs", SMALL["mnist_pairs"], seed=s) for s in range(3)]
    stacked = stack(draws)
    assert isinstance(stacked, Dataset)
    assert stacked.train.inputs["x"].shape == (3, 40, 2, 14, 14)
    assert stacked.test.targets["classes"].shape == (3, 30, 2)
    assert stacked.train.trials == 3 and len(stacked.train) == 40
    for t, draw in enumerate(draws):
        assert torch.equal(stacked.train.inputs["x"][t], draw.train.inputs["x"])
        assert torch.equal(stacked.test.targets["target"][t], draw.test.targets["target"])
    assert stacked.source == draws[0].source


def test_stack_rejects_mismatched_or_empty():
    with pytest.raises(MinispecError):
        stack([])
    a = load("disk", {"train": 10}, seed=0)
    b = load("disk", {"train": 11}, seed=0)
    with pytest.raises(MinispecError):
        stack([a, b])
    with pytest.raises(MinispecError):
        stack([stack([a, a])])


def test_registry_describes_every_data_set():
    assert set(DATASETS) == {"mnist_pairs", "mnist", "disk"}
    for name, info in DATASETS.items():
        assert info.name == name and info.summary and info.inputs and info.targets
        assert {"train", "test"} <= set(info.option_names())
