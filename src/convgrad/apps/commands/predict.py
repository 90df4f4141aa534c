"""`convgrad predict`: classify test digits, or your own image, with a saved model."""
from __future__ import annotations

from .. import options


def run(args) -> int:
    from ..digits_predict import predict
    predict(args.model, image=args.image, count=args.count, seed=args.seed, show=args.show)
    return 0


def register(commands) -> None:
    predict = commands.add_parser(
        "predict", help="classify test digits, or a picture of a digit, with a saved model",
        description="Classify digits with a model.npz written by `convgrad demo` or "
        "`convgrad train`.\n\n"
        "Without --image: --count digits drawn (with --seed) from the model's own "
        "held-out test split, each true label beside the prediction.\n\n"
        "With --image: a picture of one digit (PNG, JPEG, ...; any size, colours or "
        "background; the digit should be the only ink in it), prepared the way the "
        "training digits were made: grayscale, inverted if the background is light, "
        "cropped to the ink, padded to a square, resized to 8x8 by area averaging and "
        "scaled to 0-16. Prints the 3 most likely classes and warns when the model is "
        "unsure; --show writes the 8x8 image the network saw.")
    predict.add_argument("--model", required=True, type=options.input_file,
                         metavar="MODEL.npz", help="a model.npz written by demo or train")
    predict.add_argument("--image", type=options.input_file, metavar="FILE",
                         help="a picture of one digit (PNG, JPEG, ...)")
    predict.add_argument("--show", type=options.png_file, metavar="FILE.png",
                         help="with --image: write the 8x8 image the network saw as a PNG")
    predict.add_argument("--count", type=options.positive, default=None,
                         help="test digits to classify, without --image (default: 10)")
    predict.add_argument("--seed", type=options.non_negative, default=0,
                         help="which test digits are drawn")
    predict.set_defaults(run=run)
