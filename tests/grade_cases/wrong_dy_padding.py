"""dx as the rotated filter slid over dy (zeros inserted) padded by pad, not HH-1-pad."""
import numpy as np

from correct_loops import conv_backward_naive as right_backward
from correct_loops import conv_forward_naive, pad_hw  # noqa: F401


def conv_backward_naive(dout, cache):
    _, dw, db = right_backward(dout, cache)
    x, w, b, conv_param = cache
    s, p = conv_param['stride'], conv_param['pad']
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    dilated = np.zeros((N, F, (Ho - 1) * s + 1, (Wo - 1) * s + 1))
    dilated[:, :, ::s, ::s] = dout
    padded = pad_hw(dilated, p, p, p, p)
    padded = pad_hw(padded, 0, max(H + HH - 1 - padded.shape[2], 0),
                    0, max(W + WW - 1 - padded.shape[3], 0))   # room for every row of dx
    w_rot = w[:, :, ::-1, ::-1]
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    dx[n, c, i, j] = np.sum(padded[n, :, i:i + HH, j:j + WW] * w_rot[:, c])
    return dx, dw, db
