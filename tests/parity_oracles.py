"""PyTorch float64 autograd oracles for second-order gradients and padding modes.

Written from PyTorch's own operations only (F.pad with its modes, F.conv*, F.conv_transpose*,
torch.autograd.grad with create_graph=True); padding strings and (lo, hi) pairs are turned
into explicit pads by tests/helpers.py's formulas, never by convgrad's geometry.
"""
from __future__ import annotations

import numpy as np
import pytest

from helpers import _tuple, explicit_pads, tf_same_pads

torch = pytest.importorskip("torch")
F = torch.nn.functional

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}


def tensor(a, grad=False):
    return None if a is None else torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def numpy(t, like=None):
    if t is None:
        return None if like is None else np.zeros(like.shape)
    return t.detach().numpy()


def torch_pad(t, pads, mode="zeros"):
    """F.pad by ``mode`` with (lo, hi) ``pads`` per spatial axis (F.pad wants them reversed)."""
    flat = []
    for lo, hi in reversed(pads):
        flat += [lo, hi]
    if not any(flat):
        return t
    return F.pad(t, flat, mode=TORCH_MODE[mode])


def conv_pads(x_shape, w_shape, stride=1, padding=0, dilation=1, **_):
    nd = len(w_shape) - 2
    return explicit_pads(padding, x_shape[-nd:], w_shape[2:], _tuple(stride, nd),
                         _tuple(dilation, nd))


def torch_conv_graph(tx, tw, tb, stride=1, padding=0, dilation=1, groups=1,
                     padding_mode="zeros"):
    """y = conv(pad(x, mode), w) + b, built in PyTorch, for any convgrad padding form."""
    nd = tw.dim() - 2
    pads = conv_pads(tuple(tx.shape), tuple(tw.shape), stride, padding, dilation)
    return CONV[nd](torch_pad(tx, pads, padding_mode), tw, tb, stride=_tuple(stride, nd),
                    dilation=_tuple(dilation, nd), groups=groups)


def transpose_pads(x_shape, w_shape, stride=1, padding=0, output_padding=0, dilation=1):
    """(lo, hi) pairs and output_padding per axis, 'same' resolved (output = in * stride)."""
    nd = len(w_shape) - 2
    stride, dilation = _tuple(stride, nd), _tuple(dilation, nd)
    size, kernel = x_shape[-nd:], w_shape[2:]
    if padding == "same":
        out = [n * s for n, s in zip(size, stride)]
        pads = tf_same_pads(out, kernel, stride, dilation)
        extra = [o - ((n - 1) * s - lo - hi + d * (k - 1) + 1)
                 for o, n, s, (lo, hi), d, k in zip(out, size, stride, pads, dilation, kernel)]
        return pads, extra
    if padding == "valid":
        padding = 0
    pads = explicit_pads(padding, size, kernel, stride, dilation)
    return pads, list(_tuple(output_padding, nd))


def torch_conv_transpose_graph(tx, tw, tb, stride=1, padding=0, output_padding=0, groups=1,
                               dilation=1):
    """PyTorch's transposed convolution without padding, then its output cropped by (lo, hi)
    (extended by zeros where output_padding reaches past it): any convgrad padding form."""
    nd = tw.dim() - 2
    pads, extra = transpose_pads(tuple(tx.shape), tuple(tw.shape), stride, padding,
                                 output_padding, dilation)
    full = CONV_T[nd](tx, tw, None, stride=_tuple(stride, nd), groups=groups,
                      dilation=_tuple(dilation, nd))
    grow = [(0, max(0, e - hi)) for (lo, hi), e in zip(pads, extra)]
    full = torch_pad(full, grow)
    index = [slice(None)] * (tx.dim() - nd)
    for axis, ((lo, hi), e) in enumerate(zip(pads, extra)):
        n = full.shape[tx.dim() - nd + axis] - max(0, e - hi)    # before the extension
        index.append(slice(lo, n - hi + e))
    y = full[tuple(index)]
    if tb is not None:
        y = y + tb.reshape((-1,) + (1,) * nd)
    return y


def torch_second_order(graph, x, w, b, dy, g_dx, g_dw, g_db, **kw):
    """PyTorch's (dx, dw, db) and (g_dy, g_x, g_w): torch.autograd.grad with create_graph."""
    tx, tw, tb, tdy = tensor(x, True), tensor(w, True), tensor(b, True), tensor(dy, True)
    ty = graph(tx, tw, tb, **kw)
    inputs = [tx, tw] + ([tb] if tb is not None else [])
    first = torch.autograd.grad(ty, inputs, grad_outputs=tdy, create_graph=True)
    terms = [(g * tensor(c)).sum() for g, c in zip(first, (g_dx, g_dw, g_db)) if c is not None]
    second = [None] * 3
    if terms:
        second = torch.autograd.grad(sum(terms), [tdy, tx, tw], allow_unused=True)
    first = [numpy(t) for t in first] + ([None] if tb is None else [])
    return first, [numpy(t, like) for t, like in zip(second, (dy, x, w))]


def torch_first_order(graph, x, w, b, dy, **kw):
    """PyTorch's y, dx, dw, db for the graph (y only when dy is None)."""
    tx, tw, tb = tensor(x, True), tensor(w, True), tensor(b, True)
    ty = graph(tx, tw, tb, **kw)
    if dy is None:
        return numpy(ty), None, None, None
    ty.backward(tensor(dy))
    return numpy(ty), numpy(tx.grad), numpy(tw.grad), None if tb is None else numpy(tb.grad)
