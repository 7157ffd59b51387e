import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import TINY, fake_factory, write_spec
from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment import RunSummary, load_run, program_hash, run_experiment

TIMING = {"wall_time", "seconds_per_trial"}


def numbers(result):
    """A run's trials without anything that depends on the clock or on how trials were grouped."""
    return [trial.model_dump(exclude={"wall_time": True, "chunk": True, "seeds": True,
                                      "records": {"__all__": {"wall_time"}}}) for trial in result.trials]


def summary(result):
    return result.summary.model_dump(exclude=TIMING)


def weights(folder, trial):
    return load_file(str(folder / "weights" / f"trial_{trial:03d}.safetensors"))


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_numbers_twice(tiny, tmp_path):
    a = run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "a")
    b = run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "b")
    assert numbers(a) == numbers(b)
    assert summary(a) == summary(b)
    assert same_weights(weights(a.folder, 1), weights(b.folder, 1))
    # trials differ from each other (own data, weights and order)
    assert a.trials[0].records != a.trials[1].records
    assert len(a.trials[0].records) == 3 and a.trials[0].records[-1].epoch == 3.0


def test_vectorized_equals_sequential(tiny, tmp_path):
    seq = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "seq")
    log = []
    vec = run_experiment(tiny, backend_factory=fake_factory(log=log), trials=3, out_dir=tmp_path / "vec",
                         vectorize=True)
    assert log == [3]
    log2 = []
    part = run_experiment(tiny, backend_factory=fake_factory(log=log2), trials=3, out_dir=tmp_path / "part",
                          vectorize=True, chunk=2)
    assert log2 == [2, 1]
    assert numbers(vec) == numbers(seq) == numbers(part)
    for k in range(3):
        assert same_weights(weights(seq.folder, k), weights(vec.folder, k))
    assert vec.trials[1].chunk == [0, 1, 2]


def test_records_and_heads(two_heads, tmp_path):
    result = run_experiment(two_heads, backend_factory=fake_factory(), out_dir=tmp_path / "run")
    trial = result.trials[0]
    assert trial.heads == ["out", "aux"] and trial.report == "out"
    # evaluate 2: two evenly spaced points per epoch (5 steps of 20 samples)
    assert [r.epoch for r in trial.records] == [0.4, 1.0, 1.4, 2.0, 2.4, 3.0]
    assert [r.step for r in trial.records] == [2, 5, 7, 10, 12, 15]
    for record in trial.records:
        assert set(record.test_errors) == {"out", "aux"}
        assert record.test_error == record.test_errors["out"]
        assert 0 <= record.test_error <= 1 and (record.test_error * 100) % 1 == pytest.approx(0, abs=1e-9)
        assert record.train_loss == pytest.approx(record.losses["out"] + 0.5 * record.losses["aux"])
    assert result.summary.heads["aux"].test_error.n == 2
    assert result.summary.params == two_heads.total_params


def test_divergence_is_recorded_and_left_out(tiny, tmp_path):
    finished = []
    result = run_experiment(tiny, backend_factory=fake_factory(diverge={1: 2}), trials=3, out_dir=tmp_path / "run",
                            progress=lambda e: finished.append(e) if isinstance(e, ev.TrialFinished) else None)
    bad = result.trials[1]
    assert bad.diverged and bad.diverged_epoch == 2 and bad.epochs_done == 1
    assert [r.diverged for r in bad.records] == [False, True]
    assert bad.records[1].train_loss is None and bad.final.epoch == 1.0
    assert not (result.folder / "weights" / "trial_001.safetensors").exists()
    s = result.summary
    assert s.trials_diverged == 1 and s.diverged == [1] and s.trials_finished == 3
    assert s.test_error.n == 2 and "diverged" in s.note
    good = [t.final.test_error for t in result.trials if not t.diverged]
    assert s.test_error.mean == pytest.approx(sum(good) / 2)
    assert [e.diverged for e in finished] == [False, True, False]
    # the others are untouched, vectorized or not
    clean = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "clean")
    vec = run_experiment(tiny, backend_factory=fake_factory(diverge={1: 2}), trials=3, out_dir=tmp_path / "vec",
                         vectorize=True)
    assert numbers(vec) == numbers(result)
    assert numbers(clean)[0] == numbers(result)[0] and numbers(clean)[2] == numbers(result)[2]
    assert RunSummary.model_validate_json((result.folder / "summary.json").read_text()).trials_diverged == 1


