"""Every conv geometry class against PyTorch's float64 autograd, both engines.

float64 must agree to 1e-10 relative; float32 (computed in float32) to 1e-4 relative
against the float64 truth. Upstream gradients are random, never all ones.
"""
import zlib

import numpy as np
import pytest

import convgrad as cg
from helpers import rel_err, torch_conv

# (x shape, w shape, keywords): each row is one class of geometry from the issue.
CASES_2D = [
    ((2, 3, 7, 7), (4, 3, 3, 3), dict(stride=1, padding=1)),                  # same, stride 1
    ((2, 3, 8, 8), (4, 3, 3, 3), dict(stride=2)),                             # leftover row/col
    ((2, 2, 10, 9), (3, 2, 3, 3), dict(stride=3, padding=2)),                 # stride 3, leftover
    ((2, 3, 9, 11), (2, 3, 3, 2), dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1))),
    ((1, 2, 6, 7), (3, 2, 2, 3), dict(padding=((1, 2), (0, 3)))),              # asymmetric pairs
    ((2, 2, 5, 5), (3, 2, 3, 3), dict(padding=4)),                            # pad > kernel
    ((2, 2, 5, 6), (3, 2, 3, 3), dict(padding=(4, 1), stride=2)),
    ((1, 2, 3, 3), (2, 2, 5, 5), dict(padding=1)),                            # kernel > input
    ((2, 3, 6, 6), (5, 3, 1, 1), dict()),                                     # 1x1
    ((2, 3, 7, 6), (5, 3, 1, 1), dict(stride=2, padding=1)),                  # 1x1 strided
    ((2, 2, 11, 10), (3, 2, 3, 3), dict(dilation=3, padding=1)),              # dilation 3
    ((1, 2, 12, 10), (2, 2, 3, 2), dict(dilation=(2, 3), stride=(3, 2), padding=(1, 2))),
    ((2, 4, 6, 6), (6, 2, 3, 3), dict(groups=2, padding=1)),                  # groups 2
    ((2, 6, 7, 5), (3, 2, 2, 3), dict(groups=3, stride=2)),                   # groups 3
    ((2, 4, 6, 6), (4, 1, 3, 3), dict(groups=4, padding=1)),                  # depthwise
    ((2, 3, 7, 7), (6, 1, 3, 3), dict(groups=3, stride=2, padding=1)),        # multiplier 2
    ((2, 4, 8, 8), (8, 1, 3, 3), dict(groups=4, dilation=2, padding="same")),
    ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding="same")),                       # 'same' s=1
    ((2, 3, 7, 8), (4, 3, 4, 2), dict(padding="same")),                       # even kernel
    ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding="same", stride=2)),             # 'same' s=2
    ((2, 3, 10, 9), (4, 3, 3, 2), dict(padding="same", stride=3, dilation=2)),
    ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding="valid", stride=2)),
    ((0, 3, 7, 7), (4, 3, 3, 3), dict(stride=2, padding=1)),                  # N = 0
    ((1, 1, 4, 4), (1, 1, 2, 2), dict()),                                     # tiny
    ((3, 2, 1, 1), (4, 2, 1, 1), dict()),                                     # 1x1 image
    ((2, 2, 1, 9), (3, 2, 1, 3), dict(stride=(1, 2), padding=(0, 1))),        # a 1-pixel axis
]

CASES_1D = [
    ((2, 3, 9), (4, 3, 3), dict(stride=2)),
    ((2, 2, 10), (3, 2, 4), dict(stride=3, padding=((2, 1),), dilation=2)),
    ((2, 4, 8), (4, 1, 3), dict(groups=4, padding="same", stride=2)),
    ((2, 3, 5), (2, 3, 7), dict(padding=2)),
    ((0, 3, 5), (2, 3, 3), dict()),
]

CASES_3D = [
    ((2, 2, 5, 6, 4), (3, 2, 3, 2, 2), dict(stride=(2, 1, 2), padding=(1, 0, 1))),
    ((1, 4, 5, 5, 5), (4, 2, 2, 3, 3), dict(groups=2, dilation=(1, 2, 1), padding="same")),
    ((1, 2, 4, 5, 6), (2, 2, 1, 1, 1), dict(stride=(3, 2, 1))),
    ((2, 3, 4, 4, 4), (3, 1, 3, 3, 3), dict(groups=3, padding=((0, 2), (1, 1), (2, 0)))),
]

