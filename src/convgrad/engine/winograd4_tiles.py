"""The tile transforms of Winograd F(4x4, 3x3) (:mod:`.winograd4`), in two layouts.

Each 1-D transform is one small matrix product on BLAS, (6 x 6) or (4 x 6) times
(6, everything): the six rows (then the six columns) of every tile are first gathered
into one array. A block is the tiles of tile rows ``rows`` of n samples, T = t x tw of
them a sample; the 36 transformed values are stored in the order p = 6 m + k (k the
row, m the column of the 6x6 tile). Two layouts, chosen per geometry by measurement:

* channels first, V (36, C, n*T): the gathers copy runs of pixels, as x lies, and the
  last output product is computed transposed so that y's rows are written as whole
  runs (W3, 64 channels of 56x56: 0.87x the time of channels last);
* channels last, V (36, n*T, C): one transposing copy out of x, then runs of channels;
  its products, (n*T, C) @ (C, F), run faster with 256 channels and more (W4: 0.82x
  the time of channels first). dw runs channels last.

The results land in flat buffers ``work`` allocated once per call (36 x max(C, F)
elements a tile each), which the stages take turns to fill.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["B_T", "G", "A_T", "view", "input_transform", "multiply", "output_transform",
           "output_adjoint"]

B_T = np.array([[2, -3, -4, 3, 2, 0],
                [0, -2, 1, 5, 2, 0],
                [0, -2, 5, -1, -2, 0],
                [0, 2, 1, -2, -1, 0],
                [0, 1, -2, -1, 2, 0],
                [0, 2, -3, -4, 3, 2]], dtype=np.float64)
G = np.array([[1 / 2, 0, 0],
              [1 / 6, 1 / 6, 1 / 6],
              [1 / 6, -1 / 6, 1 / 6],
              [16 / 15, 8 / 15, 4 / 15],
              [1 / 30, -1 / 15, 2 / 15],
              [0, 0, 1 / 2]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 1 / 2, -2, 0],
                [0, 1, 1, 1 / 4, 4, 0],
                [0, 1, -1, 1 / 8, -8, 1]], dtype=np.float64)


def view(buffer: np.ndarray, shape) -> np.ndarray:
    """The first prod(shape) elements of a flat buffer, as an array of that shape."""
    return buffer[:math.prod(shape)].reshape(shape)


def input_transform(x: np.ndarray, padding, tw: int, rows: slice, work: list[np.ndarray],
                    channels_last: bool) -> np.ndarray:
    """V = B^T d B for the tiles of tile rows ``rows``: x (n, C, H, W) -> (36, C, n*T),
    or (36, n*T, C) ``channels_last``, in work[1] (work[0] is scratch).

    ``padding`` ((top, _), (left, _)) places x in the zero-padded input xp; tile (i, j)
    reads xp[4 i : 4 i + 6, 4 j : 4 j + 6]. The six rows of every tile are gathered,
    d (6, C, n, t, cols) (cols = 4 tw + 2; channels last (6, n, t, cols, C)), and
    multiplied by B^T; then the six columns, e (6, 6, C, n, t, tw), likewise.
    """
    n, c, h, w = x.shape
    t = rows.stop - rows.start
    (top, _), (left, _) = padding
    cols = 4 * tw + 2
    b_t = B_T.astype(x.dtype)
    c0, c1 = max(0, left), min(cols, w + left)               # padded columns that hold x
    inner = (n, t, cols, c) if channels_last else (c, n, t, cols)
    d = view(work[0], (6, *inner))                           # d[r][.., i, s] = xp[4 i + r, s]
    for r in range(6):
        # tile row i reads input row 4 (rows.start + i) + r - top, when inside x
        first = 4 * rows.start + r - top
        lo = min(t, max(0, -(-(-first) // 4)))               # first i with a row >= 0
        hi = max(lo, min(t, -(-(h - first) // 4)))          # first i with a row >= h
        dest = d[r] if channels_last else d[r].transpose(1, 2, 3, 0)   # (n, t, cols, C)
        dest[:, :lo] = 0
        dest[:, hi:] = 0
        dest[:, lo:hi, :c0] = 0
        dest[:, lo:hi, c1:] = 0
        if hi > lo and c1 > c0:
            dest[:, lo:hi, c0:c1] = x[:, :, first + 4 * lo:first + 4 * (hi - 1) + 1:4,
                                      c0 - left:c1 - left].transpose(0, 2, 3, 1)
    slab = view(work[1], d.shape)                            # row k of B^T d
    np.matmul(b_t, d.reshape(6, -1), out=slab.reshape(6, -1))
    if channels_last:
        e = view(work[0], (6, 6, n, t, tw, c))               # e[s, k] = slab[k][.., 4 j + s, :]
        for s in range(6):
            e[s] = slab[:, :, :, s:s + 4 * tw - 3:4]
        v = view(work[1], (36, n * t * tw, c))
    else:
        e = view(work[0], (6, 6, c, n, t, tw))               # e[s, k] = slab[k][.., 4 j + s]
        for s in range(6):
            e[s] = slab[..., s:s + 4 * tw - 3:4]
        v = view(work[1], (36, c, n * t * tw))
    np.matmul(b_t, e.reshape(6, -1), out=v.reshape(6, -1))  # p = 6 m + k
    return v


def multiply(v: np.ndarray, u: np.ndarray, out: np.ndarray, channels_last: bool
             ) -> np.ndarray:
    """The 36 products M[p] = U[p] V[p], u (36, G, F/G, C/G): v (36, C, n*T) ->
    (36, F, n*T), or v (36, n*T, C) -> (36, n*T, F) ``channels_last``; in ``out``."""
    k, groups, f_g, c_g = u.shape
    if channels_last:
        m = v.shape[1]
        result = view(out, (k, m, groups * f_g))
        np.matmul(v.reshape(k, m, groups, c_g).swapaxes(1, 2), u.swapaxes(2, 3),
                  out=result.reshape(k, m, groups, f_g).swapaxes(1, 2))
    else:
        m = v.shape[2]
        result = view(out, (k, groups * f_g, m))
        np.matmul(u, v.reshape(k, groups, c_g, m), out=result.reshape(k, groups, f_g, m))
    return result


def output_transform(m: np.ndarray, y: np.ndarray, tw: int, rows: slice,
                     work: list[np.ndarray], channels_last: bool) -> None:
    """Tile rows ``rows`` of y (n, F, H', W') = A^T M A for every tile, M (36, F, n*T)
    or (36, n*T, F) ``channels_last``; cut at the edges. work[0] must not hold M."""
    n, f, h, w = y.shape
    t = rows.stop - rows.start
    top = 4 * rows.start
    size = m[0].size                                         # F * n * T
    a_t = A_T.astype(m.dtype)
    if channels_last:
        half = view(work[0], (4, 6, size))                   # (4b, 6k, n * T * F)
        np.matmul(a_t, m.reshape(6, -1), out=half.reshape(4, -1))
        out = view(work[1], (4, 4, size))                    # (4b, 4a, n * T * F)
        np.matmul(a_t, half, out=out)
        out = out.reshape(4, 4, n, t, tw, f).transpose(0, 1, 2, 5, 3, 4)  # (4b, 4a, n, F, t, tw)
        if top + 4 * t <= h and w == 4 * tw:                 # whole tiles: one copy
            y[:, :, top:top + 4 * t].reshape(n, f, t, 4, tw, 4)[...] = out.transpose(
                2, 3, 4, 1, 5, 0)
            return
        for a in range(4):
            for b in range(4):
                dest = y[:, :, top + a:top + 4 * t:4, b::4]  # (n, F, <= t, <= tw)
                dest[...] = out[b, a, :, :, :dest.shape[2], :dest.shape[3]]
        return
    # channels first: the last product transposed, so that b comes last and each of
    # the four output rows of a tile row is copied as whole runs of W' pixels
    half = view(work[0], (6, 4, size))                       # (6m, 4a, F * n * T)
    np.matmul(a_t, m.reshape(6, 6, size), out=half)
    out = view(work[1], (4 * size, 4))                       # (4a * F * n * T, 4b)
    np.matmul(half.reshape(6, -1).T, a_t.T, out=out)
    out = out.reshape(4, f, n, t, 4 * tw)                    # (4a, F, n, t, tw * 4b)
    for a in range(4):
        dest = y[:, :, top + a:top + 4 * t:4]                # (n, F, <= t, W')
        dest[...] = out[a, :, :, :dest.shape[2], :w].swapaxes(0, 1)


def output_adjoint(dy: np.ndarray, tw: int, rows: slice, work: list[np.ndarray]
                   ) -> np.ndarray:
    """A dY A^T (the adjoint of the output transform) for the tiles of tile rows
    ``rows``: dy (n, F, H', W') -> (36, n*T, F), channels last, in work[0] (work[1] is
    scratch); zero beyond the edges."""
    n, f, h, w = dy.shape
    t = rows.stop - rows.start
    top = 4 * rows.start
    a = A_T.T.astype(dy.dtype)                               # (6, 4)
    pieces = view(work[0], (4, 4, n, t, tw, f))              # (4b, 4a, n, t, tw, F)
    if top + 4 * t <= h and w == 4 * tw:                     # whole tiles: one copy
        pieces[...] = dy[:, :, top:top + 4 * t].reshape(n, f, t, 4, tw, 4).transpose(
            5, 3, 0, 2, 4, 1)
    else:
        for i in range(4):
            for j in range(4):
                part = dy[:, :, top + i:top + 4 * t:4, j::4]   # (n, F, <= t, <= tw)
                dest = pieces[j, i]
                dest[:, :part.shape[2], :part.shape[3]] = part.transpose(0, 2, 3, 1)
                dest[:, part.shape[2]:] = 0
                dest[:, :, part.shape[3]:] = 0
    half = view(work[1], (4, 6, n * t * tw * f))             # (4b, 6k, n * T * F)
    np.matmul(a, pieces.reshape(4, 4, -1), out=half)
    dm = view(work[0], (36, n * t * tw, f))                  # (6m, 6k, n * T * F)
    np.matmul(a, half.reshape(4, -1), out=dm.reshape(6, -1))
    return dm
