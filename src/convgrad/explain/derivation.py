"""The backward pass of a convolution, derived symbolically: the chain rule, literally.

    >>> d = derive((4,), (2,))
    >>> d.y[0]
    b + w1*x1 + w2*x2
    >>> d.dx[1]                       # dL/dx2, the hand derivation
    dy1*w2 + dy2*w1
    >>> d.check().holds               # equals docs/math.md's identity
    True

One sample and one channel, 1-D or 2-D. The forward pass is written from its definition,
y[i] = b + sum_k w[k] * xp[s*i + d*k] (xp: x zero-padded); the loss is L = sum(dy * y),
with dy = dL/dy the upstream gradient, a grid of free symbols; dx, dw and db are
``sympy.diff(L, .)``, entry by entry. :meth:`Derivation.check` compares them with the
identities of :mod:`convgrad.explain.identities`, computed by another route.

Arrays are immutable SymPy N-dim arrays (``sympy.ImmutableDenseNDimArray``) with the
spatial shape: 0-based indexing, ``d.dx[1]`` in 1-D, ``d.dx[1, 0]`` in 2-D; ``.tolist()``
gives nested lists and, in 2-D, ``.tomatrix()`` a Matrix. Jacobians are SymPy Matrices.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .._optional import require
from ..geometry import ConvGeometry, conv_geometry, ntuple
from .identities import Identity, conv_identities
from .symbols import (latex_names, symbol_grid, symbol_name, to_object_array,
                      to_sympy_array)

sp = require("sympy", "explain", "convgrad explain")

__all__ = ["derive", "Derivation", "IdentityCheck", "case_geometry"]

_OP = "explain"


def _spatial_shape(value, name: str) -> tuple[int, ...]:
    """An int (1-D) or a tuple of 1 or 2 positive ints, checked by the geometry module."""
    if isinstance(value, (tuple, list)) and len(value) not in (1, 2):
        raise ValueError(f"{_OP}: {name}={tuple(value)!r} must be the spatial size of one "
                         f"sample and one channel: (L,) for 1-D or (H, W) for 2-D")
    n = len(value) if isinstance(value, (tuple, list)) else 1
    return ntuple(value, n, f"{_OP}: {name}")


def case_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1) -> ConvGeometry:
    """The geometry of one sample and one channel: N = C = F = 1, spatial sizes as given.

    x_shape (L,) or (H, W); w_shape the same length. stride, padding and dilation take
    every form :func:`convgrad.conv2d` takes ('same' and 'valid' included); validation
    and its messages are those of :mod:`convgrad.geometry`.
    """
    x_shape = _spatial_shape(x_shape, "x_shape")
    w_shape = _spatial_shape(w_shape, "w_shape")
    if len(w_shape) != len(x_shape):
        raise ValueError(f"{_OP}: w_shape={w_shape!r} must have as many axes as "
                         f"x_shape={x_shape!r} ({len(x_shape)})")
    _, _, _, geometry = conv_geometry(np.zeros((1, 1) + x_shape), np.zeros((1, 1) + w_shape),
                                      nd=len(x_shape), stride=stride, padding=padding,
                                      dilation=dilation, op=_OP)
    return geometry


def _forward(x: np.ndarray, w: np.ndarray, b, geometry: ConvGeometry) -> np.ndarray:
    """y[i] = b + sum_k w[k] * xp[s*i + d*k], from the definition (object arrays)."""
    g = geometry
    xp = np.zeros(g.padded_size, dtype=object)                         # (*padded), int zeros
    xp[tuple(slice(lo, lo + n) for (lo, _), n in zip(g.padding, g.in_size))] = x
    y = np.empty(g.out_size, dtype=object)                             # (*out)
    for i in np.ndindex(*g.out_size):
        terms = [w[k] * xp[tuple(s * o + d * kk for o, s, d, kk in
                                 zip(i, g.stride, g.dilation, k))]
                 for k in np.ndindex(*g.kernel_size)]
        y[i] = sp.Add(b, *terms)
    return y


@dataclass(frozen=True)
class IdentityCheck:
    """Derived gradients (``*_derived``) against a rule's identities (``*_identity``).

    ``holds`` is True when every entry agrees (``sympy.expand(a - b) == 0``) and the
    shapes are equal; ``mismatches`` says where they do not. The arrays are SymPy Arrays
    (spatial shapes), db a scalar; ``identity`` holds the rule's intermediate arrays.
    """

    holds: bool
    rule: str
    dx_derived: object
    dx_identity: object
    dw_derived: object
    dw_identity: object
    db_derived: object
    db_identity: object
    identity: Identity
    mismatches: tuple = ()

    def __bool__(self) -> bool:
        return self.holds

    def __str__(self) -> str:
        if self.holds:
            return f"{self.rule}: dx, dw and db equal the derived gradients"
        return f"{self.rule}: DOES NOT HOLD\n  " + "\n  ".join(self.mismatches)


def _compare(name: str, derived, identity) -> list[str]:
    if tuple(derived.shape) != tuple(identity.shape):
        return [f"{name}: the rule gives shape {tuple(identity.shape)}, the derived "
                f"gradient has shape {tuple(derived.shape)}"]
    problems = []
    for index in np.ndindex(*derived.shape):
        a, b = derived[index], identity[index]
        if sp.expand(a - b) != 0:
            label = symbol_name(name, index)
            problems.append(f"{label}: derived {a}, identity {b}")
    return problems


@dataclass(frozen=True)
class Derivation:
    """A convolution's forward pass and gradients as SymPy expressions (one sample, channel).

    Shapes: x (*in), w (*k), dy and y (*out) as SymPy Arrays; b and db scalars;
    jacobian_x (prod(out), prod(in)) and jacobian_w (prod(out), prod(k)) Matrices, rows
    and columns in row-major (C) order of the flattened arrays.
    """

    geometry: ConvGeometry
    x: object          # Array (*in) of symbols x1.. / x11..
    w: object          # Array (*k) of symbols w1.. / w11..
    b: object          # Symbol b
    dy: object         # Array (*out) of symbols dy1.. : dL/dy from the layer above
    y: object          # Array (*out): the forward equations
    loss: object       # L = sum(dy * y)
    dx: object         # Array (*in): dL/dx
    dw: object         # Array (*k): dL/dw
    db: object         # dL/db
    jacobian_x: object = field(repr=False)  # Matrix: dy_i/dx_j
    jacobian_w: object = field(repr=False)  # Matrix: dy_i/dw_j

    @property
    def nd(self) -> int:
        return self.geometry.nd

    def identity(self, rule=conv_identities) -> Identity:
        """The rule's intermediate arrays for this case's symbols (object arrays)."""
        return rule(to_object_array(self.x), to_object_array(self.w),
                    to_object_array(self.dy), self.geometry)

    def check(self, rule=conv_identities) -> IdentityCheck:
        """Compare the derived dx, dw, db with ``rule`` (default: docs/math.md's identities).

        ``rule(x, w, dy, geometry) -> Identity``, e.g. :func:`~convgrad.explain.identities.
        naive_identities`, the stride-1 recipe, which fails at stride 2.
        """
        identity = self.identity(rule)
        dx_id, dw_id = to_sympy_array(identity.dx), to_sympy_array(identity.dw)
        db_id = sp.sympify(identity.db)
        problems = _compare("dx", self.dx, dx_id) + _compare("dw", self.dw, dw_id)
        if sp.expand(self.db - db_id) != 0:
            problems.append(f"db: derived {self.db}, identity {db_id}")
        return IdentityCheck(not problems, identity.rule, self.dx, dx_id, self.dw, dw_id,
                             self.db, db_id, identity, tuple(problems))

    def evaluate(self, x, w, b, dy) -> dict:
        """Substitute numbers: x (*in), w (*k), b scalar, dy (*out) -> float64 arrays.

        Returns {'y', 'dx', 'dw', 'db'} with the shapes of y, x, w and a float for db.
        """
        symbols = [*to_object_array(self.x).flat, *to_object_array(self.w).flat, self.b,
                   *to_object_array(self.dy).flat]
        values = [*np.ravel(x), *np.ravel(w), b, *np.ravel(dy)]
        subs = dict(zip(symbols, (float(v) for v in values)))
        out = {}
        for name in ("y", "dx", "dw"):
            array = to_object_array(getattr(self, name))
            out[name] = np.array([float(e.xreplace(subs)) for e in array.flat],
                                 dtype=np.float64).reshape(array.shape)
        out["db"] = float(self.db.xreplace(subs))
        return out

    def latex_names(self) -> dict:
        """{Symbol: LaTeX name} for ``sympy.latex(..., symbol_names=...)``: x_{10,3}."""
        return latex_names(to_object_array(self.x), to_object_array(self.w),
                           to_object_array(self.dy))


def gradient(expr, variables) -> list:
    """[d expr / d v for v in variables], by ``sympy.diff``.

    expr is expanded into a sum of products first, and each derivative is taken of the
    terms that contain v (the others differentiate to 0): the same result as
    ``sympy.diff(expr, v)``, without walking every term of a large sum for every variable.
    """
    terms_with = defaultdict(list)
    for term in sp.Add.make_args(sp.expand(expr)):
        for symbol in term.free_symbols:
            terms_with[symbol].append(term)
    return [sp.diff(sp.Add(*terms_with[v]), v) if v in terms_with else sp.S.Zero
            for v in variables]


def derive(x_shape, w_shape, stride=1, padding=0, dilation=1) -> Derivation:
    """Derive y, dx, dw, db symbolically for one sample and one channel.

    Args:
        x_shape: (L,) or (H, W), the input's spatial size (an int means (L,)).
        w_shape: the filter's, with as many axes.
        stride, padding, dilation: as for :func:`convgrad.conv1d` / :func:`convgrad.conv2d`:
            an int or one per axis; padding also (lo, hi) pairs per axis, 'same', 'valid'.

    Returns a :class:`Derivation`; dx = dL/dx etc. by ``sympy.diff`` of L = sum(dy * y).
    Raises the geometry's ValueError / TypeError for an impossible or malformed case.
    """
    g = case_geometry(x_shape, w_shape, stride, padding, dilation)
    x, w, dy = symbol_grid("x", g.in_size), symbol_grid("w", g.kernel_size), \
        symbol_grid("dy", g.out_size)
    b = sp.Symbol("b")
    y = _forward(x, w, b, g)
    loss = sp.Add(*(dy[i] * y[i] for i in np.ndindex(*g.out_size)))
    # the chain rule, literally: dL/dx_j = sum_i dy_i * dy_i/dx_j, by sympy.diff of L
    dx = np.array(gradient(loss, list(x.flat)), dtype=object).reshape(g.in_size)
    dw = np.array(gradient(loss, list(w.flat)), dtype=object).reshape(g.kernel_size)
    db = sp.diff(loss, b)
    jacobian_x = sp.Matrix([gradient(y[i], list(x.flat))          # (prod(out), prod(in))
                            for i in np.ndindex(*g.out_size)])
    jacobian_w = sp.Matrix([gradient(y[i], list(w.flat))          # (prod(out), prod(k))
                            for i in np.ndindex(*g.out_size)])
    return Derivation(g, to_sympy_array(x), to_sympy_array(w), b, to_sympy_array(dy),
                      to_sympy_array(y), loss, to_sympy_array(dx), to_sympy_array(dw), db,
                      jacobian_x, jacobian_w)
