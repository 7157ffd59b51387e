"""mnist: 10-class MNIST digits, for 784->10 and 784-100-10 networks.

    x:      [N, 1, 28, 28] float32, or [N, 784] with flatten=true
    target: [N] long (10 classes)

Training samples are drawn from the training pool, test samples from the test
pool, each as the first N of a seeded random permutation (so each trial sees
its own subset, in its own order). Defaults: the whole pools (2,500 / 2,500 on
the embedded digits, 60,000 / 10,000 with full MNIST). Pixels are 0..255
floats; with normalize=true both sides are shifted and scaled by the mean and
std of this draw's training inputs.

`read_idx` is how full MNIST is read from a `--data-root`: our own reader of the
raw IDX files (plain or .gz), never torchvision's loader, which would
`torch.load` (unpickle) a `processed/*.pt` file lying in the same root.
"""

from __future__ import annotations

import gzip
import os
import struct
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


IDX_UBYTE = 0x08
# The largest IDX file read: full MNIST's training images are 47 MB.
MAX_IDX_BYTES = 64 * 2**20


def idx_path(folder: str, name: str) -> str | None:
    """The file `name` in `folder`, or `name.gz`; None when neither is there."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path: str, ndim: int):
    """An IDX file of unsigned bytes (MNIST's format) as a uint8 tensor.

    Header: two zero bytes, the type (0x08: ubyte), the number of dimensions,
    then each size as a big-endian uint32; then the data, row-major. Anything
    else, or a file whose length does not match its header, raises ValueError.
    """
    import torch

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read(MAX_IDX_BYTES + 1)
    if len(data) > MAX_IDX_BYTES:
        raise ValueError(f"larger than {MAX_IDX_BYTES // 2**20} MiB")
    if len(data) < 4:
        raise ValueError("bad IDX header: the file is shorter than 4 bytes")
    zero1, zero2, kind, dims = struct.unpack(">BBBB", data[:4])
    if (zero1, zero2) != (0, 0) or kind != IDX_UBYTE:
        raise ValueError("bad IDX header: not an IDX file of unsigned bytes")
    if dims != ndim:
        raise ValueError(f"bad IDX header: {dims} dimensions, expected {ndim}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise ValueError("bad IDX header: truncated sizes")
    shape = struct.unpack(f">{dims}I", data[4:header])
    count = 1
    for size in shape:
        count *= size
    if len(data) != header + count:
        raise ValueError(f"{len(data) - header} data bytes for a header of shape {list(shape)} ({count} bytes)")
    if count == 0:
        return torch.empty(shape, dtype=torch.uint8)
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(shape)
