"""`convgrad train`: the demo's training loop, with options."""
from __future__ import annotations

from .. import options


def run(args) -> int:
    from ..digits import train
    train(args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
          optimizer=args.optimizer, seed=args.seed, dtype=args.dtype)
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
    train.set_defaults(run=run)
