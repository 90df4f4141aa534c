"""The fast engine: a convolution lowered to matrix products (im2col + GEMM) on BLAS.

The forward pass copies, for each kernel offset, the input samples it touches into a
column buffer (:mod:`convgrad.engine.lowering`), then multiplies by the filters, groups
being a leading axis of one batched product (never a Python loop). Three layouts, each
measured fastest somewhere (:func:`_layout`, BENCHMARKS.md):

    "rows"      cols (G, C/G*K, n*P): one product for the chunk, y = w @ cols, then a
                transposed copy into y (n, F, P); many rows (deep, narrow layers)
    "samples"   cols (n, G, C/G*K, P): one product per sample, written straight into
                y; few rows (C/G*K <= F/G: first layers)
    "channels"  cols (G, n*P, C/G*K), channels last (:mod:`.channels_last`): short output
                rows (small maps), where the other layouts copy rows a few elements long

How much scratch each needs and how the batch is chunked is :mod:`.plan`. Where the
"rows" layout would run on a 2-D stride-1 geometry with one group, the forward pass and
dx go to :mod:`.kernel_rows` instead (x lowered along W only), which was measured faster.

The backward pass is the same machinery with the roles swapped (docs/math.md):

* dw = dy @ cols^T: x correlated with dy, over the very columns the forward reads (a
  layer of :mod:`convgrad.nn` may keep them from its forward pass: :class:`.columns.ColumnCache`);
* dx by kernel rows where they apply; else, at stride 1, a forward correlation of the
  padded dy with the rotated filters (:func:`forward` called again with roles swapped)
  when that is cheaper; otherwise dx = col2im(w^T @ dy), col2im being the adjoint of
  im2col.

A 1x1 kernel at stride 1 without padding needs no columns at all: x itself is the
matrix. The batch is processed in chunks sized by :mod:`convgrad.memory`, counting every
temporary a chunk needs: small enough to stay in the CPU's cache, never beyond the memory
budget; when one sample cannot fit, a MemoryError names the size before any allocation.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import ConvGeometry
from ..memory import available, check_fits
from . import channels_last, columns, kernel_rows, phases
from .lowering import col2im, im2col
from .plan import (KEEP_MAX_BYTES, Plan, col2im_needs, forward_needs, weight_needs,
                   weight_size)

__all__ = ["forward", "grad_input", "grad_weight", "check_backward"]


def _layout(g: ConvGeometry) -> str:
    """"channels" (:mod:`.channels_last`) for short output rows with several channels;
    "samples" when a product has no more rows than filters per group (C/G*K <= F/G):
    then y's transposed copy costs about as much as the product itself, and writing
    each sample's product straight into y was measured 0.6-0.7x the time (the first
    layers of the CIFAR-sized and digits models); with many rows one large product
    per chunk is faster (W4: "samples" 1.12x; W2, W3, W6 even)."""
    if channels_last.applies(g):
        return "channels"
    rows = (g.in_channels // g.groups) * math.prod(g.kernel_size)
    return "samples" if rows <= g.out_channels // g.groups else "rows"


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
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, math.prod(a.shape[2:]))


def _by_group(a: np.ndarray, groups: int, out: np.ndarray | None = None) -> np.ndarray:
    """(n, F, *out) -> (G, F/G, n * P): a view when n == 1, else a transposed copy (into
    ``out`` (F, n, *out) when given)."""
    n, f = a.shape[:2]
    if n == 1:
        return a.reshape(groups, f // groups, math.prod(a.shape[2:]))
    if out is None:
        out = np.empty((f, n, *a.shape[2:]), dtype=a.dtype)
    out[...] = a.swapaxes(0, 1)
    return out.reshape(groups, f // groups, n * math.prod(a.shape[2:]))


# ----------------------------------------------------------------------------------------
# The three maps


def _forward_plan(g: ConvGeometry, what: str, keep: bool = False, held: int = 0,
                  reusable: int = 0) -> Plan:
    layout = _layout(g)
    extra, fixed = forward_needs(g, layout)
    return Plan(g, what, layout, extra, fixed + held, keep=keep,
                 keep_needs=weight_needs(g, layout) if keep else (0, 0), reusable=reusable)


def forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry,
            what: str = "the forward pass", held: int = 0) -> np.ndarray:
    """y = x correlated with w: (N, C, *in) x (F, C/G, *K) -> (N, F, *out), without bias.

    ``what`` names the computation in a MemoryError (the input gradient calls this too,
    holding ``held`` elements of scratch of its own: the rotated filters).
    """
    if _is_pointwise(g):                      # (G, F/G, C/G) @ (N, G, C/G, P)
        y = np.empty(g.y_shape, dtype=g.dtype)
        _stacked_matmul(w.reshape(g.groups, g.out_channels // g.groups,
                                  g.in_channels // g.groups),
                        _by_sample(x, g.groups), _by_sample(y, g.groups))
        return y
    cache = columns.active()
    record = cache is not None and cache._recording
    # the layer's spare buffer (columns.py) will hold the kept columns: not extra memory
    reusable = cache.spare_nbytes() if record else 0
    plan = None
    if _kernel_rows_forward(g, held):
        if record and _keepable(g):           # the columns, kept, save dw its lowering
            plan = _forward_plan(g, what, keep=True, held=held, reusable=reusable)
        if plan is None or not plan.keep:
            if record:
                cache._recording = False
                cache.drop_spare()
            return kernel_rows.forward(x, w, g, what, held)
    if plan is None:
        plan = _forward_plan(g, what, keep=record, held=held, reusable=reusable)
    if record:
        if plan.keep:
            plan.use_columns(cache.reusable(plan.columns_nbytes(), g.dtype))
        else:
            cache.drop_spare()
    y = np.empty(g.y_shape, dtype=g.dtype)
    if plan.layout == "channels":
        _forward_channels_last(x, w, g, plan, y)
    else:
        _forward_columns(x, w, g, plan, y)
    if record:
        cache._recording = False              # only the layer's own forward call records
        if plan.keep:
            plan._phases = None               # scratch: only the columns are kept
            cache._store(plan, x)
    return y


def _kernel_rows_forward(g: ConvGeometry, held: int = 0) -> bool:
    """Kernel rows (:mod:`.kernel_rows`) instead of the "rows" layout's im2col (unless a
    layer keeps the columns for its weight gradient, or one sample does not fit what the
    budget leaves): measured 0.8-0.9x the time on the CIFAR-sized model's second layer
    and W2 (BENCHMARKS.md)."""
    return (kernel_rows.applies(g) and _layout(g) == "rows"
            and kernel_rows.fits(g, False, held))


def _keepable(g: ConvGeometry) -> bool:
    """Whether the whole batch's columns are small enough to be kept (KEEP_MAX_BYTES)."""
    sample_columns = g.in_channels * math.prod(g.kernel_size) * math.prod(g.out_size)
    return 0 < g.batch * sample_columns * g.dtype.itemsize <= KEEP_MAX_BYTES


