"""Sweeps: many values of `--set` keys x many trials, trained together where shapes allow.

    plan = plan_sweep(spec, [Axis.parse("lr=0.01,0.1,1")], trials=10)
    result = run_sweep(plan, backend_factory=..., out_dir="sweeps/lr")

A point is one combination of values (a grid's product, or `--sample`'s
draws). Every point runs the same trials 0..N-1 (trial k sees the data,
initial weights, batch order and dropout masks of trial k of a lone
`minispec run --set KEY=VALUE`).

Points whose Programs differ only in values that change no shape (learning
rate, momentum, weight decay, betas, loss weights, dropout probability, the
schedule and its factors, epochs, seed, initial-weight scheme) form one group
and train as ONE model of G*N replicas (`minispec.backends.replicas`); keys
that change shapes (widths, depth, batch, data sizes) make separate groups,
each chunked as `run` chunks trials.

The sweep folder:

    sweep.json       SweepSummary: the points, their groups and chunking, the table's numbers
    sweep.csv        one row per point
    sweep.png        test error against the swept value (one key; mean ± std), or a heatmap (two keys)
    points/p000_lr=0.01/   a run folder per point (compare, eval and plot work on each)

Resume: a killed sweep run again with `resume=True` keeps every finished
trial and retrains each chunk that holds an unfinished one, whole, so every
trial gets the numbers of an uninterrupted sweep, bit for bit.
"""

from __future__ import annotations

import csv
import io
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from minispec.compiler import compile_file
from minispec.errors import MinispecError, Span, remember_source
from minispec.experiment import events as ev
from minispec.experiment.folder import (RunFolder, RunResult, hashed_settings, program_hash, read_record, record_text,
                                        write_atomic)
from minispec.experiment.planning import plan_run
from minispec.experiment.records import RunConfig, SweepGroup, SweepPoint, SweepSummary
from minispec.experiment.stats import welch
from minispec.experiment.executors import Executor, InProcess
from minispec.experiment.training import BackendFactory, Chunk, OneReplicaOnly, Provenance
from minispec.ir.cost import train_flops
from minispec.ir.model import Program
from minispec.ir.ops import OPS
from minispec.render.sweep import SweepSeries

MAX_POINTS = 1000  # more points than this are refused without `yes`
MAX_TRAINING_FLOP = 1e15  # nor more training arithmetic than this (hours on a CPU)
SWEEP_FILE = "sweep.json"
SWEEP_PLOT = "sweep.png"  # the sweep's figure, in its folder


# ------------------------------------------------------------------ what to sweep


@dataclass(frozen=True)
class Axis:
    """One swept key and its values, as `--set` takes them (`lr=0.01,0.1,1`).

    `low`/`high` instead of values: a range for random search (`lr=1e-3:1`)."""

    key: str
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    source: str = ""  # the option text, for located errors
    spans: tuple[Span, ...] = ()  # where each value is written, when it comes from a spec's sweep section
    key_span: Span | None = None  # and where its key is

    @classmethod
    def parse(cls, text: str, option: str = "--grid") -> Axis:
        """`KEY=V1,V2,...` (values split at top-level commas) or, for `--range`, `KEY=LOW:HIGH`."""
        source = f"{option} {text}"
        remember_source(source, text)
        key, sep, rest = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MinispecError(f"{option} expects KEY=VALUES, got `{text}`", _span(source, text, 0, len(text)),
                                hint=f"for example {option} lr=0.01,0.1,1" if option == "--grid"
                                else f"for example {option} lr=1e-3:1")
        start = len(text) - len(rest)
        if option == "--range":
            low, colon, high = rest.partition(":")
            try:
                bounds = float(low), float(high)
            except ValueError:
                bounds = None
            if not colon or bounds is None or not all(math.isfinite(b) for b in bounds) or bounds[0] >= bounds[1]:
                raise MinispecError(f"--range {key}: expected LOW:HIGH with LOW < HIGH, got `{rest}`",
                                    _span(source, text, start, len(text)), hint=f"for example --range {key}=1e-3:1")
            return cls(key, low=bounds[0], high=bounds[1], source=source)
        values = tuple(v.strip() for v in _split_top_level(rest))
        if not rest.strip() or any(not v for v in values):
            raise MinispecError(f"{option} {key}: empty value" + ("s" if not rest.strip() else ""),
                                _span(source, text, start, len(text)),
                                hint=f"give one or more values separated by commas: {option} {key}=0.01,0.1,1")
        if len(set(values)) != len(values):
            twice = next(v for v in values if values.count(v) > 1)
            raise MinispecError(f"{option} {key}: the value `{twice}` is given twice",
                                _span(source, text, start, len(text)), hint="list every value once")
        return cls(key, values=values, source=source)

    @property
    def logarithmic(self) -> bool:
        """Rates are drawn log-uniformly: learning rates, weight decay, eps (and any positive range spanning 100x)."""
        rate = re.search(r"(^|[._])(lr|rate|learning_rate|weight_decay|wd|eps)$", self.key) is not None
        return self.low is not None and self.low > 0 and (rate or self.high / self.low >= 100)


