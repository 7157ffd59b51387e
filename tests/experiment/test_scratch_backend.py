"""The hand-written backend holds R replicas: vectorized trials equal sequential ones."""

import pytest

from conftest import TINY, write_spec
from minispec.experiment import run_experiment

backends = pytest.importorskip("minispec.backends")


def scratch_factory(program, states, device, generators=None):
    return backends.make_model("scratch", program, states, device, generators=generators)


def test_scratch_vectorized_equals_sequential(tmp_path):
    program = write_spec(tmp_path, TINY.replace("sgd(lr=0.5)", "adam(lr=0.02)"))
    seq = run_experiment(program, backend_factory=scratch_factory, trials=3, out_dir=tmp_path / "seq")
    vec = run_experiment(program, backend_factory=scratch_factory, trials=3, out_dir=tmp_path / "vec",
                         vectorize=True, chunk=2)
    assert vec.summary.backend == seq.summary.backend == "scratch"
    assert [t.chunk for t in vec.trials] == [[0, 1], [0, 1], [2]]
    for a, b in zip(seq.trials, vec.trials):
        for x, y in zip(a.records, b.records, strict=True):
            # training is bit-identical; the evaluation loss may differ in the last bits (batched reduction)
            assert x.model_dump(exclude={"wall_time", "test_loss"}) == y.model_dump(exclude={"wall_time", "test_loss"})
            assert y.test_loss == pytest.approx(x.test_loss, rel=1e-6)


def test_scratch_dropout_is_per_trial_when_vectorized(tmp_path):
    text = TINY.replace("sgd(lr=0.5)", "adam(lr=0.02)").replace("tanh | linear(1)", "tanh | dropout(0.3) | linear(1)")
    program = write_spec(tmp_path, text)
    assert any(node.op == "dropout" for node in program.nodes)
    seq = run_experiment(program, backend_factory=scratch_factory, trials=2, out_dir=tmp_path / "seq")
    vec = run_experiment(program, backend_factory=scratch_factory, trials=2, out_dir=tmp_path / "vec",
                         vectorize=True)
    for a, b in zip(seq.trials, vec.trials):
        assert [r.train_loss for r in a.records] == [r.train_loss for r in b.records]
