"""Constants in a spec: evaluating values and binding call arguments to signatures.

Shared by the net builder (layers, blocks) and the sections (losses, training):
every check of arity, option names, types and ranges happens here, with the
span of the culprit.
"""

from __future__ import annotations

import difflib

from minispec.errors import MinispecError, Span
from minispec.ir.ops import Arg
from minispec.lang import syntax as s

Value = bool | int | float | str


def nearest(name: str, candidates) -> str | None:
    """A hint naming the closest valid spellings, if any are close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"



def evaluate(expr: s.Expr, env: dict[str, Value]) -> Value:
    """A constant: a literal, or a name bound to one (a param or a block argument)."""
    if isinstance(expr, s.Literal):
        return expr.value
    if isinstance(expr, s.Name):
        if expr.name in env:
            return env[expr.name]
        raise MinispecError(f"unknown name `{expr.name}`", expr.span,
                            hint=nearest(expr.name, env) or "declare it with `param NAME = VALUE`")
    raise MinispecError("expected a number, a boolean, a string or a parameter name", expr.span)


def spelled(value: Value) -> str:
    """A value as it is written in a spec."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def typed(value: Value, kind: type, what: str, span: Span) -> Value:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        raise MinispecError(f"{what} must be {names[kind]}, got {value!r}", span)
    return value


def bind_args(op: str, args: tuple[Arg, ...], call: s.Call | None, env: dict[str, Value], span: Span) -> dict[str, Value]:
    """Match a call's arguments to a signature, checking arity, names, types and ranges."""
    positional = call.args if call else ()
    keywords = call.keywords if call else ()
    signature = ", ".join(a.name if a.default is None else f"{a.name}={spelled(a.default)}" for a in args)
    if len(positional) > len(args):
        raise MinispecError(
            f"{op} takes at most {len(args)} argument{'s' * (len(args) != 1)} ({signature}), got {len(positional)}",
            positional[len(args)].span,
            hint=f"{op}({signature})" if args else f"write `{op}` without parentheses",
        )
    bound: dict[str, tuple[Value, Span]] = {}
    for arg, expr in zip(args, positional):
        bound[arg.name] = (_argument(arg, expr, env), expr.span)
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
        bound[keyword.name] = (_argument(args[names.index(keyword.name)], keyword.value, env), keyword.value.span)
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
        if value in arg.words:
            values[arg.name] = value
            continue
        value = typed(value, arg.kind, f"{op}: `{arg.name}`", value_span)
        problem = arg.check(value) if arg.check else None
        if problem:
            raise MinispecError(f"{op}: `{arg.name}` {problem}, got {value}", value_span)
        values[arg.name] = value
    return values


def _argument(arg: Arg, expr: s.Expr, env: dict[str, Value]) -> Value:
    """A value for `arg`: a bare word it accepts (`same`) unless a constant has that name, else a constant."""
    if isinstance(expr, s.Name) and expr.name in arg.words and expr.name not in env:
        return expr.name
    return evaluate(expr, env)


def bind_block(block: s.BlockDef, formals: tuple[Arg, ...], call: s.Call | None, env, span: Span) -> dict:
    positional = call.args if call else ()
    keywords = call.keywords if call else ()
    names = [f.name for f in formals]
    if len(positional) > len(formals):
        raise MinispecError(
            f"block `{block.name}` takes at most {len(formals)} argument{'s' * (len(formals) != 1)} ({', '.join(names)}), got {len(positional)}",
            positional[len(formals)].span,
        )
    values = {f.name: evaluate(e, env) for f, e in zip(formals, positional)}
    for keyword in keywords:
        if keyword.name not in names:
            raise MinispecError(f"block `{block.name}` has no argument `{keyword.name}`", keyword.span,
                                hint=nearest(keyword.name, names) or f"its arguments are ({', '.join(names)})")
        if keyword.name in values:
            raise MinispecError(f"block `{block.name}`: `{keyword.name}` is given twice", keyword.span)
        values[keyword.name] = evaluate(keyword.value, env)
    for formal in formals:
        if formal.name not in values:
            if formal.default is None:
                raise MinispecError(f"block `{block.name}` needs `{formal.name}`", span,
                                    hint=f"{block.name}({', '.join(names)})")
            values[formal.name] = formal.default
    return values
