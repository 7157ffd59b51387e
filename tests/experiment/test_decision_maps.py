"""Decision maps of run folders: hand-set models whose boundary is known, in both backends."""

import numpy as np
import pytest
import torch

from minispec.backends import make_model
from minispec.backends.checkpoint import expected_shapes, save_state
from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.experiment import load_run, run_experiment
from minispec.experiment.decision import decision_maps, score
from minispec.experiment.plots import draw_decision

THRESHOLD = """\
spec line
data disk(train=50, test=300)
net { out = x | linear(1) }
loss { out mse(target) }
train { optimizer sgd(lr=0.1) batch 50 epochs 1 trials 2 }
"""

TWO_WAY = THRESHOLD.replace("linear(1)", "linear(2)").replace("mse(target)", "cross_entropy(target)")


def factory(backend):
    return lambda program, states, device: make_model(backend, program, states, device)


def hand_set_run(tmp_path, text, state):
    """A finished two-trial run whose weights are then replaced by `state` in trial 1."""
    spec = tmp_path / "spec.mdl"
    spec.write_text(text)
    program = compile_file(spec)
    folder = tmp_path / "run"
    run_experiment(program, backend_factory=factory("torch"), out_dir=folder)
    names = list(expected_shapes(program))
    save_state(folder / "weights" / "trial_001.safetensors", dict(zip(names, state)))
    return load_run(folder)


@pytest.mark.parametrize("backend", ["torch", "scratch"])
def test_a_threshold_head_maps_its_output_and_splits_at_the_threshold(tmp_path, backend):
    # out = x[0]: class 1 where x[0] > 0.5
    run = hand_set_run(tmp_path, THRESHOLD, [torch.tensor([[1.0, 0.0]]), torch.tensor([0.0])])
    (m,) = decision_maps(run, trials=[1], resolution=100, backend=backend)
    assert m.score.shape == (100, 100) and m.level == 0.5
    assert m.xs[0] == 0.0 and m.xs[-1] == 1.0 and m.ys[0] == 0.0 and m.ys[-1] == 1.0
    np.testing.assert_allclose(m.score, np.tile(m.xs, (100, 1)), atol=1e-6)
    assert len(m.points) == 300
    inside = (m.points[:, 0] - 0.5) ** 2 + (m.points[:, 1] - 0.5) ** 2 < 1 / (2 * np.pi)
    np.testing.assert_array_equal(m.labels, inside.astype(int))
    np.testing.assert_array_equal(m.right, (m.points[:, 0] > 0.5) == inside)


def test_a_two_way_head_maps_the_class_one_probability(tmp_path):
    # logits (0, 8 (x[0] - 0.5)): p(class 1) = sigmoid(8 (x[0] - 0.5))
    state = [torch.tensor([[0.0, 0.0], [8.0, 0.0]]), torch.tensor([0.0, -4.0])]
    run = hand_set_run(tmp_path, TWO_WAY, state)
    maps = decision_maps(run, resolution=11)
    assert [m.title for m in maps] == ["line, trial 0", "line, trial 1"]
    expected = 1 / (1 + np.exp(-8 * (np.linspace(0, 1, 11) - 0.5)))
    np.testing.assert_allclose(maps[1].score, np.tile(expected, (11, 1)), atol=1e-6)
    # the trained trial 0 is read the way the run read it: the recorded test error
    recorded = next(t for t in run.trials if t.trial == 0).final.test_error
    assert maps[0].test_error == pytest.approx(recorded)


def test_the_score_flips_where_the_decision_does():
    from minispec.ir.model import Loss, TargetRef

    output = torch.randn(2, 500, 2)
    for kind in ("cross_entropy", "mse"):
        loss = Loss(node="out", kind=kind, target=TargetRef(name="target"), encoding="index", classes=2,
                    decision="argmax")
        value, level = score(loss, output)
        assert torch.equal(value > level, output.argmax(dim=-1) == 1)


def test_plot_writes_the_figure_and_refuses_runs_it_cannot_map(tmp_path):
    run = hand_set_run(tmp_path, THRESHOLD, [torch.tensor([[1.0, 0.0]]), torch.tensor([0.0])])
    path, maps = draw_decision(run.folder, mean=True, resolution=20)
    assert path == run.folder / "decision_mean.png" and path.stat().st_size > 1000 and len(maps) == 2
    with pytest.raises(MinispecError, match="no finished trial 7"):
        decision_maps(run, trials=[7])
    pairs = tmp_path / "pairs.mdl"
    pairs.write_text("spec p\ndata mnist_pairs(train=20, test=20)\nnet { out = x | flatten | linear(2) }\n"
                     "loss { out cross_entropy(target) }\ntrain { epochs 1 trials 1 batch 10 }\n")
    run_experiment(compile_file(pairs), backend_factory=factory("torch"), out_dir=tmp_path / "p")
    with pytest.raises(MinispecError, match="needs one input of 2-D points"):
        decision_maps(load_run(tmp_path / "p"))
