"""benchmarks/layers.py keeps running: a few steps of SAUX timed per layer (the microseconds are
never asserted)."""

import re
import subprocess
import sys

from tests.conftest import ROOT


def run_layers(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks/layers.py"), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def layers(*args: str) -> str:
    result = run_layers(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_layer_of_a_saux_step_is_timed():
    out = layers("--spec", "saux", "--steps", "3")
    timed = dict(re.findall(r"^\s+(\S.*?)\s+(\d+) us", out, flags=re.M))
    assert any(label.startswith("Conv2d backward (50, 64, 4, 4)") for label in timed)
    assert any(label.startswith("MaxPool2d forward (50, 32, 12, 12)") for label in timed)
    total = re.search(r"the step\s+(\d+) us\s+\(layers (\d+), the rest (-?\d+)\)", out)
    assert total and int(total[1]) >= int(total[2]) > 0


def test_against_a_checkout_times_both_steps_taking_turns():
    """Against this very checkout: every layer class is switched, no file differs, and
    the ratio of the two (identical) steps is printed."""
    out = layers("--spec", "disk", "--trials", "2", "--against", str(ROOT), "--rounds", "4")
    assert re.search(r"its Linear, Tanh in place of this checkout's; files that differ: none", out)
    ratio = re.search(r"/ this checkout: (\d+\.\d+), median of 4 blocks of 4 steps", out)
    assert ratio and float(ratio[1]) > 0


def test_against_a_folder_that_is_no_checkout_is_a_usage_error(tmp_path):
    result = run_layers("--against", str(tmp_path))
    assert result.returncode == 2
    assert "no minispec/scratch/ there" in result.stderr
