"""The tile transforms of Winograd F(m x m, 3x3) (:mod:`.winograd_mxm`), in two layouts,
and the Cook-Toom matrices they multiply by.

An alpha x alpha tile of the input (alpha = m + 2) gives an m x m tile of the output.
Each 1-D transform is one small matrix product on BLAS, (alpha x alpha) or (m x alpha)
times (alpha, everything): the alpha rows (then the alpha columns) of every tile are
first gathered into one array. A block is the tiles of tile rows ``rows`` of n samples,
T = t x tw of them a sample; the alpha^2 transformed values are stored in the order
p = alpha q + k (k the row, q the column of the tile). Two layouts, chosen per geometry
by measurement:

* channels first, V (alpha^2, C, n*T): the gathers copy runs of pixels, as x lies, and
  the last output product is computed transposed so that y's rows are written as whole
  runs (F(4x4) on W3, 64 channels of 56x56: 0.87x the time of channels last);
* channels last, V (alpha^2, n*T, C): one transposing copy out of x, then runs of
  channels; its products, (n*T, C) @ (C, F), run faster with 256 channels and more (W4:
  0.82x the time of channels first). dw runs channels last.

The results land in flat buffers ``work`` allocated once per call (alpha^2 x max(C, F)
elements a tile each), which the stages take turns to fill.
"""
from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["Tiling", "cook_toom", "view", "input_transform", "multiply", "output_transform",
           "output_adjoint"]


def _evaluation(points, n: int) -> list:
    """E_n (alpha x n): row p the powers of point p (Fractions); the last row picks the
    leading coefficient (the point at infinity)."""
    from fractions import Fraction      # here: import convgrad stays light
    return ([[Fraction(p) ** j for j in range(n)] for p in points]
            + [[Fraction(0)] * (n - 1) + [Fraction(1)]])


