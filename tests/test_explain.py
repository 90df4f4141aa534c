"""convgrad.explain: the symbolic derivation against the hand derivation, the identities of
docs/math.md, the reference engine, convgrad's backward and PyTorch float64 autograd."""
from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

import convgrad as cg  # noqa: E402
from convgrad.engine import reference  # noqa: E402
from convgrad.explain import (conv_identities, correlate, derive,  # noqa: E402
                              naive_identities)
from convgrad.explain.identities import Identity  # noqa: E402

S = sp.symbols


def same(a, b) -> bool:
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0


# ----------------------------------------------------------------------------------------
# The hand derivations


def test_1d_hand_derivation():
    d = derive((4,), (2,))
    x1, x2, x3, x4, w1, w2, b, dy1, dy2, dy3 = S("x1 x2 x3 x4 w1 w2 b dy1 dy2 dy3")
    assert d.dx[1] == w2 * dy1 + w1 * dy2            # the hand derivation, exactly
    assert same(d.dx[1], w2 * dy1 + w1 * dy2)
    assert list(d.y) == [b + w1 * x1 + w2 * x2, b + w1 * x2 + w2 * x3, b + w1 * x3 + w2 * x4]
    assert list(d.dx) == [w1 * dy1, w2 * dy1 + w1 * dy2, w2 * dy2 + w1 * dy3, w2 * dy3]
    assert list(d.dw) == [x1 * dy1 + x2 * dy2 + x3 * dy3, x2 * dy1 + x3 * dy2 + x4 * dy3]
    assert d.db == dy1 + dy2 + dy3
    assert d.x.shape == (4,) and d.w.shape == (2,) and d.dy.shape == (3,)
    assert d.jacobian_x == sp.Matrix([[w1, w2, 0, 0], [0, w1, w2, 0], [0, 0, w1, w2]])
    assert d.jacobian_w == sp.Matrix([[x1, x2], [x2, x3], [x3, x4]])
    # the chain rule, as matrices: dx = J^T dy
    dy = sp.Matrix([dy1, dy2, dy3])
    assert sp.expand(d.jacobian_x.T * dy - sp.Matrix(list(d.dx))) == sp.zeros(4, 1)


def test_2d_hand_derivation():
    d = derive((3, 3), (2, 2))
    x11, x12, x22, x23, x32, x33 = S("x11 x12 x22 x23 x32 x33")
    w11, w12, w21, w22, b = S("w11 w12 w21 w22 b")
    dy11, dy12, dy21, dy22 = S("dy11 dy12 dy21 dy22")
    assert d.y.shape == (2, 2) and d.dx.shape == (3, 3) and d.dw.shape == (2, 2)
    assert same(d.y[0, 1], b + w11 * x12 + w12 * S("x13") + w21 * x22 + w22 * x23)
    assert same(d.dx[0, 0], w11 * dy11)
    assert same(d.dx[1, 1], w22 * dy11 + w21 * dy12 + w12 * dy21 + w11 * dy22)
    assert same(d.dx[2, 1], w22 * dy21 + w21 * dy22)
    assert same(d.dw[1, 1], x22 * dy11 + x23 * dy12 + x32 * dy21 + x33 * dy22)
    assert same(d.db, dy11 + dy12 + dy21 + dy22)
    assert d.dx.tomatrix().shape == (3, 3)


def test_stride2_hand_derivation():
    d = derive((5,), (3,), stride=2)
    w1, w2, w3, dy1, dy2, x1, x3, x5 = S("w1 w2 w3 dy1 dy2 x1 x3 x5")
    assert d.y.shape == (2,)
    assert same(d.dx[2], w3 * dy1 + w1 * dy2)       # the one input both windows read
    assert same(d.dx[3], w2 * dy2)
    assert same(d.dw[0], x1 * dy1 + x3 * dy2)
    assert same(d.dw[2], x3 * dy1 + x5 * dy2)


def test_padding_leftover_and_dilation_by_hand():
    # x (5,), w (2,), stride 2, pad (1, 0): xp = [0, x1..x5], y1 = w2 x1, y2 = w1 x2 + w2 x3,
    # y3 = w1 x4 + w2 x5
    d = derive((5,), (2,), stride=2, padding=((1, 0),))
    x1, x2, x3, x4, x5, w1, w2, b = S("x1 x2 x3 x4 x5 w1 w2 b")
    assert list(d.y) == [b + w2 * x1, b + w1 * x2 + w2 * x3, b + w1 * x4 + w2 * x5]
    # leftover: x (6,), w (3,), stride 2 reads x1..x5 only, so dx6 = 0
    d = derive((6,), (3,), stride=2)
    assert d.dx[5] == 0 and d.check().holds
    # dilation 2: y1 = w1 x1 + w2 x3
    d = derive((4,), (2,), dilation=2)
    assert list(d.y) == [b + w1 * x1 + w2 * x3, b + w1 * x2 + w2 * x4]


