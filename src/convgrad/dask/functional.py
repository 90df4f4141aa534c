"""The public Dask functions: the NumPy API's names and keywords, on dask arrays, lazily.

    y          = convgrad.dask.conv2d(x, w, b, stride=2, padding="same")     # a dask array
    dx, dw, db = convgrad.dask.conv2d_backward(dy, x, w, b, stride=2, padding="same")
    y.compute()                                   # any scheduler, or a distributed.Client

A forward pass on x chunked along N only runs one task per batch chunk (:mod:`.batch`); on
x chunked along its spatial axes too, one task per chunk with halos (:mod:`.spatial`).
Backward passes, transposed convolutions and padding modes other than 'zeros' need whole
images: spatial chunks are merged there (rechunk), the batch chunks kept. Unbatched
inputs (C, *spatial) work as in the NumPy API (a batch of one inside). The result equals the NumPy API's (the same
arithmetic on each block; sums over blocks in another order, so float64 agrees to about
1e-15 relative).
"""
from __future__ import annotations

from ..geometry import check_algorithm
from . import batch, spatial
from ._graph import as_dask

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
]


def _spatially_chunked(x) -> bool:
    chunks = getattr(x, "chunks", None)
    return chunks is not None and any(len(c) > 1 for c in chunks[2:])


def _batch_of_one(nd: int, op: str, *arrays):
    """Unbatched arrays (C, *spatial), as the NumPy API accepts them, as batches of one;
    returns (arrays, whether x, the first, was unbatched)."""
    arrays = [as_dask(a, f"{op}: {name}") for a, name in zip(arrays, ("x", "dy"))]
    unbatched = arrays[0].ndim == nd + 1
    return [a[None] if unbatched and a.ndim == nd + 1 else a for a in arrays], unbatched


def _conv(nd, x, w, b, stride, padding, dilation, groups, algorithm, padding_mode):
    op = f"dask.conv{nd}d"
    keywords = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                    algorithm=check_algorithm(algorithm, op), padding_mode=padding_mode)
    (x,), unbatched = _batch_of_one(nd, op, x)
    if padding_mode == "zeros" and _spatially_chunked(x):
        y = spatial.forward(nd, op, x, w, b, keywords)
    else:
        y = batch.forward(nd, op, x, w, b, keywords)
    return y[0] if unbatched else y


def _conv_backward(nd, dy, x, w, b, stride, padding, dilation, groups, algorithm,
                   padding_mode, split_every):
    op = f"dask.conv{nd}d_backward"
    keywords = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                    algorithm=check_algorithm(algorithm, op), padding_mode=padding_mode)
    (x, dy), unbatched = _batch_of_one(nd, op, x, dy)
    dx, dw, db = batch.backward(nd, op, dy, x, w, b, keywords, split_every=split_every)
    return (dx[0] if unbatched else dx), dw, db


def _conv_transpose(nd, x, w, b, stride, padding, output_padding, groups, dilation,
                    algorithm):
    op = f"dask.conv_transpose{nd}d"
    keywords = dict(stride=stride, padding=padding, output_padding=output_padding,
                    groups=groups, dilation=dilation, algorithm=check_algorithm(algorithm, op))
    (x,), unbatched = _batch_of_one(nd, op, x)
    y = batch.forward(nd, op, x, w, b, keywords, transpose=True)
    return y[0] if unbatched else y


def _conv_transpose_backward(nd, dy, x, w, b, stride, padding, output_padding, groups,
                             dilation, algorithm, split_every):
    op = f"dask.conv_transpose{nd}d_backward"
    keywords = dict(stride=stride, padding=padding, output_padding=output_padding,
                    groups=groups, dilation=dilation, algorithm=check_algorithm(algorithm, op))
    (x, dy), unbatched = _batch_of_one(nd, op, x, dy)
    dx, dw, db = batch.backward(nd, op, dy, x, w, b, keywords, transpose=True,
                                split_every=split_every)
    return (dx[0] if unbatched else dx), dw, db


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto",
           padding_mode="zeros"):
    return _conv(1, x, w, b, stride, padding, dilation, groups, algorithm, padding_mode)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto",
           padding_mode="zeros"):
    return _conv(2, x, w, b, stride, padding, dilation, groups, algorithm, padding_mode)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto",
           padding_mode="zeros"):
    return _conv(3, x, w, b, stride, padding, dilation, groups, algorithm, padding_mode)


def conv1d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto", padding_mode="zeros", split_every=None):
    return _conv_backward(1, dy, x, w, b, stride, padding, dilation, groups, algorithm,
                          padding_mode, split_every)


def conv2d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto", padding_mode="zeros", split_every=None):
    return _conv_backward(2, dy, x, w, b, stride, padding, dilation, groups, algorithm,
                          padding_mode, split_every)


