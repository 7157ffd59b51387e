"""Syntax tree -> one graph: `resolve(merged, source)` builds the Program.

`minispec.lang.files` reads a spec with its includes and overrides into
definitions; `minispec.lang.net` turns the net section into nodes;
`minispec.lang.sections` the data, loss and train sections. The Program's
shapes are filled in afterwards by `minispec.ir.passes`.
"""

from __future__ import annotations

from pathlib import Path

from minispec.errors import MinispecError, Span
from minispec.ir.model import Node, Program
from minispec.lang.files import Merged
from minispec.lang.net import NetBuilder
from minispec.lang.sections import resolve_data, resolve_losses, resolve_train
from minispec.lang.values import Value, evaluate


def resolve(merged: Merged, source: str) -> Program:
    """Definitions -> Program (nodes without shapes yet)."""
    try:
        return _resolve(merged, source)
    except MinispecError as error:
        # Errors about the spec as a whole (a missing section) point at its first line.
        raise error.with_span(Span(file=source, line=1, column=1, end_line=1, end_column=2)) from None


def _resolve(merged: Merged, source: str) -> Program:
    env: dict[str, Value] = {}
    for name, decl in merged.params.items():
        env[name] = evaluate(decl.value, env)
    data = resolve_data(merged, env)
    builder = NetBuilder(merged, env, data)
    builder.build()
    names = dict(builder.values)
    losses = resolve_losses(merged, env, names, data)
    train = resolve_train(merged, env, names, losses, data)
    uses: dict[str, int] = {}
    for built in builder.nodes:
        if built.weights:
            uses[built.weights] = uses.get(built.weights, 0) + 1
    nodes = [
        Node(id=b.id, op=b.op, attrs=b.attrs, inputs=b.inputs, weights=b.weights,
             shared=bool(b.weights) and uses[b.weights] > 1, scope=list(b.scope), span=b.span)
        for b in builder.nodes
    ]
    return Program(
        name=merged.name or Path(source).stem,
        source=source,
        params=env,
        data=data,
        nodes=nodes,
        names=names,
        losses=losses,
        train=train,
        convolutionized=merged.convolutionize is not None,
    )
