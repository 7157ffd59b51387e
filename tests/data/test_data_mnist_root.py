"""Full MNIST from a --data-root, on small IDX files written here (no network), read
by our own IDX reader: nothing else in the root is ever loaded."""

import os
import struct
import time

import numpy as np
import pytest
import torch

from minispec.data import digits, load
from minispec.errors import MinispecError


def write_idx(path, array: np.ndarray) -> None:
    """An IDX file as MNIST ships them: magic (0, 0, 0x08 ubyte, ndim), sizes, data."""
    with open(path, "wb") as handle:
        handle.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        handle.write(struct.pack(f">{array.ndim}I", *array.shape))
        handle.write(array.astype(np.uint8).tobytes())


def write_mnist(root, n_train=60, n_test=40, seed=0):
    """Random 'digits' in root/MNIST/raw/, labels cycling through 0..9."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return raw


@pytest.fixture
def offline(monkeypatch):
    """No download is ever attempted over the network."""
    monkeypatch.setenv(digits.OFFLINE_ENV, "1")


def test_pairs_from_a_root(tmp_path, offline):
    write_mnist(tmp_path)
    data = load("mnist_pairs", {"train": 30, "test": 20, "normalize": False}, seed=0, root=str(tmp_path))
    assert "raw IDX" in data.source and str(tmp_path) in data.source
    assert data.train.inputs["x"].shape == (30, 2, 14, 14)
    assert data.test.inputs["x"].shape == (20, 2, 14, 14)
    classes = data.train.targets["classes"]
    assert torch.equal(data.train.targets["target"], (classes[:, 0] <= classes[:, 1]).long())
    pooled_train, pooled_test = digits.pooled(str(tmp_path))
    assert pooled_train.shape == (60, 14, 14) and pooled_test.shape == (40, 14, 14)
    # all 60 training images used exactly once
    used = data.train.inputs["x"].reshape(60, -1)
    assert torch.equal(used[used[:, 0].argsort()].sum(0), pooled_train.reshape(60, -1).sum(0))
    again = load("mnist_pairs", {"train": 30, "test": 20, "normalize": False}, seed=0, root=str(tmp_path))
    assert torch.equal(again.train.inputs["x"], data.train.inputs["x"])


def test_root_limits_follow_the_files(tmp_path, offline):
    write_mnist(tmp_path)
    with pytest.raises(MinispecError) as caught:
        load("mnist_pairs", {"train": 31, "test": 20}, seed=0, root=str(tmp_path))
    assert "at most 30" in caught.value.message and "train=30" in caught.value.hint
    data = load("mnist", {"flatten": True}, seed=0, root=str(tmp_path))
    assert data.train.inputs["x"].shape == (60, 784) and data.test.inputs["x"].shape == (40, 784)
    assert torch.bincount(data.test.targets["target"]).tolist() == [4] * 10


def test_root_is_cached(tmp_path, offline):
    write_mnist(tmp_path)
    first = digits.pools(str(tmp_path))
    assert digits.pools(str(tmp_path) + os.sep) is first


def test_missing_root_is_one_clear_error(tmp_path, offline):
    root = tmp_path / "nowhere"
    with pytest.raises(MinispecError) as caught:
        load("mnist_pairs", {}, seed=0, root=str(root))
    text = caught.value.render()
    assert str(root) in text and "does not exist" in text
    assert "train-images-idx3-ubyte" in text and "hint:" in text
    assert not root.exists()


def test_missing_files_without_network_fail_fast(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.delenv(digits.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(digits.socket, "create_connection", no_network)
    (tmp_path / "empty").mkdir()
    start = time.monotonic()
    with pytest.raises(MinispecError) as caught:
        load("mnist", {}, seed=0, root=str(tmp_path / "empty"))
    assert time.monotonic() - start < 5
    assert "no network" in caught.value.message and str(tmp_path / "empty") in caught.value.message
    assert not (tmp_path / "empty" / "MNIST").exists()


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def failing_download(self):
        os.makedirs(self.raw_folder, exist_ok=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried ...")

    monkeypatch.delenv(digits.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(digits, "_online", lambda mirrors: True)
    monkeypatch.setattr(MNIST, "download", failing_download)
    root = tmp_path / "fresh"
    with pytest.raises(MinispecError) as caught:
        load("mnist_pairs", {}, seed=0, root=str(root))
    assert "Error downloading train-images-idx3-ubyte.gz" in caught.value.message
    assert "\n" not in caught.value.message
    assert not root.exists()  # the folders made for the download are removed


@pytest.mark.parametrize(
    "damage",
    ["truncate_images", "truncate_header", "fewer_labels", "wrong_size", "empty_labels", "bad_labels"],
)
def test_corrupt_files_are_one_clear_error(tmp_path, offline, damage):
    raw = write_mnist(tmp_path)
    images = raw / "train-images-idx3-ubyte"
    labels = raw / "train-labels-idx1-ubyte"
    if damage == "truncate_images":
        images.write_bytes(images.read_bytes()[:5000])
    elif damage == "truncate_header":
        images.write_bytes(images.read_bytes()[:3])
    elif damage == "fewer_labels":
        write_idx(labels, np.arange(50) % 10)
    elif damage == "wrong_size":
        write_idx(images, np.zeros((60, 20, 20)))
    elif damage == "empty_labels":
        labels.write_bytes(b"")
    elif damage == "bad_labels":
        write_idx(labels, np.arange(60) % 12)
    with pytest.raises(MinispecError) as caught:
        load("mnist_pairs", {"train": 10, "test": 10}, seed=0, root=str(tmp_path))
    text = caught.value.render()
    assert "train-images-idx3-ubyte" in text and str(raw) in text
    assert "hint:" in text


class _RunsCode:
    """Unpickling this writes a marker file: what a hostile processed/*.pt does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_hostile_processed_file_is_never_loaded(tmp_path, offline):
    import pickle

    write_mnist(tmp_path)
    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir()
    marker = tmp_path / "marker"
    for name in ("training.pt", "test.pt"):
        (processed / name).write_bytes(pickle.dumps(_RunsCode(marker)))
    data = load("mnist", {"normalize": False}, seed=0, root=str(tmp_path))
    assert not marker.exists()
    assert data.train.inputs["x"].shape == (60, 1, 28, 28)


def test_gzipped_idx_files_read_the_same(tmp_path, offline):
    import gzip

    raw = write_mnist(tmp_path / "plain")
    zipped = tmp_path / "zipped" / "MNIST" / "raw"
    zipped.mkdir(parents=True)
    for path in raw.iterdir():
        (zipped / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    plain = digits.pools(str(tmp_path / "plain"))
    packed = digits.pools(str(tmp_path / "zipped"))
    assert torch.equal(plain.train.images, packed.train.images) and torch.equal(plain.test.labels, packed.test.labels)


def test_read_idx_checks_the_header_against_the_length(tmp_path):
    from minispec.data.mnist import read_idx

    path = tmp_path / "f"
    write_idx(path, np.arange(12).reshape(3, 4))
    assert read_idx(str(path), 2).tolist() == np.arange(12).reshape(3, 4).tolist()
    with pytest.raises(ValueError, match="dimensions"):
        read_idx(str(path), 3)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="data bytes"):
        read_idx(str(path), 2)
    path.write_bytes(b"\x80\x02")
    with pytest.raises(ValueError, match="header"):
        read_idx(str(path), 1)
