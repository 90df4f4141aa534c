"""`convgrad check`: the gradient check across a grid of geometries, in the course's style.

Each case runs the conv (or transposed conv) forward and backward in float64 with a
random upstream gradient, compares dx, dw, db with central differences and prints

    2d  stride 2, pad 1 (leftover row)   dx error: 7.5e-11  dw error: 1.4e-11  db error: 1.1e-11  ok

Each error is max |analytic - numeric| / (the largest entry of either): a relative error
that stays meaningful where true gradients are zero (leftover rows). A case passes when
every error, as printed, is at most the tolerance asked for (0 allowed: exact agreement).

Two modes: 'elementwise' (central differences for every entry, two forward calls each)
and 'directional' (4 random unit directions per input, two forward calls each, whatever
the size); 'auto' takes elementwise up to 4096 entries in all when that is estimated to
take under 30 s. Before any work the cost is estimated (forward calls times the time of
one: from two small calibration runs of the same engine, or for a large case from one
sample of it, timed) and refused above a bound.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .. import functional
from ..geometry import conv_geometry, conv_transpose_geometry
from ..gradcheck import directional_derivative, numerical_gradient
from .progress import Progress

__all__ = ["Case", "CASES", "MODES", "run_case", "run_check", "plan", "format_line"]

MODES = ("auto", "elementwise", "directional")
ELEMENTWISE_ENTRIES = 4096     # auto: elementwise up to this many entries of x, w, b in all
ELEMENTWISE_SECONDS = 30.0     # ... and when it is estimated to take less than this
DIRECTIONS = 4                 # random unit directions per input, directional mode
H = 1e-5                       # the course's step, elementwise
H_DIRECTIONAL = 1e-3           # along a unit direction: the loss is linear in each input, so
                               # a larger step only shrinks the rounding error eps * |L| / h


@dataclass
class Case:
    """One geometry: shapes and the keywords of the functional call."""

    name: str
    x_shape: tuple
    w_shape: tuple
    keywords: dict = field(default_factory=dict)
    transposed: bool = False
    bias: bool = True

    @property
    def nd(self) -> int:
        return len(self.x_shape) - 2

    def functions(self, algorithm: str):
        kind = "conv_transpose" if self.transposed else "conv"
        forward = getattr(functional, f"{kind}{self.nd}d")
        backward = getattr(functional, f"{kind}{self.nd}d_backward")
        kw = dict(self.keywords, algorithm=algorithm)
        return (lambda x, w, b: forward(x, w, b, **kw),
                lambda dy, x, w, b: backward(dy, x, w, b, **kw))

    def bias_size(self) -> int:
        if self.transposed:
            return self.w_shape[1] * self.keywords.get("groups", 1)
        return self.w_shape[0]

    def geometry(self):
        """The validated geometry (of the convolution a transposed one is the adjoint of);
        ValueError or TypeError naming the bad value, before any array is allocated."""
        for name, shape in (("--x", self.x_shape), ("--w", self.w_shape)):
            if not 3 <= len(shape) <= 5:
                raise ValueError(f"{name} has {len(shape)} axes {tuple(shape)}; a convolution "
                                 f"takes 3 to 5: (N, C, L), (N, C, H, W) or (N, C, D, H, W)")
        if len(self.x_shape) != len(self.w_shape):
            raise ValueError(f"--x {tuple(self.x_shape)} and --w {tuple(self.w_shape)} must "
                             f"have the same number of axes")
        x = np.broadcast_to(np.float64(0), self.x_shape)      # no memory: shapes only
        w = np.broadcast_to(np.float64(0), self.w_shape)
        b = np.zeros(self.bias_size()) if self.bias else None
        keywords = {k: v for k, v in self.keywords.items() if k != "algorithm"}
        if self.transposed:
            return conv_transpose_geometry(x, w, b, nd=self.nd, op="check", **keywords)[3]
        return conv_geometry(x, w, b, nd=self.nd, op="check", **keywords)[3]

    def entries(self) -> int:
        return (math.prod(self.x_shape) + math.prod(self.w_shape)
                + (self.bias_size() if self.bias else 0))


CASES = [
    Case("2d  stride 1, pad 1", (2, 3, 6, 6), (4, 3, 3, 3), dict(stride=1, padding=1)),
    Case("2d  stride 2, pad 1 (leftover row)", (2, 3, 6, 6), (4, 3, 3, 3), dict(stride=2, padding=1)),
    Case("2d  stride 3, pad 2", (2, 2, 8, 7), (3, 2, 3, 3), dict(stride=3, padding=2)),
    Case("2d  stride (1, 2), non-square kernel", (2, 2, 6, 7), (3, 2, 3, 2), dict(stride=(1, 2), padding=(1, 0))),
    Case("2d  asymmetric pad ((1, 2), (0, 1))", (1, 2, 5, 5), (3, 2, 3, 3), dict(padding=((1, 2), (0, 1)))),
    Case("2d  pad 'same', stride 2", (2, 2, 7, 6), (3, 2, 3, 3), dict(padding="same", stride=2)),
    Case("2d  pad larger than kernel", (1, 2, 4, 4), (2, 2, 2, 2), dict(padding=3, stride=2)),
    Case("2d  dilation 2", (1, 2, 7, 7), (3, 2, 3, 3), dict(dilation=2, padding=1)),
    Case("2d  groups 2", (2, 4, 5, 5), (4, 2, 3, 3), dict(groups=2, padding=1)),
    Case("2d  depthwise (groups = C)", (2, 3, 5, 5), (6, 1, 3, 3), dict(groups=3, stride=2)),
    Case("2d  1x1 kernel, stride 2", (2, 3, 5, 5), (4, 3, 1, 1), dict(stride=2)),
    Case("2d  no bias", (2, 3, 5, 5), (2, 3, 3, 3), dict(stride=2), bias=False),
    Case("1d  stride 2, dilation 2", (2, 3, 9), (4, 3, 3), dict(stride=2, dilation=2, padding=1)),
    Case("1d  pad 'same', stride 3", (2, 2, 10), (3, 2, 4), dict(padding="same", stride=3)),
    Case("3d  stride (1, 2, 2), pad 1", (1, 2, 4, 5, 5), (2, 2, 2, 3, 3), dict(stride=(1, 2, 2), padding=1)),
    Case("2d  transposed, stride 2, output_padding 1", (2, 3, 3, 3), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1), transposed=True),
    Case("2d  transposed, groups 2, dilation 2", (1, 4, 3, 3), (4, 1, 2, 2), dict(groups=2, dilation=2), transposed=True),
    Case("1d  transposed, stride 3", (2, 2, 4), (2, 3, 3), dict(stride=3), transposed=True),
]


# ----------------------------------------------------------------------------------------
# The estimate: forward calls, and seconds per call from a calibration of the engine


def _work(geometry, algorithm: str) -> float:
    """What one forward call costs in: multiply-adds (fast engine) or output positions
    (reference engine: a Python loop over them)."""
    positions = geometry.batch * geometry.out_channels * math.prod(geometry.out_size)
    if algorithm == "reference":
        return float(positions)
    return float(positions * (geometry.in_channels // geometry.groups)
                 * math.prod(geometry.kernel_size))


_CALIBRATION = {}


def _seconds_per_call(algorithm: str):
    """(a, c): one forward call takes about a + c * work seconds on this machine."""
    if algorithm not in _CALIBRATION:
        rng = np.random.default_rng(0)
        points = []
        for x_shape, w_shape in (((1, 2, 6, 6), (2, 2, 3, 3)),
                                 ((2, 32, 24, 24), (32, 32, 3, 3)) if algorithm != "reference"
                                 else ((1, 4, 12, 12), (4, 4, 3, 3))):
            x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                functional.conv2d(x, w, padding=1, algorithm=algorithm)
                best = min(best, time.perf_counter() - start)
            g = conv_geometry(x, w, nd=2, padding=1)[3]
            points.append((_work(g, algorithm), best))
        (w0, t0), (w1, t1) = points
        # on a busy machine the small run can time slower than the large one: the cost of
        # a unit of work is never taken below half its average over the large run
        c = max((t1 - t0) / (w1 - w0), 0.5 * t1 / w1)
        _CALIBRATION[algorithm] = (max(t0 - c * w0, 0.0), c)
    return _CALIBRATION[algorithm]


def _measured(case: Case, algorithm: str, modelled: float) -> float:
    """Seconds per forward call: for a large case on the fast engine, one sample timed and
    scaled by N (the small calibration runs underrate a large GEMM), when that sample is
    cheap (under a million input entries, modelled under half a second); else the model."""
    n = case.x_shape[0]
    sample = math.prod(case.x_shape[1:])
    if not (algorithm != "reference" and modelled > 0.05 and sample <= 2**20
            and modelled / max(n, 1) < 0.5):
        return modelled
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, *case.x_shape[1:]))
    w = rng.standard_normal(case.w_shape)
    forward, _ = case.functions(algorithm)
    start = time.perf_counter()
    forward(x, w, None)
    return (time.perf_counter() - start) * n


@dataclass
class Planned:
    case: Case
    algorithm: str
    mode: str
    calls: int          # forward calls (the backward counted as two)
    seconds: float


def _calls(case: Case, mode: str) -> int:
    inputs = 3 if case.bias else 2
    numeric = 2 * case.entries() if mode == "elementwise" else 2 * DIRECTIONS * inputs
    return 1 + 2 + numeric


def plan(cases, algorithms, mode: str = "auto") -> list:
    """One :class:`Planned` per (engine, case): the mode and the estimated cost."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; expected one of {', '.join(MODES)}")
    planned = []
    for algorithm in algorithms:
        a, c = _seconds_per_call(algorithm)
        for case in cases:
            per_call = _measured(case, algorithm, a + c * _work(case.geometry(), algorithm))
            chosen = mode
            if mode == "auto":
                elementwise = _calls(case, "elementwise") * per_call
                chosen = ("elementwise" if case.entries() <= ELEMENTWISE_ENTRIES
                          and elementwise <= ELEMENTWISE_SECONDS else "directional")
            calls = _calls(case, chosen)
            planned.append(Planned(case, algorithm, chosen, calls, calls * per_call))
    return planned


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


