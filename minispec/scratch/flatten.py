"""Flatten: every sample axis into one."""

from __future__ import annotations

import torch

from minispec.scratch.module import Module


class Flatten(Module):
    """Input: [R, B, *sample]   Output: [R, B, prod(sample)]

    forward:  y = reshape(x)
    backward: dL/dx = reshape(g) back to x's shape
    """

    _cache = ("_shape",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._shape = x.shape
        return x.reshape(x.shape[0], x.shape[1], -1)

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return grad.reshape(self._shape)
