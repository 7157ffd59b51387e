"""Dropout with one random stream per replica."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minispec.masks import drops, replica_masks, seeded_generators
from minispec.scratch.module import Module


class Dropout(Module):
    """Inverted dropout: each element kept with probability 1 - p and scaled by 1 / (1 - p).

    Input: [R, B, ...]   Output: same

        forward:  y = x * mask,  mask = Bernoulli(1 - p) / (1 - p)   (train mode; identity in eval mode)
        backward: dL/dx = g * mask

    Replica k's masks are drawn from `generators[k]` only, by
    `minispec.masks.dropout_mask` (as torch's own dropout does: replica k with
    a generator seeded s draws the mask F.dropout draws after
    torch.manual_seed(s) on the CPU), the same draw as the torch backend's.
    Default generators: R CPU generators seeded from the global generator.
    `p` may be one probability per replica (a sweep's points in one model).
    """

    _cache = ("_mask",)

    def __init__(self, p: float | tuple[float, ...] = 0.5, replicas: int = 1,
                 generators: Sequence[torch.Generator] | None = None) -> None:
        super().__init__()
        if not all(0.0 <= pk <= 1.0 for pk in (p if isinstance(p, tuple) else (p,))):
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        if isinstance(p, tuple) and len(p) != replicas:
            raise ValueError(f"Dropout needs one probability per replica ({replicas}), got {len(p)}")
        self.p, self.replicas = p, replicas
        self.generators = seeded_generators(replicas) if generators is None else generators
        self._mask: torch.Tensor | None = None

    @property
    def generators(self) -> list[torch.Generator]:
        return self._generators

    @generators.setter
    def generators(self, gens: Sequence[torch.Generator]) -> None:
        gens = list(gens)
        if len(gens) != self.replicas:
            raise ValueError(f"Dropout needs {self.replicas} generators (one per replica), got {len(gens)}")
        self._generators = gens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not drops(self.p):
            self._mask = None
            return x
        if x.shape[0] != self.replicas:
            raise ValueError(f"Dropout built for {self.replicas} replicas got input {list(x.shape)}")
        self._mask = replica_masks(x, self.p, self._generators)  # one stream per replica
        return x * self._mask

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return grad if self._mask is None else grad * self._mask

    def extra_repr(self) -> str:
        return f"p={self.p}, replicas={self.replicas}"
