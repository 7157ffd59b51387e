"""Metamorphic: renaming a statement of a shipped spec changes no number.

Each statement of each spec in specs/ is renamed in turn, to a name shaped like
the ids the compiler generates for another statement (`out_1_linear`, `x_0`,
`out_map`: the names that collided before ids got their own namespace), and
a seeded short run (initial weights, three training steps with dropout,
evaluation outputs) must give bit-identical numbers.
"""

import dataclasses

import pytest
import torch

from minispec.backends import make_model, targets
from minispec.backends.smoke import random_batch
from minispec.backends.weights import initial_state
from minispec.compiler import compile_merged
from minispec.lang import syntax as s
from minispec.lang.files import read
from tests.conftest import SPECS


def renamed(node, old: str, new: str):
    """The syntax tree `node` with every reference to net statement `old` renamed."""
    if isinstance(node, tuple):
        return tuple(renamed(item, old, new) for item in node)
    if isinstance(node, dict):
        return {key: renamed(value, old, new) for key, value in node.items()}
    if not dataclasses.is_dataclass(node) or isinstance(node, s.Literal):
        return node
    changes = {f.name: renamed(getattr(node, f.name), old, new) for f in dataclasses.fields(node)
               if f.name not in ("span", "name_span", "node_span", "key_span")}
    for key in ("name", "node"):
        if changes.get(key) == old and not isinstance(node, (s.BlockDef, s.Formal, s.Keyword, s.ParamDecl)):
            changes[key] = new
    return dataclasses.replace(node, **changes)


def short_run(program) -> list[torch.Tensor]:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = make_model("torch", program, [initial_state(program, generator)])
    inputs, raw = random_batch(program, 4, generator)
    encoded = [targets.encode(loss, raw) for loss in program.losses]
    numbers = [model.train_step(inputs, encoded) for _ in range(3)]
    outputs = model.predict(inputs)
    return numbers + [outputs[name] for name in program.outputs]


def statements(spec):
    merged = read(spec)
    return [(spec, statement.name) for statement in merged.net.statements]


CASES = [case for spec in SPECS for case in statements(spec)]


@pytest.fixture(scope="module")
def baselines():
    return {}


@pytest.mark.parametrize(("spec", "name"), CASES, ids=[f"{spec.stem}-{name}" for spec, name in CASES])
def test_renaming_a_statement_changes_no_number(spec, name, baselines):
    merged = read(spec)
    if spec not in baselines:
        baselines[spec] = short_run(compile_merged(merged, str(spec)))
    others = [st.name for st in merged.net.statements if st.name != name]
    new = {0: "x_0", 1: f"{others[0]}_1_linear" if others else "x_1", 2: f"{others[-1] if others else name}_map"}
    new = new[CASES.index((spec, name)) % 3]
    if new in others:
        new = f"{new}_"
    variant = dataclasses.replace(merged, net=renamed(merged.net, name, new), loss=renamed(merged.loss, name, new),
                                  train=renamed(merged.train, name, new), blocks=renamed(merged.blocks, name, new))
    program = compile_merged(variant, str(spec))
    assert name not in program.names and name not in {scope.name for n in program.nodes for scope in n.scope}
    assert new in program.names or new in {scope.name for n in program.nodes for scope in n.scope}
    for before, after in zip(baselines[spec], short_run(program), strict=True):
        torch.testing.assert_close(after, before, rtol=0, atol=0)
