"""``grade()``: run a user's conv forward and/or backward over the battery and judge them.

For each geometry (float64, random x, w, b and upstream gradient): the forward's y is
judged against convgrad, dx, dw, db against convgrad and against directional central
differences of the user's own forward (a few random unit directions per input, so a
slow naive forward costs only a few calls per case). Then the diagnoses, the shrunk
failures and the report.

The work is estimated after the first two (smallest) geometries from their measured
times, and refused when it would exceed the bound (``budget`` seconds).
"""
from __future__ import annotations

import os
import time

import numpy as np

from .battery import BATTERY, Geometry, make_data
from .calling import APIS
from .compare import judge
from .diagnose import diagnose
from .loading import LoadError
from .mistakes import correct
from .report import GradeReport
from .results import CallError, CaseResult, Shrunk
from .runner import InProcessRunner, WorkerRunner
from .shrink import _key, reproduction, shrink

__all__ = ["grade", "GradeError"]

H = 1e-4               # step of the central differences (the loss is linear in each input)
DIRECTIONS = 2         # random unit directions per input
AGREE = 1e-6           # relative difference below which a gradient agrees with the forward
MAX_TIMEOUTS = 2       # a function that timed out this often is not called again
SHRINK_ATTEMPTS = 40   # geometries tried per failure class
_NOT_SHRUNK = ("Timeout", "WorkerDied", "NotRun")


class GradeError(ValueError):
    """The grade cannot run: the file does not import, names are missing, or the work
    would exceed its bound. The message says which, and what to do."""


def _positive(value, name, example):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or value == float("inf"):
        raise ValueError(f"{name}={value!r}; expected a positive number of seconds, {example}")
    return float(value)


def _seconds(t: float) -> str:
    return f"{t:.1f} s" if t < 10 else f"{t:.0f} s" if t < 120 else f"{t / 60:.0f} min"


