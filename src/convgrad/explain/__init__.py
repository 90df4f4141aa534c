"""Explain the math: the convolution's backward pass derived symbolically, drawn, and explored.

    from convgrad.explain import derive, draw_case, html
    d = derive((4,), (2,))          # one sample, one channel: x1..x4, w1, w2, b, dy1..dy3
    d.dx[1]                         # dy1*w2 + dy2*w1, by sympy.diff of L = sum(dy * y)
    d.formula("dx", (1,))           # 'dx2 = w2·dy1 + w1·dy2'
    d.check().holds                 # True: equals the identities of docs/math.md
    draw_case(d, "case.png")        # the grids, each cell labeled with its symbol
    html("explorer.html")           # the interactive explorer: one self-contained page

The derivation needs SymPy (and matplotlib for figures): ``pip install 'convgrad[explain]'``;
the HTML explorer needs NumPy only. Importing :mod:`convgrad` never imports this package,
and the names below are imported on first use, so ``html`` works without SymPy.

Public names:

* :func:`derive` -> :class:`Derivation` (y, dx, dw as SymPy Arrays, db, Jacobians,
  :meth:`~Derivation.terms`, :meth:`~Derivation.formula`, :meth:`~Derivation.check` ->
  :class:`IdentityCheck`, :meth:`~Derivation.evaluate`); :func:`case_geometry`;
* :func:`conv_identities` (the general rule), :func:`naive_identities` (the stride-1
  recipe, wrong at stride 2) and :func:`transposed_identities`, each -> :class:`Identity`,
  and :func:`correlate`;
* :func:`text` / :func:`latex` / :func:`latex_document`: the derivation as printed by
  ``convgrad explain``;
* :func:`draw_case`: the figure; :func:`compare_numerically`: the identities on numbers;
* :func:`html`: the interactive explorer (``convgrad explain --html FILE``);
* :func:`run`: the ``convgrad explain`` command; :data:`CASES`: its ready-made cases.
"""
from __future__ import annotations

import importlib

# public name -> the module (in this package) that defines it
_WHERE = {
    "CASES": "command", "run": "command",
    "Derivation": "derivation", "IdentityCheck": "derivation", "derive": "derivation",
    "case_geometry": "case",
    "draw_case": "figure",
    "html": "explorer",
    "Identity": "identities", "conv_identities": "identities", "correlate": "identities",
    "naive_identities": "identities", "transposed_identities": "identities",
    "NumericComparison": "numeric", "compare_numerically": "numeric",
    "describe": "render", "latex": "render", "latex_document": "render", "text": "render",
    "symbol_name": "symbols",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
