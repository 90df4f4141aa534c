"""The fast engine: a convolution lowered to matrix products (im2col + GEMM) on BLAS.

The forward pass copies, for each kernel offset, the input samples it touches into a
column buffer, then multiplies by the filters in one batched matrix product:

    cols  (G, C/G * prod(K), n * P)   the im2col buffer of a chunk of n samples
    y     (G, F/G, n * P)  = w (G, F/G, C/G * prod(K)) @ cols

The backward pass is the same machinery with the roles swapped (conv-math.md):

* dw = dy @ cols^T: x correlated with dy, over the very columns the forward reads;
* dx at stride 1 is a forward correlation of the padded dy with the rotated filters
  (:func:`forward` called again); at stride > 1, where that would multiply mostly the
  inserted zeros, dx = col2im(w^T @ dy), col2im being the adjoint of im2col: one strided
  slice addition per kernel offset.

Padding is never materialized: each kernel offset copies only the part of its window
that lies inside the input and zero-fills the rest (negative padding crops). Groups are
the leading axis of one batched matrix product, never a Python loop. The batch is
processed in chunks sized by :mod:`convgrad.memory`.
"""
from __future__ import annotations

import numpy as np

from .geometry import ConvGeometry
from .memory import plan_chunks

__all__ = ["forward", "grad_input", "grad_weight"]


# ----------------------------------------------------------------------------------------
# Lowering: which input positions each kernel offset reads


