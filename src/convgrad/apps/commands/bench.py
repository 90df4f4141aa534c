"""`convgrad bench`: time convolutions, or whole training steps, against PyTorch CPU."""
from __future__ import annotations

import argparse
import os
import sys

from .. import options

# Options of one mode only: (option, attribute), refused in the other mode when given.
_CONV_ONLY = [("--workloads", "workloads"), ("--x", "x"), ("--w", "w"),
              ("--stride", "stride"), ("--padding", "padding"), ("--groups", "groups"),
              ("--engine", "engine"), ("--memory", "memory")]
_TRAIN_ONLY = [("--models", "models"), ("--batches", "batches")]
ENGINES = ("auto", "fast", "winograd", "winograd4", "winograd7", "reference")


def _given(args, pairs):
    return [option for option, attribute in pairs
            if getattr(args, attribute) not in (None, False)]


def _check_options(args) -> None:
    """Options that do not apply are errors (ValueError: one line, exit status 2)."""
    if args.train:
        wrong = _given(args, _CONV_ONLY)
        if wrong:
            raise ValueError(f"{wrong[0]} does not apply to --train (which times the "
                             f"models {', '.join(_models())}); leave it out")
        return
    wrong = _given(args, _TRAIN_ONLY)
    if wrong:
        raise ValueError(f"{wrong[0]} applies only to --train")
    if (args.x or args.w) and args.workloads is not None:
        raise ValueError("give either --workloads or your own shapes (--x and --w), not both")
    geometry = _given(args, [("--stride", "stride"), ("--padding", "padding"),
                             ("--groups", "groups")])
    if geometry and not (args.x or args.w):
        raise ValueError(f"{geometry[0]} applies to your own shapes only (--x and --w); "
                         f"the workloads have theirs (see convgrad bench --help)")


def _models():
    from .. import bench_train
    return bench_train.MODELS


def _own_workload(args, bench):
    """The workload of --x/--w, its geometry and sizes checked before any timing: a
    ValueError naming the bad value, or a MemoryError naming an array that cannot fit."""
    import numpy as np

    from ...memory import check_allocation
    from ..gradient_check import Case
    given = lambda value, default: default if value is None else value  # noqa: E731 (0 is a value)
    keywords = dict(stride=given(args.stride, 1), padding=given(args.padding, 0),
                    groups=given(args.groups, 1))
    g = Case("custom", args.x, args.w, keywords).geometry()
    for what, shape in (("x", args.x), ("w", args.w),
                        ("y (and dy)", (g.batch, g.out_channels, *g.out_size))):
        check_allocation(shape, np.float64, f"conv{len(args.x) - 2}d: {what}")
    return bench.Workload("custom", args.x, args.w, note="--x/--w", **keywords)


def _conv_workloads(args, bench):
    if options.own_shapes(args):
        return [_own_workload(args, bench)]
    names = args.workloads or "W2,W3,W4,W5,W6,W7"
    if names == "all":
        return bench.WORKLOADS + bench.SMALL
    if names == "small":
        return bench.SMALL
    known = {w.name for w in bench.WORKLOADS + bench.SMALL}
    workloads = [w.strip() for w in names.split(",")]
    unknown = [w for w in workloads if w not in known]
    if unknown:
        raise ValueError(f"unknown workload {unknown[0]!r}; choose from W2-W7, S1-S3, "
                         f"'small' or 'all'")
    return workloads


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def run(args) -> int:
    _check_options(args)
    from .. import bench, bench_train
    measure = dict(repeats=args.repeats, use_torch=not args.no_torch, progress=not args.quiet,
                   clock=args.clock, threads=args.threads)
    if args.train:
        models = args.models.split(",") if args.models else list(bench_train.MODELS)
        unknown = [m for m in models if m not in bench_train.MODELS]
        if unknown:
            raise ValueError(f"unknown model {unknown[0]!r}; choose from "
                             f"{', '.join(bench_train.MODELS)}")
        dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype or "float32",)
        measure["repeats"] = args.repeats or 11
        results, env = bench_train.run(models, args.batches or bench_train.BATCHES, dtypes,
                                       **measure)
        module = bench_train
    else:
        workloads = _conv_workloads(args, bench)
        dtype = args.dtype or "both"
        dtypes = ("float32", "float64") if dtype == "both" else (dtype,)
        engine = args.engine or "auto"
        engines = ENGINES if engine == "all" else (engine,)
        skipped = bench.not_applicable(workloads, dtypes, engines)
        combinations = len(workloads) * len(dtypes) * len(engines)
        if len(skipped) == combinations:
            raise ValueError("nothing to time: " + "; ".join(skipped))
        for line in skipped:
            print(f"bench: not timed: {line}", file=sys.stderr)
        measure["repeats"] = args.repeats or 5
        results, env = bench.run(workloads, dtypes, engines, memory=args.memory, **measure)
        module = bench
    if args.json == "-":
        print(bench.to_json(results, env))
    else:
        print(module.format_table(results, env))
        if args.json:
            _write(args.json, bench.to_json(results, env))
            print(f"JSON written to {args.json}")
    if args.plot:
        module.plot(results, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def writable_file(path: str) -> str:
    """An output file that can be written, checked before the long run (argparse type)."""
    if path == "-":
        return path
    path = options.output_file(path)
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot write {path!r}: "
                                         f"{error.strerror or error}") from None
    if not existed:
        os.remove(path)
    return path


