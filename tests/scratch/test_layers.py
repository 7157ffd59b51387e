"""Every layer against torch autograd (float64, random cotangent), and by finite differences."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minispec.scratch import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    LogSoftmax,
    Tanh,
)

from .helpers import F64, check_against_torch, fd_check_module, gen, randn, windows_with_infinities_and_nan

nn = torch.nn
EXAMPLES = settings(max_examples=15, deadline=None)
replicas = st.sampled_from([1, 3])
seeds = st.integers(0, 2**31 - 1)


def both_checks(ours, make_torch, x, seed, before_forward=lambda: None):
    g = gen(seed)
    before_forward()
    check_against_torch(ours, make_torch, x, g)
    fd_check_module(ours, x, g, before_forward)


@EXAMPLES
@given(r=replicas, b=st.integers(1, 4), i=st.integers(1, 5), o=st.integers(1, 5), bias=st.booleans(), seed=seeds)
def test_linear(r, b, i, o, bias, seed):
    ours = Linear(i, o, replicas=r, bias=bias, generator=gen(seed), dtype=F64)
    x = randn((r, b, i), gen(seed + 1))
    both_checks(ours, lambda k: nn.Linear(i, o, bias=bias, dtype=F64), x, seed)


def assert_skips_input_gradient(layer, x: torch.Tensor, cot: torch.Tensor, grads: list[torch.Tensor]) -> None:
    """With `input_grad` False (a first layer) `layer` returns no dL/dx, and the
    parameter gradients `grads` it gave with it."""
    layer.input_grad = False
    layer.forward(x)
    layer.zero_grad()
    assert layer.backward(cot) is None
    for p, before in zip(layer.params(), grads):
        torch.testing.assert_close(p.grad, before, rtol=0, atol=0)


def test_linear_without_input_gradient_keeps_the_parameter_gradients():
    """A first layer (its input the data: input_grad False) returns no dL/dx, and the
    same parameter gradients as when it does."""
    ours = Linear(3, 4, replicas=2, generator=gen(0), dtype=F64)
    x = randn((2, 5, 3), gen(1))
    cot = randn((2, 5, 4), gen(2))
    ours.forward(x)
    ours.zero_grad()
    assert ours.backward(cot) is not None
    grads = [p.grad.clone() for p in ours.params()]
    assert_skips_input_gradient(ours, x, cot, grads)


def test_linear_extra_axes():
    ours = Linear(3, 2, replicas=2, dtype=F64)
    x = randn((2, 4, 5, 3), gen(0))
    both_checks(ours, lambda k: nn.Linear(3, 2, dtype=F64), x, 1)


@st.composite
def conv_cases(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    h, w = draw(st.integers(3, 7)), draw(st.integers(3, 7))
    return k, s, p, h, w


@EXAMPLES
@given(r=replicas, b=st.integers(1, 4), c=st.integers(1, 3), o=st.integers(1, 3), case=conv_cases(), bias=st.booleans(), seed=seeds)
def test_conv2d(r, b, c, o, case, bias, seed):
    k, s, p, h, w = case
    ours = Conv2d(c, o, k, stride=s, padding=p, replicas=r, bias=bias, generator=gen(seed), dtype=F64)
    x = randn((r, b, c, h, w), gen(seed + 1))
    both_checks(ours, lambda _: nn.Conv2d(c, o, k, stride=s, padding=p, bias=bias, dtype=F64), x, seed)


def test_conv2d_on_channels_last_input_and_without_input_gradient():
    """The layout a previous convolution leaves (channels last) gives the same numbers, and a first
    layer (input_grad False) returns no dL/dx but the same parameter gradients."""
    ours = Conv2d(3, 4, 3, stride=2, padding=1, replicas=2, generator=gen(0), dtype=F64)
    x = randn((2, 5, 3, 7, 6), gen(1))
    x_last = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    y = ours.forward(x)
    cot = randn(y.shape, gen(2))
    ours.zero_grad()
    gx = ours.backward(cot)
    grads = [p.grad.clone() for p in ours.params()]
    torch.testing.assert_close(ours.forward(x_last), y, rtol=0, atol=0)
    ours.zero_grad()
    torch.testing.assert_close(ours.backward(cot), gx, rtol=0, atol=0)
    assert_skips_input_gradient(ours, x, cot, grads)


@st.composite
def pool_cases(draw):
    k = draw(st.integers(1, 3))
    s = draw(st.sampled_from([None, 1, 2]))
    h, w = draw(st.integers(3, 7)), draw(st.integers(3, 7))
    return k, s, h, w


@EXAMPLES
@given(r=replicas, b=st.integers(1, 4), c=st.integers(1, 3), case=pool_cases(), seed=seeds)
def test_maxpool2d(r, b, c, case, seed):
    k, s, h, w = case
    x = randn((r, b, c, h, w), gen(seed))
    both_checks(MaxPool2d(k, s), lambda _: nn.MaxPool2d(k, s), x, seed)


@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_maxpool2d_breaks_ties_like_torch_and_keeps_the_layout(kernel, channels_last):
    """After a ReLU most windows hold several zeros: the gradient goes where torch sends it
    (the first maximum), and a channels-last input (as a convolution leaves it) gets a
    channels-last gradient."""
    x = randn((2, 3, 4, 6, 12), gen(0)).clamp_min(0.0)
    if channels_last:
        x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    ours = MaxPool2d(kernel)
    y = ours.forward(x)
    cot = randn(y.shape, gen(1))
    gx = ours.backward(cot)
    assert gx.stride() == x.stride()
    for k in range(2):
        yk, gk = torch_maxpool(x[k], kernel, cot[k])
        torch.testing.assert_close(y[k], yk, rtol=0, atol=0)
        torch.testing.assert_close(gx[k], gk, rtol=0, atol=0)


def torch_maxpool(x: torch.Tensor, kernel: int, cot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's max-pooling of one replica x [B, C, H, W]: its output and dL/dx for the cotangent `cot`."""
    x = x.clone().requires_grad_(True)
    y = nn.MaxPool2d(kernel)(x)
    y.backward(cot)
    return y.detach(), x.grad


