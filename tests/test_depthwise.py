"""The depthwise engine (banded matrices, engine/depthwise.py) against PyTorch.

Every depthwise geometry is drawn: kernels 1-5 per axis, strides and dilations 1-3,
(lo, hi) padding pairs 0-4 (asymmetric, larger than the kernel), channel multipliers
1-3, N = 0-3, odd sizes (a cut last block of rows, leftover rows and columns). forward,
dx and dw, float64 to 1e-10 of PyTorch's float64 autograd, float32 within the suite's
float32 tolerance of PyTorch's float64 on the same rounded inputs; a memory budget small
enough to chunk the batch; inf and nan as PyTorch gives them; and what 'auto' picks.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.engine import auto, depthwise
from convgrad.geometry import conv_geometry
from helpers import rel_err, torch_conv, torch_conv_transpose

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-10}


@st.composite
def depthwise_geometries(draw):
    c, multiplier = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pads = tuple(draw(st.tuples(st.integers(0, 4), st.integers(0, 4))) for _ in range(2))
    size = []
    for k, d, (lo, hi) in zip(kernel, dilation, pads):
        extent = d * (k - 1) + 1
        size.append(draw(st.integers(max(1, extent - lo - hi), extent + 9)))
    return dict(x_shape=(draw(st.integers(0, 3)), c, *size),
                w_shape=(c * multiplier, 1, *kernel),
                kw=dict(stride=stride, padding=pads, dilation=dilation, groups=c),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**31)))


def _maps(x, w, dy, kw):
    """y, dx, dw from the depthwise engine itself (not 'auto', which may not pick it)."""
    *_, g = conv_geometry(x, w, nd=2, **kw)
    return (depthwise.forward(x, w, g), depthwise.grad_input(dy, w, g),
            depthwise.grad_weight(dy, x, g))


def _arrays(geo):
    rng = np.random.default_rng(geo["seed"])
    dtype = geo["dtype"]
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal(geo["w_shape"]).astype(dtype)
    y_shape = cg.conv2d(x, w, **geo["kw"], algorithm="fast").shape
    dy = rng.standard_normal(y_shape).astype(dtype)
    return x, w, dy


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depthwise_geometries())
def test_depthwise_matches_torch(geo):
    x, w, dy = _arrays(geo)
    truth = torch_conv(x, w, None, dy, **geo["kw"])[:3]
    for ours, t in zip(_maps(x, w, dy, geo["kw"]), truth):
        assert ours.dtype == geo["dtype"] and ours.shape == t.shape
        assert rel_err(ours, t) < TOLERANCE[geo["dtype"]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_w7_sized_layer_matches_torch(dtype):
    """Many channels and a batch that fills the blocks: one channel per chunk, whole rows
    shifted (stride 1), the last block of rows cut (30 = 4 * 7 + 2)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 24, 30, 29)).astype(dtype)
    w = rng.standard_normal((24, 1, 3, 3)).astype(dtype)
    dy = rng.standard_normal((6, 24, 30, 29)).astype(dtype)
    kw = dict(padding=1, groups=24)
    for ours, t in zip(_maps(x, w, dy, kw), torch_conv(x, w, None, dy, **kw)[:3]):
        assert rel_err(ours, t) < TOLERANCE[dtype]


