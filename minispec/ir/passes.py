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
from minispec.ir.model import GENERATED, Loss, Node, Program, Warning_
from minispec.ir.ops import OPS, shape_text


def infer_shapes(program: Program) -> Program:
    shapes: dict[str, list[int]] = {}
    owners: dict[str, Node] = {}
    labels = _input_labels(program)
    nodes = []
    for node in program.nodes:
        try:
            node = _infer_node(node, shapes, program, labels)
        except MinispecError as error:
            raise error.with_span(node.span) from None
        params = 0
        if node.weights is not None:
            owner = owners.get(node.weights)
            if owner is None:
                owners[node.weights] = node
                params = sum(math.prod(shape) for shape in node.param_shapes.values()) if node.trainable else 0
            elif owner.param_shapes != node.param_shapes:
                raise _shared_mismatch(owner, node, shapes)
        node = node.model_copy(update={"params": params})
        shapes[node.id] = node.shape
        nodes.append(node)
    for loss in program.losses:
        _check_loss(loss, shapes[loss.node], program)
    return program.replaced(nodes=nodes)


def _input_labels(program: Program) -> dict[str, str]:
    """How a message names each node that is an input of another: the user's
    name, a data input, or nothing ("its input"). Made once: linear time."""
    labels: dict[str, str] = {}
    for name, node_id in program.names.items():
        labels.setdefault(node_id, f"`{name}`")
    for node in program.nodes:
        if OPS[node.op].has("data"):
            labels.setdefault(node.id, f"`{node.id}`")
    return labels


def _infer_node(node: Node, shapes: dict[str, list[int]], program: Program, labels: dict[str, str]) -> Node:
    if OPS[node.op].has("data"):
        inputs, names = [list(program.data.inputs[node.attrs["name"]])], [f"`{node.attrs['name']}`"]
    else:
        inputs, names = [shapes[i] for i in node.inputs], [_input_name(i, node, labels) for i in node.inputs]
    inferred = OPS[node.op].shape(dict(node.attrs), inputs, names)
    op = inferred.op or node.op
    state = OPS[op].state
    return node.model_copy(update={
        "op": op,
        "attrs": node.attrs if inferred.attrs is None else inferred.attrs,
        "shape": inferred.shape,
        "param_shapes": {t.name: inferred.state[t.name] for t in state if not t.buffer and t.name in inferred.state},
        "buffer_shapes": {t.name: inferred.state[t.name] for t in state if t.buffer and t.name in inferred.state},
    })


