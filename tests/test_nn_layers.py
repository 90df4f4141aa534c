"""Every convgrad.nn layer against two independent oracles, in float64:

* PyTorch autograd: the torch.nn layer with our weights copied in, the same input and a
  random upstream gradient (never all ones); y, dx and every parameter gradient must
  agree to ~1e-10 relative;
* central differences (convgrad.gradcheck, elementwise) of L = sum(y * dy) with respect to
  the input and to every parameter.
"""
import numpy as np
import pytest

from convgrad import nn
from convgrad.gradcheck import gradcheck
from helpers import rel_err

torch = pytest.importorskip("torch")
TOL = 1e-10


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def copy_into_torch(ours, theirs):
    """Our parameters and buffers into the torch module, by PyTorch's own names."""
    state = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


def compare_with_torch(ours, theirs, x, seed=0, tol=TOL):
    """Forward, backward with a random dy; compare y, dx and the parameter gradients."""
    rng = np.random.default_rng(seed)
    copy_into_torch(ours, theirs)
    theirs.zero_grad(set_to_none=True)
    tx = t64(x).requires_grad_(True)
    ty = theirs(tx)
    y = ours.forward(x)
    assert y.shape == tuple(ty.shape) and y.dtype == np.float64
    assert rel_err(y, ty.detach().numpy()) < tol
    dy = rng.standard_normal(y.shape)
    ty.backward(t64(dy))
    ours.zero_grad()
    dx = ours.backward(dy)
    assert dx.shape == x.shape
    assert rel_err(dx, tx.grad.numpy()) < tol
    torch_params = dict(theirs.named_parameters())
    names = [name for name, _ in ours.named_parameters()]
    assert names == list(torch_params)
    for name, p in ours.named_parameters():
        assert rel_err(p.grad, torch_params[name].grad.numpy()) < tol, name
    return y, dy


def layer_gradcheck(layer, x, seed=0, before_forward=None):
    """convgrad.gradcheck of dx and every parameter gradient of ``layer``."""
    params = dict(layer.named_parameters())
    names = list(params)

    def forward(x, *arrays):
        for name, a in zip(names, arrays):
            params[name].data = a
        if before_forward is not None:
            before_forward()
        return layer.forward(x)

    def backward(dy, x, *arrays):
        forward(x, *arrays)
        layer.zero_grad()
        dx = layer.backward(dy)
        return [dx] + [params[name].grad.copy() for name in names]

    inputs = {"x": x, **{name: p.data.copy() for name, p in params.items()}}
    report = gradcheck(forward, backward, inputs, seed=seed, h=1e-5)
    assert report.passed, str(report)
    return report


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ----------------------------------------------------------------------------------------
# Convolutions

CONV_CASES = [
    # nd, x shape, constructor arguments
    (2, (2, 3, 7, 7), dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1)),
    (2, (2, 4, 6, 5), dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(1, 2),
                           padding=(2, 0), dilation=(2, 1), groups=2)),
    (2, (1, 2, 5, 5), dict(in_channels=2, out_channels=3, kernel_size=3, padding="same")),
    (2, (1, 2, 5, 6), dict(in_channels=2, out_channels=3, kernel_size=2, padding="valid",
                           bias=False)),
    (2, (2, 3, 4, 4), dict(in_channels=3, out_channels=3, kernel_size=1, groups=3)),
    (1, (2, 3, 9), dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=2,
                        dilation=2)),
    (3, (1, 2, 4, 5, 4), dict(in_channels=2, out_channels=2, kernel_size=(2, 3, 2),
                              stride=(1, 2, 2), padding=1)),
]
OURS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
THEIRS = {1: "Conv1d", 2: "Conv2d", 3: "Conv3d"}


@pytest.mark.parametrize("nd, x_shape, kwargs", CONV_CASES)
def test_conv_vs_torch(nd, x_shape, kwargs):
    ours = OURS[nd](**kwargs, dtype=np.float64, rng=1)
    theirs = getattr(torch.nn, THEIRS[nd])(**kwargs, dtype=torch.float64)
    compare_with_torch(ours, theirs, randn(*x_shape, seed=2))


