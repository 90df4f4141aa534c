"""Inputs that are not plain ndarrays, and arithmetic that overflows.

Policy (docs/errors.md, "Policies"): masked arrays are refused with a TypeError, since
their mask would be ignored; array-likes that NumPy converts (CPU PyTorch tensors that do
not require grad, memmaps, array.array) are accepted as NumPy reads them; what NumPy
cannot convert (a tensor that requires grad, bfloat16) is a TypeError naming the type,
never the foreign library's RuntimeError. Overflow gives inf as in PyTorch, and NumPy's
warnings never leak out of convgrad.
"""
import array
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convgrad as cg
from convgrad import nn
from convgrad.pooling import max_pool2d

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 7, 7))
W = rng.standard_normal((4, 3, 3, 3))
B = rng.standard_normal(4)
DY = rng.standard_normal((2, 4, 5, 5))


def masked(a):
    return np.ma.masked_array(a, mask=a > 1.0)


MASKED_CALLS = [
    ("conv2d x", lambda: cg.conv2d(masked(X), W), "conv2d: x is a masked array"),
    ("conv2d w", lambda: cg.conv2d(X, masked(W)), "conv2d: w is a masked array"),
    ("conv2d b", lambda: cg.conv2d(X, W, masked(B)), "conv2d: b is a masked array"),
    ("conv2d_backward dy", lambda: cg.conv2d_backward(masked(DY), X, W), "dy is a masked array"),
    ("conv_transpose2d x", lambda: cg.conv_transpose2d(masked(DY), W), "x is a masked array"),
    ("max_pool2d x", lambda: max_pool2d(masked(X), 2), "x is a masked array"),
    ("nn.Conv2d", lambda: nn.Conv2d(3, 4, 3)(masked(X)), "x is a masked array"),
    ("nn.Linear", lambda: nn.Linear(7, 2)(masked(X)), "Linear: x is a masked array"),
    ("nn.BatchNorm2d", lambda: nn.BatchNorm2d(3)(masked(X)), "BatchNorm2d: x is a masked array"),
    ("nn.Dropout", lambda: nn.Dropout()(masked(X)), "Dropout: x is a masked array"),
    ("nn.Flatten", lambda: nn.Flatten()(masked(X)), "Flatten: x is a masked array"),
    ("CrossEntropyLoss", lambda: nn.CrossEntropyLoss()(masked(X[:, :, 0, 0]), [0, 1]),
     "logits is a masked array"),
    ("softmax", lambda: nn.softmax(masked(X)), "z is a masked array"),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in MASKED_CALLS],
                         ids=[c[0] for c in MASKED_CALLS])
def test_masked_arrays_are_refused(call, message):
    """The mask used to be silently ignored (masked entries computed with)."""
    with pytest.raises(TypeError, match=message + r".*would ignore its mask.*\.filled"):
        call()


def t(a, **kw):
    return torch.tensor(a, dtype=torch.float64, **kw)


def test_cpu_tensors_are_converted_and_match_torch():
    """conv2d and its backward take CPU tensors as NumPy converts them; the results are
    NumPy arrays equal to PyTorch's float64 autograd."""
    y = cg.conv2d(t(X), t(W), t(B), stride=2, padding=1)
    assert type(y) is np.ndarray
    xt, wt, bt = t(X, requires_grad=True), t(W, requires_grad=True), t(B, requires_grad=True)
    yt = F.conv2d(xt, wt, bt, stride=2, padding=1)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = cg.conv2d_backward(t(dy), t(X), t(W), t(B), stride=2, padding=1)
    yt.backward(torch.from_numpy(dy))
    for ours, theirs in ((dx, xt), (dw, wt), (db, bt)):
        assert type(ours) is np.ndarray
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    layer = nn.Conv2d(3, 4, 3, dtype=np.float64, rng=0)
    np.testing.assert_array_equal(layer(t(X)), layer(X))


@pytest.mark.parametrize("make, detail", [
    (lambda: t(X, requires_grad=True), "RuntimeError: Can't call numpy\\(\\) on Tensor that requires grad"),
    (lambda: t(X).to(torch.bfloat16), "BFloat16"),
])
@pytest.mark.parametrize("call", [
    lambda x: cg.conv2d(x, W), lambda x: cg.conv2d(X, W, x[0, 0, 0, :4]),
    lambda x: nn.Linear(7, 2)(x), lambda x: max_pool2d(x, 2),
    lambda x: nn.CrossEntropyLoss()(x[:, :, 0, 0], [0, 1]),
], ids=["conv2d x", "conv2d b", "nn.Linear", "max_pool2d", "CrossEntropyLoss"])
def test_tensors_numpy_cannot_convert_are_type_errors_naming_the_type(make, detail, call):
    """A tensor that requires grad used to leak torch's RuntimeError."""
    with pytest.raises(TypeError, match=r"is a torch\.Tensor, which NumPy cannot convert.*"
                       + detail + r".*\.detach\(\)\.cpu\(\)\.numpy\(\)"):
        call(make())


