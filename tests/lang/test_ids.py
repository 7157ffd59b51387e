"""Generated node ids live in a namespace user names cannot reach, and a Program
with two nodes of one id cannot be built (issue 16: silent miscompiles)."""

import pydantic
import pytest

from minispec.compiler import compile_file
from minispec.ir.model import Program
from tests.conftest import ROOT

PAIRS_HEAD = """
spec collide
data mnist_pairs(train=20, test=20)
net {{
{net}
}}
loss {{ out cross_entropy(target) }}
train {{ epochs 1 trials 1 batch 10 }}
"""


def test_a_statement_named_like_a_generated_select_keeps_both_slices(write_spec):
    net = "x_0 = x[1] | relu\n b = x[0] | relu\n out = concat(x_0, b) | flatten | linear(2)"
    program = compile_file(write_spec(PAIRS_HEAD.format(net=net)))
    selects = {n.attrs["index"] for n in program.nodes if n.op == "select"}
    assert selects == {0, 1}
    ids = [n.id for n in program.nodes]
    assert len(ids) == len(set(ids))
    # `b` reads slice 0, `x_0` slice 1: the concat sees both.
    by_id = {n.id: n for n in program.nodes}
    relu_b = by_id[program.names["b"]]
    assert by_id[relu_b.inputs[0]].attrs["index"] == 0
    relu_x0 = by_id[program.names["x_0"]]
    assert by_id[relu_x0.inputs[0]].attrs["index"] == 1


def test_a_statement_named_like_a_generated_layer_id_is_its_own_node(write_spec):
    net = ("a_1_linear = x | flatten | linear(3)\n a = x | flatten | linear(4) | relu\n"
           " out = concat(a, a_1_linear) | linear(2)")
    program = compile_file(write_spec(PAIRS_HEAD.format(net=net)))
    ids = [n.id for n in program.nodes]
    assert len(ids) == len(set(ids))
    weights = [n.weights for n in program.nodes if n.weights]
    assert len(weights) == len(set(weights)) == 3
    assert program.node("a_1_linear").attrs["out"] == 3


def test_a_statement_named_like_a_convolutionize_id_gets_its_own_head(write_spec):
    text = """
spec collide
data mnist_pairs(train=20, test=20)
net {
    features = x | conv2d(4, 3) | relu
    out = features | flatten | linear(2)
    out_map = features | flatten | linear(2)
}
loss { out cross_entropy(target)  out_map cross_entropy(target) }
train { epochs 1 trials 1 batch 10 }
convolutionize
"""
    program = compile_file(write_spec(text))
    ids = [n.id for n in program.nodes]
    assert len(ids) == len(set(ids))
    heads = {loss.node: program.node(loss.node) for loss in program.losses}
    assert heads["out"].inputs != heads["out_map"].inputs
    assert program.node(heads["out"].inputs[0]).weights != program.node(heads["out_map"].inputs[0]).weights


def test_the_ir_rejects_duplicate_ids():
    program = compile_file(ROOT / "specs/disk.mdl")
    fields = {name: getattr(program, name) for name in Program.model_fields}
    with pytest.raises(pydantic.ValidationError, match="duplicate node id"):
        Program(**{**fields, "nodes": [*program.nodes, program.nodes[-1]]})
    with pytest.raises(pydantic.ValidationError, match="duplicate node id"):
        Program.model_validate_json(_with_duplicate(program))


def test_the_ir_rejects_inputs_that_are_not_earlier_nodes():
    program = compile_file(ROOT / "specs/disk.mdl")
    fields = {name: getattr(program, name) for name in Program.model_fields}
    last = program.nodes[-1].model_copy(update={"inputs": ["nowhere"]})
    with pytest.raises(pydantic.ValidationError, match="nowhere"):
        Program(**{**fields, "nodes": [*program.nodes[:-1], last]})


def _with_duplicate(program: Program) -> str:
    data = program.model_dump(mode="json")
    data["nodes"].append(data["nodes"][-1])
    return __import__("json").dumps(data)
