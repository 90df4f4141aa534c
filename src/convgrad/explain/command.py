"""``convgrad explain``: print (and draw) the derivation of one small case, or write the explorer.

    run(case="1d")                                   # x (4,), w (2,)
    run(case="stride2", numeric=True)                # x (5,), w (3,), stride 2
    run(input_size=(4, 4), kernel_size=(2, 2), stride=2, padding=1, png="case.png")
    run(input_size=(5, 5), kernel_size=(3, 3), stride=2, html="explorer.html")

:func:`run` returns the exit code: 0 on success, 2 for bad arguments (the message goes
to stderr). A missing SymPy or matplotlib raises :class:`convgrad._optional.MissingExtra`,
which the command line reports. The work is estimated before any is done: a case whose
derivation would be unreadable or slow is refused with the bound and how to raise it.
"""
from __future__ import annotations

import sys
from math import prod
from pathlib import Path

from .._optional import require

__all__ = ["CASES", "run", "MAX_ENTRIES", "MAX_TERMS", "LIMIT_ENTRIES", "LIMIT_TERMS"]

# name -> (input_size, kernel_size, stride, padding, dilation, what it shows)
CASES = {
    "1d": ((4,), (2,), 1, 0, 1, "the classic 1-D derivation"),
    "2d": ((3, 3), (2, 2), 1, 0, 1, "the classic 2-D derivation"),
    "stride2": ((5,), (3,), 2, 0, 1, "stride 2: the zeros inserted into dy"),
}
MAX_ENTRIES = 100   # of x, w and y (= dy): beyond this the printout is no longer readable
MAX_TERMS = 1000    # products w*x in y (entries of y x entries of w): SymPy takes ~4 s here
# The most the bounds may be raised to: SymPy derives about 400 products a second here
# (8,100 took 19 s), so 25,000 is about a minute; beyond, a symbolic derivation is not the tool.
LIMIT_ENTRIES = 2500
LIMIT_TERMS = 25000
_BEYOND = ("beyond what a symbolic derivation can do in about a minute; for numbers use "
           "convgrad check or the functional API, to see the index maps use --html (inputs "
           "up to 12 per axis)")


def _fail(message: str) -> int:
    print(f"convgrad explain: {message}", file=sys.stderr)
    return 2


