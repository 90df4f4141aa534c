"""The geometry of one explained case: one sample, one channel, 1-D or 2-D (NumPy only).

    g = case_geometry((5, 5), (3, 3), stride=2, padding=1)
    g = case_geometry((3,), (3,), stride=2, transposed=True, output_padding=1)

Validation and its messages are those of :mod:`convgrad.geometry` (prefixed ``explain:``),
so the symbolic derivation, the figure, the HTML explorer and the functional API all
refuse a bad case with the same words.
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry, conv_geometry, conv_transpose_geometry, ntuple

__all__ = ["case_geometry", "spatial_shape", "output_padding_of", "OP"]

OP = "explain"


def spatial_shape(value, name: str) -> tuple[int, ...]:
    """An int (1-D) or a tuple of 1 or 2 positive ints, checked by the geometry module."""
    if isinstance(value, (tuple, list)) and len(value) not in (1, 2):
        raise ValueError(f"{OP}: {name}={tuple(value)!r} must be the spatial size of one "
                         f"sample and one channel: (L,) for 1-D or (H, W) for 2-D")
    n = len(value) if isinstance(value, (tuple, list)) else 1
    return ntuple(value, n, f"{OP}: {name}")


def case_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, *,
                  transposed: bool = False, output_padding=0) -> ConvGeometry:
    """The geometry of one sample and one channel: N = C = F = 1, spatial sizes as given.

    x_shape (L,) or (H, W); w_shape the same length. stride, padding and dilation take
    every form :func:`convgrad.conv2d` takes ('same' and 'valid' included).

    With ``transposed=True`` the case is a transposed convolution (PyTorch's
    ``conv_transpose``, ``output_padding`` as there) whose input has the size x_shape;
    the geometry returned is, as everywhere in convgrad, that of the forward convolution
    it is the adjoint of: its ``in_size`` is the transposed output's size and its
    ``out_size`` is x_shape.
    """
    x_shape = spatial_shape(x_shape, "x_shape")
    w_shape = spatial_shape(w_shape, "w_shape")
    if len(w_shape) != len(x_shape):
        raise ValueError(f"{OP}: w_shape={w_shape!r} must have as many axes as "
                         f"x_shape={x_shape!r} ({len(x_shape)})")
    x, w = np.zeros((1, 1) + x_shape), np.zeros((1, 1) + w_shape)
    if transposed:
        *_, geometry = conv_transpose_geometry(
            x, w, nd=len(x_shape), stride=stride, padding=padding,
            output_padding=output_padding, dilation=dilation, op=OP)
        return geometry
    if not (isinstance(output_padding, int) and output_padding == 0):
        raise ValueError(f"{OP}: output_padding={output_padding!r} applies to a transposed "
                         f"convolution only (transposed=True)")
    *_, geometry = conv_geometry(x, w, nd=len(x_shape), stride=stride, padding=padding,
                                 dilation=dilation, op=OP)
    return geometry


def output_padding_of(geometry: ConvGeometry) -> tuple[int, ...]:
    """The output_padding of a transposed case: its output size minus the smallest one,
    n - ((o - 1) * s - lo - hi + kd) per axis (docs/math.md#padding-valid-same-and-output_padding)."""
    g = geometry
    return tuple(n - ((o - 1) * s - lo - hi + kd)
                 for n, o, s, (lo, hi), kd in zip(g.in_size, g.out_size, g.stride, g.padding,
                                                  g.kernel_extent))
