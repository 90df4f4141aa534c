"""`convgrad explain`: derive the backward pass of a small case, or write the explorer.

Its sizes are spatial sizes of one sample and one channel (--input-size 4,4), not the
full array shapes that --x and --w mean in check, bench and grade.
"""
from __future__ import annotations

import argparse

from .. import options


def run(args) -> int:
    from ...explain import run as explain
    for flag, value in (("--x", args.x_shape), ("--w", args.w_shape)):
        if value is not None:
            name = "--input-size" if flag == "--x" else "--kernel-size"
            raise ValueError(f"explain takes spatial sizes: use {name} {value} (for check, "
                             f"bench and grade {flag} is a full array shape such as 2,3,7,7)")
    return explain(case=args.case, input_size=args.input_size, kernel_size=args.kernel_size,
                   stride=args.stride, padding=args.padding, dilation=args.dilation,
                   latex=args.latex, latex_document=args.latex_document, png=args.png,
                   numeric=args.numeric, html=args.html, transposed=args.transposed,
                   output_padding=args.output_padding, max_entries=args.max_entries,
                   max_terms=args.max_terms)


def register(commands) -> None:
    from ...explain.command import LIMIT_ENTRIES, LIMIT_TERMS, MAX_ENTRIES, MAX_TERMS
    explain = commands.add_parser(
        "explain", help="derive the backward pass of a small case, or explore it in a browser",
        description="Print the forward equations, the Jacobians, dx/dw/db and the "
        "convolution identities they reduce to (docs/math.md), for one sample and one "
        "channel; or, with --html, write an interactive page that shows every cell's "
        "dependencies and formula.")
    explain.add_argument("--case", choices=("1d", "2d", "stride2"),
                         help="a ready-made case, which sets every size and setting "
                         "(default 1d when no sizes are given)")
    explain.add_argument("--input-size", type=options.ints, metavar="L|H,W",
                         help="the input's spatial size, e.g. 4 or 4,4 (one sample, one channel)")
    explain.add_argument("--kernel-size", type=options.ints, metavar="K|KH,KW",
                         help="the filter's spatial size, e.g. 2 or 2,2")
    explain.add_argument("--stride", type=options.per_axis, default=None,
                         help="an int or one per axis (default 1)")
    explain.add_argument("--padding", type=options.padding, default=None,
                         help="int, per axis (1,2), pairs (1:2,0:1), 'same' or 'valid' "
                         "(default 0)")
    explain.add_argument("--dilation", type=options.per_axis, default=None,
                         help="an int or one per axis (default 1)")
    explain.add_argument("--latex", action="store_true",
                         help="print LaTeX (\\[ ... \\] blocks to paste) instead of text")
    explain.add_argument("--latex-document", action="store_true",
                         help="print a complete LaTeX document that compiles on its own")
    explain.add_argument("--png", metavar="FILE.png", type=options.png_file,
                         help="draw the case's figure to FILE.png")
    explain.add_argument("--numeric", action="store_true",
                         help="also show the identities on random numbers next to the "
                         "numerical gradient (with --html: open the page in numbers mode)")
    explain.add_argument("--html", metavar="FILE.html", type=options.html_file,
                         help="write the interactive explorer to FILE (one self-contained "
                         "page, no network) instead of printing")
    explain.add_argument("--transposed", action="store_true",
                         help="with --html: start with a transposed convolution")
    explain.add_argument("--output-padding", type=options.per_axis, default=None,
                         help="with --html --transposed: output_padding, an int or one per axis")
    explain.add_argument("--max-entries", type=options.int_between(1, LIMIT_ENTRIES),
                         default=MAX_ENTRIES,
                         help=f"refuse cases whose x, w or y has more entries (default "
                         f"{MAX_ENTRIES}: readable; at most {LIMIT_ENTRIES})")
    explain.add_argument("--max-terms", type=options.int_between(1, LIMIT_TERMS),
                         default=MAX_TERMS,
                         help=f"refuse cases with more products w*x to derive (default "
                         f"{MAX_TERMS}: about 4 s; at most {LIMIT_TERMS}, about a minute)")
    # --x / --w mean full array shapes elsewhere: here they are refused with a pointer
    explain.add_argument("--x", dest="x_shape", metavar="SHAPE", help=argparse.SUPPRESS)
    explain.add_argument("--w", dest="w_shape", metavar="SHAPE", help=argparse.SUPPRESS)
    explain.set_defaults(run=run)
