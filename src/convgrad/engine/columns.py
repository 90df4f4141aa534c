"""Columns kept from a layer's forward pass for its weight gradient (convgrad.nn layers).

The functional API is stateless; a layer that wants the forward's columns back in its
backward pass hands the engine a :class:`ColumnCache` through :func:`keep_columns` (a
context variable, so concurrent threads do not see each other's). The kept columns are
scratch held between calls and counted against the memory budget while they live
(:class:`convgrad.memory.Kept`).
"""
from __future__ import annotations

import contextlib
import contextvars

from ..geometry import ConvGeometry
from ..memory import Kept

__all__ = ["ColumnCache", "keep_columns", "active"]



class ColumnCache:
    """A layer's handle on the columns its forward pass lowered x into.

    Inside ``with keep_columns(cache, record=True)`` the engine's next :func:`forward`
    stores its columns here when they fit the budget (counted as kept scratch, see
    :class:`convgrad.memory.Kept`); inside ``with keep_columns(cache)`` the next
    :func:`grad_weight` of the same geometry and the same x array reads them instead of
    lowering x again, then releases them. The columns are those of x *at the forward
    pass*: modifying x in place before the backward pass is not seen (as in PyTorch,
    where it is an error).
    """

    def __init__(self):
        self._kept: Kept | None = None
        self._x = None
        self._recording = False

    @property
    def nbytes(self) -> int:
        kept = self._kept
        return 0 if kept is None or kept.array is None else kept.nbytes

    def _store(self, plan, x) -> None:
        self.release()
        self._kept, self._x = plan.kept(), x

    def _take(self, g: ConvGeometry, x):
        """The plan holding the columns of (g, x), or None; the handle forgets them."""
        kept, recorded_x = self._kept, self._x
        if kept is None or kept.array is None or recorded_x is not x or kept.plan.g != g:
            self.release()
            return None
        self._x = None
        return kept.plan

    def release(self) -> None:
        if self._kept is not None:
            self._kept.release()
        self._kept = self._x = None


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
