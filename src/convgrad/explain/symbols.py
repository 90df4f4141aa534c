"""Symbol names of the classic hand derivation: x1..x4, w11, dy23, x_10_3.

Indices are 1-based, row then column. They are written one digit after another
(``x23`` is row 2, column 3) unless one of a symbol's indices exceeds 9, in which case
every index is preceded by an underscore (``x_10_3``, ``dy_2_11``, ``x_12`` in 1-D), so a
name is never ambiguous. The symbols carry no assumptions, so ``sympy.Symbol("w2")``
written by a user is the same symbol.
"""
from __future__ import annotations

import numpy as np

from .._optional import require

sp = require("sympy", "explain", "convgrad explain")

__all__ = ["symbol_name", "parse_symbol_name", "symbol_grid", "latex_names", "to_sympy_array", "to_object_array"]


def symbol_name(stem: str, index) -> str:
    """The name of ``stem`` at the 0-based ``index`` (a tuple): ('x', (9, 2)) -> 'x_10_3'."""
    one_based = [int(i) + 1 for i in index]
    if any(i > 9 for i in one_based):
        return stem + "".join(f"_{i}" for i in one_based)
    return stem + "".join(str(i) for i in one_based)


def parse_symbol_name(name: str, nd: int) -> tuple[str, tuple[int, ...]]:
    """The inverse of :func:`symbol_name`: ('x_10_3', 2) -> ('x', (9, 2)); ('dy12', 2) ->
    ('dy', (0, 1))."""
    if "_" in name:
        stem, *digits = name.split("_")
        indices = [int(v) for v in digits]
    else:
        stem = name.rstrip("0123456789")
        indices = [int(v) for v in name[len(stem):]]
    if len(indices) != nd or not stem:
        raise ValueError(f"{name!r} is not the name of an entry of a {nd}-D array")
    return stem, tuple(i - 1 for i in indices)


def symbol_grid(stem: str, shape) -> np.ndarray:
    """An object array of the given spatial ``shape`` holding Symbols ``stem<indices>``."""
    grid = np.empty(tuple(shape), dtype=object)
    for index in np.ndindex(*grid.shape):
        grid[index] = sp.Symbol(symbol_name(stem, index))
    return grid


def latex_names(*grids: np.ndarray) -> dict:
    """{Symbol: LaTeX} for the underscore names: x_10_3 -> x_{10,3} (SymPy writes x_{10 3})."""
    names = {}
    for grid in grids:
        for symbol in np.asarray(grid, dtype=object).flat:
            if isinstance(symbol, sp.Symbol) and "_" in symbol.name:
                stem, *indices = symbol.name.split("_")
                names[symbol] = f"{stem}_{{{','.join(indices)}}}"
    return names


def to_sympy_array(a: np.ndarray):
    """A NumPy object array as an immutable SymPy Array of the same shape (zeros as Integer 0)."""
    a = np.asarray(a, dtype=object)
    return sp.ImmutableDenseNDimArray([sp.sympify(v) for v in a.flat], a.shape)


def to_object_array(array) -> np.ndarray:
    """A SymPy Array (or any array-like with .shape and tuple indexing) as a NumPy object
    array of the same shape."""
    out = np.empty(tuple(array.shape), dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = array[index]
    return out
