"""The test cluster for the Dask tests: two worker processes on the loopback interface.

Each test module makes one (a fixture of scope 'module'), so a module's tests share its
start-up cost; every wait on it is bounded. Without the dask extra the modules skip with
a message naming it, except under CI (CI=true), where a missing extra is a failure: CI
installs '.[test]', which includes it.
"""
from __future__ import annotations

import importlib.util
import logging
import os

import pytest

TIMEOUT = 60          # seconds any one wait on the cluster may take


def require_dask():
    missing = [name for name in ("dask", "distributed") if importlib.util.find_spec(name) is None]
    if missing:
        message = (f"the Dask tests need the dask extra ({', '.join(missing)} missing): "
                   f"pip install 'convgrad[dask]'")
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI installs .[test], which includes it)", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def local_cluster(**config):
    """A started (cluster, client) pair; ``config``: dask settings for the scheduler."""
    import dask
    import distributed
    with dask.config.set(config):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.CRITICAL)
    return cluster, distributed.Client(cluster, timeout=TIMEOUT)


def compute(client, *arrays):
    """Compute dask collections on the cluster, waiting at most TIMEOUT seconds."""
    import distributed
    futures = client.compute(list(arrays))
    distributed.wait(futures, timeout=TIMEOUT)
    return client.gather(futures)
