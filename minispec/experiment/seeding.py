"""Where every random number of a trial comes from.

Trial k (0-based) of an experiment seeded `seed` (`program.train.seed`) uses
four independent streams, each a function of (seed, k) only, so trial k sees
the same data, weights, batch order and dropout masks whether it runs alone,
after other trials, resumed, or beside other trials in a vectorized chunk:

    data      minispec.data.load(..., seed=data_seed(seed, k))
              = (seed * 1_000_003 + k) mod 2^63          (seed 0: trial k draws data seed k)
    weights   minispec.backends.weights.trial_generator(seed, k)
    order     a CPU generator seeded order_seed(seed, k)
              = (seed * 1_000_003 + k + 0x5851F42D4C957F2D) mod 2^64
              shuffles the training set once per epoch (torch.randperm)
    torch     a CPU generator seeded torch_seed(seed, k), given to the backend
              (`generators=`), from which both backends draw trial k's dropout masks
              = (seed * 1_000_003 + k + 0x2545F4914F6CDD1D) mod 2^64

The offsets keep the streams apart: with one integer for all four, a uniform
data draw and a uniform weight draw would be the very same numbers.

torch's global RNG is also seeded torch_seed(seed, k0) before a chunk's model
is built (k0: the chunk's first trial), for a backend factory that takes no
generators and draws from it: such a backend cannot give trial k of a
vectorized chunk the masks it would draw alone.
"""

from __future__ import annotations

STRIDE = 1_000_003
ORDER_OFFSET = 0x5851_F42D_4C95_7F2D
TORCH_OFFSET = 0x2545_F491_4F6C_DD1D


def data_seed(seed: int, trial: int) -> int:
    """Seed of trial `trial`'s data draw."""
    return (seed * STRIDE + trial) % 2**63


def order_seed(seed: int, trial: int) -> int:
    """Seed of the generator that shuffles trial `trial`'s batches every epoch."""
    return (seed * STRIDE + trial + ORDER_OFFSET) % 2**64


def torch_seed(seed: int, trial: int) -> int:
    """Seed of torch's global RNG while trial `trial` is built and trained."""
    return (seed * STRIDE + trial + TORCH_OFFSET) % 2**64
