"""A drawing of a Program, independent of any output format.

`build_drawing(program, fold=False)` turns the graph IR into boxes, arrows and
frames; `to_dot` and `to_mermaid` only write a `Drawing` in their syntax.

What the drawing shows:

- one box per node, labelled with the statement name when the node ends a
  statement, the op with its key options (`conv2d(32, k=3)`) and the output
  shape; inputs at the top, a loss box per loss at the bottom, attached to the
  node it trains (kind `head`);
- a shared instance drawn ONCE, inside a cluster labelled
  `extract (shared, 2 uses)`: every later use maps onto the same boxes, and the
  arrows into and out of the cluster carry the name of the use (`a`, `b`), so
  each use visibly points at the one set of weights;
- block calls as light clusters named after the block; a `repeat N` as one
  cluster per repetition (`repeat 3/10`), or with `fold=True` as ONE box
  `repeat ×N` listing the body's ops;
- residual connections as dashed `skip` edges into the closing `add`;
- a legend: the data set, the optimizer and its options, batch, epochs,
  trials, seed, initialisation and the number of trainable parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from minispec.ir.model import Node, Program, Scope
from minispec.ir.ops import OPS
from minispec.render.labels import (
    Frame,
    InstanceUse,
    data_text,
    decision_text,
    encoding_text,
    instance_uses,
    loss_text,
    number,
    op_text,
    shape_text,
    train_text,
)

NodeKind = Literal["input", "layer", "shared", "head", "loss", "folded"]
EdgeStyle = Literal["normal", "skip", "loss"]
ClusterKind = Literal["shared", "block", "repeat"]

# The most body lines a folded repeat lists before it writes "…".
FOLD_LINES = 14


@dataclass
class DrawNode:
    """A box. `name` is the statement (or input) it ends, shown in bold; `lines`
    are centred (op, then shape); `body` lists a folded repeat's ops, drawn left
    aligned between the first line and the others. `members` are the IR nodes it
    stands for (several for a shared layer or a folded repeat)."""

    id: str
    lines: list[str]
    kind: NodeKind
    name: str | None = None
    cluster: str | None = None
    body: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


@dataclass
class DrawEdge:
    """An arrow. `label` names the use of a shared instance it belongs to."""

    source: str
    target: str
    style: EdgeStyle = "normal"
    label: str = ""


@dataclass
class Cluster:
    """A frame around boxes: a shared instance, a block call, a repetition."""

    id: str
    label: str
    kind: ClusterKind
    parent: str | None = None


@dataclass
class Drawing:
    title: str
    nodes: list[DrawNode]
    edges: list[DrawEdge]
    clusters: list[Cluster]
    legend: list[str]

    def node(self, node_id: str) -> DrawNode:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def children(self, cluster: str | None) -> tuple[list[Cluster], list[DrawNode]]:
        """The clusters and boxes directly inside `cluster` (None: the top level)."""
        return ([c for c in self.clusters if c.parent == cluster], [n for n in self.nodes if n.cluster == cluster])


_CLUSTER_KINDS = ("instance", "block", "repeat")


def build_drawing(program: Program, fold: bool = False) -> Drawing:
    """The drawing of a program; `fold=True` draws each outermost `repeat` as one box."""
    uses = instance_uses(program)
    by_id = {node.id: node for node in program.nodes}

    # 1. Shared instances: every use after the first maps onto the first use's nodes.
    drawn_as: dict[str, str] = {}
    first_use: dict[str, InstanceUse] = {}
    for use in sorted(uses.values(), key=lambda u: len(u.frame)):
        canonical = first_use.setdefault(use.instance, use)
        if use is canonical or len(use.nodes) != len(canonical.nodes):
            continue
        for node_id, target in zip(use.nodes, canonical.nodes):
            if node_id != target:
                drawn_as.setdefault(node_id, target)

    def drawn(node_id: str) -> str:
        while node_id in drawn_as:
            node_id = drawn_as[node_id]
        return node_id

    # 2. Folded repeats: every node of an outermost repeat maps onto one box.
    folds: dict[Frame, list[Node]] = {}
    if fold:
        for node in program.nodes:
            if drawn(node.id) != node.id:
                continue
            for depth, scope in enumerate(node.scope):
                if scope.kind == "repeat":
                    key = (*node.scope[:depth], scope.model_copy(update={"index": 0}))
                    folds.setdefault(key, []).append(node)
                    break
    # Ids of boxes that are no IR node hold a colon, which no IR id can.
    fold_of: dict[str, str] = {}
    fold_keys: dict[str, Frame] = {}
    for index, (key, members) in enumerate(folds.items()):
        fold_keys[f"repeat:{index}"] = key
        for node in members:
            fold_of[node.id] = f"repeat:{index}"

    def final(node_id: str) -> str:
        target = drawn(node_id)
        return fold_of.get(target, target)

    # 3. Clusters: instances, block calls and repetitions that hold a drawn box.
    cluster_ids: dict[Frame, str] = {}
    clusters: list[Cluster] = []

    def cluster_of(scope: list[Scope] | tuple[Scope, ...]) -> str | None:
        parent = None
        for depth, level in enumerate(scope):
            if level.kind not in _CLUSTER_KINDS:
                continue
            frame = tuple(scope[: depth + 1])
            if frame not in cluster_ids:
                cluster_ids[frame] = f"cluster_{len(clusters)}"
                clusters.append(Cluster(cluster_ids[frame], _cluster_label(frame, uses), _cluster_kind(level), parent))
            parent = cluster_ids[frame]
        return parent

    # 4. Boxes.
    heads = {final(node_id) for node_id in program.outputs}
    names: dict[str, list[str]] = {}
    for name, node_id in program.names.items():
        names.setdefault(final(node_id), []).append(name)
    nodes: list[DrawNode] = []
    placed: dict[str, DrawNode] = {}
    for node in program.nodes:
        target = final(node.id)
        if target in placed:
            placed[target].members.append(node.id)
            continue
        if target in fold_keys:
            key = fold_keys[target]
            box = _fold_box(target, key, folds[key], names.get(target), cluster_of(key[:-1]))
        else:
            box = _box(node, names.get(target), cluster_of(node.scope), target in heads)
        box.members.append(node.id)
        placed[target] = box
        nodes.append(box)
    _merge_shapes(nodes, by_id)

    # 5. Arrows. Parallel arrows of several uses (concat(a, b) of one shared
    # output) become one arrow labelled with every use: `a, b`.
    arrows: dict[tuple[str, str, EdgeStyle], list[str]] = {}
    for node in program.nodes:
        for position, source in enumerate(node.inputs):
            tail, head = final(source), final(node.id)
            if tail == head:
                continue
            skip = node.attrs.get("residual") and position == 1
            folded = tail in fold_keys or head in fold_keys
            style: EdgeStyle = "skip" if skip and not folded else "normal"
            labels = arrows.setdefault((tail, head, style), [])
            label = _use_label(by_id[source], node, uses)
            if label and label not in labels:
                labels.append(label)
    edges = [DrawEdge(tail, head, style, ", ".join(labels)) for (tail, head, style), labels in arrows.items()]

    # 6. Losses, at the bottom, one per loss.
    for index, loss in enumerate(program.losses):
        loss_id = f"loss:{index}"
        nodes.append(DrawNode(loss_id, [loss_text(loss), f"{encoding_text(loss)} · {decision_text(loss)}"], "loss"))
        use = _innermost_use(by_id[loss.node], uses)
        edges.append(DrawEdge(final(loss.node), loss_id, "loss", use[-1].label if use else ""))

    return Drawing(program.name, nodes, edges, clusters, legend(program))


def legend(program: Program) -> list[str]:
    """The experiment around the graph, in three short lines."""
    title = f"{program.name}" + (" (convolutionized)" if program.convolutionized else "")
    return [
        f"{title} · data {data_text(program)}",
        train_text(program),
        f"{number(program.total_params)} trainable parameters",
    ]


def _cluster_kind(scope: Scope) -> ClusterKind:
    return {"instance": "shared", "block": "block", "repeat": "repeat"}[scope.kind]  # type: ignore[return-value]


def _cluster_label(frame: Frame, uses: dict[Frame, InstanceUse]) -> str:
    scope = frame[-1]
    if scope.kind == "instance":
        use = uses[frame]
        return f"{scope.name} (shared, {use.count} use{'s' * (use.count != 1)})"
    if scope.kind == "repeat":
        return f"repeat {scope.index + 1}/{scope.count}"
    return scope.name


def _innermost_use(node: Node, uses: dict[Frame, InstanceUse]) -> list[InstanceUse]:
    return [uses[tuple(node.scope[: d + 1])] for d, s in enumerate(node.scope) if s.kind == "instance"]


def _use_label(source: Node, target: Node, uses: dict[Frame, InstanceUse]) -> str:
    """The use an arrow enters or leaves, if it crosses the frame of a shared instance."""
    inner = _innermost_use(target, uses)
    outer = _innermost_use(source, uses)
    entering = [u for u in inner if u not in outer]
    if entering:
        return entering[0].label
    leaving = [u for u in outer if u not in inner]
    if leaving:
        return leaving[0].label
    return ""


def _box(node: Node, names: list[str] | None, cluster: str | None, head: bool) -> DrawNode:
    in_instance = any(s.kind == "instance" for s in node.scope)
    if OPS[node.op].has("data"):
        return DrawNode(node.id, [shape_text(node.shape)], "input", name=node.attrs.get("name", node.id), cluster=cluster)
    if OPS[node.op].has("view") or OPS[node.op].has("constant"):
        name = " / ".join(names) if names and OPS[node.op].has("constant") else None
        return DrawNode(node.id, [op_text(node), shape_text(node.shape)], "input", name=name, cluster=cluster)
    kind: NodeKind = "head" if head else "shared" if in_instance else "layer"
    name = " / ".join(names) if names else None
    return DrawNode(node.id, [op_text(node), shape_text(node.shape)], kind, name=name, cluster=cluster)


def _merge_shapes(nodes: list[DrawNode], by_id: dict[str, Node]) -> None:
    """A shared layer applied to inputs of different sizes lists each output shape."""
    for box in nodes:
        if box.kind == "folded" or len(box.members) < 2 or box.kind == "input":
            continue
        shapes = list(dict.fromkeys(shape_text(by_id[m].shape) for m in box.members))
        if len(shapes) > 1:
            box.lines[-1] = " or ".join(shapes)


def _fold_box(box_id: str, key: Frame, members: list[Node], names: list[str] | None,
              cluster: str | None) -> DrawNode:
    depth = len(key) - 1
    count = key[-1].count
    first = [n for n in members if n.scope[depth].index == 0]
    body = _describe(first, depth + 1)
    if len(body) > FOLD_LINES:
        body = body[: FOLD_LINES - 1] + ["…"]
    params = sum(n.params for n in members)
    lines = [f"repeat ×{count}", shape_text(members[-1].shape)]
    if params:
        lines.append(f"{number(params)} params")
    return DrawNode(box_id, lines, "folded", name=" / ".join(names) if names else None, cluster=cluster, body=body)


def _describe(nodes: list[Node], depth: int) -> list[str]:
    """The ops of one repetition, nested frames written as `name {` ... `}`."""
    lines: list[str] = []
    open_frames: list[Frame] = []
    for node in nodes:
        relative = node.scope[depth:]
        if any(s.kind == "repeat" and s.index != 0 for s in relative):
            continue
        frames = [tuple(node.scope[: depth + i + 1]) for i, s in enumerate(relative) if s.kind != "statement"]
        while open_frames and open_frames[-1] not in frames:
            open_frames.pop()
            lines.append("  " * len(open_frames) + "}")
        for frame in frames:
            if frame in open_frames:
                continue
            scope = frame[-1]
            head = {"repeat": f"repeat ×{scope.count}", "residual": "residual"}.get(scope.kind, scope.name)
            lines.append("  " * len(open_frames) + head + " {")
            open_frames.append(frame)
        text = op_text(node)
        if node.attrs.get("residual") and lines and lines[-1].strip() == "}":
            lines[-1] += " + skip"
            continue
        lines.append("  " * len(open_frames) + text)
    while open_frames:
        open_frames.pop()
        lines.append("  " * len(open_frames) + "}")
    return lines
