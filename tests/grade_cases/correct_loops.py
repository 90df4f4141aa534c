"""A correct conv layer written as loops over (n, f, i, j), as the course's naive layer reads.

The deliberately wrong layers beside it import the pieces they keep from here (the grader
imports each file by its path, with this folder first on sys.path)."""
import numpy as np


def pad_hw(a, top, bottom, left, right):
    """Zero-pad the last two axes; a negative amount crops."""
    a = np.pad(a, ((0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))))
    return a[:, :, max(-top, 0):a.shape[2] - max(-bottom, 0),
             max(-left, 0):a.shape[3] - max(-right, 0)]


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param['stride'], conv_param['pad']
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * p - HH) // s, 1 + (W + 2 * p - WW) // s
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * s:i * s + HH, j * s:j * s + WW]    # (C, HH, WW)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x, w, b, conv_param)


def backward_parts(dout, cache, dx_step=None, w_for_dx=None):
    """(padded dx, dw, db) by the scatter loops; dx_step / w_for_dx let a wrong layer
    change the step of the scatter or the filter it scatters through."""
    x, w, b, conv_param = cache
    s, p = conv_param['stride'], conv_param['pad']
    step = s if dx_step is None else dx_step
    wd = w if w_for_dx is None else w_for_dx
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, f, i, j]
                    dw[f] += g * xp[n, :, i * s:i * s + HH, j * s:j * s + WW]
                    dxp[n, :, i * step:i * step + HH, j * step:j * step + WW] += g * wd[f]
    return dxp, dw, dout.sum(axis=(0, 2, 3))


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    p = conv_param['pad']
    H, W = x.shape[2:]
    dxp, dw, db = backward_parts(dout, cache)
    return dxp[:, :, p:p + H, p:p + W], dw, db
