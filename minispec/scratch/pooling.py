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

    The windows are gathered kernel-major, [kh*kw, ..., Ho, Wo], and reduced
    by `amax`. The backward finds where each maximum came from
    (`first_maximum`, a one-hot route of the windows' shape) and places g
    there in one product; an evaluation, which has no backward, never pays for it.
    When x is channels last (as a convolution leaves it) and the windows tile
    it (kernel = stride, dividing H and W: the usual 2 x 2 pooling), they are
    gathered as [kh*kw, R, B, Ho, Wo, C], in runs of C floats, and the
    gradient is written back channels last.
    """

    _cache = ("_windows", "_top", "_xshape", "_last")

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride) if stride is not None else self.kernel_size
        self._windows: torch.Tensor | None = None  # [kh*kw, ...]: the gathered windows
        self._top: torch.Tensor | None = None  # their maximum (the output, before its permute)
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
            self._windows = tiles.permute(3, 5, 0, 1, 2, 4, 6).reshape(kh * kw, r, b, h // kh, w // kw, c)
            self._top = self._windows.amax(0)  # [R, B, Ho, Wo, C]
            return self._top.permute(0, 1, 4, 2, 3)
        windows = unfold2d(x, kh, kw, sh, sw)  # [R, B, C, Ho, Wo, kh, kw]
        self._windows = windows.permute(5, 6, 0, 1, 2, 3, 4).reshape(kh * kw, *windows.shape[:-2])
        self._top = self._windows.amax(0)
        return self._top

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = self._xshape[-2:]
        route = first_maximum(self._windows, self._top)
        if self._last:
            r, b, c, ho, wo = grad.shape
            gx = grad.new_empty(r, b, h, w, c)  # channels last; the product is written into its windows
            windows = gx.view(r, b, ho, kh, wo, kw, c).permute(3, 5, 0, 1, 2, 4, 6)
            torch.mul(route.view(kh, kw, r, b, ho, wo, c), grad.permute(0, 1, 3, 4, 2), out=windows)
            return gx.permute(0, 1, 4, 2, 3)
        cols = (route * grad).view(kh, kw, *grad.shape)  # g placed at each window's first maximum
        cols = cols.permute(*range(2, grad.dim() + 2), 0, 1)  # [..., Ho, Wo, kh, kw]
        if self._tiles(h, w):
            # windows tile x exactly: col2im is a reshape [..., Ho, kh, Wo, kw] -> [..., H, W]
            return cols.transpose(-3, -2).reshape(*grad.shape[:-2], h, w)
        return fold2d(cols, h, w, sh, sw)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


def first_maximum(stacked: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """Where the maximum `top` = stacked.amax(0) of `stacked` [K, ...] comes
    from, as `route` (same shape as `stacked`): 1 at the first plane that
    reaches it, 0 elsewhere, which is the window position torch's pooling
    picks on ties.

    `Tensor.max(dim)` gives the index directly, but its index-tracking
    reduction is not vectorized: on the SAUX extractor's 12 x 12 maps it took
    longer than all of this function. Here every step is a vectorized float
    operation on contiguous planes: sign(max - plane) is 1 below the maximum
    and 0 at it, and a running product of these marks "every plane so far is
    below". torch's sign of NaN is 0, so an infinite maximum (inf - inf is
    NaN) is found where torch finds it, and a window holding a NaN routes to
    its first position (torch: to the NaN; the gradient is lost either way).
    """
    route = torch.empty_like(stacked)
    below = top.new_ones(())  # every plane before k is below the maximum
    for k in range(stacked.shape[0] - 1):
        still = torch.sub(top, stacked[k]).sign_().mul_(below)
        torch.sub(below, still, out=route[k])  # 1 where plane k is the first to reach it
        below = still
    route[-1] = below
    return route


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
