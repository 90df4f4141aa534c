"""algorithm='auto': for each geometry and each of its three maps, the engine measured fastest.

Measured on this machine (one thread, process CPU time, interleaved; BENCHMARKS.md), each
map's time over the fast engine's (:mod:`.fast`, im2col + GEMM or kernel rows):

float64, 2-D 3x3 stride-1 convolutions:

* all three maps: Winograd F(7x7, 3x3) (:mod:`.winograd7`) with at least 128 channels
  each way per group, 128 7x7 tiles in the batch, and where F(4x4)'s last tiles, cut,
  waste at least 1.22x the outputs F(7x7)'s do: W4 (14x14: 16x16 computed in 4x4 tiles,
  14x14 in 7x7) forward 0.51x, dx 0.55x (F(4x4) 0.67x, 0.72x), 128 channels 14x14 dx
  0.73x (F(4x4) 0.81x), forward the same; where 4 and 7 both divide (28x28), F(4x4) was
  as fast or faster (128 channels: 0.60x against 0.69x; dw 0.69x against 0.72x); with
  8 samples of W4 (32 7x7 tiles) F(7x7) lost (its filter transform, 81 x C x F,
  dominates). dw: W4 0.55-0.60x (F(2x2) 0.84-0.97x, F(4x4) 0.79x; the whole W4 fwd+bwd 0.81x of
  it with F(2x2)'s dw, 11 interleaved pairs all below 1), 128 channels 14x14 0.81x
  (F(4x4) 1.0x), once dU goes a block of filters at a time (:mod:`.winograd_mxm`;
  before, its 42 MB of fresh memory made single calls up to 1.5x).
* otherwise forward and dx: Winograd F(4x4, 3x3) (:mod:`.winograd4`) where the correlation
  (x -> y for the forward, dy -> dx for dx) has at least 16 input and 32 output channels
  per group and the batch at least 64 4x4 tiles: W3 (64 channels, 56x56) 0.71-0.80x, W4
  0.64-0.74x, 128 channels 28x28 0.56-0.66x, 512 channels 7x7 0.86x, the CIFAR-sized
  second layer (32 -> 64, 16x16) 0.72x forward, 0.92x dx; W2 (16 -> 32) forward
  0.83-0.96x (its dx, 32 -> 16, 0.97-1.09x: fast). It loses with 16 channels (1.1-1.2x),
  8 (1.2-1.4x), and on 32 tiles (W4 with N = 2: 1.24x). F(2x2) was slower than F(4x4)
  on every one of them.
* otherwise dw: F(2x2, 3x3) (:mod:`.winograd`) where its float32 rule below holds and
  the batch has at least 4 sqrt(C/G F/G) 2x2 tiles (256 channels on 28x28); else F(4x4) with at least 8 channels
  each way, 2 sqrt(C/G F/G) 4x4 tiles and 2^14 tiles x C/G x F/G: W2 0.80-0.84x, W3
  0.69x, 128 channels 0.61x, 16 channels 0.67x, 8 channels 0.73-0.88x, 32 tiles of 32
  channels 0.76-0.83x (36 tiles of 8 channels: 1.44x). With few tiles for their channels
  the transformed filter gradient (36 x F x C/G, 4x dw's size) dominates: W4 with N = 8
  1.20x, 512 channels 7x7 2.4x (F(2x2) 1.28x).

float32 (unchanged: F(4x4)'s float32 error is 4-9x the direct method's): F(2x2) for all
three maps with at least 128 input and output channels per group and 512 2x2 tiles: W4
0.7x, 128 channels 0.85-0.9x; slower at 64 channels or on small images.

Depthwise layers: the depthwise engine (:mod:`.depthwise`, banded matrices) where
:func:`uses_depthwise` says so (each of the three maps chosen on its own; :func:`backward`
both gradients in one call where the depthwise engine computes both).

The fast engine everywhere else.
"""
from __future__ import annotations

import functools
import math

from ..geometry import ConvGeometry
from . import depthwise, fast, winograd, winograd4, winograd7

__all__ = ["forward", "grad_input", "grad_weight", "backward", "check_backward",
           "uses_winograd", "uses_depthwise", "engine_for", "engine_now"]

