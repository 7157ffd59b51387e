"""The framework on CUDA: the same numbers as on the CPU (float64)."""

from __future__ import annotations

import pytest
import torch

from minispec.scratch import (
    SGD,
    BatchNorm2d,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)

from .helpers import windows_with_infinities_and_nan

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def build(r: int) -> Sequential:
    return Sequential(
        Conv2d(1, 4, 3, padding=1, replicas=r, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
        BatchNorm2d(4, replicas=r, dtype=torch.float64),
        ReLU(),
        MaxPool2d(2),
        Flatten(),
        Dropout(0.3, replicas=r, generators=[torch.Generator().manual_seed(k) for k in range(r)]),
        Linear(4 * 3 * 3, 5, replicas=r, generator=torch.Generator().manual_seed(1), dtype=torch.float64),
    )


def test_cuda_matches_cpu():
    r = 2
    g = torch.Generator().manual_seed(3)
    x = torch.randn(r, 6, 1, 6, 6, generator=g, dtype=torch.float64)
    t = torch.randint(0, 5, (r, 6), generator=g)
    results = []
    for device in ("cpu", "cuda"):
        model = build(r).to(device)
        loss_fn, opt = CrossEntropyLoss(), SGD(model.params(), lr=0.1, momentum=0.9)
        with torch.no_grad():
            for _ in range(3):
                opt.zero_grad()
                loss = loss_fn.forward(model.forward(x.to(device)), t.to(device))
                model.backward(loss_fn.backward())
                opt.step()
        assert all(p.value.device.type == device for p in model.params())
        results.append((loss.cpu(), [p.value.cpu() for p in model.params()], [b.value.cpu() for b in model.buffers()]))
    (l0, p0, b0), (l1, p1, b1) = results
    torch.testing.assert_close(l0, l1)
    for a, b in zip(p0 + b0, p1 + b1):
        torch.testing.assert_close(a, b)


def test_cuda_maxpool_infinite_maxima_and_nan_like_the_cpu():
    """`first_maximum` leans on sign(NaN) = 0 (inf - inf is NaN): the device must
    route an infinite maximum, an all -inf window and a NaN window as the CPU does."""
    x = windows_with_infinities_and_nan()
    cot = torch.randn(1, 2, 2, 2, 3, generator=torch.Generator().manual_seed(4), dtype=x.dtype)
    results = []
    for device in ("cpu", "cuda"):
        pool = MaxPool2d(2)
        y = pool.forward(x.to(device))
        results.append((y.cpu(), pool.backward(cot.to(device)).cpu()))
    (y0, g0), (y1, g1) = results
    torch.testing.assert_close(y0, y1, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(g0, g1, rtol=0, atol=0)
