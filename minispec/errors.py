"""The one error type of minispec, and its rendering.

Every mistake a user can make (in a spec, a data root, a weights file, a
command-line option) is raised as a `MinispecError`. It carries the place in the
spec when there is one, so the CLI can print it the way Elm and rustc do::

    specs/caux.mdl:14:19: error: linear(10) expects a flat input, but `a` has shape [64, 2, 2]
        digit_a = a | linear(10)
                      ^^^^^^^^^^
    hint: insert `flatten` before linear

Nothing below the CLI prints: code raises, the CLI renders.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """A region of a source file, 1-based lines and columns, end exclusive."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class MinispecError(Exception):
    """A user-facing error: a message, where it happened, and how to fix it.

    `related` holds further spans worth showing (for example the other call
    site of a shared instance), each with a short label.
    """

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        hint: str | None = None,
        related: list[tuple[Span, str]] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.related = related or []

    def with_span(self, span: Span) -> "MinispecError":
        """Attach a span if the error has none yet (innermost wins)."""
        if self.span is None:
            self.span = span
        return self

    def render(self, sources: dict[str, str] | None = None, level: str = "error") -> str:
        """Format as `file:line:col: error: ...` (or `warning:`), the line, a caret and the hint.

        `sources` maps file names to their text; files not in it are read from disk.
        """
        lines = []
        if self.span is None:
            lines.append(visible(f"{level}: {self.message}"))
        else:
            lines.append(visible(f"{self.span}: {level}: {self.message}"))
            lines.extend(_excerpt(self.span, sources))
        for span, label in self.related:
            lines.append(visible(f"{span}: note: {label}"))
            lines.extend(_excerpt(span, sources))
        if self.hint:
            lines.append(visible(f"hint: {self.hint}"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def visible(text: str) -> str:
    """`text` with every unprintable character written as its escape (`\\x1b`,
    `\\u2028`): a spec's text, a file name or a value can then be printed to a
    terminal or into a comment of generated code without acting on either."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def normalize_newlines(text: str) -> str:
    """CRLF and CR-only line ends made `\\n`, and a leading byte-order mark
    dropped: the parser and the excerpts then count lines alike (only `\\n`
    ends a line; \\x0b, \\x0c, \\x85 and U+2028 are characters of a line)."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


# Texts that are not files on disk (command-line overrides, specs given as strings).
_MEMORY_SOURCES: dict[str, str] = {}


def remember_source(name: str, text: str) -> None:
    """Keep a text that spans may point into but that is not a file on disk."""
    _MEMORY_SOURCES[name] = text


def _excerpt(span: Span, sources: dict[str, str] | None) -> list[str]:
    text = (sources or {}).get(span.file, _MEMORY_SOURCES.get(span.file))
    if text is None:
        try:
            with open(span.file, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            return []
    source_lines = normalize_newlines(text).split("\n")
    if not 1 <= span.line <= len(source_lines):
        return []
    line = source_lines[span.line - 1].rstrip(" \t")
    start = max(span.column - 1, 0)
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    end = max(start + 1, end)
    # Tabs are expanded and unprintable characters shown as escapes; the caret follows both.
    if line.isprintable():  # nothing to escape or expand: the common case, and fast on long lines
        width = min(end, max(len(line), start + 1)) - start
        return ["    " + line, "    " + " " * start + "^" * max(width, 1)]
    shown: list[str] = []
    width = 0
    for char in line:
        shown.append(" " * (4 - width % 4) if char == "\t" else visible(char))
        width += len(shown[-1])
    before = sum(len(piece) for piece in shown[:start]) + max(start - len(shown), 0)
    width = sum(len(piece) for piece in shown[start:end]) + max(end - max(start, len(shown)), 0)
    return ["    " + "".join(shown), "    " + " " * before + "^" * max(width, 1)]
