"""Trial k of a vectorized run equals trial k run alone, on the shipped disk,
SAUX and CAUX specs and a dropout spec, in both backends (small data, few
epochs): each trial draws its dropout masks from its own generator."""

import pytest

from minispec.backends import make_model
from minispec.compiler import compile_file
from minispec.experiment import run_experiment
from tests.conftest import ROOT

SMALL = ["data.train=100", "data.test=100", "epochs=2", "batch=25", "trials=2"]


def factory(backend):
    def make(program, states, device, generators=None):
        return make_model(backend, program, states, device, generators=generators)

    return make


@pytest.mark.parametrize("backend", ["torch", "scratch"])
@pytest.mark.parametrize("spec", ["disk", "saux", "caux", "ws_aux_bn_dropout"])
def test_vectorized_trials_end_where_sequential_ones_do(spec, backend, tmp_path):
    program = compile_file(ROOT / f"specs/{spec}.mdl", SMALL)
    alone = run_experiment(program, backend_factory=factory(backend), out_dir=tmp_path / "alone", vectorize=False)
    together = run_experiment(program, backend_factory=factory(backend), out_dir=tmp_path / "together", vectorize=True)
    assert together.trials[0].chunk == [0, 1]
    for a, b in zip(alone.trials, together.trials):
        # the same data, weights and batch order: equal up to float32 rounding
        assert b.records[0].train_loss == pytest.approx(a.records[0].train_loss, rel=1e-4)
        assert b.final.test_error == pytest.approx(a.final.test_error, abs=0.011)
