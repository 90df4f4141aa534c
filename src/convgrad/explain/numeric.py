"""The identities on random numbers, next to the engine and the numerical gradient.

    comparison = compare_numerically(derive((5,), (3,), stride=2), seed=0)
    print(comparison)

For one sample and one channel, with random x, w, b and a random upstream gradient dy
(float64), dx, dw and db are computed four ways:

* ``identity``: the general rule of docs/math.md, :func:`~convgrad.explain.identities.
  conv_identities`, run on the numbers;
* ``derived``: the SymPy expressions of the derivation with the numbers substituted;
* ``backward``: :func:`convgrad.conv1d_backward` / :func:`convgrad.conv2d_backward`;
* ``numerical``: central differences of L = sum(y * dy), y from :func:`convgrad.conv1d` /
  :func:`convgrad.conv2d` (:func:`convgrad.gradcheck.numerical_gradient`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import functional
from ..gradcheck import numerical_gradient
from .derivation import Derivation
from .identities import conv_identities

__all__ = ["NumericComparison", "compare_numerically", "SOURCES"]

SOURCES = ("identity", "derived", "backward", "numerical")


@dataclass(frozen=True)
class NumericComparison:
    """dx (*in), dw (*k), db (scalar) from each of :data:`SOURCES`, on the same numbers.

    ``gradients[name][source]`` is a float64 array (db: shape ()); ``x`` (*in), ``w`` (*k),
    ``b`` (scalar) and ``dy`` (*out) are the random inputs.
    """

    x: np.ndarray
    w: np.ndarray
    b: float
    dy: np.ndarray
    gradients: dict

    def max_difference(self, name: str, source: str, against: str = "identity") -> float:
        """max |gradients[name][source] - gradients[name][against]|."""
        a, b = self.gradients[name][source], self.gradients[name][against]
        return float(np.max(np.abs(a - b))) if a.size else 0.0

    def worst(self) -> float:
        """The largest difference from the identity, over dx, dw, db and every source."""
        return max(self.max_difference(n, s) for n in self.gradients for s in SOURCES)

    def __str__(self) -> str:
        lines = ["-- The same identities on random numbers (float64, seeded), next to "
                 "convgrad's backward and central differences of L = sum(y * dy)"]
        with np.printoptions(precision=6, suppress=True, linewidth=100):
            for name, by_source in self.gradients.items():
                lines.append(f"{name}:")
                for source in SOURCES:
                    value = np.array2string(by_source[source], prefix=" " * 14)
                    diff = ("" if source == "identity" else
                            f"   max |{source} - identity| = "
                            f"{self.max_difference(name, source):.1e}")
                    lines.append(f"  {source:>10}  {value}{diff}")
        lines.append(f"largest difference from the identities: {self.worst():.1e}")
        return "\n".join(lines)


def compare_numerically(derivation: Derivation, seed=0, h: float = 1e-6) -> NumericComparison:
    """Compute dx, dw, db four ways on random numbers (see the module docstring)."""
    g = derivation.geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(g.in_size)                   # (*in)
    w = rng.standard_normal(g.kernel_size)               # (*k)
    b = float(rng.standard_normal())
    dy = rng.standard_normal(g.out_size)                 # (*out)
    keywords = dict(stride=g.stride, padding=g.padding, dilation=g.dilation)
    conv = getattr(functional, f"conv{g.nd}d")
    conv_backward = getattr(functional, f"conv{g.nd}d_backward")
    xb, wb, bb, dyb = x[None, None], w[None, None], np.array([b]), dy[None, None]  # N = C = F = 1

    identity = conv_identities(x, w, dy, g)
    derived = derivation.evaluate(x, w, b, dy)
    dx, dw, db = conv_backward(dyb, xb, wb, bb, **keywords)

    def forward():
        return conv(xb, wb, bb, **keywords)

    numerical = {"dx": numerical_gradient(forward, xb, dyb, h)[0, 0],
                 "dw": numerical_gradient(forward, wb, dyb, h)[0, 0],
                 "db": numerical_gradient(forward, bb, dyb, h)[0]}
    gradients = {
        "dx": {"identity": identity.dx, "derived": derived["dx"], "backward": dx[0, 0],
               "numerical": numerical["dx"]},
        "dw": {"identity": identity.dw, "derived": derived["dw"], "backward": dw[0, 0],
               "numerical": numerical["dw"]},
        "db": {"identity": np.float64(identity.db), "derived": np.float64(derived["db"]),
               "backward": np.float64(db[0]), "numerical": np.float64(numerical["db"])},
    }
    gradients = {name: {s: np.asarray(v, dtype=np.float64) for s, v in by.items()}
                 for name, by in gradients.items()}
    return NumericComparison(x, w, b, dy, gradients)
