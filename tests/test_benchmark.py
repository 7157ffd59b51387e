"""benchmarks/trials.py keeps running: a tiny version, end to end (its figures are never asserted)."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_the_benchmark_runs_and_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "benchmarks/trials.py"), "--quick", "--cases", "disk", "--trials", "2",
               "--epochs", "1", "--steps", "2", "--choice", "disk", "--choice-trials", "2", "--choice-epochs", "1",
               "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    paths = {(run["path"], run["trials"]) for run in report["runs"]}
    assert paths == {("plain", 2), ("torch seq", 2), ("torch vec", 2), ("scratch seq", 2), ("scratch vec", 2)}
    assert all(run["seconds"] > 0 and run["speedup_vs_plain"] > 0 for run in report["runs"])
    assert set(report["one_trial_step"]["disk"]["seconds_per_step"]) == {"plain", "torch", "scratch"}
    (choice,) = report["choice"]
    assert choice["spec"] == "disk" and choice["auto_vectorizes"] is True
    assert "picks the faster?" in result.stdout and "vs plain" in result.stdout
