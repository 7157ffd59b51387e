"""The hand-written graph ops (sub, mul, outer, matmul, sum, global average pooling):
backward against finite differences, forward against plain tensor maths."""

from __future__ import annotations

import pytest
import torch

from minispec import scratch
from minispec.backends.scratch_graph import Add, MatMul, Mul, Outer, ScratchModel, Sub, Sum
from minispec.backends.weights import initial_state, trial_generator
from minispec.compiler import compile_file
from tests.conftest import ROOT
from tests.scratch.helpers import directional_fd, randn

R, B = 2, 3


def fd_check(op, xs: list[torch.Tensor], seed: int = 0) -> None:
    """dL/dx_i of L = <op(xs), cotangent> against central differences along random directions."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        y = op.forward(*xs)
        cot = randn(y.shape, g, torch.float64)
        grads = op.backward(cot)
        grads = grads if isinstance(grads, tuple) else (grads,)
        assert len(grads) == len(xs)

        def phi() -> float:
            return float((op.forward(*xs) * cot).sum())

        for x, gx in zip(xs, grads):
            assert gx.shape == x.shape
            for _ in range(3):
                directional_fd(phi, x, gx, g)


def inputs(*shapes, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [randn((R, B, *shape), g, torch.float64) for shape in shapes]


@pytest.mark.parametrize("op,shapes", [
    (Add(), ([4], [4], [4])),
    (Sub(), ([2, 3], [2, 3])),
    (Mul(), ([5], [5])),
    (Mul(), ([2, 2], [2, 2], [2, 2])),
    (Outer(), ([3], [4])),
    (MatMul(), ([3], [3, 4])),
    (MatMul(), ([2, 3], [3, 4])),
    (MatMul(), ([2, 3], [3])),
    (Sum(-1), ([2, 3],)),
    (Sum(0), ([2, 3],)),
    (Sum(1), ([2, 3],)),
    (Sum(0), ([4],)),
    (scratch.GlobalAvgPool2d(), ([3, 4, 5],)),
])
def test_backward_matches_finite_differences(op, shapes):
    fd_check(op, inputs(*shapes))


def test_forwards_are_the_products_and_sums_they_claim():
    a, b = inputs([3], [3, 4])
    torch.testing.assert_close(MatMul().forward(a, b), torch.einsum("rbi,rbik->rbk", a, b))
    u, v = inputs([3], [4])
    torch.testing.assert_close(Outer().forward(u, v), torch.einsum("rbi,rbj->rbij", u, v))
    (m,) = inputs([2, 3])
    torch.testing.assert_close(Sum(1).forward(m), m[..., 0] + m[..., 1] + m[..., 2])
    torch.testing.assert_close(Sum(-1).forward(m), m.reshape(R, B, 6).sum(-1, keepdim=True))
    (x,) = inputs([3, 4, 5])
    torch.testing.assert_close(scratch.GlobalAvgPool2d().forward(x), x.mean((-2, -1)))


def test_only_a_layer_whose_input_needs_a_gradient_computes_it():
    """The graph tells a first layer (its input the data) to skip dL/dx; every later layer computes it."""
    program = compile_file(str(ROOT / "specs/disk.mdl"), [])
    model = ScratchModel(program, [initial_state(program, trial_generator(0, 0))])
    linears = [model.layers[node.id] for node in program.nodes if isinstance(model.layers.get(node.id), scratch.Linear)]
    assert [layer.input_grad for layer in linears] == [False, True, True, True]
