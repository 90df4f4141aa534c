"""Winograd F(4x4, 3x3): a 3x3 stride-1 2-D convolution in 36 multiplications per 4x4 tile.

Direct convolution spends 144 multiply-adds per input channel on a 4x4 tile of outputs;
F(2x2, 3x3) (:mod:`.winograd`) spends 16 per 2x2 tile (64 per 16 outputs), this one 36.
Each input channel's tile is transformed into 36 numbers for 16 outputs (F(2x2)'s: 16 for
4), so the transforms also touch fewer numbers per output.

Derivation (Cook-Toom; Lavin and Gray's form for correlation). The product c(t) = a(t) g(t)
of a cubic a (4 coefficients) and a quadratic g (3) has 6 coefficients: it is fixed by its
values at the 5 points 0, 1, -1, 2, -2 and its leading coefficient (the point at infinity),
each one multiplication a(p) g(p). With E_k (6 x k) the evaluation at those points (row p:
1, p, p^2, ...; infinity: the last coefficient) and V = E_6, linear convolution is
c = V^-1 [(E_3 g) * (E_4 a)]. Correlation, y_i = sum_k g_k d_(i+k) (i < 4), is its
transpose in a: y = E_4^T [(E_3 g) * (V^-T d)]. Moving each row's factor of V^-T
(1/4, -1/6, -1/6, 1/24, 1/24, 1) into E_3 leaves B^T with integer entries:

    B^T = [4  0 -5  0  1  0]     G = [ 1/4     0     0  ]     A^T = [1  1  1  1  1  0]
          [0 -4 -4  1  1  0]         [-1/6  -1/6  -1/6  ]           [0  1 -1  2 -2  0]
          [0  4 -4 -1  1  0]         [-1/6   1/6  -1/6  ]           [0  1  1  4  4  0]
          [0 -2 -1  2  1  0]         [ 1/24  1/12  1/6  ]           [0  1 -1  8 -8  1]
          [0  2 -1 -2  1  0]         [ 1/24 -1/12  1/6  ]
          [0  4  0 -5  0  1]         [ 0     0     1    ]

    y = A^T [(G g) * (B^T d)]        d: 6 inputs, g: 3 taps, y: 4 outputs

(tests/test_winograd4.py checks these against the direct sum). In two dimensions
Y = A^T [U * V] A with U = G g G^T and V = B^T d B (6x6 each); summed over input channels
each of the 36 elementwise products is one matrix product, as in :mod:`.winograd`:

    M[p] (G, n*T, F/G) = V[p] (G, n*T, C/G) @ U[p] (G, C/G, F/G)     T tiles a sample

Each transform is two small matrix products on BLAS, (6 x 6) @ (6, everything): the six
overlapping rows (then columns) of every tile are first gathered, channels last, into
one array. The stored order of the 36 is p = 6 m + k, k the row and m the column of the
6x6 tile transform. The gradients:

* dx: the forward correlation of the padded dy with the rotated filters
  (docs/math.md#the-input-gradient-dx), itself a 3x3 stride-1 correlation;
* dw: the adjoint of the products and the filter transform,
  dU[p] = sum over tiles V[p]^T @ (A dY A^T)[p], and dw = G^T dU G.

Applies where :mod:`.winograd` does (2-D, 3x3 kernel, stride 1, dilation 1; any padding,
groups, sizes: the last tiles are cut). Its rounding is larger than F(2x2)'s (the points
+-2 bring factors up to 8 into A^T and 1/24 into G): in float64 it stays ~1e-14 relative;
in float32 see BENCHMARKS.md. Non-finite values would spread through a whole 6x6 tile,
so calls whose inputs hold one are computed by the fast engine instead.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import ConvGeometry
from ..memory import plan_chunks
from . import fast
from .winograd import _finite, _grouped, _multiply, applies

__all__ = ["applies", "tiles", "forward", "grad_input", "grad_weight", "check_backward",
           "B_T", "G", "A_T"]

B_T = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)


def _require(g: ConvGeometry) -> None:
    if not applies(g):
        raise ValueError(
            f"algorithm='winograd4' applies to 2-D convolutions with a 3x3 kernel, stride 1 "
            f"and dilation 1; got a {g.nd}-D kernel {g.kernel_size}, stride {g.stride}, "
            f"dilation {g.dilation}: use algorithm='auto' or 'fast'")


def tiles(g: ConvGeometry) -> tuple[int, int]:
    """(th, tw): 4x4 output tiles per column and row, the last ones possibly cut."""
    return -(-g.out_size[0] // 4), -(-g.out_size[1] // 4)


def _filter_transform(w: np.ndarray, groups: int) -> np.ndarray:
    """U = G w G^T: (F, C/G, 3, 3) -> (36, G, C/G, F/G) (a transposed view), in the order
    p = 6 m + k, ready to multiply tiles (n*T, C/G)."""
    f, c = w.shape[:2]
    g_mat = G.astype(w.dtype)
    taps = np.ascontiguousarray(w.transpose(3, 2, 0, 1))    # (3s, 3r, F, C/G)
    half = np.matmul(g_mat, taps.reshape(3, -1))             # (6m, 3r * F * C/G)
    u = np.matmul(g_mat, half.reshape(6, 3, f * c))         # (6m, 6k, F * C/G)
    return u.reshape(36, groups, f // groups, c).swapaxes(2, 3)


def _rotated(w: np.ndarray, groups: int) -> np.ndarray:
    """The filters of dx's correlation: (F, C/G, 3, 3) -> (C, F/G, 3, 3), rotated 180
    degrees, input and output channels swapped within each group."""
    f, c = w.shape[:2]
    swapped = w.reshape(groups, f // groups, c, 3, 3).swapaxes(1, 2)  # (G, C/G, F/G, 3, 3)
    return swapped.reshape(groups * c, f // groups, 3, 3)[..., ::-1, ::-1]


class _Plan:
    """Chunks of the batch and the scratch a chunk needs (elements per sample, fixed)."""

    def __init__(self, g: ConvGeometry, what: str, extra_per_sample: int = 0,
                 fixed: int = 0):
        th, tw = self.tiles = tiles(g)
        t = th * tw
        c, f = g.in_channels, g.out_channels
        cols = 4 * tw + 2
        padded = c * (4 * th + 2) * cols                    # xp
        rows = 2 * 6 * c * th * cols                         # gathered rows, transformed
        per_sample = padded + rows + 2 * 36 * c * t + 36 * f * t + extra_per_sample
        itemsize = g.dtype.itemsize
        filters = 2 * 36 * f * (c // g.groups)               # U and G w on the way
        step = plan_chunks(g.batch, per_sample * itemsize, what,
                           fixed_bytes=(fixed + filters) * itemsize,
                           preferred_bytes=_preferred_bytes(t, per_sample * itemsize))
        self.chunks = [slice(i, min(i + step, g.batch)) for i in range(0, g.batch, step)]


PREFERRED_ROWS = 256


def _preferred_bytes(tiles: int, per_sample: int) -> int:
    """Enough samples that each of the 36 products has ~PREFERRED_ROWS rows, at most
    32 MiB."""
    samples = -(-PREFERRED_ROWS // max(tiles, 1))
    return min(samples * per_sample, 32 * 2**20)


def _input_transform(x: np.ndarray, g: ConvGeometry, tiles) -> np.ndarray:
    """V = B^T d B for every tile: x (n, C, H, W) -> (36, n*T, C), channels last.

    The input is copied channels-last and zero-padded, xp (n, rows, cols, C); the six
    rows of every tile gathered (6, n, th, cols, C) and transformed by one product with
    B^T, then the same along the columns.
    """
    n, c = x.shape[:2]
    th, tw = tiles
    (top, _), (left, _) = g.padding
    rows, cols = 4 * th + 2, 4 * tw + 2
    b_t = B_T.astype(x.dtype)
    xp = np.zeros((n, rows, cols, c), dtype=x.dtype)        # xp[r, s] = x[r - top, s - left]
    r0, r1 = max(0, top), min(rows, g.in_size[0] + top)
    c0, c1 = max(0, left), min(cols, g.in_size[1] + left)
    if r1 > r0 and c1 > c0:
        xp[:, r0:r1, c0:c1] = x[:, :, r0 - top:r1 - top, c0 - left:c1 - left].transpose(
            0, 2, 3, 1)
    d = np.empty((6, n, th, cols, c), dtype=x.dtype)        # row r of every tile
    for r in range(6):
        d[r] = xp[:, r:r + 4 * th - 3:4]
    del xp
    slab = np.matmul(b_t, d.reshape(6, -1))                  # (6k, n * th * cols * C)
    slab = slab.reshape(6, n, th, cols, c)
    e = np.empty((6, 6, n, th, tw, c), dtype=x.dtype)       # column s of every row k
    for s in range(6):
        e[s] = slab[:, :, :, s:s + 4 * tw - 3:4]
    del slab, d
    v = np.matmul(b_t, e.reshape(6, -1))                     # (6m, 6k * n * T * C)
    return v.reshape(36, n * th * tw, c)


def _output_transform(m: np.ndarray, y: np.ndarray, tiles) -> None:
    """y (n, F, H', W') = A^T M A for every tile, M (36, n*T, F); cut at the edges."""
    n, f = y.shape[:2]
    th, tw = tiles
    a_t = A_T.astype(m.dtype)
    half = np.matmul(a_t, m.reshape(6, -1))                  # (4b, 6k * n * T * F)
    out = np.matmul(a_t, half.reshape(4, 6, -1))             # (4b, 4a, n * T * F)
    out = out.reshape(4, 4, n, th, tw, f)
    h, w = y.shape[2:]
    if h == 4 * th and w == 4 * tw:                          # whole tiles: one copy
        y.reshape(n, f, th, 4, tw, 4)[...] = out.transpose(2, 5, 3, 1, 4, 0)
        return
    for a in range(4):
        for b in range(4):
            dest = y[:, :, a::4, b::4]                       # (n, F, <= th, <= tw)
            dest[...] = out[b, a, :, :dest.shape[2], :dest.shape[3]].transpose(0, 3, 1, 2)


def _output_adjoint(dy: np.ndarray, tiles) -> np.ndarray:
    """A dY A^T for every tile: dy (n, F, H', W') -> (36, n*T, F); zero beyond the edges."""
    n, f, h, w = dy.shape
    th, tw = tiles
    a = A_T.T.astype(dy.dtype)                               # (6, 4)
    if h == 4 * th and w == 4 * tw:
        t = np.ascontiguousarray(dy.reshape(n, f, th, 4, tw, 4).transpose(5, 3, 0, 2, 4, 1))
    else:
        t = np.zeros((4, 4, n, th, tw, f), dtype=dy.dtype)  # (4b, 4a, n, th, tw, F)
        for i in range(4):
            for j in range(4):
                part = dy[:, :, i::4, j::4]                  # (n, F, <= th, <= tw)
                t[j, i, :, :part.shape[2], :part.shape[3]] = part.transpose(0, 2, 3, 1)
    half = np.matmul(a, t.reshape(4, 4, -1))                 # (4b, 6k, n * T * F)
    dm = np.matmul(a, half.reshape(4, -1))                   # (6m, 6k * n * T * F)
    return dm.reshape(36, n * th * tw, f)


def _forward_plan(g: ConvGeometry, what: str, held: int = 0) -> _Plan:
    """Scratch besides the transforms: A^T M's two steps (40 x F x T a sample);
    ``held`` elements more (dx: the rotated filters' transform)."""
    return _Plan(g, what, extra_per_sample=40 * g.out_channels * math.prod(tiles(g)),
                 fixed=held)


def _weight_plan(g: ConvGeometry) -> _Plan:
    """Scratch besides the transforms: dy gathered by tile and the two steps of its
    transform (16 + 24 + 36 x F x T a sample); the product and the running sum of dU."""
    return _Plan(g, "the weight gradient",
                 extra_per_sample=76 * g.out_channels * math.prod(tiles(g)),
                 fixed=2 * 36 * g.out_channels * (g.in_channels // g.groups))


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass") -> np.ndarray:
    """y = x correlated with w: (N, C, H, W) x (F, C/G, 3, 3) -> (N, F, H', W')."""
    _require(g)
    if not _finite(x, w):
        return fast.forward(x, w, g, what)
    return _correlate(x, _filter_transform(w, g.groups), g, what)


def _correlate(x: np.ndarray, u: np.ndarray, g: ConvGeometry, what: str,
               held: int = 0) -> np.ndarray:
    """The forward pass with the filters already transformed, u (36, G, C/G, F/G)."""
    plan = _forward_plan(g, what, held)
    y = np.empty(g.y_shape, dtype=g.dtype)
    for chunk in plan.chunks:
        v = _input_transform(x[chunk], g, plan.tiles)       # (36, n*T, C)
        m = _multiply(v, u, g.groups)                       # (36, n*T, F)
        del v
        _output_transform(m, y[chunk], plan.tiles)
    return y


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: dy (N, F, H', W') correlated with the rotated filters -> (N, C, H, W)."""
    _require(g)
    if not _finite(dy, w):
        return fast.grad_input(dy, w, g)
    u = _filter_transform(_rotated(w, g.groups), g.groups)  # (36, G, F/G, C/G)
    return _correlate(dy, u, fast._swapped_geometry(g), "the input gradient", held=u.size)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw = G^T [sum over tiles V^T (A dY A^T)] G: -> (F, C/G, 3, 3)."""
    _require(g)
    if not _finite(dy, x):
        return fast.grad_weight(dy, x, g)
    plan = _weight_plan(g)
    groups, c_g, f_g = g.groups, g.in_channels // g.groups, g.out_channels // g.groups
    du = np.zeros((36, groups, c_g, f_g), dtype=g.dtype)
    for chunk in plan.chunks:
        v = _grouped(_input_transform(x[chunk], g, plan.tiles), groups)   # (36, G, nT, C/G)
        dm = _grouped(_output_adjoint(dy[chunk], plan.tiles), groups)     # (36, G, nT, F/G)
        du += np.matmul(v.swapaxes(-1, -2), dm)             # (36, G, C/G, F/G)
    g_t = G.T.astype(g.dtype)                                # (3, 6)
    du = np.ascontiguousarray(du.swapaxes(2, 3)).reshape(6, 6, -1)      # (6m, 6k, F * C/G)
    half = np.matmul(g_t, du)                                # (6m, 3r, F * C/G)
    dw = np.matmul(g_t, half.reshape(6, -1))                 # (3s, 3r * F * C/G)
    dw = dw.reshape(3, 3, g.out_channels, c_g)               # (3s, 3r, F, C/G)
    return np.ascontiguousarray(dw.transpose(2, 3, 1, 0))   # (F, C/G, 3, 3)


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """Plan dw's and dx's scratch (MemoryError naming the size) before computing either;
    also the fast engine's, which non-finite inputs are computed by."""
    _require(g)
    fast.check_backward(g, transposed)
    _weight_plan(g)
    if transposed:
        _forward_plan(g, "the forward pass")
    else:
        _forward_plan(fast._swapped_geometry(g), "the input gradient",
                      held=36 * g.out_channels * (g.in_channels // g.groups))
