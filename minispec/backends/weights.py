"""Initial state of one replica, drawn the same way for every backend.

Both backends (torch.nn and the hand-written one) start from the tensors made
here, never from their own layers' initialisers, so a spec trained on either
starts from bit-identical weights.

Draw order (it fixes which random numbers land where):

    for owner in program.weight_owners:          # first node of each parameter set, graph order
        for tensor in OPS[owner.op].state:        # the op table's state order: weight, bias, buffers
            init "draw":  minispec.init.draw(...) with the fans of the weight (linear, conv2d)
            otherwise:    ones, zeros, a long 0, or the op's fixed values (no draw)

A parameter the node does not have (`linear(10, bias=false)`) draws nothing. The resulting dict is in
exactly the order of a torch `state_dict()` whose submodules are registered in
`weight_owners` order.

With scheme "torch", `initial_state(p, torch.Generator().manual_seed(s))`
equals the state of the same layers built by `torch.nn` in graph order after
`torch.manual_seed(s)`: the course's own code and a minispec run start alike.
"""

from __future__ import annotations

import torch

from minispec import init
from minispec.ir.model import Node, Program
from minispec.ir.ops import OPS

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
    """(name, tensor) pairs of one parameter set in the op table's state order, drawing in order."""
    definition = OPS[owner.op]
    shapes = {**owner.param_shapes, **owner.buffer_shapes}
    fan_in = fan_out = 0
    if "weight" in owner.param_shapes and any(t.init == "draw" for t in definition.state):
        fan_in, fan_out = init.fans(owner.op, owner.param_shapes["weight"])
    for tensor in definition.state:
        if tensor.name not in shapes:
            continue  # `linear(10, bias=false)` draws nothing for its bias
        shape = shapes[tensor.name]
        if tensor.init == "draw":
            yield tensor.name, init.draw(shape, fan_in, fan_out, tensor.name, scheme=scheme, options=options,
                                         generator=generator, dtype=dtype)
        elif tensor.init == "count":
            yield tensor.name, torch.zeros(shape, dtype=torch.long)
        elif tensor.init == "value":
            yield tensor.name, torch.tensor(definition.value(owner.attrs, shape), dtype=dtype).reshape(shape)
        else:
            yield tensor.name, (torch.ones if tensor.init == "ones" else torch.zeros)(shape, dtype=dtype)
