"""Where the chunks of a run train: in this process (the default), or on a Ray cluster.

    run_experiment(..., executor=InProcess())                 # needs nothing more
    run_experiment(..., executor=RayExecutor(address=None))   # `--executor ray [--ray-address ADDR]`

The unit of work is a `training.Chunk`: trials of one program trained as the
replicas of one model. An executor trains the chunks it is handed and yields
each one's finished trials (records and weights) as it completes; it never
writes a file. The runner, in the driver process, is the one writer of the
run folder, so a run gives the same folder whichever executor trained it,
and on the CPU, with the same chunking and threads, the same numbers bit for
bit (each trial depends on its index only).

On Ray a chunk is one task (`num_cpus` = its CPU threads; with a CUDA device
also `num_gpus=1`). A worker process that dies is replaced and its task run
again by Ray, at most `max_retries` times; the trial records and their
weights come back through Ray's object store, as JSON text and safetensors
bytes, never as pickled model files. Progress events of every worker reach
the driver through one small actor, so one bar counts all trials. See
docs/cluster.md.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment.records import TrialRecord
from minispec.experiment.training import BackendFactory, Chunk, FinishedTrial, train_chunk

Emit = Callable[[ev.Event], None]

INSTALL_RAY = "pip install 'minispec[ray]'   (or: pip install ray)"
CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's address before giving up
EVENT_FLUSH = 0.25  # seconds between two batches of a worker's progress events


@dataclass
class WorkerTime:
    """What one worker process did in this run: chunks and trials trained, seconds spent."""

    worker: str
    chunks: int = 0
    trials: int = 0
    seconds: float = 0.0


class Executor:
    """Trains chunks and yields their finished trials; writes nothing. The base is
    what every executor shares; `InProcess` and `RayExecutor` train."""

    name = "executor"
    threads: int | None = None  # CPU threads of a chunk on a first start; None: this process's count

    def slots(self, device: torch.device, threads: int) -> int:
        """How many chunks train at the same time."""
        return 1

    def memory(self, device: torch.device, threads: int) -> int | None:
        """The memory budget of one chunk (None: what this process's device has free)."""
        return None

    def map(self, chunks: Sequence[Chunk], backend_factory: BackendFactory, threads: int,
            emit: Emit) -> Iterator[tuple[Chunk, list[FinishedTrial]]]:
        """Train `chunks`; yield each with its finished trials as soon as it is done."""
        raise NotImplementedError

    def workers(self) -> list[WorkerTime]:
        """Per worker process: what it trained in this run, and how long it took."""
        return []

    def close(self) -> None:
        """Let go of what the executor holds (a Ray connection)."""


class InProcess(Executor):
    """Train the chunks one after the other in this process: the default. The runner
    sets the thread count around it: `threads` on a first start (None: this
    process's count; 1 reproduces what a Ray task with one CPU computes)."""

    name = "in-process"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def map(self, chunks: Sequence[Chunk], backend_factory: BackendFactory, threads: int,
            emit: Emit) -> Iterator[tuple[Chunk, list[FinishedTrial]]]:
        for chunk in chunks:
            yield chunk, train_chunk(chunk, backend_factory, emit)


def import_ray():
    """The `ray` module, or one MinispecError saying what to install."""
    try:
        import ray
    except ImportError:
        raise MinispecError("--executor ray needs Ray, which is not installed",
                            hint=f"install it with: {INSTALL_RAY}") from None
    return ray


class RayExecutor(Executor):
    """Train the chunks as Ray tasks, all submitted at once, and yield them as they finish.

    address: a cluster's `host:port` (or `ray://host:port`); None takes
    RAY_ADDRESS, and without it a local Ray is started (and stopped by
    `close`) with `local_cpus` CPUs (None: the cores Ray counts on this
    machine, cgroup quotas included), so at most that many one-thread
    chunks train at once. max_retries: how often Ray runs a chunk again
    whose worker process died. threads: CPU threads (and Ray CPUs) per
    chunk on a first start; a resumed run uses the count its first start
    recorded.
    """

    name = "ray"

    def __init__(self, address: str | None = None, max_retries: int = 3, threads: int = 1,
                 local_cpus: int | None = None):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.max_retries = max_retries
        self.threads = threads
        self.local_cpus = local_cpus
        self._connected = False  # whether this executor called ray.init (and so shuts it down)
        self._times: dict[str, WorkerTime] = {}
        self._inbox = None  # the progress actor, started by the first map and kept for the next ones
        self._submitted = 0  # chunks submitted so far: numbers them across maps, so that the events of
        # an earlier, interrupted map still arriving are never shown for another chunk

    def connect(self):
        """Connect to the cluster (or start a local Ray) once; return the ray module."""
        ray = import_ray()
        if ray.is_initialized():
            return ray
        options = {"logging_level": "ERROR", "log_to_driver": False, "include_dashboard": False}
        if self.address is None:
            ray.init(address="local", num_cpus=self.local_cpus, **options)
            self._connected = True
            return ray
        _check_reachable(self.address)
        options.pop("include_dashboard")
        try:
            ray.init(address=self.address, **options)
            self._connected = True
        except Exception as error:  # Ray raises ConnectionError, RuntimeError or its own types here
            raise MinispecError(f"cannot connect to the Ray cluster at {self.address}: {error}",
                                hint="check the address (ray status on the head prints it) and that the "
                                     "cluster runs the same Ray and Python versions") from None
        return ray

    def _resources(self, device: torch.device) -> dict[str, float]:
        """The cluster's resources; one error, at once, when a CUDA run meets a cluster without
        GPUs (its tasks would wait for one forever)."""
        resources = self.connect().cluster_resources()
        if device.type == "cuda" and resources.get("GPU", 0) < 1:
            raise MinispecError(f"the Ray cluster at {self.address or 'this machine'} has no GPU, and --device cuda "
                                "asks one GPU for each task",
                                hint="start its workers with GPUs (`ray start ... --num-gpus N`), "
                                     "or run with --device cpu")
        return resources

    def slots(self, device: torch.device, threads: int) -> int:
        resources = self._resources(device)
        if device.type == "cuda":
            return int(resources["GPU"])
        return max(1, int(resources.get("CPU", 1)) // max(1, threads))

    def memory(self, device: torch.device, threads: int) -> int | None:
        """What one task may use: a worker's free device memory (a GPU's), or its node's
        available memory shared by the tasks that run there at once."""
        self._resources(device)
        ray = self.connect()
        probe = ray.remote(_free_memory).options(**self.task_options(device, threads))
        try:
            free, cpus = ray.get(probe.remote(str(device)), timeout=120)
        except ray.exceptions.GetTimeoutError:
            raise MinispecError(f"the Ray cluster at {self.address or 'this machine'} ran no task within 120 s "
                                f"(it needs {self.resources(device, threads)} free)",
                                hint="check `ray status`: are workers with these resources up?") from None
        if device.type == "cuda":
            return free
        return free * threads // max(threads, cpus)

    @staticmethod
    def resources(device: torch.device, threads: int) -> dict[str, int]:
        """What one chunk's task asks Ray for: its CPU threads, and one GPU on a CUDA device
        (Ray then sets CUDA_VISIBLE_DEVICES, so the task sees its GPU as `cuda`)."""
        return {"num_cpus": threads, "num_gpus": 1 if device.type == "cuda" else 0}

    def task_options(self, device: torch.device, threads: int) -> dict:
        """The options of a chunk's task (and of the memory probe, which must land on the same kind of worker)."""
        return {**self.resources(device, threads), "max_retries": self.max_retries}

    def map(self, chunks: Sequence[Chunk], backend_factory: BackendFactory, threads: int,
            emit: Emit) -> Iterator[tuple[Chunk, list[FinishedTrial]]]:
        if not chunks:
            return
        ray = self.connect()
        device = torch.device(chunks[0].device)
        if self._inbox is None:  # one actor (one worker process) for all the runs of a compare or a sweep
            self._inbox = ray.remote(_Inbox).options(num_cpus=0).remote()
        inbox, first = self._inbox, self._submitted
        self._submitted += len(chunks)
        task = ray.remote(_train_on_worker).options(**self.task_options(device, threads), retry_exceptions=False)
        running = {task.remote(chunk, first + i, backend_factory, threads, inbox): first + i
                   for i, chunk in enumerate(chunks)}
        shown: dict[int, int] = {}  # chunk -> events forwarded; a chunk run again replays the same sequence

        def forward_events() -> None:
            for index, number, event in ray.get(inbox.take.remote()):
                if index in running.values() and number >= shown.get(index, 0):
                    shown[index] = number + 1
                    emit(event)

        try:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=EVENT_FLUSH)
                forward_events()
                for ref in ready:
                    chunk = chunks[running[ref] - first]
                    worker, seconds, finished = self._result(ray, ref, chunk)
                    forward_events()  # the task handed its last events over before it returned
                    del running[ref]
                    times = self._times.setdefault(worker, WorkerTime(worker))
                    times.chunks += 1
                    times.trials += len(finished)
                    times.seconds += seconds
                    yield chunk, finished
        finally:
            for ref in running:  # interrupted, or a chunk failed: stop the others
                ray.cancel(ref, force=True)

    def _result(self, ray, ref, chunk: Chunk) -> tuple[str, float, list[FinishedTrial]]:
        try:
            worker, seconds, trials = ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None  # a MinispecError or OneReplicaOnly raised by train_chunk
            raise
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as error:
            raise MinispecError(
                f"trials {', '.join(map(str, chunk.trials))} lost their worker {self.max_retries + 1} times; "
                f"Ray gave up ({type(error).__name__})",
                hint="the trials finished before are saved: look for the cause (memory? `ray status`), "
                     "then go on with --resume",
            ) from None
        return worker, seconds, [_unpack(*trial) for trial in trials]

    def workers(self) -> list[WorkerTime]:
        return sorted(self._times.values(), key=lambda w: w.worker)

    def close(self) -> None:
        """Disconnect from the cluster, or stop the local Ray this executor started; a Ray
        the caller had initialized is left alone (but not the progress actor)."""
        ray = import_ray()
        if self._inbox is not None and ray.is_initialized():
            ray.kill(self._inbox)
        self._inbox = None
        if self._connected:
            ray.shutdown()
        self._connected = False


def make_executor(name: str, address: str | None = None) -> Executor:
    """The executor of `--executor NAME` (`in-process` or `ray`)."""
    if name == "ray":
        import_ray()
        return RayExecutor(address=address)
    if address is not None:
        raise MinispecError("--ray-address is only for --executor ray", hint="add --executor ray")
    return InProcess()


def format_workers(workers: list[WorkerTime]) -> str:
    """The per-worker table printed after a run on Ray."""
    if not workers:
        return ""
    width = max(len("worker"), *(len(w.worker) for w in workers))
    lines = [f"{'worker':<{width}}  chunks  trials  time (s)", f"{'-' * width}  ------  ------  --------"]
    lines += [f"{w.worker:<{width}}  {w.chunks:>6}  {w.trials:>6}  {w.seconds:>8.1f}" for w in workers]
    return "\n".join(lines)


def _check_reachable(address: str) -> None:
    """Fail in seconds, naming the address, when nothing listens there (ray.init would retry for minutes).

    The address is checked as Ray will dial it (Ray turns 127.0.0.1 into this
    machine's network address, and `auto` into the cluster it finds)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        dialled = canonicalize_bootstrap_address(address)
    except Exception:  # an address Ray cannot parse, or a Ray without this helper: check it as written
        dialled = address
    if dialled is None:  # `local`: Ray starts one
        return
    hostport = dialled.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise MinispecError(f"the Ray address `{address}` is not host:port", hint="for example --ray-address 10.0.0.5:6379")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        seen = "" if hostport == address else f" (dialled as {hostport})"
        raise MinispecError(f"cannot reach the Ray cluster at {address}{seen}: {error.strerror or error}",
                            hint="start it with `ray start --head` there, or check the address and port "
                                 "(RAY_ADDRESS, --ray-address)") from None


class _Inbox:
    """A Ray actor holding progress events until the driver takes them."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, ev.Event]] = []  # (chunk, number within the chunk, event)

    def add(self, events: list[tuple[int, int, ev.Event]]) -> None:
        self.events.extend(events)

    def take(self) -> list[tuple[int, int, ev.Event]]:
        events, self.events = self.events, []
        return events


def _train_on_worker(chunk: Chunk, index: int, backend_factory: BackendFactory, threads: int, inbox) -> tuple:
    """The Ray task: train chunk `index` with `threads` CPU threads; return each trial as
    (record JSON, safetensors bytes or None for a diverged trial) with this worker's
    name and its seconds. Progress events go to `inbox` numbered in order, so the
    driver can skip those a retried chunk sends again."""
    import ray
    from safetensors.torch import save

    torch.set_num_threads(threads)
    started = time.perf_counter()
    batch: list[tuple[int, int, ev.Event]] = []
    flushed = time.perf_counter()

    def emit(event: ev.Event) -> None:
        nonlocal flushed
        batch.append((index, next(numbers), event))
        if time.perf_counter() - flushed >= EVENT_FLUSH:
            inbox.add.remote(list(batch))  # calls from one worker arrive in order
            batch.clear()
            flushed = time.perf_counter()

    numbers = itertools.count()
    finished = train_chunk(chunk, backend_factory, emit)
    ray.get(inbox.add.remote(list(batch)))  # all events are in before the result
    trials = [(trial.record.model_dump_json(),
               None if trial.state is None else save({k: v.detach().cpu().contiguous() for k, v in trial.state.items()}))
              for trial in finished]
    worker = f"{ray.util.get_node_ip_address()} pid {os.getpid()}"
    return worker, time.perf_counter() - started, trials


def _unpack(record: str, weights: bytes | None) -> FinishedTrial:
    """A finished trial back from a worker: its typed record and its state."""
    from safetensors.torch import load

    return FinishedTrial(TrialRecord.model_validate_json(record), None if weights is None else load(weights))


def _free_memory(device: str) -> tuple[int, int]:
    """On a worker: its free memory for `device`, and its node's CPU count."""
    from minispec.ir.cost import available_memory

    return available_memory("cuda" if device.startswith("cuda") else "cpu"), os.cpu_count() or 1
