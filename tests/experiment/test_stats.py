import math

import pytest

from minispec.experiment import stats


def test_mean_and_sample_std():
    assert stats.mean([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert stats.std([1.0, 2.0, 3.0, 4.0]) == pytest.approx(math.sqrt(5 / 3))  # ddof = 1
    assert stats.mean([]) is None
    assert stats.std([0.3]) is None


# (a, b, t, p, df) from scipy.stats.ttest_ind(a, b, equal_var=False), scipy 1.x
WELCH = [
    ([0.10, 0.12, 0.11, 0.13, 0.09], [0.15, 0.14, 0.18, 0.16, 0.17, 0.15],
     -5.208553758776473, 0.0007040135275587554, 8.371080139372822),
    ([0.022, 0.025, 0.019, 0.031], [0.0248, 0.0252, 0.0249],
     -0.2794506463877368, 0.7979838789859668, 3.013198986303696),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [3, 3.5, 4, 4.5, 5],
     1.4696938456699067, 0.1692763391945013, 11.155180961824492),
]


@pytest.mark.parametrize("a, b, t, p, df", WELCH)
def test_welch_matches_scipy(a, b, t, p, df):
    test = stats.welch(a, b)
    assert test.t == pytest.approx(t, rel=1e-12)
    assert test.df == pytest.approx(df, rel=1e-12)
    assert test.p == pytest.approx(p, rel=1e-10)


def test_welch_is_symmetric_and_undefined_cases():
    a, b = WELCH[0][:2]
    assert stats.welch(a, b).p == pytest.approx(stats.welch(b, a).p, rel=1e-14)
    assert stats.welch([0.1], b) is None
    assert stats.welch([0.1, 0.1], [0.2, 0.2]) is None
    assert stats.welch(a, a).p == pytest.approx(1.0)


def test_betainc_known_values():
    # scipy.special.betainc
    assert stats.betainc(2.5, 0.5, 0.3) == pytest.approx(0.018927124071945658, rel=1e-12)
    assert stats.betainc(30, 0.5, 0.95) == pytest.approx(0.08062942690643064, rel=1e-12)
    assert stats.betainc(1, 1, 0.37) == pytest.approx(0.37, rel=1e-14)  # uniform
    assert stats.betainc(2, 3, 0.0) == 0.0 and stats.betainc(2, 3, 1.0) == 1.0
