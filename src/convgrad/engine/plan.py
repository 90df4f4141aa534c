"""Planning a fast-engine computation: its temporaries, its batch chunks, its buffers.

Every temporary a chunk of n samples needs is counted (in elements), as the memory
budget promises (:mod:`convgrad.memory`): the columns (G*R*P a sample, R = C/G*K, P the
output positions), what each layout needs besides them (``*_needs``: per sample, fixed),
and NumPy's own ufunc buffers. :class:`Plan` turns them into chunks and buffers; the
chunk size is the measured cache-friendly size (:func:`preferred_bytes`), never beyond
the budget, and the sizes are cached per geometry, budget and kept bytes.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import ConvGeometry
from ..memory import check_fits, chunk_step, get_memory_budget, kept_bytes
from . import channels_last, phases
from .lowering import offset_windows

__all__ = ["Plan", "weight_size", "forward_needs", "weight_needs", "col2im_needs",
           "ufunc_buffers", "preferred_bytes", "KEEP_MAX_BYTES"]


# Temporaries besides the columns, in elements: (per sample, fixed).
def weight_size(g: ConvGeometry) -> int:
    """Elements of w (F, C/G, *K)."""
    return g.out_channels * (g.in_channels // g.groups) * math.prod(g.kernel_size)


def forward_needs(g, layout):
    """"rows": the product (F, n*P) before its transposed copy into y; "channels": that
    product, the padded channels-last input, and the filters in channels-last order."""
    if layout == "channels":
        return (g.out_channels * math.prod(g.out_size) + channels_last.padded_elements(g),
                weight_size(g))
    if layout == "rows" and g.batch > 1:
        return g.out_channels * math.prod(g.out_size), 0
    return 0, 0


def weight_needs(g, layout):
    """"rows": dy's transposed copy (F, n*P); "samples": every sample's product (w each).
    Both: a chunk's product or its sum over samples, the running sum, its transposed
    copy (w each)."""
    w = weight_size(g)
    if layout == "channels":             # dy channels last, the padded input
        return (g.out_channels * math.prod(g.out_size) + channels_last.padded_elements(g),
                3 * w)
    if layout == "rows":
        return g.out_channels * math.prod(g.out_size), 3 * w
    return w, 3 * w


def ufunc_buffers(g) -> int:
    """NumPy's buffers for col2im's additions over strided arrays: for each of the three
    operands, np.getbufsize() elements or the whole operand (n, C, *out) if smaller."""
    return 3 * min(np.getbufsize(), g.batch * g.in_channels * math.prod(g.out_size))


def col2im_needs(g, layout):
    """"rows": dy's transposed copy (F, n*P); "channels": dy channels last, the padded
    dx, the filters in channels-last order. All: the additions' ufunc buffers."""
    if layout == "channels":
        return (g.out_channels * math.prod(g.out_size) + channels_last.padded_elements(g),
                weight_size(g) + ufunc_buffers(g))
    if layout == "rows" and g.batch > 1:
        return g.out_channels * math.prod(g.out_size), ufunc_buffers(g)
    return 0, ufunc_buffers(g)


def _sizes(g, what, layout, extra, fixed, keep, keep_needs, reusable=0):
    """A plan's sizes and chunks (:func:`_fitting_sizes`), after making sure one sample
    fits: a MemoryError naming the size, or kept buffers released, as
    :func:`convgrad.memory.plan_chunks` does. ``reusable``: bytes of kept scratch this
    computation will write into (a layer's spare buffer), not counted as taken."""
    groups = g.groups
    sample_columns = groups * (g.in_channels // groups) * math.prod(g.kernel_size) \
        * math.prod(g.out_size)
    itemsize = g.dtype.itemsize
    check_fits((sample_columns + extra + fixed) * itemsize, what)
    return _fitting_sizes(g, layout, extra, fixed, keep, keep_needs, get_memory_budget(),
                          max(0, kept_bytes() - reusable))


@functools.lru_cache(maxsize=1024)
def _fitting_sizes(g, layout, extra, fixed, keep, keep_needs, budget, kept):
    """A plan's sizes and chunks: a pure function of its arguments, the budget and the
    bytes kept between calls, cached on them (a training loop asks for the same few plans
    again and again, and on small images planning cost more than computing)."""
    groups = g.groups
    rows = (g.in_channels // groups) * math.prod(g.kernel_size)                 # R
    positions = math.prod(g.out_size)                                           # P
    sample_columns = groups * rows * positions                                  # G*R*P
    itemsize = g.dtype.itemsize
    per_sample = (sample_columns + extra) * itemsize
    step = chunk_step(g.batch, per_sample, fixed * itemsize,
                      preferred_bytes(rows, positions, per_sample), budget - kept)
    chunks = tuple(slice(i, min(i + step, g.batch)) for i in range(0, g.batch, step))
    # keep: only small columns (KEEP_MAX_BYTES), and only when they, with the larger of
    # this call's and the weight gradient's other temporaries, fit what the budget leaves
    later_extra, later_fixed = keep_needs
    columns_bytes = g.batch * sample_columns * itemsize
    keep = keep and 0 < columns_bytes <= KEEP_MAX_BYTES and (
        g.batch * sample_columns + step * max(extra, later_extra)
        + max(fixed, later_fixed)) * itemsize <= budget - kept
    return (groups, g.out_channels // groups, rows, positions, sample_columns, step, chunks,
            offset_windows(g), keep)


class Plan:
    """Sizes, layout and batch chunks of one computation; its scratch buffers.

    Scratch for a chunk of n samples: the columns (G*R*P elements a sample, R = C/G*K),
    ``extra`` elements a sample and, at stride > 1, the input split by phase
    (:mod:`.phases`, ``phase_elements`` a sample), plus ``fixed`` elements: all counted by
    :func:`convgrad.memory.plan_chunks`. With ``keep`` the columns of the whole batch
    are written into one buffer (each chunk its own part) that can outlive the call,
    when that fits the budget along with the rest (``self.keep`` says whether it did).
    """

    def __init__(self, g: ConvGeometry, what: str, layout: str, extra: int = 0,
                 fixed: int = 0, keep: bool = False, keep_needs=(0, 0), reusable: int = 0):
        self.g, self.layout, self.extra = g, layout, extra
        # at stride > 1 the columns are lowered through x split by phase (:mod:`.phases`)
        self.phased = layout != "channels" and phases.applies(g)
        self.phase_elements = phases.elements(g) if self.phased else 0
        (self.groups, self.f_per_group, self.rows, self.positions, self.sample_columns,
         self.step, self.chunks, self.windows, self.keep) = _sizes(
            g, what, layout, extra + self.phase_elements, fixed, keep, keep_needs, reusable)
        self._columns = self._extra = self._phases = None

    def columns_nbytes(self) -> int:
        """Bytes of the column buffer: the whole batch's when kept, else one chunk's."""
        count = self.g.batch if self.keep else self.step
        return self.sample_columns * count * self.g.dtype.itemsize

    def use_columns(self, buffer) -> None:
        """Write the columns into ``buffer`` (1-D, exactly :meth:`columns_nbytes`; None:
        a new one)."""
        if buffer is not None:
            self._columns = buffer

    def columns(self, chunk: slice) -> np.ndarray:
        """The chunk's columns: (C, *K, n, *out) for "rows", (n, C, *K, *out) for
        "samples", (n, *out, G, *K, C/G) for "channels"."""
        g, n = self.g, chunk.stop - chunk.start
        if self._columns is None:
            self._columns = np.empty(self.sample_columns * (g.batch if self.keep else self.step),
                                     dtype=g.dtype)
        start = chunk.start * self.sample_columns if self.keep else 0
        flat = self._columns[start:start + n * self.sample_columns]
        if self.layout == "rows":
            return flat.reshape(g.in_channels, *g.kernel_size, n, *g.out_size)
        if self.layout == "channels":
            return flat.reshape(n, *g.out_size, g.groups, *g.kernel_size,
                                g.in_channels // g.groups)
        return flat.reshape(n, g.in_channels, *g.kernel_size, *g.out_size)

    def matrix(self, cols: np.ndarray) -> np.ndarray:
        """"rows": (C, *K, n, *out) -> (G, R, n*P); "samples": -> (n, G, R, P);
        "channels": -> (G, n*P, R); views."""
        if self.layout == "rows":
            return cols.reshape(self.groups, self.rows, cols.size // (self.groups * self.rows))
        if self.layout == "channels":
            return cols.reshape(-1, self.groups, self.rows).swapaxes(0, 1)
        return cols.reshape(cols.shape[0], self.groups, self.rows, self.positions)

    def phases(self, n: int) -> np.ndarray:
        """The split input xs (n, C, *s, *L) of a chunk of n samples (:mod:`.phases`)."""
        g = self.g
        if self._phases is None:
            self._phases = np.empty(self.phase_elements * self.step, dtype=g.dtype)
        return self._phases[:n * self.phase_elements].reshape(
            n, g.in_channels, *g.stride, *phases.sizes(g))

    def scratch(self, n: int, *shapes) -> np.ndarray:
        """Views of the ``extra`` buffer, one after another, in ``shapes`` (n samples'
        worth in all): one array for one shape, else a list."""
        if self._extra is None:
            self._extra = np.empty(self.extra * self.step, dtype=self.g.dtype)
        views, start = [], 0
        for shape in shapes:
            size = math.prod(shape)
            views.append(self._extra[start:start + size].reshape(shape))
            start += size
        return views[0] if len(views) == 1 else views



def preferred_bytes(rows: int, positions: int, per_sample: int) -> int:
    """How many bytes of scratch to process at once (measured, BENCHMARKS.md).

    About 2 MiB, this machine's L2 cache per core: the buffers stay in it while they are
    filled and read (8 MiB, the figure measured on the previous machine, was 5-25% slower
    here; 0.5 MiB 10% slower). A product with very many rows (C/G * K >= 1024, W4's 2304)
    is compute bound and wants more columns: 8 MiB (7% faster than 2 MiB there).
    """
    return 8 * 2**20 if rows >= 1024 else 2 * 2**20


KEEP_MAX_BYTES = 8 * 2**20
"""Columns kept for the backward pass only up to this size: larger ones, no longer in the
cache when dw reads them, were measured slower than lowering x again (BENCHMARKS.md)."""
