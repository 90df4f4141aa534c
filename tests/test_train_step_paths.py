"""The training step's fast paths, against PyTorch, over hypothesis-drawn shapes.

The nn layers on a training step's path compute with fewer passes over the data than
their textbook formulas (BatchNorm's per-channel sums, Adam's in-place update, ...);
each is compared here with the torch.nn / torch.optim twin in float64 (1e-10 relative)
and, in float32, with PyTorch float64 on the same rounded inputs within the float32
tolerance. Speed is measured by ``convgrad bench --train``, never here.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from convgrad import nn
from helpers import rel_err

torch = pytest.importorskip("torch")
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


# ----------------------------------------------------------------------------------------
# BatchNorm


@st.composite
def batchnorms(draw):
    nd = draw(st.sampled_from([0, 1, 2, 3]))        # 0: BatchNorm1d on (N, C)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    spatial = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    n, c = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    if n * np.prod(spatial, dtype=int) < 2:          # training needs 2 values per channel
        n = 2
    return dict(shape=(n, c, *spatial),
                kind=1 if nd <= 1 else nd,
                affine=draw(st.booleans()),
                track=draw(st.booleans()),
                momentum=draw(st.sampled_from([0.1, 0.5, None])),
                dtype=dtype,
                # a mean far from 0 (float64): x - mean must not cancel digits away; in
                # float32 the mean's own rounding (eps * 1e3) would swamp the comparison
                offset=draw(st.sampled_from([0.0, 3.0] + ([1e3] if dtype == np.float64
                                                          else []))),
                seed=draw(st.integers(0, 2**31)))


@SETTINGS
@given(case=batchnorms())
def test_batchnorm_train_then_eval_matches_torch(case):
    """Three training steps (running statistics included) then one eval step: y, dx,
    dweight, dbias and the buffers against torch.nn.BatchNormNd in float64."""
    rng = np.random.default_rng(case["seed"])
    dtype, c = case["dtype"], case["shape"][1]
    kwargs = dict(affine=case["affine"], track_running_stats=case["track"],
                  momentum=case["momentum"])
    ours = getattr(nn, f"BatchNorm{case['kind']}d")(c, dtype=dtype, **kwargs)
    theirs = getattr(torch.nn, f"BatchNorm{case['kind']}d")(c, dtype=torch.float64, **kwargs)
    if case["affine"]:
        ours.weight.data[...] = rng.standard_normal(c) + 1.5
        ours.bias.data[...] = rng.standard_normal(c)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float64)
                                                if v.dtype.kind == "f" else np.array(v))
                            for k, v in ours.state_dict().items()})
    tol = TOLERANCE[np.dtype(dtype)]
    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        x = (rng.standard_normal(case["shape"]) * 2 + case["offset"]).astype(dtype)
        dy = rng.standard_normal(case["shape"]).astype(dtype)
        tx = _t64(x).requires_grad_(True)
        ty = theirs(tx)
        ty.backward(_t64(dy))
        ours.zero_grad()
        y = ours.forward(x)
        dx = ours.backward(dy)
        assert y.dtype == dtype and dx.dtype == dtype and dx.shape == x.shape
        assert rel_err(y, ty.detach().numpy()) < tol
        # dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std cancels to nearly
        # 0 when a channel has few values (exactly 0 for two): its rounding error is
        # relative to the size of the terms, |dy * weight| / std, not to dx's
        x64 = x.astype(np.float64)
        axes = (0, *range(2, x.ndim))
        var = (x64.var(axis=axes) if step < 3 or not case["track"]
               else ours.running_var.astype(np.float64))
        weight = np.abs(ours.weight.data).max() if case["affine"] else 1.0
        terms = np.abs(dy).max() * weight / np.sqrt(var.min() + ours.eps)
        truth = tx.grad.numpy()
        assert np.abs(dx - truth).max() <= tol * max(np.abs(truth).max(), terms)
        for name, p in theirs.named_parameters():
            assert rel_err(getattr(ours, name).grad, p.grad.numpy()) < tol, name
            p.grad = None
        for name, value in theirs.state_dict().items():
            assert rel_err(ours.state_dict()[name], value.numpy()) < tol, name


# ----------------------------------------------------------------------------------------
# Sequential.backward(dy, input_grad=False) and the layers' cached geometry


def _twin(torch_layer_type, ours, **kwargs):
    theirs = torch_layer_type(**kwargs).double()
    for name in ("weight", "bias"):
        p = getattr(ours, name, None)
        if p is not None:
            getattr(theirs, name).data = torch.from_numpy(p.data.astype(np.float64))
    return theirs


@st.composite
def first_layers(draw):
    """A small model whose first layer is a convolution (1-D to 3-D, any stride,
    padding, dilation, groups, transposed or not), a Linear, or a nested Sequential."""
    kind = draw(st.sampled_from(["conv", "conv_transpose", "linear", "nested"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**31))
    if kind == "linear":
        return dict(kind=kind, dtype=dtype, seed=seed, n=draw(st.integers(1, 4)),
                    features=(draw(st.integers(1, 6)), draw(st.integers(1, 6))))
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    c, f = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    if kind == "conv_transpose":                     # PyTorch: padding <= d * (k - 1)
        padding = tuple(min(p, d * (k - 1)) for p, d, k in zip(padding, dilation, kernel))
    size = tuple(d * (k - 1) + 1 + draw(st.integers(0, 3))
                 for k, d in zip(kernel, dilation))
    return dict(kind=kind, dtype=dtype, seed=seed, nd=nd, n=draw(st.integers(1, 3)),
                c=c, f=f, kw=dict(kernel_size=kernel, stride=stride, padding=padding,
                                  dilation=dilation, groups=groups),
                bias=draw(st.booleans()), size=size)


def _models(case):
    """(ours, theirs, x): our model, its torch.nn twin (float64), an input."""
    rng = np.random.default_rng(case["seed"])
    dtype = case["dtype"]
    if case["kind"] == "linear":
        i, o = case["features"]
        first = nn.Linear(i, o, dtype=dtype, rng=rng)
        twin = _twin(torch.nn.Linear, first, in_features=i, out_features=o)
        x_shape = (case["n"], i)
    else:
        nd = case["nd"]
        transposed = case["kind"] == "conv_transpose"
        name = f"ConvTranspose{nd}d" if transposed else f"Conv{nd}d"
        first = getattr(nn, name)(case["c"], case["f"], bias=case["bias"], dtype=dtype,
                                  rng=rng, **case["kw"])
        twin = _twin(getattr(torch.nn, name), first, in_channels=case["c"],
                     out_channels=case["f"], bias=case["bias"], **case["kw"])
        x_shape = (case["n"], case["c"], *case["size"])
    ours, theirs = nn.Sequential(first, nn.ReLU()), torch.nn.Sequential(twin, torch.nn.ReLU())
    if case["kind"] == "nested":
        ours = nn.Sequential(ours, nn.ReLU())
        theirs = torch.nn.Sequential(theirs, torch.nn.ReLU())
    return ours, theirs, rng.standard_normal(x_shape).astype(dtype)


@SETTINGS
@given(case=first_layers())
def test_input_grad_false_gives_torchs_parameter_gradients(case):
    """Without dx, the parameter gradients are PyTorch's for an input that does not
    require grad, and exactly those of a full backward pass; None comes back."""
    ours, theirs, x = _models(case)
    y = ours.forward(x)
    dy = np.random.default_rng(case["seed"] + 1).standard_normal(y.shape).astype(x.dtype)
    theirs(_t64(x)).backward(_t64(dy))
    ours.zero_grad()
    assert ours.backward(dy, input_grad=False) is None
    without = [p.grad.copy() for p in ours.parameters()]
    for ours_grad, (name, p) in zip(without, theirs.named_parameters()):
        assert ours_grad.dtype == x.dtype
        assert rel_err(ours_grad, p.grad.numpy()) < TOLERANCE[x.dtype], name
    ours.forward(x)
    ours.zero_grad()
    dx = ours.backward(dy)
    assert dx.shape == x.shape
    for a, p in zip(without, ours.parameters()):
        assert np.array_equal(a, p.grad)


def test_input_grad_must_be_a_bool():
    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    model.forward(np.ones((1, 2), np.float32))
    with pytest.raises(TypeError, match="input_grad must be True or False"):
        model.backward(np.ones((1, 2), np.float32), input_grad="no")


def test_a_layer_revalidates_a_new_shape_and_changed_arguments():
    """The geometry a conv layer caches is reused only for the same shape, dtype and
    arguments: a new shape, or an argument changed after construction, meets the
    functional's own checks and messages."""
    layer = nn.Conv2d(2, 3, 3, rng=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    assert layer.forward(x).shape == (2, 3, 3, 3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer.forward(x[:, :, :2, :2])
    layer.stride = (2, 2)
    y = layer.forward(x)
    theirs = _twin(torch.nn.Conv2d, layer, in_channels=2, out_channels=3, kernel_size=3,
                   stride=2)
    assert rel_err(y, theirs(_t64(x)).detach().numpy()) < 1e-10
    layer.padding = (9, 9)
    assert layer.forward(x).shape == (2, 3, 11, 11)
    layer.groups = 3
    with pytest.raises(ValueError, match="groups=3 must divide"):
        layer.forward(x)


# ----------------------------------------------------------------------------------------
# Adam, in place


@SETTINGS
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=3),
       lr=st.sampled_from([1e-3, 0.01, 0.3]),
       betas=st.sampled_from([(0.9, 0.999), (0.0, 0.5), (0.8, 0.99)]),
       eps=st.sampled_from([1e-8, 1e-3]),
       weight_decay=st.sampled_from([0.0, 0.1]),
       dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31))
