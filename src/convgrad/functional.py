"""The public convolution functions: geometry once, then one engine called with roles swapped.

An engine (:mod:`convgrad.engine.fast` or :mod:`convgrad.engine.reference`) provides three linear maps
of one convolution geometry, without bias:

    forward(x, w)       y  = A(w) x            (N, C, *in)  -> (N, F, *out)
    grad_input(dy, w)   dx = A(w)^T dy         (N, F, *out) -> (N, C, *in)
    grad_weight(dy, x)  dw = d<dy, A(w) x>/dw  -> (F, C/G, *K)

and every public function is a combination of them:

    conv               y  = forward(x, w) + b
    conv backward      dx = grad_input(dy, w),  dw = grad_weight(dy, x),  db = sum(dy)
                       (or both from the engine's backward(dy, x, w), where it has one)
    conv double bwd    g_dy = forward(g_dx, w) + forward(x, g_dw) + g_db
                       g_x  = grad_input(dy, g_dw),  g_w = grad_weight(dy, g_dx)
    conv_transpose     y  = grad_input(x, w) + b                (the transposed map)
    its backward       dx = forward(dy, w),     dw = grad_weight(x, dy),  db = sum(dy)
    its double bwd     g_dy = grad_input(g_dx, w) + grad_input(x, g_dw) + g_db
                       g_x  = forward(dy, g_dw),  g_w = grad_weight(g_dx, dy)

(the backward is bilinear in (dy, x) and (dy, w), so its own gradients are the same maps
again: docs/math.md#second-order-gradients). A padding mode other than zeros wraps the
maps: A(w) = C(w) P with P the padding by the mode (:mod:`convgrad.padding`), so
forward and grad_weight read P x and grad_input ends with P^T.

Shapes (cs231n letters, PyTorch layout), for 2-D; 1-D drops H, 3-D adds D:
x (N, C, H, W), w (F, C/groups, HH, WW), b (F,), y and dy (N, F, H', W'). Every x may
also come unbatched, (C, H, W), as in PyTorch; so do y, dy and dx then.
"""
from __future__ import annotations

import math

import numpy as np

from . import padding as padding_modes
from ._functional_docs import document
from .engine import auto, fast, reference, winograd, winograd4, winograd7
from .geometry import (ConvGeometry, check_algorithm, check_grad_output, check_second_order,
                       conv_geometry, conv_transpose_geometry)
from .memory import check_allocation

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv1d_double_backward", "conv2d_double_backward", "conv3d_double_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
    "conv_transpose1d_double_backward", "conv_transpose2d_double_backward",
    "conv_transpose3d_double_backward",
]

_ENGINES = {"auto": auto, "fast": fast, "winograd": winograd, "winograd4": winograd4,
            "winograd7": winograd7, "reference": reference}
# pad by mode and its adjoint: the reference engine's entry-by-entry definition, or slices
_PADDERS = {reference: (reference.pad_by_mode, reference.fold_by_mode),
            fast: (padding_modes.pad, padding_modes.fold),
            auto: (padding_modes.pad, padding_modes.fold),
            winograd: (padding_modes.pad, padding_modes.fold),
            winograd4: (padding_modes.pad, padding_modes.fold),
            winograd7: (padding_modes.pad, padding_modes.fold)}


