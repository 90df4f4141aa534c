"""convgrad.dask's convolutions against the NumPy API (the oracle here, itself checked
against PyTorch and central differences elsewhere), at 1e-12 in float64, computed on a
two-process LocalCluster: batch chunks that split N unevenly and single-sample chunks,
spatial chunks smaller than the kernel's reach, strides that do not divide the chunk size,
every padding form, dilation, groups, 1-D to 3-D.
"""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from dask_cluster import compute, local_cluster, require_dask

require_dask()

import dask.array as da  # noqa: E402

import convgrad  # noqa: E402
import convgrad.dask as cdask  # noqa: E402
from convgrad.dask.spatial import plan_axis  # noqa: E402

TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def client():
    cluster, client = local_cluster()
    yield client
    client.close()
    cluster.close()


def close(actual, expected):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, (
        actual.shape, actual.dtype, expected.shape, expected.dtype)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(actual, expected, rtol=TOLERANCE, atol=TOLERANCE * scale)


# (x shape, w shape, keywords, batch chunks, spatial chunks): each a corner of the grid.
CONV_CASES = [
    # 1-D: phase shifted by the padding; stride 3 not dividing chunks of 5; chunks of 2
    # under a reach of 12 (merged); a leftover of 'valid' with stride 4.
    ((5, 4, 17), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2), (2, 3), 4),
    ((3, 3, 23), (2, 3, 4), dict(stride=3, padding="same"), 1, 5),
    ((4, 2, 19), (4, 1, 5), dict(padding=((3, 0),), dilation=3, groups=2), (3, 1), 2),
    ((2, 1, 21), (3, 1, 2), dict(stride=4, padding="valid"), 1, 3),
    # 2-D: per-axis (lo, hi), stride and dilation; 'same' at stride 3; a 1x1 kernel (no
    # halo); padding larger than the kernel; single-pixel chunks.
    ((5, 4, 13, 11), (6, 2, 3, 3),
     dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2), groups=2), (1, 4), (3, 4)),
    ((3, 3, 12, 10), (4, 3, 3, 2), dict(stride=3, padding="same"), (2, 1), (5, 4)),
    ((4, 2, 9, 9), (2, 2, 1, 1), dict(stride=2), 3, 2),
    ((2, 2, 7, 8), (3, 2, 2, 3), dict(stride=2, padding=(4, 3), dilation=(2, 1)), 1, 2),
    ((3, 1, 6, 5), (2, 1, 3, 3), dict(padding=1), 2, 1),
    # 3-D
    ((3, 2, 7, 8, 6), (4, 2, 3, 2, 3), dict(stride=(2, 1, 3), padding="same",
                                            dilation=(1, 2, 1)), (2, 1), (3, 3, 2)),
    ((2, 4, 6, 7, 5), (2, 2, 2, 3, 2),
     dict(stride=2, padding=((1, 0), (2, 2), (0, 1)), groups=2), 1, (2, 4, 3)),
]

TRANSPOSE_CASES = [
    ((5, 4, 9), (4, 3, 3), dict(stride=3, padding=1, output_padding=2, groups=2), (2, 3)),
    ((3, 2, 6, 5), (2, 3, 3, 2),
     dict(stride=(2, 3), padding=((1, 0), (0, 2)), dilation=(2, 1)), 1),
    ((3, 2, 5, 6), (2, 2, 3, 3), dict(stride=2, padding="same"), (1, 2)),
    ((2, 4, 3, 4, 3), (4, 1, 2, 3, 2), dict(stride=2, padding=(1, 0, 1), groups=4,
                                            output_padding=(1, 0, 1)), 1),
]


def arrays(x_shape, w_shape, filters, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
            rng.standard_normal(filters))


def chunked(a, batch, spatial=None):
    """``a`` as a dask array with these batch chunks (and spatial chunks, if given)."""
    spatial = a.shape[2:] if spatial is None else spatial
    return da.from_array(a, chunks=(batch, a.shape[1], *np.broadcast_to(spatial, a.ndim - 2)))


def _names(nd, transpose=False):
    name = f"conv{'_transpose' if transpose else ''}{nd}d"
    return getattr(convgrad, name), getattr(cdask, name), \
        getattr(convgrad, name + "_backward"), getattr(cdask, name + "_backward")


