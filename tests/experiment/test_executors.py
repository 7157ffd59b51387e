"""The executor choice without a cluster: the default in-process executor, the
clear errors of `--executor ray` when Ray is missing or the cluster cannot be
reached, and what a CUDA run asks Ray for (checked against a stand-in for
Ray's API, as this machine has no GPU). (Runs on a real Ray cluster: test_ray.py.)"""

from __future__ import annotations

import sys
import time

import pytest
import torch
from click.testing import CliRunner

from minispec.cli import main
from minispec.errors import MinispecError
from minispec.experiment import run_experiment
from minispec.experiment.executors import InProcess, RayExecutor, WorkerTime, format_workers
from minispec.experiment.training import Chunk
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


class Submitted(Exception):
    """Raised by the stand-in when a chunk's task is submitted: the request is all these tests look at."""


class StandInRay:
    """The part of Ray's API that `RayExecutor` calls before a chunk trains, recording
    the options of every remote function; a cluster of `resources`, whose workers
    report `free` bytes of memory and `cpus` cores."""

    def __init__(self, resources: dict, free: int = 8 << 30, cpus: int = 16):
        self.resources, self.free, self.cpus = resources, free, cpus
        self.requests: dict[str, dict] = {}

    def cluster_resources(self) -> dict:
        return self.resources

    def remote(self, function):
        ray = self

        class Remote:
            def options(self, **options):
                ray.requests[function.__name__] = options
                return self

            def remote(self, *args):
                if function.__name__ == "_train_on_worker":
                    raise Submitted
                return function.__name__

        return Remote()

    def get(self, ref, timeout=None):
        assert ref == "_free_memory"
        return self.free, self.cpus


def stand_in(monkeypatch, resources: dict, **worker) -> StandInRay:
    ray = StandInRay(resources, **worker)
    monkeypatch.setattr(RayExecutor, "connect", lambda self: ray)
    return ray


def test_a_cuda_chunk_asks_ray_for_one_gpu_and_its_threads(tiny, monkeypatch):
    ray = stand_in(monkeypatch, {"CPU": 64.0, "GPU": 8.0})
    executor = RayExecutor(address="10.0.0.5:6379", max_retries=2)
    cuda = torch.device("cuda")
    assert executor.slots(cuda, 1) == 8  # one chunk per GPU at once
    assert executor.memory(cuda, 1) == 8 << 30  # a GPU's free memory, as a worker reports it
    assert ray.requests["_free_memory"] == {"num_cpus": 1, "num_gpus": 1, "max_retries": 2}
    with pytest.raises(Submitted):
        next(executor.map([Chunk(tiny, (0, 1), "hash", device="cuda")], None, 1, lambda event: None))
    assert ray.requests["_train_on_worker"] == {"num_cpus": 1, "num_gpus": 1, "max_retries": 2,
                                                "retry_exceptions": False}


def test_a_cuda_run_on_ray_reaches_its_tasks_without_a_gpu_on_the_driver(tiny, monkeypatch, tmp_path):
    """The runner plans a CUDA run on Ray from the cluster's answers alone: the driver needs no GPU."""
    ray = stand_in(monkeypatch, {"CPU": 64.0, "GPU": 8.0})
    events = []
    with pytest.raises(Submitted):
        run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run", trials=16, device="cuda",
                       executor=RayExecutor(address="10.0.0.5:6379"), progress=events.append)
    assert ray.requests["_train_on_worker"]["num_gpus"] == 1
    assert events[0].chunk == 2 and "2 trials a chunk for 8 ray workers" in events[0].plan  # 16 trials, 8 GPUs


def test_a_cpu_chunk_asks_ray_for_its_threads_and_no_gpu(tiny, monkeypatch):
    ray = stand_in(monkeypatch, {"CPU": 8.0}, free=12 << 30, cpus=8)
    executor = RayExecutor(address="10.0.0.5:6379")
    cpu = torch.device("cpu")
    assert executor.slots(cpu, 2) == 4  # 8 CPUs, 2 threads a chunk
    assert executor.memory(cpu, 2) == 3 << 30  # the node's memory shared by its 4 chunks at once
    with pytest.raises(Submitted):
        next(executor.map([Chunk(tiny, (0, 1), "hash")], None, 2, lambda event: None))
    assert ray.requests["_train_on_worker"] == {"num_cpus": 2, "num_gpus": 0, "max_retries": 3,
                                                "retry_exceptions": False}


def test_a_cuda_run_on_a_cluster_without_gpus_is_one_error_at_once(monkeypatch):
    ray = stand_in(monkeypatch, {"CPU": 64.0})
    executor = RayExecutor(address="10.0.0.5:6379")
    for ask in (executor.slots, executor.memory):
        with pytest.raises(MinispecError, match=r"the Ray cluster at 10.0.0.5:6379 has no GPU, and --device cuda"):
            ask(torch.device("cuda"), 1)
    assert ray.requests == {}  # nothing was submitted that would wait for a GPU
