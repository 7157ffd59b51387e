"""Studies: the experiments behind a page of results, listed in one file and run by one command.

    study = load_study("studies/p2_disk.toml")
    for outcome in run_study(study, backends=..., tiny=False):
        print(outcome.command); print(outcome.comparison.table())

A study file (TOML) names where its runs live and a list of tables; each
table is one `minispec compare` of some specs with the same overrides:

    title = "Project 2: the disk"
    runs = "runs/results"                  # runs root, as `compare --runs`

    [[table]]
    name = "seed004"                       # --only picks tables by name
    specs = ["specs/disk_seed004.mdl"]
    trials = 10                            # optional: the specs' own otherwise
    epochs = 400                           # optional
    backend = "scratch"                    # torch (default) or scratch
    also_backend = []                      # run every spec on these too
    set = ["lr=0.5"]                       # --set overrides for every spec
    plot = "docs/img/results_seed004.png"  # the overlay (default: <runs>/<name>.png)
    readings = false                       # also read the digit heads directly (`minispec readings`)
    decision = "docs/img/decision_{spec}.png"  # also draw each run's decision map (`minispec plot decision`),
                                           # its first 4 trials; {spec} is the spec's name

A table with a `grid` is a `minispec sweep` of its one spec instead (into the
folder <runs>/<name>; `plot` is then the sweep's figure):

    [[table]]
    name = "seed001_sweep"
    specs = ["specs/disk_seed001.mdl"]
    grid = ["lr=0.05,0.1,0.5"]             # --grid KEY=VALUES (repeatable: a second key makes a heatmap)

Paths are relative to the folder the command runs in (the repository root
for the shipped studies). A table's runs (and sweeps) are reused when finished, resumed
when partial, so running a study again trains nothing new. `tiny=True`
(what CI runs) trains 1 trial of 1 epoch per spec under another runs root
and draws nothing into docs/.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment.compare import Comparison, compare
from minispec.experiment.readings import RunReadings, read_run
from minispec.experiment.runner import BackendFactory
from minispec.experiment.sweep import SWEEP_PLOT, Axis, SweepResult, plan_sweep, run_sweep

Backend = Literal["torch", "scratch"]
DECISION_PANELS = 4  # trials drawn in a study's decision map


class StudyTable(BaseModel):
    """One `minispec compare` of a study."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    title: str = ""
    specs: list[str] = Field(min_length=1)
    trials: int | None = Field(default=None, ge=1)
    epochs: int | None = Field(default=None, ge=1)
    backend: Backend = "torch"
    also_backend: list[Backend] = Field(default_factory=list)
    overrides: list[str] = Field(default_factory=list, alias="set")
    plot: str | None = None
    readings: bool = False
    decision: str | None = None
    grid: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_spec_per_sweep(self) -> "StudyTable":
        if self.grid and (len(self.specs) != 1 or self.also_backend or self.readings or self.decision):
            raise ValueError("a table with a `grid` sweeps one spec on one backend (no also_backend, readings, decision)")
        return self


