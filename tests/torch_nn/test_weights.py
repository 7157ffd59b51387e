"""initial_state and trial_generator: draw order, torch's bounds, fans, seeds."""

from __future__ import annotations

import math

import pytest
import torch

from minispec import init
from minispec.backends.weights import WEIGHTS_OFFSET, initial_state, trial_generator, trial_seed

from .helpers import CourseWSN, canonical, gen, program


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("name", ["wsn", "caux"])
def test_torch_scheme_is_torch_default_init(name, seed):
    """Bit for bit the state of the hand-written net built after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    reference = canonical(CourseWSN(caux=name == "caux").state_dict())
    ours = initial_state(program(name), gen(seed))
    assert list(ours) == list(reference)
    for key in reference:
        assert ours[key].dtype == reference[key].dtype, key
        assert torch.equal(ours[key], reference[key]), key


def test_torch_scheme_bounds():
    """weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)): inside the bound, and close to it."""
    state = initial_state(program("wsn"), gen(0))
    for key, fan_in in [("extract:5:conv2d", 32 * 9), ("out:2:linear", 512), ("extract:1:conv2d", 9)]:
        bound = 1 / math.sqrt(fan_in)
        for role in ("weight", "bias"):
            values = state[f"{key}.{role}"]
            assert values.abs().max() <= bound * (1 + 1e-6), (key, role)
            if values.numel() >= 1000:
                assert values.abs().max() > 0.99 * bound, (key, role)
                assert abs(values.mean().item()) < 0.05 * bound
                # U(-b, b) has variance b^2 / 3
                assert values.var().item() == pytest.approx(bound**2 / 3, rel=0.05)


def test_fans_of_every_owner():
    fans = {
        owner.weights: init.fans(owner.op, owner.param_shapes["weight"])
        for owner in program("caux").weight_owners
        if owner.op in ("linear", "conv2d")
    }
    assert fans == {
        "extract:1:conv2d": (9, 288),
        "extract:5:conv2d": (288, 576),
        "digit_a": (256, 10),
        "digit_b": (256, 10),
        "out:2:linear": (512, 64),
        "out:4:linear": (64, 64),
        "out:6:linear": (64, 32),
        "out": (32, 2),
    }
    conv = {o.weights: init.fans(o.op, o.param_shapes["weight"]) for o in program("caux_conv").weight_owners
            if o.op == "conv2d"}
    assert conv["out:2:linear"] == (512, 256)  # [64, 128, 2, 2]: same fan_in as linear(512 -> 64)


def test_same_seed_same_state_other_seed_other_state():
    p = program("caux")
    a, b, c = initial_state(p, gen(3)), initial_state(p, gen(3)), initial_state(p, gen(4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["out.weight"], c["out.weight"])


def test_batchnorm_state_and_keys():
    state = initial_state(program("sn"), gen(0))
    assert torch.equal(state["a:2:batchnorm.weight"], torch.ones(32))
    assert torch.equal(state["a:2:batchnorm.bias"], torch.zeros(32))
    assert torch.equal(state["a:2:batchnorm.running_mean"], torch.zeros(32))
    assert torch.equal(state["a:2:batchnorm.running_var"], torch.ones(32))
    tracked = state["a:2:batchnorm.num_batches_tracked"]
    assert tracked.dtype == torch.long and tracked.shape == () and tracked.item() == 0
    # sn has two separate extractors: each its own set
    assert "b:2:batchnorm.weight" in state and "b:1:conv2d.weight" in state
    assert sum(t.numel() for k, t in state.items() if k.rsplit(".", 1)[1] in ("weight", "bias")) == \
        program("sn").total_params


def test_shared_sets_appear_once_and_no_bias_draws_nothing():
    state = initial_state(program("odd_names"), gen(0))
    assert [k for k in state if k.startswith("lambda:1:conv2d")] == ["lambda:1:conv2d.weight", "lambda:1:conv2d.bias"]
    assert "torch:1:conv2d.bias" not in state and "to.bias" not in state


def test_float64_is_the_float32_draw_cast():
    p = program("wsn")
    s32, s64 = initial_state(p, gen(5)), initial_state(p, gen(5), dtype=torch.float64)
    for key in s32:
        if key.endswith("num_batches_tracked"):
            assert s64[key].dtype == torch.long
            continue
        assert s64[key].dtype == torch.float64
        assert torch.equal(s64[key], s32[key].double())


def test_other_schemes():
    zero = initial_state(program("wsn", ("init=zero",)), gen(0))
    assert all(not t.any() for k, t in zero.items() if k.endswith((".weight", ".bias")) and "batchnorm" not in k)

    normal = initial_state(program("wsn", ("init=normal(std=0.5)",)), gen(0))
    w = normal["extract:5:conv2d.weight"]
    assert w.std().item() == pytest.approx(0.5, rel=0.05)
    assert not normal["extract:5:conv2d.bias"].any()

    glorot = initial_state(program("wsn", ("init=glorot",)), gen(0))
    bound = math.sqrt(6 / (512 + 64))
    assert glorot["out:2:linear.weight"].abs().max() <= bound
    assert glorot["out:2:linear.weight"].abs().max() > 0.99 * bound


def test_trial_seed_is_the_documented_formula():
    assert trial_seed(0, 0) == 0x9E3779B97F4A7C15 == WEIGHTS_OFFSET
    assert trial_seed(2, 5) == 2 * 1_000_003 + 5 + 0x9E3779B97F4A7C15
    assert trial_seed(2**60, 1) == (2**60 * 1_000_003 + 1 + WEIGHTS_OFFSET) % 2**64
    assert 0 <= trial_seed(-1, 0) < 2**64


def test_trial_generator():
    p = program("caux")
    first = initial_state(p, trial_generator(0, 3))
    again = initial_state(p, trial_generator(0, 3))
    assert all(torch.equal(first[k], again[k]) for k in first)
    by_hand = initial_state(p, torch.Generator().manual_seed(0 * 1_000_003 + 3 + WEIGHTS_OFFSET))
    assert all(torch.equal(first[k], by_hand[k]) for k in first)
    others = [initial_state(p, trial_generator(0, k))["out.weight"] for k in (0, 1, 2)]
    others.append(initial_state(p, trial_generator(1, 3))["out.weight"])
    assert all(not torch.equal(first["out.weight"], o) for o in others)
