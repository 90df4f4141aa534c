"""Kernel rows: a 2-D stride-1 convolution lowered along its last axis only.

im2col copies every kernel offset's window (C * HH * WW rows of columns), and its adjoint
col2im adds them back one window at a time: on maps of 16-32 columns each of those
copies and additions runs over rows only W' long, and NumPy's per-row cost dominates
(BENCHMARKS.md). Here only the kernel's columns (WW) are lowered; its rows (HH) become
rows of the matrix product, and summing them is an addition of whole shifted blocks of
rows. With a chunk of n samples laid out rows first, (H, n, W), a shift by kh rows is a
contiguous block:

    forward  xw  (C, WW, Hp, n, W')   xw[c, kw, r, m, j] = xp[m, c, r, j + d*kw]
             out (F, HH, Hp, n, W')   = w (F*HH, C*WW) @ xw (C*WW, Hp*n*W')
             y[m, f, i, j] = sum_kh out[f, kh, i + d*kh, m, j]

    dx       dyw (F, WW, H', n, W)    dyw[f, kw, i, m, j + d*kw - lo] = dy[m, f, i, j]
             p   (C, HH, H', n, W)    = w (C*HH, F*WW) @ dyw (F*WW, H'*n*W)
             dx[m, c, i + d*kh - lo, :] += p[c, kh, i, m, :]          for each kh

with xp the input zero-padded (Hp = H + top + bottom rows), d the dilation, lo the
leading padding; only stride 1 (along both axes) and one group. The forward product
also computes the Hp - H' rows that no output needs (Hp/H' more arithmetic: 1.06x on
32x32 maps with padding 1, 1.125x on 16x16); it was measured faster nonetheless (the
CIFAR-sized model's second layer forward 0.8-0.9x, dx 0.66-0.76x; W2's dx 0.6x), and
dx replaces col2im or the swapped correlation. The weight gradient stays im2col's
(dw over kernel rows was measured no faster).

Arrays: x (N, C, H, W), w (F, C, HH, WW), y and dy (N, F, H', W'), C-contiguous, in the
geometry's dtype.
"""
from __future__ import annotations

import functools

import numpy as np

from ..geometry import ConvGeometry
from ..memory import available, check_fits, chunk_step
from .lowering import axis_window

__all__ = ["applies", "fits", "forward", "grad_input", "check_forward", "check_grad_input"]

PREFERRED_BYTES = 2**20
"""Scratch per chunk: about 1 MiB (1-4 samples of the CIFAR-sized second layer, 1 of W2)
was measured fastest; 2 MiB chunks were 1.05-1.2x slower."""


def applies(g: ConvGeometry) -> bool:
    """2-D, stride 1, one group, no negative padding."""
    return (g.nd == 2 and g.groups == 1 and g.stride == (1, 1)
            and all(lo >= 0 and hi >= 0 for lo, hi in g.padding))


@functools.lru_cache(maxsize=256)
def _sizes(g: ConvGeometry, dx: bool):
    """(elements per sample, fixed elements) of the forward's or dx's scratch."""
    c, f = g.in_channels, g.out_channels
    (h, w), (ho, wo), (kh, kw) = g.in_size, g.out_size, g.kernel_size
    weights = f * c * kh * kw                                 # w rearranged
    if dx:                                                    # dyw, p, the dx block
        return f * kw * ho * w + c * kh * ho * w + c * h * w, weights
    hp = h + sum(g.padding[0])
    return c * kw * hp * wo + f * kh * hp * wo + f * ho * wo, weights     # xw, out, y block


@functools.lru_cache(maxsize=256)
def _chunks(g: ConvGeometry, dx: bool, held: int, budget: int) -> tuple:
    per_sample, fixed = _sizes(g, dx)
    itemsize = g.dtype.itemsize
    step = chunk_step(g.batch, per_sample * itemsize, (fixed + held) * itemsize,
                      PREFERRED_BYTES, budget)
    return tuple(slice(i, min(i + step, g.batch)) for i in range(0, g.batch, step))


def _plan(g: ConvGeometry, dx: bool, what: str, held: int = 0) -> tuple:
    """The batch chunks, after a MemoryError naming the size if one sample cannot fit
    (``held``: elements of scratch the caller holds meanwhile)."""
    per_sample, fixed = _sizes(g, dx)
    check_fits((per_sample + fixed + held) * g.dtype.itemsize, what)
    return _chunks(g, dx, held, available())


def fits(g: ConvGeometry, dx: bool, held: int = 0) -> bool:
    """Whether one sample's scratch fits what the budget leaves (else the caller may
    fall back to a path that needs less)."""
    per_sample, fixed = _sizes(g, dx)
    return (per_sample + fixed + held) * g.dtype.itemsize <= available()


def check_forward(g: ConvGeometry, what: str = "the forward pass", held: int = 0) -> None:
    _plan(g, False, what, held)


