"""Second-order gradients: conv*_double_backward and conv_transpose*_double_backward.

Oracles: PyTorch float64 autograd (torch.autograd.grad with create_graph=True) at 1e-10
relative, over a grid and hypothesis-drawn geometries; gradgradcheck (central differences
of the backward itself, no PyTorch) for every double backward.
"""
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.gradcheck import gradgradcheck
from helpers import rel_err
from parity_oracles import (conv_pads, torch, torch_conv_graph, torch_conv_transpose_graph,
                            torch_second_order)

CONV = {1: cg.conv1d, 2: cg.conv2d, 3: cg.conv3d}
BACKWARD = {1: cg.conv1d_backward, 2: cg.conv2d_backward, 3: cg.conv3d_backward}
DOUBLE = {1: cg.conv1d_double_backward, 2: cg.conv2d_double_backward,
          3: cg.conv3d_double_backward}
T = {1: cg.conv_transpose1d, 2: cg.conv_transpose2d, 3: cg.conv_transpose3d}
T_BACKWARD = {1: cg.conv_transpose1d_backward, 2: cg.conv_transpose2d_backward,
              3: cg.conv_transpose3d_backward}
T_DOUBLE = {1: cg.conv_transpose1d_double_backward, 2: cg.conv_transpose2d_double_backward,
            3: cg.conv_transpose3d_double_backward}

# (x shape, w shape (F, C/groups, *k), keywords): stride with leftover rows, padding larger
# than the kernel, asymmetric and per-axis padding, 'same' at stride > 1, dilation, groups,
# depthwise, 1x1, N = 0, 1-D to 3-D
CONV_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(stride=2)),
    ((2, 4, 6, 7), (6, 2, 3, 3), dict(stride=(2, 3), padding=((1, 2), (0, 3)), groups=2)),
    ((1, 2, 7, 7), (3, 2, 3, 3), dict(dilation=(2, 1), padding=4)),
    ((2, 3, 5, 6), (3, 1, 3, 3), dict(groups=3, stride=3, padding="same")),      # depthwise
    ((2, 2, 5, 5), (3, 2, 2, 2), dict(stride=2, padding="same", dilation=2)),
    ((2, 3, 4, 4), (2, 3, 1, 1), dict()),                                         # 1x1
    ((0, 3, 5, 5), (4, 3, 3, 3), dict(stride=2, padding=1)),                      # N = 0
    ((2, 3, 9), (4, 3, 3), dict(stride=3, dilation=2, padding=((2, 0),))),        # 1-D
    ((1, 2, 4, 5, 4), (2, 1, 2, 3, 2), dict(stride=(1, 2, 2), padding=(1, 0, (0, 1)),
                                            groups=2)),                           # 3-D
]

# (x shape, w shape (C_in, C_out/groups, *k), keywords)
TRANSPOSE_CASES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 3, 4), (4, 3, 2, 3), dict(stride=2, groups=2, dilation=(2, 1), padding=1)),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(dilation=2, output_padding=1)),             # op < d
    ((2, 2, 3, 4), (2, 3, 3, 2), dict(stride=(3, 2), padding=((2, 0), (1, 2)))),  # asymmetric
    ((2, 2, 3, 3), (2, 2, 3, 3), dict(stride=2, padding="same")),
    ((0, 3, 4, 4), (3, 2, 3, 3), dict(stride=2)),                                 # N = 0
    ((2, 2, 6), (2, 3, 4), dict(stride=3, padding=1, output_padding=2)),          # 1-D
    ((1, 2, 3, 4, 3), (2, 2, 2, 3, 2), dict(stride=(2, 1, 3), padding=(0, 1, 1),
                                            output_padding=(1, 0, 2))),           # 3-D
]


def _id(case):
    return f"x{case[0]}-w{case[1]}-" + ",".join(f"{k}={v}" for k, v in case[2].items())


def _rng(case):
    return np.random.default_rng(zlib.crc32(_id(case).encode()))


def _conv_arrays(case, rng, with_bias=True):
    x_shape, w_shape, kw = case
    nd = len(x_shape) - 2
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if with_bias else None
    y = CONV[nd](x, w, b, **kw)
    return nd, x, w, b, rng.standard_normal(y.shape)


def _transpose_arrays(case, rng, with_bias=True):
    x_shape, w_shape, kw = case
    nd = len(x_shape) - 2
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * kw.get("groups", 1)) if with_bias else None
    y = T[nd](x, w, b, **kw)
    return nd, x, w, b, rng.standard_normal(y.shape)


