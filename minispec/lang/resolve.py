"""Syntax tree -> one graph: includes, parameters, overrides, blocks, instances.

`resolve(path, overrides)` reads a spec and everything it includes, applies
`--set key=value` overrides, expands blocks and `repeat`, applies instances and
returns a `Program` whose nodes carry ops, attributes, inputs, sharing keys and
spans. Shapes are filled in afterwards by `minispec.ir.passes`.

Variants: a file that includes another may redefine its `param`s, blocks and
sections; later definitions win (the net and the loss section are replaced
whole, train settings one key at a time), so `sn_single.mdl` can be `include
"sn.mdl"` plus a new classifier block and loss.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path

from minispec.data import DATASETS
from minispec.data import describe as describe_data
from minispec.errors import MinispecError, Span, remember_source
from minispec.ir.model import (
    DataSpec,
    Init,
    Loss,
    Node,
    Optimizer,
    Program,
    Schedule,
    Scope,
    TargetRef,
    Train,
)
from minispec.ir.ops import ALIASES, GRAPH_OPS, OPS, Arg
from minispec.lang import syntax as s
from minispec.lang.parser import parse

Value = bool | int | float | str


def nearest(name: str, candidates) -> str | None:
    """A hint naming the closest valid spellings, if any are close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"


# --------------------------------------------------------------------------------------
# Reading files and merging includes
# --------------------------------------------------------------------------------------


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
    files: list[str] = field(default_factory=list)


def read(path: str | Path, allowed_roots: tuple[Path, ...] = ()) -> Merged:
    """Parse a spec and its includes into one set of definitions.

    Includes are resolved relative to the including file and must stay inside
    the folder tree of the top spec (or of a root in `allowed_roots`).
    """
    path = Path(path)
    if not path.is_file():
        raise MinispecError(f"no such spec file: {path}", hint="check the path; specs end in .mdl")
    roots = (path.resolve().parent, *[Path(r).resolve() for r in allowed_roots])
    merged = Merged()
    _read_into(merged, path, [], roots)
    return merged


def _read_into(merged: Merged, path: Path, stack: list[Path], roots: tuple[Path, ...]) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MinispecError(f"cannot read {path}: {error}") from None
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
            target = (path.parent / item.path).resolve()
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
                    hint=f"looked for {target}",
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
            if item.name in OPS or item.name in ALIASES:
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


# --------------------------------------------------------------------------------------
# --set overrides
# --------------------------------------------------------------------------------------

DEFAULT_BATCH = 100  # or the whole training set when it is smaller
TRAIN_KEYS = ("optimizer", "lr", "schedule", "batch", "epochs", "trials", "seed", "evaluate", "init", "report")


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
            flag = _evaluate(value, {})
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


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def _evaluate(expr: s.Expr, env: dict[str, Value]) -> Value:
    """A constant: a literal, or a name bound to one (a param or a block argument)."""
    if isinstance(expr, s.Literal):
        return expr.value
    if isinstance(expr, s.Name):
        if expr.name in env:
            return env[expr.name]
        raise MinispecError(f"unknown name `{expr.name}`", expr.span,
                            hint=nearest(expr.name, env) or "declare it with `param NAME = VALUE`")
    raise MinispecError("expected a number, a boolean, a string or a parameter name", expr.span)


