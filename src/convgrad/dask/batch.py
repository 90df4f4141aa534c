"""Convolution on a batch chunked along N: each block of samples is independent.

    forward      y[blocks]  = conv(x[block], w) + b                     (map_blocks)
    backward     dx[blocks] = the transposed map of dy[block]            (blockwise)
                 dw = sum over blocks of dw[block]                      (a tree reduction)
                 db = dy summed over N and space                        (a tree reduction)

The NumPy API does the arithmetic on each block; ``w`` and ``b`` are one task each in the
graph (:func:`._graph.broadcast`), fetched once by each worker that needs them. The
channel and spatial axes are merged into one chunk (rechunked) when they are split:
:mod:`.spatial` is the forward pass that keeps spatial chunks.

Shapes (2-D; 1-D drops H, 3-D adds D): x (N, C, H, W), w (F, C/groups, HH, WW), b (F,),
y and dy (N, F, H', W'). For a transposed convolution x is (N, C_in, H, W), w
(C_in, C_out/groups, HH, WW) and y (N, C_out, H_out, W_out).
"""
from __future__ import annotations

import functools

import dask.array as da
import numpy as np

from ._graph import (as_dask, broadcast, conv_function, float_dtype, geometry,
                     grad_output_geometry, meta, whole)

__all__ = ["forward", "backward"]


def _forward_block(x, w=None, b=None, *, function, keywords):
    """One block of samples through the NumPy API: x (n, C, *in) -> y (n, F, *out)."""
    return function(x, w, b, **keywords)


def forward(nd: int, op: str, x, w, b, keywords: dict, *, transpose: bool = False):
    """y = conv(x, w) + b, lazily, one task per batch chunk of x."""
    x = as_dask(x, f"{op}: x")
    w, b, g = geometry(nd, op, x, w, b, keywords, transpose)
    x = whole(x, range(1, nd + 2))
    shape = g.x_shape if transpose else g.y_shape          # the output's (N, F, *out)
    dtype = np.result_type(float_dtype(x, w, b), w, *([] if b is None else [b]))
    block = functools.partial(_forward_block, function=conv_function(nd, transpose, False),
                              keywords=keywords)
    return da.map_blocks(block, x, w=broadcast(w), b=broadcast(b),
                         chunks=(x.chunks[0], *((n,) for n in shape[1:])),
                         meta=meta(nd + 2, dtype), token=op.replace(".", "-"))


def _backward_block(dy, x, w=None, *, function, keywords):
    """One block of samples: (dx (n, C, *in), dw (1, F, C/groups, *K)), dw the block's
    partial sum over its samples."""
    dx, dw, _ = function(dy, x, w, None, **keywords)
    return dx, dw[None]


def _dx(pair):
    return pair[0]


def _dw(pair):
    return pair[1]


def _letters(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(count))


def backward(nd: int, op: str, dy, x, w, b, keywords: dict, *, transpose: bool = False,
             split_every=None):
    """(dx, dw, db), lazily: dx one task per batch chunk, dw and db tree reductions."""
    dy, x = as_dask(dy, f"{op}: dy"), as_dask(x, f"{op}: x")
    w, b, g = geometry(nd, op, x, w, b, keywords, transpose)
    g = grad_output_geometry(dy, g, g.x_shape if transpose else g.y_shape, op)
    every = range(1, nd + 2)
    dy, x = whole(dy, every), whole(x, every)
    block = functools.partial(_backward_block, function=conv_function(nd, transpose, True),
                              keywords=keywords)
    # One task per batch block computes both dx and the partial dw (one call of the NumPy
    # backward); the block is the pair, read by the two arrays below. blockwise aligns the
    # batch chunks of dy and x when they differ.
    dy_axes, x_axes = _letters("dy", nd + 1), _letters("x", nd + 1)
    pairs = da.blockwise(block, ("n",), dy, ("n", *dy_axes), x, ("n", *x_axes),
                         concatenate=True, w=broadcast(w.astype(g.dtype, copy=False)),
                         meta=np.empty((0,), dtype=object), token=op.replace(".", "-"))
    dx_axes, dw_axes = _letters("dx", nd + 1), _letters("dw", nd + 2)
    dx = da.blockwise(_dx, ("n", *dx_axes), pairs, ("n",),
                      new_axes=dict(zip(dx_axes, x.shape[1:])),
                      meta=meta(nd + 2, float_dtype(x, w, b)),
                      token=f"{op}-dx".replace(".", "-"))
    partial_dw = da.blockwise(_dw, ("n", *dw_axes), pairs, ("n",),
                              new_axes=dict(zip(dw_axes, w.shape)), adjust_chunks={"n": 1},
                              meta=meta(nd + 3, g.dtype),
                              token=f"{op}-dw".replace(".", "-"))   # (blocks, *w.shape)
    dw = partial_dw.sum(axis=0, split_every=split_every).astype(w.dtype, copy=False)
    db = None
    if b is not None:
        db = (dy.astype(g.dtype, copy=False)
              .sum(axis=(0, *range(2, nd + 2)), split_every=split_every)
              .astype(b.dtype, copy=False))                               # (F,)
    return dx, dw, db