def declared_axes(spec: str | Path, include_roots: tuple[Path, ...] = ()) -> list[Axis]:
    """The axes of the spec's `sweep { KEY V1, V2, ... }` section (none without one)."""
    from minispec.lang.files import read
    from minispec.lang.printer import format_expr

    section = read(spec, include_roots).sweep
    if section is None:
        return []
    return [Axis(st.key, tuple(format_expr(v) for v in st.values), source=str(st.key_span.file),
                 spans=tuple(v.span for v in st.values), key_span=st.key_span) for st in section.statements]


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside parentheses (`sgd(lr=0.1, momentum=0.9)` is one value)."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return parts


def _span(source: str, text: str, start: int, end: int) -> Span:
    return Span(file=source, line=1, column=start + 1, end_line=1, end_column=max(end, start + 1) + 1)


def grid_points(axes: Sequence[Axis]) -> list[dict[str, str]]:
    """Every combination of the axes' values, the last key varying fastest."""
    points: list[dict[str, str]] = [{}]
    for axis in axes:
        points = [{**point, axis.key: value} for point in points for value in axis.values]
    return points


def sample_points(axes: Sequence[Axis], count: int, seed: int) -> list[dict[str, str]]:
    """`count` random points: each key drawn uniformly in its range (log-uniformly
    for rates), from a generator seeded by the spec's seed, so the same command
    draws the same points (and a resumed sweep finds its own)."""
    rng = random.Random(seed)
    points = []
    for _ in range(count):
        point = {}
        for axis in axes:
            if axis.logarithmic:
                value = math.exp(rng.uniform(math.log(axis.low), math.log(axis.high)))
            else:
                value = rng.uniform(axis.low, axis.high)
            point[axis.key] = f"{value:.4g}"
        points.append(point)
    return points


# ------------------------------------------------------------------ planning


def graph_key(program: Program) -> str:
    """What must be equal for two Programs to train as replicas of one model:
    everything but the values that change no shape (see the module docstring)."""
    data = hashed_settings(program)
    data.pop("name", None)
    data.pop("params", None)  # their effect is in the nodes and settings already
    train = data["train"]
    train["optimizer"]["options"] = {}
    train["schedule"]["options"] = {}
    for key in ("epochs", "seed", "init"):
        train.pop(key, None)
    for loss in data["losses"]:
        loss.pop("weight", None)
    for node in data["nodes"]:
        if OPS[node["op"]].has("random"):
            node["attrs"].pop("p", None)
    return _digest(data)


def _digest(data) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SweepPlan:
    """The compiled points of a sweep, grouped into models; nothing trained yet."""

    spec: str
    keys: list[str]
    values: list[dict[str, str]]
    programs: list[Program]
    groups: list[list[int]]  # point indices of each group, in point order
    trials: int

    @property
    def name(self) -> str:
        return self.programs[0].name


