"""Experiments: trials of a Program through any backend, run folders, statistics.

    run_experiment(program, backend_factory=..., out_dir=...) -> RunResult
    load_run(folder) -> RunResult
    compare(programs, backend_factory=..., runs_root=...) -> Comparison
    summary_table(results), format_table(rows), welch(a, b)
    TqdmProgress(): a progress display for the CLI

See docs/experiments.md.
"""

from minispec.experiment.compare import Comparison, compare, run_folder
from minispec.experiment.events import EpochFinished, Event, RunFinished, RunStarted, TrialFinished, TrialStarted
from minispec.experiment.folder import RunResult, load_run, program_hash
from minispec.experiment.progress import TqdmProgress
from minispec.experiment.runner import run_experiment
from minispec.experiment.schedule import learning_rate
from minispec.experiment.stats import format_table, summary_table, welch

__all__ = [
    "Comparison",
    "EpochFinished",
    "Event",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "TqdmProgress",
    "TrialFinished",
    "TrialStarted",
    "compare",
    "format_table",
    "learning_rate",
    "load_run",
    "program_hash",
    "run_experiment",
    "run_folder",
    "summary_table",
    "welch",
]
