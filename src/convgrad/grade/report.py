"""The grade report: a table of cases, the shrunk failures, the diagnoses and the score,
as text (coloured on request) or as JSON."""
from __future__ import annotations

import json

from .results import OUTPUTS

__all__ = ["GradeReport"]

_COLOURS = {"ok": "32", "wrong": "31", "error": "31", "title": "1", "id": "33"}


class GradeReport:
    """The outcome of :func:`~convgrad.grade.grade`.

    Attributes:
        cases: one :class:`~.results.CaseResult` per geometry of the battery.
        diagnoses: :class:`~.results.Diagnosis` list, patterns first.
        shrunk: :class:`~.results.Shrunk` list, one per failure class.
        passed, total: geometries passed, and graded.
    """

    def __init__(self, cases, diagnoses, shrunk, *, api, names, source, seconds=0.0):
        self.cases, self.diagnoses, self.shrunk = list(cases), list(diagnoses), list(shrunk)
        self.api, self.names, self.source, self.seconds = api, tuple(names), source, seconds

    @property
    def passed(self) -> int:
        return sum(case.passed for case in self.cases)

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def all_passed(self) -> bool:
        return self.passed == self.total

    @property
    def mistakes(self) -> list:
        """The ids of the known mistakes named (catalog entries)."""
        return [d.id for d in self.diagnoses if d.kind == "mistake"]

    def ids(self) -> list:
        """Every diagnosis id except the patterns."""
        return [d.id for d in self.diagnoses if d.kind != "pattern"]

    def to_json(self) -> dict:
        return {"passed": self.passed, "total": self.total, "api": self.api,
                "forward": self.names[0], "backward": self.names[1], "source": self.source,
                "cases": [case.to_json() for case in self.cases],
                "shrunk": [s.to_json() for s in self.shrunk],
                "diagnoses": [d.to_json() for d in self.diagnoses]}

    def json(self) -> str:
        return json.dumps(self.to_json(), indent=1)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"<GradeReport: passes {self.passed} of {self.total} geometries>"

    # -- text -----------------------------------------------------------------------------

    def format(self, color: bool = False) -> str:
        paint = ((lambda text, key: f"\033[{_COLOURS[key]}m{text}\033[0m") if color
                 else (lambda text, key: text))
        graded = [o for o in OUTPUTS if any(o in case.outputs for case in self.cases)]
        names = " and ".join(n for n in self.names if n)
        lines = [paint(f"Grading {names} from {self.source} ({self.api} API) on "
                       f"{self.total} geometries, float64", "title"), ""]
        width = max(len(case.geometry.describe()) for case in self.cases)
        lines.append(f"{'#':>3}  {'geometry':<{width}}  "
                     + "".join(f"{o:<8}" for o in graded) + "notes")
        for i, case in enumerate(self.cases, 1):
            cells = ""
            for o in graded:
                status = case.outputs[o].status if o in case.outputs else "-"
                cells += paint(f"{status:<8}", status) if status in _COLOURS else f"{status:<8}"
            lines.append(f"{i:>3}  {case.geometry.describe():<{width}}  {cells}"
                         f"{_notes(case)}".rstrip())
        if self.shrunk:
            lines += ["", paint("Smallest failures found (shrunk; ready to paste):", "title")]
            for s in self.shrunk:
                start = self.cases_index(s.start)
                lines.append(f"  {s.output} {s.failure}: {s.geometry.describe()}"
                             + (f"  (shrunk from case {start})" if start else "")
                             + (f"\n    {s.detail}" if s.detail else ""))
                lines += ["      " + line for line in s.code.splitlines()]
        if self.diagnoses:
            lines += ["", paint("Diagnosis:", "title")]
            for d in self.diagnoses:
                tag = "" if d.kind == "pattern" else paint(f"[{d.id}] ", "id")
                lines.append(f"  {tag}{d.message}")
                lines += ["      " + line for line in d.explanation.splitlines()]
                if d.link:
                    lead = "the right rule" if d.kind == "mistake" else "see"
                    lines.append(f"      {lead}: {d.link}")
        verdict = "ok" if self.all_passed else "wrong"
        lines += ["", paint(f"passes {self.passed} of {self.total} geometries", verdict)]
        return "\n".join(lines)

    def cases_index(self, geometry) -> int:
        """1-based number of the battery case with this geometry (0 if none)."""
        for i, case in enumerate(self.cases, 1):
            if (case.geometry.x_shape, case.geometry.w_shape, case.geometry.stride,
                    case.geometry.pad) == (geometry.x_shape, geometry.w_shape, geometry.stride,
                                           geometry.pad):
                return i
        return 0


def _notes(case) -> str:
    notes, errors = [], set()
    for o, r in case.outputs.items():
        if r.status == "wrong":
            rel = f", {r.rel_error:.0e}" if r.rel_error is not None else ""
            notes.append(f"{o}: {r.where}{rel}")
        elif r.status == "error" and str(r.error) not in errors:
            errors.add(str(r.error))
            role = "forward" if o == "forward" else "backward"
            notes.append(f"{role}: {r.error.type}")
        if r.own_forward == "differs" and r.status == "ok":
            notes.append(f"{o} right, but not your forward's gradient")
    if case.mutated:
        notes.append("modifies " + ", ".join(case.mutated))
    return "; ".join(notes)
