"""The command line: ``convgrad COMMAND [options]``.

Each command lives in :mod:`convgrad.apps.commands` (its options and the call that does
the work); this module builds the parser from them and turns the errors a user can cause
into one-line messages and exit statuses: 0 success, 1 a check failed, 2 bad usage or
input, 3 a missing optional extra.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .commands import NAMES

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convgrad", description="The convolution layer, forward and backward, "
        "correct for every geometry.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in NAMES:
        importlib.import_module(f"{__package__}.commands.{name}").register(commands)
    return parser


def main(argv=None) -> int:
    from .._optional import MissingExtra
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:               # `convgrad explain | head`: the reader left
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MissingExtra as error:
        print(f"convgrad {args.command}: {error}", file=sys.stderr)
        return 3
    except (ValueError, TypeError, MemoryError, OSError) as error:  # options, files, sizes
        print(f"convgrad {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
