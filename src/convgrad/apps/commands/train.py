"""`convgrad train`: the demo's training loop, with options."""
from __future__ import annotations

import argparse
import re

from .. import options

_DASK_HELP = ("compute each step's gradients on a Dask cluster, one shard of the batch per "
              "worker: local:N (N worker processes here) or tcp://HOST:PORT (a running "
              "scheduler); needs the dask extra")


def _dask_address(text: str) -> str:
    """local:N (1 <= N <= 64) or tcp://HOST:PORT, checked before anything starts."""
    local = re.fullmatch(r"local:(\d+)", text)
    if (local and 1 <= int(local.group(1)) <= 64) or re.fullmatch(r"tcp://[^\s:/]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"expected local:N (N from 1 to 64 worker processes "
                                     f"on this machine) or tcp://HOST:PORT, got {text!r}")


def run(args) -> int:
    from ..digits import train
    settings = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    optimizer=args.optimizer, seed=args.seed, dtype=args.dtype)
    if args.dask is None:
        if args.dask_timeout is not None:
            raise ValueError("--dask-timeout applies only with --dask")
        train(args.out, **settings)
    else:
        from ...dask.training import train_on_dask
        train_on_dask(args.dask, train, args.out, timeout=args.dask_timeout, **settings)
    return 0


def register(commands) -> None:
    train = commands.add_parser("train", help="the demo's training loop, with options")
    train.add_argument("--out", default="convgrad-train", help="output folder")
    train.add_argument("--epochs", type=options.positive, default=12)
    train.add_argument("--batch-size", type=options.positive, default=32)
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: 0.05 for sgd, 0.003 for adam)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="adam",
                       help="adam, or sgd with momentum 0.9 (the learning rate follows a "
                       "cosine decay to 0 over the run)")
    train.add_argument("--seed", type=options.non_negative, default=0)
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.add_argument("--dask", type=_dask_address, metavar="local:N|tcp://HOST:PORT",
                       help=_DASK_HELP)
    train.add_argument("--dask-timeout", type=options.positive, metavar="SECONDS",
                       help="with --dask: stop the run when connecting (default 30) or "
                       "one step (default 120) takes longer")
    train.set_defaults(run=run)
