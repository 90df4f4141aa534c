"""Clusters named on the command line: ``local:N`` or ``tcp://HOST:PORT``.

    with connect("local:2") as client:        # 2 worker processes on this machine
        ...
    with connect("tcp://10.0.0.5:8786") as client:   # a running dask scheduler
        ...

``local:N`` starts N worker processes (one thread each) bound to the loopback interface
(nothing is reachable from other machines), with no dashboard; they stop when the block
ends. ``tcp://`` connects to a scheduler started elsewhere (``dask scheduler``, then
``dask worker tcp://HOST:PORT`` on each machine) and waits for at least one worker.
"""
from __future__ import annotations

import contextlib
import logging
import re

from .._optional import require

__all__ = ["ClusterError", "parse_address", "connect", "MAX_LOCAL_WORKERS"]

MAX_LOCAL_WORKERS = 64
_LOCAL = re.compile(r"local:(\d+)")
_TCP = re.compile(r"tcp://[^\s:/]+:\d+")


class ClusterError(ConnectionError):
    """The cluster could not be reached, or lost the work of a step: nothing was applied."""


def parse_address(text: str):
    """``('local', N)`` or ``('tcp', 'tcp://HOST:PORT')``; ValueError saying what is allowed."""
    allowed = "local:N (N worker processes on this machine) or tcp://HOST:PORT (a scheduler)"
    if not isinstance(text, str):
        raise TypeError(f"the Dask cluster must be {allowed}, got {text!r}")
    local = _LOCAL.fullmatch(text)
    if local:
        n = int(local.group(1))
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise ValueError(f"local:{n}: the number of local workers must be 1 to "
                             f"{MAX_LOCAL_WORKERS}")
        return "local", n
    if _TCP.fullmatch(text):
        return "tcp", text
    raise ValueError(f"the Dask cluster must be {allowed}, got {text!r}")


@contextlib.contextmanager
def connect(address: str, *, timeout: float = 60.0):
    """A ``distributed.Client`` for ``address`` (see the module docstring), closed on exit.

    Raises ClusterError when the scheduler cannot be reached or has no worker within
    ``timeout`` seconds.
    """
    kind, where = parse_address(address)
    distributed = require("distributed", "dask", "convgrad's Dask cluster")
    cluster = None
    try:
        if kind == "local":
            cluster = distributed.LocalCluster(
                n_workers=where, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.ERROR)
            client = distributed.Client(cluster, timeout=timeout)
        else:
            client = distributed.Client(where, timeout=timeout)
    except (OSError, TimeoutError) as error:
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"cannot reach the Dask scheduler at {address} within "
                           f"{timeout:g} s: {error}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise ClusterError(f"the Dask scheduler at {address} has no worker after "
                               f"{timeout:g} s; start some with: dask worker {address}"
                               ) from None
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
