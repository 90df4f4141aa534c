"""Winograd F(4x4, 3x3): a 3x3 stride-1 2-D convolution in 36 multiplications per 4x4 tile.

Direct convolution spends 144 multiply-adds per input channel on a 4x4 tile of outputs;
F(2x2, 3x3) (:mod:`.winograd`) spends 16 per 2x2 tile (64 per 16 outputs), this one 36.
Each input channel's tile is transformed into 36 numbers for 16 outputs (F(2x2)'s: 16 for
4), so the transforms also touch fewer numbers per output.

Derivation (Cook-Toom; Lavin and Gray's form for correlation). The product c(t) = a(t) g(t)
of a cubic a (4 coefficients) and a quadratic g (3) has 6 coefficients: it is fixed by its
values at 5 points and its leading coefficient (the point at infinity), each one
multiplication a(p) g(p). With E_k (6 x k) the evaluation at those points (row p: 1, p,
p^2, ...; infinity: the last coefficient) and V = E_6, linear convolution is
c = V^-1 [(E_3 g) * (E_4 a)]. Correlation, y_i = sum_k g_k d_(i+k) (i < 4), is its
transpose in a:

    y = A^T [(G g) * (B^T d)]    A^T = E_4^T,  G = E_3,  B^T = V^-T

each row k of B^T then scaled by s_k and row k of G by 1/s_k. Lavin's points 0, 1, -1,
2, -2 give B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; ...] and G with 1/4, -1/6, 1/24; the
points 0, 1, -1, 1/2, -2 (and infinity) used here give the same products with entries
of smaller range, and measured 2.5-3x less rounding error in float32 (W3- and W4-sized
layers: 2-5e-6 relative against 5-15e-6; the direct method ~5e-7). With s = (2, 6, 6,
15/16, 30, 2):

    B^T = [2 -3 -4  3  2  0]     G = [1/2    0     0  ]     A^T = [1  1  1   1    1  0]
          [0 -2  1  5  2  0]         [1/6   1/6   1/6 ]           [0  1 -1  1/2  -2  0]
          [0 -2  5 -1 -2  0]         [1/6  -1/6   1/6 ]           [0  1  1  1/4   4  0]
          [0  2  1 -2 -1  0]         [16/15 8/15  4/15]           [0  1 -1  1/8  -8  1]
          [0  1 -2 -1  2  0]         [1/30 -1/15  2/15]
          [0  2 -3 -4  3  2]         [0     0     1/2 ]

(tests/test_winograd4.py rebuilds them from the points and checks them against the
direct sum). In two dimensions Y = A^T [U * V] A with U = G g G^T and V = B^T d B (6x6
each); summed over input channels each of the 36 elementwise products is one matrix
product, as in :mod:`.winograd`:

    M[p] (G, F/G, n*T) = U[p] (G, F/G, C/G) @ V[p] (G, C/G, n*T)     T tiles a sample

Each transform is two small matrix products on BLAS (:mod:`.winograd4_tiles`, which
also holds the matrices). The gradients:

* dx: the forward correlation of the padded dy with the rotated filters
  (docs/math.md#the-input-gradient-dx), itself a 3x3 stride-1 correlation;
* dw: the adjoint of the products and the filter transform,
  dU[p] = sum over tiles V[p]^T @ (A dY A^T)[p], and dw = G^T dU G.

Applies where :mod:`.winograd` does (2-D, 3x3 kernel, stride 1, dilation 1; any padding,
groups, sizes: the last tiles are cut). Its rounding is larger than F(2x2)'s (factors up
to 8 in A^T): in float64 ~1e-15 relative, far inside 1e-10; in float32 4-9x the direct
method's, so 'auto' uses it for float64 only (:mod:`.auto`). Non-finite values would
spread through a whole 6x6 tile, so calls whose inputs hold one are computed by the fast
engine instead.
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry
from ..memory import plan_chunks
from . import fast
from .winograd import _finite, applies
from .winograd4_tiles import (A_T, B_T, G, input_transform, multiply, output_adjoint,
                              output_transform)

__all__ = ["applies", "tiles", "forward", "grad_input", "grad_weight", "check_backward",
           "channels_last", "B_T", "G", "A_T"]

# Measured on this machine (BENCHMARKS.md): tiles a block, and where channels go last.
TARGET_BYTES = 2 * 2**20      # a block's two transform buffers: about the L2 cache
MIN_ROWS = 64                 # tiles a block at least, for the products
LAST_CHANNELS = 256           # fwd and dx channels last from this many channels each way


def _require(g: ConvGeometry) -> None:
    if not applies(g):
        raise ValueError(
            f"algorithm='winograd4' applies to 2-D convolutions with a 3x3 kernel, stride 1 "
            f"and dilation 1; got a {g.nd}-D kernel {g.kernel_size}, stride {g.stride}, "
            f"dilation {g.dilation}: use algorithm='auto' or 'fast'")


def tiles(g: ConvGeometry) -> tuple[int, int]:
    """(th, tw): 4x4 output tiles per column and row, the last ones possibly cut."""
    return -(-g.out_size[0] // 4), -(-g.out_size[1] // 4)


def channels_last(g: ConvGeometry) -> bool:
    """Whether the forward correlation of ``g`` runs channels last
    (:mod:`.winograd4_tiles`): with at least LAST_CHANNELS channels each way per group,
    whose products run faster as (n*T, C) @ (C, F): W4 (256 channels, 14x14) 0.82-0.87x
    the time of channels first, 256 channels 28x28 0.8x, 512 channels 7x7 0.9x; 128
    channels 14x14 the same, 28x28 1.14x; W3 (64, 56x56) 1.15x. dw always runs
    channels last (0.7-0.95x)."""
    return min(g.in_channels, g.out_channels) // g.groups >= LAST_CHANNELS


def _filter_transform(w: np.ndarray, groups: int) -> np.ndarray:
    """U = G w G^T: (F, C/G, 3, 3) -> (36, G, F/G, C/G), in the order p = 6 m + k.

    Computed in float64 whatever w's dtype (G's entries such as 1/15 are not exact in
    binary; the filters are few), then rounded once to w's dtype."""
    f, c = w.shape[:2]
    taps = w.transpose(3, 2, 0, 1).astype(np.float64)       # (3s, 3r, F, C/G)
    half = np.matmul(G, taps.reshape(3, -1))                 # (6m, 3r * F * C/G)
    u = np.matmul(G, half.reshape(6, 3, f * c))             # (6m, 6k, F * C/G)
    return u.reshape(36, groups, f // groups, c).astype(w.dtype, copy=False)


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
    (W4, 256 channels: 64 rows 0.65x the time per tile of 16). The buffers are
    allocated once per call and reused for every block.
    """

    def __init__(self, g: ConvGeometry, what: str, buffers: int, fixed: int):
        th, tw = self.tiles = tiles(g)
        itemsize = g.dtype.itemsize
        per_tile = 36 * max(g.in_channels, g.out_channels)  # elements, each buffer
        rows = max(MIN_ROWS, TARGET_BYTES // (2 * per_tile * itemsize))
        row_bytes = buffers * per_tile * tw * itemsize
        step = plan_chunks(g.batch * th, row_bytes, what, fixed_bytes=fixed * itemsize,
                           preferred_bytes=-(-rows // tw) * row_bytes)
        if step >= th:                                       # whole samples
            q = step // th
            self.blocks = [(slice(i, min(i + q, g.batch)), slice(0, th))
                           for i in range(0, g.batch, q)]
        else:                                                # tile rows of one sample
            self.blocks = [(slice(n, n + 1), slice(i, min(i + step, th)))
                           for n in range(g.batch) for i in range(0, th, step)]
        most = max(((b[0].stop - b[0].start) * (b[1].stop - b[1].start)
                    for b in self.blocks), default=0)
        self.size, self.count, self.dtype = most * tw * per_tile, buffers, g.dtype

    def buffers(self) -> list[np.ndarray]:
        """The flat scratch buffers, allocated once per call."""
        return [np.empty(self.size, dtype=self.dtype) for _ in range(self.count)]


def _forward_plan(g: ConvGeometry, what: str, held: int = 0) -> _Plan:
    """Two buffers of 36 x max(C, F) a tile; fixed: the filters' transform on its way
    (and ``held`` elements more: dx's rotated filters)."""
    return _Plan(g, what, 2, 3 * 36 * g.out_channels * (g.in_channels // g.groups) + held)


def _weight_plan(g: ConvGeometry) -> _Plan:
    """Four buffers of 36 x max(C, F) a tile (x's transform and dy's); fixed: the
    products and the running sum of dU (36 x F x C/G each)."""
    return _Plan(g, "the weight gradient", 4,
                 2 * 36 * g.out_channels * (g.in_channels // g.groups))


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
    last = channels_last(g)
    tw, work = plan.tiles[1], plan.buffers()
    for samples, rows in plan.blocks:
        v = input_transform(x[samples], g.padding, tw, rows, work, last)  # in work[1]
        m = multiply(v, u, work[0], last)                    # (36, F, nT) or (36, nT, F)
        output_transform(m, y[samples], tw, rows, [work[1], work[0]], last)
    return y


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: dy (N, F, H', W') correlated with the rotated filters -> (N, C, H, W)."""
    _require(g)
    if not _finite(dy, w):
        return fast.grad_input(dy, w, g)
    u = _filter_transform(_rotated(w, g.groups), g.groups)  # (36, G, C/G, F/G)
    return _correlate(dy, u, fast._swapped_geometry(g), "the input gradient", held=u.size)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw = G^T [sum over tiles (A dY A^T)^T V] G: -> (F, C/G, 3, 3)."""
    _require(g)
    if not _finite(dy, x):
        return fast.grad_weight(dy, x, g)
    plan = _weight_plan(g)
    groups, c_g, f_g = g.groups, g.in_channels // g.groups, g.out_channels // g.groups
    du = np.zeros((36, groups, f_g, c_g), dtype=g.dtype)
    product = np.empty_like(du)
    tw, work = plan.tiles[1], plan.buffers()
    for samples, rows in plan.blocks:
        v = input_transform(x[samples], g.padding, tw, rows, work[:2], True)  # (36, nT, C)
        dm = output_adjoint(dy[samples], tw, rows, work[2:])                  # (36, nT, F)
        m = v.shape[1]
        np.matmul(dm.reshape(36, m, groups, f_g).transpose(0, 2, 3, 1),
                  v.reshape(36, m, groups, c_g).swapaxes(1, 2), out=product)
        du += product                                        # (36, G, F/G, C/G)
    half = np.matmul(G.T, du.reshape(6, 6, -1))              # (6m, 3r, F * C/G), float64
    dw = np.matmul(G.T, half.reshape(6, -1))                 # (3s, 3r * F * C/G)
    dw = dw.reshape(3, 3, g.out_channels, c_g)               # (3s, 3r, F, C/G)
    return np.ascontiguousarray(dw.transpose(2, 3, 1, 0), dtype=g.dtype)  # (F, C/G, 3, 3)


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