def plan_sweep(
    spec: str | Path,
    axes: Sequence[Axis],
    *,
    sample: int | None = None,
    trials: int | None = None,
    epochs: int | None = None,
    overrides: Sequence[str] = (),
    include_roots: tuple[Path, ...] = (),
    vectorize: bool | None = None,
    yes: bool = False,
) -> SweepPlan:
    """Check the sweep and compile every point; raise a located MinispecError for
    an unknown key (with the nearest names), a value of the wrong type, an empty
    grid, a sweep too large to run without `yes` (estimated before compiling its
    points), or (`vectorize=True`) keys that change shapes, which cannot train
    as one model."""
    if not axes and sample is None:
        axes = declared_axes(spec, include_roots)
    if not axes:
        raise MinispecError("a sweep needs at least one --grid KEY=VALUES (or --sample N with --range KEY=LOW:HIGH), "
                            "or a `sweep { KEY V1, V2, ... }` section in the spec",
                            hint="for example: minispec sweep specs/disk.mdl --grid lr=0.01,0.1,1")
    keys = [axis.key for axis in axes]
    for i, axis in enumerate(axes):
        if axis.key in keys[:i]:
            raise MinispecError(f"the key `{axis.key}` is swept twice", _span(axis.source, axis.source, 0, 0),
                                hint="give all its values in one --grid")
    ranged = [axis for axis in axes if axis.low is not None]
    if sample is None and ranged:
        raise MinispecError(f"--range {ranged[0].key} needs --sample N (how many random points to draw)",
                            hint="or give a list of values with --grid")
    if sample is not None and len(ranged) != len(axes):
        raise MinispecError("--sample draws every key from a range: use --range KEY=LOW:HIGH, not --grid",
                            hint="for example --sample 20 --range lr=1e-3:1")
    if sample is not None and sample < 1:
        raise MinispecError(f"--sample must be a positive whole number, got {sample}")
    run_sets = [*overrides, *(f"{name}={value}" for name, value in (("trials", trials), ("epochs", epochs))
                              if value is not None)]
    base = compile_file(spec, run_sets, include_roots)
    for axis in axes:  # each key alone first: an unknown key or a bad value is named before anything else
        _compile_point(spec, run_sets, {axis.key: axis.values[0] if axis.values else _mid(axis)}, axes, include_roots)
    count = sample if sample is not None else math.prod(len(axis.values) for axis in axes)
    _check_size(base, count, yes)
    values = sample_points(axes, sample, base.train.seed) if sample is not None else grid_points(axes)
    programs = [_compile_point(spec, run_sets, point, axes, include_roots) for point in values]
    groups: dict[str, list[int]] = {}
    for index, program in enumerate(programs):
        groups.setdefault(graph_key(program), []).append(index)
    plan = SweepPlan(str(spec), keys, values, programs, list(groups.values()), base.train.trials)
    if vectorize and len(plan.groups) > 1:
        shaping = shape_keys(plan)
        raise MinispecError(
            f"--vectorize trains every point as one model, but {', '.join(f'`{k}`' for k in shaping)} "
            "change(s) the shapes of the model",
            hint="drop --vectorize: points whose shapes differ then train as separate models",
        )
    return plan


def _compile_point(spec: str | Path, run_sets: list[str], point: dict[str, str], axes: Sequence[Axis],
                   include_roots: tuple[Path, ...]) -> Program:
    """The Program of one point; an error in one of its values points into the
    `--grid` text that gave it (not into the `--set` it becomes)."""
    try:
        return compile_file(spec, [*run_sets, *(f"{k}={v}" for k, v in point.items())], include_roots)
    except MinispecError as error:
        span = error.span
        for axis in axes:
            setting = f"{axis.key}={point.get(axis.key)}"
            if span is None or span.file != f"--set {setting}" or not axis.values:
                continue
            about_key = span.column == 1  # the key itself (an unknown name), not its value
            if axis.spans:  # from the spec's sweep section: point there
                error.span = axis.key_span if about_key else axis.spans[axis.values.index(point[axis.key])]
                error.message = error.message.replace(f"--set {axis.key}", f"sweep {axis.key}")
                continue
            pieces = _split_top_level(axis.source.split(" ", 1)[1].partition("=")[2])
            which = axis.values.index(point[axis.key])
            piece = pieces[which]
            start = len(axis.key) + 1 + sum(len(v) + 1 for v in pieces[:which]) + len(piece) - len(piece.lstrip())
            shift = 0 if about_key else start - (len(axis.key) + 1)
            error.span = span.model_copy(update={"file": axis.source, "column": span.column + shift,
                                                 "end_column": span.end_column + shift})
            error.message = error.message.replace(f"--set {axis.key}", f"--grid {axis.key}")
        raise


def _mid(axis: Axis) -> str:
    return f"{(axis.low + axis.high) / 2:.4g}"


def shape_keys(plan: SweepPlan) -> list[str]:
    """The swept keys whose values change the graph (points differing in that key alone fall in different groups)."""
    group_of = {index: g for g, members in enumerate(plan.groups) for index in members}
    found = []
    for key in plan.keys:
        rest: dict[tuple, set[int]] = {}
        for index, point in enumerate(plan.values):
            others = tuple(sorted((k, v) for k, v in point.items() if k != key))
            rest.setdefault(others, set()).add(group_of[index])
        if any(len(groups) > 1 for groups in rest.values()):
            found.append(key)
    return found or list(plan.keys)