def test_symbol_names():
    d = derive((10, 3), (2, 2))
    assert d.x[9, 2] == sp.Symbol("x_10_3")
    assert d.x[0, 0] == sp.Symbol("x11") and d.x[8, 2] == sp.Symbol("x93")
    assert d.dy[8, 1] == sp.Symbol("dy92")
    assert derive((12,), (2,)).dy[10] == sp.Symbol("dy_11")
    assert derive((3, 12), (1, 1)).x[0, 11] == sp.Symbol("x_1_12")
    names = {s.name for s in d.loss.free_symbols}
    assert {"b", "w11", "w22", "x_10_1", "dy91"} <= names


@pytest.mark.parametrize("padding, expected", [
    ("valid", ((0, 0),)), ("same", ((0, 1),)), (2, ((2, 2),)), (((1, 3),), ((1, 3),)),
])
def test_padding_forms_go_through_the_geometry(padding, expected):
    assert derive((4,), (2,), padding=padding).geometry.padding == expected


@pytest.mark.parametrize("args, kwargs, error, match", [
    (((2,), (3,)), {}, ValueError, "larger than the padded input"),
    (((4,), (2,)), {"stride": 0}, ValueError, "stride must be a positive int"),
    (((4,), (2,)), {"padding": "Same"}, ValueError, "did you mean 'same'"),
    (((4,), (2,)), {"padding": -1}, ValueError, "negative padding"),
    (((4, 4), (2,)), {}, ValueError, "as many axes"),
    (((2, 2, 2), (1, 1, 1)), {}, ValueError, r"\(L,\) for 1-D or \(H, W\)"),
    (((0,), (1,)), {}, ValueError, "positive int"),
    (((4.0,), (2,)), {}, TypeError, "positive int"),
])
def test_invalid_cases_raise_the_geometry_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        derive(*args, **kwargs)


# ----------------------------------------------------------------------------------------
# The identities of docs/math.md

GEOMETRIES = [
    ((4,), (2,), 1, 0, 1),
    ((5,), (3,), 2, 0, 1),
    ((6,), (3,), 2, 1, 1),                   # leftover column
    ((7,), (2,), 3, ((1, 2),), 1),
    ((5,), (2,), 1, "same", 1),
    ((6,), (3,), 2, "same", 1),
    ((7,), (3,), 1, 0, 2),
    ((8,), (3,), 2, ((2, 0),), 2),
    ((3,), (2,), 1, 3, 1),                   # padding larger than the kernel
    ((3, 3), (2, 2), 1, 0, 1),
    ((4, 4), (2, 2), 2, 1, 1),
    ((5, 4), (3, 2), (2, 1), ((1, 0), (0, 2)), (1, 2)),
    ((5, 5), (3, 3), 3, "same", 1),
    ((4, 5), (2, 3), 1, "same", (2, 1)),
    ((6, 5), (2, 2), (3, 2), 0, 1),          # leftover rows and columns
    ((4, 3), (1, 2), (2, 3), (2, (0, 1)), 1),
]


def _id(case):
    x, w, s, p, d = case
    return f"x{x}-w{w}-s{s}-p{p}-d{d}".replace(" ", "")


@pytest.fixture(scope="module", params=GEOMETRIES, ids=_id)
def derivation(request):
    x, w, s, p, d = request.param
    return derive(x, w, stride=s, padding=p, dilation=d)


def test_identity_holds(derivation):
    check = derivation.check()
    assert check.holds, str(check)
    assert bool(check) and not check.mismatches
    assert check.dx_identity.shape == derivation.dx.shape
    assert check.dw_identity.shape == derivation.dw.shape


def test_reference_engine_agrees_on_symbols(derivation):
    """A third route: convgrad.engine.reference's loops, run on object arrays of SymPy symbols."""
    g = derivation.geometry

    def objects(a):
        return np.array([a[i] for i in np.ndindex(*a.shape)], dtype=object).reshape(
            (1, 1) + tuple(a.shape))

    x, w, dy = objects(derivation.x), objects(derivation.w), objects(derivation.dy)
    y = reference.forward(x, w, g)[0, 0]
    dx = reference.grad_input(dy, w, g)[0, 0]
    dw = reference.grad_weight(dy, x, g)[0, 0]
    for got, want in ((y, derivation.y), (dx, derivation.dx), (dw, derivation.dw)):
        assert got.shape == tuple(want.shape)
        for i in np.ndindex(*got.shape):
            extra = derivation.b if want is derivation.y else 0
            assert sp.expand(got[i] + extra - want[i]) == 0


