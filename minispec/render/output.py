"""Write a program's diagram to a file, the format chosen by the extension.

`.dot` (Graphviz) and `.mmd` (Mermaid) are text and always work; `.svg` and
`.png` run Graphviz's `dot`, which must be installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from minispec.errors import MinispecError
from minispec.ir.model import Program
from minispec.render.dot import to_dot
from minispec.render.drawing import build_drawing
from minispec.render.mermaid import to_mermaid

TEXT_FORMATS = (".dot", ".mmd")
IMAGE_FORMATS = (".svg", ".png")
FORMATS = TEXT_FORMATS + IMAGE_FORMATS
# Seconds `dot` may take before we give up (a large unfolded repeat takes a few).
DOT_TIMEOUT = 60


def render(program: Program, path: str | Path, fold: bool = False) -> Path:
    """Draw `program` into `path` (.dot, .mmd, .svg or .png) and return the path.

    fold=True draws each outermost `repeat N { ... }` as one box `repeat ×N`.
    Raises MinispecError for an unknown extension, a missing or failing `dot`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise MinispecError(
            f"cannot draw into `{path}`: unknown format `{path.suffix or '(no extension)'}`",
            hint=f"use one of {', '.join(FORMATS)}",
        )
    drawing = build_drawing(program, fold=fold)
    if suffix == ".mmd":
        _write(path, to_mermaid(drawing))
        return path
    text = to_dot(drawing)
    if suffix == ".dot":
        _write(path, text)
        return path
    dot = shutil.which("dot")
    if dot is None:
        raise MinispecError(
            f"Graphviz's `dot` program was not found, so `{path}` cannot be drawn",
            hint="install Graphviz (apt-get install graphviz / brew install graphviz), or write .dot or .mmd",
        )
    try:
        result = subprocess.run(
            [dot, f"-T{suffix[1:]}"], input=text.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise MinispecError(
            f"Graphviz's `dot` took more than {DOT_TIMEOUT} s to lay out `{path}`",
            hint="draw with --fold to collapse repeats, or write .dot and lay it out yourself",
        ) from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise MinispecError(f"Graphviz's `dot` failed on `{path}`: {message}",
                            hint="write .dot to inspect the text it was given")
    _write(path, result.stdout)
    return path


def _write(path: Path, content: str | bytes) -> None:
    try:
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
    except OSError as error:
        raise MinispecError(f"cannot write `{path}`: {error.strerror}",
                            hint="check that the folder exists and is writable") from None
