"""Max and average pooling, 1-D to 3-D, forward and backward, with PyTorch's options.

    max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False, *, nd)                     -> y, or (y, indices)
    max_pool_backward(dy, x, <same>, *, indices=None, offsets=None, nd)   -> dx
    max_pool_offsets(x, <same>, *, nd)                        -> (y, offsets)
    avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False,
             count_include_pad=True, divisor_override=None, *, nd)        -> y
    avg_pool_backward(dy, x, <same>, *, nd)                   -> dx
    max_pool1d/2d/3d, avg_pool1d/2d/3d and their *_backward: PyTorch's names and keywords

Shapes: x (N, C, *in) or unbatched (C, *in) -> y (N, C, *out) or (C, *out); dy is y's
shape and dx x's. The window slides over every channel separately; its geometry and every
message about it are :func:`convgrad.geometry.pool_geometry`'s (padding at most half the
window, PyTorch's output size with or without ``ceil_mode``), the arithmetic is
:mod:`convgrad.pool_windows`'s.

The max-pooling backward sends each dy entry to its window's maximum. It needs to know
where that was: PyTorch's ``indices`` (``return_indices=True``: flat positions in each
input plane) or the compact ``offsets`` (the window tap, one byte per output, what the nn
layers keep); without either it finds the maxima again from x. PyTorch's rules hold: the
first maximum wins ties, a NaN is the maximum (the last NaN of the window).
"""
from __future__ import annotations

import numpy as np

from . import pool_windows as windows
from .geometry import (PoolGeometry, check_avg_options, check_flag, check_shape,
                       pool_geometry)

__all__ = [
    "max_pool", "max_pool_backward", "avg_pool", "avg_pool_backward",
    "max_pool1d", "max_pool2d", "max_pool3d",
    "max_pool1d_backward", "max_pool2d_backward", "max_pool3d_backward",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "avg_pool1d_backward", "avg_pool2d_backward", "avg_pool3d_backward",
    "max_pool_offsets",
]


def _batched_dy(dy, g: PoolGeometry, op: str) -> np.ndarray:
    """dy of the output's shape (unbatched if x was), as (N, C, *out)."""
    shape = g.y_shape[1:] if g.unbatched else g.y_shape
    dy = check_shape(dy, shape, op, "dy", "the output's shape")
    return dy[np.newaxis] if g.unbatched else dy


def _unbatched(a: np.ndarray, g: PoolGeometry) -> np.ndarray:
    return a[0] if g.unbatched else a


# ----------------------------------------------------------------------------------------
# Max pooling


def _checked_record(record, g: PoolGeometry, op: str, name: str, limit: int, what: str,
                    source: str) -> np.ndarray:
    """What a forward kept (``indices`` or ``offsets``): integers of the output's shape in
    [0, limit); returned batched."""
    shape = g.y_shape[1:] if g.unbatched else g.y_shape
    record = np.asarray(record)
    if record.dtype.kind not in "iu" or record.shape != shape:
        raise ValueError(f"{op}: {name} must be an integer array of the output's shape "
                         f"{shape} (from {source}), got {record.dtype} of shape "
                         f"{record.shape}")
    if record.size and (record.min() < 0 or record.max() >= limit):
        raise ValueError(f"{op}: {name} must lie in [0, {limit}) ({what}), got values from "
                         f"{record.min()} to {record.max()}")
    return record[np.newaxis] if g.unbatched else record


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False, *, nd: int = 2):
    """N-d max pooling: x (N, C, *in) or (C, *in) -> y (N, C, *out) or (C, *out).

    Padding is -inf (at most half the window); ``dilation`` spaces the window's taps;
    ``ceil_mode`` rounds the output size up (the last window must start inside the input
    or its low padding). With ``return_indices=True`` returns ``(y, indices)``, indices
    int64 of y's shape: PyTorch's flat position of each maximum in its input plane.
    """
    op = f"max_pool{nd}d"
    x, g = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, nd=nd, op=op)
    return_indices = check_flag(return_indices, op, "return_indices")
    if not return_indices:
        return _unbatched(windows.max_values(x, g), g)
    y, offsets = windows.max_forward(x, g)
    return _unbatched(y, g), _unbatched(windows.flat_indices(offsets, g), g)


