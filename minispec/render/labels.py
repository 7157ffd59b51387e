"""Text pieces shared by the summary table and the diagrams.

`op_text` writes a node the way a spec would (`conv2d(32, k=3)`, `linear(10)`,
`maxpool2d(2)`), showing only the options that differ from their defaults.
`instance_uses` numbers the applications of every shared instance and names
each one after the statement it belongs to (`a`, `b`), so the table and the
picture call a use by the same name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from minispec.ir.model import Loss, Node, Program, Scope, Train
from minispec.ir import ops
from minispec.ir.ops import shape_text
from minispec.ir.ops import value_text as _value

__all__ = [
    "InstanceUse",
    "data_text",
    "instance_uses",
    "layer_params",
    "loss_text",
    "number",
    "op_text",
    "shape_text",
    "train_text",
]

Frame = tuple[Scope, ...]


def number(value: int) -> str:
    """`63286` -> `63,286`."""
    return f"{value:,}"


def op_text(node: Node) -> str:
    """The op of a node with its key attributes, as it would be written in a spec (the op table's text)."""
    return ops.op_text(node.op, node.attrs, node.inputs)


def layer_params(node: Node) -> int:
    """Parameters of the layer a node applies, whether or not it owns them."""
    return sum(math.prod(shape) for shape in node.param_shapes.values())


def loss_text(loss: Loss) -> str:
    """`cross_entropy(classes[0]) ×0.5`."""
    text = f"{loss.kind}({loss.target})"
    if loss.weight != 1:
        text += f" ×{loss.weight:g}"
    return text


def decision_text(loss: Loss) -> str:
    if loss.decision == "nearest":
        return "nearest class"
    return "argmax" if loss.decision == "argmax" else f"threshold {loss.threshold:g}"


def encoding_text(loss: Loss) -> str:
    """How the target reaches the loss: `index of 10`, `onehot of 2`, `pm1`, `scalar`."""
    if loss.encoding in ("index", "onehot"):
        return f"{loss.encoding} of {loss.classes}"
    return loss.encoding


def _call(name: str, options: dict) -> str:
    return f"{name}({', '.join(f'{k}={_value(v)}' for k, v in options.items())})" if options else name


def data_text(program: Program) -> str:
    """`mnist_pairs(train=1000, test=1000)`."""
    return _call(program.data.name, program.data.options)


def optimizer_text(train: Train) -> str:
    """`sgd(lr=0.01, momentum=0.9)`: options that are zero are left out (no momentum, no decay)."""
    options = {k: v for k, v in train.optimizer.options.items() if v != 0}
    return _call(train.optimizer.kind, options)


def train_text(program: Program, separator: str = " · ") -> str:
    """The training schedule on one line."""
    train = program.train
    parts = [optimizer_text(train)]
    if train.schedule.kind != "constant":
        parts.append(f"lr {_call(train.schedule.kind, train.schedule.options)}")
    parts += [
        f"batch {train.batch}",
        f"{train.epochs} epoch{'s' * (train.epochs != 1)}",
        f"{train.trials} trial{'s' * (train.trials != 1)}",
        f"seed {train.seed}",
        f"init {_call(train.init.scheme, train.init.options)}",
    ]
    return separator.join(parts)


@dataclass(frozen=True)
class InstanceUse:
    """One application of a shared instance: its frame (the scope prefix that
    holds its nodes), the nodes it made in graph order, its 1-based number among
    the instance's uses, and its label (the statement it belongs to)."""

    instance: str
    frame: Frame
    nodes: tuple[str, ...]
    index: int
    count: int
    label: str


def instance_uses(program: Program) -> dict[Frame, InstanceUse]:
    """Every application of every instance, keyed by its frame, in graph order."""
    members: dict[Frame, list[str]] = {}
    for node in program.nodes:
        for depth, scope in enumerate(node.scope):
            if scope.kind == "instance":
                members.setdefault(tuple(node.scope[: depth + 1]), []).append(node.id)
    by_name: dict[str, list[Frame]] = {}
    for frame in members:
        by_name.setdefault(frame[-1].name, []).append(frame)
    uses: dict[Frame, InstanceUse] = {}
    for name, frames in by_name.items():
        statements = [frame[0].name for frame in frames]
        seen: dict[str, int] = {}
        for index, frame in enumerate(frames, 1):
            statement = frame[0].name
            seen[statement] = seen.get(statement, 0) + 1
            label = statement if statements.count(statement) == 1 else f"{statement}#{seen[statement]}"
            uses[frame] = InstanceUse(name, frame, tuple(members[frame]), index, len(frames), label)
    return uses


def innermost_use(node: Node, uses: dict[Frame, InstanceUse]) -> InstanceUse | None:
    """The innermost instance application a node belongs to, if any."""
    for depth in range(len(node.scope) - 1, -1, -1):
        if node.scope[depth].kind == "instance":
            return uses.get(tuple(node.scope[: depth + 1]))
    return None
