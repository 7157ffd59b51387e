"""Direct reading of the digit heads, against a count made by hand from the saved model's outputs."""

import pytest
import torch

from minispec.backends import make_model
from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.experiment import load_run, run_experiment
from minispec.experiment.readings import format_readings, read_run
from minispec.experiment.trained import trained_model, trial_data

HEADS = """\
spec heads
data mnist_pairs(train=60, test=40)
net {
    digit = instance { flatten | linear(10) }
    digit_a = digit(x[0])
    digit_b = digit(x[1])
    out = concat(digit_a, digit_b) | linear(2)
}
loss {
    out cross_entropy(target)
    digit_a cross_entropy(classes[0])
    digit_b cross_entropy(classes[1])
}
train { optimizer sgd(lr=0.05) batch 20 epochs 2 trials 2 }
"""


def factory(program, states, device):
    return make_model("torch", program, states, device)


def test_both_readings_match_a_count_by_hand_and_the_recorded_error(tmp_path):
    spec = tmp_path / "heads.mdl"
    spec.write_text(HEADS)
    run = run_experiment(compile_file(spec), backend_factory=factory, out_dir=tmp_path / "run")
    result = read_run(load_run(run.folder))
    assert [r.trial for r in result.readings] == [0, 1]
    model, _ = trained_model(run, [1])
    draw = trial_data(run.program, 1)
    with torch.no_grad():
        out = model.predict({"x": draw.test.inputs["x"][None]})
    first, second = out["digit_a"][0].argmax(-1), out["digit_b"][0].argmax(-1)
    truth = draw.test.targets["target"]
    by_hand = ((first <= second).long() != truth).float().mean().item()
    assert result.readings[1].direct_test == pytest.approx(by_hand)
    assert torch.equal(truth, (draw.test.targets["classes"][:, 0] <= draw.test.targets["classes"][:, 1]).long())
    for reading, trial in zip(result.readings, run.trials):
        assert reading.learned_test == pytest.approx(trial.final.test_error)
        assert reading.learned_train == pytest.approx(trial.final.train_error)
    table = format_readings([result])
    assert "digits read directly test (%)" in table and table.splitlines()[2].startswith("heads ")


def test_a_spec_without_digit_heads_is_refused(tmp_path):
    spec = tmp_path / "plain.mdl"
    spec.write_text("spec plain\ndata mnist_pairs(train=20, test=20)\nnet { out = x | flatten | linear(2) }\n"
                    "loss { out cross_entropy(target) }\ntrain { epochs 1 trials 1 batch 10 }\n")
    run = run_experiment(compile_file(spec), backend_factory=factory, out_dir=tmp_path / "run")
    with pytest.raises(MinispecError, match="no 10-way head on each digit"):
        read_run(run)
