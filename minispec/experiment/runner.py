"""Trials of one Program, trained through any backend, into a run folder.

    run_experiment(program, backend_factory=..., out_dir=...) -> RunResult

Orchestration only: open the folder (`RunFolder`), plan the chunks
(`minispec.experiment.planning`), have an executor train them (`train_chunk`,
which touches no file, in this process or on Ray workers:
`minispec.experiment.executors`) and hand their finished trials to the
folder, which is their one writer. The runner never knows which backend it drives, and reports
through `progress` events, never by printing.

Trials are trained in chunks 0..c-1, c..2c-1, ... of the chunk size c that
the run's first start chose and recorded (run.json), with the CPU thread
count it recorded, so a resumed run computes every remaining trial as the
uninterrupted run would have, bit for bit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import replace
from itertools import groupby
from pathlib import Path

import torch

from minispec import data as datasets
from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment.executors import Executor, InProcess
from minispec.experiment.folder import RunFolder, RunResult
from minispec.experiment.planning import Plan, plan_run
from minispec.experiment.records import RunConfig
from minispec.experiment.training import (
    BackendFactory,
    Chunk,
    OneReplicaOnly,
    Provenance,
    head_names,
    main_head,
)
from minispec.ir.cost import train_flops
from minispec.ir.model import Program
from minispec.threads import ThreadChoice, choose_threads, using_threads

__all__ = ["BackendFactory", "head_names", "main_head", "run_experiment", "with_overrides"]


def with_overrides(program: Program, trials: int | None = None, epochs: int | None = None) -> Program:
    """The program with the run's trial and epoch counts written into `train`.

    Epochs change what a trial computes, so they enter the spec hash; the
    trial count does not (see `program_hash`)."""
    update: dict[str, int] = {}
    for name, value in (("trials", trials), ("epochs", epochs)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MinispecError(f"--{name} must be a positive whole number, got {value!r}", hint=f"for example --{name} 10")
        update[name] = value
    if not update:
        return program
    return program.model_copy(update={"train": program.train.model_copy(update=update)})


def run_experiment(
    program: Program,
    *,
    backend_factory: BackendFactory,
    trials: int | None = None,
    epochs: int | None = None,
    device: str | torch.device = "cpu",
    out_dir: str | Path,
    data_root: str | None = None,
    resume: bool = False,
    progress: Callable[[ev.Event], None] | None = None,
    vectorize: bool | None = None,
    chunk: int | None = None,
    max_memory: int | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Train trials 0..T-1 of `program` (T = `trials` or `program.train.trials`)
    and write the run folder `out_dir` (see `minispec.experiment.folder`).

    resume: go on with a folder of the same spec hash, skipping its finished
    trials (without it, a folder holding results is refused). vectorize: train
    trials as replicas of one model, at most `chunk` at a time and as many as
    fit `max_memory` (default: what the device has free); None: decide by the
    fixed rule of `minispec.experiment.planning`, falling back to one trial
    at a time if the backend refuses several replicas. A run whose single
    trial would not fit the memory budget, or whose files would not fit the
    disk, is refused before anything is allocated.
    executor: where the chunks train (default `InProcess()`; a `RayExecutor`
    spreads them over a cluster, see `minispec.experiment.executors`); this
    process stays the one writer of the folder either way.
    Raises MinispecError for bad arguments, a folder that would be
    overwritten or that another run is writing, a spec hash that does not
    match on resume, or a resume that asks for another chunking.
    """
    program = with_overrides(program, trials, epochs)
    device = torch.device(device)
    emit = progress or (lambda event: None)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise MinispecError(f"--chunk must be a positive whole number, got {chunk!r}", hint="for example --chunk 10")

    datasets.check_sizes(program.data.name, dict(program.data.options), data_root)  # before any file is written
    executor = executor or InProcess()
    with RunFolder.open(out_dir, program, resume=resume) as folder:
        planned = folder.planned
        pending = [k for k in range(planned) if k not in folder.finished]
        count = folder.config.threads if folder.config else executor.threads or torch.get_num_threads()
        budget = max_memory if max_memory is not None else executor.memory(device, count)
        plan = plan_run(program, device, len(pending), vectorize, budget, folder.path, chunk)
        slots = executor.slots(device, count)
        if chunk is None and plan.vectorize and folder.config is None and slots > 1:  # spread over the workers
            size = min(plan.chunk, math.ceil(len(pending) / slots))
            plan = replace(plan, chunk=size, reason=f"vectorized, {size} trials a chunk for {slots} {executor.name} "
                                                    f"workers")
        threads = None
        if folder.config is None:
            threads = (ThreadChoice(threads=executor.threads,
                                    reason=f"{executor.threads} CPU thread(s) per {executor.name} chunk")
                       if executor.threads is not None
                       else choose_threads(train_flops(program, program.train.batch) * plan.chunk, device.type == "cpu"))
        config, plan = _configure(folder.config, folder.spec_hash, plan, vectorize, chunk, folder.path, data_root,
                                  threads)
        with using_threads(config.threads):
            folder.start(config)
            emit(ev.RunStarted(program.name, folder.path, planned, tuple(pending), program.train.epochs,
                               program.train.evaluate, plan.vectorize, config.chunk, plan.reason))
            earlier = Provenance(frozenset(t.backend for t in folder.finished.values()),
                                 frozenset(t.data_source for t in folder.finished.values()))
            queue = list(pending)
            kept = set(folder.finished)  # trained again beside a chunk's missing trials: no events, no writes

            def shown(event: ev.Event) -> None:
                if getattr(event, "trial", None) not in kept:
                    emit(event)

            while queue:
                chunks = [Chunk(program, tuple(_whole_chunk(ids[0], config.chunk, planned)), folder.spec_hash,
                                str(device), data_root, earlier)
                          for ids in _chunks(queue, config.chunk)]
                try:
                    for work, finished in executor.map(chunks, backend_factory, config.threads, shown):
                        for trial in finished:
                            record = trial.record
                            if record.trial in kept:
                                continue
                            folder.save_trial(record, trial.state)
                            queue.remove(record.trial)
                            emit(ev.TrialFinished(record.trial, planned, record.diverged, record.diverged_epoch,
                                                  record.epochs_done, program.train.epochs,
                                                  None if record.diverged or record.final is None
                                                  else record.final.test_error,
                                                  record.wall_time))
                except OneReplicaOnly as error:
                    if vectorize:
                        raise MinispecError(
                            f"this backend cannot train {config.chunk} trials as replicas of one model: {error}",
                            hint="run without --vectorize (one trial at a time), or choose a backend that vectorizes",
                        ) from None
                    config = config.model_copy(update={"chunk": 1, "vectorized": False})  # fall back, recorded
                    folder.start(config)
            run = folder.finish()
    emit(ev.RunFinished(run.folder, run.summary))
    return run


