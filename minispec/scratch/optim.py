"""SGD, Adam and Adadelta, step for step as torch.optim computes them.

    opt = SGD(model.params(), lr=0.1, momentum=0.9)
    model.zero_grad()   # or opt.zero_grad()
    ... forward, loss.backward(), model.backward(grad) ...
    opt.step()

Every replica's slice of a parameter is updated by the same rule, so the R
replicas train independently. The rules are elementwise, so the optimizer
moves all parameters into one flat tensor per device and dtype (each
Parameter's `value` and `grad` become views into it) and updates them with a
handful of in-place operations per step, whatever the number of layers: on
small networks the per-operation overhead, not the arithmetic, is the cost.
Build the optimizer after `model.to(...)`; state tensors are allocated at the
first step.
`lr` is a plain attribute, settable between steps. Option names follow the
IR's optimizer options (lr, momentum, weight_decay, beta1, beta2, eps, rho).

Per-replica values (a sweep's points trained as one model): any option may be
a tuple of R floats instead of one float, replica k's slice of every
parameter then updating with the k-th value. The optimizer expands such a
tuple once into a flat tensor beside the values (element i of the flat
storage belongs to replica `replica[i]`), so a step costs the same handful of
operations; with one float per option nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from minispec.scratch.module import Parameter


class Optimizer:
    """Holds a list of Parameters (each object once), stored flat, and the state of the update."""

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        unique: dict[int, Parameter] = {}
        for p in params:
            unique.setdefault(id(p), p)
        self.params = list(unique.values())
        self.lr = lr
        self.steps = 0
        # (flat values, flat gradients, update state) per device and dtype
        self.groups: list[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]] = []
        for members in _by_storage(self.params):
            values, grads = _flatten(members)
            self.groups.append((values, grads, {"replica": _replica_index(members), "like": values}))

    def zero_grad(self) -> None:
        for _, grad, _ in self.groups:
            grad.zero_()

    def step(self) -> None:
        self.steps += 1
        for value, grad, state in self.groups:
            self._update(value, grad, state)

    def _update(self, value: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def _option(self, name: str, state: dict) -> float | torch.Tensor:
        """Option `name` as a float, or (a tuple of per-replica values) as a flat
        tensor matching this group's storage, built when the values change."""
        option = getattr(self, name)
        if not isinstance(option, tuple):
            return option
        key = f"option:{name}"
        if state.get(key + ":values") != option:
            like = state["like"]
            state[key] = torch.tensor(option, dtype=like.dtype)[state["replica"]].to(like.device)
            state[key + ":values"] = option
        return state[key]

    def _grad_with_decay(self, value: torch.Tensor, grad: torch.Tensor, state: dict, weight_decay) -> torch.Tensor:
        """g + weight_decay * p, into a scratch tensor (torch's `grad.add(param, alpha=wd)`)."""
        if _is_zero(self.weight_decay):
            return grad
        if "scratch" not in state:
            state["scratch"] = torch.empty_like(grad)
        if isinstance(weight_decay, torch.Tensor):
            return torch.addcmul(grad, value, weight_decay, out=state["scratch"])
        return torch.add(grad, value, alpha=weight_decay, out=state["scratch"])


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (dampening 0) and weight decay, as torch.optim.SGD.

        g = grad + weight_decay * p
        buf = g (first step),  buf = momentum * buf + g (later steps)     [momentum > 0]
        p -= lr * buf   (p -= lr * g without momentum)
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay

    def _update(self, value, grad, state) -> None:
        g = self._grad_with_decay(value, grad, state, self._option("weight_decay", state))
        momentum = self._option("momentum", state)
        if not _is_zero(self.momentum):
            buf = state.get("momentum_buffer")
            if buf is None:
                state["momentum_buffer"] = buf = g.clone()
            else:
                buf.mul_(momentum).add_(g)
            g = buf
        _add_scaled(value, g, self._option("lr", state), -1)


