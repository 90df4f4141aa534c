"""dtype is kept, inputs are never modified, odd memory layouts work, budgets chunk."""
import numpy as np
import pytest

import convgrad as cg
from helpers import rel_err, torch_conv

FUNCS = [
    # (forward, backward, x shape, w shape, bias length, keywords)
    (cg.conv2d, cg.conv2d_backward, (2, 4, 7, 6), (6, 2, 3, 3), 6, dict(stride=2, groups=2)),
    (cg.conv1d, cg.conv1d_backward, (2, 3, 9), (4, 3, 3), 4, dict(padding="same")),
    (cg.conv3d, cg.conv3d_backward, (1, 2, 4, 4, 5), (3, 2, 2, 2, 3), 3, dict(padding=1)),
    (cg.conv_transpose2d, cg.conv_transpose2d_backward, (2, 4, 3, 4), (4, 3, 3, 3), 6,
     dict(stride=2, groups=2, output_padding=1)),
    (cg.conv_transpose1d, cg.conv_transpose1d_backward, (2, 3, 5), (3, 2, 4), 2,
     dict(stride=3)),
]
IDS = ["conv2d", "conv1d", "conv3d", "conv_transpose2d", "conv_transpose1d"]


def _arrays(case, dtype, seed=0):
    _, _, xs, ws, nb, _ = case
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype),
            rng.standard_normal(nb).astype(dtype))


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("case", FUNCS, ids=IDS)
def test_dtype_kept(case, dtype, algorithm):
    forward, backward, *_, kw = case
    x, w, b = _arrays(case, dtype)
    y = forward(x, w, b, algorithm=algorithm, **kw)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, dw, db = backward(dy, x, w, b, algorithm=algorithm, **kw)
    assert (y.dtype, dx.dtype, dw.dtype, db.dtype) == (np.dtype(dtype),) * 4
    # float16 is computed in float32: close to the float64 result of the same numbers
    if dtype == np.float16:
        y64 = forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **kw)
        assert rel_err(y, y64) < 5e-3


def test_mixed_dtypes_follow_numpy_promotion():
    x, w, b = _arrays(FUNCS[0], np.float32)
    kw = FUNCS[0][5]
    y = cg.conv2d(x, w.astype(np.float64), b, **kw)
    assert y.dtype == np.float64
    dx, dw, db = cg.conv2d_backward(y, x, w.astype(np.float64), b, **kw)
    # each gradient keeps its own input's dtype, computed in the promoted precision
    assert (dx.dtype, dw.dtype, db.dtype) == (np.float32, np.float64, np.float32)
    assert cg.conv2d(x, w, b.astype(np.float16), **kw).dtype == np.float32


def test_integers_and_lists_are_computed_in_float64():
    x = np.arange(2 * 3 * 5 * 5).reshape(2, 3, 5, 5)
    w = np.ones((2, 3, 3, 3), dtype=np.int32)
    y = cg.conv2d(x, w)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, cg.conv2d(x.astype(float), w.astype(float)))
    assert cg.conv1d([[[1, 2, 3, 4]]], [[[1.0, -1.0]]]).tolist() == [[[-1.0, -1.0, -1.0]]]


