"""VectorizedTorchModel: replica k of a vectorized run equals a sequential run of replica k."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from minispec.backends import targets as encoding
from minispec.backends.torch_nn import TorchModel
from minispec.backends.torch_nn.vectorized import VectorizedTorchModel
from minispec.backends.weights import initial_state
from tests.conftest import ROOT

from .helpers import gen, program, random_inputs, random_raw_targets

F64 = torch.float64
TOL = dict(rtol=1e-7, atol=1e-9)  # float64; Adam divides tiny gradients by their size


def stacked_batch(p, replicas: int, size: int, step: int, dtype=F64):
    """A different batch for every replica: inputs [R, B, ...] and encoded targets [R, B, ...]."""
    inputs = {name: torch.stack([random_inputs(p, size, seed=100 * step + r, dtype=dtype)[name]
                                 for r in range(replicas)]) for name in p.data.inputs}
    raws = [random_raw_targets(p, size, seed=100 * step + 50 + r) for r in range(replicas)]
    raw = {name: torch.stack([one[name] for one in raws]) for name in raws[0]}
    return inputs, [encoding.encode(loss, raw, dtype=dtype) for loss in p.losses]


def replica(tensors, r):
    if isinstance(tensors, dict):
        return {k: v[r:r + 1] for k, v in tensors.items()}
    return [t[r:r + 1] for t in tensors]


@pytest.mark.parametrize("name", ["caux", "saux_conv", "disk_nodrop", "odd_nodrop"])
def test_replica_k_is_the_sequential_run_of_replica_k(name):
    """sgd+momentum (caux, saux_conv; shared BatchNorm), adam (disk: mse/bce/nll), adadelta (odd)."""
    p = program(name)
    R = 3
    states = [initial_state(p, gen(10 + k), dtype=F64) for k in range(R)]
    vectorized = VectorizedTorchModel(p, states, dtype=F64)
    sequential = [TorchModel(p, [state], dtype=F64) for state in states]
    assert vectorized.replicas == R
    for step in range(3):
        if step == 2:
            vectorized.set_learning_rate(0.003)
            for model in sequential:
                model.set_learning_rate(0.003)
        inputs, targets = stacked_batch(p, R, 6, step)
        got = vectorized.train_step(inputs, targets)
        assert got.shape == (R, len(p.losses)) and not got.requires_grad
        expected = torch.cat([m.train_step(replica(inputs, r), replica(targets, r)) for r, m in enumerate(sequential)])
        torch.testing.assert_close(got, expected, **TOL)

    outputs = vectorized.predict(inputs)
    for r, model in enumerate(sequential):
        alone = model.predict(replica(inputs, r))
        for key in p.outputs:
            assert outputs[key].shape == (R, 6, *p.node(key).shape)
            torch.testing.assert_close(outputs[key][r], alone[key][0], **TOL)
        state, alone_state = vectorized.state(r), model.state(0)
        assert list(state) == list(alone_state)
        for key in state:
            assert state[key].device.type == "cpu" and state[key].dtype == alone_state[key].dtype
            torch.testing.assert_close(state[key], alone_state[key], **TOL)
    torch.testing.assert_close(
        vectorized.losses(outputs, targets),
        torch.cat([m.losses(m.predict(replica(inputs, r)), replica(targets, r)) for r, m in enumerate(sequential)]),
        **TOL,
    )


def test_one_replica_equals_torch_model_in_float32():
    p = program("wsn")
    state = initial_state(p, gen(0))
    vectorized, alone = VectorizedTorchModel(p, [state]), TorchModel(p, [state])
    for step in range(2):
        inputs, targets = stacked_batch(p, 1, 8, step, dtype=torch.float32)
        torch.testing.assert_close(vectorized.train_step(inputs, targets), alone.train_step(inputs, targets))
    for key, value in alone.state(0).items():
        torch.testing.assert_close(vectorized.state(0)[key], value)


@pytest.mark.parametrize("name", ["disk_mlp", "odd_names"])
def test_with_dropout_replica_k_draws_the_masks_of_its_lone_run(name):
    """Each replica's masks come from its own generator, as a lone TorchModel's do."""
    p = program(name)
    R = 3
    states = [initial_state(p, gen(10 + k), dtype=F64) for k in range(R)]

    def generators():
        return [torch.Generator().manual_seed(1000 + k) for k in range(R)]

    vectorized = VectorizedTorchModel(p, states, dtype=F64, generators=generators())
    sequential = [TorchModel(p, [state], dtype=F64, generators=[g]) for state, g in zip(states, generators())]
    for step in range(3):
        inputs, targets = stacked_batch(p, R, 6, step)
        got = vectorized.train_step(inputs, targets)
        expected = torch.cat([m.train_step(replica(inputs, r), replica(targets, r)) for r, m in enumerate(sequential)])
        torch.testing.assert_close(got, expected, **TOL)
    for r, model in enumerate(sequential):
        for key, value in model.state(0).items():
            torch.testing.assert_close(vectorized.state(r)[key], value, **TOL)


def test_dropout_masks_differ_between_replicas():
    p = program("disk_mlp")
    state = initial_state(p, gen(0))
    model = VectorizedTorchModel(p, [state, state])
    inputs, targets = stacked_batch(p, 1, 16, 0, dtype=torch.float32)
    inputs = {k: v.expand(2, *v.shape[1:]) for k, v in inputs.items()}
    targets = [t.expand(2, *t.shape[1:]) for t in targets]
    losses = model.train_step(inputs, targets)
    assert not torch.equal(losses[0], losses[1])  # same weights, same batch: only the masks differ
    outputs = model.predict(inputs)  # eval mode: no dropout, but the weights have moved apart
    assert not torch.equal(outputs["out"][0], outputs["out"][1])


def test_state_and_load_state_touch_one_replica():
    p = program("caux")
    states = [initial_state(p, gen(k)) for k in range(3)]
    model = VectorizedTorchModel(p, states)
    for k in range(3):
        assert all(torch.equal(model.state(k)[key], states[k][key]) for key in states[k])
    model.load_state(1, states[2])
    assert all(torch.equal(model.state(1)[key], states[2][key]) for key in states[2])
    assert all(torch.equal(model.state(0)[key], states[0][key]) for key in states[0])
    with pytest.raises(IndexError):
        model.state(3)
    with pytest.raises(RuntimeError, match="missing keys"):
        model.load_state(0, {k: v for k, v in states[0].items() if k != "out.bias"})
    with pytest.raises(ValueError, match="replica axis of size 3"):
        model.predict({"x": torch.zeros(2, 4, 2, 14, 14)})
    with pytest.raises(ValueError, match="canonical names"):
        VectorizedTorchModel(p, [states[0], {"out.weight": states[0]["out.weight"]}])


def test_optimizer_holds_stacked_parameters():
    p = program("caux")
    model = VectorizedTorchModel(p, [initial_state(p, gen(k)) for k in range(4)])
    shapes = [tuple(t.shape) for t in model.optimizer.params]
    assert shapes[0] == (4, 32, 1, 3, 3)
    assert sum(t.numel() for t in model.module.parameters()) == 4 * p.total_params
    assert model.optimizer.kind == "sgd" and torch.equal(model.optimizer.options["momentum"], torch.full((4,), 0.9))


def test_training_never_imports_torch_dynamo():
    """torch.optim's first optimizer imports torch._dynamo, about 2 s at every start of
    a `minispec run`: the vectorized model steps with its own optimizer instead."""
    code = """
import sys, torch
from minispec.backends import make_model
from minispec.backends.weights import initial_state
from minispec.compiler import compile_file
for optimizer in ("sgd(lr=0.1, momentum=0.9)", "adam(lr=0.01)", "adadelta"):
    p = compile_file("specs/disk.mdl", [f"optimizer={optimizer}"])
    model = make_model("torch", p, [initial_state(p, torch.Generator().manual_seed(k)) for k in range(2)])
    model.train_step({"x": torch.randn(2, 4, 2)}, [torch.rand(2, 4, 1)])
print("torch._dynamo" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