def test_conv_forward_and_backward_equal_numpy(client):
    lazy, expected = [], []
    for seed, (x_shape, w_shape, keywords, batch, spatial) in enumerate(CONV_CASES):
        nd = len(x_shape) - 2
        conv, dconv, backward, dbackward = _names(nd)
        x, w, b = arrays(x_shape, w_shape, w_shape[0], seed)
        y = conv(x, w, b, **keywords)
        dy = np.random.default_rng(100 + seed).standard_normal(y.shape)
        bias = b if seed % 2 else None
        # batch chunks only; then spatial chunks with halos; backward with dy chunked
        # differently from x (blockwise aligns them; x's spatial chunks merged), and
        # split_every 2 for a deep tree.
        lazy += [dconv(chunked(x, batch), w, bias, **keywords),
                 dconv(chunked(x, batch, spatial), w, bias, **keywords),
                 *dbackward(chunked(dy, 1), chunked(x, batch, spatial if seed % 3 else None),
                            w, bias, split_every=2, **keywords)]
        expected += [conv(x, w, bias, **keywords)] * 2 + list(
            backward(dy, x, w, bias, **keywords))
    for actual, wanted in zip(compute(client, *[a for a in lazy if a is not None]),
                              [e for e in expected if e is not None], strict=True):
        close(actual, wanted)


def test_spatial_chunks_are_kept_with_halos():
    x = chunked(np.zeros((2, 3, 40, 30)), 1, (8, 7))
    y = cdask.conv2d(x, np.zeros((4, 3, 3, 3)), stride=3, padding="same")
    assert y.numblocks == (2, 1, 5, 5)           # one output block per input block
    assert y.chunks[2] == (3, 3, 3, 2, 3)        # windows starting in each chunk (stride 3)
    # chunks of 2 under a reach of 2 * (5 - 1) = 8 are merged, 8 at a time
    plan = plan_axis((2,) * 10, kernel=5, stride=1, dilation=2, pad=(0, 0), out=12)
    assert plan.chunks == (8, 12) and plan.reach == 8
    assert sum(plan.out_chunks) == 12


def test_transposed_convolution_and_backward_equal_numpy(client):
    lazy, expected = [], []
    for seed, (x_shape, w_shape, keywords, batch) in enumerate(TRANSPOSE_CASES):
        nd = len(x_shape) - 2
        conv, dconv, backward, dbackward = _names(nd, transpose=True)
        groups = keywords.get("groups", 1)
        x, w, b = arrays(x_shape, w_shape, w_shape[1] * groups, seed)
        y = conv(x, w, b, **keywords)
        dy = np.random.default_rng(200 + seed).standard_normal(y.shape)
        lazy += [dconv(chunked(x, batch, 2), w, b, **keywords),
                 *dbackward(chunked(dy, batch), chunked(x, 1), w, b, **keywords)]
        expected += [y, *backward(dy, x, w, b, **keywords)]
    for actual, wanted in zip(compute(client, *lazy), expected, strict=True):
        close(actual, wanted)


def test_dtypes_follow_the_numpy_api(client):
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (3, 2, 6, 6))                # int64 with float32: float64
    image = rng.integers(0, 255, (3, 2, 6, 6)).astype(np.uint8)   # uint8 with float32: float32
    w32 = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    x32 = x.astype(np.float32)
    dy = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    lazy = [cdask.conv2d(chunked(x, 2, 3), w32), cdask.conv2d(chunked(x32, 1), w32),
            cdask.conv2d(chunked(image, 2), w32),
            *cdask.conv2d_backward(chunked(dy, 2), chunked(x32, 1), w32, w32[:, 0, 0, 0]),
            *cdask.conv2d_backward(chunked(dy, 2), chunked(image, 1), w32)[:2]]
    expected = [convgrad.conv2d(x, w32), convgrad.conv2d(x32, w32),
                convgrad.conv2d(image, w32),
                *convgrad.conv2d_backward(dy, x32, w32, w32[:, 0, 0, 0]),
                *convgrad.conv2d_backward(dy, image, w32)[:2]]
    assert [a.dtype for a in lazy] == [e.dtype for e in expected]     # the graph's metadata
    assert expected[2].dtype == np.float32 and expected[0].dtype == np.float64
    for actual, wanted in zip(compute(client, *lazy), expected, strict=True):
        assert actual.dtype == wanted.dtype and actual.shape == wanted.shape
        np.testing.assert_allclose(actual, wanted, rtol=1e-5, atol=1e-5)


def _refuse(block):
    raise AssertionError("a block was computed")


def test_everything_is_lazy_and_the_weights_travel_once():
    x = da.zeros((8, 3, 10, 10), chunks=(2, 3, 10, 10)).map_blocks(_refuse, dtype=float)
    w = np.random.default_rng(3).standard_normal((4, 3, 3, 3))
    y = cdask.conv2d(x, w, stride=2, padding="same")
    dx, dw, db = cdask.conv2d_backward(y, x, w, np.ones(4), stride=2, padding="same")
    halo = cdask.conv2d(x.rechunk((2, 3, 4, 4)), w, padding=1)
    for result in (y, dx, dw, db, halo):
        tasks = dict(result.__dask_graph__())
        holding = [key for key, task in tasks.items() if w.tobytes() in pickle.dumps(task)]
        if result is not db:
            assert len(holding) == 1, holding    # one task holds w, not one per block
    assert y.numblocks[0] == 4 and dw.shape == w.shape and db.shape == (4,)


