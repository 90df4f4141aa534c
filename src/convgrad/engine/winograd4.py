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
from .winograd import _finite, applies

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
    """U = G w G^T: (F, C/G, 3, 3) -> (36, G, F/G, C/G), in the order p = 6 m + k."""
    f, c = w.shape[:2]
    g_mat = G.astype(w.dtype)
    taps = np.ascontiguousarray(w.transpose(3, 2, 0, 1))    # (3s, 3r, F, C/G)
    half = np.matmul(g_mat, taps.reshape(3, -1))             # (6m, 3r * F * C/G)
    u = np.matmul(g_mat, half.reshape(6, 3, f * c))         # (6m, 6k, F * C/G)
    return u.reshape(36, groups, f // groups, c)


def _rotated(w: np.ndarray, groups: int) -> np.ndarray:
    """The filters of dx's correlation: (F, C/G, 3, 3) -> (C, F/G, 3, 3), rotated 180
    degrees, input and output channels swapped within each group."""
    f, c = w.shape[:2]
    swapped = w.reshape(groups, f // groups, c, 3, 3).swapaxes(1, 2)  # (G, C/G, F/G, 3, 3)
    return swapped.reshape(groups * c, f // groups, 3, 3)[..., ::-1, ::-1]


class _Plan:
    """The blocks of tiles computed at once, and the scratch they share.

    A block is a run of whole tile rows: several samples, or some tile rows of one
    sample. Small blocks keep the transforms' buffers in the cache (W3, 64 channels:
    56 tiles a block take half the time per tile of 196); the products want enough rows
    (W4, 256 channels: 64 rows 0.65x the time per tile of 16). Every buffer is
    allocated once per call, as two arrays the stages take turns to fill
    (:func:`_buffers`), and reused for every block.
    """

    def __init__(self, g: ConvGeometry, what: str, per_tile: int, fixed: int = 0,
                 target_rows: int | None = None):
        th, tw = self.tiles = tiles(g)
        self.g = g
        itemsize = g.dtype.itemsize
        self.per_tile = per_tile
        rows = target_rows or _target_rows(g)
        step = plan_chunks(g.batch * th, per_tile * tw * itemsize, what,
                           fixed_bytes=fixed * itemsize,
                           preferred_bytes=max(1, -(-rows // tw)) * per_tile * tw * itemsize)
        if step >= th:                                       # whole samples
            q = step // th
            self.blocks = [(slice(i, min(i + q, g.batch)), slice(0, th))
                           for i in range(0, g.batch, q)]
        else:                                                # tile rows of one sample
            self.blocks = [(slice(n, n + 1), slice(i, min(i + step, th)))
                           for n in range(g.batch) for i in range(0, th, step)]
        most = max(((b[0].stop - b[0].start) * (b[1].stop - b[1].start)
                    for b in self.blocks), default=0)
        self.scratch = most * tw * per_tile                  # elements, all buffers


TARGET_BYTES = 2 * 2**20
MIN_ROWS = 64


def _target_rows(g: ConvGeometry) -> int:
    """Tiles a block: the two transform buffers (36 x max(C, F) a tile each) within
    TARGET_BYTES (this machine's L2), but at least MIN_ROWS rows for the products."""
    per_tile = 2 * 36 * max(g.in_channels, g.out_channels) * g.dtype.itemsize
    return max(MIN_ROWS, TARGET_BYTES // per_tile)


def _buffers(size: int, count: int, dtype) -> list[np.ndarray]:
    """``count`` flat scratch arrays of ``size`` elements."""
    return [np.empty(size, dtype=dtype) for _ in range(count)]


def _view(buffer: np.ndarray, shape) -> np.ndarray:
    """The first prod(shape) elements of a flat buffer, as an array of that shape."""
    return buffer[:math.prod(shape)].reshape(shape)


def _input_transform(x: np.ndarray, g: ConvGeometry, tiles, rows: slice,
                     work: list[np.ndarray]) -> np.ndarray:
    """V = B^T d B for the tiles in tile rows ``rows``: x (n, C, H, W) -> (36, C, n*T)
    in work[1] (work[0] is scratch; each holds 36 x C a tile).

    The six input rows of every tile are gathered, zero-padded, d (6, C, n, t, cols)
    (t tile rows, cols = 4 tw + 2), and transformed by one product with B^T; then the
    six columns of every tile, e (6, 6, C, n, t, tw), likewise. Channels stay before
    the pixels, as in x: a channels-last copy (every pixel's channels contiguous) took
    longer than all the rest of the transform (W3).
    """
    n, c, h, w = x.shape
    t = rows.stop - rows.start
    tw = tiles[1]
    (top, _), (left, _) = g.padding
    cols = 4 * tw + 2
    b_t = B_T.astype(x.dtype)
    c0, c1 = max(0, left), min(cols, w + left)               # padded columns that hold x
    d = _view(work[0], (6, c, n, t, cols))                   # d[r, .., i, s] = xp[4 i + r, s]
    for r in range(6):
        # tile row i reads input row 4 (rows.start + i) + r - top, when inside x
        first = 4 * rows.start + r - top
        lo = min(t, max(0, -(-(-first) // 4)))               # first i with a row >= 0
        hi = max(lo, min(t, -(-(h - first) // 4)))          # first i with a row >= h
        dest = d[r]                                          # (C, n, t, cols)
        dest[:, :, :lo] = 0
        dest[:, :, hi:] = 0
        dest[:, :, lo:hi, :c0] = 0
        dest[:, :, lo:hi, c1:] = 0
        if hi > lo and c1 > c0:
            dest[:, :, lo:hi, c0:c1] = x[:, :, first + 4 * lo:first + 4 * (hi - 1) + 1:4,
                                         c0 - left:c1 - left].swapaxes(0, 1)
    slab = _view(work[1], (6, c, n, t, cols))                # row k of B^T d
    np.matmul(b_t, d.reshape(6, -1), out=slab.reshape(6, -1))
    e = _view(work[0], (6, 6, c, n, t, tw))                  # e[s, k] = slab[k][.., 4 j + s]
    for s in range(6):
        e[s] = slab[..., s:s + 4 * tw - 3:4]
    v = _view(work[1], (36, c, n * t * tw))                  # p = 6 m + k
    np.matmul(b_t, e.reshape(6, -1), out=v.reshape(6, -1))
    return v


def _multiply(v: np.ndarray, u: np.ndarray, out: np.ndarray) -> np.ndarray:
    """M = U @ V for each of the 36 products: (36, G, F/G, C/G) x (36, C, n*T)
    -> (36, F, n*T), in ``out``."""
    k, groups, f_g, c_g = u.shape
    m = v.shape[2]
    result = _view(out, (k, groups * f_g, m))
    np.matmul(u, v.reshape(k, groups, c_g, m), out=result.reshape(k, groups, f_g, m))
    return result


def _output_transform(m: np.ndarray, y: np.ndarray, tiles, rows: slice,
                      work: list[np.ndarray]) -> None:
    """y (n, F, H', W')'s tile rows ``rows`` = A^T M A for every tile, M (36, F, n*T);
    cut at the edges. work[0] must not hold M."""
    n, f, h, w = y.shape
    tw = tiles[1]
    t = rows.stop - rows.start
    a_t = A_T.astype(m.dtype)
    half = _view(work[0], (4, 6, f * n * t * tw))            # (4b, 6k, F * n * T)
    np.matmul(a_t, m.reshape(6, -1), out=half.reshape(4, -1))
    out = _view(work[1], (4, 4, f * n * t * tw))             # (4b, 4a, F * n * T)
    np.matmul(a_t, half, out=out)
    out = out.reshape(4, 4, f, n, t, tw)
    top = 4 * rows.start
    for a in range(4):
        for b in range(4):
            dest = y[:, :, top + a:top + 4 * t:4, b::4]      # (n, F, <= t, <= tw)
            dest[...] = out[b, a, :, :, :dest.shape[2], :dest.shape[3]].swapaxes(0, 1)


def _output_adjoint(dy: np.ndarray, tiles, rows: slice, work: list[np.ndarray]) -> np.ndarray:
    """A dY A^T for the tiles in tile rows ``rows``: dy (n, F, H', W') -> (36, F, n*T),
    in work[0] (work[1] is scratch); zero beyond the edges."""
    n, f, h, w = dy.shape
    tw = tiles[1]
    t = rows.stop - rows.start
    top = 4 * rows.start
    a = A_T.T.astype(dy.dtype)                               # (6, 4)
    pieces = _view(work[0], (4, 4, f, n, t, tw))             # (4b, 4a, F, n, t, tw)
    for i in range(4):
        for j in range(4):
            part = dy[:, :, top + i:top + 4 * t:4, j::4]     # (n, F, <= t, <= tw)
            dest = pieces[j, i]
            dest[:, :, :part.shape[2], :part.shape[3]] = part.swapaxes(0, 1)
            dest[:, :, part.shape[2]:] = 0
            dest[:, :, :, part.shape[3]:] = 0
    half = _view(work[1], (4, 6, f * n * t * tw))            # (4b, 6k, F * n * T)
    np.matmul(a, pieces.reshape(4, 4, -1), out=half)
    dm = _view(work[0], (36, f, n * t * tw))                 # (6m, 6k, F * n * T)
    np.matmul(a, half.reshape(4, -1), out=dm.reshape(6, -1))
    return dm


def _forward_plan(g: ConvGeometry, what: str, held: int = 0) -> _Plan:
    """Two buffers of 36 x max(C, F) a tile; the filters' transform (and ``held``
    elements more: dx's rotated filters) fixed."""
    filters = 3 * 36 * g.out_channels * (g.in_channels // g.groups)
    return _Plan(g, what, per_tile=2 * 36 * max(g.in_channels, g.out_channels),
                 fixed=filters + held)


def _weight_plan(g: ConvGeometry) -> _Plan:
    """Four buffers of 36 x max(C, F) a tile (x's transform and dy's); the products and
    the running sum of dU (36 x F x C/G each) fixed."""
    return _Plan(g, "the weight gradient",
                 per_tile=4 * 36 * max(g.in_channels, g.out_channels),
                 fixed=2 * 36 * g.out_channels * (g.in_channels // g.groups),
                 target_rows=WEIGHT_ROWS)


WEIGHT_ROWS = 256


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass") -> np.ndarray:
    """y = x correlated with w: (N, C, H, W) x (F, C/G, 3, 3) -> (N, F, H', W')."""
    _require(g)
    if not _finite(x, w):
        return fast.forward(x, w, g, what)
    return _correlate(x, _filter_transform(w, g.groups), g, what)


def _correlate(x: np.ndarray, u: np.ndarray, g: ConvGeometry, what: str,
               held: int = 0) -> np.ndarray:
    """The forward pass with the filters already transformed, u (36, G, F/G, C/G)."""
    plan = _forward_plan(g, what, held)
    y = np.empty(g.y_shape, dtype=g.dtype)
    work = _buffers(plan.scratch // 2, 2, g.dtype)
    for samples, rows in plan.blocks:
        v = _input_transform(x[samples], g, plan.tiles, rows, work)   # (36, C, n*T)
        m = _multiply(v, u, work[0])                                   # (36, F, n*T)
        _output_transform(m, y[samples], plan.tiles, rows, [work[1], work[0]])
    return y
def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: dy (N, F, H', W') correlated with the rotated filters -> (N, C, H, W)."""
    _require(g)
    if not _finite(dy, w):
        return fast.grad_input(dy, w, g)
    u = _filter_transform(_rotated(w, g.groups), g.groups)  # (36, G, C/G, F/G)
    return _correlate(dy, u, fast._swapped_geometry(g), "the input gradient", held=u.size)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw = G^T [sum over tiles V^T (A dY A^T)] G: -> (F, C/G, 3, 3)."""
    _require(g)
    if not _finite(dy, x):
        return fast.grad_weight(dy, x, g)
    plan = _weight_plan(g)
    groups, c_g, f_g = g.groups, g.in_channels // g.groups, g.out_channels // g.groups
    du = np.zeros((36, groups, f_g, c_g), dtype=g.dtype)
    product = np.empty_like(du)
    work = _buffers(plan.scratch // 4, 4, g.dtype)
    for samples, rows in plan.blocks:
        v = _input_transform(x[samples], g, plan.tiles, rows, work[:2])
        dm = _output_adjoint(dy[samples], plan.tiles, rows, work[2:])
        m = v.shape[2]
        np.matmul(dm.reshape(36, groups, f_g, m), v.reshape(36, groups, c_g, m).swapaxes(2, 3),
                  out=product)                               # (36, G, F/G, C/G)
        du += product
    g_t = G.T.astype(g.dtype)                                # (3, 6)
    du = du.reshape(6, 6, -1)                                # (6m, 6k, F * C/G)
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