def _epilog() -> str:
    from .. import bench
    lines = ["workloads (--workloads; each forward + backward: y, dx, dw, db):"]
    lines += [f"  {w.describe()}" for w in bench.WORKLOADS + bench.SMALL]
    lines += ["",
              "training step (--train; forward, cross-entropy loss, backward, Adam):",
              "  digits: x (N, 1, 8, 8): conv 1->32 3x3 'same', batch norm, ReLU, max pool 2,",
              "          conv 32->64, batch norm, ReLU, max pool 2, linear 256->10",
              "  cifar:  x (N, 3, 32, 32): conv 3->32 3x3 pad 1, ReLU, max pool 2,",
              "          conv 32->64 3x3 pad 1, ReLU, max pool 2, linear 4096->10",
              "  at batch N = 64 and 256, against the same model in torch.nn from the same",
              "  weights and data (the losses are compared before timing)",
              "",
              "measuring: each figure is the median (min-max) over interleaved pairs of",
              "convgrad and PyTorch runs; --threads 1 with --clock cpu (the default) is the",
              "stable figure on a shared machine; a warning is printed when the load",
              "average exceeded the number of cores during the run."]
    return "\n".join(lines)


def _formatter():
    """The CLI's help formatter (defaults shown, paragraphs filled), keeping the lines of
    the epilog's indented lists as they are."""
    from ..cli import HelpFormatter

    class Formatter(HelpFormatter):
        def _fill_text(self, text, width, indent):
            if "\n  " in text:                               # an indented list: as written
                return "".join(indent + line for line in text.splitlines(keepends=True))
            return super()._fill_text(text, width, indent)
    return Formatter


def register(commands) -> None:
    parser = commands.add_parser(
        "bench", help="time forward + backward, or a training step, against PyTorch CPU",
        description="Time conv2d forward + backward (y, dx, dw, db) on the workloads W2-W7 "
        "and S1-S3 (listed below) or your own shapes, or with --train whole training steps "
        "of two small CNNs, interleaved with PyTorch CPU in this process; print time, "
        "GFLOP/s, fraction of NumPy's GEMM peak, the ratio to PyTorch and, with --memory, "
        "peak memory; the CPU model and BLAS kernel come with the figures.",
        epilog=_epilog(), formatter_class=_formatter())
    parser.add_argument("--train", action="store_true",
                        help="time whole training steps (models below) instead")
    parser.add_argument("--workloads", default=None,
                        help="comma-separated names (W2-W7, S1-S3), 'small' or 'all' "
                        "(default W2,W3,W4,W5,W6,W7)")
    parser.add_argument("--x", type=options.ints, help="your own input shape, e.g. 8,16,32,32")
    parser.add_argument("--w", type=options.ints,
                        help="your own weight shape, e.g. 32,16,3,3")
    parser.add_argument("--stride", type=options.per_axis, default=None,
                        help="with --x/--w (default 1)")
    parser.add_argument("--padding", type=options.padding, default=None,
                        help="with --x/--w: int, per axis (1,2), pairs (1:2,0:1), 'same' or "
                        "'valid' (default 0)")
    parser.add_argument("--groups", type=options.positive, default=None,
                        help="with --x/--w (default 1)")
    parser.add_argument("--models", default=None,
                        help="with --train: comma-separated, from digits, cifar (default both)")
    parser.add_argument("--batches", type=lambda t: tuple(options.positive(v)
                                                          for v in t.split(",")),
                        default=None, help="with --train: batch sizes (default 64,256)")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default=None,
                        help="the arrays' dtype, or both in turn (default: both for "
                        "convolutions, float32 for --train)")
    parser.add_argument("--engine", choices=ENGINES + ("all",), default=None,
                        help="the algorithm (default auto: what conv2d uses); winograd, "
                        "winograd4 and winograd7 (float64) run only on 3x3 stride-1 workloads, reference only on small ones")
    parser.add_argument("--threads", type=options.positive, default=1,
                        help="threads for both libraries' BLAS / OpenMP (default 1)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="process CPU time (default) or wall-clock time")
    parser.add_argument("--repeats", type=options.positive, default=None,
                        help="interleaved pairs per figure (default 5; 11 with --train)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure peak memory (fresh subprocesses; slower)")
    parser.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    parser.add_argument("--json", metavar="FILE", type=writable_file,
                        help="write results as JSON ('-': stdout only)")
    parser.add_argument("--plot", metavar="FILE.png", type=writable_file,
                        help="draw a bar chart: medians labelled, whiskers min-max")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(run=run)
