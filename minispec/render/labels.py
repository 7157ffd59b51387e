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
from minispec.ir.ops import shape_text

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


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _pair(value: object) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def _size(value: object) -> str:
    h, w = _pair(value)
    return str(h) if h == w else f"{h}x{w}"


def op_text(node: Node) -> str:
    """The op of a node with its key attributes, as it would be written in a spec."""
    op, attrs = node.op, node.attrs
    if op == "input":
        return "input"
    if op == "select":
        source = node.inputs[0] if node.inputs else "?"
        return f"{source}[{attrs.get('index', '?')}]"
    if op == "linear":
        extra = "" if attrs.get("bias", True) else ", bias=false"
        return f"linear({attrs.get('out', '?')}{extra})"
    if op == "conv2d":
        parts = [str(attrs.get("out", "?")), f"k={_size(attrs.get('kernel', '?'))}"]
        if _pair(attrs.get("stride", 1)) != (1, 1):
            parts.append(f"stride={_size(attrs['stride'])}")
        if _pair(attrs.get("padding", 0)) != (0, 0):
            parts.append(f"pad={_size(attrs['padding'])}")
        if not attrs.get("bias", True):
            parts.append("bias=false")
        return f"conv2d({', '.join(parts)})"
    if op in ("maxpool2d", "avgpool2d"):
        kernel = attrs.get("kernel", "?")
        stride = attrs.get("stride", kernel)
        extra = "" if stride in (kernel, 0) or _pair(stride) == _pair(kernel) else f", stride={_size(stride)}"
        return f"{op}({_size(kernel)}{extra})"
    if op in ("batchnorm1d", "batchnorm2d"):
        parts = []
        if not math.isclose(float(attrs.get("eps", 1e-5)), 1e-5):
            parts.append(f"eps={_value(attrs['eps'])}")
        if not math.isclose(float(attrs.get("momentum", 0.1)), 0.1):
            parts.append(f"momentum={_value(attrs['momentum'])}")
        return f"{op}({', '.join(parts)})" if parts else op
    if op == "dropout":
        return f"dropout({_value(attrs.get('p', 0.5))})"
    if op == "leaky_relu":
        return f"leaky_relu({_value(attrs.get('slope', 0.01))})"
    if op == "add" and attrs.get("residual"):
        return "add (residual)"
    shown = {k: v for k, v in attrs.items() if k not in ("residual", "expect")}
    if not shown:
        return op
    return f"{op}({', '.join(f'{k}={_value(v)}' for k, v in shown.items())})"


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
