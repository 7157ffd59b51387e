"""The evaluation after an epoch: errors on both splits, the loss where a point reads it."""

import pytest
import torch

from minispec import data as datasets
from minispec.backends import make_model
from minispec.backends.weights import initial_state, trial_generator
from minispec.experiment.training import evaluate, on_device
from minispec.ir import cost


@pytest.fixture
def model_and_splits(tiny):
    program = tiny
    draw = datasets.stack([datasets.load(program.data.name, dict(program.data.options), seed=s) for s in (0, 1)])
    splits = {name: on_device(program, split, torch.device("cpu")) for name, split in (("train", draw.train), ("test", draw.test))}
    states = [initial_state(program, trial_generator(0, k)) for k in range(2)]
    return program, make_model("scratch", program, states, "cpu"), splits


def by_hand(model, split):
    """Errors and MSE of the whole split in one call, per replica."""
    out = model.predict(split["inputs"])["out"][..., 0]
    target = split["raw"]["target"].to(out.dtype)
    errors = ((out > 0.5).long() != split["raw"]["target"]).double().mean(dim=1)
    return errors.tolist(), ((out - target) ** 2).double().mean(dim=1).tolist()


def test_test_loss_only_by_default_and_both_when_asked(model_and_splits):
    program, model, splits = model_and_splits
    default = evaluate(model, program, splits, 2)
    assert "loss" not in default["train"] and len(default["test"]["loss"]) == 2
    both = evaluate(model, program, splits, 2, loss_on=("train", "test"))
    for name in ("train", "test"):
        errors, losses = by_hand(model, splits[name])
        assert [e[0] for e in both[name]["errors"]] == pytest.approx(errors)
        assert both[name]["loss"] == pytest.approx(losses, rel=1e-5)
    assert default["test"] == both["test"]


def test_chunked_calls_sum_to_the_whole(model_and_splits, monkeypatch):
    program, model, splits = model_and_splits
    whole = evaluate(model, program, splits, 2, loss_on=("train", "test"))
    monkeypatch.setitem(cost.EVAL_CALL_SAMPLES, "cpu", 30)  # 100 samples: calls of 30, 30, 30 and 10
    chunked = evaluate(model, program, splits, 2, loss_on=("train", "test"))
    assert chunked["train"]["errors"] == whole["train"]["errors"]
    assert chunked["test"]["loss"] == pytest.approx(whole["test"]["loss"], rel=1e-6)
