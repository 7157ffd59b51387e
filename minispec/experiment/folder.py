"""The run folder: what a run leaves on disk, written by one writer so a kill never corrupts it.

    program.json                the resolved IR (`Program.model_dump_json`)
    spec_hash.txt               program_hash(program): identifies the experiment
    run.json                    RunConfig: chunking and threads, fixed by the first start
    trials/trial_000.json       TrialRecord: seeds, per-evaluation points, final errors
    weights/trial_000.safetensors  its final state (canonical names), spec hash in the metadata
    summary.json                RunSummary over the finished trials (rewritten after each)
    curves.csv                  one row per trial x evaluation point
    curves.png                  mean ± std of the error over trials per epoch
    .lock                       held (flock) by the one process writing the folder

    folder = RunFolder.open(path, program, resume=False)   # checks, locks
    folder.start(config)                                      # program.json, spec_hash.txt, run.json
    folder.save_trial(record, state)                          # weights first, then the record
    result = folder.finish()                                  # summary, curves.csv, curves.png; unlocks

Every file is written to a temporary name in the same folder and moved into
place with `os.replace`, so a reader sees either the old or the new file,
never half of one. A trial's JSON is written after its weights: its presence
is what marks the trial finished, and only finished trials make a folder
"hold a run" (a start that failed before its first trial blocks nothing).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from minispec.errors import MinispecError
from minispec.experiment.records import RunConfig, RunSummary, TrialRecord, summarize
from minispec.ir.model import Program, without_spans
from minispec.outputs import make_folder, output_path, reason

TRIALS = "trials"
WEIGHTS = "weights"
LOCK = ".lock"


def program_hash(program: Program) -> str:
    """sha256 (hex) of the resolved IR without source locations and without the trial count.

    Spans and `source` say where a spec lives, not what it computes, so the
    same resolved spec hashes alike from any file. `train.trials` is left out
    because trial k's numbers do not depend on how many trials there are: a
    run of 5 trials can be resumed to 10 under the same hash.
    """
    return hashlib.sha256(_hashed_text(program).encode("utf-8")).hexdigest()


def hashed_settings(program: Program) -> dict[str, Any]:
    """What `program_hash` hashes, as nested data (to name what differs between two specs)."""
    data = program.model_dump(mode="json", exclude={"source"})
    data["train"].pop("trials", None)
    if data["train"].get("eval_every") == 1:  # added later: folders from before keep their hash
        data["train"].pop("eval_every")
    return without_spans(data)


def _hashed_text(program: Program) -> str:
    return json.dumps(hashed_settings(program), sort_keys=True, separators=(",", ":"))


def trial_name(trial: int) -> str:
    return f"trial_{trial:03d}"


def weights_file(folder: Path, trial: int) -> Path:
    """Where a run folder keeps the final weights of `trial`."""
    return Path(folder) / WEIGHTS / f"{trial_name(trial)}.safetensors"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(tmp, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8", "newline": ""})) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dump_trial(trial: TrialRecord) -> str:
    """A trial's JSON: the header indented, then one compact line per point
    (long runs have many points; this keeps files small and still diffable)."""
    data = trial.model_dump(mode="json")
    records = data.pop("records")
    header = json.dumps({**data, "records": "\0records"}, indent=1)
    lines = ",\n".join("  " + json.dumps(record, separators=(",", ":")) for record in records)
    return header.replace('"\\u0000records"', "[\n" + lines + "\n ]" if records else "[]") + "\n"


def record_text(model) -> str:
    """A typed record as the text of its file."""
    return model.model_dump_json(indent=1) + "\n"


def read_record(path: Path, model):
    """The typed record in `path`; a damaged file or one of another version is a
    MinispecError naming it, never a traceback."""
    try:
        return model.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as error:
        reason = error.strerror if isinstance(error, OSError) else f"{error.error_count()} field(s) do not fit"
        raise MinispecError(f"cannot read {path}: {reason}",
                            hint="the run folder is damaged or was written by another version; "
                                 "start again with another --out") from None


def read_hash(folder: Path) -> str | None:
    path = Path(folder) / "spec_hash.txt"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def trial_files(folder: Path) -> dict[int, Path]:
    """Finished trials of a folder: trial index -> its JSON file."""
    found = {}
    directory = Path(folder) / TRIALS
    if directory.is_dir():
        for path in directory.glob("trial_*.json"):
            number = path.stem.removeprefix("trial_")
            if number.isdigit():
                found[int(number)] = path
    return dict(sorted(found.items()))


def read_trials(folder: Path) -> dict[int, TrialRecord]:
    return {k: read_record(path, TrialRecord) for k, path in trial_files(folder).items()}


def holds_run(folder: Path) -> bool:
    """Whether a folder holds results of a run: at least one finished trial."""
    return bool(trial_files(folder))


def read_config(folder: Path) -> RunConfig | None:
    path = Path(folder) / "run.json"
    return read_record(path, RunConfig) if path.is_file() else None


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a killed run left behind (ours only: `.NAME.PID.tmp`)."""
    for directory in (Path(folder), Path(folder) / TRIALS, Path(folder) / WEIGHTS):
        if directory.is_dir():
            for path in directory.glob(".*.tmp"):
                path.unlink(missing_ok=True)


