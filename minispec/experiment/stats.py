"""Statistics over trials: mean, sample std, Welch's t-test. Pure maths: no run, no file.

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
