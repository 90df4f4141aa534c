"""A trainable array and its gradient."""
from __future__ import annotations

import numpy as np

__all__ = ["Parameter"]


class Parameter:
    """A trainable array ``data`` and the gradient ``grad`` the backward pass adds into.

    ``grad`` has ``data``'s shape and dtype and starts at zero. Layers *accumulate* into
    it, as PyTorch does: call ``optimizer.zero_grad()`` (or ``model.zero_grad()``) before
    each backward pass. Optimizers update ``data`` in place.

    Shape:
        data, grad: any shape, the same for both (e.g. a conv weight (F, C/groups, HH, WW)).
    """

    __slots__ = ("data", "grad")

    def __init__(self, data):
        data = np.array(data)                                  # a private copy
        if data.dtype.kind != "f":
            raise TypeError(f"a Parameter holds floating-point numbers, got dtype {data.dtype}")
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        """Set the gradient to zero, in place."""
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
