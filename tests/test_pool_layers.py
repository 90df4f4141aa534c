"""nn.MaxPool*/AvgPool* and nn.ReLU against torch.nn (float64, 1e-10); cs231n's pooling/ReLU.

The layers keep what the backward needs (the tap of each maximum; ReLU's mask) and let go
of it after backward; every option of torch.nn's constructors and unbatched inputs.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convgrad import cs231n, nn, pooling
from helpers import rel_err, torch

TOL = 1e-10


def t64(a):
    return torch.tensor(np.asarray(a, np.float64))


def run_both(ours, theirs, x, seed=0):
    """y and dx of our layer and torch's on x with one random dy; returns both pairs."""
    tx = t64(x).requires_grad_(True)
    ty = theirs(tx)
    y = ours.forward(x)
    if isinstance(ty, tuple):                     # return_indices=True
        (ty, t_indices), (y, indices) = ty, y
        np.testing.assert_array_equal(indices, t_indices.numpy())
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    ty.backward(t64(dy))
    dx = ours.backward(dy)
    return (y, ty.detach().numpy()), (dx, tx.grad.numpy())


LAYERS = [
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True), (2, 3, 12)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 8, 7)),
    ("MaxPool2d", dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)), (3, 7, 6)),   # unbatched
    ("MaxPool2d", dict(kernel_size=2, return_indices=True), (2, 2, 6, 6)),
    ("MaxPool3d", dict(kernel_size=2, stride=(1, 2, 2), padding=1, ceil_mode=True),
     (1, 2, 4, 5, 6)),
    ("AvgPool1d", dict(kernel_size=4, stride=3, padding=2, ceil_mode=True,
                       count_include_pad=False), (2, 3, 11)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                       count_include_pad=False), (2, 3, 8, 7)),
    ("AvgPool2d", dict(kernel_size=(2, 3), stride=1, divisor_override=4), (3, 6, 7)),
    ("AvgPool3d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
     (1, 2, 5, 6, 5)),
]


@pytest.mark.parametrize("name, kwargs, x_shape", LAYERS)
def test_pool_layers_vs_torch_nn(name, kwargs, x_shape):
    x = np.random.default_rng(1).standard_normal(x_shape)
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    (y, ty), (dx, tdx) = run_both(ours, theirs, x)
    assert y.shape == ty.shape and dx.shape == x.shape
    assert rel_err(y, ty) < TOL and rel_err(dx, tdx) < TOL


@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d"])
def test_pool_layers_float32_and_ties(name):
    x = np.random.default_rng(2).integers(0, 2, (2, 3, 6, 6)).astype(np.float32)   # ties
    layer = getattr(nn, name)(3, stride=1, padding=1)
    y = layer.forward(x)
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    assert y.dtype == dx.dtype == np.float32
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn, name)(3, stride=1, padding=1)(tx)
    ty.backward(torch.tensor(dy))
    assert rel_err(y, ty.detach().numpy()) < 1e-6 and rel_err(dx, tx.grad.numpy()) < 1e-6


@pytest.mark.parametrize("layer", [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.ReLU(),
                                   nn.MaxPool2d(2, return_indices=True)])
def test_layers_let_go_after_backward(layer):
    out = layer.forward(np.random.default_rng(4).standard_normal((1, 2, 4, 4)))
    y = out[0] if isinstance(out, tuple) else out
    layer.backward(np.ones_like(y))
    kept = [v for v in vars(layer).values() if isinstance(v, np.ndarray)]
    assert kept == []                               # nothing of the forward is held
    with pytest.raises(RuntimeError, match="call forward"):
        layer.backward(np.ones_like(y))


def test_max_pool_layer_keeps_one_byte_per_output_not_x():
    layer = nn.MaxPool2d(2)
    x = np.random.default_rng(5).standard_normal((4, 3, 8, 8))
    layer.forward(x)
    saved = [v for v in vars(layer).values() if isinstance(v, np.ndarray)]
    held = [a for a in saved if any(a.strides)]        # x's stand-in is zero-strided
    assert [(a.dtype, a.nbytes) for a in held] == [(np.uint8, 4 * 3 * 4 * 4)]
    assert not any(np.shares_memory(a, x) for a in saved)


