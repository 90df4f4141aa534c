"""The command line: ``convgrad check | demo | train | predict | bench | explain``.

Each subcommand parses its options here and calls the module that does the work.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as "
                                         f"2,3,7,7, got {text!r}") from None


def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= minimum, or an error saying what is expected."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


_positive = _int_at_least(1, "a positive integer")
_non_negative = _int_at_least(0, "a non-negative integer")


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number such as 1e-6, got "
                                         f"{text!r}")
    return value


def _output_file(path: str) -> str:
    """A file path whose folder exists, checked before any long run."""
    import os
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder of {path!r} does not exist")
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path!r} is a folder, not a file")
    return path


def _per_axis(text: str):
    """'2' -> 2, '1,2' -> (1, 2); for stride, dilation, output padding."""
    values = _ints(text)
    return values[0] if len(values) == 1 else values


def _padding(text: str):
    """'same', 'valid', '1', '1,2', or (lo, hi) pairs written '1:2,0:1'."""
    if text in ("same", "valid"):
        return text
    try:
        parts = [tuple(int(p) for p in item.split(":")) if ":" in item else int(item)
                 for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"padding must be 'same', 'valid', an int, one int per axis (1,2) or (lo, hi) "
            f"pairs per axis (1:2,0:1); got {text!r}") from None
    return parts[0] if len(parts) == 1 and isinstance(parts[0], int) else tuple(parts)


def _own_shapes(args) -> bool:
    """Whether the user gave --x and --w (both, or an error naming the missing one)."""
    if bool(args.x) != bool(args.w):
        missing = "--w" if args.x else "--x"
        raise ValueError(f"give both --x and --w (e.g. --x 2,3,7,7 --w 4,3,3,3); {missing} "
                         f"is missing")
    return bool(args.x)


def _check(args) -> int:
    from .check import CASES, Case, run_check
    if args.output_padding != 0 and not args.transposed:
        raise ValueError("--output-padding applies to a transposed convolution: add "
                         "--transposed")
    if _own_shapes(args):
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


def _demo(args) -> int:
    from .digits import demo
    demo(args.out, seed=args.seed)
    return 0


def _train(args) -> int:
    from .digits import train
    train(args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
          optimizer=args.optimizer, seed=args.seed, dtype=args.dtype)
    return 0


def _predict(args) -> int:
    from .digits import predict
    predict(args.model, image=args.image, count=args.count, seed=args.seed)
    return 0


def _bench(args) -> int:
    from . import bench
    if _own_shapes(args):
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


def _explain(args) -> int:
    from .explain import run
    return run(case=args.case, x_shape=args.x, w_shape=args.w, stride=args.stride,
               padding=args.padding, dilation=args.dilation, latex=args.latex, png=args.png,
               numeric=args.numeric)


def _add_geometry_options(parser, x_help: str, w_help: str, *, dilation=True,
                          groups=True) -> None:
    """The options that describe one convolution: shapes, stride, padding and the rest."""
    parser.add_argument("--x", type=_ints, help=x_help)
    parser.add_argument("--w", type=_ints, help=w_help)
    parser.add_argument("--stride", type=_per_axis, default=1)
    parser.add_argument("--padding", type=_padding, default=0,
                        help="int, per axis (1,2), pairs (1:2,0:1), 'same' or 'valid'")
    if dilation:
        parser.add_argument("--dilation", type=_per_axis, default=1)
    if groups:
        parser.add_argument("--groups", type=_positive, default=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convgrad", description="The convolution layer, forward and backward, "
        "correct for every geometry.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", help="gradient-check conv and transposed conv across a grid of geometries",
        description="Compare the analytic gradients dx, dw, db with central differences "
        "(float64, random upstream gradient) over a grid of geometries, or one you give.")
    check.add_argument("--algorithm", choices=("fast", "reference", "both"), default="both",
                       help="engine(s) to check (default: both)")
    _add_geometry_options(check, "input shape, e.g. 2,3,7,7 (N,C,H,W)",
                          "weight shape, e.g. 4,3,3,3 (F,C/groups,HH,WW)")
    check.add_argument("--transposed", action="store_true",
                       help="check conv_transpose (w is (C_in, C_out/groups, ...))")
    check.add_argument("--output-padding", type=_per_axis, default=0)
    check.add_argument("--no-bias", action="store_true")
    check.add_argument("--tolerance", type=_tolerance, default=1e-6,
                       help="relative tolerance per element (default 1e-6)")
    check.set_defaults(run=_check)

    bench = commands.add_parser(
        "bench", help="time forward + backward against PyTorch CPU, side by side",
        description="Time conv2d forward + backward (y, dx, dw, db) on the issue's workloads "
        "or your shapes, interleaved with PyTorch CPU autograd in this process; print time, "
        "GFLOP/s, fraction of NumPy's GEMM peak, the ratio to PyTorch and, with --memory, "
        "peak memory.")
    bench.add_argument("--workloads", default="W2,W3,W4,W5,W6,W7",
                       help="comma-separated names (W2-W7, S1-S3), 'small' or 'all'")
    _add_geometry_options(bench, "your own input shape, e.g. 8,16,32,32",
                          "your own weight shape, e.g. 32,16,3,3", dilation=False)
    bench.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    bench.add_argument("--engine", choices=("fast", "reference", "both"), default="fast",
                       help="the reference engine runs only on small workloads")
    bench.add_argument("--repeats", type=_positive, default=5)
    bench.add_argument("--memory", action="store_true",
                       help="also measure peak memory (fresh subprocesses; slower)")
    bench.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    bench.add_argument("--json", metavar="FILE", type=lambda p: p if p == "-" else _output_file(p),
                       help="write results as JSON ('-': stdout only)")
    bench.add_argument("--plot", metavar="FILE.png", type=_output_file,
                       help="draw a bar chart of the ratios")
    bench.add_argument("--quiet", action="store_true", help="no progress display")
    bench.set_defaults(run=_bench)

    demo = commands.add_parser(
        "demo", help="train a small CNN on the 8x8 digits of scikit-learn (the main job)",
        description="Gradient-check the conv layer, then train a small CNN on scikit-learn's "
        "8x8 digits with a fixed seed and report test accuracy, curves, filters and "
        "predictions under --out.")
    demo.add_argument("--out", default="convgrad-demo", help="output folder (default ./convgrad-demo)")
    demo.add_argument("--seed", type=_non_negative, default=0)
    demo.set_defaults(run=_demo)

    train = commands.add_parser("train", help="the demo's training loop, with options")
    train.add_argument("--out", default="convgrad-train", help="output folder")
    train.add_argument("--epochs", type=_positive, default=12)
    train.add_argument("--batch-size", type=_positive, default=32)
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: 0.05 for sgd, 0.003 for adam)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="adam",
                       help="adam, or sgd with momentum 0.9 (the learning rate follows a "
                       "cosine decay to 0 over the run)")
    train.add_argument("--seed", type=_non_negative, default=0)
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict", help="classify digits with a saved model",
        description="Classify test-split digits, or an image file (grayscale, resized to 8x8).")
    predict.add_argument("--model", required=True, help="a model.npz written by demo or train")
    predict.add_argument("--image", help="an image file of one digit (PNG, JPEG, ...)")
    predict.add_argument("--count", type=_positive, default=10, help="test digits to show")
    predict.add_argument("--seed", type=_non_negative, default=0)
    predict.set_defaults(run=_predict)

    explain = commands.add_parser(
        "explain", help="derive the backward pass of a small case symbolically",
        description="Print the forward equations, the Jacobians, dx/dw/db and the "
        "convolution identities they reduce to, for one sample and one channel.")
    explain.add_argument("--case", choices=("1d", "2d", "stride2"),
                         help="a ready-made case (default 1d unless --x/--w are given)")
    _add_geometry_options(explain, "input size, e.g. 4 or 4,4", "filter size, e.g. 2 or 2,2",
                          groups=False)
    explain.add_argument("--latex", action="store_true", help="print LaTeX instead of text")
    explain.add_argument("--png", metavar="FILE", help="draw the case's figure to FILE")
    explain.add_argument("--numeric", action="store_true",
                         help="also show the identities on random numbers next to the "
                         "numerical gradient")
    explain.set_defaults(run=_explain)
    return parser


def main(argv=None) -> int:
    from ._optional import MissingExtra
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, MemoryError, OSError) as error:  # options, files, sizes
        print(f"convgrad {args.command}: {error}", file=sys.stderr)
        return 2
    except MissingExtra as error:
        print(f"convgrad {args.command}: {error}", file=sys.stderr)
        return 3
    except BrokenPipeError:               # `convgrad explain | head`: the reader left
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
