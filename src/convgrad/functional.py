"""The public convolution functions: geometry once, then one engine called four ways.

An engine (:mod:`convgrad.engine.fast` or :mod:`convgrad.engine.reference`) provides three linear maps
of one convolution geometry, without bias:

    forward(x, w)       y  = A(w) x            (N, C, *in)  -> (N, F, *out)
    grad_input(dy, w)   dx = A(w)^T dy         (N, F, *out) -> (N, C, *in)
    grad_weight(dy, x)  dw = d<dy, A(w) x>/dw  -> (F, C/G, *K)

and every public function is a combination of them:

    conv               y  = forward(x, w) + b
    conv backward      dx = grad_input(dy, w),  dw = grad_weight(dy, x),  db = sum(dy)
    conv_transpose     y  = grad_input(x, w) + b                (the transposed map)
    its backward       dx = forward(dy, w),     dw = grad_weight(x, dy),  db = sum(dy)

Shapes (cs231n letters, PyTorch layout), for 2-D; 1-D drops H, 3-D adds D:
x (N, C, H, W), w (F, C/groups, HH, WW), b (F,), y and dy (N, F, H', W').
"""
from __future__ import annotations

import numpy as np

from .engine import auto, fast, reference, winograd
from .geometry import (ConvGeometry, check_algorithm, check_grad_output, conv_geometry,
                       conv_transpose_geometry)
from .memory import check_allocation

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
]

_ENGINES = {"auto": auto, "fast": fast, "winograd": winograd, "reference": reference}


def _engine(algorithm, op):
    return _ENGINES[check_algorithm(algorithm, op)]


