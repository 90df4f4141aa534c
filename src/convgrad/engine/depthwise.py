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
needs (2x for 3x3, B = 4), but BLAS runs it at a good fraction of its peak, and every
copy moves rows W long. The gradients are the adjoint and the band's own gradient:

* dx: at stride 1 with one filter per channel, the forward pass on dy with the filters
  rotated (itself a depthwise correlation, docs/math.md#the-input-gradient-dx); else the
  adjoint: dZ[c, (r, j, t), (m, b, o*sw + j*dw)] = dy[m, c*F/C + r, b*B + t, o] (zero
  elsewhere), dxq (C, Bi, n*nbo*Wq) = T^T @ dZ, each block's rows added back into dx;
* dw: dT (C, F/C*WW*B, Bi) = dZ @ xq^T summed over the chunks, and
  dw[c*F/C + r, 0, i, j] = sum_t dT[c, (r, j, t), t*sh + i*dh], the band's diagonals
  (docs/math.md#the-weight-gradient-dw).

Applies to 2-D convolutions with one input channel per group (any kernel, stride,
dilation, padding, channel multiplier). The products multiply the padding's zeros (and
the band's) by x, w and dy: where an input holds an inf or a nan, 0 * inf = nan would
spread to outputs PyTorch keeps finite, so such a call (told by a sentinel row of the
band, :func:`_band`, or by dw itself) is computed by the fast engine instead. Each chunk
is one channel (or a few) of the whole batch, its scratch near PREFERRED_ELEMENTS (in
the CPU's cache); the batch is cut too where the memory budget asks.

Arrays: x (N, C, H, W), w (F, 1, HH, WW), y and dy (N, F, H', W'), in the geometry's
dtype.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import ConvGeometry
from ..memory import available, plan_chunks
from . import fast

__all__ = ["applies", "forward", "grad_input", "grad_weight", "check_backward"]

PREFERRED_ELEMENTS = 2**18
"""A product's result per group of channels: about one channel of W7's 32 samples (1 MiB
float32) was measured fastest; the whole batch at once 2x slower (no longer in the cache)."""


BAND_ROWS = 6
"""Input rows per block, Bi, aimed at, with at least MIN_ROWS output rows per block:
B = 4 for a 3x3 kernel (Bi = 6 at stride 1, 9 at stride 2), 5x5 and 7x7 (Bi = 8, 10).
Measured against Bi = 9 (B = 7 for 3x3) and 12, and against fewer rows for larger
kernels: W7 0.9-1.0x, 5x5 kernels 0.8-0.95x, 112x112 maps 0.7-1.0x, 7x7 even."""

MIN_ROWS = 4


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
        self.rows = max(1, min(ho, max(MIN_ROWS, (BAND_ROWS - halo) // sh + 1)))  # B
        self.band = (self.rows - 1) * sh + halo                         # Bi
        self.blocks = -(-ho // self.rows)                               # nbo
        self.cols = (wo - 1) * sw + (kw - 1) * dw + 1                   # Wq
        self.multiplier = g.out_channels // g.in_channels               # F/C
        self.taps = self.multiplier * kw * self.rows                    # rows of T
        # dZ's flat shifts read past a row's end only where sw = 1 (garbage columns)
        self.flat = sw == 1
        self.main = self.rows * sh                       # input rows each block owns
        (left, _) = g.padding[1]
        self.v0 = max(0, left)                            # xq columns v0:v1 hold x's
        self.v1 = max(self.v0, min(self.cols, g.in_size[1] + left))

    @functools.cache
    def segments(self, u_lo: int, u_hi: int) -> tuple:
        """The band rows u_lo <= u < u_hi of every block that lie in the image, as
        (block, u0, u1, image rows)."""
        g = self.g
        top, height = g.padding[0][0], g.in_size[0]
        out = []
        for b in range(self.blocks):
            start = b * self.main - top + u_lo
            u0, u1 = u_lo + max(0, -start), min(u_hi, height - start + u_lo)
            if u1 > u0:
                first = start + u0 - u_lo
                out.append((b, u0, u1, slice(first, first + u1 - u0)))
        return tuple(out)

    def positions(self, n: int) -> int:
        """Columns of the products for n samples: n * nbo * Wq."""
        return n * self.blocks * self.cols

    def chunks(self, what: str, per_position: int, fixed: int = 0):
        """[(channels, samples)]: groups of channels whose scratch (``per_position``
        elements per channel and position) stays near PREFERRED_ELEMENTS, each over the
        whole batch, or over chunks of samples where the budget asks for it;
        MemoryError naming the size if one channel of one sample cannot fit (``fixed``
        elements held throughout)."""
        g = self.g
        item, per = g.dtype.itemsize, per_position * self.positions(1)
        one = per * item                                    # one channel of one sample
        step = plan_chunks(g.batch, one, what + " (one channel)", fixed_bytes=fixed * item,
                           preferred_bytes=PREFERRED_ELEMENTS * item)
        channels = 1
        if step == g.batch:
            room = (available() - fixed * item) // max(one * g.batch, 1)
            channels = max(1, min(g.in_channels, room,
                                  PREFERRED_ELEMENTS // max(per * g.batch, 1)))
        return [(slice(c, min(c + channels, g.in_channels)),
                 slice(n, min(n + step, g.batch)))
                for c in range(0, g.in_channels, channels)
                for n in range(0, g.batch, step)]


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


def _band(w: np.ndarray, bl: _Blocks, transposed: bool = False) -> np.ndarray:
    """T (C, F/C*WW*B + 1, Bi) from w (F, 1, HH, WW), or T^T (C, Bi + 1, F/C*WW*B).

    The last row is a sentinel of zeros: its product row is 0 where the other operand's
    column is finite and nan where it holds an inf or a nan (0 * inf), so one row of the
    product tells whether the band's zeros met a non-finite value."""
    g = bl.g
    c, m, kw = g.in_channels, bl.multiplier, g.kernel_size[1]
    r, j, t, u, i = _band_index(bl)
    w4 = w.reshape(c, m, *g.kernel_size)                        # (C, F/C, HH, WW)
    if transposed:
        t_band = np.zeros((c, bl.band + 1, m, kw, bl.rows), dtype=g.dtype)
        t_band[:, u, r, j, t] = w4[:, r, i, j]
        return t_band.reshape(c, bl.band + 1, bl.taps)
    t_band = np.zeros((c, bl.taps + 1, bl.band), dtype=g.dtype)
    t_band[:, :-1].reshape(c, m, kw, bl.rows, bl.band)[:, r, j, t, u] = w4[:, r, i, j]
    return t_band


def _lower(x: np.ndarray, bl: _Blocks, xq: np.ndarray) -> None:
    """xq (c, Bi, n, nbo, Wq) from the chunk x (n, c, H, W); the padding in xq stays zero."""
    left = bl.g.padding[1][0]
    v0, v1 = bl.v0, bl.v1
    if v1 <= v0:
        return
    x = x[..., v0 - left:v1 - left]
    for b, u0, u1, rows in bl.segments(0, bl.band):
        xq[:, u0:u1, :, b, v0:v1] = x[:, :, rows].transpose(1, 2, 0, 3)   # (c, u, n, v)


def _shifted(z: np.ndarray, bl: _Blocks, n: int, j: int) -> np.ndarray:
    """Z's kernel column j at the columns o*sw + j*dw: (c, F/C, B, n*nbo, W'), a view."""
    g = bl.g
    c = z.shape[0]
    wo, sw, dw = g.out_size[1], g.stride[1], g.dilation[1]
    z6 = z.reshape(c, bl.multiplier, g.kernel_size[1], bl.rows, n * bl.blocks, bl.cols)
    return z6[:, :, j, :, :, j * dw:j * dw + (wo - 1) * sw + 1:sw]


def _staged_cols(bl: _Blocks) -> int:
    """Columns of the staged y or dy blocks: Wq at stride 1 (whole shifted rows), else W'."""
    return bl.cols if bl.flat else bl.g.out_size[1]


def _sum_columns(z: np.ndarray, bl: _Blocks, n: int, yq: np.ndarray) -> None:
    """yq (c, F/C, B, n*nbo, Wy) = sum_j Z[c, (r, j, t), (m, b, o*sw + j*dw)].

    At stride 1 the shifted blocks are whole rows of Z shifted by j*dw (one long run
    each); the last (WW - 1)*dw columns of each block row are not outputs, left as they
    are."""
    g = bl.g
    c, p = z.shape[0], z.shape[2]
    kw, dw = g.kernel_size[1], g.dilation[1]
    if bl.flat:
        z5 = z.reshape(c, bl.multiplier, kw, bl.rows, p)
        run = p - (kw - 1) * dw
        yq = yq.reshape(c, bl.multiplier, bl.rows, p)[..., :run]
        z5 = [z5[:, :, j, :, j * dw:j * dw + run] for j in range(kw)]
    else:
        z5 = [_shifted(z, bl, n, j) for j in range(kw)]
    if kw == 1:
        np.copyto(yq, z5[0])
    else:
        np.add(z5[0], z5[1], out=yq)
    for j in range(2, kw):
        yq += z5[j]


def _spread(dy5: np.ndarray, bl: _Blocks, dz: np.ndarray) -> None:
    """dZ (c, F/C*WW*B, P) from dy5 (n, c, F/C, H', W'), the chunk of dy: kernel column
    j's rows hold dy shifted by j*dw (column 0's written in blocks by :func:`_stage_dy`,
    the others copied from it); the positions no output reaches stay zero."""
    g = bl.g
    n, c = dy5.shape[:2]
    p = dz.shape[2]
    kw, dw, wo = g.kernel_size[1], g.dilation[1], g.out_size[1]
    dz5 = dz.reshape(c, bl.multiplier, kw, bl.rows, p)
    if bl.flat:
        _stage_dy(dy5, bl, dz5[:, :, 0].reshape(c, bl.multiplier, bl.rows, n, bl.blocks,
                                                 bl.cols)[..., :wo])
    else:
        _stage_dy(dy5, bl, _shifted(dz, bl, n, 0).reshape(c, bl.multiplier, bl.rows, n,
                                                             bl.blocks, wo))
    if bl.flat:
        run = p - (kw - 1) * dw
        for j in range(1, kw):
            dz5[:, :, j, :, j * dw:j * dw + run] = dz5[:, :, 0, :, :run]
    else:
        for j in range(1, kw):
            _shifted(dz, bl, n, j)[...] = _shifted(dz, bl, n, 0)


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


def _met_non_finite(sentinel: np.ndarray) -> bool:
    """Whether the sentinel row of a product (:func:`_band`) met an inf or a nan: it holds
    only zeros (0 * finite) and nans (0 * inf, 0 * nan), so its sum is 0 or nan (no
    overflow, no warning), one reduction."""
    return bool(sentinel.sum() != 0)


def _finite(a: np.ndarray) -> bool:
    """Whether every value is finite."""
    return bool(np.isfinite(a).all())


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
        with np.errstate(invalid="ignore"):       # 0 * inf, caught by the sentinel
            _forward(x, _band(w, bl), bl, y, what)
    except _NotFinite:
        return fast.forward(x, w, g, what)
    return y


def _forward(x, t_band, bl: _Blocks, y, what: str, held: int = 0) -> None:
    """y from x and the band (:func:`_band`), chunk by chunk (``held``: elements of
    scratch the caller holds meanwhile)."""
    g = bl.g
    m, rows, ho, wo = bl.multiplier, bl.rows, *g.out_size
    y5 = y.reshape(g.batch, g.in_channels, m, ho, wo)          # a view: F = (C, F/C)
    wy = _staged_cols(bl)
    scratch = _Scratch(g.dtype)
    for cs, ns in bl.chunks(what, bl.band + bl.taps + 1 + m * rows,
                            fixed=t_band.size + held):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        xq = scratch.get("xq", (c, bl.band, n, bl.blocks, bl.cols), zero=True)
        _lower(x[ns, cs], bl, xq)
        z = scratch.get("z", (c, bl.taps + 1, p))
        np.matmul(t_band[cs], xq.reshape(c, bl.band, p), out=z)  # (c, F/C*WW*B + 1, P)
        if _met_non_finite(z[:, -1]):
            raise _NotFinite
        yq = scratch.get("yq", (c, m, rows, n * bl.blocks, wy))
        _sum_columns(z[:, :-1], bl, n, yq)
        _unblock(yq.reshape(c, m, rows, n, bl.blocks, wy)[..., :wo], bl,
                 y5[ns, cs])                                   # (n, c, F/C, H', W')


def _unblock(yq: np.ndarray, bl: _Blocks, y5: np.ndarray) -> None:
    """y5 (n, c, F/C, H', W') from yq (c, F/C, B, n, nbo, W'): the whole blocks in one
    copy, the last one cut."""
    rows, ho = bl.rows, bl.g.out_size[0]
    n, c, m, _, wo = y5.shape
    whole = ho // rows
    if whole:
        y5[:, :, :, :whole * rows].reshape(n, c, m, whole, rows, wo)[...] = \
            yq[:, :, :, :, :whole].transpose(3, 0, 1, 4, 2, 5)  # (n, c, F/C, nbo, B, W')
    if whole < bl.blocks:
        t1 = ho - whole * rows
        y5[:, :, :, whole * rows:] = yq[:, :, :t1, :, whole].transpose(3, 0, 1, 2, 4)


def _stage_dy(dy5: np.ndarray, bl: _Blocks, dyq: np.ndarray) -> None:
    """dyq (c, F/C, B, n, nbo, W') from dy5 (n, c, F/C, H', W'), the chunk of dy: the
    adjoint of :func:`_unblock` (the cut rows of the last block stay zero)."""
    rows, ho = bl.rows, bl.g.out_size[0]
    n, c, m, _, wo = dy5.shape
    whole = ho // rows
    if whole:
        dyq[:, :, :, :, :whole] = dy5[:, :, :, :whole * rows].reshape(
            n, c, m, whole, rows, wo).transpose(1, 2, 4, 0, 3, 5)
    if whole < bl.blocks:
        t1 = ho - whole * rows
        dyq[:, :, :t1, :, whole] = dy5[:, :, :, whole * rows:].transpose(1, 2, 3, 0, 4)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw: the band's gradient, summed along its diagonals. -> (F, 1, HH, WW)."""
    _require(g)
    bl = _blocks(g)
    if g.batch == 0 or math.prod(g.out_size) == 0:
        return np.zeros(g.w_shape, dtype=g.dtype)
    with np.errstate(invalid="ignore"):           # 0 * inf, caught in dw
        dw = _grad_weight(dy, x, bl)
    return dw if _finite(dw) else fast.grad_weight(dy, x, g)


def _grad_weight(dy, x, bl: _Blocks) -> np.ndarray:
    g = bl.g
    m, (ho, wo) = bl.multiplier, g.out_size
    dy5 = dy.reshape(g.batch, g.in_channels, m, ho, wo)
    kw, dw = g.kernel_size[1], g.dilation[1]
    d_band = np.zeros((g.in_channels, bl.taps, bl.band), dtype=g.dtype)
    d_band4 = d_band.reshape(g.in_channels, m, kw, bl.rows, bl.band)
    scratch = _Scratch(g.dtype)
    for cs, ns in bl.chunks("the weight gradient", bl.band + bl.taps + 1 + m * bl.rows,
                            fixed=2 * d_band.size):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        xq = scratch.get("xq", (c, bl.band, n, bl.blocks, bl.cols), zero=True)
        _lower(x[ns, cs], bl, xq)
        xq = xq.reshape(c, bl.band, p)
        if bl.flat:         # dy once, times x shifted by j*dw: a product per kernel column
            dyq = scratch.get("dyq", (c, m, bl.rows, n, bl.blocks, bl.cols), zero=True)
            _stage_dy(dy5[ns, cs], bl, dyq[..., :wo])
            run = p - (kw - 1) * dw
            d = dyq.reshape(c, m * bl.rows, p)[..., :run]           # (c, F/C*B, run)
            for j in range(kw):
                d_band4[cs, :, j] += np.matmul(
                    d, xq[..., j * dw:j * dw + run].swapaxes(1, 2)).reshape(
                        c, m, bl.rows, bl.band)                    # (c, F/C, B, Bi)
        else:
            dz = scratch.get("dz", (c, bl.taps, p), zero=True)
            _spread(dy5[ns, cs], bl, dz)
            d_band[cs] += np.matmul(dz, xq.swapaxes(1, 2))        # (c, F/C*WW*B, Bi)
    r, j, t, u, _ = _band_index(bl)                         # each (F/C, HH, WW, B)
    return d_band4[:, r, j, t, u].sum(axis=-1).reshape(g.w_shape)  # (C, F/C, HH, WW, B)


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
        with np.errstate(invalid="ignore"):       # 0 * inf, caught by the sentinel
            if _swaps(g):
                swapped = _blocks(fast._swapped_geometry(g))
                rotated = fast._rotated_swapped(w, g.groups)          # (C, 1, HH, WW)
                _forward(dy, _band(rotated, swapped), swapped, dx, "the input gradient",
                         held=rotated.size)
            else:
                _grad_input(dy, _band(w, bl, transposed=True), bl, dx)
    except _NotFinite:
        return fast.grad_input(dy, w, g)
    return dx


def _swaps(g: ConvGeometry) -> bool:
    """dx as the forward correlation of dy with the rotated filters (stride 1, one filter
    per channel: then itself depthwise; docs/math.md#the-input-gradient-dx): measured
    0.85-0.9x the adjoint's time on W7 (no overlapping rows to add back)."""
    return g.stride == (1, 1) and g.out_channels == g.in_channels


def _grad_input(dy, t_band_t, bl: _Blocks, dx) -> None:
    """dx from dy, t_band_t (C, Bi + 1, F/C*WW*B) the band transposed (:func:`_band`)."""
    g = bl.g
    m, (ho, wo) = bl.multiplier, g.out_size
    dy5 = dy.reshape(g.batch, g.in_channels, m, ho, wo)
    left = g.padding[1][0]
    _zero_unreached(dx, bl, bl.v0 - left, bl.v1 - left)
    scratch = _Scratch(g.dtype)
    for cs, ns in bl.chunks("the input gradient", bl.band + bl.taps + 1 + m * bl.rows,
                            fixed=t_band_t.size):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        dz = scratch.get("dz", (c, bl.taps, p), zero=True)
        _spread(dy5[ns, cs], bl, dz)
        dxq = scratch.get("dxq", (c, bl.band + 1, p))
        np.matmul(t_band_t[cs], dz, out=dxq)                    # (c, Bi + 1, P)
        if _met_non_finite(dxq[:, -1]):
            raise _NotFinite
        if bl.v1 <= bl.v0:
            continue
        dxq = dxq[:, :-1].reshape(c, bl.band, n, bl.blocks, bl.cols)[..., bl.v0:bl.v1]
        out = dx[ns, cs, :, bl.v0 - left:bl.v1 - left]          # (n, c, H, <= W)
        for b, u0, u1, rows in bl.segments(0, min(bl.main, bl.band)):   # own rows
            out[:, :, rows] = dxq[:, u0:u1, :, b].transpose(2, 0, 1, 3)  # (n, c, u, v)
        for b, u0, u1, rows in bl.segments(bl.main, bl.band):  # then the overlap
            out[:, :, rows] += dxq[:, u0:u1, :, b].transpose(2, 0, 1, 3)


def _zero_unreached(dx, bl: _Blocks, w0: int, w1: int) -> None:
    """Zero the rows and columns of dx that no block's own rows cover (leftover rows
    past the last output, gaps of a stride larger than the kernel): no term reaches them."""
    covered = np.zeros(bl.g.in_size[0], dtype=bool)
    for _, _, _, rows in bl.segments(0, min(bl.main, bl.band)):
        covered[rows] = True
    if not covered.all():
        dx[:, :, ~covered] = 0
    dx[..., :max(w0, 0)] = 0
    dx[..., max(w1, 0):] = 0


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """MemoryError now when dw's or dx's chunks cannot fit; also the fast engine's,
    which non-finite values are computed by."""
    _require(g)
    fast.check_backward(g, transposed)
    bl = _blocks(g)
    per_position = bl.band + bl.taps + 1 + bl.multiplier * bl.rows
    bands = g.in_channels * bl.taps * bl.band
    bl.chunks("the weight gradient", per_position, fixed=2 * bands)
    if transposed:
        bl.chunks("the forward pass", per_position, fixed=bands)
    elif _swaps(g):
        swapped = _blocks(fast._swapped_geometry(g))
        swapped.chunks("the input gradient", swapped.band + swapped.taps + 1 + swapped.rows,
                       fixed=bands + g.out_channels * math.prod(g.kernel_size))
    else:
        bl.chunks("the input gradient", per_position, fixed=bands)
