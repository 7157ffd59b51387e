"""`--executor ray` on a real Ray cluster: a head with two worker processes on
127.0.0.1, started and stopped here; and a local Ray that minispec starts itself.

Every run on Ray is compared with the same run in this process (one CPU
thread, the same chunks), which it must equal bit for bit: records, weights
files, summaries. One test kills a worker process in the middle of its chunk
(Ray runs the chunk again); one interrupts the driver and resumes in process.
The tests of this module start Ray processes, so they run one after the other
in one xdist worker (`xdist_group`); the head is stopped by the fixture's
teardown, also on failure, and no test leaves a Ray process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from minispec.backends import make_model
from minispec.cli import main
from minispec.compiler import compile_file
from minispec.experiment import events as ev
from minispec.experiment import load_run, run_experiment
from minispec.experiment.compare import compare
from minispec.experiment.executors import InProcess, RayExecutor
from minispec.experiment.tables import format_table, summary_table

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytestmark = pytest.mark.xdist_group("ray")

ROOT = Path(__file__).resolve().parents[2]
# Ray's own address lookup would name this machine's network address; these keep
# the test cluster on the loopback, and without token authentication (Ray reads
# the first when it is imported: the fixture also sets the constant it fills).
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
RUNS = {"disk": dict(trials=4, epochs=8, chunk=2), "saux": dict(trials=4, epochs=1, chunk=2)}
SETTINGS = {"disk": [], "saux": ["data.train=200", "data.test=200"]}  # small runs: the chunks, not the data, matter


factory = partial(make_model, "torch")  # travels to the workers by reference to minispec

def _descendants(pid: int) -> list[int]:
    """Processes below `pid` (Ray's workers start sessions of their own, so a process group misses them)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        above = todo.pop()
        children = [child for child, parent in parents.items() if parent == above]
        found += children
        todo += children
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _terminate_with_parent() -> None:
    """In the head's process, before exec: SIGTERM it when pytest dies (killed by a timeout,
    say), so that no Ray outlives the tests even when the teardown cannot run."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@pytest.fixture(scope="module")
def head():
    """`ray start --head --block` with 2 CPUs on 127.0.0.1; yields its address; stops it and
    every process it started (by pid) when the module's tests are done."""
    from ray._private import ray_constants

    saved = {key: os.environ.get(key) for key in LOOPBACK}
    os.environ.update(LOOPBACK)
    cluster_addresses, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    log = open(Path(temp) / "head.log", "w")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
        preexec_fn=_terminate_with_parent)
    started = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, Path(temp, "head.log").read_text()
                time.sleep(0.2)
        yield {"address": f"127.0.0.1:{port}", "pid": process.pid, "started": started}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        started += _descendants(process.pid)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        for pid in started:  # whatever outlived the head
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
        ray_constants.ENABLE_RAY_CLUSTER = cluster_addresses
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory):
    """disk and SAUX trained in this process, with one thread and chunks of 2: the reference."""
    root = tmp_path_factory.mktemp("local")
    return {name: run_experiment(compile_file(ROOT / "specs" / f"{name}.mdl", SETTINGS[name]), backend_factory=factory,
                                 out_dir=root / name, executor=InProcess(threads=1), **options)
            for name, options in RUNS.items()}


def _numbers(run) -> list[dict]:
    """Every trial record without its timings (wall time is the only thing allowed to differ)."""
    trials = []
    for trial in run.trials:
        data = trial.model_dump()
        data.pop("wall_time")
        for point in data["records"]:
            point.pop("wall_time")
        trials.append(data)
    return trials


def _same_run(ray_run, local_run) -> None:
    assert _numbers(ray_run) == _numbers(local_run)
    timings = {"wall_time", "seconds_per_trial"}
    summary = {k: v for k, v in ray_run.summary.model_dump().items() if k not in timings}
    assert summary == {k: v for k, v in local_run.summary.model_dump().items() if k not in timings}
    files = sorted(p.relative_to(ray_run.folder) for p in Path(ray_run.folder).rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(local_run.folder) for p in Path(local_run.folder).rglob("*") if p.is_file())
    for weights in (Path(local_run.folder) / "weights").iterdir():  # (safetensors orders metadata keys at random)
        ours, theirs = safe_open(str(Path(ray_run.folder) / "weights" / weights.name), "pt"), safe_open(str(weights), "pt")
        assert ours.metadata() == theirs.metadata() and sorted(ours.keys()) == sorted(theirs.keys())
        assert all(torch.equal(ours.get_tensor(name), theirs.get_tensor(name)) for name in theirs.keys())
    assert (Path(ray_run.folder) / "run.json").read_text() == (Path(local_run.folder) / "run.json").read_text()


