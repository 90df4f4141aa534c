"""docs/math.md says what convgrad does: its headings are the fixed anchors, its Python
blocks run (doctest), its worked examples' numbers are convgrad's, and each formula is
recomputed here against convgrad's backward (itself tested against PyTorch float64 and
central differences) and, for 'same' at stride 1, against PyTorch."""
from __future__ import annotations

import doctest
import re
from pathlib import Path

import numpy as np
import pytest

import convgrad as cg
from convgrad.engine.reference import dilate, pad, rot180

DOC = Path(__file__).resolve().parents[1] / "docs" / "math.md"
TEXT = DOC.read_text(encoding="utf-8")

ANCHORS = ["notation", "the-forward-index-map", "output-size",
           "padding-valid-same-and-output_padding", "the-bias-gradient-db",
           "the-weight-gradient-dw", "the-input-gradient-dx", "leftover-rows-and-columns",
           "groups", "transposed-convolution-is-the-adjoint", "second-order-gradients",
           "padding-modes", "worked-example-in-1-d", "worked-example-in-2-d",
           "checking-gradients"]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _section(anchor: str) -> str:
    parts = re.split(r"^## (.+)$", TEXT, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2]):
        if _anchor(heading) == anchor:
            return body
    raise AssertionError(f"no section #{anchor}")


def _bmatrices(text: str) -> list[np.ndarray]:
    """Every \\begin{bmatrix} ... \\end{bmatrix} of the text as a float array."""
    out = []
    for body in re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", text, flags=re.S):
        rows = [r for r in body.split("\\\\") if r.strip()]
        out.append(np.array([[float(v) for v in r.split("&")] for r in rows]))
    return out


def _contains(matrices, expected) -> bool:
    expected = np.atleast_2d(np.asarray(expected, dtype=float))
    return any(m.shape == expected.shape and np.array_equal(m, expected) for m in matrices)


def test_headings_are_the_fixed_anchors_in_order():
    headings = re.findall(r"^## (.+)$", TEXT, flags=re.M)
    assert [_anchor(h) for h in headings] == ANCHORS


def test_internal_links_point_at_headings():
    for anchor in re.findall(r"\]\(#([\w-]+)\)", TEXT):
        assert anchor in ANCHORS, anchor


def test_python_blocks_run_as_doctests():
    blocks = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
    assert len(blocks) >= 2
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE)
    globs: dict = {}
    for k, block in enumerate(blocks):
        test = parser.get_doctest(block, globs, f"math.md block {k}", str(DOC), 0)
        runner.run(test, clear_globs=False)
        globs = test.globs
    assert runner.summarize(verbose=False).failed == 0


def test_worked_example_1d_numbers_are_convgrads():
    x, w, b = np.array([[[1., 2, 3, 4, 5]]]), np.array([[[1., -1, 2]]]), np.array([0.5])
    dy = np.array([[[1., -2, 3]]])
    kw = dict(stride=2, padding=1)
    y = cg.conv1d(x, w, b, **kw)
    dx, dw, db = cg.conv1d_backward(dy, x, w, b, **kw)
    text = _section("worked-example-in-1-d")
    matrices = _bmatrices(text)
    assert _contains(matrices, dx[0, 0]) and _contains(matrices, dw[0, 0])
    for value in y[0, 0]:
        assert f"= {value:g}" in text
    assert f"db = 1 - 2 + 3 = {db[0]:g}" in text
    # the intermediate arrays written in the text
    spread = dilate(dy, (2,))[0, 0]
    assert "dy_s = [" + ", ".join(f"{v:g}" for v in spread) + "]" in text
    full = pad(dilate(dy, (2,)), [(1, 1)])[0, 0]
    assert "[" + ", ".join(f"{v:g}" for v in full) + "]" in text
    assert "[" + ", ".join(f"{v:g}" for v in rot180(w)[0, 0]) + "]" in text


def test_worked_example_2d_numbers_are_convgrads():
    x = np.arange(1., 26).reshape(1, 1, 5, 5)
    w = np.array([[[[1., 2], [-1, 0]]]])
    dy = np.array([[[[1., -1], [2, 3]]]])
    y = cg.conv2d(x, w, stride=2)
    dx, dw, _ = cg.conv2d_backward(dy, x, w, stride=2)
    matrices = _bmatrices(_section("worked-example-in-2-d"))
    for expected in (w[0, 0], y[0, 0], dy[0, 0], rot180(w)[0, 0], dilate(dy, (2, 2))[0, 0],
                     dx[0, 0], dw[0, 0]):
        assert _contains(matrices, expected), expected
    assert not dx[0, 0, 4].any() and not dx[0, 0, :, 4].any()      # the leftover row/col


