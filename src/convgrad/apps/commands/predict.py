"""`convgrad predict`: classify test digits, or your own image, with a saved model."""
from __future__ import annotations

from .. import options


def run(args) -> int:
    from ..digits import predict
    predict(args.model, image=args.image, count=args.count, seed=args.seed)
    return 0


def register(commands) -> None:
    predict = commands.add_parser(
        "predict", help="classify digits with a saved model",
        description="Classify test-split digits, or an image file (grayscale, resized to 8x8).")
    predict.add_argument("--model", required=True, help="a model.npz written by demo or train")
    predict.add_argument("--image", help="an image file of one digit (PNG, JPEG, ...)")
    predict.add_argument("--count", type=options.positive, default=10,
                         help="test digits to show")
    predict.add_argument("--seed", type=options.non_negative, default=0)
    predict.set_defaults(run=run)
