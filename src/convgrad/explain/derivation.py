"""The backward pass of a convolution, derived symbolically: the chain rule, literally.

    >>> d = derive((4,), (2,))
    >>> d.y[0]
    b + w1*x1 + w2*x2
    >>> d.dx[1]                       # dL/dx2, the hand derivation
    dy1*w2 + dy2*w1
    >>> d.check().holds               # equals docs/math.md's identity
    True

One sample and one channel, 1-D or 2-D, a convolution or (``transposed=True``) a
transposed convolution. The forward pass is written from its definition,
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
from ..geometry import ConvGeometry
from .case import case_geometry, output_padding_of
from .identities import Identity, conv_identities, transposed_identities
from .symbols import (latex_names, parse_symbol_name, symbol_grid, symbol_name,
                      to_object_array, to_sympy_array)

sp = require("sympy", "explain", "convgrad explain")

__all__ = ["derive", "Derivation", "IdentityCheck", "case_geometry"]

OP = "explain"

# The factors of one product term, in the order the formulas show them, and the array
# whose index orders the terms of a sum (the explorer's formulas use the same order).
TERM_FACTORS = {"y": ("w", "x"), "dx": ("w", "dy"), "dw": ("x", "dy"), "db": ("dy",)}
TERM_ORDER = {"y": "w", "dx": "dy", "dw": "dy", "db": "dy"}


def _forward_transposed(x: np.ndarray, w: np.ndarray, b, geometry: ConvGeometry) -> np.ndarray:
    """y[j] = b + sum over (i, k) with s*i + d*k - lo = j of w[k] * x[i] (object arrays).

    The adjoint of the forward index map: x (*out) of the forward geometry, y (*in).
    """
    g = geometry
    terms = {j: [] for j in np.ndindex(*g.in_size)}
    for k in np.ndindex(*g.kernel_size):
        for i in np.ndindex(*g.out_size):
            j = tuple(s * o + d * kk - lo for o, kk, s, d, (lo, _) in
                      zip(i, k, g.stride, g.dilation, g.padding))
            if j in terms:
                terms[j].append(w[k] * x[i])
    y = np.empty(g.in_size, dtype=object)                              # (*in)
    for j, products in terms.items():
        y[j] = sp.Add(b, *products)
    return y


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

    Shapes: x (*in), w (*k), dy and y (*out) as SymPy Arrays; b and db scalars (for a
    transposed case x has the forward geometry's out_size and y its in_size);
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
    transposed: bool = False                # y = conv_transpose(x, w) + b

    @property
    def output_padding(self) -> tuple[int, ...]:
        """A transposed case's output_padding (zeros for a forward case)."""
        return output_padding_of(self.geometry) if self.transposed else (0,) * self.nd

    def terms(self, array: str, index=()) -> list:
        """The product terms of one entry of y, dx, dw or db, as ``(array, index)`` pairs.

        ``[(("w", (0, 1)), ("dy", (0, 0))), ...]`` for ``terms("dx", (1, 2))``: every term
        of the expanded SymPy expression (the bias b of y left out), its factors in the
        order w, x for y; w, dy for dx; x, dy for dw; dy for db; the terms ordered by their
        w index (y) or dy index (dx, dw, db), row-major, 0-based. This is the structure the
        HTML explorer's formulas show (``window.convgrad.terms``).
        """
        if array not in TERM_FACTORS:
            raise ValueError(f"{OP}: terms of {array!r}: expected one of "
                             f"{', '.join(TERM_FACTORS)}")
        expression = self.db if array == "db" else getattr(self, array)[tuple(index)]
        factors, order = TERM_FACTORS[array], TERM_ORDER[array]
        out = []
        for term in sp.Add.make_args(sp.expand(expression)):
            if term == self.b or term == 0:
                continue
            coefficient, symbols = term.as_coeff_mul()
            if coefficient != 1 or not all(isinstance(v, sp.Symbol) for v in symbols):
                raise ValueError(f"{OP}: {term} is not a product of symbols")
            named = dict(parse_symbol_name(v.name, self.nd) for v in symbols)
            if sorted(named) != sorted(factors):
                raise ValueError(f"{OP}: the term {term} of {array} is not a product of "
                                 f"{' and '.join(factors)}")
            out.append(tuple((name, named[name]) for name in factors))
        return sorted(out, key=lambda pairs: dict(pairs)[order])

    def formula(self, array: str, index=()) -> str:
        """One entry as the explorer writes it: 'dx23 = w12·dy11 + w11·dy12', 'db = dy1 + ..'.

        The terms of :meth:`terms`, in its order; symbol names 1-based as printed.
        """
        index = tuple(index)
        lhs = "db" if array == "db" else symbol_name(array, index)
        products = ["\u00b7".join(symbol_name(a, i) for a, i in pairs)
                    for pairs in self.terms(array, index)]
        if array == "y":
            products.insert(0, "b")
        return f"{lhs} = {' + '.join(products) if products else '0'}"

    @property
    def nd(self) -> int:
        return self.geometry.nd

    def identity(self, rule=None) -> Identity:
        """The rule's intermediate arrays for this case's symbols (object arrays).

        The default rule is :func:`conv_identities` (:func:`transposed_identities` for a
        transposed case).
        """
        rule = rule or (transposed_identities if self.transposed else conv_identities)
        return rule(to_object_array(self.x), to_object_array(self.w),
                    to_object_array(self.dy), self.geometry)

    def check(self, rule=None) -> IdentityCheck:
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


