"""What the Dask functions share: dask arrays in, geometry checked on shapes alone, the
parameters sent to the workers once.

Shapes as in :mod:`convgrad.functional` (2-D; 1-D drops H, 3-D adds D):
x (N, C, H, W), w (F, C/groups, HH, WW), b (F,), y and dy (N, F, H', W').
"""
from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np

from .. import functional
from ..geometry import check_grad_output, conv_geometry, conv_transpose_geometry

__all__ = ["as_dask", "broadcast", "geometry", "grad_output_geometry", "conv_function",
           "float_dtype", "whole", "meta"]


def as_dask(a, name: str):
    """``a`` as a dask array: a dask array is kept, anything else becomes one chunk."""
    if not isinstance(a, da.Array):
        a = np.asarray(a)
        a = da.from_array(a, chunks=a.shape or ())
    if any(math.isnan(n) for n in a.shape):
        raise ValueError(f"{name} has unknown chunk sizes (shape {a.shape}); call "
                         f"{name}.compute_chunk_sizes() first")
    return a


def float_dtype(a: da.Array, *others) -> np.dtype:
    """The dtype the NumPy API reads ``a`` as: floats kept, integers promoted with the float
    arrays they meet (``others``: the validated w and b; None skipped) as NumPy promotes
    them, float64 on their own (other dtypes are refused by the geometry check)."""
    if a.dtype.kind not in "iu":
        return a.dtype
    floats = [o.dtype for o in others if o is not None]
    return np.result_type(a.dtype, *floats) if floats else np.dtype(np.float64)


def _shape_only(a: da.Array) -> np.ndarray:
    """A read-only stand-in with ``a``'s shape and dtype that holds no memory: the
    NumPy API validates it exactly as it would validate the real array."""
    return np.broadcast_to(np.zeros((), a.dtype), a.shape)


def geometry(nd: int, op: str, x: da.Array, w, b, keywords: dict, transpose: bool):
    """Validate the arguments as the NumPy API does; returns ``(w, b, geometry)``.

    ``w`` and ``b`` come back as NumPy arrays; errors name the bad value, before any work.
    """
    validate = conv_transpose_geometry if transpose else conv_geometry
    geometric = {key: value for key, value in keywords.items() if key != "algorithm"}
    _, w, b, g = validate(_shape_only(x), w, b, nd=nd, op=op, **geometric)
    return w, b, g


def grad_output_geometry(dy: da.Array, g, shape, op: str):
    """Check dy's shape and dtype as the NumPy API does; returns the promoted geometry."""
    _, g = check_grad_output(_shape_only(dy), g, shape, op)
    return g


def conv_function(nd: int, transpose: bool, backward: bool):
    """The NumPy function a block runs, e.g. convgrad.conv2d_backward."""
    name = f"conv{'_transpose' if transpose else ''}{nd}d{'_backward' if backward else ''}"
    return getattr(functional, name)


def broadcast(a):
    """A NumPy array as one task of the graph, so that it travels to each worker once
    (instead of being embedded in every block's task); None stays None."""
    if a is None:
        return None
    return dask.delayed(a, pure=True, traverse=False)


def whole(a: da.Array, axes) -> da.Array:
    """``a`` rechunked to one chunk along ``axes`` (a no-op when it already is)."""
    if all(len(a.chunks[axis]) == 1 for axis in axes):
        return a
    return a.rechunk({axis: -1 for axis in axes})


def meta(ndim: int, dtype) -> np.ndarray:
    """An empty array describing a block (so that dask never calls a block function on
    fake data to guess it)."""
    return np.empty((0,) * ndim, dtype=dtype)
