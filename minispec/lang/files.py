"""Reading a spec: its file, its includes, and `--set` overrides, merged into
one set of definitions (`Merged`), the later definition winning.

Variants: a file that includes another may redefine its `param`s, blocks and
sections; the net and the loss section are replaced whole, train settings one
key at a time, so `sn_single.mdl` can be `include "sn.mdl"` plus a new
classifier block and loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from minispec.errors import MinispecError, Span, normalize_newlines, remember_source
from minispec.ir.ops import SPELLED
from minispec.lang import syntax as s
from minispec.lang.parser import parse
from minispec.lang.values import evaluate, nearest
from minispec.resources import spec_library


@dataclass
class Merged:
    """Every definition of a spec after includes, the later one winning."""

    name: str | None = None
    name_span: Span | None = None
    params: dict[str, s.ParamDecl] = field(default_factory=dict)
    data: s.DataDecl | None = None
    blocks: dict[str, s.BlockDef] = field(default_factory=dict)
    net: s.NetDef | None = None
    loss: s.LossDef | None = None
    train: dict[str, s.TrainStmt] = field(default_factory=dict)
    convolutionize: s.Convolutionize | None = None
    sweep: s.SweepDef | None = None  # what `minispec sweep SPEC` sweeps when no --grid is given
    files: list[str] = field(default_factory=list)


def read(path: str | Path, allowed_roots: tuple[Path, ...] = (), text: str | None = None) -> Merged:
    """Parse a spec and its includes into one set of definitions.

    Includes are resolved relative to the including file and must stay inside
    the folder tree of the top spec (or of a root in `allowed_roots`); a name
    found nowhere beside the spec is taken from the shipped spec library, so
    `include "lib/pairs.mdl"` works wherever minispec is installed.
    `text`: the spec itself when it is no file (a notebook's string); `path`
    then only names it in messages, and its includes start from its folder.
    """
    path = Path(path)
    if text is None:
        try:
            found = path.is_file()
        except (OSError, ValueError) as error:  # a name too long, or holding a NUL byte
            raise MinispecError(f"cannot read spec file {str(path)[:200]!r}: {error}") from None
        if not found:
            raise MinispecError(f"no such spec file: {path}", hint="check the path; specs end in .mdl")
    roots = (path.resolve().parent, spec_library().resolve(), *[Path(r).resolve() for r in allowed_roots])
    merged = Merged()
    _read_into(merged, path, [], roots, text)
    return merged


def _read_into(merged: Merged, path: Path, stack: list[Path], roots: tuple[Path, ...],
               text: str | None = None) -> None:
    if text is None:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise MinispecError(f"cannot read {path}: {error.strerror or error}") from None
        text = decode(data, str(path))
    else:
        remember_source(str(path), text)
    file = parse(text, str(path))
    merged.files.append(str(path))
    stack = [*stack, path.resolve()]
    seen_here: dict[tuple[str, str], Span] = {}

    def once(kind: str, name: str, span: Span) -> None:
        if (kind, name) in seen_here:
            raise MinispecError(
                f"duplicate {kind} `{name}`",
                span,
                hint=f"rename one of them; the first is at {seen_here[(kind, name)]}",
            )
        seen_here[(kind, name)] = span

    for item in file.items:
        if isinstance(item, s.Include):
            _check_include_name(item)
            target = (path.parent / item.path).resolve()
            if not target.is_file():  # not beside the spec: the shipped library's file of that name, if any
                shipped = (spec_library() / item.path).resolve()
                target = shipped if shipped.is_file() else target
            if not any(target.is_relative_to(root) for root in roots):
                raise MinispecError(
                    f"include \"{item.path}\" points outside the spec's folder",
                    item.span,
                    hint="keep included files beside the spec, or pass --include-root DIR",
                )
            if target in stack:
                raise MinispecError(f"include \"{item.path}\" includes itself (a cycle)", item.span)
            if not target.is_file():
                raise MinispecError(
                    f"included file \"{item.path}\" not found",
                    item.span,
                    hint=f"looked for {target}, then in the shipped library (`minispec examples DIR` lists it)",
                )
            _read_into(merged, target, stack, roots)
        elif isinstance(item, s.SpecDecl):
            once("spec", "", item.span)
            if not stack[:-1] or merged.name is None:  # the top file's name wins over included ones
                merged.name, merged.name_span = item.name, item.span
        elif isinstance(item, s.ParamDecl):
            once("param", item.name, item.span)
            merged.params[item.name] = item
        elif isinstance(item, s.DataDecl):
            once("data section", "", item.span)
            merged.data = item
        elif isinstance(item, s.BlockDef):
            once("block", item.name, item.span)
            if item.name in SPELLED:
                raise MinispecError(f"block `{item.name}` has the name of a built-in layer", item.span,
                                    hint="choose another name")
            merged.blocks[item.name] = item
        elif isinstance(item, s.NetDef):
            once("net section", "", item.span)
            merged.net = item
        elif isinstance(item, s.LossDef):
            once("loss section", "", item.span)
            merged.loss = item
        elif isinstance(item, s.TrainDef):
            once("train section", "", item.span)
            keys: dict[str, Span] = {}
            for statement in item.statements:
                if statement.key in keys:
                    raise MinispecError(f"`{statement.key}` is set twice in this train section",
                                        statement.key_span, hint=f"the first is at {keys[statement.key]}")
                keys[statement.key] = statement.span
                merged.train[statement.key] = statement
        elif isinstance(item, s.Convolutionize):
            merged.convolutionize = item
        elif isinstance(item, s.SweepDef):
            once("sweep section", "", item.span)
            swept: dict[str, Span] = {}
            for statement in item.statements:
                if statement.key in swept:
                    raise MinispecError(f"`{statement.key}` is swept twice in this sweep section", statement.key_span,
                                        hint=f"give all its values on one line; the first is at {swept[statement.key]}")
                swept[statement.key] = statement.span
            merged.sweep = item


MAX_INCLUDE_NAME = 1024  # characters of an include's path
MAX_INCLUDE_PART = 255  # bytes of one folder or file name in it (the usual file-system limit)
MAX_SPEC_BYTES = 4 * 2**20


def decode(data: bytes, path: str) -> str:
    """A spec's bytes as text: UTF-8, with or without a byte-order mark. A byte
    that is not UTF-8 is an error located at its line and column."""
    if len(data) > MAX_SPEC_BYTES:
        raise MinispecError(f"the file is {len(data):,} bytes long; a spec may hold {MAX_SPEC_BYTES:,}",
                            Span(file=path, line=1, column=1, end_line=1, end_column=2),
                            hint="is this really a spec file?")
    body = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        before = normalize_newlines(body[:error.start].decode("utf-8"))
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise MinispecError(
            f"the file is not valid UTF-8: byte 0x{body[error.start]:02x} cannot be read here",
            Span(file=path, line=line, column=column, end_line=line, end_column=column + 1),
            hint="save the spec as UTF-8",
        ) from None


def _check_include_name(item: s.Include) -> None:
    """Refuse, before the file system sees it, a name that no file can have."""
    if not item.path:
        raise MinispecError("include names no file", item.span, hint='include "lib/pairs.mdl"')
    if len(item.path) > MAX_INCLUDE_NAME or any(len(part.encode("utf-8")) > MAX_INCLUDE_PART
                                                 for part in item.path.split("/")):
        raise MinispecError(
            f"include name too long ({len(item.path):,} characters)", item.span,
            hint=f"an include's path holds at most {MAX_INCLUDE_NAME} characters, "
                 f"{MAX_INCLUDE_PART} bytes per folder or file name",
        )


# --------------------------------------------------------------------------------------
# --set overrides
# --------------------------------------------------------------------------------------

TRAIN_KEYS = ("optimizer", "lr", "schedule", "batch", "epochs", "trials", "seed", "evaluate", "eval_every", "init",
              "report")


def apply_overrides(merged: Merged, overrides: list[str] | tuple[str, ...]) -> Merged:
    """Apply `key=value` texts: a param name, a train key (`epochs=5`, `lr=0.1`,
    `optimizer=adam(lr=1e-3)`), `data.OPTION=...`, or `convolutionize=true`."""
    for text in overrides:
        key, sep, value_text = text.partition("=")
        source = f"--set {text}"
        remember_source(source, text)
        whole = Span(file=source, line=1, column=1, end_line=1, end_column=len(text) + 1)
        if not sep or not key.strip():
            raise MinispecError(f"--set expects key=value, got `{text}`", whole, hint="for example --set epochs=5")
        # Pad the value so its columns count from the start of `key=value`.
        value = parse(" " * (len(key) + 1) + value_text, source, start="expr")
        key = key.strip()
        span = value.span
        key_span = Span(file=source, line=1, column=1, end_line=1, end_column=len(key) + 1)
        if key in merged.params:
            merged.params[key] = s.ParamDecl(key, value, span)
        elif key.removeprefix("train.") in TRAIN_KEYS:
            key = key.removeprefix("train.")
            merged.train[key] = s.TrainStmt(key, value, span, key_span)
        elif key.startswith("data."):
            merged.data = _override_data(merged.data, key[5:], value, key_span)
        elif key == "convolutionize":
            flag = evaluate(value, {})
            if not isinstance(flag, bool):
                raise MinispecError("convolutionize must be true or false", span)
            merged.convolutionize = s.Convolutionize(span) if flag else None
        else:
            valid = [*merged.params, *TRAIN_KEYS, "convolutionize"]
            if merged.data is not None and isinstance(merged.data.source, s.Call):
                valid += [f"data.{k.name}" for k in merged.data.source.keywords]
            raise MinispecError(
                f"--set {key}: no parameter or setting of that name",
                key_span,
                hint=nearest(key, valid) or "valid keys: " + ", ".join(valid),
            )
    return merged


def _override_data(data: s.DataDecl | None, option: str, value: s.Expr, key_span: Span) -> s.DataDecl:
    if data is None:
        raise MinispecError(f"--set data.{option}: the spec has no data section", key_span)
    call = data.source
    if isinstance(call, s.Name):
        call = s.Call(call.name, (), (), call.span, call.span)
    if not isinstance(call, s.Call):
        raise MinispecError("the data section must name a data set, e.g. data disk(train=1000)", data.span)
    if not isinstance(value, s.Literal):
        raise MinispecError(f"data.{option} takes a number or true/false", value.span)
    keywords = [k for k in call.keywords if k.name != option] + [s.Keyword(option, value, value.span)]
    return replace(data, source=replace(call, keywords=tuple(keywords)))
