"""``convgrad explain``: print (and draw) the derivation of one small case.

    run(case="1d")                                   # x (4,), w (2,)
    run(case="stride2", numeric=True)                # x (5,), w (3,), stride 2
    run(x_shape=(4, 4), w_shape=(2, 2), stride=2, padding=1, png="case.png")

:func:`run` returns the exit code: 0 on success, 2 for bad arguments (the message goes
to stderr). A missing SymPy or matplotlib raises :class:`convgrad._optional.MissingExtra`,
which the command line reports.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .._optional import require

__all__ = ["CASES", "run"]

# name -> (x_shape, w_shape, stride, padding, dilation, what it shows)
CASES = {
    "1d": ((4,), (2,), 1, 0, 1, "the classic 1-D derivation"),
    "2d": ((3, 3), (2, 2), 1, 0, 1, "the classic 2-D derivation"),
    "stride2": ((5,), (3,), 2, 0, 1, "stride 2: the zeros inserted into dy"),
}
MAX_ENTRIES = 100   # of x: beyond this the printout (and SymPy) is no longer readable

_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1}


def _fail(message: str) -> int:
    print(f"convgrad explain: {message}", file=sys.stderr)
    return 2


def run(case=None, x_shape=None, w_shape=None, stride=1, padding=0, dilation=1,
        latex: bool = False, png=None, numeric: bool = False) -> int:
    """Print the derivation of one case; return an exit code (0 ok, 2 bad arguments).

    Args:
        case: '1d', '2d' or 'stride2' (see :data:`CASES`); the default when neither a case
            nor shapes are given is '1d'. A case sets the shapes, stride, padding and
            dilation; stride/padding/dilation given with other than their defaults replace
            the case's.
        x_shape, w_shape: spatial sizes, (L,) or (H, W), instead of a case (both needed).
        stride, padding, dilation: as for :func:`convgrad.conv2d`.
        latex: print LaTeX instead of text.
        png: a file to draw the case's figure to (its folder is created when missing).
        numeric: also compare the identities on random numbers with convgrad's backward
            and central differences.
    """
    require("sympy", "explain", "convgrad explain")
    if png is not None:
        require("matplotlib", "explain", "convgrad explain --png")
    from .derivation import derive
    from .render import latex as to_latex
    from .render import text as to_text

    keywords = {"stride": stride, "padding": padding, "dilation": dilation}
    if case is not None:
        if case not in CASES:
            return _fail(f"unknown case {case!r}; expected one of {', '.join(CASES)}")
        if x_shape is not None or w_shape is not None:
            return _fail("give either a case (--case) or shapes (--x and --w), not both")
        x_shape, w_shape, *values, _ = CASES[case]
        for (name, default), value in zip(_DEFAULTS.items(), values):
            if keywords[name] == default:
                keywords[name] = value
    elif x_shape is None and w_shape is None:
        x_shape, w_shape, *values, _ = CASES["1d"]
    elif x_shape is None or w_shape is None:
        return _fail("give both the input and the filter sizes (--x and --w, e.g. "
                     "--x 4,4 --w 2,2), or a --case")
    try:
        entries = 1
        for n in (x_shape if isinstance(x_shape, (tuple, list)) else (x_shape,)):
            entries *= n if isinstance(n, int) and n > 0 else 1
        if entries > MAX_ENTRIES:
            return _fail(f"x of size {tuple(x_shape)} has {entries} entries; symbolic "
                         f"derivations stay readable up to {MAX_ENTRIES}: choose a smaller case")
        derivation = derive(x_shape, w_shape, **keywords)
    except (ValueError, TypeError) as error:
        return _fail(str(error).removeprefix("explain: "))

    check = derivation.check()
    print(to_latex(derivation, check) if latex else to_text(derivation, check))
    if numeric:
        from .numeric import compare_numerically
        print()
        comparison = compare_numerically(derivation)
        print(comparison if not latex else "% " + str(comparison).replace("\n", "\n% "))
    if png is not None:
        from .figure import draw_case
        path = Path(png)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            draw_case(derivation, path)
        except (OSError, ValueError) as error:
            return _fail(f"could not write the figure to {str(png)!r}: {error}")
        print(f"{'% ' if latex else ''}figure written to {path}")
    return 0