class _Grading:
    def __init__(self, runner, api, module, names, budget, seed, battery, progress):
        self.runner, self.api, self.module, self.names = runner, api, module, names
        self.budget, self.seed, self.battery = budget, seed, battery
        self.progress = progress or (lambda *event: None)
        self.timeouts = {"forward": 0, "backward": 0}
        self.times = {"forward": [], "backward": []}     # (multiply-adds, seconds)
        self.start = time.perf_counter()

    # -- calling, with timeouts counted ------------------------------------------------

    def _call(self, role, method, *args, calls=1):
        """(the method's reply, seconds it took or None when it was not called)."""
        if self.timeouts[role] >= MAX_TIMEOUTS:
            error = CallError("Timeout", f"not run: timed out {MAX_TIMEOUTS} times already")
            return (error if method == "directional" else (error, [])), None
        began = time.perf_counter()
        reply = self.runner.call(method, *args, calls=calls)
        value = reply if method == "directional" else reply[0]
        if isinstance(value, CallError) and value.type == "Timeout":
            self.timeouts[role] += 1
        return reply, time.perf_counter() - began

    def _run(self, index, g: Geometry, x, w, b, dy):
        """values: output -> the user's array or CallError; and the inputs they modified."""
        s, p = g.stride, g.pad
        values, mutated = {}, []
        if self.names[0]:
            (out, changed), seconds = self._call("forward", "forward", index, x, w, b, s, p)
            if isinstance(out, np.ndarray):
                self.times["forward"].append((g.multiply_adds, seconds))
            values["forward"] = out
            mutated += [f"{m} (in the forward)" for m in changed]
        if self.names[1]:
            (grads, changed), seconds = self._call("backward", "backward", index, dy, x, w, b,
                                                   s, p)
            if isinstance(grads, tuple):
                self.times["backward"].append((g.multiply_adds, seconds))
            else:
                grads = (grads,) * 3
            mutated += changed
            values.update(zip(("dx", "dw", "db"), grads))
        return values, mutated

    # -- one case of the battery -------------------------------------------------------

    def case(self, index, g: Geometry):
        x, w, b, dy = make_data(g, self.seed + index)
        right = correct(x, w, b, dy, g.stride, g.pad)
        values, mutated = self._run(index, g, x, w, b, dy)
        result = CaseResult(g, {o: judge(v, right[o], o) for o, v in values.items()}, mutated)
        self._own_forward(index, result, values, right, x, w, b, dy)
        return result, values, (x, w, b, dy, g.stride, g.pad)

    def _own_forward(self, index, result, values, right, x, w, b, dy):
        """Compare dx, dw, db with directional central differences of the user's forward."""
        out = values.get("forward")
        if not (isinstance(out, np.ndarray) and out.shape == dy.shape
                and isinstance(values.get("dx"), np.ndarray)):
            return
        rng = np.random.default_rng(self.seed + 7919 + index)
        directions = {}
        for name, a, o in (("x", x, "dx"), ("w", w, "dw"), ("b", b, "db")):
            if values[o].shape == a.shape:
                vs = [rng.standard_normal(a.shape) for _ in range(DIRECTIONS)]
                directions[name] = [v / max(np.linalg.norm(v), 1e-300) for v in vs]
        if not directions:
            return
        g = result.geometry
        numeric, _ = self._call("forward", "directional", x, w, b, g.stride, g.pad, dy,
                                directions, H, calls=2 * DIRECTIONS * len(directions))
        if isinstance(numeric, CallError):
            return
        for name, o in (("x", "dx"), ("w", "dw"), ("b", "db")):
            if name not in numeric:
                continue
            analytic = np.array([np.sum(values[o] * v) for v in directions[name]])
            measured = np.asarray(numeric[name])
            size = np.sqrt(max(values[o].size, 1))
            scale = max(np.abs(analytic).max(), np.abs(measured).max(),
                        np.linalg.norm(values[o]) / size, np.linalg.norm(right[o]) / size,
                        1e-300)
            error = float(np.abs(analytic - measured).max() / scale)
            if not np.isfinite(error):
                error = float("inf")
            result.outputs[o].own_forward = "agrees" if error <= AGREE else "differs"
            result.outputs[o].own_error = error

    # -- the estimate -------------------------------------------------------------------

    def _fit(self, role):
        """seconds per call as a + c * multiply_adds, from the calls measured so far."""
        points = self.times[role]
        if not points:
            return 0.0, 0.0
        (m0, t0), (m1, t1) = min(points), max(points)
        if m1 <= m0 or t1 <= t0:
            return max(t for _, t in points), 0.0
        c = (t1 - t0) / (m1 - m0)
        return max(t0 - c * m0, 0.0), c

    def estimate(self, remaining) -> float:
        """Seconds for the remaining geometries (and shrinking), from the times so far."""
        (af, cf), (ab, cb) = self._fit("forward"), self._fit("backward")
        forward_calls = 1 + (2 * DIRECTIONS * 3 if self.names[1] else 0)
        seconds = sum(forward_calls * (af + cf * g.multiply_adds) + ab + cb * g.multiply_adds
                      for g in remaining)
        return seconds + 3 * SHRINK_ATTEMPTS * (af + ab + (cf + cb) * self.battery[0].multiply_adds)

    def check_estimate(self, done: int) -> None:
        total = self.elapsed() + self.estimate(self.battery[done:])
        calls = len(self.battery) * ((1 if self.names[0] else 0) + (1 if self.names[1] else 0)
                                     + (12 if all(self.names) else 0))
        self.progress("estimate", f"{len(self.battery)} geometries, about {calls} calls of "
                      f"your code: estimated {_seconds(total)}", total)
        if total > self.budget:
            measured = self.times["forward"] + self.times["backward"]
            slowest = (f"your code took {max(measured, key=lambda t: t[1])[1]:.2g} s on a "
                       f"geometry of {max(measured, key=lambda t: t[1])[0]} multiply-adds; "
                       if measured else "")
            raise GradeError(
                f"grading would take about {_seconds(total)} ({slowest}the battery needs "
                f"about {calls} calls), over the bound of {self.budget:g} s: raise it with "
                f"--budget SECONDS (budget= in Python), or make the code faster")

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    # -- shrinking ----------------------------------------------------------------------

    def _failure(self, values, right, output):
        """('wrong' or the error type, detail), or None when the output is right."""
        result = judge(values[output], right[output], output)
        if result.status == "ok":
            return None
        if result.status == "wrong":
            return "wrong", f"{result.where}" + (f", rel_error {result.rel_error:.1e}"
                                                 if result.rel_error is not None else "")
        return result.error.type, str(result.error)

    def shrink_all(self, cases) -> list:
        classes = {}
        for i, case in enumerate(cases):
            for output, r in case.outputs.items():
                if r.status == "wrong":
                    classes.setdefault((output, "wrong"), []).append(i)
                elif r.status == "error" and r.error.type not in _NOT_SHRUNK:
                    if output in ("dw", "db"):
                        continue                # one backward call: reported under dx
                    classes.setdefault((output, r.error.type), []).append(i)
        found = []
        for (output, failure), indices in classes.items():
            if self.elapsed() > self.budget:
                break
            details = {}

            def still_fails(g, output=output, failure=failure, details=details):
                x, w, b, dy = make_data(g, 0)
                values, _ = self._run(-1, g, x, w, b, dy)
                if output not in values:
                    return False
                right = correct(x, w, b, dy, g.stride, g.pad)
                if not np.any(right[output]):       # a degenerate case: only padding read
                    return False
                outcome = self._failure(values, right, output)
                if outcome is None or outcome[0] != failure:
                    return False
                details[g] = outcome[1]
                return True

            starts = sorted((cases[i].geometry for i in indices), key=_key)
            start = next((g for g in starts[:3] if still_fails(g)), None)
            if start is None:
                continue
            smallest, _ = shrink(start, still_fails, SHRINK_ATTEMPTS)
            detail = details.get(smallest, details.get(start, ""))
            label = "backward" if output == "dx" and failure != "wrong" else output
            found.append(Shrunk(label, failure, smallest, start, detail,
                                reproduction(smallest, self.api, self.module, self.names,
                                             output)))
        return found

    # -- the whole battery ----------------------------------------------------------------

    def run(self, shrink_failures: bool) -> GradeReport:
        cases, values, data = [], [], []
        for index, g in enumerate(self.battery):
            if index == min(2, len(self.battery) - 1) and index > 0:
                self.check_estimate(index)
            if self.elapsed() > self.budget:
                result = CaseResult(g)
                error = CallError("NotRun", f"the time budget of {self.budget:g} s was spent")
                for o in (["forward"] if self.names[0] else []) + \
                        (["dx", "dw", "db"] if self.names[1] else []):
                    result.outputs[o] = judge(error, None, o)
                cases.append(result)
                values.append({o: error for o in result.outputs})
                data.append(None)
                continue
            result, vals, inputs = self.case(index, g)
            cases.append(result)
            values.append(vals)
            data.append(inputs)
            self.progress("case", index + 1, len(self.battery))
        diagnoses = diagnose(cases, values, data, self.names)
        shrunk = self.shrink_all(cases) if shrink_failures else []
        return GradeReport(cases, diagnoses, shrunk, api=self.api, names=self.names,
                           source=self.module, seconds=self.elapsed())