def _mdl(value: Value) -> str:
    """A value as it is written in a spec."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _typed(value: Value, kind: type, what: str, span: Span) -> Value:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        raise MinispecError(f"{what} must be {names[kind]}, got {value!r}", span)
    return value


def _bind(op: str, args: tuple[Arg, ...], call: s.Call | None, env: dict[str, Value], span: Span) -> dict[str, Value]:
    """Match a call's arguments to a signature, checking arity, names, types and ranges."""
    positional = call.args if call else ()
    keywords = call.keywords if call else ()
    signature = ", ".join(a.name if a.default is None else f"{a.name}={_mdl(a.default)}" for a in args)
    if len(positional) > len(args):
        raise MinispecError(
            f"{op} takes at most {len(args)} argument{'s' * (len(args) != 1)} ({signature}), got {len(positional)}",
            positional[len(args)].span,
            hint=f"{op}({signature})" if args else f"write `{op}` without parentheses",
        )
    bound: dict[str, tuple[Value, Span]] = {}
    for arg, expr in zip(args, positional):
        bound[arg.name] = (_evaluate(expr, env), expr.span)
    names = [a.name for a in args]
    for keyword in keywords:
        if keyword.name not in names:
            raise MinispecError(
                f"{op} has no option `{keyword.name}`",
                keyword.span,
                hint=nearest(keyword.name, names) or (f"{op}({signature})" if args else f"{op} takes no options"),
            )
        if keyword.name in bound:
            raise MinispecError(f"{op}: `{keyword.name}` is given twice", keyword.span)
        bound[keyword.name] = (_evaluate(keyword.value, env), keyword.value.span)
    values: dict[str, Value] = {}
    for arg in args:
        if arg.name not in bound:
            if arg.default is None:
                raise MinispecError(
                    f"{op} needs `{arg.name}`" + (f" ({arg.doc})" if arg.doc else ""),
                    span,
                    hint=f"{op}({signature})",
                )
            values[arg.name] = arg.default
            continue
        value, value_span = bound[arg.name]
        value = _typed(value, arg.kind, f"{op}: `{arg.name}`", value_span)
        problem = arg.check(value) if arg.check else None
        if problem:
            raise MinispecError(f"{op}: `{arg.name}` {problem}, got {value}", value_span)
        values[arg.name] = value
    return values


def _layer_attrs(op: str, values: dict[str, Value]) -> tuple[str, dict]:
    """Signature values -> IR op name and attributes."""
    if op == "conv2d":
        return op, {"out": values["out"], "kernel": [values["k"], values["k"]], "stride": values["stride"],
                    "padding": values["pad"], "bias": values["bias"]}
    if op in ("maxpool", "avgpool"):
        return op + "2d", {"kernel": values["k"], "stride": values["stride"] or values["k"]}
    return op, dict(values)


# --------------------------------------------------------------------------------------
# The net
# --------------------------------------------------------------------------------------


MAX_REPEAT = 1000
MAX_NODES = 20_000


@dataclass
class _Context:
    """Where nodes are being created: the statement (for ids), the instance (for
    shared weight keys), the scopes (for drawing) and the constants in view."""

    statement: str
    counter: itertools.count
    scope: tuple[Scope, ...]
    env: dict[str, Value]
    instance: tuple[str, itertools.count] | None = None
    blocks: tuple[str, ...] = ()

    def inner(self, scope: Scope, **changes) -> "_Context":
        return replace(self, scope=(*self.scope, scope), **changes)


@dataclass
class _Built:
    id: str
    op: str
    attrs: dict
    inputs: list[str]
    weights: str | None
    scope: tuple[Scope, ...]
    span: Span


