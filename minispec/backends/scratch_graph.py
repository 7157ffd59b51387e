"""The hand-written backend: a whole Program lowered onto `minispec.scratch`, R replicas at once.

`ScratchModel` implements `minispec.backends.base.TrainableModel` with the
framework's leading replica axis: R = len(states) trials are one batched
computation, with no Python loop over replicas (dropout masks excepted: one
random stream per replica).

Lowering, one framework module per node:

    linear, conv2d, batchnorm1d/2d   the layer of the node's `weights` key; the first node
                                     of a key owns it, later nodes use `shared_copy()`, so
                                     the gradients of every use add up in one Parameter.grad
    relu, leaky_relu, tanh, sigmoid, softmax, log_softmax, maxpool2d, avgpool2d, flatten, dropout
                                     the framework's layers
    select, concat, add, identity    written here, forward and backward side by side

Backward runs over the graph in reverse topological order (the IR's node
order is topological). A node's gradient is the sum of what its consumers send
(fan-out: one feature map feeding two heads); the loss nodes start with
weight_i * dL_i/d output. Nodes whose value depends on no trained parameter (inputs, constants,
`x[0]`) are never back-propagated into.

Only tensor operations: nothing from torch's neural-network, automatic-
differentiation, func or optim packages (a test scans the imports). Every public method runs under `torch.no_grad()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from minispec import scratch
from minispec.backends.replicas import PerReplica, ReplicaHyper, collapse
from minispec.ir.model import Loss, Node, Program
from minispec.ir.ops import OPS, pair, state_names
from minispec.masks import seeded_generators
from minispec.scratch.module import Module


# -- graph ops: forward and backward side by side ---------------------------------


class Select(Module):
    """x[index] along the first sample axis, keeping the axis.

    Input: [R, B, C, ...]   Output: [R, B, 1, ...]

        forward:  y = x[:, :, i:i+1]
        backward: dL/dx = g scattered into zeros at channel i
    """

    _cache = ("_shape",)

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._shape = x.shape
        return x[:, :, self.index : self.index + 1]

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        gx = grad.new_zeros(self._shape)
        gx[:, :, self.index : self.index + 1] = grad
        return gx


class Concat:
    """Concatenation along the first sample axis (channels or features).

    Inputs: [R, B, C_i, ...]   Output: [R, B, sum C_i, ...]

        forward:  y = [x_1, ..., x_n]
        backward: dL/dx_i = the slice of g that x_i filled
    """

    def __init__(self) -> None:
        self._sizes: list[int] = []

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        self._sizes = [x.shape[2] for x in xs]
        return torch.cat(xs, dim=2)

    def backward(self, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(grad, self._sizes, dim=2)


class Add:
    """Element-wise sum (a residual connection).

        forward:  y = x_1 + ... + x_n
        backward: dL/dx_i = g
    """

    def __init__(self) -> None:
        self._count = 0

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        self._count = len(xs)
        return sum(xs[1:], xs[0])

    def backward(self, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (grad,) * self._count


class Sub:
    """Element-wise difference.

        forward:  y = a - b
        backward: dL/da = g,  dL/db = -g
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b

    def backward(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return grad, -grad


class Mul:
    """Element-wise product; a constant input ([R, 1, ...]) broadcasts over the batch.

        forward:  y = x_1 * ... * x_n
        backward: dL/dx_i = g * prod_{j != i} x_j
    """

    def __init__(self) -> None:
        self._xs: tuple[torch.Tensor, ...] = ()

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        self._xs = xs
        return _product(xs)

    def backward(self, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        xs = self._xs
        return tuple(grad * _product(xs[:i] + xs[i + 1:]) for i in range(len(xs)))


def _product(xs) -> torch.Tensor:
    y = xs[0]
    for x in xs[1:]:
        y = y * x
    return y


class Outer:
    """Outer product of two vectors.

    Inputs: [R, B, n], [R, B, m]   Output: [R, B, n, m]

        forward:  y_ij = a_i b_j
        backward: dL/da_i = sum_j g_ij b_j,  dL/db_j = sum_i g_ij a_i
    """

    def __init__(self) -> None:
        self._a = self._b = None

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self._a, self._b = a, b
        return a.unsqueeze(-1) * b.unsqueeze(-2)

    def backward(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (grad * self._b.unsqueeze(-2)).sum(-1), (grad * self._a.unsqueeze(-1)).sum(-2)


class MatMul:
    """Matrix product per sample; a vector is a one-row (first) or one-column (second) matrix.

    Inputs: [R, B, n] or [R, B, m, n], and [R, B, n, k] or [R, B, n]
    (a constant has a batch axis of 1 and broadcasts)   Output: [R, B, k], [R, B, m, k] or [R, B, m]

        forward:  Y = A B
        backward: dL/dA = G B^T,  dL/dB = A^T G
    """

    def __init__(self) -> None:
        self._a = self._b = None
        self._vectors = (False, False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self._vectors = (a.dim() == 3, b.dim() == 3)
        self._a = a.unsqueeze(-2) if self._vectors[0] else a
        self._b = b.unsqueeze(-1) if self._vectors[1] else b
        return self._squeeze(self._a @ self._b)

    def _squeeze(self, y: torch.Tensor) -> torch.Tensor:
        if self._vectors[1]:
            y = y.squeeze(-1)
        return y.squeeze(-2) if self._vectors[0] else y

    def backward(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = grad.unsqueeze(-1) if self._vectors[1] else grad
        g = g.unsqueeze(-2) if self._vectors[0] else g
        ga = g @ self._b.transpose(-1, -2)
        gb = self._a.transpose(-1, -2) @ g
        return (ga.squeeze(-2) if self._vectors[0] else ga), (gb.squeeze(-1) if self._vectors[1] else gb)


class Sum(Module):
    """Sum over one sample axis, or over all of them (then [R, B, 1]).

        forward:  y = sum_axis x
        backward: dL/dx = g, repeated along the summed axis
    """

    _cache = ("_shape",)

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._shape = x.shape
        if self.axis == -1:
            return x.flatten(2).sum(-1, keepdim=True)
        y = x.sum(self.axis + 2)
        return y.unsqueeze(-1) if y.dim() == 2 else y

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        if self.axis == -1 or len(self._shape) == 3:
            return grad.reshape(*grad.shape[:2], *[1] * (len(self._shape) - 2)).expand(self._shape)
        return grad.unsqueeze(self.axis + 2).expand(self._shape)


class Constant(Module):
    """Fixed values (a buffer, never trained), the same for every sample.

    Output: [R, 1, *shape], which broadcasts over the batch. No input, no backward.
    """

    def __init__(self, shape: list[int], replicas: int, device, dtype) -> None:
        super().__init__()
        self._buffer("value", torch.zeros(replicas, *shape, device=device, dtype=dtype))

    def forward(self) -> torch.Tensor:
        return self._buffers["value"].value.unsqueeze(1)


class Identity(Module):
    """forward: y = x    backward: dL/dx = g"""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return grad


# -- lowering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """What a lowering table entry may need: R, where the tensors live, dropout's
    generators, and the dropout probabilities that differ between replicas."""

    replicas: int
    device: torch.device
    dtype: torch.dtype
    generators: list[torch.Generator]
    dropout: dict[str, PerReplica] = field(default_factory=dict)

    @property
    def common(self) -> dict:
        return dict(replicas=self.replicas, scheme="zero", device=self.device, dtype=self.dtype)


def _conv2d(node: Node, layout: Layout) -> scratch.Conv2d:
    out_channels, in_channels, kh, kw = node.param_shapes["weight"]
    return scratch.Conv2d(in_channels, out_channels, (kh, kw), stride=pair(node.attrs["stride"]),
                          padding=pair(node.attrs["padding"]), bias="bias" in node.param_shapes, **layout.common)


def _batchnorm(node: Node, layout: Layout) -> Module:
    layer = scratch.BatchNorm1d if len(node.shape) == 1 else scratch.BatchNorm2d
    (channels,) = node.param_shapes["weight"]
    return layer(channels, layout.replicas, eps=node.attrs["eps"], momentum=node.attrs["momentum"],
                 device=layout.device, dtype=layout.dtype)


# op -> (node, layout) -> the framework module computing the node (parameters
# zero: the caller loads the state).
LOWERING: dict[str, Callable[[Node, Layout], object]] = {
    "linear": lambda node, layout: scratch.Linear(node.param_shapes["weight"][1], node.param_shapes["weight"][0],
                                                  bias="bias" in node.param_shapes, **layout.common),
    "conv2d": _conv2d,
    "batchnorm1d": _batchnorm,
    "batchnorm2d": _batchnorm,
    "select": lambda node, layout: Select(int(node.attrs["index"])),
    "concat": lambda node, layout: Concat(),
    "add": lambda node, layout: Add(),
    "sub": lambda node, layout: Sub(),
    "mul": lambda node, layout: Mul(),
    "outer": lambda node, layout: Outer(),
    "matmul": lambda node, layout: MatMul(),
    "sum": lambda node, layout: Sum(node.attrs["axis"]),
    "global_avgpool": lambda node, layout: scratch.GlobalAvgPool2d(),
    "triu": lambda node, layout: Constant(node.shape, layout.replicas, layout.device, layout.dtype),
    "identity": lambda node, layout: Identity(),
    "flatten": lambda node, layout: scratch.Flatten(),
    "relu": lambda node, layout: scratch.ReLU(),
    "leaky_relu": lambda node, layout: scratch.LeakyReLU(node.attrs["slope"]),
    "tanh": lambda node, layout: scratch.Tanh(),
    "sigmoid": lambda node, layout: scratch.Sigmoid(),
    "log_softmax": lambda node, layout: scratch.LogSoftmax(),
    "softmax": lambda node, layout: scratch.Softmax(),  # the IR allows softmax on flat samples only: the last axis
    "maxpool2d": lambda node, layout: scratch.MaxPool2d(pair(node.attrs["kernel"]), pair(node.attrs["stride"])),
    "avgpool2d": lambda node, layout: scratch.AvgPool2d(pair(node.attrs["kernel"]), pair(node.attrs["stride"])),
    "dropout": lambda node, layout: scratch.Dropout(layout.dropout.get(node.id, float(node.attrs["p"])),
                                                    layout.replicas, layout.generators),
}


def make_loss(loss: Loss) -> scratch.Loss:
    return {
        "cross_entropy": scratch.CrossEntropyLoss,
        "nll": scratch.NLLLoss,
        "mse": scratch.MSELoss,
        "bce": scratch.BCELoss,
    }[loss.kind]()


def make_optimizer(program: Program, params: list[scratch.Parameter]) -> scratch.Optimizer:
    """The framework optimizer of `program.train.optimizer`; option names are the IR's."""
    spec = program.train.optimizer
    kinds = {"sgd": scratch.SGD, "adam": scratch.Adam, "adadelta": scratch.Adadelta}
    return kinds[spec.kind](params, **spec.options)


class ScratchModel:
    """`TrainableModel` of the hand-written backend, R = len(states) replicas at once.

    states[k]: replica k's initial canonical state (`initial_state(program, gen_k)`).
    dropout_generators[k]: the random stream of replica k's dropout masks (one
    per trial, CPU generators; shared by every dropout node of the graph, drawn
    in node order). Default: R generators seeded from torch's global generator.
    hyper: per-replica optimizer options, loss weights and dropout
    probabilities (`minispec.backends.replicas`), for a sweep's points
    trained as one model; default: every replica as `program` says.

    Inputs [R, B, *shape] (converted to `dtype` and `device`); targets as
    `minispec.backends.targets.encode` makes them, with the replica axis: class
    indices [R, B] long, mse / bce targets [R, B, k]. Losses [R, L].

    Besides the runner's interface, the pieces of a step are public, for
    `minispec verify`: `zero_grad()`, `forward(inputs, training)`,
    `backward(targets)`, `gradients(replica)`, `step()`.
    """

    backend = "scratch"

    def __init__(
        self,
        program: Program,
        states: list[dict[str, torch.Tensor]],
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        dropout_generators: list[torch.Generator] | None = None,
        hyper: ReplicaHyper | None = None,
    ) -> None:
        if not states:
            raise ValueError("ScratchModel needs at least one replica state")
        if hyper is not None and hyper.replicas != len(states):
            raise ValueError(f"hyperparameters for {hyper.replicas} replicas, but {len(states)} states")
        self.program = program
        self.replicas = R = len(states)
        self.device = torch.device(device)
        self.dtype = dtype
        if dropout_generators is None:
            has_dropout = any(OPS[n.op].has("random") for n in program.nodes)
            dropout_generators = seeded_generators(R) if has_dropout else [torch.Generator()] * R
        if len(dropout_generators) != R:
            raise ValueError(f"expected {R} dropout generators (one per replica), got {len(dropout_generators)}")
        self.dropout_generators = list(dropout_generators)

        with torch.no_grad():
            self.owners: dict[str, Module] = {}  # weights key -> the module holding its Parameters
            self.layers: dict[str, object] = {}  # node id -> module (inputs excepted)
            dropout = {} if hyper is None else {node: hyper.dropout_p(node) for node in hyper.dropout}
            layout = Layout(R, self.device, dtype, self.dropout_generators, dropout)
            for node in program.nodes:
                if OPS[node.op].has("data"):
                    continue
                if node.weights is None:
                    self.layers[node.id] = LOWERING[node.op](node, layout)
                elif node.weights in self.owners:
                    self.layers[node.id] = self.owners[node.weights].shared_copy()
                else:
                    layer = LOWERING[node.op](node, layout)
                    self.owners[node.weights] = self.layers[node.id] = layer
            self._owner_nodes = {owner.weights: owner for owner in program.weight_owners}
            for k, state in enumerate(states):
                self.load_state(k, state)

        self.inputs = {node.id: node.attrs["name"] for node in program.nodes if OPS[node.op].has("data")}
        # A node needs a gradient when its value depends on some parameter.
        self._needs_grad: dict[str, bool] = {}
        for node in program.nodes:
            self._needs_grad[node.id] = node.trainable or any(self._needs_grad[i] for i in node.inputs)
            if isinstance(self.layers.get(node.id), Module):  # a first layer may skip dL/dx
                self.layers[node.id].input_grad = any(self._needs_grad[i] for i in node.inputs)
        self.loss_fns = [make_loss(loss) for loss in program.losses]
        self._frozen = {owner.weights for owner in program.weight_owners if not owner.trainable}
        params = [p for key, layer in self.owners.items() if key not in self._frozen for p in layer.params()]
        self.optimizer = make_optimizer(program, params)
        # the weight of each loss: one float, or [R] when the replicas' weights differ
        self._loss_weights: list[float | torch.Tensor] = [loss.weight for loss in program.losses]
        if hyper is not None:
            for name in hyper.optimizer:
                setattr(self.optimizer, name, hyper.option(name))
            if not hyper.uniform_loss_weights:
                self._loss_weights = [torch.tensor([w[i] for w in hyper.loss_weights], dtype=dtype, device=self.device)
                                      for i in range(len(program.losses))]
            else:
                self._loss_weights = list(hyper.loss_weights[0])
        self._outputs: dict[str, torch.Tensor] | None = None

    # -- pieces of a step ------------------------------------------------------------

    def _modules(self):
        return [m for m in self.layers.values() if isinstance(m, Module)]

    def _set_training(self, mode: bool) -> None:
        for m in self._modules():
            m.training = mode

    def _batch(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {}
        for name in self.inputs.values():
            if name not in inputs:
                raise ValueError(f"missing input {name!r}; this model takes {sorted(set(self.inputs.values()))}")
            tensor = inputs[name]
            if tensor.shape[0] != self.replicas:
                raise ValueError(f"input {name!r}: expected a leading replica axis of {self.replicas}, got {list(tensor.shape)}")
            dtype = self.dtype if tensor.is_floating_point() else tensor.dtype
            batch[name] = tensor.to(device=self.device, dtype=dtype)
        return batch

    def _targets(self, targets: list[torch.Tensor]) -> list[torch.Tensor]:
        if len(targets) != len(self.program.losses):
            raise ValueError(f"expected {len(self.program.losses)} targets (one per loss), got {len(targets)}")
        out = []
        for loss, t in zip(self.program.losses, targets):
            if loss.kind in ("cross_entropy", "nll"):
                out.append(t.to(device=self.device, dtype=torch.long))
            else:
                out.append(t.to(device=self.device, dtype=self.dtype))
        return out

    @torch.no_grad()
    def forward(self, inputs: dict[str, torch.Tensor], training: bool = True) -> dict[str, torch.Tensor]:
        """Outputs of every loss node, [R, B, ...]; in training mode, caches what `backward` needs."""
        self._set_training(training)
        batch = self._batch(inputs)
        values = {node_id: batch[name] for node_id, name in self.inputs.items()}
        for node in self.program.nodes:
            if node.id not in values:
                values[node.id] = self.layers[node.id].forward(*(values[i] for i in node.inputs))
        self._outputs = {name: values[name] for name in self.program.outputs}
        return dict(self._outputs)

    @torch.no_grad()
    def backward(self, targets: list[torch.Tensor]) -> torch.Tensor:
        """Losses of the last forward, [R, L], and their gradients accumulated (+=) into
        Parameter.grad: the backward of sum_i weight_i * loss_i of every replica."""
        if self._outputs is None:
            raise RuntimeError("backward() before forward()")
        targets = self._targets(targets)
        grads: dict[str, torch.Tensor] = {}

        def send(node_id: str, g: torch.Tensor) -> None:
            if self._needs_grad[node_id]:
                grads[node_id] = grads[node_id] + g if node_id in grads else g

        values = []
        for loss, fn, t, weight in zip(self.program.losses, self.loss_fns, targets, self._loss_weights):
            values.append(fn.forward(self._outputs[loss.node], t))
            g = fn.backward()
            if isinstance(weight, torch.Tensor):
                g = g * weight.view(-1, *([1] * (g.dim() - 1)))
            elif weight != 1.0:
                g = g * weight
            send(loss.node, g)
        for node in reversed(self.program.nodes):
            g = grads.pop(node.id, None)
            if g is None or node.id in self.inputs:
                continue
            gx = self.layers[node.id].backward(g)
            if gx is None:  # a layer whose input needs no gradient
                continue
            if len(node.inputs) == 1:
                gx = (gx,)
            for input_id, gi in zip(node.inputs, gx):
                send(input_id, gi)
        return torch.stack(values, dim=1)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    @torch.no_grad()
    def step(self) -> None:
        self.optimizer.step()

    def gradients(self, replica: int) -> dict[str, torch.Tensor]:
        """One replica's parameter gradients under canonical names, CPU copies."""
        self._check_replica(replica)
        return {
            f"{key}.{name}": (torch.zeros_like if key in self._frozen else torch.clone)(p.grad[replica]).to("cpu")
            for key, layer in self.owners.items()
            for name, p in layer._params.items()
        }

    # -- TrainableModel --------------------------------------------------------------

    @torch.no_grad()
    def train_step(self, inputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        self.zero_grad()
        self.forward(inputs, training=True)
        values = self.backward(targets)
        self.step()
        self._outputs = None  # drop the activations
        return values

    @torch.no_grad()
    def predict(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        outputs = self.forward(inputs, training=False)
        self._outputs = None
        return outputs

    @torch.no_grad()
    def losses(self, outputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        targets = self._targets(targets)
        values = [
            make_loss(loss).forward(outputs[loss.node].to(device=self.device, dtype=self.dtype), t)
            for loss, t in zip(self.program.losses, targets)
        ]
        return torch.stack(values, dim=1)

    def set_learning_rate(self, lr: float | list[float]) -> None:
        self.optimizer.lr = lr if isinstance(lr, (int, float)) else collapse(lr)

    def _check_replica(self, replica: int) -> None:
        if not 0 <= replica < self.replicas:
            raise IndexError(f"replica {replica} out of range: this model holds {self.replicas}")

    def _tensors(self) -> dict[str, torch.Tensor]:
        """Canonical name -> [R, ...] tensor, in `initial_state` order."""
        out = {}
        for key, owner in self._owner_nodes.items():
            layer = self.owners[key]
            objects = layer._params | layer._buffers
            for name in state_names(owner):
                out[f"{key}.{name}"] = objects[name].value
        return out

    def state(self, replica: int) -> dict[str, torch.Tensor]:
        self._check_replica(replica)
        return {name: value[replica].to("cpu", copy=True) for name, value in self._tensors().items()}

    @torch.no_grad()
    def load_state(self, replica: int, state: dict[str, torch.Tensor]) -> None:
        self._check_replica(replica)
        targets = self._tensors()
        missing, unexpected = targets.keys() - state.keys(), state.keys() - targets.keys()
        if missing or unexpected:
            raise ValueError(f"load_state: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
        for name, value in targets.items():
            src = state[name]
            if tuple(src.shape) != tuple(value.shape[1:]):
                raise ValueError(f"load_state: {name} has shape {list(src.shape)}, expected {list(value.shape[1:])}")
            value[replica].copy_(src)