def test_stride1_recipe_is_right_at_stride1():
    for case in [((4,), (2,), 1, 0, 1), ((5, 5), (3, 3), 1, 1, 1), ((6,), (3,), 1, 0, 2)]:
        x, w, s, p, d = case
        assert derive(x, w, stride=s, padding=p, dilation=d).check(naive_identities).holds


@pytest.mark.parametrize("case", [((5,), (3,), 2, 0, 1), ((4, 4), (2, 2), 2, 1, 1),
                                  ((7,), (3,), 2, 1, 1)], ids=_id)
def test_stride1_recipe_fails_at_stride2(case):
    x, w, s, p, d = case
    check = derive(x, w, stride=s, padding=p, dilation=d).check(naive_identities)
    assert not check.holds and not bool(check)
    assert any(m.startswith("dx: the rule gives shape") for m in check.mismatches)
    assert "DOES NOT HOLD" in str(check)


def test_a_wrong_identity_of_the_right_shape_fails():
    """Forgetting the rotation keeps every shape and changes dx's numbers: caught."""
    def unrotated(x, w, dy, g):
        return conv_identities(x, w[::-1, ::-1] if w.ndim == 2 else w[::-1], dy, g)

    check = derive((3, 3), (2, 2)).check(unrotated)
    assert not check.holds
    assert any(m.startswith("dx") for m in check.mismatches)
    assert not any(m.startswith("dw") for m in check.mismatches)   # dw does not use w


def test_identity_steps_stride2():
    d = derive((5,), (3,), stride=2)
    ident = d.identity()
    assert isinstance(ident, Identity)
    dy1, dy2, w1, w3 = S("dy1 dy2 w1 w3")
    assert list(ident.dy_spread) == [dy1, 0, dy2]
    assert ident.dx_padding == ((2, 2),)
    assert list(ident.dy_full) == [0, 0, dy1, 0, dy2, 0, 0]
    assert list(ident.w_rotated) == [w3, S("w2"), w1]
    assert ident.dw_stride == (1,) and ident.dw_dilation == (2,)


def test_correlate_numbers():
    a, k = np.arange(6.0), np.array([1.0, -1.0])
    np.testing.assert_array_equal(correlate(a, k, (1,), (1,)), -np.ones(5))
    np.testing.assert_array_equal(correlate(a, k, (2,), (2,)), [-2.0, -2.0])
    assert correlate(a, np.ones(7), (1,), (1,)).shape == (0,)


# ----------------------------------------------------------------------------------------
# Numbers: the derived expressions against convgrad's backward and PyTorch float64

NUMERIC = [GEOMETRIES[i] for i in (0, 1, 2, 3, 5, 7, 9, 10, 11, 12, 14)]


