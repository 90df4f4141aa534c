"""The known mistakes, each written out as the wrong code that makes it.

Every function here is a deliberately wrong piece of a conv layer, as people write it,
with the signature ``mistake(x, w, b, dy, stride, pad) -> array`` (or None where the
mistake cannot be made, e.g. a channel swap that needs C = F). The catalog
(:mod:`.catalog`) groups them under stable ids; a user's wrong output that equals one of
them, on the same data, is that mistake. Only the wrong parts are written here; the right
parts come from :mod:`convgrad.functional`.

Shapes: x (N, C, H, W), w (F, C, HH, WW), b (F,), dy (N, F, H', W'); stride s and pad p
are ints, the same along H and W (the course's conv_param).
"""
from __future__ import annotations

import numpy as np

from .. import functional

__all__ = [
    "dx_no_zero_insertion", "dx_dy_padded_by_pad", "dx_dy_padded_by_pad_uncut",
    "dx_unrotated", "dx_flipped_rows_only", "dx_flipped_columns_only",
    "dx_channels_indexed_unswapped", "dx_channels_reshaped", "dx_uncropped",
    "dx_cropped_top_left", "dx_cropped_twice_from_start", "dx_cropped_minus_pad",
    "dx_without_leftover", "dw_without_stride", "dw_leftover_uncropped",
    "dw_leftover_last", "y_ceil_size", "y_size_without_plus_one",
    "y_size_without_padding", "y_size_with_one_sided_pad",
    "db_over_spatial_only", "db_over_all_but_batch", "db_over_everything",
    "db_first_sample_only", "db_over_batch_only", "blog_recipe_dx",
]


# ----------------------------------------------------------------------------------------
# Helpers: padding, zero insertion, correlation and scatter, on the last two axes