# ----------------------------------------------------------------------------------------
# The formulas, recomputed

GEOMETRIES = [  # (n, k, s, d, lo, hi)
    (5, 3, 2, 1, 1, 1), (7, 2, 3, 1, 1, 2), (8, 3, 2, 2, 2, 0), (6, 3, 1, 1, 0, 0),
    (9, 3, 3, 2, 0, 4), (4, 1, 2, 1, 0, 0), (10, 4, 3, 1, 2, 1), (3, 3, 1, 3, 3, 3),
]


def _sizes(n, k, s, d, lo, hi):
    kd, o = d * (k - 1) + 1, (n + lo + hi - d * (k - 1) - 1) // s + 1
    return kd, o, s * (o - 1) + 1


def _rand(rng, *shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("n, k, s, d, lo, hi", GEOMETRIES)
def test_output_size_and_leftover(n, k, s, d, lo, hi):
    kd, o, od = _sizes(n, k, s, d, lo, hi)
    x, w = np.ones((1, 1, n)), np.ones((1, 1, k))
    assert cg.conv1d(x, w, stride=s, dilation=d, padding=((lo, hi),)).shape[-1] == o
    r = n + lo + hi - (od + kd - 1)
    assert 0 <= r < s
    # leftover input rows (never read) get zero gradient
    dy = _rand(np.random.default_rng(n), 1, 1, o)
    dx = cg.conv1d_backward(dy, x, w, stride=s, dilation=d, padding=((lo, hi),))[0]
    first_unread = od + kd - 1 - lo
    if first_unread < n:
        assert not dx[..., first_unread:].any()


@pytest.mark.parametrize("n, k, s, d, lo, hi", GEOMETRIES)
def test_dx_and_dw_rules_with_channels(n, k, s, d, lo, hi):
    rng = np.random.default_rng(7 * n + k)
    N, C, F = 2, 3, 4
    x, w = _rand(rng, N, C, n), _rand(rng, F, C, k)
    kw = dict(stride=s, dilation=d, padding=((lo, hi),))
    kd, o, od = _sizes(n, k, s, d, lo, hi)
    dy = _rand(rng, N, F, o)
    dx_ref, dw_ref, _ = cg.conv1d_backward(dy, x, w, **kw)
    # dx: spread by s, pad (kd-1-lo, n-od+lo), correlate with rot180(w), F and C swapped
    full = pad(dilate(dy, (s,)), [(kd - 1 - lo, n - od + lo)])        # (N, F, n + kd - 1)
    dx = cg.conv1d(full, rot180(w).swapaxes(0, 1), dilation=d)         # (N, C, n)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    assert n - od + lo == (kd - 1 - hi) + (n + lo + hi - (od + kd - 1))
    # dw: swap N and C / N and F, stride d, dilation s, padding (lo, od+kd-1-n-lo) = hi - r
    after = od + kd - 1 - n - lo
    x_cut = pad(x.swapaxes(0, 1), [(lo, after)])                       # (C, N, od + kd - 1)
    dw = cg.conv1d(x_cut, dy.swapaxes(0, 1), stride=d, dilation=s).swapaxes(0, 1)  # (F, C, k)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-12, atol=1e-12)


def test_db_and_groups():
    rng = np.random.default_rng(3)
    x, w, b = _rand(rng, 2, 4, 7), _rand(rng, 6, 2, 3), _rand(rng, 6)
    dy = _rand(rng, 2, 6, 4)
    kw = dict(stride=2, padding=1, groups=2)
    dx, dw, db = cg.conv1d_backward(dy, x, w, b, **kw)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2)), rtol=1e-13)
    for g in range(2):    # each block an independent convolution
        dxg, dwg, _ = cg.conv1d_backward(dy[:, 3 * g:3 * g + 3], x[:, 2 * g:2 * g + 2],
                                         w[3 * g:3 * g + 3], stride=2, padding=1)
        np.testing.assert_allclose(dx[:, 2 * g:2 * g + 2], dxg, rtol=1e-12)
        np.testing.assert_allclose(dw[3 * g:3 * g + 3], dwg, rtol=1e-12)


@pytest.mark.parametrize("n, k, s, d", [(6, 3, 2, 1), (5, 3, 2, 1), (7, 4, 1, 1),
                                         (10, 3, 3, 2), (6, 2, 1, 3), (9, 5, 4, 1)])
