"""Passes: functions Program -> Program, each runnable and testable alone.

- `infer_shapes`: output shape of every node, parameter shapes and counts
  (a shared set counted once), batchnorm made 1-D or 2-D, and every check that
  needs shapes (shape mismatches, shared instances applied to incompatible
  inputs, loss outputs that do not fit their targets).
- `convolutionize`: the fully-convolutional twin of a network (Linear after a
  feature map becomes a Conv2d whose kernel covers the map; later Linears become
  1x1 convolutions), with the same parameter count.
"""

from __future__ import annotations

import math

from minispec.errors import MinispecError
from minispec.ir.model import Loss, Node, Program
from minispec.ir.ops import infer, shape_text

_ELEMENTWISE = ("relu", "leaky_relu", "tanh", "sigmoid", "dropout", "batchnorm1d", "batchnorm2d")


def infer_shapes(program: Program) -> Program:
    shapes: dict[str, list[int]] = {}
    owners: dict[str, Node] = {}
    nodes = []
    for node in program.nodes:
        try:
            node = _infer_node(node, shapes, program)
        except MinispecError as error:
            raise error.with_span(node.span) from None
        params = 0
        if node.weights is not None:
            owner = owners.get(node.weights)
            if owner is None:
                owners[node.weights] = node
                params = sum(math.prod(shape) for shape in node.param_shapes.values())
            elif owner.param_shapes != node.param_shapes:
                raise _shared_mismatch(owner, node, shapes)
        node = node.model_copy(update={"params": params})
        shapes[node.id] = node.shape
        nodes.append(node)
    for loss in program.losses:
        _check_loss(loss, shapes[loss.node], program)
    return program.model_copy(update={"nodes": nodes})


def _infer_node(node: Node, shapes: dict[str, list[int]], program: Program) -> Node:
    inputs = [shapes[i] for i in node.inputs]
    op, attrs = node.op, dict(node.attrs)
    if op == "input":
        shape = list(program.data.inputs[attrs["name"]])
        return node.model_copy(update={"shape": shape})
    if op == "select":
        (shape,) = inputs
        if not shape or attrs["index"] >= shape[0]:
            raise MinispecError(
                f"index {attrs['index']} is out of range for `{node.inputs[0]}` of shape {shape_text(shape)}",
                hint=f"valid indices are 0..{shape[0] - 1}" if shape else "a scalar cannot be indexed",
            )
        return node.model_copy(update={"shape": [1, *shape[1:]]})
    if op == "concat":
        first = inputs[0]
        for other, name in zip(inputs[1:], node.inputs[1:]):
            if len(other) != len(first) or other[1:] != first[1:]:
                raise MinispecError(
                    f"concat joins along the first axis, but `{node.inputs[0]}` has shape {shape_text(first)} "
                    f"and `{name}` has shape {shape_text(other)}",
                    hint="the other axes must agree; flatten both first to join them as vectors",
                )
        return node.model_copy(update={"shape": [sum(s[0] for s in inputs), *first[1:]]})
    if op == "add":
        for other, name in zip(inputs[1:], node.inputs[1:]):
            if other != inputs[0]:
                what = "a residual body must keep its input's shape" if attrs.get("residual") else "add needs equal shapes"
                raise MinispecError(
                    f"{what}: {shape_text(inputs[0])} vs {shape_text(other)}",
                    hint="use padding to keep the size (conv2d(c, 3, pad=1)) and as many channels as the input",
                )
        return node.model_copy(update={"shape": list(inputs[0])})
    (shape,) = inputs
    if op == "batchnorm":
        if len(shape) not in (1, 3):
            raise MinispecError(f"batchnorm expects [features] or [channels, height, width], got {shape_text(shape)}")
        op = "batchnorm1d" if len(shape) == 1 else "batchnorm2d"
        expected = attrs.pop("expect", None)
        if expected is not None and expected != op:
            raise MinispecError(
                f"{expected} does not fit an input of shape {shape_text(shape)}",
                hint=f"write `{op}`, or just `batchnorm`, which picks by shape",
            )
    named = next((name for name, node_id in program.names.items() if node_id == node.inputs[0]), None)
    out_shape, param_shapes = infer(op, attrs, shape, f"`{named}`" if named else "its input")
    return node.model_copy(update={"op": op, "attrs": attrs, "shape": out_shape, "param_shapes": param_shapes})


def _shared_mismatch(owner: Node, node: Node, shapes: dict[str, list[int]]) -> MinispecError:
    first_call = next((s.span for s in reversed(owner.scope) if s.kind == "instance"), owner.span)
    this_call = next((s.span for s in reversed(node.scope) if s.kind == "instance"), node.span)
    instance = next((s.name for s in reversed(node.scope) if s.kind == "instance"), node.weights)
    return MinispecError(
        f"shared instance `{instance}` is applied to incompatible inputs: its {node.op} gets "
        f"{shape_text(shapes[node.inputs[0]])} here but {shape_text(shapes[owner.inputs[0]])} at its first use",
        this_call,
        related=[(first_call, "first use of the instance")],
        hint="one set of weights needs inputs of one shape; use a separate instance for the other input",
    )


