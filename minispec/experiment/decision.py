"""Decision maps of a run whose inputs are 2-D points (the disk specs).

    maps = decision_maps(load_run("runs/disk-1a2b3c4d"), resolution=100)
    minispec.render.decision.plot_decision(maps, "decision.png")

Each trained trial's reported head is evaluated on a resolution x resolution
grid spanning the input square and on the trial's own test points. The map's
score is read so that the decision rule of the spec flips exactly at its
level: a threshold head gives its output and the threshold; a two-way argmax
head gives the class-1 probability (softmax for cross-entropy, exp for nll)
or, for other losses, (1 + out[1] - out[0]) / 2, both at 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from minispec.backends.targets import decide
from minispec.errors import MinispecError
from minispec.experiment.folder import RunResult
from minispec.experiment.trained import run_program, trained_model, trial_data
from minispec.experiment.training import main_head
from minispec.ir.model import Loss, Program
from minispec.render.decision import DecisionMap

RESOLUTION = 100


def point_input(program: Program) -> str:
    """The name of the program's only input when it is a 2-D point; otherwise an error for people."""
    inputs = program.data.inputs
    if len(inputs) != 1 or list(next(iter(inputs.values()))) != [2]:
        shapes = ", ".join(f"{name}: {shape}" for name, shape in inputs.items())
        raise MinispecError(f"spec `{program.name}` takes {shapes}: a decision map needs one input of 2-D points ([2])",
                            hint="decision maps are drawn for the disk specs (data disk)")
    return next(iter(inputs))


def score(loss: Loss, output: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(class-1 score [..., N], level) of an output [..., N, k]: the decision is `score > level`."""
    if loss.decision == "threshold":
        return output[..., 0], loss.threshold
    if output.shape[-1] != 2:
        raise MinispecError(f"the reported head `{loss.node}` decides among {output.shape[-1]} classes",
                            hint="a decision map draws a two-class decision")
    if loss.kind == "cross_entropy":
        return torch.softmax(output, dim=-1)[..., 1], 0.5
    if loss.kind == "nll":
        return output[..., 1].exp() / output.exp().sum(dim=-1), 0.5
    return (1 + output[..., 1] - output[..., 0]) / 2, 0.5


def square(points: torch.Tensor) -> tuple[float, float, float, float]:
    """The input square: the points' bounding box widened to whole tenths ([0, 1]^2 for the disk)."""
    low = points.min(dim=0).values.tolist()
    high = points.max(dim=0).values.tolist()
    return (math.floor(low[0] * 10) / 10, math.ceil(high[0] * 10) / 10,
            math.floor(low[1] * 10) / 10, math.ceil(high[1] * 10) / 10)


@torch.no_grad()
def decision_maps(
    run: RunResult,
    trials: Sequence[int] | None = None,
    resolution: int = RESOLUTION,
    backend: str = "torch",
    device: str | torch.device = "cpu",
) -> list[DecisionMap]:
    """One DecisionMap per trained trial of `run` (default: every finished, non-diverged trial)."""
    program = run_program(run)
    name = point_input(program)
    loss = program.losses[main_head(program)]
    if resolution < 2:
        raise MinispecError(f"a decision map needs a grid of at least 2 x 2 points, got {resolution}")
    model, chosen = trained_model(run, trials, backend, device)
    draws = [trial_data(program, k) for k in chosen]
    points = torch.stack([d.test.inputs[name] for d in draws])  # [R, N, 2]
    labels = torch.stack([d.test.targets[loss.target.name] for d in draws])
    if loss.target.index is not None:
        labels = labels[..., loss.target.index]
    x0, x1, y0, y1 = square(points.reshape(-1, 2))
    xs = torch.linspace(x0, x1, resolution)
    ys = torch.linspace(y0, y1, resolution)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([grid_x, grid_y], dim=-1).reshape(1, -1, 2).expand(len(chosen), -1, -1)
    device = torch.device(device)
    grid_out = model.predict({name: grid.contiguous().to(device)})[loss.node].cpu().double()
    test_out = model.predict({name: points.to(device)})[loss.node].cpu()
    grid_score, level = score(loss, grid_out)
    right = decide(loss, test_out) == labels
    return [
        DecisionMap(
            xs=xs.double().numpy(), ys=ys.double().numpy(),
            score=grid_score[r].reshape(resolution, resolution).numpy(), level=level,
            points=points[r].double().numpy(), labels=labels[r].numpy(), right=right[r].numpy(),
            title=f"{program.name}, trial {k}",
        )
        for r, k in enumerate(chosen)
    ]
