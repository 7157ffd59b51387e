"""A tiny disk spec and a fake backend that handles R replicas, for the runner's tests.

The fake is a linear map per replica and loss node (x flattened -> the node's
outputs), trained by plain SGD with autograd. It starts from the trial's
canonical initial state (its first numbers), so different trials start
differently, and it can be told to blow up (NaN) in a given epoch of a given
trial: it recognises a trial by comparing the states it receives with
`initial_state(program, trial_generator(seed, k))`.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from minispec.backends.weights import initial_state, trial_generator
from minispec.compiler import compile_file

TINY = """\
spec tiny
data disk(train=100, test=100)

net {
    out = x | linear(8) | tanh | linear(1)
}

loss {
    out mse(target)
}

train {
    optimizer sgd(lr=0.5)
    batch 20
    epochs 3
    trials 2
}
"""

TWO_HEADS = """\
spec two_heads
data disk(train=100, test=100)

net {
    h = x | linear(8) | tanh
    out = h | linear(2)
    aux = h | linear(1)
}

loss {
    out cross_entropy(target)
    aux mse(target) weight 0.5
}

train {
    optimizer sgd(lr=0.5)
    batch 20
    epochs 3
    trials 2
    evaluate 2
}
"""


def write_spec(tmp_path, text: str, name: str = "tiny.mdl"):
    path = tmp_path / name
    path.write_text(text)
    return compile_file(path)


@pytest.fixture
def tiny(tmp_path):
    return write_spec(tmp_path, TINY)


@pytest.fixture
def two_heads(tmp_path):
    return write_spec(tmp_path, TWO_HEADS, "two_heads.mdl")


class FakeModel:
    def __init__(self, program, states, device, diverge=None, trial_of=None):
        self.program = program
        self.replicas = len(states)
        self.device = torch.device(device)
        self.lr = 0.0
        self.steps = 0
        self.diverge = diverge or {}
        self.trials = [trial_of(s) for s in states] if trial_of else [None] * len(states)
        n_train = program.data.options["train"]
        self.steps_per_epoch = math.ceil(n_train / program.train.batch)
        features = math.prod(program.data.inputs["x"])
        self.params = {}
        for node in program.outputs:
            width = math.prod(program.node(node).shape)
            rows = []
            for state in states:
                flat = torch.cat([t.flatten().float() for t in state.values()])
                rows.append(flat[: (features + 1) * width].reshape(features + 1, width))
            self.params[node] = torch.stack(rows).to(self.device)  # [R, D + 1, K]

    def _forward(self, inputs, params):
        x = inputs["x"].flatten(2)
        x = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
        return {node: torch.bmm(x, params[node]) for node in self.program.outputs}

    def losses(self, outputs, targets):
        values = []
        for loss, target in zip(self.program.losses, targets):
            out = outputs[loss.node]
            if loss.kind == "cross_entropy":
                per = F.cross_entropy(out.transpose(1, 2), target, reduction="none").mean(dim=1)
            else:
                per = ((out - target) ** 2).flatten(1).mean(dim=1)
            values.append(per)
        return torch.stack(values, dim=1)

    def train_step(self, inputs, targets):
        with torch.enable_grad():
            params = {k: v.clone().requires_grad_(True) for k, v in self.params.items()}
            losses = self.losses(self._forward(inputs, params), targets)
            weights = torch.tensor([loss.weight for loss in self.program.losses], device=self.device)
            (losses * weights).sum().backward()
        self.params = {k: (params[k] - self.lr * params[k].grad).detach() for k in params}
        epoch = self.steps // self.steps_per_epoch + 1
        self.steps += 1
        losses = losses.detach().clone()
        for r, trial in enumerate(self.trials):
            if trial is not None and self.diverge.get(trial) is not None and epoch >= self.diverge[trial]:
                losses[r] = float("nan")
                for k in self.params:
                    self.params[k][r] = float("nan")
        return losses

    def predict(self, inputs):
        return self._forward(inputs, self.params)

    def set_learning_rate(self, lr):
        self.lr = lr

    def state(self, replica):
        return {f"{k}.weight": v[replica].cpu().clone() for k, v in self.params.items()}

    def load_state(self, replica, state):
        for k in self.params:
            self.params[k][replica] = state[f"{k}.weight"].to(self.device)


def fake_factory(diverge=None, log=None):
    """make_model(program, states, device) building FakeModel; `diverge`: {trial: epoch (1-based)};
    `log` (a list) receives the replica count of every model built."""

    def trial_of_for(program):
        known = [initial_state(program, trial_generator(program.train.seed, k)) for k in range(8)]

        def trial_of(state):
            for k, ref in enumerate(known):
                if all(torch.equal(state[n], ref[n]) for n in ref):
                    return k
            return None

        return trial_of

    def make(program, states, device):
        if log is not None:
            log.append(len(states))
        return FakeModel(program, states, device, diverge, trial_of_for(program) if diverge else None)

    return make
