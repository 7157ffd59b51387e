"""mnist_pairs: the course's digit-pair comparison task (Project 1).

Made as the course's `generate_pair_sets(N)`: the 28x28 digits are
average-pooled 2x2 to 14x14; 2N distinct images are drawn by a random
permutation of the pool (train pairs from the training pool, test pairs from
the test pool) and paired consecutively.

    x:       [N, 2, 14, 14] float32  the two digits as two channels
    target:  [N] long                1 if classes[:, 0] <= classes[:, 1] else 0
    classes: [N, 2] long             the two digits' classes (0..9)

Pixels are 0..255 floats; with normalize=true both sides are shifted and
scaled by the mean and std of this draw's training inputs.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING


from minispec.data import digits
from minispec.data.base import Dataset, DatasetInfo, Option, Split, check_options, generator, normalize, too_many

if TYPE_CHECKING:
    import torch

INFO = DatasetInfo(
    name="mnist_pairs",
    summary="pairs of 14x14 MNIST digits; target 1 when the first digit is <= the second",
    options=(
        Option("train", "size", 1000, "number of training pairs (at most 1250 on the embedded digits)"),
        Option("test", "size", 1000, "number of test pairs (at most 1250 on the embedded digits)"),
        Option("normalize", "bool", True, "standardize inputs with the training mean and std"),
    ),
    inputs="x: [N, 2, 14, 14] float32",
    targets="target: [N] long (2 classes); classes: [N, 2] long (10 classes)",
)


def describe(options: dict[str, Any]):
    check_options(INFO, options)
    return {"x": [2, 14, 14]}, {"target": [], "classes": [2]}, {"target": 2, "classes": 10}


def check_sizes(options: dict[str, Any], root: str | None) -> None:
    """Refuse sizes larger than the digits under `root` allow, drawing nothing."""
    opts = check_options(INFO, options)
    train, test, embedded = digits.pool_sizes(root)
    for name, size in (("train", train), ("test", test)):
        limit = size // 2
        if opts[name] > limit:
            where = "embedded" if embedded else "MNIST"
            raise too_many(INFO.name, name, opts[name], limit, f"{name} pairs from the {size} {where} {name} images", embedded)


def load(options: dict[str, Any], seed: int, root: str | None) -> Dataset:
    opts = check_options(INFO, options)
    check_sizes(options, root)
    pools = digits.pools(root)
    train_pool, test_pool = digits.pooled(root)
    rng = generator(seed)
    x_train, target_train, classes_train = _pairs(opts["train"], train_pool, pools.train.labels, rng)
    x_test, target_test, classes_test = _pairs(opts["test"], test_pool, pools.test.labels, rng)
    if opts["normalize"]:
        x_train, x_test = normalize(x_train, x_test)
    return Dataset(
        train=Split({"x": x_train}, {"target": target_train, "classes": classes_train}),
        test=Split({"x": x_test}, {"target": target_test, "classes": classes_test}),
        source=pools.source,
    )


def _pairs(n: int, images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator):
    """n pairs of distinct images: inputs [n, 2, 14, 14], target [n], classes [n, 2]."""
    import torch
    index = torch.randperm(images.shape[0], generator=rng)[: 2 * n].view(n, 2)
    x = images[index].contiguous()  # [n, 2, 14, 14]
    classes = labels[index].contiguous()
    target = (classes[:, 0] <= classes[:, 1]).long()
    return x, target, classes
