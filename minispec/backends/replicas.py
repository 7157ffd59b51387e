"""What may differ between the replicas of one model: the values that change no shape.

A sweep trains G points x N trials as one model of G*N replicas when the
points differ only in values like these (`minispec.experiment.sweep` groups
them). Every replica r is described by its own Program; this object carries,
per replica, what a backend needs beyond the first replica's Program:

    optimizer   option name -> one value per replica (lr, momentum, weight_decay, beta1, ...)
    loss_weights  one tuple of loss weights per replica ([R][L])
    dropout     dropout node id -> its probability p in each replica
    learning_rates_differ  whether `set_learning_rate` may get a different
                value per replica (their lr, schedule or number of epochs differ:
                a replica whose epochs are done is given a learning rate of 0)

The learning rate of each epoch comes through `set_learning_rate` (the runner
applies each replica's schedule); the number of epochs, the schedule, the
seeds and the initial-weight scheme are the runner's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from minispec.ir.model import Program
from minispec.ir.ops import OPS

PerReplica = float | tuple[float, ...]  # one value for every replica, or one per replica


@dataclass(frozen=True)
class ReplicaHyper:
    optimizer: dict[str, tuple[float, ...]]
    loss_weights: tuple[tuple[float, ...], ...]
    dropout: dict[str, tuple[float, ...]]
    learning_rates_differ: bool = False

    @classmethod
    def of(cls, programs: Sequence[Program]) -> ReplicaHyper:
        """The per-replica values of `programs` (one per replica, all of one optimizer kind and one graph)."""
        first = programs[0]
        kinds = {p.train.optimizer.kind for p in programs}
        if len(kinds) > 1:
            raise ValueError(f"replicas of one model need one optimizer kind, got {sorted(kinds)}")
        options = {name: tuple(float(p.train.optimizer.options[name]) for p in programs)
                   for name in first.train.optimizer.options}
        weights = tuple(tuple(loss.weight for loss in p.losses) for p in programs)
        dropout_nodes = [node.id for node in first.nodes if OPS[node.op].has("random")]  # p per replica
        dropout = {node: tuple(float(p.node(node).attrs["p"]) for p in programs) for node in dropout_nodes}
        schedules = {(p.train.schedule.model_dump_json(), p.train.epochs) for p in programs}
        return cls(options, weights, dropout, len(set(options["lr"])) > 1 or len(schedules) > 1)

    @property
    def replicas(self) -> int:
        return len(self.loss_weights)

    @property
    def uniform_optimizer(self) -> bool:
        """Every option and learning rate the same in every replica (a fused torch.optim serves)."""
        return not self.learning_rates_differ and all(len(set(v)) == 1 for v in self.optimizer.values())

    def option(self, name: str) -> PerReplica:
        """The optimizer option `name`: one float when every replica has the same value."""
        return collapse(self.optimizer[name])

    def dropout_p(self, node: str) -> PerReplica:
        return collapse(self.dropout[node])

    @property
    def uniform_loss_weights(self) -> bool:
        return len(set(self.loss_weights)) == 1


def collapse(values: Sequence[float]) -> PerReplica:
    """One float when all values agree, else the tuple."""
    values = tuple(float(v) for v in values)
    return values[0] if len(set(values)) == 1 else values