def test_resume_after_deleting_a_trial(tiny, tmp_path):
    full = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "full")
    shutil.copytree(full.folder, tmp_path / "cut")
    (tmp_path / "cut" / "trials" / "trial_002.json").unlink()
    (tmp_path / "cut" / "summary.json").unlink()
    kept = {name: (tmp_path / "cut" / "trials" / name).stat().st_mtime_ns for name in ("trial_000.json", "trial_001.json")}
    log, seen = [], []
    resumed = run_experiment(tiny, backend_factory=fake_factory(log=log), trials=3, out_dir=tmp_path / "cut",
                             resume=True, progress=seen.append)
    assert log == [3]  # the chunk of trial 2 trains whole, for trial 2's numbers ...
    assert {name: (tmp_path / "cut" / "trials" / name).stat().st_mtime_ns for name in kept} == kept  # ... and keeps 0, 1
    assert {e.trial for e in seen if isinstance(e, (ev.TrialStarted, ev.EpochFinished, ev.TrialFinished))} == {2}
    assert summary(resumed) == summary(full)
    assert numbers(resumed) == numbers(full)
    assert (tmp_path / "cut" / "curves.csv").read_text().count("\n") == (full.folder / "curves.csv").read_text().count("\n")


def test_interrupted_run_resumes_to_the_same_numbers(tiny, tmp_path):
    full = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "full")

    def interrupt(event):
        if isinstance(event, ev.TrialFinished) and event.trial == 1:
            raise KeyboardInterrupt

    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=folder, progress=interrupt)
    partial = RunSummary.model_validate_json((folder / "summary.json").read_text())
    assert partial.trials_finished == 2 and not partial.complete and "not finished" in partial.note
    assert sorted(p.name for p in (folder / "trials").iterdir()) == ["trial_000.json", "trial_001.json"]
    assert not list(folder.rglob("*.tmp"))
    seen = []
    resumed = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=folder, resume=True,
                             progress=seen.append)
    assert seen[0].pending == (2,)
    assert summary(resumed) == summary(full)
    assert numbers(resumed) == numbers(full)
    assert same_weights(weights(folder, 2), weights(full.folder, 2))


def test_resume_can_add_trials(tiny, tmp_path):
    full = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "full")
    run_experiment(tiny, backend_factory=fake_factory(), trials=2, out_dir=tmp_path / "run")
    more = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "run", resume=True)
    assert summary(more) == summary(full)


def test_refuses_to_overwrite(tiny, tmp_path):
    run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run")
    with pytest.raises(MinispecError) as error:
        run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run")
    assert "already holds a run" in error.value.message and "--resume" in error.value.hint


def test_resume_refuses_another_spec(tiny, tmp_path):
    first = run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run")
    longer = tiny.model_copy(update={"train": tiny.train.model_copy(update={"epochs": 4})})
    with pytest.raises(MinispecError) as error:
        run_experiment(longer, backend_factory=fake_factory(), out_dir=tmp_path / "run", resume=True)
    message = error.value.message
    assert first.summary.spec_hash[:12] in message and program_hash(longer)[:12] in message
    # the same through the `epochs` argument
    with pytest.raises(MinispecError):
        run_experiment(tiny, backend_factory=fake_factory(), epochs=4, out_dir=tmp_path / "run", resume=True)


def test_resume_of_an_empty_folder_starts_afresh(tiny, tmp_path):
    result = run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "new", resume=True)
    assert result.summary.complete


