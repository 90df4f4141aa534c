"""Comparing a user's output with the right one, and saying where the wrong entries are.

An entry is wrong when it differs from convgrad's by more than ``TOLERANCE`` times the
largest entry of convgrad's answer (float64 sums in another order differ by ~1e-15), or
is not finite. The wrong entries are then described in words: everywhere, only the last
rows or columns, only the border, only one channel (or filter, or sample), or a count.
"""
from __future__ import annotations

import numpy as np

from .results import OutputResult

__all__ = ["TOLERANCE", "judge", "same_values", "locate", "rel_error"]

TOLERANCE = 1e-8

# the name of each axis of each output, for 'only channel 2' and the like
_AXES = {"forward": ("sample", "filter"), "dx": ("sample", "channel"),
         "dw": ("filter", "channel"), "db": ("filter",)}


def _scale(user: np.ndarray, right: np.ndarray) -> float:
    """The largest entry of either (so an all-zero right answer still has a scale)."""
    with np.errstate(invalid="ignore"):
        return max(float(np.max(np.abs(right))), float(np.nan_to_num(np.max(np.abs(user)))),
                   1e-300)


def rel_error(user: np.ndarray, right: np.ndarray) -> float:
    """max |user - right| / max(max |right|, max |user|): at most 2 for finite arrays of one
    shape; nan or inf where the user's array is not finite."""
    if right.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        return float(np.max(np.abs(user - right))) / _scale(user, right)


def _wrong_mask(user: np.ndarray, right: np.ndarray) -> np.ndarray:
    if right.size == 0:
        return np.zeros(right.shape, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        return ~(np.abs(user - right) <= TOLERANCE * _scale(user, right))


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a and b have one shape and equal entries (to ``TOLERANCE`` of the larger)."""
    if a.shape != b.shape:
        return False
    if a.size == 0:
        return True
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(a - b) <= TOLERANCE * scale))


def judge(user, right: np.ndarray, output: str) -> OutputResult:
    """The verdict on one output: ``user`` is an array or a CallError."""
    if not isinstance(user, np.ndarray):
        return OutputResult("error", error=user)
    if user.shape != right.shape:
        return OutputResult("wrong", where=f"shape {tuple(user.shape)} instead of "
                            f"{tuple(right.shape)}", shape=tuple(user.shape))
    mask = _wrong_mask(user, right)
    error = rel_error(user, right)
    if not mask.any():
        return OutputResult("ok", rel_error=error)
    return OutputResult("wrong", rel_error=error, where=locate(mask, output))


def _plural(n: int, word: str) -> str:
    return f"{word}" if n == 1 else f"{n} {word}s"


def _band(m2: np.ndarray, last: bool):
    """(rows, columns) of the smallest band at the end (or start) holding every True."""
    h, w = m2.shape
    if not last:
        m2 = m2[::-1, ::-1]
    best = None
    for kh in range(0, h // 2 + 1):
        rest = m2[:h - kh]
        cols = np.nonzero(rest.any(axis=0))[0]
        kw = w - int(cols.min()) if cols.size else 0
        if kw > w // 2 or (kh == 0 and kw == 0):
            continue
        area = kh * w + kw * h - kh * kw
        if best is None or area < best[0]:
            best = (area, kh, kw)
    return None if best is None or best[0] >= h * w else best[1:]


def _band_words(kh: int, kw: int, side: str) -> str:
    parts = [_plural(k, word) for k, word in ((kh, "row"), (kw, "column")) if k]
    return f"only the {side} " + " and ".join(parts)


def locate(mask: np.ndarray, output: str) -> str:
    """Where the True entries of ``mask`` (the wrong ones) are, in words."""
    wrong, total = int(mask.sum()), mask.size
    if wrong == total:
        return "everywhere"
    if mask.ndim == 4 and min(mask.shape[2:]) >= 2:
        m2 = mask.any(axis=(0, 1))                                       # (H, W)
        for last, side in ((True, "last"), (False, "first")):
            band = _band(m2, last)
            if band:
                return _band_words(*band, side)
        h, w = m2.shape
        for width in range(1, min(h, w) // 2):
            inner = m2[width:h - width, width:w - width]
            if not inner.any():
                return f"only the border ({width} wide)"
    for axis, name in enumerate(_AXES.get(output, ())):
        if mask.shape[axis] > 1:
            hit = np.nonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))[0]
            if hit.size == 1:
                return f"only {name} {int(hit[0])}"
    return f"{wrong} of {total} entries"