@pytest.mark.parametrize("int_dtype", [np.uint8, np.int16, np.int32, np.int64])
@pytest.mark.parametrize("float_dtype", [np.float16, np.float32, np.float64])
def test_integers_meeting_floats_follow_numpy_promotion(int_dtype, float_dtype):
    """A uint8 image with float32 filters stays float32, as np.result_type says; the
    values are those of the image converted first, and the gradients keep each input's
    dtype."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 100, (2, 3, 6, 5)).astype(int_dtype)       # (N, C, H, W)
    w = rng.standard_normal((4, 3, 3, 3)).astype(float_dtype)
    b = rng.standard_normal(4).astype(float_dtype)
    expected = np.result_type(int_dtype, float_dtype)
    y = cg.conv2d(image, w, b, stride=2, padding=1)
    assert y.dtype == expected
    converted = cg.conv2d(image.astype(expected), w, b, stride=2, padding=1)
    np.testing.assert_array_equal(y, converted)
    dy = rng.standard_normal(y.shape).astype(np.int64)                  # integer dy too
    dx, dw, db = cg.conv2d_backward(dy, image, w, b, stride=2, padding=1)
    assert (dx.dtype, dw.dtype, db.dtype) == (expected, float_dtype, float_dtype)
    ref = cg.conv2d_backward(dy.astype(float), image.astype(float), w.astype(float),
                             b.astype(float), stride=2, padding=1)
    tol = {np.float16: 5e-2, np.float32: 1e-5, np.float64: 1e-12}[np.dtype(expected).type]
    np.testing.assert_allclose(dx, ref[0], rtol=tol, atol=tol * np.abs(ref[0]).max())


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("case", FUNCS, ids=IDS)
def test_inputs_never_modified_and_read_only_ok(case, algorithm):
    forward, backward, *_, kw = case
    arrays = _arrays(case, np.float64)
    y0 = forward(*arrays, **kw)
    dy = np.random.default_rng(2).standard_normal(y0.shape)
    arrays = arrays + (dy,)
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False
    x, w, b, dy = arrays
    y = forward(x, w, b, algorithm=algorithm, **kw)
    grads = backward(dy, x, w, b, algorithm=algorithm, **kw)
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    assert all(g.flags.writeable for g in (y, *grads))   # results are the caller's to keep


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
def test_non_contiguous_inputs(algorithm):
    rng = np.random.default_rng(3)
    big_x = rng.standard_normal((3, 8, 9, 2 * 7))
    x = big_x[::2, 1::2, :, ::2].transpose(0, 1, 3, 2)        # (2, 4, 7, 9), strided view
    w = np.asfortranarray(rng.standard_normal((6, 2, 3, 2)))
    b = rng.standard_normal(12)[::2]
    kw = dict(stride=(2, 1), padding=((1, 0), (0, 2)), groups=2)
    y = cg.conv2d(x, w, b, algorithm=algorithm, **kw)
    dy = rng.standard_normal(y.shape)
    dy_view = np.broadcast_to(dy[:1], dy.shape)              # zero-stride upstream gradient
    truth = torch_conv(np.ascontiguousarray(x), np.ascontiguousarray(w), b.copy(),
                       np.ascontiguousarray(dy_view), **kw)
    ours = (y, *cg.conv2d_backward(dy_view, x, w, b, algorithm=algorithm, **kw))
    for a, t in zip(ours, truth):
        assert rel_err(a, t) < 1e-10


def test_empty_batch_gives_empty_output_and_zero_gradients():
    x, w, b = np.zeros((0, 3, 5, 5)), np.ones((4, 3, 3, 3)), np.ones(4)
    y = cg.conv2d(x, w, b, stride=2)
    assert y.shape == (0, 4, 2, 2)
    dx, dw, db = cg.conv2d_backward(y, x, w, b, stride=2)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros_like(b))


def test_memory_budget_chunks_without_changing_results():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((5, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3))
    y = cg.conv2d(x, w, stride=2, padding=1)
    dy = rng.standard_normal(y.shape)
    grads = cg.conv2d_backward(dy, x, w, stride=2, padding=1)
    # one sample of the input gradient (col2im at stride 2), the largest: C*K rows x P
    # positions of columns, dy's transposed copy (F x P), and NumPy's buffers for the
    # strided additions (3 x the (N, C, P) operand, smaller than np.getbufsize());
    # the forward (columns and product, 620 elements a sample) runs two samples a chunk
    one_sample = (3 * 9 * 20 + 4 * 20 + 3 * 5 * 3 * 20) * 8
    with cg.memory_budget(one_sample):      # forces small chunks
        assert cg.get_memory_budget() == one_sample
        np.testing.assert_allclose(cg.conv2d(x, w, stride=2, padding=1), y, rtol=1e-13)
        dx, dw, db = cg.conv2d_backward(dy, x, w, stride=2, padding=1)
        np.testing.assert_allclose(dx, grads[0], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(dw, grads[1], rtol=1e-13, atol=1e-13)
        assert db is None and grads[2] is None
    assert cg.get_memory_budget() != one_sample


def test_memory_error_names_the_size_before_allocating():
    x, w = np.zeros((2, 64, 32, 32)), np.zeros((8, 64, 3, 3))
    with cg.memory_budget("1K"):
        # one sample: 576 rows x 1024 columns (4.5 MiB) and the product 8 x 1024 (64 KiB)
        with pytest.raises(MemoryError, match=r"needs 4\.6 MiB .* budget of 1\.0 KiB"):
            cg.conv2d(x, w, padding=1)


@pytest.mark.parametrize("algorithm", ["fast", "reference"])
@pytest.mark.parametrize("call", [
    lambda alg: cg.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 3, 3)), padding=10**9,
                          algorithm=alg),
    lambda alg: cg.conv_transpose2d(np.zeros((1, 2, 4, 4)), np.zeros((2, 1, 3, 3)),
                                    stride=10**6, algorithm=alg),
], ids=["huge-output", "huge-transposed-output"])
def test_impossible_sizes_raise_memory_error_naming_the_size(call, algorithm):
    """Sizes are computed in Python ints: no overflow inside NumPy, nothing allocated.
    """
    with pytest.raises(MemoryError, match=r"of shape \(.*\) would need [\d.]+ [KMGTPE]iB"):
        call(algorithm)


def test_huge_padding_with_a_small_output_needs_no_padded_copy_in_the_fast_engine():
    """The fast engine never materializes padding: only windows' in-bounds parts are read."""
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((1, 1, 8, 8)), rng.standard_normal((2, 1, 3, 3))
    y = cg.conv2d(x, w, padding=10**5, stride=10**5)        # 3 x 3 output
    assert y.shape == (1, 2, 3, 3)
    # only the centre window, which starts at padded index 10**5, touches x
    expected = np.zeros_like(y)
    expected[0, :, 1, 1] = (w[:, 0] * x[0, 0, :3, :3]).sum(axis=(1, 2))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)
    with pytest.raises(MemoryError, match="the reference engine's padded array .* would need"):
        cg.conv2d(x, w, padding=10**5, stride=10**5, algorithm="reference")