def test_other_array_likes_and_subclasses_are_read_as_numpy_reads_them(tmp_path):
    memmap = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.float64, X.shape)
    memmap[...] = X
    y = cg.conv2d(memmap, W)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, cg.conv2d(X, W))
    row = array.array("d", X[0, 0, 0])                       # the buffer protocol
    np.testing.assert_array_equal(cg.conv1d([[row]], W[:1, :1, 0]),
                                  cg.conv1d(X[:1, :1, 0], W[:1, :1, 0]))


def test_ragged_lists_are_still_value_errors():
    with pytest.raises(ValueError, match="ragged"):
        cg.conv2d([[[[1.0, 2.0], [1.0]]]], W)


# ----------------------------------------------------------------------------------------
# Overflow: inf as PyTorch gives it, and no NumPy warning




@pytest.mark.parametrize("algorithm", ["fast", "reference"])
def test_float16_overflow_gives_inf_like_torch_without_warnings(algorithm):
    """float16 is computed in float32 and cast back: the cast overflows to inf (it used to
    print 'overflow encountered in cast'). Oracle: PyTorch's float32 result cast to half."""
    x = np.full((1, 2, 4, 4), 300.0, np.float16)
    x[0, 0, 0, 0] = -300.0
    w = np.full((3, 2, 3, 3), 30.0, np.float16)              # sums of 18 * 9000 > 65504
    dy = np.full((1, 3, 2, 2), 3000.0, np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = cg.conv2d(x, w, algorithm=algorithm)
        dx, dw, _ = cg.conv2d_backward(dy, x, w, algorithm=algorithm)
        yt = cg.conv_transpose2d(dy, w, algorithm=algorithm)     # w as (C_in=3, C_out=2, 3, 3)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float32, requires_grad=True)
    ref = F.conv2d(xt, wt)
    ref.backward(torch.tensor(dy, dtype=torch.float32))
    assert np.isinf(y).any() and np.isinf(dw).any()
    np.testing.assert_array_equal(y, ref.detach().half().numpy())
    np.testing.assert_array_equal(dx, xt.grad.half().numpy())
    np.testing.assert_array_equal(dw, wt.grad.half().numpy())
    ref_t = F.conv_transpose2d(torch.tensor(dy, dtype=torch.float32),
                               torch.tensor(w, dtype=torch.float32))
    np.testing.assert_array_equal(yt, ref_t.half().numpy())


def test_float32_overflow_in_the_layers_gives_inf_like_torch_without_warnings():
    """Linear, BatchNorm, Dropout and the loss overflow as torch does, silently."""
    x = np.array([[1e38] * 5, [-1e38] * 5, [1.0] * 5, [1e38, -1e38, 0, 0, 0]], np.float32)
    linear = nn.Linear(5, 3, rng=0)
    linear.weight.data[...] = 1.0                            # overflow whatever the order
    torch_linear = torch.nn.Linear(5, 3)
    with torch.no_grad():
        torch_linear.weight.copy_(torch.from_numpy(linear.weight.data))
        torch_linear.bias.copy_(torch.from_numpy(linear.bias.data))
    norm, dropout, loss = nn.BatchNorm1d(5), nn.Dropout(0.5, rng=0), nn.CrossEntropyLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = linear(x)
        linear.backward(np.full(y.shape, 3e38, np.float32))
        z = norm(x)
        norm.backward(np.ones_like(z))
        dropout.backward(dropout(x))
        value = loss(y, np.array([0, 1, 2, 0]))
        loss.backward()
    expected = torch_linear(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_array_equal(np.isinf(y), np.isinf(expected))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    torch_loss = F.cross_entropy(torch.from_numpy(y), torch.tensor([0, 1, 2, 0])).item()
    assert (np.isnan(value) and np.isnan(torch_loss)) or value == torch_loss
    torch_norm = torch.nn.BatchNorm1d(5)(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_array_equal(np.isnan(z), np.isnan(torch_norm))