def test_pool_layer_repr_and_constructor_errors():
    assert repr(nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True)) == (
        "MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True, dilation=2)")
    assert repr(nn.AvgPool3d(2, count_include_pad=False, divisor_override=3)) == (
        "AvgPool3d(kernel_size=2, count_include_pad=False, divisor_override=3)")
    with pytest.raises(ValueError, match=r"MaxPool2d: padding \(2, 2\) along H"):
        nn.MaxPool2d(3, padding=2)
    with pytest.raises(TypeError, match="AvgPool2d: ceil_mode must be True or False"):
        nn.AvgPool2d(2, ceil_mode="yes")
    with pytest.raises(ValueError, match="AvgPool2d: divisor_override must be None or a "
                                         "positive int, got -1"):
        nn.AvgPool2d(2, divisor_override=-1)
    with pytest.raises(TypeError, match="MaxPool1d: return_indices must be True or False"):
        nn.MaxPool1d(2, return_indices=None)
    with pytest.raises(TypeError):
        nn.AvgPool1d(2, divisor_override=2)               # as torch.nn.AvgPool1d


# ----------------------------------------------------------------------------------------
# ReLU


def test_relu_vs_torch_with_nan_inf_and_zeros():
    x = np.random.default_rng(6).standard_normal((3, 4, 5))
    x.flat[:5] = [np.nan, 0.0, -0.0, np.inf, -np.inf]
    dy = np.random.default_rng(7).standard_normal(x.shape)
    dy.flat[5:9] = [np.nan, np.inf, -np.inf, np.nan]       # reach dx only where y != 0
    x.flat[5:9] = [-1.0, -2.0, 3.0, 4.0]
    layer, tx = nn.ReLU(), t64(x).requires_grad_(True)
    ty = torch.relu(tx)
    ty.backward(t64(dy))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, dx = layer.forward(x), layer.backward(dy)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(dx, tx.grad.numpy())    # NaN input passes its gradient


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0])


def with_specials(rng, shape, specials=SPECIAL):
    """Standard normals of ``shape`` in which every special value sits at least once (at
    places drawn without replacement; the array needs size >= len(specials)) and about a
    third of the rest is drawn from the specials too."""
    a = rng.standard_normal(shape)
    flat = a.reshape(-1)
    assert flat.size >= len(specials)
    spots = rng.permutation(flat.size)
    flat[spots[:len(specials)]] = specials
    extra = spots[len(specials):]
    extra = extra[rng.random(extra.size) < 0.3]
    flat[extra] = rng.choice(specials, size=extra.size)
    return a


def relu_grad_torch(x, dy):
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    torch.relu(tx).backward(torch.from_numpy(np.ascontiguousarray(dy)).to(tx.dtype))
    return tx.grad.numpy()


def relu_forward_backward(x, dy):
    layer = nn.ReLU()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer.forward(x)
        dx = layer.backward(dy)
    assert dx.dtype == dy.dtype and dx.shape == x.shape
    return y, dx


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("dy_dtype", [None, np.float32, np.float64])
@pytest.mark.parametrize("transposed_dy", [False, True])
def test_relu_every_special_pair_bitwise_equal_to_torch(dtype, dy_dtype, transposed_dy):
    """Every (x, dy) pair of NaN, +-Inf, +-0, +-1 meets once: the backward's bit mask
    (dy AND -1/0) gives torch.relu's gradient bit for bit, signed zeros too: an open
    entry keeps dy's bits (dy = -0 stays -0, NaN stays NaN), a closed one is +0 even for
    dy = NaN or Inf, where a product would leak NaN."""
    xs, dys = np.meshgrid(SPECIAL, SPECIAL, indexing="ij")    # x row i meets every dy
    x = xs.astype(dtype)
    dy = dys.astype(dy_dtype or dtype)
    if transposed_dy:
        dy = np.ascontiguousarray(dy.T).T                     # same values, F-ordered view
        assert not dy.flags.c_contiguous
    y, dx = relu_forward_backward(x, dy)
    truth = relu_grad_torch(x, dy)
    np.testing.assert_array_equal(y, torch.relu(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(np.signbit(dx.astype(truth.dtype)), np.signbit(truth))
    np.testing.assert_array_equal(dx.astype(truth.dtype), truth)
    closed = np.isin(SPECIAL, [0.0, -np.inf, -1.0])           # x <= 0 (+-0 both)
    assert not np.signbit(dx[closed]).any() and not dx[closed].any()
    open_ = ~closed
    np.testing.assert_array_equal(dx[open_].view(np.uint8),   # dy's bits, untouched
                                  np.ascontiguousarray(dy[open_]).view(np.uint8))


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4)
       .filter(lambda s: np.prod(s) >= len(SPECIAL)),
       dtype=st.sampled_from([np.float16, np.float32, np.float64]),
       dy_dtype=st.sampled_from([None, np.float32, np.float64]),
       transposed_dy=st.booleans(), seed=st.integers(0, 2**16))
