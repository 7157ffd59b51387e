"""Spec file -> valid Program: parse, resolve, then the passes, in one call."""

from __future__ import annotations

from pathlib import Path

from minispec.ir import passes
from minispec.ir.model import Program
from minispec.lang.resolve import apply_overrides, read, resolve


def compile_file(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    include_roots: tuple[Path, ...] = (),
) -> Program:
    """Read a .mdl spec (and its includes), apply `--set` overrides, and return a
    shape-checked Program; any mistake raises `MinispecError` with its span."""
    merged = apply_overrides(read(path, include_roots), list(overrides))
    program = passes.infer_shapes(resolve(merged, str(path)))
    if program.convolutionized:
        program = passes.infer_shapes(passes.convolutionize(program))
    return program