def _as(a: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``a`` in the dtype the arithmetic runs in, C-contiguous (copied only if needed)."""
    return np.ascontiguousarray(a, dtype=g.dtype)


def _add_bias(y: np.ndarray, b) -> np.ndarray:
    if b is not None:
        y += b.astype(y.dtype, copy=False).reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def _bias_grad(dy: np.ndarray, b):
    """db = dy summed over the batch and every spatial axis, in b's dtype."""
    if b is None:
        return None
    return dy.sum(axis=(0, *range(2, dy.ndim))).astype(b.dtype, copy=False)


def _out_dtype(*arrays) -> np.dtype:
    """NumPy's promotion of the (float) inputs: float32 in, float32 out."""
    return np.result_type(*[a for a in arrays if a is not None])


# Non-finite values propagate exactly as in the arithmetic (as in PyTorch); NumPy's
# 'invalid value' warnings for them would only be noise, so they are silenced here.
def _quiet():
    return np.errstate(invalid="ignore", over="ignore", divide="ignore")


def _conv(nd, op, x, w, b, stride, padding, dilation, groups, algorithm):
    engine = _engine(algorithm, op)
    x, w, b, g = conv_geometry(x, w, b, nd=nd, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, op=op)
    check_allocation(g.y_shape, g.dtype, f"{op}: the output")
    with _quiet():                          # float16 out: the cast may overflow to inf
        y = _add_bias(engine.forward(_as(x, g), _as(w, g), g), b)
        return y.astype(_out_dtype(x, w, b), copy=False)


def _conv_backward(nd, op, dy, x, w, b, stride, padding, dilation, groups, algorithm):
    engine = _engine(algorithm, op)
    x, w, b, g = conv_geometry(x, w, b, nd=nd, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, op=op)
    dy, g = check_grad_output(dy, g, g.y_shape, op)
    if engine is not reference:
        engine.check_backward(g)              # dw's scratch too, before dx is computed
    dy_g = _as(dy, g)
    with _quiet():
        dx = engine.grad_input(dy_g, _as(w, g), g)
        dw = engine.grad_weight(dy_g, _as(x, g), g)
        db = _bias_grad(dy_g, b)
        return dx.astype(x.dtype, copy=False), dw.astype(w.dtype, copy=False), db


def _conv_transpose(nd, op, x, w, b, stride, padding, output_padding, groups, dilation,
                    algorithm):
    engine = _engine(algorithm, op)
    x, w, b, g = conv_transpose_geometry(x, w, b, nd=nd, stride=stride, padding=padding,
                                         output_padding=output_padding, groups=groups,
                                         dilation=dilation, op=op)
    check_allocation(g.x_shape, g.dtype, f"{op}: the output")
    with _quiet():
        y = _add_bias(engine.grad_input(_as(x, g), _as(w, g), g), b)
        return y.astype(_out_dtype(x, w, b), copy=False)


def _conv_transpose_backward(nd, op, dy, x, w, b, stride, padding, output_padding, groups,
                             dilation, algorithm):
    engine = _engine(algorithm, op)
    x, w, b, g = conv_transpose_geometry(x, w, b, nd=nd, stride=stride, padding=padding,
                                         output_padding=output_padding, groups=groups,
                                         dilation=dilation, op=op)
    dy, g = check_grad_output(dy, g, g.x_shape, op)
    if engine is not reference:
        engine.check_backward(g, transposed=True)  # dw's scratch too, before dx is computed
    dy_g = _as(dy, g)
    with _quiet():
        dx = engine.forward(dy_g, _as(w, g), g)
        dw = engine.grad_weight(_as(x, g), dy_g, g)
        db = _bias_grad(dy_g, b)
        return dx.astype(x.dtype, copy=False), dw.astype(w.dtype, copy=False), db


# ----------------------------------------------------------------------------------------
# Convolution

_CONV_DOC = """{nd}-D convolution (cross-correlation, as in PyTorch): y = x * w + b.

    Shape:
        x: {x}    w: {w}    b: (F,) or None
        y: {y}, with {out}

    Args:
        stride, dilation: a positive int, or one per spatial axis.
        padding: an int, one int per axis, one (lo, hi) pair per axis, 'valid', or 'same'
            (output = ceil(in / stride) at any stride, the odd pixel after).
        groups: splits C and F into this many independent convolutions (groups = C is
            depthwise).
        algorithm: 'auto' (the fastest measured for the geometry), 'fast' (im2col + BLAS),
            'winograd' (F(2x2, 3x3): 2-D 3x3 stride 1 only) or 'reference' (plain loops).

    Returns y in NumPy's promotion of the inputs' dtypes (float32 in, float32 out).
    Raises ValueError or TypeError, naming the bad value, for an impossible geometry.
    """

_BACKWARD_DOC = """Gradients of :func:`conv{nd}d`: returns (dx, dw, db) for the upstream dy.

    Shape:
        dy: {y}, the shape of conv{nd}d's output
        x: {x}    w: {w}    b: (F,) or None
        dx, dw, db: the shapes and dtypes of x, w, b (db is None when b is None)

    The keywords are those of the forward call. dx is the transposed convolution of dy
    with the filters, dw is x correlated with dy, db is dy summed over all but F.
    """

_SHAPES = {
    1: dict(x="(N, C, L)", w="(F, C/groups, K)", y="(N, F, L')",
            out="L' = floor((L + pad_lo + pad_hi - dilation*(K-1) - 1) / stride) + 1"),
    2: dict(x="(N, C, H, W)", w="(F, C/groups, HH, WW)", y="(N, F, H', W')",
            out="H' = floor((H + pad_top + pad_bottom - dilation*(HH-1) - 1) / stride) + 1"),
    3: dict(x="(N, C, D, H, W)", w="(F, C/groups, KD, KH, KW)", y="(N, F, D', H', W')",
            out="D' = floor((D + pad_lo + pad_hi - dilation*(KD-1) - 1) / stride) + 1"),
}


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    return _conv(1, "conv1d", x, w, b, stride, padding, dilation, groups, algorithm)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    return _conv(2, "conv2d", x, w, b, stride, padding, dilation, groups, algorithm)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    return _conv(3, "conv3d", x, w, b, stride, padding, dilation, groups, algorithm)


def conv1d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto"):
    return _conv_backward(1, "conv1d_backward", dy, x, w, b, stride, padding, dilation,
                          groups, algorithm)


def conv2d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto"):
    return _conv_backward(2, "conv2d_backward", dy, x, w, b, stride, padding, dilation,
                          groups, algorithm)


def conv3d_backward(dy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    algorithm="auto"):
    return _conv_backward(3, "conv3d_backward", dy, x, w, b, stride, padding, dilation,
                          groups, algorithm)


# ----------------------------------------------------------------------------------------
# Transposed convolution

_TRANSPOSE_DOC = """{nd}-D transposed convolution, with PyTorch's semantics and weight layout.

    The adjoint of conv{nd}d with the same w: it scatters each input value through the
    filter, so with stride s it upsamples by s.

    Shape:
        x: {x}    w: {w}    b: (C_out,) or None
        y: {y}, with {out}

    Args:
        stride, dilation, output_padding: one int, or one per spatial axis;
            output_padding (< stride or < dilation) picks among the output sizes that
            give the same conv{nd}d output size.
        padding: an int, one per axis, or (lo, hi) pairs: removed from the output's
            borders; or 'valid' (none) or 'same' (output = in * stride, TensorFlow's
            convention; output_padding must then be 0).
        groups: as in conv{nd}d; w is (C_in, C_out/groups, *kernel).
        algorithm: 'auto', 'fast', 'winograd' (3x3 stride 1, 2-D) or 'reference'.
    """

_TRANSPOSE_BACKWARD_DOC = """Gradients of :func:`conv_transpose{nd}d`: (dx, dw, db) for dy.

    Shape:
        dy: {y}, the shape of conv_transpose{nd}d's output
        dx, dw, db: the shapes and dtypes of x, w, b (db is None when b is None)

    dx is the ordinary convolution of dy with w; dw correlates dy with x.
    """

_TRANSPOSE_SHAPES = {
    1: dict(x="(N, C_in, L)", w="(C_in, C_out/groups, K)", y="(N, C_out, L_out)",
            out="L_out = (L-1)*stride - pad_lo - pad_hi + dilation*(K-1) + output_padding + 1"),
    2: dict(x="(N, C_in, H, W)", w="(C_in, C_out/groups, HH, WW)", y="(N, C_out, H_out, W_out)",
            out="H_out = (H-1)*stride - pad_top - pad_bottom + dilation*(HH-1) "
                "+ output_padding + 1"),
    3: dict(x="(N, C_in, D, H, W)", w="(C_in, C_out/groups, KD, KH, KW)",
            y="(N, C_out, D_out, H_out, W_out)",
            out="D_out = (D-1)*stride - pad_lo - pad_hi + dilation*(KD-1) + output_padding + 1"),
}


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


for _nd in (1, 2, 3):
    globals()[f"conv{_nd}d"].__doc__ = _CONV_DOC.format(nd=_nd, **_SHAPES[_nd])
    globals()[f"conv{_nd}d_backward"].__doc__ = _BACKWARD_DOC.format(nd=_nd, **_SHAPES[_nd])
    globals()[f"conv_transpose{_nd}d"].__doc__ = _TRANSPOSE_DOC.format(
        nd=_nd, **_TRANSPOSE_SHAPES[_nd])
    globals()[f"conv_transpose{_nd}d_backward"].__doc__ = _TRANSPOSE_BACKWARD_DOC.format(
        nd=_nd, **_TRANSPOSE_SHAPES[_nd])
del _nd