def test_maxpool2d_2x2_channels_last_every_tie_pattern():
    """2 x 2 pooling of a channels-last map against torch on every window of values
    in {0, 1, 2}: 81 windows, ties between any of the four positions included."""
    patterns = torch.cartesian_prod(*[torch.arange(3.0, dtype=torch.float64)] * 4)  # [81, 4], row-major window order
    tiles = patterns.view(9, 9, 2, 2).permute(0, 2, 1, 3).reshape(18, 18)  # 9 x 9 windows of 2 x 2
    x = torch.stack([tiles, tiles.flip(0)])  # two channels, different windows
    x = x.view(1, 1, 2, 18, 18).permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    ours = MaxPool2d(2)
    y = ours.forward(x)
    cot = randn(y.shape, gen(2))
    gx = ours.backward(cot)
    yk, gk = torch_maxpool(x[0], 2, cot[0])
    torch.testing.assert_close(y[0], yk, rtol=0, atol=0)
    torch.testing.assert_close(gx[0], gk, rtol=0, atol=0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_maxpool2d_infinite_maxima_route_like_torch_and_nan_stays_in_its_window(channels_last):
    """`first_maximum` compares max - plane with 0: with inf - inf = NaN it must still
    find an infinite maximum (and an all -inf window) where torch does, and a window
    holding a NaN must not spread NaN to the gradients of other windows."""
    x = windows_with_infinities_and_nan(channels_last)
    ours = MaxPool2d(2)
    y = ours.forward(x)
    cot = randn(y.shape, gen(4))
    gx = ours.backward(cot)
    yk, gk = torch_maxpool(x[0], 2, cot[0])
    torch.testing.assert_close(y[0], yk, rtol=0, atol=0, equal_nan=True)
    nan_window = torch.zeros_like(gk, dtype=torch.bool)
    nan_window[1, 1, 2:4, 4:6] = True
    torch.testing.assert_close(gx[0][~nan_window], gk[~nan_window], rtol=0, atol=0)
    assert torch.isfinite(gx).all()


@EXAMPLES
@given(r=replicas, b=st.integers(1, 4), c=st.integers(1, 3), case=pool_cases(), seed=seeds)
def test_avgpool2d(r, b, c, case, seed):
    k, s, h, w = case
    x = randn((r, b, c, h, w), gen(seed))
    both_checks(AvgPool2d(k, s), lambda _: nn.AvgPool2d(k, s), x, seed)


def _randomise_bn(bn, g):
    """Non-trivial affine parameters and running statistics."""
    bn.weight.value.copy_(randn(bn.weight.value.shape, g))
    bn.bias.value.copy_(randn(bn.bias.value.shape, g))
    bn.running_mean.value.copy_(randn(bn.running_mean.value.shape, g))
    bn.running_var.value.copy_(randn(bn.running_var.value.shape, g).abs() + 0.5)


@EXAMPLES
@given(r=replicas, b=st.integers(2, 4), c=st.integers(1, 3), length=st.sampled_from([None, 3]), training=st.booleans(), seed=seeds)
def test_batchnorm1d(r, b, c, length, training, seed):
    ours = BatchNorm1d(c, replicas=r, dtype=F64).train(training)
    _randomise_bn(ours, gen(seed))
    shape = (r, b, c) if length is None else (r, b, c, length)
    x = randn(shape, gen(seed + 1)) * 2 + 1
    both_checks(ours, lambda _: nn.BatchNorm1d(c, dtype=F64).train(training), x, seed)


@EXAMPLES
@given(r=replicas, b=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(3, 5), w=st.integers(3, 5), training=st.booleans(), seed=seeds)
def test_batchnorm2d(r, b, c, h, w, training, seed):
    ours = BatchNorm2d(c, replicas=r, dtype=F64).train(training)
    _randomise_bn(ours, gen(seed))
    x = randn((r, b, c, h, w), gen(seed + 1)) * 2 + 1
    both_checks(ours, lambda _: nn.BatchNorm2d(c, dtype=F64).train(training), x, seed)


@EXAMPLES
@given(r=replicas, b=st.integers(1, 4), f=st.integers(1, 20), p=st.sampled_from([0.0, 0.2, 0.5, 0.9]), seed=seeds)
def test_dropout(r, b, f, p, seed):
    seeds_k = [seed + 7 * k for k in range(r)]
    ours = Dropout(p, replicas=r)

    def reseed():
        ours.generators = [gen(s) for s in seeds_k]

    class SeededDropout(nn.Dropout):
        """torch's dropout draws the same mask from the global generator seeded alike."""

        def __init__(self, s):
            super().__init__(p)
            self.s = s

        def forward(self, x):
            torch.manual_seed(self.s)
            return super().forward(x)

    def make_torch(k):
        return SeededDropout(seeds_k[k])

    x = randn((r, b, f), gen(seed))
    reseed()
    check_against_torch(ours, make_torch, x, gen(seed))
    fd_check_module(ours, x, gen(seed), reseed)


ACTIVATIONS = {
    "relu": (ReLU, nn.ReLU, {}),
    "leaky_relu": (LeakyReLU, nn.LeakyReLU, {}),
    "leaky_relu_0.2": (lambda: LeakyReLU(0.2), lambda: nn.LeakyReLU(0.2), {}),
    "tanh": (Tanh, nn.Tanh, {}),
    "sigmoid": (Sigmoid, nn.Sigmoid, {}),
    "softmax": (Softmax, lambda: nn.Softmax(dim=-1), {}),
    "log_softmax": (LogSoftmax, lambda: nn.LogSoftmax(dim=-1), {}),
    "flatten": (Flatten, nn.Flatten, {}),
}


@EXAMPLES
@given(
    name=st.sampled_from(sorted(ACTIVATIONS)),
    r=replicas,
    b=st.integers(1, 4),
    sample=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seed=seeds,
)
def test_parameterless(name, r, b, sample, seed):
    ours, theirs, _ = ACTIVATIONS[name]
    x = randn((r, b, *sample), gen(seed)) * 3
    both_checks(ours(), lambda _: theirs().double(), x, seed)


def test_every_activation_once():
    for name, (ours, theirs, _) in ACTIVATIONS.items():
        x = randn((3, 4, 2, 5), gen(len(name))) * 3
        both_checks(ours(), lambda _: theirs().double(), x, 11)


@settings(max_examples=5, deadline=None)
@given(r=replicas, seed=seeds)
def test_sequential_cnn(r, seed):
    g = gen(seed)
    ours = Sequential(
        Conv2d(2, 3, 3, padding=1, replicas=r, generator=g, dtype=F64),
        BatchNorm2d(3, replicas=r, dtype=F64),
        ReLU(),
        MaxPool2d(2),
        Conv2d(3, 4, 2, stride=1, replicas=r, generator=g, dtype=F64),
        LeakyReLU(),
        AvgPool2d(2, 1),
        Flatten(),
        Linear(4 * 1 * 1, 5, replicas=r, generator=g, dtype=F64),
        BatchNorm1d(5, replicas=r, dtype=F64),
        Tanh(),
        Linear(5, 3, replicas=r, generator=g, dtype=F64),
        Softmax(),
    )

    def make_torch(_):
        return nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.BatchNorm2d(3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(3, 4, 2),
            nn.LeakyReLU(),
            nn.AvgPool2d(2, 1),
            nn.Flatten(),
            nn.Linear(4, 5),
            nn.BatchNorm1d(5),
            nn.Tanh(),
            nn.Linear(5, 3),
            nn.Softmax(dim=-1),
        ).double()

    x = randn((r, 3, 2, 6, 6), gen(seed + 1))
    both_checks(ours, make_torch, x, seed)

