"""Transposed convolution against PyTorch float64 autograd, and the adjoint identity."""
import zlib

import numpy as np
import pytest

import convgrad as cg
from helpers import rel_err, torch_conv_transpose

# (x shape, w shape (C_in, C_out/groups, *k), keywords)
CASES = [
    ((2, 3, 5, 5), (3, 4, 3, 3), dict(stride=1)),
    ((2, 3, 4, 5), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 2, 4, 3), (2, 3, 3, 2), dict(stride=(3, 2), padding=(2, 0), output_padding=(2, 1))),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(stride=1, dilation=2, output_padding=1)),  # op < d
    ((2, 4, 3, 4), (4, 3, 2, 3), dict(stride=2, groups=2, dilation=(2, 1), padding=1)),
    ((2, 4, 5, 5), (4, 1, 3, 3), dict(groups=4, stride=2, padding=1)),           # depthwise
    ((2, 3, 3, 3), (3, 2, 1, 1), dict(stride=3)),                                # 1x1, gaps
    ((2, 2, 4, 4), (2, 2, 3, 3), dict(padding=2)),                               # crop
    ((0, 3, 4, 4), (3, 2, 3, 3), dict(stride=2)),                                # N = 0
    ((2, 2, 6), (2, 3, 4), dict(stride=3, padding=1, output_padding=2)),         # 1-D
    ((1, 2, 3), (2, 3, 1), dict(dilation=2, output_padding=1)),  # 1x1, op >= stride (found by hypothesis)
    ((1, 4, 5), (4, 1, 3), dict(groups=2, dilation=3)),
    ((1, 2, 3, 4, 3), (2, 2, 2, 3, 2), dict(stride=(2, 1, 3), padding=(0, 1, 1),
                                            output_padding=(1, 0, 2))),         # 3-D
]

T = {1: cg.conv_transpose1d, 2: cg.conv_transpose2d, 3: cg.conv_transpose3d}
TB = {1: cg.conv_transpose1d_backward, 2: cg.conv_transpose2d_backward,
      3: cg.conv_transpose3d_backward}


def _id(case):
    return f"x{case[0]}-w{case[1]}-" + ",".join(f"{k}={v}" for k, v in case[2].items())


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_float64_matches_torch(case, algorithm):
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(zlib.crc32(_id(case).encode()))
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    groups = kw.get("groups", 1)
    b = rng.standard_normal(w_shape[1] * groups)
    nd = len(x_shape) - 2
    y_ref, *_ = torch_conv_transpose(x, w, b, None, **kw)
    dy = rng.standard_normal(y_ref.shape)
    y_ref, dx_ref, dw_ref, db_ref = torch_conv_transpose(x, w, b, dy, **kw)
    y = T[nd](x, w, b, algorithm=algorithm, **kw)
    dx, dw, db = TB[nd](dy, x, w, b, algorithm=algorithm, **kw)
    assert y.shape == y_ref.shape
    for ours, ref in ((y, y_ref), (dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        assert rel_err(ours, ref) < 1e-10


def test_float32_kept():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    y = cg.conv_transpose2d(x, w, b, stride=2, output_padding=1)
    y_ref, *_ = torch_conv_transpose(x, w, b, None, stride=2, output_padding=1)
    assert y.dtype == np.float32 and rel_err(y, y_ref) < 1e-5
    dx, dw, db = cg.conv_transpose2d_backward(np.ones_like(y) * 0.5 + y, x, w, b, stride=2,
                                              output_padding=1)
    assert (dx.dtype, dw.dtype, db.dtype) == (np.float32,) * 3


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("in_size,kernel,stride,dilation", [
    ((4, 5), (3, 3), (2, 2), (1, 1)),
    ((3, 4), (2, 3), (3, 2), (1, 2)),
    ((5, 2), (1, 1), (3, 2), (1, 1)),   # kernel smaller than stride: implicit output padding
    ((3, 3), (4, 4), (1, 1), (1, 1)),
])
def test_same_is_the_adjoint_of_same_conv(in_size, kernel, stride, dilation, algorithm):
    """conv_transpose(padding='same') is the adjoint of conv(padding='same') on in*stride.

    <conv(z), x> = <conv_transpose(x), z> for every z, x: checked on random arrays, with
    the forward conv (itself checked against PyTorch) as the oracle.
    """
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, *in_size))
    w = rng.standard_normal((3, 2, *kernel))
    y = cg.conv_transpose2d(x, w, padding="same", stride=stride, dilation=dilation,
                            algorithm=algorithm)
    assert y.shape[2:] == tuple(i * s for i, s in zip(in_size, stride))
    z = rng.standard_normal(y.shape)
    forward = cg.conv2d(z, w, padding="same", stride=stride, dilation=dilation)
    assert forward.shape == x.shape
    assert abs(np.sum(forward * x) - np.sum(y * z)) < 1e-10 * np.abs(forward * x).sum()


def test_valid_padding_is_zero_padding():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_array_equal(cg.conv_transpose2d(x, w, padding="valid", stride=2),
                                  cg.conv_transpose2d(x, w, padding=0, stride=2))
