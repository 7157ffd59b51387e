"""Several specs side by side: reuse or run each, then one table and one overlay plot.

    compare(programs, backend_factory=..., runs_root="runs") -> Comparison

Each program's run lives in `runs_root/<spec name>-<spec hash[:8]>/`. With
`reuse=True` a folder that already holds every planned trial is read back
as is; a partial one is resumed (its finished trials kept); a missing one is
run. With `reuse=False` every program is run afresh into the first free
folder `<name>-<hash8>`, `<name>-<hash8>-2`, ... (nothing is overwritten).
The table's p-values are Welch's t-test of each run's final test errors
against the first program's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment.executors import Executor
from minispec.experiment.folder import RunResult, load_run, program_hash, read_hash
from minispec.experiment.runner import BackendFactory, run_experiment, with_overrides
from minispec.experiment.tables import TableRow, format_table, summary_table
from minispec.ir.model import Program


@dataclass
class Comparison:
    """The runs (in the programs' order), their table rows, and the overlay plot."""

    results: list[RunResult]
    rows: list[TableRow]
    plot: Path | None

    def table(self) -> str:
        return format_table(self.rows)


def run_folder(program: Program, runs_root: str | Path, epochs: int | None = None, backend: str = "torch") -> Path:
    """The folder of `program`'s run under `runs_root`: `<name>-<spec hash[:8]>`,
    with `-<backend>` appended for backends other than torch."""
    suffix = "" if backend == "torch" else f"-{backend}"
    return Path(runs_root) / f"{program.name}-{program_hash(with_overrides(program, epochs=epochs))[:8]}{suffix}"


def default_run_folder(program: Program, backend: str, epochs: int | None = None, resume: bool = False,
                       runs_root: str | Path = "runs") -> Path:
    """Where `minispec run` writes without --out: a new folder each time
    (`<name>-<hash8>`, then `-2`, `-3`, ...), or with `resume` the latest one."""
    base = run_folder(program, runs_root, epochs, backend)
    if not resume:
        return _free_folder(base)
    candidates = [base] + [Path(f"{base}-{n}") for n in range(2, 1000)]
    existing = [c for c in candidates if c.exists()]
    if not existing:
        raise MinispecError(f"there is no earlier run of this spec to resume under {runs_root}",
                            hint="run it without --resume first, or name the folder with --out")
    return existing[-1]


def compare(
    programs: Sequence[Program],
    *,
    backend_factory: BackendFactory | None = None,
    backends: dict[str, BackendFactory] | None = None,
    runs_root: str | Path = "runs",
    trials: int | None = None,
    epochs: int | None = None,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    progress: Callable[[ev.Event], None] | None = None,
    vectorize: bool | None = None,
    chunk: int | None = None,
    reuse: bool = True,
    plot_path: str | Path | None = None,
    backend: str = "torch",
    max_memory: int | None = None,
    metric: str = "test_error",
    executor: Executor | None = None,
) -> Comparison:
    """Run (or reuse) every program, then tabulate and plot them together.

    `backend_factory` (named `backend`) runs every program on one backend;
    `backends` ({name: factory}) runs every program on each of them, so one
    table can also answer "do the two backends agree?".
    plot_path: where the overlay goes (default `runs_root/compare.png`);
    the train curves are drawn dashed when there are at most two runs.
    executor: where the chunks of each run train (see `run_experiment`).
    """
    if backends is None:
        backends = {backend: backend_factory}
    results = []
    for program, (backend, backend_factory) in [(p, b) for p in programs for b in backends.items()]:
        resolved = with_overrides(program, trials=trials, epochs=epochs)
        base = run_folder(resolved, runs_root, backend=backend)
        folder = base if reuse else _free_folder(base)
        if reuse and _complete(folder, resolved):
            results.append(load_run(folder))
            continue
        results.append(
            run_experiment(resolved, backend_factory=backend_factory, device=device, out_dir=folder,
                           data_root=data_root, resume=reuse, progress=progress, vectorize=vectorize, chunk=chunk,
                           max_memory=max_memory, executor=executor)
        )
    rows = summary_table(results)
    plot = None
    if results:
        from minispec.experiment.plots import plot_curves

        plot = plot_curves(results, Path(plot_path) if plot_path else Path(runs_root) / "compare.png",
                           metric=metric, train=len(results) <= 2)
    return Comparison(results=results, rows=rows, plot=plot)


def _complete(folder: Path, program: Program) -> bool:
    """Whether `folder` holds exactly this run, with every planned trial finished."""
    summary_path = folder / "summary.json"
    if not summary_path.exists() or read_hash(folder) != program_hash(program):
        return False
    summary = load_run(folder).summary
    return summary.complete and summary.trials_planned == program.train.trials


def _free_folder(base: Path) -> Path:
    if not base.exists():
        return base
    n = 2
    while Path(f"{base}-{n}").exists():
        n += 1
    return Path(f"{base}-{n}")
