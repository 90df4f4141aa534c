"""ReLU: y = max(x, 0), dx = dy where y != 0, else 0 (PyTorch's rule, NaN included)."""
from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["ReLU"]


class ReLU(Module):
    """Rectified linear unit, elementwise.

    As in PyTorch: the gradient at exactly 0 is 0; a NaN input gives a NaN output and lets
    its gradient through (PyTorch zeroes the gradient where y <= 0, which NaN is not). The
    forward keeps one boolean mask (where y != 0) for the backward and the backward lets
    go of it, as PyTorch frees its saved tensors.

    Shape:
        x: any shape    y, dy, dx: x's shape
    """

    def __init__(self) -> None:
        super().__init__()
        self._open = None

    def forward(self, x):
        x = self._input(x)
        y = np.maximum(x, np.zeros((), dtype=x.dtype))            # NaN propagates
        self._open = y != 0                                       # the mask dx needs
        return y

    def backward(self, dy):
        open_ = self._saved(self._open)
        dy = self._grad(dy, open_.shape)
        self._open = None
        return _masked_gradient(dy, open_)


def _masked_gradient(dy: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """dy where ``open_``, else 0, in dy's dtype (shapes equal).

    A product dy * open_ is branch-free and ~10x faster than np.where on a random mask,
    but 0 * Inf or 0 * NaN would leak NaN into the closed entries; only then (a NaN in the
    product, which np.max propagates) is np.where used.
    """
    with np.errstate(invalid="ignore"):
        dx = np.multiply(dy, open_, dtype=dy.dtype)
    if dx.size and np.isnan(dx.max()):
        dx = np.where(open_, dy, np.zeros((), dtype=dy.dtype))
    return dx
