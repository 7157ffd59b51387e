"""The net section -> graph nodes: pipelines, blocks, instances, repeat, residual.

Each statement's nodes get ids `<statement>:<n>:<op>`, its last node the
statement's name; a slice `x[0]` is `x:0`. The `:` (GENERATED) cannot occur in a
name, so no statement can take a generated id. Parameter sets are keyed by
`weights`: the node id, or `<instance>:<n>:<op>` for the layers of a shared instance, so every use of an
instance names the same weights. Statements resolve on first use (their order
does not matter), which is also where cycles are found.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from minispec.errors import MinispecError, Span
from minispec.ir.model import GENERATED, DataSpec, Scope
from minispec.ir.ops import COMBINATORS, OPS, SPELLED, Arg
from minispec.lang import syntax as s
from minispec.lang.files import Merged
from minispec.lang.values import Value, bind_args, bind_block, evaluate, nearest, typed


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
    local: dict[str, str] | None = None  # inside a block of statements: its names (and `input`) -> node ids

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


class NetBuilder:
    def __init__(self, merged: Merged, env: dict[str, Value], data: DataSpec):
        self.merged = merged
        self.env = env
        self.data = data
        self.nodes: list[_Built] = []
        self.definitions: dict[str, s.NodeStmt | s.InstanceStmt] = {}
        self.values: dict[str, str] = {}
        self.resolving: list[str] = []
        self.selects: dict[tuple[str, int], str] = {}
        self.inputs_made: set[str] = set()
        self.block_uses: dict[str, int] = {}  # block name -> nodes made inside a call of it so far

    def build(self) -> None:
        net = self.merged.net
        if net is None:
            raise MinispecError("the spec has no net section", hint="add net { out = x | flatten | linear(2) }")
        if len(net.statements) > MAX_NODES:  # each statement makes a node at least: refuse before the work
            raise MinispecError(f"the network has more than {MAX_NODES:,} nodes", net.statements[MAX_NODES].span,
                                hint="write long chains as repeat { ... } or as blocks")
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
        node.id = new_id
        for key, node_id in self.selects.items():
            if node_id == old:
                self.selects[key] = new_id
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
        """The start of a net statement: an input, a slice, a node, a combinator
        (`add(a, b)`), a constant (`triu(10)`), or an instance applied; as an
        argument of a combinator, also a whole pipeline (`x | conv2d(8, 1)`)."""
        if isinstance(expr, s.Pipeline):
            return self.pipeline(expr, None, context)
        if isinstance(expr, s.Name):
            return self.named(expr.name, expr.span, context)
        if isinstance(expr, s.Index):
            return self.select(expr, context)
        if isinstance(expr, s.Call):
            if expr.name in COMBINATORS:
                return self.combine(expr.name, list(expr.args), [], expr, context)
            definition = SPELLED.get(expr.name)
            if definition is not None and definition.has("source"):
                values = bind_args(expr.name, definition.args, expr, context.env, expr.span)
                return self.add_node(definition.name, definition.attrs(values), [], expr.span, context)
            statement = self.definitions.get(expr.name)
            if isinstance(statement, s.InstanceStmt):
                if len(expr.args) != 1 or expr.keywords:
                    raise MinispecError(f"instance `{expr.name}` is applied to exactly one input", expr.span,
                                        hint=f"{expr.name}(x[0])")
                return self.apply_instance(statement, self.source(expr.args[0], context), context, expr.span)
            if expr.name in SPELLED or expr.name in self.merged.blocks:
                raise MinispecError(
                    f"a statement starts from an input or a named node, not from `{expr.name}(...)`",
                    expr.span,
                    hint=f"write `x | {expr.name}(...)`: the input comes first, then the layers",
                )
            instances = [n for n, d in self.definitions.items() if isinstance(d, s.InstanceStmt)]
            known = ", ".join(f"`{c}`" for c in COMBINATORS)
            raise MinispecError(f"unknown combinator or instance `{expr.name}`", expr.name_span,
                                hint=nearest(expr.name, [*COMBINATORS, *instances])
                                or f"the combinators are {known}" + (f"; the instances {', '.join(instances)}"
                                                                     if instances else ""))
        if isinstance(expr, (s.Repeat, s.Residual)):
            raise MinispecError("a statement starts from an input or a named node", expr.span,
                                hint="write `x | repeat 3 { ... }`")
        raise MinispecError("expected an input or a node here, not a constant", expr.span)

    def _sources(self) -> list[str]:
        return [*self.definitions, *self.data.inputs]

    def named(self, name: str, span: Span, context: _Context) -> str:
        if context.local is not None and name in context.local:
            return context.local[name]
        if name in self.data.inputs:
            if name not in self.inputs_made:
                self.inputs_made.add(name)
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
        index = typed(evaluate(expr.index, context.env), int, "an index", expr.index.span)
        if index < 0:
            raise MinispecError(f"index must be zero or positive, got {index}", expr.index.span)
        key = (base, index)
        if key not in self.selects:
            node_id = f"{expr.name}{GENERATED}{index}"
            self.nodes.append(_Built(node_id, "select", {"index": index}, [base], None, context.scope[:0], expr.span))
            self.selects[key] = node_id
        return self.selects[key]

    def combine(self, op: str, args: list[s.Expr], leading: list[str], call: s.Call, context: _Context) -> str:
        if call.keywords:
            raise MinispecError(f"{op} takes no options", call.keywords[0].span)
        inputs = leading + [self.source(arg, context) for arg in args]
        arity = SPELLED[op].arity
        if len(inputs) < 2 or (arity is not None and len(inputs) != arity):
            count = "at least two" if arity is None else f"exactly {arity}"
            raise MinispecError(f"{op} needs {count} inputs, got {len(inputs)}", call.span,
                                hint=f"{op}(a, b), or `a | {op}(b)` in a pipeline")
        return self.add_node(SPELLED[op].name, {}, inputs, call.span, context)

    def stage(self, stage: s.Stage, current: str, context: _Context) -> str:
        if isinstance(stage, s.Repeat):
            count = typed(evaluate(stage.count, context.env), int, "repeat count", stage.count.span)
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
            skip = current if stage.shortcut is None else self.pipeline(stage.shortcut, current, inner)
            return self.add_node("add", {"residual": True}, [body, skip], stage.span, context)
        if isinstance(stage, s.Name):
            return self.call(stage.name, None, stage.span, stage.span, current, context)
        if isinstance(stage, s.Call):
            return self.call(stage.name, stage, stage.span, stage.name_span, current, context)
        raise MinispecError("expected a layer, a block, an instance, `repeat` or `residual` here", stage.span)

    def call(self, name: str, call: s.Call | None, span: Span, name_span: Span, current: str, context: _Context) -> str:
        if name in COMBINATORS and call is not None:
            return self.combine(name, list(call.args), [current], call, context)
        definition = SPELLED.get(name)
        if definition is not None and definition.has("source"):
            raise MinispecError(f"{name} makes a value from no input; it cannot follow `|`", name_span,
                                hint=f"name it on its own line, `u = {name}(...)`, then combine: `... | matmul(u)`")
        if definition is not None:
            values = bind_args(name, definition.args, call, context.env, span)
            try:
                attrs = definition.attrs(values)
            except MinispecError as error:
                raise error.with_span(span) from None
            if definition.resolves_to and name != definition.spelled:
                attrs["expect"] = name  # `batchnorm2d`: checked when shape inference resolves it
            return self.add_node(definition.name, attrs, [current], span, context)
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
        candidates = [*SPELLED, *self.merged.blocks,
                      *[n for n, d in self.definitions.items() if isinstance(d, s.InstanceStmt)]]
        raise MinispecError(f"unknown layer `{name}`", name_span,
                            hint=nearest(name, candidates) or "see docs/language.md for the list of layers")

    def expand_block(self, block: s.BlockDef, call: s.Call | None, span: Span, current: str, context: _Context) -> str:
        if block.name in context.blocks:
            raise MinispecError(f"block `{block.name}` calls itself", span, hint="blocks cannot be recursive; use repeat")
        formals = tuple(
            Arg(f.name, object, None if f.default is None else evaluate(f.default, self.env)) for f in block.formals
        )
        values = bind_block(block, formals, call, context.env, span)
        index = self.block_uses.get(block.name, 0)
        inner = context.inner(
            Scope(kind="block", name=block.name, index=index, span=span),
            env={**self.env, **values},
            blocks=(*context.blocks, block.name),
            local=None,
        )
        if block.body is not None:
            return self.pipeline(block.body, current, inner)
        # Statements in order, each seeing `input` and the ones before it; the last is the result.
        inner.local = {"input": current}
        for statement in block.statements:
            if statement.name in inner.local:
                raise MinispecError(f"`{statement.name}` is already a name in block `{block.name}`", statement.span,
                                    hint="`input` is the block's input; give each statement its own name")
            inner.local[statement.name] = self.pipeline(statement.pipeline, None, inner)
        return inner.local[block.statements[-1].name]

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
        node_id = f"{context.statement}{GENERATED}{number}{GENERATED}{op}"
        weights = None
        if OPS[op].state or any(OPS[r].state for r in OPS[op].resolves_to):
            if context.instance is not None:
                name, counter = context.instance
                weights = f"{name}{GENERATED}{next(counter)}{GENERATED}{op}"
            else:
                weights = node_id
        elif context.instance is not None:
            next(context.instance[1])
        for scope in context.scope:
            if scope.kind == "block":
                self.block_uses[scope.name] = self.block_uses.get(scope.name, 0) + 1
        self.nodes.append(_Built(node_id, op, attrs, inputs, weights, context.scope, span))
        return node_id
