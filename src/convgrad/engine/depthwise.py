"""Depthwise convolution (groups = C) as banded matrix products over blocks of rows.

A depthwise layer has one input channel per group, so im2col + GEMM multiplies a
product of one row per group (about 2% of BLAS's peak, BENCHMARKS.md). Here every
channel's kernel becomes a banded (Toeplitz) matrix along H instead, so that BLAS works
on whole blocks of rows; the W direction stays a sum of shifted blocks.

The output rows are cut into blocks of B rows; block b reads the Bi = (B-1)*sh +
(HH-1)*dh + 1 padded input rows from b*B*sh on. The input is copied once, channels
first, rows of the block first (a chunk of n samples, nbo blocks, Wq padded columns):

    xq  (C, Bi, n, nbo, Wq)     xq[c, u, m, b, v] = x[m, c, b*B*sh + u - top, v - left]

and for each channel c, filter r of its F/C (the channel multiplier) and kernel column j,
the B x Bi band T[c, r, j][t, t*sh + i*dh] = w[c*F/C + r, 0, i, j] turns the kernel's
rows into one product per channel:

    Z   (C, F/C*WW*B, n*nbo*Wq) = T (C, F/C*WW*B, Bi) @ xq (C, Bi, n*nbo*Wq)
    y[m, c*F/C + r, b*B + t, o] = sum_j Z[c, (r, j, t), (m, b, o*sw + j*dw)]

(docs/math.md#the-forward-index-map: the sum over i is inside the band, the sum over j
a shifted block). The band multiplies Bi/HH times the multiply-adds the convolution
needs (3x for 3x3, B = 7), but BLAS runs it at a good fraction of its peak, and every
copy moves rows W long. The gradients are the adjoint and the band's own gradient:

* dx: dZ[c, (r, j, t), (m, b, o*sw + j*dw)] = dy[m, c*F/C + r, b*B + t, o] (zero
  elsewhere), dxq (C, Bi, n*nbo*Wq) = T^T @ dZ, each block's rows added back into dx
  (docs/math.md#the-input-gradient-dx);
* dw: dT (C, F/C*WW*B, Bi) = dZ @ xq^T summed over the chunks, and
  dw[c*F/C + r, 0, i, j] = sum_t dT[c, (r, j, t), t*sh + i*dh], the band's diagonals
  (docs/math.md#the-weight-gradient-dw).

Applies to 2-D convolutions with one input channel per group (any kernel, stride,
dilation, padding, channel multiplier). The products multiply the padding's zeros (and
the band's) by x, w and dy: where an input holds an inf or a nan, 0 * inf = nan would
spread to outputs PyTorch keeps finite, so a call whose result is not finite is computed
again by the fast engine. The batch and the channels are chunked so that a chunk's
scratch stays near PREFERRED_BYTES (in the CPU's cache) and within the memory budget.

Arrays: x (N, C, H, W), w (F, 1, HH, WW), y and dy (N, F, H', W'), in the geometry's
dtype.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import ConvGeometry
from ..memory import available, check_fits
from . import fast

__all__ = ["applies", "forward", "grad_input", "grad_weight", "check_backward"]

PREFERRED_BYTES = 2**20
"""Scratch per chunk (measured on W7: about one channel of 32 samples, 1 MiB, was
fastest; the whole batch at once 2x slower, its scratch no longer in the cache)."""

BAND_ROWS = 9
"""Input rows per block, Bi, aimed at: B = 7 output rows for a 3x3 stride-1 kernel
(measured fastest on W7, against B = 4 and 14)."""


def applies(g: ConvGeometry) -> bool:
    """2-D, one input channel per group (depthwise, any channel multiplier F/C)."""
    return g.nd == 2 and g.in_channels == g.groups


def _require(g: ConvGeometry) -> None:
    if not applies(g):
        raise ValueError(f"the depthwise engine applies to 2-D convolutions with one input "
                         f"channel per group; got {g.nd}-D, {g.in_channels} channels in "
                         f"{g.groups} groups")


class _Blocks:
    """The blocking of one geometry: B, Bi, nbo, Wq and the chunks."""

    def __init__(self, g: ConvGeometry):
        (ho, wo), (kh, kw) = g.out_size, g.kernel_size
        (sh, sw), (dh, dw) = g.stride, g.dilation
        halo = (kh - 1) * dh + 1
        self.g = g
        self.rows = max(1, min(ho, (BAND_ROWS - halo) // sh + 1))      # B
        self.band = (self.rows - 1) * sh + halo                         # Bi
        self.blocks = -(-ho // self.rows)                               # nbo
        self.cols = (wo - 1) * sw + (kw - 1) * dw + 1                   # Wq
        self.multiplier = g.out_channels // g.in_channels               # F/C
        self.taps = self.multiplier * kw * self.rows                    # rows of T
        # dZ's flat shifts read past a row's end only where sw = 1 (garbage columns)
        self.flat = sw == 1

    def positions(self, n: int) -> int:
        """Columns of the products for n samples: n * nbo * Wq."""
        return n * self.blocks * self.cols

    def per_channel_sample(self) -> int:
        """Scratch elements per channel and sample (at most): xq, Z and y's block copy."""
        p = self.positions(1)
        return (self.band + self.taps + self.multiplier * self.rows) * p

    def chunks(self, what: str, fixed: int = 0):
        """[(channels, samples)] slices: as many samples (then channels) as fit
        PREFERRED_BYTES; MemoryError naming the size if one channel of one sample cannot
        fit the budget."""
        g = self.g
        item = g.dtype.itemsize
        unit = self.per_channel_sample() * item
        check_fits(unit + fixed * item, what + " (one channel of one sample)")
        room = max(unit, min(PREFERRED_BYTES, available() - fixed * item))
        samples = max(1, min(g.batch, room // unit))
        channels = max(1, min(g.in_channels, room // (unit * samples)))
        return [(slice(c, min(c + channels, g.in_channels)),
                 slice(n, min(n + samples, g.batch)))
                for c in range(0, g.in_channels, channels)
                for n in range(0, g.batch, samples)]


@functools.lru_cache(maxsize=256)
def _blocks(g: ConvGeometry) -> _Blocks:
    return _Blocks(g)


def _band_index(bl: _Blocks):
    """Index arrays (r, j, t, u, i) of the band's nonzeros: T[c, r, j, t, u] = w[c, r, i, j]
    with u = t*sh + i*dh."""
    g = bl.g
    (kh, kw), sh, dh = g.kernel_size, g.stride[0], g.dilation[0]
    r, i, j, t = np.meshgrid(np.arange(bl.multiplier), np.arange(kh), np.arange(kw),
                             np.arange(bl.rows), indexing="ij")
    return r, j, t, t * sh + i * dh, i


def _band(w: np.ndarray, bl: _Blocks) -> np.ndarray:
    """T (C, F/C*WW*B, Bi) from w (F, 1, HH, WW)."""
    g = bl.g
    c, m, kw = g.in_channels, bl.multiplier, g.kernel_size[1]
    t_band = np.zeros((c, m, kw, bl.rows, bl.band), dtype=g.dtype)
    r, j, t, u, i = _band_index(bl)
    w4 = w.reshape(c, m, *g.kernel_size)                        # (C, F/C, HH, WW)
    t_band[:, r, j, t, u] = w4[:, r, i, j]
    return t_band.reshape(c, bl.taps, bl.band)


def _block_rows(bl: _Blocks, b: int, height: int, top: int):
    """(u0, u1, r0): the rows u0 <= u < u1 of block b that lie in the image, from row r0."""
    start = b * bl.rows * bl.g.stride[0] - top
    u0, u1 = max(0, -start), min(bl.band, height - start)
    return u0, max(u0, u1), start + u0


def _lower(x: np.ndarray, bl: _Blocks, xq: np.ndarray) -> None:
    """xq (c, Bi, n, nbo, Wq) from the chunk x (n, c, H, W); the padding in xq stays zero."""
    g = bl.g
    (top, _), (left, _) = g.padding
    height, width = g.in_size
    v0, v1 = max(0, left), min(bl.cols, width + left)       # xq columns holding x
    if v1 <= v0:
        return
    for b in range(bl.blocks):
        u0, u1, r0 = _block_rows(bl, b, height, top)
        if u1 > u0:
            xq[:, u0:u1, :, b, v0:v1] = x[:, :, r0:r0 + u1 - u0,
                                          v0 - left:v1 - left].transpose(1, 2, 0, 3)


def _shifted(z: np.ndarray, bl: _Blocks, n: int, j: int) -> np.ndarray:
    """Z's kernel column j at the columns o*sw + j*dw: (c, F/C, B, n*nbo, W')."""
    g = bl.g
    c = z.shape[0]
    wo, sw, dw = g.out_size[1], g.stride[1], g.dilation[1]
    z6 = z.reshape(c, bl.multiplier, g.kernel_size[1], bl.rows, n * bl.blocks, bl.cols)
    return z6[:, :, j, :, :, j * dw:j * dw + (wo - 1) * sw + 1:sw]


class _Scratch:
    """Buffers reused chunk to chunk, allocated for the first (largest) chunk; zeroed
    again only when the chunk's shape changes (the parts no chunk writes stay zero)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.buffers = {}

    def get(self, name: str, shape, zero: bool = False) -> np.ndarray:
        shape = tuple(shape)
        flat, old = self.buffers.get(name, (None, None))
        if flat is None:
            flat = np.empty(math.prod(shape), dtype=self.dtype)
        view = flat[:math.prod(shape)].reshape(shape)
        if zero and old != shape:
            view[...] = 0
        self.buffers[name] = (flat, shape)
        return view


def _finite(a: np.ndarray) -> bool:
    """Whether every value is finite (an overflowing sum counts as not: the safe side)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(a.sum()))


class _NotFinite(Exception):
    """A chunk's result holds an inf or a nan: the fast engine computes the call."""


# ----------------------------------------------------------------------------------------
# The three maps


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass") -> np.ndarray:
    """y = x correlated with w: (N, C, H, W) x (F, 1, HH, WW) -> (N, F, H', W')."""
    _require(g)
    bl = _blocks(g)
    y = np.empty(g.y_shape, dtype=g.dtype)
    if y.size == 0:
        return y
    if not _finite(w):
        return fast.forward(x, w, g, what)
    try:
        _forward(x, _band(w, bl), bl, y, what)
    except _NotFinite:
        return fast.forward(x, w, g, what)
    return y


def _forward(x, t_band, bl: _Blocks, y, what: str) -> None:
    g = bl.g
    m, rows, ho, wo = bl.multiplier, bl.rows, *g.out_size
    y5 = y.reshape(g.batch, g.in_channels, m, ho, wo)          # a view: F = (C, F/C)
    scratch = _Scratch(g.dtype)
    for cs, ns in bl.chunks(what, fixed=t_band.size):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        xq = scratch.get("xq", (c, bl.band, n, bl.blocks, bl.cols), zero=True)
        _lower(x[ns, cs], bl, xq)
        z = scratch.get("z", (c, bl.taps, p))
        np.matmul(t_band[cs], xq.reshape(c, bl.band, p), out=z)    # (c, F/C*WW*B, P)
        yq = scratch.get("yq", (c, m, rows, n * bl.blocks, wo))
        np.copyto(yq, _shifted(z, bl, n, 0))
        for j in range(1, g.kernel_size[1]):
            yq += _shifted(z, bl, n, j)
        if not _finite(yq):
            raise _NotFinite
        yq = yq.reshape(c, m, rows, n, bl.blocks, wo)
        for b in range(bl.blocks):
            t1 = min(rows, ho - b * rows)
            y5[ns, cs, :, b * rows:b * rows + t1] = \
                yq[:, :, :t1, :, b].transpose(3, 0, 1, 2, 4)       # (n, c, F/C, t, W')


def _spread(dy, bl: _Blocks, cs: slice, ns: slice, dz: np.ndarray) -> None:
    """dZ (c, F/C*WW*B, P) from the chunk of dy: each kernel column's shifted copy;
    the positions no output reaches stay zero."""
    g = bl.g
    n, c = ns.stop - ns.start, cs.stop - cs.start
    m, rows, ho, wo = bl.multiplier, bl.rows, *g.out_size
    dyc = dy.reshape(g.batch, g.in_channels, m, ho, wo)[ns, cs]     # (n, c, F/C, H', W')
    first = _shifted(dz, bl, n, 0).reshape(c, m, rows, n, bl.blocks, wo)
    for b in range(bl.blocks):
        t1 = min(rows, ho - b * rows)
        first[:, :, :t1, :, b] = dyc[:, :, :, b * rows:b * rows + t1].transpose(1, 2, 3, 0, 4)
    for j in range(1, g.kernel_size[1]):
        np.copyto(_shifted(dz, bl, n, j), _shifted(dz, bl, n, 0))


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw: the band's gradient, summed along its diagonals. -> (F, 1, HH, WW)."""
    _require(g)
    bl = _blocks(g)
    if g.batch == 0 or math.prod(g.out_size) == 0:
        return np.zeros(g.w_shape, dtype=g.dtype)
    d_band = np.zeros((g.in_channels, bl.taps, bl.band), dtype=g.dtype)
    scratch = _Scratch(g.dtype)
    for cs, ns in bl.chunks("the weight gradient", fixed=d_band.size):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        xq = scratch.get("xq", (c, bl.band, n, bl.blocks, bl.cols), zero=True)
        _lower(x[ns, cs], bl, xq)
        dz = scratch.get("dz", (c, bl.taps, p), zero=True)
        _spread(dy, bl, cs, ns, dz)
        d_band[cs] += np.matmul(dz, xq.reshape(c, bl.band, p).swapaxes(1, 2))
    r, j, t, u, _ = _band_index(bl)                         # each (F/C, HH, WW, B)
    d5 = d_band.reshape(g.in_channels, bl.multiplier, g.kernel_size[1], bl.rows, bl.band)
    dw = d5[:, r, j, t, u].sum(axis=-1).reshape(g.w_shape)  # (C, F/C, HH, WW, B) summed
    if not _finite(dw):
        return fast.grad_weight(dy, x, g)
    return dw


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: the adjoint, T^T @ dZ, each block's rows added back. -> (N, C, H, W)."""
    _require(g)
    bl = _blocks(g)
    if g.batch == 0:
        return np.zeros(g.x_shape, dtype=g.dtype)
    if not _finite(w) or math.prod(g.out_size) == 0:
        return fast.grad_input(dy, w, g)
    dx = np.empty(g.x_shape, dtype=g.dtype)
    try:
        _grad_input(dy, _band(w, bl).swapaxes(1, 2), bl, dx)
    except _NotFinite:
        return fast.grad_input(dy, w, g)
    return dx


def _grad_input(dy, t_band_t, bl: _Blocks, dx) -> None:
    """dx from dy, t_band_t (C, Bi, F/C*WW*B) the band transposed."""
    g = bl.g
    (top, _), (left, _) = g.padding
    height, width = g.in_size
    v0, v1 = max(0, left), min(bl.cols, width + left)       # dxq columns inside dx
    main = bl.rows * g.stride[0]                              # rows each block owns
    _zero_unreached(dx, bl, v0 - left, v1 - left)
    scratch = _Scratch(g.dtype)
    for cs, ns in bl.chunks("the input gradient", fixed=t_band_t.size):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        dz = scratch.get("dz", (c, bl.taps, p), zero=True)
        _spread(dy, bl, cs, ns, dz)
        dxq = scratch.get("dxq", (c, bl.band, p))
        np.matmul(t_band_t[cs], dz, out=dxq)                    # (c, Bi, P)
        if not _finite(dxq):
            raise _NotFinite
        dxq = dxq.reshape(c, bl.band, n, bl.blocks, bl.cols)
        if v1 <= v0:
            continue
        out = dx[ns, cs, :, v0 - left:v1 - left]                # (n, c, H, <= W)
        for halo in (False, True):       # each block's own rows first, then the overlap
            for b in range(bl.blocks):
                b0, b1, r0 = _block_rows(bl, b, height, top)
                u0, u1 = (max(b0, main), b1) if halo else (b0, min(b1, main))
                if u1 <= u0:
                    continue
                rows = slice(r0 + u0 - b0, r0 + u1 - b0)
                src = dxq[:, u0:u1, :, b, v0:v1].transpose(2, 0, 1, 3)  # (n, c, u, v)
                if halo:
                    out[:, :, rows] += src
                else:
                    out[:, :, rows] = src


def _zero_unreached(dx, bl: _Blocks, w0: int, w1: int) -> None:
    """Zero the rows and columns of dx that no block's own rows cover (leftover rows
    past the last output, gaps of a stride larger than the kernel): no term reaches them."""
    g = bl.g
    (top, _), _ = g.padding
    height, width = g.in_size
    main = bl.rows * g.stride[0]
    covered = np.zeros(height, dtype=bool)
    for b in range(bl.blocks):
        u0, u1, r0 = _block_rows(bl, b, height, top)
        u1 = min(u1, main)
        if u1 > u0:
            covered[r0:r0 + u1 - u0] = True
    dx[:, :, ~covered] = 0
    dx[..., :max(w0, 0)] = 0
    dx[..., max(w1, 0):] = 0


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """MemoryError now when dw's or dx's chunks cannot fit; also the fast engine's,
    which non-finite values are computed by."""
    _require(g)
    fast.check_backward(g, transposed)
    bl = _blocks(g)
    bl.chunks("the weight gradient", fixed=2 * g.in_channels * bl.taps * bl.band)
    bl.chunks("the forward pass" if transposed else "the input gradient",
              fixed=g.in_channels * bl.taps * bl.band)
