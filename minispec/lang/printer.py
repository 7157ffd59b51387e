"""Definitions -> canonical .mdl text (`minispec compile SPEC --emit mdl`).

The output is one self-contained file: includes inlined, later definitions
having replaced earlier ones, `--set` overrides applied, parameters shown with
their final values. Two variants printed this way can be diffed line by line,
and the text compiles to the same Program as the original.
"""

from __future__ import annotations

import re

from minispec.lang import syntax as s
from minispec.lang.files import Merged
from minispec.lang.parser import KEYWORDS


def format_expr(expr: s.Expr) -> str:
    if isinstance(expr, s.Literal):
        value = expr.value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return f'"{value}"'
        return repr(value)
    if isinstance(expr, s.Name):
        return expr.name
    if isinstance(expr, s.Index):
        return f"{expr.name}[{format_expr(expr.index)}]"
    if isinstance(expr, s.Pipeline):
        return format_pipeline(expr)
    arguments = [format_expr(a) for a in expr.args] + [f"{k.name}={format_expr(k.value)}" for k in expr.keywords]
    return f"{expr.name}({', '.join(arguments)})"


def format_pipeline(pipeline: s.Pipeline) -> str:
    parts = []
    for stage in pipeline.stages:
        if isinstance(stage, s.Repeat):
            parts.append(f"repeat {format_expr(stage.count)} {{ {format_pipeline(stage.body)} }}")
        elif isinstance(stage, s.Residual):
            shortcut = f" shortcut {{ {format_pipeline(stage.shortcut)} }}" if stage.shortcut else ""
            parts.append(f"residual {{ {format_pipeline(stage.body)} }}{shortcut}")
        else:
            parts.append(format_expr(stage))
    return " | ".join(parts)


def spec_name(text: str) -> str:
    """A file stem made a valid spec name: the file name is the user's, and must
    not write anything but a name into the text (`spec a\\ninclude ...`)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    if not name or name[0].isdigit() or name in KEYWORDS:
        name = f"_{name}"
    return name


def format_merged(merged: Merged, name: str) -> str:
    """`name`: the spec's name when it declares none (the file stem)."""
    lines = [f"spec {merged.name or spec_name(name)}", ""]
    for param in merged.params.values():
        lines.append(f"param {param.name} = {format_expr(param.value)}")
    if merged.params:
        lines.append("")
    if merged.data is not None:
        lines += [f"data {format_expr(merged.data.source)}", ""]
    for block in merged.blocks.values():
        formals = ", ".join(f.name if f.default is None else f"{f.name}={format_expr(f.default)}" for f in block.formals)
        signature = f"({formals})" if block.formals else ""
        if block.body is not None:
            lines.append(f"block {block.name}{signature} {{ {format_pipeline(block.body)} }}")
        else:
            body = "".join(f"\n    {stmt.name} = {format_pipeline(stmt.pipeline)}" for stmt in block.statements)
            lines.append(f"block {block.name}{signature} {{{body}\n}}")
    if merged.blocks:
        lines.append("")
    if merged.net is not None:
        lines.append("net {")
        for statement in merged.net.statements:
            if isinstance(statement, s.InstanceStmt):
                lines.append(f"    {statement.name} = instance {{ {format_pipeline(statement.body)} }}")
            else:
                lines.append(f"    {statement.name} = {format_pipeline(statement.pipeline)}")
        lines += ["}", ""]
    if merged.loss is not None:
        lines.append("loss {")
        for statement in merged.loss.statements:
            weight = f" weight {format_expr(statement.weight)}" if statement.weight is not None else ""
            lines.append(f"    {statement.node} {format_expr(statement.call)}{weight}")
        lines += ["}", ""]
    if merged.train:
        lines.append("train {")
        for statement in merged.train.values():
            lines.append(f"    {statement.key} {format_expr(statement.value)}")
        lines += ["}", ""]
    if merged.sweep is not None:
        lines.append("sweep {")
        for statement in merged.sweep.statements:
            lines.append(f"    {statement.key} {', '.join(format_expr(v) for v in statement.values)}")
        lines += ["}", ""]
    if merged.convolutionize is not None:
        lines += ["convolutionize", ""]
    return "\n".join(lines).rstrip() + "\n"
