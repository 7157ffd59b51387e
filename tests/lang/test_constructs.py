"""The constructs of the language's second edition compile to the graphs they promise:
pipelines as arguments, residual shortcuts, blocks of statements, pad=same,
rectangular kernels, fixed values, the new combinators and reductions."""

from __future__ import annotations

import pytest
import torch

from minispec.backends.scratch_graph import ScratchModel
from minispec.backends.torch_nn import TorchModel
from minispec.backends.weights import initial_state
from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.lang.printer import format_merged
from minispec.lang.files import read
from minispec.verify import format_report, verify
from tests.conftest import ROOT

DISK = "data disk(train=10, test=10)\n"
PAIRS = "data mnist_pairs(train=10, test=10)\n"
LOSS = "loss { out cross_entropy(target) }\n"


def compile_text(write_spec, text: str):
    return compile_file(write_spec(text))


def node(program, name):
    return program.node(program.names.get(name, name))


def test_pipelines_as_arguments_of_a_combinator(write_spec):
    p = compile_text(write_spec, PAIRS + """net {
        out = add(x | conv2d(4, 3, stride=2, pad=same), x | conv2d(4, 1, stride=2)) | global_avgpool | linear(2)
    }\n""" + LOSS)
    add = next(n for n in p.nodes if n.op == "add")
    assert [p.node(i).op for i in add.inputs] == ["conv2d", "conv2d"]
    assert add.shape == [4, 7, 7]
    assert p.node(add.inputs[0]).attrs["padding"] == 1


def test_residual_with_a_shortcut_adds_the_shortcut_as_the_skip_edge(write_spec):
    p = compile_text(write_spec, PAIRS + """net {
        out = x | residual { conv2d(8, 3, stride=2, pad=same) } shortcut { conv2d(8, 1, stride=2) | batchnorm }
                | flatten | linear(2)
    }\n""" + LOSS)
    add = next(n for n in p.nodes if n.op == "add")
    assert add.attrs["residual"] is True and add.shape == [8, 7, 7]
    assert [p.node(i).op for i in add.inputs] == ["conv2d", "batchnorm2d"]


def test_a_residual_without_shortcut_must_keep_the_shape(write_spec):
    with pytest.raises(MinispecError, match="a residual body must keep its input's shape"):
        compile_text(write_spec, PAIRS + "net { out = x | residual { conv2d(8, 3, stride=2) } | flatten | linear(2) }\n" + LOSS)


def test_a_block_of_statements_reads_input_and_returns_its_last_statement(write_spec):
    p = compile_text(write_spec, DISK + """
    block gate(n) {
        value = input | linear(n)
        gate = input | linear(n) | sigmoid
        out = mul(value, gate) | sub(value)
    }
    net { out = x | gate(4) | gate(3) | linear(2) }\n""" + LOSS)
    ops = [n.op for n in p.nodes]
    assert ops.count("mul") == 2 and ops.count("sub") == 2 and ops.count("linear") == 5
    sub = next(n for n in p.nodes if n.op == "sub")
    mul = p.node(sub.inputs[0])
    assert mul.op == "mul" and p.node(sub.inputs[1]).op == "linear"
    report = verify(p, dtype=torch.float64, steps=2, batch=4)
    assert report.ok, format_report(report)


def test_a_block_statement_may_not_reuse_a_name(write_spec):
    with pytest.raises(MinispecError, match="`input` is already a name in block `b`"):
        compile_text(write_spec, DISK + "block b { input = input | relu }\nnet { out = x | b | linear(2) }\n" + LOSS)


def test_pad_same_and_rectangular_kernels(write_spec):
    p = compile_text(write_spec, PAIRS + """net {
        out = x | conv2d(4, kh=1, kw=5, pad=same) | conv2d(4, 3, stride=2, pad=same) | flatten | linear(2)
    }\n""" + LOSS)
    first, second = [n for n in p.nodes if n.op == "conv2d"]
    assert first.attrs["kernel"] == [1, 5] and first.attrs["padding"] == [0, 2] and first.shape == [4, 14, 14]
    assert first.param_shapes["weight"] == [4, 2, 1, 5]
    assert second.shape == [4, 7, 7]
    report = verify(p, dtype=torch.float64, steps=1, batch=2)
    assert report.ok, format_report(report)


