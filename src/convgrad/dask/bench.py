"""``python -m convgrad.dask.bench``: what Dask costs and gains on this machine.

Prints a Markdown report (the figures in BENCHMARKS.md come from it):

1. overhead: conv2d forward and backward of one batch, NumPy against Dask on a local
   cluster of 1 worker (batch cut into 4 chunks), and scaling to 2 workers;
2. one large image cut into spatial chunks (the halo forward), 1 and 2 workers;
3. data-parallel training steps of the digits network (apps/digits.py: 21,482
   parameters), one process against ``DataParallel`` on local:1 and local:2;
4. the bytes one training step moves, from the arrays' sizes.

The runs are interleaved: each of ``--repeat`` rounds (after one warm-up round) times
every variant once, both clusters standing by, so that the drifting speed of a shared
machine slows all variants alike; the report gives the best round (the least disturbed
by other work) and the median. Workers are local
processes with one thread each; NumPy's BLAS keeps its own threads in every process (no
setting is changed), so on a machine with few cores one process may already use them
all. The whole run takes about 1 to 3 minutes (``--repeat 3``: about half).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
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


def _interleaved(runs: dict, repeat: int) -> dict:
    """{name: [seconds per round]}: one warm-up round, then ``repeat`` rounds, each timing
    every run once in turn, so that a machine whose speed drifts slows all of them alike."""
    times = {name: [] for name in runs}
    for round_ in range(repeat + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


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
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (7)")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 50:
        parser.error(f"--repeat must be 1 to 50, got {args.repeat}")
    da = require("dask.array", "dask", "python -m convgrad.dask.bench")
    distributed = require("distributed", "dask", "python -m convgrad.dask.bench")

    from . import DataParallel
    from . import functional as cdask

    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((64, 16, 32, 32)).astype(f32)               # 4 MiB
    w = rng.standard_normal((32, 16, 3, 3)).astype(f32)
    b = np.zeros(32, f32)
    dy = rng.standard_normal((64, 32, 32, 32)).astype(f32)
    image = rng.standard_normal((1, 3, 1536, 1536)).astype(f32)         # 27 MiB
    w_image = rng.standard_normal((8, 3, 5, 5)).astype(f32)
    loss_fn = nn.CrossEntropyLoss()
    batches = {size: (rng.standard_normal((size, 1, 8, 8)).astype(f32),
                      rng.integers(0, 10, size)) for size in (32, 256)}

    def local_step(model, xb, labels):
        def run():
            model.zero_grad()
            loss_fn.forward(model.forward(xb), labels)
            model.backward(loss_fn.backward())
        return run

    runs = {"conv numpy": lambda: (functional.conv2d(x, w, padding=1),
                                   functional.conv2d_backward(dy, x, w, b, padding=1)),
            "image numpy": lambda: functional.conv2d(image, w_image, padding=2, stride=2)}
    for size, (xb, labels) in batches.items():
        runs[f"step{size} numpy"] = local_step(digits_network(), xb, labels)
    print("starting local:1 and local:2 ...", file=sys.stderr, flush=True)
    with contextlib.ExitStack() as stack:
        for workers in (1, 2):
            client = stack.enter_context(_cluster(workers))
            runs[f"round trip {workers}"] = functools.partial(
                lambda client: client.submit(int, 0, pure=False).result(), client)
            runs[f"conv {workers}"] = _conv_workload(client, x, w, dy, (16, 16, 32, 32),
                                                     cdask, da, distributed)
            chunked = _on_workers(client, image.shape, (1, 3, 512, 512), da, distributed)
            runs[f"image {workers}"] = functools.partial(
                lambda client, chunked: distributed.wait(client.compute(
                    cdask.conv2d(chunked, w_image, padding=2, stride=2))), client, chunked)
            for size, (xb, labels) in batches.items():
                model = digits_network()
                step = DataParallel(model, loss_fn, client=client)
                stack.callback(step.close)
                runs[f"step{size} {workers}"] = functools.partial(
                    lambda model, step, xb, labels: (model.zero_grad(), step(xb, labels)),
                    model, step, xb, labels)
        print(f"timing {len(runs)} runs x {args.repeat + 1} rounds ...", file=sys.stderr,
              flush=True)
        load_before = os.getloadavg()[0]
        times = _interleaved(runs, args.repeat)
        load = (load_before, os.getloadavg()[0])
    _report(times, step_bytes(digits_network(), 32, 2), args.repeat, load)
    return 0


def _report(times, bytes_, repeat, load):
    def ms(seconds):
        return f"{seconds * 1e3:.{0 if seconds >= 0.01 else 1}f}"

    def cell(key):
        return f"{ms(min(times[key]))} ({ms(statistics.median(times[key]))})"

    def ratio(key, base):
        return min(times[key]) / min(times[base])

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"NumPy {np.__version__}; load average {load[0]:.1f} before, {load[1]:.1f} after "
          f"(a shared machine: other work competes for its cores). Milliseconds, best of "
          f"{repeat} interleaved rounds (median in parentheses); ratios of the bests.\n")
    print("| work | NumPy | Dask, 1 worker | Dask, 2 workers | 2 workers vs 1 |")
    print("|---|---|---|---|---|")
    rows = [("conv2d fwd + bwd, x (64,16,32,32) f32, 4 batch chunks", "conv"),
            ("conv2d fwd, one image (3,1536,1536), 5x5 s2, 3x3 chunks", "image"),
            ("digits step, batch 32", "step32"), ("digits step, batch 256", "step256")]
    for label, key in rows:
        print(f"| {label} | {cell(key + ' numpy')} | {cell(key + ' 1')}, "
              f"{ratio(key + ' 1', key + ' numpy'):.2f}x NumPy | {cell(key + ' 2')}, "
              f"{ratio(key + ' 2', key + ' numpy'):.2f}x NumPy | "
              f"{ratio(key + ' 1', key + ' 2'):.2f}x as fast |")
    print(f"\nOne Dask round trip (submit a no-op task, get its result): "
          f"{cell('round trip 1')} ms with 1 worker, {cell('round trip 2')} ms with 2.")
    print("\nBytes per DataParallel step of the digits network (float32, batch 32, 2 shards):")
    for name, value in bytes_.items():
        print(f"- {name.replace('_', ' ')}: {value:,} B")


if __name__ == "__main__":
    sys.exit(main())
