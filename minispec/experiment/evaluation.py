"""`minispec eval`: the error of saved weights on the data of their trial.

A weights file written by `minispec run` names its trial in its metadata; the
trial's data draw is made again from the seed (see `seeding`), so the test
error printed here is the one the run recorded, with either backend.
"""

from __future__ import annotations

from pathlib import Path

import torch

from minispec import data as datasets
from minispec.backends import make_model
from minispec.backends.checkpoint import load_metadata, load_state
from minispec.errors import MinispecError
from minispec.experiment.training import evaluate, head_names, on_device
from minispec.experiment.seeding import data_seed
from minispec.ir.cost import estimate_memory, require_memory
from minispec.ir.model import Program


def evaluate_weights(
    program: Program,
    path: str | Path,
    backend: str = "torch",
    device: torch.device = torch.device("cpu"),
    data_root: str | None = None,
    trial: int | None = None,
) -> dict:
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
    return {
        "trial": trial,
        "spec_hash": metadata.get("spec_hash"),
        "errors": {split: dict(zip(heads, values["errors"][0])) for split, values in results.items()},
        "report": heads[[loss.node for loss in program.losses].index(program.train.report)],
    }
