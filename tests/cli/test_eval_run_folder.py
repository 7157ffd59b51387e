"""`minispec eval RUN_DIR` (issue 13): the run's recorded spec, data options and
overrides reproduce its test error trial by trial; `eval SPEC --weights` names
what differs; folders without weights give a clear message."""

import shutil
from pathlib import Path

from click.testing import CliRunner

from minispec.cli import main
from minispec.experiment import load_run

ROOT = Path(__file__).resolve().parents[2]
TINY = """\
spec tiny
data disk(train=200, test=200)
net { out = x | linear(16) | tanh | linear(1) }
loss { out mse(target) }
train { optimizer adam(lr=0.02) batch 50 epochs 3 trials 2 }
"""


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_eval_of_a_run_folder_reproduces_every_trial_with_the_recorded_overrides(tmp_path):
    spec = tmp_path / "tiny.mdl"
    spec.write_text(TINY)
    folder = tmp_path / "run"
    # overrides the spec file does not hold: eval must take them from the folder, not from the spec
    assert invoke("run", spec, "--set", "data.train=120", "--set", "data.test=150", "--epochs", "2",
                  "--out", folder).exit_code == 0
    run = load_run(folder)
    for backend in ("torch", "scratch"):
        result = invoke("eval", folder, "--backend", backend)
        assert result.exit_code == 0, result.output
        for trial in run.trials:
            assert f"trial {trial.trial:<3} test error {100 * trial.final.test_error:6.2f}%" in result.output
        assert "(differs)" not in result.output or backend == "scratch"
    one = invoke("eval", folder, "--trial", 1)
    assert one.exit_code == 0 and "trial 1 " in one.output and "trial 0 " not in one.output

    # the spec file itself differs from what the run trained: the note names the keys
    weights = folder / "weights" / "trial_000.safetensors"
    other = invoke("eval", spec, "--weights", weights)
    assert other.exit_code == 0
    assert "different resolved spec" in other.output
    for key in ("data.options.train", "data.options.test", "train.epochs"):
        assert key in other.output, other.output


def test_eval_of_a_folder_without_weights_is_a_clear_message(tmp_path):
    spec = tmp_path / "boom.mdl"
    spec.write_text(TINY.replace("adam(lr=0.02)", "sgd(lr=1e6)"))
    assert invoke("run", spec, "--out", tmp_path / "boom").exit_code == 0
    result = invoke("eval", tmp_path / "boom")
    assert result.exit_code == 2 and "only diverged trials" in result.output
    result = invoke("eval", tmp_path / "boom", "--trial", 0)
    assert result.exit_code == 2 and "diverged in epoch" in result.output
    result = invoke("eval", tmp_path / "boom", "--trial", 7)
    assert result.exit_code == 2 and "not finished" in result.output
    empty = tmp_path / "empty"
    shutil.copytree(tmp_path / "boom", empty)
    shutil.rmtree(empty / "trials")
    result = invoke("eval", empty)
    assert result.exit_code == 2 and "no finished trial" in result.output
    assert invoke("eval", spec).exit_code == 2  # a spec needs --weights