class _NetBuilder:
    def __init__(self, merged: Merged, env: dict[str, Value], data: DataSpec):
        self.merged = merged
        self.env = env
        self.data = data
        self.nodes: list[_Built] = []
        self.definitions: dict[str, s.NodeStmt | s.InstanceStmt] = {}
        self.values: dict[str, str] = {}
        self.resolving: list[str] = []
        self.selects: dict[tuple[str, int], str] = {}

    def build(self) -> None:
        net = self.merged.net
        if net is None:
            raise MinispecError("the spec has no net section", hint="add net { out = x | flatten | linear(2) }")
        for statement in net.statements:
            if statement.name in self.definitions:
                first = self.definitions[statement.name].span
                raise MinispecError(f"duplicate name `{statement.name}` in the net", statement.span,
                                    related=[(first, "first defined here")], hint="give each statement its own name")
            if statement.name in self.data.inputs or statement.name in self.data.targets:
                raise MinispecError(f"`{statement.name}` is already the name of a data {'input' if statement.name in self.data.inputs else 'target'}",
                                    statement.span, hint="choose another name")
            self.definitions[statement.name] = statement
        for statement in net.statements:
            if isinstance(statement, s.NodeStmt):
                self.node_of(statement.name, statement.span)

    # -- names ----------------------------------------------------------------------
    def node_of(self, name: str, span: Span) -> str:
        """The node a net name stands for, resolving its statement on first use."""
        if name in self.values:
            return self.values[name]
        if name in self.resolving:
            cycle = " -> ".join([*self.resolving[self.resolving.index(name):], name])
            raise MinispecError(f"cycle in the net: {cycle}", span, hint="a node cannot depend on itself")
        statement = self.definitions[name]
        self.resolving.append(name)
        context = _Context(name, itertools.count(1), (Scope(kind="statement", name=name, span=statement.span),), self.env)
        first_new = len(self.nodes)
        result = self.pipeline(statement.pipeline, None, context)
        self.resolving.pop()
        if len(self.nodes) > first_new and result == self.nodes[-1].id:
            self._rename(self.nodes[-1], name)
            result = name
        self.values[name] = result
        return result

    def _rename(self, node: _Built, new_id: str) -> None:
        old = node.id
        if any(n.id == new_id for n in self.nodes):
            raise MinispecError(f"the name `{new_id}` clashes with a generated node name", node.span,
                                hint="choose another statement name")
        node.id = new_id
        if node.weights == old:
            node.weights = new_id

    # -- pipelines --------------------------------------------------------------------
    def pipeline(self, pipeline: s.Pipeline, current: str | None, context: _Context) -> str:
        stages = pipeline.stages
        if current is None:
            current = self.source(stages[0], context)
            stages = stages[1:]
        for stage in stages:
            current = self.stage(stage, current, context)
        return current

    def source(self, expr: s.Stage, context: _Context) -> str:
        """The start of a net statement: an input, a slice, a node, concat/add, or an instance applied."""
        if isinstance(expr, s.Name):
            return self.named(expr.name, expr.span, context)
        if isinstance(expr, s.Index):
            return self.select(expr, context)
        if isinstance(expr, s.Call):
            if expr.name in GRAPH_OPS:
                return self.combine(expr.name, list(expr.args), [], expr, context)
            statement = self.definitions.get(expr.name)
            if isinstance(statement, s.InstanceStmt):
                if len(expr.args) != 1 or expr.keywords:
                    raise MinispecError(f"instance `{expr.name}` is applied to exactly one input", expr.span,
                                        hint=f"{expr.name}(x[0])")
                return self.apply_instance(statement, self.source(expr.args[0], context), context, expr.span)
            if expr.name in OPS or expr.name in ALIASES or expr.name in self.merged.blocks:
                raise MinispecError(
                    f"a statement starts from an input or a named node, not from `{expr.name}(...)`",
                    expr.span,
                    hint=f"write `x | {expr.name}(...)`: the input comes first, then the layers",
                )
            raise MinispecError(f"unknown name `{expr.name}`", expr.name_span,
                                hint=nearest(expr.name, self._sources()))
        if isinstance(expr, (s.Repeat, s.Residual)):
            raise MinispecError("a statement starts from an input or a named node", expr.span,
                                hint="write `x | repeat 3 { ... }`")
        raise MinispecError("expected an input or a node here, not a constant", expr.span)

    def _sources(self) -> list[str]:
        return [*self.definitions, *self.data.inputs]

    def named(self, name: str, span: Span, context: _Context) -> str:
        if name in self.data.inputs:
            if name not in [n.id for n in self.nodes]:
                self.nodes.append(_Built(name, "input", {"name": name}, [], None, (), span))
            return name
        statement = self.definitions.get(name)
        if isinstance(statement, s.InstanceStmt):
            raise MinispecError(f"`{name}` is an instance; apply it to an input", span, hint=f"{name}(x[0])")
        if statement is not None:
            return self.node_of(name, span)
        if name in self.data.targets:
            raise MinispecError(f"`{name}` is a target of the data set, not an input", span,
                                hint=f"targets are used in the loss section; the inputs are {', '.join(self.data.inputs)}")
        raise MinispecError(f"unknown name `{name}`", span, hint=nearest(name, self._sources())
                            or f"the inputs are {', '.join(self.data.inputs)}")

    def select(self, expr: s.Index, context: _Context) -> str:
        base = self.named(expr.name, expr.span, context)
        index = _typed(_evaluate(expr.index, context.env), int, "an index", expr.index.span)
        if index < 0:
            raise MinispecError(f"index must be zero or positive, got {index}", expr.index.span)
        key = (base, index)
        if key not in self.selects:
            node_id = f"{expr.name}_{index}"
            self.nodes.append(_Built(node_id, "select", {"index": index}, [base], None, context.scope[:0], expr.span))
            self.selects[key] = node_id
        return self.selects[key]

    def combine(self, op: str, args: list[s.Expr], leading: list[str], call: s.Call, context: _Context) -> str:
        if call.keywords:
            raise MinispecError(f"{op} takes no options", call.keywords[0].span)
        inputs = leading + [self.source(arg, context) for arg in args]
        if len(inputs) < 2:
            raise MinispecError(f"{op} needs at least two inputs", call.span,
                                hint=f"{op}(a, b), or `a | {op}(b)` in a pipeline")
        return self.add_node(op, {}, inputs, call.span, context)

    def stage(self, stage: s.Stage, current: str, context: _Context) -> str:
        if isinstance(stage, s.Repeat):
            count = _typed(_evaluate(stage.count, context.env), int, "repeat count", stage.count.span)
            if not 1 <= count <= MAX_REPEAT:
                raise MinispecError(f"repeat count must be between 1 and {MAX_REPEAT}, got {count}",
                                    stage.count.span)
            for index in range(count):
                inner = context.inner(Scope(kind="repeat", name="repeat", index=index, count=count, span=stage.span))
                current = self.pipeline(stage.body, current, inner)
            return current
        if isinstance(stage, s.Residual):
            inner = context.inner(Scope(kind="residual", name="residual", span=stage.span))
            body = self.pipeline(stage.body, current, inner)
            return self.add_node("add", {"residual": True}, [body, current], stage.span, context)
        if isinstance(stage, s.Name):
            return self.call(stage.name, None, stage.span, stage.span, current, context)
        if isinstance(stage, s.Call):
            return self.call(stage.name, stage, stage.span, stage.name_span, current, context)
        raise MinispecError("expected a layer, a block, an instance, `repeat` or `residual` here", stage.span)

    def call(self, name: str, call: s.Call | None, span: Span, name_span: Span, current: str, context: _Context) -> str:
        if name in GRAPH_OPS and call is not None:
            return self.combine(name, list(call.args), [current], call, context)
        op = ALIASES.get(name, name)
        if op in OPS:
            values = _bind(name, OPS[op].args, call, context.env, span)
            ir_op, attrs = _layer_attrs(op, values)
            if name in ("batchnorm1d", "batchnorm2d"):
                attrs["expect"] = name
            return self.add_node(ir_op, attrs, [current], span, context)
        if name in self.merged.blocks:
            return self.expand_block(self.merged.blocks[name], call, span, current, context)
        statement = self.definitions.get(name)
        if isinstance(statement, s.InstanceStmt):
            if call is not None:
                raise MinispecError(f"in a pipeline, apply instance `{name}` without arguments", span,
                                    hint=f"`... | {name} | ...`, or `{name}(x[0])` to start a statement")
            return self.apply_instance(statement, current, context, span)
        if statement is not None:
            raise MinispecError(f"`{name}` is a node, not a layer", name_span,
                                hint=f"combine nodes with concat(...) or add(...), e.g. `| concat({name})`")
        candidates = [*OPS, *ALIASES, *self.merged.blocks,
                      *[n for n, d in self.definitions.items() if isinstance(d, s.InstanceStmt)], *GRAPH_OPS]
        raise MinispecError(f"unknown layer `{name}`", name_span,
                            hint=nearest(name, candidates) or "see docs/language.md for the list of layers")

    def expand_block(self, block: s.BlockDef, call: s.Call | None, span: Span, current: str, context: _Context) -> str:
        if block.name in context.blocks:
            raise MinispecError(f"block `{block.name}` calls itself", span, hint="blocks cannot be recursive; use repeat")
        formals = tuple(
            Arg(f.name, object, None if f.default is None else _evaluate(f.default, self.env)) for f in block.formals
        )
        values = _bind_block(block, formals, call, context.env, span)
        index = sum(1 for n in self.nodes for sc in n.scope if sc.kind == "block" and sc.name == block.name)
        inner = context.inner(
            Scope(kind="block", name=block.name, index=index, span=span),
            env={**self.env, **values},
            blocks=(*context.blocks, block.name),
        )
        return self.pipeline(block.body, current, inner)

    def apply_instance(self, statement: s.InstanceStmt, current: str, context: _Context, span: Span) -> str:
        inner = context.inner(
            Scope(kind="instance", name=statement.name, span=span),
            instance=(statement.name, itertools.count(1)),
            env=self.env,
        )
        if statement.name in [sc.name for sc in context.scope if sc.kind == "instance"]:
            raise MinispecError(f"instance `{statement.name}` applies itself", span)
        return self.pipeline(statement.body, current, inner)

    def add_node(self, op: str, attrs: dict, inputs: list[str], span: Span, context: _Context) -> str:
        if len(self.nodes) >= MAX_NODES:
            raise MinispecError(f"the network has more than {MAX_NODES:,} nodes", span,
                                hint="reduce repeat counts or the number of block calls")
        number = next(context.counter)
        node_id = f"{context.statement}_{number}_{op}"
        weights = None
        if op in ("linear", "conv2d", "batchnorm"):
            if context.instance is not None:
                name, counter = context.instance
                weights = f"{name}_{next(counter)}_{op}"
            else:
                weights = node_id
        elif context.instance is not None:
            next(context.instance[1])
        self.nodes.append(_Built(node_id, op, attrs, inputs, weights, context.scope, span))
        return node_id


