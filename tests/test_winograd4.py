"""Winograd F(4x4, 3x3) and F(7x7, 3x3) (algorithm='winograd4', 'winograd7', and 'auto'
in float64 where they pay).

The matrices are rebuilt from their points (Cook-Toom) and checked against the direct
sum; every geometry they apply to is drawn (sizes that are not multiples of 4, so
the last tiles are cut; padding 0-2 as ints and (lo, hi) pairs, 'same', 'valid'; groups;
odd channel counts; N = 0-3), in both tile layouts, with the memory budget forcing blocks
of a few tile rows: forward, dx, dw, db and the transposed convolution (whose forward is
dx). float64 to 1e-10 of PyTorch's float64 autograd; float32 within the suite's float32
tolerance of PyTorch's float64 on the same rounded inputs (F(4x4) only: F(7x7) refuses
float32).
"""
from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.engine import (auto, depthwise, fast, winograd, winograd4, winograd7,
                             winograd_mxm)
from convgrad.geometry import conv_geometry
from helpers import rel_err, torch_conv, torch_conv_transpose

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-10}
ENGINES = {"winograd4": winograd4, "winograd7": winograd7}


def test_winograd4_matrices_are_the_documented_ones():
    """The docstring's B^T, G, A^T (points 0, 1, -1, 1/2, -2)."""
    np.testing.assert_array_equal(winograd4.TILING.b_t, [
        [2, -3, -4, 3, 2, 0], [0, -2, 1, 5, 2, 0], [0, -2, 5, -1, -2, 0],
        [0, 2, 1, -2, -1, 0], [0, 1, -2, -1, 2, 0], [0, 2, -3, -4, 3, 2]])
    np.testing.assert_allclose(winograd4.TILING.g, [
        [1 / 2, 0, 0], [1 / 6, 1 / 6, 1 / 6], [1 / 6, -1 / 6, 1 / 6],
        [16 / 15, 8 / 15, 4 / 15], [1 / 30, -1 / 15, 2 / 15], [0, 0, 1 / 2]], rtol=1e-15)
    np.testing.assert_array_equal(winograd4.TILING.a_t, [
        [1, 1, 1, 1, 1, 0], [0, 1, -1, 1 / 2, -2, 0], [0, 1, 1, 1 / 4, 4, 0],
        [0, 1, -1, 1 / 8, -8, 1]])


@pytest.mark.parametrize("engine", [winograd4, winograd7])
def test_one_dimensional_identity_is_the_direct_sum(engine):
    """The defining property, independent of how the matrices were built: for any input
    run d (alpha) and filter g (3), A^T [(G g) * (B^T d)] is the direct correlation's m
    outputs. (The construction itself is not re-implemented here: a copy of it would
    only check the code against itself.)"""
    tiling = engine.TILING
    rng = np.random.default_rng(0)
    for _ in range(20):
        d, g = rng.standard_normal(tiling.alpha), rng.standard_normal(3)
        direct = np.array([d[i:i + 3] @ g for i in range(tiling.m)])
        ours = tiling.a_t @ ((tiling.g @ g) * (tiling.b_t @ d))
        np.testing.assert_allclose(ours, direct, rtol=1e-11, atol=1e-11)


@contextlib.contextmanager
def _layout(last: bool | None):
    """Force the forward correlation's tile layout (None: the measured choice)."""
    saved = winograd_mxm.LAST_CHANNELS
    if last is not None:
        winograd_mxm.LAST_CHANNELS = 0 if last else 10**9
    try:
        yield
    finally:
        winograd_mxm.LAST_CHANNELS = saved


@contextlib.contextmanager
def _blocks(kind: str):
    """'rows': blocks of one tile row (as a tight memory budget gives); 'filter' and
    'filters': dw's dU one filter, or a few with a shorter last block, at a time (where
    all tiles are one block); 'default': as measured fastest."""
    saved = winograd_mxm.TARGET_BYTES, winograd_mxm.MIN_ROWS, winograd_mxm.DW_BLOCK_BYTES
    if kind == "rows":
        winograd_mxm.TARGET_BYTES, winograd_mxm.MIN_ROWS = 1, 1
    elif kind in ("filter", "filters"):
        winograd_mxm.DW_BLOCK_BYTES = 1 if kind == "filter" else 1000
    try:
        yield
    finally:
        (winograd_mxm.TARGET_BYTES, winograd_mxm.MIN_ROWS,
         winograd_mxm.DW_BLOCK_BYTES) = saved


