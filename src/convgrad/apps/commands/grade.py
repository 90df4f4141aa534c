"""`convgrad grade FILE.py`: grade your conv layer; find, shrink and name the mistake."""
from __future__ import annotations

import os
import sys

from .. import options
from .check import seconds


def run(args) -> int:
    from ...grade import grade
    from ..progress import Progress
    if not os.path.isfile(args.file):
        raise ValueError(f"{args.file} is not a file; give the .py file that defines your "
                         f"layer, e.g. convgrad grade layers.py")
    bar = None

    def progress(event, *details):
        nonlocal bar
        if event == "estimate":
            text, estimated = details
            print(f"grade: {text}", file=sys.stderr)
            bar = Progress(1.0, "grade", sys.stderr, enabled=None if estimated > 2 else False)
        elif event == "case" and bar is not None:
            done, total = details
            bar.advance(1.0 / total)

    try:
        report = grade(forward=args.forward, backward=args.backward, api=args.api,
                       file=args.file, timeout=args.timeout, budget=args.budget,
                       progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if args.json == "-":
        print(report.json())
    else:
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(report.format(color=colour))
        if args.json:
            with open(args.json, "w") as handle:
                handle.write(report.json() + "\n")
    return 0 if report.all_passed else 1


def register(commands) -> None:
    parser = commands.add_parser(
        "grade", help="grade your conv layer: find, shrink and name the mistake",
        description="Import FILE.py by its path, run its conv forward and/or backward over "
        "a battery of geometries (float64, random data) in a separate process with a time "
        "limit per call, compare with convgrad and with central differences of your own "
        "forward, shrink each failure to the smallest geometry and name known mistakes. "
        "Exit 0 when every geometry passes, 1 when any fails, 2 on usage errors.")
    parser.add_argument("file", metavar="FILE.py", help="the Python file with your layer")
    parser.add_argument("--forward", metavar="NAME",
                        help="the forward to grade (default: conv_forward_naive, else "
                        "conv_forward_fast; 'forward' with --api functional)")
    parser.add_argument("--backward", metavar="NAME",
                        help="the backward to grade (naming only one grades only that one)")
    parser.add_argument("--api", choices=("cs231n", "functional"), default="cs231n",
                        help="cs231n: forward(x, w, b, conv_param) -> (out, cache), "
                        "backward(dout, cache); functional: forward(x, w, b, stride, pad), "
                        "backward(dy, x, w, b, stride, pad)")
    parser.add_argument("--json", metavar="OUT",
                        type=lambda p: p if p == "-" else options.output_file(p),
                        help="also write the report as JSON ('-': JSON on stdout only)")
    parser.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="time allowed per call of your code (default 10)")
    parser.add_argument("--budget", type=seconds, default=300.0, metavar="SECONDS",
                        help="refuse a grade estimated to take longer (default 300)")
    parser.set_defaults(run=run)
