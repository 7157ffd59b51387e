"""Replicas of one model with their own hyperparameters end where each ends alone.

A sweep trains points that differ in values changing no shape (learning rate,
momentum, weight decay, loss weights, dropout probability, schedule, epochs)
as the replicas of one model (`minispec.backends.replicas`). Here every
replica of such a model is compared with a lone model (one replica) built from
its own Program, in both backends: same data, weights, batch order and
masks, so the records agree up to float32 rounding of the batched kernels.
"""

import pytest
import torch

from minispec.backends import make_model
from minispec.backends.replicas import ReplicaHyper
from minispec.compiler import compile_file
from minispec.experiment.folder import program_hash
from minispec.experiment.training import Chunk, train_chunk
from tests.conftest import ROOT

SPEC = ROOT / "tests/experiment/specs/sweepable.mdl"

POINTS = [
    ["optimizer=sgd(lr=0.1, momentum=0.5)"],
    ["optimizer=sgd(lr=0.05, momentum=0.0, weight_decay=0.01)", "drop=0", "aux_weight=1.5"],
    ["optimizer=sgd(lr=0.05, momentum=0.9)", "drop=0.5", "epochs=2"],
    ["schedule=step(every=1, gamma=0.5)", "aux_weight=0", "drop=0.1"],
]
ADAM_POINTS = [
    ["optimizer=adam(lr=0.01)"],
    ["optimizer=adam(lr=0.03, beta1=0.8, weight_decay=0.001)", "drop=0.3"],
]


def factory(backend):
    def make(program, states, device, generators=None, hyper=None):
        return make_model(backend, program, states, device, generators=generators, hyper=hyper)

    return make


def chunk(programs, ids, backend):
    """Train replica r as trial ids[r] of programs[r], all in one model: {record, state} per replica."""
    work = Chunk(programs[0], tuple(ids), program_hash(programs[0]), points=tuple(programs),
                 point_hashes=tuple(program_hash(p) for p in programs))
    return [{**f.record.model_dump(), "_state": f.state} for f in train_chunk(work, factory(backend))]


@pytest.mark.parametrize("backend", ["torch", "scratch"])
@pytest.mark.parametrize("points", [POINTS, ADAM_POINTS], ids=["sgd", "adam"])
def test_each_replica_ends_where_its_lone_model_ends(backend, points):
    programs = [compile_file(SPEC, point) for point in points for _ in range(2)]
    ids = [k for _ in points for k in range(2)]
    together = chunk(programs, ids, backend)
    for program, k, result in zip(programs, ids, together):
        (alone,) = chunk([program], [k], backend)
        assert not alone["diverged"] and result["epochs_done"] == alone["epochs_done"] == program.train.epochs
        assert len(result["records"]) == len(alone["records"])
        for a, b in zip(alone["records"], result["records"]):
            assert b["lr"] == a["lr"]
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4, abs=1e-6)
            assert b["losses"] == pytest.approx(a["losses"], rel=1e-4, abs=1e-6)
            assert b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-4, abs=1e-6)
        assert result["final"]["test_error"] == pytest.approx(alone["final"]["test_error"], abs=0.011)
        for name, value in alone["_state"].items():
            torch.testing.assert_close(result["_state"][name], value, rtol=1e-4, atol=1e-5)


def test_the_hyperparameters_of_each_replica_are_read_from_its_program():
    programs = [compile_file(SPEC, point) for point in POINTS]
    hyper = ReplicaHyper.of(programs)
    assert hyper.optimizer["lr"] == (0.1, 0.05, 0.05, 0.1)
    assert hyper.optimizer["momentum"] == (0.5, 0.0, 0.9, 0.5)
    assert hyper.loss_weights == ((1.0, 0.5), (1.0, 1.5), (1.0, 0.5), (1.0, 0.0))
    assert list(hyper.dropout.values()) == [(0.2, 0.0, 0.5, 0.1)]
    assert hyper.learning_rates_differ and not hyper.uniform_optimizer
    same = ReplicaHyper.of(programs[:1] * 3)
    assert same.uniform_optimizer and same.uniform_loss_weights and same.option("lr") == 0.1


def test_a_model_without_per_replica_values_refuses_per_replica_learning_rates():
    program = compile_file(SPEC)
    from minispec.backends.weights import initial_state, trial_generator

    states = [initial_state(program, trial_generator(0, k)) for k in range(2)]
    model = make_model("torch", program, states)
    model.set_learning_rate([0.2, 0.2])  # equal values are one learning rate
    with pytest.raises(ValueError, match="per replica"):
        model.set_learning_rate([0.1, 0.2])
