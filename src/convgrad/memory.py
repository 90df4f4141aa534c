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
import os

__all__ = ["DEFAULT_MEMORY_BUDGET", "get_memory_budget", "set_memory_budget",
           "memory_budget", "format_bytes", "plan_chunks"]

DEFAULT_MEMORY_BUDGET = 512 * 2**20
_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _parse(value, name: str) -> int:
    """Bytes from an int or a string such as '512M'; positive, or a clear error."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number of bytes (int) or a string like '512M', "
                        f"got {value!r}")
    if isinstance(value, str):
        text = value.strip().upper().removesuffix("B").removesuffix("I")
        number, suffix = (text[:-1], text[-1]) if text[-1:] in "KMGT" else (text, "")
        try:
            value = int(float(number) * _SUFFIXES[suffix])
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a size; expected bytes as an int or a "
                             f"string like '512M', '2G'") from None
    elif isinstance(value, int):
        value = int(value)
    else:
        raise TypeError(f"{name} must be a number of bytes (int) or a string like '512M', "
                        f"got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive number of bytes, got {value}")
    return value


_budget = (_parse(os.environ["CONVGRAD_MEMORY_BUDGET"], "CONVGRAD_MEMORY_BUDGET")
           if os.environ.get("CONVGRAD_MEMORY_BUDGET") else DEFAULT_MEMORY_BUDGET)


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
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


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
