"""The resource guard and the choice of vectorizing, before anything is allocated."""

import pytest
import torch

from conftest import TINY, fake_factory, write_spec
from minispec.errors import MinispecError
from minispec.experiment import run_experiment
from minispec.experiment.planning import plan_run
from minispec.ir.cost import estimate_memory

BIG = TINY.replace("linear(8) | tanh", "linear(4096) | tanh | linear(4096) | tanh").replace("train=100", "train=100")


def test_a_trial_that_cannot_fit_is_refused_before_training(tmp_path):
    program = write_spec(tmp_path, BIG)
    log = []
    with pytest.raises(MinispecError) as caught:
        run_experiment(program, backend_factory=fake_factory(log=log), out_dir=tmp_path / "run",
                       trials=10_000, max_memory=64 * 1024**2)
    assert "needs about" in caught.value.message and "64.0 MiB" in caught.value.message
    assert log == []  # no model was built
    assert not (tmp_path / "run" / "trials").exists()


def test_vectorized_trials_are_chunked_to_the_budget(tmp_path):
    program = write_spec(tmp_path, TINY)
    one = estimate_memory(program, 1).total
    plan = plan_run(program, torch.device("cpu"), 10, True, 3 * one + 1, tmp_path)
    assert plan.vectorize and plan.chunk == 3
    assert "memory budget" in plan.reason


def test_asked_sequential_is_sequential(tmp_path):
    program = write_spec(tmp_path, TINY)
    plan = plan_run(program, torch.device("cpu"), 10, False, None, tmp_path)
    assert (plan.vectorize, plan.chunk) == (False, 1)


def test_automatic_choice_is_a_fixed_rule_of_the_spec(tmp_path):
    small = write_spec(tmp_path, TINY)
    plan = plan_run(small, torch.device("cpu"), 5, None, None, tmp_path)
    assert plan.vectorize and "overhead-bound" in plan.reason
    big = write_spec(tmp_path, BIG.replace("train=100", "train=1000"), "big.mdl")
    plan = plan_run(big, torch.device("cpu"), 5, None, None, tmp_path)
    assert not plan.vectorize and "compute-bound" in plan.reason
