"""Columns kept from a layer's forward pass for its weight gradient (convgrad.nn layers).

The functional API is stateless; a layer that wants the forward's columns back in its
backward pass hands the engine a :class:`ColumnCache` through :func:`keep_columns` (a
context variable, so concurrent threads do not see each other's). The kept columns are
scratch held between calls and counted against the memory budget while they live
(:class:`convgrad.memory.Kept`).

Once the backward pass has read them, their values are dropped but their buffer may stay
with the layer for its next forward pass (a training loop asks for the same size again):
writing into memory freshly obtained from the system costs a page fault per 4 KiB, which
was measured at 5-10% of the digits model's step (BENCHMARKS.md). Such a spare buffer is
counted against the budget like kept columns and released with them when a call needs
the room; all layers together keep at most :data:`SPARE_MAX_BYTES` of spares.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref

import numpy as np

from ..geometry import ConvGeometry
from ..memory import Kept

__all__ = ["ColumnCache", "keep_columns", "active", "SPARE_MAX_BYTES", "spare_bytes"]

SPARE_MAX_BYTES = 16 * 2**20
"""All layers' spare column buffers together, at most (a buffer that would exceed it is
freed instead)."""

_spares: "weakref.WeakSet[Kept]" = weakref.WeakSet()
_spares_lock = threading.Lock()


def spare_bytes() -> int:
    """Bytes of spare column buffers held by layers right now (all threads)."""
    with _spares_lock:
        return sum(k.nbytes for k in _spares if k.array is not None)


class ColumnCache:
    """A layer's handle on the columns its forward pass lowered x into.

    Inside ``with keep_columns(cache, record=True)`` the engine's next :func:`forward`
    stores its columns here when they fit the budget (counted as kept scratch, see
    :class:`convgrad.memory.Kept`); inside ``with keep_columns(cache)`` the next
    :func:`grad_weight` of the same geometry and the same x array reads them instead of
    lowering x again, then releases them (their buffer may stay as the spare the next
    forward writes into). The columns are those of x *at the forward pass*: modifying x
    in place before the backward pass is not seen (as in PyTorch, where it is an error).

    A copy or a pickle of a layer gets a fresh, empty cache: scratch is not state.
    """

    def __init__(self):
        self._kept: Kept | None = None
        self._spare: Kept | None = None
        self._x = None
        self._recording = False

    def __reduce__(self):
        return ColumnCache, ()

    @property
    def nbytes(self) -> int:
        """Bytes of columns held now (not counting a spare buffer)."""
        kept = self._kept
        return 0 if kept is None or kept.array is None else kept.nbytes

    def reusable(self, nbytes: int, dtype) -> np.ndarray | None:
        """The spare buffer when it has exactly ``nbytes`` of ``dtype``; otherwise the
        spare (if any) is freed first, so that the new buffer does not coexist with it."""
        spare = self._spare
        if spare is not None and spare.array is not None:
            if spare.nbytes == nbytes and spare.array.dtype == dtype:
                return spare.array
        self.drop_spare()
        return None

    def spare_nbytes(self) -> int:
        spare = self._spare
        return 0 if spare is None or spare.array is None else spare.nbytes

    def drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.release()

    def _store(self, plan, x) -> None:
        self.release()
        spare = self._spare
        if spare is not None and spare.array is plan._columns:   # the spare, reused
            self._spare = None
            with _spares_lock:
                _spares.discard(spare)
            kept = spare
        else:
            self.drop_spare()
            kept = Kept(plan._columns)
        kept.plan = plan
        self._kept, self._x = kept, x

    def _take(self, g: ConvGeometry, x):
        """The plan holding the columns of (g, x), or None; the handle forgets them."""
        kept, recorded_x = self._kept, self._x
        if kept is None or kept.array is None or recorded_x is not x or kept.plan.g != g:
            self.release()
            return None
        self._x = None
        return kept.plan

    def release(self) -> None:
        """Drop the kept columns' values; keep their buffer as the spare when there is
        room (SPARE_MAX_BYTES), else free it."""
        kept, self._kept, self._x = self._kept, None, None
        if kept is None or kept.array is None:
            return
        kept.plan = None
        if self._spare is None and spare_bytes() + kept.nbytes <= SPARE_MAX_BYTES:
            self._spare = kept                 # still counted against the budget
            with _spares_lock:
                _spares.add(kept)
        else:
            kept.release()


_column_cache: contextvars.ContextVar = contextvars.ContextVar("convgrad_columns",
                                                               default=None)


@contextlib.contextmanager
def keep_columns(cache: ColumnCache, record: bool = False):
    """Let the engine record into (``record``) or read from ``cache`` inside the block."""
    cache._recording = record
    token = _column_cache.set(cache)
    try:
        yield cache
    finally:
        cache._recording = False
        _column_cache.reset(token)


def active():
    """The cache of the innermost :func:`keep_columns` block, or None."""
    return _column_cache.get()
