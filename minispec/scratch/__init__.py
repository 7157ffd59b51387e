"""A deep-learning framework written by hand: forward and backward on tensor ops.

Every module holds R independent replicas and every tensor has a leading
replica axis: parameters [R, *torch_shape], activations [R, B, *sample_shape],
losses [R]. Only `torch` tensor operations are used: nothing from torch's
neural-network, automatic-differentiation, func or optim packages (a test scans
the imports); run it under `torch.no_grad()`.

    import torch
    from minispec.scratch import Sequential, Linear, Tanh, MSELoss, SGD

    torch.set_grad_enabled(False)
    model = Sequential(Linear(2, 25, replicas=1), Tanh(), Linear(25, 25, replicas=1), Tanh(), Linear(25, 1, replicas=1))
    loss_fn, opt = MSELoss(), SGD(model.params(), lr=0.1, momentum=0.9)
    x, t = torch.rand(1, 100, 2), torch.rand(1, 100, 1)     # [R, B, ...]
    opt.zero_grad()
    loss = loss_fn.forward(model.forward(x), t)              # [R]
    model.backward(loss_fn.backward())                       # accumulates Parameter.grad
    opt.step()

Weight sharing: `layer.shared_copy()` shares the Parameter objects but not the
forward cache; use one copy per place the layer is applied.
"""

from minispec.scratch.activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from minispec.scratch.batchnorm import BatchNorm1d, BatchNorm2d
from minispec.scratch.conv import Conv2d
from minispec.scratch.dropout import Dropout
from minispec.scratch.flatten import Flatten
from minispec.scratch.linear import Linear
from minispec.scratch.loss import BCELoss, CrossEntropyLoss, Loss, MSELoss, NLLLoss
from minispec.scratch.module import Buffer, Module, Parameter, Sequential
from minispec.scratch.optim import SGD, Adadelta, Adam, Optimizer
from minispec.scratch.pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d

__all__ = [
    "Adadelta",
    "Adam",
    "AvgPool2d",
    "BCELoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Buffer",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "LeakyReLU",
    "Linear",
    "Loss",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "NLLLoss",
    "Optimizer",
    "Parameter",
    "ReLU",
    "SGD",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "LogSoftmax",
    "Tanh",
]
