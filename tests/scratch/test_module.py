"""Module API: weight sharing against torch autograd, params/param, modes, zero_grad, to()."""

from __future__ import annotations

import pytest
import torch

from minispec.scratch import SGD, BatchNorm1d, Dropout, Linear, MSELoss, Sequential, Tanh

from .helpers import F64, TOL, gen, randn

nn = torch.nn


def test_shared_linear_applied_twice_matches_autograd():
    r, b, n = 2, 5, 4
    g = gen(0)
    first = Linear(n, n, replicas=r, generator=g, dtype=F64)
    second = first.shared_copy()
    model = Sequential(first, Tanh(), second)
    assert second.weight is first.weight and second.bias is first.bias
    assert len(model.params()) == 2 and list(model.named_params()) == ["0.weight", "0.bias"]
    x = randn((r, b, n), g)
    cot = randn((r, b, n), g)
    with torch.no_grad():
        y = model.forward(x)
        model.zero_grad()
        gx = model.backward(cot)
    for k in range(r):
        lin = nn.Linear(n, n, dtype=F64)
        with torch.no_grad():
            lin.weight.copy_(first.weight.value[k])
            lin.bias.copy_(first.bias.value[k])
        xk = x[k].clone().requires_grad_(True)
        yk = lin(torch.tanh(lin(xk)))
        yk.backward(cot[k])
        torch.testing.assert_close(y[k], yk.detach(), **TOL)
        torch.testing.assert_close(gx[k], xk.grad, **TOL)
        torch.testing.assert_close(first.weight.grad[k], lin.weight.grad, **TOL)
        torch.testing.assert_close(first.bias.grad[k], lin.bias.grad, **TOL)


def test_shared_batchnorm_shares_running_stats_and_sequential_copies():
    bn = BatchNorm1d(3, replicas=1, dtype=F64)
    other = bn.shared_copy()
    bn.forward(randn((1, 4, 3), gen(0)))
    other.forward(randn((1, 4, 3), gen(1)))
    assert other.running_mean is bn.running_mean
    assert bn.num_batches_tracked.value.item() == 2
    seq = Sequential(Linear(3, 3), Tanh())
    copy = seq.shared_copy()
    assert copy[0].weight is seq[0].weight and copy[0] is not seq[0]


def test_param_pairs_modes_zero_grad():
    model = Sequential(Linear(2, 3, replicas=2), Dropout(0.5, replicas=2), BatchNorm1d(3, replicas=2), Tanh())
    pairs = model.param()
    assert len(pairs) == 4 and all(v.shape == g.shape for v, g in pairs)
    assert pairs[0][0].shape == (2, 3, 2) and pairs[1][0].shape == (2, 3)
    assert Tanh().params() == [] and Tanh().param() == []
    model.eval()
    assert not any(m.training for m in model.modules)
    model.train()
    assert all(m.training for m in model.modules)
    for _, grad in pairs:
        grad.fill_(1.0)
    model.zero_grad()
    assert not any(grad.any() for _, grad in model.param())


def test_backward_accumulates():
    lin = Linear(3, 2, replicas=1, dtype=F64)
    x, cot = randn((1, 4, 3), gen(0)), randn((1, 4, 2), gen(1))
    lin.forward(x)
    lin.backward(cot)
    once = lin.weight.grad.clone()
    lin.forward(x)
    lin.backward(cot)
    torch.testing.assert_close(lin.weight.grad, 2 * once)


def test_to_dtype_moves_params_grads_buffers_but_not_counters():
    model = Sequential(Linear(2, 3), BatchNorm1d(3))
    model.to(dtype=F64)
    assert all(p.value.dtype == F64 and p.grad.dtype == F64 for p in model.params())
    assert model[1].running_var.value.dtype == F64
    assert model[1].num_batches_tracked.value.dtype == torch.long
    out = model.forward(torch.rand(1, 5, 2, dtype=F64))
    assert out.dtype == F64


def test_sgd_step_on_sequential_lowers_the_loss():
    torch.manual_seed(0)
    model = Sequential(Linear(2, 8, replicas=3), Tanh(), Linear(8, 1, replicas=3))
    loss_fn, opt = MSELoss(), SGD(model.params(), lr=0.1)
    x, t = torch.rand(3, 32, 2), torch.rand(3, 32, 1)
    with torch.no_grad():
        before = loss_fn.forward(model.forward(x), t)
        for _ in range(20):
            opt.zero_grad()
            loss_fn.forward(model.forward(x), t)
            model.backward(loss_fn.backward())
            opt.step()
        after = loss_fn.forward(model.forward(x), t)
    assert (after < before).all()


def test_state_and_load_state_use_torch_names():
    model = Sequential(Linear(2, 3, replicas=2), BatchNorm1d(3, replicas=2), Tanh(), Linear(3, 1, replicas=2, bias=False))
    ref = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 1, bias=False))
    ref(torch.rand(4, 2))  # move the running statistics away from their initial values
    model.load_state(1, ref.state_dict())
    state = model.state(1)
    assert set(state) == set(ref.state_dict())
    for name, value in ref.state_dict().items():
        assert torch.equal(state[name], value), name
    assert state["1.num_batches_tracked"].shape == () and state["1.num_batches_tracked"].item() == 1
    assert not torch.equal(model.state(0)["0.weight"], state["0.weight"])  # replica 0 untouched
    with pytest.raises(KeyError):
        model.load_state(0, {"0.weight": state["0.weight"]})