def _leftovers(before: set[int], wait: float = 15.0) -> list[int]:
    """Processes below this one that were not there `before`, once they had `wait` seconds to end."""
    deadline = time.monotonic() + wait
    while True:
        alive = [pid for pid in _descendants(os.getpid()) if pid not in before and Path(f"/proc/{pid}").exists()
                 and (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z")]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_without_an_address_minispec_starts_a_local_ray_of_bounded_cpus_and_stops_it(local_runs, tmp_path,
                                                                                      monkeypatch):
    """Neither an address nor RAY_ADDRESS: a local Ray with `local_cpus` CPUs, started by the
    run and stopped by `close`, leaving no process behind; the run equals the local one."""
    assert not ray.is_initialized()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # no token in ~/.ray, no token mode left in this process
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's session files (short socket paths)
    monkeypatch.setenv("RAY_TMPDIR", temp)
    before = set(_descendants(os.getpid()))
    seen = {}

    def look(event):
        if isinstance(event, ev.RunStarted):
            seen["plan"] = event.plan
        if isinstance(event, ev.EpochFinished) and "cpus" not in seen:
            seen["cpus"] = ray.cluster_resources().get("CPU")
            seen["processes"] = len(_descendants(os.getpid()))

    executor = RayExecutor(local_cpus=2)
    try:
        run = run_experiment(compile_file(ROOT / "specs" / "disk.mdl"), backend_factory=factory,
                             out_dir=tmp_path / "disk", executor=executor, progress=look,
                             trials=RUNS["disk"]["trials"], epochs=RUNS["disk"]["epochs"])  # no --chunk: 2 slots
    finally:
        executor.close()
        leftovers = _leftovers(before)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    assert seen["cpus"] == 2.0 and "2 trials a chunk for 2 ray workers" in seen["plan"]
    assert seen["processes"] > 0  # Ray ran below this process...
    assert leftovers == [] and not ray.is_initialized()  # ...and is gone
    assert sorted(w.trials for w in executor.workers()) == [2, 2]
    _same_run(run, local_runs["disk"])


def test_disk_and_saux_on_two_ray_workers_equal_the_local_run_bit_for_bit(head, local_runs, tmp_path, monkeypatch):
    executor = RayExecutor(address=head["address"])
    events = []
    try:
        disk = run_experiment(compile_file(ROOT / "specs" / "disk.mdl"), backend_factory=factory,
                              out_dir=tmp_path / "disk", executor=executor, progress=events.append, **RUNS["disk"])
    finally:
        executor.close()
    _same_run(disk, local_runs["disk"])
    workers = executor.workers()
    assert sum(w.trials for w in workers) == 4 and sum(w.chunks for w in workers) == 2
    assert all(w.worker.startswith("127.0.0.1 pid ") and w.seconds > 0 for w in workers)
    # the progress of both workers reached the driver: every epoch of every trial, once
    epochs = sorted((e.trial, e.epoch) for e in events if isinstance(e, ev.EpochFinished) and e.end_of_epoch)
    assert epochs == [(k, float(e)) for k in range(4) for e in range(1, 9)]

    monkeypatch.setenv("RAY_ADDRESS", head["address"])  # honoured without --ray-address
    options = [f"--{key}={value}" for key, value in RUNS["saux"].items()] + ["--set=" + s for s in SETTINGS["saux"]]
    result = CliRunner().invoke(main, ["run", str(ROOT / "specs" / "saux.mdl"), *options, "--out", str(tmp_path / "saux"),
                                       "--executor", "ray"])
    assert result.exit_code == 0, result.output
    assert "worker" in result.output and "127.0.0.1 pid" in result.output  # the per-worker table
    _same_run(load_run(tmp_path / "saux"), local_runs["saux"])


def test_a_worker_killed_mid_chunk_is_retried_and_every_trial_has_the_local_numbers(head, tmp_path):
    spec, options = ROOT / "specs" / "disk.mdl", dict(trials=4, epochs=200, chunk=2)  # chunks of seconds: time to kill
    local = run_experiment(compile_file(spec), backend_factory=factory, out_dir=tmp_path / "local",
                           executor=InProcess(threads=1), **options)
    killed, epochs = [], []

    def kill_a_worker(event):
        if isinstance(event, ev.EpochFinished) and event.end_of_epoch:
            epochs.append(event.trial)
        if killed or not isinstance(event, ev.EpochFinished):
            return
        training = [pid for pid in _descendants(head["pid"]) if _command(pid).startswith("ray::_train_on_worker")]
        if training:
            os.kill(training[0], signal.SIGKILL)
            killed.append(training[0])

    executor = RayExecutor(address=head["address"], max_retries=2)
    try:
        run = run_experiment(compile_file(spec), backend_factory=factory, out_dir=tmp_path / "ray",
                             executor=executor, progress=kill_a_worker, **options)
    finally:
        executor.close()
    assert killed, "no worker was training when the first epoch was reported"
    assert [t.trial for t in run.trials] == [0, 1, 2, 3] and run.summary.complete
    assert len(epochs) >= 4 * 40  # every epoch reported, the killed chunk's again from its start
    _same_run(run, local)


def test_a_ray_run_interrupted_by_the_driver_resumes_in_process_to_the_same_numbers(head, local_runs, tmp_path):
    def interrupt_after_a_chunk(event):  # Ctrl-C once the first chunk's two trials are written
        if isinstance(event, ev.TrialFinished) and event.trial % 2 == 1:
            raise KeyboardInterrupt

    program = compile_file(ROOT / "specs" / "disk.mdl")
    executor = RayExecutor(address=head["address"])
    with pytest.raises(KeyboardInterrupt):
        try:
            run_experiment(program, backend_factory=factory, out_dir=tmp_path / "disk", executor=executor,
                           progress=interrupt_after_a_chunk, **RUNS["disk"])
        finally:
            executor.close()
    assert len(list((tmp_path / "disk" / "trials").glob("*.json"))) == 2
    resumed = run_experiment(program, backend_factory=factory, out_dir=tmp_path / "disk", resume=True,
                             trials=RUNS["disk"]["trials"], epochs=RUNS["disk"]["epochs"])
    _same_run(resumed, local_runs["disk"])


def test_a_run_interrupted_in_process_resumes_on_ray_to_the_same_numbers(head, local_runs, tmp_path):
    def interrupt_after_a_chunk(event):
        if isinstance(event, ev.TrialFinished) and event.trial == 1:
            raise KeyboardInterrupt

    program = compile_file(ROOT / "specs" / "disk.mdl")
    with pytest.raises(KeyboardInterrupt):
        run_experiment(program, backend_factory=factory, out_dir=tmp_path / "disk", executor=InProcess(threads=1),
                       progress=interrupt_after_a_chunk, **RUNS["disk"])
    assert len(list((tmp_path / "disk" / "trials").glob("*.json"))) == 2
    executor = RayExecutor(address=head["address"])
    try:
        resumed = run_experiment(program, backend_factory=factory, out_dir=tmp_path / "disk", resume=True,
                                 executor=executor, trials=RUNS["disk"]["trials"], epochs=RUNS["disk"]["epochs"])
    finally:
        executor.close()
    assert [w.trials for w in executor.workers()] == [2]  # only the missing chunk went to Ray
    _same_run(resumed, local_runs["disk"])


def test_a_sweep_on_ray_writes_the_in_process_sweep(head, tmp_path):
    spec = ROOT / "specs" / "disk.mdl"
    options = ["--grid", "lr=0.01,0.1", "--trials", "2", "--epochs", "2", "--chunk", "2"]
    local = CliRunner().invoke(main, ["sweep", str(spec), *options, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    on_ray = CliRunner().invoke(main, ["sweep", str(spec), *options, "--out", str(tmp_path / "ray"),
                                       "--executor", "ray", "--ray-address", head["address"]])
    assert on_ray.exit_code == 0, on_ray.output
    assert "127.0.0.1 pid" in on_ray.output
    points = sorted(p.name for p in (tmp_path / "local" / "points").iterdir())
    assert len(points) == 2 and points == sorted(p.name for p in (tmp_path / "ray" / "points").iterdir())
    for point in points:
        _same_run(load_run(tmp_path / "ray" / "points" / point), load_run(tmp_path / "local" / "points" / point))


def test_compare_on_ray_writes_the_folders_and_table_of_compare_in_process(head, tmp_path):
    specs = [ROOT / "specs" / "disk.mdl", ROOT / "specs" / "disk_sigmoid.mdl"]
    local = compare([compile_file(spec) for spec in specs], backend_factory=factory, runs_root=tmp_path / "local",
                    trials=4, epochs=4, chunk=2, executor=InProcess(threads=1))
    result = CliRunner().invoke(main, ["compare", *map(str, specs), "--trials", "4", "--epochs", "4", "--chunk", "2",
                                       "--runs", str(tmp_path / "ray"), "--executor", "ray",
                                       "--ray-address", head["address"]])
    assert result.exit_code == 0, result.output
    on_ray = [load_run(tmp_path / "ray" / Path(run.folder).name) for run in local.results]
    for ours, theirs in zip(on_ray, local.results):
        _same_run(ours, theirs)
    table = summary_table(on_ray)
    assert format_table(table) in result.output  # what was printed is the table of these folders
    untimed = {"wall_time", "folder"}
    assert [row.model_dump(exclude=untimed) for row in table] == [row.model_dump(exclude=untimed) for row in local.rows]
    assert local.rows[1].p_value is not None  # the Welch test was computed, and is the same
    assert (tmp_path / "ray" / "compare.png").stat().st_size > 0


def test_device_cuda_on_a_cluster_without_gpus_is_one_error_naming_it_in_seconds(head, tmp_path):
    """The driver needs no CUDA of its own: the error comes from the cluster's resources."""
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", str(ROOT / "specs" / "disk.mdl"), "--trials", "2", "--epochs", "1",
                                       "--device", "cuda", "--executor", "ray", "--ray-address", head["address"],
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: the Ray cluster at {head['address']} has no GPU, and --device cuda asks "
                                    "one GPU for each task")
    assert "hint:" in result.output and "Traceback" not in result.output
    assert time.monotonic() - started < 30
