"""The framework's example: docs/framework.md shows examples/disk_scratch.py, and it learns the disk."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .helpers import ROOT

EXAMPLE = ROOT / "examples" / "disk_scratch.py"


def test_docs_show_the_example_file():
    doc = (ROOT / "docs" / "framework.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks
    assert len(EXAMPLE.read_text(encoding="utf-8").splitlines()) < 30


def test_example_trains_the_disk_network_below_ten_percent_test_error():
    # one thread: tiny matrices, and no spinning against other test processes
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    train = float(re.search(r"train error ([\d.]+)%", result.stdout).group(1))
    test = float(re.search(r"test error ([\d.]+)%", result.stdout).group(1))
    assert test < 10.0 and train < 10.0, result.stdout
