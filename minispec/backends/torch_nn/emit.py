"""A Program as readable, standalone PyTorch source: one nn.Module class.

`emit_python(program)` writes the model a student would write by hand:

    class Caux(nn.Module):
        def __init__(self):
            super().__init__()
            self._modules['extract:1:conv2d'] = nn.Conv2d(1, 32, kernel_size=(3, 3))  # shared: a:1:conv2d, b:1:conv2d
            ...
        def forward(self, x):
            x_0 = x[:, 0:1]                          # [B, 1, 14, 14]
            a_1_conv2d = self._modules['extract:1:conv2d'](x_0)  # [B, 32, 12, 12]
            ...
            return {"out": out, "digit_a": digit_a, "digit_b": digit_b}

The submodules have the attribute names and the order of
`minispec.backends.torch_nn.module.GraphModule`, so the state_dict of one loads
into the other with strict=True. A shared instance is one submodule called
once per use. `forward` takes the data inputs positionally (in graph order) and
returns a dict of the loss nodes' outputs (`program.outputs`, main output
first). The source imports torch only, never minispec; writing it imports no
torch at all (tests/torch_nn/test_emit_imports.py).
Whatever comes from the user (the file name, the spec name, node names)
is escaped into comments and string literals, so importing the module runs
only the code written here.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from pathlib import Path

from minispec.backends.torch_nn.nn_attributes import NN_MODULE_ATTRIBUTES
from minispec.errors import visible
from minispec.ir.model import GENERATED, Loss, Node, Program
from minispec.ir.ops import OPS, pair

INDENT = "    "
# Names the generated code itself uses; a node with one of them gets a suffix.
RESERVED = {"self", "torch", "nn", "F"}


# Written before the model when it holds fixed values (`triu(10)`), as GraphModule holds them.
CONSTANT_CLASS = [
    "class Constant(nn.Module):",
    f'{INDENT}"""Fixed values, never trained: forward() returns them with a batch axis of 1."""',
    "",
    f"{INDENT}def __init__(self, value):",
    f"{INDENT * 2}super().__init__()",
    f'{INDENT * 2}self.register_buffer("value", value)',
    "",
    f"{INDENT}def forward(self):",
    f"{INDENT * 2}return self.value.unsqueeze(0)",
    "",
    "",
]


def class_name(program: Program) -> str:
    """CamelCase of the spec name: caux -> Caux, caux_conv -> CauxConv."""
    name = "".join(part[:1].upper() + part[1:] for part in program.name.split("_"))
    if not name.isidentifier() or keyword.iskeyword(name) or name in RESERVED:
        name = f"{name}Net" if name.isidentifier() else "Net"
    return name


def _is_plain_attribute(key: str) -> bool:
    return (key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("_")
            and key not in NN_MODULE_ATTRIBUTES)


def _submodule_ref(key: str) -> str:
    """How the code refers to the submodule of parameter set `key`."""
    return f"self.{key}" if _is_plain_attribute(key) else f"self._modules[{key!r}]"


def _linear_source(node: Node, args: list[str], shapes: list[list[int]]) -> str:
    out_features, in_features = node.param_shapes["weight"]
    bias = "" if "bias" in node.param_shapes else ", bias=False"
    return f"nn.Linear({in_features}, {out_features}{bias})"


def _conv2d_source(node: Node, args: list[str], shapes: list[list[int]]) -> str:
    attrs = node.attrs
    out_channels, in_channels, kh, kw = node.param_shapes["weight"]
    text = f"nn.Conv2d({in_channels}, {out_channels}, kernel_size=({kh}, {kw})"
    if pair(attrs["stride"]) != (1, 1):
        text += f", stride={_size(attrs['stride'])}"
    if pair(attrs["padding"]) != (0, 0):
        text += f", padding={_size(attrs['padding'])}"
    if "bias" not in node.param_shapes:
        text += ", bias=False"
    return text + ")"


def _size(value) -> str:
    """An int, or an (h, w) tuple when the two differ."""
    h, w = pair(value)
    return str(h) if h == w else f"({h}, {w})"


def _batchnorm_source(node: Node, args: list[str], shapes: list[list[int]]) -> str:
    (channels,) = node.param_shapes["weight"]
    text = f"nn.BatchNorm{1 if len(node.shape) == 1 else 2}d({channels}"
    if node.attrs["eps"] != 1e-5:
        text += f", eps={node.attrs['eps']!r}"
    if node.attrs["momentum"] != 0.1:
        text += f", momentum={node.attrs['momentum']!r}"
    return text + ")"


def _pool_source(function: str):
    return lambda node, args, shapes: f"F.{function}({args[0]}, kernel_size={node.attrs['kernel']}, stride={node.attrs['stride']})"


def _matmul_source(node: Node, args: list[str], shapes: list[list[int]]) -> str:
    a, b = args
    if len(shapes[0]) == 1:
        return f"({a}.unsqueeze(1) @ {b}).squeeze(1)"
    if len(shapes[1]) == 1:
        return f"({a} @ {b}.unsqueeze(2)).squeeze(2)"
    return f"{a} @ {b}"


def _sum_source(node: Node, args: list[str], shapes: list[list[int]]) -> str:
    axis = node.attrs["axis"]
    if axis == -1:
        return f"{args[0]}.flatten(1).sum(1, keepdim=True)"
    keep = ", keepdim=True" if len(shapes[0]) == 1 else ""
    return f"{args[0]}.sum({axis + 1}{keep})"


# op -> (node, input variables, input shapes) -> source: the constructor of the layer holding
# the parameter set for ops with state (forward calls it), else the right-hand
# side computing the node.
SOURCE: dict[str, Callable[[Node, list[str], list[list[int]]], str]] = {
    "linear": _linear_source,
    "conv2d": _conv2d_source,
    "batchnorm1d": _batchnorm_source,
    "batchnorm2d": _batchnorm_source,
    "select": lambda node, args, shapes: f"{args[0]}[:, {node.attrs['index']}:{node.attrs['index'] + 1}]",
    "identity": lambda node, args, shapes: args[0],
    "flatten": lambda node, args, shapes: f"torch.flatten({args[0]}, 1)",
    "maxpool2d": _pool_source("max_pool2d"),
    "avgpool2d": _pool_source("avg_pool2d"),
    "dropout": lambda node, args, shapes: f"F.dropout({args[0]}, p={node.attrs['p']!r}, training=self.training)",
    "relu": lambda node, args, shapes: f"F.relu({args[0]})",
    "leaky_relu": lambda node, args, shapes: f"F.leaky_relu({args[0]}, negative_slope={node.attrs['slope']!r})",
    "tanh": lambda node, args, shapes: f"torch.tanh({args[0]})",
    "sigmoid": lambda node, args, shapes: f"torch.sigmoid({args[0]})",
    "softmax": lambda node, args, shapes: f"F.softmax({args[0]}, dim=1)",
    "log_softmax": lambda node, args, shapes: f"F.log_softmax({args[0]}, dim=1)",
    "concat": lambda node, args, shapes: f"torch.cat([{', '.join(args)}], dim=1)",
    "add": lambda node, args, shapes: " + ".join(args),
    "sub": lambda node, args, shapes: f"{args[0]} - {args[1]}",
    "mul": lambda node, args, shapes: " * ".join(args),
    "outer": lambda node, args, shapes: f"{args[0]}.unsqueeze(2) * {args[1]}.unsqueeze(1)",
    "matmul": _matmul_source,
    "sum": _sum_source,
    "global_avgpool": lambda node, args, shapes: f"{args[0]}.mean((2, 3))",
    "triu": lambda node, args, shapes: f"Constant(torch.ones({node.attrs['n']}, {node.attrs['n']}).triu())",
}


def _expression(node: Node, args: list[str], shapes: list[list[int]]) -> str:
    """Right-hand side computing `node` from its input variables."""
    if node.weights is not None:
        return f"{_submodule_ref(node.weights)}({', '.join(args)})"
    return SOURCE[node.op](node, args, shapes)


def _variables(program: Program) -> dict[str, str]:
    """A Python variable name per node id: the id itself unless it clashes."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for node in program.nodes:
        base = node.attrs["name"] if OPS[node.op].has("data") else node.id
        name = re.sub(r"\W", "_", base)  # generated ids hold `:`: `a:1:conv2d` -> a_1_conv2d
        if not name.isidentifier() or keyword.iskeyword(name) or name in RESERVED:
            name = f"{name}_"
        while name in taken:
            name = f"{name}_"
        taken.add(name)
        names[node.id] = name
    return names


