"""The torch.nn backend: a Program lowered to an nn.Module, emitted as Python, and trained.

    build_module(program)   -> GraphModule (nn.Module), canonical state names
    emit_python(program)    -> standalone source of one nn.Module class
    TorchModel(program, states, device, dtype)  -> the runner's TrainableModel, one replica
    VectorizedTorchModel(program, states, device, dtype)  -> R replicas at once (stacked weights)

Each name is imported from its module on first use: `emit_python` writes text
and must not pay for importing torch (4-10 s on a busy machine).
"""

import importlib

_HOMES = {
    "GraphModule": "module",
    "build_module": "module",
    "emit_python": "emit",
    "TorchModel": "model",
    "VectorizedTorchModel": "vectorized",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
