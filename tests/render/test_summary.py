"""The summary table: rows as data, parameter counts, shared uses, the text around it."""

import pytest

from minispec.compiler import compile_file
from minispec.ir.model import Node
from minispec.render import summary, summary_rows
from minispec.render.labels import op_text
from tests.conftest import ROOT, SPECS


@pytest.fixture(scope="module")
def caux():
    return compile_file(ROOT / "specs/caux.mdl")


def test_every_node_is_a_row_inputs_included(caux):
    rows = summary_rows(caux)
    assert [r.node for r in rows] == [n.id for n in caux.nodes]
    assert rows[0].node == "x" and rows[0].op == "input" and rows[0].shape == (2, 14, 14)
    assert {r.text for r in rows if r.op == "select"} == {"x[0]", "x[1]"}


def test_known_layer_counts(caux):
    rows = {r.node: r for r in summary_rows(caux)}
    # conv2d(32, 3) on one channel: 32 * 1 * 3 * 3 + 32
    assert rows["a:1:conv2d"].params == 320
    assert rows["a:1:conv2d"].text == "conv2d(32, k=3)"
    assert rows["a:1:conv2d"].shape == (32, 12, 12)
    # conv2d(64, 3) on 32 channels, batchnorm(32): weight and bias
    assert rows["a:5:conv2d"].params == 64 * 32 * 9 + 64
    assert rows["a:2:batchnorm"].params == 64
    # linear(10) on the 256 flat features of one digit
    assert rows["digit_a"].params == 256 * 10 + 10
    assert rows["digit_a"].text == "linear(10)"
    assert rows["a:4:maxpool2d"].text == "maxpool2d(2)"
    assert rows["a:4:maxpool2d"].params == 0


def test_shared_uses_are_marked_and_counted_once(caux):
    rows = {r.node: r for r in summary_rows(caux)}
    first, later = rows["a:1:conv2d"], rows["b:1:conv2d"]
    assert (first.instance, first.use, first.use_index, first.uses) == ("extract", "a", 1, 2)
    assert (later.instance, later.use, later.use_index, later.uses) == ("extract", "b", 2, 2)
    assert not first.shared and first.params_text == "320"
    assert later.shared and later.params == 0 and later.layer_params == 320
    assert later.params_text == "(shared)"
    # the relu of the second use applies no parameters: it is not "(shared)"
    assert not rows["b:3:relu"].shared and rows["b:3:relu"].instance == "extract"
    # nodes outside the instance name none
    assert rows["digit_a"].instance is None and rows["out"].instance is None
    assert sum(r.params for r in rows.values()) == caux.total_params == 63286


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_rows_add_up_to_the_program_total(spec):
    program = compile_file(spec)
    rows = summary_rows(program)
    assert sum(r.params for r in rows) == program.total_params
    assert all(len(line) <= 100 for line in summary(program).splitlines())


def test_the_text(caux):
    text = summary(caux)
    lines = text.splitlines()
    assert "Total trainable parameters: 63,286" in lines
    header = next(line for line in lines if line.startswith("Node"))
    assert header.split() == ["Node", "Op", "Output", "shape", "Params", "Shared"]
    conv_b = next(line for line in lines if line.startswith("b:1:conv2d "))
    assert "(shared)" in conv_b and "extract (b)" in conv_b
    conv_a = next(line for line in lines if line.startswith("a:1:conv2d "))
    assert conv_a.split()[-3:] == ["320", "extract", "(a)"]
    loss = next(line for line in lines if line.strip().startswith("digit_a ") and "cross_entropy" in line)
    assert loss.split() == ["digit_a", "cross_entropy", "classes[0]", "index", "of", "10", "0.5", "argmax"]
    training = next(line for line in lines if line.startswith("Training"))
    for part in ("sgd(lr=0.01, momentum=0.9)", "batch 50", "100 epochs", "150 trials"):
        assert part in training
    assert "weight_decay" not in training
    assert next(line for line in lines if line.startswith("Data")).startswith(
        "Data      mnist_pairs(train=1000, test=1000)")


def test_a_program_without_sharing_says_nothing_of_it():
    program = compile_file(ROOT / "specs/sn.mdl")
    assert all(r.instance is None and not r.shared for r in summary_rows(program))
    assert "Shared instances" not in summary(program)


@pytest.mark.parametrize(
    "op, attrs, expected",
    [
        ("conv2d", {"out": 16, "kernel": [5, 5], "stride": 2, "padding": 1, "bias": False},
         "conv2d(16, k=5, stride=2, pad=1, bias=false)"),
        ("conv2d", {"out": 8, "kernel": [2, 3], "stride": 1, "padding": 0, "bias": True}, "conv2d(8, k=2x3)"),
        ("linear", {"out": 3, "bias": False}, "linear(3, bias=false)"),
        ("maxpool2d", {"kernel": 3, "stride": 1}, "maxpool2d(3, stride=1)"),
        ("avgpool2d", {"kernel": 2, "stride": 2}, "avgpool2d(2)"),
        ("batchnorm1d", {"eps": 1e-5, "momentum": 0.1}, "batchnorm1d"),
        ("batchnorm2d", {"eps": 1e-3, "momentum": 0.1}, "batchnorm2d(eps=0.001)"),
        ("dropout", {"p": 0.25}, "dropout(0.25)"),
        ("leaky_relu", {"slope": 0.2}, "leaky_relu(0.2)"),
        ("add", {"residual": True}, "add (residual)"),
        ("relu", {}, "relu"),
    ],
)
def test_op_text(op, attrs, expected):
    assert op_text(Node(id="n", op=op, attrs=attrs)) == expected