@pytest.mark.parametrize("nd, x_shape, kwargs", CONV_CASES[:3] + CONV_CASES[5:])
def test_conv_gradcheck(nd, x_shape, kwargs):
    layer_gradcheck(OURS[nd](**kwargs, dtype=np.float64, rng=3), randn(*x_shape, seed=4))


def test_conv_asymmetric_and_strided_same_padding_vs_functional_oracle():
    """Padding PyTorch's layer cannot take: compared with torch on explicitly padded x."""
    from helpers import torch_conv
    for padding, stride in ((((1, 2), (0, 1)), 1), ("same", 2)):
        layer = nn.Conv2d(2, 3, 3, stride=stride, padding=padding, dtype=np.float64, rng=0)
        x, dy_seed = randn(2, 2, 6, 7, seed=5), 6
        y = layer(x)
        dy = randn(*y.shape, seed=dy_seed)
        layer.zero_grad()
        dx = layer.backward(dy)
        ty, tdx, tdw, tdb = torch_conv(x, layer.weight.data, layer.bias.data, dy,
                                       stride=stride, padding=padding)
        for a, b in ((y, ty), (dx, tdx), (layer.weight.grad, tdw), (layer.bias.grad, tdb)):
            assert rel_err(a, b) < TOL


TRANSPOSE_CASES = [
    (2, (2, 4, 4, 3), dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
                           output_padding=1, groups=2)),
    (2, (1, 3, 3, 4), dict(in_channels=3, out_channels=2, kernel_size=(2, 3), stride=(2, 1),
                           dilation=(1, 2), bias=False)),
    (2, (1, 2, 3, 3), dict(in_channels=2, out_channels=2, kernel_size=3, stride=3, padding=2,
                           output_padding=2, dilation=1)),
    (1, (2, 2, 5), dict(in_channels=2, out_channels=3, kernel_size=4, stride=3, padding=1)),
    (3, (1, 2, 2, 3, 2), dict(in_channels=2, out_channels=2, kernel_size=2, stride=2)),
]
T_OURS = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


@pytest.mark.parametrize("nd, x_shape, kwargs", TRANSPOSE_CASES)
def test_conv_transpose_vs_torch_and_gradcheck(nd, x_shape, kwargs):
    ours = T_OURS[nd](**kwargs, dtype=np.float64, rng=7)
    theirs = getattr(torch.nn, f"ConvTranspose{nd}d")(**kwargs, dtype=torch.float64)
    x = randn(*x_shape, seed=8)
    compare_with_torch(ours, theirs, x)
    layer_gradcheck(ours, x)


def test_conv_transpose_inverts_the_shape_of_a_strided_conv():
    x = randn(1, 2, 7, 8)
    down = nn.Conv2d(2, 4, 3, stride=2, padding=1, rng=0, dtype=np.float64)
    up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=(0, 1), rng=0,
                            dtype=np.float64)
    assert up(down(x)).shape == x.shape


# ----------------------------------------------------------------------------------------
# Activation, pooling, flatten, linear


def test_relu_vs_torch_and_gradcheck():
    x = randn(3, 4, 5)
    x[0, 0, :2] = 0.0                       # PyTorch's gradient at exactly 0 is 0
    compare_with_torch(nn.ReLU(), torch.nn.ReLU(), x)
    layer_gradcheck(nn.ReLU(), randn(2, 3, 4, seed=1))


