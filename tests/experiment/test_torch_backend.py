"""End to end through the real torch.nn backend, on a tiny disk spec."""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY, write_spec
from minispec import data
from minispec.backends.targets import error_count
from minispec.experiment import compare, run_experiment
from minispec.experiment.seeding import data_seed

backends = pytest.importorskip("minispec.backends")


def torch_factory(program, states, device):
    return backends.make_model("torch", program, states, device)


def records(result):
    return [[r.model_dump(exclude={"wall_time"}) for r in t.records] for t in result.trials]


@pytest.fixture
def disk(tmp_path):
    return write_spec(tmp_path, TINY.replace("sgd(lr=0.5)", "adam(lr=0.02)"))


def test_torch_backend_end_to_end(disk, tmp_path):
    a = run_experiment(disk, backend_factory=torch_factory, out_dir=tmp_path / "a")
    b = run_experiment(disk, backend_factory=torch_factory, out_dir=tmp_path / "b")
    assert records(a) == records(b)
    s = a.summary
    assert s.backend == "torch" and s.complete and s.trials_finished == 2
    assert s.params == disk.total_params == 2 * 8 + 8 + 8 + 1
    # losses go down, errors are fractions of 100 test points
    for trial in a.trials:
        losses = [r.train_loss for r in trial.records]
        assert losses[-1] < losses[0]
        assert all(0 <= r.test_error <= 1 for r in trial.records)

    # the saved weights reproduce the recorded final test error of trial 1
    state = load_file(str(a.folder / "weights" / "trial_001.safetensors"))
    model = torch_factory(disk, [state], torch.device("cpu"))
    test = data.load("disk", dict(disk.data.options), seed=data_seed(disk.train.seed, 1)).test
    outputs = model.predict({"x": test.inputs["x"].unsqueeze(0)})
    raw = {name: t.unsqueeze(0) for name, t in test.targets.items()}
    wrong = error_count(disk.losses[0], outputs["out"], raw).item()
    assert wrong / len(test) == a.trials[1].final.test_error


def test_torch_backend_vectorized_equals_sequential(disk, tmp_path):
    alone = run_experiment(disk, backend_factory=torch_factory, out_dir=tmp_path / "s", vectorize=False)
    together = run_experiment(disk, backend_factory=torch_factory, out_dir=tmp_path / "v", vectorize=True)
    assert together.trials[0].chunk == [0, 1]
    for a, b in zip(alone.trials, together.trials):
        assert b.final.test_error == pytest.approx(a.final.test_error, abs=0.011)
        assert b.final.train_loss == pytest.approx(a.final.train_loss, rel=1e-4)


def test_a_resumed_partial_chunk_ends_bit_for_bit_where_the_whole_run_ended(disk, tmp_path):
    """A chunk saved in part (a kill between two trials' saves) trains whole again on resume:
    its missing trial gets the numbers of the batched kernels it first ran in."""
    whole = run_experiment(disk, backend_factory=torch_factory, trials=4, out_dir=tmp_path / "whole", vectorize=True)
    assert whole.trials[0].chunk == [0, 1, 2, 3]
    cut = tmp_path / "cut"
    shutil.copytree(whole.folder, cut)
    for path in (cut / "trials" / "trial_002.json", cut / "weights" / "trial_002.safetensors", cut / "summary.json"):
        path.unlink()
    resumed = run_experiment(disk, backend_factory=torch_factory, trials=4, out_dir=cut, resume=True)
    assert records(resumed) == records(whole)
    expected, got = (load_file(str(folder / "weights" / "trial_002.safetensors")) for folder in (whole.folder, cut))
    assert all(torch.equal(got[name], expected[name]) for name in expected)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_backend_on_cuda_vectorizes_by_default(disk, tmp_path):
    cpu = run_experiment(disk, backend_factory=torch_factory, out_dir=tmp_path / "cpu")
    gpu = run_experiment(disk, backend_factory=torch_factory, out_dir=tmp_path / "gpu", device="cuda",
                         vectorize=None)
    assert gpu.summary.device.startswith("cuda") and gpu.trials[1].chunk == [0, 1]
    for a, b in zip(cpu.trials, gpu.trials):
        assert b.final.test_error == pytest.approx(a.final.test_error, abs=0.03)


def test_compare_with_torch(disk, tmp_path):
    faster = disk.model_copy(update={
        "name": "tiny_fast",
        "train": disk.train.model_copy(update={"optimizer": disk.train.optimizer.model_copy(
            update={"options": {**disk.train.optimizer.options, "lr": 0.05}})}),
    })
    result = compare([disk, faster], backend_factory=torch_factory, runs_root=tmp_path / "runs", trials=3)
    assert [r.spec for r in result.rows] == ["tiny", "tiny_fast"]
    assert result.rows[0].p_value is None and 0 <= result.rows[1].p_value <= 1
    assert result.plot.exists()
