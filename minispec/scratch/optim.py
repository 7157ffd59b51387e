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
        self.groups: list[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]] = [
            (*_flatten(members), {}) for members in _by_storage(self.params)
        ]

    def zero_grad(self) -> None:
        for _, grad, _ in self.groups:
            grad.zero_()

    def step(self) -> None:
        self.steps += 1
        for value, grad, state in self.groups:
            self._update(value, grad, state)

    def _update(self, value: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def _grad_with_decay(self, value: torch.Tensor, grad: torch.Tensor, state: dict, weight_decay: float) -> torch.Tensor:
        """g + weight_decay * p, into a scratch tensor (torch's `grad.add(param, alpha=wd)`)."""
        if weight_decay == 0:
            return grad
        if "scratch" not in state:
            state["scratch"] = torch.empty_like(grad)
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
        g = self._grad_with_decay(value, grad, state, self.weight_decay)
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                state["momentum_buffer"] = buf = g.clone()
            else:
                buf.mul_(self.momentum).add_(g)
            g = buf
        value.add_(g, alpha=-self.lr)


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
        g = self._grad_with_decay(value, grad, state, self.weight_decay)
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(value)
            state["exp_avg_sq"] = torch.zeros_like(value)
            state["denom"] = torch.empty_like(value)
        m, v, denom = state["exp_avg"], state["exp_avg_sq"], state["denom"]
        t = self.steps
        m.lerp_(g, 1 - self.beta1)
        v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        step_size = self.lr / (1 - self.beta1**t)
        torch.sqrt(v, out=denom).div_((1 - self.beta2**t) ** 0.5).add_(self.eps)
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
        g = self._grad_with_decay(value, grad, state, self.weight_decay)
        if "square_avg" not in state:
            state["square_avg"] = torch.zeros_like(value)
            state["acc_delta"] = torch.zeros_like(value)
            state["std"] = torch.empty_like(value)
            state["delta"] = torch.empty_like(value)
        s, u, std, delta = state["square_avg"], state["acc_delta"], state["std"], state["delta"]
        s.mul_(self.rho).addcmul_(g, g, value=1 - self.rho)
        torch.add(s, self.eps, out=std).sqrt_()
        torch.add(u, self.eps, out=delta).sqrt_()
        delta.div_(std).mul_(g)
        u.mul_(self.rho).addcmul_(delta, delta, value=1 - self.rho)
        value.add_(delta, alpha=-self.lr)


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
