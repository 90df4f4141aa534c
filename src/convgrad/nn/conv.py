"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d, PyTorch's arguments.

The layers hold the parameters and call :mod:`convgrad.functional` for all arithmetic;
nothing about convolution is computed here. Notation (docs/math.md#notation), 2-D:

    x  (N, C, H, W)          input, C = in_channels
    w  (F, C/G, HH, WW)      Conv2d weight, F = out_channels, G = groups
    w  (C, F/G, HH, WW)      ConvTranspose2d weight (PyTorch's layout: in_channels first)
    b  (F,)                  bias
    y  (N, F, H', W')        output; dy, the upstream gradient, has the same shape

Arguments are validated in the constructor by a dry run of the functional's own checks
(:mod:`convgrad.geometry`) on an empty batch, so the messages are the functional's.

In training mode a (non-transposed) convolution layer keeps the columns its forward pass
lowered x into (:class:`convgrad.engine.columns.ColumnCache`), when they fit the memory
budget, so that the weight gradient of its backward pass need not lower x again; the
layer drops them after the backward pass (or at its next forward pass), keeping their
buffer, counted against the budget, for its next forward pass (at most 16 MiB of such
buffers in all; none in eval mode). The functional API stays stateless.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import functional
from ..engine import columns
from ..geometry import (check_groups, check_padding_mode, conv_geometry,
                        conv_transpose_geometry, normalize_padding, ntuple, positive_int)
from ..memory import check_allocation
from .init import as_generator, check_dtype, default_bound, uniform
from .module import Module
from .parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]


def _padding_for_repr(padding):
    """'same' / 'valid' kept; symmetric pairs shown as one int per axis, as PyTorch does."""
    if isinstance(padding, str):
        return padding
    if all(lo == hi for lo, hi in padding):
        return tuple(lo for lo, _ in padding)
    return padding


class _ConvBase(Module):
    """What Conv and ConvTranspose share: arguments, parameters, repr, backward plumbing."""

    nd: int = 2
    transposed: bool = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, output_padding=0, padding_mode="zeros", *,
                 dtype=np.float32, rng=None):
        super().__init__()
        name, nd = type(self).__name__, self.nd
        self.padding_mode = check_padding_mode(padding_mode, name, transposed=self.transposed)
        self.in_channels = positive_int(in_channels, f"{name}: in_channels")
        self.out_channels = positive_int(out_channels, f"{name}: out_channels")
        self.kernel_size = ntuple(kernel_size, nd, f"{name}: kernel_size")
        self.stride = ntuple(stride, nd, f"{name}: stride")
        self.dilation = ntuple(dilation, nd, f"{name}: dilation")
        self.padding = _padding_for_repr(normalize_padding(padding, nd, f"{name}: padding"))
        self.output_padding = output_padding if self.transposed else 0
        self.groups = check_groups(name, groups, self.in_channels, "in_channels",
                                    self.out_channels, "out_channels")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{name}: bias must be True or False, got {bias!r}")
        dtype = check_dtype(dtype, f"{name}: dtype")
        self._validate(dtype)
        self.output_padding = tuple(lo for lo, _ in normalize_padding(
            self.output_padding, nd, strings=False))         # validated: one int per axis
        rng = as_generator(rng, f"{name}: rng")
        if self.transposed:   # (C_in, C_out/G, *K); PyTorch's fan_in is w.shape[1] * prod(K)
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:                 # (F, C/G, *K)
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        bound = default_bound(int(np.prod(shape[1:])))
        self.weight = Parameter(uniform(rng, bound, shape, dtype))
        self.bias = Parameter(uniform(rng, bound, (self.out_channels,), dtype)) if bias else None
        self._x = None

    def _validate(self, dtype) -> None:
        """Run the functional's geometry checks on an empty batch of the smallest input
        that fits, and refuse, as the functional does (MemoryError naming the size), a
        weight or a smallest output that could never be allocated. Sizes are Python ints
        and the arrays zero-stride views, so stride=2**70 or kernel_size=2**40 meet the
        functional's messages, never NumPy's "Maximum allowed dimension exceeded"."""
        nd, op = self.nd, type(self).__name__
        c, f, groups = self.in_channels, self.out_channels, self.groups
        w_shape = ((c, f // groups) if self.transposed else (f, c // groups)) + self.kernel_size
        check_allocation(w_shape, dtype, f"{op}: the weight")
        size = self._smallest_input()
        check_allocation((1, c, *size), dtype, f"{op}: the smallest input it accepts")
        x, w = (np.broadcast_to(np.zeros((), dtype), shape) for shape in ((0, c, *size), w_shape))
        if self.transposed:
            *_, g = conv_transpose_geometry(x, w, nd=nd, stride=self.stride,
                                            padding=self.padding,
                                            output_padding=self.output_padding,
                                            groups=groups, dilation=self.dilation, op=op)
            out = (1, g.in_channels, *g.in_size)             # the transposed output
        else:
            *_, g = conv_geometry(x, w, nd=nd, stride=self.stride, padding=self.padding,
                                  dilation=self.dilation, groups=groups, op=op)
            out = (1, g.out_channels, *g.out_size)
        check_allocation(out, dtype, f"{op}: the output for the smallest input")

    def _smallest_input(self) -> tuple[int, ...]:
        """Per axis, the smallest input size with an output of at least 1 (Python ints)."""
        if isinstance(self.padding, str):                    # 'same', 'valid' below
            pads = [(0, 0)] * self.nd
        else:
            pads = normalize_padding(self.padding, self.nd)
        extents = [d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation)]
        if not self.transposed:
            if self.padding == "same":
                return (1,) * self.nd
            return tuple(max(e - lo - hi, 1) for e, (lo, hi) in zip(extents, pads))
        extra = [max(pair) for pair in normalize_padding(
            self.output_padding, self.nd, f"{type(self).__name__}: output_padding",
            strings=False)]
        # transposed output (i - 1) * s - lo - hi + extent + extra >= 1
        return tuple(1 + max(0, -(-(lo + hi - e - o + 1) // s))
                     for e, (lo, hi), o, s in zip(extents, pads, extra, self.stride))

    def _keywords(self) -> dict:
        keywords = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                        groups=self.groups)
        if self.transposed:
            keywords["output_padding"] = self.output_padding
        else:
            keywords["padding_mode"] = self.padding_mode
        return keywords

    def _bias(self):
        return None if self.bias is None else self.bias.data

    def _checked(self, x):
        """(x batched, w, b, geometry) for x: validated by the functional's own checks
        (:func:`convgrad.geometry.conv_geometry`, the same messages) the first time this
        shape and dtype meet these arguments, then from the layer's cache, so a training
        loop does not validate the same call again at every step (measured: 35 us a call).
        The arguments are part of the key: changing ``layer.stride`` validates again."""
        w, b, keywords = self.weight.data, self._bias(), self._keywords()
        key = (x.shape, x.dtype, w.shape, w.dtype,
               None if b is None else (b.shape, b.dtype), keywords)
        cached = self.__dict__.get("_geometry")
        if cached is not None and cached[0] == key:
            g = cached[1]
            return (x[None] if g.unbatched else x), w, b, g
        validate = conv_transpose_geometry if self.transposed else conv_geometry
        x, w, b, g = validate(x, w, b, nd=self.nd, op=self._forward_function.__name__,
                              **keywords)
        self._geometry = (key, g)
        return x, w, b, g

    def backward(self, dy):
        return self._backward(dy, input_grad=True)

    def _backward_parameters(self, dy) -> None:
        """Only dw and db of backward(dy): dx, which nothing needs below the first layer
        of a model, is not computed (Sequential.backward(dy, input_grad=False))."""
        self._backward(dy, input_grad=False)

    def _backward(self, dy, input_grad: bool):
        x, w, b, g = self._checked(self._saved(self._x))
        cache = getattr(self, "_columns", None)
        try:
            with (columns.keep_columns(cache) if cache is not None
                  else contextlib.nullcontext()):
                dx, dw, db = functional.checked_backward(
                    g, dy, x, w, b, op=self._backward_function.__name__,
                    transposed=self.transposed, input_grad=input_grad)
        finally:
            if cache is not None:
                cache.release()                # the columns serve one backward pass
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def forward(self, x):
        x = self._input(x)                     # the parameters' dtype, or a TypeError
        saved = x
        x, w, b, g = self._checked(x)
        if self.transposed or not self.training:
            cache = None
            unused = self.__dict__.get("_columns")
            if unused is not None:             # nothing to keep: free the spare buffer
                unused.release()
                unused.drop_spare()
        else:                                  # keep the columns for the backward pass
            cache = self.__dict__.setdefault("_columns", columns.ColumnCache())
            cache.release()
        with (columns.keep_columns(cache, record=True) if cache is not None
              else contextlib.nullcontext()):
            y = functional.checked_forward(g, x, w, b, op=self._forward_function.__name__,
                                           transposed=self.transposed)
        self._x = saved
        return y

    def extra_repr(self) -> str:
        nd = self.nd
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1,) * nd:
            text += f", stride={self.stride}"
        if self.padding != (0,) * nd:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * nd:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        if self.weight.dtype != np.float32:
            text += f", dtype={self.weight.dtype}"
        return text


class _Conv(_ConvBase):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", *, dtype=np.float32,
                 rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode=padding_mode, dtype=dtype, rng=rng)


