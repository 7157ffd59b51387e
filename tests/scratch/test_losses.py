"""Every loss against torch (reduction='mean' per replica) and by finite differences."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minispec.scratch import BCELoss, CrossEntropyLoss, MSELoss, NLLLoss

from .helpers import F64, TOL, directional_fd, gen, randn

nn = torch.nn
EXAMPLES = settings(max_examples=15, deadline=None)


def make_case(kind, r, b, k, g):
    """(prediction, target) of a loss kind, shapes [R, B, k]."""
    if kind == "mse":
        return randn((r, b, k), g), randn((r, b, k), g)
    if kind == "bce":
        p = torch.rand((r, b, k), generator=g, dtype=F64) * 0.9 + 0.05
        return p, torch.randint(0, 2, (r, b, k), generator=g).to(F64)
    logits = randn((r, b, k), g) * 2
    target = torch.randint(0, k, (r, b), generator=g)
    if kind == "nll":
        logits = logits - logits.logsumexp(-1, keepdim=True)
    return logits, target


LOSSES = {
    "mse": (MSELoss, nn.MSELoss),
    "bce": (BCELoss, nn.BCELoss),
    "cross_entropy": (CrossEntropyLoss, nn.CrossEntropyLoss),
    "nll": (NLLLoss, nn.NLLLoss),
}


def check_loss(ours, theirs, pred, target, g):
    loss = ours.forward(pred, target)
    grad = ours.backward()
    assert loss.shape == (pred.shape[0],) and grad.shape == pred.shape
    for k in range(pred.shape[0]):
        pk = pred[k].clone().requires_grad_(True)
        ref = theirs(pk, target[k])
        ref.backward()
        torch.testing.assert_close(loss[k], ref.detach(), **TOL)
        torch.testing.assert_close(grad[k], pk.grad, **TOL)
    # d(sum_r loss_r)/d prediction by central differences
    analytic = grad.clone()
    for _ in range(3):
        directional_fd(lambda: float(ours.forward(pred, target).sum()), pred, analytic, g)


@EXAMPLES
@given(kind=st.sampled_from(sorted(LOSSES)), r=st.sampled_from([1, 3]), b=st.integers(1, 4), k=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_loss(kind, r, b, k, seed):
    g = gen(seed)
    pred, target = make_case(kind, r, b, k, g)
    ours, theirs = LOSSES[kind]
    check_loss(ours(), theirs(), pred, target, g)


def test_every_loss_once():
    for kind, (ours, theirs) in LOSSES.items():
        g = gen(3)
        pred, target = make_case(kind, 2, 5, 3, g)
        check_loss(ours(), theirs(), pred, target, g)


def test_bce_clamps_like_torch():
    p = torch.tensor([[[0.0], [1.0], [1e-50], [0.3]]], dtype=F64)
    t = torch.tensor([[[1.0], [0.0], [1.0], [1.0]]], dtype=F64)
    ours = BCELoss()
    loss, grad = ours.forward(p, t), ours.backward()
    pk = p[0].clone().requires_grad_(True)
    ref = nn.BCELoss()(pk, t[0])
    ref.backward()
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    torch.testing.assert_close(loss[0], ref.detach(), **TOL)
    torch.testing.assert_close(grad[0], pk.grad, **TOL)


def test_cross_entropy_large_logits_are_stable():
    x = torch.tensor([[[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]]], dtype=F64)
    t = torch.tensor([[0, 2]])
    ours = CrossEntropyLoss()
    loss = ours.forward(x, t)
    torch.testing.assert_close(loss[0], nn.CrossEntropyLoss()(x[0], t[0]), **TOL)
    assert torch.isfinite(ours.backward()).all()


def test_mse_mean_over_all_elements_of_a_replica():
    pred = torch.zeros(2, 3, 4, dtype=F64)
    target = torch.ones(2, 3, 4, dtype=F64)
    target[1] *= 2
    torch.testing.assert_close(MSELoss()(pred, target), torch.tensor([1.0, 4.0], dtype=F64))