def curves_csv(trials: list[TrialRecord]) -> str:
    """One row per trial x evaluation point; per-head columns after the main ones."""
    heads = trials[0].heads if trials else []
    columns = ["trial", "epoch", "step", "lr", "train_loss", "test_loss", "train_error", "test_error"]
    for head in heads:
        columns += [f"loss_{head}", f"train_error_{head}", f"test_error_{head}"]
    columns += ["wall_time", "diverged"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for trial in trials:
        for point in trial.records:
            row = [trial.trial, point.epoch, point.step, point.lr, point.train_loss, point.test_loss,
                   point.train_error, point.test_error]
            for head in heads:
                row += [point.losses.get(head), (point.train_errors or {}).get(head),
                        (point.test_errors or {}).get(head)]
            row += [point.wall_time, int(point.diverged)]
            writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


# ---------------------------------------------------------------- results


@dataclass
class RunResult:
    """What a run produced: its folder, the summary, the finished trials (trial
    order, as in `trials/*.json`), and the resolved program."""

    folder: Path
    summary: RunSummary
    trials: list[TrialRecord] = field(default_factory=list)
    program: Program | None = None

    @property
    def spec(self) -> str:
        return self.summary.spec

    def final_errors(self) -> list[float]:
        """Final test error of every finished, non-diverged trial, in trial order."""
        return [t.final.test_error for t in self.trials if t.finished_well]


def load_run(folder: str | Path) -> RunResult:
    """Read a run folder (finished or partial) back into a RunResult."""
    folder = Path(folder)
    if not (folder / "summary.json").is_file():
        raise MinispecError(f"{folder} holds no run (no summary.json)", hint="run `minispec run SPEC --out FOLDER` first")
    summary = read_record(folder / "summary.json", RunSummary)
    program = read_record(folder / "program.json", Program) if (folder / "program.json").is_file() else None
    trials = [t for k, t in read_trials(folder).items() if k < summary.trials_planned]
    return RunResult(folder=folder, summary=summary, trials=trials, program=program)


# ---------------------------------------------------------------- the one writer


class RunFolder:
    """A run folder opened for writing by this process, and the only writer of its files.

    `open` checks that the folder may be written and takes its lock (a second
    run into it is refused while this one lives; the lock dies with the
    process, even by SIGKILL); on resume it reads the finished trials.
    `start` records the program and the run's configuration; `save_trial`
    writes one trial (weights first, then its record, then the summary);
    `finish` writes the summary and the curves and releases the lock.
    """

    def __init__(self, path: Path, program: Program, spec_hash: str, finished: dict[int, TrialRecord],
                 config: RunConfig | None, lock: int):
        self.path = path
        self.program = program
        self.spec_hash = spec_hash
        self.finished = finished  # trial -> its record without points (what summaries need)
        self.config = config  # recorded by an earlier start that finished trials, else None
        self._lock = lock

    @classmethod
    def open(cls, path: str | Path, program: Program, *, resume: bool = False) -> "RunFolder":
        """Open `path` for a run of `program` (`resume`: go on with its finished trials).

        Raises MinispecError when the path cannot be a folder, another process
        writes it, it holds a run and `resume` is not set, or it holds a run of
        another spec hash."""
        path = output_path(path, "--out")
        spec_hash = program_hash(program)
        created = make_folder(path, "--out")
        lock = _lock(path)
        try:
            finished, config = _read_finished(path, spec_hash, resume)
        except BaseException:
            _unlock(lock)
            if created:
                _remove_empty(path)
            raise
        return cls(path, program, spec_hash, finished, config, lock)

    @property
    def planned(self) -> int:
        return self.program.train.trials

    def start(self, config: RunConfig) -> None:
        """Record the program, its hash and how the trials are trained; write a summary."""
        self._write("program.json", self.program.model_dump_json(indent=1) + "\n")
        self._write("spec_hash.txt", self.spec_hash + "\n")
        self._write("run.json", record_text(config))
        self.config = config
        self._write("summary.json", record_text(self.summary()))

    def save_trial(self, record: TrialRecord, state: dict | None) -> RunSummary:
        """Write one finished trial: its weights (none when it diverged), then its
        record (which marks it finished), then the summary. Returns the summary."""
        from minispec.backends.checkpoint import save_state

        k = record.trial
        self._check_present()
        if state is not None:
            self._guard(lambda: save_state(weights_file(self.path, k), state,
                                           {"spec_hash": self.spec_hash, "spec": self.program.name, "trial": str(k)}))
        self._write(f"{TRIALS}/{trial_name(k)}.json", dump_trial(record))
        self.finished[k] = record.header()
        summary = self.summary()
        self._write("summary.json", record_text(summary))
        return summary

    def summary(self) -> RunSummary:
        program = self.program
        return summarize(program.name, program.source, program.train.report, program.train.epochs,
                         program.total_params, self.spec_hash, self.finished, self.planned)

    def finish(self) -> RunResult:
        """Write the final summary, curves.csv and curves.png; release the lock."""
        from minispec.experiment.plots import plot_curves

        self._write("summary.json", record_text(self.summary()))
        run = load_run(self.path)
        self._write("curves.csv", curves_csv(run.trials))
        self._guard(lambda: plot_curves([run], self.path / "curves.png"))
        self.close()
        return run

    def close(self) -> None:
        """Release the lock (idempotent)."""
        if self._lock >= 0:
            _unlock(self._lock)
            self._lock = -1

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, name: str, text: str) -> None:
        self._check_present()
        self._guard(lambda: write_atomic(self.path / name, text))

    def _check_present(self) -> None:
        """A folder removed under a run is an error, never silently made again."""
        if not (self.path / LOCK).is_file():
            raise _write_error(self.path, FileNotFoundError(2, "removed"))

    def _guard(self, write) -> None:
        """Run a write; turn the file system's refusals into one clear error."""
        try:
            write()
        except OSError as error:
            raise _write_error(self.path, error) from None


