"""Batch normalization: BatchNorm1d/2d/3d, with PyTorch's statistics and defaults.

Per channel c, over the batch and every spatial position (m values):

    mean = (1/m) sum x,   var = (1/m) sum (x - mean)^2           (biased, for normalizing)
    xhat = (x - mean) / sqrt(var + eps),   y = weight * xhat + bias

In training mode the batch's statistics are used, and the running estimates move towards
them: running = (1 - momentum) * running + momentum * batch, with the *unbiased* variance
var * m / (m - 1) (momentum None: the cumulative average over the batches seen). In eval
mode the running estimates replace mean and var, and the layer is an affine map.

The backward pass in training mode goes through the statistics too:

    dxhat = dy * weight
    dx    = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)
    dweight = sum(dy * xhat),   dbias = sum(dy)          (sums and means over all but C)

How it is computed: x is viewed as (N, C*M) (M positions per channel; (N, C, M) for large
maps), per-channel sums are one matrix-vector product with ones and a product-free
``einsum``, and on small maps per-channel scalars are repeated to (C*M,) so that every
pass runs over long contiguous rows. The forward keeps only xc = x - mean and 1/std;
with scale = weight / std,

    y  = xc * scale + bias
    dx = scale * dy - xc * (scale * mean(dy * xc) / std^2) - scale * mean(dy)

the formula above with xhat = xc / std substituted (xc per element, so a mean far from 0
costs no digits). The backward pass computes its correction term in xc's own memory and
lets go of it, as PyTorch frees what a backward pass needed (a second backward pass needs
a forward pass first). Measured (BENCHMARKS.md): the digits model's step 0.72-0.79x the
time of the textbook passes; the correction in place, the layer 0.87-0.91x more.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..geometry import positive_int
from ..memory import check_allocation
from .init import check_dtype
from .module import Module, quiet_arithmetic
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


SHORT_ROWS = 256
"""Below this many positions per channel, per-channel values are repeated over them."""


def _rows(a: np.ndarray, n: int, c: int, m: int) -> np.ndarray:
    """The view every pass works on: (N, C*M) for short maps (M < SHORT_ROWS), where a
    per-channel operand (1, C, 1) would make NumPy loop over runs only M long (measured
    1.3-2x slower on 4x4 maps), else (N, C, M)."""
    return a.reshape(n, c * m) if m < SHORT_ROWS else a.reshape(n, c, m)


def _spread(v: np.ndarray, m: int) -> np.ndarray:
    """(C,) per-channel values as an operand of :func:`_rows`' view: repeated over the
    M positions of each channel, (C*M,), for short maps (at most C * 255 values); else
    (C, 1), broadcast."""
    return np.repeat(v, m) if m < SHORT_ROWS else v.reshape(-1, 1)


def _channel_sum(a: np.ndarray, c: int) -> np.ndarray:
    """(N, C, M) or (N, C*M) -> (C,): the sum over samples (one matrix-vector product,
    measured faster than NumPy's reduction) then over the M positions of each channel."""
    n, k = a.shape[0], math.prod(a.shape[1:])
    return (np.ones(n, dtype=a.dtype) @ a.reshape(n, k)).reshape(c, k // c).sum(axis=1)


def _channel_dot(a: np.ndarray, b: np.ndarray, c: int) -> np.ndarray:
    """(N, C, M) or (N, C*M), twice -> (C,): sum of a * b per channel, without the
    product array."""
    n, k = a.shape[0], math.prod(a.shape[1:])
    return np.einsum("nk,nk->k", a.reshape(n, k), b.reshape(n, k)).reshape(
        c, k // c).sum(axis=1)


class _BatchNorm(Module):
    _buffer_names = ("running_mean", "running_var", "num_batches_tracked")
    _ndims: tuple[int, ...] = (4,)
    _layout = "(N, C, H, W)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, dtype=np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(num_features, f"{name}: num_features")
        if not isinstance(eps, numbers.Real) or isinstance(eps, bool):
            raise TypeError(f"{name}: eps must be a positive float, got {eps!r}")
        if not 0 < eps < math.inf:
            raise ValueError(f"{name}: eps must be a positive float, got {eps!r} (finite, "
                             f"> 0)")
        allowed = "a float in [0, 1] or None (cumulative average)"
        if momentum is not None and (not isinstance(momentum, numbers.Real)
                                     or isinstance(momentum, bool)):
            raise TypeError(f"{name}: momentum must be {allowed}, got {momentum!r}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must be {allowed}, got {momentum!r}")
        for flag, value in (("affine", affine), ("track_running_stats", track_running_stats)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name}: {flag} must be True or False, got {value!r}")
        dtype = check_dtype(dtype, f"{name}: dtype")
        check_allocation((self.num_features,), dtype, f"{name}: the per-channel statistics")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        c = self.num_features
        self.weight = Parameter(np.ones(c, dtype)) if affine else None
        self.bias = Parameter(np.zeros(c, dtype)) if affine else None
        if track_running_stats:
            self.running_mean = np.zeros(c, dtype)
            self.running_var = np.ones(c, dtype)
            self.num_batches_tracked = np.zeros((), np.int64)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self._cache = None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def _check_input(self, x) -> np.ndarray:
        x = self._input(x)
        name = type(self).__name__
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{name}: x must be {self._layout} with C = num_features = "
                             f"{self.num_features}, got shape {x.shape}")
        return x

    @quiet_arithmetic
    def forward(self, x):
        x = self._check_input(x)
        n, c = x.shape[:2]
        m_per = math.prod(x.shape[2:])                          # M: positions per channel
        x2 = _rows(np.ascontiguousarray(x), n, c, m_per)        # (N, C*M) or (N, C, M)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            m = n * m_per
            if self.training and m <= 1:
                raise ValueError(f"{type(self).__name__}: training needs more than one value "
                                 f"per channel, got input shape {x.shape}")
            mean = _channel_sum(x2, c) / x.dtype.type(m)            # (C,)
            xc = np.subtract(x2, _spread(mean, m_per))              # x - mean, x2's shape
            var = _channel_dot(xc, xc, c) / x.dtype.type(m)        # (C,), biased
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var, m)
        else:
            mean, var = self.running_mean, self.running_var
            xc = np.subtract(x2, _spread(mean, m_per))
        inv_std = 1.0 / np.sqrt(var + self.eps)                # (C,)
        self._cache = (xc, inv_std, use_batch, x.shape)
        scale = inv_std if not self.affine else self.weight.data * inv_std     # (C,)
        y = np.multiply(xc, _spread(scale, m_per))              # xhat * weight
        if self.affine:
            y += _spread(self.bias.data, m_per)
        return y.reshape(x.shape)

    def _update_running_stats(self, mean, var, m: int) -> None:
        self.num_batches_tracked += 1
        factor = (self.momentum if self.momentum is not None
                  else 1.0 / float(self.num_batches_tracked))
        unbiased = var * (m / (m - 1))
        self.running_mean[...] = (1 - factor) * self.running_mean + factor * mean
        self.running_var[...] = (1 - factor) * self.running_var + factor * unbiased

    @quiet_arithmetic
    def backward(self, dy):
        xc, inv_std, use_batch, shape = self._saved(self._cache)
        n, c = shape[:2]
        m_per = math.prod(shape[2:])
        dy2 = np.ascontiguousarray(self._grad(dy, shape)).reshape(xc.shape)  # as xc
        weight = self.weight.data if self.affine else None
        scale = inv_std if weight is None else weight * inv_std       # (C,): d y / d x
        sum_dy = _channel_sum(dy2, c) if (self.affine or use_batch) else None
        sum_dy_xc = _channel_dot(dy2, xc, c) if (self.affine or use_batch) else None
        if self.affine:
            self.weight.grad += sum_dy_xc * inv_std                     # sum(dy * xhat)
            self.bias.grad += sum_dy
        dx = np.multiply(dy2, _spread(scale, m_per))                   # dxhat / std
        if use_batch:
            # dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std, per channel
            # with dxhat = dy * weight and xhat = xc / std:
            #   = scale * dy - xc * (scale * mean(dy * xc) / std^2) - scale * mean(dy)
            m = dy2.dtype.type(n * m_per)
            k_xc = scale * (sum_dy_xc / m) * inv_std * inv_std          # (C,)
            correction = np.multiply(xc, _spread(k_xc, m_per), out=xc)  # xc is used up
            correction += _spread(scale * (sum_dy / m), m_per)
            dx -= correction
        self._cache = None                     # as PyTorch frees what backward needed
        return dx.reshape(shape)

    def extra_repr(self) -> str:
        text = f"{self.num_features}"
        if self.eps != 1e-5:
            text += f", eps={self.eps}"
        if self.momentum != 0.1:
            text += f", momentum={self.momentum}"
        if not self.affine:
            text += ", affine=False"
        if not self.track_running_stats:
            text += ", track_running_stats=False"
        dtype = (self.weight.dtype if self.affine else
                 self.running_mean.dtype if self.track_running_stats else None)
        if dtype is not None and dtype != np.float32:
            text += f", dtype={dtype}"
        return text


_DOC = """Batch normalization over {what}, as torch.nn.{name} (module docstring: the math).

    Args:
        num_features: C, the number of channels.
        eps: added to the variance (1e-5).
        momentum: weight of the newest batch in the running estimates (0.1); None for the
            cumulative average.
        affine: learn a per-channel scale ``weight`` (starts at 1) and shift ``bias`` (0).
        track_running_stats: keep running_mean (0), running_var (1) and
            num_batches_tracked as buffers, used in eval mode; if False, batch statistics
            are used in both modes.
        dtype: of parameters and buffers (np.float32 by default).

    Shape:
        x: {layout}    y, dy, dx: x's shape
        weight, bias, running_mean, running_var: (C,)
    """


class BatchNorm1d(_BatchNorm):
    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    _ndims = (4,)
    _layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    _ndims = (5,)
    _layout = "(N, C, D, H, W)"


for _cls, _what in ((BatchNorm1d, "features, or channels of sequences"),
                    (BatchNorm2d, "the channels of images"),
                    (BatchNorm3d, "the channels of volumes")):
    _cls.__doc__ = _DOC.format(what=_what, name=_cls.__name__, layout=_cls._layout)
del _cls, _what
