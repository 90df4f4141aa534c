"""The backward pass in the browser: one self-contained HTML page (NumPy only).

    html("explorer.html")                                    # 2-D, x 5x5, w 3x3, stride 2
    html("t.html", input_size=(4,), kernel_size=(3,), stride=2, transposed=True,
         output_padding=1, numbers=True)

The page (``convgrad explain --html FILE``) draws x (with its padding), w, y, dy, dx, dw and
db as linked grids; hovering or focusing a cell highlights every cell it depends on and
every cell that depends on it and writes its formula (the terms and order of
:meth:`convgrad.explain.Derivation.formula`); the "as a convolution" panels show dx as the
full correlation of the spread, padded dy with rot180(w) and dw as x correlated with the
dilated dy (docs/math.md). Its controls change every part of the geometry. In numbers mode
the page computes y, dx, dw, db itself and shows them next to convgrad's, which this
module computes and embeds for the geometry the page is written with.

The page's JavaScript and CSS are package data (the folder ``page/`` beside this module:
``explorer.html``, ``explorer.css`` and the script in parts, one idea each, listed in
:data:`PARTS`), inlined into the one file written: no network, it works opened from disk. For tests, it exposes ``window.convgrad`` (``set(g)``,
``terms(array, index)``, ``values()``, ``geometry()``, ``error()``).
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from .. import functional
from ..geometry.arrays import AXES
from .case import OP, case_geometry, output_padding_of

__all__ = ["html", "LIMITS", "check_limits", "page_geometry"]

# What the page draws legibly on a laptop screen (per axis); the page enforces the same.
LIMITS = {"input": 12, "extent": 13, "padded": 24, "output": 24}


def _pairs(padding) -> list:
    return [[int(lo), int(hi)] for lo, hi in padding]


def page_geometry(geometry, transposed: bool) -> dict:
    """A case's geometry as the page writes it: sizes of x, w, y and every setting resolved."""
    g = geometry
    x_size, y_size = (g.out_size, g.in_size) if transposed else (g.in_size, g.out_size)
    out = {"nd": g.nd, "x": list(x_size), "w": list(g.kernel_size), "y": list(y_size),
           "stride": list(g.stride), "dilation": list(g.dilation),
           "padding": _pairs(g.padding), "transposed": bool(transposed),
           "output_padding": list(output_padding_of(g)) if transposed else [0] * g.nd}
    return out


def check_limits(geometry, transposed: bool) -> None:
    """Refuse a case the page cannot draw legibly, with the page's own message."""
    g = geometry
    x_size = g.out_size if transposed else g.in_size
    for axis, n in zip(AXES[g.nd], x_size):
        if n > LIMITS["input"]:
            raise ValueError(f"{OP}: x has {n} entries along {axis}; the explorer "
                             f"draws inputs of up to {LIMITS['input']} per axis, to stay "
                             f"readable: choose a smaller input")
    for axis, k, d, kd in zip(AXES[g.nd], g.kernel_size, g.dilation, g.kernel_extent):
        if kd > LIMITS["extent"]:
            raise ValueError(f"{OP}: the kernel along {axis} spans {kd} entries "
                             f"(size {k}, dilation {d}); the explorer draws kernels spanning "
                             f"up to {LIMITS['extent']}: choose a smaller kernel or dilation")
    if transposed:
        for axis, n in zip(AXES[g.nd], g.in_size):
            if n > LIMITS["output"]:
                raise ValueError(f"{OP}: y would have {n} entries along {axis}; the "
                                 f"explorer draws outputs of up to {LIMITS['output']} per "
                                 f"axis: choose a smaller input or stride")
    else:
        for axis, n, (lo, hi) in zip(AXES[g.nd], g.in_size, g.padding):
            if n + lo + hi > LIMITS["padded"]:
                raise ValueError(f"{OP}: the padded input along {axis} has "
                                 f"{n + lo + hi} entries ({n} + {lo} + {hi}); the explorer "
                                 f"draws up to {LIMITS['padded']}: choose less padding")


