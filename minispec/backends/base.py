"""The one interface every backend's trainable model offers the runner.

A model holds R replicas of one Program (R = 1 for a sequential trial, R = T
when trials are vectorized). Every tensor that crosses this interface carries
a leading replica axis: inputs are [R, B, *sample_shape], targets [R, B, ...],
losses [R, L]. The runner never knows which backend it drives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from minispec.ir.model import Program

if TYPE_CHECKING:
    import torch


class TrainableModel(Protocol):
    program: Program
    replicas: int
    device: torch.device
    backend: str  # the name `make_model` knows it by, recorded in run folders

    def train_step(self, inputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        """One optimizer step on one batch, in training mode.

        `targets[i]` is already encoded for `program.losses[i]` (see
        `minispec.backends.targets.encode`). The total loss of a replica is
        sum_i weight_i * loss_i. Returns the unweighted losses, [R, L], detached.
        """
        ...

    def predict(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs of every loss node (`program.outputs`) in evaluation mode, [R, B, ...]."""
        ...

    def losses(self, outputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        """The unweighted losses of given outputs, [R, L], without any step."""
        ...

    def set_learning_rate(self, lr: float) -> None:
        """Learning rate for the following steps (the runner applies the schedule)."""
        ...

    def state(self, replica: int) -> dict[str, torch.Tensor]:
        """Parameters and buffers of one replica under their canonical names
        (`<weights>.weight`, `<weights>.running_mean`, ...), on the CPU."""
        ...

    def load_state(self, replica: int, state: dict[str, torch.Tensor]) -> None:
        """Replace one replica's parameters and buffers (canonical names)."""
        ...
