"""What grading finds, as plain data: an error raised by the user's code, the verdict on
one output of one case, and the result of one case. Everything here pickles (the worker
process sends CallError back) and turns into JSON."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .battery import Geometry

__all__ = ["CallError", "OutputResult", "CaseResult", "Diagnosis", "Shrunk", "OUTPUTS"]

OUTPUTS = ("forward", "dx", "dw", "db")


@dataclass
class CallError:
    """An exception from the user's code (or a timeout), with the user's line it came from."""

    type: str                   # 'IndexError', 'Timeout', ...
    message: str
    where: str | None = None    # 'layer.py:23: dx[n, c] += ...'

    def __str__(self) -> str:
        text = f"{self.type}: {self.message}" if self.message else self.type
        return f"{text} (at {self.where})" if self.where else text

    def to_json(self) -> dict:
        return {"type": self.type, "message": self.message, "where": self.where}


def _number(value):
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class OutputResult:
    """The verdict on one output (forward y, dx, dw or db) of one case.

    status: 'ok', 'wrong' or 'error' (vs convgrad), or 'skipped' (not run).
    rel_error: max |yours - convgrad| / the largest entry of either (None when shapes
        differ or on error).
    where: for 'wrong', where the wrong entries are ('everywhere', 'only the last row', ...).
    own_forward: for dx, dw, db, whether they agree with central differences of the
        user's own forward ('agrees', 'differs', or None when that could not be measured),
        and own_error its relative error.
    """

    status: str
    rel_error: float | None = None
    where: str | None = None
    shape: tuple | None = None          # the user's shape, when it is not the right one
    error: CallError | None = None
    own_forward: str | None = None
    own_error: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        out = {"status": self.status, "rel_error": _number(self.rel_error)}
        if self.where:
            out["where"] = self.where
        if self.shape is not None:
            out["shape"] = list(self.shape)
        if self.error is not None:
            out["error"] = self.error.to_json()
        if self.own_forward is not None:
            out["own_forward"] = {"status": self.own_forward,
                                  "rel_error": _number(self.own_error)}
        return out


@dataclass
class CaseResult:
    """One geometry of the battery and the verdict on each output that was graded."""

    geometry: Geometry
    outputs: dict = field(default_factory=dict)     # 'forward' | 'dx' | 'dw' | 'db' -> result
    mutated: list = field(default_factory=list)     # e.g. ['dout', 'cache']

    @property
    def passed(self) -> bool:
        return (all(result.ok for result in self.outputs.values()) and not self.mutated
                and bool(self.outputs))

    def failing(self) -> list:
        """Names of the outputs that are not ok."""
        return [name for name, result in self.outputs.items() if not result.ok]

    def to_json(self) -> dict:
        out = {"geometry": self.geometry.to_json(), "label": self.geometry.label,
               "passed": self.passed}
        out.update({name: result.to_json() for name, result in self.outputs.items()})
        if self.mutated:
            out["mutated"] = list(self.mutated)
        return out


@dataclass
class Diagnosis:
    """A finding: a known mistake (kind 'mistake'), a pattern over the geometries
    ('pattern'), or another finding such as a timeout or a modified input ('finding')."""

    id: str
    message: str
    kind: str = "mistake"
    explanation: str = ""               # two lines, for mistakes and findings
    link: str = ""                      # docs/math.md#section with the right rule
    cases: list = field(default_factory=list)    # battery indices (0-based) it covers

    def to_json(self) -> dict:
        return {"id": self.id, "message": self.message, "kind": self.kind,
                "explanation": self.explanation, "link": self.link,
                "cases": [i + 1 for i in self.cases]}


@dataclass
class Shrunk:
    """The smallest failing geometry found for one failure class, and its reproduction."""

    output: str                 # 'forward', 'dx', 'dw' or 'db'
    failure: str                # 'wrong' or the exception type
    geometry: Geometry
    start: Geometry             # the battery case it was shrunk from
    detail: str                 # how it fails there (where, or the error)
    code: str                   # Python to paste

    def to_json(self) -> dict:
        return {"output": self.output, "failure": self.failure,
                "geometry": self.geometry.to_json(), "from": self.start.to_json(),
                "detail": self.detail, "reproduction": self.code}
