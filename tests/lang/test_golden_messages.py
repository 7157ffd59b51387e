"""The messages of issue 9 that used to mislead, whole, as a user reads them, in a golden file.

Regenerate after a deliberate change of wording: MINISPEC_REGOLD=1 pytest tests/lang/test_golden_messages.py
"""

import os
from pathlib import Path

from click.testing import CliRunner

from minispec.cli import main

GOLDEN = Path(__file__).parent / "golden" / "messages.txt"
HEADER = "spec t\ndata mnist_pairs(train=100, test=100)\n"
DISK = "spec t\ndata disk(train=100, test=100)\n"
LOSS = "loss { out cross_entropy(target) }\n"
GOOD = HEADER + "net { out = x | flatten | linear(2) }\n" + LOSS
# name -> (command and options, {file name: text}); files are given to the command in this order
CASES = {
    "unclosed net brace": (["check"], {"a.mdl": HEADER + "net {\n    out = x | flatten | linear(2)\n\n" + LOSS}),
    "report of a node without a loss": (["check", "--set", "report=nosuch"], {"a.mdl": HEADER + (
        "net {\n    stem = x | flatten | linear(8)\n    out = stem | linear(2)\n    aux = stem | linear(2)\n}\n"
        "loss {\n    out cross_entropy(target)\n    aux cross_entropy(target)\n}\n")}),
    "check every file": (["check"], {"a.mdl": GOOD, "bad.mdl": HEADER + "net { out = x | linaer(2) }\n" + LOSS,
                                     "c.mdl": GOOD.replace("spec t", "spec c")}),
    "verify every file": (["verify", "--steps", "1"], {"bad.mdl": HEADER + "net { out = x | linaer(2) }\n" + LOSS,
                                                       "c.mdl": GOOD.replace("spec t", "spec c")}),
    "the table wraps long cells": (["check"], {"a.mdl": HEADER.replace("spec t", "spec a_rather_long_spec_name") + (
        "net { out = x | conv2d(32, kh=1, kw=3, stride=2, pad=same, bias=false, trainable=false)"
        " | batchnorm(eps=0.001, momentum=0.2) | flatten | linear(2) }\n") + LOSS + (
        "train {\n    optimizer adam(lr=0.001, beta1=0.85, beta2=0.995, eps=1e-7, weight_decay=0.0001)\n"
        "    schedule cosine(min_lr=0.00001)\n    init normal(std=0.05)\n}\n")}),
    "softmax before cross_entropy": (["check"], {"a.mdl": DISK + "net { out = x | linear(2) | softmax }\n" + LOSS}),
    "an ignored threshold": (["check"], {"a.mdl": DISK + "net { out = x | linear(2) }\n"
                                         "loss { out cross_entropy(target, threshold=0.3) }\n"}),
    "parameters that feed no loss": (["check"], {"a.mdl": DISK + (
        "net {\n    h = x | linear(8) | relu\n    unused = h | linear(4)\n    out = h | linear(2)\n}\n") + LOSS}),
    "negative momentum": (["check"], {"a.mdl": GOOD + "train { optimizer sgd(lr=0.1, momentum=-0.9) }\n"}),
    "an error in a value from --set": (["check", "--set", "depth=0"], {"a.mdl": DISK + (
        "param depth = 2\nnet { out = x | repeat depth { linear(4) } | linear(2) }\n") + LOSS}),
    "a missing pipe": (["check"], {"a.mdl": HEADER + "net { out = x | flatten linear(2) }\n" + LOSS}),
    "an unknown combinator": (["check"], {"a.mdl": DISK + (
        "net {\n    a = x | linear(2)\n    out = times(a, x) | linear(2)\n}\n") + LOSS}),
    "buffers are shown": (["check"], {"a.mdl": DISK + "net { out = x | linear(8) | batchnorm | linear(2) }\n" + LOSS}),
}


def render_all(tmp_path) -> str:
    chunks = []
    for name, (command, files) in CASES.items():
        paths = []
        for file_name, text in files.items():
            path = tmp_path / file_name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        result = CliRunner().invoke(main, [command[0], *paths, *command[1:]])
        output = result.output.replace(str(tmp_path) + os.sep, "")
        chunks.append(f"== {name} (exit {result.exit_code})\n{output}")
    return "\n".join(chunks)


def test_messages_match_the_golden_file(tmp_path):
    text = render_all(tmp_path)
    if os.environ.get("MINISPEC_REGOLD"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
