"""SIGTERM and SIGINT stop `minispec run` with a clear message (issue 15); the
folder keeps its finished trials and `--resume` completes it to the numbers
of an uninterrupted run. (SIGKILL: tests/cli/test_cli.py.) A second writer
into a folder that a run is writing is refused."""

import os
import signal
import subprocess
import sys
import time

import pytest

from minispec.errors import MinispecError
from minispec.experiment import RunFolder, load_run

SLOW = """\
spec slow
data disk(train=200, test=200)
net { out = x | linear(16) | tanh | linear(16) | tanh | linear(1) }
loss { out mse(target) }
train { optimizer adam(lr=0.02) batch 50 epochs 600 trials 4 }
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def command(spec, *args):
    return [sys.executable, "-m", "minispec.cli", "run", str(spec), "--no-vectorize", *map(str, args)]


def start_and_wait_for_a_trial(spec, folder):
    process = subprocess.Popen(command(spec, "--out", folder), env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (folder / "trials" / "trial_000.json").exists():
        assert time.time() < deadline and process.poll() is None, "the run ended before a trial finished"
        time.sleep(0.05)
    return process


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The spec, and its uninterrupted run (in this process: one thread, one trial at a time, as the command)."""
    import torch

    from minispec.backends import make_model
    from minispec.compiler import compile_file
    from minispec.experiment import run_experiment

    root = tmp_path_factory.mktemp("signals")
    spec = root / "slow.mdl"
    spec.write_text(SLOW)
    assert torch.get_num_threads() == 1  # tests/conftest.py
    whole = run_experiment(compile_file(spec), backend_factory=lambda p, s, d: make_model("torch", p, s, device=d),
                           out_dir=root / "whole", vectorize=False)
    return spec, whole


@pytest.mark.parametrize("signum, status, word", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                  (signal.SIGINT, 130, "interrupted")])
def test_a_signal_stops_the_run_cleanly_and_resume_completes_it(reference, tmp_path, signum, status, word):
    spec, whole = reference
    folder = tmp_path / "run"
    process = start_and_wait_for_a_trial(spec, folder)
    # while it runs, a second writer (here: this process) is refused
    with pytest.raises(MinispecError) as error:
        RunFolder.open(folder, whole.program, resume=True)
    assert "another minispec run is writing" in error.value.message
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0 or load_run(folder).summary.complete:
        pytest.skip("the run finished before the signal arrived (a loaded machine)")
    assert process.returncode == status, stderr
    assert word in stderr and "--resume" in stderr and "Traceback" not in stderr
    resumed = subprocess.run(command(spec, "--out", folder, "--resume"), env=ENV, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = load_run(folder)
    assert final.summary.complete and final.summary.test_error == whole.summary.test_error
    assert not list(folder.rglob("*.tmp"))
