"""The bias gradient db = sum(dy) on each of its paths, against PyTorch float64 autograd.

functional's _bias_grad sums dy (N, F, *out) by a (ones @ rows) product when the F*P
partial sums are small, by a matrix-vector product over (N*F, P) rows on larger float64
maps, and by NumPy's reduction otherwise (float32 on large maps, non-contiguous dy, other
dtypes). Upstream gradients are random; float64 must agree to 1e-10 relative.
"""
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.functional import _BIAS_GEMV_POSITIONS, _bias_grad
from helpers import rel_err, torch, torch_conv


@st.composite
def geometries(draw):
    """(x shape, w shape, keywords), maps large enough for every path of _bias_grad
    (the product's needs F*P over 8192 values and at least _BIAS_GEMV_POSITIONS)."""
    n = draw(st.integers(1, 3))
    c, f = draw(st.integers(1, 3)), draw(st.integers(1, 10))
    h, w = draw(st.integers(10, 48)), draw(st.integers(10, 48))
    k = draw(st.sampled_from([1, 3]))
    stride = draw(st.sampled_from([1, 1, 2]))
    return (n, c, h, w), (f, c, k, k), dict(stride=stride, padding=k // 2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=geometries(), seed=st.integers(0, 2**16), layout=st.sampled_from(
    ["contiguous", "fortran", "reversed"]))
def test_db_float64_matches_torch(case, seed, layout):
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y_ref, *_ = torch_conv(x, w, b, None, **kw)
    dy = rng.standard_normal(y_ref.shape)
    y_ref, dx_ref, dw_ref, db_ref = torch_conv(x, w, b, dy, **kw)
    if layout == "fortran":
        dy = np.asfortranarray(dy)
    elif layout == "reversed":                         # a non-contiguous view, same values
        dy = np.ascontiguousarray(dy[..., ::-1])[..., ::-1]
    dx, dw, db = cg.conv2d_backward(dy, x, w, b, **kw)
    assert db.shape == (w_shape[0],) and db.dtype == np.float64
    assert rel_err(db, db_ref) < 1e-10
    assert rel_err(dw, dw_ref) < 1e-10 and rel_err(dx, dx_ref) < 1e-10
    y = cg.conv2d(x, w, b, **kw)
    assert rel_err(y, y_ref) < 1e-10


@pytest.mark.parametrize("shape", [(3, 5, 14, 14), (2, 4, 40, 37), (1, 2, 112, 112), (3, 6, 40, 40),
                                   (2, 43, 14, 14), (2, 8, 33, 35),
                                   (0, 4, 20, 20), (4, 1, 1, 300), (2, 3, 7, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bias_grad_against_torch_sum(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    dy = rng.standard_normal(shape)
    ref = torch.from_numpy(dy).sum(dim=(0, 2, 3)).numpy()       # float64 truth
    b = np.zeros(shape[1], dtype=dtype)
    db = _bias_grad(dy.astype(dtype), b)
    assert db.shape == (shape[1],) and db.dtype == dtype
    scale = max(np.abs(dy).sum(axis=(0, 2, 3)).max(), 1.0)
    tol = 1e-13 if dtype == np.float64 else 1e-6
    assert np.abs(db.astype(np.float64) - ref).max() <= tol * scale


def test_bias_grad_unbatched_and_empty():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 20, 20)), rng.standard_normal((3, 2, 3, 3)), \
        rng.standard_normal(3)
    dy = rng.standard_normal((3, 20, 20))
    _, _, _, db_ref = torch_conv(x[None], w, b, dy[None], padding=1)
    _, _, db = cg.conv2d_backward(dy, x, w, b, padding=1)
    assert rel_err(db, db_ref) < 1e-10
    _, _, db = cg.conv2d_backward(np.zeros((0, 3, 20, 20)), np.zeros((0, 2, 20, 20)), w, b,
                                  padding=1)
    assert db.shape == (3,) and not db.any()


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_bias_grad_non_finite(bad):
    rng = np.random.default_rng(4)
    dy = rng.standard_normal((2, 3, 60, 60))
    assert 60 * 60 >= _BIAS_GEMV_POSITIONS and 3 * 60 * 60 > 8192                     # the product's path
    dy[1, 2, 5, 7] = bad
    ref = torch.from_numpy(dy).sum(dim=(0, 2, 3)).numpy()
    db = _bias_grad(dy, np.zeros(3))
    np.testing.assert_allclose(db, ref, rtol=1e-13, atol=0, equal_nan=True)
    dy[0, 2, 0, 0] = -bad                                      # inf - inf: nan
    db = _bias_grad(dy, np.zeros(3))
    assert np.isnan(db[2]) and np.isfinite(db[:2]).all()


def test_bias_grad_scratch_is_small():
    """The product's scratch (ones over P, N*F sums) is tiny next to dy."""
    dy = np.random.default_rng(5).standard_normal((8, 16, 64, 64))     # 4 MiB
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        _bias_grad(dy, np.zeros(16))
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak <= 64 * 64 * 8 + 8 * 16 * 8 + 4096