POOL_CASES = [
    ("MaxPool2d", 2, dict(kernel_size=2), (2, 3, 6, 7)),
    ("MaxPool2d", 2, dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 6)),
    ("MaxPool2d", 2, dict(kernel_size=(2, 3), stride=(1, 2)), (1, 2, 5, 7)),
    ("AvgPool2d", 2, dict(kernel_size=2), (2, 3, 6, 6)),
    ("AvgPool2d", 2, dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 6)),
    ("MaxPool1d", 1, dict(kernel_size=3, stride=2, padding=1), (2, 3, 9)),
    ("AvgPool1d", 1, dict(kernel_size=2), (2, 3, 8)),
    ("MaxPool3d", 3, dict(kernel_size=2), (1, 2, 4, 4, 5)),
    ("AvgPool3d", 3, dict(kernel_size=(2, 1, 2), stride=1), (1, 2, 3, 3, 4)),
]


@pytest.mark.parametrize("name, nd, kwargs, x_shape", POOL_CASES)
def test_pooling_vs_torch_and_gradcheck(name, nd, kwargs, x_shape):
    x = randn(*x_shape, seed=9)             # distinct values: max pooling is differentiable
    compare_with_torch(getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), x)
    layer_gradcheck(getattr(nn, name)(**kwargs), x)


def test_flatten_vs_torch():
    x = randn(2, 3, 4, 5)
    for start, end in ((1, -1), (0, 1), (2, 3), (-3, -2)):
        compare_with_torch(nn.Flatten(start, end), torch.nn.Flatten(start, end), x)
    layer_gradcheck(nn.Flatten(), randn(2, 3, 2, 2))


@pytest.mark.parametrize("x_shape, bias", [((5, 7), True), ((2, 3, 7), True), ((4, 7), False)])
def test_linear_vs_torch_and_gradcheck(x_shape, bias):
    ours = nn.Linear(7, 3, bias=bias, dtype=np.float64, rng=0)
    compare_with_torch(ours, torch.nn.Linear(7, 3, bias=bias, dtype=torch.float64),
                       randn(*x_shape, seed=1))
    layer_gradcheck(ours, randn(*x_shape, seed=2))


# ----------------------------------------------------------------------------------------
# Dropout


def test_dropout_train_mask_vs_explicit_mask_in_torch():
    p, x = 0.3, randn(4, 5, 6)
    layer = nn.Dropout(p, rng=11)
    y = layer.forward(x)
    keep = np.random.default_rng(11).random(x.shape) >= p      # the mask the layer drew
    tx = t64(x).requires_grad_(True)
    ty = tx * t64(keep) / (1 - p)
    assert rel_err(y, ty.detach().numpy()) < TOL
    dy = randn(*x.shape, seed=3)
    ty.backward(t64(dy))
    assert rel_err(layer.backward(dy), tx.grad.numpy()) < TOL


def test_dropout_gradcheck_with_a_fixed_mask():
    layer = nn.Dropout(0.5)

    def reseed():
        layer.rng = np.random.default_rng(5)
    layer_gradcheck(layer, randn(3, 4, 5), before_forward=reseed)


def test_dropout_eval_identity_edges_and_rate():
    x = randn(200, 100)
    layer = nn.Dropout(0.25, rng=0)
    y = layer(x)
    dropped = np.mean(y == 0)
    assert abs(dropped - 0.25) < 0.01                           # 20,000 draws
    np.testing.assert_allclose(y[y != 0], x[y != 0] / 0.75)
    layer.eval()
    assert np.array_equal(layer(x), x) and np.array_equal(layer.backward(x), x)
    assert np.array_equal(nn.Dropout(0.0)(x), x)
    one = nn.Dropout(1.0)
    assert not one(x).any() and not one.backward(x).any()
    assert nn.Dropout(0.5)(x.astype(np.float32)).dtype == np.float32


# ----------------------------------------------------------------------------------------
# BatchNorm


def _batchnorm_pair(nd, c, **kwargs):
    ours = getattr(nn, f"BatchNorm{nd}d")(c, dtype=np.float64, **kwargs)
    theirs = getattr(torch.nn, f"BatchNorm{nd}d")(c, dtype=torch.float64, **kwargs)
    if ours.affine:                          # not the initial 1 and 0: test the scale too
        ours.weight.data[...] = randn(c, seed=20) + 1.5
        ours.bias.data[...] = randn(c, seed=21)
    return ours, theirs