def test_input_gradient_falls_back_to_col2im_within_the_budget():
    """dx at stride 1 with F <= C prefers the swapped correlation (F*K rows over the input's
    positions) where kernel rows do not apply (here: groups); under a budget it does not
    fit, col2im (C*K rows over the output's) is used instead."""
    from convgrad.engine import fast
    from convgrad.geometry import conv_geometry
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 4, 12, 12)), rng.standard_normal((4, 1, 3, 3))
    dy = rng.standard_normal((1, 4, 10, 10))
    _, _, _, g = conv_geometry(x, w, nd=2, groups=4)
    expected = cg.conv2d_backward(dy, x, w, groups=4)[0]
    # swapped: 36 rows x 144 input positions, and the rotated filters with their finiteness
    # mask: over 5184 elements. col2im: 36 rows x 100 output positions and NumPy's
    # buffers for the additions (3 x 4 x 100): 4800 elements.
    col2im_sample = 8 * (36 * 100 + 3 * 4 * 100)
    with cg.memory_budget(col2im_sample):
        np.testing.assert_allclose(fast.grad_input(dy, w, g), expected, rtol=1e-12,
                                   atol=1e-12)
    with cg.memory_budget(col2im_sample - 1), pytest.raises(MemoryError,
                                                            match="the input gradient"):
        fast.grad_input(dy, w, g)


def test_kernel_rows_input_gradient_falls_back_to_col2im_within_the_budget():
    """dx prefers kernel rows (engine/kernel_rows.py) where they apply; under a budget
    their scratch does not fit, col2im is used instead."""
    from convgrad.engine import fast, kernel_rows
    from convgrad.geometry import conv_geometry
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((1, 1, 12, 12)), rng.standard_normal((8, 1, 3, 3))
    dy = rng.standard_normal((1, 8, 10, 10))
    _, _, _, g = conv_geometry(x, w, nd=2)
    assert fast._kernel_rows_input(g)
    expected = cg.conv2d_backward(dy, x, w)[0]
    # kernel rows: dy lowered along W (8*3 rows x 10*12), the product (1*3 x 10*12), the
    # summed rows (12*12), w rearranged (72): 3456 elements. col2im: 9 rows x 100 output
    # positions and NumPy's buffers for the additions (3 x 1 x 100): 1200 elements.
    assert sum(kernel_rows._sizes(g, True)) == 3456
    col2im_sample = 8 * (9 * 100 + 3 * 100)
    for budget in (8 * 3456, col2im_sample):
        with cg.memory_budget(budget):
            np.testing.assert_allclose(fast.grad_input(dy, w, g), expected, rtol=1e-12,
                                       atol=1e-12)
    with cg.memory_budget(col2im_sample - 1), pytest.raises(MemoryError,
                                                            match="the input gradient"):
        fast.grad_input(dy, w, g)


@pytest.mark.parametrize("value,error", [("", ValueError), ("inf", ValueError),
                                         ("abc", ValueError), (-3, ValueError),
                                         (2.5, TypeError), (True, TypeError)])
def test_memory_budget_values_are_checked(value, error):
    before = cg.get_memory_budget()
    with pytest.raises(error, match="memory budget"):
        cg.set_memory_budget(value)
    assert cg.get_memory_budget() == before
    assert cg.set_memory_budget("1.5G") == before and cg.get_memory_budget() == 3 * 2**29
    cg.set_memory_budget(before)


def test_bad_budget_in_the_environment_warns_and_keeps_the_default():
    import os
    import subprocess
    import sys
    code = "import convgrad as cg; print(cg.get_memory_budget())"
    env = dict(os.environ, CONVGRAD_MEMORY_BUDGET="lots")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.strip() == str(512 * 2**20)
    assert "CONVGRAD_MEMORY_BUDGET='lots' is not a size" in out.stderr
    env["CONVGRAD_MEMORY_BUDGET"] = "64M"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.strip() == str(64 * 2**20)
