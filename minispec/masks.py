"""Dropout masks, drawn the same way by both backends.

A trial's masks come from its own generator, drawn into a contiguous tensor on
the generator's device as ATen's CPU dropout draws its noise (`bernoulli_`,
then `div_`), then moved to the input's device. So the masks of a trial depend
on its generator only: not on the backend, the device, the memory layout of
the input, nor on how many replicas are computed beside it. That is what lets
`minispec verify` compare the backends with dropout on, and a vectorized
dropout trial end where it ends alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def dropout_mask(shape: Sequence[int], p: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """An inverted-dropout mask, Bernoulli(1 - p) / (1 - p), of `shape`, with
    `like`'s dtype and device (p = 1: zeros)."""
    keep = 1.0 - p
    mask = torch.empty(tuple(shape), dtype=like.dtype, device=generator.device).bernoulli_(keep, generator=generator)
    mask = mask.div_(keep) if keep > 0 else mask.zero_()
    return mask.to(like.device)


def replica_masks(x: torch.Tensor, p: float | Sequence[float], generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Masks for x [R, B, ...]: replica k's from generators[k], with probability
    p (or p[k]: a sweep's replicas may differ). A replica whose p is 0 draws
    nothing, as a lone model with p = 0 does not, so its stream stays aligned."""
    ps = [p] * len(generators) if isinstance(p, (int, float)) else list(p)
    return torch.stack([dropout_mask(x.shape[1:], pk, g, x) if pk > 0 else torch.ones_like(x[0])
                        for pk, g in zip(ps, generators)])


def drops(p: float | Sequence[float]) -> bool:
    """Whether a dropout of probability p (one, or one per replica) changes anything."""
    return (p > 0) if isinstance(p, (int, float)) else any(pk > 0 for pk in p)


def seeded_generators(replicas: int) -> list[torch.Generator]:
    """R CPU generators seeded from torch's global RNG: the default streams of a
    model built without the runner's per-trial generators."""
    return [torch.Generator().manual_seed(s) for s in torch.randint(0, 2**62, (replicas,)).tolist()]
