"""`convgrad demo`: the main job, a small CNN trained on scikit-learn's 8x8 digits."""
from __future__ import annotations

from .. import options


def run(args) -> int:
    from ..digits import demo
    demo(args.out, seed=args.seed)
    return 0


def register(commands) -> None:
    demo = commands.add_parser(
        "demo", help="train a small CNN on the 8x8 digits of scikit-learn (the main job)",
        description="Gradient-check the conv layer, then train a small CNN on scikit-learn's "
        "8x8 digits with a fixed seed and report test accuracy, curves, filters and "
        "predictions under --out.")
    demo.add_argument("--out", default="convgrad-demo",
                      help="output folder (default ./convgrad-demo)")
    demo.add_argument("--seed", type=options.non_negative, default=0)
    demo.set_defaults(run=run)
