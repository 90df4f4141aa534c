"""Numerical gradients and a gradient checker for any function with a hand-written backward.

    report = gradcheck(forward, backward, {"x": x, "w": w, "b": b})
    print(report)            # one line per input: errors, worst element, pass/fail
    assert report.passed

``forward(*inputs) -> y`` and ``backward(dy, *inputs) -> (grad for each input)``, the
signature of every ``*_backward`` in convgrad. The scalar checked is L = sum(y * dy) with a
random upstream gradient dy (never all ones, which hides transposition bugs).

Two modes:

* ``"elementwise"``: central differences for every entry of every input; exact, costs two
  forward calls per entry: for small inputs;
* ``"directional"``: for a few random unit directions v per input, compare the numerical
  directional derivative (L(a + h v) - L(a - h v)) / 2h with <grad, v>; two forward calls
  per direction whatever the size: for large inputs.

``"auto"`` picks elementwise up to 4096 entries in all. The caller's arrays are never
written: perturbations happen on private copies.

:func:`gradgradcheck` checks a double backward the same way: the backward is the function
whose gradients are checked, the double backward its hand-written gradient.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["central_difference", "directional_derivative", "numerical_gradient", "rel_error",
           "gradcheck", "gradgradcheck", "GradcheckReport", "InputReport"]


def rel_error(a, b) -> float:
    """cs231n's relative error: max |a - b| / max(1e-8, |a| + |b|), elementwise, then max."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0 and b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _scalar(y, dy) -> float:
    return float(np.sum(np.asarray(y, dtype=np.float64) * dy))


def central_difference(loss, a: np.ndarray, index, h: float) -> float:
    """(loss() with a[index] + h  -  loss() with a[index] - h) / 2h.

    ``a`` is perturbed in place and restored exactly afterwards, also when ``loss`` raises.
    """
    original = a[index]
    try:
        a[index] = original + h
        plus = loss()
        a[index] = original - h
        minus = loss()
    finally:
        a[index] = original
    return (plus - minus) / (2 * h)


def directional_derivative(loss, a: np.ndarray, v: np.ndarray, h: float) -> float:
    """(loss() with a + h v  -  loss() with a - h v) / 2h: the derivative along v.

    ``a`` is changed in place and restored exactly afterwards, also when ``loss`` raises.
    """
    original = a.copy()
    try:
        a[...] = original + h * v
        plus = loss()
        a[...] = original - h * v
        minus = loss()
    finally:
        a[...] = original
    return (plus - minus) / (2 * h)


def numerical_gradient(f, a: np.ndarray, dy=None, h: float = 1e-6, progress=None) -> np.ndarray:
    """Central differences of L = sum(f() * dy) (or f() itself when dy is None) w.r.t. a.

    ``f`` takes no arguments and reads ``a``, which is perturbed in place one entry at a
    time and restored exactly afterwards, also when ``f`` raises. ``progress``, when
    given, is called with 2 (the calls of f made) after each entry.
    """
    loss = (lambda: float(f())) if dy is None else (lambda: _scalar(f(), dy))
    grad = np.zeros(a.shape, dtype=np.float64)
    for index in np.ndindex(*a.shape):
        grad[index] = central_difference(loss, a, index, h)
        if progress is not None:
            progress(2)
    return grad


@dataclass
class InputReport:
    """How the analytic gradient of one input compares with the numerical one."""

    name: str
    shape: tuple
    mode: str
    max_abs_error: float
    max_rel_error: float
    worst: tuple | int | None   # element index (elementwise) or direction number
    analytic: float             # the two values compared at the worst place
    numeric: float
    passed: bool

    def __str__(self) -> str:
        where = ("element " if self.mode == "elementwise" else "direction ") + str(self.worst)
        verdict = "ok" if self.passed else "FAIL"
        return (f"{self.name:>8} {str(self.shape):>18}  {self.mode:<11}  abs {self.max_abs_error:.1e}"
                f"  rel {self.max_rel_error:.1e}  worst at {where}: analytic {self.analytic:.6g}"
                f" numeric {self.numeric:.6g}  {verdict}")


@dataclass
class GradcheckReport:
    """One :class:`InputReport` per input; ``passed`` when all of them pass."""

    inputs: list = field(default_factory=list)
    rtol: float = 1e-6
    atol: float = 1e-8

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.inputs)

    def __getitem__(self, name: str) -> InputReport:
        for report in self.inputs:
            if report.name == name:
                return report
        raise KeyError(f"no input named {name!r}; inputs: {[r.name for r in self.inputs]}")

    def __str__(self) -> str:
        lines = [str(r) for r in self.inputs]
        lines.append(f"gradcheck {'passed' if self.passed else 'FAILED'} "
                     f"(rtol {self.rtol:g}, atol {self.atol:g})")
        return "\n".join(lines)


