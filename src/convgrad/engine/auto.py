"""algorithm='auto': for each geometry, the engine measured fastest on it.

Winograd F(2x2, 3x3) (:mod:`.winograd`) for 2-D 3x3 stride-1 convolutions whose 16
matrix products are large enough to outweigh the transforms: at least 128 input and
128 output channels per group in float32 (256 in float64, whose products are slower
relative to the transforms) and 512 2x2 tiles in the batch. Measured (BENCHMARKS.md):
float32 0.7x the fast engine's time on W4 (256 channels), 0.85-0.9x at 128 channels,
slower at 64 channels or on small images, where the transforms and the filter transform
dominate; float64 0.8-0.9x on W4, 1.05-1.15x at 128 channels. The fast engine
(:mod:`.fast`, im2col + GEMM) everywhere else.
"""
from __future__ import annotations

import functools

from ..geometry import ConvGeometry
from . import fast, winograd

__all__ = ["forward", "grad_input", "grad_weight", "check_backward", "uses_winograd"]

MIN_CHANNELS = {4: 128, 8: 256}       # by itemsize: float32, float64
MIN_TILES = 512


@functools.lru_cache(maxsize=512)
def uses_winograd(g: ConvGeometry) -> bool:
    """Whether 'auto' computes this geometry with Winograd F(2x2, 3x3)."""
    if not winograd.applies(g):
        return False
    th, tw = winograd.tiles(g)
    channels = MIN_CHANNELS.get(g.dtype.itemsize, 256)
    return (g.in_channels // g.groups >= channels
            and g.out_channels // g.groups >= channels
            and g.batch * th * tw >= MIN_TILES)


def _engine(g: ConvGeometry):
    return winograd if uses_winograd(g) else fast


def forward(x, w, g: ConvGeometry, what: str = "the forward pass"):
    """y (N, F, *out) from x (N, C, *in) and w (F, C/G, *K)."""
    return _engine(g).forward(x, w, g, what)


def grad_input(dy, w, g: ConvGeometry):
    """dx (N, C, *in) from dy (N, F, *out) and w (F, C/G, *K)."""
    return _engine(g).grad_input(dy, w, g)


def grad_weight(dy, x, g: ConvGeometry):
    """dw (F, C/G, *K) from dy (N, F, *out) and x (N, C, *in)."""
    return _engine(g).grad_weight(dy, x, g)


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """MemoryError now when dw or dx cannot fit (:func:`.fast.check_backward`)."""
    _engine(g).check_backward(g, transposed)
