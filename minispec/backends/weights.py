"""Initial state of one replica, drawn the same way for every backend.

Both backends (torch.nn and the hand-written one) start from the tensors made
here, never from their own layers' initialisers, so a spec trained on either
starts from bit-identical weights.

Draw order (it fixes which random numbers land where):

    for owner in program.weight_owners:          # first node of each parameter set, graph order
        for name in PARAMETER_NAMES[owner.op]:    # weight, then bias
            linear / conv2d: minispec.init.draw(...) with fans of the weight
            batchnorm:       weight = ones, bias = zeros (no draw)

A parameter the node does not have (`linear(10, bias=false)`) draws nothing.
BatchNorm buffers follow their owner's parameters: running_mean zeros,
running_var ones, num_batches_tracked 0 (long). The resulting dict is in
exactly the order of a torch `state_dict()` whose submodules are registered in
`weight_owners` order.

With scheme "torch", `initial_state(p, torch.Generator().manual_seed(s))`
equals the state of the same layers built by `torch.nn` in graph order after
`torch.manual_seed(s)`: the course's own code and a minispec run start alike.
"""

from __future__ import annotations

import torch

from minispec import init
from minispec.ir.model import BUFFER_NAMES, PARAMETER_NAMES, Node, Program

# Odd multiplier and offset of `trial_generator`'s seed derivation.
TRIAL_STRIDE = 1_000_003
WEIGHTS_OFFSET = 0x9E37_79B9_7F4A_7C15  # 2^64 / golden ratio: moves weight seeds away from small data seeds


def trial_seed(seed: int, trial: int) -> int:
    """The integer that seeds the weights of trial `trial` of an experiment seeded `seed`:

        (seed * 1_000_003 + trial + 0x9E3779B97F4A7C15) mod 2^64

    The offset keeps weight seeds apart from the small integers (seed, seed + k)
    a runner typically gives the data sets: with the same integer, a generator
    drawing uniform data and one drawing uniform weights would produce the
    very same numbers, making first-layer weights an affine copy of the data.
    """
    return (seed * TRIAL_STRIDE + trial + WEIGHTS_OFFSET) % 2**64


def trial_generator(seed: int, trial: int) -> torch.Generator:
    """A fresh CPU generator for the initial weights of one trial (see `trial_seed`).

    It depends on (seed, trial) only, so trial k starts from the same weights
    whether it runs alone or vectorized beside other trials.
    """
    return torch.Generator(device="cpu").manual_seed(trial_seed(seed, trial))


def initial_state(
    program: Program,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """The canonical state (`<weights>.weight`, `<weights>.bias`, ... ) of one
    replica at initialisation, as CPU tensors of `dtype` (num_batches_tracked: long)."""
    scheme = program.train.init.scheme
    options = program.train.init.options
    state: dict[str, torch.Tensor] = {}
    for owner in program.weight_owners:
        for name, tensor in _owner_state(owner, scheme, options, generator, dtype):
            state[f"{owner.weights}.{name}"] = tensor
    return state


def _owner_state(owner: Node, scheme, options, generator, dtype):
    """(name, tensor) pairs of one parameter set, parameters then buffers, drawing in order."""
    op = owner.op
    if op not in PARAMETER_NAMES:
        raise ValueError(f"node {owner.id!r}: op {op!r} has no parameters but carries weights {owner.weights!r}")
    if op in ("batchnorm1d", "batchnorm2d"):
        (channels,) = owner.param_shapes["weight"]
        yield "weight", torch.ones(channels, dtype=dtype)
        yield "bias", torch.zeros(channels, dtype=dtype)
    else:
        weight_shape = owner.param_shapes["weight"]
        fan_in, fan_out = init.fans(op, weight_shape)
        for name in PARAMETER_NAMES[op]:
            if name not in owner.param_shapes:
                continue
            yield name, init.draw(
                owner.param_shapes[name], fan_in, fan_out, name,
                scheme=scheme, options=options, generator=generator, dtype=dtype,
            )
    if op in BUFFER_NAMES:
        (channels,) = owner.param_shapes["weight"]
        yield "running_mean", torch.zeros(channels, dtype=dtype)
        yield "running_var", torch.ones(channels, dtype=dtype)
        yield "num_batches_tracked", torch.tensor(0, dtype=torch.long)
