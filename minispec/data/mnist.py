"""mnist: 10-class MNIST digits, for 784->10 and 784-100-10 networks.

    x:      [N, 1, 28, 28] float32, or [N, 784] with flatten=true
    target: [N] long (10 classes)

Training samples are drawn from the training pool, test samples from the test
pool, each as the first N of a seeded random permutation (so each trial sees
its own subset, in its own order). Defaults: the whole pools (2,500 / 2,500 on
the embedded digits, 60,000 / 10,000 with full MNIST). Pixels are 0..255
floats; with normalize=true both sides are shifted and scaled by the mean and
std of this draw's training inputs.
"""

from __future__ import annotations

from typing import Any


from minispec.data import digits
from minispec.data.base import Dataset, DatasetInfo, Option, Split, check_options, generator, normalize, too_many

INFO = DatasetInfo(
    name="mnist",
    summary="10-class MNIST digits, 28x28 (or flattened to 784)",
    options=(
        Option("train", "size", None, "training images (default: all of the pool: 2500 embedded, 60000 full MNIST)"),
        Option("test", "size", None, "test images (default: all of the pool: 2500 embedded, 10000 full MNIST)"),
        Option("flatten", "bool", False, "give x as [N, 784] instead of [N, 1, 28, 28]"),
        Option("normalize", "bool", True, "standardize inputs with the training mean and std"),
    ),
    inputs="x: [N, 1, 28, 28] float32, or [N, 784] with flatten=true",
    targets="target: [N] long (10 classes)",
)


def describe(options: dict[str, Any]):
    opts = check_options(INFO, options)
    shape = [784] if opts["flatten"] else [1, 28, 28]
    return {"x": shape}, {"target": []}, {"target": 10}


def check_sizes(options: dict[str, Any], root: str | None) -> None:
    """Refuse sizes larger than the digits under `root` allow, drawing nothing."""
    opts = check_options(INFO, options)
    train, test, embedded = digits.pool_sizes(root)
    for name, size in (("train", train), ("test", test)):
        if opts[name] is not None and opts[name] > size:
            where = "embedded" if embedded else "MNIST"
            raise too_many(INFO.name, name, opts[name], size, f"{where} {name} images", embedded)


def load(options: dict[str, Any], seed: int, root: str | None) -> Dataset:
    import torch
    opts = check_options(INFO, options)
    check_sizes(options, root)
    pools = digits.pools(root)
    rng = generator(seed)
    splits = []
    for name, pool in (("train", pools.train), ("test", pools.test)):
        n = len(pool) if opts[name] is None else opts[name]
        index = torch.randperm(len(pool), generator=rng)[:n]
        x = pool.images[index].float().unsqueeze(1)
        splits.append((x, pool.labels[index].clone()))
    (x_train, y_train), (x_test, y_test) = splits
    if opts["normalize"]:
        x_train, x_test = normalize(x_train, x_test)
    if opts["flatten"]:
        x_train, x_test = x_train.reshape(len(x_train), 784), x_test.reshape(len(x_test), 784)
    return Dataset(
        train=Split({"x": x_train}, {"target": y_train}),
        test=Split({"x": x_test}, {"target": y_test}),
        source=pools.source,
    )
