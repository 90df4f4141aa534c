"""Winograd F(2x2, 3x3): a 3x3 stride-1 2-D convolution in 16 multiplications per 2x2 tile.

Direct convolution spends 36 multiply-adds per input channel on a 2x2 tile of outputs;
Winograd's minimal filtering (Lavin and Gray's formulation for correlation) spends 16, at
the price of additions that transform the tiles. In one dimension, outputs y (2) from
inputs d (4) and filter g (3):

    y = A^T [(G g) * (B^T d)]        * elementwise

    B^T = [1  0 -1  0]     G = [1    0    0 ]     A^T = [1  1  1  0]
          [0  1  1  0]         [1/2  1/2  1/2]          [0  1 -1 -1]
          [0 -1  1  0]         [1/2 -1/2  1/2]
          [0  1  0 -1]         [0    0    1 ]

and in two, Y = A^T [U * V] A with U = G g G^T and V = B^T d B (4x4 each). Summed over
input channels, each of the 16 elementwise products becomes one matrix product:

    M[ij] (G, F/G, n*T) = U[ij] (G, F/G, C/G) @ V[ij] (G, C/G, n*T)     T tiles a sample

which is where the time goes when C and F are large (2.25x fewer multiply-adds than
im2col + GEMM); the transforms are a few additions per element, done on whole strided
views of the batch at once. The gradients are the same machinery:

* dx: the forward correlation of the padded dy with the rotated filters
  (docs/math.md#the-input-gradient-dx),
  itself a 3x3 stride-1 correlation;
* dw: the adjoint of the products and the filter transform,
  dU[ij] = sum over tiles (A dY A^T)[ij] @ V[ij]^T, and dw = G^T dU G.

Applies to 2-D convolutions with a 3x3 kernel, stride 1 and dilation 1 (any padding,
groups, sizes). Rounding differs from the direct method's (the transforms add terms of
both signs) but stays within float32's tolerance (tests/test_winograd.py). Non-finite
values would spread through a whole tile (where PyTorch keeps them to the outputs they
touch), so calls whose inputs hold one are computed by the fast engine instead.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import ConvGeometry
from ..memory import plan_chunks
from . import fast

__all__ = ["applies", "tiles", "forward", "grad_input", "grad_weight", "fits", "check_backward"]

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def applies(g: ConvGeometry) -> bool:
    """2-D, 3x3 kernel, stride 1, dilation 1."""
    return (g.nd == 2 and g.kernel_size == (3, 3) and g.stride == (1, 1)
            and g.dilation == (1, 1))


def _require(g: ConvGeometry) -> None:
    if not applies(g):
        raise ValueError(
            f"algorithm='winograd' applies to 2-D convolutions with a 3x3 kernel, stride 1 "
            f"and dilation 1; got a {g.nd}-D kernel {g.kernel_size}, stride {g.stride}, "
            f"dilation {g.dilation}: use algorithm='auto' or 'fast'")


def _finite(*arrays) -> bool:
    """Whether every value is finite (an overflowing sum counts as not: the safe side)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(np.isfinite(a.sum()) for a in arrays)


