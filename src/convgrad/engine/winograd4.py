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

The engine (blocks, layouts, dx and dw) is :mod:`.winograd_mxm`, for any tile size; the
transforms, two small matrix products on BLAS each, are :mod:`.winograd_tiles`, which
builds the matrices from the points (:func:`.winograd_tiles.cook_toom`).

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
from . import winograd_mxm
from .winograd import applies
from .winograd_tiles import Tiling

__all__ = ["applies", "tiles", "forward", "grad_input", "grad_weight", "fits",
           "check_backward", "TILING"]

TILING = Tiling(4, (0, 1, -1, "1/2", -2))


def _require(g: ConvGeometry) -> None:
    if not applies(g):
        raise ValueError(
            f"algorithm='winograd4' applies to 2-D convolutions with a 3x3 kernel, stride 1 "
            f"and dilation 1; got a {g.nd}-D kernel {g.kernel_size}, stride {g.stride}, "
            f"dilation {g.dilation}: use algorithm='auto' or 'fast'")


def tiles(g: ConvGeometry) -> tuple[int, int]:
    """(th, tw): 4x4 output tiles per column and row, the last ones possibly cut."""
    return winograd_mxm.tiles(g, 4)


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass") -> np.ndarray:
    """y = x correlated with w: (N, C, H, W) x (F, C/G, 3, 3) -> (N, F, H', W')."""
    _require(g)
    return winograd_mxm.forward(x, w, g, TILING, what)


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx (N, C, H, W) from dy (N, F, H', W') and w (F, C/G, 3, 3)."""
    _require(g)
    return winograd_mxm.grad_input(dy, w, g, TILING)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw (F, C/G, 3, 3) from dy (N, F, H', W') and x (N, C, H, W)."""
    _require(g)
    return winograd_mxm.grad_weight(dy, x, g, TILING)


def fits(g: ConvGeometry, op: str) -> bool:
    """Whether map ``op`` of ``g`` fits the memory budget now (:func:`.winograd_mxm.fits`)."""
    return winograd_mxm.fits(g, op, 4)


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """MemoryError now when dw or dx cannot fit (:func:`.winograd_mxm.check_backward`)."""
    _require(g)
    winograd_mxm.check_backward(g, 4, transposed)
