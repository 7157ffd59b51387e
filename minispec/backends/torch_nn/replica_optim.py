"""SGD, Adam and Adadelta over stacked parameters [R, ...] whose replicas have their own options.

torch.optim takes one learning rate (one momentum, ...) per parameter group,
and a stacked parameter holds every replica, so the points of a sweep trained
as one model need their own update: the rules of torch.optim written with
every option a tensor [R] seen as [R, 1, ...] against each parameter. Replica
k's slice then updates exactly as `torch.optim` would update it with replica
k's options, up to float rounding (torch's fused kernels may contract
`p - lr * g` into one multiply-add). Used only when some option or learning
rate differs between replicas; otherwise the model keeps the fused optimizers.

    SGD       g = grad + wd p;  buf = g (first step), momentum buf + g;  p -= lr buf
    Adam      g = grad + wd p;  m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2
              p -= lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    Adadelta  g = grad + wd p;  s = rho s + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(s + eps) g
              u = rho u + (1 - rho) d^2;  p -= lr d
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from minispec.backends.replicas import ReplicaHyper


class ReplicaOptimizer:
    """One optimizer of `kind` for stacked parameters, options per replica (`hyper.optimizer`)."""

    def __init__(self, kind: str, params: Iterable[torch.nn.Parameter], hyper: ReplicaHyper):
        if kind not in ("sgd", "adam", "adadelta"):
            raise ValueError(f"unknown optimizer {kind!r}")
        self.kind = kind
        self.params = list(params)
        first = self.params[0]
        self._options = {name: torch.tensor(values, dtype=first.dtype, device=first.device)
                         for name, values in hyper.optimizer.items()}
        # Fixed for the run, so decided here from the plain values: asking the tensors
        # each step would wait on the device once per step.
        self._decays = any(v != 0 for v in hyper.optimizer.get("weight_decay", ()))
        self._momentum = any(v != 0 for v in hyper.optimizer.get("momentum", ()))
        self._state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]
        self.steps = 0

    def set_learning_rate(self, values: Sequence[float]) -> None:
        lr = self._options["lr"]
        lr.copy_(torch.tensor(list(values), dtype=lr.dtype))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for p, state in zip(self.params, self._state):
            if p.grad is None:
                continue
            view = (-1,) + (1,) * (p.dim() - 1)
            o = {name: value.view(view) for name, value in self._options.items()}
            g = p.grad
            if self._decays:
                g = g.addcmul(p, o["weight_decay"])
            getattr(self, f"_{self.kind}")(p, g, state, o)

    def _sgd(self, p, g, state, o) -> None:
        if self._momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                state["momentum_buffer"] = buf = g.clone()
            else:
                buf.mul_(o["momentum"]).add_(g)
            g = buf
        p.addcmul_(g, o["lr"], value=-1)

    def _adam(self, p, g, state, o) -> None:
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], self.steps
        m.lerp_(g, 1 - o["beta1"])
        v.mul_(o["beta2"]).addcmul_(g * g, 1 - o["beta2"])
        step_size = o["lr"] / (1 - o["beta1"] ** t)
        denom = (v.sqrt() / (1 - o["beta2"] ** t).sqrt()).add_(o["eps"])
        p.addcdiv_(m * step_size, denom, value=-1)

    def _adadelta(self, p, g, state, o) -> None:
        if not state:
            state["square_avg"], state["acc_delta"] = torch.zeros_like(p), torch.zeros_like(p)
        s, u = state["square_avg"], state["acc_delta"]
        s.mul_(o["rho"]).addcmul_(g * g, 1 - o["rho"])
        std = s.add(o["eps"]).sqrt_()
        delta = u.add(o["eps"]).sqrt_().div_(std).mul_(g)
        u.mul_(o["rho"]).addcmul_(delta * delta, 1 - o["rho"])
        p.addcmul_(delta, o["lr"], value=-1)
