"""Where one minispec command spends its wall time, phase by phase.

    .venv/bin/python benchmarks/phases.py run specs/disk_onehot.mdl --set optimizer=sgd --trials 10 --epochs 200 --out /tmp/r
    .venv/bin/python benchmarks/phases.py sweep specs/disk_onehot.mdl --set optimizer=sgd \\
        --grid lr=0.005,0.01,0.02,0.05,0.1,0.2,0.5,1 --trials 10 --epochs 200 --out /tmp/s

Runs the `minispec` command given as arguments in this process, as the CLI
does (the same thread policy, set before torch is imported), with timers
around the runner's phases: the imports, the chunk's model build, the
training loop (`_train`) and inside it the training steps and the
evaluations, and the run folder's trial saves and final writes. The
command's own output is discarded; the phases are printed on stderr. A
phase nested in another is counted in both. No figure here is asserted anywhere.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections import Counter
from pathlib import Path

START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minispec.threads import bound_idle_spin  # noqa: E402

bound_idle_spin()  # as the CLI does, before torch is imported

from minispec.backends.scratch_graph import ScratchModel  # noqa: E402
from minispec.backends.torch_nn.vectorized import VectorizedTorchModel  # noqa: E402
from minispec.cli import main as minispec_cli  # noqa: E402
from minispec.experiment import folder, training  # noqa: E402

SPENT: Counter[str] = Counter()


def timed(owner, name: str, label: str) -> None:
    """Replace owner.name by the same callable that adds its seconds to SPENT[label]."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    imports = time.perf_counter() - START
    timed(training, "_build", "model build")
    timed(training, "_train", "training loop")
    timed(training, "evaluate", "  evaluations")
    for model in (VectorizedTorchModel, ScratchModel):
        timed(model, "train_step", "  training steps")
    timed(folder.RunFolder, "save_trial", "folder: save trials")
    timed(folder.RunFolder, "finish", "folder: finish (csv, png)")
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = minispec_cli.main(argv, standalone_mode=False)
    command = time.perf_counter() - start
    print(f"imports {imports:.2f} s, command {command:.2f} s (exit {code or 0})", file=sys.stderr)
    for label in ("model build", "training loop", "  training steps", "  evaluations", "folder: save trials",
                  "folder: finish (csv, png)"):
        print(f"  {label:<28}{SPENT[label]:7.2f} s", file=sys.stderr)
    rest = SPENT["training loop"] - SPENT["  training steps"] - SPENT["  evaluations"]
    print(f"  {'  rest of the loop':<28}{rest:7.2f} s  (shuffling, batches, records)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
