"""gradcheck must pass correct gradients and catch wrong ones, small and subtle."""
import numpy as np
import pytest

import convgrad as cg
from convgrad.gradcheck import gradcheck, numerical_gradient, rel_error

KW = dict(stride=2, padding=1)


def forward(x, w, b):
    return cg.conv2d(x, w, b, **KW)


def backward(dy, x, w, b):
    return cg.conv2d_backward(dy, x, w, b, **KW)


def _inputs(seed=0, size=5):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((2, 3, size, size)),
            "w": rng.standard_normal((4, 3, 3, 3)), "b": rng.standard_normal(4)}


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
def test_correct_backward_passes(mode):
    report = gradcheck(forward, backward, _inputs(), mode=mode)
    assert report.passed, str(report)
    assert [r.name for r in report.inputs] == ["x", "w", "b"]
    assert report["w"].max_rel_error < 1e-6


def _scaled_dw(dy, x, w, b):
    dx, dw, db = backward(dy, x, w, b)
    return dx, dw * 1.001, db


def _transposed_dw(dy, x, w, b):
    dx, dw, db = backward(dy, x, w, b)
    return dx, dw.transpose(0, 1, 3, 2), db         # kh and kw swapped: same shape


def _stride_one_dx(dy, x, w, b):
    """The popular blog recipe: dx as if the stride were 1 (dy not dilated), padded."""
    _, dw, db = backward(dy, x, w, b)
    dx = np.zeros_like(x)
    full = np.pad(dy, ((0, 0), (0, 0), (1, 1), (1, 1)))
    rot = w[:, :, ::-1, ::-1]
    for i in range(min(x.shape[2], full.shape[2] - 2)):
        for j in range(min(x.shape[3], full.shape[3] - 2)):
            dx[:, :, i, j] = np.einsum("nfhw,fchw->nc", full[:, :, i:i + 3, j:j + 3], rot)
    return dx, dw, db


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
@pytest.mark.parametrize("wrong,bad_input", [(_scaled_dw, "w"), (_transposed_dw, "w"),
                                             (_stride_one_dx, "x")])
def test_wrong_backward_is_caught(wrong, bad_input, mode):
    report = gradcheck(forward, wrong, _inputs(), mode=mode)
    assert not report.passed
    assert not report[bad_input].passed
    assert all(r.passed for r in report.inputs if r.name != bad_input)
    assert "FAILED" in str(report)


def test_worst_element_is_located():
    def one_wrong(dy, x, w, b):
        dx, dw, db = backward(dy, x, w, b)
        dw = dw.copy()
        dw[2, 1, 0, 2] += 1e-3
        return dx, dw, db

    report = gradcheck(forward, one_wrong, _inputs())
    assert report["w"].worst == (2, 1, 0, 2)
    assert abs(report["w"].analytic - report["w"].numeric - 1e-3) < 1e-6


def test_float64_is_enforced():
    inputs = _inputs()
    inputs["x"] = inputs["x"].astype(np.float32)
    with pytest.raises(TypeError, match="x is float32.*astype"):
        gradcheck(forward, backward, inputs)


def test_inputs_untouched_even_when_forward_raises():
    inputs = _inputs()
    originals = {k: v.copy() for k, v in inputs.items()}
    for v in inputs.values():
        v.flags.writeable = False
    calls = []

    def fragile(x, w, b):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("boom")
        return forward(x, w, b)

    with pytest.raises(RuntimeError):
        gradcheck(fragile, backward, inputs)
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], originals[k])
    assert gradcheck(forward, backward, inputs, mode="directional").passed   # read-only ok


def test_auto_picks_directional_for_large_inputs():
    report = gradcheck(forward, backward, _inputs(size=40), directions=2)
    assert {r.mode for r in report.inputs} == {"directional"}
    assert report.passed


def test_numerical_gradient_restores_exactly():
    a = np.random.default_rng(1).standard_normal((3, 3))
    before = a.copy()
    g = numerical_gradient(lambda: np.sin(a), a, np.ones((3, 3)))
    np.testing.assert_array_equal(a, before)
    np.testing.assert_allclose(g, np.cos(a), rtol=1e-8)
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
