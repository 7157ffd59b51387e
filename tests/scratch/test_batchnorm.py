"""BatchNorm running statistics (momentum, unbiased variance, counter) and eval mode against torch."""

from __future__ import annotations

import pytest
import torch

from minispec.scratch import BatchNorm1d, BatchNorm2d

from .helpers import F64, TOL, gen, randn


@pytest.mark.parametrize("ours_cls, torch_cls, sample", [(BatchNorm1d, torch.nn.BatchNorm1d, ()), (BatchNorm2d, torch.nn.BatchNorm2d, (3, 4))])
def test_running_stats_and_eval(ours_cls, torch_cls, sample):
    r, b, c = 2, 5, 3
    g = gen(0)
    ours = ours_cls(c, replicas=r, dtype=F64)
    refs = [torch_cls(c, dtype=F64) for _ in range(r)]
    with torch.no_grad():
        for _ in range(4):
            x = randn((r, b, c, *sample), g) * 3 + 2
            ours.forward(x)
            for k, ref in enumerate(refs):
                ref(x[k])
        for k, ref in enumerate(refs):
            torch.testing.assert_close(ours.running_mean.value[k], ref.running_mean, **TOL)
            torch.testing.assert_close(ours.running_var.value[k], ref.running_var, **TOL)
            assert ours.num_batches_tracked.value[k] == ref.num_batches_tracked == 4
        assert ours.num_batches_tracked.value.dtype == torch.long
        ours.eval()
        x = randn((r, b, c, *sample), g)
        y = ours.forward(x)
        for k, ref in enumerate(refs):
            torch.testing.assert_close(y[k], ref.eval()(x[k]), **TOL)
        assert ours.num_batches_tracked.value.tolist() == [4, 4]  # eval mode leaves the statistics alone


def test_replicas_keep_separate_statistics():
    bn = BatchNorm1d(2, replicas=2, dtype=F64)
    x = torch.zeros(2, 4, 2, dtype=F64)
    x[1] = randn((4, 2), gen(1))
    bn.forward(x)
    assert not bn.running_mean.value[0].any()
    assert bn.running_mean.value[1].abs().sum() > 0


def test_training_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value"):
        BatchNorm1d(3).forward(torch.zeros(1, 1, 3))
    BatchNorm1d(3).eval().forward(torch.zeros(1, 1, 3))