def _check_loss(loss: Loss, shape: list[int], program: Program) -> None:
    name = next((n for n, i in program.names.items() if i == loss.node), loss.node)
    if len(shape) != 1:
        raise MinispecError(
            f"the loss on `{name}` needs a flat output, but `{name}` has shape {shape_text(shape)}",
            loss.span,
            hint=f"end `{name}` with flatten and linear(...)",
        )
    producer = program.node(loss.node).op
    if loss.kind == "nll" and producer != "log_softmax":
        raise MinispecError(
            f"nll expects log-probabilities, but `{name}` is the output of {producer}",
            loss.span,
            hint=f"end `{name}` with log_softmax, or use cross_entropy on the logits",
        )
    if loss.kind == "bce" and producer not in ("sigmoid", "softmax"):
        raise MinispecError(
            f"bce expects probabilities, but `{name}` is the output of {producer}",
            loss.span,
            hint=f"end `{name}` with sigmoid",
        )
    wanted = 1 if loss.encoding in ("pm1", "scalar") else loss.classes
    if shape[0] != wanted:
        if wanted == 1:
            hint = f"end `{name}` with linear(1), or use onehot({loss.target}) for {shape[0]} outputs"
        else:
            hint = f"end `{name}` with linear({wanted})"
        raise MinispecError(
            f"`{name}` has {shape[0]} output{'s' * (shape[0] != 1)}, but {loss.kind} on {loss.encoding} "
            f"`{loss.target}` needs {wanted}",
            loss.span,
            hint=hint,
        )


def convolutionize(program: Program) -> Program:
    """Rewrite Linear layers that follow a feature map into convolutions.

    A `flatten` of a [C, H, W] map becomes the identity; a Linear fed a map
    [C, H, W] becomes conv2d(out, kernel=(H, W)) producing [out, 1, 1], and the
    ops after it keep working on [n, 1, 1] maps. Each loss output that is still a
    map gets a final flatten (its node keeps the user's name, the conv output is
    renamed `<name>_map`). Weights and parameter counts are unchanged, since a
    conv with the map's size as kernel computes exactly the same affine map.
    """
    spatial: dict[str, list[int]] = {}  # node id -> its map shape after the rewrite
    nodes: list[Node] = []
    renamed: dict[str, str] = {}

    def source(node_id: str) -> str:
        return renamed.get(node_id, node_id)

    for node in program.nodes:
        inputs = [source(i) for i in node.inputs]
        maps = [spatial.get(i) for i in inputs]
        node = node.model_copy(update={"inputs": inputs})
        if node.op == "flatten" and len(maps[0] or _shape_of(nodes, inputs[0])) == 3:
            spatial[node.id] = maps[0] or _shape_of(nodes, inputs[0])
            node = node.model_copy(update={"op": "identity", "shape": spatial[node.id]})
        elif node.op == "linear" and maps[0] is not None:
            c, h, w = maps[0]
            out = node.attrs["out"]
            weight = [out, c, h, w]
            params = {"weight": weight, **({"bias": [out]} if "bias" in node.param_shapes else {})}
            node = node.model_copy(update={
                "op": "conv2d",
                "attrs": {"out": out, "kernel": [h, w], "stride": 1, "padding": 0, "bias": "bias" in params},
                "shape": [out, 1, 1],
                "param_shapes": params,
            })
            spatial[node.id] = [out, 1, 1]
        elif node.op in _ELEMENTWISE and maps[0] is not None:
            op = "batchnorm2d" if node.op == "batchnorm1d" else node.op
            node = node.model_copy(update={"op": op, "shape": maps[0]})
            spatial[node.id] = maps[0]
        elif node.op == "concat" and all(m is not None for m in maps) and len({tuple(m[1:]) for m in maps}) == 1:
            shape = [sum(m[0] for m in maps), *maps[0][1:]]
            node = node.model_copy(update={"shape": shape})
            spatial[node.id] = shape
        elif node.op == "add" and all(m is not None for m in maps) and len({tuple(m) for m in maps}) == 1:
            node = node.model_copy(update={"shape": maps[0]})
            spatial[node.id] = maps[0]
        elif any(m is not None for m in maps):
            # Any other consumer needs the flat vector back.
            flat_inputs = []
            for input_id, shape in zip(inputs, maps):
                if shape is None:
                    flat_inputs.append(input_id)
                    continue
                flat_id = f"{input_id}_flat"
                if flat_id not in [n.id for n in nodes]:
                    nodes.append(Node(id=flat_id, op="flatten", inputs=[input_id], shape=[math.prod(shape)],
                                      scope=node.scope, span=node.span))
                flat_inputs.append(flat_id)
            node = node.model_copy(update={"inputs": flat_inputs})
        nodes.append(node)

    # Loss outputs must be flat: rename the map node and flatten under the user's name.
    for loss in program.losses:
        shape = spatial.get(loss.node)
        if shape is None:
            continue
        map_id = f"{loss.node}_map"
        for index, node in enumerate(nodes):
            if node.id == loss.node:
                nodes[index] = node.model_copy(update={"id": map_id})
            else:
                nodes[index] = node.model_copy(update={"inputs": [map_id if i == loss.node else i for i in node.inputs]})
        position = next(i for i, n in enumerate(nodes) if n.id == map_id)
        nodes.insert(position + 1, Node(id=loss.node, op="flatten", inputs=[map_id], shape=[math.prod(shape)],
                                        scope=nodes[position].scope, span=nodes[position].span))
    return program.model_copy(update={"nodes": nodes, "convolutionized": True})


def _shape_of(nodes: list[Node], node_id: str) -> list[int]:
    return next(node.shape for node in nodes if node.id == node_id)