class Study(BaseModel):
    """A study file: a title, the runs root, the tables in page order."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title: str
    runs: str = "runs/results"
    tables: list[StudyTable] = Field(min_length=1, alias="table")


def load_study(path: str | Path) -> Study:
    """Read and check a study file; every mistake is one MinispecError naming the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MinispecError(f"cannot read study file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise MinispecError(f"{path}: not a valid TOML file: {error}") from None
    try:
        study = Study.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise MinispecError(f"{path}: {problems}",
                            hint="a study has `title`, `runs` and [[table]] entries with `name` and `specs`") from None
    names = [t.name for t in study.tables]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise MinispecError(f"{path}: table names must differ; repeated: {', '.join(repeated)}")
    return study


def command_line(table: StudyTable, runs: str, plot: str) -> str:
    """The `minispec compare` (with a grid, `minispec sweep`) command that makes this table's rows."""
    words = ["minispec", "sweep" if table.grid else "compare", *table.specs]
    if table.backend != "torch":
        words += ["--backend", table.backend]
    for backend in table.also_backend:
        words += ["--also-backend", backend]
    for axis in table.grid:
        words += ["--grid", axis]
    if table.trials is not None:
        words += ["--trials", str(table.trials)]
    if table.epochs is not None:
        words += ["--epochs", str(table.epochs)]
    for override in table.overrides:
        words += ["--set", override]
    words += ["--out", str(Path(runs) / table.name)] if table.grid else ["--runs", runs, "--plot", plot]
    return shlex.join(words)


@dataclass
class TableOutcome:
    """What one table produced: its command, the comparison (or the sweep), and the extra readings asked for."""

    table: StudyTable
    command: str
    comparison: Comparison | None
    sweep: SweepResult | None = None
    sweep_plot: Path | None = None  # the sweep's figure, drawn where the table's `plot` says
    readings: list[RunReadings] = field(default_factory=list)
    decisions: list[Path] = field(default_factory=list)

    def text(self) -> str:
        """The table as printed by `compare` (or `sweep`)."""
        return self.sweep.table() if self.sweep else self.comparison.table()

    @property
    def plots(self) -> list[Path]:
        return [self.sweep_plot if self.sweep else self.comparison.plot, *self.decisions]


def run_study(
    study: Study,
    backends: dict[str, BackendFactory],
    *,
    only: Sequence[str] = (),
    tiny: bool = False,
    runs_root: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[ev.Event], None] | None = None,
) -> list[TableOutcome]:
    """Run (or reuse) every table of `study`, in order; `only` picks tables by name."""
    unknown = [name for name in only if name not in {t.name for t in study.tables}]
    if unknown:
        raise MinispecError(f"the study has no table {', '.join(unknown)}",
                            hint="tables: " + ", ".join(t.name for t in study.tables))
    runs = str(runs_root or (Path(study.runs) / "tiny" if tiny else study.runs))
    outcomes = []
    for table in study.tables:
        if only and table.name not in only:
            continue
        trials, epochs = (1, 1) if tiny else (table.trials, table.epochs)
        plot = str(Path(runs) / f"{table.name}.png") if tiny or table.plot is None else table.plot
        if table.grid:
            outcomes.append(_sweep_table(table, runs, plot, backends[table.backend], trials, epochs, tiny, device,
                                         progress))
            continue
        programs = [compile_file(spec, table.overrides) for spec in table.specs]
        comparison = compare(
            programs, backends={name: backends[name] for name in dict.fromkeys((table.backend, *table.also_backend))},
            runs_root=runs, trials=trials, epochs=epochs, device=device, progress=progress, plot_path=plot,
        )
        outcome = TableOutcome(table, command_line(table, runs, plot), comparison)
        if table.readings:
            outcome.readings = [read_run(result, table.backend, device) for result in comparison.results]
        if table.decision:
            from minispec.experiment.decision import decision_maps
            from minispec.render.decision import plot_decision

            for result in comparison.results:
                trials = [t.trial for t in result.trials if t.finished_well][:DECISION_PANELS]
                maps = decision_maps(result, trials, backend=table.backend, device=device)
                target = table.decision.format(spec=result.spec)
                path = Path(runs) / Path(target).name if tiny else Path(target)
                outcome.decisions.append(plot_decision(maps, path, title=f"{result.spec}: decision map"))
        outcomes.append(outcome)
    return outcomes


def _sweep_table(table: StudyTable, runs: str, plot: str, backend: BackendFactory, trials: int | None,
                 epochs: int | None, tiny: bool, device: str | torch.device,
                 progress: Callable[[ev.Event], None] | None) -> TableOutcome:
    """A grid table: the sweep into <runs>/<name> (resumed, or reused when finished), its figure copied to
    `plot`. `tiny`: an axis of `epochs` (whose values would override the one epoch) becomes one point of 1."""
    axes = [Axis.parse(text) for text in table.grid]
    if tiny:
        axes = [Axis.parse("epochs=1") if axis.key == "epochs" else axis for axis in axes]
    plan = plan_sweep(table.specs[0], axes, trials=trials, epochs=epochs, overrides=table.overrides)
    result = run_sweep(plan, backend_factory=backend, out_dir=Path(runs) / table.name, device=device, resume=True,
                       progress=progress)
    path = Path(plot)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.folder / SWEEP_PLOT, path)  # the figure run_sweep drew, where the table wants it
    return TableOutcome(table, command_line(table, runs, plot), None, sweep=result, sweep_plot=path)
