"""Whole error messages, as a user reads them, kept in a golden file.

Regenerate after a deliberate change of wording: MINISPEC_REGOLD=1 pytest tests/lang/test_golden_errors.py
"""

import os
from pathlib import Path

from click.testing import CliRunner

from minispec.cli import main

GOLDEN = Path(__file__).parent / "golden" / "errors.txt"
HEADER = "spec t\ndata mnist_pairs(train=100, test=100)\n"
LOSS = "loss { out cross_entropy(target) }\n"
SPECS = {
    "unknown layer": HEADER + "net { out = x | flatten | linaer(2) }\n" + LOSS,
    "shape mismatch": HEADER + "net {\n    a = x[0] | conv2d(8, 3)\n    out = a | linear(2)\n}\n" + LOSS,
    "shared instance, two shapes": HEADER + "net {\n    enc = instance { flatten | linear(8) }\n"
    "    a = enc(x[0])\n    b = enc(x)\n    out = concat(a, b) | linear(2)\n}\n" + LOSS,
    "missing paren": HEADER + "net { out = x | flatten | linear(2 }\n" + LOSS,
    "output does not fit the loss": HEADER + "net { out = x | flatten | linear(1) }\n" + LOSS,
}


def render_all(tmp_path) -> str:
    chunks = []
    for name, text in SPECS.items():
        path = tmp_path / "spec.mdl"
        path.write_text(text)
        result = CliRunner().invoke(main, ["check", str(path)])
        chunks.append(f"== {name} (exit {result.exit_code})\n" + result.output.replace(str(path), "spec.mdl"))
    return "\n".join(chunks)


def test_error_messages_match_the_golden_file(tmp_path):
    text = render_all(tmp_path)
    if os.environ.get("MINISPEC_REGOLD"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