def max_pool_backward(dy, x, kernel_size, stride=None, padding=0, dilation=1,
                      ceil_mode=False, *, indices=None, offsets=None, nd: int = 2):
    """dx of x's shape: each dy entry goes to the position its window's maximum came from.

    dy has y's shape. Given what the forward kept, either PyTorch's ``indices``
    (``max_pool(..., return_indices=True)``) or the compact ``offsets`` of
    :func:`max_pool_offsets`, the maxima are not searched again, and x is read only for
    its shape and dtype; without, they are recomputed from x.
    """
    op = f"max_pool{nd}d_backward"
    x, g = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, nd=nd, op=op)
    dy = _batched_dy(dy, g, op)
    dtype = np.result_type(x, dy)
    if indices is not None and offsets is not None:
        raise ValueError(f"{op}: give indices or offsets, not both")
    if indices is not None:
        indices = _checked_record(indices, g, op, "indices", int(np.prod(g.in_size)),
                                  f"positions in an input plane of size {g.in_size}",
                                  "return_indices=True")
        return _unbatched(windows.scatter_indices(dy, indices, g, dtype), g)
    if offsets is None:
        _, offsets = windows.max_forward(x, g)
    else:
        offsets = _checked_record(offsets, g, op, "offsets", g.window_count,
                                  f"taps of a {g.kernel_size} window", "max_pool_offsets")
    return _unbatched(windows.max_backward(dy, offsets, g, dtype), g)


def max_pool_offsets(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     *, nd: int = 2):
    """``(y, offsets)``: max pooling and, per output, the window tap its maximum came from.

    ``offsets`` has y's shape (uint8 for windows up to 256 taps), numbering the window's
    taps row-major: the compact record that ``max_pool_backward(..., offsets=offsets)``
    needs (the nn layers keep it between forward and backward).
    """
    op = f"max_pool{nd}d"
    x, g = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, nd=nd, op=op)
    y, offsets = windows.max_forward(x, g)
    return _unbatched(y, g), _unbatched(offsets, g)


# ----------------------------------------------------------------------------------------
# Average pooling


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None, *, nd: int = 2):
    """N-d average pooling: x (N, C, *in) or (C, *in) -> y (N, C, *out) or (C, *out).

    Each output is the sum of its window divided by the window size (zero padding counted
    when ``count_include_pad``, PyTorch's default), or by ``divisor_override``.
    """
    op = f"avg_pool{nd}d"
    x, g = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, nd=nd, op=op)
    count_include_pad, divisor_override = check_avg_options(count_include_pad,
                                                            divisor_override, op)
    y = windows.avg_forward(x, g, count_include_pad, divisor_override)
    return _unbatched(y, g)


def avg_pool_backward(dy, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None, *, nd: int = 2):
    """dx of x's shape: every dy entry spread evenly over its window (dy has y's shape)."""
    op = f"avg_pool{nd}d_backward"
    x, g = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, nd=nd, op=op)
    count_include_pad, divisor_override = check_avg_options(count_include_pad,
                                                            divisor_override, op)
    dy = _batched_dy(dy, g, op)
    dx = windows.avg_backward(dy, g, count_include_pad, divisor_override,
                              np.result_type(g.dtype, dy))
    return _unbatched(dx.astype(np.result_type(x, dy), copy=False), g)


# ----------------------------------------------------------------------------------------
# PyTorch's names


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling: x (N, C, L) or (C, L) -> (N, C, L') or (C, L')."""
    return max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd=1)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling: x (N, C, H, W) or (C, H, W) -> (N, C, H', W') or (C, H', W')."""
    return max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd=2)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """3-D max pooling: x (N, C, D, H, W) or (C, D, H, W) -> (N, C, D', H', W') or (C, ...)."""
    return max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd=3)


def max_pool1d_backward(dy, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, offsets=None):
    """Gradient of :func:`max_pool1d`: dx of x's shape."""
    return max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode,
                             indices=indices, offsets=offsets, nd=1)


def max_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, offsets=None):
    """Gradient of :func:`max_pool2d`: dx of x's shape."""
    return max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode,
                             indices=indices, offsets=offsets, nd=2)


def max_pool3d_backward(dy, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, offsets=None):
    """Gradient of :func:`max_pool3d`: dx of x's shape."""
    return max_pool_backward(dy, x, kernel_size, stride, padding, dilation, ceil_mode,
                             indices=indices, offsets=offsets, nd=3)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """1-D average pooling: x (N, C, L) or (C, L) -> (N, C, L') or (C, L')."""
    return avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, nd=1)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling: x (N, C, H, W) or (C, H, W) -> (N, C, H', W') or (C, H', W')."""
    return avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override, nd=2)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """3-D average pooling: x (N, C, D, H, W) or (C, D, H, W) -> (N, C, D', H', W') or ..."""
    return avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override, nd=3)


def avg_pool1d_backward(dy, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of :func:`avg_pool1d`: dx of x's shape."""
    return avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode,
                             count_include_pad, nd=1)


def avg_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d`: dx of x's shape."""
    return avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode,
                             count_include_pad, divisor_override, nd=2)


def avg_pool3d_backward(dy, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool3d`: dx of x's shape."""
    return avg_pool_backward(dy, x, kernel_size, stride, padding, ceil_mode,
                             count_include_pad, divisor_override, nd=3)
