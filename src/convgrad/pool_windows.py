"""The window arithmetic of pooling: every window tap as one strided slice of the input.

For a pooling geometry (:class:`convgrad.geometry.PoolGeometry`), window tap j (row-major
over the window; per axis j*d from the window's start) reads, for all outputs at once, the
strided slice ``xp[..., j*d : j*d + s*(out - 1) + 1 : s]`` of the padded input xp, shape
(N, C, *out). Each step below is one vectorized NumPy operation over that slice:

* max: a running np.maximum and, per output, the number of the tap it came from
  (``offsets``), with PyTorch's rules (the first maximum wins ties; a NaN is the maximum,
  the last NaN when several; padding is never chosen: a window of -inf sends its
  gradient to its first input). The backward sends dy to the chosen taps.
* average: a running sum divided by the window's count; the backward adds dy / count
  back into every tap's slice.

Where windows overlap (stride < window) the backward accumulates; where they tile the
input, every tap's slice is written once and nothing is zeroed first. Slices beat a
sliding_window_view + argmax: for the forward of a 2x2 max pool on (64, 32, 32, 32)
float32, one thread, the view took 16 ms against 10 ms for a first slice version and
3.7 ms for this one (the view's reshape copies; argmax over 4 values per row is slow).

Nothing here validates: :mod:`convgrad.pooling` calls these with a checked geometry.
"""
from __future__ import annotations

import numpy as np

from .geometry import PoolGeometry

__all__ = ["max_forward", "max_values", "max_backward", "flat_indices", "scatter_indices",
           "avg_forward", "avg_backward"]


def _quiet():
    """Inf - Inf and friends: NaN propagates as in PyTorch, without RuntimeWarnings."""
    return np.errstate(invalid="ignore", over="ignore")


# ----------------------------------------------------------------------------------------
# Taps: strided slices of the padded input


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


# ----------------------------------------------------------------------------------------
# Max pooling


def offset_dtype(g: PoolGeometry) -> np.dtype:
    return np.min_scalar_type(g.window_count - 1)


def max_forward(x: np.ndarray, g: PoolGeometry):
    """y (N, C, *out) and ``offsets`` (N, C, *out): the tap number of each window's max."""
    xp = _padded(x, g, -np.inf, x.dtype)
    windows = [xp[_tap(g, taps)] for taps in _taps(g)]
    y = windows[0].copy()                                    # (N, C, *out)
    offsets = np.zeros(y.shape, dtype=offset_dtype(g))
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


def max_values(x: np.ndarray, g: PoolGeometry) -> np.ndarray:
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


_BITS = {2: np.int16, 4: np.int32, 8: np.int64}


def max_backward(dy: np.ndarray, offsets: np.ndarray, g: PoolGeometry, dtype) -> np.ndarray:
    """dx (N, C, *in): each dy entry sent to its window's chosen tap.

    Per tap, dy's bits AND a mask of -1 (the tap was chosen) or 0, sign-extended to dy's
    width: exact for Inf and NaN without a check of dy (a product dy * chosen would leak
    0 * Inf = NaN into the taps not chosen).
    """
    dxp = _new_gradient(g, dtype)
    disjoint = _windows_disjoint(g)
    bits = _BITS[np.dtype(dtype).itemsize]
    dy_bits = dy.astype(dtype, copy=False).view(bits)
    chosen = np.empty(dy.shape, dtype=bool)
    keep = chosen.view(np.int8)                      # 0 / 1, made 0 / -1 in place
    with _quiet():
        for number, taps in enumerate(_taps(g)):
            np.equal(offsets, number, out=chosen)
            np.negative(keep, out=keep)
            if disjoint:
                np.bitwise_and(dy_bits, keep, out=dxp.view(bits)[_tap(g, taps)], dtype=bits)
            else:
                dxp[_tap(g, taps)] += np.bitwise_and(dy_bits, keep, dtype=bits).view(dtype)
    return _cropped(dxp, g)


def flat_indices(offsets: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """PyTorch's indices (N, C, *out), int64: each max's flat position in its input plane."""
    plane = np.cumprod((1,) + g.in_size[:0:-1])[::-1]        # row-major strides of *in
    starts = np.meshgrid(*[np.arange(o) * s - lo for o, s, (lo, _) in
                           zip(g.out_size, g.stride, g.padding)], indexing="ij")
    base = sum(start * p for start, p in zip(starts, plane))  # (*out) first tap's position
    step = np.array([sum(j * d * p for j, d, p in zip(taps, g.dilation, plane))
                     for taps in _taps(g)], dtype=np.int64)  # (prod(k),) tap -> offset
    return np.take(step, offsets) + base


def scatter_indices(dy: np.ndarray, indices: np.ndarray, g: PoolGeometry, dtype) -> np.ndarray:
    """dx (N, C, *in): dy (N, C, *out) added at PyTorch's flat ``indices`` (checked)."""
    plane = int(np.prod(g.in_size))
    indices = indices.reshape(g.batch * g.channels, int(np.prod(g.out_size)))  # (N*C, P')
    rows = np.arange(g.batch * g.channels, dtype=np.int64)[:, None] * plane
    dx = np.zeros(g.batch * g.channels * plane, dtype=dtype)
    with _quiet():                            # Inf + -Inf at one position: NaN, as torch
        np.add.at(dx, (indices + rows).ravel(), dy.astype(dtype, copy=False).ravel())
    return dx.reshape(g.x_shape)                                  # (N, C, *in)


# ----------------------------------------------------------------------------------------
# Average pooling


def avg_divisor(g: PoolGeometry, count_include_pad: bool, divisor_override):
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


def avg_forward(x: np.ndarray, g: PoolGeometry, count_include_pad: bool,
                divisor_override) -> np.ndarray:
    """y (N, C, *out) in x's dtype, summed in the geometry's (float16 sums in float32)."""
    xp = _padded(x, g, 0, g.dtype)
    windows = [xp[_tap(g, taps)] for taps in _taps(g)]
    with _quiet():
        y = windows[0].copy()                                # (N, C, *out)
        for window in windows[1:]:
            y += window
        y /= avg_divisor(g, count_include_pad, divisor_override)
    return y.astype(x.dtype, copy=False)


def avg_backward(dy: np.ndarray, g: PoolGeometry, count_include_pad: bool, divisor_override,
                 dtype) -> np.ndarray:
    """dx (N, C, *in) in ``dtype``: dy (N, C, *out) / count added back over every window."""
    dxp = _new_gradient(g, dtype)
    disjoint = _windows_disjoint(g)
    with _quiet():
        share = dy / np.asarray(avg_divisor(g, count_include_pad, divisor_override),
                                dtype=dtype)              # (N, C, *out)
        for taps in _taps(g):
            view = dxp[_tap(g, taps)]
            if disjoint:
                view[...] = share
            else:
                view += share
    return _cropped(dxp, g)
