"""ONNX export: every shipped spec, loaded by onnxruntime, computes what the
torch backend computes in evaluation mode; the graph carries the spec's names;
what it cannot express, or a missing extra, is one clear message."""

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from click.testing import CliRunner

from minispec.backends import onnx_graph
from minispec.backends.checkpoint import load_state
from minispec.backends.onnx_graph import onnx_model
from minispec.backends.torch_nn import build_module
from minispec.cli import main
from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.ir.ops import OPS
from tests.conftest import ROOT, SPECS

TINY = """\
spec tiny
data disk(train=100, test=100)
net { out = x | linear(8) | batchnorm | tanh | dropout(0.2) | linear(2) }
loss { out cross_entropy(target) }
train { optimizer adam(lr=0.02) batch 50 epochs 2 trials 2 }
"""


def run_onnx(model: onnx.ModelProto, inputs: dict[str, torch.Tensor]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {name: value.numpy() for name, value in inputs.items()})


def trained_looking_state(program, seed: int) -> dict[str, torch.Tensor]:
    """The initial state with batchnorm statistics moved off 0 and 1, as after training."""
    generator = torch.Generator().manual_seed(seed)
    state = build_module(program).state_dict()
    for name, value in state.items():
        if name.endswith("running_mean"):
            value.normal_(generator=generator)
        elif name.endswith("running_var"):
            value.uniform_(0.5, 2.0, generator=generator)
    return state


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_onnxruntime_computes_what_the_torch_backend_computes(spec):
    program = compile_file(spec)
    state = trained_looking_state(program, 7)
    generator = torch.Generator().manual_seed(3)
    inputs = {name: torch.randn(6, *shape, generator=generator) for name, shape in program.data.inputs.items()}
    with torch.no_grad():
        expected = build_module(program, state).eval()(**inputs)
    got = run_onnx(onnx_model(program, state), inputs)
    assert len(got) == len(program.outputs)
    for name, value in zip(program.outputs, got):
        assert value.shape == tuple(expected[name].shape)
        np.testing.assert_allclose(value, expected[name].numpy(), rtol=1e-5, atol=1e-5)


def test_the_graph_carries_the_specs_names():
    program = compile_file(ROOT / "specs" / "caux.mdl")
    graph = onnx_model(program, build_module(program).state_dict()).graph
    computed = [node.id for node in program.nodes if not OPS[node.op].has("data")]
    assert set(computed) <= {node.name for node in graph.node}
    assert "a:1:conv2d" in computed and "out" in computed
    assert [i.name for i in graph.input] == list(program.data.inputs)
    assert [o.name for o in graph.output] == program.outputs
    shared = {init.name for init in graph.initializer}
    assert "extract:1:conv2d.weight" in shared and not any(n.startswith("b:") for n in shared)


def test_an_op_onnx_cannot_express_is_named(monkeypatch, write_spec):
    monkeypatch.delitem(onnx_graph.LOWERING, "tanh")
    program = compile_file(write_spec(TINY))
    with pytest.raises(MinispecError, match=r"ONNX export cannot express `tanh` \(node `out:3:tanh`\)") as error:
        onnx_model(program, build_module(program).state_dict())
    assert error.value.span.line == 3


def test_compile_emit_onnx_writes_the_initial_weights(write_spec, tmp_path):
    spec = write_spec(TINY)
    result = CliRunner().invoke(main, ["compile", str(spec), "--emit", "onnx", "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    program = compile_file(spec)
    inputs = {"x": torch.rand(4, 2)}
    with torch.no_grad():
        expected = build_module(program).eval()(**inputs)["out"]
    np.testing.assert_allclose(run_onnx(onnx.load(tmp_path / "m.onnx"), inputs)[0], expected.numpy(), atol=1e-6)
    missing_output = CliRunner().invoke(main, ["compile", str(spec), "--emit", "onnx"])
    assert missing_output.exit_code == 2 and "give it one with -o" in missing_output.output


def test_run_export_onnx_saves_each_trained_model_beside_its_weights(write_spec, tmp_path):
    spec = write_spec(TINY)
    result = CliRunner().invoke(main, ["run", str(spec), "--out", str(tmp_path / "r"), "--export", "onnx"])
    assert result.exit_code == 0, result.output
    program = compile_file(spec)
    inputs = {"x": torch.rand(5, 2)}
    for trial in (0, 1):
        state = load_state(tmp_path / f"r/weights/trial_00{trial}.safetensors", program)
        with torch.no_grad():
            expected = build_module(program, state).eval()(**inputs)["out"]
        got = run_onnx(onnx.load(tmp_path / f"r/weights/trial_00{trial}.onnx"), inputs)[0]
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)


def test_a_resumed_run_exports_the_trials_it_found_finished(write_spec, tmp_path):
    spec = write_spec(TINY)
    first = CliRunner().invoke(main, ["run", str(spec), "--out", str(tmp_path / "r")])
    assert first.exit_code == 0, first.output
    assert not list((tmp_path / "r/weights").glob("*.onnx"))
    again = CliRunner().invoke(main, ["run", str(spec), "--out", str(tmp_path / "r"), "--resume", "--export", "onnx"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "r/weights").glob("*.onnx")) == ["trial_000.onnx", "trial_001.onnx"]


def test_without_the_extra_one_line_says_what_to_install(write_spec, tmp_path):
    spec = write_spec(TINY)
    blocked = ("import sys; sys.modules['onnx'] = None\nfrom minispec.cli import main\n"
               "main(sys.argv[1:], prog_name='minispec')")
    for args in (["compile", str(spec), "--emit", "onnx", "-o", str(tmp_path / "m.onnx")],
                 ["run", str(spec), "--export", "onnx", "--out", str(tmp_path / "r")]):
        result = subprocess.run([sys.executable, "-c", blocked, *args], capture_output=True, text=True,
                                cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
        assert result.returncode == 2
        assert result.stderr.strip() == "error: ONNX export needs the onnx package: pip install 'minispec[onnx]'"
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "r").exists()