def _bind_block(block: s.BlockDef, formals: tuple[Arg, ...], call: s.Call | None, env, span: Span) -> dict:
    positional = call.args if call else ()
    keywords = call.keywords if call else ()
    names = [f.name for f in formals]
    if len(positional) > len(formals):
        raise MinispecError(
            f"block `{block.name}` takes at most {len(formals)} argument{'s' * (len(formals) != 1)} ({', '.join(names)}), got {len(positional)}",
            positional[len(formals)].span,
        )
    values = {f.name: _evaluate(e, env) for f, e in zip(formals, positional)}
    for keyword in keywords:
        if keyword.name not in names:
            raise MinispecError(f"block `{block.name}` has no argument `{keyword.name}`", keyword.span,
                                hint=nearest(keyword.name, names) or f"its arguments are ({', '.join(names)})")
        if keyword.name in values:
            raise MinispecError(f"block `{block.name}`: `{keyword.name}` is given twice", keyword.span)
        values[keyword.name] = _evaluate(keyword.value, env)
    for formal in formals:
        if formal.name not in values:
            if formal.default is None:
                raise MinispecError(f"block `{block.name}` needs `{formal.name}`", span,
                                    hint=f"{block.name}({', '.join(names)})")
            values[formal.name] = formal.default
    return values


