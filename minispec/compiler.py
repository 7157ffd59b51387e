"""Spec file -> valid Program: parse, resolve, then the passes, in one call."""

from __future__ import annotations

import re
from pathlib import Path

from minispec.errors import MinispecError, Span
from minispec.ir import passes
from minispec.ir.model import Program
from minispec.lang.files import Merged, apply_overrides, read
from minispec.lang.resolve import resolve


def compile_file(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    include_roots: tuple[Path, ...] = (),
    text: str | None = None,
) -> Program:
    """Read a .mdl spec (and its includes), apply `--set` overrides, and return a
    shape-checked Program; any mistake raises `MinispecError` with its span.
    `text`: the spec's text when it is no file (`path` then only names it)."""
    try:
        return _compile(path, overrides, include_roots, text)
    except MinispecError as error:
        raise _note_overrides(error, overrides) from None


def _compile(path, overrides, include_roots, text) -> Program:
    try:
        merged = apply_overrides(read(path, include_roots, text), list(overrides))
    except RecursionError:
        raise _too_deep(str(path)) from None
    return compile_merged(merged, str(path))


def compile_merged(merged: Merged, path: str) -> Program:
    """Definitions read from `path` -> a shape-checked Program."""
    try:
        program = passes.infer_shapes(resolve(merged, path))
        if program.convolutionized:
            program = passes.infer_shapes(passes.convolutionize(program))
    except RecursionError:
        raise _too_deep(path) from None
    return passes.lint(program)


def _too_deep(path: str) -> MinispecError:
    return MinispecError(
        "the spec nests too deeply to compile",
        Span(file=path, line=1, column=1, end_line=1, end_column=2),
        hint="break long chains of statements or includes into fewer, longer pipelines",
    )


def _note_overrides(error: MinispecError, overrides) -> MinispecError:
    """An error at a spec's use of a param that `--set` changed says where the value came from."""
    span = error.span
    if span is None or span.file.startswith("--set"):
        return error
    try:
        line = Path(span.file).read_text(encoding="utf-8").splitlines()[span.line - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return error
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    text = line[span.column - 1:end]
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.strip()
        if key and re.search(rf"\b{re.escape(key)}\b", text):
            start = len(key) + 2
            where = Span(file=f"--set {override}", line=1, column=start, end_line=1, end_column=len(override) + 1)
            error.related.append((where, f"`{key}` is {value.strip()} here: the value comes from --set"))
    return error
