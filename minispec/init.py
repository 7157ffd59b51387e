"""Initial weights, drawn the same way by both backends.

Every draw happens in float32 on the CPU from the generator it is given and is
then cast, so a float32 and a float64 run (or a torch.nn and a scratch run)
start from the very same numbers.

Schemes (`role` is "weight" or "bias"):

    torch    weight ~ U(-b, b), b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + 5))
             (kaiming_uniform_(a=sqrt(5)), i.e. b = 1/sqrt(fan_in) up to rounding);
             bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
             Bit for bit what nn.Linear / nn.Conv2d draw after torch.manual_seed(s)
             when the weight then the bias are drawn from a generator seeded s.
    zero     zeros
    normal   weight ~ N(0, std^2), options {"std": 1.0}
    uniform  weight ~ U(-bound, bound), options {"bound": 1.0}
    glorot   weight ~ U(-b, b), b = sqrt(6 / (fan_in + fan_out))
    kaiming  weight ~ N(0, gain / fan_in), options {"gain": 2.0} (gain 1: std 1/sqrt(fan_in), seed 001's choice)

For every scheme but "torch" the bias is zeros (and consumes no random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

SCHEMES = ("torch", "zero", "normal", "uniform", "glorot", "kaiming")


def fans(op: str, param_shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of torch shape `param_shape`.

    linear [out, in]: (in, out); conv2d [O, C, kh, kw]: (C*kh*kw, O*kh*kw).
    `op` is the IR op name ("linear", "conv2d"); any weight of two or more
    axes follows torch's `_calculate_fan_in_and_fan_out`.
    """
    shape = list(param_shape)
    if len(shape) < 2:
        raise ValueError(f"fans of {op}: a weight needs at least 2 axes, got shape {shape}")
    if op == "linear" and len(shape) != 2:
        raise ValueError(f"fans of linear: expected [out, in], got {shape}")
    if op == "conv2d" and len(shape) != 4:
        raise ValueError(f"fans of conv2d: expected [O, C, kh, kw], got {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def torch_weight_bound(fan_in: int) -> float:
    """The bound of kaiming_uniform_(a=sqrt(5)), computed in torch's own order of operations."""
    a = math.sqrt(5)
    gain = math.sqrt(2.0 / (1 + a**2))
    return math.sqrt(3.0) * (gain / math.sqrt(fan_in))


def draw(
    shape: Sequence[int],
    fan_in: int,
    fan_out: int,
    role: str,
    scheme: str = "torch",
    options: Mapping[str, float] | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A fresh CPU tensor of `shape` for a parameter of role "weight" or "bias".

    Drawn in float32 on the CPU from `generator` (the global generator when
    None), then cast to `dtype`.
    """
    if role not in ("weight", "bias"):
        raise ValueError(f"role must be 'weight' or 'bias', got {role!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    options = dict(options or {})
    out = torch.empty(tuple(shape), dtype=torch.float32)
    if scheme == "torch":
        if fan_in <= 0:
            out.zero_()
        else:
            bound = torch_weight_bound(fan_in) if role == "weight" else 1 / math.sqrt(fan_in)
            out.uniform_(-bound, bound, generator=generator)
    elif scheme == "zero" or role == "bias":
        out.zero_()
    elif scheme == "normal":
        out.normal_(0.0, float(options.get("std", 1.0)), generator=generator)
    elif scheme == "uniform":
        bound = float(options.get("bound", 1.0))
        out.uniform_(-bound, bound, generator=generator)
    elif scheme == "glorot":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        out.uniform_(-bound, bound, generator=generator)
    else:  # kaiming
        out.normal_(0.0, math.sqrt(float(options.get("gain", 2.0)) / fan_in), generator=generator)
    return out.to(dtype)
