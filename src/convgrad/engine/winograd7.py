"""Winograd F(7x7, 3x3), float64 only: 81 multiplications per 7x7 tile per channel pair
(direct: 441; F(4x4): 36 per 16 outputs, 2.25 an output against 81/49 = 1.65).

The same construction as :mod:`.winograd4` (its docstring derives it) at the eight points
0, 1, -1, 1/2, -1/2, 2, -2, 3 and infinity, on the same engine (:mod:`.winograd_mxm`);
:func:`.winograd_tiles.cook_toom` builds B^T (9 x 9), G (9 x 3) and A^T (7 x 9), whose
entries reach 3^6 in A^T. Its rounding error is ~1e-12 relative in float64 (W3- and
W4-sized layers), far inside the suite's 1e-10, but ~3e-4 in float32, so it refuses
float32. It pays where 7 divides the output and the channels are many: W4 (256
channels, 14x14 = 2 x 2 tiles, where F(4x4) computes 16x16) forward 0.51x and dx 0.55x
of the fast engine's time against F(4x4)'s 0.67x and 0.72x; with 128 channels on 28x28
F(4x4) is faster (0.60x against 0.69x). 'auto' picks it per :mod:`.auto`.
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry
from . import winograd_mxm
from .winograd import applies
from .winograd_tiles import Tiling

__all__ = ["applies", "tiles", "forward", "grad_input", "grad_weight", "fits",
           "check_backward", "TILING"]

TILING = Tiling(7, (0, 1, -1, "1/2", "-1/2", 2, -2, 3))


def _require(g: ConvGeometry) -> None:
    if not applies(g):
        raise ValueError(
            f"algorithm='winograd7' applies to 2-D convolutions with a 3x3 kernel, stride 1 "
            f"and dilation 1; got a {g.nd}-D kernel {g.kernel_size}, stride {g.stride}, "
            f"dilation {g.dilation}: use algorithm='auto' or 'fast'")
    if g.dtype != np.float64:
        raise ValueError(
            f"algorithm='winograd7' computes in float64 only (its float32 rounding error "
            f"reaches 3e-4 relative); got {g.dtype}: use algorithm='winograd4', 'auto' "
            f"or 'fast'")


def tiles(g: ConvGeometry) -> tuple[int, int]:
    """(th, tw): 7x7 output tiles per column and row, the last ones possibly cut."""
    return winograd_mxm.tiles(g, 7)


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
    return winograd_mxm.fits(g, op, 7)


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """MemoryError now when dw or dx cannot fit (:func:`.winograd_mxm.check_backward`)."""
    _require(g)
    winograd_mxm.check_backward(g, 7, transposed)
