"""SGD (momentum, weight decay), Adam and Adadelta against torch.optim, float64."""

from __future__ import annotations

import pytest
import torch

from minispec.scratch import SGD, Adadelta, Adam, Linear, Parameter

from .helpers import F64, gen, randn

CASES = [
    (SGD, torch.optim.SGD, dict(lr=0.1), {}),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9), {}),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.5, weight_decay=0.01), {}),
    (Adam, torch.optim.Adam, dict(lr=0.01), {}),
    (Adam, torch.optim.Adam, dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1), dict(betas=(0.8, 0.99))),
    (Adadelta, torch.optim.Adadelta, dict(), {}),
    (Adadelta, torch.optim.Adadelta, dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.05), {}),
]


@pytest.mark.parametrize("ours_cls, torch_cls, options, torch_extra", CASES)
def test_optimizer_matches_torch(ours_cls, torch_cls, options, torch_extra):
    g = gen(0)
    shapes = [(2, 3, 4), (2, 3), (1, 5)]
    ours_params = [Parameter(randn(s, g), f"p{i}") for i, s in enumerate(shapes)]
    ref_params = [torch.nn.Parameter(p.value.clone()) for p in ours_params]
    torch_options = {k: v for k, v in options.items() if k not in ("beta1", "beta2")} | torch_extra
    ours = ours_cls(ours_params, **options)
    ref = torch_cls(ref_params, **torch_options)
    for step in range(6):
        if step == 3:  # the learning rate is settable between steps
            ours.lr = ours.lr * 0.5
            for group in ref.param_groups:
                group["lr"] = ours.lr
        ours.zero_grad()
        ref.zero_grad()
        for p, q in zip(ours_params, ref_params):
            grad = randn(p.value.shape, g)
            p.grad.add_(grad)
            q.grad = grad.clone()
        with torch.no_grad():
            ours.step()
        ref.step()
        for p, q in zip(ours_params, ref_params):
            torch.testing.assert_close(p.value, q.detach(), rtol=1e-12, atol=1e-12)


def test_optimizer_updates_in_place_and_dedupes_shared_parameters():
    lin = Linear(3, 2, replicas=2, dtype=F64)
    opt = SGD(lin.params() + lin.shared_copy().params(), lr=0.1, momentum=0.9)
    assert len(opt.params) == 2
    value = lin.weight.value  # after the optimizer is built: a view of its flat storage
    (flat, _, _), = opt.groups
    assert value.data_ptr() == flat.data_ptr() and lin.bias.value.data_ptr() == flat[12:].data_ptr()
    before = value.clone()
    lin.weight.grad.fill_(1.0)
    opt.step()
    assert lin.weight.value is value  # same storage, updated in place
    torch.testing.assert_close(value, before - 0.1)  # stepped once, not once per copy
    opt.zero_grad()
    assert not lin.weight.grad.any()
