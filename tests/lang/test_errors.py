"""Every kind of invalid spec gives one located error, exit status 2, no traceback."""

import re

import pytest
from click.testing import CliRunner

from minispec.cli import main

HEADER = """spec t
data mnist_pairs(train=100, test=100)
"""
LOSS = "loss { out cross_entropy(target) }\n"


def run_check(path, *extra):
    result = CliRunner().invoke(main, ["check", str(path), *extra])
    return result.exit_code, result.output


CASES = {
    # name: (spec text, (line, col) of the error, text the message must contain, text the hint must contain)
    "syntax: missing paren": (
        HEADER + "net { out = x | flatten | linear(2 }\n" + LOSS, (3, 36), "unexpected `}`", "`)`"),
    "syntax: stray character": (
        HEADER + "net { out = x | flat$ten | linear(2) }\n" + LOSS, (3, 21), "unexpected `$`", None),
    "syntax: end of file": (
        HEADER + "net { out = x | flatten | linear(2)\n", (3, 36), "end of file", "`}`"),
    "unknown layer": (
        HEADER + "net { out = x | flatten | linaer(2) }\n" + LOSS, (3, 27), "unknown layer `linaer`", "`linear`"),
    "unknown name": (
        HEADER + "net { out = y | flatten | linear(2) }\n" + LOSS, (3, 13), "unknown name `y`", "inputs are x"),
    "unknown option": (
        HEADER + "net { out = x[0] | conv2d(4, 3, strid=2) | flatten | linear(2) }\n" + LOSS, (3, 33),
        "no option `strid`", "`stride`"),
    "wrong arity": (
        HEADER + "net { out = x | flatten | linear(2, true, true, 3) }\n" + LOSS, (3, 49), "at most 3 arguments", "linear(out"),
    "missing argument": (
        HEADER + "net { out = x[0] | conv2d(4) | flatten | linear(2) }\n" + LOSS, (3, 20), "needs `k`", "conv2d(out, k"),
    "negative size": (
        HEADER + "net { out = x | flatten | linear(-2) }\n" + LOSS, (3, 34), "must be positive, got -2", None),
    "zero kernel": (
        HEADER + "net { out = x[0] | conv2d(4, 0) | flatten | linear(2) }\n" + LOSS, (3, 30), "`k` must be positive", None),
    "bad dropout": (
        HEADER + "net { out = x | flatten | dropout(1.5) | linear(2) }\n" + LOSS, (3, 35), "must be in [0, 1)", None),
    "wrong type": (
        HEADER + "net { out = x | flatten | linear(2.5) }\n" + LOSS, (3, 34), "must be an integer", None),
    "lr not positive": (
        HEADER + "net { out = x | flatten | linear(2) }\n" + LOSS + "train { optimizer sgd(lr=0) }\n",
        (5, 26), "`lr` must be positive", None),
    "unknown optimizer": (
        HEADER + "net { out = x | flatten | linear(2) }\n" + LOSS + "train { optimizer adma(lr=0.1) }\n",
        (5, 19), "unknown optimizer `adma`", "`adam`"),
    "unknown train setting": (
        HEADER + "net { out = x | flatten | linear(2) }\n" + LOSS + "train { epocs 3 }\n",
        (5, 9), "unknown train setting `epocs`", "`epochs`"),
    "shape mismatch": (
        HEADER + "net { out = x | linear(2) }\n" + LOSS, (3, 17), "expects a flat input", "flatten"),
    "conv on flat input": (
        HEADER + "net { out = x | flatten | conv2d(4, 3) | linear(2) }\n" + LOSS, (3, 27),
        "expects a feature map", None),
    "kernel too large": (
        HEADER + "net { out = x[0] | conv2d(4, 15) | flatten | linear(2) }\n" + LOSS, (3, 20),
        "larger than its (padded) input", None),
    "output does not fit loss": (
        HEADER + "net { out = x | flatten | linear(3) }\n" + LOSS, (4, 8), "has 3 outputs", "linear(2)"),
    "residual changes shape": (
        HEADER + "net { out = x[0] | residual { conv2d(4, 3) } | flatten | linear(2) }\n" + LOSS, (3, 20),
        "residual body must keep its input's shape", "padding"),
    "cycle": (
        HEADER + "net {\n a = b | relu\n b = a | relu\n out = b | flatten | linear(2)\n}\n" + LOSS, (5, 6),
        "cycle in the net: a -> b -> a", None),
    "loss names missing node": (
        HEADER + "net { out = x | flatten | linear(2) }\nloss { outt cross_entropy(target) }\n", (4, 8),
        "`outt`, which is not a node", "`out`"),
    "loss unknown target": (
        HEADER + "net { out = x | flatten | linear(2) }\nloss { out cross_entropy(traget) }\n", (4, 26),
        "not a target", "`target`"),
    "duplicate name": (
        HEADER + "net {\n out = x | flatten | linear(2)\n out = x | flatten | linear(2)\n}\n" + LOSS, (5, 2),
        "duplicate name `out`", None),
    "duplicate block": (
        HEADER + "block b { relu }\nblock b { tanh }\nnet { out = x | flatten | linear(2) }\n" + LOSS, (4, 1),
        "duplicate block `b`", None),
    "missing include": (
        'spec t\ninclude "nowhere.mdl"\n', (2, 1), 'included file "nowhere.mdl" not found', None),
    "include outside the folder": (
        'spec t\ninclude "../outside.mdl"\n', (2, 1), "outside the spec's folder", "--include-root"),
    "unknown data set": (
        "spec t\ndata mnist_pears()\nnet { out = x | linear(2) }\n" + LOSS, (2, 6), "unknown data set", None),
    "bad data size": (
        "spec t\ndata disk(train=0)\nnet { out = x | linear(2) }\n" + LOSS, (2, 11), "train", None),
    "index out of range": (
        HEADER + "net { out = x[2] | flatten | linear(2) }\n" + LOSS, (3, 13), "index 2 is out of range", None),
    "target instead of input": (
        HEADER + "net { out = target | linear(2) }\n" + LOSS, (3, 13), "is a target of the data set", None),
    "block recursion": (
        HEADER + "block b { relu | b }\nnet { out = x | b | flatten | linear(2) }\n" + LOSS, (3, 18),
        "calls itself", None),
    "repeat zero": (
        HEADER + "net { out = x | flatten | repeat 0 { relu } | linear(2) }\n" + LOSS, (3, 34),
        "between 1 and 1000", None),
    "pm1 on ten classes": (
        HEADER + "net { d = x | flatten | linear(1) }\nloss { d mse(pm1(classes[0])) }\n", (4, 14),
        "two-class target", "onehot"),
    "nll without log_softmax": (
        HEADER + "net { out = x | flatten | linear(2) }\nloss { out nll(target) }\n", (4, 8),
        "nll expects log-probabilities", "log_softmax"),
    "bce without sigmoid": (
        HEADER + "net { out = x | flatten | linear(1) }\nloss { out bce(target) }\n", (4, 8),
        "bce expects probabilities", "sigmoid"),
    "keyword as a name": (
        HEADER + "net { out = x | flatten | linear(2) }\n" + LOSS + "train { epochs 3 net 4 }\n", (5, 18),
        "unexpected `net`", "reserved word"),
    "batch larger than the data": (
        HEADER + "net { out = x | flatten | linear(2) }\n" + LOSS + "train { batch 500 }\n", (5, 15),
        "batch 500 is larger than the 100 training samples", "batch 100"),
    "deep nesting": (
        HEADER + "net { out = " + "concat(" * 300 + "x" + ")" * 300 + " }\n", (3, 1), "nested more than", None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_invalid_spec_gives_one_located_error(name, write_spec):
    text, (line, col), message, hint = CASES[name]
    path = write_spec(text)
    code, output = run_check(path)
    assert code == 2, output
    assert "Traceback" not in output
    first = output.splitlines()[0]
    match = re.match(r"(.+?):(\d+):(\d+): error: (.*)", first)
    assert match, output
    assert match.group(1) == str(path)
    if name != "deep nesting":
        assert (int(match.group(2)), int(match.group(3))) == (line, col), output
    assert message in match.group(4), output
    lines = output.splitlines()
    assert lines[2].strip().startswith("^"), output  # the source line, then the caret
    if hint:
        assert any(l.startswith("hint:") and hint in l for l in lines), output


def test_shared_instance_incompatible_inputs_points_at_both_uses(write_spec):
    path = write_spec(
        HEADER
        + "net {\n"
        + "    enc = instance { flatten | linear(8) }\n"
        + "    a = enc(x[0])\n"
        + "    b = enc(x)\n"
        + "    out = concat(a, b) | linear(2)\n"
        + "}\n"
        + LOSS
    )
    code, output = run_check(path)
    assert code == 2
    assert f"{path}:6:9: error: shared instance `enc` is applied to incompatible inputs" in output
    assert f"{path}:5:9: note: first use of the instance" in output
    assert "[392]" in output and "[196]" in output


def test_bad_override_is_located_in_the_option(write_spec):
    path = write_spec(HEADER + "net { out = x | flatten | linear(2) }\n" + LOSS)
    code, output = run_check(path, "--set", "epochs=-1")
    assert code == 2
    assert output.startswith("--set epochs=-1:1:8: error: epochs must be at least 1, got -1")
    assert output.splitlines()[1:3] == ["    epochs=-1", "           ^^"]
    code, output = run_check(path, "--set", "nope=1")
    assert code == 2 and output.startswith("--set nope=1:1:1: error: --set nope: no parameter or setting")


def test_missing_spec_file_is_an_error_not_a_traceback(tmp_path):
    code, output = run_check(tmp_path / "absent.mdl")
    assert code == 2 and "no such spec file" in output and "Traceback" not in output
