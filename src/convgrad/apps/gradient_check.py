"""`convgrad check`: the gradient check across a grid of geometries, in the course's style.

Each case runs the conv (or transposed conv) forward and backward in float64 with a
random upstream gradient, compares dx, dw, db with central differences and prints

    2d  stride 2, pad 1 (leftover row)   dx error: 7.5e-09  dw error: 1.4e-10  db error: 1.1e-10  ok

then a summary. The errors are cs231n's rel_error (max |a - n| / max(1e-8, |a| + |n|)).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import functional
from ..gradcheck import gradcheck

__all__ = ["Case", "CASES", "run_case", "run_check"]


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


def run_case(case: Case, algorithm: str = "fast", seed: int = 0, tolerance: float = 1e-6):
    """(relative errors {'dx', 'dw', 'db'}, passed) for one case, in float64."""
    rng = np.random.default_rng(seed)
    inputs = {"dx": rng.standard_normal(case.x_shape), "dw": rng.standard_normal(case.w_shape),
              "db": rng.standard_normal(case.bias_size()) if case.bias else None}
    forward, backward = case.functions(algorithm)
    # L = sum(dy * y) is linear in each input, so central differences carry no truncation
    # error, only rounding of order eps * |L| / h: the course's h = 1e-5 keeps that small.
    report = gradcheck(forward, backward, inputs, mode="elementwise", h=1e-5, seed=seed,
                       rtol=tolerance, atol=1e-8)
    errors = {r.name: r.max_rel_error for r in report.inputs}
    return errors, report.passed


def format_line(name: str, errors: dict, passed: bool, width: int = 44) -> str:
    parts = "  ".join(f"{k} error: {errors[k]:.1e}" if k in errors else f"{k} error:   n/a  "
                      for k in ("dx", "dw", "db"))
    return f"{name:<{width}} {parts}  {'ok' if passed else 'FAIL'}"


def run_check(cases=CASES, algorithms=("fast",), print_=print, tolerance: float = 1e-6) -> bool:
    """Run every case with every engine, print one line each and a summary; True if all pass."""
    failed = 0
    total = 0
    for algorithm in algorithms:
        if len(algorithms) > 1:
            print_(f"[{algorithm} engine]")
        for case in cases:
            errors, passed = run_case(case, algorithm, tolerance=tolerance)
            print_(format_line(case.name, errors, passed))
            failed += not passed
            total += 1
    verdict = "all passed" if not failed else f"{failed} FAILED"
    print_(f"\n{total} gradient checks ({', '.join(algorithms)} engine"
           f"{'s' if len(algorithms) > 1 else ''}, float64, central differences): {verdict}")
    return failed == 0