def test_relu_bitwise_equal_to_torch(shape, dtype, dy_dtype, transposed_dy, seed):
    """Drawn shapes, dtypes, a dy of another float dtype and a non-contiguous dy, with
    every special value (NaN, +-Inf, +-0, +-1) in both x and dy at drawn places: the
    backward bit for bit against torch.relu's gradient."""
    rng = np.random.default_rng(seed)
    x = with_specials(rng, shape).astype(dtype)
    dy = with_specials(rng, shape[::-1] if transposed_dy else shape)
    dy = dy.astype(dy_dtype or dtype)
    if transposed_dy:
        dy = dy.T                                            # a view, not C-contiguous
    y, dx = relu_forward_backward(x, dy)
    truth = relu_grad_torch(x, dy)
    np.testing.assert_array_equal(y, torch.relu(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(dx.astype(truth.dtype), truth)
    closed = ~(y != 0)
    assert not np.signbit(dx[closed]).any()                  # +0, as torch's threshold


def test_relu_integer_dy():
    """Integer dy is taken as float64 (Module._grad), then masked like any other."""
    layer = nn.ReLU()
    layer.forward(np.array([-1.0, 0.0, 2.0, np.nan]))
    dx = layer.backward(np.array([5, 6, 7, 8]))
    assert dx.dtype == np.float64
    np.testing.assert_array_equal(dx, [0.0, 0.0, 7.0, 8.0])


def test_relu_float32_kept():
    x = np.random.default_rng(8).standard_normal((2, 3)).astype(np.float32)
    layer = nn.ReLU()
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_array_equal(dx, (x > 0).astype(np.float32))


# ----------------------------------------------------------------------------------------
# cs231n


def test_cs231n_fast_cache_keeps_the_maxima_and_fits_the_naive_backward():
    x = np.random.default_rng(9).integers(0, 3, (2, 3, 7, 6)).astype(np.float64)  # ties
    pool_param = {"pool_height": 3, "pool_width": 2, "stride": 2}
    out, cache = cs231n.max_pool_forward_fast(x, pool_param)
    out_naive, naive_cache = cs231n.max_pool_forward_naive(x, pool_param)
    dout = np.random.default_rng(10).standard_normal(out.shape)
    tx = t64(x).requires_grad_(True)
    torch.nn.functional.max_pool2d(tx, (3, 2), 2).backward(t64(dout))
    np.testing.assert_array_equal(out, out_naive)
    for dx in (cs231n.max_pool_backward_fast(dout, cache),
               cs231n.max_pool_backward_naive(dout, cache),
               cs231n.max_pool_backward_fast(dout, naive_cache)):
        np.testing.assert_array_equal(dx, tx.grad.numpy())


def test_cs231n_pooling_stays_batched():
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\), got a 3-D"):
        cs231n.max_pool_forward_fast(np.zeros((3, 4, 4)),
                                     {"pool_height": 2, "pool_width": 2, "stride": 2})


def test_cs231n_relu_backward_exact_with_nonfinite_dout():
    x = np.array([[-1.0, 2.0, 0.0, 3.0]])
    dout = np.array([[np.nan, np.inf, -np.inf, 5.0]])
    _, cache = cs231n.relu_forward(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(cs231n.relu_backward(dout, cache),
                                      [[0.0, np.inf, 0.0, 5.0]])


def test_max_pool_offsets_number_the_taps_row_major():
    x = np.zeros((1, 1, 2, 3))
    x[0, 0, 1, 2] = 1.0                                      # tap (1, 2) of a 2x3 window
    y, offsets = pooling.max_pool_offsets(x, (2, 3), nd=2)
    assert offsets.dtype == np.uint8 and offsets.item() == 1 * 3 + 2
    _, flat = pooling.max_pool2d(x, (2, 3), return_indices=True)
    assert flat.item() == 1 * 3 + 2