def _offset_windows(g: ConvGeometry, offset: tuple[int, ...]):
    """For one kernel offset: (output slices, input slices) of the in-bounds part, or None.

    Output index i reads input index s*i + d*k - lo; it is in bounds when
    0 <= s*i + d*k - lo < in_size.
    """
    out_slices, in_slices = [], []
    for k, n_in, n_out, s, d, (lo, _) in zip(offset, g.in_size, g.out_size, g.stride,
                                             g.dilation, g.padding):
        shift = d * k - lo
        first = max(0, -(shift // s) if shift < 0 else 0)      # ceil(-shift / s)
        last = min(n_out, (n_in - 1 - shift) // s + 1)          # one past the last valid i
        if last <= first:
            return None
        start = s * first + shift
        out_slices.append(slice(first, last))
        in_slices.append(slice(start, start + s * (last - first - 1) + 1, s))
    return tuple(out_slices), tuple(in_slices)


def _zero_outside(dest: np.ndarray, out_slices, out_size) -> None:
    """Zero dest (A, B, *out) outside the box ``out_slices``: one slab per axis."""
    head = (slice(None), slice(None))
    for axis, (box, size) in enumerate(zip(out_slices, out_size)):
        inner = out_slices[:axis]
        outer = (slice(None),) * (len(out_size) - axis - 1)
        for part in (slice(0, box.start), slice(box.stop, size)):
            if part.stop > part.start:
                dest[head + inner + (part,) + outer] = 0


def _im2col(x: np.ndarray, g: ConvGeometry, cols: np.ndarray) -> np.ndarray:
    """Fill cols (C, *K, n, *out) from x (n, C, *in): cols[c, k, m, i] = xp[m, c, s*i + d*k]."""
    all_ = (slice(None), slice(None))
    for offset in np.ndindex(*g.kernel_size):
        dest = cols[(slice(None),) + offset]                   # (C, n, *out)
        windows = _offset_windows(g, offset)
        if windows is None:
            dest[...] = 0
            continue
        out_slices, in_slices = windows
        dest[all_ + out_slices] = x[all_ + in_slices].swapaxes(0, 1)
        _zero_outside(dest, out_slices, g.out_size)
    return cols


def _col2im(dcols: np.ndarray, g: ConvGeometry, dx: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`_im2col`: dx (n, C, *in) += every offset's columns, in place."""
    all_ = (slice(None), slice(None))
    for offset in np.ndindex(*g.kernel_size):
        windows = _offset_windows(g, offset)
        if windows is None:
            continue
        out_slices, in_slices = windows
        dx[all_ + in_slices] += dcols[(slice(None),) + offset][all_ + out_slices].swapaxes(0, 1)
    return dx


# ----------------------------------------------------------------------------------------
# The three maps


def _sizes(g: ConvGeometry):
    groups = g.groups
    return (groups, g.out_channels // groups, (g.in_channels // groups) * int(np.prod(g.kernel_size)),
            int(np.prod(g.out_size)))


def _chunks(g: ConvGeometry, rows: int, what: str):
    """Batch slices whose (rows x n*P) buffers fit the memory budget."""
    per_sample = rows * int(np.prod(g.out_size)) * g.dtype.itemsize
    step = plan_chunks(g.batch, per_sample, what)
    return [slice(start, min(start + step, g.batch)) for start in range(0, g.batch, step)]


def _to_groups(a: np.ndarray, groups: int) -> np.ndarray:
    """(n, F, *out) -> (G, F/G, n * P), a view when n == 1."""
    n, f = a.shape[:2]
    return a.swapaxes(0, 1).reshape(groups, f // groups, -1)


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """y = x correlated with w: (N, C, *in) x (F, C/G, *K) -> (N, F, *out), without bias."""
    groups, f_per_group, rows, positions = _sizes(g)
    y = np.empty(g.y_shape, dtype=g.dtype)
    w_mat = w.reshape(groups, f_per_group, rows)                # (G, F/G, C/G*K)
    chunks = _chunks(g, groups * rows, "the forward pass")
    buffer = np.empty(groups * rows * positions * (chunks[0].stop if chunks else 0), g.dtype)
    for chunk in chunks:
        n = chunk.stop - chunk.start
        cols = buffer[:groups * rows * n * positions].reshape(
            g.in_channels, *g.kernel_size, n, *g.out_size)      # (C, *K, n, *out)
        _im2col(x[chunk], g, cols)
        product = np.matmul(w_mat, cols.reshape(groups, rows, n * positions))  # (G, F/G, nP)
        y[chunk] = product.reshape(g.out_channels, n, *g.out_size).swapaxes(0, 1)
    return y


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw = dy @ cols^T: x correlated with dy. (N, F, *out), (N, C, *in) -> (F, C/G, *K)."""
    groups, f_per_group, rows, positions = _sizes(g)
    dw = np.zeros((groups, f_per_group, rows), dtype=g.dtype)  # (G, F/G, C/G*K)
    chunks = _chunks(g, groups * rows, "the weight gradient")
    buffer = np.empty(groups * rows * positions * (chunks[0].stop if chunks else 0), g.dtype)
    for chunk in chunks:
        n = chunk.stop - chunk.start
        cols = buffer[:groups * rows * n * positions].reshape(
            g.in_channels, *g.kernel_size, n, *g.out_size)      # (C, *K, n, *out)
        _im2col(x[chunk], g, cols)
        dy_mat = _to_groups(dy[chunk], groups)                  # (G, F/G, nP)
        dw += np.matmul(dy_mat, cols.reshape(groups, rows, n * positions).swapaxes(1, 2))
    return dw.reshape(g.w_shape)


def _rotated_swapped(w: np.ndarray, groups: int) -> np.ndarray:
    """(F, C/G, *K) -> (C, F/G, *K): filters rotated 180 degrees, F and C swapped per group."""
    f, c_per_group = w.shape[:2]
    kernel = w.shape[2:]
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * len(kernel)]
    blocks = flipped.reshape(groups, f // groups, c_per_group, *kernel).swapaxes(1, 2)
    return blocks.reshape(groups * c_per_group, f // groups, *kernel)


def _transposed_geometry(g: ConvGeometry) -> ConvGeometry:
    """dx at stride 1 as a forward correlation: dy (N, F, *out) -> dx (N, C, *in).

    Padding kd-1-lo before and in+kd-1-out-(kd-1-lo) after (conv-math.md, s = 1).
    """
    padding = tuple((kd - 1 - lo, n + kd - 1 - o - (kd - 1 - lo))
                    for n, o, kd, (lo, _) in zip(g.in_size, g.out_size, g.kernel_extent,
                                                 g.padding))
    return ConvGeometry(g.batch, g.out_channels, g.in_channels, g.groups, g.out_size,
                        g.kernel_size, g.stride, g.dilation, padding, g.in_size, g.dtype)


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: the adjoint of the forward map. (N, F, *out), (F, C/G, *K) -> (N, C, *in)."""
    if all(s == 1 for s in g.stride) and g.out_channels <= 2 * g.in_channels:
        return forward(dy, _rotated_swapped(w, g.groups), _transposed_geometry(g))
    groups, f_per_group, rows, positions = _sizes(g)
    dx = np.zeros(g.x_shape, dtype=g.dtype)
    w_t = w.reshape(groups, f_per_group, rows).swapaxes(1, 2)   # (G, C/G*K, F/G)
    for chunk in _chunks(g, groups * rows, "the input gradient"):
        n = chunk.stop - chunk.start
        dy_mat = _to_groups(dy[chunk], groups)                  # (G, F/G, nP)
        dcols = np.matmul(w_t, dy_mat)                          # (G, C/G*K, nP)
        _col2im(dcols.reshape(g.in_channels, *g.kernel_size, n, *g.out_size), g, dx[chunk])
    return dx
