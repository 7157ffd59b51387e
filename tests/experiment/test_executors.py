"""The executor choice without a cluster: the default in-process executor, the
clear errors of `--executor ray` when Ray is missing or the cluster cannot be
reached. (Runs on a real Ray cluster: test_ray.py.)"""

from __future__ import annotations

import sys
import time

import pytest
from click.testing import CliRunner

from minispec.cli import main
from minispec.experiment import run_experiment
from minispec.experiment.executors import InProcess, format_workers, WorkerTime
from tests.experiment.conftest import TINY, fake_factory


@pytest.fixture
def tiny_spec_path(tmp_path):
    path = tmp_path / "tiny.mdl"
    path.write_text(TINY)
    return path


def test_the_in_process_executor_is_the_default_and_records_its_threads(tiny, tmp_path):
    default = run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "a", trials=3, chunk=2)
    explicit = run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "b", trials=3, chunk=2,
                              executor=InProcess(threads=1))
    assert [t.final for t in default.trials] == [t.final for t in explicit.trials]
    assert [t.chunk for t in explicit.trials] == [[0, 1], [0, 1], [2]]
    assert {t.threads for t in explicit.trials} == {1}


def test_executor_ray_without_ray_installed_is_one_line_saying_what_to_install(tiny_spec_path, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    result = CliRunner().invoke(main, ["run", str(tiny_spec_path), "--executor", "ray", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == "error: --executor ray needs Ray, which is not installed"
    assert "pip install 'minispec[ray]'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_an_unreachable_cluster_is_one_error_naming_the_address_within_seconds(tiny_spec_path, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    from ray._private import ray_constants

    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # Ray dials 127.0.0.1 as written
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", str(tiny_spec_path), "--executor", "ray", "--ray-address", "127.0.0.1:1",
                                       "--out", str(tmp_path / "run")])
    assert time.monotonic() - started < 15
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: cannot reach the Ray cluster at 127.0.0.1:1")
    assert "hint:" in result.output and "Traceback" not in result.output


def test_ray_address_without_executor_ray_is_refused(tiny_spec_path, tmp_path):
    result = CliRunner().invoke(main, ["run", str(tiny_spec_path), "--ray-address", "127.0.0.1:6379",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "--ray-address is only for --executor ray" in result.output


def test_the_per_worker_table():
    table = format_workers([WorkerTime("10.0.0.5 pid 7", 2, 10, 31.25), WorkerTime("10.0.0.6 pid 9", 1, 5, 15.0)])
    assert table.splitlines() == [
        "worker          chunks  trials  time (s)",
        "--------------  ------  ------  --------",
        "10.0.0.5 pid 7       2      10      31.2",
        "10.0.0.6 pid 9       1       5      15.0",
    ]
    assert format_workers([]) == ""