def conv3d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto", padding_mode="zeros", split_every=None):
    return _conv_backward(3, dy, x, w, b, stride, padding, dilation, groups, algorithm,
                          padding_mode, split_every)


def conv_transpose1d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _conv_transpose(1, x, w, b, stride, padding, output_padding, groups, dilation,
                           algorithm)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _conv_transpose(2, x, w, b, stride, padding, output_padding, groups, dilation,
                           algorithm)


def conv_transpose3d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _conv_transpose(3, x, w, b, stride, padding, output_padding, groups, dilation,
                           algorithm)


def conv_transpose1d_backward(dy, x, w, b=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, algorithm="auto", split_every=None):
    return _conv_transpose_backward(1, dy, x, w, b, stride, padding, output_padding, groups,
                                    dilation, algorithm, split_every)


def conv_transpose2d_backward(dy, x, w, b=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, algorithm="auto", split_every=None):
    return _conv_transpose_backward(2, dy, x, w, b, stride, padding, output_padding, groups,
                                    dilation, algorithm, split_every)


def conv_transpose3d_backward(dy, x, w, b=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, algorithm="auto", split_every=None):
    return _conv_transpose_backward(3, dy, x, w, b, stride, padding, output_padding, groups,
                                    dilation, algorithm, split_every)


_SHAPES = {
    1: dict(x="(N, C, L)", w="(F, C/groups, K)", y="(N, F, L')"),
    2: dict(x="(N, C, H, W)", w="(F, C/groups, HH, WW)", y="(N, F, H', W')"),
    3: dict(x="(N, C, D, H, W)", w="(F, C/groups, KD, KH, KW)", y="(N, F, D', H', W')"),
}
_TRANSPOSE_SHAPES = {
    1: dict(x="(N, C_in, L)", w="(C_in, C_out/groups, K)", y="(N, C_out, L_out)"),
    2: dict(x="(N, C_in, H, W)", w="(C_in, C_out/groups, HH, WW)",
            y="(N, C_out, H_out, W_out)"),
    3: dict(x="(N, C_in, D, H, W)", w="(C_in, C_out/groups, KD, KH, KW)",
            y="(N, C_out, D_out, H_out, W_out)"),
}

_FORWARD = """convgrad.{name} on Dask: the same arguments and result, as a lazy dask array.

    Shape:
        x: {x}, a dask.array (a NumPy array becomes one chunk)
        w: {w}    b: {b} or None (NumPy arrays, sent to each worker once)
        y: {y}, chunked as x along N

    The keywords (stride, padding in every form, dilation, groups{extra}, algorithm) are
    those of convgrad.{name}, whose docstring gives the geometry; errors in them are raised
    here, before any work. An unbatched x (C, *spatial) gives an unbatched y. {chunks}
    """

_BACKWARD = """Gradients of :func:`{name}` on Dask: (dx, dw, db), lazy dask arrays equal to
    convgrad.{name}_backward's (db None when b is None).

    Shape:
        dy: {y}    x: {x}    w: {w}    b: {b} or None
        dx, dw, db: the shapes and dtypes of x, w, b

    dy and x are chunked along N (their batch chunks are aligned if they differ; the other
    axes are merged into one chunk). One task per batch chunk computes that chunk's dx
    and its partial dw with the NumPy API; dw and db are tree reductions of the per-chunk
    partial sums, ``split_every`` (None: Dask's default) of them combined per task.
    """

_SPATIAL = ("Chunks along the spatial axes are kept: each chunk computes the outputs\n"
            "    whose window starts in it, with a halo of dilation*(k-1) values from the next\n"
            "    chunk (map_overlap); chunks smaller than that reach are merged and the channels\n"
            "    become one chunk (rechunk; see convgrad.dask.spatial). With a padding_mode\n"
            "    other than 'zeros' the spatial chunks are merged instead: the padding copies\n"
            "    values from the image's borders.")
_WHOLE = ("Spatial chunks are merged into one (rechunk): each task needs whole images;\n"
          "    the batch chunks are kept.")

for _nd in (1, 2, 3):
    globals()[f"conv{_nd}d"].__doc__ = _FORWARD.format(
        name=f"conv{_nd}d", b="(F,)", extra=", padding_mode", chunks=_SPATIAL,
        **_SHAPES[_nd])
    globals()[f"conv{_nd}d_backward"].__doc__ = _BACKWARD.format(
        name=f"conv{_nd}d", b="(F,)", **_SHAPES[_nd])
    globals()[f"conv_transpose{_nd}d"].__doc__ = _FORWARD.format(
        name=f"conv_transpose{_nd}d", b="(C_out,)", extra=", output_padding",
        chunks=_WHOLE, **_TRANSPOSE_SHAPES[_nd])
    globals()[f"conv_transpose{_nd}d_backward"].__doc__ = _BACKWARD.format(
        name=f"conv_transpose{_nd}d", b="(C_out,)", **_TRANSPOSE_SHAPES[_nd])
del _nd
