"""Padding modes: which ``padding_mode`` a convolution accepts, and how much it may pad.

What each mode copies into the border, and the adjoint that folds the border's gradient
back, live in :mod:`convgrad.padding`; this module only validates, before any work.
"""
from __future__ import annotations

from .arrays import AXES

__all__ = ["PADDING_MODES", "check_padding_mode", "check_mode_fits"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# names other libraries give these modes (NumPy's np.pad, SciPy, TensorFlow)
_MODE_SYNONYMS = {"constant": "zeros", "zero": "zeros", "edge": "replicate",
                  "nearest": "replicate", "wrap": "circular", "periodic": "circular",
                  "reflection": "reflect", "mirror": "reflect"}


def check_padding_mode(padding_mode, op: str = "conv", *, transposed: bool = False) -> str:
    """'zeros', 'reflect', 'replicate' or 'circular' (PyTorch's padding_mode), or an error.

    A transposed convolution accepts 'zeros' only, as in PyTorch: its padding crops the
    output instead of extending the input, so there is nothing for a mode to fill.
    """
    allowed = ", ".join(repr(m) for m in PADDING_MODES)
    if not isinstance(padding_mode, str):
        raise TypeError(f"{op}: padding_mode must be one of {allowed}, got {padding_mode!r} "
                        f"({type(padding_mode).__name__})")
    if padding_mode not in PADDING_MODES:
        known = _MODE_SYNONYMS.get(padding_mode.lower(), padding_mode.lower())
        hint = f" (did you mean {known!r}?)" if known in PADDING_MODES else ""
        raise ValueError(f"{op}: padding_mode={padding_mode!r} is not known; expected one of "
                         f"{allowed}{hint}")
    if transposed and padding_mode != "zeros":
        raise ValueError(f"{op}: padding_mode={padding_mode!r} is not supported by a transposed "
                         f"convolution, only 'zeros' is (as in PyTorch): its padding crops the "
                         f"output, there is no input border for a mode to fill")
    return padding_mode


def check_mode_fits(op: str, nd: int, in_size, padding, mode: str, x_name: str = "x") -> None:
    """PyTorch's limits: reflect needs padding < size, circular padding <= size, per side.

    A reflection mirrors x about its edge entry, which is not repeated, so it can add at
    most size - 1 entries; a circular padding may wrap around at most once. ``padding``
    holds ``(lo, hi)`` pairs per axis.
    """
    if mode not in ("reflect", "circular"):
        return
    for axis, n, (lo, hi) in zip(AXES[nd], in_size, padding):
        limit = n - 1 if mode == "reflect" else n
        if max(lo, hi) > limit:
            rule = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(
                f"{op}: padding ({lo}, {hi}) along {axis} is too large for "
                f"padding_mode={mode!r}: {x_name} has size {n} along {axis}, and {mode} "
                f"padding must be {rule} the size, so at most {limit} per side; use less "
                f"padding, a larger input, or padding_mode='replicate' or 'zeros'")
