"""How a loss sees its target, and how a prediction is read from an output.

One place for both, so the two backends and the runner cannot disagree. Raw
targets come from the data set as class indices (`target`: [..., N],
`classes`: [..., N, k]); any leading axes (replicas) are carried through.
"""

from __future__ import annotations

import torch

from minispec.ir.model import Loss


def select(loss: Loss, raw: dict[str, torch.Tensor]) -> torch.Tensor:
    """The class indices a loss is trained against, [..., N] (long)."""
    tensor = raw[loss.target.name]
    if loss.target.index is not None:
        tensor = tensor[..., loss.target.index]
    return tensor.long()


def encode(loss: Loss, raw: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The target tensor given to the loss function.

    index -> [..., N] long; onehot -> [..., N, classes]; pm1 and scalar ->
    [..., N, 1] (matching a single-output network).
    """
    labels = select(loss, raw)
    if loss.encoding == "index":
        return labels
    if loss.encoding == "onehot":
        return torch.eye(loss.classes, dtype=dtype, device=labels.device)[labels]
    values = labels.to(dtype).unsqueeze(-1)
    return 2 * values - 1 if loss.encoding == "pm1" else values


def decide(loss: Loss, output: torch.Tensor) -> torch.Tensor:
    """Predicted class indices from an output [..., N, k] -> [..., N] (long)."""
    if loss.decision == "argmax":
        return output.argmax(dim=-1)
    if loss.decision == "nearest":
        return output[..., 0].round().clamp(0, loss.classes - 1).long()
    return (output[..., 0] > loss.threshold).long()


def error_count(loss: Loss, output: torch.Tensor, raw: dict[str, torch.Tensor]) -> torch.Tensor:
    """Number of wrong predictions per leading index, [...] (long)."""
    return (decide(loss, output) != select(loss, raw).to(output.device)).sum(dim=-1)