@pytest.mark.parametrize("multiplier", [1, 2])      # dx: the rotated forward, the adjoint
def test_a_tiny_budget_chunks_the_batch_and_stays_within_it(multiplier):
    import tracemalloc
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((5, 3, 16, 17)), rng.standard_normal((3 * multiplier, 1, 3, 3))
    kw = dict(padding=((2, 0), (1, 1)), groups=3)
    dy = rng.standard_normal(cg.conv2d(x, w, **kw).shape)
    truth = torch_conv(x, w, None, dy, **kw)[:3]
    budget = 40_000 * multiplier
    *_, g = conv_geometry(x, w, nd=2, **kw)
    bl = depthwise.layout.blocks(g)
    with cg.memory_budget(budget):
        chunks = bl.chunks("test", bl.band + bl.taps + 1 + bl.multiplier * bl.rows)
    assert len({ns.start for _, ns in chunks}) > 1     # the batch is cut, channel by channel
    tracemalloc.start()
    try:
        with cg.memory_budget(budget):
            for call, t in zip((lambda: depthwise.forward(x, w, g),
                                lambda: depthwise.grad_input(dy, w, g),
                                lambda: depthwise.grad_weight(dy, x, g)), truth):
                tracemalloc.reset_peak()
                start = tracemalloc.get_traced_memory()[0]
                out = call()
                assert tracemalloc.get_traced_memory()[1] - start <= budget + out.nbytes + 65536
                assert rel_err(out, t) < 1e-10
                del out
        with cg.memory_budget("2K"), pytest.raises(MemoryError, match="needs"):
            depthwise.forward(x, w, g)
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("where", ["x", "w", "dy"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_values_propagate_as_in_torch(where, value):
    """The band's zeros times an inf would make nans PyTorch does not: such calls are
    computed by the fast engine."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 9, 14)), rng.standard_normal((3, 1, 3, 3))
    dy = rng.standard_normal((2, 3, 9, 14))
    {"x": x, "w": w, "dy": dy}[where].flat[13] = value
    kw = dict(padding=1, groups=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = _maps(x, w, dy, kw)
    for a, t in zip(ours, torch_conv(x, w, None, dy, **kw)[:3]):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(t))
        np.testing.assert_allclose(a, t, rtol=1e-10, atol=1e-10)


def test_depthwise_refuses_what_it_does_not_compute():
    x = np.zeros((1, 4, 8, 8))
    *_, g = conv_geometry(x, np.zeros((4, 2, 3, 3)), nd=2, groups=2)
    with pytest.raises(ValueError, match="one input channel per group"):
        depthwise.forward(x, np.zeros((4, 2, 3, 3)), g)
    *_, g1 = conv_geometry(np.zeros((1, 2, 8)), np.zeros((2, 1, 3)), nd=1, groups=2)
    assert not depthwise.applies(g1)


ALL = {"forward", "dx", "dw"}


@pytest.mark.parametrize("x_shape,w_shape,kw,dtype,expected", [
    ((32, 128, 28, 28), (128, 1, 3, 3), dict(padding=1), np.float32, ALL),     # W7
    ((32, 128, 28, 28), (128, 1, 3, 3), dict(padding=1), np.float64, ALL),
    ((32, 128, 28, 28), (128, 1, 5, 5), dict(padding=2), np.float32, ALL),
    ((32, 128, 8, 8), (128, 1, 3, 3), dict(padding=1), np.float32, ALL),       # 2048
    ((32, 128, 28, 28), (128, 1, 3, 3), dict(padding=1, stride=2), np.float32, {"dx", "dw"}),
    ((32, 64, 28, 28), (128, 1, 3, 3), dict(padding=1), np.float32, {"dx", "dw"}),  # F = 2C
    ((1, 128, 28, 28), (128, 1, 3, 3), dict(padding=1), np.float32, {"dw"}),   # 784
    ((8, 128, 12, 12), (128, 1, 3, 3), dict(padding=1), np.float64, {"dw"}),   # 1152
    ((32, 128, 1, 200), (128, 1, 1, 3), dict(padding=(0, 1)), np.float32, {"dw"}),
    ((32, 128, 28, 28), (128, 128, 3, 3), dict(padding=1), np.float32, set()),  # not depthwise
    ((32, 128, 28, 28), (128, 2, 3, 3), dict(padding=1), np.float32, set()),    # C/G = 2
    ((32, 32, 28, 28), (128, 1, 3, 3), dict(padding=1), np.float32, set()),    # F = 4C
    ((32, 1, 28, 28), (8, 1, 3, 3), dict(padding=1), np.float32, set()),       # one channel
])
def test_auto_picks_depthwise_where_measured_faster(x_shape, w_shape, kw, dtype, expected):
    x = np.broadcast_to(dtype(0), x_shape)
    w = np.broadcast_to(dtype(0), w_shape)
    *_, g = conv_geometry(x, w, nd=2, groups=x_shape[1] // w_shape[1], **kw)
    assert {s for s in ("forward", "dx", "dw") if auto.uses_depthwise(g, s)} == expected


def test_auto_gives_the_depthwise_engines_numbers_where_it_picks_it(monkeypatch):
    """conv2d, its backward and conv_transpose2d through 'auto' on a geometry it computes
    depthwise: the engine is called and the numbers are PyTorch's."""
    calls = []
    for name in ("forward", "grad_input", "grad_weight", "backward"):
        original = getattr(depthwise, name)
        monkeypatch.setattr(depthwise, name, lambda *a, _f=original, _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((3, 8, 28, 28)), rng.standard_normal((8, 1, 3, 3))
    b = rng.standard_normal(8)
    dy = rng.standard_normal((3, 8, 28, 28))
    kw = dict(padding=1, groups=8)
    ours = (cg.conv2d(x, w, b, **kw), *cg.conv2d_backward(dy, x, w, b, **kw))
    assert calls == ["forward", "backward"]        # dx and dw in one call (same size)
    for a, t in zip(ours, torch_conv(x, w, b, dy, **kw)):
        assert rel_err(a, t) < 1e-10
    calls.clear()
    xt = rng.standard_normal((3, 8, 28, 28))              # transposed: its forward is dx
    kt = dict(stride=2, padding=1, output_padding=1, groups=8)
    y = cg.conv_transpose2d(xt, w, b, **kt)
    assert calls == ["grad_input"]
    assert rel_err(y, torch_conv_transpose(xt, w, b, None, **kt)[0]) < 1e-10
