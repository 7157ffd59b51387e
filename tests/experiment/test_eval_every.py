"""`eval_every N`: one evaluation point every N epochs and after the last, for
long runs; training itself is unchanged (the same weights, bit for bit)."""

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY, fake_factory, write_spec
from minispec.errors import MinispecError
from minispec.experiment import program_hash, run_experiment
from minispec.experiment.folder import hashed_settings
from minispec.ir.cost import estimate_disk

backends = pytest.importorskip("minispec.backends")

SEVEN = TINY.replace("epochs 3", "epochs 7")


def torch_factory(program, states, device):
    return backends.make_model("torch", program, states, device)


def weights(folder, trial):
    return load_file(str(folder / "weights" / f"trial_{trial:03d}.safetensors"))


def test_points_every_n_epochs_and_after_the_last(tmp_path):
    every = write_spec(tmp_path, SEVEN.replace("trials 2", "trials 2\n    eval_every 3"), "every.mdl")
    each = write_spec(tmp_path, SEVEN, "each.mdl")
    assert every.train.eval_every == 3 and each.train.eval_every == 1
    sparse = run_experiment(every, backend_factory=torch_factory, out_dir=tmp_path / "sparse")
    dense = run_experiment(each, backend_factory=torch_factory, out_dir=tmp_path / "dense")
    for k in range(2):
        a, b = sparse.trials[k], dense.trials[k]
        assert [p.epoch for p in a.records] == [3.0, 6.0, 7.0]
        assert a.epochs_done == b.epochs_done == 7
        by_epoch = {p.epoch: p for p in b.records}
        for point in a.records:
            same = by_epoch[point.epoch]
            assert (point.test_error, point.train_error, point.step) == (same.test_error, same.train_error, same.step)
        # the train loss of a point is the mean over the steps since the last point (5 steps per epoch here)
        assert a.records[0].train_loss == pytest.approx(sum(p.train_loss for p in b.records[:3]) / 3, rel=1e-9)
        assert a.records[2].train_loss == pytest.approx(b.records[6].train_loss, rel=1e-9)
        wa, wb = weights(sparse.folder, k), weights(dense.folder, k)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[n], wb[n]) for n in wa)
    assert sparse.summary.test_error == dense.summary.test_error


def test_a_divergence_shows_at_the_next_point(tmp_path):
    program = write_spec(tmp_path, SEVEN.replace("trials 2", "trials 3\n    eval_every 3"))
    result = run_experiment(program, backend_factory=fake_factory(diverge={1: 2}), out_dir=tmp_path / "run",
                            vectorize=True)
    bad = result.trials[1]
    assert bad.diverged and bad.diverged_epoch == 3 and [p.diverged for p in bad.records] == [True]
    assert [p.epoch for p in result.trials[0].records] == [3.0, 6.0, 7.0]


def test_eval_every_is_a_located_setting(tmp_path):
    with pytest.raises(MinispecError, match="eval_every must be at least 1") as error:
        write_spec(tmp_path, TINY.replace("trials 2", "trials 2\n    eval_every 0"))
    assert error.value.span.line == 17
    with pytest.raises(MinispecError, match="cannot both be set") as error:
        write_spec(tmp_path, TINY.replace("trials 2", "trials 2\n    evaluate 2\n    eval_every 5"))
    assert error.value.span.line == 18 and "keep one" in error.value.hint


def test_the_default_keeps_the_hash_of_earlier_folders(tmp_path):
    plain = write_spec(tmp_path, TINY, "a.mdl")
    sparse = write_spec(tmp_path, TINY.replace("trials 2", "trials 2\n    eval_every 2"), "b.mdl")
    assert "eval_every" not in hashed_settings(plain)["train"]
    assert hashed_settings(sparse)["train"]["eval_every"] == 2
    assert program_hash(plain) != program_hash(sparse)


def test_the_disk_estimate_counts_the_points_kept(tmp_path):
    long = TINY.replace("epochs 3", "epochs 5000")
    dense = write_spec(tmp_path, long, "dense.mdl")
    sparse = write_spec(tmp_path, long.replace("trials 2", "trials 2\n    eval_every 500"), "sparse.mdl")
    assert estimate_disk(sparse, 2) * 10 < estimate_disk(dense, 2)  # curves.png and the rest stay