# --------------------------------------------------------------------------------------
# Data, losses, training
# --------------------------------------------------------------------------------------


def _data(merged: Merged, env: dict[str, Value]) -> DataSpec:
    decl = merged.data
    if decl is None:
        raise MinispecError("the spec has no data section",
                            hint="add a line such as `data mnist_pairs(train=1000, test=1000)` or `data disk()`")
    source = decl.source
    if isinstance(source, s.Name):
        source = s.Call(source.name, (), (), source.span, source.span)
    if not isinstance(source, s.Call) or source.args:
        raise MinispecError("the data section names a data set with keyword options", decl.span,
                            hint="data mnist_pairs(train=1000, test=1000)")
    options = {k.name: _evaluate(k.value, env) for k in source.keywords}
    try:
        inputs, targets, classes = describe_data(source.name, options)
    except MinispecError as error:
        span = source.name_span
        for keyword in source.keywords:
            if f"`{keyword.name}`" in error.message or keyword.name in error.message.split():
                span = keyword.span
        raise error.with_span(span) from None
    return DataSpec(name=source.name, options=options, inputs=inputs, targets=targets,
                    num_classes=classes, span=decl.span)


LOSS_KINDS = {"cross_entropy": "cross_entropy", "ce": "cross_entropy", "nll": "nll", "mse": "mse", "bce": "bce"}
ENCODINGS = ("index", "onehot", "pm1", "scalar")