def _input_name(node_id: str, node: Node, labels: dict[str, str]) -> str:
    """How a message names an input: the user's name, a data input, or "its input"."""
    if node_id in labels:
        return labels[node_id]
    return f"`{node_id}`" if len(node.inputs) > 1 else "its input"


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
    if loss.kind == "nll" and not OPS[producer].has("log_probability"):
        raise MinispecError(
            f"nll expects log-probabilities, but `{name}` is the output of {producer}",
            loss.span,
            hint=f"end `{name}` with log_softmax, or use cross_entropy on the logits",
        )
    if loss.kind == "bce" and not OPS[producer].has("probability"):
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
    renamed `<name>:map`). Weights and parameter counts are unchanged, since a
    conv with the map's size as kernel computes exactly the same affine map.
    """
    spatial: dict[str, list[int]] = {}  # node id -> its map shape after the rewrite
    nodes: list[Node] = []
    renamed: dict[str, str] = {}
    shape_of: dict[str, list[int]] = {}  # node id -> its shape, for the nodes rewritten so far

    def source(node_id: str) -> str:
        return renamed.get(node_id, node_id)

    for node in program.nodes:
        inputs = [source(i) for i in node.inputs]
        maps = [spatial.get(i) for i in inputs]
        node = node.model_copy(update={"inputs": inputs})
        definition = OPS[node.op]
        if definition.has("flattens") and maps[0] is None and len(shape_of[inputs[0]]) == 3:
            maps = [shape_of[inputs[0]]]  # the flatten of a map: where the rewrite starts
        if not any(m is not None for m in maps):
            nodes.append(node)
            shape_of[node.id] = node.shape
            continue
        rewritten = None
        if definition.to_map is not None and all(m is not None for m in maps):
            rewritten = definition.to_map(dict(node.attrs), maps)
        elif definition.has("elementwise") and all(m == maps[0] for m in maps):
            rewritten = node.op, dict(node.attrs), list(maps[0])
        elif not (definition.to_map or definition.has("elementwise") or definition.has("needs_flat")):
            raise MinispecError(
                f"convolutionize does not know how {node.op} acts on a feature map",
                node.span,
                hint="declare the op elementwise, needs_flat or give it to_map in minispec/ir/ops.py",
            )
        if rewritten is not None:
            op, attrs, shape = rewritten
            node = node.model_copy(update={"op": op, "attrs": attrs, "shape": shape})
            spatial[node.id] = shape
        else:
            # This consumer needs the flat vector back.
            flat_inputs = []
            for input_id, shape in zip(inputs, maps):
                if shape is None:
                    flat_inputs.append(input_id)
                    continue
                flat_id = f"{input_id}{GENERATED}flat"
                if flat_id not in shape_of:
                    nodes.append(Node(id=flat_id, op="flatten", inputs=[input_id], shape=[math.prod(shape)],
                                      scope=node.scope, span=node.span))
                    shape_of[flat_id] = nodes[-1].shape
                flat_inputs.append(flat_id)
            node = node.model_copy(update={"inputs": flat_inputs})
        nodes.append(node)
        shape_of[node.id] = node.shape

    # Loss outputs must be flat: rename the map node and flatten under the user's name.
    for loss in program.losses:
        shape = spatial.get(loss.node)
        if shape is None:
            continue
        map_id = f"{loss.node}{GENERATED}map"
        for index, node in enumerate(nodes):
            if node.id == loss.node:
                nodes[index] = node.model_copy(update={"id": map_id})
            else:
                nodes[index] = node.model_copy(update={"inputs": [map_id if i == loss.node else i for i in node.inputs]})
        position = next(i for i, n in enumerate(nodes) if n.id == map_id)
        nodes.insert(position + 1, Node(id=loss.node, op="flatten", inputs=[map_id], shape=[math.prod(shape)],
                                        scope=nodes[position].scope, span=nodes[position].span))
    return program.replaced(nodes=nodes, convolutionized=True)


def lint(program: Program) -> Program:
    """Warnings about a valid program: a softmax before cross_entropy, a threshold an argmax
    decision ignores, parameters counted as trainable that no loss reaches."""
    warnings = []
    by_id = {node.id: node for node in program.nodes}
    names = {node_id: name for name, node_id in program.names.items()}
    for loss in program.losses:
        producer = by_id[loss.node]
        name = names.get(loss.node, loss.node)
        if loss.kind == "cross_entropy" and OPS[producer.op].has("probability"):
            warnings.append(Warning_(
                message=f"cross_entropy applies its own softmax, but `{name}` is already the output of {producer.op}",
                span=loss.span, hint=f"end `{name}` with its logits (drop the {producer.op}), or use nll after log_softmax"))
        if loss.decision == "argmax" and loss.threshold != 0.5:
            warnings.append(Warning_(
                message=f"threshold={loss.threshold:g} is ignored: {loss.kind} on {loss.encoding} targets decides by argmax",
                span=loss.span, hint="a threshold applies to single outputs: mse(target), mse(pm1(target)), bce(target)"))
    reached: set[str] = set()
    stack = [loss.node for loss in program.losses]
    while stack:
        node_id = stack.pop()
        if node_id not in reached:
            reached.add(node_id)
            stack.extend(by_id[node_id].inputs)
    trained = {by_id[n].weights for n in reached if by_id[n].trainable}
    idle: dict[str, list[Node]] = {}
    for owner in program.weight_owners:
        if owner.trainable and owner.weights not in trained:
            statement = owner.scope[0] if owner.scope else None
            idle.setdefault(statement.name if statement else owner.id, []).append(owner)
    for statement, owners in idle.items():
        count = sum(owner.params for owner in owners)
        scope = owners[0].scope[0] if owners[0].scope else None
        warnings.append(Warning_(
            message=f"`{statement}` feeds no loss: its {count:,} parameters count as trainable, but no loss trains them",
            span=scope.span if scope else owners[0].span,
            hint=f"give `{statement}` a loss in the loss section, or remove it"))
    return program.model_copy(update={"warnings": [*program.warnings, *warnings]}) if warnings else program
