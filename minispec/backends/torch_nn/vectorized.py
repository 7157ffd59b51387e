"""R replicas of one Program trained at once: torch.func over one GraphModule.

`VectorizedTorchModel` holds every parameter and buffer stacked along a new
leading replica axis ([R, *shape]) and runs the GraphModule of
`minispec.backends.torch_nn.module` once per replica through
`torch.func.functional_call` under `torch.func.vmap`:

    outputs[k] = functional_call(module, (params[k], buffers[k]), kwargs=inputs[k])

so replica k computes exactly what a `TorchModel` started from `states[k]`
computes on its own batch. The replicas never mix:

  * the total loss is sum_k sum_i weight_i * loss_ki, so the gradient of
    replica k's slice is the gradient of replica k's own loss;
  * SGD, Adam and Adadelta update every element from its own gradient and
    state only, so one optimizer over the stacked tensors is R optimizers;
  * BatchNorm updates its running statistics in place on replica k's slice
    (a shared instance: twice per forward, as in the sequential model).

Dropout draws with `vmap(randomness="different")`: each replica gets its own
masks from torch's global RNG, seeded once for the whole chunk by the runner,
so with dropout replica k is a valid sample but not the one a sequential run
of trial k would draw. Without dropout, replica k equals the sequential run up
to floating-point reassociation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, vmap

from minispec.backends.torch_nn.model import TorchReplicas, loss_values, make_optimizer
from minispec.backends.torch_nn.module import GraphModule, build_module
from minispec.ir.model import Program


class _Layers(nn.Module):
    """A GraphModule's layers under the names `layer_0`, `layer_1`, ... (the same objects).

    functional_call finds submodules with getattr, and a weights key may be a
    name nn.Module already uses (`to`, `half`...); these plain names always work.
    Calling it runs the GraphModule, whose layers then hold the swapped-in tensors.
    """

    def __init__(self, graph: GraphModule):
        super().__init__()
        object.__setattr__(self, "graph", graph)  # held, not registered: its names would be looked up
        self.internal: dict[str, str] = {}  # canonical state name -> internal name
        for i, (key, layer) in enumerate(graph.named_children()):
            self.add_module(f"layer_{i}", layer)
            for name, _ in layer.named_parameters(recurse=False):
                self.internal[f"{key}.{name}"] = f"layer_{i}.{name}"
            for name, _ in layer.named_buffers(recurse=False):
                self.internal[f"{key}.{name}"] = f"layer_{i}.{name}"

    def train(self, mode: bool = True):
        self.graph.train(mode)
        return super().train(mode)

    def forward(self, **inputs):
        return self.graph(**inputs)


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
    ):
        if not states:
            raise ValueError("VectorizedTorchModel needs at least one replica state")
        super().__init__(program, len(states), device, dtype)
        # The template module: its own tensors are never used in a forward.
        self.module: GraphModule = build_module(program, states[0], dtype=dtype).to(self.device)
        self._layers = _Layers(self.module)
        self._keys = list(self.module.state_dict())  # canonical names, in state order
        for k, state in enumerate(states):
            if set(state) != set(self._keys):
                raise ValueError(f"state of replica {k} does not have the canonical names of this program")
        parameter_names = [name for name, _ in self.module.named_parameters()]
        buffer_names = [name for name, _ in self.module.named_buffers()]
        # Stacked tensors [R, ...] under canonical names; the vmapped call renames them.
        self.params = {name: self._stack(states, name).requires_grad_(True) for name in parameter_names}
        self.buffers = {name: self._stack(states, name) for name in buffer_names}
        self.optimizer = make_optimizer(program.train.optimizer, list(self.params.values()))
        self._forward = vmap(self._replica_forward, randomness="different")
        self._losses = vmap(self._replica_losses, randomness="different")
        self._loss_only = vmap(lambda outputs, targets: loss_values(program, outputs, targets))

    def _stack(self, states, name: str) -> torch.Tensor:
        tensors = [state[name] for state in states]
        dtype = self.dtype if tensors[0].is_floating_point() else tensors[0].dtype
        return torch.stack(tensors).to(device=self.device, dtype=dtype).detach().clone()

    # -- one replica, vmapped ----------------------------------------------------

    def _replica_forward(self, params, buffers, inputs):
        internal = self._layers.internal
        tensors = {internal[name]: t for name, t in {**params, **buffers}.items()}
        return functional_call(self._layers, tensors, args=(), kwargs=inputs, strict=True)

    def _replica_losses(self, params, buffers, inputs, targets):
        return loss_values(self.program, self._replica_forward(params, buffers, inputs), targets)

    # -- TrainableModel ------------------------------------------------------------

    def train_step(self, inputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        self._layers.train()
        targets = [t.to(self.device) for t in targets]
        values = self._losses(self.params, self.buffers, self._on_device(inputs, drop_replica_axis=False), targets)  # [R, L]
        total = (values * self._weights).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return values.detach()

    def predict(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self._layers.eval()
        with torch.no_grad():
            return self._forward(self.params, self.buffers, self._on_device(inputs, drop_replica_axis=False))

    def losses(self, outputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return self._loss_only(dict(outputs), list(targets))

    def state(self, replica: int) -> dict[str, torch.Tensor]:
        self._check_replica(replica)
        stacked = {**self.params, **self.buffers}
        return {name: stacked[name][replica].detach().to("cpu", copy=True) for name in self._keys}

    def load_state(self, replica: int, state: dict[str, torch.Tensor]) -> None:
        self._check_replica(replica)
        stacked = {**self.params, **self.buffers}
        if set(state) != set(stacked):
            missing, unexpected = sorted(set(stacked) - set(state)), sorted(set(state) - set(stacked))
            raise RuntimeError(f"load_state: missing keys {missing}, unexpected keys {unexpected}")
        with torch.no_grad():
            for name, tensor in stacked.items():
                tensor[replica].copy_(state[name])
