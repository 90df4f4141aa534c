"""The fast engine's polyphase lowering at stride > 1 (engine/phases.py), against PyTorch.

im2col and col2im through x split by phase are a speed decision (kernels with at least
MIN_REUSE offsets per phase), so the path is forced here over hypothesis-drawn
geometries (1-D to 3-D, strides 2-4 on some axes, dilation, groups, asymmetric padding
larger than the kernel, leftover rows and columns, N = 0) in the "rows" and "samples"
layouts, and compared with PyTorch float64 (1e-10; float32 on the same rounded inputs
within the float32 tolerance); then W6's shape as 'auto' takes it, the memory budget's
chunks, and NaN and Inf.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad import nn
from convgrad.engine import fast, phases
from convgrad.geometry import conv_geometry
from helpers import rel_err, torch_conv, torch_conv_transpose

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-10}
CONV = {1: cg.conv1d, 2: cg.conv2d, 3: cg.conv3d}
BACKWARD = {1: cg.conv1d_backward, 2: cg.conv2d_backward, 3: cg.conv3d_backward}


@pytest.fixture(params=["rows", "samples"])
def phased(request, monkeypatch):
    """Every stride > 1 geometry without a crop lowered by phase, in each layout; returns
    the calls of phases.im2col / phases.col2im (to know the path was taken)."""
    calls = []
    monkeypatch.setattr(fast, "_layout", lambda g: request.param)
    monkeypatch.setattr(phases, "applies", lambda g: any(s > 1 for s in g.stride) and all(
        lo >= 0 and hi >= 0 for lo, hi in g.padding))
    for name in ("im2col", "col2im"):
        original = getattr(phases, name)
        monkeypatch.setattr(phases, name, lambda *a, _f=original, _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    monkeypatch.setattr(fast, "_swap_pays", lambda g: False)
    monkeypatch.setattr(fast, "_kernel_rows_input", lambda g: False)
    return calls


@st.composite
def strided_geometries(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    c, f = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 4))
    kernel = draw(st.tuples(*[st.integers(1, 7 if nd < 3 else 3)] * nd))
    stride = list(draw(st.tuples(*[st.integers(1, 4)] * nd)))
    if all(s == 1 for s in stride):
        stride[draw(st.integers(0, nd - 1))] = draw(st.integers(2, 4))
    dilation = draw(st.tuples(*[st.integers(1, 2)] * nd))
    pads = draw(st.tuples(*[st.tuples(st.integers(0, 8), st.integers(0, 8))] * nd))
    size = []
    for i in range(nd):
        extent = dilation[i] * (kernel[i] - 1) + 1
        low = max(1, extent - sum(pads[i]))
        size.append(draw(st.integers(low, low + (9 if nd < 3 else 3))))
    return dict(x_shape=(draw(st.integers(0, 3)), c, *size),
                w_shape=(f, c // groups, *kernel),
                kw=dict(stride=tuple(stride), padding=pads, dilation=dilation,
                        groups=groups),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**31)))


def _check(ours, truth, dtype, dy):
    """y, dx, dw against PyTorch; db relative to the sum of |dy| (it may cancel)."""
    for i, (a, t) in enumerate(zip(ours, truth)):
        assert a.dtype == dtype and a.shape == t.shape
        if i == 3 and t.size:
            terms = np.abs(dy.astype(np.float64)).sum(axis=(0, *range(2, dy.ndim))).max()
            assert np.abs(a - t).max() <= TOLERANCE[dtype] * max(np.abs(t).max(), terms)
        else:
            assert rel_err(a, t) < TOLERANCE[dtype], i


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(geo=strided_geometries())
def test_polyphase_lowering_matches_torch(phased, geo):
    phased.clear()
    rng = np.random.default_rng(geo["seed"])
    dtype, kw = geo["dtype"], geo["kw"]
    nd = len(geo["x_shape"]) - 2
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal(geo["w_shape"]).astype(dtype)
    b = rng.standard_normal(geo["w_shape"][0]).astype(dtype)
    y = CONV[nd](x, w, b, algorithm="fast", **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _check((y, *BACKWARD[nd](dy, x, w, b, algorithm="fast", **kw)),
           torch_conv(x, w, b, dy, **kw), dtype, dy)
    if x.shape[0]:
        assert phased.count("im2col") == 2 and phased.count("col2im") == 1, phased


def _w6_like(dtype, n=3, size=30):
    """W6's kernel and stride (7x7, 2, padding 3) on a smaller image."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 3, size, size + 3)).astype(dtype)
    w = rng.standard_normal((8, 3, 7, 7)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    return rng, x, w, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_lowers_w6_by_phase_and_matches_torch(dtype):
    rng, x, w, b = _w6_like(dtype)
    g = conv_geometry(x, w, nd=2, stride=2, padding=3)[-1]
    assert phases.applies(g) and fast._input_plan(g).phased
    assert not phases.applies(conv_geometry(x, w[..., :3, :3], nd=2, stride=2)[-1])
    y = cg.conv2d(x, w, b, stride=2, padding=3)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _check((y, *cg.conv2d_backward(dy, x, w, b, stride=2, padding=3)),
           torch_conv(x, w, b, dy, stride=2, padding=3), dtype, dy)


def test_a_layer_keeps_phased_columns_and_matches_torch():
    rng, x, w, b = _w6_like(np.float64)
    layer = nn.Conv2d(3, 8, 7, stride=2, padding=3, rng=0, dtype=np.float64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    truth = torch_conv(x, layer.weight.data, layer.bias.data, dy, stride=2, padding=3)
    _check((y, dx, layer.weight.grad, layer.bias.grad), truth, np.float64, dy)


def test_the_split_input_is_counted_in_the_budget():
    """Chunks of one sample under a tight budget: the traced scratch (columns, the split
    input, the products) stays within it, and the results match PyTorch."""
    rng, x, w, b = _w6_like(np.float64, n=6, size=40)
    g = conv_geometry(x, w, nd=2, stride=2, padding=3)[-1]
    budget = 2**20
    with cg.memory_budget(budget):
        assert len(fast._input_plan(g).chunks) == 6
    dy = rng.standard_normal(g.y_shape)
    tracemalloc.start()
    try:
        with cg.memory_budget(budget):
            start = tracemalloc.get_traced_memory()[0]
            y = cg.conv2d(x, w, b, stride=2, padding=3)
            forward_peak = tracemalloc.get_traced_memory()[1] - start
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            dx, dw, db = cg.conv2d_backward(dy, x, w, b, stride=2, padding=3)
            backward_peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    small = 64 * 1024
    assert forward_peak <= budget + y.nbytes + small
    assert backward_peak <= budget + dx.nbytes + dw.nbytes + db.nbytes + small
    _check((y, dx, dw, db), torch_conv(x, w, b, dy, stride=2, padding=3), np.float64, dy)


@pytest.mark.parametrize("target,index,value", [
    ("x", (0, 1, 0, 0), np.nan), ("x", (1, 2, 29, 32), np.inf),
    ("x", (2, 0, 13, 7), -np.inf), ("dy", (0, 3, 2, 5), np.nan),
    ("dy", (1, 7, 14, 0), np.inf), ("w", (2, 1, 6, 0), np.inf), ("w", (5, 0, 3, 3), np.nan)])
def test_nonfinite_values_propagate_like_torch(target, index, value):
    rng, x, w, b = _w6_like(np.float64)
    y_shape = conv_geometry(x, w, nd=2, stride=2, padding=3)[-1].y_shape
    dy = rng.standard_normal(y_shape)
    {"x": x, "w": w, "dy": dy}[target][index] = value
    ours = (cg.conv2d(x, w, b, stride=2, padding=3),
            *cg.conv2d_backward(dy, x, w, b, stride=2, padding=3)[:2])
    for a, t in zip(ours, torch_conv(x, w, b, dy, stride=2, padding=3)[:3]):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(t))
        np.testing.assert_array_equal(np.isposinf(a), np.isposinf(t))
        np.testing.assert_array_equal(np.isneginf(a), np.isneginf(t))
        finite = np.isfinite(t)
        np.testing.assert_allclose(a[finite], t[finite], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output_padding", [0, 1])
def test_transposed_convolution_by_phase_matches_torch(dtype, output_padding):
    """A transposed convolution's forward pass is the convolution's dx: col2im by phase."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8, 9, 11)).astype(dtype)
    w = rng.standard_normal((8, 3, 7, 7)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    kw = dict(stride=2, padding=3, output_padding=output_padding)
    y = cg.conv_transpose2d(x, w, b, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    g = conv_geometry(np.broadcast_to(0.0, y.shape), w, nd=2, stride=2, padding=3)[-1]
    assert phases.applies(g) and fast._input_plan(g).phased
    truth = torch_conv_transpose(x, w, b, dy, **kw)
    _check((y, *cg.conv_transpose2d_backward(dy, x, w, b, **kw)), truth, dtype, dy)
