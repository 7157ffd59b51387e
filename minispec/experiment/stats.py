"""Statistics over trials: mean, sample std, Welch's t-test, the comparison table.

Everything is over trials (one number per trial: its final test error), and
the standard deviation is the sample one (ddof = 1), as the seed reports give.

Welch's t-test (unequal variances) compares two runs:

    t  = (mean_a - mean_b) / sqrt(s_a^2 / n_a + s_b^2 / n_b)
    df = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))
    p  = I_{df / (df + t^2)}(df / 2, 1 / 2)          (two-sided)

with I the regularized incomplete beta function, computed here with math only
(Lentz's continued fraction, as in Numerical Recipes' `betacf`), so scipy is
not needed. It equals `scipy.stats.ttest_ind(a, b, equal_var=False)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minispec.experiment.folder import RunResult


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for no values."""
    return math.fsum(values) / len(values) if values else None


def std(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof = 1); None for fewer than two values."""
    if len(values) < 2:
        return None
    centre = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (len(values) - 1))


@dataclass(frozen=True)
class TTest:
    """Welch's test of two samples: statistic, degrees of freedom, two-sided p-value."""

    t: float
    df: float
    p: float


def welch(a: Sequence[float], b: Sequence[float]) -> TTest | None:
    """Welch's unequal-variance t-test of `a` against `b`.

    None when it is undefined: a side with fewer than two values, or both
    sides without any spread (then the means either agree exactly or the
    difference is certain; neither is a test).
    """
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = std(a) ** 2 / len(a), std(b) ** 2 / len(b)
    if va + vb == 0:
        return None
    t = (mean(a) - mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return TTest(t=t, df=df, p=student_t_sf2(t, df))


def student_t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| >= |t|) of Student's t with `df` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(df / 2, 0.5, df / (df + t * t)))


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError("betainc needs a > 0 and b > 0")
    if not 0.0 <= x <= 1.0:
        raise ValueError("betainc needs 0 <= x <= 1")
    if x == 0.0 or x == 1.0:
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) by the modified Lentz method."""
    tiny, eps = 1e-300, 1e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        numerator = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        numerator = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            return h
    return h  # pragma: no cover - converges in a few hundred steps for any df of interest


def final_errors(result: "RunResult") -> list[float]:
    """Final test error of every finished, non-diverged trial of a run, in trial order."""
    return [trial["final"]["test_error"] for trial in result.trials if not trial["diverged"] and trial.get("final")]


def summary_table(results: list["RunResult"]) -> list[dict[str, Any]]:
    """One row per run: spec, trials, test error mean ± std, accuracy, best/worst,
    params, wall time, and Welch's p-value of its final test errors against
    the first run's (None for the first, and where the test is undefined)."""
    rows = []
    reference = final_errors(results[0]) if results else []
    several_backends = len({r.summary.get("backend") for r in results}) > 1
    for index, result in enumerate(results):
        summary = result.summary
        errors = final_errors(result)
        test = None if index == 0 else welch(errors, reference)
        error = summary.get("test_error") or {}
        label = summary.get("spec")
        if several_backends:
            label = f"{label} [{summary.get('backend')}]"
        rows.append(
            {
                "spec": label,
                "spec_hash": summary.get("spec_hash"),
                "folder": str(result.folder),
                "trials": len(errors),
                "planned": summary.get("trials_planned"),
                "diverged": summary.get("trials_diverged", 0),
                "test_error_mean": error.get("mean"),
                "test_error_std": error.get("std"),
                "accuracy_mean": (summary.get("accuracy") or {}).get("mean"),
                "best": (summary.get("best") or {}).get("test_error"),
                "worst": (summary.get("worst") or {}).get("test_error"),
                "params": summary.get("params"),
                "wall_time": summary.get("wall_time"),
                "t": None if test is None else test.t,
                "p_value": None if test is None else test.p,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows of `summary_table` as an aligned text table (errors in %)."""
    headers = ["spec", "trials", "test error (%)", "accuracy (%)", "best (%)", "worst (%)", "params", "time (s)", "p vs first"]
    lines = []
    for row in rows:
        trials = f"{row['trials']}/{row['planned']}" if row["planned"] is not None else str(row["trials"])
        if row["diverged"]:
            trials += f" ({row['diverged']} diverged)"
        lines.append(
            [
                str(row["spec"]),
                trials,
                _pm(row["test_error_mean"], row["test_error_std"]),
                _pct(row["accuracy_mean"]),
                _pct(row["best"]),
                _pct(row["worst"]),
                f"{row['params']:,}" if row["params"] is not None else "-",
                f"{row['wall_time']:.1f}" if row["wall_time"] is not None else "-",
                "-" if row["p_value"] is None else _p(row["p_value"]),
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
