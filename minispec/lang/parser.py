"""Text -> syntax tree, with Lark and the grammar in grammar/minispec.lark
(shipped inside the package, read through `minispec.resources`).

Syntax errors become `MinispecError`s located at the offending token, saying
what was found and what could have come there instead.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from minispec.errors import MinispecError, Span, normalize_newlines
from minispec.lang import syntax as s
from minispec.resources import grammar_text

# How the grammar's terminals read in an error message.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "SIGNED_INT": "an integer",
    "SIGNED_FLOAT": "a number",
    "STRING": 'a "string"',
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "VBAR": "`|`",
    "$END": "the end of the file",
}
_MAX_NESTING = 200
MAX_INTEGER = 2**63 - 1
KEYWORDS = ("spec", "param", "include", "data", "block", "net", "instance", "loss", "train", "weight", "repeat",
            "residual", "shortcut", "convolutionize", "sweep", "true", "false")


@functools.lru_cache(maxsize=None)
def _lark(start: str) -> Lark:
    return Lark(
        grammar_text(),
        start=start,
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def parse(text: str, path: str, start: str = "start") -> s.File | s.Expr:
    """Parse a whole file (start="start") or one value (start="expr", for --set).

    The text's line ends are made `\\n` first (`errors.normalize_newlines`), as
    the excerpts of errors split it, so a line number means the same to both.
    """
    text = normalize_newlines(text)
    _check_nesting(text, path)
    try:
        tree = _lark(start).parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(error, text, path) from None
    try:
        result = _ToSyntax(path).transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, MinispecError):
            raise error.orig_exc from None
        raise
    return s.File(path=path, items=tuple(result.children)) if start == "start" else result


def _shortened(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text)} characters)"


def _check_nesting(text: str, path: str) -> None:
    """Refuse absurd nesting before Lark's tree walk recurses into it."""
    depth = 0
    for bracket in _BRACKET.finditer(text):
        if bracket.group() in "([{":
            depth += 1
            if depth > _MAX_NESTING:
                offset = bracket.start()
                line = text.count("\n", 0, offset) + 1
                column = offset - (text.rfind("\n", 0, offset) + 1) + 1
                span = Span(file=path, line=line, column=column, end_line=line, end_column=column + 1)
                raise MinispecError(
                    f"brackets nested more than {_MAX_NESTING} deep",
                    span,
                    hint="split the expression into named statements",
                )
        else:
            depth = max(depth - 1, 0)


_BRACKET = re.compile(r"[()\[\]{}]")


def _span_of(path: str, meta) -> Span:
    return Span(
        file=path,
        line=meta.line,
        column=meta.column,
        end_line=meta.end_line,
        end_column=meta.end_column,
    )


def _syntax_error(error: UnexpectedInput, text: str, path: str) -> MinispecError:
    line = getattr(error, "line", None) or 1
    column = getattr(error, "column", None) or 1
    if isinstance(error, UnexpectedToken) and error.token.type == "$END" or isinstance(error, UnexpectedEOF):
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        found = "end of file"
        width = 1
    elif isinstance(error, UnexpectedToken):
        found = f"`{error.token}`"
        width = max(len(str(error.token)), 1)
    elif isinstance(error, UnexpectedCharacters):
        found = f"`{error.char}`"
        width = 1
    else:  # pragma: no cover - Lark raises only the three above
        found, width = "something unexpected", 1
    expected = sorted(_words(getattr(error, "expected", None) or getattr(error, "allowed", None) or ()))
    span = Span(file=path, line=line, column=column, end_line=line, end_column=column + width)
    offset = _offset(text, line, column)
    unclosed = _unclosed_brace(text, offset)
    at_end = found == "end of file"
    starts_a_line = not text.split("\n")[line - 1][: column - 1].strip()
    section = isinstance(error, UnexpectedToken) and str(error.token) in SECTIONS and starts_a_line
    if unclosed is not None and (at_end or (section and unclosed[0] < line)):
        opened_line, opened_column, owner = unclosed
        opened = Span(file=path, line=opened_line, column=opened_column, end_line=opened_line,
                      end_column=opened_column + 1)
        return MinispecError(
            f"unexpected {found}: the `{{` of {owner} opened at line {opened_line} is not closed",
            span,
            related=[(opened, "opened here")],
            hint=f"add `}}` before {'the end of the file' if at_end else found}",
        )
    missing = _missing_pipe(error, text, offset)
    if missing is not None:
        return MinispecError(
            f"expected `|` before `{missing[0]}`", Span(file=path, line=missing[1], column=missing[2],
                                                         end_line=missing[1], end_column=missing[2] + len(missing[0])),
            hint=f"stages of a pipeline are joined with `|`: `{missing[3]} | {missing[0]}`",
        )
    hint = None
    if isinstance(error, UnexpectedToken) and error.token.type != "NAME" and str(error.token) in KEYWORDS \
            and "NAME" in (error.expected or ()):
        hint = f"`{error.token}` is a reserved word of the language; choose another name"
    elif expected:
        listed = ", ".join(expected[:6]) + (", ..." if len(expected) > 6 else "")
        hint = f"expected {listed}"
    return MinispecError(f"unexpected {found}", span, hint=hint)


