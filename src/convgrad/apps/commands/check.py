"""`convgrad check`: gradient-check conv and transposed conv over a grid, or your geometry."""
from __future__ import annotations

from .. import options


def run(args) -> int:
    from ..gradient_check import CASES, Case, run_check
    if args.output_padding != 0 and not args.transposed:
        raise ValueError("--output-padding applies to a transposed convolution: add "
                         "--transposed")
    if options.own_shapes(args):
        keywords = dict(stride=args.stride, padding=args.padding, dilation=args.dilation,
                        groups=args.groups)
        if args.transposed:
            keywords["output_padding"] = args.output_padding
        cases = [Case(f"x {args.x}, w {args.w}", args.x, args.w, keywords,
                      transposed=args.transposed, bias=not args.no_bias)]
    else:
        cases = CASES
    algorithms = ("fast", "reference") if args.algorithm == "both" else (args.algorithm,)
    return 0 if run_check(cases, algorithms, tolerance=args.tolerance) else 1


def register(commands) -> None:
    check = commands.add_parser(
        "check", help="gradient-check conv and transposed conv across a grid of geometries",
        description="Compare the analytic gradients dx, dw, db with central differences "
        "(float64, random upstream gradient) over a grid of geometries, or one you give.")
    check.add_argument("--algorithm", choices=("fast", "reference", "both"), default="both",
                       help="engine(s) to check (default: both)")
    options.add_geometry_options(check, "input shape, e.g. 2,3,7,7 (N,C,H,W)",
                                 "weight shape, e.g. 4,3,3,3 (F,C/groups,HH,WW)")
    check.add_argument("--transposed", action="store_true",
                       help="check conv_transpose (w is (C_in, C_out/groups, ...))")
    check.add_argument("--output-padding", type=options.per_axis, default=0)
    check.add_argument("--no-bias", action="store_true")
    check.add_argument("--tolerance", type=options.tolerance, default=1e-6,
                       help="relative tolerance per element (default 1e-6)")
    check.set_defaults(run=run)
