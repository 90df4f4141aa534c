"""Forward + backward time of nn.MaxPool2d(2), nn.AvgPool2d(2) and nn.ReLU against torch.nn.

One thread (threadpoolctl for NumPy's BLAS, torch.set_num_threads(1)), process CPU time,
ours and PyTorch's alternating (interleaved pairs); median, min and max per workload.

    python benchmarks/pool_relu.py                      # the convgrad on sys.path
    python benchmarks/pool_relu.py --src OLD/src --src NEW/src   # versions, interleaved

With several --src, each round runs every version once, in turn, in a fresh process
(PYTHONPATH set to that src), so all versions see the same machine load. Not a test.
Needs PyTorch and threadpoolctl (the `bench` and `test` extras).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORKLOADS = [  # (layer, x shape); float32
    ("MaxPool2d", (64, 32, 32, 32)),
    ("MaxPool2d", (256, 64, 16, 16)),
    ("AvgPool2d", (64, 32, 32, 32)),
    ("ReLU", (64, 32, 32, 32)),
    ("ReLU", (256, 64, 16, 16)),
]


def _pairs(reps: int) -> dict:
    """{workload: [(ours seconds, torch seconds), ...]} for this process's convgrad."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from convgrad import nn

    torch.set_num_threads(1)
    results = {}
    with threadpool_limits(1):
        for name, shape in WORKLOADS:
            rng = np.random.default_rng(0)
            x = rng.standard_normal(shape).astype(np.float32)
            ours = getattr(nn, name)(2) if name != "ReLU" else nn.ReLU()
            theirs = getattr(torch.nn, name)(2) if name != "ReLU" else torch.nn.ReLU()
            dy = rng.standard_normal(ours.forward(x).shape).astype(np.float32)
            ours.backward(dy)
            tx, tdy = torch.tensor(x, requires_grad=True), torch.tensor(dy)

            def run_ours():
                ours.forward(x)
                ours.backward(dy)

            def run_torch():
                tx.grad = None
                theirs(tx).backward(tdy)

            run_torch()
            pairs = []
            for _ in range(reps):
                times = []
                for run in (run_ours, run_torch):
                    start = time.process_time()
                    run()
                    times.append(time.process_time() - start)
                pairs.append(times)
            results[f"{name} {shape}"] = pairs
    return results


def _summary(values) -> str:
    import statistics
    ms = [v * 1e3 for v in values]
    return f"{statistics.median(ms):7.2f} ({min(ms):6.2f}-{max(ms):6.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", action="append", default=[],
                        help="a src/ directory holding a convgrad version (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=5, help="pairs per round and workload")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_pairs(args.reps)))
        return
    sources = args.src or [None]
    collected = {s: {} for s in sources}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for src in sources:
            if src is None:
                result = _pairs(args.reps)
            else:
                env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
                out = subprocess.run([sys.executable, __file__, "--worker", "--reps",
                                      str(args.reps)], env=env, check=True,
                                     capture_output=True, text=True).stdout
                result = json.loads(out)
            for key, pairs in result.items():
                collected[src].setdefault(key, []).extend(pairs)
        load.append(os.getloadavg()[0])
    print(f"ms per forward+backward, median (min-max), {args.rounds} x {args.reps} pairs, "
          f"one thread, process CPU time; load average {min(load):.1f}-{max(load):.1f} on "
          f"{os.cpu_count()} CPUs")
    for src in sources:
        print(f"\n{src or 'convgrad on sys.path'}")
        print(f"  {'workload':34s} {'convgrad':>22s} {'torch':>22s} {'ratio':>6s}")
        for key, pairs in collected[src].items():
            ours, theirs = zip(*pairs)
            ratio = sorted(a / b for a, b in pairs)[len(pairs) // 2]
            print(f"  {key:34s} {_summary(ours):>22s} {_summary(theirs):>22s} {ratio:6.2f}")


if __name__ == "__main__":
    main()
