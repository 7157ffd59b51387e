"""The format-free drawing: shared instances once, uses on the arrows, repeats, skips, losses."""

import pytest

from minispec.compiler import compile_file
from minispec.render import build_drawing
from tests.conftest import ROOT
from tests.render.helpers import NESTED, RESNET, TWICE_IN_ONE_STATEMENT, inside, ops


@pytest.fixture(scope="module")
def caux():
    return compile_file(ROOT / "specs/caux.mdl")


def test_a_shared_instance_is_drawn_once(caux):
    drawing = build_drawing(caux)
    shared = [c for c in drawing.clusters if c.kind == "shared"]
    assert len(shared) == 1
    assert shared[0].label == "extract (shared, 2 uses)"
    convs = ops(drawing, "conv2d")
    assert [c.lines[0] for c in convs] == ["conv2d(32, k=3)", "conv2d(64, k=3)"]
    assert all(inside(drawing, c.id, shared[0].id) for c in convs)
    assert convs[0].members == ["a:1:conv2d", "b:1:conv2d"]
    assert all(c.kind == "shared" for c in convs)
    # one flatten, named after both uses
    (flatten,) = ops(drawing, "flatten")
    assert flatten.name == "a / b"
    # the block call inside the instance is a cluster inside the shared one
    blocks = {c.label: c for c in drawing.clusters if c.kind == "block"}
    assert set(blocks) == {"features", "head"}
    assert blocks["features"].parent == shared[0].id and blocks["head"].parent is None


def test_every_use_points_at_the_shared_instance(caux):
    drawing = build_drawing(caux)
    conv = ops(drawing, "conv2d(32")[0]
    (flatten,) = ops(drawing, "flatten")
    into = {(e.source, e.label) for e in drawing.edges if e.target == conv.id}
    assert into == {("x:0", "a"), ("x:1", "b")}
    out = {(e.target, e.label) for e in drawing.edges if e.source == flatten.id}
    assert out == {("digit_a", "a"), ("digit_b", "b"), ("out:1:concat", "a, b")}
    # arrows inside the cluster are drawn once and carry no use
    inner = [e for e in drawing.edges if inside(drawing, e.source, conv.cluster) and e.target != flatten.id]
    assert inner and all(e.label == "" for e in inner)
    assert len({(e.source, e.target) for e in drawing.edges}) == len(drawing.edges)


def test_heads_losses_and_legend(caux):
    drawing = build_drawing(caux)
    heads = {n.id for n in drawing.nodes if n.kind == "head"}
    assert heads == {"out", "digit_a", "digit_b"}
    losses = [n for n in drawing.nodes if n.kind == "loss"]
    assert [n.lines[0] for n in losses] == [
        "cross_entropy(target)", "cross_entropy(classes[0]) ×0.5", "cross_entropy(classes[1]) ×0.5"]
    attached = {(e.source, e.target) for e in drawing.edges if e.style == "loss"}
    assert attached == {("out", losses[0].id), ("digit_a", losses[1].id), ("digit_b", losses[2].id)}
    legend = "\n".join(drawing.legend)
    for part in ("mnist_pairs(train=1000, test=1000)", "sgd(lr=0.01, momentum=0.9)", "batch 50",
                 "100 epochs", "150 trials", "init torch", "63,286 trainable parameters"):
        assert part in legend
    assert len(drawing.legend) <= 4


def test_losses_on_a_shared_head_name_their_use():
    drawing = build_drawing(compile_file(ROOT / "specs/ws_aux.mdl"))
    labels = sorted(e.label for e in drawing.edges if e.style == "loss")
    assert labels == ["", "digit_a", "digit_b"]
    assert len(ops(drawing, "linear(10)")) == 1


def test_separate_branches_are_drawn_twice():
    drawing = build_drawing(compile_file(ROOT / "specs/sn.mdl"))
    assert not [c for c in drawing.clusters if c.kind == "shared"]
    assert [c.label for c in drawing.clusters if c.kind == "block"] == ["features", "features", "head"]
    assert len(ops(drawing, "conv2d")) == 4
    assert all(e.label == "" for e in drawing.edges)


