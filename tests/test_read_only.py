"""No input array is ever written to: every public function, with read-only arguments."""
import numpy as np
import pytest

import convgrad as cg
from convgrad import cs231n, gradcheck, pooling

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 4, 7, 6))
W = rng.standard_normal((6, 2, 3, 3))
B = rng.standard_normal(6)
DY = rng.standard_normal((2, 6, 4, 3))          # conv2d(X, W, stride=2, padding=1, groups=2)
XT = rng.standard_normal((2, 4, 3, 3))
WT = rng.standard_normal((4, 3, 3, 3))
DYT = rng.standard_normal((2, 6, 7, 7))         # conv_transpose2d(XT, WT, stride=2, groups=2, padding=0)
POOL_DY = rng.standard_normal((2, 4, 3, 3))
KW = dict(stride=2, padding=1, groups=2)
TKW = dict(stride=2, groups=2)
CP = {"stride": 2, "pad": 1, "groups": 2}
PP = {"pool_height": 2, "pool_width": 2, "stride": 2}

CALLS = {
    "conv2d": lambda a: cg.conv2d(a["x"], a["w"], a["b"], **KW),
    "conv2d_reference": lambda a: cg.conv2d(a["x"], a["w"], a["b"], algorithm="reference", **KW),
    "conv2d_backward": lambda a: cg.conv2d_backward(a["dy"], a["x"], a["w"], a["b"], **KW),
    "conv2d_backward_reference": lambda a: cg.conv2d_backward(
        a["dy"], a["x"], a["w"], a["b"], algorithm="reference", **KW),
    "conv1d": lambda a: cg.conv1d(a["x"][:, :, 0], a["w"][:, :, 0], a["b"], **KW),
    "conv3d": lambda a: cg.conv3d(a["x"][:, :, None], a["w"][:, :, None], a["b"], **KW),
    "conv_transpose2d": lambda a: cg.conv_transpose2d(a["xt"], a["wt"], a["b"], **TKW),
    "conv_transpose2d_backward": lambda a: cg.conv_transpose2d_backward(
        a["dyt"], a["xt"], a["wt"], a["b"], **TKW),
    "max_pool2d": lambda a: pooling.max_pool2d(a["x"], 2),
    "max_pool2d_backward": lambda a: pooling.max_pool2d_backward(a["pool_dy"], a["x"], 2),
    "avg_pool2d_backward": lambda a: pooling.avg_pool2d_backward(a["pool_dy"], a["x"], 2),
    "cs231n_conv_naive": lambda a: cs231n.conv_backward_naive(
        a["dy"], cs231n.conv_forward_naive(a["x"], a["w"], a["b"], CP)[1]),
    "cs231n_conv_fast": lambda a: cs231n.conv_backward_fast(
        a["dy"], cs231n.conv_forward_fast(a["x"], a["w"], a["b"], CP)[1]),
    "cs231n_pool": lambda a: (cs231n.max_pool_backward_naive(
        a["pool_dy"], cs231n.max_pool_forward_naive(a["x"], PP)[1]), cs231n.max_pool_backward_fast(
        a["pool_dy"], cs231n.max_pool_forward_fast(a["x"], PP)[1])),
    "cs231n_relu_affine": lambda a: (
        cs231n.relu_backward(a["x"], cs231n.relu_forward(a["x"])[1]),
        cs231n.affine_backward(a["b"][None, :2], cs231n.affine_forward(
            a["x"][:1], np.ones((168, 2)), a["b"][:2])[1])),
    "cs231n_numerical": lambda a: cs231n.eval_numerical_gradient_array(
        lambda x: cs231n.conv_forward_fast(x, a["w"], a["b"], CP)[0], a["x"], a["dy"]),
    "cs231n_numerical_scalar": lambda a: cs231n.eval_numerical_gradient(
        lambda b: float(np.sum(b ** 2)), a["b"], verbose=False),
    "gradcheck": lambda a: gradcheck.gradcheck(
        lambda x, w, b: cg.conv2d(x, w, b, **KW),
        lambda dy, x, w, b: cg.conv2d_backward(dy, x, w, b, **KW),
        {"x": a["x"], "w": a["w"], "b": a["b"]}, mode="directional"),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_read_only_inputs_untouched(name):
    arrays = {"x": X, "w": W, "b": B, "dy": DY, "xt": XT, "wt": WT, "dyt": DYT,
              "pool_dy": POOL_DY}
    frozen = {}
    for key, value in arrays.items():
        copy = value.copy()
        copy.flags.writeable = False
        frozen[key] = copy
    CALLS[name](frozen)
    for key, value in arrays.items():
        np.testing.assert_array_equal(frozen[key], value)    # bit for bit


def _layers():
    from convgrad import nn
    return {
        "Conv2d": (nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, dtype=np.float64, rng=0), X),
        "ConvTranspose2d": (nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, dtype=np.float64,
                                               rng=0), XT),
        "BatchNorm2d": (nn.BatchNorm2d(4, dtype=np.float64), X),
        "MaxPool2d": (nn.MaxPool2d(2), X),
        "AvgPool2d": (nn.AvgPool2d(2), X),
        "ReLU": (nn.ReLU(), X),
        "Dropout": (nn.Dropout(0.5, rng=0), X),
        "Flatten+Linear": (nn.Sequential(nn.Flatten(), nn.Linear(168, 3, dtype=np.float64,
                                                                 rng=0)), X),
    }


@pytest.mark.parametrize("name", ["Conv2d", "ConvTranspose2d", "BatchNorm2d", "MaxPool2d",
                                  "AvgPool2d", "ReLU", "Dropout", "Flatten+Linear"])
def test_nn_layers_leave_read_only_inputs_untouched(name):
    layer, x = _layers()[name]
    x = x.copy()
    x.flags.writeable = False
    y = layer.forward(x)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dy.flags.writeable = False
    layer.backward(dy)          # NumPy refuses any in-place write into x or dy: none happened
    np.testing.assert_array_equal(x, {"ConvTranspose2d": XT}.get(name, X))


def test_loss_leaves_read_only_logits_untouched():
    from convgrad import nn
    logits = np.random.default_rng(2).standard_normal((5, 3))
    copy = logits.copy()
    logits.flags.writeable = False
    loss_fn = nn.CrossEntropyLoss()
    loss_fn.forward(logits, np.array([0, 1, 2, 0, 1]))
    loss_fn.backward()
    np.testing.assert_array_equal(logits, copy)