def _check_size(base: Program, points: int, yes: bool) -> None:
    """Refuse a sweep whose size or training arithmetic is out of proportion, unless asked (`yes`)."""
    train = base.train
    samples = base.data.options.get("train")
    steps = math.ceil(float(samples) / train.batch) if isinstance(samples, (int, float)) else None
    flop = None if steps is None else points * train.trials * train.epochs * steps * train_flops(base, train.batch)
    if yes or (points <= MAX_POINTS and (flop is None or flop <= MAX_TRAINING_FLOP)):
        return
    cost = f"{points:,} points x {train.trials} trials x {train.epochs} epochs"
    if flop is not None:
        cost += f", about {flop:.1e} FLOP of training"
    raise MinispecError(f"this sweep is very large: {cost}",
                        hint=f"sweep fewer values (at most {MAX_POINTS:,} points and {MAX_TRAINING_FLOP:.0e} FLOP "
                             "run without asking), or pass --yes to run it anyway")


# ------------------------------------------------------------------ running


@dataclass
class SweepResult:
    """A sweep folder read back: its summary and each point's run."""

    folder: Path
    summary: SweepSummary
    runs: list[RunResult]

    def table(self) -> str:
        return format_sweep_table(self.summary)


def point_folder(index: int, values: dict[str, str]) -> str:
    """`points/p003_lr=0.1_momentum=0.9`: readable, and safe on every file system."""
    label = "_".join(f"{k}={v}" for k, v in values.items())
    label = re.sub(r"[^A-Za-z0-9._=+-]+", "-", label)[:80]
    return f"points/p{index:03d}_{label}"


def run_sweep(
    plan: SweepPlan,
    *,
    backend_factory: BackendFactory,
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    resume: bool = False,
    progress: Callable[[ev.Event], None] | None = None,
    vectorize: bool | None = None,
    max_memory: int | None = None,
    chunk: int | None = None,
    executor: Executor | None = None,
) -> SweepResult:
    """Train every point's trials into `out_dir` (see the module docstring) and
    return the sweep read back. Raises MinispecError when `out_dir` holds a
    sweep and `resume` is not set, or holds another sweep. `chunk`: at most
    this many replicas in one model (default: as many as fit `max_memory`,
    spread over the executor's workers). `executor`: where the chunks train
    (see `minispec.experiment.executors`); this process writes every folder."""
    device = torch.device(device)
    executor = executor or InProcess()
    emit = progress or (lambda event: None)
    out = Path(out_dir)
    hashes = [program_hash(p) for p in plan.programs]
    recorded = _open_sweep(out, plan, hashes, resume)
    trials = plan.trials
    folders = [RunFolder.open(out / point_folder(i, v), p, resume=True)
               for i, (v, p) in enumerate(zip(plan.values, plan.programs))]
    try:
        threads = recorded.threads if recorded else executor.threads or torch.get_num_threads()
        if recorded:
            groups = recorded.groups
        else:
            budget = max_memory if max_memory is not None else executor.memory(device, threads)
            slots = executor.slots(device, threads) if chunk is None else 1
            groups = [_plan_group(plan, members, device, vectorize, budget, out, chunk, slots) for members in plan.groups]
        summary = SweepSummary(spec=plan.name, keys=plan.keys, trials=trials, threads=threads, groups=groups,
                               points=[SweepPoint(values=v, folder=point_folder(i, v), spec_hash=h, group=g)
                                       for g, group in enumerate(groups) for i in group.points
                                       for v, h in [(plan.values[i], hashes[i])]])
        summary = summary.model_copy(update={"points": sorted(summary.points, key=lambda p: p.folder)})
        write_atomic(out / SWEEP_FILE, record_text(summary))
        for group in groups:
            for index in group.points:
                folders[index].start(RunConfig(spec_hash=hashes[index], chunk=group.chunk,
                                               vectorized=group.vectorized, threads=summary.threads))
        pending = [(i, k) for i in range(len(folders)) for k in range(trials) if k not in folders[i].finished]
        emit(ev.RunStarted(plan.name, out, len(plan.values) * trials, tuple(range(len(pending))),
                           max(p.train.epochs for p in plan.programs), plan.programs[0].train.evaluate,
                           any(g.vectorized for g in groups), max(g.chunk for g in groups),
                           f"{len(plan.values)} points x {trials} trials as {len(groups)} model(s)",
                           pending_epochs=sum(plan.programs[i].train.epochs for i, _ in pending)))
        chunks, members_of = [], {}
        for group in groups:
            replicas = [(i, k) for i in group.points for k in range(trials)]
            for start in range(0, len(replicas), group.chunk):
                members = replicas[start:start + group.chunk]
                if all(k in folders[i].finished for i, k in members):
                    continue
                work = Chunk(plan.programs[members[0][0]], tuple(k for _, k in members), hashes[members[0][0]],
                             str(device), data_root, _provenance(folders, members),
                             points=tuple(plan.programs[i] for i, _ in members),
                             point_hashes=tuple(hashes[i] for i, _ in members))
                chunks.append(work)
                members_of[id(work)] = members
        try:
            for work, finished in executor.map(chunks, backend_factory, threads, emit):
                for (i, _), trial in zip(members_of[id(work)], finished):
                    if trial.record.trial not in folders[i].finished:
                        folders[i].save_trial(trial.record, trial.state)
                        record = trial.record
                        emit(ev.TrialFinished(record.trial, trials, record.diverged, record.diverged_epoch,
                                              record.epochs_done, record.epochs,
                                              None if record.diverged or record.final is None
                                              else record.final.test_error, record.wall_time))
        except OneReplicaOnly as error:
            raise MinispecError(f"this backend cannot train several trials as one model: {error}",
                                hint="sweep with --no-vectorize") from None
        runs = [folder.finish() for folder in folders]
    finally:
        for folder in folders:
            folder.close()
    summary = _with_statistics(summary, runs, plan, complete=True)
    write_atomic(out / SWEEP_FILE, record_text(summary))
    write_atomic(out / "sweep.csv", sweep_csv(summary))
    from minispec.render.sweep import draw_sweep

    draw_sweep(sweep_series(summary), out / SWEEP_PLOT, title=f"{plan.name}: test error per point "
               f"({trials} trial{'s' * (trials != 1)} each)")
    return SweepResult(out, summary, runs)


