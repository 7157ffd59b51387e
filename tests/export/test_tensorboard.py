"""`run --log tensorboard`: each trial's per-epoch errors and losses as
TensorBoard scalars, read back from the event files and compared with the
run folder's own records."""

import subprocess
import sys

import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from minispec.cli import main
from minispec.experiment.folder import load_run
from tests.conftest import ROOT
from tests.export.test_onnx import TINY


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder)).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_each_trial_logs_its_epochs_as_the_run_folder_records_them(write_spec, tmp_path):
    spec = write_spec(TINY.replace("epochs 2", "epochs 3"))
    result = CliRunner().invoke(main, ["run", str(spec), "--out", str(tmp_path / "r"), "--log", "tensorboard"])
    assert result.exit_code == 0, result.output
    for trial in load_run(tmp_path / "r").trials:
        logged = scalars(tmp_path / "r" / "tensorboard" / f"trial_{trial.trial:03d}")
        assert sorted(logged) == ["error/test", "error/train", "loss/test", "loss/train"]
        points = trial.records
        assert [step for step, _ in logged["error/test"]] == [1, 2, 3] == [round(p.epoch) for p in points]
        for tag, field, scale in (("error/test", "test_error", 100), ("error/train", "train_error", 100),
                                  ("loss/test", "test_loss", 1), ("loss/train", "train_loss", 1)):
            assert [value for _, value in logged[tag]] == pytest.approx(
                [scale * getattr(p, field) for p in points], rel=1e-6)


def test_without_the_extra_one_line_says_what_to_install(write_spec, tmp_path):
    blocked = ("import sys; sys.modules['torch.utils.tensorboard'] = None\nfrom minispec.cli import main\n"
               "main(sys.argv[1:], prog_name='minispec')")
    args = ["run", str(write_spec(TINY)), "--log", "tensorboard", "--out", str(tmp_path / "r")]
    result = subprocess.run([sys.executable, "-c", blocked, *args], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --log tensorboard needs the tensorboard package: "
                                     "pip install 'minispec[tensorboard]'")
    assert not (tmp_path / "r").exists()
