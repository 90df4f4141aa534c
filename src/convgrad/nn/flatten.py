"""Flatten: merge a run of axes into one (a reshape), and back for the gradient."""
from __future__ import annotations

import math
import numbers

from .module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Merge the axes ``start_dim`` .. ``end_dim`` (inclusive) into one, as torch.nn.Flatten.

    Shape:
        x: (N, C, H, W) with the defaults    y: (N, C * H * W)
        dy: y's shape                         dx: x's shape
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        self._x_shape = None

    def _axes(self, ndim: int) -> tuple[int, int]:
        start = self.start_dim + ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + ndim if self.end_dim < 0 else self.end_dim
        if not (0 <= start < ndim and 0 <= end < ndim) or start > end:
            raise ValueError(f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) "
                             f"does not fit an input with {ndim} axes")
        return start, end

    def forward(self, x):
        x = self._input(x)
        self._x_shape = x.shape
        return x.reshape(self._merged_shape(x.shape))

    def _merged_shape(self, shape) -> tuple:
        """x's shape with the axes start_dim..end_dim merged into one."""
        start, end = self._axes(len(shape))
        return shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]

    def backward(self, dy):
        shape = self._saved(self._x_shape)
        merged = self._merged_shape(shape)
        return self._grad(dy, merged).reshape(shape)           # back to x's shape

    def extra_repr(self) -> str:
        parts = []
        if self.start_dim != 1:
            parts.append(f"start_dim={self.start_dim}")
        if self.end_dim != -1:
            parts.append(f"end_dim={self.end_dim}")
        return ", ".join(parts)
