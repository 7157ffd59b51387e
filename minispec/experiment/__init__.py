"""Experiments: trials of a Program through any backend, run folders, statistics.

    run_experiment(program, backend_factory=..., out_dir=...) -> RunResult
    load_run(folder) -> RunResult          (typed records: RunSummary, TrialRecord, EvalPoint)
    RunFolder.open(path, program, resume=...): the one writer of a run folder
    train_chunk(Chunk(program, trials, spec_hash), backend_factory) -> [FinishedTrial]
    compare(programs, backend_factory=..., runs_root=...) -> Comparison
    summary_table(results), format_table(rows), welch(a, b)
    TqdmProgress(): a progress display for the CLI

See docs/experiments.md.
"""

from minispec.experiment.compare import Comparison, compare, run_folder
from minispec.experiment.events import EpochFinished, Event, RunFinished, RunStarted, TrialFinished, TrialStarted
from minispec.experiment.folder import RunFolder, RunResult, load_run, program_hash
from minispec.experiment.records import EvalPoint, RunConfig, RunSummary, SweepPoint, SweepSummary, TrialRecord
from minispec.experiment.progress import TqdmProgress
from minispec.experiment.runner import run_experiment
from minispec.experiment.training import Chunk, FinishedTrial, train_chunk
from minispec.experiment.schedule import learning_rate
from minispec.experiment.stats import welch
from minispec.experiment.tables import TableRow, format_table, summary_table

__all__ = [
    "Chunk",
    "Comparison",
    "EpochFinished",
    "EvalPoint",
    "Event",
    "FinishedTrial",
    "RunConfig",
    "RunFinished",
    "RunFolder",
    "RunResult",
    "RunStarted",
    "RunSummary",
    "SweepPoint",
    "SweepSummary",
    "TableRow",
    "TqdmProgress",
    "TrialFinished",
    "TrialRecord",
    "TrialStarted",
    "compare",
    "format_table",
    "learning_rate",
    "load_run",
    "program_hash",
    "run_experiment",
    "run_folder",
    "summary_table",
    "train_chunk",
    "welch",
]