def test_same_padding_conventions(n, k, s, d):
    o = -(-n // s)
    total = max(0, (o - 1) * s + d * (k - 1) + 1 - n)
    upper = (total // 2, total - total // 2)
    lower = (total - total // 2, total // 2)
    rng = np.random.default_rng(n + k)
    x, w = _rand(rng, 1, 1, n), _rand(rng, 1, 1, k)
    same = cg.conv1d(x, w, stride=s, dilation=d, padding="same")
    assert same.shape[-1] == o
    np.testing.assert_array_equal(same, cg.conv1d(x, w, stride=s, dilation=d,
                                                  padding=(upper,)))
    assert cg.conv1d(x, w, stride=s, dilation=d, padding=(lower,)).shape[-1] == o
    if s == 1:
        assert total == d * (k - 1)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_same_at_stride_1_is_pytorchs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for k, d in ((4, 1), (3, 2), (2, 3), (5, 1)):    # odd totals put the extra pixel after
        x, w = _rand(rng, 1, 2, 9), _rand(rng, 3, 2, k)
        expected = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w),
                                              padding="same", dilation=d).numpy()
        np.testing.assert_allclose(cg.conv1d(x, w, padding="same", dilation=d), expected,
                                   rtol=1e-10, atol=1e-12)
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv1d(torch.zeros(1, 1, 6), torch.zeros(1, 1, 3), stride=2,
                                   padding="same")
    assert "same" in TEXT and "1 only" in TEXT


@pytest.mark.parametrize("o, k, s, d, lo, hi", [(3, 3, 2, 1, 1, 1), (4, 2, 3, 1, 0, 2),
                                                 (2, 3, 2, 2, 1, 0), (3, 2, 1, 1, 0, 0)])
def test_output_padding_chooses_among_input_sizes(o, k, s, d, lo, hi):
    kd = d * (k - 1) + 1
    n0 = (o - 1) * s + kd - lo - hi
    rng = np.random.default_rng(o * k)
    w, dy = _rand(rng, 2, 3, k), _rand(rng, 1, 2, o)
    for extra in range(s):
        n = n0 + extra
        x = _rand(rng, 1, 3, n)
        kw = dict(stride=s, dilation=d, padding=((lo, hi),))
        assert cg.conv1d(x, w, **kw).shape[-1] == o                    # same o for every n
        dx = cg.conv1d_backward(dy, x, w, **kw)[0]
        dx_t = cg.conv_transpose1d(dy, w, output_padding=extra, **kw)
        assert dx_t.shape[-1] == n == (o - 1) * s - lo - hi + d * (k - 1) + extra + 1
        np.testing.assert_allclose(dx_t, dx, rtol=1e-12, atol=1e-12)
    assert cg.conv1d(_rand(rng, 1, 3, n0 + s), w, stride=s, dilation=d,
                     padding=((lo, hi),)).shape[-1] == o + 1
    if d > s:     # accepted below max(s, d)
        cg.conv_transpose1d(dy, w, stride=s, dilation=d, padding=((lo, hi),),
                            output_padding=d - 1)


def test_transposed_is_the_adjoint_and_its_gradients():
    rng = np.random.default_rng(5)
    kw = dict(stride=2, padding=((1, 0),), dilation=2)
    w = _rand(rng, 3, 2, 3)                    # forward (F, C, k) = transposed (C_in, C_out, k)
    u = _rand(rng, 2, 2, 9)                    # forward input
    v = _rand(rng, 2, 3, cg.conv1d(u, w, **kw).shape[-1])
    lhs = np.sum(cg.conv1d(u, w, **kw) * v)
    rhs = np.sum(u * cg.conv_transpose1d(v, w, output_padding=1, **kw))
    assert cg.conv_transpose1d(v, w, output_padding=1, **kw).shape == u.shape
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    # its gradients: dv = A dz (a forward convolution); dw[cin, cout, k] = sum v dz_p[s i + d k]
    b = _rand(rng, 2)
    dz = _rand(rng, *u.shape)
    dv, dw, db = cg.conv_transpose1d_backward(dz, v, w, b, output_padding=1, **kw)
    np.testing.assert_allclose(dv, cg.conv1d(dz, w, **kw), rtol=1e-12)
    dz_p = pad(dz, [(1, 0)])
    o = v.shape[-1]
    expected = np.zeros_like(w)
    for k in range(3):
        window = dz_p[:, :, 2 * k: 2 * k + 2 * (o - 1) + 1: 2]         # (N, C_out, o)
        expected[:, :, k] = np.einsum("nci,nfi->cf", v, window)
    np.testing.assert_allclose(dw, expected, rtol=1e-12)
    np.testing.assert_allclose(db, dz.sum(axis=(0, 2)), rtol=1e-12)