@pytest.mark.parametrize("nd, x_shape, kwargs", [
    (2, (4, 3, 5, 6), {}),
    (2, (3, 2, 2, 3), dict(momentum=None)),
    (2, (2, 3, 4, 4), dict(affine=False, eps=1e-3)),
    (2, (5, 2, 3, 3), dict(track_running_stats=False, momentum=0.3)),
    (1, (6, 4), {}),
    (1, (3, 4, 5), {}),
    (3, (2, 3, 2, 3, 2), {}),
])
def test_batchnorm_train_mode_vs_torch(nd, x_shape, kwargs):
    ours, theirs = _batchnorm_pair(nd, x_shape[1], **kwargs)
    copy_into_torch(ours, theirs)
    for step in range(3):                     # running statistics over several batches
        x = randn(*x_shape, seed=30 + step) * 2 + 0.5
        tx = t64(x).requires_grad_(True)
        ty = theirs(tx)
        y = ours.forward(x)
        assert rel_err(y, ty.detach().numpy()) < TOL
        dy = randn(*y.shape, seed=40 + step)
        ty.backward(t64(dy))
        ours.zero_grad()
        assert rel_err(ours.backward(dy), tx.grad.numpy()) < TOL
        for name, p in ours.named_parameters():
            assert rel_err(p.grad, dict(theirs.named_parameters())[name].grad.numpy()) < TOL
            dict(theirs.named_parameters())[name].grad = None
    torch_state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        assert rel_err(value, torch_state[name].numpy()) < TOL, name
    if ours.track_running_stats:
        assert int(ours.num_batches_tracked) == 3


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_eval_mode_vs_torch(affine):
    ours, theirs = _batchnorm_pair(2, 3, affine=affine)
    ours.running_mean[...] = randn(3, seed=1)
    ours.running_var[...] = np.abs(randn(3, seed=2)) + 0.5
    ours.eval()
    theirs.eval()
    before = ours.running_mean.copy()
    compare_with_torch(ours, theirs, randn(2, 3, 4, 5, seed=3))
    assert np.array_equal(ours.running_mean, before)           # eval does not update


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck(training):
    layer, _ = _batchnorm_pair(2, 3)
    layer.running_var[...] = 2.0
    layer.train(training)
    layer_gradcheck(layer, randn(3, 3, 2, 3, seed=4))


def test_batchnorm_needs_two_values_per_channel_in_training():
    layer = nn.BatchNorm2d(2)
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer(np.ones((1, 2, 1, 1), np.float32))
    layer.eval()
    assert layer(np.ones((1, 2, 1, 1), np.float32)).shape == (1, 2, 1, 1)
    with pytest.raises(ValueError, match=r"num_features = 2.*\(2, 3, 4, 4\)"):
        layer(np.ones((2, 3, 4, 4), np.float32))


# ----------------------------------------------------------------------------------------
# Loss


def test_cross_entropy_vs_torch_including_huge_logits():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 5)) * 3
    logits[0] += 1000.0                       # overflow without the log-sum-exp shift
    logits[1, 2] = -1000.0
    labels = np.array([0, 2, 4, 1, 3, 2])
    for reduction in ("mean", "sum"):
        fn = nn.CrossEntropyLoss(reduction)
        tz = t64(logits).requires_grad_(True)
        tloss = torch.nn.functional.cross_entropy(tz, torch.tensor(labels), reduction=reduction)
        tloss.backward(torch.tensor(0.7, dtype=torch.float64))
        loss = fn.forward(logits, labels)
        assert np.isfinite(loss) and abs(loss - tloss.item()) <= TOL * abs(tloss.item())
        assert rel_err(fn.backward(0.7), tz.grad.numpy()) < TOL


def test_cross_entropy_gradcheck():
    labels = np.array([1, 0, 3])
    fn = nn.CrossEntropyLoss()

    def backward(dloss, logits):
        fn.forward(logits, labels)
        return [fn.backward(float(dloss))]
    report = gradcheck(lambda z: np.asarray(fn.forward(z, labels)), backward,
                       {"logits": randn(3, 4)}, h=1e-5)
    assert report.passed, str(report)


