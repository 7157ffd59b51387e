"""A Program with its weights as an ONNX model, for Netron, onnxruntime and
whatever else reads ONNX.

Every IR node becomes the ONNX node of the same name (`a:1:conv2d`, `out`),
writing the value of that name, so a viewer shows the spec's own names; the
parameters are initializers under their canonical state names
(`extract:1:conv2d.weight`), one per shared set. The graph takes the data
inputs by their spec names, [batch, *shape], and returns `program.outputs`.
It computes what the torch backend computes in evaluation mode: dropout is the
identity, batchnorm uses its running statistics.

`LOWERING` is the lowering table: op -> (node, input names, state names) ->
the ONNX nodes computing it. An op without an entry is refused with one
message naming it. Needs the `onnx` package (`pip install 'minispec[onnx]'`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from minispec.errors import MinispecError
from minispec.ir.model import Node, Program
from minispec.ir.ops import OPS, pair, state_names

if TYPE_CHECKING:
    import onnx
    import torch

OPSET = 17
INSTALL = "ONNX export needs the onnx package: pip install 'minispec[onnx]'"


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MinispecError(INSTALL) from None
    return onnx


def _one(op_type: str, **attributes) -> Callable:
    """An op lowered to one ONNX op of the same inputs."""
    return lambda node, inputs, state: [_node(op_type, [*inputs, *state], node.id, **attributes)]


def _node(op_type: str, inputs: list[str], output: str, **attributes):
    """One ONNX node named like the value it writes (the spec's node name)."""
    return _onnx().helper.make_node(op_type, inputs, [output], name=output, **attributes)


def _select(node: Node, inputs, state):
    """x[i] keeping the axis: Slice on axis 1 (axis 0 is the batch)."""
    index = node.attrs["index"]
    constants = [(f"{node.id}/{name}", value) for name, value in (("starts", index), ("ends", index + 1),
                                                                 ("axes", 1))]
    helper, tensor = _onnx().helper, _onnx().TensorProto.INT64
    return [
        *[helper.make_node("Constant", [], [name], name=name, value=helper.make_tensor(name, tensor, [1], [value]))
          for name, value in constants],
        _node("Slice", [inputs[0], *(name for name, _ in constants)], node.id),
    ]


def _conv2d(node: Node, inputs, state):
    _, _, kh, kw = node.param_shapes["weight"]
    padding = pair(node.attrs["padding"])
    return [_node("Conv", [*inputs, *state], node.id, kernel_shape=[kh, kw],
                  strides=list(pair(node.attrs["stride"])), pads=[*padding, *padding])]


def _pool(op_type: str) -> Callable:
    return lambda node, inputs, state: [_node(op_type, inputs, node.id, kernel_shape=list(pair(node.attrs["kernel"])),
                                              strides=list(pair(node.attrs["stride"])))]


def _batchnorm(node: Node, inputs, state):
    weight, bias, mean, var = (s for s in state if not s.endswith(".num_batches_tracked"))
    return [_node("BatchNormalization", [*inputs, weight, bias, mean, var], node.id, epsilon=node.attrs["eps"])]


def _ints(node: Node, name: str, values: list[int]):
    """A Constant node of int64 `values`, named `<node>/<name>`; (the node, its output name)."""
    onnx = _onnx()
    output = f"{node.id}/{name}"
    tensor = onnx.helper.make_tensor(output, onnx.TensorProto.INT64, [len(values)], values)
    return onnx.helper.make_node("Constant", [], [output], name=output, value=tensor), output


def _unsqueeze(node: Node, name: str, source: str, axis: int) -> tuple[list, str]:
    constant, axes = _ints(node, f"{name}_axes", [axis])
    output = f"{node.id}/{name}"
    return [constant, _node("Unsqueeze", [source, axes], output)], output


def _chain(op_type: str) -> Callable:
    """A binary ONNX op over two or more inputs: ((x1 op x2) op x3) ..."""
    def lower(node: Node, inputs, state):
        nodes, current = [], inputs[0]
        for index, other in enumerate(inputs[1:], 1):
            output = node.id if index == len(inputs) - 1 else f"{node.id}/{index}"
            nodes.append(_node(op_type, [current, other], output))
            current = output
        return nodes
    return lower


def _outer(node: Node, inputs, state):
    a_nodes, a = _unsqueeze(node, "a", inputs[0], 2)
    b_nodes, b = _unsqueeze(node, "b", inputs[1], 1)
    return [*a_nodes, *b_nodes, _node("Mul", [a, b], node.id)]


def _reshape_to(node: Node, source: str) -> list:
    """Reshape [batch, ...] to [batch, *node.shape] (0 keeps the batch)."""
    constant, shape = _ints(node, "shape", [0, *node.shape])
    return [constant, _node("Reshape", [source, shape], node.id)]


def _matmul(node: Node, inputs, state):
    """A vector becomes a one-row (first) or one-column (second) matrix, then back (see ops.matmul's form)."""
    form = node.attrs["form"]
    nodes, (a, b) = [], inputs
    if form == "vector-matrix":
        nodes, a = _unsqueeze(node, "row", a, 1)
    elif form == "matrix-vector":
        nodes, b = _unsqueeze(node, "column", b, -1)
    if form == "matrix-matrix":
        return [_node("MatMul", [a, b], node.id)]
    product = f"{node.id}/product"
    return [*nodes, _node("MatMul", [a, b], product), *_reshape_to(node, product)]


def _sum(node: Node, inputs, state):
    axis = node.attrs["axis"]
    flat = f"{node.id}/flat"
    if axis == -1:
        constant, axes = _ints(node, "axes", [1])
        return [_node("Flatten", inputs, flat, axis=1), constant,
                _node("ReduceSum", [flat, axes], node.id, keepdims=1)]
    constant, axes = _ints(node, "axes", [axis + 1])
    summed = f"{node.id}/sum"
    return [constant, _node("ReduceSum", [inputs[0], axes], summed, keepdims=1), *_reshape_to(node, summed)]


def _global_avgpool(node: Node, inputs, state):
    pooled = f"{node.id}/pooled"
    return [_node("GlobalAveragePool", inputs, pooled), _node("Flatten", [pooled], node.id, axis=1)]


def _constant(node: Node, inputs, state):
    """The buffer `value`, with a batch axis of 1 that broadcasts."""
    constant, axes = _ints(node, "axes", [0])
    return [constant, _node("Unsqueeze", [state[0], axes], node.id)]


LOWERING: dict[str, Callable[[Node, list[str], list[str]], list]] = {
    "select": _select,
    "linear": _one("Gemm", transB=1),
    "conv2d": _conv2d,
    "maxpool2d": _pool("MaxPool"),
    "avgpool2d": _pool("AveragePool"),
    "batchnorm1d": _batchnorm,
    "batchnorm2d": _batchnorm,
    "dropout": _one("Identity"),
    "identity": _one("Identity"),
    "flatten": _one("Flatten", axis=1),
    "relu": _one("Relu"),
    "leaky_relu": lambda node, inputs, state: [_node("LeakyRelu", inputs, node.id, alpha=node.attrs["slope"])],
    "tanh": _one("Tanh"),
    "sigmoid": _one("Sigmoid"),
    "softmax": _one("Softmax", axis=1),
    "log_softmax": _one("LogSoftmax", axis=1),
    "concat": _one("Concat", axis=1),
    "add": _chain("Add"),
    "sub": _one("Sub"),
    "mul": _chain("Mul"),
    "outer": _outer,
    "matmul": _matmul,
    "sum": _sum,
    "global_avgpool": _global_avgpool,
    "triu": _constant,
}


def unsupported(program: Program) -> list[Node]:
    """The nodes whose op ONNX export cannot express (first of each op)."""
    seen: dict[str, Node] = {}
    for node in program.nodes:
        if not OPS[node.op].has("data") and node.op not in LOWERING:
            seen.setdefault(node.op, node)
    return list(seen.values())


def check_exportable(program: Program) -> None:
    """Raise MinispecError when the onnx package is missing or when `program`
    has an op ONNX export cannot express (naming the first such op)."""
    _onnx()
    missing = unsupported(program)
    if missing:
        node = missing[0]
        raise MinispecError(f"ONNX export cannot express `{node.op}` (node `{node.id}`)", node.span,
                            hint="export a spec without this op, or use --emit torch")


def onnx_model(program: Program, state: dict[str, torch.Tensor]) -> onnx.ModelProto:
    """The ONNX model of `program` holding `state` (canonical names, as saved by a run)."""
    check_exportable(program)
    onnx = _onnx()
    from onnx import numpy_helper

    helper, floats = onnx.helper, onnx.TensorProto.FLOAT
    graph_inputs, names, nodes, used = [], {}, [], []
    for node in program.nodes:
        if OPS[node.op].has("data"):
            name = node.attrs["name"]
            names[node.id] = name
            graph_inputs.append(helper.make_tensor_value_info(name, floats, ["batch", *node.shape]))
            continue
        held = [f"{node.weights}.{n}" for n in state_names(node)] if node.weights else []
        used += [n for n in held if n not in used and not n.endswith(".num_batches_tracked")]
        nodes += LOWERING[node.op](node, [names[i] for i in node.inputs], held)
        names[node.id] = node.id
    initializers = [numpy_helper.from_array(state[name].detach().cpu().float().numpy(), name) for name in used]
    outputs = [helper.make_tensor_value_info(names[o], floats, ["batch", *program.node(o).shape])
               for o in program.outputs]
    graph = helper.make_graph(nodes, program.name, graph_inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="minispec")
    onnx.checker.check_model(model)
    return model


def export_onnx(program: Program, path: Path, state: dict[str, torch.Tensor] | None = None,
                option: str = "-o") -> Path:
    """Write `program` as ONNX to `path`, with `state`, or without one the
    initial state a run of seed `program.train.seed` would draw (as build_module).
    `option` names the path in messages (`-o`, `--export onnx`)."""
    from minispec.outputs import write_output

    if state is None:
        import torch

        from minispec.backends.weights import initial_state

        state = initial_state(program, torch.Generator(device="cpu").manual_seed(program.train.seed))
    write_output(Path(path), onnx_model(program, state).SerializeToString(), option)
    return Path(path)
