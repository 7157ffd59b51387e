"""TorchModel: the runner's interface on the torch.nn backend (one replica)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from minispec.backends import targets as encoding
from minispec.backends.torch_nn import TorchModel
from minispec.backends.torch_nn.model import make_optimizer
from minispec.backends.weights import initial_state
from minispec.compiler import compile_file

from .helpers import CourseWSN, canonical, gen, program, random_inputs, random_raw_targets


def make_model(p, seed=0, **kwargs) -> TorchModel:
    return TorchModel(p, [initial_state(p, gen(seed))], **kwargs)


def batch(p, size, seed=0):
    """Inputs and encoded targets with the leading replica axis (R = 1), as the runner passes them."""
    inputs = {k: v.unsqueeze(0) for k, v in random_inputs(p, size, seed).items()}
    raw = {k: v.unsqueeze(0) for k, v in random_raw_targets(p, size, seed + 1).items()}
    return inputs, [encoding.encode(loss, raw) for loss in p.losses], raw


# The references use torch's fused kernels, as make_optimizer does: in float32 the
# fused and the for-loop Adam differ in the last bits, which Adam amplifies where a
# gradient is nearly zero.
OPTIMIZERS = {
    "sgd": ("optimizer=sgd(lr=0.05, momentum=0.8, weight_decay=0.001)",
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, weight_decay=0.001, fused=True)),
    "adam": ("optimizer=adam(lr=0.002, beta1=0.8, beta2=0.95, eps=1e-7, weight_decay=0.01)",
             lambda ps: torch.optim.Adam(ps, lr=0.002, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.01, fused=True)),
    "adadelta": ("optimizer=adadelta(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.02)",
                 lambda ps: torch.optim.Adadelta(ps, lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.02)),
}


def test_optimizer_options_map_to_torch():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = make_optimizer(program("caux").train.optimizer, params)
    assert type(sgd) is torch.optim.SGD
    assert {k: sgd.param_groups[0][k] for k in ("lr", "momentum", "weight_decay", "dampening", "nesterov")} == \
        {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "dampening": 0, "nesterov": False}
    adam = make_optimizer(program("caux", (OPTIMIZERS["adam"][0],)).train.optimizer, params)
    assert type(adam) is torch.optim.Adam
    group = adam.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (0.002, (0.8, 0.95), 1e-7, 0.01)
    assert group["fused"] and sgd.param_groups[0]["fused"]
    assert not group["amsgrad"]
    adadelta = make_optimizer(program("odd_names").train.optimizer, params)
    assert type(adadelta) is torch.optim.Adadelta
    group = adadelta.param_groups[0]
    assert (group["lr"], group["rho"], group["eps"], group["weight_decay"]) == (1.0, 0.9, 1e-6, 0.0)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_training_matches_the_hand_written_loop(optimizer):
    """caux trained by TorchModel = the course's net, loss and optimizer written by hand."""
    override, make_reference_optimizer = OPTIMIZERS[optimizer]
    p = program("caux", (override,))
    model = make_model(p, seed=4)
    torch.manual_seed(4)
    reference = CourseWSN(caux=True)
    reference_optimizer = make_reference_optimizer(reference.parameters())

    for step in range(3):
        inputs, targets, raw = batch(p, 12, seed=10 * step)
        got = model.train_step(inputs, targets)
        assert got.shape == (1, 3) and not got.requires_grad

        out, digit_a, digit_b = reference(inputs["x"][0])
        parts = [F.cross_entropy(out, raw["target"][0]), F.cross_entropy(digit_a, raw["classes"][0, :, 0]),
                 F.cross_entropy(digit_b, raw["classes"][0, :, 1])]
        reference_optimizer.zero_grad()
        (parts[0] + 0.5 * parts[1] + 0.5 * parts[2]).backward()
        reference_optimizer.step()
        torch.testing.assert_close(got[0], torch.stack(parts).detach(), rtol=1e-6, atol=1e-7)

    expected = canonical(reference.state_dict())
    state = model.state(0)
    assert list(state) == list(expected)
    for key in expected:
        torch.testing.assert_close(state[key], expected[key], rtol=1e-5, atol=1e-6)


def test_zero_init_one_sgd_step_by_hand(write_spec):
    """Known numbers: zero weights give loss ln 2; one step moves them by -lr * (p - y)^T x / B."""
    p = compile_file(write_spec("""
        spec tiny
        data disk(train=4, test=4)
        net { out = x | linear(2) }
        loss { out cross_entropy(target) }
        train { optimizer sgd(lr=0.5)  init zero }
    """))
    model = TorchModel(p, [initial_state(p, gen(0))])
    x = torch.tensor([[[0.2, 0.4], [0.9, 0.1], [0.5, 0.5], [0.3, 0.8]]])
    y = torch.tensor([[1, 1, 1, 0]])
    losses = model.train_step({"x": x}, [y])
    assert losses.tolist() == [[pytest.approx(math.log(2), abs=1e-7)]]
    state = model.state(0)
    torch.testing.assert_close(state["out.bias"], torch.tensor([-0.125, 0.125]))
    torch.testing.assert_close(state["out.weight"], torch.tensor([[-0.08125, -0.0125], [0.08125, 0.0125]]))
    # losses() on the new outputs, without a step
    logits = x[0] @ state["out.weight"].T + state["out.bias"]
    by_hand = -(logits.log_softmax(1)[torch.arange(4), y[0]]).mean()
    after = model.losses(model.predict({"x": x}), [y])
    torch.testing.assert_close(after, by_hand.reshape(1, 1))
    assert model.state(0)["out.bias"].equal(state["out.bias"])


