"""Softmax cross-entropy, computed stably through the log-sum-exp.

For logits z (N, K) and integer labels t (N,):

    log p[n, k] = z[n, k] - max_j z[n, j] - log sum_j exp(z[n, j] - max_j z[n, j])
    loss        = -(1/N) sum_n log p[n, t[n]]          (reduction 'mean'; 'sum' drops 1/N)
    dloss/dz    = (p - onehot(t)) / N

Subtracting the row maximum first keeps exp from overflowing; the result is exact.
"""
from __future__ import annotations

import numpy as np

from ..geometry import as_ndarray
from .module import Module, quiet_arithmetic

__all__ = ["CrossEntropyLoss", "log_softmax", "softmax"]


@quiet_arithmetic
def log_softmax(z, axis: int = -1) -> np.ndarray:
    """log(softmax(z)) along ``axis``, without overflow. Shape: z any, result z's shape."""
    z = as_ndarray(z, "log_softmax: z")
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@quiet_arithmetic
def softmax(z, axis: int = -1) -> np.ndarray:
    """exp(z) / sum(exp(z)) along ``axis``, without overflow. Shape: z any, result z's shape."""
    return np.exp(log_softmax(z, axis))


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits and class labels, as torch.nn.CrossEntropyLoss.

        loss = CrossEntropyLoss()
        value = loss.forward(logits, labels)     # a Python float
        dlogits = loss.backward()                # d value / d logits

    Args:
        reduction: 'mean' (over the batch, the default) or 'sum'.

    Shape:
        logits: (N, K)    labels: (N,), integers in [0, K)
        backward() -> dlogits: (N, K), logits' dtype
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"CrossEntropyLoss: reduction={reduction!r}; expected 'mean' "
                             f"or 'sum'")
        self.reduction = reduction
        self._cache = None

    @quiet_arithmetic
    def forward(self, logits, labels) -> float:
        logits = as_ndarray(logits, "CrossEntropyLoss: logits")
        labels = as_ndarray(labels, "CrossEntropyLoss: labels")
        if logits.ndim != 2 or logits.dtype.kind != "f":
            raise ValueError(f"CrossEntropyLoss: logits must be a float array (N, K), got "
                             f"shape {logits.shape} and dtype {logits.dtype}")
        n, k = logits.shape
        if n == 0 or k == 0:
            raise ValueError(f"CrossEntropyLoss: logits of shape {logits.shape} are empty")
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"CrossEntropyLoss: labels must be integers of shape ({n},), got "
                             f"shape {labels.shape} and dtype {labels.dtype}")
        if labels.min() < 0 or labels.max() >= k:
            bad = labels[(labels < 0) | (labels >= k)][0]
            raise ValueError(f"CrossEntropyLoss: label {bad} is not a class index in "
                             f"[0, {k})")
        log_p = log_softmax(logits, axis=1)                     # (N, K)
        picked = log_p[np.arange(n), labels]                    # (N,): log p[n, t[n]]
        self._cache = (log_p, labels)
        total = -picked.sum(dtype=np.float64)
        return float(total / n if self.reduction == "mean" else total)

    def __call__(self, logits, labels) -> float:
        return self.forward(logits, labels)

    @quiet_arithmetic
    def backward(self, dloss: float = 1.0) -> np.ndarray:
        """d(dloss * loss) / d logits: (softmax - onehot) * dloss (/ N for 'mean')."""
        log_p, labels = self._saved(self._cache, "the logits and labels")
        n = log_p.shape[0]
        dlogits = np.exp(log_p)                                 # (N, K): softmax
        dlogits[np.arange(n), labels] -= 1
        scale = dloss / n if self.reduction == "mean" else dloss
        return dlogits * dlogits.dtype.type(scale)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"
