"""PyTorch parity users asked for: unbatched inputs, state_dict / load_state_dict,
``cg.nn`` after ``import convgrad as cg``, and layers that refuse mixed float dtypes.

Oracles: torch.nn / torch.nn.functional in float64 (unbatched calls, load_state_dict
semantics) and the batched result with N = 1.
"""
import subprocess
import sys

import numpy as np
import pytest

import convgrad as cg
from convgrad import nn
from helpers import rel_err
from parity_oracles import F, tensor, torch

FUNCTIONS = {1: (cg.conv1d, cg.conv1d_backward, F.conv1d),
             2: (cg.conv2d, cg.conv2d_backward, F.conv2d),
             3: (cg.conv3d, cg.conv3d_backward, F.conv3d)}
T_FUNCTIONS = {1: (cg.conv_transpose1d, cg.conv_transpose1d_backward, F.conv_transpose1d),
               2: (cg.conv_transpose2d, cg.conv_transpose2d_backward, F.conv_transpose2d),
               3: (cg.conv_transpose3d, cg.conv_transpose3d_backward, F.conv_transpose3d)}


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unbatched_conv_matches_torch(nd, algorithm):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((4,) + (5, 4, 3)[:nd])             # (C, *in), no N
    w = rng.standard_normal((6, 2) + (3, 2, 2)[:nd])           # groups = 2
    b = rng.standard_normal(6)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    forward, backward, theirs = FUNCTIONS[nd]
    tx, tw, tb = tensor(x, True), tensor(w, True), tensor(b, True)
    ty = theirs(tx, tw, tb, **kw)
    y = forward(x, w, b, algorithm=algorithm, **kw)
    assert y.shape == tuple(ty.shape) and rel_err(y, ty.detach().numpy()) < 1e-10
    dy = rng.standard_normal(y.shape)
    ty.backward(tensor(dy))
    for ours, ref in zip(backward(dy, x, w, b, algorithm=algorithm, **kw), (tx, tw, tb)):
        assert ours.shape == tuple(ref.shape) and rel_err(ours, ref.grad.numpy()) < 1e-10


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unbatched_conv_transpose_matches_torch(nd):
    rng = np.random.default_rng(10 + nd)
    x = rng.standard_normal((4,) + (3, 2, 3)[:nd])             # (C_in, *in)
    w = rng.standard_normal((4, 1) + (3, 2, 2)[:nd])           # (C_in, C_out/groups, *k)
    b = rng.standard_normal(2)
    kw = dict(stride=2, padding=1, output_padding=1, groups=2)
    forward, backward, theirs = T_FUNCTIONS[nd]
    tx, tw, tb = tensor(x, True), tensor(w, True), tensor(b, True)
    ty = theirs(tx, tw, tb, **kw)
    y = forward(x, w, b, **kw)
    assert y.shape == tuple(ty.shape) and rel_err(y, ty.detach().numpy()) < 1e-10
    dy = rng.standard_normal(y.shape)
    ty.backward(tensor(dy))
    for ours, ref in zip(backward(dy, x, w, b, **kw), (tx, tw, tb)):
        assert ours.shape == tuple(ref.shape) and rel_err(ours, ref.grad.numpy()) < 1e-10


def test_unbatched_shapes_and_messages():
    x, w = np.zeros((3, 8, 8), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    y = cg.conv2d(x, w, padding="same", padding_mode="circular")
    assert y.shape == (4, 8, 8) and y.dtype == np.float32
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(4, 8, 8\), "
                                         r"got \(1, 4, 8, 8\)"):
        cg.conv2d_backward(np.zeros((1, 4, 8, 8)), x, w, padding="same")
    with pytest.raises(ValueError, match=r"conv3d: x must be 5-D \(N, C, D, H, W\), or 4-D "
                                         r"\(C, D, H, W\) without the batch axis, got a 3-D"):
        cg.conv3d(x, w[..., None])
    with pytest.raises(ValueError, match=r"x of shape \(0, 8, 8\) has no channels"):
        cg.conv2d(np.zeros((0, 8, 8)), w)


