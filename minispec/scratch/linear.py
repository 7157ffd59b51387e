"""Linear: an affine map per replica."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minispec.scratch.module import Module, draw_replicas


class Linear(Module):
    """y = x W^T + b, one (W, b) per replica.

    Input: [R, B, in]  (or [R, B, ..., in])   Output: [R, B, out]
    weight: [R, out, in]   bias: [R, out]

        forward:  y = x W^T + b
        backward: dL/dx = g W      dL/dW += g^T x      dL/db += sum_batch g

    With `input_grad` False (a first layer, its input the data) dL/dx is skipped.
    """

    _cache = ("_x",)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        replicas: int = 1,
        bias: bool = True,
        *,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        scheme: str = "torch",
        options: dict | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.replicas = in_features, out_features, replicas
        shapes = {"weight": (out_features, in_features)}
        if bias:
            shapes["bias"] = (out_features,)
        values = draw_replicas(shapes, in_features, out_features, replicas, scheme, options, generator, dtype, device)
        self._param("weight", values["weight"])
        self.bias = self._param("bias", values["bias"]) if bias else None
        self._x: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        if x.dim() != 3:
            x = x.reshape(x.shape[0], -1, x.shape[-1])
        self._x = x
        wt = self.weight.value.transpose(1, 2)
        y = torch.bmm(x, wt) if self.bias is None else torch.baddbmm(self.bias.value.unsqueeze(1), x, wt)
        return y if len(lead) == 2 else y.view(*lead, self.out_features)

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        x = self._x
        lead = grad.shape[:-1]
        g = grad if grad.dim() == 3 else grad.reshape(x.shape[0], x.shape[1], self.out_features)
        add_weight_gradient(self.weight.grad, g, x)  # dW += g^T x
        if self.bias is not None:
            self.bias.grad.add_(g.sum(1))  # db += sum_b g
        if not self.input_grad:
            return None
        gx = torch.bmm(g, self.weight.value)  # dx = g W
        return gx if len(lead) == 2 else gx.view(*lead, self.in_features)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, replicas={self.replicas}, bias={self.bias is not None}"


def add_weight_gradient(grad: torch.Tensor, g: torch.Tensor, x: torch.Tensor) -> None:
    """grad += g^T x, for grad [R, O, K] from g [R, N, O] and x [R, N, K].

    When K < O it is computed as (x^T g)^T: a batched matmul whose result
    has few columns runs several times slower in MKL than its transpose (the
    SAUX extractor's first convolution, 1 -> 32 channels: its backward took
    half the time after this, `benchmarks/layers.py`).
    """
    if x.shape[-1] < g.shape[-1]:
        grad.add_(torch.bmm(x.transpose(1, 2), g).transpose(1, 2))
    else:
        grad.baddbmm_(g.transpose(1, 2), x)