class _ConvTranspose(_ConvBase):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, output_padding, padding_mode, dtype=dtype, rng=rng)


_CONV_DOC = """{nd}-D convolution layer: y = conv{nd}d(x, weight, bias), PyTorch's arguments.

    Args:
        in_channels (C), out_channels (F): positive ints.
        kernel_size, stride, dilation: an int or one per spatial axis.
        padding: an int, one per axis, (lo, hi) pairs per axis, 'valid', or 'same' (any
            stride: output = ceil(in / stride)).
        groups: divides both C and F.
        bias: whether to add a learned bias.
        padding_mode: what the padding holds: 'zeros' (default), 'reflect', 'replicate' or
            'circular', as in PyTorch (reflect needs padding < size, circular <= size).
        dtype: of the parameters (np.float32 by default).
        rng: None, an int seed or a np.random.Generator for the initial weights, which are
            uniform on +-1/sqrt(fan_in) as PyTorch's default (fan_in = C/groups * prod(K)).

    Shape:
        x: {x}    y: {y}    (or both without N, unbatched, as in PyTorch)
        weight: {w}    bias: (F,)

    x must have the parameters' dtype (another float dtype is a TypeError, as in
    PyTorch); integer inputs, such as uint8 images, are computed in that dtype.
    ``backward(dy)`` returns dx and adds dw, db into ``weight.grad``, ``bias.grad``.
    """