def test_cs231n_stays_batched():
    from convgrad import cs231n
    x, w, b = np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    with pytest.raises(ValueError, match=r"conv_forward_naive: x must be 4-D \(N, C, H, W\), "
                                         r"got a 3-D array of shape \(3, 5, 5\)"):
        cs231n.conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"conv_backward_fast: the cached x must be 4-D"):
        cs231n.conv_backward_fast(np.zeros((2, 5, 5)), (x, w, b, {"stride": 1, "pad": 1}))


@pytest.mark.parametrize("name,kwargs,x_shape", [
    ("Conv1d", dict(in_channels=2, out_channels=3, kernel_size=3, padding=1,
                    padding_mode="reflect"), (2, 6)),
    ("Conv2d", dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, groups=2), (2, 7, 6)),
    ("Conv3d", dict(in_channels=1, out_channels=2, kernel_size=2, padding=1,
                    padding_mode="circular"), (1, 3, 3, 4)),
    ("ConvTranspose2d", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2,
                             output_padding=1), (2, 3, 4)),
])
def test_unbatched_layers_match_torch_nn(name, kwargs, x_shape):
    ours = getattr(nn, name)(**kwargs, dtype=np.float64, rng=0)
    theirs = getattr(torch.nn, name)(**kwargs, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(1).standard_normal(x_shape)
    tx = tensor(x, True)
    ty = theirs(tx)
    y = ours(x)
    assert y.shape == tuple(ty.shape) and rel_err(y, ty.detach().numpy()) < 1e-10
    dy = np.random.default_rng(2).standard_normal(y.shape)
    ty.backward(tensor(dy))
    dx = ours.backward(dy)
    assert dx.shape == x.shape and rel_err(dx, tx.grad.numpy()) < 1e-10
    assert rel_err(ours.weight.grad, theirs.weight.grad.numpy()) < 1e-10


# ----------------------------------------------------------------------------------------
# state_dict and load_state_dict


def _models():
    ours = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 3, rng=1))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                 torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 5 * 5, 3))
    return ours, theirs