def tiles(g: ConvGeometry) -> tuple[int, int]:
    """(th, tw): 2x2 output tiles per column and row, the last ones possibly cut."""
    return -(-g.out_size[0] // 2), -(-g.out_size[1] // 2)


def _g_rows(w0, w1, w2, out):
    """The four rows of G applied to (w0, w1, w2): w0, (w0+w1+w2)/2, (w0-w1+w2)/2, w2."""
    out[0] = w0
    np.add(w0, w2, out=out[1])
    out[1] *= 0.5
    np.subtract(out[1], w1 * 0.5, out=out[2])
    out[1] += w1 * 0.5
    out[3] = w2


def _filter_transform(w: np.ndarray, groups: int) -> np.ndarray:
    """U = G w G^T: (F, C/G, 3, 3) -> (16, G, C/G, F/G) (a transposed view), ready to
    multiply tiles (n*T, C/G).

    G's entries are 0, 1 and 1/2: a few additions on whole (F, C/G) planes of w.
    """
    f, c = w.shape[:2]
    rows = np.empty((4, f, c, 3), dtype=w.dtype)            # G w, by kernel row
    _g_rows(w[:, :, 0], w[:, :, 1], w[:, :, 2], rows)
    u = np.empty((4, 4, f, c), dtype=w.dtype)               # (G w) G^T
    for i in range(4):
        _g_rows(rows[i, ..., 0], rows[i, ..., 1], rows[i, ..., 2], u[i])
    return u.reshape(16, groups, f // groups, c).swapaxes(2, 3)


class _Plan:
    """Chunks of the batch and the scratch a chunk needs (elements per sample, fixed)."""

    def __init__(self, g: ConvGeometry, what: str, extra_per_sample: int = 0,
                 fixed: int = 0):
        th, tw = self.tiles = tiles(g)
        self.g = g
        t = th * tw
        c, f = g.in_channels, g.out_channels
        padded = c * (2 * th + 2) * (2 * tw + 2)            # xp
        rows = c * th * (2 * tw + 2)                        # one row-transformed slab
        per_sample = padded + rows + 16 * c * t + 16 * f * t + extra_per_sample
        itemsize = g.dtype.itemsize
        filters = 28 * f * (c // g.groups)                  # U and G w on the way
        step = plan_chunks(g.batch, per_sample * itemsize, what,
                           fixed_bytes=(fixed + filters) * itemsize,
                           preferred_bytes=_preferred_bytes(c // g.groups, t,
                                                            per_sample * itemsize))
        self.chunks = [slice(i, min(i + step, g.batch)) for i in range(0, g.batch, step)]


def _preferred_bytes(channels: int, tiles: int, per_sample: int) -> int:
    """Enough samples that each of the 16 products has ~256 columns, at most 32 MiB:
    measured best on W4 and 128-channel layers (BENCHMARKS.md); more columns were up to
    1.4x slower (the chunk's transforms no longer stay in the cache)."""
    samples = -(-256 // max(tiles, 1))
    return min(samples * per_sample, 32 * 2**20)


def _input_transform(x: np.ndarray, g: ConvGeometry, tiles) -> np.ndarray:
    """V = B^T d B for every tile: x (n, C, H, W) -> (16, n*T, C), channels last.

    The tiles' input is first copied channels-last and zero-padded, xp (n, rows, cols, C),
    so that every addition of the transform runs over contiguous channels.
    """
    n, c = x.shape[:2]
    th, tw = tiles
    (top, _), (left, _) = g.padding
    rows, cols = 2 * th + 2, 2 * tw + 2
    xp = np.zeros((n, rows, cols, c), dtype=x.dtype)        # xp[r, s] = x[r - top, s - left]
    r0, r1 = max(0, top), min(rows, g.in_size[0] + top)
    c0, c1 = max(0, left), min(cols, g.in_size[1] + left)
    if r1 > r0 and c1 > c0:
        xp[:, r0:r1, c0:c1] = x[:, :, r0 - top:r1 - top, c0 - left:c1 - left].transpose(
            0, 2, 3, 1)
    v = np.empty((16, n, th, tw, c), dtype=x.dtype)
    d = [xp[:, r:r + 2 * th - 1:2] for r in range(4)]       # (n, th, cols, C)
    slab = np.empty((n, th, cols, c), dtype=x.dtype)
    for k, (a, sign, b) in enumerate(_B_ROWS):
        _combine(d[a], sign, d[b], slab)                    # row k of B^T d
        e = [slab[:, :, s:s + 2 * tw - 1:2] for s in range(4)]  # (n, th, tw, C)
        for m, (p, sign2, q) in enumerate(_B_ROWS):         # column m of (B^T d) B
            _combine(e[p], sign2, e[q], v[4 * k + m])
    return v.reshape(16, n * th * tw, c)


# Row k of B^T as (a, sign, b): B^T d row k = d[a] + sign * d[b].
_B_ROWS = ((0, -1, 2), (1, 1, 2), (2, -1, 1), (1, -1, 3))


def _combine(a, sign, b, out):
    if sign > 0:
        np.add(a, b, out=out)
    else:
        np.subtract(a, b, out=out)


def _output_transform(m: np.ndarray, y: np.ndarray, tiles) -> None:
    """y (n, F, H', W') = A^T M A for every tile, M (16, n, th, tw, F); cut at the edges."""
    m = m.reshape(4, 4, *m.shape[1:])                       # (4, 4, n, th, tw, F)
    row = np.empty((4,) + m.shape[2:], dtype=m.dtype)       # one row of A^T M
    out = np.empty(m.shape[2:], dtype=m.dtype)
    for a in range(2):                                      # A^T rows: [1 1 1 0], [0 1 -1 -1]
        for j in range(4):
            if a == 0:
                np.add(m[0, j], m[1, j], out=row[j])
                row[j] += m[2, j]
            else:
                np.subtract(m[1, j], m[2, j], out=row[j])
                row[j] -= m[3, j]
        for b in range(2):
            dest = y[:, :, a::2, b::2]                      # (n, F, <= th, <= tw)
            if b == 0:
                np.add(row[0], row[1], out=out)
                out += row[2]
            else:
                np.subtract(row[1], row[2], out=out)
                out -= row[3]
            dest[...] = out[:, :dest.shape[2], :dest.shape[3]].transpose(0, 3, 1, 2)


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """(16, M, C) -> (16, G, M, C/G), a view."""
    k, m, c = a.shape
    return a.reshape(k, m, groups, c // groups).transpose(0, 2, 1, 3)


def _multiply(v: np.ndarray, u: np.ndarray, groups: int) -> np.ndarray:
    """M = V @ U for each of the 16 products: (16, n*T, C) x (16, G, C/G, F/G) -> (16, n*T, F)."""
    k, m = v.shape[:2]
    f = u.shape[1] * u.shape[3]
    out = np.empty((k, m, f), dtype=v.dtype)
    np.matmul(_grouped(v, groups), u, out=_grouped(out, groups))
    return out


def _forward_plan(g: ConvGeometry, what: str, held: int = 0) -> _Plan:
    """Scratch besides the transforms: A^T M's rows and one output (5 x F x T a sample);
    ``held`` elements more (dx: the rotated filters' transform)."""
    return _Plan(g, what, extra_per_sample=5 * g.out_channels * math.prod(tiles(g)),
                 fixed=held)


def _weight_plan(g: ConvGeometry) -> _Plan:
    """Scratch besides the transforms: dy padded to whole tiles and its row-transformed
    slab (6 x F x T a sample); the product and the running sum of dU (16 x F x C/G each)."""
    return _Plan(g, "the weight gradient", extra_per_sample=6 * g.out_channels
                 * math.prod(tiles(g)), fixed=2 * 16 * g.out_channels * (g.in_channels // g.groups))


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass") -> np.ndarray:
    """y = x correlated with w: (N, C, H, W) x (F, C/G, 3, 3) -> (N, F, H', W')."""
    _require(g)
    if not _finite(x, w):
        return fast.forward(x, w, g, what)
    return _correlate(x, _filter_transform(w, g.groups), g, what)


def _correlate(x: np.ndarray, u: np.ndarray, g: ConvGeometry, what: str,
               held: int = 0) -> np.ndarray:
    """The forward pass with the filters already transformed, u (16, G, C/G, F/G)."""
    plan = _forward_plan(g, what, held)
    y = np.empty(g.y_shape, dtype=g.dtype)
    for chunk in plan.chunks:
        v = _input_transform(x[chunk], g, plan.tiles)       # (16, n*T, C)
        m = _multiply(v, u, g.groups)                       # (16, n*T, F)
        n = chunk.stop - chunk.start
        _output_transform(m.reshape(16, n, *plan.tiles, g.out_channels), y[chunk],
                          plan.tiles)
    return y


def _swapped(g: ConvGeometry) -> ConvGeometry:
    return fast._swapped_geometry(g)


# The filters rotated 180 degrees: G J = P G, J reversing the 3 taps and P swapping rows
# 0 and 3 of G, so their transform is U's with indices 0 and 3 swapped in both i and j.
_ROTATED = [4 * [3, 1, 2, 0][i] + [3, 1, 2, 0][j] for i in range(4) for j in range(4)]


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: dy (N, F, H', W') correlated with the rotated filters -> (N, C, H, W)."""
    _require(g)
    if not _finite(dy, w):
        return fast.grad_input(dy, w, g)
    u = _filter_transform(w, g.groups)                      # (16, G, C/G, F/G)
    rotated = u[_ROTATED].swapaxes(2, 3)                    # (16, G, F/G, C/G): F, C swap
    return _correlate(dy, rotated, _swapped(g), "the input gradient", held=u.size)


def _output_adjoint(dy: np.ndarray, g: ConvGeometry, tiles) -> np.ndarray:
    """A dY A^T for every tile: dy (n, F, H', W') -> (16, n*T, F); zero beyond the edges.

    A = [[1, 0], [1, 1], [1, -1], [0, -1]]: a pair (p, q) becomes (p, p + q, p - q, -q),
    first down the columns of each 2x2 tile, then along its rows.
    """
    n, f = dy.shape[:2]
    th, tw = tiles
    dyp = np.zeros((n, 2 * th, 2 * tw, f), dtype=dy.dtype)  # channels last, whole tiles
    dyp[:, :g.out_size[0], :g.out_size[1]] = dy.transpose(0, 2, 3, 1)
    out = np.empty((16, n, th, tw, f), dtype=dy.dtype)
    top, bottom = dyp[:, 0::2], dyp[:, 1::2]                # (n, th, 2*tw, F)
    slab = np.empty((n, th, 2 * tw, f), dtype=dy.dtype)
    for k in range(4):                                      # row k of A dY
        if k == 0:
            slab[...] = top
        elif k == 1:
            np.add(top, bottom, out=slab)
        elif k == 2:
            np.subtract(top, bottom, out=slab)
        else:
            np.negative(bottom, out=slab)
        p, q = slab[:, :, 0::2], slab[:, :, 1::2]           # (n, th, tw, F)
        out[4 * k] = p
        np.add(p, q, out=out[4 * k + 1])
        np.subtract(p, q, out=out[4 * k + 2])
        np.negative(q, out=out[4 * k + 3])
    return out.reshape(16, n * th * tw, f)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw = G^T [sum over tiles V^T (A dY A^T)] G: -> (F, C/G, 3, 3)."""
    _require(g)
    if not _finite(dy, x):
        return fast.grad_weight(dy, x, g)
    plan = _weight_plan(g)
    du = np.zeros((16, g.groups, g.in_channels // g.groups, g.out_channels // g.groups),
                  dtype=g.dtype)
    for chunk in plan.chunks:
        v = _grouped(_input_transform(x[chunk], g, plan.tiles), g.groups)   # (16, G, nT, C/G)
        dm = _grouped(_output_adjoint(dy[chunk], g, plan.tiles), g.groups)  # (16, G, nT, F/G)
        du += np.matmul(v.swapaxes(-1, -2), dm)             # (16, G, C/G, F/G)
    g_mat = _G.astype(g.dtype)
    du = du.transpose(0, 2, 1, 3).reshape(4, 4, g.in_channels // g.groups,
                                          g.out_channels)                  # (4, 4, C/G, F)
    dw = np.matmul(np.matmul(g_mat.T, du.transpose(3, 2, 0, 1)), g_mat)   # (F, C/G, 3, 3)
    return np.ascontiguousarray(dw)


def fits(g: ConvGeometry, op: str) -> bool:
    """Whether map ``op`` ('forward', 'grad_input' or 'grad_weight') of ``g`` fits the
    memory budget now, planned as the map plans it (nothing is allocated)."""
    try:
        if op == "forward":
            _forward_plan(g, "the forward pass")
        elif op == "grad_input":
            _forward_plan(_swapped(g), "the input gradient",
                          held=16 * g.out_channels * (g.in_channels // g.groups))
        else:
            _weight_plan(g)
    except MemoryError:
        return False
    return True


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """Plan dw's and dx's scratch (MemoryError naming the size) before computing either;
    also the fast engine's, which non-finite inputs are computed by."""
    _require(g)
    fast.check_backward(g, transposed)
    _weight_plan(g)
    if transposed:
        _forward_plan(g, "the forward pass")
    else:
        _forward_plan(_swapped(g), "the input gradient",
                      held=16 * g.out_channels * (g.in_channels // g.groups))