@pytest.mark.parametrize("net,message", [
    ("x | conv2d(4, 2, pad=same)", "pad=same needs an odd kernel, got 2x2"),
    ("x | conv2d(4)", "conv2d needs `k`"),
    ("x | conv2d(4, kh=3)", "conv2d needs `k`"),
])
def test_kernel_mistakes(write_spec, net, message):
    with pytest.raises(MinispecError, match=message.replace("(", r"\(")):
        compile_text(write_spec, PAIRS + f"net {{ out = {net} | flatten | linear(2) }}\n" + LOSS)


def test_trainable_false_keeps_a_layer_as_initialised_in_both_backends(write_spec):
    p = compile_text(write_spec, DISK + """net { out = x | linear(8, trainable=false) | relu | linear(2) }
    train { optimizer sgd(lr=0.5) }\n""" + LOSS)
    frozen = next(n for n in p.nodes if n.op == "linear")
    assert not frozen.trainable and frozen.params == 0
    assert p.total_params == 8 * 2 + 2 and p.fixed_values == 2 * 8 + 8
    state = initial_state(p, torch.Generator().manual_seed(0), dtype=torch.float64)
    inputs = {"x": torch.rand(1, 6, 2, dtype=torch.float64)}
    targets = [torch.tensor([[0, 1, 1, 0, 1, 0]])]
    for model in (TorchModel(p, [state], dtype=torch.float64), ScratchModel(p, [state], dtype=torch.float64)):
        for _ in range(3):
            model.train_step(inputs, targets)
        after = model.state(0)
        torch.testing.assert_close(after[f"{frozen.weights}.weight"], state[f"{frozen.weights}.weight"], rtol=0, atol=0)
        assert not torch.equal(after["out.weight"], state["out.weight"])


def test_a_constant_has_fixed_values_and_cannot_follow_a_pipe(write_spec):
    p = compile_text(write_spec, DISK + "net { u = triu(2)\n out = x | matmul(u) | linear(2) }\n" + LOSS)
    u = node(p, "u")
    assert u.shape == [2, 2] and u.params == 0 and u.buffer_shapes == {"value": [2, 2]}
    state = initial_state(p, torch.Generator().manual_seed(0))
    assert state["u.value"].tolist() == [[1.0, 1.0], [0.0, 1.0]]
    with pytest.raises(MinispecError, match="triu makes a value from no input"):
        compile_text(write_spec, DISK + "net { out = x | triu(2) | linear(2) }\n" + LOSS)


@pytest.mark.parametrize("net,message", [
    ("a = x | linear(3)\n out = x | linear(4) | matmul(a) | linear(2)", "matmul cannot multiply"),
    ("a = x | linear(3)\n out = x | linear(4) | mul(a) | linear(2)", "mul needs equal shapes"),
    ("out = x | linear(4) | sub(x, x) | linear(2)", "sub needs exactly 2 inputs, got 3"),
    ("out = x | linear(4) | sum(axis=1) | linear(2)", "sum over axis 1"),
])
def test_combinator_mistakes(write_spec, net, message):
    with pytest.raises(MinispecError, match=message):
        compile_text(write_spec, DISK + f"net {{ {net} }}\n" + LOSS)


@pytest.mark.parametrize("name", ["direct_compare", "resnet18_pairs"])
def test_the_new_specs_print_back_to_the_same_program(name, tmp_path):
    path = ROOT / "specs" / f"{name}.mdl"
    printed = tmp_path / f"{name}.mdl"
    printed.write_text(format_merged(read(path), name), encoding="utf-8")
    def graph(program):
        return [(n.id, n.op, n.attrs, n.inputs, n.shape, n.weights) for n in program.nodes]

    assert graph(compile_file(printed)) == graph(compile_file(path))


def test_direct_compare_computes_the_probability_that_the_first_digit_is_not_larger():
    """out = sum_{i <= j} p_a[i] p_b[j], checked against the double sum on random logits."""
    from minispec.backends.torch_nn import build_module

    p = compile_file(ROOT / "specs" / "direct_compare.mdl")
    module = build_module(p, generator=torch.Generator().manual_seed(1)).eval()
    x = torch.randn(5, 2, 14, 14, generator=torch.Generator().manual_seed(2))
    outputs = module(x=x)
    pa, pb = outputs["digit_a"].softmax(1), outputs["digit_b"].softmax(1)
    expected = torch.stack([sum(pa[n, i] * pb[n, j] for i in range(10) for j in range(i, 10)) for n in range(5)])
    torch.testing.assert_close(outputs["out"][:, 0], expected)
