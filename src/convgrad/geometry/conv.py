"""The geometry of a convolution and of a transposed convolution, validated once.

Notation (docs/math.md#notation), for ``nd`` spatial axes:

    x  (N, C, *in_size)            input batch, e.g. (N, C, H, W)
    w  (F, C // G, *kernel_size)   filters, e.g. (F, C/G, HH, WW); G = groups
    b  (F,)                        optional bias
    y  (N, F, *out_size)           output; dy has the same shape

A transposed convolution is described by the geometry of the forward convolution it is
the adjoint of (see :func:`conv_transpose_geometry`): its input plays the role of ``y``
and its output the role of ``x``. The gradients a backward and a double backward receive
are checked against the geometry here too (:func:`check_grad_output`,
:func:`check_second_order`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .arrays import AXES, WEIGHT_LAYOUTS, as_float_arrays, check_input_ndim, check_ndim, \
    check_shape, compute_dtype
from .padding_modes import check_mode_fits, check_padding_mode
from .scalars import normalize_padding, ntuple, positive_int

__all__ = ["ConvGeometry", "output_size", "same_padding", "check_groups", "conv_geometry",
           "conv_transpose_geometry", "check_grad_output", "check_second_order"]


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about one convolution except the numbers in its arrays.

    ``padding`` holds ``(lo, hi)`` pairs per spatial axis. ``out_size`` is normally given by
    :func:`output_size`; a transposed convolution with ``output_padding >= stride`` (allowed
    when it is below the dilation, as in PyTorch) reads only the first ``out_size`` outputs
    of the forward convolution it is the adjoint of.
    """

    batch: int                       # N
    in_channels: int                 # C
    out_channels: int                # F
    groups: int                      # G
    in_size: tuple[int, ...]         # (H, W)
    kernel_size: tuple[int, ...]     # (HH, WW)
    stride: tuple[int, ...]          # (sh, sw)
    dilation: tuple[int, ...]        # (dh, dw)
    padding: tuple[tuple[int, int], ...]  # ((top, bottom), (left, right))
    out_size: tuple[int, ...]        # (H', W')
    dtype: np.dtype = np.dtype(np.float64)  # the dtype the arithmetic runs in
    padding_mode: str = "zeros"      # what the padding holds: zeros, or copies of x
    unbatched: bool = False          # x came without its N axis (N = 1 here)

    @property
    def nd(self) -> int:
        """Number of spatial axes."""
        return len(self.in_size)

    @property
    def kernel_extent(self) -> tuple[int, ...]:
        """Dilated kernel size per axis: d * (k - 1) + 1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))

    @property
    def padded_size(self) -> tuple[int, ...]:
        """Spatial size of the zero-padded input."""
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.in_size, self.padding))

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.batch, self.in_channels, *self.in_size)

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def y_shape(self) -> tuple[int, ...]:
        return (self.batch, self.out_channels, *self.out_size)


def same_padding(in_size, kernel_size, stride, dilation):
    """'same' padding: output = ceil(in / stride), the odd pixel after (TF/JAX/ONNX SAME_UPPER).

    At stride 1 this is PyTorch's padding='same'.

    >>> same_padding((5,), (4,), (2,), (1,))      # out 3: (3 - 1) * 2 + 4 - 5 = 3 to pad
    ((1, 2),)
    """
    pairs = []
    for n, k, s, d in zip(in_size, kernel_size, stride, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def output_size(in_size: int, kernel_size: int, stride: int, dilation: int,
                pad_lo: int, pad_hi: int) -> int:
    """H' = floor((H + p_lo + p_hi - d*(k - 1) - 1) / s) + 1: the one output-size formula.

    May be < 1 for impossible geometries; :func:`conv_geometry` turns that into an error.
    """
    return (in_size + pad_lo + pad_hi - dilation * (kernel_size - 1) - 1) // stride + 1


def _check_batch_arrays(op: str, nd: int, x, w, b, x_name="x"):
    """x (batched or not), w and b as float arrays; x comes back batched, with the flag."""
    x, w, b = as_float_arrays({f"{op}: {x_name}": x, f"{op}: w": w, f"{op}: b": b},
                              optional=(f"{op}: b",))
    unbatched = check_input_ndim(x, x_name, nd, op)
    check_ndim(w, "w", nd, WEIGHT_LAYOUTS[nd], op)
    channels, spatial = x.shape[-nd - 1], x.shape[-nd:]
    if channels == 0:
        raise ValueError(f"{op}: {x_name} of shape {x.shape} has no channels (C = 0); "
                         f"expected at least 1 channel")
    zero = [ax for ax, n in zip(AXES[nd], spatial) if n == 0]
    if zero:
        raise ValueError(f"{op}: {x_name} of shape {x.shape} has empty spatial axes "
                         f"({', '.join(zero)}); every spatial size must be at least 1")
    zero = [ax for ax, n in zip(AXES[nd], w.shape[2:]) if n == 0]
    if zero:
        raise ValueError(f"{op}: w of shape {w.shape} has an empty kernel "
                         f"({', '.join(zero)}); every kernel size must be at least 1")
    if unbatched:
        x = x[None]                                            # (1, C, *in), a view
    return x, w, b, unbatched


def check_groups(op, groups, channels, channels_name, filters, filters_name):
    """``groups`` as a positive int dividing both ``channels`` and ``filters``."""
    groups = positive_int(groups, f"{op}: groups")
    if channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {channels_name} "
                         f"({channels}); choose groups among the divisors of {channels}")
    if filters % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {filters_name} "
                         f"({filters}); choose groups among the divisors of {filters}")
    return groups


def _check_bias(op: str, b, n: int, what: str):
    if b is not None and b.shape != (n,):
        raise ValueError(f"{op}: b must have shape ({n},), one value per {what}, "
                         f"got shape {b.shape}")


def _check_fits(op, nd, in_size, kernel, dilation, padding, stride, x_name="x"):
    out = []
    for axis, n, k, d, (lo, hi), s in zip(AXES[nd], in_size, kernel, dilation, padding,
                                          stride):
        size = output_size(n, k, s, d, lo, hi)
        if size < 1:
            extent = d * (k - 1) + 1
            raise ValueError(
                f"{op}: the kernel along {axis} (size {k}, dilation {d}: effective size "
                f"{extent}) is larger than the padded input ({n} + {lo} + {hi} = "
                f"{n + lo + hi}); pad {x_name} by at least {extent - n - lo - hi} more, or "
                f"use a smaller kernel or dilation")
        out.append(size)
    return tuple(out)


def conv_geometry(x, w, b=None, *, nd: int, stride=1, padding=0, dilation=1, groups=1,
                  padding_mode="zeros", op: str = "conv"):
    """Validate a convolution's arguments; return ``(x, w, b, geometry)``.

    The arrays come back as float ndarrays (integers promoted with the float arrays among
    them as NumPy does, float64 when all are integers; never copied otherwise); an unbatched x (C, *in) comes back as a (1, C, *in) view. Raises
    ValueError or TypeError naming the bad value, before any work.
    """
    padding_mode = check_padding_mode(padding_mode, op)
    x, w, b, unbatched = _check_batch_arrays(op, nd, x, w, b)
    stride = ntuple(stride, nd, f"{op}: stride")
    dilation = ntuple(dilation, nd, f"{op}: dilation")
    padding = normalize_padding(padding, nd, f"{op}: padding")
    n, c = x.shape[:2]
    f, cg = w.shape[:2]
    if f == 0:
        raise ValueError(f"{op}: w of shape {w.shape} has no filters (F = 0); expected F >= 1")
    groups = check_groups(op, groups, c, "input channels C", f, "number of filters F")
    if cg * groups != c:
        raise ValueError(
            f"{op}: x has C={c} channels but w of shape {w.shape} expects w.shape[1] x groups "
            f"= {cg} x {groups} = {cg * groups}; w.shape[1] must be C / groups = {c // groups}")
    _check_bias(op, b, f, "filter (F)")
    in_size, kernel = tuple(x.shape[2:]), tuple(w.shape[2:])
    if padding == "valid":
        padding = ((0, 0),) * nd
    elif padding == "same":
        padding = same_padding(in_size, kernel, stride, dilation)
    out = _check_fits(op, nd, in_size, kernel, dilation, padding, stride)
    check_mode_fits(op, nd, in_size, padding, padding_mode)
    geometry = ConvGeometry(n, c, f, groups, in_size, kernel, stride, dilation, padding, out,
                            compute_dtype(x, w, b), padding_mode, unbatched)
    return x, w, b, geometry


def conv_transpose_geometry(x, w, b=None, *, nd: int, stride=1, padding=0,
                            output_padding=0, groups=1, dilation=1, op: str = "conv_transpose"):
    """Validate a transposed convolution's arguments; return ``(x, w, b, geometry)``.

    PyTorch's layout: x (N, C_in, *in), w (C_in, C_out / groups, *kernel), b (C_out,), and
    output size (in - 1) * s - lo - hi + d * (k - 1) + output_padding + 1. The geometry
    returned is that of the forward convolution whose input gradient this is: its ``x`` is
    the transposed output (C = C_out channels) and its ``y`` the transposed input
    (F = C_in channels), with the same weight array.

    padding may also be 'valid' (none) or 'same' (output = in * stride, as TensorFlow's
    conv2d_transpose); with 'same', output_padding is chosen by the geometry and must be 0.
    """
    x, w, b, unbatched = _check_batch_arrays(op, nd, x, w, b)
    stride = ntuple(stride, nd, f"{op}: stride")
    dilation = ntuple(dilation, nd, f"{op}: dilation")
    padding = normalize_padding(padding, nd, f"{op}: padding")
    output_padding = normalize_padding(output_padding, nd, f"{op}: output_padding",
                                       strings=False)
    if any(lo != hi for lo, hi in output_padding):
        raise ValueError(f"{op}: output_padding must be one non-negative int per axis, got "
                         f"{output_padding!r}")
    output_padding = tuple(lo for lo, _ in output_padding)
    n, c_in = x.shape[:2]
    if w.shape[0] != c_in:
        raise ValueError(f"{op}: x has C_in={c_in} channels but w of shape {w.shape} has "
                         f"w.shape[0]={w.shape[0]}; the weight layout is (C_in, C_out/groups, "
                         f"*kernel) and w.shape[0] must equal C_in")
    if w.shape[1] == 0:
        raise ValueError(f"{op}: w of shape {w.shape} gives no output channels "
                         f"(C_out/groups = 0); expected w.shape[1] >= 1")
    groups = check_groups(op, groups, c_in, "input channels C_in", c_in,
                          "input channels C_in")
    c_out = w.shape[1] * groups
    _check_bias(op, b, c_out, "output channel (C_out = w.shape[1] x groups)")
    in_size, kernel = tuple(x.shape[2:]), tuple(w.shape[2:])
    if isinstance(padding, str):
        if any(output_padding):
            raise ValueError(f"{op}: output_padding={output_padding!r} cannot be combined "
                             f"with padding={padding!r}, which sets the output size itself; "
                             f"use output_padding=0")
        if padding == "valid":
            padding = ((0, 0),) * nd
        else:
            out_size = tuple(i * s for i, s in zip(in_size, stride))
            padding = same_padding(out_size, kernel, stride, dilation)
            output_padding = tuple(
                o - ((i - 1) * s - lo - hi + d * (k - 1) + 1)
                for o, i, s, (lo, hi), d, k in zip(out_size, in_size, stride, padding,
                                                    dilation, kernel))
    for axis, extra, s, d in zip(AXES[nd], output_padding, stride, dilation):
        if extra >= max(s, d):
            raise ValueError(f"{op}: output_padding={extra} along {axis} must be smaller than "
                             f"either the stride ({s}) or the dilation ({d})")
    out_size = []
    for axis, i, k, s, d, (lo, hi), extra in zip(AXES[nd], in_size, kernel, stride,
                                                  dilation, padding, output_padding):
        size = (i - 1) * s - lo - hi + d * (k - 1) + extra + 1
        if size < 1:
            raise ValueError(
                f"{op}: the output along {axis} would have size {size} = ({i} - 1) x {s} - "
                f"{lo} - {hi} + {d} x ({k} - 1) + {extra} + 1; the padding (it crops the "
                f"output) must be at most {(i - 1) * s + d * (k - 1) + extra} in total")
        out_size.append(size)
    geometry = ConvGeometry(n, c_out, c_in, groups, tuple(out_size), kernel, stride,
                            dilation, padding, in_size, compute_dtype(x, w, b),
                            unbatched=unbatched)
    return x, w, b, geometry


def check_grad_output(dy, geometry: ConvGeometry, shape: tuple[int, ...], op: str,
                      name: str = "dy", what: str = "the output's shape"):
    """The upstream gradient: a float array of exactly the output's ``shape`` (batched).

    For an unbatched call ``dy`` comes without its N axis, which is added back (a view).
    Returns ``(dy, geometry)``, the geometry's arithmetic dtype promoted to include dy's.
    """
    if geometry.unbatched:
        dy = check_shape(dy, shape[1:], op, name, what, geometry.dtype)[None]
    else:
        dy = check_shape(dy, shape, op, name, what, geometry.dtype)
    dtype = compute_dtype(geometry.dtype, dy.dtype)
    return dy, dataclasses.replace(geometry, dtype=dtype)


def check_second_order(g_dx, g_dw, g_db, geometry: ConvGeometry, dx_shape, w_shape, b,
                       op: str):
    """The gradients a double backward receives, one per output of the backward.

    ``g_dx`` has the shape of the backward's dx (``dx_shape`` batched; unbatched calls
    leave N out), ``g_dw`` that of w, ``g_db`` that of b; each may be None (zero), and
    ``g_db`` must be None when b is None (the backward returns no db then).
    Returns ``(g_dx, g_dw, g_db, geometry)``, the arithmetic dtype promoted to theirs.
    """
    if g_dx is not None:
        g_dx, geometry = check_grad_output(g_dx, geometry, dx_shape, op, "g_dx",
                                           "the shape of the backward's dx")
    if g_dw is not None:
        g_dw = check_shape(g_dw, w_shape, op, "g_dw", "the shape of w", geometry.dtype)
    if g_db is not None:
        if b is None:
            raise ValueError(f"{op}: g_db was given but b is None: without a bias the "
                             f"backward returns no db; pass g_db=None, or pass b")
        g_db = check_shape(g_db, b.shape, op, "g_db", "the shape of b", geometry.dtype)
    dtype = compute_dtype(geometry.dtype, g_dx, g_dw, g_db)
    return g_dx, g_dw, g_db, dataclasses.replace(geometry, dtype=dtype)
