"""The learning rate of each epoch, from `program.train.schedule`.

    constant   lr
    step       lr * gamma ** (epoch // every)
    cosine     min_lr + (lr - min_lr) * (1 + cos(pi * epoch / epochs)) / 2

`epoch` counts from 0; `lr` is the optimizer's `lr` option. The runner calls
`set_learning_rate` with this value before the first step of every epoch.
"""

from __future__ import annotations

import math

from minispec.ir.model import Train


def learning_rate(train: Train, epoch: int) -> float:
    """The learning rate of epoch `epoch` (0-based) of `train`."""
    base = float(train.optimizer.options["lr"])
    schedule = train.schedule
    if schedule.kind == "step":
        every = schedule.options.get("every", 10.0)
        gamma = schedule.options.get("gamma", 0.1)
        return base * gamma ** int(epoch // every)
    if schedule.kind == "cosine":
        min_lr = schedule.options.get("min_lr", 0.0)
        return min_lr + (base - min_lr) * (1 + math.cos(math.pi * epoch / train.epochs)) / 2
    return base
