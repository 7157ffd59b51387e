"""Module, Parameter, Buffer and Sequential: the course's module interface.

Every module holds R independent replicas ("trials trained at once") and every
tensor carries a leading replica axis: parameters are [R, *torch_shape],
activations [R, B, *sample_shape]. The R replicas are one batched computation.

    y = m.forward(x)        # caches what backward needs
    gx = m.backward(gy)     # accumulates (+=) parameter gradients, returns dL/dx

Weight sharing: `m.shared_copy()` is a new module object holding the very same
Parameter (and Buffer) objects but its own forward cache, so one layer can be
applied at several places of a graph in one forward pass; the gradients of
every use accumulate into the shared `Parameter.grad`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch

from minispec import init

class Parameter:
    """A trainable tensor `value` [R, *torch_shape] and its gradient `grad` (same shape)."""

    __slots__ = ("value", "grad", "name")

    def __init__(self, value: torch.Tensor, name: str = "") -> None:
        self.value = value
        self.grad = torch.zeros_like(value)
        self.name = name

    def zero_grad(self) -> None:
        self.grad.zero_()

    def to_(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Parameter:
        """Move value and grad in place (every module sharing this Parameter sees the move)."""
        self.value = self.value.to(device=device, dtype=dtype)
        self.grad = self.grad.to(device=device, dtype=dtype)
        return self

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={list(self.value.shape)}, dtype={self.value.dtype})"


class Buffer:
    """State that is not trained (BatchNorm's running statistics): `value` [R, ...].

    Updated in place, and shared by shared copies like a Parameter.
    """

    __slots__ = ("value", "name")

    def __init__(self, value: torch.Tensor, name: str = "") -> None:
        self.value = value
        self.name = name

    def to_(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Buffer:
        """Move in place; `dtype` applies to floating buffers only (counters stay long)."""
        self.value = self.value.to(device=device, dtype=dtype if self.value.is_floating_point() else None)
        return self

    def __repr__(self) -> str:
        return f"Buffer({self.name!r}, shape={list(self.value.shape)}, dtype={self.value.dtype})"


def replica_generators(generator: torch.Generator | Sequence[torch.Generator] | None, replicas: int) -> list:
    """One generator per replica for initialisation.

    A list of R generators: replica k draws from generator k (so replica k of a
    network built from generators seeded s_k equals a torch network built after
    torch.manual_seed(s_k)). One generator (or None, the global one): the
    replicas draw one after the other from it.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return [generator] * replicas
    gens = list(generator)
    if len(gens) != replicas:
        raise ValueError(f"expected {replicas} generators (one per replica), got {len(gens)}")
    return gens


def draw_replicas(
    shapes: dict[str, tuple[int, ...]],
    fan_in: int,
    fan_out: int,
    replicas: int,
    scheme: str = "torch",
    options: dict | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Initial values [R, *shape] for each role in `shapes` ("weight", "bias").

    Per replica, the roles are drawn in the order given (weight then bias, as
    torch does), with `minispec.init.draw`.
    """
    per_role: dict[str, list[torch.Tensor]] = {role: [] for role in shapes}
    for gen in replica_generators(generator, replicas):
        for role, shape in shapes.items():
            per_role[role].append(init.draw(shape, fan_in, fan_out, role, scheme, options, gen, dtype))
    return {role: torch.stack(values).to(device) for role, values in per_role.items()}


class Module:
    """Base class: forward / backward with a leading replica axis.

    Subclasses register trainable tensors with `_param(name, value)` and
    running state with `_buffer(name, value)` (both become attributes holding
    the Parameter / Buffer object), and list in `_cache` the attribute names
    where forward keeps what backward needs. A graph sets `input_grad = False`
    on a module whose input depends on no parameter (a first layer): its
    backward may then skip dL/dx and return None.
    """

    _cache: tuple[str, ...] = ()
    input_grad = True

    def __init__(self) -> None:
        self.training = True
        self._params: dict[str, Parameter] = {}
        self._buffers: dict[str, Buffer] = {}

    # -- the course's interface -------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def params(self) -> list[Parameter]:
        """Every Parameter of this module and its children, each object once."""
        return list(self.named_params().values())

    def param(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The course's list of (value, gradient) pairs."""
        return [(p.value, p.grad) for p in self.params()]

    def zero_grad(self) -> None:
        for p in self.params():
            p.grad.zero_()

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Module:
        """Move parameters (value and grad) and buffers; `dtype` applies to floating tensors."""
        for p in self.params():
            p.to_(device, dtype)
        for b in self.buffers():
            b.to_(device, dtype)
        return self

    def state(self, replica: int) -> dict[str, torch.Tensor]:
        """One replica's parameters and buffers under torch's state_dict names, CPU copies
        ("0.weight", "1.running_mean", "1.num_batches_tracked" as a 0-d long, ...)."""
        tensors = {n: p.value for n, p in self.named_params().items()} | {n: b.value for n, b in self.named_buffers().items()}
        return {name: value[replica].detach().to("cpu", copy=True) for name, value in tensors.items()}

    def load_state(self, replica: int, state: dict[str, torch.Tensor]) -> None:
        """Overwrite one replica's parameters and buffers (names as `state` gives them); in place."""
        targets = {n: p.value for n, p in self.named_params().items()} | {n: b.value for n, b in self.named_buffers().items()}
        missing, unexpected = targets.keys() - state.keys(), state.keys() - targets.keys()
        if missing or unexpected:
            raise KeyError(f"load_state: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for name, value in targets.items():
            value[replica].copy_(state[name])

    # -- structure ---------------------------------------------------------
    def children(self) -> list[Module]:
        return []

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, child in enumerate(self.children()):
            yield str(i), child

    def named_params(self, prefix: str = "") -> dict[str, Parameter]:
        """Dotted name -> Parameter ("0.weight", ...); a shared Parameter appears once, under its first name."""
        out: dict[str, Parameter] = {}
        seen: set[int] = set()
        for name, p in self._walk(prefix, "_params"):
            if id(p) not in seen:
                seen.add(id(p))
                out[name] = p
        return out

    def buffers(self) -> list[Buffer]:
        return list(self.named_buffers().values())

    def named_buffers(self, prefix: str = "") -> dict[str, Buffer]:
        out: dict[str, Buffer] = {}
        seen: set[int] = set()
        for name, b in self._walk(prefix, "_buffers"):
            if id(b) not in seen:
                seen.add(id(b))
                out[name] = b
        return out

    def _walk(self, prefix: str, kind: str) -> Iterator[tuple[str, Parameter | Buffer]]:
        for name, obj in getattr(self, kind).items():
            yield prefix + name, obj
        for cname, child in self.named_children():
            yield from child._walk(f"{prefix}{cname}.", kind)

    def _param(self, name: str, value: torch.Tensor) -> Parameter:
        p = Parameter(value, name)
        self._params[name] = p
        setattr(self, name, p)
        return p

    def _buffer(self, name: str, value: torch.Tensor) -> Buffer:
        b = Buffer(value, name)
        self._buffers[name] = b
        setattr(self, name, b)
        return b

    def shared_copy(self) -> Module:
        """A new module sharing the same Parameter and Buffer objects, with its own forward cache."""
        new = copy.copy(self)
        for attr in self._cache:
            setattr(new, attr, None)
        return new

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse.

        forward:  x -> m_1 -> ... -> m_n
        backward: g -> m_n.backward -> ... -> m_1.backward
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        self.modules = list(modules)

    def children(self) -> list[Module]:
        return self.modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.modules:
            x = m.forward(x)
        return x

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        for m in reversed(self.modules):
            grad = m.backward(grad)
        return grad

    def shared_copy(self) -> Sequential:
        new = Sequential(*(m.shared_copy() for m in self.modules))
        new.training = self.training
        return new

    def __getitem__(self, i: int) -> Module:
        return self.modules[i]

    def __len__(self) -> int:
        return len(self.modules)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {m!r}" for i, m in enumerate(self.modules))
        return f"Sequential({inner}\n)"
