"""`convgrad check`: gradient-check conv and transposed conv over a grid, or your geometry."""
from __future__ import annotations

import argparse

from .. import options

# the options that describe your own geometry: refused without --x/--w (the grid has its own)
_OWN = ("stride", "padding", "dilation", "groups", "output_padding")
_OWN_FLAGS = ("transposed", "no_bias")


def tolerance(text: str) -> float:
    """A finite number >= 0 (0: only exact agreement passes)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number such as 1e-6 (or 0 "
                                         f"for exact agreement), got {text!r}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _described(args) -> str:
    parts = [f"x {','.join(map(str, args.x))}", f"w {','.join(map(str, args.w))}"]
    for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1),
                          ("output_padding", 0)):
        value = getattr(args, name)
        if value is not None and value != default:
            parts.append(f"{name.replace('_', ' ')} {value}")
    if args.transposed:
        parts.append("transposed")
    if args.no_bias:
        parts.append("no bias")
    return ", ".join(parts)


def run(args) -> int:
    from ..gradient_check import CASES, Case, run_check
    if options.own_shapes(args):
        if args.output_padding is not None and not args.transposed:
            raise ValueError("--output-padding applies to a transposed convolution: add "
                             "--transposed")
        keywords = dict(stride=args.stride or 1,
                        padding=0 if args.padding is None else args.padding,
                        dilation=args.dilation or 1, groups=args.groups or 1)
        if args.transposed:
            keywords["output_padding"] = args.output_padding or 0
        cases = [Case(_described(args), args.x, args.w, keywords,
                      transposed=args.transposed, bias=not args.no_bias)]
    else:
        given = [_option(n) for n in _OWN if getattr(args, n) is not None]
        given += [_option(n) for n in _OWN_FLAGS if getattr(args, n)]
        if given:
            raise ValueError(f"{given[0]} applies to your own geometry: give --x and --w "
                             f"too (the built-in grid sets its own)")
        cases = CASES
    algorithms = ("fast", "reference") if args.algorithm == "both" else (args.algorithm,)
    return 0 if run_check(cases, algorithms, tolerance=args.tolerance, mode=args.mode,
                          budget=args.budget) else 1


def register(commands) -> None:
    check = commands.add_parser(
        "check", help="gradient-check conv and transposed conv across a grid of geometries",
        description="Compare the analytic gradients dx, dw, db with central differences "
        "(float64, random upstream gradient) over a grid of geometries, or one you give. "
        "Each error is max |analytic - numeric| / the largest entry; a case passes when "
        "each printed error is at most --tolerance.")
    check.add_argument("--algorithm", choices=("fast", "reference", "both"), default="both",
                       help="engine(s) to check (default: both)")
    options.add_geometry_options(check, "input shape, e.g. 2,3,7,7 (N,C,H,W)",
                                 "weight shape, e.g. 4,3,3,3 (F,C/groups,HH,WW)")
    check.add_argument("--transposed", action="store_true",
                       help="check conv_transpose (w is (C_in, C_out/groups, ...))")
    check.add_argument("--output-padding", type=options.per_axis,
                       help="with --transposed: extra output rows/columns, each below the "
                       "stride or the dilation (e.g. 1 or 1,0; default 0)")
    check.add_argument("--no-bias", action="store_true",
                       help="check a convolution without a bias b (no db)")
    check.add_argument("--tolerance", type=tolerance, default=1e-6,
                       help="the largest error that passes (default 1e-6; 0: exact)")
    check.add_argument("--mode", choices=("auto", "elementwise", "directional"),
                       default="auto",
                       help="central differences for every entry, or along 4 random "
                       "directions per input (auto: elementwise up to 4096 entries)")
    check.add_argument("--budget", type=seconds, default=300.0, metavar="SECONDS",
                       help="refuse work estimated to take longer (default 300)")
    # None marks 'not given', so that an option that does not apply can be refused
    check.set_defaults(run=run, stride=None, padding=None, dilation=None, groups=None)