def _plan_group(plan: SweepPlan, members: list[int], device: torch.device, vectorize: bool | None,
                max_memory: int | None, out: Path, chunk: int | None, slots: int = 1) -> SweepGroup:
    """The chunking of one group, by `run`'s rule (`plan_run`) over its G*N replicas,
    spread over `slots` workers."""
    program = plan.programs[members[0]]
    replicas = len(members) * plan.trials
    chosen = plan_run(program, device, replicas, vectorize, max_memory, out, chunk)
    size = min(chosen.chunk, math.ceil(replicas / slots)) if chosen.vectorize else chosen.chunk
    return SweepGroup(points=members, chunk=size, vectorized=chosen.vectorize)


def _provenance(folders: list[RunFolder], members: list[tuple[int, int]]) -> Provenance:
    records = [t for i in {i for i, _ in members} for t in folders[i].finished.values()]
    return Provenance(frozenset(t.backend for t in records), frozenset(t.data_source for t in records))


def _open_sweep(out: Path, plan: SweepPlan, hashes: list[str], resume: bool) -> SweepSummary | None:
    """The recorded sweep of `out` when resuming it; None for a new one. Refuses
    to overwrite a sweep, and to resume one of other points or trials."""
    if out.exists() and not out.is_dir():
        raise MinispecError(f"{out} exists and is not a folder", hint="choose another --out")
    path = out / SWEEP_FILE
    if not path.is_file():
        if out.is_dir() and any(out.iterdir()) and not resume:
            raise MinispecError(f"{out} is not empty and holds no sweep", hint="choose another --out")
        return None
    if not resume:
        raise MinispecError(f"{out} already holds a sweep",
                            hint="pass --resume to go on with it, or choose another --out (nothing is ever overwritten)")
    recorded = read_record(path, SweepSummary)
    was = {p.folder: p.spec_hash for p in recorded.points}
    now = {point_folder(i, v): h for i, (v, h) in enumerate(zip(plan.values, hashes))}
    if was != now or recorded.trials != plan.trials:
        raise MinispecError(f"cannot resume {out}: it holds a sweep of other points, settings or trial counts",
                            hint="resume with the same spec, --grid/--sample, --set, --trials and --epochs, "
                                 "or choose another --out")
    return recorded


