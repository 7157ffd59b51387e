"""SGD, Adam and Adadelta over stacked parameters [R, ...], each replica with its own options.

torch.optim takes one learning rate (one momentum, ...) per parameter group,
and a stacked parameter holds every replica, so the points of a sweep trained
as one model need their own update: the rules of torch.optim written with
every option a tensor [R] seen as [R, 1, ...] against each parameter. Replica
k's slice then updates exactly as `torch.optim` would update it with replica
k's options, up to float rounding (torch's fused kernels may contract
`p - lr * g` into one multiply-add).

The vectorized torch model uses it whether or not the options differ, and
never torch.optim, whose first optimizer imports torch._dynamo (about 2 s at
every start of a process; docs/performance.md). When every replica has the
same options, SGD and Adam call torch's fused kernels themselves (one call
for every parameter, the numbers of `torch.optim.SGD/Adam(fused=True)`);
otherwise each rule updates every parameter in one `torch._foreach_*` call
per operation.

    SGD       g = grad + wd p;  buf = g (first step), momentum buf + g;  p -= lr buf
    Adam      g = grad + wd p;  m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2
              p -= lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    Adadelta  g = grad + wd p;  s = rho s + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(s + eps) g
              u = rho u + (1 - rho) d^2;  p -= lr d
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from minispec.backends.replicas import ReplicaHyper, collapse

Tensors = list[torch.Tensor]
FUSED_KINDS = ("sgd", "adam")  # rules with a fused torch kernel (`_fused_<kind>`), one call for every parameter


class ReplicaOptimizer:
    """One optimizer of `kind` for stacked parameters, options per replica (`hyper.optimizer`)."""

    def __init__(self, kind: str, params: Iterable[torch.nn.Parameter], hyper: ReplicaHyper):
        if kind not in ("sgd", "adam", "adadelta"):
            raise ValueError(f"unknown optimizer {kind!r}")
        self.kind = kind
        self.params = [p for p in params if p.requires_grad]
        first = self.params[0]
        self.options = {name: torch.tensor(values, dtype=first.dtype, device=first.device)
                        for name, values in hyper.optimizer.items()}
        # Fixed for the run, so decided here from the plain values: asking the tensors
        # each step would wait on the device once per step.
        self._decays = any(v != 0 for v in hyper.optimizer.get("weight_decay", ()))
        self._momentum = any(v != 0 for v in hyper.optimizer.get("momentum", ()))
        # the options as floats when every replica has the same: then the fused kernels serve
        self.shared = ({name: values[0] for name, values in hyper.optimizer.items()}
                       if hyper.uniform_optimizer and kind in FUSED_KINDS else None)
        self._state: dict[str, Tensors] = {}  # name -> one buffer per parameter, in `params` order
        if self.shared is not None and kind == "adam":  # the fused Adam counts steps in a float32 scalar per parameter
            self._state["step"] = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        self.steps = 0

    def set_learning_rate(self, values: float | Sequence[float]) -> None:
        """One learning rate for every replica, or one per replica (a model built with rates that differ)."""
        if self.shared is not None:
            lr = values if isinstance(values, (int, float)) else collapse(values)
            if isinstance(lr, tuple):
                raise ValueError("this model has one optimizer for every replica: build it with `hyper` "
                                 "whose learning rates differ to set one per replica")
            self.shared["lr"] = float(lr)
            return
        lr = self.options["lr"]
        if isinstance(values, (int, float)):
            lr.fill_(values)
        else:
            lr.copy_(torch.tensor(list(values), dtype=lr.dtype))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        index = [i for i, p in enumerate(self.params) if p.grad is not None]  # torch.optim skips the others too
        if not index:
            return
        params = [self.params[i] for i in index]
        grads = [p.grad for p in params]
        if self.shared is not None:
            getattr(self, f"_fused_{self.kind}")(params, grads, lambda name: self._buffers(name, index))
            return
        if self._decays:
            grads = torch._foreach_addcmul(grads, params, self._per_param(self.options["weight_decay"], params))
        getattr(self, f"_{self.kind}")(params, grads, lambda name: self._buffers(name, index))

    def _per_param(self, values: torch.Tensor, params: Tensors) -> Tensors:
        """An option [R] as [R, 1, ...] against each parameter."""
        return [values.view((-1,) + (1,) * (p.dim() - 1)) for p in params]

    def _buffers(self, name: str, index: list[int]) -> Tensors:
        """State `name` of the parameters at `index`, zeros before their first step."""
        if name not in self._state:
            self._state[name] = [torch.zeros_like(p) for p in self.params]
        return [self._state[name][i] for i in index]

    def _fused_sgd(self, params: Tensors, grads: Tensors, buffers) -> None:
        o = self.shared
        torch._fused_sgd_(params, grads, buffers("momentum_buffer") if self._momentum else [],
                          weight_decay=o["weight_decay"], momentum=o["momentum"], lr=o["lr"], dampening=0.0,
                          nesterov=False, maximize=False, is_first_step=self.steps == 1)

    def _fused_adam(self, params: Tensors, grads: Tensors, buffers) -> None:
        o, steps = self.shared, buffers("step")
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, grads, buffers("exp_avg"), buffers("exp_avg_sq"), [], steps, lr=o["lr"],
                           beta1=o["beta1"], beta2=o["beta2"], weight_decay=o["weight_decay"], eps=o["eps"],
                           amsgrad=False, maximize=False)

    def _sgd(self, params: Tensors, grads: Tensors, buffers) -> None:
        if self._momentum:  # from zeros, the first step's buffer is g exactly, as torch.optim's clone
            momentum = buffers("momentum_buffer")
            torch._foreach_mul_(momentum, self._per_param(self.options["momentum"], params))
            torch._foreach_add_(momentum, grads)
            grads = momentum
        torch._foreach_addcmul_(params, grads, self._per_param(self.options["lr"], params), value=-1)

    def _adam(self, params: Tensors, grads: Tensors, buffers) -> None:
        o, t = self.options, self.steps
        m, v = buffers("exp_avg"), buffers("exp_avg_sq")
        for m_i, g_i, w_i in zip(m, grads, self._per_param(1 - o["beta1"], params)):
            m_i.lerp_(g_i, w_i)
        torch._foreach_mul_(v, self._per_param(o["beta2"], params))
        torch._foreach_addcmul_(v, torch._foreach_mul(grads, grads), self._per_param(1 - o["beta2"], params))
        step_size = o["lr"] / (1 - o["beta1"] ** t)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, self._per_param((1 - o["beta2"] ** t).sqrt(), params))
        torch._foreach_add_(denom, self._per_param(o["eps"], params))
        torch._foreach_addcdiv_(params, torch._foreach_mul(m, self._per_param(step_size, params)), denom, value=-1)

    def _adadelta(self, params: Tensors, grads: Tensors, buffers) -> None:
        o = self.options
        s, u = buffers("square_avg"), buffers("acc_delta")
        rho, eps = self._per_param(o["rho"], params), self._per_param(o["eps"], params)
        torch._foreach_mul_(s, rho)
        torch._foreach_addcmul_(s, torch._foreach_mul(grads, grads), self._per_param(1 - o["rho"], params))
        std = torch._foreach_add(s, eps)
        torch._foreach_sqrt_(std)
        delta = torch._foreach_add(u, eps)
        torch._foreach_sqrt_(delta)
        torch._foreach_div_(delta, std)
        torch._foreach_mul_(delta, grads)
        torch._foreach_mul_(u, rho)
        torch._foreach_addcmul_(u, torch._foreach_mul(delta, delta), self._per_param(1 - o["rho"], params))
        torch._foreach_addcmul_(params, delta, self._per_param(o["lr"], params), value=-1)