def _check(ours, theirs, tol=1e-10):
    for a, ref in zip(ours, theirs):
        assert a.shape == ref.shape
        assert rel_err(a, ref) < tol, rel_err(a, ref)


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[_id(c) for c in CONV_CASES])
def test_conv_double_backward_matches_torch(case, algorithm):
    rng = _rng(case)
    nd, x, w, b, dy = _conv_arrays(case, rng)
    g_dx, g_dw, g_db = (rng.standard_normal(a.shape) for a in (x, w, b))
    kw = case[2]
    first, second = torch_second_order(torch_conv_graph, x, w, b, dy, g_dx, g_dw, g_db, **kw)
    _check(BACKWARD[nd](dy, x, w, b, algorithm=algorithm, **kw), first)
    ours = DOUBLE[nd](g_dx, g_dw, g_db, dy, x, w, b, algorithm=algorithm, **kw)
    _check(ours, second)


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[_id(c) for c in TRANSPOSE_CASES])
def test_conv_transpose_double_backward_matches_torch(case, algorithm):
    rng = _rng(case)
    nd, x, w, b, dy = _transpose_arrays(case, rng)
    g_dx, g_dw, g_db = (rng.standard_normal(a.shape) for a in (x, w, b))
    kw = case[2]
    first, second = torch_second_order(torch_conv_transpose_graph, x, w, b, dy, g_dx, g_dw,
                                       g_db, **kw)
    _check(T_BACKWARD[nd](dy, x, w, b, algorithm=algorithm, **kw), first)
    _check(T_DOUBLE[nd](g_dx, g_dw, g_db, dy, x, w, b, algorithm=algorithm, **kw), second)


@pytest.mark.parametrize("given_", ["dx", "dw", "db", "dx+db", "none"])
def test_missing_gradients_are_zero(given_):
    case = CONV_CASES[1]
    rng = _rng(case)
    nd, x, w, b, dy = _conv_arrays(case, rng)
    g = {name: rng.standard_normal(a.shape) if name in given_ else None
         for name, a in (("dx", x), ("dw", w), ("db", b))}
    first, second = torch_second_order(torch_conv_graph, x, w, b, dy, g["dx"], g["dw"],
                                       g["db"], **case[2])
    ours = DOUBLE[nd](g["dx"], g["dw"], g["db"], dy, x, w, b, **case[2])
    _check(ours, second)
    assert [a.shape for a in ours] == [dy.shape, x.shape, w.shape]


# ----------------------------------------------------------------------------------------
# Drawn geometries


