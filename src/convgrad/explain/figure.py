"""The figure of one case: every grid of the derivation, each cell labeled with its symbol.

    fig = draw_case(derive((5,), (3,), stride=2), "stride2.png")

Three rows (1-D arrays are drawn as one-row grids):

1. the case: x zero-padded (padding cells grey), the filter w, the upstream gradient dy;
2. dx: dy with stride-1 zeros inserted and padded, correlated with rot180(w), gives dx;
3. dw: x padded (or cropped) for dw, correlated with dy dilated by the stride (at a
   stride equal to the dilation), gives dw.

Matplotlib is imported here only, through a :class:`matplotlib.figure.Figure` with the Agg
canvas: no pyplot state, nothing is ever shown.
"""
from __future__ import annotations

import numpy as np

from .._optional import require
from ..engine.reference import pad
from .derivation import Derivation
from .identities import conv_identities
from .render import describe, per_axis
from .symbols import to_object_array

sp = require("sympy", "explain", "convgrad explain")

__all__ = ["draw_case"]

_COLORS = {"x": "#cfe2f3", "w": "#fce5cd", "dy": "#d9ead3", "zero": "#eeeeee",
           "expr": "#fff2cc"}
_FONT = 8.5
_CHAR_IN = 0.075      # inches per character at _FONT
_LINE_IN = 0.17       # inches per text line
_GAP_IN = 0.55        # between panels (room for the operator)
_MARGIN_IN = 0.3
_TITLE_IN = 0.3       # panel title
_HEADING_IN = 0.3     # row heading
_ROW_GAP_IN = 0.25    # below each row
_SUPTITLE_IN = 0.6    # the two title lines


def _label(value, terms_per_line: int = 2) -> tuple[str, str]:
    """(text, colour key) of one cell: '0' grey, a symbol by its stem, sums wrapped."""
    value = sp.sympify(value)
    if value == 0:
        return "0", "zero"
    if isinstance(value, sp.Symbol):
        stem = value.name.rstrip("0123456789_").rstrip("_")
        stem = "dy" if value.name.startswith("dy") else stem[:1]
        return value.name, stem if stem in _COLORS else "expr"
    terms = [sp.sstr(t).replace("*", "\u00b7") for t in sp.Add.make_args(value)]
    lines = [" + ".join(terms[i:i + terms_per_line]) for i in range(0, len(terms), terms_per_line)]
    return "\n+ ".join(lines), "expr"


def _as_grid(a) -> np.ndarray:
    """Any array of one case as a 2-D object array: (n,) -> (1, n)."""
    out = to_object_array(a)
    return out.reshape(1, -1) if out.ndim == 1 else out


class _Panel:
    """One grid to draw: its labels, colours and cell size in inches."""

    def __init__(self, title: str, array, grey=None):
        grid = _as_grid(array)
        self.title = title
        self.labels = np.empty(grid.shape, dtype=object)
        self.colors = np.empty(grid.shape, dtype=object)
        for index in np.ndindex(*grid.shape):
            self.labels[index], self.colors[index] = _label(grid[index])
        if grey is not None:                              # padding cells: grey, whatever
            self.colors[_as_grid(grey).astype(bool)] = "zero"
        lines = [line for text in self.labels.flat for line in text.split("\n")] or [""]
        height = max((text.count("\n") + 1 for text in self.labels.flat), default=1)
        self.cell_w = max(0.45, _CHAR_IN * max(len(line) for line in lines) + 0.15)
        self.cell_h = max(0.42, _LINE_IN * height + 0.14)
        self.rows, self.cols = grid.shape

    @property
    def width(self) -> float:
        return max(self.cols * self.cell_w, _CHAR_IN * len(self.title))

    @property
    def height(self) -> float:
        return self.rows * self.cell_h

    def draw(self, fig, left: float, bottom: float, fig_w: float, fig_h: float):
        from matplotlib.patches import Rectangle
        grid_w = self.cols * self.cell_w
        x0 = left + (self.width - grid_w) / 2
        ax = fig.add_axes([x0 / fig_w, bottom / fig_h, max(grid_w, 1e-3) / fig_w,
                           max(self.height, 1e-3) / fig_h])
        ax.set_xlim(0, max(self.cols, 1))
        ax.set_ylim(max(self.rows, 1), 0)
        ax.set_axis_off()
        for (r, c), text in np.ndenumerate(self.labels):
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor=_COLORS[self.colors[r, c]],
                                   edgecolor="#555555", linewidth=0.8, clip_on=False))
            ax.text(c + 0.5, r + 0.5, text, ha="center", va="center", fontsize=_FONT,
                    color="#888888" if text == "0" else "black")
        if not self.labels.size:
            ax.text(0.5, 0.5, "(empty)", ha="center", va="center", fontsize=_FONT)
        fig.text((left + self.width / 2) / fig_w, (bottom + self.height + 0.08) / fig_h,
                 self.title, ha="center", va="bottom", fontsize=_FONT + 0.5)
        return ax


