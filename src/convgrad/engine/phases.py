"""Polyphase lowering: im2col and col2im at stride > 1 through the input split by phase.

At stride s, output position i and kernel offset k read the zero-padded input xp at
s*i + d*k (docs/math.md#the-forward-index-map, xp's index 0 being input index -lo).
Writing t = d*k = s*a + ph (ph = t mod s, its phase), that is xp[s*(i + a) + ph]: the
phase-ph part of xp, xs[ph, j] = xp[s*j + ph], read at j = i + a. So, per axis,

    xs    (n, C, *s, *L)        xs[m, c, ph, j] = xp[m, c, s*j + ph],  L = ceil(E / s)
    cols  window of offset k    xs[m, c, ph(k), a(k) : a(k) + out]

with E = in + lo + hi the padded extent (zeros outside the input). Splitting x once
(one pass over x-sized data) turns im2col's prod(K) strided gathers into copies of
contiguous runs, and col2im's strided read-modify-write additions into additions over
contiguous runs, followed by one strided copy of each phase back into dx (every input
position belongs to exactly one phase and one j: an assignment, nothing to add). Each
phase is read by about prod(K) / prod(s) kernel offsets, so only kernels with more
offsets than phases are lowered this way (:func:`applies`).

Measured on W6 (x (16, 3, 224, 224), w (64, 3, 7, 7), stride 2, padding 3), one thread:
im2col 24 -> 20 ms float64 (the split included), col2im 55 -> 39 ms (BENCHMARKS.md).

Arrays: x and dx (n, C, *in), C-contiguous; cols in the layouts of
:mod:`.lowering` ("rows" (C, *K, n, *out), "samples" (n, C, *K, *out)).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import ConvGeometry

__all__ = ["applies", "sizes", "elements", "split", "im2col", "col2im", "MIN_REUSE"]

MIN_REUSE = 8
"""Kernel offsets per phase, at least: W6's 7x7 at stride 2 (12) gains; 3x3 at stride 2
(2.25: S2, 64 -> 128 channels on 56x56) was measured 1.03-1.08x slower, 5x5 (6.25) even."""


def applies(g: ConvGeometry) -> bool:
    """Some stride above 1, no negative padding (a crop), and at least MIN_REUSE
    kernel offsets per phase (each split element is read by that many offsets)."""
    return (any(s > 1 for s in g.stride)
            and all(lo >= 0 and hi >= 0 for lo, hi in g.padding)
            and math.prod(g.kernel_size) >= MIN_REUSE * math.prod(g.stride))


def sizes(g: ConvGeometry) -> tuple[int, ...]:
    """L per axis: ceil((in + lo + hi) / s), the length of each phase."""
    return tuple(-(-(n + lo + hi) // s)
                 for n, (lo, hi), s in zip(g.in_size, g.padding, g.stride))


def elements(g: ConvGeometry) -> int:
    """Elements of xs for one sample: C * prod(s) * prod(L)."""
    return g.in_channels * math.prod(g.stride) * math.prod(sizes(g))


@functools.lru_cache(maxsize=256)
def _parts(g: ConvGeometry):
    """([(phase, xs slices, x slices)] for every phase holding input, [(offset, xs
    index)] for every kernel offset): cached per geometry."""
    lengths = sizes(g)
    head = (slice(None), slice(None))
    phases = []
    for phase in np.ndindex(*g.stride):
        xs_slices, x_slices = [], []
        for ph, s, lo, n, length in zip(phase, g.stride, (p[0] for p in g.padding),
                                        g.in_size, lengths):
            first = max(0, -(-(lo - ph) // s))          # first j with s*j + ph >= lo
            last = min(length, (n - 1 + lo - ph) // s + 1)
            if last <= first:
                break
            start = s * first + ph - lo
            xs_slices.append(slice(first, last))
            x_slices.append(slice(start, start + s * (last - first - 1) + 1, s))
        else:
            phases.append((head + phase, head + phase + tuple(xs_slices),
                           head + tuple(x_slices)))
    offsets = []
    for offset in np.ndindex(*g.kernel_size):
        index = []
        for k, d, s, out in zip(offset, g.dilation, g.stride, g.out_size):
            a, ph = divmod(d * k, s)
            index.append((ph, slice(a, a + out)))
        offsets.append((offset, head + tuple(p for p, _ in index)
                        + tuple(w for _, w in index)))
    return tuple(phases), tuple(offsets)


def split(x: np.ndarray, g: ConvGeometry, xs: np.ndarray) -> np.ndarray:
    """Fill xs (n, C, *s, *L) from x (n, C, *in): each phase of the padded input."""
    phases, _ = _parts(g)
    xs[...] = 0
    for _, xs_index, x_index in phases:
        xs[xs_index] = x[x_index]
    return xs


def im2col(x: np.ndarray, g: ConvGeometry, cols: np.ndarray, xs: np.ndarray,
           layout: str = "rows") -> np.ndarray:
    """Fill cols ("rows" (C, *K, n, *out) or "samples" (n, C, *K, *out)) from
    x (n, C, *in) through xs (n, C, *s, *L); returns cols."""
    split(x, g, xs)
    _, offsets = _parts(g)
    rows = layout == "rows"
    for offset, index in offsets:
        if rows:                                      # (C, n, *out)
            cols[(slice(None),) + offset] = xs[index].swapaxes(0, 1)
        else:                                         # (n, C, *out)
            cols[(slice(None), slice(None)) + offset] = xs[index]
    return cols


def col2im(dcols: np.ndarray, g: ConvGeometry, dx: np.ndarray, xs: np.ndarray,
           layout: str = "rows") -> np.ndarray:
    """dx (n, C, *in) = every offset's columns of dcols added up, through
    xs (n, C, *s, *L) (scratch); dx's values are replaced; returns dx."""
    phases, offsets = _parts(g)
    xs[...] = 0
    rows = layout == "rows"
    for offset, index in offsets:
        block = dcols[(slice(None),) + offset] if rows else dcols[
            (slice(None), slice(None)) + offset]
        target = xs[index]
        target += block.swapaxes(0, 1) if rows else block
    for _, xs_index, x_index in phases:
        dx[x_index] = xs[xs_index]
    return dx