def test_spec_hash_ignores_location_and_trial_count(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a = write_spec(tmp_path / "one", TINY)
    b = write_spec(tmp_path / "two", "# moved\n\n" + TINY, name="other.mdl")
    assert a.source != b.source and program_hash(a) == program_hash(b)
    more = a.model_copy(update={"train": a.train.model_copy(update={"trials": 7})})
    assert program_hash(more) == program_hash(a)
    lr = write_spec(tmp_path / "two", TINY.replace("lr=0.5", "lr=0.25"), name="lr.mdl")
    assert program_hash(lr) != program_hash(a)


def test_run_folder_files(two_heads, tmp_path):
    result = run_experiment(two_heads, backend_factory=fake_factory(), out_dir=tmp_path / "run")
    folder = result.folder
    assert (folder / "spec_hash.txt").read_text().strip() == program_hash(two_heads) == result.summary.spec_hash
    assert json.loads((folder / "program.json").read_text())["name"] == "two_heads"
    with safe_open(str(folder / "weights" / "trial_000.safetensors"), "pt") as handle:
        assert handle.metadata()["spec_hash"] == program_hash(two_heads)
    header = (folder / "curves.csv").read_text().splitlines()[0].split(",")
    assert header == ["trial", "epoch", "step", "lr", "train_loss", "test_loss", "train_error", "test_error",
                      "loss_out", "train_error_out", "test_error_out", "loss_aux", "train_error_aux",
                      "test_error_aux", "wall_time", "diverged"]
    assert len((folder / "curves.csv").read_text().splitlines()) == 1 + 2 * 6
    png = (folder / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    loaded = load_run(folder)
    assert loaded.summary == result.summary and loaded.trials == result.trials
    assert loaded.program == result.program


def test_events_in_order(tiny, tmp_path):
    seen = []
    run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run", progress=seen.append,
                   vectorize=False)
    kinds = [type(e).__name__ for e in seen]
    per_trial = ["TrialStarted"] + ["EpochFinished"] * 3 + ["TrialFinished"]
    assert kinds == ["RunStarted"] + per_trial * 2 + ["RunFinished"]
    assert seen[0].pending == (0, 1) and seen[-1].summary.complete


@pytest.mark.parametrize("bad", [{"trials": 0}, {"epochs": -1}, {"chunk": 0, "vectorize": True}])
def test_bad_arguments(tiny, tmp_path, bad):
    with pytest.raises(MinispecError):
        run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run", **bad)


def test_factory_with_generators_gets_one_per_trial(tiny, tmp_path):
    from minispec.experiment.seeding import torch_seed

    seen = []

    def make(program, states, device, generators=None):
        seen.append([g.initial_seed() for g in generators])
        return fake_factory()(program, states, device)

    run_experiment(tiny, backend_factory=make, trials=3, out_dir=tmp_path / "run", vectorize=True, chunk=2)
    assert seen == [[torch_seed(0, 0), torch_seed(0, 1)], [torch_seed(0, 2)]]


def test_one_replica_backend_refuses_vectorize_clearly(tiny, tmp_path):
    def single(program, states, device):
        if len(states) != 1:
            raise ValueError("one replica only")
        return fake_factory()(program, states, device)

    with pytest.raises(MinispecError) as error:
        run_experiment(tiny, backend_factory=single, out_dir=tmp_path / "v", vectorize=True)
    assert "one replica only" in error.value.message and "--vectorize" in error.value.hint


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_vectorized_on_cuda_matches_cpu(tiny, tmp_path):
    cpu = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "cpu")
    gpu = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "gpu", device="cuda",
                         vectorize=None)
    assert gpu.trials[0].chunk == [0, 1, 2]
    for a, b in zip(cpu.trials, gpu.trials):
        assert b.final.test_error == pytest.approx(a.final.test_error, abs=0.03)


def test_resume_refuses_another_backend(tiny, tmp_path):
    from conftest import FakeModel

    class OtherModel(FakeModel):
        pass

    run_experiment(tiny, backend_factory=fake_factory(), trials=1, out_dir=tmp_path / "run")
    with pytest.raises(MinispecError) as error:
        run_experiment(tiny, backend_factory=lambda p, s, d: OtherModel(p, s, d), trials=2,
                       out_dir=tmp_path / "run", resume=True)
    assert "OtherModel" in error.value.message and "FakeModel" in error.value.message
