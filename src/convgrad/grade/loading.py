"""Importing the user's file by its path and finding the functions to grade.

The file is imported as a module (never run in a shell), with its own folder first on
``sys.path`` so that its imports of neighbouring files resolve as they do for its author.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys

from .calling import describe

__all__ = ["DEFAULT_NAMES", "LoadError", "import_file", "pick_functions"]

# api -> (names tried for the forward, names tried for the backward), in order
DEFAULT_NAMES = {
    "cs231n": (("conv_forward_naive", "conv_forward_fast"),
               ("conv_backward_naive", "conv_backward_fast")),
    "functional": (("forward", "conv_forward"), ("backward", "conv_backward")),
}


class LoadError(Exception):
    """The file could not be imported, or does not define the functions asked for."""


def import_file(path: str):
    """The module defined by the file at ``path``; LoadError with the user's line if its
    import raises."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise LoadError(f"{path} is not a file")
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem if re.fullmatch(r"[A-Za-z_]\w*", stem) and stem not in sys.modules \
        else "convgrad_graded_module"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path} cannot be imported as Python (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:              # noqa: BLE001  (SystemExit, anything)
        sys.modules.pop(name, None)
        raise LoadError(f"could not import {os.path.basename(path)}: "
                        f"{describe(error, [path])}") from None
    return module


def _callables(module) -> list:
    return sorted(name for name, value in vars(module).items()
                  if callable(value) and not name.startswith("_")
                  and getattr(value, "__module__", None) == module.__name__)


def _named(module, name: str, role: str, filename: str):
    value = getattr(module, name, None)
    if value is None:
        raise LoadError(f"{filename} defines no {name!r} (--{role}); it defines: "
                        f"{', '.join(_callables(module)) or 'no functions'}")
    if not callable(value):
        raise LoadError(f"{name!r} in {filename} is a {type(value).__name__}, not a function")
    return value


def pick_functions(module, forward, backward, api: str, filename: str):
    """(forward function or None, backward function or None, (forward name, backward name)).

    ``forward``/``backward`` are names given by the user: when one or both are given,
    exactly those are graded; when neither is, the API's default names that the file
    defines (e.g. conv_forward_naive, else conv_forward_fast).
    """
    if forward is not None or backward is not None:
        f = None if forward is None else _named(module, forward, "forward", filename)
        b = None if backward is None else _named(module, backward, "backward", filename)
        return f, b, (forward, backward)
    found = []
    for defaults in DEFAULT_NAMES[api]:
        name = next((n for n in defaults if callable(getattr(module, n, None))), None)
        found.append((name, getattr(module, name) if name else None))
    if found[0][1] is None and found[1][1] is None:
        tried = ", ".join(DEFAULT_NAMES[api][0] + DEFAULT_NAMES[api][1])
        raise LoadError(f"{filename} defines none of {tried} (the {api} API's names); "
                        f"name your functions with --forward and/or --backward (it defines: "
                        f"{', '.join(_callables(module)) or 'no functions'})")
    return found[0][1], found[1][1], (found[0][0], found[1][0])
