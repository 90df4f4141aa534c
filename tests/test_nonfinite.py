"""NaN and Inf propagate exactly as in PyTorch, silently (no RuntimeWarning)."""
import warnings

import numpy as np
import pytest

import convgrad as cg
from convgrad import pooling
from helpers import torch

F = torch.nn.functional

# (what to poison, index, value, keywords)
CASES = [
    ("x", (0, 1, 2, 3), np.nan, dict(padding=1)),
    ("x", (0, 1, 0, 0), np.inf, dict(padding=1, stride=2)),
    ("x", (1, 0, 6, 6), -np.inf, dict(stride=2)),          # a leftover position: never read
    ("dy", (0, 1, 1, 2), np.nan, dict(padding=1, stride=2)),
    ("dy", (1, 2, 0, 2), -np.inf, dict(padding=1)),
    ("w", (1, 1, 1, 2), np.nan, dict(padding=1, stride=2)),
    ("w", (2, 0, 0, 0), np.inf, dict(padding=2, dilation=2)),
    ("w", (0, 1, 2, 1), np.inf, dict(stride=3)),
]


def _same_pattern(ours, theirs):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs))
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("target,index,value,kw", CASES)
def test_conv_nonfinite_matches_torch(target, index, value, kw, algorithm):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 2, 7, 7)), rng.standard_normal((3, 2, 3, 3)), np.zeros(3)
    y_shape = cg.conv2d(x, w, **kw).shape
    dy = rng.standard_normal(y_shape)
    {"x": x, "w": w, "dy": dy}[target][index] = value
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = F.conv2d(tx, tw, torch.tensor(b), **kw)
    ty.backward(torch.tensor(dy))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no warnings spam
        y = cg.conv2d(x, w, b, algorithm=algorithm, **kw)
        dx, dw, _ = cg.conv2d_backward(dy, x, w, b, algorithm=algorithm, **kw)
    _same_pattern(y, ty.detach().numpy())
    _same_pattern(dx, tx.grad.numpy())
    _same_pattern(dw, tw.grad.numpy())


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
def test_conv_transpose_nan_stays_local(algorithm):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 3, 3, 3))
    x[0, 1, 2, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = cg.conv_transpose2d(x, w, stride=2, padding=1, algorithm=algorithm)
    ty = F.conv_transpose2d(torch.tensor(x), torch.tensor(w), stride=2, padding=1)
    _same_pattern(y, ty.numpy())
    assert 0 < np.isnan(y).sum() < y.size


def test_pooling_nan_like_torch():
    x = np.random.default_rng(2).standard_normal((1, 2, 6, 6))
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 4, 4] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for ours, theirs in ((pooling.max_pool2d(x, 2), F.max_pool2d(torch.tensor(x), 2)),
                             (pooling.avg_pool2d(x, 3, 1, 1),
                              F.avg_pool2d(torch.tensor(x), 3, 1, 1))):
            _same_pattern(ours, theirs.numpy())


@pytest.mark.parametrize("values", [[np.nan, 1.0, np.nan, 2.0], [1.0, np.inf, np.nan, -np.inf],
                                    [-np.inf, -np.inf, 3.0, np.nan]])
def test_max_pool_backward_routes_like_torch(values):
    """The gradient goes where PyTorch sends it: the first max on ties, the last NaN."""
    x = np.array(values * 3, dtype=np.float64).reshape(1, 1, 3, 4)
    dy = np.random.default_rng(3).standard_normal((1, 1, 1, 1))
    tx = torch.tensor(x, requires_grad=True)
    F.max_pool2d(tx, (3, 4)).backward(torch.tensor(dy))
    np.testing.assert_array_equal(pooling.max_pool2d_backward(dy, x, (3, 4)), tx.grad.numpy())