def test_two_uses_in_one_statement(write_spec):
    drawing = build_drawing(compile_file(write_spec(TWICE_IN_ONE_STATEMENT)))
    (linear,) = ops(drawing, "linear(8)")
    (flatten,) = ops(drawing, "flatten")
    assert {e.label for e in drawing.edges if e.target == flatten.id} == {"out#1", "out#2"}


def test_repeat_unfolded_has_a_cluster_per_repetition_and_skip_edges(write_spec):
    program = compile_file(write_spec(RESNET))
    drawing = build_drawing(program)
    repeats = [c for c in drawing.clusters if c.kind == "repeat"]
    assert [c.label for c in repeats] == [f"repeat {i}/10" for i in range(1, 11)]
    assert len(ops(drawing, "conv2d")) == 21
    skips = [e for e in drawing.edges if e.style == "skip"]
    assert len(skips) == 10
    adds = {n.id for n in drawing.nodes if n.lines[0] == "add (residual)"}
    assert {e.target for e in skips} == adds and len(adds) == 10
    # the first skip leaves the stem, each later one the relu closing the repetition before
    assert skips[0].source == "stem"
    for edge in skips:
        node = program.node(edge.target)
        assert node.inputs[1] == edge.source


def test_fold_collapses_a_repeat_into_one_box(write_spec):
    program = compile_file(write_spec(RESNET))
    drawing = build_drawing(program, fold=True)
    (box,) = [n for n in drawing.nodes if n.kind == "folded"]
    assert box.lines[0] == "repeat ×10"
    assert box.body == [
        "residual {",
        "  conv2d(32, k=3, pad=1)",
        "  batchnorm2d",
        "  relu",
        "  conv2d(32, k=3, pad=1)",
        "  batchnorm2d",
        "} + skip",
        "relu",
    ]
    assert box.name == "body"
    assert "[32, 28, 28]" in box.lines
    repeated = sum(n.params for n in program.nodes if any(s.kind == "repeat" for s in n.scope))
    assert f"{repeated:,} params" in box.lines
    assert len(box.members) == 10 * 7
    assert not [c for c in drawing.clusters if c.kind == "repeat"]
    assert not [e for e in drawing.edges if e.style == "skip"]
    assert [e.source for e in drawing.edges if e.target == box.id] == ["stem"]
    assert [e.target for e in drawing.edges if e.source == box.id] == [
        next(n.id for n in program.nodes if n.op == "avgpool2d")]
    assert len(ops(drawing, "conv2d")) == 1  # the stem; the body's are in the box


def test_fold_takes_the_outermost_repeat(write_spec):
    program = compile_file(write_spec(NESTED))
    unfolded = build_drawing(program)
    assert len([c for c in unfolded.clusters if c.kind == "repeat"]) == 2 + 2 * 3
    nested = [c for c in unfolded.clusters if c.kind == "repeat" and c.parent is not None]
    assert {c.label for c in nested} == {"repeat 1/3", "repeat 2/3", "repeat 3/3"}
    folded = build_drawing(program, fold=True)
    (box,) = [n for n in folded.nodes if n.kind == "folded"]
    assert box.lines[0] == "repeat ×2"
    assert box.body == ["linear(16)", "repeat ×3 {", "  relu", "}"]
    assert not folded.clusters


def test_statement_names_never_collide_with_drawn_boxes(write_spec):
    spec = """
spec clash
data mnist(train=100, test=100)
net {
    loss_0 = x | flatten | repeat 2 { linear(8) | relu }
    repeat_0 = loss_0 | linear(10)
}
loss { repeat_0 cross_entropy(target) }
"""
    drawing = build_drawing(compile_file(write_spec(spec)), fold=True)
    ids = [n.id for n in drawing.nodes]
    assert len(ids) == len(set(ids))
    assert {"loss_0", "repeat_0"} <= {n.name for n in drawing.nodes}
    assert all(e.source in ids and e.target in ids for e in drawing.edges)
