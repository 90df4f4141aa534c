"""Property-based: random valid geometries, fast against reference and against PyTorch."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from helpers import conv_out_size, rel_err, torch_conv, torch_conv_transpose

CONV = {1: cg.conv1d, 2: cg.conv2d, 3: cg.conv3d}
BACKWARD = {1: cg.conv1d_backward, 2: cg.conv2d_backward, 3: cg.conv3d_backward}
T = {1: cg.conv_transpose1d, 2: cg.conv_transpose2d, 3: cg.conv_transpose3d}
TB = {1: cg.conv_transpose1d_backward, 2: cg.conv_transpose2d_backward,
      3: cg.conv_transpose3d_backward}


@st.composite
def conv_geometries(draw, max_nd=3):
    nd = draw(st.integers(1, max_nd))
    small = st.integers(1, 3)
    groups = draw(st.integers(1, 3))
    c, f = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = draw(st.tuples(*[small] * nd))
    stride = draw(st.tuples(*[small] * nd))
    dilation = draw(st.tuples(*[small] * nd))
    kind = draw(st.sampled_from(["pairs", "int", "same", "valid"]))
    if kind == "pairs":
        pads = draw(st.tuples(*[st.tuples(st.integers(0, 3), st.integers(0, 3))] * nd))
        padding = pads
    elif kind == "int":
        p = draw(st.integers(0, 3))
        pads, padding = ((p, p),) * nd, p
    else:
        pads, padding = None, kind
    size = []
    for i in range(nd):
        extent = dilation[i] * (kernel[i] - 1) + 1
        pad_total = 0 if pads is None else sum(pads[i])
        low = max(1, extent - pad_total) if kind != "same" else 1
        size.append(draw(st.integers(low, low + 5 if nd < 3 else low + 2)))
    n = draw(st.integers(0, 2))
    return dict(x_shape=(n, c, *size), w_shape=(f, c // groups, *kernel),
                kw=dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_geometries())
def test_random_geometry_fast_reference_torch(geo):
    rng = np.random.default_rng(geo["seed"])
    x, w = rng.standard_normal(geo["x_shape"]), rng.standard_normal(geo["w_shape"])
    b = rng.standard_normal(geo["w_shape"][0]) if geo["bias"] else None
    nd, kw = len(geo["x_shape"]) - 2, geo["kw"]
    y_fast = CONV[nd](x, w, b, **kw)
    y_ref = CONV[nd](x, w, b, algorithm="reference", **kw)
    dy = rng.standard_normal(y_fast.shape)
    grads_fast = BACKWARD[nd](dy, x, w, b, **kw)
    grads_ref = BACKWARD[nd](dy, x, w, b, algorithm="reference", **kw)
    truth = torch_conv(x, w, b, dy, **kw)
    for fast, ref, tr in zip((y_fast, *grads_fast), (y_ref, *grads_ref), truth):
        if tr is None:
            assert fast is None and ref is None
            continue
        assert rel_err(fast, ref) < 1e-10
        assert rel_err(fast, tr) < 1e-10


@st.composite
def transpose_geometries(draw):
    nd = draw(st.integers(1, 3))
    small = st.integers(1, 3)
    groups = draw(st.integers(1, 2))
    c_in, c_out_g = groups * draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = draw(st.tuples(*[small] * nd))
    stride = draw(st.tuples(*[small] * nd))
    dilation = draw(st.tuples(*[small] * nd))
    size = draw(st.tuples(*[st.integers(1, 4 if nd < 3 else 3)] * nd))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = []
    for i in range(nd):
        full = (size[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + out_pad[i]
        padding.append(draw(st.integers(0, max(0, min(3, full // 2)))))
    return dict(x_shape=(draw(st.integers(0, 2)), c_in, *size),
                w_shape=(c_in, c_out_g, *kernel),
                kw=dict(stride=stride, padding=tuple(padding), output_padding=out_pad,
                        groups=groups, dilation=dilation),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=50, deadline=None)
@given(transpose_geometries())
def test_random_transposed_geometry(geo):
    """1-D to 3-D, float32 and float64: fast and reference against PyTorch float64 on the
    same (rounded) numbers."""
    rng = np.random.default_rng(geo["seed"])
    dtype = geo["dtype"]
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal(geo["w_shape"]).astype(dtype)
    b = rng.standard_normal(geo["w_shape"][1] * geo["kw"]["groups"]).astype(dtype)
    nd, kw = len(geo["x_shape"]) - 2, geo["kw"]
    y = T[nd](x, w, b, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    truth = torch_conv_transpose(x, w, b, dy, **kw)
    ours = (y, *TB[nd](dy, x, w, b, **kw))
    reference = (T[nd](x, w, b, algorithm="reference", **kw),
                 *TB[nd](dy, x, w, b, algorithm="reference", **kw))
    for a, r, t in zip(ours, reference, truth):
        assert a.dtype == r.dtype == dtype
        assert rel_err(a, t) < TOLERANCE[dtype] and rel_err(r, t) < TOLERANCE[dtype]


def test_output_size_defining_inequality():
    """H' is the largest count with (H'-1)*s + d*(k-1) + 1 <= H + lo + hi (Chainer's check)."""
    for n in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                for d in range(1, 3):
                    for lo, hi in ((0, 0), (1, 2), (3, 0)):
                        out = cg.geometry.output_size(n, k, s, d, lo, hi)
                        extent = d * (k - 1) + 1
                        if n + lo + hi < extent:
                            assert out < 1
                            continue
                        assert (out - 1) * s + extent <= n + lo + hi < out * s + extent
                        assert out == conv_out_size(n, k, s, d, lo, hi)


# the truth is computed in float64 from the inputs rounded to the dtype: what remains is
# the arithmetic's rounding (float16 is computed in float32 and rounded once at the end)
TOLERANCE = {np.float16: 2e-3, np.float32: 2e-5, np.float64: 1e-10}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_geometries(max_nd=2), st.sampled_from([np.float16, np.float32, np.float64]),
       st.sampled_from(["fast", "reference"]))
def test_random_geometry_and_dtype(geo, dtype, algorithm):
    rng = np.random.default_rng(geo["seed"])
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    w = rng.standard_normal(geo["w_shape"]).astype(dtype)
    b = rng.standard_normal(geo["w_shape"][0]).astype(dtype) if geo["bias"] else None
    nd, kw = len(geo["x_shape"]) - 2, geo["kw"]
    y = CONV[nd](x, w, b, algorithm=algorithm, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = BACKWARD[nd](dy, x, w, b, algorithm=algorithm, **kw)
    truth = torch_conv(x.astype(np.float64), w.astype(np.float64),
                       None if b is None else b.astype(np.float64), dy.astype(np.float64), **kw)
    for ours, true in zip((y, *grads), truth):
        if true is None:
            assert ours is None
            continue
        assert ours.dtype == dtype
        assert rel_err(ours, true) < TOLERANCE[dtype]