def _pad(a: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Zero-pad the last two axes of (N, C, A, B); a negative amount crops instead."""
    a = np.pad(a, ((0, 0), (0, 0), (max(top, 0), max(bottom, 0)),
                   (max(left, 0), max(right, 0))))
    h, w = a.shape[2:]
    return a[:, :, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]


def _dilate(dy: np.ndarray, s: int) -> np.ndarray:
    """(N, F, H', W') -> (N, F, (H'-1)s + 1, (W'-1)s + 1): s - 1 zeros between entries."""
    n, f, h, w = dy.shape
    out = np.zeros((n, f, (h - 1) * s + 1, (w - 1) * s + 1))
    out[:, :, ::s, ::s] = dy
    return out


def _rot180(w: np.ndarray) -> np.ndarray:
    return w[:, :, ::-1, ::-1]


def _correlate(a: np.ndarray, k: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """out[n, c, i, j] = sum_{f, u, v} a[n, f, i + u, j + v] * k[f, c, u, v].

    a (N, F, A, B), zero beyond its end; k (F, C, KH, KW); returns (N, C, out_h, out_w).
    """
    kh, kw = k.shape[2:]
    a = _pad(a, 0, max(out_h + kh - 1 - a.shape[2], 0), 0, max(out_w + kw - 1 - a.shape[3], 0))
    out = np.zeros((a.shape[0], k.shape[1], out_h, out_w))
    for u in range(kh):
        for v in range(kw):
            out += np.einsum("nfij,fc->ncij", a[:, :, u:u + out_h, v:v + out_w], k[:, :, u, v])
    return out


def _scatter(dy: np.ndarray, k: np.ndarray, step: int, size: tuple) -> np.ndarray:
    """buf[n, c, step*i + u, step*j + v] += dy[n, f, i, j] * k[f, c, u, v].

    dy (N, F, H', W'), k (F, C, KH, KW); buf is at least ``size`` (its first rows and
    columns are what a padded dx would be) and returned whole: (N, C, >= size).
    """
    (n, _, ho, wo), (_, c, kh, kw) = dy.shape, k.shape
    h = max(size[0], step * (ho - 1) + kh)
    w = max(size[1], step * (wo - 1) + kw)
    buf = np.zeros((n, c, h, w))
    for u in range(kh):
        for v in range(kw):
            buf[:, :, u:u + step * (ho - 1) + 1:step, v:v + step * (wo - 1) + 1:step] += \
                np.einsum("nfij,fc->ncij", dy, k[:, :, u, v])
    return buf


def _dx_from_scatter(x, k, dy, step, p):
    """Scatter into the padded dx, then crop the padding: (N, C, H, W)."""
    h, w = x.shape[2:]
    return _scatter(dy, k, step, (h + 2 * p, w + 2 * p))[:, :, p:p + h, p:p + w]


def _dx_padded(x, w, dy, s, p):
    """The right padded dx (before its padding is removed): (N, C, H + 2p, W + 2p)."""
    h, ww = x.shape[2:]
    return _scatter(dy, w, s, (h + 2 * p, ww + 2 * p))[:, :, :h + 2 * p, :ww + 2 * p]


def _dw(x, dy, step, p, kh, kw):
    """dw[f, c, u, v] = sum_{n, i, j} dy[n, f, i, j] * xp[n, c, step*i + u, step*j + v]."""
    ho, wo = dy.shape[2:]
    xp = _pad(x, p, p, p, p)
    xp = _pad(xp, 0, max(step * (ho - 1) + kh - xp.shape[2], 0),
              0, max(step * (wo - 1) + kw - xp.shape[3], 0))
    dw = np.zeros((dy.shape[1], x.shape[1], kh, kw))
    for u in range(kh):
        for v in range(kw):
            window = xp[:, :, u:u + step * (ho - 1) + 1:step, v:v + step * (wo - 1) + 1:step]
            dw[:, :, u, v] = np.einsum("nfij,ncij->fc", dy, window)
    return dw


def _forward_sized(x, w, b, s, p, out_h, out_w):
    """The forward with a given output size, reading zeros past the padded input's end."""
    n, f = x.shape[0], w.shape[0]
    if out_h < 0 or out_w < 0:
        return None
    y = np.zeros((n, f, out_h, out_w))
    if out_h == 0 or out_w == 0:
        return y
    kh, kw = w.shape[2:]
    xp = _pad(x, p, p, p, p)
    xp = _pad(xp, 0, max(s * (out_h - 1) + kh - xp.shape[2], 0),
              0, max(s * (out_w - 1) + kw - xp.shape[3], 0))
    for u in range(kh):
        for v in range(kw):
            window = xp[:, :, u:u + s * (out_h - 1) + 1:s, v:v + s * (out_w - 1) + 1:s]
            y += np.einsum("ncij,fc->nfij", window, w[:, :, u, v])
    return y + b.reshape(1, -1, 1, 1)


def _sizes(x, w, s, p):
    """(H + 2p - HH, W + 2p - WW): the padded extent the windows slide over."""
    return x.shape[2] + 2 * p - w.shape[2], x.shape[3] + 2 * p - w.shape[3]


# ----------------------------------------------------------------------------------------
# dx


def dx_no_zero_insertion(x, w, b, dy, s, p):
    """dy scattered with step 1 instead of the stride (no s - 1 zeros inserted)."""
    return _dx_from_scatter(x, w, dy, 1, p)


def dx_dy_padded_by_pad(x, w, b, dy, s, p):
    """Rotated filter slid over dy (zeros inserted) padded by pad, not HH - 1 - pad."""
    a = _pad(_dilate(dy, s), p, p, p, p)
    return _correlate(a, _rot180(w), *x.shape[2:])


def dx_dy_padded_by_pad_uncut(x, w, b, dy, s, p):
    """The same, keeping every row and column the correlation produces."""
    a = _pad(_dilate(dy, s), p, p, p, p)
    return _correlate(a, _rot180(w), a.shape[2] - w.shape[2] + 1, a.shape[3] - w.shape[3] + 1)


def dx_unrotated(x, w, b, dy, s, p):
    """Full correlation with the filter as it is, not rotated by 180 degrees."""
    return _dx_from_scatter(x, _rot180(w), dy, s, p)


def dx_flipped_rows_only(x, w, b, dy, s, p):
    return _dx_from_scatter(x, w[:, :, :, ::-1], dy, s, p)


def dx_flipped_columns_only(x, w, b, dy, s, p):
    return _dx_from_scatter(x, w[:, :, ::-1, :], dy, s, p)


def dx_channels_indexed_unswapped(x, w, b, dy, s, p):
    """w[c, f] used where w[f, c] belongs (possible only when C = F)."""
    if w.shape[0] != w.shape[1]:
        return None
    return _dx_from_scatter(x, w.transpose(1, 0, 2, 3), dy, s, p)


def dx_channels_reshaped(x, w, b, dy, s, p):
    """w.reshape(C, F, HH, WW) used as the channel-swapped filter, not a transpose."""
    f, c, kh, kw = w.shape
    swapped = w.reshape(c, f, kh, kw)                     # (C, F, HH, WW), entries scrambled
    return _dx_from_scatter(x, swapped.transpose(1, 0, 2, 3), dy, s, p)


def dx_uncropped(x, w, b, dy, s, p):
    """The padded dx returned as it is: (N, C, H + 2p, W + 2p)."""
    return _dx_padded(x, w, dy, s, p)


def dx_cropped_top_left(x, w, b, dy, s, p):
    """dx_pad[:, :, :H, :W]: the padding removed from the wrong side."""
    h, ww = x.shape[2:]
    return _dx_padded(x, w, dy, s, p)[:, :, :h, :ww]


def dx_cropped_twice_from_start(x, w, b, dy, s, p):
    """dx_pad[:, :, 2p:, 2p:]: both sides' padding removed from the start."""
    return _dx_padded(x, w, dy, s, p)[:, :, 2 * p:, 2 * p:]


def dx_cropped_minus_pad(x, w, b, dy, s, p):
    """dx_pad[:, :, p:-p, p:-p]: right for pad > 0, empty for pad = 0."""
    return _dx_padded(x, w, dy, s, p)[:, :, p:-p, p:-p]


def dx_without_leftover(x, w, b, dy, s, p):
    """dy (zeros inserted) padded by HH - 1 - pad on both sides: dx is r rows short."""
    kh, kw = w.shape[2:]
    a = _pad(_dilate(dy, s), kh - 1 - p, kh - 1 - p, kw - 1 - p, kw - 1 - p)
    return _correlate(a, _rot180(w), a.shape[2] - kh + 1, a.shape[3] - kw + 1)


def blog_recipe_dx(x, w, b, dy, s, p):
    """The stride-1 recipe: rotated filter over dy padded by pad, no zeros inserted.

    Raises, as its loops do, where the padded dy is too short for x's rows.
    """
    a = _pad(dy, p, p, p, p)
    if a.shape[2] < x.shape[2] + w.shape[2] - 1 or a.shape[3] < x.shape[3] + w.shape[3] - 1:
        raise ValueError("operands could not be broadcast together")
    return _correlate(a, _rot180(w), *x.shape[2:])


# ----------------------------------------------------------------------------------------
# dw


def dw_without_stride(x, w, b, dy, s, p):
    """dw[f, c, k, l] = sum dy[n, f, i, j] xp[n, c, i + k, j + l]: the stride left out."""
    return _dw(x, dy, 1, p, *w.shape[2:])


def dw_leftover_uncropped(x, w, b, dy, s, p):
    """x correlated with dy (zeros inserted) kept whole: (F, C, HH + r_h, WW + r_w)."""
    (rh, rw), (kh, kw) = [e % s for e in _sizes(x, w, s, p)], w.shape[2:]
    return _dw(x, dy, s, p, kh + rh, kw + rw)


def dw_leftover_last(x, w, b, dy, s, p):
    """The same correlation's last HH rows and WW columns instead of its first."""
    (rh, rw), (kh, kw) = [e % s for e in _sizes(x, w, s, p)], w.shape[2:]
    return _dw(x, dy, s, p, kh + rh, kw + rw)[:, :, rh:, rw:]


# ----------------------------------------------------------------------------------------
# The forward's output size


def y_ceil_size(x, w, b, dy, s, p):
    """H' = ceil((H + 2p - HH) / s) + 1: one row too many where rows are left over."""
    eh, ew = _sizes(x, w, s, p)
    return _forward_sized(x, w, b, s, p, -(-eh // s) + 1, -(-ew // s) + 1)


def y_size_without_plus_one(x, w, b, dy, s, p):
    """H' = (H + 2p - HH) // s: the + 1 forgotten."""
    eh, ew = _sizes(x, w, s, p)
    return _forward_sized(x, w, b, s, p, eh // s, ew // s)


def y_size_without_padding(x, w, b, dy, s, p):
    """H' = (H - HH) // s + 1: the padding left out of the size (the windows still pad)."""
    eh, ew = _sizes(x, w, s, 0)
    return _forward_sized(x, w, b, s, p, eh // s + 1, ew // s + 1) if min(eh, ew) >= 0 else None


def y_size_with_one_sided_pad(x, w, b, dy, s, p):
    """H' = (H + p - HH) // s + 1: the padding counted once."""
    eh, ew = x.shape[2] + p - w.shape[2], x.shape[3] + p - w.shape[3]
    return _forward_sized(x, w, b, s, p, eh // s + 1, ew // s + 1) if min(eh, ew) >= 0 else None


# ----------------------------------------------------------------------------------------
# db


def db_over_spatial_only(x, w, b, dy, s, p):
    return dy.sum(axis=(2, 3))                               # (N, F)


def db_over_all_but_batch(x, w, b, dy, s, p):
    return dy.sum(axis=(1, 2, 3))                            # (N,)


def db_over_everything(x, w, b, dy, s, p):
    return np.asarray(dy.sum())                              # ()


def db_first_sample_only(x, w, b, dy, s, p):
    return dy[0].sum(axis=(1, 2))                            # (F,)


def db_over_batch_only(x, w, b, dy, s, p):
    return dy.sum(axis=0)                                    # (F, H', W')


def correct(x, w, b, dy, s, p):
    """{'forward', 'dx', 'dw', 'db'}: the right outputs, from convgrad."""
    y = functional.conv2d(x, w, b, stride=s, padding=p)
    dx, dw, db = functional.conv2d_backward(dy, x, w, b, stride=s, padding=p)
    return {"forward": y, "dx": dx, "dw": dw, "db": db}
