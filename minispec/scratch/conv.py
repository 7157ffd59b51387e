"""Conv2d by im2col (Tensor.unfold + one batched matmul) and its col2im."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minispec.scratch.module import Module, draw_replicas


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def pad2d(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Zero padding of the last two axes: [..., H, W] -> [..., H+2ph, W+2pw]."""
    if ph == 0 and pw == 0:
        return x
    *lead, h, w = x.shape
    out = x.new_zeros(*lead, h + 2 * ph, w + 2 * pw)
    out[..., ph : ph + h, pw : pw + w] = x
    return out


def unfold2d(x: torch.Tensor, kh: int, kw: int, sh: int, sw: int) -> torch.Tensor:
    """Sliding windows, a view: [..., H, W] -> [..., Ho, Wo, kh, kw], Ho = (H - kh) // sh + 1."""
    return x.unfold(-2, kh, sh).unfold(-2, kw, sw)


def fold2d(cols: torch.Tensor, h: int, w: int, sh: int, sw: int) -> torch.Tensor:
    """The adjoint of unfold2d (col2im): [..., Ho, Wo, kh, kw] -> [..., h, w].

    Each window element is added back where it came from: one strided slice
    add per kernel offset (i, j).
    """
    *lead, ho, wo, kh, kw = cols.shape
    out = cols.new_zeros(*lead, h, w)
    for i in range(kh):
        for j in range(kw):
            out[..., i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += cols[..., i, j]
    return out


class Conv2d(Module):
    """2-D cross-correlation, one filter bank per replica.

    Input: [R, B, C, H, W]   Output: [R, B, O, Ho, Wo], Ho = (H + 2p - kh) // s + 1
    weight: [R, O, C, kh, kw]   bias: [R, O]

    With cols = im2col(pad(x)) of shape [R, B*Ho*Wo, C*kh*kw] and W as [R, O, C*kh*kw]:

        forward:  y = cols W^T + b
        backward: dL/dW += g^T cols     dL/db += sum g     dL/dx = crop(col2im(g W))
    """

    _cache = ("_cols", "_xshape")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
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
        self.in_channels, self.out_channels, self.replicas = in_channels, out_channels, replicas
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        kh, kw = self.kernel_size
        shapes = {"weight": (out_channels, in_channels, kh, kw)}
        if bias:
            shapes["bias"] = (out_channels,)
        fan_in, fan_out = in_channels * kh * kw, out_channels * kh * kw
        values = draw_replicas(shapes, fan_in, fan_out, replicas, scheme, options, generator, dtype, device)
        self._param("weight", values["weight"])
        self.bias = self._param("bias", values["bias"]) if bias else None
        self._cols: torch.Tensor | None = None
        self._xshape: tuple[int, ...] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, b, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        patches = unfold2d(pad2d(x, ph, pw), kh, kw, sh, sw)  # [R, B, C, Ho, Wo, kh, kw]
        ho, wo = patches.shape[3], patches.shape[4]
        cols = patches.permute(0, 1, 3, 4, 2, 5, 6).reshape(r, b * ho * wo, c * kh * kw)
        self._cols, self._xshape = cols, (r, b, c, h, w)
        wt = self.weight.value.view(r, self.out_channels, -1).transpose(1, 2)
        y = torch.bmm(cols, wt) if self.bias is None else torch.baddbmm(self.bias.value.unsqueeze(1), cols, wt)
        return y.view(r, b, ho, wo, self.out_channels).permute(0, 1, 4, 2, 3)

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        r, b, c, h, w = self._xshape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        ho, wo = grad.shape[3], grad.shape[4]
        g = grad.permute(0, 1, 3, 4, 2).reshape(r, b * ho * wo, self.out_channels)
        wm = self.weight.value.view(r, self.out_channels, -1)
        self.weight.grad.view(r, self.out_channels, -1).baddbmm_(g.transpose(1, 2), self._cols)  # dW += g^T cols
        if self.bias is not None:
            self.bias.grad.add_(g.sum(1))  # db += sum g
        gcols = torch.bmm(g, wm).view(r, b, ho, wo, c, kh, kw).permute(0, 1, 4, 2, 3, 5, 6)
        gx = fold2d(gcols, h + 2 * ph, w + 2 * pw, sh, sw)  # col2im
        return gx[..., ph : ph + h, pw : pw + w] if ph or pw else gx

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, replicas={self.replicas}, bias={self.bias is not None}"
        )
