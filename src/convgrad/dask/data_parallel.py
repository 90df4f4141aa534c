"""Data-parallel training on Dask: each worker computes one shard of the batch's
gradients, the client sums them and steps the optimizer.

    from distributed import Client
    step = DataParallel(model, loss_fn, client=Client("tcp://scheduler:8786"))
    for x, labels in batches:
        optimizer.zero_grad()
        loss, output = step(x, labels)     # = loss_fn.forward(model.forward(x), labels),
        optimizer.step()                   #   with model.backward(...) done on the workers

One step, for S shards (one per worker, by default) of a batch of N samples:

1. the parameters (and buffers: BatchNorm's running statistics) go out: one copy leaves
   the client, and each worker fetches it once (from the worker that first received it);
   the model's structure went out once, when the DataParallel was made;
2. each worker runs its shard (n samples) forward, the loss, and backward
   (:mod:`.replica`). A mean-reduced loss is weighted by n / N, so the shares add up to
   the batch's loss and gradients exactly (up to rounding). A BatchNorm in training mode
   pauses every shard once forward and once backward to exchange C partial sums
   (:mod:`.sync_batchnorm`), so it sees the whole batch's statistics, as unsharded;
3. the shards' gradients are summed on the workers in a tree and one sum comes back,
   added into each parameter's ``.grad`` (as ``model.backward`` would); BatchNorm's
   running statistics are updated on the client.

The same model, data and seed therefore give the same losses and parameters as training
in one process, to rounding. Every stage is a Dask task computed from its inputs: a
worker that dies mid-step is replaced (under a nanny) and Dask recomputes what it held;
if the same work kills workers more often than Dask retries
(``distributed.scheduler.allowed-failures``), or the step exceeds ``timeout`` seconds,
the step raises :class:`~.cluster.ClusterError` and nothing of it is applied: the
gradients and running statistics are written only after every shard has finished.

Shapes: x (N, ...) any per-sample layout the model takes, labels (N,), output (N, K).
"""
from __future__ import annotations

import math
import time

import numpy as np

from .. import nn
from ..nn.module import quiet_arithmetic
from .._optional import require
from . import replica, sync_batchnorm
from .cluster import ClusterError

__all__ = ["DataParallel"]


def _identity(value):
    return value


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"DataParallel: model must be a convgrad.nn.Module, got "
                        f"{type(model).__name__}")
    for layer in replica.leaves(model):
        for inner in layer.modules():
            if isinstance(inner, nn.Dropout) and inner.p > 0:
                raise ValueError(
                    f"DataParallel: {inner!r} draws its masks from its own generator, which "
                    f"each worker would copy: the shards would not reproduce one-process "
                    f"training; remove it or use p=0")
            if inner is not layer and isinstance(inner, replica.BATCH_NORMS):
                raise ValueError(
                    f"DataParallel: {inner!r} sits inside {type(layer).__name__}, which is "
                    f"not a Sequential: its batch statistics could not be shared across "
                    f"shards; build the model from Sequentials")


def _check_loss(loss_fn) -> str:
    reduction = getattr(loss_fn, "reduction", None)
    if not (callable(getattr(loss_fn, "forward", None))
            and callable(getattr(loss_fn, "backward", None))) or reduction not in ("mean",
                                                                                   "sum"):
        raise TypeError(f"DataParallel: loss_fn must have forward(output, labels), "
                        f"backward(dloss) and reduction 'mean' or 'sum' (as "
                        f"nn.CrossEntropyLoss), got {loss_fn!r}")
    return reduction


