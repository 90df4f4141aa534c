"""`convgrad bench`: time forward + backward against PyTorch CPU, side by side."""
from __future__ import annotations

import sys

from .. import options


def run(args) -> int:
    from .. import bench
    if options.own_shapes(args):
        workloads = [bench.Workload("custom", args.x, args.w, args.stride, args.padding,
                                    args.groups, note="--x/--w")]
    elif args.workloads == "all":
        workloads = bench.WORKLOADS + bench.SMALL
    elif args.workloads == "small":
        workloads = bench.SMALL
    else:
        workloads = [w.strip() for w in args.workloads.split(",")]
        unknown = [w for w in workloads if w not in {x.name for x in bench.WORKLOADS + bench.SMALL}]
        if unknown:
            print(f"convgrad bench: unknown workload {unknown[0]!r}; choose from W2-W7, S1-S3, "
                  f"'small' or 'all'", file=sys.stderr)
            return 2
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    engines = ("fast", "reference") if args.engine == "both" else (args.engine,)
    results, env = bench.run(workloads, dtypes, engines, repeats=args.repeats,
                             use_torch=not args.no_torch, memory=args.memory,
                             progress=not args.quiet)
    if args.json == "-":
        print(bench.to_json(results, env))
    else:
        print(bench.format_table(results, env))
        if args.json:
            with open(args.json, "w") as handle:
                handle.write(bench.to_json(results, env))
            print(f"JSON written to {args.json}")
    if args.plot:
        bench.plot(results, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def register(commands) -> None:
    bench = commands.add_parser(
        "bench", help="time forward + backward against PyTorch CPU, side by side",
        description="Time conv2d forward + backward (y, dx, dw, db) on the issue's workloads "
        "or your shapes, interleaved with PyTorch CPU autograd in this process; print time, "
        "GFLOP/s, fraction of NumPy's GEMM peak, the ratio to PyTorch and, with --memory, "
        "peak memory.")
    bench.add_argument("--workloads", default="W2,W3,W4,W5,W6,W7",
                       help="comma-separated names (W2-W7, S1-S3), 'small' or 'all'")
    options.add_geometry_options(bench, "your own input shape, e.g. 8,16,32,32",
                                 "your own weight shape, e.g. 32,16,3,3", dilation=False)
    bench.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    bench.add_argument("--engine", choices=("fast", "reference", "both"), default="fast",
                       help="the reference engine runs only on small workloads")
    bench.add_argument("--repeats", type=options.positive, default=5)
    bench.add_argument("--memory", action="store_true",
                       help="also measure peak memory (fresh subprocesses; slower)")
    bench.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    bench.add_argument("--json", metavar="FILE",
                       type=lambda p: p if p == "-" else options.output_file(p),
                       help="write results as JSON ('-': stdout only)")
    bench.add_argument("--plot", metavar="FILE.png", type=options.output_file,
                       help="draw a bar chart of the ratios")
    bench.add_argument("--quiet", action="store_true", help="no progress display")
    bench.set_defaults(run=run)
