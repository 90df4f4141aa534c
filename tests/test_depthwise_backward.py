"""The depthwise engine's backward pass in one call (engine/depthwise.py ``backward``).

At stride 1 with one filter per channel dy is laid out once for both dx and dw (dw as
the rotated weight gradient of dx's correlation, ``shares``): drawn over such geometries
(kernels 1-5, dilations 1-3, (lo, hi) padding 0-4 each, N = 0-3, odd sizes),
float64 to 1e-10 of PyTorch's float64 autograd and float32 within the suite's float32
tolerance; over every depthwise geometry with each need_dx / need_dw combination (the
fallback to the two separate calls); a budget small enough to chunk the batch, counted
with tracemalloc; inf and nan as PyTorch gives them; and conv2d_backward through 'auto'.
"""
from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.engine import auto, depthwise
from convgrad.geometry import conv_geometry
from helpers import rel_err, torch_conv
from test_depthwise import TOLERANCE, _arrays, depthwise_geometries


@st.composite
def stride_one_geometries(draw):
    """Stride 1, one filter per channel: test_depthwise's geometries otherwise."""
    geo = draw(depthwise_geometries())
    c = geo["x_shape"][1]
    geo["w_shape"] = (c, 1, *geo["w_shape"][2:])
    geo["kw"]["stride"] = 1
    size = []
    for n, k, d, (lo, hi) in zip(geo["x_shape"][2:], geo["w_shape"][2:],
                                 geo["kw"]["dilation"], geo["kw"]["padding"]):
        size.append(max(n, d * (k - 1) + 1 - lo - hi))
    geo["x_shape"] = (*geo["x_shape"][:2], *size)
    return geo


def _backward(x, w, dy, kw, need_dx=True, need_dw=True):
    *_, g = conv_geometry(x, w, nd=2, **kw)
    return g, depthwise.backward(dy, x, w, g, need_dx, need_dw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stride_one_geometries())
def test_backward_with_dy_laid_out_once_matches_torch(geo):
    x, w, dy = _arrays(geo)
    g, (dx, dw) = _backward(x, w, dy, geo["kw"])
    assert depthwise.shares(g)                      # every drawn geometry lays dy out once
    depthwise.check_backward(g, combined=True)      # plans it (N = 0 too) without error
    _, t_dx, t_dw, _ = torch_conv(x, w, None, dy, **geo["kw"])
    for ours, t in ((dx, t_dx), (dw, t_dw)):
        assert ours.dtype == geo["dtype"] and ours.shape == t.shape
        assert rel_err(ours, t) < TOLERANCE[geo["dtype"]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depthwise_geometries(), st.booleans(), st.booleans())
def test_backward_gives_what_is_asked_on_every_depthwise_geometry(geo, need_dx, need_dw):
    x, w, dy = _arrays(geo)
    _, (dx, dw) = _backward(x, w, dy, geo["kw"], need_dx, need_dw)
    _, t_dx, t_dw, _ = torch_conv(x, w, None, dy, **geo["kw"])
    for ours, t, needed in ((dx, t_dx, need_dx), (dw, t_dw, need_dw)):
        if not needed:
            assert ours is None
        else:
            assert ours.dtype == geo["dtype"] and ours.shape == t.shape
            assert rel_err(ours, t) < TOLERANCE[geo["dtype"]]


def test_shares_where_dx_is_a_correlation_of_dy():
    def shares(x_shape, w_shape, **kw):
        *_, g = conv_geometry(np.zeros(x_shape), np.zeros(w_shape), nd=2, **kw)
        return depthwise.shares(g)
    assert shares((2, 4, 9, 9), (4, 1, 3, 3), padding=1, groups=4)
    assert shares((2, 4, 9, 9), (4, 1, 3, 5), padding=((0, 2), (3, 5)), dilation=(1, 2),
                  groups=4)
    assert shares((2, 4, 9, 9), (4, 1, 3, 3), padding=((4, 0), (0, 0)), groups=4)
    assert not shares((2, 4, 9, 9), (4, 1, 3, 3), padding=1, stride=2, groups=4)
    assert not shares((2, 4, 9, 9), (8, 1, 3, 3), padding=1, groups=4)        # F = 2C


