"""A last training batch of one sample under batchnorm (issue 16): merged into
the batch before it, the same way in both backends; batch 1 is refused."""

import pytest
from click.testing import CliRunner

from conftest import write_spec
from minispec.backends import make_model
from minispec.cli import main
from minispec.errors import MinispecError
from minispec.experiment import run_experiment
from minispec.experiment.training import batch_bounds

BN = """\
spec bn
data disk(train=41, test=50)
net { out = x | linear(8) | batchnorm | tanh | linear(1) }
loss { out mse(target) }
train { optimizer sgd(lr=0.1) batch 20 epochs 2 trials 1 }
"""


def test_batch_bounds():
    assert batch_bounds(41, 20, False) == [(0, 20), (20, 40), (40, 41)]
    assert batch_bounds(41, 20, True) == [(0, 20), (20, 41)]
    assert batch_bounds(42, 20, True) == [(0, 20), (20, 40), (40, 42)]
    assert batch_bounds(1, 20, True) == [(0, 1)]


@pytest.mark.parametrize("backend", ["torch", "scratch"])
def test_a_last_batch_of_one_trains_in_both_backends(backend, tmp_path):
    program = write_spec(tmp_path, BN, "bn.mdl")
    sizes = []

    def factory(program, states, device, generators=None):
        model = make_model(backend, program, states, device=device, generators=generators)
        step = model.train_step

        def counted(inputs, targets):
            sizes.append(inputs["x"].shape[1])
            return step(inputs, targets)

        model.train_step = counted
        return model

    result = run_experiment(program, backend_factory=factory, out_dir=tmp_path / "run")
    assert sizes == [20, 21] * 2
    assert result.trials[0].final is not None and result.trials[0].records[-1].step == 4


def test_batch_one_under_batchnorm_is_refused_by_run_and_by_check_smoke(tmp_path):
    program = write_spec(tmp_path, BN.replace("batch 20", "batch 1"), "bn1.mdl")
    with pytest.raises(MinispecError) as error:
        run_experiment(program, backend_factory=make_model, out_dir=tmp_path / "run")
    assert "batch statistics" in error.value.message
    result = CliRunner().invoke(main, ["check", str(tmp_path / "bn1.mdl"), "--smoke"])
    assert result.exit_code == 2 and "batch statistics" in result.output and "Traceback" not in result.output
