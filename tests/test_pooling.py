"""Max and average pooling against PyTorch float64 autograd (1e-10), 1-D to 3-D.

Every option PyTorch has (stride, padding, dilation, ceil_mode, count_include_pad,
divisor_override, unbatched input, return_indices), over a grid and over hypothesis-drawn
geometries with ties, NaN and Inf, and N = 0. All three max-pooling backwards are checked:
maxima found again from x, PyTorch's ``indices``, and the compact ``offsets``. Asymmetric
(lo, hi) padding, which PyTorch cannot express, is checked against loops written from the
definition.
"""
import itertools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convgrad import pooling
from helpers import numerical_grad, rel_err, torch

F = torch.nn.functional
TOL = 1e-10
T_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
T_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def torch_pool(kind, x, dy, nd, **kw):
    """y, dx (and indices for max) from PyTorch autograd in x's dtype."""
    tx = torch.tensor(x, requires_grad=True)
    if kind == "max":
        ty, ti = T_MAX[nd](tx, return_indices=True, **kw)
    else:
        ty, ti = T_AVG[nd](tx, **kw), None
    if ty.numel():
        ty.backward(torch.tensor(dy))
    dx = tx.grad.numpy() if tx.grad is not None else np.zeros_like(x)
    return ty.detach().numpy(), dx, None if ti is None else ti.numpy()


def same(ours, theirs, tol=TOL):
    """Equal NaN/Inf pattern, finite entries within tol of each other (relative)."""
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(ours[~finite & ~np.isnan(theirs)],
                                  theirs[~finite & ~np.isnan(theirs)])
    assert rel_err(ours[finite], theirs[finite]) <= tol


def stand_in(x):
    """What the nn layers pass as x with offsets: only its shape and dtype."""
    return np.broadcast_to(np.zeros((), x.dtype), x.shape)


