"""`minispec eval`: the errors of saved weights on the data of their trial.

    evaluate_run("runs/disk-1a2b3c4d", trial=None) -> [Evaluation]      # every finished trial
    evaluate_weights(program, "w.safetensors") -> Evaluation            # weights from elsewhere

A run folder holds what its trials were trained with: the resolved program
(with the run's `--set`, `--epochs` and data options), and the data root of
its first start. The trial's data draw is made again from the seed (see
`seeding`), so the test error computed here is the one the run recorded, bit
for bit in the backend that trained it, and within rounding in the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minispec import data as datasets
from minispec.backends import make_model
from minispec.backends.checkpoint import load_metadata, load_state
from minispec.errors import MinispecError
from minispec.experiment.folder import WEIGHTS, hashed_settings, load_run, program_hash, read_config, trial_name
from minispec.experiment.seeding import data_seed
from minispec.experiment.training import evaluate, head_names, main_head, on_device
from minispec.ir.cost import estimate_memory, require_memory
from minispec.ir.model import Program


@dataclass(frozen=True)
class Evaluation:
    """Errors of one trial's weights: per split ("train", "test") and head; `recorded`
    is the test error its run reported (None for weights from elsewhere)."""

    trial: int
    spec_hash: str | None
    train_errors: dict[str, float]
    test_errors: dict[str, float]
    report: str
    recorded: float | None = None

    @property
    def test_error(self) -> float:
        return self.test_errors[self.report]


def evaluate_weights(
    program: Program,
    path: str | Path,
    backend: str = "torch",
    device: torch.device = torch.device("cpu"),
    data_root: str | None = None,
    trial: int | None = None,
) -> Evaluation:
    """Train and test error of every head for the weights in `path`.

    `trial` defaults to the one recorded in the file's metadata (0 when absent)."""
    require_memory(estimate_memory(program, 1, training=False), f"evaluating `{program.name}`", device=str(device))
    state = load_state(path, program)
    metadata = load_metadata(path)
    if trial is None:
        try:
            trial = int(metadata.get("trial", 0))
        except ValueError:
            raise MinispecError(f"{path}: its metadata names trial `{metadata['trial']}`, not a number",
                                hint="pass --trial N") from None
    model = make_model(backend, program, [state], device=device)
    draw = datasets.stack([datasets.load(program.data.name, dict(program.data.options),
                                         seed=data_seed(program.train.seed, trial), root=data_root)])
    splits = {name: on_device(program, split, device) for name, split in (("train", draw.train), ("test", draw.test))}
    results = evaluate(model, program, splits, 1)
    heads = head_names(program)
    return Evaluation(trial=trial, spec_hash=metadata.get("spec_hash"),
                      train_errors=dict(zip(heads, results["train"]["errors"][0])),
                      test_errors=dict(zip(heads, results["test"]["errors"][0])),
                      report=heads[main_head(program)])


def evaluate_run(
    folder: str | Path,
    trial: int | None = None,
    backend: str = "torch",
    device: torch.device = torch.device("cpu"),
    data_root: str | None = None,
) -> list[Evaluation]:
    """Evaluate the weights of a run folder's finished trials (or of `trial`)
    with the program, data options and data root the run recorded.

    Raises MinispecError for a folder without a finished trial, a trial that
    is not finished, or one that diverged (it has no weights)."""
    run = load_run(folder)
    if run.program is None:
        raise MinispecError(f"{folder} holds no program.json", hint="it is not a complete run folder")
    config = read_config(run.folder)
    root = data_root if data_root is not None else (config.data_root if config else None)
    trials = {t.trial: t for t in run.trials}
    if trial is None:
        chosen = [t for t in run.trials if not t.diverged]
        if not chosen:
            what = "no finished trial" if not trials else f"only diverged trials ({', '.join(map(str, trials))})"
            raise MinispecError(f"{folder} holds {what}: there are no weights to evaluate",
                                hint="finish the run first: minispec run SPEC --resume --out " + str(folder))
    elif trial not in trials:
        raise MinispecError(f"trial {trial} of {folder} is not finished",
                            hint="finished trials: " + (", ".join(map(str, trials)) or "none"))
    elif trials[trial].diverged:
        raise MinispecError(f"trial {trial} of {folder} diverged in epoch {trials[trial].diverged_epoch}: "
                            "it kept no weights", hint="evaluate another trial (--trial K)")
    else:
        chosen = [trials[trial]]
    out = []
    for record in chosen:
        path = run.folder / WEIGHTS / f"{trial_name(record.trial)}.safetensors"
        found = evaluate_weights(run.program, path, backend, device, root, record.trial)
        recorded = record.final.test_error if record.final else None
        out.append(Evaluation(found.trial, found.spec_hash, found.train_errors, found.test_errors, found.report,
                              recorded))
    return out


def weights_program(path: str | Path) -> Program | None:
    """The program of the run folder that holds a weights file (…/weights/trial_K.safetensors), if any."""
    folder = Path(path).resolve().parent.parent
    if Path(path).resolve().parent.name != WEIGHTS or not (folder / "program.json").is_file():
        return None
    return load_run(folder).program if (folder / "summary.json").is_file() else None


def differing_keys(ours: Program, theirs: Program) -> list[str]:
    """The settings (dotted keys of the resolved IR, as hashed) in which two programs differ."""
    found: list[str] = []

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for name in sorted(a.keys() | b.keys()):
                walk(a.get(name), b.get(name), f"{key}.{name}" if key else name)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{key}[{i}]")
        elif a != b:
            found.append(key)

    walk(hashed_settings(ours), hashed_settings(theirs), "")
    return found


def spec_note(program: Program, weights: str | Path, spec_hash: str | None) -> str | None:
    """The note for weights saved by a run of another resolved spec, naming what differs when it can."""
    if spec_hash is None or spec_hash == program_hash(program):
        return None
    theirs = weights_program(weights)
    if theirs is None or program_hash(theirs) != spec_hash:
        return "note: these weights were saved by a run of a different resolved spec"
    keys = differing_keys(program, theirs)
    shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
    return (f"note: these weights were saved by a run of a different resolved spec; it differs in {shown} "
            f"(evaluate the run folder itself: minispec eval {Path(weights).resolve().parent.parent})")
