"""Memory-bound loops split across threads: NumPy releases the GIL while it copies and adds.

The matrix products already run on BLAS's threads; the copies around them (im2col, its
adjoint, the depthwise shifts) are single-threaded NumPy unless split. The split is by
channel blocks, so no two threads ever write the same memory. Small jobs run inline:
a thread hand-off costs tens of microseconds.

The number of threads is ``CONVGRAD_NUM_THREADS`` if set, else the CPUs this process
may use (at most 8).
"""
from __future__ import annotations

import atexit
import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["num_threads", "parallel_for"]

_MIN_ELEMENTS_PER_THREAD = 1 << 17       # below this, threading costs more than it saves


def _default_threads() -> int:
    value = os.environ.get("CONVGRAD_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:                # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))


_threads = _default_threads()
_pool = None


def num_threads() -> int:
    return _threads


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="convgrad")
        atexit.register(_pool.shutdown, wait=False)
    return _pool


def parallel_for(body, items: int, elements: int) -> None:
    """Call ``body(start, stop)`` on blocks covering ``range(items)``.

    ``elements`` is the total work (array elements touched), which decides how many
    threads are worth using. Exceptions in a block are raised here.
    """
    workers = min(_threads, items, max(1, elements // _MIN_ELEMENTS_PER_THREAD))
    if workers <= 1:
        body(0, items)
        return
    bounds = [items * i // workers for i in range(workers + 1)]
    pool = _get_pool()
    futures = [pool.submit(body, bounds[i], bounds[i + 1]) for i in range(1, workers)]
    body(bounds[0], bounds[1])            # the calling thread takes the first block
    for future in futures:
        future.result()