@st.composite
def conv_geometries(draw, transposed=False):
    nd = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, 2]))
    n = draw(st.sampled_from([0, 1, 2]))
    c, f = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    form = draw(st.sampled_from(["int", "pairs", "same", "valid"]))
    if form == "int":
        padding = draw(st.integers(0, 3))
        pads = [(padding, padding)] * nd
    elif form == "pairs":
        pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd)]
        padding = tuple(pads)
    else:
        padding, pads = form, [(0, 0)] * nd
    kw = dict(stride=tuple(stride), padding=padding, dilation=tuple(dilation), groups=groups)
    if not transposed:
        size = [d * (k - 1) + 1 - lo - hi + draw(st.integers(0, 4)) for k, d, (lo, hi)
                in zip(kernel, dilation, pads)]
        size = [max(s, 1) for s in size]
        x_shape, w_shape = (n, c, *size), (f, c // groups, *kernel)
        mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
        room = {"reflect": 1, "circular": 0}.get(mode, -99)     # PyTorch's limits
        if any(max(p) > m - room for p, m in zip(conv_pads(x_shape, w_shape, **kw), size)):
            mode = "replicate"
        kw["padding_mode"] = mode
        return x_shape, w_shape, kw
    size = [draw(st.integers(1, 4)) for _ in range(nd)]
    if form not in ("same", "valid"):                  # strings set the size themselves
        extra = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
        kw["output_padding"] = tuple(extra)
        for i, (lo, hi) in enumerate(pads):   # the output must keep at least one entry
            full = (size[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + extra[i] + 1
            if full - lo - hi < 1:
                size[i] += -(-(lo + hi + 1 - full) // stride[i])
    return (n, c, *size), (c, f // groups, *kernel), kw


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_geometries(), st.sampled_from(["fast", "reference"]), st.integers(0, 2**31))
def test_drawn_conv_double_backward_matches_torch(case, algorithm, seed):
    rng = np.random.default_rng(seed)
    nd, x, w, b, dy = _conv_arrays(case, rng, with_bias=bool(seed % 2))
    g_dx, g_dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    g_db = None if b is None else rng.standard_normal(b.shape)
    _, second = torch_second_order(torch_conv_graph, x, w, b, dy, g_dx, g_dw, g_db, **case[2])
    _check(DOUBLE[nd](g_dx, g_dw, g_db, dy, x, w, b, algorithm=algorithm, **case[2]), second)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_geometries(transposed=True), st.sampled_from(["fast", "reference"]),
       st.integers(0, 2**31))
def test_drawn_conv_transpose_double_backward_matches_torch(case, algorithm, seed):
    rng = np.random.default_rng(seed)
    nd, x, w, b, dy = _transpose_arrays(case, rng, with_bias=bool(seed % 2))
    g_dx, g_dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    g_db = None if b is None else rng.standard_normal(b.shape)
    _, second = torch_second_order(torch_conv_transpose_graph, x, w, b, dy, g_dx, g_dw, g_db,
                                   **case[2])
    _check(T_DOUBLE[nd](g_dx, g_dw, g_db, dy, x, w, b, algorithm=algorithm, **case[2]), second)


# ----------------------------------------------------------------------------------------
# gradgradcheck: central differences of the backward itself, independent of PyTorch

GRADGRAD_CASES = [
    (False, ((2, 2, 5), (4, 1, 3), dict(stride=2, padding=((0, 2),), groups=2))),
    (False, ((1, 2, 4, 5), (2, 2, 2, 3), dict(stride=(2, 1), padding="same", dilation=(1, 2),
                                              padding_mode="reflect"))),
    (False, ((1, 1, 3, 3, 4), (2, 1, 2, 2, 2), dict(padding=(1, 0, 1),
                                                    padding_mode="circular"))),
    (True, ((2, 2, 3), (2, 2, 3), dict(stride=2, padding=1, output_padding=1))),
    (True, ((1, 2, 3, 2), (2, 1, 2, 3), dict(stride=(1, 2), groups=2, dilation=(2, 1)))),
    (True, ((1, 1, 2, 2, 3), (1, 2, 2, 2, 2), dict(stride=2, padding=((1, 0), 0, 1)))),
]


@pytest.mark.parametrize("transposed,case", GRADGRAD_CASES,
                         ids=[("T" if t else "") + _id(c) for t, c in GRADGRAD_CASES])
def test_gradgradcheck_every_double_backward(transposed, case):
    rng = _rng(case)
    kw = case[2]
    nd, x, w, b, dy = (_transpose_arrays if transposed else _conv_arrays)(case, rng)
    backward = (T_BACKWARD if transposed else BACKWARD)[nd]
    double = (T_DOUBLE if transposed else DOUBLE)[nd]
    report = gradgradcheck(
        lambda dy, x, w, b: backward(dy, x, w, b, **kw),
        lambda g_dx, g_dw, g_db, dy, x, w, b: (*double(g_dx, g_dw, g_db, dy, x, w, b, **kw),
                                               None),
        {"dy": dy, "x": x, "w": w, "b": b})
    assert report.passed, str(report)
    assert [r.name for r in report.inputs] == ["dy", "x", "w", "b"]


def test_gradgradcheck_catches_a_wrong_double_backward():
    case = GRADGRAD_CASES[0][1]
    rng = _rng(case)
    nd, x, w, b, dy = _conv_arrays(case, rng)
    kw = case[2]

    def wrong(g_dx, g_dw, g_db, dy, x, w, b):       # g_w from the wrong pair
        g_dy, g_x, g_w = cg.conv1d_double_backward(g_dx, g_dw, g_db, dy, x, w, b, **kw)
        return g_dy, g_x, g_w[:, :, ::-1], None

    report = gradgradcheck(lambda dy, x, w, b: cg.conv1d_backward(dy, x, w, b, **kw), wrong,
                           {"dy": dy, "x": x, "w": w, "b": b})
    assert not report.passed and not report["w"].passed and report["x"].passed


def test_gradgradcheck_checks_its_arguments():
    x, w = np.zeros((1, 1, 4)), np.zeros((1, 1, 2))
    dy = np.zeros((1, 1, 3))
    backward = lambda dy, x, w: cg.conv1d_backward(dy, x, w)[:2]          # noqa: E731
    with pytest.raises(TypeError, match="float64"):
        gradgradcheck(backward, None, {"dy": dy.astype(np.float32), "x": x, "w": w})
    with pytest.raises(ValueError, match="grad_outputs has 1 entries"):
        gradgradcheck(backward, None, {"dy": dy, "x": x, "w": w}, grad_outputs=[x])
    with pytest.raises(ValueError, match=r"grad_outputs\[1\] has shape \(1, 1, 3\)"):
        gradgradcheck(backward, None, {"dy": dy, "x": x, "w": w}, grad_outputs=[x, dy])
    with pytest.raises(ValueError, match="returned 2 gradients for 3 inputs"):
        gradgradcheck(backward, lambda g_dx, g_dw, dy, x, w: (dy, x),
                      {"dy": dy, "x": x, "w": w})


# ----------------------------------------------------------------------------------------
# float32, unbatched, errors


def test_float32_kept_and_close_to_float64():
    case = CONV_CASES[1]
    rng = _rng(case)
    nd, x, w, b, dy = _conv_arrays(case, rng)
    g = [rng.standard_normal(a.shape) for a in (x, w, b)]
    exact = DOUBLE[nd](*g, dy, x, w, b, **case[2])
    single = DOUBLE[nd](*(a.astype(np.float32) for a in (*g, dy, x, w, b)), **case[2])
    for a, ref in zip(single, exact):
        assert a.dtype == np.float32 and rel_err(a, ref) < 1e-5
    case = TRANSPOSE_CASES[0]
    nd, x, w, b, dy = _transpose_arrays(case, rng)
    g = [rng.standard_normal(a.shape) for a in (x, w, b)]
    exact = T_DOUBLE[nd](*g, dy, x, w, b, **case[2])
    single = T_DOUBLE[nd](*(a.astype(np.float32) for a in (*g, dy, x, w, b)), **case[2])
    for a, ref in zip(single, exact):
        assert a.dtype == np.float32 and rel_err(a, ref) < 1e-5


@pytest.mark.parametrize("transposed", [False, True])
def test_unbatched_double_backward_is_the_batch_of_one(transposed):
    case = (TRANSPOSE_CASES if transposed else CONV_CASES)[1]
    rng = _rng(case)
    nd, x, w, b, dy = (_transpose_arrays if transposed else _conv_arrays)(case, rng)
    x, dy = x[:1], dy[:1]
    g = [rng.standard_normal(a.shape) for a in (x, w, b)]
    double = (T_DOUBLE if transposed else DOUBLE)[nd]
    batched = double(*g, dy, x, w, b, **case[2])
    single = double(g[0][0], g[1], g[2], dy[0], x[0], w, b, **case[2])
    for a, ref in zip(single, (batched[0][0], batched[1][0], batched[2])):
        assert a.shape == ref.shape and rel_err(a, ref) < 1e-12


def test_bad_second_order_arguments_are_named():
    x, w, b = np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3)), np.zeros(3)
    dy = np.zeros((1, 3, 3, 3))
    call = cg.conv2d_double_backward
    with pytest.raises(ValueError, match=r"g_db was given but b is None"):
        call(None, None, np.zeros(3), dy, x, w)
    with pytest.raises(ValueError, match=r"g_dx must have the shape of the backward's dx "
                                         r"\(1, 2, 5, 5\), got \(1, 2, 5, 4\)"):
        call(np.zeros((1, 2, 5, 4)), None, None, dy, x, w, b)
    with pytest.raises(ValueError, match=r"g_dw must have the shape of w \(3, 2, 3, 3\)"):
        call(None, np.zeros((3, 2, 3)), None, dy, x, w, b)
    with pytest.raises(ValueError, match=r"g_db must have the shape of b \(3,\), got \(4,\)"):
        call(None, None, np.zeros(4), dy, x, w, b)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(1, 3, 3, 3\)"):
        call(None, None, None, np.zeros((1, 3, 3, 2)), x, w, b)
    with pytest.raises(TypeError, match=r"g_dw has dtype complex128"):
        call(None, np.zeros((3, 2, 3, 3), complex), None, dy, x, w, b)
    with pytest.raises(ValueError, match=r"conv_transpose2d_double_backward: g_dx must have"):
        cg.conv_transpose2d_double_backward(np.zeros((1, 3, 3, 2)), None, None, x, dy, w)


# ----------------------------------------------------------------------------------------
# What users do with it: the input-gradient penalty and a Hessian-vector product


def _critic_and_penalty(x, w, b, v):
    """D(x) = sum(v * tanh(conv2d(x, w) + b)) and the R1 / WGAN-GP penalty ||dD/dx||^2,
    with the gradient of the penalty with respect to x, w and b (as in the README)."""
    kw = dict(stride=2, padding=1)
    y = cg.conv2d(x, w, b, **kw)
    t = np.tanh(y)
    dy = v * (1 - t**2)                                  # dD/dy
    dx, _, _ = cg.conv2d_backward(dy, x, w, b, **kw)     # dD/dx
    penalty = np.sum(dx**2)
    # the penalty depends on w directly (dx = A(w)^T dy) and through dy = v (1 - tanh^2(y))
    g_dy, g_x, g_w = cg.conv2d_double_backward(2 * dx, None, None, dy, x, w, b, **kw)
    g_y = g_dy * v * (-2 * t * (1 - t**2))               # d(dy)/dy, elementwise
    dx2, dw2, db2 = cg.conv2d_backward(g_y, x, w, b, **kw)
    return penalty, g_x + dx2, g_w + dw2, db2


def test_input_gradient_penalty_matches_torch():
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)) * 0.5
    b, v = rng.standard_normal(4), rng.standard_normal((2, 4, 4, 3))
    penalty, grad_x, grad_w, grad_b = _critic_and_penalty(x, w, b, v)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    critic = (torch.tensor(v) * torch.tanh(torch.nn.functional.conv2d(
        tx, tw, tb, stride=2, padding=1))).sum()
    (tdx,) = torch.autograd.grad(critic, tx, create_graph=True)
    tpenalty = (tdx**2).sum()
    tgrads = torch.autograd.grad(tpenalty, (tx, tw, tb))
    assert abs(penalty - tpenalty.item()) <= 1e-10 * abs(penalty)
    for ours, ref in zip((grad_x, grad_w, grad_b), tgrads):
        assert rel_err(ours, ref.numpy()) < 1e-10


