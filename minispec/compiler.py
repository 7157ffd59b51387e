"""Spec file -> valid Program: parse, resolve, then the passes, in one call."""

from __future__ import annotations

from pathlib import Path

from minispec.errors import MinispecError, Span
from minispec.ir import passes
from minispec.ir.model import Program
from minispec.lang.files import apply_overrides, read
from minispec.lang.resolve import resolve


def compile_file(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    include_roots: tuple[Path, ...] = (),
) -> Program:
    """Read a .mdl spec (and its includes), apply `--set` overrides, and return a
    shape-checked Program; any mistake raises `MinispecError` with its span."""
    try:
        merged = apply_overrides(read(path, include_roots), list(overrides))
        program = passes.infer_shapes(resolve(merged, str(path)))
        if program.convolutionized:
            program = passes.infer_shapes(passes.convolutionize(program))
    except RecursionError:
        raise MinispecError(
            "the spec nests too deeply to compile",
            Span(file=str(path), line=1, column=1, end_line=1, end_column=2),
            hint="break long chains of statements or includes into fewer, longer pipelines",
        ) from None
    return program