# Words that start a section: met inside an open `{`, they mean the brace was never closed.
SECTIONS = ("spec", "param", "include", "data", "block", "net", "loss", "train", "convolutionize")


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(l) + 1 for l in lines[: line - 1]) + column - 1


def _unclosed_brace(text: str, end: int) -> tuple[int, int, str] | None:
    """(line, column, what it opens) of the innermost `{` still open at offset `end`, if any."""
    stack: list[tuple[int, int, str]] = []
    line, column, position = 1, 0, 0
    while position < min(end, len(text)):
        char = text[position]
        column += 1
        if char == "#":
            while position < len(text) and text[position] != "\n":
                position += 1
            continue
        if char == '"':
            closing = text.find('"', position + 1)
            if closing == -1:
                break
            column += closing - position
            position = closing + 1
            continue
        if char == "\n":
            line, column = line + 1, 0
        elif char == "{":
            stack.append((line, column, _brace_owner(text[text.rfind("\n", 0, position) + 1:position])))
        elif char == "}" and stack:
            stack.pop()
        position += 1
    return stack[-1] if stack else None


def _brace_owner(prefix: str) -> str:
    """What a `{` opens, from the text before it on its line: `net`, block `conv_bn`, `repeat`..."""
    block = re.search(r"\bblock\s+([A-Za-z_][A-Za-z0-9_]*)", prefix)
    if block:
        return f"block `{block.group(1)}`"
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", prefix)
    known = [w for w in words if w in ("net", "loss", "train", "instance", "repeat", "residual", "shortcut")]
    return f"`{known[-1]}`" if known else "a block"


def _missing_pipe(error: UnexpectedInput, text: str, offset: int) -> tuple[str, int, int, str] | None:
    """`x | flatten linear(2)`: the parser reads `linear` as the start of a new statement and
    wants `=`. (name, line, column, the word before it) when a name or `)` comes right before it."""
    if not isinstance(error, UnexpectedToken) or set(error.expected or ()) != {"EQUAL"}:
        return None
    before = text[:offset].rstrip()
    match = re.search(r"([A-Za-z0-9_]+|[)\]])\s+([A-Za-z_][A-Za-z0-9_]*)$", before)
    if match is None:
        return None
    previous, name = match.group(1), match.group(2)
    start = len(before) - len(name)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return name, line, column, previous if previous[0].isalnum() or previous[0] == "_" else "..."


def _words(terminals) -> set[str]:
    words = set()
    for terminal in terminals:
        if terminal in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[terminal])
        elif terminal.isupper() and not terminal.startswith("__"):
            words.add(f"`{terminal.lower()}`")
    return words


