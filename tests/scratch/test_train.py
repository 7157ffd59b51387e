"""End to end: a 2-25-25-25-1 MLP learns the disk problem with SGD, three replicas at once."""

from __future__ import annotations

import math

import torch

from minispec.scratch import SGD, Linear, MSELoss, ReLU, Sequential, Tanh


def disk(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Points uniform in [0, 1]^2, label 1 inside the disk of centre (0.5, 0.5) and radius 1/sqrt(2 pi)."""
    x = torch.rand(n, 2, generator=g)
    inside = ((x - 0.5) ** 2).sum(1) < 1 / (2 * math.pi)
    return x, inside.float().unsqueeze(1)


def test_mlp_learns_the_disk():
    r, batch = 3, 100
    g = torch.Generator().manual_seed(0)
    x, t = disk(1000, g)
    gens = [torch.Generator().manual_seed(s) for s in range(r)]
    model = Sequential(
        Linear(2, 25, replicas=r, generator=gens),
        ReLU(),
        Linear(25, 25, replicas=r, generator=gens),
        Tanh(),
        Linear(25, 25, replicas=r, generator=gens),
        ReLU(),
        Linear(25, 1, replicas=r, generator=gens),
    )
    loss_fn = MSELoss()
    opt = SGD(model.params(), lr=0.1, momentum=0.9)
    xr, tr = x.expand(r, -1, -1), t.expand(r, -1, -1)
    with torch.no_grad():
        for epoch in range(40):
            order = torch.randperm(1000, generator=g)
            for i in range(0, 1000, batch):
                idx = order[i : i + batch]
                opt.zero_grad()
                loss_fn.forward(model.forward(xr[:, idx]), tr[:, idx])
                model.backward(loss_fn.backward())
                opt.step()
        errors = ((model.forward(xr) > 0.5).float() != tr).float().mean((1, 2))
    assert (errors < 0.15).all(), errors


def test_training_steps_match_torch_autograd():
    """Twenty SGD steps with momentum, float64: the same parameters as torch.nn + torch.optim."""
    g = torch.Generator().manual_seed(1)
    x, t = disk(200, g)
    x, t = x.double(), t.double()
    model = Sequential(
        Linear(2, 25, generator=torch.Generator().manual_seed(7), dtype=torch.float64),
        Tanh(),
        Linear(25, 25, generator=torch.Generator().manual_seed(8), dtype=torch.float64),
        ReLU(),
        Linear(25, 1, generator=torch.Generator().manual_seed(9), dtype=torch.float64),
    )
    nn = torch.nn
    ref = nn.Sequential(nn.Linear(2, 25), nn.Tanh(), nn.Linear(25, 25), nn.ReLU(), nn.Linear(25, 1)).double()
    with torch.no_grad():
        for (name, p), q in zip(model.named_params().items(), ref.parameters()):
            q.copy_(p.value[0])
    loss_fn, opt = MSELoss(), SGD(model.params(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for step in range(20):
        idx = slice(step * 10 % 200, step * 10 % 200 + 10)
        with torch.no_grad():
            opt.zero_grad()
            loss = loss_fn.forward(model.forward(x[None, idx]), t[None, idx])
            model.backward(loss_fn.backward())
            opt.step()
        ref_opt.zero_grad()
        ref_loss = nn.functional.mse_loss(ref(x[idx]), t[idx])
        ref_loss.backward()
        ref_opt.step()
        torch.testing.assert_close(loss[0], ref_loss.detach(), rtol=1e-10, atol=1e-12)
    for p, q in zip(model.params(), ref.parameters()):
        torch.testing.assert_close(p.value[0], q.detach(), rtol=1e-10, atol=1e-12)