def _with_statistics(summary: SweepSummary, runs: list[RunResult], plan: SweepPlan, complete: bool) -> SweepSummary:
    """Each point's run summary, the best point (lowest mean test error), and Welch's test against it."""
    by_folder = {point_folder(i, v): run for i, (v, run) in enumerate(zip(plan.values, runs))}
    means = {p.folder: by_folder[p.folder].summary.test_error.mean for p in summary.points}
    ranked = [p for p in summary.points if means[p.folder] is not None]
    best = min(ranked, key=lambda p: means[p.folder], default=None)
    reference = by_folder[best.folder].final_errors() if best else []
    points = []
    for point in summary.points:
        run = by_folder[point.folder]
        test = None if best is None or point.folder == best.folder else welch(run.final_errors(), reference)
        points.append(point.model_copy(update={"summary": run.summary, "t": None if test is None else test.t,
                                               "p_value": None if test is None else test.p}))
    best_index = None if best is None else summary.points.index(best)
    return summary.model_copy(update={"points": points, "best": best_index, "complete": complete})


def load_sweep(folder: str | Path) -> SweepResult:
    """Read a sweep folder back."""
    from minispec.experiment.folder import load_run

    folder = Path(folder)
    if not (folder / SWEEP_FILE).is_file():
        raise MinispecError(f"{folder} holds no sweep (no {SWEEP_FILE})",
                            hint="run `minispec sweep SPEC --grid KEY=VALUES --out FOLDER` first")
    summary = read_record(folder / SWEEP_FILE, SweepSummary)
    return SweepResult(folder, summary, [load_run(folder / p.folder) for p in summary.points])


# ------------------------------------------------------------------ the table, CSV and plot series


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def format_sweep_table(summary: SweepSummary) -> str:
    """One row per point: its values, trials, test error mean ± std, best/worst trial, p against the best point."""
    headers = [*summary.keys, "trials", "test error (%)", "best (%)", "worst (%)", "p vs best"]
    lines = []
    for index, point in enumerate(summary.points):
        s = point.summary
        error = "-" if s is None or s.test_error.mean is None else (
            _pct(s.test_error.mean) + ("" if s.test_error.std is None else f" ± {_pct(s.test_error.std)}"))
        trials = "-" if s is None else f"{s.test_error.n}/{s.trials_planned}" + (
            f" ({s.trials_diverged} diverged)" if s.trials_diverged else "")
        p = "best" if index == summary.best else "-" if point.p_value is None else (
            f"{point.p_value:.2e}" if point.p_value < 1e-3 else f"{point.p_value:.3f}")
        lines.append([*(point.values[k] for k in summary.keys), trials, error,
                      _pct(None if s is None or s.best is None else s.best.test_error),
                      _pct(None if s is None or s.worst is None else s.worst.test_error), p])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    keys = len(summary.keys)

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < keys else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(line) for line in lines)])


def sweep_csv(summary: SweepSummary) -> str:
    """One row per point: the key values, then the statistics (errors as fractions)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*summary.keys, "trials", "diverged", "test_error_mean", "test_error_std", "best", "worst",
                     "t", "p_value", "is_best", "folder"])
    for index, point in enumerate(summary.points):
        s = point.summary

        def num(value):
            return "" if value is None else repr(value)

        writer.writerow([*(point.values[k] for k in summary.keys),
                         "" if s is None else s.test_error.n, "" if s is None else s.trials_diverged,
                         num(s and s.test_error.mean), num(s and s.test_error.std),
                         num(s and s.best and s.best.test_error), num(s and s.worst and s.worst.test_error),
                         num(point.t), num(point.p_value), int(index == summary.best), point.folder])
    return buffer.getvalue()


def sweep_series(summary: SweepSummary) -> SweepSeries:
    labels = [list(dict.fromkeys(p.values[k] for p in summary.points)) for k in summary.keys]
    for values in labels:
        if all(_number(v) is not None for v in values):
            values.sort(key=_number)
    mean, std, diverged = {}, {}, {}
    for point in summary.points:
        s = point.summary
        key = tuple(point.values[k] for k in summary.keys)
        if s is not None and s.trials_diverged:
            diverged[key] = (s.trials_diverged, s.trials_finished)
        if s is None or s.test_error.mean is None:
            continue
        mean[key], std[key] = s.test_error.mean, s.test_error.std or 0.0
    return SweepSeries(list(summary.keys), labels, mean, std, diverged)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