def _named(inputs) -> tuple[list[str], list]:
    if isinstance(inputs, dict):
        return list(inputs), list(inputs.values())
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    inputs = list(inputs)
    return [f"input{i}" for i in range(len(inputs))], inputs


def _check_float64(names, arrays):
    for name, a in zip(names, arrays):
        if a is None:
            continue
        if not isinstance(a, np.ndarray) or a.dtype != np.float64:
            dtype = getattr(a, "dtype", type(a).__name__)
            raise TypeError(
                f"gradcheck needs float64 arrays (central differences in lower precision "
                f"are dominated by rounding): {name} is {dtype}; pass {name}.astype(np.float64)")


def _check_positive(value, name: str, example: str, zero: bool = False) -> None:
    ok = (isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
          and np.isfinite(value) and (value >= 0 if zero else value > 0))
    if not ok:
        raise ValueError(f"{name}={value!r}; expected a finite {'non-negative' if zero else 'positive'} "
                         f"number, {example}")


def _selected(wrt, names) -> list[int]:
    """Positions of the inputs to check: all, or those named (or numbered) in ``wrt``."""
    if wrt is None:
        return list(range(len(names)))
    positions = []
    for key in wrt:
        if isinstance(key, str) and key in names:
            positions.append(names.index(key))
        elif isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(names):
            positions.append(key)
        else:
            raise ValueError(f"wrt: {key!r} is not an input; the inputs are {names} "
                             f"(names, or positions 0..{len(names) - 1})")
    return positions


def gradcheck(forward, backward, inputs, *, dy=None, mode: str = "auto", h: float = 1e-6,
              rtol: float = 1e-6, atol: float = 1e-8, directions: int = 4, seed=0,
              wrt=None) -> GradcheckReport:
    """Compare ``backward``'s gradients with numerical ones; returns a report per input.

    Args:
        forward: ``forward(*inputs) -> y``.
        backward: ``backward(dy, *inputs) -> sequence`` of one gradient per input (None
            for inputs that have none, such as a missing bias).
        inputs: a dict name -> float64 array (names appear in the report), or a sequence.
            None entries are passed through and not checked.
        dy: the upstream gradient; random standard normal (seeded) by default.
        mode: 'elementwise', 'directional' or 'auto'.
        rtol, atol: an element (or direction) passes when |analytic - numeric| <=
            atol + rtol * (|analytic| + |numeric|).
        directions: random directions per input in directional mode.
        wrt: names (or positions) of the inputs to check; all by default.
    """
    if mode not in ("auto", "elementwise", "directional"):
        raise ValueError(f"mode={mode!r}; expected 'auto', 'elementwise' or 'directional'")
    _check_positive(h, "h", "a step such as 1e-6")
    _check_positive(rtol, "rtol", "a tolerance such as 1e-6", zero=True)
    _check_positive(atol, "atol", "a tolerance such as 1e-8", zero=True)
    if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
        raise ValueError(f"directions={directions!r}; expected a positive int (random "
                         f"directions per input in directional mode)")
    names, originals = _named(inputs)
    _check_float64(names, originals)
    selected = _selected(wrt, names)
    rng = np.random.default_rng(seed)
    arrays = [None if a is None else np.array(a, dtype=np.float64) for a in originals]  # copies
    y = np.asarray(forward(*arrays))
    if dy is None:
        dy = rng.standard_normal(y.shape)
    dy = np.asarray(dy, dtype=np.float64)
    if dy.shape != y.shape:
        raise ValueError(f"dy has shape {dy.shape}, but forward returned shape {y.shape}")
    grads = list(backward(dy, *arrays))
    if len(grads) != len(arrays):
        raise ValueError(f"backward returned {len(grads)} gradients for {len(arrays)} inputs")
    if mode == "auto":
        total = sum(a.size for a in arrays if a is not None)
        mode = "elementwise" if total <= 4096 else "directional"
    report = GradcheckReport(rtol=rtol, atol=atol)
    for i in selected:
        a, grad = arrays[i], grads[i]
        if a is None:
            continue
        if grad is None or np.shape(grad) != a.shape:
            raise ValueError(f"backward's gradient for {names[i]} has shape "
                             f"{np.shape(grad) if grad is not None else None}, expected {a.shape}")
        grad = np.asarray(grad, dtype=np.float64)
        loss = lambda: _scalar(forward(*arrays), dy)  # noqa: E731  (reads the perturbed copy)
        if mode == "elementwise":
            numeric = numerical_gradient(lambda: forward(*arrays), a, dy, h)
            analytic = grad
        else:
            analytic, numeric = np.empty(directions), np.empty(directions)
            for d in range(directions):
                v = rng.standard_normal(a.shape)
                v /= max(np.linalg.norm(v), 1e-300)
                numeric[d] = directional_derivative(loss, a, v, h)
                analytic[d] = np.sum(grad * v)
        report.inputs.append(_compare(names[i], a.shape, mode, analytic, numeric, rtol, atol))
    return report