def test_mse_bce_nll_by_hand():
    p = program("disk_mlp")
    model = make_model(p)
    inputs, targets, raw = batch(p, 9)
    outputs = model.predict(inputs)
    y = raw["target"][0].double()
    out, prob, soft = (outputs[k][0].double() for k in ("out", "prob", "soft"))
    onehot = torch.stack([1 - y, y], dim=1)
    mse = ((out - onehot) ** 2).mean()
    bce = -(y * prob[:, 0].log() + (1 - y) * (1 - prob[:, 0]).log()).mean()
    nll = -soft[torch.arange(9), raw["target"][0]].mean()
    got = model.losses(outputs, targets)
    assert got.shape == (1, 3)
    torch.testing.assert_close(got[0].double(), torch.stack([mse, bce, nll]), rtol=1e-5, atol=1e-6)


def test_target_shape_mismatch_is_an_error():
    p = program("disk_mlp")
    model = make_model(p)
    inputs, targets, _ = batch(p, 5)
    with pytest.raises(ValueError, match="mse on `out`"):
        model.losses(model.predict(inputs), [targets[0][..., :1], targets[1], targets[2]])
    with pytest.raises(ValueError, match="3 targets"):
        model.losses(model.predict(inputs), targets[:2])


@pytest.mark.parametrize("name", ["saux", "caux", "caux_single", "sn_conv", "disk_mlp"])
def test_a_few_steps_reduce_the_loss(name):
    p = program(name)
    model = make_model(p, seed=1)
    torch.manual_seed(0)
    inputs, targets, _ = batch(p, 16, seed=3)
    weights = torch.tensor([loss.weight for loss in p.losses])
    before = (model.losses(model.predict(inputs), targets)[0] * weights).sum()
    for _ in range(25):
        model.train_step(inputs, targets)
    after = (model.losses(model.predict(inputs), targets)[0] * weights).sum()
    train_loss = (model.train_step(inputs, targets)[0] * weights).sum()
    assert after < 0.7 * before, (before, after)
    assert train_loss < 0.7 * before


def test_predict_is_eval_mode_without_grad():
    p = program("disk_mlp")  # dropout and batchnorm
    model = make_model(p)
    inputs, targets, _ = batch(p, 6)
    first, second = model.predict(inputs), model.predict(inputs)
    assert list(first) == p.outputs
    for key in p.outputs:
        assert first[key].shape == (1, 6, *p.node(key).shape)
        assert not first[key].requires_grad
        assert torch.equal(first[key], second[key])
    tracked = model.state(0)["h:2:batchnorm.num_batches_tracked"]
    assert tracked.item() == 0  # predict leaves the running statistics alone
    model.train_step(inputs, targets)
    assert model.state(0)["h:2:batchnorm.num_batches_tracked"].item() == 1


def test_set_learning_rate():
    p = program("disk_mlp")
    model = make_model(p)
    inputs, targets, _ = batch(p, 6)
    model.set_learning_rate(0.0)
    assert all(group["lr"] == 0.0 for group in model.optimizer.param_groups)
    before = model.state(0)
    model.train_step(inputs, targets)
    after = model.state(0)
    assert torch.equal(before["out.weight"], after["out.weight"])
    model.set_learning_rate(0.01)
    model.train_step(inputs, targets)
    assert not torch.equal(after["out.weight"], model.state(0)["out.weight"])


def test_state_round_trip():
    p = program("caux")
    model = make_model(p)
    inputs, targets, _ = batch(p, 8)
    model.train_step(inputs, targets)
    saved = model.state(0)
    assert list(saved) == list(initial_state(p, gen(0)))
    assert all(t.device.type == "cpu" for t in saved.values())
    expected = model.predict(inputs)
    bias = saved["out.bias"].clone()
    saved["out.bias"].add_(100)  # a copy: the model does not change
    assert torch.equal(model.state(0)["out.bias"], bias)
    saved["out.bias"] = bias

    model.train_step(inputs, targets)
    assert not torch.equal(model.predict(inputs)["out"], expected["out"])
    model.load_state(0, saved)
    for key, value in model.predict(inputs).items():
        assert torch.equal(value, expected[key])
    fresh = TorchModel(p, [saved])
    for key, value in fresh.predict(inputs).items():
        assert torch.equal(value, expected[key])
    with pytest.raises(IndexError):
        model.state(1)
    with pytest.raises(RuntimeError):
        model.load_state(0, {k: v for k, v in saved.items() if k != "out.bias"})


def test_one_replica_only_and_replica_axis_checked():
    p = program("wsn")
    state = initial_state(p, gen(0))
    with pytest.raises(ValueError, match="one replica"):
        TorchModel(p, [state, state])
    model = TorchModel(p, [state])
    assert model.replicas == 1 and model.device == torch.device("cpu") and model.program is p
    with pytest.raises(ValueError, match="replica axis"):
        model.predict({"x": torch.zeros(3, 2, 2, 14, 14)})


def test_float64_model():
    p = program("saux")
    model = TorchModel(p, [initial_state(p, gen(0), dtype=torch.float64)], dtype=torch.float64)
    inputs, targets, _ = batch(p, 4)  # float32 inputs are cast
    losses = model.train_step(inputs, targets)
    assert losses.dtype == torch.float64
    assert model.predict(inputs)["out"].dtype == torch.float64
    assert model.state(0)["out.weight"].dtype == torch.float64
