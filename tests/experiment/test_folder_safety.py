"""What stops a run folder from being damaged or mixed: failed starts, the lock,
the recorded chunking and threads (issues 15 and 16, run-time items)."""

import shutil

import pytest
import torch

from conftest import TINY, fake_factory, write_spec
from minispec.compiler import compile_file
from minispec.data import digits
from minispec.errors import MinispecError
from minispec.experiment import RunConfig, RunFolder, events as ev, run_experiment
from minispec.experiment.folder import read_config

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def numbers(result):
    return [t.model_dump(exclude={"wall_time": True, "records": {"__all__": {"wall_time"}}}) for t in result.trials]


def test_the_embedded_pool_sizes_are_what_the_digits_hold():
    pools = digits.pools(None)
    assert digits.pool_sizes(None) == (len(pools.train), len(pools.test), True)


def test_a_run_refused_for_its_data_writes_nothing(tmp_path):
    program = compile_file(ROOT / "specs" / "sn.mdl", ["data.train=5000", "epochs=1"])
    with pytest.raises(MinispecError) as error:
        run_experiment(program, backend_factory=fake_factory(), out_dir=tmp_path / "run")
    assert "at most 1250" in error.value.message
    assert not (tmp_path / "run").exists()


def test_a_start_that_fails_before_its_first_trial_blocks_nothing(tiny, tmp_path):
    def broken(program, states, device):
        raise MinispecError("the backend cannot be built")

    for resume in (False, True):
        with pytest.raises(MinispecError):
            run_experiment(tiny, backend_factory=broken, out_dir=tmp_path / "run", resume=resume)
    rerun = run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run")
    assert rerun.summary.complete
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(MinispecError):
        run_experiment(tiny, backend_factory=broken, out_dir=tmp_path / "run")
    resumed = run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run", resume=True)
    assert resumed.summary.complete


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tiny, tmp_path):
    holder = RunFolder.open(tmp_path / "run", tiny)
    for resume in (False, True):
        with pytest.raises(MinispecError) as error:
            run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run", resume=resume)
        assert "another minispec run is writing" in error.value.message
    holder.close()
    assert run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run").summary.complete


def test_the_lock_is_released_when_a_run_stops(tiny, tmp_path):
    def interrupt(event):
        if isinstance(event, ev.TrialFinished):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run", progress=interrupt,
                       vectorize=False)
    RunFolder.open(tmp_path / "run", tiny, resume=True).close()


def _cut(tmp_path, full, keep):
    shutil.copytree(full.folder, tmp_path / "cut")
    for path in (tmp_path / "cut" / "trials").glob("*.json"):
        if int(path.stem[-3:]) >= keep:
            path.unlink()
    return tmp_path / "cut"


def test_resume_keeps_the_recorded_chunking(tiny, tmp_path):
    log = []
    full = run_experiment(tiny, backend_factory=fake_factory(log=log), trials=5, out_dir=tmp_path / "full",
                          vectorize=True, chunk=2)
    assert log == [2, 2, 1]
    assert read_config(full.folder) == RunConfig(spec_hash=full.summary.spec_hash, chunk=2, vectorized=True,
                                                 threads=torch.get_num_threads())
    cut = _cut(tmp_path, full, keep=3)  # trial 3 was trained with trial 2: their chunk trains whole again
    log.clear()
    resumed = run_experiment(tiny, backend_factory=fake_factory(log=log), trials=5, out_dir=cut, resume=True)
    assert log == [2, 1] and [t.chunk for t in resumed.trials] == [[0, 1], [0, 1], [2, 3], [2, 3], [4]]
    assert numbers(resumed)[3:] == numbers(full)[3:]


@pytest.mark.parametrize("asked", [{"vectorize": False}, {"chunk": 3}])
def test_resume_refuses_another_chunking(tiny, tmp_path, asked):
    full = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "full",
                          vectorize=True, chunk=2)
    cut = _cut(tmp_path, full, keep=1)
    with pytest.raises(MinispecError) as error:
        run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=cut, resume=True, **asked)
    assert "2 trials at a time" in error.value.message and "float rounding" in error.value.message


def test_resume_uses_the_recorded_thread_count(tiny, tmp_path):
    full = run_experiment(tiny, backend_factory=fake_factory(), trials=2, out_dir=tmp_path / "full", vectorize=False)
    cut = _cut(tmp_path, full, keep=1)
    seen, threads = [], []

    def factory(program, states, device):
        threads.append(torch.get_num_threads())
        return fake_factory()(program, states, device)

    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    try:
        resumed = run_experiment(tiny, backend_factory=factory, trials=2, out_dir=cut, resume=True,
                                 progress=seen.append)
        assert torch.get_num_threads() == before + 1  # restored after the run
    finally:
        torch.set_num_threads(before)
    assert threads == [before] and resumed.trials[1].threads == before
    assert f"{before} CPU thread(s) as recorded" in seen[0].plan