def test_hessian_vector_product_matches_torch():
    """H v for L(w) = sum(v_y * tanh(conv1d(x, w))), H the Hessian with respect to w:
    d/dw <dL/dw, u> = g_w + (the chain through dy), both from the double backward."""
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((3, 2, 9)), rng.standard_normal((4, 2, 3)) * 0.5
    u = rng.standard_normal(w.shape)                     # the direction
    kw = dict(stride=2, dilation=2, padding="same")
    y = cg.conv1d(x, w, **kw)
    v = rng.standard_normal(y.shape)
    t = np.tanh(y)
    dy = v * (1 - t**2)
    g_dy, _, g_w = cg.conv1d_double_backward(None, u, None, dy, x, w, **kw)
    _, dw2, _ = cg.conv1d_backward(g_dy * v * (-2 * t * (1 - t**2)), x, w, **kw)
    hvp = g_w + dw2
    tx, tw = torch.tensor(x), torch.tensor(w, requires_grad=True)
    loss = (torch.tensor(v) * torch.tanh(torch_conv_graph(tx, tw, None, **kw))).sum()
    (grad,) = torch.autograd.grad(loss, tw, create_graph=True)
    (thvp,) = torch.autograd.grad((grad * torch.tensor(u)).sum(), tw)
    assert rel_err(hvp, thvp.numpy()) < 1e-10


