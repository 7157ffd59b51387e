"""The comparison table of runs: one row per run, Welch's p against the first.

    rows = summary_table(results); print(format_table(rows))

Statistics come from `minispec.experiment.stats` (pure maths); this module
only chooses the numbers of a row and lays them out as text.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from minispec.experiment.folder import RunResult
from minispec.experiment.stats import welch


class TableRow(BaseModel):
    """One run of a comparison (errors as fractions; p_value None for the first run)."""

    model_config = ConfigDict(frozen=True)

    spec: str
    spec_hash: str
    folder: str
    trials: int
    planned: int
    diverged: int
    test_error_mean: float | None
    test_error_std: float | None
    accuracy_mean: float | None
    best: float | None
    worst: float | None
    params: int
    wall_time: float
    t: float | None
    p_value: float | None


def summary_table(results: list[RunResult]) -> list[TableRow]:
    """One row per run: spec, trials, test error mean ± std, accuracy, best/worst,
    params, wall time, and Welch's p-value of its final test errors against
    the first run's (None for the first, and where the test is undefined)."""
    rows = []
    reference = results[0].final_errors() if results else []
    several_backends = len({r.summary.backend for r in results}) > 1
    for index, result in enumerate(results):
        summary = result.summary
        errors = result.final_errors()
        test = None if index == 0 else welch(errors, reference)
        label = f"{summary.spec} [{summary.backend}]" if several_backends else summary.spec
        rows.append(TableRow(
            spec=label, spec_hash=summary.spec_hash, folder=str(result.folder), trials=len(errors),
            planned=summary.trials_planned, diverged=summary.trials_diverged,
            test_error_mean=summary.test_error.mean, test_error_std=summary.test_error.std,
            accuracy_mean=summary.accuracy.mean,
            best=None if summary.best is None else summary.best.test_error,
            worst=None if summary.worst is None else summary.worst.test_error,
            params=summary.params, wall_time=summary.wall_time,
            t=None if test is None else test.t, p_value=None if test is None else test.p,
        ))
    return rows


def format_table(rows: list[TableRow]) -> str:
    """The rows of `summary_table` as an aligned text table (errors in %)."""
    headers = ["spec", "trials", "test error (%)", "accuracy (%)", "best (%)", "worst (%)", "params", "time (s)", "p vs first"]
    lines = []
    for row in rows:
        trials = f"{row.trials}/{row.planned}"
        if row.diverged:
            trials += f" ({row.diverged} diverged)"
        lines.append(
            [
                row.spec,
                trials,
                _pm(row.test_error_mean, row.test_error_std),
                _pct(row.accuracy_mean),
                _pct(row.best),
                _pct(row.worst),
                f"{row.params:,}",
                f"{row.wall_time:.1f}",
                "-" if row.p_value is None else _p(row.p_value),
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
    right = {1, 2, 3, 4, 5, 6, 7, 8}

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [fmt(headers), fmt(["-" * w for w in widths])]
    out.extend(fmt(line) for line in lines)
    return "\n".join(out)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _pm(centre: float | None, spread: float | None) -> str:
    if centre is None:
        return "-"
    return f"{100 * centre:.2f}" + ("" if spread is None else f" ± {100 * spread:.2f}")


def _p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"
