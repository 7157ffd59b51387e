"""R replicas of one Program trained at once: one stacked module, autograd, one update rule.

`VectorizedTorchModel` holds the `StackedGraphModule` of the Program
(`minispec.backends.torch_nn.stacked`): every parameter and buffer is one
tensor [R, *shape], and one forward computes all R replicas, each on its own
batch. The replicas never mix:

  * the total loss is sum_k sum_i weight_i * loss_ki, so the gradient of
    replica k's slice is the gradient of replica k's own loss;
  * SGD, Adam and Adadelta update every element from its own gradient and
    state only, so one optimizer over the stacked tensors is R optimizers
    (`ReplicaOptimizer`: torch.optim's rules, each option a tensor [R]);
  * BatchNorm keeps running statistics per replica (a shared instance moves
    them twice per forward, as in the one-replica model);
  * replica k's dropout masks come from generator k (the runner's
    `torch_seed(seed, trial)`), drawn as a lone `TorchModel` draws them.

So replica k computes what a `TorchModel` started from `states[k]` computes,
up to floating-point reassociation in the batched kernels.

A sweep's points of one graph train as one model too: `hyper`
(`minispec.backends.replicas`) gives each replica its own optimizer options,
loss weights and dropout probabilities; without it every replica has the
program's.
"""

from __future__ import annotations

import torch

from minispec.backends.replicas import ReplicaHyper
from minispec.backends.torch_nn.model import TorchReplicas, loss_values
from minispec.backends.torch_nn.replica_optim import ReplicaOptimizer
from minispec.backends.torch_nn.stacked import StackedGraphModule
from minispec.ir.model import Program


class VectorizedTorchModel(TorchReplicas):
    """`TrainableModel` of the torch.nn backend for R >= 1 replicas (see the module docstring).

    `states[k]` is replica k's initial canonical state. Inputs [R, B, ...],
    targets [R, B, ...], losses [R, L]; outputs and losses stay on `device`,
    `state(k)` is on the CPU. `load_state` keeps the optimizer's state.
    """

    def __init__(
        self,
        program: Program,
        states: list[dict[str, torch.Tensor]],
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        generators: list[torch.Generator] | None = None,
        hyper: ReplicaHyper | None = None,
    ):
        if not states:
            raise ValueError("VectorizedTorchModel needs at least one replica state")
        if hyper is not None and hyper.replicas != len(states):
            raise ValueError(f"hyperparameters for {hyper.replicas} replicas, but {len(states)} states")
        super().__init__(program, len(states), device, dtype)
        dropout = {} if hyper is None else {node: hyper.dropout_p(node) for node in hyper.dropout}
        self.module = StackedGraphModule(program, len(states), generators, dropout).to(dtype)
        stacked = self.module.state_dict()  # canonical names -> [R, ...], sharing the module's storage
        for k, state in enumerate(states):
            if set(state) != set(stacked):
                raise ValueError(f"state of replica {k} does not have the canonical names of this program")
        with torch.no_grad():
            for name, tensor in stacked.items():
                tensor.copy_(torch.stack([state[name] for state in states]))
        self.module.to(self.device)
        if hyper is None:
            hyper = ReplicaHyper.of([program] * len(states))
        self.optimizer = ReplicaOptimizer(program.train.optimizer.kind, self.module.parameters(), hyper)
        if not hyper.uniform_loss_weights:
            self._weights = torch.tensor(hyper.loss_weights, dtype=dtype, device=self.device)  # [R, L]

    # -- TrainableModel ------------------------------------------------------------

    def train_step(self, inputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        self.module.train()
        outputs = self.module(**self._on_device(inputs, drop_replica_axis=False))
        values = loss_values(self.program, outputs, targets, replicas=True)  # [R, L]
        total = (values * self._weights).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return values.detach()

    def set_learning_rate(self, lr: float | list[float]) -> None:
        """One learning rate, or one per replica (a model built with rates that differ)."""
        self.optimizer.set_learning_rate(lr)

    def predict(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.module.eval()
        with torch.no_grad():
            return self.module(**self._on_device(inputs, drop_replica_axis=False))

    def losses(self, outputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return loss_values(self.program, outputs, targets, replicas=True)

    def state(self, replica: int) -> dict[str, torch.Tensor]:
        self._check_replica(replica)
        return {name: t[replica].detach().to("cpu", copy=True) for name, t in self.module.state_dict().items()}

    def load_state(self, replica: int, state: dict[str, torch.Tensor]) -> None:
        self._check_replica(replica)
        stacked = self.module.state_dict()
        if set(state) != set(stacked):
            missing, unexpected = sorted(set(stacked) - set(state)), sorted(set(state) - set(stacked))
            raise RuntimeError(f"load_state: missing keys {missing}, unexpected keys {unexpected}")
        with torch.no_grad():
            for name, tensor in stacked.items():
                tensor[replica].copy_(state[name])
