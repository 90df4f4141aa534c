"""The geometry of a pooling window, validated once (PyTorch's options and output sizes).

A pooling layer slides one window over every channel separately (a depthwise window):
x (N, C, *in_size) -> y (N, C, *out_size), with ``kernel_size``, ``stride`` (the kernel by
default), ``padding`` (at most half the window), ``dilation`` and ``ceil_mode`` as in
PyTorch's MaxPool/AvgPool; average pooling adds ``count_include_pad`` and
``divisor_override`` (:func:`check_avg_options`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import AXES, LAYOUTS, UNBATCHED_LAYOUTS, as_float_array, compute_dtype
from .scalars import check_flag, normalize_padding, ntuple, positive_int

__all__ = ["PoolGeometry", "pool_output_size", "check_avg_options", "pool_geometry"]


@dataclass(frozen=True)
class PoolGeometry:
    """Everything about one pooling window except the numbers in its arrays.

    ``padding`` holds the declared ``(lo, hi)`` pairs; with ``ceil_mode`` the last window
    may also hang past the high padding, which :attr:`reach` accounts for. ``unbatched``
    records that the caller gave x as (C, *in_size); the shapes below are always batched.
    """

    batch: int                       # N
    channels: int                    # C
    in_size: tuple[int, ...]         # (H, W)
    kernel_size: tuple[int, ...]     # (HH, WW)
    stride: tuple[int, ...]          # (sh, sw)
    dilation: tuple[int, ...]        # (dh, dw)
    padding: tuple[tuple[int, int], ...]  # ((top, bottom), (left, right))
    out_size: tuple[int, ...]        # (H', W')
    ceil_mode: bool = False
    unbatched: bool = False
    dtype: np.dtype = np.dtype(np.float64)  # the dtype the arithmetic runs in

    @property
    def nd(self) -> int:
        return len(self.in_size)

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels, *self.in_size)

    @property
    def y_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels, *self.out_size)

    @property
    def window_count(self) -> int:
        """Positions in one window: prod(kernel_size)."""
        return int(np.prod(self.kernel_size))

    @property
    def reach(self) -> tuple[int, ...]:
        """Per axis, the extent of the padded input the windows read: (o - 1) s + d (k - 1) + 1."""
        return tuple((o - 1) * s + d * (k - 1) + 1 for o, s, d, k in
                     zip(self.out_size, self.stride, self.dilation, self.kernel_size))


def pool_output_size(in_size: int, kernel_size: int, stride: int, dilation: int,
                     pad_lo: int, pad_hi: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size.

    floor (or ceil, with ``ceil_mode``) of (H + lo + hi - d (k - 1) - 1) / s, plus 1; in
    ceil mode the last window must start inside the input or the low padding, so a window
    that would start in the high padding is dropped.
    """
    span = in_size + pad_lo + pad_hi - dilation * (kernel_size - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if out > 1 and (out - 1) * stride >= in_size + pad_lo:
        out -= 1
    return out


def check_avg_options(count_include_pad, divisor_override, op: str):
    """Average pooling's own options; returns them normalized."""
    count_include_pad = check_flag(count_include_pad, op, "count_include_pad")
    if divisor_override is not None:
        divisor_override = positive_int(divisor_override, f"{op}: divisor_override",
                                        "None or a positive int")
    return count_include_pad, divisor_override


def pool_geometry(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                  nd: int, op: str = "pool", batched_only: bool = False):
    """Validate a pooling window; return ``(x, geometry)`` with x batched (N, C, *in).

    x is (N, C, *in) or, unless ``batched_only``, unbatched (C, *in) as PyTorch accepts
    (then x comes back with a batch axis of 1 and ``geometry.unbatched`` set). ``stride``
    defaults to ``kernel_size``; padding (int, per axis, or (lo, hi) pairs) may be at most
    half the window, as in PyTorch; ``ceil_mode`` rounds the output size up as PyTorch
    does. Every window must read at least one input value (only a dilated window over a
    tiny input can miss it; PyTorch then returns -inf with an out-of-range index).
    """
    x = as_float_array(x, f"{op}: x")
    unbatched = not batched_only and x.ndim == nd + 1
    if not unbatched and x.ndim != nd + 2:
        also = "" if batched_only else f" or {nd + 1}-D {UNBATCHED_LAYOUTS[nd]}"
        raise ValueError(f"{op}: x must be {nd + 2}-D {LAYOUTS[nd]}{also}, got a {x.ndim}-D "
                         f"array of shape {x.shape}")
    if 0 in x.shape[int(not unbatched):]:
        raise ValueError(f"{op}: x of shape {x.shape} has an empty channel or spatial axis; "
                         f"every size except N must be at least 1")
    if unbatched:
        x = x[np.newaxis]                                      # (1, C, *in), a view
    kernel = ntuple(kernel_size, nd, f"{op}: kernel_size")
    stride = kernel if stride is None else ntuple(stride, nd, f"{op}: stride")
    dilation = ntuple(dilation, nd, f"{op}: dilation")
    padding = normalize_padding(padding, nd, f"{op}: padding", strings=False)
    ceil_mode = check_flag(ceil_mode, op, "ceil_mode")
    for axis, k, (lo, hi) in zip(AXES[nd], kernel, padding):
        if max(lo, hi) > k // 2:
            raise ValueError(f"{op}: padding {(lo, hi)} along {axis} must be at most half the "
                             f"window ({k} // 2 = {k // 2})")
    out = []
    for axis, n, k, s, d, (lo, hi) in zip(AXES[nd], x.shape[2:], kernel, stride, dilation,
                                          padding):
        size = pool_output_size(n, k, s, d, lo, hi, ceil_mode)
        extent = d * (k - 1) + 1
        if size < 1:
            raise ValueError(
                f"{op}: the window along {axis} (size {k}, dilation {d}: effective size "
                f"{extent}) is larger than the padded input ({n} + {lo} + {hi} = "
                f"{n + lo + hi}); use a smaller window or dilation, or more padding")
        # Only a window starting in the low padding can miss the input (every other one
        # starts inside it), and only when dilated.
        for o in range(-(-lo // s) if d > 1 else 0):
            start = o * s - lo            # the window's first position, in input coordinates
            if not any(0 <= start + j * d < n for j in range(k)):
                taps = ", ".join(str(start + j * d) for j in range(k))
                raise ValueError(
                    f"{op}: window {o} along {axis} reads only padding (positions {taps} of "
                    f"an input of size {n}, dilation {d}); use less padding or dilation")
        out.append(size)
    geometry = PoolGeometry(x.shape[0], x.shape[1], tuple(x.shape[2:]), kernel, stride,
                            dilation, padding, tuple(out), ceil_mode, unbatched,
                            compute_dtype(x))
    return x, geometry
