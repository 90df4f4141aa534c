"""im2col and its adjoint col2im: a convolution's input windows laid out as matrix columns.

For a chunk of n samples x (n, C, *in) and a kernel offset k, output position i reads the
input at s*i + d*k - lo (zero outside the input). The column buffer holds all of them, in
one of two layouts:

    "rows"     cols[c, k, m, i] = xp[m, c, s*i + d*k]    cols (C, *K, n, *out)
    "samples"  cols[m, c, k, i] = xp[m, c, s*i + d*k]    cols (n, C, *K, *out)

"rows" makes cols.reshape(G, C/G * prod(K), n * P) the right operand of one matrix
product for the whole chunk (best with many rows C/G * prod(K));
"samples" gives each sample its own (G, C/G * prod(K), P) matrix, whose product with the
filters lands directly in y, no transposed copy (best with few rows); a third layout,
channels last, is :mod:`.channels_last`. Padding is never materialized: each offset
copies the in-bounds part of its window and zero-fills the rest (negative padding simply
crops). col2im adds columns back into an input-shaped array: the adjoint, used by the
input gradient.

Both run on one thread: the fast engine hands them chunks small enough to stay in the
CPU's cache, where a second thread was measured to gain nothing (BENCHMARKS.md).
"""
from __future__ import annotations

import functools

import numpy as np

from ..geometry import ConvGeometry

__all__ = ["axis_window", "offset_windows", "im2col", "col2im"]


def axis_window(k, n_in, n_out, s, d, lo):
    """Output slice and input slice of one axis for kernel offset k, or None if empty.

    Output index i reads input index s*i + d*k - lo, in bounds when 0 <= that < n_in.
    """
    shift = d * k - lo
    first = -(shift // s) if shift < 0 else 0               # ceil(-shift / s)
    last = min(n_out, (n_in - 1 - shift) // s + 1)          # one past the last valid i
    if last <= first:
        return None
    start = s * first + shift
    return slice(first, last), slice(start, start + s * (last - first - 1) + 1, s)


@functools.lru_cache(maxsize=512)
def offset_windows(g: ConvGeometry):
    """[(offset, output slices, input slices, zero parts)] for every kernel offset.

    The slices are None when the offset reads no input at all; the zero parts index the
    slabs of a (A, B, *out) block outside the output slices (one or two per axis), which
    im2col zero-fills. Cached per geometry: a training loop asks for the same few
    geometries again and again, and small images would otherwise spend more time
    building slices than copying.
    """
    windows = []
    head = (slice(None), slice(None))
    for offset in np.ndindex(*g.kernel_size):
        axes = [axis_window(k, n_in, n_out, s, d, lo) for k, n_in, n_out, s, d, (lo, _)
                in zip(offset, g.in_size, g.out_size, g.stride, g.dilation, g.padding)]
        if any(a is None for a in axes):
            windows.append((offset, None, None, ()))
            continue
        out_slices = tuple(a[0] for a in axes)
        zero = []
        for axis, (box, size) in enumerate(zip(out_slices, g.out_size)):
            inner = out_slices[:axis]
            outer = (slice(None),) * (len(g.out_size) - axis - 1)
            for part in (slice(0, box.start), slice(box.stop, size)):
                if part.stop > part.start:
                    zero.append(head + inner + (part,) + outer)
        windows.append((offset, out_slices, tuple(a[1] for a in axes), tuple(zero)))
    return tuple(windows)


def im2col(x: np.ndarray, g: ConvGeometry, cols: np.ndarray, windows=None,
           layout: str = "rows") -> np.ndarray:
    """Fill cols (C, *K, n, *out) ("rows") or (n, C, *K, *out) ("samples") from
    x (n, C, *in); returns cols."""
    windows = offset_windows(g) if windows is None else windows
    everything = (slice(None), slice(None))
    rows = layout == "rows"
    for offset, out_slices, in_slices, zero in windows:
        # (C, n, *out) for "rows", (n, C, *out) for "samples"
        dest = cols[(slice(None),) + offset] if rows else cols[everything + offset]
        if out_slices is None:
            dest[...] = 0
            continue
        source = x[everything + in_slices]
        dest[everything + out_slices] = source.swapaxes(0, 1) if rows else source
        for part in zero:
            dest[part] = 0
    return cols


def col2im(dcols: np.ndarray, g: ConvGeometry, dx: np.ndarray, windows=None,
           layout: str = "rows") -> np.ndarray:
    """dx (n, C, *in) += every offset's columns of dcols (in the layout of
    :func:`im2col`), in place."""
    windows = offset_windows(g) if windows is None else windows
    everything = (slice(None), slice(None))
    rows = layout == "rows"
    for offset, out_slices, in_slices, _ in windows:
        if out_slices is None:
            continue
        block = dcols[(slice(None),) + offset] if rows else dcols[everything + offset]
        source = block[everything + out_slices]
        dx[everything + in_slices] += source.swapaxes(0, 1) if rows else source
    return dx
