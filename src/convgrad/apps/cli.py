"""The command line: ``convgrad COMMAND [options]``.

Each command lives in :mod:`convgrad.apps.commands` (its options and the call that does
the work); this module builds the parser from them and turns every error into a one-line
message and an exit status, never a traceback:

    0  success                  1  a check failed            2  bad usage or input
    3  a missing optional extra  4  an internal error (a bug in convgrad: please report it;
                                    CONVGRAD_DEBUG=1 shows the traceback)
    130 interrupted (Ctrl-C)

Every command's ``--help`` describes it and lists each option with its default: the
:class:`HelpFormatter` here is given to every command's parser, so a new command gets it
too. Warnings become one line each (``convgrad CMD: warning: ...``).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings

from .commands import NAMES

__all__ = ["main", "build_parser", "HelpFormatter"]

EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130
DEBUG_VARIABLE = "CONVGRAD_DEBUG"
_NO_HELP = "\0"       # stands for "no help text" so that argparse still shows the default


class HelpFormatter(argparse.HelpFormatter):
    """--help text for every convgrad parser: the description's paragraphs (separated by
    blank lines) are kept, and every option that has a default shows it ("(default: 12)"),
    also those declared without a help string. Flags (off unless given), options without
    a default, and help texts that already speak of their default are left as written."""

    def __init__(self, prog, indent_increment=2, max_help_position=30, width=None):
        super().__init__(prog, indent_increment, max_help_position, width)

    def _fill_text(self, text, width, indent):
        return "\n\n".join(super(HelpFormatter, self)._fill_text(paragraph, width, indent)
                           for paragraph in text.split("\n\n"))

    def _format_action(self, action):
        if not action.help and self._default_text(action):
            action = _with_help(action, _NO_HELP)      # argparse skips empty help
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = "" if action.help in (None, _NO_HELP) else action.help.strip()
        default = self._default_text(action)
        if default and "default" not in text:
            text = f"{text} (default: {default})" if text else f"default: {default}"
        return text

    @staticmethod
    def _default_text(action) -> str:
        default = action.default
        if (not action.option_strings or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool) or action.nargs == 0):
            return ""
        if isinstance(default, (tuple, list)):
            default = ",".join(map(str, default))
        return str(default).replace("%", "%%")


def _with_help(action, text):
    import copy
    action = copy.copy(action)
    action.help = text
    return action


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose help uses :class:`HelpFormatter` (for every subcommand)."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = CommandParser(
        prog="convgrad",
        description="The convolution layer, forward and backward, correct for every "
        "geometry: train a small CNN on digits (demo, train, predict), check gradients "
        "(check), grade your own conv layer and name its mistake (grade), time it against "
        "PyTorch (bench) and derive and explore its backward pass (explain)."
        "\n\nconvgrad COMMAND --help describes each command and its options.")
    parser.add_argument("--version", action="version", version=f"convgrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=CommandParser)
    for name in NAMES:
        importlib.import_module(f"{__package__}.commands.{name}").register(commands)
    return parser


def _message(error: BaseException) -> str:
    """The error as one line; an OSError as 'FILE: what happened' (no '[Errno N]')."""
    if isinstance(error, OSError) and error.strerror:
        names = [n for n in (error.filename, error.filename2) if n is not None]
        text = error.strerror + (f": {' -> '.join(map(repr, names))}" if names else "")
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split("\n")).strip()


@contextlib.contextmanager
def _one_line_warnings(prefix: str):
    """Show each warning as one line, 'convgrad CMD: warning: ...', without source lines."""
    def show(message, category, filename, lineno, file=None, line=None):
        text = _message(message) if isinstance(message, BaseException) else str(message)
        print(f"{prefix}: warning: {text}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _quiet_closed_pipe() -> int:
    """The reader of stdout left (`convgrad ... | head`): stop quietly, and keep Python
    from complaining when it flushes stdout at exit."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv=None) -> int:
    from .._optional import MissingExtra
    prefix = "convgrad"
    try:
        try:
            with _one_line_warnings(prefix):
                args = build_parser().parse_args(argv)     # usage errors: SystemExit(2)
            prefix = f"convgrad {args.command}"
            with _one_line_warnings(prefix):
                status = args.run(args)
        finally:
            sys.stdout.flush()         # a closed pipe shows here, not at the interpreter's exit
        return status
    except BrokenPipeError:
        return _quiet_closed_pipe()
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MissingExtra as error:
        print(f"{prefix}: {_message(error)}", file=sys.stderr)
        return 3
    except (ValueError, TypeError, MemoryError, OSError) as error:  # options, files, sizes
        print(f"{prefix}: {_message(error)}", file=sys.stderr)
        return 2
    except Exception as error:                     # a bug: one line, not a traceback
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"{prefix}: internal error ({type(error).__name__}: {_message(error)}); this is "
              f"a bug in convgrad, please report it with the command line "
              f"({DEBUG_VARIABLE}=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
