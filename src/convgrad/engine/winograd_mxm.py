"""Winograd F(m x m, 3x3) for any tile size m: the engine behind :mod:`.winograd4` and
:mod:`.winograd7` (the derivation is in :mod:`.winograd4`).

An m x m tile of the output costs alpha^2 = (m + 2)^2 multiplications per channel pair
(direct: 9 m^2); summed over input channels each of the alpha^2 becomes one matrix
product, M[p] = U[p] @ V[p], with U = G w G^T the transformed filters and V = B^T d B the
transformed input tiles (:mod:`.winograd_tiles`). The gradients are the same machinery:

* dx: the forward correlation of the padded dy with the rotated filters
  (docs/math.md#the-input-gradient-dx), itself a 3x3 stride-1 correlation;
* dw: the adjoint of the products and the filter transform,
  dU[p] = sum over tiles (A dY A^T)[p]^T V[p], and dw = G^T dU G.

Tiles are computed in blocks of whole tile rows (several samples, or some tile rows of
one sample) within the memory budget; non-finite inputs would spread through a whole
tile, so calls that hold one are computed by the fast engine instead.
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry
from ..memory import plan_chunks
from . import fast
from .winograd import _finite, applies
from .winograd_tiles import (Tiling, input_transform, multiply, output_adjoint,
                             output_transform)

__all__ = ["applies", "tiles", "channels_last", "forward", "grad_input", "grad_weight",
           "fits", "check_backward", "forward_plan", "weight_plan"]

# Measured on this machine (BENCHMARKS.md): tiles a block, and where channels go last.
TARGET_BYTES = 2 * 2**20      # a block's two transform buffers: about the L2 cache
MIN_ROWS = 64                 # tiles a block at least, for the products
LAST_CHANNELS = 256           # fwd and dx channels last from this many channels each way
WEIGHT_ROWS = 1               # dw: tiles a block at least, in units of C F / (C + F)
DW_BLOCK_BYTES = 4 * 2**20    # dw in one block of tiles: dU a block of filters at a time


def tiles(g: ConvGeometry, m: int) -> tuple[int, int]:
    """(th, tw): m x m output tiles per column and row, the last ones possibly cut."""
    return -(-g.out_size[0] // m), -(-g.out_size[1] // m)


def channels_last(g: ConvGeometry) -> bool:
    """Whether the forward correlation of ``g`` runs channels last
    (:mod:`.winograd_tiles`): with at least LAST_CHANNELS channels each way per group,
    whose products run faster as (n*T, C) @ (C, F). F(4x4): W4 (256 channels, 14x14)
    0.82-0.87x the time of channels first, 256 channels 28x28 0.8x, 512 channels 7x7
    0.9x; 128 channels 14x14 the same, 28x28 1.14x; W3 (64, 56x56) 1.15x. dw always
    runs channels last (0.7-0.95x)."""
    return min(g.in_channels, g.out_channels) // g.groups >= LAST_CHANNELS


def _filter_transform(w: np.ndarray, groups: int, tiling: Tiling) -> np.ndarray:
    """U = G w G^T: (F, C/G, 3, 3) -> (alpha^2, G, F/G, C/G), in the order p = alpha q + k.

    Computed in float64 whatever w's dtype (G's entries such as 1/15 are not exact in
    binary; the filters are few), then rounded once to w's dtype."""
    f, c = w.shape[:2]
    alpha = tiling.alpha
    taps = w.transpose(3, 2, 0, 1).astype(np.float64)       # (3s, 3r, F, C/G)
    half = np.matmul(tiling.g, taps.reshape(3, -1))          # (alpha q, 3r * F * C/G)
    u = np.matmul(tiling.g, half.reshape(alpha, 3, f * c))  # (alpha q, alpha k, F * C/G)
    return u.reshape(alpha * alpha, groups, f // groups, c).astype(w.dtype, copy=False)


def _rotated(w: np.ndarray, groups: int) -> np.ndarray:
    """The filters of dx's correlation: (F, C/G, 3, 3) -> (C, F/G, 3, 3), rotated 180
    degrees, input and output channels swapped within each group."""
    f, c = w.shape[:2]
    swapped = w.reshape(groups, f // groups, c, 3, 3).swapaxes(1, 2)  # (G, C/G, F/G, 3, 3)
    return swapped.reshape(groups * c, f // groups, 3, 3)[..., ::-1, ::-1]


class _Plan:
    """The blocks of tiles computed at once, and the scratch they share.

    A block is a run of whole tile rows: several samples, or some tile rows of one
    sample. Small blocks keep the transforms' buffers in the cache (F(4x4) on W3, 64
    channels: 56 tiles a block take half the time per tile of 196); the products want
    enough rows (W4, 256 channels: 64 rows 0.65x the time per tile of 16). The buffers
    are allocated once per call and reused for every block.
    """

    def __init__(self, g: ConvGeometry, what: str, buffers: int, fixed: int, m: int,
                 least: int = 0):
        th, tw = self.tiles = tiles(g, m)
        itemsize = g.dtype.itemsize
        per_tile = (m + 2) ** 2 * max(g.in_channels, g.out_channels)  # each buffer
        rows = max(MIN_ROWS, least, TARGET_BYTES // (2 * per_tile * itemsize))
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


def forward_plan(g: ConvGeometry, what: str, m: int, held: int = 0) -> _Plan:
    """Two buffers of alpha^2 x max(C, F) a tile; fixed: the filters' transform on its
    way (and ``held`` elements more: dx's rotated filters)."""
    filters = (m + 2) ** 2 * g.out_channels * (g.in_channels // g.groups)
    return _Plan(g, what, 2, 3 * filters + held, m)


def weight_plan(g: ConvGeometry, m: int) -> _Plan:
    """Three buffers of alpha^2 x max(C, F) a tile (x's transform, dy's, and their shared
    scratch); fixed: the
    products and the running sum of dU (alpha^2 x F x C/G each). A block has at least
    WEIGHT_ROWS x C F / (C + F) tiles (per group), so that each block's products
    (alpha^2 x F x C/G, written and added) stay short next to their sums over tiles."""
    c, f = g.in_channels // g.groups, g.out_channels // g.groups
    return _Plan(g, "the weight gradient", 3, 2 * (m + 2) ** 2 * g.out_channels * c, m,
                 least=int(WEIGHT_ROWS * c * f / (c + f)))


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry, tiling: Tiling,
            what: str = "the forward pass") -> np.ndarray:
    """y = x correlated with w: (N, C, H, W) x (F, C/G, 3, 3) -> (N, F, H', W')."""
    if not _finite(x, w):
        return fast.forward(x, w, g, what)
    return _correlate(x, _filter_transform(w, g.groups, tiling), g, what, tiling)


def _correlate(x: np.ndarray, u: np.ndarray, g: ConvGeometry, what: str, tiling: Tiling,
               held: int = 0) -> np.ndarray:
    """The forward pass with the filters already transformed, u (alpha^2, G, F/G, C/G)."""
    plan = forward_plan(g, what, tiling.m, held)
    y = np.empty(g.y_shape, dtype=g.dtype)
    last = channels_last(g)
    tw, work = plan.tiles[1], plan.buffers()
    for samples, rows in plan.blocks:
        v = input_transform(x[samples], g.padding, tw, rows, work, last, tiling)  # work[1]
        prod = multiply(v, u, work[0], last)                 # (a^2, F, nT) or (a^2, nT, F)
        output_transform(prod, y[samples], tw, rows, [work[1], work[0]], last, tiling)
    return y


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry, tiling: Tiling
               ) -> np.ndarray:
    """dx: dy (N, F, H', W') correlated with the rotated filters -> (N, C, H, W)."""
    if not _finite(dy, w):
        return fast.grad_input(dy, w, g)
    u = _filter_transform(_rotated(w, g.groups), g.groups, tiling)  # (a^2, G, C/G, F/G)
    return _correlate(dy, u, fast._swapped_geometry(g), "the input gradient", tiling,
                      held=u.size)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry, tiling: Tiling
                ) -> np.ndarray:
    """dw = G^T [sum over tiles (A dY A^T)^T V] G: -> (F, C/G, 3, 3)."""
    if not _finite(dy, x):
        return fast.grad_weight(dy, x, g)
    plan = weight_plan(g, tiling.m)
    if len(plan.blocks) == 1 and g.groups == 1:
        return _grad_weight_by_filters(dy, x, g, tiling, plan)
    alpha = tiling.alpha
    groups, c_g, f_g = g.groups, g.in_channels // g.groups, g.out_channels // g.groups
    du = np.zeros((alpha * alpha, groups, f_g, c_g), dtype=g.dtype)
    product = np.empty_like(du) if len(plan.blocks) > 1 else None
    tw, work = plan.tiles[1], plan.buffers()
    for i, (samples, rows) in enumerate(plan.blocks):
        v = input_transform(x[samples], g.padding, tw, rows, work[:2], True, tiling)
        dm = output_adjoint(dy[samples], tw, rows, [work[2], work[0]], tiling)  # (a^2, nT, F)
        n_t = v.shape[1]                                     # v: (a^2, nT, C)
        np.matmul(dm.reshape(alpha * alpha, n_t, groups, f_g).transpose(0, 2, 3, 1),
                  v.reshape(alpha * alpha, n_t, groups, c_g).swapaxes(1, 2),
                  out=product if i else du)                  # (a^2, G, F/G, C/G)
        if i:
            du += product
    return _filters_from(du.reshape(alpha * alpha, g.out_channels, c_g), tiling)


def _filters_from(du: np.ndarray, tiling: Tiling, out: np.ndarray | None = None
                  ) -> np.ndarray:
    """dw = G^T dU G: du (alpha^2, F, C/G) -> (F, C/G, 3, 3), into ``out`` if given."""
    alpha, (f, c) = tiling.alpha, du.shape[1:]
    half = np.matmul(tiling.g.T, du.reshape(alpha, alpha, -1))   # (alpha q, 3r, F * C/G)
    dw = np.matmul(tiling.g.T, half.reshape(alpha, -1))      # (3s, 3r * F * C/G), float64
    dw = dw.reshape(3, 3, f, c).transpose(2, 3, 1, 0)        # (F, C/G, 3r, 3s)
    if out is None:
        return np.ascontiguousarray(dw, dtype=du.dtype)
    out[...] = dw
    return out


def _grad_weight_by_filters(dy, x, g: ConvGeometry, tiling: Tiling, plan: _Plan
                            ) -> np.ndarray:
    """dw when all tiles are one block: x's transform once, then dU and dw for blocks of
    filters of at most DW_BLOCK_BYTES each, in one reused buffer. The whole of dU (81 x
    F x C for F(7x7)) is 42 MB on W4, memory fresh from the system, page faults and all,
    on every call: W4's F(7x7) dw 77 ms with 4 MiB blocks (8 MiB 83, 16 MiB 86; dU whole:
    medians 80-87 ms, single calls up to 193); W4's whole fwd+bwd 0.63x (0.52-0.82x, 11
    interleaved pairs) of it with dU whole."""
    alpha, c, f = tiling.alpha, g.in_channels, g.out_channels
    (samples, rows), = plan.blocks
    tw, work = plan.tiles[1], plan.buffers()
    v = input_transform(x[samples], g.padding, tw, rows, work[:2], True, tiling)
    # v: (a^2, nT, C)
    count = -(-alpha * alpha * f * c * g.dtype.itemsize // DW_BLOCK_BYTES)
    step = -(-f // count)
    du = np.empty(alpha * alpha * step * c, dtype=g.dtype)
    dw = np.empty(g.w_shape, dtype=g.dtype)
    for start in range(0, f, step):
        block = slice(start, min(start + step, f))
        fb = block.stop - block.start
        dm = output_adjoint(dy[samples][:, block], tw, rows, [work[2], work[0]],
                            tiling)                          # (a^2, nT, fb)
        du_b = du[:alpha * alpha * fb * c].reshape(alpha * alpha, fb, c)
        np.matmul(dm.swapaxes(1, 2), v, out=du_b)            # (a^2, fb, C)
        _filters_from(du_b, tiling, out=dw[block])
    return dw


def fits(g: ConvGeometry, op: str, m: int) -> bool:
    """Whether map ``op`` ('forward', 'grad_input' or 'grad_weight') of ``g`` fits the
    memory budget now, planned as the map plans it (nothing is allocated)."""
    try:
        if op == "forward":
            forward_plan(g, "the forward pass", m)
        elif op == "grad_input":
            forward_plan(fast._swapped_geometry(g), "the input gradient", m,
                         held=(m + 2) ** 2 * g.out_channels * (g.in_channels // g.groups))
        else:
            weight_plan(g, m)
    except MemoryError:
        return False
    return True


def check_backward(g: ConvGeometry, m: int, transposed: bool = False) -> None:
    """Plan dw's and dx's scratch (MemoryError naming the size) before computing either;
    also the fast engine's, which non-finite inputs are computed by."""
    fast.check_backward(g, transposed)
    weight_plan(g, m)
    if transposed:
        forward_plan(g, "the forward pass", m)
    else:
        forward_plan(fast._swapped_geometry(g), "the input gradient", m,
                     held=(m + 2) ** 2 * g.out_channels * (g.in_channels // g.groups))
