"""Diagnosis: the pattern over the geometries, the known mistakes matched, and findings.

* pattern: for each output that fails somewhere, the simplest property of the geometry
  that separates its failing cases from its passing ones (:mod:`.pattern`);
* known mistakes: a catalog entry is named when one of its wrong implementations gives,
  on the same data, exactly the user's wrong output on at least one case; ``shape-crash``
  when the user's code raises on some geometries and not on others;
* findings: timeouts, modified inputs, a backward that disagrees with central
  differences of the user's own forward, code that raises on every geometry.
"""
from __future__ import annotations

import numpy as np

from .catalog import CATALOG, NOTES, MATH, by_id
from .compare import same_values
from .pattern import describe_split
from .results import OUTPUTS, Diagnosis

__all__ = ["diagnose"]

_NOT_RAISED = ("Timeout", "WorkerDied", "NotRun")


def _status(case, output):
    result = case.outputs.get(output)
    return None if result is None else result.status


def _graded(cases, output):
    return [i for i, case in enumerate(cases) if _status(case, output) not in (None, "skipped")]


def _patterns(cases) -> list:
    texts = {}
    for output in OUTPUTS:
        graded = _graded(cases, output)
        failing = [not cases[i].outputs[output].ok for i in graded]
        if any(failing):
            text = describe_split([cases[i].geometry for i in graded], failing)
            texts.setdefault(text, []).append(output)
    found = []
    for text, outputs in texts.items():
        found.append(Diagnosis("pattern", f"{', '.join(outputs)}: {text}", "pattern",
                               cases=[i for i, case in enumerate(cases)
                                      if any(_status(case, o) not in (None, "ok", "skipped")
                                             for o in outputs)]))
    return found


def _forward_first(cases) -> list:
    """When the forward is wrong and the backward agrees with it: fix the forward first."""
    wrong = [i for i, case in enumerate(cases) if _status(case, "forward") == "wrong"]
    agreeing = [i for i in wrong
                if all(cases[i].outputs[o].own_forward == "agrees" for o in ("dx", "dw", "db")
                       if o in cases[i].outputs)
                and any(o in cases[i].outputs for o in ("dx", "dw", "db"))]
    if not agreeing:
        return []
    explanation, anchor = NOTES["forward-first"]
    return [Diagnosis("forward-first", f"your forward is wrong on {len(wrong)} geometries, and "
                      f"your backward agrees with central differences of it on "
                      f"{len(agreeing)} of them", "finding", explanation, f"{MATH}#{anchor}",
                      agreeing)]


def _matches(mistake, cases, values, data) -> dict:
    """output -> the cases where the user's wrong output equals one of the mistake's."""
    explained = {}
    for output, implementation in mistake.variants:
        for i, case in enumerate(cases):
            if _status(case, output) != "wrong" or i in explained.get(output, ()):
                continue
            x, w, b, dy, s, p = data[i]
            try:
                with np.errstate(all="ignore"):
                    theirs = implementation(x, w, b, dy, s, p)
            except Exception:                       # noqa: BLE001 (the mistake crashes too)
                continue
            if theirs is not None and same_values(values[i][output], np.asarray(theirs)):
                explained.setdefault(output, set()).add(i)
    return explained


def _known_mistakes(cases, values, data) -> list:
    matched = {}
    for mistake in CATALOG:
        if mistake.by_values:
            explained = _matches(mistake, cases, values, data)
            if explained:
                matched[mistake.id] = (mistake, explained)
    # Two mistakes can give the same numbers on some geometries (e.g. dy padded by pad and
    # dx cropped from the start agree when pad = HH-1): a mistake whose matches are a strict
    # subset of another's, for the same output, is not the explanation.
    for _, explained in matched.values():
        for output, where in list(explained.items()):
            if any(other is not explained and where < other.get(output, set())
                   for _, other in matched.values()):
                del explained[output]
    found = []
    for mistake, explained in matched.values():
        if not explained:
            continue
        parts = []
        for output in OUTPUTS:
            if output in explained:
                wrong = sum(1 for case in cases if _status(case, output) == "wrong")
                parts.append(f"your {output} on {len(explained[output])} of the {wrong} "
                             f"geometries where it is wrong")
        found.append(Diagnosis(mistake.id, " and ".join(parts) + " equals this mistake's",
                               "mistake", mistake.explanation, mistake.link,
                               sorted(set().union(*explained.values()))))
    return found


def _crashes(cases, names) -> list:
    found = []
    for role, output, name in (("forward", "forward", names[0]), ("backward", "dx", names[1])):
        attempted = [i for i in _graded(cases, output)
                     if not (_status(cases[i], output) == "error"
                             and cases[i].outputs[output].error.type in _NOT_RAISED)]
        raised = [i for i in attempted if _status(cases[i], output) == "error"]
        if not raised:
            continue
        first = cases[raised[0]].outputs[output].error
        if len(raised) < len(attempted):
            split = describe_split([cases[i].geometry for i in attempted],
                                   [i in raised for i in attempted], good="runs", bad="raises")
            mistake = by_id("shape-crash")
            found.append(Diagnosis(
                "shape-crash", f"{name} raises on {len(raised)} of {len(attempted)} "
                f"geometries ({split}); first: {first}", "mistake", mistake.explanation,
                mistake.link, raised))
        else:
            explanation, _ = NOTES["raises-always"]
            found.append(Diagnosis("raises-always", f"{name} raises on every geometry: {first}",
                                   "finding", explanation, "", raised))
    return found


def _findings(cases, names) -> list:
    found = []
    timed_out = [i for i, case in enumerate(cases)
                 if any(r.error is not None and r.error.type == "Timeout"
                        for r in case.outputs.values())]
    if timed_out:
        explanation, _ = NOTES["timeout"]
        found.append(Diagnosis("timeout", f"{len(timed_out)} geometries timed out or were not "
                               f"run after two timeouts", "finding", explanation, "", timed_out))
    mutated = [i for i, case in enumerate(cases) if case.mutated]
    if mutated:
        what = sorted({m for i in mutated for m in cases[i].mutated})
        explanation, anchor = NOTES["mutates-input"]
        found.append(Diagnosis("mutates-input", f"your code modifies {', '.join(what)} "
                               f"(on {len(mutated)} geometries)", "finding", explanation,
                               f"{MATH}#{anchor}", mutated))
    differs = {o: [i for i, case in enumerate(cases)
                   if o in case.outputs and case.outputs[o].own_forward == "differs"]
               for o in ("dx", "dw", "db")}
    differs = {o: cases_ for o, cases_ in differs.items() if cases_}
    if differs:
        explanation, anchor = NOTES["backward-vs-forward"]
        parts = [f"{o} on {len(c)} geometries" for o, c in differs.items()]
        found.append(Diagnosis(
            "backward-vs-forward", f"{names[1]} disagrees with central differences of "
            f"{names[0]}: {', '.join(parts)}", "finding", explanation, f"{MATH}#{anchor}",
            sorted(set().union(*map(set, differs.values())))))
    return found


def diagnose(cases, values, data, names) -> list:
    """Every diagnosis, patterns first. ``values[i]``: output -> the user's array or
    CallError; ``data[i]``: (x, w, b, dy, stride, pad) of case i; ``names``: the user's
    (forward, backward) names."""
    return (_patterns(cases) + _forward_first(cases) + _known_mistakes(cases, values, data)
            + _crashes(cases, names) + _findings(cases, names))
