"""Central differences in float64, with random upstream gradients: no PyTorch involved."""
import numpy as np
import pytest

import convgrad as cg
from helpers import numerical_grad

CASES = [
    (2, (2, 3, 6, 5), (4, 3, 3, 2), dict(stride=2, padding=((1, 0), (2, 1)))),
    (2, (1, 4, 7, 6), (4, 2, 2, 3), dict(stride=(3, 1), dilation=(1, 2), groups=2)),
    (2, (2, 3, 5, 5), (3, 1, 3, 3), dict(groups=3, padding="same", stride=2)),
    (1, (2, 2, 9), (3, 2, 3), dict(stride=3, dilation=2, padding=3)),
    (3, (1, 2, 4, 3, 5), (2, 2, 2, 2, 3), dict(stride=(1, 2, 2), padding=(1, 0, 1))),
]
CONV = {1: cg.conv1d, 2: cg.conv2d, 3: cg.conv3d}
BACKWARD = {1: cg.conv1d_backward, 2: cg.conv2d_backward, 3: cg.conv3d_backward}


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("nd,x_shape,w_shape,kw", CASES)
def test_conv_backward_matches_central_differences(nd, x_shape, w_shape, kw, algorithm):
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    forward = lambda: CONV[nd](x, w, b, algorithm=algorithm, **kw)  # noqa: E731
    dy = rng.standard_normal(forward().shape)
    dx, dw, db = BACKWARD[nd](dy, x, w, b, algorithm=algorithm, **kw)
    for analytic, array in ((dx, x), (dw, w), (db, b)):
        numeric = numerical_grad(forward, array, dy)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


TRANSPOSED = [
    (2, (2, 3, 3, 4), (3, 2, 3, 2), dict(stride=2, padding=1, output_padding=1)),
    (2, (1, 4, 3, 3), (4, 1, 2, 3), dict(groups=2, dilation=(2, 1), stride=(1, 3))),
    (1, (2, 2, 4), (2, 3, 3), dict(stride=3, output_padding=2, padding=(1,))),
]
T = {1: cg.conv_transpose1d, 2: cg.conv_transpose2d}
TB = {1: cg.conv_transpose1d_backward, 2: cg.conv_transpose2d_backward}


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("nd,x_shape,w_shape,kw", TRANSPOSED)
def test_conv_transpose_backward_matches_central_differences(nd, x_shape, w_shape, kw,
                                                             algorithm):
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * kw.get("groups", 1))
    forward = lambda: T[nd](x, w, b, algorithm=algorithm, **kw)  # noqa: E731
    dy = rng.standard_normal(forward().shape)
    dx, dw, db = TB[nd](dy, x, w, b, algorithm=algorithm, **kw)
    for analytic, array in ((dx, x), (dw, w), (db, b)):
        numeric = numerical_grad(forward, array, dy)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
