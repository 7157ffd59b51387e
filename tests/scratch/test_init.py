"""minispec.init: torch's default draw bit for bit, the other schemes by their statistics."""

from __future__ import annotations

import math

import pytest
import torch

from minispec import init
from minispec.scratch import Conv2d, Linear

from .helpers import F64, gen


@pytest.mark.parametrize("seed", [0, 1, 123])
@pytest.mark.parametrize("fan", [(2, 25), (25, 25), (25, 1), (7, 3), (100, 10)])
def test_torch_scheme_reproduces_nn_linear(seed, fan):
    fin, fout = fan
    torch.manual_seed(seed)
    ref = torch.nn.Linear(fin, fout)
    g = gen(seed)
    w = init.draw((fout, fin), *init.fans("linear", (fout, fin)), "weight", generator=g)
    b = init.draw((fout,), *init.fans("linear", (fout, fin)), "bias", generator=g)
    assert torch.equal(w, ref.weight.detach()) and torch.equal(b, ref.bias.detach())


@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("shape", [(5, 3, 3, 2), (1, 1, 1, 1), (8, 2, 3, 3)])
def test_torch_scheme_reproduces_nn_conv2d(seed, shape):
    o, c, kh, kw = shape
    torch.manual_seed(seed)
    ref = torch.nn.Conv2d(c, o, (kh, kw))
    g = gen(seed)
    fin, fout = init.fans("conv2d", shape)
    assert (fin, fout) == (c * kh * kw, o * kh * kw)
    w = init.draw(shape, fin, fout, "weight", generator=g)
    b = init.draw((o,), fin, fout, "bias", generator=g)
    assert torch.equal(w, ref.weight.detach()) and torch.equal(b, ref.bias.detach())


def test_layers_draw_their_default_init_like_torch():
    # one generator per replica: replica k is the torch layer built after manual_seed(seed_k)
    seeds = [3, 4, 9]
    lin = Linear(6, 4, replicas=3, generator=[gen(s) for s in seeds])
    conv = Conv2d(2, 3, 3, replicas=3, generator=[gen(s) for s in seeds], dtype=F64)
    for k, s in enumerate(seeds):
        torch.manual_seed(s)
        ref = torch.nn.Linear(6, 4)
        assert torch.equal(lin.weight.value[k], ref.weight.detach())
        assert torch.equal(lin.bias.value[k], ref.bias.detach())
        torch.manual_seed(s)
        ref = torch.nn.Conv2d(2, 3, 3)
        assert torch.equal(conv.weight.value[k], ref.weight.detach().double())
        assert torch.equal(conv.bias.value[k], ref.bias.detach().double())
    # one generator: the replicas draw one after the other
    lin = Linear(6, 4, replicas=2, generator=gen(3))
    torch.manual_seed(3)
    refs = [torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)]
    for k, ref in enumerate(refs):
        assert torch.equal(lin.weight.value[k], ref.weight.detach())
        assert torch.equal(lin.bias.value[k], ref.bias.detach())


def test_float64_starts_from_the_float32_numbers():
    for scheme in init.SCHEMES:
        a = init.draw((30, 20), 20, 30, "weight", scheme, generator=gen(1))
        b = init.draw((30, 20), 20, 30, "weight", scheme, generator=gen(1), dtype=F64)
        assert b.dtype == F64 and torch.equal(a.double(), b)


def test_other_schemes_statistics():
    n_in, n_out = 400, 300
    shape = (n_out, n_in)

    def w(scheme, options=None):
        return init.draw(shape, n_in, n_out, "weight", scheme, options, gen(0))

    assert not w("zero").any()
    assert abs(w("normal").std().item() - 1.0) < 0.01
    assert abs(w("normal", {"std": 0.1}).std().item() - 0.1) < 0.001
    u = w("uniform", {"bound": 0.3})
    assert u.abs().max() <= 0.3 and u.abs().max() > 0.29 and abs(u.std().item() - 0.3 / math.sqrt(3)) < 0.002
    glorot = math.sqrt(6 / (n_in + n_out))
    gl = w("glorot")
    assert gl.abs().max() <= glorot and gl.abs().max() > 0.99 * glorot
    assert abs(w("kaiming").std().item() - math.sqrt(2 / n_in)) < 0.001
    assert abs(w("kaiming", {"gain": 1.0}).std().item() - math.sqrt(1 / n_in)) < 0.001
    t = w("torch")
    assert t.abs().max() <= 1 / math.sqrt(n_in) * (1 + 1e-6) and t.abs().max() > 0.99 / math.sqrt(n_in)


@pytest.mark.parametrize("scheme", ["zero", "normal", "uniform", "glorot", "kaiming"])
def test_non_torch_biases_are_zero_and_draw_nothing(scheme):
    g = gen(0)
    state = g.get_state()
    assert not init.draw((5,), 3, 5, "bias", scheme, generator=g).any()
    assert torch.equal(g.get_state(), state)


def test_errors():
    with pytest.raises(ValueError):
        init.draw((2, 2), 2, 2, "weight", "xavier")
    with pytest.raises(ValueError):
        init.draw((2, 2), 2, 2, "kernel")
    with pytest.raises(ValueError):
        init.fans("linear", (3,))
