"""The syntax tree of a .mdl file: what was written, with where it was written.

Produced by `minispec.lang.parser`, consumed by `minispec.lang.files`, `.net`, `.sections` and
printed back by `minispec.lang.printer`. Nothing here knows what a layer means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from minispec.errors import Span


@dataclass(frozen=True)
class Literal:
    value: bool | int | float | str
    span: Span


@dataclass(frozen=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True)
class Index:
    """`x[0]`: one slice of an input, a node or a target."""

    name: str
    index: "Expr"
    span: Span


@dataclass(frozen=True)
class Keyword:
    name: str
    value: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    """`linear(10)`, `conv_bn(32, k=5)`, `features(x[0])`, `concat(a, b)`."""

    name: str
    args: tuple["Expr", ...]
    keywords: tuple[Keyword, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Repeat:
    count: "Expr"
    body: "Pipeline"
    span: Span


@dataclass(frozen=True)
class Residual:
    """`residual { body }`: input + body(input); with `shortcut { ... }`: shortcut(input) + body(input)."""

    body: "Pipeline"
    span: Span
    shortcut: "Pipeline | None" = None


Expr = Union[Literal, Name, Index, Call, "Pipeline"]  # a pipeline only as an argument of a combinator
Stage = Union[Expr, Repeat, Residual]


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[Stage, ...]
    span: Span


@dataclass(frozen=True)
class SpecDecl:
    name: str
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Include:
    path: str
    span: Span


@dataclass(frozen=True)
class DataDecl:
    source: Expr
    span: Span


@dataclass(frozen=True)
class Convolutionize:
    span: Span


@dataclass(frozen=True)
class Formal:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    """`block NAME(ARGS) { PIPELINE }`, or with named statements reading `input`,
    the last one being the block's result (`statements`, then `body` is None)."""

    name: str
    formals: tuple[Formal, ...]
    body: Pipeline | None
    span: Span
    statements: tuple["NodeStmt", ...] = ()


@dataclass(frozen=True)
class InstanceStmt:
    """`features = instance { ... }`: one set of weights, applied by name."""

    name: str
    body: Pipeline
    span: Span


@dataclass(frozen=True)
class NodeStmt:
    name: str
    pipeline: Pipeline
    span: Span


@dataclass(frozen=True)
class NetDef:
    statements: tuple[InstanceStmt | NodeStmt, ...]
    span: Span


@dataclass(frozen=True)
class LossStmt:
    node: str
    node_span: Span
    call: Call
    weight: Expr | None
    span: Span


@dataclass(frozen=True)
class LossDef:
    statements: tuple[LossStmt, ...]
    span: Span


@dataclass(frozen=True)
class TrainStmt:
    key: str
    value: Expr
    span: Span
    key_span: Span


@dataclass(frozen=True)
class TrainDef:
    statements: tuple[TrainStmt, ...]
    span: Span


@dataclass(frozen=True)
class SweepStmt:
    """`lr 0.01, 0.1, 1`: a `--set` key and the values a sweep gives it."""

    key: str
    values: tuple[Expr, ...]
    span: Span
    key_span: Span


@dataclass(frozen=True)
class SweepDef:
    statements: tuple[SweepStmt, ...]
    span: Span


Item = Union[SpecDecl, ParamDecl, Include, DataDecl, Convolutionize, BlockDef, NetDef, LossDef, TrainDef, SweepDef]


@dataclass(frozen=True)
class File:
    path: str
    items: tuple[Item, ...] = field(default_factory=tuple)
