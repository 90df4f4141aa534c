"""Winograd F(2x2, 3x3) (algorithm='winograd', and 'auto' where it pays) against PyTorch.

Every geometry Winograd applies to (2-D, 3x3, stride 1, dilation 1) is drawn: any
padding (ints, (lo, hi) pairs larger than the kernel, 'same', 'valid'), groups, odd and
even sizes (cut tiles at the edges), N = 0; forward, dx, dw, db, and the transposed
convolution (whose forward is dx). float64 to 1e-10 of PyTorch's float64; float32 within
the suite's float32 tolerance of PyTorch's float64 on the same rounded inputs.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.engine import auto, winograd
from convgrad.geometry import conv_geometry
from helpers import rel_err, torch_conv, torch_conv_transpose

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-10}


@st.composite
def winograd_geometries(draw):
    groups = draw(st.integers(1, 3))
    c, f = groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["pairs", "int", "same", "valid"]))
    if kind == "pairs":
        pads = draw(st.tuples(*[st.tuples(st.integers(0, 4), st.integers(0, 4))] * 2))
        padding = pads
    elif kind == "int":
        p = draw(st.integers(0, 4))
        pads, padding = ((p, p),) * 2, p
    else:
        pads, padding = ((0, 0),) * 2, kind
    size = tuple(draw(st.integers(max(1, 3 - sum(pads[i])), 11)) for i in range(2))
    return dict(x_shape=(draw(st.integers(0, 3)), c, *size), w_shape=(f, c // groups, 3, 3),
                kw=dict(padding=padding, groups=groups), bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(winograd_geometries())
def test_winograd_matches_torch(geo):
    rng = np.random.default_rng(geo["seed"])
    dtype = geo["dtype"]
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal(geo["w_shape"]).astype(dtype)
    b = rng.standard_normal(geo["w_shape"][0]).astype(dtype) if geo["bias"] else None
    kw = geo["kw"]
    y = cg.conv2d(x, w, b, algorithm="winograd", **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    ours = (y, *cg.conv2d_backward(dy, x, w, b, algorithm="winograd", **kw))
    truth = torch_conv(x, w, b, dy, **kw)
    for a, t in zip(ours, truth):
        if t is None:
            assert a is None
            continue
        assert a.dtype == dtype and a.shape == t.shape
        assert rel_err(a, t) < TOLERANCE[dtype]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(winograd_geometries())
def test_winograd_transposed_matches_torch(geo):
    rng = np.random.default_rng(geo["seed"])
    dtype = geo["dtype"]
    groups = geo["kw"]["groups"]
    # padding 0..2 (below the kernel), at most what the output size allows
    padding = min(geo["seed"] % 3, (min(geo["x_shape"][2:]) + 1) // 2)
    c_in, c_out_g = geo["x_shape"][1], geo["w_shape"][0] // groups
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal((c_in, c_out_g, 3, 3)).astype(dtype)
    b = rng.standard_normal(c_out_g * groups).astype(dtype)
    kw = dict(padding=padding, groups=groups)
    y = cg.conv_transpose2d(x, w, b, algorithm="winograd", **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    ours = (y, *cg.conv_transpose2d_backward(dy, x, w, b, algorithm="winograd", **kw))
    truth = torch_conv_transpose(x, w, b, dy, **kw)
    for a, t in zip(ours, truth):
        assert a.dtype == dtype and rel_err(a, t) < TOLERANCE[dtype]


def test_float32_error_stays_small_with_many_channels():
    """The transforms add terms of both signs: with 256 channels (W4's) the float32 error
    against PyTorch float64 stays within the float32 tolerance."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 256, 14, 14)).astype(np.float32)
    w = rng.standard_normal((64, 256, 3, 3)).astype(np.float32)
    y = cg.conv2d(x, w, padding=1, algorithm="winograd")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, _ = cg.conv2d_backward(dy, x, w, padding=1, algorithm="winograd")
    for a, t in zip((y, dx, dw), torch_conv(x, w, None, dy, padding=1)):
        assert rel_err(a, t) < TOLERANCE[np.float32]


@pytest.mark.parametrize("algorithm", ["winograd", "winograd4", "winograd7"])
@pytest.mark.parametrize("where", ["x", "w", "dy"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_values_propagate_as_in_torch(algorithm, where, value):
    """Winograd would spread them through a whole tile (2x2, 4x4 or 7x7 outputs): such
    calls take the direct path. 9x7 maps: more than one tile of every size."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 9, 7)), rng.standard_normal((4, 3, 3, 3))
    dy = rng.standard_normal((2, 4, 9, 7))
    {"x": x, "w": w, "dy": dy}[where].flat[7] = value
    ours = (cg.conv2d(x, w, padding=1, algorithm=algorithm),
            *cg.conv2d_backward(dy, x, w, padding=1, algorithm=algorithm)[:2])
    truth = torch_conv(x, w, None, dy, padding=1)[:3]
    for a, t in zip(ours, truth):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(t))
        np.testing.assert_allclose(a, t, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kw,what", [
    (dict(stride=2), "stride (2, 2)"),
    (dict(dilation=2), "dilation (2, 2)"),
])
def test_winograd_refuses_what_it_does_not_compute(kw, what):
    x, w = np.zeros((1, 2, 9, 9)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"algorithm='winograd' applies to .*"
                       + re.escape(what)):
        cg.conv2d(x, w, algorithm="winograd", **kw)
    with pytest.raises(ValueError, match=r"kernel \(5, 5\)"):
        cg.conv2d(x, np.zeros((2, 2, 5, 5)), algorithm="winograd")
    with pytest.raises(ValueError, match="1-D kernel"):
        cg.conv1d(np.zeros((1, 2, 9)), np.zeros((2, 2, 3)), algorithm="winograd")


@pytest.mark.parametrize("x_shape,w_shape,dtype,expected", [   # F(2x2)'s rule
    ((32, 256, 14, 14), (256, 256, 3, 3), np.float32, True),   # W4: 1568 tiles
    ((32, 256, 14, 14), (256, 256, 3, 3), np.float64, True),
    ((32, 128, 28, 28), (128, 128, 3, 3), np.float32, True),
    ((32, 128, 28, 28), (128, 128, 3, 3), np.float64, False),  # measured slower
    ((32, 64, 56, 56), (64, 64, 3, 3), np.float32, False),     # W3: 64 channels
    ((1, 256, 14, 14), (256, 256, 3, 3), np.float32, False),   # 49 tiles
    ((32, 256, 14, 14), (256, 1, 3, 3), np.float32, False),    # depthwise
    ((32, 256, 14, 14), (256, 256, 5, 5), np.float32, False),
])
def test_auto_picks_winograd_where_measured_faster(x_shape, w_shape, dtype, expected):
    groups = x_shape[1] // w_shape[1]
    x = np.broadcast_to(dtype(0), x_shape)
    w = np.broadcast_to(dtype(0), w_shape)
    *_, g = conv_geometry(x, w, nd=2, padding=1, groups=groups)
    assert auto.uses_winograd(g) is expected


def test_auto_gives_winograds_numbers_where_it_picks_it():
    """float32 (float64 forward passes take F(4x4): tests/test_winograd4.py)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 256, 16, 16)).astype(np.float32)   # 512 tiles
    w = rng.standard_normal((256, 256, 3, 3)).astype(np.float32)
    y = cg.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(y, cg.conv2d(x, w, padding=1, algorithm="winograd"))
    assert rel_err(y, torch_conv(x, w, None, None, padding=1)[0]) < TOLERANCE[np.float32]


def test_winograd_scratch_stays_within_the_budget():
    import tracemalloc
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((6, 16, 12, 12)), rng.standard_normal((8, 16, 3, 3))
    dy = rng.standard_normal((6, 8, 12, 12))
    budget = 2**18
    tracemalloc.start()
    try:
        with cg.memory_budget(budget):
            for call in (lambda: cg.conv2d(x, w, padding=1, algorithm="winograd"),
                         lambda: cg.conv2d_backward(dy, x, w, padding=1,
                                                    algorithm="winograd")):
                tracemalloc.reset_peak()
                start = tracemalloc.get_traced_memory()[0]
                out = call()
                arrays = out if isinstance(out, tuple) else (out,)
                outputs = sum(a.nbytes for a in arrays if a is not None)
                assert tracemalloc.get_traced_memory()[1] - start <= budget + outputs + 65536
                del out
        with cg.memory_budget("4K"), pytest.raises(MemoryError, match="needs"):
            cg.conv2d(x, w, padding=1, algorithm="winograd")
    finally:
        tracemalloc.stop()


def test_winograd_applies_only_to_2d_3x3_stride_1():
    x = np.broadcast_to(0.0, (1, 1, 8, 8))
    for w_shape, kw, expected in [((1, 1, 3, 3), {}, True), ((1, 1, 3, 3), dict(stride=2), False),
                                  ((1, 1, 3, 1), {}, False)]:
        *_, g = conv_geometry(x, np.broadcast_to(0.0, w_shape), nd=2, **kw)
        assert winograd.applies(g) is expected
