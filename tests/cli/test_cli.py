"""The commands end to end, as a user runs them, on a tiny disk spec."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from minispec.cli import main
from minispec.experiment import load_run

TINY = """\
spec tiny
data disk(train=200, test=200)
net { out = x | linear(16) | tanh | linear(16) | tanh | linear(1) }
loss { out mse(target) }
train { optimizer adam(lr=0.02) batch 50 epochs 4 trials 3 }
"""


@pytest.fixture
def spec(write_spec):
    return write_spec(TINY, "tiny.mdl")


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def summary_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("tiny "))


def test_run_twice_gives_the_same_table_and_a_complete_folder(spec, tmp_path):
    first = invoke("run", spec, "--out", tmp_path / "a")
    second = invoke("run", spec, "--out", tmp_path / "b")
    assert first.exit_code == 0, first.output
    assert summary_line(first.output).split()[:4] == summary_line(second.output).split()[:4]
    folder = tmp_path / "a"
    for name in ("program.json", "spec_hash.txt", "summary.json", "curves.csv", "curves.png"):
        assert (folder / name).stat().st_size > 0, name
    assert len(list((folder / "weights").glob("*.safetensors"))) == 3
    again = invoke("run", spec, "--out", folder)
    assert again.exit_code == 2 and "already holds a run" in again.output


def test_eval_matches_the_recorded_error_in_both_backends(spec, tmp_path):
    assert invoke("run", spec, "--out", tmp_path / "r", "--backend", "scratch").exit_code == 0
    recorded = load_run(tmp_path / "r").trials[2].final.test_error
    for backend in ("torch", "scratch"):
        result = invoke("eval", spec, "--weights", tmp_path / "r/weights/trial_002.safetensors", "--backend", backend)
        assert result.exit_code == 0, result.output
        assert f"test error {100 * recorded:6.2f}%" in result.output


def test_eval_refuses_a_pickle_that_would_run_code(spec, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle

    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps(Exploit()))
    result = invoke("eval", spec, "--weights", bad)
    assert result.exit_code == 2 and "not a valid safetensors" in result.output
    assert not marker.exists()


def test_verify_passes_and_reports(spec):
    result = invoke("verify", spec)
    assert result.exit_code == 0, result.output
    assert "tensors agree" in result.output


def test_cuda_absent_is_one_clear_error(spec, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = invoke("run", spec, "--device", "cuda", "--out", tmp_path / "c")
    assert result.exit_code == 2
    assert result.output.startswith("error: --device cuda was asked for")


def test_check_smoke_and_compile_outputs(spec, tmp_path):
    result = invoke("check", spec, "--smoke")
    assert result.exit_code == 0 and "Total trainable parameters: 337" in result.output
    assert "smoke: one forward and backward step ran" in result.output
    module = tmp_path / "model.py"
    assert invoke("compile", spec, "--emit", "torch", "-o", module).exit_code == 0
    assert "class Tiny(nn.Module)" in module.read_text()
    ir = json.loads(invoke("compile", spec, "--emit", "ir").output)
    assert ir["name"] == "tiny" and ir["train"]["epochs"] == 4


def test_a_killed_run_keeps_finished_trials_and_resumes_to_the_same_numbers(spec, tmp_path):
    slow = spec.parent / "slow.mdl"
    slow.write_text(TINY.replace("spec tiny", "spec slow").replace("epochs 4", "epochs 60"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "minispec.cli", "run", str(slow), "--no-vectorize"]
    whole = subprocess.run([*command, "--out", str(tmp_path / "whole")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert whole.returncode == 0, whole.stderr
    folder = tmp_path / "killed"
    process = subprocess.Popen([*command, "--out", str(folder)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not list((folder / "trials").glob("trial_000.json")) if (folder / "trials").exists() else True:
        assert time.time() < deadline and process.poll() is None, "the run ended before a trial finished"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = load_run(folder).summary
    on_disk = len(list((folder / "trials").glob("trial_*.json")))
    # the trial files are the record; the summary is rewritten after each and may lag one behind
    assert 1 <= on_disk < 3 and on_disk - 1 <= partial.trials_finished <= on_disk
    assert not partial.complete
    resumed = subprocess.run([*command, "--out", str(folder), "--resume"], env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = load_run(folder).summary
    reference = load_run(tmp_path / "whole").summary
    assert final.complete and final.test_error == reference.test_error


def test_a_diverging_run_is_recorded_and_the_command_ends_cleanly(write_spec, tmp_path):
    boom = write_spec(TINY.replace("spec tiny", "spec boom").replace("adam(lr=0.02)", "sgd(lr=1e6)"), "boom.mdl")
    result = invoke("run", boom, "--out", tmp_path / "boom")
    assert result.exit_code == 0, result.output
    run = load_run(tmp_path / "boom")
    assert run.summary.trials_diverged == 3 and run.summary.test_error.n == 0
    assert run.summary.diverged == [0, 1, 2]
    assert run.trials[0].diverged and run.trials[0].diverged_epoch is not None
    assert "3 diverged" in result.output


def test_plot_commands_redraw_from_run_folders(spec, tmp_path):
    assert invoke("run", spec, "--out", tmp_path / "r").exit_code == 0
    (tmp_path / "r/curves.png").unlink()
    assert invoke("plot", "curves", tmp_path / "r").exit_code == 0
    assert (tmp_path / "r/curves.png").stat().st_size > 1000
    compared = invoke("plot", "compare", tmp_path / "r", tmp_path / "r", "-o", tmp_path / "c.png")
    assert compared.exit_code == 0 and "1.000" in compared.output and (tmp_path / "c.png").exists()
    recorded = json.loads((tmp_path / "r/trials/trial_001.json").read_text())["final"]["test_error"]
    drawn = invoke("plot", "decision", tmp_path / "r", "--trial", 1, "--backend", "scratch")
    assert drawn.exit_code == 0, drawn.output
    assert f"tiny, trial 1: test error {100 * recorded:.2f}%" in drawn.output
    assert (tmp_path / "r/decision.png").stat().st_size > 1000
    missing = invoke("plot", "decision", tmp_path / "r", "--trial", 9)
    assert missing.exit_code == 2 and "no finished trial 9" in missing.output