class Adam(Optimizer):
    """Adam with bias correction, as torch.optim.Adam (weight decay added to the gradient, not AdamW).

        g = grad + weight_decay * p
        m = beta1 m + (1 - beta1) g        v = beta2 v + (1 - beta2) g^2
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def _update(self, value, grad, state) -> None:
        g = self._grad_with_decay(value, grad, state, self._option("weight_decay", state))
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(value)
            state["exp_avg_sq"] = torch.zeros_like(value)
            state["denom"] = torch.empty_like(value)
        m, v, denom = state["exp_avg"], state["exp_avg_sq"], state["denom"]
        beta1, beta2 = self._option("beta1", state), self._option("beta2", state)
        t = self.steps
        m.lerp_(g, 1 - beta1)
        _add_scaled_square(v.mul_(beta2), g, 1 - beta2)
        step_size = self._option("lr", state) / (1 - beta1**t)
        torch.sqrt(v, out=denom).div_((1 - beta2**t) ** 0.5).add_(self._option("eps", state))
        if isinstance(step_size, torch.Tensor):
            value.addcdiv_(m * step_size, denom, value=-1)
        else:
            value.addcdiv_(m, denom, value=-step_size)


class Adadelta(Optimizer):
    """Adadelta, as torch.optim.Adadelta.

        g = grad + weight_decay * p
        s = rho s + (1 - rho) g^2
        delta = sqrt(u + eps) / sqrt(s + eps) * g
        u = rho u + (1 - rho) delta^2
        p -= lr * delta
    """

    def __init__(
        self, params: Iterable[Parameter], lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr)
        self.rho, self.eps, self.weight_decay = rho, eps, weight_decay

    def _update(self, value, grad, state) -> None:
        g = self._grad_with_decay(value, grad, state, self._option("weight_decay", state))
        rho, eps = self._option("rho", state), self._option("eps", state)
        if "square_avg" not in state:
            state["square_avg"] = torch.zeros_like(value)
            state["acc_delta"] = torch.zeros_like(value)
            state["std"] = torch.empty_like(value)
            state["delta"] = torch.empty_like(value)
        s, u, std, delta = state["square_avg"], state["acc_delta"], state["std"], state["delta"]
        _add_scaled_square(s.mul_(rho), g, 1 - rho)
        torch.add(s, eps, out=std).sqrt_()
        torch.add(u, eps, out=delta).sqrt_()
        delta.div_(std).mul_(g)
        _add_scaled_square(u.mul_(rho), delta, 1 - rho)
        _add_scaled(value, delta, self._option("lr", state), -1)


def _is_zero(option: float | tuple[float, ...]) -> bool:
    """On the plain option (one value, or one per replica), never its tensor: asking
    a tensor each step would wait on the device once per step."""
    return not any(option) if isinstance(option, tuple) else option == 0


def _add_scaled(target: torch.Tensor, x: torch.Tensor, scale: float | torch.Tensor, sign: int) -> None:
    """target += sign * scale * x (a per-element scale: a flat per-replica option)."""
    if isinstance(scale, torch.Tensor):
        target.addcmul_(x, scale, value=sign)
    else:
        target.add_(x, alpha=sign * scale)


def _add_scaled_square(target: torch.Tensor, x: torch.Tensor, scale: float | torch.Tensor) -> None:
    """target += scale * x^2."""
    if isinstance(scale, torch.Tensor):
        target.addcmul_(x * x, scale)
    else:
        target.addcmul_(x, x, value=scale)


def _replica_index(params: list[Parameter]) -> torch.Tensor:
    """The replica of every element of the flat storage of `params` (each [R, ...])."""
    return torch.cat([torch.arange(p.value.shape[0]).repeat_interleave(p.value[0].numel()) for p in params])


def _by_storage(params: list[Parameter]) -> list[list[Parameter]]:
    groups: dict[tuple[torch.device, torch.dtype], list[Parameter]] = {}
    for p in params:
        groups.setdefault((p.value.device, p.value.dtype), []).append(p)
    return list(groups.values())


def _flatten(params: list[Parameter]) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy the parameters' values and gradients into two flat tensors and make
    every Parameter's `value` and `grad` a view of its slice."""
    values = torch.cat([p.value.detach().reshape(-1) for p in params])
    grads = torch.cat([p.grad.reshape(-1) for p in params])
    offset = 0
    for p in params:
        size, shape = p.value.numel(), p.value.shape
        p.value = values[offset : offset + size].view(shape)
        p.grad = grads[offset : offset + size].view(shape)
        offset += size
    return values, grads