MIN_CHANNELS = {4: 128, 8: 256}       # F(2x2), by itemsize: float32, float64
MIN_TILES = 512
MIN_DEPTHWISE_POSITIONS = 2048        # N*H'*W' for the depthwise forward pass and dx
MAX_DEPTHWISE_MULTIPLIER = 2          # filters per channel, F/C
MAPS = ("forward", "grad_input", "grad_weight")
_STEPS = {"forward": "forward", "grad_input": "dx", "grad_weight": "dw"}


@functools.lru_cache(maxsize=512)
def uses_winograd(g: ConvGeometry) -> bool:
    """Whether F(2x2, 3x3)'s rule holds (float32: all three maps; float64: dw, with
    :func:`engine_for`'s tile condition)."""
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


def _winograd4_pays(g: ConvGeometry, op: str) -> bool:
    c, f = g.in_channels // g.groups, g.out_channels // g.groups
    th, tw = winograd4.tiles(g)
    tiles = g.batch * th * tw
    if op == "grad_weight":
        return min(c, f) >= 8 and tiles >= 2 * math.sqrt(c * f) and tiles * c * f >= 2**14
    source, target = (c, f) if op == "forward" else (f, c)
    return source >= 16 and target >= 32 and tiles >= 64


def _winograd7_pays(g: ConvGeometry, op: str) -> bool:
    if min(g.in_channels, g.out_channels) // g.groups < 128:
        return False
    size = g.in_size if op == "grad_input" else g.out_size  # what the tiles cover
    waste = {}                                               # outputs computed, whole tiles
    for m in (4, 7):
        waste[m] = -(-size[0] // m) * -(-size[1] // m) * m * m
    tiles = waste[7] // 49 * g.batch
    return tiles >= 128 and waste[4] >= 1.22 * waste[7]


@functools.lru_cache(maxsize=1536)
def engine_for(g: ConvGeometry, op: str):
    """The engine module 'auto' computes map ``op`` ('forward', 'grad_input' or
    'grad_weight') of ``g`` with."""
    if op not in MAPS:
        raise ValueError(f"op={op!r}; expected one of {', '.join(map(repr, MAPS))}")
    if uses_depthwise(g, _STEPS[op]):
        return depthwise
    if g.dtype.itemsize != 8 or not winograd4.applies(g):
        return winograd if uses_winograd(g) else fast
    if _winograd7_pays(g, op):
        return winograd7
    if op == "grad_weight" and uses_winograd(g):
        th, tw = winograd.tiles(g)
        c, f = g.in_channels // g.groups, g.out_channels // g.groups
        if g.batch * th * tw >= 4 * math.sqrt(c * f):
            return winograd
    return winograd4 if _winograd4_pays(g, op) else fast


_WINOGRADS = (winograd, winograd4, winograd7)


def engine_now(g: ConvGeometry, op: str):
    """:func:`engine_for`, or the fast engine where that is a Winograd engine whose
    scratch (its transformed filters above all) does not fit the memory budget now:
    the choice is cached per geometry, the budget is per thread and call, and the fast
    engine's chunks fit where Winograd's cannot (a 256-channel float64 layer's
    F(4x4) filters alone are 19 MB)."""
    engine = engine_for(g, op)
    if engine in _WINOGRADS and not engine.fits(g, op):
        return fast
    return engine


def forward(x, w, g: ConvGeometry, what: str = "the forward pass"):
    """y (N, F, *out) from x (N, C, *in) and w (F, C/G, *K)."""
    return engine_now(g, "forward").forward(x, w, g, what)


def grad_input(dy, w, g: ConvGeometry):
    """dx (N, C, *in) from dy (N, F, *out) and w (F, C/G, *K)."""
    return engine_now(g, "grad_input").grad_input(dy, w, g)


def grad_weight(dy, x, g: ConvGeometry):
    """dw (F, C/G, *K) from dy (N, F, *out) and x (N, C, *in)."""
    return engine_now(g, "grad_weight").grad_weight(dy, x, g)


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
    """MemoryError now when dw or dx cannot fit: the fast engine's plans (every engine
    falls back to it for non-finite inputs), the depthwise engine's where it computes a
    map (and :func:`backward`'s one call where it makes it); a Winograd engine computes
    a map only where :func:`engine_now` found its plan within the budget."""
    ops = ("grad_weight", "forward" if transposed else "grad_input")
    if any(engine_now(g, op) is depthwise for op in ops):
        depthwise.check_backward(g, transposed, combined=not transposed and _combined(g))
    else:
        fast.check_backward(g, transposed)
