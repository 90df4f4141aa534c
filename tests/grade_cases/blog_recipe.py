"""The stride-1 recipe: dx is the rotated filter slid over dout padded by pad, dw is x
correlated with dout, both written for stride 1."""
import numpy as np

from correct_loops import conv_forward_naive  # noqa: F401


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    p = conv_param['pad']
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    dout_p = np.pad(dout, ((0, 0), (0, 0), (p, p), (p, p)))
    w_rot = w[:, :, ::-1, ::-1]
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    dx[n, c, i, j] = np.sum(dout_p[n, :, i:i + HH, j:j + WW] * w_rot[:, c])
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dw = np.zeros_like(w)
    for f in range(F):
        for c in range(C):
            for k in range(HH):
                for l in range(WW):
                    dw[f, c, k, l] = np.sum(xp[:, c, k:k + Ho, l:l + Wo] * dout[:, f])
    return dx, dw, dout.sum(axis=(0, 2, 3))
