"""The op table: every op of the graph IR, defined once.

One `OpDef` per op says everything the front end, the passes, the cost model
and the renderers need to know about it:

    name, spelled, aliases   the IR name; how a spec writes it (None: IR only)
    args, attrs              the spec's arguments, and how their values become IR attributes
    traits                   what passes ask (never the op's name):
                               elementwise  y[i] = f(x[i]): a feature map passes through unchanged
                               needs_flat   computes on flat vectors (convolutionize flattens its input back)
                               combinator   joins several named nodes (`add(a, b)`, `a | add(b)`)
                               source       makes a value from no input (`input`, constants)
                               random       draws random numbers in training (dropout)
                               batch_statistics  normalises by statistics of the batch in training (a batch of one has none)
                               data         a data input: its shape is the data set's (`input`)
                               view         a view of its input, no new activation (`x[0]`)
                               flattens     makes a map flat: where convolutionize starts (`flatten`)
                               log_probability  its output is a log-probability (nll's input)
                               probability  its output lies in [0, 1]
    shape                    (attrs, input shapes, input names) -> output shape and state shapes
    state                    its parameters and buffers, in state order, each with its initialisation
    flops                    arithmetic of one sample's forward pass
    text                     how tables and drawings write a node (`conv2d(32, k=3)`)
    to_map                   how convolutionize rewrites it when its input became a feature map

Each backend keeps one lowering table keyed by these names; a test fails when
one lacks an op. Shapes are per sample, without the batch axis. Nothing here
imports torch.

Adding an op: one `OpDef` here (with an `example`, which the op-table test
compiles and verifies), then one entry in each lowering table:
`backends/torch_nn/module.py` `LOWERING` (its function also serves the stacked
lowering when the op has no state; an op with state adds a layer to
`stacked.py` `STACKED_LOWERING`), `backends/scratch_graph.py` `LOWERING` (a
framework module in `minispec/scratch/` when the math is new), and
`backends/torch_nn/emit.py` `SOURCE`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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
    words: tuple[str, ...] = ()  # bare words accepted besides values of `kind` (`pad=same`)


def positive(value) -> str | None:
    return None if value > 0 else "must be positive"


def non_negative(value) -> str | None:
    return None if value >= 0 else "must be zero or positive"


def probability(value) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


def unit_interval(value) -> str | None:
    return None if 0 <= value <= 1 else "must be in [0, 1]"


@dataclass(frozen=True)
class Tensor:
    """A parameter or buffer of an op, in state order.

    init: `draw` (the spec's init scheme; `weight` and `bias` roles), `ones`,
    `zeros`, `count` (a long scalar 0), `value` (the op's fixed values, `OpDef.value`).
    A buffer is saved beside the parameters but never trained.
    """

    name: str
    init: str
    buffer: bool = False


@dataclass(frozen=True)
class Inferred:
    """What a shape rule returns: the output shape, the shapes of the op's state
    tensors (parameters and buffers by name), and, for an op that shape inference
    resolves (`batchnorm`), the concrete op and its attributes."""

    shape: list[int]
    state: dict[str, list[int]] = field(default_factory=dict)
    op: str | None = None
    attrs: dict | None = None


ShapeRule = Callable[[dict, list[list[int]], list[str]], Inferred]


@dataclass(frozen=True)
class OpDef:
    name: str
    doc: str
    shape: ShapeRule
    spelled: str | None = None
    aliases: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()
    attrs: Callable[[dict], dict] = dict
    traits: frozenset[str] = frozenset()
    state: tuple[Tensor, ...] = ()
    flops: Callable[[dict, list[list[int]], list[int]], int] | None = None
    text: Callable[[dict, list[str]], str] | None = None
    to_map: Callable[[dict, list[list[int]]], tuple[str, dict, list[int]]] | None = None
    value: Callable[[dict, list[int]], list[float]] | None = None
    resolves_to: tuple[str, ...] = ()
    arity: int | None = None  # inputs of a combinator: exactly this many (None: two or more)
    example: str = ""

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.state if not t.buffer)

    @property
    def buffers(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.state if t.buffer)

    def has(self, trait: str) -> bool:
        return trait in self.traits

    def cost(self, attrs: dict, inputs: list[list[int]], shape: list[int]) -> int:
        """Forward FLOPs of one sample: the op's rule, else one per output element."""
        if self.flops is not None:
            return self.flops(attrs, inputs, shape)
        return math.prod(shape) if shape else 1


def shape_text(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


# -- how values are written back --------------------------------------------------------


def value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def pair(value: object) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def size_text(value: object) -> str:
    h, w = pair(value)
    return str(h) if h == w else f"{h}x{w}"


def _call_text(name: str, parts: list[str]) -> str:
    return f"{name}({', '.join(parts)})" if parts else name


def _frozen_text(attrs: dict) -> list[str]:
    return ["trainable=false"] if attrs.get("trainable") is False else []


# -- shape rules -------------------------------------------------------------------------


def _flat(op: str, shape: list[int], source: str) -> None:
    if len(shape) != 1:
        raise MinispecError(
            f"{op} expects a flat input, but {source} has shape {shape_text(shape)}",
            hint=f"insert `flatten` before {op}",
        )


def _map(op: str, shape: list[int], source: str) -> None:
    if len(shape) != 3:
        raise MinispecError(
            f"{op} expects a feature map [channels, height, width], but {source} has shape {shape_text(shape)}",
            hint="convolutions and pooling come before `flatten`; index an image input with x[0] to keep its channel axis",
        )


def _same(attrs, inputs, names) -> Inferred:
    return Inferred(list(inputs[0]))


def _linear_shape(attrs, inputs, names) -> Inferred:
    (shape,) = inputs
    if len(shape) != 1:
        raise MinispecError(
            f"linear({attrs['out']}) expects a flat input, but {names[0]} has shape {shape_text(shape)}",
            hint="insert `flatten` before linear",
        )
    state = {"weight": [attrs["out"], shape[0]]}
    if attrs["bias"]:
        state["bias"] = [attrs["out"]]
    return Inferred([attrs["out"]], state)


def _conv_shape(attrs, inputs, names) -> Inferred:
    (shape,) = inputs
    _map("conv2d", shape, names[0])
    c, h, w = shape
    kh, kw = pair(attrs["kernel"])
    ph, pw = pair(attrs["padding"])
    sh, sw = pair(attrs["stride"])
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise MinispecError(
            f"conv2d kernel {kh}x{kw} is larger than its (padded) input {h + 2 * ph}x{w + 2 * pw}",
            hint="use a smaller kernel, add padding (pad=...), or pool less before it",
        )
    state = {"weight": [attrs["out"], c, kh, kw]}
    if attrs["bias"]:
        state["bias"] = [attrs["out"]]
    return Inferred([attrs["out"], (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1], state)


def _pool_shape(name: str) -> ShapeRule:
    def rule(attrs, inputs, names) -> Inferred:
        (shape,) = inputs
        _map(name, shape, names[0])
        c, h, w = shape
        k, stride = attrs["kernel"], attrs["stride"]
        if h < k or w < k:
            raise MinispecError(
                f"{name}({k}) needs an input of at least {k}x{k}, but it gets {h}x{w}",
                hint="pool less, or remove a pooling layer",
            )
        return Inferred([c, (h - k) // stride + 1, (w - k) // stride + 1])
    return rule


def _batchnorm_shape(attrs, inputs, names) -> Inferred:
    """`batchnorm` becomes batchnorm1d on [n] and batchnorm2d on [C, H, W]."""
    (shape,) = inputs
    if len(shape) not in (1, 3):
        raise MinispecError(f"batchnorm expects [features] or [channels, height, width], got {shape_text(shape)}")
    op = "batchnorm1d" if len(shape) == 1 else "batchnorm2d"
    attrs = dict(attrs)
    expected = attrs.pop("expect", None)
    if expected is not None and expected != op:
        raise MinispecError(
            f"{expected} does not fit an input of shape {shape_text(shape)}",
            hint=f"write `{op}`, or just `batchnorm`, which picks by shape",
        )
    return Inferred(list(shape), _batchnorm_state(shape), op, attrs)


def _batchnorm_state(shape: list[int]) -> dict[str, list[int]]:
    channels = shape[0]
    return {"weight": [channels], "bias": [channels], "running_mean": [channels], "running_var": [channels],
            "num_batches_tracked": []}


def _batchnorm_nd_shape(attrs, inputs, names) -> Inferred:
    return Inferred(list(inputs[0]), _batchnorm_state(inputs[0]))


def _flat_only(op: str) -> ShapeRule:
    def rule(attrs, inputs, names) -> Inferred:
        _flat(op, inputs[0], names[0])
        return Inferred(list(inputs[0]))
    return rule


def _select_shape(attrs, inputs, names) -> Inferred:
    (shape,) = inputs
    if not shape or attrs["index"] >= shape[0]:
        raise MinispecError(
            f"index {attrs['index']} is out of range for {names[0]} of shape {shape_text(shape)}",
            hint=f"valid indices are 0..{shape[0] - 1}" if shape else "a scalar cannot be indexed",
        )
    return Inferred([1, *shape[1:]])


def _concat_shape(attrs, inputs, names) -> Inferred:
    first = inputs[0]
    for other, name in zip(inputs[1:], names[1:]):
        if len(other) != len(first) or other[1:] != first[1:]:
            raise MinispecError(
                f"concat joins along the first axis, but {names[0]} has shape {shape_text(first)} "
                f"and {name} has shape {shape_text(other)}",
                hint="the other axes must agree; flatten both first to join them as vectors",
            )
    return Inferred([sum(s[0] for s in inputs), *first[1:]])


def _equal_shapes(op: str) -> ShapeRule:
    def rule(attrs, inputs, names) -> Inferred:
        for other in inputs[1:]:
            if other != inputs[0]:
                what = "a residual body must keep its input's shape" if attrs.get("residual") else f"{op} needs equal shapes"
                raise MinispecError(
                    f"{what}: {shape_text(inputs[0])} vs {shape_text(other)}",
                    hint="use padding to keep the size (conv2d(c, 3, pad=1)) and as many channels as the input",
                )
        return Inferred(list(inputs[0]))
    return rule


def _outer_shape(attrs, inputs, names) -> Inferred:
    for shape, name in zip(inputs, names):
        _flat("outer", shape, name)
    return Inferred([inputs[0][0], inputs[1][0]])


def _matmul_shape(attrs, inputs, names) -> Inferred:
    """[n] x [n, k] -> [k];  [m, n] x [n, k] -> [m, k];  [m, n] x [n] -> [m]."""
    a, b = inputs
    if not (1 <= len(a) <= 2 and 1 <= len(b) <= 2) or (len(a) == 1 and len(b) == 1) or a[-1] != b[0]:
        raise MinispecError(
            f"matmul cannot multiply {names[0]} of shape {shape_text(a)} by {names[1]} of shape {shape_text(b)}",
            hint="the last axis of the first must equal the first axis of the second: [n] x [n, k], "
                 "[m, n] x [n, k] or [m, n] x [n]; for two vectors use outer, or mul then sum",
        )
    form = "vector-matrix" if len(a) == 1 else "matrix-vector" if len(b) == 1 else "matrix-matrix"
    return Inferred(a[:-1] + b[1:], attrs={**attrs, "form": form})


def _sum_shape(attrs, inputs, names) -> Inferred:
    (shape,) = inputs
    axis = attrs["axis"]
    if axis == -1:
        return Inferred([1])
    if axis >= len(shape):
        raise MinispecError(f"sum over axis {axis}, but {names[0]} has shape {shape_text(shape)}",
                            hint=f"axes are 0..{len(shape) - 1}; sum without axis adds everything")
    return Inferred(shape[:axis] + shape[axis + 1:] or [1])


def _global_pool_shape(attrs, inputs, names) -> Inferred:
    _map("global_avgpool", inputs[0], names[0])
    return Inferred([inputs[0][0]])


def _triu_shape(attrs, inputs, names) -> Inferred:
    n = attrs["n"]
    return Inferred([n, n], {"value": [n, n]})


def _triu_value(attrs, shape) -> list[float]:
    """u[i][j] = 1 where i <= j: `p | matmul(u)` gives the cumulative sums sum_{i<=j} p[i]."""
    n = attrs["n"]
    return [1.0 if i <= j else 0.0 for i in range(n) for j in range(n)]


# -- FLOPs --------------------------------------------------------------------------------


def _no_flops(attrs, inputs, shape) -> int:
    return 0


def _linear_flops(attrs, inputs, shape) -> int:
    return 2 * math.prod(inputs[0]) * attrs["out"]


def _conv_flops(attrs, inputs, shape) -> int:
    kh, kw = pair(attrs["kernel"])
    return 2 * inputs[0][0] * kh * kw * math.prod(shape)


def _pool_flops(attrs, inputs, shape) -> int:
    return math.prod(shape) * attrs["kernel"] ** 2


def _batchnorm_flops(attrs, inputs, shape) -> int:
    return 4 * math.prod(shape)


def _matmul_flops(attrs, inputs, shape) -> int:
    return 2 * math.prod(shape) * inputs[0][-1]


def _input_flops(attrs, inputs, shape) -> int:
    return math.prod(inputs[0])


# -- text ---------------------------------------------------------------------------------


def _linear_text(attrs, inputs) -> str:
    return _call_text("linear", [str(attrs.get("out", "?")), *([] if attrs.get("bias", True) else ["bias=false"]),
                                 *_frozen_text(attrs)])


def _conv_text(attrs, inputs) -> str:
    parts = [str(attrs.get("out", "?")), f"k={size_text(attrs.get('kernel', '?'))}"]
    if pair(attrs.get("stride", 1)) != (1, 1):
        parts.append(f"stride={size_text(attrs['stride'])}")
    if pair(attrs.get("padding", 0)) != (0, 0):
        parts.append(f"pad={size_text(attrs['padding'])}")
    if not attrs.get("bias", True):
        parts.append("bias=false")
    return _call_text("conv2d", parts + _frozen_text(attrs))


def _pool_text(name: str):
    def text(attrs, inputs) -> str:
        kernel = attrs.get("kernel", "?")
        stride = attrs.get("stride", kernel)
        extra = "" if stride in (kernel, 0) or pair(stride) == pair(kernel) else f", stride={size_text(stride)}"
        return f"{name}({size_text(kernel)}{extra})"
    return text


def _batchnorm_text(name: str):
    def text(attrs, inputs) -> str:
        parts = [f"{key}={value_text(attrs[key])}" for key, default in (("eps", 1e-5), ("momentum", 0.1))
                 if key in attrs and not math.isclose(float(attrs[key]), default)]
        return _call_text(name, parts + _frozen_text(attrs))
    return text


def _add_text(attrs, inputs) -> str:
    return "add (residual)" if attrs.get("residual") else "add"


def _sum_text(attrs, inputs) -> str:
    return "sum" if attrs.get("axis", -1) == -1 else f"sum(axis={attrs['axis']})"


# -- convolutionize -----------------------------------------------------------------------


def _linear_to_map(attrs, maps) -> tuple[str, dict, list[int]]:
    """linear(out) on a [C, H, W] map: conv2d(out, kernel H x W) -> [out, 1, 1], the same affine map."""
    c, h, w = maps[0]
    out = attrs["out"]
    conv = {"out": out, "kernel": [h, w], "stride": 1, "padding": 0, "bias": attrs["bias"],
            **{k: v for k, v in attrs.items() if k == "trainable"}}
    return "conv2d", conv, [out, 1, 1]


def _flatten_to_map(attrs, maps) -> tuple[str, dict, list[int]]:
    return "identity", {}, list(maps[0])


def _batchnorm1d_to_map(attrs, maps) -> tuple[str, dict, list[int]]:
    return "batchnorm2d", dict(attrs), list(maps[0])


def _concat_to_map(attrs, maps) -> tuple[str, dict, list[int]] | None:
    if len({tuple(m[1:]) for m in maps}) != 1:
        return None
    return "concat", dict(attrs), [sum(m[0] for m in maps), *maps[0][1:]]


# -- the table ------------------------------------------------------------------------------

_BIAS = Arg("bias", bool, True)
_TRAINABLE = Arg("trainable", bool, True, doc="false: the layer keeps its initial values")
_WEIGHTED = (Tensor("weight", "draw"), Tensor("bias", "draw"))
_BATCHNORM_STATE = (Tensor("weight", "ones"), Tensor("bias", "zeros"), Tensor("running_mean", "zeros", True),
                    Tensor("running_var", "ones", True), Tensor("num_batches_tracked", "count", True))
_BATCHNORM_ARGS = (Arg("eps", float, 1e-5, positive), Arg("momentum", float, 0.1, unit_interval), _TRAINABLE)


def _with_trainable(attrs: dict) -> dict:
    """`trainable` is written into the IR only when false, so other graphs keep their attributes."""
    frozen = attrs.pop("trainable", True) is False
    return {**attrs, "trainable": False} if frozen else attrs


def _conv_attrs(values: dict) -> dict:
    """k (square) or kh and kw (a rectangle); pad=same keeps the size at stride 1 (odd kernels)."""
    kernel = [values["kh"] or values["k"], values["kw"] or values["k"]]
    if not all(kernel):
        raise MinispecError("conv2d needs `k` (the kernel size), or both `kh` and `kw`",
                            hint="conv2d(out, k, stride=1, pad=0), or conv2d(out, kh=1, kw=7) for a rectangle")
    padding = values["pad"]
    if padding == "same":
        if not all(k % 2 for k in kernel):
            raise MinispecError(f"pad=same needs an odd kernel, got {kernel[0]}x{kernel[1]}",
                                hint="an even kernel cannot be centred; give pad=... explicitly")
        padding = [(k - 1) // 2 for k in kernel]
        padding = padding[0] if padding[0] == padding[1] else padding
    return _with_trainable({"out": values["out"], "kernel": kernel, "stride": values["stride"],
                            "padding": padding, "bias": values["bias"], "trainable": values["trainable"]})


def _pool_attrs(values: dict) -> dict:
    return {"kernel": values["k"], "stride": values["stride"] or values["k"]}


_POOL_ARGS = (Arg("k", int, 2, positive), Arg("stride", int, 0, non_negative, "0: same as k"))
_FLAT_MLP = "out = x | linear(8) | {op} | linear(2)"

OPS: dict[str, OpDef] = {
    op.name: op
    for op in [
        OpDef("input", "a data input", _same, traits=frozenset({"source", "data"}), flops=_no_flops,
              text=lambda attrs, inputs: "input"),
        OpDef("select", "one slice of the first axis, kept with size 1", _select_shape, flops=_no_flops,
              text=lambda attrs, inputs: f"{inputs[0] if inputs else '?'}[{attrs.get('index', '?')}]",
              traits=frozenset({"needs_flat", "view"}), example="out = x[1] | flatten | linear(2)"),
        OpDef("linear", "fully connected: y = x W^T + b", _linear_shape, spelled="linear",
              args=(Arg("out", int, check=positive, doc="output features"), _BIAS, _TRAINABLE), attrs=_with_trainable,
              state=_WEIGHTED, flops=_linear_flops, text=_linear_text, to_map=_linear_to_map,
              example="out = x | linear(8) | linear(2)"),
        OpDef("conv2d", "2-D convolution over [C, H, W]", _conv_shape, spelled="conv2d", aliases=("conv",),
              args=(Arg("out", int, check=positive, doc="output channels"),
                    Arg("k", int, 0, positive, doc="kernel size"),
                    Arg("stride", int, 1, positive),
                    Arg("pad", int, 0, non_negative, "padding on each side; same: keep the size", words=("same",)),
                    _BIAS, _TRAINABLE, Arg("kh", int, 0, non_negative, "kernel height (default k)"),
                    Arg("kw", int, 0, non_negative, "kernel width (default k)")),
              attrs=_conv_attrs, state=_WEIGHTED, flops=_conv_flops, text=_conv_text,
              traits=frozenset({"needs_flat"}),
              example="out = x | conv2d(2, 3, stride=2, pad=1) | flatten | linear(10)"),
        OpDef("maxpool2d", "2-D max pooling", _pool_shape("maxpool"), spelled="maxpool", aliases=("maxpool2d",),
              args=_POOL_ARGS, attrs=_pool_attrs, flops=_pool_flops, text=_pool_text("maxpool2d"),
              traits=frozenset({"needs_flat"}),
              example="out = x | maxpool(3, stride=2) | flatten | linear(10)"),
        OpDef("avgpool2d", "2-D average pooling", _pool_shape("avgpool"), spelled="avgpool", aliases=("avgpool2d",),
              args=_POOL_ARGS, attrs=_pool_attrs, flops=_pool_flops, text=_pool_text("avgpool2d"),
              traits=frozenset({"needs_flat"}),
              example="out = x | avgpool(2) | flatten | linear(10)"),
        OpDef("batchnorm", "batch normalisation; 1-D on [n], 2-D on [C, H, W]", _batchnorm_shape,
              spelled="batchnorm", aliases=("batchnorm1d", "batchnorm2d"), args=_BATCHNORM_ARGS, attrs=_with_trainable,
              resolves_to=("batchnorm1d", "batchnorm2d")),
        OpDef("batchnorm1d", "batch normalisation over features", _batchnorm_nd_shape, state=_BATCHNORM_STATE,
              flops=_batchnorm_flops, text=_batchnorm_text("batchnorm1d"), to_map=_batchnorm1d_to_map,
              traits=frozenset({"elementwise", "batch_statistics"}), example=_FLAT_MLP.format(op="batchnorm")),
        OpDef("batchnorm2d", "batch normalisation over channels", _batchnorm_nd_shape, state=_BATCHNORM_STATE,
              flops=_batchnorm_flops, text=_batchnorm_text("batchnorm2d"),
              traits=frozenset({"elementwise", "batch_statistics"}),
              example="out = x | conv2d(2, 3) | batchnorm(momentum=0.2) | flatten | linear(10)"),
        OpDef("dropout", "dropout", _same, spelled="dropout",
              args=(Arg("p", float, 0.5, probability, "probability of zeroing"),),
              traits=frozenset({"elementwise", "random"}),
              text=lambda attrs, inputs: f"dropout({value_text(attrs.get('p', 0.5))})",
              example=_FLAT_MLP.format(op="dropout(0.3)")),
        OpDef("flatten", "[C, H, W] -> [C*H*W]", lambda attrs, inputs, names: Inferred([math.prod(inputs[0])]),
              spelled="flatten", flops=_no_flops, to_map=_flatten_to_map, traits=frozenset({"flattens"}),
              example="out = x | flatten | linear(10)"),
        OpDef("identity", "y = x (left by convolutionize)", _same, flops=_no_flops,
              traits=frozenset({"elementwise"}), example="out = x | conv2d(2, 5) | flatten | linear(4) | linear(10)"),
        OpDef("relu", "max(0, x)", _same, spelled="relu", traits=frozenset({"elementwise"}),
              example=_FLAT_MLP.format(op="relu")),
        OpDef("leaky_relu", "x if x > 0 else slope * x", _same, spelled="leaky_relu", aliases=("leakyrelu",),
              args=(Arg("slope", float, 0.01),), traits=frozenset({"elementwise"}),
              text=lambda attrs, inputs: f"leaky_relu({value_text(attrs.get('slope', 0.01))})",
              example=_FLAT_MLP.format(op="leaky_relu(0.2)")),
        OpDef("tanh", "hyperbolic tangent", _same, spelled="tanh", traits=frozenset({"elementwise"}),
              example=_FLAT_MLP.format(op="tanh")),
        OpDef("sigmoid", "1 / (1 + exp(-x))", _same, spelled="sigmoid",
              traits=frozenset({"elementwise", "probability"}), example=_FLAT_MLP.format(op="sigmoid")),
        OpDef("softmax", "softmax over the features", _flat_only("softmax"), spelled="softmax",
              traits=frozenset({"needs_flat", "probability"}), example=_FLAT_MLP.format(op="softmax")),
        OpDef("log_softmax", "log of the softmax over the features (for nll)", _flat_only("log_softmax"),
              spelled="log_softmax", traits=frozenset({"needs_flat", "log_probability"}),
              example=_FLAT_MLP.format(op="log_softmax")),
        OpDef("concat", "join along the first axis (channels of a map, or features of a vector)", _concat_shape,
              spelled="concat", traits=frozenset({"combinator"}), to_map=_concat_to_map,
              example="a = x | linear(3)\n    out = x | linear(4) | concat(a) | linear(2)"),
        OpDef("add", "elementwise sum of equal shapes", _equal_shapes("add"), spelled="add",
              traits=frozenset({"combinator", "elementwise"}), text=_add_text,
              example="a = x | linear(4)\n    out = x | linear(4) | add(a) | residual { linear(4) | tanh } | linear(2)"),
        OpDef("sub", "elementwise difference a - b of equal shapes", _equal_shapes("sub"), spelled="sub", arity=2,
              traits=frozenset({"combinator", "elementwise"}),
              example="a = x | linear(4)\n    out = sub(x | linear(4), a) | linear(2)"),
        OpDef("mul", "elementwise product of equal shapes", _equal_shapes("mul"), spelled="mul",
              traits=frozenset({"combinator", "elementwise"}),
              example="a = x | linear(4) | sigmoid\n    out = x | linear(4) | mul(a) | linear(2)"),
        OpDef("outer", "outer product of two vectors: [n], [m] -> [n, m]", _outer_shape, spelled="outer", arity=2,
              traits=frozenset({"combinator", "needs_flat"}), flops=_no_flops,
              example="a = x | linear(3)\n    out = outer(x | linear(4), a) | sum(axis=0) | linear(2)"),
        OpDef("matmul", "matrix product: [n] x [n, k] -> [k], [m, n] x [n, k] -> [m, k]", _matmul_shape,
              spelled="matmul", arity=2, traits=frozenset({"combinator", "needs_flat"}), flops=_matmul_flops,
              text=lambda attrs, inputs: "matmul",
              example="u = triu(4)\n    out = x | linear(4) | softmax | matmul(u) | linear(2)"),
        OpDef("sum", "sum over one axis (`axis`), or over everything -> [1]", _sum_shape, spelled="sum",
              args=(Arg("axis", int, -1, doc="-1: every axis"),), traits=frozenset({"needs_flat"}),
              flops=_input_flops, text=_sum_text,
              example="a = x | linear(2) | outer(x | linear(3)) | sum(axis=1)\n    out = a | concat(a | sum) | linear(2)"),
        OpDef("global_avgpool", "the mean of each channel: [C, H, W] -> [C]", _global_pool_shape,
              spelled="global_avgpool", traits=frozenset({"needs_flat"}), flops=_input_flops,
              example="out = x | conv2d(3, 3) | global_avgpool | linear(10)"),
        OpDef("triu", "a fixed [n, n] matrix, 1 on and above the diagonal (u[i][j] = 1 where i <= j)", _triu_shape,
              spelled="triu", args=(Arg("n", int, check=positive, doc="rows and columns"),),
              traits=frozenset({"source", "constant"}), state=(Tensor("value", "value", True),), value=_triu_value,
              flops=_no_flops, text=lambda attrs, inputs: f"triu({attrs.get('n', '?')})",
              example="u = triu(2)\n    out = x | matmul(u) | linear(2)"),
    ]
}

# The op a spec's word stands for: spelled names and aliases.
SPELLED: dict[str, OpDef] = {
    word: op for op in OPS.values() if op.spelled for word in (op.spelled, *op.aliases)
}
COMBINATORS = tuple(op.spelled for op in OPS.values() if op.spelled and op.has("combinator"))
# IR ops every backend must lower: all but data inputs and the ops shape inference replaces.
LOWERED = tuple(name for name, op in OPS.items() if not op.resolves_to and not op.has("data"))


def infer(op: str, attrs: dict, inputs: list[list[int]], names: list[str]) -> Inferred:
    """Output and state shapes of a node, or MinispecError (no span: the caller adds it).

    `names` name the inputs in messages: the user's name for each (`` `a` ``) or "its input"."""
    return OPS[op].shape(attrs, inputs, names)


def op_text(op: str, attrs: dict, inputs: list[str]) -> str:
    """A node as a spec would write it, with the options that differ from their defaults."""
    definition = OPS.get(op)
    if definition is not None and definition.text is not None:
        return definition.text(attrs, inputs)
    shown = {k: v for k, v in attrs.items() if k not in ("residual", "expect")}
    return _call_text(op, [f"{k}={value_text(v)}" for k, v in shown.items()])


def state_names(node) -> list[str]:
    """The names of a node's parameters and buffers in state order (those it has)."""
    held = {**node.param_shapes, **node.buffer_shapes}
    return [t.name for t in OPS[node.op].state if t.name in held]
