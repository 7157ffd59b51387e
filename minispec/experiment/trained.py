"""The trained trials of a run folder, rebuilt without training.

    model, trials = trained_model(run, trials=None, backend="torch")
    draw = trial_data(run.program, trial)

A run folder keeps each finished trial's final weights and the seeds its data
came from, so anything computed from a trained model (decision maps, other
readings of its heads) can be redone from the folder alone. Trials that
diverged keep no weights and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minispec import data as datasets
from minispec.backends import make_model
from minispec.backends.checkpoint import load_state
from minispec.backends.base import TrainableModel
from minispec.errors import MinispecError
from minispec.experiment.folder import WEIGHTS, RunResult, trial_name, weights_file
from minispec.experiment.seeding import data_seed
from minispec.ir.model import Program


def run_program(run: RunResult) -> Program:
    if run.program is None:
        raise MinispecError(f"{run.folder} has no program.json", hint="it was not written by `minispec run`")
    return run.program


def trained_trials(run: RunResult, trials: Sequence[int] | None = None) -> list[int]:
    """The requested trials (default: all finished, non-diverged ones), each checked to have weights."""
    finished = {t.trial: t for t in run.trials}
    if trials is None:
        chosen = [k for k, t in finished.items() if not t.diverged]
    else:
        chosen = list(dict.fromkeys(trials))
        for k in chosen:
            if k not in finished:
                raise MinispecError(f"{run.folder} has no finished trial {k}",
                                    hint="finished trials: " + (", ".join(map(str, finished)) or "none"))
            if finished[k].diverged:
                raise MinispecError(f"trial {k} of {run.folder} diverged and kept no weights")
    if not chosen:
        raise MinispecError(f"{run.folder} holds no trained trial", hint="run it (or resume it) first")
    for k in chosen:
        if not weights_file(run.folder, k).is_file():
            raise MinispecError(f"{run.folder} has no weights for trial {k}",
                                hint=f"expected {WEIGHTS}/{trial_name(k)}.safetensors")
    return sorted(chosen)


def trained_model(
    run: RunResult,
    trials: Sequence[int] | None = None,
    backend: str = "torch",
    device: str | torch.device = "cpu",
) -> tuple[TrainableModel, list[int]]:
    """One model whose replica r holds the final weights of trial `trials[r]`."""
    program = run_program(run)
    chosen = trained_trials(run, trials)
    states = [load_state(weights_file(run.folder, k), program) for k in chosen]
    return make_model(backend, program, states, device=device), chosen


def trial_data(program: Program, trial: int, data_root: str | None = None) -> datasets.Dataset:
    """The data set trial `trial` was trained and tested on, drawn again from its seed."""
    return datasets.load(program.data.name, dict(program.data.options), seed=data_seed(program.train.seed, trial),
                         root=data_root)
