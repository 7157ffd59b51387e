"""How many CPU threads the tensor kernels of a run use, and how long idle ones spin.

PyTorch starts one intra-op thread per core. Between two kernels an idle
OpenMP thread spins for a while (libgomp: 300,000 turns) before it sleeps.
With another busy process on the machine that is the worst case for small
kernels: every kernel ends at a barrier where the thread that finished first
spins on a core while the one it waits for is queued behind the other
process, so a step costs scheduler time slices instead of microseconds
(disk, 2 cores, two busy processes: 5x slower with two threads than on a
quiet machine; see docs/performance.md). Sleeping at once
(`OMP_WAIT_POLICY=PASSIVE`) is no cure: waking a sleeping thread costs more
than a small kernel, and on a quiet virtual machine it made the same run
2x slower. Two settings, both here:

- `bound_idle_spin()`: idle pool threads spin for SPIN_COUNT turns (about
  the gap between two kernels of a step) and then sleep (`GOMP_SPINCOUNT`),
  so a quiet machine keeps its speed and a waiting thread soon gives a
  contended core back. OpenMP reads it once, when torch is imported, so the
  CLI calls this before anything imports torch; it never overrides a policy
  or count the user set.
- `choose_threads(...)`: a run's thread count, chosen once before training
  from the cores this process may use, the cores other processes keep busy
  (a 0.1 s look at /proc/stat), and the size of a training step:

      threads = min(torch's count, cores free, 1 if a step of all replicas is
                    under SMALL_STEP_FLOPS)

  A user's OMP_NUM_THREADS or MKL_NUM_THREADS is taken as it is.

Which count is chosen can change float rounding: kernels that split a sum
between threads (convolutions, BatchNorm statistics, large matmuls) add in
another order. The count is therefore chosen once per run and recorded with
it, and a resumed run uses the recorded count. The spin bound changes no
number, only when a waiting thread sleeps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
SPIN_COUNT = "2000"  # turns (a few microseconds) an idle libgomp thread spins before it sleeps
USER_COUNTS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
SMALL_STEP_FLOPS = 2e6  # below this, a step of all replicas gains nothing from a second thread
PROBE_SECONDS = 0.1


def bound_idle_spin(environ: dict[str, str] | None = None) -> None:
    """Make idle OpenMP threads sleep after a short spin, unless the user chose a wait setting.

    Effective only before torch is imported (OpenMP reads it at start-up)."""
    env = os.environ if environ is None else environ
    if not any(env.get(name) for name in WAIT_SETTINGS):
        env["GOMP_SPINCOUNT"] = SPIN_COUNT


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str


def usable_cores() -> list[int]:
    """The CPUs this process may run on (its affinity mask; all of them where there is none)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def busy_cores(cpus: list[int], seconds: float = PROBE_SECONDS) -> float:
    """How many of `cpus` other processes keep busy, measured over `seconds`.

    The non-idle time of those CPUs in /proc/stat (steal time included: a
    hypervisor that takes a core also takes it from us), less this process's
    own CPU time, per second. Without /proc/stat: the one-minute load average."""
    before = _cpu_jiffies(cpus)
    if before is None:
        try:
            return min(float(len(cpus)), os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    own = _own_seconds()
    start = time.perf_counter()
    time.sleep(seconds)
    after = _cpu_jiffies(cpus)
    elapsed = time.perf_counter() - start
    own = _own_seconds() - own
    if after is None or elapsed <= 0:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    others = (after - before) / tick - own
    return max(0.0, min(float(len(cpus)), others / elapsed))


def choose_threads(step_flops: float, cpu: bool = True, *, busy: float | None = None,
                   cores: int | None = None, default: int | None = None) -> ThreadChoice:
    """The thread count for a run whose training step (all replicas) costs `step_flops`.

    `busy`, `cores` and `default` (torch's count) are measured when not given."""
    import torch

    default = torch.get_num_threads() if default is None else default
    if not cpu:
        return ThreadChoice(default, f"{default} CPU thread(s): the kernels run on the device")
    set_by_user = [name for name in USER_COUNTS if os.environ.get(name)]
    if set_by_user:
        return ThreadChoice(default, f"{default} CPU thread(s), as {set_by_user[0]} asks")
    if default == 1:
        return ThreadChoice(1, "1 CPU thread, as torch is set")
    if step_flops < SMALL_STEP_FLOPS:
        return ThreadChoice(1, f"1 CPU thread: a step is {step_flops / 1e6:.2f} MFLOP, too small to share")
    cpus = usable_cores()
    cores = len(cpus) if cores is None else cores
    busy = busy_cores(cpus) if busy is None else busy
    free = max(1, min(cores, int(cores - busy + 0.5)))
    threads = max(1, min(default, free))
    return ThreadChoice(threads, f"{threads} CPU thread(s): {cores} core(s), about {busy:.1f} kept busy by "
                                 f"other processes")


@contextmanager
def using_threads(count: int) -> Iterator[None]:
    """Run the block with `count` torch CPU threads, restoring the previous count after."""
    import torch

    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _cpu_jiffies(cpus: list[int]) -> int | None:
    """Non-idle clock ticks of `cpus` since boot (user, nice, system, irq, softirq, steal)."""
    wanted = {f"cpu{c}" for c in cpus}
    total, seen = 0, 0
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                name, *fields = line.split()
                if name not in wanted:
                    continue
                ticks = [int(f) for f in fields[:8]]
                total += sum(ticks) - ticks[3] - ticks[4]  # less idle and iowait
                seen += 1
    except (OSError, ValueError):
        return None
    return total if seen else None


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system
