"""`convgrad train`: the demo's training loop, with options."""
from __future__ import annotations

import argparse
import re

from .. import options
from ..digits import MAX_EPOCHS
from ..digits_data import MAX_SEED

epochs_option = options.int_between(
    1, MAX_EPOCHS, " (the command line's bound, about 6 minutes; longer runs: call "
    "convgrad.apps.digits.train from Python)")

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
                    optimizer=args.optimizer, seed=args.seed, dtype=args.dtype,
                    progress=None if args.quiet else True)
    if args.dask is None:
        if args.dask_timeout is not None:
            raise ValueError("--dask-timeout applies only with --dask")
        train(args.out, **settings)
    else:
        from ..digits_data import require_extras
        from ...dask.training import train_on_dask
        require_extras("convgrad train", figures=True)   # before a cluster starts
        train_on_dask(args.dask, train, args.out, timeout=args.dask_timeout, **settings)
    return 0


def register(commands) -> None:
    train = commands.add_parser(
        "train", help="train the digits CNN with your choice of epochs, optimizer, dtype...",
        description="Train the demo's CNN on scikit-learn's 8x8 digits (75% of the 1797 "
        "images; the other 25% measure the test accuracy), without the demo's gradient "
        "check, and write model.npz, metrics.json and figures to --out. The learning rate "
        "follows a cosine decay to 0 over the run. Progress: a bar per epoch on a terminal, "
        "else a few plain lines.\n\n"
        "Needs the demo extra: pip install 'convgrad[demo]'. The options, the output folder "
        "and the extras are checked before any work.")
    train.add_argument("--out", default="convgrad-train", type=options.output_folder,
                       metavar="FOLDER", help="output folder, created if missing")
    train.add_argument("--epochs", type=epochs_option, default=12,
                       help=f"passes over the training digits (at most {MAX_EPOCHS})")
    train.add_argument("--batch-size", type=options.positive, default=32,
                       help="digits per gradient step")
    train.add_argument("--lr", type=options.positive_number, default=None,
                       help="initial learning rate (default: 0.003 for adam, 0.05 for sgd)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="adam",
                       help="adam, or sgd with momentum 0.9")
    train.add_argument("--seed", type=options.int_between(0, MAX_SEED), default=0,
                       help="fixes the split, the initial weights and the batch order")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="of the data and the parameters")
    train.add_argument("--quiet", action="store_true",
                       help="no per-epoch progress (the summary is still printed)")
    train.add_argument("--dask", type=_dask_address, metavar="local:N|tcp://HOST:PORT",
                       help=_DASK_HELP)
    train.add_argument("--dask-timeout", type=options.positive, metavar="SECONDS",
                       help="with --dask: stop the run when connecting (default 30) or "
                       "one step (default 120) takes longer")
    train.set_defaults(run=run)
