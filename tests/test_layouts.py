"""Every lowering layout and every input-gradient path of the fast engine, against PyTorch.

The fast engine picks, per geometry, one of three column layouts ("rows", "samples",
"channels" last) and, for dx, the swapped correlation or col2im; the choice is a speed
decision, so each path is forced here over hypothesis-drawn geometries (1-D to 3-D,
stride, dilation, groups, padding larger than the kernel, N = 0) and compared with
PyTorch float64 (1e-10; float32 on the same rounded inputs within the float32
tolerance), for convolutions and transposed convolutions, and through nn layers that
keep their forward columns.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad import memory, nn
from convgrad.engine import fast
from helpers import rel_err, torch_conv, torch_conv_transpose

LAYOUTS = ["rows", "samples", "channels"]
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-10}
CONV = {1: cg.conv1d, 2: cg.conv2d, 3: cg.conv3d}
BACKWARD = {1: cg.conv1d_backward, 2: cg.conv2d_backward, 3: cg.conv3d_backward}
T = {1: cg.conv_transpose1d, 2: cg.conv_transpose2d, 3: cg.conv_transpose3d}
TB = {1: cg.conv_transpose1d_backward, 2: cg.conv_transpose2d_backward,
      3: cg.conv_transpose3d_backward}


@pytest.fixture
def forced(monkeypatch):
    """force(layout, swap): every plan in that layout, dx by that path."""
    def force(layout, swap):
        monkeypatch.setattr(fast, "_layout", lambda g: layout)
        original = fast._swap_pays
        monkeypatch.setattr(fast, "_swap_pays",
                            lambda g: original(g) if swap else False)
    return force


@st.composite
def geometries(draw):
    nd = draw(st.integers(1, 3))
    small = st.integers(1, 3)
    groups = draw(st.integers(1, 2))
    c, f = groups * draw(st.integers(1, 5)), groups * draw(st.integers(1, 5))
    kernel = draw(st.tuples(*[small] * nd))
    stride = draw(st.tuples(*[small] * nd))
    dilation = draw(st.tuples(*[st.integers(1, 2)] * nd))
    pads = draw(st.tuples(*[st.tuples(st.integers(0, 4), st.integers(0, 4))] * nd))
    size = []
    for i in range(nd):
        extent = dilation[i] * (kernel[i] - 1) + 1
        low = max(1, extent - sum(pads[i]))
        size.append(draw(st.integers(low, low + (5 if nd < 3 else 2))))
    return dict(x_shape=(draw(st.integers(0, 3)), c, *size),
                w_shape=(f, c // groups, *kernel),
                kw=dict(stride=stride, padding=pads, dilation=dilation, groups=groups),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**31)))


def _check(ours, truth, dtype, dy=None):
    """y, dx, dw (and db) against PyTorch. db = sum(dy) may cancel to nearly 0 (in float32
    its rounding error then exceeds the result's own 2e-5): with ``dy`` it is compared
    relative to the sum of |dy|, the size of its terms."""
    for i, (a, t) in enumerate(zip(ours, truth)):
        assert a.dtype == dtype and a.shape == t.shape
        if i == 3 and dy is not None and t.size:
            terms = np.abs(dy.astype(np.float64)).sum(axis=(0, *range(2, dy.ndim))).max()
            assert np.abs(a - t).max() <= TOLERANCE[dtype] * max(np.abs(t).max(), terms)
        else:
            assert rel_err(a, t) < TOLERANCE[dtype]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("swap", [True, False], ids=["swapped-dx", "col2im-dx"])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(geo=geometries())
def test_each_layout_and_dx_path_matches_torch(forced, layout, swap, geo):
    forced(layout, swap)
    rng = np.random.default_rng(geo["seed"])
    dtype = geo["dtype"]
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal(geo["w_shape"]).astype(dtype)
    b = rng.standard_normal(geo["w_shape"][0]).astype(dtype)
    nd, kw = len(geo["x_shape"]) - 2, geo["kw"]
    y = CONV[nd](x, w, b, algorithm="fast", **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _check((y, *BACKWARD[nd](dy, x, w, b, algorithm="fast", **kw)),
           torch_conv(x, w, b, dy, **kw), dtype, dy)


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(geo=geometries())
def test_each_layout_of_the_transposed_convolution_matches_torch(forced, layout, geo):
    forced(layout, True)
    rng = np.random.default_rng(geo["seed"])
    dtype = geo["dtype"]
    nd, kw = len(geo["x_shape"]) - 2, dict(geo["kw"])
    groups = kw["groups"]
    # PyTorch's transposed padding is one int per axis, at most d*(k-1)
    kw["padding"] = tuple(min(lo, d * (k - 1)) for (lo, _), d, k in
                          zip(kw["padding"], kw["dilation"], geo["w_shape"][2:]))
    c_in = geo["x_shape"][1]
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal((c_in, geo["w_shape"][0] // groups,
                             *geo["w_shape"][2:])).astype(dtype)
    try:
        y = T[nd](x, w, algorithm="fast", **kw)
    except ValueError:                        # an empty output: nothing to compare
        return
    dy = rng.standard_normal(y.shape).astype(dtype)
    _check((y, *TB[nd](dy, x, w, algorithm="fast", **kw)[:2]),
           torch_conv_transpose(x, w, None, dy, **kw)[:3], dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layers_keep_columns_in_each_layout(forced, layout):
    """The kept columns (read back by dw) give PyTorch's gradients in every layout."""
    forced(layout, False)
    rng = np.random.default_rng(7)
    layer = nn.Conv2d(8, 6, 3, stride=(1, 2), padding=(2, 1), groups=2, rng=0,
                      dtype=np.float64)
    x = rng.standard_normal((3, 8, 5, 7))
    y = layer.forward(x)
    assert memory.kept_bytes() > 0
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    assert layer._columns.nbytes == 0          # dropped (their buffer may stay as a spare)
    assert memory.kept_bytes() == layer._columns.spare_nbytes()
    truth = torch_conv(x, layer.weight.data, layer.bias.data, dy, stride=(1, 2),
                       padding=(2, 1), groups=2)
    _check((y, dx, layer.weight.grad, layer.bias.grad), truth, np.float64)


def test_auto_uses_channels_last_on_short_rows():
    """The digits model's second layer (4x4 maps, 32 channels) takes the channels-last
    layout; its first (one input channel) and 16x16 maps do not."""
    from convgrad.geometry import conv_geometry

    def layout(x_shape, w_shape):
        x, w = np.broadcast_to(0.0, x_shape), np.broadcast_to(0.0, w_shape)
        return fast._layout(conv_geometry(x, w, nd=2, padding=1)[-1])
    assert layout((64, 32, 4, 4), (64, 32, 3, 3)) == "channels"
    assert layout((64, 1, 8, 8), (32, 1, 3, 3)) == "samples"
    assert layout((64, 32, 16, 16), (64, 32, 3, 3)) == "rows"


@st.composite
def kernel_row_geometries(draw):
    """2-D, stride 1, one group (where kernel rows apply): any kernel, dilation and
    padding (asymmetric, larger than the kernel), maps from 1 column, N = 0 to 3."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    size = []
    for k, d, (lo, hi) in zip(kernel, dilation, pads):
        low = max(1, d * (k - 1) + 1 - lo - hi)
        size.append(draw(st.integers(low, low + 6)))
    c, f = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return dict(x_shape=(draw(st.integers(0, 3)), c, *size), w_shape=(f, c, *kernel),
                kw=dict(stride=1, padding=pads, dilation=dilation, groups=1),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**31)))


@pytest.fixture
def kernel_rows_forced(monkeypatch):
    """Kernel rows for the forward pass and dx wherever they apply; returns the calls."""
    from convgrad.engine import kernel_rows
    calls = []
    monkeypatch.setattr(fast, "_layout", lambda g: "rows")
    for name in ("forward", "grad_input"):
        original = getattr(kernel_rows, name)
        monkeypatch.setattr(kernel_rows, name, lambda *a, _f=original, _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    return calls


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(geo=kernel_row_geometries())
def test_kernel_rows_match_torch(kernel_rows_forced, geo):
    """y and dx by kernel rows (engine/kernel_rows.py), dw by im2col, against PyTorch
    float64; and the transposed convolution, whose forward is kernel rows' dx."""
    kernel_rows_forced.clear()
    rng = np.random.default_rng(geo["seed"])
    dtype, kw = geo["dtype"], geo["kw"]
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal(geo["w_shape"]).astype(dtype)
    b = rng.standard_normal(geo["w_shape"][0]).astype(dtype)
    y = cg.conv2d(x, w, b, algorithm="fast", **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _check((y, *cg.conv2d_backward(dy, x, w, b, algorithm="fast", **kw)),
           torch_conv(x, w, b, dy, **kw), dtype, dy)
    pointwise = geo["w_shape"][2:] == (1, 1) and kw["padding"] == ((0, 0), (0, 0))
    assert kernel_rows_forced == ([] if pointwise else ["forward", "grad_input"])
    # transposed, PyTorch's padding: one int per axis, at most d * (k - 1)
    padding = tuple(min(lo, d * (k - 1)) for (lo, _), d, k in
                    zip(kw["padding"], kw["dilation"], geo["w_shape"][2:]))
    wt = rng.standard_normal((geo["x_shape"][1], geo["w_shape"][0],
                              *geo["w_shape"][2:])).astype(dtype)
    try:
        yt = cg.conv_transpose2d(x, wt, algorithm="fast", padding=padding,
                                 dilation=kw["dilation"])
    except ValueError:                        # an empty output: nothing to compare
        return
    dyt = rng.standard_normal(yt.shape).astype(dtype)
    dxt, dwt, _ = cg.conv_transpose2d_backward(dyt, x, wt, algorithm="fast", padding=padding,
                                               dilation=kw["dilation"])
    _check((yt, dxt, dwt), torch_conv_transpose(x, wt, None, dyt, padding=padding,
                                                dilation=kw["dilation"])[:3], dtype)
