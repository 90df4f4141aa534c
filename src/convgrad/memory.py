"""The memory budget: how many bytes of scratch buffers one convolution call may hold.

The fast engine lowers a convolution to matrix products over a column buffer
(C * prod(kernel) rows, one column per output position). For large inputs that buffer
is many times the size of the input, so the batch is processed in chunks whose buffers
fit the budget. When not even one sample fits, a MemoryError says how much is needed,
before anything is allocated.

Every temporary a call holds at once is counted when the chunk size is chosen: the
column buffer, a matrix product's result before it is copied into place, a transposed
copy of dy, the weight gradient's partial sums. Arrays the caller gets back (y, dx, dw)
and the inputs are not scratch and are not counted.

The default is 512 MiB, or the value of the environment variable
``CONVGRAD_MEMORY_BUDGET`` (bytes, or with a suffix: ``256M``, ``2G``) when it is set.
Change the process default with :func:`set_memory_budget`, or the budget of a block of
code with::

    with convgrad.memory_budget("64M"):
        y = convgrad.conv2d(x, w)

The block's budget is a context variable (:mod:`contextvars`): it holds for the thread
(or asyncio task) that entered the block and nowhere else, so threads can each use their
own budget at the same time. A thread that never entered a block sees the process default.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
import sys
import threading
import weakref

import numpy as np

__all__ = ["DEFAULT_MEMORY_BUDGET", "get_memory_budget", "set_memory_budget",
           "memory_budget", "format_bytes", "plan_chunks", "check_fits", "check_allocation",
           "physical_memory", "Kept", "kept_bytes", "release_kept", "available", "chunk_step"]

DEFAULT_MEMORY_BUDGET = 512 * 2**20
_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _parse(value, name: str) -> int:
    """Bytes from an int or a string such as '512M'; positive and finite, or a clear error."""
    allowed = "a number of bytes (int) or a string like '512M', '2G'"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, str)):
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
    """The budget in bytes for one call's scratch buffers, here: the innermost
    :func:`memory_budget` block of this thread, else the process default."""
    block = _block_budget.get()
    return _default if block is None else block


def set_memory_budget(nbytes) -> int:
    """Set the process default (bytes, or a string like '256M'); returns the previous
    default. Inside a :func:`memory_budget` block the block's budget still wins."""
    global _default
    previous, _default = _default, _parse(nbytes, "memory budget")
    return previous


@contextlib.contextmanager
def memory_budget(nbytes):
    """Use another budget inside a ``with`` block, in this thread only; restored after."""
    token = _block_budget.set(_parse(nbytes, "memory budget"))
    try:
        yield
    finally:
        _block_budget.reset(token)


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


# ----------------------------------------------------------------------------------------
# Scratch kept between calls
#
# A layer may keep its forward pass's columns for the weight gradient of its backward pass
# (convgrad.nn). While kept they count against the budget of every call: a call plans
# with what is left, and when even one sample does not fit in that, every kept buffer is
# released (their layers recompute the columns) before a MemoryError is considered.

class Kept:
    """An array of scratch kept between calls, counted against the budget while it lives.

    ``array`` is None once released (by :meth:`release`, :func:`release_kept`, or when
    the owner drops it).
    """

    def __init__(self, array: np.ndarray):
        self.array = array
        self.nbytes = array.nbytes
        with _kept_lock:
            global _kept_bytes
            _kept_bytes += self.nbytes
            _kept.add(self)

    def release(self) -> None:
        with _kept_lock:
            global _kept_bytes
            if self.array is not None:
                self.array = None
                _kept_bytes -= self.nbytes
                _kept.discard(self)

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass


def kept_bytes() -> int:
    """Bytes of scratch kept between calls right now (all threads)."""
    return _kept_bytes


def release_kept() -> None:
    """Release every kept buffer; their owners recompute what they held."""
    for kept in list(_kept):
        kept.release()


def available(budget: int | None = None) -> int:
    """The budget less what is kept between calls: what one call may still allocate."""
    budget = get_memory_budget() if budget is None else budget
    return budget - _kept_bytes


def check_fits(nbytes: int, what: str, *, budget: int | None = None) -> None:
    """MemoryError naming the size when ``nbytes`` of scratch exceed the budget.

    Kept buffers are released first when that makes room.
    """
    budget = get_memory_budget() if budget is None else budget
    if nbytes > budget - _kept_bytes and _kept_bytes:
        release_kept()
    if nbytes > budget - _kept_bytes:
        raise MemoryError(
            f"{what} needs {format_bytes(nbytes)} of scratch memory for a single sample, "
            f"more than the memory budget of {format_bytes(budget)}; raise it with "
            f"convgrad.set_memory_budget() or CONVGRAD_MEMORY_BUDGET, or use smaller inputs")


def plan_chunks(batch: int, bytes_per_sample: int, what: str, *, fixed_bytes: int = 0,
                preferred_bytes: int = 8 * 2**20) -> int:
    """How many samples to process at once.

    ``bytes_per_sample`` counts every temporary that grows with the chunk, ``fixed_bytes``
    those that do not (partial sums of dw, a rotated copy of w). As many samples as fit in
    ``preferred_bytes`` (buffers that stay in the CPU's cache are faster to fill and to
    multiply), at least one, never more than the budget (less kept buffers) allows.
    Raises MemoryError, naming the size needed, when one sample alone exceeds the budget:
    before anything is allocated.
    """
    check_fits(fixed_bytes + bytes_per_sample, what)
    return chunk_step(batch, bytes_per_sample, fixed_bytes, preferred_bytes, available())


def chunk_step(batch: int, bytes_per_sample: int, fixed_bytes: int, preferred_bytes: int,
               room: int) -> int:
    """:func:`plan_chunks`'s answer once one sample is known to fit in ``room`` bytes."""
    if batch <= 1 or bytes_per_sample == 0:
        return max(batch, 1)
    fit = max(1, min(preferred_bytes, room - fixed_bytes) // bytes_per_sample)
    return int(min(batch, fit))


_default = _from_environment()
_kept_lock = threading.RLock()        # re-entrant: __del__ may run inside it
_kept: "weakref.WeakSet[Kept]" = weakref.WeakSet()
_kept_bytes = 0
_block_budget: contextvars.ContextVar = contextvars.ContextVar("convgrad_memory_budget",
                                                               default=None)
