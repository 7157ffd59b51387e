"""The layers a spec may name: their arguments, output shapes and parameters.

One table serves the resolver (arity, option names and values), shape inference
and parameter counting. Shapes are per sample, without the batch axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from minispec.errors import MinispecError


@dataclass(frozen=True)
class Arg:
    """One argument of a layer: its name, kind, default (None: required) and a check.

    `check` returns an error text when the value is out of range, else None.
    """

    name: str
    kind: type
    default: object = None
    check: Callable[[object], str | None] | None = None
    doc: str = ""


def positive(value) -> str | None:
    return None if value > 0 else "must be positive"


def non_negative(value) -> str | None:
    return None if value >= 0 else "must be zero or positive"


def probability(value) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


def unit_interval(value) -> str | None:
    return None if 0 <= value <= 1 else "must be in [0, 1]"


@dataclass(frozen=True)
class OpSpec:
    name: str
    args: tuple[Arg, ...]
    doc: str
    needs: str  # "flat" ([n]), "map" ([C, H, W]), "any"


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in [
        OpSpec("linear", (Arg("out", int, check=positive, doc="output features"), Arg("bias", bool, True)),
               "fully connected: y = x W^T + b", "flat"),
        OpSpec("conv2d", (Arg("out", int, check=positive, doc="output channels"),
                          Arg("k", int, check=positive, doc="kernel size"),
                          Arg("stride", int, 1, positive), Arg("pad", int, 0, non_negative), Arg("bias", bool, True)),
               "2-D convolution over [C, H, W]", "map"),
        OpSpec("maxpool", (Arg("k", int, 2, positive), Arg("stride", int, 0, non_negative, "0: same as k")),
               "2-D max pooling", "map"),
        OpSpec("avgpool", (Arg("k", int, 2, positive), Arg("stride", int, 0, non_negative, "0: same as k")),
               "2-D average pooling", "map"),
        OpSpec("batchnorm", (Arg("eps", float, 1e-5, positive), Arg("momentum", float, 0.1, unit_interval)),
               "batch normalisation; 1-D on [n], 2-D on [C, H, W]", "any"),
        OpSpec("dropout", (Arg("p", float, 0.5, probability, "probability of zeroing"),), "dropout", "any"),
        OpSpec("flatten", (), "[C, H, W] -> [C*H*W]", "any"),
        OpSpec("relu", (), "max(0, x)", "any"),
        OpSpec("leaky_relu", (Arg("slope", float, 0.01),), "x if x > 0 else slope * x", "any"),
        OpSpec("tanh", (), "hyperbolic tangent", "any"),
        OpSpec("sigmoid", (), "1 / (1 + exp(-x))", "any"),
        OpSpec("softmax", (), "softmax over the features", "flat"),
        OpSpec("log_softmax", (), "log of the softmax over the features (for nll)", "flat"),
    ]
}
# Other spellings users reach for, mapped to the op they mean.
ALIASES = {
    "maxpool2d": "maxpool",
    "avgpool2d": "avgpool",
    "batchnorm1d": "batchnorm",
    "batchnorm2d": "batchnorm",
    "leakyrelu": "leaky_relu",
    "conv": "conv2d",
}
# Graph ops: combine named nodes rather than transform one input.
GRAPH_OPS = ("concat", "add")


def shape_text(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def infer(op: str, attrs: dict, shape: list[int], source: str = "its input") -> tuple[list[int], dict[str, list[int]]]:
    """Output shape and parameter shapes of a one-input op, or MinispecError (no span).

    `source` names the input in messages: the user's name for it (`` `a` ``) when it has one."""
    if op == "linear":
        if len(shape) != 1:
            raise MinispecError(
                f"linear({attrs['out']}) expects a flat input, but {source} has shape {shape_text(shape)}",
                hint="insert `flatten` before linear",
            )
        params = {"weight": [attrs["out"], shape[0]]}
        if attrs["bias"]:
            params["bias"] = [attrs["out"]]
        return [attrs["out"]], params
    if op == "conv2d":
        _need_map(op, shape, source)
        c, h, w = shape
        kh, kw = attrs["kernel"]
        pad, stride = attrs["padding"], attrs["stride"]
        oh = (h + 2 * pad - kh) // stride + 1
        ow = (w + 2 * pad - kw) // stride + 1
        if h + 2 * pad < kh or w + 2 * pad < kw:
            raise MinispecError(
                f"conv2d kernel {kh}x{kw} is larger than its (padded) input {h + 2 * pad}x{w + 2 * pad}",
                hint="use a smaller kernel, add padding (pad=...), or pool less before it",
            )
        params = {"weight": [attrs["out"], c, kh, kw]}
        if attrs["bias"]:
            params["bias"] = [attrs["out"]]
        return [attrs["out"], oh, ow], params
    if op in ("maxpool2d", "avgpool2d"):
        _need_map(op, shape, source)
        c, h, w = shape
        k, stride = attrs["kernel"], attrs["stride"]
        if h < k or w < k:
            raise MinispecError(
                f"{op[:-2]}({k}) needs an input of at least {k}x{k}, but it gets {h}x{w}",
                hint="pool less, or remove a pooling layer",
            )
        return [c, (h - k) // stride + 1, (w - k) // stride + 1], {}
    if op in ("batchnorm1d", "batchnorm2d"):
        channels = shape[0]
        return list(shape), {"weight": [channels], "bias": [channels]}
    if op == "flatten":
        return [math.prod(shape)], {}
    if op in ("softmax", "log_softmax") and len(shape) != 1:
        raise MinispecError(
            f"{op} expects a flat input, but {source} has shape {shape_text(shape)}",
            hint=f"insert `flatten` before {op}",
        )
    return list(shape), {}


def _need_map(op: str, shape: list[int], source: str) -> None:
    if len(shape) != 3:
        raise MinispecError(
            f"{op} expects a feature map [channels, height, width], but {source} has shape {shape_text(shape)}",
            hint="convolutions and pooling come before `flatten`; index an image input with x[0] to keep its channel axis",
        )