CONV = {1: cg.conv1d, 2: cg.conv2d, 3: cg.conv3d}
BACKWARD = {1: cg.conv1d_backward, 2: cg.conv2d_backward, 3: cg.conv3d_backward}
ALL_CASES = CASES_1D + CASES_2D + CASES_3D


def _case_id(case):
    xs, ws, kw = case
    return f"x{xs}-w{ws}-" + ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("case", ALL_CASES, ids=[_case_id(c) for c in ALL_CASES])
def test_float64_matches_torch(case, algorithm):
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(zlib.crc32(_case_id(case).encode()))
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    nd = len(x_shape) - 2
    y_ref, *_ = torch_conv(x, w, b, None, **kw)
    dy = rng.standard_normal(y_ref.shape)
    y_ref, dx_ref, dw_ref, db_ref = torch_conv(x, w, b, dy, **kw)

    y = CONV[nd](x, w, b, algorithm=algorithm, **kw)
    dx, dw, db = BACKWARD[nd](dy, x, w, b, algorithm=algorithm, **kw)

    assert y.shape == y_ref.shape and y.dtype == np.float64
    assert rel_err(y, y_ref) < 1e-10
    assert rel_err(dx, dx_ref) < 1e-10
    assert rel_err(dw, dw_ref) < 1e-10
    assert rel_err(db, db_ref) < 1e-10


@pytest.mark.parametrize("case", CASES_2D[:22:3] + CASES_1D[:2] + CASES_3D[:2],
                         ids=[_case_id(c) for c in CASES_2D[:22:3] + CASES_1D[:2] + CASES_3D[:2]])
def test_float32_matches_torch_float64(case):
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    nd = len(x_shape) - 2
    y_ref, *_ = torch_conv(x, w, b, None, **kw)
    dy = rng.standard_normal(y_ref.shape)
    y_ref, dx_ref, dw_ref, db_ref = torch_conv(x, w, b, dy, **kw)
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    y = CONV[nd](f32[0], f32[1], f32[2], **kw)
    dx, dw, db = BACKWARD[nd](f32[3], f32[0], f32[1], f32[2], **kw)
    for ours, ref in ((y, y_ref), (dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        assert ours.dtype == np.float32
        assert rel_err(ours, ref) < 1e-4


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
def test_no_bias_gives_db_none(algorithm):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    y_ref, *_ = torch_conv(x, w, None, None, stride=2)
    dy = rng.standard_normal(y_ref.shape)
    _, dx_ref, dw_ref, _ = torch_conv(x, w, None, dy, stride=2)
    y = cg.conv2d(x, w, stride=2, algorithm=algorithm)
    dx, dw, db = cg.conv2d_backward(dy, x, w, stride=2, algorithm=algorithm)
    assert db is None
    assert rel_err(y, y_ref) < 1e-10
    assert rel_err(dx, dx_ref) < 1e-10 and rel_err(dw, dw_ref) < 1e-10


def test_tf_same_padding_hand_values():
    """'same' follows TensorFlow's SAME_UPPER: the odd pixel of padding goes after."""
    from convgrad.geometry import same_padding
    # n=7, k=3, s=2: out 4, total 2 -> (1, 1); n=8: out 4, total 1 -> (0, 1)
    assert same_padding((7, 8), (3, 3), (2, 2), (1, 1)) == ((1, 1), (0, 1))
    # stride 1, even kernel 4: total 3 -> (1, 2), as PyTorch's padding='same'
    assert same_padding((5,), (4,), (1,), (1,)) == ((1, 2),)
    # kernel smaller than stride: no padding needed
    assert same_padding((9,), (1,), (3,), (1,)) == ((0, 0),)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_same_at_stride_one_equals_torch_same():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((4, 3, 4, 3))
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding="same",
                                     dilation=(1, 2)).numpy()
    assert rel_err(cg.conv2d(x, w, padding="same", dilation=(1, 2)), ref) < 1e-10
