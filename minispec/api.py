"""minispec from Python, for notebooks: load a spec, look at it, train it.

    import minispec
    spec = minispec.load("specs/saux.mdl", epochs=3, **{"data.train": 500})
    spec                      # in Jupyter: the layer table
    spec.graph()              # the architecture, drawn inline (SVG; needs Graphviz's dot)
    model = spec.torch_module()
    results = spec.run(trials=3)
    results.table()           # one row per trial (a pandas DataFrame when pandas is installed)
    results.plot()            # mean ± std curves, inline

Everything goes through the same library calls as the command line (compile,
render, run_experiment), so a notebook's run folder is a run folder like any
other: `minispec plot`, `minispec eval`, `--resume` all work on it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minispec.compiler import compile_file
from minispec.ir.model import Program

if TYPE_CHECKING:
    from minispec.backends.torch_nn import GraphModule
    from minispec.experiment.folder import RunResult


def load(path: str | Path, overrides: dict[str, Any] | None = None, **settings: Any) -> Spec:
    """Compile the spec file at `path` with overrides, as `--set` takes them:
    `load(p, epochs=3, lr=0.1)`, or keys that are no Python names through
    `overrides={"data.train": 500}`. Values are numbers, booleans, or texts in
    the language (`optimizer="adam(lr=1e-3)"`)."""
    return Spec(compile_file(path, _override_texts(overrides, settings)))


def loads(text: str, overrides: dict[str, Any] | None = None, name: str = "<spec>", **settings: Any) -> Spec:
    """Compile a spec given as text (a notebook cell); includes are looked for
    in the current folder, then in the shipped library (`include "lib/pairs.mdl"`)."""
    return Spec(compile_file(name, _override_texts(overrides, settings), text=text))


def _override_texts(overrides: dict[str, Any] | None, settings: dict[str, Any]) -> list[str]:
    def text(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return [f"{key}={text(value)}" for key, value in {**(overrides or {}), **settings}.items()]


@dataclass(frozen=True)
class Spec:
    """A compiled spec: its Program (the graph IR) and what can be done with it."""

    program: Program

    @property
    def name(self) -> str:
        return self.program.name

    def summary(self) -> str:
        """The layer table of `minispec check`."""
        from minispec.render.summary import summary

        return summary(self.program)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(self.summary())

    def graph(self, fold: bool = False) -> Picture:
        """The architecture as SVG, shown inline by Jupyter (needs Graphviz's `dot`)."""
        from minispec.render import render

        with tempfile.TemporaryDirectory() as folder:
            path = render(self.program, Path(folder) / "graph.svg", fold=fold)
            return Picture(path.read_bytes(), "svg")

    def torch_module(self, seed: int | None = None) -> GraphModule:
        """The spec as a torch.nn.Module holding the initial weights of a run of
        `seed` (default: the spec's). `module(x=batch)` returns a dict of the
        loss nodes' outputs."""
        import torch

        from minispec.backends.torch_nn import build_module

        generator = torch.Generator(device="cpu").manual_seed(self.program.train.seed if seed is None else seed)
        return build_module(self.program, generator=generator)

    def run(self, trials: int | None = None, epochs: int | None = None, *, backend: str = "torch",
            device: str = "cpu", out: str | Path | None = None, resume: bool = False,
            data_root: str | None = None, progress: bool = False) -> Results:
        """Train the trials (default: the spec's number) and return their results.

        Writes a run folder, as `minispec run`: `out`, or a new runs/<spec>-<hash>.
        progress=True shows the command's progress bar."""
        from minispec.backends import backend_factory, resolve_device
        from minispec.experiment.compare import default_run_folder
        from minispec.experiment.progress import TqdmProgress
        from minispec.experiment.runner import run_experiment

        folder = out if out is not None else default_run_folder(self.program, backend, epochs=epochs, resume=resume)
        bar = TqdmProgress() if progress else None
        try:
            result = run_experiment(self.program, backend_factory=backend_factory(backend), trials=trials,
                                    epochs=epochs, device=resolve_device(device), out_dir=folder,
                                    data_root=data_root, resume=resume, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        return Results(result)


def open_run(folder: str | Path) -> Results:
    """The results of a finished run folder (from the command line or a notebook)."""
    from minispec.experiment.folder import load_run

    return Results(load_run(folder))


@dataclass(frozen=True)
class Results:
    """The trials of one run folder. Errors are fractions (0.12 = 12 %)."""

    run: RunResult

    @property
    def folder(self) -> Path:
        return Path(self.run.folder)

    @property
    def test_errors(self) -> list[float]:
        """The final test error of every finished, non-diverged trial."""
        return self.run.final_errors()

    def table(self):
        """One row per trial: its final train/test error and loss, epochs done,
        divergence and time. A pandas DataFrame when pandas is installed, else
        a list of dicts."""
        rows = []
        for trial in self.run.trials:
            final = trial.final
            rows.append({
                "trial": trial.trial, "test_error": final.test_error if final else None,
                "train_error": final.train_error if final else None,
                "test_loss": final.test_loss if final else None, "train_loss": final.train_loss if final else None,
                "epochs_done": trial.epochs_done, "diverged": trial.diverged, "wall_time": trial.wall_time,
            })
        return _frame(rows)

    def curves(self):
        """One row per trial and evaluation point: epoch, train/test error and
        loss (long format, ready for a groupby). A DataFrame when pandas is installed."""
        rows = [{"trial": trial.trial, "epoch": point.epoch, "train_error": point.train_error,
                 "test_error": point.test_error, "train_loss": point.train_loss, "test_loss": point.test_loss}
                for trial in self.run.trials for point in trial.records]
        return _frame(rows)

    def plot(self, metric: str = "test_error", train: bool = True) -> Picture:
        """The curves.png of the run for `metric` (test_error, train_error,
        train_loss, test_loss), mean ± std over trials, shown inline by Jupyter."""
        from minispec.experiment.plots import plot_curves

        with tempfile.TemporaryDirectory() as folder:
            path = plot_curves([self.run], Path(folder) / "curves.png", metric, train=train)
            return Picture(path.read_bytes(), "png")

    def _repr_pretty_(self, printer, cycle) -> None:
        from minispec.experiment.tables import format_table, summary_table

        printer.text(format_table(summary_table([self.run])))


def _frame(rows: list[dict]):
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows)


@dataclass(frozen=True)
class Picture:
    """An image that Jupyter shows inline; `save(path)` writes it to a file."""

    data: bytes
    format: str  # "svg" or "png"

    def _repr_svg_(self) -> str | None:
        return self.data.decode("utf-8") if self.format == "svg" else None

    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" else None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.data)
        return path
