"""Explain the math: the convolution's backward pass derived symbolically, and drawn.

    from convgrad.explain import derive, draw_case
    d = derive((4,), (2,))          # one sample, one channel: x1..x4, w1, w2, b, dy1..dy3
    d.dx[1]                         # dy1*w2 + dy2*w1, by sympy.diff of L = sum(dy * y)
    d.check().holds                 # True: equals the identities of docs/math.md
    draw_case(d, "case.png")        # the grids, each cell labeled with its symbol

Needs SymPy (and matplotlib for figures): ``pip install 'convgrad[explain]'``. Importing
:mod:`convgrad` never imports this package.

Public names:

* :func:`derive` -> :class:`Derivation` (y, dx, dw as SymPy Arrays, db, Jacobians,
  :meth:`~Derivation.check` -> :class:`IdentityCheck`, :meth:`~Derivation.evaluate`);
* :func:`conv_identities` (the general rule) and :func:`naive_identities` (the stride-1
  recipe, wrong at stride 2), each -> :class:`Identity`, and :func:`correlate`;
* :func:`text` / :func:`latex`: the derivation as printed by ``convgrad explain``;
* :func:`draw_case`: the figure; :func:`compare_numerically`: the identities on numbers;
* :func:`run`: the ``convgrad explain`` command; :data:`CASES`: its ready-made cases.
"""
from .command import CASES, run
from .derivation import Derivation, IdentityCheck, case_geometry, derive
from .figure import draw_case
from .identities import Identity, conv_identities, correlate, naive_identities
from .numeric import NumericComparison, compare_numerically
from .render import describe, latex, text
from .symbols import symbol_name

__all__ = [
    "derive", "Derivation", "IdentityCheck", "case_geometry",
    "Identity", "conv_identities", "naive_identities", "correlate",
    "text", "latex", "describe", "draw_case",
    "NumericComparison", "compare_numerically",
    "run", "CASES", "symbol_name",
]