def _numbers(geometry, transposed: bool, seed) -> dict:
    """Small random integers for x, w, b, dy, and convgrad's y, dx, dw, db on them."""
    g = geometry
    x_size, y_size = (g.out_size, g.in_size) if transposed else (g.in_size, g.out_size)
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, x_size).astype(np.float64)          # (*x)
    w = rng.integers(-3, 4, g.kernel_size).astype(np.float64)   # (*k)
    b = np.array([float(rng.integers(-3, 4))])                   # (F,) = (1,)
    dy = rng.integers(-3, 4, y_size).astype(np.float64)         # (*y)
    xb, wb, dyb = x[None, None], w[None, None], dy[None, None]   # N = C = F = 1
    if transposed:
        keywords = dict(stride=g.stride, padding=g.padding, dilation=g.dilation,
                        output_padding=output_padding_of(g))
        y = getattr(functional, f"conv_transpose{g.nd}d")(xb, wb, b, **keywords)
        dx, dw, db = getattr(functional, f"conv_transpose{g.nd}d_backward")(
            dyb, xb, wb, b, **keywords)
        source = f"convgrad.conv_transpose{g.nd}d and conv_transpose{g.nd}d_backward"
    else:
        keywords = dict(stride=g.stride, padding=g.padding, dilation=g.dilation)
        y = getattr(functional, f"conv{g.nd}d")(xb, wb, b, **keywords)
        dx, dw, db = getattr(functional, f"conv{g.nd}d_backward")(dyb, xb, wb, b, **keywords)
        source = f"convgrad.conv{g.nd}d and conv{g.nd}d_backward"

    def flat(a) -> list:
        return [float(v) for v in np.ravel(a)]

    return {"geometry": page_geometry(g, transposed), "source": source,
            "x": flat(x), "w": flat(w), "b": float(b[0]), "dy": flat(dy),
            "y": flat(y[0, 0]), "dx": flat(dx[0, 0]), "dw": flat(dw[0, 0]),
            "db": float(db[0])}


# The page's script, in the order the parts are joined (into one function, one scope):
# validation, index maps and terms, names and numbers, drawing, the "as a convolution"
# views, selection, controls, and last the test contract, which draws the starting case.
PARTS = ("geometry.js", "terms.js", "numbers.js", "draw.js", "views.js", "select.js",
         "controls.js", "contract.js")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("page", name).read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    """Text that cannot end the <script> element it is inlined in."""
    return text.replace("</", "<\\/")


def html(path=None, input_size=(5, 5), kernel_size=(3, 3), stride=2, padding=1, dilation=1,
         *, transposed: bool = False, output_padding=0, numbers: bool = False,
         seed=0) -> str:
    """Write the explorer for one starting case to ``path`` (when given); return the page.

    Args:
        path: the file to write (its folder must exist); None to only return the text.
        input_size: x's spatial size, (L,) or (H, W), at most 12 per axis.
        kernel_size: w's, with as many axes.
        stride, padding, dilation: as for :func:`convgrad.conv2d` ('same', 'valid',
            (lo, hi) pairs per axis included).
        transposed: start with a transposed convolution (x its input); output_padding as
            for :func:`convgrad.conv_transpose2d`.
        numbers: start in numbers mode (random small integers) instead of symbols.
        seed: the seed of those numbers.

    Raises convgrad's ValueError / TypeError for an impossible case (the same messages as
    :func:`convgrad.explain.derive`), and a ValueError naming the bound for a case too large
    to draw legibly. The page lets the user change every setting afterwards.
    """
    g = case_geometry(input_size, kernel_size, stride, padding, dilation,
                      transposed=transposed, output_padding=output_padding)
    check_limits(g, transposed)
    geometry = page_geometry(g, transposed)
    del geometry["y"]                                      # the page computes it
    if not transposed:
        del geometry["output_padding"]
    if isinstance(padding, str):
        geometry["padding"] = padding                      # the page keeps 'same' / 'valid'
        if transposed:
            geometry["output_padding"] = [0] * g.nd        # 'same' sets output_padding
    data = {"initial": geometry, "numbers": _numbers(g, transposed, seed),
            "mode": "numbers" if numbers else "symbols", "limits": LIMITS, "op": OP}
    script = "\n".join(_asset(part) for part in PARTS)
    if "</script" in script.lower():
        raise RuntimeError("the explorer's script must not contain '</script'")
    page = (_asset("explorer.html")
            .replace("/*CONVGRAD_CSS*/", _asset("explorer.css"))
            .replace("/*CONVGRAD_DATA*/", _script_safe(json.dumps(data)))
            .replace("/*CONVGRAD_JS*/", script))
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page
