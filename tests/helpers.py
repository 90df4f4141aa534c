"""Independent oracles for the tests: PyTorch float64 autograd and central differences.

Nothing here calls convgrad's own geometry: padding strings and (lo, hi) pairs are turned
into explicit pads with formulas written out again from their specifications, so a bug
in convgrad.geometry cannot hide itself.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional


def rel_err(a, b) -> float:
    """max |a - b| relative to max |b| (0 for empty arrays); shapes must match exactly."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    scale = max(np.abs(b).max(), 1e-30)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() / scale)


def tf_same_pads(size, kernel, stride, dilation):
    """TensorFlow's SAME: out = ceil(n / s), total pad split with the odd pixel after."""
    pads = []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        out = (n + s - 1) // s
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _tuple(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def explicit_pads(padding, size, kernel, stride, dilation):
    nd = len(size)
    if padding == "valid":
        return [(0, 0)] * nd
    if padding == "same":
        return tf_same_pads(size, kernel, stride, dilation)
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in padding]


def _torch_pad(t, pads):
    """F.pad takes (last-axis lo, hi, previous-axis lo, hi, ...)."""
    flat = []
    for lo, hi in reversed(pads):
        flat += [lo, hi]
    return F.pad(t, flat)


def torch_conv(x, w, b, dy, stride=1, padding=0, dilation=1, groups=1):
    """y, dx, dw, db from PyTorch autograd in float64 (pads applied explicitly)."""
    nd = x.ndim - 2
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    stride, dilation = _tuple(stride, nd), _tuple(dilation, nd)
    pads = explicit_pads(padding, x.shape[2:], w.shape[2:], stride, dilation)
    tx = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    tw = torch.tensor(np.asarray(w, np.float64), requires_grad=True)
    tb = None if b is None else torch.tensor(np.asarray(b, np.float64), requires_grad=True)
    ty = conv(_torch_pad(tx, pads), tw, tb, stride=stride, dilation=dilation, groups=groups)
    if dy is None:
        return ty.detach().numpy(), None, None, None
    ty.backward(torch.tensor(np.asarray(dy, np.float64)))
    return (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(),
            None if tb is None else tb.grad.numpy())


def torch_conv_transpose(x, w, b, dy, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    nd = x.ndim - 2
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
    tx = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    tw = torch.tensor(np.asarray(w, np.float64), requires_grad=True)
    tb = None if b is None else torch.tensor(np.asarray(b, np.float64), requires_grad=True)
    ty = conv(tx, tw, tb, stride=stride, padding=padding, output_padding=output_padding,
              groups=groups, dilation=dilation)
    if dy is None:
        return ty.detach().numpy(), None, None, None
    ty.backward(torch.tensor(np.asarray(dy, np.float64)))
    return (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(),
            None if tb is None else tb.grad.numpy())


def conv_out_size(n, k, s, d, lo, hi):
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def numerical_grad(f, a, df, h=1e-6):
    """Central differences of sum(f() * df) with respect to every entry of a (in place)."""
    grad = np.zeros_like(a)
    for i in np.ndindex(*a.shape):
        old = a[i]
        a[i] = old + h
        plus = np.sum(f() * df)
        a[i] = old - h
        minus = np.sum(f() * df)
        a[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad
