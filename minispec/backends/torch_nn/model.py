"""The torch.nn backend's trainable model: one replica, trained with torch.optim.

`TorchModel` implements `minispec.backends.base.TrainableModel` for R = 1: the
leading replica axis of every tensor that crosses the interface has size 1 and
is dropped before the GraphModule sees the batch. Several replicas in one
model are `minispec.backends.torch_nn.vectorized.VectorizedTorchModel`, which
shares the loss and optimizer helpers below.

Randomness: the initial weights are the given states (see
`minispec.backends.weights.initial_state`); dropout masks come from the
trial's own generator when one is given (the runner gives one, seeded
`torch_seed(seed, trial)`), drawn as `minispec.masks` says, so a trial
draws the same masks alone as beside others in a vectorized chunk; without
one, from torch's global RNG.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from minispec.backends.replicas import collapse
from minispec.backends.torch_nn.module import GraphModule, build_module
from minispec.ir.model import Loss, Optimizer, Program


def make_optimizer(spec: Optimizer, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The torch optimizer of an IR optimizer (every option present, defaults filled in).

    sgd(lr, momentum, weight_decay)          -> SGD(lr, momentum, weight_decay)
    adam(lr, beta1, beta2, eps, weight_decay) -> Adam(lr, betas=(beta1, beta2), eps, weight_decay)
    adadelta(lr, rho, eps, weight_decay)     -> Adadelta(lr, rho, eps, weight_decay)

    SGD and Adam use torch's fused kernels (one kernel for every parameter, the
    same update rule): on small specs the optimizer's per-parameter kernels
    are a good part of a step (docs/performance.md). Adadelta has none.
    """
    o = spec.options
    if spec.kind == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"],
                               fused=True)
    if spec.kind == "adam":
        return torch.optim.Adam(
            params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"],
            fused=True,
        )
    if spec.kind == "adadelta":
        return torch.optim.Adadelta(params, lr=o["lr"], rho=o["rho"], eps=o["eps"], weight_decay=o["weight_decay"])
    raise ValueError(f"unknown optimizer {spec.kind!r}")


