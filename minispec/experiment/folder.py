"""The run folder: what a run leaves on disk, written so a kill never corrupts it.

    program.json                the resolved IR (`Program.model_dump_json`)
    spec_hash.txt               program_hash(program): identifies the experiment
    trials/trial_000.json       one trial: seeds, per-evaluation records, final errors
    weights/trial_000.safetensors  its final state (canonical names), spec hash in the metadata
    summary.json                statistics over the finished trials (rewritten after each)
    curves.csv                  one row per trial x evaluation point
    curves.png                  mean ± std of the error over trials per epoch

Every file is written to a temporary name in the same folder and moved into
place with `os.replace`, so a reader sees either the old or the new file,
never half of one. A trial's JSON is written after its weights: its presence
is what marks the trial finished.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minispec.errors import MinispecError
from minispec.experiment import stats
from minispec.ir.model import Program

TRIALS = "trials"
WEIGHTS = "weights"


def program_hash(program: Program) -> str:
    """sha256 (hex) of the resolved IR without source locations and without the trial count.

    Spans and `source` say where a spec lives, not what it computes, so the
    same resolved spec hashes alike from any file. `train.trials` is left out
    because trial k's numbers do not depend on how many trials there are: a
    run of 5 trials can be resumed to 10 under the same hash.
    """
    data = program.model_dump(mode="json", exclude={"source"})
    data["train"].pop("trials", None)
    text = json.dumps(_strip_spans(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _strip_spans(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_spans(v) for k, v in value.items() if k != "span"}
    if isinstance(value, list):
        return [_strip_spans(v) for v in value]
    return value


def trial_name(trial: int) -> str:
    return f"trial_{trial:03d}"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(tmp, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8", "newline": ""})) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def dump_json(value: Any) -> str:
    """JSON with non-finite floats written as null (strict JSON has no NaN)."""
    return json.dumps(_finite(value), indent=1) + "\n"


def dump_trial(trial: dict[str, Any]) -> str:
    """A trial's JSON: the header indented, then one compact line per record
    (long runs have many records; this keeps files small and still diffable)."""
    records = _finite(trial.get("records", []))
    header = dump_json({**trial, "records": "\0records"}).rstrip("\n")
    lines = ",\n".join("  " + json.dumps(record, separators=(",", ":")) for record in records)
    return header.replace('"\\u0000records"', "[\n" + lines + "\n ]" if records else "[]") + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MinispecError(f"cannot read {path}: {error}", hint="the run folder is damaged; start again with another --out") from None


def read_hash(folder: Path) -> str | None:
    path = Path(folder) / "spec_hash.txt"
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


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


def read_trials(folder: Path) -> dict[int, dict[str, Any]]:
    return {k: _read_json(path) for k, path in trial_files(folder).items()}


def holds_run(folder: Path) -> bool:
    """Whether a folder already holds results of a run (finished trials or a summary)."""
    folder = Path(folder)
    return bool(trial_files(folder)) or (folder / "summary.json").exists()


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a killed run left behind (ours only: `.NAME.PID.tmp`)."""
    for directory in (Path(folder), Path(folder) / TRIALS, Path(folder) / WEIGHTS):
        if directory.is_dir():
            for path in directory.glob(".*.tmp"):
                path.unlink(missing_ok=True)


# ---------------------------------------------------------------- summaries


