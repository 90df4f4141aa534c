"""`convgrad demo`: the main job, a small CNN trained on scikit-learn's 8x8 digits."""
from __future__ import annotations

from .. import options
from .train import MAX_SEED, epochs_option


def run(args) -> int:
    from ..digits_demo import demo
    demo(args.out, seed=args.seed, epochs=args.epochs, progress=None if args.quiet else True)
    return 0


def register(commands) -> None:
    demo = commands.add_parser(
        "demo", help="gradient-check the conv layer, then train a small CNN on 8x8 digits",
        description="The main job. Gradient-check the conv layer against central "
        "differences, then train a small CNN (two conv - batch norm - ReLU - max pool "
        "blocks, then a linear layer) on scikit-learn's 8x8 digits (1797 images, shipped "
        "with scikit-learn: no download; 25% held out for testing), with a fixed seed. "
        "Prints the gradient errors and the test accuracy, and writes metrics.json, "
        "model.npz, curves.png, filters.png and predictions.png to --out.\n\n"
        "Needs the demo extra: pip install 'convgrad[demo]'. The output folder and the "
        "extras are checked before any work. `convgrad train` runs the same training "
        "with more options; `convgrad predict` uses the saved model.")
    demo.add_argument("--out", default="convgrad-demo", type=options.output_folder,
                      metavar="FOLDER", help="output folder, created if missing")
    demo.add_argument("--epochs", type=epochs_option, default=12,
                      help="passes over the 1347 training digits")
    demo.add_argument("--seed", type=options.int_between(0, MAX_SEED), default=0,
                      help="fixes the split, the initial weights and the batch order")
    demo.add_argument("--quiet", action="store_true",
                      help="no per-epoch progress (the summary is still printed)")
    demo.set_defaults(run=run)
