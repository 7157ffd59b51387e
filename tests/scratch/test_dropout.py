"""Dropout: one random stream per replica, inverted scaling, identity in eval mode."""

from __future__ import annotations

import pytest
import torch

from minispec.scratch import Dropout

from .helpers import F64, gen


def test_replica_mask_depends_only_on_its_generator():
    x2 = torch.ones(2, 50, 8, dtype=F64)
    two = Dropout(0.4, replicas=2, generators=[gen(11), gen(99)])
    one = Dropout(0.4, replicas=1, generators=[gen(11)])
    y2, y1 = two.forward(x2), one.forward(x2[:1])
    assert torch.equal(y2[0], y1[0])
    assert not torch.equal(y2[0], y2[1])
    # and the next draw still agrees (streams advance independently)
    assert torch.equal(two.forward(x2)[0], one.forward(x2[:1])[0])


def test_inverted_scaling_and_gradient():
    p = 0.3
    d = Dropout(p, replicas=1, generators=[gen(0)])
    x = torch.rand(1, 200, 10, dtype=F64) + 0.5
    y = d.forward(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    assert abs(kept.double().mean().item() - (1 - p)) < 0.03
    g = torch.rand_like(x)
    torch.testing.assert_close(d.backward(g), torch.where(kept, g / (1 - p), 0.0))


def test_eval_mode_and_edge_probabilities():
    x = torch.randn(2, 4, 3, dtype=F64)
    d = Dropout(0.5, replicas=2).eval()
    assert torch.equal(d.forward(x), x) and torch.equal(d.backward(x), x)
    assert torch.equal(Dropout(0.0, replicas=2).forward(x), x)
    d1 = Dropout(1.0, replicas=2)
    assert not d1.forward(x).any() and not d1.backward(x).any()


def test_default_generators_follow_the_global_seed():
    x = torch.ones(3, 10, 10)
    torch.manual_seed(4)
    a = Dropout(0.5, replicas=3).forward(x)
    torch.manual_seed(4)
    b = Dropout(0.5, replicas=3).forward(x)
    assert torch.equal(a, b)


def test_generators_must_match_replicas():
    d = Dropout(0.5, replicas=2)
    with pytest.raises(ValueError):
        d.generators = [gen(0)]
    with pytest.raises(ValueError):
        Dropout(1.5)
