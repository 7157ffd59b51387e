"""Lowering a Program to one torch.nn.Module that computes R replicas at once.

The second lowering of the torch backend (the first, `module.py`, is one
replica in plain torch.nn layers). Here every parameter set is one tensor with
a leading replica axis, `[R, *torch_shape]`, and every activation carries it
too, `[R, B, *node.shape]`; each layer computes all replicas in one call:

    linear       y = baddbmm(b, x, W^T)              x [R, B, in], W [R, out, in]
    conv2d       a grouped convolution, groups = R   [B, R*C, H, W] -> [B, R*O, Ho, Wo]
    batchnorm    F.batch_norm over R*C channels      running statistics are views of [R, C] buffers
    pooling      over the R*B images
    dropout      replica k's mask from generator k   (`minispec.masks`, as a lone trial draws it)
    tanh         2 sigmoid(2x) - 1                    (`minispec.kernels`; torch.tanh is several times slower
                                                       on the CPU, where R replicas' activations are large)

Replica k of the module therefore computes what `GraphModule` computes from
replica k's weights, and autograd gives replica k's slice of a parameter the
gradient of replica k's own loss.

Layout: a convolution's output stays in memory as [B, R, O, Ho, Wo] (the
grouped convolution's own order) and is seen as [R, B, O, Ho, Wo] through a
transposed view, so conv -> batchnorm -> relu -> pool chains never copy; only
`flatten` gathers a map into [R, B, features].

`state_dict()` keys are the canonical names (`<weights>.weight`, ...), each
tensor [R, *shape], in `program.weight_owners` order as in `GraphModule`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from minispec import kernels
from minispec.backends.replicas import PerReplica
from minispec.backends.torch_nn.module import LOWERING, Layout, ProgramModule
from minispec.ir.model import Node, Program
from minispec.ir.ops import OPS, pair
from minispec.masks import replica_masks, seeded_generators


def _merge_channels(x: torch.Tensor) -> torch.Tensor:
    """[R, B, C, *S] -> [B, R*C, *S] (free when x is a view of a [B, R, C, *S] tensor)."""
    r, b = x.shape[:2]
    return x.transpose(0, 1).reshape(b, r * x.shape[2], *x.shape[3:])


def _split_channels(y: torch.Tensor, replicas: int) -> torch.Tensor:
    """[B, R*C, *S] -> a [R, B, C, *S] view."""
    return y.view(y.shape[0], replicas, -1, *y.shape[2:]).transpose(0, 1)


def _per_image(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply an image-wise op (pooling) to [R, B, C, H, W] without copying x."""
    r, b = x.shape[:2]
    if x.transpose(0, 1).is_contiguous():  # a convolution's [B, R, ...] layout
        return _split_channels(fn(_merge_channels(x)), r)
    y = fn(x.reshape(r * b, *x.shape[2:]))
    return y.view(r, b, *y.shape[1:])


