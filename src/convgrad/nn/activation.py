"""ReLU: y = max(x, 0), dx = dy where y != 0, else 0 (PyTorch's rule, NaN included)."""
from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["ReLU"]


class ReLU(Module):
    """Rectified linear unit, elementwise.

    As in PyTorch: the gradient at exactly 0 is 0; a NaN input gives a NaN output and lets
    its gradient through (PyTorch zeroes the gradient where y <= 0, which NaN is not). The
    forward keeps one byte per element (where y != 0) for the backward and the backward
    lets go of it, as PyTorch frees its saved tensors.

    Shape:
        x: any shape    y, dy, dx: x's shape
    """

    def __init__(self) -> None:
        super().__init__()
        self._open = None

    def forward(self, x):
        x = self._input(x)
        y = np.maximum(x, np.zeros((), dtype=x.dtype))            # NaN propagates
        self._open = _open_bits(y)                                # the mask dx needs
        return y

    def backward(self, dy):
        open_ = self._saved(self._open)
        dy = self._grad(dy, open_.shape)
        self._open = None
        return _masked_gradient(dy, open_)


def _open_bits(y: np.ndarray) -> np.ndarray:
    """int8 of y's shape: -1 (all bits set) where y != 0 (NaN included), else 0.

    Sign-extended to dy's width, -1 keeps every bit of dy and 0 none: the backward is then
    one bitwise AND, exact for every value (Inf and NaN too) and branch-free.
    """
    open_ = np.not_equal(y, 0)                                    # bool: 0 or 1
    bits = open_.view(np.int8)
    np.negative(bits, out=bits)                                   # 0 or -1, in place
    return bits


_BITS = {2: np.int16, 4: np.int32, 8: np.int64}


def _masked_gradient(dy: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """dy where ``open_`` (int8, -1 or 0), else +0, in dy's dtype (float16, float32 or
    float64, as Module._grad returns it; shapes equal).

    One pass: dy's bits AND the mask sign-extended to dy's width. (It replaced a product
    dy * mask followed by a NaN check, a second pass that 0 * Inf and 0 * NaN needed.)
    """
    bits = _BITS[dy.itemsize]
    return np.bitwise_and(dy.view(bits), open_, dtype=bits).view(dy.dtype)