def _chunks(queue: list[int], size: int) -> list[list[int]]:
    """The trials of `queue` grouped by their chunk k // size of the run's partition."""
    return [list(group) for _, group in groupby(queue, key=lambda k: k // size)]


def _whole_chunk(trial: int, size: int, planned: int) -> range:
    """Every trial of the partition's chunk that holds `trial`. A resumed run trains
    a partly saved chunk whole, so its missing trials get the numbers they would
    have had (a smaller batch of replicas can round differently), and keeps the
    saved ones as they are."""
    start = trial // size * size
    return range(start, min(start + size, planned))


def _configure(recorded: RunConfig | None, spec_hash: str, plan: Plan, vectorize: bool | None,
               chunk: int | None, folder: Path, data_root: str | None,
               threads: ThreadChoice | None) -> tuple[RunConfig, Plan]:
    """The run's chunking and threads: the plan's and `threads` (minispec.threads) on a first
    start, the recorded ones on a resume (refusing an explicit --vectorize or --chunk that
    differs, or a chunk that no longer fits)."""
    if recorded is None:
        root = None if data_root is None else os.path.abspath(os.path.expanduser(data_root))
        return (RunConfig(spec_hash=spec_hash, chunk=plan.chunk, vectorized=plan.vectorize, threads=threads.threads,
                          data_root=root),
                Plan(plan.vectorize, plan.chunk, f"{plan.reason}; {threads.reason}", plan.fitting))
    asked = []
    if vectorize is not None and vectorize != recorded.vectorized:
        asked.append("--vectorize" if vectorize else "--no-vectorize")
    if chunk is not None and chunk != recorded.chunk:
        asked.append(f"--chunk {chunk}")
    was = f"{'vectorized, ' + str(recorded.chunk) + ' trials at a time' if recorded.vectorized else 'one trial at a time'}"
    if asked:
        raise MinispecError(
            f"cannot resume {folder} with {' and '.join(asked)}: its trials were trained {was}, "
            "and a trial's float rounding depends on the trials trained with it",
            hint="resume without --vectorize/--chunk (the recorded chunking is used), or choose another --out",
        )
    if recorded.chunk > plan.fitting:
        raise MinispecError(
            f"cannot resume {folder}: its trials were trained {was}, but only {plan.fitting} fit the memory now",
            hint="raise --max-memory, or choose another --out",
        )
    reason = f"{was}, as recorded in run.json"
    if recorded.threads != torch.get_num_threads():
        reason += f"; {recorded.threads} CPU thread(s) as recorded (not {torch.get_num_threads()})"
    return recorded, Plan(recorded.vectorized, recorded.chunk, reason, plan.fitting)
