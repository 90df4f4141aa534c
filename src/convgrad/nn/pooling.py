"""Pooling layers: MaxPool1d/2d/3d and AvgPool1d/2d/3d over :mod:`convgrad.pooling`.

Shapes, 2-D: x (N, C, H, W) -> y (N, C, H', W'),
H' = floor((H + pad_top + pad_bottom - HH) / stride) + 1, the window being (HH, WW).
"""
from __future__ import annotations

import numpy as np

from .. import pooling
from ..geometry import ntuple, pool_geometry
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"]


class _Pool(Module):
    nd = 2

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        op = type(self).__name__
        # A dry run of the functional's checks on an empty batch: the same messages.
        x = np.empty((0, 1) + tuple(_big_enough(kernel_size, self.nd)))
        pool_geometry(x, kernel_size, stride, padding, nd=self.nd, op=op)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self._x = None

    def forward(self, x):
        y = self._forward_function(x, self.kernel_size, self.stride, self.padding, nd=self.nd)
        self._x = x
        return y

    def backward(self, dy):
        x = self._saved(self._x)
        return self._backward_function(dy, x, self.kernel_size, self.stride, self.padding,
                                       nd=self.nd)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}"
        if self.stride is not None and self.stride != self.kernel_size:
            text += f", stride={self.stride}"
        if self.padding != 0:
            text += f", padding={self.padding}"
        return text


def _big_enough(kernel_size, nd: int):
    """A spatial size every valid window fits in (validation happens in pool_geometry)."""
    try:
        return ntuple(kernel_size, nd, "kernel_size")
    except (TypeError, ValueError):
        return (1,) * nd            # pool_geometry reports the bad kernel_size



class MaxPool1d(_Pool):
    nd = 1
    _forward_function = staticmethod(pooling.max_pool)
    _backward_function = staticmethod(pooling.max_pool_backward)


class MaxPool2d(_Pool):
    nd = 2
    _forward_function = staticmethod(pooling.max_pool)
    _backward_function = staticmethod(pooling.max_pool_backward)


class MaxPool3d(_Pool):
    nd = 3
    _forward_function = staticmethod(pooling.max_pool)
    _backward_function = staticmethod(pooling.max_pool_backward)


class AvgPool1d(_Pool):
    nd = 1
    _forward_function = staticmethod(pooling.avg_pool)
    _backward_function = staticmethod(pooling.avg_pool_backward)


class AvgPool2d(_Pool):
    nd = 2
    _forward_function = staticmethod(pooling.avg_pool)
    _backward_function = staticmethod(pooling.avg_pool_backward)


class AvgPool3d(_Pool):
    nd = 3
    _forward_function = staticmethod(pooling.avg_pool)
    _backward_function = staticmethod(pooling.avg_pool_backward)


_DOC = """{nd}-D {kind} pooling layer, as torch.nn.{name} with its defaults.

    Args:
        kernel_size: the window, an int or one per spatial axis.
        stride: an int or one per axis; None (default) means the window size.
        padding: an int, one per axis, or (lo, hi) pairs; at most half the window.

    {note}

    Shape:
        x: {x}    y: {y}    dy: y's shape    dx: x's shape
    """
_NOTES = {"max": "Padding is -inf; the gradient goes to the first maximum of each window.",
          "average": "Zero padding counts in the average (PyTorch's count_include_pad=True)."}
_SHAPES = {1: ("(N, C, L)", "(N, C, L')"), 2: ("(N, C, H, W)", "(N, C, H', W')"),
           3: ("(N, C, D, H, W)", "(N, C, D', H', W')")}
for _cls, _kind in ((MaxPool1d, "max"), (MaxPool2d, "max"), (MaxPool3d, "max"),
                    (AvgPool1d, "average"), (AvgPool2d, "average"), (AvgPool3d, "average")):
    _x, _y = _SHAPES[_cls.nd]
    _cls.__doc__ = _DOC.format(nd=_cls.nd, kind=_kind, name=_cls.__name__, x=_x, y=_y,
                               note=_NOTES[_kind])
del _cls, _kind, _x, _y
