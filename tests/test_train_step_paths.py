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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convgrad import nn
from helpers import rel_err

torch = pytest.importorskip("torch")
TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}
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
    tol = TOLERANCE[dtype]
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
