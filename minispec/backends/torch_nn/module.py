"""Lowering a Program to one torch.nn.Module.

`build_module(program)` makes a `GraphModule` with one submodule per parameter
set, registered under the set's `weights` key in `program.weight_owners` order:

    self._modules['extract:1:conv2d'] = nn.Conv2d(1, 32, kernel_size=(3, 3))   # used by a:1:conv2d and b:1:conv2d

Nodes that share a key call the same submodule, so their weights (and a
BatchNorm's running statistics) are one set, exactly as when one nn.Module is
called twice. `state_dict()` keys are therefore the canonical names
(`<weights>.weight`, `<weights>.running_mean`, ...), in the order of
`minispec.backends.weights.initial_state`.

`LOWERING` is the lowering table: op -> the nn.Module of a parameter set, or
the function of a parameterless op; the stacked lowering reuses its functions. Inputs are [B, *shape];
`forward(**inputs)` returns `{node_id: [B, *node.shape]}` for `program.outputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from minispec.backends.replicas import PerReplica
from minispec.backends.weights import initial_state
from minispec.ir.model import Node, Program
from minispec.ir.ops import OPS, pair
from minispec.masks import dropout_mask, drops


@dataclass(frozen=True)
class Layout:
    """How a lowering lays its tensors out, for the lowering table's entries.

    sample_axis: 1 for [B, ...] (`GraphModule`), 2 for [R, B, ...] (the stacked
    lowering); per_image adapts an image-wise op (pooling) to that layout;
    replicas: R; dropout(x, p): the module's dropout, identity in evaluation;
    dropout_p: node id -> p per replica, for dropout nodes whose p differs
    between the replicas (a sweep's points as one model).
    """

    dropout: Callable[[torch.Tensor, float], torch.Tensor]
    sample_axis: int = 1
    per_image: Callable[[Callable], Callable] = lambda fn: fn
    replicas: int = 1
    dropout_p: dict[str, PerReplica] = field(default_factory=dict)


def _batchnorm(node: Node, layout: Layout) -> nn.Module:
    layer = nn.BatchNorm1d if len(node.shape) == 1 else nn.BatchNorm2d
    (channels,) = node.param_shapes["weight"]
    return layer(channels, eps=node.attrs["eps"], momentum=node.attrs["momentum"])


def _conv2d(node: Node, layout: Layout) -> nn.Module:
    out_channels, in_channels, kh, kw = node.param_shapes["weight"]
    return nn.Conv2d(in_channels, out_channels, kernel_size=(kh, kw), stride=pair(node.attrs["stride"]),
                     padding=pair(node.attrs["padding"]), bias="bias" in node.param_shapes)


class Constant(nn.Module):
    """Fixed values: the buffer `value` ([*shape], or [R, *shape] stacked), returned
    with a batch axis of 1 ([1, *shape] or [R, 1, *shape]) that broadcasts."""

    def __init__(self, shape: list[int], layout: Layout):
        super().__init__()
        leading = (layout.replicas,) if layout.sample_axis == 2 else ()
        self.register_buffer("value", torch.zeros(*leading, *shape))
        self.batch_axis = layout.sample_axis - 1

    def forward(self) -> torch.Tensor:
        return self.value.unsqueeze(self.batch_axis)


def _matmul(layout: Layout) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-sample matrix product; a vector is a one-row (first) or one-column (second) matrix."""
    def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        row, column = a.dim() == layout.sample_axis + 1, b.dim() == layout.sample_axis + 1
        y = torch.matmul(a.unsqueeze(-2) if row else a, b.unsqueeze(-1) if column else b)
        y = y.squeeze(-1) if column else y
        return y.squeeze(-2) if row else y
    return matmul


def _sum(node: Node, layout: Layout) -> Callable[[torch.Tensor], torch.Tensor]:
    axis = node.attrs["axis"]
    if axis == -1:
        return lambda x: x.flatten(layout.sample_axis).sum(-1, keepdim=True)
    return lambda x: x.sum(axis + layout.sample_axis, keepdim=x.dim() == layout.sample_axis + 1)


def _product(*xs: torch.Tensor) -> torch.Tensor:
    y = xs[0]
    for x in xs[1:]:
        y = y * x
    return y


# op -> (node, layout) -> what computes the node: an nn.Module holding the
# parameter set for ops with state, a function of the input tensors otherwise.
LOWERING: dict[str, Callable[[Node, Layout], Callable[..., torch.Tensor]]] = {
    "linear": lambda node, layout: nn.Linear(node.param_shapes["weight"][1], node.param_shapes["weight"][0],
                                             bias="bias" in node.param_shapes),
    "conv2d": _conv2d,
    "batchnorm1d": _batchnorm,
    "batchnorm2d": _batchnorm,
    "select": lambda node, layout: lambda x: x.narrow(layout.sample_axis, node.attrs["index"], 1),
    "identity": lambda node, layout: lambda x: x,
    "flatten": lambda node, layout: lambda x: torch.flatten(x, layout.sample_axis),
    "maxpool2d": lambda node, layout: layout.per_image(
        lambda x: F.max_pool2d(x, node.attrs["kernel"], node.attrs["stride"])),
    "avgpool2d": lambda node, layout: layout.per_image(
        lambda x: F.avg_pool2d(x, node.attrs["kernel"], node.attrs["stride"])),
    "dropout": lambda node, layout: lambda x: layout.dropout(x, layout.dropout_p.get(node.id, node.attrs["p"])),
    "relu": lambda node, layout: F.relu,
    "leaky_relu": lambda node, layout: lambda x: F.leaky_relu(x, node.attrs["slope"]),
    "tanh": lambda node, layout: torch.tanh,
    "sigmoid": lambda node, layout: torch.sigmoid,
    "softmax": lambda node, layout: lambda x: F.softmax(x, dim=layout.sample_axis),
    "log_softmax": lambda node, layout: lambda x: F.log_softmax(x, dim=layout.sample_axis),
    "concat": lambda node, layout: lambda *xs: torch.cat(xs, dim=layout.sample_axis),
    "add": lambda node, layout: lambda *xs: sum(xs[1:], xs[0]),
    "sub": lambda node, layout: torch.sub,
    "mul": lambda node, layout: _product,
    "outer": lambda node, layout: lambda a, b: a.unsqueeze(-1) * b.unsqueeze(-2),
    "matmul": lambda node, layout: _matmul(layout),
    "sum": _sum,
    "global_avgpool": lambda node, layout: lambda x: x.mean((-2, -1)),
    "triu": lambda node, layout: Constant(node.shape, layout),
}


class ProgramModule(nn.Module):
    """What both lowerings share: one layer per parameter set, registered under
    its `weights` key, and the graph run in node order in `forward`.

    `lowering` is the lowering table, `layout` its layout without the dropout,
    which is this module's (subclasses say how dropout draws).
    """

    def __init__(self, program: Program, lowering: dict[str, Callable], layout: Layout):
        super().__init__()
        layout = replace(layout, dropout=self._dropout_in_training)
        for owner in program.weight_owners:
            # Straight into _modules: a key may be a name nn.Module already uses
            # (`half`, `train`, `to`...); state_dict() reads _modules either way.
            self._modules[owner.weights] = lowering[owner.op](owner, layout)
            if not owner.trainable:
                self._modules[owner.weights].requires_grad_(False)  # `trainable=false`: kept as initialised
        self.outputs = program.outputs
        self._inputs = {node.id: node.attrs["name"] for node in program.nodes if OPS[node.op].has("data")}
        self._steps: list[tuple[str, str | None, Callable | None, list[str]]] = []
        for node in program.nodes:
            if node.id in self._inputs:
                continue
            if node.weights is not None:
                self._steps.append((node.id, node.weights, None, node.inputs))
            else:
                self._steps.append((node.id, None, lowering[node.op](node, layout), node.inputs))
        self.has_dropout = any(OPS[node.op].has("random") for node in program.nodes)

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        missing = set(self._inputs.values()) - set(inputs)
        if missing:
            raise TypeError(f"missing input(s) {sorted(missing)}; this model takes {sorted(self._inputs.values())}")
        values = {node_id: inputs[name] for node_id, name in self._inputs.items()}
        for node_id, weights, fn, args in self._steps:
            xs = [values[a] for a in args]
            values[node_id] = self._modules[weights](*xs) if weights is not None else fn(*xs)
        return {name: values[name] for name in self.outputs}

    def _dropout_in_training(self, x: torch.Tensor, p: PerReplica) -> torch.Tensor:
        return self.dropout(x, p) if self.training and drops(p) else x

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
        super().__init__(program, LOWERING, Layout(dropout=None))
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
