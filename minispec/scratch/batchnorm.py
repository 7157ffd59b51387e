"""Batch normalisation per channel, with running statistics as PyTorch keeps them."""

from __future__ import annotations

import torch

from minispec.scratch.module import Module


class _BatchNorm(Module):
    """Shared code of BatchNorm1d / BatchNorm2d; statistics per (replica, channel)
    over the batch axis and any axes after the channel axis."""

    _cache = ("_centred", "_rstd", "_scale", "_batch_stats")
    _sample_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        replicas: int = 1,
        eps: float = 1e-5,
        momentum: float = 0.1,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.num_features, self.replicas, self.eps, self.momentum = num_features, replicas, eps, momentum
        shape = (replicas, num_features)
        self._param("weight", torch.ones(shape, device=device, dtype=dtype))
        self._param("bias", torch.zeros(shape, device=device, dtype=dtype))
        self._buffer("running_mean", torch.zeros(shape, device=device, dtype=dtype))
        self._buffer("running_var", torch.ones(shape, device=device, dtype=dtype))
        self._buffer("num_batches_tracked", torch.zeros(replicas, device=device, dtype=torch.long))
        self._centred: torch.Tensor | None = None  # x - mu
        self._rstd: torch.Tensor | None = None  # 1 / sigma
        self._scale: torch.Tensor | None = None  # w / sigma
        self._batch_stats = False

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() - 3 not in self._sample_dims:
            raise ValueError(f"{type(self).__name__} expects [R, B, C, ...] with {self._sample_dims} trailing axes, got {list(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        r, c = x.shape[0], x.shape[2]
        tail = (1,) * (x.dim() - 3)
        dims = (1, *range(3, x.dim()))
        w = self.weight.value.view(r, 1, c, *tail)
        b = self.bias.value.view(r, 1, c, *tail)
        if self.training:
            n = x.numel() // (r * c)
            if n < 2:
                raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel in training mode, got {list(x.shape)}")
            mean = x.mean(dims, keepdim=True)  # two passes: torch.var_mean is several times slower here
            centred = x - mean
            sq = (centred * centred).sum(dims, keepdim=True)
            rstd = (sq / n + self.eps).rsqrt()  # biased variance normalises
            m = self.momentum
            self.running_mean.value.mul_(1 - m).add_(mean.view(r, c), alpha=m)
            self.running_var.value.mul_(1 - m).add_(sq.view(r, c) / (n - 1), alpha=m)  # unbiased variance
            self.num_batches_tracked.value.add_(1)
        else:
            rstd = (self.running_var.value + self.eps).rsqrt().view(r, 1, c, *tail)
            centred = x - self.running_mean.value.view(r, 1, c, *tail)
        self._centred, self._rstd, self._scale, self._batch_stats = centred, rstd, w * rstd, self.training
        return torch.addcmul(b, centred, self._scale)  # w (x - mu) / sigma + b: xhat is never formed

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        """With xhat = (x - mu) / sigma and y = w xhat + b, over the n values of a channel:

        dL/dw += sum g xhat      dL/db += sum g
        train: dL/dx = (w / sigma) (g - mean(g) - xhat mean(g xhat))   (mu, sigma depend on x)
        eval:  dL/dx = (w / sigma) g
        """
        centred, rstd, scale = self._centred, self._rstd, self._scale
        r, c = centred.shape[0], centred.shape[2]
        dims = (1, *range(3, centred.dim()))
        gsum = grad.sum(dims, keepdim=True)
        gxsum = (grad * centred).sum(dims, keepdim=True) * rstd  # sum g xhat
        self.weight.grad.add_(gxsum.view(r, c))
        self.bias.grad.add_(gsum.view(r, c))
        if not self._batch_stats:
            return grad * scale
        n = grad.numel() // (r * c)
        # scale (g - gsum/n - xhat gxsum/n) as two passes over the maps, with xhat = centred rstd:
        # (-scale gsum/n) + centred (-scale rstd gxsum/n), then + scale g
        return torch.addcmul(scale * gsum / -n, centred, scale * rstd * gxsum / -n).addcmul_(grad, scale)

    def extra_repr(self) -> str:
        return f"{self.num_features}, replicas={self.replicas}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """y = w (x - mu) / sqrt(var + eps) + b per feature.

    Input: [R, B, C] (or [R, B, C, L])   Output: same
    weight, bias, running_mean, running_var: [R, C]; num_batches_tracked: [R] (long)

    Train mode: mu, var = batch mean and biased variance; running_mean and
    running_var move by `momentum` towards the batch mean and the UNBIASED
    variance, num_batches_tracked += 1. Eval mode: mu, var = running statistics.
    """

    _sample_dims = (0, 1)


class BatchNorm2d(_BatchNorm):
    """y = w (x - mu) / sqrt(var + eps) + b per channel, statistics over batch and space.

    Input: [R, B, C, H, W]   Output: same
    weight, bias, running_mean, running_var: [R, C]; num_batches_tracked: [R] (long)

    Train / eval modes as BatchNorm1d.
    """

    _sample_dims = (2,)
