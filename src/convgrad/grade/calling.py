"""Calling the user's functions: the two APIs, errors traced to the user's line, caches
kept, inputs checked for modification, and central differences of the user's forward.

A :class:`Session` lives where the user's code runs (the worker process, or this process
for functions passed in directly). Its methods take and return only arrays, numbers and
:class:`~.results.CallError`, so they can cross a process boundary; the user's caches
never leave it.

APIs (x (N, C, H, W), w (F, C, HH, WW), b (F,), s and p ints):

* 'cs231n':     forward(x, w, b, conv_param) -> (out, cache);
                backward(dout, cache) -> (dx, dw, db)
* 'functional': forward(x, w, b, stride, pad) -> out;
                backward(dy, x, w, b, stride, pad) -> (dx, dw, db)
"""
from __future__ import annotations

import copy
import linecache
import os
import traceback

import numpy as np

from .results import CallError

__all__ = ["APIS", "Session", "describe", "Timeout"]

APIS = ("cs231n", "functional")


class Timeout(BaseException):
    """Raised inside the user's code by a watchdog (BaseException: `except Exception`
    in the user's code does not swallow it)."""


def describe(error: BaseException, files) -> CallError:
    """The exception as type, message and the last line of the user's files it passed."""
    if isinstance(error, Timeout):
        return CallError("Timeout", str(error))
    where = None
    files = {os.path.realpath(f) for f in files if f}
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if os.path.realpath(frame.filename) in files:
            line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
            where = f"{os.path.basename(frame.filename)}:{frame.lineno}: {line}"
            break
    if where is None and isinstance(error, SyntaxError) and error.filename:
        where = f"{os.path.basename(error.filename)}:{error.lineno}: {(error.text or '').strip()}"
    message = str(error).splitlines()[0] if str(error) else ""
    return CallError(type(error).__name__, message[:300], where)


def _array(value, what: str):
    """The user's result as a float64 array, or a TypeError saying what it was."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return np.array(value, dtype=np.float64)
    if value is None:
        raise TypeError(f"{what} is None, not an array")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} is a {type(value).__name__}, not an array of numbers") from None
    return array


def _snapshot(value, depth: int = 0):
    """A deep copy of the arrays (and dicts, tuples, lists) in value, to compare later."""
    if depth > 4:
        return None
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _snapshot(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_snapshot(v, depth + 1) for v in value)
    try:
        return copy.copy(value)
    except Exception:                   # noqa: BLE001  (an object that will not copy)
        return None


def _unchanged(before, after, depth: int = 0) -> bool:
    if depth > 4 or before is None:
        return True
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.shape == after.shape
                and bool(np.array_equal(before, after, equal_nan=before.dtype.kind in "fc")))
    if isinstance(before, dict):
        return (isinstance(after, dict) and before.keys() == after.keys()
                and all(_unchanged(before[k], after[k], depth + 1) for k in before))
    if isinstance(before, (tuple, list)):
        return (isinstance(after, (tuple, list)) and len(before) == len(after)
                and all(_unchanged(a, b, depth + 1) for a, b in zip(before, after)))
    try:
        return bool(before == after)
    except Exception:                   # noqa: BLE001
        return True


class Session:
    """The user's forward and/or backward, called the way their API says.

    Each call returns ``(value, mutated)`` or ``(CallError, mutated)``, where ``mutated``
    lists the arguments the call modified.
    """

    def __init__(self, forward, backward, api: str, names=("forward", "backward")):
        self.forward_fn, self.backward_fn, self.api = forward, backward, api
        self.names = names
        self.caches = {}
        self.files = {getattr(getattr(f, "__code__", None), "co_filename", None)
                      for f in (forward, backward)}

    # -- the two calls ---------------------------------------------------------------

    def _forward(self, x, w, b, s, p):
        """(out array, cache) from the user's forward; the arguments are private copies."""
        name = self.names[0]
        if self.api == "cs231n":
            result = self.forward_fn(x, w, b, {"stride": s, "pad": p})
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise TypeError(f"{name} must return (out, cache), got "
                                f"{type(result).__name__}")
            return _array(result[0], f"{name}'s out"), result[1]
        return _array(self.forward_fn(x, w, b, s, p), f"{name}'s output"), None

    def forward(self, token, x, w, b, s, p):
        """The user's forward on copies of the data; its cache is kept under ``token``."""
        args = [x.copy(), w.copy(), b.copy()]
        before = [a.copy() for a in args]
        try:
            out, cache = self._forward(*args, s, p)
        except (Exception, SystemExit) as error:     # noqa: BLE001 (any user error)
            return describe(error, self.files), []
        mutated = [n for n, a, c in zip("xwb", args, before) if not np.array_equal(a, c)]
        self.caches = {token: cache}                 # only the latest: memory stays bounded
        return out, mutated

    def backward(self, token, dy, x, w, b, s, p):
        """(dx, dw, db) from the user's backward, with the forward's cache when there is
        one for ``token``, else the cache the course's forward builds: (x, w, b, conv_param)."""
        name = self.names[1]
        dout = dy.copy()
        if self.api == "cs231n":
            own = self.caches.pop(token, None)
            cache = own if own is not None else (x.copy(), w.copy(), b.copy(),
                                                 {"stride": s, "pad": p})
            watched = {"cache": cache}
        else:
            watched = {"x": x.copy(), "w": w.copy(), "b": b.copy()}
        before = {key: _snapshot(value) for key, value in watched.items()}
        try:
            if self.api == "cs231n":
                result = self.backward_fn(dout, cache)
            else:
                result = self.backward_fn(dout, watched["x"], watched["w"], watched["b"], s, p)
            if not isinstance(result, (tuple, list)) or len(result) != 3:
                length = f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
                raise TypeError(f"{name} must return (dx, dw, db), got "
                                f"{type(result).__name__}{length}")
            value = tuple(_array(g, f"{name}'s {n}") for g, n in zip(result, ("dx", "dw", "db")))
        except (Exception, SystemExit) as error:     # noqa: BLE001 (any user error)
            value = describe(error, self.files)
        mutated = [] if np.array_equal(dy, dout) else ["dout"]
        mutated += [key for key in watched if not _unchanged(before[key], watched[key])]
        return value, mutated

    def drop(self, token) -> None:
        self.caches.pop(token, None)

    # -- central differences of the user's own forward ---------------------------------

    def directional(self, x, w, b, s, p, dy, directions: dict, h: float):
        """For each input name ('x', 'w', 'b') and each unit direction v given for it:
        (L(a + h v) - L(a - h v)) / 2h with L = sum(out * dy) from the user's forward."""
        inputs = {"x": x, "w": w, "b": b}
        derivatives = {}
        try:
            for name, vs in directions.items():
                values = []
                for v in vs:
                    losses = []
                    for sign in (1.0, -1.0):
                        moved = dict(inputs, **{name: inputs[name] + sign * h * v})
                        out, _ = self._forward(moved["x"].copy(), moved["w"].copy(),
                                               moved["b"].copy(), s, p)
                        if out.shape != dy.shape:
                            raise ValueError(f"the forward's output has shape {out.shape}, "
                                             f"not {dy.shape}")
                        losses.append(float(np.sum(out * dy)))
                    values.append((losses[0] - losses[1]) / (2 * h))
                derivatives[name] = values
        except (Exception, SystemExit) as error:     # noqa: BLE001
            return describe(error, self.files)
        return derivatives
