"""`verify`: the hand-written backend agrees with torch.nn on every shipped spec, and notices a wrong backward."""

from __future__ import annotations

import pytest
import torch

from minispec.backends import scratch_graph
from minispec.scratch import conv, linear
from minispec.backends.scratch_graph import ScratchModel
from minispec.backends.torch_nn import TorchModel
from minispec.verify import format_report, random_batch, verify

from .helpers import EXTRA, SPECS, program, states


@pytest.mark.parametrize("name", [path.stem for path in SPECS] + list(EXTRA))
def test_every_spec_agrees_in_float64(name):
    report = verify(program(name), dtype=torch.float64, steps=3, batch=4)
    assert report.ok, format_report(report)
    kinds = {check.name.split(":")[0] for check in report.checks}
    assert kinds == {"output", "loss", "grad", "param", "predict"}
    assert len([c for c in report.checks if c.name.startswith("loss:")]) == len(program(name).losses)


@pytest.mark.parametrize("name", ["caux", "disk_deep", "mnist_mlp", "resnet", "ws_aux_bn", "all_ops", "conv_odd"])
def test_some_specs_agree_in_float32_after_one_step(name):
    report = verify(program(name), dtype=torch.float32, batch=4)
    assert report.ok, format_report(report)
    assert (report.atol, report.step_atol, report.steps) == (1e-5, 1e-4, 1)


def test_adam_tolerance_widens_only_for_weights_with_a_gradient_near_zero():
    report = verify(program("all_ops"), dtype=torch.float32, batch=6)
    assert report.ok, format_report(report)
    bias = next(c for c in report.checks if c.name == "param:h:1:linear.bias")  # linear | batchnorm
    assert bias.widened > 0 and bias.max_abs > bias.tolerance  # float32 noise, amplified by Adam
    assert any("adam:" in note for note in report.notes)
    assert "ok*" in format_report(report)
    assert not any(c.widened for c in verify(program("wsn"), batch=4, steps=2).checks)  # sgd: never


def _scaled(backward):
    def wrong(self, grad):
        out = backward(self, grad)
        if out is None:  # a first layer skips dL/dx
            return None
        return tuple(g * 1.001 for g in out) if isinstance(out, tuple) else out * 1.001

    return wrong


@pytest.mark.parametrize(
    "name, cls",
    [("caux", scratch_graph.Concat), ("caux", conv.Conv2d), ("disk", linear.Linear), ("resnet", scratch_graph.Add)],
)
def test_a_backward_off_by_a_thousandth_fails(monkeypatch, name, cls):
    monkeypatch.setattr(cls, "backward", _scaled(cls.backward))
    report = verify(program(name), steps=1, batch=4)
    assert not report.ok
    failed = {c.name for c in report.failures}
    assert any(n.startswith("grad:") for n in failed)
    assert not any(n.startswith(("output:", "loss:")) for n in failed)  # forward is untouched
    text = format_report(report)
    assert "FAIL" in text and "FAILED" in text.splitlines()[-1]


def test_report_is_a_table_and_keeps_dropout_on():
    p = program("ws_aux_dropout")
    report = verify(p, steps=2, batch=4)
    text = format_report(report)
    header = text.splitlines()[2]
    for column in ("tensor", "shape", "max abs err", "max rel err", "ok"):
        assert column in header
    assert text.splitlines()[-1].startswith("ok:")
    assert any(line.startswith("grad:digit:1:conv2d.weight") and " 32x1x3x3 " in line for line in text.splitlines())
    assert not report.notes  # nothing was switched off
    assert all(n.attrs["p"] > 0 for n in p.nodes if n.op == "dropout")


@pytest.mark.parametrize("name", ["ws_aux_dropout", "all_ops"])
def test_both_backends_draw_the_same_dropout_masks_from_the_same_seed(name):
    """What lets verify keep dropout on: equal seeds, equal losses; other seeds, other losses."""
    p = program(name)
    (state,) = states(p, [0])
    inputs, targets = random_batch(p, 6, 0, torch.float64)

    def losses(scratch_seed: int, torch_seed: int):
        ours = ScratchModel(p, [dict(state)], dtype=torch.float64,
                            dropout_generators=[torch.Generator().manual_seed(scratch_seed)])
        theirs = TorchModel(p, [dict(state)], dtype=torch.float64,
                            generators=[torch.Generator().manual_seed(torch_seed)])
        return ours.train_step(inputs, targets), theirs.train_step(inputs, targets)

    ours, theirs = losses(5, 5)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-13)
    ours, theirs = losses(5, 6)
    assert not torch.allclose(ours, theirs, rtol=1e-6, atol=0)


def test_large_values_are_compared_relatively():
    from minispec.verify import compare

    big = torch.tensor([1e6, -2e6], dtype=torch.float64)
    assert compare("t", big * (1 + 1e-12), big, 1e-10).ok
    assert not compare("t", big * (1 + 1e-9), big, 1e-10).ok
    small = torch.tensor([1e-3, 0.0], dtype=torch.float64)
    assert compare("t", small + 5e-11, small, 1e-10).ok
    assert not compare("t", small + 5e-10, small, 1e-10).ok
    assert not compare("t", small[:1], small, 1e-10).ok  # shapes differ
