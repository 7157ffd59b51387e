"""The graph IR: plain, frozen, serialisable data describing a whole spec.

A `Program` is what every backend, renderer and experiment reads. It is built by
`minispec.lang.resolve` and completed by the passes in `minispec.ir.passes`
(shape inference, parameter counting, convolutionize). Backends only lower a
Program that is already valid: they never re-check what is guaranteed here.

Shapes are per sample: the batch axis (and the trials axis of vectorized runs)
is never written. A node's `weights` names the parameter set it uses: nodes that
apply one shared instance carry the same `weights` key, so backends create one
parameter set per key, and the key is also the prefix of the parameter names in
saved state (`<weights>.weight`, `<weights>.bias`, `<weights>.running_mean`...).
"""

from __future__ import annotations

import math
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from minispec.errors import Span

Scalar = Union[bool, int, float, str]
# Ids the compiler makes contain this character, which the grammar forbids in a
# name: `a:1:conv2d`, `x:0` (a slice), `out:map`. A user's name can never be one.
GENERATED = ":"
AttrValue = Union[bool, int, float, str, list[int]]

class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scope(Frozen):
    """One level of where a node came from, outermost first in `Node.scope`.

    kind: `statement` (a `name = ...` line of the net), `instance` (a shared
    instance, `name` is the instance), `block` (a call of a block, `index`
    numbers calls), `repeat` (`index` is the repetition, `count` the total),
    `residual` (the body of a residual connection).
    """

    kind: Literal["statement", "instance", "block", "repeat", "residual"]
    name: str
    index: int = 0
    count: int = 1
    span: Span | None = None


class Node(Frozen):
    """One operation of the graph.

    op: a name of the op table (`minispec.ir.ops.OPS`), which says what its
    attrs mean. `add` carries residual=True when it closes a residual body; then
    inputs[1] is the skip edge. param_shapes: the op's parameters (trained),
    buffer_shapes: its buffers (saved, never trained), both by name in state order.
    """

    id: str
    op: str
    attrs: dict[str, AttrValue] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list)
    shape: list[int] = Field(default_factory=list)
    weights: str | None = None
    shared: bool = False
    params: int = 0
    param_shapes: dict[str, list[int]] = Field(default_factory=dict)
    buffer_shapes: dict[str, list[int]] = Field(default_factory=dict)
    scope: list[Scope] = Field(default_factory=list)
    span: Span | None = None

    @property
    def trainable(self) -> bool:
        """Whether training changes this node's parameters (it has some, and no `trainable=false`)."""
        return bool(self.param_shapes) and self.attrs.get("trainable") is not False


class TargetRef(Frozen):
    """A target tensor of the data set, optionally one column of it (`classes[0]`)."""

    name: str
    index: int | None = None

    def __str__(self) -> str:
        return self.name if self.index is None else f"{self.name}[{self.index}]"


class Loss(Frozen):
    """A loss on one node (the main output or an auxiliary head).

    kind: cross_entropy (logits vs class index), nll (log-probabilities vs class
    index), mse, bce (probabilities vs 0/1).
    encoding: how the target is presented to the loss: `index` (class index),
    `onehot` (one-hot vector of `classes` entries), `pm1` (+1/-1), `scalar` (0/1).
    decision: how a prediction is read from the output: `argmax`,
    `threshold` (output > threshold means class 1), or `nearest` (a single
    output regressing a class index, `mse(scalar(t))` on k > 2 classes: the
    nearest class).
    """

    node: str
    kind: Literal["cross_entropy", "nll", "mse", "bce"]
    target: TargetRef
    encoding: Literal["index", "onehot", "pm1", "scalar"]
    classes: int
    weight: float = 1.0
    decision: Literal["argmax", "threshold", "nearest"]
    threshold: float = 0.5
    span: Span | None = None


class DataSpec(Frozen):
    """Which data set, its options, and the per-sample shapes it provides.

    inputs: name -> shape (e.g. x -> [2, 14, 14]); targets: name -> shape
    (`target` -> [], `classes` -> [2]); num_classes: name -> classes of that target.
    """

    name: Literal["mnist_pairs", "mnist", "disk"]
    options: dict[str, Scalar] = Field(default_factory=dict)
    inputs: dict[str, list[int]]
    targets: dict[str, list[int]]
    num_classes: dict[str, int]
    span: Span | None = None