def test_bad_arguments_are_refused_before_any_work():
    x = da.zeros((4, 4, 8, 8), chunks=(1, 4, 8, 8))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        cdask.conv2d(x, np.zeros((3, 1, 3, 3)), groups=3)
    with pytest.raises(ValueError, match="padding='SAME' is not a known"):
        cdask.conv2d(x, np.zeros((3, 4, 3, 3)), padding="SAME")
    with pytest.raises(ValueError, match="larger than the padded input"):
        cdask.conv2d(x, np.zeros((3, 4, 9, 3)))
    with pytest.raises(TypeError, match="booleans"):
        cdask.conv2d(x.astype(bool), np.zeros((3, 4, 3, 3)))
    with pytest.raises(ValueError, match="algorithm='gpu'"):
        cdask.conv2d(x, np.zeros((3, 4, 3, 3)), algorithm="gpu")
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(4, 3, 6, 6\)"):
        cdask.conv2d_backward(da.zeros((4, 3, 5, 5)), x, np.zeros((3, 4, 3, 3)))
    unknown = x[x[:, 0, 0, 0] > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        cdask.conv2d(unknown, np.zeros((3, 4, 3, 3)))


def _python(code: str):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_import_convgrad_never_imports_dask():
    run = _python("import sys, convgrad, convgrad.nn; import convgrad.apps.cli; "
                  "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                  "('dask', 'distributed')))")
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr


def test_without_the_extra_the_message_names_it():
    run = _python("import sys; sys.modules['dask'] = None\n"
                  "try:\n    import convgrad.dask\n"
                  "except ImportError as error:\n    print(error)")
    assert "pip install 'convgrad[dask]'" in run.stdout, run.stdout + run.stderr


def test_padding_modes_and_unbatched_inputs_equal_numpy(client):
    rng = np.random.default_rng(11)
    lazy, expected = [], []
    x, w, b = rng.standard_normal((3, 2, 9, 8)), rng.standard_normal((4, 2, 3, 3)), \
        rng.standard_normal(4)
    for mode in ("reflect", "replicate", "circular"):
        keywords = dict(stride=2, padding=((2, 1), (1, 1)), padding_mode=mode)
        y = convgrad.conv2d(x, w, b, **keywords)
        dy = rng.standard_normal(y.shape)
        lazy += [cdask.conv2d(chunked(x, (1, 2), (4, 3)), w, b, **keywords),  # merged
                 *cdask.conv2d_backward(chunked(dy, 2), chunked(x, 1), w, b, **keywords)]
        expected += [y, *convgrad.conv2d_backward(dy, x, w, b, **keywords)]
    # unbatched (C, *spatial): forward (also spatially chunked), backward, transposed
    x1, w1 = rng.standard_normal((3, 11)), rng.standard_normal((2, 3, 3))
    keywords = dict(padding="same", padding_mode="circular")
    dy1 = rng.standard_normal((2, 11))
    lazy += [cdask.conv1d(da.from_array(x1, chunks=(3, 4)), w1, **keywords),
             *cdask.conv1d_backward(dy1, x1, w1, None, **keywords)[:2]]
    expected += [convgrad.conv1d(x1, w1, **keywords),
                 *convgrad.conv1d_backward(dy1, x1, w1, None, **keywords)[:2]]
    x3, w3 = rng.standard_normal((2, 5, 6, 7)), rng.standard_normal((3, 2, 2, 3, 2))
    lazy.append(cdask.conv3d(da.from_array(x3, chunks=(2, 2, 3, 4)), w3, stride=2, padding=1))
    expected.append(convgrad.conv3d(x3, w3, stride=2, padding=1))
    xt, wt = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 3, 3, 2))
    dyt = rng.standard_normal(convgrad.conv_transpose2d(xt, wt, stride=2).shape)
    lazy += [cdask.conv_transpose2d(xt, wt, stride=2),
             *cdask.conv_transpose2d_backward(dyt, xt, wt, stride=2)[:2]]
    expected += [convgrad.conv_transpose2d(xt, wt, stride=2),
                 *convgrad.conv_transpose2d_backward(dyt, xt, wt, stride=2)[:2]]
    assert lazy[-7].shape == (2, 11) and lazy[-4].shape == (3, 3, 3, 4)
    for actual, wanted in zip(compute(client, *lazy), expected, strict=True):
        close(actual, wanted)