def _losses(merged: Merged, env: dict[str, Value], names: dict[str, str], data: DataSpec) -> list[Loss]:
    if merged.loss is None or not merged.loss.statements:
        raise MinispecError("the spec has no loss section", hint="add loss { out cross_entropy(target) }")
    losses = []
    for statement in merged.loss.statements:
        if statement.node not in names:
            raise MinispecError(f"the loss names `{statement.node}`, which is not a node of the net",
                                statement.node_span, hint=nearest(statement.node, names) or
                                "losses apply to names defined in the net section")
        call = statement.call
        kind = LOSS_KINDS.get(call.name)
        if kind is None:
            raise MinispecError(f"unknown loss `{call.name}`", call.name_span,
                                hint=nearest(call.name, LOSS_KINDS) or "losses: cross_entropy, nll, mse, bce")
        if len(call.args) != 1:
            raise MinispecError(f"{call.name} takes one target, e.g. {call.name}(target)", call.span)
        target, encoding = _target(call.args[0], data)
        threshold = None
        for keyword in call.keywords:
            if keyword.name != "threshold":
                raise MinispecError(f"{call.name} has no option `{keyword.name}`", keyword.span,
                                    hint="the only option is threshold=VALUE")
            threshold = _typed(_evaluate(keyword.value, env), float, "threshold", keyword.value.span)
        if encoding is None:
            encoding = "index" if kind in ("cross_entropy", "nll") else "scalar"
        if kind in ("cross_entropy", "nll") and encoding != "index":
            raise MinispecError(f"{call.name} takes class indices, not a {encoding} target", call.args[0].span,
                                hint=f"write {call.name}({target})")
        if kind == "bce" and encoding != "scalar":
            raise MinispecError("bce takes 0/1 targets", call.args[0].span, hint=f"write bce({target})")
        if encoding in ("pm1", "scalar") and data.num_classes[target.name] != 2:
            raise MinispecError(f"{call.name}({target}) compares a single output with a two-class target, but "
                                f"`{target}` has {data.num_classes[target.name]} classes", call.args[0].span,
                                hint=f"use {call.name}(onehot({target})) or cross_entropy({target})")
        weight = 1.0
        if statement.weight is not None:
            weight = _typed(_evaluate(statement.weight, env), float, "a loss weight", statement.weight.span)
            if weight < 0:
                raise MinispecError(f"a loss weight must be zero or positive, got {weight}", statement.weight.span)
        if threshold is None:
            threshold = 0.0 if encoding == "pm1" else 0.5
        losses.append(Loss(
            node=names[statement.node], kind=kind, target=target, encoding=encoding,
            classes=data.num_classes[target.name], weight=weight,
            decision="argmax" if encoding in ("index", "onehot") else "threshold",
            threshold=threshold, span=statement.span,
        ))
    return losses