class Optimizer(Frozen):
    """kind: sgd (lr, momentum, weight_decay), adam (lr, beta1, beta2, eps,
    weight_decay), adadelta (lr, rho, eps, weight_decay). `options` holds every
    option with its default filled in."""

    kind: Literal["sgd", "adam", "adadelta"]
    options: dict[str, float]


class Schedule(Frozen):
    """Learning-rate schedule per epoch: constant, step (every, gamma), cosine (min_lr)."""

    kind: Literal["constant", "step", "cosine"] = "constant"
    options: dict[str, float] = Field(default_factory=dict)


class Init(Frozen):
    """Initialisation scheme by name: torch (PyTorch's default), zero, normal
    (std), uniform (bound), glorot, kaiming. Non-torch schemes zero the biases."""

    scheme: Literal["torch", "zero", "normal", "uniform", "glorot", "kaiming"] = "torch"
    options: dict[str, float] = Field(default_factory=dict)


class Train(Frozen):
    """The training schedule and the experiment protocol. Evaluation points:
    `evaluate` per epoch, or one every `eval_every` epochs (and always after the
    last), so a run of 50,000 epochs keeps a curve of a readable size."""

    optimizer: Optimizer
    schedule: Schedule = Schedule()
    batch: int = 100
    epochs: int = 25
    trials: int = 10
    seed: int = 0
    evaluate: int = 1
    eval_every: int = 1
    init: Init = Init()
    report: str


class Warning_(Frozen):
    """Something a spec says that is valid but probably not meant (a double softmax, an
    ignored option, parameters that no loss trains); shown, never fatal."""

    message: str
    span: Span | None = None
    hint: str | None = None


class Program(Frozen):
    """A whole resolved spec: data, graph, losses, training."""

    name: str
    source: str
    params: dict[str, Scalar] = Field(default_factory=dict)
    data: DataSpec
    nodes: list[Node]
    names: dict[str, str] = Field(default_factory=dict)
    losses: list[Loss]
    train: Train
    convolutionized: bool = False
    warnings: list[Warning_] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_node_per_id(self) -> "Program":
        """Ids are unique and every input is an earlier node: a collision would
        silently wire one node in place of another."""
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                raise ValueError(f"duplicate node id {node.id!r}")
            missing = [i for i in node.inputs if i not in seen]
            if missing:
                raise ValueError(f"node {node.id!r} reads {missing[0]!r}, which is not an earlier node")
            seen.add(node.id)
        for name, node_id in self.names.items():
            if node_id not in seen:
                raise ValueError(f"name {name!r} stands for {node_id!r}, which is not a node")
        for loss in self.losses:
            if loss.node not in seen:
                raise ValueError(f"a loss reads {loss.node!r}, which is not a node")
        return self

    def replaced(self, **changes) -> "Program":
        """A copy with `changes`, validated again (model_copy would not check ids)."""
        return Program(**{**dict(self), **changes})

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def total_params(self) -> int:
        """Trainable parameters, each shared set counted once."""
        return sum(node.params for node in self.nodes)

    @property
    def fixed_values(self) -> int:
        """Values saved with the weights that training does not change: the parameters
        of frozen layers (`trainable=false`) and buffers (running statistics, constants)."""
        return sum(
            sum(math.prod(shape) for shape in owner.buffer_shapes.values())
            + (0 if owner.trainable else sum(math.prod(shape) for shape in owner.param_shapes.values()))
            for owner in self.weight_owners
        )

    @property
    def weight_owners(self) -> list[Node]:
        """The first node of every parameter set, in graph order (the draw order of initialisation)."""
        seen: set[str] = set()
        owners = []
        for node in self.nodes:
            if node.weights is not None and node.weights not in seen:
                seen.add(node.weights)
                owners.append(node)
        return owners

    @property
    def outputs(self) -> list[str]:
        """Nodes a model must return: the loss nodes, main output first, without repeats."""
        return list(dict.fromkeys(loss.node for loss in self.losses))


def without_spans(value):
    """Dumped IR data without its source positions: what two compilations of one
    spec from different files, or with other line breaks, have in common."""
    if isinstance(value, dict):
        return {k: without_spans(v) for k, v in value.items() if k != "span"}
    if isinstance(value, list):
        return [without_spans(v) for v in value]
    return value
