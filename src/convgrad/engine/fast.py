"""The fast engine: a convolution lowered to matrix products (im2col + GEMM) on BLAS.

The forward pass copies, for each kernel offset, the input samples it touches into a
column buffer (:mod:`convgrad.engine.lowering`), then multiplies by the filters in one batched
matrix product, groups being its leading axis (never a Python loop):

    cols  (G, C/G * prod(K), n * P)   the im2col buffer of a chunk of n samples
    y     (G, F/G, n * P)  = w (G, F/G, C/G * prod(K)) @ cols

The backward pass is the same machinery with the roles swapped (docs/math.md):

* dw = dy @ cols^T: x correlated with dy, over the very columns the forward reads;
* dx at stride 1 is a forward correlation of the padded dy with the rotated filters
  (:func:`forward` called again with roles swapped); at stride > 1, where that would
  multiply mostly the inserted zeros, dx = col2im(w^T @ dy), col2im being the adjoint of
  im2col: one strided slice addition per kernel offset.

A 1x1 kernel at stride 1 without padding needs no columns at all: x itself is the
matrix. The batch is processed in chunks sized by :mod:`convgrad.memory`: small enough
to stay in the CPU's cache, never beyond the memory budget.
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry
from ..memory import get_memory_budget, plan_chunks
from .lowering import col2im, im2col, offset_windows

__all__ = ["forward", "grad_input", "grad_weight"]


class _Plan:
    """Sizes and the batch chunks of one geometry; one scratch buffer for all chunks."""

    def __init__(self, g: ConvGeometry, what: str):
        self.g = g
        self.groups = g.groups
        self.f_per_group = g.out_channels // g.groups
        self.rows = (g.in_channels // g.groups) * int(np.prod(g.kernel_size))  # C/G*K
        self.positions = int(np.prod(g.out_size))                               # P
        per_sample = self.groups * self.rows * self.positions * g.dtype.itemsize
        step = plan_chunks(g.batch, per_sample, what, preferred_bytes=_preferred_bytes(
            self.rows, self.positions, per_sample))
        self.chunks = [slice(i, min(i + step, g.batch)) for i in range(0, g.batch, step)]
        self.step = step
        self.windows = offset_windows(g)
        self._buffer = None

    def columns(self, n: int) -> np.ndarray:
        """A (C, *K, n, *out) view of the plan's scratch buffer."""
        g = self.g
        if self._buffer is None:
            self._buffer = np.empty(self.groups * self.rows * self.positions * self.step,
                                    dtype=g.dtype)
        size = self.groups * self.rows * self.positions * n
        return self._buffer[:size].reshape(g.in_channels, *g.kernel_size, n, *g.out_size)

    def matrix(self, cols: np.ndarray) -> np.ndarray:
        """(C, *K, n, *out) -> (G, C/G*K, n*P), a view."""
        return cols.reshape(self.groups, self.rows, cols.size // (self.groups * self.rows))


def _preferred_bytes(rows: int, positions: int, per_sample: int) -> int:
    """How many bytes of columns to process at once (measured, BENCHMARKS.md).

    About 8 MiB: the buffer stays in the last-level cache while it is filled and read.
    A product with many rows (C/G * K >= 256) and few positions per sample is compute
    bound and wants at least 3072 columns, up to 32 MiB.
    """
    if rows >= 256:
        samples = -(-3072 // max(positions, 1))
        return max(8 * 2**20, min(samples * per_sample, 32 * 2**20))
    return 8 * 2**20


def _is_pointwise(g: ConvGeometry) -> bool:
    """1x1 kernel, stride 1, no padding: the input is its own column matrix.

    (A transposed convolution whose output_padding exceeds its stride reads only the
    first out_size positions: then the sizes differ and the general path is taken.)
    """
    return (all(k == 1 for k in g.kernel_size) and all(s == 1 for s in g.stride)
            and all(p == (0, 0) for p in g.padding) and g.out_size == g.in_size)


def _stacked_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[i] = a @ b[i] for every sample i: b (N, G, K, P), a (G, M, K), out (N, G, M, P).

    One BLAS call per sample when each product is large: NumPy's stacked matmul with a
    broadcast operand was measured 20-40% slower than the same products called one by
    one (BENCHMARKS.md); small products keep the single stacked call.
    """
    if a.shape[-2] * a.shape[-1] * b.shape[-1] < 1 << 20:
        return np.matmul(a, b, out=out)
    for i in range(b.shape[0]):
        np.matmul(a, b[i], out=out[i])
    return out


def _by_sample(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, F, *size) -> (N, G, F/G, prod(size)), a view of a C-contiguous array."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, int(np.prod(a.shape[2:])))


def _by_group(a: np.ndarray, groups: int) -> np.ndarray:
    """(n, F, *out) -> (G, F/G, n * P): a view when n == 1, else a transposed copy."""
    n, f = a.shape[:2]
    return a.swapaxes(0, 1).reshape(groups, f // groups, n * int(np.prod(a.shape[2:])))


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass") -> np.ndarray:
    """y = x correlated with w: (N, C, *in) x (F, C/G, *K) -> (N, F, *out), without bias.

    ``what`` names the computation in a MemoryError (the input gradient calls this too).
    """
    y = np.empty(g.y_shape, dtype=g.dtype)
    if _is_pointwise(g):                      # (G, F/G, C/G) @ (N, G, C/G, P)
        _stacked_matmul(w.reshape(g.groups, g.out_channels // g.groups,
                                  g.in_channels // g.groups),
                        _by_sample(x, g.groups), _by_sample(y, g.groups))
        return y
    plan = _Plan(g, what)
    w_mat = w.reshape(plan.groups, plan.f_per_group, plan.rows)  # (G, F/G, C/G*K)
    for chunk in plan.chunks:
        n = chunk.stop - chunk.start
        cols = im2col(x[chunk], g, plan.columns(n), plan.windows)  # (C, *K, n, *out)
        if n == 1:                                                  # straight into y
            np.matmul(w_mat, plan.matrix(cols), out=_by_sample(y[chunk], g.groups)[0])
        else:
            product = np.matmul(w_mat, plan.matrix(cols))           # (G, F/G, n*P)
            y[chunk] = product.reshape(g.out_channels, n, *g.out_size).swapaxes(0, 1)
    return y


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw = dy @ cols^T: x correlated with dy. (N, F, *out), (N, C, *in) -> (F, C/G, *K)."""
    if _is_pointwise(g):                      # sum_n dy[n] (G, F/G, P) @ x[n]^T (G, P, C/G)
        dy_s, x_s = _by_sample(dy, g.groups), _by_sample(x, g.groups)
        dw = np.zeros(g.w_shape[:2], dtype=g.dtype).reshape(g.groups, -1, x_s.shape[2])
        for i in range(g.batch):
            dw += np.matmul(dy_s[i], x_s[i].swapaxes(-1, -2))
        return dw.reshape(g.w_shape)
    plan = _Plan(g, "the weight gradient")
    # OpenBLAS was measured faster on float32 computing dw^T = cols @ dy^T (10-60%), and
    # on float64 computing dw = dy @ cols^T (BENCHMARKS.md): same sums, other orientation.
    transposed = g.dtype == np.float32
    shape = (plan.groups, plan.rows, plan.f_per_group) if transposed else (
        plan.groups, plan.f_per_group, plan.rows)
    dw = np.zeros(shape, dtype=g.dtype)
    for chunk in plan.chunks:
        cols = plan.matrix(im2col(x[chunk], g, plan.columns(chunk.stop - chunk.start),
                                  plan.windows))                    # (G, C/G*K, n*P)
        dy_mat = _by_group(dy[chunk], g.groups)                     # (G, F/G, n*P)
        if transposed:
            dw += np.matmul(cols, dy_mat.swapaxes(1, 2))            # (G, C/G*K, F/G)
        else:
            dw += np.matmul(dy_mat, cols.swapaxes(1, 2))            # (G, F/G, C/G*K)
    if transposed:
        dw = dw.swapaxes(1, 2)
    return np.ascontiguousarray(dw).reshape(g.w_shape)


def _rotated_swapped(w: np.ndarray, groups: int) -> np.ndarray:
    """(F, C/G, *K) -> (C, F/G, *K): filters rotated 180 degrees, F and C swapped per group."""
    f, c_per_group = w.shape[:2]
    kernel = w.shape[2:]
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * len(kernel)]
    blocks = flipped.reshape(groups, f // groups, c_per_group, *kernel).swapaxes(1, 2)
    return np.ascontiguousarray(blocks.reshape(groups * c_per_group, f // groups, *kernel))


def _swapped_geometry(g: ConvGeometry) -> ConvGeometry:
    """dx at stride 1 as a forward correlation: dy (N, F, *out) -> dx (N, C, *in).

    Padding kd-1-lo before and in+kd-1-out-(kd-1-lo) after (docs/math.md#the-input-gradient-dx with s = 1).
    """
    padding = tuple((kd - 1 - lo, n + kd - 1 - o - (kd - 1 - lo))
                    for n, o, kd, (lo, _) in zip(g.in_size, g.out_size, g.kernel_extent,
                                                 g.padding))
    return ConvGeometry(g.batch, g.out_channels, g.in_channels, g.groups, g.out_size,
                        g.kernel_size, g.stride, g.dilation, padding, g.in_size, g.dtype)


def _swap_pays(g: ConvGeometry) -> bool:
    """Whether dx is cheaper as a forward correlation of dy than as col2im(w^T @ dy).

    At stride 1 the swapped correlation copies F*K rows of dy columns where col2im adds
    C*K rows (an addition costs about twice a copy); at stride > 1 it would also multiply
    the s - 1 zeros inserted between dy's entries. Its columns must also fit the memory
    budget for one sample; otherwise col2im, with C*K rows, may still fit.
    """
    swapped_bytes = (g.out_channels * int(np.prod(g.kernel_size)) * int(np.prod(g.in_size))
                     * g.dtype.itemsize)                        # F/G*K rows x G, P = in
    return (all(s == 1 for s in g.stride) and g.out_channels <= 2 * g.in_channels
            and swapped_bytes <= get_memory_budget())


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: the adjoint of the forward map. (N, F, *out), (F, C/G, *K) -> (N, C, *in)."""
    if _is_pointwise(g):                      # (G, C/G, F/G) @ (N, G, F/G, P)
        dx = np.empty(g.x_shape, dtype=g.dtype)
        _stacked_matmul(w.reshape(g.groups, g.out_channels // g.groups,
                                  g.in_channels // g.groups).swapaxes(1, 2),
                        _by_sample(dy, g.groups), _by_sample(dx, g.groups))
        return dx
    if _swap_pays(g) and np.isfinite(w).all():
        # the swapped correlation multiplies dy's padding zeros by w: fine unless w holds
        # an inf or a nan (0 * inf = nan), where col2im, which adds only real terms, is used
        return forward(dy, _rotated_swapped(w, g.groups), _swapped_geometry(g),
                       "the input gradient")
    plan = _Plan(g, "the input gradient")
    dx = np.zeros(g.x_shape, dtype=g.dtype)
    w_t = w.reshape(plan.groups, plan.f_per_group, plan.rows).swapaxes(1, 2)  # (G, C/G*K, F/G)
    for chunk in plan.chunks:
        n = chunk.stop - chunk.start
        dcols = plan.columns(n)                                     # (C, *K, n, *out)
        np.matmul(w_t, _by_group(dy[chunk], g.groups), out=plan.matrix(dcols))
        col2im(dcols, g, dx[chunk], plan.windows)
    return dx
