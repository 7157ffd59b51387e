"""benchmarks/phases.py keeps running: one tiny command, its phases printed (their seconds are never asserted)."""

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_the_phases_benchmark_times_a_run_and_its_folder(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks/phases.py"), "run", str(ROOT / "specs/disk.mdl"),
                             "--trials", "2", "--epochs", "2", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "exit 0" in result.stderr and (out / "summary.json").is_file()
    seconds = dict(re.findall(r"^\s+(\S[^\d]*?)\s+(\d+\.\d+) s", result.stderr, flags=re.M))
    assert float(seconds["training loop"]) > 0 and float(seconds["training steps"]) > 0
    assert float(seconds["folder: finish (csv, png)"]) > 0