def _loss_text(loss: Loss) -> str:
    """A loss as the spec writes it: `digit_a cross_entropy(classes[0]) weight 0.5`."""
    default = "index" if loss.kind in ("cross_entropy", "nll") else "scalar"
    target = str(loss.target) if loss.encoding == default else f"{loss.encoding}({loss.target})"
    weight = "" if loss.weight == 1.0 else f" weight {loss.weight:g}"
    return f"{loss.node} {loss.kind}({target}){weight}"


def _shape(node: Node) -> str:
    return "[" + ", ".join(["B", *map(str, node.shape)]) + "]"


def _instance_name(node: Node) -> str | None:
    for scope in node.scope:
        if scope.kind == "instance":
            return scope.name
    return None


def _string(text: str) -> str:
    """A Python string literal of `text`, double-quoted."""
    return '"' + visible(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _docstring(text: str) -> str:
    """`text` safe inside triple double quotes: backslashes escaped, a quote
    escaped where it would start or end a run, nothing unprintable."""
    return visible(re.sub(r'"(?="|$)', r'\\"', text.replace("\\", "\\\\")))


def emit_python(program: Program) -> str:
    """Standalone source of one nn.Module class for `program` (see the module docstring)."""
    var = _variables(program)
    inputs = [node for node in program.nodes if OPS[node.op].has("data")]
    users: dict[str, list[str]] = {}
    for node in program.nodes:
        if node.weights is not None:
            users.setdefault(node.weights, []).append(node.id)
    name = class_name(program)
    returns = ", ".join(f'"{out}": {_shape(program.node(out))}' for out in program.outputs)
    takes = ", ".join(f"{node.attrs['name']} {_shape(node)}" for node in inputs)
    losses = "; ".join(_loss_text(loss) for loss in program.losses)

    lines = [
        f"# Generated by minispec from {visible(Path(program.source).as_posix())} (spec `{visible(program.name)}`).",
        f"# {program.total_params:,} trainable parameters (each shared instance counted once).",
        f"# Losses: {visible(losses)}.",
        "# Standalone: needs torch only. forward() returns a dict of the loss nodes' outputs.",
        "",
        "import torch",
        "import torch.nn as nn",
        "import torch.nn.functional as F",
        "",
        "",
        *(CONSTANT_CLASS if any(OPS[node.op].has("constant") for node in program.nodes) else []),
        f"class {name}(nn.Module):",
        f'{INDENT}"""{_docstring(f"{program.name}: {takes} -> {{{returns}}}.")}"""',
        "",
        f"{INDENT}def __init__(self):",
        f"{INDENT * 2}super().__init__()",
    ]
    for owner in program.weight_owners:
        key = owner.weights
        note = []
        if len(users[key]) > 1:
            instance = _instance_name(owner)
            label = f"shared instance `{instance}`" if instance else "shared"
            note.append(f"{label}, used by {', '.join(users[key])}")
        if not _is_plain_attribute(key) and GENERATED not in key:
            note.append(f"{key!r} is not a free attribute name of nn.Module")
        comment = f"  # {visible('; '.join(note))}" if note else ""
        frozen = ".requires_grad_(False)" if owner.param_shapes and not owner.trainable else ""
        lines.append(f"{INDENT * 2}{_submodule_ref(key)} = {SOURCE[owner.op](owner, [], [])}{frozen}{comment}")

    arguments = ", ".join(["self", *(var[n.id] for n in inputs)])
    lines += ["", f"{INDENT}def forward({arguments}):"]
    body = []
    for node in program.nodes:
        if OPS[node.op].has("data"):
            continue
        expression = _expression(node, [var[i] for i in node.inputs], [program.node(i).shape for i in node.inputs])
        comment = _shape(node)
        if node.attrs.get("residual"):
            comment += " residual"
        body.append((f"{var[node.id]} = {expression}", comment))
    width = max(len(code) for code, _ in body)
    lines += [f"{INDENT * 2}{code.ljust(width)}  # {comment}" for code, comment in body]
    result = ", ".join(f"{_string(out)}: {var[out]}" for out in program.outputs)
    lines.append(f"{INDENT * 2}return {{{result}}}")
    return "\n".join(lines) + "\n"
