"""``convgrad train --dask``: the digits training loop with its gradients from a cluster.

The loop itself is :func:`convgrad.apps.digits.train`; this module opens the cluster
(:mod:`.cluster`), hands the loop a :class:`~.data_parallel.DataParallel` for its model,
records the cluster in the metrics, and closes everything at the end.
"""
from __future__ import annotations

from .cluster import connect
from .data_parallel import DataParallel

__all__ = ["train_on_dask", "DEFAULT_TIMEOUT", "CONNECT_TIMEOUT"]

DEFAULT_TIMEOUT = 120
CONNECT_TIMEOUT = 30


def train_on_dask(address: str, train, out_dir, *, timeout=None, echo=print, **settings):
    """Run ``train(out_dir, **settings)`` with each step's gradients computed on the Dask
    cluster at ``address`` ('local:N' or 'tcp://HOST:PORT'); returns its metrics.

    ``timeout``: seconds one step (default 120), or connecting to the cluster (default
    30), may take before the run stops with a ClusterError; so does a step whose workers
    keep dying. Nothing of a failed step is applied to the model.
    """
    connect_timeout = CONNECT_TIMEOUT if timeout is None else timeout
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    made = []

    def gradients(model, loss_fn):
        made.append(DataParallel(model, loss_fn, client=client, timeout=timeout))
        return made[-1]

    with connect(address, timeout=connect_timeout) as client:
        workers = len(client.nthreads())
        echo(f"Dask cluster {address}: {workers} worker{'s' * (workers != 1)}; each step's "
             f"gradients are computed there, one shard of the batch per worker")
        try:
            return train(out_dir, gradients=gradients, echo=echo, **settings,
                         extra_metrics={"dask": dict(cluster=address, workers=workers,
                                                     step_timeout_seconds=timeout)})
        finally:
            for step in made:
                step.close()
