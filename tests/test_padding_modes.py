"""Padding modes ('zeros', 'reflect', 'replicate', 'circular') with gradients.

Oracles: PyTorch's F.pad(mode) followed by an unpadded convolution, differentiated by
float64 autograd (first and second order) at 1e-10 relative; the adjoint identity
<pad(x), g> = <x, fold(g)>; the reference engine's entry-by-entry definition.
"""
import zlib

import numpy as np
import pytest

import convgrad as cg
from convgrad import nn, padding
from convgrad.engine import reference
from helpers import rel_err
from parity_oracles import (TORCH_MODE, F, tensor, torch, torch_conv_graph, torch_first_order,
                            torch_pad, torch_second_order)

MODES = ["zeros", "reflect", "replicate", "circular"]
CONV = {1: cg.conv1d, 2: cg.conv2d, 3: cg.conv3d}
BACKWARD = {1: cg.conv1d_backward, 2: cg.conv2d_backward, 3: cg.conv3d_backward}
DOUBLE = {1: cg.conv1d_double_backward, 2: cg.conv2d_double_backward,
          3: cg.conv3d_double_backward}

# (x shape, (lo, hi) per axis): asymmetric, zero on one side, up to the limits
PAD_CASES = [((2, 3, 5), ((2, 1),)), ((1, 2, 4, 5), ((3, 0), (1, 4))),
             ((1, 1, 3, 4, 2), ((1, 2), (0, 3), (1, 1))), ((2, 1, 1, 3), ((0, 0), (2, 2)))]


def _fits(mode, shape, pairs):
    limit = {"reflect": -1, "circular": 0}.get(mode)
    return limit is None or all(max(p) <= n + limit for n, p in zip(shape[2:], pairs))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,pairs", PAD_CASES)
def test_pad_and_fold_match_torch_and_the_definition(mode, shape, pairs):
    if not _fits(mode, shape, pairs):
        pytest.skip("beyond the mode's limit (tested below)")
    rng = np.random.default_rng(zlib.crc32(f"{mode}{shape}{pairs}".encode()))
    x = rng.standard_normal(shape)
    tx = tensor(x, True)
    tp = torch_pad(tx, pairs, mode)
    g = rng.standard_normal(tuple(tp.shape))
    tp.backward(tensor(g))
    ours = padding.pad(x, pairs, mode)
    assert ours.shape == tuple(tp.shape) and rel_err(ours, tp.detach().numpy()) == 0
    assert rel_err(padding.fold(g, pairs, mode), tx.grad.numpy()) < 1e-14
    # the adjoint identity, and the reference engine's entry-by-entry version
    assert np.isclose(np.sum(ours * g), np.sum(x * padding.fold(g, pairs, mode)), rtol=1e-13)
    if mode != "zeros":
        assert np.array_equal(reference.pad_by_mode(x, pairs, mode), ours)
        assert rel_err(reference.fold_by_mode(g, pairs, mode),
                       padding.fold(g, pairs, mode)) < 1e-14


