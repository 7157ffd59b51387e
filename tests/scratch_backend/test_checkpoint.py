"""Weights files: safetensors only, checked against the spec; torch.nn and scratch read each other's."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from minispec.backends.checkpoint import expected_shapes, load_metadata, load_state, save_state
from minispec.backends.scratch_graph import ScratchModel
from minispec.backends.torch_nn import TorchModel
from minispec.errors import MinispecError

from .helpers import batch, program, states


class Payload:
    """Unpickling this creates `path`: what a hostile weights file would do."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_round_trip_keeps_names_order_values_and_metadata(tmp_path):
    p = program("ws_aux_bn")
    state = states(p, [0], dtype=torch.float32)[0]
    save_state(tmp_path / "w.safetensors", state, {"spec": "ws_aux_bn", "trial": 0})
    loaded = load_state(tmp_path / "w.safetensors", p)
    assert list(loaded) == list(state) == list(expected_shapes(p))
    assert all(torch.equal(loaded[n], state[n]) and loaded[n].dtype == state[n].dtype for n in state)
    assert load_metadata(tmp_path / "w.safetensors") == {"spec": "ws_aux_bn", "trial": "0"}


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    proof = tmp_path / "payload_works"
    pickle.loads(pickle.dumps(Payload(str(proof))))
    assert proof.exists()  # the payload is real: unpickling it runs code

    marker = tmp_path / "pwned"
    p = program("disk")
    files = {
        "plain.safetensors": pickle.dumps({"out.weight": Payload(str(marker))}),
        "torch_save.pt": None,
    }
    for name, payload in files.items():
        path = tmp_path / name
        if payload is None:
            torch.save({"out.weight": Payload(str(marker))}, path)  # torch.save pickles too
        else:
            path.write_bytes(payload)
        with pytest.raises(MinispecError, match="not a valid safetensors"):
            load_state(path, p)
        with pytest.raises(MinispecError):
            load_metadata(path)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["random", "truncated", "one_byte_short", "header_only", "empty", "text"])
def test_anything_but_safetensors_is_one_clear_error(tmp_path, kind):
    p = program("disk")
    good = tmp_path / "good.safetensors"
    save_state(good, states(p, [0])[0])
    data = good.read_bytes()
    content = {
        "random": os.urandom(4096),
        "truncated": data[: len(data) // 2],
        "one_byte_short": data[:-1],
        "header_only": data[:12],
        "empty": b"",
        "text": b"out.weight = [[1, 2, 3]]\n",
    }[kind]
    path = tmp_path / f"{kind}.safetensors"
    path.write_bytes(content)
    with pytest.raises(MinispecError, match="not a valid safetensors") as info:
        load_state(path, p)
    assert str(path) in info.value.message


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(MinispecError, match="does not exist"):
        load_state(tmp_path / "nope.safetensors", program("disk"))


def test_names_and_shapes_must_match_the_spec(tmp_path):
    wsn, caux = program("wsn"), program("caux")
    path = tmp_path / "wsn.safetensors"
    save_state(path, states(wsn, [0])[0])
    with pytest.raises(MinispecError, match="missing `digit_a.bias`, `digit_a.weight`") as info:
        load_state(path, caux)
    assert "caux" in info.value.message

    extra = tmp_path / "caux.safetensors"
    save_state(extra, states(caux, [0])[0])
    with pytest.raises(MinispecError, match="unexpected `digit_a.bias`"):
        load_state(extra, wsn)

    state = states(wsn, [0])[0]
    state["out.weight"] = torch.zeros(3, 32, dtype=torch.float64)
    state["extract:2:batchnorm.num_batches_tracked"] = torch.tensor(0.0)
    bad = tmp_path / "bad.safetensors"
    save_state(bad, state)
    with pytest.raises(MinispecError, match=r"`out.weight` is \[3, 32\], expected \[2, 32\]") as info:
        load_state(bad, wsn)
    assert "num_batches_tracked" in info.value.message


@pytest.mark.parametrize("name, dtype", [("ws_aux_bn", torch.float64), ("caux", torch.float32), ("disk", torch.float64)])
def test_weights_move_between_backends_with_identical_predictions(tmp_path, name, dtype):
    p = program(name)
    init = states(p, [0, 1], dtype=dtype)
    inputs, targets = batch(p, 1, 6, seed=0, dtype=dtype)
    test_inputs, _ = batch(p, 1, 5, seed=1, dtype=dtype)
    tol = dict(rtol=0, atol=1e-12) if dtype == torch.float64 else dict(rtol=0, atol=1e-5)

    trained = TorchModel(p, [dict(init[0])], dtype=dtype)
    for _ in range(2):
        trained.train_step(inputs, targets)
    save_state(tmp_path / "torch.safetensors", trained.state(0), {"backend": "torch_nn"})
    scratch = ScratchModel(p, [dict(init[1])], dtype=dtype)  # other weights, overwritten below
    scratch.load_state(0, load_state(tmp_path / "torch.safetensors", p))
    ours, theirs = scratch.predict(test_inputs), trained.predict(test_inputs)
    for node in p.outputs:
        torch.testing.assert_close(ours[node], theirs[node], **tol)

    trained = ScratchModel(p, [dict(init[1])], dtype=dtype)
    for _ in range(2):
        trained.train_step(inputs, targets)
    save_state(tmp_path / "scratch.safetensors", trained.state(0))
    reference = TorchModel(p, [dict(init[0])], dtype=dtype)
    reference.load_state(0, load_state(tmp_path / "scratch.safetensors", p))
    ours, theirs = trained.predict(test_inputs), reference.predict(test_inputs)
    for node in p.outputs:
        torch.testing.assert_close(ours[node], theirs[node], **tol)
