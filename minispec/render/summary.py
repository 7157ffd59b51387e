"""The model summary: a Keras/torchinfo-like table of a Program.

`summary_rows(program)` gives the table as data (one `SummaryRow` per node, in
graph order); `summary(program)` formats it for a terminal of 100 columns,
followed by the total of trainable parameters, the losses, the data set and the
training schedule::

    Node            Op                  Output shape     Params  Shared
    a:1:conv2d      conv2d(32, k=3)     [32, 12, 12]        320  extract (a)
    b:1:conv2d      conv2d(32, k=3)     [32, 12, 12]   (shared)  extract (b)

A shared instance's parameters are counted on its first use only; later uses
show `(shared)` and the `Shared` column names the instance and the use.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

from minispec.ir.model import Program
from minispec.ir.ops import OPS
from minispec.render.labels import (
    data_text,
    decision_text,
    encoding_text,
    innermost_use,
    instance_uses,
    layer_params,
    number,
    op_text,
    shape_text,
    train_text,
)

WIDTH = 100


@dataclass(frozen=True)
class SummaryRow:
    """One node of the table.

    params: the parameters this row adds to the total (0 on later uses of a
    shared set); layer_params: the parameters of the layer it applies, shared or
    not. instance/use/use_index/uses: the shared instance the node belongs to, the
    use's label (the statement, e.g. `a`), its number and the number of uses.
    """

    node: str
    op: str
    text: str
    shape: tuple[int, ...]
    params: int
    layer_params: int
    instance: str | None = None
    use: str | None = None
    use_index: int = 0
    uses: int = 0
    frozen: bool = False  # `trainable=false`: its parameters count apart from the trainable ones

    @property
    def shared(self) -> bool:
        """True on a later use of a parameter set that an earlier row owns."""
        return self.layer_params > 0 and self.params == 0 and not self.frozen

    @property
    def params_text(self) -> str:
        if self.frozen:
            return f"{number(self.layer_params)} frozen"
        return "(shared)" if self.shared else number(self.params)

    @property
    def shared_text(self) -> str:
        return "" if self.instance is None else f"{self.instance} ({self.use})"


def summary_rows(program: Program) -> list[SummaryRow]:
    """Every node of the program, inputs included, as table rows in graph order."""
    uses = instance_uses(program)
    rows = []
    for node in program.nodes:
        use = innermost_use(node, uses)
        rows.append(
            SummaryRow(
                node=node.id,
                op=node.op,
                text=op_text(node),
                shape=tuple(node.shape),
                params=node.params,
                layer_params=layer_params(node),
                instance=use.instance if use else None,
                use=use.label if use else None,
                use_index=use.index if use else 0,
                uses=use.count if use else 0,
                frozen=bool(node.param_shapes) and not node.trainable,
            )
        )
    return rows


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    """Lines of at most `width` columns, broken after spaces, never cut: nothing is dropped."""
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [""]


def _table(header: list[str], rows: list[list[str]], right: set[int], limits: list[int]) -> list[str]:
    """Columns of at most `limits` characters; a longer cell wraps onto more lines of its row."""
    widths = [
        min(limit, max([len(header[i])] + [len(row[i]) for row in rows])) for i, limit in enumerate(limits)
    ]
    lines = []
    for row in [header, *rows]:
        wrapped = [_wrap(cell, widths[i]) for i, cell in enumerate(row)]
        for depth in range(max(len(cell) for cell in wrapped)):
            cells = []
            for i, cell in enumerate(wrapped):
                text = cell[depth] if depth < len(cell) else ""
                cells.append(text.rjust(widths[i]) if i in right else text.ljust(widths[i]))
            lines.append("  ".join(cells).rstrip())
    return lines


def summary(program: Program) -> str:
    """The summary table and the experiment around it, as text for 100 columns."""
    rows = summary_rows(program)
    uses = instance_uses(program)
    table = _table(
        ["Node", "Op", "Output shape", "Params", "Shared"],
        [[r.node, r.text, shape_text(list(r.shape)), r.params_text, r.shared_text] for r in rows],
        right={3},
        limits=[24, 30, 16, 11, 18],
    )
    width = min(WIDTH, max(len(line) for line in table))
    title = f'Model "{program.name}"'
    if program.convolutionized:
        title += " (convolutionized)"
    lines = [f"{title}  ·  {program.source}", "=" * width, table[0], "-" * width, *table[1:],
             "=" * width]

    lines.append(f"Total trainable parameters: {number(program.total_params)}")
    fixed = _fixed_values(program)
    if fixed:
        parts = ", ".join(f"{number(count)} {what}" for what, count in fixed.items() if count)
        lines.append(f"Non-trainable values: {number(sum(fixed.values()))} ({parts})")
    shared_sets = {r.node: r for r in rows if r.layer_params and r.params and r.instance}
    if shared_sets:
        instances: dict[str, int] = {}
        for use in uses.values():
            instances[use.instance] = use.count
        described = ", ".join(f"{name} ×{count}" for name, count in instances.items())
        shared_params = sum(r.params for r in shared_sets.values())
        lines.append(
            f"Shared instances: {described}; their {number(shared_params)} parameters are counted once"
        )

    lines.append("")
    lines.append("Losses")
    loss_rows = [
        [loss.node, loss.kind, str(loss.target), encoding_text(loss), f"{loss.weight:g}", decision_text(loss)]
        for loss in program.losses
    ]
    table = _table(["node", "loss", "target", "encoding", "weight", "decision"], loss_rows, right={4},
                   limits=[24, 14, 16, 14, 8, 16])
    lines.extend("  " + line for line in table)

    lines.append("")
    data = program.data
    inputs = ", ".join(f"{name} {shape_text(shape)}" for name, shape in data.inputs.items())
    targets = ", ".join(f"{name} {shape_text(shape)}" for name, shape in data.targets.items())
    lines += _wrap(f"Data      {data_text(program)}: inputs {inputs}; targets {targets}", WIDTH, " " * 10)
    lines += _wrap(f"Training  {train_text(program)}", WIDTH, " " * 10)
    return "\n".join(lines) + "\n"


def _fixed_values(program: Program) -> dict[str, int]:
    """What training does not change, by kind: buffers (running statistics, constants) and frozen layers."""
    kinds = {"running statistics": 0, "constant values": 0, "frozen parameters": 0}
    for owner in program.weight_owners:
        buffers = sum(math.prod(shape) for shape in owner.buffer_shapes.values())
        kinds["constant values" if OPS[owner.op].has("constant") else "running statistics"] += buffers
        if not owner.trainable:
            kinds["frozen parameters"] += sum(math.prod(shape) for shape in owner.param_shapes.values())
    return {kind: count for kind, count in kinds.items() if count}
