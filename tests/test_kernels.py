"""The shared fast kernels equal torch's own up to float rounding, and the
runner's per-replica batch gather equals plain indexing."""

import sys

import pytest
import torch

from minispec import kernels
from minispec.allocator import keep_freed_memory
from minispec.backends.torch_nn.stacked import Tanh
from minispec.experiment.training import take


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 2.5e-7), (torch.float64, 1e-15)])
def test_tanh_through_the_sigmoid_is_tanh(dtype, atol):
    x = torch.cat([torch.linspace(-30, 30, 100_001, dtype=dtype), torch.tensor([0.0, -0.0, 1e-30, -1e-30], dtype=dtype)])
    before = x.clone()
    y = kernels.tanh(x)
    torch.testing.assert_close(y, torch.tanh(x), rtol=0, atol=atol)
    assert torch.equal(x, before)  # the input is left alone
    assert y.abs().max() <= 1 and torch.equal(y[-4:-2], torch.zeros(2, dtype=dtype))
    assert torch.equal(y, torch.mul(x, 2).sigmoid_().mul_(2).sub_(1))  # 2s - 1 in one pass: the same floats


def test_tanh_backward_is_the_derivative():
    x = torch.randn(7, 5, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(7, 5, 3, dtype=torch.float64)
    (expected,) = torch.autograd.grad(torch.tanh(x), x, g)
    torch.testing.assert_close(kernels.tanh_backward(g, kernels.tanh(x.detach())), expected, rtol=1e-12, atol=1e-15)


def test_stacked_tanh_gradient_against_autograd_and_finite_differences():
    x = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Tanh.apply, (x,))
    g = torch.randn(3, 4, 6, dtype=torch.float64)
    (ours,) = torch.autograd.grad(Tanh.apply(x), x, g)
    (theirs,) = torch.autograd.grad(torch.tanh(x), x, g)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(4, 30), (4, 30, 2), (4, 30, 1, 5, 5)])
def test_take_gathers_each_replicas_samples(shape):
    samples = torch.randn(shape) if len(shape) > 2 else torch.randint(0, 9, shape)
    order = torch.stack([torch.randperm(30, generator=torch.Generator().manual_seed(k)) for k in range(4)])
    index = order[:, 10:20]  # a step's slice of the epoch's orders, as the loop takes it
    expected = samples[torch.arange(4).unsqueeze(1), index]
    assert torch.equal(take(samples, index), expected)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_kept_on_glibc():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process, then the same answer
