"""`convgrad explain`: derive the backward pass of a small case symbolically."""
from __future__ import annotations

from .. import options


def run(args) -> int:
    from ...explain import run as explain
    return explain(case=args.case, x_shape=args.x, w_shape=args.w, stride=args.stride,
                   padding=args.padding, dilation=args.dilation, latex=args.latex,
                   png=args.png, numeric=args.numeric)


def register(commands) -> None:
    explain = commands.add_parser(
        "explain", help="derive the backward pass of a small case symbolically",
        description="Print the forward equations, the Jacobians, dx/dw/db and the "
        "convolution identities they reduce to, for one sample and one channel.")
    explain.add_argument("--case", choices=("1d", "2d", "stride2"),
                         help="a ready-made case (default 1d unless --x/--w are given)")
    options.add_geometry_options(explain, "input size, e.g. 4 or 4,4",
                                 "filter size, e.g. 2 or 2,2", groups=False)
    explain.add_argument("--latex", action="store_true", help="print LaTeX instead of text")
    explain.add_argument("--png", metavar="FILE", help="draw the case's figure to FILE")
    explain.add_argument("--numeric", action="store_true",
                         help="also show the identities on random numbers next to the "
                         "numerical gradient")
    explain.set_defaults(run=run)