class _Maps:
    """The three maps of one geometry on the chosen engine, the padding mode around them.

    Arrays go in C-contiguous in the arithmetic dtype (``g.dtype``), batched.
    """

    def __init__(self, algorithm, op: str, g: ConvGeometry):
        self.engine = _ENGINES[check_algorithm(algorithm, op)]
        self.g = g
        if g.padding_mode == "zeros":           # the engine pads, with structural zeros
            self.inner, self._pad, self._fold = g, None, None
        else:                                   # A(w) = C(w) P
            self.inner = padding_modes.padded_geometry(g)
            self._pad, self._fold = _PADDERS[self.engine]

    def padded(self, x: np.ndarray) -> np.ndarray:
        """P x: (N, C, *in) -> (N, C, *padded) for a padding mode, x itself for zeros."""
        return x if self._pad is None else self._pad(x, self.g.padding, self.g.padding_mode)

    def forward(self, x, w):
        return self.engine.forward(self.padded(x), w, self.inner)

    def grad_input(self, dy, w):
        dx = self.engine.grad_input(dy, w, self.inner)
        return dx if self._fold is None else self._fold(dx, self.g.padding, self.g.padding_mode)

    def grad_weight(self, dy, x):
        return self.engine.grad_weight(dy, self.padded(x), self.inner)

    def backward(self, dy, x, w, need_dx: bool = True):
        """(dx or None, dw) of the conv map: the engine's ``backward`` where it has one
        (:func:`convgrad.engine.auto.backward`: the depthwise engine lays dy out once for
        both), else grad_weight, then grad_input."""
        both = getattr(self.engine, "backward", None)
        if both is None:
            dw = self.grad_weight(dy, x)
            return (self.grad_input(dy, w) if need_dx else None), dw
        dx, dw = both(dy, self.padded(x), w, self.inner, need_dx, True)
        if dx is not None and self._fold is not None:
            dx = self._fold(dx, self.g.padding, self.g.padding_mode)
        return dx, dw

    def check_backward(self, transposed: bool = False) -> None:
        """MemoryError now, naming the size, when dw's or dx's scratch cannot fit the
        budget: before dx is computed (the reference engine plans no scratch)."""
        if self.engine is not reference:
            self.engine.check_backward(self.inner, transposed)


def _as(a, g: ConvGeometry):
    """``a`` in the dtype the arithmetic runs in, C-contiguous (copied only if needed)."""
    return None if a is None else np.ascontiguousarray(a, dtype=g.dtype)


_BIAS_BLOCK = 8192
"""Values of a per-filter operand spread over positions, at most (64 KiB in float64)."""


_BIAS_GEMV_POSITIONS = 196
"""From this many positions per map, float64 db sums each map's rows by a product."""


