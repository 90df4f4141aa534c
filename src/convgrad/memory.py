"""The memory budget: how many bytes of scratch buffers one convolution call may hold.

The fast engine lowers a convolution to matrix products over a column buffer
(C * prod(kernel) rows, one column per output position). For large inputs that buffer
is many times the size of the input, so the batch is processed in chunks whose buffers
fit the budget. When not even one sample fits, a MemoryError says how much is needed,
before anything is allocated.

The default is 512 MiB, or the value of the environment variable
``CONVGRAD_MEMORY_BUDGET`` (bytes, or with a suffix: ``256M``, ``2G``) when it is set.
Change it for the whole process with :func:`set_memory_budget`, or for a block of code::

    with convgrad.memory_budget("64M"):
        y = convgrad.conv2d(x, w)
"""
from __future__ import annotations

import contextlib
import math
import os
import sys

import numpy as np

__all__ = ["DEFAULT_MEMORY_BUDGET", "get_memory_budget", "set_memory_budget",
           "memory_budget", "format_bytes", "plan_chunks", "check_allocation",
           "physical_memory"]

DEFAULT_MEMORY_BUDGET = 512 * 2**20
_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _parse(value, name: str) -> int:
    """Bytes from an int or a string such as '512M'; positive and finite, or a clear error."""
    allowed = "a number of bytes (int) or a string like '512M', '2G'"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    if isinstance(value, str):
        text = value.strip().upper().removesuffix("B").removesuffix("I")
        suffix = text[-1:] if text[-1:] in ("K", "M", "G", "T") else ""
        number = text[:len(text) - len(suffix)]
        try:
            amount = float(number) * _SUFFIXES[suffix]
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a size; expected {allowed}") from None
        if not math.isfinite(amount):
            raise ValueError(f"{name}={value!r} is not a finite size; expected {allowed}")
        value = int(amount)
    if value < 1:
        raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
    return int(value)


def _from_environment() -> int:
    """CONVGRAD_MEMORY_BUDGET if set and valid; a bad value warns and keeps the default
    (it must not stop `import convgrad`)."""
    text = os.environ.get("CONVGRAD_MEMORY_BUDGET")
    if not text:
        return DEFAULT_MEMORY_BUDGET
    try:
        return _parse(text, "CONVGRAD_MEMORY_BUDGET")
    except (TypeError, ValueError) as error:
        import warnings
        warnings.warn(f"{error}; using the default of {format_bytes(DEFAULT_MEMORY_BUDGET)}",
                      stacklevel=2)
        return DEFAULT_MEMORY_BUDGET


def get_memory_budget() -> int:
    """The current budget in bytes for one call's scratch buffers."""
    return _budget


def set_memory_budget(nbytes) -> int:
    """Set the budget (bytes, or a string like '256M'); returns the previous value."""
    global _budget
    previous, _budget = _budget, _parse(nbytes, "memory budget")
    return previous


@contextlib.contextmanager
def memory_budget(nbytes):
    """Use another budget inside a ``with`` block, then restore the previous one."""
    previous = set_memory_budget(nbytes)
    try:
        yield
    finally:
        set_memory_budget(previous)


def format_bytes(nbytes: float) -> str:
    """1536 -> "1.5 KiB": binary units up to EiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = 0
    while nbytes >= 1024 and power < len(units) - 1:
        nbytes /= 1024
        power += 1
    return f"{nbytes:.0f} B" if power == 0 else f"{nbytes:.1f} {units[power]}"


def physical_memory() -> int:
    """Bytes of RAM on this machine (or the largest array size, where that is unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return sys.maxsize


def check_allocation(shape, dtype, what: str) -> None:
    """MemoryError naming the size, before allocating, for an array that cannot exist here.

    Sizes are computed with Python integers, so absurd geometries (padding 10**9) are
    reported as such instead of overflowing inside NumPy.
    """
    nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    if nbytes > min(physical_memory(), sys.maxsize):
        raise MemoryError(f"{what} of shape {tuple(shape)} would need {format_bytes(nbytes)}, "
                          f"more than this machine's {format_bytes(physical_memory())} of "
                          f"memory; check the sizes, padding and stride")


def plan_chunks(batch: int, bytes_per_sample: int, what: str, *,
                preferred_bytes: int = 8 * 2**20) -> int:
    """How many samples to process at once.

    As many as fit in ``preferred_bytes`` (buffers that stay in the CPU's last-level cache
    are faster to fill and to multiply), at least one, never more than the budget allows.
    Raises MemoryError, naming the size needed, when one sample alone exceeds the budget.
    """
    if bytes_per_sample > _budget:
        raise MemoryError(
            f"{what} needs {format_bytes(bytes_per_sample)} of scratch memory for a single "
            f"sample, more than the memory budget of {format_bytes(_budget)}; raise it with "
            f"convgrad.set_memory_budget() or CONVGRAD_MEMORY_BUDGET, or use smaller inputs")
    if batch <= 1 or bytes_per_sample == 0:
        return max(batch, 1)
    fit = max(1, min(preferred_bytes, _budget) // bytes_per_sample)
    return int(min(batch, fit))


_budget = _from_environment()
