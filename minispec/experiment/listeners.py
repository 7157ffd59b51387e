"""Listeners of the runner's events (minispec.experiment.events) that write
something beside the run folder: each trial's model as ONNX, and TensorBoard
scalars. The runner knows none of them; the run folder stays the record, and
these files can be written again from it.

    progress = broadcast(TqdmProgress(), OnnxExport(program), TensorBoardLog())
    run_experiment(program, ..., progress=progress)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from minispec.errors import MinispecError
from minispec.experiment import events as ev
from minispec.experiment.folder import trial_name, weights_file
from minispec.ir.model import Program

TENSORBOARD = "tensorboard"


def broadcast(*listeners: Callable[[ev.Event], None] | None) -> Callable[[ev.Event], None]:
    """One callback that hands every event to each listener in turn."""
    chosen = [listener for listener in listeners if listener is not None]

    def hand_out(event: ev.Event) -> None:
        for listener in chosen:
            listener(event)

    return hand_out


class OnnxExport:
    """Writes weights/trial_000.onnx beside each finished trial's weights (a
    diverged trial has none), as each trial finishes; at the end of the run,
    also for the trials a resumed run found finished. Refuses at once, before
    any training, when the [onnx] extra is missing or the spec has an op ONNX
    cannot express."""

    def __init__(self, program: Program):
        from minispec.backends.onnx_graph import check_exportable

        check_exportable(program)
        self.program = program
        self.folder: Path | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.folder = event.folder
        elif isinstance(event, ev.TrialFinished) and not event.diverged:
            self._export(weights_file(self.folder, event.trial))
        elif isinstance(event, ev.RunFinished):  # the trials a resumed run found finished
            for trial in range(event.summary.trials_planned):
                weights = weights_file(event.folder, trial)
                if weights.is_file() and not weights.with_suffix(".onnx").exists():
                    self._export(weights)

    def _export(self, weights: Path) -> None:
        from minispec.backends.checkpoint import load_state
        from minispec.backends.onnx_graph import export_onnx

        export_onnx(self.program, weights.with_suffix(".onnx"), load_state(weights, self.program), "--export onnx")


class TensorBoardLog:
    """Writes each trial's per-epoch train and test error and loss as TensorBoard
    scalars, one TensorBoard run per trial: <run folder>/tensorboard/trial_000.

    Tags: error/train, error/test (in %), loss/train, loss/test; the step is
    the epoch. Needs the [tensorboard] extra: refused at once without it."""

    def __init__(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MinispecError("--log tensorboard needs the tensorboard package: "
                                "pip install 'minispec[tensorboard]'") from None
        self._writer_class = SummaryWriter
        self.folder: Path | None = None
        self.writers: dict = {}

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.folder = event.folder
        elif isinstance(event, ev.EpochFinished) and event.end_of_epoch:
            writer = self.writers.get(event.trial)
            if writer is None:
                writer = self.writers[event.trial] = self._writer_class(
                    str(self.folder / TENSORBOARD / trial_name(event.trial)))
            epoch = round(event.epoch)
            for tag, value in (("error/train", 100 * event.train_error), ("error/test", 100 * event.test_error),
                               ("loss/train", event.loss), ("loss/test", event.test_loss)):
                if value is not None:
                    writer.add_scalar(tag, value, epoch)
            writer.flush()  # an interrupted run keeps its curves up to the last epoch
        elif isinstance(event, ev.TrialFinished) and event.trial in self.writers:
            self.writers.pop(event.trial).close()
        elif isinstance(event, ev.RunFinished):
            for writer in self.writers.values():
                writer.close()
            self.writers.clear()