def _filter_blocks(f: int, positions: int):
    """Slices of filters whose positions hold at most _BIAS_BLOCK values together."""
    step = max(1, _BIAS_BLOCK // positions)
    return [slice(i, min(i + step, f)) for i in range(0, f, step)]


def _add_bias(y: np.ndarray, b) -> np.ndarray:
    """y (N, F, *out) += b (F,), in place. y is viewed as (N, F*P) rows and b repeated
    over each filter's P positions, a block of filters at a time: broadcasting a
    (1, F, 1) operand was measured 1.7-2x slower, on 4x4 maps and on 32x32 alike."""
    if b is not None:
        b = b.astype(y.dtype, copy=False)
        n, f, positions = y.shape[0], y.shape[1], math.prod(y.shape[2:])
        if y.flags.c_contiguous and positions <= _BIAS_BLOCK:
            rows = y.reshape(n, f * positions)                 # (N, F*P), a view
            for block in _filter_blocks(f, positions):
                rows[:, block.start * positions:block.stop * positions] += np.repeat(
                    b[block], positions)
        else:
            y += b.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def _bias_grad(dy: np.ndarray, b):
    """db = dy summed over the batch and every spatial axis, in b's dtype. In float32 and
    float64, when the F*P partial sums fit 64 KiB, the sum over the batch is one
    matrix-vector product, ones (N,) @ dy (N, F*P), then over each filter's P positions:
    NumPy's reduction over axes (0, 2, 3) was measured 5-14x slower on 4x4 and 8x8
    maps, 1.2x on 16x16 (a product over a block of columns was slower)."""
    if b is None:
        return None
    n, f, positions = dy.shape[0], dy.shape[1], math.prod(dy.shape[2:])
    if (dy.dtype in (np.float32, np.float64) and dy.flags.c_contiguous
            and f * positions * dy.itemsize <= 64 * 1024):
        sums = np.ones(n, dtype=dy.dtype) @ dy.reshape(n, f * positions)   # (F*P,)
        db = sums.reshape(f, positions).sum(axis=1)                         # (F,)
    elif (dy.dtype == np.float64 and dy.flags.c_contiguous and n * f > 0
            and positions >= _BIAS_GEMV_POSITIONS):
        # larger maps in float64: each (sample, filter) row summed over its P positions
        # by one matrix-vector product, then over the batch: W6's dy (16, 64, 112, 112)
        # 5.4 ms against the reduction's 8.5, W3's 2.0 against 2.5, 28x28 and 14x14
        # 0.88-0.95x, 32x32 1.0x (float32 stays on the pairwise reduction: a dot product over
        # thousands of positions accumulates a larger rounding error)
        sums = dy.reshape(n * f, positions) @ np.ones(positions, dtype=dy.dtype)  # (N*F,)
        db = np.ones(n, dtype=dy.dtype) @ sums.reshape(n, f)                      # (F,)
    else:
        db = dy.sum(axis=(0, *range(2, dy.ndim)))
    return db.astype(b.dtype, copy=False)


def _out_dtype(*arrays) -> np.dtype:
    """NumPy's promotion of the (float) inputs: float32 in, float32 out."""
    return np.result_type(*[a for a in arrays if a is not None])


def _like(a: np.ndarray, like: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``a`` in ``like``'s dtype, its batch axis removed again for an unbatched call."""
    a = a.astype(like.dtype, copy=False)
    return a[0] if g.unbatched else a


# Non-finite values propagate exactly as in the arithmetic (as in PyTorch); NumPy's
# 'invalid value' warnings for them would only be noise, so they are silenced here.
def _quiet():
    return np.errstate(invalid="ignore", over="ignore", divide="ignore")


# ----------------------------------------------------------------------------------------
# Convolution: forward, backward, double backward


def _conv_geometry(nd, op, x, w, b, stride, padding, dilation, groups, padding_mode):
    return conv_geometry(x, w, b, nd=nd, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, padding_mode=padding_mode, op=op)


def _conv(nd, op, x, w, b, stride, padding, dilation, groups, algorithm, padding_mode):
    x, w, b, g = _conv_geometry(nd, op, x, w, b, stride, padding, dilation, groups,
                                padding_mode)
    return checked_forward(g, x, w, b, algorithm, op)


def _conv_backward(nd, op, dy, x, w, b, stride, padding, dilation, groups, algorithm,
                   padding_mode):
    x, w, b, g = _conv_geometry(nd, op, x, w, b, stride, padding, dilation, groups,
                                padding_mode)
    return checked_backward(g, dy, x, w, b, algorithm, op)


def checked_forward(g: ConvGeometry, x, w, b, algorithm="auto", op="conv",
                    transposed=False):
    """The forward pass of arguments already validated into ``g`` (conv_geometry or
    conv_transpose_geometry): x batched, as those return it. For nn layers, which
    validate once per input shape; every public function validates on every call."""
    maps = _Maps(algorithm, op, g)
    check_allocation(g.x_shape if transposed else g.y_shape, g.dtype, f"{op}: the output")
    with _quiet():                          # float16 out: the cast may overflow to inf
        y = (maps.grad_input if transposed else maps.forward)(_as(x, g), _as(w, g))
        y = _add_bias(y, b).astype(_out_dtype(x, w, b), copy=False)
    return y[0] if g.unbatched else y


def checked_backward(g: ConvGeometry, dy, x, w, b, algorithm="auto", op="conv",
                     transposed=False, input_grad=True):
    """(dx, dw, db) for arguments validated into ``g``, as :func:`checked_forward`; dy is
    checked here. ``input_grad=False`` skips dx (None): what a model's first layer needs."""
    dy, g = check_grad_output(dy, g, g.x_shape if transposed else g.y_shape, op)
    maps = _Maps(algorithm, op, g)
    maps.check_backward(transposed=transposed)
    dy_g = _as(dy, g)
    with _quiet():
        # dw first (maps.backward too): columns a layer kept from its forward pass are
        # released before dx allocates its own scratch, which can then reuse their memory
        if transposed:
            dw = maps.grad_weight(_as(x, g), dy_g)
            dx = _like(maps.forward(dy_g, _as(w, g)), x, g) if input_grad else None
        else:
            dx, dw = maps.backward(dy_g, _as(x, g), _as(w, g), input_grad)
            dx = None if dx is None else _like(dx, x, g)
        db = _bias_grad(dy_g, b)
        return dx, dw.astype(w.dtype, copy=False), db


def _conv_double_backward(nd, op, g_dx, g_dw, g_db, dy, x, w, b, stride, padding, dilation,
                          groups, algorithm, padding_mode):
    x, w, b, g = _conv_geometry(nd, op, x, w, b, stride, padding, dilation, groups,
                                padding_mode)
    dy, g = check_grad_output(dy, g, g.y_shape, op)
    g_dx, g_dw, g_db, g = check_second_order(g_dx, g_dw, g_db, g, g.x_shape, w.shape, b, op)
    maps = _Maps(algorithm, op, g)
    dy_g, x_g, w_g, g_dx_g, g_dw_g = (_as(a, g) for a in (dy, x, w, g_dx, g_dw))
    check_allocation(g.y_shape, g.dtype, f"{op}: g_dy")
    with _quiet():
        g_dy = np.zeros(g.y_shape, dtype=g.dtype)
        g_x = np.zeros(g.x_shape, dtype=g.dtype)
        g_w = np.zeros(g.w_shape, dtype=g.dtype)
        if g_dx is not None:                  # dx = A(w)^T dy: bilinear in (dy, w)
            g_dy += maps.forward(g_dx_g, w_g)
            g_w = maps.grad_weight(dy_g, g_dx_g)
        if g_dw is not None:                  # dw = grad_weight(dy, x): bilinear in (dy, x)
            g_dy += maps.forward(x_g, g_dw_g)
            g_x = maps.grad_input(dy_g, g_dw_g)
        _add_bias(g_dy, g_db)                 # db = sum(dy)
        return _like(g_dy, dy, g), _like(g_x, x, g), g_w.astype(w.dtype, copy=False)


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto",
           padding_mode="zeros"):
    return _conv(1, "conv1d", x, w, b, stride, padding, dilation, groups, algorithm,
                 padding_mode)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto",
           padding_mode="zeros"):
    return _conv(2, "conv2d", x, w, b, stride, padding, dilation, groups, algorithm,
                 padding_mode)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto",
           padding_mode="zeros"):
    return _conv(3, "conv3d", x, w, b, stride, padding, dilation, groups, algorithm,
                 padding_mode)