def _sizes(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _entries(value) -> int:
    """Entries of a size given by the user, before validation (bad values count as 1)."""
    return prod(n if isinstance(n, int) and n > 0 else 1 for n in _sizes(value))


def _raise_with(option: str, needed: int, limit: int) -> str:
    """How to override a bound, or why it cannot be: the end of a refusal message."""
    if needed > limit:
        return f"this case needs {needed}, {_BEYOND} (the bound goes up to {limit})"
    return f"choose a smaller case, or raise the bound with {option} {needed}"


def _estimate(geometry, transposed: bool, max_entries: int, max_terms: int) -> str | None:
    """Why the derivation would be too large, or None. Counts y (and dy), w and the products."""
    g = geometry
    y_size = g.in_size if transposed else g.out_size
    x_size = g.out_size if transposed else g.in_size
    padded = "" if transposed else f", x padded to {g.padded_size}"
    for name, size in (("y (and dy)", y_size), ("w", g.kernel_size)):
        if prod(size) > max_entries:
            return (f"{name} would have {size} = {prod(size)} entries (x {x_size}, w "
                    f"{g.kernel_size}{padded}); symbolic derivations stay readable up to "
                    f"{max_entries} entries of x, w and y: "
                    f"{_raise_with('--max-entries', prod(size), LIMIT_ENTRIES)}")
    terms = prod(y_size) * prod(g.kernel_size)
    if terms > max_terms:
        return (f"y {y_size} and w {g.kernel_size} make {terms} products to derive (entries "
                f"of y x entries of w); SymPy stays quick (about 4 s) up to {max_terms}: "
                f"{_raise_with('--max-terms', terms, LIMIT_TERMS)}")
    return None


def _option_sizes(input_size, kernel_size):
    """What is wrong with the number of sizes given, in the options' words (or None);
    the rest (values, types) is the geometry's to say."""
    def words(name, sizes):
        return f"--{name} {','.join(str(v) for v in sizes)}"
    try:
        n_in, n_k = len(input_size), len(kernel_size)
    except TypeError:
        return None
    if n_in not in (1, 2):
        return (f"{words('input-size', input_size)} has {n_in} sizes; give L (1-D) or H,W "
                f"(2-D), the spatial size of one sample and one channel")
    if n_k != n_in:
        return (f"{words('kernel-size', kernel_size)} has {n_k} size{'s' * (n_k != 1)} but "
                f"{words('input-size', input_size)} has {n_in}: give one per axis")
    return None


def run(case=None, input_size=None, kernel_size=None, stride=None, padding=None,
        dilation=None, latex: bool = False, latex_document: bool = False, png=None,
        numeric: bool = False, html=None, transposed: bool = False, output_padding=None,
        max_entries: int = MAX_ENTRIES, max_terms: int = MAX_TERMS) -> int:
    """Print the derivation of one case (or write the explorer); return an exit code.

    Args:
        case: '1d', '2d' or 'stride2' (see :data:`CASES`); the default when neither a case
            nor sizes are given is '1d'. A case sets the sizes, stride, padding and dilation:
            giving any of them with a case is an error.
        input_size, kernel_size: spatial sizes, (L,) or (H, W), instead of a case (both).
        stride, padding, dilation: as for :func:`convgrad.conv2d` (None: 1, 0, 1).
        latex: print LaTeX (``\\[ ... \\]`` blocks) instead of text; latex_document: a
            complete LaTeX document that compiles on its own.
        png: a file to draw the case's figure to (its folder is created when missing).
        numeric: also compare the identities on random numbers with convgrad's backward
            and central differences; with ``html``, open the page in numbers mode.
        html: write the interactive explorer (:func:`convgrad.explain.html`) to this file
            instead of printing; transposed and output_padding apply to it only.
        max_entries, max_terms: the bounds of the work estimate (see :data:`MAX_ENTRIES`,
            :data:`MAX_TERMS`).
    """
    given = {"stride": stride, "padding": padding, "dilation": dilation}
    if case is not None:
        if case not in CASES:
            return _fail(f"unknown case {case!r}; expected one of {', '.join(CASES)}")
        if input_size is not None or kernel_size is not None:
            return _fail("give either a case (--case) or sizes (--input-size and "
                         "--kernel-size), not both")
        extra = [f"--{name}" for name, value in given.items() if value is not None]
        if extra:
            return _fail(f"--case {case} sets the stride, padding and dilation itself; "
                         f"{', '.join(extra)} does not apply to it (give --input-size and "
                         f"--kernel-size to choose every setting)")
        input_size, kernel_size, *values, _ = CASES[case]
        given = dict(zip(given, values))
    elif input_size is None and kernel_size is None:
        input_size, kernel_size, *_ = CASES["1d"]
    elif input_size is None or kernel_size is None:
        return _fail("give both the input and the kernel sizes (--input-size and "
                     "--kernel-size, e.g. --input-size 4,4 --kernel-size 2,2), or a --case")
    wrong = _option_sizes(input_size, kernel_size)
    if wrong:
        return _fail(wrong)
    keywords = {"stride": 1 if given["stride"] is None else given["stride"],
                "padding": 0 if given["padding"] is None else given["padding"],
                "dilation": 1 if given["dilation"] is None else given["dilation"]}
    if output_padding is not None and not transposed:
        return _fail("--output-padding applies to a transposed convolution only "
                     "(--transposed)")
    if html is not None:
        refused = [flag for flag, value in (("--latex", latex), ("--latex-document",
                   latex_document), ("--png", png), ("--max-entries", max_entries != MAX_ENTRIES),
                   ("--max-terms", max_terms != MAX_TERMS)) if value]
        if refused:
            return _fail(f"{', '.join(refused)} does not apply with --html (the page "
                         f"is written instead of the printed derivation)")
        return _write_html(html, input_size, kernel_size, keywords, transposed,
                           output_padding, numeric)
    if transposed:
        return _fail("--transposed applies to --html only (the printed derivation covers "
                     "the forward convolution; the explorer shows both)")
    if latex and latex_document:
        return _fail("give --latex or --latex-document, not both")
    if numeric and latex_document:
        return _fail("--numeric does not apply with --latex-document (use --latex)")

    require("sympy", "explain", "convgrad explain")
    if png is not None:
        require("matplotlib", "explain", "convgrad explain --png")
    from .case import case_geometry
    from .derivation import derive
    from .render import latex as to_latex
    from .render import latex_document as to_document
    from .render import text as to_text

    try:
        if _entries(input_size) > max_entries:
            return _fail(f"x of size {_sizes(input_size)} has {_entries(input_size)} entries; "
                         f"symbolic derivations stay readable up to {max_entries}: "
                         f"{_raise_with('--max-entries', _entries(input_size), LIMIT_ENTRIES)}")
        if _entries(kernel_size) > max_entries:
            return _fail(f"w of size {_sizes(kernel_size)} has {_entries(kernel_size)} "
                         f"entries; symbolic derivations stay readable up to {max_entries}: "
                         f"{_raise_with('--max-entries', _entries(kernel_size), LIMIT_ENTRIES)}")
        too_large = _estimate(case_geometry(input_size, kernel_size, **keywords), False,
                              max_entries, max_terms)
        if too_large:
            return _fail(too_large)
        derivation = derive(input_size, kernel_size, **keywords)
    except (ValueError, TypeError) as error:
        return _fail(str(error).removeprefix("explain: "))

    check = derivation.check()
    comment = latex or latex_document
    if latex_document:
        print(to_document(derivation, check))
    else:
        print(to_latex(derivation, check) if latex else to_text(derivation, check))
    if numeric:
        from .numeric import compare_numerically
        comparison = str(compare_numerically(derivation))
        print()
        print(comparison if not comment else "% " + comparison.replace("\n", "\n% "))
    if png is not None:
        from .figure import draw_case
        path = Path(png)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            draw_case(derivation, path)
        except (OSError, ValueError) as error:
            return _fail(f"could not write the figure to {str(png)!r}: {error}")
        print(f"{'% ' if comment else ''}figure written to {path}")
    sys.stdout.flush()           # a closed pipe (`| head`) surfaces here, inside the command
    return 0


def _write_html(path, input_size, kernel_size, keywords, transposed, output_padding,
                numeric) -> int:
    from .explorer import html
    target = Path(path)
    if target.is_dir():
        return _fail(f"{str(path)!r} is a folder, not a file")
    if not target.parent.is_dir():
        return _fail(f"the folder of {str(path)!r} does not exist")
    try:
        html(target, input_size, kernel_size, transposed=transposed,
             output_padding=0 if output_padding is None else output_padding,
             numbers=numeric, **keywords)
    except (ValueError, TypeError) as error:
        return _fail(str(error).removeprefix("explain: "))
    except OSError as error:
        return _fail(f"could not write the explorer to {str(path)!r}: {error}")
    print(f"explorer written to {target} (open it in a browser; it needs no network)")
    sys.stdout.flush()
    return 0
