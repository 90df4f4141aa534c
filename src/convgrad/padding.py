"""Padding modes: pad the input by a mode, and the adjoint that folds the border back.

A convolution with ``padding_mode`` other than 'zeros' is, as in PyTorch, the input padded
by that mode and then convolved without padding: y = C(w) P x, where P copies entries of
x into the border. Its gradients follow from the chain rule (docs/math.md#padding-modes):

    dx = P^T C(w)^T dy        (the border's gradient folded back onto its sources)
    dw = grad_weight(dy, P x)

Along one axis of size n padded by (lo, hi), the padded entry at position i (counted from
x's first entry, so i runs over -lo .. n + hi - 1) copies x[source(i)]:

    zeros      x[i] for 0 <= i < n, 0 outside (no source)
    reflect    source(i) = -i for i < 0, 2(n - 1) - i for i >= n   (the edge not repeated;
               needs lo, hi < n)
    replicate  source(i) = min(max(i, 0), n - 1)                   (the edge repeated)
    circular   source(i) = i mod n                                 (needs lo, hi <= n)

and the adjoint P^T sums the gradient of every padded entry into its source:
dx[s] = sum over i with source(i) = s of dxp[i]: mirrored (reflect), accumulated on the
edge entry (replicate), wrapped to the other side (circular). Several axes are padded one
after the other (the corners come out as PyTorch's), and folded in the reverse order.

:func:`source_index` is the definition, which the reference engine's
:func:`~convgrad.engine.reference.pad_by_mode` applies entry by entry; :func:`pad` and
:func:`fold` here do the same with one slice per border. Limits are checked before, by
:func:`convgrad.geometry.conv_geometry`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .geometry import ConvGeometry
from .memory import check_allocation

__all__ = ["source_index", "pad", "fold", "padded_geometry"]


def source_index(i: int, n: int, mode: str):
    """The entry of x (size n along the axis) that padded position i copies; None = zero.

    ``i`` counts from x's first entry: -1 is the first padded entry before it, n the first
    after it.
    """
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    if mode == "circular":
        return i % n
    raise ValueError(f"padding mode {mode!r} is not one of 'zeros', 'reflect', 'replicate', "
                     f"'circular'")


def _along(axis: int, start=None, stop=None, step=None) -> tuple:
    """An index selecting ``start:stop:step`` along ``axis`` and everything elsewhere."""
    return (slice(None),) * axis + (slice(start, stop, step),)


def _pad_axis(a: np.ndarray, axis: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """Pad ``a`` by (lo, hi) along ``axis``: [left border, a, right border]."""
    n = a.shape[axis]
    if mode == "zeros":
        border = list(a.shape)
        left = np.zeros(border[:axis] + [lo] + border[axis + 1:], a.dtype)
        right = np.zeros(border[:axis] + [hi] + border[axis + 1:], a.dtype)
    elif mode == "reflect":                      # x[lo], ..., x[1] | x | x[n-2], ..., x[n-1-hi]
        left = a[_along(axis, 1, lo + 1)][_along(axis, step=-1)]
        right = a[_along(axis, n - 1 - hi, n - 1)][_along(axis, step=-1)]
    elif mode == "replicate":                    # x[0] lo times | x | x[n-1] hi times
        left = np.repeat(a[_along(axis, 0, 1)], lo, axis=axis)
        right = np.repeat(a[_along(axis, n - 1, n)], hi, axis=axis)
    else:                                        # circular: x[n-lo:] | x | x[:hi]
        left = a[_along(axis, n - lo, n)]
        right = a[_along(axis, 0, hi)]
    return np.concatenate([left, a, right], axis=axis)


def _fold_axis(dxp: np.ndarray, axis: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """The adjoint of :func:`_pad_axis`: each border entry's gradient added to its source."""
    n = dxp.shape[axis] - lo - hi
    dx = dxp[_along(axis, lo, lo + n)].copy()                  # the interior: x itself
    left = dxp[_along(axis, 0, lo)]                             # lo border entries
    right = dxp[_along(axis, lo + n, lo + n + hi)]              # hi border entries
    if mode == "reflect":                                       # mirrored back
        dx[_along(axis, 1, lo + 1)] += left[_along(axis, step=-1)]
        dx[_along(axis, n - 1 - hi, n - 1)] += right[_along(axis, step=-1)]
    elif mode == "replicate":                                   # piled onto the edge entry
        dx[_along(axis, 0, 1)] += left.sum(axis=axis, keepdims=True)
        dx[_along(axis, n - 1, n)] += right.sum(axis=axis, keepdims=True)
    elif mode == "circular":                                    # wrapped to the other side
        dx[_along(axis, n - lo, n)] += left
        dx[_along(axis, 0, hi)] += right
    return dx                                                   # zeros: the border is dropped


def pad(x: np.ndarray, pairs, mode: str) -> np.ndarray:
    """x (N, C, *in) padded by ``mode`` with (lo, hi) ``pairs`` per spatial axis.

    Returns a new array (N, C, *(in + lo + hi)).
    """
    size = [n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pairs)]
    check_allocation(list(x.shape[:2]) + size, x.dtype, f"the input padded by '{mode}'")
    for axis, (lo, hi) in enumerate(pairs, start=2):
        x = _pad_axis(x, axis, lo, hi, mode)
    return x


def fold(dxp: np.ndarray, pairs, mode: str) -> np.ndarray:
    """The adjoint of :func:`pad`: (N, C, *(in + lo + hi)) -> (N, C, *in).

    <pad(x), dxp> = <x, fold(dxp)> for every x and dxp.
    """
    for axis, (lo, hi) in reversed(list(enumerate(pairs, start=2))):
        dxp = _fold_axis(dxp, axis, lo, hi, mode)
    return dxp


def padded_geometry(g: ConvGeometry) -> ConvGeometry:
    """The convolution that runs after the input is padded by the mode: no padding of its
    own, and the padded size as its input size (out_size unchanged)."""
    return dataclasses.replace(g, in_size=g.padded_size, padding=((0, 0),) * g.nd,
                               padding_mode="zeros")