def conv1d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto", padding_mode="zeros"):
    return _conv_backward(1, "conv1d_backward", dy, x, w, b, stride, padding, dilation,
                          groups, algorithm, padding_mode)


def conv2d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto", padding_mode="zeros"):
    return _conv_backward(2, "conv2d_backward", dy, x, w, b, stride, padding, dilation,
                          groups, algorithm, padding_mode)


def conv3d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto", padding_mode="zeros"):
    return _conv_backward(3, "conv3d_backward", dy, x, w, b, stride, padding, dilation,
                          groups, algorithm, padding_mode)


def conv1d_double_backward(g_dx, g_dw, g_db, dy, x, w, b=None, stride=1, padding=0,
                           dilation=1, groups=1, algorithm="auto", padding_mode="zeros"):
    return _conv_double_backward(1, "conv1d_double_backward", g_dx, g_dw, g_db, dy, x, w, b,
                                 stride, padding, dilation, groups, algorithm, padding_mode)


def conv2d_double_backward(g_dx, g_dw, g_db, dy, x, w, b=None, stride=1, padding=0,
                           dilation=1, groups=1, algorithm="auto", padding_mode="zeros"):
    return _conv_double_backward(2, "conv2d_double_backward", g_dx, g_dw, g_db, dy, x, w, b,
                                 stride, padding, dilation, groups, algorithm, padding_mode)


def conv3d_double_backward(g_dx, g_dw, g_db, dy, x, w, b=None, stride=1, padding=0,
                           dilation=1, groups=1, algorithm="auto", padding_mode="zeros"):
    return _conv_double_backward(3, "conv3d_double_backward", g_dx, g_dw, g_db, dy, x, w, b,
                                 stride, padding, dilation, groups, algorithm, padding_mode)


# ----------------------------------------------------------------------------------------
# Transposed convolution: the same maps, the roles of forward and grad_input exchanged


def _transpose_geometry(nd, op, x, w, b, stride, padding, output_padding, groups, dilation):
    return conv_transpose_geometry(x, w, b, nd=nd, stride=stride, padding=padding,
                                   output_padding=output_padding, groups=groups,
                                   dilation=dilation, op=op)


def _conv_transpose(nd, op, x, w, b, stride, padding, output_padding, groups, dilation,
                    algorithm):
    x, w, b, g = _transpose_geometry(nd, op, x, w, b, stride, padding, output_padding,
                                     groups, dilation)
    return checked_forward(g, x, w, b, algorithm, op, transposed=True)


def _conv_transpose_backward(nd, op, dy, x, w, b, stride, padding, output_padding, groups,
                             dilation, algorithm):
    x, w, b, g = _transpose_geometry(nd, op, x, w, b, stride, padding, output_padding,
                                     groups, dilation)
    return checked_backward(g, dy, x, w, b, algorithm, op, transposed=True)