def test_source_index_is_the_definition():
    n = 4
    assert [padding.source_index(i, n, "reflect") for i in range(-3, 7)] == \
        [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    assert [padding.source_index(i, n, "replicate") for i in range(-2, 6)] == \
        [0, 0, 0, 1, 2, 3, 3, 3]
    assert [padding.source_index(i, n, "circular") for i in range(-4, 8)] == \
        [0, 1, 2, 3] * 3
    assert [padding.source_index(i, n, "zeros") for i in (-1, 0, 3, 4)] == [None, 0, 3, None]


# (x shape, w shape, keywords): every padding form convgrad accepts, strides 1-3
CASES = [
    ((2, 3, 7), (4, 3, 3), dict(stride=1, padding=2)),
    ((2, 2, 8), (3, 2, 2), dict(stride=3, padding=((3, 1),), dilation=2)),
    ((1, 4, 6, 7), (4, 2, 3, 3), dict(stride=2, padding=((2, 0), (1, 3)), groups=2)),
    ((2, 2, 5, 6), (3, 2, 3, 2), dict(stride=(1, 3), padding=(1, 2))),          # per axis
    ((1, 2, 6, 5), (2, 2, 3, 3), dict(stride=2, padding="same", dilation=(2, 1))),
    ((2, 3, 4, 4), (2, 3, 2, 2), dict(stride=3, padding="same")),               # 'same', s = 3
    ((0, 2, 5, 5), (2, 2, 3, 3), dict(stride=2, padding=1)),                    # N = 0
    ((1, 2, 4, 5, 3), (2, 2, 2, 3, 2), dict(stride=(2, 1, 1), padding=(1, (0, 2), 1))),
]


def _id(case):
    return f"x{case[0]}-w{case[1]}-" + ",".join(f"{k}={v}" for k, v in case[2].items())


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_conv_with_padding_mode_matches_torch(case, mode, algorithm):
    x_shape, w_shape, kw = case
    kw = dict(kw, padding_mode=mode)
    nd = len(x_shape) - 2
    rng = np.random.default_rng(zlib.crc32((_id(case) + mode).encode()))
    x, w, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[0]))
    y_ref, *_ = torch_first_order(torch_conv_graph, x, w, b, None, **kw)
    dy = rng.standard_normal(y_ref.shape)
    g_dx, g_dw, g_db = (rng.standard_normal(a.shape) for a in (x, w, b))
    first, second = torch_second_order(torch_conv_graph, x, w, b, dy, g_dx, g_dw, g_db, **kw)
    y = CONV[nd](x, w, b, algorithm=algorithm, **kw)
    assert y.shape == y_ref.shape and rel_err(y, y_ref) < 1e-10
    for ours, ref in zip(BACKWARD[nd](dy, x, w, b, algorithm=algorithm, **kw), first):
        assert ours.shape == ref.shape and rel_err(ours, ref) < 1e-10
    for ours, ref in zip(DOUBLE[nd](g_dx, g_dw, g_db, dy, x, w, b, algorithm=algorithm, **kw),
                         second):
        assert ours.shape == ref.shape and rel_err(ours, ref) < 1e-10


@pytest.mark.parametrize("mode", MODES[1:])
def test_float32_kept(mode):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    kw = dict(stride=2, padding=((2, 1), (1, 2)), padding_mode=mode)
    y = cg.conv2d(x, w, **kw)
    dy = rng.standard_normal(y.shape)
    exact = (y, *cg.conv2d_backward(dy, x, w, **kw)[:2])
    single = (cg.conv2d(x.astype(np.float32), w.astype(np.float32), **kw),
              *cg.conv2d_backward(dy.astype(np.float32), x.astype(np.float32),
                                  w.astype(np.float32), **kw)[:2])
    for a, ref in zip(single, exact):
        assert a.dtype == np.float32 and rel_err(a, ref) < 1e-5


# ----------------------------------------------------------------------------------------
# Limits, as PyTorch's, and messages


@pytest.mark.parametrize("mode,pad,ok", [("reflect", 3, False), ("reflect", 2, True),
                                         ("circular", 4, False), ("circular", 3, True),
                                         ("replicate", 9, True)])
def test_limits_as_pytorch(mode, pad, ok):
    x, w = np.ones((1, 1, 3)), np.ones((1, 1, 1))
    torch_ok = True
    try:
        F.pad(torch.ones(1, 1, 3), (pad, 0), mode=TORCH_MODE[mode])
    except RuntimeError:
        torch_ok = False
    assert torch_ok == ok
    if ok:
        assert cg.conv1d(x, w, padding=((pad, 0),), padding_mode=mode).shape == (1, 1, 3 + pad)
        return
    with pytest.raises(ValueError) as info:
        cg.conv1d(x, w, padding=((pad, 0),), padding_mode=mode)
    for fragment in (f"padding ({pad}, 0) along L", f"padding_mode={mode!r}",
                     "has size 3 along L", f"at most {3 if mode == 'circular' else 2} per side"):
        assert fragment in str(info.value)


