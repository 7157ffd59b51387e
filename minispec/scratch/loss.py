"""Losses: one value per replica, PyTorch's reduction='mean' within a replica.

    loss = criterion.forward(prediction, target)   # [R]
    grad = criterion.backward()                    # d(sum_r loss_r)/d prediction, prediction's shape

A loss weight is applied by the caller, multiplying the returned gradient.
"""

from __future__ import annotations

import struct

import torch

# torch's BCE backward clamps p (1 - p) at EPSILON = 1e-12 held as a float32
_BCE_EPS = struct.unpack("f", struct.pack("f", 1e-12))[0]


class Loss:
    """Base class. `forward(prediction, target) -> [R]`; `backward() -> dL/dprediction`."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.forward(prediction, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    """Mean squared error over all n elements of a replica.

    Input: [R, B, ...]   Target: same   Output: [R]

        forward:  L = (1/n) sum (x - t)^2
        backward: dL/dx = (2/n) (x - t)
    """

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = prediction - target
        self._diff, self._n = diff, diff[0].numel()
        return (diff * diff).reshape(diff.shape[0], -1).mean(1)

    def backward(self) -> torch.Tensor:
        return self._diff * (2.0 / self._n)


def _onehot_like(x: torch.Tensor, target: torch.Tensor, value: float) -> torch.Tensor:
    return torch.zeros_like(x).scatter_(-1, target.unsqueeze(-1), value)


class CrossEntropyLoss(Loss):
    """Cross-entropy from logits against class indices, mean over the batch.

    Input: [R, B, K] logits   Target: [R, B] class indices (long)   Output: [R]

        forward:  log p = (x - max x) - log sum exp(x - max x);  L = -(1/B) sum_b log p[b, t_b]
        backward: dL/dx = (softmax(x) - onehot(t)) / B
    """

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        z = prediction - prediction.amax(-1, keepdim=True)
        logp = z - z.exp().sum(-1, keepdim=True).log()
        self._logp, self._target = logp, target
        return -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean(1)

    def backward(self) -> torch.Tensor:
        logp, target = self._logp, self._target
        idx = target.unsqueeze(-1)
        g = logp.exp()  # softmax
        g.scatter_(-1, idx, g.gather(-1, idx) - 1.0)  # - onehot(t)
        return g.div_(logp.shape[1])


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities against class indices, mean over the batch.

    Input: [R, B, K] log-probabilities   Target: [R, B] class indices (long)   Output: [R]

        forward:  L = -(1/B) sum_b x[b, t_b]
        backward: dL/dx = -onehot(t) / B
    """

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._x, self._target = prediction, target
        return -prediction.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean(1)

    def backward(self) -> torch.Tensor:
        x = self._x
        return _onehot_like(x, self._target, -1.0 / x.shape[1])


class BCELoss(Loss):
    """Binary cross-entropy of probabilities against 0/1 targets, mean over all n elements of a replica.

    Input: [R, B, ...] probabilities   Target: same (float)   Output: [R]

        forward:  L = -(1/n) sum [t max(log p, -100) + (1 - t) max(log(1 - p), -100)]
        backward: dL/dp = (p - t) / max(p (1 - p), 1e-12) / n   (1e-12 as a float32, as torch clamps)
    """

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p, t = prediction, target
        self._p, self._t, self._n = p, t, p[0].numel()
        log_p = torch.log(p).clamp_min(-100.0)
        log_q = torch.log1p(-p).clamp_min(-100.0)
        per = (t - 1) * log_q - t * log_p
        return per.reshape(p.shape[0], -1).mean(1)

    def backward(self) -> torch.Tensor:
        p, t = self._p, self._t
        return (p - t).div_((p * (1 - p)).clamp_min_(_BCE_EPS)).div_(self._n)