def derive(x_shape, w_shape, stride=1, padding=0, dilation=1, *, transposed: bool = False,
           output_padding=0) -> Derivation:
    """Derive y, dx, dw, db symbolically for one sample and one channel.

    Args:
        x_shape: (L,) or (H, W), the input's spatial size (an int means (L,)).
        w_shape: the filter's, with as many axes.
        stride, padding, dilation: as for :func:`convgrad.conv1d` / :func:`convgrad.conv2d`:
            an int or one per axis; padding also (lo, hi) pairs per axis, 'same', 'valid'.
        transposed: derive the transposed convolution instead (PyTorch's conv_transpose,
            the adjoint of the forward one: docs/math.md#transposed-convolution-is-the-adjoint);
            x is then its input and y its output, of the size of the forward input.
        output_padding: for a transposed case, as for :func:`convgrad.conv_transpose2d`.

    Returns a :class:`Derivation`; dx = dL/dx etc. by ``sympy.diff`` of L = sum(dy * y).
    Raises the geometry's ValueError / TypeError for an impossible or malformed case.
    """
    g = case_geometry(x_shape, w_shape, stride, padding, dilation, transposed=transposed,
                      output_padding=output_padding)
    x_size, y_size = (g.out_size, g.in_size) if transposed else (g.in_size, g.out_size)
    x, w, dy = symbol_grid("x", x_size), symbol_grid("w", g.kernel_size), \
        symbol_grid("dy", y_size)
    b = sp.Symbol("b")
    y = (_forward_transposed if transposed else _forward)(x, w, b, g)
    loss = sp.Add(*(dy[i] * y[i] for i in np.ndindex(*y_size)))
    # the chain rule, literally: dL/dx_j = sum_i dy_i * dy_i/dx_j, by sympy.diff of L
    dx = np.array(gradient(loss, list(x.flat)), dtype=object).reshape(x_size)
    dw = np.array(gradient(loss, list(w.flat)), dtype=object).reshape(g.kernel_size)
    db = sp.diff(loss, b)
    jacobian_x = sp.Matrix([gradient(y[i], list(x.flat))          # (prod(y), prod(x))
                            for i in np.ndindex(*y_size)])
    jacobian_w = sp.Matrix([gradient(y[i], list(w.flat))          # (prod(y), prod(k))
                            for i in np.ndindex(*y_size)])
    return Derivation(g, to_sympy_array(x), to_sympy_array(w), b, to_sympy_array(dy),
                      to_sympy_array(y), loss, to_sympy_array(dx), to_sympy_array(dw), db,
                      jacobian_x, jacobian_w, bool(transposed))
