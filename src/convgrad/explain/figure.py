"""The figure of one case: every grid of the derivation, each cell labeled with its symbol.

    fig = draw_case(derive((5,), (3,), stride=2), "stride2.png")

Three rows (1-D arrays are drawn as one-row grids), each heading stating its padding:

1. the case: x zero-padded (padding cells grey), the filter w, the upstream gradient dy;
2. dx: dy with stride-1 zeros inserted and padded, correlated (★) with rot180(w), gives dx;
   one dx entry (the one with the most terms) and the window of the padded dy that
   produces it are outlined in red;
3. dw: x padded (or cropped) for dw, correlated with dy dilated by the stride (at a
   stride equal to the dilation), gives dw.

A legend at the bottom defines ★ (cross-correlation), the grey cells and the red outline.

Matplotlib is imported here only, through a :class:`matplotlib.figure.Figure` with the Agg
canvas: no pyplot state, nothing is ever shown.
"""
from __future__ import annotations

import numpy as np

from .._optional import require
from ..engine.reference import pad
from .derivation import Derivation
from .identities import conv_identities
from .render import _zeros, describe, padding_text, per_axis
from .symbols import to_object_array

sp = require("sympy", "explain", "convgrad explain")

__all__ = ["draw_case"]

_COLORS = {"x": "#cfe2f3", "w": "#fce5cd", "dy": "#d9ead3", "zero": "#eeeeee",
           "expr": "#fff2cc"}
_RED = "#c0392b"
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

    def draw(self, fig, left: float, bottom: float, fig_w: float, fig_h: float,
             highlight=()):
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
        for r, c in highlight:                            # a window, outlined in red
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor="none", edgecolor=_RED,
                                   linewidth=2.4, clip_on=False, zorder=3))
        if not self.labels.size:
            ax.text(0.5, 0.5, "(empty)", ha="center", va="center", fontsize=_FONT)
        fig.text((left + self.width / 2) / fig_w, (bottom + self.height + 0.08) / fig_h,
                 self.title, ha="center", va="bottom", fontsize=_FONT + 0.5)
        return ax


def _padding_mask(shape, pairs) -> np.ndarray:
    """True where an array padded by ``pairs`` holds padding, for an input of ``shape``."""
    ones = np.ones((1, 1) + tuple(shape), dtype=np.int8)
    return pad(ones, pairs)[0, 0] == 0


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    return textwrap.wrap(text, max(width, 40))


def _window(ident, g):
    """The dx entry with the most terms and its window in the padded dy, as (row, col) cells
    of the drawn (2-D) grids: dx[j] reads dy_full[j + d*m] for every kernel index m."""
    dx = to_object_array(ident.dx)
    counts = {j: len(sp.Add.make_args(sp.sympify(dx[j]))) if dx[j] != 0 else 0
              for j in np.ndindex(*dx.shape)}
    j = max(counts, key=lambda i: (counts[i], [-v for v in i]))
    cells = [tuple(jj + d * m for jj, d, m in zip(j, g.dilation, mm))
             for mm in np.ndindex(*g.kernel_size)]
    as2d = (lambda i: (0, i[0])) if len(j) == 1 else (lambda i: i)
    return as2d(j), [as2d(c) for c in cells]


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
    crop = any(v < 0 for pair in ident.dx_padding + ident.x_padding for v in pair)
    pick, window = _window(ident, g)
    rows = [
        (f"the case: y = b + (x zero-padded by {padding_text(g.padding)}) \u2605 w; "
         f"dy = dL/dy from the layer above",
         [_Panel(f"x, zero-padded by {padding_text(g.padding)}", x_case,
                 _padding_mask(g.in_size, g.padding)), _Panel("w", d.w), _Panel("dy", d.dy)],
         ["", ""], [(), (), ()]),
        (f"dx: insert {_zeros(g.stride)} between the entries of dy, pad by "
         f"{padding_text(ident.dx_padding)}, \u2605 rot180(w) (stride 1, dilation "
         f"{per_axis(g.dilation)})",
         [_Panel("dy spread and padded", ident.dy_full), _Panel("rot180(w)", ident.w_rotated),
          _Panel("dx", ident.dx)], ["\u2605", "="],
         [window, [(r, c) for r, c in np.ndindex(*_as_grid(ident.w_rotated).shape)], [pick]]),
        (f"dw: x padded by {padding_text(ident.x_padding)}, \u2605 dy dilated by {s} (the "
         f"stride), at stride {dil} (the dilation)",
         [_Panel("x padded for dw", ident.x_padded,
                 _padding_mask(g.in_size, ident.x_padding)
                 if all(lo >= 0 and hi >= 0 for lo, hi in ident.x_padding) else None),
          _Panel(f"dy dilated by {s}", ident.dy_spread), _Panel("dw", ident.dw)],
         ["\u2605", "="], [(), (), ()]),
    ]
    legend = ("\u2605 = cross-correlation: out[i] = \u03a3_k kernel[k] \u00b7 "
              "in[stride\u00b7i + dilation\u00b7k].   Grey: zeros (padding, or inserted "
              "by the stride).   Red: one dx entry and the window of the padded dy that "
              "produces it." + ("   A negative padding crops." if crop else ""))
    row_w = [sum(p.width for p in panels) + _GAP_IN * (len(panels) - 1)
             for _, panels, _, _ in rows]
    row_h = [max(p.height for p in panels) + _TITLE_IN + _HEADING_IN + _ROW_GAP_IN
             for _, panels, _, _ in rows]
    title = f"convgrad explain: {describe(g)}\n{ident.rule}"
    fig_w = max(max(row_w), 6.0, _CHAR_IN * 1.2 * len(describe(g)) + 2.0,
                _CHAR_IN * max(len(h) for h, *_ in rows) + 0.5) + 2 * _MARGIN_IN
    legend_lines = _wrap(legend, int((fig_w - 2 * _MARGIN_IN) / _CHAR_IN))
    fig_h = sum(row_h) + 2 * _MARGIN_IN + _SUPTITLE_IN + _LINE_IN * 1.2 * len(legend_lines)
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    fig.text(0.5, 1 - 0.2 / fig_h, title, ha="center", va="top", fontsize=_FONT + 1.5,
             weight="bold", linespacing=1.5)
    top = fig_h - _MARGIN_IN - _SUPTITLE_IN
    for (heading, panels, operators, marks), height, width in zip(rows, row_h, row_w):
        fig.text(_MARGIN_IN / fig_w, (top - 0.05) / fig_h, heading, ha="left", va="top",
                 fontsize=_FONT + 0.5, style="italic")
        grid_h = max(p.height for p in panels)
        left = _MARGIN_IN + (fig_w - 2 * _MARGIN_IN - width) / 2
        bottom_row = top - height + _ROW_GAP_IN
        for k, panel in enumerate(panels):
            bottom = bottom_row + (grid_h - panel.height) / 2
            panel.draw(fig, left, bottom, fig_w, fig_h, marks[k])
            left += panel.width
            if k < len(operators) and operators[k]:
                fig.text((left + _GAP_IN / 2) / fig_w, (bottom_row + grid_h / 2) / fig_h,
                         operators[k], ha="center", va="center", fontsize=_FONT + 12)
            left += _GAP_IN
        top -= height
    fig.text(_MARGIN_IN / fig_w, (top - 0.05) / fig_h, "\n".join(legend_lines), ha="left",
             va="top", fontsize=_FONT, color="#333333", linespacing=1.4)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig
