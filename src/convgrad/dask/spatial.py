"""The forward convolution of images chunked along their spatial axes, with halos.

Along one spatial axis (size n, kernel k, stride s, dilation d, padding (lo, hi)), output
i reads the padded positions s*i ... s*i + d*(k-1): a window of kd = d*(k-1) + 1 values
(docs/math.md#the-forward-index-map). Number the padded positions p = u + lo, u the
position in x. Each chunk of x, covering x[u_j : u_{j+1}], computes the outputs whose
window *starts* inside it (the first chunk also owns the windows that start in the
padding before x):

    i from ceil((u_j + lo) / s)  to  ceil((u_{j+1} + lo) / s) - 1     (at most H' - 1)

The last of these windows ends at most kd - 1 = d*(k-1) positions past the chunk: that is
the halo, the kernel's reach, which ``map_overlap`` copies from the next chunk (depth
(0, reach): nothing is needed from the chunk before). Because every chunk starts its
windows at a multiple of s in padded coordinates, the strides line up across chunk
boundaries whatever the chunk sizes: a chunk whose size s does not divide simply starts
its first window a few positions in. Zero padding is added only at the array's true
borders: lo before the first chunk, hi after the data when a block's halo reaches the
end of x. Each block then runs the NumPy API with padding 0 on exactly the span its
windows read, so the result equals the unchunked one.

Rechunking, where it is needed: the channel axis becomes one chunk; along a spatial axis,
chunks smaller than the reach d*(k-1) are merged with their neighbours (a halo comes from
the next chunk only), and an axis no longer than the reach becomes one chunk. Chunk
boundaries are otherwise kept; the output's chunks along an axis are the counts above.

Shapes (2-D; 1-D drops H, 3-D adds D): x (N, C, H, W), w (F, C/groups, HH, WW), b (F,),
y (N, F, H', W').
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import dask.array as da
import numpy as np

from ._graph import as_dask, broadcast, conv_function, float_dtype, geometry, meta, whole

__all__ = ["forward", "plan_axis", "AxisPlan"]


@dataclass(frozen=True)
class AxisPlan:
    """How one spatial axis is cut: chunk boundaries of x and the outputs each chunk owns."""

    bounds: tuple[int, ...]     # u_0 = 0 < u_1 < ... < u_m = n: x's chunk boundaries
    starts: tuple[int, ...]     # the first output of each chunk, then H' (m + 1 entries)
    reach: int                  # the halo: d*(k-1), or 0 when the axis is one chunk
    stride: int
    extent: int                 # kd = d*(k-1) + 1
    pad: tuple[int, int]        # (lo, hi)

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(np.diff(self.bounds).tolist())

    @property
    def out_chunks(self) -> tuple[int, ...]:
        return tuple(np.diff(self.starts).tolist())


def _merge_small(chunks, minimum: int) -> tuple[int, ...]:
    """Merge chunks into the one before until each is at least ``minimum`` (and not 0)."""
    merged: list[int] = []
    for size in chunks:
        if merged and merged[-1] < max(minimum, 1):
            merged[-1] += size
        else:
            merged.append(size)
    if len(merged) > 1 and merged[-1] < max(minimum, 1):
        tail = merged.pop()
        merged[-1] += tail
    return tuple(merged)


def plan_axis(chunks, kernel: int, stride: int, dilation: int, pad, out: int) -> AxisPlan:
    """Cut one spatial axis of x (chunk sizes ``chunks``) for the halo convolution."""
    extent = dilation * (kernel - 1) + 1
    reach = extent - 1
    chunks = _merge_small(chunks, reach)
    lo, _ = pad
    bounds = tuple(np.concatenate([[0], np.cumsum(chunks)]).tolist())
    starts = ((0,) + tuple(min(out, -(-(u + lo) // stride)) for u in bounds[1:-1])
              + (out,))
    return AxisPlan(bounds, starts, reach if len(chunks) > 1 else 0, stride, extent,
                    tuple(pad))


def _halo_block(x, w=None, b=None, *, function, plans, keywords, block_info=None):
    """One block (n, C, *span) of x with its right halos -> its outputs (n, F, *counts)."""
    location = block_info[0]["chunk-location"][2:]
    crop, pads, counts = [slice(None), slice(None)], [(0, 0), (0, 0)], []
    for axis, (plan, j) in enumerate(zip(plans, location), start=2):
        first, last = plan.starts[j], plan.starts[j + 1]
        counts.append(last - first)
        if last == first:
            continue
        lo, hi = plan.pad
        n = plan.bounds[-1]
        need_from = plan.stride * first                          # padded coordinates
        need_to = plan.stride * (last - 1) + plan.extent
        have_from = plan.bounds[j] + lo                          # the block's first value
        have_to = have_from + x.shape[axis]                      # past its last value
        start, stop = max(need_from, have_from), min(need_to, have_to)
        before, after = max(0, have_from - need_from), max(0, need_to - have_to)
        assert (before == 0 or j == 0) and (after == 0 or have_to == n + lo), \
            "padding only at the true borders"
        crop.append(slice(start - have_from, max(stop, start) - have_from))
        pads.append((before, after))
    if 0 in counts:
        return np.empty((x.shape[0], w.shape[0], *counts),
                        dtype=np.result_type(x, w, *([] if b is None else [b])))
    span = np.pad(x[tuple(crop)], pads)                          # (n, C, *windows' span)
    y = function(span, w, b, padding=0, **keywords)              # (n, F, *counts)
    assert y.shape[2:] == tuple(counts), (y.shape, counts)
    return y


def forward(nd: int, op: str, x, w, b, keywords: dict):
    """y = conv(x, w) + b, lazily, one task per (batch, spatial) chunk of x, with halos."""
    x = as_dask(x, f"{op}: x")
    w, b, g = geometry(nd, op, x, w, b, keywords, transpose=False)
    x = whole(x, [1])
    plans = [plan_axis(x.chunks[axis], k, s, d, pad, out)
             for axis, k, s, d, pad, out in zip(range(2, nd + 2), g.kernel_size, g.stride,
                                                g.dilation, g.padding, g.out_size)]
    x = x.rechunk({axis: plan.chunks for axis, plan in enumerate(plans, start=2)})
    dtype = np.result_type(float_dtype(x, w, b), w, *([] if b is None else [b]))
    block = functools.partial(
        _halo_block, function=conv_function(nd, False, False), plans=tuple(plans),
        keywords={key: value for key, value in keywords.items() if key != "padding"})
    return da.map_overlap(
        block, x, depth={axis: (0, plan.reach) for axis, plan in enumerate(plans, start=2)},
        boundary="none", trim=False, align_arrays=False,
        chunks=(x.chunks[0], (g.out_channels,), *(plan.out_chunks for plan in plans)),
        meta=meta(nd + 2, dtype), w=broadcast(w), b=broadcast(b),
        token=op.replace(".", "-"))
