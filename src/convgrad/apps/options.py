"""Option types shared by the commands: integers, shapes, padding, output files.

Each is an argparse ``type``: it turns the text into a value or raises
``argparse.ArgumentTypeError`` with a message that says what is expected.
"""
from __future__ import annotations

import argparse
import os

__all__ = ["ints", "positive", "non_negative", "int_between", "positive_number",
           "seconds", "output_file", "output_folder", "input_file", "per_axis", "padding",
           "own_shapes", "add_geometry_options"]


def ints(text: str) -> tuple[int, ...]:
    """'2,3,7,7' -> (2, 3, 7, 7)."""
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


positive = _int_at_least(1, "a positive integer")
non_negative = _int_at_least(0, "a non-negative integer")


def int_between(minimum: int, maximum: int, why: str = ""):
    """An argparse type: an integer in minimum..maximum; ``why`` explains the maximum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {minimum} to "
                                             f"{maximum}, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected an integer from {minimum} to "
                                             f"{maximum}{why}, got {text!r}")
        return value
    return parse


def _positive_float(expected: str):
    """An argparse type: a positive finite number; the message says ``expected``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


positive_number = _positive_float("a positive number such as 0.003")     # a learning rate
seconds = _positive_float("a positive number of seconds")               # a time limit


def output_file(path: str, suffixes: tuple[str, ...] = ()) -> str:
    """A file this process can write, checked before any long run.

    The check opens the file for appending (creating it only for the test, then removing
    it), so a missing or read-only folder, a folder given as the file or a path such as
    /proc/x fails now rather than after the work. ``suffixes``, when given, are the
    file name endings allowed (the format is chosen by the suffix).
    """
    if not path:
        raise argparse.ArgumentTypeError("expected a file name, got an empty string")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder of {path!r} does not exist")
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path!r} is a folder, not a file")
    if suffixes and not path.lower().endswith(suffixes):
        raise argparse.ArgumentTypeError(
            f"{path!r} must end with {' or '.join(suffixes)} (the format is chosen by it)")
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot write {path!r}: {error.strerror or error}") from None
    if not existed:
        os.remove(path)
    return path


def png_file(path: str) -> str:
    """A writable file whose name ends with .png."""
    return output_file(path, (".png",))


def html_file(path: str) -> str:
    """A writable file whose name ends with .html or .htm."""
    return output_file(path, (".html", ".htm"))


def output_folder(path: str) -> str:
    """A folder to write into: an existing folder, or one that can be created (its nearest
    existing parent is a writable folder). Checked before any work."""
    from .digits import check_out_dir
    try:
        check_out_dir(path)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return path


def input_file(path: str) -> str:
    """An existing file to read."""
    if not os.path.exists(path):
        raise argparse.ArgumentTypeError(f"{path!r} does not exist")
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"{path!r} is not a file")
    return path


def per_axis(text: str):
    """'2' -> 2, '1,2' -> (1, 2); for stride, dilation, output padding."""
    values = ints(text)
    return values[0] if len(values) == 1 else values


def padding(text: str):
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


def own_shapes(args) -> bool:
    """Whether the user gave --x and --w (both, or an error naming the missing one)."""
    if bool(args.x) != bool(args.w):
        missing = "--w" if args.x else "--x"
        raise ValueError(f"give both --x and --w (e.g. --x 2,3,7,7 --w 4,3,3,3); {missing} "
                         f"is missing")
    return bool(args.x)


def add_geometry_options(parser, x_help: str, w_help: str, *, dilation=True,
                         groups=True) -> None:
    """The options that describe one convolution: shapes, stride, padding and the rest."""
    parser.add_argument("--x", type=ints, help=x_help)
    parser.add_argument("--w", type=ints, help=w_help)
    parser.add_argument("--stride", type=per_axis, default=1,
                        help="step of the window: an int, or one per axis (2,1)")
    parser.add_argument("--padding", type=padding, default=0,
                        help="int, per axis (1,2), pairs (1:2,0:1), 'same' or 'valid'")
    if dilation:
        parser.add_argument("--dilation", type=per_axis, default=1,
                            help="spacing of the kernel's taps: an int, or one per axis")
    if groups:
        parser.add_argument("--groups", type=positive, default=1,
                            help="channel groups (C and F divisible by it)")
