"""Scalars and tuples: sizes, strides, dilations, paddings and switches, normalized.

One normalizer per kind of argument, imported everywhere (the conv, transposed conv and
pooling geometries, the nn layers): each accepts Python and NumPy integers but not bools,
and its errors name the bad value and what is allowed. Padding leaves here as explicit
``(lo, hi)`` pairs per axis, or as the strings 'same' / 'valid', which
:mod:`convgrad.geometry.conv` resolves once it knows the input size.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["PADDING_STRINGS", "is_int", "positive_int", "ntuple", "normalize_padding",
           "check_flag"]

PADDING_STRINGS = ("valid", "same")


def is_int(value) -> bool:
    """True for Python and NumPy integers, False for bool (a bool is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(value, name: str, what: str = "a positive int") -> int:
    """``value`` as an int >= 1, or a TypeError / ValueError naming ``name`` and ``what``."""
    if not is_int(value):
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def ntuple(value, n: int, name: str) -> tuple[int, ...]:
    """Normalize a stride or dilation: a positive int, or a sequence of ``n`` positive ints.

    >>> ntuple(2, 2, "stride")
    (2, 2)
    >>> ntuple((1, 3), 2, "stride")
    (1, 3)
    """
    allowed = f"a positive int or a tuple of {n} positive ints"
    if is_int(value):
        if value < 1:
            raise ValueError(f"{name} must be {allowed}, got {value!r}")
        return (int(value),) * n
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(
                f"{name} has {len(value)} entries, {tuple(value)!r}; expected {allowed}"
            )
    else:
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    for item in value:
        if not is_int(item):
            raise TypeError(f"{name} must be {allowed}, got {tuple(value)!r}: "
                            f"{item!r} is a {type(item).__name__}")
        if item < 1:
            raise ValueError(f"{name} must be {allowed}, got {tuple(value)!r}")
    return tuple(int(item) for item in value)


def _nonnegative(item, name: str, value, allowed: str) -> int:
    if not is_int(item):
        raise TypeError(f"{name} must be {allowed}, got {value!r}: "
                        f"{item!r} is a {type(item).__name__}")
    if item < 0:
        raise ValueError(f"{name} must be {allowed}, got {value!r}: negative padding is not "
                         f"allowed (crop the input instead)")
    return int(item)


def normalize_padding(padding, n: int, name: str = "padding", *, strings: bool = True):
    """Normalize padding to ``(lo, hi)`` pairs per axis, or return 'same' / 'valid'.

    Accepts an int (all sides), a tuple of ``n`` ints (per axis, both sides), or a tuple of
    ``n`` entries each an int or a ``(lo, hi)`` pair. Strings are resolved later by
    :func:`~convgrad.geometry.conv.same_padding`, which needs the input size.

    >>> normalize_padding(1, 2)
    ((1, 1), (1, 1))
    >>> normalize_padding(((0, 1), 2), 2)
    ((0, 1), (2, 2))
    """
    allowed = (f"a non-negative int, a tuple of {n} non-negative ints, or a tuple of {n} "
               f"(lo, hi) pairs" + (", or 'same' or 'valid'" if strings else ""))
    if isinstance(padding, str):
        if not strings:
            raise ValueError(f"{name}={padding!r} is not supported here; expected {allowed}")
        if padding in PADDING_STRINGS:
            return padding
        hint = (f" (padding strings are lower case: did you mean {padding.lower()!r}?)"
                if padding.lower() in PADDING_STRINGS else "")
        raise ValueError(f"{name}={padding!r} is not a known padding string; expected "
                         f"'same' or 'valid'{hint}")
    if is_int(padding):
        p = _nonnegative(padding, name, padding, allowed)
        return ((p, p),) * n
    if not isinstance(padding, (tuple, list)):
        raise TypeError(f"{name} must be {allowed}, got {padding!r} "
                        f"({type(padding).__name__})")
    if len(padding) != n:
        extra = ""
        if n == 1 and len(padding) == 2 and all(is_int(p) for p in padding):
            extra = f"; for asymmetric padding write (({padding[0]}, {padding[1]}),)"
        raise ValueError(f"{name} has {len(padding)} entries, {tuple(padding)!r}; expected "
                         f"{allowed}{extra}")
    pairs = []
    for item in padding:
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise ValueError(f"{name} must be {allowed}, got {tuple(padding)!r}: "
                                 f"{tuple(item)!r} is not a (lo, hi) pair")
            pairs.append(tuple(_nonnegative(p, name, tuple(padding), allowed) for p in item))
        else:
            p = _nonnegative(item, name, tuple(padding), allowed)
            pairs.append((p, p))
    return tuple(pairs)


def check_flag(value, op: str, name: str) -> bool:
    """A switch (pooling's ceil_mode, count_include_pad, return_indices): a bool, no stand-ins."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r} "
                        f"({type(value).__name__})")
    return bool(value)