def _target(expr: s.Expr, data: DataSpec) -> tuple[TargetRef, str | None]:
    encoding = None
    if isinstance(expr, s.Call):
        if expr.name not in ENCODINGS:
            raise MinispecError(f"unknown target encoding `{expr.name}`", expr.name_span,
                                hint=nearest(expr.name, ENCODINGS) or "encodings: index, onehot, pm1, scalar")
        if len(expr.args) != 1 or expr.keywords:
            raise MinispecError(f"{expr.name}(...) wraps one target, e.g. {expr.name}(target)", expr.span)
        encoding, expr = expr.name, expr.args[0]
    if isinstance(expr, s.Name):
        name, index, span = expr.name, None, expr.span
    elif isinstance(expr, s.Index):
        name, span = expr.name, expr.span
        index = _typed(_evaluate(expr.index, {}), int, "a target index", expr.index.span)
    else:
        raise MinispecError("expected a target such as `target` or `classes[0]`", expr.span)
    if name not in data.targets:
        raise MinispecError(f"`{name}` is not a target of data set {data.name}", span,
                            hint=nearest(name, data.targets) or f"its targets are {', '.join(data.targets)}")
    shape = data.targets[name]
    if index is None and shape:
        raise MinispecError(f"target `{name}` has shape {shape}; pick one column", span, hint=f"{name}[0]")
    if index is not None and (not shape or not 0 <= index < shape[0]):
        raise MinispecError(f"index {index} is out of range for target `{name}` of shape {shape}", span)
    return TargetRef(name=name, index=index), encoding