def _conv_transpose_double_backward(nd, op, g_dx, g_dw, g_db, dy, x, w, b, stride, padding,
                                    output_padding, groups, dilation, algorithm):
    x, w, b, g = _transpose_geometry(nd, op, x, w, b, stride, padding, output_padding,
                                     groups, dilation)
    dy, g = check_grad_output(dy, g, g.x_shape, op)
    g_dx, g_dw, g_db, g = check_second_order(g_dx, g_dw, g_db, g, g.y_shape, w.shape, b, op)
    maps = _Maps(algorithm, op, g)
    dy_g, x_g, w_g, g_dx_g, g_dw_g = (_as(a, g) for a in (dy, x, w, g_dx, g_dw))
    check_allocation(g.x_shape, g.dtype, f"{op}: g_dy")
    with _quiet():
        g_dy = np.zeros(g.x_shape, dtype=g.dtype)
        g_x = np.zeros(g.y_shape, dtype=g.dtype)
        g_w = np.zeros(g.w_shape, dtype=g.dtype)
        if g_dx is not None:                  # dx = A(w) dy: bilinear in (dy, w)
            g_dy += maps.grad_input(g_dx_g, w_g)
            g_w = maps.grad_weight(g_dx_g, dy_g)
        if g_dw is not None:                  # dw = grad_weight(x, dy): bilinear in (x, dy)
            g_dy += maps.grad_input(x_g, g_dw_g)
            g_x = maps.forward(dy_g, g_dw_g)
        _add_bias(g_dy, g_db)                 # db = sum(dy)
        return _like(g_dy, dy, g), _like(g_x, x, g), g_w.astype(w.dtype, copy=False)


def conv_transpose1d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _conv_transpose(1, "conv_transpose1d", x, w, b, stride, padding, output_padding,
                           groups, dilation, algorithm)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _conv_transpose(2, "conv_transpose2d", x, w, b, stride, padding, output_padding,
                           groups, dilation, algorithm)


def conv_transpose3d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _conv_transpose(3, "conv_transpose3d", x, w, b, stride, padding, output_padding,
                           groups, dilation, algorithm)


def conv_transpose1d_backward(dy, x, w, b=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, algorithm="auto"):
    return _conv_transpose_backward(1, "conv_transpose1d_backward", dy, x, w, b, stride,
                                    padding, output_padding, groups, dilation, algorithm)


def conv_transpose2d_backward(dy, x, w, b=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, algorithm="auto"):
    return _conv_transpose_backward(2, "conv_transpose2d_backward", dy, x, w, b, stride,
                                    padding, output_padding, groups, dilation, algorithm)


def conv_transpose3d_backward(dy, x, w, b=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, algorithm="auto"):
    return _conv_transpose_backward(3, "conv_transpose3d_backward", dy, x, w, b, stride,
                                    padding, output_padding, groups, dilation, algorithm)


def conv_transpose1d_double_backward(g_dx, g_dw, g_db, dy, x, w, b=None, stride=1, padding=0,
                                     output_padding=0, groups=1, dilation=1,
                                     algorithm="auto"):
    return _conv_transpose_double_backward(1, "conv_transpose1d_double_backward", g_dx, g_dw,
                                           g_db, dy, x, w, b, stride, padding, output_padding,
                                           groups, dilation, algorithm)


def conv_transpose2d_double_backward(g_dx, g_dw, g_db, dy, x, w, b=None, stride=1, padding=0,
                                     output_padding=0, groups=1, dilation=1,
                                     algorithm="auto"):
    return _conv_transpose_double_backward(2, "conv_transpose2d_double_backward", g_dx, g_dw,
                                           g_db, dy, x, w, b, stride, padding, output_padding,
                                           groups, dilation, algorithm)


def conv_transpose3d_double_backward(g_dx, g_dw, g_db, dy, x, w, b=None, stride=1, padding=0,
                                     output_padding=0, groups=1, dilation=1,
                                     algorithm="auto"):
    return _conv_transpose_double_backward(3, "conv_transpose3d_double_backward", g_dx, g_dw,
                                           g_db, dy, x, w, b, stride, padding, output_padding,
                                           groups, dilation, algorithm)


document(globals())