def grade(forward=None, backward=None, api: str = "cs231n", *, file=None,
          timeout: float = 10.0, budget: float = 300.0, seed: int = 0, progress=None,
          battery=None, shrink: bool = True) -> GradeReport:
    """Grade a conv layer's forward and/or backward; returns a :class:`GradeReport`.

    Args:
        forward, backward: the functions, or with ``file`` their names in it (None: the
            API's default names). Either may be left out to grade the other alone; a
            backward alone gets the cache the course's forward builds, (x, w, b, conv_param).
        api: 'cs231n' (forward(x, w, b, conv_param) -> (out, cache), backward(dout, cache)
            -> (dx, dw, db)) or 'functional' (forward(x, w, b, stride, pad) -> out,
            backward(dy, x, w, b, stride, pad) -> (dx, dw, db)).
        file: a .py file to import by its path and run in a worker process (killed and
            restarted when a call exceeds ``timeout``). Without it the functions run in
            this process, under a SIGALRM watchdog where there is one.
        timeout: seconds allowed per call of the user's code.
        budget: the bound on the whole grade in seconds: refused up front (GradeError)
            when the estimate exceeds it.
        progress: optional callable receiving ('estimate', text, seconds) and
            ('case', done, total) events.
        battery: geometries to use instead of :data:`~convgrad.grade.battery.BATTERY`.

    Shapes: x (N, C, H, W), w (F, C, HH, WW), b (F,), out and dout (N, F, H', W').
    """
    if api not in APIS:
        raise ValueError(f"api={api!r}; expected one of {', '.join(map(repr, APIS))}")
    timeout = _positive(timeout, "timeout", "such as 10")
    budget = _positive(budget, "budget", "such as 300")
    battery = list(BATTERY if battery is None else battery)
    bad = [g for g in battery if not isinstance(g, Geometry) or not g.valid]
    if not battery or bad:
        raise ValueError(f"battery must be a non-empty list of valid Geometry, got "
                         f"{bad[0] if bad else 'an empty list'}")
    if file is not None:
        for value, role in ((forward, "forward"), (backward, "backward")):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"with file=, {role} must be a function name (str), got "
                                f"{type(value).__name__}")
        try:
            runner = WorkerRunner(os.fspath(file), forward, backward, api, timeout)
        except LoadError as error:
            raise GradeError(str(error)) from None
        stem = os.path.splitext(os.path.basename(os.fspath(file)))[0]
        module = stem
    else:
        if forward is None and backward is None:
            raise ValueError("grade needs a forward, a backward or both (functions, or "
                             "names with file=)")
        for value, role in ((forward, "forward"), (backward, "backward")):
            if value is not None and not callable(value):
                raise TypeError(f"{role} must be a function, got {type(value).__name__}")
        runner = InProcessRunner(forward, backward, api, timeout)
        module = next(getattr(f, "__module__", "your_module") for f in (forward, backward) if f)
    with runner:
        return _Grading(runner, api, module, runner.names, budget, seed, battery,
                        progress).run(shrink)
