"""ReLU: y = max(x, 0), dx = dy where x > 0, else 0."""
from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["ReLU"]


class ReLU(Module):
    """Rectified linear unit, elementwise.

    The gradient at exactly 0 is taken as 0 (PyTorch's choice); NaN propagates forward
    and gets a zero gradient.

    Shape:
        x: any shape    y, dy, dx: x's shape
    """

    def __init__(self) -> None:
        super().__init__()
        self._positive = None

    def forward(self, x):
        x = self._input(x)
        self._positive = x > 0                                 # the mask dx needs
        return np.where(self._positive, x, np.zeros((), dtype=x.dtype))

    def backward(self, dy):
        positive = self._saved(self._positive)
        dy = self._grad(dy, positive.shape)
        return np.where(positive, dy, np.zeros((), dtype=dy.dtype))