@pytest.mark.parametrize("case", NUMERIC, ids=_id)
def test_numbers_match_convgrad_and_torch(case):
    helpers = pytest.importorskip("helpers")
    xs, ws, s, p, dil = case
    d = derive(xs, ws, stride=s, padding=p, dilation=dil)
    g = d.geometry
    rng = np.random.default_rng(len(xs) * 100 + sum(xs))
    x, w = rng.standard_normal(g.in_size), rng.standard_normal(g.kernel_size)
    b, dy = float(rng.standard_normal()), rng.standard_normal(g.out_size)
    got = d.evaluate(x, w, b, dy)

    nd = len(xs)
    backward = getattr(cg, f"conv{nd}d_backward")
    forward = getattr(cg, f"conv{nd}d")
    kw = dict(stride=s, padding=p, dilation=dil)
    y = forward(x[None, None], w[None, None], np.array([b]), **kw)[0, 0]
    dx, dw, db = backward(dy[None, None], x[None, None], w[None, None], np.array([b]), **kw)
    ty, tdx, tdw, tdb = helpers.torch_conv(x[None, None], w[None, None], np.array([b]),
                                           dy[None, None], **kw)
    for name, mine, ours, torch_value in [("y", got["y"], y, ty[0, 0]),
                                          ("dx", got["dx"], dx[0, 0], tdx[0, 0]),
                                          ("dw", got["dw"], dw[0, 0], tdw[0, 0]),
                                          ("db", got["db"], db[0], tdb[0])]:
        np.testing.assert_allclose(mine, ours, rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(mine, torch_value, rtol=1e-10, atol=1e-12, err_msg=name)
    # and the identity itself, run on the numbers
    ident = conv_identities(x, w, dy, g)
    np.testing.assert_allclose(ident.dx, dx[0, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ident.dw, dw[0, 0], rtol=1e-10, atol=1e-12)


def test_numeric_comparison_agrees():
    from convgrad.explain import compare_numerically
    comparison = compare_numerically(derive((4, 4), (3, 2), stride=(2, 1),
                                            padding=((1, 0), (0, 2)), dilation=(1, 2)))
    for name in ("dx", "dw", "db"):
        assert comparison.max_difference(name, "derived") < 1e-12
        assert comparison.max_difference(name, "backward") < 1e-12
        assert comparison.max_difference(name, "numerical") < 1e-7
    assert "max |numerical - identity|" in str(comparison)


def test_import_convgrad_needs_neither_sympy_nor_matplotlib():
    import subprocess
    import sys
    code = ("import sys, convgrad, convgrad.functional, convgrad.apps.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('sympy', 'matplotlib')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gradients_are_sympy_diff_of_the_loss():
    d = derive((4, 3), (2, 2), stride=(2, 1), padding=((1, 0), (0, 1)))
    for i in np.ndindex(4, 3):
        assert sp.expand(sp.diff(d.loss, d.x[i]) - d.dx[i]) == 0
    for k in np.ndindex(2, 2):
        assert sp.expand(sp.diff(d.loss, d.w[k]) - d.dw[k]) == 0
    flat_y = sp.Matrix([d.y[i] for i in np.ndindex(*d.y.shape)])
    assert d.jacobian_x == flat_y.jacobian([d.x[i] for i in np.ndindex(4, 3)])


# ----------------------------------------------------------------------------------------
# Transposed cases, terms and formulas (the structure the HTML explorer shows)


@pytest.mark.parametrize("x_shape, w_shape, kw", [
    ((3,), (3,), dict(stride=2, padding=1, output_padding=1)),
    ((4,), (2,), dict(stride=3, output_padding=2)),
    ((3,), (2,), dict(dilation=3, output_padding=2)),
    ((2, 3), (2, 2), dict(stride=(2, 1), padding=((1, 0), (0, 1)), output_padding=(1, 0))),
    ((3,), (3,), dict(stride=2, padding="same")),
])
def test_transposed_derivation_matches_convgrad(x_shape, w_shape, kw):
    d = derive(x_shape, w_shape, transposed=True, **kw)
    assert d.check().holds
    nd = len(x_shape)
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), 0.3
    y = getattr(cg, f"conv_transpose{nd}d")(x[None, None], w[None, None], np.array([b]), **kw)
    dy = rng.standard_normal(y.shape[2:])
    numbers = d.evaluate(x, w, b, dy)
    dx, dw, db = getattr(cg, f"conv_transpose{nd}d_backward")(
        dy[None, None], x[None, None], w[None, None], np.array([b]), **kw)
    np.testing.assert_allclose(numbers["y"], y[0, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(numbers["dx"], dx[0, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(numbers["dw"], dw[0, 0], rtol=1e-12, atol=1e-12)
    assert numbers["db"] == pytest.approx(db[0])
    if "output_padding" in kw:
        op = kw["output_padding"]
        assert d.output_padding == (op if isinstance(op, tuple) else (op,) * nd)


def test_terms_and_formula():
    d = derive((3, 3), (2, 2))
    assert d.formula("dx", (1, 1)) == "dx22 = w22\u00b7dy11 + w21\u00b7dy12 + w12\u00b7dy21 + w11\u00b7dy22"
    assert d.terms("dx", (0, 0)) == [(("w", (0, 0)), ("dy", (0, 0)))]
    assert d.formula("y", (0, 1)) == "y12 = b + w11\u00b7x12 + w12\u00b7x13 + w21\u00b7x22 + w22\u00b7x23"
    assert d.formula("db") == "db = dy11 + dy12 + dy21 + dy22"
    assert [t[1][1] for t in d.terms("dw", (1, 0))] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # terms reproduce the expression, and a leftover input has none
    d2 = derive((6,), (2,), stride=2, padding=((0, 1),))
    for j in range(6):
        expression = sum(sp.Symbol(f"w{k[0] + 1}") * sp.Symbol(f"dy{i[0] + 1}")
                         for (_, k), (_, i) in d2.terms("dx", (j,)))
        assert sp.expand(expression - d2.dx[j]) == 0
    big = derive((10,), (1,))
    assert big.formula("dx", (9,)) == "dx_10 = w1\u00b7dy_10"
    with pytest.raises(ValueError, match="expected one of"):
        d.terms("x", (0, 0))


def test_symbol_names_round_trip():
    from convgrad.explain.symbols import parse_symbol_name, symbol_name
    for stem, index in (("x", (9, 2)), ("dy", (0, 1)), ("w", (3,)), ("dy", (11,))):
        assert parse_symbol_name(symbol_name(stem, index), len(index)) == (stem, index)


def test_text_refuses_a_transposed_derivation():
    from convgrad.explain import text
    with pytest.raises(ValueError, match="explorer"):
        text(derive((3,), (2,), transposed=True))
