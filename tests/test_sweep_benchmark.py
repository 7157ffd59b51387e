"""benchmarks/sweep.py keeps running: a tiny version, end to end (its figures are never asserted)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_the_sweep_benchmark_runs_and_writes_its_figures(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks/sweep.py"), "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report["seconds"]) == {"sweep", "runs", "plain"} and all(s > 0 for s in report["seconds"].values())
    # the sweep trains the very trials the runs train: the same mean errors up to float rounding
    for lr, mean in report["mean_test_error"]["runs"].items():
        assert abs(report["mean_test_error"]["sweep"][lr] - mean) < 0.011