# ----------------------------------------------------------------------------------------
# One case


def _error(analytic, numeric) -> float:
    """max |analytic - numeric| / the largest entry of either (0 when both are zero)."""
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if analytic.size == 0:
        return 0.0
    scale = max(float(np.abs(analytic).max()), float(np.abs(numeric).max()))
    difference = float(np.abs(analytic - numeric).max())
    return 0.0 if difference == 0 else difference / max(scale, 1e-300)


def printed(error: float) -> float:
    """The error as the line shows it (two significant digits): what the verdict uses."""
    return float(f"{error:.1e}")


def run_case(case: Case, algorithm: str = "fast", seed: int = 0, tolerance: float = 1e-6,
             mode: str = "elementwise", progress=None):
    """(errors {'dx', 'dw', 'db'}, passed) for one case, in float64.

    ``progress``, when given, is called with the number of forward calls just made.
    """
    if mode not in ("elementwise", "directional"):
        raise ValueError(f"mode={mode!r}; expected 'elementwise' or 'directional'")
    advance = progress or (lambda n: None)
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(case.x_shape), rng.standard_normal(case.w_shape)
    b = rng.standard_normal(case.bias_size()) if case.bias else None
    forward, backward = case.functions(algorithm)
    dy = rng.standard_normal(forward(x, w, b).shape)
    grads = dict(zip(("dx", "dw", "db"), backward(dy, x, w, b)))
    advance(3)
    errors = {}
    for name, a in (("dx", x), ("dw", w), ("db", b)):
        if a is None:
            continue
        # L = sum(dy * y) is linear in each input, so central differences carry no
        # truncation error, only rounding of order eps * |L| / h.
        if mode == "elementwise":
            numeric = numerical_gradient(lambda: forward(x, w, b), a, dy, H, progress=advance)
            analytic = grads[name]
        else:
            loss = lambda: float(np.sum(forward(x, w, b) * dy))  # noqa: E731 (reads a)
            numeric, analytic = [], []
            for _ in range(DIRECTIONS):
                v = rng.standard_normal(a.shape)
                v /= max(np.linalg.norm(v), 1e-300)
                numeric.append(directional_derivative(loss, a, v, H_DIRECTIONAL))
                analytic.append(float(np.sum(grads[name] * v)))
                advance(2)
        errors[name] = _error(analytic, numeric)
    return errors, all(printed(e) <= tolerance for e in errors.values())


