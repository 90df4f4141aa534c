"""algorithm='auto': for each geometry, the engine measured fastest on it.

Winograd F(2x2, 3x3) (:mod:`.winograd`) for 2-D 3x3 stride-1 convolutions whose 16
matrix products are large enough to outweigh the transforms: at least 128 input and
128 output channels per group in float32 (256 in float64, whose products are slower
relative to the transforms) and 512 2x2 tiles in the batch. Measured (BENCHMARKS.md):
float32 0.7x the fast engine's time on W4 (256 channels), 0.85-0.9x at 128 channels,
slower at 64 channels or on small images, where the transforms and the filter transform
dominate; float64 0.8-0.9x on W4, 1.05-1.15x at 128 channels. The depthwise engine
(:mod:`.depthwise`) for depthwise layers where :func:`uses_depthwise` says so (each of
the three maps chosen on its own; :func:`backward` both gradients in one call where the
depthwise engine computes both). The fast engine (:mod:`.fast`, im2col + GEMM)
everywhere else.
"""
from __future__ import annotations

import functools
import math

from ..geometry import ConvGeometry
from . import depthwise, fast, winograd

__all__ = ["forward", "grad_input", "grad_weight", "backward", "check_backward",
           "uses_winograd", "uses_depthwise"]

MIN_CHANNELS = {4: 128, 8: 256}       # by itemsize: float32, float64
MIN_TILES = 512
MIN_DEPTHWISE_POSITIONS = 2048        # N*H'*W' for the depthwise forward pass and dx
MAX_DEPTHWISE_MULTIPLIER = 2          # filters per channel, F/C


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


@functools.lru_cache(maxsize=512)
def uses_depthwise(g: ConvGeometry, step: str) -> bool:
    """Whether 'auto' computes ``step`` ("forward", "dx" or "dw") of this geometry with
    the depthwise engine (:mod:`.depthwise`, banded matrices), each map on its own.

    Measured (BENCHMARKS.md, one thread) against the fast engine on 2-D depthwise layers:
    dw 0.24-0.94x everywhere (1.03x float64 at stride 2); the forward pass 0.47-0.97x at
    stride 1 with one filter per channel from N*H'*W' = 2048 positions per channel (1.08x
    float64 on 14x14 maps; up to 1.2x below 2048 positions, at stride 2 and with two
    filters per channel); dx the same at stride 1 (the same product), 0.37-0.55x at
    stride 2, 0.8-0.9x with two filters per channel; kernels one row high 2.4-3.4x (the
    band has nothing to fold). More filters
    per channel (a layer with one input channel: F/C rows of the band for each) stay with
    the fast engine's products, whose rows are the filters.
    """
    if not (depthwise.applies(g) and g.groups > 1
            and g.out_channels <= MAX_DEPTHWISE_MULTIPLIER * g.in_channels):
        return False
    if step == "dw":
        return True
    if g.kernel_size[0] < 2 or g.batch * math.prod(g.out_size) < MIN_DEPTHWISE_POSITIONS:
        return False
    return step == "dx" or (g.stride == (1, 1) and g.out_channels == g.in_channels)


def _engine(g: ConvGeometry, step: str = ""):
    if step and uses_depthwise(g, step):
        return depthwise
    return winograd if uses_winograd(g) else fast


def forward(x, w, g: ConvGeometry, what: str = "the forward pass"):
    """y (N, F, *out) from x (N, C, *in) and w (F, C/G, *K)."""
    return _engine(g, "forward").forward(x, w, g, what)


def grad_input(dy, w, g: ConvGeometry):
    """dx (N, C, *in) from dy (N, F, *out) and w (F, C/G, *K)."""
    return _engine(g, "dx").grad_input(dy, w, g)


def grad_weight(dy, x, g: ConvGeometry):
    """dw (F, C/G, *K) from dy (N, F, *out) and x (N, C, *in)."""
    return _engine(g, "dw").grad_weight(dy, x, g)


def _combined(g: ConvGeometry) -> bool:
    """Whether :func:`backward` hands both dx and dw to :func:`.depthwise.backward`."""
    return (uses_depthwise(g, "dx") and uses_depthwise(g, "dw")
            and depthwise.shares(g))


def backward(dy, x, w, g: ConvGeometry, need_dx: bool = True, need_dw: bool = True):
    """(dx (N, C, *in), dw (F, C/G, *K)), each None unless asked for, from dy (N, F, *out),
    x and w: the depthwise engine's backward where it computes both and lays dy out once
    for them (:func:`.depthwise.shares`); else dw, then dx, each by its own engine."""
    if need_dx and need_dw and _combined(g):
        return depthwise.backward(dy, x, w, g)
    dw = grad_weight(dy, x, g) if need_dw else None
    return (grad_input(dy, w, g) if need_dx else None), dw


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """MemoryError now when dw or dx cannot fit (:func:`.fast.check_backward`; the
    depthwise engine's checks the fast engine's too)."""
    steps = ("dw", "forward" if transposed else "dx")
    if any(uses_depthwise(g, step) for step in steps):
        depthwise.check_backward(g, transposed, combined=not transposed and _combined(g))
    else:
        _engine(g).check_backward(g, transposed)
