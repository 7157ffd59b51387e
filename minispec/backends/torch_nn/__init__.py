"""The torch.nn backend: a Program lowered to an nn.Module, emitted as Python, and trained.

    build_module(program)   -> GraphModule (nn.Module), canonical state names
    emit_python(program)    -> standalone source of one nn.Module class
    TorchModel(program, states, device, dtype)  -> the runner's TrainableModel, one replica
    VectorizedTorchModel(program, states, device, dtype)  -> R replicas at once (stacked weights)
"""

from minispec.backends.torch_nn.emit import emit_python
from minispec.backends.torch_nn.model import TorchModel
from minispec.backends.torch_nn.module import GraphModule, build_module
from minispec.backends.torch_nn.vectorized import VectorizedTorchModel

__all__ = ["GraphModule", "TorchModel", "VectorizedTorchModel", "build_module", "emit_python"]
