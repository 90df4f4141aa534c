"""A one-line progress bar on stderr for the long commands (check, grade).

Drawn only on a terminal (a log or a pipe gets the up-front estimate and the results,
not a stream of carriage returns), redrawn at most ten times a second.
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """``bar = Progress(total, 'check'); bar.advance(n); bar.close()``."""

    def __init__(self, total: float, label: str, stream=None, enabled=None, width: int = 30):
        self.total, self.label, self.width = max(float(total), 1.0), label, width
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = isatty() if enabled is None else enabled
        self.done, self.start, self.drawn = 0.0, time.perf_counter(), 0.0

    def advance(self, amount: float = 1.0) -> None:
        self.done = min(self.done + amount, self.total)
        now = time.perf_counter()
        if self.enabled and (now - self.drawn >= 0.1 or self.done >= self.total):
            self.drawn = now
            filled = int(self.width * self.done / self.total)
            elapsed = now - self.start
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                              f"{100 * self.done / self.total:3.0f}%  {elapsed:.0f} s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\r" + " " * (self.width + len(self.label) + 16) + "\r")
            self.stream.flush()
