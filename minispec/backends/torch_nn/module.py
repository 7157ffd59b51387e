"""Lowering a Program to one torch.nn.Module.

`build_module(program)` makes a `GraphModule` with one submodule per parameter
set, registered under the set's `weights` key in `program.weight_owners` order:

    self.extract_1_conv2d = nn.Conv2d(1, 32, kernel_size=(3, 3))   # used by a_1_conv2d and b_1_conv2d

Nodes that share a key call the same submodule, so their weights (and a
BatchNorm's running statistics) are one set, exactly as when one nn.Module is
called twice. `state_dict()` keys are therefore the canonical names
(`<weights>.weight`, `<weights>.running_mean`, ...), in the order of
`minispec.backends.weights.initial_state`.

Parameterless ops are functional calls in `forward`. Inputs are [B, *shape];
`forward(**inputs)` returns `{node_id: [B, *node.shape]}` for `program.outputs`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from minispec.backends.weights import initial_state
from minispec.masks import dropout_mask
from minispec.ir.model import Node, Program


def make_layer(node: Node) -> nn.Module:
    """The torch.nn layer holding the parameter set of `node` (a weight owner)."""
    attrs, shapes = node.attrs, node.param_shapes
    if node.op == "linear":
        out_features, in_features = shapes["weight"]
        return nn.Linear(in_features, out_features, bias="bias" in shapes)
    if node.op == "conv2d":
        out_channels, in_channels, kh, kw = shapes["weight"]
        return nn.Conv2d(
            in_channels, out_channels, kernel_size=(kh, kw),
            stride=attrs["stride"], padding=attrs["padding"], bias="bias" in shapes,
        )
    if node.op in ("batchnorm1d", "batchnorm2d"):
        layer = nn.BatchNorm1d if node.op == "batchnorm1d" else nn.BatchNorm2d
        (channels,) = shapes["weight"]
        return layer(channels, eps=attrs["eps"], momentum=attrs["momentum"])
    raise ValueError(f"node {node.id!r}: op {node.op!r} has no torch.nn layer")


def functional(node: Node, sample_axis: int = 1,
               per_image: Callable[[Callable], Callable] = lambda fn: fn) -> Callable[..., torch.Tensor]:
    """The function computing a parameterless node from its input tensors.

    Inputs are [B, ...] (`sample_axis` 1, the default) or [R, B, ...] (2: the
    stacked lowering); `per_image` adapts an image-wise op (pooling) to the
    layout of the inputs.
    """
    op, attrs, axis = node.op, node.attrs, sample_axis
    if op == "select":
        index = attrs["index"]
        return lambda x: x.narrow(axis, index, 1)
    if op == "identity":
        return lambda x: x
    if op == "flatten":
        return lambda x: torch.flatten(x, axis)
    if op == "maxpool2d":
        return per_image(lambda x: F.max_pool2d(x, attrs["kernel"], attrs["stride"]))
    if op == "avgpool2d":
        return per_image(lambda x: F.avg_pool2d(x, attrs["kernel"], attrs["stride"]))
    if op == "relu":
        return F.relu
    if op == "leaky_relu":
        return lambda x: F.leaky_relu(x, attrs["slope"])
    if op == "tanh":
        return torch.tanh
    if op == "sigmoid":
        return torch.sigmoid
    if op == "softmax":
        return lambda x: F.softmax(x, dim=axis)
    if op == "log_softmax":
        return lambda x: F.log_softmax(x, dim=axis)
    if op == "concat":
        return lambda *xs: torch.cat(xs, dim=axis)
    if op == "add":
        return lambda a, b: a + b
    raise ValueError(f"node {node.id!r}: unknown op {op!r}")


class ProgramModule(nn.Module):
    """What both lowerings share: one layer per parameter set, registered under
    its `weights` key, and the graph run in node order in `forward`.

    `make_layer(node)` builds the layer of a weight owner, `functional(node)`
    the function of a parameterless node; subclasses say how dropout draws.
    """

    def __init__(self, program: Program, make_layer: Callable[[Node], nn.Module],
                 functional: Callable[[Node], Callable[..., torch.Tensor]]):
        super().__init__()
        for owner in program.weight_owners:
            # Straight into _modules: a key may be a name nn.Module already uses
            # (`half`, `train`, `to`...); state_dict() reads _modules either way.
            self._modules[owner.weights] = make_layer(owner)
        self.outputs = program.outputs
        self._inputs = {node.id: node.attrs["name"] for node in program.nodes if node.op == "input"}
        self._steps: list[tuple[str, str | None, Callable | None, list[str]]] = []
        for node in program.nodes:
            if node.op == "input":
                continue
            if node.op == "dropout":
                self._steps.append((node.id, None, None, node.inputs))
            elif node.weights is not None:
                self._steps.append((node.id, node.weights, None, node.inputs))
            else:
                self._steps.append((node.id, None, functional(node), node.inputs))
        self._dropout = {node.id: node.attrs["p"] for node in program.nodes if node.op == "dropout"}

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        missing = set(self._inputs.values()) - set(inputs)
        if missing:
            raise TypeError(f"missing input(s) {sorted(missing)}; this model takes {sorted(self._inputs.values())}")
        values = {node_id: inputs[name] for node_id, name in self._inputs.items()}
        for node_id, weights, fn, args in self._steps:
            xs = [values[a] for a in args]
            if weights is not None:
                values[node_id] = self._modules[weights](*xs)
            elif fn is not None:
                values[node_id] = fn(*xs)
            elif self.training and self._dropout[node_id] > 0:
                values[node_id] = self.dropout(xs[0], self._dropout[node_id])
            else:
                values[node_id] = xs[0]
        return {name: values[name] for name in self.outputs}

    def dropout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        raise NotImplementedError


class GraphModule(ProgramModule):
    """A Program as an nn.Module: one submodule per parameter set, the graph in `forward`.

    Input: `forward(**inputs)` with inputs[name] of shape [B, *data shape].
    Output: dict node id -> [B, *node.shape] for every node of `program.outputs`.
    Dropout draws from `dropout_generator` when one is set (see `minispec.masks`),
    otherwise from torch's global RNG through F.dropout.
    """

    def __init__(self, program: Program):
        super().__init__(program, make_layer, functional)
        self.program = program
        self.dropout_generator: torch.Generator | None = None

    def dropout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if self.dropout_generator is None:
            return F.dropout(x, p, training=True)
        return x * dropout_mask(x.shape, p, self.dropout_generator, x)


def build_module(
    program: Program,
    state: dict[str, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> GraphModule:
    """A GraphModule of `program` holding `state` (canonical names), or, when no
    state is given, `initial_state(program, generator)` (a generator seeded from
    `program.train.seed` when none is given). nn's own initialisation is overwritten."""
    module = GraphModule(program).to(dtype)
    if state is None:
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(program.train.seed)
        state = initial_state(program, generator, dtype=dtype)
    module.load_state_dict(state, strict=True)
    return module