OPTIMIZERS = {
    "sgd": {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "adadelta": {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0},
}
SCHEDULES = {"constant": {}, "step": {"every": 10.0, "gamma": 0.1}, "cosine": {"min_lr": 0.0}}
INITS = {"torch": {}, "zero": {}, "normal": {"std": 1.0}, "uniform": {"bound": 1.0}, "glorot": {}, "kaiming": {}}


def _named_call(expr: s.Expr, table: dict[str, dict], what: str, env) -> tuple[str, dict[str, float], Span]:
    """`adam(lr=1e-3)` or `cosine` against a table of names and default options."""
    if isinstance(expr, s.Name):
        expr = s.Call(expr.name, (), (), expr.span, expr.span)
    if not isinstance(expr, s.Call):
        raise MinispecError(f"expected {what} name, e.g. {next(iter(table))}", expr.span)
    if expr.name not in table:
        raise MinispecError(f"unknown {what} `{expr.name}`", expr.name_span,
                            hint=nearest(expr.name, table) or f"choose one of: {', '.join(table)}")
    if expr.args:
        raise MinispecError(f"{expr.name} takes keyword options", expr.args[0].span,
                            hint=f"{expr.name}({', '.join(f'{k}={v}' for k, v in table[expr.name].items())})")
    options = dict(table[expr.name])
    for keyword in expr.keywords:
        if keyword.name not in options:
            raise MinispecError(f"{expr.name} has no option `{keyword.name}`", keyword.span,
                                hint=nearest(keyword.name, options) or f"its options: {', '.join(options) or 'none'}")
        value = _typed(_evaluate(keyword.value, env), float, f"{expr.name}: `{keyword.name}`", keyword.value.span)
        if value < 0 or (keyword.name in ("lr", "every", "eps", "std", "bound") and value <= 0):
            raise MinispecError(f"{expr.name}: `{keyword.name}` must be positive, got {value}", keyword.value.span)
        if keyword.name in ("momentum", "rho", "beta1", "beta2", "gamma") and value >= 1 and keyword.name != "gamma":
            raise MinispecError(f"{expr.name}: `{keyword.name}` must be below 1, got {value}", keyword.value.span)
        options[keyword.name] = value
    return expr.name, options, expr.span


def _train_size(data: DataSpec) -> int | None:
    """Training samples of the data set, when the spec fixes them."""
    size = data.options.get("train")
    if size is None:
        defaults = {o.name: o.default for o in DATASETS[data.name].options}
        size = defaults.get("train")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _train(merged: Merged, env: dict[str, Value], names: dict[str, str], losses: list[Loss],
           data: DataSpec) -> Train:
    settings = dict(merged.train)
    unknown = [k for k in settings if k not in TRAIN_KEYS]
    if unknown:
        statement = settings[unknown[0]]
        raise MinispecError(f"unknown train setting `{statement.key}`", statement.key_span,
                            hint=nearest(statement.key, TRAIN_KEYS) or f"settings: {', '.join(TRAIN_KEYS)}")

    def integer(key: str, default: int, minimum: int) -> int:
        if key not in settings:
            return default
        statement = settings[key]
        value = _typed(_evaluate(statement.value, env), int, key, statement.value.span)
        if value < minimum:
            raise MinispecError(f"{key} must be at least {minimum}, got {value}", statement.value.span)
        return value

    kind, options = "sgd", dict(OPTIMIZERS["sgd"])
    if "optimizer" in settings:
        kind, options, _ = _named_call(settings["optimizer"].value, OPTIMIZERS, "optimizer", env)
    if "lr" in settings:
        statement = settings["lr"]
        lr = _typed(_evaluate(statement.value, env), float, "lr", statement.value.span)
        if lr <= 0:
            raise MinispecError(f"lr must be positive, got {lr}", statement.value.span)
        options["lr"] = lr
    schedule = Schedule()
    if "schedule" in settings:
        name, schedule_options, _ = _named_call(settings["schedule"].value, SCHEDULES, "schedule", env)
        schedule = Schedule(kind=name, options=schedule_options)
    init = Init()
    if "init" in settings:
        name, init_options, _ = _named_call(settings["init"].value, INITS, "initialisation", env)
        init = Init(scheme=name, options=init_options)
    report = losses[0].node
    if "report" in settings:
        statement = settings["report"]
        if not isinstance(statement.value, s.Name) or statement.value.name not in names:
            raise MinispecError("report names a node of the net that has a loss", statement.value.span,
                                hint=f"for example `report {next(iter(names))}`")
        report = names[statement.value.name]
        if report not in [loss.node for loss in losses]:
            raise MinispecError(f"`{statement.value.name}` has no loss, so its error cannot be reported",
                                statement.value.span, hint="report a node named in the loss section")
    train_size = _train_size(data)
    batch = integer("batch", min(DEFAULT_BATCH, train_size or DEFAULT_BATCH), 1)
    if train_size is not None and batch > train_size:
        raise MinispecError(f"batch {batch} is larger than the {train_size} training samples",
                            settings["batch"].value.span,
                            hint=f"use batch {train_size} for full-batch gradient descent")
    return Train(
        optimizer=Optimizer(kind=kind, options=options),
        schedule=schedule,
        batch=batch,
        epochs=integer("epochs", 25, 1),
        trials=integer("trials", 10, 1),
        seed=integer("seed", 0, 0),
        evaluate=integer("evaluate", 1, 1),
        init=init,
        report=report,
    )


# --------------------------------------------------------------------------------------
# Everything together
# --------------------------------------------------------------------------------------


def resolve(merged: Merged, source: str) -> Program:
    """Definitions -> Program (nodes without shapes yet)."""
    try:
        return _resolve(merged, source)
    except MinispecError as error:
        # Errors about the spec as a whole (a missing section) point at its first line.
        raise error.with_span(Span(file=source, line=1, column=1, end_line=1, end_column=2)) from None


def _resolve(merged: Merged, source: str) -> Program:
    env: dict[str, Value] = {}
    for name, decl in merged.params.items():
        env[name] = _evaluate(decl.value, env)
    data = _data(merged, env)
    builder = _NetBuilder(merged, env, data)
    builder.build()
    names = dict(builder.values)
    losses = _losses(merged, env, names, data)
    train = _train(merged, env, names, losses, data)
    uses: dict[str, int] = {}
    for built in builder.nodes:
        if built.weights:
            uses[built.weights] = uses.get(built.weights, 0) + 1
    nodes = [
        Node(id=b.id, op=b.op, attrs=b.attrs, inputs=b.inputs, weights=b.weights,
             shared=bool(b.weights) and uses[b.weights] > 1, scope=list(b.scope), span=b.span)
        for b in builder.nodes
    ]
    return Program(
        name=merged.name or Path(source).stem,
        source=source,
        params=env,
        data=data,
        nodes=nodes,
        names=names,
        losses=losses,
        train=train,
        convolutionized=merged.convolutionize is not None,
    )
