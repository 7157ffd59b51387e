"""`minispec check --smoke`: build a spec and take one training step on a tiny
random batch, so errors that only show at run time show at check time."""

from __future__ import annotations

import math

import torch

from minispec.backends import make_model, targets
from minispec.backends.weights import initial_state
from minispec.errors import MinispecError
from minispec.ir.cost import estimate_memory, require_memory
from minispec.ir.model import Program


def random_batch(program: Program, size: int, generator: torch.Generator) -> tuple[dict, dict]:
    """Inputs of the data set's shapes and random class indices, with a replica axis of 1."""
    inputs = {name: torch.randn(1, size, *shape, generator=generator) for name, shape in program.data.inputs.items()}
    raw = {
        name: torch.randint(program.data.num_classes[name], (1, size, *shape), generator=generator)
        for name, shape in program.data.targets.items()
    }
    return inputs, raw


def smoke_test(program: Program, backend: str = "torch", size: int = 4) -> list[float]:
    """One forward, backward and optimizer step; the losses, which must be finite.
    Refused (MinispecError) before anything is allocated when it would not fit in memory."""
    from minispec.experiment.training import check_batches

    require_memory(estimate_memory(program, 1, size, data=False), f"the smoke step of `{program.name}`")
    check_batches(program)
    generator = torch.Generator().manual_seed(0)
    model = make_model(backend, program, [initial_state(program, generator)])
    inputs, raw = random_batch(program, size, generator)
    losses = model.train_step(inputs, [targets.encode(loss, raw) for loss in program.losses])[0].tolist()
    bad = [loss.node for loss, value in zip(program.losses, losses) if not math.isfinite(value)]
    if bad:
        raise MinispecError(f"the smoke step gave a non-finite loss on {', '.join(bad)}",
                            program.losses[0].span, hint="check the output activations and the loss encodings")
    return losses
