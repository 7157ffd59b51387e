"""benchmarks/layers.py keeps running: a few steps of SAUX timed per layer (the microseconds are
never asserted)."""

import re
import subprocess
import sys

from tests.conftest import ROOT


def layers(*args: str) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks/layers.py"), *args],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_layer_of_a_saux_step_is_timed():
    out = layers("--spec", "saux", "--steps", "3")
    timed = dict(re.findall(r"^\s+(\S.*?)\s+(\d+) us", out, flags=re.M))
    assert any(label.startswith("Conv2d backward (50, 64, 4, 4)") for label in timed)
    assert any(label.startswith("MaxPool2d forward (50, 32, 12, 12)") for label in timed)
    total = re.search(r"the step\s+(\d+) us\s+\(layers (\d+), the rest (-?\d+)\)", out)
    assert total and int(total[1]) >= int(total[2]) > 0

