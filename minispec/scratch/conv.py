"""Conv2d by im2col (Tensor.unfold + one batched matmul) and its col2im, channels last.

The windows are gathered with the channel axis innermost ([R, B, H, W, C]
in memory), so each copied run is kw * C consecutive floats instead of kw:
on the SAUX convolutions that copy was a quarter of a training step. The
output is returned as a [R, B, O, Ho, Wo] view of channels-last memory;
elementwise layers keep that layout, so the next convolution finds its
input channels last already. A one-channel input (a first layer on images)
is the exception: its columns are the kh*kw shifted planes stacked, and
dL/dW is taken as cols^T g (`add_weight_gradient`): together they halved
that layer's backward in a SAUX step (`benchmarks/layers.py`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minispec.scratch.linear import add_weight_gradient
from minispec.scratch.module import Module, draw_replicas


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def pad_last2d(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Zero padding of axes -3 and -2 of a channels-last [..., H, W, C]."""
    if ph == 0 and pw == 0:
        return x
    *lead, h, w, c = x.shape
    out = x.new_zeros(*lead, h + 2 * ph, w + 2 * pw, c)
    out[..., ph : ph + h, pw : pw + w, :] = x
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

    With cols = im2col(pad(x)) of shape [R, B*Ho*Wo, kh*kw*C] (channels last)
    and W as [R, O, kh*kw*C] (the same order):

        forward:  y = cols W^T + b
        backward: dL/dW += g^T cols     dL/db += sum g     dL/dx = crop(col2im(g W))

    col2im adds each of the kh*kw window offsets back where it came from, in
    channels-last memory, so every addition runs over C consecutive floats.
    With `input_grad` False (a first layer) dL/dx is skipped.
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

    def _weight_last(self) -> torch.Tensor:
        """The weight as [R, O, kh*kw*C], in the order of the columns."""
        r, o = self.replicas, self.out_channels
        return self.weight.value.permute(0, 1, 3, 4, 2).reshape(r, o, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, b, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        x_last = pad_last2d(x.permute(0, 1, 3, 4, 2), ph, pw)  # [R, B, H, W, C]
        ho, wo = (x_last.shape[2] - kh) // sh + 1, (x_last.shape[3] - kw) // sw + 1
        if c == 1:
            # one channel (a first layer): runs of kw*C floats would be kw floats long, so
            # stack the kh*kw shifted planes instead, kernel-major, and use cols as a view
            plane = x_last[..., 0]
            shifted = [plane[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
                       for i in range(kh) for j in range(kw)]
            cols = torch.stack(shifted, 1).view(r, kh * kw, b * ho * wo).transpose(1, 2)
        else:
            windows = x_last.unfold(2, kh, sh).unfold(3, kw, sw)  # [R, B, Ho, Wo, C, kh, kw]
            cols = windows.permute(0, 1, 2, 3, 5, 6, 4).reshape(r, b * ho * wo, kh * kw * c)
        self._cols, self._xshape = cols, (r, b, c, h, w)
        wt = self._weight_last().transpose(1, 2)
        y = torch.bmm(cols, wt) if self.bias is None else torch.baddbmm(self.bias.value.unsqueeze(1), cols, wt)
        return y.view(r, b, ho, wo, self.out_channels).permute(0, 1, 4, 2, 3)

    def backward(self, grad: torch.Tensor) -> torch.Tensor | None:
        r, b, c, h, w = self._xshape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        o, ho, wo = self.out_channels, grad.shape[3], grad.shape[4]
        g = grad.permute(0, 1, 3, 4, 2).reshape(r, b * ho * wo, o)
        if c == 1:  # the weight's (C, kh, kw) order is the columns' (kh, kw, C)
            add_weight_gradient(self.weight.grad.view(r, o, kh * kw), g, self._cols)  # dW += g^T cols
        else:
            dw = torch.bmm(g.transpose(1, 2), self._cols).view(r, o, kh, kw, c)
            self.weight.grad.add_(dw.permute(0, 1, 4, 2, 3))
        if self.bias is not None:
            self.bias.grad.add_(g.sum(1))  # db += sum g
        if not self.input_grad:
            return None
        gcols = torch.bmm(g, self._weight_last()).view(r, b, ho, wo, kh, kw, c)
        gx = gcols.new_zeros(r, b, h + 2 * ph, w + 2 * pw, c)  # col2im, channels last
        for i in range(kh):
            for j in range(kw):
                gx[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += gcols[:, :, :, :, i, j]
        gx = gx.permute(0, 1, 4, 2, 3)
        return gx[..., ph : ph + h, pw : pw + w] if ph or pw else gx

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, replicas={self.replicas}, bias={self.bias is not None}"
        )
