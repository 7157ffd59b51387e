import math

import pytest

from minispec.experiment.schedule import learning_rate
from minispec.ir.model import Schedule


def _train(program, kind, epochs=10, **options):
    return program.train.model_copy(update={"schedule": Schedule(kind=kind, options=options), "epochs": epochs})


def test_constant(tiny):
    train = _train(tiny, "constant")
    assert [learning_rate(train, e) for e in range(3)] == [0.5, 0.5, 0.5]


def test_step(tiny):
    train = _train(tiny, "step", every=3.0, gamma=0.5)
    assert [learning_rate(train, e) for e in range(7)] == [0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_cosine(tiny):
    train = _train(tiny, "cosine", epochs=4, min_lr=0.1)
    values = [learning_rate(train, e) for e in range(4)]
    expected = [0.1 + 0.4 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert values == pytest.approx(expected, rel=1e-15)
    assert values[0] == 0.5 and values[2] == pytest.approx(0.3)
