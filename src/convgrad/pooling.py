"""Max and average pooling, N-d, forward and backward, vectorized over window offsets.

Pooling shares the convolution's geometry (a depthwise window, see
:func:`convgrad.geometry.pool_geometry`):

* average pooling *is* a depthwise convolution with constant filters 1/prod(k), so it is
  computed by the convolution engine (zero padding counted in the average, as PyTorch's
  default ``count_include_pad=True``);
* max pooling visits the prod(k) window offsets once each, keeping the running maximum
  and the offset it came from; the backward pass routes each upstream gradient to that
  one position, as PyTorch does: the first maximum on ties, a NaN counting as the maximum
  (the last NaN when a window holds several).

Shapes, 2-D: x (N, C, H, W) -> y (N, C, H', W'), with H' from the one output-size formula.
"""
from __future__ import annotations

import numpy as np

from . import functional
from .geometry import ConvGeometry, check_grad_output, pool_geometry

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "max_pool", "max_pool_backward", "avg_pool", "avg_pool_backward"]


def _windows(g: ConvGeometry):
    """(offset number, slices of the padded input that offset reads for every output)."""
    for number, offset in enumerate(np.ndindex(*g.kernel_size)):
        yield number, (slice(None), slice(None)) + tuple(
            slice(k, k + s * (o - 1) + 1, s) for k, s, o in zip(offset, g.stride, g.out_size))


def _padded(x: np.ndarray, g: ConvGeometry, fill) -> np.ndarray:
    pads = [(0, 0), (0, 0)] + list(g.padding)
    return np.pad(x, pads, constant_values=fill) if any(map(any, g.padding)) else x


def _max_pool(x: np.ndarray, g: ConvGeometry):
    """y (N, C, *out) and, per output, the number of the window offset holding the max."""
    xp = _padded(x, g, -np.inf)
    best = np.full(g.y_shape, -np.inf, dtype=x.dtype)
    where = np.zeros(g.y_shape, dtype=np.intp)
    for number, window in _windows(g):
        candidate = xp[window]
        better = (candidate > best) | np.isnan(candidate)     # PyTorch's rule: last NaN
        np.copyto(best, candidate, where=better)
        where[better] = number
    return best, where


def max_pool(x, kernel_size, stride=None, padding=0, *, nd: int = 2):
    """N-d max pooling: x (N, C, *in) -> y (N, C, *out). Padding is -inf."""
    op = f"max_pool{nd}d"
    x, g = pool_geometry(x, kernel_size, stride, padding, nd=nd, op=op)
    return _max_pool(x, g)[0]


def max_pool_backward(dy, x, kernel_size, stride=None, padding=0, *, nd: int = 2):
    """dx (N, C, *in): each dy entry goes to the position its window's maximum came from."""
    op = f"max_pool{nd}d_backward"
    x, g = pool_geometry(x, kernel_size, stride, padding, nd=nd, op=op)
    dy, g = check_grad_output(dy, g, g.y_shape, op)
    _, where = _max_pool(x, g)
    dxp = np.zeros((g.batch, g.in_channels, *g.padded_size), dtype=np.result_type(x, dy))
    for number, window in _windows(g):
        dxp[window] += np.where(where == number, dy, 0)
    inner = (slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in
                                               zip(g.padding, g.in_size))
    return dxp[inner].astype(np.result_type(x, dy), copy=False)


def _avg_filters(g: ConvGeometry) -> np.ndarray:
    """Depthwise filters (C, 1, *k) of value 1 / prod(k)."""
    return np.full((g.in_channels, 1, *g.kernel_size), 1 / np.prod(g.kernel_size),
                   dtype=g.dtype)


def avg_pool(x, kernel_size, stride=None, padding=0, *, nd: int = 2):
    """N-d average pooling (zeros of the padding counted): a depthwise convolution."""
    x, g = pool_geometry(x, kernel_size, stride, padding, nd=nd, op=f"avg_pool{nd}d")
    conv = getattr(functional, f"conv{nd}d")
    return conv(x, _avg_filters(g), stride=g.stride, padding=g.padding,
                groups=g.groups).astype(x.dtype, copy=False)


def avg_pool_backward(dy, x, kernel_size, stride=None, padding=0, *, nd: int = 2):
    """dx (N, C, *in): every dy entry spread evenly over its window."""
    op = f"avg_pool{nd}d_backward"
    x, g = pool_geometry(x, kernel_size, stride, padding, nd=nd, op=op)
    dy, _ = check_grad_output(dy, g, g.y_shape, op)
    backward = getattr(functional, f"conv{nd}d_backward")
    dx, _, _ = backward(dy, x, _avg_filters(g), stride=g.stride, padding=g.padding,
                        groups=g.groups)
    return dx


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D max pooling: x (N, C, H, W) -> (N, C, H', W'); stride defaults to the window."""
    return max_pool(x, kernel_size, stride, padding, nd=2)


def max_pool2d_backward(dy, x, kernel_size, stride=None, padding=0):
    """Gradient of :func:`max_pool2d`: dx of x's shape."""
    return max_pool_backward(dy, x, kernel_size, stride, padding, nd=2)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D average pooling: x (N, C, H, W) -> (N, C, H', W')."""
    return avg_pool(x, kernel_size, stride, padding, nd=2)


def avg_pool2d_backward(dy, x, kernel_size, stride=None, padding=0):
    """Gradient of :func:`avg_pool2d`: dx of x's shape."""
    return avg_pool_backward(dy, x, kernel_size, stride, padding, nd=2)