def test_cross_entropy_errors_and_float32():
    fn = nn.CrossEntropyLoss()
    z = np.zeros((2, 3), np.float32)
    assert fn.backward.__doc__
    fn.forward(z, np.array([0, 2]))
    assert fn.backward().dtype == np.float32
    with pytest.raises(ValueError, match="label 3"):
        fn.forward(z, np.array([0, 3]))
    with pytest.raises(ValueError, match="integers of shape"):
        fn.forward(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        fn.forward(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match="reduction='none'"):
        nn.CrossEntropyLoss("none")
    with pytest.raises(RuntimeError, match="forward"):
        nn.CrossEntropyLoss().backward()


# ----------------------------------------------------------------------------------------
# A whole network


def _pair_of_networks():
    ours = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False, dtype=np.float64, rng=0),
        nn.BatchNorm2d(4, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, dtype=np.float64, rng=1), nn.ReLU(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6, 5, dtype=np.float64, rng=2))
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 6, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(6, 5)).double()
    return ours, theirs                       # (a bias before BatchNorm has zero gradient)


def test_sequential_vs_torch_train_and_eval():
    ours, theirs = _pair_of_networks()
    x = randn(3, 1, 8, 8, seed=1)
    compare_with_torch(ours, theirs, x)
    ours.eval()
    theirs.eval()
    compare_with_torch(ours, theirs, randn(2, 1, 8, 8, seed=2))


def test_sequential_gradcheck():
    ours, _ = _pair_of_networks()
    layer_gradcheck(ours, randn(2, 1, 8, 8, seed=3))


def test_training_steps_match_torch_end_to_end():
    """Three Adam steps on the same batches: every parameter and buffer agrees."""
    ours, theirs = _pair_of_networks()
    copy_into_torch(ours, theirs)
    opt = nn.Adam(ours.parameters(), lr=1e-2)
    topt = torch.optim.Adam(theirs.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, labels = rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 5, 4)
        opt.zero_grad()
        loss = loss_fn.forward(ours.forward(x), labels)
        ours.backward(loss_fn.backward())
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(theirs(t64(x)), torch.tensor(labels))
        tloss.backward()
        topt.step()
        assert abs(loss - tloss.item()) < 1e-10
    torch_state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        assert rel_err(value, torch_state[name].numpy()) < 1e-9, name


def test_dropout_integer_input_and_dy_shape():
    from convgrad.nn import Dropout
    layer = Dropout(0.3, rng=0)
    y = layer.forward(np.full((2, 5), 10))              # integers are computed in float64
    assert y.dtype == np.float64
    kept = y[y != 0]
    np.testing.assert_allclose(kept, 10 / 0.7)
    with pytest.raises(ValueError, match=r"dy must have the forward output's shape \(2, 5\)"):
        layer.backward(np.ones((1, 5)))


def test_pool_layers_accept_numpy_integers():
    from convgrad import nn
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    for layer in (nn.MaxPool2d(np.int64(2)), nn.AvgPool2d((np.int32(2), 2))):
        assert layer.forward(x).shape == (1, 2, 2, 2)


def test_padding_mode_in_pytorchs_positions_transposed_zeros_only():
    from convgrad import nn
    layer = nn.Conv2d(2, 3, 3, 1, 1, 1, 1, True, "reflect", rng=0)   # PyTorch's positions
    assert layer.forward(np.zeros((1, 2, 5, 5), np.float32)).shape == (1, 3, 5, 5)
    nn.ConvTranspose2d(2, 3, 3, 2, 1, 1, 1, True, 1, "zeros", rng=0)
    with pytest.raises(ValueError, match="padding_mode='reflect' is not supported by a "
                                         "transposed convolution"):
        nn.ConvTranspose2d(2, 3, 3, padding=1, padding_mode="reflect")
