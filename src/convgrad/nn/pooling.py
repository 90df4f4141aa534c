"""Pooling layers: MaxPool1d/2d/3d and AvgPool1d/2d/3d over :mod:`convgrad.pooling`.

Shapes, 2-D: x (N, C, H, W) or unbatched (C, H, W) -> y (N, C, H', W') or (C, H', W'),
H' = floor((H + pad_top + pad_bottom - dilation * (HH - 1) - 1) / stride) + 1 (ceil with
``ceil_mode``, the last window starting inside the input or its top padding).

A max-pooling layer keeps, from forward to backward, only the tap of each window's maximum
(one byte per output) and the input's shape; an average-pooling layer only the input's
shape. Both let go of it after backward, as PyTorch frees its saved tensors.
"""
from __future__ import annotations

import numpy as np

from .. import pooling
from ..geometry import check_avg_options, check_flag, ntuple, pool_geometry
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"]


def _stand_in(x: np.ndarray) -> np.ndarray:
    """A zero-strided array of x's shape and dtype: all a backward reads of x, kept for free."""
    return np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape)


def _big_enough(kernel_size, dilation, nd: int):
    """A spatial size every valid window fits in (validation happens in pool_geometry)."""
    try:
        kernel = ntuple(kernel_size, nd, "kernel_size")
        dilation = ntuple(dilation, nd, "dilation")
    except (TypeError, ValueError):
        return (1,) * nd            # pool_geometry reports the bad value
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


class _Pool(Module):
    nd = 2

    def _check(self, dilation=1) -> None:
        """A dry run of the functional's checks on an empty batch: the same messages."""
        x = np.empty((0, 1) + _big_enough(self.kernel_size, dilation, self.nd))
        pool_geometry(x, self.kernel_size, self.stride, self.padding, dilation,
                      self.ceil_mode, nd=self.nd, op=type(self).__name__)

    def _repr_items(self):
        yield f"kernel_size={self.kernel_size}"
        if self.stride is not None and self.stride != self.kernel_size:
            yield f"stride={self.stride}"
        if self.padding != 0:
            yield f"padding={self.padding}"
        if self.ceil_mode:
            yield "ceil_mode=True"

    def extra_repr(self) -> str:
        return ", ".join(self._repr_items())


class _MaxPool(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self._check(dilation)
        self.return_indices = check_flag(return_indices, type(self).__name__, "return_indices")
        self._offsets = self._x = None

    def _keywords(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode, nd=self.nd)

    def forward(self, x):
        """y, or ``(y, indices)`` with ``return_indices`` (PyTorch's flat indices)."""
        x = self._input(x)
        if self.return_indices:
            y, indices = pooling.max_pool(x, return_indices=True, **self._keywords())
            self._offsets, self._x = indices, _stand_in(x)
            return y, indices
        y, self._offsets = pooling.max_pool_offsets(x, **self._keywords())
        self._x = _stand_in(x)
        return y

    def backward(self, dy):
        saved = self._saved(self._offsets)
        kind = "indices" if self.return_indices else "offsets"
        dx = pooling.max_pool_backward(dy, self._x, **{kind: saved}, **self._keywords())
        self._offsets = self._x = None                  # freed, as PyTorch frees them
        return dx

    def _repr_items(self):
        yield from super()._repr_items()
        if self.dilation != 1:
            yield f"dilation={self.dilation}"
        if self.return_indices:
            yield "return_indices=True"


class _AvgPool(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode = ceil_mode
        self._check()
        self.count_include_pad, self.divisor_override = check_avg_options(
            count_include_pad, divisor_override, type(self).__name__)
        self._x = None

    def _options(self) -> dict:
        options = dict(count_include_pad=self.count_include_pad)
        if self.divisor_override is not None:
            options["divisor_override"] = self.divisor_override
        return options

    def _keywords(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, nd=self.nd, **self._options())

    def forward(self, x):
        x = self._input(x)
        y = pooling.avg_pool(x, **self._keywords())
        self._x = _stand_in(x)
        return y

    def backward(self, dy):
        x = self._saved(self._x)
        dx = pooling.avg_pool_backward(dy, x, **self._keywords())
        self._x = None
        return dx

    def _repr_items(self):
        yield from super()._repr_items()
        if not self.count_include_pad:
            yield "count_include_pad=False"
        if self.divisor_override is not None:
            yield f"divisor_override={self.divisor_override}"


class MaxPool1d(_MaxPool):
    nd = 1


class MaxPool2d(_MaxPool):
    nd = 2


class MaxPool3d(_MaxPool):
    nd = 3


class AvgPool1d(_AvgPool):
    nd = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True) -> None:          # PyTorch's AvgPool1d: no override
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPool):
    nd = 2


class AvgPool3d(_AvgPool):
    nd = 3


_DOC = """{nd}-D {kind} pooling layer, as torch.nn.{name}, with its arguments and defaults.

    Args:
        kernel_size: the window, an int or one per spatial axis.
        stride: an int or one per axis; None (default) means the window size.
        padding: an int, one per axis, or (lo, hi) pairs; at most half the window.
{args}
    {note}

    Shape:
        x: {x} or {xu}    y: {y} or {yu}    dy: y's shape    dx: x's shape
    """
_ARGS = {
    "max": """        dilation: the spacing of the window's taps, an int or one per axis.
        return_indices: forward returns ``(y, indices)``, PyTorch's flat position of each
            maximum in its input plane.
        ceil_mode: round the output size up (PyTorch's rule).
""",
    "average": """        ceil_mode: round the output size up (PyTorch's rule).
        count_include_pad: count the zero padding in each window's size (default True).
""",
}
_OVERRIDE = """        divisor_override: divide every window's sum by this int instead.
"""
_NOTES = {"max": "Padding is -inf; the gradient goes to the first maximum of each window "
                 "(the last NaN, if any).",
          "average": "Each output is its window's sum divided by the window's size."}
_SHAPES = {1: ("(N, C, L)", "(C, L)", "(N, C, L')", "(C, L')"),
           2: ("(N, C, H, W)", "(C, H, W)", "(N, C, H', W')", "(C, H', W')"),
           3: ("(N, C, D, H, W)", "(C, D, H, W)", "(N, C, D', H', W')", "(C, D', H', W')")}
for _cls, _kind in ((MaxPool1d, "max"), (MaxPool2d, "max"), (MaxPool3d, "max"),
                    (AvgPool1d, "average"), (AvgPool2d, "average"), (AvgPool3d, "average")):
    _x, _xu, _y, _yu = _SHAPES[_cls.nd]
    _args = _ARGS[_kind] + (_OVERRIDE if _kind == "average" and _cls.nd > 1 else "")
    _cls.__doc__ = _DOC.format(nd=_cls.nd, kind=_kind, name=_cls.__name__, x=_x, xu=_xu,
                               y=_y, yu=_yu, args=_args, note=_NOTES[_kind])
del _cls, _kind, _x, _xu, _y, _yu, _args
