"""mse(scalar(t)) on a target of more than two classes: one output regressing the class index."""

import pytest
import torch

from minispec.backends.targets import decide, encode, error_count
from minispec.compiler import compile_file
from minispec.errors import MinispecError

SPEC = """\
spec regress
data mnist_pairs(train=20, test=20)
net {
    a = x[0] | flatten | linear(1)
    out = x | flatten | linear(2)
}
loss {
    out cross_entropy(target)
    a mse(LOSS_TARGET) weight 0.5
}
"""


def test_an_explicit_scalar_regresses_the_class_and_is_read_as_the_nearest_class(write_spec):
    program = compile_file(write_spec(SPEC.replace("LOSS_TARGET", "scalar(classes[0])")))
    loss = program.losses[1]
    assert (loss.encoding, loss.decision, loss.classes) == ("scalar", "nearest", 10)
    raw = {"classes": torch.tensor([[3, 1], [9, 0], [0, 5]])}
    assert encode(loss, raw).tolist() == [[3.0], [9.0], [0.0]]
    output = torch.tensor([[3.4], [11.0], [-2.0]])
    assert decide(loss, output).tolist() == [3, 9, 0]
    assert error_count(loss, torch.tensor([[2.6], [8.4], [0.2]]), raw).item() == 1


def test_an_implicit_scalar_on_ten_classes_is_still_refused(write_spec):
    with pytest.raises(MinispecError, match="has 10 classes"):
        compile_file(write_spec(SPEC.replace("LOSS_TARGET", "classes[0]")))
