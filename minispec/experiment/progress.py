"""A ready progress display for the runner's events, on stderr.

    run_experiment(..., progress=TqdmProgress())

On a terminal: one tqdm bar over (pending trials x epochs), its postfix the
current trial, epoch, training loss and test error. Elsewhere (a log file, CI):
plain lines every `every` epochs and one per finished trial, e.g.

    disk: 3 trials x 200 epochs -> runs/disk
    trial 1/3  epoch  20/200  loss 0.1832  test error 7.40%
    trial 1/3  done: test error 2.90%  (12.3 s)
"""

from __future__ import annotations

import sys
from typing import IO

from minispec.experiment import events as ev


class TqdmProgress:
    """Callable progress display: pass it as `progress=`; `close()` ends the bar
    (it also closes itself on RunFinished)."""

    def __init__(self, file: IO[str] | None = None, every: int | None = None, tty: bool | None = None):
        self.file = file if file is not None else sys.stderr
        self.tty = tty if tty is not None else bool(getattr(self.file, "isatty", lambda: False)())
        self.every = every
        self.bar = None
        self.trials = 1

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.trials = event.trials
            if self.every is None:
                self.every = max(1, event.epochs // 10)
            skipped = event.trials - len(event.pending)
            head = f"{event.spec}: {len(event.pending)} trial(s) x {event.epochs} epochs -> {event.folder}"
            if skipped:
                head += f" ({skipped} finished trial(s) kept)"
            if event.plan:
                head += f"; {event.plan}"
            elif event.vectorized:
                head += f", {event.chunk} at a time"
            if self.tty:
                from tqdm import tqdm

                self.bar = tqdm(total=event.total_epochs, file=self.file, unit="epoch",
                                desc=event.spec, dynamic_ncols=True, leave=True)
                self.bar.write(head, file=self.file)
            else:
                self._line(head)
        elif isinstance(event, ev.EpochFinished):
            if not event.end_of_epoch:
                return
            epoch = int(round(event.epoch))
            if self.bar is not None:
                self.bar.update(event.epochs_since)
                self.bar.set_postfix_str(
                    f"trial {event.trial + 1}/{self.trials} epoch {epoch}/{event.epochs} "
                    f"loss {event.loss:.4g} test {100 * event.test_error:.2f}%", refresh=False)
            elif epoch % self.every == 0 or epoch == event.epochs:
                self._line(f"trial {event.trial + 1}/{self.trials}  epoch {epoch:>{len(str(event.epochs))}}/{event.epochs}"
                           f"  loss {event.loss:.4g}  test error {100 * event.test_error:.2f}%")
        elif isinstance(event, ev.TrialFinished):
            if event.diverged:
                text = f"trial {event.trial + 1}/{event.trials}  diverged in epoch {event.diverged_epoch}"
            else:
                error = "-" if event.test_error is None else f"{100 * event.test_error:.2f}%"
                text = f"trial {event.trial + 1}/{event.trials}  done: test error {error}  ({event.wall_time:.1f} s)"
            if self.bar is not None:
                self.bar.update(max(0, event.epochs - event.epochs_done))  # a diverged trial's epochs left
                if event.diverged:
                    self.bar.write(text, file=self.file)
            else:
                self._line(text)
        elif isinstance(event, ev.RunFinished):
            summary = event.summary
            error = summary.test_error
            text = f"{summary.spec}: {summary.note}"
            if error.mean is not None:
                text += f"; test error {100 * error.mean:.2f}%"
                if error.std is not None:
                    text += f" ± {100 * error.std:.2f}"
            self.close()
            self._line(text)

    def _line(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
