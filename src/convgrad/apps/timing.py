"""How `convgrad bench` measures: threads, clock, interleaved pairs, spread, machine load.

* Threads: both libraries are limited to the same number of threads, NumPy's BLAS
  through threadpoolctl (which also reaches PyTorch's OpenMP pool) and PyTorch through
  ``torch.set_num_threads``; one thread is the stable figure on a shared machine.
* Clock: ``cpu`` is this process's CPU time (all its threads: time the machine's other
  users cannot inflate, though they still slow caches and memory), ``wall`` the elapsed
  time a user waits for.
* Pairs: one block of steps of each library in turn, the order alternating pair by
  pair; a block holds enough steps for about ``block_seconds`` on the clock, and the
  figure is the time per step. Each figure is the median over the pairs with min and max
  (:class:`Spread`); a ratio is the median of the per-pair ratios, so both libraries are
  compared under the same conditions.
* Load: the 1-minute load average is read before and after every job; when it exceeds
  the number of cores the report says so (other processes competed for the CPUs).
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

__all__ = ["CLOCKS", "Spread", "spread", "Session", "markdown", "limit_threads"]

CLOCKS = {"cpu": (time.process_time, "process CPU time"),
          "wall": (time.perf_counter, "wall-clock time")}


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float

    def format_ms(self) -> str:
        return f"{self.median * 1e3:.2f} ms ({self.min * 1e3:.2f}-{self.max * 1e3:.2f})"

    def format_ratio(self) -> str:
        return f"{self.median:.2f}x ({self.min:.2f}-{self.max:.2f})"


def spread(values) -> Spread:
    values = list(values)
    return Spread(statistics.median(values), min(values), max(values))


def limit_threads(threads: int):
    """A threadpoolctl context limiting every BLAS / OpenMP pool in the process."""
    from .._optional import require
    threadpoolctl = require("threadpoolctl", "bench", "convgrad bench")
    return threadpoolctl.threadpool_limits(limits=threads)


def blas_kernel() -> str:
    """The BLAS library NumPy calls and the kernel it chose for this CPU (threadpoolctl)."""
    from .._optional import require
    threadpoolctl = require("threadpoolctl", "bench", "convgrad bench")
    import numpy  # noqa: F401  (loads NumPy's BLAS so threadpoolctl can see it)
    found = []
    for pool in threadpoolctl.threadpool_info():
        if pool.get("user_api") == "blas":
            name = f"{pool.get('internal_api')} {pool.get('version')}"
            if pool.get("architecture"):
                name += f" {pool['architecture']} kernel"
            found.append(f"{name} ({os.path.basename(pool.get('filepath', ''))})")
    return "; ".join(found) or "unknown"


class Session:
    """The measurement conditions of one benchmark run (a context manager)."""

    def __init__(self, clock: str = "cpu", threads: int = 1, block_seconds: float = 0.05,
                 settle: float | None = None):
        if clock not in CLOCKS:
            raise ValueError(f"clock={clock!r}; choose 'cpu' or 'wall'")
        self.clock_name = clock
        self.clock, self.description = CLOCKS[clock]
        self.threads = threads
        self.block_seconds = block_seconds
        # several threads spin after each BLAS / OpenMP call: a pause lets them park
        # before the other library runs (one thread: nothing spins)
        self.settle = (0.1 if threads > 1 else 0.0) if settle is None else settle
        self.loads: list[float] = []
        self._limits = None

    def __enter__(self):
        self._limits = limit_threads(self.threads)
        self._limits.__enter__()
        self.sample_load()
        return self

    def __exit__(self, *exc):
        self.sample_load()
        self._limits.__exit__(*exc)
        return False

    def sample_load(self) -> None:
        try:
            self.loads.append(os.getloadavg()[0])
        except OSError:
            pass

    def _block(self, step, count: int) -> float:
        if self.settle:
            time.sleep(self.settle)
        start = self.clock()
        for _ in range(count):
            step()
        return (self.clock() - start) / count

    def _count(self, step) -> int:
        """Steps per block: enough for ``block_seconds`` on the clock (after a warm-up)."""
        step()
        once = max(self._block(step, 1), 1e-6)
        return max(1, int(self.block_seconds / once))

    def pairs(self, ours, theirs, repeats: int) -> list[tuple]:
        """[(ours seconds per step, theirs seconds per step or None)] * repeats."""
        self.sample_load()
        count = self._count(ours)
        if theirs is None:
            result = [(self._block(ours, count), None) for _ in range(repeats)]
        else:
            count_theirs = self._count(theirs)
            result = []
            for i in range(repeats):
                if i % 2:
                    b = self._block(theirs, count_theirs)
                    a = self._block(ours, count)
                else:
                    a = self._block(ours, count)
                    b = self._block(theirs, count_theirs)
                result.append((a, b))
        self.sample_load()
        return result

    def report(self) -> dict:
        cores = os.cpu_count() or 1
        peak = max(self.loads) if self.loads else None
        return {"clock": self.clock_name, "clock_description": self.description,
                "threads": self.threads, "load_average_max": peak,
                "load_average_samples": self.loads, "cores": cores,
                "load_warning": (None if peak is None or peak <= cores else
                                 f"warning: the 1-minute load average reached {peak:.1f} on "
                                 f"{cores} cores during the run: other processes competed "
                                 f"for the CPUs, so the figures are less reliable")}


def markdown(rows) -> list[str]:
    """A Markdown table from rows of strings, the first being the header."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(wd) for c, wd in zip(row, widths)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (wd + 2) for wd in widths) + "|")
    return lines
