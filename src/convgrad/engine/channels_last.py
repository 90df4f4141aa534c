"""Channels-last lowering: im2col and col2im for images with short rows.

im2col in (C, *K, n, *out) or (n, C, *K, *out) order copies rows of the output's last
axis: on small images (a 4x4 map, the deep layers of small CNNs) those rows are a few
elements long and the copies cost far more than the products. Channels last, every
window's (last kernel axis, C) block is one contiguous run of the input, so the whole
lowering is one copy of long runs through a strided view:

    xp    (n, *extent, C)          x moved channels last, zero-padded (crop: see below)
    view  (n, *out, *K, C)         view[m, i, k, c] = xp[m, s*i + d*k + base, c]
    cols  (n, *out, G, *K, C/G)    the copy: each group's (n*P, K*C/G) matrix in place

For each axis, xp holds input indices -max(lo, 0) .. in + max(hi, 0) - 1, so that
output i and kernel offset k read xp index s*i + d*k + base, base = max(0, -lo) (a
negative padding, the swapped correlation's crop, starts the windows further in). The
products then run channels last too (y as (n*P, F)), and one transposed copy returns
each result to (n, F, *out). col2im is the adjoint: each kernel offset's block of
dcols is added into a zeroed xp-shaped array, whose interior is dx.

Measured (BENCHMARKS.md): 0.6-0.7x the time of the other layouts on 4x4 maps with 32
channels (the digits model's second layer), 0.7-0.9x on 8x8 maps with 16-32 channels;
slower with one input channel, or rows of 14 and more.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..geometry import ConvGeometry

__all__ = ["applies", "extent", "lower", "raise_", "filters", "weight_gradient"]


def applies(g: ConvGeometry) -> bool:
    """Rows of the output at most 8 long and at least 4 channels per group (measured)."""
    return g.out_size[-1] <= 8 and g.in_channels // g.groups >= 4


def extent(g: ConvGeometry) -> tuple[int, ...]:
    """xp's spatial size: in + max(lo, 0) + max(hi, 0) per axis."""
    return tuple(n + max(lo, 0) + max(hi, 0) for n, (lo, hi) in zip(g.in_size, g.padding))


def padded_elements(g: ConvGeometry) -> int:
    """Elements of xp for one sample: C * prod(extent)."""
    return g.in_channels * math.prod(extent(g))


def _interior(g: ConvGeometry):
    """Where x lies in xp (n, *extent, C)."""
    return (slice(None),) + tuple(slice(max(lo, 0), max(lo, 0) + n)
                                  for n, (lo, _) in zip(g.in_size, g.padding))


def lower(x: np.ndarray, g: ConvGeometry, xp: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Fill cols (n, *out, G, *K, C/G) from x (n, C, *in), through xp (n, *extent, C)."""
    nd, n = g.nd, x.shape[0]
    xp[...] = 0
    xp[_interior(g)] = np.moveaxis(x, 1, -1)
    base = xp[(slice(None),) + tuple(slice(max(0, -lo), None) for lo, _ in g.padding)]
    axes = base.strides[1:1 + nd]
    channel = base.strides[-1]
    c_per_group = g.in_channels // g.groups
    view = as_strided(base, (n, *g.out_size, *g.kernel_size, g.groups, c_per_group),
                      (base.strides[0], *(s * a for s, a in zip(g.stride, axes)),
                       *(d * a for d, a in zip(g.dilation, axes)),
                       c_per_group * channel, channel), writeable=False)
    cols[...] = np.moveaxis(view, -2, 1 + nd)          # (n, *out, G, *K, C/G)
    return cols


def raise_(dcols: np.ndarray, g: ConvGeometry, dxp: np.ndarray, dx: np.ndarray) -> None:
    """dx (n, C, *in) = col2im of dcols (n, *out, G, *K, C/G), through dxp (n, *extent, C)."""
    nd, n = g.nd, dcols.shape[0]
    dxp[...] = 0
    blocks = dxp.reshape(n, *extent(g), g.groups, g.in_channels // g.groups)
    head = (slice(None),) * (2 + nd)                   # n, *out, G
    for offset in np.ndindex(*g.kernel_size):
        window = tuple(slice(max(0, -lo) + d * k, max(0, -lo) + d * k + s * (o - 1) + 1, s)
                       for k, d, s, o, (lo, _) in zip(offset, g.dilation, g.stride,
                                                       g.out_size, g.padding))
        blocks[(slice(None),) + window] += dcols[head + offset]     # (n, *out, G, C/G)
    dx[...] = np.moveaxis(dxp[_interior(g)], -1, 1)


def filters(w: np.ndarray, groups: int) -> np.ndarray:
    """w (F, C/G, *K) -> (G, F/G, K*C/G), the channels-last order of the columns (a copy)."""
    f, c = w.shape[:2]
    blocks = np.moveaxis(w.reshape(groups, f // groups, c, *w.shape[2:]), 2, -1)
    return np.ascontiguousarray(blocks).reshape(groups, f // groups, -1)


def weight_gradient(dw_blocks: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """(G, F/G, K*C/G) channels-last sums -> dw (F, C/G, *K)."""
    c = g.in_channels // g.groups
    blocks = dw_blocks.reshape(g.out_channels, *g.kernel_size, c)
    return np.ascontiguousarray(np.moveaxis(blocks, -1, 1))