@pytest.mark.parametrize("need", [(True, False), (False, True), (False, False)])
def test_backward_computes_only_what_is_asked_where_it_shares(need, monkeypatch):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 5, 11, 10)), rng.standard_normal((5, 1, 3, 3))
    dy = rng.standard_normal((3, 5, 11, 10))
    kw = dict(padding=1, groups=5)
    calls = []
    monkeypatch.setattr(depthwise, "_backward", lambda *a: calls.append(a))
    _, (dx, dw) = _backward(x, w, dy, kw, *need)
    assert not calls                                # one gradient: its own call
    _, t_dx, t_dw, _ = torch_conv(x, w, None, dy, **kw)
    for ours, t, needed in ((dx, t_dx, need[0]), (dw, t_dw, need[1])):
        assert (ours is None) if not needed else rel_err(ours, t) < 1e-10


def test_a_tiny_budget_chunks_the_shared_backward_and_stays_within_it():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((5, 3, 16, 17)), rng.standard_normal((3, 1, 3, 3))
    kw = dict(padding=((2, 0), (1, 1)), groups=3)
    dy = rng.standard_normal(x.shape)
    _, t_dx, t_dw, _ = torch_conv(x, w, None, dy, **kw)
    *_, g = conv_geometry(x, w, nd=2, **kw)
    assert depthwise.shares(g)
    budget = 80_000
    bl, per_position, fixed = depthwise._backward_plan(g)
    with cg.memory_budget(budget):
        chunks = bl.chunks("test", per_position, fixed=fixed)
    assert len({ns.start for _, ns in chunks}) > 1     # the batch is cut, channel by channel
    tracemalloc.start()
    try:
        with cg.memory_budget(budget):
            depthwise.check_backward(g, combined=True)
            start = tracemalloc.get_traced_memory()[0]
            dx, dw = depthwise.backward(dy, x, w, g)
            peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak <= budget + dx.nbytes + dw.nbytes + 65536
    assert rel_err(dx, t_dx) < 1e-10 and rel_err(dw, t_dw) < 1e-10
    with cg.memory_budget("2K"):
        with pytest.raises(MemoryError, match="needs"):
            depthwise.check_backward(g, combined=True)
        with pytest.raises(MemoryError, match="the backward pass .* needs"):
            depthwise.backward(dy, x, w, g)


@pytest.mark.parametrize("where", ["x", "w", "dy"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_values_in_the_shared_backward_propagate_as_in_torch(where, value):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 9, 14)), rng.standard_normal((3, 1, 3, 3))
    dy = rng.standard_normal((2, 3, 9, 14))
    {"x": x, "w": w, "dy": dy}[where].flat[13] = value
    kw = dict(padding=1, groups=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, ours = _backward(x, w, dy, kw)
    for a, t in zip(ours, torch_conv(x, w, None, dy, **kw)[1:3]):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(t))
        np.testing.assert_allclose(a, t, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kw,expected", [
    (dict(padding=1), ["backward"]),                                  # dy laid out once
    (dict(padding=0), ["backward"]),
    (dict(padding=1, stride=2), ["grad_weight", "grad_input"]),   # dw, then dx
])
def test_conv2d_backward_through_auto(kw, expected, monkeypatch):
    """'auto' hands both gradients to the depthwise engine's backward where it lays dy
    out once (stride 1); else dw, then dx, each on its own."""
    calls = []
    for name in ("grad_input", "grad_weight", "backward"):
        original = getattr(depthwise, name)
        monkeypatch.setattr(depthwise, name, lambda *a, _f=original, _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    rng = np.random.default_rng(8)
    x, w, b = (rng.standard_normal(s) for s in ((10, 8, 30, 30), (8, 1, 3, 3), (8,)))
    kw = dict(kw, groups=8)
    dy = rng.standard_normal(cg.conv2d(x, w, **kw).shape)
    *_, g = conv_geometry(x, w, nd=2, **kw)
    assert auto.uses_depthwise(g, "dx") and auto.uses_depthwise(g, "dw")
    ours = cg.conv2d_backward(dy, x, w, b, **kw)
    assert calls == expected
    for a, t in zip(ours, torch_conv(x, w, b, dy, **kw)[1:]):
        assert rel_err(a, t) < 1e-10
    calls.clear()
    dx, dw, db = cg.conv2d_backward(dy, x, w, b, **kw, algorithm="fast")
    assert not calls and rel_err(dw, ours[1]) < 1e-10
