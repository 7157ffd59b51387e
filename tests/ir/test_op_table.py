"""The op table is the single source: every op it defines is lowered by every
backend, and the hand-written backend agrees with torch.nn on a spec using it."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from minispec.backends import onnx_graph, scratch_graph
from minispec.backends.torch_nn import build_module, emit, module, stacked
from minispec.compiler import compile_file
from minispec.ir.ops import LOWERED, OPS
from minispec.verify import format_report, verify

TABLES = {
    "torch.nn": module.LOWERING,
    "stacked": stacked.STACKED_LOWERING,
    "hand-written": scratch_graph.LOWERING,
    "emit": emit.SOURCE,
    "onnx": onnx_graph.LOWERING,
}


def missing_lowerings(tables=TABLES) -> list[str]:
    """`backend: op` for every op of the table that a lowering table lacks."""
    return [f"{backend}: {op}" for backend, table in tables.items() for op in LOWERED if op not in table]


def test_every_op_is_lowered_by_every_backend():
    assert missing_lowerings() == []


def test_a_missing_lowering_is_reported():
    for backend, table in TABLES.items():
        shorter = {op: lower for op, lower in table.items() if op != "tanh"}
        assert missing_lowerings({**TABLES, backend: shorter}) == [f"{backend}: tanh"]


def test_lowering_tables_hold_only_ops_of_the_table():
    for backend, table in TABLES.items():
        assert set(table) <= set(LOWERED), backend


def test_every_op_says_what_convolutionize_does_with_it():
    for name, op in OPS.items():
        if op.has("source") or op.resolves_to:
            continue
        assert op.to_map or op.has("elementwise") or op.has("needs_flat"), name


def example_spec(op_name: str, tmp_path, convolutionize: bool = False):
    example = OPS[op_name].example
    if "x[" in example:
        data = "mnist_pairs(train=10, test=10)"
    elif any(word in example for word in ("flatten", "conv2d", "pool")):
        data = "mnist(train=10, test=10)"
    else:
        data = "disk(train=10, test=10)"
    text = (f"spec example_{op_name}\ndata {data}\nnet {{\n    {example}\n}}\n"
            "loss { out cross_entropy(target) }\ntrain { optimizer sgd(lr=0.1, momentum=0.9) }\n"
            + ("convolutionize\n" if convolutionize else ""))
    path = tmp_path / f"example_{op_name}.mdl"
    path.write_text(text, encoding="utf-8")
    return compile_file(path)


@pytest.mark.parametrize("op_name", LOWERED)
def test_verify_passes_on_the_example_of_every_op(op_name, tmp_path):
    """Each op's own example compiles to a graph holding the op (`identity` is
    convolutionize's), and both backends agree on it: outputs, losses, gradients, steps."""
    program = example_spec(op_name, tmp_path)
    if op_name not in {node.op for node in program.nodes}:
        program = example_spec(op_name, tmp_path, convolutionize=True)
    assert op_name in {node.op for node in program.nodes}
    report = verify(program, dtype=torch.float64, steps=2, batch=4)
    assert report.ok, format_report(report)
    assert_emitted_module_computes_the_same(program, tmp_path)


def assert_emitted_module_computes_the_same(program, tmp_path):
    path = tmp_path / f"emitted_{program.name}.py"
    path.write_text(emit.emit_python(program), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    emitted = getattr(loaded, emit.class_name(program))()
    ours = build_module(program, generator=torch.Generator().manual_seed(3)).eval()
    emitted.load_state_dict(ours.state_dict(), strict=True)
    emitted.eval()
    inputs = {name: torch.randn(3, *shape, generator=torch.Generator().manual_seed(9))
              for name, shape in program.data.inputs.items()}
    got, expected = emitted(*inputs.values()), ours(**inputs)
    for key in program.outputs:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
