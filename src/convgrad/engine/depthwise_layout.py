"""The depthwise engine's layout (:mod:`.depthwise`): blocks of rows, bands, scratch.

The output rows are cut into blocks of B rows; block b reads the Bi = (B-1)*sh +
(HH-1)*dh + 1 padded input rows from b*B*sh on. An input chunk (c channels, n samples)
is copied once, channels first, rows of the block first, by :func:`lower`:

    xq  (c, Bi, n, nbo, Wq)     xq[c, u, m, b, v] = x[m, c, b*B*sh + u - top, v - left]

each channel's kernel becomes the banded matrix of :func:`band`, the products' kernel
columns are summed as shifted blocks by :func:`sum_columns` and copied back into y's
layout by :func:`unblock`; :func:`spread` and :func:`stage_dy` are their adjoints. What
each map computes with them: :mod:`.depthwise`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import ConvGeometry
from ..memory import available, plan_chunks

__all__ = ["Blocks", "blocks", "band", "band_index", "lower", "shifted", "staged_cols",
           "sum_columns", "unblock",
           "spread", "stage_dy", "zero_unreached", "Scratch", "met_non_finite", "finite",
           "NotFinite", "PREFERRED_ELEMENTS"]

PREFERRED_ELEMENTS = 2**18
"""A product's result per group of channels: about one channel of W7's 32 samples (1 MiB
float32) was measured fastest; the whole batch at once 2x slower (no longer in the cache)."""


BAND_ROWS = 6
"""Input rows per block, Bi, aimed at, with at least MIN_ROWS output rows per block:
B = 4 for a 3x3 kernel (Bi = 6 at stride 1, 9 at stride 2), 5x5 and 7x7 (Bi = 8, 10).
Measured against Bi = 9 (B = 7 for 3x3) and 12, and against fewer rows for larger
kernels: W7 0.9-1.0x, 5x5 kernels 0.8-0.95x, 112x112 maps 0.7-1.0x, 7x7 even."""

MIN_ROWS = 4


class Blocks:
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
        if g.batch > step:                                  # equal chunks, no small tail
            step = -(-g.batch // -(-g.batch // step))
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
def blocks(g: ConvGeometry) -> Blocks:
    return Blocks(g)


def band_index(bl: Blocks):
    """Index arrays (r, j, t, u, i) of the band's nonzeros: T[c, r, j, t, u] = w[c, r, i, j]
    with u = t*sh + i*dh."""
    g = bl.g
    (kh, kw), sh, dh = g.kernel_size, g.stride[0], g.dilation[0]
    r, i, j, t = np.meshgrid(np.arange(bl.multiplier), np.arange(kh), np.arange(kw),
                             np.arange(bl.rows), indexing="ij")
    return r, j, t, t * sh + i * dh, i


def band(w: np.ndarray, bl: Blocks, transposed: bool = False) -> np.ndarray:
    """T (C, F/C*WW*B + 1, Bi) from w (F, 1, HH, WW), or T^T (C, Bi + 1, F/C*WW*B).

    The last row is a sentinel of zeros: its product row is 0 where the other operand's
    column is finite and nan where it holds an inf or a nan (0 * inf), so one row of the
    product tells whether the band's zeros met a non-finite value."""
    g = bl.g
    c, m, kw = g.in_channels, bl.multiplier, g.kernel_size[1]
    r, j, t, u, i = band_index(bl)
    w4 = w.reshape(c, m, *g.kernel_size)                        # (C, F/C, HH, WW)
    if transposed:
        t_band = np.zeros((c, bl.band + 1, m, kw, bl.rows), dtype=g.dtype)
        t_band[:, u, r, j, t] = w4[:, r, i, j]
        return t_band.reshape(c, bl.band + 1, bl.taps)
    t_band = np.zeros((c, bl.taps + 1, bl.band), dtype=g.dtype)
    t_band[:, :-1].reshape(c, m, kw, bl.rows, bl.band)[:, r, j, t, u] = w4[:, r, i, j]
    return t_band


def lower(x: np.ndarray, bl: Blocks, xq: np.ndarray) -> None:
    """xq (c, Bi, n, nbo, Wq) from the chunk x (n, c, H, W); the padding in xq stays zero."""
    left = bl.g.padding[1][0]
    v0, v1 = bl.v0, bl.v1
    if v1 <= v0:
        return
    x = x[..., v0 - left:v1 - left]
    for b, u0, u1, rows in bl.segments(0, bl.band):
        xq[:, u0:u1, :, b, v0:v1] = x[:, :, rows].transpose(1, 2, 0, 3)   # (c, u, n, v)


def shifted(z: np.ndarray, bl: Blocks, n: int, j: int) -> np.ndarray:
    """Z's kernel column j at the columns o*sw + j*dw: (c, F/C, B, n*nbo, W'), a view."""
    g = bl.g
    c = z.shape[0]
    wo, sw, dw = g.out_size[1], g.stride[1], g.dilation[1]
    z6 = z.reshape(c, bl.multiplier, g.kernel_size[1], bl.rows, n * bl.blocks, bl.cols)
    return z6[:, :, j, :, :, j * dw:j * dw + (wo - 1) * sw + 1:sw]


