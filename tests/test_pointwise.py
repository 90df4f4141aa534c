"""1x1 convolutions at stride 1 without padding (x is its own column matrix), against
PyTorch: float64 at 1e-10, float32 (whose dw is computed transposed, sample by sample
into one buffer) within the float32 tolerance, over hypothesis-drawn shapes and groups."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.engine import fast
from convgrad.geometry import conv_geometry
from helpers import rel_err, torch_conv

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-10}


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 4), groups=st.integers(1, 3), c=st.integers(1, 6),
       f=st.integers(1, 6), h=st.integers(1, 9), w=st.integers(1, 9),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_pointwise_matches_torch(n, groups, c, f, h, w, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, groups * c, h, w)).astype(dtype)
    wt = rng.standard_normal((groups * f, c, 1, 1)).astype(dtype)
    b = rng.standard_normal(groups * f).astype(dtype)
    assert fast._is_pointwise(conv_geometry(x, wt, nd=2, groups=groups)[-1])
    y = cg.conv2d(x, wt, b, groups=groups, algorithm="fast")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, _ = cg.conv2d_backward(dy, x, wt, b, groups=groups, algorithm="fast")
    truth = torch_conv(x, wt, b, dy, groups=groups)
    for ours, t in zip((y, dx, dw), truth):
        assert ours.dtype == dtype and ours.shape == t.shape
        assert rel_err(ours, t) < TOLERANCE[dtype]
