"""The thread policy (minispec.threads): the rule, the probe of busy cores, and the runner applying it."""

import os
import subprocess
import sys
import time

import pytest
import torch

from minispec import threads
from minispec.backends import make_model
from minispec.compiler import compile_file
from minispec.experiment import run_experiment
from minispec.threads import SMALL_STEP_FLOPS, bound_idle_spin, choose_threads, using_threads
from tests.conftest import ROOT

BIG = 100 * SMALL_STEP_FLOPS


@pytest.fixture
def no_user_counts(monkeypatch):
    for name in threads.USER_COUNTS:
        monkeypatch.delenv(name, raising=False)


def test_idle_spin_is_bounded_unless_the_user_chose():
    env = {}
    bound_idle_spin(env)
    assert env == {"GOMP_SPINCOUNT": threads.SPIN_COUNT}
    for setting in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "infinite"}):
        env = dict(setting)
        bound_idle_spin(env)
        assert env == setting


@pytest.mark.parametrize(("busy", "cores", "default", "expected"), [
    (0.0, 2, 2, 2),   # a quiet machine: torch's count
    (0.4, 2, 2, 2),   # less than half a core taken: still free
    (1.0, 2, 2, 1),   # one busy process on two cores
    (2.0, 2, 2, 1),   # all taken: never fewer than one
    (1.0, 8, 8, 7),
    (0.0, 8, 4, 4),   # never more than torch's count
])
def test_the_count_is_the_free_cores(no_user_counts, busy, cores, default, expected):
    choice = choose_threads(BIG, busy=busy, cores=cores, default=default)
    assert choice.threads == expected
    assert f"{cores} core(s)" in choice.reason


def test_small_steps_take_one_thread(no_user_counts):
    assert choose_threads(SMALL_STEP_FLOPS / 2, busy=0.0, cores=8, default=8).threads == 1
    assert choose_threads(SMALL_STEP_FLOPS * 2, busy=0.0, cores=8, default=8).threads == 8


def test_a_count_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    choice = choose_threads(BIG, busy=2.0, cores=4, default=3)
    assert choice.threads == 3 and "OMP_NUM_THREADS" in choice.reason


def test_the_device_keeps_torchs_count(no_user_counts):
    assert choose_threads(BIG, cpu=False, busy=2.0, cores=2, default=2).threads == 2


@pytest.mark.skipif(not os.path.exists("/proc/stat") or not hasattr(os, "sched_setaffinity"),
                    reason="needs /proc/stat and CPU affinity")
def test_the_probe_sees_a_busy_core():
    core = threads.usable_cores()[-1]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(busy.pid, {core})
        time.sleep(0.3)
        seen = threads.busy_cores([core], seconds=0.3)
    finally:
        busy.kill()
        busy.wait()
    assert 0.5 <= seen <= 1.0


def test_the_probe_does_not_count_this_process(monkeypatch):
    """CPU time this process spends during the probe is not another process's load."""
    ticks = iter([1000, 1000 + 2 * os.sysconf("SC_CLK_TCK")])  # 2 s of CPU on the probed cores...
    own = iter([5.0, 7.0])  # ...all of it ours
    monkeypatch.setattr(threads, "_cpu_jiffies", lambda cpus: next(ticks))
    monkeypatch.setattr(threads, "_own_seconds", lambda: next(own))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    assert threads.busy_cores([0, 1], seconds=0.1) == 0.0


def test_using_threads_restores_the_count():
    before = torch.get_num_threads()
    with using_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_the_runner_trains_with_the_chosen_count(tmp_path, monkeypatch, no_user_counts):
    """Two free cores of which one is busy: the run trains with one thread, then torch's count is back."""
    program = compile_file(str(ROOT / "specs/disk.mdl"))
    seen = []

    def factory(program, states, device, generators=None):
        seen.append(torch.get_num_threads())
        return make_model("scratch", program, states, device, generators=generators)

    monkeypatch.setattr(threads, "busy_cores", lambda cpus, seconds=threads.PROBE_SECONDS: 1.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: [0, 1])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_experiment(program, backend_factory=factory, trials=4, epochs=1, out_dir=tmp_path / "run",
                       vectorize=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