@v_args(meta=True)
class _ToSyntax(Transformer):
    """Method names are the grammar's rule names (and aliases)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _span(self, meta) -> Span:
        return _span_of(self.path, meta)

    def _token_span(self, token: Token) -> Span:
        return Span(
            file=self.path,
            line=token.line,
            column=token.column,
            end_line=token.end_line,
            end_column=token.end_column,
        )

    # -- values ---------------------------------------------------------------
    def integer(self, meta, children):
        text = str(children[0])
        if len(text.lstrip("+-").lstrip("0")) > len(str(MAX_INTEGER)) or abs(int(text)) > MAX_INTEGER:
            raise MinispecError(f"integer too large: {_shortened(text)}", self._span(meta),
                                hint=f"integers go up to {MAX_INTEGER:,} (2**63 - 1)")
        return s.Literal(int(text), self._span(meta))

    def real(self, meta, children):
        text = str(children[0])
        value = float(text)
        if math.isinf(value):
            raise MinispecError(f"number too large: {_shortened(text)}", self._span(meta),
                                hint=f"numbers go up to about {sys.float_info.max:.1e}")
        if value != 0 and abs(value) < sys.float_info.min or value == 0 and any(c in "123456789" for c in
                                                                                   text.lower().split("e")[0]):
            raise MinispecError(f"number too small: {_shortened(text)}", self._span(meta),
                                hint=f"nonzero numbers start at about {sys.float_info.min:.1e}; write 0 for zero")
        return s.Literal(value, self._span(meta))

    def true(self, meta, children):
        return s.Literal(True, self._span(meta))

    def false(self, meta, children):
        return s.Literal(False, self._span(meta))

    def string(self, meta, children):
        return s.Literal(self._text(children[0]), self._span(meta))

    def _text(self, token: Token) -> str:
        """A string literal's text, which holds printable characters only."""
        text = str(token)[1:-1]
        if not text.isprintable():
            bad = next(i for i, char in enumerate(text) if not char.isprintable())
            column = token.column + 1 + bad
            raise MinispecError(f"a string cannot hold the control character {ascii(text[bad])[1:-1]}",
                                Span(file=self.path, line=token.line, column=column, end_line=token.line,
                                     end_column=column + 1))
        return text

    def name(self, meta, children):
        return s.Name(str(children[0]), self._span(meta))

    def index(self, meta, children):
        return s.Index(str(children[0]), children[1], self._span(meta))

    def keyword(self, meta, children):
        return s.Keyword(str(children[0]), children[1], self._span(meta))

    def call(self, meta, children):
        name, *arguments = children
        args = tuple(a for a in arguments if not isinstance(a, s.Keyword))
        keywords = tuple(a for a in arguments if isinstance(a, s.Keyword))
        seen_keyword = False
        for argument in arguments:
            if isinstance(argument, s.Keyword):
                seen_keyword = True
            elif seen_keyword:
                raise MinispecError(
                    "a positional argument cannot follow a keyword argument",
                    argument.span,
                    hint="put positional arguments first, e.g. conv2d(32, 3, stride=2)",
                )
        return s.Call(str(name), args, keywords, self._span(meta), self._token_span(name))

    # -- pipelines --------------------------------------------------------------
    def pipeline(self, meta, children):
        return s.Pipeline(tuple(children), self._span(meta))

    def repeat(self, meta, children):
        return s.Repeat(children[0], children[1], self._span(meta))

    def residual(self, meta, children):
        return s.Residual(children[0], self._span(meta), children[1] if len(children) > 1 else None)

    # -- items ------------------------------------------------------------------
    def spec_decl(self, meta, children):
        return s.SpecDecl(str(children[0]), self._span(meta))

    def param_decl(self, meta, children):
        return s.ParamDecl(str(children[0]), children[1], self._span(meta))

    def include(self, meta, children):
        return s.Include(self._text(children[0]), self._span(meta))

    def data_decl(self, meta, children):
        return s.DataDecl(children[0], self._span(meta))

    def convolutionize(self, meta, children):
        return s.Convolutionize(self._span(meta))

    def formal(self, meta, children):
        default = children[1] if len(children) > 1 else None
        return s.Formal(str(children[0]), default, self._span(meta))

    def formals(self, meta, children):
        return tuple(children)

    def block_def(self, meta, children):
        name, *rest = children
        formals = rest.pop(0) if rest and isinstance(rest[0], tuple) else ()
        if isinstance(rest[0], s.Pipeline):
            return s.BlockDef(str(name), formals, rest[0], self._span(meta))
        return s.BlockDef(str(name), formals, None, self._span(meta), tuple(rest))

    def block_stmt(self, meta, children):
        return s.NodeStmt(str(children[0]), children[1], self._span(meta))

    def instance_def(self, meta, children):
        return children[0]

    def instance_stmt(self, meta, children):
        return s.InstanceStmt(str(children[0]), children[1], self._span(meta))

    def node_stmt(self, meta, children):
        return s.NodeStmt(str(children[0]), children[1], self._span(meta))

    def net_def(self, meta, children):
        return s.NetDef(tuple(children), self._span(meta))

    def loss_stmt(self, meta, children):
        node, call, *weight = children
        return s.LossStmt(str(node), self._token_span(node), call, weight[0] if weight else None, self._span(meta))

    def loss_def(self, meta, children):
        return s.LossDef(tuple(children), self._span(meta))

    def train_stmt(self, meta, children):
        key, value = children
        return s.TrainStmt(str(key), value, self._span(meta), self._token_span(key))

    def train_def(self, meta, children):
        return s.TrainDef(tuple(children), self._span(meta))

    def sweep_key(self, meta, children):
        return str(children[0]), self._span(meta)

    def data_key(self, meta, children):
        return f"data.{children[0]}", self._span(meta)

    def sweep_stmt(self, meta, children):
        (key, key_span), *values = children
        return s.SweepStmt(key, tuple(values), self._span(meta), key_span)

    def sweep_def(self, meta, children):
        return s.SweepDef(tuple(children), self._span(meta))
