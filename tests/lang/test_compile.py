"""Shipped specs compile; the IR round-trips; passes give known numbers."""

import pytest

from minispec.compiler import compile_file
from minispec.ir.model import Program, without_spans
from minispec.lang.printer import format_merged
from minispec.lang.files import apply_overrides, read
from tests.conftest import ROOT, SPECS


def strip_places(program: Program) -> dict:
    """The IR without source positions, to compare programs compiled from different files."""
    return without_spans(program.model_dump(exclude={"source"}))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_compiles_and_round_trips(spec):
    program = compile_file(spec)
    assert Program.model_validate_json(program.model_dump_json()) == program


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_emitted_mdl_compiles_to_the_same_program(spec, tmp_path):
    text = format_merged(read(spec), spec.stem)
    copy = tmp_path / "copy.mdl"
    copy.write_text(text)
    assert strip_places(compile_file(copy)) == strip_places(compile_file(spec))


def test_parameter_counts_by_hand():
    # 2-25-25-25-1: (2*25+25) + 2*(25*25+25) + (25+1)
    assert compile_file(ROOT / "specs/disk.mdl").total_params == 75 + 2 * 650 + 26
    # one conv+bn extractor: conv(1->32,3x3) 320, bn 64, conv(32->64,3x3) 18496, bn 128
    extractor = 320 + 64 + 18496 + 128
    sn, wsn = compile_file(ROOT / "specs/sn.mdl"), compile_file(ROOT / "specs/wsn.mdl")
    assert sn.total_params - wsn.total_params == extractor  # shared weights counted once


def test_shared_instance_is_one_weight_set():
    program = compile_file(ROOT / "specs/caux.mdl")
    convs = [n for n in program.nodes if n.op == "conv2d"]
    assert len(convs) == 4  # two layers, applied to both digits
    assert len({n.weights for n in convs}) == 2
    assert all(n.shared for n in convs)
    assert [n.params for n in convs] == [320, 18496, 0, 0]


def test_shapes_through_the_extractor():
    program = compile_file(ROOT / "specs/caux.mdl")
    shapes = {n.id: n.shape for n in program.nodes}
    assert shapes["x"] == [2, 14, 14]
    assert shapes["x:0"] == [1, 14, 14]
    assert shapes["a"] == [256]
    assert shapes["digit_a"] == [10]
    assert shapes["out"] == [2]


@pytest.mark.parametrize("name", ["sn", "wsn", "saux", "caux"])
def test_convolutionize_keeps_parameters_and_removes_linears(name):
    plain = compile_file(ROOT / f"specs/{name}.mdl")
    conv = compile_file(ROOT / f"specs/{name}_conv.mdl")
    assert conv.convolutionized
    assert conv.total_params == plain.total_params
    assert not [n for n in conv.nodes if n.op == "linear"]
    assert {loss.node for loss in conv.losses} == {loss.node for loss in plain.losses}
    for loss in conv.losses:
        assert conv.node(loss.node).op == "flatten"
        assert conv.node(loss.node).shape == plain.node(loss.node).shape
    first_head = next(n for n in conv.nodes if n.op == "conv2d" and n.attrs["kernel"] != [3, 3])
    assert first_head.attrs["kernel"] == [2, 2]  # covers the 2x2 feature map


def test_overrides_reach_params_train_and_data():
    program = compile_file(
        ROOT / "specs/resnet.mdl",
        ["depth=2", "epochs=3", "lr=0.5", "data.train=200", "optimizer=adam(lr=0.001)"],
    )
    assert sum(1 for n in program.nodes if n.op == "add") == 2
    assert program.train.epochs == 3
    assert program.train.optimizer.kind == "adam"
    assert program.train.optimizer.options["lr"] == 0.5  # `lr` wins over the optimizer's own
    assert program.data.options["train"] == 200


def test_variant_redefines_blocks_and_sections():
    single = compile_file(ROOT / "specs/saux_single.mdl")
    assert single.name == "saux_single"
    assert single.node("out").op == "sigmoid" and single.node("out").shape == [1]
    assert single.node("aux").op == "sigmoid"
    assert [(l.kind, l.encoding, l.decision, l.weight) for l in single.losses] == [
        ("mse", "scalar", "threshold", 1.0),
        ("mse", "scalar", "threshold", 0.5),
    ]


def test_mdl_reflects_overrides():
    text = format_merged(apply_overrides(read(ROOT / "specs/resnet.mdl"), ["depth=3"]), "resnet")
    assert "param depth = 3" in text
    assert "include" not in text


def test_the_front_end_and_the_ir_import_no_torch():
    """Data flows text -> IR -> backend: no module of minispec.lang or minispec.ir loads torch."""
    import subprocess
    import sys

    modules = sorted(f"minispec.{p.parent.name}.{p.stem}" for folder in ("lang", "ir")
                     for p in (ROOT / "minispec" / folder).glob("*.py") if p.stem != "__init__")
    assert "minispec.ir.ops" in modules and "minispec.lang.parser" in modules
    code = f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_checking_a_spec_does_not_load_torch():
    """`minispec check` stays well under a second: the front end never imports torch."""
    import subprocess
    import sys

    code = (
        "import sys; from minispec.compiler import compile_file; from minispec.render.summary import summary; "
        f"summary(compile_file({str(ROOT / 'specs/caux.mdl')!r})); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
