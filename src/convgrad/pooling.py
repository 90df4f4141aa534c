"""Max and average pooling, 1-D to 3-D, forward and backward, with PyTorch's options.

A pooling window slides over every channel separately (the geometry is
:func:`convgrad.geometry.pool_geometry`): x (N, C, *in) -> y (N, C, *out), or unbatched
(C, *in) -> (C, *out). Both poolings visit the prod(kernel_size) window *taps* once each:
for tap j (row-major over the window) the inputs it reads for every output form one
strided slice of the padded input, ``xp[..., j*d : j*d + s*(out - 1) + 1 : s]`` per axis,
so each step is one vectorized NumPy operation over the whole batch.

* Max pooling keeps a running maximum and, per output, the number of the tap it came from
  (``offsets``, uint8 for windows up to 256 taps). The backward pass needs nothing else:
  it sends each upstream gradient to that one position. PyTorch's rules: the first maximum
  wins ties; a NaN counts as the maximum (the last NaN when a window holds several); padding
  is never chosen (a window whose inputs are all -inf sends its gradient to its first input).
  ``return_indices=True`` gives PyTorch's indices (flat positions in each input plane),
  which :func:`max_pool_backward` takes back as ``indices=`` instead of recomputing.
* Average pooling sums the taps and divides by the window size (``count_include_pad``,
  the default, counts the zero padding; ``divisor_override`` replaces the divisor); its
  backward spreads dy / divisor back over each window.

Windows may overlap (stride < window): the backward then accumulates.
"""
from __future__ import annotations

import numpy as np

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


def _quiet():
    """Inf - Inf and friends: NaN propagates as in PyTorch, without RuntimeWarnings."""
    return np.errstate(invalid="ignore", over="ignore")


# ----------------------------------------------------------------------------------------
# Window taps: strided slices of the padded input


def _high_padding(g: PoolGeometry) -> tuple[int, ...]:
    """Per axis, the padding after the input that the windows actually read (ceil_mode
    windows may hang past the declared padding; unread declared padding is not made)."""
    return tuple(max(0, r - n - lo) for r, n, (lo, _) in zip(g.reach, g.in_size, g.padding))


def _is_padded(g: PoolGeometry) -> bool:
    return any(lo for lo, _ in g.padding) or any(_high_padding(g))


def _padded(x: np.ndarray, g: PoolGeometry, fill, dtype) -> np.ndarray:
    """x (N, C, *in) with its padding (value ``fill``) made, as ``dtype``."""
    if not _is_padded(g):
        return x.astype(dtype, copy=False)
    size = tuple(lo + n + hi for (lo, _), n, hi in zip(g.padding, g.in_size, _high_padding(g)))
    xp = np.full((g.batch, g.channels, *size), fill, dtype=dtype)    # (N, C, *padded)
    xp[_inner(g)] = x
    return xp


def _inner(g: PoolGeometry) -> tuple[slice, ...]:
    """The input's place inside the padded input."""
    return (slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in
                                              zip(g.padding, g.in_size))


def _tap(g: PoolGeometry, taps: tuple[int, ...]) -> tuple[slice, ...]:
    """The slice of the padded input that window tap ``taps`` reads: (N, C, *out)."""
    return (slice(None), slice(None)) + tuple(
        slice(j * d, j * d + s * (o - 1) + 1, s)
        for j, d, s, o in zip(taps, g.dilation, g.stride, g.out_size))


def _taps(g: PoolGeometry):
    """Every tap of the window, row-major (the numbering of ``offsets``)."""
    return list(np.ndindex(*g.kernel_size))


def _axis_injective(o: int, k: int, s: int, d: int) -> bool:
    """No two (output i, tap j) pairs of one axis read the same position i*s + j*d.

    i*s + j*d = i'*s + j'*d means (i - i') s' = (j' - j) d' with s' = s/gcd, d' = d/gcd,
    so the closest collision is i - i' = d', j' - j = s': none when d' >= o or s' >= k.
    """
    common = np.gcd(s, d)
    return d // common >= o or s // common >= k


def _windows_disjoint(g: PoolGeometry) -> bool:
    """True when no input position is read by two windows (no accumulation needed)."""
    return all(_axis_injective(o, k, s, d) for o, k, s, d in
               zip(g.out_size, g.kernel_size, g.stride, g.dilation))


def _new_gradient(g: PoolGeometry, dtype) -> np.ndarray:
    """The padded input gradient, zeros where no tap view will write. (N, C, *padded)"""
    size = tuple(lo + n + hi for (lo, _), n, hi in zip(g.padding, g.in_size, _high_padding(g)))
    shape = (g.batch, g.channels, *size)
    # Tiled: the o*k positions of each axis are distinct and fill all of it.
    tiled = _windows_disjoint(g) and all(o * k == n for o, k, n in
                                         zip(g.out_size, g.kernel_size, size))
    return np.empty(shape, dtype=dtype) if tiled else np.zeros(shape, dtype=dtype)


