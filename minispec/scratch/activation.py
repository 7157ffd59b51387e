"""Element-wise activations and Softmax. No parameters; any number of replicas."""

from __future__ import annotations

import torch

from minispec import kernels
from minispec.scratch.module import Module


class ReLU(Module):
    """Input: [R, B, ...]   Output: same

    forward:  y = max(x, 0)
    backward: dL/dx = g * [x > 0]  (= g * [y > 0])

    The backward is one fused elementwise pass, ATen's `threshold_backward`
    (g where y > 0, else 0): `torch.where(y > 0, g, 0)` computes the same in
    two passes through a boolean mask, several times slower on feature maps.
    """

    _cache = ("_y",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._y = torch.relu(x)
        return self._y

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.threshold_backward(grad, self._y, 0.0)


class LeakyReLU(Module):
    """Input: [R, B, ...]   Output: same

    forward:  y = x if x > 0 else slope * x
    backward: dL/dx = g if x > 0 else slope * g
    """

    _cache = ("_x",)

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._x = x
        return torch.where(x > 0, x, x * self.slope)

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        # one fused pass (ATen's leaky_relu_backward): g if x > 0 else slope * g
        return torch.ops.aten.leaky_relu_backward(grad, self._x, self.slope, False)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class Tanh(Module):
    """Input: [R, B, ...]   Output: same

    forward:  y = tanh(x) = 2 sigmoid(2x) - 1
    backward: dL/dx = g * (1 - y^2)

    Both through `minispec.kernels` (the sigmoid form is several times faster
    than torch.tanh on the CPU; the backward is one fused pass).
    """

    _cache = ("_y",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._y = kernels.tanh(x)
        return self._y

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return kernels.tanh_backward(grad, self._y)


class Sigmoid(Module):
    """Input: [R, B, ...]   Output: same

    forward:  y = 1 / (1 + exp(-x))
    backward: dL/dx = g * y * (1 - y)
    """

    _cache = ("_y",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._y = torch.sigmoid(x)
        return self._y

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        y = self._y
        return grad * y * (1 - y)


class Softmax(Module):
    """Softmax over the last axis.   Input: [R, B, ..., K]   Output: same

    forward:  y_i = exp(x_i - max x) / sum_j exp(x_j - max x)
    backward: dL/dx_i = y_i (g_i - sum_j g_j y_j)
    """

    _cache = ("_y",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = (x - x.amax(-1, keepdim=True)).exp_()
        self._y = e / e.sum(-1, keepdim=True)
        return self._y

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        y = self._y
        return y * (grad - (grad * y).sum(-1, keepdim=True))


class LogSoftmax(Module):
    """Log-softmax over the last axis, max-shifted.   Input: [R, B, ..., K]   Output: same

    forward:  y_i = x_i - max x - log sum_j exp(x_j - max x)
    backward: dL/dx_i = g_i - softmax(x)_i sum_j g_j
    """

    _cache = ("_softmax",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifted = x - x.amax(-1, keepdim=True)
        log_sum = shifted.exp().sum(-1, keepdim=True).log_()
        y = shifted - log_sum
        self._softmax = y.exp()
        return y

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return grad - self._softmax * grad.sum(-1, keepdim=True)

