"""Faults during a run, for real (issue 15): the disk filling up at a write,
the folder removed under the run. Each ends in one clear MinispecError, and
the folder `--resume` then completes to the numbers of an uninterrupted run."""

import errno
import shutil

import pytest

from conftest import fake_factory
from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment import folder as run_folder
from minispec.experiment import run_experiment


def numbers(result):
    return [t.model_dump(exclude={"wall_time": True, "records": {"__all__": {"wall_time"}}}) for t in result.trials]


def full_disk_at(monkeypatch, call: int, what: str):
    """Make the `call`-th write (0-based) of `what` (the records, or the weights) fail with ENOSPC."""
    calls = []
    if what == "records":
        real = run_folder.write_atomic

        def write(path, data):
            calls.append(path)
            if len(calls) - 1 == call:
                # a part of the file reached the disk before it filled up
                (path.parent / f".{path.name}.1.tmp").write_text("half")
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, data)

        monkeypatch.setattr(run_folder, "write_atomic", write)
    else:
        from minispec.backends import checkpoint

        real = checkpoint.save_file

        def save(tensors, filename, metadata=None):
            calls.append(filename)
            if len(calls) - 1 == call:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(tensors, filename, metadata=metadata)

        monkeypatch.setattr(checkpoint, "save_file", save)


@pytest.mark.parametrize("what, call", [("records", 6), ("weights", 1), ("records", 11)])
def test_a_full_disk_stops_the_run_cleanly_and_resume_completes_it(tiny, tmp_path, monkeypatch, what, call):
    full = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "full", vectorize=False)
    with monkeypatch.context() as patch:
        full_disk_at(patch, call, what)
        with pytest.raises(MinispecError) as error:
            run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "run", vectorize=False)
    assert "the disk is full" in error.value.message and "--resume" in error.value.hint
    resumed = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "run", resume=True)
    assert numbers(resumed) == numbers(full)
    assert resumed.summary.complete and (tmp_path / "run" / "curves.png").is_file()
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_a_folder_removed_under_the_run_is_a_clear_error(tiny, tmp_path):
    def remove(event):
        if isinstance(event, ev.TrialFinished) and event.trial == 0:
            shutil.rmtree(tmp_path / "run")

    with pytest.raises(MinispecError) as error:
        run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "run", vectorize=False,
                       progress=remove)
    assert "was removed while the run was writing it" in error.value.message
    assert not (tmp_path / "run").exists()  # never silently made again
    resumed = run_experiment(tiny, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "run", resume=True)
    assert resumed.summary.complete