# ----------------------------------------------------------------------------------------
# Garbage in: only ValueError or TypeError come out

_garbage = st.one_of(st.none(), st.integers(-2, 3), st.floats(width=32), st.text(max_size=3),
                     st.sampled_from([np.zeros(()), np.zeros((2, 3)), np.zeros((1, 2, 5, 5)),
                                      np.zeros((4, 2, 3, 3)), np.zeros((1, 4, 3, 3)),
                                      np.zeros(4), np.zeros(3), np.zeros((1, 2, 5, 5), complex),
                                      np.zeros((2, 5, 5)), np.zeros((4, 3, 3))]))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_double_backward_garbage_raises_only_value_or_type_errors(data):
    function = data.draw(st.sampled_from([cg.conv2d_double_backward,
                                          cg.conv_transpose2d_double_backward]))
    args = [data.draw(_garbage) for _ in range(7)]
    keywords = {name: data.draw(st.one_of(_garbage, st.sampled_from(
        ["same", "valid", "reflect", "circular", 1, 2, (1, (0, 1))])))
        for name in data.draw(st.sets(st.sampled_from(["stride", "padding", "dilation",
                                                        "groups", "algorithm"])))}
    if function is cg.conv2d_double_backward and data.draw(st.booleans()):
        keywords["padding_mode"] = data.draw(st.one_of(_garbage, st.sampled_from(MODES)))
    try:
        function(*args, **keywords)
    except (ValueError, TypeError):
        pass


MODES = ["zeros", "reflect", "replicate", "circular"]