def check_against_torch(kind, x, nd, seed=0, tol=TOL, **kw):
    """Every forward and backward path of ours against PyTorch; returns y."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # no RuntimeWarning spam
        if kind == "max":
            y = pooling.max_pool(x, nd=nd, **kw)
            y_i, indices = pooling.max_pool(x, return_indices=True, nd=nd, **kw)
            y_o, offsets = pooling.max_pool_offsets(x, nd=nd, **kw)
        else:
            y = pooling.avg_pool(x, nd=nd, **kw)
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
        t_y, t_dx, t_indices = torch_pool(kind, x, dy, nd, **kw)
        same(y, t_y, tol)
        assert y.dtype == x.dtype
        if kind == "max":
            dxs = [pooling.max_pool_backward(dy, x, nd=nd, **kw),
                   pooling.max_pool_backward(dy, x, indices=indices, nd=nd, **kw),
                   pooling.max_pool_backward(dy, stand_in(x), offsets=offsets, nd=nd, **kw)]
            np.testing.assert_array_equal(indices, t_indices)
            assert indices.dtype == np.int64
            np.testing.assert_array_equal(y_i, y)
            np.testing.assert_array_equal(y_o, y)
        else:
            dxs = [pooling.avg_pool_backward(dy, x, nd=nd, **kw)]
    for dx in dxs:
        assert dx.dtype == x.dtype
        same(dx, t_dx, tol)
    return y


# ----------------------------------------------------------------------------------------
# A grid

MAX_GRID = [
    # nd, x shape, keywords
    (2, (2, 3, 8, 8), dict(kernel_size=2)),
    (2, (2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 2, 7, 6), dict(kernel_size=3, stride=1, padding=1)),             # overlapping
    (2, (1, 2, 9, 8), dict(kernel_size=(3, 2), stride=(2, 1), dilation=(2, 3))),
    (2, (1, 2, 7, 7), dict(kernel_size=2, stride=2, ceil_mode=True)),
    (2, (1, 2, 8, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, (1, 2, 6, 7), dict(kernel_size=(2, 4), stride=3, padding=(1, 2), dilation=2,
                           ceil_mode=True)),
    (2, (3, 6, 6), dict(kernel_size=2, stride=1)),                           # unbatched
    (2, (0, 2, 5, 5), dict(kernel_size=2)),                                  # N = 0
    (1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1)),
    (1, (2, 3, 10), dict(kernel_size=4, stride=1, dilation=2, ceil_mode=True)),
    (1, (3, 10), dict(kernel_size=2, stride=3, ceil_mode=True)),
    (3, (1, 2, 5, 6, 7), dict(kernel_size=2)),
    (3, (1, 2, 6, 5, 7), dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1),
                              dilation=(1, 2, 1), ceil_mode=True)),
    (3, (2, 4, 5, 4), dict(kernel_size=3, stride=2, padding=1)),             # unbatched
    (3, (1, 2, 9, 9, 9), dict(kernel_size=7, stride=2, padding=3)),          # 343 taps: uint16
]

AVG_GRID = [
    (2, (2, 3, 8, 8), dict(kernel_size=2)),
    (2, (2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (2, (2, 2, 7, 6), dict(kernel_size=3, stride=1, padding=1)),             # overlapping
    (2, (1, 2, 8, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, (1, 2, 8, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                           count_include_pad=False)),
    (2, (1, 2, 7, 7), dict(kernel_size=(2, 3), stride=2, ceil_mode=True, divisor_override=5)),
    (2, (3, 6, 5), dict(kernel_size=2, stride=1, padding=1)),                # unbatched
    (2, (0, 2, 5, 5), dict(kernel_size=2)),                                  # N = 0
    (1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, (3, 10), dict(kernel_size=4, stride=3, padding=2, count_include_pad=False)),
    (3, (1, 2, 5, 6, 7), dict(kernel_size=2)),
    (3, (1, 2, 6, 5, 7), dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1),
                              ceil_mode=True, count_include_pad=False)),
    (3, (2, 5, 4, 5), dict(kernel_size=3, stride=2, padding=1, divisor_override=4)),
]


@pytest.mark.parametrize("nd, shape, kw", MAX_GRID)
def test_max_pool_grid_vs_torch(nd, shape, kw):
    x = np.random.default_rng(1).standard_normal(shape)
    check_against_torch("max", x, nd, **kw)
    ties = np.random.default_rng(2).integers(-1, 2, shape).astype(np.float64)
    check_against_torch("max", ties, nd, **kw)       # PyTorch's tie rule: the first max


@pytest.mark.parametrize("nd, shape, kw", AVG_GRID)
def test_avg_pool_grid_vs_torch(nd, shape, kw):
    x = np.random.default_rng(1).standard_normal(shape)
    check_against_torch("avg", x, nd, **kw)


@pytest.mark.parametrize("kind, grid", [("max", MAX_GRID), ("avg", AVG_GRID)])
def test_float32_kept_and_close_to_float64(kind, grid):
    for nd, shape, kw in grid:
        x = np.random.default_rng(3).standard_normal(shape)
        x32 = x.astype(np.float32)
        check_against_torch(kind, x32, nd, tol=1e-6, **kw)      # PyTorch in float32 too
        forward = pooling.max_pool if kind == "max" else pooling.avg_pool
        assert rel_err(forward(x32, nd=nd, **kw), forward(x, nd=nd, **kw)) < 1e-6


def test_max_pool_central_differences():
    """Independent of PyTorch: distinct values, overlapping dilated ceil-mode windows."""
    x = np.random.default_rng(4).permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) / 10.0
    kw = dict(kernel_size=(3, 2), stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True)
    dy = np.random.default_rng(5).standard_normal(pooling.max_pool2d(x, **kw).shape)
    numeric = numerical_grad(lambda: pooling.max_pool2d(x, **kw), x, dy, h=1e-4)
    assert rel_err(pooling.max_pool2d_backward(dy, x, **kw), numeric) < 1e-8


def test_avg_pool_central_differences():
    x = np.random.default_rng(6).standard_normal((2, 2, 7, 6))
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    dy = np.random.default_rng(7).standard_normal(pooling.avg_pool2d(x, **kw).shape)
    numeric = numerical_grad(lambda: pooling.avg_pool2d(x, **kw), x, dy)
    assert rel_err(pooling.avg_pool2d_backward(dy, x, **kw), numeric) < 1e-8


# ----------------------------------------------------------------------------------------
# Non-finite values: PyTorch's NaN rule and its -inf corner


def test_max_pool_nan_goes_to_the_last_nan_and_inf_windows_to_the_first_input():
    x = np.random.default_rng(8).standard_normal((1, 2, 6, 6))
    x[0, 0, 0, :2] = np.nan                         # two NaN in one window: the last wins
    x[0, 0, 3, 3] = np.inf
    x[0, 1, :3, :3] = -np.inf                       # windows of -inf next to the padding
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
               dict(kernel_size=3, stride=1, padding=1, dilation=2, ceil_mode=True)):
        check_against_torch("max", x, 2, **kw)


def test_avg_pool_inf_and_nan_like_torch():
    x = np.random.default_rng(9).standard_normal((1, 1, 5, 5))
    x[0, 0, 1, 1], x[0, 0, 1, 2], x[0, 0, 4, 4] = np.inf, -np.inf, np.nan
    check_against_torch("avg", x, 2, kernel_size=2, stride=1, padding=1)


def test_nonfinite_dy_reaches_only_the_maxima():
    x = np.random.default_rng(10).standard_normal((1, 2, 4, 4))
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=1)):
        y, indices = pooling.max_pool2d(x, return_indices=True, **kw)
        dy = np.random.default_rng(11).standard_normal(y.shape)
        dy.flat[0], dy.flat[-1] = np.nan, np.inf
        tx = torch.tensor(x, requires_grad=True)
        F.max_pool2d(tx, **kw).backward(torch.tensor(dy))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for dx in (pooling.max_pool2d_backward(dy, x, **kw),
                       pooling.max_pool2d_backward(dy, x, indices=indices, **kw)):
                same(dx, tx.grad.numpy())


# ----------------------------------------------------------------------------------------
# Hypothesis-drawn geometries


@st.composite
def geometries(draw, kind):
    nd = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd))
    kw = dict(kernel_size=tuple(kernel),
              stride=draw(st.one_of(st.none(), st.lists(st.integers(1, 4), min_size=nd,
                                                        max_size=nd).map(tuple))),
              padding=tuple(draw(st.integers(0, k // 2)) for k in kernel),
              ceil_mode=draw(st.booleans()))
    if kind == "max":
        kw["dilation"] = tuple(draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd)))
    else:
        kw["count_include_pad"] = draw(st.booleans())
        if nd > 1 and draw(st.booleans()):
            kw["divisor_override"] = draw(st.integers(1, 9))
    size = tuple(draw(st.lists(st.integers(1, 8), min_size=nd, max_size=nd)))
    batch = draw(st.sampled_from([(), (0,), (1,), (2,)]))           # () is unbatched
    shape = batch + (draw(st.integers(1, 3)),) + size
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    values = draw(st.sampled_from(["distinct", "ties", "nonfinite"]))
    x = (rng.integers(-2, 3, shape).astype(np.float64) if values != "distinct"
         else rng.standard_normal(shape))
    if values == "nonfinite" and x.size:
        for _ in range(draw(st.integers(1, 3))):
            x.flat[rng.integers(x.size)] = rng.choice([np.nan, np.inf, -np.inf])
    return nd, x, kw, seed


def _torch_refuses(kind, x, nd, kw):
    try:
        with torch.no_grad():
            (T_MAX if kind == "max" else T_AVG)[nd](torch.tensor(x), **kw)
    except RuntimeError as error:
        return str(error)
    return None


@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_drawn_geometries_vs_torch(kind, data):
    nd, x, kw, seed = data.draw(geometries(kind))
    refusal = _torch_refuses(kind, x, nd, kw)
    forward = pooling.max_pool if kind == "max" else pooling.avg_pool
    if refusal is not None:
        if kind == "avg" and nd == 3 and "smaller than kernel size" in refusal:
            try:                        # PyTorch's avg_pool3d alone checks the unpadded
                forward(x, nd=nd, **kw)     # input against the window; convgrad pads first
            except ValueError as error:
                assert "larger than the padded input" in str(error)
            return
        with pytest.raises(ValueError):
            forward(x, nd=nd, **kw)
        return
    try:
        forward(x, nd=nd, **kw)
    except ValueError as error:
        # A dilated window over padding only: PyTorch returns -inf there (and an index
        # outside the input); convgrad refuses the geometry, naming the window.
        assert "reads only padding" in str(error)
        probe = torch.zeros((1,) + x.shape[-nd - 1:], dtype=torch.float64)
        assert np.isneginf(T_MAX[nd](probe, **kw).numpy()).any()
        return
    check_against_torch(kind, x, nd, seed=seed, **kw)


# ----------------------------------------------------------------------------------------
# Asymmetric padding (PyTorch has none): loops written from the definition


def loop_pool(kind, x, kernel, stride, padding, dilation=None, ceil_mode=False,
              count_include_pad=True):
    """y and the dx of sum(y * dy) for 2-D pooling by visiting every window (dy random)."""
    (kh, kw), (sh, sw), ((top, bottom), (left, right)) = kernel, stride, padding
    dh, dw = dilation or (1, 1)
    n, c, h, w = x.shape
    sizes = []
    for size, k, s, d, lo, hi in ((h, kh, sh, dh, top, bottom), (w, kw, sw, dw, left, right)):
        span = size + lo + hi - d * (k - 1) - 1
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + lo:
            out -= 1
        sizes.append(out)
    y = np.zeros((n, c, *sizes))
    rng = np.random.default_rng(0)
    dy = rng.standard_normal(y.shape)
    dx = np.zeros_like(x)
    for b, ch, i, j in itertools.product(range(n), range(c), range(sizes[0]), range(sizes[1])):
        taps = [(i * sh - top + a * dh, j * sw - left + e * dw)
                for a in range(kh) for e in range(kw)]
        inside = [(p, q) for p, q in taps if 0 <= p < h and 0 <= q < w]
        if kind == "max":
            p, q = max(inside, key=lambda t: (x[b, ch][t], -inside.index(t)))   # first max
            y[b, ch, i, j] = x[b, ch, p, q]
            dx[b, ch, p, q] += dy[b, ch, i, j]
        else:
            counted = [(p, q) for p, q in taps if -top <= p < h + bottom and
                       -left <= q < w + right] if count_include_pad else inside
            y[b, ch, i, j] = sum(x[b, ch, p, q] for p, q in inside) / len(counted)
            for p, q in inside:
                dx[b, ch, p, q] += dy[b, ch, i, j] / len(counted)
    return y, dy, dx


@pytest.mark.parametrize("kw", [
    dict(kernel=(3, 4), stride=(2, 1), padding=((0, 1), (2, 0))),
    dict(kernel=(3, 3), stride=(2, 2), padding=((1, 0), (0, 1)), ceil_mode=True),
    dict(kernel=(2, 3), stride=(1, 2), padding=((1, 0), (1, 1)), dilation=(2, 1)),
])
@pytest.mark.parametrize("kind", ["max", "avg", "avg_exclude"])
def test_asymmetric_padding_vs_loops(kind, kw):
    if "dilation" in kw and kind != "max":
        return
    x = np.random.default_rng(12).standard_normal((2, 2, 6, 7))
    options = dict(ceil_mode=kw.get("ceil_mode", False))
    if kind == "max":
        options["dilation"] = kw.get("dilation", 1)
    if kind == "avg_exclude":
        options["count_include_pad"] = False
    loops = dict(kw, count_include_pad=kind != "avg_exclude")
    y_loop, dy, dx_loop = loop_pool(kind[:3], x, **loops)
    args = (kw["kernel"], kw["stride"], kw["padding"])
    if kind == "max":
        y = pooling.max_pool2d(x, *args, **options)
        dx = pooling.max_pool2d_backward(dy, x, *args, **options)
    else:
        y = pooling.avg_pool2d(x, *args, **options)
        dx = pooling.avg_pool2d_backward(dy, x, *args, **options)
    assert rel_err(y, y_loop) < TOL and rel_err(dx, dx_loop) < TOL


# ----------------------------------------------------------------------------------------
# Errors name the value


@pytest.mark.parametrize("call, message", [
    (lambda: pooling.max_pool2d(np.zeros((1, 1, 4, 4)), 3, padding=2),
     r"padding \(2, 2\) along H must be at most half the window \(3 // 2 = 1\)"),
    (lambda: pooling.max_pool2d(np.zeros((1, 1, 4, 4)), 2, ceil_mode=1),
     "ceil_mode must be True or False, got 1"),
    (lambda: pooling.avg_pool2d(np.zeros((1, 1, 4, 4)), 2, count_include_pad="no"),
     "count_include_pad must be True or False, got 'no'"),
    (lambda: pooling.avg_pool2d(np.zeros((1, 1, 4, 4)), 2, divisor_override=0),
     "divisor_override must be None or a positive int, got 0"),
    (lambda: pooling.max_pool1d(np.zeros((1, 1, 2)), 2, 1, 1, dilation=3),
     r"window 0 along L reads only padding \(positions -1, 2 of an input of size 2"),
    (lambda: pooling.max_pool2d(np.zeros((4, 4)), 2),
     r"x must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got a 2-D array"),
    (lambda: pooling.max_pool1d(np.zeros((1, 1, 3)), 5, 1, ceil_mode=True),
     r"the window along L \(size 5, dilation 1: effective size 5\) is larger than"),
    (lambda: pooling.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 4, 4)), 2,
                                         indices=np.full((1, 1, 2, 2), 16)),
     r"indices must lie in \[0, 16\)"),
    (lambda: pooling.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 4, 4)), 2,
                                         indices=np.zeros((1, 2, 2), int)),
     r"indices must be an integer array of the output's shape \(1, 1, 2, 2\)"),
    (lambda: pooling.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 4, 4)), 2,
                                         offsets=np.full((1, 1, 2, 2), 4)),
     r"offsets must lie in \[0, 4\)"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_unbatched_dy_must_be_unbatched():
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 2, 2\)"):
        pooling.max_pool2d_backward(np.zeros((1, 2, 2, 2)), np.zeros((2, 4, 4)), 2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kernel=st.integers(1, 3), stride=st.integers(1, 3), pad=st.booleans(),
       size=st.integers(3, 7), dtype=st.sampled_from([np.float32, np.float64]),
       dy_dtype=st.sampled_from([None, np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_max_pool_backward_nonfinite_dy_vs_torch(kernel, stride, pad, size, dtype, dy_dtype,
                                                 seed):
    """dy holding NaN and +-Inf (the backward's bit masks: a product would leak
    0 * Inf = NaN into the taps not chosen), disjoint and overlapping windows, a dy of
    another float dtype, from the offsets the layers keep and from PyTorch's indices."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (2, 3, size, size + 1)).astype(dtype)       # ties
    kw = dict(kernel_size=kernel, stride=stride, padding=kernel // 2 if pad else 0)
    y, offsets = pooling.max_pool_offsets(x, **kw)
    dy = rng.standard_normal(y.shape)
    flat = dy.reshape(-1)                  # each special at least once, at drawn places
    special = np.array([np.nan, np.inf, -np.inf, -0.0])
    spots = rng.permutation(flat.size)
    flat[spots[:special.size]] = special[:flat.size]
    rest = spots[special.size:]
    rest = rest[rng.random(rest.size) < 0.3]
    flat[rest] = rng.choice(special, size=rest.size)
    dy = dy.astype(dy_dtype or dtype)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    F.max_pool2d(tx, **kw).backward(torch.tensor(dy.astype(np.float64)))
    truth = tx.grad.numpy()
    _, indices = pooling.max_pool(x, return_indices=True, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for record in (dict(offsets=offsets), dict(indices=indices), {}):
            dx = pooling.max_pool_backward(dy, stand_in(x) if record else x, **kw, **record)
            assert dx.dtype == np.result_type(x, dy)
            same(dx.astype(np.float64), truth, tol=TOL if dx.dtype == np.float64 else 1e-6)