def format_line(name: str, errors: dict, passed: bool, width: int = 44) -> str:
    parts = "  ".join(f"{k} error: {errors[k]:.1e}" if k in errors else f"{k} error:   n/a  "
                      for k in ("dx", "dw", "db"))
    return f"{name:<{width}} {parts}  {'ok' if passed else 'FAIL'}"


def run_check(cases=CASES, algorithms=("fast",), print_=print, tolerance: float = 1e-6,
              mode: str = "auto", budget: float = 300.0, stream=None) -> bool:
    """Run every case with every engine, print one line each and a summary; True if all
    pass. The work is estimated first (on ``stream``, stderr by default) and refused with
    a ValueError when the estimate is over ``budget`` seconds."""
    stream = sys.stderr if stream is None else stream
    planned = plan(cases, algorithms, mode)
    seconds = sum(p.seconds for p in planned)
    calls = sum(p.calls for p in planned)
    directional = sum(p.mode == "directional" for p in planned)
    print(f"check: {len(planned)} gradient check{'s' if len(planned) > 1 else ''}, "
          f"{calls:,} forward calls "
          f"({directional} directional), estimated {_duration(seconds)}", file=stream)
    if seconds > budget:
        slowest = max(planned, key=lambda p: p.seconds)
        hints = []
        if len(algorithms) > 1 and sum(p.seconds for p in planned
                                       if p.algorithm == "reference") > seconds / 2:
            hints.append("--algorithm fast")
        if slowest.mode == "elementwise":
            hints.append("--mode directional")
        hints.append("smaller shapes")
        raise ValueError(f"the estimated time, {_duration(seconds)} (the largest case: "
                         f"{slowest.case.name}, {slowest.algorithm} engine, {slowest.mode}), "
                         f"is over the bound of {budget:g} s: use {', or '.join(hints)}, or "
                         f"raise the bound with --budget SECONDS")
    bar = Progress(calls, "check", stream, enabled=None if seconds > 2 else False)
    print_(f"errors: max |analytic - numeric| / largest entry; ok when each printed error "
           f"<= {tolerance:g}")
    failed, modes = 0, set()
    try:
        for algorithm in algorithms:
            if len(algorithms) > 1:
                print_(f"[{algorithm} engine]")
            for p in (p for p in planned if p.algorithm == algorithm):
                errors, passed = run_case(p.case, algorithm, tolerance=tolerance, mode=p.mode,
                                          progress=bar.advance)
                name = p.case.name + (" [directional]" if p.mode == "directional" else "")
                bar.close()
                print_(format_line(name, errors, passed))
                failed += not passed
                modes.add(p.mode)
    finally:
        bar.close()
    verdict = "all passed" if not failed else f"{failed} FAILED"
    how = " and ".join(sorted("central differences" if m == "elementwise" else
                              f"central differences along {DIRECTIONS} random directions "
                              f"per input" for m in modes))
    print_(f"\n{len(planned)} gradient checks ({', '.join(algorithms)} engine"
           f"{'s' if len(algorithms) > 1 else ''}, float64, {how}): {verdict}")
    return failed == 0