def _target(loss: Loss, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """An encoded target on the output's device, checked against the output's shape."""
    if loss.kind in ("cross_entropy", "nll"):
        return target.to(output.device).long()
    target = target.to(device=output.device, dtype=output.dtype)
    if target.shape != output.shape:
        raise ValueError(
            f"{loss.kind} on `{loss.node}`: output {list(output.shape)} but target {list(target.shape)} "
            f"(encoding {loss.encoding})"
        )
    return target


LOSS_FUNCTIONS = {"cross_entropy": F.cross_entropy, "nll": F.nll_loss, "mse": F.mse_loss,
                  "bce": F.binary_cross_entropy}


def loss_value(loss: Loss, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean loss of one replica's batch: output [B, k], target encoded by
    `minispec.backends.targets.encode` ([B] long for index, [B, k] float otherwise)."""
    return LOSS_FUNCTIONS[loss.kind](output, _target(loss, output, target))


def replica_loss_value(loss: Loss, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`loss_value` of every replica at once: output [R, B, k], target [R, B, ...] -> [R]."""
    target = _target(loss, output, target)
    r = output.shape[0]
    each = LOSS_FUNCTIONS[loss.kind](output.flatten(0, 1), target.flatten(0, 1), reduction="none")
    return each.reshape(r, -1).mean(1)


def loss_values(program: Program, outputs: dict[str, torch.Tensor], targets: list[torch.Tensor],
                replicas: bool = False) -> torch.Tensor:
    """The unweighted losses in `program.losses` order: [L] of one replica's
    [B, ...] outputs, or [R, L] of stacked [R, B, ...] outputs (`replicas`)."""
    if len(targets) != len(program.losses):
        raise ValueError(f"expected {len(program.losses)} targets (one per loss), got {len(targets)}")
    value = replica_loss_value if replicas else loss_value
    return torch.stack([value(loss, outputs[loss.node], t) for loss, t in zip(program.losses, targets)],
                       dim=-1)


class TorchReplicas:
    """What the one-replica model and the vectorized one share: the replica
    axis checks, moving inputs to the device, the loss weights, the learning rate."""

    backend = "torch"

    def __init__(self, program: Program, replicas: int, device: str | torch.device, dtype: torch.dtype):
        self.program = program
        self.replicas = replicas
        self.device = torch.device(device)
        self.dtype = dtype
        self._weights = torch.tensor([loss.weight for loss in program.losses], dtype=dtype, device=self.device)

    def _on_device(self, inputs: dict[str, torch.Tensor], drop_replica_axis: bool) -> dict[str, torch.Tensor]:
        batch = {}
        for name, tensor in inputs.items():
            if tensor.shape[0] != self.replicas:
                raise ValueError(
                    f"input {name!r}: expected a leading replica axis of size {self.replicas}, got {list(tensor.shape)}"
                )
            if drop_replica_axis:
                tensor = tensor[0]
            dtype = self.dtype if tensor.is_floating_point() else tensor.dtype
            batch[name] = tensor.to(device=self.device, dtype=dtype)
        return batch

    def _check_replica(self, replica: int) -> None:
        if not 0 <= replica < self.replicas:
            raise IndexError(f"replica {replica} out of range: this model holds {self.replicas}")

    def set_learning_rate(self, lr: float | list[float]) -> None:
        """One learning rate, or a list of equal ones (a torch.optim optimizer has one)."""
        if not isinstance(lr, (int, float)):
            lr = collapse(lr)
            if isinstance(lr, tuple):
                raise ValueError("this model has one optimizer for every replica: one learning rate only")
        for group in self.optimizer.param_groups:
            group["lr"] = lr


class TorchModel(TorchReplicas):
    """`TrainableModel` of the torch.nn backend for one replica.

    `states[k]` is replica k's initial canonical state; only `len(states) == 1`
    is supported here. Tensors crossing the interface carry the replica axis
    (size 1): inputs [1, B, ...], targets [1, B, ...], losses [1, L]. Returned
    losses and outputs stay on `device`; `state()` is on the CPU.
    The optimizer's own state (momentum, Adam moments) is kept by `load_state`.
    """

    def __init__(
        self,
        program: Program,
        states: list[dict[str, torch.Tensor]],
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        generators: list[torch.Generator] | None = None,
    ):
        if len(states) != 1:
            raise ValueError(f"TorchModel holds one replica, got {len(states)} states; run the trials one by one")
        if generators is not None and len(generators) != 1:
            raise ValueError(f"TorchModel holds one replica, got {len(generators)} dropout generators")
        super().__init__(program, 1, device, dtype)
        self.module: GraphModule = build_module(program, states[0], dtype=dtype).to(self.device)
        if generators is not None:
            self.module.dropout_generator = generators[0]
        self.optimizer = make_optimizer(program.train.optimizer, self.module.parameters())

    # -- TrainableModel ----------------------------------------------------------

    def train_step(self, inputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        self.module.train()
        outputs = self.module(**self._on_device(inputs, drop_replica_axis=True))
        values = loss_values(self.program, outputs, [t[0] for t in targets])
        total = (values * self._weights).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return values.detach().unsqueeze(0)

    def predict(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.module.eval()
        with torch.no_grad():
            outputs = self.module(**self._on_device(inputs, drop_replica_axis=True))
        return {name: out.unsqueeze(0) for name, out in outputs.items()}

    def losses(self, outputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([
                loss_values(self.program, {name: out[r] for name, out in outputs.items()}, [t[r] for t in targets])
                for r in range(self.replicas)
            ])

    def state(self, replica: int) -> dict[str, torch.Tensor]:
        self._check_replica(replica)
        return {name: t.detach().to("cpu", copy=True) for name, t in self.module.state_dict().items()}

    def load_state(self, replica: int, state: dict[str, torch.Tensor]) -> None:
        self._check_replica(replica)
        self.module.load_state_dict(state, strict=True)