def staged_cols(bl: Blocks) -> int:
    """Columns of the staged y or dy blocks: Wq at stride 1 (whole shifted rows), else W'."""
    return bl.cols if bl.flat else bl.g.out_size[1]


def sum_columns(z: np.ndarray, bl: Blocks, n: int, yq: np.ndarray) -> None:
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
        z5 = [shifted(z, bl, n, j) for j in range(kw)]
    if kw == 1:
        np.copyto(yq, z5[0])
    else:
        np.add(z5[0], z5[1], out=yq)
    for j in range(2, kw):
        yq += z5[j]


def spread(dy5: np.ndarray, bl: Blocks, dz: np.ndarray) -> None:
    """dZ (c, F/C*WW*B, P) from dy5 (n, c, F/C, H', W'), the chunk of dy: kernel column
    j's rows hold dy shifted by j*dw (column 0's written in blocks by :func:`stage_dy`,
    the others copied from it); the positions no output reaches stay zero."""
    g = bl.g
    n, c = dy5.shape[:2]
    p = dz.shape[2]
    kw, dw, wo = g.kernel_size[1], g.dilation[1], g.out_size[1]
    dz5 = dz.reshape(c, bl.multiplier, kw, bl.rows, p)
    if bl.flat:
        stage_dy(dy5, bl, dz5[:, :, 0].reshape(c, bl.multiplier, bl.rows, n, bl.blocks,
                                                 bl.cols)[..., :wo])
    else:
        stage_dy(dy5, bl, shifted(dz, bl, n, 0).reshape(c, bl.multiplier, bl.rows, n,
                                                             bl.blocks, wo))
    if bl.flat:
        run = p - (kw - 1) * dw
        for j in range(1, kw):
            dz5[:, :, j, :, j * dw:j * dw + run] = dz5[:, :, 0, :, :run]
    else:
        for j in range(1, kw):
            shifted(dz, bl, n, j)[...] = shifted(dz, bl, n, 0)


class Scratch:
    """Buffers reused chunk to chunk, allocated for the first (largest) chunk; zeroed
    again only when the chunk's shape changes (the parts no chunk writes stay zero)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.buffers = {}

    def get(self, name: str, shape: tuple, zero: bool = False) -> np.ndarray:
        flat, old, view = self.buffers.get(name, (None, None, None))
        if old == shape:                  # the same chunk shape again: the same view
            return view
        if flat is None:
            flat = np.empty(math.prod(shape), dtype=self.dtype)
        view = flat[:math.prod(shape)].reshape(shape)
        if zero:
            view[...] = 0
        self.buffers[name] = (flat, shape, view)
        return view


def met_non_finite(sentinel: np.ndarray) -> bool:
    """Whether the sentinel row of a product (:func:`band`) met an inf or a nan: it holds
    only zeros (0 * finite) and nans (0 * inf, 0 * nan), so its sum is 0 or nan (no
    overflow, no warning), one reduction."""
    return bool(sentinel.sum() != 0)


def finite(a: np.ndarray) -> bool:
    """Whether every value is finite."""
    return bool(np.isfinite(a).all())


class NotFinite(Exception):
    """A chunk's result holds an inf or a nan: the fast engine computes the call."""



def unblock(yq: np.ndarray, bl: Blocks, y5: np.ndarray) -> None:
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


def stage_dy(dy5: np.ndarray, bl: Blocks, dyq: np.ndarray) -> None:
    """dyq (c, F/C, B, n, nbo, W') from dy5 (n, c, F/C, H', W'), the chunk of dy: the
    adjoint of :func:`unblock` (the cut rows of the last block stay zero)."""
    rows, ho = bl.rows, bl.g.out_size[0]
    n, c, m, _, wo = dy5.shape
    whole = ho // rows
    if whole:
        dyq[:, :, :, :, :whole] = dy5[:, :, :, :whole * rows].reshape(
            n, c, m, whole, rows, wo).transpose(1, 2, 4, 0, 3, 5)
    if whole < bl.blocks:
        t1 = ho - whole * rows
        dyq[:, :, :t1, :, whole] = dy5[:, :, :, whole * rows:].transpose(1, 2, 3, 0, 4)


def zero_unreached(dx, bl: Blocks, w0: int, w1: int) -> None:
    """Zero the rows and columns of dx that no block's own rows cover (leftover rows
    past the last output, gaps of a stride larger than the kernel): no term reaches them."""
    covered = np.zeros(bl.g.in_size[0], dtype=bool)
    for _, _, _, rows in bl.segments(0, min(bl.main, bl.band)):
        covered[rows] = True
    if not covered.all():
        dx[:, :, ~covered] = 0
    dx[..., :max(w0, 0)] = 0
    dx[..., max(w1, 0):] = 0
