"""The resource guard and the choice of vectorizing, before anything is allocated."""

from pathlib import Path

import pytest
import torch

from conftest import TINY, fake_factory, write_spec
from minispec.errors import MinispecError
from minispec.experiment import run_experiment
from minispec.experiment.planning import plan_run
from minispec.compiler import compile_file
from minispec.ir.cost import estimate_memory

SPECS = Path(__file__).resolve().parents[2] / "specs"

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
    one = estimate_memory(program, 1)
    plan = plan_run(program, torch.device("cpu"), 10, True, one.working + 3 * (one.total - one.working) + 1, tmp_path)
    assert plan.vectorize and plan.chunk == 3
    assert "memory budget" in plan.reason


def test_asked_sequential_is_sequential(tmp_path):
    program = write_spec(tmp_path, TINY)
    plan = plan_run(program, torch.device("cpu"), 10, False, None, tmp_path)
    assert (plan.vectorize, plan.chunk) == (False, 1)


def test_automatic_choice_is_a_fixed_rule_of_the_spec(tmp_path):
    small = write_spec(tmp_path, TINY)
    plan = plan_run(small, torch.device("cpu"), 5, None, None, tmp_path)
    assert plan.vectorize and "MFLOP per trial" in plan.reason
    big = write_spec(tmp_path, BIG.replace("train=100", "train=1000").replace("batch 20", "batch 100"), "big.mdl")
    plan = plan_run(big, torch.device("cpu"), 5, None, None, tmp_path)
    assert not plan.vectorize and "GFLOP per trial" in plan.reason


@pytest.mark.parametrize("name, vectorize", [("disk", True), ("mnist_mlp", True), ("saux", True),
                                             ("ws_aux_bn_dropout", True), ("resnet", False)])
def test_the_cpu_vectorizes_every_shipped_spec_but_the_resnet(name, vectorize, tmp_path):
    """The measured rule (docs/performance.md): the ResNet's 22 GFLOP steps run one trial at a time."""
    program = compile_file(SPECS / f"{name}.mdl")
    assert plan_run(program, torch.device("cpu"), 5, None, None, tmp_path).vectorize is vectorize
