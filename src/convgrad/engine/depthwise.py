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
  (docs/math.md#the-weight-gradient-dw);
* :func:`backward`, both: where dx is that forward pass on dy, dw is the rotated weight
  gradient of the same correlation, with x in dy's place: each chunk of dy is laid out
  once, for both products, and x copied into blocks of rows without a halo.

The layout (blocks, bands, the copies in and out): :mod:`.depthwise_layout`.

Applies to 2-D convolutions with one input channel per group (any kernel, stride,
dilation, padding, channel multiplier). The products multiply the padding's zeros (and
the band's) by x, w and dy: where an input holds an inf or a nan, 0 * inf = nan would
spread to outputs PyTorch keeps finite, so such a call (told by a sentinel row of the
band, :func:`.depthwise_layout.band`, or by dw itself) is computed by the fast engine
instead. Each chunk is one channel (or a few) of the whole batch, its scratch near
:data:`.depthwise_layout.PREFERRED_ELEMENTS` (in the CPU's cache); the batch is cut too
where the memory budget asks.

Arrays: x (N, C, H, W), w (F, 1, HH, WW), y and dy (N, F, H', W'), in the geometry's
dtype.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import ConvGeometry
from . import depthwise_layout as layout, fast

__all__ = ["applies", "forward", "grad_input", "grad_weight", "backward", "shares",
           "check_backward"]

def applies(g: ConvGeometry) -> bool:
    """2-D, one input channel per group (depthwise, any channel multiplier F/C)."""
    return g.nd == 2 and g.in_channels == g.groups


def _require(g: ConvGeometry) -> None:
    if not applies(g):
        raise ValueError(f"the depthwise engine applies to 2-D convolutions with one input "
                         f"channel per group; got {g.nd}-D, {g.in_channels} channels in "
                         f"{g.groups} groups")


# ----------------------------------------------------------------------------------------
# The three maps, and the backward pass in one


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass") -> np.ndarray:
    """y = x correlated with w: (N, C, H, W) x (F, 1, HH, WW) -> (N, F, H', W')."""
    _require(g)
    bl = layout.blocks(g)
    y = np.empty(g.y_shape, dtype=g.dtype)
    if y.size == 0:
        return y
    if not layout.finite(w):
        return fast.forward(x, w, g, what)
    try:
        with np.errstate(invalid="ignore"):       # 0 * inf, caught by the sentinel
            _forward(x, layout.band(w, bl), bl, y, what)
    except layout.NotFinite:
        return fast.forward(x, w, g, what)
    return y


def _forward_scratch(bl: layout.Blocks) -> int:
    """Scratch elements per channel and position of :func:`_forward`: xq, Z, the staged y."""
    return bl.band + bl.taps + 1 + bl.multiplier * bl.rows


def _forward(x, t_band, bl: layout.Blocks, y, what: str, held: int = 0) -> None:
    """y from x and the band (:func:`.depthwise_layout.band`), chunk by chunk (``held``:
    elements of scratch the caller holds meanwhile)."""
    g = bl.g
    y5 = y.reshape(g.batch, g.in_channels, bl.multiplier, *g.out_size)  # F = (C, F/C)
    scratch = layout.Scratch(g.dtype)
    for cs, ns in bl.chunks(what, _forward_scratch(bl), fixed=t_band.size + held):
        xq = _lowered(x[ns, cs], bl, scratch, "xq")
        _product(xq, t_band[cs], bl, y5[ns, cs], scratch)


def _lowered(x: np.ndarray, bl: layout.Blocks, scratch: layout.Scratch,
             name: str) -> np.ndarray:
    """xq (c, Bi, n, nbo, Wq) from the chunk x (n, c, H, W) (its padding zero)."""
    n, c = x.shape[:2]
    xq = scratch.get(name, (c, bl.band, n, bl.blocks, bl.cols), zero=True)
    layout.lower(x, bl, xq)
    return xq


def _product(xq, t_band, bl: layout.Blocks, y5, scratch: layout.Scratch) -> None:
    """One chunk's y5 (n, c, F/C, H', W') from its xq (c, Bi, n, nbo, Wq) and band
    t_band (c, F/C*WW*B + 1, Bi); NotFinite where the sentinel row met an inf or a nan."""
    c, n = xq.shape[0], xq.shape[2]
    m, rows, wo, p = bl.multiplier, bl.rows, bl.g.out_size[1], bl.positions(n)
    z = scratch.get("z", (c, bl.taps + 1, p))
    np.matmul(t_band, xq.reshape(c, bl.band, p), out=z)       # (c, F/C*WW*B + 1, P)
    if layout.met_non_finite(z[:, -1]):
        raise layout.NotFinite
    wy = layout.staged_cols(bl)
    yq = scratch.get("yq", (c, m, rows, n * bl.blocks, wy))
    layout.sum_columns(z[:, :-1], bl, n, yq)
    layout.unblock(yq.reshape(c, m, rows, n, bl.blocks, wy)[..., :wo], bl, y5)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw: the band's gradient, summed along its diagonals. -> (F, 1, HH, WW)."""
    _require(g)
    bl = layout.blocks(g)
    if g.batch == 0 or math.prod(g.out_size) == 0:
        return np.zeros(g.w_shape, dtype=g.dtype)
    with np.errstate(invalid="ignore"):           # 0 * inf, caught in dw
        dw = _grad_weight(dy, x, bl)
    return dw if layout.finite(dw) else fast.grad_weight(dy, x, g)


def _grad_weight(dy, x, bl: layout.Blocks) -> np.ndarray:
    g = bl.g
    m, (ho, wo) = bl.multiplier, g.out_size
    dy5 = dy.reshape(g.batch, g.in_channels, m, ho, wo)
    d_band = np.zeros((g.in_channels, bl.taps, bl.band), dtype=g.dtype)
    d_band4 = d_band.reshape(g.in_channels, m, g.kernel_size[1], bl.rows, bl.band)
    scratch = layout.Scratch(g.dtype)
    for cs, ns in bl.chunks("the weight gradient", _forward_scratch(bl),
                            fixed=2 * d_band.size):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        xq = _lowered(x[ns, cs], bl, scratch, "xq").reshape(c, bl.band, p)
        if bl.flat:         # dy once, times x shifted by j*dw: a product per kernel column
            dyq = scratch.get("dyq", (c, m, bl.rows, n, bl.blocks, bl.cols), zero=True)
            layout.stage_dy(dy5[ns, cs], bl, dyq[..., :wo])
            _add_band_grad(dyq.reshape(c, m * bl.rows, p), xq, bl, d_band4[cs])
        else:
            dz = scratch.get("dz", (c, bl.taps, p), zero=True)
            layout.spread(dy5[ns, cs], bl, dz)
            d_band[cs] += np.matmul(dz, xq.swapaxes(1, 2))        # (c, F/C*WW*B, Bi)
    return _diagonals(d_band4, bl)


def _add_band_grad(d, xq, bl: layout.Blocks, d_band4) -> None:
    """d_band4 (c, F/C, WW, B, Bi) += d @ (xq shifted by j*dw)^T for each kernel column
    j, at stride 1 along W: d (c, F/C*B, >= run) dy in blocks, zero past each block row's
    W' columns; xq (c, Bi, P); run = P - (WW-1)*dw columns of each."""
    c, p = xq.shape[0], xq.shape[2]
    kw, dw = bl.g.kernel_size[1], bl.g.dilation[1]
    run = p - (kw - 1) * dw
    d = d[..., :run]
    for j in range(kw):
        shifted = xq[..., j * dw:j * dw + run].swapaxes(1, 2)        # (c, run, Bi)
        d_band4[:, :, j] += np.matmul(d, shifted).reshape(
            c, bl.multiplier, bl.rows, bl.band)                    # (c, F/C, B, Bi)


def _diagonals(d_band4, bl: layout.Blocks) -> np.ndarray:
    """dw (F, 1, HH, WW) from the band's gradient d_band4 (C, F/C, WW, B, Bi)."""
    r, j, t, u, _ = layout.band_index(bl)                         # each (F/C, HH, WW, B)
    return d_band4[:, r, j, t, u].sum(axis=-1).reshape(bl.g.w_shape)  # (C, F/C, HH, WW, B)


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: the adjoint, T^T @ dZ, each block's rows added back. -> (N, C, H, W)."""
    _require(g)
    bl = layout.blocks(g)
    if g.batch == 0:
        return np.zeros(g.x_shape, dtype=g.dtype)
    if not layout.finite(w) or math.prod(g.out_size) == 0:
        return fast.grad_input(dy, w, g)
    dx = np.empty(g.x_shape, dtype=g.dtype)
    try:
        with np.errstate(invalid="ignore"):       # 0 * inf, caught by the sentinel
            if _swaps(g):
                swapped = layout.blocks(fast._swapped_geometry(g))
                rotated = fast._rotated_swapped(w, g.groups)          # (C, 1, HH, WW)
                _forward(dy, layout.band(rotated, swapped), swapped, dx,
                         "the input gradient", held=rotated.size)
            else:
                _grad_input(dy, layout.band(w, bl, transposed=True), bl, dx)
    except layout.NotFinite:
        return fast.grad_input(dy, w, g)
    return dx


def _swaps(g: ConvGeometry) -> bool:
    """dx as the forward correlation of dy with the rotated filters (stride 1, one filter
    per channel: then itself depthwise; docs/math.md#the-input-gradient-dx): measured
    0.85-0.9x the adjoint's time on W7 (no overlapping rows to add back)."""
    return g.stride == (1, 1) and g.out_channels == g.in_channels


def _grad_input(dy, t_band_t, bl: layout.Blocks, dx) -> None:
    """dx from dy and t_band_t (C, Bi + 1, F/C*WW*B), the band transposed
    (:func:`.depthwise_layout.band`)."""
    g = bl.g
    m, (ho, wo) = bl.multiplier, g.out_size
    dy5 = dy.reshape(g.batch, g.in_channels, m, ho, wo)
    left = g.padding[1][0]
    layout.zero_unreached(dx, bl, bl.v0 - left, bl.v1 - left)
    scratch = layout.Scratch(g.dtype)
    for cs, ns in bl.chunks("the input gradient", _forward_scratch(bl), fixed=t_band_t.size):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        dz = scratch.get("dz", (c, bl.taps, p), zero=True)
        layout.spread(dy5[ns, cs], bl, dz)
        dxq = scratch.get("dxq", (c, bl.band + 1, p))
        np.matmul(t_band_t[cs], dz, out=dxq)                    # (c, Bi + 1, P)
        if layout.met_non_finite(dxq[:, -1]):
            raise layout.NotFinite
        if bl.v1 <= bl.v0:
            continue
        dxq = dxq[:, :-1].reshape(c, bl.band, n, bl.blocks, bl.cols)[..., bl.v0:bl.v1]
        out = dx[ns, cs, :, bl.v0 - left:bl.v1 - left]          # (n, c, H, <= W)
        for b, u0, u1, rows in bl.segments(0, min(bl.main, bl.band)):   # own rows
            out[:, :, rows] = dxq[:, u0:u1, :, b].transpose(2, 0, 1, 3)  # (n, c, u, v)
        for b, u0, u1, rows in bl.segments(bl.main, bl.band):  # then the overlap
            out[:, :, rows] += dxq[:, u0:u1, :, b].transpose(2, 0, 1, 3)


def shares(g: ConvGeometry) -> bool:
    """Whether :func:`backward` lays dy out once for both dx and dw: where dx is the
    forward correlation of dy with the rotated filters (:func:`_swaps`: stride 1, one
    filter per channel), so that dw is that correlation's weight gradient, rotated, which
    multiplies the same blocks of dy (:func:`_backward`)."""
    return (applies(g) and _swaps(g) and math.prod(g.out_size) > 0
            and math.prod(g.in_size) > 0)


def backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, g: ConvGeometry,
             need_dx: bool = True, need_dw: bool = True):
    """(dx, dw), each None unless asked for: (N, C, H, W) and (F, 1, HH, WW), from dy
    (N, F, H', W'), x and w. Where :func:`shares` says so, each chunk of dy is laid out
    once, for dw's product (first) and dx's; else :func:`grad_weight`, then
    :func:`grad_input`."""
    _require(g)
    if not (need_dx and need_dw and shares(g) and g.batch and layout.finite(w)):
        dw = grad_weight(dy, x, g) if need_dw else None
        return (grad_input(dy, w, g) if need_dx else None), dw
    try:
        with np.errstate(invalid="ignore"):       # 0 * inf, caught by the sentinel and dw
            dx, dw = _backward(dy, x, w, g)
    except layout.NotFinite:                      # dy holds an inf or a nan
        dw = grad_weight(dy, x, g)
        return fast.grad_input(dy, w, g), dw
    return dx, (dw if layout.finite(dw) else fast.grad_weight(dy, x, g))


def _backward_plan(g: ConvGeometry):
    """(blocks of the swapped geometry, scratch per channel and position, fixed scratch)
    of :func:`_backward`: x's blocks, then dx's product as :func:`_forward`'s."""
    swapped = layout.blocks(fast._swapped_geometry(g))
    bands = g.in_channels * swapped.taps * swapped.band
    fixed = (2 * bands                                               # dw's band, its sum
             + bands + g.in_channels * swapped.band                  # dx's, its sentinel
             + g.out_channels * math.prod(g.kernel_size))            # the rotated filters
    return swapped, swapped.rows + _forward_scratch(swapped), fixed


def _backward(dy, x, w, g: ConvGeometry):
    """dx and dw (:func:`backward`), dy laid out once per chunk. With A_s(w) dx's
    correlation (the swapped geometry, dy -> dx) and rot(w) the rotated filters,
    <dy, A(w) x> = <x, A_s(rot w) dy> (docs/math.md#the-input-gradient-dx), so

        dx = A_s(rot w) dy             (:func:`_forward` on dy's blocks dyq)
        dw = rot(grad_weight_s(x, dy)) (the band's gradient with x in dy's place:
                                        x staged in blocks of B rows times dyq shifted)

    (docs/math.md#the-weight-gradient-dw); x is copied once, without a halo, instead of
    lowered with one."""
    swapped, per_position, fixed = _backward_plan(g)
    bl = swapped
    t_band = layout.band(fast._rotated_swapped(w, g.groups), bl)   # rot(w): (C, 1, HH, WW)
    dx = np.empty(g.x_shape, dtype=g.dtype)
    dx5 = dx.reshape(g.batch, g.in_channels, 1, *g.in_size)          # a view
    x5 = x.reshape(g.batch, g.in_channels, 1, *g.in_size)
    d_band4 = np.zeros((g.in_channels, 1, g.kernel_size[1], bl.rows, bl.band), dtype=g.dtype)
    scratch = layout.Scratch(g.dtype)
    for cs, ns in bl.chunks("the backward pass", per_position, fixed=fixed):
        c, n = cs.stop - cs.start, ns.stop - ns.start
        p = bl.positions(n)
        dyq = _lowered(dy[ns, cs], bl, scratch, "dyq")             # (c, Bi, n, nbo, Wq)
        xs = scratch.get("xs", (c, 1, bl.rows, n, bl.blocks, bl.cols), zero=True)
        layout.stage_dy(x5[ns, cs], bl, xs[..., :g.in_size[1]])   # (c, 1, B, n, nbo, W)
        _add_band_grad(xs.reshape(c, bl.rows, p), dyq.reshape(c, bl.band, p), bl,
                       d_band4[cs])                                # dw first, then dx
        _product(dyq, t_band[cs], bl, dx5[ns, cs], scratch)
    dw_s = _diagonals(d_band4, bl)                                 # (C, 1, HH, WW)
    return dx, np.ascontiguousarray(dw_s[:, :, ::-1, ::-1])


def check_backward(g: ConvGeometry, transposed: bool = False,
                   combined: bool = False) -> None:
    """MemoryError now when dw's or dx's chunks cannot fit, or with ``combined`` those
    of :func:`backward` where it lays dy out once; also the fast engine's, which
    non-finite values are computed by."""
    _require(g)
    fast.check_backward(g, transposed)
    bl = layout.blocks(g)
    per_position = _forward_scratch(bl)
    bands = g.in_channels * bl.taps * bl.band
    bl.chunks("the weight gradient", per_position, fixed=2 * bands)
    if transposed:
        bl.chunks("the forward pass", per_position, fixed=bands)
    elif combined and shares(g):
        swapped, per_position, fixed = _backward_plan(g)
        swapped.chunks("the backward pass", per_position, fixed=fixed)
    elif _swaps(g):
        swapped = layout.blocks(fast._swapped_geometry(g))
        swapped.chunks("the input gradient", _forward_scratch(swapped),
                       fixed=bands + g.out_channels * math.prod(g.kernel_size))
    else:
        bl.chunks("the input gradient", per_position, fixed=bands)