def check_grad_input(g: ConvGeometry) -> None:
    _plan(g, True, "the input gradient")


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass", held: int = 0) -> np.ndarray:
    """y (N, F, H', W') = x (N, C, H, W) correlated with w (F, C, HH, WW)."""
    chunks = _plan(g, False, what, held)
    c, f = g.in_channels, g.out_channels
    (h, _), (ho, wo), (kh, kw) = g.in_size, g.out_size, g.kernel_size
    (top, bottom), (left, _) = g.padding
    dh, dw = g.dilation
    hp = h + top + bottom
    w_rows = np.ascontiguousarray(w.transpose(0, 2, 1, 3)).reshape(f * kh, c * kw)
    windows = [axis_window(k, g.in_size[1], wo, 1, dw, left) for k in range(kw)]
    y = np.empty(g.y_shape, dtype=g.dtype)
    if not chunks:
        return y
    step = chunks[0].stop - chunks[0].start
    scratch = np.empty(_sizes(g, False)[0] * step, dtype=g.dtype)
    for chunk in chunks:
        n = chunk.stop - chunk.start
        xw_size, out_size = c * kw * hp * n * wo, f * kh * hp * n * wo
        xw = scratch[:xw_size].reshape(c, kw, hp, n, wo)
        out = scratch[xw_size:xw_size + out_size].reshape(f * kh, hp * n * wo)
        block = scratch[xw_size + out_size:xw_size + out_size + f * ho * n * wo]
        block = block.reshape(f, ho, n, wo)
        xw[:, :, :top] = 0                                    # padding rows
        xw[:, :, top + h:] = 0
        rows = x[chunk].transpose(1, 2, 0, 3)                 # (C, H, n, W), a view
        for k, window in enumerate(windows):
            dest = xw[:, k, top:top + h]                      # (C, H, n, W')
            if window is None:
                dest[...] = 0
                continue
            out_slice, in_slice = window
            dest[..., out_slice] = rows[..., in_slice]
            dest[..., :out_slice.start] = 0
            dest[..., out_slice.stop:] = 0
        np.matmul(w_rows, xw.reshape(c * kw, hp * n * wo), out=out)
        out = out.reshape(f, kh, hp, n, wo)
        if kh == 1:
            block[...] = out[:, 0, :ho]
        else:
            np.add(out[:, 0, :ho], out[:, 1, dh:dh + ho], out=block)
            for k in range(2, kh):
                block += out[:, k, dh * k:dh * k + ho]
        y[chunk] = block.transpose(2, 0, 1, 3)               # (n, F, H', W')
    return y


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx (N, C, H, W) from dy (N, F, H', W') and w (F, C, HH, WW): the adjoint of
    :func:`forward`. Its products multiply dy's zero fill by w: only for finite w."""
    chunks = _plan(g, True, "the input gradient")
    c, f = g.in_channels, g.out_channels
    (h, width), (ho, wo), (kh, kw) = g.in_size, g.out_size, g.kernel_size
    (top, _), (left, _) = g.padding
    dh, dw = g.dilation
    w_cols = np.ascontiguousarray(w.transpose(1, 2, 0, 3)).reshape(c * kh, f * kw)
    windows = [axis_window(k, width, wo, 1, dw, left) for k in range(kw)]
    # kernel row k adds p rows i into dx rows i + dh*k - top, where both exist
    row_windows = [axis_window(k, h, ho, 1, dh, top) for k in range(kh)]
    full = next((k for k, window in enumerate(row_windows)
                 if window is not None and range(h)[window[1]] == range(h)), None)
    dx = np.empty(g.x_shape, dtype=g.dtype)
    if not chunks:
        return dx
    step = chunks[0].stop - chunks[0].start
    scratch = np.empty(_sizes(g, True)[0] * step, dtype=g.dtype)
    for chunk in chunks:
        n = chunk.stop - chunk.start
        dyw_size, p_size = f * kw * ho * n * width, c * kh * ho * n * width
        dyw = scratch[:dyw_size].reshape(f, kw, ho, n, width)
        p = scratch[dyw_size:dyw_size + p_size].reshape(c * kh, ho * n * width)
        block = scratch[dyw_size + p_size:dyw_size + p_size + c * h * n * width]
        block = block.reshape(c, h, n, width)
        rows = dy[chunk].transpose(1, 2, 0, 3)                # (F, H', n, W'), a view
        for k, window in enumerate(windows):
            dest = dyw[:, k]                                  # (F, H', n, W)
            if window is None:
                dest[...] = 0
                continue
            out_slice, in_slice = window                      # y column j reads x column
            dest[..., in_slice] = rows[..., out_slice]        # j + dw*k - left
            dest[..., :in_slice.start] = 0
            dest[..., in_slice.stop:] = 0
        np.matmul(w_cols, dyw.reshape(f * kw, ho * n * width), out=p)
        p = p.reshape(c, kh, ho, n, width)
        if full is None:
            block[...] = 0
        else:                                  # a kernel row that covers every dx row
            block[...] = p[:, full, row_windows[full][0]]   # is copied, not added to 0
        for k, window in enumerate(row_windows):
            if window is not None and k != full:
                out_rows, in_rows = window
                block[:, in_rows] += p[:, k, out_rows]
        dx[chunk] = block.transpose(2, 0, 1, 3)              # (n, C, H, W)
    return dx