def _forward_channels_last(x, w, g: ConvGeometry, plan: Plan, y) -> None:
    """y (N, F, *out) = cols (n*P, G, R) @ w (G, R, F/G), channels last, chunk by chunk."""
    w_cl = channels_last.filters(w, g.groups).swapaxes(1, 2)   # (G, R, F/G)
    f, p = g.out_channels, plan.positions
    for chunk in plan.chunks:
        n = chunk.stop - chunk.start
        product, xp = plan.scratch(n, (n * p, f), (n, *channels_last.extent(g),
                                                    g.in_channels))
        cols = channels_last.lower(x[chunk], g, xp, plan.columns(chunk))
        np.matmul(plan.matrix(cols), w_cl,                          # (G, n*P, F/G)
                  out=product.reshape(n * p, g.groups, f // g.groups).swapaxes(0, 1))
        y[chunk].reshape(n, f, p)[...] = product.reshape(n, p, f).swapaxes(1, 2)


def _forward_columns(x, w, g: ConvGeometry, plan: Plan, y) -> None:
    """y = w @ cols, in the "rows" or "samples" layout, chunk by chunk."""
    w_mat = w.reshape(plan.groups, plan.f_per_group, plan.rows)  # (G, F/G, R)
    for chunk in plan.chunks:
        n = chunk.stop - chunk.start
        cols = plan.matrix(_im2col(x[chunk], g, plan, plan.columns(chunk)))
        if plan.layout == "samples":                                # (n, G, R, P)
            _stacked_matmul(w_mat, cols, _by_sample(y[chunk], g.groups))
        elif n == 1:                                                # straight into y
            np.matmul(w_mat, cols, out=_by_sample(y[chunk], g.groups)[0])
        else:                                                       # (G, F/G, n*P)
            product = plan.scratch(n, (plan.groups, plan.f_per_group, n * plan.positions))
            np.matmul(w_mat, cols, out=product)
            y[chunk] = product.reshape(g.out_channels, n, *g.out_size).swapaxes(0, 1)


def _im2col(x, g: ConvGeometry, plan: Plan, cols) -> np.ndarray:
    """cols from x (n, C, *in) in the plan's layout: through x split by phase at
    stride > 1 (:mod:`.phases`), else offset by offset (:mod:`.lowering`)."""
    if plan.phased:
        return phases.im2col(x, g, cols, plan.phases(x.shape[0]), plan.layout)
    return im2col(x, g, cols, plan.windows, plan.layout)


def _weight_plan(g: ConvGeometry) -> Plan:
    layout = _layout(g)
    extra, fixed = weight_needs(g, layout)
    return Plan(g, "the weight gradient", layout, extra, fixed)


def grad_weight(dy: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw = dy @ cols^T: x correlated with dy. (N, F, *out), (N, C, *in) -> (F, C/G, *K)."""
    if _is_pointwise(g):
        return _grad_weight_pointwise(dy, x, g)
    cache = columns.active()
    plan = cache._take(g, x) if cache is not None else None
    kept = plan is not None
    if not kept:
        plan = _weight_plan(g)
    if plan.layout == "channels":
        return _grad_weight_channels_last(dy, x, g, plan, kept, cache)
    # OpenBLAS was measured faster on float32 computing dw^T = cols @ dy^T (10-60%), and
    # on float64 too with fewer than 512 rows R (W6 0.87x, W2 0.88x, 0.97x with 288 and
    # 400 rows), but not with W3's 576 (1.06x) (BENCHMARKS.md): same sums, other orientation.
    transposed = g.dtype == np.float32 or plan.rows < 512
    shape = (plan.groups, plan.rows, plan.f_per_group) if transposed else (
        plan.groups, plan.f_per_group, plan.rows)
    dw = np.zeros(shape, dtype=g.dtype)
    for chunk in plan.chunks:
        n = chunk.stop - chunk.start
        cols = plan.columns(chunk)
        if not kept:
            _im2col(x[chunk], g, plan, cols)
        cols = plan.matrix(cols)
        if plan.layout == "samples":                                # (n, G, R, P)
            dy_s = _by_sample(dy[chunk], g.groups)                  # (n, G, F/G, P)
            if transposed:                                          # (n, G, R, F/G)
                dw += np.matmul(cols, dy_s.swapaxes(-1, -2)).sum(axis=0)
            else:                                                   # (n, G, F/G, R)
                dw += np.matmul(dy_s, cols.swapaxes(-1, -2)).sum(axis=0)
            continue
        dy_mat = _by_group(dy[chunk], g.groups,
                           None if n == 1 else plan.scratch(n, (g.out_channels, n,
                                                                *g.out_size)))
        if transposed:
            dw += np.matmul(cols, dy_mat.swapaxes(1, 2))            # (G, R, F/G)
        else:
            dw += np.matmul(dy_mat, cols.swapaxes(1, 2))            # (G, F/G, R)
    if kept:
        cache.release()
    if transposed:
        dw = dw.swapaxes(1, 2)
    return np.ascontiguousarray(dw).reshape(g.w_shape)


def _pointwise_weight_needs(g: ConvGeometry) -> int:
    """Elements of a pointwise dw's temporaries: dw, each sample's product and, in
    float32, dw's transposed copy."""
    return (3 if g.dtype == np.float32 else 2) * weight_size(g)


def _grad_weight_pointwise(dy, x, g: ConvGeometry) -> np.ndarray:
    """dw = sum_n dy[n] (G, F/G, P) @ x[n]^T (G, P, C/G), one product per sample into one
    buffer, added up. float32 computes dw^T = sum_n x[n] @ dy[n]^T: W5 0.84x the time
    (float64 that way: 1.15x) (BENCHMARKS.md)."""
    check_fits(_pointwise_weight_needs(g) * g.dtype.itemsize, "the weight gradient")
    dy_s, x_s = _by_sample(dy, g.groups), _by_sample(x, g.groups)
    f, c = dy_s.shape[2], x_s.shape[2]
    transposed = g.dtype == np.float32
    shape = (g.groups, c, f) if transposed else (g.groups, f, c)
    dw, product = np.zeros(shape, dtype=g.dtype), np.empty(shape, dtype=g.dtype)
    for i in range(g.batch):
        if transposed:                        # (G, C/G, P) @ (G, P, F/G)
            np.matmul(x_s[i], dy_s[i].swapaxes(-1, -2), out=product)
        else:                                 # (G, F/G, P) @ (G, P, C/G)
            np.matmul(dy_s[i], x_s[i].swapaxes(-1, -2), out=product)
        dw += product
    if transposed:
        dw = np.ascontiguousarray(dw.swapaxes(1, 2))
    return dw.reshape(g.w_shape)


def _grad_weight_channels_last(dy, x, g: ConvGeometry, plan: Plan, kept: bool,
                               cache) -> np.ndarray:
    """dw (G, F/G, R) = dy (G, F/G, n*P) @ cols (G, n*P, R), channels last."""
    f, p = g.out_channels, plan.positions
    dw = np.zeros((g.groups, f // g.groups, plan.rows), dtype=g.dtype)
    for chunk in plan.chunks:
        n = chunk.stop - chunk.start
        dy_cl, xp = plan.scratch(n, (n, p, f), (n, *channels_last.extent(g), g.in_channels))
        cols = plan.columns(chunk)
        if not kept:
            channels_last.lower(x[chunk], g, xp, cols)
        dy_cl[...] = dy[chunk].reshape(n, f, p).swapaxes(1, 2)     # (n, P, F)
        dy_g = dy_cl.reshape(n * p, g.groups, f // g.groups).transpose(1, 2, 0)
        dw += np.matmul(dy_g, plan.matrix(cols))                    # (G, F/G, R)
    if kept:
        cache.release()
    return channels_last.weight_gradient(dw, g)


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
    C*K rows: measured faster when F <= C (W3 0.96x, W7 depthwise 0.35x of col2im's
    time), slower when F = 2C (W2, the CIFAR-sized model's second layer: 1.2-1.4x); at
    stride > 1 it would also multiply the s - 1 zeros inserted between dy's entries. One sample of its scratch (and the
    rotated filters) must also fit what the budget leaves; otherwise col2im, with C*K
    rows, may still fit.
    """
    if not (all(s == 1 for s in g.stride) and g.out_channels <= g.in_channels):
        return False
    swapped = _swapped_geometry(g)
    layout = _layout(swapped)
    extra, _ = forward_needs(swapped, layout)
    per_sample = g.out_channels * math.prod(g.kernel_size) * math.prod(g.in_size) + extra
    return (per_sample + 2 * weight_size(g)) * g.dtype.itemsize <= available()


def _kernel_rows_input(g: ConvGeometry) -> bool:
    """dx by kernel rows (:mod:`.kernel_rows`) where the forward would use the "rows"
    layout: measured 0.6-0.76x the time of col2im (W2, the CIFAR-sized model's second
    layer) and of the swapped correlation (W3) (BENCHMARKS.md)."""
    return (not _is_pointwise(g) and _layout(g) == "rows" and kernel_rows.applies(g)
            and kernel_rows.fits(g, True))


def _input_plan(g: ConvGeometry) -> Plan | None:
    """None when dx is the swapped correlation or kernel rows, else the col2im plan."""
    if _is_pointwise(g) or _kernel_rows_input(g) or _swap_pays(g):
        return None
    layout = _layout(g)
    extra, fixed = col2im_needs(g, layout)
    return Plan(g, "the input gradient", layout, extra, fixed)


def grad_input(dy: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx: the adjoint of the forward map. (N, F, *out), (F, C/G, *K) -> (N, C, *in)."""
    if _is_pointwise(g):                      # (G, C/G, F/G) @ (N, G, F/G, P)
        dx = np.empty(g.x_shape, dtype=g.dtype)
        _stacked_matmul(w.reshape(g.groups, g.out_channels // g.groups,
                                  g.in_channels // g.groups).swapaxes(1, 2),
                        _by_sample(dy, g.groups), _by_sample(dx, g.groups))
        return dx
    plan = _input_plan(g)
    finite = plan is None and np.isfinite(w).all()
    if finite and _kernel_rows_input(g):
        # both multiply dy's zero fill by w: fine unless w holds an inf or a nan
        return kernel_rows.grad_input(dy, w, g)
    if finite and _swap_pays(g):
        # the swapped correlation multiplies dy's padding zeros by w: fine unless w holds
        # an inf or a nan (0 * inf = nan), where col2im, which adds only real terms, is used
        return forward(dy, _rotated_swapped(w, g.groups), _swapped_geometry(g),
                       "the input gradient", held=2 * weight_size(g))
    if plan is None:
        layout = _layout(g)
        plan = Plan(g, "the input gradient", layout, *col2im_needs(g, layout))
    dx = np.zeros(g.x_shape, dtype=g.dtype)
    if plan.layout == "channels":
        _col2im_channels_last(dy, w, g, plan, dx)
        return dx
    w_t = w.reshape(plan.groups, plan.f_per_group, plan.rows).swapaxes(1, 2)  # (G, R, F/G)
    for chunk in plan.chunks:
        n = chunk.stop - chunk.start
        dcols = plan.columns(chunk)
        if plan.layout == "samples":                  # (G, R, F/G) @ (n, G, F/G, P)
            _stacked_matmul(w_t, _by_sample(dy[chunk], g.groups), plan.matrix(dcols))
        else:
            dy_mat = _by_group(dy[chunk], g.groups,
                               None if n == 1 else plan.scratch(n, (g.out_channels, n,
                                                                    *g.out_size)))
            np.matmul(w_t, dy_mat, out=plan.matrix(dcols))
        if plan.phased:                               # dx[chunk] replaced
            phases.col2im(dcols, g, dx[chunk], plan.phases(n), plan.layout)
        else:
            col2im(dcols, g, dx[chunk], plan.windows, plan.layout)
    return dx


def _col2im_channels_last(dy, w, g: ConvGeometry, plan: Plan, dx) -> None:
    """dcols (G, n*P, R) = dy (G, n*P, F/G) @ w (G, F/G, R), added back into dx."""
    w_cl = channels_last.filters(w, g.groups)                       # (G, F/G, R)
    f, p = g.out_channels, plan.positions
    for chunk in plan.chunks:
        n = chunk.stop - chunk.start
        dy_cl, dxp = plan.scratch(n, (n, p, f), (n, *channels_last.extent(g),
                                                  g.in_channels))
        dy_cl[...] = dy[chunk].reshape(n, f, p).swapaxes(1, 2)     # (n, P, F)
        dcols = plan.columns(chunk)
        np.matmul(dy_cl.reshape(n * p, g.groups, f // g.groups).swapaxes(0, 1), w_cl,
                  out=plan.matrix(dcols))
        channels_last.raise_(dcols, g, dxp, dx[chunk])


def check_backward(g: ConvGeometry, transposed: bool = False) -> None:
    """Plan the backward pass's scratch without computing: a MemoryError (naming the
    size) now, when dw or dx cannot fit, instead of after dx has been computed.

    ``transposed``: the backward pass of a transposed convolution, whose dx is
    :func:`forward`.
    """
    if _is_pointwise(g):
        check_fits(_pointwise_weight_needs(g) * g.dtype.itemsize, "the weight gradient")
        return
    _weight_plan(g)
    if transposed:
        if _kernel_rows_forward(g):
            kernel_rows.check_forward(g)
        else:
            _forward_plan(g, "the forward pass")
    elif _kernel_rows_input(g):
        kernel_rows.check_grad_input(g)
    elif _input_plan(g) is None:
        _forward_plan(_swapped_geometry(g), "the input gradient", held=2 * weight_size(g))
