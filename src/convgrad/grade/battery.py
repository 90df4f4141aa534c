"""The battery: the geometries a conv layer is graded on, in rising difficulty.

Each :class:`Geometry` is one cs231n-style case, x (N, C, H, W) and w (F, C, HH, WW) with
an integer stride and pad (the course's ``conv_param``), run in float64 with random data
and a random upstream gradient. The battery covers stride 1 with no, 'same'-sized and
wide padding, strides 2 and 3 with and without leftover rows ((H + 2*pad - HH) not a
multiple of the stride), non-square inputs and kernels, 1x1 kernels, a kernel as large
as the padded input, and N, C, F > 1 all different. Dilation and groups are left out:
the course's API cannot express them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Geometry", "BATTERY", "make_data"]


@dataclass(frozen=True)
class Geometry:
    """One case: shapes, stride and pad (the same along H and W, as in ``conv_param``)."""

    x_shape: tuple          # (N, C, H, W)
    w_shape: tuple          # (F, C, HH, WW)
    stride: int = 1
    pad: int = 0
    label: str = ""

    @property
    def conv_param(self) -> dict:
        return {"stride": self.stride, "pad": self.pad}

    @property
    def out_size(self) -> tuple:
        """(H', W'), with H' = (H + 2*pad - HH) // stride + 1; < 1 when impossible."""
        (_, _, h, w), (_, _, hh, ww) = self.x_shape, self.w_shape
        s, p = self.stride, self.pad
        return (h + 2 * p - hh) // s + 1, (w + 2 * p - ww) // s + 1

    @property
    def y_shape(self) -> tuple:
        return (self.x_shape[0], self.w_shape[0], *self.out_size)

    @property
    def leftover(self) -> tuple:
        """Rows and columns of the padded input that no window reads: (r_h, r_w)."""
        (_, _, h, w), (_, _, hh, ww) = self.x_shape, self.w_shape
        return ((h + 2 * self.pad - hh) % self.stride, (w + 2 * self.pad - ww) % self.stride)

    @property
    def valid(self) -> bool:
        n, c, h, w = self.x_shape
        f, c_w, hh, ww = self.w_shape
        return (min(n, c, h, w, f, hh, ww) >= 1 and c == c_w and self.stride >= 1
                and self.pad >= 0 and min(self.out_size) >= 1)

    @property
    def elements(self) -> int:
        """x.size + w.size: the measure of size that shrinking minimizes."""
        return int(np.prod(self.x_shape) + np.prod(self.w_shape))

    @property
    def multiply_adds(self) -> int:
        """N * F * H' * W' * C * HH * WW: the work of one naive forward."""
        return int(np.prod(self.y_shape) * np.prod(self.w_shape[1:]))

    def describe(self) -> str:
        x, w = ",".join(map(str, self.x_shape)), ",".join(map(str, self.w_shape))
        return f"x ({x}) w ({w}) stride {self.stride} pad {self.pad}"

    def to_json(self) -> dict:
        return {"x_shape": list(self.x_shape), "w_shape": list(self.w_shape),
                "stride": self.stride, "pad": self.pad}


def make_data(geometry: Geometry, seed: int = 0):
    """x, w, b, dy: standard normal float64 (dy of the correct output's shape), in this
    order from ``np.random.default_rng(seed)``, as the printed reproductions draw them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geometry.x_shape)
    w = rng.standard_normal(geometry.w_shape)
    b = rng.standard_normal(geometry.w_shape[0])
    dy = rng.standard_normal(geometry.y_shape)
    return x, w, b, dy


def _g(x, w, stride, pad, label):
    return Geometry(tuple(x), tuple(w), stride, pad, label)


BATTERY = [
    _g((1, 1, 4, 4), (1, 1, 2, 2), 1, 0, "one channel, one filter"),
    _g((2, 3, 5, 5), (4, 3, 3, 3), 1, 0, "stride 1, pad 0"),
    _g((2, 3, 6, 6), (4, 3, 3, 3), 1, 1, "stride 1, 'same' (pad 1)"),
    _g((1, 2, 7, 7), (3, 2, 5, 5), 1, 2, "stride 1, 'same' (pad 2)"),
    _g((2, 3, 5, 5), (3, 3, 3, 3), 1, 1, "stride 1, 'same', C = F"),
    _g((2, 2, 5, 5), (3, 2, 2, 2), 1, 1, "stride 1, even kernel, pad 1"),
    _g((2, 2, 4, 4), (3, 2, 3, 3), 1, 2, "stride 1, pad > kernel/2"),
    _g((1, 2, 3, 3), (2, 2, 2, 2), 1, 3, "stride 1, pad > kernel"),
    _g((2, 3, 5, 8), (4, 3, 3, 3), 1, 1, "non-square input"),
    _g((2, 2, 6, 6), (3, 2, 3, 2), 1, 1, "non-square kernel"),
    _g((2, 4, 5, 5), (3, 4, 1, 1), 1, 0, "1x1 kernel"),
    _g((1, 2, 3, 3), (2, 2, 1, 1), 1, 1, "1x1 kernel, pad 1"),
    _g((1, 2, 7, 7), (2, 2, 3, 3), 2, 0, "stride 2, pad 0"),
    _g((1, 2, 6, 6), (2, 2, 3, 3), 2, 0, "stride 2, pad 0, leftover row"),
    _g((2, 3, 7, 7), (4, 3, 3, 3), 2, 1, "stride 2, pad 1"),
    _g((2, 3, 6, 6), (4, 3, 3, 3), 2, 1, "stride 2, pad 1, leftover row"),
    _g((2, 3, 6, 6), (3, 3, 3, 3), 2, 1, "stride 2, leftover row, C = F"),
    _g((2, 2, 6, 6), (3, 2, 2, 2), 2, 0, "stride 2, 2x2 kernel"),
    _g((1, 2, 5, 5), (2, 2, 3, 3), 2, 2, "stride 2, pad > kernel/2"),
    _g((1, 2, 6, 6), (2, 2, 5, 5), 2, 2, "stride 2, pad 2, leftover row"),
    _g((1, 3, 7, 6), (2, 3, 2, 3), 2, 0, "stride 2, non-square kernel, leftover"),
    _g((2, 2, 8, 5), (3, 2, 3, 1), 2, 1, "stride 2, non-square, leftover row"),
    _g((1, 3, 5, 6), (2, 3, 1, 1), 2, 0, "stride 2, 1x1 kernel, leftover column"),
    _g((1, 2, 8, 8), (3, 2, 2, 2), 3, 0, "stride 3"),
    _g((2, 2, 9, 9), (3, 2, 3, 3), 3, 1, "stride 3, leftover rows"),
    _g((1, 2, 8, 7), (2, 2, 3, 3), 3, 2, "stride 3, leftover columns only"),
    _g((1, 2, 7, 7), (2, 2, 2, 2), 3, 0, "stride 3 > kernel, leftover"),
    _g((2, 3, 5, 5), (4, 3, 5, 5), 1, 0, "kernel = input"),
    _g((2, 3, 4, 4), (2, 3, 6, 6), 1, 1, "kernel = padded input"),
    _g((3, 2, 5, 5), (4, 2, 3, 3), 1, 1, "N, C, F all different"),
    _g((2, 3, 6, 7), (5, 3, 3, 3), 2, 1, "N, C, F different, stride 2"),
]