def _write_error(path: Path, error: OSError) -> MinispecError:
    if not (path / LOCK).is_file():
        return MinispecError(f"the run folder {path} was removed while the run was writing it",
                             hint="its finished trials are lost with it; run again (--resume starts afresh)")
    return MinispecError(f"cannot write into {path}: {reason(error)}",
                         hint=f"free some space and go on with --resume --out {path}: finished trials are kept")


def _remove_empty(path: Path) -> None:
    (path / LOCK).unlink(missing_ok=True)
    try:
        path.rmdir()
    except OSError:
        pass


def _lock(path: Path) -> int:
    import fcntl

    try:
        handle = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise MinispecError(f"cannot write into {path}: {reason(error)}",
                            hint="choose another --out, in a folder you can write") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        raise MinispecError(f"another minispec run is writing into {path}",
                            hint="wait for it to end, or choose another --out") from None
    return handle


def _unlock(handle: int) -> None:
    os.close(handle)  # closing the descriptor releases the flock


def _read_finished(path: Path, spec_hash: str, resume: bool) -> tuple[dict[int, TrialRecord], RunConfig | None]:
    """The finished trials of `path` (their records without points) and its config, checked."""
    if holds_run(path) and not resume:
        raise MinispecError(
            f"{path} already holds a run",
            hint="pass --resume to go on with it, or choose another --out (nothing is ever overwritten)",
        )
    if not resume or not holds_run(path):
        return {}, None
    found = read_hash(path)
    if found is None:
        raise MinispecError(f"{path} holds trials but no spec_hash.txt", hint="it is not a minispec run folder; choose another --out")
    if found != spec_hash:
        raise MinispecError(
            f"cannot resume {path}: it was run with spec hash {found[:12]}…, this spec has {spec_hash[:12]}…",
            hint="the spec (or --set, --epochs) changed since; resume with the same spec, or choose another --out",
        )
    remove_stale_temporaries(path)
    trials = {k: trial.header() for k, trial in read_trials(path).items()}
    for k, trial in trials.items():
        if trial.spec_hash != spec_hash:
            raise MinispecError(
                f"cannot resume {path}: trial {k} was run with spec hash {trial.spec_hash[:12]}…, "
                f"this spec has {spec_hash[:12]}…",
                hint="choose another --out",
            )
    return trials, read_config(path)
