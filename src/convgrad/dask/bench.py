"""``python -m convgrad.dask.bench``: what Dask costs and gains on this machine.

Prints a Markdown report (the figures in BENCHMARKS.md come from it):

1. overhead: conv2d forward and backward of one batch, NumPy against Dask on a local
   cluster of 1 worker (batch cut into 4 chunks), and scaling to 2 workers;
2. one large image cut into spatial chunks (the halo forward), 1 and 2 workers;
3. data-parallel training steps of the digits network (apps/digits.py: 21,482
   parameters), one process against ``DataParallel`` on local:1 and local:2;
4. the bytes one training step moves, from the arrays' sizes.

Each figure is the median of ``--repeat`` runs after one warm-up run. Workers are local
processes with one thread each; NumPy's BLAS keeps its own threads in every process (no
setting is changed), so on a machine with few cores one process may already use them
all. The whole run takes about 1 to 3 minutes (``--repeat 3``: about half).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import statistics
import sys
import time

import numpy as np

from .. import functional, nn
from .._optional import require

__all__ = ["main"]


def _median_seconds(run, repeat: int) -> float:
    run()                                                       # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def _cluster(workers: int):
    distributed = require("distributed", "dask", "python -m convgrad.dask.bench")
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                       processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def digits_network(dtype=np.float32) -> nn.Sequential:
    """The digits network of apps/digits.py (built here: this package does not import the
    apps): conv 3x3 'same' - BatchNorm - ReLU - max pool 2, twice (32, 64), Linear."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding="same", bias=False, dtype=dtype, rng=0),
        nn.BatchNorm2d(32, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding="same", bias=False, dtype=dtype, rng=1),
        nn.BatchNorm2d(64, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 10, dtype=dtype, rng=2))


def step_bytes(model, batch: int, shards: int, image_values: int = 64) -> dict:
    """Payload bytes of one DataParallel step (arrays only, not the protocol's framing)."""
    params = sum(p.data.nbytes for p in model.parameters())
    buffers = sum(value.nbytes for _, value in model.named_buffers())
    channels = [layer.num_features for layer in model.modules()
                if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))]
    # per BatchNorm and shard: (count, mean, squares) up and (mean, var) down forward;
    # (sum dxhat, sum dxhat*xhat) up and the same with the count down backward: float64
    sync = sum(8 + 16 * c + 16 * c + 16 * c + 16 * c + 8 for c in channels) * shards
    itemsize = model.parameters()[0].data.itemsize
    data = batch * (image_values * itemsize + 8) + batch * 10 * itemsize   # x, labels, logits
    return dict(parameters_out=params, buffers_out=buffers, gradient_in=params,
                batchnorm_sync=sync, batch_data=data)


def _on_workers(client, shape, chunks, da, distributed):
    """Random float32 data made on the workers, as data loaded there would be."""
    a = client.persist(da.random.default_rng(1).standard_normal(shape, chunks=chunks)
                       .astype(np.float32))
    distributed.wait(a)
    return a


def _conv_workload(client, x, w, dy, chunks, cdask, da, distributed):
    xs = _on_workers(client, x.shape, chunks, da, distributed)
    dys = _on_workers(client, dy.shape, (chunks[0],) + dy.shape[1:], da, distributed)

    def run():
        y = cdask.conv2d(xs, w, padding=1)
        dx, dw, db = cdask.conv2d_backward(dys, xs, w, np.zeros(w.shape[0], w.dtype),
                                           padding=1)
        distributed.wait(client.compute([y, dx, dw, db]))     # results stay on the workers
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convgrad.dask.bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (5)")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 50:
        parser.error(f"--repeat must be 1 to 50, got {args.repeat}")
    da = require("dask.array", "dask", "python -m convgrad.dask.bench")
    distributed = require("distributed", "dask", "python -m convgrad.dask.bench")
    import dask

    from . import DataParallel
    from . import functional as cdask

    def note(text):
        print(text, file=sys.stderr, flush=True)

    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((64, 16, 32, 32)).astype(f32)               # 4 MiB
    w = rng.standard_normal((32, 16, 3, 3)).astype(f32)
    dy = rng.standard_normal((64, 32, 32, 32)).astype(f32)
    image = rng.standard_normal((1, 3, 1536, 1536)).astype(f32)         # 27 MiB
    w_image = rng.standard_normal((8, 3, 5, 5)).astype(f32)
    batches = {32: None, 256: None}
    for size in batches:
        batches[size] = (rng.standard_normal((size, 1, 8, 8)).astype(f32),
                         rng.integers(0, 10, size))
    results = {}

    note("NumPy (one process) ...")
    b = np.zeros(32, f32)
    results["conv numpy"] = _median_seconds(
        lambda: (functional.conv2d(x, w, padding=1),
                 functional.conv2d_backward(dy, x, w, b, padding=1)), args.repeat)
    results["image numpy"] = _median_seconds(
        lambda: functional.conv2d(image, w_image, padding=2, stride=2), args.repeat)
    loss_fn = nn.CrossEntropyLoss()
    for size, (xb, labels) in batches.items():
        model = digits_network()

        def local_step():
            model.zero_grad()
            loss_fn.forward(model.forward(xb), labels)
            model.backward(loss_fn.backward())
        results[f"step{size} numpy"] = _median_seconds(local_step, args.repeat)
    for workers in (1, 2):
        note(f"Dask, local:{workers} ...")
        with _cluster(workers) as client, dask.config.set(scheduler=client):
            results[f"conv {workers}"] = _median_seconds(
                _conv_workload(client, x, w, dy, (16, 16, 32, 32), cdask, da, distributed),
                args.repeat)
            chunked = _on_workers(client, image.shape, (1, 3, 512, 512), da, distributed)
            results[f"image {workers}"] = _median_seconds(
                lambda: distributed.wait(client.compute(
                    cdask.conv2d(chunked, w_image, padding=2, stride=2))), args.repeat)
            for size, (xb, labels) in batches.items():
                model = digits_network()
                step = DataParallel(model, loss_fn, client=client)
                results[f"step{size} {workers}"] = _median_seconds(
                    lambda: (model.zero_grad(), step(xb, labels)), args.repeat)
                step.close()
    _report(results, step_bytes(digits_network(), 32, 2), args.repeat)
    return 0


def _report(results, bytes_, repeat):
    def ms(key):
        return f"{results[key] * 1e3:.0f} ms"

    def ratio(key, base):
        return f"{results[key] / results[base]:.2f}x"

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"NumPy {np.__version__}; median of {repeat} runs.\n")
    print("| work | NumPy | Dask 1 worker | Dask 2 workers | 1 -> 2 workers |")
    print("|---|---|---|---|---|")
    rows = [("conv2d fwd + bwd, x (64,16,32,32) f32, 4 batch chunks", "conv"),
            ("conv2d fwd, one image (3,1536,1536), 5x5 s2, 3x3 chunks", "image"),
            ("digits step, batch 32", "step32"), ("digits step, batch 256", "step256")]
    for label, key in rows:
        print(f"| {label} | {ms(key + ' numpy')} | {ms(key + ' 1')} "
              f"({ratio(key + ' 1', key + ' numpy')}) | {ms(key + ' 2')} "
              f"({ratio(key + ' 2', key + ' numpy')}) | "
              f"{results[key + ' 1'] / results[key + ' 2']:.2f}x faster |")
    print("\nBytes per DataParallel step of the digits network (float32, batch 32, 2 shards):")
    for name, value in bytes_.items():
        print(f"- {name.replace('_', ' ')}: {value:,} B")


if __name__ == "__main__":
    sys.exit(main())