def _cropped(dxp: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """The input's part of a padded gradient, as a contiguous (N, C, *in) array."""
    return np.ascontiguousarray(dxp[_inner(g)]) if _is_padded(g) else dxp


def _batched_dy(dy, g: PoolGeometry, op: str) -> np.ndarray:
    """dy of the output's shape (unbatched if x was), as (N, C, *out)."""
    shape = g.y_shape[1:] if g.unbatched else g.y_shape
    dy = check_shape(dy, shape, op, "dy", "the output's shape")
    return dy[np.newaxis] if g.unbatched else dy


def _unbatched(a: np.ndarray, g: PoolGeometry) -> np.ndarray:
    return a[0] if g.unbatched else a


# ----------------------------------------------------------------------------------------
# Max pooling


def _offset_dtype(g: PoolGeometry) -> np.dtype:
    return np.min_scalar_type(g.window_count - 1)


def _max_forward(x: np.ndarray, g: PoolGeometry):
    """y (N, C, *out) and ``offsets`` (N, C, *out): the tap number of each window's max."""
    xp = _padded(x, g, -np.inf, x.dtype)
    windows = [xp[_tap(g, taps)] for taps in _taps(g)]
    y = windows[0].copy()                                    # (N, C, *out)
    offsets = np.zeros(y.shape, dtype=_offset_dtype(g))
    better = np.empty(y.shape, dtype=bool)
    step = np.empty(y.shape, dtype=offsets.dtype)
    with _quiet():
        for number, window in enumerate(windows[1:], start=1):
            np.greater(window, y, out=better)       # strictly greater: the first max keeps ties
            np.maximum(y, window, out=y)            # NaN propagates, as in PyTorch
            # Tap numbers grow, so "the latest tap that was better" is a running maximum
            # (branch-free, unlike a masked assignment).
            np.multiply(better, offsets.dtype.type(number), out=step)
            np.maximum(offsets, step, out=offsets)
        nan = np.isnan(y)
        if nan.any():                               # PyTorch: the last NaN of the window
            for number, window in enumerate(windows):
                offsets[nan & np.isnan(window)] = number
        if _is_padded(g):
            lost = y == -np.inf                     # the max may sit in the padding
            if lost.any():
                offsets = np.where(lost, _first_inside(g).astype(offsets.dtype), offsets)
    return y, offsets


def _max_values(x: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """y (N, C, *out) alone: a running np.maximum over the taps (NaN propagates)."""
    xp = _padded(x, g, -np.inf, x.dtype)
    taps = _taps(g)
    y = xp[_tap(g, taps[0])].copy()                          # (N, C, *out)
    for tap in taps[1:]:
        np.maximum(y, xp[_tap(g, tap)], out=y)
    return y


def _first_inside(g: PoolGeometry) -> np.ndarray:
    """(*out) the tap number of each window's first input position (PyTorch's choice when
    every value is -inf): per axis the first tap j with o*s - lo + j*d >= 0."""
    per_axis = [np.maximum(0, -((np.arange(o) * s - lo) // d)) for o, s, d, (lo, _) in
                zip(g.out_size, g.stride, g.dilation, g.padding)]
    return np.ravel_multi_index(np.meshgrid(*per_axis, indexing="ij"), g.kernel_size)


def _max_backward(dy: np.ndarray, offsets: np.ndarray, g: PoolGeometry, dtype) -> np.ndarray:
    """dx (N, C, *in): each dy entry sent to its window's chosen tap."""
    dxp = _new_gradient(g, dtype)
    disjoint = _windows_disjoint(g)
    finite = bool(np.isfinite(dy).all())
    chosen = np.empty(dy.shape, dtype=bool)
    zero = np.zeros((), dtype=dtype)
    with _quiet():
        for number, taps in enumerate(_taps(g)):
            np.equal(offsets, number, out=chosen)
            view = dxp[_tap(g, taps)]
            if finite:     # a product is branch-free; with Inf or NaN it would leak 0 * Inf
                share = np.multiply(dy, chosen, out=view if disjoint else None, dtype=dtype)
            else:
                share = np.where(chosen, dy, zero)
                if disjoint:
                    view[...] = share
            if not disjoint:
                view += share
    return _cropped(dxp, g)


def _flat_indices(offsets: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """PyTorch's indices (N, C, *out), int64: each max's flat position in its input plane."""
    plane = np.cumprod((1,) + g.in_size[:0:-1])[::-1]        # row-major strides of *in
    starts = np.meshgrid(*[np.arange(o) * s - lo for o, s, (lo, _) in
                           zip(g.out_size, g.stride, g.padding)], indexing="ij")
    base = sum(start * p for start, p in zip(starts, plane))  # (*out) first tap's position
    step = np.array([sum(j * d * p for j, d, p in zip(taps, g.dilation, plane))
                     for taps in _taps(g)], dtype=np.int64)  # (prod(k),) tap -> offset
    return np.take(step, offsets) + base


def _backward_from_indices(dy, indices, g: PoolGeometry, dtype, op: str) -> np.ndarray:
    """dx (N, C, *in) by scattering dy at PyTorch-style flat ``indices``."""
    shape = g.y_shape[1:] if g.unbatched else g.y_shape
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu" or indices.shape != shape:
        raise ValueError(f"{op}: indices must be an integer array of the output's shape "
                         f"{shape} (from return_indices=True), got {indices.dtype} of shape "
                         f"{indices.shape}")
    plane = int(np.prod(g.in_size))
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        raise ValueError(f"{op}: indices must lie in [0, {plane}) (positions in an input plane "
                         f"of size {g.in_size}), got values from {indices.min()} to "
                         f"{indices.max()}")
    indices = indices.reshape(g.batch * g.channels, int(np.prod(g.out_size)))  # (N*C, P')
    rows = np.arange(g.batch * g.channels, dtype=np.int64)[:, None] * plane
    dx = np.zeros(g.batch * g.channels * plane, dtype=dtype)
    np.add.at(dx, (indices + rows).ravel(), dy.astype(dtype, copy=False).ravel())
    return dx.reshape(g.x_shape)


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
        return _unbatched(_max_values(x, g), g)
    y, offsets = _max_forward(x, g)
    return _unbatched(y, g), _unbatched(_flat_indices(offsets, g), g)


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
        return _unbatched(_backward_from_indices(dy, indices, g, dtype, op), g)
    if offsets is None:
        _, offsets = _max_forward(x, g)
    else:
        offsets = _checked_offsets(offsets, g, op)
    return _unbatched(_max_backward(dy, offsets, g, dtype), g)


def _checked_offsets(offsets, g: PoolGeometry, op: str) -> np.ndarray:
    """offsets of the output's shape, tap numbers below prod(kernel_size); batched."""
    shape = g.y_shape[1:] if g.unbatched else g.y_shape
    offsets = np.asarray(offsets)
    if offsets.dtype.kind not in "iu" or offsets.shape != shape:
        raise ValueError(f"{op}: offsets must be an integer array of the output's shape "
                         f"{shape} (from max_pool_offsets), got {offsets.dtype} of shape "
                         f"{offsets.shape}")
    if offsets.size and (offsets.min() < 0 or offsets.max() >= g.window_count):
        raise ValueError(f"{op}: offsets must lie in [0, {g.window_count}) (taps of a "
                         f"{g.kernel_size} window), got values from {offsets.min()} to "
                         f"{offsets.max()}")
    return offsets[np.newaxis] if g.unbatched else offsets


def max_pool_offsets(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     *, nd: int = 2):
    """``(y, offsets)``: max pooling and, per output, the window tap its maximum came from.

    ``offsets`` has y's shape (uint8 for windows up to 256 taps), numbering the window's
    taps row-major: the compact record that ``max_pool_backward(..., offsets=offsets)``
    needs (the nn layers keep it between forward and backward).
    """
    op = f"max_pool{nd}d"
    x, g = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, nd=nd, op=op)
    y, offsets = _max_forward(x, g)
    return _unbatched(y, g), _unbatched(offsets, g)


# ----------------------------------------------------------------------------------------
# Average pooling


def _avg_divisor(g: PoolGeometry, count_include_pad: bool, divisor_override):
    """The divisor of every window: a number, or (*out) when windows differ (PyTorch:
    positions inside the input and its padding with ``count_include_pad``, else inside
    the input only; a ceil_mode window hanging past the padding counts what it covers)."""
    if divisor_override is not None:
        return divisor_override
    counts = []
    for o, k, s, n, (lo, hi) in zip(g.out_size, g.kernel_size, g.stride, g.in_size,
                                    g.padding):
        start = np.arange(o) * s - lo                         # (o,) first positions
        low, high = (-lo, n + hi) if count_include_pad else (0, n)
        counts.append(np.minimum(start + k, high) - np.maximum(start, low))
    if all((c == k).all() for c, k in zip(counts, g.kernel_size)):
        return g.window_count
    return np.prod(np.meshgrid(*counts, indexing="ij"), axis=0)   # (*out)


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
    xp = _padded(x, g, 0, g.dtype)                           # float16 sums in float32
    windows = [xp[_tap(g, taps)] for taps in _taps(g)]
    with _quiet():
        y = windows[0].copy()                                # (N, C, *out)
        for window in windows[1:]:
            y += window
        y /= _avg_divisor(g, count_include_pad, divisor_override)
    return _unbatched(y.astype(x.dtype, copy=False), g)


def avg_pool_backward(dy, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None, *, nd: int = 2):
    """dx of x's shape: every dy entry spread evenly over its window (dy has y's shape)."""
    op = f"avg_pool{nd}d_backward"
    x, g = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, nd=nd, op=op)
    count_include_pad, divisor_override = check_avg_options(count_include_pad,
                                                            divisor_override, op)
    dy = _batched_dy(dy, g, op)
    dtype = np.result_type(g.dtype, dy)
    dxp = _new_gradient(g, dtype)
    disjoint = _windows_disjoint(g)
    with _quiet():
        share = dy / np.asarray(_avg_divisor(g, count_include_pad, divisor_override),
                                dtype=dtype)              # (N, C, *out)
        for taps in _taps(g):
            view = dxp[_tap(g, taps)]
            if disjoint:
                view[...] = share
            else:
                view += share
    return _unbatched(_cropped(dxp, g).astype(np.result_type(x, dy), copy=False), g)


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