def _inverse(matrix: list) -> list:
    """Exact Gauss-Jordan inverse of a square matrix of Fractions."""
    from fractions import Fraction
    n = len(matrix)
    a = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if a[r][col] != 0)
        a[col], a[pivot] = a[pivot], a[col]
        a[col] = [v / a[col][col] for v in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                a[r] = [v - a[r][col] * u for v, u in zip(a[r], a[col])]
    return [row[n:] for row in a]


def cook_toom(points, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B^T, G, A^T) of F(m, 3) from alpha - 1 = m + 1 finite points (and infinity):
    A^T = E_m^T, G = E_3 and B^T = V^-T (V = E_alpha), each row of B^T then scaled to
    the smallest integers (the least common multiple of its denominators over the
    greatest common divisor of the numerators) and G's row divided by the same factor
    (:mod:`.winograd4` derives it)."""
    from fractions import Fraction
    alpha = m + 2
    if len(points) != alpha - 1 or len(set(map(Fraction, points))) != alpha - 1:
        raise ValueError(f"F({m}, 3) needs {alpha - 1} distinct points; got {points}")
    b_t = [list(col) for col in zip(*_inverse(_evaluation(points, alpha)))]
    g = _evaluation(points, 3)
    for k in range(alpha):
        scale = Fraction(math.lcm(*[v.denominator for v in b_t[k]]))
        scale /= math.gcd(*[(v * scale).numerator for v in b_t[k]])
        b_t[k] = [v * scale for v in b_t[k]]
        g[k] = [v / scale for v in g[k]]
    a_t = [list(col) for col in zip(*_evaluation(points, m))]
    return tuple(np.array(mat, dtype=np.float64) for mat in (b_t, g, a_t))


class Tiling:
    """F(m x m, 3x3) at the given points (ints or strings such as '1/2'): tile sizes,
    and the matrices, built on first use."""

    def __init__(self, m: int, points: tuple):
        self.m, self.alpha, self.points = m, m + 2, tuple(points)

    @functools.cached_property
    def _matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        matrices = cook_toom(self.points, self.m)
        for value in matrices:
            value.flags.writeable = False
        return matrices

    @property
    def b_t(self) -> np.ndarray:
        """B^T (alpha x alpha)."""
        return self._matrices[0]

    @property
    def g(self) -> np.ndarray:
        """G (alpha x 3)."""
        return self._matrices[1]

    @property
    def a_t(self) -> np.ndarray:
        """A^T (m x alpha)."""
        return self._matrices[2]


def view(buffer: np.ndarray, shape) -> np.ndarray:
    """The first prod(shape) elements of a flat buffer, as an array of that shape."""
    return buffer[:math.prod(shape)].reshape(shape)


def input_transform(x: np.ndarray, padding, tw: int, rows: slice, work: list[np.ndarray],
                    channels_last: bool, tiling: Tiling) -> np.ndarray:
    """V = B^T d B for the tiles of tile rows ``rows``: x (n, C, H, W) -> (alpha^2, C, n*T),
    or (alpha^2, n*T, C) ``channels_last``, in work[1] (work[0] is scratch).

    ``padding`` ((top, _), (left, _)) places x in the zero-padded input xp; tile (i, j)
    reads xp[m i : m i + alpha, m j : m j + alpha]. The alpha rows of every tile are
    gathered, d (alpha, C, n, t, cols) (cols = m tw + 2; channels last (alpha, n, t, cols,
    C)), and multiplied by B^T; then the alpha columns, e (alpha, alpha, C, n, t, tw),
    likewise.
    """
    m, alpha = tiling.m, tiling.alpha
    n, c, h, w = x.shape
    t = rows.stop - rows.start
    (top, _), (left, _) = padding
    cols = m * tw + 2
    b_t = tiling.b_t.astype(x.dtype)
    c0, c1 = max(0, left), min(cols, w + left)               # padded columns that hold x
    inner = (n, t, cols, c) if channels_last else (c, n, t, cols)
    d = view(work[0], (alpha, *inner))                       # d[r][.., i, s] = xp[m i + r, s]
    for r in range(alpha):
        # tile row i reads input row m (rows.start + i) + r - top, when inside x
        first = m * rows.start + r - top
        lo = min(t, max(0, -(-(-first) // m)))               # first i with a row >= 0
        hi = max(lo, min(t, -(-(h - first) // m)))          # first i with a row >= h
        dest = d[r] if channels_last else d[r].transpose(1, 2, 3, 0)   # (n, t, cols, C)
        dest[:, :lo] = 0
        dest[:, hi:] = 0
        dest[:, lo:hi, :c0] = 0
        dest[:, lo:hi, c1:] = 0
        if hi > lo and c1 > c0:
            dest[:, lo:hi, c0:c1] = x[:, :, first + m * lo:first + m * (hi - 1) + 1:m,
                                      c0 - left:c1 - left].transpose(0, 2, 3, 1)
    slab = view(work[1], d.shape)                            # row k of B^T d
    np.matmul(b_t, d.reshape(alpha, -1), out=slab.reshape(alpha, -1))
    last = m * (tw - 1) + 1
    if channels_last:
        e = view(work[0], (alpha, alpha, n, t, tw, c))       # e[s, k] = slab[k][.., m j + s, :]
        for s in range(alpha):
            e[s] = slab[:, :, :, s:s + last:m]
        v = view(work[1], (alpha * alpha, n * t * tw, c))
    else:
        e = view(work[0], (alpha, alpha, c, n, t, tw))       # e[s, k] = slab[k][.., m j + s]
        for s in range(alpha):
            e[s] = slab[..., s:s + last:m]
        v = view(work[1], (alpha * alpha, c, n * t * tw))
    np.matmul(b_t, e.reshape(alpha, -1), out=v.reshape(alpha, -1))   # p = alpha q + k
    return v


def multiply(v: np.ndarray, u: np.ndarray, out: np.ndarray, channels_last: bool
             ) -> np.ndarray:
    """The alpha^2 products M[p] = U[p] V[p], u (alpha^2, G, F/G, C/G): v (alpha^2, C, n*T)
    -> (alpha^2, F, n*T), or v (alpha^2, n*T, C) -> (alpha^2, n*T, F) ``channels_last``;
    in ``out``."""
    k, groups, f_g, c_g = u.shape
    if channels_last:
        rows = v.shape[1]
        result = view(out, (k, rows, groups * f_g))
        np.matmul(v.reshape(k, rows, groups, c_g).swapaxes(1, 2), u.swapaxes(2, 3),
                  out=result.reshape(k, rows, groups, f_g).swapaxes(1, 2))
    else:
        cols = v.shape[2]
        result = view(out, (k, groups * f_g, cols))
        np.matmul(u, v.reshape(k, groups, c_g, cols),
                  out=result.reshape(k, groups, f_g, cols))
    return result


def output_transform(prod: np.ndarray, y: np.ndarray, tw: int, rows: slice,
                     work: list[np.ndarray], channels_last: bool, tiling: Tiling) -> None:
    """Tile rows ``rows`` of y (n, F, H', W') = A^T M A for every tile, M = ``prod``
    (alpha^2, F, n*T) or (alpha^2, n*T, F) ``channels_last``; cut at the edges. work[0]
    must not hold M."""
    m, alpha = tiling.m, tiling.alpha
    n, f, h, w = y.shape
    t = rows.stop - rows.start
    top = m * rows.start
    size = prod[0].size                                      # F * n * T
    a_t = tiling.a_t.astype(prod.dtype)
    if channels_last:
        half = view(work[0], (m, alpha, size))               # (m b, alpha k, n * T * F)
        np.matmul(a_t, prod.reshape(alpha, -1), out=half.reshape(m, -1))
        out = view(work[1], (m, m, size))                    # (m b, m a, n * T * F)
        np.matmul(a_t, half, out=out)
        out = out.reshape(m, m, n, t, tw, f).transpose(0, 1, 2, 5, 3, 4)  # (b, a, n, F, t, tw)
        if top + m * t <= h and w == m * tw:                 # whole tiles: one copy
            y[:, :, top:top + m * t].reshape(n, f, t, m, tw, m)[...] = out.transpose(
                2, 3, 4, 1, 5, 0)
            return
        for a in range(m):
            for b in range(m):
                dest = y[:, :, top + a:top + m * t:m, b::m]  # (n, F, <= t, <= tw)
                dest[...] = out[b, a, :, :, :dest.shape[2], :dest.shape[3]]
        return
    # channels first: the last product transposed, so that b comes last and each of
    # the m output rows of a tile row is copied as whole runs of W' pixels
    half = view(work[0], (alpha, m, size))                   # (alpha q, m a, F * n * T)
    np.matmul(a_t, prod.reshape(alpha, alpha, size), out=half)
    out = view(work[1], (m * size, m))                       # (m a * F * n * T, m b)
    np.matmul(half.reshape(alpha, -1).T, a_t.T, out=out)
    out = out.reshape(m, f, n, t, m * tw)                    # (a, F, n, t, tw * m b)
    for a in range(m):
        dest = y[:, :, top + a:top + m * t:m]                # (n, F, <= t, W')
        dest[...] = out[a, :, :, :dest.shape[2], :w].swapaxes(0, 1)


def output_adjoint(dy: np.ndarray, tw: int, rows: slice, work: list[np.ndarray],
                   tiling: Tiling) -> np.ndarray:
    """A dY A^T (the adjoint of the output transform) for the tiles of tile rows
    ``rows``: dy (n, F, H', W') -> (alpha^2, n*T, F), channels last, in work[0] (work[1]
    is scratch); zero beyond the edges."""
    m, alpha = tiling.m, tiling.alpha
    n, f, h, w = dy.shape
    t = rows.stop - rows.start
    top = m * rows.start
    a = tiling.a_t.T.astype(dy.dtype)                        # (alpha, m)
    pieces = view(work[0], (m, m, n, t, tw, f))              # (b, a, n, t, tw, F)
    if top + m * t <= h and w == m * tw:                     # whole tiles: one copy
        pieces[...] = dy[:, :, top:top + m * t].reshape(n, f, t, m, tw, m).transpose(
            5, 3, 0, 2, 4, 1)
    else:
        for i in range(m):
            for j in range(m):
                part = dy[:, :, top + i:top + m * t:m, j::m]   # (n, F, <= t, <= tw)
                dest = pieces[j, i]
                dest[:, :part.shape[2], :part.shape[3]] = part.transpose(0, 2, 3, 1)
                dest[:, part.shape[2]:] = 0
                dest[:, :, part.shape[3]:] = 0
    half = view(work[1], (m, alpha, n * t * tw * f))         # (b, alpha k, n * T * F)
    np.matmul(a, pieces.reshape(m, m, -1), out=half)
    dm = view(work[0], (alpha * alpha, n * t * tw, f))       # (alpha q, alpha k, n * T * F)
    np.matmul(a, half.reshape(m, -1), out=dm.reshape(alpha, -1))
    return dm