class StackedLinear(nn.Module):
    """Input: [R, B, in]   Output: [R, B, out]   weight: [R, out, in]   bias: [R, out]"""

    def __init__(self, replicas: int, in_features: int, out_features: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(replicas, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(replicas, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wt = self.weight.transpose(1, 2)
        return torch.bmm(x, wt) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), x, wt)


class StackedConv2d(nn.Module):
    """Input: [R, B, C, H, W]   Output: [R, B, O, Ho, Wo]   weight: [R, O, C, kh, kw]   bias: [R, O]"""

    def __init__(self, replicas: int, in_channels: int, out_channels: int, kernel: tuple[int, int],
                 stride: int, padding: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(replicas, out_channels, in_channels, *kernel))
        self.bias = nn.Parameter(torch.empty(replicas, out_channels)) if bias else None
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.weight.shape[0]
        weight = self.weight.reshape(-1, *self.weight.shape[2:])
        bias = None if self.bias is None else self.bias.reshape(-1)
        y = F.conv2d(_merge_channels(x), weight, bias, self.stride, self.padding, groups=r)
        return _split_channels(y, r)


class StackedBatchNorm(nn.Module):
    """Input: [R, B, C] or [R, B, C, H, W]   Output: same
    weight, bias, running_mean, running_var: [R, C]   num_batches_tracked: [R]

    Training uses the batch statistics and moves the running ones by `momentum`
    (towards the unbiased variance), as nn.BatchNorm does."""

    def __init__(self, replicas: int, channels: int, eps: float, momentum: float):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.empty(replicas, channels))
        self.bias = nn.Parameter(torch.empty(replicas, channels))
        self.register_buffer("running_mean", torch.zeros(replicas, channels))
        self.register_buffer("running_var", torch.ones(replicas, channels))
        self.register_buffer("num_batches_tracked", torch.zeros(replicas, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        y = F.batch_norm(_merge_channels(x), self.running_mean.view(-1), self.running_var.view(-1),
                         self.weight.reshape(-1), self.bias.reshape(-1), self.training, self.momentum, self.eps)
        return _split_channels(y, x.shape[0])


class Tanh(torch.autograd.Function):
    """tanh through the sigmoid (`minispec.kernels`), its backward from the output in one pass.

    Equal to torch.tanh up to float rounding; `GraphModule` (one replica, the
    reference that emitted code equals bit for bit) keeps torch.tanh."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = kernels.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return kernels.tanh_backward(grad, y)


def _stacked_conv2d(node: Node, layout: Layout) -> nn.Module:
    out_channels, in_channels, kh, kw = node.param_shapes["weight"]
    return StackedConv2d(layout.replicas, in_channels, out_channels, (kh, kw), pair(node.attrs["stride"]),
                         pair(node.attrs["padding"]), "bias" in node.param_shapes)


def _stacked_batchnorm(node: Node, layout: Layout) -> nn.Module:
    (channels,) = node.param_shapes["weight"]
    return StackedBatchNorm(layout.replicas, channels, node.attrs["eps"], node.attrs["momentum"])


# The lowering table over R replicas: the stacked layers of the ops with state,
# and module.py's functions and constants (in the [R, B, ...] layout) for the others.
STACKED_LOWERING: dict[str, Callable] = {
    **{op: lower for op, lower in LOWERING.items() if not OPS[op].state or OPS[op].has("constant")},
    "linear": lambda node, layout: StackedLinear(layout.replicas, node.param_shapes["weight"][1],
                                                 node.param_shapes["weight"][0], "bias" in node.param_shapes),
    "conv2d": _stacked_conv2d,
    "batchnorm1d": _stacked_batchnorm,
    "batchnorm2d": _stacked_batchnorm,
    "tanh": lambda node, layout: Tanh.apply,
}


class StackedGraphModule(ProgramModule):
    """A Program as one nn.Module over R replicas (see the module docstring).

    Input: `forward(**inputs)` with inputs[name] of shape [R, B, *data shape].
    Output: dict node id -> [R, B, *node.shape] for every node of `program.outputs`.
    `generators`: one per replica, for dropout (default: `seeded_generators`).
    `dropout`: node id -> p per replica, for dropout nodes whose p differs between replicas.
    """

    def __init__(self, program: Program, replicas: int, generators: Sequence[torch.Generator] | None = None,
                 dropout: dict[str, PerReplica] | None = None):
        layout = Layout(dropout=None, sample_axis=2, per_image=lambda fn: lambda x: _per_image(fn, x), replicas=replicas,
                        dropout_p=dict(dropout or {}))
        super().__init__(program, STACKED_LOWERING, layout)
        if generators is None:
            generators = seeded_generators(replicas) if self.has_dropout else [torch.Generator()] * replicas
        if len(generators) != replicas:
            raise ValueError(f"expected {replicas} dropout generators (one per replica), got {len(generators)}")
        self.replicas = replicas
        self.generators = list(generators)

    def dropout(self, x: torch.Tensor, p: PerReplica) -> torch.Tensor:
        return x * replica_masks(x, p, self.generators)