def _padding_mask(shape, pairs) -> np.ndarray:
    """True where an array padded by ``pairs`` holds padding, for an input of ``shape``."""
    ones = np.ones((1, 1) + tuple(shape), dtype=np.int8)
    return pad(ones, pairs)[0, 0] == 0


def draw_case(derivation: Derivation, path=None, rule=conv_identities, dpi: int = 110):
    """Draw the case's grids (see the module docstring); save to ``path`` when given.

    Returns the :class:`matplotlib.figure.Figure` (in a notebook, display it).
    """
    require("matplotlib", "explain", "convgrad explain --png")
    from matplotlib.figure import Figure

    d, g = derivation, derivation.geometry
    ident = d.identity(rule)
    x_case = pad(to_object_array(d.x)[None, None], g.padding)[0, 0]
    s, dil = per_axis(ident.dw_dilation), per_axis(ident.dw_stride)
    rows = [
        ("the case: y = b + (x zero-padded) correlated with w; dy = dL/dy from above",
         [_Panel("x, zero-padded", x_case, _padding_mask(g.in_size, g.padding)),
          _Panel("w", d.w), _Panel("dy", d.dy)], ["", ""]),
        (f"dx: insert {per_axis(tuple(v - 1 for v in g.stride))} zeros into dy, pad, "
         f"correlate with rot180(w) (stride 1, dilation {per_axis(g.dilation)})",
         [_Panel("dy spread and padded", ident.dy_full), _Panel("rot180(w)", ident.w_rotated),
          _Panel("dx", ident.dx)], ["\u22c6", "="]),
        (f"dw: x padded, correlated with dy dilated by {s} (the stride), at stride {dil} "
         f"(the dilation)",
         [_Panel("x padded for dw", ident.x_padded,
                 _padding_mask(g.in_size, ident.x_padding)
                 if all(lo >= 0 and hi >= 0 for lo, hi in ident.x_padding) else None),
          _Panel(f"dy dilated by {s}", ident.dy_spread), _Panel("dw", ident.dw)],
         ["\u22c6", "="]),
    ]
    row_w = [sum(p.width for p in panels) + _GAP_IN * (len(panels) - 1)
             for _, panels, _ in rows]
    row_h = [max(p.height for p in panels) + _TITLE_IN + _HEADING_IN + _ROW_GAP_IN
             for _, panels, _ in rows]
    title = f"convgrad explain: {describe(g)}\n{ident.rule}"
    fig_w = max(max(row_w), 6.0, _CHAR_IN * 1.2 * len(describe(g)) + 2.0) + 2 * _MARGIN_IN
    fig_h = sum(row_h) + 2 * _MARGIN_IN + _SUPTITLE_IN
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    fig.text(0.5, 1 - 0.2 / fig_h, title, ha="center", va="top", fontsize=_FONT + 1.5,
             weight="bold", linespacing=1.5)
    top = fig_h - _MARGIN_IN - _SUPTITLE_IN
    for (heading, panels, operators), height, width in zip(rows, row_h, row_w):
        fig.text(_MARGIN_IN / fig_w, (top - 0.05) / fig_h, heading, ha="left", va="top",
                 fontsize=_FONT + 0.5, style="italic")
        grid_h = max(p.height for p in panels)
        left = _MARGIN_IN + (fig_w - 2 * _MARGIN_IN - width) / 2
        bottom_row = top - height + _ROW_GAP_IN
        for k, panel in enumerate(panels):
            bottom = bottom_row + (grid_h - panel.height) / 2
            panel.draw(fig, left, bottom, fig_w, fig_h)
            left += panel.width
            if k < len(operators) and operators[k]:
                fig.text((left + _GAP_IN / 2) / fig_w, (bottom_row + grid_h / 2) / fig_h,
                         operators[k], ha="center", va="center", fontsize=_FONT + 12)
            left += _GAP_IN
        top -= height
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig
