"""Shared helpers of the scratch tests: torch references and finite differences."""

from __future__ import annotations

from collections.abc import Callable

import torch

from minispec.scratch import Module

F64 = torch.float64
TOL = dict(rtol=1e-9, atol=1e-11)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(shape, g: torch.Generator, dtype=F64) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=g, dtype=dtype)


def load_replica(ours: Module, theirs: torch.nn.Module, k: int) -> torch.nn.Module:
    """Copy replica k of our parameters and buffers into a torch module (same names)."""
    params = ours.named_params()
    buffers = ours.named_buffers()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(params[name].value[k])
        for name, b in theirs.named_buffers():
            b.copy_(buffers[name].value[k])
    return theirs


def check_against_torch(
    ours: Module,
    make_torch: Callable[[int], torch.nn.Module],
    x: torch.Tensor,
    g: torch.Generator,
) -> None:
    """Forward, input gradient and parameter gradients of each replica against torch autograd,
    with a random cotangent. `make_torch(k)` builds a float64 torch module; replica k's
    parameters and buffers are copied into it before our forward runs."""
    r = x.shape[0]
    refs = [load_replica(ours, make_torch(k), k) for k in range(r)]
    with torch.no_grad():
        y = ours.forward(x)
        cot = randn(y.shape, g)
        ours.zero_grad()
        gx = ours.backward(cot)
    assert gx.shape == x.shape
    params = ours.named_params()
    for k, ref in enumerate(refs):
        xk = x[k].clone().requires_grad_(True)
        yk = ref(xk)
        yk.backward(cot[k])
        torch.testing.assert_close(y[k], yk.detach(), **TOL)
        torch.testing.assert_close(gx[k], xk.grad, **TOL)
        for name, p in ref.named_parameters():
            torch.testing.assert_close(params[name].grad[k], p.grad, **TOL)
        for name, b in ref.named_buffers():
            torch.testing.assert_close(ours.named_buffers()[name].value[k], b, **TOL)


def directional_fd(phi: Callable[[], float], t: torch.Tensor, analytic: torch.Tensor, g: torch.Generator,
                   steps: tuple[float, ...] = (1e-6, 1e-8)) -> None:
    """Central difference of phi along a random direction v of t against <analytic, v>.

    ReLU, max-pooling and LeakyReLU have kinks: a step that crosses one (a pooling tie
    within 1e-6) measures the slope of both sides at once. A kink at distance d is
    crossed only by steps longer than d, so the check passes when some step in
    `steps` (longest first) agrees; a wrong gradient disagrees at every step."""
    v = randn(t.shape, g, t.dtype)
    exact = float((analytic * v).sum())
    orig = t.clone()
    measured = []
    for eps in steps:
        t.copy_(orig + eps * v)
        plus = phi()
        t.copy_(orig - eps * v)
        minus = phi()
        t.copy_(orig)
        numeric = (plus - minus) / (2 * eps)
        if abs(numeric - exact) <= 1e-6 * max(1.0, abs(exact)):
            return
        measured.append(numeric)
    raise AssertionError(f"finite differences {measured} (steps {steps}) against the analytic {exact}")


def fd_check_module(ours: Module, x: torch.Tensor, g: torch.Generator, before_forward: Callable[[], None] = lambda: None) -> None:
    """Finite-difference check of a module's input and parameter gradients, random cotangent,
    along three random directions each."""
    with torch.no_grad():
        before_forward()
        y = ours.forward(x)
        cot = randn(y.shape, g)
        ours.zero_grad()
        gx = ours.backward(cot).clone()
        grads = {name: p.grad.clone() for name, p in ours.named_params().items()}

        def phi() -> float:
            before_forward()
            return float((ours.forward(x) * cot).sum())

        for _ in range(3):
            directional_fd(phi, x, gx, g)
            for name, p in ours.named_params().items():
                directional_fd(phi, p.value, grads[name], g)


def windows_with_infinities_and_nan(channels_last: bool = False) -> torch.Tensor:
    """[1, 2, 2, 4, 6] floats for 2 x 2 max-pooling with every edge case of a maximum
    found by comparing max - x with 0 (inf - inf is NaN): a tie of +inf, a window of
    -inf only, a lone +inf, and one NaN (in the window [1, 1, 2:4, 4:6])."""
    inf = float("inf")
    x = randn((1, 2, 2, 4, 6), gen(3))
    x[0, 0, 0, 0, 0:2] = inf  # a tie of +inf: the first wins
    x[0, 0, 1, 2:4, 2:4] = -inf  # a window of -inf only
    x[0, 1, 0, 1, 3] = inf
    x[0, 1, 1, 2, 4] = float("nan")
    return x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3) if channels_last else x