@example(shape=[], lr=1e-3, betas=(0.0, 0.5), eps=1e-8, weight_decay=0.0, dtype=np.float32,
         seed=35)                                  # torch's lerp loses a small last g
def test_adam_matches_torch_optim(shape, lr, betas, eps, weight_decay, dtype, seed):
    """Five steps with the same gradients (one of them zero): the parameters and both
    moments equal torch.optim.Adam's (float64 1e-10; float32 within its rounding).

    The moments are compared relative to the largest gradient (and its square) that
    entered them: torch updates them as m + (1 - beta1) (g - m), which in float32 loses
    digits of a small last g after a large m (beta1 = 0 leaves m = g, 1.2e-5 off
    relative to that g in torch, exact in ours)."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(shape).astype(dtype)
    ours = nn.Parameter(start)
    theirs = torch.nn.Parameter(torch.tensor(start))
    kwargs = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    opt, topt = nn.Adam([ours], **kwargs), torch.optim.Adam([theirs], **kwargs)
    largest = 0.0
    for step in range(5):
        g = rng.standard_normal(shape).astype(dtype) * (step != 2)
        largest = max(largest, float(np.abs(g).max(initial=0.0)))
        opt.zero_grad()
        ours.grad += g
        theirs.grad = torch.tensor(g)
        opt.step()
        topt.step()
    tol = TOLERANCE[np.dtype(dtype)] / 10
    assert ours.data.dtype == dtype
    assert rel_err(ours.data, theirs.detach().numpy()) < tol
    state = topt.state[theirs]
    for ours_m, theirs_m, scale in ((opt.state[0]["exp_avg"], state["exp_avg"], largest),
                                    (opt.state[0]["exp_avg_sq"], state["exp_avg_sq"],
                                     largest ** 2)):
        difference = np.abs(ours_m.astype(np.float64) - theirs_m.numpy().astype(np.float64))
        assert difference.max(initial=0.0) <= tol * max(scale, 1e-30)