class DataParallel:
    """One training step's loss, output and gradients, computed on a Dask cluster.

    Args:
        model: a convgrad.nn model (Sequentials of layers; BatchNorm anywhere in them).
        loss_fn: e.g. nn.CrossEntropyLoss(); 'mean' or 'sum' reduction.
        client: a distributed.Client.
        shards: how many pieces each batch is cut into (default: one per worker present
            now; fixed for the run, so that restarts do not change the arithmetic).
        timeout: seconds one step may take before it is abandoned (ClusterError).

    Calling it with (x (N, ...), labels (N,)) returns (loss, output (N, K)) and adds the
    batch's gradients into each parameter's ``.grad``. The model's structure is sent to
    the workers once, here; its parameters, buffers and train/eval modes at every call.
    """

    def __init__(self, model, loss_fn, *, client, shards=None, timeout: float = 120.0):
        self._distributed = require("distributed", "dask", "convgrad.dask.DataParallel")
        _check_model(model)
        self.reduction = _check_loss(loss_fn)
        if not isinstance(client, self._distributed.Client):
            raise TypeError(f"DataParallel: client must be a distributed.Client, got "
                            f"{type(client).__name__}")
        if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                or not 0 < timeout < math.inf):
            raise ValueError(f"DataParallel: timeout must be a positive number of seconds, "
                             f"got {timeout!r}")
        self.model, self.loss_fn, self.client, self.timeout = model, loss_fn, client, timeout
        self._shapes = [p.shape for p in model.parameters()]
        self._template = self._send((model, loss_fn))
        workers = len(client.nthreads())
        self.shards = max(workers, 1) if shards is None else shards
        if isinstance(self.shards, bool) or not isinstance(self.shards, int) or self.shards < 1:
            raise ValueError(f"DataParallel: shards must be a positive int, got {shards!r}")
        self.steps = 0

    def _send(self, value):
        """``value`` as one task's result: it leaves the client once, and any worker that
        needs it fetches it from a worker that has it. Unlike scattered data, Dask can
        recompute it (from the task) if every worker holding it dies."""
        return self.client.submit(_identity, value, pure=False)

    def _gather(self, futures, deadline, what: str):
        """The futures' results, or ClusterError (timeout, killed workers, lost cluster)."""
        distributed = self._distributed
        try:
            distributed.wait(futures, timeout=max(deadline - time.monotonic(), 0.001))
            return self.client.gather(futures)
        except TimeoutError:
            raise ClusterError(
                f"DataParallel step {self.steps + 1}: {what} took more than "
                f"{self.timeout:g} s ({len(self.client.nthreads())} workers connected); the "
                f"step was abandoned and none of it applied (raise the bound with timeout=, "
                f"or convgrad train --dask-timeout)") from None
        except distributed.KilledWorker:
            raise ClusterError(
                f"DataParallel step {self.steps + 1}: workers died while computing {what}, "
                f"also when Dask retried the task elsewhere, more often than the scheduler "
                f"allows (distributed.scheduler.allowed-failures, 3 by default); the run "
                f"stops here, none of the step applied") from None
        except (distributed.CancelledError, OSError) as error:
            raise ClusterError(
                f"DataParallel step {self.steps + 1}: the cluster lost {what} "
                f"({type(error).__name__}: {error}); none of the step applied") from None

    def close(self) -> None:
        """Release what this object holds on the cluster (the model's structure)."""
        if self._template is not None:
            self._template.release()
            self._template = None

    @quiet_arithmetic                   # the gradients' sums: inf and NaN, silently
    def __call__(self, x, labels):
        x, labels = np.asarray(x), np.asarray(labels)
        if len(x) == 0 or len(labels) != len(x):
            raise ValueError(f"DataParallel: x ({len(x)} samples) and labels ({len(labels)}) "
                             f"must be non-empty and of the same length")
        if self._template is None:
            raise ValueError("DataParallel: this object was closed; make a new one")
        params = self.model.parameters()
        if [p.shape for p in params] != self._shapes:
            raise ValueError("DataParallel: the model's parameters changed shape since the "
                             "DataParallel was made; make a new one")
        submit, deadline = self.client.submit, time.monotonic() + self.timeout
        weights_out = self._send(([p.data for p in params],
                                  [value for _, value in self.model.named_buffers()]))
        modes = [module.training for module in self.model.modules()]
        n = len(x)
        pieces = np.array_split(np.arange(n), min(self.shards, n))
        states = [submit(replica.start, self._template, weights_out, modes, x[index],
                         labels[index], len(index) / n if self.reduction == "mean" else 1.0,
                         pure=False) for index in pieces]
        layers = replica.leaves(self.model)
        paused = [layer for layer in layers if replica.is_synchronized(layer)]
        statistics, counts = [], {}
        for stage, layer in enumerate(paused + paused[::-1]):
            what = (f"the forward pass up to {layer!r}" if stage < len(paused)
                    else f"the backward pass down to {layer!r}")
            messages = self._gather([submit(replica.outbox, s, pure=False) for s in states],
                                    deadline, what)
            if stage < len(paused):
                m, mean, var = sync_batchnorm.combine_moments([body for _, body in messages],
                                                              repr(layer))
                statistics.append((layer, mean, var, m))
                counts[id(layer)] = m
                answer = (mean, var)
            else:
                sums = tuple(np.sum([body[i] for _, body in messages], axis=0)
                             for i in range(2))
                answer = (sums, counts[id(layer)])
            states = [submit(replica.advance, s, answer, pure=False) for s in states]
        finals = [submit(replica.outbox, s, pure=False) for s in states]
        parts = [submit(replica.gradients, s, pure=False) for s in states]
        while len(parts) > 1:                                    # a tree, on the workers
            parts = [submit(replica.add, *parts[i:i + 2], pure=False) if i + 1 < len(parts)
                     else parts[i] for i in range(0, len(parts), 2)]
        *messages, total = self._gather(finals + parts, deadline,
                                        "the rest of the step and its gradients")
        # Every shard finished: now, and only now, the step is applied.
        for p, grad in zip(params, total):
            p.grad += grad
        for layer, mean, var, m in statistics:
            sync_batchnorm.update_running_stats(layer, mean, var, m)
        self.steps += 1
        del states, finals, parts, weights_out          # release them on the cluster now
        loss = float(sum(share for _, share, _ in messages))
        return loss, np.concatenate([output for _, _, output in messages])