def summarize(program: Program, spec_hash: str, trials: dict[int, dict[str, Any]], planned: int) -> dict[str, Any]:
    """Statistics over the finished trials 0..planned-1 (diverged ones counted apart)."""
    considered = [trials[k] for k in sorted(trials) if k < planned]
    good = [t for t in considered if not t["diverged"] and t.get("final")]
    diverged = [t["trial"] for t in considered if t["diverged"]]
    test = [t["final"]["test_error"] for t in good]
    train = [t["final"]["train_error"] for t in good]
    heads = {}
    for head in (considered[0]["heads"] if considered else []):
        head_test = [t["final"]["test_errors"][head] for t in good]
        head_train = [t["final"]["train_errors"][head] for t in good]
        heads[head] = {"test_error": _spread(head_test), "train_error": _spread(head_train)}
    best = min(good, key=lambda t: (t["final"]["test_error"], t["trial"]), default=None)
    worst = max(good, key=lambda t: (t["final"]["test_error"], -t["trial"]), default=None)
    chunks = {tuple(t["chunk"]): t["wall_time"] for t in considered}
    wall = math.fsum(chunks.values())
    note = f"statistics over {len(good)} trial(s)"
    if diverged:
        note += f"; {len(diverged)} diverged trial(s) left out: {', '.join(map(str, diverged))}"
    if len(considered) < planned:
        note += f"; {planned - len(considered)} of {planned} planned trial(s) not finished"
    error = _spread(test)
    return {
        "spec": program.name,
        "source": program.source,
        "spec_hash": spec_hash,
        "report": program.train.report,
        "heads": heads,
        "trials_planned": planned,
        "trials_finished": len(considered),
        "trials_diverged": len(diverged),
        "diverged": diverged,
        "complete": len(considered) == planned,
        "note": note,
        "epochs": program.train.epochs,
        "test_error": error,
        "train_error": _spread(train),
        "accuracy": {
            "mean": None if error["mean"] is None else 1.0 - error["mean"],
            "std": error["std"],
            "n": error["n"],
        },
        "best": None if best is None else {"trial": best["trial"], "test_error": best["final"]["test_error"]},
        "worst": None if worst is None else {"trial": worst["trial"], "test_error": worst["final"]["test_error"]},
        "params": program.total_params,
        "wall_time": wall,
        "seconds_per_trial": wall / len(considered) if considered else None,
        "backend": _joined(t["backend"] for t in considered),
        "device": _joined(t["device"] for t in considered),
        "data_source": _joined(t["data_source"] for t in considered),
    }


def _spread(values: list[float]) -> dict[str, Any]:
    return {"mean": stats.mean(values), "std": stats.std(values), "n": len(values)}


def _joined(values) -> str | None:
    distinct = list(dict.fromkeys(values))
    return "; ".join(distinct) if distinct else None


def curves_csv(trials: dict[int, dict[str, Any]], planned: int) -> str:
    """One row per trial x evaluation point; per-head columns after the main ones."""
    considered = [trials[k] for k in sorted(trials) if k < planned]
    heads = considered[0]["heads"] if considered else []
    columns = ["trial", "epoch", "step", "lr", "train_loss", "test_loss", "train_error", "test_error"]
    for head in heads:
        columns += [f"loss_{head}", f"train_error_{head}", f"test_error_{head}"]
    columns += ["wall_time", "diverged"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for trial in considered:
        for record in trial["records"]:
            row = [trial["trial"], record["epoch"], record["step"], record["lr"], record["train_loss"],
                   record["test_loss"], record["train_error"], record["test_error"]]
            for head in heads:
                row += [record["losses"].get(head), (record["train_errors"] or {}).get(head),
                        (record["test_errors"] or {}).get(head)]
            row += [record["wall_time"], int(record["diverged"])]
            writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


# ---------------------------------------------------------------- results


@dataclass
class RunResult:
    """What a run produced: its folder, the summary, the per-trial records (as in
    `trials/*.json`, trial order), and the resolved program."""

    folder: Path
    summary: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    program: Program | None = None

    @property
    def spec(self) -> str:
        return self.summary.get("spec") or (self.program.name if self.program else self.folder.name)


def load_run(folder: str | Path) -> RunResult:
    """Read a run folder (finished or partial) back into a RunResult."""
    folder = Path(folder)
    if not (folder / "summary.json").exists():
        raise MinispecError(f"{folder} holds no run (no summary.json)", hint="run `minispec run SPEC --out FOLDER` first")
    summary = _read_json(folder / "summary.json")
    program = None
    if (folder / "program.json").exists():
        try:
            program = Program.model_validate_json((folder / "program.json").read_text(encoding="utf-8"))
        except ValueError as error:
            raise MinispecError(f"cannot read {folder / 'program.json'}: {error}") from None
    planned = summary.get("trials_planned")
    trials = [t for k, t in read_trials(folder).items() if planned is None or k < planned]
    return RunResult(folder=folder, summary=summary, trials=trials, program=program)