def test_limit_messages_name_axis_sizes_and_mode():
    x, w = np.ones((1, 1, 6, 2)), np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: padding \(1, 2\) along W is too large for "
                                         r"padding_mode='reflect': x has size 2 along W, and "
                                         r"reflect padding must be smaller than the size"):
        cg.conv2d(x, w, padding=(1, (1, 2)), padding_mode="reflect")
    with pytest.raises(ValueError, match=r"conv2d_backward: padding \(2, 2\) along W"):
        cg.conv2d_backward(np.ones((1, 1, 6, 2)), x, w, padding=(1, 2), padding_mode="reflect")
    with pytest.raises(ValueError, match=r"padding \(0, 3\) along W .*'circular'"):
        cg.conv2d(x, w, padding=(0, (0, 3)), padding_mode="circular")
    # 'same' resolves first: W = 1 with a 3-wide kernel needs (1, 1): too much for reflect
    with pytest.raises(ValueError, match=r"padding \(1, 1\) along W .* size 1 along W"):
        cg.conv2d_double_backward(None, None, None, np.ones((1, 1, 6, 1)), x[..., :1], w,
                                  padding="same", padding_mode="reflect")


@pytest.mark.parametrize("mode,error,fragment", [
    ("reflection", ValueError, "did you mean 'reflect'"),
    ("edge", ValueError, "did you mean 'replicate'"),
    ("wrap", ValueError, "did you mean 'circular'"),
    ("Zeros", ValueError, "did you mean 'zeros'"),
    ("symmetric", ValueError, "expected one of 'zeros', 'reflect', 'replicate', 'circular'"),
    (None, TypeError, "padding_mode must be one of"),
])
def test_unknown_padding_mode(mode, error, fragment):
    with pytest.raises(error, match=f"conv2d: .*{fragment}"):
        cg.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding=1, padding_mode=mode)
    with pytest.raises(error, match=fragment):
        nn.Conv2d(1, 1, 3, padding=1, padding_mode=mode)


def test_transposed_is_zeros_only():
    for cls in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d):
        with pytest.raises(ValueError, match=rf"{cls.__name__}: padding_mode='circular' is not "
                                             r"supported by a transposed convolution"):
            cls(2, 2, 3, padding=1, padding_mode="circular")
    with pytest.raises(TypeError, match="padding_mode"):
        cg.conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), padding_mode="zeros")


# ----------------------------------------------------------------------------------------
# nn layers against torch.nn with the same weights


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nd,kwargs,x_shape", [
    (1, dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=2), (2, 2, 7)),
    (2, dict(in_channels=2, out_channels=4, kernel_size=(3, 2), padding=(1, 1), groups=2,
             dilation=(1, 2)), (2, 2, 5, 6)),
    (2, dict(in_channels=3, out_channels=2, kernel_size=3, padding="same"), (1, 3, 4, 5)),
    (3, dict(in_channels=1, out_channels=2, kernel_size=2, stride=(1, 2, 1), padding=1),
     (1, 1, 3, 4, 3)),
])
def test_layers_match_torch_nn(nd, kwargs, x_shape, mode):
    ours = getattr(nn, f"Conv{nd}d")(**kwargs, padding_mode=mode, dtype=np.float64, rng=2)
    theirs = getattr(torch.nn, f"Conv{nd}d")(**kwargs, padding_mode=mode, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(4).standard_normal(x_shape)
    tx = tensor(x, True)
    ty = theirs(tx)
    y = ours(x)
    assert y.shape == tuple(ty.shape) and rel_err(y, ty.detach().numpy()) < 1e-10
    dy = np.random.default_rng(5).standard_normal(y.shape)
    ty.backward(tensor(dy))
    assert rel_err(ours.backward(dy), tx.grad.numpy()) < 1e-10
    assert rel_err(ours.weight.grad, theirs.weight.grad.numpy()) < 1e-10
    assert rel_err(ours.bias.grad, theirs.bias.grad.numpy()) < 1e-10
    expected = "" if mode == "zeros" else f", padding_mode={mode}"
    assert repr(ours).endswith(f"{expected}, dtype=float64)")
