"""ScratchModel: R replicas at once equal R models of one replica; shared weights; dropout streams."""

from __future__ import annotations

import pytest
import torch

from minispec.backends.scratch_graph import ScratchModel
from minispec.backends.torch_nn import TorchModel, build_module
from minispec.backends.torch_nn.model import loss_values
from minispec.ir.model import Program

from .helpers import batch, program, states

TRIALS = (0, 1, 2)


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", ["saux", "caux", "ws_aux_dropout", "ws_aux_bn_dropout", "all_ops", "conv_odd"])
def test_three_replicas_equal_three_single_models_step_by_step(name):
    p = program(name)
    init = states(p, TRIALS)
    together = ScratchModel(p, [dict(s) for s in init], dtype=torch.float64, dropout_generators=gens([10, 11, 12]))
    alone = [
        ScratchModel(p, [dict(s)], dtype=torch.float64, dropout_generators=gens([10 + k]))
        for k, s in enumerate(init)
    ]
    for step in range(3):
        inputs, targets = batch(p, len(TRIALS), 6, seed=step)
        losses = together.train_step(inputs, targets)
        assert losses.shape == (3, len(p.losses))
        for k, model in enumerate(alone):
            single = model.train_step({n: x[k : k + 1] for n, x in inputs.items()}, [t[k : k + 1] for t in targets])
            assert close(losses[k : k + 1], single), (step, k)
    inputs, targets = batch(p, len(TRIALS), 5, seed=99)
    predicted = together.predict(inputs)
    for k, model in enumerate(alone):
        state, own = together.state(k), model.state(0)
        assert list(state) == list(own)
        # Adam turns 1e-16 rounding noise in the (truly zero) gradient of a bias
        # right before batchnorm into steps of ~1e-11: parameters agree to 1e-9.
        assert all(torch.allclose(state[n], own[n], rtol=0, atol=1e-9) for n in state)
        single = model.predict({n: x[k : k + 1] for n, x in inputs.items()})
        assert all(torch.allclose(predicted[node][k : k + 1], single[node], rtol=0, atol=1e-8) for node in p.outputs)
    assert close(together.losses(predicted, targets)[1:2], alone[1].losses(
        {n: v[1:2] for n, v in predicted.items()}, [t[1:2] for t in targets]))


def test_replicas_differ_and_dropout_draws_per_replica():
    p = program("ws_aux_dropout")
    same = states(p, [0])[0]
    model = ScratchModel(p, [dict(same), dict(same)], dtype=torch.float64, dropout_generators=gens([1, 2]))
    inputs, targets = batch(p, 1, 6, seed=0)
    inputs = {n: x.expand(2, *x.shape[1:]) for n, x in inputs.items()}
    targets = [t.expand(2, *t.shape[1:]) for t in targets]
    losses = model.train_step(inputs, targets)
    assert not torch.equal(losses[0], losses[1])  # same weights and data, different masks
    twin = ScratchModel(p, [dict(same), dict(same)], dtype=torch.float64, dropout_generators=gens([1, 1]))
    losses = twin.train_step(inputs, targets)
    assert torch.equal(losses[0], losses[1])


def test_dropout_masks_match_torch_after_manual_seed():
    """Replica k's generator seeded s draws the masks torch.nn draws after torch.manual_seed(s)."""
    p = program("ws_aux_bn_dropout")
    init = states(p, [0])[0]
    ours = ScratchModel(p, [dict(init)], dtype=torch.float64, dropout_generators=gens([5]))
    reference = TorchModel(p, [dict(init)], dtype=torch.float64)
    torch.manual_seed(5)
    for step in range(2):
        inputs, targets = batch(p, 1, 6, seed=step)
        assert close(ours.train_step(inputs, targets), reference.train_step(inputs, targets))


def _torch_gradients(p: Program, state, inputs, targets, generator) -> dict[str, torch.Tensor]:
    module = build_module(p, state, dtype=torch.float64)
    module.dropout_generator = generator
    module.train()
    outputs = module(**{n: x[0] for n, x in inputs.items()})
    values = loss_values(p, outputs, [t[0] for t in targets])
    weights = torch.tensor([loss.weight for loss in p.losses], dtype=torch.float64)
    (values * weights).sum().backward()
    return {name: param.grad for name, param in module.named_parameters()}


@pytest.mark.parametrize("name", ["wsn", "caux", "conv_odd"])
def test_shared_instance_gradients_accumulate_like_torch(name):
    p = program(name)
    init = states(p, [0])[0]
    model = ScratchModel(p, [dict(init)], dtype=torch.float64, dropout_generators=gens([7]))
    users = {}
    for node in p.nodes:
        if node.weights is not None:
            users.setdefault(node.weights, []).append(node.id)
    shared = {key: ids for key, ids in users.items() if len(ids) > 1}
    assert shared  # wsn and caux apply the extractor twice
    for key, ids in shared.items():
        first = model.layers[ids[0]]
        for other in ids[1:]:
            assert model.layers[other] is not first
            assert model.layers[other].weight is first.weight  # one Parameter object
    inputs, targets = batch(p, 1, 6, seed=3)
    model.zero_grad()
    model.forward(inputs)
    model.backward(targets)
    ours = model.gradients(0)
    reference = _torch_gradients(p, init, inputs, targets, gens([7])[0])  # the same dropout masks
    assert ours.keys() == reference.keys()
    for name_ in reference:
        assert close(ours[name_], reference[name_]), name_
    # backward accumulates (+=): a second backward without zero_grad doubles every gradient
    model.dropout_generators[0].manual_seed(7)  # the same dropout masks again
    model.forward(inputs)
    model.backward(targets)
    again = model.gradients(0)
    for name_ in reference:
        assert close(again[name_], 2 * reference[name_]), name_


def test_interface_errors():
    p = program("disk")
    model = ScratchModel(p, states(p, TRIALS), dtype=torch.float64)
    assert model.replicas == 3
    inputs, targets = batch(p, 2, 4, seed=0)
    with pytest.raises(ValueError, match="replica axis"):
        model.train_step(inputs, targets)
    with pytest.raises(ValueError, match="targets"):
        model.train_step(batch(p, 3, 4, seed=0)[0], [])
    with pytest.raises(IndexError):
        model.state(3)
    state = model.state(0)
    with pytest.raises(ValueError, match="missing"):
        model.load_state(1, {k: v for k, v in state.items() if not k.endswith("bias")})
    bad = dict(state)
    bad["out.weight"] = torch.zeros(2, 25, dtype=torch.float64)
    with pytest.raises(ValueError, match="shape"):
        model.load_state(1, bad)
    model.set_learning_rate(0.5)
    assert model.optimizer.lr == 0.5


def test_float32_default_and_replica_state_roundtrip():
    p = program("ws_aux_bn")
    init = states(p, TRIALS, dtype=torch.float32)
    model = ScratchModel(p, init)
    for k in TRIALS:
        state = model.state(k)
        assert list(state) == list(init[k])
        assert all(torch.equal(state[n], init[k][n]) for n in state)
        assert state[next(n for n in state if n.endswith("num_batches_tracked"))].dtype == torch.long
    model.load_state(0, init[2])
    assert all(torch.equal(model.state(0)[n], init[2][n]) for n in init[2])
