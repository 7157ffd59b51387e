"""MaxPool2d and AvgPool2d over windows of the last two axes (no padding, floor mode)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minispec.scratch.conv import fold2d, pair, unfold2d
from minispec.scratch.module import Module


class MaxPool2d(Module):
    """Maximum over each kh x kw window, windows `stride` apart (default: the kernel).

    Input: [R, B, C, H, W]   Output: [R, B, C, Ho, Wo], Ho = (H - kh) // s + 1

        forward:  y = max_{window} x          (first maximum in row-major order on ties)
        backward: dL/dx = g at the argmax of each window, 0 elsewhere (summed where windows overlap)

    When x is channels last (as a convolution leaves it) and the windows tile
    it (kernel = stride, dividing H and W: the usual 2 x 2 pooling), the
    windows are gathered as [R, B, Ho, Wo, kh*kw, C], in runs of kw*C floats,
    and the gradient keeps that layout.
    """

    _cache = ("_argmax", "_xshape", "_last")

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride) if stride is not None else self.kernel_size
        self._argmax: torch.Tensor | None = None
        self._xshape: tuple[int, ...] | None = None
        self._last = False

    def _tiles(self, h: int, w: int) -> bool:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (kh, kw) == (sh, sw) and h % kh == 0 and w % kw == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        self._xshape = tuple(x.shape)
        self._last = x.dim() == 5 and self._tiles(*x.shape[-2:]) and x.permute(0, 1, 3, 4, 2).is_contiguous()
        if self._last:
            r, b, c, h, w = x.shape
            tiles = x.permute(0, 1, 3, 4, 2).view(r, b, h // kh, kh, w // kw, kw, c)
            windows = tiles.permute(0, 1, 2, 4, 3, 5, 6).reshape(r, b, h // kh, w // kw, kh * kw, c)
            y, self._argmax = windows.max(4)
            return y.permute(0, 1, 4, 2, 3)
        windows = unfold2d(x, kh, kw, sh, sw)  # [R, B, C, Ho, Wo, kh, kw]
        y, self._argmax = windows.reshape(*windows.shape[:-2], kh * kw).max(-1)
        return y

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = self._xshape[-2:]
        if self._last:
            r, b, c, ho, wo = grad.shape
            g = grad.permute(0, 1, 3, 4, 2).unsqueeze(4)
            cols = g.new_zeros(r, b, ho, wo, kh * kw, c).scatter_(4, self._argmax.unsqueeze(4), g)
            gx = cols.view(r, b, ho, wo, kh, kw, c).permute(0, 1, 2, 4, 3, 5, 6).reshape(r, b, h, w, c)
            return gx.permute(0, 1, 4, 2, 3)
        cols = grad.new_zeros(*grad.shape, kh * kw).scatter_(-1, self._argmax.unsqueeze(-1), grad.unsqueeze(-1))
        cols = cols.view(*grad.shape, kh, kw)  # g placed at each window's argmax
        if self._tiles(h, w):
            # windows tile x exactly: col2im is a reshape [..., Ho, kh, Wo, kw] -> [..., H, W]
            return cols.transpose(-3, -2).reshape(*grad.shape[:-2], h, w)
        return fold2d(cols, h, w, sh, sw)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(Module):
    """Mean over each kh x kw window, windows `stride` apart (default: the kernel).

    Input: [R, B, C, H, W]   Output: [R, B, C, Ho, Wo], Ho = (H - kh) // s + 1

        forward:  y = (1 / (kh kw)) sum_{window} x
        backward: dL/dx = sum over the windows containing x of g / (kh kw)
    """

    _cache = ("_xshape",)

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride) if stride is not None else self.kernel_size
        self._xshape: tuple[int, ...] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        self._xshape = tuple(x.shape)
        return unfold2d(x, kh, kw, sh, sw).mean((-2, -1))

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = self._xshape[-2:]
        g = (grad / (kh * kw))[..., None, None].expand(*grad.shape, kh, kw)
        return fold2d(g, h, w, sh, sw)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class GlobalAvgPool2d(Module):
    """The mean of each channel over the whole map.

    Input: [R, B, C, H, W]   Output: [R, B, C]

        forward:  y_c = (1 / (H W)) sum_{h, w} x_chw
        backward: dL/dx_chw = g_c / (H W)
    """

    _cache = ("_xshape",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._xshape = tuple(x.shape)
        return x.mean((-2, -1))

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        h, w = self._xshape[-2:]
        return (grad / (h * w))[..., None, None].expand(self._xshape)