def _compare(name, shape, mode, analytic, numeric, rtol, atol) -> InputReport:
    diff = np.abs(analytic - numeric)
    if diff.size == 0:
        return InputReport(name, tuple(shape), mode, 0.0, 0.0, None, 0.0, 0.0, True)
    rel = diff / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))
    excess = diff - (atol + rtol * (np.abs(analytic) + np.abs(numeric)))
    worst_flat = int(np.argmax(excess))
    worst = (np.unravel_index(worst_flat, analytic.shape) if mode == "elementwise"
             else worst_flat)
    if mode == "elementwise":
        worst = tuple(int(i) for i in worst)
    return InputReport(name, tuple(shape), mode, float(diff.max()), float(rel.max()), worst,
                       float(analytic.flat[worst_flat]), float(numeric.flat[worst_flat]),
                       bool(np.all(excess <= 0)))


def gradgradcheck(backward, double_backward, inputs, *, grad_outputs=None, mode: str = "auto",
                  h: float = 1e-6, rtol: float = 1e-6, atol: float = 1e-8,
                  directions: int = 4, seed=0, wrt=None) -> GradcheckReport:
    """Check ``double_backward`` against central differences of ``backward`` itself.

    The backward is treated as a function of all its inputs (dy included) with several
    outputs; the scalar checked is L2 = sum_k <g_k, backward(*inputs)[k]> for random
    gradients g_k of its outputs (never all ones), exactly as :func:`gradcheck` checks a
    forward.

        report = gradgradcheck(
            lambda dy, x, w, b: cg.conv2d_backward(dy, x, w, b, stride=2),
            lambda g_dx, g_dw, g_db, dy, x, w, b: (
                *cg.conv2d_double_backward(g_dx, g_dw, g_db, dy, x, w, b, stride=2), None),
            {"dy": dy, "x": x, "w": w, "b": b})

    Args:
        backward: ``backward(*inputs) -> sequence`` of outputs (None entries, such as db
            without a bias, are outputs that do not exist).
        double_backward: ``double_backward(*grad_outputs, *inputs) -> sequence`` of one
            gradient per input; None stands for zero (and is checked as zero: the
            backward of a convolution does not depend on its bias).
        inputs: a dict name -> float64 array (names appear in the report), or a sequence;
            None entries are passed through and not checked.
        grad_outputs: one gradient per output of the backward (None for those that do
            not exist); random standard normal (seeded) by default.
        mode, h, rtol, atol, directions, seed, wrt: as in :func:`gradcheck`.
    """
    names, arrays = _named(inputs)
    _check_float64(names, arrays)
    copies = [None if a is None else np.array(a, dtype=np.float64) for a in arrays]
    outputs = list(backward(*copies))
    present = [k for k, out in enumerate(outputs) if out is not None]
    shapes = [np.shape(outputs[k]) for k in present]
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grads = [rng.standard_normal(shape) for shape in shapes]
    else:
        grad_outputs = list(grad_outputs)
        if len(grad_outputs) != len(outputs):
            raise ValueError(f"grad_outputs has {len(grad_outputs)} entries; the backward "
                             f"returned {len(outputs)} outputs")
        grads = []
        for k, shape in zip(present, shapes):
            g = np.zeros(shape) if grad_outputs[k] is None else np.asarray(grad_outputs[k],
                                                                            dtype=np.float64)
            if g.shape != shape:
                raise ValueError(f"grad_outputs[{k}] has shape {g.shape}; the backward's "
                                 f"output {k} has shape {shape}")
            grads.append(g)
    sizes = [int(np.prod(shape)) for shape in shapes]

    def flat_backward(*values):           # the backward's present outputs, one flat vector
        results = list(backward(*values))
        return np.concatenate([np.ravel(results[k]) for k in present] + [np.zeros(0)])

    def flat_double_backward(flat_grad, *values):
        pieces = np.split(flat_grad, np.cumsum(sizes)[:-1]) if sizes else []
        per_output = [None] * len(outputs)
        for k, piece, shape in zip(present, pieces, shapes):
            per_output[k] = piece.reshape(shape)
        result = list(double_backward(*per_output, *values))
        if len(result) != len(values):
            raise ValueError(f"double_backward returned {len(result)} gradients for "
                             f"{len(values)} inputs (use None for a zero gradient)")
        return [None if v is None else (np.zeros(v.shape) if r is None else r)
                for r, v in zip(result, values)]

    flat_grads = np.concatenate([g.ravel() for g in grads] + [np.zeros(0)])
    return gradcheck(flat_backward, flat_double_backward, dict(zip(names, copies)),
                     dy=flat_grads, mode=mode, h=h, rtol=rtol, atol=atol,
                     directions=directions, seed=seed, wrt=wrt)