@st.composite
def winograd4_geometries(draw):
    groups = draw(st.integers(1, 3))
    c, f = groups * draw(st.integers(1, 5)), groups * draw(st.integers(1, 5))
    kind = draw(st.sampled_from(["pairs", "int", "same", "valid"]))
    if kind == "pairs":
        pads = draw(st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * 2))
        padding = pads
    elif kind == "int":
        p = draw(st.integers(0, 2))
        pads, padding = ((p, p),) * 2, p
    else:
        pads, padding = ((0, 0),) * 2, kind
    size = tuple(draw(st.integers(max(1, 3 - sum(pads[i])), 17)) for i in range(2))
    return dict(x_shape=(draw(st.integers(0, 3)), c, *size), w_shape=(f, c // groups, 3, 3),
                kw=dict(padding=padding, groups=groups), bias=draw(st.booleans()),
                algorithm=(algorithm := draw(st.sampled_from(["winograd4", "winograd7"]))),
                dtype=(np.float64 if algorithm == "winograd7"
                       else draw(st.sampled_from([np.float32, np.float64]))),
                last=draw(st.sampled_from([None, True, False])),
                blocks=draw(st.sampled_from(["default", "rows", "filter", "filters"])),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(winograd4_geometries())
def test_winograd4_matches_torch(geo):
    rng = np.random.default_rng(geo["seed"])
    dtype = geo["dtype"]
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal(geo["w_shape"]).astype(dtype)
    b = rng.standard_normal(geo["w_shape"][0]).astype(dtype) if geo["bias"] else None
    kw = geo["kw"]
    with _layout(geo["last"]), _blocks(geo["blocks"]):
        y = cg.conv2d(x, w, b, algorithm=geo["algorithm"], **kw)
        dy = rng.standard_normal(y.shape).astype(dtype)
        ours = (y, *cg.conv2d_backward(dy, x, w, b, algorithm=geo["algorithm"], **kw))
    truth = torch_conv(x, w, b, dy, **kw)
    for name, a, t in zip(("y", "dx", "dw", "db"), ours, truth):
        if t is None:
            assert a is None
            continue
        assert a.dtype == dtype and a.shape == t.shape
        _close(name, a, t, dy, dtype)


def _close(name, a, t, dy, dtype):
    """Within the tolerance, relative to the largest entry; db (the same sum whatever
    the engine) relative to the sum of |dy| it adds up, as one output channel's sum of
    terms of both signs may cancel to far below them."""
    if name == "db":
        scale = np.abs(dy.astype(np.float64)).sum(axis=(0, 2, 3))
        assert np.all(np.abs(a - t) <= TOLERANCE[dtype] * np.maximum(scale, 1e-30))
    else:
        assert rel_err(a, t) < TOLERANCE[dtype]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(winograd4_geometries())
def test_winograd4_transposed_matches_torch(geo):
    rng = np.random.default_rng(geo["seed"])
    dtype = geo["dtype"]
    groups = geo["kw"]["groups"]
    padding = min(geo["seed"] % 3, (min(geo["x_shape"][2:]) + 1) // 2)
    c_in, c_out_g = geo["x_shape"][1], geo["w_shape"][0] // groups
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal((c_in, c_out_g, 3, 3)).astype(dtype)
    b = rng.standard_normal(c_out_g * groups).astype(dtype)
    kw = dict(padding=padding, groups=groups)
    with _layout(geo["last"]), _blocks(geo["blocks"]):
        y = cg.conv_transpose2d(x, w, b, algorithm=geo["algorithm"], **kw)
        dy = rng.standard_normal(y.shape).astype(dtype)
        ours = (y, *cg.conv_transpose2d_backward(dy, x, w, b, algorithm=geo["algorithm"],
                                                 **kw))
    truth = torch_conv_transpose(x, w, b, dy, **kw)
    for name, a, t in zip(("y", "dx", "dw", "db"), ours, truth):
        assert a.dtype == dtype and a.shape == t.shape
        _close(name, a, t, dy, dtype)


@pytest.mark.parametrize("last", [True, False])
@pytest.mark.parametrize("shape", [(3, 64, 17, 23), (2, 256, 14, 14)])
def test_float32_with_many_channels_stays_within_tolerance(shape, last):
    """The transforms add terms of both signs (factors up to 8): with 64 and 256 channels
    the float32 error against PyTorch float64 stays within the float32 tolerance
    (measured 2-5e-6; the direct method's 5e-7)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    w = (rng.standard_normal((64, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    with _layout(last):
        y = cg.conv2d(x, w, padding=1, algorithm="winograd4")
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx, dw, _ = cg.conv2d_backward(dy, x, w, padding=1, algorithm="winograd4")
    for a, t in zip((y, dx, dw), torch_conv(x, w, None, dy, padding=1)):
        assert rel_err(a, t) < TOLERANCE[np.float32]


@pytest.mark.parametrize("engine", [winograd4, winograd7])
@pytest.mark.parametrize("last", [True, False])
def test_tiny_budget_gives_many_blocks_and_the_same_result(last, engine):
    """Blocks of whole samples, of two tile rows, of one (dw) give what one block gives."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((3, 6, 21, 18)), rng.standard_normal((5, 6, 3, 3))
    dy = rng.standard_normal((3, 5, 21, 18))
    *_, g = conv_geometry(x, w, nd=2, padding=1)
    m = engine.TILING.m

    def rows(plan):                                      # tile rows in the largest block
        return max((s.stop - s.start) * (r.stop - r.start) for s, r in plan.blocks)

    with _layout(last):
        assert len(winograd_mxm.forward_plan(g, "f", m).blocks) == 1
        whole = (engine.forward(x, w, g), engine.grad_input(dy, w, g),
                 engine.grad_weight(dy, x, g))
        th = engine.tiles(g)[0]                          # 6 (4x4 tiles) or 3 (7x7)
        for budget, most in [("180K", th), ({4: "70K", 7: "120K"}[m], 2)]:
            with cg.memory_budget(budget):
                assert rows(winograd_mxm.forward_plan(g, "f", m)) == most
                assert rows(winograd_mxm.weight_plan(g, m)) <= most
                chunked = (engine.forward(x, w, g), engine.grad_input(dy, w, g),
                           engine.grad_weight(dy, x, g))
            for a, b in zip(chunked, whole):               # rounding: F(7x7) ~1e-12
                assert rel_err(a, b) < 1e-11
    truth = torch_conv(x, w, None, dy, padding=1)
    for a, t in zip(whole, truth):
        assert rel_err(a, t) < 1e-10
    with cg.memory_budget("40K"), pytest.raises(MemoryError, match="needs"):
        engine.forward(x, w, g)


def test_scratch_stays_within_the_budget():
    import tracemalloc
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((6, 16, 13, 12)), rng.standard_normal((8, 16, 3, 3))
    dy = rng.standard_normal((6, 8, 13, 12))
    budget = 2**18
    tracemalloc.start()
    try:
        with cg.memory_budget(budget):
            for call in (lambda: cg.conv2d(x, w, padding=1, algorithm="winograd4"),
                         lambda: cg.conv2d_backward(dy, x, w, padding=1,
                                                    algorithm="winograd4")):
                tracemalloc.reset_peak()
                start = tracemalloc.get_traced_memory()[0]
                out = call()
                arrays = out if isinstance(out, tuple) else (out,)
                outputs = sum(a.nbytes for a in arrays if a is not None)
                assert tracemalloc.get_traced_memory()[1] - start <= budget + outputs + 65536
                del out
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("algorithm", ["winograd4", "winograd7"])
@pytest.mark.parametrize("kw,what", [
    (dict(stride=2), "stride (2, 2)"),
    (dict(dilation=2), "dilation (2, 2)"),
])
def test_refuses_what_it_does_not_compute(kw, what, algorithm):
    x, w = np.zeros((1, 2, 9, 9)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match=rf"algorithm='{algorithm}' applies to .*"
                       + re.escape(what)):
        cg.conv2d(x, w, algorithm=algorithm, **kw)
    with pytest.raises(ValueError, match=r"kernel \(5, 5\)"):
        cg.conv2d(x, np.zeros((2, 2, 5, 5)), algorithm=algorithm)
    with pytest.raises(ValueError, match="1-D kernel"):
        cg.conv1d(np.zeros((1, 2, 9)), np.zeros((2, 2, 3)), algorithm=algorithm)


def test_winograd7_refuses_float32():
    x, w = np.zeros((1, 2, 9, 9), np.float32), np.zeros((2, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="winograd7.*float64 only.*float32"):
        cg.conv2d(x, w, algorithm="winograd7")
    with pytest.raises(ValueError, match="winograd7.*float64 only"):
        cg.conv2d_backward(np.zeros((1, 2, 7, 7), np.float32), x, w, algorithm="winograd7")


def test_unknown_algorithm_lists_winograd4_and_7():
    with pytest.raises(ValueError, match="'winograd', 'winograd4', 'winograd7', 'reference'"):
        cg.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), algorithm="winograd8")


# (x shape, w shape, dtype) -> the engines auto picks for forward, dx, dw (engine/auto.py)
F, W2, W4, W7 = fast, winograd, winograd4, winograd7
AUTO_CASES = [
    ((64, 16, 32, 32), (32, 16, 3, 3), np.float64, (W4, F, W4)),       # W2
    ((32, 64, 56, 56), (64, 64, 3, 3), np.float64, (W4, W4, W4)),      # W3
    ((32, 256, 14, 14), (256, 256, 3, 3), np.float64, (W7, W7, W7)),   # W4
    ((2, 256, 14, 14), (256, 256, 3, 3), np.float64, (F, F, F)),       # 32 tiles
    ((8, 256, 14, 14), (256, 256, 3, 3), np.float64, (W4, W4, F)),     # dw: few tiles
    ((32, 512, 7, 7), (512, 512, 3, 3), np.float64, (W4, W4, F)),      # 32 7x7 tiles
    ((32, 128, 14, 14), (128, 128, 3, 3), np.float64, (W7, W7, W7)),
    ((15, 128, 21, 21), (136, 128, 3, 3), np.float64, (W7, W7, W7)),   # 135 tiles
    ((8, 256, 28, 28), (256, 256, 3, 3), np.float64, (W4, W4, W2)),    # 4 and 7 divide
    ((64, 8, 32, 32), (8, 8, 3, 3), np.float64, (F, F, W4)),
    ((4, 8, 12, 12), (8, 8, 3, 3), np.float64, (F, F, F)),              # 36 tiles, 8 ch
    ((64, 32, 16, 16), (64, 32, 3, 3), np.float64, (W4, W4, W4)),      # CIFAR-sized 2nd
    ((32, 256, 14, 14), (256, 256, 3, 3), np.float32, (W2, W2, W2)),   # float32: F(2x2)
    ((32, 64, 56, 56), (64, 64, 3, 3), np.float32, (F, F, F)),
    ((32, 64, 14, 14), (64, 64, 3, 3), np.float64, (W4, W4, W4)),
    ((32, 128, 28, 28), (128, 128, 3, 3), np.float64, (W4, W4, W4)),
    ((32, 64, 56, 56), (64, 1, 3, 3), np.float64, (depthwise,) * 3),  # depthwise
    ((32, 64, 56, 56), (64, 64, 5, 5), np.float64, (F, F, F)),
]


@pytest.mark.parametrize("x_shape,w_shape,dtype,expected", AUTO_CASES)
def test_auto_picks_what_its_docstring_says(x_shape, w_shape, dtype, expected):
    groups = x_shape[1] // w_shape[1]
    x, w = np.broadcast_to(dtype(0), x_shape), np.broadcast_to(dtype(0), w_shape)
    *_, g = conv_geometry(x, w, nd=2, padding=w_shape[-1] // 2, groups=groups)
    assert tuple(auto.engine_for(g, op) for op in auto.MAPS) == expected
    with pytest.raises(ValueError, match="op='backward'"):
        auto.engine_for(g, "backward")


def test_auto_gives_the_picked_engines_numbers():
    """float64 with 32 -> 64 channels: F(4x4) for all three maps, bit for bit."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((8, 32, 13, 15)), rng.standard_normal((64, 32, 3, 3))
    *_, g = conv_geometry(x, w, nd=2, padding=1)
    assert {auto.engine_for(g, op) for op in auto.MAPS} == {winograd4}
    y = cg.conv2d(x, w, padding=1)
    dy = rng.standard_normal(y.shape)
    ours = (y, *cg.conv2d_backward(dy, x, w, padding=1)[:2])
    picked = (cg.conv2d(x, w, padding=1, algorithm="winograd4"),
              *cg.conv2d_backward(dy, x, w, padding=1, algorithm="winograd4")[:2])
    for a, b, t in zip(ours, picked, torch_conv(x, w, None, dy, padding=1)):
        np.testing.assert_array_equal(a, b)
        assert rel_err(a, t) < 1e-10


@pytest.mark.parametrize("x_shape,w_shape", [((32, 128, 14, 14), (128, 128, 3, 3)),
                                             ((15, 128, 21, 21), (136, 128, 3, 3))])
def test_auto_dw_by_winograd7_matches_torch(x_shape, w_shape):
    """float64 dw where auto picks F(7x7) (engine/auto.py): PyTorch's to 1e-10, and
    algorithm='winograd7''s bit for bit; db and dx too."""
    rng = np.random.default_rng(sum(x_shape))
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    *_, g = conv_geometry(x, w, nd=2, padding=1)
    assert auto.engine_for(g, "grad_weight") is winograd7
    dy = rng.standard_normal((x_shape[0], w_shape[0], *x_shape[2:]))
    dx, dw, db = cg.conv2d_backward(dy, x, w, b, padding=1)
    _, dx_ref, dw_ref, db_ref = torch_conv(x, w, b, dy, padding=1)
    assert rel_err(dw, dw_ref) < 1e-10
    assert rel_err(dx, dx_ref) < 1e-10 and rel_err(db, db_ref) < 1e-10
    np.testing.assert_array_equal(
        dw, cg.conv2d_backward(dy, x, w, b, padding=1, algorithm="winograd7")[1])


@pytest.mark.parametrize("engine", [winograd4, winograd7])
@pytest.mark.parametrize("kind", ["filter", "filters", "default"])
def test_dw_by_blocks_of_filters(engine, kind):
    """dw with all tiles in one block, dU computed a block of filters at a time (the
    block's buffer reused): PyTorch's to 1e-10, non-finite inputs as PyTorch, and the
    scratch within what weight_plan counts."""
    import tracemalloc
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 9, 14, 13)), rng.standard_normal((11, 9, 3, 3))
    dy = rng.standard_normal((2, 11, 14, 13))
    *_, g = conv_geometry(x, w, nd=2, padding=1)
    plan = winograd_mxm.weight_plan(g, engine.TILING.m)
    assert len(plan.blocks) == 1
    truth = torch_conv(x, w, None, dy, padding=1)[2]
    with _blocks(kind):
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            dw = engine.grad_weight(dy, x, g)
            peak = tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()
        assert rel_err(dw, truth) < 1e-10
        alpha2 = engine.TILING.alpha ** 2
        counted = (plan.count * plan.size + 2 * alpha2 * 11 * 9 + dw.size) * 8
        assert peak <= counted + 65536
        for value in (np.inf, np.nan):
            bad = dy.copy()
            bad[1, 4, 3, 5] = value
            got = engine.grad_weight(bad, x, g)
            want = torch_conv(x, w, None, bad, padding=1)[2]
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("channels,budget", [(256, "24M"), (128, "8M")])
def test_auto_takes_the_fast_engine_where_winograd_does_not_fit_the_budget(channels,
                                                                          budget):
    """auto's choice is cached per geometry, the budget is per call: a budget too small
    for Winograd's transformed filters (F(4x4) of 256 channels: 57 MB with their copies)
    sends those maps to the fast engine, which plans within it, instead of raising
    MemoryError; an explicit algorithm still raises."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, channels, 14, 14))
    w = rng.standard_normal((channels, channels, 3, 3))
    dy = rng.standard_normal((8, channels, 14, 14))
    *_, g = conv_geometry(x, w, nd=2, padding=1)
    chosen = [auto.engine_for(g, op) for op in auto.MAPS]
    assert chosen[0] is winograd4 and chosen[1] is winograd4
    with cg.memory_budget(budget):
        now = [auto.engine_now(g, op) for op in auto.MAPS]
        assert now == [fast if e in (winograd, winograd4, winograd7) else e for e in chosen]
        y = cg.conv2d(x, w, padding=1)
        dx, dw, _ = cg.conv2d_backward(dy, x, w, padding=1)
        with pytest.raises(MemoryError, match="needs"):
            cg.conv2d(x, w, padding=1, algorithm="winograd4")
    for a, t in zip((y, dx, dw), torch_conv(x, w, None, dy, padding=1)):
        assert rel_err(a, t) < 1e-10
    assert [auto.engine_now(g, op) for op in auto.MAPS] == chosen    # default budget