def test_state_dict_round_trips_with_torch_nn():
    ours, theirs = _models()
    x = np.random.default_rng(0).standard_normal((6, 1, 5, 5)).astype(np.float32)
    ours.forward(x)                                    # running statistics move
    assert list(ours.state_dict()) == list(theirs.state_dict())
    result = theirs.load_state_dict({k: torch.from_numpy(np.array(v))
                                     for k, v in ours.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours.eval(), theirs.eval()
    y = ours.forward(x)
    assert rel_err(y, theirs(torch.from_numpy(x)).detach().numpy()) < 1e-5
    # back: PyTorch's state (CPU tensors) into a fresh model gives the same outputs
    fresh, _ = _models()
    result = fresh.load_state_dict(theirs.state_dict())
    assert result == ([], []) and type(result).__name__ == "IncompatibleKeys"
    fresh.eval()
    assert np.array_equal(fresh.forward(x), y)
    assert fresh.state_dict()["1.num_batches_tracked"] == 1


def test_load_state_dict_copies_and_casts():
    layer = nn.Conv2d(2, 3, 3, rng=0)
    state = {k: v.astype(np.float64) * 2 for k, v in layer.state_dict().items()}
    layer.load_state_dict(state)
    assert layer.weight.data.dtype == np.float32
    assert np.allclose(layer.weight.data, state["weight"])
    state["weight"][...] = 0                           # a copy, not shared
    assert layer.weight.data.any()


def test_strict_lists_missing_and_unexpected_and_changes_nothing():
    ours, _ = _models()
    before = {k: v.copy() for k, v in ours.state_dict().items()}
    state = {k: v + 1 for k, v in before.items()}
    del state["0.bias"], state["4.weight"]
    state["extra.weight"] = np.zeros(3)
    state["1.running_mean"] = np.zeros(5)              # a size mismatch too
    with pytest.raises(ValueError) as info:
        ours.load_state_dict(state)
    message = str(info.value)
    for fragment in ("Sequential (nothing was loaded)", "missing key(s): '0.bias', '4.weight'",
                     "unexpected key(s): 'extra.weight'",
                     "size mismatch for '1.running_mean': the state has shape (5,), the module "
                     "(4,)"):
        assert fragment in message
    for key, value in ours.state_dict().items():
        assert np.array_equal(value, before[key]), key


def test_non_strict_skips_keys_but_not_shapes():
    layer = nn.Linear(3, 2, rng=0)
    result = layer.load_state_dict({"weight": np.ones((2, 3)), "other": np.ones(1)},
                                   strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    assert np.all(layer.weight.data == 1)
    with pytest.raises(ValueError, match=r"size mismatch for 'weight'"):
        layer.load_state_dict({"weight": np.ones((3, 2))}, strict=False)
    with pytest.raises(ValueError, match=r"'weight': dtype complex128 is not a real number"):
        layer.load_state_dict({"weight": np.ones((2, 3), complex)}, strict=False)
    with pytest.raises(TypeError, match="a dict of arrays"):
        layer.load_state_dict([("weight", np.ones((2, 3)))])
    with pytest.raises(TypeError, match="strict must be True or False"):
        layer.load_state_dict({}, strict="yes")


# ----------------------------------------------------------------------------------------
# cg.nn, and dtypes


def test_nn_is_an_attribute_but_not_imported_by_import_convgrad():
    code = ("import sys, convgrad as cg\n"
            "assert 'convgrad.nn' not in sys.modules, 'nn imported eagerly'\n"
            "heavy = [m for m in ('torch', 'sympy', 'matplotlib', 'sklearn') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert cg.nn.Conv2d is __import__('convgrad.nn').nn.Conv2d\n"
            "assert 'nn' in dir(cg)\n"
            "try:\n    cg.no_such_thing\nexcept AttributeError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "has no attribute 'no_such_thing'" in result.stdout
    assert cg.nn is nn


@pytest.mark.parametrize("layer", [nn.Conv2d(1, 2, 3, rng=0), nn.ConvTranspose2d(1, 2, 3, rng=0),
                                   nn.Linear(4, 2, rng=0), nn.BatchNorm2d(1)])
def test_layers_refuse_another_float_dtype(layer):
    x = np.zeros((2, 1, 4, 4))
    with pytest.raises(TypeError) as info:
        layer(x)                                       # float64 into float32 parameters
    name = type(layer).__name__
    assert (f"{name}: x has dtype float64 but the layer's parameters are float32"
            in str(info.value))
    y = layer(x.astype(np.float32))
    assert y.dtype == np.float32


def test_torch_refuses_the_same_mix():
    with pytest.raises(RuntimeError, match="should be the same"):
        torch.nn.Conv2d(1, 2, 3)(torch.zeros(1, 1, 4, 4, dtype=torch.float64))


def test_integer_images_follow_the_parameters():
    layer = nn.Conv2d(1, 2, 3, rng=0)
    images = np.random.default_rng(0).integers(0, 256, (2, 1, 5, 5)).astype(np.uint8)
    y = layer(images)
    assert y.dtype == np.float32 == np.result_type(np.uint8, np.float32)
    assert rel_err(y, layer(images.astype(np.float32))) == 0
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert nn.Linear(5, 2, rng=0)(np.arange(10).reshape(2, 5)).dtype == np.float32
    assert nn.Conv2d(1, 2, 3, rng=0, dtype=np.float64)(images).dtype == np.float64
    assert nn.ReLU()(np.array([-1.0, 2.0])).dtype == np.float64   # no parameters: kept
