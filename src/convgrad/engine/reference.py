"""The reference engine: loops that read like the equations of docs/math.md.

This is the project's in-house oracle and its teaching code. It is slow on purpose
(plain Python loops over output positions) and written to be read:

* :func:`forward` is the definition of the layer, a strided, dilated, grouped
  cross-correlation of the zero-padded input with the filters;
* :func:`grad_input` and :func:`grad_weight` are the same correlation called with the
  roles swapped, exactly as docs/math.md derives them:

  - dx is the "full" correlation of dy, with ``stride - 1`` zeros inserted between its
    entries and padded by ``kd - 1 - pad``, with the 180-degree rotated filters (the
    inserted and padded zeros are structural: they take no part in the sums, so a NaN or
    Inf weight reaches exactly the entries of dx it reaches in PyTorch);
  - dw is x correlated with dy, where dy acts as a kernel dilated by the stride and the
    correlation runs with a stride equal to the dilation (stride and dilation trade places).

All three take arrays already validated by :mod:`convgrad.geometry` and a
:class:`~convgrad.geometry.ConvGeometry`; bias is handled by the caller.

A padding mode other than zeros ('reflect', 'replicate', 'circular') is the input padded
by copying its own entries, then convolved without padding: :func:`pad_by_mode` builds
the padded input entry by entry from the definition, padded[i] = x[source(i)]
(:func:`convgrad.padding.source_index`), and :func:`fold_by_mode`, its adjoint, sends
each padded entry's gradient back to its source. :mod:`convgrad.functional` calls them
around the three maps.
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry
from ..memory import check_allocation
from ..padding import source_index

__all__ = ["forward", "grad_input", "grad_weight", "pad", "dilate", "rot180", "pad_by_mode",
           "fold_by_mode"]


def pad(a: np.ndarray, pairs) -> np.ndarray:
    """Zero-pad the trailing spatial axes of ``a`` by ``(lo, hi)`` pairs; negative crops.

    ``a`` is (N, C, *spatial); the result is a new array (never a view of ``a``).
    """
    grow = [(0, 0), (0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    check_allocation([n + lo + hi for n, (lo, hi) in zip(a.shape, grow)], a.dtype,
                     "the reference engine's padded array")
    out = np.pad(a, grow)
    crop = tuple(slice(max(-lo, 0), out.shape[2 + i] - max(-hi, 0))
                 for i, (lo, hi) in enumerate(pairs))
    return out[(slice(None), slice(None)) + crop]


def _at(axis: int, i: int) -> tuple:
    """The index of entry ``i`` along ``axis`` (every entry of the other axes)."""
    return (slice(None),) * axis + (i,)


def pad_by_mode(x: np.ndarray, pairs, mode: str) -> np.ndarray:
    """x (N, C, *in) padded by copies of its own entries: padded[i] = x[source(i)].

    One spatial axis after the other; i runs from -lo to n + hi - 1 (0 is x's first entry).
    Returns (N, C, *(in + lo + hi)).
    """
    for axis, (lo, hi) in enumerate(pairs, start=2):
        n = x.shape[axis]
        check_allocation(x.shape[:axis] + (n + lo + hi,) + x.shape[axis + 1:], x.dtype,
                         "the reference engine's padded array")
        padded = np.empty(x.shape[:axis] + (n + lo + hi,) + x.shape[axis + 1:], x.dtype)
        for i in range(-lo, n + hi):
            padded[_at(axis, lo + i)] = x[_at(axis, source_index(i, n, mode))]
        x = padded
    return x


def fold_by_mode(d_padded: np.ndarray, pairs, mode: str) -> np.ndarray:
    """The adjoint of :func:`pad_by_mode`: dx[source(i)] += d_padded[i] for every i.

    (N, C, *(in + lo + hi)) -> (N, C, *in); the axes are folded in the reverse order.
    """
    for axis, (lo, hi) in reversed(list(enumerate(pairs, start=2))):
        n = d_padded.shape[axis] - lo - hi
        dx = np.zeros(d_padded.shape[:axis] + (n,) + d_padded.shape[axis + 1:], d_padded.dtype)
        for i in range(-lo, n + hi):
            dx[_at(axis, source_index(i, n, mode))] += d_padded[_at(axis, lo + i)]
        d_padded = dx
    return d_padded


def dilate(a: np.ndarray, factors) -> np.ndarray:
    """Insert ``factor - 1`` zeros between neighbouring entries along each spatial axis.

    (N, C, n1, n2, ...) -> (N, C, (n1 - 1) * f1 + 1, (n2 - 1) * f2 + 1, ...)
    """
    size = tuple((n - 1) * f + 1 for n, f in zip(a.shape[2:], factors))
    out = np.zeros(a.shape[:2] + size, dtype=a.dtype)
    out[(slice(None), slice(None)) + tuple(slice(None, None, f) for f in factors)] = a
    return out


def rot180(w: np.ndarray) -> np.ndarray:
    """Rotate filters by 180 degrees: reverse every spatial axis of (F, C, *kernel)."""
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def _correlate(xp: np.ndarray, w: np.ndarray, stride, dilation, groups: int, out_size,
               data=None):
    """y[n, f, i...] = sum_{c, k...} w[f, c, k...] * xp[n, g(f)*C/G + c, s*i + d*k ...].

    xp (N, C, *padded) is already padded; w (F, C/G, *kernel); returns (N, F, *out_size).
    ``data`` (bool, xp's shape), when given, marks the entries of xp that are data: the
    others are structural zeros that take no part in the sums (so that 0 * inf never
    turns into NaN there, as in PyTorch).
    """
    n_batch, channels = xp.shape[:2]
    filters = w.shape[0]
    c_per_group, f_per_group = channels // groups, filters // groups
    y = np.zeros((n_batch, filters, *out_size), dtype=np.result_type(xp, w))
    for n in range(n_batch):
        for f in range(filters):
            g = f // f_per_group
            group = (n, slice(g * c_per_group, (g + 1) * c_per_group))  # (C/G, *padded)
            for i in np.ndindex(*out_size):
                window = group + tuple(slice(s * o, s * o + d * (k - 1) + 1, d)
                                       for o, s, d, k in zip(i, stride, dilation, w.shape[2:]))
                mask = True if data is None else data[window]
                y[(n, f) + i] = np.sum(w[f] * xp[window], where=mask, initial=0)
    return y


def forward(x: np.ndarray, w: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """y = x (padded) correlated with w: (N, C, *in) x (F, C/G, *k) -> (N, F, *out)."""
    return _correlate(pad(x, geometry.padding), w, geometry.stride, geometry.dilation,
                      geometry.groups, geometry.out_size)


def _swap_in_out(w: np.ndarray, groups: int) -> np.ndarray:
    """(F, C/G, *k) -> (C, F/G, *k): swap the roles of filters and channels, group by group."""
    filters, c_per_group = w.shape[:2]
    kernel = w.shape[2:]
    w = w.reshape(groups, filters // groups, c_per_group, *kernel)  # (G, F/G, C/G, *k)
    w = w.swapaxes(1, 2)                                            # (G, C/G, F/G, *k)
    return w.reshape(groups * c_per_group, filters // groups, *kernel)  # (C, F/G, *k)


def grad_input(dy: np.ndarray, w: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """dx: the full correlation of the stride-dilated, padded dy with the rotated filters.

    dy (N, F, *out), w (F, C/G, *k) -> dx (N, C, *in). Along each axis, with
    kd = d*(k-1) + 1 and outd = (out-1)*s + 1: insert s-1 zeros into dy, pad it by
    kd-1-lo before and in+kd-1-outd-(kd-1-lo) after (negative amounts crop), then
    correlate at stride 1, dilation d with rot180(w), filters and channels swapped.
    """
    g = geometry
    spread = dilate(dy, g.stride)                                  # (N, F, *outd)
    pairs = []
    for n, kd, (lo, _), od in zip(g.in_size, g.kernel_extent, g.padding, spread.shape[2:]):
        before = kd - 1 - lo
        pairs.append((before, n + kd - 1 - od - before))
    full = pad(spread, pairs)                                      # (N, F, *(in + kd - 1))
    # the inserted and padded zeros are structural: only dy's own entries are summed
    data = pad(dilate(np.ones(dy.shape, dtype=bool), g.stride), pairs)
    w_rotated = _swap_in_out(rot180(w), g.groups)                  # (C, F/G, *k)
    return _correlate(full, w_rotated, (1,) * g.nd, g.dilation, g.groups, g.in_size, data)


def grad_weight(dy: np.ndarray, x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """dw: x correlated with dy, which acts as a kernel dilated by the stride.

    dy (N, F, *out), x (N, C, *in) -> dw (F, C/G, *k). Per group, swap N and C of x
    (the batch becomes the channels), use dy with N and F swapped as the filters, dilated
    by s, and correlate at stride d; padding (lo, outd - in + kd - 1 - lo) keeps exactly the
    rows the forward pass read.
    """
    g = geometry
    pairs = []
    for n, kd, (lo, _), o, s in zip(g.in_size, g.kernel_extent, g.padding, g.out_size,
                                    g.stride):
        outd = (o - 1) * s + 1
        pairs.append((lo, outd - n + kd - 1 - lo))
    xp = pad(x, pairs)                                             # (N, C, *padded)
    c_per_group, f_per_group = g.in_channels // g.groups, g.out_channels // g.groups
    dw = np.empty((g.out_channels, c_per_group, *g.kernel_size), dtype=np.result_type(dy, x))
    for group in range(g.groups):
        x_t = xp[:, group * c_per_group:(group + 1) * c_per_group].swapaxes(0, 1)  # (C/G, N, ..)
        dy_t = dy[:, group * f_per_group:(group + 1) * f_per_group].swapaxes(0, 1)  # (F/G, N, ..)
        block = _correlate(x_t, dy_t, g.dilation, g.stride, 1, g.kernel_size)  # (C/G, F/G, *k)
        dw[group * f_per_group:(group + 1) * f_per_group] = block.swapaxes(0, 1)
    return dw