_TRANSPOSE_DOC = """{nd}-D transposed convolution layer: conv_transpose{nd}d, PyTorch's arguments.

    The adjoint of Conv{nd}d: with stride s it upsamples by s. Arguments as Conv{nd}d, plus
    output_padding (an int or one per axis, smaller than the stride or the dilation), which
    picks among the output sizes that a Conv{nd}d with the same arguments maps to one size.
    Note PyTorch's argument order: ..., padding, output_padding, groups, bias, dilation.
    padding_mode is 'zeros' only, as in PyTorch.

    Shape:
        x: {x}    y: {y}    (or both without N, unbatched)
        weight: {w}    bias: (F,), F = out_channels

    Initial weights uniform on +-1/sqrt(fan_in), fan_in = F/groups * prod(K) (PyTorch's).
    """


class Conv1d(_Conv):
    nd = 1
    _forward_function = staticmethod(functional.conv1d)
    _backward_function = staticmethod(functional.conv1d_backward)


class Conv2d(_Conv):
    nd = 2
    _forward_function = staticmethod(functional.conv2d)
    _backward_function = staticmethod(functional.conv2d_backward)


class Conv3d(_Conv):
    nd = 3
    _forward_function = staticmethod(functional.conv3d)
    _backward_function = staticmethod(functional.conv3d_backward)


class ConvTranspose1d(_ConvTranspose):
    nd = 1
    _forward_function = staticmethod(functional.conv_transpose1d)
    _backward_function = staticmethod(functional.conv_transpose1d_backward)


class ConvTranspose2d(_ConvTranspose):
    nd = 2
    _forward_function = staticmethod(functional.conv_transpose2d)
    _backward_function = staticmethod(functional.conv_transpose2d_backward)


class ConvTranspose3d(_ConvTranspose):
    nd = 3
    _forward_function = staticmethod(functional.conv_transpose3d)
    _backward_function = staticmethod(functional.conv_transpose3d_backward)


_LAYOUT = {1: ("(N, C, L)", "(N, F, L')", "(F, C/groups, K)", "(C, F/groups, K)"),
           2: ("(N, C, H, W)", "(N, F, H', W')", "(F, C/groups, HH, WW)",
               "(C, F/groups, HH, WW)"),
           3: ("(N, C, D, H, W)", "(N, F, D', H', W')", "(F, C/groups, KD, KH, KW)",
               "(C, F/groups, KD, KH, KW)")}
for _cls in (Conv1d, Conv2d, Conv3d):
    _x, _y, _w, _ = _LAYOUT[_cls.nd]
    _cls.__doc__ = _CONV_DOC.format(nd=_cls.nd, x=_x, y=_y, w=_w)
for _cls in (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d):
    _x, _y, _, _w = _LAYOUT[_cls.nd]
    _cls.__doc__ = _TRANSPOSE_DOC.format(nd=_cls.nd, x=_x, y=_y, w=_w)
del _cls, _x, _y, _w
